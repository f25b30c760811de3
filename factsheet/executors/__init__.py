"""One way to run a pure per-task function over many tasks: in process, in a process pool, or on Ray.

Every parallel stage describes its work as a :class:`Job`: a ``setup`` run once per worker
(load the model, unpack the clips) from ``shared`` (what every worker needs; it travels once
per worker: as the pool's initializer argument, or through Ray's object store with one
``ray.put``), and a pure ``run(state, task) -> result`` whose result depends on the task alone
(its seed travels in the task). :func:`map_tasks` hands each result to ``on_result`` in the
driver as soon as it is done (the caller commits it to its run store), so the results, and
therefore the FactSheet, do not depend on the executor, the worker count or the order of
completion.

Executors (``[execution] executor`` / ``--executor``):

``local``
    Every task in this process, in order; ``setup`` runs once.
``processes``
    A spawn-context :class:`~concurrent.futures.ProcessPoolExecutor` of ``workers`` processes
    (one worker: in this process, as before). A worker that dies stops the run (the store keeps
    what was finished; re-running resumes).
``ray``
    One Ray actor per worker (:mod:`factsheet.executors.ray_backend`), each running ``setup``
    once. A task whose worker dies is retried up to ``max_retries`` times on a restarted actor;
    one that keeps failing is handed to ``on_failure`` (counted and reported, never dropped).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal

from factsheet.errors import InputError

EXECUTORS = ("local", "processes", "ray")


@dataclass(frozen=True)
class ExecutorSettings:
    """How a :class:`Job` is run (``[execution]`` with ``robustness.workers`` / ``--workers``).

    Attributes
    ----------
    kind : {"local", "processes", "ray"}
    workers : int
        Worker processes or Ray actors (>= 1).
    ray_address : str
        ``"local"`` (start a Ray instance on this machine, or use the one already started in this
        process), ``"auto"`` (the cluster this machine belongs to), ``"ray://host:port"`` (Ray
        Client) or ``"host:port"`` (a head node's GCS).
    max_retries : int
        Ray: attempts beyond the first of a task whose worker died (>= 0).
    """

    kind: Literal["local", "processes", "ray"] = "processes"
    workers: int = 1
    ray_address: str = "local"
    max_retries: int = 2


@dataclass(frozen=True)
class WorkerContext:
    """What a worker's ``setup`` is told about where it runs.

    Attributes
    ----------
    threads : int or None
        CPU threads the worker may use (None: the libraries' defaults, in process).
    share : int
        How many workers split a per-process limit (an HTTP model's concurrency and request
        budget): the pool's size for ``processes``; 1 where the limit is global (``ray``, whose
        workers take one shared semaphore, :func:`factsheet.models.http_model.set_request_gate`) or
        there is one worker.
    budget_share : int
        How many workers split a per-process request budget (``[model] max_requests``): the
        worker count for ``processes`` and ``ray``.
    """

    threads: int | None
    share: int = 1
    budget_share: int = 1


@dataclass(frozen=True)
class Job:
    """A pure per-task function and what its workers load once.

    Attributes
    ----------
    setup : callable
        ``setup(shared, context: WorkerContext) -> state``, a module-level function (workers
        import it by name), run once per worker.
    run : callable
        ``run(state, task) -> result``, module-level; the result must depend on the task alone
        (its seed in the task), never on the worker or on earlier tasks.
    shared : object
        Picklable; sent once per worker (Ray: one ``ray.put``).
    request_concurrency : int or None
        Ray: requests of an HTTP model in flight across all workers at most (one named
        semaphore actor); None: the model is local.
    """

    setup: Callable[[Any, WorkerContext], Any]
    run: Callable[[Any, Any], Any]
    shared: Any
    request_concurrency: int | None = None


@dataclass(frozen=True)
class TaskFailure:
    """A task that failed every attempt because its worker died (Ray).

    Attributes
    ----------
    attempts : int
        Attempts made (``max_retries + 1``).
    error : str
        The last failure, one line.
    """

    attempts: int
    error: str


OnResult = Callable[[Any, Any], None]
OnFailure = Callable[[Any, TaskFailure], None]


def map_tasks(job: Job, tasks: list, *, settings: ExecutorSettings, on_result: OnResult,
              on_failure: OnFailure | None = None) -> dict:
    """Run ``job.run`` over ``tasks``, handing each ``(task, result)`` to ``on_result`` as it finishes.

    Parameters
    ----------
    job : Job
    tasks : list
        Picklable tasks, each carrying its own seed.
    settings : ExecutorSettings
    on_result : callable
        ``on_result(task, result)``, called in this process, in the order tasks finish.
    on_failure : callable, optional
        ``on_failure(task, TaskFailure)`` for a task that failed every attempt (Ray); without
        it such a task raises :class:`RuntimeError`.

    Returns
    -------
    dict
        Run facts for provenance: ``{"executor", "workers", "retried_tasks", "failed_tasks"}``
        (Ray adds ``ray_version`` and ``ray_nodes``).

    Raises
    ------
    Exception
        Whatever ``setup`` or ``run`` raised (bad input, a bug): not retried.
    """
    if on_failure is None:
        def on_failure(task, failure):
            raise RuntimeError(f"task {task!r} failed {failure.attempts} times: {failure.error}")
    info = {"executor": settings.kind, "workers": int(settings.workers), "retried_tasks": 0, "failed_tasks": 0}
    if not tasks:
        return info
    if settings.kind == "ray":
        from factsheet.executors.ray_backend import ray_map

        info.update(ray_map(job, tasks, settings=settings, on_result=on_result, on_failure=on_failure))
    elif settings.kind == "processes" and settings.workers > 1:
        _pool_map(job, tasks, workers=settings.workers, on_result=on_result)
    else:
        state = job.setup(job.shared, WorkerContext(threads=None, share=1))
        for task in tasks:
            on_result(task, job.run(state, task))
    return info


def check_executor(settings: ExecutorSettings, *, source: str = "--executor") -> None:
    """Refuse settings that cannot run here, before any work: ``ray`` without Ray installed.

    Raises
    ------
    InputError
        One line naming the executor and how to install Ray.
    """
    if settings.kind not in EXECUTORS:
        raise InputError(source=source, value=settings.kind, reason=f"must be one of {', '.join(EXECUTORS)}")
    if settings.kind == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise InputError(source=source, value="ray",
                             reason="Ray is not installed: pip install 'audio-factsheet[ray]'") from None


def check_ray_address(address: str) -> str | None:
    """Why ``address`` is not a Ray address we accept, or None when it is."""
    if address in ("local", "auto"):
        return None
    rest = address.removeprefix("ray://")
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in host:
        return "must be 'local', 'auto', 'ray://host:port' or 'host:port'"
    return None


# -- processes ------------------------------------------------------------------------

_POOL_STATE: dict = {}


def _pool_init(job: Job, context: WorkerContext) -> None:
    _POOL_STATE.update(run=job.run, state=job.setup(job.shared, context))


def _pool_run(task):
    return task, _POOL_STATE["run"](_POOL_STATE["state"], task)


def _pool_map(job: Job, tasks: list, *, workers: int, on_result: OnResult) -> None:
    """``tasks`` in a spawn-context pool of ``min(workers, len(tasks))`` processes.

    Each worker gets ``default_workers() // workers`` threads (at least 1), inherited through the
    BLAS environment variables too (:func:`thread_limits_inherited`).
    """
    n = min(workers, len(tasks))
    threads = max(1, default_workers() // workers)
    context = WorkerContext(threads=threads, share=n, budget_share=n)
    with thread_limits_inherited(threads), \
            ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("spawn"), initializer=_pool_init,
                                initargs=(replace(job, request_concurrency=None), context)) as pool:
        futures = [pool.submit(_pool_run, t) for t in tasks]
        for f in as_completed(futures):
            on_result(*f.result())


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextmanager
def thread_limits_inherited(threads: int) -> Iterator[None]:
    """Set the BLAS thread variables to ``threads`` for child processes started in the block.

    BLAS pools start when numpy is imported (before the initializer runs), so the children must
    inherit the thread limits through the environment; busy-waiting BLAS threads on shared cores
    made each task twice as slow. The previous values are restored afterwards.
    """
    saved = {v: os.environ.get(v) for v in _THREAD_VARS}
    os.environ.update({v: str(threads) for v in _THREAD_VARS})
    try:
        yield
    finally:
        for v, old in saved.items():
            if old is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = old


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
