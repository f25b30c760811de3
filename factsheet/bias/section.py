"""The Bias section, assembled (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from factsheet.bias.groups import column_describes_class, group_columns, make_groups
from factsheet.bias.plots import groups_svg, per_class_svg
from factsheet.bias.stats import _bca_metric, _disparities, _metric, group_level, group_level_jackknife, group_replicates
from factsheet.bias.wording import DEFINITIONS, INTERVAL_METHODS, _finding_sentences
from factsheet.config import BiasConfig, MetricsConfig
from factsheet.datasets.base import ClassLabel
from factsheet.metrics import clopper_pearson_interval, expanded_confidence, finite_or_none
from factsheet.significance import ADJUST, is_finding


def evaluate_bias(*, y_true: np.ndarray, y_score: np.ndarray, class_labels: list[ClassLabel],
                  metadata: pd.DataFrame, settings: BiasConfig, bootstrap: MetricsConfig, prose: str = "",
                  robustness: dict | None = None, domain_shift_groups: dict | None = None) -> tuple[dict, dict]:
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
        The evaluated Robustness section; its per-class medians join the per-class table, and its
        group comparisons (``robustness.groups``, with ``[robustness] stratify_by``) join this
        section's family of tests: their p-values are appended to this section's before the
        correction, so that adding them never changes which of this section's tests are computed,
        only the family's size (``robustness_disparities``, ``settings.n_robustness_tests``).
    domain_shift_groups : dict, optional
        The Domain Shift section's group comparisons (``domain_shift.groups``,
        :mod:`factsheet.domain_shift.groups`): their p-values are appended after the Robustness
        section's, one family (``domain_shift_disparities``, ``settings.n_domain_shift_tests``).

    Returns
    -------
    bias : dict
        The Bias section (JSON-able).
    plots : dict of str to str
        SVG text by plot name.
    """
    y = np.asarray(y_true).astype(bool)
    columns = group_columns(settings, metadata)
    groups, missing = make_groups(metadata, settings, columns=columns)
    data = _replicated(y, y_score, groups=groups, names=[c.display_name for c in class_labels], bootstrap=bootstrap,
                       jackknife=True)
    group_rows = _group_rows(data, settings=settings, confidence=bootstrap.confidence,
                             robustness=_robustness_by_group(robustness))
    class_rows = _class_rows(data, settings=settings, confidence=bootstrap.confidence)
    rob_groups = _robustness_family(robustness)
    rob_p = _robustness_p_values(rob_groups) or []
    shift_p = _domain_shift_p_values(domain_shift_groups)
    disparities, n_tests, extra_adjusted = _tested_disparities(
        data, settings=settings, bootstrap=bootstrap, extra_p=(rob_p + shift_p) or None)
    rob_adjusted, shift_adjusted = extra_adjusted[:len(rob_p)], extra_adjusted[len(rob_p):]
    per_class = _per_class(y, y_score, class_labels, robustness, settings)
    section = {
        "status": "evaluated", "text": prose, "definitions": dict(DEFINITIONS),
        "interval_methods": dict(INTERVAL_METHODS),
        "settings": _settings_block(columns, settings=settings, bootstrap=bootstrap, n_tests=n_tests,
                                    n_reported=sum(1 for d in disparities if d["p_value"] is not None)),
        "findings": _finding_sentences(disparities, group_rows, settings, bootstrap),
        "not_evaluated": _not_evaluated(missing, group_rows, settings),
        "per_class": per_class, "per_category": _per_category(per_class),
        "groups": group_rows, "class_groups": class_rows, "disparities": disparities,
    }
    if rob_groups:
        _add_robustness(section, rob_groups, adjusted=rob_adjusted, settings=settings)
    if domain_shift_groups is not None:
        _add_domain_shift(section, domain_shift_groups, adjusted=shift_adjusted, settings=settings)
    plots = {"bias_groups": groups_svg(section), "bias_per_class": per_class_svg(section)}
    return section, plots


