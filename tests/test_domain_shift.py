"""The Domain Shift section: planted effects are found and null effects are not, the paired intervals
equal a direct resampling with scikit-learn, the section is deterministic, and the pipeline, report,
Poor Conditions and compare's corruption errors carry it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import average_precision_score

from factsheet.config import DomainShiftConfig, MetricsConfig
from factsheet.datasets.base import ClassLabel
from factsheet.domain_shift import evaluate_domain_shift
from factsheet.domain_shift.stats import select_clips
from factsheet.sections.domain_shift import corruption_errors

ROOT = Path(__file__).resolve().parent.parent
RATE = 16000
TONES = (4500.0, 6000.0)  # class A, class B: both high frequencies
CLASSES = [ClassLabel(0, "", "A"), ClassLabel(1, "", "B")]


@pytest.fixture(scope="module")
def tones():
    """160 half-second clips: a 300 Hz bed in every clip, tone A and / or B present per the labels."""
    rng = np.random.default_rng(0)
    n, t = 160, np.arange(8000) / RATE
    y = (rng.random((n, 2)) < 0.5).astype(np.uint8)
    x = 0.25 * np.sin(2 * np.pi * 300 * t)[None, :] + 0.001 * rng.normal(size=(n, t.size))
    for j, f in enumerate(TONES):
        x += y[:, j:j + 1] * 0.2 * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi, (n, 1)))
    return np.round(x * 32768).clip(-32768, 32767).astype(np.float32) / 32768, y


def band_model(x: np.ndarray) -> np.ndarray:
    """Uses only high frequencies: each class's score is the share of the clip's energy in its tone's band."""
    spec = np.abs(np.fft.rfft(x, axis=1)) ** 2
    freqs = np.fft.rfftfreq(x.shape[1], 1 / RATE)
    total = spec.sum(axis=1) + 1e-20
    return np.stack([spec[:, np.abs(freqs - f) < 250].sum(axis=1) / total for f in TONES], axis=1)


def run(x, y, predict, **settings):
    st = DomainShiftConfig(enabled=True, n_clips=len(x), **settings)
    return evaluate_domain_shift(waveforms=x, labels=y, clean_scores=predict(x), class_labels=CLASSES,
                                 predict=predict, sample_rate=RATE, settings=st,
                                 bootstrap=MetricsConfig(bootstrap_resamples=200, seed=3))


def block(section, name):
    return next(b for b in section["corruptions"] if b["name"] == name)


def test_high_frequency_model_breaks_under_low_pass_not_pink_noise(tones):
    x, y = tones
    sec = run(x, y, band_model, corruptions=("lowpass", "pink_noise"))
    low, pink = block(sec, "lowpass"), block(sec, "pink_noise")
    assert sec["clean"]["mAP"] > 0.99
    assert low["breaking_point"] is not None and low["breaking_point"]["level"] <= 4000
    assert low["cells"][-1]["mAP"]["drop"] > 0.3  # 1000 Hz: the tones are gone, AP falls to chance
    assert pink["breaking_point"] is None and max(abs(c["mAP"]["drop"]) for c in pink["cells"]) < 0.02
    assert any("Low-pass filter at" in s for s in sec["poor_conditions"])
    assert not any("Pink noise" in s for s in sec["poor_conditions"])


def test_level_indifferent_model_is_flat_under_level_drop(tones):
    x, y = tones
    sec = run(x, y, band_model, corruptions=("level_drop",))
    b = block(sec, "level_drop")
    assert b["breaking_point"] is None and sec["poor_conditions"] == []
    assert max(abs(c["mAP"]["drop"]) for c in b["cells"]) < 0.01
    measured = [c["measured"]["median"] for c in b["cells"]]  # what the corruption achieved: -10 ... -50 dB
    np.testing.assert_allclose(measured, [-10, -20, -30, -40, -50], atol=0.2)


