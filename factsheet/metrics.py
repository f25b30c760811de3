"""Audio classification metrics: tagging (mAP, AUC, d'), single-label reports, bootstrap CIs.

Conventions (see ``../shared/notes/audio-metrics-and-max.md``):

* mAP and mean AUC are macro averages: per-class values, then the plain mean over classes.
* Only *evaluable* classes enter the means: a class needs at least one positive and at
  least one negative clip.  scikit-learn would instead return AP = 0.0 (silently lowering
  mAP) or AUC = NaN (making the mean NaN) for such classes; here their per-class values are
  NaN where undefined, they are left out of every mean, and the number left out is reported
  (:attr:`TaggingMetrics.n_excluded`).
* ``d_prime`` is ``sqrt(2) * norm.ppf(mean AUC)`` (Kong's AudioSet code, PANNs, fsd50k-pytorch,
  and the MAX FactSheet: ``sqrt(2) * ppf(0.96808) = 2.621``).  HEAR's convention, the mean of
  the per-class d-primes, is offered under its own name ``mean_class_d_prime``.

Per-class AP equals scikit-learn's ``average_precision_score(average=None)`` (step-wise,
ties grouped by distinct score) and per-class AUC equals ``roc_auc_score`` per column
(ties count one half), both computed for all classes at once from one sort per class.
"""

from __future__ import annotations

import math

import os
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri, stdtrit
from scipy.stats import binom

__all__ = [
    "TAGGING_STATISTICS",
    "INFINITE_RULES",
    "INTERVAL_METHODS",
    "JACKKNIFE_GROUPS",
    "MIN_CLASS_SUPPORT",
    "BootstrapInterval",
    "PercentileInterval",
    "SingleLabelReport",
    "TaggingMetrics",
    "average_precision",
    "bca_interval",
    "bootstrap_ci",
    "bootstrap_tagging_ci",
    "bootstrap_tagging_replicates",
    "clopper_pearson_interval",
    "d_prime",
    "finite_or_none",
    "is_single_label",
    "newcombe_difference_interval",
    "order_statistic_interval",
    "order_statistic_ranks",
    "percentile_interval",
    "roc_auc",
    "single_label_report",
    "sorted_percentiles",
    "tagging_metrics",
    "tagging_jackknife",
    "wilson_interval",
]

#: Fewest positive (and negative) clips of every evaluable class for a performance interval: with
#: fewer, the intervals of mAP and mean AUC under-cover whatever the method (``bench/coverage.py``,
#: README "Do the intervals cover?"), and the FactSheet prints "insufficient evidence".
MIN_CLASS_SUPPORT = 10

#: The statistics :func:`bootstrap_tagging_ci` reports, in order.
TAGGING_STATISTICS: tuple[str, ...] = ("mAP", "mean_auc", "d_prime", "mean_class_d_prime")

# Elements (rows x clips) handled per block by the vectorised kernels: large enough to
# amortise numpy's per-call overhead, small enough that the temporaries stay in cache.
_BLOCK_ELEMENTS = 1 << 18


def finite_or_none(x) -> float | None:
    """``float(x)``, or ``None`` when it is NaN or infinite (how the FactSheet JSON stores an undefined number)."""
    x = float(x)
    return x if math.isfinite(x) else None


# --------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------


def _as_2d(name: str, a: object) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D (n_clips, n_classes), got shape {arr.shape}")
    return arr


def _check_labels(y_true: object, name: str = "y_true") -> np.ndarray:
    """Return ``y_true`` as a 2-D bool array, or raise ValueError if it is not 0/1."""
    y = _as_2d(name, y_true)
    if y.dtype == bool:
        return y
    if y.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold 0/1 labels (bool or int), got dtype {y.dtype}")
    binary = (y == 0) | (y == 1)
    if not binary.all():
        bad = y[~binary].ravel()[0]
        raise ValueError(f"{name} must be binary (0/1); found the value {bad!r}")
    return y.astype(bool)


def _check_tagging_inputs(y_true: object, y_score: object) -> tuple[np.ndarray, np.ndarray]:
    """Validate multi-hot labels and scores; return (bool (n, c), float64 (n, c))."""
    y = _check_labels(y_true)
    s = _as_2d("y_score", y_score)
    if s.shape != y.shape:
        raise ValueError(
            f"y_true and y_score must have the same shape: {np.shape(y_true)} vs {np.shape(y_score)}"
        )
    if s.dtype.kind not in "biuf":
        raise ValueError(f"y_score must be numeric, got dtype {s.dtype}")
    s = s.astype(np.float64, copy=False)
    if not np.isfinite(s).all():
        raise ValueError("y_score must be finite; it contains NaN or +-inf")
    return y, s


# --------------------------------------------------------------------------------------
# Vectorised AP / AUC kernels (rows = classes, or classes x bootstrap replicates)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Ranked:
    """Each class's clips sorted by score, reduced to what AP and AUC need per positive.

    Built by :func:`_rank` from one sort per class.  For the ``K`` positive (class, clip)
    pairs, in class order and, within a class, in ascending score order:

    Attributes
    ----------
    order : ndarray of intp, shape (m, n)
        Clip indices of each class sorted by ascending score (order within a tie group is
        unspecified; nothing below depends on it).
    n_pos : ndarray of int64, shape (m,)
        Positives per class.
    first : ndarray of int64, shape (m,)
        Index (into the K positives) of each class's first positive.
    row, clip : ndarray of int64, shape (K,)
        Class and original clip index of each positive.
    start, stop : ndarray of int64, shape (K,)
        Sorted positions where the positive's tie group starts and one past where it ends.
    k_start, k_stop : ndarray of int64, shape (K,)
        Index (into the K positives) of the first positive at or above ``start`` and at
        or above ``stop``: ``k_start - first[row]`` positives of the class score below the
        group, ``k_stop - first[row]`` score at or below it.
    """

    order: np.ndarray
    n_pos: np.ndarray
    first: np.ndarray
    row: np.ndarray
    clip: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    k_start: np.ndarray
    k_stop: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """(n_classes, n_clips)."""
        return self.order.shape


def _rank(y_rows: np.ndarray, s_rows: np.ndarray) -> _Ranked:
    """Sort each class's scores once and locate every positive's tie group.

    Parameters
    ----------
    y_rows : ndarray of bool, shape (m, n)
        Labels, one row per class.
    s_rows : ndarray of float64, shape (m, n)
        Finite scores, one row per class.

    Returns
    -------
    _Ranked
    """
    m, n = s_rows.shape
    order = np.argsort(s_rows, axis=-1)  # non-stable: results are the same for any tie order
    ss = np.take_along_axis(s_rows, order, axis=-1)
    is_first = np.empty(ss.shape, dtype=bool)
    is_first[:, :1] = True
    np.not_equal(ss[:, 1:], ss[:, :-1], out=is_first[:, 1:])
    del ss
    # Flat positions (row * n + sorted position) of group starts and of positives; every
    # row starts a group, so a positive's group never reaches into the next row.
    starts = np.flatnonzero(is_first)
    pos = np.flatnonzero(np.take_along_axis(y_rows, order, axis=-1))
    row = pos // n
    n_pos = np.bincount(row, minlength=m)
    group = np.searchsorted(starts, pos, side="right") - 1
    start = starts[group]
    stop = np.append(starts, m * n)[group + 1]
    return _Ranked(
        order=order,
        n_pos=n_pos,
        first=np.cumsum(n_pos) - n_pos,
        row=row,
        clip=order.ravel()[pos],
        start=start - row * n,
        stop=stop - row * n,
        k_start=np.searchsorted(pos, start, side="left"),
        k_stop=np.searchsorted(pos, stop, side="left"),
    )


def _ap_auc_ranked(r: _Ranked) -> tuple[np.ndarray, np.ndarray]:
    """AP and AUC of each class (every clip counted once).

    For a positive whose tie group spans sorted positions [start, stop):

    * AP  = mean over positives of precision at the group's threshold,
      (P - positives below) / (n - start) -- scikit-learn's step-wise AP, one
      precision per distinct threshold;
    * AUC = sum over positives of (negatives below + negatives at or below) / 2 / (P N)
      -- tied negatives count 1/2: the Mann-Whitney U with average ranks.

    Returns
    -------
    ap, auc : ndarray of float64, shape (m,)
        NaN where a class has no positives (AP) or lacks positives or negatives (AUC).
    """
    m, n = r.shape
    before = r.first[r.row]
    cp_start = r.k_start - before  # positives below the group
    cp_stop = r.k_stop - before  # positives at or below it
    cn = (r.start - cp_start) + (r.stop - cp_stop)  # negatives below + at or below
    precision = (r.n_pos[r.row] - cp_start) / (n - r.start)
    n_neg = n - r.n_pos
    with np.errstate(divide="ignore", invalid="ignore"):
        ap = np.bincount(r.row, weights=precision, minlength=m) / r.n_pos
        auc = 0.5 * np.bincount(r.row, weights=cn.astype(np.float64), minlength=m) / (r.n_pos * n_neg)
    ap = np.where(r.n_pos > 0, ap, np.nan)
    auc = np.where((r.n_pos > 0) & (n_neg > 0), auc, np.nan)
    return ap, auc


