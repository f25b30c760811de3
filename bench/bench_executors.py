"""Executors compared: the demo attack on the process pool and on Ray, and Ray's scaling on a latency-bound model.

Part 1: the attack of ``--config`` (default ``configs/ci_quick.toml``; ``configs/demo.toml`` for the
demo's own attack) is prepared once (model, clips, scores, selected clips), then run from an empty
run store with ``processes`` and with ``ray`` on ``--workers`` workers (2 by default: the 2-core
machine). Times include the workers' start-up (spawn and model load for each); Ray's own start-up
(``ray.init``, once per driver) is measured apart. The two runs' records are checked identical;
the ratio ray / processes is the figure (target: within 10 %).

Part 2: a model bound by latency, not by the CPU: ``forward`` sleeps 30 ms per call (a slow
endpoint, or a model such as a 33 ms-per-query TFLite classifier on another machine); each task
makes ``--calls`` calls. The same tasks run on 1, 2, 4, 8 and 16 Ray actors (a local Ray with 16
logical CPUs); throughput in tasks/s, shown against 1 worker measured in the same run, with and
without the actors' start-up. Not a test: figures go in the report.

Part 3 (``--stages CONFIG``, e.g. ``configs/demo.toml``): the stages that map their tasks over the
executor besides the attack, Domain Shift's corruption cells and the Explanation's occlusion maps, each
evaluated on the prepared run in this process (``local``) and on a pool of ``--workers`` (worker
start-up included), ``--repeats`` times alternating; the sections are checked identical and the median
ratio pool / local is the figure.

    .venv/bin/python bench/bench_executors.py [--config configs/ci_quick.toml] [--workers 2]
        [--order processes ray] [--tasks 64] [--calls 4] [--latency-workers 1 2 4 8 16] [--skip-attack]
        [--stages configs/demo.toml --repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from factsheet.executors import ExecutorSettings, Job, map_tasks  # noqa: E402

SLEEP_SECONDS = 0.030


def sleepy_setup(shared, context) -> dict:
    """The latency-bound "model": nothing to load but its output layer."""
    return {"weights": np.asarray(shared, np.float64)}


def sleepy_task(state: dict, task: tuple[int, int, int]) -> float:
    """``calls`` forwards of 30 ms each; the answer depends on the task's seed only."""
    index, seed, calls = task
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(calls):
        time.sleep(SLEEP_SECONDS)
        total += float(rng.standard_normal(state["weights"].shape) @ state["weights"])
    return total


def attack_part(config: Path, *, workers: int, order: list[str]) -> None:
    import ray

    from attacks.robustness import make_strata
    from attacks.runner import make_tasks, run_tasks, select_clips
    from attacks.store import RunStore, run_key_for
    from factsheet.config import load_config
    from factsheet.datasets.mapping import model_view
    from factsheet.pipeline import prepare

    cfg = load_config(config)
    ctx, _ = prepare(cfg, out_dir=None, workers=workers)
    dataset = model_view(ctx.dataset, ctx.model.class_labels)
    settings = cfg.robustness
    rows = select_clips(labels=dataset.labels, scores=ctx.model_scores, n_clips=settings.n_clips, seed=settings.seed,
                        strata=make_strata(dataset.metadata, settings=settings))
    tasks = make_tasks(rows=rows, clip_ids=[str(c) for c in dataset.metadata["clip_id"]], scores=ctx.model_scores,
                       settings=settings)
    print(f"attack of {config.name}: {len(tasks)} tasks ({len(rows)} clips x {len(settings.norms)} norms), "
          f"{workers} workers, {os.cpu_count()} cores")
    t = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    print(f"  ray.init (once per driver): {time.perf_counter() - t:.1f} s")
    records, seconds = {}, {}
    for kind in order:  # either order: the first run also warms the OS's file cache
        with tempfile.TemporaryDirectory() as tmp, \
                RunStore.open(Path(tmp) / "s.sqlite", run_key=run_key_for({"bench": kind}), settings={"bench": kind}) as store:
            t = time.perf_counter()
            res = run_tasks(tasks=tasks, model_spec=ctx.model.spec, waveforms=ctx.waveforms,
                            top1=np.argmax(ctx.model_scores, axis=1), settings=settings, store=store,
                            executor=ExecutorSettings(kind=kind, workers=workers))
            seconds[kind] = time.perf_counter() - t
            records[kind] = {k: {f: v for f, v in r.items() if f != "seconds"} for k, r in res.records.items()}
        print(f"  {kind:9s}: {seconds[kind]:6.1f} s  ({len(tasks) / seconds[kind]:.2f} tasks/s)")
    same = records["processes"] == records["ray"]
    print(f"  ray / processes = {seconds['ray'] / seconds['processes']:.3f}  (records identical: {same})")
    ray.shutdown()


