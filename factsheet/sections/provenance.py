"""Provenance: how the document was produced (filled by :mod:`factsheet.pipeline` once the run
has ended, so it has no evaluator)."""

from __future__ import annotations

from factsheet.sections.base import Heading, Section, term


def glossary(doc: dict) -> dict:
    return {"provenance": [
        term("Timings (s)", "seconds", "Wall-clock time of each stage of this run on the machine named in "
                                       "Platform."),
    ]}


SECTIONS = (Section(field="provenance", schema="provenance", glossary=glossary,
                    headings=(Heading("provenance", "Provenance", 170),)),)
