"""The HTML FactSheet in a real browser: headless Chromium (Debian's ``chromium``) loads the demo report
from disk and must make no network request, log no console error, run no script and show every
section of the seed FactSheet, in order, with ink on the screenshot.

Skips only where no Chromium exists, unless ``FACTSHEET_REQUIRE_BROWSER=1`` (set by ``.ci/run``,
which installs one), in which case a missing browser fails the test. Nothing is installed here.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import numpy as np
import pytest

from _chromium import decode_png, find_chromium, inspect_page
from factsheet.render import render_html
from factsheet.sections import headings

SECTION_ORDER = [(h.key, h.title) for h in headings()]

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = find_chromium()
REQUIRED = os.environ.get("FACTSHEET_REQUIRE_BROWSER") == "1"

if CHROMIUM is None:
    if REQUIRED:
        pytest.fail("FACTSHEET_REQUIRE_BROWSER=1 but no chromium, chromium-browser or google-chrome on PATH "
                    "(apt-get install chromium)", pytrace=False)
    pytest.skip("no Chromium on PATH (apt-get install chromium; or set CHROMIUM=/path/to/chrome)",
                allow_module_level=True)

HOSTILE = ['<script>alert(1)</script>', '<img src=x onerror="alert(2)">', '<a href="https://example.com/x">x</a>']


@pytest.fixture(scope="module")
def demo_page(demo_report):  # demo_report: tests/conftest.py
    out, _ = demo_report
    report = inspect_page(out / "factsheet.html", executable=CHROMIUM)
    (out / "screenshot.png").write_bytes(report.screenshot_png)
    return report


def section_failures(report, *, expected: list[tuple[str, str]]) -> list[str]:
    """Why the page's sections are not all visibly there, in the expected order (empty: all fine)."""
    failures = []
    shot = decode_png(report.screenshot_png)
    luminance = shot.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    found = {s["id"]: s for s in report.sections}
    for key, title in expected:
        s = found.get(key)
        if s is None:
            failures.append(f"{key}: no <section id={key!r}>")
            continue
        if s["heading"] != title:
            failures.append(f"{key}: heading {s['heading']!r}, expected {title!r}")
        if s["display"] == "none" or s["visibility"] != "visible" or s["opacity"] < 0.99:
            failures.append(f"{key}: hidden (display {s['display']}, visibility {s['visibility']}, "
                            f"opacity {s['opacity']})")
        if s["width"] < 200 or s["height"] < 20 or s["text_length"] == 0:
            failures.append(f"{key}: {s['width']:.0f} x {s['height']:.0f} px, {s['text_length']} characters")
            continue
        y0, y1 = int(s["y"]), int(s["y"] + s["height"])
        x0, x1 = int(s["x"]), int(s["x"] + s["width"])
        region = luminance[y0:y1, x0:x1]
        dark = float((region < 110).mean()) if region.size else 0.0
        if dark < 0.002:  # text is dark ink on a light page: none means nothing legible was painted
            failures.append(f"{key}: no dark pixels painted in its box on the screenshot ({dark:.4f})")
    ys = [found[k]["y"] for k, _ in expected if k in found]
    if ys != sorted(ys):
        failures.append(f"sections out of order: {[k for k, _ in sorted(expected, key=lambda e: found.get(e[0], {}).get('y', 0))]}")
    return failures


def test_demo_html_makes_no_network_request(demo_page):
    assert demo_page.requests and demo_page.requests[0]["url"] == demo_page.url
    assert demo_page.external_requests == []


def test_demo_html_has_no_console_error_script_or_dialog(demo_page):
    assert demo_page.problems == []
    assert demo_page.dom["scripts"] == 0 and demo_page.dom["iframes"] == 0
    assert demo_page.dom["event_handler_attributes"] == []


def test_demo_html_shows_every_section_in_seed_order(demo_page):
    assert section_failures(demo_page, expected=SECTION_ORDER) == []
    assert [s["id"] for s in demo_page.sections] == [k for k, _ in SECTION_ORDER]


def test_demo_html_screenshot_and_figures(demo_page, demo_report):
    shot = decode_png(demo_page.screenshot_png)
    assert shot.shape[1] == 1280 and shot.shape[0] == demo_page.dom["height"] > 3000
    assert len(np.unique(shot.reshape(-1, 3)[::97], axis=0)) > 20  # text, tables and plots, not a blank page
    _, doc = demo_report
    n_plots = sum(1 for k in doc["outputs"] if k.startswith("plot_"))
    assert n_plots >= 4 and len(demo_page.dom["svgs"]) == n_plots
    assert all(w > 200 and h > 100 for w, h in demo_page.dom["svgs"])
    assert demo_page.dom["images"] == []  # plots are inline SVG, never <img>
    assert doc["title"] == demo_page.dom["title"]