def _ap_auc_weighted(
    r: _Ranked, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """AP and AUC of each class under clip weights, for several weight vectors at once.

    A bootstrap replicate is the weight vector "times each clip was drawn": the
    weighted metrics equal the metrics on the resampled clips (copies of a clip tie
    with each other), with no re-sorting.  Same formulas as :func:`_ap_auc_ranked` with
    counts replaced by sums of weights; equal to scikit-learn's ``sample_weight``.

    Parameters
    ----------
    r : _Ranked
    w : ndarray of float64, shape (b, n) or (b, m, n)
        Non-negative weight of each clip, one row per replicate; with a class axis, a
        separate weight of each clip for each class (in clip order).

    Returns
    -------
    ap, auc : ndarray of float64, shape (b, m)
    n_pos, n_neg : ndarray of float64, shape (b, m)
        Positive and negative weight per replicate and class.
    """
    m, n = r.shape
    b = w.shape[0]
    if w.ndim == 3:  # per-class weights (b, m, n), e.g. a group's positives against all negatives
        cw = np.cumsum(w[:, np.arange(m)[:, None], r.order], axis=-1)
        pw = w[:, r.row, r.clip]
    else:
        cw = np.cumsum(w[:, r.order], axis=-1)  # (b, m, n): weight at or below each position
        pw = w[:, r.clip]  # (b, K) weight of each positive
    total = cw[:, :, -1]
    cp = np.zeros((b, pw.shape[1] + 1))
    np.cumsum(pw, axis=-1, out=cp[:, 1:])  # cp[:, k]: weight of positives 0..k-1
    n_pos = cp[:, r.first + r.n_pos] - cp[:, r.first]
    n_neg = total - n_pos
    base = cp[:, r.first[r.row]]
    cp_start = cp[:, r.k_start] - base
    cp_stop = cp[:, r.k_stop] - base
    cw_start = np.where(r.start > 0, cw[:, r.row, np.maximum(r.start - 1, 0)], 0.0)
    cw_stop = cw[:, r.row, r.stop - 1]
    cn = (cw_start - cp_start) + (cw_stop - cp_stop)
    above = total[:, r.row] - cw_start  # weight scoring at or above the group
    precision = np.divide(
        n_pos[:, r.row] - cp_start, above, out=np.zeros_like(above), where=above > 0
    )
    key = (np.arange(b)[:, None] * m + r.row).ravel()  # (replicate, class) of each term

    def per_class(x: np.ndarray) -> np.ndarray:
        return np.bincount(key, weights=x.ravel(), minlength=b * m).reshape(b, m)

    with np.errstate(divide="ignore", invalid="ignore"):
        ap = per_class(pw * precision) / n_pos
        auc = 0.5 * per_class(pw * cn) / (n_pos * n_neg)
    ap = np.where(n_pos > 0, ap, np.nan)
    auc = np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)
    return ap, auc, n_pos, n_neg


# --------------------------------------------------------------------------------------
# Bootstrap kernel: integer clip counts, all replicates of a block at once
# --------------------------------------------------------------------------------------

#: Bootstrap replicates evaluated together by :func:`_count_block`.  A row of the
#: (clips x replicates) int16 count matrix, which the sparse product reads in random
#: order, is then 64 bytes, one cache line; on the 2-core dev machine 16 to 32 replicates
#: per block ran equally fast per replicate, 48 or more slower.
_REPLICATE_BLOCK = 32

#: Threads of :func:`bootstrap_tagging_ci` (``None``: one per available core, at most 8).
#: Results do not depend on it: replicate blocks are written to fixed slots.
_BOOTSTRAP_THREADS: int | None = None


def _int_dtype(bound: int, *, small: bool = False) -> np.dtype:
    """Smallest of int16 (only if ``small``) / int32 / int64 holding values in [-bound, bound]."""
    if small and bound <= np.iinfo(np.int16).max:
        return np.dtype(np.int16)
    if bound <= np.iinfo(np.int32).max:
        return np.dtype(np.int32)
    return np.dtype(np.int64)


@dataclass(frozen=True, eq=False)
class _CountPlan:
    """What :func:`_count_block` needs, beyond :class:`_Ranked`, to weight clips by counts.

    A replicate reads the clips' cumulative weight (in each class's score order) only at
    the edges of the positives' tie groups.  Each class's sorted positions are cut at those
    edges into *segments*; a sparse 0/1 matrix sums the counts of every segment for a whole
    block of replicates in one product, and a cumulative sum over segments gives the
    weight below every edge.  Per class, only the positions between ``a`` and ``b`` are
    summed: from 0 up to the last positive group (``a = 0``), or from the first positive
    group up to ``n`` when that leaves out more (the weight below ``a`` is then ``n`` minus
    the rest, every replicate drawing ``n`` clips).

    Attributes
    ----------
    seg : scipy.sparse.csr_array, shape (S, n)
        ``seg[j, clip] = 1`` when ``clip`` lies in segment ``j``; dtype ``count_dtype``.
    count_dtype, cum_dtype : numpy.dtype
        Integer types of the clip counts / segment sums (int16 when ``n < 2 ** 15``) and of
        the cumulative sums (int32 unless that could overflow).
    ja, jb : ndarray of intp, shape (m,)
        First segment of each class and one past its last (0 for a class without positives),
        as rows of the cumulative sums ``cz`` (``cz[j]``: weight of segments ``0..j-1``).
    suffix : ndarray of bool, shape (m,)
        Whether the class sums from its first positive group (``a > 0``) rather than from 0.
    js, je : ndarray of intp, shape (K,)
        Row of ``cz`` at the start and at the stop of each positive's tie group.
    has_pos : ndarray of intp
        Classes with at least one positive, in order.
    """

    seg: object
    count_dtype: np.dtype
    cum_dtype: np.dtype
    ja: np.ndarray
    jb: np.ndarray
    suffix: np.ndarray
    js: np.ndarray
    je: np.ndarray
    has_pos: np.ndarray


def _count_plan(r: _Ranked) -> _CountPlan:
    """Cut every class's sorted clips into segments at its positives' tie-group edges."""
    from scipy.sparse import csr_array

    m, n = r.shape
    has = r.n_pos > 0
    has_pos = np.flatnonzero(has)
    first = r.first[has_pos]
    lo = r.start[first]  # start of the class's lowest positive group
    hi = r.stop[first + r.n_pos[has_pos] - 1]  # stop of its highest one
    a = np.zeros(m, dtype=np.int64)
    b = np.zeros(m, dtype=np.int64)
    suffix = np.zeros(m, dtype=bool)
    suffix[has_pos] = lo > n - hi
    a[has_pos] = np.where(suffix[has_pos], lo, 0)
    b[has_pos] = np.where(suffix[has_pos], n, hi)

    # Segment starts: the class's ``a`` and every positive-group edge strictly inside (a, b),
    # keyed (class, position) as class * (n + 1) + position.
    stride = n + 1
    edges = np.concatenate([r.start, r.stop])
    edge_rows = np.concatenate([r.row, r.row])
    inside = (edges > a[edge_rows]) & (edges < b[edge_rows])
    keys = np.unique(np.concatenate([has_pos * stride + a[has_pos], (edge_rows * stride + edges)[inside]]))
    seg_row = keys // stride
    seg_pos = keys - seg_row * stride

    # CSR rows: segment j holds order[row, pos_j:pos_{j+1}] (or up to b of its class).
    length = b - a
    offset = np.cumsum(length) - length  # where each class's run starts in the flat list
    nnz = int(length.sum())
    index_dtype = np.int32 if max(nnz, n) < np.iinfo(np.int32).max else np.int64
    indptr = np.empty(keys.size + 1, dtype=index_dtype)
    indptr[:-1] = offset[seg_row] + (seg_pos - a[seg_row])
    indptr[-1] = nnz
    positions = np.arange(n)
    in_run = (positions >= a[:, None]) & (positions < b[:, None])
    indices = r.order[in_run].astype(index_dtype)
    count_dtype = _int_dtype(n, small=True)
    seg = csr_array(
        (np.ones(nnz, dtype=count_dtype), indices, indptr), shape=(keys.size, n), copy=False
    )
    ja = np.zeros(m, dtype=np.intp)
    jb = np.zeros(m, dtype=np.intp)
    ja[has_pos] = np.searchsorted(keys, has_pos * stride + a[has_pos])
    jb[has_pos] = np.searchsorted(keys, has_pos * stride + b[has_pos])
    # Cumulative sums over segments or positives reach n per class with positives; the
    # integers formed from them in _count_block stay within 4 n (classes + 1).
    cum_dtype = _int_dtype(4 * n * (has_pos.size + 1))
    return _CountPlan(
        seg=seg,
        count_dtype=count_dtype,
        cum_dtype=cum_dtype,
        ja=ja,
        jb=jb,
        suffix=suffix,
        js=np.searchsorted(keys, r.row * stride + r.start).astype(np.intp),
        je=np.searchsorted(keys, r.row * stride + r.stop).astype(np.intp),
        has_pos=has_pos,
    )