def test_null_model_has_no_finding(tones):
    x, y = tones
    fixed = np.random.default_rng(1).random(y.shape)
    sec = run(x, y, lambda w: fixed[: len(w)], corruptions=("white_noise", "lowpass", "reverb"))
    assert sec["poor_conditions"] == [] and all(b["breaking_point"] is None for b in sec["corruptions"])
    assert all(c["mAP"]["drop"] == 0 for b in sec["corruptions"] for c in b["cells"])
    assert sec["mean_relative_drop"] == 0


def test_paired_interval_equals_direct_resampling_with_sklearn(tones):
    x, y = tones
    sec = run(x, y, band_model, corruptions=("white_noise",), severities=(5,))
    cell = block(sec, "white_noise")["cells"][0]
    from factsheet.corruptions import corrupt

    clean, noisy = band_model(x), band_model(corrupt(x, corruption="white_noise", severity=5, sample_rate=RATE,
                                                     seed=0, clip_ids=np.arange(len(x)))[0])
    rng = np.random.default_rng(3)  # the bootstrap seed: replicate i is the i-th draw, for both score sets
    diffs = []
    for _ in range(200):
        i = rng.integers(0, len(x), size=len(x))
        ok = [j for j in range(2) if 0 < y[i, j].sum() < len(i)]
        diffs.append(np.mean([average_precision_score(y[i, j], clean[i, j]) for j in ok])
                     - np.mean([average_precision_score(y[i, j], noisy[i, j]) for j in ok]))
    point = np.mean([average_precision_score(y[:, j], clean[:, j]) - average_precision_score(y[:, j], noisy[:, j])
                     for j in range(2)])
    assert cell["mAP"]["drop"] == pytest.approx(point, abs=1e-12)
    # BCa by hand (Efron & Tibshirani 14.3) on those replicates, the acceleration from sklearn with each clip left out
    jack = []
    for k in range(len(x)):
        keep = np.arange(len(x)) != k
        jack.append(np.mean([average_precision_score(y[keep, j], clean[keep, j])
                             - average_precision_score(y[keep, j], noisy[keep, j]) for j in range(2)]))
    d = np.asarray(diffs)
    z0 = norm.ppf((np.sum(d < point) + np.sum(d <= point)) / (2 * d.size))
    u = np.mean(jack) - np.asarray(jack)
    a = np.sum(u ** 3) / (6 * np.sum(u ** 2) ** 1.5)
    zs = norm.ppf([0.025, 0.975])
    low, high = np.percentile(d, 100 * norm.cdf(z0 + (z0 + zs) / (1 - a * (z0 + zs))))
    assert cell["mAP"]["drop_ci"]["low"] == pytest.approx(low, abs=1e-9)
    assert cell["mAP"]["drop_ci"]["high"] == pytest.approx(high, abs=1e-9)
    # the percentile interval (before issue 17's coverage study) on the same replicates
    from factsheet.domain_shift import stats as shift_stats

    ref = shift_stats.clean_reference(y, clean, n_resamples=200, seed=3)
    pct = shift_stats.cell_drops(y, noisy, clean=ref, n_resamples=200, seed=3, confidence=0.95, method="percentile")
    assert [pct["mAP"]["drop_ci"]["low"], pct["mAP"]["drop_ci"]["high"]] == \
        pytest.approx(list(np.percentile(diffs, [2.5, 97.5])), abs=1e-9)


def test_drops_get_no_interval_below_the_minimum_support(tones):
    x, y = tones
    few = np.flatnonzero(y[:, 0] == 0)[:60].tolist() + np.flatnonzero(y[:, 0] == 1)[:6].tolist()  # 6 positives of A
    sec = run(x[few], y[few], band_model, corruptions=("white_noise",), severities=(5,))
    cell = block(sec, "white_noise")["cells"][0]
    assert cell["mAP"]["drop"] is not None and cell["mAP"]["drop_ci"] == {"low": None, "high": None}
    assert block(sec, "white_noise")["breaking_point"] is None


