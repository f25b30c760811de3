"""What every file-based loader shares: reading a metadata CSV, reading the clips it lists
(failing or skipping unreadable ones), and the audio part of the dataset card.

Rows are named in errors by their line in the file as a person sees it: with a header, the
header is row 1 and the first data row is row 2; without one, the first data row is row 1.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from factsheet.audio import AudioInfo, read_audio_with_info
from factsheet.datasets.base import FileClips, SkippedFile, hash_clip
from factsheet.errors import InputError

__all__ = ["ClipEntry", "ClipsRead", "audio_card", "counts", "read_clips", "read_csv_rows", "require_columns"]


def read_csv_rows(csv_path: Path, *, what: str = "CSV file", names: list[str] | None = None,
                  layout: str = "", rows_hint: str = " (one row per clip expected)") -> pd.DataFrame:
    """Read a CSV as str cells (stripped), one DataFrame row per line; a UTF-8 byte-order mark is ignored.

    Parameters
    ----------
    csv_path : Path
    what : str
        What the file is, for the messages (``"CSV file"`` gives "CSV file not found").
    names : list of str, optional
        Column names of a file without a header row (e.g. FSD50K's ``vocabulary.csv``); None: the
        first line is the header.
    layout : str
        Appended to the not-found message, e.g. ``" (expected the ESC-50 layout: meta/esc50.csv)"``.
    rows_hint : str
        Appended to the no-data-rows message.

    Returns
    -------
    pandas.DataFrame
        The index holds each row's line number; blank lines are dropped.

    Raises
    ------
    InputError
        Missing, empty or unparsable file, or one without data rows.
    """
    if not csv_path.is_file():
        raise InputError(source=str(csv_path), reason=f"{what} not found{layout}")
    first = 1 if names is not None else 2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(csv_path, dtype=str, keep_default_na=False, skip_blank_lines=False, index_col=False,
                             encoding="utf-8-sig", header=None if names is not None else "infer", names=names)
    except pd.errors.EmptyDataError:
        raise InputError(source=str(csv_path), reason=f"{what} is empty (no header row)") from None
    except pd.errors.ParserWarning:  # raised when every data row is longer than the header
        reason = "cannot parse CSV (data rows have more fields than the header)"
        raise InputError(source=str(csv_path), reason=reason) from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        msg = " ".join(str(exc).split())
        raise InputError(source=str(csv_path), reason=f"cannot parse CSV ({msg})") from None
    df.columns = [str(c).strip() for c in df.columns]
    df = df.apply(lambda col: col.str.strip())
    # A header with an empty name (e.g. a trailing comma) and no values: pandas calls it "Unnamed: i".
    df = df[[c for c in df.columns if not (c.startswith("Unnamed: ") and (df[c] == "").all())]]
    df.index = pd.RangeIndex(first, first + len(df))
    df = df[(df != "").any(axis=1)]
    if df.empty:
        raise InputError(source=str(csv_path), reason=f"{what} has no data rows{rows_hint}")
    return df


def require_columns(df: pd.DataFrame, *, csv_path: Path, columns: list[str], expected: str | None = None) -> None:
    """One :class:`InputError` naming the first of ``columns`` that ``df`` lacks.

    ``expected`` (e.g. ``"the ESC-50 columns filename, fold, target, category"``) is named in the message.
    """
    present = ", ".join(df.columns)
    for col in columns:
        if col not in df.columns:
            reason = (f"missing column (expected {expected}; columns present: {present})" if expected
                      else f"missing column (columns present: {present})")
            raise InputError(source=str(csv_path), field=f"column {col}", reason=reason)


@dataclass(frozen=True)
class ClipEntry:
    """One audio file a metadata file lists: its row (for errors), its name as listed, and its path."""

    row: int
    name: str
    path: Path


@dataclass
class ClipsRead:
    """The outcome of :func:`read_clips`: the readable clips in listing order and the skipped files."""

    clips: FileClips | None = None
    infos: list[AudioInfo] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)  # positions in the listing of the clips read
    skipped: list[SkippedFile] = field(default_factory=list)


def _reason(exc: InputError) -> str:
    """The error's line without ``"error: <file>: "`` (the file is named separately)."""
    return exc.line().removeprefix(f"error: {exc.source}").removeprefix(": ")


def read_clips(entries: list[ClipEntry], *, source: Path, column: str, sample_rate: int,
               on_unreadable: Literal["fail", "skip"] = "fail", max_skipped_fraction: float = 0.05) -> ClipsRead:
    """Read and check every listed audio file once (:func:`factsheet.audio.read_audio_with_info`),
    keeping its facts, length and content hash, not its samples: the clips come back as a
    :class:`~factsheet.datasets.base.FileClips` that reads each file again when it is used.

    Parameters
    ----------
    entries : list of ClipEntry
        The files in listing order.
    source : Path
        The metadata file that lists them (named in errors).
    column : str
        Its column holding the file names (named in errors).
    sample_rate : int
        Hz every clip is brought to.
    on_unreadable : {"fail", "skip"}
        ``"fail"``: the first missing or unreadable file stops the run (one line naming the row and
        the file). ``"skip"``: such files are left out and listed with their reason.
    max_skipped_fraction : float
        With ``"skip"``, the largest share of listed files that may be skipped (0..1).

    Raises
    ------
    InputError
        A missing or unreadable file with ``"fail"``; with ``"skip"``, more than
        ``max_skipped_fraction`` of the files skipped, or none readable.
    """
    out = ClipsRead()
    digest, paths, lengths = hashlib.sha256(), [], []
    for pos, e in enumerate(entries):
        try:
            waveform, info = read_audio_with_info(e.path, target_rate=sample_rate)
        except InputError as exc:
            if on_unreadable != "skip":
                raise InputError(source=str(source), field=f"row {e.row}, column {column}", value=e.name,
                                 reason=exc.line().removeprefix("error: ")) from None
            out.skipped.append(SkippedFile(file=e.name, reason=_reason(exc)))
            continue
        hash_clip(digest, waveform)  # the content hash, taken now: the clips are not kept in memory
        paths.append(e.path)
        lengths.append(int(waveform.shape[0]))
        out.infos.append(info)
        out.kept.append(pos)
    out.clips = FileClips(paths=paths, lengths=lengths, sample_rate=sample_rate, digest=digest)
    n, k = len(entries), len(out.skipped)
    if k and (k / n > max_skipped_fraction + 1e-12 or k == n):
        first = out.skipped[0]
        raise InputError(source=str(source), reason=(
            f"{k} of {n} listed audio files ({100 * k / n:.1f} %) are missing or unreadable, "
            + ("none could be read" if k == n else f"above dataset.max_skipped_fraction = {max_skipped_fraction:g}")
            + f"; first: {first.file!r} ({first.reason})"))
    return out


def counts(values: list) -> dict[str, int]:
    """``{str(value): count}`` sorted by value, JSON-able."""
    return {str(k): v for k, v in sorted(Counter(values).items())}


def audio_card(infos: list[AudioInfo]) -> dict:
    """The card's audio facts: original rates, channels, sample formats, containers, resampling, downmixing,
    durations."""
    durations = np.array([i.duration_s for i in infos], dtype=np.float64)
    return {
        "original_sample_rates": counts([i.sample_rate for i in infos]),
        "channels": counts([i.n_channels for i in infos]),
        "sample_formats": counts([i.sample_format for i in infos]),
        "containers": counts([i.container for i in infos]),
        "n_resampled": sum(i.resampled for i in infos),
        "n_downmixed": sum(i.downmixed for i in infos),
        "duration_s": {"min": float(durations.min()), "median": float(np.median(durations)),
                       "max": float(durations.max())},
    }
