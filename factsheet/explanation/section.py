"""The Explanation section, assembled: occlusion maps of correctly detected positives, per-class band
importance beside band energy, examples with audio, faithfulness, fill sensitivity, sanity checks,
localisation and cost."""

from __future__ import annotations

import hashlib
import io
import re
import wave
from typing import Callable

import numpy as np

from factsheet.explanation import occlusion, stats
from factsheet.explanation.explain import deletion_curves, deletion_orders, deletion_steps, explain_clip
from factsheet.explanation.explain import importance_from_scores
from factsheet.explanation.wording import DEFINITIONS, findings
from factsheet.metrics import finite_or_none


def evaluate_explanation(*, waveforms: np.ndarray, labels: np.ndarray, scores: np.ndarray, class_labels: list,
                         clip_ids: list[str], predict: Callable, sample_rate: int, settings, bootstrap,
                         keras_model=None, events: list | None = None, durations_s: list | None = None,
                         prose: str = "", run_clips: Callable | None = None) -> tuple[dict, dict]:
    """Compute the Explanation section.

    Parameters
    ----------
    waveforms : ndarray, shape (n_clips, n_samples), float32
    labels, scores : ndarray, shape (n_clips, n_classes)
        0/1 labels and the model's scores of ``waveforms``.
    class_labels : list of ClassLabel
    clip_ids : list of str
    predict : callable
        ``predict((m, n_samples) float32) -> (m, n_classes)`` scores of the dataset's classes.
    sample_rate : int
    settings : factsheet.config.ExplanationConfig
    bootstrap : factsheet.config.MetricsConfig
    keras_model : keras.Model, optional
        The model's weights, for the model-randomisation check (None: a score-only model).
    events : list, optional
        Per clip ``(class_index, onset_s, offset_s)`` events (synthetic data), for the localisation test.
    durations_s : list of float, optional
        Each clip's own length before it was fitted to the model's input (seconds), with ``events``.
    prose : str
        The config's Explanation text, kept as a note.
    run_clips : callable, optional
        ``run_clips(tasks, *, clips, grid, fill, target_db, max_passes) -> {row: explain_clip's dict}``: makes the
        per-clip maps elsewhere (an executor's workers; :mod:`factsheet.explanation.tasks`); None: here, one clip
        after another. The checks (faithfulness, fill, randomisation) run here either way. The section is the same.

    Returns
    -------
    section : dict
        JSON-able; see ``factsheet/schema/sections/explanation.json``.
    audio : dict of str to bytes
        WAV files of the examples by path relative to the report.
    """
    st = settings
    grid = occlusion.make_grid(n_bands=st.n_bands, n_slices=st.n_slices, sample_rate=sample_rate,
                               n_samples=waveforms.shape[1])
    chosen = stats.select_clips(labels, scores, n_per_class=st.n_per_class, threshold=st.threshold, seed=st.seed)
    fills = {"mean": _mean_fill(waveforms, st, sample_rate), "silence": np.zeros(occlusion.N_FFT // 2 + 1)}
    clips = sorted({i for c in chosen for i in c})
    checked = _checked_clips(chosen, st.n_checked)
    keep = {c for c, _ in checked} if keras_model is not None else set()
    if run_clips is not None and clips:
        from factsheet.explanation.tasks import ExplainTask

        made = run_clips([ExplainTask(row=i, keep_occluded=i in keep) for i in clips],
                         clips={i: np.asarray(waveforms[i], np.float32) for i in clips}, grid=grid, fill=fills[st.fill],
                         target_db=st.attenuation_db, max_passes=st.max_passes)
        run = {i: made[i] for i in clips}
    else:
        run = {i: explain_clip(waveform=waveforms[i], grid=grid, fill=fills[st.fill], predict=predict,
                               target_db=st.attenuation_db, max_passes=st.max_passes, keep_occluded=i in keep)
               for i in clips}
    pairs = [(i, j) for j, c in enumerate(chosen) for i in c]
    ctx = {"grid": grid, "run": run, "pairs": pairs, "waveforms": waveforms, "predict": predict, "settings": st,
           "bootstrap": bootstrap, "fills": fills, "checked": checked}
    section, audio = _assemble(ctx, chosen, class_labels, clip_ids, keras_model=keras_model, events=events,
                               durations_s=durations_s)
    section["text"] = prose
    return section, audio


def _assemble(ctx: dict, chosen: list[list[int]], class_labels: list, clip_ids: list[str], *, keras_model,
              events, durations_s) -> tuple[dict, dict]:
    """The section's fields from the explained clips (``ctx["run"]``), the checks run on the way."""
    grid, st, run = ctx["grid"], ctx["settings"], ctx["run"]
    examples, audio = _examples(ctx, chosen, class_labels, clip_ids)
    section = {
        "status": "evaluated", "text": "", "definitions": DEFINITIONS,
        "settings": _settings(st, ctx["bootstrap"]),
        "grid": {"band_edges_hz": [float(f) for f in grid.band_edges_hz],
                 "slice_edges_s": [float(t) for t in grid.slice_edges_s],
                 "stft": {"window": "hann", "n_fft": occlusion.N_FFT, "hop": occlusion.HOP}},
        "clips": {"n_explained": len(run), "n_pairs": len(ctx["pairs"]), "n_checked": len(ctx["checked"])},
        "attenuation": _attenuation(run, st),
        "per_class": _per_class(ctx, chosen, class_labels),
        "examples": examples,
        "faithfulness": _faithfulness(ctx),
        "fill_sensitivity": _fill_sensitivity(ctx),
        "sanity": {"random_logit": _random_logit(ctx), "model_randomisation": _model_randomisation(ctx, keras_model)},
        "localisation": _localisation(ctx, events, durations_s),
        "interval_methods": {"per_class": "studentized", "faithfulness": "studentized", "localisation": "studentized"},
    }
    section["cost"] = _cost(section, run)
    section["findings"] = findings(section, class_labels)
    return section, audio


def _settings(st, bootstrap) -> dict:
    return {"n_bands": st.n_bands, "n_slices": st.n_slices, "fill": st.fill, "n_per_class": st.n_per_class,
            "threshold": st.threshold, "seed": st.seed, "attenuation_db": st.attenuation_db,
            "max_passes": st.max_passes, "n_checked": st.n_checked, "random_orders": st.random_orders,
            "deletion_steps": st.deletion_steps, "examples_per_class": st.examples_per_class,
            "audio_budget_kb": st.audio_budget_kb, "fill_clips": st.fill_clips,
            "n_bootstrap": bootstrap.bootstrap_resamples, "confidence": bootstrap.confidence,
            "bootstrap_seed": bootstrap.seed}


def _mean_fill(waveforms: np.ndarray, st, sample_rate: int) -> np.ndarray:
    """The dataset-mean magnitude over ``fill_clips`` clips drawn with the section's seed."""
    n = len(waveforms)
    idx = np.sort(np.random.default_rng([st.seed, 1]).choice(n, size=min(n, st.fill_clips), replace=False))
    return occlusion.fill_magnitude(waveforms[idx], sample_rate=sample_rate)


def _checked_clips(chosen: list[list[int]], n_checked: int) -> list[tuple[int, int]]:
    """(clip, class) pairs the faithfulness, fill and randomisation checks run on: each class's first chosen
    clip, then its second, ... until ``n_checked``."""
    out, depth = [], 0
    while len(out) < n_checked and any(len(c) > depth for c in chosen):
        out += [(c[depth], j) for j, c in enumerate(chosen) if len(c) > depth]
        depth += 1
    return out[:n_checked]


def _attenuation(run: dict, st) -> dict:
    att = np.concatenate([r["attenuation_db"] for r in run.values()]) if run else np.zeros(0)
    short = int(np.sum(att < st.attenuation_db))
    finite = att[np.isfinite(att)]
    q = (lambda p: finite_or_none(float(np.percentile(finite, p))) if finite.size else None)
    warning = None
    if short:
        warning = (f"{short} of {att.size} occluded cells ({100 * short / att.size:.0f} %) stayed short of the "
                   f"{st.attenuation_db:g} dB target after {st.max_passes} passes: their importance is a lower bound")
    return {"target_db": st.attenuation_db, "n_cells": int(att.size), "n_short": short, "min_db": q(0),
            "p5_db": q(5), "median_db": q(50), "warning": warning}


def _per_class(ctx: dict, chosen: list[list[int]], class_labels: list) -> list[dict]:
    """Per class: band importance (summed over time slices) over its explained clips with studentised bootstrap
    intervals (none below ``stats.MIN_ROWS`` clips), beside the share of the clips' energy in each band."""
    grid, run, boot = ctx["grid"], ctx["run"], ctx["bootstrap"]
    rows = []
    for j, c in enumerate(class_labels):
        row = {"label": c.display_name, "n_clips": len(chosen[j]), "bands": [], "top_band": None}
        if chosen[j]:
            imp = np.array([run[i]["importance"][:, j].reshape(grid.n_bands, grid.n_slices).sum(axis=1)
                            for i in chosen[j]])
            energy = np.array([_band_share(ctx["waveforms"][i], grid) for i in chosen[j]]).mean(axis=0)
            est = stats.mean_interval(imp, n_resamples=boot.bootstrap_resamples, confidence=boot.confidence,
                                      seed=[boot.seed, 13, j])
            low, high = est["low"] or [None] * grid.n_bands, est["high"] or [None] * grid.n_bands
            row["bands"] = [{"band": b, "low_hz": float(grid.band_edges_hz[b]),
                             "high_hz": float(grid.band_edges_hz[b + 1]), "importance": est["mean"][b],
                             "ci_low": low[b], "ci_high": high[b], "energy_share": float(energy[b])}
                            for b in range(grid.n_bands)]
            row["top_band"] = int(np.argmax(imp.mean(axis=0)))
        rows.append(row)
    return rows


def _band_share(waveform: np.ndarray, grid) -> np.ndarray:
    e = occlusion.cell_energy(waveform, grid=grid).reshape(grid.n_bands, grid.n_slices).sum(axis=1)
    return e / max(e.sum(), 1e-30)


def _cell_record(grid, cell: int) -> dict:
    band, j = grid.cell(cell)
    return {"band": band, "slice": j, "low_hz": float(grid.band_edges_hz[band]),
            "high_hz": float(grid.band_edges_hz[band + 1]), "start_s": float(grid.slice_edges_s[j]),
            "end_s": float(grid.slice_edges_s[j + 1])}


def _examples(ctx: dict, chosen: list[list[int]], class_labels: list, clip_ids: list[str]) -> tuple[list, dict]:
    """Per class, the ``examples_per_class`` clips with the largest single-cell drop: the cell, and two WAV
    files (the cell alone, the clip without it) while the embedded audio stays within the budget."""
    grid, run, st = ctx["grid"], ctx["run"], ctx["settings"]
    budget, used, rows, audio = st.audio_budget_kb * 1000, 0, [], {}
    for j, c in enumerate(class_labels):
        best = sorted(chosen[j], key=lambda i: (-float(run[i]["importance"][:, j].max()), i))
        for i in best[:st.examples_per_class]:
            cell = int(np.argmax(run[i]["importance"][:, j]))
            row = {"label": c.display_name, "clip_id": str(clip_ids[i]), **_cell_record(grid, cell),
                   "drop": float(run[i]["importance"][cell, j]), "score": float(run[i]["scores"][j]),
                   "score_without": float(run[i]["cell_scores"][cell, j]), "audio": None}
            files = {"alone": _wav(occlusion.cell_alone(ctx["waveforms"][i], grid=grid, cell=cell), grid.sample_rate),
                     "without": _wav(_without(ctx, i, cell), grid.sample_rate)}
            size = sum(4 * ((len(b) + 2) // 3) for b in files.values())  # base64 in the HTML
            if used + size <= budget:
                used += size
                stem = f"audio/explanation_{_slug(c.display_name)}_{_slug(str(clip_ids[i]))}"
                row["audio"] = {**{k: f"{stem}_{k}.wav" for k in files},
                                **{f"{k}_sha256": hashlib.sha256(b).hexdigest() for k, b in files.items()}}
                audio.update({f"{stem}_{k}.wav": b for k, b in files.items()})
            rows.append(row)
    return rows, audio


def _without(ctx: dict, i: int, cell: int) -> np.ndarray:
    """Clip ``i`` without one cell: the same waveform the map scored (whole-clip passes equal the
    per-slice ones of :func:`~factsheet.explanation.occlusion.occlude_cells`)."""
    st = ctx["settings"]
    sets = np.zeros((1, ctx["grid"].n_cells), bool)
    sets[0, cell] = True
    y, _ = occlusion.occlude_masks(ctx["waveforms"][i], sets, grid=ctx["grid"], fill=ctx["fills"][st.fill],
                                   target_db=st.attenuation_db, max_passes=st.max_passes)
    return y[0]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def _wav(x: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM mono WAV bytes of ``x`` in [-1, 1] (clipped), deterministic (stdlib ``wave``)."""
    pcm = np.clip(np.round(np.asarray(x, np.float64) * 32767.0), -32768, 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def _faithfulness(ctx: dict) -> dict:
    """Deletion curves of the checked clips: the map's order against the loudest-first and random orders,
    with paired studentised bootstrap intervals of the area differences (map minus other; negative: the map is
    better)."""
    grid, run, st, boot = ctx["grid"], ctx["run"], ctx["settings"], ctx["bootstrap"]
    steps = deletion_steps(grid.n_cells, st.deletion_steps)
    areas, curves, queries = [], [], 0
    for i, j in ctx["checked"]:
        orders = deletion_orders(importance=run[i]["importance"][:, j],
                                 energy=occlusion.cell_energy(ctx["waveforms"][i], grid=grid),
                                 n_random=st.random_orders, rng=np.random.default_rng([st.seed, 2, i, j]))
        d = deletion_curves(waveform=ctx["waveforms"][i], orders=orders, steps=steps, grid=grid,
                            fill=ctx["fills"][st.fill], predict=ctx["predict"], class_index=j,
                            target_db=st.attenuation_db, max_passes=st.max_passes)
        areas.append([d["area"][0], d["area"][1], d["area"][2:].mean()])
        curves.append([d["curves"][0], d["curves"][1], d["curves"][2:].mean(axis=0)])
        queries += d["n_queries"]
    a, cv = np.asarray(areas), np.asarray(curves)
    out = {"n_clips": len(areas), "steps": [int(k) for k in steps], "n_queries": queries}
    if not areas:
        return dict(out, area={}, vs_random=None, vs_loudness=None, curves={}, beats_random=False,
                    beats_loudness=False)
    ci = {"n_resamples": boot.bootstrap_resamples, "confidence": boot.confidence}
    vs_r = stats.mean_interval(a[:, 0] - a[:, 2], seed=[boot.seed, 14], **ci)
    vs_l = stats.mean_interval(a[:, 0] - a[:, 1], seed=[boot.seed, 15], **ci)
    names = ("importance", "loudness", "random")
    return dict(out, area={n: float(a[:, k].mean()) for k, n in enumerate(names)},
                curves={n: [float(v) for v in cv[:, k].mean(axis=0)] for k, n in enumerate(names)},
                vs_random=vs_r, vs_loudness=vs_l,
                beats_random=vs_r["high"] is not None and vs_r["high"] < 0,
                beats_loudness=vs_l["high"] is not None and vs_l["high"] < 0)


def _fill_sensitivity(ctx: dict) -> dict:
    """The checked clips' maps with the other fill: agreement per clip (cells) and per class (band profiles)."""
    grid, run, st = ctx["grid"], ctx["run"], ctx["settings"]
    other = "silence" if st.fill == "mean" else "mean"
    a, b, queries = [], [], 0
    for i, j in ctx["checked"]:
        r = explain_clip(waveform=ctx["waveforms"][i], grid=grid, fill=ctx["fills"][other], predict=ctx["predict"],
                         target_db=st.attenuation_db, max_passes=st.max_passes)
        a.append(run[i]["importance"][:, j])
        b.append(r["importance"][:, j])
        queries += r["n_queries"]
    bands = (lambda m: m.reshape(grid.n_bands, grid.n_slices).sum(axis=1))
    return {"other_fill": other, "n_queries": queries, "cells": stats.agreement(a, b),
            "bands": stats.agreement([bands(m) for m in a], [bands(m) for m in b])}


def _random_logit(ctx: dict) -> dict:
    """Each pair's map against the map of a class drawn at random among the others (same clip, same batch)."""
    run, st = ctx["run"], ctx["settings"]
    a, b = [], []
    for i, j in ctx["pairs"]:
        n_classes = run[i]["importance"].shape[1]
        if n_classes < 2:
            continue
        k = int(np.random.default_rng([st.seed, 3, i, j]).integers(n_classes - 1))
        a.append(run[i]["importance"][:, j])
        b.append(run[i]["importance"][:, k + (k >= j)])
    out = stats.agreement(a, b)
    rho = out["median_spearman"]
    return dict(out, passed=None if rho is None else bool(rho < 0.5), n_queries=0)


def _model_randomisation(ctx: dict, keras_model) -> dict:
    """The checked clips' occluded batches scored again by the model with its weights permuted."""
    if keras_model is None:
        return {"status": "not_possible", "reason": "not possible for a score-only model (its weights are not "
                "reachable)", "n": 0, "median_spearman": None, "same_top_cell_share": None, "passed": None,
                "n_queries": 0}
    from factsheet.explanation.randomise import randomised_weights

    run, st = ctx["run"], ctx["settings"]
    a, b = [], []
    with randomised_weights(keras_model, seed=st.seed):
        for i, j in ctx["checked"]:
            batch = np.concatenate([ctx["waveforms"][i][None], run[i]["occluded"]], axis=0)
            a.append(run[i]["importance"][:, j])
            b.append(importance_from_scores(np.asarray(ctx["predict"](batch), np.float64))[:, j])
    out = stats.agreement(a, b)
    rho = out["median_spearman"]
    return dict(out, status="run", reason=None, passed=None if rho is None else bool(rho < 0.5),
                n_queries=len(a) * (1 + ctx["grid"].n_cells))


def _localisation(ctx: dict, events: list | None, durations_s: list | None) -> dict:
    """AUC of each pair's slice importance (summed over bands) against the slices the generator filled with an
    event of the class."""
    if events is None or durations_s is None:
        return {"status": "not_possible", "reason": "the dataset does not say where its events are (only the "
                "synthetic generator does)", "n_pairs": 0, "auc": None}
    grid, run, boot = ctx["grid"], ctx["run"], ctx["bootstrap"]
    aucs = []
    for i, j in ctx["pairs"]:
        inside = stats.event_slices(events[i], class_index=j, slice_edges_s=grid.slice_edges_s,
                                    clip_s=float(durations_s[i]))
        per_slice = run[i]["importance"][:, j].reshape(grid.n_bands, grid.n_slices).sum(axis=0)
        auc = stats.localisation_auc(per_slice, inside)
        if auc is not None:
            aucs.append(auc)
    if not aucs:
        return {"status": "not_possible", "reason": "no explained clip has time slices both inside and outside "
                "its class's event", "n_pairs": 0, "auc": None}
    est = stats.mean_interval(np.asarray(aucs), n_resamples=boot.bootstrap_resamples, confidence=boot.confidence,
                              seed=[boot.seed, 16])
    return {"status": "run", "reason": None, "n_pairs": len(aucs), "auc": est}


def _cost(section: dict, run: dict) -> dict:
    q = {"occlusion": int(sum(r["n_queries"] for r in run.values())),
         "faithfulness": section["faithfulness"]["n_queries"],
         "fill_sensitivity": section["fill_sensitivity"]["n_queries"],
         "model_randomisation": section["sanity"]["model_randomisation"]["n_queries"]}
    return {"queries": dict(q, total=sum(q.values())), "queries_per_clip": 1 + section["settings"]["n_bands"]
            * section["settings"]["n_slices"]}
