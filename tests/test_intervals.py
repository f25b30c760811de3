"""The intervals that replaced the percentile bootstrap where it under-covers (issue 17, item 2).

BCa is checked against scipy.stats.bootstrap(method="BCa") on the same replicates (scipy's own
bootstrap distribution) and an independent jackknife (scipy's, from the statistic on each
leave-one-out sample); the order-statistic interval against the binomial distribution and the
classical table value of the median's interval; the leave-one-clip-out values against
tagging_metrics on the clips left.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from attacks.curves import percentile_ci
from factsheet.metrics import (MIN_CLASS_SUPPORT, TAGGING_STATISTICS, bca_interval, bootstrap_tagging_ci,
                               bootstrap_tagging_replicates, order_statistic_interval, order_statistic_ranks,
                               tagging_jackknife, tagging_metrics)


def _scored(n: int, m: int, prevalence: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, m)) < prevalence).astype(np.int8)
    y[:2] = [1, 0] * (m // 2) + [1] * (m % 2)  # a positive and a negative in every class
    y[2:4] = 1 - y[:2]
    s = np.round(rng.standard_normal((n, m)) + 1.2 * y, 1)  # rounded: ties
    return y, s


def test_bca_equals_scipy_on_a_skewed_statistic():
    rng = np.random.default_rng(0)
    x = rng.lognormal(size=40)

    def sd(a, axis=-1):
        return np.std(a, axis=axis, ddof=1)

    res = stats.bootstrap((x,), sd, method="BCa", n_resamples=2000, rng=np.random.default_rng(1))
    jack = np.array([sd(np.delete(x, i)) for i in range(x.size)])
    iv = bca_interval(res.bootstrap_distribution, estimate=float(sd(x)), jackknife=jack, confidence=0.95)
    assert iv.defined and iv.n_used == 2000
    np.testing.assert_allclose([iv.low, iv.high], res.confidence_interval, rtol=1e-12)


@pytest.mark.parametrize("statistic", ["mean_auc", "mAP"])
def test_tagging_bca_equals_scipy(statistic):
    # scipy resamples clip indices and computes its own jackknife from the statistic; ours comes from
    # the count kernel (tagging_jackknife): the intervals agree on scipy's replicates.
    y, s = _scored(60, 3, 0.3, seed=3)

    def stat(idx, axis=-1):
        return getattr(tagging_metrics(y[idx], s[idx]), statistic)

    res = stats.bootstrap((np.arange(60),), stat, method="BCa", n_resamples=199, vectorized=False,
                          rng=np.random.default_rng(4))
    jack = tagging_jackknife(y, s)[statistic]
    iv = bca_interval(res.bootstrap_distribution, estimate=float(stat(np.arange(60))), jackknife=jack,
                      confidence=0.95)
    np.testing.assert_allclose([iv.low, iv.high], res.confidence_interval, rtol=1e-10)


@pytest.mark.parametrize("prevalence", [0.05, 0.4])
def test_jackknife_equals_metrics_on_the_clips_left(prevalence):
    y, s = _scored(70, 4, prevalence, seed=5)
    jack = tagging_jackknife(y, s)
    for i in range(70):
        m = tagging_metrics(np.delete(y, i, axis=0), np.delete(s, i, axis=0))
        for k in TAGGING_STATISTICS:
            np.testing.assert_equal(jack[k][i], getattr(m, k))  # exact; NaN matches NaN


def test_bootstrap_tagging_ci_bca_is_bca_of_its_replicates():
    y, s = _scored(120, 3, 0.3, seed=6)
    ci = bootstrap_tagging_ci(y, s, n_resamples=300, seed=2)
    reps = bootstrap_tagging_replicates(y, s, n_resamples=300, seed=2)
    jack = tagging_jackknife(y, s)
    m = tagging_metrics(y, s)
    for k in ("mAP", "mean_auc", "d_prime"):
        iv = bca_interval(reps[k], estimate=float(getattr(m, k)), jackknife=jack[k], confidence=0.95)
        assert ci[k].method == "bca" and (ci[k].low, ci[k].high) == (iv.low, iv.high)
        assert ci[k].low <= ci[k].estimate <= ci[k].high
    assert bootstrap_tagging_ci(y, s, n_resamples=300, seed=2) == ci  # seeded


def test_d_prime_interval_is_the_mean_auc_interval_transformed():
    """d' = sqrt(2) Phi^-1(mean AUC) is monotone in mean AUC and BCa respects monotone transforms, so
    d' inherits the measured coverage of mean AUC (README, "Do the intervals cover?")."""
    from factsheet.metrics import d_prime

    for seed in range(3):
        y, s = _scored(300, 4, 0.2, seed=seed)
        ci = bootstrap_tagging_ci(y, s, n_resamples=400, seed=seed)
        assert ci["d_prime"].low == pytest.approx(float(d_prime(ci["mean_auc"].low)), abs=2e-3)
        assert ci["d_prime"].high == pytest.approx(float(d_prime(ci["mean_auc"].high)), abs=2e-3)


