"""The Bias section and the measured Optimal / Poor conditions.

Groups come from metadata columns (and pairs of columns). A group's AP / AUC for class c
counts the group's positives of c against ALL negatives of c in the evaluation set, so the
metric stays defined when a group holds only positives of a class (a voice-type group only
contains speech). Every interval and disparity test comes from one paired bootstrap over
clips (the same resamples for every group), so differences between groups get their own
intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtri

from factsheet.datasets.base import ClassLabel
from factsheet.config import BiasConfig, MetricsConfig
from factsheet.metrics import _rank, _resample_indices, finite_or_none
from factsheet.render import figure_svg

GROUP_METRICS = ("mAP", "mean_auc", "d_prime")
TESTED_GROUP_METRICS = ("mAP", "mean_auc")  # d' is a monotone function of mean AUC: testing it would double-count
CLASS_METRICS = ("ap", "auc")
_BLOCK_ELEMENTS = 1 << 20


@dataclass
class Group:
    columns: tuple[str, ...]
    name: str
    mask: np.ndarray  # (n,) bool

    @property
    def key(self) -> str:
        return " & ".join(self.columns)


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
    "ci": ("Paired percentile bootstrap over clips: every group's metric is recomputed on the same resamples of the "
           "whole evaluation set, so a difference's interval comes from its own replicates."),
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


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error rate)."""
    n = len(p)
    order = np.argsort(p)
    adj = np.empty(n)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (n - rank) * p[i]))
        adj[i] = running
    return adj


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate)."""
    n = len(p)
    order = np.argsort(p)
    adj = np.empty(n)
    running = 1.0
    for rank in range(n - 1, -1, -1):
        i = order[rank]
        running = min(running, p[i] * n / (rank + 1))
        adj[i] = running
    return adj


ADJUST = {"holm": _holm, "bh": _bh}


def make_groups(metadata: pd.DataFrame, settings: BiasConfig, *,
                columns: tuple[str, ...]) -> tuple[list[Group], list[str]]:
    """Groups from single ``columns`` (see :func:`group_columns`), intersections and condition columns;
    missing columns are reported."""
    missing = []
    specs: list[tuple[str, ...]] = []
    for col in columns:
        specs.append((col,))
    specs += [tuple(p) for p in settings.intersections]
    specs += [(c,) for c in settings.condition_columns if (c,) not in specs]
    groups = []
    for spec in specs:
        absent = [c for c in spec if c not in metadata.columns]
        if absent:
            missing.append(f"{' & '.join(spec)}: column {', '.join(absent)} not in the dataset's metadata")
            continue
        values = metadata[list(spec)].astype(str)
        keep = ~values.isin(settings.exclude_values).any(axis=1).to_numpy()
        labels = values.agg(" | ".join, axis=1).to_numpy()
        for name in sorted(set(labels[keep].tolist()), key=_natural):
            groups.append(Group(columns=spec, name=name, mask=(labels == name) & keep))
    return groups, missing


def _natural(s: str):
    try:
        return (0, float(s), s)
    except ValueError:
        return (1, 0.0, s)


class _NegativeCumulants:
    """Weight of each class's negatives below / at-or-below every positive's tie group.

    Shared by all groups of one bootstrap block: a group only changes which positives count,
    so each group then costs O(replicates x positives) instead of O(replicates x classes x clips).
    """

    def __init__(self, ranked, y: np.ndarray, counts: np.ndarray):
        m, n = ranked.shape
        neg_sorted = ~y.T[np.arange(m)[:, None], ranked.order]  # (m, n)
        cwn = np.cumsum(counts[:, ranked.order] * neg_sorted[None], axis=-1)  # (b, m, n)
        self.below = np.where(ranked.start > 0, cwn[:, ranked.row, np.maximum(ranked.start - 1, 0)], 0.0)
        self.at_or_below = cwn[:, ranked.row, ranked.stop - 1]
        self.total = cwn[:, :, -1]  # (b, m)
        self.positives = counts @ y.astype(np.float64)  # (b, m): all positives of each class


def _group_ap_auc(ranked, neg: _NegativeCumulants, counts: np.ndarray, member: np.ndarray):
    """AP, AUC, positive and negative weight per class of one group, for b replicates.

    The group's positives of class c (weight = times drawn, 0 outside the group) against
    every negative of c (weight = times drawn; for AP also times the group's share of the
    class's positives): the formulas of :func:`factsheet.metrics._ap_auc_weighted`, checked
    against scikit-learn with sample weights in the tests.
    """
    m, _ = ranked.shape
    b = counts.shape[0]
    pw = counts[:, ranked.clip] * member[ranked.clip]  # (b, K)
    cp = np.zeros((b, pw.shape[1] + 1))
    np.cumsum(pw, axis=-1, out=cp[:, 1:])
    n_pos = cp[:, ranked.first + ranked.n_pos] - cp[:, ranked.first]  # (b, m)
    base = cp[:, ranked.first[ranked.row]]
    cp_start = cp[:, ranked.k_start] - base
    # Prevalence matching: negatives weigh the group's share of the class's positives, so every
    # group sees the class's overall prevalence and a scorer blind to the group gets equal AP.
    share = np.divide(n_pos, neg.positives, out=np.zeros_like(n_pos), where=neg.positives > 0)
    pos_above = n_pos[:, ranked.row] - cp_start
    above = pos_above + share[:, ranked.row] * (neg.total[:, ranked.row] - neg.below)
    precision = np.divide(pos_above, above, out=np.zeros_like(above), where=above > 0)
    key = (np.arange(b)[:, None] * m + ranked.row).ravel()

    def per_class(x):
        return np.bincount(key, weights=x.ravel(), minlength=b * m).reshape(b, m)

    n_neg = neg.total
    with np.errstate(divide="ignore", invalid="ignore"):
        ap = per_class(pw * precision) / n_pos
        auc = 0.5 * per_class(pw * (neg.below + neg.at_or_below)) / (n_pos * n_neg)
    ap = np.where(n_pos > 0, ap, np.nan)
    auc = np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)
    return ap, auc, n_pos, n_neg


def group_replicates(*, y_true: np.ndarray, y_score: np.ndarray, groups: list[Group], n_bootstrap: int,
                     seed: int, clip_values: dict[str, np.ndarray] | None = None) -> dict:
    """Per-class AP and AUC of every group: point values and paired bootstrap replicates.

    Returns
    -------
    dict
        ``{"point": {group_index: {"ap": (m,), "auc": (m,), "n_pos": (m,) int}},
        "reps": {group_index: {"ap": (B, m), "auc": (B, m)}}}``; replicate b of every group
        comes from the same resample of the clips. Each ``clip_values[name]`` (shape (n,), e.g.
        1.0 where the top-1 prediction is right) adds its group mean under ``name``.
    """
    clip_values = clip_values or {}
    import warnings

    y = np.asarray(y_true).astype(bool)
    s = np.asarray(y_score, dtype=np.float64)
    n, m = y.shape
    ranked = _rank(np.ascontiguousarray(y.T), np.ascontiguousarray(s.T))
    members = [g.mask.astype(np.float64) for g in groups]
    point, reps = {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ones = np.ones((1, n))
        neg = _NegativeCumulants(ranked, y, ones)
        for gi, member in enumerate(members):
            ap, auc, n_pos, _ = _group_ap_auc(ranked, neg, ones, member)
            point[gi] = {"ap": ap[0], "auc": auc[0], "n_pos": n_pos[0].astype(int)}
            reps[gi] = {"ap": np.empty((n_bootstrap, m)), "auc": np.empty((n_bootstrap, m))}
            for name, v in clip_values.items():
                point[gi][name] = float(v[member > 0].mean()) if member.any() else float("nan")
                reps[gi][name] = np.empty(n_bootstrap)
        if n_bootstrap:
            block = max(1, _BLOCK_ELEMENTS // (n * m))
            draws = _resample_indices(n, n_bootstrap, seed)
            for lo in range(0, n_bootstrap, block):
                hi = min(lo + block, n_bootstrap)
                counts = np.stack([np.bincount(next(draws), minlength=n) for _ in range(lo, hi)]).astype(np.float64)
                neg = _NegativeCumulants(ranked, y, counts)
                for gi, member in enumerate(members):
                    ap, auc, _, _ = _group_ap_auc(ranked, neg, counts, member)
                    reps[gi]["ap"][lo:hi] = ap
                    reps[gi]["auc"][lo:hi] = auc
                    weight = counts @ member
                    for name, v in clip_values.items():
                        reps[gi][name][lo:hi] = np.divide(counts @ (member * v), weight,
                                                          out=np.full(hi - lo, np.nan), where=weight > 0)
    return {"point": point, "reps": reps}


def _class_mean(values: np.ndarray, classes: np.ndarray) -> np.ndarray | float:
    """Mean over the selected classes (last axis); NaN when none is selected or defined."""
    import warnings

    if not classes.any():
        return np.full(values.shape[:-1], np.nan) if values.ndim > 1 else float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values[..., classes], axis=-1)


def group_level(point: dict, reps: dict, classes: np.ndarray) -> dict[str, tuple]:
    """Group mAP, mean AUC and d' over ``classes``: ``{name: (value, replicates)}``."""
    out = {"mAP": (_class_mean(point["ap"], classes), _class_mean(reps["ap"], classes)),
           "mean_auc": (_class_mean(point["auc"], classes), _class_mean(reps["auc"], classes))}
    v, r = out["mean_auc"]
    out["d_prime"] = (float(np.sqrt(2.0) * ndtri(v)), np.sqrt(2.0) * ndtri(r))
    return out


def _p_value(difference: float, replicates: np.ndarray, *, tolerance: float) -> float:
    """Two-sided p-value of H0: |difference| <= tolerance, from the normal approximation to the
    bootstrap distribution of the difference (its standard deviation as the standard error).

    A counting p-value cannot go below 1 / (B + 1), too coarse once a multiple-comparison
    correction divides the level by the number of tests.
    """
    from scipy.stats import norm

    se = float(np.std(replicates, ddof=1)) if replicates.size > 1 else 0.0
    excess = abs(difference) - tolerance
    if se == 0.0:
        return 0.0 if excess > 0 else 1.0
    return float(min(1.0, 2.0 * norm.cdf(-excess / se)))


def _interval(values: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    finite = values[np.isfinite(values)]
    if finite.size < max(10, 0.5 * values.size):  # too many undefined replicates to trust an interval
        return None, None
    alpha = (1 - confidence) / 2
    lo, hi = np.percentile(finite, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


def _metric(value, reps: np.ndarray, confidence: float) -> dict:
    lo, hi = _interval(reps, confidence) if reps.size else (None, None)
    return {"value": finite_or_none(value), "ci_low": lo, "ci_high": hi}


def _disparity(*, metric: str, cls: str | None, columns: tuple[str, ...], group: str, reference: str,
               value: float, ref_value: float, reps: np.ndarray, ref_reps: np.ndarray, n: int, n_ref: int,
               settings: BiasConfig, bootstrap: MetricsConfig) -> dict:
    diff = reps - ref_reps
    ok = np.isfinite(diff)
    lo, hi = _interval(diff, bootstrap.confidence) if diff.size else (None, None)
    p = _p_value(value - ref_value, diff[ok], tolerance=settings.tolerance) if lo is not None else None
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = value / ref_value if ref_value else float("nan")
    return {"metric": metric, "class": cls, "columns": list(columns), "group": group, "reference": reference,
            "value": finite_or_none(value), "reference_value": finite_or_none(ref_value),
            "difference": finite_or_none(value - ref_value), "ratio": finite_or_none(ratio), "ci_low": lo,
            "ci_high": hi, "p_value": p, "p_adjusted": None, "finding": False,
            "insufficient_evidence": False, "n": int(n), "n_reference": int(n_ref)}


def evaluate_bias(*, y_true: np.ndarray, y_score: np.ndarray, class_labels: list[ClassLabel],
                  metadata: pd.DataFrame, settings: BiasConfig, bootstrap: MetricsConfig, prose: str = "",
                  robustness: dict | None = None) -> tuple[dict, dict, dict]:
    """Compute the Bias section and the measured conditions.

    Parameters
    ----------
    y_true : ndarray, shape (n_clips, n_classes)
        0/1 labels.
    y_score : ndarray, shape (n_clips, n_classes)
        Scores.
    class_labels : list of ClassLabel
    metadata : DataFrame
        n_clips rows; group columns.
    settings : factsheet.config.BiasConfig
        The validated ``[bias]`` section (``columns = ()``: every text column, see :func:`group_columns`).
    bootstrap : factsheet.config.MetricsConfig
        Resamples, confidence and seed of every interval (shared with the other sections).
    prose : str
        The config's Bias text, kept beside the computed results.
    robustness : dict, optional
        The evaluated Robustness section; its per-class medians join the per-class table.

    Returns
    -------
    bias : dict
        The Bias section (JSON-able).
    conditions : dict
        ``{"optimal": [...], "poor": [...], "slices": [...]}`` statements with their numbers.
    plots : dict of str to str
        SVG text by plot name.
    """
    y = np.asarray(y_true).astype(bool)
    names = [c.display_name for c in class_labels]
    columns = group_columns(settings, metadata)
    groups, missing = make_groups(metadata, settings, columns=columns)
    single = bool(len(y) and np.all(y.sum(axis=1) == 1))
    top1 = np.argmax(y_score, axis=1)
    clip_values = {"accuracy": y[np.arange(len(y)), top1].astype(np.float64)} if single else None
    res = group_replicates(y_true=y, y_score=y_score, groups=groups, n_bootstrap=bootstrap.bootstrap_resamples,
                           seed=bootstrap.seed, clip_values=clip_values)
    rob_groups = _robustness_by_group(robustness)
    point, reps = res["point"], res["reps"]
    conf = bootstrap.confidence

    group_rows, class_rows = [], []
    for gi, g in enumerate(groups):
        n = int(g.mask.sum())
        insufficient = n < settings.min_group_size
        classes = point[gi]["n_pos"] >= settings.min_positives
        level = group_level(point[gi], reps[gi], classes)
        metrics = {k: _metric(v, r, conf) for k, (v, r) in level.items()}
        if single:
            from factsheet.metrics import single_label_report

            metrics["accuracy"] = _metric(point[gi]["accuracy"], reps[gi]["accuracy"], conf)
            rep = single_label_report(np.argmax(y[g.mask], axis=1), top1[g.mask], n_classes=len(names))
            metrics["macro_f1"] = {"value": finite_or_none(rep.macro_f1), "ci_low": None, "ci_high": None}
        group_rows.append({"columns": list(g.columns), "group": g.name, "n": n, "insufficient_evidence": insufficient,
                           "classes": [names[j] for j in np.flatnonzero(classes)], "metrics": metrics,
                           "robustness": rob_groups.get((g.columns, g.name), {})})
        for j, cname in enumerate(names):
            npos = int(point[gi]["n_pos"][j])
            if npos == 0:
                continue
            class_rows.append({"columns": list(g.columns), "group": g.name, "class": cname, "n_positives": npos,
                               "insufficient_evidence": npos < settings.min_positives or insufficient,
                               "ap": _metric(point[gi]["ap"][j], reps[gi]["ap"][:, j], conf),
                               "auc": _metric(point[gi]["auc"][j], reps[gi]["auc"][:, j], conf)})

    attributes = column_describes_class(y=y, groups=groups)
    disparities = _disparities(groups=groups, point=point, reps=reps, names=names, settings=settings,
                               bootstrap=bootstrap, attributes=attributes, single_label=single)
    tested = [d for d in disparities if d["p_value"] is not None]
    if tested:
        adj = ADJUST[settings.correction](np.array([d["p_value"] for d in tested]))
        for d, pa in zip(tested, adj):
            d["p_adjusted"] = float(pa)
            d["finding"] = bool(pa < 1 - conf and d.get("ci_high") is not None and d["ci_high"] < -settings.tolerance)
    disparities = [d for d in disparities if not d.get("family_only")]

    per_class = _per_class(y, y_score, class_labels, robustness, settings)
    findings = _finding_sentences(disparities, group_rows, settings, bootstrap)
    not_evaluated = list(missing)
    thin = [f"{' & '.join(r['columns'])} = {r['group']} (n = {r['n']})" for r in group_rows
            if r["insufficient_evidence"]]
    if thin:
        not_evaluated.append(f"insufficient evidence (fewer than {settings.min_group_size} clips): " + "; ".join(thin))
    section = {
        "status": "evaluated", "text": prose, "definitions": dict(DEFINITIONS),
        "settings": {"columns": list(columns), "intersections": [list(p) for p in settings.intersections],
                     "condition_columns": list(settings.condition_columns),
                     "exclude_values": list(settings.exclude_values), "min_group_size": settings.min_group_size,
                     "min_positives": settings.min_positives, "tolerance": settings.tolerance,
                     "correction": {"holm": "Holm (family-wise error rate)",
                                    "bh": "Benjamini-Hochberg (false discovery rate)"}[settings.correction],
                     "n_bootstrap": bootstrap.bootstrap_resamples, "confidence": conf, "seed": bootstrap.seed,
                     "n_tests": len(tested), "n_reported": sum(1 for d in disparities if d["p_value"] is not None)},
        "findings": findings, "not_evaluated": not_evaluated,
        "per_class": per_class, "per_category": _per_category(per_class),
        "groups": group_rows, "class_groups": class_rows, "disparities": disparities,
    }
    conditions = _conditions(group_rows, disparities, settings, bootstrap)
    plots = {"bias_groups": groups_svg(section), "bias_per_class": per_class_svg(section)}
    return section, conditions, plots


def column_describes_class(*, y: np.ndarray, groups: list[Group]) -> dict[tuple[tuple[str, ...], int], bool]:
    """(column spec, class) -> whether the column describes the class's events.

    True when >= 90 % of the class's positives fall in some (non-excluded) group of the
    column and < 50 % of its negatives do: voice type describes Speech, not Dog.
    """
    out = {}
    specs: dict[tuple[str, ...], np.ndarray] = {}
    for g in groups:
        specs[g.columns] = specs.get(g.columns, np.zeros(len(g.mask), bool)) | g.mask
    for spec, covered in specs.items():
        for j in range(y.shape[1]):
            pos = y[:, j]
            if pos.any() and (~pos).any():
                out[(spec, j)] = bool(covered[pos].mean() >= 0.9 and covered[~pos].mean() < 0.5)
    return out


def _robustness_by_group(robustness: dict | None) -> dict:
    """(columns, group) -> {norm: median perturbation and SNR of the attacked clips in that group}."""
    out: dict = {}
    if not robustness or robustness.get("status") != "evaluated":
        return out
    for norm, block in robustness["hopskipjump"].items():
        for g in block.get("by_group", []):
            if g["column"] == "class":
                continue
            out.setdefault(((g["column"],), g["group"]), {})[norm] = {
                "n_attacked": g["n"], "median_int16": None if g["median"] is None else g["median"] * 32768.0,
                "median_snr_db": g["median_snr_db"], "median_snr_db_ci": g["median_snr_db_ci"]}
    return out


def _disparities(*, groups, point, reps, names, settings: BiasConfig, bootstrap: MetricsConfig, attributes: dict,
                 single_label: bool = False) -> list[dict]:
    out = []
    by_spec: dict[tuple[str, ...], list[int]] = {}
    for gi, g in enumerate(groups):
        by_spec.setdefault(g.columns, []).append(gi)
    mp = settings.min_positives
    for spec, idx in by_spec.items():
        if len(idx) < 2:
            continue
        sizes = {gi: int(groups[gi].mask.sum()) for gi in idx}
        ok = [gi for gi in idx if sizes[gi] >= settings.min_group_size]
        for metric, key in (("mAP", "ap"), ("mean_auc", "auc")):
            own = {gi: group_level(point[gi], reps[gi], point[gi]["n_pos"] >= mp)[metric][0] for gi in ok}

            def pair(a, b, key=key):
                common = (point[a]["n_pos"] >= mp) & (point[b]["n_pos"] >= mp)
                return (_class_mean(point[a][key], common), _class_mean(point[b][key], common),
                        _class_mean(reps[a][key], common), _class_mean(reps[b][key], common), int(common.sum()))

            out += _compare_to_best(vals={gi: v for gi, v in own.items() if np.isfinite(v)}, idx=idx, sizes=sizes,
                                    groups=groups, metric=metric, cls=None, pair=pair, spec=spec, settings=settings,
                                    bootstrap=bootstrap)
        if single_label:
            def pair_acc(a, b):
                return point[a]["accuracy"], point[b]["accuracy"], reps[a]["accuracy"], reps[b]["accuracy"], 1

            vals = {gi: point[gi]["accuracy"] for gi in ok if np.isfinite(point[gi]["accuracy"])}
            out += _compare_to_best(vals=vals, idx=idx, sizes=sizes, groups=groups, metric="accuracy", cls=None,
                                    pair=pair_acc, spec=spec, settings=settings, bootstrap=bootstrap)
        for j, cname in enumerate(names):
            if not attributes.get((spec, j), False):
                continue
            pos = {gi: int(point[gi]["n_pos"][j]) for gi in idx}
            ok_c = [gi for gi in idx if pos[gi] >= mp and sizes[gi] >= settings.min_group_size]
            if len(ok_c) < 2:
                continue
            for key in CLASS_METRICS:
                def pair(a, b, j=j, key=key):
                    return point[a][key][j], point[b][key][j], reps[a][key][:, j], reps[b][key][:, j], 1

                vals = {gi: point[gi][key][j] for gi in ok_c if np.isfinite(point[gi][key][j])}
                out += _compare_to_best(vals=vals, idx=[gi for gi in idx if pos[gi] > 0], sizes=pos, groups=groups,
                                        metric=key, cls=cname, pair=pair, spec=spec, settings=settings,
                                        bootstrap=bootstrap)
    return out


def _compare_to_best(*, vals, idx, sizes, groups, metric, cls, pair, spec, settings, bootstrap) -> list[dict]:
    """Every group against the best one (``vals``: each group's own value), plus as
    ``{"family_only": True}`` rows the p-values of every other pair: the reference is chosen
    after looking, so the correction must cover all pairs of the column, not only those reported.

    ``pair(a, b) -> (value_a, value_b, replicates_a, replicates_b, n_classes)`` compares two
    groups on common ground (for group means: the classes both have enough positives of).
    """
    if not vals:
        return []
    ref = max(vals, key=lambda gi: (vals[gi], -gi))
    rows = []
    others = sorted(gi for gi in vals if gi != ref)
    for a_i, a in enumerate(others):
        for b in others[a_i + 1:]:
            va, vb, ra, rb, k = pair(a, b)
            diff = ra - rb
            ok_d = diff[np.isfinite(diff)]
            if k and ok_d.size > 1 and np.isfinite(va - vb):
                rows.append({"family_only": True, "p_value": _p_value(va - vb, ok_d, tolerance=settings.tolerance)})
    for gi in idx:
        if gi == ref:
            continue
        va, vr, ra, rr, k = pair(gi, ref) if gi in vals else (None, None, None, None, 0)
        if gi not in vals or not k or not np.isfinite(va - vr):
            rows.append({"metric": metric, "class": cls, "columns": list(spec), "group": groups[gi].name,
                         "reference": groups[ref].name, "n_classes": int(k), "value": None,
                         "reference_value": finite_or_none(vals[ref]), "difference": None, "ratio": None,
                         "ci_low": None, "ci_high": None, "p_value": None, "p_adjusted": None, "finding": False,
                         "insufficient_evidence": True, "n": int(sizes[gi]), "n_reference": int(sizes[ref])})
            continue
        row = _disparity(metric=metric, cls=cls, columns=spec, group=groups[gi].name, reference=groups[ref].name,
                         value=va, ref_value=vr, reps=ra, ref_reps=rr, n=sizes[gi], n_ref=sizes[ref],
                         settings=settings, bootstrap=bootstrap)
        row["n_classes"] = int(k)
        rows.append(row)
    return rows


def _per_class(y, y_score, class_labels, robustness, settings) -> list[dict]:
    from factsheet.metrics import tagging_metrics

    m = tagging_metrics(y.astype(np.uint8), y_score)
    rob = {}
    if robustness and robustness.get("status") == "evaluated":
        for norm, block in robustness["hopskipjump"].items():
            for g in block.get("by_group", []):
                if g["column"] == "class":
                    rob.setdefault(g["group"], {})[norm] = g
    rows = []
    for j, c in enumerate(class_labels):
        r = rob.get(c.display_name, {})
        rows.append({"label": c.display_name, "category": c.category, "support": int(m.support[j]),
                     "ap": finite_or_none(m.per_class_ap[j]), "auc": finite_or_none(m.per_class_auc[j]),
                     "d_prime": finite_or_none(m.per_class_d_prime[j]),
                     "robustness": {norm: {"n_attacked": g["n"], "median_int16": (None if g["median"] is None
                                                                                  else g["median"] * 32768.0),
                                           "median_snr_db": g["median_snr_db"]} for norm, g in r.items()},
                     "worst": False})
    ranked = sorted((r for r in rows if r["ap"] is not None), key=lambda r: r["ap"])
    for r in ranked[: settings.worst_classes]:
        r["worst"] = True
    return rows


def _per_category(per_class: list[dict]) -> list[dict]:
    cats: dict[str, list[dict]] = {}
    for r in per_class:
        cats.setdefault(r["category"] or "(none)", []).append(r)
    out = []
    for cat, rows in cats.items():
        ap = [r["ap"] for r in rows if r["ap"] is not None]
        auc = [r["auc"] for r in rows if r["auc"] is not None]
        out.append({"category": cat, "classes": [r["label"] for r in rows], "support": sum(r["support"] for r in rows),
                    "mean_ap": float(np.mean(ap)) if ap else None, "mean_auc": float(np.mean(auc)) if auc else None})
    return sorted(out, key=lambda r: (r["mean_ap"] is None, r["mean_ap"] or 0.0))


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
    if not out:
        n_tests = sum(1 for d in disparities if d["p_value"] is not None)
        out.append(f"No disparity was a finding: none of the {n_tests} comparisons with the best group showed a "
                   f"group worse than "
                   f"it by more than {settings.tolerance:g} with "
                   f"{int(bootstrap.confidence * 100)}% confidence after "
                   f"{'Holm' if settings.correction == 'holm' else 'Benjamini-Hochberg'} correction.")
    return out


def _conditions(group_rows, disparities, settings: BiasConfig, bootstrap: MetricsConfig) -> dict:
    """Optimal / poor conditions from measured slices of the condition columns (group-level mAP)."""
    optimal, poor, slices = [], [], []
    for col in settings.condition_columns:
        rows = [r for r in group_rows if r["columns"] == [col] and not r["insufficient_evidence"]]
        rows = [r for r in rows if r["metrics"]["mAP"]["value"] is not None]
        if len(rows) < 2:
            continue
        for r in rows:
            slices.append({"column": col, "slice": r["group"], "n": r["n"], "mAP": r["metrics"]["mAP"]})
        best = max(rows, key=lambda r: r["metrics"]["mAP"]["value"])
        bm = best["metrics"]["mAP"]
        worse = [d for d in disparities if d["columns"] == [col] and d["metric"] == "mAP" and d["class"] is None
                 and d["finding"]]
        ci = f"{int(bootstrap.confidence * 100)}% CI"
        if worse:
            optimal.append(f"{col} = {best['group']}: mAP {_fmt(bm['value'])} ({ci} {_fmt(bm['ci_low'])} to "
                           f"{_fmt(bm['ci_high'])}, n = {best['n']}), the best measured {col} slice.")
            for d in sorted(worse, key=lambda d: d["difference"]):
                poor.append(f"{col} = {d['group']}: mAP falls from {_fmt(d['reference_value'])} ({col} = "
                            f"{d['reference']}) to {_fmt(d['value'])} (n = {d['n']}; difference "
                            f"{_fmt(d['difference'])}, {ci} {_fmt(d['ci_low'])} to {_fmt(d['ci_high'])}).")
        else:
            span = ", ".join(f"{r['group']}: {_fmt(r['metrics']['mAP']['value'])} (n = {r['n']})" for r in rows)
            optimal.append(f"{col}: no slice differs from the best with confidence (mAP {span}).")
    return {"optimal": optimal, "poor": poor, "slices": slices}


# -- plots ------------------------------------------------------------------------------

def groups_svg(section: dict) -> str:
    """Group mAP with CI whiskers, one panel per single column (findings in red)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = []
    for r in section["groups"]:
        if len(r["columns"]) == 1 and r["columns"] not in cols:
            cols.append(r["columns"])
    flagged = {(tuple(d["columns"]), d["group"]) for d in section["disparities"] if d["finding"]}
    with matplotlib.rc_context({"svg.hashsalt": "audio-factsheet", "svg.fonttype": "path", "font.size": 8}):
        fig, axes = plt.subplots(1, max(1, len(cols)), figsize=(2.6 * max(1, len(cols)), 2.8), squeeze=False)
        for ax, col in zip(axes[0], cols):
            rows = [r for r in section["groups"] if r["columns"] == col]
            x = np.arange(len(rows))
            v = np.array([np.nan if r["metrics"]["mAP"]["value"] is None else r["metrics"]["mAP"]["value"]
                          for r in rows])
            lo = np.array([np.nan if r["metrics"]["mAP"]["ci_low"] is None else r["metrics"]["mAP"]["ci_low"]
                           for r in rows])
            hi = np.array([np.nan if r["metrics"]["mAP"]["ci_high"] is None else r["metrics"]["mAP"]["ci_high"]
                           for r in rows])
            colors = ["#c44e52" if (tuple(col), r["group"]) in flagged else
                      ("#bbbbbb" if r["insufficient_evidence"] else "#4c72b0") for r in rows]
            ax.bar(x, v, color=colors)
            ax.errorbar(x, v, yerr=[np.nan_to_num(v - lo), np.nan_to_num(hi - v)], fmt="none", ecolor="black",
                        capsize=2, lw=0.8)
            ax.set_xticks(x, [r["group"] for r in rows], rotation=45, ha="right")
            ax.set_ylim(0, 1)
            ax.set_title(" & ".join(col))
            ax.set_ylabel("group mAP")
        fig.tight_layout()
        return figure_svg(fig)


def per_class_svg(section: dict) -> str:
    """Per-class AP sorted, coloured by top-level category; worst classes marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted((r for r in section["per_class"] if r["ap"] is not None), key=lambda r: r["ap"])
    cats = sorted({r["category"] or "(none)" for r in rows})
    palette = dict(zip(cats, plt.cm.tab10(np.arange(len(cats)) % 10)))
    with matplotlib.rc_context({"svg.hashsalt": "audio-factsheet", "svg.fonttype": "path", "font.size": 8}):
        fig, ax = plt.subplots(figsize=(6.0, 0.25 * len(rows) + 1.2))
        y = np.arange(len(rows))
        ax.barh(y, [r["ap"] for r in rows], color=[palette[r["category"] or "(none)"] for r in rows])
        ax.set_yticks(y, [("* " if r["worst"] else "") + r["label"] for r in rows])
        ax.set_xlim(0, 1)
        ax.set_xlabel("AP")
        ax.set_title("Per-class AP, sorted (* = worst classes); colour = category")
        handles = [plt.Rectangle((0, 0), 1, 1, color=palette[c]) for c in cats]
        ax.legend(handles, cats, fontsize=6, loc="lower right")
        fig.tight_layout()
        return figure_svg(fig)


def group_columns(settings: BiasConfig, metadata: pd.DataFrame) -> tuple[str, ...]:
    """The single columns to slice by: ``settings.columns``, or when none are named every text column of
    ``metadata`` that is not ``clip_id`` or a condition column."""
    if settings.columns:
        return tuple(settings.columns)
    return tuple(c for c in metadata.columns if c not in ("clip_id",) and not pd.api.types.is_numeric_dtype(metadata[c])
                 and c not in settings.condition_columns)
