"""What per-iteration robustness curves cost: stock ART HopSkipJump against the harness, in one run.

On the default model (2 s clips, 32 000 samples, ``BlackBoxClassifier``), the demo's data
(``configs/demo.toml``: synthetic eval split, clips the model gets right, ``select_clips``) and
the demo's attack settings (T = 10, init_eval = 25, max_eval, init_size, batch_size), one norm,
N clips. Every variant attacks each clip from the SAME starting point (``make_init`` with the
task's seeded rng, exactly as ``attacks.runner.run_task`` builds it) and with the same global
seed (``np.random.seed(task.seed)`` right before each stock ``generate``; ``attack_clip`` does the
same) and single-threaded BLAS (as every harness task runs), so the exact variants compute the
same attack:

(a) naive curve: a fresh stock ``art.attacks.evasion.HopSkipJump`` run for every
    ``max_iter = 1..T`` per clip (the time is the sum of the T runs);
(b) stock: one stock ``HopSkipJump`` run with ``max_iter = T`` per clip (final point only);
(c) the harness: ``attacks.runner.run_tasks`` (per-iteration iterate AND boundary distances,
    budgets, label check, final check, one extra projection of the last iterate, commit to a
    fresh temporary ``RunStore`` per variant so nothing is reused), with 1 worker and with
    ``default_workers()`` workers, in exact and in fast mode. Its time is the whole
    ``run_tasks`` call: it INCLUDES the start-up (1 worker: reloading the model in this process;
    several: spawning the pool, each worker importing TensorFlow and loading the model) and the
    per-task ``make_init`` (about 11 model queries per clip).

(a) and (b) time ``generate`` only; ``make_init`` for their inits is timed once on its own and
printed ("inits"), so the like-for-like ratio ``c1-exact / (b + inits)`` is printed next to the
requested ``c1-exact / b``. Checks printed: (c, exact, 1 worker) final distances equal (b)'s bit
for bit; the naive curve of (a) equals the curve (c, exact) records, bit for bit; 1 worker and all
workers give identical records (all fields but ``seconds``), in both modes. Exit status 1 if a
check fails. Not a test; figures go in the README.

    .venv/bin/python bench/bench_hsj.py [--clips 8] [--norm l2|linf] [--iterations 10]
        [--init-eval 25] [--workers N] [--config configs/demo.toml] [--skip-naive]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NORMS = {"l2": 2, "linf": np.inf}


# -- shared with validate_fast_mode.py ----------------------------------------------------

@dataclasses.dataclass
class DemoInputs:
    """The demo's model, data and attack settings, and one task (clip) list."""

    model: object
    estimator: object
    waveforms: np.ndarray
    top1: np.ndarray
    settings: object  # factsheet.config.RobustnessConfig
    tasks: list
    clip_ids: list


def load_demo_inputs(*, config: str | Path, n_clips: int, norms: tuple[str, ...], **overrides) -> DemoInputs:
    """Load the demo config's data and settings; select ``n_clips`` correctly classified clips.

    ``overrides`` replace :class:`factsheet.config.RobustnessConfig` fields (e.g. ``iterations``).
    """
    from factsheet.models.tf_runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    from attacks.runner import make_tasks, select_clips
    from factsheet.config import load_config
    from factsheet.datasets.base import fit_length
    from factsheet.models.adapter import load_default_model, make_estimator, predict_scores
    from factsheet.pipeline import load_dataset

    cfg = load_config(config)
    settings = dataclasses.replace(cfg.robustness, norms=tuple(norms), n_clips=n_clips,
                                   **overrides)
    model = load_default_model()
    est = make_estimator(model, wrapper="blackbox")
    ds = load_dataset(cfg.dataset, sample_rate=cfg.model.sample_rate)
    waveforms, _ = fit_length(ds.clips, n_samples=model.clip_samples)
    scores = predict_scores(est, waveforms, batch_size=cfg.model.batch_size)
    rows = select_clips(labels=ds.labels, scores=scores, n_clips=n_clips, seed=settings.seed)
    clip_ids = [str(c) for c in ds.metadata["clip_id"]]
    tasks = make_tasks(rows=rows, clip_ids=clip_ids, scores=scores, settings=settings)
    return DemoInputs(model=model, estimator=est, waveforms=waveforms, top1=np.argmax(scores, axis=1),
                      settings=settings, tasks=tasks, clip_ids=clip_ids)


def run_harness(inp: DemoInputs, *, mode: str, workers: int) -> tuple[float, dict]:
    """``run_tasks`` on a fresh temporary store; returns (wall seconds incl. start-up, records)."""
    from attacks.runner import run_tasks
    from attacks.store import RunStore
    from factsheet.models.adapter import model_spec

    settings = dataclasses.replace(inp.settings, mode=mode)
    with tempfile.TemporaryDirectory(prefix="bench_hsj_") as tmp:
        key = {"bench": "hsj", "mode": mode, "workers": workers, "settings": dataclasses.asdict(settings)}
        with RunStore.open(Path(tmp) / "attack_runs.sqlite", run_key=None, settings=key) as store:
            t0 = time.perf_counter()
            done = run_tasks(tasks=inp.tasks, model_spec=model_spec(inp.model), waveforms=inp.waveforms,
                             top1=inp.top1, settings=settings, store=store, workers=workers).records
            seconds = time.perf_counter() - t0
    return seconds, done