def test_performance_interval_needs_the_minimum_support():
    y, s = _scored(200, 3, 0.3, seed=7)
    y[:, 0] = 0
    y[: MIN_CLASS_SUPPORT - 1, 0] = 1  # one class with one positive too few
    ci = bootstrap_tagging_ci(y, s, n_resamples=1000, seed=0)
    assert all(np.isnan(ci[k].low) and np.isnan(ci[k].high) for k in TAGGING_STATISTICS)
    y[MIN_CLASS_SUPPORT - 1, 0] = 1
    ci = bootstrap_tagging_ci(y, s, n_resamples=1000, seed=0)
    assert all(np.isfinite(ci[k].low) for k in ("mAP", "mean_auc"))


def test_bca_undefined_cases():
    assert not bca_interval([1.0, 2.0], estimate=0.5, jackknife=[1.0, 2.0], confidence=0.95).defined  # z0 = -inf
    assert not bca_interval([1.0, 2.0], estimate=1.5, jackknife=[1.0, np.nan], confidence=0.95).defined
    reps = np.append(np.linspace(1.0, 2.0, 100), np.nan)
    iv = bca_interval(reps, estimate=1.5, jackknife=[1.0, 1.0], confidence=0.95)
    assert iv.defined and iv.n_used == 100 and iv.n_replicates == 101  # no spread: no acceleration
    assert (iv.low, iv.high) == tuple(np.percentile(reps[:100], [2.5, 97.5]))  # z0 = 0, a = 0: percentile
    with pytest.raises(ValueError, match="confidence"):
        bca_interval([1.0], estimate=1.0, jackknife=[1.0, 2.0], confidence=1.0)


@pytest.mark.parametrize("n", [5, 16, 32, 80, 257])
@pytest.mark.parametrize("percentile", [5.0, 10.0, 25.0, 50.0, 90.0])
def test_order_statistic_ranks_are_the_tightest_equal_tailed_binomial_ranks(n, percentile):
    p, alpha = percentile / 100, 0.025
    (lo,), (hi,) = order_statistic_ranks(n, percentiles=[percentile], confidence=0.95)
    miss_below = stats.binom.cdf(lo - 1, n, p) if lo >= 1 else 0.0  # P(B < l): x_(l) above the quantile
    miss_above = stats.binom.sf(hi - 1, n, p)  # P(B >= u): x_(u) below the quantile
    assert miss_below <= alpha and miss_above <= alpha
    assert lo == n or stats.binom.cdf(lo, n, p) > alpha  # one rank higher would miss more than alpha
    assert hi == 1 or stats.binom.sf(hi - 2, n, p) > alpha


def test_median_interval_of_16_is_the_table_value():
    # Classical tables (e.g. Conover, Practical Nonparametric Statistics): x_(4) to x_(13) for n = 16 at 95 %.
    lo, hi = order_statistic_ranks(16, percentiles=50.0, confidence=0.95)
    assert (int(lo), int(hi)) == (4, 13)