def test_section_is_deterministic_and_json_able(tones):
    x, y = tones
    a = run(x, y, band_model, corruptions=("pink_noise", "reverb", "speed"), severities=(2, 4))
    b = run(x, y, band_model, corruptions=("pink_noise", "reverb", "speed"), severities=(2, 4))
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_stratified_choice_covers_rare_classes_first():
    y = np.zeros((1000, 3), np.uint8)
    y[:5, 2] = 1  # a rare class
    y[5:, 0] = 1
    y[::2, 1] = 1
    idx = select_clips(y, n_clips=30, seed=0)
    assert len(idx) == 30 and np.all(np.diff(idx) > 0) and y[idx, 2].sum() == 5
    np.testing.assert_array_equal(idx, select_clips(y, n_clips=30, seed=0))
    assert len(select_clips(y, n_clips=5000, seed=0)) == 1000


def test_corruption_errors_follow_imagenet_c_and_refuse_other_suites():
    def sheet(clean, maps):
        return {"clean": {"mAP": clean},
                "corruptions": [{"name": n, "title": n, "cells": [{"severity": s + 1, "level": float(s),
                                                                 "mAP": {"value": v}} for s, v in enumerate(vals)]}
                                for n, vals in maps.items()]}

    old = sheet(0.8, {"noise": [0.7, 0.5], "lowpass": [0.6, 0.4]})
    new = sheet(0.9, {"noise": [0.8, 0.7], "lowpass": [0.6, 0.4]})
    out = corruption_errors(old=old, new=new)
    noise = out["rows"][0]
    assert noise["ce"] == pytest.approx((0.2 + 0.3) / (0.3 + 0.5))
    assert noise["relative_ce"] == pytest.approx(((0.2 - 0.1) + (0.3 - 0.1)) / ((0.3 - 0.2) + (0.5 - 0.2)))
    assert out["mce"] == pytest.approx(np.mean([noise["ce"], 1.0]))
    other = sheet(0.8, {"noise": [0.7, 0.5]})
    assert "different corruption suites" in corruption_errors(old=old, new=other)["refused"]


@pytest.fixture(scope="module")
def ds_report(tmp_path_factory):
    from factsheet.config import load_config
    from factsheet.pipeline import run as run_pipeline
    from factsheet.render import write_report

    cfg = load_config(ROOT / "configs" / "ci_quick.toml")
    # 200 clips: every class has the 10 positives a drop interval needs (BCa's minimum support)
    cfg = replace(cfg, dataset=replace(cfg.dataset, n_clips=200), metrics=replace(cfg.metrics, bootstrap_resamples=50),
                  robustness=replace(cfg.robustness, enabled=False),
                  domain_shift=DomainShiftConfig(enabled=True, corruptions=("lowpass", "level_drop"),
                                                 severities=(1, 3, 5), n_clips=200))
    out = tmp_path_factory.mktemp("ds")
    sheet, artefacts = run_pipeline(cfg, out_dir=out)
    write_report(out, sheet, artefacts)  # validates the JSON against the schema
    return out, json.loads((out / "factsheet.json").read_text()), cfg


def test_pipeline_fills_the_section_report_and_poor_conditions(ds_report):
    out, doc, _ = ds_report
    ds = doc["domain_shift"]
    assert ds["status"] == "evaluated" and [b["name"] for b in ds["corruptions"]] == ["lowpass", "level_drop"]
    assert [c["severity"] for c in ds["corruptions"][0]["cells"]] == [1, 3, 5] and ds["settings"]["n_clips"] == 200
    assert all(c["mAP"]["drop_ci"]["low"] is not None for b in ds["corruptions"] for c in b["cells"])
    assert set(ds["poor_conditions"]) <= set(doc["poor_conditions"]["statements"])
    md, html = (out / "factsheet.md").read_text(), (out / "factsheet.html").read_text()
    for text in (md, html):
        assert "Mean relative mAP drop over the suite" in text and "Low-pass filter" in text
    assert (out / "plots" / "domain_shift_curves.svg").is_file() and (out / "plots" / "domain_shift_heatmap.svg").is_file()
    assert "domain_shift" in doc["provenance"]["timings_s"]


