"""Renderers: FactSheet dict -> HTML and Markdown via Jinja2 templates (autoescape on), and the
files of a report written atomically.

Templates only format; every number is computed before rendering.
"""

from __future__ import annotations

import base64
import csv
import io
import os
import tempfile
from pathlib import Path

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from factsheet.document import FactSheet, validate
from factsheet.sections import column_keys, headings
from factsheet.sections.summary import summary_view

def template_dir() -> Path:
    """Templates: inside the installed wheel (``factsheet/_templates``) or the checkout's ``reports/templates``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_templates", here.parent / "reports" / "templates"):
        if (candidate / "factsheet.html.j2").is_file():
            return candidate
    raise FileNotFoundError("FactSheet templates not found (neither factsheet/_templates nor reports/templates)")


UNDEFINED = "undefined"


def fmt_num(value, digits: int = 3) -> str:
    """A number with ``digits`` decimals; ``None`` (null in the JSON: not computable, or infinite) as
    ``"undefined"``: the reason is in the column's key or the section's definitions."""
    if value is None:
        return UNDEFINED
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


#: A null interval, or a null bound, in the report: too few clips, positives or usable replicates for an
#: interval that holds (the gate treats a null bound the same way: ``insufficient``).
INSUFFICIENT = "insufficient evidence"


def fmt_ci(interval, digits: int = 3) -> str:
    """``[low, high]`` of an interval dict, ``[low, ∞]`` without an upper bound, or ``"insufficient
    evidence"`` (no interval, or no lower bound: too few clips, positives or usable replicates)."""
    if not interval or interval.get("low") is None:
        return INSUFFICIENT
    high = "∞" if interval.get("high") is None else f"{interval['high']:.{digits}f}"
    return f"[{interval['low']:.{digits}f}, {high}]"


def md_cell(value) -> str:
    """Text safe inside a Markdown table cell: HTML-escaped, pipes and newlines neutralised."""
    text = str(escape("" if value is None else value))
    return Markup(text.replace("|", "&#124;").replace("\r", " ").replace("\n", " ").replace("`", "&#96;"))


def md_text(value) -> str:
    """Prose safe in Markdown: HTML-escaped so tags stay text (returned as Markup: escaped once)."""
    return escape("" if value is None else value)


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(template_dir())), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(num=fmt_num, ci=fmt_ci, md_cell=md_cell, md_text=md_text)
    return env


def render_html(doc: dict, *, plots_svg: dict[str, str], audio: dict[str, bytes] | None = None) -> str:
    """The self-contained HTML report (inline SVG plots, audio as ``data:`` URIs, no scripts, no external
    requests)."""
    plots = {k: Markup(v) for k, v in plots_svg.items()}  # produced by matplotlib from numbers, text as paths
    sounds = {rel: "data:audio/wav;base64," + base64.b64encode(b).decode("ascii") for rel, b in (audio or {}).items()}
    return _env().get_template("factsheet.html.j2").render(doc=doc, plots=plots, sections=headings(),
                                                           summary=summary_view(doc), audio=sounds,
                                                           keys=column_keys(doc))


def render_markdown(doc: dict, *, plot_files: dict[str, str]) -> str:
    """The Markdown report; plots are image files next to it."""
    return _env().get_template("factsheet.md.j2").render(doc=doc, plots=plot_files, sections=headings(),
                                                         summary=summary_view(doc),
                                                         keys=column_keys(doc))


def rerender(json_path: str | Path, out_dir: str | Path) -> tuple[dict[str, Path], dict]:
    """Re-render HTML and Markdown from a stored FactSheet JSON (and the plots beside it), running nothing.

    The JSON must validate against the schema; plots named in its ``outputs`` are read from the
    JSON's folder. Everything is rendered in memory before any file in ``out_dir`` is replaced.
    Returns the files written and the FactSheet dict.
    """
    from factsheet.document import check_against_schema, load_factsheet
    from factsheet.errors import InputError

    json_path = Path(json_path)
    doc = load_factsheet(json_path)
    check_against_schema(doc, source=str(json_path))
    plots_svg = {}
    for key, rel in (doc.get("outputs") or {}).items():
        if key.startswith("plot_"):
            p = json_path.parent / rel
            if not p.is_file():
                raise InputError(source=str(json_path), field=f"outputs.{key}", value=rel, reason="plot file not found")
            plots_svg[key[len("plot_"):]] = p.read_text(encoding="utf-8")
    audio = _read_audio(doc, json_path)
    files = {"factsheet.html": render_html(doc, plots_svg=plots_svg, audio=audio),
             "factsheet.md": render_markdown(doc, plot_files={k: f"plots/{k}.svg" for k in plots_svg})}
    out_dir = Path(out_dir)
    if out_dir.resolve() != json_path.parent.resolve():
        files["factsheet.json"] = json_path.read_text(encoding="utf-8")
        files.update({f"plots/{k}.svg": v for k, v in plots_svg.items()})
    written = {rel: atomic_write_text(out_dir / rel, text) for rel, text in files.items()}
    if out_dir.resolve() != json_path.parent.resolve():
        written.update({rel: atomic_write_bytes(out_dir / rel, b) for rel, b in audio.items()})
    return written, doc


