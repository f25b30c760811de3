"""``factsheet init --model PATH --wavs DIR``: a starting config for a model and a folder of audio files.

The source is recognised from the path (a ``.keras`` / ``.h5`` / ``.onnx`` / ``.tflite`` file, a
SavedModel folder, a MAX asset folder, an ``http(s)://`` URL); input and output shapes are read
from the model where it states them; the audio folder is listed into a clips CSV (labels from
sub-folder names where the files are sorted into class folders). Every key the user must still
fill or check is named in a comment, and a key that cannot be guessed is left commented out, so
that ``factsheet run`` names it in one line until it is filled.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import soundfile

from factsheet.errors import InputError
from factsheet.models.sources import SOURCES

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


@dataclass
class ModelFacts:
    """What could be read from the model without its class list."""

    source: str
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    fixed_samples: int | None = None
    n_classes: int | None = None
    per_frame: bool = False
    notes: list[str] = field(default_factory=list)


def detect_source(model: str) -> str:
    """The ``[model] source`` for a path or URL, or one :class:`InputError` line."""
    if model.startswith(("http://", "https://")):
        return "http"
    path = Path(model)
    if path.is_dir():
        if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
            return "savedmodel"
        if (path / "classifier_model.h5").is_file() and (path / "vggish_model.ckpt").is_file():
            return "max"
        raise InputError(source=model, field="--model", reason="a folder that is neither a SavedModel (saved_model.pb) "
                                                              "nor MAX assets (vggish_model.ckpt, classifier_model.h5)")
    if not path.is_file():
        raise InputError(source=model, field="--model", reason="no such file or folder")
    for name, src in SOURCES.items():
        if path.suffix.lower() in src.suffixes:
            return name
    known = sorted({s for src in SOURCES.values() for s in src.suffixes})
    raise InputError(source=model, field="--model", value=path.suffix,
                     reason=f"unknown model format (known: {', '.join(known)}, a SavedModel or MAX asset folder, an "
                            "http(s):// URL; for anything else write a Python entry: see the README)")


def inspect_model(model: str, source: str) -> ModelFacts:
    """Shapes the model declares (nothing is run)."""
    facts = ModelFacts(source=source)
    if source in ("http", "max"):
        return facts
    module = {"keras": "keras_file", "onnx": "onnx_file", "tflite": "tflite_file", "savedmodel": "savedmodel"}[source]
    import importlib

    described = importlib.import_module(f"factsheet.models.sources.{module}").describe(Path(model))
    facts.inputs, facts.outputs = described["inputs"], described["outputs"]

    def dim(d):
        return None if d is None or isinstance(d, str) or d < 0 else int(d)

    if len(facts.inputs) == 1:
        shape = [dim(d) for d in facts.inputs[0][1]]
        rank = len(shape)
        samples_axis = {1: 0, 2: 1}.get(rank, 2 if rank == 3 and shape[1] == 1 else 1 if rank == 3 else None)
        facts.fixed_samples = shape[samples_axis] if samples_axis is not None else None
        one_clip = rank == 1
    else:
        facts.notes.append(f"the model has {len(facts.inputs)} inputs: the harness takes one waveform input; "
                           "use source = 'python' with a forward function that supplies the others")
        one_clip = False
    if facts.outputs:
        last = [dim(o[1][-1]) if o[1] else None for o in facts.outputs]
        facts.n_classes = last[0] if len(facts.outputs) == 1 else None
        ranks = [len(o[1]) for o in facts.outputs]
        facts.per_frame = (ranks[0] == 3) or (one_clip and ranks[0] == 2)
        if len(facts.outputs) > 1:
            facts.notes.append("several outputs: " + ", ".join(f"{o[0]} {o[1]}" for o in facts.outputs)
                               + "; set output_name to the one holding the class scores")
    return facts


def scan_audio(folder: Path) -> tuple[list[tuple[str, str]], Counter]:
    """``[(file relative to folder, label guess)]`` and a count of sample rates (first 200 readable files)."""
    if not folder.is_dir():
        raise InputError(source=str(folder), field="--wavs", reason="folder not found")
    rows, rates = [], Counter()
    for f in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES):
        rel = f.relative_to(folder).as_posix()
        label = f.parent.name if f.parent != folder else ""
        rows.append((rel, label))
        if sum(rates.values()) < 200:
            try:
                rates[int(soundfile.info(str(f)).samplerate)] += 1
            except (RuntimeError, TypeError, ValueError, OSError):
                pass  # broken files: the run itself reports them
    if not rows:
        raise InputError(source=str(folder), field="--wavs", reason=f"no audio files ({', '.join(AUDIO_SUFFIXES)})")
    return rows, rates


def starting_config(*, model: str, wavs: Path, config_path: Path, clips_csv: Path) -> tuple[str, str, list[str]]:
    """``(config TOML text, clips CSV text, lines to print)`` for ``factsheet init``."""
    source = detect_source(model)
    facts = inspect_model(model, source)
    rows, rates = scan_audio(wavs)
    rate = rates.most_common(1)[0][0] if rates else (16000 if source == "max" else None)
    base = config_path.parent.resolve()

    def rel(p: Path | str) -> str:  # relative to the config (as its paths are read) when near it, else absolute
        target = Path(p).resolve()
        near = Path(os.path.relpath(target, base)).as_posix()
        return str(target) if near.startswith("../..") else near

    lines = ["# Starting config written by `factsheet init`. Keys marked FILL must be set, CHECK should be",
             "# checked; then: factsheet run --config " + config_path.name + " --out reports/out/mine", "",
             "[factsheet]", 'model_name = "My audio classifier"   # CHECK: shown as the FactSheet\'s title', "",
             "[model]", f'source = "{source}"']
    if source == "http":
        lines.append(f'url = "{model}"')
    elif source == "max":
        lines.append(f'assets = "{rel(model)}"')
    else:
        lines.append(f'path = "{rel(model)}"')
    if source == "max":
        lines.append('# class_labels = "class_labels_indices.csv"   # FILL unless the asset folder has '
                     "AudioSet's file")
    else:
        shown = f" ({facts.n_classes} classes, one per output column)" if facts.n_classes else ""
        lines.append(f'# class_labels = "class_labels.csv"   # FILL: AudioSet-style index,mid,display_name CSV or '
                     f'one name per line{shown}')
    if rate:
        how = "the most common rate of the audio files" if rates else "the MAX model's rate"
        lines.append(f"sample_rate = {rate}   # CHECK: the rate the MODEL expects ({how}; other rates are resampled)")
    else:
        lines.append("# sample_rate = 16000   # FILL: the rate the model expects")
    if facts.fixed_samples and rate:
        lines.append(f"clip_seconds = {facts.fixed_samples / rate:g}   # from the model's fixed input of "
                     f"{facts.fixed_samples} samples at {rate} Hz")
    elif facts.fixed_samples:
        lines.append(f"# clip_seconds = ...   # FILL: the model's input is fixed to {facts.fixed_samples} samples")
    elif source == "max":
        lines.append("clip_seconds = 10.0   # the MAX model's 10 examples of 0.96 s")
    else:
        lines.append("# clip_seconds = 10.0   # FILL: the model accepts any length; clips are repeated or cut to it")
    if source != "http":
        lines.append('output = "probabilities"   # CHECK: "probabilities", "logits-sigmoid" (multi-label logits) or '
                     '"logits-softmax" (single-label logits)')
    if facts.per_frame:
        lines.append('pooling = "mean"   # the model returns per-frame scores: "mean" or "max" over frames')
    if len(facts.outputs) > 1:
        lines.append("# output_name = \"...\"   # CHECK: " + facts.notes[-1])
    if source == "http":
        lines += ["timeout_seconds = 30.0", "max_retries = 4", "concurrency = 4   # requests in flight at most",
                  "# max_requests = 100000   # a budget for the whole run"]
    for note in facts.notes:
        if "inputs" in note:
            lines.append(f"# NOTE: {note}")
    lines += ["", "[dataset]", 'kind = "folder"', f'wav_dir = "{rel(wavs)}"', f'csv = "{rel(clips_csv)}"',
              '# class_labels = "class_labels.csv"   # FILL: the same classes as the model, in the same order',
              'labels_column = "labels"', 'label_separator = ";"', "",
              "[robustness]", "enabled = true", "n_clips = 32   # attacked clips per norm", "workers = 0", "",
              "[bias]", "enabled = true", ""]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", "labels"])
    w.writerows(rows)
    labelled = sum(1 for _, label in rows if label)
    said = [f"model: {model} -> source = {source!r}"]
    if facts.inputs:
        said.append("inputs: " + json.dumps(facts.inputs) + "; outputs: " + json.dumps(facts.outputs))
    said.append(f"audio: {len(rows)} files in {wavs}" + (f", {labelled} labelled from their folder names"
                                                         if labelled else "; fill the labels column"))
    return "\n".join(lines), buf.getvalue(), said
