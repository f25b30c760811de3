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
from factsheet.config import RunConfig
from factsheet.datasets.base import AudioDataset, fit_length
from factsheet.document import (SCHEMA_VERSION, DatasetSection, FactSheet, ModelSection, Provenance,
                                TextSection, TrainingDataSection, not_evaluated)
from factsheet.errors import InputError
from factsheet.models.adapter import LoadedModel, load_model, make_estimator, predict_scores
from factsheet.performance import evaluate_performance

LIBRARIES = ("numpy", "scipy", "pandas", "tensorflow-cpu", "tensorflow", "keras", "adversarial-robustness-toolbox",
             "jinja2", "scikit-learn", "jsonschema", "matplotlib", "onnxruntime", "ai-edge-litert")


def load_dataset(cfg: RunConfig) -> AudioDataset:
    """The evaluation dataset the config names, at the model's sample rate, in its own vocabulary."""
    d = cfg.dataset
    rate = cfg.model.sample_rate
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


def align_to_model(dataset: AudioDataset, model: LoadedModel, cfg: RunConfig) -> AudioDataset:
    """The dataset over the model's classes: checked equal (synthetic; folder without ``label_mapping``)
    or mapped (:func:`factsheet.datasets.mapping.map_to_model`: the corpora, or ``label_mapping`` given)."""
    d = cfg.dataset
    if d.kind == "synthetic" or (d.kind == "folder" and d.label_mapping is None):
        check_labels_match(dataset, model, source=str(d.class_labels or cfg.path or "dataset"))
        return dataset
    from factsheet.datasets.mapping import map_to_model

    return map_to_model(dataset, model_classes=model.class_labels, label_mapping=d.label_mapping,
                        source=str(cfg.path or "config"))


def model_view(dataset: AudioDataset, model: LoadedModel) -> AudioDataset:
    """The dataset over ALL the model's outputs (unmapped classes all zero), for what works on the model's own
    decision (the attack); the dataset itself when it already is."""
    if dataset.model_columns is None:
        return dataset
    import dataclasses

    labels = np.zeros((dataset.n_clips, len(model.class_labels)), dtype=np.uint8)
    labels[:, dataset.model_columns] = dataset.labels
    return dataclasses.replace(dataset, labels=labels, class_labels=list(model.class_labels), model_columns=None)


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
    """Compute a FactSheet.

    ``out_dir`` holds the attack run store (resume); ``workers`` overrides
    ``robustness.workers`` (0 or None there: one per core).

    Returns
    -------
    factsheet : FactSheet
    artefacts : dict
        ``{"scores": (n_clips, n_model_classes) float32, "labels": (n_clips, n_classes) uint8,
        "dataset": AudioDataset, "model": LoadedModel, "plots": {name: svg}}`` for the files; with a label
        mapping, the scored classes are the model columns ``dataset.model_columns``.
    """
    started = _now()
    timings: dict[str, float] = {}
    t = time.perf_counter()
    model = load_model(cfg.model, threads=cfg.model.threads or None)
    timings["load_model"] = time.perf_counter() - t

    t = time.perf_counter()
    dataset = align_to_model(load_dataset(cfg), model, cfg)
    waveforms, length_counts = fit_length(dataset.clips, n_samples=model.clip_samples)
    timings["load_dataset"] = time.perf_counter() - t

    t = time.perf_counter()
    estimator, scores = _predict(cfg, model, waveforms, progress=progress)
    timings["predict"] = time.perf_counter() - t
    # performance and bias score the dataset's classes only; the attack works on the model's whole output
    mapped = scores if dataset.model_columns is None else scores[:, dataset.model_columns]

    t = time.perf_counter()
    performance = evaluate_performance(
        y_true=dataset.labels, y_score=mapped, class_labels=dataset.class_labels,
        n_bootstrap=cfg.metrics.bootstrap_resamples, confidence=cfg.metrics.confidence, seed=cfg.metrics.seed,
        coverage=coverage_text(dataset))
    timings["performance"] = time.perf_counter() - t

    prose = cfg.factsheet
    plots: dict[str, str] = {}
    run_store = None
    if cfg.robustness.enabled:
        robustness, plots, run_store = _robustness(cfg, model, waveforms, dataset, scores, out_dir=out_dir,
                                                   workers=workers, progress=progress)
        timings["robustness"] = run_store.pop("seconds")
    else:
        robustness = not_evaluated(prose.robustness, why="robustness.enabled is false in the config.")
    bias, optimal, poor = _bias(cfg, dataset, mapped, robustness, plots, timings)
    sheet = FactSheet(
        schema_version=SCHEMA_VERSION,
        title=f"FactSheet: {prose.model_name}",
        model=_model_section(cfg, model, estimator),
        training_data=TrainingDataSection(text=prose.training_data, card=model.card.get("training_data_card")),
        dataset=_dataset_section(cfg, dataset, model, length_counts, scores),
        performance=performance,
        bias=bias,
        robustness=robustness,
        domain_shift=not_evaluated(prose.domain_shift),
        optimal_conditions=optimal,
        poor_conditions=poor,
        explanation=_stated_or_not(prose.explanation),
        contact=prose.contact,
        provenance=None,  # filled below, once the end time is known
    )
    timings = {k: round(v, 3) for k, v in timings.items()}
    sheet.provenance = _provenance(cfg, model, dataset, started=started, timings=timings)
    sheet.provenance.run_store = run_store
    if model.stats is not None:
        sheet.provenance.model_requests = _model_requests(model.stats(), run_store)
    return sheet, {"scores": scores, "labels": dataset.labels, "dataset": dataset, "model": model, "plots": plots}


