"""Gating policies: a TOML file of gates, validated into :class:`Policy` (see ``docs/gating.md``)."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from factsheet.errors import InputError, read_input_text
from factsheet.gate.paths import Step, is_number, parse_path

OPS = (">=", ">", "<=", "<", "==", "!=")
ORDERED_OPS = (">=", ">", "<=", "<")
QUANTIFIERS = ("every", "any", "count")
USES = ("value", "lower", "upper")
ON_INSUFFICIENT = ("fail", "pass", "warn")
BASELINE_KINDS = ("max_drop", "max_relative_drop", "max_rise", "max_relative_rise")
DEFAULT_ON_INSUFFICIENT = "fail"

GATE_KEYS = frozenset({"name", "description", "path", "op", "threshold", "quantifier", "use", "min_n",
                       "on_insufficient", "baseline", *BASELINE_KINDS})
SETTINGS_KEYS = frozenset({"on_insufficient"})
TOP_KEYS = frozenset({"description", "settings", "gate"})


@dataclass(frozen=True)
class Gate:
    """One validated gate of a policy (see ``docs/gating.md`` for the keys)."""

    index: int
    name: str
    description: str
    path: str
    steps: tuple[Step, ...]
    op: str | None
    threshold: float | int | str | bool | None
    quantifier: str
    use: str
    min_n: int | None
    on_insufficient: str
    baseline: str | None
    limit: float | None

    @property
    def label(self) -> str:
        """How messages name the gate: ``gate #2 'mAP floor'``."""
        return f"gate #{self.index} {self.name!r}"