def test_order_statistic_interval_with_failures():
    x = np.array([0.5, 0.1, 0.3, np.inf, 0.2, np.inf, 0.4, 0.6] * 10)  # 80 clips, 25 % not fooled
    lo, hi = percentile_ci(x, percentiles=[5, 50, 90], confidence=0.95)
    ranks = order_statistic_ranks(80, percentiles=[5, 50, 90], confidence=0.95)
    xs = np.sort(x)
    np.testing.assert_array_equal(lo, xs[ranks[0] - 1])
    assert np.isinf(hi[2]) and np.isinf(lo[2])  # the 90th percentile lies among the failures
    low5, _ = percentile_ci(x[:32], percentiles=[5.0])  # 32 clips cannot bound the 5th percentile from below
    assert np.isneginf(low5[0])
    two_d = order_statistic_interval(np.stack([x, 2 * x], axis=1), percentiles=[50.0], confidence=0.95)
    np.testing.assert_array_equal(two_d[0][0], [xs[ranks[0][1] - 1], 2 * xs[ranks[0][1] - 1]])


def test_grouped_jackknife_leaves_out_each_residue_class():
    y, s = _scored(103, 4, 0.2, seed=8)
    jack = tagging_jackknife(y, s, n_groups=10)  # 103 clips: groups of 11 (0..2) and 10 (3..9) clips
    for g in range(10):
        keep = np.arange(103) % 10 != g
        m = tagging_metrics(y[keep], s[keep])
        for k in TAGGING_STATISTICS:
            np.testing.assert_equal(jack[k][g], getattr(m, k))
    loo = tagging_jackknife(y, s)
    for k in TAGGING_STATISTICS:  # at least as many groups as clips: leave-one-out
        np.testing.assert_array_equal(tagging_jackknife(y, s, n_groups=500)[k], loo[k])


def test_bca_refuses_a_bootstrap_distribution_on_one_side_of_the_estimate():
    reps = np.concatenate([np.linspace(1.0, 2.0, 990), np.linspace(0.1, 0.2, 10)])  # 1 % below 0.5
    iv = bca_interval(reps, estimate=0.5, jackknife=[0.4, 0.5, 0.6], confidence=0.95)
    assert not iv.defined and np.isnan(iv.low) and iv.n_used == 1000
    assert bca_interval(reps, estimate=1.5, jackknife=[0.4, 0.5, 0.6], confidence=0.95).defined


# -- the Bias section's group rows: BCa over the paired bootstrap --------------------------------


def _grouped(n: int, seed: int):
    from factsheet.bias.groups import Group

    y, s = _scored(n, 3, 0.35, seed=seed)
    label = np.random.default_rng(seed + 100).integers(0, 3, n)
    return y.astype(bool), s, [Group(("g",), f"g{k}", label == k) for k in range(3)]


@pytest.mark.parametrize("n_groups", [None, 7])
def test_group_jackknife_equals_group_metrics_on_the_clips_left(n_groups, monkeypatch):
    from factsheet import metrics
    from factsheet.bias.groups import Group
    from factsheet.bias.stats import group_replicates

    y, s, groups = _grouped(50, seed=11)
    if n_groups:
        monkeypatch.setattr(metrics, "JACKKNIFE_GROUPS", n_groups)  # 50 clips: groups of 8 (0) and 7 (1..6)
    jack = group_replicates(y_true=y, y_score=s, groups=groups, n_bootstrap=0, seed=0, jackknife=True)["jack"]
    for j in range(n_groups or 50):
        keep = np.arange(50) % (n_groups or 50) != j
        left = group_replicates(y_true=y[keep], y_score=s[keep], n_bootstrap=0, seed=0,
                                groups=[Group(g.columns, g.name, g.mask[keep]) for g in groups])["point"]
        for gi in range(3):
            for k in ("ap", "auc"):
                np.testing.assert_allclose(jack[gi][k][j], left[gi][k], rtol=1e-12, atol=0, equal_nan=True)


