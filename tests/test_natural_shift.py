"""The Domain Shift section's natural shift: a second dataset against the evaluation dataset.

Planted effects, end to end with folder datasets and the demo model: noisy copies of the evaluation
clips show an mAP gap whose interval lies below 0 and a finding; the same audio with half of one
class's positives dropped changes that class's raw AP but not the prevalence-matched mAP (its interval
holds 0, no finding); the same clips give a gap of exactly 0. The unpaired intervals equal a direct
resampling with scikit-learn, the prevalence-matched AP equals scikit-learn's AP with sample weights,
and bad config is one line.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from factsheet.domain_shift.natural import matched_ap, prevalence_weights, shift_numbers, shift_seeds

ROOT = Path(__file__).resolve().parent.parent
LABELS_CSV = ROOT / "factsheet" / "models" / "default" / "class_labels_indices.csv"
DROPPED = "Alarm"  # the class whose positives the class-mix target has half of


def _random_sets(seed: int = 0):
    rng = np.random.default_rng(seed)
    ns, nt = 150, 110
    ys = (rng.random((ns, 4)) < 0.3).astype(np.uint8)
    yt = (rng.random((nt, 4)) < np.array([0.1, 0.3, 0.5, 0.2])).astype(np.uint8)
    ss = np.round(ys * 0.5 + rng.random(ys.shape), 2)  # rounded: ties
    st = np.round(yt * 0.3 + rng.random(yt.shape), 2)
    return ys, ss, yt, st


def _sk_map(y, s):
    ok = [c for c in range(y.shape[1]) if 0 < y[:, c].sum() < len(y)]
    return np.mean([average_precision_score(y[:, c], s[:, c]) for c in ok]) if ok else np.nan


def _sk_auc(y, s):
    ok = [c for c in range(y.shape[1]) if 0 < y[:, c].sum() < len(y)]
    return np.mean([roc_auc_score(y[:, c], s[:, c]) for c in ok]) if ok else np.nan


def _sk_matched_map(y, s, y_source):
    """Prevalence-matched mAP with scikit-learn: negatives of class c weighted (P_t/N_t) / (P_s/N_s)."""
    vals = []
    for c in range(y.shape[1]):
        pt, ps = y[:, c].sum(), y_source[:, c].sum()
        nt, ns = len(y) - pt, len(y_source) - ps
        if min(pt, nt, ps, ns) == 0:
            continue
        w = (pt / nt) / (ps / ns)
        vals.append(average_precision_score(y[:, c], s[:, c], sample_weight=np.where(y[:, c] == 1, 1.0, w)))
    return np.mean(vals) if vals else np.nan


def test_matched_ap_equals_sklearn_with_sample_weights():
    ys, _, yt, st = _random_sets()
    w = prevalence_weights(positives_target=yt.sum(0), negatives_target=len(yt) - yt.sum(0),
                           positives_source=ys.sum(0), negatives_source=len(ys) - ys.sum(0))
    counts = np.vstack([np.ones(len(yt)), np.random.default_rng(1).integers(0, 3, len(yt))])  # full set, a resample
    ap = matched_ap(y_target=yt, s_target=st, counts_target=counts, negative_weight=np.vstack([w, w]))
    for b in range(2):
        for c in range(yt.shape[1]):
            sample_weight = counts[b] * np.where(yt[:, c] == 1, 1.0, w[c])
            assert ap[b, c] == pytest.approx(average_precision_score(yt[:, c], st[:, c], sample_weight=sample_weight),
                                             abs=1e-12)
    # the weights give the target the source's positives-to-negatives ratio, class by class
    np.testing.assert_allclose(yt.sum(0) / (w * (len(yt) - yt.sum(0))), ys.sum(0) / (len(ys) - ys.sum(0)))
    assert np.isnan(prevalence_weights(positives_target=[0], negatives_target=[5], positives_source=[1],
                                       negatives_source=[1])[0])


def test_unpaired_intervals_equal_direct_resampling_with_sklearn():
    ys, ss, yt, st = _random_sets()
    seeds = shift_seeds(seed=3, index=1)
    assert seeds == {"source": 3, "target": 5}  # documented: source = metrics.seed, target k = seed + 1 + k
    # the replicates, checked through the percentile interval (BCa of the same replicates: test_natural_shift_intervals)
    out = shift_numbers(y_source=ys, s_source=ss, y_target=yt, s_target=st, n_resamples=200, confidence=0.95,
                        seeds=seeds, method="percentile")["metrics"]
    rs, rt = np.random.default_rng(seeds["source"]), np.random.default_rng(seeds["target"])
    gaps = {"mAP": [], "mAP_matched": [], "mean_auc": []}
    target = []
    for _ in range(200):  # independent resamples of each set, one draw of each per replicate
        i, j = rs.integers(0, len(ys), len(ys)), rt.integers(0, len(yt), len(yt))
        source_map = _sk_map(ys[i], ss[i])
        target.append(_sk_map(yt[j], st[j]))
        gaps["mAP"].append(target[-1] - source_map)
        gaps["mAP_matched"].append(_sk_matched_map(yt[j], st[j], ys[i]) - source_map)
        gaps["mean_auc"].append(_sk_auc(yt[j], st[j]) - _sk_auc(ys[i], ss[i]))
    for k, g in gaps.items():
        g = np.asarray(g)
        low, high = np.percentile(g[np.isfinite(g)], [2.5, 97.5])
        assert out[k]["gap"]["ci_low"] == pytest.approx(low, abs=1e-9), k
        assert out[k]["gap"]["ci_high"] == pytest.approx(high, abs=1e-9), k
    low, high = np.percentile(target, [2.5, 97.5])
    assert (out["mAP"]["target"]["ci_low"], out["mAP"]["target"]["ci_high"]) == (pytest.approx(low, abs=1e-9),
                                                                                  pytest.approx(high, abs=1e-9))
    assert out["mAP"]["gap"]["value"] == pytest.approx(_sk_map(yt, st) - _sk_map(ys, ss), abs=1e-12)
    assert out["mAP_matched"]["target"]["value"] == pytest.approx(_sk_matched_map(yt, st, ys), abs=1e-12)
    assert out["mAP_matched"]["source"] == out["mAP"]["source"]


# ---------------------------------------------------------------------------------------------------------
# End to end: folder datasets written from synthetic clips, the demo model, one run with three targets
# ---------------------------------------------------------------------------------------------------------


def _write_folder(folder: Path, clips, *, sample_rate: int) -> None:
    from factsheet.audio import write_wav_pcm16

    folder.mkdir()
    for i, clip in enumerate(clips):
        write_wav_pcm16(folder / f"clip{i:03d}.wav", clip, sample_rate=sample_rate)


def _write_csv(path: Path, rows: list[tuple[int, list[str]]]) -> None:
    path.write_text("file,labels\n" + "".join(f"clip{i:03d}.wav,{';'.join(names)}\n" for i, names in rows))


def _config(d: Path, targets: list[tuple[str, str, str]], *, extra: str = "") -> str:
    text = f"""
