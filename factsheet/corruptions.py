"""Domain-shift corruptions of waveforms, graded in physical units, each with a measure of what it achieved.

Nine corruptions, five severities each (the default suite; see :func:`default_suite`):

============  ===========  ==============================  ======================  ==========
name          level unit   default levels (severity 1..5)  measure                 unit
============  ===========  ==============================  ======================  ==========
white_noise   dB SNR       40, 30, 20, 10, 0               realised_snr_db         dB
pink_noise    dB SNR       40, 30, 20, 10, 0               realised_snr_db         dB
reverb        s (RT60)     0.2, 0.4, 0.7, 1.0, 1.5         rt60_s (Schroeder T30)  s
lowpass       Hz           6000, 4000, 3400, 2000, 1000    stopband_atten_db       dB
highpass      Hz           250, 500, 1000, 2000, 3000      stopband_atten_db       dB
level_drop    dB           10, 20, 30, 40, 50              level_change_db         dB
overdrive     dB gain      6, 12, 18, 24, 30               clipped_fraction        fraction
quantisation  bits         12, 10, 8, 6, 4                 distinct_levels         levels
speed         semitones    -1, +1, -2, +2, +3              speed_ratio             ratio
============  ===========  ==============================  ======================  ==========

The speed levels are ordered by ``|semitones|`` (the size of the shift), not by sign, so that
severity grows with the index; the low-pass levels need ``sample_rate > 12000`` Hz.

Waveforms follow the project's contract (:mod:`factsheet.audio`): float, values in [-1, 1],
16-bit PCM ``k`` read as ``k / 32768``. Every output is requantised to that grid
(``clip(round(y * 32768), -32768, 32767) / 32768``, round half to even), so it is exactly
what a 16-bit WAV of the corrupted clip would hold; every measure that compares output with
input is taken after that requantisation. Power is the mean square; dBFS is relative to a
mean square of 1 (a full-scale sine is -3 dBFS).

Randomness (white and pink noise, the reverb tails) comes from one generator per clip,
``np.random.default_rng(SeedSequence(seed.entropy, spawn_key=seed.spawn_key + (tag, key,
crc32(corruption), severity)))`` where ``key`` is the clip's id (an int, ``tag`` 0) or the
first 8 bytes of the SHA-256 of a str id (``tag`` 1), the clip's index in the batch by
default. A clip therefore gets the same draw whether it is corrupted alone or in a batch, in
any order (pass its id), and the same inputs and seed give bit-identical output.

Choices. Noise: the injected power is ``P_x / 10**(snr/10) - LSB**2 / 12`` so that the SNR
realised after requantisation (which adds ``LSB**2 / 12``) meets the level unless the output
clips. Reverb: a direct path plus an exponentially decaying Gaussian tail at a fixed
direct-to-reverberant ratio of 0 dB (the source at the critical distance; only the decay time
changes with severity), scaled to unit energy, applied by FFT convolution, output cut to the
input length. Filters: Butterworth of order :data:`BUTTER_ORDER` run forward and backward.
Overdrive: hard clipping at +-1 before requantisation. Speed: a rational resampling factor; a
slowed clip is cut to the input length, a sped-up one looped from its start (as
:func:`factsheet.datasets.base.fit_length` does).

A clip is *silent* when every sample rounds to 0 on the 16-bit grid (``max|x| <= 0.5 / 32768``).
Noise for a silent clip is scaled relative to :data:`SILENT_REFERENCE_DBFS` (-60 dBFS) instead
of the clip's own power; every measure relative to the input's power is NaN for a silent clip.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import lru_cache

import numpy as np
from scipy import fft as sp_fft
from scipy import signal

__all__ = ["BUTTER_ORDER", "CORRUPTIONS", "CorruptionSpec", "MEASURES", "N_SEVERITIES", "REVERB_DRR_DB",
           "SILENT_REFERENCE_DBFS", "check_level", "corrupt", "default_suite", "expected_measure",
           "filter_test_frequency", "schroeder_rt60", "speed_plan", "stopband_attenuation_db", "validate_suite"]

N_SEVERITIES = 5
"""Levels per corruption (severities 1..5, as in ImageNet-C and Speech Robust Bench)."""
PCM_SCALE = 32768.0
"""16-bit PCM ``k`` is the float ``k / PCM_SCALE``."""
LSB = 1.0 / PCM_SCALE
SILENT_REFERENCE_DBFS = -60.0
"""dBFS; the power noise is scaled against when a clip is silent."""
BUTTER_ORDER = 4
"""Butterworth order per pass; applied forward and backward (zero phase), so the magnitude
response is squared: 48 dB/octave far from the cut-off, -6 dB at the cut-off."""
REVERB_DRR_DB = 0.0
"""Direct-to-reverberant energy ratio of every synthetic impulse response (dB)."""
REVERB_TAIL_DB = 80.0
"""The impulse response runs until its envelope has decayed by this many dB (4/3 RT60)."""
SPEED_MAX_DENOMINATOR = 100
"""Largest ``up`` / ``down`` of the rational resampling factor (ratio error <= 6e-5 at the default levels)."""
_BLOCK = 8  # clips per block: temporaries of ~1 MB stay in cache; results do not depend on it
_SCHROEDER_RANGE_DB = (-5.0, -35.0)  # T30 evaluation range of the energy decay curve


@dataclass(frozen=True)
class CorruptionSpec:
    """One corruption and its five levels.

    Attributes
    ----------
    name : str
        Registry key, e.g. ``"white_noise"``.
    unit : str
        Unit of the levels, e.g. ``"dB SNR"``, ``"Hz"``.
    levels : tuple of float
        ``N_SEVERITIES`` levels; ``levels[s - 1]`` is severity ``s``.
    definition : str
        One line: what the corruption does.
    measure : str
        Key of the achieved value in :func:`corrupt`'s result, e.g. ``"realised_snr_db"``.
    measure_unit : str
        Its unit.
    check : str
        One line: what the measure should show when the corruption did what was asked.
    """

    name: str
    unit: str
    levels: tuple[float, ...]
    definition: str
    measure: str
    measure_unit: str
    check: str

    def level(self, severity: int) -> float:
        """The level of ``severity`` (1..5), in :attr:`unit`."""
        return self.levels[_check_severity(severity) - 1]


def _spec(name: str, unit: str, levels: tuple[float, ...], definition: str, measure: str, measure_unit: str,
          check: str) -> CorruptionSpec:
    return CorruptionSpec(name, unit, tuple(float(v) for v in levels), definition, measure, measure_unit, check)


CORRUPTIONS: dict[str, CorruptionSpec] = {s.name: s for s in (
    _spec("white_noise", "dB SNR", (40, 30, 20, 10, 0),
          "Gaussian white noise added at the clip's own power over the level (dB)",
          "realised_snr_db", "dB", "10 log10(P_clean / P(output - input)) close to the level"),
    _spec("pink_noise", "dB SNR", (40, 30, 20, 10, 0),
          "Gaussian noise with a 1/f power spectrum (-10 dB/decade, no DC) added at the clip's power over the level",
          "realised_snr_db", "dB", "10 log10(P_clean / P(output - input)) close to the level"),
    _spec("reverb", "s (RT60)", (0.2, 0.4, 0.7, 1.0, 1.5),
          "convolution with a direct path plus an exponentially decaying noise tail (60 dB in RT60, DRR 0 dB)",
          "rt60_s", "s", "Schroeder T30 of the impulse response, extrapolated to 60 dB, close to the level"),
    _spec("lowpass", "Hz", (6000, 4000, 3400, 2000, 1000),
          f"zero-phase Butterworth low-pass, order {BUTTER_ORDER} run forward and backward, cut-off at -6 dB",
          "stopband_atten_db", "dB",
          "attenuation at 2x the cut-off (or midway to Nyquist) from the filter's response, >= 20 dB"),
    _spec("highpass", "Hz", (250, 500, 1000, 2000, 3000),
          f"zero-phase Butterworth high-pass, order {BUTTER_ORDER} run forward and backward, cut-off at -6 dB",
          "stopband_atten_db", "dB", "attenuation at half the cut-off from the filter's response, >= 20 dB"),
    _spec("level_drop", "dB", (10, 20, 30, 40, 50),
          "the clip attenuated by the level (dB)",
          "level_change_db", "dB", "10 log10(P_out / P_in) close to minus the level"),
    _spec("overdrive", "dB gain", (6, 12, 18, 24, 30),
          "gain by the level (dB), then hard clipping at full scale",
          "clipped_fraction", "fraction", "share of samples driven to or beyond full scale; grows with the level"),
    _spec("quantisation", "bits", (12, 10, 8, 6, 4),
          "uniform mid-tread quantiser on [-1, 1): step 2**(1 - bits), 2**bits levels k / 2**(bits - 1)",
          "distinct_levels", "levels", "distinct sample values per clip, at most 2**bits"),
    _spec("speed", "semitones", (-1, 1, -2, 2, 3),
          "played 2**(level / 12) times faster by polyphase resampling, then cut or looped to the input length",
          "speed_ratio", "ratio", "frequency ratio of a probe tone through the same resampler, close to 2**(level/12)"),
)}
"""The registry: name -> default :class:`CorruptionSpec` (in suite order)."""

MEASURES: dict[str, tuple[str, str]] = {name: (s.measure, s.measure_unit) for name, s in CORRUPTIONS.items()}
"""Name -> (measure key, unit) of the achieved value that checks each corruption."""

# (lowest, highest, whole numbers only) per corruption; filter cut-offs are also checked against Nyquist.
_BOUNDS: dict[str, tuple[float, float, bool]] = {
    "white_noise": (-30.0, 120.0, False), "pink_noise": (-30.0, 120.0, False), "reverb": (0.05, 10.0, False),
    "lowpass": (1.0, math.inf, False), "highpass": (1.0, math.inf, False), "level_drop": (0.0, 120.0, False),
    "overdrive": (0.0, 60.0, False), "quantisation": (1, 16, True), "speed": (-24.0, 24.0, False),
}


def default_suite() -> tuple[CorruptionSpec, ...]:
    """The default suite: every registered corruption with its default levels, in registry order.

    Returns
    -------
    tuple of CorruptionSpec
        Nine specs (45 cells). The low-pass levels need ``sample_rate > 12000`` Hz; check a
        suite against a rate with :func:`validate_suite`.
    """
    return tuple(CORRUPTIONS.values())


def expected_measure(name: str, level: float) -> float | None:
    """The value :data:`MEASURES` ``[name]`` should come close to at ``level``, or None where it is a bound.

    Noise: the SNR (dB); reverb: the RT60 (s); level drop: ``-level`` (dB); speed:
    ``2 ** (level / 12)``; quantisation: ``2 ** level`` (an upper bound on the distinct levels).
    Filters and overdrive have no target value (see :attr:`CorruptionSpec.check`): None.
    """
    targets: dict[str, Callable[[float], float]] = {
        "white_noise": float, "pink_noise": float, "reverb": float, "level_drop": lambda v: -float(v),
        "speed": lambda v: 2.0 ** (float(v) / 12.0), "quantisation": lambda v: 2.0 ** float(v)}
    return targets[name](level) if name in targets else None


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def check_level(name: str, level: object, *, sample_rate: int, field: str = "level") -> float:
    """Validate one level of corruption ``name`` for ``sample_rate``; return it as a float.

    Raises
    ------
    ValueError
        One line ``"<field> = <value>: <reason>"``: not a number (bool, str, NaN, inf), out of
        the corruption's range, a fractional number of bits, or a filter cut-off at or above
        Nyquist (``sample_rate / 2``).
    """
    if name not in _BOUNDS:
        raise ValueError(f"corruption = {name!r}: unknown corruption (known: {', '.join(CORRUPTIONS)})")
    lo, hi, whole = _BOUNDS[name]
    unit = CORRUPTIONS[name].unit
    if not _is_real(level) or not math.isfinite(float(level)):
        raise ValueError(f"{field} = {level!r}: not a finite number ({name} level in {unit})")
    value = float(level)
    if whole and value != int(value):
        raise ValueError(f"{field} = {level!r}: {name} level must be a whole number of {unit}")
    if not lo <= value <= hi:
        raise ValueError(f"{field} = {level!r}: {name} level must be in [{lo:g}, {hi:g}] {unit}")
    if name in ("lowpass", "highpass") and value >= sample_rate / 2:
        raise ValueError(f"{field} = {level!r}: {name} cut-off at or above the Nyquist frequency "
                         f"({sample_rate / 2:g} Hz at sample_rate {sample_rate})")
    return value


def _check_rate(sample_rate: object) -> int:
    if not _is_real(sample_rate) or float(sample_rate) != int(sample_rate) or int(sample_rate) <= 0:
        raise ValueError(f"sample_rate = {sample_rate!r}: must be a positive whole number of Hz")
    return int(sample_rate)


def _check_severity(severity: object) -> int:
    if not isinstance(severity, (int, np.integer)) or isinstance(severity, (bool, np.bool_)) \
            or not 1 <= severity <= N_SEVERITIES:
        raise ValueError(f"severity = {severity!r}: must be an integer 1..{N_SEVERITIES}")
    return int(severity)


def _entry_spec(entry: object, *, field: str) -> tuple[CorruptionSpec, object]:
    """The default spec an entry names, and its ``levels`` (None when not given)."""
    if isinstance(entry, str):
        name, levels = entry, None
    elif isinstance(entry, Mapping):
        extra = sorted(set(entry) - {"name", "levels"})
        if extra:
            raise ValueError(f"{field}.{extra[0]} = {entry[extra[0]]!r}: unknown key (expected name, levels)")
        name, levels = entry.get("name"), entry.get("levels")
    else:
        raise ValueError(f"{field} = {entry!r}: expected a corruption name or a table with name and levels")
    if not isinstance(name, str) or name not in CORRUPTIONS:
        raise ValueError(f"{field}.name = {name!r}: unknown corruption (known: {', '.join(CORRUPTIONS)})")
    return CORRUPTIONS[name], levels


def validate_suite(entries: Sequence[str | Mapping[str, object]] | None = None, *, sample_rate: int,
                   field: str = "corruptions") -> tuple[CorruptionSpec, ...]:
    """Validate a user's list of corruptions and levels against a sample rate.

    Parameters
    ----------
    entries : sequence of str or mapping, optional
        Each a registered name (default levels) or ``{"name": str, "levels": [5 numbers]}``
        (``levels`` optional). None: the default suite.
    sample_rate : int
        Hz of the clips the suite will corrupt (filter cut-offs must be below ``sample_rate / 2``).
    field : str
        How the list is named in messages (``"domain_shift.corruptions"``).

    Returns
    -------
    tuple of CorruptionSpec
        In the given order, levels as floats.

    Raises
    ------
    ValueError
        One line naming the field and value: an unknown name or key, a name listed twice, not
        exactly five levels, a level that is not a number, out of range or at/above Nyquist.
    """
    rate = _check_rate(sample_rate)
    if entries is None:
        entries = list(CORRUPTIONS)
    if isinstance(entries, (str, Mapping)) or not isinstance(entries, Sequence) or not entries:
        raise ValueError(f"{field} = {entries!r}: expected a non-empty list of corruptions")
    specs: list[CorruptionSpec] = []
    for i, entry in enumerate(entries):
        where = f"{field}[{i}]"
        default, levels = _entry_spec(entry, field=where)
        if any(s.name == default.name for s in specs):
            raise ValueError(f"{where}.name = {default.name!r}: listed twice")
        levels = default.levels if levels is None else levels
        if isinstance(levels, (str, Mapping)) or not isinstance(levels, Sequence) or len(levels) != N_SEVERITIES:
            raise ValueError(f"{where}.levels = {levels!r}: expected a list of {N_SEVERITIES} levels "
                             f"(severities 1..{N_SEVERITIES}) in {default.unit}")
        values = tuple(check_level(default.name, v, sample_rate=rate, field=f"{where}.levels[{j}]")
                       for j, v in enumerate(levels))
        specs.append(CorruptionSpec(default.name, default.unit, values, default.definition, default.measure,
                                    default.measure_unit, default.check))
    return tuple(specs)


# ----------------------------------------------------------------------------- randomness

def _root_seed(seed: object) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)) and seed >= 0:
        return np.random.SeedSequence(int(seed))
    raise ValueError(f"seed = {seed!r}: must be an integer >= 0 or a numpy SeedSequence")


def _clip_keys(clip_ids: Sequence[int | str] | np.ndarray | None, n_clips: int) -> list[tuple[int, int]]:
    """(tag, key) per clip: (0, int id) or (1, first 8 bytes of the SHA-256 of a str id)."""
    if clip_ids is None:
        return [(0, i) for i in range(n_clips)]
    ids = list(clip_ids)
    if len(ids) != n_clips:
        raise ValueError(f"clip_ids = <{len(ids)} ids>: expected one id per clip ({n_clips})")
    keys = []
    for i, cid in enumerate(ids):
        if isinstance(cid, str):
            keys.append((1, int.from_bytes(hashlib.sha256(cid.encode("utf-8")).digest()[:8], "big")))
        elif isinstance(cid, (int, np.integer)) and not isinstance(cid, (bool, np.bool_)) and cid >= 0:
            keys.append((0, int(cid)))
        else:
            raise ValueError(f"clip_ids[{i}] = {cid!r}: must be an integer >= 0 or a str")
    return keys


def _clip_rngs(root: np.random.SeedSequence, keys: list[tuple[int, int]], name: str,
               severity: int) -> list[np.random.Generator]:
    """One generator per clip, from (seed, clip key, corruption, severity) only."""
    code = zlib.crc32(name.encode("ascii"))
    return [np.random.default_rng(np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, tag, key, code,
                                                                                   severity),
                                                         pool_size=root.pool_size))
            for tag, key in keys]


def _normals(rngs: list[np.random.Generator], n: int) -> np.ndarray:
    """Standard normal draws, shape (len(rngs), n), float64; row i from ``rngs[i]``."""
    out = np.empty((len(rngs), n))
    for i, rng in enumerate(rngs):
        rng.standard_normal(out=out[i])
    return out


# ----------------------------------------------------------------------------- shared helpers

def _requantise(y: np.ndarray) -> np.ndarray:
    """To the 16-bit grid: ``clip(round(y * 32768), -32768, 32767) / 32768``; float64, same shape."""
    return np.clip(np.round(y * PCM_SCALE), -PCM_SCALE, PCM_SCALE - 1.0) / PCM_SCALE


def _power(x: np.ndarray) -> np.ndarray:
    """Mean square per row; shape (n_clips,)."""
    return np.add.reduce(x * x, axis=1) / x.shape[1]  # row by row (pairwise): a row's value never depends on the batch


def _ratio_db(num: np.ndarray, den: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``10 log10(num / den)`` where ``valid`` and both are > 0; NaN elsewhere."""
    ok = valid & (num > 0) & (den > 0)
    out = np.full(num.shape, np.nan)
    out[ok] = 10.0 * np.log10(num[ok] / den[ok])
    return out


