"""What ``factsheet gate`` writes: the table, JUnit XML and the Markdown summary."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from factsheet.gate.evaluate import GateReport


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
