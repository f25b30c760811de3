"""A real HTTP server speaking IBM MAX's audio-classifier REST API, with seeded fault injection.

For tests and benchmarks of :class:`factsheet.models.http_model.HttpModelClient`. It serves
any ``forward(waveforms (batch, n) float32) -> (batch, n_classes)`` on 127.0.0.1 (a free port)
from a :class:`http.server.ThreadingHTTPServer` in a background thread:

- ``POST /model/predict``: multipart form (parsed with the :mod:`email` package), field
  ``audio`` = a 16-bit PCM mono WAV at ``sample_rate`` with part content type ``audio/wav``
  (or ``audio/x-wav``, ``audio/wave``, ``audio/vnd.wave``), optional ``start_time`` (seconds:
  the clip is cut from there). Sample ``k`` becomes ``k / 32768``; the clip is brought to
  ``n_samples`` with :func:`factsheet.datasets.base.fit_length` (when given) and run through
  ``forward`` alone (batch of one). Answer: MAX's JSON with the top 5 classes by score
  (ties: lower class index first), ``label_id`` = mid, ``label`` = display_name,
  ``probability`` = the float32 score as a JSON number (exact round trip). A missing part, a
  wrong part content type or anything but such a WAV: HTTP 400 ``{"status": "error",
  "message": ...}``.
- ``GET /model/metadata``: ``{"id", "name", "description", "type", "source", "license"}``.

Faults, drawn per request (the n-th request received uses ``random.Random(f"{seed}:{n}")``):
``drop`` (fraction: read the request, then close the connection without an answer),
``error`` (fraction: HTTP 500), ``slow`` (fraction: wait ``slow_seconds`` before answering).
``corrupt`` turns every 200 answer into a malformed one (see :data:`CORRUPTIONS`).

Run as a script it serves the demo model in its own process (for ``bench/bench_http.py``)::

    python tests/_max_server.py [--port 0]     # prints the base URL on its first stdout line
"""

from __future__ import annotations

import io
import json
import random
import socket
import struct
import sys
import threading
import time
import wave
from contextlib import contextmanager
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

import numpy as np

WAV_TYPES = ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave")
#: Values of ``corrupt``: how every 200 answer is spoiled.
CORRUPTIONS = ("not_json", "status_error", "missing_predictions", "nan_probability", "unknown_label")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:  # a client that went away: not news
        pass


