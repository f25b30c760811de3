"""The numbers of the Domain Shift section: which clips are corrupted, the paired drops of each
(corruption, severity) cell against the clean audio, and where each corruption breaks the model.

Every interval is a paired bootstrap over clips: the clean and the corrupted scores of the same clips
are evaluated on the same resamples (:func:`factsheet.metrics.bootstrap_tagging_replicates` with one
seed), and the interval is taken over the replicate differences: BCa, its acceleration from the
differences with each clip left out (the percentile interval under-covers the mAP drop).
"""

from __future__ import annotations

import numpy as np

from factsheet.metrics import (JACKKNIFE_GROUPS, MIN_CLASS_SUPPORT, average_precision, bca_interval, bootstrap_tagging_replicates,
                               finite_or_none, percentile_interval, tagging_jackknife, tagging_metrics)

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
    """Point values, bootstrap replicates, leave-one-out values and per-class AP of the clean scores of
    the chosen clips."""
    point = tagging_metrics(y, scores)
    reps = bootstrap_tagging_replicates(y, scores, n_resamples=n_resamples, seed=seed) if n_resamples else None
    return {"point": {k: float(getattr(point, k)) for k in METRICS}, "reps": reps,
            "jackknife": _jackknife(y, scores) if n_resamples and supported(y) else None,
            "ap": np.asarray(average_precision(y, scores), dtype=np.float64)}


def _jackknife(y: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
    """The metrics with each clip left out (groups of clips above ``JACKKNIFE_GROUPS`` clips, as the
    Performance section's BCa does): the acceleration of the drops' BCa intervals."""
    n = int(np.asarray(y).shape[0])
    return tagging_jackknife(y, scores, n_groups=JACKKNIFE_GROUPS if n > JACKKNIFE_GROUPS else None)


def cell_drops(y: np.ndarray, scores: np.ndarray, *, clean: dict, n_resamples: int, seed: int,
               confidence: float, method: str = "bca") -> dict:
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
    method : {"bca", "percentile"}
        The interval of the drop: BCa over the paired replicate differences, its acceleration from
        the leave-one-clip-out differences (the default: the percentile bootstrap under-covers the
        mAP drop, 84-90 % at 64-400 clips in ``bench/coverage.py``), or the percentile bootstrap.
        With BCa, no interval (``None`` bounds, ``n_used`` 0) when a class of the clips has fewer than
        ``MIN_CLASS_SUPPORT`` positives or negatives (:func:`supported`).

    Returns
    -------
    dict
        ``{metric: {"value", "drop", "drop_ci": {"low", "high"}, "n_used"}}`` for each of
        :data:`METRICS` (drop = clean - corrupted: positive means worse; the interval is the drop's), ``"relative_drop"`` (mAP drop / clean
        mAP) and ``"ap"``, the per-class AP (ndarray, NaN where not evaluable).
    """
    point = tagging_metrics(y, scores)
    # below the minimum support BCa gives no interval ("insufficient evidence"): nothing to resample
    intervals = n_resamples > 0 and (method != "bca" or supported(y))
    reps = bootstrap_tagging_replicates(y, scores, n_resamples=n_resamples, seed=seed) if intervals else None
    jack = _jackknife(y, scores) if intervals and method == "bca" else None
    out: dict = {}
    for k in METRICS:
        value = float(getattr(point, k))
        drop = clean["point"][k] - value
        low = high = None
        n_used = 0
        if reps is not None:
            with np.errstate(invalid="ignore"):  # d' is infinite where AUC = 1: inf - inf
                diff = clean["reps"][k] - reps[k]
                if jack is not None:
                    ci = bca_interval(diff, estimate=drop, jackknife=clean["jackknife"][k] - jack[k],
                                      confidence=confidence)
                else:
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


def supported(y: np.ndarray) -> bool:
    """Every evaluable class of the chosen clips has ``MIN_CLASS_SUPPORT`` positive and negative clips
    (the Performance section's minimum for a BCa interval; below it the drops get none)."""
    n_pos = np.asarray(y).astype(bool).sum(axis=0)
    n_pos = n_pos[(n_pos > 0) & (n_pos < len(y))]
    return bool(n_pos.size) and int(min(n_pos.min(), (len(y) - n_pos).min())) >= MIN_CLASS_SUPPORT


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
