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

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from factsheet.audio import AudioInfo
from factsheet.datasets.base import AudioDataset, ClassLabel, read_class_labels
from factsheet.datasets.common import ClipEntry, audio_card, read_clips, read_csv_rows, require_columns
from factsheet.errors import InputError

__all__ = ["load_folder"]


def _check_columns(df: pd.DataFrame, *, csv_path: Path, file_column: str, labels_column: str) -> None:
    require_columns(df, csv_path=csv_path, columns=[file_column, labels_column])
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


def _card(*, wav_dir: Path, csv_path: Path, class_labels_path: Path, sample_rate: int, labels: np.ndarray,
          class_labels: list[ClassLabel], infos: list[AudioInfo], metadata: pd.DataFrame,
          file_column: str, labels_column: str, label_separator: str) -> dict:
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
        **audio_card(infos),
        "metadata_columns": {c: str(metadata[c].dtype) for c in metadata.columns},
    }


def _parse_csv(csv_path: Path, *, wav_dir: Path, class_labels: list[ClassLabel], class_labels_path: Path,
               file_column: str, labels_column: str,
               label_separator: str) -> tuple[list[ClipEntry], np.ndarray, pd.DataFrame]:
    """The listed files, multi-hot labels and metadata from the whole CSV, checked before any audio is read."""
    df = read_csv_rows(csv_path)
    _check_columns(df, csv_path=csv_path, file_column=file_column, labels_column=labels_column)
    file_names = _check_files(df, csv_path=csv_path, file_column=file_column)
    labels = _parse_labels(df, csv_path=csv_path, class_labels=class_labels, class_labels_path=class_labels_path,
                           labels_column=labels_column, label_separator=label_separator)
    entries = [ClipEntry(row=int(row), name=f, path=wav_dir / f) for row, f in zip(df.index, file_names)]
    return entries, labels, _metadata(df, file_names=file_names, file_column=file_column, labels_column=labels_column)


def load_folder(*, wav_dir: str | Path, csv_path: str | Path, class_labels_path: str | Path,
                sample_rate: int = 16000, file_column: str = "file", labels_column: str = "labels",
                label_separator: str = ";", name: str | None = None,
                on_unreadable: Literal["fail", "skip"] = "fail", max_skipped_fraction: float = 0.05) -> AudioDataset:
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
    on_unreadable, max_skipped_fraction : {"fail", "skip"}, float
        Fail on, or skip and list, missing and unreadable WAVs (:func:`~factsheet.datasets.common.read_clips`).

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
        the CSV row and the file) with ``"fail"``, or too many of them with ``"skip"``.
    """
    if not label_separator:
        raise ValueError("label_separator must be a non-empty string")
    wav_dir, csv_path, class_labels_path = Path(wav_dir), Path(csv_path), Path(class_labels_path)
    class_labels = read_class_labels(class_labels_path)
    if not wav_dir.is_dir():
        raise InputError(source=str(wav_dir), reason="WAV folder not found")
    entries, labels, metadata = _parse_csv(csv_path, wav_dir=wav_dir, class_labels=class_labels,
                                           class_labels_path=class_labels_path, file_column=file_column,
                                           labels_column=labels_column, label_separator=label_separator)
    got = read_clips(entries, source=csv_path, column=file_column, sample_rate=sample_rate,
                     on_unreadable=on_unreadable, max_skipped_fraction=max_skipped_fraction)
    labels, metadata = labels[got.kept], metadata.iloc[got.kept].reset_index(drop=True)
    card = _card(wav_dir=wav_dir, csv_path=csv_path, class_labels_path=class_labels_path, sample_rate=sample_rate,
                 labels=labels, class_labels=class_labels, infos=got.infos, metadata=metadata,
                 file_column=file_column, labels_column=labels_column, label_separator=label_separator)
    return AudioDataset(name=name or wav_dir.resolve().name or "folder", sample_rate=sample_rate, clips=got.clips,
                        labels=labels, class_labels=class_labels, metadata=metadata, card=card,
                        skipped=got.skipped, n_listed=len(entries))