@dataclass(frozen=True)
class _Replicated:
    """The groups and their metrics on the clips and on the paired bootstrap resamples.

    Attributes
    ----------
    y : ndarray of bool, shape (n_clips, n_classes)
    top1 : ndarray of int, shape (n_clips,)
        The model's top-1 class of each clip.
    names : list of str
        Class display names.
    groups : list of Group
    point, reps : dict
        :func:`~factsheet.bias.stats.group_replicates`'s point values and replicates by group index;
        single-label, each group's point values also hold ``n_correct``, its clips whose top-1 class is right.
    single_label : bool
        Every clip has exactly one true label (then each group's accuracy is measured too).
    jack : dict or None
        :func:`~factsheet.bias.stats.group_replicates`'s leave-one-clip-out values by group index
        (``jackknife=True``), for the BCa intervals of the group rows.
    """

    y: np.ndarray
    top1: np.ndarray
    names: list[str]
    groups: list
    point: dict
    reps: dict
    single_label: bool
    jack: dict | None = None


def _replicated(y: np.ndarray, y_score: np.ndarray, *, groups: list, names: list[str],
                bootstrap: MetricsConfig, jackknife: bool = False) -> _Replicated:
    """Every group's per-class AP and AUC (and accuracy, single-label) over one paired bootstrap
    (and with each clip left out: ``jackknife``)."""
    single = bool(len(y) and np.all(y.sum(axis=1) == 1))
    top1 = np.argmax(y_score, axis=1)
    clip_values = {"accuracy": y[np.arange(len(y)), top1].astype(np.float64)} if single else None
    res = group_replicates(y_true=y, y_score=y_score, groups=groups, n_bootstrap=bootstrap.bootstrap_resamples,
                           seed=bootstrap.seed, clip_values=clip_values,
                           jackknife=jackknife and bootstrap.bootstrap_resamples > 0)
    if single:  # the counts behind each group's accuracy, for its exact interval and Newcombe's difference
        for gi, g in enumerate(groups):
            res["point"][gi]["n_correct"] = int(clip_values["accuracy"][np.asarray(g.mask, dtype=bool)].sum())
    return _Replicated(y=y, top1=top1, names=names, groups=groups, point=res["point"], reps=res["reps"],
                       single_label=single, jack=res.get("jack"))


def _group_rows(data: _Replicated, *, settings: BiasConfig, confidence: float, robustness: dict) -> list[dict]:
    """One row per group: size, classes measured, group metrics with intervals, robustness medians."""
    from factsheet.metrics import single_label_report

    rows = []
    for gi, g in enumerate(data.groups):
        n = int(g.mask.sum())
        classes = data.point[gi]["n_pos"] >= settings.min_positives
        level = group_level(data.point[gi], data.reps[gi], classes)
        if n < settings.min_group_size:  # insufficient evidence: the value, no interval
            metrics = {k: {"value": finite_or_none(v), "ci_low": None, "ci_high": None} for k, (v, _) in level.items()}
        elif data.jack is None:
            metrics = {k: _metric(v, r, confidence) for k, (v, r) in level.items()}
        else:  # BCa: the percentile interval under-covers a weaker group's mAP (bench/coverage.py --studies bias),
            # at Hesterberg's expanded level for the fewest positives of an averaged class (plain BCa: 91.8-92.2 %
            # for voice groups of 28-56 positives)
            jack = group_level_jackknife(data.jack[gi], classes)
            level_n = _expanded_level(confidence, n=int(data.point[gi]["n_pos"][classes].min()) if classes.any() else 0)
            metrics = {k: _bca_metric(v, r, jack[k], level_n) for k, (v, r) in level.items()}
        if data.single_label:  # k of n right: the exact binomial interval (the percentile one collapses at n of n)
            low, high = clopper_pearson_interval(data.point[gi]["n_correct"], n, confidence=confidence)
            metrics["accuracy"] = {"value": finite_or_none(data.point[gi]["accuracy"]), "ci_low": low, "ci_high": high}
            if n < settings.min_group_size:
                metrics["accuracy"].update(ci_low=None, ci_high=None)
            rep = single_label_report(np.argmax(data.y[g.mask], axis=1), data.top1[g.mask],
                                      n_classes=len(data.names))
            metrics["macro_f1"] = {"value": finite_or_none(rep.macro_f1), "ci_low": None, "ci_high": None}
        rows.append({"columns": list(g.columns), "group": g.name, "n": n,
                     "insufficient_evidence": n < settings.min_group_size,
                     "classes": [data.names[j] for j in np.flatnonzero(classes)], "metrics": metrics,
                     "robustness": robustness.get((g.columns, g.name), {})})
    return rows


