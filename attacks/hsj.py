"""Per-iteration recording of ART's HopSkipJump, one clip at a time.

What is recorded and what the numbers mean
------------------------------------------
ART 1.20.1 (pinned: the recorder hooks private methods) runs, per clip and per
iteration ``t = 1..T``: delta -> binary search (projection of iterate ``t-1`` onto the
decision boundary) -> gradient estimate -> geometric step-size search -> clip. So for
every iteration two points exist:

* the **iterate** ``x_t``: the post-step point ART returns after iteration ``t`` (what
  ``generate(max_iter=t)`` would return); recorded at the top of iteration ``t+1`` (hook
  :meth:`RecordingHopSkipJump._compute_delta`) and, for ``t = T``, from the value
  ``_perturb`` returns;
* the **boundary point** ``b_t``: the binary-search projection of ``x_t`` towards the
  clean clip, which ART computes only at the start of iteration ``t+1`` (hook
  :meth:`RecordingHopSkipJump._binary_search`). It is closer to the clean clip than
  ``x_t`` (it lies on the segment between them for L2; in the clipped box for Linf).

Decision on ``b_T`` (the last iteration): ART never computes it. The recorder itself
leaves it ``None`` (so a recorded run is exactly the stock run); :func:`attack_clip` by
default (``ClipAttackSettings.project_last``) runs **one extra binary search after the run**, through
ART's own ``_binary_search`` with ART's own threshold, on ART's un-rounded last iterate.
That is bit for bit what a run with ``max_iter=T+1`` computes at the top of iteration
``T+1`` (tested), it does not touch the returned adversarial example, and its model
queries (about 14 for L2 at d = 16 000, about 20-25 for Linf) are counted both in
``queries`` and separately in ``projection_queries``.

Distances are measured on the point as the model sees it and as ART returns it (cast to
float32, the dtype of ART's output array and of the model input), in the model's input
units (float waveform in [-1, 1]), with the difference taken in float64:
``l2 = ||x_adv - x||_2``, ``linf = max |x_adv - x|``, ``snr_db = 10 log10(||x||^2 /
||x_adv - x||^2)``. All three are recorded for every point whatever the attack norm;
the attack norm only picks which one :attr:`ClipAttackResult.iterate_distance` and
:attr:`ClipAttackResult.boundary_distance` return. :func:`to_int16_units` converts a
distance to the 16-bit PCM scale for reporting.

Randomness
----------
ART draws the gradient-estimate noise from the GLOBAL legacy numpy RNG
(``np.random.randn`` / ``np.random.uniform``). :func:`attack_clip` calls
``np.random.seed(seed)`` right before the run and restores nothing: the global RNG is
left in whatever state the run leaves it (callers that care must re-seed). ART's own
random initialisation (used when no ``x_adv_init`` is given, or when the given one is
not adversarial) draws from an UNSEEDED ``np.random.RandomState()``: it is not
reproducible even with the global seed set; results say so in ``init_source ==
"art-random"``. Pass an ``x_adv_init`` from :func:`make_init` for reproducible runs.

Untargeted attacks ignore ``y``: ART's label to escape is the argmax of the model's
scores on the clean clip (top-1, also for a multi-label sigmoid model).
:func:`attack_clip` checks that ``label`` is that top-1.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from art.attacks.evasion.hop_skip_jump import HopSkipJump

__all__ = [
    "REASONS",
    "ClipAttackResult",
    "ClipAttackSettings",
    "InitSearch",
    "PointDistance",
    "QueryBudget",
    "RecordingHopSkipJump",
    "attack_clip",
    "budgeted",
    "make_init",
    "measure",
    "snr_db",
    "to_int16_units",
]

#: Every value :attr:`ClipAttackResult.reason` takes.
REASONS: tuple[str, ...] = ("found", "init failed", "query budget exceeded", "time budget exceeded",
                            "nan iterate", "final not adversarial")

_INT16_SCALE = 32768.0


# --------------------------------------------------------------------------------------
# Units (pure)
# --------------------------------------------------------------------------------------

def to_int16_units(d):
    """A distance in float waveform units ([-1, 1] full scale) on the 16-bit PCM scale.

    Parameters
    ----------
    d : float or ndarray
        Distance (L2 or Linf) in model input units.

    Returns
    -------
    float or ndarray
        ``d * 32768``.
    """
    return d * _INT16_SCALE


def snr_db(clip: np.ndarray, distance_l2: float) -> float:
    """Signal-to-perturbation ratio in dB: ``10 log10(sum(clip**2) / distance_l2**2)``.

    Exact for any attack norm when ``distance_l2`` is the L2 norm of the actual
    perturbation vector ``x_adv - clip`` (what :func:`measure` records).

    Parameters
    ----------
    clip : ndarray, shape (n,)
        Clean waveform, model input units.
    distance_l2 : float
        ``||x_adv - clip||_2`` in the same units.

    Returns
    -------
    float
        dB; ``inf`` for a zero perturbation, ``-inf`` for a silent clip with a non-zero one.
    """
    power = float(np.sum(np.square(np.asarray(clip, dtype=np.float64))))
    d2 = float(distance_l2) ** 2
    if d2 == 0.0:
        return math.inf
    if power == 0.0:
        return -math.inf
    return 10.0 * math.log10(power / d2)


@dataclass(frozen=True)
class PointDistance:
    """How far one point is from the clean clip (model input units).

    Attributes
    ----------
    l2 : float
        ``||x_adv - x||_2``.
    linf : float
        ``max |x_adv - x|``.
    snr_db : float
        ``10 log10(||x||^2 / ||x_adv - x||^2)``.
    """

    l2: float
    linf: float
    snr_db: float

    def get(self, norm: float) -> float:
        """``l2`` for norm 2, ``linf`` for norm inf."""
        return self.l2 if norm == 2 else self.linf


def measure(point: np.ndarray, clean: np.ndarray) -> PointDistance:
    """Distances of ``point`` from ``clean`` as the model sees it.

    Parameters
    ----------
    point : ndarray, shape (n,)
        Any float dtype; cast to float32 first (ART's output dtype and the model input).
    clean : ndarray, shape (n,)
        The clean clip (float32).

    Returns
    -------
    PointDistance
    """
    diff = np.asarray(point, dtype=np.float32).astype(np.float64) - np.asarray(clean, dtype=np.float64)
    l2 = float(np.linalg.norm(diff))
    return PointDistance(l2=l2, linf=float(np.max(np.abs(diff))) if diff.size else 0.0, snr_db=snr_db(clean, l2))


# --------------------------------------------------------------------------------------
# Query / time budget around an ART estimator's predict
# --------------------------------------------------------------------------------------

class _BudgetExceeded(Exception):
    """Raised from inside ``predict`` to stop ART's (possibly unbounded) loops."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class QueryBudget:
    """Counts model input rows and wall time; enforces optional limits.

    Attributes
    ----------
    queries : int
        Input rows sent to the model so far (a batch of k rows counts k).
    calls : int
        ``predict`` calls so far.
    max_queries : int or None
        A call that would bring ``queries`` above this is refused (never sent).
    max_seconds : float or None
        A call that starts after this many seconds since creation is refused.
    """

    def __init__(self, *, max_queries: int | None = None, max_seconds: float | None = None) -> None:
        self.queries = 0
        self.calls = 0
        self.max_queries = max_queries
        self.max_seconds = max_seconds
        self._t0 = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since the budget was created."""
        return time.perf_counter() - self._t0

    def charge(self, rows: int) -> None:
        """Account for a call of ``rows`` rows, or raise ``_BudgetExceeded`` before it is sent."""
        if self.max_seconds is not None and self.elapsed() > self.max_seconds:
            raise _BudgetExceeded("time budget exceeded")
        if self.max_queries is not None and self.queries + rows > self.max_queries:
            raise _BudgetExceeded("query budget exceeded")
        self.queries += rows
        self.calls += 1


@contextmanager
def budgeted(estimator, *, max_queries: int | None = None,
             max_seconds: float | None = None) -> Iterator[QueryBudget]:
    """Count (and optionally limit) every row the estimator's ``predict`` is given.

    The estimator's ``predict`` is replaced by an instance attribute for the duration of
    the block and restored afterwards: every predict call made through the estimator
    (ART's attack, ``compute_success``, :func:`make_init`) is counted. Nesting works (the
    inner block counts into its own budget and calls the outer wrapper).

    Parameters
    ----------
    estimator : art.estimators.classification.ClassifierMixin
    max_queries : int, optional
    max_seconds : float, optional

    Yields
    ------
    QueryBudget
    """
    had_instance_attr = "predict" in vars(estimator)
    original = estimator.predict
    budget = QueryBudget(max_queries=max_queries, max_seconds=max_seconds)

    def predict(x, batch_size: int = 128, **kwargs):
        budget.charge(int(np.shape(x)[0]))
        return original(x, batch_size=batch_size, **kwargs)

    estimator.predict = predict
    try:
        yield budget
    finally:
        if had_instance_attr:
            estimator.predict = original
        else:
            del estimator.predict


# --------------------------------------------------------------------------------------
# The recording subclass
# --------------------------------------------------------------------------------------

@dataclass
class ClipRecord:
    """What :class:`RecordingHopSkipJump` saw while attacking one clip (mutable, internal).

    Iterate ``t`` (1-based) is ``iterates[t-1]``; ``boundaries[t-1]`` is its boundary
    point (projection computed at the top of iteration ``t+1``). ``iteration_queries`` /
    ``iteration_seconds`` are cumulative at the end of iteration ``t`` (queries only when
    the recorder was given a counter).
    """

    clean: np.ndarray
    target: int
    clip_min: float
    clip_max: float
    init_source: str | None = None
    init_failed: bool = False
    nan_iterate: bool = False
    init: PointDistance | None = None
    init_boundary: PointDistance | None = None
    iterates: list[PointDistance] = field(default_factory=list)
    boundaries: list[PointDistance] = field(default_factory=list)
    iteration_queries: list[int | None] = field(default_factory=list)
    iteration_seconds: list[float] = field(default_factory=list)
    final_raw: np.ndarray | None = None
    last_boundary_projected: bool = False
    _n_delta: int = 0
    _pending_boundary: bool = False
    _t0: float = 0.0


class RecordingHopSkipJump(HopSkipJump):
    """ART's :class:`HopSkipJump` that records, per clip and iteration, iterate and boundary distances.

    The algorithm is untouched: every hook calls the parent and returns its result
    unchanged; recording only reads arrays (no RNG draws, no model queries). A fixed
    global seed and the same ``x_adv_init`` give bit-identical output to the stock class
    (tested). Hooks used (private in ART 1.20.1, hence the pinned version):
    ``_perturb`` (starts a per-clip record, takes the last iterate), ``_init_sample``
    (init source / failure), ``_compute_delta`` (top of every iteration: receives the
    previous iterate), ``_binary_search`` (the first call after each ``_compute_delta`` is
    the boundary projection of that iterate).

    Parameters
    ----------
    classifier : ART classifier
        ``input_shape`` must equal the clips' shape ``(n,)``; ``clip_values`` set.
    batch_size, targeted, norm, max_iter, max_eval, init_eval, init_size, verbose
        As :class:`HopSkipJump` (``verbose`` defaults to False here).
    query_count : callable, optional
        ``() -> int`` cumulative model rows (e.g. ``QueryBudget.queries``), sampled at the
        end of every iteration.

    Attributes
    ----------
    records : list of ClipRecord
        One per clip of the last :meth:`generate` call, in order (the last one partial if
        the run was interrupted).
    """

    def __init__(self, classifier, *, batch_size: int = 64, targeted: bool = False, norm: int | float | str = 2,
                 max_iter: int = 50, max_eval: int = 10000, init_eval: int = 100, init_size: int = 100,
                 verbose: bool = False, query_count: Callable[[], int] | None = None) -> None:
        super().__init__(classifier, batch_size=batch_size, targeted=targeted, norm=norm, max_iter=max_iter,
                         max_eval=max_eval, init_eval=init_eval, init_size=init_size, verbose=verbose)
        self.records: list[ClipRecord] = []
        self._query_count = query_count
        self._rec: ClipRecord | None = None

    # -- hooks -------------------------------------------------------------------------

    def generate(self, x: np.ndarray, y: np.ndarray | None = None, **kwargs) -> np.ndarray:
        """:meth:`HopSkipJump.generate`, starting a fresh :attr:`records` list."""
        self.records = []
        return super().generate(x, y, **kwargs)

    def _perturb(self, x, y, y_p, init_pred, adv_init, mask, clip_min, clip_max):
        rec = ClipRecord(clean=np.array(x, dtype=np.float32, copy=True), target=int(y if self.targeted else y_p),
                         clip_min=float(clip_min), clip_max=float(clip_max), _t0=time.perf_counter())
        self.records.append(rec)
        self._rec = rec
        try:
            out = super()._perturb(x, y, y_p, init_pred, adv_init, mask, clip_min, clip_max)
        finally:
            self._rec = None
        if not rec.init_failed and self.max_iter > 0:
            # ART returns the very object ``x`` (the clean clip) when an iterate went NaN.
            if out is x:
                rec.nan_iterate = True
            else:
                self._record_iterate(rec, out)
                rec.final_raw = np.array(out, copy=True)
        return out

    def _init_sample(self, x, y, y_p, init_pred, adv_init, mask, clip_min, clip_max):
        out = super()._init_sample(x, y, y_p, init_pred, adv_init, mask, clip_min, clip_max)
        rec = self._rec
        if rec is not None:
            given_ok = adv_init is not None and (init_pred == y if self.targeted else init_pred != y_p)
            rec.init_source = "given" if given_ok else "art-random"
            rec.init_failed = out is None
        return out

    def _compute_delta(self, current_sample, original_sample, clip_min, clip_max):
        rec = self._rec
        if rec is not None:
            # Call k (0-based) receives iterate k: k = 0 is the initial adversarial point.
            if rec._n_delta == 0:
                rec.init = measure(current_sample, rec.clean)
            else:
                self._record_iterate(rec, current_sample)
            rec._n_delta += 1
            rec._pending_boundary = True
        return super()._compute_delta(current_sample, original_sample, clip_min, clip_max)

    def _binary_search(self, current_sample, original_sample, target, norm, clip_min, clip_max, threshold=None):
        out = super()._binary_search(current_sample=current_sample, original_sample=original_sample, target=target,
                                     norm=norm, clip_min=clip_min, clip_max=clip_max, threshold=threshold)
        rec = self._rec
        if rec is not None and rec._pending_boundary:
            rec._pending_boundary = False
            point = measure(out, rec.clean)
            if rec._n_delta == 1:
                rec.init_boundary = point
            else:
                rec.boundaries.append(point)
        return out

    # -- helpers -----------------------------------------------------------------------

    def _record_iterate(self, rec: ClipRecord, point: np.ndarray) -> None:
        rec.iterates.append(measure(point, rec.clean))
        rec.iteration_queries.append(self._query_count() if self._query_count is not None else None)
        rec.iteration_seconds.append(time.perf_counter() - rec._t0)

    def project_last_iterate(self, index: int = -1) -> bool:
        """Compute the boundary point of the last iterate of ``records[index]`` (ART does not).

        Runs ART's ``_binary_search`` with ART's default threshold on ART's un-rounded
        last iterate, exactly as the top of iteration ``T+1`` would; costs model queries
        (about 14 for L2 at d = 16 000; about 20-25 for Linf) and appends to
        ``boundaries``. Nothing when the clip has no last iterate (init failure, NaN) or
        was already projected.

        Returns
        -------
        bool
            Whether a projection was added.
        """
        rec = self.records[index]
        if rec.final_raw is None or rec.last_boundary_projected:
            return False
        out = super()._binary_search(current_sample=rec.final_raw, original_sample=rec.clean, target=rec.target,
                                     norm=self.norm, clip_min=rec.clip_min, clip_max=rec.clip_max)
        rec.boundaries.append(measure(out, rec.clean))
        rec.last_boundary_projected = True
        return True


class FastRecordingHopSkipJump(RecordingHopSkipJump):
    """:class:`RecordingHopSkipJump` with ART's gradient estimate made cheap; same algorithm.

    ART's ``_compute_update`` draws ``num_eval x d`` noise from the global legacy generator in
    float64 (polar Box-Muller, then a cast) and lets a float64 ``delta`` promote every probe
    to float64; for 2 s clips that numpy work costs more than the model queries. Here the
    noise is drawn in float32 from a PCG64 generator seeded per clip (ziggurat normals;
    uniform for L-infinity), all probe arithmetic stays float32, and the f-weighted mean is
    one BLAS product. Every step of Eq. (14) is unchanged, so the distribution of results is
    the same while the random numbers differ: it is validated statistically against exact
    mode (``bench/validate_fast_mode.py``, ``tests/test_hsj_fast.py``), never bit for bit.
    """

    def __init__(self, classifier, *, noise_seed: int, **kwargs) -> None:
        super().__init__(classifier, **kwargs)
        self._noise = np.random.default_rng(noise_seed)

    def _compute_update(self, current_sample, num_eval, delta, target, mask, clip_min, clip_max):
        shape = (num_eval,) + tuple(self.estimator.input_shape)
        if self.norm == 2:
            noise = self._noise.standard_normal(shape, dtype=np.float32)
        else:
            noise = self._noise.random(shape, dtype=np.float32)
            noise *= 2.0
            noise -= 1.0
        if mask is not None:
            noise *= mask.astype(np.float32)
        flat = noise.reshape(num_eval, -1)
        flat /= np.sqrt(np.einsum("ij,ij->i", flat, flat))[:, None]
        current = np.asarray(current_sample, dtype=np.float32)
        d = np.float32(delta)
        eval_samples = current + d * noise
        np.clip(eval_samples, clip_min, clip_max, out=eval_samples)
        satisfied = self._adversarial_satisfactory(samples=eval_samples, target=target, clip_min=clip_min,
                                                   clip_max=clip_max)
        np.subtract(eval_samples, current, out=noise)  # the probes' actual (clipped) directions
        noise /= d
        f_val = 2.0 * satisfied.astype(np.float32) - 1.0
        mean = float(np.mean(f_val))
        if mean == 1.0:
            grad = noise.mean(axis=0)
        elif mean == -1.0:
            grad = -noise.mean(axis=0)
        else:
            grad = (np.tensordot(f_val - np.float32(mean), noise.reshape(num_eval, -1), axes=1)
                    / np.float32(num_eval)).reshape(current.shape)
        if self.norm == 2:
            return grad / np.linalg.norm(grad)
        return np.sign(grad)


# --------------------------------------------------------------------------------------
# One clip, with budget
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClipAttackResult:
    """The record of one HopSkipJump run on one clip.

    All distances in model input units (float waveform, [-1, 1] full scale).

    Attributes
    ----------
    success : bool
        The run completed all ``max_iter`` iterations and the returned point is
        adversarial (untargeted: model top-1 != ``label``; targeted: == ``target``),
        checked with one extra query.
    reason : str
        One of :data:`REASONS`. ``"final not adversarial"`` only for a model that
        answers differently for the same input.
    norm : str
        ``"L2"`` or ``"Linf"``: the attack's norm.
    label : int
        Clean top-1 (the class to escape).
    target : int or None
        Target class of a targeted attack.
    max_iter : int
        ``T``.
    init_source : str or None
        ``"given"`` (the ``x_adv_init`` was used, reproducible), ``"art-random"`` (ART's
        unseeded random search), None if the run stopped before initialisation.
    init, init_boundary : PointDistance or None
        The initial adversarial point and its boundary projection (iteration 1's binary search).
    iterates : tuple of (PointDistance or None), length T
        ``iterates[t-1]``: the post-step point returned after iteration ``t``; None for
        iterations not completed (failure or budget abort).
    boundaries : tuple of (PointDistance or None), length T
        ``boundaries[t-1]``: the boundary projection of iterate ``t``. For ``t = T`` only
        when ``project_last`` ran (else None).
    iteration_queries : tuple of (int or None), length T
        Cumulative model rows at the end of iteration ``t`` (since the start of
        :func:`attack_clip`, label check included).
    iteration_seconds : tuple of (float or None), length T
        Cumulative seconds at the end of iteration ``t`` (since the clip's attack started).
    queries : int
        All model rows used by :func:`attack_clip` (label check, ART's own predicts,
        final check, last projection).
    projection_queries : int
        Of ``queries``, the rows of the extra last-iterate projection.
    seconds : float
        Wall time of :func:`attack_clip`.
    final : PointDistance or None
        The returned adversarial point (= ``iterates[-1]``); None unless ``success``.
    """

    success: bool
    reason: str
    norm: str
    label: int
    target: int | None
    max_iter: int
    init_source: str | None
    init: PointDistance | None
    init_boundary: PointDistance | None
    iterates: tuple[PointDistance | None, ...]
    boundaries: tuple[PointDistance | None, ...]
    iteration_queries: tuple[int | None, ...]
    iteration_seconds: tuple[float | None, ...]
    queries: int
    projection_queries: int
    seconds: float
    final: PointDistance | None

    @property
    def _p(self) -> float:
        return 2 if self.norm == "L2" else np.inf

    @property
    def iterate_distance(self) -> tuple[float | None, ...]:
        """Per iteration, the attack-norm distance of the iterate (None where not recorded)."""
        return tuple(None if d is None else d.get(self._p) for d in self.iterates)

    @property
    def boundary_distance(self) -> tuple[float | None, ...]:
        """Per iteration, the attack-norm distance of the iterate's boundary point."""
        return tuple(None if d is None else d.get(self._p) for d in self.boundaries)

    @property
    def iterate_snr_db(self) -> tuple[float | None, ...]:
        """Per iteration, SNR (dB) of the iterate's perturbation."""
        return tuple(None if d is None else d.snr_db for d in self.iterates)

    @property
    def final_distance(self) -> float | None:
        """Attack-norm distance of the returned adversarial point; None unless ``success``."""
        return None if self.final is None else self.final.get(self._p)


def _norm_of(norm) -> float:
    if norm == 2 or norm in ("2", "l2", "L2"):
        return 2
    if norm == np.inf or norm in ("inf", "linf", "Linf"):
        return np.inf
    raise ValueError(f"norm must be 2 or np.inf, got {norm!r}")


def _pad(values: list, n: int) -> tuple:
    return tuple(values[:n]) + (None,) * max(0, n - len(values))


def _top1(estimator, x: np.ndarray) -> np.ndarray:
    return np.argmax(estimator.predict(x, batch_size=max(1, x.shape[0])), axis=1)


@dataclass(frozen=True)
class ClipAttackSettings:
    """The HopSkipJump settings every clip of a run is attacked with (picklable, sent to workers).

    Built once per run (:meth:`from_config`); what changes from clip to clip (the clip, its
    label and target, the start point, the seed, the norm) is passed to :func:`attack_clip`.

    Attributes
    ----------
    max_iter : int
        ``T``, HopSkipJump iterations (>= 1).
    init_eval, max_eval, init_size, batch_size : int
        ART's HopSkipJump settings (gradient-estimate probes at the first / at most; random
        draws of ART's own initialisation; model batch size in rows).
    max_queries : int, optional
        Model rows allowed per clip in total; a predict call that would exceed it stops the run.
    max_seconds : float, optional
        Wall time allowed per clip (s); a predict call starting later stops the run. (ART's
        step-size search is an unbounded loop: this budget is what stops a model that never
        answers "adversarial" again.)
    project_last : bool
        Run one extra binary search to get the boundary point of the last iterate (queries
        counted in ``queries`` and ``projection_queries``).
    mode : {"exact", "fast"}
        ``"exact"``: stock ART numerics, bit-identical to ``HopSkipJump.generate``.
        ``"fast"``: :class:`FastRecordingHopSkipJump` (same algorithm, float32 noise from a
        PCG64 generator seeded with the clip's seed); validated statistically against exact mode.
    """

    max_iter: int
    init_eval: int
    max_eval: int
    init_size: int
    batch_size: int
    max_queries: int | None = None
    max_seconds: float | None = None
    project_last: bool = True
    mode: str = "exact"

    def __post_init__(self) -> None:
        if not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise ValueError(f"max_iter must be an int >= 1, got {self.max_iter!r}")
        if self.mode not in ("exact", "fast"):
            raise ValueError(f"mode must be 'exact' or 'fast', got {self.mode!r}")

    @classmethod
    def from_config(cls, config) -> ClipAttackSettings:
        """The per-clip settings of a validated ``[robustness]`` section.

        Parameters
        ----------
        config : factsheet.config.RobustnessConfig

        Returns
        -------
        ClipAttackSettings
            ``iterations`` as ``max_iter``, the per-clip query and time budgets, ``mode``;
            the last iterate is always projected.
        """
        return cls(max_iter=config.iterations, init_eval=config.init_eval, max_eval=config.max_eval,
                   init_size=config.init_size, batch_size=config.batch_size,
                   max_queries=config.max_queries_per_clip, max_seconds=config.max_seconds_per_clip,
                   mode=config.mode)


def attack_clip(*, estimator, clip: np.ndarray, label: int, norm: int | float | str, settings: ClipAttackSettings,
                x_adv_init: np.ndarray | None, seed: int, target: int | None = None) -> ClipAttackResult:
    """Run HopSkipJump (ART, recorded per iteration) on one clip under a query/time budget.

    Seeds the global legacy numpy RNG with ``seed`` right before the run (ART's gradient
    noise comes from it) and restores nothing: the global RNG is left advanced.

    Parameters
    ----------
    estimator : ART classifier
        ``input_shape == (n,)``, ``clip_values`` set (e.g. ``make_estimator(model)``).
    clip : ndarray, shape (n,)
        Clean waveform, float in [-1, 1].
    label : int
        The model's own top-1 on ``clip`` (checked; untargeted HSJ ignores ``y`` and
        escapes this class).
    norm : {2, np.inf}
    settings : ClipAttackSettings
        Iterations, ART's settings, the per-clip budgets, ``project_last`` and ``mode``.
    x_adv_init : ndarray, shape (n,), or None
        Initial adversarial point (e.g. from :func:`make_init`). None, or a point that is
        not adversarial, makes ART use its own random search, which is NOT reproducible.
    seed : int
        Global numpy seed for the run (and the noise seed of ``mode="fast"``).
    target : int, optional
        Given: a targeted attack towards this class, which must differ from ``label``.

    Returns
    -------
    ClipAttackResult
        Partial per-iteration record with the reason when the run is stopped by a budget.
        A clip for which ART returns the clean clip (init failure, NaN iterate) has
        ``success=False`` and ``final=None``, never distance 0.

    Raises
    ------
    ValueError
        Bad shapes/arguments, or ``label`` is not the model's top-1 on ``clip``.
    """
    p = _norm_of(norm)
    x, init = _checked_inputs(estimator, clip=clip, label=label, target=target, x_adv_init=x_adv_init)
    t0 = time.perf_counter()
    with budgeted(estimator, max_queries=settings.max_queries, max_seconds=settings.max_seconds) as budget:
        attack = _recorder(estimator, settings=settings, norm=p, targeted=target is not None, seed=seed,
                           query_count=lambda: budget.queries)
        reason, out = _run_art(attack, x=x, label=int(label), target=target, x_adv_init=init, seed=seed)
        rec = attack.records[0] if attack.records else None
        if reason is None:
            reason = _reason_after_run(rec, settings.max_iter)
        projection_queries = 0
        if reason == "found":
            reason, projection_queries = _confirm_and_project(attack, out=out, label=int(label), target=target,
                                                              project_last=settings.project_last, budget=budget)
        queries = budget.queries
    success = reason == "found"
    return ClipAttackResult(
        success=success, reason=reason, norm="L2" if p == 2 else "Linf", label=int(label),
        target=None if target is None else int(target), max_iter=settings.max_iter, queries=queries,
        projection_queries=projection_queries, seconds=time.perf_counter() - t0,
        **_recorded(rec, label=int(label), max_iter=settings.max_iter, success=success))


def _checked_inputs(estimator, *, clip, label: int, target: int | None,
                    x_adv_init: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The clip as float32, shape (n,), and the start point as float32, shape (1, n), or None.

    Raises
    ------
    ValueError
        The clip is not 1-D of the estimator's input shape, the target equals the label, or the
        start point does not match the clip.
    """
    x = np.asarray(clip, dtype=np.float32)
    if x.ndim != 1 or tuple(estimator.input_shape) != x.shape:
        raise ValueError(f"clip shape {x.shape} must be (n,) equal to the estimator's input_shape "
                         f"{tuple(estimator.input_shape)}")
    if target is not None and int(target) == int(label):
        raise ValueError("a targeted attack needs a target class different from the clean top-1")
    if x_adv_init is None:
        return x, None
    init = np.asarray(x_adv_init, dtype=np.float32).reshape(1, -1)
    if init.shape[1] != x.shape[0]:
        raise ValueError(f"x_adv_init shape {np.shape(x_adv_init)} does not match the clip {x.shape}")
    return x, init


def _recorder(estimator, *, settings: ClipAttackSettings, norm: float, targeted: bool, seed: int,
              query_count: Callable[[], int]) -> RecordingHopSkipJump:
    """The recording attack of ``settings.mode`` (the fast one draws its noise from ``seed``)."""
    extra = {"noise_seed": seed} if settings.mode == "fast" else {}
    cls = FastRecordingHopSkipJump if settings.mode == "fast" else RecordingHopSkipJump
    return cls(estimator, batch_size=settings.batch_size, targeted=targeted, norm=norm, max_iter=settings.max_iter,
               max_eval=settings.max_eval, init_eval=settings.init_eval, init_size=settings.init_size,
               verbose=False, query_count=query_count, **extra)


def _run_art(attack: RecordingHopSkipJump, *, x: np.ndarray, label: int, target: int | None,
             x_adv_init: np.ndarray | None, seed: int) -> tuple[str | None, np.ndarray | None]:
    """Check the label (1 query), seed the global RNG and run ART on the clip.

    Returns
    -------
    reason : str or None
        The budget that stopped the run, or None when ART returned.
    out : ndarray, shape (n,), or None
        ART's output (the clean clip itself after an init failure or a NaN iterate).
    """
    estimator = attack.estimator
    try:
        clean_top1 = int(_top1(estimator, x[None])[0])
        if clean_top1 != label:
            raise ValueError(f"label {label} is not the model's top-1 ({clean_top1}) on this clip")
        y = np.eye(estimator.nb_classes, dtype=np.float32)[[int(target) if target is not None else label]]
        np.random.seed(seed)
        return None, attack.generate(x[None], y=y, x_adv_init=x_adv_init)[0]
    except _BudgetExceeded as exc:
        return exc.reason, None


def _confirm_and_project(attack: RecordingHopSkipJump, *, out: np.ndarray, label: int, target: int | None,
                         project_last: bool, budget: QueryBudget) -> tuple[str, int]:
    """Check that ART's output is adversarial (1 query), then project the last iterate.

    Returns
    -------
    reason : str
        ``"found"``, or ``"final not adversarial"`` (a model answering differently for the same
        input). A budget running out after the check keeps ``"found"``, without the last
        boundary point.
    projection_queries : int
        Model rows of the last projection (0 when not run).
    """
    try:
        top1 = int(_top1(attack.estimator, out[None])[0])
        if not ((top1 == int(target)) if target is not None else (top1 != label)):
            return "final not adversarial", 0
        if not project_last:
            return "found", 0
        before = budget.queries
        attack.project_last_iterate(0)
        return "found", budget.queries - before
    except _BudgetExceeded:
        # The attack itself finished: keep "found", just without the last boundary point.
        return "found", 0


def _reason_after_run(rec: ClipRecord | None, max_iter: int) -> str:
    if rec is None or rec.init_failed:
        return "init failed"
    if rec.nan_iterate:
        return "nan iterate"
    # ART ran all iterations: the last one was recorded from _perturb's return value.
    assert len(rec.iterates) == max_iter, (len(rec.iterates), max_iter)
    return "found"


def _recorded(rec: ClipRecord | None, *, label: int, max_iter: int, success: bool) -> dict:
    """The :class:`ClipAttackResult` fields the recorder filled, padded to ``max_iter`` with None."""
    if rec is None:
        rec = ClipRecord(clean=np.zeros(0, np.float32), target=label, clip_min=-1.0, clip_max=1.0)
    return dict(init_source=rec.init_source, init=rec.init, init_boundary=rec.init_boundary,
                iterates=_pad(rec.iterates, max_iter), boundaries=_pad(rec.boundaries, max_iter),
                iteration_queries=_pad(rec.iteration_queries, max_iter),
                iteration_seconds=_pad(rec.iteration_seconds, max_iter),
                final=rec.iterates[-1] if success and rec.iterates else None)


# --------------------------------------------------------------------------------------
# Reproducible initialisation
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InitSearch:
    """How :func:`make_init` searches a start point.

    Attributes
    ----------
    blend_steps : int
        Binary-search steps on the blend weight ``a`` (resolution ``2**-blend_steps``, one
        model query each).
    max_candidates : int
        At most this many candidates are confirmed (one query each) before giving up.
    """

    blend_steps: int = 10
    max_candidates: int = 8


def make_init(*, clip: np.ndarray, candidates: np.ndarray, candidate_top1: np.ndarray, label: int, estimator,
              rng: np.random.Generator, target: int | None = None,
              search: InitSearch = InitSearch()) -> np.ndarray | None:
    """A deterministic adversarial starting point: a real clip of another class, blended towards ``clip``.

    Candidates whose precomputed top-1 differs from ``label`` (or equals ``target``) are
    tried in an order drawn from ``rng``. For the first one the model confirms (1 query),
    a binary search over ``a`` in [0, 1] on ``(1 - a) * clip + a * other`` keeps the
    smallest ``a`` found adversarial (:func:`_blend_search`). The returned point is one the
    model was seen to classify adversarially. Queries go through ``estimator.predict``:
    wrap it with :func:`budgeted` to count them.

    Parameters
    ----------
    clip : ndarray, shape (n,)
        Clean waveform in [-1, 1].
    candidates : ndarray, shape (m, n)
        Real clips of the same length (e.g. the evaluation set).
    candidate_top1 : ndarray of int, shape (m,)
        The model's top-1 on each candidate.
    label : int
        The model's top-1 on ``clip``.
    estimator : ART classifier
    rng : numpy.random.Generator
        Picks the candidate order; the result is a function of the rng state.
    target : int, optional
        For a targeted attack: candidates must have this top-1, the blend must keep it.
    search : InitSearch
        Blend steps and the most candidates confirmed.

    Returns
    -------
    ndarray, shape (n,), float32, or None
        None when no candidate is confirmed adversarial; the caller then falls back to
        ART's random search (not reproducible).
    """
    x = np.asarray(clip, dtype=np.float32)
    top1 = np.asarray(candidate_top1)
    eligible = np.flatnonzero(top1 == target) if target is not None else np.flatnonzero(top1 != label)
    if eligible.size == 0:
        return None

    def adversarial(z: np.ndarray) -> bool:
        c = int(_top1(estimator, z[None])[0])
        return c == target if target is not None else c != label

    for i in rng.permutation(eligible)[:search.max_candidates]:
        other = np.asarray(candidates[i], dtype=np.float32)
        if other.shape == x.shape and adversarial(other):
            return _blend_search(x, other, adversarial=adversarial, steps=search.blend_steps)
    return None


def _blend_search(x: np.ndarray, other: np.ndarray, *, adversarial: Callable[[np.ndarray], bool],
                  steps: int) -> np.ndarray:
    """The blend of ``x`` towards the adversarial ``other`` with the smallest weight found adversarial.

    Parameters
    ----------
    x, other : ndarray, shape (n,), float32
        The clean clip and a candidate the model confirmed adversarial.
    adversarial : callable
        ``(n,) -> bool``, one model query.
    steps : int
        Binary-search steps on ``a`` in [0, 1].

    Returns
    -------
    ndarray, shape (n,), float32
        ``other`` itself when no blend was adversarial.
    """
    lo, hi = 0.0, 1.0
    best = other
    for _ in range(steps):
        a = 0.5 * (lo + hi)
        z = _blend(x, other, a)
        if adversarial(z):
            hi, best = a, z
        else:
            lo = a
    return best


def _blend(x: np.ndarray, other: np.ndarray, a: float) -> np.ndarray:
    """``(1 - a) x + a other`` in float64, returned float32; a convex mix stays inside [-1, 1]."""
    return ((1.0 - a) * x.astype(np.float64) + a * other.astype(np.float64)).astype(np.float32)
