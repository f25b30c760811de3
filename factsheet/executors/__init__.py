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
    (one worker: in this process, as before). A worker that dies breaks the pool: the unfinished
    tasks run again on a fresh one, the ones it was running alone, each up to ``max_retries`` times
    (:func:`_pool_map`); one that keeps failing is handed to ``on_failure``.
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
        ``ray`` and ``processes``: attempts beyond the first of a task whose worker died (>= 0).
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
    """A task that failed every attempt because its worker died (``ray``, ``processes``).

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
        ``on_failure(task, TaskFailure)`` for a task that failed every attempt (Ray, the pool); without
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
        info.update(_pool_map(job, tasks, workers=settings.workers, max_retries=settings.max_retries,
                              on_result=on_result, on_failure=on_failure))
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


def _pool_init(job: Job, context: WorkerContext, slots, next_slot) -> None:
    """A pool worker's start: take a slot of ``slots`` (where it says which task it runs) and run ``setup``.

    An exception of ``setup`` is kept and raised by every task, so it reaches the driver as it was raised
    (an initializer that raises would only break the pool)."""
    with next_slot.get_lock():
        slot = next_slot.value
        next_slot.value += 1
    _POOL_STATE.update(run=job.run, slots=slots, slot=slot, state=None, error=None)
    try:
        _POOL_STATE["state"] = job.setup(job.shared, context)
    except Exception as exc:
        _POOL_STATE["error"] = exc


def _pool_run(index: int, task):
    if _POOL_STATE["error"] is not None:
        raise _POOL_STATE["error"]
    slots, slot = _POOL_STATE["slots"], _POOL_STATE["slot"]
    slots[slot] = index  # shared memory: still readable by the driver if this process is killed mid-task
    result = _POOL_STATE["run"](_POOL_STATE["state"], task)
    slots[slot] = -1
    return index, result


@dataclass(frozen=True)
class _Round:
    """One pool's outcome: the tasks it finished, and when a worker died, the ones then running."""

    finished: set
    died: bool
    in_flight: list


def _pool_round(job: Job, tasks: list, rows: list[int], *, workers: int, threads: int, share: int,
                on_result: OnResult) -> _Round:
    """``tasks[i]`` for ``i`` in ``rows`` on a fresh spawn-context pool of ``workers`` processes, until done or
    until a worker dies (the pool is then broken: every unfinished task fails with ``BrokenProcessPool``)."""
    from concurrent.futures.process import BrokenProcessPool

    ctx = mp.get_context("spawn")
    slots = ctx.Array("i", [-1] * workers, lock=False)
    next_slot = ctx.Value("i", 0)
    context = WorkerContext(threads=threads, share=share, budget_share=share)
    finished, died = set(), False
    with thread_limits_inherited(threads), \
            ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_pool_init,
                                initargs=(replace(job, request_concurrency=None), context, slots, next_slot)) as pool:
        futures = [pool.submit(_pool_run, i, tasks[i]) for i in rows]
        try:
            for f in as_completed(futures):
                try:
                    i, result = f.result()
                except BrokenProcessPool:
                    died = True
                    continue
                on_result(tasks[i], result)
                finished.add(i)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    in_flight = sorted({int(i) for i in slots if i >= 0} - finished) if died else []
    return _Round(finished=finished, died=died, in_flight=in_flight)


def _pool_map(job: Job, tasks: list, *, workers: int, max_retries: int, on_result: OnResult,
              on_failure: OnFailure) -> dict:
    """``tasks`` in spawn-context pools of ``min(workers, len(tasks))`` processes, retrying the tasks of a worker that died.

    Each worker gets ``default_workers() // workers`` threads (at least 1), inherited through the
    BLAS environment variables too (:func:`thread_limits_inherited`). A worker that dies (killed, out
    of memory, a crash in a native runtime) breaks the pool: its finished results are kept, and the
    unfinished tasks run again on a fresh pool. The tasks that were running when it died are retried
    *alone* (on a pool of one worker, so that a later death is charged to the task that caused it); a
    task whose worker dies while it runs alone more than ``max_retries`` times goes to ``on_failure``.

    Returns
    -------
    dict
        ``{"retried_tasks", "failed_tasks"}``: tasks run again because a worker died while they ran, and
        tasks given up.
    """
    from collections import Counter, deque

    threads = max(1, default_workers() // workers)
    share = min(workers, len(tasks))
    together, alone = list(range(len(tasks))), deque()
    attempts: Counter = Counter()
    retried = failed = idle_deaths = 0
    while together or alone:
        rows = together if together else list(alone)
        n = min(workers, len(rows)) if together else 1
        if together:
            together = []
        else:
            alone.clear()
        outcome = _pool_round(job, tasks, rows, workers=n, threads=threads, share=share, on_result=on_result)
        if not outcome.died:
            continue
        if not outcome.in_flight:  # died outside any task (start-up): not a task's fault, but not endless
            idle_deaths += 1
            if idle_deaths > max_retries:
                raise RuntimeError(f"pool worker processes died {idle_deaths} times before running a task")
        for i in outcome.in_flight:
            if n == 1:  # alone: the death is this task's
                attempts[i] += 1
            if attempts[i] > max_retries:
                failed += 1
                on_failure(tasks[i], TaskFailure(attempts=attempts[i], error="worker died: its process ended "
                                                                             "abruptly while running the task"))
            else:
                retried += 1
                alone.append(i)
        rest = [i for i in rows if i not in outcome.finished and i not in outcome.in_flight]
        if n == 1:
            alone.extend(rest)
        else:
            together.extend(rest)
    return {"retried_tasks": retried, "failed_tasks": failed}


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
