"""Training Data: the configured prose and, where the model carries one, its training-set card."""

from __future__ import annotations

from factsheet.document import TrainingDataSection
from factsheet.sections.base import Heading, RunContext, Section, SectionResult, term


def evaluate(ctx: RunContext) -> SectionResult:
    return SectionResult(TrainingDataSection(text=ctx.cfg.factsheet.training_data,
                                             card=ctx.model.card.get("training_data_card")))


def glossary(doc: dict) -> dict:
    return {"training_card": [
        term("n_clips", "clips", "Clips in the training split described by the card."),
        term("seed", "integer", "Seed the training split was generated from."),
        term("class_event_counts", "sound events", "Events of each class in the training split (a clip holds "
                                                   "1-3 events, so counts add up to more than n_clips)."),
        term("voice_type_counts", "sound events", "Speech events by speaker voice type; 'none' counts the "
                                                  "events that are not speech."),
    ]}


SECTIONS = (Section(field="training_data", schema="training_data", evaluate=evaluate, glossary=glossary,
                    headings=(Heading("training_data", "Training Data", 50),), prose=(("training_data", "text"),)),)
