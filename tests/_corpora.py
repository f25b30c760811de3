"""Small corpus trees in the published layouts of AudioSet, FSD50K, UrbanSound8K and ESC-50, for the tests.

Nothing is downloaded: the audio is short synthetic WAVs (``factsheet.audio.write_wav_pcm16``) and
the metadata files are written in each corpus's own format. With ``awkward=True`` (the default)
every tree has the cases real files have: a UTF-8 byte-order mark at the start of the metadata
CSV, quoted comma-separated label lists, a listed file that is missing, a clip shorter than the
demo model's 2 s window and (AudioSet, FSD50K) a label that the vocabulary does not list.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from factsheet.audio import write_wav_pcm16
from factsheet.datasets.base import ClassLabel, write_class_labels

RATE = 16000
BOM = "\ufeff"
SHORT_SAMPLES = 4800  # 0.3 s: shorter than the demo model's 2 s window
UNKNOWN_MID = "/m/0zz_not_listed"
UNKNOWN_NAME = "Mystery_sound"

Clip = tuple[np.ndarray, list[str]]  # waveform at RATE, label names in the corpus's vocabulary


@dataclass
class Tree:
    """A corpus tree and what a loader should find in it."""

    root: Path
    metadata: Path
    n_listed: int
    missing: list[str] = field(default_factory=list)  # listed files (as the metadata names them) not written
    short: str | None = None  # clip id of the clip shorter than the model's window
    unknown_label: str | None = None  # a label the metadata uses and the vocabulary lacks


def demo_clips(*, n: int, seed: int, keep: list[str] | None = None, single: bool = False) -> list[Clip]:
    """Clips of the synthetic generator with their demo class names (those in ``keep`` only; one label each
    with ``single``); clips left without a label are dropped."""
    from factsheet.datasets.synthetic import make_synthetic

    ds = make_synthetic(split="eval", n_clips=n, seed=seed)
    names = [c.display_name for c in ds.class_labels]
    out = []
    for clip, row in zip(ds.clips, ds.labels):
        labels = [names[j] for j in np.flatnonzero(row) if keep is None or names[j] in keep]
        if labels and (not single or int(row.sum()) == 1):
            out.append((clip, labels))
    return out


def csv_text(rows: list[list[object]], *, bom: bool = False) -> str:
    """Rows as CSV text (cells quoted where they hold commas or quotes), optionally after a byte-order mark."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return (BOM if bom else "") + buf.getvalue()


