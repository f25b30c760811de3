"""The "Performance Metrics" section: mAP, mean AUC, d' and per-class results with bootstrap CIs."""

from __future__ import annotations

import numpy as np

from factsheet.datasets.base import ClassLabel
from factsheet.document import ClassPerformance, Interval, PerformanceSection
from factsheet.metrics import (MIN_CLASS_SUPPORT, bootstrap_tagging_ci, finite_or_none, is_single_label, single_label_report,
                               tagging_metrics)

DEFINITIONS = {
    "AP": ("Average precision of one class: the mean, over its positive clips, of the precision among all clips "
           "scored at least as high (ties grouped; scikit-learn's average_precision_score)."),
    "mAP": "Mean average precision: the plain (macro) mean of per-class AP over the evaluated classes.",
    "AUC": ("ROC AUC of one class: the probability that a random positive clip scores higher than a random "
            "negative clip (ties count one half; scikit-learn's roc_auc_score)."),
    "mean_auc": "Mean AUC: the plain (macro) mean of per-class ROC AUC over the evaluated classes.",
    "d_prime": ("d' = sqrt(2) * Phi^-1(mean AUC), Phi^-1 the inverse standard normal CDF: the AudioSet / PANNs "
                "convention, which gives the MAX FactSheet's d' 2.621 from its AUC 0.968."),
    "mean_class_d_prime": ("Mean of the per-class d' = sqrt(2) * Phi^-1(AUC_c) (the HEAR convention); infinite, "
                           "shown as null, when any class has AUC 1."),
    "support": "Number of evaluation clips with the class among their true labels.",
    "evaluated_classes": ("Classes with at least one positive and one negative clip; the others are excluded from "
                          "every mean and counted."),
    "ci": ("BCa bootstrap interval (bias-corrected and accelerated; interval_method 'bca'): clips resampled with "
           "replacement, each replicate re-applies the evaluated-class rule; replicates with a non-finite value are "
           "dropped and counted (n_used); the bias correction comes from the share of replicates below the "
           "estimate, the acceleration from the metric with each clip left out. 'insufficient evidence' (null "
           f"bounds) when an evaluated class has fewer than {MIN_CLASS_SUPPORT} positive or negative clips (below "
           "that the intervals under-cover whatever the method), or when the estimate lies outside the central "
           "range of its own replicates (the bootstrap is dominated by its bias, e.g. mAP over many rare classes)."),
}

#: The interval method of each interval of the section (``interval_methods`` in the JSON).
INTERVAL_METHODS = {"ci": "bca"}


def evaluate_performance(*, y_true: np.ndarray, y_score: np.ndarray, class_labels: list[ClassLabel],
                         n_bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0,
                         coverage: str | None = None) -> PerformanceSection:
    """Compute the Performance Metrics section.

    Parameters
    ----------
    y_true : ndarray, shape (n_clips, n_classes)
        0/1 multi-hot labels.
    y_score : ndarray, shape (n_clips, n_classes)
        Model scores (finite).
    class_labels : list of ClassLabel
        One per column.
    n_bootstrap : int
        Bootstrap replicates for the intervals; 0 disables them.
    confidence : float
        Interval level, e.g. 0.95.
    seed : int
        Seed of the bootstrap's generator.
    coverage : str, optional
        Which of the model's classes the columns are, when not all of them (a label mapping): appended
        to the ``evaluated_classes`` definition, which the report prints under the headline table.
    """
    m = tagging_metrics(y_true, y_score)
    names = ["mAP", "mean_auc", "d_prime", "mean_class_d_prime"]
    if n_bootstrap > 0:
        cis = bootstrap_tagging_ci(y_true, y_score, n_resamples=n_bootstrap, confidence=confidence, seed=seed)
        ci = {k: Interval(low=finite_or_none(cis[k].low), high=finite_or_none(cis[k].high), n_used=cis[k].n_used)
              for k in names}
    else:
        ci = {k: None for k in names}
    per_class = [
        ClassPerformance(label=c.display_name, index=c.index, category=c.category, support=int(m.support[j]),
                         evaluable=bool(m.evaluable[j]), ap=finite_or_none(m.per_class_ap[j]),
                         auc=finite_or_none(m.per_class_auc[j]),
                         d_prime=finite_or_none(m.per_class_d_prime[j]))
        for j, c in enumerate(class_labels)
    ]
    definitions = dict(DEFINITIONS)
    if coverage:
        definitions["evaluated_classes"] = f"{definitions['evaluated_classes']} {coverage}"
    single = None
    if is_single_label(y_true):
        single = _single_label_section(y_true, y_score, class_labels)
    return PerformanceSection(
        status="evaluated", definitions=definitions, interval_methods=dict(INTERVAL_METHODS), n_clips=int(y_true.shape[0]), mAP=finite_or_none(m.mAP),
        mean_auc=finite_or_none(m.mean_auc), d_prime=finite_or_none(m.d_prime),
        mean_class_d_prime=finite_or_none(m.mean_class_d_prime),
        confidence=float(confidence), n_bootstrap=int(n_bootstrap), ci=ci,
        n_classes_evaluated=int(m.evaluable.sum()), n_classes_excluded=int(m.n_excluded),
        excluded_classes=[c.display_name for j, c in enumerate(class_labels) if not m.evaluable[j]],
        per_class=per_class, single_label=single,
    )


def _single_label_section(y_true: np.ndarray, y_score: np.ndarray, class_labels: list[ClassLabel]) -> dict:
    """Accuracy and P/R/F1 when every clip has exactly one true label; prediction = top-1 score."""
    r = single_label_report(np.argmax(y_true, axis=1), np.argmax(y_score, axis=1), n_classes=len(class_labels))
    return {
        "definition": "Prediction = the class with the highest score (top-1); precision/recall/F1 with "
                      "zero_division = 0, macro = plain mean over classes, weighted = weighted by support.",
        "accuracy": float(r.accuracy),
        "macro": {"precision": float(r.macro_precision), "recall": float(r.macro_recall), "f1": float(r.macro_f1)},
        "weighted": {"precision": float(r.weighted_precision), "recall": float(r.weighted_recall),
                     "f1": float(r.weighted_f1)},
        "per_class": [{"label": c.display_name, "precision": float(r.precision[j]), "recall": float(r.recall[j]),
                       "f1": float(r.f1[j]), "support": int(r.support[j])} for j, c in enumerate(class_labels)],
    }