[model]
source = "default"
[dataset]
kind = "folder"
wav_dir = "src"
csv = "src.csv"
class_labels = "{LABELS_CSV}"
[metrics]
bootstrap_resamples = 200
seed = 4
[bias]
enabled = false
[domain_shift]
enabled = true
suite = false
{extra}"""
    for name, wav_dir, csv in targets:
        text += f'\n[[domain_shift.datasets]]\nname = "{name}"\nkind = "folder"\nwav_dir = "{wav_dir}"\n'
        text += f'csv = "{csv}"\nclass_labels = "{LABELS_CSV}"\n'
    return text


@pytest.fixture(scope="module")
def shift_run(tmp_path_factory):
    """240 synthetic EVAL clips as a WAV folder (the evaluation set); targets: the same clips with white
    noise at 0 dB SNR, the same files without half of the Alarm positives, and the same files again."""
    from factsheet.cli import main
    from factsheet.datasets.synthetic import make_synthetic

    d = tmp_path_factory.mktemp("natural")
    ds = make_synthetic(split="eval", n_clips=240, seed=1)
    names = [c.display_name for c in ds.class_labels]
    rows = [(i, [names[j] for j in np.flatnonzero(ds.labels[i])]) for i in range(ds.n_clips)]
    _write_folder(d / "src", ds.clips, sample_rate=16000)
    rng = np.random.default_rng(0)
    noisy = [c + rng.normal(size=c.shape) * np.sqrt(np.mean(c ** 2)) for c in ds.clips]  # 0 dB SNR
    _write_folder(d / "noisy", [n / max(1.0, np.abs(n).max()) for n in noisy], sample_rate=16000)
    _write_csv(d / "src.csv", rows)
    alarm = [i for i, labels in rows if DROPPED in labels]
    _write_csv(d / "mix.csv", [r for r in rows if r[0] not in alarm[::2]])  # every other Alarm clip dropped
    targets = [("noisy copies", "noisy", "src.csv"), ("fewer alarms", "src", "mix.csv"),
               ("same clips", "src", "src.csv")]
    (d / "run.toml").write_text(_config(d, targets))
    assert main(["run", "--config", str(d / "run.toml"), "--out", str(d / "out"), "--quiet"]) == 0
    doc = json.loads((d / "out" / "factsheet.json").read_text())
    return d, doc, {e["name"]: e for e in doc["domain_shift"]["natural_shift"]}


def test_noisy_copies_show_a_gap_below_zero_and_a_finding(shift_run):
    _, doc, by_name = shift_run
    e = by_name["noisy copies"]
    for k in ("mAP", "mAP_matched", "mean_auc"):
        gap = e["metrics"][k]["gap"]
        assert gap["value"] < 0 and gap["ci_high"] < 0, (k, gap)
    assert e["metrics"]["mAP_matched"]["gap"]["ci_high"] < -doc["domain_shift"]["settings"]["tolerance"]
    assert e["finding"] and len(e["classes"]) == 14 and e["classes_left_out"] == []
    sentence = next(f for f in doc["domain_shift"]["findings"] if f.startswith("noisy copies:"))
    assert "mAP falls from" in sentence and "more than the tolerance 0.02" in sentence
    assert any(s.startswith("Recordings like noisy copies") for s in doc["poor_conditions"]["statements"])


def test_a_different_class_mix_changes_raw_ap_not_matched_map(shift_run):
    _, doc, by_name = shift_run
    e = by_name["fewer alarms"]
    row = next(r for r in e["per_class"] if r["label"] == DROPPED)
    assert row["n_pos_target"] == row["n_pos_source"] - (row["n_pos_source"] + 1) // 2
    assert row["change"] < -0.05  # fewer positives per negative: raw AP falls with no change in the audio
    assert abs(row["change_matched"]) < abs(row["change"]) / 2
    matched = e["metrics"]["mAP_matched"]["gap"]
    assert matched["ci_low"] < 0 < matched["ci_high"] and not e["finding"]
    raw = e["metrics"]["mAP"]["gap"]
    assert raw["value"] < matched["value"]
    assert e["metrics"]["mean_auc"]["gap"]["ci_low"] < 0 < e["metrics"]["mean_auc"]["gap"]["ci_high"]
    assert not any("fewer alarms" in s for s in doc["poor_conditions"]["statements"])


def test_the_same_clips_have_a_gap_of_exactly_zero(shift_run):
    _, _, by_name = shift_run
    e = by_name["same clips"]
    assert all(e["metrics"][k]["gap"]["value"] == 0.0 for k in ("mAP", "mAP_matched", "mean_auc", "d_prime"))
    assert all(r["change"] == 0.0 and r["change_matched"] == 0.0 for r in e["per_class"])
    assert e["bootstrap_seeds"] == {"source": 4, "target": 4 + 1 + 2} and not e["finding"]
    gap = e["metrics"]["mAP"]["gap"]
    assert gap["ci_low"] < 0 < gap["ci_high"] and gap["n_used"] == 200  # two independent resamples of one set


def test_report_without_the_suite(shift_run):
    d, doc, _ = shift_run
    ds = doc["domain_shift"]
    assert ds["corruptions"] == [] and ds["mean_relative_drop"] is None and ds["settings"]["corruptions"] == []
    assert len(ds["findings"]) == 3 and "unpaired_ci" in ds["definitions"] and "breaking_point" not in ds["definitions"]
    assert not (d / "out" / "plots" / "domain_shift_curves.svg").exists()
    md, html = (d / "out" / "factsheet.md").read_text(), (d / "out" / "factsheet.html").read_text()
    for text in (md, html):
        assert "The corruption suite was not run" in text and "Natural shift" in text
        assert "prevalence-matched" in text and "Every cell" not in text
    assert "second datasets (Domain Shift section)" in md
    recorded = doc["provenance"]["config"]["domain_shift"]
    assert recorded["suite"] is False and [t["name"] for t in recorded["datasets"]] == list(
        e["name"] for e in ds["natural_shift"])
    assert recorded["datasets"][0]["wav_dir"] == str(d / "noisy")


def test_gate_reads_the_matched_gap(shift_run):
    import tomllib

    from factsheet.gate import evaluate_policy, parse_policy

    _, doc, _ = shift_run
    text = """
