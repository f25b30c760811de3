"""Tests for factsheet.audio: WAV reading under the MAX contract, resampling, writing (other formats: test_audio_formats.py)."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from factsheet.audio import read_wav, read_wav_with_info, resample, write_wav_pcm16
from factsheet.errors import InputError


def write_pcm24(path: Path, samples: list[int] | np.ndarray, *, rate: int = 16000, channels: int = 1) -> None:
    """Write signed 24-bit little-endian PCM with the ``wave`` module (interleaved if channels > 1)."""
    frames = b"".join(int(v).to_bytes(3, "little", signed=True) for v in np.asarray(samples).ravel())
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(3)
        w.setframerate(rate)
        w.writeframes(frames)


def sine(freq: float, *, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(rate * seconds))) / rate
    return amp * np.sin(2 * np.pi * freq * t)


def peak_hz(x: np.ndarray, *, rate: int) -> tuple[float, float]:
    """(frequency of the largest FFT bin, bin width) in Hz."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum)) * rate / len(x), rate / len(x)


# --- sample formats --------------------------------------------------------------------------


def test_pcm16_is_value_over_32768_exactly(tmp_path: Path) -> None:
    vals = np.array([0, 1, -1, 16384, -16384, 32767, -32768, 12345], dtype=np.int16)
    wavfile.write(tmp_path / "a.wav", 16000, vals)
    x = read_wav(tmp_path / "a.wav")
    assert x.dtype == np.float32 and x.shape == (len(vals),)
    np.testing.assert_array_equal(x, vals.astype(np.float32) / np.float32(32768))
    assert x.min() == -1.0 and x.max() < 1.0


def test_pcm8_unsigned(tmp_path: Path) -> None:
    vals = np.array([128, 0, 255, 192, 64], dtype=np.uint8)
    wavfile.write(tmp_path / "a.wav", 16000, vals)
    x, info = read_wav_with_info(tmp_path / "a.wav")
    np.testing.assert_array_equal(x, np.array([0, -1, 127 / 128, 0.5, -0.5], dtype=np.float32))
    assert info.sample_format == "pcm8"


def test_pcm24_written_with_wave_module(tmp_path: Path) -> None:
    vals = [0, 1, -1, 2**22, -(2**22), 2**23 - 1, -(2**23)]
    write_pcm24(tmp_path / "a.wav", vals)
    x, info = read_wav_with_info(tmp_path / "a.wav")
    expected = np.array(vals, dtype=np.float64) / 2**23
    np.testing.assert_allclose(x, expected.astype(np.float32), rtol=0, atol=0)
    assert x[3] == 0.5 and x[6] == -1.0
    assert info.sample_format == "pcm24"


def test_pcm32_int(tmp_path: Path) -> None:
    vals = np.array([0, 2**30, -(2**30), -(2**31), 2**31 - 1], dtype=np.int32)
    wavfile.write(tmp_path / "a.wav", 16000, vals)
    x, info = read_wav_with_info(tmp_path / "a.wav")
    np.testing.assert_array_equal(x, (vals / 2**31).astype(np.float32))
    assert info.sample_format == "pcm32"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_taken_as_is_and_clipped(tmp_path: Path, dtype: type) -> None:
    vals = np.array([0.0, 0.25, -0.75, 1.5, -2.0], dtype=dtype)
    wavfile.write(tmp_path / "a.wav", 16000, vals)
    x, info = read_wav_with_info(tmp_path / "a.wav")
    np.testing.assert_array_equal(x, np.array([0.0, 0.25, -0.75, 1.0, -1.0], dtype=np.float32))
    assert x.dtype == np.float32
    assert info.sample_format == f"float{np.dtype(dtype).itemsize * 8}"


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_float_nan_or_inf_is_input_error(tmp_path: Path, bad: float) -> None:
    path = tmp_path / "nan.wav"
    wavfile.write(path, 16000, np.array([0.1, bad, 0.2], dtype=np.float32))
    with pytest.raises(InputError) as ei:
        read_wav(path)
    assert str(path) in ei.value.line() and "NaN" in ei.value.line()


def test_int64_pcm_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "i64.wav"
    wavfile.write(path, 16000, np.array([1, 2, 3], dtype=np.int64))
    with pytest.raises(InputError) as ei:
        read_wav(path)
    line = ei.value.line()  # libsndfile: "File contains data in an unimplemented format."
    assert line.startswith(f"error: {path}: ") and "unimplemented format" in line and "\n" not in line


def test_big_endian_rifx_int16(tmp_path: Path) -> None:
    data = struct.pack(">2h", 16384, -32768)
    header = struct.pack(">4sI4s4sIHHIIHH4sI", b"RIFX", 36 + len(data), b"WAVE", b"fmt ", 16, 1, 1,
                         16000, 32000, 2, 16, b"data", len(data))
    (tmp_path / "be.wav").write_bytes(header + data)
    np.testing.assert_array_equal(read_wav(tmp_path / "be.wav"), np.array([0.5, -1.0], dtype=np.float32))


# --- channels ------------------------------------------------------------------------------------


