"""End to end robustness: JSON paths, worker-count invariance, resume after SIGKILL, no stale reuse."""

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from factsheet.cli import main
from factsheet.document import validate

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
n_clips = {n_clips}
iterations = 4
k = 5
init_eval = 10
max_eval = 100
mode = "fast"
seed = {seed}
"""


def config(tmp: Path, *, n_clips=6, seed=0) -> Path:
    p = tmp / f"rob_{n_clips}_{seed}.toml"
    p.write_text(SMALL.format(n_clips=n_clips, seed=seed))
    return p


def load(out: Path) -> dict:
    return json.loads((out / "factsheet.json").read_text())


def stable(doc: dict) -> dict:
    pv = doc["provenance"]
    for k in ("started_at", "finished_at", "timings_s", "run_store", "config_path", "config_sha256"):
        pv.pop(k)
    return doc


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    d = tmp_path_factory.mktemp("rob1")
    assert main(["run", "--config", str(config(d)), "--out", str(d / "out"), "--workers", "1", "--quiet"]) == 0
    return d


def test_json_paths_and_schema(one_worker):
    doc = load(one_worker / "out")
    validate(doc)
    rob = doc["robustness"]
    assert rob["status"] == "evaluated"
    for norm in ("l2", "linf"):
        b = rob["hopskipjump"][norm]
        assert b["iterations"] == 4 and b["k"] == 5 and len(b["clips"]) == 6
        assert 0 <= b["success_rate"] <= 1
        for row in b["percentiles"]:
            assert {"percentile", "value", "ci_low", "ci_high", "fitted_at_k", "fit_family", "fit_reason"} <= row.keys()
            assert (row["fitted_at_k"] is None) == (row["fit_reason"] is not None)
            assert (row["fitted_at_k_ci"]["low"] is None) == (row["fitted_at_k_ci"]["reason"] is not None)
        for c in b["clips"]:
            assert len(c["l2"]) == 4 and c["queries"] > 0
            if c["success"]:
                assert all(v is not None and v > 0 for v in c["l2"])
    assert [p["percentile"] for p in rob["hopskipjump"]["l2"]["percentiles"]] == [5, 10, 15, 25, 50]
    assert (one_worker / "out" / "plots" / "robustness_curves.svg").is_file()
    html = (one_worker / "out" / "factsheet.html").read_text()
    assert "th Percentile" in html and "fitted curve evaluated at 5 iterations" in html
    assert "CI of fitted (16-bit PCM)" in html
    assert (one_worker / "out" / "attack_runs.sqlite").is_file()


def test_two_workers_give_the_same_factsheet(one_worker, tmp_path):
    assert main(["run", "--config", str(config(one_worker)), "--out", str(tmp_path / "o2"), "--workers", "2",
                 "--quiet"]) == 0
    assert stable(load(tmp_path / "o2")) == stable(load(one_worker / "out"))
    assert load(tmp_path / "o2")["provenance"]["run_store"]["workers"] == 2


def test_rerun_resumes_and_changed_config_does_not_reuse(one_worker, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(one_worker / "out", out)
    before = stable(load(out))
    assert main(["run", "--config", str(config(one_worker)), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    rs = load(out)["provenance"]["run_store"]
    assert rs["reused_results"] == 12 and rs["computed_results"] == 0
    assert stable(load(out)) == before
    assert main(["run", "--config", str(config(one_worker, seed=1)), "--out", str(out), "--workers", "1",
                 "--quiet"]) == 0
    rs = load(out)["provenance"]["run_store"]
    assert rs["reused_results"] == 0 and rs["computed_results"] == 12 and rs["ignored_results_other_configs"] == 12


def count_results(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as c:
            return c.execute("select count(*) from results").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkill_mid_attack_then_resume_equals_uninterrupted(one_worker, tmp_path):
    cfg = config(one_worker)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "factsheet", "run", "--config", str(cfg), "--out", str(out), "--workers", "1",
           "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = out / "attack_runs.sqlite"
    deadline = time.time() + 240
    while time.time() < deadline and count_results(db) < 3 and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    n_before = count_results(db)
    assert 3 <= n_before < 12
    assert not (out / "factsheet.json").exists()
    assert main(["run", "--config", str(cfg), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    rs = load(out)["provenance"]["run_store"]
    assert rs["reused_results"] == n_before and rs["computed_results"] == 12 - n_before
    assert stable(load(out)) == stable(load(one_worker / "out"))


def test_targeted_option(tmp_path):
    cfg = config(tmp_path, n_clips=3).read_text().replace('mode = "fast"', 'mode = "fast"\ntargeted = true\nnorms = ["l2"]')
    p = tmp_path / "targeted.toml"
    p.write_text(cfg)
    assert main(["run", "--config", str(p), "--out", str(tmp_path / "o"), "--workers", "1", "--quiet"]) == 0
    doc = load(tmp_path / "o")
    validate(doc)
    assert doc["robustness"]["settings"]["targeted"] is True and list(doc["robustness"]["hopskipjump"]) == ["l2"]
    for c in doc["robustness"]["hopskipjump"]["l2"]["clips"]:
        assert c["target"] is not None and c["target"] != c["label"]
