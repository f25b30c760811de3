"""Clip selection, task seeding and the Robustness numbers, checked against direct computations."""

import math

import numpy as np
import pytest

from attacks.curves import evaluate_family, fit_percentile_table, percentiles_with_failures
from attacks.runner import make_tasks, select_clips
from factsheet.config import RobustnessConfig
from attacks.summary import distance_matrix, group_robustness, summarise_norm, clopper_pearson_interval
from factsheet.metrics import order_statistic_ranks


def fake_records(n=30, T=6, seed=0, fail=(3, 7)):
    rng = np.random.default_rng(seed)
    recs = []
    for i in range(n):
        base = rng.lognormal(0.0, 0.5)
        l2 = [base * (1 + 2.0 * t ** -1.2) for t in range(1, T + 1)]
        ok = i not in fail
        recs.append({"clip_id": f"c{i}", "row": i, "label": i % 3, "label_name": f"class{i % 3}",
                     "true_labels": [f"class{i % 3}"], "success": ok, "reason": "found" if ok else "init failed",
                     "queries": 100 + i, "init": "blend",
                     "iterate_l2": l2 if ok else [None] * T, "iterate_linf": [v / 50 for v in l2] if ok else [None] * T,
                     "iterate_snr_db": [20 - 20 * math.log10(v) for v in l2] if ok else [None] * T,
                     "boundary_distance": [v * 0.7 for v in l2] if ok else [None] * T})
    return recs


def test_select_clips_is_stratified_correct_and_reproducible():
    rng = np.random.default_rng(0)
    n, c = 300, 5
    labels = np.zeros((n, c), np.uint8)
    labels[np.arange(n), rng.integers(0, c, n)] = 1
    scores = rng.random((n, c)) + 0.8 * labels  # mostly right
    rows = select_clips(labels=labels, scores=scores, n_clips=40, seed=3)
    assert np.array_equal(rows, select_clips(labels=labels, scores=scores, n_clips=40, seed=3))
    assert not np.array_equal(rows, select_clips(labels=labels, scores=scores, n_clips=40, seed=4))
    top1 = scores.argmax(1)
    assert len(rows) == 40 and len(set(rows)) == 40
    assert np.all(labels[rows, top1[rows]] == 1)  # only clips the model gets right
    counts = np.bincount(top1[rows], minlength=c)
    assert counts.max() - counts.min() <= 1  # stratified by the attacked class
    # asking for more than exist returns every correct clip
    assert len(select_clips(labels=labels, scores=scores, n_clips=10_000, seed=0)) == int(
        (labels[np.arange(n), top1] == 1).sum())


def test_tasks_have_distinct_seeds_and_valid_candidates():
    rng = np.random.default_rng(1)
    scores = rng.random((50, 4))
    s = RobustnessConfig(n_clips=10, seed=5)
    rows = np.arange(10)
    tasks = make_tasks(rows=rows, clip_ids=[f"c{i}" for i in range(50)], scores=scores, settings=s)
    assert len(tasks) == 20 and len({t.seed for t in tasks}) == 20
    top1 = scores.argmax(1)
    for t in tasks:
        assert t.label == top1[t.row] and all(top1[r] != t.label for r in t.candidate_rows)
    assert tasks == make_tasks(rows=rows, clip_ids=[f"c{i}" for i in range(50)], scores=scores, settings=s)


def test_failures_are_infinite_never_zero():
    recs = fake_records()
    d = distance_matrix(recs, norm="l2", iterations=6)
    assert np.isinf(d[3]).all() and np.isinf(d[7]).all() and np.isfinite(np.delete(d, [3, 7], 0)).all()