def test_demo_html_plays_the_explanation_audio_with_no_request(demo_report):
    """The Explanation's players (data: audio under ``media-src data:``) play in the browser, fetch nothing
    and log no console error or warning."""
    out, doc = demo_report
    embedded = [e for e in doc["explanation"]["examples"] if e["audio"]]
    assert embedded, "the demo's Explanation embeds no audio"
    report = inspect_page(out / "factsheet.html", executable=CHROMIUM, play_audio=True)
    assert len(report.audio) == 2 * len(embedded)
    assert all(a["played"] and a["error"] is None and a["current_time"] > 0 for a in report.audio), report.audio
    assert not report.external_requests, report.external_requests
    assert not report.problems, report.problems


def test_print_stylesheet(demo_report):
    """Printed (print media, A4 PDF): contents hidden, every section still shown, several pages."""
    out, _ = demo_report
    report = inspect_page(out / "factsheet.html", executable=CHROMIUM, media="print", pdf=True)
    assert report.dom["nav_display"] == "none"
    assert section_failures(report, expected=SECTION_ORDER) == []
    assert report.pdf.startswith(b"%PDF-")
    pages = max(int(n) for n in re.findall(rb"/Count (\d+)", report.pdf))  # the page tree's root counts all
    assert pages >= 5
    assert report.problems == [] and report.external_requests == []


def test_hostile_text_is_inert_in_the_browser(demo_report, tmp_path):
    """Class names, metadata and prose holding markup show as text: nothing runs, loads or opens."""
    out, doc = demo_report
    doc = copy.deepcopy(doc)
    plots = {k[len("plot_"):]: (out / rel).read_text() for k, rel in doc["outputs"].items() if k.startswith("plot_")}
    doc["model"]["name"] = doc["title"] = HOSTILE[0]
    doc["model"]["overview"] = " ".join(HOSTILE)
    doc["performance"]["per_class"][0]["label"] = HOSTILE[1]
    doc["bias"]["groups"][0]["group"] = HOSTILE[1]
    doc["bias"]["findings"] = [HOSTILE[2]]
    doc["dataset"]["card"]["description"] = HOSTILE[2]
    page = tmp_path / "hostile.html"
    page.write_text(render_html(doc, plots_svg=plots), encoding="utf-8")
    report = inspect_page(page, executable=CHROMIUM)
    assert report.dialogs == [] and report.problems == [] and report.external_requests == []
    assert report.dom["scripts"] == 0 and report.dom["images"] == [] and report.dom["event_handler_attributes"] == []
    for text in HOSTILE:
        assert text in report.dom["text"]  # shown literally
    assert report.dom["title"] == HOSTILE[0]


# The checks above must be able to fail: planted faults.

def _page(tmp_path, body: str, *, csp: bool = False) -> Path:
    meta = ('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">'
            if csp else "")
    sections = "".join(f"<section id={k!r}><h2>{t}</h2><p>Some text for {t}.</p></section>" for k, t in SECTION_ORDER)
    p = tmp_path / "planted.html"
    p.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'>{meta}<title>t</title></head>"
                 f"<body>{sections}{body}</body></html>")
    return p


def test_checker_sees_a_planted_request_and_console_error(tmp_path):
    report = inspect_page(_page(tmp_path, '<img src="http://127.0.0.1:9/leak.png">'
                                          '<script>console.error("planted")</script>'), executable=CHROMIUM)
    assert [r["url"] for r in report.external_requests] == ["http://127.0.0.1:9/leak.png"]
    assert any("planted" in p for p in report.problems)
    assert section_failures(report, expected=SECTION_ORDER) == []  # the sections themselves are fine


def test_checker_sees_what_the_csp_blocks_and_a_dialog(tmp_path):
    report = inspect_page(_page(tmp_path, '<img src="http://127.0.0.1:9/leak.png">', csp=True),
                          executable=CHROMIUM)
    # Chromium announces the attempt even when the policy then blocks it: both count against a report.
    assert [r["url"] for r in report.external_requests] == ["http://127.0.0.1:9/leak.png"]
    assert any("Content Security Policy" in p for p in report.problems)
    report = inspect_page(_page(tmp_path, "<script>alert('planted')</script>"), executable=CHROMIUM)
    assert report.dialogs == ["alert: planted"]


def test_checker_sees_hidden_blank_and_misordered_sections(tmp_path):
    style = ("<style>#bias { display: none } #robustness p, #robustness h2 { color: #fff }"
             " #provenance { position: absolute; top: 0 }</style>")
    report = inspect_page(_page(tmp_path, style), executable=CHROMIUM)
    failures = section_failures(report, expected=SECTION_ORDER)
    assert any(f.startswith("bias: hidden") for f in failures)
    assert any(f.startswith("robustness: no dark pixels") for f in failures)
    assert any(f.startswith("sections out of order") for f in failures)
