"""End to end: config -> FactSheet files, checked against scikit-learn, the schema and the CLI contract."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import ndtri
from sklearn.metrics import average_precision_score, roc_auc_score

from factsheet.cli import main
from factsheet.document import validate

REPO = Path(__file__).resolve().parents[1]



def run_cli(config: Path, out: Path) -> int:
    return main(["run", "--config", str(config), "--out", str(out), "--quiet"])


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """The demo config as `make factsheet` runs it, less the attack (tested in test_robustness_run.py) and the
    corruption suite (tested in test_domain_shift.py)."""
    d = tmp_path_factory.mktemp("run")
    text = (REPO / "configs" / "demo.toml").read_text()
    for section in ("[robustness]", "[domain_shift]"):
        head, tail = text.split(section, 1)
        assert "\nenabled = true\n" in tail
        text = head + section + tail.replace("\nenabled = true\n", "\nenabled = false\n", 1)
    cfg = d / "demo_no_attack.toml"
    cfg.write_text(text)
    assert run_cli(cfg, d / "out") == 0
    return cfg, d / "out"


def load(out: Path) -> dict:
    return json.loads((out / "factsheet.json").read_text())


def test_writes_every_output(small_run):
    _, out = small_run
    for name in ("factsheet.json", "factsheet.html", "factsheet.md", "predictions.csv", "plots/per_class_ap.svg"):
        assert (out / name).is_file(), name
    assert not list(out.glob(".*.tmp"))


def test_json_validates_and_has_key_paths(small_run):
    doc = load(small_run[1])
    validate(doc)
    assert doc["schema_version"] == "1.2.0"
    for key in ("model", "dataset", "bias", "robustness", "domain_shift", "explanation", "provenance"):
        assert key in doc
    perf = doc["performance"]
    assert {"mAP", "mean_auc", "d_prime"} <= perf.keys()
    assert {"label", "ap", "auc", "d_prime", "support"} <= perf["per_class"][0].keys()
    assert doc["robustness"]["status"] == "not_evaluated"
    assert doc["robustness"]["reason"].startswith("Not evaluated in this run.")
    assert doc["domain_shift"]["reason"].startswith("Not evaluated in this run.")
    assert doc["provenance"]["model_sha256"] == doc["model"]["sha256"]
    assert doc["dataset"]["n_clips"] == 1200
    bias = doc["bias"]
    assert bias["status"] == "evaluated" and bias["findings"]
    assert {"per_class", "groups", "disparities", "findings"} <= bias.keys()
    assert {"metric", "group", "reference", "difference", "ratio", "ci_low", "ci_high", "finding"} <= \
        bias["disparities"][0].keys()
    assert any(d["finding"] and d["group"] == "child" for d in bias["disparities"])  # the planted skew
    assert doc["poor_conditions"]["status"] == "evaluated" and doc["poor_conditions"]["statements"]


def read_predictions(out: Path):
    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    names = [k[len("score:"):] for k in rows[0] if k.startswith("score:")]
    assert {"meta:voice_type", "meta:n_events", "meta:snr_db"} <= rows[0].keys()
    scores = np.array([[float(r[f"score:{n}"]) for n in names] for r in rows])
    y = np.array([[n in r["true_labels"].split(";") for n in names] for r in rows], dtype=int)
    return names, y, scores


def test_metrics_equal_sklearn_from_saved_predictions(small_run):
    out = small_run[1]
    doc = load(out)
    names, y, scores = read_predictions(out)
    assert names == [c["display_name"] for c in doc["dataset"]["class_labels"]]
    keep = [j for j in range(len(names)) if 0 < y[:, j].sum() < len(y)]
    ap = [average_precision_score(y[:, j], scores[:, j]) for j in keep]
    auc = [roc_auc_score(y[:, j], scores[:, j]) for j in keep]
    perf = doc["performance"]
    assert perf["n_classes_evaluated"] == len(keep)
    assert perf["mAP"] == pytest.approx(np.mean(ap), abs=1e-9)
    assert perf["mean_auc"] == pytest.approx(np.mean(auc), abs=1e-9)
    assert perf["d_prime"] == pytest.approx(np.sqrt(2) * ndtri(np.mean(auc)), abs=1e-9)
    for row, j in zip([r for r in perf["per_class"] if r["evaluable"]], keep):
        assert row["ap"] == pytest.approx(average_precision_score(y[:, j], scores[:, j]), abs=1e-9)
        assert row["support"] == int(y[:, j].sum())
    lo, hi = perf["ci"]["mAP"]["low"], perf["ci"]["mAP"]["high"]
    assert lo < perf["mAP"] < hi


def strip_volatile(doc: dict) -> dict:
    pv = doc["provenance"]
    for k in ("started_at", "finished_at", "timings_s"):
        pv.pop(k)
    return doc


def test_same_config_same_json(small_run, tmp_path):
    cfg, out = small_run
    assert run_cli(cfg, tmp_path / "again") == 0
    assert strip_volatile(load(out)) == strip_volatile(load(tmp_path / "again"))
    assert (out / "predictions.csv").read_bytes() == (tmp_path / "again" / "predictions.csv").read_bytes()
    assert (out / "plots/per_class_ap.svg").read_bytes() == (tmp_path / "again" / "plots/per_class_ap.svg").read_bytes()


def test_html_is_self_contained_and_ordered(small_run):
    html = (small_run[1] / "factsheet.html").read_text()
    assert 'http-equiv="Content-Security-Policy"' in html
    assert "<script" not in html.lower()
    assert 'src="http' not in html and 'href="http' not in html
    assert html.count("url(") == html.count("url(#")  # only in-document references (SVG clip paths)
    order = ["Model Name", "Overview", "Purpose", "Intended Domain", "Training Data", "Model Information",
             "Inputs and Outputs", "Performance Metrics", "Bias", "Robustness", "Domain Shift", "Test Data",
             "Optimal Conditions", "Poor Conditions", "Explanation", "Contact Information", "Provenance"]
    positions = [html.index(f"<h2>{t}</h2>") for t in order]
    assert positions == sorted(positions)
    assert "Not evaluated in this run." in html
    md = (small_run[1] / "factsheet.md").read_text()
    assert "| Mean Average Precision (mAP) |" in md and "## Robustness" in md


def test_bad_config_exits_2_with_one_line_and_keeps_old_report(small_run, tmp_path):
    _, out = small_run
    before = (out / "factsheet.json").read_bytes()
    bad = tmp_path / "bad.toml"
    bad.write_text("[dataset]\nn_clips = -4\n")
    proc = subprocess.run([sys.executable, "-m", "factsheet", "run", "--config", str(bad), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.toml" in lines[0] and "dataset.n_clips" in lines[0] and "-4" in lines[0]
    assert "Traceback" not in proc.stderr
    assert (out / "factsheet.json").read_bytes() == before


def test_render_failure_leaves_old_report(small_run, tmp_path, monkeypatch):
    import factsheet.render as render

    cfg, out = small_run
    target = tmp_path / "keep"
    shutil.copytree(out, target)  # a good report from an earlier run
    before = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()}

    def boom(*a, **k):
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(render, "render_markdown", boom)
    with pytest.raises(RuntimeError):
        run_cli(cfg, target)
    assert {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()} == before


def test_render_from_stored_json_reproduces_the_report(small_run, tmp_path, capsys):
    _, out = small_run
    assert main(["render", str(out / "factsheet.json"), "--out", str(tmp_path / "re")]) == 0
    assert (tmp_path / "re" / "factsheet.html").read_text() == (out / "factsheet.html").read_text()
    assert (tmp_path / "re" / "factsheet.md").read_text() == (out / "factsheet.md").read_text()
    assert (tmp_path / "re" / "plots" / "per_class_ap.svg").is_file()
    assert "completeness:" in capsys.readouterr().out


def test_render_refuses_a_tampered_json(small_run, tmp_path, capsys):
    _, out = small_run
    doc = json.loads((out / "factsheet.json").read_text())
    doc["performance"]["mAP"] = "high"
    bad = tmp_path / "factsheet.json"
    bad.write_text(json.dumps(doc))
    assert main(["render", str(bad), "--out", str(tmp_path / "re")]) == 2
    err = capsys.readouterr().err.strip()
    assert "performance.mAP" in err and "\n" not in err
    assert not (tmp_path / "re").exists()
    # a definition the report prints beside a number is required, not optional
    doc = json.loads((out / "factsheet.json").read_text())
    del doc["performance"]["definitions"]["mAP"]
    bad.write_text(json.dumps(doc))
    assert main(["render", str(bad), "--out", str(tmp_path / "re")]) == 2
    err = capsys.readouterr().err.strip()
    assert "performance.definitions" in err and "'mAP' is a required property" in err and "\n" not in err


def test_completeness_lists_empty_prose(small_run):
    from factsheet.sections import empty_prose_fields

    doc = load(small_run[1])
    assert empty_prose_fields(doc) == []  # the demo fills every descriptive field
    assert "Completeness: every descriptive field is filled." in (small_run[1] / "factsheet.html").read_text()
    doc["domain_shift"]["text"] = " "
    doc["model"]["overview"] = ""
    assert empty_prose_fields(doc) == ["model.overview", "domain_shift.text"]


@pytest.mark.parametrize("command", ["run", "render", "reproduce", "compare"])
def test_out_that_is_a_file_exits_2_before_any_work(command, tmp_path, capsys):
    a_file = tmp_path / "report.txt"
    a_file.write_text("not a folder")
    inputs = {"run": ["--config", str(REPO / "configs" / "ci_quick.toml")],
              "render": [str(tmp_path / "missing.json")], "reproduce": [str(tmp_path / "missing.json")],
              "compare": [str(tmp_path / "a.json"), str(tmp_path / "b.json")]}[command]
    for out in (a_file, a_file / "below"):
        assert main([command, *inputs, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: --out = ") and "not a folder" in err[0], err
    assert a_file.read_text() == "not a folder"
