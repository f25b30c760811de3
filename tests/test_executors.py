"""The executor interface (factsheet.executors): same results everywhere, streaming, Ray retries and failures."""

import numpy as np
import pytest

from factsheet.executors import ExecutorSettings, Job, check_executor, check_ray_address, map_tasks
from factsheet.errors import InputError

import _executor_jobs as jobs

TASKS = [(i, 1000 + 7 * i) for i in range(8)]
OFFSETS = np.arange(8) * 0.5


def reference() -> dict:
    """The obvious serial computation of the same results."""
    return {t: float(np.random.default_rng(t[1]).standard_normal(1000).sum() + OFFSETS[t[0]]) for t in TASKS}


def collect(settings: ExecutorSettings, shared: dict, run=jobs.seeded_sum, request_concurrency=None):
    results, failures = {}, {}
    job = Job(setup=jobs.setup_scale, run=run, shared=shared, request_concurrency=request_concurrency)
    info = map_tasks(job, TASKS, settings=settings, on_result=results.__setitem__,
                     on_failure=failures.__setitem__)
    return results, failures, info


@pytest.mark.parametrize("kind,workers", [("local", 1), ("processes", 1), ("processes", 2)])
def test_local_and_processes_equal_the_reference(kind, workers):
    results, failures, info = collect(ExecutorSettings(kind=kind, workers=workers), {"offsets": OFFSETS})
    assert results == reference() and failures == {}
    assert info["executor"] == kind and info["failed_tasks"] == 0


def test_pool_retries_the_task_whose_worker_died(tmp_path):
    """Task 3 SIGKILLs its pool worker once: the pool breaks, the unfinished tasks run on a fresh one, nothing lost."""
    results, failures, info = collect(ExecutorSettings(kind="processes", workers=2, max_retries=2),
                                      {"offsets": OFFSETS, "marks": str(tmp_path)})
    assert (tmp_path / "killed-3").exists()  # the worker did die once
    assert results == reference() and failures == {}
    # task 3 was running when its worker died, and possibly the other worker's task (terminated with the pool)
    assert 1 <= info["retried_tasks"] <= 2 and info["failed_tasks"] == 0


def test_pool_reports_a_task_that_keeps_failing():
    """Task 5 kills every worker that runs it: retried alone until max_retries, then handed to on_failure."""
    results, failures, info = collect(ExecutorSettings(kind="processes", workers=2, max_retries=1),
                                      {"offsets": OFFSETS, "always_kill": 5})
    expected = reference()
    expected.pop(TASKS[5])
    assert results == expected and list(failures) == [TASKS[5]]
    assert failures[TASKS[5]].attempts == 2 and "worker died" in failures[TASKS[5]].error
    assert info["failed_tasks"] == 1 and info["retried_tasks"] >= 2


def test_pool_setup_error_is_raised_as_it_was():
    with pytest.raises(ValueError, match="setup refused"):
        collect(ExecutorSettings(kind="processes", workers=2), {"offsets": OFFSETS, "fail_setup": True})


def test_ray_equals_the_reference_and_streams_every_result(ray_local):
    results, failures, info = collect(ExecutorSettings(kind="ray", workers=2), {"offsets": OFFSETS})
    assert results == reference() and failures == {}
    assert info["workers"] == 2 and info["retried_tasks"] == 0 and info["ray_version"] == ray_local.__version__


def test_ray_retries_a_task_whose_worker_died(ray_local, tmp_path):
    results, failures, info = collect(ExecutorSettings(kind="ray", workers=2, max_retries=2),
                                      {"offsets": OFFSETS, "marks": str(tmp_path)})
    assert (tmp_path / "killed-3").exists()  # the worker did die once
    assert results == reference() and failures == {}
    assert info["retried_tasks"] == 1 and info["failed_tasks"] == 0


def test_ray_reports_a_task_that_keeps_failing(ray_local):
    results, failures, info = collect(ExecutorSettings(kind="ray", workers=2, max_retries=1),
                                      {"offsets": OFFSETS, "always_kill": 5})
    expected = reference()
    lost = expected.pop(TASKS[5])
    assert lost is not None and results == expected
    assert list(failures) == [TASKS[5]]
    assert failures[TASKS[5]].attempts == 2 and "worker died" in failures[TASKS[5]].error
    assert info["failed_tasks"] == 1 and info["retried_tasks"] == 1


def test_ray_setup_error_is_raised_as_it_was(ray_local):
    with pytest.raises(ValueError, match="setup refused"):
        collect(ExecutorSettings(kind="ray", workers=2), {"offsets": OFFSETS, "fail_setup": True})


def test_ray_request_gate_is_one_global_limit(ray_local):
    """Two workers, one slot: never more than one request in flight across them."""
    results, _, info = collect(ExecutorSettings(kind="ray", workers=2), {"offsets": OFFSETS}, run=jobs.gated_sleep,
                               request_concurrency=1)
    assert sorted(results.values()) == list(range(8))
    assert info["max_concurrent_requests"] == 1
    _, _, info = collect(ExecutorSettings(kind="ray", workers=2), {"offsets": OFFSETS}, run=jobs.gated_sleep,
                         request_concurrency=2)
    assert info["max_concurrent_requests"] == 2


def test_ray_missing_is_one_line(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(InputError, match=r"audio-factsheet\[ray\]"):
        check_executor(ExecutorSettings(kind="ray"))
    check_executor(ExecutorSettings(kind="processes"))


@pytest.mark.parametrize("address,ok", [("local", True), ("auto", True), ("ray://head:10001", True),
                                        ("10.0.0.5:6379", True), ("ray://head", False), ("head:port", False),
                                        ("", False), ("http://x:1/y", False)])
def test_ray_addresses(address, ok):
    assert (check_ray_address(address) is None) == ok
