"""Read and write WAV files under the IBM MAX Audio Classifier input contract.

The contract: a mono float32 waveform in [-1, 1] at 16 kHz, where 16-bit PCM
sample ``x`` becomes ``x / 32768``. Other PCM widths are scaled the same way
(by their full-scale magnitude), float WAVs are taken as they are (clipped),
several channels are averaged, and other sample rates are resampled with a
polyphase filter (:func:`scipy.signal.resample_poly`).

Every problem with a file on disk raises :class:`~factsheet.errors.InputError`
naming that file; never a traceback.
"""

from __future__ import annotations

import math
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

from factsheet.errors import InputError

__all__ = ["WavInfo", "read_wav", "read_wav_with_info", "pcm_to_float", "resample", "write_wav_pcm16"]

_WAVE_FORMAT_EXTENSIBLE = 0xFFFE


@dataclass(frozen=True)
class WavInfo:
    """What a WAV file held before it was brought to the contract.

    Attributes
    ----------
    path : str
        The file as given.
    sample_rate : int
        Hz, as stored in the file.
    n_channels : int
        Channels in the file (1 = mono).
    n_frames : int
        Samples per channel in the file, at ``sample_rate``.
    sample_format : str
        ``"pcm8"``, ``"pcm16"``, ``"pcm24"``, ``"pcm32"``, ``"float32"`` or ``"float64"``.
    resampled : bool
        True when ``sample_rate`` differed from the target rate.
    downmixed : bool
        True when ``n_channels > 1`` and the channels were averaged.
    """

    path: str
    sample_rate: int
    n_channels: int
    n_frames: int
    sample_format: str
    resampled: bool
    downmixed: bool

    @property
    def duration_s(self) -> float:
        """Clip duration in seconds (``n_frames / sample_rate``)."""
        return self.n_frames / self.sample_rate