def test_group_bca_equals_scipy():
    # scipy resamples the clips and runs the Bias kernel on each resample (and on each leave-one-out
    # sample for its jackknife); ours takes the jackknife from the count kernel: same interval.
    from factsheet.bias.groups import Group
    from factsheet.bias.stats import group_level, group_level_jackknife, group_replicates

    y, s, groups = _grouped(60, seed=12)
    full = group_replicates(y_true=y, y_score=s, groups=groups, n_bootstrap=0, seed=0, jackknife=True)
    classes = full["point"][1]["n_pos"] >= 3

    def group_map(idx, axis=-1):
        point = group_replicates(y_true=y[idx], y_score=s[idx], n_bootstrap=0, seed=0,
                                 groups=[Group(g.columns, g.name, g.mask[idx]) for g in groups])["point"][1]
        return group_level(point, {"ap": point["ap"][None], "auc": point["auc"][None]}, classes)["mAP"][0]

    res = stats.bootstrap((np.arange(60),), group_map, method="BCa", n_resamples=199, vectorized=False,
                          rng=np.random.default_rng(13))
    jack = group_level_jackknife(full["jack"][1], classes)["mAP"]
    iv = bca_interval(res.bootstrap_distribution, estimate=float(group_map(np.arange(60))), jackknife=jack,
                      confidence=0.95)
    assert iv.defined
    np.testing.assert_allclose([iv.low, iv.high], res.confidence_interval, rtol=1e-10)


def test_bias_group_rows_print_bca_of_the_paired_replicates():
    import pandas as pd

    from factsheet.bias import evaluate_bias
    from factsheet.bias.groups import Group
    from factsheet.bias.stats import group_level, group_level_jackknife, group_replicates
    from factsheet.config import BiasConfig, MetricsConfig
    from factsheet.datasets.base import ClassLabel

    y, s, groups = _grouped(240, seed=14)
    value = np.select([g.mask for g in groups], [g.name for g in groups], "").astype(object)
    value[:12] = "tiny"  # below min_group_size: insufficient evidence, no interval
    groups = [Group(("g",), v, value == v) for v in ("g0", "g1", "g2", "tiny")]
    meta = pd.DataFrame({"clip_id": [str(i) for i in range(240)], "g": value})
    boot = MetricsConfig(bootstrap_resamples=300, seed=5)
    labels = [ClassLabel(index=i, mid=f"/x/{i}", display_name=f"c{i}", category="cat") for i in range(3)]
    section, _ = evaluate_bias(y_true=y, y_score=s, class_labels=labels, metadata=meta,
                               settings=BiasConfig(columns=("g",), condition_columns=()), bootstrap=boot)
    assert section["interval_methods"]["groups"] == "bca_expanded"

    def expanded(n):  # Hesterberg's expanded level, by hand from scipy's t and normal distributions
        return 2.0 * stats.norm.cdf(np.sqrt(n / (n - 1.0)) * stats.t.ppf(0.975, n - 1.0)) - 1.0

    res = group_replicates(y_true=y, y_score=s, groups=groups, n_bootstrap=300, seed=5, jackknife=True)
    rows = {r["group"]: r for r in section["groups"]}
    assert [r["group"] for r in section["groups"]] == ["g0", "g1", "g2", "tiny"]  # the same groups, same order
    for gi, g in enumerate(groups[:3]):
        classes = res["point"][gi]["n_pos"] >= 10
        level, jack = group_level(res["point"][gi], res["reps"][gi], classes), group_level_jackknife(res["jack"][gi],
                                                                                                    classes)
        fewest = int(res["point"][gi]["n_pos"][classes].min())
        for k in ("mAP", "mean_auc", "d_prime"):
            iv = bca_interval(level[k][1], estimate=float(level[k][0]), jackknife=jack[k], confidence=expanded(fewest))
            assert iv.defined and (rows[g.name]["metrics"][k]["ci_low"], rows[g.name]["metrics"][k]["ci_high"]) == (
                iv.low, iv.high)
    tiny = rows["tiny"]
    assert tiny["insufficient_evidence"]
    assert all(m["ci_low"] is None and m["ci_high"] is None for m in tiny["metrics"].values())
    cells = section["class_groups"]
    assert section["interval_methods"]["class_groups"] == "bca_expanded"
    index = {g.name: gi for gi, g in enumerate(groups)}
    shown = [c for c in cells if not c["insufficient_evidence"]]
    assert shown
    for c in shown:
        gi, j = index[c["group"]], int(c["class"][1:])
        for k in ("ap", "auc"):
            iv = bca_interval(res["reps"][gi][k][:, j], estimate=float(res["point"][gi][k][j]),
                              jackknife=res["jack"][gi][k][:, j], confidence=expanded(c["n_positives"]))
            assert (c[k]["ci_low"], c[k]["ci_high"]) == ((iv.low, iv.high) if iv.defined else (None, None))
    for c in cells:  # below min_positives, or in a group too small: the value without an interval
        thin = c["insufficient_evidence"]
        assert thin == (c["n_positives"] < 10 or c["group"] == "tiny")
        assert (c["ap"]["ci_low"] is None and c["auc"]["ci_high"] is None) == thin


