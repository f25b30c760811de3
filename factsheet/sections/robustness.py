"""Robustness: HopSkipJump L2 / L-infinity attacks with percentile curves fitted over iterations
(:func:`attacks.robustness.evaluate_robustness`), their column keys and their comparison."""

from __future__ import annotations

import dataclasses

from factsheet.delta import Delta, interval_of
from factsheet.document import RobustnessSection, not_evaluated
from factsheet.errors import InputError
from factsheet.sections.base import PCM, PROBABILITY, Heading, RunContext, Section, SectionResult, fmt, percent
from factsheet.sections.base import term


def evaluate(ctx: RunContext) -> SectionResult:
    """Run the attacks (resuming from the run store in ``ctx.out_dir``), or say why not.

    Raises
    ------
    InputError
        A ``robustness.stratify_by`` column is not in the dataset's metadata, or ``robustness.n_clips``
        cannot give every group its ``min_per_group`` clips (one line, exit code 2).
    """
    cfg = ctx.cfg
    if not cfg.robustness.enabled:
        return SectionResult(not_evaluated(cfg.factsheet.robustness, why="robustness.enabled is false in the config."))
    from attacks.robustness import AttackInputs, evaluate_robustness
    from attacks.runner import StrataError
    from factsheet.datasets.mapping import model_view

    # the attack works on the model's own decision: every output, labels widened to them
    inputs = AttackInputs(model=ctx.model, dataset=model_view(ctx.dataset, ctx.model.class_labels),
                          waveforms=ctx.waveforms, scores=ctx.model_scores, dataset_sha256=ctx.dataset.sha256())
    try:
        section, plots, run_store = evaluate_robustness(
            inputs=inputs, settings=cfg.robustness, bootstrap=cfg.metrics, out_dir=ctx.out_dir, executor=ctx.executor,
            progress=ctx.progress, correction=cfg.bias.correction)
    except StrataError as exc:
        raise InputError(source=str(cfg.path or "config"), field=exc.field, value=exc.value,
                         reason=exc.reason) from None
    seconds = run_store.pop("seconds")
    return SectionResult(RobustnessSection(**section), plots=plots, timings={"robustness": seconds},
                         provenance={"run_store": run_store})


def finish(ctx: RunContext):
    """The group tests corrected in the Bias section's family, when both sections were evaluated with them.

    The Bias section (evaluated after this one, since it reads it) appends these tests' p-values to its
    own before the correction and reports them adjusted (``bias.robustness_disparities``); this takes
    those adjusted values, so both sections show the same p-values and findings.
    """
    rob, bias = ctx.results["robustness"], ctx.results.get("bias")
    if getattr(rob, "groups", None) is None or getattr(bias, "robustness_disparities", None) is None:
        return rob
    from attacks.groups import mark_findings

    tested = [d for d in bias.robustness_disparities if d["p_value"] is not None]
    mine = [d for d in rob.groups["disparities"] if d["p_value"] is not None]
    if [(d["norm"], d["column"], d["group"]) for d in tested] != [(d["norm"], d["column"], d["group"]) for d in mine]:
        raise RuntimeError("bias.robustness_disparities does not match robustness.groups.disparities")
    groups = mark_findings(rob.groups, adjusted=[d["p_adjusted"] for d in tested], n_family=bias.settings["n_tests"],
                           correction=ctx.cfg.bias.correction, with_bias=True)
    return dataclasses.replace(rob, groups=groups)


