"""Resumable run store: per-clip attack results committed to SQLite as each clip finishes.

A long adversarial attack (HopSkipJump, clip by clip, possibly in several worker
processes) writes each finished clip's result here in its own transaction. Re-running
the same command opens the same file, asks :meth:`RunStore.done` /
:meth:`RunStore.is_done`, and computes only the clips that are missing, so an
interrupted run (even ``SIGKILL``) resumes and ends with exactly the results an
uninterrupted run would have produced.

Only the standard library is used (``sqlite3`` and ``json``; no pickle): the file can
be opened with any SQLite client for auditing.

Run keys
--------
Every result is stored under a *run key*: the sha256 of the canonical JSON of the
settings that determine it (:func:`run_key_for`). **The caller must put into those
settings everything a result depends on** -- the attack settings, the model file's
sha256, the dataset's sha256 (or the per-clip audio hashes) and the clip selection.
A store opened with one run key never returns results written under another, so a
changed config or model never silently reuses old results; the old results stay in
the file and :meth:`RunStore.other_run_keys` counts them so the caller can say
"ignored N results from a different configuration".

Decisions
---------
* **Durability**: ``journal_mode=WAL`` with ``synchronous=FULL``. WAL with ``NORMAL``
  already survives a killed process (committed pages are in the WAL file, which the OS
  keeps), but may lose the last commits on power loss or a host crash (e.g. a
  preempted VM). ``FULL`` costs one fsync per finished clip -- milliseconds against an
  attack that takes seconds to minutes per clip -- and makes "committed" mean durable.
  ``synchronous="NORMAL"`` can be passed to :meth:`RunStore.open` where that matters.
* **Floats** are written with :mod:`json`, which uses ``float.__repr__``: every finite
  float reads back bit for bit. ``+inf``/``-inf`` (an attack that found no adversarial
  example reports an infinite distance) are written as json's ``Infinity`` /
  ``-Infinity`` tokens (``allow_nan=True``) and read back as floats. **NaN is
  rejected** with :class:`ValueError`: a NaN distance is a bug, and committing it would
  mark the clip done forever; use ``None`` for "no value". Objects with ``tolist()``
  (numpy scalars and arrays) are converted with it (float32 -> float is exact); tuples
  become lists; dict keys must be strings (json would silently turn ``1`` into ``"1"``).
* **Duplicates**: the first write wins. ``put`` of a clip that is already stored under
  the same (run key, norm) returns ``False`` if the stored result is identical and raises
  :class:`ConflictingResultError` if it differs (workers should never duplicate a clip;
  if they do with different results, the attack is not deterministic and the run is not
  reproducible, which must not pass silently).
* **Concurrency**: each process opens its own :class:`RunStore` (a store refuses to be
  used from a process other than the one that opened it). Writes take the write lock
  up front (``BEGIN IMMEDIATE``) and wait up to ``busy_timeout`` (30 s by default) for it,
  so several workers can append to the same file; readers never block in WAL mode.
  WAL needs shared memory: the file must be on a local file system, not NFS/SMB.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import random
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from factsheet.errors import InputError

__all__ = [
    "SCHEMA_VERSION",
    "ConflictingResultError",
    "RunStore",
    "RunStoreError",
    "canonical_json",
    "run_key_for",
]

#: Version of the tables below; a file written with another version is refused.
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_key       TEXT PRIMARY KEY,
    settings_json TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    run_key     TEXT NOT NULL,
    norm        TEXT NOT NULL,
    clip_id     TEXT NOT NULL,
    result_json TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    PRIMARY KEY (run_key, norm, clip_id)
) WITHOUT ROWID;
"""


class RunStoreError(InputError):
    """The run-store file cannot be used (not a database, other schema version, no WAL)."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(source=str(path), reason=reason)


class ConflictingResultError(RuntimeError):
    """A clip already has a *different* stored result under the same run key and norm."""


# --------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------


def _plain(obj: Any, where: str = "result") -> Any:
    """``obj`` as plain JSON types; raises on NaN, non-string keys and unknown types."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        if math.isnan(obj):
            raise ValueError(f"{where} is NaN; use None for 'no value' (NaN is never stored)")
        return float(obj)
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} has a non-string key {k!r}; JSON keys must be str")
            out[k] = _plain(v, f"{where}[{k!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    tolist = getattr(obj, "tolist", None)  # numpy scalars and arrays, without importing numpy
    if callable(tolist):
        return _plain(tolist(), where)
    raise TypeError(f"{where} has a value of type {type(obj).__name__} that is not JSON: {obj!r}")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)


def canonical_json(settings: Mapping[str, Any]) -> str:
    """The canonical JSON text of ``settings``: sorted keys, no spaces, ``repr`` floats.

    Tuples and lists encode alike, numpy values through ``tolist()``; ``1`` and ``1.0``
    differ. ``inf`` encodes as ``Infinity``; NaN and non-string keys are refused.
    """
    if not isinstance(settings, Mapping):
        raise TypeError(f"settings must be a dict, not {type(settings).__name__}")
    return _dumps(_plain(settings, "settings"))


