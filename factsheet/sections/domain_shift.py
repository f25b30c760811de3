"""Domain Shift: the corruption suite (:func:`factsheet.domain_shift.evaluate_domain_shift`), its
column keys and its comparison (ImageNet-C corruption errors between two FactSheets)."""

from __future__ import annotations

import numpy as np

from factsheet.delta import Delta
from factsheet.document import DomainShiftSection, not_evaluated
from factsheet.errors import InputError
from factsheet.sections.base import PROBABILITY, SD, UNITLESS, Heading, RunContext, Section, SectionResult
from factsheet.sections.base import fmt, percent, term


def evaluate(ctx: RunContext) -> SectionResult:
    """Corrupt the chosen clips cell by cell and compare the evaluation dataset with each
    ``[[domain_shift.datasets]]`` target, scoring both with the model; or say why not."""
    cfg = ctx.cfg
    settings = cfg.domain_shift
    if not settings.enabled:
        return SectionResult(not_evaluated(cfg.factsheet.domain_shift,
                                           why="domain_shift.enabled is false in the config."))
    from factsheet.domain_shift import evaluate_domain_shift
    from factsheet.domain_shift.plots import curves_svg, heatmap_svg

    check(cfg, ctx.model)
    natural = [_natural_target(ctx, d, index=k) for k, d in enumerate(settings.datasets)]
    from attacks.runner import StrataError

    facts: dict = {}
    try:
        section = evaluate_domain_shift(
            waveforms=ctx.waveforms, labels=ctx.dataset.labels, clean_scores=ctx.scores,
            class_labels=ctx.dataset.class_labels, predict=_predictor(ctx), sample_rate=ctx.model.sample_rate,
            settings=settings, bootstrap=cfg.metrics, prose=cfg.factsheet.domain_shift, natural_shift=natural,
            metadata=ctx.dataset.metadata, bias=cfg.bias, run_cells=_cell_runner(ctx, facts))
    except StrataError as exc:
        raise InputError(source=str(cfg.path or "config"), field=exc.field, value=exc.value,
                         reason=exc.reason) from None
    plots = {}
    if section["corruptions"]:
        plots = {"domain_shift_curves": curves_svg(section), "domain_shift_heatmap": heatmap_svg(section)}
    requests = facts.get("model_requests")
    return SectionResult(DomainShiftSection(**section), plots=plots,
                         provenance={"domain_shift_requests": requests} if requests else {})


def _cell_runner(ctx: RunContext, facts: dict):
    """Where the corruption cells are scored: None (here, one by one) unless they go on the executor
    (:func:`distributes`), else a runner mapping the cells over ``ctx.executor``
    (:mod:`factsheet.domain_shift.cells`; each worker loads the model once and gets the clips once).
    ``facts`` receives the executor's run facts and, for an HTTP model, the workers' summed request counters
    (``model_requests``)."""
    if not distributes(ctx, "domain_shift"):
        return None
    ex = ctx.executor
    from attacks.runner import counter_sum
    from factsheet.domain_shift.cells import SuiteShared, run_cell
    from factsheet.executors import Job, map_tasks
    from factsheet.models.worker import request_concurrency, setup_scorer

    scoring = scoring_spec(ctx)
    spec = scoring.model_spec

    def run_cells(tasks: list, *, clips: np.ndarray, clip_ids: np.ndarray, seed: int, sample_rate: int) -> dict:
        shared = SuiteShared(scoring=scoring, clips=np.asarray(clips, np.float32), clip_ids=np.asarray(clip_ids),
                             sample_rate=sample_rate, seed=seed)
        scored: dict = {}

        def keep(task, result) -> None:
            scored[task.key] = result
            if result.model_requests is not None:
                facts["model_requests"] = counter_sum(facts.get("model_requests"), result.model_requests)

        job = Job(setup=setup_scorer, run=run_cell, shared=shared, request_concurrency=request_concurrency(spec))
        facts.update(executor=map_tasks(job, tasks, settings=ex, on_result=keep))
        return scored

    return run_cells


