"""Robustness by group: each group's attack outcomes and the disparities between groups (pure functions).

The groups come from ``[robustness] stratify_by``: the attacked sample was drawn so that each group
has at least ``min_per_group`` clips (:func:`attacks.runner.select_clips`). Per norm and group:
clips attacked and fooled (Clopper-Pearson interval), percentiles of the perturbation norm in 16-bit PCM
units with bootstrap intervals (a clip not fooled counts as +infinity), the median SNR. Per norm
and column: every group against the most robust one (the largest median norm), as the
difference of median log norms (a ratio of medians), with an unpaired bootstrap interval and the
Bias section's normal-approximation p-value; the p-values are corrected in one family with the
Bias section's tests when that section is evaluated (:func:`mark_findings`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from attacks.summary import INT16_SCALE, distance_matrix, relative_perturbation, snr_db_from_relative, \
    clopper_pearson_interval
from factsheet.metrics import finite_or_none, order_statistic_interval, percentile_interval, sorted_percentiles
from factsheet.significance import CORRECTION_NAMES, DIFFERENCE_INTERVAL, adjust, family_order, is_finding, \
    normal_p_value

NORM_NAMES = {"l2": "L2", "linf": "L-infinity"}

#: Fewest attacked clips for a group to be tested, whatever ``min_per_group``: the bootstrap of a
#: median of fewer clips takes too few distinct values for its interval and p-value to mean much.
MIN_TESTED = 10

DEFINITIONS = {
    "sample": ("The attacked clips were drawn so that every group of the stratify_by columns has at least "
               "min_per_group of them (all of its eligible, i.e. correctly classified, clips when it has fewer); "
               "the rest of the clip budget as without stratification (class-stratified). Each group's clips are a "
               "random sample of its eligible clips, reproducible from robustness.seed."),
    "group_percentile": ("Linear-interpolation percentile over the group's attacked clips of the perturbation norm "
                         "of ART's iterate after T iterations, in 16-bit PCM units (x 32768); a clip not fooled counts "
                         "as +infinity."),
    "group_ci": ("Percentile bootstrap over the group's attacked clips (resampled within the group; failures kept "
                 "as +infinity); the success rate's interval is Clopper-Pearson's (exact binomial)."),
    "disparity": ("difference = median log norm of the group - that of the reference, the group with the largest "
                  "median norm (the most robust) of the same column and norm, i.e. the log of the ratio of the "
                  "medians; ratio = exp(difference) = median / reference median (below 1: the group is fooled by "
                  "smaller perturbations)."),
    "disparity_ci": ("Unpaired bootstrap: the groups are disjoint sets of clips, sampled separately, so each group "
                     "is resampled within itself, independently of the other, and the difference is recomputed on "
                     "every pair of replicates. A replicate whose difference is not finite (half or more of a "
                     "resampled group not fooled) is dropped; no interval when fewer than 10, or than half, remain."),
    "finding": ("A disparity is a finding when its interval lies entirely below 0 (the group needs smaller "
                "perturbations than the reference) and its two-sided p-value of H0: difference = 0 (normal "
                "approximation, the bootstrap standard deviation as standard error) stays below 1 - confidence after "
                "the Bias section's correction. The family: every Bias section test, then every pair of groups of "
                "each column and norm here (the reference is chosen after looking, so all pairs count); without "
                "the Bias section, these tests alone."),
    "insufficient_evidence": (f"A group with fewer than min_per_group (and never fewer than {MIN_TESTED}) attacked "
                              "clips, or whose median norm is infinite (half or more not fooled), is reported and "
                              "not tested."),
}


@dataclass(frozen=True)
class GroupSettings:
    """How the groups are summarised and compared.

    Attributes
    ----------
    iterations : int
        T: the norms after this many iterations are compared.
    percentiles : tuple of float
        Percentiles reported per group (50 is added when absent).
    min_per_group : int
        Fewest attacked clips for a group to be tested (never fewer than :data:`MIN_TESTED`).
    n_bootstrap : int
        Bootstrap resamples (0: no intervals, no tests).
    confidence : float
        Level of the intervals; a finding needs an adjusted p-value below ``1 - confidence``.
    seed : int
        ``[metrics] seed``: each (norm, column, group) draws from its own stream of it.
    """

    iterations: int
    percentiles: tuple[float, ...]
    min_per_group: int
    n_bootstrap: int
    confidence: float
    seed: int

    def quantiles(self) -> np.ndarray:
        """The reported percentiles, 50 included, increasing."""
        return np.array(sorted(set(self.percentiles) | {50.0}), float)


@dataclass(frozen=True)
class _Group:
    """One group of one column and norm: its stats row and the bootstrap replicates of its median."""

    name: str
    row: dict
    median: float  # input units; +inf when half or more were not fooled
    median_reps: np.ndarray | None  # shape (B,), or None without a bootstrap


def bootstrap_percentiles(norms: np.ndarray, *, quantiles: np.ndarray, n_bootstrap: int,
                          rng: np.random.Generator) -> np.ndarray:
    """Percentiles of ``norms`` on ``n_bootstrap`` resamples of it (failures as ``+inf``).

    Parameters
    ----------
    norms : ndarray, shape (n,)
        Perturbation norms, ``+inf`` where the attack failed; ``n >= 1``.
    quantiles : ndarray, shape (n_percentiles,)
    n_bootstrap : int
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape (n_bootstrap, n_percentiles)
    """
    draws = rng.integers(0, len(norms), size=(n_bootstrap, len(norms)))
    return sorted_percentiles(np.sort(norms[draws], axis=1).T, quantiles).T


def _bounds(low, high) -> dict:
    return {"low": finite_or_none(low), "high": finite_or_none(high)}


def _group(norms: np.ndarray, rel: np.ndarray, *, name: str, settings: GroupSettings,
           rng: np.random.Generator) -> _Group:
    """Stats of one group's attacked clips (``norms``: input units, ``rel``: relative L2 perturbation)."""
    n, q = len(norms), settings.quantiles()
    n_success = int(np.isfinite(norms).sum())
    low, high = clopper_pearson_interval(n_success, n, confidence=settings.confidence)
    row = {"group": name, "n": n, "n_success": n_success, "success_rate": n_success / n if n else None,
           "success_rate_ci": {"low": low, "high": high}, "median_int16": None, "median_int16_ci": None,
           "median_snr_db": None, "percentiles": [],
           "insufficient_evidence": n < max(settings.min_per_group, MIN_TESTED)}
    if not n:
        return _Group(name, row, math.inf, None)
    point = sorted_percentiles(np.sort(norms), q)
    reps = bootstrap_percentiles(norms, quantiles=q, n_bootstrap=settings.n_bootstrap, rng=rng) \
        if settings.n_bootstrap > 0 else None
    if reps is not None:  # the interval of each percentile: order statistics (the replicates serve the disparities)
        lows, highs = order_statistic_interval(norms, percentiles=q, confidence=settings.confidence)
        lows, highs = lows * INT16_SCALE, highs * INT16_SCALE
    else:
        lows = highs = np.full(len(q), np.nan)
    row["percentiles"] = [{"percentile": float(p), "value_int16": finite_or_none(point[i] * INT16_SCALE),
                           "ci": None if reps is None else _bounds(lows[i], highs[i])} for i, p in enumerate(q)]
    mid = int(np.flatnonzero(q == 50.0)[0])
    row.update(median_int16=row["percentiles"][mid]["value_int16"], median_int16_ci=row["percentiles"][mid]["ci"],
               median_snr_db=finite_or_none(snr_db_from_relative(sorted_percentiles(np.sort(rel), np.array(50.0)))))
    return _Group(name, row, float(point[mid]), None if reps is None else reps[:, mid])


