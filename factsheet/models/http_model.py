"""A model deployed behind IBM MAX's REST contract, evaluated as a black box.

:class:`HttpModelClient` gives the harness its one model contract,
``forward(waveforms (batch, n_samples) float32 in [-1, 1]) -> (batch, n_classes) float32``,
for a model served over HTTP the way the MAX Audio Classifier is:

- ``POST {base}/model/predict``, multipart form field ``audio`` holding a 16-bit PCM mono WAV
  at the model's sample rate (file name ``clip.wav``, part content type ``audio/wav``), and
  the optional form field ``start_time`` (seconds).
- Answer ``{"status": "ok", "predictions": [{"label_id": "/m/09x0r", "label": "Speech",
  "probability": 0.83}, ...]}`` holding the TOP k classes only (k = 5 for MAX). Every class
  missing from the answer gets score 0.0, so ranking metrics (AP, AUC) computed from these
  scores are computed from truncated scores; a decision-based attack (HopSkipJump) needs only
  the top-1 and is unaffected.
- ``GET {base}/model/metadata`` describes the model (:meth:`HttpModelClient.metadata`).

What the server sees is 16-bit quantised audio (:func:`pcm16`): a perturbation smaller than
half a least significant bit (``0.5 / 32768``, about -96 dB full scale) vanishes before it
reaches the model.

Failures are reported as one :class:`~factsheet.errors.InputError` line naming the URL, the
request and the offending value, never a traceback. Transient failures (connection errors and
resets, timeouts, HTTP 5xx, HTTP 429) are retried with a small, capped, seeded exponential
backoff; a 4xx answer (the server refusing our input) and a malformed answer are not.

The results are deterministic: the score of a clip depends only on the server's answer for
that clip, never on retries, on the order in which answers arrive or on ``concurrency``.

Worker processes: a client survives pickling (``__getstate__`` keeps only its configuration;
``__setstate__`` rebuilds the connection pool, the lock and the threads lazily), and
:meth:`HttpModelClient.spec` / :meth:`HttpModelClient.from_spec` give the same as a JSON-able
dict for :func:`factsheet.models.adapter.model_spec`-style reloading. Either way the new client
starts with fresh counters and the full ``max_requests`` budget: the budget is per process.

Across workers: :func:`set_request_gate` installs a process-wide gate (the ``ray`` executor's
named semaphore actor) that every request of every client in the process passes through, so all
workers together keep to one concurrency limit; without one, each process keeps its own.
"""

from __future__ import annotations

import http.client
import json
import math
import random
import struct
import threading
import time
from contextlib import nullcontext
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from factsheet.datasets.base import ClassLabel
from factsheet.errors import InputError

__all__ = ["HttpModelClient", "pcm16", "wav_bytes", "base_url"]

PREDICT_PATH = "/model/predict"
METADATA_PATH = "/model/metadata"
PREDICT_FIELD = "POST " + PREDICT_PATH
METADATA_FIELD = "GET " + METADATA_PATH
#: Failure kinds counted by :meth:`HttpModelClient.stats`.
FAILURE_KINDS = ("timeout", "connection", "http_5xx", "http_429", "http_4xx", "malformed")
_MAX_SHOWN = 200  # characters of a server message shown in an error line

_NO_GATE = nullcontext()
_REQUEST_GATE = None  # process-wide: a callable returning a context manager held around each request


def set_request_gate(gate) -> None:
    """Hold ``gate()`` (a context manager) around every HTTP request of this process; None: no gate.

    The ``ray`` executor installs one slot of a cluster-wide semaphore per request
    (:class:`factsheet.executors.ray_backend.RayRequestGate`), so ``[model] concurrency`` bounds the
    requests in flight across all workers, not per worker.
    """
    global _REQUEST_GATE
    _REQUEST_GATE = gate


