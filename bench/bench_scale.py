"""How the Performance and Bias sections scale with the number of clips: peak memory and time.

An AudioSet-sized problem (527 classes, long-tailed label prevalence, 1-3 labels per clip) with
synthetic scores (a noisy function of the labels) and three group columns. Each size runs in a
fresh process so its peak resident set size (ru_maxrss) is its own; the clean interpreter with
the same imports is measured too, as the baseline to subtract. Time should grow linearly with
the number of clips: the script prints seconds per 1000 clips at each size and the ratio of the
largest to the smallest.

    .venv/bin/python bench/bench_scale.py            # 2 500, 5 000, 10 000, 20 000 clips
    .venv/bin/python bench/bench_scale.py --sizes 1000 2000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CHILD = r"""
import json, resource, sys, time
import numpy as np, pandas as pd
from factsheet.bias import evaluate_bias
from factsheet.config import BiasConfig, MetricsConfig
from factsheet.datasets.base import ClassLabel
from factsheet.performance import evaluate_performance

n, n_classes, resamples, run = int(sys.argv[1]), 527, int(sys.argv[2]), sys.argv[3] == "run"
rng = np.random.default_rng(0)
if run:
    prevalence = 0.002 + 0.2 / (1 + np.arange(n_classes)) ** 0.9     # long tail, like AudioSet
    y = np.zeros((n, n_classes), np.uint8)
    for i in range(n):
        k = rng.integers(1, 4)
        y[i, rng.choice(n_classes, size=k, replace=False, p=prevalence / prevalence.sum())] = 1
    group = rng.choice(["a", "b", "c"], n)
    s = (rng.normal(size=y.shape) + (1.5 - 0.5 * (group == "c"))[:, None] * y).astype(np.float32)
    meta = pd.DataFrame({"clip_id": [f"c{i}" for i in range(n)], "recorder": group,
                         "site": rng.choice(["north", "south", "east", "west"], n),
                         "year": rng.choice(["2019", "2020"], n)})
    labels = [ClassLabel(index=j, mid=f"/m/{j}", display_name=f"class {j}") for j in range(n_classes)]
    boot = MetricsConfig(bootstrap_resamples=resamples)
    t0 = time.perf_counter()
    evaluate_performance(y_true=y, y_score=s, class_labels=labels, n_bootstrap=resamples, seed=0)
    t1 = time.perf_counter()
    evaluate_bias(y_true=y, y_score=s, class_labels=labels, metadata=meta,
                  settings=BiasConfig(columns=("recorder", "site", "year"), condition_columns=()), bootstrap=boot)
    t2 = time.perf_counter()
    out = {"performance_s": t1 - t0, "bias_s": t2 - t1}
else:
    out = {}
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def measure(n: int, resamples: int, run: bool) -> dict:
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", CHILD, str(n), str(resamples), "run" if run else "baseline"],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{n} clips: the child process failed:\n{res.stderr[-3000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["wall_s"] = time.perf_counter() - t
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2500, 5000, 10000, 20000])
    ap.add_argument("--resamples", type=int, default=1000)
    args = ap.parse_args()
    base = measure(10, args.resamples, run=False)
    print(f"baseline interpreter with the imports: peak RSS {base['peak_rss_mb']:.0f} MB")
    print(f"{'clips':>7} {'performance s':>14} {'bias s':>8} {'s / 1000 clips':>15} {'peak RSS MB':>12} "
          f"{'above baseline':>15}")
    per_k = []
    for n in args.sizes:
        r = measure(n, args.resamples, run=True)
        sec = r["performance_s"] + r["bias_s"]
        per_k.append(sec / n * 1000)
        print(f"{n:>7} {r['performance_s']:>14.1f} {r['bias_s']:>8.1f} {per_k[-1]:>15.2f} {r['peak_rss_mb']:>12.0f} "
              f"{r['peak_rss_mb'] - base['peak_rss_mb']:>15.0f}")
    print(f"time per clip, largest / smallest size: {per_k[-1] / per_k[0]:.2f} (1.00 = linear); "
          f"{args.resamples} bootstrap resamples, 527 classes, 3 group columns")


if __name__ == "__main__":
    main()
