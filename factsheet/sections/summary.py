"""Summary: what an auditor reads first, laid out from the FactSheet JSON only (no field of its own).

Each section contributes its headline and findings through its ``summary`` hook; this module adds
the sections not evaluated (with why), those stated by the owner but not measured, the
completeness check and the gate's verdict when ``factsheet run --policy`` stored one.
"""

from __future__ import annotations

from factsheet.sections.base import Heading, Section


def summary_view(doc: dict) -> dict:
    """Everything the Summary shows, as strings and counts (the templates only lay it out).

    Parameters
    ----------
    doc : dict
        A FactSheet as loaded from its JSON.

    Returns
    -------
    dict
        ``blocks`` (each section's ``{"title", "anchor", "headline", "n_findings", "findings"}``),
        ``not_evaluated`` and ``stated`` (``{"title", "anchor", "reason"}``), ``empty_fields`` (JSON
        paths of empty prose fields) and ``gate`` (the stored gate record, or None).
    """
    from factsheet.sections import SECTIONS, empty_prose_fields

    blocks, not_evaluated, stated = [], [], []
    for s in SECTIONS:
        if s.summary is not None and (block := s.summary(doc)) is not None:
            blocks.append(block)
        node = doc.get(s.field) if s.field else None
        if isinstance(node, dict) and node.get("status") in ("not_evaluated", "stated") and s.headings:
            entry = {"title": s.headings[0].title, "anchor": s.headings[0].key, "reason": node.get("reason") or ""}
            (not_evaluated if node["status"] == "not_evaluated" else stated).append(entry)
    return {"blocks": blocks, "not_evaluated": not_evaluated, "stated": stated,
            "empty_fields": empty_prose_fields(doc), "gate": doc.get("gate")}


SECTIONS = (Section(field=None, schema=None, headings=(Heading("summary", "Summary", 5),)),)