def summarise_groups(records: dict[str, list[dict]], *, values: dict[str, np.ndarray], groups: dict[str, list[str]],
                     settings: GroupSettings) -> tuple[list[dict], list[dict], list[dict]]:
    """Every group's stats and every disparity, per norm and column.

    Parameters
    ----------
    records : dict of str to list of dict
        Norm -> the attacked clips' records (:mod:`attacks.summary`), in one clip order.
    values : dict of str to ndarray
        Column -> each attacked clip's group value as text, shape (n_attacked,), in that order.
    groups : dict of str to list of str
        Column -> its groups (the values that form one), in report order.
    settings : GroupSettings

    Returns
    -------
    rows : list of dict
        One per (norm, column, group): ``norm``, ``column`` and :func:`_group`'s stats.
    disparities : list of dict
        One per (norm, column, group other than the reference), :func:`_compare`'s rows (raw p-values).
    other_pairs : list of dict
        ``{"norm", "column", "groups": [a, b], "p_value"}`` for every other pair of tested groups
        (in the multiple-testing family only).
    """
    rows, disparities, other_pairs = [], [], []
    for ni, (norm, recs) in enumerate(records.items()):
        norms = distance_matrix(recs, norm=norm, iterations=settings.iterations)[:, -1]
        rel = relative_perturbation(recs, iterations=settings.iterations)
        for ci, (column, names) in enumerate(groups.items()):
            found = []
            for gi, name in enumerate(names):
                sel = values[column] == name
                rng = np.random.default_rng([settings.seed, 14, ni, ci, gi])
                found.append(_group(norms[sel], rel[sel], name=name, settings=settings, rng=rng))
            rows += [{"norm": norm, "column": column, **g.row} for g in found]
            d, o = _compare(found, norm=norm, column=column, settings=settings)
            disparities += [{"norm": norm, "column": column, **r} for r in d]
            other_pairs += [{"norm": norm, "column": column, **r} for r in o]
    return rows, disparities, other_pairs