@dataclass(frozen=True)
class Policy:
    """A validated policy: its file, description, default ``on_insufficient`` and gates."""

    source: str
    description: str
    on_insufficient: str
    gates: tuple[Gate, ...]

    @property
    def needs_baseline(self) -> bool:
        """Whether any gate compares with a baseline FactSheet."""
        return any(g.baseline for g in self.gates)


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy TOML file.

    Parameters
    ----------
    path : str or Path
        The policy file.

    Returns
    -------
    Policy

    Raises
    ------
    InputError
        Unreadable or malformed TOML, an unknown key, a bad operator or a missing field; the
        message names the file, the gate (number and name) and the field.
    """
    source = str(path)
    text = read_input_text(path, what="policy file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(source=source, reason=f"not valid TOML: {exc}") from None
    return parse_policy(data, source=source)


def parse_policy(data: dict, *, source: str) -> Policy:
    """Validate a policy already parsed from TOML.

    Parameters
    ----------
    data : dict
        The TOML document.
    source : str
        The file name used in error messages.

    Returns
    -------
    Policy
    """
    for key in data:
        if key not in TOP_KEYS:
            raise InputError(source=source, field=key, reason=f"unknown key (allowed: {', '.join(sorted(TOP_KEYS))})")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise InputError(source=source, field="description", value=description, reason="must be a string")
    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        raise InputError(source=source, field="settings", value=settings, reason="must be a table [settings]")
    for key in settings:
        if key not in SETTINGS_KEYS:
            raise InputError(source=source, field=f"settings.{key}",
                             reason=f"unknown key (allowed: {', '.join(sorted(SETTINGS_KEYS))})")
    on_ins = settings.get("on_insufficient", DEFAULT_ON_INSUFFICIENT)
    _check_choice(on_ins, ON_INSUFFICIENT, source=source, field="settings.on_insufficient")
    raw_gates = data.get("gate")
    if raw_gates is None:
        raise InputError(source=source, field="gate", reason="no gates: add at least one [[gate]] table")
    if not isinstance(raw_gates, list) or not raw_gates or not all(isinstance(g, dict) for g in raw_gates):
        raise InputError(source=source, field="gate", reason="must be one or more [[gate]] tables")
    gates = tuple(_parse_gate(g, index=i + 1, source=source, default_on_insufficient=on_ins)
                  for i, g in enumerate(raw_gates))
    seen: set[str] = set()
    for g in gates:
        if g.name in seen:
            raise InputError(source=source, field=f"{g.label}: name", value=g.name, reason="duplicate gate name")
        seen.add(g.name)
    return Policy(source=source, description=description, on_insufficient=on_ins, gates=gates)


def _check_choice(value: object, choices: tuple[str, ...], *, source: str, field: str) -> None:
    if not isinstance(value, str) or value not in choices:
        raise InputError(source=source, field=field, value=value, reason=f"must be one of {', '.join(choices)}")


def _parse_gate(raw: dict, *, index: int, source: str, default_on_insufficient: str) -> Gate:
    """Validate one ``[[gate]]`` table (``index``: 1-based) into a :class:`Gate`; InputError names the gate."""
    name = raw.get("name")
    where = f"gate #{index}" + (f" {name!r}" if isinstance(name, str) else "")

    def err(field: str, value: object = None, reason: str = "") -> InputError:
        return InputError(source=source, field=f"{where}: {field}", value=value, reason=reason)

    for key in raw:
        if key not in GATE_KEYS:
            raise err(key, reason=f"unknown key (allowed: {', '.join(sorted(GATE_KEYS))})")
    if not isinstance(name, str) or not name.strip():
        raise err("name", name, "required: a non-empty string")
    for key in ("description", "path"):
        if key in raw and not isinstance(raw[key], str):
            raise err(key, raw[key], "must be a string")
    if "path" not in raw:
        raise err("path", reason="required: the JSON path of the number to check")
    steps = parse_path(raw["path"], source=source, field=f"{where}: path")

    quantifier = raw.get("quantifier", "every")
    use = raw.get("use", "value")
    on_ins = raw.get("on_insufficient", default_on_insufficient)
    for key, value, choices in (("quantifier", quantifier, QUANTIFIERS), ("use", use, USES),
                                ("on_insufficient", on_ins, ON_INSUFFICIENT)):
        _check_choice(value, choices, source=source, field=f"{where}: {key}")
    min_n = raw.get("min_n")
    if min_n is not None and (not isinstance(min_n, int) or isinstance(min_n, bool) or min_n < 1):
        raise err("min_n", min_n, "must be an integer >= 1")

    baseline = raw.get("baseline")
    if baseline is not None:
        limit = _baseline_limit(raw, baseline=baseline, quantifier=quantifier, err=err)
    else:
        limit = None
        _check_comparison(raw, quantifier=quantifier, use=use, err=err)
    if quantifier == "count":
        _check_count_gate(raw, steps=steps, use=use, err=err)
    return Gate(index=index, name=name.strip(), description=raw.get("description", ""), path=raw["path"],
                steps=steps, op=raw.get("op"), threshold=raw.get("threshold"), quantifier=quantifier, use=use,
                min_n=min_n, on_insufficient=on_ins, baseline=baseline, limit=limit)


def _baseline_limit(raw: dict, *, baseline: object, quantifier: str, err) -> float:
    """The allowed change of a baseline gate (``raw[baseline]``, a number >= 0).

    ``err(field, value, reason)`` builds the gate's InputError. A baseline gate has no ``op`` or
    ``threshold`` (the baseline's value is the threshold), is not a count gate and names only
    its own kind of change.
    """
    if baseline not in BASELINE_KINDS:
        raise err("baseline", baseline, f"must be one of {', '.join(BASELINE_KINDS)}")
    for key in ("op", "threshold"):
        if key in raw:
            raise err(key, raw[key], "not allowed with baseline (the baseline value is the threshold)")
    if quantifier == "count":
        raise err("quantifier", quantifier, "count gates cannot compare with a baseline")
    if baseline not in raw:
        raise err(baseline, reason=f"required with baseline = {baseline!r}: the allowed change")
    limit = raw[baseline]
    if not is_number(limit) or not math.isfinite(limit) or limit < 0:
        raise err(baseline, limit, "must be a number >= 0")
    for other in BASELINE_KINDS:
        if other != baseline and other in raw:
            raise err(other, raw[other], f"does not go with baseline = {baseline!r}")
    return limit


def _check_comparison(raw: dict, *, quantifier: str, use: str, err) -> None:
    """A gate without baseline: ``op`` from :data:`OPS` and a ``threshold`` it can compare with.

    Ordered operators, count gates and interval bounds need a finite number; ``==`` / ``!=`` on a
    value also take a string or a boolean.
    """
    for other in BASELINE_KINDS:
        if other in raw:
            raise err(other, raw[other], f"needs baseline = {other!r}")
    op, threshold = raw.get("op"), raw.get("threshold")
    if op is None:
        raise err("op", reason=f"required: one of {', '.join(OPS)} (or use baseline = ...)")
    if op not in OPS:
        raise err("op", op, f"unknown operator; use one of {', '.join(OPS)}")
    if "threshold" not in raw:
        raise err("threshold", reason="required: the number to compare with")
    if op in ORDERED_OPS or quantifier == "count" or use != "value":
        if not is_number(threshold) or not math.isfinite(threshold):
            raise err("threshold", threshold, f"must be a finite number for op {op!r}")
    elif not (is_number(threshold) or isinstance(threshold, (str, bool))):
        raise err("threshold", threshold, "must be a number, a string or a boolean")


def _check_count_gate(raw: dict, *, steps: tuple[Step, ...], use: str, err) -> None:
    """A count gate counts list elements (the path ends in a list step), on values, up to an integer >= 0."""
    threshold = raw.get("threshold")
    if steps[-1].kind == "key":
        raise err("path", raw["path"], "a count gate counts list elements: end the path with [*] or [key=value]")
    if use != "value":
        raise err("use", use, "a count gate has no confidence interval")
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 0:
        raise err("threshold", threshold, "a count gate needs an integer threshold >= 0")
