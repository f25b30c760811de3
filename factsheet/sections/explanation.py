"""Explanation: occlusion importance over time and frequency (:func:`factsheet.explanation.evaluate_explanation`),
its column keys and its Summary lines; the configured prose is kept as a note."""

from __future__ import annotations

import time

from factsheet.document import ExplanationSection
from factsheet.sections.base import Heading, RunContext, Section, SectionResult, percent, term
from factsheet.sections.text import stated_or_not

LOG_ODDS = "log-odds (natural log of p / (1 - p))"


def evaluate(ctx: RunContext) -> SectionResult:
    """Occlusion maps of correctly detected positives, tested; or the configured prose when
    ``[explanation] enabled`` is false."""
    cfg = ctx.cfg
    if not cfg.explanation.enabled:
        return SectionResult(stated_or_not(cfg.factsheet.explanation))
    from factsheet.explanation import evaluate_explanation
    from factsheet.sections.domain_shift import _predictor

    t = time.perf_counter()
    facts: dict = {}
    ds = ctx.dataset
    durations = [len(c) / ds.sample_rate for c in ds.clips] if ds.events is not None else None
    section, audio = evaluate_explanation(
        waveforms=ctx.waveforms, labels=ds.labels, scores=ctx.scores, class_labels=ds.class_labels,
        clip_ids=list(ds.metadata["clip_id"]), predict=_predictor(ctx, what="an occluded clip"),
        sample_rate=ctx.model.sample_rate, settings=cfg.explanation, bootstrap=cfg.metrics,
        keras_model=ctx.model.keras_model, events=ds.events, durations_s=durations, prose=cfg.factsheet.explanation,
        run_clips=_clip_runner(ctx, facts))
    requests = facts.get("model_requests")
    return SectionResult(ExplanationSection(**section), audio=audio, timings={"explanation": time.perf_counter() - t},
                         provenance={"explanation_requests": requests} if requests else {})


def _clip_runner(ctx: RunContext, facts: dict):
    """Where the per-clip occlusion maps are made: None (here) unless they go on the executor
    (:func:`~factsheet.sections.domain_shift.distributes`), else a runner mapping the clips over
    ``ctx.executor`` (:mod:`factsheet.explanation.tasks`; each worker loads the
    model once and gets the clips once). ``facts`` receives the executor's run facts and, for an HTTP model, the
    workers' summed request counters (``model_requests``)."""
    from factsheet.sections.domain_shift import distributes, scoring_spec

    if not distributes(ctx, "explanation"):
        return None
    from attacks.runner import counter_sum
    from factsheet.executors import Job, map_tasks
    from factsheet.explanation.tasks import ExplainShared, run_explain
    from factsheet.models.worker import request_concurrency, setup_scorer

    scoring = scoring_spec(ctx)

    def run_clips(tasks: list, *, clips: dict, grid, fill, target_db: float, max_passes: int) -> dict:
        shared = ExplainShared(scoring=scoring, clips=clips, grid=grid, fill=fill, target_db=target_db,
                               max_passes=max_passes)
        made: dict = {}

        def keep(task, result: dict) -> None:
            spent = result.pop("_model_requests", None)
            if spent is not None:
                facts["model_requests"] = counter_sum(facts.get("model_requests"), spent)
            made[task.row] = result

        job = Job(setup=setup_scorer, run=run_explain, shared=shared,
                  request_concurrency=request_concurrency(scoring.model_spec))
        facts.update(executor=map_tasks(job, tasks, settings=ctx.executor, on_result=keep))
        return made

    return run_clips


def glossary(doc: dict) -> dict:
    ex = doc.get("explanation") or {}
    if ex.get("status") != "evaluated":
        return {}
    st = ex["settings"]
    ci = f"{percent(st['confidence'])} CI"
    return {
        "explanation_bands": [
            term("Class", "name", "The class explained; its explained clips in brackets."),
            term("Band", "Hz", "The mel-spaced frequency band [low, high)."),
            term(f"Importance [{ci}]", LOG_ODDS, "Log-odds drop when the band's cells are occluded, summed over "
                 f"time slices, mean over the class's explained clips; studentised bootstrap (bootstrap-t) {ci} over "
                 "clips; insufficient evidence below 5 clips."),
            term("Energy share", "fraction of the clip's STFT energy, 0 to 1", "Share of the explained clips' "
                 "energy in the band (mean over clips): importance read beside where the energy is."),
        ],
        "explanation_examples": [
            term("Class", "name", "The class explained."),
            term("Clip", "clip id", "The explained clip: the class's clip with the largest single-cell drop."),
            term("Most important cell", "Hz, s", "Band [low, high) Hz and time slice [start, end) s."),
            term("Drop", LOG_ODDS, "Log-odds drop of the class when that cell alone is occluded."),
            term("Score (without cell)", "probability, 0 to 1", "The class's score on the clip, and on the clip "
                 "without the cell."),
            term("Listen", "audio", "The cell alone (band-limited, time-gated, 50 ms margins) and the clip "
                 "without the cell (what the model scored); absent beyond the audio budget."),
        ],
        "explanation_faithfulness": [
            term("Order", "name", "How cells are removed: the map's order, loudest first, random (mean)."),
            term("Deletion area", "unitless (score / clean score, integrated over the fraction removed)",
                 "Area under the deletion curve, mean over the checked clips; lower is better."),
            term(f"Map minus order [{ci}]", "area difference", f"Paired mean difference of areas over clips, "
                 f"studentised bootstrap (bootstrap-t) {ci}; below 0 (interval included): the map's order is "
                 "better."),
        ],
        "explanation_checks": [
            term("Check", "name", "What is compared (see Definitions)."),
            term("Pairs", "clip-class pairs", "How many maps were compared."),
            term("Median Spearman", "rank correlation, -1 to 1", "Median over pairs of the rank correlation of the "
                 "two maps' cells."),
            term("Same top cell", "share, 0 to 1", "Share of pairs whose two maps have the same most important "
                 "cell."),
            term("Result", "passed / failed / not possible", "The check's verdict (threshold in Definitions)."),
        ],
    }


def summary(doc: dict) -> dict | None:
    """Whether the map says more than loudness, and the sanity checks' verdicts."""
    ex = doc.get("explanation") or {}
    if ex.get("status") != "evaluated":
        return None
    f = ex["faithfulness"]
    line = (f"Occlusion maps of {ex['clips']['n_explained']} clips ({ex['settings']['n_bands']} x "
            f"{ex['settings']['n_slices']} cells, {ex['settings']['fill']} fill): "
            f"{'says more than loudness' if f['beats_loudness'] else 'not shown to say more than loudness'}; "
            f"{'beats' if f['beats_random'] else 'does not beat'} random orders.")
    failed = [k for k, v in ex["sanity"].items() if v.get("passed") is False]
    return {"title": "Explanation", "anchor": "explanation", "headline": [line],
            "n_findings": len(failed) + (0 if f["beats_random"] else 1), "findings": ex["findings"][:2]}


SECTIONS = (Section(field="explanation", schema="explanation", evaluate=evaluate, glossary=glossary,
                    summary=summary, headings=(Heading("explanation", "Explanation", 150),),
                    prose=(("explanation", "text"),)),)