def distributes(ctx: RunContext, stage: str) -> bool:
    """Whether ``stage`` runs its tasks outside this process: ``[execution] stages`` names it (or leaves it to
    the executor's default, :meth:`~factsheet.config.ExecutionConfig.distributes`) and ``ctx.executor`` is
    neither ``local`` nor a pool of one."""
    ex = ctx.executor
    if ex is None or ex.kind == "local" or (ex.kind == "processes" and ex.workers <= 1):
        return False
    return ctx.cfg.execution.distributes(stage, executor=ex.kind)


def scoring_spec(ctx: RunContext, *, columns: list[int] | None = None):
    """How a worker scores clips as :func:`_predictor` does here (:class:`factsheet.models.worker.ScoringSpec`)."""
    from factsheet.models.sources import model_spec
    from factsheet.models.worker import ScoringSpec

    columns = ctx.dataset.model_columns if columns is None else columns
    return ScoringSpec(model_spec=model_spec(ctx.model), wrapper=ctx.cfg.model.wrapper,
                       batch_size=ctx.cfg.model.batch_size, columns=None if columns is None else [int(c) for c in columns],
                       source=_model_source(ctx))


def _model_source(ctx: RunContext) -> str:
    return str(ctx.model.path or ctx.cfg.model.url or "model")


def finish(ctx: RunContext):
    """The group tests corrected in the Bias section's family, when both sections were evaluated with them.

    The Bias section (evaluated after this one, since it reads it) appends these tests' p-values to its own
    (and the Robustness section's) before the correction and reports them adjusted
    (``bias.domain_shift_disparities``); this takes those adjusted values, so both sections show the same
    p-values and findings.
    """
    import dataclasses

    ds, bias = ctx.results["domain_shift"], ctx.results.get("bias")
    if getattr(ds, "groups", None) is None or getattr(bias, "domain_shift_disparities", None) is None:
        return ds
    from factsheet.domain_shift.groups import mark_findings

    key = ("corruption", "columns", "group")
    tested = [d for d in bias.domain_shift_disparities if d["p_value"] is not None]
    mine = [d for d in ds.groups["comparisons"] if d["p_value"] is not None]
    if [tuple(str(d[k]) for k in key) for d in tested] != [tuple(str(d[k]) for k in key) for d in mine]:
        raise RuntimeError("bias.domain_shift_disparities does not match domain_shift.groups.comparisons")
    groups = mark_findings(ds.groups, adjusted=[d["p_adjusted"] for d in tested], n_family=bias.settings["n_tests"],
                           correction=ctx.cfg.bias.correction, with_bias=True)
    return dataclasses.replace(ds, groups=groups)


def check(cfg, model) -> None:
    """Refuse, before anything is predicted, a suite the model's sample rate cannot take (a cut-off at
    or above Nyquist, custom levels out of range): one line naming the field and value."""
    from factsheet import corruptions

    settings = cfg.domain_shift
    if not (settings.enabled and settings.run_corruptions()):
        return
    try:
        corruptions.validate_suite(settings.suite_entries(), sample_rate=model.sample_rate,
                                   field="domain_shift.corruptions")
    except ValueError as exc:
        raise InputError(source=str(cfg.path or "config"), reason=str(exc)) from None


def check_data(cfg, dataset) -> None:
    """Refuse, before anything is predicted, ``stratify_by`` columns the metadata lacks and an ``n_clips``
    too small for every group's ``min_per_group`` (one line naming the field and value)."""
    settings = cfg.domain_shift
    if not (settings.enabled and settings.run_corruptions() and settings.stratify_by):
        return
    from attacks.runner import StrataError
    from factsheet.domain_shift.section import _group_minimum

    try:
        _group_minimum(dataset.metadata, settings=settings)
    except StrataError as exc:
        raise InputError(source=str(cfg.path or "config"), field=exc.field, value=exc.value,
                         reason=exc.reason) from None


