"""Do the FactSheet's 95 % intervals cover? Seeded simulation studies with a known truth.

Issue 17. Every cell draws ``R`` data sets from a model whose true value is known, builds the
nominal 95 % interval with the project's own interval code (so the numbers describe what the
FactSheet prints) and reports the share of intervals containing the truth, its Monte-Carlo
standard error ``sqrt(p (1 - p) / R)`` and the mean width. Cells below 93 % are flagged. Where
the FactSheet switched interval (item 2), the percentile bootstrap it used before is measured
on the same data sets, and a second table puts the two side by side.

Studies
-------
``auc`` / ``map``
    4 classes, negatives N(0, 1), positives N(d, 1) with d = 0.5, 1.0, 1.5, 2.0; labels
    Bernoulli(prevalence) per clip and class; plus demo-like cells, 14 classes with d from 1.5
    to 3.0 (AUC 0.86 to 0.98) at 14 % prevalence, 1200 clips (configs/demo.toml) and 600
    (configs/ci_quick.toml). Intervals from :func:`factsheet.metrics.bootstrap_tagging_ci`:
    ``method="percentile"`` without a minimum support (before) and the FactSheet's BCa with
    ``MIN_CLASS_SUPPORT`` (now: a data set with a class below it gets no interval, counted
    under "intervals"). True AUC = Phi(d / sqrt 2) (analytic); true AP = the population AP,
    ``E[precision(s)]`` over positive scores, by numerical quadrature (checked against the AP of
    10^6 draws in ``tests/test_coverage_quick.py``). The FactSheet's mean is over *evaluable*
    classes (a positive and a negative), so the truth of one data set is the mean of the true
    values over its evaluable classes.
``pNN``
    Perturbation norms: log-normal (mu = 0, sigma = 1) with a share of failures (+inf), 16 to
    256 clips (80: the demo's clips per norm; 16: its smallest voice-type group and
    configs/ci_quick.toml); intervals from :func:`attacks.curves.bootstrap_percentile_ci`
    (before) and :func:`attacks.curves.percentile_ci` (now: order statistics; no lower bound,
    "insufficient evidence", counts as no interval). The true percentile of the mixture is
    analytic.
``disparity``
    Difference of mean AUC between two groups of equal size (prevalence 50 %, 4 classes,
    d = 1.5 in both groups under the null, 1.5 against 1.0 with a gap), from the Bias
    section's paired bootstrap (:func:`factsheet.bias.stats.group_replicates`, mean AUC over
    the classes with ``min_positives`` positives in both groups by
    :func:`~factsheet.bias.stats.group_level`, interval by ``percentile_interval`` with the
    bias rule), as ``factsheet.bias.stats._disparities`` does; and the second group's mean AUC
    with the same rule (a group row of the Bias section). Unchanged by item 2.
``drop``
    The Domain Shift section's paired drops of mAP and mean AUC (one cell of the corruption suite):
    14 demo-like classes at 14 % prevalence, clean scores binormal with d from 1.5 to 3.0 and
    corrupted scores with a share ``keep`` of the separation and noise correlated 0.8 with the
    clean noise; intervals from :func:`factsheet.domain_shift.stats.cell_drops` (percentile before,
    BCa now); the truth is the
    difference of the binormal AP (AUC) at the two separations. 400 clips is the demo's n_clips.
``ratio``
    The Robustness section's median-ratio disparity between two groups of attacked clips
    (:mod:`attacks.groups`: each group's median on its own bootstrap resamples, the log ratio's
    interval by the bias rule): log-normal norms (sigma 1) with 10 % failures, 16, 32 and 80 clips
    per group (the demo's voice types have 16-18), under the null and at a ratio of 0.5.
``bias``
    The Bias section's group rows (mAP, mean AUC, d'; the Optimal / Poor Conditions slices print the
    same group mAP), its mAP disparities and its per-class group AP / AUC, through the section's own
    code (:func:`bias_cell`): 14 demo-like classes at 14 % prevalence, three random slices of the
    clips (the condition columns) or three voice groups of class 0's positives (a column that
    describes a class), one group with a weaker separation; the truth is the population AP the
    prevalence matching targets (binormal AP at the group's separation and the class's overall
    prevalence). 600 clips as configs/ci_quick.toml, 1200 as configs/demo.toml. Group rows:
    percentile (before) and BCa at Hesterberg's expanded level (now); class rows below ``min_positives``: percentile (before) and
    none (now). Run on its own (``--studies bias``, not in the default list).
``groupdrop``
    The Domain Shift section's per-group drops (:func:`factsheet.domain_shift.groups.group_drops`): each
    group's paired mAP drop and its extra drop against the most resilient group, three voice-type-like groups
    of 30 (the demo's 28-32) or 20 clips of 400, one group hurt more or none; truth by binormal AP at the
    class's prevalence (a group's positives against every negative). Unchanged percentile intervals.
``natural``
    The natural shift (:func:`factsheet.domain_shift.natural.shift_numbers`): each side's mAP and mean AUC,
    the target's prevalence-matched mAP and the unpaired gaps, at the demo's 1200 and 600 clips with the
    target's class mix (:data:`NATURAL_TARGET_PREVALENCE`), the target as separable as the source or less.
``explanation``
    The Explanation section's means over clips (:func:`factsheet.explanation.stats.mean_interval`): per-clip
    values from known distributions (:data:`EXPLANATION_DISTRIBUTIONS`) at 2-28 clips; the percentile
    bootstrap (before) and the studentised bootstrap (now, "insufficient evidence" below 5 clips).
``fitted``
    The fitted value at k of each percentile (:func:`attacks.curves.fitted_value_ci`): per-clip norms over T = 10
    iterations from a known curve plus noise (:data:`FITTED_CELLS`: one curve for every clip, or a decay rate of
    its own per clip), the truth the population percentile after k iterations (analytic, or from 2 x 10^6
    draws); k = 11 as printed, k = 20 for the rule that prints no interval past T + 1.
``accuracy``
    The Bias section's single-label accuracy (:func:`accuracy_cell`): two groups of 20 / 50 / 200 clips,
    each clip's top-1 class right with its group's probability (0.7, 0.9, 0.97 in both groups; 0.97
    against 0.9, 0.9 against 0.7), through the section's own code: a group's accuracy, the paired
    percentile bootstrap (before) and Clopper-Pearson (now), and the accuracy disparity against the
    best group, percentile (before) and Newcombe's hybrid score interval (now), with the findings of
    each; then the exact coverage of both new intervals, a sum over every outcome
    (:func:`accuracy_exact_coverage`). Run on its own (``--studies accuracy``, not in the default list).

The last five number their cells on their own (a base per study plus the cell's place in it).

Run::

    PYTHONPATH=. .venv/bin/python bench/coverage.py [--reps 200] [--resamples 1000] [--quick]
    PYTHONPATH=. .venv/bin/python bench/coverage.py --studies demo --reps 600   # the README's R = 600 cells
    PYTHONPATH=. .venv/bin/python bench/coverage.py --studies bias              # the Bias section's cells
    PYTHONPATH=. .venv/bin/python bench/coverage.py --studies groupdrop         # 9 min
    PYTHONPATH=. .venv/bin/python bench/coverage.py --studies natural           # 30-40 min: both methods, two cells
    PYTHONPATH=. .venv/bin/python bench/coverage.py --studies explanation --reps 1000   # 3 min
    PYTHONPATH=. .venv/bin/python bench/coverage.py --studies fitted              # 7 min
    PYTHONPATH=. .venv/bin/python bench/coverage.py --studies accuracy --reps 500       # 10 min
    PYTHONPATH=. .venv/bin/python bench/coverage.py --before-after SAVED_OUTPUT.txt
    # chosen cells only (seeds unchanged), R = 600, every replication saved; the natural study's BCa alone
    PYTHONPATH=. .venv/bin/python bench/coverage.py --studies bias,dprime --cells 701,702,703,603 --reps 600 \
        --dump bias.json                                                                   # 18 min
    PYTHONPATH=. .venv/bin/python bench/coverage.py --studies natural --cells 6001 --natural-methods bca \
        --reps 600 --dump natural.json
    PYTHONPATH=. .venv/bin/python bench/coverage.py --merge part1.json part2.json      # parts of --first-rep runs

Besides the coverage table, every run prints per cell the estimator's bias relative to its spread
(``mean(estimate - truth) / sd``) and its misses below / above the truth (:func:`diagnostics`).
``--candidates`` adds, for the Bias cells, the plain BCa at the nominal level (printed until the R = 600 run
showed 91.8-92.2 % for voice groups) on the same replicates.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import numpy as np
from scipy import integrate
from scipy.special import ndtr, ndtri

from attacks.curves import (MAX_STEPS_PAST_T, bootstrap_percentile_ci, fit_percentile_table, fitted_value_ci,
                           percentile_ci, percentiles_with_failures)
from factsheet.bias.groups import Group
from factsheet.bias.stats import group_level, group_replicates
from factsheet.config import BiasConfig
from factsheet.metrics import bootstrap_tagging_ci, percentile_interval
from factsheet.significance import DIFFERENCE_INTERVAL

CONFIDENCE = 0.95
FLAG_BELOW = 0.93
CLASS_D = np.array([0.5, 1.0, 1.5, 2.0])
PERCENTILES = np.array([5.0, 10.0, 25.0, 50.0])
LOGNORMAL = (0.0, 1.0)


# --------------------------------------------------------------------------------------
# Known truths
# --------------------------------------------------------------------------------------


def binormal_auc(d: float | np.ndarray) -> float | np.ndarray:
    """True AUC of the binormal model: negatives N(0, 1), positives N(d, 1).

    Parameters
    ----------
    d : float or ndarray
        Separation of the means.

    Returns
    -------
    float or ndarray
        ``Phi(d / sqrt 2)``.
    """
    return ndtr(np.asarray(d, dtype=float) / math.sqrt(2.0))


def binormal_ap(d: float, prevalence: float) -> float:
    """Population average precision of the binormal model, by numerical quadrature.

    AP is the mean, over positive scores ``s``, of the precision of the threshold ``s``:
    ``pi S1(s) / (pi S1(s) + (1 - pi) S0(s))`` with ``S1``, ``S0`` the survival functions of
    the positives and negatives. The sample AP (step-wise, as scikit-learn) converges to it.

    Parameters
    ----------
    d : float
        Separation of the means.
    prevalence : float
        Share of positives, in (0, 1).

    Returns
    -------
    float
    """
    pi = float(prevalence)

    def integrand(t: float) -> float:  # scipy.special, not scipy.stats.norm: the same values, 50 times faster
        s1, s0 = ndtr(d - t), ndtr(-t)
        return math.exp(-0.5 * (t - d) ** 2) / math.sqrt(2.0 * math.pi) * pi * s1 / (pi * s1 + (1.0 - pi) * s0)

    value, _ = integrate.quad(integrand, d - 12.0, d + 12.0, limit=200, epsabs=1e-12)
    return float(value)


def mixture_percentile(p: float | np.ndarray, failure_share: float, mu: float = LOGNORMAL[0],
                       sigma: float = LOGNORMAL[1]) -> np.ndarray:
    """True percentile of a log-normal with a share of failures at ``+inf``.

    Parameters
    ----------
    p : float or ndarray
        Percentiles in [0, 100].
    failure_share : float
        Share of ``+inf`` values, in [0, 1).
    mu, sigma : float
        Parameters of the log-normal's logarithm.

    Returns
    -------
    ndarray
        ``exp(mu + sigma Phi^-1(p / 100 / (1 - f)))``, ``+inf`` where ``p / 100 >= 1 - f``.
    """
    u = np.asarray(p, dtype=float) / 100.0 / (1.0 - failure_share)
    with np.errstate(divide="ignore"):
        return np.where(u < 1.0, np.exp(mu + sigma * ndtri(np.minimum(u, 1.0))), np.inf)


# --------------------------------------------------------------------------------------
# Cells
# --------------------------------------------------------------------------------------


@dataclass
class Tally:
    """Interval outcomes of one cell and statistic.

    Attributes
    ----------
    statistic : str
    n : int
        Clips (per group for a disparity).
    setting : str
        Prevalence, failure share or null / gap.
    covered, widths : list
        One entry per replication with a defined interval.
    reps : int
        Replications run.
    errors : list
        Point estimate minus truth, one entry per replication with a defined interval (NaN where the
        cell does not pass the estimate).
    misses : list of int
        Per replication with a defined interval: 0 covered, -1 the interval lies below the truth
        (``high < truth``), +1 above it (``low > truth``).
    """

    statistic: str
    n: int
    setting: str
    reps: int = 0
    covered: list | None = None
    widths: list | None = None
    errors: list | None = None
    misses: list | None = None

    def add(self, low: float, high: float, truth: float, estimate: float = float("nan")) -> None:
        """Record one replication's interval (NaN bounds: no interval) and its point estimate."""
        self.reps += 1
        if self.covered is None:
            self.covered, self.widths = [], []
        if self.errors is None:
            self.errors, self.misses = [], []
        if math.isnan(low) or math.isnan(high):
            return
        self.covered.append(bool(low <= truth <= high))
        self.widths.append(high - low)
        self.errors.append(float(estimate) - float(truth))
        self.misses.append(-1 if high < truth else (1 if low > truth else 0))

    def merge(self, other: "Tally") -> None:
        """Append ``other``'s replications (the same cell and statistic, other data sets)."""
        self.reps += other.reps
        for name in ("covered", "widths", "errors", "misses"):
            setattr(self, name, (getattr(self, name) or []) + (getattr(other, name) or []))

    def estimator_bias(self) -> tuple[float, float, int, int]:
        """``(mean(estimate - truth), that over sd(estimate - truth), misses below, misses above)``.

        The sd of the error is the sd of the estimate where the truth is the same in every data set (and
        close to it where the truth depends on the data set's evaluable classes). NaN without estimates.
        """
        e = np.asarray(self.errors or [], dtype=float)
        m = np.asarray(self.misses or [], dtype=int)
        e = e[np.isfinite(e)]
        mean = float(e.mean()) if e.size else float("nan")
        sd = float(e.std(ddof=1)) if e.size > 1 else float("nan")
        return mean, mean / sd if sd > 0 else float("nan"), int((m < 0).sum()), int((m > 0).sum())


