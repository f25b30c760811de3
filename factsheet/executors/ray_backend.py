"""The ``ray`` executor: one actor per worker, shared data through the object store, bounded retries.

Each worker is a :class:`FactsheetWorker` actor that runs the job's ``setup`` once (the model
loads once per worker, not per task) from ``shared``, which the driver puts into Ray's object
store once; tasks carry only their own small description. The driver keeps one task in flight
per actor and hands each result to ``on_result`` as it arrives (the caller's crash-safe store).

A worker process that dies (killed, out of memory, a crash in a native runtime) fails the
task it was running with ``RayActorError``; Ray restarts the actor (its ``setup`` runs again)
and the driver resubmits the task, at most ``max_retries`` times. A task that fails every
attempt goes to ``on_failure``. An exception raised by ``setup`` or ``run`` is not a worker
failure: it is re-raised in the driver as it was (bad input or a bug, which a retry would repeat).

An HTTP model's requests from all workers share one limit: a named, asynchronous
:class:`RequestSemaphore` actor that every worker acquires a slot from around each request.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter, deque

from factsheet.errors import InputError
from factsheet.executors import ExecutorSettings, Job, OnFailure, OnResult, TaskFailure, WorkerContext

#: times a dead actor is asked whether it is back, PROBE_SECONDS apart, before it is given up
PROBES = 100
PROBE_SECONDS = 0.5
#: environment of every worker: one BLAS thread (each actor holds one CPU), quiet TensorFlow
WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "TF_CPP_MIN_LOG_LEVEL": "2"}


def connect(settings: ExecutorSettings) -> None:
    """Join the Ray cluster at ``settings.ray_address`` unless this process already has one.

    ``"local"`` starts a Ray instance on this machine with as many logical CPUs as the larger of
    the cores and ``settings.workers`` (a latency-bound model may use more workers than cores).

    Raises
    ------
    InputError
        No cluster answers at the address (one line, ``execution.ray_address``).
    """
    import ray

    if ray.is_initialized():
        return
    from factsheet.executors import default_workers

    try:
        if settings.ray_address == "local":
            ray.init(address="local", num_cpus=max(default_workers(), settings.workers), include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=settings.ray_address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(source="execution.ray_address", value=settings.ray_address,
                         reason=f"cannot connect to a Ray cluster: {first}") from None


class FactsheetWorker:
    """One worker: the job's state, built once by ``setup``; ``run`` one task at a time."""

    def __init__(self, job: Job, shared_box: list, gate_name: str | None, n_workers: int) -> None:
        import ray

        os.environ.update(WORKER_ENV)
        shared = ray.get(shared_box[0])  # boxed: the driver keeps the one copy alive; read from the object store
        if gate_name is not None:
            from factsheet.models.http_model import set_request_gate

            set_request_gate(RayRequestGate(gate_name))
        self._run, self._state, self._error = job.run, None, None
        try:  # kept, and raised by every call: Ray would only pass on the text of an error in __init__
            self._state = job.setup(shared, WorkerContext(threads=1, share=1, budget_share=n_workers))
        except Exception as exc:
            self._error = exc

    def ready(self) -> int:
        if self._error is not None:
            raise self._error
        return os.getpid()

    def run(self, task):
        if self._error is not None:
            raise self._error
        return self._run(self._state, task)


