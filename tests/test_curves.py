"""Percentiles with failures, their bootstrap CIs, and the curve fits of attacks/curves.py.

References are independent of the code under test: ``np.percentile`` on finite data, its limit
when failures get a large finite norm, hand-computed values, and analytic curves.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from attacks.curves import (CRITERION, FAMILIES, FORMULAS, N_PARAMS, SeriesFit, bootstrap_percentile_ci,
                            evaluate_family, fit_percentile_table, fit_series, fitted_value_ci, percentile_ci,
                            percentiles_with_failures, value_at_k_reason)
from factsheet.metrics import order_statistic_ranks

SEED_PERCENTILES = (5, 10, 15, 25, 50)
T = np.arange(1.0, 11.0)  # the seed: 10 iterations, curve evaluated at 11

TRUTH = {
    "power_floor": {"a": 887.0, "b": 0.7, "c": 150.0},  # the seed's 5th percentile L2 scale
    "exp_floor": {"a": 5000.0, "b": 0.4, "c": 300.0},
    "loglog_line": {"p": 5.0, "q": -0.8},
}


def _analytic(family: str, t):
    p = TRUTH[family]
    t = np.asarray(t, dtype=float)
    if family == "power_floor":
        return p["a"] * t ** -p["b"] + p["c"]
    if family == "exp_floor":
        return p["a"] * np.exp(-p["b"] * t) + p["c"]
    return math.e ** p["p"] * t ** p["q"]


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    # nothing may leak from the fits or the percentiles (curve_fit, log of 0, inf - inf)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# --------------------------------------------------------------------------------------
# percentiles_with_failures
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 7, 100, 1001])
def test_percentiles_equal_numpy_on_finite_data(n):
    rng = np.random.default_rng(n)
    x = rng.lognormal(6.0, 1.5, size=n)
    q = [0, 5, 10, 15, 25, 33.3, 50, 75, 99.9, 100]
    np.testing.assert_array_equal(percentiles_with_failures(x, percentiles=q), np.percentile(x, q))
    x2 = rng.lognormal(6.0, 1.5, size=(n, 4))
    np.testing.assert_array_equal(percentiles_with_failures(x2, percentiles=q), np.percentile(x2, q, axis=0))


def test_percentiles_with_infinities_by_hand():
    # sorted [1, 2, inf, inf], n = 4, h = 3 * P / 100
    x = [np.inf, 2.0, np.inf, 1.0]
    got = percentiles_with_failures(x, percentiles=[0, 25, 100 / 3, 50, 66.67, 100])
    # P=0: x0 = 1; P=25: h=0.75 -> 1 + 0.75 * (2 - 1); P=100/3: h=1 exactly -> x1 = 2 (the inf
    # neighbour has weight 0); P=50: h=1.5 -> half of inf -> inf; P=66.67: h>2 -> inf; P=100: inf
    np.testing.assert_array_equal(got, [1.0, 1.75, 2.0, np.inf, np.inf, np.inf])
    with np.errstate(invalid="ignore"):
        assert np.isnan(np.percentile(x, 50))  # why numpy cannot be used directly
    assert percentiles_with_failures([1.0, np.inf], percentiles=0) == 1.0
    assert percentiles_with_failures([np.inf, np.inf], percentiles=5) == np.inf
    assert percentiles_with_failures([np.inf], percentiles=[0, 50, 100]).tolist() == [np.inf] * 3


def test_percentiles_with_infinities_are_the_limit_of_a_large_finite_norm():
    rng = np.random.default_rng(3)
    q = np.linspace(0, 100, 41)
    for _ in range(20):
        x = rng.lognormal(3.0, 1.0, size=int(rng.integers(1, 30)))
        x[rng.random(x.size) < 0.3] = np.inf
        got = percentiles_with_failures(x, percentiles=q)
        assert not np.isnan(got).any()
        at_1e6 = np.percentile(np.where(np.isinf(x), 1e6, x), q)
        at_1e9 = np.percentile(np.where(np.isinf(x), 1e9, x), q)
        finite = np.isfinite(got)
        np.testing.assert_array_equal(got[finite], at_1e6[finite])  # does not depend on the failures' norm
        np.testing.assert_array_equal(got[finite], at_1e9[finite])
        assert np.all(at_1e9[~finite] > 100 * at_1e6[~finite] - 1e6)  # grows without bound with it


def test_percentiles_vectorised_over_iterations():
    rng = np.random.default_rng(4)
    x = rng.lognormal(5.0, 1.0, size=(50, 10))
    x[:7] = np.inf  # clips never attacked successfully
    x[10:14, :3] = np.inf  # found late
    got = percentiles_with_failures(x, percentiles=SEED_PERCENTILES)
    assert got.shape == (5, 10)
    for j in range(10):
        np.testing.assert_array_equal(got[:, j], percentiles_with_failures(x[:, j], percentiles=SEED_PERCENTILES))
    assert percentiles_with_failures(x, percentiles=50).shape == (10,)


@pytest.mark.parametrize("norms, q", [([1.0, np.nan], 50), ([1.0, -1.0], 50), ([], 50), ([1.0], 101),
                                      ([1.0], -1), ([1.0], np.nan), (np.ones((2, 2, 2)), 50)])
def test_percentiles_reject_bad_input(norms, q):
    with pytest.raises(ValueError):
        percentiles_with_failures(norms, percentiles=q)


# --------------------------------------------------------------------------------------
# bootstrap_percentile_ci
# --------------------------------------------------------------------------------------


def test_bootstrap_equals_a_slow_reference():
    rng = np.random.default_rng(5)
    x = rng.lognormal(5.0, 1.0, size=40)
    low, high = bootstrap_percentile_ci(x, percentiles=[10, 50], n_resamples=200, confidence=0.9, seed=11)
    draws = np.random.default_rng(11)
    reps = np.array([np.percentile(x[draws.integers(0, 40, size=40)], [10, 50]) for _ in range(200)])
    ref_low, ref_high = np.percentile(reps, [5.0, 95.0], axis=0)
    np.testing.assert_allclose(low, ref_low, rtol=1e-12)
    np.testing.assert_allclose(high, ref_high, rtol=1e-12)


def test_bootstrap_is_deterministic_and_contains_the_estimate():
    rng = np.random.default_rng(6)
    x = rng.lognormal(5.0, 1.0, size=300)
    a = bootstrap_percentile_ci(x, percentiles=SEED_PERCENTILES, seed=1)
    b = bootstrap_percentile_ci(x, percentiles=SEED_PERCENTILES, seed=1)
    c = bootstrap_percentile_ci(x, percentiles=SEED_PERCENTILES, seed=2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    est = percentiles_with_failures(x, percentiles=SEED_PERCENTILES)
    assert np.all(a[0] <= est) and np.all(est <= a[1]) and np.all(a[0] < a[1])


def test_bootstrap_width_shrinks_with_more_clips():
    rng = np.random.default_rng(7)
    widths = []
    for n in (50, 400, 3200):
        low, high = bootstrap_percentile_ci(rng.lognormal(5.0, 1.0, size=n), percentiles=[25, 50], seed=0,
                                            n_resamples=300)
        widths.append(high - low)
    assert np.all(widths[1] < widths[0]) and np.all(widths[2] < widths[1])
    assert np.all(widths[2] < 0.5 * widths[0])


def test_bootstrap_keeps_failures():
    rng = np.random.default_rng(8)
    x = rng.lognormal(5.0, 1.0, size=(100, 3))
    x[:45] = np.inf  # 45 % failures: the median is finite, but not in every resample
    low, high = bootstrap_percentile_ci(x, percentiles=[5, 50, 75], seed=3, n_resamples=300)
    assert low.shape == high.shape == (3, 3)
    assert not np.isnan(low).any() and not np.isnan(high).any()
    assert np.all(np.isfinite(low[0])) and np.all(np.isfinite(high[0]))  # 5th: no failure in reach
    assert np.all(np.isfinite(low[1])) and np.all(np.isposinf(high[1]))  # median: inf in the upper tail
    assert np.all(np.isposinf(low[2]))  # 75th: always a failure


@pytest.mark.parametrize("kw", [{"n_resamples": 0}, {"confidence": 1.0}, {"seed": 1.5}, {"seed": None}])
def test_bootstrap_rejects_bad_options(kw):
    args = {"percentiles": [50], "seed": 0, **kw}
    with pytest.raises(ValueError):
        bootstrap_percentile_ci([1.0, 2.0], **args)


# --------------------------------------------------------------------------------------
# fit_series: recovery of known curves
# --------------------------------------------------------------------------------------


def test_family_formulas_match_the_analytic_curves():
    for family in FAMILIES:
        np.testing.assert_allclose(evaluate_family(family, TRUTH[family], T), _analytic(family, T), rtol=1e-14)
    assert set(FORMULAS) == set(N_PARAMS) == set(FAMILIES)
    with pytest.raises(ValueError):
        evaluate_family("spline", {}, T)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("k", [11, 12.5, 30])
def test_exact_curve_is_recovered(family, k):
    fit = fit_series(_analytic(family, T), k=k)
    assert fit.family == family and fit.reason is None
    for name, value in TRUTH[family].items():
        assert fit.params[name] == pytest.approx(value, rel=1e-6, abs=1e-9)
    assert fit.value_at_k == pytest.approx(float(_analytic(family, k)), rel=1e-8)
    assert fit.value_at_k == pytest.approx(float(evaluate_family(family, fit.params, k)), rel=1e-10)
    assert fit.rmse_log < 1e-8 and fit.r2_log == pytest.approx(1.0)
    assert fit.n_points == 10 and fit.t_used == tuple(T)


@pytest.mark.parametrize("family", FAMILIES)
def test_extrapolation_one_past_the_last_iteration(family):
    for n_iter in (6, 10, 20):
        t = np.arange(1.0, n_iter + 1.0)
        fit = fit_series(_analytic(family, t), k=n_iter + 1)
        assert fit.family == family
        assert fit.value_at_k == pytest.approx(float(_analytic(family, n_iter + 1)), rel=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("seed", range(6))
def test_noisy_curve_gives_the_family_or_a_close_value(family, seed):
    noise = np.exp(0.005 * np.random.default_rng(seed).standard_normal(T.size))  # 0.5 % multiplicative
    fit = fit_series(_analytic(family, T) * noise, k=11)
    truth = float(_analytic(family, 11))
    rel = abs(fit.value_at_k / truth - 1)
    assert fit.family == family or rel < 0.02
    assert rel < 0.03
    assert 0.002 < fit.rmse_log < 0.01


def test_seed_like_series_fits_power_floor():
    y = 887.0 * T**-0.7 + 150.0
    fit = fit_series(y, k=11)
    assert fit.family == "power_floor"
    assert fit.value_at_k == pytest.approx(887.0 * 11**-0.7 + 150.0, rel=1e-8)
    by_family = {c.family: c for c in fit.candidates}
    assert [c.family for c in fit.candidates] == list(FAMILIES)
    assert by_family["power_floor"].aicc < min(by_family["exp_floor"].aicc, by_family["loglog_line"].aicc)


def test_choice_is_the_smallest_aicc():
    y = np.array([887, 1496, 900, 1200, 700, 800, 650, 720, 600, 640.0])
    fit = fit_series(y, k=11)
    eligible = [c for c in fit.candidates if c.aicc is not None]
    assert fit.family == min(eligible, key=lambda c: c.aicc).family
    for c in fit.candidates:  # AICc from the reported RMSE, n and p
        n, p = fit.n_points, c.n_params
        assert c.aicc == pytest.approx(n * math.log(c.rmse_log**2) + 2 * p + 2 * p * (p + 1) / (n - p - 1))
    assert "AICc" in CRITERION and "log" in CRITERION


def test_fit_is_unit_free_and_deterministic():
    y = 887.0 * T**-0.7 + 150.0 + 40 * np.sin(T)  # non-monotone
    a = fit_series(y, k=11)
    b = fit_series(y / 32768.0, k=11)  # int16 PCM scale -> float [-1, 1] scale
    assert a == fit_series(y, k=11)
    assert a.family == b.family
    assert b.value_at_k * 32768.0 == pytest.approx(a.value_at_k, rel=1e-6)
    assert b.rmse_log == pytest.approx(a.rmse_log, rel=1e-6)


# --------------------------------------------------------------------------------------
# fit_series: the "---" cases
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_noisy_non_monotone_series_give_a_value_or_a_reason(seed):
    rng = np.random.default_rng(100 + seed)
    y = 3000.0 * T**-0.5 * np.exp(0.4 * rng.standard_normal(T.size))
    y[rng.random(T.size) < 0.2] = np.inf
    fit = fit_series(y, k=11)
    if fit.value_at_k is None:
        assert fit.reason
    else:
        assert fit.reason is None and math.isfinite(fit.value_at_k) and fit.value_at_k > 0
        assert fit.family in FAMILIES and fit.rmse_log > 0


def test_too_few_points():
    y = np.array([np.inf, np.inf, 900.0, np.nan, 700.0, 650.0, np.inf, np.inf])
    fit = fit_series(y, k=11)
    assert fit.value_at_k is None and fit.family is None
    assert fit.reason == "too few finite positive points (n=3 < min_points=4)"
    assert fit.n_points == 3 and fit.t_used == (3.0, 5.0, 6.0) and fit.candidates == ()
    fit6 = fit_series(887.0 * T**-0.7 + 150.0, k=11, min_points=11)
    assert fit6.reason == "too few finite positive points (n=10 < min_points=11)"


@pytest.mark.parametrize("fill", [np.inf, np.nan])
def test_all_missing(fill):
    fit = fit_series(np.full(10, fill), k=11)
    assert fit.value_at_k is None and fit.reason == "too few finite positive points (n=0 < min_points=4)"


def test_constant_zero_and_constant_series():
    assert fit_series(np.zeros(10), k=11).reason == "series is constant zero"
    fit = fit_series(np.full(10, 250.0), k=11)
    assert fit.value_at_k == pytest.approx(250.0) and fit.family == "loglog_line"  # exact ties -> fewest params
    assert fit.r2_log is None  # no variance to explain


def test_missing_values_are_ignored():
    y = 887.0 * T**-0.7 + 150.0 + 40 * np.sin(T)
    holes = y.copy()
    holes[[1, 4]] = np.nan
    holes[7] = np.inf
    holes[8] = 0.0  # a zero cannot be fitted in log space: left out too
    keep = np.isfinite(holes) & (holes > 0)
    fit = fit_series(holes, k=11)
    ref = fit_series(y[keep], t=T[keep], k=11)
    assert fit.t_used == tuple(T[keep]) and fit.n_points == 6
    assert fit == ref


def test_four_points_only_the_two_parameter_family_is_eligible():
    fit = fit_series(887.0 * T[:4] ** -0.7 + 150.0, k=5)
    by_family = {c.family: c for c in fit.candidates}
    assert by_family["power_floor"].aicc is None and "AICc undefined" in by_family["power_floor"].message
    assert fit.family == "loglog_line" and fit.value_at_k > 0


def test_negative_or_infinite_value_is_refused():
    # Unreachable through fit_series: every family is positive for a > 0, c >= 0 (floors) and e^p t^q.
    assert value_at_k_reason(-1e-9) == "value at k is negative"
    assert value_at_k_reason(math.inf) == "value at k is not finite"
    assert value_at_k_reason(math.nan) == "value at k is not finite"
    assert value_at_k_reason(0.0) is None and value_at_k_reason(123.4) is None


def test_overflowing_extrapolation_is_refused():
    fit = fit_series(np.exp(5.0 * np.log(T)) * 1e290, k=1e30)  # t^5 from 1e290, evaluated far away
    assert fit.family == "loglog_line" and fit.value_at_k is None
    assert fit.reason == "value at k is not finite" and fit.params["q"] == pytest.approx(5.0)


@pytest.mark.parametrize("kw", [{"k": 0}, {"k": -1}, {"k": math.inf}, {"k": 11, "min_points": 3},
                                {"k": 11, "t": T[::-1]}, {"k": 11, "t": T[:5]}])
def test_fit_series_rejects_bad_options(kw):
    with pytest.raises(ValueError):
        fit_series(887.0 * T**-0.7 + 150.0, **kw)


@pytest.mark.parametrize("y", [np.ones((2, 5)), [1.0, -2.0, 3.0, 4.0], [1.0, -np.inf, 3.0, 4.0]])
def test_fit_series_rejects_bad_series(y):
    with pytest.raises(ValueError):
        fit_series(y, k=11)


# --------------------------------------------------------------------------------------
# fit_percentile_table and JSON
# --------------------------------------------------------------------------------------


def test_percentile_table_from_clip_norms():
    rng = np.random.default_rng(9)
    n_clips = 200
    start = rng.lognormal(8.0, 0.8, size=(n_clips, 1))
    norms = start * (0.2 + 0.8 * T**-0.7) * np.exp(0.05 * rng.standard_normal((n_clips, T.size)))
    norms[:60] = np.inf  # 30 % never adversarial: the 50th percentile is finite, ...
    norms[60:100, :4] = np.inf  # ... but not in the first iterations
    fits = fit_percentile_table(norms, percentiles=SEED_PERCENTILES, k=11)
    assert len(fits) == 5 and all(isinstance(f, SeriesFit) for f in fits)
    table = percentiles_with_failures(norms, percentiles=SEED_PERCENTILES)
    for f, row in zip(fits, table):
        assert f == fit_series(row, k=11)
    assert fits[0].value_at_k is not None and fits[0].n_points == 10
    assert fits[4].n_points == 6 and fits[4].t_used == (5.0, 6.0, 7.0, 8.0, 9.0, 10.0)
    for f in fits:
        text = json.dumps(f.to_dict(), allow_nan=False)
        assert json.loads(text)["k"] == 11.0
    with pytest.raises(ValueError):
        fit_percentile_table(norms[:, 0], percentiles=[50], k=11)


def test_non_convergence_is_a_reason_not_an_exception(monkeypatch):
    import attacks.curves as curves

    def failing_curve_fit(*args, **kwargs):
        raise RuntimeError("Optimal parameters not found: The maximum number of function evaluations is exceeded.")

    monkeypatch.setattr(curves, "curve_fit", failing_curve_fit)
    fit = fit_series(887.0 * T**-0.7 + 150.0, k=11)
    assert fit.value_at_k is None and fit.family is None and fit.reason == "no fit converged"
    assert [c.converged for c in fit.candidates] == [False, False, False]
    assert all(c.message.startswith("Optimal parameters not found") for c in fit.candidates)
    json.dumps(fit.to_dict(), allow_nan=False)


# --------------------------------------------------------------------------------------
# fitted_value_ci
# --------------------------------------------------------------------------------------


def _clip_norms(n_clips: int, *, seed: int, fail: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    norms = rng.lognormal(0.0, 1.0, size=(n_clips, 1)) * (1.0 / T + 0.5) * np.exp(
        0.3 * rng.standard_normal((n_clips, T.size)))
    norms[:fail] = np.inf
    return norms


def _hand_curve(fit, t: float) -> float:
    """The chosen curve at t, written out from FORMULAS (not evaluate_family)."""
    p = fit.params
    if fit.family == "power_floor":
        return p["a"] / t ** p["b"] + p["c"]
    if fit.family == "exp_floor":
        return p["a"] / math.exp(p["b"] * t) + p["c"]
    return math.exp(p["p"]) * t ** p["q"]


def test_fitted_interval_is_the_order_statistic_interval_at_t_moved_along_the_curve():
    norms = _clip_norms(80, seed=3, fail=8)
    fits = fit_percentile_table(norms, percentiles=SEED_PERCENTILES, k=11)
    low, high, reasons = fitted_value_ci(norms, fits, percentiles=SEED_PERCENTILES, confidence=0.95)
    for i, (f, p) in enumerate(zip(fits, SEED_PERCENTILES)):  # 80 clips bound even the 5th (72 needed)
        lo_rank, hi_rank = order_statistic_ranks(80, percentiles=[p], confidence=0.95)
        last = np.sort(norms[:, -1])
        step = f.value_at_k / _hand_curve(f, 10.0)
        assert reasons[i] is None
        assert low[i] == pytest.approx(last[lo_rank[0] - 1] * step, rel=1e-12)
        assert high[i] == pytest.approx(last[hi_rank[0] - 1] * step, rel=1e-12)
        assert low[i] <= f.value_at_k <= high[i]


def test_fitted_interval_inside_the_run_is_the_percentile_interval_of_that_iteration():
    norms = _clip_norms(120, seed=4)
    fits = fit_percentile_table(norms, percentiles=[25, 50], k=6)
    low, high, reasons = fitted_value_ci(norms, fits, percentiles=[25, 50])
    lo6, hi6 = percentile_ci(norms[:, 5], percentiles=[25, 50])
    assert reasons == [None, None]
    np.testing.assert_array_equal(low, lo6)
    np.testing.assert_array_equal(high, hi6)


def test_fitted_interval_refusals():
    norms = _clip_norms(32, seed=5)
    fits = fit_percentile_table(norms, percentiles=[5, 50], k=11)
    low, high, reasons = fitted_value_ci(norms, fits, percentiles=[5, 50])
    assert np.isnan(low[0]) and np.isnan(high[0]) and reasons[0].startswith("insufficient evidence")
    assert reasons[1] is None and np.isfinite(low[1])
    far = fit_percentile_table(norms, percentiles=[50], k=20)  # more than one iteration past T = 10
    low, high, reasons = fitted_value_ci(norms, far, percentiles=[50])
    assert np.isnan(low[0]) and "more than 1 iteration past T = 10" in reasons[0]
    low, high, reasons = fitted_value_ci(norms, far, percentiles=[50], max_steps_past_t=None)
    assert reasons == [None] and low[0] < far[0].value_at_k < high[0]
    few = norms.copy()
    few[:, :7] = np.inf  # three finite points: no curve, no interval
    nofit = fit_percentile_table(few, percentiles=[50], k=11)
    assert fitted_value_ci(few, nofit, percentiles=[50])[2] == ["no fitted value at k"]
    with pytest.raises(ValueError):
        fitted_value_ci(norms, fits, percentiles=[50])


def test_fitted_interval_upper_bound_on_a_failed_clip_is_infinite():
    norms = _clip_norms(40, seed=6, fail=18)  # 45 % not fooled: the median's upper rank falls on a failure
    fits = fit_percentile_table(norms, percentiles=[25, 50], k=11)
    low, high, reasons = fitted_value_ci(norms, fits, percentiles=[25, 50])
    assert reasons[1] is None and np.isfinite(low[1]) and np.isinf(high[1])
