"""Explanation: not measured yet; the configured prose, marked as stated."""

from __future__ import annotations

from factsheet.sections.base import Heading, RunContext, Section, SectionResult
from factsheet.sections.text import stated_or_not


def evaluate(ctx: RunContext) -> SectionResult:
    return SectionResult(stated_or_not(ctx.cfg.factsheet.explanation))


SECTIONS = (Section(field="explanation", schema="explanation", evaluate=evaluate,
                    headings=(Heading("explanation", "Explanation", 150),), prose=(("explanation", "text"),)),)
