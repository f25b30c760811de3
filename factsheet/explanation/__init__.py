"""The Explanation section: occlusion importance over time and frequency for black-box waveform models,
tested for faithfulness, with audio an auditor can play.

Modules: :mod:`~factsheet.explanation.occlusion` (grid, fill, fill-and-project passes),
:mod:`~factsheet.explanation.explain` (:func:`explain_clip`, deletion curves),
:mod:`~factsheet.explanation.stats` (clip choice, intervals, agreement, localisation),
:mod:`~factsheet.explanation.randomise` (the model-randomisation check's weights),
:mod:`~factsheet.explanation.wording` and :mod:`~factsheet.explanation.section`
(:func:`evaluate_explanation`, which assembles the section).
"""

from factsheet.explanation.explain import explain_clip
from factsheet.explanation.section import evaluate_explanation

__all__ = ["evaluate_explanation", "explain_clip"]
