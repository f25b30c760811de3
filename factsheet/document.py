"""The FactSheet document: a dataclass tree, serialised to JSON (the source of truth).

Sections follow the seed FactSheet (IBM MAX Audio Classifier) in order. A section that
this run did not compute is a :class:`TextSection` with ``status = "not_evaluated"`` and
the reason, never blank. The JSON Schema for ``SCHEMA_VERSION`` ships in
``factsheet/schema/`` and every written FactSheet is validated against it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from factsheet.errors import InputError, read_input_text

SCHEMA_VERSION = "1.2.0"
NOT_EVALUATED = "Not evaluated in this run."


@dataclass
class TextSection:
    """A section that is prose only in this run.

    ``status`` is ``"not_evaluated"`` (with ``reason``) or ``"stated"`` (prose given in the
    config, not measured).
    """

    status: str
    text: str
    reason: str | None = None


@dataclass
class ModelSection:
    name: str
    overview: str
    purpose: str
    intended_domain: str
    information: str
    inputs_outputs: str
    source: str
    file: str
    sha256: str | None
    sample_rate: int
    clip_samples: int
    clip_seconds: float
    n_classes: int
    n_parameters: int | None
    estimator: dict
    runtime: dict | None = None


@dataclass
class TrainingDataSection:
    text: str
    card: dict | None


@dataclass
class DatasetSection:
    """The evaluation ("Test data") set."""

    name: str
    kind: str
    text: str
    n_clips: int
    sha256: str
    sample_rate: int
    length_policy: dict
    card: dict
    class_labels: list[dict]
    single_label: bool
    label_mapping: dict | None = None  # how the dataset's labels were mapped onto the model's classes
    unreadable: dict | None = None  # the on_unreadable policy and the audio files skipped


@dataclass
class Interval:
    """A bootstrap interval (BCa, see ``interval_methods``); ``n_used`` replicates had a finite value."""

    low: float | None
    high: float | None
    n_used: int


@dataclass
class ClassPerformance:
    label: str
    index: int
    category: str | None
    support: int
    evaluable: bool
    ap: float | None
    auc: float | None
    d_prime: float | None


@dataclass
class PerformanceSection:
    status: str
    definitions: dict[str, str]
    interval_methods: dict[str, str]
    n_clips: int
    mAP: float | None
    mean_auc: float | None
    d_prime: float | None
    mean_class_d_prime: float | None
    confidence: float
    n_bootstrap: int
    ci: dict[str, Interval | None]
    n_classes_evaluated: int
    n_classes_excluded: int
    excluded_classes: list[str]
    per_class: list[ClassPerformance]
    single_label: dict | None = None


@dataclass
class RobustnessSection:
    """HopSkipJump results; ``hopskipjump`` maps ``"l2"`` / ``"linf"`` to per-norm blocks
    (see :func:`attacks.summary.summarise_norm`)."""

    status: str
    definitions: dict
    interval_methods: dict  # field (path in the section) -> interval method
    settings: dict
    hopskipjump: dict
    groups: dict | None = None  # with [robustness] stratify_by: the groups' sample, stats and disparities
    failed_tasks: list | None = None  # tasks whose worker died on every attempt (ray executor); None: none did


@dataclass
class BiasSection:
    """Per-class and per-group breakdowns, disparities and findings (see :mod:`factsheet.bias`)."""

    status: str
    text: str
    definitions: dict
    interval_methods: dict  # field (path in the section) -> interval method
    settings: dict
    findings: list
    not_evaluated: list
    per_class: list
    per_category: list
    groups: list
    class_groups: list
    disparities: list
    robustness_disparities: list | None = None  # the Robustness section's group comparisons, in this family
    domain_shift_disparities: list | None = None  # the Domain Shift section's group comparisons, in this family


@dataclass
class DomainShiftSection:
    """The corruption suite's results (see :mod:`factsheet.domain_shift`): per corruption and severity the
    metrics with their paired drops and what the corruption achieved; breaking points; the natural
    shift to each second dataset (``natural_shift``, empty when none is configured); findings."""

    status: str
    text: str
    definitions: dict
    interval_methods: dict  # field (path in the section) -> interval method
    settings: dict
    clean: dict
    mean_relative_drop: float | None
    corruptions: list
    per_class: list
    natural_shift: list
    findings: list
    poor_conditions: list
    groups: dict | None = None  # each corruption's drop compared between groups (the Bias section's family)


@dataclass
class ExplanationSection:
    """Occlusion maps and their tests (see :mod:`factsheet.explanation`)."""

    status: str
    text: str
    definitions: dict
    settings: dict
    grid: dict
    clips: dict
    attenuation: dict
    per_class: list
    examples: list
    faithfulness: dict
    fill_sensitivity: dict
    sanity: dict
    localisation: dict
    cost: dict
    findings: list
    interval_methods: dict | None = None  # field -> interval method (metrics.INTERVAL_METHODS)


@dataclass
class ConditionsSection:
    """Optimal or Poor conditions generated from measured slices, with the configured prose."""

    status: str
    text: str
    statements: list
    slices: list


@dataclass
class Provenance:
    tool: str
    tool_version: str
    schema_version: str
    git_commit: str | None
    git_dirty: bool | None
    config_path: str | None
    config_sha256: str | None
    config: dict
    seeds: dict
    model_sha256: str | None
    dataset_sha256: str
    libraries: dict
    platform: str
    started_at: str
    finished_at: str
    timings_s: dict
    run_store: dict | None = None
    model_requests: dict | None = None


@dataclass
class FactSheet:
    """The document: title, then one entry per section, then the files written beside it.

    ``sections`` maps each FactSheet field (``model``, ``training_data``, ``dataset``,
    ``performance``, ...) to its typed section, in the order :mod:`factsheet.sections` declares
    them, which is the order of the JSON. The JSON Schema of ``schema_version`` types each one;
    each is also an attribute (``sheet.performance``).
    """

    schema_version: str
    title: str
    sections: dict[str, Any]
    outputs: dict = field(default_factory=dict)

    def __getattr__(self, name: str):
        """A section by its field name: ``sheet.performance``, ``sheet.provenance``."""
        sections = self.__dict__.get("sections")
        if sections is not None and name in sections:
            return sections[name]
        raise AttributeError(f"FactSheet has no section or attribute {name!r}")

    def to_dict(self) -> dict:
        """JSON-able dict; non-finite floats become ``null`` (JSON has no NaN or infinity)."""
        body = {k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for k, v in self.sections.items()}
        return _finite({"schema_version": self.schema_version, "title": self.title, **body,
                        "outputs": dict(self.outputs)})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, allow_nan=False) + "\n"


def not_evaluated(text: str, *, why: str | None = None) -> TextSection:
    """A section this run did not compute, with the configured prose kept beside the reason.

    The reason always reads "Not evaluated in this run." followed by ``why`` when given.
    """
    return TextSection(status="not_evaluated", text=text, reason=NOT_EVALUATED + (f" {why}" if why else ""))


def _finite(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return _finite(obj.item())
    return obj


def load_schema() -> dict:
    """The JSON Schema of this ``SCHEMA_VERSION`` (shipped in the package)."""
    text = resources.files("factsheet.schema").joinpath(f"factsheet-{SCHEMA_VERSION}.schema.json").read_text("utf-8")
    return json.loads(text)


def validate(doc: dict) -> None:
    """Raise ``jsonschema.ValidationError`` if ``doc`` does not match the schema."""
    import jsonschema

    jsonschema.Draft202012Validator(load_schema()).validate(doc)


def check_against_schema(doc: dict, *, source: str) -> None:
    """Raise :class:`InputError` naming the first offending field if ``doc`` does not match the schema."""
    import jsonschema

    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(load_schema()).iter_errors(doc))
    if error is None:
        return
    while error.context:  # inside oneOf / anyOf: the deepest reason names the field
        error = max(error.context, key=lambda e: len(e.absolute_path))
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    raise InputError(source=source, field=where, reason=f"does not match the schema: {error.message[:160]}")


def load_factsheet(path: str | Path) -> dict:
    """Read a FactSheet JSON file and check that it is one this version understands.

    Parameters
    ----------
    path : str or Path
        The ``factsheet.json`` file.

    Returns
    -------
    dict

    Raises
    ------
    InputError
        Unreadable file, invalid JSON, or ``schema_version`` missing or of another major version.
    """
    source = str(path)
    text = read_input_text(path, what="FactSheet file")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(source=source, reason=f"not valid JSON (line {exc.lineno}, column {exc.colno}: "
                                               f"{exc.msg})") from None
    if not isinstance(doc, dict) or "schema_version" not in doc:
        raise InputError(source=source, field="schema_version", reason="missing: not a FactSheet")
    version = doc["schema_version"]
    major = SCHEMA_VERSION.split(".")[0]
    if not isinstance(version, str) or not re.fullmatch(r"\d+\.\d+\.\d+", version) or version.split(".")[0] != major:
        raise InputError(source=source, field="schema_version", value=version,
                         reason=f"unsupported FactSheet schema version (this tool reads {major}.x.x)")
    return doc
