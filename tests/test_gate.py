"""`factsheet gate`: policies, the path language, outcomes, exit codes, JUnit XML and the Markdown summary.

Most tests use small hand-made FactSheet dicts (shaped like the real sections, bias included);
the two shipped policies are also checked against the real demo FactSheet when one is present.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from factsheet.cli import main
from factsheet.errors import InputError
from factsheet.gate import evaluate_policy, load_factsheet, load_policy, parse_path, parse_policy

REPO = Path(__file__).resolve().parents[1]


def _pct_row(p, value, lo, hi, snr):
    return {"percentile": p, "value": value, "value_int16": None if value is None else value * 32768,
            "ci_low": lo, "ci_high": hi, "snr_db": snr, "fitted_at_k": 0.9 * value, "fitted_at_k_int16": None,
            "fitted_at_k_ci": {"low": 0.9 * lo, "high": 0.9 * hi, "reason": None},
            "fit_family": "power_floor", "fit_reason": None, "fit": {}, "series": []}


def _metric(value, lo, hi):
    return {"value": value, "ci_low": lo, "ci_high": hi}


def make_sheet() -> dict:
    """A small FactSheet with every section the gates read (numbers chosen for the tests)."""
    per_class = [
        {"label": "Speech", "index": 0, "category": "Human sounds", "support": 40, "evaluable": True,
         "ap": 0.70, "auc": 0.91, "d_prime": 1.9},
        {"label": "Dog", "index": 1, "category": "Animals", "support": 30, "evaluable": True,
         "ap": 0.90, "auc": 0.97, "d_prime": 2.7},
        {"label": "Rain", "index": 2, "category": "Natural sounds", "support": 5, "evaluable": True,
         "ap": 0.50, "auc": 0.80, "d_prime": 1.2},
        {"label": "Bell", "index": 3, "category": None, "support": 0, "evaluable": False,
         "ap": None, "auc": None, "d_prime": None},
    ]
    l2 = {"norm": "l2", "iterations": 10, "k": 11, "n_attacked": 40, "n_success": 40, "success_rate": 1.0,
          "success_rate_ci": {"low": 0.91, "high": 1.0}, "median_queries": 900.0,
          "percentiles": [_pct_row(25.0, 3.0, 2.0, 4.0, 19.0), _pct_row(50.0, 6.5, 4.0, 9.0, 11.3)],
          "clips": [],
          "by_group": [
              {"column": "voice_type", "group": "female", "n": 3, "n_success": 3, "median": 8.9,
               "median_snr_db": 8.9, "median_ci": {"low": 0.1, "high": 17.7},
               "median_snr_db_ci": {"low": 2.9, "high": 52.0}},
              {"column": "voice_type", "group": "none", "n": 30, "n_success": 30, "median": 6.5,
               "median_snr_db": 11.3, "median_ci": {"low": 4.2, "high": 9.4},
               "median_snr_db_ci": {"low": 9.3, "high": 12.7}},
          ]}
    groups = [
        {"columns": ["voice_type"], "group": "female", "n": 60, "insufficient_evidence": False,
         "metrics": {"mAP": _metric(0.62, 0.55, 0.70), "mean_auc": _metric(0.93, 0.90, 0.95)}},
        {"columns": ["voice_type"], "group": "male", "n": 80, "insufficient_evidence": False,
         "metrics": {"mAP": _metric(0.80, 0.74, 0.86), "mean_auc": _metric(0.96, 0.94, 0.98)}},
        {"columns": ["voice_type"], "group": "child", "n": 12, "insufficient_evidence": True,
         "metrics": {"mAP": _metric(0.50, 0.30, 0.70), "mean_auc": _metric(0.88, None, None)}},
        {"columns": ["voice_type", "snr_bucket"], "group": "female & 0-10 dB", "n": 25,
         "insufficient_evidence": False,
         "metrics": {"mAP": _metric(0.55, 0.45, 0.66), "mean_auc": _metric(0.91, 0.87, 0.94)}},
    ]

    def disp(columns, group, reference, diff, lo, hi, finding, insufficient=False, metric="mAP"):
        return {"metric": metric, "class": None, "columns": columns, "group": group, "reference": reference,
                "value": None, "reference_value": None, "difference": diff, "ratio": None, "ci_low": lo,
                "ci_high": hi, "p_value": 0.01, "p_adjusted": 0.02, "finding": finding,
                "insufficient_evidence": insufficient, "n": 60, "n_reference": 80}

    disparities = [
        disp(["voice_type"], "female", "male", -0.18, -0.25, -0.10, True),
        disp(["voice_type"], "child", "male", None, None, None, False, insufficient=True),
        disp(["snr_bucket"], "0-10 dB", "20-30 dB", -0.02, -0.06, 0.03, False),
    ]
    return {
        "schema_version": "1.2.0", "title": "FactSheet: test model",
        "model": {"name": "test model", "sha256": "a" * 64},
        "dataset": {"name": "synthetic-eval", "n_clips": 200, "sha256": "b" * 64},
        "performance": {"status": "evaluated", "n_clips": 200, "mAP": 0.70, "mean_auc": 0.89, "d_prime": 1.9,
                        "mean_class_d_prime": 1.93, "confidence": 0.95, "n_bootstrap": 200,
                        "ci": {"mAP": {"low": 0.65, "high": 0.75, "n_used": 200},
                               "mean_auc": {"low": 0.86, "high": 0.92, "n_used": 200},
                               "d_prime": {"low": 1.8, "high": 2.0, "n_used": 200},
                               "mean_class_d_prime": None},
                        "n_classes_evaluated": 3, "n_classes_excluded": 1, "excluded_classes": ["Bell"],
                        "per_class": per_class},
        "bias": {"status": "evaluated", "text": "", "findings": ["voice_type = female is disadvantaged"],
                 "per_class": [], "groups": groups, "disparities": disparities},
        "robustness": {"status": "evaluated", "definitions": {}, "settings": {}, "hopskipjump": {"l2": l2}},
        "domain_shift": {"status": "not_evaluated", "text": "", "reason": "Not evaluated in this run."},
        "provenance": {"finished_at": "2026-01-01T00:00:00+00:00"},
    }


def write(tmp_path: Path, name: str, obj) -> Path:
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj), encoding="utf-8")
    return path


def gate_toml(path: str, *, name: str = "g", **keys) -> str:
    """One [[gate]] table; values written as TOML literals via json (strings, numbers, booleans)."""
    lines = ["[[gate]]", f"name = {json.dumps(name)}", f"path = {json.dumps(path)}"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def sheet_file(tmp_path):
    return write(tmp_path, "factsheet.json", make_sheet())


def run_gate(tmp_path, sheet, policy_text, *extra):
    policy = write(tmp_path, "policy.toml", policy_text)
    return main(["gate", str(sheet), "--policy", str(policy), *extra])


def evaluate(policy_text: str, sheet: dict | None = None, baseline: dict | None = None):
    policy = parse_policy(__import__("tomllib").loads(policy_text), source="policy.toml")
    return evaluate_policy(policy=policy, doc=sheet or make_sheet(), source="factsheet.json", baseline=baseline,
                           baseline_source="old.json" if baseline is not None else None)


def only(report):
    (result,) = report.results
    return result


# --- pass / fail --------------------------------------------------------------------------

def test_pass_exit_0_and_table(tmp_path, sheet_file, capsys):
    rc = run_gate(tmp_path, sheet_file, gate_toml("performance.mAP", name="mAP floor", op=">=", threshold=0.30))
    out = capsys.readouterr().out
    assert rc == 0
    header = next(line for line in out.splitlines() if line.startswith("GATE"))
    assert header.split() == ["GATE", "PATH", "VALUE", "THRESHOLD", "OUTCOME"]
    row = next(line for line in out.splitlines() if line.startswith("mAP floor"))
    assert "performance.mAP" in row and "0.7" in row and ">= 0.3" in row and row.rstrip().endswith("pass")
    assert "1 gates: 1 passed, 0 failed" in out and "PASSED" in out


def test_fail_exit_1_with_numbers(tmp_path, sheet_file, capsys):
    rc = run_gate(tmp_path, sheet_file, gate_toml("performance.mAP", name="mAP floor", op=">=", threshold=0.75)
                  + gate_toml("performance.d_prime", name="d'", op=">", threshold=1.0))
    out = capsys.readouterr().out
    assert rc == 1
    assert "FAIL" in out and "performance.mAP = 0.7 (needs >= 0.75)" in out
    assert "2 gates: 1 passed, 1 failed" in out and "FAILED" in out


@pytest.mark.parametrize("op,threshold,passed", [(">=", 0.70, True), (">", 0.70, False), ("<=", 0.70, True),
                                                 ("<", 0.70, False), ("==", 0.70, True), ("!=", 0.70, False)])
def test_operators(op, threshold, passed):
    r = only(evaluate(gate_toml("performance.mAP", op=op, threshold=threshold)))
    assert r.outcome == ("pass" if passed else "fail")


def test_string_and_boolean_equality():
    assert only(evaluate(gate_toml("bias.status", op="==", threshold="evaluated"))).outcome == "pass"
    assert only(evaluate(gate_toml("performance.per_class[label=Bell].evaluable", op="==",
                                   threshold=False))).outcome == "pass"


# --- the path language --------------------------------------------------------------------

def test_every_is_the_default_and_any_needs_one():
    every = only(evaluate(gate_toml("performance.per_class[evaluable=true].auc", op=">=", threshold=0.85)))
    assert every.outcome == "fail" and "Rain" in every.message and "1 of 3 values fail" in every.message
    assert every.value_text == "0.8 (worst of 3)"
    anyq = only(evaluate(gate_toml("performance.per_class[evaluable=true].auc", op=">=", threshold=0.95,
                                   quantifier="any")))
    assert anyq.outcome == "pass" and anyq.value_text == "0.97 (best of 3)"
    none = only(evaluate(gate_toml("performance.per_class[evaluable=true].auc", op=">=", threshold=0.99,
                                   quantifier="any")))
    assert none.outcome == "fail"


def test_filters_on_numbers_lists_and_chains():
    r = only(evaluate(gate_toml("robustness.hopskipjump.l2.percentiles[percentile=50].snr_db", op="<=",
                                threshold=20)))
    assert r.outcome == "pass" and r.value_text == "11.3"
    # [columns=voice_type] is the single column, not the intersection voice_type & snr_bucket
    r = only(evaluate(gate_toml("bias.groups[columns=voice_type][*].metrics.mAP.value", op=">=", threshold=0.5,
                                on_insufficient="pass")))
    assert len(r.checks) == 3
    r = only(evaluate(gate_toml("bias.groups[columns=voice_type,snr_bucket].metrics.mAP.value", op="<",
                                threshold=0.6)))
    assert r.outcome == "pass" and len(r.checks) == 1
    r = only(evaluate(gate_toml("bias.groups[columns=voice_type][group=male].metrics.mean_auc.value", op=">=",
                                threshold=0.95)))
    assert r.outcome == "pass" and "group=male" in r.checks[0].where
    r = only(evaluate(gate_toml("performance.per_class[support>=30][ap<0.8]", op="==", threshold=1,
                                quantifier="count")))
    assert r.outcome == "pass"  # Speech only (Rain has support 5)
    r = only(evaluate(gate_toml("performance.per_class[label='Speech'].ap", op="==", threshold=0.7)))
    assert r.outcome == "pass"


@pytest.mark.parametrize("path,reason", [
    ("", "empty"), ("performance..mAP", "expected a key"), ("performance.", "ends with '.'"),
    ("[*].mAP", "expected a key"), ("performance.per_class[*", "never closed"),
    ("performance.per_class[label]", "use [*] or [key=value]"), ("a.b[x<abc]", "needs a number"),
    ("a[x=]", "no value"), ("a[*]b", "unexpected 'b'"),
])
def test_bad_paths(path, reason):
    with pytest.raises(InputError, match="bad path") as exc:
        parse_path(path, source="p.toml", field="gate #1 'g': path")
    assert reason in exc.value.line()


def test_parse_path_steps():
    steps = parse_path("bias.groups[columns=voice_type][*].metrics.mean_auc.value")
    assert [s.kind for s in steps] == ["key", "key", "filter", "star", "key", "key", "key"]
    assert steps[2].key == "columns" and steps[2].raw == "voice_type" and steps[2].op == "="
    (s,) = [s for s in parse_path('a[label="x]y"]') if s.kind == "filter"]
    assert s.raw == "x]y" and s.quoted


@pytest.mark.parametrize("path,needle", [
    ("performance.mAPP", "no key 'mAPP'"),
    ("performance.per_class.auc", "is a list; select elements with [*]"),
    ("performance.mAP[*]", "not a list"),
    ("performance.per_class[label=Cello].ap", "filter [label=Cello] matched nothing (values there: Speech"),
    ("performance.per_class[lable=Speech].ap", "no element has the key 'lable'"),
    ("domain_shift.value", "section not evaluated in this FactSheet (Not evaluated in this run.)"),
    ("performance.per_class", "is a list, not a number"),
])
def test_path_errors_exit_2_never_pass(tmp_path, sheet_file, capsys, path, needle):
    rc = run_gate(tmp_path, sheet_file, gate_toml(path, name="the gate", op=">=", threshold=0.1))
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith(f"error: {sheet_file}: gate #1 'the gate'")
    assert needle in err


def test_missing_path_error_names_file_gate_and_key_in_subprocess(tmp_path, sheet_file):
    policy = write(tmp_path, "p.toml", gate_toml("performance.mAPP", name="mAP", op=">=", threshold=0.3))
    proc = subprocess.run([sys.executable, "-m", "factsheet", "gate", str(sheet_file), "--policy", str(policy)],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(sheet_file) in lines[0] and "gate #1 'mAP'" in lines[0] and "'mAPP'" in lines[0]


# --- confidence bounds ---------------------------------------------------------------------

@pytest.mark.parametrize("path,use,expected", [
    ("performance.mAP", "lower", 0.65),                                                 # performance.ci.<name>
    ("performance.mean_auc", "upper", 0.92),
    ("robustness.hopskipjump.l2.percentiles[percentile=50].value", "lower", 4.0),       # sibling ci_low
    ("robustness.hopskipjump.l2.success_rate", "lower", 0.91),                          # <key>_ci
    ("robustness.hopskipjump.l2.percentiles[percentile=50].fitted_at_k", "lower", 3.6),  # fitted_at_k_ci
    ("robustness.hopskipjump.l2.by_group[group=none].median_snr_db", "upper", 12.7),    # median_snr_db_ci
    ("bias.groups[group=male].metrics.mAP.value", "lower", 0.74),                       # {value, ci_low, ci_high}
    ("bias.disparities[group=female].difference", "upper", -0.10),                      # difference + ci_low/high
])
def test_ci_bounds_by_convention(path, use, expected):
    r = only(evaluate(gate_toml(path, op=">=", threshold=-100, use=use)))
    assert r.outcome == "pass"
    assert r.checks[0].value == pytest.approx(expected)
    assert f"{use} CI bound" in r.value_text


def test_bound_changes_the_outcome():
    assert only(evaluate(gate_toml("performance.mAP", op=">=", threshold=0.68))).outcome == "pass"
    assert only(evaluate(gate_toml("performance.mAP", op=">=", threshold=0.68, use="lower"))).outcome == "fail"


def test_bound_on_a_number_without_one_is_an_input_error(tmp_path, sheet_file, capsys):
    rc = run_gate(tmp_path, sheet_file, gate_toml("robustness.hopskipjump.l2.percentiles[percentile=50].snr_db",
                                                  op="<=", threshold=30, use="upper"))
    assert rc == 2
    assert "has no confidence interval" in capsys.readouterr().err


def test_null_interval_is_insufficient():
    r = only(evaluate(gate_toml("performance.mean_class_d_prime", op=">=", threshold=1.0, use="lower")))
    assert r.outcome == "insufficient" and "lower bound is null" in r.message


# --- insufficient evidence ------------------------------------------------------------------

INSUFFICIENT_GATES = {
    "null value": gate_toml("performance.per_class[label=Bell].ap", op=">=", threshold=0.5),
    "flagged row": gate_toml("bias.groups[group=child].metrics.mAP.value", op=">=", threshold=0.1),
    "min_n": gate_toml("performance.per_class[label=Rain].auc", op=">=", threshold=0.5, min_n=20),
}


@pytest.mark.parametrize("why", sorted(INSUFFICIENT_GATES))
@pytest.mark.parametrize("setting,rc,effect", [("fail", 1, "fail"), ("warn", 0, "warn"), ("pass", 0, "pass")])
def test_insufficient_evidence_under_each_setting(tmp_path, sheet_file, capsys, why, setting, rc, effect):
    text = f'[settings]\non_insufficient = "{setting}"\n' + INSUFFICIENT_GATES[why]
    assert run_gate(tmp_path, sheet_file, text) == rc
    out = capsys.readouterr().out
    assert f"insufficient ({effect})" in out
    assert "1 insufficient evidence" in out


def test_insufficient_default_is_fail_and_gate_can_override():
    r = only(evaluate(INSUFFICIENT_GATES["min_n"]))
    assert (r.outcome, r.effect) == ("insufficient", "fail") and "n = 5 < min_n = 20" in r.message
    r = only(evaluate(INSUFFICIENT_GATES["min_n"].replace("min_n = 20", 'min_n = 20\non_insufficient = "warn"')))
    assert r.effect == "warn"


def test_a_failing_value_outweighs_thin_ones_for_every():
    # child is flagged insufficient, female (0.62) fails 0.7: a fail, not insufficient
    r = only(evaluate(gate_toml("bias.groups[columns=voice_type][*].metrics.mAP.value", op=">=", threshold=0.7)))
    assert r.outcome == "fail"
    r = only(evaluate(gate_toml("bias.groups[columns=voice_type][*].metrics.mAP.value", op=">=", threshold=0.6)))
    assert r.outcome == "insufficient"


def test_min_n_without_any_sample_size_is_an_input_error():
    sheet = make_sheet()
    sheet["extra"] = {"score": 1.0}
    with pytest.raises(InputError, match="min_n is set but no n"):
        evaluate(gate_toml("extra.score", op=">=", threshold=0.5, min_n=3), sheet=sheet)


# --- count --------------------------------------------------------------------------------

def test_count_of_findings():
    r = only(evaluate(gate_toml("bias.disparities[columns=snr_bucket][finding=true]", op="==", threshold=0,
                                quantifier="count")))
    assert r.outcome == "pass" and r.value_text == "0"  # the last filter may match nothing in a count gate
    r = only(evaluate(gate_toml("bias.disparities[finding=true]", op="==", threshold=0, quantifier="count")))
    assert r.outcome == "fail" and r.value_text.startswith("1") and "group=female" in r.message


def test_count_with_unclear_rows_is_insufficient_unless_decided():
    # voice_type: female is a finding, child is flagged insufficient: between 1 and 2 findings
    path = "bias.disparities[columns=voice_type][finding=true]"
    r = only(evaluate(gate_toml(path, op="<=", threshold=1, quantifier="count")))
    assert r.outcome == "insufficient" and r.value_text == "1 (+1 unclear)"
    assert only(evaluate(gate_toml(path, op="<=", threshold=2, quantifier="count"))).outcome == "pass"
    assert only(evaluate(gate_toml(path, op="==", threshold=0, quantifier="count"))).outcome == "fail"
    # the policy can say thin rows do not count
    r = only(evaluate(gate_toml("bias.disparities[columns=voice_type][insufficient_evidence=false][finding=true]",
                                op="==", threshold=1, quantifier="count")))
    assert r.outcome == "pass"


def test_count_earlier_filter_matching_nothing_is_an_error():
    with pytest.raises(InputError, match=r"filter \[columns=voice_typo\] matched nothing"):
        evaluate(gate_toml("bias.disparities[columns=voice_typo][finding=true]", op="==", threshold=0,
                           quantifier="count"))


# --- malformed policies ---------------------------------------------------------------------

GOOD = {"op": ">=", "threshold": 0.3}


@pytest.mark.parametrize("text,field,needle", [
    (gate_toml("performance.mAP", op="=>", threshold=0.3), "gate #1 'g': op", "unknown operator"),
    (gate_toml("performance.mAP", op=">="), "gate #1 'g': threshold", "required"),
    ('[[gate]]\nname = "g"\nop = ">="\nthreshold = 1\n', "gate #1 'g': path", "required"),
    ('[[gate]]\npath = "performance.mAP"\nop = ">="\nthreshold = 1\n', "gate #1: name", "required"),
    (gate_toml("performance.mAP", threshold_=0.3, **GOOD), "gate #1 'g': threshold_", "unknown key"),
    (gate_toml("performance.mAP", op=">=", threshold="high"), "gate #1 'g': threshold", "finite number"),
    (gate_toml("performance.mAP", use="middle", **GOOD), "gate #1 'g': use", "must be one of"),
    (gate_toml("performance.mAP", quantifier="most", **GOOD), "gate #1 'g': quantifier", "must be one of"),
    (gate_toml("performance.mAP", min_n=0, **GOOD), "gate #1 'g': min_n", "integer >= 1"),
    (gate_toml("performance..mAP", **GOOD), "gate #1 'g': path", "bad path"),
    (gate_toml("performance.per_class[*].ap", op="==", threshold=0, quantifier="count"), "gate #1 'g': path",
     "end the path with [*]"),
    (gate_toml("performance.per_class[*]", op="==", threshold=0.5, quantifier="count"), "gate #1 'g': threshold",
     "integer threshold"),
    (gate_toml("performance.mAP", baseline="max_drop", max_drop=0.01, **GOOD), "gate #1 'g': op", "not allowed"),
    (gate_toml("performance.mAP", baseline="max_drop"), "gate #1 'g': max_drop", "required"),
    (gate_toml("performance.mAP", baseline="max_drop", max_drop=-1), "gate #1 'g': max_drop", ">= 0"),
    (gate_toml("performance.mAP", baseline="min_gain", max_drop=0.1), "gate #1 'g': baseline", "must be one of"),
    (gate_toml("performance.mAP", max_drop=0.01, **GOOD), "gate #1 'g': max_drop", "needs baseline"),
    (gate_toml("performance.mAP", **GOOD) + gate_toml("performance.mean_auc", **GOOD), "gate #2 'g': name",
     "duplicate"),
    ('[settings]\non_insufficient = "maybe"\n' + gate_toml("performance.mAP", **GOOD), "settings.on_insufficient",
     "must be one of"),
    ('[settings]\nstrict = true\n' + gate_toml("performance.mAP", **GOOD), "settings.strict", "unknown key"),
    ('gates = 1\n', "gates", "unknown key"),
    ('description = "no gates"\n', "gate", "no gates"),
    ('[[gate]\nname = "x"\n', "", "not valid TOML"),
])
def test_malformed_policy_exit_2(tmp_path, sheet_file, capsys, text, field, needle):
    rc = run_gate(tmp_path, sheet_file, text)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.count("\n") == 1
    policy = str(tmp_path / "policy.toml")
    assert err.startswith(f"error: {policy}: {field}" if field else f"error: {policy}: ")
    assert needle in err


def test_not_a_factsheet_exit_2(tmp_path, capsys):
    policy = gate_toml("performance.mAP", **GOOD)
    for name, content, needle in [("a.json", {"x": 1}, "schema_version: missing"),
                                  ("b.json", {"schema_version": "9.0.0"}, "unsupported FactSheet schema"),
                                  ("c.json", "{not json", "not valid JSON")]:
        assert run_gate(tmp_path, write(tmp_path, name, content), policy) == 2
        assert needle in capsys.readouterr().err
    assert main(["gate", str(tmp_path / "missing.json"), "--policy", str(tmp_path / "policy.toml")]) == 2
    assert "file not found" in capsys.readouterr().err


# --- baseline -------------------------------------------------------------------------------

def worse_sheet() -> dict:
    s = make_sheet()
    s["performance"]["mAP"] = 0.685                       # -0.015
    s["performance"]["per_class"][0]["ap"] = 0.60          # Speech -0.10
    s["robustness"]["hopskipjump"]["l2"]["success_rate"] = 0.5
    return s


def test_baseline_max_drop_pass_and_fail(tmp_path, capsys):
    old = write(tmp_path, "old.json", make_sheet())
    new = write(tmp_path, "new.json", worse_sheet())
    text = gate_toml("performance.mAP", name="mAP regression", baseline="max_drop", max_drop=0.02)
    assert run_gate(tmp_path, new, text, "--baseline", str(old)) == 0
    out = capsys.readouterr().out
    assert ">= 0.68 (baseline 0.7 - 0.02)" in out
    text = gate_toml("performance.mAP", name="mAP regression", baseline="max_drop", max_drop=0.01)
    assert run_gate(tmp_path, new, text, "--baseline", str(old)) == 1
    assert "performance.mAP = 0.685 (needs >= 0.69, baseline 0.7 - 0.01)" in capsys.readouterr().out


def test_baseline_relative_rise_and_per_class_pairing():
    old, new = make_sheet(), worse_sheet()
    r = only(evaluate(gate_toml("performance.mAP", baseline="max_relative_drop", max_relative_drop=0.03),
                      sheet=new, baseline=old))
    assert r.outcome == "pass"  # 0.685 >= 0.7 * 0.97 = 0.679
    r = only(evaluate(gate_toml("robustness.hopskipjump.l2.success_rate", baseline="max_rise", max_rise=0.0),
                      sheet=new, baseline=old))
    assert r.outcome == "pass"  # the attack succeeds less often
    r = only(evaluate(gate_toml("performance.per_class[evaluable=true].ap", baseline="max_drop", max_drop=0.05),
                      sheet=new, baseline=old))
    assert r.outcome == "fail" and "label=Speech" in r.message and "needs >= 0.65" in r.message
    # a class missing from the baseline cannot be judged
    old2 = copy.deepcopy(old)
    old2["performance"]["per_class"][1]["label"] = "Cat"
    r = only(evaluate(gate_toml("performance.per_class[evaluable=true].ap", baseline="max_drop", max_drop=0.2),
                      sheet=new, baseline=old2))
    assert r.outcome == "insufficient" and "label=Dog" in r.message and "not in the baseline" in r.message


def test_missing_baseline_exit_2(tmp_path, sheet_file, capsys):
    text = gate_toml("performance.mAP", **GOOD) + gate_toml("performance.mAP", name="drop", baseline="max_drop",
                                                            max_drop=0.01)
    assert run_gate(tmp_path, sheet_file, text) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --baseline: ") and "gate #2 'drop'" in err and err.count("\n") == 1


def test_baseline_path_missing_in_baseline_exit_2(tmp_path, sheet_file, capsys):
    old = make_sheet()
    del old["performance"]["mAP"]
    old_file = write(tmp_path, "old.json", old)
    text = gate_toml("performance.mAP", baseline="max_drop", max_drop=0.01)
    assert run_gate(tmp_path, sheet_file, text, "--baseline", str(old_file)) == 2
    assert f"error: {old_file}: " in capsys.readouterr().err


# --- JUnit XML and Markdown summary ----------------------------------------------------------

MIXED = ('[settings]\non_insufficient = "warn"\n'
         + gate_toml("performance.mAP", name="mAP ok", op=">=", threshold=0.3)
         + gate_toml("performance.mean_auc", name="AUC <high> & \"quoted\"", op=">=", threshold=0.95)
         + gate_toml("performance.per_class[label=Rain].auc", name="thin warn", op=">=", threshold=0.5, min_n=20)
         + gate_toml("performance.per_class[label=Rain].ap", name="thin fail", op=">=", threshold=0.1, min_n=20,
                     on_insufficient="fail"))


def test_junit_xml_is_well_formed_with_right_counts(tmp_path, sheet_file, capsys):
    junit = tmp_path / "out" / "gate.xml"
    assert run_gate(tmp_path, sheet_file, MIXED, "--junit", str(junit)) == 1
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    counts = tuple(suite.get(k) for k in ("tests", "failures", "skipped", "errors"))
    assert counts == ("4", "2", "1", "0")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert list(cases) == ["mAP ok", 'AUC <high> & "quoted"', "thin warn", "thin fail"]
    assert cases["mAP ok"].find("failure") is None and cases["mAP ok"].find("skipped") is None
    failure = cases['AUC <high> & "quoted"'].find("failure")
    assert failure.get("type") == "threshold"
    assert "0.89" in failure.get("message") and ">= 0.95" in failure.get("message")
    assert cases["thin warn"].find("skipped") is not None
    assert cases["thin fail"].find("failure").get("type") == "insufficient_evidence"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["factsheet"] == str(sheet_file)


def test_markdown_summary(tmp_path, sheet_file, capsys):
    summary = tmp_path / "gate.md"
    assert run_gate(tmp_path, sheet_file, MIXED, "--summary", str(summary)) == 1
    md = summary.read_text()
    assert md.startswith("### FactSheet gate: FAILED")
    assert "4 gates: 1 passed, 1 failed, 2 insufficient evidence (fail, warn)" in md
    assert "| Gate | Path | Value | Threshold | Outcome |" in md
    rows = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 5  # header + one per gate
    assert "| mAP ok | performance.mAP | 0.7 | &gt;= 0.3 | pass |" in md
    assert "AUC &lt;high&gt; &amp; &#34;quoted&#34;" in md and "<high>" not in md
    assert "**FAIL**" in md and "**insufficient (warn)**" in md and "**insufficient (fail)**" in md
    assert all(ord(ch) < 0x2000 for ch in md)  # no emoji


def test_outputs_written_on_pass_too_and_not_on_input_error(tmp_path, sheet_file, capsys):
    junit, summary = tmp_path / "j.xml", tmp_path / "s.md"
    assert run_gate(tmp_path, sheet_file, gate_toml("performance.mAP", **GOOD), "--junit", str(junit),
                    "--summary", str(summary)) == 0
    assert "PASSED" in summary.read_text() and ET.parse(junit).getroot().find("testsuite").get("failures") == "0"
    junit.unlink()
    assert run_gate(tmp_path, sheet_file, gate_toml("performance.nope", **GOOD), "--junit", str(junit)) == 2
    assert not junit.exists()


# --- the shipped policies ---------------------------------------------------------------------

def test_shipped_policies_are_valid():
    for name in ("example", "strict"):
        policy = load_policy(REPO / "policies" / f"{name}.toml")
        assert policy.gates and not policy.needs_baseline


def demo_factsheet() -> Path:
    """The demo FactSheet (`make factsheet`), or the one named by $FACTSHEET_DEMO_JSON."""
    path = Path(os.environ.get("FACTSHEET_DEMO_JSON", REPO / "reports" / "out" / "demo" / "factsheet.json"))
    if not path.is_file():
        pytest.skip(f"no demo FactSheet at {path}: run `make factsheet` first")
    doc = load_factsheet(path)
    if doc["bias"].get("status") != "evaluated" or doc["robustness"].get("status") != "evaluated":
        pytest.skip(f"{path} predates the bias section or has no robustness run: run `make factsheet` again")
    return path


def test_example_policy_passes_the_demo_and_strict_fails_it(capsys):
    demo = demo_factsheet()
    assert main(["gate", str(demo), "--policy", str(REPO / "policies" / "example.toml")]) == 0
    assert main(["gate", str(demo), "--policy", str(REPO / "policies" / "strict.toml")]) == 1
    out = capsys.readouterr().out
    assert "-> PASSED" in out and "-> FAILED" in out


def test_output_path_that_is_a_folder_exit_2(tmp_path, sheet_file, capsys):
    assert run_gate(tmp_path, sheet_file, gate_toml("performance.mAP", **GOOD), "--junit", str(tmp_path)) == 2
    assert capsys.readouterr().err.startswith("error: --junit = ")


def test_unneeded_baseline_is_read_but_harmless(tmp_path, sheet_file, capsys):
    assert run_gate(tmp_path, sheet_file, gate_toml("performance.mAP", **GOOD), "--baseline", str(sheet_file)) == 0
    assert "(baseline " in capsys.readouterr().out
