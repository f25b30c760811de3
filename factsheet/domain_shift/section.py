"""The Domain Shift section, assembled: corrupt the chosen clips cell by cell, score them, and
report the paired drops, the measured physical effect of each cell and where each corruption
breaks the model."""

from __future__ import annotations

from typing import Callable

import numpy as np

from factsheet.datasets.base import ClassLabel
from factsheet.domain_shift import stats
from factsheet.domain_shift.wording import DEFINITIONS, NATURAL_DEFINITIONS, TITLES, findings, poor_conditions
from factsheet.metrics import finite_or_none


def evaluate_domain_shift(*, waveforms: np.ndarray, labels: np.ndarray, clean_scores: np.ndarray,
                          class_labels: list[ClassLabel], predict: Callable[[np.ndarray], np.ndarray],
                          sample_rate: int, settings, bootstrap, prose: str = "",
                          natural_shift: list[dict] | tuple = ()) -> dict:
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

    Returns
    -------
    dict
        The section (JSON-able); see the schema fragment ``factsheet/schema/sections/domain_shift.json``.
    """
    idx = stats.select_clips(labels, n_clips=settings.n_clips, seed=settings.seed)
    x, y, s0 = waveforms[idx], np.asarray(labels)[idx], clean_scores[idx]
    n_boot, conf = bootstrap.bootstrap_resamples, bootstrap.confidence
    clean = stats.clean_reference(y, s0, n_resamples=n_boot, seed=bootstrap.seed)
    blocks, retained = _run_suite(x, y, idx, clean=clean, predict=predict, sample_rate=sample_rate, settings=settings,
                                  bootstrap=bootstrap)
    section = {
        "status": "evaluated", "text": prose,
        "definitions": {**(DEFINITIONS if blocks or not natural_shift else {}),
                        **(NATURAL_DEFINITIONS if natural_shift else {})},
        "interval_methods": {"corruptions.cells": "percentile", "natural_shift": "percentile"},
        "settings": {"corruptions": list(settings.run_corruptions()),
                     "severities": [int(s) for s in settings.severities],
                     "n_clips_requested": settings.n_clips, "n_clips": int(idx.size), "seed": settings.seed,
                     "tolerance": settings.tolerance, "n_bootstrap": n_boot, "confidence": conf,
                     "bootstrap_seed": bootstrap.seed},
        "clean": {k: finite_or_none(v) for k, v in clean["point"].items()},
        "mean_relative_drop": _mean_or_none([b["mean_relative_drop"] for b in blocks]),
        "corruptions": blocks,
        "per_class": _per_class(class_labels, clean["ap"], retained),
        "natural_shift": list(natural_shift),
    }
    section["findings"] = findings(section)
    section["poor_conditions"] = poor_conditions(section)
    return section


def _run_suite(x: np.ndarray, y: np.ndarray, idx: np.ndarray, *, clean: dict, predict: Callable, sample_rate: int,
               settings, bootstrap) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Every (corruption, severity) cell of the suite on the chosen clips ``x`` (n, n_samples) with labels
    ``y`` (n, n_classes) and ids ``idx`` (n,): the corruption blocks, and per corruption the AP retained
    per class (n_classes,). Empty when the suite is off."""
    from factsheet import corruptions

    blocks, retained = [], {}
    specs = corruptions.validate_suite(settings.suite_entries(), sample_rate=sample_rate) \
        if settings.run_corruptions() else ()
    for spec in specs:  # with any custom levels ([[domain_shift.levels]])
        name = spec.name
        cells = []
        for severity in settings.severities:
            xc, measured = corruptions.corrupt(x, corruption=spec, severity=severity, sample_rate=sample_rate,
                                               seed=settings.seed, clip_ids=idx)
            cell = stats.cell_drops(y, predict(xc), clean=clean, n_resamples=bootstrap.bootstrap_resamples,
                                    seed=bootstrap.seed, confidence=bootstrap.confidence)
            cells.append(dict(cell, severity=int(severity), level=spec.level(severity), measured=_measured(measured)))
        retained[name] = stats.ap_retained(clean["ap"], [c.pop("ap") for c in cells])
        blocks.append(_corruption_block(spec, cells, tolerance=settings.tolerance))
    return blocks, retained


def _measured(info: dict) -> dict:
    """What the corruption achieved (:func:`factsheet.corruptions.corrupt`'s record of its measure), as
    JSON-able summary numbers over the clips."""
    values = np.asarray(info["per_clip"][info["measure"]], dtype=np.float64)
    finite = values[np.isfinite(values)]
    expected = info.get("expected")
    return {"name": info["measure"], "unit": info["measure_unit"],
            "target": None if expected is None else finite_or_none(float(expected)),
            "median": finite_or_none(float(np.median(finite))) if finite.size else None,
            "min": finite_or_none(float(finite.min())) if finite.size else None,
            "max": finite_or_none(float(finite.max())) if finite.size else None,
            "n_clips": int(finite.size)}


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