# -- proportions: a single-label group's accuracy and the accuracy disparity (Bias section) -------------

#: Newcombe (1998), Statistics in Medicine 17: 873-890, Table II, method 10 (hybrid score, no continuity
#: correction): (k_a, n_a, k_b, n_b) -> the published 95 % interval of p_a - p_b, to 4 decimals.
NEWCOMBE_TABLE_II = {(56, 70, 48, 80): (0.0524, 0.3339), (9, 10, 3, 10): (0.1705, 0.8090),
                     (6, 7, 2, 7): (0.0582, 0.8062), (5, 56, 0, 29): (-0.0381, 0.1926),
                     (0, 10, 0, 20): (-0.1611, 0.2775), (0, 10, 0, 10): (-0.2775, 0.2775),
                     (10, 10, 0, 20): (0.6791, 1.0000), (10, 10, 0, 10): (0.6075, 1.0000)}


@pytest.mark.parametrize("counts", list(NEWCOMBE_TABLE_II))
def test_newcombe_interval_equals_the_published_table(counts):
    from factsheet.metrics import newcombe_difference_interval

    low, high = newcombe_difference_interval(*counts, confidence=0.95)
    assert (round(low, 4), round(high, 4)) == NEWCOMBE_TABLE_II[counts]


@pytest.mark.parametrize("counts", [(20, 20, 20, 20), (20, 20, 14, 20), (3, 50, 47, 50), (181, 200, 193, 200),
                                    (17, 20, 48, 50)])
@pytest.mark.parametrize("conf", [0.9, 0.95])
def test_newcombe_interval_equals_a_hand_computation_from_scipys_wilson_intervals(counts, conf):
    """Newcombe's formula by hand on scipy's Wilson score intervals (``binomtest(...).proportion_ci``)."""
    from factsheet.metrics import newcombe_difference_interval, wilson_interval

    ka, na, kb, nb = counts
    wa = stats.binomtest(ka, na).proportion_ci(confidence_level=conf, method="wilson")
    wb = stats.binomtest(kb, nb).proportion_ci(confidence_level=conf, method="wilson")
    assert wilson_interval(ka, na, confidence=conf) == pytest.approx((wa.low, wa.high), abs=1e-12)
    pa, pb = ka / na, kb / nb
    want = (pa - pb - np.hypot(pa - wa.low, wb.high - pb), pa - pb + np.hypot(wa.high - pa, pb - wb.low))
    got = newcombe_difference_interval(ka, na, kb, nb, confidence=conf)
    assert got == pytest.approx(want, abs=1e-12)
    swapped = newcombe_difference_interval(kb, nb, ka, na, confidence=conf)
    assert swapped == pytest.approx((-got[1], -got[0]), abs=1e-12)  # the reference's side does not matter
    if ka == na and kb == nb:
        assert got[0] < -0.1 and got[1] > 0.1  # no collapse to zero width at n of n right in both groups


def test_proportion_intervals_refuse_empty_groups():
    from factsheet.metrics import clopper_pearson_interval, newcombe_difference_interval, wilson_interval

    assert clopper_pearson_interval(0, 0) == (None, None)
    assert newcombe_difference_interval(0, 0, 3, 5) == (None, None)
    with pytest.raises(ValueError):
        wilson_interval(6, 5)


