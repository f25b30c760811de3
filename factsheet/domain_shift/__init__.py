"""The Domain Shift section: a corruption suite in physical units (:mod:`factsheet.corruptions`),
paired drops of mAP, mean AUC and d' against the clean audio, where each corruption breaks the
model; the natural shift to second datasets (unpaired gaps, prevalence-matched AP); and the Poor
Conditions that implies.

Modules: :mod:`~factsheet.domain_shift.stats` (clip choice, paired drops, breaking points),
:mod:`~factsheet.domain_shift.natural` (natural shift: compared classes, unpaired bootstrap,
prevalence-matched AP),
:mod:`~factsheet.domain_shift.wording` (definitions, findings, conditions in words),
:mod:`~factsheet.domain_shift.plots`, and :mod:`~factsheet.domain_shift.section`
(:func:`evaluate_domain_shift`, which assembles the section).
"""

from factsheet.domain_shift.section import evaluate_domain_shift

__all__ = ["evaluate_domain_shift"]