def _predictor(ctx: RunContext, *, columns: list[int] | None = None, what: str = "a corrupted clip"):
    """The model's scores of clips (an array or :class:`~factsheet.datasets.base.FittedClips`) for the
    model columns ``columns`` (default: the evaluation dataset's classes); non-finite scores are one line."""
    from factsheet.models.adapter import predict_scores

    if columns is None:
        columns = ctx.dataset.model_columns

    from factsheet.models.worker import checked_scores

    def predict(waveforms) -> np.ndarray:
        scores = predict_scores(ctx.estimator, waveforms, batch_size=ctx.cfg.model.batch_size)
        return checked_scores(scores, columns=columns, source=_model_source(ctx), what=what)

    return predict


def _columns(dataset) -> list[int]:
    """The model output column of each of the dataset's classes."""
    return list(range(dataset.n_classes)) if dataset.model_columns is None else list(dataset.model_columns)


def _natural_target(ctx: RunContext, d, *, index: int) -> dict:
    """Load one ``[[domain_shift.datasets]]`` target with the pipeline's loader and label alignment, fit its
    clips to the model's input, score them, and compare it with the evaluation dataset."""
    from factsheet.datasets.base import fit_clips
    from factsheet.domain_shift.natural import ShiftSide, compared_classes, natural_shift_entry, shift_seeds
    from factsheet.pipeline import align_to_model, load_dataset

    where, source = f"domain_shift.datasets[{index}]", str(ctx.cfg.path or "config")
    ds = align_to_model(load_dataset(d, sample_rate=ctx.model.sample_rate), ctx.model, d, source=source)
    waves, lengths = fit_clips(ds.clips, n_samples=ctx.model.clip_samples)
    scores = _predictor(ctx, columns=_columns(ds), what=f"a clip of {where} ({d.name})")(waves)
    src = ShiftSide(labels=ctx.dataset.labels, scores=ctx.scores, columns=_columns(ctx.dataset),
                    class_labels=ctx.dataset.class_labels)
    tgt = ShiftSide(labels=ds.labels, scores=scores, columns=_columns(ds), class_labels=ds.class_labels)
    pairs, left_out = compared_classes(source=src, target=tgt, target_name=d.name)
    if not pairs:
        raise InputError(source=source, field=where, value=d.name,
                         reason="no class has a positive and a negative clip in both this dataset and the evaluation "
                                "dataset: nothing to compare")
    metrics = ctx.cfg.metrics
    info = {"kind": d.kind, "n_clips": int(ds.n_clips), "n_skipped": len(ds.skipped), "length_policy": lengths,
            "sha256": ds.sha256()}
    return natural_shift_entry(name=d.name, dataset=info, source=src, target=tgt, pairs=pairs, left_out=left_out,
                               n_resamples=metrics.bootstrap_resamples, confidence=metrics.confidence,
                               seeds=shift_seeds(seed=metrics.seed, index=index),
                               tolerance=ctx.cfg.domain_shift.tolerance)


def glossary(doc: dict) -> dict:
    ds = doc.get("domain_shift") or {}
    if ds.get("status") != "evaluated":
        return {}
    st = ds["settings"]
    ci = f"{percent(st['confidence'])} CI"
    return {**_suite_glossary(st, ci), **(_natural_glossary(st, ci) if ds.get("natural_shift") else {}),
            **(_groups_glossary(ds["groups"], ci) if ds.get("groups") else {})}