def task_init(inp: DemoInputs, task) -> np.ndarray | None:
    """The starting point ``attacks.runner.run_task`` builds for ``task``."""
    from attacks.hsj import InitSearch, make_init

    cand = list(task.candidate_rows)
    if not cand:
        return None
    return make_init(clip=inp.waveforms[task.row], candidates=inp.waveforms[cand], candidate_top1=inp.top1[cand],
                     label=task.label, estimator=inp.estimator, rng=np.random.default_rng(task.seed),
                     search=InitSearch(blend_steps=inp.settings.blend_steps, max_candidates=len(cand)),
                     target=getattr(task, "target", None))


# -- the benchmark ------------------------------------------------------------------------

def stock_run(inp: DemoInputs, task, init, max_iter: int) -> tuple[float, float]:
    """One stock ART run; returns (seconds, attack-norm distance of the returned point).

    BLAS is limited to one thread, as ``attacks.runner.run_task`` does for every task: a
    multi-threaded dot product sums in another order, and the last bits of ART's norms (which
    steer the attack) would differ, so no bit-for-bit comparison would be possible.
    """
    from art.attacks.evasion import HopSkipJump
    from threadpoolctl import threadpool_limits

    from attacks.hsj import measure

    s = inp.settings
    x = inp.waveforms[task.row][None]
    adv_init = None if init is None else init[None].copy()
    t0 = time.perf_counter()
    attack = HopSkipJump(inp.estimator, batch_size=s.batch_size, targeted=False, norm=NORMS[task.norm],
                         max_iter=max_iter, max_eval=s.max_eval, init_eval=s.init_eval, init_size=s.init_size,
                         verbose=False)
    with threadpool_limits(limits=1, user_api="blas"):  # as attacks.runner.run_task (see below)
        np.random.seed(task.seed)
        out = attack.generate(x, x_adv_init=adv_init)
        seconds = time.perf_counter() - t0
        return seconds, measure(out[0], x[0]).get(NORMS[task.norm])  # the harness measures under the limit too