def glossary(doc: dict) -> dict:
    rob = doc.get("robustness") or {}
    if rob.get("status") != "evaluated":
        return {}
    st = rob["settings"]
    t, k = st["iterations"], st["k"]
    rci = f"{percent(st.get('confidence', (doc.get('performance') or {}).get('confidence', 0.95)))} CI"
    after = f"after {t} HopSkipJump iterations"
    return {
        "robustness_summary": [
            term("p-th Percentile", PCM,
                 f"p-th percentile over the attacked clips of the perturbation norm (L2 or L-infinity) of "
                 f"ART's iterate {after}; a clip not fooled counts as infinite ('not found')."),
            term("(in parentheses)", PCM, f"The fitted curve of that percentile over iterations 1..{t}, "
                                          f"evaluated at {k} iterations ('---': no usable fit, reason in "
                                          "the detail table)."),
            term("Clips fooled", "clips, percent", f"Attacked clips with an adversarial example {after} within "
                                                    "the per-clip query and time budget; Clopper-Pearson (exact binomial) interval."),
            term("Median queries per clip", "model queries",
                 "Median over attacked clips of the model queries the attack made (ART's HopSkipJump, its label "
                 f"checks and the last boundary projection); the start-point search before it (1 + blend_steps = "
                 f"{1 + int(st.get('blend_steps', 10))} queries when the first candidate clip works) is not "
                 "included."),
        ],
        "robustness_detail": [
            term("Percentile", "percent", "Which percentile of the attacked clips the row reports."),
            term("Norm (input units)", "input units: float waveform, full scale 1.0",
                 f"That percentile of the perturbation norm {after}."),
            term("16-bit PCM", PCM, "The same norm x 32768, the unit of the MAX FactSheet's table."),
            term(f"{rci} (16-bit PCM)", PCM, "Order-statistic interval (distribution-free: two order statistics of the attacked clips, ranks from the "
                                             "binomial distribution; failures count as infinite); "
                                             "'insufficient evidence' where too few clips were attacked to "
                                             "bound a low percentile from below."),
            term("SNR (dB)", "dB", f"-20 log10 of that percentile of ||x_adv - x||_2 / ||x||_2 {after}: clip "
                                   "power over perturbation power; lower means a louder perturbation was needed."),
            term("Fitted at k (16-bit PCM)", PCM, f"The chosen fitted curve evaluated at k = {k} iterations."),
            term(f"{rci} of fitted (16-bit PCM)", PCM,
                 f"The percentile's order-statistic interval at iteration {min(k, t)} moved along the fitted curve to "
                 f"k = {k} (multiplied by f({k}) / f({min(k, t)})): the percentile's sampling uncertainty, the "
                 "curve's shape taken as fitted; none more than one iteration past T or where the percentile has "
                 "no lower bound (the reason is given)."),
            term("Curve family / reason", "log RMSE, log R^2 (unitless)",
                 "Family chosen by AICc among power_floor, exp_floor and loglog_line, or why none was; goodness "
                 "of fit in log space."),
        ],
        "robustness_groups": [
            term("n", "clips", "Attacked clips in the group (the class is the top-1 class the attack escaped)."),
            term("fooled", "clips", f"Of those, clips with an adversarial example {after}."),
            term("median (16-bit PCM)", PCM, f"Median over the group's attacked clips of the perturbation norm "
                                             f"{after} (failures count as infinite)."),
            term("median SNR (dB)", "dB", "-20 log10 of the median relative L2 perturbation ||x_adv - x||_2 / "
                                          "||x||_2 of the group's clips."),
            term(rci, "as the column before", "Order-statistic interval (distribution-free) of the median over "
                                              "the group's attacked clips."),
        ],
        **_group_terms(rob, rci=rci, after=after),
    }


def _group_terms(rob: dict, *, rci: str, after: str) -> dict:
    """The keys of the "Robustness by group" tables (``[robustness] stratify_by``); none without them."""
    gr = rob.get("groups")
    if not gr:
        return {}
    family = gr["family"]
    return {
        "robustness_by_group": [
            term("Eligible", "clips", "Evaluation clips of the group the model classifies correctly (top-1 among the "
                                      "true labels): the clips that may be attacked."),
            term("Attacked", "clips", f"Clips of the group attacked with the norm: at least min_per_group = "
                                      f"{gr['min_per_group']} or all eligible ones; fewer than "
                                      f"{max(int(gr['min_per_group']), 10)} is insufficient evidence (not tested)."),
            term("Fooled [CI]", "clips (percent)", f"Attacked clips of the group with an adversarial example {after}; "
                                                   f"Clopper-Pearson (exact binomial) {rci}."),
            term("Median norm (16-bit PCM) [CI]", PCM, f"Median over the group's attacked clips of the perturbation "
                                                       f"norm {after} (failures count as infinite); order-statistic "
                                                       f"{rci} (distribution-free)."),
            term("Median SNR (dB)", "dB", "-20 log10 of the median relative L2 perturbation ||x_adv - x||_2 / ||x||_2 "
                                          "of the group's attacked clips."),
        ],
        "robustness_group_disparities": [
            term("Ratio of medians [CI]", "unitless (ratio)",
                 "Group's median norm / the reference's (the most robust group of the column and norm); below 1: "
                 f"smaller perturbations fool the group. {rci} from an unpaired bootstrap (each group resampled "
                 "within itself)."),
            term("Adj. p", PROBABILITY, f"Two-sided p-value of equal median log norms (normal approximation) after "
                                        f"{family['correction']} correction over {family['n_tests']} tests"
                                        f"{' (the Bias section tests and these)' if family['with_bias'] else ''}."),
            term("Finding", "yes / no", f"Interval entirely below a ratio of 1 and adjusted p below "
                                        f"{1 - float(gr['confidence']):.2g}."),
        ],
    }