def resample(waveform: np.ndarray, *, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resample along the first axis with a polyphase FIR filter.

    Uses :func:`scipy.signal.resample_poly` with ``up = target_rate / g`` and
    ``down = orig_rate / g`` where ``g = gcd(orig_rate, target_rate)``. The
    result is not clipped: band-limiting may overshoot [-1, 1] slightly.

    Parameters
    ----------
    waveform : ndarray
        Shape (n_samples,) or (n_samples, n_channels), float.
    orig_rate, target_rate : int
        Hz, both > 0.

    Returns
    -------
    ndarray, float32
        Shape (ceil(n_samples * target_rate / orig_rate),) or that many rows;
        a float32 copy when the rates are equal.

    Raises
    ------
    ValueError
        A rate that is not a positive integer.
    """
    for rate in (orig_rate, target_rate):
        if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
            raise ValueError(f"sample rates must be positive integers, got {rate!r}")
    x = np.asarray(waveform)
    if orig_rate == target_rate:
        return x.astype(np.float32, copy=True)
    g = math.gcd(int(orig_rate), int(target_rate))
    y = resample_poly(x.astype(np.float64, copy=False), int(target_rate) // g, int(orig_rate) // g, axis=0)
    return y.astype(np.float32)


def pcm_to_float(data: np.ndarray, *, source: str = "<array>") -> np.ndarray:
    """Scale samples as returned by :func:`scipy.io.wavfile.read` to float64 in [-1, 1].

    ======================  ==========================  ===================
    stored as               scipy dtype                 scaling
    ======================  ==========================  ===================
    8-bit unsigned PCM      uint8                       ``(x - 128) / 128``
    16-bit PCM              int16                       ``x / 32768``
    24-bit PCM              int32 (left-justified)      ``x / 2**31``
    32-bit PCM              int32                       ``x / 2**31``
    32/64-bit IEEE float    float32 / float64           as is, clipped
    ======================  ==========================  ===================

    scipy stores 24-bit samples in the top three bytes of an int32, so 24-bit
    and 32-bit PCM share one scale (24-bit value ``v`` gives ``v / 2**23``).

    Parameters
    ----------
    data : ndarray
        Shape (n_frames,) or (n_frames, n_channels), any of the dtypes above
        (either byte order).
    source : str
        Named in errors.

    Returns
    -------
    ndarray, float64
        Same shape as ``data``; values in [-1, 1].

    Raises
    ------
    InputError
        An unsupported dtype (e.g. 64-bit integer PCM) or a NaN/infinite float sample.
    """
    kind, size = data.dtype.kind, data.dtype.itemsize
    if kind == "u" and size == 1:
        return (data.astype(np.float64) - 128.0) / 128.0
    if kind == "i" and size in (1, 2, 4):
        return data.astype(np.float64) / float(2 ** (8 * size - 1))
    if kind == "f" and size in (4, 8):
        x = data.astype(np.float64)
        n_bad = int(np.count_nonzero(~np.isfinite(x)))
        if n_bad:
            raise InputError(source=source, field="samples", value=n_bad,
                             reason="NaN or infinite sample values in a float WAV")
        return np.clip(x, -1.0, 1.0)
    raise InputError(source=source, field="sample format", value=str(data.dtype),
                     reason="unsupported sample type (expected 8/16/24/32-bit PCM or 32/64-bit float)")


def _fmt_chunk(path: Path) -> tuple[int, int] | None:
    """Return (format tag, bits per sample) from a WAV's ``fmt `` chunk, or None if not found."""
    try:
        with open(path, "rb") as f:
            riff = f.read(12)
            if len(riff) < 12 or riff[8:12] != b"WAVE":
                return None
            endian = ">" if riff[:4] == b"RIFX" else "<"
            while True:
                header = f.read(8)
                if len(header) < 8:
                    return None
                (size,) = struct.unpack(endian + "I", header[4:])
                if header[:4] == b"fmt ":
                    body = f.read(min(size, 40))
                    if len(body) < 16:
                        return None
                    tag, _, _, _, _, bits = struct.unpack(endian + "HHIIHH", body[:16])
                    if tag == _WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
                        (tag,) = struct.unpack(endian + "H", body[24:26])
                    return tag, bits
                f.seek(size + (size & 1), 1)
    except OSError:
        return None


def _sample_format(data: np.ndarray, path: Path) -> str:
    """Name the stored sample format: ``pcm<bits>`` or ``float<bits>``."""
    kind, bits = data.dtype.kind, 8 * data.dtype.itemsize
    if kind == "f":
        return f"float{bits}"
    if kind == "i" and bits == 32:  # scipy returns 24-bit PCM as int32 too: ask the header
        fmt = _fmt_chunk(path)
        if fmt is not None and 0 < fmt[1] < 32:
            return f"pcm{fmt[1]}"
    return f"pcm{bits}"


def _one_line(exc: BaseException) -> str:
    """The exception's message on one line (its type name when it has none)."""
    return " ".join(str(exc).split()) or exc.__class__.__name__


def _read_raw(path: Path) -> tuple[int, np.ndarray]:
    """:func:`scipy.io.wavfile.read` with every failure turned into an InputError."""
    if not path.exists():
        raise InputError(source=str(path), reason="file not found")
    if not path.is_file():
        raise InputError(source=str(path), reason="not a file")
    if path.stat().st_size == 0:
        raise InputError(source=str(path), reason="empty file (0 bytes), not a WAV file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", wavfile.WavFileWarning)
        try:
            rate, data = wavfile.read(path, mmap=False)
        except Exception as exc:  # scipy's parser raises many types on malformed input
            reason = f"not a readable WAV file: corrupt, truncated or another format ({_one_line(exc)})"
            raise InputError(source=str(path), reason=reason) from None
    for w in caught:
        if issubclass(w.category, wavfile.WavFileWarning) and "EOF" in str(w.message):
            raise InputError(source=str(path), reason=f"truncated WAV file ({' '.join(str(w.message).split())})")
    return int(rate), data


def read_wav_with_info(path: str | Path, *, target_rate: int = 16000) -> tuple[np.ndarray, WavInfo]:
    """Read a WAV file as a mono float32 waveform at ``target_rate``, with what it held.

    Steps: scale to [-1, 1] (:func:`pcm_to_float`), average channels, resample
    (:func:`resample`), clip to [-1, 1] (resampling can overshoot slightly).

    Parameters
    ----------
    path : str or Path
        A RIFF/RIFX/RF64 WAV file.
    target_rate : int
        Hz of the returned waveform.

    Returns
    -------
    waveform : ndarray, float32
        Shape (n_samples,), values in [-1, 1];
        ``n_samples = ceil(n_frames * target_rate / sample_rate)``.
    info : WavInfo
        Original rate, channels, frames and sample format.

    Raises
    ------
    InputError
        Missing file; corrupt, truncated or non-WAV file; zero-length audio;
        unsupported sample type; NaN/inf samples; a zero sample rate.
    """
    path = Path(path)
    rate, data = _read_raw(path)
    if rate <= 0:
        raise InputError(source=str(path), field="sample rate", value=rate, reason="must be a positive number of Hz")
    if data.ndim not in (1, 2):
        raise InputError(source=str(path), field="shape", value=data.shape, reason="unexpected sample array shape")
    if data.ndim == 2 and data.shape[1] == 0:
        raise InputError(source=str(path), field="channels", value=0, reason="WAV file has no channels")
    if data.shape[0] == 0:
        raise InputError(source=str(path), field="n_samples", value=0, reason="zero-length audio (no samples)")
    n_channels = 1 if data.ndim == 1 else int(data.shape[1])
    x = pcm_to_float(data, source=str(path))
    if x.ndim == 2:
        x = x.mean(axis=1)
    y = resample(x, orig_rate=rate, target_rate=target_rate)
    waveform = np.clip(y, -1.0, 1.0).astype(np.float32, copy=False)
    info = WavInfo(path=str(path), sample_rate=rate, n_channels=n_channels, n_frames=int(data.shape[0]),
                   sample_format=_sample_format(data, path), resampled=rate != target_rate,
                   downmixed=n_channels > 1)
    return waveform, info


def read_wav(path: str | Path, *, target_rate: int = 16000) -> np.ndarray:
    """Read a WAV file as a mono float32 waveform in [-1, 1] at ``target_rate`` Hz.

    See :func:`read_wav_with_info` (same behaviour, without the info).

    Returns
    -------
    ndarray, float32, shape (n_samples,)
    """
    return read_wav_with_info(path, target_rate=target_rate)[0]


def write_wav_pcm16(path: str | Path, waveform: np.ndarray, *, sample_rate: int) -> None:
    """Write a waveform as a 16-bit PCM WAV, the exact inverse of the reading convention.

    Each sample is clipped to [-1, 1] and stored as
    ``clip(round(x * 32768), -32768, 32767)`` (round half to even), so
    :func:`read_wav` gives back ``k / 32768`` exactly for any int ``k`` in
    [-32768, 32767]; +1.0 is stored as 32767.

    Parameters
    ----------
    path : str or Path
    waveform : ndarray
        Shape (n_samples,) or (n_samples, n_channels), float, finite.
    sample_rate : int
        Hz, > 0.

    Raises
    ------
    ValueError
        Non-finite samples, a bad shape or a bad rate (programming errors, not user input).
    """
    x = np.asarray(waveform, dtype=np.float64)
    if x.ndim not in (1, 2):
        raise ValueError(f"waveform must be 1-D or 2-D, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("waveform has NaN or infinite samples")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be > 0, got {sample_rate!r}")
    pcm = np.clip(np.round(np.clip(x, -1.0, 1.0) * 32768.0), -32768, 32767).astype(np.int16)
    wavfile.write(Path(path), int(sample_rate), pcm)
