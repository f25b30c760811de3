"""Test Data: the evaluation set every measured number was computed on, and how its clips were
brought to the model's input length."""

from __future__ import annotations

import numpy as np

from factsheet.datasets.base import AudioDataset
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
        label_mapping=label_mapping_section(dataset, ctx.model_scores),
        unreadable=unreadable_section(ctx.cfg, dataset),
    ))


def glossary(doc: dict) -> dict:
    """The Test Data table's key; rows for the label mapping and skipped files where the FactSheet has them."""
    dataset = doc.get("dataset") or {}
    mapped = bool(dataset.get("label_mapping"))
    terms = [
        term("clips / Hz", "clips, Hz", "Evaluation clips and their sample rate before the model's length "
                                        "policy (next row) is applied."),
        term("Labels / classes", "classes", "Classes scored: the model's classes that the dataset's labels map to "
                                            "(Label mapping row)." if mapped else
             "Classes in the evaluation set's label list (the model's classes)."),
    ]
    if mapped:
        terms += [
            term("Dataset-only labels", "clips", "Dataset labels no model class matches, dropped from the labels; "
                                                 "in parentheses the clips carrying each."),
            term("Model-only classes", "clips", "Model classes no dataset label maps to, not scored; in parentheses "
                                                "the clips whose top-1 over the model's whole output is that class."),
        ]
    if dataset.get("unreadable"):
        terms.append(term("Unreadable files", "files", "Audio files the metadata lists that were missing or "
                                                       "unreadable, and why."))
    return {"test_data": terms}


def coverage_text(dataset: AudioDataset) -> str | None:
    """The sentence the performance section adds when a label mapping chose the scored classes."""
    m = dataset.label_mapping
    if m is None:
        return None
    n, rest = dataset.n_classes, m.n_model_classes - dataset.n_classes
    return (f"The metrics cover the {n} mapped classes: the model classes that the dataset's labels map to "
            f"(label_mapping = {m.table or m.method}); "
            + (f"the model's other {rest} outputs are not scored (see Test Data)." if rest else
               "that is every output of the model (see Test Data)."))


def label_mapping_section(dataset: AudioDataset, scores: np.ndarray) -> dict | None:
    """The JSON ``dataset.label_mapping``: what was mapped, what was left out on each side, with clip counts."""
    m = dataset.label_mapping
    if m is None:
        return None
    top1 = np.bincount(np.argmax(scores, axis=1), minlength=m.n_model_classes)
    dataset_only = sum(1 for c in m.dataset_only if c["n_clips"])
    text = (f"{dataset.n_classes} of the model's {m.n_model_classes} classes are mapped from the dataset's "
            f"{m.n_dataset_classes} labels by {'the mapping table ' + repr(m.table) if m.table else m.method}"
            f"{' (the default)' if m.defaulted else ''}. {len(m.dataset_only)} dataset labels have no model class "
            f"({dataset_only} of them on some clip); {m.n_clips_all_labels_unmapped} clips whose labels all fall "
            f"outside the mapping are kept as pure negatives. {len(m.model_only)} model classes are not scored.")
    return {
        "method": m.method, "table": m.table, "defaulted": m.defaulted, "n_dataset_classes": m.n_dataset_classes,
        "n_model_classes": m.n_model_classes, "n_mapped_classes": dataset.n_classes,
        "model_columns": [int(j) for j in dataset.model_columns],
        "pairs": [{"dataset_label": d, "model_label": k} for d, k in m.pairs],
        "dataset_only": [dict(c) for c in m.dataset_only],
        "model_only": [{"label": c.display_name, "mid": c.mid, "index": c.index, "n_top1": int(top1[c.index])}
                       for c in m.model_only],
        "n_clips_all_labels_unmapped": m.n_clips_all_labels_unmapped,
        "text": text,
    }


def unreadable_section(cfg, dataset: AudioDataset) -> dict | None:
    """The JSON ``dataset.unreadable``: the policy and the files skipped (None for generated data)."""
    if dataset.n_listed is None:
        return None
    d = cfg.dataset
    return {"on_unreadable": d.on_unreadable, "max_skipped_fraction": d.max_skipped_fraction,
            "n_listed": int(dataset.n_listed), "n_skipped": len(dataset.skipped),
            "skipped": [{"file": f.file, "reason": f.reason} for f in dataset.skipped]}


SECTIONS = (Section(field="dataset", schema="test_data", evaluate=evaluate, glossary=glossary,
                    headings=(Heading("test_data", "Test Data", 120),), prose=(("dataset", "text"),)),)
