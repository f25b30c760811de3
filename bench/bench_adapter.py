"""Which ART wrapper to use: time BlackBoxClassifier vs TensorFlowV2Classifier predict on the default model.

Measures, in one run on the same machine: (a) a batch of 331 clips (the size of HopSkipJump's
gradient-estimate batch at iteration 11) and (b) 200 single-clip queries (its binary-search and
step-size calls). Reports medians and the ratio TF-V2 / black box. Not a test: figures go in the README.

    .venv/bin/python bench/bench_adapter.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402

from factsheet.models.adapter import load_default_model, make_estimator  # noqa: E402


def timed(fn, repeats: int) -> float:
    fn()  # warm-up (tracing)
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    model = load_default_model()
    n = model.clip_samples
    rng = np.random.default_rng(0)
    batch = rng.uniform(-0.5, 0.5, (331, n)).astype(np.float32)
    singles = rng.uniform(-0.5, 0.5, (200, 1, n)).astype(np.float32)
    rows = {}
    for wrapper in ("blackbox", "tensorflow"):
        est = make_estimator(model, wrapper=wrapper)
        t_batch = timed(lambda: est.predict(batch, batch_size=331), args.repeats)
        t_single = timed(lambda: [est.predict(x, batch_size=1) for x in singles], args.repeats)
        # float64 input, as HopSkipJump produces under numpy 2 (see shared notes)
        t_batch64 = timed(lambda: est.predict(batch.astype(np.float64), batch_size=331), args.repeats)
        rows[wrapper] = (t_batch, t_single / len(singles), t_batch64)
    print(f"clip length {n} samples; median of {args.repeats} repeats")
    print(f"{'wrapper':<12}{'batch 331 (s)':>16}{'single (ms)':>14}{'batch f64 (s)':>16}")
    for w, (b, s, b64) in rows.items():
        print(f"{w:<12}{b:>16.3f}{s * 1e3:>14.2f}{b64:>16.3f}")
    bb, tf2 = rows["blackbox"], rows["tensorflow"]
    print(f"ratio tensorflow / blackbox: batch {tf2[0] / bb[0]:.2f}x, single {tf2[1] / bb[1]:.2f}x, "
          f"batch f64 {tf2[2] / bb[2]:.2f}x")


if __name__ == "__main__":
    main()
