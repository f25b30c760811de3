"""Time the corruption suite vectorised over clips against a per-clip, per-cell loop.

The default suite (9 corruptions x 5 severities = 45 cells) on ``--clips`` synthetic eval clips
(``make_synthetic(split="eval", n_clips=..., seed=1)``) brought to ``--samples`` samples at
16 kHz with ``fit_length``. For every cell, in the same run:

(a) vectorised: one ``corrupt(waveforms, ...)`` call on the whole batch;
(b) loop: one ``corrupt(waveforms[i:i+1], ..., clip_ids=[i])`` call per clip, as a naive harness
    would call it, then the clips stacked.

Which side goes first alternates cell by cell. Both sides must give bit-identical waveforms and
identical per-clip measures (the loop's clip i gets the same random draw as clip i of the batch);
the script stops with an AssertionError otherwise. Prints the time per corruption (5 cells) and
in total, and the ratio loop / vectorised (target >= 5). Not a test: figures go in the report.

    .venv/bin/python bench/bench_domain_shift.py [--clips 400] [--samples 15600] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import scipy

from factsheet.corruptions import N_SEVERITIES, corrupt, default_suite
from factsheet.datasets.base import fit_length
from factsheet.datasets.synthetic import make_synthetic

SAMPLE_RATE = 16000


def vectorised(x: np.ndarray, name: str, severity: int, seed: int) -> tuple[np.ndarray, dict]:
    out, info = corrupt(x, corruption=name, severity=severity, sample_rate=SAMPLE_RATE, seed=seed)
    return out, info["per_clip"]


def loop(x: np.ndarray, name: str, severity: int, seed: int) -> tuple[np.ndarray, dict]:
    outs, measures = [], []
    for i in range(x.shape[0]):
        out, info = corrupt(x[i:i + 1], corruption=name, severity=severity, sample_rate=SAMPLE_RATE, seed=seed,
                            clip_ids=[i])
        outs.append(out)
        measures.append(info["per_clip"])
    return np.concatenate(outs), {k: np.concatenate([m[k] for m in measures]) for k in measures[0]}


def timed(fn, *args) -> tuple[float, tuple[np.ndarray, dict]]:
    t = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - t, result


def run_cell(x: np.ndarray, name: str, severity: int, seed: int, *, loop_first: bool) -> tuple[float, float]:
    """Seconds (vectorised, loop) for one cell; asserts both give the same outputs and measures."""
    if loop_first:
        t_loop, (y_loop, m_loop) = timed(loop, x, name, severity, seed)
        t_vec, (y_vec, m_vec) = timed(vectorised, x, name, severity, seed)
    else:
        t_vec, (y_vec, m_vec) = timed(vectorised, x, name, severity, seed)
        t_loop, (y_loop, m_loop) = timed(loop, x, name, severity, seed)
    assert y_vec.dtype == np.float32 and np.array_equal(y_vec, y_loop), (name, severity, "outputs differ")
    for k in m_vec:
        assert np.array_equal(m_vec[k], m_loop[k], equal_nan=True), (name, severity, k, "measures differ")
    return t_vec, t_loop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=400)
    ap.add_argument("--samples", type=int, default=15600)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    data = make_synthetic(split="eval", n_clips=args.clips, seed=1, sample_rate=SAMPLE_RATE)
    x, _ = fit_length(data.clips, n_samples=args.samples)
    print(f"data: {x.shape[0]} synthetic eval clips x {x.shape[1]} samples at {SAMPLE_RATE} Hz, float32")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"numpy {np.__version__}, scipy {scipy.__version__}")
    corrupt(x[:2], corruption="speed", severity=1, sample_rate=SAMPLE_RATE, seed=args.seed)  # warm imports

    rows, total_vec, total_loop, cell = [], 0.0, 0.0, 0
    for spec in default_suite():
        t_vec = t_loop = 0.0
        for severity in range(1, N_SEVERITIES + 1):
            tv, tl = run_cell(x, spec.name, severity, args.seed, loop_first=cell % 2 == 1)
            t_vec, t_loop, cell = t_vec + tv, t_loop + tl, cell + 1
        rows.append((spec.name, t_vec, t_loop))
        total_vec, total_loop = total_vec + t_vec, total_loop + t_loop

    print(f"{'corruption (5 cells)':<22}{'vectorised s':>14}{'loop s':>10}{'ratio':>8}")
    for name, tv, tl in rows:
        print(f"{name:<22}{tv:>14.3f}{tl:>10.3f}{tl / tv:>7.1f}x")
    print(f"{f'all {cell} cells':<22}{total_vec:>14.3f}{total_loop:>10.3f}{total_loop / total_vec:>7.1f}x")
    print(f"outputs bit-identical and per-clip measures identical in all {cell} cells; "
          f"vectorised {1e3 * total_vec / (cell * x.shape[0]):.3f} ms per clip-cell")


if __name__ == "__main__":
    main()