class MaxServer:
    """The server object behind :func:`serve`; ``url`` is its base URL, ``counts`` its counters.

    Parameters
    ----------
    forward : callable
        ``(batch, n) float32 -> (batch, n_classes)`` scores in ``class_labels`` order.
    class_labels : list of ClassLabel
    sample_rate : int
        Hz a WAV must have.
    n_samples : int or None
        Clips are brought to this length with ``fit_length``; None: as received.
    drop, error, slow : float
        Fractions of requests (each in [0, 1]) dropped, answered 500, delayed.
    slow_seconds : float
        Delay of a slow answer.
    seed : int
        Seed of the fault draws.
    corrupt : str or None
        One of :data:`CORRUPTIONS`, or None for correct answers.
    top_k : int
        Predictions per answer (5, as MAX).
    """

    def __init__(self, forward: Callable[[np.ndarray], np.ndarray], class_labels: list, *,
                 sample_rate: int = 16000, n_samples: int | None = None, drop: float = 0.0,
                 error: float = 0.0, slow: float = 0.0, slow_seconds: float = 0.2, seed: int = 0,
                 corrupt: str | None = None, top_k: int = 5) -> None:
        if corrupt is not None and corrupt not in CORRUPTIONS:
            raise ValueError(f"corrupt must be one of {CORRUPTIONS}, got {corrupt!r}")
        self.forward = forward
        self.class_labels = list(class_labels)
        self.sample_rate = int(sample_rate)
        self.n_samples = n_samples
        self.drop, self.error, self.slow = float(drop), float(error), float(slow)
        self.slow_seconds = float(slow_seconds)
        self.seed = int(seed)
        self.corrupt = corrupt
        self.top_k = int(top_k)
        self.counts = {"requests": 0, "predict": 0, "dropped": 0, "errors": 0, "slow": 0, "bad_request": 0,
                       "answered": 0, "in_flight": 0, "max_in_flight": 0}
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -------------------------------------------------------------- lifecycle

    def start(self) -> str:
        handler = type("Handler", (_Handler,), {"app": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        host, port = self._httpd.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="max-server", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> MaxServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -------------------------------------------------------------- behaviour

    def next_fault(self) -> tuple[bool, bool, bool]:
        """(drop, error, slow) for the next request, from its own seeded generator."""
        with self._lock:
            n = self.counts["requests"]
            self.counts["requests"] += 1
        rng = random.Random(f"{self.seed}:{n}")
        u_drop, u_error, u_slow = rng.random(), rng.random(), rng.random()
        drop = u_drop < self.drop
        error = not drop and u_error < self.error
        slow = not drop and u_slow < self.slow
        return drop, error, slow

    def count(self, key: str, delta: int = 1) -> None:
        with self._lock:
            self.counts[key] += delta
            if key == "in_flight":
                self.counts["max_in_flight"] = max(self.counts["max_in_flight"], self.counts["in_flight"])

    def metadata(self) -> dict:
        return {"id": "demo-audio-classifier", "name": "Demo audio classifier (test server)",
                "description": f"{len(self.class_labels)} classes, {self.sample_rate} Hz, top {self.top_k} answers",
                "type": "Audio Classification", "source": "factsheet tests", "license": "Apache 2.0"}

    def predict(self, wav: bytes, start_time: float) -> dict:
        """MAX's answer for one WAV; raises ValueError with the 400 message on bad input."""
        try:
            with wave.open(io.BytesIO(wav), "rb") as w:
                channels, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
                frames = w.readframes(n)
        except (wave.Error, EOFError, struct.error) as exc:
            raise ValueError(f"Invalid WAV file: {exc}") from None
        if channels != 1 or width != 2:
            raise ValueError(f"expected 16-bit PCM mono, got {8 * width}-bit, {channels} channel(s)")
        if rate != self.sample_rate:
            raise ValueError(f"expected a sample rate of {self.sample_rate} Hz, got {rate}")
        x = np.frombuffer(frames, dtype="<i2").astype(np.float32) / np.float32(32768.0)
        x = x[int(round(start_time * rate)):]
        if x.size == 0:
            raise ValueError("no audio (empty clip or start_time beyond its end)")
        if self.n_samples is not None:
            from factsheet.datasets.base import fit_length

            batch, _ = fit_length([x], n_samples=self.n_samples)
        else:
            batch = x[None, :]
        scores = np.asarray(self.forward(batch), dtype=np.float32)[0]
        order = np.argsort(-scores, kind="stable")[: self.top_k]
        preds = [{"label_id": self.class_labels[j].mid, "label": self.class_labels[j].display_name,
                  "probability": float(scores[j])} for j in order]
        return {"status": "ok", "predictions": preds}

    def spoil(self, answer: dict) -> bytes:
        if self.corrupt == "not_json":
            return b"<html>502 Bad Gateway</html>"
        if self.corrupt == "status_error":
            return json.dumps({"status": "error", "message": "model not loaded"}).encode()
        if self.corrupt == "missing_predictions":
            return json.dumps({"status": "ok"}).encode()
        if self.corrupt == "nan_probability":
            answer["predictions"][0]["probability"] = float("nan")
            return json.dumps(answer).encode()  # NaN: Python's json writes and reads it; the client must refuse
        if self.corrupt == "unknown_label":
            answer["predictions"][0].update(label_id="/m/unknown", label="Unknown class")
            return json.dumps(answer).encode()
        return json.dumps(answer).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the client's connection pool is used
    disable_nagle_algorithm = True  # headers and body are two writes: Nagle + delayed ACK would add 40 ms
    app: MaxServer

    def log_message(self, format, *args) -> None:  # noqa: A002 - quiet
        pass

    def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, doc: dict) -> None:
        self._reply(status, json.dumps(doc).encode())

    def do_GET(self) -> None:  # noqa: N802
        if self.path.split("?")[0].rstrip("/") == "/model/metadata":
            self._json(200, self.app.metadata())
        else:
            self._json(404, {"status": "error", "message": f"no such path {self.path}"})

    def do_POST(self) -> None:  # noqa: N802
        app = self.app
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if self.path.split("?")[0].rstrip("/") != "/model/predict":
            self._json(404, {"status": "error", "message": f"no such path {self.path}"})
            return
        app.count("in_flight")
        try:
            drop, error, slow = app.next_fault()
            app.count("predict")
            if drop:
                app.count("dropped")
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if slow:
                app.count("slow")
                time.sleep(app.slow_seconds)
            if error:
                app.count("errors")
                self._json(500, {"status": "error", "message": "internal server error (injected)"})
                return
            try:
                wav, start_time = self._form(body)
                answer = app.predict(wav, start_time)
            except ValueError as exc:
                app.count("bad_request")
                self._json(400, {"status": "error", "message": str(exc)})
                return
            app.count("answered")
            self._reply(200, app.spoil(answer))
        finally:
            app.count("in_flight", -1)

    def _form(self, body: bytes) -> tuple[bytes, float]:
        """(WAV bytes, start_time) from a multipart/form-data body; ValueError -> 400."""
        ctype = self.headers.get("Content-Type", "")
        if not ctype.lower().startswith("multipart/form-data"):
            raise ValueError(f"expected multipart/form-data, got {ctype or '(no Content-Type)'}")
        msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body)
        if not msg.is_multipart():
            raise ValueError("malformed multipart body")
        wav, start_time = None, 0.0
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name == "audio":
                if part.get_content_type() not in WAV_TYPES:
                    raise ValueError(f"Invalid file type/extension: part content type {part.get_content_type()}")
                wav = part.get_payload(decode=True) or b""
            elif name == "start_time":
                raw = (part.get_payload(decode=True) or b"").decode("utf-8", "replace").strip()
                try:
                    start_time = float(raw)
                except ValueError:
                    raise ValueError(f"start_time must be a number, got {raw!r}") from None
                if not start_time >= 0:
                    raise ValueError(f"start_time must be >= 0, got {raw!r}")
        if wav is None:
            raise ValueError("missing form field 'audio'")
        return wav, start_time


