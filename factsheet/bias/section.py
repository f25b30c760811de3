"""The Bias section, assembled (see the package docstring)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from factsheet.bias.groups import column_describes_class, group_columns, make_groups
from factsheet.bias.plots import groups_svg, per_class_svg
from factsheet.bias.stats import ADJUST, _disparities, _metric, group_level, group_replicates
from factsheet.bias.wording import DEFINITIONS, _finding_sentences
from factsheet.config import BiasConfig, MetricsConfig
from factsheet.datasets.base import ClassLabel
from factsheet.metrics import finite_or_none


def evaluate_bias(*, y_true: np.ndarray, y_score: np.ndarray, class_labels: list[ClassLabel],
                  metadata: pd.DataFrame, settings: BiasConfig, bootstrap: MetricsConfig, prose: str = "",
                  robustness: dict | None = None) -> tuple[dict, dict]:
    """Compute the Bias section (the measured conditions derive from it: :mod:`factsheet.sections.conditions`).

    Parameters
    ----------
    y_true : ndarray, shape (n_clips, n_classes)
        0/1 labels.
    y_score : ndarray, shape (n_clips, n_classes)
        Scores.
    class_labels : list of ClassLabel
    metadata : DataFrame
        n_clips rows; group columns.
    settings : factsheet.config.BiasConfig
        The validated ``[bias]`` section (``columns = ()``: every text column, see :func:`group_columns`).
    bootstrap : factsheet.config.MetricsConfig
        Resamples, confidence and seed of every interval (shared with the other sections).
    prose : str
        The config's Bias text, kept beside the computed results.
    robustness : dict, optional
        The evaluated Robustness section; its per-class medians join the per-class table.

    Returns
    -------
    bias : dict
        The Bias section (JSON-able).
    plots : dict of str to str
        SVG text by plot name.
    """
    y = np.asarray(y_true).astype(bool)
    names = [c.display_name for c in class_labels]
    columns = group_columns(settings, metadata)
    groups, missing = make_groups(metadata, settings, columns=columns)
    single = bool(len(y) and np.all(y.sum(axis=1) == 1))
    top1 = np.argmax(y_score, axis=1)
    clip_values = {"accuracy": y[np.arange(len(y)), top1].astype(np.float64)} if single else None
    res = group_replicates(y_true=y, y_score=y_score, groups=groups, n_bootstrap=bootstrap.bootstrap_resamples,
                           seed=bootstrap.seed, clip_values=clip_values)
    rob_groups = _robustness_by_group(robustness)
    point, reps = res["point"], res["reps"]
    conf = bootstrap.confidence

    group_rows, class_rows = [], []
    for gi, g in enumerate(groups):
        n = int(g.mask.sum())
        insufficient = n < settings.min_group_size
        classes = point[gi]["n_pos"] >= settings.min_positives
        level = group_level(point[gi], reps[gi], classes)
        metrics = {k: _metric(v, r, conf) for k, (v, r) in level.items()}
        if single:
            from factsheet.metrics import single_label_report

            metrics["accuracy"] = _metric(point[gi]["accuracy"], reps[gi]["accuracy"], conf)
            rep = single_label_report(np.argmax(y[g.mask], axis=1), top1[g.mask], n_classes=len(names))
            metrics["macro_f1"] = {"value": finite_or_none(rep.macro_f1), "ci_low": None, "ci_high": None}
        group_rows.append({"columns": list(g.columns), "group": g.name, "n": n, "insufficient_evidence": insufficient,
                           "classes": [names[j] for j in np.flatnonzero(classes)], "metrics": metrics,
                           "robustness": rob_groups.get((g.columns, g.name), {})})
        for j, cname in enumerate(names):
            npos = int(point[gi]["n_pos"][j])
            if npos == 0:
                continue
            class_rows.append({"columns": list(g.columns), "group": g.name, "class": cname, "n_positives": npos,
                               "insufficient_evidence": npos < settings.min_positives or insufficient,
                               "ap": _metric(point[gi]["ap"][j], reps[gi]["ap"][:, j], conf),
                               "auc": _metric(point[gi]["auc"][j], reps[gi]["auc"][:, j], conf)})

    attributes = column_describes_class(y=y, groups=groups)
    disparities = _disparities(groups=groups, point=point, reps=reps, names=names, settings=settings,
                               bootstrap=bootstrap, attributes=attributes, single_label=single)
    tested = [d for d in disparities if d["p_value"] is not None]
    if tested:
        adj = ADJUST[settings.correction](np.array([d["p_value"] for d in tested]))
        for d, pa in zip(tested, adj):
            d["p_adjusted"] = float(pa)
            d["finding"] = bool(pa < 1 - conf and d.get("ci_high") is not None and d["ci_high"] < -settings.tolerance)
    disparities = [d for d in disparities if not d.get("family_only")]

    per_class = _per_class(y, y_score, class_labels, robustness, settings)
    findings = _finding_sentences(disparities, group_rows, settings, bootstrap)
    not_evaluated = list(missing)
    thin = [f"{' & '.join(r['columns'])} = {r['group']} (n = {r['n']})" for r in group_rows
            if r["insufficient_evidence"]]
    if thin:
        not_evaluated.append(f"insufficient evidence (fewer than {settings.min_group_size} clips): " + "; ".join(thin))
    section = {
        "status": "evaluated", "text": prose, "definitions": dict(DEFINITIONS),
        "settings": {"columns": list(columns), "intersections": [list(p) for p in settings.intersections],
                     "condition_columns": list(settings.condition_columns),
                     "exclude_values": list(settings.exclude_values), "min_group_size": settings.min_group_size,
                     "min_positives": settings.min_positives, "tolerance": settings.tolerance,
                     "correction": {"holm": "Holm (family-wise error rate)",
                                    "bh": "Benjamini-Hochberg (false discovery rate)"}[settings.correction],
                     "n_bootstrap": bootstrap.bootstrap_resamples, "confidence": conf, "seed": bootstrap.seed,
                     "n_tests": len(tested), "n_reported": sum(1 for d in disparities if d["p_value"] is not None)},
        "findings": findings, "not_evaluated": not_evaluated,
        "per_class": per_class, "per_category": _per_category(per_class),
        "groups": group_rows, "class_groups": class_rows, "disparities": disparities,
    }
    plots = {"bias_groups": groups_svg(section), "bias_per_class": per_class_svg(section)}
    return section, plots


def _robustness_by_group(robustness: dict | None) -> dict:
    """(columns, group) -> {norm: median perturbation and SNR of the attacked clips in that group}."""
    out: dict = {}
    if not robustness or robustness.get("status") != "evaluated":
        return out
    for norm, block in robustness["hopskipjump"].items():
        for g in block.get("by_group", []):
            if g["column"] == "class":
                continue
            out.setdefault(((g["column"],), g["group"]), {})[norm] = {
                "n_attacked": g["n"], "median_int16": None if g["median"] is None else g["median"] * 32768.0,
                "median_snr_db": g["median_snr_db"], "median_snr_db_ci": g["median_snr_db_ci"]}
    return out


def _per_class(y, y_score, class_labels, robustness, settings) -> list[dict]:
    from factsheet.metrics import tagging_metrics

    m = tagging_metrics(y.astype(np.uint8), y_score)
    rob = {}
    if robustness and robustness.get("status") == "evaluated":
        for norm, block in robustness["hopskipjump"].items():
            for g in block.get("by_group", []):
                if g["column"] == "class":
                    rob.setdefault(g["group"], {})[norm] = g
    rows = []
    for j, c in enumerate(class_labels):
        r = rob.get(c.display_name, {})
        rows.append({"label": c.display_name, "category": c.category, "support": int(m.support[j]),
                     "ap": finite_or_none(m.per_class_ap[j]), "auc": finite_or_none(m.per_class_auc[j]),
                     "d_prime": finite_or_none(m.per_class_d_prime[j]),
                     "robustness": {norm: {"n_attacked": g["n"], "median_int16": (None if g["median"] is None
                                                                                  else g["median"] * 32768.0),
                                           "median_snr_db": g["median_snr_db"]} for norm, g in r.items()},
                     "worst": False})
    ranked = sorted((r for r in rows if r["ap"] is not None), key=lambda r: r["ap"])
    for r in ranked[: settings.worst_classes]:
        r["worst"] = True
    return rows


def _per_category(per_class: list[dict]) -> list[dict]:
    cats: dict[str, list[dict]] = {}
    for r in per_class:
        cats.setdefault(r["category"] or "(none)", []).append(r)
    out = []
    for cat, rows in cats.items():
        ap = [r["ap"] for r in rows if r["ap"] is not None]
        auc = [r["auc"] for r in rows if r["auc"] is not None]
        out.append({"category": cat, "classes": [r["label"] for r in rows], "support": sum(r["support"] for r in rows),
                    "mean_ap": float(np.mean(ap)) if ap else None, "mean_auc": float(np.mean(auc)) if auc else None})
    return sorted(out, key=lambda r: (r["mean_ap"] is None, r["mean_ap"] or 0.0))
