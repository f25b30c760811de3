"""Run configuration: TOML validated into dataclasses at the edge.

Every problem (unknown key, wrong type, bad value, missing file) is raised as one
:class:`~factsheet.errors.InputError` naming the file, the key and the value.
Relative paths are resolved against the config file's folder.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from factsheet.errors import InputError, read_input_text


@dataclass(frozen=True)
class ProseConfig:
    """Free text of the FactSheet's descriptive sections (the seed FactSheet's wording by default)."""

    model_name: str = "Audio Classifier"
    overview: str = ""
    purpose: str = ""
    intended_domain: str = ""
    training_data: str = ""
    model_information: str = ""
    inputs_outputs: str = ""
    test_data: str = ""
    bias: str = ""
    robustness: str = ""
    domain_shift: str = ""
    optimal_conditions: str = ""
    poor_conditions: str = ""
    explanation: str = ""
    contact: str = ""


@dataclass(frozen=True)
class ModelConfig:
    """Which model to evaluate, how to adapt it to the harness's contract, and how to wrap it for ART.

    ``source`` names an entry of :data:`factsheet.models.sources.SOURCES`: ``"default"`` (the
    committed demo model), ``"keras"``, ``"savedmodel"``, ``"onnx"``, ``"tflite"``,
    ``"python"``, ``"max"`` or ``"http"``. Inside the harness every model maps a raw waveform
    batch (batch, n_samples) float32 in [-1, 1] to (batch, n_classes) scores; ``output`` says
    what the model's own output holds and ``pooling`` how per-frame outputs become one row.
    """

    source: Literal["default", "keras", "savedmodel", "onnx", "tflite", "python", "max", "http"] = "default"
    path: Path | None = None
    class_labels: Path | None = None
    sample_rate: int = 16000
    clip_seconds: float | None = None
    wrapper: Literal["blackbox", "tensorflow"] = "blackbox"
    batch_size: int = 128
    output: Literal["probabilities", "logits-sigmoid", "logits-softmax"] = "probabilities"
    pooling: Literal["mean", "max"] = "mean"
    output_name: str | None = None
    signature: str = "serving_default"
    threads: int = 0
    entry: str | None = None
    assets: Path | None = None
    url: str | None = None
    timeout_seconds: float = 30.0
    max_retries: int = 4
    concurrency: int = 4
    max_requests: int | None = None

    def check_params(self, bad) -> None:
        """Validate the values together (ART's ``_check_params``): ``bad(field, value, reason)`` raises
        the config's one-line error."""
        if self.sample_rate <= 0:
            bad("model.sample_rate", self.sample_rate, "must be a positive number of Hz")
        if self.clip_seconds is not None and self.clip_seconds <= 0:
            bad("model.clip_seconds", self.clip_seconds, "must be > 0 seconds")
        if self.clip_seconds is not None and self.source in ("default", "max") and self.clip_seconds < 0.975:
            bad("model.clip_seconds", self.clip_seconds, "must be >= 0.975 s (one 0.96 s example of this model)")
        if self.batch_size < 1:
            bad("model.batch_size", self.batch_size, "must be >= 1")
        if self.threads < 0:
            bad("model.threads", self.threads, "must be >= 0 (0: the runtime's default)")
        if self.timeout_seconds <= 0:
            bad("model.timeout_seconds", self.timeout_seconds, "must be > 0")
        if self.max_retries < 0:
            bad("model.max_retries", self.max_retries, "must be >= 0")
        if self.concurrency < 1:
            bad("model.concurrency", self.concurrency, "must be >= 1")
        if self.max_requests is not None and self.max_requests < 1:
            bad("model.max_requests", self.max_requests, "must be >= 1")
        from factsheet.models.sources import check_config

        check_config(self, bad=bad)


CORPORA = ("audioset", "fsd50k", "urbansound8k", "esc50")
SPLITS = {"synthetic": ("train", "eval"), "folder": ("train", "eval"),  # folder: accepted and unused, as before
          "audioset": ("eval", "balanced_train", "unbalanced_train"), "fsd50k": ("eval", "dev")}
N_FOLDS = {"urbansound8k": 10, "esc50": 5}
LABEL_MAPPING_METHODS = ("mid", "name")


@dataclass(frozen=True)
class DatasetConfig:
    """Where the evaluation clips come from.

    ``kind``: ``"synthetic"`` (the built-in generator), ``"folder"`` (WAVs listed in a CSV) or a
    public corpus in its published layout under ``root``: ``"audioset"``, ``"fsd50k"``,
    ``"urbansound8k"``, ``"esc50"`` (:mod:`factsheet.datasets.corpora`). ``label_mapping``
    (``"mid"``, ``"name"`` or a mapping table's path) maps the dataset's vocabulary onto the
    model's classes (:mod:`factsheet.datasets.mapping`); ``on_unreadable`` fails on or skips
    missing and unreadable audio files.
    """

    kind: Literal["synthetic", "folder", "audioset", "fsd50k", "urbansound8k", "esc50"] = "synthetic"
    # synthetic, audioset, fsd50k
    split: str = "eval"
    # synthetic
    n_clips: int = 600
    seed: int = 1
    min_seconds: float = 1.0
    max_seconds: float = 2.0
    # folder (audioset: optional overrides of wav_dir, csv = the segments CSV, class_labels)
    wav_dir: Path | None = None
    csv: Path | None = None
    class_labels: Path | None = None
    file_column: str = "file"
    labels_column: str = "labels"
    label_separator: str = ";"
    # corpora
    root: Path | None = None
    folds: tuple[int, ...] = ()
    file_pattern: str = "{YTID}.wav"
    # every kind but synthetic
    label_mapping: str | None = None
    on_unreadable: Literal["fail", "skip"] = "fail"
    max_skipped_fraction: float = 0.05

    def check_params(self, bad, *, prefix: str = "dataset") -> None:
        """Validate the values together (ART's ``_check_params``): ``bad(field, value, reason)`` raises
        the config's one-line error; fields are named ``<prefix>.<key>`` (``dataset.wav_dir``, or
        ``domain_shift.datasets[0].wav_dir`` for a Domain Shift target)."""
        p = prefix
        if self.kind in SPLITS and self.split not in SPLITS[self.kind]:
            bad(f"{p}.split", self.split, f"must be one of {', '.join(repr(s) for s in SPLITS[self.kind])}")
        if self.kind in N_FOLDS and self.split != "eval":
            bad(f"{p}.split", self.split, f"{self.kind} has no splits: choose folds with {p}.folds")
        if self.kind == "synthetic":
            self._check_synthetic(bad, p)
        elif self.kind == "folder":
            self._check_files(bad, ((f"{p}.wav_dir", self.wav_dir, True), (f"{p}.csv", self.csv, False),
                                    (f"{p}.class_labels", self.class_labels, False)), required=True,
                              missing=f"required when {p}.kind = 'folder'")
        else:
            self._check_corpus(bad, p)
        if self.root is not None and self.kind not in CORPORA:
            bad(f"{p}.root", str(self.root), f"only for kind {', '.join(repr(k) for k in CORPORA)}")
        if self.folds and self.kind not in N_FOLDS:
            bad(f"{p}.folds", list(self.folds), "only for kind 'urbansound8k' or 'esc50'")
        if self.file_pattern != "{YTID}.wav" and self.kind != "audioset":
            bad(f"{p}.file_pattern", self.file_pattern, "only for kind 'audioset'")
        if not 0 <= self.max_skipped_fraction <= 1:
            bad(f"{p}.max_skipped_fraction", self.max_skipped_fraction, "must be between 0 and 1")
        if self.label_mapping is not None and self.label_mapping not in LABEL_MAPPING_METHODS:
            self._check_files(bad, ((f"{p}.label_mapping", Path(self.label_mapping), False),), required=True)

    def _check_synthetic(self, bad, p: str) -> None:
        if self.n_clips < 1:
            bad(f"{p}.n_clips", self.n_clips, "must be >= 1")
        if not 0 < self.min_seconds <= self.max_seconds:
            bad(f"{p}.min_seconds", self.min_seconds,
                f"must be > 0 and <= {p}.max_seconds ({self.max_seconds})")
        if self.label_mapping is not None:
            bad(f"{p}.label_mapping", self.label_mapping, "not for kind 'synthetic' (its classes are the demo model's)")

    def _check_corpus(self, bad, p: str) -> None:
        if self.root is None:
            bad(f"{p}.root", None, f"required when {p}.kind = {self.kind!r} (the corpus folder)")
        self._check_files(bad, ((f"{p}.root", self.root, True),), required=True)
        overrides = ((f"{p}.wav_dir", self.wav_dir, True), (f"{p}.csv", self.csv, False),
                     (f"{p}.class_labels", self.class_labels, False))
        if self.kind != "audioset":
            for where, path, _ in overrides:
                if path is not None:
                    bad(where, str(path), f"not used with kind {self.kind!r} (its published layout under {p}.root "
                                       "is read)")
        self._check_files(bad, overrides, required=False)
        n = N_FOLDS.get(self.kind)
        if n is not None and (any(not 1 <= f <= n for f in self.folds) or len(set(self.folds)) != len(self.folds)):
            bad(f"{p}.folds", list(self.folds), f"must be distinct fold numbers 1..{n}")
        if self.kind == "audioset":
            try:
                name = self.file_pattern.format(YTID="x", start_seconds=0.0, end_seconds=10.0)
            except (KeyError, IndexError, ValueError) as exc:
                bad(f"{p}.file_pattern", self.file_pattern,
                    f"not a valid pattern ({exc.__class__.__name__}: {exc}); fields: YTID, start_seconds, end_seconds")
            if "{YTID" not in self.file_pattern or not name:
                bad(f"{p}.file_pattern", self.file_pattern, "must contain {YTID}")

    @staticmethod
    def _check_files(bad, items, *, required: bool, missing: str = "required") -> None:
        for where, p, want_dir in items:
            if p is None:
                if required:
                    bad(where, None, missing)
                continue
            if not (p.is_dir() if want_dir else p.is_file()):
                bad(where, str(p), "folder not found" if want_dir else "file not found")


@dataclass(frozen=True)
class MetricsConfig:
    """Confidence intervals for the performance metrics."""

    bootstrap_resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0

    def check_params(self, bad) -> None:
        """Validate the values together (ART's ``_check_params``): ``bad(field, value, reason)`` raises
        the config's one-line error."""
        if self.bootstrap_resamples < 0:
            bad("metrics.bootstrap_resamples", self.bootstrap_resamples, "must be >= 0 (0 disables intervals)")
        if not 0 < self.confidence < 1:
            bad("metrics.confidence", self.confidence, "must be strictly between 0 and 1")


@dataclass(frozen=True)
class RobustnessConfig:
    """HopSkipJump (ART) settings: what :func:`attacks.robustness.evaluate_robustness` takes.

    Every field but ``enabled`` and ``workers`` decides the results (they are the attack's
    run key and the FactSheet's ``robustness.settings``); those two only decide whether and how
    the run goes. ``init_candidates``: real clips of another class tried as starting points
    (0: ART's own random search); ``blend_steps``: binary-search steps blending such a clip
    towards the clean one.

    ``stratify_by`` (metadata columns; empty: no stratification) makes the sample give every
    group of those columns at least ``min_per_group`` attacked clips (all of a group's eligible
    clips when it has fewer), values in ``exclude_values`` forming no group; the groups are then
    compared (:mod:`attacks.groups`). The three keys enter the run key and the settings only
    when ``stratify_by`` is set, so configs without it keep their run key and JSON.
    """

    enabled: bool = False
    norms: tuple[str, ...] = ("l2", "linf")
    iterations: int = 10
    k: int = 11
    n_clips: int = 64
    init_eval: int = 100
    max_eval: int = 10000
    init_size: int = 100
    batch_size: int = 512
    seed: int = 0
    max_queries_per_clip: int = 50000
    max_seconds_per_clip: float = 300.0
    mode: Literal["exact", "fast"] = "exact"
    targeted: bool = False
    init_candidates: int = 8
    blend_steps: int = 10
    percentiles: tuple[float, ...] = (5.0, 10.0, 15.0, 25.0, 50.0)
    workers: int = 0
    stratify_by: tuple[str, ...] = ()
    min_per_group: int = 16
    exclude_values: tuple[str, ...] = ("none",)

    #: fields that steer the run, not its results
    RUN_ONLY: typing.ClassVar[tuple[str, ...]] = ("enabled", "workers")
    #: fields that decide the results only when ``stratify_by`` is set (left out otherwise)
    STRATA: typing.ClassVar[tuple[str, ...]] = ("stratify_by", "min_per_group", "exclude_values")

    def results_settings(self) -> dict:
        """JSON-able fields that decide the results (all but :attr:`RUN_ONLY`; the :attr:`STRATA` fields only
        when ``stratify_by`` is set), in declaration order."""
        skip = self.RUN_ONLY + (() if self.stratify_by else self.STRATA)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()
                if k not in skip}

    def check_params(self, bad) -> None:
        """Validate the values together (ART's ``_check_params``): ``bad(field, value, reason)`` raises
        the config's one-line error."""
        for name in ("iterations", "n_clips", "init_eval", "max_eval", "init_size", "batch_size",
                     "max_queries_per_clip"):
            if getattr(self, name) < 1:
                bad(f"robustness.{name}", getattr(self, name), "must be >= 1")
        for norm in self.norms:
            if norm not in ("l2", "linf"):
                bad("robustness.norms", list(self.norms), "each norm must be 'l2' or 'linf'")
        if len(set(self.norms)) != len(self.norms):
            bad("robustness.norms", list(self.norms), "norms must not repeat")
        if self.k < 1:
            bad("robustness.k", self.k, "must be >= 1 (the iteration at which fitted curves are evaluated)")
        if self.max_eval < self.init_eval:
            bad("robustness.max_eval", self.max_eval, f"must be >= robustness.init_eval ({self.init_eval})")
        if self.init_candidates < 0:
            bad("robustness.init_candidates", self.init_candidates, "must be >= 0 (0: ART's random start)")
        if self.blend_steps < 1:
            bad("robustness.blend_steps", self.blend_steps, "must be >= 1")
        if self.max_seconds_per_clip <= 0:
            bad("robustness.max_seconds_per_clip", self.max_seconds_per_clip, "must be > 0")
        if self.workers < 0:
            bad("robustness.workers", self.workers, "must be >= 0 (0: one per core)")
        if any(not 0 < p < 100 for p in self.percentiles) or list(self.percentiles) != sorted(set(self.percentiles)):
            bad("robustness.percentiles", list(self.percentiles),
                "must be increasing, distinct, strictly between 0 and 100")
        if len(set(self.stratify_by)) != len(self.stratify_by):
            bad("robustness.stratify_by", list(self.stratify_by), "columns must not repeat")
        if "clip_id" in self.stratify_by:
            bad("robustness.stratify_by", "clip_id", "not a grouping column (one clip per value)")
        if self.min_per_group < 2:
            bad("robustness.min_per_group", self.min_per_group, "must be >= 2 (a group's bootstrap needs 2 clips)")


