"""The Domain Shift section, assembled: corrupt the chosen clips cell by cell, score them, and
report the paired drops, the measured physical effect of each cell and where each corruption
breaks the model."""

from __future__ import annotations

from typing import Callable

import numpy as np

from factsheet.datasets.base import ClassLabel
from factsheet.domain_shift import stats
from factsheet.domain_shift.cells import CellResult, CellTask, score_cell
from factsheet.domain_shift.wording import DEFINITIONS, NATURAL_DEFINITIONS, TITLES, findings, poor_conditions
from factsheet.metrics import finite_or_none

#: ``run_cells(tasks, *, clips, clip_ids, seed, sample_rate) -> {(corruption, severity): CellResult}``
CellRunner = Callable[..., dict[tuple[str, int], CellResult]]


def evaluate_domain_shift(*, waveforms: np.ndarray, labels: np.ndarray, clean_scores: np.ndarray,
                          class_labels: list[ClassLabel], predict: Callable[[np.ndarray], np.ndarray],
                          sample_rate: int, settings, bootstrap, prose: str = "",
                          natural_shift: list[dict] | tuple = (), metadata=None, bias=None,
                          run_cells: CellRunner | None = None) -> dict:
    """Compute the Domain Shift section.

    Parameters
    ----------
    waveforms : ndarray, shape (n_clips, n_samples), float32
        The evaluation clips at the model's input length, in [-1, 1].
    labels : ndarray, shape (n_clips, n_classes)
        0/1 multi-hot labels.
    clean_scores : ndarray, shape (n_clips, n_classes)
        The model's scores of ``waveforms``.
    class_labels : list of ClassLabel
    predict : callable
        ``predict(waveforms (m, n_samples) float32) -> (m, n_classes)`` scores of the model.
    sample_rate : int
        Hz of ``waveforms``.
    settings : factsheet.config.DomainShiftConfig
        Which corruptions and severities, how many clips, the seed and the tolerance.
    bootstrap : factsheet.config.MetricsConfig
        Resamples, confidence and seed of the paired intervals.
    prose : str
        The config's Domain Shift text, kept beside the results.
    natural_shift : list of dict
        The natural shift's targets, computed already (:mod:`factsheet.domain_shift.natural`; the
        section glue :mod:`factsheet.sections.domain_shift` loads and scores them); their findings and
        Poor Conditions join the suite's.
    metadata : DataFrame, optional
        The evaluation clips' metadata (one row per clip of ``waveforms``); with ``bias``, each
        corruption's drop is compared between groups (:mod:`factsheet.domain_shift.groups`).
    bias : factsheet.config.BiasConfig, optional
        The groups and test rules of those comparisons (the Bias section's).
    run_cells : callable, optional
        ``run_cells(tasks, *, clips, clip_ids, seed, sample_rate) -> {(corruption, severity): CellResult}``:
        scores every :class:`~factsheet.domain_shift.cells.CellTask` elsewhere (an executor's workers, which
        load the model themselves); None: each cell is corrupted and scored here with ``predict``, one after
        another. The section is the same either way.

    Returns
    -------
    dict
        The section (JSON-able); see the schema fragment ``factsheet/schema/sections/domain_shift.json``.
    """
    first = _group_minimum(metadata, settings=settings) if settings.stratify_by else None
    idx = stats.select_clips(labels, n_clips=settings.n_clips, seed=settings.seed, group_first=first)
    x, y, s0 = waveforms[idx], np.asarray(labels)[idx], clean_scores[idx]
    n_boot, conf = bootstrap.bootstrap_resamples, bootstrap.confidence
    clean = stats.clean_reference(y, s0, n_resamples=n_boot, seed=bootstrap.seed)
    severity = settings.tested_severity() if metadata is not None and bias is not None else None
    blocks, retained, at_severity = _run_suite(x, y, idx, clean=clean, predict=predict, sample_rate=sample_rate,
                                               settings=settings, bootstrap=bootstrap, keep_severity=severity,
                                               run_cells=run_cells)
    section = {
        "status": "evaluated", "text": prose,
        "definitions": {**(DEFINITIONS if blocks or not natural_shift else {}),
                        **(NATURAL_DEFINITIONS if natural_shift else {})},
        "interval_methods": {"corruptions.cells": "bca", "natural_shift": "bca_expanded",
                             "groups": "percentile"},
        "settings": {"corruptions": list(settings.run_corruptions()),
                     "severities": [int(s) for s in settings.severities],
                     "n_clips_requested": settings.n_clips, "n_clips": int(idx.size), "seed": settings.seed,
                     "stratify_by": list(settings.stratify_by), "min_per_group": settings.min_per_group,
                     "exclude_values": list(settings.exclude_values),
                     "tolerance": settings.tolerance, "n_bootstrap": n_boot, "confidence": conf,
                     "bootstrap_seed": bootstrap.seed},
        "clean": {k: finite_or_none(v) for k, v in clean["point"].items()},
        "mean_relative_drop": _mean_or_none([b["mean_relative_drop"] for b in blocks]),
        "corruptions": blocks,
        "per_class": _per_class(class_labels, clean["ap"], retained),
        "natural_shift": list(natural_shift),
        "groups": None,
    }
    if at_severity:
        from factsheet.domain_shift.groups import adjust_alone, group_drops

        rows = metadata.iloc[idx].reset_index(drop=True)
        block = group_drops(y=y, clean_scores=s0, corrupted=at_severity, metadata=rows, bias=bias, bootstrap=bootstrap,
                            severity=severity)
        section["groups"] = adjust_alone(block, correction=bias.correction)  # the Bias section's family: its finish
    section["findings"] = findings(section)
    section["poor_conditions"] = poor_conditions(section)
    return section