def _rng(seed: int, cell: int, rep: int) -> np.random.Generator:
    """The data generator of one replication of one cell."""
    return np.random.default_rng([seed, cell, rep])


def performance_intervals(y: np.ndarray, s: np.ndarray, *, n_resamples: int, confidence: float, seed: int,
                          methods: tuple[str, ...]) -> dict[str, dict]:
    """:func:`bootstrap_tagging_ci` with each of ``methods``: ``"percentile"`` as before issue 17, item 2
    (no minimum support), ``"bca"`` as the FactSheet now prints it (with ``MIN_CLASS_SUPPORT``)."""
    return {m: bootstrap_tagging_ci(y, s, n_resamples=n_resamples, confidence=confidence, seed=seed, method=m,
                                    **({"min_class_support": 0} if m == "percentile" else {}))
            for m in methods}


def tagging_cell(n: int, prevalence: float, *, reps: int, resamples: int, seed: int, cell: int,
                 truth_ap: np.ndarray, class_d: np.ndarray = CLASS_D) -> list[Tally]:
    """Mean AUC and mAP intervals on binormal data: the percentile bootstrap (before issue 17,
    item 2) and the FactSheet's BCa interval, from the same replicates.

    Parameters
    ----------
    n : int
        Clips.
    prevalence : float
    reps, resamples, seed, cell : int
        Replications, bootstrap resamples, base seed, cell index (for the seeds).
    truth_ap : ndarray, shape (n_classes,)
        Population AP of each class at this prevalence.
    class_d : ndarray, shape (n_classes,)
        Separation of each class.

    Returns
    -------
    list of Tally
        ``[mean AUC percentile, mAP percentile, mean AUC BCa, mAP BCa]``.
    """
    auc_t = binormal_auc(class_d)
    setting = f"prev {prevalence:g}" + ("" if class_d is CLASS_D else f", {class_d.size} classes")
    out = [Tally(f"{stat} ({method})", n, setting) for method in ("percentile", "BCa") for stat in ("mean AUC", "mAP")]
    for r in range(reps):
        rng = _rng(seed, cell, r)
        y = rng.random((n, class_d.size)) < prevalence
        s = rng.standard_normal((n, class_d.size)) + class_d * y
        ci = performance_intervals(y.astype(np.int8), s, n_resamples=resamples, confidence=CONFIDENCE,
                                   seed=seed * 1_000_003 + cell * 10_007 + r, methods=("percentile", "bca"))
        ev = (y.sum(axis=0) > 0) & (y.sum(axis=0) < n)
        t_auc = float(auc_t[ev].mean()) if ev.any() else float("nan")
        t_ap = float(truth_ap[ev].mean()) if ev.any() else float("nan")
        for i, method in enumerate(("percentile", "bca")):
            out[2 * i].add(ci[method]["mean_auc"].low, ci[method]["mean_auc"].high, t_auc)
            out[2 * i + 1].add(ci[method]["mAP"].low, ci[method]["mAP"].high, t_ap)
    return out


def percentile_cell(n: int, failure_share: float, *, reps: int, resamples: int, seed: int,
                    cell: int) -> list[Tally]:
    """Perturbation-percentile intervals on a log-normal mixture: the percentile bootstrap of
    :func:`bootstrap_percentile_ci` (before issue 17, item 2) and the order-statistic interval of
    :func:`attacks.curves.percentile_ci` (what ``summarise_norm`` now puts in ``ci_low`` /
    ``ci_high``), on the same data.

    Parameters
    ----------
    n : int
        Attacked clips.
    failure_share : float
        Share of clips not fooled (``+inf``).
    reps, resamples, seed, cell : int
        As for :func:`tagging_cell`.

    Returns
    -------
    list of Tally
        One per percentile of :data:`PERCENTILES` and method (bootstrap first). An infinite upper
        bound covers a finite truth; its width is ``+inf``. A lower bound of ``-inf`` (too few
        clips: the FactSheet prints "insufficient evidence") is no interval.
    """
    truth = mixture_percentile(PERCENTILES, failure_share)
    out = [Tally(f"p{int(p)} norm ({method})", n, f"fail {failure_share:g}")
           for method in ("percentile", "order statistic") for p in PERCENTILES]
    k = PERCENTILES.size
    for r in range(reps):
        rng = _rng(seed, cell, r)
        x = rng.lognormal(*LOGNORMAL, size=n)
        x[rng.random(n) < failure_share] = np.inf
        lo, hi = bootstrap_percentile_ci(x, percentiles=PERCENTILES, n_resamples=resamples,
                                         confidence=CONFIDENCE, seed=seed * 1_000_003 + cell * 10_007 + r)
        olo, ohi = percentile_ci(x, percentiles=PERCENTILES, confidence=CONFIDENCE)
        olo = np.where(np.isneginf(olo), np.nan, olo)
        for i in range(k):
            out[i].add(float(lo[i]), float(hi[i]), float(truth[i]))
            out[k + i].add(float(olo[i]), float(ohi[i]), float(truth[i]))
    return out


def disparity_cell(group_size: int, d_other: float, *, reps: int, resamples: int, seed: int,
                   cell: int, d_ref: float = 1.5) -> list[Tally]:
    """Intervals of the mean-AUC difference of two groups and of the second group's mean AUC, as
    the Bias section makes them (paired percentile bootstrap, bias rule).

    Parameters
    ----------
    group_size : int
        Clips per group (two groups).
    d_other : float
        Separation in the second group (the first has ``d_ref``).
    reps, resamples, seed, cell : int
        As for :func:`tagging_cell`.
    d_ref : float, default 1.5

    Returns
    -------
    list of Tally
        ``[disparity, group mean AUC]``. Truths ``Phi(d_other / sqrt 2) - Phi(d_ref / sqrt 2)`` and
        ``Phi(d_other / sqrt 2)`` (the same for every class, so for every set of compared classes;
        a group's AUC is its positives against all negatives, which are N(0, 1) in both groups).
    """
    mp = BiasConfig().min_positives
    truth = float(binormal_auc(d_other) - binormal_auc(d_ref))
    setting = "null" if d_other == d_ref else f"gap {truth:+.3f}"
    tally, level = Tally("AUC disparity", group_size, setting), Tally("group mean AUC", group_size, setting)
    member = np.repeat([True, False], group_size)
    groups = [Group(("g",), "a", member), Group(("g",), "b", ~member)]
    d = np.where(member, d_ref, d_other)[:, None]
    for r in range(reps):
        rng = _rng(seed, cell, r)
        y = rng.random((2 * group_size, CLASS_D.size)) < 0.5
        s = rng.standard_normal(y.shape) + d * y
        res = group_replicates(y_true=y.astype(np.int8), y_score=s, groups=groups, n_bootstrap=resamples,
                               seed=seed * 1_000_003 + cell * 10_007 + r)
        pt, rp = res["point"], res["reps"]
        common = (pt[0]["n_pos"] >= mp) & (pt[1]["n_pos"] >= mp)
        other = group_level(pt[1], rp[1], common)["mean_auc"][1]
        diff = other - group_level(pt[0], rp[0], common)["mean_auc"][1]
        iv = percentile_interval(diff, confidence=CONFIDENCE, **DIFFERENCE_INTERVAL)
        tally.add(float(iv.low), float(iv.high), truth)
        iv = percentile_interval(other, confidence=CONFIDENCE, **DIFFERENCE_INTERVAL)
        level.add(float(iv.low), float(iv.high), float(binormal_auc(d_other)))
    return [tally, level]