def _groups_glossary(g: dict, ci: str) -> dict:
    """Column keys of the "Groups under corruption" table."""
    drop = "unitless, mAP difference"
    return {"domain_shift_groups": [
        term("Level", "the corruption's unit", f"The corruption's level at severity {g['severity']}, the one tested."),
        term("Group", "metadata value, clips", "The group (a value of a Bias group column) and its corrupted clips."),
        term("Reference", "metadata value, clips", "The column's most resilient group: the smallest mAP drop over its "
                                                   "own classes."),
        term("Drop", drop, "The group's clean minus corrupted mAP over the classes both groups have enough positives "
                           "of."),
        term("Reference drop", drop, "The reference's drop over the same classes."),
        term(f"Extra drop [{ci}]", drop, "Drop minus reference drop: positive when the corruption costs the group more "
                                         f"mAP; paired bootstrap {ci} (clean and corrupted scores of the same resampled "
                                         "clips)."),
        term("Adj. p", PROBABILITY, f"p-value of H0 |extra drop| <= {g['tolerance']:g}, adjusted by "
                                    f"{g['family']['correction']} over {g['family']['n_tests']} tests."),
        term("Finding", "yes / no", f"Interval entirely above {g['tolerance']:g} and adjusted p below "
                                    f"{1 - float(g['confidence']):.2g}."),
    ]}


def _natural_glossary(st: dict, ci: str) -> dict:
    """Column keys of the natural-shift tables."""
    metric_unit = f"the metric's unit: {UNITLESS} (mAP), {PROBABILITY} (mean AUC), {SD} (d')"
    dataset = term("Dataset", "name", "The [[domain_shift.datasets]] entry (the target) the row compares with the "
                                      "evaluation set.")
    return {
        "domain_shift_natural": [
            dataset,
            term(f"Evaluation set [{ci}]", metric_unit, "The metric on the evaluation dataset over the compared "
                                                       f"classes, with its BCa bootstrap {ci}."),
            term(f"Target [{ci}]", metric_unit, "The metric on the target over the same classes (prevalence-matched: "
                                               "its negatives re-weighted to the evaluation set's class mix), with "
                                               f"its own bootstrap {ci}."),
            term(f"Gap [{ci}]", metric_unit, "Target minus evaluation set; negative is worse on the target; unpaired "
                                            f"BCa bootstrap {ci} ({st['n_bootstrap']} independent resamples of each set)."),
        ],
        "domain_shift_natural_classes": [
            dataset,
            term("Positives (evaluation / target)", "clips", "Positive clips of the class in the evaluation set and "
                                                             "in the target."),
            term("AP (evaluation set)", UNITLESS, "Average precision of the class on the evaluation dataset."),
            term("AP (target)", UNITLESS, "Average precision of the class on the target, at the target's own class "
                                          "mix."),
            term("Change", UNITLESS, "AP (target) - AP (evaluation set); part of it may come from the class mix "
                                     "alone."),
            term("AP (target, matched)", UNITLESS, "AP on the target with its negatives weighted so the class has the "
                                                   "evaluation set's positives-to-negatives ratio."),
            term("Change (matched)", UNITLESS, "AP (target, matched) - AP (evaluation set): the change the class mix "
                                               "does not explain."),
        ],
    }