def _count_block(
    r: _Ranked, plan: _CountPlan, counts: np.ndarray, *, total: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_ap_auc_weighted` for integer clip counts, bit for bit.

    Every count, cumulative weight and AUC numerator is an integer, held exactly in an
    integer type (the float64 kernel holds them exactly too); AP's precisions and their
    per-class sums are formed in float64 in the same order as there.

    Parameters
    ----------
    r : _Ranked
    plan : _CountPlan
        ``_count_plan(r)``.
    counts : ndarray of ``plan.count_dtype``, shape (b, n)
        Times each clip was drawn, one row per replicate; each row sums to ``total``.
    total : int, optional
        The sum of every row: ``n`` (the default) for bootstrap replicates, ``n - 1`` for
        leave-one-out rows.

    Returns
    -------
    ap, auc, n_pos, n_neg : ndarray of float64, shape (b, m)
    """
    m, n = r.shape
    n = n if total is None else int(total)
    b = counts.shape[0]
    if r.row.size == 0:
        n_pos = np.zeros((b, m))
        return np.full((b, m), np.nan), np.full((b, m), np.nan), n_pos, n - n_pos
    w = _block_weights(r, plan, counts, total=n)
    auc_sum = np.zeros((b, m))
    auc_sum[:, plan.has_pos] = _auc_numerators(r, plan, w)
    ap_sum = _ap_sums(r, w, n=n)
    n_pos = w.npos.astype(np.float64)
    n_neg = n - n_pos
    with np.errstate(divide="ignore", invalid="ignore"):
        ap = ap_sum / n_pos
        auc = 0.5 * auc_sum / (n_pos * n_neg)
    ap = np.where(n_pos > 0, ap, np.nan)
    auc = np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)
    return ap, auc, n_pos, n_neg


@dataclass(frozen=True, eq=False)
class _BlockWeights:
    """Cumulative clip weights of one block of b replicates, exact integers of ``plan.cum_dtype``.

    Attributes
    ----------
    cz : ndarray, shape (b, S + 1)
        ``cz[:, j]``: weight of the segments ``0..j-1``.
    base : ndarray, shape (b, m)
        Weight below each class's first summed position, minus the cumulative sum there.
    pw : ndarray of ``plan.count_dtype``, shape (b, K)
        Weight (times drawn) of each positive.
    cp : ndarray, shape (b, K + 1)
        ``cp[:, k]``: weight of the positives ``0..k-1``.
    cp_first, cp_end : ndarray, shape (b, m)
        ``cp`` at each class's first positive and one past its last.
    npos : ndarray, shape (b, m)
        Weight of each class's positives.
    cw_start : ndarray, shape (b, K)
        Weight below each positive's tie group, less ``base`` of its class.
    cp_start : ndarray, shape (b, K)
        Positives below each positive's tie group, plus ``cp_first`` of its class.
    """

    cz: np.ndarray
    base: np.ndarray
    pw: np.ndarray
    cp: np.ndarray
    cp_first: np.ndarray
    cp_end: np.ndarray
    npos: np.ndarray
    cw_start: np.ndarray
    cp_start: np.ndarray


def _block_weights(r: _Ranked, plan: _CountPlan, counts: np.ndarray, *, total: int) -> _BlockWeights:
    """The cumulative weights of segments and positives for every replicate of ``counts`` (each
    row summing to ``total``)."""
    n = total
    b = counts.shape[0]
    cum = plan.cum_dtype
    # Weight of every segment (S, b) in one sparse product, then cz[:, j]: weight of the
    # segments 0..j-1 (a cumulative sum runs fastest along contiguous rows).
    seg_sums = np.ascontiguousarray((plan.seg @ np.ascontiguousarray(counts.T)).T)
    cz = np.empty((b, seg_sums.shape[1] + 1), dtype=cum)
    cz[:, 0] = 0
    np.cumsum(seg_sums, axis=1, dtype=cum, out=cz[:, 1:])
    del seg_sums
    base = np.where(plan.suffix, n - np.take(cz, plan.jb, axis=1), -np.take(cz, plan.ja, axis=1))

    pw = np.take(counts, r.clip, axis=1)  # (b, K) weight of each positive
    cp = np.empty((b, pw.shape[1] + 1), dtype=cum)
    cp[:, 0] = 0
    np.cumsum(pw, axis=1, dtype=cum, out=cp[:, 1:])  # cp[:, k]: weight of positives 0..k-1
    cp_first = np.take(cp, r.first, axis=1)  # (b, m)
    cp_end = np.take(cp, r.first + r.n_pos, axis=1)
    return _BlockWeights(cz=cz, base=base, pw=pw, cp=cp, cp_first=cp_first, cp_end=cp_end, npos=cp_end - cp_first,
                         cw_start=np.take(cz, plan.js, axis=1), cp_start=np.take(cp, r.k_start, axis=1))


def _auc_numerators(r: _Ranked, plan: _CountPlan, w: _BlockWeights) -> np.ndarray:
    """AUC numerators, shape (b, classes with positives), int64: sum of pw * (negatives below +
    negatives at or below the group) = sum pw * (cz[je] + cz[js] - cp[k_start] - cp[k_stop])
    + 2 (base + cp_first) n_pos."""
    h = np.take(w.cz, plan.je, axis=1)
    h += w.cw_start
    h -= w.cp_start
    h -= np.take(w.cp, r.k_stop, axis=1)
    u = np.add.reduceat(np.multiply(w.pw, h, dtype=np.int64), r.first[plan.has_pos], axis=1)
    u += 2 * (w.base + w.cp_first)[:, plan.has_pos].astype(np.int64) * w.npos[:, plan.has_pos]
    return u


def _ap_sums(r: _Ranked, w: _BlockWeights, *, n: int) -> np.ndarray:
    """Per class, shape (b, m), float64: the sum over positives of weight x precision at its group,
    precision = positives at or above / weight at or above."""
    m = r.shape[0]
    b = w.pw.shape[0]
    above = np.take(n - w.base, r.row, axis=1)
    above -= w.cw_start
    num = np.take(w.cp_end, r.row, axis=1)
    num -= w.cp_start
    precision = np.divide(num, above, out=np.zeros(above.shape), where=above > 0)
    precision *= w.pw
    key = (np.arange(b) * m)[:, None] + r.row  # (replicate, class) of each term, in order
    return np.bincount(key.ravel(), weights=precision.ravel(), minlength=b * m).reshape(b, m)


def _ap_auc_batch(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class AP and AUC of validated inputs, one sort per class, in blocks of classes.

    Parameters
    ----------
    y : ndarray of bool, shape (n_clips, n_classes)
    s : ndarray of float64, shape (n_clips, n_classes), finite

    Returns
    -------
    ap, auc : ndarray of float64, shape (n_classes,)
    """
    n_clips, n_classes = y.shape
    ap = np.full(n_classes, np.nan)
    auc = np.full(n_classes, np.nan)
    if n_clips == 0:
        return ap, auc
    step = max(1, _BLOCK_ELEMENTS // n_clips)
    for lo in range(0, n_classes, step):
        hi = min(lo + step, n_classes)
        ranked = _rank(np.ascontiguousarray(y[:, lo:hi].T), np.ascontiguousarray(s[:, lo:hi].T))
        ap[lo:hi], auc[lo:hi] = _ap_auc_ranked(ranked)
    return ap, auc


# --------------------------------------------------------------------------------------
# Public tagging metrics
# --------------------------------------------------------------------------------------


def average_precision(y_true: object, y_score: object) -> np.ndarray:
    """Per-class average precision, as scikit-learn's ``average_precision_score(average=None)``.

    AP = sum over distinct thresholds of (recall increase) x precision, with tied scores
    forming one threshold.

    Parameters
    ----------
    y_true : array_like, shape (n_clips, n_classes) or (n_clips,)
        0/1 (bool or int) multi-hot labels; 1-D is one class.
    y_score : array_like, same shape as ``y_true``
        Finite scores; higher means more likely positive.

    Returns
    -------
    ndarray of float64, shape (n_classes,)
        AP per class; NaN for a class with no positives (scikit-learn gives 0.0).

    Raises
    ------
    ValueError
        Shapes differ, labels are not 0/1, or scores are not finite.
    """
    y, s = _check_tagging_inputs(y_true, y_score)
    return _ap_auc_batch(y, s)[0]


def roc_auc(y_true: object, y_score: object) -> np.ndarray:
    """Per-class ROC AUC (Mann-Whitney U with average ranks), as ``roc_auc_score`` per column.

    Parameters
    ----------
    y_true : array_like, shape (n_clips, n_classes) or (n_clips,)
        0/1 (bool or int) multi-hot labels; 1-D is one class.
    y_score : array_like, same shape as ``y_true``
        Finite scores; ties between a positive and a negative count one half.

    Returns
    -------
    ndarray of float64, shape (n_classes,)
        AUC per class; NaN for a class with no positives or no negatives.

    Raises
    ------
    ValueError
        Shapes differ, labels are not 0/1, or scores are not finite.
    """
    y, s = _check_tagging_inputs(y_true, y_score)
    return _ap_auc_batch(y, s)[1]


def d_prime(auc: object) -> np.ndarray | np.float64:
    """Sensitivity index d' = sqrt(2) * Phi^-1(AUC), elementwise.

    Parameters
    ----------
    auc : float or array_like
        ROC AUC value(s) in [0, 1]; NaN passes through.

    Returns
    -------
    float64 or ndarray of float64, same shape as ``auc``
        AUC 0.5 -> 0, AUC 1 -> +inf, AUC 0 -> -inf.

    Raises
    ------
    ValueError
        A (non-NaN) value lies outside [0, 1].

    Notes
    -----
    Published figures are d' of the *unrounded* mean AUC, so recomputing d' from a
    printed AUC can miss the last digit: the MAX FactSheet's AUC 0.968 / d' 2.621 is
    ``d_prime(0.96808) = 2.62096`` (``d_prime(0.968) = 2.6194``); LEAN's mAUC 0.944 /
    d' 2.251 is an AUC near 0.94427 (``d_prime(0.944) = 2.2476``).
    """
    a = np.asarray(auc, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        if np.any((a < 0) | (a > 1)):
            raise ValueError("AUC values must lie in [0, 1]")
    out = np.sqrt(2.0) * ndtri(a)
    return out[()] if out.ndim == 0 else out


@dataclass(frozen=True, eq=False)
class TaggingMetrics:
    """Multi-label tagging metrics (AudioSet / FSD50K conventions).

    Attributes
    ----------
    mAP : float
        Mean per-class AP over evaluable classes (NaN if none).
    mean_auc : float
        Mean per-class ROC AUC over evaluable classes (NaN if none).
    d_prime : float
        ``d_prime(mean_auc)``: the AudioSet / PANNs / MAX FactSheet convention.
    mean_class_d_prime : float
        Mean of the per-class d' over evaluable classes: the HEAR convention.  +inf if
        any evaluable class has AUC 1 (NaN if another has AUC 0).
    per_class_ap : ndarray, shape (n_classes,)
        NaN where a class has no positives.
    per_class_auc : ndarray, shape (n_classes,)
        NaN where a class has no positives or no negatives.
    per_class_d_prime : ndarray, shape (n_classes,)
        ``d_prime(per_class_auc)``.
    support : ndarray of int64, shape (n_classes,)
        Positive clips per class.
    n_negatives : ndarray of int64, shape (n_classes,)
        Negative clips per class.
    evaluable : ndarray of bool, shape (n_classes,)
        ``support > 0 and n_negatives > 0``; only these classes enter the means.
    n_excluded : int
        Classes left out of the means (no positives or no negatives).
    """

    mAP: float
    mean_auc: float
    d_prime: float
    mean_class_d_prime: float
    per_class_ap: np.ndarray
    per_class_auc: np.ndarray
    per_class_d_prime: np.ndarray
    support: np.ndarray
    n_negatives: np.ndarray
    evaluable: np.ndarray
    n_excluded: int

    @property
    def n_classes(self) -> int:
        """Number of classes (columns), evaluable or not."""
        return int(self.evaluable.shape[0])

    @property
    def n_evaluable(self) -> int:
        """Number of classes that enter the means."""
        return int(self.evaluable.sum())


def _summarise(
    ap: np.ndarray, auc: np.ndarray, evaluable: np.ndarray
) -> dict[str, np.ndarray]:
    """Means over evaluable classes along the last axis.

    Parameters
    ----------
    ap, auc : ndarray, shape (..., n_classes)
    evaluable : ndarray of bool, shape (..., n_classes)

    Returns
    -------
    dict
        ``TAGGING_STATISTICS`` -> ndarray of shape (...); NaN where no class is evaluable.
    """
    count = evaluable.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        m_ap = np.where(evaluable, ap, 0.0).sum(axis=-1) / count
        m_auc = np.where(evaluable, auc, 0.0).sum(axis=-1) / count
        class_dp = np.where(evaluable, d_prime(np.where(evaluable, auc, 0.5)), 0.0)
        m_class_dp = class_dp.sum(axis=-1) / count
    return {
        "mAP": m_ap,
        "mean_auc": m_auc,
        "d_prime": np.asarray(d_prime(m_auc)),
        "mean_class_d_prime": m_class_dp,
    }


def tagging_metrics(y_true: object, y_score: object) -> TaggingMetrics:
    """mAP, mean AUC and d' of a multi-label classifier, with per-class detail.

    Parameters
    ----------
    y_true : array_like, shape (n_clips, n_classes) or (n_clips,)
        0/1 (bool or int) multi-hot labels; 1-D is one class.
    y_score : array_like, same shape as ``y_true``
        Finite scores (e.g. sigmoid outputs).

    Returns
    -------
    TaggingMetrics
        Means are over classes with at least one positive and one negative clip;
        ``n_excluded`` counts the others.

    Raises
    ------
    ValueError
        Shapes differ, labels are not 0/1, or scores are not finite.
    """
    y, s = _check_tagging_inputs(y_true, y_score)
    ap, auc = _ap_auc_batch(y, s)
    support = y.sum(axis=0, dtype=np.int64)
    n_neg = y.shape[0] - support
    evaluable = (support > 0) & (n_neg > 0)
    summary = _summarise(ap, auc, evaluable)
    per_class_dp = np.asarray(d_prime(auc), dtype=np.float64)
    for arr in (ap, auc, per_class_dp, support, n_neg, evaluable):
        arr.flags.writeable = False
    return TaggingMetrics(
        mAP=float(summary["mAP"]),
        mean_auc=float(summary["mean_auc"]),
        d_prime=float(summary["d_prime"]),
        mean_class_d_prime=float(summary["mean_class_d_prime"]),
        per_class_ap=ap,
        per_class_auc=auc,
        per_class_d_prime=per_class_dp,
        support=support,
        n_negatives=n_neg,
        evaluable=evaluable,
        n_excluded=int((~evaluable).sum()),
    )


# --------------------------------------------------------------------------------------
# Single-label (multi-class) report
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SingleLabelReport:
    """Accuracy and precision / recall / F1 of a single-label classifier.

    Matches scikit-learn's ``accuracy_score`` and ``precision_recall_fscore_support``
    with ``labels=range(n_classes)`` and ``zero_division=0``: an undefined ratio is 0.0.

    Attributes
    ----------
    accuracy : float
    macro_precision, macro_recall, macro_f1 : float
        Plain means over all ``n_classes`` classes.
    weighted_precision, weighted_recall, weighted_f1 : float
        Means weighted by ``support`` (0.0 if there are no samples).
    precision, recall, f1 : ndarray of float64, shape (n_classes,)
    support : ndarray of int64, shape (n_classes,)
        True samples per class.
    confusion : ndarray of int64, shape (n_classes, n_classes)
        ``confusion[i, j]``: samples of true class i predicted as j.
    n_samples : int
    """

    accuracy: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    weighted_precision: float
    weighted_recall: float
    weighted_f1: float
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    confusion: np.ndarray
    n_samples: int


def _check_class_indices(name: str, a: object, n_classes: int) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D class indices, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        elif arr.size or arr.dtype.kind not in "f":
            raise ValueError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
        else:
            arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        raise ValueError(f"{name} must lie in [0, {n_classes}); found {arr.min()}..{arr.max()}")
    return arr.astype(np.int64, copy=False)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=np.asarray(den) > 0)


def single_label_report(
    y_true_idx: object, y_pred_idx: object, *, n_classes: int
) -> SingleLabelReport:
    """Classification report of single-label predictions (as for UrbanSound8K).

    Parameters
    ----------
    y_true_idx, y_pred_idx : array_like of int, shape (n_samples,)
        True and predicted class indices in ``[0, n_classes)``.
    n_classes : int
        Number of classes; classes never seen in either array still count in the macro
        averages (with precision = recall = F1 = 0).

    Returns
    -------
    SingleLabelReport

    Raises
    ------
    ValueError
        Lengths differ, ``n_classes < 1``, or an index is not an integer in range.
    """
    if int(n_classes) != n_classes or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    n_classes = int(n_classes)
    t = _check_class_indices("y_true_idx", y_true_idx, n_classes)
    p = _check_class_indices("y_pred_idx", y_pred_idx, n_classes)
    if t.shape != p.shape:
        raise ValueError(f"y_true_idx and y_pred_idx differ in length: {t.size} vs {p.size}")
    confusion = np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )
    tp = np.diag(confusion)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * tp, support + predicted)  # 2TP / (2TP + FP + FN)
    n = int(t.size)

    def weighted(v: np.ndarray) -> float:
        return float(v @ support / n) if n else 0.0

    for arr in (precision, recall, f1, support, confusion):
        arr.flags.writeable = False
    return SingleLabelReport(
        accuracy=float(tp.sum() / n) if n else 0.0,
        macro_precision=float(precision.mean()),
        macro_recall=float(recall.mean()),
        macro_f1=float(f1.mean()),
        weighted_precision=weighted(precision),
        weighted_recall=weighted(recall),
        weighted_f1=weighted(f1),
        precision=precision,
        recall=recall,
        f1=f1,
        support=support.astype(np.int64, copy=False),
        confusion=confusion.astype(np.int64, copy=False),
        n_samples=n,
    )


def is_single_label(y_true_multi_hot: object) -> bool:
    """Whether multi-hot labels are single-label: every row has exactly one positive.

    Parameters
    ----------
    y_true_multi_hot : array_like, shape (n_clips, n_classes)
        0/1 labels.

    Returns
    -------
    bool
        False for an empty array.

    Raises
    ------
    ValueError
        Labels are not 0/1 or not 2-D.
    """
    arr = np.asarray(y_true_multi_hot)
    if arr.ndim != 2:
        raise ValueError(f"y_true_multi_hot must be 2-D (n_clips, n_classes), got shape {arr.shape}")
    y = _check_labels(arr, "y_true_multi_hot")
    return bool(y.shape[0] > 0 and np.all(y.sum(axis=1) == 1))


# --------------------------------------------------------------------------------------
# Percentile intervals from bootstrap replicates: the one rule of every section
# --------------------------------------------------------------------------------------

#: How :func:`percentile_interval` treats a non-finite replicate; which section uses which, and why:
#:
#: * Performance (:func:`bootstrap_ci`, :func:`bootstrap_tagging_ci`): ``"drop"`` with ``min_used=1``.
#:   A replicate is NaN when its resample has no evaluable class, ``+-inf`` for d' of a per-class
#:   AUC of 1: the statistic is undefined there, so the replicate is dropped and the count of the
#:   others is reported (``n_used``); any usable replicate gives an interval.
#: * Bias (:mod:`factsheet.bias.stats`): ``"drop"`` with ``min_used=10, min_used_fraction=0.5``.
#:   Groups are small, so a resample often leaves a group without positives of a class; when most
#:   replicates are undefined the rest are a selected (conditional) sample, and no interval is given.
#: * Robustness (:mod:`attacks.curves`): ``"keep"``. A clip not fooled within the budget has norm
#:   ``+inf``: a value larger than any finite one, not a missing one; dropping it would move the
#:   interval towards the fooled clips. A bound may be ``+inf`` ("not found").
INFINITE_RULES: tuple[str, ...] = ("drop", "keep")

#: The interval methods of the FactSheet, as its JSON names them (``interval_method`` fields):
#: ``"bca"`` bias-corrected and accelerated bootstrap (:func:`bca_interval`: performance mAP,
#: mean AUC, d'); ``"percentile"`` percentile bootstrap (:func:`percentile_interval`: group
#: metrics, disparities, drops); ``"order_statistic"`` distribution-free binomial interval of a
#: quantile (:func:`order_statistic_interval`: perturbation percentiles); ``"clopper_pearson"``
#: exact binomial interval of a proportion (:func:`clopper_pearson_interval`: success rates, a
#: single-label group's accuracy); ``"newcombe"`` Newcombe's hybrid score interval of the difference
#: of two independent proportions (:func:`newcombe_difference_interval`: accuracy disparities);
#: ``"studentized"`` studentised bootstrap of a mean (``factsheet.explanation.stats.mean_interval``: the
#: Explanation section's means); ``"bca_expanded"`` BCa taken at Hesterberg's expanded level
#: (:func:`expanded_confidence`) for the fewest positives of a class the number rests on (the Bias
#: section's group rows and class cells, the natural shift). The schema's ``interval_methods`` enum is this tuple (a test checks).
INTERVAL_METHODS: tuple[str, ...] = ("bca", "bca_expanded", "percentile", "studentized", "order_statistic",
                                     "clopper_pearson", "newcombe")


def sorted_percentiles(sorted_values: np.ndarray, percentiles: np.ndarray) -> np.ndarray:
    """Linear-interpolation percentiles along axis 0 of values sorted along axis 0, ``+inf``-aware.

    numpy's default ("linear", Hyndman & Fan type 7) percentile: with ``h = (n - 1) * P / 100``,
    ``j = floor(h)`` and ``g = h - j``, the P-th percentile is ``x_(j)`` when ``g == 0`` and
    ``(1 - g) * x_(j) + g * x_(j+1)`` otherwise, computed with numpy's own operations in numpy's
    order, so on finite data it equals ``np.percentile`` bit for bit. A ``+inf`` value is the
    limit of a finite value growing without bound: the percentile is ``+inf`` as soon as the
    interpolation gives an infinite value a positive weight, never NaN (``np.percentile``
    returns NaN there, from ``inf - inf``).

    Parameters
    ----------
    sorted_values : ndarray, shape (n, ...)
        Sorted along axis 0, ``n >= 1``; no NaN, no ``-inf``.
    percentiles : ndarray, shape (n_percentiles,) or ()
        Percentiles in [0, 100].

    Returns
    -------
    ndarray, shape ``percentiles.shape + sorted_values.shape[1:]``
        In the unit of the values (a numpy float for a scalar percentile of 1-D values).
    """
    xs, q = sorted_values, percentiles
    n = xs.shape[0]
    h = (n - 1) * np.true_divide(q, 100)  # numpy's operations, in numpy's order: bit-identical
    j = np.floor(h)
    g = (h - j).reshape(q.shape + (1,) * (xs.ndim - 1))
    j = j.astype(np.intp)
    lo = xs[j]
    hi = xs[np.minimum(j + 1, n - 1)]
    touches_inf = np.isposinf(lo) | ((g > 0) & np.isposinf(hi))
    hi = np.where(np.isposinf(hi), lo, hi)  # keeps the g == 0 case at lo (inf * 0 would be NaN)
    with np.errstate(invalid="ignore"):
        diff = hi - lo
        out = np.where(g >= 0.5, hi - diff * (1 - g), lo + diff * g)  # numpy's _lerp, same roundings
    out[touches_inf] = np.inf
    return out[()] if out.ndim == 0 else out


@dataclass(frozen=True)
class PercentileInterval:
    """The ``(1 -+ confidence) / 2`` percentiles of bootstrap replicates.

    Attributes
    ----------
    low, high : float or ndarray of shape ``replicates.shape[1:]``
        The bounds, in the unit of the replicates; NaN when :attr:`defined` is False;
        ``+inf`` possible with ``infinite="keep"``.
    n_used : int
        Replicates the bounds were taken from (all of them with ``infinite="keep"``).
    n_replicates : int
    confidence : float
    defined : bool
        Enough replicates were usable (``min_used`` / ``min_used_fraction``).
    """

    low: float | np.ndarray
    high: float | np.ndarray
    n_used: int
    n_replicates: int
    confidence: float
    defined: bool


def percentile_interval(
    replicates: object,
    *,
    confidence: float,
    infinite: str = "drop",
    min_used: int = 1,
    min_used_fraction: float = 0.0,
) -> PercentileInterval:
    """Percentile-bootstrap interval: the ``alpha`` and ``1 - alpha`` percentiles of the replicates.

    ``alpha = (1 - confidence) / 2``; percentiles by :func:`sorted_percentiles` (numpy's
    linear rule). Every bootstrap interval of the FactSheet comes from here; the sections
    differ only in what a non-finite replicate means, which ``infinite`` states (the options
    each section uses, and why: :data:`INFINITE_RULES`).

    Parameters
    ----------
    replicates : array_like, shape (n_replicates,) or (n_replicates, ...)
        One statistic (or one array of statistics, ``infinite="keep"`` only) per replicate,
        along axis 0.
    confidence : float
        In (0, 1).
    infinite : {"drop", "keep"}
        ``"drop"``: NaN and ``+-inf`` replicates are left out (1-D replicates only).
        ``"keep"``: ``+inf`` replicates stay in and count as larger than every finite one
        (bounds may be ``+inf``); a NaN or ``-inf`` replicate is an error.
    min_used : int, default 1
        With ``"drop"``: fewest usable replicates for an interval.
    min_used_fraction : float, default 0.0
        With ``"drop"``: fewest usable replicates as a share of ``n_replicates``. The interval
        is refused (NaN bounds, ``defined=False``) when ``n_used < max(min_used,
        min_used_fraction * n_replicates)``.

    Returns
    -------
    PercentileInterval

    Raises
    ------
    ValueError
        Bad options, multi-dimensional replicates with ``"drop"``, NaN or ``-inf`` with ``"keep"``.
    """
    if infinite not in INFINITE_RULES:
        raise ValueError(f"infinite must be one of {INFINITE_RULES}, got {infinite!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    values = np.asarray(replicates, dtype=float)
    alpha = (1.0 - confidence) / 2.0
    q = np.array([100.0 * alpha, 100.0 * (1.0 - alpha)])
    if infinite == "keep":
        return _interval_keeping_inf(values, q, float(confidence))
    return _interval_dropping_undefined(values, q, float(confidence), min_used=min_used,
                                        min_used_fraction=min_used_fraction)


def _interval_keeping_inf(values: np.ndarray, q: np.ndarray, confidence: float) -> PercentileInterval:
    """``infinite="keep"``: every replicate counts, ``+inf`` as larger than any finite value."""
    if values.ndim == 0 or values.shape[0] < 1:
        raise ValueError("need at least one replicate")
    if np.isnan(values).any() or np.isneginf(values).any():
        raise ValueError("replicates must not be NaN or -inf with infinite='keep'")
    low, high = sorted_percentiles(np.sort(values, axis=0), q)
    n = int(values.shape[0])
    return PercentileInterval(low=low, high=high, n_used=n, n_replicates=n, confidence=confidence, defined=True)


def _interval_dropping_undefined(values: np.ndarray, q: np.ndarray, confidence: float, *, min_used: int,
                                 min_used_fraction: float) -> PercentileInterval:
    """``infinite="drop"``: the finite replicates, if at least one, ``min_used`` and
    ``min_used_fraction`` of all of them."""
    if values.ndim != 1:
        raise ValueError(f"infinite='drop' needs 1-D replicates, got shape {values.shape}")
    finite = values[np.isfinite(values)]
    n_used, n = int(finite.size), int(values.size)
    if n_used == 0 or n_used < max(min_used, min_used_fraction * n):
        return PercentileInterval(low=float("nan"), high=float("nan"), n_used=n_used, n_replicates=n,
                                  confidence=confidence, defined=False)
    low, high = sorted_percentiles(np.sort(finite), q)
    return PercentileInterval(low=float(low), high=float(high), n_used=n_used, n_replicates=n,
                              confidence=confidence, defined=True)


def order_statistic_ranks(n: int, *, percentiles: object, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """1-based ranks ``(l, u)`` of the distribution-free interval ``[x_(l), x_(u)]`` of a quantile.

    For ``n`` independent draws of a continuous distribution the number ``B`` of draws below its
    ``p``-quantile is Binomial(n, p), so ``[x_(l), x_(u)]`` contains the quantile with probability
    ``P(l <= B < u)`` whatever the distribution. ``l`` is the largest rank with ``P(B < l) <=
    alpha`` and ``u`` the smallest with ``P(B >= u) <= alpha``, ``alpha = (1 - confidence) / 2``:
    each side misses at most ``alpha`` (exact, conservative). ``l = 0`` when even ``P(B = 0) >
    alpha`` (too few draws for a lower bound) and ``u = n + 1`` when ``P(B = n) > alpha`` (no upper
    bound).

    Parameters
    ----------
    n : int
        Sample size, ``>= 0``.
    percentiles : array_like, shape (n_percentiles,) or ()
        Percentiles in [0, 100].
    confidence : float
        In (0, 1).

    Returns
    -------
    lower_rank, upper_rank : ndarray of int, shape of ``percentiles``
        In ``0..n`` and ``1..n + 1``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    q = np.asarray(percentiles, dtype=float) / 100.0
    alpha = (1.0 - confidence) / 2.0
    k = np.arange(n + 1)
    p = q.reshape(-1)[None, :]
    lower = (binom.cdf(k[:, None], n, p) <= alpha).sum(axis=0)  # l = k + 1 for P(B <= k) <= alpha
    upper = (binom.sf(k[:, None], n, p) > alpha).sum(axis=0) + 1  # u = k + 1 for P(B > k) <= alpha
    return lower.reshape(q.shape), upper.reshape(q.shape)


def order_statistic_interval(values: object, *, percentiles: object, confidence: float) -> tuple[np.ndarray,
                                                                                               np.ndarray]:
    """Distribution-free confidence interval of population percentiles from order statistics.

    The bounds are the order statistics of :func:`order_statistic_ranks` (an exact binomial
    interval, no resampling). ``+inf`` values (clips not fooled within the budget) are the
    largest; a bound is ``+inf`` when it falls on them (the percentile may not be attained),
    ``-inf`` for a lower rank of 0: too few values to bound the percentile from below
    (insufficient evidence). For percentiles of one sample of clips, unlike the percentile
    bootstrap, which under-covers low percentiles of 32-64 clips (``bench/coverage.py``).

    Parameters
    ----------
    values : array_like, shape (n,) or (n, ...)
        Independent draws along axis 0, ``n >= 1``; no NaN or ``-inf``.
    percentiles : array_like, shape (n_percentiles,) or ()
        Percentiles in [0, 100].
    confidence : float
        In (0, 1).

    Returns
    -------
    low, high : ndarray, shape ``percentiles.shape + values.shape[1:]``
        In the unit of the values.
    """
    x = np.asarray(values, dtype=float)
    if x.ndim == 0 or x.shape[0] < 1:
        raise ValueError("need at least one value")
    if np.isnan(x).any() or np.isneginf(x).any():
        raise ValueError("values must not be NaN or -inf")
    n = x.shape[0]
    lo_rank, hi_rank = order_statistic_ranks(n, percentiles=percentiles, confidence=confidence)
    padded = np.concatenate([np.full((1,) + x.shape[1:], -np.inf), np.sort(x, axis=0),
                             np.full((1,) + x.shape[1:], np.inf)])
    return padded[lo_rank], padded[hi_rank]


def clopper_pearson_interval(successes: int, n: int, *,
                             confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Clopper-Pearson ("exact") interval of a proportion: (None, None) when ``n = 0``.

    Inverts two one-sided binomial tests with beta quantiles, so it covers the true proportion
    with probability at least ``confidence`` for every proportion and every ``n``. Used for the
    Robustness section's success rates (the Wilson score interval, used before, covered only 85 %
    at 16 clips near a success rate of 0.99, by an exact binomial sum) and for a single-label
    group's accuracy in the Bias section (the percentile bootstrap, used before, has zero width
    at 20 of 20 clips right; ``bench/coverage.py --studies accuracy``).

    Parameters
    ----------
    successes : int
        Successes (clips fooled, clips classified right), 0 <= successes <= n.
    n : int
        Trials (clips).
    confidence : float
        Two-sided level in (0, 1).

    Returns
    -------
    (low, high) : tuple of float, or (None, None)
        Bounds in [0, 1]; 0 when there is no success, 1 when every trial is one.
    """
    from scipy.stats import beta

    if n == 0:
        return None, None
    alpha = 1.0 - confidence
    low = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, n - successes + 1))
    high = 1.0 if successes == n else float(beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    return low, high


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (no continuity correction), the building block of
    :func:`newcombe_difference_interval`.

    The proportions ``p`` with ``|k/n - p| <= z sqrt(p (1 - p) / n)``, ``z = Phi^-1((1 + confidence) / 2)``:
    ``(c -+ h) / (1 + z^2 / n)`` with ``c = k/n + z^2 / (2n)`` and
    ``h = z sqrt(k/n (1 - k/n) / n + z^2 / (4 n^2))``.

    Parameters
    ----------
    successes : int
        0 <= successes <= n.
    n : int
        Trials, >= 1.
    confidence : float
        Two-sided level in (0, 1).

    Returns
    -------
    (low, high) : tuple of float
        In [0, 1].
    """
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes} of {n}")
    z = float(ndtri(0.5 + confidence / 2.0))
    p = successes / n
    centre = p + z * z / (2.0 * n)
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n))
    scale = 1.0 + z * z / n
    # the bounds are exactly 0 (1) at k = 0 (k = n); rounding could give -1e-17
    return max(0.0, (centre - half) / scale), min(1.0, (centre + half) / scale)


def newcombe_difference_interval(successes_a: int, n_a: int, successes_b: int, n_b: int, *,
                                 confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Newcombe's hybrid score interval of the difference of two independent proportions ``p_a - p_b``
    (Newcombe 1998, Statistics in Medicine 17: 873-890, method 10).

    With the Wilson intervals ``(l_a, u_a)`` and ``(l_b, u_b)`` of the two proportions
    (:func:`wilson_interval`) and ``d = k_a / n_a - k_b / n_b``::

        low  = d - sqrt((k_a/n_a - l_a)^2 + (u_b - k_b/n_b)^2)
        high = d + sqrt((u_a - k_a/n_a)^2 + (k_b/n_b - l_b)^2)

    Unlike a bootstrap of the difference, it keeps its width when both proportions are 0 or 1 (20 of
    20 clips right in both groups), and it covers near the nominal level at 20-200 trials per group
    (its exact coverage, a sum over every pair of outcomes: ``bench/coverage.py --studies accuracy``).
    Swapping the groups negates the interval.

    Parameters
    ----------
    successes_a, n_a : int
        Successes and trials of the first group (``n_a >= 1``).
    successes_b, n_b : int
        The same for the second group.
    confidence : float
        Two-sided level in (0, 1).

    Returns
    -------
    (low, high) : tuple of float, or (None, None)
        Bounds of ``p_a - p_b`` in [-1, 1]; (None, None) when a group has no trial.
    """
    if n_a == 0 or n_b == 0:
        return None, None
    la, ua = wilson_interval(successes_a, n_a, confidence=confidence)
    lb, ub = wilson_interval(successes_b, n_b, confidence=confidence)
    pa, pb = successes_a / n_a, successes_b / n_b
    d = pa - pb
    return (max(-1.0, d - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2)),
            min(1.0, d + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)))


def bca_interval(
    replicates: object,
    *,
    estimate: float,
    jackknife: object,
    confidence: float,
) -> PercentileInterval:
    """Bias-corrected and accelerated (BCa) bootstrap interval (Efron and Tibshirani 1993, 14.3).

    The bounds are the ``alpha_1`` and ``alpha_2`` percentiles of the replicates (numpy's linear
    rule, :func:`sorted_percentiles`), with ``alpha_i = Phi(z0 + (z0 + z_i) / (1 - a (z0 + z_i)))``,
    ``z_1, z_2 = -+ Phi^-1((1 + confidence) / 2)``; the bias correction ``z0 = Phi^-1(share of
    replicates below the estimate, ties counting one half)`` and the acceleration ``a = sum(u^3) /
    (6 (sum u^2)^1.5)`` from the leave-one-out values ``theta_(i)``, ``u_i = mean(theta_(.)) -
    theta_(i)``. The same computation as ``scipy.stats.bootstrap(method="BCa")`` on the same
    replicates and jackknife (tested against it). Non-finite replicates are dropped (the
    performance rule of :func:`percentile_interval`); the interval is undefined (NaN bounds,
    ``defined=False``) when the estimate or a leave-one-out value is not finite, or when the
    estimate lies outside the central ``confidence`` range of its own replicates (fewer than
    ``(1 - confidence) / 2`` of them on one side of it): the bootstrap distribution then sits
    almost wholly on one side, e.g. mAP over many rare classes, where resampling duplicates a
    class's few positives and lifts AP in nearly every replicate; the percentile interval then
    excludes the estimate itself and BCa's correction collapses both bounds onto the extreme
    replicates (``bench/bench_metrics.py``).

    Parameters
    ----------
    replicates : array_like, shape (n_replicates,)
        The statistic on each bootstrap resample.
    estimate : float
        The statistic on the full data.
    jackknife : array_like, shape (n_items,)
        The statistic with item ``i`` left out, for every item.
    confidence : float
        In (0, 1).

    Returns
    -------
    PercentileInterval
        ``n_used`` counts the finite replicates.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    values = np.asarray(replicates, dtype=float)
    jack = np.asarray(jackknife, dtype=float)
    if values.ndim != 1 or jack.ndim != 1 or jack.size < 2:
        raise ValueError(f"need 1-D replicates and at least two jackknife values, got shapes {values.shape}, "
                         f"{jack.shape}")
    finite = np.sort(values[np.isfinite(values)])
    n_used, n = int(finite.size), int(values.size)
    undefined = PercentileInterval(low=float("nan"), high=float("nan"), n_used=n_used, n_replicates=n,
                                   confidence=float(confidence), defined=False)
    if n_used == 0 or not math.isfinite(estimate) or not np.isfinite(jack).all():
        return undefined
    below = (np.count_nonzero(finite < estimate) + np.count_nonzero(finite <= estimate)) / (2 * n_used)
    alpha = (1.0 - confidence) / 2.0
    if not alpha <= below <= 1.0 - alpha:  # the estimate lies outside its own bootstrap's central range
        return undefined
    z0 = float(ndtri(below))
    u = jack.mean() - jack
    spread = float((u**2).sum())
    accel = float((u**3).sum()) / (6.0 * spread**1.5) if spread > 0 else 0.0
    if not math.isfinite(z0):
        return undefined
    z = float(ndtri((1.0 - confidence) / 2.0))
    shifted = np.array([z0 + z, z0 - z])
    alphas = ndtr(z0 + shifted / (1.0 - accel * shifted))
    low, high = sorted_percentiles(finite, 100.0 * alphas)
    return PercentileInterval(low=float(low), high=float(high), n_used=n_used, n_replicates=n,
                              confidence=float(confidence), defined=True)


#: The largest level :func:`expanded_confidence` returns (reached below 3 observations at 0.95, where the
#: expanded quantile rounds the level to 1.0): an interval at it spans its replicates' extremes.
EXPANDED_LEVEL_CAP: float = 1.0 - 1e-9


def expanded_confidence(confidence: float, *, n: int) -> float:
    """The confidence level whose normal quantile is Hesterberg's expanded one for ``n`` observations.

    A bootstrap interval from ``n`` observations is too narrow: the bootstrap distribution's spread is
    the plug-in one (``sqrt((n - 1) / n)`` of the unbiased standard error for a mean) and a normal
    quantile ignores that the spread is estimated. Hesterberg (2015, "What teachers should know about
    the bootstrap", The American Statistician 69(4), section 3.3) widens the percentile interval by
    using, in place of ``z = Phi^-1((1 + confidence) / 2)``, ``sqrt(n / (n - 1)) t_{n-1}`` with
    ``t_{n-1}`` the Student-t quantile of the same level. Passing the returned level to
    :func:`percentile_interval` or :func:`bca_interval` applies that quantile (in BCa the quantile
    enters as ``z_i``), so the interval's formula, its refusals and its agreement with scipy on a given
    level stay as they are.

    Parameters
    ----------
    confidence : float
        Nominal level, in (0, 1).
    n : int
        Observations the statistic rests on (at least 1; 1 gives :data:`EXPANDED_LEVEL_CAP`).

    Returns
    -------
    float
        ``2 Phi(sqrt(n / (n - 1)) t_{n-1}((1 + confidence) / 2)) - 1``, at most :data:`EXPANDED_LEVEL_CAP`
        (in float64 the formula gives exactly 1 at n = 2, which no interval accepts), above ``confidence``; it tends to
        ``confidence`` as ``n`` grows (for 0.95: 0.9568 at n = 56, 0.9633 at 28, 0.9829 at 10).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    if n < 1:
        raise ValueError(f"need at least 1 observation, got n={n!r}")
    if n == 1:  # no t quantile (0 degrees of freedom): as wide as the cap allows
        return EXPANDED_LEVEL_CAP
    z = math.sqrt(n / (n - 1.0)) * float(stdtrit(n - 1.0, (1.0 + confidence) / 2.0))
    return float(min(2.0 * ndtr(z) - 1.0, EXPANDED_LEVEL_CAP))


# --------------------------------------------------------------------------------------
# Bootstrap confidence intervals
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootstrapInterval:
    """A percentile-bootstrap confidence interval.

    Attributes
    ----------
    estimate : float
        The statistic on the full (not resampled) data.
    low, high : float
        Percentile bounds; NaN if no replicate was usable.
    n_used : int
        Replicates with a finite value (the others -- NaN, e.g. no evaluable class, or
        +-inf, e.g. a per-class AUC of 1 -- are dropped).
    n_resamples : int
    confidence : float
    method : str
        ``"percentile"`` or ``"bca"`` (see :data:`INTERVAL_METHODS`).
    """

    estimate: float
    low: float
    high: float
    n_used: int
    n_resamples: int
    confidence: float
    method: str = "percentile"

    def as_tuple(self) -> tuple[float, float]:
        """``(low, high)``."""
        return (self.low, self.high)


def _check_bootstrap_args(n_items: int, n_resamples: int, confidence: float, seed: int) -> None:
    if int(n_items) != n_items or n_items < 1:
        raise ValueError(f"need at least one item to resample, got n_items={n_items!r}")
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int, got {seed!r}")


def _resample_indices(n_items: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """The bootstrap draws: ``n_resamples`` arrays of ``n_items`` indices, with replacement.

    One ``rng.integers`` call per replicate, so every consumer (generic or vectorised)
    sees the same replicates for the same seed, whatever block size it uses.
    """
    rng = np.random.default_rng(seed)
    for _ in range(n_resamples):
        yield rng.integers(0, n_items, size=n_items)


def _interval(
    estimate: float, values: np.ndarray, n_resamples: int, confidence: float
) -> BootstrapInterval:
    """A performance interval: :func:`percentile_interval` with non-finite replicates dropped."""
    iv = percentile_interval(values, confidence=confidence, infinite="drop", min_used=1)
    return BootstrapInterval(
        estimate=float(estimate),
        low=iv.low,
        high=iv.high,
        n_used=iv.n_used,
        n_resamples=int(n_resamples),
        confidence=float(confidence),
    )


def bootstrap_ci(
    statistic: Callable[[np.ndarray], float | Mapping[str, float]],
    *,
    n_items: int,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int,
) -> BootstrapInterval | dict[str, BootstrapInterval]:
    """Percentile-bootstrap CI of any statistic of items resampled with replacement.

    Parameters
    ----------
    statistic : callable
        ``statistic(idx)`` with ``idx`` an int array of shape (n_items,) (the full data is
        ``arange(n_items)``) returns a float, or a mapping of names to floats.
    n_items : int
        Number of items (e.g. clips) to resample.
    n_resamples : int, default 1000
    confidence : float, default 0.95
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives the same replicates as
        :func:`bootstrap_tagging_ci`.

    Returns
    -------
    BootstrapInterval, or dict of str to BootstrapInterval
        Matching what ``statistic`` returns; non-finite replicates are dropped.
    """
    _check_bootstrap_args(n_items, n_resamples, confidence, seed)
    full = statistic(np.arange(n_items))
    reps = [statistic(idx) for idx in _resample_indices(n_items, n_resamples, seed)]
    if isinstance(full, Mapping):
        return {
            k: _interval(full[k], np.array([r[k] for r in reps], dtype=float), n_resamples, confidence)
            for k in full
        }
    return _interval(full, np.array(reps, dtype=float), n_resamples, confidence)


def _bootstrap_threads(n_tasks: int) -> int:
    """Worker threads for ``n_tasks`` blocks: ``_BOOTSTRAP_THREADS``, else one per core."""
    if _BOOTSTRAP_THREADS is not None:
        wanted = int(_BOOTSTRAP_THREADS)
    elif hasattr(os, "sched_getaffinity"):
        wanted = min(len(os.sched_getaffinity(0)), 8)
    else:  # pragma: no cover - macOS, Windows
        wanted = min(os.cpu_count() or 1, 8)
    return max(1, min(wanted, n_tasks))


def _run_blocks(
    evaluate: Callable[[int, np.ndarray], None],
    blocks: Iterator[tuple[int, np.ndarray]],
    n_blocks: int,
) -> None:
    """``evaluate(*block)`` for every block, on worker threads (numpy and scipy release the GIL).

    Blocks are produced in order on the calling thread and at most two per thread are
    pending, so memory stays bounded; ``evaluate`` writes its results into fixed slots,
    so they do not depend on which thread ran which block or when.
    """
    threads = _bootstrap_threads(n_blocks)
    if threads == 1:
        for block in blocks:
            evaluate(*block)
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending: deque = deque()
        try:
            for block in blocks:
                pending.append(pool.submit(evaluate, *block))
                while len(pending) > 2 * threads:
                    pending.popleft().result()
            while pending:
                pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def _rank_blocks(y: np.ndarray, s: np.ndarray) -> tuple[_Ranked, tuple[np.ndarray, np.ndarray]]:
    """``_rank(y.T, s.T)`` and the per-class AP and AUC, sorting blocks of classes on threads.

    The blocks are those of :func:`_ap_auc_batch` (small enough to stay in cache), so AP
    and AUC are those of :func:`tagging_metrics`; the blocks' rankings are then joined
    into one, equal to ranking every class at once.

    Parameters
    ----------
    y : ndarray of bool, shape (n_clips, n_classes)
    s : ndarray of float64, same shape, finite

    Returns
    -------
    ranked : _Ranked
    (ap, auc) : ndarray of float64, shape (n_classes,)
    """
    n, m = y.shape
    if m == 0:
        ranked = _rank(np.ascontiguousarray(y.T), np.ascontiguousarray(s.T))
        return ranked, _ap_auc_ranked(ranked)
    step = max(1, _BLOCK_ELEMENTS // max(n, 1))
    bounds = [(lo, min(lo + step, m)) for lo in range(0, m, step)]

    def work(block: tuple[int, int]) -> tuple[_Ranked, tuple[np.ndarray, np.ndarray]]:
        lo, hi = block
        r = _rank(np.ascontiguousarray(y[:, lo:hi].T), np.ascontiguousarray(s[:, lo:hi].T))
        return r, _ap_auc_ranked(r)

    threads = _bootstrap_threads(len(bounds))
    if threads == 1:
        parts = [work(b) for b in bounds]
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            parts = list(pool.map(work, bounds))
    blocks = [p[0] for p in parts]
    k_offset = np.cumsum([0] + [r.row.size for r in blocks[:-1]])
    n_pos = np.concatenate([r.n_pos for r in blocks])
    ranked = _Ranked(
        order=np.concatenate([r.order for r in blocks]),
        n_pos=n_pos,
        first=np.cumsum(n_pos) - n_pos,
        row=np.concatenate([r.row + lo for r, (lo, _) in zip(blocks, bounds)]),
        clip=np.concatenate([r.clip for r in blocks]),
        start=np.concatenate([r.start for r in blocks]),
        stop=np.concatenate([r.stop for r in blocks]),
        k_start=np.concatenate([r.k_start + off for r, off in zip(blocks, k_offset)]),
        k_stop=np.concatenate([r.k_stop + off for r, off in zip(blocks, k_offset)]),
    )
    ap = np.concatenate([p[1][0] for p in parts])
    auc = np.concatenate([p[1][1] for p in parts])
    return ranked, (ap, auc)


def _count_blocks(
    n_clips: int, n_resamples: int, seed: int, dtype: np.dtype
) -> Iterator[tuple[int, np.ndarray]]:
    """The bootstrap replicates as clip counts, ``_REPLICATE_BLOCK`` replicates at a time.

    The draws of :func:`_resample_indices` are consumed in order, on the calling thread:
    same seed, same replicates, whoever evaluates the blocks.

    Parameters
    ----------
    n_clips, n_resamples, seed : int
    dtype : numpy.dtype
        Integer type of the counts (``_CountPlan.count_dtype``).

    Yields
    ------
    lo : int
        Index of the block's first replicate.
    counts : ndarray of ``dtype``, shape (width, n_clips)
        Times each clip was drawn, one row per replicate (each row sums to ``n_clips``).
    """
    draws = _resample_indices(n_clips, n_resamples, seed)
    for lo in range(0, n_resamples, _REPLICATE_BLOCK):
        width = min(_REPLICATE_BLOCK, n_resamples - lo)
        counts = np.empty((width, n_clips), dtype=dtype)
        for j in range(width):
            counts[j] = np.bincount(next(draws), minlength=n_clips)
        yield lo, counts


def _bootstrap_tagging_values(
    y: np.ndarray, s: np.ndarray, n_resamples: int, seed: int, ranked: _Ranked | None = None
) -> dict[str, np.ndarray]:
    """Every bootstrap replicate of the ``TAGGING_STATISTICS`` of validated inputs.

    Each class is sorted once (:func:`_rank`); replicate ``i`` is the ``i``-th draw of
    :func:`_resample_indices`, turned into clip counts and evaluated by
    :func:`_count_block` in blocks of ``_REPLICATE_BLOCK`` replicates, on worker threads.

    Parameters
    ----------
    y : ndarray of bool, shape (n_clips, n_classes)
    s : ndarray of float64, same shape, finite
    n_resamples, seed : int
    ranked : _Ranked, optional
        ``_rank(y.T, s.T)`` if already at hand.

    Returns
    -------
    dict
        ``TAGGING_STATISTICS`` -> ndarray of float64, shape (n_resamples,).
    """
    if ranked is None:
        ranked, _ = _rank_blocks(y, s)
    plan = _count_plan(ranked)
    return _weighted_tagging_values(ranked, plan, _count_blocks(y.shape[0], n_resamples, seed, plan.count_dtype),
                                    n_resamples)


def _weighted_tagging_values(ranked: _Ranked, plan: _CountPlan, blocks: Iterator[tuple[int, np.ndarray]],
                             n_rows: int, *, total: int | None = None) -> dict[str, np.ndarray]:
    """The ``TAGGING_STATISTICS`` of every row of clip counts in ``blocks`` (``n_rows`` rows, each
    summing to ``total``, by default the number of clips)."""
    values = {k: np.empty(n_rows) for k in TAGGING_STATISTICS}

    def evaluate(lo: int, counts: np.ndarray) -> None:
        ap, auc, n_pos, n_neg = _count_block(ranked, plan, counts, total=total)
        summary = _summarise(ap, auc, (n_pos > 0) & (n_neg > 0))
        for k in TAGGING_STATISTICS:
            values[k][lo : lo + counts.shape[0]] = summary[k]

    _run_blocks(evaluate, blocks, -(-n_rows // _REPLICATE_BLOCK))
    return values


def _jackknife_blocks(n_clips: int, groups: np.ndarray, n_groups: int,
                      dtype: np.dtype) -> Iterator[tuple[int, np.ndarray]]:
    """Delete-a-group rows of clip counts, in blocks: row ``j`` is all ones but zeros at the clips
    ``i`` with ``i % n_groups == groups[j]`` (one clip per group: leave-one-out)."""
    residue = np.arange(n_clips) % n_groups
    for lo in range(0, groups.size, _REPLICATE_BLOCK):
        left_out = groups[lo : lo + _REPLICATE_BLOCK]
        yield lo, (residue[None, :] != left_out[:, None]).astype(dtype)


#: Most leave-out groups of :func:`tagging_jackknife` in :func:`bootstrap_tagging_ci`: up to this
#: many clips each clip is left out alone (the jackknife of ``scipy.stats.bootstrap``); above, the
#: clips form this many groups (clip ``i`` in group ``i % JACKKNIFE_GROUPS``) and each group is left
#: out in turn (the grouped jackknife, Efron and Tibshirani 1993, 11.5), so that the acceleration
#: costs about two bootstraps of 1000 replicates at any size.
JACKKNIFE_GROUPS = 2000


def tagging_jackknife(y_true: object, y_score: object, *, n_groups: int | None = None) -> dict[str, np.ndarray]:
    """mAP, mean AUC, d' and mean per-class d' with each clip (or group of clips) left out in turn.

    Each value is a count-weighted metric on the original clips (the left-out clips have weight
    0), evaluated by the bootstrap's kernel, so it equals the metric of :func:`tagging_metrics`
    on the clips left, with the evaluable-class rule applied to them. For the acceleration of
    :func:`bca_interval`.

    Parameters
    ----------
    y_true : array_like, shape (n_clips, n_classes)
        0/1 multi-hot labels, ``n_clips >= 2``.
    y_score : array_like, same shape
        Finite scores.
    n_groups : int, optional
        Leave out the groups ``{i : i % n_groups == g}`` for ``g = 0 .. n_groups - 1`` instead
        of one clip at a time (the default; also when ``n_groups >= n_clips``).

    Returns
    -------
    dict
        ``TAGGING_STATISTICS`` -> ndarray of float64, shape (n_clips,) or (n_groups,); NaN
        where the clips left have no evaluable class.
    """
    y, s = _check_tagging_inputs(y_true, y_score)
    return _tagging_jackknife(y, s, n_groups=n_groups)


def _tagging_jackknife(y: np.ndarray, s: np.ndarray, ranked: _Ranked | None = None, *,
                       n_groups: int | None = None) -> dict[str, np.ndarray]:
    n = y.shape[0]
    if n < 2:
        raise ValueError(f"the jackknife needs at least two clips, got {n}")
    g = n if n_groups is None else min(int(n_groups), n)
    if g < 2:
        raise ValueError(f"the jackknife needs at least two groups, got n_groups={n_groups!r}")
    if ranked is None:
        ranked, _ = _rank_blocks(y, s)
    plan = _count_plan(ranked)
    q, r = divmod(n, g)  # groups 0..r-1 hold q + 1 clips, the others q: one kernel call per row sum
    parts = [_weighted_tagging_values(ranked, plan, _jackknife_blocks(n, groups, g, plan.count_dtype), groups.size,
                                      total=n - size)
             for groups, size in ((np.arange(r), q + 1), (np.arange(r, g), q)) if groups.size]
    return {k: np.concatenate([p[k] for p in parts]) for k in TAGGING_STATISTICS}


def bootstrap_tagging_ci(
    y_true: object,
    y_score: object,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int,
    method: str = "bca",
    min_class_support: int = MIN_CLASS_SUPPORT,
) -> dict[str, BootstrapInterval]:
    """Bootstrap CIs (BCa by default) of mAP, mean AUC, d' and mean per-class d' over clips.

    Clips are resampled with replacement; each replicate applies the evaluable-class
    rule of :func:`tagging_metrics` to its own resample.  A replicate is computed as a
    count-weighted metric on the original clips (a clip drawn k times has weight k),
    which equals the metric on the resampled clips but needs no re-sorting.  Counts
    are integers, so blocks of replicates are evaluated exactly in small integer types
    (one sparse product sums the counts between the positives' tie-group edges of every
    class) on one thread per core; the results do not depend on the thread count.
    1000 replicates of 20 000 clips x 527 classes take a few seconds on two cores
    (``bench/bench_metrics.py``).

    Parameters
    ----------
    y_true : array_like, shape (n_clips, n_classes) or (n_clips,)
        0/1 multi-hot labels.
    y_score : array_like, same shape
        Finite scores.
    n_resamples : int, default 1000
    confidence : float, default 0.95
    seed : int
        Seed of ``numpy.random.default_rng``: same seed, same intervals.
    method : {"bca", "percentile"}, default "bca"
        ``"bca"``: :func:`bca_interval` with the leave-one-clip-out values of
        :func:`tagging_jackknife` (grouped above :data:`JACKKNIFE_GROUPS` clips; the percentile interval under-covers mAP and mean AUC of
        rare classes: ``bench/coverage.py``); ``"percentile"``: :func:`percentile_interval`.
    min_class_support : int, default :data:`MIN_CLASS_SUPPORT`
        No interval (NaN bounds: insufficient evidence) when an evaluable class has fewer
        positive or fewer negative clips than this: below it the intervals under-cover
        whatever the method (``bench/coverage.py``).

    Returns
    -------
    dict of str to BootstrapInterval
        Keys ``"mAP"``, ``"mean_auc"``, ``"d_prime"``, ``"mean_class_d_prime"``.  Each
        interval's ``n_used`` counts the replicates where the statistic was finite.

    Raises
    ------
    ValueError
        Bad labels / scores (see :func:`tagging_metrics`) or bad bootstrap options.
    """
    y, s = _check_tagging_inputs(y_true, y_score)
    _check_bootstrap_args(y.shape[0], n_resamples, confidence, seed)
    if method not in ("bca", "percentile"):
        raise ValueError(f"method must be 'bca' or 'percentile', got {method!r}")
    # One sort per class serves the point estimate (as tagging_metrics) and the replicates.
    ranked, (ap, auc) = _rank_blocks(y, s)
    point = _summarise(ap, auc, (ranked.n_pos > 0) & (ranked.n_pos < y.shape[0]))
    values = _bootstrap_tagging_values(y, s, n_resamples, seed, ranked)
    n_pos = ranked.n_pos[(ranked.n_pos > 0) & (ranked.n_pos < y.shape[0])]
    if n_pos.size and min(n_pos.min(), (y.shape[0] - n_pos).min()) < min_class_support:
        nan = float("nan")
        return {k: BootstrapInterval(estimate=float(point[k]), low=nan, high=nan,
                                     n_used=int(np.isfinite(values[k]).sum()),
                                     n_resamples=int(n_resamples), confidence=float(confidence), method=method)
                for k in TAGGING_STATISTICS}
    if method == "percentile":
        return {k: _interval(float(point[k]), values[k], n_resamples, confidence) for k in TAGGING_STATISTICS}
    jack = _tagging_jackknife(y, s, ranked, n_groups=JACKKNIFE_GROUPS) if y.shape[0] >= 2 else None
    out = {}
    for k in TAGGING_STATISTICS:
        if jack is None:
            iv = PercentileInterval(low=float("nan"), high=float("nan"), n_used=0, n_replicates=n_resamples,
                                    confidence=confidence, defined=False)
        else:
            iv = bca_interval(values[k], estimate=float(point[k]), jackknife=jack[k], confidence=confidence)
        out[k] = BootstrapInterval(estimate=float(point[k]), low=iv.low, high=iv.high, n_used=iv.n_used,
                                   n_resamples=int(n_resamples), confidence=float(confidence), method="bca")
    return out


def bootstrap_tagging_replicates(
    y_true: object, y_score: object, *, n_resamples: int, seed: int
) -> dict[str, np.ndarray]:
    """Every bootstrap replicate of mAP, mean AUC, d' and mean per-class d' (as
    :func:`bootstrap_tagging_ci`, before the interval is taken).

    Replicate ``i`` depends only on ``seed`` and the number of clips, so two score
    matrices of the same clips (e.g. clean and corrupted audio) evaluated with the same
    seed see the same resamples: their replicate differences form a paired bootstrap.

    Parameters
    ----------
    y_true : array_like, shape (n_clips, n_classes)
        0/1 multi-hot labels.
    y_score : array_like, same shape
        Finite scores.
    n_resamples : int
    seed : int

    Returns
    -------
    dict
        ``TAGGING_STATISTICS`` -> ndarray of float64, shape (n_resamples,); NaN where a
        replicate has no evaluable class.
    """
    y, s = _check_tagging_inputs(y_true, y_score)
    _check_bootstrap_args(y.shape[0], n_resamples, 0.5, seed)
    return _bootstrap_tagging_values(y, s, n_resamples, seed)
