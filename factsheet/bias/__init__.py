"""The Bias section: per-class and per-group breakdowns, disparities and findings.

Groups come from metadata columns (and pairs of columns). A group's AP / AUC for class c
counts the group's positives of c against ALL negatives of c in the evaluation set, so the
metric stays defined when a group holds only positives of a class (a voice-type group only
contains speech). Every interval and disparity test comes from one paired bootstrap over
clips (the same resamples for every group), so differences between groups get their own
intervals.

Modules: :mod:`~factsheet.bias.groups` (which clips form a group), :mod:`~factsheet.bias.stats`
(group metrics, paired bootstrap, disparities and their tests), :mod:`~factsheet.bias.wording`
(definitions and findings in words), :mod:`~factsheet.bias.plots`, and
:mod:`~factsheet.bias.section` (:func:`evaluate_bias`, which assembles the section). The Optimal / Poor
conditions are derived from the section in :mod:`factsheet.sections.conditions`.
"""

from factsheet.bias.groups import Group, column_describes_class, group_columns, make_groups
from factsheet.bias.section import evaluate_bias
from factsheet.bias.stats import group_replicates

__all__ = ["Group", "column_describes_class", "evaluate_bias", "group_columns", "group_replicates", "make_groups"]
