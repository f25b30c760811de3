"""Run HopSkipJump on the selected clips on an executor (:mod:`factsheet.executors`), committing each clip to the run store.

Every (clip, norm) task carries its own seed and its own initialisation candidates, so a
task's result does not depend on which worker or executor runs it or in what order: a run with
N workers, in a process pool or on Ray, equals a run with one (tested). Finished clips are committed to an SQLite store as they
arrive; re-running the same command resumes from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from factsheet.config import RobustnessConfig
from factsheet.executors import ExecutorSettings, Job, TaskFailure, WorkerContext, default_workers, map_tasks
from factsheet.models.worker import request_concurrency, share_among_workers  # noqa: F401 (share_among_workers: API)

if TYPE_CHECKING:  # attacks.hsj imports ART: only where an attack runs
    from attacks.hsj import ClipAttackSettings

NORMS = {"l2": 2, "linf": np.inf}


@dataclass(frozen=True)
class Task:
    """One clip attacked with one norm.

    Attributes
    ----------
    row : int
        The clip's row in the dataset.
    clip_id : str
    norm : {"l2", "linf"}
    label : int
        The model's top-1 class on the clip (the class to escape).
    seed : int
        The task's own seed: start-point order, ART's global RNG, fast mode's noise.
    candidate_rows : tuple of int
        Rows of the real clips tried as start points.
    target : int or None
        The target class of a targeted attack; None: untargeted.
    """

    row: int
    clip_id: str
    norm: str
    label: int
    seed: int
    candidate_rows: tuple[int, ...]
    target: int | None = None


class StrataError(ValueError):
    """The stratification asked of the sample cannot be met: ``field`` (a ``[robustness]`` key), its
    ``value`` and the ``reason``, for the caller to report as one line of bad input."""

    def __init__(self, *, field: str, value: object, reason: str) -> None:
        self.field, self.value, self.reason = field, value, reason
        super().__init__(f"{field} = {value!r}: {reason}")


@dataclass(frozen=True)
class Strata:
    """Groups of clips the attacked sample must each cover (``[robustness] stratify_by``).

    Attributes
    ----------
    columns : dict of str to ndarray
        Column name -> each clip's group value as text, shape (n_clips,), in config order.
    min_per_group : int
        Fewest attacked clips per group (all of a group's eligible clips when it has fewer).
    exclude_values : tuple of str
        Values that form no group (e.g. ``"none"``: no voice).
    """

    columns: dict[str, np.ndarray]
    min_per_group: int
    exclude_values: tuple[str, ...] = ()

    def groups(self, column: str) -> list[str]:
        """The column's groups, sorted: its values other than :attr:`exclude_values`."""
        return sorted(set(self.columns[column].tolist()) - set(self.exclude_values))


def correctly_classified(*, labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(n_clips,) bool: the top-1 class is among the clip's true labels (the clips eligible for attack)."""
    top1 = np.argmax(scores, axis=1)
    return labels[np.arange(len(top1)), top1] == 1


def select_clips(*, labels: np.ndarray, scores: np.ndarray, n_clips: int, seed: int,
                 strata: Strata | None = None) -> np.ndarray:
    """Rows to attack: a class-stratified sample of clips the model gets right, reproducible from ``seed``.

    "Right" means the top-1 class is among the clip's true labels. With ``strata``, every group
    first gets its minimum (:func:`group_minimum`); then classes (by top-1) take turns in a
    seeded order, each giving a seeded random clip not yet chosen, until ``n_clips`` are drawn
    or none are left. Without ``strata`` the sample is the one of earlier versions. Returned sorted.

    Raises
    ------
    StrataError
        The groups' minimums need more than ``n_clips`` clips.
    """
    correct = correctly_classified(labels=labels, scores=scores)
    chosen: list[int] = []
    if strata is not None:
        chosen = group_minimum(correct=correct, strata=strata, seed=seed)
        if len(chosen) > n_clips:
            raise StrataError(field="robustness.n_clips", value=n_clips,
                              reason=f"too small to attack robustness.min_per_group = {strata.min_per_group} clips in "
                                     f"every group of robustness.stratify_by ({', '.join(strata.columns)}): that "
                                     f"takes {len(chosen)} clips")
    rng = np.random.default_rng([seed, 1])
    top1 = np.argmax(scores, axis=1)
    open_rows = correct.copy()
    open_rows[chosen] = False
    pools = {}
    for c in np.unique(top1[open_rows]):
        rows = np.flatnonzero(open_rows & (top1 == c))
        pools[int(c)] = list(rng.permutation(rows))
    order = list(rng.permutation(sorted(pools)))
    while len(chosen) < n_clips and any(pools.values()):
        for c in order:
            if pools[c] and len(chosen) < n_clips:
                chosen.append(int(pools[c].pop()))
    return np.sort(np.asarray(chosen, dtype=int))


def group_minimum(*, correct: np.ndarray, strata: Strata, seed: int) -> list[int]:
    """The rows that give every group its minimum of eligible clips, reproducible from ``seed``.

    Column by column (config order), group by group (sorted), a group short of
    ``min(min_per_group, eligible clips)`` chosen clips (clips chosen for an earlier group count)
    draws the rest at random from its eligible clips not yet chosen.

    Parameters
    ----------
    correct : ndarray of bool, shape (n_clips,)
        The eligible clips (:func:`correctly_classified`).
    strata : Strata
    seed : int
        ``robustness.seed``.

    Returns
    -------
    list of int
        Rows, in the order drawn.
    """
    rng = np.random.default_rng([seed, 2])
    taken = np.zeros(len(correct), bool)
    chosen: list[int] = []
    for column, values in strata.columns.items():
        for group in strata.groups(column):
            member = correct & (values == group)
            short = min(strata.min_per_group, int(member.sum())) - int((member & taken).sum())
            if short > 0:
                picks = rng.permutation(np.flatnonzero(member & ~taken))[:short]
                taken[picks] = True
                chosen += [int(r) for r in picks]
    return chosen


def sampling_table(*, rows: np.ndarray, correct: np.ndarray, strata: Strata) -> list[dict]:
    """How the sample covers each group: ``{"column", "group", "n_clips", "eligible", "attacked"}``.

    ``n_clips``: evaluation clips in the group; ``eligible``: of those, the correctly classified
    ones; ``attacked``: of those, the ones in ``rows``.
    """
    attacked = np.zeros(len(correct), bool)
    attacked[rows] = True
    out = []
    for column, values in strata.columns.items():
        for group in strata.groups(column):
            member = values == group
            out.append({"column": column, "group": group, "n_clips": int(member.sum()),
                        "eligible": int((member & correct).sum()), "attacked": int((member & attacked).sum())})
    return out


def make_tasks(*, rows: np.ndarray, clip_ids: list[str], scores: np.ndarray, settings: RobustnessConfig) -> list[Task]:
    """One task per (clip, norm), each with a seed and init candidates (real clips of another top-1 class).

    Targeted: the target is a seeded random choice among the other classes that are some clip's
    top-1 (so a real clip of that class can start the attack), and candidates have that top-1.
    """
    top1 = np.argmax(scores, axis=1)
    tasks = []
    for norm_index, norm in enumerate(settings.norms):
        for row in rows:
            ss = np.random.SeedSequence([settings.seed, norm_index, int(row)])
            rng = np.random.default_rng(ss)
            target = None
            others = np.flatnonzero(top1 != top1[row])
            if settings.targeted and len(others):
                target = int(rng.choice(np.unique(top1[others])))
                others = np.flatnonzero(top1 == target)
            cand = rng.permutation(others)[: settings.init_candidates] if len(others) else np.array([], int)
            tasks.append(Task(row=int(row), clip_id=clip_ids[row], norm=norm, label=int(top1[row]),
                              seed=int(ss.generate_state(1)[0]), candidate_rows=tuple(int(c) for c in cand),
                              target=target))
    return tasks


# -- worker side ----------------------------------------------------------------------

@dataclass(frozen=True)
class WorkerSetup:
    """What every worker loads once (the executor's ``shared``: sent once per worker).

    Attributes
    ----------
    model_spec : dict
        How to reload the model (:func:`factsheet.models.sources.load_from_spec`).
    clips : dict of int to ndarray
        Row -> waveform, shape (n_samples,), float32: the clips attacked and their init candidates.
    top1 : dict of int to int
        Row -> the model's top-1 class on that clip.
    attack : ClipAttackSettings
        The per-clip HopSkipJump settings, built once from the config.
    blend_steps : int
        Binary-search steps of the start point (:class:`attacks.hsj.InitSearch`).
    """

    model_spec: dict
    clips: dict[int, np.ndarray]
    top1: dict[int, int]
    attack: ClipAttackSettings
    blend_steps: int


@dataclass(frozen=True)
class WorkerState:
    """A worker's loaded model: the estimator HopSkipJump queries and the model's request counters."""

    setup: WorkerSetup
    estimator: object
    stats: Callable[[], dict] | None


def setup_worker(setup: WorkerSetup, context: WorkerContext) -> WorkerState:
    """Load the model once per worker (the executor's ``setup``; :func:`factsheet.models.worker.load_worker_model`).

    ``context.threads`` caps TensorFlow's and the model runtime's threads (1 per worker when
    several share the cores, so they do not oversubscribe them); ``context.share`` workers split
    a remote model's per-process limits (:func:`share_among_workers`).
    """
    from factsheet.models.worker import load_worker_model

    loaded = load_worker_model(setup.model_spec, context=context, wrapper="blackbox")
    return WorkerState(setup=setup, estimator=loaded.estimator, stats=loaded.model.stats)


def run_task(state: WorkerState, task: Task) -> dict:
    """Attack one clip with one norm (the executor's ``run``): the task's record.

    BLAS runs single-threaded here whatever the worker count: a multi-threaded dot product
    sums in another order, and the last bits of ART's norms (which steer the attack) would
    then depend on how many workers share the cores.
    """
    from threadpoolctl import threadpool_limits

    before = state.stats() if state.stats is not None else None
    with threadpool_limits(limits=1, user_api="blas"):
        record = _attack_task(state, task)
    if state.stats is not None:  # requests of a remote model, for provenance (not stored with the result)
        record["_model_requests"] = counter_delta(state.stats(), before)
    return record


def counter_delta(after: dict, before: dict) -> dict:
    """``after - before`` for every numeric counter (nested dicts too); other values from ``after``."""
    out = {}
    for k, v in after.items():
        b = before.get(k)
        if isinstance(v, dict):
            out[k] = counter_delta(v, b if isinstance(b, dict) else {})
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and isinstance(b, (int, float)) \
                and not k.startswith("max"):
            out[k] = v - b
        else:
            out[k] = v
    return out


def counter_sum(total: dict | None, add: dict) -> dict:
    """Counters of ``add`` added into ``total`` (nested dicts too; ``max*`` keys take the maximum)."""
    out = dict(total or {})
    for k, v in add.items():
        t = out.get(k)
        if isinstance(v, dict):
            out[k] = counter_sum(t if isinstance(t, dict) else None, v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and isinstance(t, (int, float)):
            out[k] = max(t, v) if k.startswith("max") else t + v
        else:
            out[k] = v
    return out


def _attack_task(state: WorkerState, task: Task) -> dict:
    from attacks.hsj import InitSearch, attack_clip, make_init

    setup, est = state.setup, state.estimator
    clip = setup.clips[task.row]
    t0 = time.perf_counter()
    init = None
    if task.candidate_rows:
        init = make_init(clip=clip, candidates=np.stack([setup.clips[r] for r in task.candidate_rows]),
                         candidate_top1=np.array([setup.top1[r] for r in task.candidate_rows]), label=task.label,
                         estimator=est, rng=np.random.default_rng(task.seed), target=task.target,
                         search=InitSearch(blend_steps=setup.blend_steps, max_candidates=len(task.candidate_rows)))
    res = attack_clip(estimator=est, clip=clip, label=task.label, norm=NORMS[task.norm], settings=setup.attack,
                      x_adv_init=init, seed=task.seed, target=task.target)
    record = {
        "clip_id": task.clip_id, "row": task.row, "label": task.label, "target": task.target,
        "success": bool(res.success),
        "reason": res.reason, "queries": int(res.queries),
        "init": {"given": "blend", "art-random": "art-random"}.get(res.init_source, "none"),
        "iterate_l2": [None if d is None else float(d.l2) for d in res.iterates],
        "iterate_linf": [None if d is None else float(d.linf) for d in res.iterates],
        "iterate_snr_db": [None if d is None else float(d.snr_db) for d in res.iterates],
        "boundary_distance": list(res.boundary_distance),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return record


# -- orchestration --------------------------------------------------------------------

@dataclass(frozen=True)
class TaskResults:
    """What :func:`run_tasks` returns.

    Attributes
    ----------
    records : dict of (str, str) to dict
        Every finished task's per-clip record (:mod:`attacks.summary`), keyed by (norm, clip_id): the
        ones reused from the store and the ones computed now.
    failed : dict of (str, str) to TaskFailure
        Tasks whose worker died on every attempt (``ray``), keyed like ``records``: not in the
        store, so a re-run tries them again.
    model_requests : dict
        Summed request counters of a remote model (HTTP source) over the tasks run now (not
        those reused); empty for a local model.
    executor : dict
        The executor's run facts (:func:`factsheet.executors.map_tasks`).
    """

    records: dict[tuple[str, str], dict]
    failed: dict[tuple[str, str], TaskFailure]
    model_requests: dict
    executor: dict


def run_tasks(*, tasks: list[Task], model_spec: dict, waveforms: np.ndarray, top1: np.ndarray,
              settings: RobustnessConfig, store, executor: ExecutorSettings, progress: bool = False) -> TaskResults:
    """Run the tasks not yet in ``store`` on ``executor``, committing each finished record to it at once.

    Parameters
    ----------
    tasks : list of Task
    model_spec : dict
        How workers reload the model.
    waveforms : ndarray, shape (n_clips, n_samples)
        Every clip, float32 in [-1, 1] (rows as in the tasks).
    top1 : ndarray of int, shape (n_clips,)
        The model's top-1 class on each clip.
    settings : factsheet.config.RobustnessConfig
    store : attacks.store.RunStore
        Open store of this run's key.
    executor : factsheet.executors.ExecutorSettings
        Where the tasks run; each worker loads the model once.
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    TaskResults
    """
    from tqdm import tqdm

    from attacks.hsj import ClipAttackSettings

    done = {(norm, clip_id): rec for norm in settings.norms for clip_id, rec in store.done(norm=norm).items()}
    pending = [t for t in tasks if (t.norm, t.clip_id) not in done]
    needed = sorted({t.row for t in pending} | {r for t in pending for r in t.candidate_rows})
    setup = WorkerSetup(model_spec=model_spec, clips={r: np.asarray(waveforms[r], np.float32) for r in needed},
                        top1={r: int(top1[r]) for r in needed}, attack=ClipAttackSettings.from_config(settings),
                        blend_steps=settings.blend_steps)
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(pending), desc="attack", unit="clip",
               disable=not progress, leave=False)
    model_requests: dict = {}
    failed: dict[tuple[str, str], TaskFailure] = {}

    def commit(task: Task, record: dict) -> None:
        requests = record.pop("_model_requests", None)
        if requests is not None:
            model_requests.update(counter_sum(model_requests, requests))
        store.put(clip_id=task.clip_id, norm=task.norm, result=record)
        done[(task.norm, task.clip_id)] = record
        bar.update(1)

    def give_up(task: Task, failure: TaskFailure) -> None:
        failed[(task.norm, task.clip_id)] = failure
        bar.update(1)

    job = Job(setup=setup_worker, run=run_task, shared=setup, request_concurrency=request_concurrency(model_spec))
    info = map_tasks(job, pending, settings=executor, on_result=commit, on_failure=give_up)
    bar.close()
    return TaskResults(records=done, failed=failed, model_requests=model_requests, executor=info)


def store_path(out_dir: Path) -> Path:
    return Path(out_dir) / "attack_runs.sqlite"
