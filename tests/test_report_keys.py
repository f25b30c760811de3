"""Every number in the report's tables has a unit and a one-line definition beside it.

Each table of the HTML and Markdown reports is followed, in its section, by a key (each section's glossary in factsheet.sections)
that names every numeric column of the table with its unit and definition; the headline metrics
table carries Unit and Definition columns itself. A new column without a key entry fails here.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from factsheet.sections import column_keys

# Columns that hold names, not numbers.
TEXT_HEADERS = {"Class", "Category", "Classes", "Column(s)", "Column", "Group", "Norm", "Metric", "Reference", "Corruption",
                "Unit", "Definition", "Field", "Value", ""}
NORM_HEADERS = {"L2", "L-Infinity"}  # the summary table: one column per norm, rows per percentile


class _Tables(HTMLParser):
    """Collect, per <section id>, its tables (header row cells, first-column row headers) and key entries."""

    def __init__(self):
        super().__init__()
        self.section = None
        self.sections: dict[str, dict] = {}
        self._stack: list[str] = []
        self._text: list[str] | None = None
        self._row: list[tuple[str, str]] | None = None
        self._table: list[list[tuple[str, str]]] | None = None
        self._in_key = False
        self._entry: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.section = attrs.get("id")
            self.sections[self.section] = {"tables": [], "keys": []}
        elif tag == "table":
            self._table = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("th", "td") and self._row is not None:
            self._text = []
            self._cell = tag
        elif tag == "dl" and "key" in (attrs.get("class") or ""):
            self._in_key = True
        elif self._in_key and tag in ("dt", "dd"):
            self._text = []
        elif self._in_key and tag == "span" and attrs.get("class") == "unit":
            self._unit_start = len(self._text or [])

    def handle_endtag(self, tag):
        if tag == "table" and self._table is not None:
            self.sections[self.section]["tables"].append(self._table)
            self._table = None
        elif tag == "tr" and self._row is not None:
            self._table.append(self._row)
            self._row = None
        elif tag in ("th", "td") and self._text is not None and self._row is not None:
            self._row.append((self._cell, "".join(self._text).strip()))
            self._text = None
        elif tag == "dl" and self._in_key:
            self._in_key = False
        elif self._in_key and tag == "dt":
            self._entry = {"label": "".join(self._text).strip()}
            self._text = None
        elif self._in_key and tag == "dd":
            self._entry["text"] = "".join(self._text).strip()
            self.sections[self.section]["keys"].append(self._entry)
            self._text = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)


def _numeric_headers(table: list[list[tuple[str, str]]]) -> list[str]:
    head = table[0]
    if all(kind == "th" for kind, _ in head) and len(head) > 1:
        names = [t for _, t in head]
        if NORM_HEADERS & set(names):  # per-norm summary: the numbers are described by the row headers
            return [re.sub(r"^\d+th Percentile$", "p-th Percentile", row[0][1]) for row in table[1:]]
        return [n for n in names if n not in TEXT_HEADERS]
    return []  # a Field | Value table: row headers name text and numbers alike; it needs a key, checked below


@pytest.fixture(scope="module")
def html_sections(demo_report):
    out, _ = demo_report
    parser = _Tables()
    parser.feed((out / "factsheet.html").read_text(encoding="utf-8"))
    return parser.sections


def test_every_html_table_column_has_a_unit_and_definition(html_sections):
    missing = []
    n_tables = 0
    for sid, sec in html_sections.items():
        labels = {e["label"] for e in sec["keys"]}
        for table in sec["tables"]:
            n_tables += 1
            headers = [t for _, t in table[0]]
            if "Unit" in headers and "Definition" in headers:  # the headline metrics carry their own
                unit_col, def_col = headers.index("Unit"), headers.index("Definition")
                for row in table[1:]:
                    if not row[unit_col][1] or not row[def_col][1]:
                        missing.append(f"{sid}: row {row[0][1]!r} without unit or definition")
                continue
            if not sec["keys"]:
                missing.append(f"{sid}: table {headers[:3]}... has no key")
            for name in _numeric_headers(table):
                if name not in labels:
                    missing.append(f"{sid}: column {name!r} not in the key {sorted(labels)}")
    assert n_tables >= 14
    assert missing == []


def test_key_entries_have_unit_and_one_line_definition(html_sections, demo_report):
    _, doc = demo_report
    entries = [e for sec in html_sections.values() for e in sec["keys"]]
    assert len(entries) >= 40
    for e in entries:
        unit, _, definition = e["text"].partition(" \u00b7 ")
        assert unit.strip() and len(definition) > 15 and "\n" not in definition, e
    # worded with the run's own settings, not generic placeholders
    text = " ".join(e["text"] for e in entries)
    t, k = doc["robustness"]["settings"]["iterations"], doc["robustness"]["settings"]["k"]
    assert f"after {t} HopSkipJump iterations" in text and f"k = {k} iterations" in text
    assert f"fewer than {doc['bias']['settings']['min_group_size']} is insufficient evidence" in text


def test_markdown_tables_have_their_key(demo_report):
    out, doc = demo_report
    md = (out / "factsheet.md").read_text(encoding="utf-8")
    sections = re.split(r"^## ", md, flags=re.M)[1:]
    keys = column_keys(doc)
    all_labels = {e["label"] for entries in keys.values() for e in entries}
    missing = []
    for sec in sections:
        title = sec.splitlines()[0]
        tables = re.findall(r"((?:^\|.*\|\n)+)", sec, flags=re.M)
        for table in tables:
            head = [c.strip() for c in table.splitlines()[0].strip("|").split("|")]
            if "Unit" in head and "Definition" in head:
                continue
            if "*Columns:*" not in sec:
                missing.append(f"{title}: table {head[:3]} has no key")
            rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]
            names = ([re.sub(r"^\d+th Percentile$", "p-th Percentile", r[0]) for r in rows]
                     if NORM_HEADERS & set(head) else [h for h in head if h not in TEXT_HEADERS])
            for name in names:
                if name and name not in all_labels:
                    missing.append(f"{title}: column {name!r} without a key entry")
                elif name and f"- **{name.replace(chr(39), '&#39;')}** (" not in sec:
                    missing.append(f"{title}: column {name!r} not defined in this section")
    assert missing == []


def test_glossary_is_a_function_of_the_document_only(demo_report):
    _, doc = demo_report
    assert column_keys(doc) == column_keys(doc)
    no_attack = dict(doc, robustness={"status": "not_evaluated", "text": "", "reason": "off"})
    keys = column_keys(no_attack)
    assert "robustness_summary" not in keys
    assert keys["bias_per_class"][-1]["definition"].startswith("Not measured")


def test_markdown_tables_are_well_formed(demo_report):
    """GitHub renders a table only when every row has the header's cell count (escaped pipes aside)."""
    out, _ = demo_report
    md = (out / "factsheet.md").read_text(encoding="utf-8")
    tables = re.findall(r"((?:^\|.*\|\n)+)", md, flags=re.M)
    assert len(tables) >= 14
    for table in tables:
        lines = table.splitlines()
        assert re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[1]), lines[:2]
        widths = {line.count("|") for line in lines}  # escaped pipes are &#124;, never a bare |
        assert len(widths) == 1, [line for line in lines if line.count("|") != lines[0].count("|")][:3]
    # a table must start a block: the line before it is blank
    for m in re.finditer(r"^\|.*\|\n\|[-:| ]+\|$", md, flags=re.M):
        assert md[:m.start()].endswith("\n\n"), md[max(0, m.start() - 80):m.start()]


def test_interval_headers_follow_the_run_confidence(demo_report):
    """The robustness intervals are at the run's confidence level, never a hard-coded 95 %."""
    from factsheet.render import render_markdown

    out, doc = demo_report
    assert doc["robustness"]["settings"]["confidence"] == doc["performance"]["confidence"] == 0.95
    doc = json.loads(json.dumps(doc))
    doc["robustness"]["settings"]["confidence"] = doc["performance"]["confidence"] = 0.9
    if doc["robustness"].get("groups"):  # its sentences state the run's level as computed; the rest must follow
        groups = doc["robustness"]["groups"]
        groups.update(confidence=0.9, findings=[])
    plots = {k[len("plot_"):]: f"plots/{k[len('plot_'):]}.svg" for k in doc["outputs"] if k.startswith("plot_")}
    md = render_markdown(doc, plot_files=plots)
    assert "| 90% CI (16-bit PCM) |" in md and "- **90% CI** (" in md
    robustness = md[md.index("\n## Robustness"):md.index("\n## Domain Shift")]
    assert "95%" not in robustness
