"""Performance Metrics: mAP, mean AUC, d' and per-class results with bootstrap intervals
(:func:`factsheet.performance.evaluate_performance`), their column keys and their comparison."""

from __future__ import annotations

from factsheet.delta import Delta, interval_of
from factsheet.sections.base import PROBABILITY, SD, UNITLESS, Heading, RunContext, Section, SectionResult, term
from factsheet.sections.base import fmt, fmt_interval, percent

METRICS = (("mAP", "mAP"), ("mean_auc", "mean AUC"), ("d_prime", "d-prime"),
           ("mean_class_d_prime", "mean per-class d-prime"))
LEAN_STEPS = (0.05, 0.10, 0.20)


def evaluate(ctx: RunContext) -> SectionResult:
    from factsheet.performance import evaluate_performance
    from factsheet.sections.test_data import coverage_text

    m = ctx.cfg.metrics
    section = evaluate_performance(y_true=ctx.dataset.labels, y_score=ctx.scores,
                                   class_labels=ctx.dataset.class_labels, n_bootstrap=m.bootstrap_resamples,
                                   confidence=m.confidence, seed=m.seed, coverage=coverage_text(ctx.dataset))
    return SectionResult(section)


def glossary(doc: dict) -> dict:
    perf = doc.get("performance") or {}
    if perf.get("status") != "evaluated":
        return {}
    defs = perf["definitions"]
    keys = {
        "performance_headline": [  # the rows of the headline table, each with its JSON field
            dict(term("Mean Average Precision (mAP)", UNITLESS, defs["mAP"]), field="mAP"),
            dict(term("Area Under the Curve (mean ROC AUC)", PROBABILITY, defs["mean_auc"]), field="mean_auc"),
            dict(term("d-prime", SD, defs["d_prime"]), field="d_prime"),
            dict(term("mean per-class d-prime", SD, defs["mean_class_d_prime"]), field="mean_class_d_prime"),
        ],
        "performance_per_class": class_terms(perf),
    }
    if perf.get("single_label"):
        keys["single_label"] = [
            term("Accuracy", UNITLESS, "Share of clips whose top-scored class is their one true class."),
            term("Precision", UNITLESS, "Of the clips predicted (top-1) as the class, the share that are it."),
            term("Recall", UNITLESS, "Of the clips of the class, the share predicted (top-1) as it."),
            term("F1", UNITLESS, "Harmonic mean of precision and recall; macro = plain mean over classes, "
                                 "weighted = mean weighted by support."),
            term("Support", "clips", "Evaluation clips of the class."),
        ]
    return keys


def class_terms(perf: dict) -> list[dict]:
    """Keys of the per-class columns (Support, AP, AUC, d'), shared with the Bias section's table."""
    defs = perf.get("definitions") or {}
    return [
        term("Support", "clips", defs.get("support", "Evaluation clips with the class among their true labels.")),
        term("AP", UNITLESS, defs.get("AP", "Average precision of the class.")),
        term("AUC", PROBABILITY, defs.get("AUC", "ROC AUC of the class.")),
        term("d'", SD, "sqrt(2) * Phi^-1(AUC of the class): the separation of positive and negative scores "
                       "under an equal-variance normal model; infinite when AUC = 1."),
    ]


def summary(doc: dict) -> dict | None:
    """mAP, mean AUC and d' with their intervals, on how many clips and classes."""
    perf = doc.get("performance") or {}
    if perf.get("status") != "evaluated":
        return None
    pct = percent(perf["confidence"])
    lines = [f"{name} {fmt(perf[key])} ({pct} CI {fmt_interval(perf['ci'].get(key))})"
             for key, name in METRICS[:3]]
    return {"title": "Performance Metrics", "anchor": "performance",
            "headline": ["; ".join(lines) + f" on {perf['n_clips']} clips, {perf['n_classes_evaluated']} classes."],
            "n_findings": None, "findings": []}


def compare(*, old: dict, new: dict, why: str | None) -> dict:
    """Headline metric deltas and class-wise AP changes (``None`` when ``why`` says they cannot be compared)."""
    if why:
        return {"metrics": None, "classes": None}
    return {"metrics": compare_metrics(old=old, new=new), "classes": compare_classes(old=old, new=new)}


def compare_metrics(*, old: dict, new: dict) -> list[dict]:
    """Headline metric deltas: one row per metric in :data:`METRICS`."""
    po, pn = old["performance"], new["performance"]
    rows = []
    for key, name in METRICS:
        d = Delta(old=po.get(key), new=pn.get(key), old_ci=interval_of((po.get("ci") or {}).get(key)),
                  new_ci=interval_of((pn.get("ci") or {}).get(key)))
        rows.append({"key": key, "name": name, "delta": d})
    return rows


def compare_classes(*, old: dict, new: dict) -> dict:
    """Class-wise AP changes (matched by label) and LEAN-style counts.

    Returns
    -------
    dict
        ``rows`` (label, category, :class:`Delta` of AP; sorted by delta, largest gain first),
        ``counts`` (``n_compared``, ``improved``, ``improved_5`` / ``_10`` / ``_20``, ``worse``,
        ``worse_5`` / ``_10`` / ``_20``, ``unchanged``) and ``skipped`` (labels with a reason).
        A class counts as improved by >= 5 % when ``(new - old) / old >= 0.05``; a class whose
        old AP is 0 and new AP positive counts in every "improved" column.
    """
    old_rows = {r["label"]: r for r in old["performance"].get("per_class", [])}
    new_rows = {r["label"]: r for r in new["performance"].get("per_class", [])}
    rows, skipped = [], []
    for label in list(old_rows) + [lb for lb in new_rows if lb not in old_rows]:
        o, n = old_rows.get(label), new_rows.get(label)
        if o is None or n is None:
            skipped.append({"label": label, "reason": "only in NEW" if o is None else "only in OLD"})
            continue
        if o.get("ap") is None or n.get("ap") is None:
            which = [name for name, r in (("OLD", o), ("NEW", n)) if r.get("ap") is None]
            skipped.append({"label": label, "reason": f"no AP in {' and '.join(which)} (not evaluable)"})
            continue
        rows.append({"label": label, "category": n.get("category") or o.get("category"),
                     "delta": Delta(old=o["ap"], new=n["ap"])})
    rows.sort(key=lambda r: (-r["delta"].delta, r["label"]))
    return {"rows": rows, "counts": lean_counts([r["delta"] for r in rows]), "skipped": skipped}


def lean_counts(deltas: list[Delta]) -> dict[str, int]:
    """Counts of classes improved / worse, overall and by at least 5 %, 10 %, 20 % (relative change)."""
    counts = {"n_compared": len(deltas), "improved": 0, "worse": 0, "unchanged": 0}
    for step in LEAN_STEPS:
        counts[f"improved_{round(step * 100)}"] = 0
        counts[f"worse_{round(step * 100)}"] = 0
    for d in deltas:
        change, rel = d.delta, d.relative
        if change > 0:
            counts["improved"] += 1
        elif change < 0:
            counts["worse"] += 1
        else:
            counts["unchanged"] += 1
        for step in LEAN_STEPS:
            pct = round(step * 100)
            if change > 0 and (rel is None or rel >= step):
                counts[f"improved_{pct}"] += 1
            if change < 0 and rel is not None and rel <= -step:
                counts[f"worse_{pct}"] += 1
    return counts


SECTIONS = (Section(field="performance", schema="performance", evaluate=evaluate, timed=True,
                    glossary=glossary,
                    compare=compare, compare_title="Performance", summary=summary,
                    headings=(Heading("performance", "Performance Metrics", 80),)),)
