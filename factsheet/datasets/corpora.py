"""Public audio corpora in their published layouts: AudioSet, FSD50K, UrbanSound8K and ESC-50.

Each loader reads the corpus's own metadata files unchanged (a UTF-8 byte-order mark is
ignored; quoted label lists may hold commas) and returns an :class:`AudioDataset` in the
corpus's own vocabulary; :func:`factsheet.datasets.mapping.map_to_model` then maps it onto a
model's classes. Audio is read with :func:`factsheet.audio.read_wav_with_info` through
:func:`factsheet.datasets.common.read_clips`, so a missing or unreadable file fails the load or
is skipped and listed (``on_unreadable``).

Metadata columns become the dataset's group columns (the Bias section slices by every text
column) only where a group means something for the audio: each loader's docstring says which
and why. File ids, source-recording ids (``fsID``, ``src_file``, the YouTube id) and free text
are never group columns: each value would be a group of one or two clips.

A label the metadata uses but the vocabulary does not list is kept as a class of its own
(named by the label, or its mid) and counted in the card's ``labels_not_in_vocabulary``; a
wrong layout (missing metadata file or folder, missing column, a bad fold or class id) is one
:class:`InputError` line naming the file and what was expected.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from factsheet.datasets.base import AudioDataset, ClassLabel, read_class_labels
from factsheet.datasets.common import ClipEntry, audio_card, read_clips, read_csv_rows, require_columns
from factsheet.errors import InputError, read_input_text

__all__ = ["AUDIOSET_COLUMNS", "DEFAULT_FILE_PATTERN", "load_audioset", "load_esc50", "load_fsd50k",
           "load_urbansound8k", "read_fsd50k_vocabulary", "read_segments"]

AUDIOSET_COLUMNS = ("YTID", "start_seconds", "end_seconds", "positive_labels")
DEFAULT_FILE_PATTERN = "{YTID}.wav"
FSD50K_LAYOUT = (" (expected the FSD50K layout: FSD50K.ground_truth/eval.csv, dev.csv and vocabulary.csv, "
                 "audio in FSD50K.eval_audio/ and FSD50K.dev_audio/)")
US8K_LAYOUT = " (expected the UrbanSound8K layout: metadata/UrbanSound8K.csv, audio/fold1/ .. audio/fold10/)"
ESC50_LAYOUT = " (expected the ESC-50 layout: meta/esc50.csv, audio/)"
SALIENCE = {"1": "foreground", "2": "background"}


class _Vocabulary:
    """A corpus's classes looked up by mid or by name; labels the vocabulary lacks are added as classes."""

    def __init__(self, classes: list[ClassLabel], *, by: Literal["mid", "name"]) -> None:
        self.classes = list(classes)
        self.by = by
        self.position = {(c.mid if by == "mid" else c.display_name): j for j, c in enumerate(self.classes)}
        self.unlisted: list[int] = []

    def __call__(self, token: str, *, name: str | None = None) -> int:
        """The position of ``token``, adding it (shown as ``name`` where known) when unlisted."""
        j = self.position.get(token)
        if j is None:
            taken = {c.display_name for c in self.classes}
            shown = name if name and name not in taken else token
            j = self.position[token] = len(self.classes)
            self.classes.append(ClassLabel(index=j, mid=token if self.by == "mid" else "", display_name=shown))
            self.unlisted.append(j)
        return j


@dataclass
class _Listing:
    """What a corpus's metadata says, before any audio is read."""

    name: str
    metadata_file: Path
    file_column: str
    vocabulary: _Vocabulary
    entries: list[ClipEntry] = field(default_factory=list)
    label_sets: list[list[int]] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)
    card: dict = field(default_factory=dict)


def _folder(path: Path, *, layout: str) -> Path:
    if not path.is_dir():
        raise InputError(source=str(path), reason=f"folder not found{layout}")
    return path