def pcm16(waveform: np.ndarray) -> np.ndarray:
    """The 16-bit PCM samples sent to the server: ``clip(round(x * 32768), -32768, 32767)``.

    Rounding is half to even (:func:`numpy.round`), the same as
    :func:`factsheet.audio.write_wav_pcm16`; the server reads sample ``k`` back as
    ``k / 32768``, so a change of ``x`` smaller than ``0.5 / 32768`` is invisible to it.

    Parameters
    ----------
    waveform : ndarray
        Shape (n_samples,), float, finite; values outside [-1, 1] saturate.

    Returns
    -------
    ndarray, int16, shape (n_samples,)

    Raises
    ------
    ValueError
        NaN or infinite samples, or not 1-D (programming errors, not user input).
    """
    x = np.asarray(waveform, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"waveform must be 1-D, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("waveform has NaN or infinite samples")
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def wav_bytes(waveform: np.ndarray, *, sample_rate: int) -> bytes:
    """A complete mono 16-bit PCM WAV file (44-byte header) holding :func:`pcm16` of ``waveform``.

    Parameters
    ----------
    waveform : ndarray
        Shape (n_samples,), float, finite.
    sample_rate : int
        Hz, > 0.
    """
    data = pcm16(waveform).astype("<i2").tobytes()
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(data), b"WAVE", b"fmt ", 16, 1, 1,
                         int(sample_rate), 2 * int(sample_rate), 2, 16, b"data", len(data))
    return header + data


def base_url(url: str) -> str:
    """The service root of a MAX URL given with or without the ``/model/predict`` path.

    ``http://host:5000``, ``http://host:5000/`` and ``http://host:5000/model/predict`` all
    give ``http://host:5000``; a prefix (``http://gw/max/model/predict``) is kept.

    Raises
    ------
    InputError
        Not an ``http``/``https`` URL with a host, or a query or fragment in it.
    """
    text = str(url).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(source=text, field="url", value=text, reason="not an http:// or https:// URL with a host")
    if parts.query or parts.fragment:
        raise InputError(source=text, field="url", value=text, reason="the URL must not have a query or fragment")
    path = parts.path.rstrip("/")
    for tail in (PREDICT_PATH, METADATA_PATH):
        if path.endswith(tail):
            path = path[: -len(tail)]
            break
    return urlunsplit((parts.scheme, parts.netloc, path.rstrip("/"), "", ""))


class _Retryable(Exception):
    """One failed attempt that may be retried (internal)."""

    def __init__(self, kind: str, value: object, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.value = value
        self.detail = detail
        self.retry_after = retry_after


class _Aborted(Exception):
    """Another clip of the same batch failed for good; stop quietly (internal)."""


def _one_line(text: str, limit: int = _MAX_SHOWN) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _root_name(exc: BaseException) -> str:
    """The class name of the innermost OS-level cause (ConnectionRefusedError, RemoteDisconnected, ...)."""
    seen: set[int] = set()
    best = exc
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, (OSError, http.client.HTTPException)) and not type(cur).__module__.startswith("urllib3"):
            best = cur
        nested = [a for a in getattr(cur, "args", ()) if isinstance(a, BaseException)]
        cur = nested[0] if nested else (cur.__cause__ or cur.__context__)
    return type(best).__name__


def _server_message(body: bytes) -> str:
    """The ``message`` of a JSON error answer, else the body's text, on one line."""
    text = body.decode("utf-8", errors="replace")
    try:
        doc = json.loads(text)
    except ValueError:
        return _one_line(text) or "(empty body)"
    if isinstance(doc, dict):
        for key in ("message", "error", "detail"):
            if isinstance(doc.get(key), str):
                return _one_line(doc[key])
            if isinstance(doc.get(key), dict):
                return _one_line(json.dumps(doc[key], sort_keys=True))
    return _one_line(text)


