"""Time the tagging metrics and their bootstrap on AudioSet-sized data (20 000 clips x 527 classes).

Measures, in one run on the same machine:

(a) ``tagging_metrics`` (mAP, mean AUC, d'; median of 3 runs);
(b) the per-class scikit-learn loop it replaces (``average_precision_score`` for every class
    with a positive, ``roc_auc_score`` for every class with a positive and a negative, then
    the mean over evaluable classes and d' = sqrt(2) * ppf(mean AUC)); checks that both give
    the same per-class values and means to 1e-9 and prints the speed ratio;
(c) ``bootstrap_tagging_ci(..., n_resamples=1000)`` (one run, BCa, the FactSheet's interval):
    seconds and seconds per replicate;
(d) the same with ``method="percentile"`` (no jackknife): seconds and the ratio (c) / (d), the
    cost of BCa's acceleration (leave-one-out up to ``JACKKNIFE_GROUPS`` clips, grouped above).

The data are AudioSet-like: class prevalences follow a long (Zipf) tail from 10 % down to
0.1 %, scores are float32 sigmoids correlated with the labels and rounded to 6 decimals (so
low scores tie). Not a test: figures go in the README.

    .venv/bin/python bench/bench_metrics.py [--clips 20000] [--classes 527] [--resamples 1000]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
from scipy.special import ndtri
from sklearn.metrics import average_precision_score, roc_auc_score

from factsheet import metrics
from factsheet.metrics import bootstrap_tagging_ci, tagging_metrics

TOL = 1e-9


def make_data(n_clips: int, n_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Multi-hot labels (bool) and float32 scores with an AudioSet-like long tail."""
    rng = np.random.default_rng(seed)
    # Prevalence of class j: 10 % * (j + 1) ** -alpha, reaching 0.1 % at the last class.
    alpha = np.log(100.0) / np.log(max(n_classes, 2))
    prevalence = 0.1 * np.arange(1, n_classes + 1) ** -alpha
    y = rng.random((n_clips, n_classes)) < prevalence
    separation = rng.uniform(1.0, 3.5, size=n_classes)  # per-class difficulty
    logit = rng.normal(size=(n_clips, n_classes)) + separation * y - 4.0
    s = (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)
    s = np.round(s, 6)  # rounded like a 6-decimal export: about 1 score in 6 ties
    return y, s


def sklearn_loop(y: np.ndarray, s: np.ndarray) -> dict:
    """Per-class scikit-learn AP and AUC, then the means over evaluable classes and d'."""
    n_clips, n_classes = y.shape
    ap = np.full(n_classes, np.nan)
    auc = np.full(n_classes, np.nan)
    for j in range(n_classes):
        n_pos = int(y[:, j].sum())
        if n_pos > 0:
            ap[j] = average_precision_score(y[:, j], s[:, j])
        if 0 < n_pos < n_clips:
            auc[j] = roc_auc_score(y[:, j], s[:, j])
    evaluable = ~np.isnan(auc)
    mean_auc = float(auc[evaluable].mean())
    return {
        "per_class_ap": ap,
        "per_class_auc": auc,
        "mAP": float(ap[evaluable].mean()),
        "mean_auc": mean_auc,
        "d_prime": float(np.sqrt(2.0) * ndtri(mean_auc)),
    }


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=20_000)
    ap.add_argument("--classes", type=int, default=527)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    y, s = make_data(args.clips, args.classes, args.seed)
    support = y.sum(axis=0)
    s64 = s.astype(np.float64)
    tied = 1.0 - np.mean([np.unique(s64[:, j]).size for j in range(y.shape[1])]) / y.shape[0]
    print(f"data: {args.clips} clips x {args.classes} classes, {int(support.sum())} positives "
          f"({support.sum() / args.clips:.2f} labels/clip), prevalence {support.min() / args.clips:.2%}"
          f"..{support.max() / args.clips:.2%}, {tied:.1%} of scores tie with another in their class")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"numpy {np.__version__}")

    t_fast, m = timed(lambda: tagging_metrics(y, s), 3)
    t_sk, ref = timed(lambda: sklearn_loop(y, s), 1)
    for k in ("per_class_ap", "per_class_auc"):
        np.testing.assert_allclose(getattr(m, k), ref[k], rtol=0, atol=TOL, equal_nan=True)
    for k in ("mAP", "mean_auc", "d_prime"):
        assert abs(getattr(m, k) - ref[k]) <= TOL, (k, getattr(m, k), ref[k])

    t0 = time.perf_counter()
    ci = bootstrap_tagging_ci(y, s, n_resamples=args.resamples, seed=args.seed)
    t_boot = time.perf_counter() - t0
    t0 = time.perf_counter()
    bootstrap_tagging_ci(y, s, n_resamples=args.resamples, seed=args.seed, method="percentile")
    t_pct = time.perf_counter() - t0

    rows = [
        ("(a) tagging_metrics (median of 3)", f"{t_fast:.3f} s", ""),
        ("(b) per-class scikit-learn loop", f"{t_sk:.3f} s",
         f"{t_sk / t_fast:.1f}x slower; same values to {TOL:g}"),
        (f"(c) bootstrap_tagging_ci, {args.resamples} resamples", f"{t_boot:.2f} s",
         f"{1000 * t_boot / args.resamples:.2f} ms / replicate, "
         f"{metrics._bootstrap_threads(args.resamples)} threads"),
        ("(d) the same, percentile method", f"{t_pct:.2f} s", f"BCa costs {t_boot / t_pct:.2f}x"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, t, note in rows:
        print(f"{name:<{width}}  {t:>9}  {note}")
    print(f"mAP {m.mAP:.4f} [{ci['mAP'].low:.4f}, {ci['mAP'].high:.4f}], "
          f"mean AUC {m.mean_auc:.4f} [{ci['mean_auc'].low:.4f}, {ci['mean_auc'].high:.4f}], "
          f"d' {m.d_prime:.3f} [{ci['d_prime'].low:.3f}, {ci['d_prime'].high:.3f}]")


if __name__ == "__main__":
    main()
