"""Bias: per-class and per-group breakdowns with paired bootstrap disparities
(:func:`factsheet.bias.evaluate_bias`), their column keys and their comparison."""

from __future__ import annotations

import dataclasses

from factsheet.delta import Delta
from factsheet.document import BiasSection, not_evaluated
from factsheet.sections.base import PCM, PROBABILITY, SD, UNITLESS, Heading, RunContext, Section, SectionResult
from factsheet.sections.base import percent, term
from factsheet.sections.performance import class_terms

DISPARITY_KEYS = ("metric", "class", "columns", "group", "reference")


def evaluate(ctx: RunContext) -> SectionResult:
    """Group and class breakdowns of the scores; the Robustness section's medians join them when evaluated."""
    cfg = ctx.cfg
    if not cfg.bias.enabled:
        return SectionResult(not_evaluated(cfg.factsheet.bias, why="bias.enabled is false in the config."))
    from factsheet.bias import evaluate_bias

    robustness, shift = ctx.results.get("robustness"), ctx.results.get("domain_shift")
    rob = dataclasses.asdict(robustness) if robustness is not None and robustness.status == "evaluated" else None
    shift_groups = getattr(shift, "groups", None) if shift is not None and shift.status == "evaluated" else None
    section, plots = evaluate_bias(
        y_true=ctx.dataset.labels, y_score=ctx.scores, class_labels=ctx.dataset.class_labels,
        metadata=ctx.dataset.metadata, settings=cfg.bias, bootstrap=cfg.metrics, prose=cfg.factsheet.bias,
        robustness=rob, domain_shift_groups=shift_groups)
    return SectionResult(BiasSection(**section), plots=plots)


def glossary(doc: dict) -> dict:
    bias = doc.get("bias") or {}
    if bias.get("status") != "evaluated":
        return {}
    bs = bias["settings"]
    conf = percent(bs["confidence"])
    keys = {"bias_per_class": class_terms(doc.get("performance") or {}) + _robustness_terms(doc),
            "bias_per_category": [
                term("Support", "clip-labels", "Sum of the category's per-class supports (a clip holding two of "
                                               "its classes counts twice)."),
                term("Mean AP", UNITLESS, "Plain mean of the category's per-class AP."),
                term("Mean AUC", PROBABILITY, "Plain mean of the category's per-class ROC AUC."),
            ]}
    keys["bias_groups"] = [
        term("n", "clips", f"Evaluation clips in the group; fewer than {bs['min_group_size']} is "
                           "insufficient evidence."),
        term("mAP [CI]", UNITLESS, f"Group mAP: mean over classes with at least {bs['min_positives']} "
                                   "positives in the group of the prevalence-matched AP of the group's "
                                   f"positives against all negatives (see group_metric); {conf} paired "
                                   f"BCa bootstrap interval ({bs['n_bootstrap']} resamples; see ci)."),
        term("mean_auc [CI]", PROBABILITY, "The same mean over the group's classes of ROC AUC."),
        term("d_prime [CI]", SD, "sqrt(2) * Phi^-1(group mean AUC)."),
    ]
    if any("accuracy" in g["metrics"] for g in bias.get("groups") or []):
        keys["bias_groups"].append(term("accuracy [CI]", UNITLESS, "Share of the group's clips whose top-1 "
                                                                   "class is their one true class; Clopper-Pearson "
                                                                   "(exact binomial) interval."))
    keys["bias_groups"].append(term("Median L2 SNR of attacked clips (dB)", "dB",
                                    "As in the Robustness section, over the group's attacked clips (n of them)."))
    keys["bias_disparities"] = [
        term("Value", "metric's unit", "The group's value of the metric (over the classes both groups share)."),
        term("Difference [CI]", "metric's unit", f"Group minus reference, the reference being the best group "
                                                 f"of the column(s); {conf} paired percentile bootstrap "
                                                 "interval (accuracy: Newcombe's hybrid score interval of the "
                                                 "difference of two proportions)."),
        term("Ratio", "unitless", "Group value divided by reference value."),
        term("Adj. p", PROBABILITY, f"p-value of H0 |difference| <= {bs['tolerance']} after "
                                    f"{bs['correction']} correction over {bs['n_tests']} tests."),
        term("Finding", "yes / no", f"Interval entirely below -{bs['tolerance']} and adjusted p below "
                                    f"{1 - float(bs['confidence']):.2g}."),
    ]
    return keys


