"""The numbers of the natural shift: the evaluation dataset (the source) against a second dataset
(the target) on the classes both score, with unpaired bootstrap intervals and prevalence-matched AP.

Unpaired bootstrap: the two datasets hold different clips, so each is resampled on its own, with
its own seed (:func:`shift_seeds`), the same number of times; replicate ``b`` of the gap is
replicate ``b`` of the target minus replicate ``b`` of the source, and its interval is the
percentile interval of those differences (:func:`factsheet.metrics.percentile_interval`).

Prevalence matching: AP depends on how many negatives a class has per positive, so a target with a
different class mix changes AP even when the model ranks the clips exactly as well. The target's
AP is recomputed with each negative of class ``c`` weighted ``w_c = (P_t / N_t) / (P_s / N_s)``
(positives ``P`` and negatives ``N`` of the class in the target ``t`` and the source ``s``): the
weighted target then has the source's positives-to-negatives ratio for every class. Weights are
sample weights in scikit-learn's sense (``average_precision_score(..., sample_weight=w)``); ROC
AUC does not depend on them, so mean AUC and d' are compared as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from factsheet.datasets.base import ClassLabel
from factsheet.metrics import (JACKKNIFE_GROUPS, _ap_auc_weighted, _rank, _resample_indices, bca_interval,
                               bootstrap_tagging_replicates, expanded_confidence, finite_or_none, percentile_interval,
                               tagging_jackknife, tagging_metrics)

#: The raw metrics compared, in order; ``mAP_matched`` (the target's prevalence-matched mAP) follows mAP.
METRICS: tuple[str, ...] = ("mAP", "mean_auc", "d_prime")

#: Elements (replicates x classes x clips) of one block of the prevalence-matched replicates.
_BLOCK_ELEMENTS = 1 << 21


def shift_seeds(*, seed: int, index: int) -> dict[str, int]:
    """The bootstrap seeds of the natural shift's ``index``-th target (0-based).

    The source is resampled with ``seed`` ([metrics] seed: the Performance section's resamples)
    and target ``k`` with ``seed + 1 + k``; each is ``numpy.random.default_rng(seed)`` drawing
    ``rng.integers(0, n, size=n)`` once per replicate (:func:`factsheet.metrics._resample_indices`).

    Returns
    -------
    dict
        ``{"source": int, "target": int}``.
    """
    return {"source": int(seed), "target": int(seed) + 1 + int(index)}


def prevalence_weights(*, positives_target: np.ndarray, negatives_target: np.ndarray, positives_source: np.ndarray,
                       negatives_source: np.ndarray) -> np.ndarray:
    """Weight of each target negative per class that gives the target the source's prevalence.

    Parameters
    ----------
    positives_target, negatives_target, positives_source, negatives_source : ndarray, shape (..., n_classes)
        Positive and negative clip counts (or sums of bootstrap weights) per class.

    Returns
    -------
    ndarray of float64, shape (..., n_classes)
        ``(P_t / N_t) / (P_s / N_s)``, unitless; NaN where a count is 0 (the class is not evaluable
        in one of the two sets).
    """
    pt, nt, ps, ns = (np.asarray(a, dtype=np.float64)
                      for a in (positives_target, negatives_target, positives_source, negatives_source))
    ok = (pt > 0) & (nt > 0) & (ps > 0) & (ns > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = (pt * ns) / (nt * ps)
    return np.where(ok, w, np.nan)


def matched_ap(*, y_target: np.ndarray, s_target: np.ndarray, counts_target: np.ndarray,
               negative_weight: np.ndarray, ranked=None) -> np.ndarray:
    """Per-class AP of the target with clip weights ``counts`` and class ``c``'s negatives weighted ``w_c``.

    Parameters
    ----------
    y_target : ndarray, shape (n_clips, n_classes)
        0/1 labels of the target.
    s_target : ndarray, shape (n_clips, n_classes)
        Finite scores of the target.
    counts_target : ndarray, shape (b, n_clips)
        Weight of each clip per replicate (times it was drawn; ones for the full set).
    negative_weight : ndarray, shape (b, n_classes)
        ``w_c`` per replicate (:func:`prevalence_weights`); NaN: the class is not evaluable there.
    ranked : optional
        ``factsheet.metrics._rank(y_target.T, s_target.T)`` if already at hand.

    Returns
    -------
    ndarray of float64, shape (b, n_classes)
        AP (unitless, 0 to 1) with sample weight ``counts * (1 if positive else w_c)``: scikit-learn's
        ``average_precision_score`` with that ``sample_weight``; NaN where ``w_c`` is NaN.
    """
    y = np.asarray(y_target).astype(bool)
    if ranked is None:
        ranked = _rank(np.ascontiguousarray(y.T), np.ascontiguousarray(np.asarray(s_target, dtype=np.float64).T))
    counts = np.asarray(counts_target, dtype=np.float64)
    ok = np.isfinite(negative_weight)
    w = np.where(ok, negative_weight, 0.0)
    weights = counts[:, None, :] * np.where(y.T[None, :, :], 1.0, w[:, :, None])  # (b, m, n)
    ap, _, _, _ = _ap_auc_weighted(ranked, weights)
    return np.where(ok, ap, np.nan)


def _mean_over_defined(ap: np.ndarray) -> np.ndarray:
    """Mean over the last axis of the defined values; NaN where none is."""
    ok = np.isfinite(ap)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, ap, 0.0).sum(axis=-1) / ok.sum(axis=-1)


def matched_map_replicates(*, y_source: np.ndarray, y_target: np.ndarray, s_target: np.ndarray, n_resamples: int,
                           seeds: dict[str, int]) -> np.ndarray:
    """Bootstrap replicates of the target's prevalence-matched mAP.

    Replicate ``b`` draws the source's and the target's clips with their own seeds (the same draws
    as :func:`factsheet.metrics.bootstrap_tagging_replicates` with those seeds), takes each class's
    positives and negatives in both resamples, and recomputes the weights and the matched AP of
    the target resample: the statistic is recomputed on each pair of resamples.

    Parameters
    ----------
    y_source : ndarray, shape (n_source, n_classes)
    y_target : ndarray, shape (n_target, n_classes)
    s_target : ndarray, shape (n_target, n_classes)
    n_resamples : int
    seeds : dict
        ``{"source": int, "target": int}`` (:func:`shift_seeds`).

    Returns
    -------
    ndarray of float64, shape (n_resamples,)
        Unitless, 0 to 1; NaN where no class is evaluable in both resamples.
    """
    ys, yt = np.asarray(y_source, dtype=np.float64), np.asarray(y_target).astype(bool)
    ranked = _rank(np.ascontiguousarray(yt.T), np.ascontiguousarray(np.asarray(s_target, dtype=np.float64).T))
    n_s, n_t, m = ys.shape[0], yt.shape[0], yt.shape[1]
    draws_s, draws_t = _resample_indices(n_s, n_resamples, seeds["source"]), _resample_indices(n_t, n_resamples,
                                                                                                seeds["target"])
    step = max(1, _BLOCK_ELEMENTS // max(1, m * n_t))
    out = np.empty(n_resamples)
    for lo in range(0, n_resamples, step):
        width = min(step, n_resamples - lo)
        cs = np.stack([np.bincount(next(draws_s), minlength=n_s) for _ in range(width)]).astype(np.float64)
        ct = np.stack([np.bincount(next(draws_t), minlength=n_t) for _ in range(width)]).astype(np.float64)
        ps, pt = cs @ ys, ct @ yt.astype(np.float64)
        w = prevalence_weights(positives_target=pt, negatives_target=n_t - pt, positives_source=ps,
                               negatives_source=n_s - ps)
        ap = matched_ap(y_target=yt, s_target=s_target, counts_target=ct, negative_weight=w, ranked=ranked)
        out[lo:lo + width] = _mean_over_defined(ap)
    return out


def _leave_out_blocks(n: int, step: int):
    """Clip weights with each clip (or, above ``JACKKNIFE_GROUPS`` clips, each group ``{i : i % g == k}``) left
    out in turn, the Performance section's jackknife, ``step`` rows at a time (never the whole (g, n) matrix):
    yields ``(first row, weights (rows, n) of 0.0 / 1.0)``; ``g`` rows in all (:func:`_leave_out_count`)."""
    g = _leave_out_count(n)
    residue = np.arange(n) % g
    for lo in range(0, g, step):
        yield lo, (residue[None, :] != np.arange(lo, min(lo + step, g))[:, None]).astype(np.float64)


def _leave_out_count(n: int) -> int:
    """Leave-out rows of ``n`` clips: ``n``, or ``JACKKNIFE_GROUPS`` groups above it."""
    return JACKKNIFE_GROUPS if n > JACKKNIFE_GROUPS else n


def matched_map_jackknife(*, y_source: np.ndarray, y_target: np.ndarray, s_target: np.ndarray) -> dict[str, np.ndarray]:
    """The target's prevalence-matched mAP with each source clip left out (the weights change) and with
    each target clip left out (groups of clips above ``JACKKNIFE_GROUPS``): the acceleration of its BCa
    interval and of the matched gap's.

    Returns
    -------
    dict
        ``{"source": ndarray (n_source or groups,), "target": ndarray (n_target or groups,)}``; unitless.
    """
    ys, yt = np.asarray(y_source, dtype=np.float64), np.asarray(y_target).astype(bool)
    n_s, n_t, m = ys.shape[0], yt.shape[0], yt.shape[1]
    ranked = _rank(np.ascontiguousarray(yt.T), np.ascontiguousarray(np.asarray(s_target, dtype=np.float64).T))
    out = {}
    for side in ("source", "target"):
        n_side = n_s if side == "source" else n_t
        step = max(1, _BLOCK_ELEMENTS // max(1, m * n_t))
        vals = np.empty(_leave_out_count(n_side))
        for lo, c in _leave_out_blocks(n_side, step):
            if side == "source":
                ps, cs_n = c @ ys, c.sum(axis=1, keepdims=True)
                ct = np.ones((len(c), n_t))
                pt = np.broadcast_to(yt.sum(axis=0).astype(np.float64), ps.shape)
                w = prevalence_weights(positives_target=pt, negatives_target=n_t - pt, positives_source=ps,
                                       negatives_source=cs_n - ps)
            else:
                ct = c
                pt, ct_n = c @ yt.astype(np.float64), c.sum(axis=1, keepdims=True)
                ps = np.broadcast_to(ys.sum(axis=0), pt.shape)
                w = prevalence_weights(positives_target=pt, negatives_target=ct_n - pt, positives_source=ps,
                                       negatives_source=n_s - ps)
            vals[lo:lo + step] = _mean_over_defined(matched_ap(y_target=yt, s_target=s_target, counts_target=ct,
                                                               negative_weight=w, ranked=ranked))
        out[side] = vals
    return out


def two_sample_jackknife(source_left: np.ndarray, target_left: np.ndarray) -> np.ndarray:
    """Leave-out values of a statistic of two independent samples, as one array for :func:`bca_interval`.

    Each sample's values are centred on their own mean and scaled by ``(k - 1) / k`` (``k`` values), so that
    ``bca_interval``'s acceleration ``sum(u^3) / (6 (sum u^2)^1.5)`` is scipy's multi-sample one
    (``scipy.stats.bootstrap(..., paired=False, method="BCa")``: ``U_ji = (k_j - 1)(mean_j - theta_ji)``,
    ``a = sum_j sum_i U_ji^3 / k_j^3 / (6 (sum_j sum_i U_ji^2 / k_j^2)^1.5)``).

    Parameters
    ----------
    source_left, target_left : ndarray, shape (k_s,), (k_t,)
        The statistic with each source (target) clip or group left out, the other sample whole.

    Returns
    -------
    ndarray, shape (k_s + k_t,)
    """
    parts = []
    for v in (np.asarray(source_left, dtype=np.float64), np.asarray(target_left, dtype=np.float64)):
        parts.append((v - v.mean()) * (v.size - 1) / v.size)
    return np.concatenate(parts)


def _interval(values: np.ndarray | None, *, confidence: float, estimate: float | None = None,
              jackknife: np.ndarray | None = None) -> tuple[float | None, float | None, int]:
    """BCa interval of replicates when ``jackknife`` is given (leave-out values; non-finite replicates
    dropped), else the percentile interval: ``(low, high, n_used)``; ``None`` ends without replicates, with
    none usable, or where BCa is undefined (:func:`factsheet.metrics.bca_interval`)."""
    if values is None:
        return None, None, 0
    if jackknife is not None:
        if estimate is None or not np.isfinite(estimate) or not np.isfinite(jackknife).all():
            return None, None, 0
        iv = bca_interval(values, estimate=float(estimate), jackknife=jackknife, confidence=confidence)
        if not iv.defined:
            return None, None, iv.n_used
    else:
        iv = percentile_interval(values, confidence=confidence, infinite="drop")
    return finite_or_none(iv.low), finite_or_none(iv.high), iv.n_used


def _side(value: float, reps: np.ndarray | None, *, confidence: float, jackknife: np.ndarray | None = None) -> dict:
    low, high, _ = _interval(reps, confidence=confidence, estimate=value, jackknife=jackknife)
    return {"value": finite_or_none(value), "ci_low": low, "ci_high": high}


def _comparison(source: tuple, target: tuple, *, confidence: float, jack: dict | None = None) -> dict:
    """``{"source", "target", "gap"}`` of one metric from (point, replicates) of each side; with ``jack``
    (``{"source": leave-out values of the source side, "target": of the target side, "target_by_source":
    the target side with each source clip left out, or None where it does not depend on the source}``) BCa
    intervals, else percentile ones."""
    gap_reps = None
    if source[1] is not None and target[1] is not None:
        with np.errstate(invalid="ignore"):  # d' is infinite where AUC = 1: inf - inf
            gap_reps = target[1] - source[1]
    gap = target[0] - source[0]
    j_src = j_tgt = j_gap = None
    if jack is not None:
        j_src = jack["source"]
        t_by_s = jack.get("target_by_source")
        with np.errstate(invalid="ignore"):
            j_tgt = jack["target"] if t_by_s is None else two_sample_jackknife(t_by_s, jack["target"])
            gap_by_s = (target[0] if t_by_s is None else t_by_s) - jack["source"]
            j_gap = two_sample_jackknife(gap_by_s, jack["target"] - source[0])
    low, high, n_used = _interval(gap_reps, confidence=confidence, estimate=gap, jackknife=j_gap)
    return {"source": _side(source[0], source[1], confidence=confidence, jackknife=j_src),
            "target": _side(target[0], target[1], confidence=confidence, jackknife=j_tgt),
            "gap": {"value": finite_or_none(gap), "ci_low": low, "ci_high": high, "n_used": n_used}}


def shift_numbers(*, y_source: np.ndarray, s_source: np.ndarray, y_target: np.ndarray, s_target: np.ndarray,
                  n_resamples: int, confidence: float, seeds: dict[str, int], method: str = "bca_expanded") -> dict:
    """Source, target and gap (target - source) of mAP, prevalence-matched mAP, mean AUC and d'.

    Parameters
    ----------
    y_source, s_source : ndarray, shape (n_source, n_classes)
        Labels (0/1) and scores of the evaluation dataset on the compared classes.
    y_target, s_target : ndarray, shape (n_target, n_classes)
        The same of the target, same classes in the same order.
    n_resamples : int
        Bootstrap resamples of each side (0: no intervals).
    confidence : float
    seeds : dict
        ``{"source": int, "target": int}`` (:func:`shift_seeds`).
    method : {"bca_expanded", "bca", "percentile"}
        ``"bca_expanded"`` (what the FactSheet prints): ``"bca"`` taken at Hesterberg's expanded level
        (:func:`factsheet.metrics.expanded_confidence`) for ``n`` the fewest positives of a compared class
        on either side (plain BCa covered a harder target's matched mAP and the gaps 91.8-92.5 % at the
        demo's sizes, R = 600). ``"bca"``: BCa over the replicates, its acceleration from the
        statistic with each clip left out (groups of clips above ``JACKKNIFE_GROUPS``), from both datasets
        for the gaps and the matched mAP (:func:`two_sample_jackknife`; the percentile interval covered
        the target's mAP and the gaps 87-91 % at the demo's sizes when the target is harder,
        ``bench/coverage.py --studies natural``); ``"percentile"``: the percentile interval printed before.

    Returns
    -------
    dict
        ``"metrics"``: ``{name: {"source": {"value", "ci_low", "ci_high"}, "target": {...},
        "gap": {"value", "ci_low", "ci_high", "n_used"}}}`` for ``mAP``, ``mAP_matched`` (its source
        is the source's mAP, the prevalence the target is matched to), ``mean_auc`` and ``d_prime``;
        ``"ap_source"``, ``"ap_target"``, ``"ap_matched"``: per-class AP, ndarray (n_classes,).
    """
    if method not in ("bca_expanded", "bca", "percentile"):
        raise ValueError(f"method must be 'bca_expanded', 'bca' or 'percentile', got {method!r}")
    ps, pt = tagging_metrics(y_source, s_source), tagging_metrics(y_target, s_target)
    ys, yt = np.asarray(y_source).astype(bool), np.asarray(y_target).astype(bool)
    if method == "bca_expanded":
        fewest = int(min(ys.sum(0).min(), yt.sum(0).min())) if ys.shape[1] else 0
        confidence = expanded_confidence(confidence, n=fewest) if fewest >= 1 else confidence
        method = "bca"
    w = prevalence_weights(positives_target=yt.sum(0), negatives_target=(~yt).sum(0), positives_source=ys.sum(0),
                           negatives_source=(~ys).sum(0))
    ap_m = matched_ap(y_target=yt, s_target=s_target, counts_target=np.ones((1, yt.shape[0])),
                      negative_weight=w[None, :])[0]
    reps_s = reps_t = reps_m = None
    jack_s = jack_t = jack_m = None
    if n_resamples:
        reps_s = bootstrap_tagging_replicates(ys, s_source, n_resamples=n_resamples, seed=seeds["source"])
        reps_t = bootstrap_tagging_replicates(yt, s_target, n_resamples=n_resamples, seed=seeds["target"])
        reps_m = matched_map_replicates(y_source=ys, y_target=yt, s_target=s_target, n_resamples=n_resamples,
                                        seeds=seeds)
        if method == "bca":
            jack_s, jack_t = (tagging_jackknife(y, s, n_groups=JACKKNIFE_GROUPS if len(y) > JACKKNIFE_GROUPS else None)
                              for y, s in ((ys, s_source), (yt, s_target)))
            jack_m = matched_map_jackknife(y_source=ys, y_target=yt, s_target=s_target)
    metrics = {}
    for k in METRICS:
        jack = None if jack_s is None else {"source": jack_s[k], "target": jack_t[k], "target_by_source": None}
        metrics[k] = _comparison((float(getattr(ps, k)), None if reps_s is None else reps_s[k]),
                                 (float(getattr(pt, k)), None if reps_t is None else reps_t[k]), confidence=confidence,
                                 jack=jack)
        if k == "mAP":
            jack = None if jack_m is None else {"source": jack_s["mAP"], "target": jack_m["target"],
                                                "target_by_source": jack_m["source"]}
            metrics["mAP_matched"] = _comparison((float(ps.mAP), None if reps_s is None else reps_s["mAP"]),
                                                 (float(_mean_over_defined(ap_m)), reps_m), confidence=confidence,
                                                 jack=jack)
    return {"metrics": metrics, "ap_source": np.asarray(ps.per_class_ap, dtype=np.float64),
            "ap_target": np.asarray(pt.per_class_ap, dtype=np.float64), "ap_matched": ap_m}


@dataclass(frozen=True)
class ShiftSide:
    """One side of a natural-shift comparison: a dataset's labels and the model's scores of it.

    Attributes
    ----------
    labels : ndarray, shape (n_clips, n_classes)
        0/1 labels over the dataset's scored classes.
    scores : ndarray, shape (n_clips, n_classes)
        The model's scores of those classes (finite).
    columns : list of int
        The model output column of each class (classes are matched across the two sides by it).
    class_labels : list of ClassLabel
        The classes, in column order.
    """

    labels: np.ndarray
    scores: np.ndarray
    columns: list[int]
    class_labels: list[ClassLabel]


def compared_classes(*, source: ShiftSide, target: ShiftSide, target_name: str) -> tuple[list[tuple[int, int]], list]:
    """The classes both sides score and can evaluate, and why each other class is left out.

    Returns
    -------
    pairs : list of (int, int)
        ``(source index, target index)`` of each compared class, in model-column order.
    left_out : list of dict
        ``{"label", "reason"}`` for every other class either side scores.
    """
    where_s = {c: j for j, c in enumerate(source.columns)}
    where_t = {c: j for j, c in enumerate(target.columns)}
    names = {**{c: source.class_labels[j].display_name for c, j in where_s.items()},
             **{c: target.class_labels[j].display_name for c, j in where_t.items()}}
    pairs, left_out = [], []
    for c in sorted(names):
        if c not in where_t:
            why = f"not scored in {target_name}"
        elif c not in where_s:
            why = "not scored in the evaluation dataset"
        else:
            why = (_evaluable(source.labels[:, where_s[c]], "the evaluation dataset")
                   or _evaluable(target.labels[:, where_t[c]], target_name))
        if why is None:
            pairs.append((where_s[c], where_t[c]))
        else:
            left_out.append({"label": names[c], "reason": why})
    return pairs, left_out


def _evaluable(y: np.ndarray, where: str) -> str | None:
    n_pos = int(np.asarray(y).astype(bool).sum())
    if n_pos == 0:
        return f"no positive clip in {where}"
    if n_pos == len(y):
        return f"no negative clip in {where}"
    return None


def natural_shift_entry(*, name: str, dataset: dict, source: ShiftSide, target: ShiftSide,
                        pairs: list[tuple[int, int]], left_out: list[dict], n_resamples: int, confidence: float,
                        seeds: dict[str, int], tolerance: float) -> dict:
    """One target of the natural shift: an element of the section's ``natural_shift``.

    Parameters
    ----------
    name : str
        The target's name (``[[domain_shift.datasets]] name``).
    dataset : dict
        What identifies the target's data (kind, clips, sha256, ...), recorded as it is.
    source, target : ShiftSide
    pairs, left_out : list
        :func:`compared_classes`; at least one pair.
    n_resamples : int
        Bootstrap resamples of each side (0: no intervals and no finding).
    confidence : float
    seeds : dict
        :func:`shift_seeds`.
    tolerance : float
        The mAP loss (unitless) the prevalence-matched gap must exceed with confidence for a finding.

    Returns
    -------
    dict
        ``{"name", "dataset", "n_clips_source", "n_clips_target", "classes", "classes_left_out",
        "bootstrap_seeds", "metrics", "per_class", "finding"}`` (the schema fragment's
        ``domain_shift_natural``).
    """
    js, jt = [p[0] for p in pairs], [p[1] for p in pairs]
    ys, yt = np.asarray(source.labels)[:, js], np.asarray(target.labels)[:, jt]
    nums = shift_numbers(y_source=ys, s_source=np.asarray(source.scores)[:, js], y_target=yt,
                         s_target=np.asarray(target.scores)[:, jt], n_resamples=n_resamples, confidence=confidence,
                         seeds=seeds)
    per_class = []
    for k, j in enumerate(js):
        a_s, a_t, a_m = (finite_or_none(float(nums[key][k])) for key in ("ap_source", "ap_target", "ap_matched"))
        per_class.append({
            "label": source.class_labels[j].display_name, "n_pos_source": int(ys[:, k].sum()),
            "n_pos_target": int(yt[:, k].sum()), "prevalence_source": float(ys[:, k].mean()),
            "prevalence_target": float(yt[:, k].mean()), "ap_source": a_s, "ap_target": a_t, "ap_target_matched": a_m,
            "change": None if None in (a_s, a_t) else a_t - a_s,
            "change_matched": None if None in (a_s, a_m) else a_m - a_s})
    high = nums["metrics"]["mAP_matched"]["gap"]["ci_high"]
    return {"name": name, "dataset": dataset, "n_clips_source": int(ys.shape[0]), "n_clips_target": int(yt.shape[0]),
            "classes": [r["label"] for r in per_class], "classes_left_out": list(left_out),
            "bootstrap_seeds": dict(seeds), "metrics": nums["metrics"], "per_class": per_class,
            "finding": bool(high is not None and high < -tolerance)}
