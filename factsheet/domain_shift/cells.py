"""The corruption suite's cells as executor tasks (:mod:`factsheet.executors`): one task per
(corruption, severity) corrupts the chosen clips and scores them.

A cell's result depends on the cell alone: :func:`factsheet.corruptions.corrupt` keys every clip's random
draw by the suite's seed and the clip's id, and the scores come from one ``predict_scores`` call over the
cell's clips with the driver's ``[model] batch_size`` (a row's last bits depend on its batch's shape, not on
the thread count: :mod:`factsheet.models.worker`). So a cell scored in a worker equals the cell scored in the
driver, and the section's statistics, computed by the driver from the cells' scores, do not depend on the
executor or the worker count (tested).

The clips travel once per worker (:attr:`factsheet.executors.Job.shared`) and the model loads once per
worker; a task carries only its corruption spec and severity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from factsheet.corruptions import CorruptionSpec
from factsheet.metrics import finite_or_none
from factsheet.models.worker import Scorer, ScoringSpec, requests_spent


@dataclass(frozen=True)
class CellTask:
    """One cell of the suite.

    Attributes
    ----------
    corruption : CorruptionSpec
        With the run's levels (:func:`factsheet.corruptions.validate_suite`).
    severity : int
        1..5.
    """

    corruption: CorruptionSpec
    severity: int

    @property
    def key(self) -> tuple[str, int]:
        return self.corruption.name, int(self.severity)


@dataclass(frozen=True)
class CellResult:
    """What a cell gives the driver.

    Attributes
    ----------
    scores : ndarray, shape (n_clips, n_classes), float32
        The model's scores of the corrupted clips (the dataset's classes).
    measured : dict
        What the corruption achieved (:func:`measured_summary`), JSON-able.
    model_requests : dict or None
        Request counters of a remote model spent on the cell in a worker; None in the driver or for a
        local model.
    """

    scores: np.ndarray
    measured: dict
    model_requests: dict | None = None


def score_cell(*, clips: np.ndarray, clip_ids: np.ndarray, task: CellTask, sample_rate: int, seed: int,
               predict: Callable[[np.ndarray], np.ndarray]) -> CellResult:
    """Corrupt ``clips`` at the task's cell and score them with ``predict``.

    Parameters
    ----------
    clips : ndarray, shape (n_clips, n_samples), float32
        The chosen clips, in [-1, 1].
    clip_ids : ndarray of int, shape (n_clips,)
        Their rows in the evaluation set (they key each clip's random draw).
    task : CellTask
    sample_rate : int
        Hz.
    seed : int
        ``domain_shift.seed``.
    predict : callable
        ``predict(waveforms (n_clips, n_samples) float32) -> (n_clips, n_classes)`` scores.
    """
    from factsheet import corruptions

    xc, measured = corruptions.corrupt(clips, corruption=task.corruption, severity=task.severity,
                                       sample_rate=sample_rate, seed=seed, clip_ids=clip_ids)
    return CellResult(scores=predict(xc), measured=measured_summary(measured))


def measured_summary(info: dict) -> dict:
    """What the corruption achieved (:func:`factsheet.corruptions.corrupt`'s record of its measure), as
    JSON-able summary numbers over the clips."""
    values = np.asarray(info["per_clip"][info["measure"]], dtype=np.float64)
    finite = values[np.isfinite(values)]
    expected = info.get("expected")
    return {"name": info["measure"], "unit": info["measure_unit"],
            "target": None if expected is None else finite_or_none(float(expected)),
            "median": finite_or_none(float(np.median(finite))) if finite.size else None,
            "min": finite_or_none(float(finite.min())) if finite.size else None,
            "max": finite_or_none(float(finite.max())) if finite.size else None,
            "n_clips": int(finite.size)}


# -- worker side ----------------------------------------------------------------------

@dataclass(frozen=True)
class SuiteShared:
    """What every worker loads once (the executor's ``shared``).

    Attributes
    ----------
    scoring : ScoringSpec
        The model and the driver's scoring rules (wrapper, batch size, columns).
    clips : ndarray, shape (n_clips, n_samples), float32
        The chosen clips.
    clip_ids : ndarray of int, shape (n_clips,)
        Their rows in the evaluation set.
    sample_rate : int
        Hz.
    seed : int
        ``domain_shift.seed``.
    """

    scoring: ScoringSpec
    clips: np.ndarray
    clip_ids: np.ndarray
    sample_rate: int
    seed: int


def run_cell(state: tuple[SuiteShared, Scorer], task: CellTask) -> CellResult:
    """Corrupt and score one cell in a worker (the executor's ``run``)."""
    sh, scorer = state
    before = scorer.stats()
    result = score_cell(clips=sh.clips, clip_ids=sh.clip_ids, task=task, sample_rate=sh.sample_rate, seed=sh.seed,
                        predict=lambda w: scorer.predict(w, what="a corrupted clip"))
    spent = requests_spent(scorer, before)
    return result if spent is None else CellResult(scores=result.scores, measured=result.measured, model_requests=spent)