def _class_rows(data: _Replicated, *, settings: BiasConfig, confidence: float) -> list[dict]:
    """One row per (group, class with a positive in the group): AP and AUC with BCa intervals (percentile
    without ``data.jack``), none (null bounds) below ``min_positives`` positives or ``min_group_size``
    clips (insufficient evidence)."""
    rows = []
    for gi, g in enumerate(data.groups):
        insufficient = int(g.mask.sum()) < settings.min_group_size
        point, reps = data.point[gi], data.reps[gi]
        for j, cname in enumerate(data.names):
            npos = int(point["n_pos"][j])
            if npos == 0:
                continue
            thin = npos < settings.min_positives or insufficient  # the value, no interval: it under-covers
            rows.append({"columns": list(g.columns), "group": g.name, "class": cname, "n_positives": npos,
                         "insufficient_evidence": thin,
                         **{k: _class_metric(point[k][j], reps[k][:, j], None if data.jack is None else
                                             data.jack[gi][k][:, j], confidence=confidence, thin=thin,
                                             n_positives=npos)
                            for k in ("ap", "auc")}})
    return rows


def _class_metric(value, reps: np.ndarray, jack: np.ndarray | None, *, confidence: float, thin: bool,
                  n_positives: int) -> dict:
    """A (group, class) cell's AP or AUC: BCa with the leave-one-clip-out values at the expanded level for its
    positives (percentile without them), no interval when ``thin`` (insufficient evidence)."""
    if thin:
        return {"value": finite_or_none(value), "ci_low": None, "ci_high": None}
    if jack is None:
        return _metric(value, reps, confidence)
    return _bca_metric(value, reps, jack, _expanded_level(confidence, n=int(n_positives)))


def _expanded_level(confidence: float, *, n: int) -> float:
    """The level at which a group row's or class cell's BCa interval is taken: Hesterberg's expanded level
    (:func:`factsheet.metrics.expanded_confidence`) for ``n`` positives, the nominal one without any (no class)."""
    return expanded_confidence(confidence, n=n) if n >= 1 else confidence


def _tested_disparities(data: _Replicated, *, settings: BiasConfig, bootstrap: MetricsConfig,
                        extra_p: list[float] | None = None) -> tuple[list[dict], int, list[float]]:
    """Every group against the best of its column, p-values adjusted over one family of tests.

    Parameters
    ----------
    data : _Replicated
    settings : BiasConfig
    bootstrap : MetricsConfig
    extra_p : list of float, optional
        Raw p-values of other sections' tests (the Robustness section's group comparisons),
        appended to this section's before the adjustment: one family.

    Returns
    -------
    disparities : list of dict
        The reported rows, ``p_adjusted`` and ``finding`` set (a finding: adjusted p-value below
        ``1 - confidence`` and the interval's upper bound below ``-tolerance``).
    n_tests : int
        Tests in the correction, the unreported pairs of each family and ``extra_p`` included.
    extra_adjusted : list of float
        ``extra_p`` adjusted, in its order.
    """
    attributes = column_describes_class(y=data.y, groups=data.groups)
    disparities = _disparities(groups=data.groups, point=data.point, reps=data.reps, names=data.names,
                               settings=settings, bootstrap=bootstrap, attributes=attributes,
                               single_label=data.single_label)
    tested = [d for d in disparities if d["p_value"] is not None]
    p = [d["p_value"] for d in tested] + list(extra_p or [])
    adj = ADJUST[settings.correction](np.array(p)) if p else np.array([])
    for d, pa in zip(tested, adj):
        d["p_adjusted"] = float(pa)
        d["finding"] = is_finding(p_adjusted=float(pa), ci_high=d.get("ci_high"),
                                  confidence=bootstrap.confidence, tolerance=settings.tolerance)
    return [d for d in disparities if not d.get("family_only")], len(p), [float(a) for a in adj[len(tested):]]


def _robustness_family(robustness: dict | None) -> dict | None:
    """The Robustness section's group comparisons (``robustness.groups``), when it was evaluated with them."""
    if not robustness or robustness.get("status") != "evaluated":
        return None
    return robustness.get("groups")


