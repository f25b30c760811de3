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


def mean_interval(values: np.ndarray, *, n_resamples: int, confidence: float, seed) -> dict:
    """Mean over rows of ``values`` (n, ...) with a percentile-bootstrap interval over rows.

    Returns
    -------
    dict
        ``mean``, ``low``, ``high`` (float or list; None where there are no resamples or fewer than 2 rows).
    """
    values = np.asarray(values, np.float64)
    mean = values.mean(axis=0)
    low = high = None
    if n_resamples > 0 and len(values) >= 2:
        idx = np.random.default_rng(seed).integers(0, len(values), size=(n_resamples, len(values)))
        ci = percentile_interval(values[idx].mean(axis=1), confidence=confidence, infinite="keep")
        low, high = ci.low, ci.high
    return {"mean": _num(mean), "low": _num(low), "high": _num(high)}


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
