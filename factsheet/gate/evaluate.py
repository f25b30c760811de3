"""Evaluating a policy's gates on a FactSheet (and a baseline): pass, fail or insufficient evidence."""

from __future__ import annotations

import math
from dataclasses import dataclass

from factsheet.errors import InputError
from factsheet.gate.paths import (Node, Resolved, is_number, type_name, evidence_problem, find_bounds, holds,
                                  resolve)
from factsheet.gate.policy import ORDERED_OPS, Gate, Policy


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
    if need_number and not is_number(v):
        raise InputError(source=source, field=field,
                         reason=f"{node.where} is a {type_name(v)}, not a number")
    if not need_number and not isinstance(v, (str, bool, int, float)):
        raise InputError(source=source, field=field,
                         reason=f"{node.where} is a {type_name(v)}, not a value to compare")
    if not need_number and (is_number(v) != is_number(gate.threshold) or isinstance(v, bool) != isinstance(
            gate.threshold, bool)):
        raise InputError(source=source, field=field, reason=f"{node.where} is a {type_name(v)} but the threshold "
                                                            f"{gate.threshold!r} is a {type_name(gate.threshold)}")
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
    if value is not None and not is_number(value):
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
    if not is_number(ref):
        raise InputError(source=source, field=field, reason=f"{partner.where} is a {type_name(ref)}, not a number")
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