def _robustness_p_values(groups: dict | None) -> list[float] | None:
    """Raw p-values of the Robustness section's group tests in family order; None without them."""
    if not groups:
        return None
    from attacks.groups import family_p_values

    return family_p_values(groups)


def _add_robustness(section: dict, groups: dict, *, adjusted: list[float], settings: BiasConfig) -> None:
    """Put the Robustness section's group comparisons, adjusted in this family, into the Bias section:
    ``robustness_disparities``, their count in ``settings.n_robustness_tests``, their findings' statements
    after this section's findings (the "no finding" sentence only when neither has one)."""
    from attacks.groups import mark_findings

    marked = mark_findings(groups, adjusted=adjusted, n_family=section["settings"]["n_tests"],
                           correction=settings.correction, with_bias=True)
    if any(d["finding"] for d in marked["disparities"]):
        bias_found = any(d["finding"] for d in section["disparities"])
        section["findings"] = (section["findings"] if bias_found else []) + marked["findings"]
    section["settings"]["n_robustness_tests"] = marked["family"]["n_robustness_tests"]
    section["definitions"]["robustness_disparities"] = (
        "The Robustness section's comparisons of groups (stratify_by): each group's median perturbation norm against "
        "the most robust group's, as a ratio with an unpaired bootstrap interval. Their p-values (every pair of groups "
        "of each column and norm) are appended to this section's before the correction, one family; a finding needs "
        "the interval below 0 and the adjusted p-value below 1 - confidence.")
    section["robustness_disparities"] = marked["disparities"]


def _domain_shift_p_values(groups: dict | None) -> list[float]:
    """Raw p-values of the Domain Shift section's group tests in family order; empty without them."""
    if not groups:
        return []
    from factsheet.domain_shift.groups import family_p_values

    return family_p_values(groups)


def _add_domain_shift(section: dict, groups: dict, *, adjusted: list[float], settings: BiasConfig) -> None:
    """Put the Domain Shift section's group comparisons, adjusted in this family, into the Bias section:
    ``domain_shift_disparities``, their count in ``settings.n_domain_shift_tests``, their findings' statements
    after this section's and the Robustness section's (the "no finding" sentence only when none has one)."""
    from factsheet.domain_shift.groups import DEFINITION, mark_findings

    marked = mark_findings(groups, adjusted=adjusted, n_family=section["settings"]["n_tests"],
                           correction=settings.correction, with_bias=True)
    if any(d["finding"] for d in marked["comparisons"]):
        others = any(d["finding"] for d in section["disparities"] + (section.get("robustness_disparities") or []))
        section["findings"] = (section["findings"] if others else []) + marked["findings"]
    section["settings"]["n_domain_shift_tests"] = marked["family"]["n_domain_shift_tests"]
    section["definitions"]["domain_shift_disparities"] = (
        "The Domain Shift section's comparisons of groups under each corruption. " + DEFINITION)
    section["domain_shift_disparities"] = marked["comparisons"]


def _not_evaluated(missing: list[str], group_rows: list[dict], settings: BiasConfig) -> list[str]:
    """Why parts were not evaluated: missing columns, then the groups too small to judge."""
    out = list(missing)
    thin = [f"{' & '.join(r['columns'])} = {r['group']} (n = {r['n']})" for r in group_rows
            if r["insufficient_evidence"]]
    if thin:
        out.append(f"insufficient evidence (fewer than {settings.min_group_size} clips): " + "; ".join(thin))
    return out


def _settings_block(columns, *, settings: BiasConfig, bootstrap: MetricsConfig, n_tests: int,
                    n_reported: int) -> dict:
    """The section's ``settings``: the grouping and test rules as applied."""
    return {"columns": list(columns), "intersections": [list(p) for p in settings.intersections],
            "condition_columns": list(settings.condition_columns),
            "exclude_values": list(settings.exclude_values), "min_group_size": settings.min_group_size,
            "min_positives": settings.min_positives, "tolerance": settings.tolerance,
            "correction": {"holm": "Holm (family-wise error rate)",
                           "bh": "Benjamini-Hochberg (false discovery rate)"}[settings.correction],
            "n_bootstrap": bootstrap.bootstrap_resamples, "confidence": bootstrap.confidence, "seed": bootstrap.seed,
            "n_tests": n_tests, "n_reported": n_reported}


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