def test_stereo_is_averaged(tmp_path: Path) -> None:
    data = np.array([[1000, 3000], [-4000, 0], [32767, -32768]], dtype=np.int16)
    wavfile.write(tmp_path / "s.wav", 16000, data)
    x, info = read_wav_with_info(tmp_path / "s.wav")
    assert x.shape == (3,)
    np.testing.assert_allclose(x, data.astype(np.float64).mean(axis=1) / 32768, atol=1e-7)
    assert info.n_channels == 2 and info.downmixed and not info.resampled


def test_stereo_24bit_is_averaged(tmp_path: Path) -> None:
    data = np.array([[2**22, 0], [-(2**22), -(2**22)]])
    write_pcm24(tmp_path / "s.wav", data, channels=2)
    np.testing.assert_array_equal(read_wav(tmp_path / "s.wav"), np.array([0.25, -0.5], dtype=np.float32))


# --- resampling ----------------------------------------------------------------------------------


@pytest.mark.parametrize("orig_rate", [44100, 8000, 22050, 48000])
def test_resampled_sine_keeps_frequency_and_length(tmp_path: Path, orig_rate: int) -> None:
    freq, seconds = 1000.0, 1.0
    path = tmp_path / f"sine_{orig_rate}.wav"
    write_wav_pcm16(path, sine(freq, rate=orig_rate, seconds=seconds), sample_rate=orig_rate)
    x, info = read_wav_with_info(path, target_rate=16000)
    assert x.shape == (16000,)
    assert info.resampled and info.sample_rate == orig_rate and info.n_frames == orig_rate
    found, bin_hz = peak_hz(x, rate=16000)
    assert abs(found - freq) <= bin_hz
    assert np.all(np.abs(x) <= 1.0)
    assert abs(np.abs(x[1000:-1000]).max() - 0.5) < 0.01  # amplitude kept away from the edges


def test_resample_length_is_ceil() -> None:
    y = resample(np.zeros(1001, dtype=np.float32), orig_rate=44100, target_rate=16000)
    assert y.shape == (int(np.ceil(1001 * 16000 / 44100)),) and y.dtype == np.float32


def test_resample_same_rate_is_copy() -> None:
    x = np.arange(5, dtype=np.float32)
    y = resample(x, orig_rate=16000, target_rate=16000)
    np.testing.assert_array_equal(x, y)
    assert y is not x


def test_resample_is_pure_and_handles_channels() -> None:
    x = np.stack([sine(440, rate=8000, seconds=0.1), sine(880, rate=8000, seconds=0.1)], axis=1)
    before = x.copy()
    y = resample(x, orig_rate=8000, target_rate=16000)
    assert y.shape == (1600, 2)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("rate", [0, -16000, 16000.0])
def test_resample_rejects_bad_rate(rate: object) -> None:
    with pytest.raises(ValueError):
        resample(np.zeros(4), orig_rate=rate, target_rate=16000)  # type: ignore[arg-type]


# --- errors --------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.wav"
    with pytest.raises(InputError) as ei:
        read_wav(path)
    assert ei.value.line() == f"error: {path}: file not found"


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as ei:
        read_wav(tmp_path)
    assert str(tmp_path) in ei.value.line()


def _good_pcm16_bytes(tmp_path: Path) -> bytes:
    wavfile.write(tmp_path / "good.wav", 16000, np.arange(100, dtype=np.int16))
    return (tmp_path / "good.wav").read_bytes()


@pytest.mark.parametrize("kind", ["random", "text", "empty", "header_cut", "data_cut", "half_sample"])
def test_corrupt_files_are_one_line_input_errors(tmp_path: Path, kind: str) -> None:
    good = _good_pcm16_bytes(tmp_path)
    content = {
        "random": np.random.default_rng(0).bytes(300),
        "text": b"this is a text file, not audio\n",
        "empty": b"",
        "header_cut": good[:20],
        "data_cut": good[:44 + 50],  # header says 200 data bytes
        "half_sample": good[:45],
    }[kind]
    path = tmp_path / f"{kind}.wav"
    path.write_bytes(content)
    with pytest.raises(InputError) as ei:
        read_wav(path)
    line = ei.value.line()
    assert line.startswith(f"error: {path}") and "\n" not in line


def test_zero_length_audio(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    wavfile.write(path, 16000, np.zeros(0, dtype=np.int16))
    with pytest.raises(InputError) as ei:
        read_wav(path)
    assert str(path) in ei.value.line() and "zero-length" in ei.value.line()


# --- writing -------------------------------------------------------------------------------------


def test_write_read_round_trip_is_exact_on_the_grid(tmp_path: Path) -> None:
    k = np.array([-32768, -1, 0, 1, 12345, 32767])
    write_wav_pcm16(tmp_path / "w.wav", k / 32768, sample_rate=16000)
    rate, raw = wavfile.read(tmp_path / "w.wav")
    assert rate == 16000 and raw.dtype == np.int16
    np.testing.assert_array_equal(raw, k)
    np.testing.assert_array_equal(read_wav(tmp_path / "w.wav"), (k / 32768).astype(np.float32))


def test_write_clips_out_of_range(tmp_path: Path) -> None:
    write_wav_pcm16(tmp_path / "w.wav", np.array([2.0, 1.0, -1.0, -3.0]), sample_rate=8000)
    np.testing.assert_array_equal(wavfile.read(tmp_path / "w.wav")[1], [32767, 32767, -32768, -32768])


def test_write_rejects_nan(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_wav_pcm16(tmp_path / "w.wav", np.array([0.0, np.nan]), sample_rate=16000)