@contextmanager
def serve(forward: Callable[[np.ndarray], np.ndarray], class_labels: list, *, drop: float = 0.0,
          error: float = 0.0, slow: float = 0.0, slow_seconds: float = 0.2, seed: int = 0,
          sample_rate: int = 16000, n_samples: int | None = None, corrupt: str | None = None) -> Iterator[str]:
    """Serve ``forward`` under MAX's REST API on 127.0.0.1; yields the base URL; stops on exit.

    See :class:`MaxServer` for the parameters. Use :class:`MaxServer` directly (a context
    manager too) to read its ``counts``.
    """
    with MaxServer(forward, class_labels, sample_rate=sample_rate, n_samples=n_samples, drop=drop, error=error,
                   slow=slow, slow_seconds=slow_seconds, seed=seed, corrupt=corrupt) as server:
        yield server.url


def _main() -> None:
    import argparse
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ap = argparse.ArgumentParser(description="Serve the demo model under MAX's REST API.")
    ap.add_argument("--seconds", type=float, default=None, help="clip length served (default: the model's)")
    args = ap.parse_args()
    from factsheet.models.adapter import load_default_model, make_forward

    model = load_default_model()
    n = model.clip_samples if args.seconds is None else int(round(args.seconds * model.sample_rate))
    forward = make_forward(model.keras_model, n_samples=n)
    forward(np.zeros((1, n), np.float32))  # trace once before answering
    with MaxServer(forward, model.class_labels, sample_rate=model.sample_rate, n_samples=n) as server:
        print(server.url, flush=True)
        try:
            sys.stdin.read()  # serve until stdin closes (the parent ends)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    _main()