def _group_minimum(metadata, *, settings) -> list[int]:
    """The rows that give every group of ``settings.stratify_by`` its ``min_per_group`` clips (all of a
    smaller group's), drawn with ``settings.seed`` (:func:`attacks.runner.group_minimum`).

    Raises
    ------
    attacks.runner.StrataError
        A column is not in the metadata, or the minimums take more than ``n_clips`` clips.
    """
    from attacks.runner import Strata, StrataError, group_minimum

    for column in settings.stratify_by:
        if metadata is None or column not in metadata.columns:
            known = ", ".join(c for c in ([] if metadata is None else metadata.columns) if c != "clip_id")
            raise StrataError(field="domain_shift.stratify_by", value=column,
                              reason=f"not a column of the dataset's metadata (columns: {known or 'none'})")
    strata = Strata(columns={c: metadata[c].astype(str).to_numpy() for c in settings.stratify_by},
                    min_per_group=settings.min_per_group, exclude_values=tuple(settings.exclude_values))
    rows = group_minimum(correct=np.ones(len(metadata), bool), strata=strata, seed=settings.seed)
    if len(rows) > settings.n_clips:
        raise StrataError(field="domain_shift.n_clips", value=settings.n_clips,
                          reason=f"too small to give every group of domain_shift.stratify_by "
                                 f"({', '.join(settings.stratify_by)}) domain_shift.min_per_group = "
                                 f"{settings.min_per_group} clips: that takes {len(rows)} clips")
    return rows


def _run_suite(x: np.ndarray, y: np.ndarray, idx: np.ndarray, *, clean: dict, predict: Callable, sample_rate: int,
               settings, bootstrap, keep_severity: int | None = None,
               run_cells: CellRunner | None = None) -> tuple[list[dict], dict[str, np.ndarray], list]:
    """Every (corruption, severity) cell of the suite on the chosen clips ``x`` (n, n_samples) with labels
    ``y`` (n, n_classes) and ids ``idx`` (n,): the corruption blocks, per corruption the AP retained
    per class (n_classes,), and the scores at ``keep_severity`` (one
    :class:`~factsheet.domain_shift.groups.CorruptedScores` per corruption). Empty when the suite is off.

    The cells are scored by ``run_cells`` when given (all at once, on an executor), else here one by one;
    the statistics are computed here in suite order either way."""
    from factsheet import corruptions
    from factsheet.domain_shift.groups import CorruptedScores

    blocks, retained, kept = [], {}, []
    specs = corruptions.validate_suite(settings.suite_entries(), sample_rate=sample_rate) \
        if settings.run_corruptions() else ()
    tasks = [CellTask(corruption=spec, severity=int(s)) for spec in specs for s in settings.severities]
    scored = None
    if run_cells is not None and tasks:
        scored = run_cells(tasks, clips=x, clip_ids=idx, seed=settings.seed, sample_rate=sample_rate)
    for spec in specs:  # with any custom levels ([[domain_shift.levels]])
        name = spec.name
        cells = []
        for severity in settings.severities:
            task = CellTask(corruption=spec, severity=int(severity))
            result = scored[task.key] if scored is not None else \
                score_cell(clips=x, clip_ids=idx, task=task, sample_rate=sample_rate, seed=settings.seed,
                           predict=predict)
            cell = stats.cell_drops(y, result.scores, clean=clean, n_resamples=bootstrap.bootstrap_resamples,
                                    seed=bootstrap.seed, confidence=bootstrap.confidence)
            if severity == keep_severity:
                kept.append(CorruptedScores(name=name, title=TITLES[name], level=spec.level(severity), unit=spec.unit,
                                            scores=result.scores))
            cells.append(dict(cell, severity=int(severity), level=spec.level(severity), measured=result.measured))
        retained[name] = stats.ap_retained(clean["ap"], [c.pop("ap") for c in cells])
        blocks.append(_corruption_block(spec, cells, tolerance=settings.tolerance))
    return blocks, retained, kept


def _corruption_block(spec, cells: list[dict], *, tolerance: float) -> dict:
    broken = stats.breaking_point(cells, tolerance=tolerance)
    return {"name": spec.name, "title": TITLES[spec.name], "unit": spec.unit, "definition": spec.definition,
            "check": spec.check, "levels": list(spec.levels), "mean_relative_drop": stats.mean_relative_drop(cells),
            "breaking_point": None if broken is None else {"severity": broken["severity"], "level": broken["level"]},
            "cells": cells}


def _per_class(class_labels: list[ClassLabel], clean_ap: np.ndarray, retained: dict[str, np.ndarray]) -> list[dict]:
    return [{"label": c.display_name, "ap_clean": finite_or_none(float(clean_ap[j])),
             "ap_retained": {name: finite_or_none(float(r[j])) for name, r in retained.items()}}
            for j, c in enumerate(class_labels)]


def _mean_or_none(values: list) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return float(np.mean(values))
