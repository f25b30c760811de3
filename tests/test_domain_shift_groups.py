"""Does a corruption hurt one group more than another? Planted effects, the Bias section's own group
metric as the reference for the drops, and one multiple-testing family with the Bias section."""

import numpy as np
import pandas as pd
import pytest

from factsheet.bias import evaluate_bias
from factsheet.config import BiasConfig, DomainShiftConfig, MetricsConfig
from factsheet.datasets.base import ClassLabel
from factsheet.domain_shift.groups import CorruptedScores, adjust_alone, family_p_values, group_drops
from factsheet.significance import holm

N_CLASSES = 3
BIAS = BiasConfig(columns=("voice",), condition_columns=(), min_group_size=20, min_positives=10, tolerance=0.0)
BOOT = MetricsConfig(bootstrap_resamples=300, seed=0)


def scenario(seed: int, *, hurt: float, n: int = 600):
    """Labels, metadata and clean scores of ``n`` single-label clips in three voices; a corruption that
    leaves voice ``a`` with ``hurt`` of its signal and the other voices with 0.7 of theirs."""
    rng = np.random.default_rng(seed)
    y = np.eye(N_CLASSES, dtype=np.uint8)[rng.integers(0, N_CLASSES, n)]
    voice = np.array(["a", "b", "c"])[rng.integers(0, 3, n)]
    clean = y * 1.5 + rng.normal(size=y.shape)
    keep = np.where(voice == "a", hurt, 0.7)[:, None]
    corrupted = y * 1.5 * keep + rng.normal(size=y.shape)
    return y, pd.DataFrame({"voice": voice}), clean, corrupted


def run(y, meta, clean, corrupted, **kw):
    c = CorruptedScores(name="white_noise", title="White noise", level=10.0, unit="dB SNR", scores=corrupted)
    block = group_drops(y=y, clean_scores=clean, corrupted=[c], metadata=meta, bias=kw.get("bias", BIAS),
                        bootstrap=BOOT, severity=3)
    return adjust_alone(block, correction="holm")


def test_a_group_hurt_more_is_a_finding_against_the_most_resilient_group():
    g = run(*scenario(0, hurt=0.1))
    tested = [d for d in g["comparisons"] if d["p_value"] is not None]
    assert {d["group"] for d in tested} == {"a", "c"} and {d["reference"] for d in tested} == {"b"}
    a = next(d for d in tested if d["group"] == "a")
    assert a["finding"] and a["extra_drop"] > 0.2 and a["extra_drop_ci"]["low"] > 0
    assert a["extra_drop"] == pytest.approx(a["drop"] - a["reference_drop"])
    assert not next(d for d in tested if d["group"] == "c")["finding"]
    assert g["findings"][0].startswith("Under white noise at 10 dB SNR (severity 3), voice = a loses ")


@pytest.mark.parametrize("seed", range(6))
def test_an_even_corruption_is_no_finding(seed):
    g = run(*scenario(seed, hurt=0.7))
    assert not any(d["finding"] for d in g["comparisons"])
    assert g["findings"][0].startswith("No corruption hurt one group more than another")


def test_drops_equal_the_bias_sections_own_group_mAP_on_clean_and_corrupted_scores():
    y, meta, clean, corrupted = scenario(1, hurt=0.3)
    g = run(y, meta, clean, corrupted)
    labels = [ClassLabel(index=j, mid=f"/m/{j}", display_name=f"c{j}") for j in range(N_CLASSES)]
    no_boot = MetricsConfig(bootstrap_resamples=0, seed=0)

    def group_map(scores):
        sec, _ = evaluate_bias(y_true=y, y_score=scores, class_labels=labels, metadata=meta, settings=BIAS,
                               bootstrap=no_boot)
        return {r["group"]: r["metrics"]["mAP"]["value"] for r in sec["groups"]}

    before, after = group_map(clean), group_map(corrupted)
    for row in g["by_group"]:  # every group has all three classes: own classes = shared classes
        assert row["drop"] == pytest.approx(before[row["group"]] - after[row["group"]], abs=1e-12)
    for d in g["comparisons"]:
        assert d["drop"] == pytest.approx(before[d["group"]] - after[d["group"]], abs=1e-12)
        assert d["reference_drop"] == pytest.approx(before[d["reference"]] - after[d["reference"]], abs=1e-12)


