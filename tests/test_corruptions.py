"""The corruption suite against analytic signals: every corruption does what its level says, measured
independently of the module (own SNR, Schroeder fit, sine levels, Hilbert frequency, np.unique),
and the module's own measures agree; plus determinism, batch independence, the 16-bit output
contract and one-line ValueErrors for bad parameters.

Test clips are loud enough (-23 dBFS and up) that 16-bit requantisation noise (-101 dBFS) is
negligible at 40 dB SNR; a quiet clip (-50 dBFS) checks the module's allowance for that noise.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from factsheet import corruptions as C
from factsheet.corruptions import CORRUPTIONS, MEASURES, corrupt, default_suite, validate_suite

SR = 16000


def sine(freq: float, amp: float, n: int = SR, phase: float = 0.3) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / SR + phase)).astype(np.float32)


def white(rms: float, n: int = SR, seed: int = 0) -> np.ndarray:
    return np.clip(rms * np.random.default_rng(seed).standard_normal(n), -1, 1).astype(np.float32)


def power_db(x: np.ndarray) -> float:
    """dBFS (mean square re 1); -inf for digital silence (a sine filtered below the 16-bit floor)."""
    with np.errstate(divide="ignore"):
        return float(10 * np.log10(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


def middle(x: np.ndarray) -> np.ndarray:
    """The middle half of a clip (away from filter edge transients)."""
    return x[len(x) // 4: 3 * len(x) // 4]


def run(x, name: str, severity: int, **kw):
    x = np.atleast_2d(x)
    return corrupt(x, corruption=kw.pop("spec", name), severity=severity, sample_rate=kw.pop("sample_rate", SR),
                   seed=kw.pop("seed", 0), **kw)


# ---------------------------------------------------------------------------- noise

@pytest.mark.parametrize("name", ["white_noise", "pink_noise"])
def test_noise_realised_snr_within_half_db_at_every_level(name):
    x = np.stack([sine(440, 0.1), sine(3000, 0.2), white(0.1, seed=1)])  # -23, -17, -20 dBFS: no clipping at 0 dB
    for severity, snr in enumerate(CORRUPTIONS[name].levels, start=1):
        y, info = run(x, name, severity)
        added = y.astype(np.float64) - x
        own = 10 * np.log10(np.mean(x.astype(np.float64) ** 2, axis=1) / np.mean(added ** 2, axis=1))
        assert np.all(np.abs(own - snr) <= 0.5), (name, snr, own)
        np.testing.assert_allclose(info["per_clip"]["realised_snr_db"], own, atol=1e-9)
        assert info["expected"] == snr and info["summary"]["realised_snr_db"]["n_defined"] == 3


@pytest.mark.parametrize("name", ["white_noise", "pink_noise"])
def test_noise_on_a_quiet_clip_leaves_room_for_the_rounding_noise(name):
    x = sine(440, 10 ** (-47 / 20))  # -50 dBFS: 40 dB SNR asks for noise at -90 dBFS, rounding gives -101
    y, info = run(x, name, 1)
    assert abs(info["per_clip"]["realised_snr_db"][0] - 40.0) <= 0.5


def psd_slope_db_per_decade(noise: np.ndarray, lo: float, hi: float) -> float:
    f, p = signal.welch(noise, fs=SR, nperseg=4096, axis=-1)
    p = p.mean(axis=0)
    keep = (f >= lo) & (f <= hi)
    return float(np.polyfit(np.log10(f[keep]), 10 * np.log10(p[keep]), 1)[0])


def test_pink_noise_falls_10_db_per_decade_and_white_noise_is_flat():
    x = np.stack([white(0.2, n=2 * SR, seed=s) for s in range(4)])
    pink = run(x, "pink_noise", 5)[0].astype(np.float64) - x
    flat = run(x, "white_noise", 5)[0].astype(np.float64) - x
    assert abs(psd_slope_db_per_decade(pink, 20, 6000) + 10.0) <= 1.5
    assert abs(psd_slope_db_per_decade(flat, 20, 6000)) <= 1.5


# ---------------------------------------------------------------------------- reverb

def own_t30(h: np.ndarray) -> float:
    """RT60 of a 1-D impulse response: Schroeder curve, line through -5..-35 dB (np.polyfit)."""
    edc = np.cumsum(h[::-1].astype(np.float64) ** 2)[::-1]
    with np.errstate(divide="ignore"):  # the last samples round to 0
        db = 10 * np.log10(edc / edc[0])
    keep = (db <= -5) & (db >= -35)
    slope = np.polyfit(np.flatnonzero(keep) / SR, db[keep], 1)[0]
    return -60.0 / slope


@pytest.mark.parametrize("severity", range(1, 6))
def test_reverb_decay_time_within_15_percent(severity):
    rt60 = CORRUPTIONS["reverb"].levels[severity - 1]
    impulse = np.zeros((2, int(2.1 * SR)), dtype=np.float32)  # long enough for the whole 1.5 s response
    impulse[:, 0] = 0.9
    y, info = run(impulse, "reverb", severity)
    for row in y:
        assert abs(own_t30(row) / rt60 - 1) <= 0.15
    assert np.all(np.abs(info["per_clip"]["rt60_s"] / rt60 - 1) <= 0.15)
    direct, tail = float(y[0, 0]) ** 2, float(np.sum(y[0, 1:].astype(np.float64) ** 2))
    assert abs(10 * np.log10(direct / tail) - C.REVERB_DRR_DB) <= 0.1  # the stated direct-to-reverberant ratio


def test_reverb_keeps_the_input_length_and_the_level_roughly():
    x = white(0.1, seed=3)[None, :]
    y, _ = run(x, "reverb", 3)
    assert y.shape == x.shape and abs(power_db(y) - power_db(x)) <= 1.5


# ---------------------------------------------------------------------------- filters

def gain_db(y: np.ndarray, x: np.ndarray) -> float:
    return power_db(middle(y)) - power_db(middle(x))


@pytest.mark.parametrize("severity", range(1, 6))
def test_lowpass_stops_twice_the_cutoff_and_passes_a_quarter(severity):
    fc = CORRUPTIONS["lowpass"].levels[severity - 1]
    f_stop = C.filter_test_frequency("lowpass", fc, sample_rate=SR)
    assert f_stop == 2 * fc or (2 * fc >= SR / 2 and fc < f_stop < SR / 2)
    x = np.stack([sine(f_stop, 0.5), sine(fc / 4, 0.5), sine(fc, 0.5)])
    y, info = run(x, "lowpass", severity)
    reported = info["per_clip"]["stopband_atten_db"][0]
    assert -gain_db(y[0], x[0]) >= 20 and reported >= 20
    if reported < 80:  # above the 16-bit floor the sine's own attenuation matches the response
        assert abs(-gain_db(y[0], x[0]) - reported) <= 1.0
    assert abs(gain_db(y[1], x[1])) <= 0.5
    assert abs(gain_db(y[2], x[2]) + 6.02) <= 0.1  # zero-phase Butterworth: -6 dB at the cut-off


@pytest.mark.parametrize("severity", range(1, 6))
def test_highpass_stops_half_the_cutoff_and_passes_four_times(severity):
    fc = CORRUPTIONS["highpass"].levels[severity - 1]
    x = np.stack([sine(fc / 2, 0.5), sine(min(4 * fc, 0.9 * SR / 2), 0.5), sine(fc, 0.5)])
    y, info = run(x, "highpass", severity)
    reported = info["per_clip"]["stopband_atten_db"][0]
    assert -gain_db(y[0], x[0]) >= 20 and reported >= 20
    assert abs(-gain_db(y[0], x[0]) - reported) <= 1.0
    assert abs(gain_db(y[1], x[1])) <= 0.5
    assert abs(gain_db(y[2], x[2]) + 6.02) <= 0.1


def test_a_cutoff_at_or_above_nyquist_is_refused():
    spec = validate_suite([{"name": "lowpass", "levels": [3000, 3000, 3000, 3000, 3999]}], sample_rate=8000)[0]
    with pytest.raises(ValueError, match=r"lowpass.levels\[4\] = 3999.0: .*Nyquist"):
        run(sine(100, 0.5, n=800), "lowpass", 5, spec=spec, sample_rate=7998)
    with pytest.raises(ValueError, match=r"corruptions\[0\].levels\[1\] = 8000: lowpass cut-off .*Nyquist.*8000 Hz"):
        validate_suite([{"name": "lowpass", "levels": [9, 8000, 9, 9, 9]}], sample_rate=16000)
    with pytest.raises(ValueError, match=r"corruptions\[3\].levels\[0\] = 6000.0: lowpass .*Nyquist"):
        validate_suite(None, sample_rate=8000)


# ---------------------------------------------------------------------------- level, overdrive, quantisation

def test_level_drop_realised_within_0_1_db():
    x = np.stack([sine(440, 0.5), white(0.3, seed=4)])
    for severity, drop in enumerate(CORRUPTIONS["level_drop"].levels, start=1):
        y, info = run(x, "level_drop", severity)
        for i in range(2):
            assert abs(power_db(y[i]) - power_db(x[i]) + drop) <= 0.1
        np.testing.assert_allclose(info["per_clip"]["level_change_db"], -drop, atol=0.1)


def test_overdrive_clips_a_growing_share_as_a_sine_predicts():
    amp = 0.7
    x = sine(441, amp)[None, :]
    shares = []
    for severity, gain in enumerate(CORRUPTIONS["overdrive"].levels, start=1):
        y, info = run(x, "overdrive", severity)
        g_amp = amp * 10 ** (gain / 20)
        analytic = 1 - 2 / np.pi * np.arcsin(min(1.0, 1 / g_amp))  # share of a sine's period above 1/g
        own = np.mean(np.abs(y[0]) >= 32767 / 32768)
        shares.append(info["per_clip"]["clipped_fraction"][0])
        assert abs(shares[-1] - analytic) <= 0.01 and abs(own - shares[-1]) <= 1e-3
    assert all(b > a for a, b in zip(shares, shares[1:]))
    quiet, info = run(sine(441, 0.01), "overdrive", 1)  # -40 dBFS peak at 6 dB gain
    assert info["per_clip"]["clipped_fraction"][0] == 0 and np.max(np.abs(quiet)) < 0.021


@pytest.mark.parametrize("severity", range(1, 6))
def test_quantisation_levels_and_grid(severity):
    bits = int(CORRUPTIONS["quantisation"].levels[severity - 1])
    x = np.stack([white(0.5, seed=5), sine(440, 0.3)])
    y, info = run(x, "quantisation", severity)
    distinct = [np.unique(row).size for row in y]
    assert max(distinct) <= 2 ** bits
    np.testing.assert_array_equal(info["per_clip"]["distinct_levels"], distinct)
    assert np.all(y * 2 ** (bits - 1) == np.round(y * 2 ** (bits - 1)))  # multiples of the step 2**(1-bits)
    if bits <= 8:
        assert distinct[0] == 2 ** bits  # loud noise reaches every level, -1 included, +1 excluded
    own = 10 * np.log10(np.mean(x[0].astype(np.float64) ** 2) / np.mean((y[0] - x[0].astype(np.float64)) ** 2))
    assert abs(info["per_clip"]["quantisation_snr_db"][0] - own) <= 1e-9


# ---------------------------------------------------------------------------- speed

def hilbert_frequency(y: np.ndarray) -> float:
    phase = np.unwrap(np.angle(signal.hilbert(y.astype(np.float64))))
    core = slice(len(y) // 8, 7 * len(y) // 8)
    return float(np.polyfit(np.arange(len(y))[core] / SR, phase[core], 1)[0] / (2 * np.pi))


@pytest.mark.parametrize("semitones", [-2, -1, 2, 3])
def test_speed_scales_a_sine_frequency_by_two_to_the_semitones_over_12(semitones):
    spec = validate_suite([{"name": "speed", "levels": [semitones] * 5}], sample_rate=SR)[0]
    f0, n = 500.0, SR
    y, info = run(sine(f0, 0.5, n=n), "speed", 1, spec=spec)
    up, down, _, _ = C.speed_plan(float(semitones), sample_rate=SR)
    first = min(n, -(-n * up // down))  # samples before the result is looped
    ratio = 2 ** (semitones / 12)
    assert abs(hilbert_frequency(y[0, :first]) / f0 / ratio - 1) <= 0.01
    assert abs(info["per_clip"]["speed_ratio"][0] / ratio - 1) <= 1e-3
    assert y.shape == (1, n)
    if first < n:  # sped up: looped from its start
        np.testing.assert_array_equal(y[0, first:2 * first][: n - first], y[0, : n - first][:first])


# ---------------------------------------------------------------------------- determinism and the output contract

def batch10() -> np.ndarray:
    x = np.stack([white(0.05 * (i + 1), n=4000, seed=10 + i) for i in range(10)])
    x[7] = 0.0  # a silent clip in the batch
    return x


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_deterministic_batch_and_order_independent(name):
    x = batch10()
    y1, i1 = run(x, name, 5, seed=42)
    y2, i2 = run(x, name, 5, seed=42)
    alone, i3 = run(x[3:4], name, 5, seed=42, clip_ids=[3])
    rev, i4 = run(x[::-1], name, 5, seed=42, clip_ids=list(range(9, -1, -1)))
    assert np.array_equal(y1, y2) and np.array_equal(alone[0], y1[3]) and np.array_equal(rev[::-1], y1)
    m = MEASURES[name][0]
    assert np.array_equal(i1["per_clip"][m], i2["per_clip"][m], equal_nan=True)
    assert np.array_equal(i3["per_clip"][m], i1["per_clip"][m][3:4], equal_nan=True)
    assert np.array_equal(i4["per_clip"][m][::-1], i1["per_clip"][m], equal_nan=True)


def test_noise_depends_on_seed_clip_id_and_severity_only():
    x = np.stack([white(0.1, n=2000, seed=1)] * 3)
    y, _ = run(x, "white_noise", 2, seed=1, clip_ids=["a", "b", "a"])
    assert np.array_equal(y[0], y[2]) and not np.array_equal(y[0], y[1])
    assert not np.array_equal(run(x, "white_noise", 2, seed=2)[0][0], run(x, "white_noise", 2, seed=1)[0][0])
    ss = np.random.SeedSequence(1)
    assert np.array_equal(run(x, "pink_noise", 2, seed=ss)[0], run(x, "pink_noise", 2, seed=1)[0])


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_output_is_float32_on_the_16_bit_grid_with_no_warnings(name):
    x = np.stack([np.clip(white(0.7, n=3000, seed=6), -1, 1), np.zeros(3000, np.float32), sine(300, 1.0, n=3000)])
    x[0, :3] = [1.0, -1.0, 1.0]
    with np.errstate(all="raise"):
        y, info = run(x, name, 5)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.all((y >= -1) & (y <= 1)) and np.all(y * 32768 == np.round(y * 32768))
    assert info["n_silent"] == 1 and info["measure"] == MEASURES[name][0]
    assert info["measure_unit"] == MEASURES[name][1] and info["per_clip"][info["measure"]].shape == (3,)
    if name in ("white_noise", "pink_noise"):  # silent clip: noise at -60 dBFS - SNR, no SNR to report
        assert np.isnan(info["per_clip"]["realised_snr_db"][1])
        assert abs(power_db(y[1]) - (C.SILENT_REFERENCE_DBFS - CORRUPTIONS[name].levels[4])) <= 0.5


# ---------------------------------------------------------------------------- specs and validation

def test_default_suite_declares_every_corruption_once():
    suite = default_suite()
    assert [s.name for s in suite] == list(CORRUPTIONS) == list(MEASURES) and len(suite) == 9
    assert validate_suite(None, sample_rate=SR) == suite
    for s in suite:
        assert len(s.levels) == 5 and s.unit and s.definition and s.check and (s.measure, s.measure_unit) == MEASURES[
            s.name]
    assert CORRUPTIONS["speed"].levels == (-1, 1, -2, 2, 3)  # ordered by |semitones|


def test_a_custom_suite_is_used_by_corrupt():
    specs = validate_suite(["overdrive", {"name": "level_drop", "levels": [1, 2, 3, 4, 6.0]}], sample_rate=SR)
    y, info = run(sine(440, 0.5, n=2000), "level_drop", 5, spec=specs[1])
    assert info["level"] == 6.0 and abs(info["per_clip"]["level_change_db"][0] + 6.0) <= 0.01


@pytest.mark.parametrize("entries, match", [
    (["reverbb"], r"corruptions\[0\].name = 'reverbb': unknown corruption"),
    ([{"name": "reverb", "levels": [0.2, 0.4]}], r"corruptions\[0\].levels = \[0.2, 0.4\]: expected a list of 5"),
    ([{"name": "reverb", "levels": [0.2, "0.4", 1, 1, 1]}], r"corruptions\[0\].levels\[1\] = '0.4': not a finite"),
    ([{"name": "level_drop", "levels": [1, 2, True, 4, 5]}], r"levels\[2\] = True: not a finite number"),
    ([{"name": "white_noise", "levels": [1, 2, 3, 4, float("nan")]}], r"levels\[4\] = nan: not a finite"),
    ([{"name": "quantisation", "levels": [8, 6, 4.5, 2, 1]}], r"levels\[2\] = 4.5: .*whole number of bits"),
    ([{"name": "quantisation", "levels": [8, 6, 4, 2, 0]}], r"levels\[4\] = 0: .*must be in \[1, 16\] bits"),
    ([{"name": "reverb", "levels": [0.2, 0.4, 0.7, 1, -1]}], r"levels\[4\] = -1: reverb level must be in"),
    ([{"name": "highpass", "levels": [100, 200, 300, 400, 8000]}], r"levels\[4\] = 8000: highpass cut-off .*Nyquist"),
    ([{"name": "speed", "level": [1, 2, 3, 4, 5]}], r"corruptions\[0\].level = \[1, 2, 3, 4, 5\]: unknown key"),
    (["speed", "speed"], r"corruptions\[1\].name = 'speed': listed twice"),
    ("speed", r"corruptions = 'speed': expected a non-empty list"),
    ([3], r"corruptions\[0\] = 3: expected a corruption name"),
])
def test_validate_suite_refuses_with_one_line(entries, match):
    with pytest.raises(ValueError, match=match) as err:
        validate_suite(entries, sample_rate=SR)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kwargs, match", [
    ({"severity": 0}, r"severity = 0: must be an integer 1..5"),
    ({"severity": 6}, r"severity = 6"),
    ({"severity": True}, r"severity = True"),
    ({"corruption": "echo"}, r"corruption = 'echo': unknown corruption"),
    ({"sample_rate": 0}, r"sample_rate = 0: must be a positive"),
    ({"seed": -1}, r"seed = -1: must be an integer >= 0"),
    ({"seed": 1.5}, r"seed = 1.5"),
    ({"waveforms": np.zeros(100, np.float32)}, r"waveforms.shape = \(100,\): expected \(n_clips, n_samples\)"),
    ({"waveforms": np.zeros((1, 100), np.int16)}, r"waveforms.dtype = 'int16': expected float"),
    ({"waveforms": np.full((1, 100), 1.5, np.float32)}, r"waveforms = <max \|x\| 1.5, non-finite 0>"),
    ({"waveforms": np.full((1, 100), np.nan, np.float32)}, r"non-finite 100>"),
    ({"clip_ids": [1, 2]}, r"clip_ids = <2 ids>: expected one id per clip \(1\)"),
    ({"clip_ids": [-3]}, r"clip_ids\[0\] = -3: must be an integer >= 0 or a str"),
])
def test_corrupt_refuses_bad_arguments(kwargs, match):
    args = {"waveforms": np.zeros((1, 100), np.float32), "corruption": "white_noise", "severity": 1,
            "sample_rate": SR, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        corrupt(args.pop("waveforms"), **args)


def test_an_empty_batch_gives_empty_results():
    y, info = corrupt(np.zeros((0, 50), np.float32), corruption="reverb", severity=1, sample_rate=SR, seed=0)
    assert y.shape == (0, 50) and info["per_clip"]["rt60_s"].shape == (0,)
    assert info["summary"]["rt60_s"]["n_defined"] == 0
