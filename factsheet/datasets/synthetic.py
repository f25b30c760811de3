"""A deterministic, procedurally generated AudioSet-like multi-label dataset.

Every clip is mono audio (default 16 kHz) with one to three sound *events* of
distinct classes mixed over a background noise at a controlled signal-to-noise
ratio. The 14 classes span five AudioSet top-level categories; each one is
synthesised with numpy and ``scipy.signal`` only (pulse trains through formant
resonators, Karplus-Strong strings, band-limited sawtooths with vibrato, FM
sweeps, filtered and modulated noises, ...), with per-event random pitch, rate,
duration and level, so the task is learnable but not trivial.

The ``"train"`` split carries a planted, AudioSet-like skew (Speech and Music
dominate the events, and adult male voices dominate Speech); the ``"eval"``
split is balanced. The skew is recorded in the dataset card and in the
per-clip metadata (``voice_type``), so a later bias analysis can find it.

All randomness comes from ``np.random.default_rng([seed, split_code, index])``,
one generator per clip: the same arguments give bit-identical data, and clip
``i`` does not depend on how many clips are generated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy import signal

from factsheet.datasets.base import AudioDataset, ClassLabel

__all__ = [
    "BACKGROUNDS",
    "CATEGORIES",
    "DEFAULT_TRAIN_CLASS_WEIGHTS",
    "DEFAULT_TRAIN_VOICE_PROPORTIONS",
    "GENERATOR_NAME",
    "GENERATOR_VERSION",
    "INSTRUMENT_FAMILIES",
    "SNR_BUCKETS",
    "SNR_DB_RANGE",
    "SYNTHETIC_CLASSES",
    "VOICE_F0_HZ",
    "VOICE_FORMANT_SCALE",
    "VOICE_TYPES",
    "make_synthetic",
]

GENERATOR_NAME = "factsheet.datasets.synthetic"
GENERATOR_VERSION = "1.0.0"

# --------------------------------------------------------------------------------------
# Ontology
# --------------------------------------------------------------------------------------

#: Top-level category -> class display names, in class-index order.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "Human sounds": ("Speech", "Whistling"),
    "Music": ("Guitar", "Violin", "Flute", "Drum"),
    "Animals": ("Dog", "Bird", "Cat"),
    "Vehicles, sirens and alarms": ("Siren", "Engine", "Alarm"),
    "Natural sounds": ("Rain", "Wind"),
}

#: The 14 classes; ``mid`` values are synthetic ("/synth/<name>"), not AudioSet mids.
SYNTHETIC_CLASSES: list[ClassLabel] = [
    ClassLabel(index=i, mid=f"/synth/{name.lower()}", display_name=name, category=category)
    for i, (category, name) in enumerate(
        (category, name) for category, names in CATEGORIES.items() for name in names
    )
]

_CLASS_NAMES: tuple[str, ...] = tuple(c.display_name for c in SYNTHETIC_CLASSES)
_CLASS_INDEX: dict[str, int] = {name: i for i, name in enumerate(_CLASS_NAMES)}
_SPEECH = _CLASS_INDEX["Speech"]

#: Music class -> instrument family written to the ``instrument_family`` metadata column.
INSTRUMENT_FAMILIES: dict[str, str] = {
    "Guitar": "plucked string",
    "Violin": "bowed string",
    "Flute": "woodwind",
    "Drum": "percussion",
}
_MUSIC = {_CLASS_INDEX[name]: family for name, family in INSTRUMENT_FAMILIES.items()}

VOICE_TYPES: tuple[str, ...] = ("male", "female", "child")
#: Range (Hz) the base fundamental frequency of a speaker is drawn from.
VOICE_F0_HZ: dict[str, tuple[float, float]] = {"male": (95.0, 140.0), "female": (180.0, 250.0),
                                               "child": (260.0, 350.0)}
#: Formant-frequency scale relative to the adult-male vowel table (vocal-tract length).
VOICE_FORMANT_SCALE: dict[str, float] = {"male": 1.0, "female": 1.15, "child": 1.3}

BACKGROUNDS: tuple[str, ...] = ("white", "pink", "brown", "hum")
#: SNR (dB) is drawn uniformly from this range per clip, rounded to 0.01 dB.
SNR_DB_RANGE: tuple[float, float] = (0.0, 30.0)
#: (label, low, high) with low <= snr < high (the last bucket includes its upper edge).
SNR_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("0-10 dB", 0.0, 10.0), ("10-20 dB", 10.0, 20.0), ("20-30 dB", 20.0, 30.0))

#: Voice-type proportions of Speech events in the train split (the planted skew).
DEFAULT_TRAIN_VOICE_PROPORTIONS: dict[str, float] = {"male": 0.85, "female": 0.12, "child": 0.03}
#: Event-class sampling weights of the train split (AudioSet-like: Speech and Music dominate).
#: Classes are drawn without replacement within a clip, so the realised shares of events
#: are about Speech 31 %, each music class 9.6 %, every other class 3.4 %.
DEFAULT_TRAIN_CLASS_WEIGHTS: dict[str, float] = {
    name: (0.40 if name == "Speech" else 0.085 if name in INSTRUMENT_FAMILIES else 0.26 / 9)
    for name in _CLASS_NAMES
}

_SPLIT_CODES: dict[str, int] = {"train": 1, "eval": 2}
_MAX_EVENTS = 3
_MIN_EVENT_SHARE = 0.4        # an event covers at least this share of its clip
_EVENT_LEVEL_DB = 3.0         # per-event level drawn from +-this (dB, relative to unit RMS)
_PEAK = 0.9                   # every clip is scaled to this peak
_MIN_SECONDS = 0.1            # shortest clip accepted
_MAX_REL_FREQ = 0.45          # every synthesised partial / filter stays below 0.45 * sample_rate


# --------------------------------------------------------------------------------------
# DSP helpers (all pure; randomness only through the rng argument)
# --------------------------------------------------------------------------------------

def _fmax(sr: int) -> float:
    return _MAX_REL_FREQ * sr


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0


def _unit_rms(x: np.ndarray) -> np.ndarray:
    r = _rms(x)
    return x / r if r > 1e-12 else x


def _fade(x: np.ndarray, sr: int, ms: float = 8.0) -> np.ndarray:
    """Raised-cosine fade in and out (in place) over ``ms`` or a quarter of ``x``."""
    m = min(int(sr * ms / 1000.0), x.shape[0] // 4)
    if m > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(m) + 0.5) / m)
        x[:m] *= ramp
        x[-m:] *= ramp[::-1]
    return x


def _tukey(m: int, alpha: float) -> np.ndarray:
    return signal.windows.tukey(m, alpha) if m > 2 else np.ones(m)


def _butter(kind: str, cutoff, sr: int, order: int = 2) -> np.ndarray:
    """Butterworth SOS; ``cutoff`` Hz (pair for bandpass), clamped inside (10 Hz, 0.45 sr)."""
    c = np.clip(np.atleast_1d(np.asarray(cutoff, dtype=float)), 10.0, _fmax(sr))
    if kind == "bandpass" and c[1] <= c[0] * 1.01:
        c[0] = c[1] / 1.2
    wn = c if kind == "bandpass" else c[0]
    return signal.butter(order, wn, btype=kind, fs=sr, output="sos")


def _filt(kind: str, x: np.ndarray, cutoff, sr: int, order: int = 2) -> np.ndarray:
    return signal.sosfilt(_butter(kind, cutoff, sr, order), x)


def _resonator_sos(freqs, bws, sr: int) -> np.ndarray:
    """Cascade of two-pole resonators, unit gain at each centre frequency.

    Parameters
    ----------
    freqs, bws : array_like, shape (k,)
        Centre frequencies and -3 dB bandwidths in Hz.

    Returns
    -------
    sos : ndarray, shape (k, 6)
    """
    f = np.clip(np.asarray(freqs, dtype=float), 20.0, _fmax(sr))
    r = np.exp(-np.pi * np.asarray(bws, dtype=float) / sr)
    theta = 2.0 * np.pi * f / sr
    a1 = -2.0 * r * np.cos(theta)
    a2 = r * r
    b0 = (1.0 - r) * np.sqrt(1.0 - 2.0 * r * np.cos(2.0 * theta) + r * r)
    sos = np.zeros((f.shape[0], 6))
    sos[:, 0] = b0
    sos[:, 3] = 1.0
    sos[:, 4] = a1
    sos[:, 5] = a2
    return sos


def _one_pole(x: np.ndarray, tau_s: float, sr: int) -> np.ndarray:
    """Exponential smoothing with time constant ``tau_s``, starting settled at ``x[0]``."""
    if x.size == 0:
        return x
    p = math.exp(-1.0 / max(tau_s * sr, 1e-9))
    return signal.lfilter([1.0 - p], [1.0, -p], x, zi=[p * x[0]])[0]


def _smooth_noise(rng: np.random.Generator, n: int, sr: int, rate_hz: float) -> np.ndarray:
    """Smooth random control signal: N(0, 1) knots at ``rate_hz``, raised-cosine interpolated.

    Returns
    -------
    ndarray, shape (n,)
    """
    m = int(math.ceil(n * rate_hz / sr)) + 2
    knots = rng.standard_normal(m)
    pos = np.arange(n) * (rate_hz / sr)
    i = np.floor(pos).astype(np.int64)
    w = 0.5 - 0.5 * np.cos(np.pi * (pos - i))
    return knots[i] * (1.0 - w) + knots[i + 1] * w


def _phase_cycles(freq: np.ndarray, sr: int, start: float = 0.0) -> np.ndarray:
    """Running phase in cycles of an instantaneous-frequency track ``freq`` (Hz)."""
    return start + np.cumsum(freq) / sr


def _saw(cycles: np.ndarray, dt: np.ndarray) -> np.ndarray:
    """Band-limited (polyBLEP) sawtooth in [-1, 1] from phase ``cycles``; ``dt = f / sr``."""
    t = cycles % 1.0
    y = 2.0 * t - 1.0
    dt = np.broadcast_to(np.clip(dt, 1e-6, 0.5), t.shape)
    m = t < dt
    x = t[m] / dt[m]
    y[m] -= 2.0 * x - x * x - 1.0
    m = t > 1.0 - dt
    x = (t[m] - 1.0) / dt[m]
    y[m] -= x * x + 2.0 * x + 1.0
    return y


def _harmonics(cycles: np.ndarray, freq: np.ndarray, amps, sr: int) -> np.ndarray:
    """Sum of harmonics ``amps[k] * sin(2 pi (k+1) cycles)``, faded out smoothly towards 0.45 sr."""
    out = np.zeros_like(cycles)
    lim = _fmax(sr)
    for k, a in enumerate(amps, start=1):
        if a == 0.0:
            continue
        gate = np.clip((lim - k * freq) / (0.05 * sr), 0.0, 1.0)
        if gate.any():
            out += a * gate * np.sin(2.0 * np.pi * k * cycles)
    return out


def _pulse_positions(freq: np.ndarray, sr: int, start: float) -> np.ndarray:
    """Sample indices where the phase of ``freq`` (Hz) crosses an integer (one per period)."""
    c = np.floor(_phase_cycles(freq, sr, start))
    return np.flatnonzero(np.diff(c, prepend=math.floor(start)) > 0)


def _segments(rng: np.random.Generator, n: int, mean_len: float, spread: float) -> np.ndarray:
    """Random partition of ``[0, n)`` into pieces of ``mean_len * U(1-spread, 1+spread)`` samples.

    Returns
    -------
    ndarray, shape (k + 1,), int
        Boundaries ``0 = b0 < b1 < ... < bk = n``.
    """
    k_max = int(math.ceil(n / (mean_len * (1.0 - spread)))) + 1
    lens = np.maximum(1, np.round(mean_len * rng.uniform(1.0 - spread, 1.0 + spread, k_max))).astype(np.int64)
    b = np.concatenate([[0], np.cumsum(lens)])
    b = b[b < n]
    return np.append(b, n)


def _colored_noise(rng: np.random.Generator, n: int, sr: int, exponent: float) -> np.ndarray:
    """Gaussian noise with power spectrum ~ 1 / f**exponent (flat below 20 Hz, no DC)."""
    if n < 4:
        return rng.standard_normal(n)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    spec *= np.maximum(f, 20.0) ** (-exponent / 2.0)
    spec[0] = 0.0
    return np.fft.irfft(spec, n)


# --------------------------------------------------------------------------------------
# Sound synthesisers: f(rng, n, sr[, ...]) -> float64 array, shape (n,)
# --------------------------------------------------------------------------------------

# Adult-male formant table F1..F4 (Hz) for /a/, /i/, /u/, /e/, /o/ (Peterson & Barney-like).
_VOWEL_FORMANTS = np.array([
    [730.0, 1090.0, 2440.0, 3400.0],
    [270.0, 2290.0, 3010.0, 3700.0],
    [300.0, 870.0, 2240.0, 3300.0],
    [530.0, 1840.0, 2480.0, 3500.0],
    [570.0, 840.0, 2410.0, 3400.0],
])
_VOWEL_BANDWIDTHS = np.array([80.0, 100.0, 150.0, 220.0])
# Glottal-flow spectral tilt (two poles at z=0.97) and lip radiation (first difference).
_GLOTTAL_B = np.array([1.0, -1.0])
_GLOTTAL_A = np.convolve([1.0, -0.97], [1.0, -0.97])


def _speech(rng: np.random.Generator, n: int, sr: int, voice: str) -> np.ndarray:
    """Voiced syllables: jittered glottal pulses through vowel formant cascades.

    The fundamental follows a declination line with per-syllable accents and
    cycle-scale jitter/shimmer; each syllable (3-6 per second) gets a vowel
    (/a/ /i/ /u/ /e/ /o/) whose formants are scaled for the voice type, a
    syllabic amplitude envelope, and sometimes a leading fricative (high-passed
    noise) or a trailing pause.

    Parameters
    ----------
    voice : {"male", "female", "child"}
        Sets the f0 range (:data:`VOICE_F0_HZ`) and formant scale (:data:`VOICE_FORMANT_SCALE`).
    """
    lo, hi = VOICE_F0_HZ[voice]
    f0 = rng.uniform(lo, hi)
    scale = VOICE_FORMANT_SCALE[voice] * rng.uniform(0.97, 1.03)
    rate = rng.uniform(3.0, 6.0)
    bounds = _segments(rng, n, sr / rate, 0.4)
    k = bounds.shape[0] - 1
    syl = np.repeat(np.arange(k), np.diff(bounds))
    accent = _one_pole(rng.uniform(0.95, 1.05, k)[syl], 0.03, sr)
    f0_track = (f0 * np.linspace(1.04, 0.96, n) * accent
                * (1.0 + 0.01 * _smooth_noise(rng, n, sr, f0)))
    idx = _pulse_positions(f0_track, sr, rng.uniform())
    pulses = np.zeros(n)
    pulses[idx] = 1.0 + 0.1 * rng.standard_normal(idx.shape[0])           # shimmer
    source = signal.lfilter(_GLOTTAL_B, _GLOTTAL_A, pulses)
    source += 0.03 * _rms(source) * rng.standard_normal(n)               # aspiration
    hiss = _filt("highpass", rng.standard_normal(n), rng.uniform(2500.0, 4500.0), sr, order=4)

    vowels = rng.integers(0, _VOWEL_FORMANTS.shape[0], k)
    jit = rng.normal(1.0, 0.03, (k, 4))
    fricative = rng.random(k) < 0.3
    pause = rng.random(k) < 0.12
    fric_share = rng.uniform(0.2, 0.35, k)
    fric_level = rng.uniform(0.15, 0.4, k)
    out = np.zeros(n)
    for s in range(k):
        a, b = int(bounds[s]), int(bounds[s + 1])
        if pause[s] and s > 0:
            continue
        v = a + (int((b - a) * fric_share[s]) if fricative[s] else 0)
        sos = _resonator_sos(_VOWEL_FORMANTS[vowels[s]] * scale * jit[s], _VOWEL_BANDWIDTHS * scale, sr)
        voiced = signal.sosfilt(sos, source[a:b])[v - a:] * _tukey(b - v, 0.6)
        out[v:b] += voiced
        if v > a:
            out[a:v] += hiss[a:v] * _tukey(v - a, 0.5) * (fric_level[s] * max(_rms(voiced), 1e-6) * 2.0)
    return out


def _whistling(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Whistled melody: near-sine notes with portamento, vibrato and breath noise."""
    base = rng.uniform(900.0, 2200.0)
    bounds = _segments(rng, n, sr / rng.uniform(2.0, 5.0), 0.5)
    k = bounds.shape[0] - 1
    steps = rng.integers(-5, 8, k)
    note = np.repeat(np.arange(k), np.diff(bounds))
    freq = _one_pole(base * 2.0 ** (steps[note] / 12.0), rng.uniform(0.015, 0.04), sr)
    t = np.arange(n) / sr
    freq *= 1.0 + rng.uniform(0.005, 0.02) * np.sin(2 * np.pi * rng.uniform(4.5, 7.0) * t + rng.uniform(0, 6.3))
    freq = np.minimum(freq, _fmax(sr))
    env = np.zeros(n)
    for s in range(k):
        a, b = int(bounds[s]), int(bounds[s + 1])
        gap = int((b - a) * rng.uniform(0.0, 0.25))
        env[a:b - gap] = _tukey(b - gap - a, 0.3) * rng.uniform(0.6, 1.0)
    tone = _harmonics(_phase_cycles(freq, sr, rng.uniform()), freq, (1.0, rng.uniform(0.02, 0.1)), sr)
    breath = _filt("bandpass", rng.standard_normal(n), (0.7 * base, 1.5 * base), sr)
    return env * (tone + rng.uniform(0.05, 0.15) * _unit_rms(breath))