def test_group_tests_are_one_family_with_the_bias_section(ds_report):
    _, doc, _ = ds_report
    g, bias = doc["domain_shift"]["groups"], doc["bias"]
    assert g["severity"] == 3 and g["family"]["with_bias"]
    assert g["family"]["n_tests"] == bias["settings"]["n_tests"]
    assert g["family"]["n_domain_shift_tests"] == bias["settings"]["n_domain_shift_tests"]
    assert [(d["p_adjusted"], d["finding"]) for d in g["comparisons"]] == \
        [(d["p_adjusted"], d["finding"]) for d in bias["domain_shift_disparities"]]
    assert {d["corruption"] for d in g["by_group"]} == {"lowpass", "level_drop"}


def test_same_config_same_section(ds_report):
    from factsheet.pipeline import run as run_pipeline

    _, doc, cfg = ds_report
    sheet, _ = run_pipeline(cfg)
    again = sheet.to_dict()["domain_shift"]
    assert json.dumps(again, sort_keys=True) == json.dumps(doc["domain_shift"], sort_keys=True)


def test_bad_corruption_name_is_one_line(tmp_path):
    import subprocess
    import sys

    text = (ROOT / "configs" / "ci_quick.toml").read_text() + '\n[domain_shift]\nenabled = true\ncorruptions = ["hiss"]\n'
    (tmp_path / "c.toml").write_text(text)
    res = subprocess.run([sys.executable, "-m", "factsheet", "run", "--config", str(tmp_path / "c.toml"), "--out",
                          str(tmp_path / "out"), "--quiet"], capture_output=True, text=True)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "domain_shift.corruptions" in res.stderr and "hiss" in res.stderr


def test_compare_reports_corruption_errors_and_refuses_other_suites(ds_report):
    import copy

    from factsheet.compare import compare_sheets, render_html, render_markdown, view_model

    out, doc, _ = ds_report
    same = compare_sheets(old=doc, new=doc)
    assert same["domain_shift_reason"] is None and same["domain_shift"]["mce"] == pytest.approx(1.0)
    view = view_model(comparison=same, old_source="a.json", new_source="b.json", old=doc, new=doc)
    assert "mCE 1.000" in render_markdown(view) and "Relative CE" in render_html(view)
    other = copy.deepcopy(doc)
    other["domain_shift"]["corruptions"][0]["cells"][0]["level"] = 123.0
    refused = compare_sheets(old=doc, new=other)["domain_shift"]
    assert "different corruption suites" in refused["refused"]
    off = copy.deepcopy(doc)
    off["domain_shift"] = {"status": "not_evaluated", "text": "", "reason": "Not evaluated in this run."}
    assert "Domain Shift not evaluated in NEW" in compare_sheets(old=doc, new=off)["domain_shift_reason"]


def test_documented_gate_paths_read_the_section(ds_report):
    import tomllib

    from factsheet.gate import evaluate_policy, parse_policy

    _, doc, _ = ds_report
    worst = max(c["mAP"]["drop_ci"]["high"] for b in doc["domain_shift"]["corruptions"] for c in b["cells"]
                if c["severity"] == 3)
    text = f"""
[[gate]]
name = "suite"
path = "domain_shift.mean_relative_drop"
op = "<="
threshold = 1.0

[[gate]]
name = "severity 3"
path = "domain_shift.corruptions[*].cells[severity=3].mAP.drop"
use = "upper"
op = "<="
threshold = {worst - 1e-9}
"""
    report = evaluate_policy(policy=parse_policy(tomllib.loads(text), source="p.toml"), doc=doc, source="f.json")
    outcomes = {r.gate.name: r.outcome for r in report.results}
    assert outcomes == {"suite": "pass", "severity 3": "fail"}  # the worst upper bound is just above


