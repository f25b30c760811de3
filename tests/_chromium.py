"""A minimal headless-Chromium driver for the report tests: the DevTools protocol over a pipe.

Chromium started with ``--remote-debugging-pipe`` reads protocol commands from file descriptor 3
and writes responses and events to file descriptor 4, each message JSON terminated by a NUL byte.
That needs no WebSocket client, no open port and nothing from the network; the test suite
installs nothing at run time (``.ci/run`` installs Debian's ``chromium``).

:func:`inspect_page` opens one local HTML file and returns what an auditor's browser did with it:
every network request, console message, log entry and uncaught exception, a full-page PNG
screenshot, and the geometry, style and ink of each ``<section>``.
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import selectors
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-extensions", "--disable-quic", "--disable-features=Translate,MediaRouter",
    "--mute-audio", "--hide-scrollbars", "--remote-debugging-pipe",
)

# Run in the page after load: per <section>, is it rendered and where (page coordinates, CSS px)?
SECTIONS_JS = """
(() => Array.from(document.querySelectorAll('body > section')).map(s => {
  const r = s.getBoundingClientRect();
  const st = getComputedStyle(s);
  const h = s.querySelector('h2');
  return {id: s.id, heading: h ? h.innerText.trim() : '', text_length: s.innerText.trim().length,
          x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height,
          display: st.display, visibility: st.visibility, opacity: parseFloat(st.opacity),
          color: st.color, background: st.backgroundColor};
}))()
"""

DOM_JS = """
(() => ({nav_display: (n => n ? getComputedStyle(n).display : null)(document.querySelector('nav')),
         scripts: document.querySelectorAll('script').length,
         images: Array.from(document.querySelectorAll('img')).map(i => i.getAttribute('src')),
         iframes: document.querySelectorAll('iframe, object, embed').length,
         event_handler_attributes: Array.from(document.querySelectorAll('*')).flatMap(
             e => Array.from(e.attributes).filter(a => a.name.startsWith('on')).map(a => a.name)),
         svgs: Array.from(document.querySelectorAll('figure svg')).map(s => {
             const r = s.getBoundingClientRect(); return [r.width, r.height]; }),
         title: document.title, text: document.body.innerText,
         width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight}))()
