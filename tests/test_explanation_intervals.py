"""The Explanation section's interval of a mean over explained clips (issue 17): the studentised bootstrap
(bootstrap-t), checked against a hand computation resample by resample with scipy's standard deviation and
numpy's linear quantile, and against Student's t where the bootstrap-t must agree in the limit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from factsheet.explanation.stats import MIN_ROWS, mean_interval


def _by_hand(x: np.ndarray, *, n_resamples: int, confidence: float, seed) -> tuple[float, float]:
    """Bootstrap-t of a 1-D sample, one resample at a time (Efron and Tibshirani 1993, 12.5)."""
    n = len(x)
    idx = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    m, s = float(np.mean(x)), float(stats.tstd(x))
    t = []
    for row in idx:
        xb = x[row]
        sb = float(stats.tstd(xb)) if np.ptp(xb) > 0 else 0.0
        if sb > 0:
            t.append((xb.mean() - m) / (sb / np.sqrt(n)))
        else:
            t.append(0.0 if xb.mean() == m else np.copysign(np.inf, xb.mean() - m))
    t = np.array(t)
    assert np.isfinite(t).all()  # the samples below have no resample of equal rows
    q_hi, q_lo = np.quantile(t, [(1 + confidence) / 2, (1 - confidence) / 2])
    return m - q_hi * s / np.sqrt(n), m - q_lo * s / np.sqrt(n)


@pytest.mark.parametrize("n", [8, 14, 28])
def test_studentized_equals_a_hand_computation(n):
    x = np.random.default_rng(n).gamma(2.0, 1.0, n)
    got = mean_interval(x, n_resamples=300, confidence=0.95, seed=[0, 13])
    low, high = _by_hand(x, n_resamples=300, confidence=0.95, seed=[0, 13])
    assert got["mean"] == pytest.approx(x.mean(), abs=1e-12)
    assert got["low"] == pytest.approx(low, abs=1e-10) and got["high"] == pytest.approx(high, abs=1e-10)
    assert got["low"] < x.mean() < got["high"]


def test_columns_are_intervals_of_their_own():
    """A (clips, bands) array gives each band the interval of its own column (same resamples)."""
    x = np.random.default_rng(3).gamma(2.0, 1.0, (12, 3)) * [1, 2, 3]
    got = mean_interval(x, n_resamples=200, confidence=0.9, seed=7)
    for b in range(3):
        low, high = _by_hand(x[:, b], n_resamples=200, confidence=0.9, seed=7)
        assert got["low"][b] == pytest.approx(low, abs=1e-10) and got["high"][b] == pytest.approx(high, abs=1e-10)


def test_close_to_student_t_on_a_large_normal_sample():
    """On a large normal sample t* is nearly t-distributed: the bounds approach Student's t interval."""
    x = np.random.default_rng(5).standard_normal(400)
    got = mean_interval(x, n_resamples=4000, confidence=0.95, seed=1)
    ref = stats.ttest_1samp(x, 0.0).confidence_interval(0.95)
    half = (ref.high - ref.low) / 2
    assert abs(got["low"] - ref.low) < 0.06 * half and abs(got["high"] - ref.high) < 0.06 * half


def test_too_few_rows_or_no_resamples_give_no_interval():
    x = np.array([0.2, 0.9, 0.4, 0.7])
    assert len(x) == MIN_ROWS - 1
    assert mean_interval(x, n_resamples=1000, confidence=0.95, seed=0) == {"mean": pytest.approx(0.55), "low": None,
                                                                           "high": None}
    assert mean_interval(np.r_[x, 0.1], n_resamples=0, confidence=0.95, seed=0)["low"] is None
    assert mean_interval(np.r_[x, 0.1], n_resamples=1000, confidence=0.95, seed=0)["low"] is not None


def test_equal_rows_give_a_zero_width_interval_and_same_seed_same_bounds():
    assert mean_interval(np.full(6, 0.25), n_resamples=200, confidence=0.95, seed=0) == {"mean": 0.25, "low": 0.25,
                                                                                          "high": 0.25}
    x = np.random.default_rng(9).beta(6, 2, 10)
    assert mean_interval(x, n_resamples=300, confidence=0.95, seed=4) == mean_interval(x, n_resamples=300,
                                                                                       confidence=0.95, seed=4)


def test_percentile_method_is_the_previous_interval():
    """method="percentile": the percentile bootstrap of the resampled means (numpy's linear quantile)."""
    x = np.random.default_rng(2).exponential(1.0, 3)
    got = mean_interval(x, n_resamples=1000, confidence=0.95, seed=11, method="percentile")
    means = x[np.random.default_rng(11).integers(0, 3, size=(1000, 3))].mean(axis=1)
    assert (got["low"], got["high"]) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])), abs=1e-12)
    with pytest.raises(ValueError, match="method"):
        mean_interval(x, n_resamples=10, confidence=0.95, seed=0, method="t")
