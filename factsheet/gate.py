"""CI gating: check a FactSheet against a policy of thresholds (``factsheet gate``).

A policy (TOML) is a list of gates. Each gate reads numbers from the FactSheet JSON through a
small path language and compares them with a threshold, or with the same numbers in a baseline
FactSheet. The outcome of a gate is ``pass``, ``fail`` or ``insufficient`` (the evidence is too
thin to decide); the policy says whether ``insufficient`` fails the build, passes, or warns.

Path language (see ``docs/gating.md``)::

    performance.mAP                                   dotted keys
    performance.per_class[*].auc                      [*]: every element of a list
    robustness.hopskipjump.l2.percentiles[percentile=50].snr_db
                                                      [key=value]: elements whose key equals value
    bias.groups[columns=voice_type][*].metrics.mean_auc.value
    bias.disparities[columns=voice_type][finding=true]      filters chain
    performance.per_class[support>=20].ap             also !=, <, <=, >, >= (numbers)

A path (or a filter) that matches nothing is an input error, never a pass; ``null`` values are
insufficient evidence. Exit codes of the command: 0 every gate passed (or only warned), 1 a
gate failed, 2 bad input (one line on stderr naming the file, the gate and the field).
"""

from __future__ import annotations

import json
import math
import re
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from factsheet.document import load_factsheet  # noqa: F401  (re-exported for callers of gate)
from factsheet.errors import InputError, read_input_text

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

#: keys giving the sample size of a row (searched from the number upwards, nearest first)
N_KEYS = ("n", "n_attacked", "support", "n_clips")
#: keys that name a list element in messages and pair elements with the baseline
IDENTITY_KEYS = ("norm", "metric", "class", "column", "columns", "group", "reference", "label", "percentile",
                 "clip_id")
#: keys whose interval is the row's ``ci_low`` / ``ci_high``
PRIMARY_KEYS = ("value", "difference")

_KEY_RE = re.compile(r"[^.\[\]=!<>\"'\s]+")
_FILTER_RE = re.compile(r"([^.\[\]=!<>\"'\s]+)\s*(!=|<=|>=|=|<|>)(.*)\Z", re.S)


