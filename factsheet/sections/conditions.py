"""Optimal Conditions and Poor Conditions, measured: the best slice of each of the Bias section's
condition columns, and the slices measurably worse than it (group mAP with its interval); Poor
Conditions also lists the Domain Shift section's breaking points (the recording conditions that
lower mAP by more than its tolerance, with numbers) and its natural-shift findings (a second
dataset on which the prevalence-matched mAP is lower by more than the tolerance).

When neither section was evaluated, each is the configured prose, marked as stated.
"""

from __future__ import annotations

from factsheet.document import ConditionsSection
from factsheet.sections.base import Heading, RunContext, Section, SectionResult
from factsheet.sections.text import stated_or_not

NO_POOR_SLICE = "No measured slice was worse than the best slice of its column with confidence."
NO_BREAKING_POINT = "No corruption of the Domain Shift suite lowered mAP by more than its tolerance with confidence."
NO_NATURAL_LOSS = ("No second dataset of the Domain Shift section's natural shift had a prevalence-matched mAP "
                   "below the evaluation set's by more than its tolerance with confidence.")


def measured_conditions(*, groups: list[dict], disparities: list[dict], condition_columns: list[str],
                        confidence: float) -> dict:
    """Optimal / poor statements from measured slices of the condition columns (group-level mAP).

    Parameters
    ----------
    groups, disparities : list of dict
        The Bias section's ``groups`` and ``disparities``.
    condition_columns : list of str
        Metadata columns whose slices are conditions (``bias.condition_columns``).
    confidence : float
        Level of the intervals, in (0, 1).

    Returns
    -------
    dict
        ``{"optimal": [str], "poor": [str], "slices": [{"column", "slice", "n", "mAP"}]}``.
    """
    optimal, poor, slices = [], [], []
    ci = f"{int(confidence * 100)}% CI"
    for col in condition_columns:
        rows = [r for r in groups if r["columns"] == [col] and not r["insufficient_evidence"]
                and r["metrics"]["mAP"]["value"] is not None]
        if len(rows) < 2:
            continue
        slices += [{"column": col, "slice": r["group"], "n": r["n"], "mAP": r["metrics"]["mAP"]} for r in rows]
        best = max(rows, key=lambda r: r["metrics"]["mAP"]["value"])
        bm = best["metrics"]["mAP"]
        worse = [d for d in disparities if d["columns"] == [col] and d["metric"] == "mAP" and d["class"] is None
                 and d["finding"]]
        if not worse:
            span = ", ".join(f"{r['group']}: {_fmt(r['metrics']['mAP']['value'])} (n = {r['n']})" for r in rows)
            optimal.append(f"{col}: no slice differs from the best with confidence (mAP {span}).")
            continue
        optimal.append(f"{col} = {best['group']}: mAP {_fmt(bm['value'])} ({ci} {_fmt(bm['ci_low'])} to "
                       f"{_fmt(bm['ci_high'])}, n = {best['n']}), the best measured {col} slice.")
        for d in sorted(worse, key=lambda d: d["difference"]):
            poor.append(f"{col} = {d['group']}: mAP falls from {_fmt(d['reference_value'])} ({col} = "
                        f"{d['reference']}) to {_fmt(d['value'])} (n = {d['n']}; difference "
                        f"{_fmt(d['difference'])}, {ci} {_fmt(d['ci_low'])} to {_fmt(d['ci_high'])}).")
    return {"optimal": optimal, "poor": poor, "slices": slices}


def _fmt(x, d=3) -> str:
    return "n/a" if x is None else f"{x:.{d}f}"


def _evaluated(section) -> bool:
    return section is not None and getattr(section, "status", None) == "evaluated"


def _nothing_found(shift) -> list[str]:
    """What Poor Conditions says when the Domain Shift section found nothing: per part that ran."""
    return ([NO_BREAKING_POINT] if shift.corruptions or not shift.natural_shift else []) + (
        [NO_NATURAL_LOSS] if shift.natural_shift else [])


def _evaluator(which: str):
    def evaluate(ctx: RunContext) -> SectionResult:
        prose = getattr(ctx.cfg.factsheet, f"{which}_conditions")
        bias, shift = ctx.results.get("bias"), ctx.results.get("domain_shift")
        from_shift = which == "poor" and _evaluated(shift)
        if not _evaluated(bias) and not from_shift:
            return SectionResult(stated_or_not(prose))
        statements, slices = [], []
        if _evaluated(bias):
            measured = measured_conditions(groups=bias.groups, disparities=bias.disparities,
                                           condition_columns=bias.settings["condition_columns"],
                                           confidence=bias.settings["confidence"])
            statements = measured[which] or ([NO_POOR_SLICE] if which == "poor" else [])
            slices = measured["slices"]
        if from_shift:
            statements = statements + (shift.poor_conditions or _nothing_found(shift))
        return SectionResult(ConditionsSection(status="evaluated", text=prose, statements=statements, slices=slices))

    evaluate.__doc__ = (f"The measured {which} conditions (from the Bias section"
                        + (" and the Domain Shift section's breaking points" if which == "poor" else "")
                        + "), or the configured prose when neither was evaluated.")
    return evaluate


SECTIONS = (
    Section(field="optimal_conditions", schema="conditions", evaluate=_evaluator("optimal"), needs=("bias",),
            headings=(Heading("optimal_conditions", "Optimal Conditions", 130),),
            prose=(("optimal_conditions", "text"),)),
    Section(field="poor_conditions", schema="conditions", evaluate=_evaluator("poor"), needs=("bias", "domain_shift"),
            headings=(Heading("poor_conditions", "Poor Conditions", 140),), prose=(("poor_conditions", "text"),)),
)
