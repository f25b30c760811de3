"""Model adapter: safe loading, legacy h5, contract checks, ART wrappers, the log-mel frontend."""

import numpy as np
import pytest
import scipy.signal

keras = pytest.importorskip("keras")

from factsheet.datasets.base import ClassLabel  # noqa: E402
from factsheet.errors import InputError  # noqa: E402
from factsheet.models.adapter import (check_contract, load_keras_model, load_model, make_estimator,  # noqa: E402
                                      predict_scores)
from factsheet.models.architecture import build_classifier  # noqa: E402
from factsheet.models.layers import VGGISH, LogMelFrontend, min_samples_for_one_example  # noqa: E402

N = 16000


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    keras.utils.set_random_seed(3)
    model = build_classifier(n_classes=5)
    path = tmp_path_factory.mktemp("m") / "tiny.keras"
    model.save(path)
    return model, path


def labels(n):
    return [ClassLabel(index=i, mid=f"/x/{i}", display_name=f"c{i}") for i in range(n)]


def test_keras_file_round_trips_with_safe_mode(tiny):
    model, path = tiny
    loaded = load_keras_model(path)
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (3, N)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_lambda_layer_is_refused_by_safe_mode(tmp_path):
    inp = keras.Input(shape=(N,))
    out = keras.layers.Lambda(lambda t: t[:, :3] * 2.0)(inp)
    path = tmp_path / "lambda.keras"
    keras.Model(inp, out).save(path)
    with pytest.raises(InputError) as e:
        load_keras_model(path)
    assert "lambda.keras" in e.value.line() and "cannot load" in e.value.line()


def test_legacy_h5_loads(tmp_path):
    inp = keras.Input(shape=(N,))
    out = keras.layers.Dense(4, activation="sigmoid")(inp)
    model = keras.Model(inp, out)
    path = tmp_path / "legacy.h5"
    model.save(path)
    loaded = load_keras_model(path)
    x = np.ones((2, N), np.float32) * 0.01
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


@pytest.mark.parametrize("name, content", [("bad.keras", b"not a zip"), ("bad.h5", b"\x00" * 64)])
def test_corrupt_model_files(tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(InputError) as e:
        load_keras_model(p)
    assert name in e.value.line()


def test_wrong_suffix_and_missing(tmp_path):
    p = tmp_path / "model.pkl"
    p.write_bytes(b"x")
    with pytest.raises(InputError, match="suffix"):
        load_keras_model(p)
    with pytest.raises(InputError, match="not found"):
        load_keras_model(tmp_path / "none.keras")


def keras_config(path, n_classes, tmp_path, **kw):
    from factsheet.config import ModelConfig
    from factsheet.datasets.base import write_class_labels

    labels_path = tmp_path / f"labels{n_classes}.csv"
    write_class_labels(labels_path, labels(n_classes))
    return ModelConfig(source="keras", path=path, class_labels=labels_path, clip_seconds=N / 16000, **kw)


def test_contract_output_shape_mismatch(tiny, tmp_path):
    model, path = tiny
    with pytest.raises(InputError) as e:
        load_model(keras_config(path, 7, tmp_path))
    assert e.value.field == "output shape" and e.value.value == (1, 5)


@pytest.mark.parametrize("wrapper", ["blackbox", "tensorflow"])
def test_art_estimators_match_keras(tiny, wrapper, tmp_path):
    model, path = tiny
    loaded = load_model(keras_config(path, 5, tmp_path, wrapper=wrapper))
    check_contract(loaded)
    assert loaded.runtime["gradients"] and loaded.runtime["n_parameters"] == model.count_params()
    est = make_estimator(loaded, wrapper=wrapper)
    assert est.input_shape == (N,) and est.nb_classes == 5
    assert tuple(est.clip_values) == (-1.0, 1.0)
    x = np.random.default_rng(1).uniform(-0.3, 0.3, (7, N)).astype(np.float32)
    got = predict_scores(est, x, batch_size=3)
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def numpy_logmel(x, mel):
    """Independent log-mel: numpy framing, scipy's periodic Hann, numpy rfft."""
    win, hop, nfft = VGGISH["window_samples"], VGGISH["hop_samples"], VGGISH["fft_length"]
    n_frames = 1 + (len(x) - win) // hop
    frames = np.stack([x[i * hop:i * hop + win] for i in range(n_frames)])
    window = scipy.signal.get_window("hann", win, fftbins=True)
    spec = np.abs(np.fft.rfft(frames * window, n=nfft))
    return np.log(spec @ mel + VGGISH["log_offset"])


@pytest.mark.parametrize("n", [15600, 16000, 24123, 32000])
def test_logmel_matches_independent_numpy(n):
    fe = LogMelFrontend()
    x = np.random.default_rng(n).uniform(-0.5, 0.5, n).astype(np.float32)
    ours = fe(x[None]).numpy()[0]
    ref = numpy_logmel(x.astype(np.float64), fe._mel.numpy().astype(np.float64))
    assert ours.shape == (1 + (n - 400) // 160, 64)
    np.testing.assert_allclose(ours, ref, atol=2e-4)


def test_logmel_sine_peaks_in_its_band():
    fe = LogMelFrontend()
    t = np.arange(16000) / 16000
    mel = fe._mel.numpy()  # (257, 64)
    for f0 in (250.0, 1000.0, 4000.0):
        out = fe(np.sin(2 * np.pi * f0 * t)[None].astype(np.float32)).numpy()[0]
        band = int(np.argmax(out.mean(axis=0)))
        fft_bin = int(round(f0 / (16000 / 512)))
        assert mel[fft_bin, band] > 0, (f0, band)


def test_min_samples():
    assert min_samples_for_one_example() == 15600
    model = build_classifier(n_classes=2)
    assert model.predict(np.zeros((1, 15600), np.float32), verbose=0).shape == (1, 2)
