"""Reading through libsndfile (factsheet.audio): FLAC, OGG/Vorbis, MP3, the old WAV scaling kept, refusals.

Measured with soundfile 0.14.0 / libsndfile 1.2.2 on a 0.5-amplitude 440 Hz sine, 1 s at 16 kHz:
Vorbis decodes with correlation 0.99992, RMS error 0.0045, max error 0.016; MP3 (LAME via
libsndfile) with correlation 0.99993, RMS error 0.0041, max error 0.020; both with no delay and
the same length. The tolerances below (correlation > 0.999, RMS error < 0.01) leave a margin.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile
from scipy.io import wavfile

from factsheet.audio import AudioInfo, WavInfo, read_audio, read_audio_with_info, read_wav_with_info
from factsheet.datasets.folder import load_folder
from factsheet.errors import InputError

MP3 = "MP3" in soundfile.available_formats()


def sine_int16(freq: float, *, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    """``round(amp * sin(2 pi f t) * 32767)`` as int16, shape (rate * seconds,)."""
    t = np.arange(int(round(rate * seconds))) / rate
    return np.round(amp * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)


def peak_hz(x: np.ndarray, *, rate: int) -> tuple[float, float]:
    """(frequency of the largest FFT bin, bin width) in Hz."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum)) * rate / len(x), rate / len(x)


def one_line_error(path: Path) -> str:
    """The InputError line that reading ``path`` gives (fails the test if it reads)."""
    with pytest.raises(InputError) as ei:
        read_audio(path)
    line = ei.value.line()
    assert line.startswith(f"error: {path}") and "\n" not in line
    return line


# --- the old scipy-based reader's numbers, per PCM width ---------------------------------------------


def old_scipy_reader(path: Path) -> np.ndarray:
    """The reader before libsndfile: scipy.io.wavfile + full-scale division, mean of channels, float32."""
    _, data = wavfile.read(path)
    kind, size = data.dtype.kind, data.dtype.itemsize
    if kind == "u":
        x = (data.astype(np.float64) - 128.0) / 128.0
    elif kind == "i":  # scipy left-justifies 24-bit samples in int32: one scale for 24 and 32 bits
        x = data.astype(np.float64) / float(2 ** (8 * size - 1))
    else:
        x = np.clip(data.astype(np.float64), -1.0, 1.0)
    return (x.mean(axis=1) if x.ndim == 2 else x).astype(np.float32)


def write_width(path: Path, width: str, *, channels: int) -> None:
    """A WAV of random samples over the whole range of ``width`` plus its extremes."""
    rng = np.random.default_rng(7)
    n = 2000
    if width == "pcm24":
        v = np.concatenate([rng.integers(-(2**23), 2**23, n * channels), [2**23 - 1, -(2**23)] * channels])
        frames = b"".join(int(s).to_bytes(3, "little", signed=True) for s in v)
        with wave.open(str(path), "wb") as w:
            w.setnchannels(channels)
            w.setsampwidth(3)
            w.setframerate(16000)
            w.writeframes(frames)
        return
    dtype = {"pcm8": np.uint8, "pcm16": np.int16, "pcm32": np.int32, "float32": np.float32,
             "float64": np.float64}[width]
    if np.dtype(dtype).kind == "f":
        data = np.concatenate([rng.uniform(-1.2, 1.2, n * channels), [1.0, -1.0] * channels]).astype(dtype)
    else:
        lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
        data = np.concatenate([rng.integers(lo, hi, n * channels, endpoint=True), [hi, lo] * channels]).astype(dtype)
    wavfile.write(path, 16000, data.reshape(-1, channels) if channels > 1 else data)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("width", ["pcm8", "pcm16", "pcm24", "pcm32", "float32", "float64"])
def test_new_reader_equals_old_scipy_reader(tmp_path: Path, width: str, channels: int) -> None:
    path = tmp_path / f"{width}.wav"
    write_width(path, width, channels=channels)
    x, info = read_audio_with_info(path)
    np.testing.assert_array_equal(x, old_scipy_reader(path))
    assert info.sample_format == width and info.container == "WAV" and info.n_channels == channels


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_soundfile_scales_int16_by_32768(tmp_path: Path, dtype: str) -> None:
    wavfile.write(tmp_path / "a.wav", 16000, np.array([32767, -32768, 1], dtype=np.int16))
    x, _ = soundfile.read(tmp_path / "a.wav", dtype=dtype)
    assert x.tolist() == [32767 / 32768, -1.0, 1 / 32768]
    assert read_audio(tmp_path / "a.wav")[0] == np.float32(32767 / 32768)


