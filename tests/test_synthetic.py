"""Tests of the procedural synthetic dataset (factsheet.datasets.synthetic)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from factsheet.datasets.base import AudioDataset
from factsheet.datasets.synthetic import (
    BACKGROUNDS,
    CATEGORIES,
    SNR_BUCKETS,
    SYNTHETIC_CLASSES,
    VOICE_F0_HZ,
    VOICE_TYPES,
    _ClipPlan,
    _EventPlan,
    _generate_clip,
    _render_clip,
    make_synthetic,
)

SR = 16000
NAMES = [c.display_name for c in SYNTHETIC_CLASSES]
IDX = {name: i for i, name in enumerate(NAMES)}
META_COLUMNS = ["clip_id", "voice_type", "instrument_family", "n_events", "snr_db", "snr_bucket",
                "background", "duration_s"]
FAMILIES = {"Guitar": "plucked string", "Violin": "bowed string", "Flute": "woodwind", "Drum": "percussion"}


@pytest.fixture(scope="module")
def eval_set() -> AudioDataset:
    return make_synthetic(split="eval", n_clips=300, seed=7)


@pytest.fixture(scope="module")
def train_short() -> AudioDataset:
    # Short clips: the per-clip draws (classes, voices, ...) do not depend on the clip length.
    return make_synthetic(split="train", n_clips=1500, seed=11, min_seconds=0.3, max_seconds=0.3)


def _single_event(class_name: str, seed: int, *, seconds: float = 2.0, voice: str = "none",
                  background: str = "white", snr_db: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    n = int(seconds * SR)
    plan = _ClipPlan(n_samples=n, events=(_EventPlan(IDX[class_name], 0, n, 0.0),), voice_type=voice,
                     background=background, snr_db=snr_db)
    return _render_clip(plan, np.random.default_rng(seed), SR)


def _f0_autocorr(x: np.ndarray, sr: int, fmin: float = 60.0, fmax: float = 500.0) -> float:
    """Median f0 (Hz) over the louder half of 40 ms frames with a clear autocorrelation peak."""
    frame = int(0.04 * sr)
    lo, hi = int(sr / fmax), int(sr / fmin)
    win = np.hanning(frame)
    est, energy = [], []
    for a in range(0, x.shape[0] - frame, frame // 2):
        f = x[a:a + frame] * win
        ac = np.correlate(f, f, "full")[frame - 1:]
        if ac[0] <= 0:
            continue
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.3 * ac[0]:
            est.append(sr / lag)
            energy.append(ac[0])
    est, energy = np.array(est), np.array(energy)
    assert est.size > 0
    return float(np.median(est[energy >= np.median(energy)]))


# ---------------------------------------------------------------------------- ontology

def test_ontology():
    assert len(SYNTHETIC_CLASSES) == 14
    assert [c.index for c in SYNTHETIC_CLASSES] == list(range(14))
    assert NAMES == ["Speech", "Whistling", "Guitar", "Violin", "Flute", "Drum", "Dog", "Bird", "Cat",
                     "Siren", "Engine", "Alarm", "Rain", "Wind"]
    assert all(c.mid == f"/synth/{c.display_name.lower()}" for c in SYNTHETIC_CLASSES)
    assert set(CATEGORIES) == {"Human sounds", "Music", "Animals", "Vehicles, sirens and alarms", "Natural sounds"}
    for c in SYNTHETIC_CLASSES:
        assert c.display_name in CATEGORIES[c.category]
    assert sum(len(v) for v in CATEGORIES.values()) == 14


# ---------------------------------------------------------------------------- determinism

def test_bit_identical_twice():
    a = make_synthetic(split="eval", n_clips=12, seed=3)
    b = make_synthetic(split="eval", n_clips=12, seed=3)
    assert a.sha256() == b.sha256()
    assert all(np.array_equal(x, y) for x, y in zip(a.clips, b.clips))
    assert np.array_equal(a.labels, b.labels)
    assert a.metadata.equals(b.metadata)
    assert a.card == b.card


def test_different_seed_and_split_differ():
    a = make_synthetic(split="eval", n_clips=6, seed=3)
    b = make_synthetic(split="eval", n_clips=6, seed=4)
    t = make_synthetic(split="train", n_clips=6, seed=3)
    assert a.sha256() != b.sha256()
    assert a.sha256() != t.sha256()
    for x, y, z in zip(a.clips, b.clips, t.clips):
        assert not np.array_equal(x, y) and not np.array_equal(x, z)


def test_clip_does_not_depend_on_n_clips():
    a = make_synthetic(split="train", n_clips=4, seed=5)
    b = make_synthetic(split="train", n_clips=9, seed=5)
    for i in range(4):
        assert np.array_equal(a.clips[i], b.clips[i])
    assert np.array_equal(a.labels, b.labels[:4])
    assert a.metadata.equals(b.metadata.iloc[:4])


# ---------------------------------------------------------------------------- structure

def test_shapes_dtypes_range(eval_set):
    d = eval_set
    assert d.name == "synthetic-eval" and d.sample_rate == SR and d.n_clips == 300
    assert d.labels.dtype == np.uint8 and d.labels.shape == (300, 14)
    assert set(np.unique(d.labels)) <= {0, 1}
    for clip, dur in zip(d.clips, d.metadata["duration_s"]):
        assert clip.dtype == np.float32 and clip.ndim == 1
        assert np.all(np.isfinite(clip))
        assert 0.89 < np.max(np.abs(clip)) <= 0.9 + 1e-6
        assert clip.shape[0] == round(dur * SR)
        assert 1.0 - 1e-9 <= dur <= 2.0 + 1e-9


def test_metadata_matches_labels(eval_set):
    d = eval_set
    m = d.metadata
    assert list(m.columns) == META_COLUMNS
    assert m["clip_id"].is_unique and m["clip_id"].iloc[0] == "eval-000000"
    assert np.array_equal(d.labels.sum(axis=1), m["n_events"].to_numpy())
    assert set(m["n_events"]) == {1, 2, 3}
    assert set(m["background"]) == set(BACKGROUNDS)
    has_speech = d.labels[:, IDX["Speech"]] == 1
    assert np.array_equal(has_speech, (m["voice_type"] != "none").to_numpy())
    assert set(m.loc[has_speech, "voice_type"]) <= set(VOICE_TYPES)
    for row, lab in zip(m.itertuples(), d.labels):
        fams = [fam for name, fam in FAMILIES.items() if lab[IDX[name]]]
        expected = "none" if not fams else fams[0] if len(fams) == 1 else "multiple"
        assert row.instrument_family == expected
        assert 0.0 <= row.snr_db <= 30.0
        bucket = next(lbl for lbl, lo, hi in SNR_BUCKETS if lo <= row.snr_db < hi or (hi == 30.0 and row.snr_db == hi))
        assert row.snr_bucket == bucket


def test_card_is_json_and_consistent(eval_set):
    card = eval_set.card
    assert json.loads(json.dumps(card)) == card
    assert card["split"] == "eval" and card["seed"] == 7 and card["n_clips"] == 300
    assert card["skew"] == "balanced"
    assert card["class_event_counts"] == {n: int(c) for n, c in zip(NAMES, eval_set.labels.sum(axis=0))}
    assert sum(card["n_events_counts"].values()) == 300
    assert sum(card["background_counts"].values()) == 300
    assert sum(card["voice_type_counts"].values()) == 300
    assert card["voice_proportions"] == pytest.approx({v: 1 / 3 for v in VOICE_TYPES})
    assert card["generator"].startswith("factsheet.datasets.synthetic ") and card["generator_version"]
    assert card["clip_seconds"] == [1.0, 2.0] and card["sample_rate"] == SR
    assert card["class_weights"] == pytest.approx({n: 1 / 14 for n in NAMES})


# ---------------------------------------------------------------------------- balance and skew

def test_eval_every_class_appears_and_balanced(eval_set):
    counts = eval_set.labels.sum(axis=0)
    assert counts.min() > 0
    expected = eval_set.labels.sum() / 14
    assert counts.min() > 0.5 * expected and counts.max() < 1.6 * expected


def test_eval_voice_types_balanced():
    d = make_synthetic(split="eval", n_clips=900, seed=2, min_seconds=0.3, max_seconds=0.3)
    voices = d.metadata.loc[d.metadata["voice_type"] != "none", "voice_type"].value_counts(normalize=True)
    assert set(voices.index) == set(VOICE_TYPES)
    assert all(abs(voices[v] - 1 / 3) < 0.12 for v in VOICE_TYPES)


def test_train_planted_skew(train_short):
    d = train_short
    speech = d.metadata.loc[d.labels[:, IDX["Speech"]] == 1, "voice_type"]
    share = speech.value_counts(normalize=True)
    assert len(speech) > 400
    assert abs(share["male"] - 0.85) < 0.05
    assert share["female"] > share.get("child", 0.0)
    counts = d.labels.sum(axis=0)
    event_share = counts / counts.sum()
    assert int(np.argmax(counts)) == IDX["Speech"]
    assert 0.26 < event_share[IDX["Speech"]] < 0.36
    music = [event_share[IDX[n]] for n in FAMILIES]
    others = [event_share[i] for i, n in enumerate(NAMES) if n != "Speech" and n not in FAMILIES]
    assert min(music) > 0.07 and max(music) < 0.12
    assert max(others) < 0.055 and min(others) > 0.02
    assert d.card["skew"] != "balanced" and "male 85%" in d.card["skew"]
    assert d.card["voice_proportions"] == pytest.approx({"male": 0.85, "female": 0.12, "child": 0.03})


def test_overrides_balanced_train_and_custom_voices():
    balanced = make_synthetic(split="train", n_clips=10, seed=1, min_seconds=0.3, max_seconds=0.3,
                              voice_proportions={"male": 1 / 3, "female": 1 / 3, "child": 1 / 3},
                              class_weights={n: 1.0 for n in NAMES})
    assert balanced.card["skew"] == "balanced"
    weights = {n: 0.0 for n in NAMES}
    weights.update(Speech=1.0, Dog=1.0)
    d = make_synthetic(split="eval", n_clips=40, seed=1, min_seconds=0.3, max_seconds=0.3,
                       voice_proportions={"male": 0.0, "female": 0.0, "child": 1.0}, class_weights=weights)
    assert set(np.flatnonzero(d.labels.sum(axis=0))) == {IDX["Speech"], IDX["Dog"]}
    assert d.metadata["n_events"].max() <= 2
    assert set(d.metadata["voice_type"]) <= {"child", "none"}
    assert "child" in set(d.metadata["voice_type"])


# ---------------------------------------------------------------------------- acoustics

def test_speech_f0_per_voice_type():
    medians = {}
    for voice in VOICE_TYPES:
        lo, hi = VOICE_F0_HZ[voice]
        est = []
        for seed in range(4):
            events, bg = _single_event("Speech", seed, voice=voice, snr_db=30.0)
            est.append(_f0_autocorr(events + bg, SR))
        assert all(0.85 * lo <= f <= 1.15 * hi for f in est), (voice, est)
        medians[voice] = np.median(est)
    assert medians["male"] < medians["female"] < medians["child"]


def test_siren_dominant_frequency():
    for seed in range(5):
        events, bg = _single_event("Siren", seed, background="pink", snr_db=20.0)
        x = events + bg
        spec = np.abs(np.fft.rfft(x * np.hanning(x.shape[0]))) ** 2
        peak = np.fft.rfftfreq(x.shape[0], 1 / SR)[np.argmax(spec)]
        assert 600.0 <= peak <= 1500.0, (seed, peak)


def test_engine_is_low_frequency_and_bird_is_high():
    for seed in range(3):
        eng, _ = _single_event("Engine", seed)
        bird, _ = _single_event("Bird", seed)
        f = np.fft.rfftfreq(eng.shape[0], 1 / SR)
        centroid = [np.sum(f * np.abs(np.fft.rfft(x)) ** 2) / np.sum(np.abs(np.fft.rfft(x)) ** 2)
                    for x in (eng, bird)]
        assert centroid[0] < 800.0 < 2000.0 < centroid[1]


def test_recorded_snr_matches_measured(eval_set):
    m = eval_set.metadata
    cfg = dict(sample_rate=SR, min_seconds=1.0, max_seconds=2.0,
               class_p=np.full(14, 1 / 14), voice_p=np.full(3, 1 / 3))
    for i in range(0, 300, 37):
        plan, events, bg = _generate_clip(7, "eval", i, **cfg)
        assert np.array_equal((events + bg).astype(np.float32), eval_set.clips[i])
        measured = 10 * np.log10(np.mean(events ** 2) / np.mean(bg ** 2))
        assert abs(measured - m["snr_db"].iloc[i]) < 0.5
        assert plan.background == m["background"].iloc[i]
        for ev in plan.events:
            assert ev.length >= 0.4 * plan.n_samples - 1
            assert 0 <= ev.onset and ev.onset + ev.length <= plan.n_samples


def test_classes_are_separable_by_simple_features():
    """A nearest-centroid classifier on band energies beats chance (1/14) by far: the task is learnable."""
    n_fft, edges = 512, np.geomspace(50, 7900, 25)
    freqs = np.fft.rfftfreq(n_fft, 1 / SR)
    bands = [(freqs >= lo) & (freqs < hi) for lo, hi in zip(edges[:-1], edges[1:])]

    def features(x):
        frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::256] * np.hanning(n_fft)
        p = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        e = np.log(np.stack([p[:, b].sum(axis=1) for b in bands], axis=1) + 1e-9)
        return np.concatenate([e.mean(axis=0), e.std(axis=0)])

    X, y = [], []
    for c in NAMES:
        for seed in range(10):
            ev, bg = _single_event(c, 100 + seed, seconds=1.0, voice=VOICE_TYPES[seed % 3], snr_db=20.0,
                                   background=BACKGROUNDS[seed % 4])
            X.append(features(ev + bg))
            y.append(IDX[c])
    X, y = np.array(X), np.array(y)
    X = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-9)
    train, test = np.arange(len(y)) % 10 < 6, np.arange(len(y)) % 10 >= 6
    centroids = np.stack([X[train & (y == k)].mean(axis=0) for k in range(14)])
    pred = np.argmin(((X[test][:, None, :] - centroids[None]) ** 2).sum(axis=2), axis=1)
    assert np.mean(pred == y[test]) > 0.6


# ---------------------------------------------------------------------------- lengths and errors

@pytest.mark.parametrize("seconds", [0.3, 5.0])
def test_arbitrary_lengths(seconds):
    d = make_synthetic(split="eval", n_clips=8, seed=0, min_seconds=seconds, max_seconds=seconds)
    for clip in d.clips:
        assert clip.shape == (round(seconds * SR),)
        assert np.all(np.isfinite(clip)) and 0.89 < np.abs(clip).max() <= 0.9 + 1e-6
    assert np.allclose(d.metadata["duration_s"], seconds)


def test_other_sample_rate():
    d = make_synthetic(split="train", n_clips=6, seed=0, sample_rate=8000)
    assert d.sample_rate == 8000
    assert all(np.all(np.isfinite(c)) and c.shape[0] == round(dur * 8000)
               for c, dur in zip(d.clips, d.metadata["duration_s"]))


@pytest.mark.parametrize("kwargs, bad", [
    (dict(split="test"), "'test'"),
    (dict(n_clips=0), "0"),
    (dict(n_clips=2.5), "2.5"),
    (dict(seed=-1), "-1"),
    (dict(sample_rate=1000), "1000"),
    (dict(min_seconds=0.0), "0.0"),
    (dict(min_seconds=2.0, max_seconds=1.0), "1.0"),
    (dict(max_seconds=float("nan")), "nan"),
    (dict(voice_proportions={"male": 0.5, "female": 0.2, "child": 0.2}), "sum to 1"),
    (dict(voice_proportions={"male": 0.5, "female": 0.5}), "child"),
    (dict(voice_proportions={"male": 0.5, "female": 0.5, "child": 0.0, "robot": 0.0}), "robot"),
    (dict(voice_proportions={"male": 1.2, "female": -0.2, "child": 0.0}), "-0.2"),
    (dict(class_weights={"Speech": 1.0}), "Whistling"),
    (dict(class_weights={**{n: 1.0 for n in NAMES}, "Kazoo": 1.0}), "Kazoo"),
    (dict(class_weights={n: 0.0 for n in NAMES}), "positive"),
])
def test_bad_params_raise(kwargs, bad):
    args = dict(split="eval", n_clips=2, seed=0) | kwargs
    with pytest.raises(ValueError) as info:
        make_synthetic(**args)
    assert bad in str(info.value)


def test_cached_dataset_is_identical_to_a_fresh_one(tmp_path, monkeypatch):
    """The session cache (FACTSHEET_SYNTHETIC_CACHE) gives back exactly what the generator makes."""
    import dataclasses

    from factsheet.datasets import synthetic

    monkeypatch.delenv(synthetic.CACHE_ENV, raising=False)
    fresh = make_synthetic(split="train", n_clips=9, seed=4, min_seconds=0.3, max_seconds=0.6)
    monkeypatch.setenv(synthetic.CACHE_ENV, str(tmp_path))
    written = make_synthetic(split="train", n_clips=9, seed=4, min_seconds=0.3, max_seconds=0.6)
    assert len(list(tmp_path.glob("synthetic-*.npz"))) == 1
    calls = []
    monkeypatch.setattr(synthetic, "_generate", lambda **kw: calls.append(kw))
    read = make_synthetic(split="train", n_clips=9, seed=4, min_seconds=0.3, max_seconds=0.6)
    assert calls == []  # read back, not generated
    for got in (written, read):
        assert len(got.clips) == len(fresh.clips)
        for a, b in zip(got.clips, fresh.clips):
            assert a.dtype == b.dtype == np.float32 and np.array_equal(a, b)
        np.testing.assert_array_equal(got.labels, fresh.labels)
        assert got.labels.dtype == fresh.labels.dtype
        pd.testing.assert_frame_equal(got.metadata, fresh.metadata, check_exact=True)
        assert got.card == fresh.card and got.events == fresh.events
        other = {f.name for f in dataclasses.fields(fresh)} - {"clips", "labels", "metadata", "card", "events"}
        assert all(getattr(got, f) == getattr(fresh, f) for f in other)
    (next(tmp_path.glob("synthetic-*.npz"))).write_bytes(b"not a zip")  # a damaged file is generated again
    monkeypatch.undo()
    monkeypatch.setenv(synthetic.CACHE_ENV, str(tmp_path))
    again = make_synthetic(split="train", n_clips=9, seed=4, min_seconds=0.3, max_seconds=0.6)
    assert all(np.array_equal(a, b) for a, b in zip(again.clips, fresh.clips))