def run_key_for(settings: Mapping[str, Any]) -> str:
    """sha256 (hex) of :func:`canonical_json` of ``settings``.

    Deterministic across processes and Python runs, independent of dict key order, and
    different whenever any value changes. The caller must include in ``settings`` every
    input a result depends on: attack settings, **model sha256, dataset sha256** and the
    clip selection -- otherwise a changed model would reuse stale results.
    """
    return hashlib.sha256(canonical_json(settings).encode("utf-8")).hexdigest()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


# --------------------------------------------------------------------------------------
# the store
# --------------------------------------------------------------------------------------


class RunStore:
    """Per-clip results of one run key in an SQLite file; see the module docstring.

    Open with :meth:`RunStore.open` (one store per process), use as a context manager or
    call :meth:`close`.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, run_key: str, settings: dict) -> None:
        self._conn: sqlite3.Connection | None = conn
        self.path = path
        self.run_key = run_key
        self.settings = settings
        self._pid = os.getpid()

    # ---- opening ---------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        run_key: str | None,
        settings: Mapping[str, Any],
        busy_timeout: float = 30.0,
        synchronous: str = "FULL",
    ) -> RunStore:
        """Create or open the store at ``path`` for the run ``run_key``.

        Parameters
        ----------
        path : path-like
            The SQLite file, e.g. ``OUT/attack_runs.sqlite``; its folder must exist.
        run_key : str or None
            ``run_key_for(settings)``; ``None`` computes it. A key that does not match
            ``settings`` raises :class:`ValueError` (the stored settings must be what
            the key was computed from).
        settings : dict
            The JSON-able settings the key was computed from; stored once per run key
            for auditing.
        busy_timeout : float
            Seconds a write waits for another process's write lock.
        synchronous : {"FULL", "NORMAL", "EXTRA"}
            SQLite ``synchronous`` level (see the module docstring).
        """
        run_key = _checked_run_key(run_key, settings)
        sync = synchronous.upper()
        if sync not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous must be 'FULL', 'NORMAL' or 'EXTRA', not {synchronous!r}")
        path = Path(path)
        settings_json = canonical_json(settings)
        conn = _connect_wal(path, busy_timeout=busy_timeout, synchronous=sync)
        try:
            _create_schema_and_run(conn, path, run_key=run_key, settings_json=settings_json)
        except BaseException:
            conn.close()
            raise
        return cls(conn, path, run_key, json.loads(settings_json))

    # ---- writing ---------------------------------------------------------------------

    def put(self, *, clip_id: str, norm: str, result: Mapping[str, Any]) -> bool:
        """Commit one finished clip's ``result`` in its own transaction.

        Returns ``True`` when it was stored, ``False`` when the identical result was
        already there (the first write wins). Raises :class:`ConflictingResultError`
        when a different result is already stored for this clip, :class:`ValueError`
        for NaN, :class:`TypeError` for values JSON cannot hold.
        """
        conn = self._connection()
        _check_id("clip_id", clip_id)
        _check_id("norm", norm)
        if not isinstance(result, Mapping):
            raise TypeError(f"result must be a dict, not {type(result).__name__}")
        text = _dumps(_plain(result))
        with _transaction(conn, immediate=True):
            cur = conn.execute(
                "INSERT INTO results (run_key, norm, clip_id, result_json, finished_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (self.run_key, norm, clip_id, text, _now()),
            )
            if cur.rowcount == 1:
                return True
            # fetchall, not fetchone: a half-read SELECT would hold its read snapshot open
            ((stored,),) = conn.execute(
                "SELECT result_json FROM results WHERE run_key = ? AND norm = ? AND clip_id = ?",
                (self.run_key, norm, clip_id),
            ).fetchall()
        if stored == text:
            return False
        raise ConflictingResultError(
            f"clip {clip_id!r} (norm {norm!r}) already has a different result in {self.path}: "
            f"stored {stored}, new {text}; the attack is not deterministic or a clip was "
            "given to two workers"
        )

    # ---- reading ---------------------------------------------------------------------

    def done(self, *, norm: str) -> dict[str, dict]:
        """Finished clips of this run key and ``norm``: ``{clip_id: result}``, by clip_id."""
        conn = self._connection()
        _check_id("norm", norm)
        rows = conn.execute(
            "SELECT clip_id, result_json FROM results WHERE run_key = ? AND norm = ? ORDER BY clip_id",
            (self.run_key, norm),
        ).fetchall()
        return {clip_id: json.loads(text) for clip_id, text in rows}

    def is_done(self, clip_id: str, norm: str) -> bool:
        """Whether ``clip_id`` has a committed result for this run key and ``norm``."""
        conn = self._connection()
        _check_id("clip_id", clip_id)
        _check_id("norm", norm)
        rows = conn.execute(
            "SELECT 1 FROM results WHERE run_key = ? AND norm = ? AND clip_id = ?",
            (self.run_key, norm, clip_id),
        ).fetchall()
        return bool(rows)

    def other_run_keys(self) -> dict[str, int]:
        """Other run keys in the file and how many results each holds (never reused here).

        ``sum(store.other_run_keys().values())`` is the number of ignored results.
        """
        conn = self._connection()
        rows = conn.execute(
            "SELECT runs.run_key, COUNT(results.clip_id) FROM runs "
            "LEFT JOIN results ON results.run_key = runs.run_key "
            "WHERE runs.run_key != ? GROUP BY runs.run_key ORDER BY runs.run_key",
            (self.run_key,),
        ).fetchall()
        return {k: n for k, n in rows}

    def settings_of(self, run_key: str) -> dict | None:
        """The settings stored for ``run_key`` (e.g. to show what changed); ``None`` if absent."""
        rows = self._connection().execute(
            "SELECT settings_json FROM runs WHERE run_key = ?", (run_key,)
        ).fetchall()
        return json.loads(rows[0][0]) if rows else None

    # ---- closing ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent). Committed results are already on disk."""
        conn, self._conn = self._conn, None
        if conn is not None and self._pid == os.getpid():
            conn.close()

    @property
    def closed(self) -> bool:
        return self._conn is None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self):  # noqa: D105 - a connection must not cross processes
        raise TypeError("a RunStore cannot be pickled; open one per worker process with RunStore.open")

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"RunStore({str(self.path)!r}, run_key={self.run_key[:12]}..., {state})"

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError("the run store is closed")
        if self._pid != os.getpid():
            raise RuntimeError(
                "this RunStore was opened in another process (fork); open one per worker process"
            )
        return self._conn


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _checked_run_key(run_key: str | None, settings: Mapping[str, Any]) -> str:
    """``run_key``, or ``run_key_for(settings)`` when None; ValueError when they disagree."""
    expected = run_key_for(settings)
    if run_key is None:
        return expected
    if run_key != expected:
        raise ValueError(
            f"run_key {run_key!r} is not run_key_for(settings) = {expected!r}; "
            "pass the settings the key was computed from"
        )
    return run_key