def _karplus_strong(rng: np.random.Generator, length: int, freq: float, sr: int) -> np.ndarray:
    """One plucked note: a noise burst circulating in a lossy comb (``lfilter``)."""
    delay = max(2, int(sr / freq - 0.5))                  # the two-tap average adds half a sample
    p = rng.uniform(0.0, 0.6)                            # pluck softness (one-pole low-pass)
    burst = signal.lfilter([1.0 - p], [1.0, -p], rng.uniform(-1.0, 1.0, delay))
    pick = max(1, int(delay * rng.uniform(0.1, 0.3)))    # pluck position comb notch
    burst[pick:] -= burst[:-pick].copy()
    x = np.zeros(length)
    x[:min(delay, length)] = burst[:length]
    g = rng.uniform(0.990, 0.998)
    a = np.zeros(delay + 2)
    a[0] = 1.0
    a[delay] = a[delay + 1] = -0.5 * g
    return _fade(signal.lfilter([1.0], a, x), sr, 15.0)


def _guitar(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Plucked guitar: Karplus-Strong notes of one chord, strummed or arpeggiated on a beat, plus body."""
    root = rng.integers(40, 57)
    chord = np.array([0, 4, 7, 12, 16, 19]) if rng.random() < 0.5 else np.array([0, 3, 7, 12, 15, 19])
    beat = rng.uniform(0.3, 0.9) * sr
    strum = rng.random() < 0.5
    out = np.zeros(n)
    stroke = 0.0
    while stroke < n:
        n_strings = int(rng.integers(3, 6)) if strum else 1
        offsets = np.cumsum(rng.uniform(0.008, 0.03, n_strings) * sr) - 0.008 * sr if strum else np.zeros(1)
        ring = int(min(1.5 * sr, beat * rng.uniform(1.0, 2.0)))
        for j, off in enumerate(offsets):
            on = int(stroke + off)
            if on >= n:
                break
            midi = root + (chord[j] if strum else rng.choice(chord))
            freq = min(440.0 * 2.0 ** ((midi - 69) / 12.0), 0.2 * sr)
            length = min(n - on, ring)
            out[on:on + length] += rng.uniform(0.5, 1.0) * _karplus_strong(rng, length, freq, sr)
        stroke += beat * rng.uniform(0.9, 1.1)
    y = out.copy()
    for f, bw, gain in ((rng.uniform(90, 120), 30.0, 0.6), (rng.uniform(190, 240), 50.0, 0.4),
                        (rng.uniform(380, 500), 90.0, 0.3)):            # air and top-plate modes
        y += gain * signal.sosfilt(_resonator_sos([f], [bw], sr), out)
    return y


def _violin(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Bowed violin: band-limited sawtooth with delayed vibrato, bow envelope and body resonances."""
    bounds = _segments(rng, n, sr / rng.uniform(1.0, 3.0), 0.5)
    k = bounds.shape[0] - 1
    midi = 55 + (rng.integers(0, 25) + np.cumsum(rng.integers(-4, 5, k))) % 33   # G3..D#6 walk
    note = np.repeat(np.arange(k), np.diff(bounds))
    freq = _one_pole(440.0 * 2.0 ** ((midi[note] - 69) / 12.0), 0.02, sr)
    t = np.arange(n) / sr
    vib_depth = rng.uniform(0.004, 0.01) * np.minimum(1.0, t / rng.uniform(0.1, 0.3))
    freq = np.minimum(freq * (1.0 + vib_depth * np.sin(2 * np.pi * rng.uniform(5.0, 7.0) * t)), _fmax(sr))
    saw = _saw(_phase_cycles(freq, sr, rng.uniform()), freq / sr)
    env = np.zeros(n)
    for s in range(k):
        a, b = int(bounds[s]), int(bounds[s + 1])
        m = b - a
        att = min(m // 2, int(sr * rng.uniform(0.04, 0.12)))
        rel = min(m - att, int(sr * rng.uniform(0.03, 0.08)))
        e = np.ones(m)
        e[:att] = np.linspace(0.0, 1.0, att)
        e[m - rel:] = np.linspace(1.0, 0.2 * rng.random(), rel)
        env[a:b] = e
    env *= 1.0 + 0.12 * _smooth_noise(rng, n, sr, 3.0)            # bow pressure
    x = env * (saw + 0.04 * _filt("highpass", rng.standard_normal(n), 3000.0, sr))
    x = _filt("lowpass", x, min(7000.0, _fmax(sr)), sr)
    body_f = np.array([rng.uniform(270, 290), rng.uniform(430, 480), rng.uniform(900, 1100),
                       rng.uniform(2300, 3000)])
    body_g = np.array([1.0, 0.8, 0.5, 1.2])
    y = 0.3 * x
    for f, gain in zip(body_f, body_g):
        y += gain * signal.sosfilt(_resonator_sos([f], [f / 6.0], sr), x)
    return y


def _flute(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Flute: near-sinusoidal harmonics, vibrato, soft attacks with chiff and breath noise."""
    bounds = _segments(rng, n, sr / rng.uniform(1.5, 4.0), 0.5)
    k = bounds.shape[0] - 1
    midi = rng.integers(60, 88, k)
    note = np.repeat(np.arange(k), np.diff(bounds))
    freq = _one_pole(440.0 * 2.0 ** ((midi[note] - 69) / 12.0), 0.01, sr)
    t = np.arange(n) / sr
    freq = np.minimum(freq * (1.0 + rng.uniform(0.005, 0.015) * np.sin(2 * np.pi * rng.uniform(4.5, 6.0) * t)),
                      _fmax(sr))
    amps = (1.0, rng.uniform(0.1, 0.4), rng.uniform(0.05, 0.15), rng.uniform(0.02, 0.06))
    tone = _harmonics(_phase_cycles(freq, sr, rng.uniform()), freq, amps, sr)
    env = np.zeros(n)
    chiff = np.zeros(n)
    for s in range(k):
        a, b = int(bounds[s]), int(bounds[s + 1])
        m = b - a
        att = min(m // 2, int(sr * rng.uniform(0.04, 0.1)))
        e = np.ones(m)
        e[:att] = np.linspace(0.0, 1.0, att) ** 2
        env[a:b] = _fade(e, sr, 20.0)
        chiff[a:b] = np.exp(-np.arange(m) / (0.03 * sr))
    env *= 1.0 + 0.05 * _smooth_noise(rng, n, sr, 4.0)
    breath = _filt("bandpass", rng.standard_normal(n), (1000.0, 5000.0), sr)
    breath = _unit_rms(breath) * (rng.uniform(0.03, 0.1) + 0.3 * chiff)
    return env * (tone + breath)


def _drum_hit(rng: np.random.Generator, sr: int, f_end: float, tau: float, snap: float) -> np.ndarray:
    """One membrane hit: downward pitch glide with an inharmonic (1.59x) mode and a noise burst."""
    m = int(sr * min(5.0 * tau, 0.8))
    t = np.arange(m) / sr
    freq = f_end * (1.0 + rng.uniform(0.5, 1.5) * np.exp(-t / rng.uniform(0.01, 0.04)))
    cyc = _phase_cycles(freq, sr)
    body = (np.sin(2 * np.pi * cyc) + 0.3 * np.sin(2 * np.pi * 1.59 * cyc) * np.exp(-t / (0.5 * tau))) \
        * np.exp(-t / tau)
    noise = _filt("bandpass", rng.standard_normal(m), (800.0, 6000.0), sr) * np.exp(-t / rng.uniform(0.015, 0.06))
    return body + snap * 3.0 * noise


def _drum(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Drum pattern: low and mid membrane hits on an eighth-note grid at 80-160 BPM."""
    step = 60.0 / rng.uniform(80.0, 160.0) / 2.0 * sr
    n_steps = int(math.ceil(n / step))
    low = _drum_hit(rng, sr, rng.uniform(50.0, 90.0), rng.uniform(0.1, 0.3), rng.uniform(0.0, 0.2))
    mid = _drum_hit(rng, sr, rng.uniform(110.0, 250.0), rng.uniform(0.05, 0.15), rng.uniform(0.3, 1.0))
    pattern = rng.random((2, n_steps)) < np.array([[0.45], [0.35]])
    pattern[0, 0] = True
    vel = rng.uniform(0.6, 1.0, (2, n_steps))
    out = np.zeros(n)
    for v, hit in enumerate((low, mid)):
        for s in np.flatnonzero(pattern[v]):
            on = int(s * step + rng.normal(0.0, 0.004 * sr)) if s else 0
            on = min(max(on, 0), n - 1)
            m = min(hit.shape[0], n - on)
            out[on:on + m] += vel[v, s] * hit[:m]
    return out


def _dog(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Dog barks: short harmonic bursts with falling pitch, a formant and a noisy onset."""
    size = rng.random()                              # 0 = small dog, 1 = big dog
    f0 = 750.0 - 450.0 * size
    formants = np.array([900.0, 1700.0, 2900.0]) * (1.25 - 0.4 * size) * rng.uniform(0.9, 1.1, 3)
    sos = _resonator_sos(formants, [150.0, 250.0, 400.0], sr)
    out = np.zeros(n)
    pos = int(min(rng.uniform(0.0, 0.05) * sr, n // 4))
    while pos < n:
        dur = int(rng.uniform(0.08, 0.25) * sr)
        m = min(dur, n - pos)
        t = np.arange(m) / sr
        f = f0 * rng.uniform(0.9, 1.1) * (1.15 - 0.4 * t / (dur / sr))
        voiced = _saw(_phase_cycles(f, sr, rng.uniform()), f / sr)
        noise = rng.standard_normal(m)
        env = (1.0 - np.exp(-t / 0.004)) * np.exp(-t / (dur / sr / 2.5))
        x = env * (voiced + noise * (0.25 + 1.5 * np.exp(-t / 0.015)))
        out[pos:pos + m] += rng.uniform(0.6, 1.0) * signal.sosfilt(sos, x)
        pos += dur + int(rng.uniform(0.12, 0.45) * sr)
    return out


def _bird(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Bird song: fast FM chirps sweeping 2-6 kHz, some with a trill, grouped in phrases."""
    lim = _fmax(sr)
    lo, hi = min(2000.0, 0.6 * lim), min(6000.0, lim)
    out = np.zeros(n)
    pos = int(min(rng.uniform(0.0, 0.05) * sr, n // 4))
    while pos < n:
        dur = int(rng.uniform(0.02, 0.12) * sr)
        m = min(dur, n - pos)
        t = np.arange(m) / sr
        f_a, f_b = rng.uniform(lo, hi, 2)
        f = f_a * (f_b / f_a) ** (t / (dur / sr))
        if rng.random() < 0.3:
            f = f * (1.0 + 0.08 * np.sin(2 * np.pi * rng.uniform(20.0, 40.0) * t))
        f = np.minimum(f, lim)
        chirp = _harmonics(_phase_cycles(f, sr, rng.uniform()), f, (1.0, rng.uniform(0.0, 0.15)), sr)
        out[pos:pos + m] += rng.uniform(0.4, 1.0) * chirp * np.hanning(m + 2)[1:-1]
        pos += dur + int((rng.uniform(0.2, 0.5) if rng.random() < 0.2 else rng.uniform(0.02, 0.12)) * sr)
    return out


def _cat(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Cat meows: harmonic pitch glide up then down, formants moving /i/ -> /a/ -> /u/, nasal resonance."""
    out = np.zeros(n)
    banks = [_resonator_sos(np.array(f) * rng.uniform(0.9, 1.1), [120.0, 200.0, 300.0], sr)
             for f in ((450.0, 2300.0, 3300.0), (1000.0, 1600.0, 3000.0), (550.0, 1000.0, 2800.0))]
    nasal = _resonator_sos([rng.uniform(230.0, 300.0)], [60.0], sr)
    pos = 0
    while pos < n:
        dur = int(rng.uniform(0.4, 1.2) * sr)
        m = min(dur, n - pos)
        u = np.arange(m) / dur                            # 0..1 across the full meow
        f_start = rng.uniform(350.0, 550.0)
        peak, at = rng.uniform(1.3, 1.7), rng.uniform(0.3, 0.5)
        contour = np.where(u < at, 1.0 + (peak - 1.0) * np.sin(0.5 * np.pi * u / at),
                           peak - (peak - 0.8) * np.sin(0.5 * np.pi * np.minimum(1.0, (u - at) / (1 - at))))
        f = np.minimum(f_start * contour, _fmax(sr))
        src = _saw(_phase_cycles(f, sr, rng.uniform()), f / sr) + 0.05 * rng.standard_normal(m)
        w_i = np.clip(1.0 - u / 0.3, 0.0, 1.0)
        w_u = np.clip((u - 0.6) / 0.3, 0.0, 1.0)
        w_a = 1.0 - w_i - w_u
        y = sum(w * signal.sosfilt(sos, src) for w, sos in zip((w_i, w_a, w_u), banks))
        y += 0.5 * signal.sosfilt(nasal, src)
        env = np.minimum(1.0, u * dur / (0.06 * sr)) * np.minimum(1.0, (1.0 - u) * dur / (0.15 * sr))
        out[pos:pos + m] += env * y
        pos += dur + int(rng.uniform(0.3, 0.8) * sr)
    return out


def _siren(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Siren: slow wail or fast yelp frequency sweep between ~600-800 Hz and ~1100-1500 Hz."""
    f_lo, f_hi = rng.uniform(600.0, 800.0), rng.uniform(1100.0, 1500.0)
    t = np.arange(n) / sr
    if rng.random() < 0.6:                            # wail: smooth, period 2-5 s
        mod = 0.5 - 0.5 * np.cos(2 * np.pi * (t / rng.uniform(2.0, 5.0) + rng.uniform()))
    else:                                             # yelp: fast rise-fall, period 0.15-0.35 s
        u = (t / rng.uniform(0.15, 0.35) + rng.uniform()) % 1.0
        mod = np.where(u < 0.8, u / 0.8, (1.0 - u) / 0.2) ** 0.7
    f = np.minimum(f_lo + (f_hi - f_lo) * mod, _fmax(sr))
    amps = (1.0, 0.0, rng.uniform(0.1, 0.3), 0.0, rng.uniform(0.03, 0.1))   # square-ish, odd harmonics
    y = _harmonics(_phase_cycles(f, sr, rng.uniform()), f, amps, sr)
    return y * (1.0 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t))


def _engine(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Engine: 30-80 Hz firing pulse train through exhaust resonances, plus modulated rumble."""
    rate = rng.uniform(30.0, 80.0)
    t = np.arange(n) / sr
    ramp = 1.0 + rng.uniform(-0.15, 0.15) * t / max(t[-1], 1e-9)      # rev up or down
    freq = rate * ramp * (1.0 + 0.03 * _smooth_noise(rng, n, sr, 1.0))
    start = rng.uniform()
    idx = _pulse_positions(freq, sr, start)
    pulses = np.zeros(n)
    pulses[idx] = 1.0 + 0.25 * rng.standard_normal(idx.shape[0])      # cylinder imbalance
    sos = np.vstack([_resonator_sos([rng.uniform(90.0, 250.0)], [60.0], sr),
                     _butter("lowpass", rng.uniform(800.0, 2000.0), sr)])
    firing = signal.sosfilt(sos, pulses) + 0.3 * signal.sosfilt(
        _resonator_sos([rng.uniform(300.0, 600.0)], [120.0], sr), pulses)
    cyc = _phase_cycles(freq, sr, start)
    rumble = _filt("lowpass", _colored_noise(rng, n, sr, 2.0), 200.0, sr) * (1.0 + 0.5 * np.cos(2 * np.pi * cyc))
    return _unit_rms(firing) + rng.uniform(0.2, 0.6) * _unit_rms(rumble)


def _alarm(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Alarm: beeping square or triangle tone (sometimes two alternating tones), 1.5-8 beeps/s."""
    lim = _fmax(sr)
    f1 = min(rng.uniform(800.0, 3000.0), 0.5 * lim)
    f2 = f1 * rng.uniform(1.2, 1.5) if rng.random() < 0.3 else f1
    rate, duty = rng.uniform(1.5, 8.0), rng.uniform(0.3, 0.7)
    t = np.arange(n) / sr
    beep = t * rate + rng.uniform(0.0, 0.2)
    gate = _one_pole(((beep % 1.0) < duty).astype(float), 0.002, sr)
    f = np.where(np.floor(beep) % 2 == 0, f1, f2)
    amps = (1.0, 0.0, 1 / 3, 0.0, 1 / 5, 0.0, 1 / 7) if rng.random() < 0.5 else (1.0, 0.0, 1 / 9, 0.0, 1 / 25)
    return gate * _harmonics(_phase_cycles(f, sr, rng.uniform()), f, amps, sr)


def _rain(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Rain: band-limited pink noise bed plus random droplet clicks (decaying resonances)."""
    bed = _filt("bandpass", _colored_noise(rng, n, sr, 0.7), (rng.uniform(300.0, 800.0), 7000.0), sr)
    n_drops = rng.poisson(rng.uniform(30.0, 250.0) * n / sr)
    drops = np.zeros(n)
    out = _unit_rms(bed)
    level = rng.uniform(0.5, 1.5)
    for _ in range(3):                               # three droplet sizes
        drops[:] = 0.0
        pos = rng.integers(0, n, n_drops // 3 + 1)
        np.add.at(drops, pos, rng.exponential(1.0, pos.shape[0]))
        f = rng.uniform(1500.0, 5000.0)
        clicks = signal.sosfilt(_resonator_sos([f], [rng.uniform(150.0, 500.0)], sr), drops)
        out += level * _unit_rms(clicks)
    return out


def _wind(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Wind: low-passed noise with slow gusts, and a howl whose pitch rises with the gust."""
    gust = np.exp(0.6 * _smooth_noise(rng, n, sr, rng.uniform(0.3, 1.5)))
    gust /= gust.max()
    noise = rng.standard_normal(n)
    body = _unit_rms(_filt("lowpass", noise, rng.uniform(200.0, 1200.0), sr))
    centre = rng.uniform(300.0, 600.0)
    howl_lo = _unit_rms(_filt("bandpass", noise, (0.9 * centre, 1.1 * centre), sr))
    howl_hi = _unit_rms(_filt("bandpass", noise, (1.35 * centre, 1.65 * centre), sr))
    howl = (1.0 - gust) * howl_lo + gust * howl_hi
    return gust * (body + rng.uniform(0.1, 0.5) * howl)


_SYNTHS = (_speech, _whistling, _guitar, _violin, _flute, _drum, _dog, _bird, _cat,
           _siren, _engine, _alarm, _rain, _wind)
assert [f.__name__[1:] for f in _SYNTHS] == [c.lower() for c in _CLASS_NAMES]


def _background(kind: str, rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Background noise of unit RMS, shape (n,): white, pink (1/f), brown (1/f**2) or mains hum."""
    if kind == "white":
        x = rng.standard_normal(n)
    elif kind == "pink":
        x = _colored_noise(rng, n, sr, 1.0)
    elif kind == "brown":
        x = _colored_noise(rng, n, sr, 2.0)
    elif kind == "hum":
        mains = 50.0 if rng.random() < 0.5 else 60.0
        t = np.arange(n) / sr
        x = np.zeros(n)
        for h in range(1, 9):
            if h * mains < _fmax(sr):
                amp = rng.uniform(0.5, 1.0) / h ** (0.7 if h % 2 else 1.2)
                x += amp * np.sin(2 * np.pi * h * mains * t + rng.uniform(0.0, 2 * np.pi))
        x = _unit_rms(x) + 0.05 * rng.standard_normal(n)
    else:
        raise ValueError(f"unknown background {kind!r}; expected one of {BACKGROUNDS}")
    if _rms(x) <= 1e-12:
        x = rng.standard_normal(n)
    return _unit_rms(x)


def _render_event(class_index: int, rng: np.random.Generator, n: int, sr: int, voice: str) -> np.ndarray:
    """One event of ``n`` samples at unit RMS with faded edges (white noise only if synthesis is silent)."""
    synth = _SYNTHS[class_index]
    x = synth(rng, n, sr, voice) if class_index == _SPEECH else synth(rng, n, sr)
    x = _fade(np.asarray(x, dtype=np.float64), sr)
    if not np.all(np.isfinite(x)) or _rms(x) <= 1e-12:
        x = _fade(rng.standard_normal(n), sr)
    return _unit_rms(x)


# --------------------------------------------------------------------------------------
# Clip plans
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _EventPlan:
    """One event: class, placement (samples) and level (dB re unit RMS)."""

    class_index: int
    onset: int
    length: int
    level_db: float


@dataclass(frozen=True)
class _ClipPlan:
    """Everything drawn for a clip before any audio is rendered."""

    n_samples: int
    events: tuple[_EventPlan, ...]
    voice_type: str           # "none" when there is no Speech event
    background: str
    snr_db: float


def _plan_clip(rng: np.random.Generator, *, sample_rate: int, min_seconds: float, max_seconds: float,
               class_p: np.ndarray, voice_p: np.ndarray) -> _ClipPlan:
    """Draw a clip's length, events, voice type, background and SNR (order of draws is fixed)."""
    n = max(1, int(round(rng.uniform(min_seconds, max_seconds) * sample_rate)))
    n_events = min(int(rng.integers(1, _MAX_EVENTS + 1)), int(np.count_nonzero(class_p)))
    classes = rng.choice(len(_CLASS_NAMES), size=n_events, replace=False, p=class_p)
    voice = VOICE_TYPES[int(rng.choice(len(VOICE_TYPES), p=voice_p))]
    background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    snr_db = round(float(rng.uniform(*SNR_DB_RANGE)), 2)
    events = []
    for c in sorted(int(c) for c in classes):
        length = max(1, int(round(rng.uniform(_MIN_EVENT_SHARE, 1.0) * n)))
        onset = int(rng.integers(0, n - length + 1))
        level = float(rng.uniform(-_EVENT_LEVEL_DB, _EVENT_LEVEL_DB))
        events.append(_EventPlan(class_index=c, onset=onset, length=length, level_db=level))
    return _ClipPlan(n_samples=n, events=tuple(events),
                     voice_type=voice if _SPEECH in classes else "none",
                     background=background, snr_db=snr_db)


def _render_clip(plan: _ClipPlan, rng: np.random.Generator, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Render a planned clip as its two separate components.

    The event mix and the background are scaled by one common gain so that
    ``events + background`` peaks at 0.9, and the background is scaled so that
    ``10 * log10(mean(events**2) / mean(background**2)) == plan.snr_db``
    (powers are means over the whole clip).

    Returns
    -------
    events, background : ndarray, shape (plan.n_samples,), float64
        The clip is ``(events + background).astype(np.float32)``.
    """
    n = plan.n_samples
    events = np.zeros(n)
    voice = plan.voice_type if plan.voice_type != "none" else VOICE_TYPES[0]
    for ev in plan.events:
        x = _render_event(ev.class_index, rng, ev.length, sample_rate, voice)
        events[ev.onset:ev.onset + ev.length] += x * 10.0 ** (ev.level_db / 20.0)
    bg = _background(plan.background, rng, n, sample_rate)
    bg *= math.sqrt(np.mean(events ** 2) / 10.0 ** (plan.snr_db / 10.0)) / max(_rms(bg), 1e-12)
    peak = float(np.max(np.abs(events + bg)))
    gain = _PEAK / peak if peak > 0 else 1.0
    return events * gain, bg * gain


def _clip_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, _SPLIT_CODES[split], index])


def _generate_clip(seed: int, split: str, index: int, *, sample_rate: int, min_seconds: float,
                   max_seconds: float, class_p: np.ndarray, voice_p: np.ndarray
                   ) -> tuple[_ClipPlan, np.ndarray, np.ndarray]:
    """Plan and render clip ``index`` of a split from its own rng; returns (plan, events, background)."""
    rng = _clip_rng(seed, split, index)
    plan = _plan_clip(rng, sample_rate=sample_rate, min_seconds=min_seconds, max_seconds=max_seconds,
                      class_p=class_p, voice_p=voice_p)
    events, bg = _render_clip(plan, rng, sample_rate)
    return plan, events, bg


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------

def _snr_bucket(snr_db: float) -> str:
    for label, lo, hi in SNR_BUCKETS:
        if lo <= snr_db < hi:
            return label
    return SNR_BUCKETS[-1][0]


def _instrument_family(classes: list[int]) -> str:
    fams = [_MUSIC[c] for c in classes if c in _MUSIC]
    return "none" if not fams else fams[0] if len(fams) == 1 else "multiple"


def _is_int(x) -> bool:
    return isinstance(x, Integral) and not isinstance(x, bool)


def _is_real(x) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool) and math.isfinite(float(x))


def _check_weights(name: str, value, keys: tuple[str, ...], *, must_sum_to_one: bool) -> np.ndarray:
    """Validate a {key: weight} dict covering exactly ``keys``; returns probabilities in ``keys`` order."""
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a dict, got {value!r}")
    unknown = sorted(set(value) - set(keys), key=str)
    missing = [k for k in keys if k not in value]
    if unknown:
        raise ValueError(f"{name}: unknown key(s) {unknown!r}; expected {list(keys)!r}")
    if missing:
        raise ValueError(f"{name}: missing key(s) {missing!r}; every one of {list(keys)!r} needs a value")
    for k in keys:
        if not _is_real(value[k]) or value[k] < 0:
            raise ValueError(f"{name}[{k!r}] must be a finite number >= 0, got {value[k]!r}")
    w = np.array([float(value[k]) for k in keys])
    total = float(w.sum())
    if must_sum_to_one and abs(total - 1.0) > 1e-6:
        raise ValueError(f"{name} must sum to 1, got {total!r} from {value!r}")
    if total <= 0:
        raise ValueError(f"{name} must have a positive total, got {value!r}")
    return w / total


def _skew_text(class_p: np.ndarray, voice_p: np.ndarray) -> str:
    class_flat = np.allclose(class_p, 1.0 / class_p.size)
    voice_flat = np.allclose(voice_p, 1.0 / voice_p.size)
    if class_flat and voice_flat:
        return "balanced"
    parts = []
    if not class_flat:
        order = np.argsort(-class_p, kind="stable")
        top = ", ".join(f"{_CLASS_NAMES[i]} {100 * class_p[i]:.1f}%" for i in order[:6])
        parts.append(f"event classes drawn with unequal sampling weights (highest: {top}; lowest: "
                     f"{_CLASS_NAMES[order[-1]]} {100 * class_p[order[-1]]:.1f}%)")
    if not voice_flat:
        voices = ", ".join(f"{v} {100 * p:.0f}%" for v, p in zip(VOICE_TYPES, voice_p))
        parts.append(f"speaker voice types of Speech events are skewed ({voices})")
    return "planted skew: " + "; ".join(parts) + ". Backgrounds, SNR and event counts are balanced."


def make_synthetic(*, split: str, n_clips: int, seed: int, sample_rate: int = 16000,
                   min_seconds: float = 1.0, max_seconds: float = 2.0,
                   voice_proportions: dict[str, float] | None = None,
                   class_weights: dict[str, float] | None = None) -> AudioDataset:
    """Generate the synthetic AudioSet-like multi-label dataset.

    Each clip holds 1-3 events of distinct classes (each covering a random
    40-100 % of the clip at a random onset, levels within +-3 dB), mixed over a
    white, pink, brown or mains-hum background at an SNR drawn uniformly from
    0-30 dB (event power over background power, both averaged over the clip),
    then scaled to a peak of 0.9.

    Parameters
    ----------
    split : {"train", "eval"}
        ``"train"`` carries the planted skew (defaults :data:`DEFAULT_TRAIN_CLASS_WEIGHTS`
        and :data:`DEFAULT_TRAIN_VOICE_PROPORTIONS`: Speech ~31 % of events, each
        music class ~9.6 %, every other class ~3.4 %; voices male 0.85, female 0.12,
        child 0.03). ``"eval"`` defaults to equal class weights and voice types.
    n_clips : int
        Number of clips, >= 1.
    seed : int
        >= 0. Clip ``i`` is drawn from ``np.random.default_rng([seed, split_code, i])``,
        so the two splits differ for one seed and a clip does not depend on ``n_clips``.
    sample_rate : int
        Hz, 8000-192000.
    min_seconds, max_seconds : float
        Each clip's duration is uniform in [min_seconds, max_seconds] (seconds;
        ``min_seconds >= 0.1``, ``max_seconds >= min_seconds``).
    voice_proportions : dict, optional
        ``{"male": p, "female": p, "child": p}``, all three keys, each >= 0,
        summing to 1: the voice type of a Speech event. Overrides the split default.
    class_weights : dict, optional
        A weight >= 0 for every one of the 14 class display names (normalised;
        not required to sum to 1): event classes are drawn without replacement
        with these weights. Overrides the split default (pass equal weights for a
        balanced training split).

    Returns
    -------
    AudioDataset
        ``name = f"synthetic-{split}"``; ``clips`` are float32 arrays of shape
        (n_samples_i,) with peak 0.9; ``labels`` uint8 of shape (n_clips, 14),
        columns in :data:`SYNTHETIC_CLASSES` order; ``metadata`` has columns
        clip_id, voice_type, instrument_family, n_events, snr_db, snr_bucket,
        background, duration_s; ``card`` is a JSON-able dict of the generation
        parameters and counts.

    Notes
    -----
    With the environment variable ``FACTSHEET_SYNTHETIC_CACHE`` naming a folder, a generated
    dataset is kept there (one ``.npz`` per argument set and generator version, read back without
    pickle) and the same call later reads it instead of synthesising again; the result is identical
    (``tests/test_synthetic.py``). The test suite sets it; unset, nothing is written.

    Raises
    ------
    ValueError
        Any argument out of range, naming the bad value.
    """
    if split not in _SPLIT_CODES:
        raise ValueError(f"split must be one of {sorted(_SPLIT_CODES)!r}, got {split!r}")
    if not _is_int(n_clips) or n_clips < 1:
        raise ValueError(f"n_clips must be an integer >= 1, got {n_clips!r}")
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if not _is_int(sample_rate) or not 8000 <= sample_rate <= 192000:
        raise ValueError(f"sample_rate must be an integer in [8000, 192000] Hz, got {sample_rate!r}")
    if not _is_real(min_seconds) or min_seconds < _MIN_SECONDS:
        raise ValueError(f"min_seconds must be a finite number >= {_MIN_SECONDS}, got {min_seconds!r}")
    if not _is_real(max_seconds) or max_seconds < min_seconds:
        raise ValueError(f"max_seconds must be a finite number >= min_seconds ({min_seconds!r}), "
                         f"got {max_seconds!r}")
    n_clips, seed, sample_rate = int(n_clips), int(seed), int(sample_rate)
    min_seconds, max_seconds = float(min_seconds), float(max_seconds)

    if voice_proportions is None:
        voice_proportions = (dict(DEFAULT_TRAIN_VOICE_PROPORTIONS) if split == "train"
                             else {v: 1.0 / len(VOICE_TYPES) for v in VOICE_TYPES})
    voice_p = _check_weights("voice_proportions", voice_proportions, VOICE_TYPES, must_sum_to_one=True)
    if class_weights is None:
        class_weights = (dict(DEFAULT_TRAIN_CLASS_WEIGHTS) if split == "train"
                         else {c: 1.0 for c in _CLASS_NAMES})
    class_p = _check_weights("class_weights", class_weights, _CLASS_NAMES, must_sum_to_one=False)

    key = (split, n_clips, seed, sample_rate, min_seconds, max_seconds, class_p.tobytes().hex(),
           voice_p.tobytes().hex())
    cached = _read_cache(key)
    if cached is not None:
        clips, labels, rows, placed = cached
    else:
        clips, labels, rows, placed = _generate(split=split, n_clips=n_clips, seed=seed, sample_rate=sample_rate,
                                                min_seconds=min_seconds, max_seconds=max_seconds, class_p=class_p,
                                                voice_p=voice_p)
        _write_cache(key, clips=clips, labels=labels, rows=rows, placed=placed)
    metadata = pd.DataFrame(rows, columns=_METADATA_COLUMNS)
    metadata["n_events"] = metadata["n_events"].astype(np.int64)
    metadata["snr_db"] = metadata["snr_db"].astype(np.float64)
    metadata["duration_s"] = metadata["duration_s"].astype(np.float64)

    def counts(col: str, keys) -> dict:
        vc = metadata[col].value_counts()
        return {str(k): int(vc.get(k, 0)) for k in keys}

    card = {
        "description": ("Procedurally generated AudioSet-like multi-label dataset: 16 kHz-style mono clips "
                        "with 1-3 synthesised sound events of 14 classes (speech with male/female/child "
                        "voices, music, animals, vehicles/alarms, nature) over white/pink/brown/hum "
                        "background noise at a recorded SNR. No recorded audio is used."),
        "source": "procedural synthesis (numpy + scipy.signal)",
        "generator": f"{GENERATOR_NAME} {GENERATOR_VERSION}",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "split": split,
        "sample_rate": sample_rate,
        "clip_seconds": [min_seconds, max_seconds],
        "n_clips": n_clips,
        "n_classes": len(_CLASS_NAMES),
        "classes": [{"index": c.index, "mid": c.mid, "display_name": c.display_name, "category": c.category}
                    for c in SYNTHETIC_CLASSES],
        "class_event_counts": {name: int(labels[:, j].sum()) for j, name in enumerate(_CLASS_NAMES)},
        "voice_type_counts": counts("voice_type", VOICE_TYPES + ("none",)),
        "instrument_family_counts": counts(
            "instrument_family", tuple(INSTRUMENT_FAMILIES.values()) + ("multiple", "none")),
        "background_counts": counts("background", BACKGROUNDS),
        "n_events_counts": counts("n_events", range(1, _MAX_EVENTS + 1)),
        "snr_bucket_counts": counts("snr_bucket", [b[0] for b in SNR_BUCKETS]),
        "snr_db_range": list(SNR_DB_RANGE),
        "event_share_range": [_MIN_EVENT_SHARE, 1.0],
        "event_level_db_range": [-_EVENT_LEVEL_DB, _EVENT_LEVEL_DB],
        "peak": _PEAK,
        "skew": _skew_text(class_p, voice_p),
        "voice_proportions": {v: float(p) for v, p in zip(VOICE_TYPES, voice_p)},
        "class_weights": {c: float(p) for c, p in zip(_CLASS_NAMES, class_p)},
    }
    return AudioDataset(name=f"synthetic-{split}", sample_rate=sample_rate, clips=clips, labels=labels,
                        class_labels=list(SYNTHETIC_CLASSES), metadata=metadata, card=card,
                        events=placed)


_METADATA_COLUMNS = ["clip_id", "voice_type", "instrument_family", "n_events", "snr_db", "snr_bucket", "background",
                     "duration_s"]
_TEXT_COLUMNS = ("clip_id", "voice_type", "instrument_family", "snr_bucket", "background")
#: Environment variable naming a folder where generated datasets are kept and read back (off when unset).
CACHE_ENV = "FACTSHEET_SYNTHETIC_CACHE"


def _generate(*, split: str, n_clips: int, seed: int, sample_rate: int, min_seconds: float, max_seconds: float,
              class_p: np.ndarray, voice_p: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, list[dict], list[tuple]]:
    """The clips, labels (n_clips, 14) uint8, metadata rows and placed events of :func:`make_synthetic`."""
    clips: list[np.ndarray] = []
    labels = np.zeros((n_clips, len(_CLASS_NAMES)), dtype=np.uint8)
    rows: list[dict] = []
    placed: list[tuple] = []
    for i in range(n_clips):
        plan, events, bg = _generate_clip(seed, split, i, sample_rate=sample_rate, min_seconds=min_seconds,
                                          max_seconds=max_seconds, class_p=class_p, voice_p=voice_p)
        clips.append(np.ascontiguousarray(events + bg, dtype=np.float32))
        classes = [ev.class_index for ev in plan.events]
        labels[i, classes] = 1
        placed.append(tuple((ev.class_index, ev.onset / sample_rate, (ev.onset + ev.length) / sample_rate)
                            for ev in plan.events))
        rows.append({
            "clip_id": f"{split}-{i:06d}",
            "voice_type": plan.voice_type,
            "instrument_family": _instrument_family(classes),
            "n_events": len(classes),
            "snr_db": plan.snr_db,
            "snr_bucket": _snr_bucket(plan.snr_db),
            "background": plan.background,
            "duration_s": plan.n_samples / sample_rate,
        })
    return clips, labels, rows, placed


def _cache_file(key: tuple):
    """The cache file of ``key`` under ``$FACTSHEET_SYNTHETIC_CACHE``; None when the variable is unset."""
    import hashlib
    import os
    from pathlib import Path

    folder = os.environ.get(CACHE_ENV)
    if not folder:
        return None
    digest = hashlib.sha256(repr((GENERATOR_VERSION,) + key).encode("utf-8")).hexdigest()[:32]
    return Path(folder) / f"synthetic-{digest}.npz"


def _read_cache(key: tuple):
    """A dataset kept by :func:`_write_cache` (no pickle), or None: no cache, no file, or an unreadable one."""
    path = _cache_file(key)
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            bounds, ev_bounds, samples = z["bounds"], z["event_bounds"], z["samples"]  # each z[...] reads the file
            clips = [samples[a:b].copy() for a, b in zip(bounds[:-1], bounds[1:])]  # own memory, not views of one
            cols = {c: z[f"col_{c}"] for c in _METADATA_COLUMNS}
            rows = [{c: (str(cols[c][i]) if c in _TEXT_COLUMNS else cols[c][i].item()) for c in _METADATA_COLUMNS}
                    for i in range(len(clips))]
            cls, times = z["event_class"], z["event_times"]
            placed = [tuple((int(cls[k]), float(times[k, 0]), float(times[k, 1])) for k in range(a, b))
                      for a, b in zip(ev_bounds[:-1], ev_bounds[1:])]
            return clips, z["labels"].copy(), rows, placed
    except (OSError, ValueError, KeyError):
        return None


def _write_cache(key: tuple, *, clips: list[np.ndarray], labels: np.ndarray, rows: list[dict],
                 placed: list[tuple]) -> None:
    """Keep a generated dataset under ``$FACTSHEET_SYNTHETIC_CACHE`` (written atomically; errors ignored)."""
    import os
    import tempfile

    path = _cache_file(key)
    if path is None:
        return
    lengths = np.array([c.size for c in clips], dtype=np.int64)
    n_events = np.array([len(p) for p in placed], dtype=np.int64)
    flat = [e for p in placed for e in p]
    arrays = {
        "samples": np.concatenate(clips) if clips else np.zeros(0, np.float32),
        "bounds": np.concatenate([[0], np.cumsum(lengths)]),
        "labels": labels,
        "event_bounds": np.concatenate([[0], np.cumsum(n_events)]),
        "event_class": np.array([e[0] for e in flat], dtype=np.int64),
        "event_times": np.array([[e[1], e[2]] for e in flat], dtype=np.float64).reshape(-1, 2),
        **{f"col_{c}": (np.array([str(r[c]) for r in rows]) if c in _TEXT_COLUMNS
                        else np.array([r[c] for r in rows], dtype=np.int64 if c == "n_events" else np.float64))
           for c in _METADATA_COLUMNS},
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass
