"""Test Data: the evaluation set every measured number was computed on, and how its clips were
brought to the model's input length."""

from __future__ import annotations

from factsheet.document import DatasetSection
from factsheet.metrics import is_single_label
from factsheet.sections.base import Heading, RunContext, Section, SectionResult, term


def evaluate(ctx: RunContext) -> SectionResult:
    dataset, model, counts = ctx.dataset, ctx.model, ctx.length_counts
    n = model.clip_samples
    policy = dict(counts, n_samples=n,
                  text=(f"Every clip is brought to the model's input length of {n} samples "
                        f"({n / model.sample_rate:g} s): shorter clips are repeated (tiled) and cut, longer clips "
                        f"are cut at the end. {counts['repeated']} clips were repeated, {counts['cut']} cut, "
                        f"{counts['unchanged']} unchanged."))
    return SectionResult(DatasetSection(
        name=dataset.name, kind=ctx.cfg.dataset.kind, text=ctx.cfg.factsheet.test_data, n_clips=dataset.n_clips,
        sha256=dataset.sha256(), sample_rate=dataset.sample_rate, length_policy=policy, card=dataset.card,
        class_labels=[{"index": c.index, "mid": c.mid, "display_name": c.display_name, "category": c.category}
                      for c in dataset.class_labels],
        single_label=bool(is_single_label(dataset.labels)),
    ))


def glossary(doc: dict) -> dict:
    return {"test_data": [
        term("clips / Hz", "clips, Hz", "Evaluation clips and their sample rate before the model's length "
                                        "policy (next row) is applied."),
        term("Labels / classes", "classes", "Classes in the evaluation set's label list (the model's classes)."),
    ]}


SECTIONS = (Section(field="dataset", schema="test_data", evaluate=evaluate, glossary=glossary,
                    headings=(Heading("test_data", "Test Data", 120),), prose=(("dataset", "text"),)),)
