"""The Summary at the top of the report: laid out from the JSON only, its numbers equal the sections'
numbers, and `factsheet run --policy` stores the gate's verdict that it shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from factsheet.cli import main
from factsheet.sections.summary import summary_view

ROOT = Path(__file__).resolve().parent.parent


def section_text(md: str, title: str) -> str:
    """The Markdown between ``## title`` and the next ``## ``."""
    parts = re.split(r"^## ", md, flags=re.M)
    return next(p for p in parts if p.split("\n", 1)[0] == title)


def test_summary_comes_first_and_its_numbers_are_the_sections(demo_report):
    out, doc = demo_report
    md = (out / "factsheet.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", md, flags=re.M)
    assert headings[0] == "Summary" and headings[1] == "Model Name"
    summary = section_text(md, "Summary")
    perf = doc["performance"]
    for key in ("mAP", "mean_auc", "d_prime"):
        assert f"{perf[key]:.3f} (95% CI {perf['ci'][key]['low']:.3f} to {perf['ci'][key]['high']:.3f})" in summary
    n_findings = sum(1 for d in doc["bias"]["disparities"] if d["finding"])
    assert f"{n_findings} finding(s) among {doc['bias']['settings']['n_tests']} disparity tests" in summary
    assert doc["bias"]["findings"][0].replace("|", "&#124;")[:60] in summary
    for norm, block in doc["robustness"]["hopskipjump"].items():
        med = next(r for r in block["percentiles"] if r["percentile"] == 50.0)
        assert f"{block['n_success']} of {block['n_attacked']} attacked clips fooled" in summary
        assert f"median perturbation {med['value_int16']:.1f} (16-bit PCM), SNR {med['snr_db']:.1f} dB" in summary
    ds = doc["domain_shift"]
    assert f"mean relative mAP drop {100 * ds['mean_relative_drop']:.1f} %" in summary
    broken = sum(1 for b in ds["corruptions"] if b["breaking_point"] is not None)
    assert f"{broken} corruption(s) break the model" in summary
    html = (out / "factsheet.html").read_text(encoding="utf-8")
    assert html.index('<section id="summary">') < html.index('<section id="model_name">')


def test_summary_lists_what_was_not_evaluated_and_the_empty_prose(demo_report):
    _, doc = demo_report
    off = dict(doc, robustness={"status": "not_evaluated", "text": "",
                                "reason": "Not evaluated in this run. robustness.enabled is false in the config."})
    view = summary_view(off)
    assert {"title": "Robustness", "anchor": "robustness",
            "reason": "Not evaluated in this run. robustness.enabled is false in the config."} in view["not_evaluated"]
    assert all(b["title"] != "Robustness" for b in view["blocks"])
    assert view["gate"] is None
    off["contact"] = "  "
    assert "contact" in summary_view(off)["empty_fields"] and "contact" not in view["empty_fields"]


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    d = tmp_path_factory.mktemp("gate_run")
    text = (ROOT / "configs" / "ci_quick.toml").read_text()
    head, tail = text.split("[robustness]", 1)
    text = head + "[robustness]" + tail.replace("\nenabled = true\n", "\nenabled = false\n", 1)
    text = text.replace("n_clips = 600", "n_clips = 60").replace("bootstrap_resamples = 200", "bootstrap_resamples = 20")
    (d / "run.toml").write_text(text)
    (d / "pass.toml").write_text('[[gate]]\nname = "mAP positive"\npath = "performance.mAP"\nop = ">"\nthreshold = 0.0\n')
    (d / "fail.toml").write_text('[[gate]]\nname = "mAP perfect"\npath = "performance.mAP"\nop = ">="\nthreshold = 1.0\n')
    return d


@pytest.mark.parametrize("policy,code,verdict", [("pass.toml", 0, "passed"), ("fail.toml", 1, "failed")])
def test_run_with_policy_stores_the_verdict_and_exits_by_it(tiny_config, policy, code, verdict, capsys):
    out = tiny_config / f"out_{verdict}"
    rc = main(["run", "--config", str(tiny_config / "run.toml"), "--out", str(out), "--quiet",
               "--policy", str(tiny_config / policy)])
    assert rc == code
    doc = json.loads((out / "factsheet.json").read_text())
    assert doc["gate"]["verdict"] == verdict and doc["gate"]["n_gates"] == 1
    assert list(doc)[-3:] == ["provenance", "gate", "outputs"]
    md = (out / "factsheet.md").read_text()
    assert f"**Gate: {verdict.upper()}**" in section_text(md, "Summary")
    assert "GATE" in capsys.readouterr().out  # the gate table, as `factsheet gate` prints it


def test_bad_policy_stops_before_the_run(tiny_config, capsys):
    (tiny_config / "bad.toml").write_text('[[gate]]\nname = "x"\npath = "performance.mAP"\nop = "=~"\nthreshold = 1\n')
    out = tiny_config / "out_bad"
    rc = main(["run", "--config", str(tiny_config / "run.toml"), "--out", str(out), "--quiet",
               "--policy", str(tiny_config / "bad.toml")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "bad.toml" in err[0] and not (out / "factsheet.json").exists()