@dataclass(frozen=True)
class BiasConfig:
    """Per-group breakdowns: what :func:`factsheet.bias.evaluate_bias` takes. No ``columns``: every text column."""

    enabled: bool = True
    columns: tuple[str, ...] = ()
    intersections: tuple[tuple[str, ...], ...] = ()
    condition_columns: tuple[str, ...] = ("n_events", "snr_bucket")
    exclude_values: tuple[str, ...] = ("none",)
    min_group_size: int = 20
    min_positives: int = 10
    tolerance: float = 0.0
    correction: Literal["holm", "bh"] = "holm"
    worst_classes: int = 3

    def check_params(self, bad) -> None:
        """Validate the values together (ART's ``_check_params``): ``bad(field, value, reason)`` raises
        the config's one-line error."""
        if self.min_group_size < 2:
            bad("bias.min_group_size", self.min_group_size, "must be >= 2")
        if self.min_positives < 1:
            bad("bias.min_positives", self.min_positives, "must be >= 1")
        if self.tolerance < 0:
            bad("bias.tolerance", self.tolerance, "must be >= 0")
        for pair in self.intersections:
            if len(pair) < 2:
                bad("bias.intersections", [list(p) for p in self.intersections],
                    "each intersection names 2 or more columns")


def _default_suite() -> tuple[str, ...]:
    from factsheet.corruptions import default_suite

    return tuple(spec.name for spec in default_suite())


