"""`factsheet compare`: metric deltas with approximate intervals, LEAN-style class counts, robustness
and disparity deltas, Markdown and HTML output."""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path

import pytest

from factsheet.cli import main
from factsheet.compare import Delta, compare_sheets, lean_counts, render_html, render_markdown, view_model
from factsheet.gate import load_factsheet

REPO = Path(__file__).resolve().parents[1]

# label: (old AP, new AP); relative changes chosen away from the 5/10/20 % edges
APS = {"A": (0.50, 0.56),    # +12 %
       "B": (0.60, 0.61),    # +1.7 %
       "C": (0.80, 0.60),    # -25 %
       "D": (0.40, 0.50),    # +25 %
       "E": (0.90, 0.88),    # -2.2 %
       "F": (0.70, 0.70),    # unchanged
       "G": (0.50, 0.53),    # +6 %
       "H": (None, None)}    # not evaluable in either


def _class(label, ap):
    return {"label": label, "index": 0, "category": "cat", "support": 10 if ap is not None else 0,
            "evaluable": ap is not None, "ap": ap, "auc": None if ap is None else 0.9, "d_prime": None}


def _norm(norm, *, success, ci, pcts):
    return {"norm": norm, "n_attacked": 20, "n_success": 20, "success_rate": success,
            "success_rate_ci": {"low": ci[0], "high": ci[1]},
            "percentiles": [{"percentile": p, "value": v, "ci_low": lo, "ci_high": hi, "snr_db": snr}
                            for p, v, lo, hi, snr in pcts], "by_group": [], "clips": []}


def _disp(group, diff, lo, hi, finding, metric="mAP"):
    return {"metric": metric, "class": None, "columns": ["voice_type"], "group": group, "reference": "male",
            "difference": diff, "ci_low": lo, "ci_high": hi, "finding": finding, "insufficient_evidence": False}


def sheet(which: int) -> dict:
    """which = 0: OLD, 1: NEW."""
    perf = {"status": "evaluated", "mAP": [0.60, 0.64][which], "mean_auc": [0.90, 0.88][which],
            "d_prime": [1.80, 1.80][which], "mean_class_d_prime": [1.9, None][which],
            "ci": {"mAP": [{"low": 0.55, "high": 0.65, "n_used": 9}, {"low": 0.60, "high": 0.70, "n_used": 9}][which],
                   "mean_auc": [{"low": 0.88, "high": 0.92, "n_used": 9},
                                {"low": 0.85, "high": 0.91, "n_used": 9}][which],
                   "d_prime": [{"low": 1.7, "high": 1.9, "n_used": 9}, None][which],
                   "mean_class_d_prime": None},
            "per_class": [_class(label, aps[which]) for label, aps in APS.items()]}
    if which == 0:
        perf["per_class"].append(_class("OnlyOld", 0.5))
    hsj = {"l2": _norm("l2", success=[1.0, 0.8][which], ci=[(0.9, 1.0), (0.6, 0.9)][which],
                       pcts=[[(25.0, 3.0, 2.0, 4.0, 19.0), (50.0, 6.0, 5.0, 7.0, 11.0)],
                             [(50.0, 7.5, 6.0, 9.0, 9.5), (75.0, 9.0, 8.0, 10.0, 8.0)]][which])}
    if which == 0:
        hsj["linf"] = _norm("linf", success=1.0, ci=(0.9, 1.0), pcts=[(50.0, 0.09, 0.07, 0.11, 8.5)])
    bias = {"status": "evaluated",
            "findings": [["female finding"], ["female finding", "child finding"]][which],
            "disparities": [_disp("female", [-0.18, -0.05][which], [-0.25, -0.10][which], [-0.10, 0.00][which],
                                  [True, False][which]),
                            _disp("child", [-0.02, -0.20][which], [-0.08, -0.30][which], [0.04, -0.10][which],
                                  [False, True][which])]}
    if which == 1:
        bias["disparities"].append(_disp("teen", -0.01, -0.05, 0.03, False))
    return {"schema_version": "1.2.0", "title": ["Old <model>", "New model"][which],
            "model": {"name": ["old <b>model</b>", "new model"][which], "sha256": ["a", "c"][which] * 64},
            "dataset": {"name": "eval", "n_clips": 100, "sha256": "b" * 64},
            "performance": perf, "robustness": {"status": "evaluated", "hopskipjump": hsj}, "bias": bias,
            "provenance": {"finished_at": "2026-01-0%dT00:00:00+00:00" % (which + 1),
                           "config": {"metrics": {"confidence": 0.95}}}}


@pytest.fixture
def files(tmp_path):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(sheet(0)))
    new.write_text(json.dumps(sheet(1)))
    return old, new


