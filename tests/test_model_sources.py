"""Model sources: the demo classifier written as ONNX, TFLite, SavedModel and a Python entry gives the Keras
reference's scores and FactSheet metrics; layouts, fixed batches, logits, per-frame pooling and output choice
are checked against numpy; bad files of each format are one line and exit code 2."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit, softmax

from _model_formats import (export_int8_tflite, export_onnx, export_savedmodel, export_tflite, export_tiny_onnx, tiny_frame_logits,
                            tiny_frame_weights)
from factsheet.cli import main
from factsheet.config import ModelConfig, config_from_dict
from factsheet.datasets.base import ClassLabel, write_class_labels
from factsheet.errors import InputError
from factsheet.models.adapter import DEFAULT_LABELS, load_default_model, load_from_spec, load_model, model_spec

pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

N = 32000  # the demo model's 2 s input

PYTHON_ENTRY = '''
import numpy as np
from factsheet.models.adapter import load_keras_model

def make_forward(path, clip_samples, n_classes):
    """Factory: the demo model's forward, from the .keras file given as [model] path."""
    import tensorflow as tf
    model = load_keras_model(path)
    fn = tf.function(lambda x: model(x, training=False),
                     input_signature=[tf.TensorSpec((None, clip_samples), tf.float32)])
    return lambda x: fn(np.asarray(x, np.float32)).numpy()

def not_a_factory():
    return 42

def broken():
    raise RuntimeError("weights missing")