"""


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable on PATH (``$CHROMIUM`` first), or ``None``."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return shutil.which(explicit) or (explicit if os.access(explicit, os.X_OK) else None)
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageReport:
    """What happened when Chromium loaded one page."""

    url: str
    requests: list[dict] = field(default_factory=list)      # Network.requestWillBeSent: url, type
    console: list[dict] = field(default_factory=list)       # Runtime.consoleAPICalled: type, text
    log: list[dict] = field(default_factory=list)           # Log.entryAdded: level, source, text
    exceptions: list[str] = field(default_factory=list)     # Runtime.exceptionThrown
    dialogs: list[str] = field(default_factory=list)        # Page.javascriptDialogOpening (alert & co.)
    sections: list[dict] = field(default_factory=list)
    dom: dict = field(default_factory=dict)
    screenshot_png: bytes = b""
    pdf: bytes = b""
    audio: list[dict] = field(default_factory=list)         # play_audio: per <audio>, what playing it did

    @property
    def external_requests(self) -> list[dict]:
        """Requests for anything but the page itself and ``data:`` URLs (which fetch nothing: the page's
        embedded audio, and the icons of Chromium's own media controls)."""
        return [r for r in self.requests if r["url"] != self.url and not r["url"].startswith("data:")]

    @property
    def problems(self) -> list[str]:
        """Console errors and warnings, error-level log entries, exceptions and dialogs, one line each."""
        out = [f"console.{m['type']}: {m['text']}" for m in self.console if m["type"] in ("error", "warning", "assert")]
        out += [f"log {e['level']} ({e['source']}): {e['text']}" for e in self.log if e["level"] in ("error", "warning")]
        out += [f"exception: {e}" for e in self.exceptions]
        out += [f"dialog: {d}" for d in self.dialogs]
        return out


class ChromiumError(RuntimeError):
    pass


class _Pipe:
    """DevTools protocol session over Chromium's fds 3 (commands in) and 4 (messages out)."""

    def __init__(self, executable: str, *, width: int, height: int, timeout_s: float):
        self.timeout_s = timeout_s
        self.profile = tempfile.mkdtemp(prefix="factsheet-chromium-")
        cmd_r, self._cmd_w = os.pipe()
        self._msg_r, msg_w = os.pipe()
        # Park the child's ends above 10 so the dup2 onto 3 and 4 below cannot clobber each other.
        child_in = fcntl.fcntl(cmd_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(msg_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(cmd_r)
        os.close(msg_w)

        def wire_fds():  # runs in the child between fork and exec
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        args = [executable, *FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
                "about:blank"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=wire_fds, pass_fds=(3, 4),
                                     close_fds=True)
        os.close(child_in)
        os.close(child_out)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._msg_r, selectors.EVENT_READ)

    def send(self, method: str, params: dict | None = None, *, session: str | None = None) -> dict:
        """Send one command and wait for its result (events that arrive meanwhile are kept)."""
        self._next_id += 1
        my_id = self._next_id
        msg = {"id": my_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            for m in self._read(deadline):
                if m.get("id") == my_id:
                    if "error" in m:
                        raise ChromiumError(f"{method}: {m['error']}")
                    return m.get("result", {})
                self._keep([m])

    def wait_for(self, method: str, *, session: str, timeout_s: float) -> dict:
        """Wait for an event (already received or still to come)."""
        deadline = time.monotonic() + timeout_s
        while True:
            for m in self.events:
                if m.get("method") == method and m.get("sessionId") == session:
                    return m
            self._keep(self._read(deadline))

    def drain(self, seconds: float) -> None:
        """Collect the events of the next ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self._keep(self._read(deadline))
            except TimeoutError:
                return

    def _keep(self, messages: list[dict]) -> None:
        """Keep events; dismiss JavaScript dialogs at once (an open alert() would stall the page's load)."""
        for m in messages:
            if "method" not in m:
                continue  # the reply to a command nobody waits for (a dialog dismissal)
            self.events.append(m)
            if m["method"] == "Page.javascriptDialogOpening":
                self._next_id += 1
                os.write(self._cmd_w, json.dumps({"id": self._next_id, "method": "Page.handleJavaScriptDialog",
                                                  "params": {"accept": False},
                                                  "sessionId": m.get("sessionId")}).encode() + b"\0")

    def _read(self, deadline: float) -> list[dict]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not self._sel.select(timeout=left):
                raise TimeoutError("no message from Chromium in time")
            chunk = os.read(self._msg_r, 1 << 20)
            if not chunk:
                err = self.proc.stderr.read().decode(errors="replace")[-2000:] if self.proc.poll() is not None else ""
                raise ChromiumError(f"Chromium closed the DevTools pipe (exit {self.proc.poll()}): {err}")
            self._buffer += chunk
        *messages, self._buffer = self._buffer.split(b"\0")
        return [json.loads(m) for m in messages if m]

    def close(self) -> None:
        try:
            os.write(self._cmd_w, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            for fd in (self._cmd_w, self._msg_r):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._sel.close()
            if self.proc.stderr:
                self.proc.stderr.close()
            shutil.rmtree(self.profile, ignore_errors=True)


def inspect_page(path: str | Path, *, executable: str, width: int = 1280, height: int = 900,
                 media: str = "screen", pdf: bool = False, settle_s: float = 0.5,
                 timeout_s: float = 60.0, play_audio: bool = False) -> PageReport:
    """Load a local HTML file in headless Chromium and report what it did.

    Parameters
    ----------
    path : str or Path
        The HTML file, opened as a ``file://`` URL.
    executable : str
        Chromium or Chrome (see :func:`find_chromium`).
    width, height : int
        Viewport size in CSS pixels (device scale factor 1); the screenshot covers the full page.
    media : {"screen", "print"}
        CSS media to emulate; ``"print"`` applies the page's print stylesheet.
    pdf : bool
        Also print the page to PDF (A4) into ``PageReport.pdf``.
    settle_s : float
        Seconds to keep listening after the load event, for late console messages or requests.
    timeout_s : float
        Limit for each protocol round trip and for the load, in seconds.
    play_audio : bool
        Play every ``<audio>`` element (muted) for a moment and record in ``PageReport.audio`` whether it
        played: ``{"played", "current_time", "duration", "error"}``.
    """
    url = Path(path).resolve().as_uri()
    report = PageReport(url=url)
    pipe = _Pipe(executable, width=width, height=height, timeout_s=timeout_s)
    try:
        target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            pipe.send(f"{domain}.enable", session=session)
        pipe.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
        pipe.send("Emulation.setEmulatedMedia", {"media": media}, session=session)
        pipe.events.clear()  # about:blank's own events are not the page's
        pipe.send("Page.navigate", {"url": url}, session=session)
        pipe.wait_for("Page.loadEventFired", session=session, timeout_s=timeout_s)
        pipe.drain(settle_s)
        report.sections = _evaluate(pipe, SECTIONS_JS, session)
        report.dom = _evaluate(pipe, DOM_JS, session)
        if play_audio:
            report.audio = _evaluate(pipe, PLAY_JS, session, await_promise=True)
            pipe.drain(settle_s)
        shot = pipe.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                    "fromSurface": True}, session=session)
        report.screenshot_png = base64.b64decode(shot["data"])
        if pdf:
            printed = pipe.send("Page.printToPDF", {"paperWidth": 8.27, "paperHeight": 11.69,
                                                    "printBackground": True}, session=session)
            report.pdf = base64.b64decode(printed["data"])
        pipe.drain(0.1)
    finally:
        pipe.close()
    for ev in pipe.events:
        method, p = ev.get("method"), ev.get("params", {})
        if method == "Network.requestWillBeSent":
            report.requests.append({"url": p["request"]["url"], "type": p.get("type")})
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            report.console.append({"type": p["type"], "text": text})
        elif method == "Log.entryAdded":
            e = p["entry"]
            report.log.append({"level": e["level"], "source": e["source"], "text": e["text"]})
        elif method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            report.exceptions.append(d.get("exception", {}).get("description") or d.get("text", ""))
        elif method == "Page.javascriptDialogOpening":
            report.dialogs.append(f"{p['type']}: {p['message']}")
    return report


PLAY_JS = """(async () => {
  const out = [];
  for (const a of document.querySelectorAll('audio')) {
    const r = {played: false, current_time: 0, duration: null, error: null};
    try {
      a.muted = true;
      await a.play();
      await new Promise(ok => setTimeout(ok, 150));
      r.played = !a.paused || a.ended; r.current_time = a.currentTime; r.duration = a.duration;
      a.pause();
    } catch (e) { r.error = String(e); }
    if (a.error) r.error = 'MediaError ' + a.error.code;
    out.push(r);
  }
  return out;
})()"""


def _evaluate(pipe: _Pipe, expression: str, session: str, *, await_promise: bool = False):
    # await_promise: the play script, run as a user's gesture (as when an auditor clicks play)
    res = pipe.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                         "awaitPromise": await_promise, "userGesture": await_promise}, session=session)
    if "exceptionDetails" in res:
        raise ChromiumError(f"page script failed: {res['exceptionDetails']}")
    return res["result"]["value"]


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes -> uint8 array (height, width, 3), via Pillow (a dependency of matplotlib)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))