def test_custom_levels_from_the_config_are_run_and_recorded(tmp_path):
    import subprocess
    import sys

    from factsheet.config import load_config
    from factsheet.pipeline import run as run_pipeline

    base = (ROOT / "configs" / "ci_quick.toml").read_text().replace("n_clips = 600", "n_clips = 48")
    head, tail = base.split("[robustness]", 1)
    base = head + "[robustness]" + tail.replace("\nenabled = true\n", "\nenabled = false\n", 1)
    suite = ('\n[domain_shift]\nenabled = true\ncorruptions = ["lowpass", "level_drop"]\nseverities = [1, 5]\n'
             'n_clips = 40\n\n[[domain_shift.levels]]\nname = "lowpass"\nlevels = [7000, 5000, 3000, 1500, 500]\n')
    (tmp_path / "c.toml").write_text(base + suite)
    cfg = load_config(tmp_path / "c.toml")
    sheet, _ = run_pipeline(cfg)
    blocks = {b["name"]: b for b in sheet.to_dict()["domain_shift"]["corruptions"]}
    assert blocks["lowpass"]["levels"] == [7000, 5000, 3000, 1500, 500]
    assert [c["level"] for c in blocks["lowpass"]["cells"]] == [7000, 500]
    assert blocks["level_drop"]["levels"] == [10, 20, 30, 40, 50]  # the default levels where none are given
    assert sheet.to_dict()["provenance"]["config"]["domain_shift"]["levels"] == [
        {"name": "lowpass", "levels": [7000, 5000, 3000, 1500, 500]}]
    (tmp_path / "bad.toml").write_text(base + suite.replace("7000, 5000", "9000, 5000"))
    res = subprocess.run([sys.executable, "-m", "factsheet", "run", "--config", str(tmp_path / "bad.toml"), "--out",
                          str(tmp_path / "out")], capture_output=True, text=True)
    # refused once the model is loaded, before any prediction: no progress bar, one line
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and "9000" in res.stderr
    assert "Nyquist" in res.stderr
    (tmp_path / "four.toml").write_text(base + suite.replace("7000, 5000, 3000, 1500, 500", "7000, 5000, 3000, 1500"))
    res = subprocess.run([sys.executable, "-m", "factsheet", "run", "--config", str(tmp_path / "four.toml"), "--out",
                          str(tmp_path / "out"), "--quiet"], capture_output=True, text=True)
    assert res.returncode == 2 and "domain_shift.levels[0].levels" in res.stderr


def test_compare_reports_natural_shift_gaps_of_targets_named_in_both(demo_report):
    import copy

    from factsheet.compare import compare_sheets, render_markdown, view_model

    _, doc = demo_report
    (target,) = doc["domain_shift"]["natural_shift"]
    new = copy.deepcopy(doc)
    new["domain_shift"]["natural_shift"][0]["metrics"]["mAP_matched"]["gap"]["value"] -= 0.05
    out = compare_sheets(old=doc, new=new)["domain_shift"]
    (row,) = out["natural"]
    assert row["name"] == target["name"] and row["same_data"] is True
    assert row["matched"].delta == pytest.approx(-0.05) and row["raw"].delta == 0
    view = view_model(comparison=compare_sheets(old=doc, new=new), old_source="a", new_source="b", old=doc, new=new)
    md = render_markdown(view)
    assert "Natural shift, targets named in both" in md and "-0.050" in md
    renamed = copy.deepcopy(doc)
    renamed["domain_shift"]["natural_shift"][0]["name"] = "another"
    assert compare_sheets(old=doc, new=renamed)["domain_shift"]["natural"] == []
