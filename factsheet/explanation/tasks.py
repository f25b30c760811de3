"""The Explanation's per-clip occlusion maps as executor tasks (:mod:`factsheet.executors`): one task per explained
clip runs :func:`~factsheet.explanation.explain.explain_clip` (occlude every cell, score the ``1 + n_cells`` batch)
in a worker.

``explain_clip`` is a pure function of the clip, the grid, the fill and the scores, and a worker scores the batch
exactly as the driver does (the same ``[model] batch_size`` over the same rows; see
:mod:`factsheet.models.worker`), so a map made in a worker equals the map made in the driver (tested). The clips,
the grid and the fill travel once per worker; a task carries a row number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from factsheet.explanation.occlusion import Grid
from factsheet.models.worker import Scorer, ScoringSpec, requests_spent


@dataclass(frozen=True)
class ExplainTask:
    """One clip to explain.

    Attributes
    ----------
    row : int
        The clip's row in the evaluation set.
    keep_occluded : bool
        Return its occluded waveforms too (:func:`~factsheet.explanation.explain.explain_clip`).
    """

    row: int
    keep_occluded: bool


@dataclass(frozen=True)
class ExplainShared:
    """What every worker loads once (the executor's ``shared``).

    Attributes
    ----------
    scoring : ScoringSpec
        The model and the driver's scoring rules.
    clips : dict of int to ndarray
        Row -> waveform, shape (n_samples,), float32: the clips to explain.
    grid : Grid
    fill : ndarray, shape (n_bins,)
        The fill magnitude per STFT bin.
    target_db : float
        ``[explanation] attenuation_db``.
    max_passes : int
        ``[explanation] max_passes``.
    """

    scoring: ScoringSpec
    clips: dict[int, np.ndarray]
    grid: Grid
    fill: np.ndarray
    target_db: float
    max_passes: int


def run_explain(state: tuple[ExplainShared, Scorer], task: ExplainTask) -> dict:
    """One clip's occlusion map in a worker (the executor's ``run``): ``explain_clip``'s dict, and for a remote
    model the requests it spent under ``"_model_requests"``."""
    from factsheet.explanation.explain import explain_clip

    sh, scorer = state
    before = scorer.stats()
    out = explain_clip(waveform=sh.clips[task.row], grid=sh.grid, fill=sh.fill,
                       predict=lambda w: scorer.predict(w, what="an occluded clip"), target_db=sh.target_db,
                       max_passes=sh.max_passes, keep_occluded=task.keep_occluded)
    spent = requests_spent(scorer, before)
    if spent is not None:
        out["_model_requests"] = spent
    return out