def _read_audio(doc: dict, json_path: Path) -> dict[str, bytes]:
    """The WAV files the FactSheet's ``outputs`` name (``audio_*``), read from beside its JSON."""
    from factsheet.errors import InputError

    out = {}
    for key, rel in (doc.get("outputs") or {}).items():
        if key.startswith("audio_"):
            p = json_path.parent / rel
            if not p.is_file():
                raise InputError(source=str(json_path), field=f"outputs.{key}", value=rel, reason="audio file not found")
            out[rel] = p.read_bytes()
    return out


def per_class_ap_svg(doc: dict) -> str | None:
    """Horizontal bars of per-class AP (sorted) with AUC markers, as SVG text (deterministic)."""
    perf = doc["performance"]
    if perf.get("status") != "evaluated":
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in perf["per_class"] if r["evaluable"]]
    if not rows:
        return None
    rows.sort(key=lambda r: r["ap"])
    labels = [r["label"] for r in rows]
    with matplotlib.rc_context({"svg.hashsalt": "audio-factsheet", "svg.fonttype": "path", "font.size": 9}):
        fig, ax = plt.subplots(figsize=(6.4, 0.28 * len(rows) + 1.2))
        y = np.arange(len(rows))
        ax.barh(y, [r["ap"] for r in rows], color="#4c72b0", label="AP")
        ax.scatter([r["auc"] for r in rows], y, color="#dd8452", marker="|", s=120, label="ROC AUC", zorder=3)
        ax.set_yticks(y, labels)
        ax.set_xlim(0, 1)
        ax.set_xlabel("score (0-1)")
        ax.set_title(f"Per-class AP (bars) and ROC AUC (ticks); mAP = {perf['mAP']:.3f}")
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        return figure_svg(fig)


def figure_svg(fig) -> str:
    """A matplotlib figure as inline SVG text (no XML prolog, no date: deterministic); closes it."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def predictions_csv(artefacts: dict) -> str:
    """Per-clip predictions for auditors: clip_id, true labels, top-1 label, the clip's metadata
    (``meta:<column>``) and one ``score:<class>`` column per model output.

    Scores are float32 written with 9 significant digits, which round-trips float32 exactly. With a
    label mapping every model output keeps its column (the metrics use those of
    ``dataset.class_labels``), ``true_labels`` names mapped classes only and ``top1_label`` is the
    model's top-1 over all its outputs.
    """
    ds = artefacts["dataset"]
    scores = artefacts["scores"]
    names = [c.display_name for c in ds.class_labels]
    model = artefacts.get("model")
    outputs = [c.display_name for c in model.class_labels] if model is not None else names
    meta = ds.metadata.drop(columns=["clip_id"])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["clip_id", "true_labels", "top1_label"] + [f"meta:{c}" for c in meta.columns]
               + [f"score:{n}" for n in outputs])
    meta_rows = meta.astype(str).to_numpy().tolist()
    for i, clip_id in enumerate(ds.metadata["clip_id"]):
        true = ";".join(n for n, y in zip(names, ds.labels[i]) if y)
        w.writerow([clip_id, true, outputs[int(np.argmax(scores[i]))]] + meta_rows[i]
                   + [f"{float(v):.9g}" for v in scores[i]])
    return buf.getvalue()


def write_report(out_dir: str | Path, sheet: FactSheet, artefacts: dict | None = None) -> dict[str, Path]:
    """Render everything in memory, validate the JSON, then replace the files one by one atomically.

    A failure while rendering leaves any earlier report in ``out_dir`` untouched.
    """
    out_dir = Path(out_dir)
    sheet.outputs = {"json": "factsheet.json", "html": "factsheet.html", "markdown": "factsheet.md"}
    if artefacts is not None:
        sheet.outputs["predictions"] = "predictions.csv"
    doc = sheet.to_dict()
    svg = per_class_ap_svg(doc)
    plots_svg = {"per_class_ap": svg} if svg else {}
    plots_svg.update((artefacts or {}).get("plots", {}))
    for name in plots_svg:
        sheet.outputs[f"plot_{name}"] = f"plots/{name}.svg"
    audio = dict((artefacts or {}).get("audio", {}))
    for rel in audio:
        sheet.outputs[f"audio_{Path(rel).stem}"] = rel
    doc["outputs"] = dict(sheet.outputs)
    validate(doc)
    files: dict[str, str] = {"factsheet.json": sheet.to_json()}
    files["factsheet.html"] = render_html(doc, plots_svg=plots_svg, audio=audio)
    files["factsheet.md"] = render_markdown(doc, plot_files={k: f"plots/{k}.svg" for k in plots_svg})
    for k, text in plots_svg.items():
        files[f"plots/{k}.svg"] = text
    if artefacts is not None:
        files["predictions.csv"] = predictions_csv(artefacts)
    written = {}
    for rel, data in audio.items():  # first: the HTML and Markdown that name them come after
        written[rel] = atomic_write_bytes(out_dir / rel, data)
    for rel, text in files.items():
        written[rel] = atomic_write_text(out_dir / rel, text)
    return written


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path`` and rename it over ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path`` and rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
