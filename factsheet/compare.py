"""Compare two FactSheets (``factsheet compare OLD.json NEW.json [--out DIR]``).

Five parts, each computed by its section's compare hook (:mod:`factsheet.sections`) and only laid
out here and by the templates (``reports/templates/compare.md.j2`` and ``compare.html.j2``):

* headline metrics (mAP, mean AUC, d', mean per-class d'): old, new, delta and an approximate
  interval for the delta;
* class-wise AP, with counts in the style of Table II of the LEAN paper: classes improved, and
  improved by at least 5 %, 10 %, 20 % (relative AP change), classes that got worse (and by as much);
* robustness: per norm, the attack success rate and each percentile's perturbation norm and SNR;
* bias: each disparity present in both (matched by metric, class, columns, group and reference),
  and the disparities that became, or stopped being, findings;
* domain shift: ImageNet-C's corruption errors of NEW with OLD as the reference (CE, relative CE,
  mCE; error = 1 - mAP), only when both ran the same corruption suite.

The interval of a delta is approximate: each FactSheet's bootstrap interval is read as a normal
interval of half-width ``h = (high - low) / 2`` and the two are combined as independent,
``delta +- sqrt(h_old^2 + h_new^2)``. Two runs on the same test clips are positively correlated,
so this is usually wider (more cautious) than a paired bootstrap would be.
"""

from __future__ import annotations

from pathlib import Path

from factsheet.delta import Delta
from factsheet.errors import InputError
from factsheet.document import load_factsheet
from factsheet.sections import SECTIONS
from factsheet.sections.performance import LEAN_STEPS, lean_counts

DELTA_CI_NOTE = ("Delta interval: approximate. The bootstrap interval of each FactSheet is read as a normal "
                 "interval of half-width h = (high - low) / 2 and the two are combined as if independent: "
                 "delta +- sqrt(h_old^2 + h_new^2). Runs on the same test clips are positively correlated, so "
                 "this is usually more cautious than a paired bootstrap.")
EM_DASH = "\u2014"

__all__ = ["Delta", "cmd_compare", "compare_sheets", "lean_counts", "render_html", "render_markdown", "view_model"]


def _evaluated(section: object) -> bool:
    return isinstance(section, dict) and section.get("status") == "evaluated"


def _not_comparable(old: object, new: object, what: str) -> str | None:
    """Why a section cannot be compared, or ``None``."""
    missing = [name for name, sec in (("OLD", old), ("NEW", new)) if not _evaluated(sec)]
    if not missing:
        return None
    return f"{what} not evaluated in {' and '.join(missing)}."


# --------------------------------------------------------------------------------------------
# Computing the comparison
# --------------------------------------------------------------------------------------------

def compare_sheets(*, old: dict, new: dict) -> dict:
    """Everything ``factsheet compare`` reports, as numbers: each registered section's compare hook
    (``None`` parts with a ``<field>_reason`` when a section is not evaluated in either FactSheet)."""
    out: dict = {"notes": _notes(old, new)}
    for section in SECTIONS:
        if section.compare is None:
            continue
        why = _not_comparable(old.get(section.field), new.get(section.field), section.compare_title or section.field)
        out.update(section.compare(old=old, new=new, why=why))
        out[f"{section.field}_reason"] = why
    return out


def _notes(old: dict, new: dict) -> list[str]:
    notes = []
    if old.get("dataset", {}).get("sha256") != new.get("dataset", {}).get("sha256"):
        notes.append("The two FactSheets were computed on different test sets (dataset sha256 differs): "
                     "differences mix the models and the data.")
    if old.get("model", {}).get("sha256") and old.get("model", {}).get("sha256") == new.get("model", {}).get("sha256"):
        notes.append("Both FactSheets describe the same model file (same sha256).")
    cfg_o = (old.get("provenance") or {}).get("config", {}).get("metrics")
    cfg_n = (new.get("provenance") or {}).get("config", {}).get("metrics")
    if cfg_o and cfg_n and cfg_o.get("confidence") != cfg_n.get("confidence"):
        notes.append(f"The intervals have different confidence levels ({cfg_o.get('confidence')} vs "
                     f"{cfg_n.get('confidence')}); the delta interval mixes them.")
    return notes


# --------------------------------------------------------------------------------------------
# Formatting (the templates only lay out these strings)
# --------------------------------------------------------------------------------------------