def _silent(x: np.ndarray) -> np.ndarray:
    """True per clip whose every sample rounds to 0 on the 16-bit grid; shape (n_clips,)."""
    return np.max(np.abs(x), axis=1) <= 0.5 * LSB


# ----------------------------------------------------------------------------- the corruptions
# Each takes x (n_clips, n_samples) float64 and returns (output on the 16-bit grid, {measure: (n_clips,)}).

def _pink(white: np.ndarray, sample_rate: int) -> np.ndarray:
    """Shape white noise rows to a 1/f power spectrum (amplitude 1/sqrt(f), DC removed); same shape."""
    n = white.shape[1]
    freqs = np.fft.rfftfreq(n, d=1.0 / sample_rate)
    gain = np.zeros_like(freqs)
    gain[1:] = 1.0 / np.sqrt(freqs[1:])
    return np.fft.irfft(np.fft.rfft(white, axis=1) * gain, n=n, axis=1)


def _noise(x: np.ndarray, *, level: float, sample_rate: int, rngs: list[np.random.Generator],
           pink: bool) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Add noise at SNR ``level`` dB; the injected power leaves room for the 16-bit rounding noise.

    Rounding ``x + noise`` to the grid adds ``LSB**2 / 12`` of independent noise, so the injected
    noise gets ``P_x / 10**(level/10) - LSB**2 / 12`` (at least 0) and the realised SNR after
    requantisation meets the level unless the output clips or the target is below the floor.
    """
    w = _normals(rngs, x.shape[1])
    if pink:
        w = _pink(w, sample_rate)
    silent = _silent(x)
    p_x = _power(x)
    p_ref = np.where(silent, 10.0 ** (SILENT_REFERENCE_DBFS / 10.0), p_x)
    p_inject = np.maximum(p_ref * 10.0 ** (-level / 10.0) - LSB ** 2 / 12.0, 0.0)
    p_w = _power(w)
    scale = np.sqrt(np.divide(p_inject, p_w, out=np.zeros_like(p_w), where=p_w > 0))
    out = _requantise(x + w * scale[:, None])
    return out, {"realised_snr_db": _ratio_db(p_x, _power(out - x), ~silent)}


def _impulse_responses(rngs: list[np.random.Generator], *, rt60: float, sample_rate: int) -> np.ndarray:
    """Synthetic room impulse responses, one per generator; shape (n_clips, L), unit energy.

    ``h[0]`` is the direct path; ``h[1:]`` is Gaussian noise under an envelope
    ``10 ** (-3 t / rt60)`` (energy down 60 dB at ``t = rt60``), running until the envelope is
    down :data:`REVERB_TAIL_DB`; the tail's energy is the direct energy over
    ``10 ** (REVERB_DRR_DB / 10)``, then the whole response is scaled to unit energy.
    """
    length = int(math.ceil(rt60 * sample_rate * REVERB_TAIL_DB / 60.0)) + 1
    envelope = 10.0 ** (-3.0 * np.arange(1, length) / (rt60 * sample_rate))
    tail = _normals(rngs, length - 1) * envelope
    tail *= np.sqrt(10.0 ** (-REVERB_DRR_DB / 10.0) / _power(tail) / (length - 1))[:, None]
    h = np.concatenate([np.ones((len(rngs), 1)), tail], axis=1)
    return h / np.sqrt(1.0 + 10.0 ** (-REVERB_DRR_DB / 10.0))


def schroeder_rt60(h: np.ndarray, *, sample_rate: int) -> np.ndarray:
    """RT60 of impulse responses by Schroeder backward integration (T30, extrapolated to 60 dB).

    The energy decay curve ``EDC(t) = sum_{u >= t} h(u)**2`` in dB re its start; a least-squares
    line through the samples between -5 and -35 dB gives the decay rate; RT60 = 60 dB over it.

    Parameters
    ----------
    h : ndarray, shape (n_clips, L)
    sample_rate : int
        Hz.

    Returns
    -------
    ndarray, shape (n_clips,), seconds; NaN where the curve never falls to -35 dB.
    """
    edc = np.cumsum((h * h)[:, ::-1], axis=1)[:, ::-1]
    with np.errstate(divide="ignore"):
        db = 10.0 * np.log10(edc / edc[:, :1])
    top, bottom = _SCHROEDER_RANGE_DB
    mask = (db <= top) & (db >= bottom)
    t = np.arange(h.shape[1]) / sample_rate
    count, st, stt = mask.sum(1), np.where(mask, t, 0.0).sum(1), np.where(mask, t * t, 0.0).sum(1)
    sy, sty = np.where(mask, db, 0.0).sum(1), np.where(mask, db * t, 0.0).sum(1)
    denom = count * stt - st * st
    slope = np.divide(count * sty - st * sy, denom, out=np.full(len(h), np.nan), where=denom > 0)
    reached = db[:, -1] < bottom
    return np.where(reached & (slope < 0), -60.0 / np.where(slope < 0, slope, -1.0), np.nan)


def _reverb(x: np.ndarray, *, level: float, sample_rate: int,
            rngs: list[np.random.Generator]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Convolve each clip with its own impulse response (FFT), keep the first n_samples."""
    n = x.shape[1]
    h = _impulse_responses(rngs, rt60=level, sample_rate=sample_rate)
    used = h[:, :n]  # later taps cannot reach the first n output samples
    n_fft = sp_fft.next_fast_len(n + used.shape[1] - 1, real=True)
    y = np.fft.irfft(np.fft.rfft(x, n_fft, axis=1) * np.fft.rfft(used, n_fft, axis=1), n_fft, axis=1)[:, :n]
    return _requantise(y), {"rt60_s": schroeder_rt60(h, sample_rate=sample_rate)}


