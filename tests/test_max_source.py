"""The MAX Audio Classifier rebuilt from its three asset files (factsheet.models.max_audio).

Stand-in assets of the real formats come from tests/_max_assets.py (reduced VGGish width
for the fast tests; the full-width check is marked slow). The reference is an independent
numpy implementation of the MAX code (mel_features / vggish_input / vggish_slim /
vggish_postprocess / model.classifier_pre_process and the h5's own model_config).

Tolerances: the model runs VGGish in float32 (as MAX's TF1 graph does) while the reference
runs it in float64, so embeddings agree to ~1e-5 relative and a PCA value that lies within
that distance of a quantisation boundary (k * 4/255 - 2) can land one uint8 level away.
Hence: quantised embeddings may differ by at most 1 level in at most 1 % of entries; scores
computed from the model's own quantised sequence agree to 1e-5; end-to-end scores agree to
2e-3 (one flipped level moves a score by ~1e-4 here).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time

import h5py
import numpy as np
import pytest

import _max_assets as A

from factsheet.errors import InputError

CLIP = 16000


@pytest.fixture(scope="module")
def mx():
    import factsheet.models.max_audio as mx

    return mx


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("max_assets")
    A.make_standin_assets(folder, seed=0, width=4)
    return folder


@pytest.fixture(scope="module")
def model(mx, assets):
    return mx.build_max_model(assets)


@pytest.fixture(scope="module")
def reference(assets):
    ckpt = A.read_checkpoint_arrays(assets / "vggish_model.ckpt")
    with np.load(assets / "vggish_pca_params.npz") as pca:
        return ckpt, pca["pca_eigen_vectors"], pca["pca_means"]


def _clips(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * CLIP)
    t = np.arange(n) / CLIP
    return np.stack([0.3 * rng.standard_normal(n),
                     0.4 * np.sin(2 * np.pi * (300 + 900 * t) * t) + 0.05 * rng.standard_normal(n)]).astype(np.float32)


def _parts(model, x):
    """Model's own intermediate outputs: log-mel examples, embeddings, quantised sequence (uint8 levels)."""
    import keras

    sub = keras.Model(model.input, [model.get_layer("examples").output, model.get_layer("vggish").output,
                                    model.get_layer("pca_quantize").output])
    ex, emb, z = (np.asarray(v) for v in sub(x, training=False))
    return ex[..., 0], emb, np.round(z * 128.0 + 128.0).astype(np.int64)


def _one_line(exc: InputError) -> str:
    line = str(exc)
    assert "\n" not in line and line.startswith("error: ")
    return line


# ------------------------------------------------------------------------------------------
# Equality with the independent numpy computation
# ------------------------------------------------------------------------------------------


def test_frontend_matches_vggish_input(model):
    x = _clips(3.0, seed=1)
    ex, _, _ = _parts(model, x)
    for i in range(2):
        ref = A.waveform_to_examples(x[i])
        assert ex[i].shape == ref.shape == (3, 96, 64)
        np.testing.assert_allclose(ex[i], ref, atol=1e-4, rtol=0)  # float32 STFT/mel vs float64


def test_rebuilt_model_equals_numpy_reference(model, assets, reference):
    ckpt, eigen_vectors, means = reference
    x = _clips(4.0, seed=2)
    _, emb, q = _parts(model, x)
    scores = np.asarray(model(x, training=False))
    n_diff = n_all = 0
    for i in range(2):
        ref_emb = A.vggish_forward(A.waveform_to_examples(x[i]), ckpt)
        np.testing.assert_allclose(emb[i], ref_emb, rtol=0, atol=1e-4 * np.abs(ref_emb).max())
        pca = A.pca_project(ref_emb, eigen_vectors, means)
        assert 0.05 < np.std(pca) and np.mean(np.abs(pca) >= 2.0) < 0.05  # stand-in not saturated
        ref_q = A.quantize(pca).astype(np.int64)
        assert np.abs(q[i] - ref_q).max() <= 1
        n_diff += np.count_nonzero(q[i] - ref_q)
        n_all += ref_q.size
        # classifier from the model's own quantised sequence: float32 vs float64 only
        own = A.classifier_forward(assets / "classifier_model.h5", A.max_sequence(q[i].astype(np.uint8)))
        np.testing.assert_allclose(scores[i], own[0], atol=1e-5, rtol=0)
        # fully independent: allows the rare one-level flips
        ref = A.classifier_forward(assets / "classifier_model.h5", A.max_sequence(ref_q.astype(np.uint8)))
        np.testing.assert_allclose(scores[i], ref[0], atol=2e-3, rtol=0)
    assert n_diff <= 0.01 * n_all
    assert scores.shape == (2, 527) and 0.0 < scores.min() and scores.max() < 1.0
    assert scores.std() > 0.05  # not all saturated or constant


