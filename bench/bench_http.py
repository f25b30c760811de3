"""Throughput of HttpModelClient against a local MAX-API server serving the demo model.

The server (``tests/_max_server.py``, the demo Keras model, 2 s clips) runs in its own process
so that client and server do not share a GIL. For each concurrency (1, 2, 4, 8 by default) the
same batch of clips is sent ``--repeats`` times; the median wall time gives clips/s, shown as a
ratio against concurrency 1 measured in the same run. Every run's scores are checked to be
identical to the concurrency-1 run. Not a test: figures go in the report.

    .venv/bin/python bench/bench_http.py [--clips 64] [--repeats 3] [--concurrency 1 2 4 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from factsheet.datasets.base import fit_length, read_class_labels  # noqa: E402
from factsheet.datasets.synthetic import make_synthetic  # noqa: E402
from factsheet.models.adapter import DEFAULT_LABELS  # noqa: E402
from factsheet.models.http_model import HttpModelClient  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
N_SAMPLES = 32000  # the demo model's input: 2 s at 16 kHz


def start_server() -> tuple[subprocess.Popen, str]:
    """Start ``tests/_max_server.py`` in a child process; its first stdout line is the URL."""
    proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "_max_server.py")], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise SystemExit(f"server did not start (got {url!r})")
    return proc, url


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    args = ap.parse_args()
    labels = read_class_labels(DEFAULT_LABELS)
    clips, _ = fit_length(make_synthetic(split="eval", n_clips=args.clips, seed=11).clips, n_samples=N_SAMPLES)
    levels = sorted(set(args.concurrency) | {1})
    proc, url = start_server()
    try:
        rows, reference = {}, None
        for c in levels:
            client = HttpModelClient(url=url, class_labels=labels, sample_rate=16000, concurrency=c)
            client.forward(clips[: min(c, len(clips))])  # warm-up: connections and server threads
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                scores = client.forward(clips)
                times.append(time.perf_counter() - t)
                if reference is None:
                    reference = scores
                assert np.array_equal(scores, reference), "scores depend on concurrency"
            s = client.stats()
            rows[c] = (args.clips / statistics.median(times), s["max_in_flight"], s["retries"])
            client.close()
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
    base = rows[1][0]
    print(f"{args.clips} clips of {N_SAMPLES} samples (2 s, {2 * N_SAMPLES + 44} B WAV) per run; "
          f"median of {args.repeats} runs; {os.cpu_count()} CPU cores shared by client and server")
    print(f"{'concurrency':>11} {'clips/s':>9} {'vs 1':>6} {'max in flight':>14} {'retries':>8}")
    for c, (rate, mif, retries) in rows.items():
        print(f"{c:>11} {rate:>9.1f} {rate / base:>5.2f}x {mif:>14} {retries:>8}")


if __name__ == "__main__":
    main()
