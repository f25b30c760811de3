"""`factsheet init` writes a config that runs once its FILL keys are filled; `factsheet import-max` converts
(stand-in) MAX assets into a .keras file that loads with safe_mode and scores like the assets; a FactSheet of
the MAX model from its assets."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from _max_assets import make_standin_assets
from _model_formats import export_tiny_onnx, tiny_frame_weights
from factsheet.audio import write_wav_pcm16
from factsheet.cli import main
from factsheet.config import ModelConfig
from factsheet.datasets.base import ClassLabel, write_class_labels

pytest.importorskip("onnxruntime")

NAMES = ["cat", "dog", "bird", "car", "rain"]


@pytest.fixture()
def audio_folder(tmp_path):
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (tmp_path / "wavs" / label).mkdir(parents=True)
        for i in range(4):
            write_wav_pcm16(tmp_path / "wavs" / label / f"{i}.wav", rng.uniform(-0.3, 0.3, 8000).astype(np.float32),
                            sample_rate=8000)
    return tmp_path / "wavs"


def test_init_writes_a_config_that_runs_once_filled(tmp_path, audio_folder, capsys):
    model = export_tiny_onnx(tmp_path / "tiny.onnx", weights=tiny_frame_weights(n_classes=5, frame=400),
                             n_samples=4000)
    cfg = tmp_path / "cfg" / "run.toml"
    assert main(["init", "--model", str(model), "--wavs", str(audio_folder), "--config", str(cfg)]) == 0
    said = capsys.readouterr().out
    assert "source = 'onnx'" in said and "8 files" in said and "8 labelled from their folder names" in said
    text = cfg.read_text()
    assert 'source = "onnx"' in text and 'path = "../tiny.onnx"' in text and "sample_rate = 8000" in text
    assert "clip_seconds = 0.5" in text and 'pooling = "mean"' in text and "output_name" in text
    assert (cfg.parent / "clips.csv").read_text().splitlines()[:2] == ["file,labels", "cat/0.wav,cat"]
    # unfilled: the run names the missing key in one line, exit 2
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "model.class_labels: required" in capsys.readouterr().err
    # filled: it runs
    (cfg.parent / "labels.txt").write_text("\n".join(NAMES) + "\n")
    text = re.sub(r'# class_labels = "class_labels.csv".*', 'class_labels = "labels.txt"', text)
    text = text.replace('# output_name = "..."', 'output_name = "framewise_logits"')
    text = text.replace('output = "probabilities"', 'output = "logits-sigmoid"')
    text = text.replace("[robustness]\nenabled = true", "[robustness]\nenabled = false")
    text = text.replace("[bias]\nenabled = true", "[bias]\nenabled = false")
    cfg.write_text(text)
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    doc = json.loads((tmp_path / "out" / "factsheet.json").read_text())
    assert doc["model"]["source"] == "onnx" and doc["dataset"]["n_clips"] == 8
    assert doc["model"]["runtime"]["adaptation"]["frame_pooling"] == "mean"
    # never overwrites
    assert main(["init", "--model", str(model), "--wavs", str(audio_folder), "--config", str(cfg)]) == 2
    assert "not overwritten" in capsys.readouterr().err


@pytest.mark.parametrize("model, reason", [("nothing.bin", "no such file or folder"),
                                           ("model.pt", "unknown model format")])
def test_init_unknown_model_is_one_line(tmp_path, audio_folder, capsys, model, reason):
    if model.endswith(".pt"):
        (tmp_path / model).write_bytes(b"x")
    assert main(["init", "--model", str(tmp_path / model), "--wavs", str(audio_folder),
                 "--config", str(tmp_path / "c.toml")]) == 2
    err = capsys.readouterr().err.strip()
    assert reason in err and err.count("\n") == 0 and not (tmp_path / "c.toml").exists()


def test_init_for_a_url_and_max_assets(tmp_path, audio_folder, capsys):
    assert main(["init", "--model", "http://127.0.0.1:5000", "--wavs", str(audio_folder),
                 "--config", str(tmp_path / "a" / "http.toml")]) == 0
    text = (tmp_path / "a" / "http.toml").read_text()
    assert 'source = "http"' in text and 'url = "http://127.0.0.1:5000"' in text and "concurrency = 4" in text
    make_standin_assets(tmp_path / "assets", width=2, n_classes=6)
    assert main(["init", "--model", str(tmp_path / "assets"), "--wavs", str(audio_folder),
                 "--config", str(tmp_path / "b" / "max.toml")]) == 0
    text = (tmp_path / "b" / "max.toml").read_text()
    assert 'source = "max"' in text and 'assets = "../assets"' in text and "clip_seconds = 10.0" in text


@pytest.fixture(scope="module")
def max_setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("max")
    make_standin_assets(d / "assets", width=2, n_classes=8)
    labels = [ClassLabel(index=i, mid=f"/m/{i:03d}", display_name=f"event {i}") for i in range(8)]
    write_class_labels(d / "labels.csv", labels)
    return d


def test_import_max_cli_and_both_max_configs_agree(max_setup, capsys):
    from factsheet.models.adapter import load_model

    d = max_setup
    assert main(["import-max", str(d / "assets"), "--out", str(d / "max.keras")]) == 0
    out = capsys.readouterr().out
    assert "verified against sha512sums.txt" in out and "8 classes" in out
    from_assets = load_model(ModelConfig(source="max", assets=d / "assets", class_labels=d / "labels.csv",
                                         clip_seconds=3.0))
    from_file = load_model(ModelConfig(source="max", path=d / "max.keras", class_labels=d / "labels.csv",
                                       clip_seconds=3.0))
    x = np.random.default_rng(1).uniform(-0.2, 0.2, (3, 48000)).astype(np.float32)
    np.testing.assert_array_equal(from_assets.forward(x), from_file.forward(x))
    rt = from_assets.runtime
    assert rt["gradients"] is False and rt["max_assets"]["checksums_verified"] is True
    assert {f["name"] for f in rt["files"]} == {"vggish_model.ckpt", "vggish_pca_params.npz", "classifier_model.h5"}
    assert all(len(f["sha512"]) == 128 for f in rt["files"])
    # the file also loads as a plain Keras model (layers registered), still black box under source = "max"
    assert main(["import-max", str(d / "missing"), "--out", str(d / "x.keras")]) == 2
    assert "not found" in capsys.readouterr().err


def test_max_factsheet_from_assets(max_setup, tmp_path):
    d = max_setup
    rng = np.random.default_rng(2)
    (tmp_path / "wavs").mkdir()
    rows = []
    for i in range(12):
        write_wav_pcm16(tmp_path / "wavs" / f"{i}.wav", rng.uniform(-0.3, 0.3, 16000 * 2).astype(np.float32),
                        sample_rate=16000)
        rows.append(f"{i}.wav,event {i % 3}")
    (tmp_path / "clips.csv").write_text("file,labels\n" + "\n".join(rows) + "\n")
    (tmp_path / "run.toml").write_text(f'''
[model]
source = "max"
assets = "{d / 'assets'}"
class_labels = "{d / 'labels.csv'}"
clip_seconds = 2.0
[dataset]
kind = "folder"
wav_dir = "wavs"
csv = "clips.csv"
class_labels = "{d / 'labels.csv'}"
[metrics]
bootstrap_resamples = 10
[robustness]
enabled = true
norms = ["linf"]
n_clips = 1
iterations = 2
k = 3
init_eval = 5
max_eval = 10
init_size = 10
workers = 1
[bias]
enabled = false
''')
    assert main(["run", "--config", str(tmp_path / "run.toml"), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    doc = json.loads((tmp_path / "out" / "factsheet.json").read_text())
    assert doc["model"]["source"] == "max" and doc["model"]["n_classes"] == 8
    assert doc["model"]["runtime"]["max_assets"]["checksums_verified"] is True
    assert doc["robustness"]["status"] == "evaluated"
    cfg_wrapper = (tmp_path / "run.toml").read_text().replace('clip_seconds = 2.0', 'wrapper = "tensorflow"')
    (tmp_path / "grad.toml").write_text(cfg_wrapper)
    assert main(["run", "--config", str(tmp_path / "grad.toml"), "--out", str(tmp_path / "o2"), "--quiet"]) == 2