def _predict(cfg: RunConfig, model: LoadedModel, waveforms: np.ndarray, *, progress: bool):
    """The ART estimator and its scores (n_clips, n_model_classes); non-finite scores are one line."""
    estimator = make_estimator(model, wrapper=cfg.model.wrapper)
    scores = predict_scores(estimator, waveforms, batch_size=cfg.model.batch_size, progress=progress)
    if not np.all(np.isfinite(scores)):
        raise InputError(source=str(model.path), field="output", value="non-finite",
                         reason=f"model returned NaN or inf for {int((~np.isfinite(scores)).any(axis=1).sum())} clips")
    return estimator, scores


def _bias(cfg: RunConfig, dataset: AudioDataset, scores: np.ndarray, robustness, plots: dict, timings: dict):
    """Bias section and measured conditions, or "not evaluated" sections when [bias] is disabled."""
    import dataclasses

    from factsheet.bias import evaluate_bias
    from factsheet.document import BiasSection, ConditionsSection

    prose = cfg.factsheet
    if not cfg.bias.enabled:
        return (not_evaluated(prose.bias, why="bias.enabled is false in the config."),
                _stated_or_not(prose.optimal_conditions), _stated_or_not(prose.poor_conditions))
    t = time.perf_counter()
    rob = dataclasses.asdict(robustness) if robustness.status == "evaluated" else None
    section, conditions, bias_plots = evaluate_bias(
        y_true=dataset.labels, y_score=scores, class_labels=dataset.class_labels, metadata=dataset.metadata,
        settings=cfg.bias, bootstrap=cfg.metrics, prose=prose.bias, robustness=rob)
    plots.update(bias_plots)
    timings["bias"] = time.perf_counter() - t
    optimal = ConditionsSection(status="evaluated", text=prose.optimal_conditions,
                                statements=conditions["optimal"], slices=conditions["slices"])
    poor = ConditionsSection(status="evaluated", text=prose.poor_conditions,
                             statements=conditions["poor"] or ["No measured slice was worse than the best slice of "
                                                               "its column with confidence."],
                             slices=conditions["slices"])
    return BiasSection(**section), optimal, poor


def _robustness(cfg: RunConfig, model: LoadedModel, waveforms: np.ndarray, dataset: AudioDataset,
                scores: np.ndarray, *, out_dir: Path | None, workers: int | None, progress: bool):
    from attacks.robustness import evaluate_robustness
    from attacks.runner import default_workers
    from factsheet.document import RobustnessSection

    n_workers = workers if workers else (cfg.robustness.workers or default_workers())
    section, plots, run_info = evaluate_robustness(
        model=model, waveforms=waveforms, dataset=model_view(dataset, model), scores=scores,
        settings=cfg.robustness, bootstrap=cfg.metrics, out_dir=Path(out_dir or "."), workers=n_workers,
        dataset_sha256=dataset.sha256(), progress=progress)
    return RobustnessSection(**section), plots, run_info



def _stated_or_not(text: str) -> TextSection:
    if text.strip():
        return TextSection(status="stated", text=text, reason="stated in the config; not measured in this run")
    return not_evaluated("")


def _model_section(cfg: RunConfig, model: LoadedModel, estimator) -> ModelSection:
    p = cfg.factsheet
    return ModelSection(
        name=p.model_name, overview=p.overview, purpose=p.purpose, intended_domain=p.intended_domain,
        information=p.model_information, inputs_outputs=p.inputs_outputs, source=model.source,
        file=model.path.name if model.path is not None else (cfg.model.url or cfg.model.entry or ""),
        sha256=model.sha256, sample_rate=model.sample_rate, clip_samples=model.clip_samples,
        clip_seconds=model.clip_samples / model.sample_rate, n_classes=len(model.class_labels),
        n_parameters=model.runtime.get("n_parameters"),
        estimator={"art_class": type(estimator).__name__, "input_shape": list(estimator.input_shape),
                   "nb_classes": int(estimator.nb_classes), "clip_values": [float(v) for v in estimator.clip_values],
                   "preprocessing": None, "batch_size": cfg.model.batch_size},
        runtime=model.runtime,
    )