# --- FLAC, Vorbis, MP3 ---------------------------------------------------------------------------------


def test_flac_pcm16_is_bit_exact(tmp_path: Path) -> None:
    pcm = sine_int16(440, rate=16000, seconds=1.0)
    soundfile.write(tmp_path / "a.flac", pcm, 16000, subtype="PCM_16")
    x, info = read_audio_with_info(tmp_path / "a.flac")
    np.testing.assert_array_equal(x, pcm.astype(np.float32) / np.float32(32768))
    assert (info.container, info.sample_format, info.n_frames, info.resampled) == ("FLAC", "pcm16", 16000, False)


def test_flac_pcm24_is_bit_exact(tmp_path: Path) -> None:
    v = np.array([0, 1, -1, 2**22, -(2**22), 2**23 - 1, -(2**23), 1234567], dtype=np.int32)
    soundfile.write(tmp_path / "a.flac", v << 8, 16000, subtype="PCM_24")  # int32 input: top 24 bits stored
    x, info = read_audio_with_info(tmp_path / "a.flac")
    np.testing.assert_array_equal(x, (v / 2**23).astype(np.float32))
    assert info.sample_format == "pcm24"


def assert_lossy_close(x: np.ndarray, pcm: np.ndarray) -> None:
    """Same length within one MP3 frame; correlation > 0.999 and RMS error < 0.01 over the common part."""
    ref = pcm / 32768
    assert abs(len(x) - len(ref)) <= 1152
    n = min(len(x), len(ref))
    assert np.corrcoef(x[:n], ref[:n])[0, 1] > 0.999
    assert np.sqrt(np.mean((x[:n] - ref[:n]) ** 2)) < 0.01
    assert x.dtype == np.float32 and np.all(np.abs(x) <= 1.0)


@pytest.mark.parametrize("fmt, subtype, ext, sample_format", [
    ("OGG", "VORBIS", "ogg", "vorbis"),
    pytest.param("MP3", "MPEG_LAYER_III", "mp3", "mp3",
                 marks=pytest.mark.skipif(not MP3, reason="this libsndfile has no MP3 support")),
])
def test_lossy_formats_are_close(tmp_path: Path, fmt: str, subtype: str, ext: str, sample_format: str) -> None:
    pcm = sine_int16(440, rate=16000, seconds=1.0)
    path = tmp_path / f"a.{ext}"
    soundfile.write(path, pcm, 16000, format=fmt, subtype=subtype)
    x, info = read_audio_with_info(path)
    assert_lossy_close(x, pcm)
    assert (info.container, info.sample_format, info.sample_rate) == (fmt, sample_format, 16000)


def test_stereo_flac_is_averaged(tmp_path: Path) -> None:
    left, right = sine_int16(440, rate=16000, seconds=0.5), sine_int16(1000, rate=16000, seconds=0.5, amp=0.25)
    soundfile.write(tmp_path / "s.flac", np.stack([left, right], axis=1), 16000, subtype="PCM_16")
    x, info = read_audio_with_info(tmp_path / "s.flac")
    expected = (left.astype(np.float64) + right) / 2 / 32768
    np.testing.assert_array_equal(x, expected.astype(np.float32))
    assert info.n_channels == 2 and info.downmixed


def test_flac_at_44100_is_resampled(tmp_path: Path) -> None:
    soundfile.write(tmp_path / "a.flac", sine_int16(1000, rate=44100, seconds=1.0), 44100, subtype="PCM_16")
    x, info = read_audio_with_info(tmp_path / "a.flac", target_rate=16000)
    assert x.shape == (16000,) and info.resampled and info.sample_rate == 44100 and info.n_frames == 44100
    found, bin_hz = peak_hz(x, rate=16000)
    assert abs(found - 1000) <= bin_hz
    assert abs(np.abs(x[1000:-1000]).max() - 0.5) < 0.01


def test_old_names_read_every_format(tmp_path: Path) -> None:
    soundfile.write(tmp_path / "a.flac", sine_int16(440, rate=8000, seconds=0.25), 8000, subtype="PCM_16")
    x, info = read_wav_with_info(tmp_path / "a.flac")
    assert WavInfo is AudioInfo and isinstance(info, WavInfo)
    np.testing.assert_array_equal(x, read_audio(tmp_path / "a.flac"))


# --- refusals: one line naming the file ----------------------------------------------------------------


