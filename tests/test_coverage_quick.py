"""Sanity checks of the coverage study (``bench/coverage.py``): its known truths and its harness.

Not the coverage claim itself (that is the README table, from the full run): a tiny seeded
cell must come out near nominal, and the analytic truths must match large Monte-Carlo samples.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from attacks.curves import percentiles_with_failures
from factsheet.metrics import average_precision, roc_auc

# bench/ is not a package: load the script by path, whatever the working directory.
_SPEC = importlib.util.spec_from_file_location("bench_coverage", Path(__file__).parents[1] / "bench" / "coverage.py")
cov = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = cov  # dataclasses look their module up there
_SPEC.loader.exec_module(cov)
CLASS_D, LOGNORMAL, PERCENTILES = cov.CLASS_D, cov.LOGNORMAL, cov.PERCENTILES
binormal_ap, binormal_auc, mixture_percentile, tagging_cell = (cov.binormal_ap, cov.binormal_auc,
                                                               cov.mixture_percentile, cov.tagging_cell)

DRAWS = 1_000_000


@pytest.mark.parametrize("failure_share", [0.1, 0.3])
def test_mixture_percentile_matches_monte_carlo(failure_share):
    rng = np.random.default_rng(1)
    x = rng.lognormal(*LOGNORMAL, size=DRAWS)
    x[rng.random(DRAWS) < failure_share] = np.inf
    mc = percentiles_with_failures(x, percentiles=PERCENTILES)
    np.testing.assert_allclose(mixture_percentile(PERCENTILES, failure_share), mc, rtol=1e-2)
    assert np.isinf(mixture_percentile(100 * (1 - failure_share) + 1, failure_share))


@pytest.mark.parametrize("prevalence", [0.01, 0.5])
def test_binormal_truths_match_monte_carlo(prevalence):
    rng = np.random.default_rng(2)
    d = 1.5
    y = (rng.random(DRAWS) < prevalence)[:, None]
    s = rng.standard_normal((DRAWS, 1)) + d * y
    assert abs(roc_auc(y, s)[0] - binormal_auc(d)) < 5e-3
    assert abs(average_precision(y, s)[0] - binormal_ap(d, prevalence)) < 5e-3


def test_binormal_ap_limits():
    assert binormal_ap(0.0, 0.2) == pytest.approx(0.2, abs=1e-9)  # no separation: precision = prevalence
    assert binormal_ap(12.0, 0.2) == pytest.approx(1.0, abs=1e-6)


def test_tiny_auc_cell_covers():
    truth_ap = np.array([binormal_ap(d, 0.5) for d in CLASS_D])
    _, _, auc, _ = tagging_cell(400, 0.5, reps=40, resamples=200, seed=17, cell=1, truth_ap=truth_ap)
    assert auc.statistic == "mean AUC (BCa)" and auc.reps == 40 and len(auc.covered) == 40
    assert np.mean(auc.covered) >= 0.8
    again = tagging_cell(400, 0.5, reps=3, resamples=200, seed=17, cell=1, truth_ap=truth_ap)[2]
    assert again.covered == auc.covered[:3] and again.widths == auc.widths[:3]  # seeded


def test_tiny_rare_cell_refuses_below_the_minimum_support():
    # 1 % prevalence, 100 clips: about one positive per class, below MIN_CLASS_SUPPORT: no BCa interval
    truth_ap = np.array([binormal_ap(d, 0.01) for d in CLASS_D])
    pct_auc, _, bca_auc, _ = tagging_cell(100, 0.01, reps=5, resamples=50, seed=17, cell=1, truth_ap=truth_ap)
    assert len(pct_auc.covered) == 5 and bca_auc.covered == [] and bca_auc.reps == 5


def test_tiny_percentile_cell_order_statistics_cover():
    tallies = cov.percentile_cell(32, 0.1, reps=60, resamples=50, seed=17, cell=1)
    by_name = {t.statistic: t for t in tallies}
    assert by_name["p5 norm (order statistic)"].covered == []  # 32 clips: no lower bound of the 5th percentile
    median = by_name["p50 norm (order statistic)"]
    assert len(median.covered) == 60 and np.mean(median.covered) >= 0.85


def test_tiny_drop_cell_bca_covers_and_is_seeded():
    tallies = cov.drop_cell(400, 0.14, 0.7, reps=12, resamples=200, seed=17, cell=3)
    names = [t.statistic for t in tallies]
    assert names == ["mAP drop (percentile)", "mean AUC drop (percentile)", "mAP drop (BCa)", "mean AUC drop (BCa)"]
    bca_map = tallies[2]
    assert bca_map.reps == 12 and len(bca_map.covered) == 12 and np.mean(bca_map.covered) >= 0.75
    again = cov.drop_cell(400, 0.14, 0.7, reps=2, resamples=200, seed=17, cell=3)[2]
    assert again.covered == bca_map.covered[:2] and again.widths == bca_map.widths[:2]


def test_tiny_ratio_cell_covers_the_true_log_ratio():
    (tally,) = cov.ratio_cell(32, -0.7, reps=60, resamples=200, seed=17, cell=5)
    assert tally.statistic == "log median ratio" and tally.reps == 60 and len(tally.covered) == 60
    assert np.mean(tally.covered) >= 0.85


@pytest.mark.parametrize("kind", ["slices", "described"])
def test_group_truth_is_the_prevalence_matched_population_ap(kind):
    # The Bias section's group AP weights each negative by the group's share of the class's positives:
    # on 2 x 10^5 clips it must approach the binormal AP at the group's separation and the class's
    # prevalence in the whole set (not in the group), and the group AUC Phi(sep / sqrt 2).
    from factsheet.bias.stats import group_replicates

    factors = (1.0, 1.0, 0.7) if kind == "slices" else (1.0, 1.0, 0.6)
    y, s, groups, sep = cov._bias_data(kind, 200_000, factors, np.random.default_rng(3), prevalence=0.14,
                                       class_d=np.array([1.5, 2.5]))
    point = group_replicates(y_true=y, y_score=s, groups=groups, n_bootstrap=0, seed=0)["point"]
    for gi in (0, 2):
        if kind == "described":
            assert point[gi]["n_pos"][1] < 0.25 * point[gi]["n_pos"][0]  # a voice group is mostly class 0
        k = 2 if kind == "slices" else 1  # a voice group holds few positives of class 1: too noisy to check
        np.testing.assert_allclose(point[gi]["ap"][:k], [binormal_ap(v, 0.14) for v in sep[gi, :k]], atol=0.01)
        np.testing.assert_allclose(point[gi]["auc"][:k], binormal_auc(sep[gi, :k]), atol=0.005)
    assert sep[2, 0] < sep[0, 0]


def test_tiny_bias_cell_measures_the_printed_intervals_and_is_seeded():
    kw = {"resamples": 100, "seed": 17, "cell": 700, "class_d": cov.DEMO_D[::3]}  # 5 classes: fewer truths to integrate
    tallies = cov.bias_cell("slices", 300, (1.0, 1.0, 0.7), reps=6, **kw)
    by = {t.statistic: t for t in tallies}
    now, before = by["group mAP, weaker slice (BCa expanded)"], by["group mAP, weaker slice (percentile)"]
    assert now.reps == before.reps == 6 and len(before.covered) == 6 and len(now.covered) >= 4
    assert np.mean(now.covered) >= 0.75 and now.widths != before.widths  # BCa moves the bounds
    assert by["class AP, weaker slice, class 0 (BCa expanded)"].reps == 6
    again = cov.bias_cell("slices", 300, (1.0, 1.0, 0.7), reps=2, **kw)
    assert {t.statistic: t for t in again}["group mAP, weaker slice (BCa expanded)"].widths == now.widths[:2]


def test_tiny_explanation_cell_studentized_covers_and_refuses_two_clips():
    pct, stu = cov.explanation_cell(14, "gamma(2)", reps=60, resamples=200, seed=17, cell=7002)
    assert (pct.statistic, stu.statistic) == ("explanation mean (percentile)", "explanation mean (studentized)")
    assert len(stu.covered) == 60 and np.mean(stu.covered) >= 0.85
    pct2, stu2 = cov.explanation_cell(2, "gamma(2)", reps=60, resamples=100, seed=17, cell=7000)
    assert stu2.covered == [] and stu2.reps == 60  # below MIN_ROWS: insufficient evidence
    assert np.mean(pct2.covered) < 0.7  # the percentile bootstrap of two clips: about one time in two


def test_explanation_truths_are_the_distribution_means():
    from scipy import stats

    rng = np.random.default_rng(3)
    reference = {"normal": stats.norm(), "beta(6, 2)": stats.beta(6, 2), "gamma(2)": stats.gamma(2.0),
                 "exponential": stats.expon()}
    for name, (draw, mean, skew) in cov.EXPLANATION_DISTRIBUTIONS.items():
        assert draw(rng, 200_000).mean() == pytest.approx(mean, abs=1e-2), name
        m, s = reference[name].stats(moments="ms")
        assert (float(m), float(s)) == pytest.approx((mean, skew), abs=5e-3), name


def test_matched_and_group_ap_truths_match_large_draws():
    """The natural shift's matched AP converges to AP(d_target, pi_source); a group's AP (its positives against
    every negative, prevalence-matched) to AP(d_group, pi_class)."""
    from factsheet.bias.groups import Group
    from factsheet.bias.stats import group_replicates
    from factsheet.domain_shift.natural import matched_ap, prevalence_weights

    rng = np.random.default_rng(4)
    n = 200_000
    yt = rng.random((n, 1)) < 0.065
    st = rng.standard_normal((n, 1)) + 1.6 * yt
    w = prevalence_weights(positives_target=yt.sum(0), negatives_target=(~yt).sum(0),
                           positives_source=np.array([0.14 * n]), negatives_source=np.array([0.86 * n]))
    got = matched_ap(y_target=yt, s_target=st, counts_target=np.ones((1, n)), negative_weight=w[None, :])[0, 0]
    assert got == pytest.approx(binormal_ap(1.6, 0.14), abs=4e-3)
    n = 60_000
    member = np.arange(n) < n // 5
    y = (member | (rng.random(n) < 0.1))[:, None]
    s = rng.standard_normal((n, 1)) + np.where(member, 1.2, 2.0)[:, None] * y
    res = group_replicates(y_true=y.astype(np.int8), y_score=s, groups=[Group(("g",), "a", member)], n_bootstrap=1,
                           seed=0)
    assert res["point"][0]["ap"][0] == pytest.approx(binormal_ap(1.2, float(y.mean())), abs=6e-3)


def test_tiny_natural_cell_covers_and_is_seeded():
    tallies = cov.natural_cell(240, 160, 0.8, reps=3, resamples=60, seed=17, cell=6001)
    names = ["natural source mAP", "natural source mean AUC", "natural target mAP", "natural target matched mAP",
             "natural target mean AUC", "natural gap mAP", "natural gap matched mAP", "natural gap mean AUC"]
    assert [t.statistic for t in tallies] == [f"{n} ({m})" for m in ("percentile", "BCa expanded") for n in names]
    covered = [c for t in tallies for c in t.covered]
    assert len(covered) == 48 and np.mean(covered) >= 0.75
    again = cov.natural_cell(240, 160, 0.8, reps=1, resamples=60, seed=17, cell=6001, methods=("bca_expanded",), first_rep=2)
    assert [t.widths for t in again] == [t.widths[2:] for t in tallies[8:]]  # replication 2 alone, same interval


def test_tiny_group_drop_cell_covers():
    drop, extra = cov.group_drop_cell(30, 0.5, reps=3, resamples=60, seed=17, cell=8001)
    assert (drop.statistic, extra.statistic) == ("group mAP drop", "extra mAP drop")
    assert len(drop.covered) == 9 and len(extra.covered) == 6  # 3 groups; 2 compared with the most resilient
    assert np.mean(drop.covered + extra.covered) >= 0.75


def test_fitted_truth_of_the_common_curve_matches_large_draws():
    x = cov._fitted_norms("common", 400_000, 0.1, 0.3, np.array([11.0]), np.random.default_rng(3))[:, 0]
    mc = percentiles_with_failures(x, percentiles=PERCENTILES)
    np.testing.assert_allclose(cov.fitted_truth("common", 0.1, 0.3, 11, seed=17), mc, rtol=2e-2)


def test_tiny_fitted_cell_covers_and_is_seeded():
    tallies = cov.fitted_cell("common", 80, 0.1, 0.3, 11, reps=20, resamples=0, seed=17, cell=9502)
    by_p = {t.statistic.split(" ")[1]: t for t in tallies}
    assert all(len(t.covered) == 20 for t in tallies)  # 80 clips bound even the 5th percentile
    assert np.mean(by_p["p50"].covered) >= 0.85 and np.mean(by_p["p5"].covered) >= 0.85
    again = cov.fitted_cell("common", 80, 0.1, 0.3, 11, reps=3, resamples=0, seed=17, cell=9502)
    assert again[3].widths == by_p["p50"].widths[:3]
    few = cov.fitted_cell("common", 32, 0.1, 0.3, 11, reps=3, resamples=0, seed=17, cell=9501)
    assert few[0].covered == [] and few[0].reps == 3  # 32 clips: no lower bound of the 5th: no interval


def test_tiny_accuracy_cell_measures_the_printed_intervals_and_is_seeded():
    """Single-label groups of 20 clips at accuracy 0.97: the percentile bootstrap the Bias section printed
    collapses to [1, 1] whenever a group has 20 of 20 right (54 % of groups); Clopper-Pearson does not."""
    kw = {"resamples": 200, "seed": 17, "cell": cov.ACCURACY_CELL_BASE + cov.ACCURACY_CELLS.index((20, 0.97, 0.97))}
    by = {t.statistic: t for t in cov.accuracy_cell(20, 0.97, 0.97, reps=30, **kw)}
    pct, cp = by["group accuracy (percentile)"], by["group accuracy (Clopper-Pearson)"]
    assert pct.reps == cp.reps == 60 and len(cp.covered) == 60  # both groups of every data set
    assert np.mean(pct.covered) < 0.7 and np.mean(cp.covered) >= 0.9
    assert np.mean(by["accuracy disparity (Newcombe)"].covered) >= 0.9
    again = {t.statistic: t for t in cov.accuracy_cell(20, 0.97, 0.97, reps=2, **kw)}
    assert again["group accuracy (Clopper-Pearson)"].widths == cp.widths[:4]
    assert again["accuracy disparity (percentile)"].widths == by["accuracy disparity (percentile)"].widths[:2]


def test_accuracy_exact_coverage_rows():
    rows = cov.accuracy_exact_coverage(sizes=(20,), accuracies=(0.97,), pairs=((0.97, 0.9),), lowest=(0.7,)).splitlines()
    cover = [float(r.split("|")[7].split("%")[0]) for r in rows]
    assert len(rows) == 4 and all(c >= 94.0 for c in cover)  # CP at 0.97, CP min, Newcombe at 0.97 vs 0.9, its min
    assert min(cover[:2]) >= 95.0 and "Clopper-Pearson" in rows[0] and "Newcombe" in rows[2]


def test_chosen_cells_run_alone_in_parts_with_the_same_data_sets(tmp_path):
    kw = {"resamples": 60, "seed": 17, "studies": ("dprime", "bias"), "cells": frozenset({603})}
    whole = cov.run_study(cov.Design(), reps=4, **kw)
    assert [(t.statistic, t.n) for t in whole] == [("d' (BCa)", 1600), ("mean class d' (BCa)", 1600)]
    parts = [cov.run_study(cov.Design(), reps=2, first_rep=f, **kw) for f in (0, 2)]
    for i, part in enumerate(parts):
        cov.dump(part, str(tmp_path / f"part{i}.json"))
    merged = cov.load([str(tmp_path / "part0.json"), str(tmp_path / "part1.json")])
    for a, b in zip(whole, merged):  # reps 2-3 of the second part are reps 2-3 of the whole run
        assert (a.reps, a.covered, a.widths, a.errors, a.misses) == (b.reps, b.covered, b.widths, b.errors, b.misses)
    with pytest.raises(ValueError, match="first_rep"):
        cov.run_study(cov.Design(), reps=1, resamples=60, seed=17, studies=("tagging",), first_rep=1)


def test_estimator_bias_and_miss_sides_by_hand():
    t = cov.Tally("x", 10, "s")
    for low, high, truth, est in ((0.0, 1.0, 0.5, 0.4), (0.0, 0.4, 0.5, 0.2), (0.6, 0.9, 0.5, 0.7),
                                  (0.1, 0.3, 0.5, 0.25), (float("nan"), 1.0, 0.5, 0.9)):
        t.add(low, high, truth, est)
    err = np.array([-0.1, -0.3, 0.2, -0.25])  # the NaN interval is no interval: not counted
    mean, ratio, below, above = t.estimator_bias()
    assert t.reps == 5 and t.covered == [True, False, False, False]
    assert mean == pytest.approx(err.mean()) and ratio == pytest.approx(err.mean() / err.std(ddof=1))
    assert (below, above) == (2, 1)
    assert "| x | 10 | s | 4/5 | 25.0 ± 21.7 % |" in cov.diagnostics([t])