def _num(x: float | None, digits: int = 3) -> str:
    return EM_DASH if x is None else f"{x:.{digits}f}"


def _signed(x: float | None, digits: int = 3) -> str:
    return EM_DASH if x is None else f"{x:+.{digits}f}"


def _pct(x: float | None) -> str:
    return EM_DASH if x is None else f"{x * 100:+.1f} %"


def _ci(ci: tuple | None, digits: int = 3, *, signed: bool = False) -> str:
    if ci is None or ci[0] is None or ci[1] is None:
        return EM_DASH
    f = (lambda v: _signed(v, digits)) if signed else (lambda v: _num(v, digits))
    return f"[{f(ci[0])}, {f(ci[1])}]"


def _ci_or_blank(ci: tuple | None, digits: int) -> str:
    """An interval shown beside its value: nothing when there is none."""
    text = _ci(ci, digits)
    return "" if text == EM_DASH else text


def _excludes_zero(ci: tuple | None) -> str:
    if ci is None:
        return EM_DASH
    return "yes" if ci[0] > 0 or ci[1] < 0 else "no"


def _reading(change: float | None, *, higher_is: str, lower_is: str) -> str:
    if change is None:
        return EM_DASH
    return "no change" if change == 0 else (higher_is if change > 0 else lower_is)


def _delta_cells(d: Delta, digits: int = 3) -> dict[str, str]:
    return {"old": _num(d.old, digits), "new": _num(d.new, digits), "old_ci": _ci_or_blank(d.old_ci, digits),
            "new_ci": _ci_or_blank(d.new_ci, digits),
            "delta": _signed(d.delta, digits), "delta_ci": _ci(d.delta_ci, digits, signed=True),
            "excludes_zero": _excludes_zero(d.delta_ci)}


def view_model(*, comparison: dict, old_source: str, new_source: str, old: dict, new: dict) -> dict:
    """Display strings for the templates (no arithmetic left to them)."""

    def who(doc: dict, source: str) -> dict:
        return {"source": source, "title": doc.get("title", ""), "model": (doc.get("model") or {}).get("name", ""),
                "model_sha": ((doc.get("model") or {}).get("sha256") or "")[:12],
                "dataset": (doc.get("dataset") or {}).get("name", ""),
                "n_clips": str((doc.get("dataset") or {}).get("n_clips", EM_DASH)),
                "finished_at": (doc.get("provenance") or {}).get("finished_at", "")}

    vm: dict = {"old": who(old, old_source), "new": who(new, new_source), "notes": comparison["notes"],
                "delta_ci_note": DELTA_CI_NOTE, "lean_steps": [f"{round(s * 100)} %" for s in LEAN_STEPS]}
    vm["performance_reason"] = comparison["performance_reason"]
    if comparison["metrics"] is not None:
        vm["metrics"] = [{"name": r["name"], **_delta_cells(r["delta"]),
                          "reading": _reading(r["delta"].delta, higher_is="better", lower_is="worse")}
                         for r in comparison["metrics"]]
        cls = comparison["classes"]
        c = cls["counts"]
        vm["lean"] = {"n_compared": str(c["n_compared"]), "unchanged": str(c["unchanged"]),
                      "improved": [str(c["improved"])] + [str(c[f"improved_{round(s * 100)}"]) for s in LEAN_STEPS],
                      "worse": [str(c["worse"])] + [str(c[f"worse_{round(s * 100)}"]) for s in LEAN_STEPS]}
        vm["classes"] = [{"label": r["label"], "category": r["category"] or "", "old": _num(r["delta"].old),
                          "new": _num(r["delta"].new), "delta": _signed(r["delta"].delta),
                          "relative": _pct(r["delta"].relative)} for r in cls["rows"]]
        vm["classes_skipped"] = [f"{s['label']} ({s['reason']})" for s in cls["skipped"]]
    vm["robustness_reason"] = comparison["robustness_reason"]
    if comparison["robustness"] is not None:
        vm["robustness"] = [_robustness_view(b) for b in comparison["robustness"]]
    vm["bias_reason"] = comparison["bias_reason"]
    if comparison["bias"] is not None:
        b = comparison["bias"]
        vm["bias"] = {"rows": [_disparity_view(r) for r in b["rows"]], "only_old": str(b["only_old"]),
                      "only_new": str(b["only_new"]),
                      "new_findings": [_finding_text(f) for f in b["new_findings"]],
                      "resolved_findings": [_finding_text(f) for f in b["resolved_findings"]]}
    vm["domain_shift_reason"] = comparison.get("domain_shift_reason")
    shift = comparison.get("domain_shift")
    if shift is not None:
        vm["domain_shift"] = {"refused": shift.get("refused"), "mce": _num(shift.get("mce")),
                              "relative_mce": _num(shift.get("relative_mce")),
                              "rows": [{"title": r["title"], "ce": _num(r["ce"]), "relative_ce": _num(r["relative_ce"])}
                                       for r in shift.get("rows", [])],
                              "natural": [{"name": r["name"], "same_data": "yes" if r["same_data"] else "NO",
                                           "matched": _delta_cells(r["matched"]), "raw": _delta_cells(r["raw"])}
                                          for r in shift.get("natural", [])]}
    return vm