def _int(value: str, *, path: Path, row: int, column: str, allowed: range | None = None) -> int:
    """A cell as an integer (within ``allowed``), or one line naming the row."""
    try:
        number = int(value)
    except ValueError:
        raise InputError(source=str(path), field=f"row {row}, column {column}", value=value,
                         reason="not an integer") from None
    if allowed is not None and number not in allowed:
        raise InputError(source=str(path), field=f"row {row}, column {column}", value=value,
                         reason=f"must be {allowed.start}..{allowed.stop - 1}")
    return number


def _split_list(cell: str) -> list[str]:
    """A quoted, comma-separated list cell (``"/m/068hy,/m/07q6cd_"``) as its stripped, non-empty items."""
    return [t.strip() for t in cell.split(",") if t.strip()]


def _assemble(listing: _Listing, *, sample_rate: int, on_unreadable: Literal["fail", "skip"],
              max_skipped_fraction: float) -> AudioDataset:
    """Check the listing, read the audio, and build the dataset, its metadata and its card."""
    first: dict[str, int] = {}
    for e in listing.entries:
        if e.name in first:
            raise InputError(source=str(listing.metadata_file), field=f"row {e.row}, column {listing.file_column}",
                             value=e.name, reason=f"duplicate file (first on row {first[e.name]})")
        first[e.name] = e.row
    if not listing.entries:
        raise InputError(source=str(listing.metadata_file), reason="no clips selected (check dataset.folds)")
    got = read_clips(listing.entries, source=listing.metadata_file, column=listing.file_column,
                     sample_rate=sample_rate, on_unreadable=on_unreadable, max_skipped_fraction=max_skipped_fraction)
    classes = listing.vocabulary.classes
    labels = np.zeros((len(listing.entries), len(classes)), dtype=np.uint8)
    for i, positions in enumerate(listing.label_sets):
        labels[i, positions] = 1
    labels = labels[got.kept]
    metadata = pd.DataFrame({"clip_id": pd.Series([e.name for e in listing.entries], dtype=str),
                             **{c: pd.Series(v, dtype=str) for c, v in listing.groups.items()}})
    metadata = metadata.iloc[got.kept].reset_index(drop=True)
    positives = labels.sum(axis=0, dtype=np.int64)
    card = {**listing.card, "metadata_file": str(listing.metadata_file), "sample_rate": int(sample_rate),
            "n_listed": len(listing.entries), "n_clips": len(got.clips), "n_classes": len(classes),
            "positives_per_class": {c.display_name: int(positives[j]) for j, c in enumerate(classes)},
            "n_clips_without_labels": int(np.count_nonzero(labels.sum(axis=1) == 0)),
            "labels_not_in_vocabulary": {classes[j].display_name: int(positives[j])
                                         for j in listing.vocabulary.unlisted},
            **audio_card(got.infos), "metadata_columns": {c: str(metadata[c].dtype) for c in metadata.columns}}
    return AudioDataset(name=listing.name, sample_rate=sample_rate, clips=got.clips, labels=labels,
                        class_labels=classes, metadata=metadata, card=card, skipped=got.skipped,
                        n_listed=len(listing.entries))


# --- AudioSet -----------------------------------------------------------------------------------------------


def read_segments(path: Path) -> list[tuple[int, dict[str, str]]]:
    """The rows of an AudioSet segments CSV (``eval_segments.csv`` style) with their line numbers.

    Lines starting with ``#`` are comments; the one naming ``YTID`` is the header
    (``# YTID, start_seconds, end_seconds, positive_labels``); a plain header row is accepted too.
    Cells are separated by a comma and optional spaces; ``positive_labels`` is a quoted,
    comma-separated list of mids.

    Raises
    ------
    InputError
        Missing file, no header, a missing column, or a row with another number of fields.
    """
    text = read_input_text(path, what="AudioSet segments CSV").lstrip("\ufeff")
    header: list[str] | None = None
    rows: list[tuple[int, dict[str, str]]] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("#") or (header is None and stripped.startswith("YTID")):
            cells = [c.strip() for c in stripped.lstrip("#").split(",")]
            header = cells if cells[0] == "YTID" else header
            continue
        if not stripped:
            continue
        if header is None:
            raise InputError(source=str(path), field=f"row {line_no}", reason="data before the header (expected "
                             f"the comment '# {', '.join(AUDIOSET_COLUMNS)}' first)")
        cells = [c.strip() for c in next(csv.reader([stripped], skipinitialspace=True))]
        if len(cells) != len(header):
            raise InputError(source=str(path), field=f"row {line_no}", value=stripped[:80],
                             reason=f"{len(cells)} fields, expected {len(header)} ({', '.join(header)})")
        rows.append((line_no, dict(zip(header, cells))))
    if header is None:
        raise InputError(source=str(path), reason=f"no header (expected the comment '# {', '.join(AUDIOSET_COLUMNS)}')")
    missing = [c for c in AUDIOSET_COLUMNS if c not in header]
    if missing:
        raise InputError(source=str(path), field=f"column {missing[0]}",
                         reason=f"missing column (expected {', '.join(AUDIOSET_COLUMNS)}; present: {', '.join(header)})")
    if not rows:
        raise InputError(source=str(path), reason="AudioSet segments CSV has no data rows")
    return rows


