"""One FactSheet run: config -> dataset -> ART estimator -> evaluations -> FactSheet -> files.

Each stage is a function; this module only wires them in order and times them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import platform
import subprocess
import sys
import time
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np

from factsheet import __version__
from factsheet.config import DatasetConfig, RunConfig
from factsheet.datasets.base import AudioDataset, fit_clips
from factsheet.document import SCHEMA_VERSION, FactSheet, Provenance
from factsheet.errors import InputError
from factsheet.models.adapter import LoadedModel, load_model, make_estimator, predict_scores
from factsheet import sections as registry
from factsheet.sections import RunContext

LIBRARIES = ("numpy", "scipy", "pandas", "tensorflow-cpu", "tensorflow", "keras", "adversarial-robustness-toolbox",
             "jinja2", "scikit-learn", "jsonschema", "matplotlib", "onnxruntime", "ai-edge-litert", "soundfile")


def load_dataset(d: DatasetConfig, *, sample_rate: int) -> AudioDataset:
    """The dataset a ``[dataset]`` table describes (the evaluation dataset, or a Domain Shift target),
    in its own vocabulary.

    Parameters
    ----------
    d : DatasetConfig
        Which dataset: its kind, files or generator settings.
    sample_rate : int
        Hz every clip is brought to (the model's rate).

    Returns
    -------
    AudioDataset
    """
    rate = sample_rate
    if d.kind == "synthetic":
        from factsheet.datasets.synthetic import make_synthetic

        return make_synthetic(split=d.split, n_clips=d.n_clips, seed=d.seed, sample_rate=rate,
                              min_seconds=d.min_seconds, max_seconds=d.max_seconds)
    skip = {"on_unreadable": d.on_unreadable, "max_skipped_fraction": d.max_skipped_fraction}
    if d.kind == "folder":
        from factsheet.datasets.folder import load_folder

        return load_folder(wav_dir=d.wav_dir, csv_path=d.csv, class_labels_path=d.class_labels, sample_rate=rate,
                           file_column=d.file_column, labels_column=d.labels_column,
                           label_separator=d.label_separator, **skip)
    from factsheet.datasets import corpora

    if d.kind == "audioset":
        return corpora.load_audioset(root=d.root, split=d.split, segments=d.csv, class_labels=d.class_labels,
                                     wav_dir=d.wav_dir, file_pattern=d.file_pattern, sample_rate=rate, **skip)
    if d.kind == "fsd50k":
        return corpora.load_fsd50k(root=d.root, split=d.split, sample_rate=rate, **skip)
    loader = {"urbansound8k": corpora.load_urbansound8k, "esc50": corpora.load_esc50}[d.kind]
    return loader(root=d.root, folds=d.folds, sample_rate=rate, **skip)


def align_to_model(dataset: AudioDataset, model: LoadedModel, d: DatasetConfig, *, source: str) -> AudioDataset:
    """The dataset over the model's classes: checked equal (synthetic; folder without ``label_mapping``)
    or mapped (:func:`factsheet.datasets.mapping.map_to_model`: the corpora, or ``label_mapping`` given).

    Parameters
    ----------
    dataset : AudioDataset
        As :func:`load_dataset` returned it, in its own vocabulary.
    model : LoadedModel
    d : DatasetConfig
        The table ``dataset`` was loaded from (its kind and ``label_mapping``).
    source : str
        What an error names when the classes do not match (the config file).
    """
    if d.kind == "synthetic" or (d.kind == "folder" and d.label_mapping is None):
        check_labels_match(dataset, model, source=str(d.class_labels or source))
        return dataset
    from factsheet.datasets.mapping import map_to_model

    return map_to_model(dataset, model_classes=model.class_labels, label_mapping=d.label_mapping, source=source)


def check_labels_match(dataset: AudioDataset, model: LoadedModel, *, source: str) -> None:
    """The dataset's classes must be the model's output columns, in the same order."""
    want = [c.display_name for c in model.class_labels]
    have = [c.display_name for c in dataset.class_labels]
    if want != have:
        first = next((i for i, (a, b) in enumerate(zip(want, have)) if a != b), min(len(want), len(have)))
        shown = have[first] if first < len(have) else None
        raise InputError(source=source, field=f"class {first}", value=shown,
                         reason=f"dataset classes differ from the model's ({len(have)} vs {len(want)} classes; "
                                f"model expects {want[first] if first < len(want) else None!r} here)")


def run(cfg: RunConfig, *, out_dir: Path | None = None, workers: int | None = None,
        progress: bool = False) -> tuple[FactSheet, dict]:
    """Compute a FactSheet: load, predict, then evaluate every registered section in turn.

    ``out_dir`` holds the attack run store (resume); ``workers`` overrides
    ``robustness.workers`` (0 or None there: one per core).

    Returns
    -------
    factsheet : FactSheet
    artefacts : dict
        ``{"scores": (n_clips, n_model_classes) float32, "labels": (n_clips, n_classes) uint8,
        "dataset": AudioDataset, "model": LoadedModel, "plots": {name: svg}, "audio": {path: wav bytes}}`` for the files; with a label
        mapping, the scored classes are the model columns ``dataset.model_columns``.
    """
    from factsheet.executors import ExecutorSettings, check_executor

    check_executor(ExecutorSettings(kind=cfg.execution.executor),
                   source=f"{cfg.path or 'config'}: execution.executor")  # before anything is loaded
    started = _now()
    ctx, timings = prepare(cfg, out_dir=out_dir, workers=workers, progress=progress)
    plots: dict[str, str] = {}
    audio: dict[str, bytes] = {}
    records: dict = {}
    for section in registry.evaluation_order():
        t = time.perf_counter()
        result = section.evaluate(ctx)
        ctx.results[section.field] = result.section
        plots.update(result.plots)
        audio.update(result.audio)
        records.update(result.provenance)
        timings.update(result.timings)
        if section.timed and getattr(result.section, "status", None) == "evaluated" and not result.timings:
            timings[section.field] = time.perf_counter() - t
    for section in registry.SECTIONS:  # fields that depend on sections evaluated later (Section.finish)
        if section.finish is not None:
            ctx.results[section.field] = section.finish(ctx)
    timings = {k: round(v, 3) for k, v in timings.items()}
    provenance = _provenance(cfg, ctx.model, ctx.dataset, started=started, timings=timings)
    provenance.run_store = records.get("run_store")
    if ctx.model.stats is not None:
        provenance.model_requests = _model_requests(ctx.model.stats(), provenance.run_store,
                                                    stages={k.removesuffix("_requests"): v for k, v in records.items()
                                                            if k.endswith("_requests")})
    ctx.results["provenance"] = provenance
    sheet = FactSheet(schema_version=SCHEMA_VERSION, title=f"FactSheet: {cfg.factsheet.model_name}",
                      sections={s.field: ctx.results[s.field] for s in registry.SECTIONS if s.field in ctx.results})
    return sheet, {"scores": ctx.model_scores, "labels": ctx.dataset.labels, "dataset": ctx.dataset, "model": ctx.model,
                   "plots": plots, "audio": audio}


def prepare(cfg: RunConfig, *, out_dir: Path | None = None, workers: int | None = None,
            progress: bool = False) -> tuple[RunContext, dict[str, float]]:
    """Load the model and the dataset, fit the clips to the model's input and score them.

    Returns the context every section evaluator reads, and the seconds each stage took.
    """
    from factsheet.executors import ExecutorSettings, default_workers

    timings: dict[str, float] = {}
    t = time.perf_counter()
    model = load_model(cfg.model, threads=cfg.model.threads or None)
    for section in registry.SECTIONS:  # settings that depend on the model, refused before any prediction
        if section.check is not None:
            section.check(cfg, model)
    timings["load_model"] = time.perf_counter() - t

    t = time.perf_counter()
    dataset = align_to_model(load_dataset(cfg.dataset, sample_rate=cfg.model.sample_rate), model, cfg.dataset,
                             source=str(cfg.path or "config"))
    for section in registry.SECTIONS:  # settings that depend on the data, refused before any prediction
        if section.check_data is not None:
            section.check_data(cfg, dataset)
    waveforms, length_counts = fit_clips(dataset.clips, n_samples=model.clip_samples)
    timings["load_dataset"] = time.perf_counter() - t

    t = time.perf_counter()
    estimator = make_estimator(model, wrapper=cfg.model.wrapper)
    scores = predict_scores(estimator, waveforms, batch_size=cfg.model.batch_size, progress=progress)
    if not np.all(np.isfinite(scores)):
        raise InputError(source=str(model.path), field="output", value="non-finite",
                         reason=f"model returned NaN or inf for {int((~np.isfinite(scores)).any(axis=1).sum())} clips")
    timings["predict"] = time.perf_counter() - t
    # the sections score the dataset's classes; what works on the model's own decision reads model_scores
    mapped = scores if dataset.model_columns is None else scores[:, dataset.model_columns]
    workers = workers if workers else (cfg.robustness.workers or default_workers())
    executor = ExecutorSettings(kind=cfg.execution.executor, workers=workers, ray_address=cfg.execution.ray_address,
                                max_retries=cfg.execution.max_retries)
    ctx = RunContext(cfg=cfg, model=model, dataset=dataset, waveforms=waveforms, scores=mapped,
                     model_scores=scores, estimator=estimator,
                     length_counts=length_counts, out_dir=Path(out_dir or "."),
                     workers=workers, progress=progress, executor=executor)
    return ctx, timings


def _model_requests(driver: dict, run_store: dict | None, *, stages: dict | None = None) -> dict:
    """Request counters of a remote model: this process's (prediction) plus the attack's tasks, plus those of the
    stages whose tasks ran on an executor's workers (``stages``: ``{"domain_shift": ..., "explanation": ...}``,
    each only when it did)."""
    from attacks.runner import counter_sum

    attack = (run_store or {}).pop("model_requests", None)
    total = counter_sum(driver, attack or {})
    for counters in (stages or {}).values():
        total = counter_sum(total, counters)
    return {"total": total, "predict": driver, "attack": attack, **(stages or {})}


def _provenance(cfg: RunConfig, model: LoadedModel, dataset: AudioDataset, *, started: str,
                timings: dict) -> Provenance:
    config_sha = None
    if cfg.path is not None and Path(cfg.path).is_file():
        config_sha = hashlib.sha256(Path(cfg.path).read_bytes()).hexdigest()
    commit, dirty = _git_state()
    seeds = {"metrics.seed": cfg.metrics.seed}
    if cfg.robustness.enabled:
        seeds["robustness.seed"] = cfg.robustness.seed
    if cfg.dataset.kind == "synthetic":
        seeds["dataset.seed"] = cfg.dataset.seed
    if model.source == "default":
        seeds["model.training_seed"] = model.card.get("training_config", {}).get("seed")
    return Provenance(
        tool="audio-factsheet", tool_version=__version__, schema_version=SCHEMA_VERSION, git_commit=commit,
        git_dirty=dirty, config_path=str(cfg.path) if cfg.path else None, config_sha256=config_sha,
        config=cfg.to_dict(), seeds=seeds, model_sha256=model.sha256, dataset_sha256=dataset.sha256(),
        libraries=_library_versions(), platform=f"{platform.python_implementation()} {sys.version.split()[0]} "
                                               f"on {platform.system()} {platform.machine()}",
        started_at=started, finished_at=_now(), timings_s=timings,
    )


def _library_versions() -> dict:
    """Installed versions of :data:`LIBRARIES`, plus the libsndfile that decodes the audio files."""
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    try:
        import soundfile

        out["libsndfile"] = str(soundfile.__libsndfile_version__)
    except (ImportError, OSError):
        pass
    return out


def _git_state() -> tuple[str | None, bool | None]:
    """Commit and dirtiness of the checkout this code runs from (None outside a git checkout)."""
    here = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
        return commit, bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