def test_paired_interval_is_narrower_than_an_unpaired_one():
    """The clean and corrupted scores share their resamples: the drop's interval is far narrower than
    the clean group mAP's own interval (the clean and corrupted noise cancel)."""
    y, meta, clean, corrupted = scenario(2, hurt=0.7)
    corrupted = clean * 0.98  # an almost harmless corruption: the drop is tiny and paired
    g = run(y, meta, clean, corrupted)
    row = next(r for r in g["by_group"] if r["group"] == "b")
    width = row["drop_ci"]["high"] - row["drop_ci"]["low"]
    labels = [ClassLabel(index=j, mid=f"/m/{j}", display_name=f"c{j}") for j in range(N_CLASSES)]
    sec, _ = evaluate_bias(y_true=y, y_score=clean, class_labels=labels, metadata=meta, settings=BIAS, bootstrap=BOOT)
    m = next(r for r in sec["groups"] if r["group"] == "b")["metrics"]["mAP"]
    assert width < 0.2 * (m["ci_high"] - m["ci_low"])


def test_the_tests_join_the_bias_family_and_both_sections_agree():
    y, meta, clean, corrupted = scenario(0, hurt=0.1)
    c = CorruptedScores(name="white_noise", title="White noise", level=10.0, unit="dB SNR", scores=corrupted)
    block = group_drops(y=y, clean_scores=clean, corrupted=[c], metadata=meta, bias=BIAS, bootstrap=BOOT, severity=3)
    labels = [ClassLabel(index=j, mid=f"/m/{j}", display_name=f"c{j}") for j in range(N_CLASSES)]
    alone, _ = evaluate_bias(y_true=y, y_score=clean, class_labels=labels, metadata=meta, settings=BIAS, bootstrap=BOOT)
    joint, _ = evaluate_bias(y_true=y, y_score=clean, class_labels=labels, metadata=meta, settings=BIAS,
                             bootstrap=BOOT, domain_shift_groups=block)
    n_bias, n_shift = alone["settings"]["n_tests"], len(family_p_values(block))
    assert n_shift > 0 and joint["settings"]["n_tests"] == n_bias + n_shift
    assert joint["settings"]["n_domain_shift_tests"] == n_shift
    # the Bias section's own p-values are unchanged; the adjustment runs over the whole family
    raw = [d["p_value"] for d in alone["disparities"] if d["p_value"] is not None]
    assert raw == [d["p_value"] for d in joint["disparities"] if d["p_value"] is not None]
    tested = [d for d in joint["domain_shift_disparities"] if d["p_value"] is not None]
    # Holm over (Bias tests, Bias family-only pairs, these tests): these tests' adjusted values are the tail
    assert any(d["finding"] for d in tested) and any("White noise" in f or "white noise" in f for f in joint["findings"])
    assert all(d["p_adjusted"] >= d["p_value"] for d in tested)
    full = holm(np.array(_bias_family(y, meta, clean) + family_p_values(block)))
    assert len(full) == n_bias + n_shift
    assert [d["p_adjusted"] for d in tested] == pytest.approx(list(full[n_bias:n_bias + len(tested)]))


def _bias_family(y, meta, clean) -> list:
    """The Bias section's own raw p-values in family order (its reported tests and its other pairs)."""
    from factsheet.bias.groups import column_describes_class, group_columns, make_groups
    from factsheet.bias.section import _replicated
    from factsheet.bias.stats import _disparities

    groups, _ = make_groups(meta, BIAS, columns=group_columns(BIAS, meta))
    data = _replicated(y.astype(bool), clean, groups=groups, names=[f"c{j}" for j in range(N_CLASSES)], bootstrap=BOOT)
    rows = _disparities(groups=groups, point=data.point, reps=data.reps, names=data.names, settings=BIAS,
                        bootstrap=BOOT, attributes=column_describes_class(y=data.y, groups=groups),
                        single_label=data.single_label)
    return [d["p_value"] for d in rows if d["p_value"] is not None]


