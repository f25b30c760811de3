"""The gate's path language: parse a path into steps and resolve it in a FactSheet JSON.

::

    performance.mAP                                   dotted keys
    performance.per_class[*].auc                      [*]: every element of a list
    robustness.hopskipjump.l2.percentiles[percentile=50].snr_db
                                                      [key=value]: elements whose key equals value
    bias.groups[columns=voice_type][*].metrics.mean_auc.value
    bias.disparities[columns=voice_type][finding=true]      filters chain
    performance.per_class[support>=20].ap             also !=, <, <=, >, >= (numbers)

A path (or a filter) that matches nothing is an input error, never a pass. Also here: the
interval bounds and the sample size found next to a number (``find_bounds``,
``evidence_problem``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from factsheet.errors import InputError

#: keys giving the sample size of a row (searched from the number upwards, nearest first)
N_KEYS = ("n", "n_attacked", "support", "n_clips")
#: keys that name a list element in messages and pair elements with the baseline
IDENTITY_KEYS = ("norm", "corruption", "metric", "class", "column", "columns", "group", "reference", "label",
                 "percentile", "clip_id")
#: keys whose interval is the row's ``ci_low`` / ``ci_high``
PRIMARY_KEYS = ("value", "difference")

_KEY_RE = re.compile(r"[^.\[\]=!<>\"'\s]+")
_FILTER_RE = re.compile(r"([^.\[\]=!<>\"'\s]+)\s*(!=|<=|>=|=|<|>)(.*)\Z", re.S)


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
        raise fail(where, f"is a {type_name(v)}, it has no key {key!r}")
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
    raise fail(node.where or "the FactSheet", f"is a {type_name(v)}, not a list; {step.text} needs a list")


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


def type_name(v: object) -> str:
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
    if not is_number(x):
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


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def holds(value: object, op: str, threshold: object) -> bool:
    """Whether ``value op threshold`` is true."""
    return {">=": lambda a, b: a >= b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b,
            "<": lambda a, b: a < b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}[op](value, threshold)
