"""Clip choice, bootstrap intervals, rank agreement and localisation of the Explanation section."""

from __future__ import annotations

import numpy as np
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from factsheet.metrics import finite_or_none, percentile_interval


def select_clips(labels: np.ndarray, scores: np.ndarray, *, n_per_class: int, threshold: float,
                 seed: int) -> list[list[int]]:
    """Per class, up to ``n_per_class`` correctly detected positives (label 1, score >= ``threshold``),
    drawn with ``np.random.default_rng([seed, class])`` and returned in clip order.

    Returns
    -------
    list of list of int
        Clip indices per class (empty where the class has no detected positive).
    """
    out = []
    for j in range(labels.shape[1]):
        hits = np.flatnonzero((labels[:, j] == 1) & (scores[:, j] >= threshold))
        if hits.size > n_per_class:
            hits = np.sort(np.random.default_rng([seed, j]).choice(hits, size=n_per_class, replace=False))
        out.append([int(i) for i in hits])
    return out


#: Fewest rows (explained clips or pairs) a mean's interval needs; below it the section prints "insufficient
#: evidence" (null bounds). With fewer than 5 rows more than 2.5 % of the bootstrap resamples repeat one row,
#: whose studentised value is infinite (``bench/coverage.py --studies explanation``).
MIN_ROWS = 5


def mean_interval(values: np.ndarray, *, n_resamples: int, confidence: float, seed,
                  method: str = "studentized") -> dict:
    """Mean over rows of ``values`` (n, ...) with a confidence interval of the population mean.

    Parameters
    ----------
    values : ndarray, shape (n, ...)
        One row per explained clip (or clip pair); units of the quantity averaged.
    n_resamples : int
        Bootstrap resamples of rows (``[metrics] bootstrap_resamples``; 0: no intervals).
    confidence : float
        In (0, 1).
    seed : int or sequence of int
        Seed of the resamples (``numpy.random.default_rng``).
    method : {"studentized", "percentile"}
        ``"studentized"`` (what the FactSheet prints): the bootstrap-t interval (Efron and Tibshirani
        1993, 12.5): ``t*_b = (mean*_b - mean) / (s*_b / sqrt n)`` on each resample (``s``: the standard
        deviation, ddof 1; a resample of equal rows has ``t* = +-inf``, or 0 at the mean), and
        ``[mean - t*_(1+c)/2 s / sqrt n, mean - t*_(1-c)/2 s / sqrt n]`` with the quantiles of ``t*``
        interpolated linearly (numpy's rule); none below :data:`MIN_ROWS` rows. 93.4-96.0 % at 5-28 rows of
        normal, beta and gamma rows up to skewness 2 in ``bench/coverage.py --studies explanation``.
        ``"percentile"``: the percentile bootstrap the FactSheet printed before issue 17 (48-51 % at 2 rows,
        85-92 % at 10-14 rows: it ignores the uncertainty of the standard deviation).

    Returns
    -------
    dict
        ``mean``, ``low``, ``high`` (float or list of float per column; None where there are no
        resamples, too few rows, or a bound is infinite; a zero-width interval where every row is equal).
    """
    values = np.asarray(values, np.float64)
    mean = values.mean(axis=0)
    low = high = None
    n = len(values)
    if method == "studentized":
        if n_resamples > 0 and n >= MIN_ROWS:
            low, high = _studentized(values, n_resamples=n_resamples, confidence=confidence, seed=seed)
    elif method == "percentile":
        if n_resamples > 0 and n >= 2:
            idx = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
            ci = percentile_interval(values[idx].mean(axis=1), confidence=confidence, infinite="keep")
            low, high = ci.low, ci.high
    else:
        raise ValueError(f"method must be 'studentized' or 'percentile', got {method!r}")
    return {"mean": _num(mean), "low": _num(low), "high": _num(high)}


