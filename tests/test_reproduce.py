"""`factsheet reproduce`: a stored FactSheet re-run from its own provenance gives the same numbers."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from factsheet.cli import main
from factsheet.config import load_config
from factsheet.reproduce import MISSING, config_from_factsheet, differences, reproduce, results_only

REPO = Path(__file__).resolve().parents[1]


def test_differences_finds_every_changed_leaf():
    a = {"x": 1, "y": [1.0, 2.0, {"z": "s"}], "b": True, "n": None, "gone": 1}
    b = {"x": 1, "y": [1.0, 2.5, {"z": "t"}], "b": 1, "n": 0, "new": 2}
    diffs, n = differences(a, b)
    assert [d[0] for d in diffs] == ["y[1]", "y[2].z", "b", "n", "gone", "new"]
    assert diffs[4][2] is MISSING and diffs[5][1] is MISSING
    assert n == 8
    assert differences({"l": [1, 2]}, {"l": [1]})[0] == [("l (length)", 2, 1)]
    assert differences(a, json.loads(json.dumps(a))) == ([], 7)


def test_differences_relative_tolerance():
    assert differences({"v": 1.0}, {"v": 1.0 + 1e-7}, rtol=1e-6)[0] == []
    assert differences({"v": 1.0}, {"v": 1.0 + 1e-5}, rtol=1e-6)[0] != []
    assert differences({"v": 0.0}, {"v": 1e-300}, rtol=1e-6)[0] != []  # relative: no free pass near zero
    assert differences({"v": 3}, {"v": 3.0})[0] == []  # JSON does not distinguish 3 from 3.0


@pytest.mark.parametrize("name", ["demo.toml", "ci_quick.toml"])
def test_recorded_config_rebuilds_the_run_config(name):
    cfg = load_config(REPO / "configs" / name)
    doc = {"provenance": {"config": json.loads(json.dumps(cfg.to_dict()))}}
    assert config_from_factsheet(doc, source="x.json") == replace(cfg, path=None)


def test_demo_reproduces_exactly(demo_report, tmp_path):
    """Every value of the demo FactSheet (attack included) comes back bit for bit from its provenance."""
    out, doc = demo_report
    result = reproduce(out / "factsheet.json", tmp_path / "again")
    assert result.identical, result.differences[:5]
    assert result.added == []
    assert result.n_compared > 2000
    assert (tmp_path / "again" / "factsheet.html").is_file()
    assert results_only(json.loads((tmp_path / "again" / "factsheet.json").read_text())) == results_only(doc)


@pytest.fixture(scope="module")
def small_sheet(tmp_path_factory):
    """A small FactSheet (the demo's model and data, 240 clips, Performance and Bias only): cheap to reproduce."""
    from factsheet.pipeline import run
    from factsheet.render import write_report

    cfg = load_config(REPO / "configs" / "demo.toml")
    cfg = replace(cfg, path=None, dataset=replace(cfg.dataset, n_clips=240),
                  metrics=replace(cfg.metrics, bootstrap_resamples=100),
                  robustness=replace(cfg.robustness, enabled=False),
                  bias=replace(cfg.bias, min_group_size=10, min_positives=5),
                  domain_shift=replace(cfg.domain_shift, enabled=False),
                  explanation=replace(cfg.explanation, enabled=False))
    out = tmp_path_factory.mktemp("small")
    sheet, artefacts = run(cfg, out_dir=out)
    write_report(out, sheet, artefacts)
    return out, json.loads((out / "factsheet.json").read_text())


@pytest.fixture(scope="module")
def tampered(small_sheet, tmp_path_factory):
    """A FactSheet with two numbers edited by hand (still a valid FactSheet)."""
    out, doc = small_sheet
    d = tmp_path_factory.mktemp("tampered")
    doc = json.loads(json.dumps(doc))
    doc["performance"]["mAP"] += 0.001
    doc["performance"]["per_class"][2]["ap"] = round(doc["performance"]["per_class"][2]["ap"], 2)
    (d / "factsheet.json").write_text(json.dumps(doc))
    shutil.copytree(out / "plots", d / "plots")
    return d / "factsheet.json"


def test_tampered_numbers_are_named_and_fail(tampered, tmp_path, capsys):
    assert main(["reproduce", str(tampered), "--out", str(tmp_path / "again"), "--quiet"]) == 1
    text = capsys.readouterr().out
    assert "NOT reproduced: 2 of " in text
    assert "performance.mAP: stored" in text and "performance.per_class[2].ap: stored" in text
    # within a 1 % tolerance the edit to mAP (about 0.1 %) passes, the rounded AP (up to 0.6 %) too
    new = json.loads((tmp_path / "again" / "factsheet.json").read_text())
    stored = json.loads(tampered.read_text())
    assert differences(results_only(stored), results_only(new), rtol=0.01)[0] == []
    assert len(differences(results_only(stored), results_only(new), rtol=1e-6)[0]) == 2


def test_bad_input_one_line_exit_2(demo_report, tampered, tmp_path, capsys):
    out, _ = demo_report
    assert main(["reproduce", str(out / "factsheet.json"), "--out", str(out)]) == 2
    assert "stored report's folder" in capsys.readouterr().err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "attack_runs.sqlite").write_bytes(b"")
    assert main(["reproduce", str(out / "factsheet.json"), "--out", str(busy)]) == 2
    assert "attack run store" in capsys.readouterr().err
    doc = json.loads(tampered.read_text())
    doc["provenance"]["config"]["metrics"]["confidence"] = 2.0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    assert main(["reproduce", str(bad), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "provenance.config" in err and "confidence" in err
    assert not (tmp_path / "x").exists()  # refused before running anything
    assert main(["reproduce", str(out / "factsheet.json"), "--out", str(tmp_path / "y"), "--rtol", "-1"]) == 2