@lru_cache(maxsize=64)
def _butter_sos(btype: str, cutoff: float, sample_rate: int) -> np.ndarray:
    return signal.butter(BUTTER_ORDER, cutoff, btype=btype, fs=sample_rate, output="sos")


def filter_test_frequency(btype: str, cutoff: float, *, sample_rate: int) -> float:
    """Hz where a filter's stop-band attenuation is read.

    Low-pass: 2x the cut-off, or midway between cut-off and Nyquist when 2x is at or beyond
    Nyquist; high-pass: half the cut-off.
    """
    if btype == "highpass":
        return cutoff / 2.0
    nyquist = sample_rate / 2.0
    return 2.0 * cutoff if 2.0 * cutoff < nyquist else (cutoff + nyquist) / 2.0


def stopband_attenuation_db(btype: str, cutoff: float, *, sample_rate: int) -> float:
    """dB of attenuation of the zero-phase filter (``|H|**2`` of its sos) at :func:`filter_test_frequency`."""
    sos = _butter_sos(btype, cutoff, sample_rate)
    f_test = filter_test_frequency(btype, cutoff, sample_rate=sample_rate)
    _, resp = signal.freqz_sos(sos, worN=[f_test], fs=sample_rate)
    return float(-40.0 * np.log10(max(abs(resp[0]), 1e-300)))


