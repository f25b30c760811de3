"""The Robustness section: HopSkipJump L2 / L-infinity on selected clips, summarised per norm.

``evaluate_robustness`` is the one entry point the pipeline calls; it returns the section as a
JSON-able dict (``robustness.hopskipjump.l2`` / ``.linf`` ...) and the SVG plots.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attacks.groups import DEFINITIONS as GROUP_DEFINITIONS, GroupSettings, adjust_alone, summarise_groups
from attacks.runner import Strata, StrataError, correctly_classified, make_tasks, run_tasks, sampling_table, \
    select_clips, store_path
from attacks.store import RunStore, run_key_for
from factsheet.config import MetricsConfig, RobustnessConfig
from factsheet.executors import ExecutorSettings
from attacks.summary import DEFINITIONS, group_robustness, summarise_norm
from factsheet.render import figure_svg

NORM_TITLES = {"l2": "L2", "linf": "L-infinity"}


@dataclass(frozen=True)
class AttackInputs:
    """What is attacked: the model and the dataset's clips as the model sees them.

    Attributes
    ----------
    model : LoadedModel
        Worker processes reload it from ``model.spec``.
    dataset : AudioDataset
        Labels, class names and metadata (group columns) of the clips.
    waveforms : ndarray, shape (n_clips, n_samples)
        Clips at the model's input length, float32 in [-1, 1].
    scores : ndarray, shape (n_clips, n_classes)
        The model's scores on ``waveforms`` (clip selection and init candidates use them).
    dataset_sha256 : str
        ``dataset.sha256()``, part of the run key.
    """

    model: Any
    dataset: Any
    waveforms: np.ndarray
    scores: np.ndarray
    dataset_sha256: str


def evaluate_robustness(*, inputs: AttackInputs, settings: RobustnessConfig, bootstrap: MetricsConfig,
                        out_dir: Path, executor: ExecutorSettings, progress: bool = False,
                        group_columns: list[str] | None = None, correction: str = "holm") -> tuple[dict, dict, dict]:
    """Run (or resume) the attacks and build the section.

    Parameters
    ----------
    inputs : AttackInputs
        The model, the dataset, its clips and the model's scores.
    settings : factsheet.config.RobustnessConfig
        Validated ``[robustness]`` section (``enabled`` and ``workers`` are not read here: ``executor`` says
        where the tasks run).
    bootstrap : factsheet.config.MetricsConfig
        Resamples, confidence and seed of the percentile and group-median intervals.
    out_dir : Path
        Where the run store ``attack_runs.sqlite`` lives (resume).
    executor : factsheet.executors.ExecutorSettings
        Where the tasks run (local, a process pool, Ray) and on how many workers.
    progress : bool
        Show a progress bar on stderr.
    group_columns : list of str, optional
        Metadata columns for per-group robustness (default: every text column and ``n_events``).
    correction : {"holm", "bh"}
        ``[bias] correction`` of the groups' tests (``settings.stratify_by``): here alone, then again
        in the Bias section's family.

    Returns
    -------
    section : dict
        JSON-able Robustness section (identical whatever the executor, worker count or resumes); with
        ``settings.stratify_by``, ``groups``: :func:`group_block`; with tasks that failed on every attempt
        (their worker died), ``failed_tasks``: those clips are left out of every norm's statistics.
    plots : dict of str to str
        SVG text by plot name.
    run_info : dict
        Volatile facts for provenance: executor, workers, retries, results reused from the store, seconds.

    Raises
    ------
    attacks.runner.StrataError
        A ``stratify_by`` column is not in the metadata, or ``n_clips`` is too small for its groups.
    """
    t0 = time.perf_counter()
    strata = make_strata(inputs.dataset.metadata, settings=settings)
    rows = select_clips(labels=inputs.dataset.labels, scores=inputs.scores, n_clips=settings.n_clips,
                        seed=settings.seed, strata=strata)
    records, run_info, model_requests, failed = _attack_clips(inputs, rows=rows, settings=settings,
                                                              out_dir=Path(out_dir), executor=executor,
                                                              progress=progress)
    n_selected = len(rows)
    if failed:  # a clip with a failed task leaves every norm, so the norms describe the same clips
        lost = {f["clip_id"] for f in failed}
        keep = [i for i, r in enumerate(rows) if str(inputs.dataset.metadata["clip_id"].iloc[r]) not in lost]
        rows = rows[keep]
        records = {norm: [recs[i] for i in keep] for norm, recs in records.items()}
    meta = inputs.dataset.metadata.iloc[rows].reset_index(drop=True)
    columns = group_columns if group_columns is not None else default_group_columns(meta)
    per_norm = {norm: _norm_block(records[norm], norm=norm, meta=meta, settings=settings, bootstrap=bootstrap,
                                  group_columns=columns) for norm in settings.norms}
    section = _section(per_norm, settings=settings, bootstrap=bootstrap, n_selected=n_selected)
    if failed:
        section["failed_tasks"] = failed
    if strata is not None:
        correct = correctly_classified(labels=inputs.dataset.labels, scores=inputs.scores)
        section["groups"] = group_block(records, strata=strata, rows=rows, correct=correct, settings=settings,
                                        bootstrap=bootstrap, correction=correction)
    plots = {"robustness_curves": curves_svg(section), "robustness_fooled_vs_snr": fooled_vs_snr_svg(section)}
    run_info["seconds"] = round(time.perf_counter() - t0, 3)
    if model_requests:
        run_info["model_requests"] = model_requests
    return section, plots, run_info


def make_strata(metadata, *, settings: RobustnessConfig) -> Strata | None:
    """The groups of ``settings.stratify_by`` over every clip of the dataset; None when it is empty.

    Raises
    ------
    attacks.runner.StrataError
        A column is not in ``metadata``.
    """
    if not settings.stratify_by:
        return None
    for column in settings.stratify_by:
        if column not in metadata.columns:
            known = ", ".join(map(str, metadata.columns))
            raise StrataError(field="robustness.stratify_by", value=column,
                              reason=f"not a metadata column of the dataset (columns: {known})")
    return Strata(columns={c: metadata[c].astype(str).to_numpy() for c in settings.stratify_by},
                  min_per_group=settings.min_per_group, exclude_values=tuple(settings.exclude_values))


def group_block(records: dict[str, list[dict]], *, strata: Strata, rows: np.ndarray, correct: np.ndarray,
                settings: RobustnessConfig, bootstrap: MetricsConfig, correction: str) -> dict:
    """``robustness.groups``: how the sample covers each group, the groups' stats and disparities.

    Parameters
    ----------
    records : dict of str to list of dict
        Norm -> the attacked clips' records, in the order of ``rows``.
    strata : attacks.runner.Strata
    rows : ndarray of int, shape (n_attacked,)
        The attacked clips' rows.
    correct : ndarray of bool, shape (n_clips,)
        The eligible (correctly classified) clips.
    settings : factsheet.config.RobustnessConfig
    bootstrap : factsheet.config.MetricsConfig
    correction : {"holm", "bh"}
        Multiple-testing correction of the tests, here over these tests alone.
    """
    gs = GroupSettings(iterations=settings.iterations, percentiles=tuple(settings.percentiles),
                       min_per_group=settings.min_per_group, n_bootstrap=bootstrap.bootstrap_resamples,
                       confidence=bootstrap.confidence, seed=bootstrap.seed)
    names = {c: strata.groups(c) for c in strata.columns}
    stats, disparities, other_pairs = summarise_groups(
        records, values={c: v[rows] for c, v in strata.columns.items()}, groups=names, settings=gs)
    block = {"definitions": dict(GROUP_DEFINITIONS), "columns": list(strata.columns),
             "min_per_group": int(settings.min_per_group), "exclude_values": list(strata.exclude_values),
             "confidence": float(bootstrap.confidence), "n_bootstrap": int(bootstrap.bootstrap_resamples),
             "sampling": sampling_table(rows=rows, correct=correct, strata=strata), "rows": stats,
             "disparities": disparities, "other_pairs": other_pairs}
    return adjust_alone(block, correction=correction)


def run_key_material(inputs: AttackInputs, *, rows: np.ndarray, settings: RobustnessConfig) -> dict:
    """Everything a stored attack result depends on: its run key is ``run_key_for`` of this dict.

    Parameters
    ----------
    inputs : AttackInputs
    rows : ndarray of int, shape (n_selected,)
        The attacked clips' rows (:func:`attacks.runner.select_clips`).
    settings : factsheet.config.RobustnessConfig

    Returns
    -------
    dict
        The results settings, model and dataset hashes, how the model's output is adapted, the
        clip length in samples, the attacked clip ids and ART's version.
    """
    clip_ids = [str(c) for c in inputs.dataset.metadata["clip_id"]]
    return {"settings": settings.results_settings(), "model_sha256": inputs.model.sha256, **_model_key(inputs.model),
            "clip_samples": int(inputs.waveforms.shape[1]), "dataset_sha256": inputs.dataset_sha256,
            "clips": [clip_ids[r] for r in rows], "art": _art_version()}


def _attack_clips(inputs: AttackInputs, *, rows: np.ndarray, settings: RobustnessConfig, out_dir: Path,
                  executor: ExecutorSettings, progress: bool) -> tuple[dict[str, list[dict]], dict, dict, list[dict]]:
    """Attack the selected clips with every norm, resuming from the run store in ``out_dir``.

    Returns
    -------
    records : dict of str to list of dict
        Norm -> per-clip records (:mod:`attacks.summary`) in the order of ``rows``, with the
        class names (``label_name``, ``target_name``) and the clip's ``true_labels`` added; None
        for a task that failed.
    run_info : dict
        Provenance: store file, run key, executor, workers, retried and failed tasks, results reused /
        computed / ignored.
    model_requests : dict
        A remote model's request counters over the clips attacked now (empty for a local model).
    failed : list of dict
        ``{"clip_id", "norm", "attempts", "error"}`` of every task that failed every attempt, in task order.
    """
    dataset = inputs.dataset
    clip_ids = [str(c) for c in dataset.metadata["clip_id"]]
    tasks = make_tasks(rows=rows, clip_ids=clip_ids, scores=inputs.scores, settings=settings)
    key_material = run_key_material(inputs, rows=rows, settings=settings)
    key = run_key_for(key_material)
    out_dir.mkdir(parents=True, exist_ok=True)
    with RunStore.open(store_path(out_dir), run_key=key, settings=key_material) as store:
        ignored = sum(store.other_run_keys().values())
        before = sum(len(store.done(norm=n)) for n in settings.norms)
        results = run_tasks(tasks=tasks, model_spec=inputs.model.spec, waveforms=inputs.waveforms,
                            top1=np.argmax(inputs.scores, axis=1), settings=settings, store=store, executor=executor,
                            progress=progress)
    names = [c.display_name for c in dataset.class_labels]
    true_labels = [[names[j] for j in np.flatnonzero(dataset.labels[r])] for r in rows]
    records = {}
    for norm in settings.norms:
        records[norm] = []
        for i, r in enumerate(rows):
            if (norm, clip_ids[r]) in results.failed:
                records[norm].append(None)
                continue
            rec = dict(results.records[(norm, clip_ids[r])])
            rec.update(label_name=names[rec["label"]], true_labels=true_labels[i],
                       target_name=None if rec.get("target") is None else names[rec["target"]])
            records[norm].append(rec)
    failed = [{"clip_id": t.clip_id, "norm": t.norm, "attempts": results.failed[(t.norm, t.clip_id)].attempts,
               "error": results.failed[(t.norm, t.clip_id)].error} for t in tasks if (t.norm, t.clip_id) in results.failed]
    facts = results.executor
    run_info = {"store": store_path(out_dir).name, "run_key": key, "executor": executor.kind,
                "workers": int(facts.get("workers", executor.workers)),
                "reused_results": int(before), "computed_results": int(len(tasks) - before - len(failed)),
                "ignored_results_other_configs": int(ignored), "retried_tasks": int(facts.get("retried_tasks", 0)),
                "failed_tasks": len(failed)}
    run_info.update({k: facts[k] for k in ("ray_version", "ray_nodes", "max_concurrent_requests") if k in facts})
    return records, run_info, results.model_requests, failed


def _norm_block(records: list[dict], *, norm: str, meta, settings: RobustnessConfig, bootstrap: MetricsConfig,
                group_columns: list[str]) -> dict:
    """One norm's block of ``robustness.hopskipjump``: the summary, with per-group medians as ``by_group``.

    Parameters
    ----------
    records : list of dict
        The norm's per-clip records, in the order of the selected rows.
    norm : {"l2", "linf"}
    meta : DataFrame
        The selected clips' metadata, one row per record.
    settings : factsheet.config.RobustnessConfig
    bootstrap : factsheet.config.MetricsConfig
    group_columns : list of str
        Metadata columns grouped by, after the top-1 class.
    """
    intervals = {"n_bootstrap": bootstrap.bootstrap_resamples, "confidence": bootstrap.confidence,
                 "seed": bootstrap.seed}
    block = summarise_norm(records, norm=norm, iterations=settings.iterations, k=settings.k,
                           percentiles=list(settings.percentiles), **intervals)
    groups = {"class": [rec["label_name"] for rec in records]}
    groups.update({c: meta[c].tolist() for c in group_columns})
    block["by_group"] = group_robustness(records, groups=groups, norm=norm, iterations=settings.iterations,
                                         **intervals)
    return block


#: The interval method of each interval of the section (``interval_methods`` in the JSON): order
#: statistics for every percentile (bench/coverage.py: the percentile bootstrap under-covers low
#: percentiles of few clips), Clopper-Pearson for proportions, the percentile bootstrap for median ratios.
INTERVAL_METHODS = {"hopskipjump.*.percentiles": "order_statistic", "hopskipjump.*.by_group": "order_statistic",
                    "hopskipjump.*.success_rate_ci": "clopper_pearson", "groups.rows": "order_statistic",
                    "groups.rows.success_rate_ci": "clopper_pearson", "groups.disparities": "percentile"}


def _section(per_norm: dict, *, settings: RobustnessConfig, bootstrap: MetricsConfig, n_selected: int) -> dict:
    """The JSON-able Robustness section: definitions, settings with the selection rules, the norms' blocks."""
    selection = ("class-stratified random sample, reproducible from the seed, of the clips whose top-1 class is among "
                 "their true labels; the attacked (escaped) class is that top-1 class")
    if settings.stratify_by:
        excluded = f" (values {', '.join(settings.exclude_values)} form none)" if settings.exclude_values else ""
        selection = (f"first, every group of {', '.join(settings.stratify_by)}{excluded} gets at least min_per_group = "
                     f"{settings.min_per_group} clips drawn at random from its eligible clips (all of them when it has "
                     "fewer; robustness.groups.sampling); then the rest: " + selection)
    return {
        "status": "evaluated",
        "definitions": dict(DEFINITIONS),
        "interval_methods": dict(INTERVAL_METHODS),
        "settings": {**settings.results_settings(), "art_version": _art_version(),
                     "selection": selection,
                     "initialisation": ("a real clip whose top-1 class differs, chosen by a per-clip seed and "
                                        "blended towards the clean clip by binary search (x_adv_init); ART's own "
                                        "random search only when no such clip exists"),
                     "n_selected": int(n_selected), "confidence": float(bootstrap.confidence),
                     "n_bootstrap": int(bootstrap.bootstrap_resamples)},
        "hopskipjump": per_norm,
    }


