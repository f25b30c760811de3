"""The attack on Ray: the same FactSheet as the process pool; a worker killed mid-attack loses nothing;
a driver killed mid-run (a partial store) resumes on Ray; a task that keeps failing is stated in the FactSheet."""

import json
import os
import shutil
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from factsheet.cli import main

SMALL = """
[model]
clip_seconds = 1.0
[dataset]
n_clips = 60
seed = 2
[metrics]
bootstrap_resamples = 100
[robustness]
enabled = true
n_clips = 6
iterations = 4
k = 5
init_eval = 10
max_eval = 100
mode = "fast"
seed = 0
"""


def load(out: Path) -> dict:
    return json.loads((out / "factsheet.json").read_text())


def stable(doc: dict) -> dict:
    """The FactSheet without timings and the circumstances of the run (executor, store counters)."""
    pv = doc["provenance"]
    for k in ("started_at", "finished_at", "timings_s", "run_store", "config_path", "config_sha256"):
        pv.pop(k)
    pv["config"].pop("execution")
    return doc


@pytest.fixture(scope="module")
def pool_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("pool")
    (d / "small.toml").write_text(SMALL)
    assert main(["run", "--config", str(d / "small.toml"), "--out", str(d / "out"), "--executor", "processes",
                 "--workers", "2", "--quiet"]) == 0
    return d


def test_ray_factsheet_equals_the_process_pool(pool_run, ray_local, tmp_path):
    out = tmp_path / "ray"
    assert main(["run", "--config", str(pool_run / "small.toml"), "--out", str(out), "--executor", "ray",
                 "--workers", "2", "--quiet"]) == 0
    doc = load(out)
    rs = doc["provenance"]["run_store"]
    assert rs["executor"] == "ray" and rs["workers"] == 2 and rs["computed_results"] == 12
    assert rs["failed_tasks"] == 0 and doc["provenance"]["config"]["execution"]["executor"] == "ray"
    assert stable(doc) == stable(load(pool_run / "out"))
    assert (out / "factsheet.md").read_text().count("Failed tasks") == 0


def _descends_from_me(pid: int) -> bool:
    me = os.getpid()
    while pid > 1:
        if pid == me:
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
    return False


def _busy_ray_worker() -> int | None:
    """A Ray worker of this test session running an attack task (its process title), or None."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"ray::FactsheetWorker.run") and _descends_from_me(int(entry.name)):
                return int(entry.name)
    return None


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as c:
            return c.execute("select count(*) from results").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_worker_killed_mid_attack_and_a_partial_store_resume_with_nothing_lost(pool_run, ray_local, tmp_path):
    """The pool's store cut to 5 results stands for a driver killed mid-run; Ray resumes it, and one of its
    workers is SIGKILLed while attacking: the task is retried and the FactSheet equals the pool's."""
    out = tmp_path / "resumed"
    out.mkdir()
    shutil.copy(pool_run / "out" / "attack_runs.sqlite", out / "attack_runs.sqlite")
    with sqlite3.connect(out / "attack_runs.sqlite") as c:
        keep = {tuple(k) for k in c.execute("select norm, clip_id from results order by norm, clip_id limit 5")}
        for norm, clip_id in c.execute("select norm, clip_id from results").fetchall():
            if (norm, clip_id) not in keep:
                c.execute("delete from results where norm = ? and clip_id = ?", (norm, clip_id))
    killed = []

    def kill_one_worker():
        deadline = time.time() + 240
        while time.time() < deadline and not killed:
            pid = _busy_ray_worker()
            if pid is not None and _count(out / "attack_runs.sqlite") >= 6:  # mid-attack: one new result in
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    killer.start()
    assert main(["run", "--config", str(pool_run / "small.toml"), "--out", str(out), "--executor", "ray",
                 "--workers", "2", "--quiet"]) == 0
    killer.join(timeout=5)
    assert killed, "no Ray worker was caught mid-task"
    doc = load(out)
    rs = doc["provenance"]["run_store"]
    assert rs["reused_results"] == 5 and rs["computed_results"] == 7
    assert rs["retried_tasks"] >= 1 and rs["failed_tasks"] == 0
    assert stable(doc) == stable(load(pool_run / "out"))


def test_failed_task_is_stated_in_the_factsheet(pool_run, monkeypatch, tmp_path, capsys):
    """A task that fails every attempt leaves the statistics, is listed in robustness.failed_tasks and the
    reports, is not stored (a re-run tries it again) and the FactSheet is still written and valid."""
    import factsheet.executors as executors
    from attacks import runner
    from factsheet.document import validate

    real = executors.map_tasks

    def first_task_fails(job, tasks, *, settings, on_result, on_failure=None):
        on_failure(tasks[0], executors.TaskFailure(attempts=3, error="worker died: SIGKILL"))
        info = real(job, tasks[1:], settings=settings, on_result=on_result, on_failure=on_failure)
        return dict(info, retried_tasks=2, failed_tasks=1)

    monkeypatch.setattr(runner, "map_tasks", first_task_fails)
    out = tmp_path / "failed"
    assert main(["run", "--config", str(pool_run / "small.toml"), "--out", str(out), "--executor", "local",
                 "--quiet"]) == 0
    assert "1 attack task(s) failed" in capsys.readouterr().err
    doc = load(out)
    validate(doc)
    rob = doc["robustness"]
    (failed,) = rob["failed_tasks"]
    assert failed["attempts"] == 3 and failed["norm"] == "l2"
    assert rob["settings"]["n_selected"] == 6  # the clip leaves both norms, so they describe the same clips
    assert rob["hopskipjump"]["l2"]["n_attacked"] == rob["hopskipjump"]["linf"]["n_attacked"] == 5
    assert failed["clip_id"] not in [c["clip_id"] for c in rob["hopskipjump"]["l2"]["clips"]]
    assert doc["provenance"]["run_store"]["failed_tasks"] == 1 and _count(out / "attack_runs.sqlite") == 11
    for name in ("factsheet.md", "factsheet.html"):
        assert f"{failed['clip_id']} (l2, 3 attempts" in (out / name).read_text()
    pooled = {c["clip_id"]: c for c in load(pool_run / "out")["robustness"]["hopskipjump"]["l2"]["clips"]}
    assert all(c == pooled[c["clip_id"]] for c in rob["hopskipjump"]["l2"]["clips"])


def test_ray_not_installed_is_one_line(pool_run, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(__import__("sys").modules, "ray", None)
    assert main(["run", "--config", str(pool_run / "small.toml"), "--out", str(tmp_path / "o"),
                 "--executor", "ray", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--executor = 'ray'" in err and "audio-factsheet[ray]" in err


@pytest.mark.parametrize("table,needle", [('[execution]\nexecutor = "spark"', "execution.executor"),
                                          ('[execution]\nray_address = "head"', "execution.ray_address"),
                                          ('[execution]\nmax_retries = -1', "execution.max_retries")])
def test_bad_execution_config_is_one_line(tmp_path, capsys, table, needle):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(SMALL + table + "\n")
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and needle in err