def drop_cell(n: int, prevalence: float, keep: float, *, reps: int, resamples: int, seed: int, cell: int,
              class_d: np.ndarray | None = None, rho: float = 0.8) -> list[Tally]:
    """The Domain Shift section's paired drops of mAP and mean AUC (clean minus corrupted, one cell of
    the corruption suite), as :mod:`factsheet.domain_shift.stats` makes them.

    Clean scores ``e0 + d y``, corrupted scores ``e1 + keep d y`` with ``e0``, ``e1`` standard normal,
    correlated ``rho`` (the same clips heard twice); both sides are binormal, so the true drop of a
    class is ``AP(d) - AP(keep d)`` at the prevalence (and ``Phi(d / sqrt 2) - Phi(keep d / sqrt 2)``
    for AUC), averaged over the data set's evaluable classes.

    Parameters
    ----------
    n : int
        Corrupted clips.
    prevalence : float
    keep : float
        Share of the separation left by the corruption (1: a harmless corruption, true drop 0).
    reps, resamples, seed, cell : int
        As for :func:`tagging_cell`.
    class_d : ndarray, shape (n_classes,), optional
        Default :data:`DEMO_D`.
    rho : float
        Correlation of the clean and corrupted noise.

    Returns
    -------
    list of Tally
        ``[mAP drop, mean AUC drop]`` with the percentile bootstrap (before), then with BCa (what the
        FactSheet prints).
    """
    from factsheet.domain_shift import stats as shift_stats

    class_d = DEMO_D if class_d is None else class_d
    ap0 = np.array([binormal_ap(d, prevalence) for d in class_d])
    ap1 = np.array([binormal_ap(keep * d, prevalence) for d in class_d])
    auc0, auc1 = binormal_auc(class_d), binormal_auc(keep * class_d)
    setting = f"prev {prevalence:g}, {class_d.size} classes, " + ("harmless (true drop 0)" if keep == 1 else
                                                                  f"separation x {keep:g}")
    tallies = {m: (Tally(f"mAP drop ({m})", n, setting), Tally(f"mean AUC drop ({m})", n, setting))
               for m in ("percentile", "BCa")}
    for r in range(reps):
        rng = _rng(seed, cell, r)
        y = rng.random((n, class_d.size)) < prevalence
        e0 = rng.standard_normal(y.shape)
        e1 = rho * e0 + math.sqrt(1.0 - rho * rho) * rng.standard_normal(y.shape)
        s0, s1 = e0 + class_d * y, e1 + keep * class_d * y
        sd = seed * 1_000_003 + cell * 10_007 + r
        y8 = y.astype(np.int8)
        clean = shift_stats.clean_reference(y8, s0, n_resamples=resamples, seed=sd)
        ev = (y.sum(axis=0) > 0) & (y.sum(axis=0) < n)
        for method, (t_map, t_auc) in tallies.items():
            out = shift_stats.cell_drops(y8, s1, clean=clean, n_resamples=resamples, seed=sd, confidence=CONFIDENCE,
                                         method=method.lower())
            for tally, key, t0, t1 in ((t_map, "mAP", ap0, ap1), (t_auc, "mean_auc", auc0, auc1)):
                ci = out[key]["drop_ci"]
                low, high = (float("nan") if v is None else v for v in (ci["low"], ci["high"]))
                tally.add(low, high, float(t0[ev].mean() - t1[ev].mean()))
    return [*tallies["percentile"], *tallies["BCa"]]


def ratio_cell(n: int, log_ratio: float, *, reps: int, resamples: int, seed: int, cell: int,
               failure_share: float = 0.1) -> list[Tally]:
    """The Robustness section's median-ratio disparity of two groups of attacked clips, as
    :mod:`attacks.groups` makes it (each group's median on its own bootstrap resamples, the interval of
    the log ratio by the bias rule of :func:`percentile_interval`).

    Norms log-normal (sigma = 1) with ``failure_share`` of each group not fooled (``+inf``); group b's
    log-mean is ``log_ratio`` above group a's, so the true log ratio of the medians (b over a) is
    ``log_ratio`` (the same failure share scales both medians alike).

    Parameters
    ----------
    n : int
        Attacked clips per group.
    log_ratio : float
        True log(median b / median a); 0 under the null.
    reps, resamples, seed, cell : int
        As for :func:`tagging_cell`.
    failure_share : float

    Returns
    -------
    list of Tally
        ``[log median ratio]``.
    """
    from attacks.groups import GroupSettings, _disparity, _group

    settings = GroupSettings(iterations=1, percentiles=(50.0,), min_per_group=1, n_bootstrap=resamples,
                             confidence=CONFIDENCE, seed=seed)
    setting = "null" if log_ratio == 0 else f"ratio {math.exp(log_ratio):.2g}"
    tally = Tally("log median ratio", n, setting)
    for r in range(reps):
        rng = _rng(seed, cell, r)
        x = {}
        for name, mu in (("a", 0.0), ("b", log_ratio)):
            v = rng.lognormal(mu, 1.0, size=n)
            v[rng.random(n) < failure_share] = np.inf
            x[name] = v
        ga, gb = (_group(x[k], np.ones(n), name=k, settings=settings,
                         rng=np.random.default_rng([seed, cell, r, i])) for i, k in enumerate("ab"))
        if not (math.isfinite(ga.median) and math.isfinite(gb.median)):
            tally.add(float("nan"), float("nan"), log_ratio)
            continue
        row = _disparity(gb, ga, norm="l2", column="g", settings=settings)
        low, high = (float("nan") if v is None else v for v in (row["ci_low"], row["ci_high"]))
        tally.add(low, high, log_ratio)
    return [tally]


#: Fitted-value cells (``--studies fitted``): (curve model, clips, failure share, per-iteration noise sigma, k),
#: T = 10 iterations. ``"common"``: every clip's norm follows one curve, ``x_i g(t) exp(sigma e_it)`` with
#: ``g(t) = 1 / t + 0.5`` (a power_floor curve); ``"decay"``: each clip decays at its own rate,
#: ``x_i (1 + 4 t^-b_i) exp(sigma e_it)``, ``b_i ~ U(0.3, 2)``, so the population percentile's curve is in no
#: family. ``x_i`` log-normal (0, 1), ``e_it`` standard normal; a failed clip is +inf at every iteration.
#: k = 11 is the seed's (one past T); k = 20 measures the rule that prints no interval further out.
FITTED_CELLS = (("common", 16, 0.1, 0.3, 11), ("common", 32, 0.1, 0.3, 11), ("common", 80, 0.1, 0.3, 11),
                ("common", 256, 0.1, 0.3, 11), ("common", 1024, 0.1, 0.3, 11),
                ("decay", 16, 0.1, 0.3, 11), ("decay", 32, 0.1, 0.3, 11), ("decay", 80, 0.1, 0.3, 11),
                ("decay", 256, 0.1, 0.3, 11), ("decay", 1024, 0.1, 0.3, 11),
                ("decay", 80, 0.3, 0.6, 11), ("decay", 256, 0.3, 0.6, 11),
                ("decay", 80, 0.1, 0.3, 20), ("decay", 256, 0.1, 0.3, 20))

#: Seed offset of the fitted-value cells.
FITTED_CELL_BASE = 9500
FITTED_ITERATIONS = 10
FITTED_TRUTH_DRAWS = 2_000_000