def _model_key(model) -> dict:
    """What identifies the model beyond its bytes: the source and how its output is adapted.

    Empty for the Keras sources with plain probabilities, so their run keys are unchanged.
    """
    spec = model.spec.get("config", {})
    adapted = {k: spec.get(k) for k in ("source", "output", "pooling", "output_name", "signature", "url", "entry")}
    plain = spec.get("output", "probabilities") == "probabilities" and spec.get("output_name") is None
    if spec.get("source", "default") in ("default", "keras") and plain:
        return {}
    return {"model_adaptation": adapted}


def default_group_columns(meta) -> list[str]:
    """Text metadata columns plus ``n_events`` (numeric columns with few values), excluding ids."""
    import pandas as pd

    out = []
    for c in meta.columns:
        if c in ("clip_id", "duration_s"):
            continue
        if not pd.api.types.is_numeric_dtype(meta[c]) or meta[c].nunique() <= 5:
            out.append(c)
    return out


def _art_version() -> str:
    from importlib.metadata import version

    return version("adversarial-robustness-toolbox")


def curves_svg(section: dict) -> str:
    """Percentile-vs-iteration series (log scale) with fitted curves, k marked; one panel per norm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from attacks.curves import evaluate_family

    norms = list(section["hopskipjump"])
    with matplotlib.rc_context({"svg.hashsalt": "audio-factsheet", "svg.fonttype": "path", "font.size": 8}):
        fig, axes = plt.subplots(1, len(norms), figsize=(3.4 * len(norms), 3.0), squeeze=False)
        for ax, norm in zip(axes[0], norms):
            block = section["hopskipjump"][norm]
            t = np.arange(1, block["iterations"] + 1)
            k = block["k"]
            for i, row in enumerate(block["percentiles"]):
                color = plt.cm.viridis(i / max(1, len(block["percentiles"]) - 1))
                y = np.array([np.nan if v is None else v for v in row["series"]]) * 32768
                ax.plot(t, y, "o", ms=3, color=color, label=f"p{row['percentile']:g}")
                fit = row["fit"]
                if fit["family"]:
                    tt = np.linspace(1, max(k, t[-1]), 100)
                    ax.plot(tt, evaluate_family(fit["family"], fit["params"], tt) * 32768, "-", lw=1, color=color)
                if row["fitted_at_k"] is not None:
                    ax.plot([k], [row["fitted_at_k"] * 32768], "x", color=color, ms=6)
            ax.axvline(k, color="grey", ls=":", lw=1)
            finite = [v for row in block["percentiles"] for v in row["series"] if v is not None and v > 0]
            if finite:
                ax.set_yscale("log")
            else:  # every attacked clip failed: no finite percentile to draw on a log axis
                ax.text(0.5, 0.5, "no finite percentile:\nno attack succeeded", transform=ax.transAxes,
                        ha="center", va="center")
            ax.set_xlabel("iteration")
            ax.set_ylabel(f"{NORM_TITLES[norm]} (16-bit PCM units)")
            ax.set_title(f"{NORM_TITLES[norm]}: percentiles by iteration; k = {k}")
            ax.legend(fontsize=6, loc="upper right")
        fig.tight_layout()
        return figure_svg(fig)


def fooled_vs_snr_svg(section: dict) -> str:
    """Share of attacked clips fooled at a perturbation at least as quiet as x dB SNR."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"svg.hashsalt": "audio-factsheet", "svg.fonttype": "path", "font.size": 8}):
        fig, ax = plt.subplots(figsize=(5.0, 3.0))
        for norm, block in section["hopskipjump"].items():
            snr = np.array([c["snr_db"][-1] if c["success"] and c["snr_db"][-1] is not None else -np.inf
                            for c in block["clips"]])
            if not len(snr):
                continue
            grid = np.linspace(-10, 80, 181)
            share = [(snr >= g).mean() for g in grid]
            ax.plot(grid, share, label=NORM_TITLES[norm])
        ax.set_xlabel("perturbation budget: SNR of clip over perturbation (dB); higher = quieter")
        ax.set_ylabel("share of attacked clips fooled")
        ax.set_ylim(0, 1.02)
        ax.set_title("Clips fooled after T iterations at an SNR of at least x dB")
        ax.legend()
        fig.tight_layout()
        return figure_svg(fig)