@dataclass(frozen=True)
class CorruptionLevels:
    """Custom levels of one corruption (``[[domain_shift.levels]]``): its ``name`` and five ``levels``
    (severities 1..5) in the corruption's unit; checked against the model's sample rate when the
    run starts (:func:`factsheet.corruptions.validate_suite`)."""

    name: str = ""
    levels: tuple[float, ...] = ()


@dataclass(frozen=True)
class ShiftDatasetConfig(DatasetConfig):
    """A second dataset for the Domain Shift section's natural shift (``[[domain_shift.datasets]]``):
    the keys of ``[dataset]`` (any kind, paths relative to the config file) plus ``name``, how the
    report names it (e.g. ``"field recordings"``)."""

    name: str = ""


@dataclass(frozen=True)
class DomainShiftConfig:
    """The Domain Shift section: what :func:`factsheet.domain_shift.evaluate_domain_shift` takes.

    The corruption suite: ``corruptions = []`` (the default) runs every corruption of the default
    suite (:func:`factsheet.corruptions.default_suite`); ``severities`` picks among the five levels
    of each (1 = mildest); ``n_clips`` clips are chosen class-stratified with ``seed``, which also
    seeds every corruption's random draw; ``tolerance`` is the mAP drop a breaking point must
    exceed with confidence, and the mAP loss a natural shift must exceed for a finding.
    ``suite = false`` turns the corruption suite off (natural shift only). ``datasets``: the
    natural shift's target datasets (``[[domain_shift.datasets]]``), each compared with the
    evaluation dataset. ``group_severity``: the severity at which each corruption's drop is compared
    between the Bias section's groups (does the corruption hurt one group more than another?);
    ``None`` (the default) takes the middle of ``severities``, ``0`` turns the group tests off.
    ``stratify_by`` (metadata columns) makes the chosen clips give every group of those columns at
    least ``min_per_group`` clips (all of a smaller group's), so that their drops can be compared;
    values in ``exclude_values`` form no group.
    """

    enabled: bool = False
    suite: bool = True
    corruptions: tuple[str, ...] = ()
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    n_clips: int = 400
    seed: int = 0
    tolerance: float = 0.02
    datasets: tuple[ShiftDatasetConfig, ...] = ()
    levels: tuple[CorruptionLevels, ...] = ()
    group_severity: int | None = None
    stratify_by: tuple[str, ...] = ()
    min_per_group: int = 20
    exclude_values: tuple[str, ...] = ()

    def tested_severity(self) -> int | None:
        """The severity of the group tests: ``group_severity``, or the middle configured severity;
        ``None`` when the tests are off (``group_severity = 0``) or the suite does not run."""
        if not self.run_corruptions() or self.group_severity == 0:
            return None
        if self.group_severity is None:
            return int(self.severities[(len(self.severities) - 1) // 2])
        return int(self.group_severity)

    def run_corruptions(self) -> tuple[str, ...]:
        """The corruptions to run, in report order (none when ``suite`` is false)."""
        if not self.suite:
            return ()
        return self.corruptions or tuple(_default_suite())

    def suite_entries(self) -> list:
        """:meth:`run_corruptions` as :func:`factsheet.corruptions.validate_suite` takes them: a name,
        or ``{"name", "levels"}`` where ``[[domain_shift.levels]]`` gives custom levels."""
        custom = {c.name: list(c.levels) for c in self.levels}
        return [{"name": n, "levels": custom[n]} if n in custom else n for n in self.run_corruptions()]

    def check_params(self, bad) -> None:
        """Validate the values together (ART's ``_check_params``): ``bad(field, value, reason)`` raises
        the config's one-line error."""
        known = list(_default_suite()) if self.corruptions else []
        for name in self.corruptions:
            if name not in known:
                bad("domain_shift.corruptions", name, f"unknown corruption (known: {', '.join(known)})")
        if len(set(self.corruptions)) != len(self.corruptions):
            bad("domain_shift.corruptions", list(self.corruptions), "corruptions must not repeat")
        if any(not 1 <= s <= 5 for s in self.severities) or list(self.severities) != sorted(set(self.severities)):
            bad("domain_shift.severities", list(self.severities), "must be increasing, distinct, each 1 to 5")
        if self.n_clips < 2:
            bad("domain_shift.n_clips", self.n_clips, "must be >= 2")
        if self.group_severity is not None and self.group_severity != 0 \
                and self.group_severity not in self.severities:
            bad("domain_shift.group_severity", self.group_severity,
                f"must be one of the severities run ({list(self.severities)}), or 0 for no group tests")
        if len(set(self.stratify_by)) != len(self.stratify_by):
            bad("domain_shift.stratify_by", list(self.stratify_by), "columns must not repeat")
        if "clip_id" in self.stratify_by:
            bad("domain_shift.stratify_by", "clip_id", "not a grouping column (one clip per value)")
        if self.min_per_group < 1:
            bad("domain_shift.min_per_group", self.min_per_group, "must be >= 1")
        if not 0 <= self.tolerance < 1:
            bad("domain_shift.tolerance", self.tolerance, "must be >= 0 and < 1 (an mAP difference)")
        for i, c in enumerate(self.levels):
            where = f"domain_shift.levels[{i}]"
            if c.name not in _default_suite():
                bad(f"{where}.name", c.name or None, f"unknown corruption (known: {', '.join(_default_suite())})")
            if c.name not in self.run_corruptions():
                bad(f"{where}.name", c.name, "not among the corruptions this run runs (domain_shift.corruptions)")
            if len(c.levels) != 5:
                bad(f"{where}.levels", list(c.levels), "must list 5 levels (severities 1 to 5)")
        if len({c.name for c in self.levels}) != len(self.levels):
            bad("domain_shift.levels", [c.name for c in self.levels], "a corruption's levels are given twice")
        if self.enabled and not self.suite and not self.datasets:
            bad("domain_shift.suite", False, "nothing to evaluate: the suite is off and no [[domain_shift.datasets]] "
                                             "is given")
        names = []
        for i, d in enumerate(self.datasets):
            where = f"domain_shift.datasets[{i}]"
            if not d.name.strip():
                bad(f"{where}.name", d.name or None, "required: how the report names this dataset")
            if d.name in names:
                bad(f"{where}.name", d.name, "names must not repeat")
            names.append(d.name)
            d.check_params(bad, prefix=where)


@dataclass(frozen=True)
class ExecutionConfig:
    """Where the parallel stages run (:mod:`factsheet.executors`); never changes a result.

    ``executor``: ``"local"`` (in this process), ``"processes"`` (a process pool of
    ``robustness.workers``, the default) or ``"ray"`` (one Ray actor per worker);
    ``ray_address``: ``"local"`` (start Ray on this machine), ``"auto"`` (the cluster this machine
    belongs to), ``"ray://host:port"`` or ``"host:port"``; ``max_retries``: attempts beyond the
    first of a task whose worker (a Ray actor or a pool process) died. ``stages``: which stages map
    their tasks over the executor besides the attack (which always does): ``"domain_shift"`` (the
    corruption cells), ``"explanation"`` (the per-clip occlusion maps); ``["attack"]`` alone keeps
    them in this process; None (the default): both on ``ray``, neither on ``processes`` (on a
    2-core machine a pool's start-up, TensorFlow and the model in every worker, cost those stages
    more than its workers saved; README, "Scaling out on Ray").
    """

    executor: Literal["local", "processes", "ray"] = "processes"
    ray_address: str = "local"
    max_retries: int = 2
    stages: tuple[Literal["attack", "domain_shift", "explanation"], ...] | None = None

    def distributes(self, stage: str, *, executor: str) -> bool:
        """Whether ``stage`` (``"domain_shift"``, ``"explanation"``) maps its tasks over ``executor`` (the kind the
        run uses, which may still run them in this process: ``local``, or a pool of one worker)."""
        if self.stages is None:
            return executor == "ray"
        return stage in self.stages

    def check_params(self, bad) -> None:
        """Validate the values (``bad(field, value, reason)`` raises the config's one-line error)."""
        from factsheet.executors import check_ray_address

        why = check_ray_address(self.ray_address)
        if why is not None:
            bad("execution.ray_address", self.ray_address, why)
        if not 0 <= self.max_retries <= 100:
            bad("execution.max_retries", self.max_retries, "must be between 0 and 100")


@dataclass(frozen=True)
class ExplanationConfig:
    """The Explanation section: what :func:`factsheet.explanation.evaluate_explanation` takes.

    Occlusion over a grid of ``n_bands`` mel-spaced bands x ``n_slices`` time slices, filled with the
    dataset-mean magnitude (``fill = "mean"``) or silence, projected back to a waveform until
    ``attenuation_db`` (at most ``max_passes`` passes). Up to ``n_per_class`` correctly detected
    positives (score >= ``threshold``) per class, drawn with ``seed``; faithfulness (deletion curves
    against ``random_orders`` random orders and the loudest-first order, ``deletion_steps`` steps), the
    other fill and the model-randomisation check on ``n_checked`` of them (one per class first).
    ``examples_per_class`` examples with audio, embedded up to ``audio_budget_kb`` kB in the HTML.
    """

    enabled: bool = False
    n_bands: int = 8
    n_slices: int = 8
    fill: Literal["mean", "silence"] = "mean"
    n_per_class: int = 10
    threshold: float = 0.5
    seed: int = 0
    attenuation_db: float = 15.0
    max_passes: int = 8
    n_checked: int = 20
    random_orders: int = 4
    deletion_steps: int = 8
    examples_per_class: int = 1
    audio_budget_kb: int = 2000
    fill_clips: int = 64

    def check_params(self, bad) -> None:
        """Validate the values together (ART's ``_check_params``): ``bad(field, value, reason)`` raises
        the config's one-line error."""
        for name, low in (("n_bands", 1), ("n_slices", 1), ("n_per_class", 1), ("max_passes", 1), ("n_checked", 2),
                          ("random_orders", 1), ("deletion_steps", 1), ("examples_per_class", 0),
                          ("audio_budget_kb", 0), ("fill_clips", 1), ("seed", 0)):
            if getattr(self, name) < low:
                bad(f"explanation.{name}", getattr(self, name), f"must be >= {low}")
        if self.n_bands * self.n_slices < 2 or self.n_bands > 64 or self.n_slices > 64:
            bad("explanation.n_bands", [self.n_bands, self.n_slices],
                "the grid needs 2 cells or more and at most 64 bands and 64 slices")
        if self.deletion_steps > self.n_bands * self.n_slices:
            bad("explanation.deletion_steps", self.deletion_steps, "must be <= n_bands x n_slices")
        if not 0 < self.threshold < 1:
            bad("explanation.threshold", self.threshold, "must be strictly between 0 and 1 (a score)")
        if not 0 < self.attenuation_db <= 60:
            bad("explanation.attenuation_db", self.attenuation_db, "must be > 0 and <= 60 dB")


@dataclass(frozen=True)
class RunConfig:
    """A whole run: what the CLI's ``--config`` file holds."""

    factsheet: ProseConfig = field(default_factory=ProseConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    robustness: RobustnessConfig = field(default_factory=RobustnessConfig)
    bias: BiasConfig = field(default_factory=BiasConfig)
    domain_shift: DomainShiftConfig = field(default_factory=DomainShiftConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    explanation: ExplanationConfig = field(default_factory=ExplanationConfig)
    path: Path | None = None  # the config file itself (not a TOML key)

    def to_dict(self) -> dict:
        """JSON-able view (paths as strings), used in the FactSheet's provenance."""
        out = {}
        for f in dataclasses.fields(self):
            if f.name == "path":
                continue
            section = getattr(self, f.name)
            out[f.name] = {k: jsonable(v) for k, v in dataclasses.asdict(section).items()}
        return out


def jsonable(v):
    """A config value as JSON: paths as strings, tuples as lists, inside tables too."""
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, (tuple, list)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    return v


SECTIONS = {"factsheet": ProseConfig, "model": ModelConfig, "dataset": DatasetConfig, "metrics": MetricsConfig,
             "robustness": RobustnessConfig, "bias": BiasConfig, "domain_shift": DomainShiftConfig,
             "execution": ExecutionConfig, "explanation": ExplanationConfig}


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a TOML run config.

    Raises
    ------
    InputError
        Unreadable file, TOML syntax error, unknown section or key, wrong type, bad value,
        or a referenced file that does not exist.
    """
    path = Path(path)
    src = str(path)
    text = read_input_text(path, what="config file")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(source=src, reason=f"invalid TOML: {exc}") from None
    return config_from_dict(raw, source=src, base_dir=path.parent)


def config_from_dict(raw: dict, *, source: str, base_dir: Path) -> RunConfig:
    """Validate a parsed TOML mapping into a :class:`RunConfig` (see :func:`load_config`)."""
    sections = {}
    for name, value in raw.items():
        if name not in SECTIONS:
            raise InputError(source=source, field=f"[{name}]", reason=f"unknown section (known: {', '.join(SECTIONS)})")
        if not isinstance(value, dict):
            raise InputError(source=source, field=name, value=value, reason="must be a [section] table")
        sections[name] = _build(SECTIONS[name], value, source=source, section=name, base_dir=base_dir)
    if "dataset" in sections:
        sections["dataset"] = _resolve_mapping_table(sections["dataset"], base_dir=base_dir)
    shift = sections.get("domain_shift")
    if shift is not None and shift.datasets:
        sections["domain_shift"] = dataclasses.replace(
            shift, datasets=tuple(_resolve_mapping_table(d, base_dir=base_dir) for d in shift.datasets))
    model = sections.get("model")
    if model is not None and model.entry and model.entry.rpartition(":")[0].endswith(".py"):
        file, _, name = model.entry.rpartition(":")  # a file entry is relative to the config, like paths
        if not Path(file).is_absolute():
            sections["model"] = dataclasses.replace(model, entry=f"{base_dir / file}:{name}")
    cfg = RunConfig(**sections, path=Path(source))
    _check_semantics(cfg, source=source)
    return cfg


def _resolve_mapping_table(dataset: DatasetConfig, *, base_dir: Path) -> DatasetConfig:
    """A ``label_mapping`` table's path relative to the config file, like every other path."""
    if dataset.label_mapping in (None, *LABEL_MAPPING_METHODS):
        return dataset
    table = Path(dataset.label_mapping)
    return dataset if table.is_absolute() else dataclasses.replace(dataset, label_mapping=str(base_dir / table))


def _build(cls, values: dict, *, source: str, section: str, base_dir: Path):
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        where = f"{section}.{key}"
        if key not in known:
            raise InputError(source=source, field=where, reason=f"unknown key (known: {', '.join(sorted(known))})")
        kwargs[key] = _coerce(hints[key], value, source=source, where=where, base_dir=base_dir)
    return cls(**kwargs)


def _coerce(hint, value, *, source: str, where: str, base_dir: Path):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, source=source, where=where, base_dir=base_dir)
    if origin is Literal:
        if value not in args:
            raise InputError(source=source, field=where, value=value,
                             reason=f"must be one of {', '.join(repr(a) for a in args)}")
        return value
    if origin is tuple and dataclasses.is_dataclass(args[0]):  # an array of tables: [[section.key]]
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise InputError(source=source, field=where, value=value, reason=f"must be tables: [[{where}]]")
        return tuple(_build(args[0], v, source=source, section=f"{where}[{i}]", base_dir=base_dir)
                     for i, v in enumerate(value))
    if origin is tuple:
        if not isinstance(value, list) or not value:
            raise InputError(source=source, field=where, value=value, reason="must be a non-empty list")
        return tuple(_coerce(args[0], v, source=source, where=where, base_dir=base_dir) for v in value)
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise InputError(source=source, field=where, value=value, reason="must be a non-empty path string")
        p = Path(value)
        return p if p.is_absolute() else (base_dir / p)
    if hint is bool:
        if not isinstance(value, bool):
            raise InputError(source=source, field=where, value=value, reason="must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(source=source, field=where, value=value, reason="must be an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(source=source, field=where, value=value, reason="must be a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise InputError(source=source, field=where, value=value, reason="must be a string")
        return value
    raise TypeError(f"unsupported config type {hint!r} for {where}")  # a bug, not bad input


def _check_semantics(cfg: RunConfig, *, source: str) -> None:
    def bad(where, value, reason):
        raise InputError(source=source, field=where, value=value, reason=reason)

    for section in (cfg.model, cfg.dataset, cfg.robustness, cfg.bias, cfg.metrics, cfg.domain_shift,
                    cfg.execution, cfg.explanation):
        section.check_params(bad)