def _robustness_view(block: dict) -> dict:
    sr = block["success_rate"]
    norm = {"l2": "L2", "linf": "L-infinity"}.get(block["norm"], block["norm"])
    return {"norm": norm, "n_attacked": f"{block['n_attacked'][0]} / {block['n_attacked'][1]}",
            "success_rate": {**_delta_cells(sr), "reading": _reading(sr.delta, higher_is="less robust",
                                                                     lower_is="more robust")},
            "percentiles": [{"percentile": f"{r['percentile']:g}", **_delta_cells(r["value"], 4),
                             "snr_old": _num(r["snr_db"].old, 1), "snr_new": _num(r["snr_db"].new, 1),
                             "snr_delta": _signed(r["snr_db"].delta, 1),
                             "reading": _reading(r["value"].delta, higher_is="more robust", lower_is="less robust")}
                            for r in block["percentiles"]]}


def _finding_text(f: dict) -> str:
    old = "not compared" if f["old"] is None else f"difference {_num(f['old'])}"
    new = "not compared" if f["new"] is None else f"difference {_num(f['new'])}"
    return f"{f['name']} (OLD: {old}; NEW: {new})"


def _disparity_view(r: dict) -> dict:
    d = r["difference"]
    gap = None if d.old is None or d.new is None else abs(d.new) - abs(d.old)
    finding = {(False, False): "no", (True, True): "yes (both)", (False, True): "NEW finding",
               (True, False): "resolved"}[r["finding"]]
    return {"columns": " & ".join(r["columns"]), "metric": (f"{r['class']} " if r["class"] else "") + str(r["metric"]),
            "group": str(r["group"]), "reference": str(r["reference"]), **_delta_cells(d), "finding": finding,
            "insufficient": "yes" if r["insufficient"] else "",
            "reading": _reading(gap, higher_is="gap wider", lower_is="gap narrower")}


def _env():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from factsheet.render import md_cell, md_text, template_dir

    env = Environment(loader=FileSystemLoader(str(template_dir())), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(md_cell=md_cell, md_text=md_text)
    return env


def render_markdown(view: dict) -> str:
    """The comparison as Markdown (also printed on stdout)."""
    return _env().get_template("compare.md.j2").render(v=view)


def render_html(view: dict) -> str:
    """The comparison as a self-contained HTML page (no scripts, no external requests)."""
    return _env().get_template("compare.html.j2").render(v=view)


def cmd_compare(args) -> int:
    """``factsheet compare``: print Markdown; with ``--out`` write ``compare.md`` and ``compare.html``."""
    import sys

    from factsheet.render import atomic_write_text

    old, new = load_factsheet(args.old), load_factsheet(args.new)
    comparison = compare_sheets(old=old, new=new)
    view = view_model(comparison=comparison, old_source=str(args.old), new_source=str(args.new), old=old, new=new)
    md = render_markdown(view)
    if args.out is not None:
        if args.out.exists() and not args.out.is_dir():
            raise InputError(source="--out", value=str(args.out), reason="exists and is not a folder")
        html = render_html(view)
        for name, text in (("compare.md", md), ("compare.html", html)):
            try:
                path = atomic_write_text(Path(args.out) / name, text)
            except OSError as exc:
                raise InputError(source="--out", value=str(args.out),
                                 reason=f"cannot write {name}: {exc.strerror or exc}") from None
            print(f"wrote {path}", file=sys.stderr)
    print(md, end="")
    return 0
