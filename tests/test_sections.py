"""The section registry: every section declared once, and everything that loops over it agrees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from factsheet.document import load_schema
from factsheet.render import template_dir
from factsheet.sections import (SECTIONS, Heading, RunContext, Section, SectionResult, assemble_schema,
                                column_keys, evaluation_order, headings)
from factsheet.sections import _collect

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_schema_is_the_assembled_one():
    """``factsheet/schema/factsheet-1.2.0.schema.json`` is generated (``make docs``) from the fragments."""
    assert load_schema() == assemble_schema()
    shipped = json.loads((ROOT / "factsheet/schema/factsheet-1.2.0.schema.json").read_text("utf-8"))
    fields = [s.field for s in SECTIONS if s.field is not None]
    assert list(shipped["properties"]) == ["schema_version", "title"] + fields + ["outputs"]
    assert shipped["required"] == ["schema_version", "title"] + [s.field for s in SECTIONS if s.field and s.required]
    assert "gate" in fields and "gate" not in shipped["required"]  # written only by `factsheet run --policy`


def test_every_fragment_belongs_to_a_section_and_every_section_field_is_typed():
    frags = {p.stem for p in (ROOT / "factsheet/schema/sections").glob("*.json")}
    assert frags == {s.schema for s in SECTIONS if s.schema is not None}
    for s in (s for s in SECTIONS if s.field is not None):
        frag = json.loads((ROOT / f"factsheet/schema/sections/{s.schema}.json").read_text("utf-8"))
        assert s.field in frag["properties"], (s.schema, s.field)
        assert frag["properties"][s.field].get("description"), s.field


def test_every_heading_has_its_partials_and_no_partial_is_orphaned():
    keys = [h.key for h in headings()]
    part = template_dir() / "sections"
    for ext in ("md", "html"):
        have = {p.name.removesuffix(f".{ext}.j2") for p in part.glob(f"*.{ext}.j2")}
        assert have == set(keys), ext


def test_headings_follow_the_seed_factsheet_order():
    assert [h.title for h in headings()] == [
        "Summary", "Model Name", "Overview", "Purpose", "Intended Domain", "Training Data", "Model Information",
        "Inputs and Outputs", "Performance Metrics", "Bias", "Robustness", "Domain Shift", "Test Data",
        "Optimal Conditions", "Poor Conditions", "Explanation", "Contact Information", "Provenance"]


def test_evaluation_order_puts_needs_first_and_keeps_json_order_otherwise():
    order = [s.field for s in evaluation_order()]
    for s in evaluation_order():
        for need in s.needs:
            assert order.index(need) < order.index(s.field), (need, s.field)
    assert order.index("robustness") < order.index("bias") < order.index("optimal_conditions")
    assert "provenance" not in order  # filled by the pipeline once the run has ended


def test_registry_refuses_a_duplicate_heading(monkeypatch):
    import factsheet.sections.contact as contact

    twin = Section(field="contact2", schema="contact", headings=(Heading("contact", "Again", 999),))
    monkeypatch.setattr(contact, "SECTIONS", contact.SECTIONS + (twin,))
    with pytest.raises(RuntimeError, match="duplicate heading"):
        _collect()


def test_column_keys_cover_only_evaluated_sections():
    doc = {"performance": {"status": "not_evaluated"}, "robustness": {"status": "not_evaluated"},
           "bias": {"status": "not_evaluated"}}
    keys = column_keys(doc)
    assert set(keys) == {"model", "training_card", "test_data", "provenance"}


def test_a_new_section_is_one_module(monkeypatch):
    """A section added to the registry is evaluated by the pipeline's loop, after what it needs, and
    lands in the FactSheet with its timing: the Conditions sections are built exactly this way."""
    from dataclasses import replace

    import factsheet.sections as registry
    from factsheet.config import load_config
    from factsheet.pipeline import run

    seen = []

    def evaluate(ctx: RunContext) -> SectionResult:
        seen.append(sorted(ctx.results))
        return SectionResult({"n_clips_seen": int(ctx.scores.shape[0]), "mAP": ctx.results["performance"].mAP},
                             timings={"extra": 0.25})

    extra = Section(field="extra", schema="contact", evaluate=evaluate, needs=("performance",),
                    headings=(Heading("extra", "Extra", 999),))
    monkeypatch.setattr(registry, "SECTIONS", registry.SECTIONS + (extra,))
    cfg = load_config(ROOT / "configs" / "ci_quick.toml")
    cfg = replace(cfg, dataset=replace(cfg.dataset, n_clips=48), metrics=replace(cfg.metrics, bootstrap_resamples=10),
                  robustness=replace(cfg.robustness, enabled=False))
    sheet, _ = run(cfg)
    doc = sheet.to_dict()
    assert doc["extra"] == {"n_clips_seen": 48, "mAP": doc["performance"]["mAP"]}
    assert "performance" in seen[0] and "provenance" not in seen[0]
    assert doc["provenance"]["timings_s"]["extra"] == 0.25
    assert list(doc)[:5] == ["schema_version", "title", "model", "training_data", "dataset"]
    assert doc["optimal_conditions"]["status"] == "evaluated"  # derived from the Bias result
