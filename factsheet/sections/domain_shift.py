"""Domain Shift: the corruption suite (:func:`factsheet.domain_shift.evaluate_domain_shift`), its
column keys and its comparison (ImageNet-C corruption errors between two FactSheets)."""

from __future__ import annotations

import numpy as np

from factsheet.document import DomainShiftSection, not_evaluated
from factsheet.errors import InputError
from factsheet.sections.base import PROBABILITY, SD, UNITLESS, Heading, RunContext, Section, SectionResult
from factsheet.sections.base import percent, term


def evaluate(ctx: RunContext) -> SectionResult:
    """Corrupt the chosen clips cell by cell and score them with the model, or say why not."""
    cfg = ctx.cfg
    settings = cfg.domain_shift
    if not settings.enabled:
        return SectionResult(not_evaluated(cfg.factsheet.domain_shift,
                                           why="domain_shift.enabled is false in the config."))
    from factsheet import corruptions
    from factsheet.domain_shift import evaluate_domain_shift
    from factsheet.domain_shift.plots import curves_svg, heatmap_svg

    source = str(cfg.path or "config")
    try:
        corruptions.validate_suite(list(settings.suite()), sample_rate=ctx.model.sample_rate,
                                   field="domain_shift.corruptions")
    except ValueError as exc:
        raise InputError(source=source, reason=str(exc)) from None
    section = evaluate_domain_shift(
        waveforms=ctx.waveforms, labels=ctx.dataset.labels, clean_scores=ctx.scores,
        class_labels=ctx.dataset.class_labels, predict=_predictor(ctx), sample_rate=ctx.model.sample_rate,
        settings=settings, bootstrap=cfg.metrics, prose=cfg.factsheet.domain_shift)
    plots = {"domain_shift_curves": curves_svg(section), "domain_shift_heatmap": heatmap_svg(section)}
    return SectionResult(DomainShiftSection(**section), plots=plots)


def _predictor(ctx: RunContext):
    """The model's scores of corrupted clips, for the dataset's classes; non-finite scores are one line."""
    from factsheet.models.adapter import predict_scores

    columns = ctx.dataset.model_columns

    def predict(waveforms: np.ndarray) -> np.ndarray:
        scores = predict_scores(ctx.estimator, waveforms, batch_size=ctx.cfg.model.batch_size)
        if not np.all(np.isfinite(scores)):
            raise InputError(source=str(ctx.model.path or ctx.cfg.model.url or "model"), field="output",
                             value="non-finite", reason="model returned NaN or inf for a corrupted clip")
        return scores if columns is None else scores[:, columns]

    return predict


def glossary(doc: dict) -> dict:
    ds = doc.get("domain_shift") or {}
    if ds.get("status") != "evaluated":
        return {}
    st = ds["settings"]
    ci = f"{percent(st['confidence'])} CI"
    return {
        "domain_shift_summary": [
            term("Breaking point", "the corruption's unit", f"First level whose mAP drop exceeds "
                 f"{st['tolerance']:g} with confidence (its paired {ci} lies above it); 'none' when no level does."),
            term("Mean relative drop", "percent of clean mAP", "Mean over the severities of (clean mAP - "
                                                               "corrupted mAP) / clean mAP."),
            term(f"Largest mAP drop [{ci}]", UNITLESS, f"Clean minus corrupted mAP at the level where it is largest; "
                                                    f"paired bootstrap {ci}."),
        ],
        "domain_shift_cells": [
            term("Severity", "severity steps", "1 (mildest) to 5: which of the corruption's five levels."),
            term("Level", "the corruption's unit", "The severity's setting in physical units."),
            term("mAP", UNITLESS, "Mean average precision on the corrupted clips (Performance Metrics' definition)."),
            term(f"Drop [{ci}]", UNITLESS, "Clean mAP - corrupted mAP on the same clips; positive is worse; paired "
                                           f"bootstrap interval ({st['n_bootstrap']} resamples)."),
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
    """The suite's mean relative drop, how many corruptions break the model, the three worst."""
    ds = doc.get("domain_shift") or {}
    if ds.get("status") != "evaluated":
        return None
    broken = [b for b in ds["corruptions"] if b["breaking_point"] is not None]
    drop = ds["mean_relative_drop"]
    line = (f"{len(ds['corruptions'])} corruptions x {len(ds['settings']['severities'])} severities on "
            f"{ds['settings']['n_clips']} clips: mean relative mAP drop "
            f"{'undefined' if drop is None else f'{100 * drop:.1f} %'}; {len(broken)} corruption(s) break the model "
            f"(mAP drop above {ds['settings']['tolerance']:g} with confidence).")
    # the findings are one sentence per corruption, in suite order: the three largest breaking drops first
    order = sorted((k for k, b in enumerate(ds["corruptions"]) if b["breaking_point"] is not None),
                   key=lambda k: -_breaking_drop(ds["corruptions"][k]))
    return {"title": "Domain Shift", "anchor": "domain_shift", "headline": [line], "n_findings": len(broken),
            "findings": [ds["findings"][k] for k in order[:3]]}


def _breaking_drop(block: dict) -> float:
    cell = next(c for c in block["cells"] if c["severity"] == block["breaking_point"]["severity"])
    return cell["mAP"]["drop"] or 0.0


def compare(*, old: dict, new: dict, why: str | None) -> dict:
    """Corruption errors of NEW against OLD (ImageNet-C, error = 1 - mAP), when both ran the same suite."""
    if why:
        return {"domain_shift": None}
    return {"domain_shift": corruption_errors(old=old["domain_shift"], new=new["domain_shift"])}


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
                    compare=compare, compare_title="Domain Shift", summary=summary,
                    headings=(Heading("domain_shift", "Domain Shift", 110),), prose=(("domain_shift", "text"),)),)
