"""Statistical validation of the harness's fast mode against exact (stock ART) mode.

Fast mode (``attacks.hsj.FastRecordingHopSkipJump``) runs the same HopSkipJump algorithm as ART
but draws its gradient-estimate noise in float32 from a PCG64 generator, so it cannot be compared
bit for bit; this script compares the two statistically on many clips. It uses the demo's data
and attack settings (``configs/demo.toml``: synthetic eval split, default model, 2 s clips,
T = 10, init_eval = 25, ...) and the clips the model classifies correctly, drawn by
``attacks.runner.select_clips``. Each (clip, norm) task is run twice through
``attacks.runner.run_tasks`` (in ``--workers`` processes, a fresh temporary run store each),
once with ``mode="exact"`` and once with ``mode="fast"``; a task carries its own seed and init
candidates, so both modes start every clip from the same ``make_init`` point with the same seed.

Reported per norm, on the final distance (the attack-norm distance of the point returned after
iteration T, model input units):

* success rates of both modes;
* over clips where both succeeded, the paired log ratio ``log(fast / exact)``: its median and
  IQR (25th-75th percentile), and the ratio of the two modes' median distances;
* the paired Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, two-sided) on the paired log
  distances, i.e. on ``log(fast) - log(exact)`` (the distances span orders of magnitude across
  clips, so the test is done on the log scale; the raw-scale p-value is printed as well);
* the two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``, two-sided) of the two modes'
  final distances (successful clips; KS is invariant under the log transform);
* the per-iteration median distance of the iterate (and of its boundary projection), both modes
  side by side (failed clips count as +inf, as in the FactSheet's percentiles).

Verdict (per norm, printed on one line each): fast mode is **consistent with exact mode** if the
Wilcoxon p-value > 0.01 AND the KS p-value > 0.01 AND |median log ratio| < 0.1 (i.e. the median
paired ratio fast/exact lies within about +-10 %); otherwise **NOT consistent**. Exit status 1 if
any norm is not consistent.

    .venv/bin/python bench/validate_fast_mode.py [--clips 48] [--norms l2,linf] [--workers N]
        [--iterations 10] [--init-eval 25] [--config configs/demo.toml]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hsj import ROOT, load_demo_inputs, run_harness  # noqa: E402

P_MIN = 0.01
MAX_ABS_MEDIAN_LOG_RATIO = 0.1


def _dist(records: list[dict], norm: str) -> np.ndarray:
    """Final attack-norm distance per clip; NaN for a failed clip."""
    return np.array([r["iterate_" + norm][-1] if r["success"] else np.nan for r in records], dtype=float)


def _median_curve(records: list[dict], field: str, iterations: int) -> list[float]:
    """Per-iteration median over clips; a missing value (failed clip) counts as +inf."""
    out = []
    for t in range(iterations):
        vals = [np.inf if (not r["success"] or r[field][t] is None) else r[field][t] for r in records]
        out.append(float(np.median(vals)))
    return out


def compare(exact: list[dict], fast: list[dict], norm: str, iterations: int) -> dict:
    """The statistics described in the module docstring, for one norm."""
    from scipy import stats

    de, df = _dist(exact, norm), _dist(fast, norm)
    both = ~np.isnan(de) & ~np.isnan(df)
    lr = np.log(df[both] / de[both])
    out = {
        "n": len(exact), "success_exact": int(np.sum(~np.isnan(de))), "success_fast": int(np.sum(~np.isnan(df))),
        "n_paired": int(both.sum()),
        "median_log_ratio": float(np.median(lr)),
        "iqr_log_ratio": (float(np.percentile(lr, 25)), float(np.percentile(lr, 75))),
        "median_exact": float(np.nanmedian(de)), "median_fast": float(np.nanmedian(df)),
        "wilcoxon_p": float(stats.wilcoxon(np.log(df[both]), np.log(de[both])).pvalue),
        "wilcoxon_raw_p": float(stats.wilcoxon(df[both], de[both]).pvalue),
        "ks_p": float(stats.ks_2samp(df[~np.isnan(df)], de[~np.isnan(de)]).pvalue),
        "fast_wins": int(np.sum(lr < 0)),
        "curves": {f"{mode} {what}": _median_curve(recs, field, iterations)
                   for what, field in (("iterate", "iterate_" + norm), ("boundary", "boundary_distance"))
                   for mode, recs in (("exact", exact), ("fast", fast))},
    }
    out["ratio_of_medians"] = out["median_fast"] / out["median_exact"]
    out["consistent"] = (out["wilcoxon_p"] > P_MIN and out["ks_p"] > P_MIN
                         and abs(out["median_log_ratio"]) < MAX_ABS_MEDIAN_LOG_RATIO)
    return out


def main(argv: list[str] | None = None) -> int:
    from attacks.runner import default_workers

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=48, help="clips per norm (default 48)")
    ap.add_argument("--norms", default="l2,linf", help="comma-separated norms: l2, linf (default l2,linf)")
    ap.add_argument("--workers", type=int, default=default_workers(),
                    help=f"worker processes (default default_workers() = {default_workers()})")
    ap.add_argument("--iterations", type=int, default=10, help="T (default 10, the demo's)")
    ap.add_argument("--init-eval", type=int, default=25, help="ART init_eval (default 25, the demo's)")
    ap.add_argument("--config", default=str(ROOT / "configs" / "demo.toml"),
                    help="config whose dataset and other attack settings are used (default configs/demo.toml)")
    args = ap.parse_args(argv)
    norms = tuple(n.strip() for n in args.norms.split(",") if n.strip())
    bad = [n for n in norms if n not in ("l2", "linf")]
    if bad or not norms:
        ap.error(f"--norms must list l2 and/or linf, got {args.norms!r}")

    t0 = time.perf_counter()
    inp = load_demo_inputs(config=args.config, n_clips=args.clips, norms=norms, iterations=args.iterations,
                           init_eval=args.init_eval)
    s = inp.settings
    n_clips = len(inp.tasks) // len(norms)
    print(f"fast vs exact HopSkipJump: {n_clips} correctly classified clips of {inp.waveforms.shape[1]} samples, "
          f"norms {', '.join(norms)}, T={s.iterations}, init_eval={s.init_eval}, max_eval={s.max_eval}, "
          f"init_size={s.init_size}, {args.workers} workers; load average {os.getloadavg()[0]:.2f}", flush=True)
    recs, secs = {}, {}
    for mode in ("exact", "fast"):
        secs[mode], done = run_harness(inp, mode=mode, workers=args.workers)
        recs[mode] = done
        print(f"{mode} mode: {secs[mode]:.1f} s (run_tasks, {args.workers} workers, start-up included)", flush=True)

    verdicts = {}
    for norm in norms:
        tasks = [t for t in inp.tasks if t.norm == norm]
        exact = [recs["exact"][(norm, t.clip_id)] for t in tasks]
        fast = [recs["fast"][(norm, t.clip_id)] for t in tasks]
        r = compare(exact, fast, norm, s.iterations)
        verdicts[norm] = r["consistent"]
        sec_e = sum(x["seconds"] for x in exact)
        sec_f = sum(x["seconds"] for x in fast)
        print()
        print(f"== {norm}: final distance after T={s.iterations} iterations (model input units)")
        print(f"success rate            exact {r['success_exact']}/{r['n']}   fast {r['success_fast']}/{r['n']}")
        print(f"median distance         exact {r['median_exact']:.5g}   fast {r['median_fast']:.5g}   "
              f"ratio of medians fast/exact {r['ratio_of_medians']:.3f}")
        print(f"log(fast/exact), {r['n_paired']} paired clips: median {r['median_log_ratio']:+.4f}, "
              f"IQR [{r['iqr_log_ratio'][0]:+.4f}, {r['iqr_log_ratio'][1]:+.4f}], fast smaller on "
              f"{r['fast_wins']}/{r['n_paired']}")
        print(f"Wilcoxon signed-rank (paired, log scale) p = {r['wilcoxon_p']:.4f}   (raw scale p = "
              f"{r['wilcoxon_raw_p']:.4f})")
        print(f"Kolmogorov-Smirnov two-sample         p = {r['ks_p']:.4f}")
        print(f"seconds in tasks        exact {sec_e:.1f}   fast {sec_f:.1f}   exact/fast {sec_e / sec_f:.2f}")
        print("per-iteration median distance (failed clips as +inf):")
        c = r["curves"]
        print(f"{'t':>3}{'iterate exact':>15}{'iterate fast':>14}{'fast/exact':>12}"
              f"{'boundary exact':>16}{'boundary fast':>15}{'fast/exact':>12}")
        for t in range(s.iterations):
            ie, i_f = c["exact iterate"][t], c["fast iterate"][t]
            be, bf = c["exact boundary"][t], c["fast boundary"][t]
            print(f"{t + 1:>3}{ie:>15.5g}{i_f:>14.5g}{i_f / ie:>12.3f}{be:>16.5g}{bf:>15.5g}{bf / be:>12.3f}")
    print()
    for norm in norms:
        print(f"VERDICT {norm}: fast mode is {'consistent' if verdicts[norm] else 'NOT consistent'} with exact mode "
              f"(criterion: Wilcoxon p > {P_MIN} and KS p > {P_MIN} and |median log(fast/exact)| < "
              f"{MAX_ABS_MEDIAN_LOG_RATIO})")
    print(f"total {time.perf_counter() - t0:.0f} s; load average {os.getloadavg()[0]:.2f}")
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
