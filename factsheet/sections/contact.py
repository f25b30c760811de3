"""Contact Information: whom to ask about the model (configured prose)."""

from __future__ import annotations

from factsheet.sections.base import Heading, RunContext, Section, SectionResult


def evaluate(ctx: RunContext) -> SectionResult:
    return SectionResult(ctx.cfg.factsheet.contact)


SECTIONS = (Section(field="contact", schema="contact", evaluate=evaluate,
                    headings=(Heading("contact", "Contact Information", 160),), prose=(("contact",),)),)
