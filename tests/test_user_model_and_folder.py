"""Pointing the harness at your own Keras model and WAV folder; hostile text stays inert."""

import json

import numpy as np
import pytest

from factsheet.audio import write_wav_pcm16
from factsheet.cli import main
from factsheet.datasets.base import ClassLabel, write_class_labels
from factsheet.datasets.synthetic import make_synthetic

keras = pytest.importorskip("keras")

HOSTILE = "<script>alert(1)</script>"
HOSTILE_META = '<img src=x onerror="alert(2)">|pipe'


@pytest.fixture(scope="module")
def user_setup(tmp_path_factory):
    """A 3-class single-label WAV folder (one with a hostile name) and a random 3-class Keras model."""
    from factsheet.models.architecture import build_classifier

    d = tmp_path_factory.mktemp("user")
    ds = make_synthetic(split="eval", n_clips=200, seed=11)
    keep = ["Speech", "Siren", "Bird"]
    shown = {"Speech": "Speech", "Siren": HOSTILE, "Bird": "Bird"}
    names = [c.display_name for c in ds.class_labels]
    wav_dir = d / "wavs"
    wav_dir.mkdir()
    rows = []
    for i in range(ds.n_clips):
        pos = [names[j] for j in np.flatnonzero(ds.labels[i])]
        if len(pos) == 1 and pos[0] in keep:
            fname = f"clip{i:03d}.wav"
            write_wav_pcm16(wav_dir / fname, ds.clips[i], sample_rate=16000)
            rows.append((fname, shown[pos[0]], HOSTILE_META if i % 2 else "plain"))
    assert len(rows) >= 12
    with open(d / "clips.csv", "w") as f:
        f.write("file,labels,note\n")
        for r in rows:
            f.write(f'{r[0]},"{r[1]}","{r[2]}"\n')
    labels = [ClassLabel(index=i, mid=f"/u/{i}", display_name=shown[k]) for i, k in enumerate(keep)]
    write_class_labels(d / "labels.csv", labels)
    keras.utils.set_random_seed(0)
    build_classifier(n_classes=3).save(d / "mine.keras")
    (d / "run.toml").write_text(f"""
[factsheet]
model_name = "{HOSTILE.replace('"', '')}"
[model]
source = "keras"
path = "mine.keras"
class_labels = "labels.csv"
clip_seconds = 1.5
[dataset]
kind = "folder"
wav_dir = "wavs"
csv = "clips.csv"
class_labels = "labels.csv"
[metrics]
bootstrap_resamples = 50
""")
    assert main(["run", "--config", str(d / "run.toml"), "--out", str(d / "out"), "--quiet"]) == 0
    return d


def test_user_model_and_folder_run(user_setup):
    doc = json.loads((user_setup / "out" / "factsheet.json").read_text())
    assert doc["model"]["source"] == "keras" and doc["model"]["clip_samples"] == 24000
    assert doc["dataset"]["kind"] == "folder" and doc["dataset"]["single_label"] is True
    sl = doc["performance"]["single_label"]
    assert 0.0 <= sl["accuracy"] <= 1.0 and len(sl["per_class"]) == 3
    assert doc["model"]["estimator"]["input_shape"] == [24000]
    policy = doc["dataset"]["length_policy"]
    assert policy["repeated"] + policy["cut"] + policy["unchanged"] == doc["dataset"]["n_clips"]


def test_hostile_text_is_inert(user_setup):
    html = (user_setup / "out" / "factsheet.html").read_text()
    md = (user_setup / "out" / "factsheet.md").read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert" not in md and "&lt;script&gt;" in md
    assert "<img" not in html.split("<svg")[0]


def test_class_mismatch_is_one_line(user_setup, tmp_path):
    head, tail = (user_setup / "run.toml").read_text().rsplit('class_labels = "labels.csv"', 1)
    cfg = head + 'class_labels = "other.csv"' + tail  # the dataset's labels differ from the model's
    write_class_labels(user_setup / "other.csv",
                       [ClassLabel(index=i, mid="", display_name=n) for i, n in enumerate(["a", "b", "c"])])
    p = user_setup / "mismatch.toml"
    p.write_text(cfg)
    assert main(["run", "--config", str(p), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert not (tmp_path / "o").exists()


def test_corrupt_wav_is_one_line_exit_2(user_setup, tmp_path, capsys):
    import shutil

    d = tmp_path / "copy"
    shutil.copytree(user_setup, d, ignore=shutil.ignore_patterns("out"))
    victim = sorted((d / "wavs").glob("*.wav"))[0]
    victim.write_bytes(b"RIFF\x00\x00not really a wav")
    assert main(["run", "--config", str(d / "run.toml"), "--out", str(d / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and victim.name in err[0] and "clips.csv" in err[0]
    assert not (d / "out").exists()
