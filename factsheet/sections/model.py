"""Model Name, Overview, Purpose, Intended Domain, Model Information, Inputs and Outputs: the model
as configured and as loaded (file identity, runtime, the ART estimator that wraps it)."""

from __future__ import annotations

from factsheet.document import ModelSection
from factsheet.sections.base import Heading, RunContext, Section, SectionResult, term


def evaluate(ctx: RunContext) -> SectionResult:
    """The Model section from the config's prose and the loaded model."""
    p, model, estimator, cfg = ctx.cfg.factsheet, ctx.model, ctx.estimator, ctx.cfg
    return SectionResult(ModelSection(
        name=p.model_name, overview=p.overview, purpose=p.purpose, intended_domain=p.intended_domain,
        information=p.model_information, inputs_outputs=p.inputs_outputs, source=model.source,
        file=model.path.name if model.path is not None else (cfg.model.url or cfg.model.entry or ""),
        sha256=model.sha256, sample_rate=model.sample_rate, clip_samples=model.clip_samples,
        clip_seconds=model.clip_samples / model.sample_rate, n_classes=len(model.class_labels),
        n_parameters=model.runtime.get("n_parameters"),
        estimator={"art_class": type(estimator).__name__, "input_shape": list(estimator.input_shape),
                   "nb_classes": int(estimator.nb_classes), "clip_values": [float(v) for v in estimator.clip_values],
                   "preprocessing": None, "batch_size": cfg.model.batch_size},
        runtime=model.runtime,
    ))


def glossary(doc: dict) -> dict:
    return {"model": [
        term("Parameters", "weights", "Number of scalar weights in the model (trainable and not)."),
        term("input_shape / clip_values", "samples / input units",
             "Waveform length ART feeds the model, and the range ART clips adversarial inputs to."),
    ]}


SECTIONS = (Section(
    field="model", schema="model", evaluate=evaluate, glossary=glossary,
    headings=(Heading("model_name", "Model Name", 10), Heading("overview", "Overview", 20),
              Heading("purpose", "Purpose", 30), Heading("intended_domain", "Intended Domain", 40),
              Heading("model_information", "Model Information", 60),
              Heading("inputs_outputs", "Inputs and Outputs", 70)),
    prose=(("model", "name"), ("model", "overview"), ("model", "purpose"), ("model", "intended_domain"),
           ("model", "information"), ("model", "inputs_outputs")),
),)