'''


@pytest.fixture(scope="module")
def formats(tmp_path_factory):
    """The demo model in every file format, its labels, and clips to score."""
    from factsheet.datasets.base import fit_length
    from factsheet.datasets.synthetic import make_synthetic

    d = tmp_path_factory.mktemp("formats")
    demo = load_default_model()
    km = demo.keras_model
    shutil.copy(DEFAULT_LABELS, d / "labels.csv")
    export_onnx(km, d / "demo_b1.onnx", n_samples=N, batch=1)
    export_tflite(km, d / "demo.tflite", n_samples=N)
    export_savedmodel(km, d / "demo_savedmodel", n_samples=N)
    export_savedmodel(km, d / "yamnet_style", n_samples=N, frame_samples=16000)
    shutil.copy(demo.path, d / "demo.keras")
    (d / "entry.py").write_text(PYTHON_ENTRY)
    ds = make_synthetic(split="eval", n_clips=12, seed=5)
    x, _ = fit_length(ds.clips, n_samples=N)
    return {"dir": d, "demo": demo, "x": x, "reference": km.predict(x, verbose=0)}


def config(formats, source, **kw) -> ModelConfig:
    d = formats["dir"]
    path = {"onnx": d / "demo_b1.onnx", "tflite": d / "demo.tflite", "savedmodel": d / "demo_savedmodel",
            "python": d / "demo.keras"}.get(source)
    base = dict(source=source, path=path, class_labels=d / "labels.csv")
    if source == "python":
        base.update(entry=f"{d / 'entry.py'}:make_forward", clip_seconds=2.0)
    base.update(kw)
    return ModelConfig(**base)


@pytest.mark.parametrize("source", ["onnx", "tflite", "savedmodel", "python"])
def test_scores_equal_the_keras_reference(formats, source):
    model = load_model(config(formats, source))
    got = model.forward(formats["x"])
    np.testing.assert_allclose(got, formats["reference"], atol=2e-5)
    assert model.clip_samples == N and model.sample_rate == 16000
    rt = model.runtime
    assert rt["gradients"] is False and rt["files"] and all(len(f["sha256"]) == 64 for f in rt["files"])
    assert rt["adaptation"]["frame_pooling"] is None and rt["adaptation"]["output_activation"] == "probabilities"
    # a worker process reloads the same model from its spec
    again = load_from_spec(json.loads(json.dumps(model_spec(model))))
    np.testing.assert_array_equal(again.forward(formats["x"][:3]), model.forward(formats["x"][:3]))


def test_runtime_records(formats):
    onnx = load_model(config(formats, "onnx"))
    assert onnx.runtime["runtime"] == "onnxruntime" and onnx.runtime["adaptation"]["fixed_batch"] == 1
    assert onnx.runtime["input"]["shape"] == [1, N] and onnx.runtime["n_parameters"] > 80000
    tfl = load_model(config(formats, "tflite"))
    assert tfl.runtime["runtime"] == "ai-edge-litert" and tfl.runtime["input"]["shape"] == [None, N]
    sm = load_model(config(formats, "savedmodel"))
    assert sm.runtime["signature"] == "serving_default" and sm.runtime["n_parameters"] == formats["demo"].runtime[
        "n_parameters"]
    assert len(sm.sha256) == 64 and len(sm.runtime["files"]) >= 2
    py = load_model(config(formats, "python"))
    assert py.runtime["entry"].endswith("entry.py:make_forward") and py.sha256 is not None


def test_fixed_batch_of_one_splits_batches(formats):
    model = load_model(config(formats, "onnx", batch_size=4))
    one_by_one = np.concatenate([model.forward(formats["x"][i:i + 1]) for i in range(5)])
    np.testing.assert_array_equal(model.forward(formats["x"][:5]), one_by_one)


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_yamnet_style_savedmodel_is_called_per_clip_and_pooled(formats, pooling):
    d = formats["dir"]
    model = load_model(ModelConfig(source="savedmodel", path=d / "yamnet_style", class_labels=d / "labels.csv",
                                   clip_seconds=2.0, pooling=pooling))
    x = formats["x"][:4]
    frames = np.asarray(formats["demo"].keras_model(x.reshape(8, 16000), training=False)).reshape(4, 2, -1)
    want = frames.max(axis=1) if pooling == "max" else frames.mean(axis=1)
    np.testing.assert_allclose(model.forward(x), want, atol=2e-5)
    ad = model.runtime["adaptation"]
    assert ad["layout"] == "samples" and ad["frame_pooling"] == pooling
    assert model.runtime["output"]["name"] == "scores"  # chosen by its class count among two outputs


def test_savedmodel_without_signatures_uses_its_traced_call(formats, tmp_path):
    export_savedmodel(formats["demo"].keras_model, tmp_path / "hub_style", n_samples=N, frame_samples=16000,
                      with_signature=False)
    model = load_model(ModelConfig(source="savedmodel", path=tmp_path / "hub_style",
                                   class_labels=formats["dir"] / "labels.csv", clip_seconds=2.0))
    x = formats["x"][:2]
    frames = np.asarray(formats["demo"].keras_model(x.reshape(4, 16000), training=False)).reshape(2, 2, -1)
    np.testing.assert_allclose(model.forward(x), frames.mean(axis=1), atol=2e-5)
    assert model.runtime["signature"] == "__call__" and model.runtime["output"]["name"] == "output_0"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    labels = [ClassLabel(index=i, mid=f"/t/{i}", display_name=f"class {i}") for i in range(5)]
    write_class_labels(d / "labels.csv", labels)
    (d / "labels.txt").write_text("".join(f"class {i}\n" for i in range(5)))
    w = tiny_frame_weights(n_classes=5, frame=400)
    export_tiny_onnx(d / "frames.onnx", weights=w, n_samples=4000)
    export_tiny_onnx(d / "flat.onnx", weights=w, n_samples=4000, layout="batch,samples", extra_output=False)
    export_tiny_onnx(d / "two_inputs.onnx", weights=w, n_samples=4000, extra_input=True)
    x = np.random.default_rng(0).uniform(-1, 1, (7, 4000)).astype(np.float32)
    return d, w, x


@pytest.mark.parametrize("output, pooling", [("logits-sigmoid", "mean"), ("logits-sigmoid", "max"),
                                             ("logits-softmax", "mean"), ("probabilities", "mean")])
def test_layout_logits_and_frame_pooling_match_numpy(tiny, output, pooling):
    d, w, x = tiny
    model = load_model(ModelConfig(source="onnx", path=d / "frames.onnx", class_labels=d / "labels.txt",
                                   sample_rate=8000, output=output, pooling=pooling, batch_size=3))
    logits = tiny_frame_logits(x, w)
    scores = {"logits-sigmoid": expit(logits), "logits-softmax": softmax(logits.astype(np.float64), axis=-1),
              "probabilities": logits}[output]
    want = scores.max(axis=1) if pooling == "max" else scores.mean(axis=1)
    np.testing.assert_allclose(model.forward(x), want, rtol=1e-5, atol=1e-6)
    assert model.clip_samples == 4000  # read from the model's fixed input length
    ad = model.runtime["adaptation"]
    assert ad["layout"] == "batch,1,samples" and ad["frame_pooling"] == pooling and ad["fixed_batch"] is None
    assert model.runtime["output"]["name"] == "framewise_logits"
    assert [c.display_name for c in model.class_labels] == [f"class {i}" for i in range(5)]


def test_attention_mask_input_is_fed_ones(tiny, tmp_path):
    d, w, x = tiny
    export_tiny_onnx(tmp_path / "masked.onnx", weights=w, n_samples=4000, mask_input=True, extra_output=False)
    model = load_model(ModelConfig(source="onnx", path=tmp_path / "masked.onnx", class_labels=d / "labels.csv",
                                   sample_rate=8000, output="logits-sigmoid"))
    np.testing.assert_allclose(model.forward(x), expit(tiny_frame_logits(x, w)).mean(axis=1), rtol=1e-5, atol=1e-6)
    assert any("attention_mask" in n for n in model.runtime["notes"])


def test_int8_quantised_tflite_maps_input_and_output(tiny, tmp_path):
    d, _, _ = tiny
    path, float_model = export_int8_tflite(tmp_path / "int8.tflite")
    model = load_model(ModelConfig(source="tflite", path=path, class_labels=d / "labels.csv", sample_rate=8000))
    x = np.random.default_rng(3).uniform(-0.5, 0.5, (6, 4000)).astype(np.float32)
    got, want = model.forward(x), float_model.predict(x, verbose=0)
    assert np.abs(got - want).max() < 2 / 256  # the int8 output's step is 1/256
    ad = model.runtime["adaptation"]
    assert ad["input_dtype"] == "int8" and ad["input_quantised"] and ad["fixed_batch"] == 1
    assert any("Quantised input" in n for n in model.runtime["notes"])


def test_plain_batch_layout(tiny):
    d, w, x = tiny
    model = load_model(ModelConfig(source="onnx", path=d / "flat.onnx", class_labels=d / "labels.csv",
                                   sample_rate=8000, output="logits-sigmoid"))
    np.testing.assert_allclose(model.forward(x), expit(tiny_frame_logits(x, w)).mean(axis=1), rtol=1e-5, atol=1e-6)
    assert model.runtime["adaptation"]["layout"] == "batch,samples"


def test_output_choice_by_name_and_ambiguity(tiny, tmp_path):
    d, w, x = tiny
    by_name = load_model(ModelConfig(source="onnx", path=d / "frames.onnx", class_labels=d / "labels.csv",
                                     sample_rate=8000, output_name="framewise_logits"))
    assert by_name.runtime["output"]["name"] == "framewise_logits"
    with pytest.raises(InputError, match="no such output"):
        load_model(ModelConfig(source="onnx", path=d / "frames.onnx", class_labels=d / "labels.csv",
                               sample_rate=8000, output_name="logits"))
    export_tiny_onnx(tmp_path / "ambiguous.onnx", weights=w, n_samples=4000, embedding_dim=5)
    with pytest.raises(InputError) as e:
        load_model(ModelConfig(source="onnx", path=tmp_path / "ambiguous.onnx", class_labels=d / "labels.csv",
                               sample_rate=8000))
    assert e.value.field == "model.output_name" and "2 end in 5 classes" in e.value.reason


def test_mismatches_are_one_line(tiny, formats, tmp_path):
    d, _, _ = tiny
    with pytest.raises(InputError) as e:
        load_model(ModelConfig(source="onnx", path=d / "two_inputs.onnx", class_labels=d / "labels.csv",
                               sample_rate=8000))
    assert e.value.field == "model inputs" and "source = 'python'" in e.value.reason
    with pytest.raises(InputError) as e:
        load_model(ModelConfig(source="onnx", path=d / "frames.onnx", class_labels=d / "labels.csv",
                               sample_rate=8000, clip_seconds=1.0))
    assert e.value.field == "model.clip_seconds" and "fixed to 4000 samples" in e.value.reason
    labels7 = [ClassLabel(index=i, mid="", display_name=f"c{i}") for i in range(7)]
    write_class_labels(tmp_path / "seven.csv", labels7)
    with pytest.raises(InputError) as e:
        load_model(dataclasses.replace(config(formats, "tflite"), class_labels=tmp_path / "seven.csv"))
    assert e.value.field == "output shape" and e.value.value == (1, 14)
    with pytest.raises(InputError) as e:
        load_model(ModelConfig(source="savedmodel", path=formats["dir"] / "demo_savedmodel",
                               class_labels=formats["dir"] / "labels.csv", signature="predict"))
    assert e.value.field == "model.signature" and "serving_default" in e.value.reason


@pytest.mark.parametrize("source, name, content", [
    ("onnx", "bad.onnx", b"\x08\x07garbage" * 10),
    ("tflite", "bad.tflite", b"TFL3" + b"\x00" * 60),
    ("tflite", "empty.tflite", b""),
    ("savedmodel", "bad_sm", b"not a protobuf \xff\xfe"),
])
def test_corrupt_files_are_one_line(formats, tmp_path, source, name, content):
    p = tmp_path / name
    if source == "savedmodel":
        p.mkdir()
        (p / "saved_model.pb").write_bytes(content)
    else:
        p.write_bytes(content)
    with pytest.raises(InputError) as e:
        load_model(ModelConfig(source=source, path=p, class_labels=formats["dir"] / "labels.csv", clip_seconds=2.0))
    line = e.value.line()
    assert name in line and "\n" not in line and "cannot load" in line


@pytest.mark.parametrize("entry, reason", [
    ("entry.py:missing", "has no function 'missing'"),
    ("entry.py:not_a_factory", "must return a forward function"),
    ("entry.py:broken", "the factory failed (RuntimeError: weights missing)"),
    ("nowhere.py:make_forward", "not found"),
    ("no_such_module_xyz:make", "cannot import no_such_module_xyz"),
])
def test_python_entry_errors(formats, entry, reason):
    d = formats["dir"]
    entry = f"{d / entry}" if ".py:" in entry else entry
    with pytest.raises(InputError) as e:
        load_model(config(formats, "python", entry=entry))
    assert reason in e.value.line()


def _run_config(d: Path, model: dict, *, attack: bool, workers: int = 1) -> dict:
    return {"model": model,
            "dataset": {"kind": "synthetic", "n_clips": 96, "seed": 3},
            "metrics": {"bootstrap_resamples": 20},
            "robustness": {"enabled": attack, "norms": ["l2"], "n_clips": 2, "iterations": 2, "k": 3,
                           "init_eval": 5, "max_eval": 20, "init_size": 10, "workers": workers, "mode": "fast"},
            "bias": {"enabled": False}}


def test_factsheet_metrics_equal_the_keras_reference_and_attack_runs(formats, tmp_path):
    """The same FactSheet numbers through every file source; a short HopSkipJump through each."""
    from factsheet.pipeline import run

    d = formats["dir"]
    models = {
        "default": {"source": "default"},
        "onnx": {"source": "onnx", "path": str(d / "demo_b1.onnx"), "class_labels": str(d / "labels.csv")},
        "tflite": {"source": "tflite", "path": str(d / "demo.tflite"), "class_labels": str(d / "labels.csv")},
        "savedmodel": {"source": "savedmodel", "path": str(d / "demo_savedmodel"),
                       "class_labels": str(d / "labels.csv")},
        "python": {"source": "python", "entry": f"{d / 'entry.py'}:make_forward", "path": str(d / "demo.keras"),
                   "class_labels": str(d / "labels.csv"), "clip_seconds": 2.0},
    }
    sheets = {}
    for name, m in models.items():
        cfg = config_from_dict(_run_config(d, m, attack=True), source="test.toml", base_dir=d)
        sheet, _ = run(cfg, out_dir=tmp_path / name)
        sheets[name] = sheet
        rob = sheet.robustness.hopskipjump["l2"]
        assert rob["n_attacked"] == 2 and rob["n_success"] >= 1, name
        assert sheet.model.source == name and sheet.model.runtime["format"]
    ref = sheets["default"].performance
    for name, sheet in sheets.items():
        p = sheet.performance
        for key in ("mAP", "mean_auc", "d_prime"):
            assert abs(getattr(p, key) - getattr(ref, key)) < 1e-4, (name, key)


def test_attack_in_worker_processes_reloads_the_onnx_model(formats, tmp_path):
    from factsheet.pipeline import run

    d = formats["dir"]
    m = {"source": "onnx", "path": str(d / "demo_b1.onnx"), "class_labels": str(d / "labels.csv")}
    one, _ = run(config_from_dict(_run_config(d, m, attack=True, workers=1), source="t.toml", base_dir=d),
                 out_dir=tmp_path / "w1")
    two, _ = run(config_from_dict(_run_config(d, m, attack=True, workers=2), source="t.toml", base_dir=d),
                 out_dir=tmp_path / "w2")
    assert one.robustness.hopskipjump == two.robustness.hopskipjump


def test_cli_refuses_gradient_wrapper_for_black_box_sources(formats, tmp_path, capsys):
    d = formats["dir"]
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[model]\nsource = "onnx"\npath = "{d / "demo_b1.onnx"}"\nclass_labels = "{d / "labels.csv"}"\n'
                   'wrapper = "tensorflow"\n')
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "model.wrapper = 'tensorflow'" in err and "black box" in err
    assert not (tmp_path / "out").exists()