def _write_audio(path: Path, clip: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav_pcm16(path, clip, sample_rate=RATE)


def _awkward(clips: list[Clip], awkward: bool) -> tuple[list[Clip], int | None]:
    """With ``awkward``: the first clip cut to 0.3 s, and the index of one more listed clip to leave unwritten."""
    if not awkward:
        return clips, None
    clips = [(clips[0][0][:SHORT_SAMPLES], clips[0][1])] + list(clips[1:]) + [clips[1]]
    return clips, len(clips) - 1


def make_audioset(root: Path, clips: list[Clip], *, vocabulary: list[tuple[str, str]], split: str = "eval",
                  file_pattern: str = "{YTID}_{start_seconds:.3f}.wav", awkward: bool = True) -> Tree:
    """``<root>/<split>_segments.csv``, ``class_labels_indices.csv`` (``vocabulary``: (mid, name) pairs) and
    the clips named by ``file_pattern``; labels are written as mids."""
    root.mkdir(parents=True, exist_ok=True)
    write_class_labels(root / "class_labels_indices.csv",
                       [ClassLabel(index=i, mid=m, display_name=n) for i, (m, n) in enumerate(vocabulary)])
    mid_of = {n: m for m, n in vocabulary}
    clips, missing = _awkward(clips, awkward)
    lines = ["# Segments csv created Sun Mar  5 10:54:31 2017",
             f"# num_ytids={len(clips)}, num_segs={len(clips)}, num_unique_labels={len(vocabulary)}, "
             "num_positive_labels=0", "# YTID, start_seconds, end_seconds, positive_labels"]
    tree = Tree(root=root, metadata=root / f"{split}_segments.csv", n_listed=len(clips))
    for i, (clip, labels) in enumerate(clips):
        ytid, start = f"--{i:03d}gqARaE"[:11], 30.0 + i
        mids = [mid_of[n] for n in labels] + ([UNKNOWN_MID] if awkward and i == 1 else [])
        lines.append(f'{ytid}, {start:.3f}, {start + 10:.3f}, "{",".join(mids)}"')
        name = file_pattern.format(YTID=ytid, start_seconds=start, end_seconds=start + 10)
        if i == missing:
            tree.missing.append(name)
        else:
            _write_audio(root / name, clip)
        tree.short = name if awkward and i == 0 else tree.short
    tree.metadata.write_text((BOM if awkward else "") + "\n".join(lines) + "\n", encoding="utf-8")
    tree.unknown_label = UNKNOWN_MID if awkward else None
    return tree


def make_fsd50k(root: Path, clips: list[Clip], *, vocabulary: list[tuple[str, str]], split: str = "eval",
                awkward: bool = True) -> Tree:
    """``FSD50K.ground_truth/{split}.csv`` and ``vocabulary.csv`` (no header; ``vocabulary``: (mid, name)),
    audio in ``FSD50K.{split}_audio/<fname>.wav``; dev rows alternate between split train and val."""
    truth = root / "FSD50K.ground_truth"
    truth.mkdir(parents=True, exist_ok=True)
    (truth / "vocabulary.csv").write_text(csv_text([[i, n, m] for i, (m, n) in enumerate(vocabulary)]))
    mid_of = {n: m for m, n in vocabulary}
    clips, missing = _awkward(clips, awkward)
    header = ["fname", "labels", "mids"] + (["split"] if split == "dev" else [])
    rows: list[list[object]] = [header]
    tree = Tree(root=root, metadata=truth / f"{split}.csv", n_listed=len(clips))
    for i, (clip, labels) in enumerate(clips):
        fname = 37199 + 7 * i
        names, mids = list(labels), [mid_of[n] for n in labels]
        if awkward and i == 1:
            names, mids = names + [UNKNOWN_NAME], mids + [UNKNOWN_MID]
        rows.append([fname, ",".join(names), ",".join(mids)] + (["train" if i % 2 else "val"] if split == "dev" else []))
        if i == missing:
            tree.missing.append(f"{fname}.wav")
        else:
            _write_audio(root / f"FSD50K.{split}_audio" / f"{fname}.wav", clip)
        tree.short = f"{fname}.wav" if awkward and i == 0 else tree.short
    tree.metadata.write_text(csv_text(rows, bom=awkward), encoding="utf-8")
    tree.unknown_label = UNKNOWN_MID if awkward else None
    return tree


def make_urbansound8k(root: Path, clips: list[Clip], *, classes: list[str], awkward: bool = True) -> Tree:
    """``metadata/UrbanSound8K.csv`` and ``audio/fold<k>/``; clip i in fold 1 + i % 3, salience 1 + i % 2;
    ``classes`` are the class names by classID."""
    clips, missing = _awkward(clips, awkward)
    rows: list[list[object]] = [["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"]]
    tree = Tree(root=root, metadata=root / "metadata" / "UrbanSound8K.csv", n_listed=len(clips))
    for i, (clip, labels) in enumerate(clips):
        (label,) = labels
        cid, fold, fsid = classes.index(label), 1 + i % 3, 100032 + i
        name = f"{fsid}-{cid}-0-{i}.wav"
        rows.append([name, fsid, "0.0", f"{len(clip) / RATE:.6f}", 1 + i % 2, fold, cid, label])
        if i == missing:
            tree.missing.append(f"fold{fold}/{name}")
        else:
            _write_audio(root / "audio" / f"fold{fold}" / name, clip)
        tree.short = f"fold{fold}/{name}" if awkward and i == 0 else tree.short
    tree.metadata.parent.mkdir(parents=True, exist_ok=True)
    tree.metadata.write_text(csv_text(rows, bom=awkward), encoding="utf-8")
    return tree


def make_esc50(root: Path, clips: list[Clip], *, classes: list[str], awkward: bool = True) -> Tree:
    """``meta/esc50.csv`` and ``audio/``; clip i in fold 1 + i % 5, in ESC-10 when its target is even;
    ``classes`` are the category names by target."""
    clips, missing = _awkward(clips, awkward)
    rows: list[list[object]] = [["filename", "fold", "target", "category", "esc10", "src_file", "take"]]
    tree = Tree(root=root, metadata=root / "meta" / "esc50.csv", n_listed=len(clips))
    for i, (clip, labels) in enumerate(clips):
        (label,) = labels
        target, fold, src, take = classes.index(label), 1 + i % 5, 100032 + i, "ABC"[i % 3]
        name = f"{fold}-{src}-{take}-{target}.wav"
        rows.append([name, fold, target, label, "True" if target % 2 == 0 else "False", src, take])
        if i == missing:
            tree.missing.append(name)
        else:
            _write_audio(root / "audio" / name, clip)
        tree.short = name if awkward and i == 0 else tree.short
    tree.metadata.parent.mkdir(parents=True, exist_ok=True)
    tree.metadata.write_text(csv_text(rows, bom=awkward), encoding="utf-8")
    return tree
