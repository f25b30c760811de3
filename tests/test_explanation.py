"""The Explanation section against planted effects: a tiny Keras model that responds to one time-frequency
cell must have that cell first, beat the random and the loudest-first orders, and lose it once its weights
are randomised; the occlusion's STFT, passes, grid and events against analytic values."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json

import numpy as np
import pytest
import soundfile as sf

from factsheet.config import ExplanationConfig, MetricsConfig, config_from_dict
from factsheet.datasets.base import ClassLabel
from factsheet.errors import InputError
from factsheet.explanation import evaluate_explanation, explain_clip
from factsheet.explanation import occlusion, stats
from factsheet.explanation.randomise import randomised_weights
from factsheet.explanation.section import _wav

SR, N = 16000, 16000
GRID = occlusion.make_grid(n_bands=4, n_slices=4, sample_rate=SR, n_samples=N)
PLANTED = (2, 1)  # band 2 (about 1.5-3.3 kHz), slice 1 (0.25-0.5 s)
CELL = PLANTED[0] * GRID.n_slices + PLANTED[1]
TONE_HZ = 2200.0


def _clip(rng: np.random.Generator, *, tone: bool) -> np.ndarray:
    t = np.arange(N) / SR
    x = 0.01 * rng.standard_normal(N) + 0.4 * np.sin(2 * np.pi * 300 * t + rng.uniform(0, 6))  # loud, low, always
    if tone:
        a, b = GRID.slice_samples(PLANTED[1])
        x[a:b] += 0.08 * np.sin(2 * np.pi * TONE_HZ * t[a:b] + rng.uniform(0, 6)) * np.hanning(b - a)
    return x.astype(np.float32)


def _planted_model():
    """Class 0: energy of a 2.1-2.3 kHz filter bank inside slice 1 (a Dense layer of windowed sinusoids);
    class 1: overall loudness. Sigmoid of a log-energy, calibrated on clips with and without the tone."""
    import keras

    a, b = GRID.slice_samples(PLANTED[1])
    t = np.arange(N) / SR
    w = np.zeros((N, 10), np.float32)
    for k, f in enumerate(np.linspace(2100, 2300, 5)):
        w[a:b, 2 * k] = np.cos(2 * np.pi * f * t[a:b]) * np.hanning(b - a)
        w[a:b, 2 * k + 1] = np.sin(2 * np.pi * f * t[a:b]) * np.hanning(b - a)
    inp = keras.Input(shape=(N,))
    proj = keras.layers.Dense(10, use_bias=False, name="cell_filter")(inp)
    cell = keras.ops.log(keras.ops.sum(proj ** 2, axis=1, keepdims=True) + 1e-6)
    loud = keras.ops.log(keras.ops.mean(inp ** 2, axis=1, keepdims=True) + 1e-9)
    model = keras.Model(inp, keras.ops.concatenate([cell, loud], axis=1))
    model.get_layer("cell_filter").set_weights([w])
    rng = np.random.default_rng(99)
    on, off = (model(np.stack([_clip(rng, tone=v) for _ in range(4)])).numpy() for v in (True, False))
    mid, span = (on.mean(0) + off.mean(0)) / 2, np.maximum(np.abs(on.mean(0) - off.mean(0)), 1e-3)
    scale = keras.ops.convert_to_tensor((6.0 / span).astype(np.float32))
    shift = keras.ops.convert_to_tensor(mid.astype(np.float32))
    out = keras.ops.sigmoid((model.outputs[0] - shift) * scale)
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def planted():
    model = _planted_model()
    rng = np.random.default_rng(0)
    x = np.stack([_clip(rng, tone=i < 6) for i in range(14)])
    labels = np.zeros((14, 2), np.uint8)
    labels[:6, 0] = 1
    predict = (lambda w: model(np.asarray(w, np.float32)).numpy())
    return model, x, labels, predict


SETTINGS = ExplanationConfig(enabled=True, n_bands=4, n_slices=4, n_per_class=6, n_checked=6, random_orders=4,
                             deletion_steps=4, fill="mean", attenuation_db=15.0, max_passes=8, fill_clips=14)
BOOT = MetricsConfig(bootstrap_resamples=200, confidence=0.95, seed=0)
CLASSES = [ClassLabel(index=0, mid="/m/cell", display_name="Cell"), ClassLabel(index=1, mid="/m/loud",
                                                                               display_name="Loud")]


def _explain(planted, *, keras_model=True, settings=SETTINGS, events=None):
    model, x, labels, predict = planted
    return evaluate_explanation(waveforms=x, labels=labels, scores=predict(x), class_labels=CLASSES,
                                clip_ids=[f"c{i}" for i in range(len(x))], predict=predict, sample_rate=SR,
                                settings=settings, bootstrap=BOOT, keras_model=model if keras_model else None,
                                events=events, durations_s=None if events is None else [1.0] * len(x))


@pytest.fixture(scope="module")
def section(planted):
    return _explain(planted)


def test_the_planted_cell_comes_first(planted, section):
    sec, _ = section
    _, x, _, predict = planted
    assert sec["clips"]["n_explained"] == 6 and sec["per_class"][0]["top_band"] == PLANTED[0]
    for i in range(6):
        r = explain_clip(waveform=x[i], grid=GRID, fill=np.zeros(occlusion.N_FFT // 2 + 1), predict=predict,
                         target_db=15.0, max_passes=8)
        assert int(np.argmax(r["importance"][:, 0])) == CELL
        assert r["n_queries"] == 1 + GRID.n_cells and r["importance"].shape == (GRID.n_cells, 2)
    ex = sec["examples"][0]
    assert (ex["label"], ex["band"], ex["slice"]) == ("Cell", *PLANTED)
    assert ex["low_hz"] < TONE_HZ < ex["high_hz"] and ex["start_s"] == 0.25 and ex["end_s"] == 0.5
    assert ex["drop"] > 3 and ex["score"] > 0.9 > 0.5 > ex["score_without"]


def test_the_map_beats_random_and_loudness_orders(section):
    f = section[0]["faithfulness"]
    assert f["n_clips"] == 6 and f["steps"] == [0, 4, 8, 12, 16]
    assert f["beats_random"] and f["beats_loudness"]
    assert f["vs_loudness"]["high"] < 0 and f["vs_random"]["high"] < 0
    assert f["area"]["importance"] < f["area"]["loudness"] and f["area"]["importance"] < f["area"]["random"]
    assert "says more than where the clip is loud" in section[0]["findings"][0]


def test_randomised_weights_lose_the_cell_and_the_check_sees_it(planted, section):
    model, x, _, predict = planted
    mr = section[0]["sanity"]["model_randomisation"]
    assert mr["status"] == "run" and mr["passed"] and mr["same_top_cell_share"] < 0.5
    trained = [w.copy() for w in model.get_weights()]
    with randomised_weights(model, seed=0):
        r = explain_clip(waveform=x[0], grid=GRID, fill=np.zeros(occlusion.N_FFT // 2 + 1), predict=predict,
                         target_db=15.0, max_passes=8)
        assert int(np.argmax(r["importance"][:, 0])) != CELL
    assert all(np.array_equal(a, b) for a, b in zip(trained, model.get_weights()))  # restored


def test_score_only_model_cannot_be_randomised(planted):
    sec, _ = _explain(planted, keras_model=False, settings=dataclasses.replace(SETTINGS, n_checked=2))
    mr = sec["sanity"]["model_randomisation"]
    assert mr["status"] == "not_possible" and "not possible for a score-only model" in mr["reason"]
    assert sec["sanity"]["random_logit"]["n"] == 6


def test_same_settings_give_identical_section_and_audio(planted, section):
    again = _explain(planted)
    assert json.dumps(again[0], sort_keys=True) == json.dumps(section[0], sort_keys=True)
    assert again[1] == section[1] and section[1]
    files = section[0]["examples"][0]["audio"]
    assert sorted(section[1]) == sorted((files["alone"], files["without"]))
    assert hashlib.sha256(section[1][files["alone"]]).hexdigest() == files["alone_sha256"]


def test_audio_files_are_the_cell_and_the_clip_without_it(planted, section):
    sec, audio = section
    files = sec["examples"][0]["audio"]
    alone, rate = sf.read(io.BytesIO(audio[files["alone"]]))
    without, _ = sf.read(io.BytesIO(audio[files["without"]]))
    assert rate == SR and without.size == N and alone.size == 4000 + 2 * 800  # slice + 50 ms margins
    spec = np.abs(np.fft.rfft(alone))
    assert abs(np.fft.rfftfreq(alone.size, 1 / SR)[np.argmax(spec)] - TONE_HZ) < 20  # the tone, not the hum
    budget0 = _explain(planted, settings=dataclasses.replace(SETTINGS, audio_budget_kb=0, n_checked=2))
    assert budget0[1] == {} and all(e["audio"] is None for e in budget0[0]["examples"])


def test_localisation_against_known_events(planted):
    events = [((0, 0.25, 0.5),) if i < 6 else () for i in range(14)]
    loc = _explain(planted, settings=dataclasses.replace(SETTINGS, n_checked=2), events=events)[0]["localisation"]
    assert loc["status"] == "run" and loc["n_pairs"] == 6 and loc["auc"]["mean"] == 1.0


def test_event_slices_follow_repeated_short_clips():
    edges = np.linspace(0, 2.0, 9)  # 0.25 s slices of a 2 s input
    inside = stats.event_slices(((3, 0.0, 0.3), (1, 0.5, 0.6), (3, 0.55, 0.75)), class_index=3,
                                slice_edges_s=edges, clip_s=1.0)
    # 0-0.3 s covers slice 0 and 0.05 s of slice 1; 0.55-0.75 s covers 0.2 s of slice 2; the clip repeats at 1 s
    assert inside.tolist() == [True, False, True, False] * 2
    assert stats.localisation_auc(np.array([3.0, 0, 2, 1]), np.array([True, False, True, False])) == 1.0
    assert stats.localisation_auc(np.ones(4), np.ones(4, bool)) is None


def test_stft_reconstructs_and_slices_equal_whole_clip_passes():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, N))
    sft = occlusion.stft_op(SR)
    assert np.max(np.abs(sft.istft(sft.stft(x), k1=N) - x)) < 1e-12
    fill = np.full(occlusion.N_FFT // 2 + 1, 0.3)
    per_slice, att, _ = occlusion.occlude_cells(x[0], grid=GRID, fill=fill, target_db=20, max_passes=4)
    sets = np.eye(GRID.n_cells, dtype=bool)[[0, CELL, GRID.n_cells - 1]]
    whole, att2 = occlusion.occlude_masks(x[0], sets, grid=GRID, fill=fill, target_db=20, max_passes=4)
    assert np.allclose(per_slice[[0, CELL, GRID.n_cells - 1]], whole, atol=1e-6)
    assert np.allclose(att[[0, CELL, GRID.n_cells - 1]], att2)


def test_more_passes_remove_more_and_silence_attenuation_is_the_energy_ratio():
    x = _clip(np.random.default_rng(2), tone=True).astype(np.float64)
    sft = occlusion.stft_op(SR)
    bins = occlusion.band_bins(GRID, sft)
    frames = occlusion.frame_slices(GRID, sft, N)
    mask = ((bins == 0)[:, None] & (frames == 2)[None, :])[None]
    zero = np.zeros(bins.size)
    one = occlusion.fill_and_project(x[None], mask, fill=zero, sft=sft, target_db=60, max_passes=1)
    five = occlusion.fill_and_project(x[None], mask, fill=zero, sft=sft, target_db=60, max_passes=5)
    assert five[2][0] == 5 and five[1][0] > one[1][0] + 5  # one pass leaves much of the cell (the pitfall)
    energy = (lambda y: float(np.sum(np.abs(sft.stft(y[None]))[mask] ** 2)))
    assert five[1][0] == pytest.approx(10 * np.log10(energy(x) / energy(five[0][0])), rel=1e-9)


def test_grid_is_mel_spaced_with_edges_in_hz_and_seconds():
    g = occlusion.make_grid(n_bands=8, n_slices=8, sample_rate=16000, n_samples=32000)
    mel = occlusion.hz_to_mel(g.band_edges_hz)
    assert occlusion.hz_to_mel(700.0) == pytest.approx(2595 * np.log10(2))
    assert np.allclose(np.diff(mel), mel[-1] / 8) and g.band_edges_hz[0] == 0 and g.band_edges_hz[-1] == 8000
    assert g.slice_edges_s.tolist() == [k * 0.25 for k in range(9)] and g.cell(9) == (1, 1)


def test_wav_bytes_round_trip():
    x = np.array([0.0, 0.5, -0.5, 1.5, -1.5], np.float32)
    y, rate = sf.read(io.BytesIO(_wav(x, 8000)), dtype="int16")
    assert rate == 8000 and y.tolist() == [0, 16384, -16384, 32767, -32768]


@pytest.mark.parametrize("key, value, match", [
    ("fill", "noise", "explanation.fill"), ("n_per_class", 0, "explanation.n_per_class"),
    ("threshold", 1.0, "explanation.threshold"), ("attenuation_db", 0, "explanation.attenuation_db"),
    ("deletion_steps", 100, "explanation.deletion_steps"), ("n_checked", 1, "explanation.n_checked"),
    ("colour", 1, "explanation.colour")])
def test_bad_settings_are_one_line_errors(tmp_path, key, value, match):
    with pytest.raises(InputError, match=match) as err:
        config_from_dict({"explanation": {key: value}}, source="cfg.toml", base_dir=tmp_path)
    assert "\n" not in str(err.value)


def test_demo_report_links_embeds_and_rerenders_its_audio(demo_report, tmp_path):
    """The WAV files lie beside the report (their sha256 in the JSON), the Markdown links them, the HTML
    embeds them as data: audio under ``media-src data:``, and ``factsheet render`` copies them."""
    from factsheet.render import rerender

    out, doc = demo_report
    ex = doc["explanation"]
    files = [e["audio"] for e in ex["examples"] if e["audio"]]
    assert files and ex["sanity"]["model_randomisation"]["status"] == "run"
    md, html = (out / "factsheet.md").read_text(), (out / "factsheet.html").read_text()
    assert "media-src data:;" not in html and "img-src data:; media-src data:\"" in html
    for f in files:
        for k in ("alone", "without"):
            data = (out / f[k]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == f[f"{k}_sha256"] and f"]({f[k]})" in md
    assert html.count('<audio controls preload="none" src="data:audio/wav;base64,') == 2 * len(files)
    written, _ = rerender(out / "factsheet.json", tmp_path / "re")
    assert (tmp_path / "re" / "factsheet.html").read_text() == html
    assert (tmp_path / "re" / files[0]["alone"]).read_bytes() == (out / files[0]["alone"]).read_bytes()
