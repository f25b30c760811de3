"""The Robustness section: HopSkipJump L2 / L-infinity on selected clips, summarised per norm.

``evaluate_robustness`` is the one entry point the pipeline calls; it returns the section as a
JSON-able dict (``robustness.hopskipjump.l2`` / ``.linf`` ...) and the SVG plots.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from attacks.runner import make_tasks, run_tasks, select_clips, store_path
from attacks.store import RunStore, run_key_for
from factsheet.config import MetricsConfig, RobustnessConfig
from attacks.summary import DEFINITIONS, group_robustness, summarise_norm
from factsheet.render import figure_svg

NORM_TITLES = {"l2": "L2", "linf": "L-infinity"}


def evaluate_robustness(*, model, waveforms: np.ndarray, dataset, scores: np.ndarray, settings: RobustnessConfig,
                        bootstrap: MetricsConfig, out_dir: Path, workers: int, dataset_sha256: str,
                        group_columns: list[str] | None = None, progress: bool = False) -> tuple[dict, dict, dict]:
    """Run (or resume) the attacks and build the section.

    Parameters
    ----------
    model : LoadedModel
        Worker processes reload it from ``model.spec``.
    waveforms : ndarray, shape (n_clips, n_samples)
        Clips at the model's input length, float32 in [-1, 1].
    dataset : AudioDataset
    scores : ndarray, shape (n_clips, n_classes)
        The model's scores on ``waveforms`` (clip selection and init candidates use them).
    settings : factsheet.config.RobustnessConfig
        Validated ``[robustness]`` section (``enabled`` and ``workers`` are not read here).
    out_dir : Path
        Where the run store ``attack_runs.sqlite`` lives (resume).
    workers : int
        Worker processes (1: in this process).
    bootstrap : factsheet.config.MetricsConfig
        Resamples, confidence and seed of the percentile and group-median intervals.
    dataset_sha256 : str
    group_columns : list of str, optional
        Metadata columns for per-group robustness (default: every text column and ``n_events``).

    Returns
    -------
    section : dict
        JSON-able Robustness section (identical whatever the worker count or resumes).
    plots : dict of str to str
        SVG text by plot name.
    run_info : dict
        Volatile facts for provenance: workers, results reused from the store, seconds.
    """
    t0 = time.perf_counter()
    rows = select_clips(labels=dataset.labels, scores=scores, n_clips=settings.n_clips, seed=settings.seed)
    clip_ids = [str(c) for c in dataset.metadata["clip_id"]]
    tasks = make_tasks(rows=rows, clip_ids=clip_ids, scores=scores, settings=settings)
    key_material = {"settings": settings.results_settings(), "model_sha256": model.sha256, **_model_key(model),
                    "clip_samples": int(waveforms.shape[1]), "dataset_sha256": dataset_sha256,
                    "clips": [clip_ids[r] for r in rows], "art": _art_version()}
    key = run_key_for(key_material)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with RunStore.open(store_path(out_dir), run_key=key, settings=key_material) as store:
        ignored = sum(store.other_run_keys().values())
        before = sum(len(store.done(norm=n)) for n in settings.norms)
        requests: dict = {}
        done = run_tasks(tasks=tasks, model_spec=model.spec, waveforms=waveforms, top1=np.argmax(scores, axis=1),
                         settings=settings, store=store, workers=workers, progress=progress, requests=requests)
    names = [c.display_name for c in dataset.class_labels]
    true_labels = [[names[j] for j in np.flatnonzero(dataset.labels[r])] for r in rows]
    meta = dataset.metadata.iloc[rows].reset_index(drop=True)
    columns = group_columns if group_columns is not None else default_group_columns(meta)
    per_norm, by_group = {}, {}
    for norm in settings.norms:
        records = []
        for i, r in enumerate(rows):
            rec = dict(done[(norm, clip_ids[r])])
            rec.update(label_name=names[rec["label"]], true_labels=true_labels[i],
                       target_name=None if rec.get("target") is None else names[rec["target"]])
            records.append(rec)
        intervals = {"n_bootstrap": bootstrap.bootstrap_resamples, "confidence": bootstrap.confidence,
                     "seed": bootstrap.seed}
        per_norm[norm] = summarise_norm(records, norm=norm, iterations=settings.iterations, k=settings.k,
                                        percentiles=list(settings.percentiles), **intervals)
        groups = {"class": [rec["label_name"] for rec in records]}
        groups.update({c: meta[c].tolist() for c in columns})
        by_group[norm] = group_robustness(records, groups=groups, norm=norm, iterations=settings.iterations,
                                          **intervals)
        per_norm[norm]["by_group"] = by_group[norm]
    section = {
        "status": "evaluated",
        "definitions": dict(DEFINITIONS),
        "settings": {**settings.results_settings(), "art_version": _art_version(),
                     "selection": ("class-stratified random sample, reproducible from the seed, of the clips whose "
                                   "top-1 class is among their true labels; the attacked (escaped) class is that "
                                   "top-1 class"),
                     "initialisation": ("a real clip whose top-1 class differs, chosen by a per-clip seed and "
                                        "blended towards the clean clip by binary search (x_adv_init); ART's own "
                                        "random search only when no such clip exists"),
                     "n_selected": int(len(rows)), "confidence": float(bootstrap.confidence),
                     "n_bootstrap": int(bootstrap.bootstrap_resamples)},
        "hopskipjump": per_norm,
    }
    plots = {"robustness_curves": curves_svg(section), "robustness_fooled_vs_snr": fooled_vs_snr_svg(section)}
    run_info = {"store": store_path(out_dir).name, "run_key": key, "workers": int(workers),
                "reused_results": int(before), "computed_results": int(len(tasks) - before),
                "ignored_results_other_configs": int(ignored), "seconds": round(time.perf_counter() - t0, 3)}
    if requests:
        run_info["model_requests"] = requests
    return section, plots, run_info


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
        ax.set_title(f"Clips fooled after T iterations at an SNR of at least x dB")
        ax.legend()
        fig.tight_layout()
        return figure_svg(fig)
