"""The Bias section in words: definitions and findings."""

from __future__ import annotations

from factsheet.config import BiasConfig, MetricsConfig


#: The interval method of each interval of the section (``interval_methods`` in the JSON).
INTERVAL_METHODS = {"groups": "bca_expanded", "groups.accuracy": "clopper_pearson", "class_groups": "bca_expanded",
                    "disparities": "percentile", "disparities[metric=accuracy]": "newcombe",
                    "groups.robustness": "order_statistic"}

DEFINITIONS = {
    "group_metric": ("A group's AP (AUC) for class c ranks the group's clips that contain c (its positives) against "
                     "every clip of the evaluation set that does not contain c (all negatives). For AP the negatives "
                     "are weighted by the group's share of the class's positives (prevalence matching): AP depends on "
                     "the ratio of positives to negatives, and without the weights a small group would score lower "
                     "AP from its size alone. AUC needs no weights. Group mAP and mean AUC average over the classes "
                     "with at least min_positives positives in the group (listed per group); when two groups are "
                     "compared, over the classes both have that many positives of (n_classes); d' = sqrt(2) "
                     "Phi^-1(group mean AUC)."),
    "class_group_metric": "The same per class: class c's AP and AUC from the group's positives of c against all negatives.",
    "disparity": ("difference = group - reference and ratio = group / reference, the reference being the group with "
                  "the highest value of the metric among the groups with sufficient evidence in the same column(s)."),
    "ci": ("Paired bootstrap over clips: every group's metric is recomputed on the same resamples of the whole "
           "evaluation set, so a difference's interval comes from its own replicates. A group's mAP, mean AUC and d' "
           "get the BCa interval (bias-corrected and accelerated, the acceleration from the group metric with each "
           "clip left out; the percentile interval under-covered the mAP of a weaker group), and so do a class's AP "
           "and AUC in a group (class_groups), taken at Hesterberg's expanded level for n, the fewest positives of a "
           "class the row averages (a class cell: its positives), in place of the nominal one (interval_method "
           "'bca_expanded': 2 Phi(sqrt(n/(n-1)) t_{n-1}) - 1, 0.963 at 28 positives; plain BCa covered 91.8-92.2 % "
           "for voice groups of 28-56 positives); none (insufficient evidence) when fewer than "
           "10 or than half of the replicates are finite, when the estimate lies outside the central range of its "
           "own replicates, for a group under min_group_size clips and for a class cell under min_positives "
           "positives. Disparities get the percentile interval of their paired replicates (interval_method "
           "'percentile'), except accuracy disparities. Single-label data: a group's accuracy (k of its n clips "
           "right) gets the Clopper-Pearson interval (exact binomial, 'clopper_pearson'), and an accuracy "
           "disparity Newcombe's hybrid score interval of the difference of two independent proportions "
           "('newcombe': the two groups' Wilson score intervals combined); the percentile interval has zero width "
           "at n of n right and under-covered accuracies near 0.9-0.97. Their p-values still come from the paired "
           "replicates. The groups' robustness medians (from the Robustness section) use order statistics."),
    "finding": ("A disparity is a finding when the group is worse than the reference by more than the tolerance with "
                "confidence: its interval lies entirely below -tolerance AND the two-sided p-value of "
                "H0: |difference| <= tolerance (normal approximation, the bootstrap standard deviation of the "
                "difference as its standard error) stays below 1 - confidence after correction for multiple "
                "comparisons. The family holds every pair of groups of a column for every metric tested (the "
                "reference is chosen as the best group after looking, so all pairs must be covered)."),
    "insufficient_evidence": ("A group with fewer clips than min_group_size, or a class cell with fewer positives than "
                              "min_positives, is reported as insufficient evidence and is never a finding."),
    "tested_metrics": ("Group level: mAP and mean AUC (d' is reported but not tested: it is a monotone function of mean "
                       "AUC). Class level: AP and AUC of a class the column describes (at least 90 % of the class's "
                       "positives have a group value, against under 50 % of its negatives, e.g. voice type for "
                       "Speech) in groups with at least min_positives positives."),
}


def _fmt(x, d=3) -> str:
    return "n/a" if x is None else f"{x:.{d}f}"


def _metric_name(d: dict) -> str:
    base = {"mAP": "mAP", "mean_auc": "mean AUC", "ap": "AP", "auc": "AUC", "accuracy": "accuracy"}[d["metric"]]
    return f"{d['class']} {base}" if d["class"] else base


def _finding_sentences(disparities, group_rows, settings: BiasConfig, bootstrap: MetricsConfig) -> list[str]:
    out = []
    found = [d for d in disparities if d["finding"]]
    class_level = {(tuple(d["columns"]), d["group"], d["reference"], d["value"]) for d in found if d["class"]}
    # A group mean over a single class repeats that class's AP: say it once, as the class-level finding.
    found = [d for d in found if d["class"] or d.get("n_classes") != 1
             or (tuple(d["columns"]), d["group"], d["reference"], d["value"]) not in class_level]
    for d in sorted(found, key=lambda d: d["difference"]):
        col = " & ".join(d["columns"])
        out.append(
            f"{col} = {d['group']} is disadvantaged: {_metric_name(d)} {_fmt(d['value'])} against "
            f"{_fmt(d['reference_value'])} for {d['reference']}, a difference of {_fmt(d['difference'])} "
            f"({int(bootstrap.confidence * 100)}% CI {_fmt(d['ci_low'])} to {_fmt(d['ci_high'])}; ratio "
            f"{_fmt(d['ratio'], 2)}; n = {d['n']} vs {d['n_reference']}; adjusted p = {d['p_adjusted']:.3g}).")
    n_tests = sum(1 for d in disparities if d["p_value"] is not None)
    if not out and n_tests == 0:
        out.append("No disparity was tested: no group column had two groups with enough clips and positives to compare "
                   "(what was not evaluated, and why, is listed with the section).")
    elif not out:
        out.append(f"No disparity was a finding: none of the {n_tests} comparisons with the best group showed a "
                   f"group worse than "
                   f"it by more than {settings.tolerance:g} with "
                   f"{int(bootstrap.confidence * 100)}% confidence after "
                   f"{'Holm' if settings.correction == 'holm' else 'Benjamini-Hochberg'} correction.")
    return out


# -- plots ------------------------------------------------------------------------------