def _connect_wal(path: Path, *, busy_timeout: float, synchronous: str) -> sqlite3.Connection:
    """A connection in WAL mode with the busy timeout (s) and ``synchronous`` level set.

    ``isolation_level=None``: no implicit transactions; every write is an explicit
    ``BEGIN IMMEDIATE ... COMMIT`` (no lock upgrades, so no instant SQLITE_BUSY).

    Raises
    ------
    RunStoreError
        The file is not an SQLite database, or cannot be switched to WAL (e.g. a network file system).
    """
    conn = sqlite3.connect(str(path), timeout=busy_timeout, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        mode = _enable_wal(conn, path, busy_timeout)
        if str(mode).lower() != "wal":
            raise RunStoreError(
                path,
                f"SQLite could not switch the run store to WAL mode (got {mode!r}); "
                "put the output directory on a local file system",
            )
        conn.execute(f"PRAGMA synchronous = {synchronous}")
    except BaseException:
        conn.close()
        raise
    return conn


def _create_schema_and_run(conn: sqlite3.Connection, path: Path, *, run_key: str, settings_json: str) -> None:
    """In one transaction: create the tables if new, check the schema version, register the run key.

    Raises
    ------
    RunStoreError
        The file was written by another schema version.
    """
    with _transaction(conn):
        for statement in _SCHEMA.split(";"):  # not executescript: it would COMMIT first
            if statement.strip():
                conn.execute(statement)
        rows = conn.execute("SELECT version FROM schema_version").fetchall()
        if not rows:
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        elif len(rows) != 1 or rows[0][0] != SCHEMA_VERSION:
            found = sorted({r[0] for r in rows})
            raise RunStoreError(
                path,
                f"run store has schema version {found}, this program writes "
                f"{SCHEMA_VERSION}; move the file away to start afresh",
            )
        conn.execute(
            "INSERT INTO runs (run_key, settings_json, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (run_key) DO NOTHING",
            (run_key, settings_json, _now()),
        )


def _enable_wal(conn: sqlite3.Connection, path: Path, busy_timeout: float) -> str:
    """``PRAGMA journal_mode = WAL``, retried while another process holds the file.

    Switching a fresh file to WAL needs an exclusive lock, and SQLite reports "database
    is locked" at once (without the busy handler) when several processes create the
    same store together; so wait and retry up to ``busy_timeout``.
    """
    deadline = time.monotonic() + busy_timeout
    delay = 0.001
    while True:
        try:
            return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise RunStoreError(path, f"not a usable SQLite run store ({exc})") from exc
            if time.monotonic() >= deadline:
                raise
        except sqlite3.DatabaseError as exc:  # "file is not a database" and the like
            raise RunStoreError(path, f"not a usable SQLite run store ({exc})") from exc
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.1)


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _check_id(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} must be a non-empty str, not {value!r}")


class _transaction:
    """``BEGIN [IMMEDIATE]`` ... ``COMMIT``, or ``ROLLBACK`` on any exception."""

    def __init__(self, conn: sqlite3.Connection, immediate: bool = True) -> None:
        self.conn = conn
        self.begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute(self.begin)
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