def test_delta_and_its_approximate_interval():
    d = Delta(old=0.60, new=0.64, old_ci=(0.55, 0.65), new_ci=(0.60, 0.70))
    assert d.delta == pytest.approx(0.04)
    h = math.sqrt(0.05 ** 2 + 0.05 ** 2)
    assert d.delta_ci == pytest.approx((0.04 - h, 0.04 + h))
    assert d.relative == pytest.approx(0.04 / 0.60)
    assert Delta(old=0.6, new=None).delta is None and Delta(old=0.6, new=0.7, old_ci=None).delta_ci is None
    assert Delta(old=0.0, new=0.1).relative is None


def test_metric_deltas():
    rows = {r["key"]: r["delta"] for r in compare_sheets(old=sheet(0), new=sheet(1))["metrics"]}
    assert rows["mAP"].delta == pytest.approx(0.04)
    assert rows["mAP"].delta_ci == pytest.approx((0.04 - math.hypot(0.05, 0.05), 0.04 + math.hypot(0.05, 0.05)))
    assert rows["mean_auc"].delta == pytest.approx(-0.02)
    assert rows["mean_auc"].delta_ci == pytest.approx((-0.02 - math.hypot(0.02, 0.03), -0.02 + math.hypot(0.02, 0.03)))
    assert rows["d_prime"].delta == 0 and rows["d_prime"].delta_ci is None   # NEW has no interval
    assert rows["mean_class_d_prime"].delta is None                           # NEW value is null


def test_lean_counts_by_hand():
    classes = compare_sheets(old=sheet(0), new=sheet(1))["classes"]
    # improved: A +12 %, B +1.7 %, D +25 %, G +6 %; worse: C -25 %, E -2.2 %; unchanged: F
    assert classes["counts"] == {"n_compared": 7, "improved": 4, "improved_5": 3, "improved_10": 2, "improved_20": 1,
                                 "worse": 2, "worse_5": 1, "worse_10": 1, "worse_20": 1, "unchanged": 1}
    assert [r["label"] for r in classes["rows"]] == ["D", "A", "G", "B", "F", "E", "C"]  # largest gain first
    skipped = {s["label"]: s["reason"] for s in classes["skipped"]}
    assert skipped == {"H": "no AP in OLD and NEW (not evaluable)", "OnlyOld": "only in OLD"}


def test_lean_counts_zero_baseline_counts_as_every_improvement():
    counts = lean_counts([Delta(old=0.0, new=0.2), Delta(old=0.5, new=0.5)])
    assert counts["improved"] == counts["improved_20"] == 1 and counts["unchanged"] == 1


def test_robustness_deltas_only_where_both_have_them():
    (l2,) = compare_sheets(old=sheet(0), new=sheet(1))["robustness"]  # linf only in OLD
    assert l2["norm"] == "l2"
    assert l2["success_rate"].delta == pytest.approx(-0.2)
    assert l2["success_rate"].delta_ci == pytest.approx((-0.2 - math.hypot(0.05, 0.15), -0.2 + math.hypot(0.05, 0.15)))
    (p50,) = l2["percentiles"]  # 25 only in OLD, 75 only in NEW
    assert p50["percentile"] == 50.0
    assert p50["value"].delta == pytest.approx(1.5) and p50["snr_db"].delta == pytest.approx(-1.5)
    assert p50["value"].delta_ci == pytest.approx((1.5 - math.hypot(1.0, 1.5), 1.5 + math.hypot(1.0, 1.5)))


def test_disparity_deltas_and_findings():
    bias = compare_sheets(old=sheet(0), new=sheet(1))["bias"]
    rows = {r["group"]: r for r in bias["rows"]}
    assert set(rows) == {"female", "child"} and bias["only_new"] == 1 and bias["only_old"] == 0
    assert rows["female"]["difference"].delta == pytest.approx(0.13)
    assert rows["female"]["finding"] == (True, False) and rows["child"]["finding"] == (False, True)
    assert bias["new_findings"] == [{"name": "voice_type = child vs male: mAP", "old": -0.02, "new": -0.20}]
    assert bias["resolved_findings"] == [{"name": "voice_type = female vs male: mAP", "old": -0.18, "new": -0.05}]