def latency_part(*, n_tasks: int, calls: int, worker_counts: list[int]) -> None:
    import ray

    ray.init(num_cpus=max(worker_counts), include_dashboard=False, log_to_driver=False, configure_logging=False)
    tasks = [(i, 10_000 + i, calls) for i in range(n_tasks)]
    job = Job(setup=sleepy_setup, run=sleepy_task, shared=np.linspace(0.0, 1.0, 64))
    ideal = n_tasks * calls * SLEEP_SECONDS
    print(f"latency-bound model: {n_tasks} tasks x {calls} forwards x {SLEEP_SECONDS * 1000:.0f} ms "
          f"({ideal:.1f} s on one worker at best)")
    print("  workers | wall s | tasks/s | x 1 worker | steady tasks/s | x 1 worker")
    base = base_steady = None
    reference = None
    for n in worker_counts:
        finished: list[float] = []
        results: dict = {}

        def keep(task, value):
            results[task] = value
            finished.append(time.perf_counter())

        t = time.perf_counter()
        map_tasks(job, tasks, settings=ExecutorSettings(kind="ray", workers=n), on_result=keep)
        wall = time.perf_counter() - t
        rate = n_tasks / wall
        steady = (len(finished) - 1) / (finished[-1] - finished[0]) if len(finished) > 1 else float("nan")
        base, base_steady = base or rate, base_steady or steady
        reference = reference or results
        assert results == reference, "results differ with the worker count"
        print(f"  {n:7d} | {wall:6.2f} | {rate:7.2f} | {rate / base:10.2f} | {steady:14.2f} | "
              f"{steady / base_steady:10.2f}")
    ray.shutdown()


def stages_part(config: Path, *, workers: int, repeats: int) -> None:
    import dataclasses

    from factsheet.config import load_config
    from factsheet.pipeline import prepare
    from factsheet.sections import domain_shift, explanation

    cfg = load_config(config)
    cfg = dataclasses.replace(cfg, execution=dataclasses.replace(cfg.execution, stages=("domain_shift", "explanation")))
    ctx, _ = prepare(cfg)
    print(f"stages of {config.name} ({ctx.dataset.n_clips} clips): local vs processes x {workers}, "
          f"{repeats} alternating runs each")
    print("  stage | local s (median) | processes s (median) | processes / local")
    for name, section in (("domain_shift", domain_shift), ("explanation", explanation)):
        times: dict[str, list[float]] = {"local": [], "processes": []}
        docs: dict[str, object] = {}
        for _ in range(repeats):
            for kind in ("local", "processes"):
                run_ctx = dataclasses.replace(ctx, executor=ExecutorSettings(kind=kind, workers=workers), results={})
                t = time.perf_counter()
                result = section.evaluate(run_ctx)
                times[kind].append(time.perf_counter() - t)
                doc = dataclasses.asdict(result.section) if dataclasses.is_dataclass(result.section) else result.section
                assert docs.setdefault(kind, doc) == doc and docs.get("local", doc) == doc, f"{name}: sections differ"
        local, pool = float(np.median(times["local"])), float(np.median(times["processes"]))
        print(f"  {name} | {local:.1f} | {pool:.1f} | {pool / local:.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=REPO / "configs" / "ci_quick.toml")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--tasks", type=int, default=64)
    p.add_argument("--calls", type=int, default=4)
    p.add_argument("--latency-workers", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    p.add_argument("--order", nargs=2, default=["processes", "ray"], choices=["processes", "ray"],
                   help="the order the attack's two runs go in")
    p.add_argument("--skip-attack", action="store_true")
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--stages", type=Path, default=None, help="a config with [domain_shift] and [explanation] on")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    if args.stages is not None:
        stages_part(args.stages, workers=args.workers, repeats=args.repeats)
    if not args.skip_attack:
        attack_part(args.config, workers=args.workers, order=args.order)
    if not args.skip_latency:
        latency_part(n_tasks=args.tasks, calls=args.calls, worker_counts=args.latency_workers)


if __name__ == "__main__":
    main()
