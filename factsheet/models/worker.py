"""A model loaded once in an executor's worker (:mod:`factsheet.executors`): the start-up every stage's
``setup`` shares (the attack's and the corruption cells').

The worker reloads the model from its spec (:func:`factsheet.models.sources.load_from_spec`, which refuses
a model whose bytes changed), with the threads the executor gives it, and wraps it as the driver does.
Predictions of the demo Keras model are bit-identical whatever the TensorFlow thread count (1 to 16
intra-op threads, measured; ``tests/test_prediction_bits.py``), but not whatever the batch: a row's last
bits depend on the shape of the batch it was predicted in, so a stage that predicts in a worker must
batch exactly as the driver would (the same ``[model] batch_size`` over the same array).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from factsheet.executors import WorkerContext


@dataclass(frozen=True)
class WorkerModel:
    """A worker's loaded model.

    Attributes
    ----------
    model : factsheet.models.sources.base.LoadedModel
    estimator : ART estimator
        ``wrapper`` around ``model`` (:func:`factsheet.models.adapter.make_estimator`).
    """

    model: Any
    estimator: Any

    def stats(self) -> dict | None:
        """Request counters of a remote model (HTTP source); None for a local one."""
        return self.model.stats() if self.model.stats is not None else None


def load_worker_model(spec: dict, *, context: WorkerContext, wrapper: str = "blackbox") -> WorkerModel:
    """Load the model of ``spec`` in this worker, once.

    Parameters
    ----------
    spec : dict
        :func:`factsheet.models.sources.model_spec` of the driver's model.
    context : WorkerContext
        ``threads`` caps TensorFlow's and the model runtime's threads (None: their defaults);
        ``share`` / ``budget_share`` workers split a remote model's concurrency and request budget
        (:func:`share_among_workers`).
    wrapper : {"blackbox", "tensorflow"}
        The ART wrapper (the driver's ``[model] wrapper`` where the worker's predictions must equal the
        driver's).

    Returns
    -------
    WorkerModel
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import warnings

    warnings.filterwarnings("ignore")
    from factsheet.models.tf_runtime import import_tensorflow_quietly, set_tensorflow_threads

    if spec.get("config", {}).get("source") != "http":  # a remote model needs no TensorFlow here
        import_tensorflow_quietly()
        if context.threads is not None:
            set_tensorflow_threads(context.threads)
    from factsheet.models.adapter import make_estimator
    from factsheet.models.sources import load_from_spec

    shared = share_among_workers(spec, workers=context.share, budget_workers=context.budget_share)
    model = load_from_spec(shared, threads=context.threads)
    return WorkerModel(model=model, estimator=make_estimator(model, wrapper=wrapper))


def share_among_workers(spec: dict, *, workers: int, budget_workers: int | None = None) -> dict:
    """A remote model's spec for one of ``workers`` processes: its concurrency divided among
    ``workers`` and its request budget among ``budget_workers`` (default ``workers``), so that all
    workers together keep to the configured limits (``workers = 1`` where a global semaphore
    already bounds the concurrency: the ``ray`` executor)."""
    cfg = spec.get("config", {})
    budget_workers = workers if budget_workers is None else budget_workers
    if cfg.get("source") != "http" or max(workers, budget_workers) <= 1:
        return spec
    budget = cfg.get("max_requests")
    cfg = dict(cfg, concurrency=max(1, int(cfg["concurrency"]) // workers),
               max_requests=None if budget is None else max(1, int(budget) // budget_workers))
    return dict(spec, config=cfg)


def request_concurrency(spec: dict) -> int | None:
    """The global request limit of an HTTP model's spec (:attr:`factsheet.executors.Job.request_concurrency`);
    None for a local model."""
    cfg = spec.get("config", {})
    return int(cfg["concurrency"]) if cfg.get("source") == "http" else None


@dataclass(frozen=True)
class ScoringSpec:
    """How a worker scores clips exactly as the driver's ``predict`` does (part of a stage's ``shared``).

    Attributes
    ----------
    model_spec : dict
        How to reload the model (:func:`factsheet.models.sources.load_from_spec`).
    wrapper : str
        ``[model] wrapper``: the same ART wrapper as the driver.
    batch_size : int
        ``[model] batch_size``: the same batches as the driver.
    columns : list of int or None
        The model output column of each of the dataset's classes (None: all, in order).
    source : str
        How the model is named in an error (its path or URL).
    """

    model_spec: dict
    wrapper: str
    batch_size: int
    columns: list[int] | None
    source: str


@dataclass(frozen=True)
class Scorer:
    """A worker's model with the driver's scoring rules (:func:`load_scorer`)."""

    spec: ScoringSpec
    loaded: WorkerModel

    def predict(self, waveforms, *, what: str):
        """Scores (n_clips, n_classes) of ``waveforms`` (n_clips, n_samples) float32 for the dataset's classes;
        one :class:`~factsheet.errors.InputError` line naming ``what`` when any is NaN or infinite."""
        from factsheet.models.adapter import predict_scores

        scores = predict_scores(self.loaded.estimator, waveforms, batch_size=self.spec.batch_size)
        return checked_scores(scores, columns=self.spec.columns, source=self.spec.source, what=what)

    def stats(self) -> dict | None:
        return self.loaded.stats()


def load_scorer(spec: ScoringSpec, context: WorkerContext) -> Scorer:
    """Load the model of ``spec`` once in this worker (:func:`load_worker_model`) with the driver's wrapper."""
    return Scorer(spec=spec, loaded=load_worker_model(spec.model_spec, context=context, wrapper=spec.wrapper))


def setup_scorer(shared, context: WorkerContext) -> tuple[Any, Scorer]:
    """An executor ``setup`` for a stage whose ``shared`` carries a ``scoring`` :class:`ScoringSpec`: the model
    loaded once per worker (:func:`load_scorer`), beside ``shared``."""
    return shared, load_scorer(shared.scoring, context)


def checked_scores(scores, *, columns: list[int] | None, source: str, what: str):
    """``scores`` (n_clips, n_model_classes) for the model columns ``columns`` (None: all), or one line of
    :class:`~factsheet.errors.InputError` when any is NaN or infinite."""
    import numpy as np

    from factsheet.errors import InputError

    if not np.all(np.isfinite(scores)):
        raise InputError(source=source, field="output", value="non-finite", reason=f"model returned NaN or inf for {what}")
    return scores if columns is None else scores[:, columns]


def requests_spent(scorer: Scorer, before: dict | None) -> dict | None:
    """Request counters ``scorer``'s remote model spent since ``before`` (its ``stats()`` then); None for a local model."""
    if before is None:
        return None
    from attacks.runner import counter_delta

    return counter_delta(scorer.stats(), before)
