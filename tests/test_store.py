"""Tests of attacks.store: exact round trips, run keys, concurrent writers, SIGKILL + resume."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from attacks.store import (
    SCHEMA_VERSION,
    ConflictingResultError,
    RunStore,
    RunStoreError,
    canonical_json,
    run_key_for,
)

SETTINGS = {
    "attack": "hopskipjump",
    "norms": ["2", "inf"],
    "max_iter": 50,
    "max_eval": 1000.0,
    "model_sha256": "a" * 64,
    "dataset_sha256": "b" * 64,
    "clips": ["c000", "c001", "c002"],
}


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def same_bits(a, b) -> bool:
    """Structural equality where floats must match bit for bit (and types must match)."""
    if isinstance(a, float) or isinstance(b, float):
        return type(a) is type(b) and bits(a) == bits(b)
    if isinstance(a, dict):
        return type(b) is dict and a.keys() == b.keys() and all(same_bits(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return type(b) is list and len(a) == len(b) and all(same_bits(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def open_store(tmp_path: Path, settings: dict = SETTINGS, name: str = "attack_runs.sqlite") -> RunStore:
    return RunStore.open(tmp_path / name, run_key=run_key_for(settings), settings=settings)


# --------------------------------------------------------------------------------------
# round trips
# --------------------------------------------------------------------------------------


def test_round_trip_exact_floats_inf_none_nested(tmp_path):
    f32 = np.float32(0.1)
    result = {
        "l2": 0.1 + 0.2,
        "tiny": 1e-300,
        "subnormal": 5e-324,
        "neg_zero": -0.0,
        "big": 1.7976931348623157e308,
        "f32": float(f32),
        "f32_array": [float(v) for v in np.array([0.1, 1 / 3, 1e-38], dtype=np.float32)],
        "not_found": math.inf,
        "neg_inf": -math.inf,
        "none": None,
        "flag": True,
        "queries": 12345,
        "big_int": 2**63 + 1,
        "label": "dog bark \u00e9",
        "nested": [[1.0, [math.inf, None]], {"a": [0.30000000000000004]}],
    }
    with open_store(tmp_path) as store:
        assert store.put(clip_id="c000", norm="2", result=result) is True
    with open_store(tmp_path) as store:  # a fresh connection reads what is on disk
        back = store.done(norm="2")
    assert list(back) == ["c000"]
    assert same_bits(back["c000"], result)
    assert back["c000"]["not_found"] == math.inf and back["c000"]["neg_inf"] == -math.inf
    assert bits(back["c000"]["l2"]) == bits(0.30000000000000004)
    assert back["c000"]["f32"] == float(np.float32(0.1)) != 0.1


def test_numpy_values_and_tuples_are_converted_exactly(tmp_path):
    arr = np.array([0.1, 2.5e-8, np.inf], dtype=np.float32)
    result = {"f32": np.float32(0.1), "f64": np.float64(0.1), "i": np.int64(7), "arr": arr, "t": (1, 2.5)}
    with open_store(tmp_path) as store:
        store.put(clip_id="c", norm="inf", result=result)
        back = store.done(norm="inf")["c"]
    assert same_bits(back["f32"], float(np.float32(0.1)))
    assert same_bits(back["f64"], 0.1)
    assert back["i"] == 7 and type(back["i"]) is int
    assert same_bits(back["arr"], [float(v) for v in arr])
    assert back["t"] == [1, 2.5]


@pytest.mark.parametrize(
    "bad, exc",
    [
        ({"l2": math.nan}, ValueError),
        ({"deep": [1.0, {"x": float("nan")}]}, ValueError),
        ({"arr": np.array([1.0, np.nan])}, ValueError),
        ({1: "int key"}, TypeError),
        ({"obj": object()}, TypeError),
    ],
)
def test_unstorable_results_are_rejected_and_nothing_is_written(tmp_path, bad, exc):
    with open_store(tmp_path) as store:
        with pytest.raises(exc):
            store.put(clip_id="c", norm="2", result=bad)
        assert store.done(norm="2") == {}
        assert not store.is_done("c", "2")


def test_is_done_and_norms_are_separate(tmp_path):
    with open_store(tmp_path) as store:
        store.put(clip_id="c1", norm="2", result={"d": 1.0})
        assert store.is_done("c1", "2")
        assert not store.is_done("c1", "inf")
        assert not store.is_done("c2", "2")
        assert store.done(norm="inf") == {}
        store.put(clip_id="c1", norm="inf", result={"d": 0.5})
        assert store.done(norm="inf") == {"c1": {"d": 0.5}}
        assert store.done(norm="2") == {"c1": {"d": 1.0}}


def test_duplicate_put_first_wins_identical_is_noop_different_raises(tmp_path):
    with open_store(tmp_path) as store:
        assert store.put(clip_id="c", norm="2", result={"d": 0.1, "ok": True}) is True
        # same result again (key order irrelevant): no-op
        assert store.put(clip_id="c", norm="2", result={"ok": True, "d": 0.1}) is False
        with pytest.raises(ConflictingResultError, match="different result"):
            store.put(clip_id="c", norm="2", result={"d": 0.2, "ok": True})
        assert store.done(norm="2") == {"c": {"d": 0.1, "ok": True}}
        # the store is still usable after the conflict (transaction was rolled back)
        assert store.put(clip_id="d", norm="2", result={"d": 0.3}) is True


# --------------------------------------------------------------------------------------
# run keys
# --------------------------------------------------------------------------------------


def test_run_key_is_order_insensitive_and_deterministic():
    reordered = dict(reversed(list(SETTINGS.items())))
    assert list(reordered) != list(SETTINGS)
    assert run_key_for(reordered) == run_key_for(SETTINGS)
    nested_a = {"attack": {"max_iter": 5, "norm": "2"}, "x": 1}
    nested_b = {"x": 1, "attack": {"norm": "2", "max_iter": 5}}
    assert run_key_for(nested_a) == run_key_for(nested_b)
    key = run_key_for(SETTINGS)
    assert len(key) == 64 and int(key, 16) >= 0
    assert canonical_json({"b": 0.1, "a": math.inf}) == '{"a":Infinity,"b":0.1}'
    # the same in a fresh interpreter (no hash randomisation involved)
    code = (
        "import json,sys; from attacks.store import run_key_for; "
        "print(run_key_for(json.loads(sys.argv[1])))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(SETTINGS)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == key


@pytest.mark.parametrize(
    "field, value",
    [
        ("model_sha256", "c" * 64),
        ("dataset_sha256", "d" * 64),
        ("max_iter", 51),
        ("max_eval", 1000.0000000000001),
        ("max_eval", 1000),  # int vs float is a change
        ("norms", ["2"]),
        ("clips", ["c000", "c001"]),
        ("clips", ["c001", "c000", "c002"]),  # list order matters
    ],
)
def test_run_key_changes_when_any_value_changes(field, value):
    changed = {**SETTINGS, field: value}
    assert run_key_for(changed) != run_key_for(SETTINGS)


def test_run_key_new_field_changes_key():
    assert run_key_for({**SETTINGS, "seed": 0}) != run_key_for(SETTINGS)


def test_run_key_must_match_settings(tmp_path):
    with pytest.raises(ValueError, match="run_key_for"):
        RunStore.open(tmp_path / "s.sqlite", run_key="0" * 64, settings=SETTINGS)
    with RunStore.open(tmp_path / "s.sqlite", run_key=None, settings=SETTINGS) as store:
        assert store.run_key == run_key_for(SETTINGS)
        assert store.settings == SETTINGS


def test_changed_config_or_model_never_reuses_results(tmp_path):
    with open_store(tmp_path) as old:
        for i in range(5):
            old.put(clip_id=f"c{i:03d}", norm="2", result={"d": float(i)})
        old.put(clip_id="c000", norm="inf", result={"d": 9.0})
        assert old.other_run_keys() == {}
    new_model = {**SETTINGS, "model_sha256": "e" * 64}
    with open_store(tmp_path, new_model) as new:
        assert new.done(norm="2") == {}
        assert new.done(norm="inf") == {}
        assert not new.is_done("c000", "2")
        others = new.other_run_keys()
        assert others == {run_key_for(SETTINGS): 6}
        assert sum(others.values()) == 6
        assert new.settings_of(run_key_for(SETTINGS)) == SETTINGS
        assert new.settings_of("nope") is None
        new.put(clip_id="c000", norm="2", result={"d": 100.0})  # no conflict: other key
    with open_store(tmp_path) as old:  # old results are kept, and not mixed with the new
        assert old.done(norm="2") == {f"c{i:03d}": {"d": float(i)} for i in range(5)}
        assert old.other_run_keys() == {run_key_for(new_model): 1}


# --------------------------------------------------------------------------------------
# file handling
# --------------------------------------------------------------------------------------


def test_wal_mode_schema_version_and_context_manager(tmp_path):
    path = tmp_path / "attack_runs.sqlite"
    with open_store(tmp_path) as store:
        store.put(clip_id="c", norm="2", result={"d": 1.0})
        assert store.path == path
    assert store.closed
    with pytest.raises(ValueError, match="closed"):
        store.done(norm="2")
    store.close()  # idempotent
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        row = conn.execute("SELECT run_key, norm, clip_id, result_json FROM results").fetchone()
        assert row == (run_key_for(SETTINGS), "2", "c", '{"d":1.0}')  # readable by any client
        conn.execute("UPDATE schema_version SET version = 999")
        conn.commit()
    finally:
        conn.close()
    with pytest.raises(RunStoreError, match="schema version"):
        open_store(tmp_path)


def test_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "attack_runs.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(RunStoreError, match="not a usable SQLite run store"):
        open_store(tmp_path)


def test_store_cannot_be_pickled(tmp_path):
    import pickle

    with open_store(tmp_path) as store:
        with pytest.raises(TypeError, match="one per worker"):
            pickle.dumps(store)


# --------------------------------------------------------------------------------------
# concurrent writers
# --------------------------------------------------------------------------------------


def _writer(path: str, worker: int, n_workers: int, n_clips: int, start) -> list[str]:
    """Spawned worker: open its own store and write its interleaved share of the clips."""
    start.wait()
    errors = []
    with RunStore.open(path, run_key=None, settings=SETTINGS) as store:
        for i in range(worker, n_clips, n_workers):
            try:
                store.put(clip_id=f"c{i:03d}", norm="2", result={"d": i / 7, "worker": worker})
                store.done(norm="2")  # interleave reads with other processes' writes
            except Exception as exc:  # noqa: BLE001 - report, not die
                errors.append(f"{type(exc).__name__}: {exc}")
    return errors


def test_concurrent_writers_in_several_processes(tmp_path):
    path = str(tmp_path / "attack_runs.sqlite")  # fresh file: workers also race to create it
    n_workers, n_clips = 3, 60
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Barrier(n_workers)
        with ctx.Pool(n_workers) as pool:
            pending = [
                pool.apply_async(_writer, (path, w, n_workers, n_clips, start)) for w in range(n_workers)
            ]
            errors = [e for p in pending for e in p.get(timeout=60)]
    assert errors == []
    with RunStore.open(path, run_key=None, settings=SETTINGS) as store:
        done = store.done(norm="2")
    assert len(done) == n_clips
    assert done == {f"c{i:03d}": {"d": i / 7, "worker": i % n_workers} for i in range(n_clips)}


# --------------------------------------------------------------------------------------
# SIGKILL mid-run, then resume
# --------------------------------------------------------------------------------------

# A stand-in for the attack loop: for each clip not yet done, "attack" it (sleep; a
# deterministic result derived from the clip id) and commit it. Prints each clip it
# computes, so the test can see that a resumed run skips the finished ones.
RUN_SCRIPT = textwrap.dedent(
    """
    import math, random, sys, time
    from attacks.store import RunStore, run_key_for

    path, n_clips, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    settings = {"attack": "fake", "n_clips": n_clips, "model_sha256": "f" * 64}

    def attack(clip_id):
        rng = random.Random(clip_id)  # str seeds are hashed with sha512: deterministic
        d = rng.random() * 10 ** rng.randint(-300, 300)
        return {
            "l2": d,
            "linf": float("inf") if rng.random() < 0.3 else rng.random(),
            "queries": rng.randint(1, 10000),
            "trace": [rng.random() for _ in range(rng.randint(0, 20))],
            "none": None,
        }

    with RunStore.open(path, run_key=run_key_for(settings), settings=settings) as store:
        for i in range(n_clips):
            clip_id = f"clip{i:03d}"
            for norm in ("2", "inf"):
                if store.is_done(clip_id, norm):
                    continue
                result = attack(clip_id + norm)
                time.sleep(delay)  # the attack's work, where a kill usually lands
                store.put(clip_id=clip_id, norm=norm, result=result)
                print(clip_id, norm, flush=True)
    """
)
CRASH_SETTINGS = {"attack": "fake", "n_clips": 40, "model_sha256": "f" * 64}


def _run(path: Path, n_clips: int = 40, delay: float = 0.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", RUN_SCRIPT, str(path), str(n_clips), str(delay)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


def _count(path: Path) -> int:
    """Committed results, read with a plain connection (as another process would)."""
    if not path.exists():
        return 0
    conn = sqlite3.connect(path, timeout=10)
    try:
        return conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        conn.close()


def _all_results(path: Path) -> dict:
    with RunStore.open(path, run_key=None, settings=CRASH_SETTINGS) as store:
        return {norm: store.done(norm=norm) for norm in ("2", "inf")}


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_run_then_resume_equals_uninterrupted_run(tmp_path):
    n_clips = 40  # x 2 norms = 80 results
    reference_path = tmp_path / "reference.sqlite"
    _run(reference_path, n_clips)
    reference = _all_results(reference_path)
    assert len(reference["2"]) == len(reference["inf"]) == n_clips

    path = tmp_path / "attack_runs.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_SCRIPT, str(path), str(n_clips), "0.02"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while _count(path) < 8:
            assert proc.poll() is None, f"run ended before the kill: {proc.communicate()}"
            assert time.monotonic() < deadline, "no results committed within 30 s"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    first_run = [tuple(line.split()) for line in out.splitlines()]

    # the file survived the kill intact and holds a strict prefix of the work
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    committed = _count(path)
    assert 8 <= committed < 2 * n_clips
    # every clip the first run reported was committed (a print follows the commit)
    assert len(first_run) <= committed

    # re-run the same command: it resumes
    second_run = [tuple(line.split()) for line in _run(path, n_clips).stdout.splitlines()]
    assert len(second_run) == 2 * n_clips - committed  # finished clips were not recomputed
    assert not set(second_run) & set(first_run)

    resumed = _all_results(path)
    assert set(resumed["2"]) == set(reference["2"]) and set(resumed["inf"]) == set(reference["inf"])
    assert same_bits(resumed, reference)
    assert _count(path) == 2 * n_clips


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_store_refuses_use_from_a_forked_child(tmp_path):
    store = open_store(tmp_path)
    try:
        pid = os.fork()
        if pid == 0:  # child: must not touch the parent's connection
            code = 1
            try:
                store.is_done("c", "2")
            except RuntimeError as exc:
                code = 0 if "one per worker process" in str(exc) else 2
            finally:
                store.close()  # must not close the parent's connection
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert store.put(clip_id="c", norm="2", result={"d": 1.0}) is True  # parent unaffected
    finally:
        store.close()


def test_synchronous_level(tmp_path):
    for level, code in (("FULL", 2), ("normal", 1)):
        with RunStore.open(tmp_path / f"{level}.sqlite", run_key=None, settings=SETTINGS, synchronous=level) as s:
            assert s._conn.execute("PRAGMA synchronous").fetchone()[0] == code
    with pytest.raises(ValueError, match="synchronous"):
        RunStore.open(tmp_path / "x.sqlite", run_key=None, settings=SETTINGS, synchronous="OFF")
