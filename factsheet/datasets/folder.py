"""Load a user-supplied folder of audio files described by a CSV.

The files may be in any format libsndfile reads (WAV, FLAC, OGG/Vorbis, MP3, AIFF, ...;
see :mod:`factsheet.audio`), mixed freely; the file name's extension is not checked.
The CSV has one row per clip::

    file,labels,speaker_sex,snr_db
    dog_01.wav,Dog;Bark,female,10
    street.flac,,male,0

* ``file``: the audio file's path relative to ``wav_dir``.
* ``labels``: class display names (or AudioSet mids such as ``/m/09x0r``) from
  the class-labels file, separated by ``label_separator``. An empty cell is
  allowed and means a clip with no positive labels (a pure negative); the card
  counts such clips in ``n_clips_without_labels``.
* any other column: per-clip metadata, kept as a group column. A column whose
  every value parses as a number becomes int64/float64; anything else stays str.

Rows are named in errors by their line in the CSV file as a person sees it:
the header is row 1 and the first data row is row 2. Blank lines count as
lines and are skipped. (A quoted cell spanning several lines shifts the rows
after it; such cells have no use in this format.)
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from factsheet.audio import AudioInfo, read_audio_with_info
from factsheet.datasets.base import AudioDataset, ClassLabel, read_class_labels
from factsheet.errors import InputError

__all__ = ["load_folder"]

_FIRST_DATA_ROW = 2  # the header is row 1


def _read_csv(csv_path: Path) -> pd.DataFrame:
    """Read the CSV as str cells (stripped), one DataFrame row per line after the header.

    The index holds each row's line number (header = 1); blank lines are dropped.
    """
    if not csv_path.is_file():
        raise InputError(source=str(csv_path), reason="CSV file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(csv_path, dtype=str, keep_default_na=False, skip_blank_lines=False,
                             index_col=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise InputError(source=str(csv_path), reason="CSV file is empty (no header row)") from None
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
    df.index = pd.RangeIndex(_FIRST_DATA_ROW, _FIRST_DATA_ROW + len(df))
    df = df[(df != "").any(axis=1)]
    if df.empty:
        raise InputError(source=str(csv_path), reason="CSV file has no data rows (one row per clip expected)")
    return df


def _check_columns(df: pd.DataFrame, *, csv_path: Path, file_column: str, labels_column: str) -> None:
    present = ", ".join(df.columns)
    for col in (file_column, labels_column):
        if col not in df.columns:
            raise InputError(source=str(csv_path), field=f"column {col}",
                             reason=f"missing column (columns present: {present})")
    if "clip_id" in df.columns and file_column != "clip_id":
        raise InputError(source=str(csv_path), field="column clip_id",
                         reason=f"reserved column name (the clip id is taken from column {file_column})")


def _check_files(df: pd.DataFrame, *, csv_path: Path, file_column: str) -> list[str]:
    """Return the file names in row order; reject empty and duplicate names."""
    first_row: dict[str, int] = {}
    for row, name in df[file_column].items():
        if not name:
            raise InputError(source=str(csv_path), field=f"row {row}, column {file_column}", reason="empty file name")
        if name in first_row:
            raise InputError(source=str(csv_path), field=f"row {row}, column {file_column}", value=name,
                             reason=f"duplicate file name (first on row {first_row[name]})")
        first_row[name] = int(row)
    return list(first_row)


def _label_lookup(class_labels: list[ClassLabel]) -> dict[str, int]:
    """Map display names and mids to column indices; a display name wins over an equal mid."""
    lookup = {c.mid: c.index for c in class_labels if c.mid}
    lookup.update({c.display_name: c.index for c in class_labels})
    return lookup


def _parse_labels(df: pd.DataFrame, *, csv_path: Path, class_labels: list[ClassLabel], class_labels_path: Path,
                  labels_column: str, label_separator: str) -> np.ndarray:
    """Multi-hot labels, shape (n_rows, n_classes), uint8, columns in class-labels order."""
    lookup = _label_lookup(class_labels)
    folded = {k.casefold(): k for k in lookup}
    labels = np.zeros((len(df), len(class_labels)), dtype=np.uint8)
    for i, (row, cell) in enumerate(df[labels_column].items()):
        for token in (t.strip() for t in cell.split(label_separator)):
            if not token:
                continue
            j = lookup.get(token)
            if j is None:
                hint = folded.get(token.casefold())
                reason = f"unknown label (not in {class_labels_path})" + (f"; did you mean {hint!r}?" if hint else "")
                raise InputError(source=str(csv_path), field=f"row {row}, column {labels_column}", value=token,
                                 reason=reason)
            labels[i, j] = 1
    return labels


def _to_numeric_where_possible(col: pd.Series) -> pd.Series:
    """The column as numbers if every value parses as one, else unchanged (str)."""
    try:
        return pd.to_numeric(col, errors="raise")
    except (ValueError, TypeError):
        return col


def _metadata(df: pd.DataFrame, *, file_names: list[str], file_column: str, labels_column: str) -> pd.DataFrame:
    """``clip_id`` then the other CSV columns in CSV order, numeric where every value parses."""
    meta = pd.DataFrame({"clip_id": pd.Series(file_names, dtype=str)})
    for col in df.columns:
        if col in (file_column, labels_column):
            continue
        meta[col] = _to_numeric_where_possible(df[col].reset_index(drop=True))
    return meta


def _read_clips(df: pd.DataFrame, *, csv_path: Path, wav_dir: Path, file_column: str,
                sample_rate: int) -> tuple[list[np.ndarray], list[AudioInfo]]:
    clips: list[np.ndarray] = []
    infos: list[AudioInfo] = []
    for row, name in df[file_column].items():
        try:
            waveform, info = read_audio_with_info(wav_dir / name, target_rate=sample_rate)
        except InputError as exc:
            raise InputError(source=str(csv_path), field=f"row {row}, column {file_column}", value=name,
                             reason=exc.line().removeprefix("error: ")) from None
        clips.append(waveform)
        infos.append(info)
    return clips, infos


def _counts(values: list) -> dict[str, int]:
    """``{str(value): count}`` sorted by value, JSON-able."""
    return {str(k): v for k, v in sorted(Counter(values).items())}


def _card(*, wav_dir: Path, csv_path: Path, class_labels_path: Path, sample_rate: int, labels: np.ndarray,
          class_labels: list[ClassLabel], infos: list[AudioInfo], metadata: pd.DataFrame,
          file_column: str, labels_column: str, label_separator: str) -> dict:
    durations = np.array([i.duration_s for i in infos], dtype=np.float64)
    positives = labels.sum(axis=0, dtype=np.int64)
    return {
        "description": "user-supplied WAV folder",
        "source": "folder",
        "wav_dir": str(wav_dir),
        "csv_path": str(csv_path),
        "class_labels_path": str(class_labels_path),
        "csv_columns": {"file": file_column, "labels": labels_column, "label_separator": label_separator},
        "sample_rate": int(sample_rate),
        "n_clips": len(infos),
        "n_classes": len(class_labels),
        "positives_per_class": {c.display_name: int(positives[c.index]) for c in class_labels},
        "n_clips_without_labels": int(np.count_nonzero(labels.sum(axis=1) == 0)),
        "original_sample_rates": _counts([i.sample_rate for i in infos]),
        "channels": _counts([i.n_channels for i in infos]),
        "sample_formats": _counts([i.sample_format for i in infos]),
        "containers": _counts([i.container for i in infos]),
        "n_resampled": sum(i.resampled for i in infos),
        "n_downmixed": sum(i.downmixed for i in infos),
        "duration_s": {"min": float(durations.min()), "median": float(np.median(durations)),
                       "max": float(durations.max())},
        "metadata_columns": {c: str(metadata[c].dtype) for c in metadata.columns},
    }


def load_folder(*, wav_dir: str | Path, csv_path: str | Path, class_labels_path: str | Path,
                sample_rate: int = 16000, file_column: str = "file", labels_column: str = "labels",
                label_separator: str = ";", name: str | None = None) -> AudioDataset:
    """Load audio clips listed in a CSV, with multi-hot labels and metadata (see module docs).

    The whole CSV (columns, file names, labels) is checked before any audio is read.

    Parameters
    ----------
    wav_dir : str or Path
        Folder the CSV's file names are relative to; files in any format libsndfile reads.
    csv_path : str or Path
        One row per clip: ``file_column``, ``labels_column``, any metadata columns.
    class_labels_path : str or Path
        AudioSet-format ``class_labels_indices.csv``; fixes the label columns' order.
    sample_rate : int
        Hz every clip is brought to (see :func:`factsheet.audio.read_audio`).
    file_column, labels_column : str
        CSV column names.
    label_separator : str
        Separates labels within a cell; blanks around labels are ignored.
    name : str, optional
        Dataset name; default: the folder's name.

    Returns
    -------
    AudioDataset
        ``clips``: float32 mono waveforms in [-1, 1], each its own length (not fitted);
        ``labels``: uint8, shape (n_clips, n_classes);
        ``metadata``: ``clip_id`` (the file name) then the other CSV columns in CSV order;
        ``card``: counts of rates, channels, sample formats, containers, resampling, durations.

    Raises
    ------
    InputError
        Missing folder or file; empty or unparsable CSV; missing column; empty or
        duplicate file name; unknown label; missing or unreadable audio file (naming
        the CSV row and the file).
    """
    if not label_separator:
        raise ValueError("label_separator must be a non-empty string")
    wav_dir, csv_path, class_labels_path = Path(wav_dir), Path(csv_path), Path(class_labels_path)
    class_labels = read_class_labels(class_labels_path)
    if not wav_dir.is_dir():
        raise InputError(source=str(wav_dir), reason="WAV folder not found")
    df = _read_csv(csv_path)
    _check_columns(df, csv_path=csv_path, file_column=file_column, labels_column=labels_column)
    file_names = _check_files(df, csv_path=csv_path, file_column=file_column)
    labels = _parse_labels(df, csv_path=csv_path, class_labels=class_labels, class_labels_path=class_labels_path,
                           labels_column=labels_column, label_separator=label_separator)
    metadata = _metadata(df, file_names=file_names, file_column=file_column, labels_column=labels_column)
    clips, infos = _read_clips(df, csv_path=csv_path, wav_dir=wav_dir, file_column=file_column,
                               sample_rate=sample_rate)
    card = _card(wav_dir=wav_dir, csv_path=csv_path, class_labels_path=class_labels_path, sample_rate=sample_rate,
                 labels=labels, class_labels=class_labels, infos=infos, metadata=metadata,
                 file_column=file_column, labels_column=labels_column, label_separator=label_separator)
    return AudioDataset(name=name or wav_dir.resolve().name or "folder", sample_rate=sample_rate, clips=clips,
                        labels=labels, class_labels=class_labels, metadata=metadata, card=card)