def _filter(x: np.ndarray, *, level: float, sample_rate: int, btype: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Zero-phase Butterworth filtering (``sosfiltfilt``, default odd padding) along each clip."""
    y = signal.sosfiltfilt(_butter_sos(btype, level, sample_rate), x, axis=1)
    atten = stopband_attenuation_db(btype, level, sample_rate=sample_rate)
    return _requantise(y), {"stopband_atten_db": np.full(len(x), atten)}


def _level_drop(x: np.ndarray, *, level: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    out = _requantise(x * 10.0 ** (-level / 20.0))
    return out, {"level_change_db": _ratio_db(_power(out), _power(x), ~_silent(x))}


def _overdrive(x: np.ndarray, *, level: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    driven = x * 10.0 ** (level / 20.0)
    clipped = np.count_nonzero(np.abs(driven) >= 1.0, axis=1) / x.shape[1]
    return _requantise(np.clip(driven, -1.0, 1.0)), {"clipped_fraction": clipped}


def _quantise(x: np.ndarray, *, level: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Mid-tread: ``k = clip(round(x / step), -2**(b-1), 2**(b-1) - 1)``, output ``k * step``, step ``2**(1-b)``."""
    half = 2 ** (int(level) - 1)
    k = np.clip(np.round(x * half), -half, half - 1)
    out = _requantise(k / half)  # exact: k / half is already on the 16-bit grid for bits <= 16
    codes = (k + half).astype(np.int64) + (2 * half) * np.arange(len(x))[:, None]
    counts = np.bincount(codes.ravel(), minlength=len(x) * 2 * half).reshape(len(x), 2 * half)
    snr = _ratio_db(_power(x), _power(out - x), ~_silent(x))
    return out, {"distinct_levels": np.count_nonzero(counts, axis=1).astype(np.float64), "quantisation_snr_db": snr}


@lru_cache(maxsize=64)
def speed_plan(semitones: float, *, sample_rate: int) -> tuple[int, int, np.ndarray, float]:
    """Resampling factors for a speed change, its FIR filter and its measured speed ratio.

    Returns
    -------
    up, down : int
        ``Fraction(2 ** (-semitones / 12)).limit_denominator(SPEED_MAX_DENOMINATOR)``: a clip of
        n samples becomes ``ceil(n * up / down)`` samples, played ``down / up`` times faster.
    fir : ndarray
        The anti-aliasing filter :func:`scipy.signal.resample_poly` designs by default
        (Kaiser window, beta 5, 20 * max(up, down) + 1 taps); empty when ``up == down``.
        Cached: read it, do not modify it.
    measured_ratio : float
        Frequency out over frequency in of a 1 s probe tone at ``sample_rate / 16`` Hz through
        the same resampler (Hann window, 8x zero-padded FFT, parabolic peak interpolation).
    """
    frac = Fraction(2.0 ** (-semitones / 12.0)).limit_denominator(SPEED_MAX_DENOMINATOR)
    up, down = frac.numerator, frac.denominator
    if up == down:
        return up, down, np.empty(0), 1.0
    max_rate = max(up, down)
    fir = signal.firwin(20 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0))
    f0 = sample_rate / 16.0
    probe = np.sin(2.0 * np.pi * f0 * np.arange(sample_rate) / sample_rate)
    return up, down, fir, _peak_frequency(signal.resample_poly(probe, up, down, window=fir), sample_rate) / f0