def test_summary_matches_direct_computation():
    recs = fake_records()
    block = summarise_norm(recs, norm="l2", iterations=6, k=7, percentiles=[5, 25, 50], n_bootstrap=200,
                           confidence=0.95, seed=0)
    d = distance_matrix(recs, norm="l2", iterations=6)
    want = percentiles_with_failures(d[:, -1], percentiles=[5, 25, 50])
    got = [r["value"] for r in block["percentiles"]]
    np.testing.assert_allclose(got, want)
    assert block["percentiles"][0]["value_int16"] == pytest.approx(want[0] * 32768)
    assert block["n_attacked"] == 30 and block["n_success"] == 28
    assert block["success_rate"] == pytest.approx(28 / 30)
    # order-statistic intervals: 30 clips cannot bound the 5th percentile from below (insufficient evidence)
    lo_rank, hi_rank = order_statistic_ranks(30, percentiles=[5, 25, 50], confidence=0.95)
    xs = np.sort(d[:, -1])
    assert block["percentiles"][0]["ci_low"] is None and lo_rank[0] == 0
    for r, lr, hr in zip(block["percentiles"], lo_rank, hi_rank):
        assert r["ci_high"] == xs[hr - 1]
        assert r["ci_low"] is None or (r["ci_low"] == xs[lr - 1] and r["ci_low"] <= r["value"] <= r["ci_high"])
    for r in block["percentiles"]:
        assert r["fitted_at_k"] is not None and r["fit_family"] is not None
        # a decreasing power-law series: the value at k = T + 1 lies a little below the last point
        assert 0.8 * r["value"] < r["fitted_at_k"] < r["value"] * 1.01
    # the fitted value's interval: the row's interval at T times the curve's step from T to k (attacks.curves)
    fits = fit_percentile_table(d, percentiles=[5, 25, 50], k=7)
    assert block["percentiles"][0]["fitted_at_k_ci"]["low"] is None
    assert block["percentiles"][0]["fitted_at_k_ci"]["reason"].startswith("insufficient evidence")
    for r, f in zip(block["percentiles"][1:], fits[1:]):
        step = f.value_at_k / float(evaluate_family(f.family, f.params, [6.0])[0])
        assert r["fitted_at_k_ci"]["reason"] is None
        assert r["fitted_at_k_ci"]["low"] == pytest.approx(r["ci_low"] * step, rel=1e-12)
        assert r["fitted_at_k_ci"]["high"] == pytest.approx(r["ci_high"] * step, rel=1e-12)
    off = summarise_norm(recs, norm="l2", iterations=6, k=7, percentiles=[50], n_bootstrap=0, confidence=0.95,
                         seed=0)["percentiles"][0]
    assert off["fitted_at_k_ci"]["low"] is None and "bootstrap_resamples = 0" in off["fitted_at_k_ci"]["reason"]
    # SNR row: -20 log10 of the percentile of ||delta|| / ||x|| (here ||x|| = 10 by construction)
    rel = np.array([10 ** (-(r["iterate_snr_db"][-1]) / 20) if r["success"] else np.inf for r in recs])
    assert block["percentiles"][1]["snr_db"] == pytest.approx(
        -20 * np.log10(percentiles_with_failures(rel, percentiles=25)))
    assert [c["clip_id"] for c in block["clips"]] == [r["clip_id"] for r in recs]


@pytest.mark.parametrize("k,n,conf", [(0, 10, 0.95), (5, 10, 0.95), (10, 10, 0.95), (79, 80, 0.95), (13, 14, 0.9),
                                       (1, 16, 0.99)])
def test_clopper_pearson_equals_scipy_exact_interval(k, n, conf):
    from scipy.stats import binomtest

    want = binomtest(k, n).proportion_ci(confidence_level=conf, method="exact")
    assert clopper_pearson_interval(k, n, confidence=conf) == pytest.approx((want.low, want.high), abs=1e-12)


def test_clopper_pearson_covers_every_rate_where_wilson_did_not():
    """Exact coverage (a binomial sum over every outcome, no simulation) on a grid of true rates."""
    from scipy.stats import binom

    def coverage(n, p, interval):
        return sum(binom.pmf(k, n, p) for k in range(n + 1) if interval(k, n)[0] <= p <= interval(k, n)[1])

    rates = np.linspace(0.005, 0.995, 67)
    for n in (16, 80):
        assert min(coverage(n, p, clopper_pearson_interval) for p in rates) >= 0.95
    # the Wilson score interval it replaces, by its formula: 85 % at 16 clips and a rate of 0.99
    z = 1.959963984540054

    def wilson(k, n):
        c, h = (k / n + z * z / (2 * n)), z * np.sqrt(k / n * (1 - k / n) / n + z * z / (4 * n * n))
        return (c - h) / (1 + z * z / n), (c + h) / (1 + z * z / n)

    assert coverage(16, 0.99, wilson) < 0.86
    assert clopper_pearson_interval(0, 0) == (None, None)


def test_group_robustness_finds_planted_difference():
    recs = fake_records(n=40, fail=())
    groups = {"voice": ["loud" if i % 2 else "quiet" for i in range(40)]}
    for i, r in enumerate(recs):  # plant: 'loud' clips need 10x larger perturbations
        if i % 2:
            r["iterate_l2"] = [v * 10 for v in r["iterate_l2"]]
    rows = group_robustness(recs, groups=groups, norm="l2", iterations=6, n_bootstrap=300, confidence=0.95,
                            seed=0)
    by = {r["group"]: r for r in rows}
    assert by["loud"]["median"] > 5 * by["quiet"]["median"]
    assert by["loud"]["median_ci"]["low"] > by["quiet"]["median_ci"]["high"]
    assert by["loud"]["n"] == 20


def test_curves_plot_when_every_attack_failed():
    """A run where no clip was fooled has no finite percentile: the plot says so instead of crashing."""
    from attacks.robustness import curves_svg

    row = {"percentile": 50.0, "series": [None, None], "fit": {"family": None, "params": None}, "fitted_at_k": None}
    svg = curves_svg({"hopskipjump": {"linf": {"iterations": 2, "k": 3, "percentiles": [row]}}})
    assert svg.lstrip().startswith("<svg") or "<svg" in svg
