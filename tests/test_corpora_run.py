"""End to end: each corpus layout through `factsheet run` (demo model, or an AudioSet-vocabulary Keras model on an
FSD50K tree), the label mapping and skipped files in the FactSheet and report, metrics equal to scikit-learn on the
mapped columns of predictions.csv, and one-line errors with exit code 2."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score

from _corpora import UNKNOWN_MID, demo_clips, make_audioset, make_esc50, make_fsd50k, make_urbansound8k
from factsheet.cli import main
from factsheet.datasets.base import ClassLabel, write_class_labels
from factsheet.document import validate

QUICK = "[metrics]\nbootstrap_resamples = 20\n[bias]\nmin_group_size = 5\nmin_positives = 2\n"
DEMO_VOCAB = [(f"/synth/{n.lower()}", n) for n in ("Speech", "Whistling", "Dog", "Rain", "Siren")]
# an AudioSet-vocabulary model (stand-in mids) and an FSD50K tree labelled into FSD50K's names
AUDIOSET_MODEL = [("/m/09x0r", "Speech"), ("/m/05zppz", "Male speech, man speaking"), ("/m/0bt9lr", "Dog"),
                  ("/m/05tny_", "Bark"), ("/m/0f8s22", "Bicycle bell"), ("/m/04rlf", "Music"), ("/m/03kmc9", "Siren"),
                  ("/m/06mb1", "Rain")]
FSD_VOCAB = [("/m/09x0r", "Speech"), ("/m/05zppz", "Male_speech_and_man_speaking"), ("/m/0bt9lr", "Dog"),
             ("/m/05tny_", "Bark"), ("/m/0f8s22", "Bicycle_bell"), ("/m/06mb1", "Rain"), ("/m/03m9d0z", "Wind"),
             ("/m/0mkg", "Accordion")]
DEMO_TO_FSD = {"Speech": ["Speech", "Male_speech_and_man_speaking"], "Dog": ["Dog", "Bark"],
               "Whistling": ["Bicycle_bell"], "Rain": ["Rain"], "Wind": ["Wind"], "Guitar": ["Accordion"]}
SINGLE = ["Dog", "Bird", "Siren", "Engine", "Rain"]


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """One tree per layout (awkward cases included) and the clip sets they were made from."""
    d = tmp_path_factory.mktemp("corpora")
    multi = demo_clips(n=60, seed=7, keep=list(DEMO_TO_FSD))
    single = demo_clips(n=260, seed=8, keep=SINGLE, single=True)
    lower = {"Dog": "dog", "Bird": "chirping_birds", "Siren": "siren", "Engine": "engine", "Rain": "rain"}
    us8k = {"Dog": "dog_bark", "Bird": "children_playing", "Siren": "siren", "Engine": "engine_idling",
            "Rain": "street_music"}
    return {
        "dir": d,
        "audioset": make_audioset(d / "audioset", [(c, [n for n in ls if n in dict(map(reversed, DEMO_VOCAB))])
                                                   for c, ls in multi if set(ls) & {n for _, n in DEMO_VOCAB}],
                                  vocabulary=DEMO_VOCAB + [("/m/05zppz", "Male speech, man speaking")]),
        "fsd50k": make_fsd50k(d / "fsd50k", [(c, [n for k in ls for n in DEMO_TO_FSD[k]]) for c, ls in multi],
                              vocabulary=FSD_VOCAB),
        "fsd50k_demo": make_fsd50k(d / "fsd50k_demo", [(c, ls) for c, ls in multi if set(ls) <= {"Speech", "Dog",
                                                                                              "Whistling", "Rain"}],
                                   vocabulary=DEMO_VOCAB[:4], split="dev", awkward=False),
        "esc50": make_esc50(d / "esc50", [(c, [lower[ls[0]]]) for c, ls in single],
                            classes=["dog", "rain", "siren", "chirping_birds", "engine"]),
        "urbansound8k": make_urbansound8k(d / "urbansound8k", [(c, [us8k[ls[0]]]) for c, ls in single],
                                          classes=list(us8k.values())),
        "n_single": len(single),
    }


def run(d: Path, name: str, body: str) -> tuple[int, Path]:
    cfg = d / f"{name}.toml"
    cfg.write_text(body + QUICK)
    out = d / f"out_{name}"
    return main(["run", "--config", str(cfg), "--out", str(out), "--quiet"]), out


def load(out: Path) -> dict:
    doc = json.loads((out / "factsheet.json").read_text())
    validate(doc)
    return doc


def predictions(out: Path) -> tuple[list[dict], list[str]]:
    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return rows, [k[len("score:"):] for k in rows[0] if k.startswith("score:")]


def test_audioset_layout_runs_and_reports_skips(trees):
    t = trees["audioset"]
    rc, out = run(trees["dir"], "audioset", '[dataset]\nkind = "audioset"\nroot = "audioset"\n'
                  'file_pattern = "{YTID}_{start_seconds:.3f}.wav"\non_unreadable = "skip"\nmax_skipped_fraction = 0.1\n')
    assert rc == 0
    ds = load(out)["dataset"]
    assert ds["kind"] == "audioset" and ds["n_clips"] == t.n_listed - 1
    assert ds["unreadable"] == {"on_unreadable": "skip", "max_skipped_fraction": 0.1, "n_listed": t.n_listed,
                                "n_skipped": 1, "skipped": [{"file": t.missing[0], "reason": "file not found"}]}
    lm = ds["label_mapping"]
    assert lm["method"] == "mid" and lm["defaulted"] and lm["n_mapped_classes"] == 5
    assert [c["display_name"] for c in ds["class_labels"]] == ["Speech", "Whistling", "Dog", "Siren", "Rain"]
    assert [c["index"] for c in ds["class_labels"]] == lm["model_columns"] == [0, 1, 6, 9, 12]  # the demo's columns
    assert {c["label"]: c["in_vocabulary"] for c in lm["dataset_only"]} == {"Male speech, man speaking": True,
                                                                           UNKNOWN_MID: False}
    assert len(lm["model_only"]) == 9 and sum(c["n_top1"] for c in lm["model_only"]) <= ds["n_clips"]
    assert ds["length_policy"]["repeated"] >= 1  # the 0.3 s clip among them
    md, html = (out / "factsheet.md").read_text(), (out / "factsheet.html").read_text()
    for text in (md, html):
        assert "Unreadable files" in text and t.missing[0] in text and "Label mapping" in text
    assert "The metrics cover the 5 mapped classes" in md.split("## Bias")[0]


def test_fsd50k_dev_split_is_a_group_column(trees):
    rc, out = run(trees["dir"], "fsd50k_demo", '[dataset]\nkind = "fsd50k"\nroot = "fsd50k_demo"\nsplit = "dev"\n')
    assert rc == 0
    doc = load(out)
    assert doc["dataset"]["name"] == "fsd50k-dev" and doc["dataset"]["unreadable"]["n_skipped"] == 0
    assert {g["group"] for g in doc["bias"]["groups"] if g["columns"] == ["split"]} == {"train", "val"}


def test_esc50_table_mapping_keeps_single_label_metrics(trees):
    d = trees["dir"]
    (d / "esc_map.csv").write_text("\ufeffdataset_label,model_label\ndog,Dog\nrain,Rain\nsiren,Siren\n"
                                   "chirping_birds,Bird\nengine,Engine\n", encoding="utf-8")
    rc, out = run(d, "esc50", '[dataset]\nkind = "esc50"\nroot = "esc50"\nlabel_mapping = "esc_map.csv"\n'
                  'on_unreadable = "skip"\nmax_skipped_fraction = 0.1\n')
    assert rc == 0
    doc = load(out)
    names = [c["display_name"] for c in doc["dataset"]["class_labels"]]
    assert names == ["Dog", "Bird", "Siren", "Engine", "Rain"]  # the model's order, not ESC-50's targets
    assert doc["dataset"]["single_label"] and doc["dataset"]["label_mapping"]["method"] == "table"
    rows, outputs = predictions(out)
    scores = np.array([[float(r[f"score:{n}"]) for n in names] for r in rows])
    truth = [names.index(r["true_labels"]) for r in rows]
    sl = doc["performance"]["single_label"]
    assert sl["accuracy"] == pytest.approx(accuracy_score(truth, np.argmax(scores, axis=1)), abs=1e-12)
    assert [c["label"] for c in sl["per_class"]] == names and len(outputs) == 14
    assert {g["columns"][0] for g in doc["bias"]["groups"]} >= {"fold", "esc10"}
    methods = doc["bias"]["interval_methods"]  # the single-label accuracy intervals, named and printed
    assert (methods["groups.accuracy"], methods["disparities[metric=accuracy]"]) == ("clopper_pearson", "newcombe")
    from scipy.stats import binomtest

    for g in doc["bias"]["groups"]:  # Clopper-Pearson of k of n right: 6 of 6 no longer prints [1, 1]
        acc = g["metrics"]["accuracy"]
        want = binomtest(round(acc["value"] * g["n"]), g["n"]).proportion_ci(method="exact")
        assert (acc["ci_low"], acc["ci_high"]) == pytest.approx((want.low, want.high), abs=1e-12)
    tied = [d for d in doc["bias"]["disparities"] if d["metric"] == "accuracy" and d["value"] == 1.0]
    assert tied and all(d["ci_low"] < -0.3 and d["ci_high"] > 0.3 for d in tied)  # Newcombe at 6/6 vs 6/6


def test_urbansound8k_partial_mapping_counts_pure_negatives(trees):
    d = trees["dir"]
    (d / "us_map.csv").write_text("dataset_label,model_label\ndog_bark,Dog\nsiren,Siren\nengine_idling,Engine\n")
    rc, out = run(d, "urbansound8k", '[dataset]\nkind = "urbansound8k"\nroot = "urbansound8k"\nfolds = [1, 2]\n'
                  'label_mapping = "us_map.csv"\non_unreadable = "skip"\nmax_skipped_fraction = 0.2\n')
    assert rc == 0
    ds = load(out)["dataset"]
    lm = ds["label_mapping"]
    assert lm["n_mapped_classes"] == 3 and not ds["single_label"]
    unmapped = [c for c in lm["dataset_only"] if c["n_clips"]]
    assert {c["label"] for c in unmapped} <= {"children_playing", "street_music"}
    assert lm["n_clips_all_labels_unmapped"] == sum(c["n_clips"] for c in unmapped) > 0
    assert ds["n_clips"] + ds["unreadable"]["n_skipped"] == ds["unreadable"]["n_listed"] < trees["n_single"] + 1


@pytest.fixture(scope="module")
def audioset_model(trees):
    """A random Keras model over 8 AudioSet classes (two of them not in the FSD50K tree's vocabulary)."""
    keras = pytest.importorskip("keras")
    from factsheet.models.architecture import build_classifier

    d = trees["dir"]
    write_class_labels(d / "audioset_labels.csv",
                       [ClassLabel(index=i, mid=m, display_name=n) for i, (m, n) in enumerate(AUDIOSET_MODEL)])
    keras.utils.set_random_seed(0)
    build_classifier(n_classes=len(AUDIOSET_MODEL)).save(d / "audioset_model.keras")
    rc, out = run(d, "fsd50k", '[model]\nsource = "keras"\npath = "audioset_model.keras"\n'
                  'class_labels = "audioset_labels.csv"\nclip_seconds = 1.0\n'
                  '[dataset]\nkind = "fsd50k"\nroot = "fsd50k"\non_unreadable = "skip"\nmax_skipped_fraction = 0.1\n')
    assert rc == 0
    return out


def test_audioset_model_on_fsd50k_reports_mapped_classes_only(audioset_model):
    doc = load(audioset_model)
    lm = doc["dataset"]["label_mapping"]
    mapped = ["Speech", "Male speech, man speaking", "Dog", "Bark", "Bicycle bell", "Rain"]
    assert [c["display_name"] for c in doc["dataset"]["class_labels"]] == mapped
    assert lm["model_columns"] == [0, 1, 2, 3, 4, 7] and lm["method"] == "mid"
    assert [c["label"] for c in lm["model_only"]] == ["Music", "Siren"]
    assert {c["label"] for c in lm["dataset_only"]} == {"Wind", "Accordion", "Mystery_sound"}
    assert [c["label"] for c in doc["performance"]["per_class"]] == mapped
    assert [c["index"] for c in doc["performance"]["per_class"]] == lm["model_columns"]
    assert lm["n_clips_all_labels_unmapped"] > 0  # clips labelled Wind or Accordion only: pure negatives
    rows, outputs = predictions(audioset_model)
    assert outputs == [n for _, n in AUDIOSET_MODEL]  # every model output kept
    top1 = {c["label"]: c["n_top1"] for c in lm["model_only"]}
    assert top1 == {n: sum(r["top1_label"] == n for r in rows) for n in ("Music", "Siren")}


def test_mapped_metrics_equal_sklearn_on_predictions_csv(audioset_model):
    doc = load(audioset_model)
    perf = doc["performance"]
    rows, _ = predictions(audioset_model)
    names = [c["display_name"] for c in doc["dataset"]["class_labels"]]
    scores = np.array([[float(r[f"score:{n}"]) for n in names] for r in rows])
    y = np.array([[n in r["true_labels"].split(";") for n in names] for r in rows], dtype=int)
    keep = [j for j in range(len(names)) if 0 < y[:, j].sum() < len(y)]
    assert len(keep) >= 5 and perf["n_classes_evaluated"] == len(keep)
    ap = [average_precision_score(y[:, j], scores[:, j]) for j in keep]
    auc = [roc_auc_score(y[:, j], scores[:, j]) for j in keep]
    assert perf["mAP"] == pytest.approx(np.mean(ap), abs=1e-9)
    assert perf["mean_auc"] == pytest.approx(np.mean(auc), abs=1e-9)
    evaluable = [c for c in perf["per_class"] if c["evaluable"]]
    assert [c["label"] for c in evaluable] == [names[j] for j in keep]
    for row, a, u in zip(evaluable, ap, auc):
        assert row["ap"] == pytest.approx(a, abs=1e-9) and row["auc"] == pytest.approx(u, abs=1e-9)
    assert "The metrics cover the 6 mapped classes" in perf["definitions"]["evaluated_classes"]


def one_line_exit_2(d: Path, name: str, body: str, capsys) -> str:
    capsys.readouterr()
    rc, out = run(d, name, body)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and not out.exists(), err
    return err[0]


def test_wrong_layout_is_one_line_exit_2(trees, capsys):
    d = trees["dir"]
    (d / "empty_corpus" / "meta").mkdir(parents=True)
    line = one_line_exit_2(d, "bad_layout", '[dataset]\nkind = "esc50"\nroot = "empty_corpus"\n', capsys)
    assert "esc50.csv: ESC-50 metadata file not found (expected the ESC-50 layout: meta/esc50.csv, audio/)" in line
    line = one_line_exit_2(d, "bad_fold", '[dataset]\nkind = "urbansound8k"\nroot = "urbansound8k"\nfolds = [11]\n',
                           capsys)
    assert "dataset.folds = [11]: must be distinct fold numbers 1..10" in line


def test_missing_file_fails_by_default_and_too_many_skips_fail(trees, capsys):
    d, t = trees["dir"], trees["esc50"]
    (d / "esc_map2.csv").write_text("dataset_label,model_label\ndog,Dog\n")
    body = '[dataset]\nkind = "esc50"\nroot = "esc50"\nlabel_mapping = "esc_map2.csv"\n'
    line = one_line_exit_2(d, "esc_fail", body, capsys)
    assert f"column filename = '{t.missing[0]}'" in line and "file not found" in line
    line = one_line_exit_2(d, "esc_skip", body + 'on_unreadable = "skip"\nmax_skipped_fraction = 0.0\n', capsys)
    assert "1 of " in line and "above dataset.max_skipped_fraction = 0" in line


def test_mapping_no_class_is_one_line_exit_2(trees, capsys):
    line = one_line_exit_2(trees["dir"], "esc_none", '[dataset]\nkind = "esc50"\nroot = "esc50"\n'
                           'on_unreadable = "skip"\nmax_skipped_fraction = 0.1\n', capsys)
    assert "dataset.label_mapping = 'name': maps none of the dataset's 5 classes to the model's 14" in line


def test_attack_runs_on_the_models_whole_output(trees):
    d = trees["dir"]
    (d / "esc_map3.csv").write_text("dataset_label,model_label\ndog,Dog\nrain,Rain\nsiren,Siren\n")
    rc, out = run(d, "esc_attack", '[dataset]\nkind = "esc50"\nroot = "esc50"\nlabel_mapping = "esc_map3.csv"\n'
                  'on_unreadable = "skip"\nmax_skipped_fraction = 0.1\n[robustness]\nenabled = true\nnorms = ["l2"]\n'
                  'n_clips = 2\niterations = 2\nk = 3\ninit_eval = 5\nmax_eval = 50\ninit_size = 5\nmode = "fast"\n'
                  'workers = 1\n')
    assert rc == 0
    doc = load(out)
    clips = doc["robustness"]["hopskipjump"]["l2"]["clips"]
    assert doc["robustness"]["status"] == "evaluated" and len(clips) == 2
    assert {c["label"] for c in clips} <= {"Dog", "Rain", "Siren"}  # only clips whose top-1 over all outputs is right