@pytest.mark.parametrize("ext, subtype", [("wav", "PCM_16"), ("flac", "PCM_16")])
def test_rate_below_4000_is_refused(tmp_path: Path, ext: str, subtype: str) -> None:
    path = tmp_path / f"low.{ext}"
    soundfile.write(path, sine_int16(300, rate=3000, seconds=1.0), 3000, subtype=subtype)
    line = one_line_error(path)
    assert line.startswith(f"error: {path}: sample_rate = 3000: below 4000 Hz")
    soundfile.write(path, sine_int16(300, rate=4000, seconds=1.0), 4000, subtype=subtype)
    assert read_audio(path).shape == (16000,)  # 4000 Hz itself is accepted


@pytest.mark.parametrize("kind", ["half", "head", "garbled"])
def test_broken_flac_is_refused(tmp_path: Path, kind: str) -> None:
    soundfile.write(tmp_path / "good.flac", sine_int16(440, rate=16000, seconds=2.0), 16000, subtype="PCM_16")
    good = bytearray((tmp_path / "good.flac").read_bytes())
    if kind == "garbled":
        good[len(good) // 3:len(good) // 3 + 400] = np.random.default_rng(0).bytes(400)
    content = {"half": good[:len(good) // 2], "head": good[:100], "garbled": good}[kind]
    path = tmp_path / f"{kind}.flac"
    path.write_bytes(bytes(content))
    assert "not a readable audio file" in one_line_error(path)


def test_text_named_wav_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    path.write_text("this is a text file, not audio\n")
    line = one_line_error(path)
    assert line == (f"error: {path}: not a readable audio file: corrupt, truncated or in a format libsndfile "
                    "does not read (Format not recognised.)")


def test_nan_in_a_float_aiff_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nan.aiff"
    soundfile.write(path, np.array([0.1, np.nan, 0.2]), 16000, subtype="FLOAT")
    assert "samples = 1: NaN" in one_line_error(path)


# --- folder dataset end to end -------------------------------------------------------------------------


def test_folder_of_flac_ogg_wav(tmp_path: Path) -> None:
    wav_dir = tmp_path / "audio"
    wav_dir.mkdir()
    pcm = sine_int16(440, rate=16000, seconds=1.0)
    soundfile.write(wav_dir / "a.flac", pcm, 16000, subtype="PCM_16")
    soundfile.write(wav_dir / "b.ogg", pcm, 16000, format="OGG", subtype="VORBIS")
    wavfile.write(wav_dir / "c.wav", 22050, sine_int16(440, rate=22050, seconds=0.5))
    (tmp_path / "labels.csv").write_text("index,mid,display_name\n0,/m/a,Tone\n1,/m/b,Other\n")
    (tmp_path / "clips.csv").write_text("file,labels\na.flac,Tone\nb.ogg,Tone\nc.wav,Other\n")
    ds = load_folder(wav_dir=wav_dir, csv_path=tmp_path / "clips.csv", class_labels_path=tmp_path / "labels.csv")
    assert [len(c) for c in ds.clips] == [16000, 16000, 8000]
    np.testing.assert_array_equal(ds.clips[0], pcm.astype(np.float32) / np.float32(32768))
    assert_lossy_close(ds.clips[1], pcm)
    assert ds.labels.tolist() == [[1, 0], [1, 0], [0, 1]]
    assert ds.card["containers"] == {"FLAC": 1, "OGG": 1, "WAV": 1}
    assert ds.card["sample_formats"] == {"pcm16": 2, "vorbis": 1}
    assert ds.card["original_sample_rates"] == {"16000": 2, "22050": 1} and ds.card["n_resampled"] == 1


def test_folder_names_the_row_of_a_low_rate_file(tmp_path: Path) -> None:
    wav_dir = tmp_path / "audio"
    wav_dir.mkdir()
    soundfile.write(wav_dir / "low.flac", sine_int16(300, rate=3000, seconds=0.5), 3000, subtype="PCM_16")
    (tmp_path / "labels.csv").write_text("index,mid,display_name\n0,/m/a,Tone\n")
    (tmp_path / "clips.csv").write_text("file,labels\nlow.flac,Tone\n")
    with pytest.raises(InputError) as ei:
        load_folder(wav_dir=wav_dir, csv_path=tmp_path / "clips.csv", class_labels_path=tmp_path / "labels.csv")
    line = ei.value.line()
    assert line.startswith(f"error: {tmp_path / 'clips.csv'}: row 2, column file = 'low.flac': {wav_dir / 'low.flac'}")
    assert "sample_rate = 3000" in line and "\n" not in line