class RequestSemaphore:
    """At most ``limit`` slots held at once across every worker; slots of a dead worker are returned."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._free = asyncio.Semaphore(limit)
        self._held: Counter = Counter()
        self._peak = 0

    async def acquire(self, holder: str) -> None:
        await self._free.acquire()
        self._held[holder] += 1
        self._peak = max(self._peak, sum(self._held.values()))

    async def release(self, holder: str) -> None:
        if self._held[holder] > 0:
            self._held[holder] -= 1
            self._free.release()

    async def release_holder(self, holder: str) -> None:
        """Return every slot ``holder`` (a worker's actor id) still holds: it died holding them."""
        for _ in range(self._held.pop(holder, 0)):
            self._free.release()

    async def peak(self) -> int:
        """Most slots ever held at once."""
        return self._peak


class RayRequestGate:
    """A context manager factory over the named :class:`RequestSemaphore` (one slot per request)."""

    def __init__(self, name: str) -> None:
        import ray

        self._sem = ray.get_actor(name)
        self._holder = ray.get_runtime_context().get_actor_id() or f"driver-{os.getpid()}"

    def __call__(self):
        return _Slot(self)


class _Slot:
    def __init__(self, gate: RayRequestGate) -> None:
        self._gate = gate

    def __enter__(self):
        import ray

        ray.get(self._gate._sem.acquire.remote(self._gate._holder))
        return self

    def __exit__(self, *exc) -> None:
        import ray

        ray.get(self._gate._sem.release.remote(self._gate._holder))


def ray_map(job: Job, tasks: list, *, settings: ExecutorSettings, on_result: OnResult,
            on_failure: OnFailure) -> dict:
    """Run ``tasks`` on ``min(settings.workers, len(tasks), cluster CPUs)`` actors (see module docstring).

    Returns
    -------
    dict
        ``{"workers", "retried_tasks", "failed_tasks", "ray_version", "ray_nodes"}`` and, with a request
        limit, ``"max_concurrent_requests"`` (the most requests in flight at once across workers).
    """
    import ray

    connect(settings)
    n = max(1, min(settings.workers, len(tasks), int(ray.cluster_resources().get("CPU", 1))))
    semaphore, gate_name = None, None
    if job.request_concurrency is not None:
        gate_name = f"audio-factsheet-requests-{uuid.uuid4().hex[:12]}"
        semaphore = ray.remote(num_cpus=0)(RequestSemaphore).options(name=gate_name, max_concurrency=1000) \
            .remote(job.request_concurrency)
        ray.get(semaphore.peak.remote())
    shared_ref = ray.put(job.shared)
    restarts = (settings.max_retries + 1) * len(tasks)  # bounded: every death costs some task an attempt
    worker_cls = ray.remote(num_cpus=1, max_restarts=restarts, max_task_retries=0)(FactsheetWorker)
    light_job = Job(setup=job.setup, run=job.run, shared=None)
    actors = [worker_cls.remote(light_job, [shared_ref], gate_name, n) for _ in range(n)]
    try:
        _ready(actors)
        counts = _dispatch(actors, tasks, max_retries=settings.max_retries, on_result=on_result,
                           on_failure=on_failure, semaphore=semaphore)
        info = {"workers": n, **counts, "ray_version": ray.__version__, "ray_nodes": len(ray.nodes())}
        if semaphore is not None:
            info["max_concurrent_requests"] = int(ray.get(semaphore.peak.remote()))
        return info
    finally:
        for a in actors:
            ray.kill(a, no_restart=True)
        if semaphore is not None:
            ray.kill(semaphore)


def _ready(actors: list) -> None:
    """Wait until every actor has run ``setup``; re-raise a ``setup`` error as it was raised."""
    import ray

    try:
        ray.get([a.ready.remote() for a in actors])
    except ray.exceptions.RayTaskError as exc:
        raise _cause(exc) from None


def _cause(exc) -> BaseException:
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def _dispatch(actors: list, tasks: list, *, max_retries: int, on_result: OnResult, on_failure: OnFailure,
              semaphore) -> dict:
    """One task in flight per actor; a task whose actor died goes back to the front of the queue.

    An actor whose process died is probed (``ready``) until Ray has restarted it, before it gets
    another task: a call sent before the restart is known would fail at once and waste an attempt.
    An actor that does not come back within :data:`PROBES` probes is dropped; with none left, the
    remaining tasks fail.
    """
    import ray

    queue = deque(range(len(tasks)))
    attempts: Counter = Counter()
    probes: Counter = Counter()
    idle, in_flight = list(actors), {}
    alive = len(actors)
    retried = failed = 0
    while queue or in_flight:
        while queue and idle:
            actor, i = idle.pop(), queue.popleft()
            in_flight[actor.run.remote(tasks[i])] = (actor, i)
        if not in_flight:  # every actor is gone: the rest cannot run
            for i in queue:
                failed += 1
                on_failure(tasks[i], TaskFailure(attempts=attempts[i], error="no Ray worker left to run it"))
            break
        done, _ = ray.wait(list(in_flight), num_returns=1)
        for ref in done:
            actor, i = in_flight.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayActorError as exc:  # the worker died (or is not back yet)
                if semaphore is not None:
                    semaphore.release_holder.remote(actor._actor_id.hex())
                probes[actor] += 1
                if probes[actor] <= PROBES:
                    if i is None:
                        time.sleep(PROBE_SECONDS)
                    in_flight[actor.ready.remote()] = (actor, None)
                else:
                    alive -= 1
                if i is None:
                    continue
                attempts[i] += 1
                if attempts[i] <= max_retries:
                    retried += 1
                    queue.appendleft(i)
                else:
                    failed += 1
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    on_failure(tasks[i], TaskFailure(attempts=attempts[i], error=f"worker died: {first}"[:300]))
                continue
            except ray.exceptions.RayTaskError as exc:
                raise _cause(exc) from None
            probes.pop(actor, None)
            idle.append(actor)
            if i is not None:
                on_result(tasks[i], result)
    return {"retried_tasks": retried, "failed_tasks": failed}
