"""The gate's verdict, stored in the FactSheet when ``factsheet run --policy FILE`` evaluated a policy
on it (the field is absent otherwise); the Summary shows it. :mod:`factsheet.gate` computes it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from factsheet.sections.base import Section


def gate_record(report) -> dict:
    """The JSON ``gate`` of a :class:`factsheet.gate.evaluate.GateReport`: the policy (path and sha256),
    the verdict, the counts and one row per gate (outcome, effect, value and threshold as shown)."""
    source = Path(report.policy.source)
    sha = hashlib.sha256(source.read_bytes()).hexdigest() if source.is_file() else None
    return {
        "policy": str(report.policy.source), "policy_sha256": sha,
        "verdict": "failed" if report.failed else "passed",
        "n_gates": len(report.results), "n_passed": report.count("pass"), "n_failed": report.count("fail"),
        "n_insufficient": report.count("insufficient"),
        "results": [{"name": r.gate.name, "path": r.gate.path, "outcome": r.outcome, "effect": r.effect,
                     "value": r.value_text, "threshold": r.threshold_text, "message": r.message}
                    for r in report.results],
    }


SECTIONS = (Section(field="gate", schema="gate", headings=(), required=False),)