@pytest.mark.parametrize("variant", ["kong", "yu"])
def test_classifier_rebuilt_from_model_config(mx, tmp_path, variant):
    rng = np.random.default_rng(3)
    config, weights = A.classifier_graph(rng, variant=variant, n_classes=31, hidden=48)
    A.write_keras2_h5(tmp_path / "c.h5", config, weights)
    clf, info = mx.build_classifier(tmp_path / "c.h5")
    assert info["keras_version"] == "2.2.4" and info["time_steps"] == 10
    assert info["layers"].count("Lambda") == 2
    x = ((rng.integers(0, 256, (3, 10, 128)) - 128) / 128).astype(np.float32)
    np.testing.assert_allclose(np.asarray(clf(x, training=False)), A.classifier_forward(tmp_path / "c.h5", x),
                               atol=1e-5, rtol=0)
    dropout = [layer.rate for layer in clf.layers if layer.__class__.__name__ == "Dropout"]
    assert dropout == [0.5] * 3 if variant == "kong" else [0.4] * 3


# ------------------------------------------------------------------------------------------
# Sequence rule (model.classifier_pre_process)
# ------------------------------------------------------------------------------------------


def test_short_clip_repeats_its_example_sequence(model, assets):
    x = _clips(3.0, seed=4)  # 3 examples -> 0 1 2 0 1 2 0 1 2 0
    _, _, q = _parts(model, x)
    assert q.shape == (2, 3, 128)
    scores = np.asarray(model(x, training=False))
    classifier = model.get_layer("classifier")
    for i in range(2):
        seq = A.max_sequence(q[i].astype(np.uint8))
        np.testing.assert_array_equal(seq[0], ((q[i][[0, 1, 2, 0, 1, 2, 0, 1, 2, 0]] - 128) / 128))
        np.testing.assert_allclose(scores[i], np.asarray(classifier(seq, training=False))[0], atol=1e-6, rtol=0)


def test_long_clip_keeps_first_ten_examples(model):
    x = _clips(12.0, seed=5)
    np.testing.assert_allclose(np.asarray(model(x, training=False)),
                               np.asarray(model(x[:, :10 * CLIP], training=False)), atol=1e-6, rtol=0)


def test_shortest_clip(mx, model):
    import tensorflow as tf

    assert mx.MIN_SAMPLES == 15600
    assert np.asarray(model(np.zeros((1, mx.MIN_SAMPLES), np.float32))).shape == (1, 527)
    with pytest.raises(tf.errors.InvalidArgumentError, match="shorter than one 0.96 s example"):
        model(np.zeros((1, mx.MIN_SAMPLES - 1), np.float32))


def test_black_box_only(model):
    import tensorflow as tf

    x = tf.constant(_clips(1.0, seed=6))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x, training=False)
    assert tape.gradient(y, x) is None  # uint8 quantisation: no gradient path


# ------------------------------------------------------------------------------------------
# Saving, import record, BlackBox forward
# ------------------------------------------------------------------------------------------