[[gate]]
name = "noisy"
path = "domain_shift.natural_shift[name=noisy copies].metrics.mAP_matched.gap.value"
use = "upper"
op = ">="
threshold = -0.02

[[gate]]
name = "mix"
path = "domain_shift.natural_shift[name=fewer alarms].metrics.mAP_matched.gap.value"
use = "upper"
op = ">="
threshold = -0.02
"""
    report = evaluate_policy(policy=parse_policy(tomllib.loads(text), source="p.toml"), doc=doc, source="f.json")
    assert {r.gate.name: r.outcome for r in report.results} == {"noisy": "fail", "mix": "pass"}


def test_recorded_config_is_read_back(shift_run):
    from factsheet.config import load_config
    from factsheet.reproduce import config_from_factsheet

    d, doc, _ = shift_run
    cfg = load_config(d / "run.toml")
    assert config_from_factsheet(doc, source="f.json") == replace(cfg, path=None)


def test_missing_wav_dir_in_a_target_is_one_line(tmp_path, capsys):
    from factsheet.cli import main

    (tmp_path / "src").mkdir()
    (tmp_path / "src.csv").write_text("file,labels\n")
    text = _config(tmp_path, []) + '[[domain_shift.datasets]]\nname = "field recordings"\nkind = "folder"\n'
    text += 'csv = "src.csv"\n'
    (tmp_path / "c.toml").write_text(text)
    assert main(["run", "--config", str(tmp_path / "c.toml"), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "domain_shift.datasets[0].wav_dir" in err[0] and "c.toml" in err[0], err
    assert "Traceback" not in err[0] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("extra, field", [
    ('[[domain_shift.datasets]]\nkind = "synthetic"\n', "domain_shift.datasets[0].name"),
    ('[[domain_shift.datasets]]\nname = "a"\nn_clips = 0\n', "domain_shift.datasets[0].n_clips"),
    ('[[domain_shift.datasets]]\nname = "a"\nnoise = 1\n', "domain_shift.datasets[0].noise"),
    ('[[domain_shift.datasets]]\nname = "a"\n[[domain_shift.datasets]]\nname = "a"\n', "domain_shift.datasets[1].name"),
    ('datasets = 3\n', "domain_shift.datasets"),
    ('enabled = true\nsuite = false\n', "domain_shift.suite"),
])
def test_bad_target_config_names_the_key(tmp_path, extra, field):
    from factsheet.config import load_config
    from factsheet.errors import InputError

    p = tmp_path / "c.toml"
    p.write_text("[domain_shift]\n" + extra)
    with pytest.raises(InputError) as e:
        load_config(p)
    assert e.value.field == field and "\n" not in e.value.line()
