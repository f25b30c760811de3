"""Occlusion importance of one clip (a pure function a later executor can map over clips), and the
deletion curves that test it."""

from __future__ import annotations

from typing import Callable

import numpy as np

from factsheet.explanation.occlusion import Grid, occlude_cells, occlude_masks

#: Scores are clipped to [EPS, 1 - EPS] before the log-odds (a saturated sigmoid stays finite).
EPS = 1e-6


def log_odds(scores: np.ndarray) -> np.ndarray:
    """``log(p / (1 - p))`` of scores in [0, 1], clipped to [:data:`EPS`, 1 - :data:`EPS`]; float64."""
    p = np.clip(np.asarray(scores, np.float64), EPS, 1.0 - EPS)
    return np.log(p) - np.log1p(-p)


def explain_clip(*, waveform: np.ndarray, grid: Grid, fill: np.ndarray, predict: Callable[[np.ndarray], np.ndarray],
                 target_db: float, max_passes: int, keep_occluded: bool = False) -> dict:
    """Occlusion importance of every cell of ``grid`` for every class, from one batch of ``1 + n_cells`` queries.

    Parameters
    ----------
    waveform : ndarray, shape (n_samples,), float32
        The clip at the model's input length.
    grid : Grid
    fill : ndarray, shape (n_bins,)
        The fill magnitude per STFT bin (:func:`~factsheet.explanation.occlusion.fill_magnitude`; zeros:
        silence).
    predict : callable
        ``predict(waveforms (m, n_samples) float32) -> (m, n_classes)`` scores in [0, 1].
    target_db, max_passes : float, int
        The fill-and-project stopping rule (:func:`~factsheet.explanation.occlusion.fill_and_project`).
    keep_occluded : bool
        Return the occluded waveforms too (for the model-randomisation check and the audio examples).

    Returns
    -------
    dict
        ``importance`` (n_cells, n_classes) float64: drop of each class's log-odds when the cell is
        occluded (positive: the cell supported the class); ``scores`` (n_classes,) of the clip;
        ``cell_scores`` (n_cells, n_classes); ``attenuation_db`` (n_cells,); ``passes`` (n_cells,);
        ``n_queries`` int; with ``keep_occluded``, ``occluded`` (n_cells, n_samples) float32.
    """
    occluded, attenuation, passes = occlude_cells(waveform, grid=grid, fill=fill, target_db=target_db,
                                                  max_passes=max_passes)
    batch = np.concatenate([np.asarray(waveform, np.float32)[None], occluded], axis=0)
    scores = np.asarray(predict(batch), np.float64)
    out = {"importance": importance_from_scores(scores), "scores": scores[0], "cell_scores": scores[1:],
           "attenuation_db": attenuation, "passes": passes, "n_queries": int(batch.shape[0])}
    if keep_occluded:
        out["occluded"] = occluded
    return out


def importance_from_scores(scores: np.ndarray) -> np.ndarray:
    """Rows ``1..`` of a ``(1 + n_cells, n_classes)`` score batch as log-odds drops from row 0: (n_cells, n_classes)."""
    z = log_odds(scores)
    return z[0][None, :] - z[1:]


def deletion_steps(n_cells: int, n_steps: int) -> np.ndarray:
    """Cells removed at each point of a deletion curve: ``n_steps + 1`` increasing counts from 0 to ``n_cells``."""
    return np.unique(np.round(np.linspace(0, n_cells, n_steps + 1)).astype(int))


def deletion_orders(*, importance: np.ndarray, energy: np.ndarray, n_random: int,
                    rng: np.random.Generator) -> np.ndarray:
    """The cell orders a deletion curve compares, shape (2 + n_random, n_cells): most important first,
    loudest first, then ``n_random`` random permutations (ties broken by cell index: stable sorts)."""
    n = importance.size
    orders = [np.argsort(-importance, kind="stable"), np.argsort(-energy, kind="stable")]
    orders += [rng.permutation(n) for _ in range(n_random)]
    return np.asarray(orders)


def deletion_curves(*, waveform: np.ndarray, orders: np.ndarray, steps: np.ndarray, grid: Grid, fill: np.ndarray,
                    predict: Callable, class_index: int, target_db: float, max_passes: int) -> dict:
    """Score of one class as cells are removed in each order (RISE's deletion curve).

    Parameters
    ----------
    orders : ndarray, shape (n_orders, n_cells), int
    steps : ndarray, shape (n_steps,), int
        Cells removed at each point (:func:`deletion_steps`; first 0, last ``n_cells``).

    Returns
    -------
    dict
        ``curves`` (n_orders, n_steps): the class's score at each step over its score on the clip (1 at
        step 0); ``area`` (n_orders,): trapezoid area under each curve over the fraction of cells removed
        (lower: the order finds what the score rests on sooner); ``n_queries``.
    """
    n_cells = orders.shape[1]
    inner = steps[(steps > 0) & (steps < n_cells)]
    sets = np.zeros((len(orders) * len(inner) + 1, n_cells), bool)
    for o, order in enumerate(orders):
        for s, k in enumerate(inner):
            sets[o * len(inner) + s, order[:k]] = True
    sets[-1] = True  # every cell removed: the same for every order
    occluded, _ = occlude_masks(waveform, sets, grid=grid, fill=fill, target_db=target_db, max_passes=max_passes)
    batch = np.concatenate([np.asarray(waveform, np.float32)[None], occluded], axis=0)
    p = np.asarray(predict(batch), np.float64)[:, class_index]
    p0 = max(p[0], 1e-12)
    middle = p[1:-1].reshape(len(orders), len(inner))
    curves = np.concatenate([np.ones((len(orders), 1)), middle / p0, np.full((len(orders), 1), p[-1] / p0)], axis=1)
    x = steps / n_cells
    area = np.sum((curves[:, 1:] + curves[:, :-1]) * np.diff(x)[None, :], axis=1) / 2.0
    return {"curves": curves, "area": area, "n_queries": int(batch.shape[0])}