def test_import_save_load_and_blackbox(mx, model, assets, tmp_path):
    import keras

    from factsheet.models.adapter import make_forward

    out = tmp_path / "out" / "max.keras"
    record = mx.import_max(assets, out)
    assert out.is_file() and sorted(p.name for p in out.parent.iterdir()) == ["max.keras"]
    assert record["out_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert record["assets_sha512"] == {n: hashlib.sha512((assets / n).read_bytes()).hexdigest() for n in mx.ASSETS}
    assert record["checked_by_sha512sums"] == sorted(mx.ASSETS) and record["gradients"] is False
    assert (record["n_classes"], record["n_examples"], record["sample_rate"]) == (527, 10, 16000)
    assert record["n_parameters"] == model.count_params()
    assert record["classifier"]["keras_version"] == "2.2.4"

    loaded = keras.models.load_model(out, safe_mode=True)
    assert "Lambda" not in {layer.__class__.__name__ for layer in loaded.get_layer("classifier").layers}
    x = _clips(10.0, seed=7)
    np.testing.assert_array_equal(np.asarray(loaded(x, training=False)), np.asarray(model(x, training=False)))

    from art.estimators.classification import BlackBoxClassifier

    estimator = BlackBoxClassifier(make_forward(loaded, n_samples=10 * CLIP), input_shape=(10 * CLIP,),
                                   nb_classes=527, clip_values=(-1.0, 1.0), preprocessing=None)
    estimator.predict(x[:1])  # trace once
    start = time.perf_counter()
    scores = estimator.predict(x, batch_size=2)
    print(f"\nBlackBox forward (2, 160000), stand-in VGGish width 4: {time.perf_counter() - start:.3f} s")
    np.testing.assert_allclose(scores, np.asarray(model(x, training=False)), atol=1e-6, rtol=0)


def test_import_refuses_other_suffix(mx, assets, tmp_path):
    with pytest.raises(InputError) as err:
        mx.import_max(assets, tmp_path / "max.h5")
    assert err.value.field == "suffix"


# ------------------------------------------------------------------------------------------
# Bad assets: one InputError line each
# ------------------------------------------------------------------------------------------


@pytest.fixture
def copy(assets, tmp_path):
    folder = tmp_path / "assets"
    shutil.copytree(assets, folder)
    return folder


def test_checksums_returned_without_sums_file(mx, copy):
    (copy / "sha512sums.txt").unlink()
    digests = mx.verify_checksums(copy)
    assert set(digests) == set(mx.ASSETS) and all(len(d) == 128 for d in digests.values())


def test_corrupted_sha512sums_names_the_file(mx, copy):
    sums = copy / "sha512sums.txt"
    lines = sums.read_text().splitlines()
    i = next(k for k, line in enumerate(lines) if line.endswith("vggish_pca_params.npz"))
    lines[i] = ("0" if lines[i][0] != "0" else "1") + lines[i][1:]
    sums.write_text("\n".join(lines))
    with pytest.raises(InputError) as err:
        mx.verify_checksums(copy)
    assert err.value.source.endswith("vggish_pca_params.npz") and err.value.field == "sha512"
    assert err.value.value == hashlib.sha512((copy / "vggish_pca_params.npz").read_bytes()).hexdigest()[:16]
    _one_line(err.value)


def test_tampered_asset_fails_checksum(mx, copy):
    data = bytearray((copy / "classifier_model.h5").read_bytes())
    data[-100] ^= 0xFF
    (copy / "classifier_model.h5").write_bytes(bytes(data))
    with pytest.raises(InputError) as err:
        mx.build_max_model(copy)
    assert err.value.source.endswith("classifier_model.h5") and err.value.field == "sha512"


def test_malformed_sums_line(mx, copy):
    (copy / "sha512sums.txt").write_text("not a digest line\n")
    with pytest.raises(InputError) as err:
        mx.verify_checksums(copy)
    assert err.value.source.endswith("sha512sums.txt") and err.value.field == "line 1"


@pytest.mark.parametrize("name", ["vggish_model.ckpt", "vggish_pca_params.npz", "classifier_model.h5"])
def test_missing_asset(mx, copy, name):
    (copy / name).unlink()
    with pytest.raises(InputError) as err:
        mx.build_max_model(copy)
    assert err.value.source.endswith(name) and "not found" in _one_line(err.value)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_bad_h5(mx, copy, damage):
    h5 = copy / "classifier_model.h5"
    data = h5.read_bytes()
    h5.write_bytes(data[: len(data) // 2] if damage == "truncated" else np.random.default_rng(0).bytes(4096))
    A.write_sha512sums(copy)  # consistent sums: the loader itself must refuse the file
    with pytest.raises(InputError) as err:
        mx.build_max_model(copy)
    assert err.value.source.endswith("classifier_model.h5")
    _one_line(err.value)


def test_garbage_checkpoint(mx, copy):
    (copy / "vggish_model.ckpt").write_bytes(np.random.default_rng(1).bytes(10000))
    (copy / "sha512sums.txt").unlink()
    with pytest.raises(InputError) as err:
        mx.build_max_model(copy)
    assert err.value.source.endswith("vggish_model.ckpt")
    _one_line(err.value)


def test_pca_without_means(mx, copy):
    with np.load(copy / "vggish_pca_params.npz") as pca:
        e = pca["pca_eigen_vectors"]
    np.savez(copy / "vggish_pca_params.npz", pca_eigen_vectors=e)
    with pytest.raises(InputError) as err:
        mx.build_max_model(copy, verify=False)
    assert err.value.source.endswith("vggish_pca_params.npz") and err.value.field == "pca_means"


def _edit_model_config(h5, edit) -> None:
    with h5py.File(h5, "r+") as f:
        config = json.loads(f.attrs["model_config"].decode())
        edit(config)
        f.attrs["model_config"] = np.bytes_(json.dumps(config).encode())


def test_unknown_layer_class(mx, copy):
    def edit(config):
        layer = next(entry for entry in config["config"]["layers"] if entry["name"] == "dropout_3")
        layer["class_name"] = "GaussianDropout"

    _edit_model_config(copy / "classifier_model.h5", edit)
    with pytest.raises(InputError) as err:
        mx.build_max_model(copy, verify=False)
    line = _one_line(err.value)
    assert err.value.source.endswith("classifier_model.h5")
    assert "dropout_3" in err.value.field and err.value.value == "GaussianDropout"
    assert "classifier_model.h5" in line and "GaussianDropout" in line


def test_unrecognised_lambda_is_refused_not_run(mx, copy):
    def edit(config):
        layer = next(entry for entry in config["config"]["layers"] if entry["name"] == "lambda_1")
        layer["config"]["function"] = A.func_dump(A.max_pooling)

    _edit_model_config(copy / "classifier_model.h5", edit)
    with pytest.raises(InputError) as err:
        mx.build_max_model(copy, verify=False)
    assert "lambda_1" in err.value.field and err.value.value == "Lambda"


def test_checkpoint_missing_variable(mx, copy):
    arrays = A.read_checkpoint_arrays(copy / "vggish_model.ckpt")
    del arrays["vggish/conv4/conv4_2/biases"]
    (copy / "vggish_model.ckpt").unlink()
    A.write_v1_checkpoint(copy / "vggish_model.ckpt", arrays)
    with pytest.raises(InputError) as err:
        mx.build_max_model(copy, verify=False)
    assert err.value.source.endswith("vggish_model.ckpt") and err.value.value == "vggish/conv4/conv4_2/biases"


# ------------------------------------------------------------------------------------------
# Full-size VGGish (288 MB checkpoint): slow
# ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_full_width_vggish(mx, tmp_path):
    import keras

    from factsheet.models.adapter import make_forward

    start = time.perf_counter()
    A.make_standin_assets(tmp_path / "assets", seed=1, width=None)
    made = time.perf_counter() - start
    start = time.perf_counter()
    record = mx.import_max(tmp_path / "assets", tmp_path / "max.keras")
    imported = time.perf_counter() - start
    assert record["n_parameters"] > 72_000_000
    start = time.perf_counter()
    loaded = keras.models.load_model(tmp_path / "max.keras", safe_mode=True)
    load = time.perf_counter() - start
    assert [layer.filters for layer in loaded.get_layer("vggish").convs] == [64, 128, 256, 256, 512, 512]

    x = _clips(10.0, seed=8)
    forward = make_forward(loaded, n_samples=10 * CLIP)
    forward(x)
    start = time.perf_counter()
    scores = forward(x)
    fwd = time.perf_counter() - start
    print(f"\nfull width: assets {made:.1f} s, import_max {imported:.1f} s, load {load:.1f} s, "
          f"forward (2, 160000) {fwd:.2f} s, {record['n_parameters']} parameters")

    ckpt = A.read_checkpoint_arrays(tmp_path / "assets" / "vggish_model.ckpt")
    with np.load(tmp_path / "assets" / "vggish_pca_params.npz") as pca:
        e, mu = pca["pca_eigen_vectors"], pca["pca_means"]
    ref_q = A.quantize(A.pca_project(A.vggish_forward(A.waveform_to_examples(x[0]), ckpt), e, mu))
    ref = A.classifier_forward(tmp_path / "assets" / "classifier_model.h5", A.max_sequence(ref_q))
    np.testing.assert_allclose(scores[0], ref[0], atol=2e-3, rtol=0)
