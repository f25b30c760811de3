"""Read audio files (any format libsndfile reads) and write 16-bit WAVs under the MAX Audio Classifier contract.

Files are decoded with :mod:`soundfile` (libsndfile): WAV (also WAVEX, RF64, W64), FLAC,
OGG/Vorbis and Opus, MP3 (libsndfile >= 1.1), AIFF, CAF and the other formats of
:func:`soundfile.available_formats`.

The contract: a mono float32 waveform in [-1, 1] at 16 kHz, where 16-bit PCM
sample ``x`` becomes ``x / 32768``. Other PCM widths are scaled the same way
(by their full-scale magnitude: ``2**(bits - 1)``; 8-bit unsigned ``x`` gives
``(x - 128) / 128``), float files and decoded compressed audio (Vorbis, MP3)
are taken as they are (clipped), several channels are averaged, and other
sample rates are resampled with a polyphase filter
(:func:`scipy.signal.resample_poly`). Files stored below :data:`MIN_SAMPLE_RATE`
(4000 Hz) are refused, and so is a WAV whose data chunk is shorter than its header says.

Every problem with a file on disk raises :class:`~factsheet.errors.InputError`
naming that file, on one line; never a traceback.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
from scipy.io import wavfile
from scipy.signal import resample_poly

from factsheet.errors import InputError

__all__ = ["AudioInfo", "WavInfo", "MIN_SAMPLE_RATE", "read_audio", "read_audio_with_info", "read_wav",
           "read_wav_with_info", "resample", "write_wav_pcm16"]

MIN_SAMPLE_RATE = 4000
"""Hz; files stored at a lower rate are refused (too little bandwidth to classify)."""

# libsndfile subtype -> our sample_format name; other subtypes give their name in lower case.
_SAMPLE_FORMATS = {"PCM_S8": "pcm8", "PCM_U8": "pcm8", "PCM_16": "pcm16", "PCM_24": "pcm24", "PCM_32": "pcm32",
                   "FLOAT": "float32", "DOUBLE": "float64", "MPEG_LAYER_I": "mp1", "MPEG_LAYER_II": "mp2",
                   "MPEG_LAYER_III": "mp3"}

# libsndfile's log line for a WAV data chunk longer in the header than in the file.
_SHORT_DATA_CHUNK = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_UNKNOWN_LENGTH = 0xFFFFFFFF  # data size written by streaming recorders that do not know the length


@dataclass(frozen=True)
class AudioInfo:
    """What an audio file held before it was brought to the contract.

    Attributes
    ----------
    path : str
        The file as given.
    sample_rate : int
        Hz, as stored in the file.
    n_channels : int
        Channels in the file (1 = mono).
    n_frames : int
        Samples per channel decoded from the file, at ``sample_rate``.
    sample_format : str
        ``"pcm8"``, ``"pcm16"``, ``"pcm24"``, ``"pcm32"``, ``"float32"`` or ``"float64"``
        for PCM and float data (WAV, FLAC, AIFF, ...); for compressed data the codec:
        ``"vorbis"``, ``"opus"``, ``"mp3"``, ``"ulaw"``, ... (libsndfile's subtype in lower case).
    resampled : bool
        True when ``sample_rate`` differed from the target rate.
    downmixed : bool
        True when ``n_channels > 1`` and the channels were averaged.
    container : str
        libsndfile's major format: ``"WAV"``, ``"WAVEX"``, ``"FLAC"``, ``"OGG"``, ``"MP3"``, ...
    """

    path: str
    sample_rate: int
    n_channels: int
    n_frames: int
    sample_format: str
    resampled: bool
    downmixed: bool
    container: str

    @property
    def duration_s(self) -> float:
        """Clip duration in seconds (``n_frames / sample_rate``)."""
        return self.n_frames / self.sample_rate


WavInfo = AudioInfo
"""Former name of :class:`AudioInfo`, kept for callers."""


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


def _one_line(exc: BaseException) -> str:
    """The exception's message on one line (its type name when it has none).

    For libsndfile errors only libsndfile's own text is kept (the wrapper's
    ``Error opening '<path>':`` prefix repeats the file the error names anyway).
    """
    text = getattr(exc, "error_string", "") if isinstance(exc, soundfile.LibsndfileError) else ""
    return " ".join((text or str(exc)).split()) or exc.__class__.__name__


def _check_path(path: Path) -> None:
    """Refuse a missing path, a folder or an empty file before libsndfile sees it."""
    if not path.exists():
        raise InputError(source=str(path), reason="file not found")
    if not path.is_file():
        raise InputError(source=str(path), reason="not a file")
    if path.stat().st_size == 0:
        raise InputError(source=str(path), reason="empty file (0 bytes), not an audio file")


def _check_rate(path: Path, rate: int) -> None:
    """Refuse a sample rate under :data:`MIN_SAMPLE_RATE` Hz."""
    if rate < MIN_SAMPLE_RATE:
        raise InputError(source=str(path), field="sample_rate", value=rate,
                         reason=f"below {MIN_SAMPLE_RATE} Hz: too low a rate for audio classification "
                                f"(the file holds nothing above {rate / 2:g} Hz)")


def _check_complete(path: Path, log: str) -> None:
    """Refuse a WAV whose data chunk is shorter than its header says (libsndfile reads what is there)."""
    for declared, present in _SHORT_DATA_CHUNK.findall(log):
        if int(declared) != _UNKNOWN_LENGTH and int(present) < int(declared):
            raise InputError(source=str(path), reason=f"truncated WAV file (the header declares {declared} data "
                                                      f"bytes, the file holds {present})")


def _decode(path: Path) -> tuple[np.ndarray, int, str, str]:
    """Decode a file with libsndfile; every failure becomes one InputError line.

    Returns
    -------
    samples : ndarray, float64
        Shape (n_frames, n_channels); PCM scaled by ``2**(bits - 1)`` (8-bit unsigned:
        ``(x - 128) / 128``), float and decoded data as stored (not clipped, not checked).
    rate : int
        Hz, as stored.
    container, subtype : str
        libsndfile's major format (``"FLAC"``) and subtype (``"PCM_16"``).
    """
    try:
        with soundfile.SoundFile(path) as f:
            rate, container, subtype = int(f.samplerate), str(f.format), str(f.subtype)
            _check_rate(path, rate)
            samples = f.read(dtype="float64", always_2d=True)
            log = f.extra_info
    except InputError:
        raise
    except Exception as exc:  # libsndfile and its wrapper raise several types on malformed input
        reason = ("not a readable audio file: corrupt, truncated or in a format libsndfile does not read "
                  f"({_one_line(exc)})")
        raise InputError(source=str(path), reason=reason) from None
    _check_complete(path, log)
    return samples, rate, container, subtype


def _to_unit_range(samples: np.ndarray, *, path: Path) -> np.ndarray:
    """Refuse NaN/inf samples, then clip to [-1, 1]; shape and dtype kept."""
    n_bad = int(np.count_nonzero(~np.isfinite(samples)))
    if n_bad:
        raise InputError(source=str(path), field="samples", value=n_bad,
                         reason="NaN or infinite sample values (a float file holding non-numbers)")
    return np.clip(samples, -1.0, 1.0)


def read_audio_with_info(path: str | Path, *, target_rate: int = 16000) -> tuple[np.ndarray, AudioInfo]:
    """Read an audio file as a mono float32 waveform at ``target_rate``, with what it held.

    Steps: decode with libsndfile (PCM scaled by its full scale, so 16-bit ``x`` gives
    ``x / 32768``), refuse NaN/inf, clip to [-1, 1], average channels, resample
    (:func:`resample`), clip to [-1, 1] again (resampling can overshoot slightly).

    Parameters
    ----------
    path : str or Path
        Any file libsndfile reads: WAV, FLAC, OGG/Vorbis, MP3, AIFF, ...
    target_rate : int
        Hz of the returned waveform.

    Returns
    -------
    waveform : ndarray, float32
        Shape (n_samples,), values in [-1, 1];
        ``n_samples = ceil(n_frames * target_rate / sample_rate)``.
    info : AudioInfo
        Original rate, channels, frames, sample format and container.

    Raises
    ------
    InputError
        Missing or empty file; corrupt, truncated or unreadable file; zero-length
        audio; NaN/inf samples; a sample rate below :data:`MIN_SAMPLE_RATE` Hz.
    """
    path = Path(path)
    _check_path(path)
    samples, rate, container, subtype = _decode(path)
    n_frames, n_channels = samples.shape
    if n_channels == 0:
        raise InputError(source=str(path), field="channels", value=0, reason="audio file has no channels")
    if n_frames == 0:
        raise InputError(source=str(path), field="n_samples", value=0, reason="zero-length audio (no samples)")
    mono = _to_unit_range(samples, path=path).mean(axis=1)
    y = resample(mono, orig_rate=rate, target_rate=target_rate)
    waveform = np.clip(y, -1.0, 1.0).astype(np.float32, copy=False)
    info = AudioInfo(path=str(path), sample_rate=rate, n_channels=n_channels, n_frames=n_frames,
                     sample_format=_SAMPLE_FORMATS.get(subtype, subtype.lower()), resampled=rate != target_rate,
                     downmixed=n_channels > 1, container=container)
    return waveform, info


def read_audio(path: str | Path, *, target_rate: int = 16000) -> np.ndarray:
    """Read an audio file as a mono float32 waveform in [-1, 1] at ``target_rate`` Hz.

    See :func:`read_audio_with_info` (same behaviour, without the info).

    Returns
    -------
    ndarray, float32, shape (n_samples,)
    """
    return read_audio_with_info(path, target_rate=target_rate)[0]


def read_wav_with_info(path: str | Path, *, target_rate: int = 16000) -> tuple[np.ndarray, AudioInfo]:
    """Former name of :func:`read_audio_with_info` (reads any format, not only WAV)."""
    return read_audio_with_info(path, target_rate=target_rate)


def read_wav(path: str | Path, *, target_rate: int = 16000) -> np.ndarray:
    """Former name of :func:`read_audio` (reads any format, not only WAV); float32, shape (n_samples,)."""
    return read_audio(path, target_rate=target_rate)


def write_wav_pcm16(path: str | Path, waveform: np.ndarray, *, sample_rate: int) -> None:
    """Write a waveform as a 16-bit PCM WAV, the exact inverse of the reading convention.

    Each sample is clipped to [-1, 1] and stored as
    ``clip(round(x * 32768), -32768, 32767)`` (round half to even), so
    :func:`read_audio` gives back ``k / 32768`` exactly for any int ``k`` in
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
