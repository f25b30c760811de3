"""The numbers of the Domain Shift section: which clips are corrupted, the paired drops of each
(corruption, severity) cell against the clean audio, and where each corruption breaks the model.

Every interval is a paired percentile bootstrap over clips: the clean and the corrupted scores of
the same clips are evaluated on the same resamples (:func:`factsheet.metrics.bootstrap_tagging_replicates`
with one seed), and the interval is taken over the replicate differences.
"""

from __future__ import annotations

import numpy as np

from factsheet.metrics import (average_precision, bootstrap_tagging_replicates, finite_or_none, percentile_interval,
                               tagging_metrics)

#: The metrics reported per cell, in order.
METRICS: tuple[str, ...] = ("mAP", "mean_auc", "d_prime")


def select_clips(labels: np.ndarray, *, n_clips: int, seed: int, group_first: list[int] | None = None) -> np.ndarray:
    """A class-stratified, seeded choice of clips to corrupt.

    Each clip belongs to the stratum of its rarest positive class (clips without a positive form
    one stratum of their own); strata are shuffled with ``seed`` and clips are taken from them in
    turn, so rare classes are represented before common ones are exhausted.

    Parameters
    ----------
    labels : ndarray, shape (n_clips_total, n_classes)
        0/1 multi-hot labels.
    n_clips : int
        How many to choose; all clips when it is at least ``n_clips_total``.
    seed : int
    group_first : list of int, optional
        Rows chosen before the class strata take turns (``[domain_shift] stratify_by``: every
        group's minimum, :func:`attacks.runner.group_minimum`); at most ``n_clips`` of them.

    Returns
    -------
    ndarray of int64, shape (min(n_clips, n_clips_total),)
        Indices in increasing order.
    """
    y = np.asarray(labels).astype(bool)
    n_total = y.shape[0]
    if n_clips >= n_total:
        return np.arange(n_total, dtype=np.int64)
    chosen: list[int] = list(group_first or [])
    support = y.sum(axis=0)
    rarity = np.where(y, support[None, :], np.iinfo(np.int64).max)
    stratum = np.where(y.any(axis=1), np.argmin(rarity, axis=1), -1)
    if chosen:
        stratum[chosen] = -2  # taken already: in no stratum
    rng = np.random.default_rng(seed)
    queues = [list(rng.permutation(np.flatnonzero(stratum == k))) for k in np.unique(stratum) if k != -2]
    while len(chosen) < n_clips:
        for q in queues:
            if q and len(chosen) < n_clips:
                chosen.append(int(q.pop()))
    return np.sort(np.asarray(chosen, dtype=np.int64))


def clean_reference(y: np.ndarray, scores: np.ndarray, *, n_resamples: int, seed: int) -> dict:
    """Point values, bootstrap replicates and per-class AP of the clean scores of the chosen clips."""
    point = tagging_metrics(y, scores)
    reps = bootstrap_tagging_replicates(y, scores, n_resamples=n_resamples, seed=seed) if n_resamples else None
    return {"point": {k: float(getattr(point, k)) for k in METRICS}, "reps": reps,
            "ap": np.asarray(average_precision(y, scores), dtype=np.float64)}


def cell_drops(y: np.ndarray, scores: np.ndarray, *, clean: dict, n_resamples: int, seed: int,
               confidence: float) -> dict:
    """One (corruption, severity) cell: each metric on the corrupted audio and its paired drop.

    Parameters
    ----------
    y : ndarray, shape (n_clips, n_classes)
    scores : ndarray, shape (n_clips, n_classes)
        The model's scores of the corrupted clips.
    clean : dict
        :func:`clean_reference` of the same clips.
    n_resamples, seed : int
        Bootstrap resamples (0: no intervals) and the seed shared with ``clean``.
    confidence : float

    Returns
    -------
    dict
        ``{metric: {"value", "drop", "drop_ci": {"low", "high"}, "n_used"}}`` for each of
        :data:`METRICS` (drop = clean - corrupted: positive means worse; the interval is the drop's), ``"relative_drop"`` (mAP drop / clean
        mAP) and ``"ap"``, the per-class AP (ndarray, NaN where not evaluable).
    """
    point = tagging_metrics(y, scores)
    reps = bootstrap_tagging_replicates(y, scores, n_resamples=n_resamples, seed=seed) if n_resamples else None
    out: dict = {}
    for k in METRICS:
        value = float(getattr(point, k))
        drop = clean["point"][k] - value
        low = high = None
        n_used = 0
        if reps is not None:
            with np.errstate(invalid="ignore"):  # d' is infinite where AUC = 1: inf - inf
                diff = clean["reps"][k] - reps[k]
            ci = percentile_interval(diff, confidence=confidence, infinite="drop")  # the performance rule
            n_used = ci.n_used
            if ci.defined:
                low, high = float(ci.low), float(ci.high)
        out[k] = {"value": finite_or_none(value), "drop": finite_or_none(drop), "drop_ci": {"low": low, "high": high},
                  "n_used": n_used}
    base = clean["point"]["mAP"]
    out["relative_drop"] = finite_or_none((base - float(point.mAP)) / base) if base > 0 else None
    out["ap"] = np.asarray(average_precision(y, scores), dtype=np.float64)
    return out


def breaking_point(cells: list[dict], *, tolerance: float) -> dict | None:
    """The first cell (in severity order) whose mAP drop exceeds ``tolerance`` with confidence,
    i.e. whose paired interval lies entirely above it; ``None`` when no cell does."""
    for cell in cells:
        low = cell["mAP"]["drop_ci"]["low"]
        if low is not None and low > tolerance:
            return cell
    return None


def mean_relative_drop(cells: list[dict]) -> float | None:
    """Mean over a corruption's severities of the relative mAP drop (``None`` if any is undefined)."""
    values = [c["relative_drop"] for c in cells]
    if not values or any(v is None for v in values):
        return None
    return float(np.mean(values))


def ap_retained(clean_ap: np.ndarray, cells_ap: list[np.ndarray]) -> np.ndarray:
    """Per class, the mean over severities of corrupted AP / clean AP; NaN where clean AP is 0 or
    undefined. Shape (n_classes,)."""
    stack = np.vstack(cells_ap)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = stack / clean_ap[None, :]
    ratio[:, ~(clean_ap > 0)] = np.nan
    return ratio.mean(axis=0)
