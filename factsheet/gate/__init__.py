"""CI gating: check a FactSheet against a policy of thresholds (``factsheet gate``).

A policy (TOML) is a list of gates. Each gate reads numbers from the FactSheet JSON through a
small path language and compares them with a threshold, or with the same numbers in a baseline
FactSheet. The outcome of a gate is ``pass``, ``fail`` or ``insufficient`` (the evidence is too
thin to decide); the policy says whether ``insufficient`` fails the build, passes, or warns.

Numbers are named by a small path language (``performance.per_class[support>=20].ap``; see
:mod:`factsheet.gate.paths` and ``docs/gating.md``).
A path (or a filter) that matches nothing is an input error, never a pass; ``null`` values are
insufficient evidence. Exit codes of the command: 0 every gate passed (or only warned), 1 a
gate failed, 2 bad input (one line on stderr naming the file, the gate and the field).

Modules: :mod:`~factsheet.gate.policy` (the policy file), :mod:`~factsheet.gate.paths` (the path
language), :mod:`~factsheet.gate.evaluate` (outcomes), :mod:`~factsheet.gate.report` (table,
JUnit XML, Markdown summary); the command itself is ``factsheet.cli.cmd_gate``.
"""

from factsheet.document import load_factsheet
from factsheet.gate.evaluate import Check, GateReport, GateResult, evaluate_gate, evaluate_policy
from factsheet.gate.paths import Step, parse_path, resolve
from factsheet.gate.policy import Gate, Policy, load_policy, parse_policy
from factsheet.gate.report import counts_line, render_junit, render_summary, render_table

__all__ = ["Check", "Gate", "GateReport", "GateResult", "Policy", "Step", "counts_line", "evaluate_gate",
           "evaluate_policy", "load_factsheet", "load_policy", "parse_path", "parse_policy", "render_junit",
           "render_summary", "render_table", "resolve"]