def _testable(g: _Group) -> bool:
    return not g.row["insufficient_evidence"] and math.isfinite(g.median) and g.median_reps is not None


def _compare(found: list[_Group], *, norm: str, column: str, settings: GroupSettings) -> tuple[list[dict], list[dict]]:
    """Each group against the most robust testable group; the p-values of the other pairs."""
    tested = [g for g in found if _testable(g)]
    if len(tested) < 2:
        why = "fewer than two groups can be tested"
        return [_untested(g, None, why) for g in found], []
    ref = max(tested, key=lambda g: g.median)  # max keeps the first of equal medians
    rows = [_disparity(g, ref, norm=norm, column=column, settings=settings) if _testable(g)
            else _untested(g, ref, _why_untested(g, settings)) for g in found if g is not ref]
    others = [g for g in tested if g is not ref]
    pairs = [{"groups": [a.name, b.name], "p_value": _pair_p(a, b)}
             for i, a in enumerate(others) for b in others[i + 1:]]
    return rows, [p for p in pairs if p["p_value"] is not None]


def _why_untested(g: _Group, settings: GroupSettings) -> str:
    if g.row["insufficient_evidence"]:
        return f"fewer than {max(settings.min_per_group, MIN_TESTED)} attacked clips (min_per_group, at least 10)"
    if g.median_reps is None:
        return "no bootstrap (bootstrap_resamples = 0)"
    return "median norm infinite: half or more of the group's clips were not fooled"


def _log_difference(a: _Group, b: _Group) -> tuple[float, np.ndarray]:
    """log(median a) - log(median b) and its replicates (NaN where both replicates are infinite)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return math.log(a.median) - math.log(b.median), np.log(a.median_reps) - np.log(b.median_reps)


def _pair_p(a: _Group, b: _Group) -> float | None:
    diff, reps = _log_difference(a, b)
    finite = reps[np.isfinite(reps)]
    return normal_p_value(diff, finite, tolerance=0.0) if finite.size > 1 else None


def _untested(g: _Group, ref: _Group | None, why: str) -> dict:
    return {"group": g.name, "reference": None if ref is None else ref.name, "median_int16": g.row["median_int16"],
            "reference_median_int16": None if ref is None else ref.row["median_int16"], "difference": None,
            "ci_low": None, "ci_high": None, "ratio": None, "ratio_ci": None, "p_value": None, "p_adjusted": None,
            "finding": False, "insufficient_evidence": True, "reason": why, "n": g.row["n"],
            "n_reference": None if ref is None else ref.row["n"], "statement": None}


def _disparity(g: _Group, ref: _Group, *, norm: str, column: str, settings: GroupSettings) -> dict:
    """A group against the reference: log ratio of medians, its unpaired interval, raw p-value."""
    diff, reps = _log_difference(g, ref)
    iv = percentile_interval(reps, confidence=settings.confidence, **DIFFERENCE_INTERVAL)
    lo, hi = (iv.low, iv.high) if iv.defined else (None, None)
    p = normal_p_value(diff, reps[np.isfinite(reps)], tolerance=0.0) if iv.defined else None
    row = {"group": g.name, "reference": ref.name, "median_int16": g.row["median_int16"],
           "reference_median_int16": ref.row["median_int16"], "difference": finite_or_none(diff),
           "ci_low": lo, "ci_high": hi, "ratio": finite_or_none(math.exp(diff)),
           "ratio_ci": None if lo is None else _bounds(math.exp(lo), math.exp(hi)), "p_value": p,
           "p_adjusted": None, "finding": False, "insufficient_evidence": p is None,
           "reason": None if p is not None else "too few finite bootstrap replicates of the difference",
           "n": g.row["n"], "n_reference": ref.row["n"]}
    row["statement"] = statement(row, norm=norm, column=column, confidence=settings.confidence)
    return row


def family_p_values(groups: dict) -> list[float]:
    """The robustness tests' raw p-values in family order: the tested disparities, then the other pairs."""
    return family_order(groups["disparities"], groups["other_pairs"])