def test_markdown_and_html_rendering():
    old, new = sheet(0), sheet(1)
    comparison = compare_sheets(old=old, new=new)
    view = view_model(comparison=comparison, old_source="old.json", new_source="new.json", old=old, new=new)
    md = render_markdown(view)
    assert "| mAP | 0.600 [0.550, 0.650] | 0.640 [0.600, 0.700] | +0.040 | [-0.031, +0.111] | no | better |" in md
    assert "| Improved | 4 | 3 | 2 | 1 |" in md and "| Got worse | 2 | 1 | 1 | 1 |" in md
    assert "| D | cat | 0.400 | 0.500 | +0.100 | +25.0 % |" in md
    assert "Unchanged: 1." in md and "OnlyOld (only in OLD)" in md
    assert "| Success rate | 1.000 [0.900, 1.000] | 0.800 [0.600, 0.900] | -0.200 |" in md
    assert "more robust" in md and "NEW finding" in md
    assert "- voice_type = child vs male: mAP (OLD: difference -0.020; NEW: difference -0.200)" in md
    assert "approximate" in md
    assert "<b>" not in md and "&lt;b&gt;" in md  # escaped model name
    html = render_html(view)
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html.lower()
    assert "old &lt;b&gt;model&lt;/b&gt;" in html and "<b>model" not in html
    assert "http://" not in html and "https://" not in html
    assert 'class="new-finding"' in html


def test_sections_not_evaluated_are_said_so():
    old, new = sheet(0), sheet(1)
    new["bias"] = {"status": "not_evaluated", "text": "", "reason": "Not evaluated in this run."}
    old["robustness"] = {"status": "not_evaluated", "text": "", "reason": "Not evaluated in this run."}
    c = compare_sheets(old=old, new=new)
    assert c["bias"] is None and c["bias_reason"] == "Bias not evaluated in NEW."
    assert c["robustness"] is None and c["robustness_reason"] == "Robustness not evaluated in OLD."
    view = view_model(comparison=c, old_source="o", new_source="n", old=old, new=new)
    assert "Bias not evaluated in NEW." in render_markdown(view)
    assert "Robustness not evaluated in OLD." in render_html(view)


def test_cli_prints_markdown_and_writes_files(files, tmp_path, capsys):
    old, new = files
    out = tmp_path / "cmp"
    assert main(["compare", str(old), str(new), "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert stdout.startswith("# FactSheet comparison")
    assert (out / "compare.md").read_text() == stdout
    assert (out / "compare.html").read_text().startswith("<!DOCTYPE html>")
    assert main(["compare", str(old), str(new)]) == 0  # no --out: stdout only
    assert capsys.readouterr().out == stdout


def test_cli_refuses_what_is_not_a_factsheet(files, tmp_path, capsys):
    old, _ = files
    cases = [("a.json", json.dumps({"hello": 1}), "schema_version: missing: not a FactSheet"),
             ("b.json", json.dumps({"schema_version": "2.0.0"}), "schema_version = '2.0.0': unsupported"),
             ("c.json", "[1, 2", "not valid JSON")]
    for name, text, needle in cases:
        bad = tmp_path / name
        bad.write_text(text)
        assert main(["compare", str(old), str(bad), "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"error: {bad}") and needle in err
    assert not (tmp_path / "x").exists()


def test_sheet_against_itself_has_zero_deltas():
    s = sheet(1)
    c = compare_sheets(old=s, new=copy.deepcopy(s))
    assert all(r["delta"].delta in (0, None) for r in c["metrics"])
    assert c["classes"]["counts"]["unchanged"] == c["classes"]["counts"]["n_compared"] == 7
    assert c["classes"]["counts"]["improved"] == c["classes"]["counts"]["worse"] == 0
    assert all(p["value"].delta == 0 for b in c["robustness"] for p in b["percentiles"])
    assert all(r["difference"].delta == 0 for r in c["bias"]["rows"])
    assert c["bias"]["new_findings"] == c["bias"]["resolved_findings"] == []


def test_demo_against_itself(capsys):
    path = Path(os.environ.get("FACTSHEET_DEMO_JSON", REPO / "reports" / "out" / "demo" / "factsheet.json"))
    if not path.is_file():
        pytest.skip(f"no demo FactSheet at {path}: run `make factsheet` first")
    doc = load_factsheet(path)
    c = compare_sheets(old=doc, new=doc)
    assert all(r["delta"].delta == 0 for r in c["metrics"] if r["delta"].old is not None)
    counts = c["classes"]["counts"]
    assert counts["unchanged"] == counts["n_compared"] == doc["performance"]["n_classes_evaluated"]
    if c["robustness"] is not None:
        assert all(p["value"].delta in (0, None) for b in c["robustness"] for p in b["percentiles"])
        assert all(b["success_rate"].delta == 0 for b in c["robustness"])
    assert main(["compare", str(path), str(path)]) == 0
    md = capsys.readouterr().out
    assert "| Improved | 0 | 0 | 0 | 0 |" in md and "| Got worse | 0 | 0 | 0 | 0 |" in md
    assert "Both FactSheets describe the same model file" in md