def test_group_severity_defaults_to_the_middle_and_is_validated(tmp_path):
    assert DomainShiftConfig(enabled=True).tested_severity() == 3
    assert DomainShiftConfig(enabled=True, severities=(1, 2, 4, 5)).tested_severity() == 2
    assert DomainShiftConfig(enabled=True, group_severity=5).tested_severity() == 5
    assert DomainShiftConfig(enabled=True, group_severity=0).tested_severity() is None
    assert DomainShiftConfig(enabled=True, suite=False, group_severity=3).tested_severity() is None
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    text = (root / "configs" / "ci_quick.toml").read_text() + \
        "\n[domain_shift]\nenabled = true\nseverities = [1, 3, 5]\ngroup_severity = 2\n"
    (tmp_path / "c.toml").write_text(text)
    res = subprocess.run([sys.executable, "-m", "factsheet", "run", "--config", str(tmp_path / "c.toml"), "--out",
                          str(tmp_path / "out"), "--quiet"], capture_output=True, text=True)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "domain_shift.group_severity" in res.stderr and "2" in res.stderr


def test_groups_without_a_shared_class_are_not_tested_and_do_not_crash():
    rng = np.random.default_rng(3)
    n = 300
    voice = np.array(["a", "b", "c"])[np.arange(n) % 3]
    cls = np.arange(n) % 3  # voice a holds only class 0, b only class 1, c only class 2
    y = np.eye(N_CLASSES, dtype=np.uint8)[cls]
    clean = y * 1.5 + rng.normal(size=y.shape)
    g = run(y, pd.DataFrame({"voice": voice}), clean, clean * 0.5)
    assert g["comparisons"] and all(d["p_value"] is None and d["insufficient_evidence"] for d in g["comparisons"])
    assert g["other_pairs"] == [] and g["findings"][0].startswith("No comparison of groups could be tested")


def test_stratified_choice_gives_every_group_its_minimum_and_reports_columns_too_small():
    from factsheet.domain_shift.section import _group_minimum
    from factsheet.domain_shift.stats import select_clips

    rng = np.random.default_rng(5)
    n = 1000
    voice = np.where(rng.random(n) < 0.03, "child", np.where(rng.random(n) < 0.5, "male", "none"))
    y = np.eye(N_CLASSES, dtype=np.uint8)[rng.integers(0, N_CLASSES, n)]
    meta = pd.DataFrame({"voice": voice})
    settings = DomainShiftConfig(enabled=True, n_clips=100, stratify_by=("voice",), min_per_group=20,
                                 exclude_values=("none",))
    first = _group_minimum(meta, settings=settings)
    idx = select_clips(y, n_clips=100, seed=0, group_first=first)
    assert len(idx) == 100 and len(set(idx.tolist())) == 100 and set(first) <= set(idx.tolist())
    counts = pd.Series(voice[idx]).value_counts()
    assert counts["child"] == min(20, int((voice == "child").sum())) and counts["male"] >= 20
    np.testing.assert_array_equal(idx, select_clips(y, n_clips=100, seed=0, group_first=_group_minimum(meta,
                                                                                                      settings=settings)))
    # without stratification the rare group is left below the minimum and the column is reported as too small
    plain = select_clips(y, n_clips=100, seed=0)
    g = run(y[plain], meta.iloc[plain].reset_index(drop=True), y[plain] + 0.0, y[plain] * 0.5)
    assert any(s.startswith("voice: fewer than two groups with min_group_size = 20") for s in g["not_evaluated"])


def test_stratify_by_errors_are_one_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for extra, field in (('stratify_by = ["accent"]\n', "domain_shift.stratify_by"),
                         ('stratify_by = ["voice_type"]\nmin_per_group = 40\nn_clips = 50\n', "domain_shift.n_clips")):
        text = (root / "configs" / "ci_quick.toml").read_text() + \
            "\n[domain_shift]\nenabled = true\ncorruptions = [\"level_drop\"]\nseverities = [3]\n" + extra
        (tmp_path / "c.toml").write_text(text)
        res = subprocess.run([sys.executable, "-m", "factsheet", "run", "--config", str(tmp_path / "c.toml"), "--out",
                              str(tmp_path / "out"), "--quiet"], capture_output=True, text=True)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr[-800:]
        assert field in res.stderr