def _fitted_norms(model: str, n: int, failure_share: float, sigma: float, t: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Norms of ``n`` clips at iterations ``t`` under a curve model of :data:`FITTED_CELLS`: shape (n, t.size)."""
    x = rng.lognormal(*LOGNORMAL, size=n)[:, None]
    if model == "common":
        curve = (1.0 / t + 0.5)[None, :]
    elif model == "decay":
        curve = 1.0 + 4.0 * t[None, :] ** (-rng.uniform(0.3, 2.0, size=n)[:, None])
    else:
        raise ValueError(f"unknown curve model {model!r}")
    out = x * curve * np.exp(sigma * rng.standard_normal((n, t.size)))
    out[rng.random(n) < failure_share] = np.inf
    return out


def fitted_truth(model: str, failure_share: float, sigma: float, k: float, *, seed: int) -> np.ndarray:
    """Population percentiles (:data:`PERCENTILES`) of the norms after k iterations.

    ``"common"``: analytic, ``g(k)`` times the percentile of the failure mixture of a log-normal with
    ``sqrt(1 + sigma^2)`` (:func:`mixture_percentile`); ``"decay"``: the percentiles of
    :data:`FITTED_TRUTH_DRAWS` seeded draws (checked against the analytic value of ``"common"`` in
    ``tests/test_coverage_quick.py``).
    """
    if model == "common":
        return (1.0 / k + 0.5) * mixture_percentile(PERCENTILES, failure_share, sigma=math.sqrt(1.0 + sigma ** 2))
    big = _fitted_norms(model, FITTED_TRUTH_DRAWS, failure_share, sigma, np.array([float(k)]),
                        np.random.default_rng([seed, 99]))
    return percentiles_with_failures(big[:, 0], percentiles=PERCENTILES)


def fitted_cell(model: str, n: int, failure_share: float, sigma: float, k: int, *, reps: int, resamples: int,
                seed: int, cell: int) -> list[Tally]:
    """Intervals of the fitted values at k (:func:`attacks.curves.fitted_value_ci`, what ``summarise_norm`` prints
    as ``fitted_at_k_ci_low`` / ``_high``) against the population percentile after k iterations.

    Each data set: ``n`` clips' norms over T = :data:`FITTED_ITERATIONS` iterations from the curve model, the
    FactSheet's :func:`~attacks.curves.fit_percentile_table` and its interval. Beyond one iteration past T the
    FactSheet prints none; those cells measure the interval it would be (``max_steps_past_t=None``), the reason
    for the rule. ``resamples`` is unused (no resampling).

    Returns
    -------
    list of Tally
        One per percentile of :data:`PERCENTILES`.
    """
    del resamples
    t = np.arange(1.0, FITTED_ITERATIONS + 1.0)
    truth = fitted_truth(model, failure_share, sigma, k, seed=seed)
    printed = k <= FITTED_ITERATIONS + MAX_STEPS_PAST_T
    method = "order statistic moved along the fit" if printed else "not printed: order statistic moved along the fit"
    setting = (f"{'one curve 1/t + 0.5' if model == 'common' else 'own decay per clip'}, fail {failure_share:g}, "
               f"noise {sigma:g}, k = {k}")
    out = [Tally(f"fitted p{int(p)} at k ({method})", n, setting) for p in PERCENTILES]
    for r in range(reps):
        x = _fitted_norms(model, n, failure_share, sigma, t, _rng(seed, cell, r))
        fits = fit_percentile_table(x, percentiles=PERCENTILES, k=k)
        lo, hi, _ = fitted_value_ci(x, fits, percentiles=PERCENTILES, confidence=CONFIDENCE,
                                    max_steps_past_t=MAX_STEPS_PAST_T if printed else None)
        for i in range(PERCENTILES.size):
            v = fits[i].value_at_k
            out[i].add(float(lo[i]), float(hi[i]), float(truth[i]), float("nan") if v is None else float(v))
    return out


def fitted_study(cells: tuple, *, reps: int, resamples: int, seed: int) -> list[Tally]:
    """Every cell of ``cells`` (:data:`FITTED_CELLS`) by :func:`fitted_cell`, seeded by its place there."""
    out: list[Tally] = []
    for c in cells:
        out += fitted_cell(*c, reps=reps, resamples=resamples, seed=seed, cell=FITTED_CELL_BASE + FITTED_CELLS.index(c))
    return out


#: Bias cells (``--studies bias``): (kind, clips, group factors). ``"slices"``: every clip in one of
#: three equal random slices (the Conditions columns n_events / snr_bucket: ci_quick's 174-218 clips
#: per slice at 600, the demo's about 400 at 1200), the third slice's positives with 0.7 of the
#: separation; ``"described"``: the positives of class 0 (Speech) split into three voice-type groups
#: (ci_quick's 21-26 clips at 600, the demo's about twice that at 1200), the third with 0.6 of the
#: separation.
BIAS_CELLS = (("slices", 600, (1.0, 1.0, 0.7)), ("slices", 1200, (1.0, 1.0, 0.7)),
              ("described", 600, (1.0, 1.0, 0.6)), ("described", 1200, (1.0, 1.0, 0.6)))

#: Seed offset of the Bias cells (not the shared cell counter: their seeds stay put when cells are added).
BIAS_CELL_BASE = 700


def _bias_data(kind: str, n: int, factors: tuple, rng: np.random.Generator, *, prevalence: float,
               class_d: np.ndarray) -> tuple[np.ndarray, np.ndarray, list, np.ndarray]:
    """One data set of a Bias cell: labels, scores, groups and each group's separation per class.

    Returns
    -------
    y : ndarray of bool, shape (n, m)
    s : ndarray, shape (n, m)
    groups : list of Group
    sep : ndarray, shape (n_groups, m)
        Separation of the group's positives of each class (their scores N(sep, 1); every negative N(0, 1)).
    """
    m = class_d.size
    y = rng.random((n, m)) < prevalence
    label = rng.integers(0, len(factors), n)
    f = np.asarray(factors, dtype=float)
    sep = np.tile(class_d, (len(factors), 1))
    if kind == "slices":
        clip_sep = class_d[None, :] * f[label][:, None]
        sep *= f[:, None]
        groups = [Group(("slice",), f"s{g}", label == g) for g in range(len(factors))]
    elif kind == "described":
        clip_sep = np.tile(class_d, (n, 1))
        clip_sep[:, 0] *= f[label]
        sep[:, 0] *= f
        groups = [Group(("voice",), f"v{g}", y[:, 0] & (label == g)) for g in range(len(factors))]
    else:
        raise ValueError(f"unknown Bias cell kind {kind!r}")
    s = rng.standard_normal((n, m)) + clip_sep * y
    return y, s, groups, sep


def bias_cell(kind: str, n: int, factors: tuple, *, reps: int, resamples: int, seed: int, cell: int,
              prevalence: float = 0.14, class_d: np.ndarray | None = None, first_rep: int = 0,
              candidates: bool = False) -> list[Tally]:
    """The Bias section's group mAP, mean AUC, d', mAP disparity and per-class group AP / AUC, as it
    prints them.

    Each data set goes through the section's own code (:func:`factsheet.bias.section._replicated`,
    ``_group_rows``, ``_class_rows``, ``_tested_disparities``, default :class:`BiasConfig`: 20 clips per
    group, 10 positives per class), so the intervals are the FactSheet's; the group rows' percentile
    intervals of before issue 17 (``_metric`` on the same replicates) beside them. Labels
    Bernoulli(``prevalence``) per clip and class, every negative N(0, 1), a positive of class c in
    group g N(``sep[g, c]``, 1).

    The truth of a group's AP for class c is the population value the prevalence matching targets:
    the group's positives against all negatives, each negative weighted by the group's share of the
    class's positives, so the precision at threshold t is ``pi S_g(t) / (pi S_g(t) + (1 - pi) S_0(t))``
    with pi the class's prevalence in the whole set: :func:`binormal_ap` at ``sep[g, c]`` and
    ``prevalence`` (checked against 2 x 10^5 clips in ``tests/test_coverage_quick.py``); its AUC is
    ``Phi(sep / sqrt 2)``. A group's mAP (mean AUC) truth is the mean over the classes the row averages
    (those with ``min_positives`` positives in the group, or in both groups for a disparity); d' truth
    ``sqrt 2 Phi^-1(true mean AUC)``.

    Parameters
    ----------
    kind : {"slices", "described"}
        See :data:`BIAS_CELLS`.
    n : int
        Clips.
    factors : tuple of float
        Share of the separation per group (group 2 the weaker one).
    reps, resamples, seed, cell : int
        As for :func:`tagging_cell`.
    prevalence : float
    class_d : ndarray, optional
        Default :data:`DEMO_D`.
    first_rep : int
        Replications ``first_rep .. first_rep + reps - 1`` (as :func:`natural_cell`: a cell can run in parts).
    candidates : bool
        Also the group rows and the weaker group's class-0 cells with the plain BCa at the nominal level (what the
        section printed before it took Hesterberg's expanded level) on the same replicates.

    Returns
    -------
    list of Tally
        Group mAP, mean AUC and d' of group 0 (full separation) and group 2 (weaker), percentile
        (before) then BCa (now); the mAP disparity of group 2 against the best group and of the
        other full-separation group against the best (a null pair); AP and AUC of class 0 in group 2
        (its class row; percentile before, BCa now) and, ``"described"`` only, that class's AP
        disparity and the AP and AUC of class 1 in group 0 when it has fewer than ``min_positives``
        positives there (percentile before, none now: insufficient evidence).
    """
    from factsheet.bias.section import _class_rows, _group_rows, _replicated, _tested_disparities
    from factsheet.bias.stats import _bca_metric, _metric, group_level_jackknife
    from factsheet.config import MetricsConfig

    class_d = DEMO_D if class_d is None else class_d
    settings = BiasConfig()
    mp = settings.min_positives
    unit = "slice" if kind == "slices" else "voice group"
    setting = ("3 random slices" if kind == "slices" else "3 voice groups of class 0") + f", weaker x {factors[-1]:g}"
    names = [f"c{j}" for j in range(class_d.size)]
    nan = (float("nan"), float("nan"))
    keys = [f"group {stat}, {role} {unit} ({m})" for m in ("percentile", "BCa expanded") for role in ("full", "weaker")
            for stat in ("mAP", "mean AUC", "d'")]
    keys += [f"mAP disparity, weaker {unit} vs best", "mAP disparity, null pair"]
    keys += [f"class {stat}, weaker {unit}, class 0 ({m})" for m in ("percentile", "BCa expanded")
             for stat in ("AP", "AUC")]
    if kind == "described":  # class 1 in a voice group: 0-9 positives
        keys += [f"class AP disparity, weaker {unit}, class 0"]
        keys += [f"class {stat}, < {mp} positives ({m})" for m in ("percentile", "none") for stat in ("AP", "AUC")]
    keys += [f"group {stat}, {role} {unit} (plain BCa)" for role in ("full", "weaker")
             for stat in ("mAP", "mean AUC", "d'") if candidates]
    keys += [f"class {stat}, weaker {unit}, class 0 (plain BCa)" for stat in ("AP", "AUC") if candidates]
    if candidates and kind == "described":  # class 1 in a voice group when it reaches min_positives: a printed cell
        keys += [f"class {stat}, >= {mp} positives ({m})" for m in ("BCa expanded", "plain BCa")
                 for stat in ("AP", "AUC")]
    t = {k: Tally(k, n, setting) for k in keys}
    true_ap = true_auc = None  # every data set of a cell has the same separations
    for r in range(first_rep, first_rep + reps):
        rng = _rng(seed, cell, r)
        y, s, groups, sep = _bias_data(kind, n, factors, rng, prevalence=prevalence, class_d=class_d)
        if true_ap is None:
            ap_of = {v: binormal_ap(v, prevalence) for v in np.unique(sep)}
            true_ap = np.vectorize(ap_of.__getitem__)(sep)
            true_auc = binormal_auc(sep)
        mc = MetricsConfig(bootstrap_resamples=resamples, confidence=CONFIDENCE,
                           seed=seed * 1_000_003 + cell * 10_007 + r)
        data = _replicated(y, s, groups=groups, names=names, bootstrap=mc, jackknife=True)
        rows = _group_rows(data, settings=settings, confidence=CONFIDENCE, robustness={})
        for gi, role in ((0, "full"), (2, "weaker")):
            cls = data.point[gi]["n_pos"] >= mp
            level = group_level(data.point[gi], data.reps[gi], cls)
            mean_auc = float(true_auc[gi, cls].mean()) if cls.any() else 0.0
            truths = {"mAP": float(true_ap[gi, cls].mean()) if cls.any() else 0.0, "mean_auc": mean_auc,
                      "d_prime": float(math.sqrt(2.0) * ndtri(mean_auc))}
            for stat, key in (("mAP", "mAP"), ("mean AUC", "mean_auc"), ("d'", "d_prime")):
                shown = not rows[gi]["insufficient_evidence"] and cls.any()  # the report prints the row
                before = _metric(*level[key], CONFIDENCE) if shown else {}
                t[f"group {stat}, {role} {unit} (percentile)"].add(*_bounds(before), truths[key], _value(before))
                now = rows[gi]["metrics"][key] if shown else {}
                t[f"group {stat}, {role} {unit} (BCa expanded)"].add(*_bounds(now), truths[key], _value(now))
                if candidates:  # the plain BCa at the nominal level, printed until the R = 600 run
                    jack = group_level_jackknife(data.jack[gi], cls)[key]
                    alt = _bca_metric(level[key][0], level[key][1], jack, CONFIDENCE) if shown else {}
                    t[f"group {stat}, {role} {unit} (plain BCa)"].add(*_bounds(alt), truths[key], _value(alt))
        by = {(c["group"], c["class"]): c for c in _class_rows(data, settings=settings, confidence=CONFIDENCE)}
        weak = by.get((groups[2].name, "c0"))
        for stat, key, truth in (("AP", "ap", true_ap[2, 0]), ("AUC", "auc", true_auc[2, 0])):
            shown = weak is not None and not weak["insufficient_evidence"]
            before = _metric(weak[key]["value"], data.reps[2][key][:, 0], CONFIDENCE) if shown else {}
            t[f"class {stat}, weaker {unit}, class 0 (percentile)"].add(*_bounds(before), float(truth), _value(before))
            t[f"class {stat}, weaker {unit}, class 0 (BCa expanded)"].add(*(_bounds(weak[key]) if shown else nan), float(truth),
                                                                 _value(weak[key]) if shown else float("nan"))
            if candidates:
                alt = (_bca_metric(weak[key]["value"], data.reps[2][key][:, 0], data.jack[2][key][:, 0], CONFIDENCE)
                       if shown else {})
                t[f"class {stat}, weaker {unit}, class 0 (plain BCa)"].add(*_bounds(alt), float(truth), _value(alt))
        thin = by.get((groups[0].name, "c1"))
        if kind == "described" and thin is not None and thin["n_positives"] < mp:
            for stat, key, truth in (("AP", "ap", true_ap[0, 1]), ("AUC", "auc", true_auc[0, 1])):
                before = _metric(thin[key]["value"], data.reps[0][key][:, 1], CONFIDENCE)
                t[f"class {stat}, < {mp} positives (percentile)"].add(*_bounds(before), float(truth), _value(before))
                t[f"class {stat}, < {mp} positives (none)"].add(*_bounds(thin[key]), float(truth), _value(thin[key]))
        elif candidates and kind == "described" and thin is not None:
            for stat, key, truth in (("AP", "ap", true_ap[0, 1]), ("AUC", "auc", true_auc[0, 1])):
                t[f"class {stat}, >= {mp} positives (BCa expanded)"].add(*_bounds(thin[key]), float(truth),
                                                                          _value(thin[key]))
                alt = _bca_metric(thin[key]["value"], data.reps[0][key][:, 1], data.jack[0][key][:, 1], CONFIDENCE)
                t[f"class {stat}, >= {mp} positives (plain BCa)"].add(*_bounds(alt), float(truth), _value(alt))
        disparities, _, _ = _tested_disparities(data, settings=settings, bootstrap=mc)
        index = {g.name: gi for gi, g in enumerate(groups)}
        for d in disparities:
            gi, ref = index[d["group"]], index[d["reference"]]
            if d["class"] is None and d["metric"] == "mAP" and ref != 2:
                name = f"mAP disparity, weaker {unit} vs best" if gi == 2 else "mAP disparity, null pair"
                common = (data.point[gi]["n_pos"] >= mp) & (data.point[ref]["n_pos"] >= mp)
                truth = float(true_ap[gi, common].mean() - true_ap[ref, common].mean()) if common.any() else 0.0
                t[name].add(*_bounds(d), truth, _difference(d))
            elif d["class"] == "c0" and d["metric"] == "ap" and kind == "described" and gi == 2:
                t[f"class AP disparity, weaker {unit}, class 0"].add(*_bounds(d), float(true_ap[2, 0] - true_ap[ref, 0]),
                                                                    _difference(d))
    return list(t.values())


def _bounds(interval: dict) -> tuple[float, float]:
    """``(ci_low, ci_high)`` of a FactSheet interval dict, NaN for a null bound (no interval)."""
    return tuple(float("nan") if interval.get(k) is None else float(interval[k]) for k in ("ci_low", "ci_high"))


def _value(interval: dict, key: str = "value") -> float:
    """The point estimate (``value``) of a FactSheet interval dict, NaN where null or absent."""
    v = interval.get(key)
    return float("nan") if v is None else float(v)


def _difference(row: dict) -> float:
    """The point estimate of a disparity row: its ``difference`` (its ``value`` is the group's own)."""
    return _value(row, "difference")


def dprime_cell(n: int, prevalence: float, *, reps: int, resamples: int, seed: int, cell: int,
                class_d: np.ndarray = CLASS_D, first_rep: int = 0) -> list[Tally]:
    """d' and the mean per-class d' of the Performance section (BCa, as printed) on binormal data.

    The truth of d' is ``sqrt(2) Phi^-1(mean true AUC)`` over the data set's evaluable classes; that
    of the mean per-class d' is the mean of their separations ``d_c`` (a binormal class with unit
    variances and separation d has AUC Phi(d / sqrt 2), so its d' is d).

    Parameters
    ----------
    n : int
        Clips.
    prevalence : float
    reps, resamples, seed, cell : int
        As for :func:`tagging_cell`.
    class_d : ndarray, shape (n_classes,)
    first_rep : int
        Replications ``first_rep .. first_rep + reps - 1`` (as :func:`natural_cell`).

    Returns
    -------
    list of Tally
        ``[d' BCa, mean class d' BCa]``.
    """
    auc_t = binormal_auc(class_d)
    setting = f"prev {prevalence:g}" + ("" if class_d is CLASS_D else f", {class_d.size} classes")
    out = [Tally("d' (BCa)", n, setting), Tally("mean class d' (BCa)", n, setting)]
    for r in range(first_rep, first_rep + reps):
        rng = _rng(seed, cell, r)
        y = rng.random((n, class_d.size)) < prevalence
        s = rng.standard_normal((n, class_d.size)) + class_d * y
        ci = bootstrap_tagging_ci(y.astype(np.int8), s, n_resamples=resamples, confidence=CONFIDENCE,
                                  seed=seed * 1_000_003 + cell * 10_007 + r)
        ev = (y.sum(axis=0) > 0) & (y.sum(axis=0) < n)
        t_dp = float(np.sqrt(2.0) * ndtri(auc_t[ev].mean())) if ev.any() else float("nan")
        t_class = float(class_d[ev].mean()) if ev.any() else float("nan")
        out[0].add(ci["d_prime"].low, ci["d_prime"].high, t_dp, ci["d_prime"].estimate)
        out[1].add(ci["mean_class_d_prime"].low, ci["mean_class_d_prime"].high, t_class,
                   ci["mean_class_d_prime"].estimate)
    return out


def success_rate_coverage(*, clips: tuple = (8, 16, 32, 80), rates: tuple = (0.5, 0.9, 0.99),
                          confidence: float = CONFIDENCE) -> str:
    """Exact coverage of the success-rate intervals (Clopper-Pearson, and Wilson as before), as Markdown rows.

    Coverage at a true rate p is the binomial probability of the outcomes whose interval contains
    p (a sum over every outcome, no simulation); "min" is the minimum over 199 rates from 0.005
    to 0.995.
    """
    from scipy.stats import binom

    from attacks.summary import clopper_pearson_interval

    z = float(ndtri(0.5 + confidence / 2))

    def wilson(k: int, n: int) -> tuple[float, float]:
        c, h = k / n + z * z / (2 * n), z * math.sqrt(k / n * (1 - k / n) / n + z * z / (4 * n * n))
        return (c - h) / (1 + z * z / n), (c + h) / (1 + z * z / n)

    def coverage(n: int, p: float, interval) -> float:
        return float(sum(binom.pmf(k, n, p) for k in range(n + 1) if interval(k, n)[0] <= p <= interval(k, n)[1]))

    def cp(k: int, n: int) -> tuple[float, float]:
        return clopper_pearson_interval(k, n, confidence=confidence)

    def mean_width(n: int, p: float) -> float:
        return float(sum(binom.pmf(k, n, p) * (cp(k, n)[1] - cp(k, n)[0]) for k in range(n + 1)))

    grid = np.linspace(0.005, 0.995, 199)
    rows = []
    for n in clips:
        for label, ps in [(f"rate {p:g}", [p]) for p in rates] + [("min over rates 0.005-0.995", grid)]:
            before = min(coverage(n, p, wilson) for p in ps)
            now = min(coverage(n, p, cp) for p in ps)
            flag = "**below 93 %**" if now < FLAG_BELOW else ""
            width = f"{mean_width(n, ps[0]):.3g}" if len(ps) == 1 else "–"
            rows.append(f"| success rate | {n} | {label} | {100 * before:.1f} % (Wilson, exact) | Clopper-Pearson "
                        f"| every outcome | {100 * now:.1f} % (exact) | {width} | {flag} |")
    return "\n".join(rows)


#: Accuracy cells (``--studies accuracy``): (clips per group, true accuracy of group a, of group b). Two
#: groups of one column, single-label data (every clip one true class of :data:`ACCURACY_CLASSES`, like
#: UrbanSound8K's 10): the null cells at accuracy 0.7, 0.9 and 0.97 in both groups give the group rows, and
#: with the gap cells (0.97 against 0.9, 0.9 against 0.7) the accuracy disparity. 20 clips is the Bias
#: section's ``min_group_size``.
ACCURACY_CELLS = (tuple((g, p, p) for p in (0.7, 0.9, 0.97) for g in (20, 50, 200))
                  + tuple((g, a, b) for a, b in ((0.97, 0.9), (0.9, 0.7)) for g in (20, 50, 200)))

#: Seed offset of the accuracy cells (a cell's seeds: this plus its place in :data:`ACCURACY_CELLS`).
ACCURACY_CELL_BASE = 9000

#: Classes of the accuracy cells' single-label data.
ACCURACY_CLASSES = 10


def _accuracy_data(sizes: tuple, accuracies: tuple, rng: np.random.Generator, *,
                   n_classes: int) -> tuple[np.ndarray, np.ndarray, list]:
    """One single-label data set of an accuracy cell: one-hot labels, scores and the groups.

    Each clip's true class is uniform over ``n_classes``; its top-1 class is the true one with the
    group's probability (``accuracies``), otherwise a uniform other class (standard normal scores, the
    chosen class lifted above the clip's maximum).

    Returns
    -------
    y : ndarray of bool, shape (n, n_classes)
    s : ndarray, shape (n, n_classes)
    groups : list of Group
        One per entry of ``sizes``, consecutive blocks of clips, column ``"g"``.
    """
    n = int(sum(sizes))
    label = np.repeat(np.arange(len(sizes)), sizes)
    cls = rng.integers(0, n_classes, n)
    right = rng.random(n) < np.asarray(accuracies, dtype=float)[label]
    wrong = (cls + 1 + rng.integers(0, n_classes - 1, n)) % n_classes
    s = rng.standard_normal((n, n_classes))
    s[np.arange(n), np.where(right, cls, wrong)] = s.max(axis=1) + 1.0
    groups = [Group(("g",), f"g{k}", label == k) for k in range(len(sizes))]
    return np.eye(n_classes, dtype=bool)[cls], s, groups


def accuracy_cell(group_size: int, acc_a: float, acc_b: float, *, reps: int, resamples: int, seed: int, cell: int,
                  n_classes: int = ACCURACY_CLASSES, findings: dict | None = None) -> list[Tally]:
    """A single-label group's accuracy and the accuracy disparity, as the Bias section prints them.

    Each data set goes through the section's own code (:func:`factsheet.bias.section._replicated` without
    the jackknife, which accuracy does not use, ``_group_rows``, ``_tested_disparities``, default
    :class:`BiasConfig`); beside them, the paired percentile bootstrap intervals the section printed before
    (``_metric`` of a group's accuracy replicates, the percentile interval of the difference's replicates,
    on the same replicates). Truths: the groups' accuracies; a disparity's is the group's true accuracy
    minus that of the reference the data chose.

    Parameters
    ----------
    group_size : int
        Clips per group (two groups).
    acc_a, acc_b : float
        True accuracy of each group.
    reps, resamples, seed, cell : int
        As for :func:`tagging_cell`.
    n_classes : int
    findings : dict, optional
        Filled with ``{(statistic, n, setting): [findings before, findings now, data sets]}``: the accuracy
        disparity's findings under the percentile interval and under the printed one (the same adjusted
        p-value; false findings in a null cell).

    Returns
    -------
    list of Tally
        Group accuracy (null cells only, both groups: 2 per data set) and the accuracy disparity,
        percentile (before) then the printed method (now).
    """
    from factsheet.bias.section import _group_rows, _replicated, _tested_disparities
    from factsheet.bias.stats import _interval, _metric
    from factsheet.bias.wording import INTERVAL_METHODS
    from factsheet.config import MetricsConfig
    from factsheet.significance import is_finding

    label = {"percentile": "percentile", "clopper_pearson": "Clopper-Pearson", "newcombe": "Newcombe"}
    now_group = label[INTERVAL_METHODS["groups.accuracy"]]
    now_diff = label[INTERVAL_METHODS.get("disparities[metric=accuracy]", INTERVAL_METHODS["disparities"])]
    settings = BiasConfig()
    truth = (acc_a, acc_b)
    null = acc_a == acc_b
    setting = (f"accuracy {acc_a:g} in both groups" if null else f"accuracy {acc_a:g} vs {acc_b:g}")
    setting += f", {n_classes} classes"
    t: dict[str, Tally] = {}
    if null:
        t.update({f"group accuracy ({m})": Tally(f"group accuracy ({m})", group_size, setting)
                  for m in dict.fromkeys(("percentile", now_group))})
    t.update({f"accuracy disparity ({m})": Tally(f"accuracy disparity ({m})", group_size, setting)
              for m in dict.fromkeys(("percentile", now_diff))})
    count = [0, 0, 0]
    for r in range(reps):
        rng = _rng(seed, cell, r)
        y, s, groups = _accuracy_data((group_size, group_size), truth, rng, n_classes=n_classes)
        mc = MetricsConfig(bootstrap_resamples=resamples, confidence=CONFIDENCE,
                           seed=seed * 1_000_003 + cell * 10_007 + r)
        data = _replicated(y, s, groups=groups, names=[f"c{j}" for j in range(n_classes)], bootstrap=mc)
        if null:
            rows = _group_rows(data, settings=settings, confidence=CONFIDENCE, robustness={})
            for gi in range(2):
                before = _metric(data.point[gi]["accuracy"], data.reps[gi]["accuracy"], CONFIDENCE)
                t["group accuracy (percentile)"].add(*_bounds(before), truth[gi])
                if now_group != "percentile":
                    t[f"group accuracy ({now_group})"].add(*_bounds(rows[gi]["metrics"]["accuracy"]), truth[gi])
        disparities, _, _ = _tested_disparities(data, settings=settings, bootstrap=mc)
        index = {g.name: gi for gi, g in enumerate(groups)}
        for d in disparities:
            if d["metric"] != "accuracy" or d["value"] is None:
                continue
            gi, ref = index[d["group"]], index[d["reference"]]
            low, high = _interval(data.reps[gi]["accuracy"] - data.reps[ref]["accuracy"], CONFIDENCE)
            before = {"ci_low": low, "ci_high": high}
            t["accuracy disparity (percentile)"].add(*_bounds(before), truth[gi] - truth[ref])
            if now_diff != "percentile":
                t[f"accuracy disparity ({now_diff})"].add(*_bounds(d), truth[gi] - truth[ref])
            count[0] += is_finding(p_adjusted=d["p_adjusted"], ci_high=high, confidence=CONFIDENCE,
                                   tolerance=settings.tolerance)
            count[1] += bool(d["finding"])
            count[2] += 1
    if findings is not None:
        findings[("accuracy disparity", group_size, setting)] = count
    return list(t.values())


def accuracy_study(cells: tuple, *, reps: int, resamples: int, seed: int,
                   findings: dict | None = None) -> list[Tally]:
    """Every cell of ``cells`` (:data:`ACCURACY_CELLS`) by :func:`accuracy_cell`; the seeds of a cell depend
    on its place in :data:`ACCURACY_CELLS`, whichever run it is in."""
    out: list[Tally] = []
    for g, a, b in cells:
        out += accuracy_cell(g, a, b, reps=reps, resamples=resamples, seed=seed, findings=findings,
                             cell=ACCURACY_CELL_BASE + ACCURACY_CELLS.index((g, a, b)))
    return out


def accuracy_exact_coverage(*, sizes: tuple = (20, 50, 200), accuracies: tuple = (0.7, 0.9, 0.97, 0.99),
                            pairs: tuple = ((0.9, 0.9), (0.97, 0.97), (0.97, 0.9), (0.9, 0.7), (0.99, 0.9)),
                            lowest: tuple = (0.7, 0.5, 0.05), confidence: float = CONFIDENCE) -> str:
    """Exact coverage of the accuracy intervals the Bias section prints, as Markdown rows.

    A group's accuracy: Clopper-Pearson, the binomial probability of the outcomes ``k`` of ``n`` whose
    interval contains the true accuracy (a sum over every outcome, as :func:`success_rate_coverage`), at
    each of ``accuracies`` and the minimum over 199 accuracies 0.005-0.995. An accuracy disparity of two
    disjoint groups of ``n`` clips: Newcombe's interval, the probability of the outcome pairs ``(k_a,
    k_b)`` whose interval of ``p_a - p_b`` contains the true difference (a sum over all ``(n + 1)^2``
    pairs), at each of ``pairs`` and the minimum over the pairs of accuracies from each of ``lowest`` to 0.99
    in steps of 0.01. The interval is negated when the groups swap, so its coverage does not depend on which
    group the data make the reference (of two groups).
    """
    from scipy.stats import binom

    from factsheet.metrics import clopper_pearson_interval, newcombe_difference_interval

    rows = []
    grid = np.linspace(0.005, 0.995, 199)
    for n in sizes:
        lo, hi = np.array([clopper_pearson_interval(k, n, confidence=confidence) for k in range(n + 1)]).T
        k = np.arange(n + 1)
        for name, ps in [(f"accuracy {p:g}", [p]) for p in accuracies] + [("min over accuracies 0.005-0.995", grid)]:
            cov = [float(binom.pmf(k, n, p)[(lo <= p) & (p <= hi)].sum()) for p in ps]
            width = f"{float((binom.pmf(k, n, ps[0]) * (hi - lo)).sum()):.3g}" if len(ps) == 1 else "–"
            flag = "**below 93 %**" if min(cov) < FLAG_BELOW else ""
            rows.append(f"| group accuracy | {n} | {name} | – | Clopper-Pearson | every outcome | "
                        f"{100 * min(cov):.1f} % (exact) | {width} | {flag} |")
    for n in sizes:
        iv = np.array([[newcombe_difference_interval(a, n, b, n, confidence=confidence) for b in range(n + 1)]
                       for a in range(n + 1)])  # (n + 1, n + 1, 2): group a's outcome, group b's
        k = np.arange(n + 1)

        def coverage(pa: float, pb: float) -> tuple[float, float]:
            w = np.outer(binom.pmf(k, n, pa), binom.pmf(k, n, pb))
            inside = (iv[..., 0] <= pa - pb + 1e-12) & (pa - pb - 1e-12 <= iv[..., 1])
            return float(w[inside].sum()), float((w * (iv[..., 1] - iv[..., 0])).sum())

        for pa, pb in pairs:
            cov, width = coverage(pa, pb)
            flag = "**below 93 %**" if cov < FLAG_BELOW else ""
            name = f"accuracy {pa:g} in both groups" if pa == pb else f"accuracy {pa:g} vs {pb:g}"
            rows.append(f"| accuracy disparity | {n} | {name} | – | Newcombe | every outcome pair | "
                        f"{100 * cov:.1f} % (exact) | {width:.3g} | {flag} |")
        for first in lowest:
            accs = np.round(np.arange(first, 0.995, 0.01), 2)
            worst = min((coverage(pa, pb)[0], pa, pb) for pa in accs for pb in accs if pb <= pa)
            flag = "**below 93 %**" if worst[0] < FLAG_BELOW else ""
            rows.append(f"| accuracy disparity | {n} | min over accuracies {first:.2f}-0.99 (at {worst[1]:g} vs "
                        f"{worst[2]:g}) | – | Newcombe | every outcome pair | {100 * worst[0]:.1f} % (exact) | – | {flag} |")
    return "\n".join(rows)


def group_drop_cell(group_size: int, keep_hurt: float, *, reps: int, resamples: int, seed: int, cell: int,
                    n: int = 400, keep: float = 0.7, d_group: tuple = (2.0, 2.0, 1.6), rho: float = 0.8,
                    class_d: np.ndarray | None = None, prevalence: float = 0.14) -> list[Tally]:
    """The Domain Shift section's per-group drops (``domain_shift.groups``), as
    :func:`factsheet.domain_shift.groups.group_drops` makes them: each group's mAP drop (clean minus corrupted,
    over the classes with ``min_positives`` positives in the group) and its extra drop against the most
    resilient group of the column, paired percentile bootstrap with the Bias section's rule.

    Like the demo's voice types: three groups of ``group_size`` clips of ``n``, every clip of a group positive
    for class 0 (speech), which has ``n // 10`` further positives outside the groups (a fixed prevalence
    ``pi_0``); the other classes at ``prevalence`` with the separations ``class_d`` as in :func:`drop_cell`.
    Class 0's positives have separation ``d_group[k]`` in group ``k`` (2.0 outside the groups), and the
    corruption keeps ``keep`` of every separation except group 2's, which keeps ``keep_hurt`` (equal to
    ``keep``: no group is hurt more). Noise correlated ``rho`` between the clean and corrupted scores. A
    group's AP is its positives against every negative at the class's prevalence (the Bias section's
    prevalence matching), so its truth is ``AP(d_g, pi) - AP(keep_g d_g, pi)``, averaged over the classes the
    estimate uses in that data set; an extra drop's truth is the difference of the two groups' true drops over
    their shared classes, against the reference the data chose.

    Parameters
    ----------
    group_size : int
        Clips per group (the demo: 28-32 per voice type of 400).
    keep_hurt : float
        Share of the separation group 2 keeps.
    reps, resamples, seed, cell : int
        As for :func:`tagging_cell`.
    n, keep, d_group, rho, class_d, prevalence
        The design described above.

    Returns
    -------
    list of Tally
        ``[group mAP drop, extra mAP drop]``.
    """
    import pandas as pd

    from factsheet.config import MetricsConfig
    from factsheet.domain_shift.groups import CorruptedScores, group_drops

    class_d = DEMO_D if class_d is None else class_d
    bias = BiasConfig(columns=("voice",), condition_columns=(), intersections=())
    names = ["a", "b", "c"]
    n_groups, extra0 = len(d_group), n // 10
    pi0 = (n_groups * group_size + extra0) / n
    keeps = np.array([keep] * (n_groups - 1) + [keep_hurt])
    true_ap = {}  # (group or None, class) -> (clean AP, corrupted AP)
    for k in range(n_groups):
        true_ap[(k, 0)] = (binormal_ap(d_group[k], pi0), binormal_ap(keeps[k] * d_group[k], pi0))
    for c in range(1, class_d.size):
        a = (binormal_ap(class_d[c], prevalence), binormal_ap(keep * class_d[c], prevalence))
        for k in range(n_groups):
            true_ap[(k, c)] = a
    setting = (f"{n} clips, 3 groups, " + ("no group hurt more" if keep_hurt == keep else
                                           f"one group keeps {keep_hurt:g} of its separation, the others {keep:g}"))
    t_drop, t_extra = Tally("group mAP drop", group_size, setting), Tally("extra mAP drop", group_size, setting)
    member = np.repeat(np.arange(n_groups + 1), [group_size] * n_groups + [n - n_groups * group_size])
    voice = np.array(names + ["none"])[member]
    for r in range(reps):
        rng = _rng(seed, cell, r)
        y = rng.random((n, class_d.size)) < prevalence
        y[:, 0] = member < n_groups
        rest = np.flatnonzero(member == n_groups)
        y[rng.choice(rest, size=extra0, replace=False), 0] = True
        d = np.broadcast_to(class_d, y.shape).copy()
        d[:, 0] = np.where(member < n_groups, np.asarray(d_group + (2.0,))[member], 2.0)
        kp = np.full(y.shape, keep)
        kp[member == n_groups - 1, 0] = keep_hurt
        e0 = rng.standard_normal(y.shape)
        e1 = rho * e0 + math.sqrt(1.0 - rho * rho) * rng.standard_normal(y.shape)
        s0, s1 = e0 + d * y, e1 + kp * d * y
        boot = MetricsConfig(bootstrap_resamples=resamples, confidence=CONFIDENCE,
                             seed=seed * 1_000_003 + cell * 10_007 + r)
        block = group_drops(y=y.astype(np.int8), clean_scores=s0,
                            corrupted=[CorruptedScores("sim", "Simulated", 1.0, "", s1)],
                            metadata=pd.DataFrame({"voice": voice}), bias=bias, bootstrap=boot, severity=3)
        n_pos = {k: y[member == k].sum(axis=0) for k in range(n_groups)}

        def true_drop(k: int, classes: np.ndarray) -> float:
            return float(np.mean([true_ap[(k, c)][0] - true_ap[(k, c)][1] for c in np.flatnonzero(classes)]))

        for row in block["by_group"]:
            k = names.index(row["group"])
            classes = n_pos[k] >= bias.min_positives
            ci = row["drop_ci"]
            low, high = (float("nan") if v is None else v for v in (ci["low"], ci["high"]))
            t_drop.add(low, high, true_drop(k, classes) if classes.any() else float("nan"))
        for row in block["comparisons"]:
            k, ref = names.index(row["group"]), names.index(row["reference"])
            common = (n_pos[k] >= bias.min_positives) & (n_pos[ref] >= bias.min_positives)
            ci = row["extra_drop_ci"]
            low, high = (float("nan") if v is None else v for v in (ci["low"], ci["high"]))
            t_extra.add(low, high, true_drop(k, common) - true_drop(ref, common) if common.any() else float("nan"))
    return [t_drop, t_extra]


def natural_cell(n_source: int, n_target: int, keep: float, *, reps: int, resamples: int, seed: int, cell: int,
                 class_d: np.ndarray | None = None, prevalence_source: float = 0.14,
                 prevalence_target: np.ndarray | None = None,
                 methods: tuple[str, ...] = ("percentile", "bca_expanded"),
                 first_rep: int = 0) -> list[Tally]:
    """The Domain Shift section's natural shift, as :func:`factsheet.domain_shift.natural.shift_numbers` makes it:
    each side's mAP and mean AUC, the target's prevalence-matched mAP, and the unpaired gaps (target minus
    source), percentile intervals over replicate differences of independently resampled sides.

    Both sides binormal with the same classes: the source at ``prevalence_source`` with separations
    ``class_d``, the target with another class mix (:data:`NATURAL_TARGET_PREVALENCE`: one common class,
    the others rare, like the demo's TRAIN-distribution target) and separations ``keep * class_d``. Truths:
    the source's mAP is the mean of ``AP(d, pi_s)``, the target's raw mAP of ``AP(keep d, pi_t)``, its
    matched mAP of ``AP(keep d, pi_s)`` (the target's ranking at the source's prevalence), mean AUC of
    ``Phi(d / sqrt 2)``; the gaps are their differences.

    Parameters
    ----------
    n_source, n_target : int
        Clips of the evaluation set and of the target (the demo: 1200 and 600).
    keep : float
        The target's separation over the source's (1: the same model quality, a matched gap of 0).
    reps, resamples, seed, cell : int
        As for :func:`tagging_cell`.
    class_d : ndarray, shape (n_classes,), optional
        Default :data:`DEMO_D`.
    prevalence_source : float
    prevalence_target : ndarray, shape (n_classes,), optional
        Default :data:`NATURAL_TARGET_PREVALENCE`.

    methods : tuple of str
        Interval methods of :func:`shift_numbers`: ``"percentile"`` (before issue 17), ``"bca"`` (plain BCa,
        printed until its R = 600 measurement) and ``"bca_expanded"`` (now: BCa at Hesterberg's expanded level,
        :func:`factsheet.metrics.expanded_confidence`, for ``n`` the fewest positives of a class on either side).
    first_rep : int
        Replications ``first_rep .. first_rep + reps - 1`` (their seeds do not depend on ``reps``: a cell can
        run in parts).

    Returns
    -------
    list of Tally
        Per method, source mAP, source mean AUC, target mAP, target matched mAP, target mean AUC, and the gaps
        of mAP, matched mAP and mean AUC; a data set with a class without a positive or a negative on either
        side is left out (the section drops such classes; none at these sizes).
    """
    from factsheet.domain_shift.natural import shift_numbers

    class_d = DEMO_D if class_d is None else class_d
    pi_t = NATURAL_TARGET_PREVALENCE if prevalence_target is None else prevalence_target
    ap_s = np.mean([binormal_ap(d, prevalence_source) for d in class_d])
    ap_t = np.mean([binormal_ap(keep * d, p) for d, p in zip(class_d, pi_t)])
    ap_m = np.mean([binormal_ap(keep * d, prevalence_source) for d in class_d])
    auc_s, auc_t = float(binormal_auc(class_d).mean()), float(binormal_auc(keep * class_d).mean())
    truths = {("mAP", "source"): ap_s, ("mean_auc", "source"): auc_s, ("mAP", "target"): ap_t,
              ("mAP_matched", "target"): ap_m, ("mean_auc", "target"): auc_t, ("mAP", "gap"): ap_t - ap_s,
              ("mAP_matched", "gap"): ap_m - ap_s, ("mean_auc", "gap"): auc_t - auc_s}
    names = {"mAP": "mAP", "mAP_matched": "matched mAP", "mean_auc": "mean AUC"}
    setting = (f"{n_source} vs {n_target} clips, " + ("same separation" if keep == 1 else f"separation x {keep:g}"))
    label = {"percentile": "percentile", "bca": "BCa", "bca_expanded": "BCa expanded"}
    tallies = {(m, k): Tally(f"natural {side} {names[metric]} ({label[m]})", n_target if side != "source" else n_source,
                             setting)
               for m in methods for k in truths for metric, side in [k]}
    for r in range(first_rep, first_rep + reps):
        rng = _rng(seed, cell, r)
        ys = rng.random((n_source, class_d.size)) < prevalence_source
        yt = rng.random((n_target, class_d.size)) < pi_t
        if not all(((y.sum(0) > 0) & (y.sum(0) < len(y))).all() for y in (ys, yt)):
            continue
        ss = rng.standard_normal(ys.shape) + class_d * ys
        st = rng.standard_normal(yt.shape) + keep * class_d * yt
        sd = seed * 1_000_003 + cell * 10_007 + r
        for m in methods:
            nums = shift_numbers(y_source=ys.astype(np.int8), s_source=ss, y_target=yt.astype(np.int8), s_target=st,
                                 n_resamples=resamples, confidence=CONFIDENCE, seeds={"source": sd, "target": sd + 1},
                                 method=m)
            for (metric, side), truth in truths.items():
                block = nums["metrics"][metric][side]
                low, high = (float("nan") if v is None else v for v in (block["ci_low"], block["ci_high"]))
                tallies[(m, (metric, side))].add(low, high, float(truth), _value(block))
    return list(tallies.values())


#: The natural-shift target's class mix (14 classes): one common class (the demo's Speech, 363 of 600 clips)
#: and 13 rare ones (31-47 of 600).
NATURAL_TARGET_PREVALENCE = np.array([0.6] + [0.065] * 13)


#: Per-clip distributions of the Explanation study: name -> (draw(rng, n), true mean, skewness).
EXPLANATION_DISTRIBUTIONS: dict = {
    "normal": (lambda rng, n: rng.standard_normal(n), 0.0, 0.0),
    "beta(6, 2)": (lambda rng, n: rng.beta(6.0, 2.0, n), 0.75, -0.69),
    "gamma(2)": (lambda rng, n: rng.gamma(2.0, 1.0, n), 2.0, 1.41),
    "exponential": (lambda rng, n: rng.exponential(1.0, n), 1.0, 2.0),
}


def explanation_cell(n: int, distribution: str, *, reps: int, resamples: int, seed: int, cell: int) -> list[Tally]:
    """The Explanation section's intervals of a mean over explained clips (a band's importance in a class, a
    deletion-area difference, the localisation AUC), from :func:`factsheet.explanation.stats.mean_interval`:
    the percentile bootstrap over clips (before) and the studentised bootstrap (bootstrap-t, what the FactSheet
    prints; no interval, "insufficient evidence", below ``MIN_ROWS`` rows).

    Per-clip values are drawn from a known distribution (:data:`EXPLANATION_DISTRIBUTIONS`: normal, a
    bounded left-skewed beta like an AUC, right-skewed gammas like an importance); the truth is its mean.

    Parameters
    ----------
    n : int
        Explained clips (rows averaged): 2 per class in the demo, 10 by default, 14 checked clips, 28 maps.
    distribution : str
        A key of :data:`EXPLANATION_DISTRIBUTIONS`.
    reps, resamples, seed, cell : int
        As for :func:`tagging_cell`.

    Returns
    -------
    list of Tally
        ``[explanation mean (percentile), explanation mean (studentized)]``.
    """
    from factsheet.explanation.stats import mean_interval

    draw, truth, skew = EXPLANATION_DISTRIBUTIONS[distribution]
    setting = f"{distribution}, skewness {skew:g}"
    out = [Tally(f"explanation mean ({m})", n, setting) for m in ("percentile", "studentized")]
    for r in range(reps):
        x = draw(_rng(seed, cell, r), n)
        for tally, method in zip(out, ("percentile", "studentized")):
            est = mean_interval(x, n_resamples=resamples, confidence=CONFIDENCE,
                                seed=seed * 1_000_003 + cell * 10_007 + r, method=method)
            low, high = (float("nan") if v is None else v for v in (est["low"], est["high"]))
            tally.add(low, high, truth)
    return out


# --------------------------------------------------------------------------------------
# Study and table
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Design:
    """The grid of a run.

    Attributes
    ----------
    clips, prevalences : tuple
        Tagging cells.
    attacked, failure_shares : tuple
        Percentile cells.
    group_sizes : tuple
        Disparity cells (each under the null and a gap).
    """

    clips: tuple = (100, 400, 1600)
    prevalences: tuple = (0.01, 0.1, 0.5)
    demo_cells: tuple = ((1200, 0.14), (600, 0.14))
    attacked: tuple = (16, 32, 64, 80, 256)
    failure_shares: tuple = (0.1, 0.3)
    group_sizes: tuple = (20, 50, 200)
    drop_cells: tuple = ((400, 0.7), (400, 1.0), (100, 0.7), (64, 0.7))
    ratio_cells: tuple = ((16, 0.0), (16, -0.7), (32, 0.0), (32, -0.7), (80, 0.0), (80, -0.7))
    bias_cells: tuple = BIAS_CELLS
    dprime_cells: tuple = ((1200, 0.14), (600, 0.14), (400, 0.5), (1600, 0.1))
    group_drop_cells: tuple = ((30, 0.7), (30, 0.5), (20, 0.7))
    natural_cells: tuple = ((1200, 600, 1.0), (1200, 600, 0.8))
    explanation_ns: tuple = (2, 5, 10, 14, 28)
    explanation_distributions: tuple = tuple(EXPLANATION_DISTRIBUTIONS)
    fitted_cells: tuple = FITTED_CELLS
    accuracy_cells: tuple = ACCURACY_CELLS


QUICK = Design(clips=(400,), prevalences=(0.1,), demo_cells=(), attacked=(64,), failure_shares=(0.1,),
               group_sizes=(50,), drop_cells=(), ratio_cells=(), bias_cells=BIAS_CELLS[:1],
               dprime_cells=((400, 0.14),), group_drop_cells=(), natural_cells=(), explanation_ns=(14,),
               explanation_distributions=("gamma(2)",), fitted_cells=FITTED_CELLS[2:3],
               accuracy_cells=ACCURACY_CELLS[:1])

#: Per-class separations of the demo-like cells: 14 classes, AUC 0.86 to 0.98 (the demo's mean AUC
#: is 0.94, its classes have 147-200 positives of 1200 clips, about 14 %).
DEMO_D = np.linspace(1.5, 3.0, 14)


#: Studies whose cells can run from a replication other than the first (``first_rep``).
PARTIAL_STUDIES = ("bias", "dprime", "natural")


def run_study(design: Design, *, reps: int, resamples: int, seed: int, studies: tuple[str, ...],
              findings: dict | None = None, cells: frozenset[int] | None = None, first_rep: int = 0,
              natural_methods: tuple[str, ...] = ("percentile", "bca_expanded"),
              candidates: bool = False) -> list[Tally]:
    """Every cell of ``design`` for the chosen ``studies``.

    Parameters
    ----------
    design : Design
    reps, resamples, seed : int
    studies : tuple of str
        Among ``"tagging"`` (with the demo-like cells), ``"demo"`` (those alone), ``"percentile"``,
        ``"disparity"``, ``"drop"``, ``"ratio"``, ``"bias"`` (:data:`BIAS_CELLS`, by :func:`bias_study`), ``"dprime"``,
        ``"groupdrop"``, ``"natural"``, ``"explanation"``, ``"fitted"``, ``"accuracy"`` (:data:`ACCURACY_CELLS`, by
        :func:`accuracy_study`; its exact coverage is printed by :func:`accuracy_exact_coverage`)
        (``"success"``, exact, is printed by :func:`success_rate_coverage`).
    findings : dict, optional
        Filled by the accuracy cells (see :func:`accuracy_cell`).
    cells : frozenset of int, optional
        Only the cells with these numbers (the ``cell`` argument of the cell functions: 701 the Bias study's
        second cell, 603 the d' study's fourth, 6001 the natural study's second, ...); ``None``: every cell of
        ``studies``. A cell's seeds are its number's, whichever others run.
    first_rep : int
        First replication (only with :data:`PARTIAL_STUDIES`): replications ``first_rep .. first_rep + reps - 1``,
        the same data sets as in a run from 0, so a cell can run in parts.
    natural_methods : tuple of str
        Interval methods of the natural study (default both; ``("bca",)`` halves its time).
    candidates : bool
        The Bias cells' candidate intervals too (:func:`bias_cell`).

    Returns
    -------
    list of Tally
    """
    if first_rep and set(studies) - set(PARTIAL_STUDIES):
        raise ValueError(f"first_rep is for the studies {PARTIAL_STUDIES} only, not {studies}")
    out: list[Tally] = []
    kw = {"reps": reps, "resamples": resamples, "seed": seed}
    part = {"first_rep": first_rep, **kw}

    def chosen(number: int) -> bool:
        return cells is None or number in cells

    cell = 0  # a cell's seeds depend on its place in the full design, whichever studies run
    for prev in design.prevalences:
        ap = np.array([binormal_ap(d, prev) for d in CLASS_D]) if "tagging" in studies else None
        for n in design.clips:
            cell += 1
            if ap is not None and chosen(cell):
                out += tagging_cell(n, prev, cell=cell, truth_ap=ap, **kw)
    for n, prev in design.demo_cells:
        cell += 1
        if ("tagging" in studies or "demo" in studies) and chosen(cell):
            ap = np.array([binormal_ap(d, prev) for d in DEMO_D])
            out += tagging_cell(n, prev, cell=cell, truth_ap=ap, class_d=DEMO_D, **kw)
    for f in design.failure_shares:
        for n in design.attacked:
            cell += 1
            if "percentile" in studies and chosen(100 + cell):
                out += percentile_cell(n, f, cell=100 + cell, **kw)
    for d_other in (1.5, 1.0):
        for g in design.group_sizes:
            cell += 1
            if "disparity" in studies and chosen(200 + cell):
                out += disparity_cell(g, d_other, cell=200 + cell, **kw)
    for n, keep in design.drop_cells:
        cell += 1
        if "drop" in studies and chosen(300 + cell):
            out += drop_cell(n, 0.14, keep, cell=300 + cell, **kw)
    for n, log_ratio in design.ratio_cells:
        cell += 1
        if "ratio" in studies and chosen(400 + cell):
            out += ratio_cell(n, log_ratio, cell=400 + cell, **kw)
    if "bias" in studies:
        out += bias_study(design.bias_cells, chosen=cells, candidates=candidates, **part)
    for i, (n, prev) in enumerate(design.dprime_cells):  # own cell numbers: unchanged when studies are added
        if "dprime" in studies and chosen(600 + i):
            out += dprime_cell(n, prev, cell=600 + i, class_d=DEMO_D if prev == 0.14 else CLASS_D, **part)
    # the studies below number their cells on their own (base + place in the study), so that a study added
    # to the design above does not move their seeds
    for i, (group_size, keep_hurt) in enumerate(design.group_drop_cells):
        if "groupdrop" in studies and chosen(8000 + i):
            out += group_drop_cell(group_size, keep_hurt, cell=8000 + i, **kw)
    for i, (n_source, n_target, keep) in enumerate(design.natural_cells):
        if "natural" in studies and chosen(6000 + i):
            out += natural_cell(n_source, n_target, keep, cell=6000 + i, methods=natural_methods, **part)
    for i, (dist, n) in enumerate((d, n) for d in design.explanation_distributions for n in design.explanation_ns):
        if "explanation" in studies and chosen(7000 + i):
            out += explanation_cell(n, dist, cell=7000 + i, **kw)
    if "fitted" in studies:
        out += fitted_study(tuple(c for c in design.fitted_cells
                                  if chosen(FITTED_CELL_BASE + FITTED_CELLS.index(c))), **kw)
    if "accuracy" in studies:
        out += accuracy_study(tuple(c for c in design.accuracy_cells
                                    if chosen(ACCURACY_CELL_BASE + ACCURACY_CELLS.index(c))), findings=findings, **kw)
    return out


def bias_study(cells: tuple, *, reps: int, resamples: int, seed: int, first_rep: int = 0,
               chosen: frozenset[int] | None = None, candidates: bool = False) -> list[Tally]:
    """Every cell of ``cells`` (:data:`BIAS_CELLS`) by :func:`bias_cell`, or those whose number is in ``chosen``;
    the seeds of a cell depend on its place in :data:`BIAS_CELLS`, whichever run it is in."""
    out: list[Tally] = []
    for kind, n, factors in cells:
        number = BIAS_CELL_BASE + BIAS_CELLS.index((kind, n, factors))
        if chosen is None or number in chosen:
            out += bias_cell(kind, n, factors, reps=reps, resamples=resamples, seed=seed, cell=number,
                             first_rep=first_rep, candidates=candidates)
    return out


def table(tallies: list[Tally]) -> str:
    """A Markdown table: statistic, n, setting, defined, coverage +- MC s.e., mean width, flag.

    Parameters
    ----------
    tallies : list of Tally

    Returns
    -------
    str
    """
    lines = ["| statistic | n | prevalence / failures / groups | intervals | coverage ± MC s.e. | mean width | |",
             "|---|---:|---|---:|---:|---:|---|"]
    first: dict[str, int] = {}
    for i, t in enumerate(tallies):
        first.setdefault(t.statistic, i)
    for t in sorted(tallies, key=lambda t: first[t.statistic]):  # stable: each statistic's cells in run order
        cov = _coverage(t)
        if cov is None:
            lines.append(f"| {t.statistic} | {t.n} | {t.setting} | 0/{t.reps} | – | – | no interval |")
            continue
        flag = "**below 93 %**" if cov[1] < FLAG_BELOW else ""
        lines.append(f"| {t.statistic} | {t.n} | {t.setting} | {cov[0]} | {cov[2]} | {cov[3]} | {flag} |")
    return "\n".join(lines)


def _coverage(t: Tally) -> tuple[str, float, str, str] | None:
    """``(intervals "k/R", coverage p, "p ± MC s.e. %", mean finite width with the count of infinite ones)`` of a
    cell, or None when no data set got an interval."""
    k = len(t.covered or [])
    if k == 0:
        return None
    p = float(np.mean(t.covered))
    w = np.asarray(t.widths)
    fin = np.isfinite(w)
    width = f"{w[fin].mean():.3g}" if fin.any() else "inf"
    if not fin.all():
        width += f" ({int((~fin).sum())} inf)"
    return f"{k}/{t.reps}", p, f"{100 * p:.1f} ± {100 * math.sqrt(p * (1.0 - p) / k):.1f} %", width


def diagnostics(tallies: list[Tally]) -> str:
    """A Markdown table of each cell's estimator bias and the sides of its misses.

    Parameters
    ----------
    tallies : list of Tally

    Returns
    -------
    str
        Per cell with intervals: coverage, ``mean(estimate - truth)``, that over the sd of the estimate
        (a large ratio means the interval, centred near the estimate, misses on one side), and the
        misses with the interval below the truth (``high < truth``) and above it (``low > truth``).
    """
    lines = ["| statistic | n | setting | intervals | coverage ± MC s.e. | mean width | mean(est - truth) | bias / sd "
             "| misses below / above |", "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for t in tallies:
        cov = _coverage(t)
        if cov is None:
            continue
        mean, ratio, below, above = t.estimator_bias()
        lines.append(f"| {t.statistic} | {t.n} | {t.setting} | {cov[0]} | {cov[2]} | {cov[3]} | {mean:+.4f} "
                     f"| {ratio:+.2f} | {below} / {above} |")
    return "\n".join(lines)


def dump(tallies: list[Tally], path: str) -> None:
    """Write every replication's outcome (JSON), for :func:`load` to merge runs done in parts."""
    import json
    from dataclasses import asdict

    with open(path, "w", encoding="utf-8") as f:
        json.dump([asdict(t) for t in tallies], f)


def load(paths: list[str]) -> list[Tally]:
    """The tallies of :func:`dump` files, the parts of one cell and statistic merged (in file order)."""
    import json

    out: dict[tuple, Tally] = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for d in json.load(f):
                t = Tally(**d)
                key = (t.statistic, t.n, t.setting)
                if key in out:
                    out[key].merge(t)
                else:
                    out[key] = t
    return list(out.values())


def before_after(flat: str) -> str:
    """The table of :func:`table` with each statistic's percentile-bootstrap cell (before issue 17,
    item 2) beside the cell of the interval the FactSheet now prints, one row per cell.

    Parameters
    ----------
    flat : str
        The Markdown of :func:`table` (rows ``"<statistic> (<method>)"``; a row without a method
        is a statistic whose interval did not change).

    Returns
    -------
    str
    """
    cells: dict[tuple, dict] = {}
    for line in flat.splitlines():
        parts = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(parts) < 7 or not parts[1].isdigit():
            continue
        name, method = (parts[0].rsplit(" (", 1) + [""])[:2]
        method = method.rstrip(")") or "percentile (unchanged)"
        key = (name, int(parts[1]), parts[2])
        cells.setdefault(key, {}).setdefault("before" if method == "percentile" else "after", (method, *parts[3:7]))
    lines = ["| statistic | n | setting | before: percentile bootstrap | now: method | intervals | coverage ± MC s.e. "
             "| mean width | |", "|---|---:|---|---:|---|---:|---:|---:|---|"]
    for (name, n, setting), c in cells.items():
        after = c.get("after") or c["before"]
        before = f"{c['before'][2]} ({c['before'][1]})" if "before" in c and "after" in c else "–"
        flag = "insufficient evidence" if after[4] == "no interval" else after[4]
        lines.append(f"| {name} | {n} | {setting} | {before} | {after[0]} | {after[1]} | {after[2]} | {after[3]} "
                     f"| {flag} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command line: run the study and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200, help="replications per cell (default 200)")
    ap.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000, as the FactSheet)")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--quick", action="store_true", help="one cell per study, 20 replications, 200 resamples")
    ap.add_argument("--studies", default="tagging,percentile,disparity,drop,ratio,dprime,success,groupdrop,natural,"
                                         "explanation,fitted")
    ap.add_argument("--before-after", metavar="FILE", help="only print the before / after table of a saved run's "
                                                            "output")
    ap.add_argument("--cells", help="only these cell numbers, comma-separated (e.g. 701,603,6001; seeds unchanged)")
    ap.add_argument("--first-rep", type=int, default=0, help="first replication (bias, dprime, natural only): run a "
                                                             "cell in parts, the same data sets as a run from 0")
    ap.add_argument("--natural-methods", default="percentile,bca_expanded",
                    help="interval methods of the natural study (default: before and now; 'bca_expanded' alone halves "
                         "its time; 'bca' the plain BCa printed until the R = 600 run)")
    ap.add_argument("--candidates", action="store_true", help="Bias cells: also the plain BCa at the nominal level")
    ap.add_argument("--dump", metavar="FILE", help="also write every replication's outcome (JSON)")
    ap.add_argument("--merge", metavar="FILE", nargs="+", help="only print the tables of --dump files, parts of a "
                                                               "cell merged")
    a = ap.parse_args(argv)
    if a.before_after:
        with open(a.before_after, encoding="utf-8") as f:
            print(before_after(f.read()))
        return
    if a.merge:
        tallies = load(a.merge)
        print(table(tallies))
        print()
        print(diagnostics(tallies))
        return
    reps, resamples = (20, 200) if a.quick else (a.reps, a.resamples)
    cells = frozenset(int(c) for c in a.cells.split(",")) if a.cells else None
    t0 = time.perf_counter()
    findings: dict = {}
    tallies = run_study(QUICK if a.quick else Design(), reps=reps, resamples=resamples, seed=a.seed,
                        studies=tuple(a.studies.split(",")), findings=findings, cells=cells, first_rep=a.first_rep,
                        natural_methods=tuple(a.natural_methods.split(",")), candidates=a.candidates)
    print(f"R = {reps} replications per cell (from {a.first_rep}), {resamples} bootstrap resamples, nominal "
          f"{CONFIDENCE:.0%}, seed {a.seed}, {time.perf_counter() - t0:.0f} s\n")
    if a.dump:
        dump(tallies, a.dump)
    flat = table(tallies)
    print(flat)
    print()
    print(before_after(flat))
    if "success" in a.studies.split(","):
        print(success_rate_coverage())
    if "accuracy" in a.studies.split(","):
        print(accuracy_exact_coverage())
        print()
        for (stat, n, setting), (before, now, runs) in findings.items():
            print(f"{stat}, {n} clips per group, {setting}: findings in {before} of {runs} data sets with the "
                  f"percentile interval, {now} with the printed one")
    print()
    print(diagnostics(tallies))


if __name__ == "__main__":
    main()
