"""The section registry: every FactSheet section declared once, and what loops over them.

Each module below declares ``SECTIONS``, a tuple of :class:`~factsheet.sections.base.Section`, in
the order of the FactSheet JSON. The pipeline evaluates them (:func:`evaluation_order`), the
renderers lay out their headings (:func:`headings`, one template partial per heading), the
glossary gathers their column keys (:func:`column_keys`), ``factsheet compare`` calls their hooks
and the JSON Schema is assembled from their fragments (:func:`assemble_schema`).

Adding a section: a module here with its evaluator and ``SECTIONS``, its name in ``MODULES``,
its template partials ``reports/templates/sections/<heading>.{md,html}.j2``, its schema fragment
``factsheet/schema/sections/<schema>.json`` and its typed dataclass in :mod:`factsheet.document`.
"""

from __future__ import annotations

import importlib
import json
from importlib import resources
from pathlib import Path

from factsheet.sections.base import Heading, RunContext, Section, SectionResult

__all__ = ["MODULES", "SECTIONS", "Heading", "RunContext", "Section", "SectionResult", "assemble_schema",
           "column_keys", "empty_prose_fields", "evaluation_order", "headings", "prose_fields", "write_schema"]

MODULES = ("summary", "model", "training_data", "test_data", "performance", "bias", "robustness", "domain_shift",
           "conditions", "explanation", "contact", "provenance", "gate")


def _collect() -> tuple[Section, ...]:
    sections = tuple(s for name in MODULES for s in importlib.import_module(f"factsheet.sections.{name}").SECTIONS)
    fields = [s.field for s in sections if s.field is not None]
    keys = [h.key for s in sections for h in s.headings]
    positions = [h.position for s in sections for h in s.headings]
    for what, values in (("field", fields), ("heading", keys), ("heading position", positions)):
        dup = sorted({v for v in values if values.count(v) > 1})
        if dup:
            raise RuntimeError(f"section registry: duplicate {what} {dup}")
    return sections


SECTIONS: tuple[Section, ...] = _collect()


def headings() -> list[Heading]:
    """Every heading of the report, in report order."""
    return sorted((h for s in SECTIONS for h in s.headings), key=lambda h: h.position)


def evaluation_order() -> list[Section]:
    """The sections with an evaluator, each after the sections it ``needs`` (else in JSON order)."""
    by_field = {s.field: s for s in SECTIONS if s.field is not None}
    done: list[Section] = []

    def visit(s: Section, path: tuple[str, ...]) -> None:
        if s in done:
            return
        if s.field in path:
            raise RuntimeError(f"section registry: cycle {' -> '.join(path + (s.field,))}")
        for need in s.needs:
            visit(by_field[need], path + (s.field,))
        done.append(s)

    for s in SECTIONS:
        visit(s, ())
    return [s for s in done if s.evaluate is not None]


def prose_fields() -> list[tuple[str, ...]]:
    """JSON paths of the config-given prose fields, for the completeness check."""
    return [p for s in SECTIONS for p in s.prose]


def empty_prose_fields(doc: dict) -> list[str]:
    """JSON paths of the descriptive (config-given) fields left empty: the completeness check."""
    out = []
    for path in prose_fields():
        node = doc
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, str) and not node.strip():
            out.append(".".join(path))
    return out


def column_keys(doc: dict) -> dict[str, list[dict]]:
    """Per table id, the key of its columns, worded with the run's own settings.

    Parameters
    ----------
    doc : dict
        A FactSheet as loaded from its JSON.

    Returns
    -------
    dict of str to list of dict
        Table id -> ``[{"label": str, "unit": str, "definition": str}, ...]`` in column order.
        Tables of sections that were not evaluated are absent. Renderers print each key under
        its table; nothing here computes a number of the report.
    """
    keys: dict[str, list[dict]] = {}
    for s in SECTIONS:
        if s.glossary is not None:
            keys.update(s.glossary(doc))
    return keys


def assemble_schema() -> dict:
    """The FactSheet JSON Schema: ``factsheet/schema/base.json`` plus each section's fragment.

    Properties come in JSON order (``schema_version``, ``title``, the sections, then the base's
    other properties); every section is required unless it says otherwise (``gate``).
    """
    root = resources.files("factsheet.schema")
    base = json.loads(root.joinpath("base.json").read_text("utf-8"))
    props, defs = {k: base["properties"][k] for k in ("schema_version", "title")}, dict(base["$defs"])
    for name in dict.fromkeys(s.schema for s in SECTIONS if s.schema is not None):
        fragment = json.loads(root.joinpath("sections", f"{name}.json").read_text("utf-8"))
        props.update(fragment["properties"])
        defs.update(fragment.get("$defs", {}))
    props.update((k, v) for k, v in base["properties"].items() if k not in props)
    missing = [s.field for s in SECTIONS if s.field is not None and s.field not in props]
    if missing:
        raise RuntimeError(f"section registry: no schema for {missing}")
    required = [s.field for s in SECTIONS if s.field is not None and s.required]
    return dict(base, required=["schema_version", "title"] + required, properties=props,
                **{"$defs": defs})


def write_schema(path: str | Path) -> Path:
    """Write :func:`assemble_schema` to ``path`` (the shipped ``factsheet-<version>.schema.json``)."""
    path = Path(path)
    path.write_text(json.dumps(assemble_schema(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