def _robustness_terms(doc: dict) -> list[dict]:
    rob = doc.get("robustness") or {}
    if rob.get("status") != "evaluated":
        return [term("Median L2 (16-bit PCM) / SNR (dB)", "16-bit PCM units / dB",
                     "Not measured: robustness was not evaluated in this run.")]
    t = rob["settings"]["iterations"]
    return [term("Median L2 (16-bit PCM)", PCM, f"Median L2 norm of the perturbation after {t} "
                 "HopSkipJump iterations over the attacked clips of the class; 'not attacked' when none was."),
            term("Median L2 SNR (dB)", "dB", "-20 log10 of the median relative L2 perturbation "
                                             "||x_adv - x||_2 / ||x||_2 of those clips.")]


def summary(doc: dict) -> dict | None:
    """How many disparities are findings, among how many tests, and the first three in words."""
    bias = doc.get("bias") or {}
    if bias.get("status") != "evaluated":
        return None
    st = bias["settings"]
    n = sum(1 for d in bias["disparities"] if d.get("finding"))
    return {"title": "Bias", "anchor": "bias",
            "headline": [f"{n} finding(s) among {st['n_tests']} disparity tests ({st['correction']})."],
            "n_findings": n, "findings": list(bias["findings"][:3])}


def compare(*, old: dict, new: dict, why: str | None) -> dict:
    return {"bias": None if why else compare_bias(old=old, new=new)}


def _disparity_key(d: dict) -> tuple:
    return tuple(tuple(sorted(d.get(k) or ())) if k == "columns" else d.get(k) for k in DISPARITY_KEYS)


def compare_bias(*, old: dict, new: dict) -> dict:
    """Disparities present in both (matched by metric, class, columns, group, reference) and findings.

    Returns
    -------
    dict
        ``rows`` (the disparity's identity, :class:`Delta` of its difference, old and new finding,
        insufficient evidence in either), ``only_old`` / ``only_new`` (counts of unmatched
        disparities), ``new_findings`` (findings in NEW that were not findings in OLD) and
        ``resolved_findings`` (findings in OLD that are not findings in NEW), each a list of
        ``{"name", "old", "new"}`` with the differences (``None`` where the disparity is absent).
        Findings are matched by identity, not by their sentences (whose numbers change).
    """
    od = {_disparity_key(d): d for d in old["bias"].get("disparities", [])}
    nd = {_disparity_key(d): d for d in new["bias"].get("disparities", [])}
    rows = []
    for key, o in od.items():
        n = nd.get(key)
        if n is None:
            continue
        rows.append({"metric": o.get("metric"), "class": o.get("class"), "columns": list(o.get("columns") or ()),
                     "group": o.get("group"), "reference": o.get("reference"),
                     "difference": Delta(old=o.get("difference"), new=n.get("difference"),
                                         old_ci=(o.get("ci_low"), o.get("ci_high")),
                                         new_ci=(n.get("ci_low"), n.get("ci_high"))),
                     "finding": (bool(o.get("finding")), bool(n.get("finding"))),
                     "insufficient": bool(o.get("insufficient_evidence")) or bool(n.get("insufficient_evidence"))})

    def changed(a: dict, b: dict) -> list[dict]:
        out = []
        for key, d in a.items():
            other = b.get(key)
            if d.get("finding") and not (other or {}).get("finding"):
                pair = (other, d) if a is nd else (d, other)
                out.append({"name": _disparity_name(d),
                            "old": None if pair[0] is None else pair[0].get("difference"),
                            "new": None if pair[1] is None else pair[1].get("difference")})
        return out

    return {"rows": rows, "only_old": sum(k not in nd for k in od), "only_new": sum(k not in od for k in nd),
            "new_findings": changed(nd, od), "resolved_findings": changed(od, nd)}


def _disparity_name(d: dict) -> str:
    """``voice_type = child vs male: Speech ap``."""
    metric = (f"{d['class']} " if d.get("class") else "") + str(d.get("metric"))
    return f"{' & '.join(d.get('columns') or ())} = {d.get('group')} vs {d.get('reference')}: {metric}"


SECTIONS = (Section(field="bias", schema="bias", evaluate=evaluate, timed=True, needs=("robustness", "domain_shift"),
                    glossary=glossary,
                    compare=compare, compare_title="Bias", summary=summary,
                    headings=(Heading("bias", "Bias", 90),), prose=(("bias", "text"),)),)