def summary(doc: dict) -> dict | None:
    """Per norm: clips fooled, and the median perturbation in 16-bit PCM units with its SNR."""
    rob = doc.get("robustness") or {}
    if rob.get("status") != "evaluated":
        return None
    lines = []
    for norm, block in rob["hopskipjump"].items():
        med = next((r for r in block["percentiles"] if r["percentile"] == 50.0), None)
        median = "" if med is None else (
            f"; median perturbation {fmt(med['value_int16'], 1)} (16-bit PCM), SNR {fmt(med['snr_db'], 1)} dB"
            + (" (undefined: fewer than half the clips fooled)" if med["value_int16"] is None else ""))
        lines.append(f"{'L2' if norm == 'l2' else 'L-infinity'}: {block['n_success']} of {block['n_attacked']} "
                     f"attacked clips fooled after {block['iterations']} HopSkipJump iterations{median}.")
    groups = rob.get("groups")
    if not groups:
        return {"title": "Robustness", "anchor": "robustness", "headline": lines, "n_findings": None, "findings": []}
    found = [d for d in groups["disparities"] if d.get("finding")]
    tested = sum(1 for d in groups["disparities"] if d.get("p_value") is not None)
    columns = ", ".join(rob["settings"].get("stratify_by") or ())
    lines.append(f"By group ({columns}): {len(found)} finding(s) among {tested} group comparisons of the median "
                 "perturbation.")
    return {"title": "Robustness", "anchor": "robustness", "headline": lines, "n_findings": len(found),
            "findings": [d["statement"] for d in sorted(found, key=lambda d: d["difference"])][:3]}


def compare(*, old: dict, new: dict, why: str | None) -> dict:
    return {"robustness": None if why else compare_robustness(old=old, new=new)}


def compare_robustness(*, old: dict, new: dict) -> list[dict]:
    """Per norm present in both: success rate and each percentile (matched by percentile) present in both."""
    ho, hn = old["robustness"].get("hopskipjump", {}), new["robustness"].get("hopskipjump", {})
    out = []
    for norm in [n for n in ho if n in hn]:
        bo, bn = ho[norm], hn[norm]
        new_pct = {r["percentile"]: r for r in bn.get("percentiles", [])}
        pct_rows = []
        for r in bo.get("percentiles", []):
            q = new_pct.get(r["percentile"])
            if q is None:
                continue
            pct_rows.append({"percentile": r["percentile"],
                             "value": Delta(old=r.get("value"), new=q.get("value"),
                                            old_ci=(r.get("ci_low"), r.get("ci_high")),
                                            new_ci=(q.get("ci_low"), q.get("ci_high"))),
                             "snr_db": Delta(old=r.get("snr_db"), new=q.get("snr_db"))})
        out.append({"norm": norm, "n_attacked": (bo.get("n_attacked"), bn.get("n_attacked")),
                    "success_rate": Delta(old=bo.get("success_rate"), new=bn.get("success_rate"),
                                          old_ci=interval_of(bo.get("success_rate_ci")),
                                          new_ci=interval_of(bn.get("success_rate_ci"))),
                    "percentiles": pct_rows})
    return out


SECTIONS = (Section(field="robustness", schema="robustness", evaluate=evaluate, glossary=glossary,
                    compare=compare, compare_title="Robustness", summary=summary, finish=finish,
                    headings=(Heading("robustness", "Robustness", 100),), prose=(("robustness", "text"),)),)
