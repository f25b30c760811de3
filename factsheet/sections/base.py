"""The shape every FactSheet section shares: its declaration, what its evaluator is given, and
what it returns.

A :class:`Section` is one top-level field of the FactSheet JSON. It declares, once, everything
the rest of the harness needs to know about it: the report headings it is shown under (each a
template partial ``reports/templates/sections/<heading>.{md,html}.j2``), its evaluator, the
earlier sections that evaluator reads, its config-given prose fields (the completeness check),
the column keys of its tables (the glossary), its compare hook and its JSON Schema fragment
(``factsheet/schema/sections/<module>.json``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

UNITLESS = "unitless, 0 to 1"
PROBABILITY = "probability, 0 to 1"
SD = "standard deviations"
PCM = "16-bit PCM units: input units x 32768"


def term(label: str, unit: str, definition: str) -> dict:
    """One column key: ``{"label", "unit", "definition"}``."""
    return {"label": label, "unit": unit, "definition": definition}


def percent(confidence) -> str:
    """``0.95`` -> ``"95%"``."""
    return f"{round(float(confidence) * 100)}%"


def fmt(value, digits: int = 3) -> str:
    """A number of the report's Summary; ``None`` (null in the JSON) as ``"undefined"``."""
    return "undefined" if value is None else f"{value:.{digits}f}"


def fmt_interval(interval: dict | None, digits: int = 3) -> str:
    """``"0.80 to 0.83"`` from ``{"low", "high"}``, or ``"undefined"``."""
    if not interval or interval.get("low") is None or interval.get("high") is None:
        return "undefined"
    return f"{interval['low']:.{digits}f} to {interval['high']:.{digits}f}"


@dataclass(frozen=True)
class Heading:
    """A heading of the report: anchor id (also the template partial's name), title, and its place
    in the report (the seed FactSheet's order; smaller comes first)."""

    key: str
    title: str
    position: int


@dataclass
class RunContext:
    """What an evaluator may read: the run's inputs and the sections evaluated before it.

    Attributes
    ----------
    cfg : factsheet.config.RunConfig
    model : factsheet.models.sources.base.LoadedModel
    dataset : factsheet.datasets.base.AudioDataset
    waveforms : ndarray, shape (n_clips, n_samples), float32
        Clips fitted to the model's input length.
    scores : ndarray, shape (n_clips, n_classes), float32
        The model's scores of ``waveforms`` for the dataset's classes (``dataset.class_labels``:
        with a label mapping, the mapped model columns ``dataset.model_columns``).
    model_scores : ndarray, shape (n_clips, n_model_classes), float32
        Every output of the model: what works on the model's own decision (the attack) reads these.
    estimator : ART estimator
        The wrapper ``scores`` came from.
    length_counts : dict
        How many clips were repeated, cut or left as they were (:func:`fit_length`).
    out_dir : Path
        Where the attack run store lives (resume).
    workers : int
        Worker processes for sections that fan out.
    executor : factsheet.executors.ExecutorSettings
        Where sections that fan out run their tasks (``[execution]`` with ``workers``).
    progress : bool
        Print progress to stderr.
    results : dict
        Field -> section object of the sections evaluated so far.
    """

    cfg: Any
    model: Any
    dataset: Any
    waveforms: np.ndarray
    scores: np.ndarray
    model_scores: np.ndarray
    estimator: Any
    length_counts: dict
    out_dir: Path
    workers: int
    progress: bool = False
    results: dict = field(default_factory=dict)
    executor: Any = None


@dataclass
class SectionResult:
    """What every evaluator returns.

    Attributes
    ----------
    section : object
        The typed section (one of the section's ``types``) or a ``str`` for a text field.
    plots : dict of str to str
        SVG text by plot name (written to ``plots/<name>.svg``).
    timings : dict of str to float
        Seconds by stage name (``provenance.timings_s``).
    provenance : dict
        Run records that belong in ``provenance`` (e.g. ``run_store``).
    audio : dict of str to bytes
        WAV files by path relative to the report (``audio/<name>.wav``): written beside it, linked from
        the Markdown and embedded as ``data:`` audio in the HTML.
    """

    section: Any
    plots: dict[str, str] = field(default_factory=dict)
    audio: dict[str, bytes] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Section:
    """One top-level FactSheet field, declared once (see the module docstring).

    Attributes
    ----------
    field : str or None
        Its key in the FactSheet JSON; None for a heading of the report that only lays out other
        sections' numbers (the Summary).
    headings : tuple of Heading
        Where the report shows it.
    evaluate : callable, optional
        ``evaluate(ctx: RunContext) -> SectionResult``; ``None`` for a field the pipeline fills
        itself (provenance).
    needs : tuple of str
        Fields whose results ``evaluate`` reads from ``ctx.results`` (evaluated first).
    prose : tuple of tuple of str
        JSON paths of the config-given prose fields it holds, for the completeness check.
    glossary : callable, optional
        ``glossary(doc: dict) -> {table_id: [term, ...]}``: the column keys of its tables.
    compare : callable, optional
        ``compare(old: dict, new: dict) -> dict`` of the parts ``factsheet compare`` reports;
        called only when the section is evaluated in both FactSheets.
    schema : str or None
        Name of its JSON Schema fragment in ``factsheet/schema/sections/`` (without ``.json``).
    required : bool
        Whether every FactSheet has the field (False: only some runs write it, e.g. ``gate``).
    summary : callable, optional
        ``summary(doc: dict) -> dict | None``: the section's lines in the report's Summary,
        ``{"title", "headline": [str], "n_findings": int | None, "findings": [str]}``; None when
        the section was not evaluated.
    timed : bool
        Record the evaluator's wall-clock seconds under ``provenance.timings_s[field]`` when the
        section comes out evaluated (and the evaluator reported no timings of its own).
    compare_title : str, optional
        How ``factsheet compare`` names the section when it cannot be compared.
    check : callable, optional
        ``check(cfg, model) -> None``: called once the model is loaded and before anything is
        predicted, to refuse settings that depend on the model (one-line InputError).
    check_data : callable, optional
        ``check_data(cfg, dataset) -> None``: called once the dataset is loaded and before anything
        is predicted, to refuse settings that depend on the data (a column the metadata lacks).
    finish : callable, optional
        ``finish(ctx: RunContext) -> section``: called once every section is evaluated, for the
        fields that depend on a section evaluated later (the Robustness section's group tests are
        corrected in the Bias section's family, and the Bias section reads the Robustness section);
        it returns the section to keep. It reads the other sections' results, never changes them.
    """

    field: str | None
    headings: tuple[Heading, ...]
    schema: str | None
    evaluate: Callable[[RunContext], SectionResult] | None = None
    needs: tuple[str, ...] = ()
    prose: tuple[tuple[str, ...], ...] = ()
    glossary: Callable[[dict], dict] | None = None
    compare: Callable[..., dict] | None = None
    compare_title: str | None = None
    timed: bool = False
    required: bool = True
    summary: Callable[[dict], dict | None] | None = None
    check: Callable[[Any, Any], None] | None = None
    check_data: Callable[[Any, Any], None] | None = None
    finish: Callable[[RunContext], Any] | None = None