def _peak_frequency(y: np.ndarray, sample_rate: int) -> float:
    """Hz of the strongest spectral peak of a 1-D signal (Hann, 8x zero-padding, parabolic on dB)."""
    n_fft = 8 * sp_fft.next_fast_len(len(y))
    mag = np.abs(np.fft.rfft(y * np.hanning(len(y)), n_fft))
    k = int(np.argmax(mag[1:-1])) + 1
    a, b, c = 20.0 * np.log10(mag[k - 1:k + 2] + 1e-300)
    return (k + 0.5 * (a - c) / (a - 2.0 * b + c)) * sample_rate / n_fft


def _speed(x: np.ndarray, *, level: float, sample_rate: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Resample by ``up / down``; a longer result is cut to n_samples, a shorter one looped from its start."""
    n = x.shape[1]
    up, down, fir, ratio = speed_plan(level, sample_rate=sample_rate)
    y = x.copy() if up == down else signal.resample_poly(x, up, down, axis=1, window=fir)
    if y.shape[1] < n:
        y = np.tile(y, (1, -(-n // y.shape[1])))
    return _requantise(y[:, :n]), {"speed_ratio": np.full(len(x), ratio)}


_Runner = Callable[..., tuple[np.ndarray, dict[str, np.ndarray]]]
_RUNNERS: dict[str, tuple[bool, _Runner]] = {  # name -> (draws noise, runner(x, level, sample_rate, rngs))
    "white_noise": (True, lambda x, lv, sr, g: _noise(x, level=lv, sample_rate=sr, rngs=g, pink=False)),
    "pink_noise": (True, lambda x, lv, sr, g: _noise(x, level=lv, sample_rate=sr, rngs=g, pink=True)),
    "reverb": (True, lambda x, lv, sr, g: _reverb(x, level=lv, sample_rate=sr, rngs=g)),
    "lowpass": (False, lambda x, lv, sr, g: _filter(x, level=lv, sample_rate=sr, btype="lowpass")),
    "highpass": (False, lambda x, lv, sr, g: _filter(x, level=lv, sample_rate=sr, btype="highpass")),
    "level_drop": (False, lambda x, lv, sr, g: _level_drop(x, level=lv)),
    "overdrive": (False, lambda x, lv, sr, g: _overdrive(x, level=lv)),
    "quantisation": (False, lambda x, lv, sr, g: _quantise(x, level=lv)),
    "speed": (False, lambda x, lv, sr, g: _speed(x, level=lv, sample_rate=sr)),
}


# ----------------------------------------------------------------------------- the public entry point

def _check_waveforms(waveforms: object) -> np.ndarray:
    x = np.asarray(waveforms)
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"waveforms.shape = {x.shape}: expected (n_clips, n_samples) with n_samples >= 1 "
                         "(one clip: x[None, :])")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"waveforms.dtype = {str(x.dtype)!r}: expected float samples in [-1, 1] "
                         "(16-bit PCM k as k / 32768)")
    finite = np.isfinite(x)
    if x.size and not (np.all(finite) and np.max(np.abs(x)) <= 1.0):
        peak = float(np.max(np.abs(x[finite]))) if np.any(finite) else float("nan")
        raise ValueError(f"waveforms = <max |x| {peak:g}, non-finite {int(np.count_nonzero(~finite))}>: "
                         "samples must be finite and in [-1, 1]")
    return x


def _resolve(corruption: object) -> CorruptionSpec:
    if isinstance(corruption, CorruptionSpec) and corruption.name in CORRUPTIONS \
            and len(corruption.levels) == N_SEVERITIES:  # its levels; everything else from the registry
        return replace(CORRUPTIONS[corruption.name], levels=tuple(corruption.levels))
    if isinstance(corruption, str) and corruption in CORRUPTIONS:
        return CORRUPTIONS[corruption]
    raise ValueError(f"corruption = {corruption!r}: unknown corruption (known: {', '.join(CORRUPTIONS)})")


def _summary(values: np.ndarray) -> dict[str, float | int | None]:
    """mean, median, min, max over the finite values and how many there are (None where there are none)."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {"mean": None, "median": None, "min": None, "max": None, "n_defined": 0}
    return {"mean": float(v.mean()), "median": float(np.median(v)), "min": float(v.min()), "max": float(v.max()),
            "n_defined": int(v.size)}


def corrupt(waveforms: np.ndarray, *, corruption: str | CorruptionSpec, severity: int, sample_rate: int,
            seed: int | np.random.SeedSequence,
            clip_ids: Sequence[int | str] | np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Corrupt a batch of clips at one severity and measure what each corruption achieved.

    Parameters
    ----------
    waveforms : ndarray, shape (n_clips, n_samples)
        Float samples in [-1, 1] (float32 in the contract); computed in float64.
    corruption : str or CorruptionSpec
        A registered name (default levels) or a spec from :func:`validate_suite` (its levels).
    severity : int
        1..5; the level is ``spec.levels[severity - 1]``.
    sample_rate : int
        Hz.
    seed : int >= 0 or numpy.random.SeedSequence
        Root of every clip's generator (see the module docstring).
    clip_ids : sequence of int >= 0 or str, optional
        One id per clip, keying its random draw; default: the clip's index in ``waveforms``.

    Returns
    -------
    corrupted : ndarray, shape (n_clips, n_samples), float32
        On the 16-bit grid (``k / 32768``, k in [-32768, 32767]), so in [-1, 1).
    info : dict
        ``corruption``, ``severity``, ``level``, ``unit``, ``measure``, ``measure_unit``,
        ``expected`` (:func:`expected_measure`), ``n_silent``, ``per_clip`` (measure name ->
        float64 array (n_clips,), NaN where undefined) and ``summary`` (measure name ->
        :func:`_summary` dict). Quantisation also reports ``quantisation_snr_db``.

    Raises
    ------
    ValueError
        One line naming the bad argument and its value.

    Examples
    --------
    >>> x = 0.1 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)[None, :].astype(np.float32)
    >>> y, info = corrupt(x, corruption="white_noise", severity=3, sample_rate=16000, seed=0)
    >>> round(info["summary"]["realised_snr_db"]["mean"])
    20
    """
    spec, sev, rate = _resolve(corruption), _check_severity(severity), _check_rate(sample_rate)
    level = check_level(spec.name, spec.levels[sev - 1], sample_rate=rate, field=f"{spec.name}.levels[{sev - 1}]")
    x = _check_waveforms(waveforms)
    keys, root = _clip_keys(clip_ids, x.shape[0]), _root_seed(seed)
    draws, run = _RUNNERS[spec.name]
    out = np.empty(x.shape, dtype=np.float32)
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, x.shape[0], _BLOCK):
        block = x[start:start + _BLOCK].astype(np.float64)
        rngs = _clip_rngs(root, keys[start:start + _BLOCK], spec.name, sev) if draws else []
        y, measured = run(block, level, rate, rngs)
        out[start:start + _BLOCK] = y
        parts.append(measured)
    return out, _info(spec, sev, level, x, parts)


def _info(spec: CorruptionSpec, severity: int, level: float, x: np.ndarray, parts: list[dict[str, np.ndarray]]) -> dict:
    """:func:`corrupt`'s result dict from the per-block measures."""
    names = list(parts[0]) if parts else [spec.measure]
    per_clip = {k: (np.concatenate([p[k] for p in parts]) if parts else np.empty(0)) for k in names}
    return {"corruption": spec.name, "severity": severity, "level": level, "unit": spec.unit,
            "measure": spec.measure, "measure_unit": spec.measure_unit,
            "expected": expected_measure(spec.name, level),
            "n_silent": int(np.count_nonzero(_silent(x))) if x.size else 0, "per_clip": per_clip,
            "summary": {k: _summary(v) for k, v in per_clip.items()}}