def mark_findings(groups: dict, *, adjusted: list[float], n_family: int, correction: str, with_bias: bool) -> dict:
    """``groups`` with adjusted p-values, findings and the family's description set.

    Parameters
    ----------
    groups : dict
        The ``robustness.groups`` block (not modified).
    adjusted : list of float
        Adjusted p-values of the tested disparities (those with a ``p_value``), in their order;
        further values (the other pairs') are not read.
    n_family : int
        Tests corrected together (these and, ``with_bias``, the Bias section's).
    correction : {"holm", "bh"}
        ``[bias] correction``.
    with_bias : bool
        Whether the family holds the Bias section's tests.

    Returns
    -------
    dict
        A new block; ``findings`` holds the statements of the findings, most extreme first, or one
        sentence saying there is none.
    """
    confidence = groups["confidence"]
    it = iter(adjusted)
    disparities = []
    for d in groups["disparities"]:
        d = dict(d)
        if d["p_value"] is not None:
            d["p_adjusted"] = float(next(it))
            d["finding"] = is_finding(p_adjusted=d["p_adjusted"], ci_high=d["ci_high"], confidence=confidence,
                                      tolerance=0.0)
        disparities.append(d)
    n_own = len(family_p_values(groups))
    name = CORRECTION_NAMES[correction]
    found = sorted((d for d in disparities if d["finding"]), key=lambda d: d["difference"])
    findings = [d["statement"] for d in found] or [
        f"No robustness disparity was a finding: none of the {n_own} comparisons of groups showed a group fooled by "
        f"smaller perturbations than another with {round(confidence * 100)}% confidence after "
        f"{name.split(' (')[0]} correction over {n_family} tests."]
    return dict(groups, disparities=disparities, findings=findings,
                family={"correction": name, "n_tests": int(n_family), "n_robustness_tests": n_own,
                        "with_bias": bool(with_bias)})


def adjust_alone(groups: dict, *, correction: str) -> dict:
    """:func:`mark_findings` with the robustness tests as the whole family (no Bias section)."""
    p = family_p_values(groups)
    return mark_findings(groups, adjusted=adjust(p, correction=correction), n_family=len(p), correction=correction,
                         with_bias=False)


def statement(d: dict, *, norm: str, column: str, confidence: float) -> str:
    """A tested disparity in words: "voice_type = child: clips are fooled by L2 perturbations 3.1x smaller ..."."""
    times = 1.0 / d["ratio"]
    ci = (f"{round(confidence * 100)}% CI {1.0 / d['ratio_ci']['high']:.1f}x to {1.0 / d['ratio_ci']['low']:.1f}x"
          if d["ratio_ci"] else "no interval")
    return (f"{column} = {d['group']}: clips are fooled by {NORM_NAMES[norm]} perturbations {times:.1f}x "
            f"smaller than for {column} = {d['reference']} ({ci}; median {d['median_int16']:.1f} vs "
            f"{d['reference_median_int16']:.1f} in 16-bit PCM units; n = {d['n']} vs {d['n_reference']} attacked "
            "clips).")
