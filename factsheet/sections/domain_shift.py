"""Domain Shift: not measured yet; the configured prose with the reason."""

from __future__ import annotations

from factsheet.document import not_evaluated
from factsheet.sections.base import Heading, RunContext, Section, SectionResult


def evaluate(ctx: RunContext) -> SectionResult:
    return SectionResult(not_evaluated(ctx.cfg.factsheet.domain_shift))


SECTIONS = (Section(field="domain_shift", schema="domain_shift", evaluate=evaluate,
                    headings=(Heading("domain_shift", "Domain Shift", 110),), prose=(("domain_shift", "text"),)),)