def _seconds(value: str, *, path: Path, row: int, column: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise InputError(source=str(path), field=f"row {row}, column {column}", value=value,
                         reason="not a number of seconds") from None


def load_audioset(*, root: str | Path, split: str = "eval", segments: str | Path | None = None,
                  class_labels: str | Path | None = None, wav_dir: str | Path | None = None,
                  file_pattern: str = DEFAULT_FILE_PATTERN, sample_rate: int = 16000,
                  on_unreadable: Literal["fail", "skip"] = "fail", max_skipped_fraction: float = 0.05) -> AudioDataset:
    """AudioSet segments: ``<root>/<split>_segments.csv`` and ``class_labels_indices.csv``, clips named by a pattern.

    AudioSet publishes no audio, only segment lists; the clips you hold are found by
    ``file_pattern`` (``str.format`` fields ``YTID``, ``start_seconds`` and ``end_seconds``, the
    seconds as floats: ``"{YTID}_{start_seconds:.3f}.wav"``), relative to ``wav_dir`` (default
    ``root``). Labels are mids, looked up in ``class_labels`` (default
    ``<root>/class_labels_indices.csv``).

    Group columns: none. The segment lists hold only the YouTube id (one clip each) and the
    segment's start and end; nothing describes recording conditions or speakers.

    Parameters
    ----------
    root : str or Path
        The corpus folder.
    split : str
        ``"eval"``, ``"balanced_train"`` or ``"unbalanced_train"``: which segments CSV.
    segments, class_labels, wav_dir : str or Path, optional
        Override the default locations.
    file_pattern : str
        The clip file name of a segment.
    sample_rate : int
        Hz every clip is brought to.
    on_unreadable, max_skipped_fraction
        See :func:`factsheet.datasets.common.read_clips`.
    """
    root = _folder(Path(root), layout=" (the AudioSet corpus folder)")
    seg_path = Path(segments) if segments is not None else root / f"{split}_segments.csv"
    labels_path = Path(class_labels) if class_labels is not None else root / "class_labels_indices.csv"
    audio = _folder(Path(wav_dir) if wav_dir is not None else root, layout=" (the AudioSet audio folder)")
    vocab = _Vocabulary(read_class_labels(labels_path), by="mid")
    listing = _Listing(name=f"audioset-{split}" if segments is None else seg_path.stem, metadata_file=seg_path,
                       file_column="YTID (file_pattern)", vocabulary=vocab,
                       card={"description": "AudioSet segments (published segment list; audio held locally)",
                             "source": "audioset", "root": str(root), "split": split,
                             "vocabulary_file": str(labels_path), "audio_dir": str(audio),
                             "file_pattern": file_pattern, "group_columns": {}})
    for row, cells in read_segments(seg_path):
        start = _seconds(cells["start_seconds"], path=seg_path, row=row, column="start_seconds")
        end = _seconds(cells["end_seconds"], path=seg_path, row=row, column="end_seconds")
        name = file_pattern.format(YTID=cells["YTID"], start_seconds=start, end_seconds=end)
        listing.entries.append(ClipEntry(row=row, name=name, path=audio / name))
        listing.label_sets.append([vocab(mid) for mid in _split_list(cells["positive_labels"])])
    return _assemble(listing, sample_rate=sample_rate, on_unreadable=on_unreadable,
                     max_skipped_fraction=max_skipped_fraction)


# --- FSD50K -------------------------------------------------------------------------------------------------


def read_fsd50k_vocabulary(path: Path) -> list[ClassLabel]:
    """FSD50K's ``vocabulary.csv``: no header, rows ``index,display_name,mid``."""
    df = read_csv_rows(path, what="FSD50K vocabulary file", names=["index", "display_name", "mid"],
                       layout=FSD50K_LAYOUT, rows_hint=" (rows index,name,mid expected)")
    classes = []
    for row, (index, name, mid) in zip(df.index, df[["index", "display_name", "mid"]].itertuples(index=False)):
        _int(index, path=path, row=int(row), column="index")
        if not name or not mid:
            raise InputError(source=str(path), field=f"row {row}", value=f"{index},{name},{mid}",
                             reason="expected index,name,mid with a name and a mid")
        classes.append(ClassLabel(index=len(classes), mid=mid, display_name=name))
    return classes


def load_fsd50k(*, root: str | Path, split: Literal["eval", "dev"] = "eval", sample_rate: int = 16000,
                on_unreadable: Literal["fail", "skip"] = "fail", max_skipped_fraction: float = 0.05) -> AudioDataset:
    """FSD50K: ``FSD50K.ground_truth/<split>.csv`` and ``vocabulary.csv``, audio in ``FSD50K.<split>_audio/``.

    Labels are read from the ``mids`` column (a quoted, comma-separated list, aligned with the
    ``labels`` column of display names such as ``Bicycle_bell``), looked up in the vocabulary by mid.

    Group columns: ``split`` (dev only: ``train`` / ``val``, the corpus's own validation split,
    recorded apart from the training clips). The eval set has none: ``fname`` is a Freesound id.

    Parameters
    ----------
    root : str or Path
        The corpus folder holding ``FSD50K.ground_truth/`` and the audio folders.
    split : {"eval", "dev"}
    sample_rate : int
        Hz every clip is brought to.
    on_unreadable, max_skipped_fraction
        See :func:`factsheet.datasets.common.read_clips`.
    """
    root = _folder(Path(root), layout=FSD50K_LAYOUT)
    truth = root / "FSD50K.ground_truth"
    gt_path, vocab_path = truth / f"{split}.csv", truth / "vocabulary.csv"
    vocab = _Vocabulary(read_fsd50k_vocabulary(vocab_path), by="mid")
    df = read_csv_rows(gt_path, what="FSD50K ground-truth file", layout=FSD50K_LAYOUT)
    require_columns(df, csv_path=gt_path, columns=["fname", "labels", "mids"], expected="fname, labels, mids[, split]")
    audio = _folder(root / f"FSD50K.{split}_audio", layout=FSD50K_LAYOUT)
    groups = ["split"] if split == "dev" and "split" in df.columns else []
    listing = _Listing(name=f"fsd50k-{split}", metadata_file=gt_path, file_column="fname", vocabulary=vocab,
                       groups={c: df[c].tolist() for c in groups},
                       card={"description": f"FSD50K {split} set (published layout)", "source": "fsd50k",
                             "root": str(root), "split": split, "vocabulary_file": str(vocab_path),
                             "audio_dir": str(audio),
                             "group_columns": {c: "the corpus's train / val split of dev" for c in groups}})
    for row, fname, names, mids in zip(df.index, df["fname"], df["labels"], df["mids"]):
        names, mids = _split_list(names), _split_list(mids)
        if len(names) != len(mids):
            raise InputError(source=str(gt_path), field=f"row {row}, columns labels and mids",
                             reason=f"{len(names)} labels but {len(mids)} mids (the lists must align)")
        listing.entries.append(ClipEntry(row=int(row), name=f"{fname}.wav", path=audio / f"{fname}.wav"))
        listing.label_sets.append([vocab(mid, name=name) for name, mid in zip(names, mids)])
    return _assemble(listing, sample_rate=sample_rate, on_unreadable=on_unreadable,
                     max_skipped_fraction=max_skipped_fraction)


# --- UrbanSound8K and ESC-50: single-label, fold-based --------------------------------------------------------


def _fold_vocabulary(df: pd.DataFrame, *, path: Path, id_column: str, name_column: str) -> list[ClassLabel]:
    """Classes from (id, name) columns: each id one name and each name one id, ordered by id."""
    by_id: dict[int, str] = {}
    by_name: dict[str, int] = {}
    for row, cid, name in zip(df.index, df[id_column], df[name_column]):
        number = _int(cid, path=path, row=int(row), column=id_column, allowed=range(0, 10_000))
        known_name, known_id = by_id.setdefault(number, name), by_name.setdefault(name, number)
        if known_name != name or known_id != number:
            earlier = f"{number} is {known_name!r}" if known_name != name else f"{name!r} is {known_id}"
            raise InputError(source=str(path), field=f"row {row}, columns {id_column} and {name_column}",
                             value=f"{cid},{name}", reason=f"class id and name disagree with an earlier row ({earlier})")
    return [ClassLabel(index=j, mid="", display_name=by_id[k]) for j, k in enumerate(sorted(by_id))]


def _select_folds(df: pd.DataFrame, *, path: Path, n_folds: int, folds: tuple[int, ...]) -> pd.DataFrame:
    """Every row's fold checked (1..n_folds), then the rows of ``folds`` (all when empty)."""
    numbers = [_int(v, path=path, row=int(r), column="fold", allowed=range(1, n_folds + 1))
               for r, v in df["fold"].items()]
    keep = [not folds or n in folds for n in numbers]
    return df[keep].assign(fold=[f"fold{n}" for n, k in zip(numbers, keep) if k])


def load_urbansound8k(*, root: str | Path, folds: tuple[int, ...] = (), sample_rate: int = 16000,
                      on_unreadable: Literal["fail", "skip"] = "fail",
                      max_skipped_fraction: float = 0.05) -> AudioDataset:
    """UrbanSound8K: ``metadata/UrbanSound8K.csv`` with audio in ``audio/fold1/`` .. ``audio/fold10/``.

    Single-label: ``class`` (named by ``classID``, 10 classes). Clip id: ``fold<k>/<slice_file_name>``.

    Group columns: ``fold`` (``fold1`` .. ``fold10``: the corpus's cross-validation folds,
    recorded apart so that slices of one recording stay in one fold) and ``salience``
    (``foreground`` / ``background``, the corpus's 1 / 2: whether the sound is the main source).
    Not groups: ``fsID`` (the Freesound recording), ``start`` / ``end`` (the slice's times).

    Parameters
    ----------
    root : str or Path
        The corpus folder holding ``metadata/`` and ``audio/``.
    folds : tuple of int
        Folds to evaluate (1..10); empty: all.
    sample_rate : int
        Hz every clip is brought to.
    on_unreadable, max_skipped_fraction
        See :func:`factsheet.datasets.common.read_clips`.
    """
    root = _folder(Path(root), layout=US8K_LAYOUT)
    path = root / "metadata" / "UrbanSound8K.csv"
    df = read_csv_rows(path, what="UrbanSound8K metadata file", layout=US8K_LAYOUT)
    require_columns(df, csv_path=path, columns=["slice_file_name", "fold", "classID", "class", "salience"],
                    expected="slice_file_name, fsID, start, end, salience, fold, classID, class")
    audio = _folder(root / "audio", layout=US8K_LAYOUT)
    vocab = _Vocabulary(_fold_vocabulary(df, path=path, id_column="classID", name_column="class"), by="name")
    for row, value in df["salience"].items():
        if value not in SALIENCE:
            raise InputError(source=str(path), field=f"row {row}, column salience", value=value,
                             reason="must be 1 (foreground) or 2 (background)")
    df = _select_folds(df, path=path, n_folds=10, folds=folds)
    listing = _Listing(name="urbansound8k" + (f"-folds-{'-'.join(map(str, folds))}" if folds else ""),
                       metadata_file=path, file_column="slice_file_name", vocabulary=vocab,
                       groups={"fold": df["fold"].tolist(), "salience": [SALIENCE[v] for v in df["salience"]]},
                       card={"description": "UrbanSound8K (published layout)", "source": "urbansound8k",
                             "root": str(root), "folds": list(folds) or list(range(1, 11)), "audio_dir": str(audio),
                             "group_columns": {"fold": "cross-validation fold", "salience": "1 foreground, "
                                                                                            "2 background"}})
    for row, fold, name, cls in zip(df.index, df["fold"], df["slice_file_name"], df["class"]):
        listing.entries.append(ClipEntry(row=int(row), name=f"{fold}/{name}", path=audio / fold / name))
        listing.label_sets.append([vocab(cls)])
    return _assemble(listing, sample_rate=sample_rate, on_unreadable=on_unreadable,
                     max_skipped_fraction=max_skipped_fraction)


def load_esc50(*, root: str | Path, folds: tuple[int, ...] = (), sample_rate: int = 16000,
               on_unreadable: Literal["fail", "skip"] = "fail", max_skipped_fraction: float = 0.05) -> AudioDataset:
    """ESC-50: ``meta/esc50.csv`` with audio in ``audio/``.

    Single-label: ``category`` (named by ``target``, 50 classes). Clip id: ``filename``.

    Group columns: ``fold`` (``fold1`` .. ``fold5``: the corpus's cross-validation folds, clips
    of one source recording in one fold) and ``esc10`` (``yes`` / ``no``: whether the clip belongs
    to the ESC-10 subset, often evaluated on its own). Not groups: ``src_file`` (the Freesound
    recording) and ``take`` (the letter of a clip within its recording).

    Parameters
    ----------
    root : str or Path
        The corpus folder holding ``meta/`` and ``audio/``.
    folds : tuple of int
        Folds to evaluate (1..5); empty: all.
    sample_rate : int
        Hz every clip is brought to.
    on_unreadable, max_skipped_fraction
        See :func:`factsheet.datasets.common.read_clips`.
    """
    root = _folder(Path(root), layout=ESC50_LAYOUT)
    path = root / "meta" / "esc50.csv"
    df = read_csv_rows(path, what="ESC-50 metadata file", layout=ESC50_LAYOUT)
    require_columns(df, csv_path=path, columns=["filename", "fold", "target", "category", "esc10"],
                    expected="filename, fold, target, category, esc10, src_file, take")
    audio = _folder(root / "audio", layout=ESC50_LAYOUT)
    vocab = _Vocabulary(_fold_vocabulary(df, path=path, id_column="target", name_column="category"), by="name")
    esc10 = {"true": "yes", "false": "no"}
    for row, value in df["esc10"].items():
        if value.lower() not in esc10:
            raise InputError(source=str(path), field=f"row {row}, column esc10", value=value,
                             reason="must be True or False")
    df = _select_folds(df, path=path, n_folds=5, folds=folds)
    listing = _Listing(name="esc50" + (f"-folds-{'-'.join(map(str, folds))}" if folds else ""),
                       metadata_file=path, file_column="filename", vocabulary=vocab,
                       groups={"fold": df["fold"].tolist(), "esc10": [esc10[v.lower()] for v in df["esc10"]]},
                       card={"description": "ESC-50 (published layout)", "source": "esc50", "root": str(root),
                             "folds": list(folds) or list(range(1, 6)), "audio_dir": str(audio),
                             "group_columns": {"fold": "cross-validation fold", "esc10": "in the ESC-10 subset"}})
    for row, name, cls in zip(df.index, df["filename"], df["category"]):
        listing.entries.append(ClipEntry(row=int(row), name=name, path=audio / name))
        listing.label_sets.append([vocab(cls)])
    return _assemble(listing, sample_rate=sample_rate, on_unreadable=on_unreadable,
                     max_skipped_fraction=max_skipped_fraction)