@pytest.mark.parametrize("n", [20, 50, 200])
def test_clopper_pearson_exact_coverage_is_at_least_nominal(n):
    """Exact coverage of a group's accuracy interval: the binomial probability of every outcome k whose
    interval contains the true accuracy, on a grid of accuracies (no simulation)."""
    from factsheet.metrics import clopper_pearson_interval

    k = np.arange(n + 1)
    lo, hi = np.array([clopper_pearson_interval(int(j), n, confidence=0.95) for j in k]).T
    want = [stats.binomtest(int(j), n).proportion_ci(confidence_level=0.95, method="exact") for j in (0, n // 2, n)]
    np.testing.assert_allclose(lo[[0, n // 2, n]], [w.low for w in want], atol=1e-12)
    np.testing.assert_allclose(hi[[0, n // 2, n]], [w.high for w in want], atol=1e-12)
    for p in np.linspace(0.5, 0.995, 100):
        assert stats.binom.pmf(k, n, p)[(lo <= p) & (p <= hi)].sum() >= 0.95


@pytest.mark.parametrize("n", [20, 50])
def test_newcombe_exact_coverage_near_nominal_at_small_groups(n):
    """Exact coverage of an accuracy disparity's interval: the probability of every pair of outcomes whose
    interval contains the true difference, at accuracies 0.7-0.99 (at least 94 % at 20 and 50 clips per group;
    the paired percentile bootstrap read 87.5 % at 20, 0.97 against 0.9, by simulation)."""
    from factsheet.metrics import newcombe_difference_interval

    k = np.arange(n + 1)
    iv = np.array([[newcombe_difference_interval(a, n, b, n) for b in k] for a in k])
    worst = 1.0
    for pa in np.arange(0.70, 0.995, 0.03):
        for pb in np.arange(0.70, pa + 1e-9, 0.03):
            w = np.outer(stats.binom.pmf(k, n, pa), stats.binom.pmf(k, n, pb))
            worst = min(worst, w[(iv[..., 0] <= pa - pb + 1e-12) & (pa - pb - 1e-12 <= iv[..., 1])].sum())
    assert 0.94 <= worst < 0.99


def test_interval_method_names_are_the_schemas_and_every_section_uses_them():
    import json
    from pathlib import Path

    from attacks.robustness import INTERVAL_METHODS as ROBUSTNESS
    from factsheet.bias.wording import INTERVAL_METHODS as BIAS
    from factsheet.metrics import INTERVAL_METHODS
    from factsheet.performance import INTERVAL_METHODS as PERFORMANCE

    base = json.loads((Path(__file__).parents[1] / "factsheet/schema/base.json").read_text("utf-8"))
    assert base["$defs"]["interval_methods"]["additionalProperties"]["enum"] == list(INTERVAL_METHODS)
    for used in (ROBUSTNESS, BIAS, PERFORMANCE):
        assert set(used.values()) <= set(INTERVAL_METHODS)


def test_expanded_confidence_is_hesterbergs_quantile():
    from scipy import stats

    from factsheet.metrics import expanded_confidence

    for n in (2, 3, 10, 28, 56, 400):
        z = np.sqrt(n / (n - 1)) * stats.t.ppf(0.975, df=n - 1)  # Hesterberg (2015), section 3.3
        want = min(2 * stats.norm.cdf(z) - 1, 1.0 - 1e-9)  # capped: at n = 2 the formula rounds to 1 in float64
        assert expanded_confidence(0.95, n=n) == pytest.approx(want, abs=1e-12)
        if n >= 10:  # at n = 2 the level is 1 - 1e-19: no quantile to read back in float64
            assert stats.norm.ppf(0.5 + expanded_confidence(0.9, n=n) / 2) == pytest.approx(
                np.sqrt(n / (n - 1)) * stats.t.ppf(0.95, df=n - 1), rel=1e-9)
    assert 0.95 < expanded_confidence(0.95, n=10**6) < 0.95 + 1e-5
    assert expanded_confidence(0.95, n=1) == expanded_confidence(0.95, n=2) == 1.0 - 1e-9
    with pytest.raises(ValueError, match="at least 1"):
        expanded_confidence(0.95, n=0)
    with pytest.raises(ValueError, match="confidence"):
        expanded_confidence(1.0, n=10)