def main(argv: list[str] | None = None) -> int:
    from attacks.runner import default_workers

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=8, help="clips attacked (default 8)")
    ap.add_argument("--norm", choices=sorted(NORMS), default="l2", help="attack norm (default l2)")
    ap.add_argument("--iterations", type=int, default=10, help="T, iterations per clip (default 10)")
    ap.add_argument("--init-eval", type=int, default=25, help="ART init_eval (default 25, the demo's)")
    ap.add_argument("--workers", type=int, default=default_workers(),
                    help=f"workers of the 'all' harness variants (default default_workers() = {default_workers()})")
    ap.add_argument("--config", default=str(ROOT / "configs" / "demo.toml"),
                    help="config whose dataset and other attack settings are used (default configs/demo.toml)")
    ap.add_argument("--skip-naive", action="store_true", help="skip variant (a) (long for many clips)")
    args = ap.parse_args(argv)
    T, key = args.iterations, "iterate_" + args.norm

    t_setup = time.perf_counter()
    inp = load_demo_inputs(config=args.config, n_clips=args.clips, norms=(args.norm,), iterations=T,
                           init_eval=args.init_eval)
    s = inp.settings
    print(f"HopSkipJump on the default model: {len(inp.tasks)} clips of {inp.waveforms.shape[1]} samples, "
          f"norm {args.norm}, T={T}, init_eval={s.init_eval}, max_eval={s.max_eval}, init_size={s.init_size}, "
          f"batch_size={s.batch_size}; {os.cpu_count()} CPUs, 'all' = {args.workers} workers "
          f"(setup {time.perf_counter() - t_setup:.1f} s); load average {os.getloadavg()[0]:.2f}", flush=True)

    # inits (timed on their own) and a warm-up run (not timed)
    t0 = time.perf_counter()
    inits = [task_init(inp, t) for t in inp.tasks]
    t_inits = time.perf_counter() - t0
    stock_run(inp, inp.tasks[0], inits[0], 1)

    # (b) stock, max_iter = T
    t_b, stock_final = 0.0, []
    for task, init in zip(inp.tasks, inits):
        sec, d = stock_run(inp, task, init, T)
        t_b += sec
        stock_final.append(d)
    print(f"(b) done: {t_b:.1f} s", flush=True)

    # (c) harness, 1 worker then all workers, exact then fast
    c_time, c_rec = {}, {}
    for workers_label, workers in (("1", 1), ("all", args.workers)):
        for mode in ("exact", "fast"):
            sec, done = run_harness(inp, mode=mode, workers=workers)
            c_time[(workers_label, mode)] = sec
            c_rec[(workers_label, mode)] = [done[(t.norm, t.clip_id)] for t in inp.tasks]
            print(f"(c) {mode}, {workers} worker(s) done: {sec:.1f} s", flush=True)

    # (a) naive: a fresh stock run per max_iter = 1..T
    t_a, naive_curves = float("nan"), None
    if not args.skip_naive:
        t_a, naive_curves = 0.0, []
        for task, init in zip(inp.tasks, inits):
            curve = []
            for t in range(1, T + 1):
                sec, d = stock_run(inp, task, init, t)
                t_a += sec
                curve.append(d)
            naive_curves.append(curve)
        print(f"(a) done: {t_a:.1f} s", flush=True)

    # -- checks ----------------------------------------------------------------------------
    exact1 = c_rec[("1", "exact")]
    harness_final = [r[key][-1] for r in exact1]
    same_final = all(r["success"] for r in exact1) and harness_final == stock_final
    same_curves = None if naive_curves is None else [r[key] for r in exact1] == naive_curves

    def timeless(recs):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in recs]

    same_workers = {m: timeless(c_rec[("1", m)]) == timeless(c_rec[("all", m)]) for m in ("exact", "fast")}
    task_sec = {k: sum(r["seconds"] for r in v) for k, v in c_rec.items()}

    # -- report ----------------------------------------------------------------------------
    print()
    print(f"{'variant':<52}{'seconds':>9}{'per clip':>10}{'in tasks':>10}")
    rows = [] if args.skip_naive else [("(a) naive: stock HopSkipJump, max_iter=1..T, fresh runs", t_a, None)]
    rows += [("(b) stock HopSkipJump, max_iter=T", t_b, None),
            ("    inits: make_init for (a)/(b) (not in (a)/(b))", t_inits, None)]
    for (wl, mode), sec in c_time.items():
        n = 1 if wl == "1" else args.workers
        rows.append((f"(c) run_tasks, {mode}, {n} worker{'s' if n > 1 else ''}", sec, task_sec[(wl, mode)]))
    for name, sec, ts in rows:
        extra = "" if ts is None else f"{ts:>10.1f}"
        print(f"{name:<52}{sec:>9.1f}{sec / len(inp.tasks):>10.2f}{extra}")
    print("(c) seconds are the whole run_tasks call, INCLUDING start-up (model reload in this process for "
          "1 worker;\n    pool spawn + TensorFlow import + model load per worker for several) and per-task "
          "make_init;\n    'in tasks' = sum over clips of the per-task seconds (make_init + attack_clip), no "
          "start-up.")
    print()
    c1e, c1f = c_time[("1", "exact")], c_time[("1", "fast")]
    cae, caf = c_time[("all", "exact")], c_time[("all", "fast")]
    ratios = [
        ("c1-exact / b", c1e / t_b, "<= 1.05"),
        ("c1-exact / (b + inits)  [like for like]", c1e / (t_b + t_inits), "<= 1.05"),
        ("c1-exact in tasks / (b + inits)  [no start-up]", task_sec[("1", "exact")] / (t_b + t_inits), "<= 1.05"),
        ("b / c1-fast", t_b / c1f, ""),
        ("b / c-all-exact", t_b / cae, ">= 2"),
        ("b / c-all-fast", t_b / caf, ">= 2"),
        ("a / c-all-exact", t_a / cae, ">= 10"),
        ("a / c-all-fast", t_a / caf, ">= 10"),
        ("a / b", t_a / t_b, ""),
    ]
    for name, value, target in [r for r in ratios if not (args.skip_naive and r[0].startswith("a "))]:
        verdict = ""
        if target and not np.isnan(value):
            bound = float(target.split()[1])
            ok = value <= bound if target.startswith("<=") else value >= bound
            verdict = f"target {target}: {'met' if ok else 'NOT met'}"
        print(f"{name:<50}{value:>8.3f}   {verdict}")
    print()
    print(f"check: (c, exact, 1 worker) final distances == (b) stock, bit for bit: {same_final}")
    print(f"check: (a) naive per-iteration curve == (c, exact) recorded curve, bit for bit: "
          f"{'skipped' if same_curves is None else same_curves}")
    for m in ("exact", "fast"):
        print(f"check: (c, {m}) records with 1 worker == with {args.workers} workers (all fields but 'seconds'): "
              f"{same_workers[m]}")
    fast_final = [r[key][-1] if r["success"] else None for r in c_rec[("1", "fast")]]
    print(f"load average at the end {os.getloadavg()[0]:.2f} (other processes on the machine skew the timings)")
    print(f"final {args.norm} per clip, stock:  " + " ".join(f"{d:.4g}" for d in stock_final))
    print(f"final {args.norm} per clip, fast:   " + " ".join("fail" if d is None else f"{d:.4g}" for d in fast_final))
    return 0 if same_final and same_curves is not False and all(same_workers.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
