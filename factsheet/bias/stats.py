"""The numbers of the Bias section: group metrics over one paired bootstrap, disparities and their tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from factsheet.bias.groups import Group
from factsheet.config import BiasConfig, MetricsConfig
from factsheet import metrics as _metrics
from factsheet.metrics import (_block_weights, _count_blocks, _count_plan, _CountPlan, _jackknife_blocks, _Ranked,
                               _rank_blocks, _run_blocks, bca_interval, finite_or_none, newcombe_difference_interval,
                               percentile_interval)
from factsheet.significance import DIFFERENCE_INTERVAL, benjamini_hochberg, holm, normal_p_value


GROUP_METRICS = ("mAP", "mean_auc", "d_prime")


TESTED_GROUP_METRICS = ("mAP", "mean_auc")  # d' is a monotone function of mean AUC: testing it would double-count


CLASS_METRICS = ("ap", "auc")


_holm = holm  # the names the Bias section's tests import
_bh = benjamini_hochberg


@dataclass(frozen=True, eq=False)
class _NegativeCumulants:
    """Weight of each class's negatives below / at-or-below every positive's tie group, for b replicates.

    Shared by all groups of one bootstrap block: a group only changes which positives count,
    so each group then costs O(replicates x its positives) instead of O(replicates x classes x clips).
    Built by :func:`_negative_cumulants`; every value is an integer held exactly in float64.

    Attributes
    ----------
    below, at_or_below : ndarray of float64, shape (b, K)
        Negative weight of class ``ranked.row[k]`` strictly below / at or below the tie group of
        positive ``k`` (all positives of the class, in the order of :class:`factsheet.metrics._Ranked`).
    total : ndarray of float64, shape (b, m)
        Negative weight of each class.
    positives : ndarray of float64, shape (b, m)
        Weight of all positives of each class.
    """

    below: np.ndarray
    at_or_below: np.ndarray
    total: np.ndarray
    positives: np.ndarray


def _negative_cumulants(ranked: _Ranked, plan: _CountPlan, counts: np.ndarray, *,
                        total: int | None = None) -> _NegativeCumulants:
    """The negative weights of :class:`_NegativeCumulants` from integer clip counts.

    The clips' cumulative weight is read only at the edges of the positives' tie groups
    (:func:`factsheet.metrics._block_weights`: one sparse product for the whole block, as for the
    ungrouped bootstrap), never as a (classes x clips) array per replicate; the positives below
    or at or below a group are then subtracted. Exact integer arithmetic throughout.

    Parameters
    ----------
    ranked : factsheet.metrics._Ranked
    plan : factsheet.metrics._CountPlan
        ``_count_plan(ranked)``.
    counts : ndarray of ``plan.count_dtype``, shape (b, n)
        Times each clip was drawn, one row per replicate; each row sums to ``total`` (the full data:
        a row of ones).
    total : int, optional
        The row sum, by default ``n`` (a bootstrap draw); ``n - k`` for rows that leave ``k`` clips out.

    Returns
    -------
    _NegativeCumulants
    """
    n = ranked.shape[1] if total is None else int(total)
    w = _block_weights(ranked, plan, counts, total=n)
    # Weight of all clips below a group: base + cw_start (at or below: base + cz[je]); positives
    # of the class below it: cp_start - cp_first (at or below: cp[k_stop] - cp_first).
    offset = np.take(w.base + w.cp_first, ranked.row, axis=1)
    below = offset + w.cw_start
    below -= w.cp_start
    at_or_below = offset + np.take(w.cz, plan.je, axis=1)
    at_or_below -= np.take(w.cp, ranked.k_stop, axis=1)
    positives = w.npos.astype(np.float64)
    return _NegativeCumulants(below=below.astype(np.float64), at_or_below=at_or_below.astype(np.float64),
                              total=n - positives, positives=positives)


@dataclass(frozen=True, eq=False)
class _Members:
    """A group's positives among the ``K`` positives of a :class:`factsheet.metrics._Ranked`.

    Positives outside the group weigh 0, so they are left out: their terms in the per-class
    sums would be exact zeros.

    Attributes
    ----------
    k : ndarray of intp, shape (K_g,)
        Indices (into the K positives) of the group's positives.
    clip, row : ndarray, shape (K_g,)
        Their clip and class.
    weight : ndarray of float64, shape (K_g,)
        Their membership weight (1.0 for a mask).
    first, end : ndarray of intp, shape (m,)
        Index (into the group's positives) of each class's first one and one past its last.
    k_start : ndarray of intp, shape (K_g,)
        The group's positives before each one's tie group (of its class, plus ``first`` of it).
    """

    k: np.ndarray
    clip: np.ndarray
    row: np.ndarray
    weight: np.ndarray
    first: np.ndarray
    end: np.ndarray
    k_start: np.ndarray


def _members(ranked: _Ranked, member: np.ndarray) -> _Members:
    """The group with clip weights ``member`` (shape (n,), non-negative) as :class:`_Members`."""
    k = np.flatnonzero(member[ranked.clip] != 0)
    clip = ranked.clip[k]
    return _Members(k=k, clip=clip, row=ranked.row[k], weight=member[clip],
                    first=np.searchsorted(k, ranked.first), end=np.searchsorted(k, ranked.first + ranked.n_pos),
                    k_start=np.searchsorted(k, ranked.k_start[k]))


def _group_ap_auc(ranked: _Ranked, neg: _NegativeCumulants, counts: np.ndarray, group: _Members):
    """AP, AUC, positive and negative weight per class of one group, for b replicates.

    The group's positives of class c (weight = times drawn, 0 outside the group) against
    every negative of c (weight = times drawn; for AP also times the group's share of the
    class's positives): the formulas of :func:`factsheet.metrics._ap_auc_weighted`, checked
    against scikit-learn with sample weights in the tests.

    Returns
    -------
    ap, auc, n_pos, n_neg : ndarray of float64, shape (b, m)
    """
    m, _ = ranked.shape
    b = counts.shape[0]
    pw = counts[:, group.clip] * group.weight  # (b, K_g)
    cp = np.zeros((b, pw.shape[1] + 1))
    np.cumsum(pw, axis=-1, out=cp[:, 1:])
    n_pos = cp[:, group.end] - cp[:, group.first]  # (b, m)
    cp_start = cp[:, group.k_start] - cp[:, group.first[group.row]]
    below = neg.below[:, group.k]
    # Prevalence matching: negatives weigh the group's share of the class's positives, so every
    # group sees the class's overall prevalence and a scorer blind to the group gets equal AP.
    share = np.divide(n_pos, neg.positives, out=np.zeros_like(n_pos), where=neg.positives > 0)
    pos_above = n_pos[:, group.row] - cp_start
    above = pos_above + share[:, group.row] * (neg.total[:, group.row] - below)
    precision = np.divide(pos_above, above, out=np.zeros_like(above), where=above > 0)
    key = (np.arange(b)[:, None] * m + group.row).ravel()

    def per_class(x):
        return np.bincount(key, weights=x.ravel(), minlength=b * m).reshape(b, m)

    n_neg = neg.total
    with np.errstate(divide="ignore", invalid="ignore"):
        ap = per_class(pw * precision) / n_pos
        auc = 0.5 * per_class(pw * (below + neg.at_or_below[:, group.k])) / (n_pos * n_neg)
    ap = np.where(n_pos > 0, ap, np.nan)
    auc = np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)
    return ap, auc, n_pos, n_neg


def _point_values(ranked: _Ranked, plan: _CountPlan, members: list[np.ndarray], chosen: list[_Members],
                  clip_values: dict[str, np.ndarray]) -> dict:
    """The point values of :func:`group_replicates` (every clip counted once), by group index."""
    ones = np.ones((1, ranked.shape[1]), dtype=plan.count_dtype)
    neg = _negative_cumulants(ranked, plan, ones)
    point = {}
    for gi, member in enumerate(members):
        ap, auc, n_pos, _ = _group_ap_auc(ranked, neg, ones, chosen[gi])
        point[gi] = {"ap": ap[0], "auc": auc[0], "n_pos": n_pos[0].astype(int)}
        for name, v in clip_values.items():
            point[gi][name] = float(v[member > 0].mean()) if member.any() else float("nan")
    return point


def group_replicates(*, y_true: np.ndarray, y_score: np.ndarray, groups: list[Group], n_bootstrap: int,
                     seed: int, clip_values: dict[str, np.ndarray] | None = None, jackknife: bool = False) -> dict:
    """Per-class AP and AUC of every group: point values and paired bootstrap replicates.

    Each class is sorted once; a replicate is the clip counts of one draw of
    :func:`factsheet.metrics._resample_indices`, evaluated exactly from the counts at the
    positives' tie-group edges (:func:`_negative_cumulants`, shared by all groups), in blocks
    of replicates on worker threads (the results do not depend on the thread count).

    Parameters
    ----------
    y_true : ndarray, shape (n_clips, n_classes)
        0/1 labels.
    y_score : ndarray, shape (n_clips, n_classes)
        Finite scores.
    groups : list of Group
    n_bootstrap, seed : int
        Resamples and seed of :func:`factsheet.metrics._resample_indices`.
    clip_values : dict of str to ndarray, optional
        Per-clip values whose group means are resampled too.
    jackknife : bool, default False
        Also the per-class AP and AUC of every group with each clip left out in turn (above
        :data:`factsheet.metrics.JACKKNIFE_GROUPS` clips, each of that many groups of clips
        ``{i : i % G == g}``), for the acceleration of :func:`factsheet.metrics.bca_interval`;
        evaluated by the same kernel on rows of counts with zeros at the clips left out.

    Returns
    -------
    dict
        ``{"point": {group_index: {"ap": (m,), "auc": (m,), "n_pos": (m,) int}},
        "reps": {group_index: {"ap": (B, m), "auc": (B, m)}}}``; replicate b of every group
        comes from the same resample of the clips. Each ``clip_values[name]`` (shape (n,), e.g.
        1.0 where the top-1 prediction is right) adds its group mean under ``name``. With
        ``jackknife``, ``"jack": {group_index: {"ap": (J, m), "auc": (J, m)}}`` (``J`` = clips,
        or groups of clips).
    """
    clip_values = clip_values or {}
    import warnings

    y = np.asarray(y_true).astype(bool)
    n, m = y.shape
    ranked, _ = _rank_blocks(y, np.asarray(y_score, dtype=np.float64))
    plan = _count_plan(ranked)
    members = [g.mask.astype(np.float64) for g in groups]
    chosen = [_members(ranked, member) for member in members]
    reps = {gi: {"ap": np.empty((n_bootstrap, m)), "auc": np.empty((n_bootstrap, m)),
                 **{name: np.empty(n_bootstrap) for name in clip_values}} for gi in range(len(groups))}

    def evaluate(lo: int, counts: np.ndarray) -> None:
        hi = lo + counts.shape[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            neg = _negative_cumulants(ranked, plan, counts)
            for gi, member in enumerate(members):
                ap, auc, _, _ = _group_ap_auc(ranked, neg, counts, chosen[gi])
                reps[gi]["ap"][lo:hi], reps[gi]["auc"][lo:hi] = ap, auc
                weight = counts @ member
                for name, v in clip_values.items():
                    reps[gi][name][lo:hi] = np.divide(counts @ (member * v), weight,
                                                      out=np.full(hi - lo, np.nan), where=weight > 0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        point = _point_values(ranked, plan, members, chosen, clip_values)
        if n_bootstrap:
            _run_blocks(evaluate, _count_blocks(n, n_bootstrap, seed, plan.count_dtype),
                        -(-n_bootstrap // _metrics._REPLICATE_BLOCK))
        out = {"point": point, "reps": reps}
        if jackknife and n >= 2:
            out["jack"] = _group_jackknife(ranked, plan, chosen)
    return out


def _group_jackknife(ranked: _Ranked, plan: _CountPlan, chosen: list[_Members]) -> dict:
    """Per-class AP and AUC of every group with each clip (or group of clips) left out: see
    :func:`group_replicates` (``jackknife=True``)."""
    n = ranked.shape[1]
    g = min(_metrics.JACKKNIFE_GROUPS, n)
    q, r = divmod(n, g)  # leave-out groups 0..r-1 hold q + 1 clips, the others q: one row sum per part
    jack = {gi: {"ap": np.empty((g, ranked.shape[0])), "auc": np.empty((g, ranked.shape[0]))}
            for gi in range(len(chosen))}
    for left, size in ((np.arange(r), q + 1), (np.arange(r, g), q)):
        if not left.size:
            continue

        def evaluate(lo: int, counts: np.ndarray, left=left, size=size) -> None:
            start = int(left[0]) + lo
            neg = _negative_cumulants(ranked, plan, counts, total=n - size)
            for gi, group in enumerate(chosen):
                ap, auc, _, _ = _group_ap_auc(ranked, neg, counts, group)
                jack[gi]["ap"][start:start + counts.shape[0]] = ap
                jack[gi]["auc"][start:start + counts.shape[0]] = auc

        _run_blocks(evaluate, _jackknife_blocks(n, left, g, plan.count_dtype),
                    -(-left.size // _metrics._REPLICATE_BLOCK))
    return jack


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


def group_level_jackknife(jack: dict, classes: np.ndarray) -> dict[str, np.ndarray]:
    """Group mAP, mean AUC and d' over ``classes`` with each clip (group of clips) left out:
    :func:`group_level` on the ``"jack"`` values of :func:`group_replicates`, shape (J,) each."""
    auc = _class_mean(jack["auc"], classes)
    return {"mAP": _class_mean(jack["ap"], classes), "mean_auc": auc, "d_prime": np.sqrt(2.0) * ndtri(auc)}


_p_value = normal_p_value


#: The bias rule of :func:`factsheet.metrics.percentile_interval` (see there for why).
_BIAS_INTERVAL = DIFFERENCE_INTERVAL


def _interval(values: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    """The bootstrap interval of a group metric or a difference; ``(None, None)`` when refused."""
    iv = percentile_interval(values, confidence=confidence, **_BIAS_INTERVAL)
    return (iv.low, iv.high) if iv.defined else (None, None)


def _metric(value, reps: np.ndarray, confidence: float) -> dict:
    lo, hi = _interval(reps, confidence)
    return {"value": finite_or_none(value), "ci_low": lo, "ci_high": hi}


def _bca_metric(value, reps: np.ndarray, jack: np.ndarray, confidence: float) -> dict:
    """A group metric with its BCa interval (:func:`factsheet.metrics.bca_interval`): refused (null
    bounds) as :func:`_interval` refuses (fewer than 10, or than half, of the replicates finite), and
    as BCa refuses (a non-finite estimate or leave-out value, an estimate outside the central
    ``confidence`` range of its own replicates)."""
    values = np.asarray(reps, dtype=float)
    usable = int(np.isfinite(values).sum())
    rule = _BIAS_INTERVAL
    if usable < max(rule["min_used"], rule["min_used_fraction"] * values.size) or not np.isfinite(value):
        return {"value": finite_or_none(value), "ci_low": None, "ci_high": None}
    iv = bca_interval(values, estimate=float(value), jackknife=jack, confidence=confidence)
    lo, hi = (iv.low, iv.high) if iv.defined else (None, None)
    return {"value": finite_or_none(value), "ci_low": lo, "ci_high": hi}


@dataclass(frozen=True)
class _Compared:
    """What a disparity row compares: a metric (of one class, or of the group), within one grouping.

    Attributes
    ----------
    metric : str
        ``"mAP"``, ``"mean_auc"``, ``"accuracy"``, or a per-class metric of :data:`CLASS_METRICS`.
    cls : str or None
        The class of a per-class metric.
    columns : tuple of str
        The metadata column(s) the groups are defined by.
    """

    metric: str
    cls: str | None
    columns: tuple[str, ...]


@dataclass(frozen=True)
class _Side:
    """One group of a comparison: its name, value, bootstrap replicates (shape (B,)) and size; for a
    proportion (accuracy), ``successes`` of ``n`` (the value is their ratio)."""

    name: str
    value: float
    reps: np.ndarray
    n: int
    successes: int | None = None


def _disparity(*, compared: _Compared, group: _Side, reference: _Side, settings: BiasConfig,
               bootstrap: MetricsConfig) -> dict:
    """A group against the reference group: difference, ratio, interval of the difference, p-value.

    The interval is the percentile interval of the paired replicates of the difference, except for two
    proportions (both sides with ``successes``: accuracy), which get Newcombe's hybrid score interval
    (:func:`factsheet.metrics.newcombe_difference_interval`; the groups of a column are disjoint, so the
    proportions are independent): the percentile interval under-covered a gap between accuracies near 0.9-0.97
    (``bench/coverage.py --studies accuracy``). The p-value comes from the replicates either way, and only
    when their interval is defined.
    """
    diff = group.reps - reference.reps
    ok = np.isfinite(diff)
    lo, hi = _interval(diff, bootstrap.confidence)
    difference = group.value - reference.value
    p = _p_value(difference, diff[ok], tolerance=settings.tolerance) if lo is not None else None
    if lo is not None and group.successes is not None and reference.successes is not None:
        lo, hi = newcombe_difference_interval(group.successes, group.n, reference.successes, reference.n,
                                              confidence=bootstrap.confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = group.value / reference.value if reference.value else float("nan")
    return {"metric": compared.metric, "class": compared.cls, "columns": list(compared.columns), "group": group.name,
            "reference": reference.name, "value": finite_or_none(group.value),
            "reference_value": finite_or_none(reference.value), "difference": finite_or_none(difference),
            "ratio": finite_or_none(ratio), "ci_low": lo, "ci_high": hi, "p_value": p, "p_adjusted": None,
            "finding": False, "insufficient_evidence": False, "n": int(group.n), "n_reference": int(reference.n)}


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

            vals = {gi: v for gi, v in own.items() if np.isfinite(v)}
            out += _compare_to_best(_Compared(metric, None, spec), vals=vals, idx=idx, sizes=sizes, groups=groups,
                                    pair=pair, settings=settings, bootstrap=bootstrap)
        if single_label:
            def pair_acc(a, b):
                return point[a]["accuracy"], point[b]["accuracy"], reps[a]["accuracy"], reps[b]["accuracy"], 1

            vals = {gi: point[gi]["accuracy"] for gi in ok if np.isfinite(point[gi]["accuracy"])}
            out += _compare_to_best(_Compared("accuracy", None, spec), vals=vals, idx=idx, sizes=sizes, groups=groups,
                                    pair=pair_acc, settings=settings, bootstrap=bootstrap,
                                    successes={gi: point[gi]["n_correct"] for gi in idx})
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
                out += _compare_to_best(_Compared(key, cname, spec), vals=vals, idx=[gi for gi in idx if pos[gi] > 0],
                                        sizes=pos, groups=groups, pair=pair, settings=settings, bootstrap=bootstrap)
    return out


def _compare_to_best(compared: _Compared, *, vals, idx, sizes, groups, pair, settings, bootstrap,
                     successes: dict | None = None) -> list[dict]:
    """Every group against the best one (``vals``: each group's own value), plus as
    ``{"family_only": True}`` rows the p-values of every other pair: the reference is chosen
    after looking, so the correction must cover all pairs of the column, not only those reported.

    ``pair(a, b) -> (value_a, value_b, replicates_a, replicates_b, n_classes)`` compares two
    groups on common ground (for group means: the classes both have enough positives of).
    ``successes`` (group index -> count, of ``sizes``): the value is a proportion (accuracy), whose
    difference gets Newcombe's interval (:func:`_disparity`).
    """
    if not vals:
        return []
    ref = max(vals, key=lambda gi: (vals[gi], -gi))
    rows = _family_only_rows(sorted(gi for gi in vals if gi != ref), pair=pair, tolerance=settings.tolerance)
    for gi in idx:
        if gi == ref:
            continue
        va, vr, ra, rr, k = pair(gi, ref) if gi in vals else (None, None, None, None, 0)
        if gi not in vals or not k or not np.isfinite(va - vr):
            rows.append({"metric": compared.metric, "class": compared.cls, "columns": list(compared.columns),
                         "group": groups[gi].name, "reference": groups[ref].name, "n_classes": int(k), "value": None,
                         "reference_value": finite_or_none(vals[ref]), "difference": None, "ratio": None,
                         "ci_low": None, "ci_high": None, "p_value": None, "p_adjusted": None, "finding": False,
                         "insufficient_evidence": True, "n": int(sizes[gi]), "n_reference": int(sizes[ref])})
            continue
        count = successes or {}
        row = _disparity(compared=compared, group=_Side(groups[gi].name, va, ra, sizes[gi], count.get(gi)),
                         reference=_Side(groups[ref].name, vr, rr, sizes[ref], count.get(ref)), settings=settings,
                         bootstrap=bootstrap)
        row["n_classes"] = int(k)
        rows.append(row)
    return rows


def _family_only_rows(others: list[int], *, pair, tolerance: float) -> list[dict]:
    """The p-values of every pair of non-reference groups (testable ones), for the correction only."""
    rows = []
    for a_i, a in enumerate(others):
        for b in others[a_i + 1:]:
            va, vb, ra, rb, k = pair(a, b)
            diff = ra - rb
            ok_d = diff[np.isfinite(diff)]
            if k and ok_d.size > 1 and np.isfinite(va - vb):
                rows.append({"family_only": True, "p_value": _p_value(va - vb, ok_d, tolerance=tolerance)})
    return rows