class HttpModelClient:
    """The harness's ``forward`` for a model served with IBM MAX's REST API.

    Parameters
    ----------
    url : str
        The service root (``http://host:5000``) or its predict URL
        (``http://host:5000/model/predict``); both are accepted.
    class_labels : list of ClassLabel
        The model's classes in output-column order. A prediction is mapped by
        ``label_id == mid`` first, else by ``label == display_name``; an answer naming any
        other class is an error.
    sample_rate : int
        Hz of the WAVs sent (the model's input rate).
    timeout_seconds : float
        Read timeout of one request, seconds (> 0). The connect timeout is
        ``min(timeout_seconds, 5)``: a refused connection fails at once, a host that drops
        packets costs up to 5 s per attempt.
    max_retries : int
        Retries of one clip after its first attempt (>= 0); ``1 + max_retries`` attempts in all.
    concurrency : int
        Requests in flight at most (>= 1): threads, and the size of the connection pool.
    max_requests : int or None
        Budget of HTTP requests (attempts, retries and :meth:`probe` included) for the whole
        client; ``None`` for no limit. When spent, :class:`InputError` on ``max_requests``.
        A batch larger than what is left fails before any request is sent.
    backoff_seconds : float
        First retry delay (>= 0). Attempt ``k`` (k >= 1) waits
        ``min(backoff_cap_seconds, backoff_seconds * 2 ** (k - 1)) * u``, ``u`` uniform in
        [0.5, 1] drawn from ``random.Random(f"{seed}:{request}:{k}")``; ``Retry-After`` of a
        429 or 5xx answer is honoured up to the cap. With the defaults an endpoint that refuses
        connections fails after at most 0.2 + 0.4 + 0.8 + 1.6 = 3.0 s of waiting.
    seed : int
        Seed of the backoff jitter (the jitter never changes a result).
    backoff_cap_seconds : float
        Longest single retry delay, seconds (raised to ``backoff_seconds`` if smaller).
    start_time : float or None
        Sent as the form field ``start_time`` (seconds) when not None.

    Notes
    -----
    Thread-safe: :meth:`forward` may be called from several threads. The results do not depend
    on retries, order of completion or ``concurrency``. Pickling keeps the configuration only
    (connections, threads, counters and the spent budget are not carried); see also
    :meth:`spec` and :meth:`from_spec`.
    """

    def __init__(self, *, url: str, class_labels: list[ClassLabel], sample_rate: int,
                 timeout_seconds: float = 30, max_retries: int = 4, concurrency: int = 4,
                 max_requests: int | None = None, backoff_seconds: float = 0.2, seed: int = 0,
                 backoff_cap_seconds: float = 2.0, start_time: float | None = None) -> None:
        self.url = base_url(url)
        self.predict_url = self.url + PREDICT_PATH
        self.class_labels = list(class_labels)
        if not self.class_labels:
            raise ValueError("class_labels must not be empty")
        self.sample_rate = self._check_int("sample_rate", sample_rate, 1)
        self.timeout_seconds = self._check_float("timeout_seconds", timeout_seconds, positive=True)
        self.max_retries = self._check_int("max_retries", max_retries, 0)
        self.concurrency = self._check_int("concurrency", concurrency, 1)
        self.max_requests = None if max_requests is None else self._check_int("max_requests", max_requests, 1)
        self.backoff_seconds = self._check_float("backoff_seconds", backoff_seconds)
        self.backoff_cap_seconds = max(self._check_float("backoff_cap_seconds", backoff_cap_seconds),
                                       self.backoff_seconds)
        self.seed = int(seed)
        self.start_time = None if start_time is None else self._check_float("start_time", start_time)
        self._by_mid: dict[str, int] = {}
        self._by_name: dict[str, int] = {}
        for j, c in enumerate(self.class_labels):
            if c.mid:
                self._by_mid.setdefault(c.mid, j)
            self._by_name.setdefault(c.display_name, j)
        self._setup_runtime()

    # ------------------------------------------------------------------ configuration

    def _check_int(self, name: str, value: object, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise InputError(source=self.url, field=name, value=value, reason=f"must be an integer >= {minimum}")
        return int(value)

    def _check_float(self, name: str, value: object, *, positive: bool = False) -> float:
        ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
        ok = ok and math.isfinite(float(value)) and (float(value) > 0 if positive else float(value) >= 0)
        if not ok:
            raise InputError(source=self.url, field=name, value=value,
                             reason="must be a finite number " + ("> 0" if positive else ">= 0"))
        return float(value)

    def _setup_runtime(self) -> None:
        """Fresh lock, counters and (lazily built) connection pool and threads."""
        self._lock = threading.Lock()
        self._pool = None
        self._executor: ThreadPoolExecutor | None = None
        self._serial = 0
        self._in_flight = 0
        self._stats: dict = {"requests": 0, "successes": 0, "retries": 0,
                             "failures": {k: 0 for k in FAILURE_KINDS}, "gave_up": 0, "clips": 0,
                             "bytes_sent": 0, "bytes_received": 0, "seconds_total": 0.0,
                             "max_in_flight": 0, "top_k_seen": 0}

    @property
    def n_classes(self) -> int:
        """Number of output columns (``len(class_labels)``)."""
        return len(self.class_labels)

    def spec(self) -> dict:
        """A JSON-able description from which :meth:`from_spec` builds an equal client.

        Returns
        -------
        dict
            ``{"source": "http", "url", "class_labels": [{"index", "mid", "display_name",
            "category"}, ...], "sample_rate", "timeout_seconds", "max_retries", "concurrency",
            "max_requests", "backoff_seconds", "backoff_cap_seconds", "seed", "start_time"}``.
        """
        return {"source": "http", "url": self.url,
                "class_labels": [{"index": c.index, "mid": c.mid, "display_name": c.display_name,
                                  "category": c.category} for c in self.class_labels],
                "sample_rate": self.sample_rate, "timeout_seconds": self.timeout_seconds,
                "max_retries": self.max_retries, "concurrency": self.concurrency,
                "max_requests": self.max_requests, "backoff_seconds": self.backoff_seconds,
                "backoff_cap_seconds": self.backoff_cap_seconds, "seed": self.seed,
                "start_time": self.start_time}

    @classmethod
    def from_spec(cls, spec: dict) -> HttpModelClient:
        """Rebuild a client from :meth:`spec` (fresh counters, full budget, no request sent)."""
        kw = {k: v for k, v in spec.items() if k not in ("source", "class_labels")}
        return cls(class_labels=[ClassLabel(**c) for c in spec["class_labels"]], **kw)

    def __getstate__(self) -> dict:
        return self.spec()

    def __setstate__(self, state: dict) -> None:
        kw = {k: v for k, v in state.items() if k not in ("source", "class_labels")}
        self.__init__(class_labels=[ClassLabel(**c) for c in state["class_labels"]], **kw)

    def __repr__(self) -> str:
        return (f"HttpModelClient(url={self.url!r}, n_classes={self.n_classes}, sample_rate={self.sample_rate}, "
                f"concurrency={self.concurrency})")

    def close(self) -> None:
        """Stop the threads and close the connections (rebuilt on the next call)."""
        with self._lock:
            executor, pool = self._executor, self._pool
            self._executor, self._pool = None, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        if pool is not None:
            pool.clear()

    def __enter__(self) -> HttpModelClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ public calls

    def forward(self, waveforms: np.ndarray) -> np.ndarray:
        """Scores for a batch of clips: one ``POST /model/predict`` per clip.

        Each clip is sent as a 16-bit PCM WAV (:func:`wav_bytes`: ``clip * 32768``, rounded
        half to even and clipped to int16), so the server sees 16-bit quantised audio and
        perturbations below half an LSB (``0.5 / 32768``) vanish. Up to ``concurrency``
        requests are in flight; the rows come back in input order.

        Parameters
        ----------
        waveforms : ndarray
            Shape (batch, n_samples), float, finite, in [-1, 1] (outside values saturate).

        Returns
        -------
        ndarray, float32, shape (batch, n_classes)
            The answer's probabilities in class-label order; 0.0 for every class outside the
            answer's top k.

        Raises
        ------
        InputError
            A clip that still fails after ``max_retries`` retries, a 4xx answer, a malformed
            answer or an exhausted ``max_requests`` budget. The first such failure stops the
            batch: clips not yet sent are not sent, clips in flight end after their current
            attempt (no retry), and only then is the error raised, so :meth:`stats` is final.
        ValueError
            Not 2-D, or NaN / infinite samples.
        """
        x = np.asarray(waveforms)
        if x.ndim != 2:
            raise ValueError(f"waveforms must have shape (batch, n_samples), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("waveforms have NaN or infinite samples")
        n = x.shape[0]
        out = np.zeros((n, self.n_classes), dtype=np.float32)
        if n == 0:
            return out
        t0 = time.perf_counter()
        with self._lock:
            first = self._serial
            self._serial += n
            self._stats["clips"] += n
            if self.max_requests is not None and self.max_requests - self._stats["requests"] < n:
                left = self.max_requests - self._stats["requests"]
                raise self._budget_error(f"{left} request(s) left, a batch of {n} clips needs at least {n}")
        abort = threading.Event()
        try:
            if n == 1 or self.concurrency == 1:
                for i in range(n):
                    out[i] = self._predict_one(x[i], serial=first + i, abort=abort)
            else:
                executor = self._get_executor()
                futures: list[Future] = [executor.submit(self._predict_one, x[i], serial=first + i, abort=abort)
                                         for i in range(n)]
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                failed = [f for f in futures if f in done and f.exception() is not None
                          and not isinstance(f.exception(), _Aborted)]
                if failed:
                    abort.set()
                    for f in futures:
                        f.cancel()
                    wait(futures)  # requests in flight end after their current attempt: no stray traffic
                    raise failed[0].exception()
                for i, f in enumerate(futures):
                    out[i] = f.result()
        finally:
            abort.set()
            with self._lock:
                self._stats["seconds_total"] += time.perf_counter() - t0
        return out

    __call__ = forward

    def probe(self, *, seconds: float = 1.0) -> dict:
        """Check the endpoint with one silent clip (retries as usual); fail early in one line.

        One second by default because the MAX service answers 400 to a clip under about
        0.975 s. The answer must map onto ``class_labels`` like any other.

        Returns
        -------
        dict
            ``{"url", "seconds" (round trip), "top_k" (predictions in the answer)}``.

        Raises
        ------
        InputError
            As :meth:`forward`.
        """
        n = max(1, int(round(seconds * self.sample_rate)))
        with self._lock:
            serial = self._serial
            self._serial += 1
            self._stats["clips"] += 1
        t = time.perf_counter()
        try:
            _, top_k = self._request_clip(np.zeros(n, np.float32), serial=serial, abort=threading.Event())
        finally:
            elapsed = time.perf_counter() - t
            with self._lock:
                self._stats["seconds_total"] += elapsed
        return {"url": self.url, "seconds": elapsed, "top_k": top_k}

    def metadata(self) -> dict:
        """``GET /model/metadata`` as a dict (one request, retried like a predict request).

        Raises
        ------
        InputError
            Failure after retries, a 4xx answer, or an answer that is not a JSON object.
        """
        with self._lock:
            serial = self._serial
            self._serial += 1
        body = self._with_retries(lambda: self._send("GET", self.url + METADATA_PATH, None, None),
                                  serial=serial, field=METADATA_FIELD, abort=threading.Event())
        try:
            doc = json.loads(body.decode("utf-8"))
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            self._count_failure("malformed")
            shown = _one_line(body[:80].decode("utf-8", "replace"))
            raise InputError(source=self.url, field=METADATA_FIELD, value=shown, reason="answer is not a JSON object")
        with self._lock:
            self._stats["successes"] += 1
        return doc

    def stats(self) -> dict:
        """JSON-able counters since the client was built (thread-safe snapshot).

        Returns
        -------
        dict
            ``requests`` (HTTP attempts sent), ``successes`` (valid answers), ``retries``
            (attempts after a clip's first), ``failures`` (failed attempts by kind: timeout,
            connection, http_5xx, http_429, http_4xx, malformed), ``gave_up`` (clips that failed
            for good), ``clips`` (clips submitted), ``bytes_sent`` (request bodies),
            ``bytes_received`` (answer bodies), ``seconds_total`` (wall time inside
            :meth:`forward`), ``max_in_flight`` (most requests observed in flight at once),
            ``top_k_seen`` (most predictions in one answer), ``max_requests`` and
            ``requests_left`` (``None`` without a budget), ``concurrency``.
        """
        with self._lock:
            s = json.loads(json.dumps(self._stats))
        s["max_requests"] = self.max_requests
        s["requests_left"] = None if self.max_requests is None else self.max_requests - s["requests"]
        s["concurrency"] = self.concurrency
        return s

    # ------------------------------------------------------------------ internals

    def _get_pool(self):
        with self._lock:
            if self._pool is None:
                import urllib3

                self._pool = urllib3.PoolManager(
                    num_pools=2, maxsize=self.concurrency, block=True, retries=False,
                    timeout=urllib3.Timeout(connect=min(self.timeout_seconds, 5.0), read=self.timeout_seconds))
            return self._pool

    def _get_executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="http-model")
            return self._executor

    def _budget_error(self, detail: str) -> InputError:
        return InputError(source=self.url, field="max_requests", value=self.max_requests,
                          reason=f"request budget exhausted ({detail})")

    def _count_failure(self, kind: str) -> None:
        with self._lock:
            self._stats["failures"][kind] += 1

    def _send(self, method: str, url: str, body: bytes | None, content_type: str | None) -> bytes:
        """One HTTP attempt; returns the 200 body or raises :class:`_Retryable` / :class:`InputError`."""
        import urllib3

        pool = self._get_pool()
        with self._lock:
            if self.max_requests is not None and self._stats["requests"] >= self.max_requests:
                raise self._budget_error(f"all {self.max_requests} requests used")
            self._stats["requests"] += 1
            self._stats["bytes_sent"] += len(body or b"")
            self._in_flight += 1
            self._stats["max_in_flight"] = max(self._stats["max_in_flight"], self._in_flight)
        try:
            headers = {"Accept": "application/json"}
            if content_type:
                headers["Content-Type"] = content_type
            with (_REQUEST_GATE() if _REQUEST_GATE is not None else _NO_GATE):
                resp = pool.request(method, url, body=body, headers=headers, redirect=False, preload_content=True)
                data = resp.data or b""
        except urllib3.exceptions.NewConnectionError as exc:
            raise _Retryable("connection", _root_name(exc), _one_line(str(exc))) from None
        except (urllib3.exceptions.TimeoutError, TimeoutError) as exc:
            raise _Retryable("timeout", type(exc).__name__,
                             f"no answer within {self.timeout_seconds:g} s ({_one_line(str(exc))})") from None
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            raise _Retryable("connection", _root_name(exc), _one_line(str(exc))) from None
        finally:
            with self._lock:
                self._in_flight -= 1
        with self._lock:
            self._stats["bytes_received"] += len(data)
        status = int(resp.status)
        if status == 200:
            return data
        message = _server_message(data)
        if status == 429 or status >= 500:
            retry_after = None
            try:
                retry_after = float(resp.headers.get("Retry-After", ""))
            except ValueError:
                pass
            kind = "http_429" if status == 429 else "http_5xx"
            raise _Retryable(kind, status, f"HTTP {status}: {message}", retry_after=retry_after)
        self._count_failure("http_4xx")
        field = PREDICT_FIELD if url.endswith(PREDICT_PATH) else f"{method} {urlsplit(url).path}"
        raise InputError(source=self.url, field=field, value=status, reason=f"server refused the request: {message}")

    def _delay(self, serial: int, attempt: int, retry_after: float | None) -> float:
        rng = random.Random(f"{self.seed}:{serial}:{attempt}")
        base = min(self.backoff_cap_seconds, self.backoff_seconds * 2.0 ** (attempt - 1))
        delay = base * (0.5 + 0.5 * rng.random())
        if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
            delay = max(delay, min(retry_after, self.backoff_cap_seconds))
        return delay

    def _with_retries(self, attempt_fn, *, serial: int, field: str, abort: threading.Event) -> bytes:
        last: _Retryable | None = None
        for attempt in range(self.max_retries + 1):
            if attempt > 0:
                if abort.wait(self._delay(serial, attempt, last.retry_after if last else None)):
                    raise _Aborted()
                with self._lock:
                    self._stats["retries"] += 1
            elif abort.is_set():
                raise _Aborted()
            try:
                return attempt_fn()
            except _Retryable as exc:
                self._count_failure(exc.kind)
                last = exc
            except InputError:
                with self._lock:
                    self._stats["gave_up"] += 1
                raise
        with self._lock:
            self._stats["gave_up"] += 1
        assert last is not None
        raise InputError(source=self.url, field=field, value=last.value,
                         reason=f"failed after {self.max_retries + 1} attempt(s), last: {last.kind} ({last.detail})")

    def _predict_one(self, clip: np.ndarray, *, serial: int, abort: threading.Event) -> np.ndarray:
        return self._request_clip(clip, serial=serial, abort=abort)[0]

    def _request_clip(self, clip: np.ndarray, *, serial: int, abort: threading.Event) -> tuple[np.ndarray, int]:
        """One clip through ``POST /model/predict`` with retries: (score row, predictions in the answer)."""
        import urllib3

        if abort.is_set():
            raise _Aborted()
        fields: dict = {"audio": ("clip.wav", wav_bytes(clip, sample_rate=self.sample_rate), "audio/wav")}
        if self.start_time is not None:
            fields["start_time"] = repr(self.start_time)
        body, content_type = urllib3.encode_multipart_formdata(fields)
        data = self._with_retries(lambda: self._send("POST", self.predict_url, body, content_type),
                                  serial=serial, field=PREDICT_FIELD, abort=abort)
        try:
            row, top_k = self._parse(data)
        except InputError:
            with self._lock:
                self._stats["failures"]["malformed"] += 1
                self._stats["gave_up"] += 1
            raise
        with self._lock:
            self._stats["successes"] += 1
        return row, top_k

    def _malformed(self, field: str, value: object, reason: str) -> InputError:
        return InputError(source=self.url, field=f"{PREDICT_FIELD} answer {field}".rstrip(), value=value,
                          reason=reason)

    def _parse(self, data: bytes) -> tuple[np.ndarray, int]:
        """A MAX answer -> (one float32 row in class-label order, 0.0 outside the top k; k)."""
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise self._malformed("", _one_line(data[:60].decode("utf-8", "replace")) or "(empty body)",
                                  "answer is not JSON") from None
        if not isinstance(doc, dict):
            raise self._malformed("", type(doc).__name__, "answer is not a JSON object")
        if doc.get("status") != "ok":
            shown = doc.get("status", "(missing)")
            msg = doc.get("message")
            reason = "status is not \"ok\"" + (f": {_one_line(msg)}" if isinstance(msg, str) else "")
            raise self._malformed("status", shown, reason)
        preds = doc.get("predictions")
        if not isinstance(preds, list):
            raise self._malformed("predictions", None if preds is None else type(preds).__name__,
                                  "missing or not a list")
        row = np.zeros(self.n_classes, dtype=np.float32)
        seen: set[int] = set()
        for k, p in enumerate(preds):
            where = f"predictions[{k}]"
            if not isinstance(p, dict):
                raise self._malformed(where, type(p).__name__, "not a JSON object")
            label_id, label, prob = p.get("label_id"), p.get("label"), p.get("probability")
            if label_id is None and label is None:
                raise self._malformed(where, None, "has neither label_id nor label")
            if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not math.isfinite(prob):
                raise self._malformed(f"{where}.probability", prob, "missing or not a finite number")
            j = self._by_mid.get(label_id) if isinstance(label_id, str) else None
            if j is None and isinstance(label, str):
                j = self._by_name.get(label)
            if j is None:
                raise self._malformed(where, {"label_id": label_id, "label": label},
                                      "class not in the class-labels list")
            if j in seen:
                raise self._malformed(where, {"label_id": label_id, "label": label}, "class named twice")
            seen.add(j)
            row[j] = np.float32(prob)
        with self._lock:
            self._stats["top_k_seen"] = max(self._stats["top_k_seen"], len(preds))
        return row, len(preds)