def _model_requests(driver: dict, run_store: dict | None) -> dict:
    """Request counters of a remote model: this process's (prediction) plus the attack's tasks."""
    from attacks.runner import counter_sum

    attack = (run_store or {}).pop("model_requests", None)
    return {"total": counter_sum(driver, attack or {}), "predict": driver, "attack": attack}


def _dataset_section(cfg: RunConfig, dataset: AudioDataset, model: LoadedModel, counts: dict,
                     scores: np.ndarray) -> DatasetSection:
    from factsheet.metrics import is_single_label

    n = model.clip_samples
    policy = dict(counts, n_samples=n,
                  text=(f"Every clip is brought to the model's input length of {n} samples "
                        f"({n / model.sample_rate:g} s): shorter clips are repeated (tiled) and cut, longer clips "
                        f"are cut at the end. {counts['repeated']} clips were repeated, {counts['cut']} cut, "
                        f"{counts['unchanged']} unchanged."))
    return DatasetSection(
        name=dataset.name, kind=cfg.dataset.kind, text=cfg.factsheet.test_data, n_clips=dataset.n_clips,
        sha256=dataset.sha256(), sample_rate=dataset.sample_rate, length_policy=policy, card=dataset.card,
        class_labels=[{"index": c.index, "mid": c.mid, "display_name": c.display_name, "category": c.category}
                      for c in dataset.class_labels],
        single_label=bool(is_single_label(dataset.labels)),
        label_mapping=label_mapping_section(dataset, scores),
        unreadable=unreadable_section(cfg, dataset),
    )


def coverage_text(dataset: AudioDataset) -> str | None:
    """The sentence the performance section adds when a label mapping chose the scored classes."""
    m = dataset.label_mapping
    if m is None:
        return None
    n, rest = dataset.n_classes, m.n_model_classes - dataset.n_classes
    return (f"The metrics cover the {n} mapped classes: the model classes that the dataset's labels map to "
            f"(label_mapping = {m.table or m.method}); "
            + (f"the model's other {rest} outputs are not scored (see Test Data)." if rest else
               "that is every output of the model (see Test Data)."))


def label_mapping_section(dataset: AudioDataset, scores: np.ndarray) -> dict | None:
    """The JSON ``dataset.label_mapping``: what was mapped, what was left out on each side, with clip counts."""
    m = dataset.label_mapping
    if m is None:
        return None
    top1 = np.bincount(np.argmax(scores, axis=1), minlength=m.n_model_classes)
    dataset_only = sum(1 for c in m.dataset_only if c["n_clips"])
    text = (f"{dataset.n_classes} of the model's {m.n_model_classes} classes are mapped from the dataset's "
            f"{m.n_dataset_classes} labels by {'the mapping table ' + repr(m.table) if m.table else m.method}"
            f"{' (the default)' if m.defaulted else ''}. {len(m.dataset_only)} dataset labels have no model class "
            f"({dataset_only} of them on some clip); {m.n_clips_all_labels_unmapped} clips whose labels all fall "
            f"outside the mapping are kept as pure negatives. {len(m.model_only)} model classes are not scored.")
    return {
        "method": m.method, "table": m.table, "defaulted": m.defaulted, "n_dataset_classes": m.n_dataset_classes,
        "n_model_classes": m.n_model_classes, "n_mapped_classes": dataset.n_classes,
        "model_columns": [int(j) for j in dataset.model_columns],
        "pairs": [{"dataset_label": d, "model_label": k} for d, k in m.pairs],
        "dataset_only": [dict(c) for c in m.dataset_only],
        "model_only": [{"label": c.display_name, "mid": c.mid, "index": c.index, "n_top1": int(top1[c.index])}
                       for c in m.model_only],
        "n_clips_all_labels_unmapped": m.n_clips_all_labels_unmapped,
        "text": text,
    }


def unreadable_section(cfg: RunConfig, dataset: AudioDataset) -> dict | None:
    """The JSON ``dataset.unreadable``: the policy and the files skipped (None for generated data)."""
    if dataset.n_listed is None:
        return None
    d = cfg.dataset
    return {"on_unreadable": d.on_unreadable, "max_skipped_fraction": d.max_skipped_fraction,
            "n_listed": int(dataset.n_listed), "n_skipped": len(dataset.skipped),
            "skipped": [{"file": f.file, "reason": f.reason} for f in dataset.skipped]}


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
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
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
