"""The dataset type every loader returns, and the AudioSet class-labels file format."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from factsheet.errors import InputError, read_input_text


@dataclass(frozen=True)
class ClassLabel:
    """One row of AudioSet's ``class_labels_indices.csv`` (index, mid, display_name).

    ``category`` is the top-level ontology category (e.g. ``"Music"``) where known.
    """

    index: int
    mid: str
    display_name: str
    category: str | None = None


@dataclass(frozen=True)
class SkippedFile:
    """An audio file the metadata lists that was missing or unreadable and skipped (``on_unreadable = "skip"``).

    Attributes
    ----------
    file : str
        The file as the metadata names it (relative to the corpus or WAV folder).
    reason : str
        Why it could not be read, in one line (e.g. ``"file not found"``).
    """

    file: str
    reason: str


@dataclass(frozen=True)
class LabelMapping:
    """How a dataset's label vocabulary was mapped onto a model's classes (see :mod:`factsheet.datasets.mapping`).

    Attributes
    ----------
    method : str
        ``"mid"``, ``"name"`` or ``"table"``.
    table : str or None
        The mapping table's path when ``method == "table"``.
    defaulted : bool
        True when the method was chosen by default (``label_mapping`` not given).
    n_dataset_classes, n_model_classes : int
        Sizes of the two vocabularies.
    pairs : list of (str, str)
        Every mapped (dataset label, model label) pair, in dataset-vocabulary order.
    dataset_only : list of dict
        ``{"label", "mid", "n_clips", "in_vocabulary"}`` for each dataset label with no model class;
        ``n_clips`` counts the clips carrying it; ``in_vocabulary`` is False for labels the corpus's
        metadata uses but its vocabulary file does not list.
    model_only : list of ClassLabel
        Model classes no dataset label maps to (not scored).
    n_clips_all_labels_unmapped : int
        Clips with at least one label, none of them mapped: kept as pure negatives.
    """

    method: str
    table: str | None
    defaulted: bool
    n_dataset_classes: int
    n_model_classes: int
    pairs: list[tuple[str, str]]
    dataset_only: list[dict]
    model_only: list[ClassLabel]
    n_clips_all_labels_unmapped: int


@dataclass
class AudioDataset:
    """Clips with multi-hot labels and per-clip metadata.

    Attributes
    ----------
    name : str
        Short identifier used in reports.
    sample_rate : int
        Hz; every clip is already at this rate.
    clips : sequence of ndarray
        ``n_clips`` mono float32 waveforms in [-1, 1], each shape (n_samples_i,); lengths may
        differ (see :func:`fit_clips`). A list in memory (generated data) or a :class:`FileClips`
        that reads each clip from its file when accessed (files).
    labels : ndarray
        Shape (n_clips, n_classes), uint8 multi-hot; column j is ``class_labels[j]``.
    class_labels : list of ClassLabel
        Ordered by ``index``: 0..n_classes-1 in the dataset's own vocabulary; after a label mapping,
        the mapped model classes, each with its ``index`` in the model's output (= ``model_columns``).
    metadata : pandas.DataFrame
        ``n_clips`` rows in clip order; column ``clip_id`` (unique str) plus any
        group columns (voice_type, n_events, snr_db, ...).
    card : dict
        The dataset card: description, source, split, counts, known skews. JSON-able.
    model_columns : list of int or None
        After a label mapping: the model output column of each class (``class_labels[j].index``),
        increasing; the model's scores are sliced to these columns for performance and bias.
        None when the classes are the model's own, all of them, in order.
    label_mapping : LabelMapping or None
        What the mapping kept and left out; None without a mapping.
    skipped : list of SkippedFile
        Files the metadata lists that were missing or unreadable and skipped (``on_unreadable = "skip"``).
    n_listed : int or None
        Clips the metadata lists (after split / fold selection), skipped ones included; None for
        generated data.
    events : list or None
        Where the generator placed each clip's sound events, when it knows (synthetic data): per clip a
        tuple of ``(class_index, onset_s, offset_s)`` in the clip's own time (seconds). None otherwise.
    """

    name: str
    sample_rate: int
    clips: Sequence[np.ndarray]
    labels: np.ndarray
    class_labels: list[ClassLabel]
    metadata: pd.DataFrame
    card: dict = field(default_factory=dict)
    model_columns: list[int] | None = None
    label_mapping: LabelMapping | None = None
    skipped: list[SkippedFile] = field(default_factory=list)
    n_listed: int | None = None
    events: list | None = None

    @property
    def n_clips(self) -> int:
        return len(self.clips)

    @property
    def n_classes(self) -> int:
        return len(self.class_labels)

    def sha256(self) -> str:
        """Content hash of clips, labels, label names and metadata (order-sensitive)."""
        if isinstance(self.clips, FileClips):
            h = self.clips.content_hash()  # fed the same bytes, in order, when the files were first read
        else:
            h = hashlib.sha256()
            for clip in self.clips:
                hash_clip(h, clip)
        h.update(np.ascontiguousarray(self.labels, dtype=np.uint8).tobytes())
        for c in self.class_labels:
            h.update(f"{c.index}\t{c.mid}\t{c.display_name}\n".encode())
        h.update(self.metadata.to_csv(index=False, lineterminator="\n").encode())
        return h.hexdigest()


def hash_clip(h, clip: np.ndarray) -> None:
    """Feed one clip to a hash as :meth:`AudioDataset.sha256` does: its length, then its float32 bytes."""
    a = np.ascontiguousarray(clip, dtype=np.float32)
    h.update(np.int64(a.size).tobytes())
    h.update(a.tobytes())


class FileClips(Sequence):
    """Clips that stay on disk: each access reads (decodes, downmixes, resamples) its file again.

    A dataset of files holds only this index in memory, so memory does not grow with the number
    of clips; the content hash and the clip lengths are taken on the first, checking read.

    Parameters
    ----------
    paths : list of Path
        One audio file per clip, in clip order.
    lengths : list of int
        Samples of each clip at ``sample_rate``.
    sample_rate : int
        Hz every clip is brought to on reading.
    digest : hashlib hash object
        :func:`hash_clip` fed every clip in order (copied, never finished, by :meth:`content_hash`).
    """

    def __init__(self, *, paths: list[Path], lengths: list[int], sample_rate: int, digest) -> None:
        if len(paths) != len(lengths):
            raise ValueError("one length per path expected")
        self.paths, self.lengths, self.sample_rate, self._digest = list(paths), list(lengths), sample_rate, digest

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        from factsheet.audio import read_audio

        clip = read_audio(self.paths[i], target_rate=self.sample_rate)
        if clip.shape[0] != self.lengths[i]:
            from factsheet.errors import InputError

            raise InputError(source=str(self.paths[i]), reason=f"changed while the run read it ({clip.shape[0]} "
                                                                f"samples now, {self.lengths[i]} before)")
        return clip

    def content_hash(self):
        """A copy of the running hash of every clip (feed labels and names, then finish it)."""
        return self._digest.copy()


class FittedClips:
    """Clips brought to the model's input length on access (:func:`fit_one`): the lazy counterpart of
    the array :func:`fit_length` returns, indexable by an int, a slice or an array of ints.

    ``shape`` is ``(n_clips, n_samples)``; indexing returns float32 arrays of that width.
    """

    def __init__(self, clips: Sequence, *, n_samples: int) -> None:
        self.clips, self.n_samples = clips, int(n_samples)
        self.shape = (len(clips), self.n_samples)
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            return fit_one(self.clips[int(index)], n_samples=self.n_samples)
        rows = np.arange(self.shape[0])[index]
        out = np.empty((rows.size, self.n_samples), dtype=np.float32)
        for k, r in enumerate(rows):
            out[k] = fit_one(self.clips[int(r)], n_samples=self.n_samples)
        return out


def fit_one(clip: np.ndarray, *, n_samples: int) -> np.ndarray:
    """One clip at ``n_samples``: repeated (tiled) when shorter, cut at the end when longer. Float32."""
    n = clip.shape[0]
    if n >= n_samples:
        return np.asarray(clip[:n_samples], dtype=np.float32)
    return np.tile(clip, -(-n_samples // n))[:n_samples].astype(np.float32, copy=False)


def length_counts(lengths, *, n_samples: int) -> dict:
    """How many clips :func:`fit_one` repeats, cuts or leaves as they are."""
    lengths = np.asarray(lengths)
    return {"repeated": int((lengths < n_samples).sum()), "cut": int((lengths > n_samples).sum()),
            "unchanged": int((lengths == n_samples).sum())}


def fit_clips(clips: Sequence, *, n_samples: int):
    """The clips at the model's input length: an array for clips held in memory (:func:`fit_length`),
    a lazy :class:`FittedClips` for clips on disk (:class:`FileClips`). Returns it and the counts."""
    if isinstance(clips, FileClips):
        return FittedClips(clips, n_samples=n_samples), length_counts(clips.lengths, n_samples=n_samples)
    return fit_length(clips, n_samples=n_samples)


def fit_length(clips: list[np.ndarray], *, n_samples: int) -> tuple[np.ndarray, dict]:
    """Bring every clip to ``n_samples`` by repeating (tiling) short clips and cutting long ones.

    Parameters
    ----------
    clips : list of ndarray
        Mono waveforms, shapes (n_i,), n_i >= 1.
    n_samples : int
        Target length in samples.

    Returns
    -------
    waveforms : ndarray, shape (n_clips, n_samples), float32
    counts : dict
        ``{"repeated": int, "cut": int, "unchanged": int}``.
    """
    out = np.empty((len(clips), n_samples), dtype=np.float32)
    for i, clip in enumerate(clips):
        out[i] = fit_one(clip, n_samples=n_samples)
    return out, length_counts([clip.shape[0] for clip in clips], n_samples=n_samples)


def read_class_labels(path: str | Path) -> list[ClassLabel]:
    """Read class labels: AudioSet's ``class_labels_indices.csv`` or a plain list of names.

    A file whose first line is a CSV header naming ``display_name`` is read as columns
    index, mid, display_name[, category]; any other file as one class name per line
    (blank lines skipped; ``mid`` left empty), the format of many TFLite and Keras models.

    Raises
    ------
    InputError
        Missing file or column, non-integer or non-contiguous index, empty or duplicate name.
    """
    path = Path(path)
    text = read_input_text(path, what="class-labels file").lstrip("\ufeff")
    first = next(iter(text.splitlines()), "")
    if "display_name" not in next(csv.reader([first]), []):
        return _plain_labels(text, source=str(path))
    rows = list(csv.DictReader(text.splitlines()))
    if not rows:
        raise InputError(source=str(path), reason="class-labels file has no rows")
    for col in ("index", "mid", "display_name"):
        if col not in rows[0]:
            raise InputError(source=str(path), field=f"column {col}", reason="missing column")
    labels: list[ClassLabel] = []
    seen: set[str] = set()
    for i, row in enumerate(rows, start=2):
        try:
            index = int(row["index"])
        except (TypeError, ValueError):
            raise InputError(source=str(path), field=f"row {i}, column index", value=row["index"],
                             reason="not an integer") from None
        if index != len(labels):
            raise InputError(source=str(path), field=f"row {i}, column index", value=index,
                             reason=f"indices must run 0..n-1 in order (expected {len(labels)})")
        name = (row["display_name"] or "").strip()
        if not name or name in seen:
            raise InputError(source=str(path), field=f"row {i}, column display_name", value=name,
                             reason="empty or duplicate class name")
        seen.add(name)
        category = (row.get("category") or "").strip() or None
        labels.append(ClassLabel(index=index, mid=(row["mid"] or "").strip(), display_name=name, category=category))
    return labels


def _plain_labels(text: str, *, source: str) -> list[ClassLabel]:
    labels: list[ClassLabel] = []
    seen: dict[str, int] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        name = line.strip()
        if not name:
            continue
        if name in seen:
            raise InputError(source=source, field=f"line {line_no}", value=name,
                             reason=f"duplicate class name (also on line {seen[name]})")
        seen[name] = line_no
        labels.append(ClassLabel(index=len(labels), mid="", display_name=name))
    if not labels:
        raise InputError(source=source, reason="class-labels file has no names")
    return labels


def write_class_labels(path: str | Path, class_labels: list[ClassLabel], *, with_category: bool = False) -> None:
    """Write ``class_labels_indices.csv`` (AudioSet format; optional extra ``category`` column)."""
    fields = ["index", "mid", "display_name"] + (["category"] if with_category else [])
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(fields)
        for c in class_labels:
            row = [c.index, c.mid, c.display_name] + ([c.category or ""] if with_category else [])
            w.writerow(row)