# --------------------------------------------------------------------------------------------
# The policy
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One step of a path: ``key`` (``.name``), ``star`` (``[*]``) or ``filter`` (``[key=value]``).

    For a filter, ``raw`` is the value as written (without quotes) and ``quoted`` whether it was
    quoted (a quoted value is always a string).
    """

    kind: str
    key: str | None = None
    raw: str | None = None
    quoted: bool = False
    op: str = "="

    @property
    def text(self) -> str:
        """The step as written (normalised)."""
        if self.kind == "key":
            return f".{self.key}"
        if self.kind == "star":
            return "[*]"
        return f"[{self.key}{self.op}{self.raw!r}]" if self.quoted else f"[{self.key}{self.op}{self.raw}]"


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


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_gate(raw: dict, *, index: int, source: str, default_on_insufficient: str) -> Gate:
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
    limit = None
    op = raw.get("op")
    threshold = raw.get("threshold")
    if baseline is not None:
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
        if not _is_number(limit) or not math.isfinite(limit) or limit < 0:
            raise err(baseline, limit, "must be a number >= 0")
        for other in BASELINE_KINDS:
            if other != baseline and other in raw:
                raise err(other, raw[other], f"does not go with baseline = {baseline!r}")
    else:
        for other in BASELINE_KINDS:
            if other in raw:
                raise err(other, raw[other], f"needs baseline = {other!r}")
        if op is None:
            raise err("op", reason=f"required: one of {', '.join(OPS)} (or use baseline = ...)")
        if op not in OPS:
            raise err("op", op, f"unknown operator; use one of {', '.join(OPS)}")
        if "threshold" not in raw:
            raise err("threshold", reason="required: the number to compare with")
        if op in ORDERED_OPS or quantifier == "count" or use != "value":
            if not _is_number(threshold) or not math.isfinite(threshold):
                raise err("threshold", threshold, f"must be a finite number for op {op!r}")
        elif not (_is_number(threshold) or isinstance(threshold, (str, bool))):
            raise err("threshold", threshold, "must be a number, a string or a boolean")
    if quantifier == "count":
        if steps[-1].kind == "key":
            raise err("path", raw["path"], "a count gate counts list elements: end the path with [*] or [key=value]")
        if use != "value":
            raise err("use", use, "a count gate has no confidence interval")
        if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 0:
            raise err("threshold", threshold, "a count gate needs an integer threshold >= 0")
    return Gate(index=index, name=name.strip(), description=raw.get("description", ""), path=raw["path"],
                steps=steps, op=op, threshold=threshold, quantifier=quantifier, use=use, min_n=min_n,
                on_insufficient=on_ins, baseline=baseline, limit=limit)


def parse_path(text: str, *, source: str = "path", field: str = "") -> tuple[Step, ...]:
    """Parse the path language into steps.

    Parameters
    ----------
    text : str
        E.g. ``"bias.groups[columns=voice_type][*].metrics.mean_auc.value"``.
    source, field : str
        Where the path came from, for error messages.

    Returns
    -------
    tuple of Step

    Raises
    ------
    InputError
        Empty segments, unbalanced brackets, a filter without ``=``, a path starting with ``[``.
    """

    def bad(reason: str) -> InputError:
        return InputError(source=source, field=field, value=text, reason=f"bad path: {reason}")

    s = text.strip()
    if not s:
        raise bad("empty")
    steps: list[Step] = []
    i = 0
    need_key = True
    while i < len(s):
        if need_key:
            m = _KEY_RE.match(s, i)
            if not m:
                raise bad(f"expected a key at character {i + 1}")
            steps.append(Step(kind="key", key=m.group()))
            i = m.end()
            need_key = False
        elif s[i] == ".":
            i += 1
            need_key = True
            if i == len(s):
                raise bad("ends with '.'")
        elif s[i] == "[":
            step, i = _parse_bracket(s, i, bad)
            steps.append(step)
        else:
            raise bad(f"unexpected {s[i]!r} at character {i + 1}")
    return tuple(steps)


def _parse_bracket(s: str, i: int, bad) -> tuple[Step, int]:
    close = s.find("]", i)
    if close < 0:
        raise bad(f"'[' at character {i + 1} is never closed")
    inner = s[i + 1:close].strip()
    if inner == "*":
        return Step(kind="star"), close + 1
    m = _FILTER_RE.match(inner)
    if not m:
        raise bad(f"'[{inner}]': use [*] or [key=value] (or !=, <, <=, >, >= with a number)")
    key, op, rest = m.group(1), m.group(2), m.group(3).strip()
    if rest[:1] in ("'", '"'):
        q = rest[0]
        start = s.index(q, i)
        end = s.find(q, start + 1)
        if end < 0:
            raise bad(f"unclosed quote in '[{inner}'")
        value = s[start + 1:end]
        close = s.find("]", end)
        if close < 0 or s[end + 1:close].strip():
            raise bad(f"expected ']' after the quoted value {value!r}")
        if op not in ("=", "!="):
            raise bad(f"'{op}' compares numbers, not the quoted text {value!r}")
        return Step(kind="filter", key=key, raw=value, quoted=True, op=op), close + 1
    if not rest:
        raise bad(f"'[{inner}]' has no value after '{op}'")
    if op not in ("=", "!="):
        try:
            float(rest)
        except ValueError:
            raise bad(f"'[{inner}]': '{op}' needs a number") from None
    return Step(kind="filter", key=key, raw=rest, op=op), close + 1


# --------------------------------------------------------------------------------------------
# Reading FactSheets and resolving paths
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Node:
    """A place in the FactSheet reached by a path.

    ``trail`` holds the containers from the root down to (not including) ``value``; ``parent`` and
    ``key`` are set when the last step was a key; ``where`` is the concrete path for messages and
    ``ident`` its parts, used to pair a node with the same node in the baseline.
    """

    value: object
    trail: tuple
    parent: dict | None
    key: str | None
    where: str
    ident: tuple[str, ...]
    element: bool


@dataclass(frozen=True)
class Resolved:
    """What a path matched, and the elements its last ``[...]`` step chose from (for count gates)."""

    nodes: tuple[Node, ...]
    candidates: tuple[Node, ...]


def resolve(doc: dict, steps: tuple[Step, ...], *, source: str, field: str, allow_empty_last: bool = False) -> Resolved:
    """Follow a parsed path through a FactSheet.

    Parameters
    ----------
    doc : dict
        The FactSheet.
    steps : tuple of Step
        From :func:`parse_path`.
    source, field : str
        The FactSheet file and the gate/path, for error messages.
    allow_empty_last : bool
        Whether the last step (a ``[...]`` step of a count gate) may match nothing.

    Returns
    -------
    Resolved

    Raises
    ------
    InputError
        A key that does not exist, ``.key`` on a list, ``[...]`` on a non-list, a filter key no
        element has, or a step that matches nothing.
    """

    def fail(where: str, reason: str) -> InputError:
        return InputError(source=source, field=field, reason=f"{where}: {reason}" if where else reason)

    nodes = [Node(value=doc, trail=(), parent=None, key=None, where="", ident=(), element=False)]
    candidates: list[Node] = []
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        if step.kind == "key":
            new = [_key_step(n, step.key, fail) for n in nodes]
        else:
            candidates = [c for n in nodes for c in _elements(n, step, fail)]
            if step.kind == "star":
                new = candidates
            else:
                if candidates and not any(isinstance(c.value, dict) and step.key in c.value for c in candidates):
                    raise fail(_list_where(nodes), f"no element has the key {step.key!r} used in {step.text}")
                new = [c for c in candidates if _filter_matches(c.value, step)]
            if not new and not (last and allow_empty_last):
                shown = _list_where(nodes)
                what = "[*] matched nothing (empty list)" if step.kind == "star" else \
                    f"filter {step.text} matched nothing"
                raise fail(shown, what + _choices_hint(candidates, step))
        nodes = new
    return Resolved(nodes=tuple(nodes), candidates=tuple(candidates))


def _list_where(nodes: list[Node]) -> str:
    """Where a ``[...]`` step was applied: the list (not its chosen elements), or how many places."""
    wheres = {n.where[:len(n.where) - len(n.ident[-1])] if n.element else n.where for n in nodes}
    if len(wheres) == 1:
        return wheres.pop() or "the FactSheet"
    return f"{len(wheres)} lists"


def _key_step(node: Node, key: str, fail) -> Node:
    v = node.value
    where = node.where or "the FactSheet"
    if isinstance(v, list):
        raise fail(where, f"is a list; select elements with [*] or [key=value] before .{key}")
    if not isinstance(v, dict):
        raise fail(where, f"is a {_type_name(v)}, it has no key {key!r}")
    if key not in v:
        if v.get("status") == "not_evaluated":
            raise fail(where, f"section not evaluated in this FactSheet ({v.get('reason') or 'no reason given'}), "
                              f"so it has no {key!r}")
        keys = list(v)
        shown = ", ".join(keys[:12]) + (", ..." if len(keys) > 12 else "")
        raise fail(where, f"no key {key!r} (keys here: {shown})")
    child_where = f"{node.where}.{key}" if node.where else key
    return Node(value=v[key], trail=node.trail + (v,), parent=v, key=key, where=child_where,
                ident=node.ident + (key,), element=False)


def _elements(node: Node, step: Step, fail) -> list[Node]:
    v = node.value
    if isinstance(v, list):
        out = []
        for j, el in enumerate(v):
            ident = _identity(el, j)
            out.append(Node(value=el, trail=node.trail + (v,), parent=None, key=None, where=f"{node.where}[{ident}]",
                            ident=node.ident + (f"[{ident}]",), element=True))
        return out
    if node.element:  # a further [...] on an element just chosen from a list filters it
        return [node]
    raise fail(node.where or "the FactSheet", f"is a {_type_name(v)}, not a list; {step.text} needs a list")


def _choices_hint(candidates: list[Node], step: Step) -> str:
    if step.kind != "filter" or not candidates:
        return ""
    seen: list[str] = []
    for c in candidates:
        if isinstance(c.value, dict) and step.key in c.value:
            text = _fmt_ident_value(c.value[step.key])
            if text not in seen:
                seen.append(text)
    shown = ", ".join(seen[:10]) + (", ..." if len(seen) > 10 else "")
    return f" (values there: {shown})"


def _type_name(v: object) -> str:
    if v is None:
        return "null"
    return {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(v), type(v).__name__)


def _fmt_ident_value(v: object) -> str:
    if isinstance(v, list):
        return "+".join(_fmt_ident_value(x) for x in v)
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _identity(el: object, index: int) -> str:
    """``label=Speech`` / ``columns=voice_type, group=female``: how an element is named (or ``#index``)."""
    if isinstance(el, dict):
        parts = [f"{k}={_fmt_ident_value(el[k])}" for k in IDENTITY_KEYS
                 if k in el and isinstance(el[k], (str, int, float, list)) and not isinstance(el[k], bool)]
        if parts:
            return ", ".join(parts)
    return f"#{index}"


def _filter_matches(el: object, step: Step) -> bool:
    """Whether the element's ``step.key`` satisfies the filter, compared by the element's type.

    ``null`` matches only ``=null`` (and fails ``!=null``); ``<``, ``<=``, ``>``, ``>=`` match
    numbers only.
    """
    if not isinstance(el, dict) or step.key not in el:
        return False
    x = el[step.key]
    if step.op in ("=", "!="):
        if x is None:
            return (not step.quoted and step.raw == "null") == (step.op == "=")
        return _equals(x, step) == (step.op == "=")
    if not _is_number(x):
        return False
    return holds(x, step.op, float(step.raw))


def _equals(x: object, step: Step) -> bool:
    raw = step.raw
    if isinstance(x, bool):
        return not step.quoted and raw in ("true", "false") and x == (raw == "true")
    if isinstance(x, (int, float)):
        try:
            return float(raw) == float(x)
        except ValueError:
            return False
    if isinstance(x, str):
        return x == raw
    if isinstance(x, list):
        items = [raw] if step.quoted else [t.strip() for t in raw.split(",")]
        return len(items) == len(x) and sorted(items) == sorted(_fmt_ident_value(v) for v in x)
    return False


def find_bounds(node: Node) -> tuple[object, object] | None:
    """The confidence interval of the number at ``node``, by convention, or ``None`` if it has none.

    Looked for, in order: sibling ``ci_low`` / ``ci_high`` when the key is ``value`` or
    ``difference`` (``{value, ci_low, ci_high}`` objects, percentile rows, disparities); a sibling
    ``<key>_ci`` object with ``low`` / ``high`` (``success_rate_ci``, ``median_ci``); a sibling
    ``ci.<key>`` object with ``low`` / ``high`` (``performance.ci.mAP``). A ``null`` interval is
    returned as ``(None, None)`` (insufficient evidence, not an error).
    """
    p, k = node.parent, node.key
    if p is None or k is None:
        return None
    if k in PRIMARY_KEYS and "ci_low" in p and "ci_high" in p:
        return p["ci_low"], p["ci_high"]
    holders = []
    if f"{k}_ci" in p:
        holders.append(p[f"{k}_ci"])
    if isinstance(p.get("ci"), dict) and k in p["ci"]:
        holders.append(p["ci"][k])
    for holder in holders:
        if holder is None:
            return None, None
        if isinstance(holder, dict) and "low" in holder and "high" in holder:
            return holder["low"], holder["high"]
    return None


def _sample_size(containers: list) -> tuple[bool, int | None]:
    """``(found, n)``: the nearest ``n`` / ``n_attacked`` / ``support`` / ``n_clips`` among
    ``containers`` (nearest first)."""
    for c in containers:
        if isinstance(c, dict):
            for k in N_KEYS:
                if k in c and (c[k] is None or (isinstance(c[k], int) and not isinstance(c[k], bool))):
                    return True, c[k]
    return False, None


def evidence_problem(node: Node, *, min_n: int | None, source: str, field: str) -> str | None:
    """Why the row holding ``node`` is too thin to judge, or ``None``.

    Thin: an ``insufficient_evidence: true`` flag on the row or any container above it, or a
    sample size (nearest ``n``, ``n_attacked``, ``support`` or ``n_clips``) below ``min_n``.

    Raises
    ------
    InputError
        ``min_n`` is set but no sample size exists at or above the number.
    """
    containers = ([node.value] if node.element else []) + list(reversed(node.trail))
    for c in containers:
        if isinstance(c, dict) and c.get("insufficient_evidence") is True:
            return "flagged insufficient_evidence"
    if min_n is None:
        return None
    found, n = _sample_size(containers)
    if not found:
        raise InputError(source=source, field=field,
                         reason=f"{node.where}: min_n is set but no {' / '.join(N_KEYS)} was found at or above it")
    if n is None:
        return "sample size is null"
    if n < min_n:
        return f"n = {n} < min_n = {min_n}"
    return None


# --------------------------------------------------------------------------------------------
# Evaluating gates
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Check:
    """One matched number judged against its threshold; ``passed`` is ``None`` when insufficient."""

    where: str
    value: object
    op: str
    threshold: object
    passed: bool | None
    note: str = ""


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate.

    ``outcome`` is ``pass``, ``fail`` or ``insufficient``; ``effect`` is what it does to the build
    (``pass``, ``fail`` or ``warn``: insufficient evidence under the policy's ``on_insufficient``).
    ``message`` is one line with the numbers.
    """

    gate: Gate
    outcome: str
    effect: str
    value_text: str
    threshold_text: str
    message: str
    checks: tuple[Check, ...]

    @property
    def outcome_text(self) -> str:
        """``pass``, ``FAIL`` or ``insufficient (fail|warn|pass)``."""
        if self.outcome == "insufficient":
            return f"insufficient ({self.effect})"
        return "FAIL" if self.outcome == "fail" else "pass"


@dataclass(frozen=True)
class GateReport:
    """Every gate's result, and where the inputs came from."""

    policy: Policy
    factsheet: str
    baseline: str | None
    results: tuple[GateResult, ...]

    def count(self, outcome: str) -> int:
        """How many gates had this outcome (``pass``, ``fail``, ``insufficient``)."""
        return sum(r.outcome == outcome for r in self.results)

    @property
    def failed(self) -> bool:
        """Whether the build should fail: some gate's effect is ``fail``."""
        return any(r.effect == "fail" for r in self.results)

    @property
    def exit_code(self) -> int:
        """0 when no gate fails the build, 1 otherwise."""
        return 1 if self.failed else 0


def fmt(value: object) -> str:
    """A number for the table: 4 significant digits; ``null`` for a missing number."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def holds(value: object, op: str, threshold: object) -> bool:
    """Whether ``value op threshold`` is true."""
    return {">=": lambda a, b: a >= b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b,
            "<": lambda a, b: a < b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}[op](value, threshold)


def evaluate_policy(*, policy: Policy, doc: dict, source: str, baseline: dict | None = None,
                    baseline_source: str | None = None) -> GateReport:
    """Evaluate every gate of ``policy`` on a FactSheet.

    Parameters
    ----------
    policy : Policy
    doc : dict
        The FactSheet under test.
    source : str
        Its file name (for messages).
    baseline : dict, optional
        The baseline FactSheet; required when a gate has ``baseline = ...``.
    baseline_source : str, optional
        Its file name.

    Returns
    -------
    GateReport

    Raises
    ------
    InputError
        A path that does not resolve, a value of the wrong type, a CI bound that does not exist, or
        a baseline gate without a baseline.
    """
    if policy.needs_baseline and baseline is None:
        g = next(g for g in policy.gates if g.baseline)
        raise InputError(source="--baseline", reason=f"{policy.source}: {g.label} compares with a baseline "
                                                     f"FactSheet; pass --baseline OLD.json")
    results = tuple(evaluate_gate(gate=g, doc=doc, source=source, baseline=baseline,
                                  baseline_source=baseline_source or "baseline") for g in policy.gates)
    return GateReport(policy=policy, factsheet=source, baseline=baseline_source if baseline is not None else None,
                      results=results)


def evaluate_gate(*, gate: Gate, doc: dict, source: str, baseline: dict | None = None,
                  baseline_source: str = "baseline") -> GateResult:
    """Evaluate one gate (see :func:`evaluate_policy`)."""
    field = f"{gate.label}: {gate.path}"
    resolved = resolve(doc, gate.steps, source=source, field=field, allow_empty_last=gate.quantifier == "count")
    if gate.quantifier == "count":
        return _count_result(gate, resolved, source=source, field=field)
    old: dict[tuple, Node] | None = None
    if gate.baseline:
        old_nodes = resolve(baseline, gate.steps, source=baseline_source, field=field).nodes
        old = {n.ident: n for n in old_nodes}
    checks = tuple(_check_node(gate, n, old, source=source, field=field, baseline_source=baseline_source)
                   for n in resolved.nodes)
    return _combine(gate, checks)


def _number(node: Node, *, gate: Gate, source: str, field: str, need_number: bool) -> object:
    v = node.value
    if v is None:
        return None
    if need_number and not _is_number(v):
        raise InputError(source=source, field=field,
                         reason=f"{node.where} is a {_type_name(v)}, not a number")
    if not need_number and not isinstance(v, (str, bool, int, float)):
        raise InputError(source=source, field=field,
                         reason=f"{node.where} is a {_type_name(v)}, not a value to compare")
    if not need_number and (_is_number(v) != _is_number(gate.threshold) or isinstance(v, bool) != isinstance(
            gate.threshold, bool)):
        raise InputError(source=source, field=field, reason=f"{node.where} is a {_type_name(v)} but the threshold "
                                                            f"{gate.threshold!r} is a {_type_name(gate.threshold)}")
    return v


def _check_node(gate: Gate, node: Node, old: dict | None, *, source: str, field: str,
                baseline_source: str) -> Check:
    """Judge one matched number: its bound if ``use`` asks, against the threshold (or the baseline)."""
    need_number = gate.baseline is not None or gate.op in ORDERED_OPS or gate.use != "value"
    value = _number(node, gate=gate, source=source, field=field, need_number=need_number)
    where = node.where
    if gate.use != "value":
        bound = _bound(node, use=gate.use, source=source, field=field)  # an input error if there is no CI
        value = None if value is None else bound
        where = f"{node.where} ({gate.use} CI bound)"
    op, threshold, note = gate.op, gate.threshold, ""
    if gate.baseline:
        op, threshold, note = _baseline_threshold(gate, node, old, source=baseline_source, field=field)

    def thin(why: str) -> Check:
        return Check(where=where, value=value, op=op, threshold=threshold, passed=None, note=why)

    if value is None:
        return thin("value is null" if node.value is None else f"{gate.use} bound is null")
    if isinstance(value, float) and not math.isfinite(value):
        return thin("value is not finite")
    if threshold is None:
        return thin(note)
    problem = evidence_problem(node, min_n=gate.min_n, source=source, field=field)
    if problem:
        return thin(problem)
    return Check(where=where, value=value, op=op, threshold=threshold, passed=holds(value, op, threshold),
                 note=note)


def _bound(node: Node, *, use: str, source: str, field: str) -> float | None:
    """The ``lower`` or ``upper`` bound of the number at ``node`` (``None`` if the interval is null)."""
    bounds = find_bounds(node)
    if bounds is None:
        raise InputError(source=source, field=field, value=use,
                         reason=f"{node.where} has no confidence interval (no ci_low/ci_high, {node.key}_ci or "
                                f"ci.{node.key} beside it), so use = {use!r} is not possible")
    value = bounds[0] if use == "lower" else bounds[1]
    if value is not None and not _is_number(value):
        raise InputError(source=source, field=field, reason=f"the {use} bound of {node.where} is not a number")
    return value


def _baseline_threshold(gate: Gate, node: Node, old: dict, *, source: str, field: str) -> tuple[str, object, str]:
    """``(op, threshold, note)`` for a baseline gate: the baseline value moved by the allowed change."""
    op = ">=" if gate.baseline in ("max_drop", "max_relative_drop") else "<="
    partner = old.get(node.ident)
    if partner is None:
        return op, None, "not in the baseline"
    ref = partner.value
    if ref is None:
        return op, None, "baseline value is null"
    if not _is_number(ref):
        raise InputError(source=source, field=field, reason=f"{partner.where} is a {_type_name(ref)}, not a number")
    lim = gate.limit
    if gate.baseline == "max_drop":
        return op, ref - lim, f"baseline {fmt(ref)} - {fmt(lim)}"
    if gate.baseline == "max_rise":
        return op, ref + lim, f"baseline {fmt(ref)} + {fmt(lim)}"
    pct = f"{lim * 100:g} %"
    if gate.baseline == "max_relative_drop":
        return op, ref - abs(ref) * lim, f"baseline {fmt(ref)} - {pct}"
    return op, ref + abs(ref) * lim, f"baseline {fmt(ref)} + {pct}"


def _margin(c: Check) -> float:
    """How far a check is on the passing side of its threshold (negative: failing)."""
    if c.op in (">=", ">"):
        return c.value - c.threshold
    if c.op in ("<=", "<"):
        return c.threshold - c.value
    return 0.0


def _combine(gate: Gate, checks: tuple[Check, ...]) -> GateResult:
    """The gate's outcome from its checks (``every``: all pass; ``any``: one passes)."""
    failed = [c for c in checks if c.passed is False]
    passed = [c for c in checks if c.passed is True]
    thin = [c for c in checks if c.passed is None]
    if gate.quantifier == "any":
        outcome = "pass" if passed else ("insufficient" if thin else "fail")
    else:
        outcome = "fail" if failed else ("insufficient" if thin else "pass")
    judged = passed + failed
    ordered = gate.op in ORDERED_OPS or gate.baseline is not None
    if judged and ordered:
        pick = max if gate.quantifier == "any" else min
        decisive = pick(judged, key=_margin)
    else:
        decisive = (failed or thin or passed)[0] if gate.quantifier != "any" else (passed or thin or failed)[0]
    shown_value = "null" if decisive.value is None else fmt(decisive.value)
    notes = [f"{gate.use} CI bound"] if gate.use != "value" else []
    if len(checks) > 1:
        rank = ("best" if gate.quantifier == "any" else "worst") if decisive.passed is not None else "one"
        notes.append(f"{rank} of {len(checks)}")
    if notes:
        shown_value += f" ({', '.join(notes)})"
    threshold_text = (f"{decisive.op} {fmt(decisive.threshold)}" if decisive.threshold is not None
                      else f"{decisive.op} ?")
    if gate.baseline and decisive.note and decisive.threshold is not None:
        threshold_text += f" ({decisive.note})"
    message = _message(gate, outcome, checks, failed, thin)
    return GateResult(gate=gate, outcome=outcome, effect=_effect(gate, outcome), value_text=shown_value,
                      threshold_text=threshold_text, message=message, checks=checks)


def _effect(gate: Gate, outcome: str) -> str:
    return gate.on_insufficient if outcome == "insufficient" else outcome


def _describe(c: Check) -> str:
    text = f"{c.where} = {fmt(c.value)}"
    if c.passed is None:
        return f"{text} ({c.note})"
    thr = f"{c.op} {fmt(c.threshold)}" + (f", {c.note}" if c.note else "")
    return f"{text} ({'passes' if c.passed else 'needs'} {thr})"


def _first(items: list[str], limit: int = 5) -> str:
    """The first ``limit`` items joined by ``; ``, then how many more."""
    return "; ".join(items[:limit]) + (f"; and {len(items) - limit} more" if len(items) > limit else "")


def _listing(checks: list[Check], limit: int = 5) -> str:
    return _first([_describe(c) for c in checks], limit)


def _message(gate: Gate, outcome: str, checks: tuple[Check, ...], failed: list, thin: list) -> str:
    n = len(checks)
    if outcome == "fail":
        head = f"{len(failed)} of {n} values fail" if n > 1 else "fails"
        return f"{head}: {_listing(failed)}"
    if outcome == "insufficient":
        head = f"{len(thin)} of {n} values lack evidence" if n > 1 else "insufficient evidence"
        return f"{head}: {_listing(thin)}"
    if gate.quantifier == "any" and n > 1:
        return f"{sum(c.passed is True for c in checks)} of {n} values pass: " + \
            _listing([c for c in checks if c.passed])
    if n > 1:
        return f"all {n} values pass"
    return _describe(checks[0])


def _count_result(gate: Gate, resolved: Resolved, *, source: str, field: str) -> GateResult:
    """A count gate: how many elements the path matched, compared with the threshold.

    Elements the last step chose from that are too thin to judge (flagged, below ``min_n``, or
    ``null`` in the filtered key) may or may not belong to the count: the gate passes only if
    the comparison holds whichever way they fall, fails if it holds neither way, and is
    insufficient otherwise.
    """
    matched = {id(n) for n in resolved.nodes}
    last = gate.steps[-1]
    unclear: list[tuple[Node, str]] = []
    sure = 0
    for c in resolved.candidates:
        problem = evidence_problem(c, min_n=gate.min_n, source=source, field=field)
        if problem is None and last.kind == "filter" and isinstance(c.value, dict) and c.value.get(last.key, 0) is None:
            problem = f"{last.key} is null"
        if problem:
            unclear.append((c, problem))
        elif id(c) in matched:
            sure += 1
    lo, hi = sure, sure + len(unclear)
    verdicts = [holds(k, gate.op, gate.threshold) for k in range(lo, hi + 1)]
    outcome = "pass" if all(verdicts) else ("fail" if not any(verdicts) else "insufficient")
    value_text = str(lo) + (f" (+{len(unclear)} unclear)" if unclear else "")
    checks = tuple(Check(where=n.where, value=None, op=gate.op, threshold=gate.threshold, passed=None, note=p)
                   for n, p in unclear)
    counted = [n.where for n in resolved.nodes if all(n is not u for u, _ in unclear)]
    head = f"count = {lo}" + (f" to {hi}" if hi > lo else "") + f" (needs {gate.op} {gate.threshold})"
    parts = [head]
    if counted:
        parts.append("counted: " + _first(counted))
    if unclear:
        parts.append("unclear: " + _first([f"{c.where} ({c.note})" for c in checks]))
    return GateResult(gate=gate, outcome=outcome, effect=_effect(gate, outcome), value_text=value_text,
                      threshold_text=f"count {gate.op} {gate.threshold}", message="; ".join(parts), checks=checks)


# --------------------------------------------------------------------------------------------
# Output: table, JUnit XML, Markdown summary
# --------------------------------------------------------------------------------------------

def _verdict(report: GateReport) -> str:
    return "FAILED" if report.failed else "PASSED"


def counts_line(report: GateReport) -> str:
    """``8 gates: 6 passed, 1 failed, 1 insufficient evidence (warn)``."""
    ins = [r for r in report.results if r.outcome == "insufficient"]
    effects = sorted({r.effect for r in ins})
    ins_text = f"{len(ins)} insufficient evidence" + (f" ({', '.join(effects)})" if ins else "")
    return (f"{len(report.results)} gates: {report.count('pass')} passed, {report.count('fail')} failed, {ins_text}")


def render_table(report: GateReport) -> str:
    """The plain-text table printed on stdout: gate, path, value, threshold, outcome; then details."""
    header = ("GATE", "PATH", "VALUE", "THRESHOLD", "OUTCOME")
    rows = [(r.gate.name, r.gate.path, r.value_text, r.threshold_text, r.outcome_text) for r in report.results]
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    lines = [f"policy {report.policy.source} on {report.factsheet}"
             + (f" (baseline {report.baseline})" if report.baseline else "")]
    for row in (header, *rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    lines.append(f"{counts_line(report)} -> {_verdict(report)}")
    for r in report.results:
        if r.outcome != "pass":
            lines.append(f"  {r.outcome_text}: {r.gate.name}: {r.message}")
    return "\n".join(lines) + "\n"


def render_junit(report: GateReport) -> str:
    """JUnit XML: one ``<testcase>`` per gate.

    A failed gate, and insufficient evidence under ``on_insufficient = "fail"``, is a
    ``<failure>`` whose message has the numbers; insufficient evidence under ``warn`` or ``pass``
    is ``<skipped>`` (the build is not failed).
    """
    n_fail = sum(r.effect == "fail" for r in report.results)
    n_skip = sum(r.outcome == "insufficient" and r.effect != "fail" for r in report.results)
    suite_name = f"factsheet gate: {Path(report.policy.source).name}"
    attrs = {"name": suite_name, "tests": str(len(report.results)), "failures": str(n_fail), "errors": "0",
             "skipped": str(n_skip), "time": "0"}
    root = ET.Element("testsuites", attrs)
    suite = ET.SubElement(root, "testsuite", attrs)
    props = ET.SubElement(suite, "properties")
    for k, v in (("factsheet", report.factsheet), ("policy", report.policy.source), ("baseline", report.baseline)):
        if v:
            ET.SubElement(props, "property", {"name": k, "value": v})
    classname = f"factsheet.gate.{Path(report.policy.source).stem}"
    for r in report.results:
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": r.gate.name, "time": "0"})
        summary = f"{r.gate.path}: value {r.value_text}, threshold {r.threshold_text}: {r.outcome_text}"
        body = f"{summary}\n{r.message}" + (f"\n{r.gate.description}" if r.gate.description else "")
        if r.effect == "fail":
            kind = "insufficient_evidence" if r.outcome == "insufficient" else "threshold"
            el = ET.SubElement(case, "failure", {"message": summary, "type": kind})
            el.text = body
        elif r.outcome == "insufficient":
            ET.SubElement(case, "skipped", {"message": f"insufficient evidence ({r.effect}): {r.message}"})
        else:
            ET.SubElement(case, "system-out").text = body
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render_summary(report: GateReport) -> str:
    """A Markdown summary for a pull-request comment: verdict, counts and the table (no emoji)."""
    from factsheet.render import md_cell

    lines = [f"### FactSheet gate: {_verdict(report)}", "",
             f"Policy {md_cell(report.policy.source)} on {md_cell(report.factsheet)}"
             + (f", baseline {md_cell(report.baseline)}" if report.baseline else "") + ".", "",
             f"**{md_cell(counts_line(report))}**", "",
             "| Gate | Path | Value | Threshold | Outcome |", "|---|---|---|---|---|"]
    for r in report.results:
        outcome = f"**{r.outcome_text}**" if r.outcome != "pass" else r.outcome_text
        lines.append(f"| {md_cell(r.gate.name)} | {md_cell(r.gate.path)} | {md_cell(r.value_text)} "
                     f"| {md_cell(r.threshold_text)} | {outcome} |")
    notes = [r for r in report.results if r.outcome != "pass"]
    if notes:
        lines += ["", "Details:", ""]
        lines += [f"- **{md_cell(r.gate.name)}** ({r.outcome_text}): {md_cell(r.message)}" for r in notes]
    return "\n".join(lines) + "\n"


def cmd_gate(args) -> int:
    """``factsheet gate``: evaluate, print the table, write ``--junit`` / ``--summary``; 0 or 1."""
    from factsheet.render import atomic_write_text

    for flag, path in (("--junit", args.junit), ("--summary", args.summary)):
        if path is not None and Path(path).is_dir():
            raise InputError(source=flag, value=str(path), reason="is a folder; give a file name")
    policy = load_policy(args.policy)
    doc = load_factsheet(args.factsheet)
    baseline = load_factsheet(args.baseline) if args.baseline is not None else None
    report = evaluate_policy(policy=policy, doc=doc, source=str(args.factsheet), baseline=baseline,
                             baseline_source=None if args.baseline is None else str(args.baseline))
    outputs = {}
    if args.junit is not None:
        outputs[Path(args.junit)] = render_junit(report)
    if args.summary is not None:
        outputs[Path(args.summary)] = render_summary(report)
    for path, text in outputs.items():
        try:
            atomic_write_text(path, text)
        except OSError as exc:
            raise InputError(source=str(path), reason=f"cannot write: {exc.strerror or exc}") from None
    print(render_table(report), end="")
    return report.exit_code