def _suite_glossary(st: dict, ci: str) -> dict:
    """Column keys of the corruption suite's tables."""
    return {
        "domain_shift_summary": [
            term("Breaking point", "the corruption's unit", f"First level whose mAP drop exceeds "
                 f"{st['tolerance']:g} with confidence (its paired {ci} lies above it); 'none' when no level does."),
            term("Mean relative drop", "percent of clean mAP", "Mean over the severities of (clean mAP - "
                                                               "corrupted mAP) / clean mAP."),
            term(f"Largest mAP drop [{ci}]", UNITLESS, f"Clean minus corrupted mAP at the level where it is largest; "
                                                    f"paired BCa bootstrap {ci}; none with fewer than 10 positive "
                                                    "or negative clips of a class."),
        ],
        "domain_shift_cells": [
            term("Severity", "severity steps", "1 (mildest) to 5: which of the corruption's five levels."),
            term("Level", "the corruption's unit", "The severity's setting in physical units."),
            term("mAP", UNITLESS, "Mean average precision on the corrupted clips (Performance Metrics' definition)."),
            term(f"Drop [{ci}]", UNITLESS, "Clean mAP - corrupted mAP on the same clips; positive is worse; paired "
                                           f"BCa bootstrap interval ({st['n_bootstrap']} resamples; insufficient "
                                           "evidence below 10 positive or negative clips of a class)."),
            term("Relative", "percent of clean mAP", "The drop / clean mAP."),
            term("Mean AUC (drop)", PROBABILITY, "Mean ROC AUC on the corrupted clips, and its drop."),
            term("d' (drop)", SD, "sqrt(2) Phi^-1(mean AUC) on the corrupted clips, and its drop."),
            term("Measured", "the measure's unit", "What the corruption achieved on these clips: median over clips "
                                                   "[min, max] of the named measure."),
            term("Target", "the measure's unit", "The value the measure should come close to; '-' where the check "
                                                 "is a bound (filters, overdrive)."),
        ],
    }


def summary(doc: dict) -> dict | None:
    """The suite's mean relative drop and how many corruptions break the model; each natural-shift
    target's prevalence-matched gap; the worst findings first."""
    ds = doc.get("domain_shift") or {}
    if ds.get("status") != "evaluated":
        return None
    lines, n_findings = [], 0
    blocks = ds["corruptions"]
    if blocks:
        broken = [b for b in blocks if b["breaking_point"] is not None]
        n_findings += len(broken)
        drop = ds["mean_relative_drop"]
        lines.append(f"{len(blocks)} corruptions x {len(ds['settings']['severities'])} severities on "
                     f"{ds['settings']['n_clips']} clips: mean relative mAP drop "
                     f"{'undefined' if drop is None else f'{100 * drop:.1f} %'}; {len(broken)} corruption(s) break "
                     f"the model (mAP drop above {ds['settings']['tolerance']:g} with confidence).")
    shifts = ds.get("natural_shift", [])
    for e in shifts:
        gap = e["metrics"]["mAP_matched"]["gap"]
        lines.append(f"Natural shift to {e['name']}: prevalence-matched mAP gap {fmt(gap['value'])} "
                     f"({percent(ds['settings']['confidence'])} CI {fmt(gap['ci_low'])} to {fmt(gap['ci_high'])}).")
    n_findings += sum(1 for e in shifts if e["finding"])
    groups = ds.get("groups") or {}
    found = [d for d in groups.get("comparisons", []) if d["finding"]]
    if groups:
        lines.append(f"Groups under corruption (severity {groups['severity']}): {len(found)} of "
                     f"{groups['family']['n_domain_shift_tests']} group comparisons show a corruption hurting one group "
                     "more than another.")
    n_findings += len(found)
    # findings: one sentence per corruption in suite order, then one per target; the largest breaking drops first
    order = sorted((k for k, b in enumerate(blocks) if b["breaking_point"] is not None),
                   key=lambda k: -_breaking_drop(blocks[k]))
    worst = [ds["findings"][len(blocks) + k] for k, e in enumerate(shifts) if e["finding"]]
    worst += [ds["findings"][k] for k in order]
    worst += groups.get("findings", [])[:len(found)]
    return {"title": "Domain Shift", "anchor": "domain_shift", "headline": lines, "n_findings": n_findings,
            "findings": worst[:3]}


def _breaking_drop(block: dict) -> float:
    cell = next(c for c in block["cells"] if c["severity"] == block["breaking_point"]["severity"])
    return cell["mAP"]["drop"] or 0.0


def compare(*, old: dict, new: dict, why: str | None) -> dict:
    """Corruption errors of NEW against OLD (ImageNet-C, error = 1 - mAP), when both ran the same suite,
    and the natural-shift gaps of the targets both FactSheets name."""
    if why:
        return {"domain_shift": None}
    out = corruption_errors(old=old["domain_shift"], new=new["domain_shift"])
    out["natural"] = compare_natural_shift(old=old["domain_shift"], new=new["domain_shift"])
    return {"domain_shift": out}