def _studentized(values: np.ndarray, *, n_resamples: int, confidence: float, seed) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of the bootstrap-t interval of the column means of ``values`` (n, ...): two arrays of shape (...)."""
    n = len(values)
    idx = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    boot = values[idx]  # (B, n, ...)
    mean, sd = values.mean(axis=0), values.std(axis=0, ddof=1)
    m_b, s_b = boot.mean(axis=1), boot.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(s_b > 0, (m_b - mean) * np.sqrt(n) / s_b, np.sign(m_b - mean) * np.inf)
    t = np.where(np.isnan(t), 0.0, t)  # a resample of equal rows at the mean
    q_hi, q_lo = (_quantile_keep_inf(t, q) for q in ((1.0 + confidence) / 2.0, (1.0 - confidence) / 2.0))
    se = sd / np.sqrt(n)
    with np.errstate(invalid="ignore"):
        low, high = mean - q_hi * se, mean - q_lo * se
    flat = sd == 0  # every row equal: the mean is known exactly
    return np.where(flat, mean, low), np.where(flat, mean, high)


def _quantile_keep_inf(x: np.ndarray, q: float) -> np.ndarray:
    """numpy's linear quantile over axis 0, except that an infinite neighbour gives that infinity (no NaN)."""
    s = np.sort(x, axis=0)
    pos = q * (len(s) - 1)
    i, g = int(np.floor(pos)), pos - np.floor(pos)
    a, b = s[i], s[min(i + 1, len(s) - 1)]
    if g == 0:
        return a
    with np.errstate(invalid="ignore"):
        v = a + g * (b - a)
    return np.where(a == b, a, np.where(np.isinf(b) & (g > 0), b, np.where(np.isinf(a), a, v)))


def _num(v):
    if v is None:
        return None
    if np.ndim(v):
        return [finite_or_none(float(x)) for x in np.asarray(v).reshape(-1)]
    return finite_or_none(float(v))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (NaN where one is constant)."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(sps.spearmanr(a, b).statistic)


def agreement(maps_a: list[np.ndarray], maps_b: list[np.ndarray]) -> dict:
    """How two lists of maps of the same clips agree: median Spearman and the share with the same top cell."""
    rho = np.array([spearman(a, b) for a, b in zip(maps_a, maps_b)])
    same = np.mean([int(np.argmax(a) == np.argmax(b)) for a, b in zip(maps_a, maps_b)]) if maps_a else None
    finite = rho[np.isfinite(rho)]
    return {"n": len(maps_a), "median_spearman": finite_or_none(float(np.median(finite))) if finite.size else None,
            "same_top_cell_share": None if same is None else float(same)}


def event_slices(events: tuple, *, class_index: int, slice_edges_s: np.ndarray, clip_s: float) -> np.ndarray:
    """Time slices at least half covered by an event of the class, shape (n_slices,), bool (the generator
    knows when its events sound, not in which band).

    ``events`` are ``(class_index, onset_s, offset_s)`` in the clip's own time; a clip shorter than the
    model's input was repeated to fill it (:func:`factsheet.datasets.base.fit_clips`), so are its events.
    """
    n_slices = len(slice_edges_s) - 1
    covered = np.zeros(n_slices)
    total = slice_edges_s[-1]
    spans = [(a, b) for c, a, b in events if c == class_index]
    for k in range(int(np.ceil(total / clip_s)) if clip_s > 0 else 0):
        for a, b in spans:
            lo, hi = a + k * clip_s, min(b + k * clip_s, (k + 1) * clip_s)
            covered += np.clip(np.minimum(hi, slice_edges_s[1:]) - np.maximum(lo, slice_edges_s[:-1]), 0, None)
    return covered >= 0.5 * np.diff(slice_edges_s)


def localisation_auc(importance: np.ndarray, inside: np.ndarray) -> float | None:
    """ROC AUC of a map's slice importance (n_slices,) against "inside the event" (chance 0.5); None unless
    both kinds of slice occur."""
    if inside.all() or not inside.any():
        return None
    return float(roc_auc_score(inside.astype(int), importance))