def compare_natural_shift(*, old: dict, new: dict) -> list[dict]:
    """Per target named in both (matched by name): the prevalence-matched and raw mAP gaps as
    :class:`~factsheet.delta.Delta` (old gap, new gap, change), and whether the target's data are the
    same (sha256): a change of data mixes the models and the data."""
    olds = {e["name"]: e for e in old.get("natural_shift", [])}
    rows = []
    for e in new.get("natural_shift", []):
        o = olds.get(e["name"])
        if o is None:
            continue
        gaps = {}
        for key in ("mAP_matched", "mAP"):
            go, gn = o["metrics"][key]["gap"], e["metrics"][key]["gap"]
            gaps[key] = Delta(old=go["value"], new=gn["value"], old_ci=(go["ci_low"], go["ci_high"]),
                              new_ci=(gn["ci_low"], gn["ci_high"]))
        rows.append({"name": e["name"], "same_data": o["dataset"].get("sha256") == e["dataset"].get("sha256"),
                     "matched": gaps["mAP_matched"], "raw": gaps["mAP"]})
    return rows


def _suite(section: dict) -> list:
    return [(b["name"], [(c["severity"], c["level"]) for c in b["cells"]]) for b in section["corruptions"]]


def corruption_errors(*, old: dict, new: dict) -> dict:
    """ImageNet-C's corruption errors with OLD as the reference model and error = 1 - mAP.

    ``CE_c = sum_s E_new(c, s) / sum_s E_old(c, s)``; relative CE subtracts each model's clean
    error first: ``sum_s (E_new(c, s) - E_new_clean) / sum_s (E_old(c, s) - E_old_clean)``; mCE
    and relative mCE are their means over corruptions. Below 1: NEW degrades less than OLD.

    Returns
    -------
    dict
        ``{"refused": reason}`` when the suites differ (corruptions, severities or levels), else
        ``{"rows": [{"name", "title", "ce", "relative_ce"}], "mce", "relative_mce"}`` (``None``
        where a denominator is 0 or a mAP is missing).
    """
    if _suite(old) != _suite(new):
        return {"refused": "the two FactSheets ran different corruption suites (corruptions, severities or levels "
                           "differ): corruption errors compare like with like only"}
    rows = []
    e_old_clean, e_new_clean = _error(old["clean"]["mAP"]), _error(new["clean"]["mAP"])
    for bo, bn in zip(old["corruptions"], new["corruptions"]):
        eo = [_error(c["mAP"]["value"]) for c in bo["cells"]]
        en = [_error(c["mAP"]["value"]) for c in bn["cells"]]
        ce = rel = None
        if None not in eo + en:
            ce = _ratio(sum(en), sum(eo))
            if e_old_clean is not None and e_new_clean is not None:
                rel = _ratio(sum(e - e_new_clean for e in en), sum(e - e_old_clean for e in eo))
        rows.append({"name": bo["name"], "title": bo["title"], "ce": ce, "relative_ce": rel})
    return {"rows": rows, "mce": _mean([r["ce"] for r in rows]), "relative_mce": _mean([r["relative_ce"] for r in rows])}


def _error(m):
    return None if m is None else 1.0 - m


def _ratio(a: float, b: float):
    return None if b == 0 else a / b


def _mean(values: list):
    return None if not values or None in values else float(np.mean(values))


SECTIONS = (Section(field="domain_shift", schema="domain_shift", evaluate=evaluate, timed=True, glossary=glossary,
                    compare=compare, compare_title="Domain Shift", summary=summary, check=check, check_data=check_data,
                    finish=finish,
                    headings=(Heading("domain_shift", "Domain Shift", 110),), prose=(("domain_shift", "text"),)),)
