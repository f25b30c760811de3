"""Tests of factsheet.metrics against scikit-learn and against analytic values."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.stats import norm, rankdata
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from factsheet import metrics as M
from factsheet.metrics import (
    TAGGING_STATISTICS,
    BootstrapInterval,
    average_precision,
    bootstrap_ci,
    bootstrap_tagging_ci,
    d_prime,
    is_single_label,
    roc_auc,
    single_label_report,
    tagging_metrics,
)

TOL = 1e-9


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def sk_per_class(y, s):
    """scikit-learn per column: AP where a positive exists, AUC where both classes exist."""
    y = np.asarray(y)
    s = np.asarray(s)
    if y.ndim == 1:
        y, s = y[:, None], s[:, None]
    ap = np.full(y.shape[1], np.nan)
    auc = np.full(y.shape[1], np.nan)
    for j in range(y.shape[1]):
        n_pos = int(y[:, j].sum())
        if n_pos > 0:
            ap[j] = average_precision_score(y[:, j], s[:, j])
        if 0 < n_pos < y.shape[0]:
            auc[j] = roc_auc_score(y[:, j], s[:, j])
    return ap, auc


def assert_matches_sklearn(y, s):
    ap_ref, auc_ref = sk_per_class(y, s)
    ap, auc = average_precision(y, s), roc_auc(y, s)
    np.testing.assert_array_equal(np.isnan(ap), np.isnan(ap_ref))
    np.testing.assert_array_equal(np.isnan(auc), np.isnan(auc_ref))
    np.testing.assert_allclose(ap, ap_ref, rtol=0, atol=TOL, equal_nan=True)
    np.testing.assert_allclose(auc, auc_ref, rtol=0, atol=TOL, equal_nan=True)
    m = tagging_metrics(y, s)
    np.testing.assert_allclose(m.per_class_ap, ap_ref, rtol=0, atol=TOL, equal_nan=True)
    np.testing.assert_allclose(m.per_class_auc, auc_ref, rtol=0, atol=TOL, equal_nan=True)
    return m


def random_labels(rng, n, c, prevalence=0.2):
    y = (rng.random((n, c)) < prevalence).astype(np.int64)
    y[0, :] = 1  # every column has a positive ...
    y[1, :] = 0  # ... and a negative
    return y


# --------------------------------------------------------------------------------------
# against scikit-learn
# --------------------------------------------------------------------------------------


def test_random_scores():
    rng = np.random.default_rng(0)
    y = random_labels(rng, 300, 7)
    assert_matches_sklearn(y, rng.random((300, 7)) + 0.3 * y)


def test_heavily_tied_scores():
    rng = np.random.default_rng(1)
    y = random_labels(rng, 400, 6, prevalence=0.3)
    s = np.round(rng.random((400, 6)) * 0.7 + 0.3 * y, 1)
    assert_matches_sklearn(y, s)


def test_integer_scores():
    rng = np.random.default_rng(2)
    y = random_labels(rng, 250, 5)
    s = rng.integers(0, 5, size=(250, 5)) + 2 * y
    assert_matches_sklearn(y, s)


def test_binary_scores():
    rng = np.random.default_rng(3)
    y = random_labels(rng, 200, 4, prevalence=0.4)
    s = np.where(rng.random((200, 4)) < 0.8, y, 1 - y)  # a hard classifier, 80 % right
    assert_matches_sklearn(y, s)


def test_all_equal_scores():
    rng = np.random.default_rng(4)
    y = random_labels(rng, 50, 3)
    m = assert_matches_sklearn(y, np.full((50, 3), 0.25))
    np.testing.assert_allclose(m.per_class_auc, 0.5)
    np.testing.assert_allclose(m.per_class_ap, y.mean(axis=0))


def test_single_positive_and_single_negative():
    rng = np.random.default_rng(5)
    n = 40
    y = np.zeros((n, 2), dtype=int)
    y[7, 0] = 1  # one positive
    y[:, 1] = 1
    y[11, 1] = 0  # one negative
    s = np.round(rng.random((n, 2)), 1)
    m = assert_matches_sklearn(y, s)
    assert m.evaluable.all() and m.n_excluded == 0
    np.testing.assert_array_equal(m.support, [1, n - 1])
    np.testing.assert_array_equal(m.n_negatives, [n - 1, 1])


def test_class_without_positives_is_nan_and_excluded():
    rng = np.random.default_rng(6)
    y = random_labels(rng, 100, 4)
    y[:, 2] = 0  # no positives
    y[:, 3] = 1  # no negatives
    s = rng.random((100, 4))
    m = assert_matches_sklearn(y, s)
    assert np.isnan(m.per_class_ap[2])  # sklearn: 0.0 with a warning
    assert m.per_class_ap[3] == 1.0  # defined, but the class is not evaluable
    assert np.isnan(m.per_class_auc[2]) and np.isnan(m.per_class_auc[3])
    np.testing.assert_array_equal(m.evaluable, [True, True, False, False])
    assert m.n_excluded == 2 and m.n_evaluable == 2 and m.n_classes == 4
    ap_ref, auc_ref = sk_per_class(y[:, :2], s[:, :2])
    assert m.mAP == pytest.approx(ap_ref.mean(), abs=TOL)
    assert m.mean_auc == pytest.approx(auc_ref.mean(), abs=TOL)
    assert m.d_prime == pytest.approx(math.sqrt(2) * norm.ppf(auc_ref.mean()), abs=TOL)


@pytest.mark.parametrize("seed", range(30))
def test_many_seeds(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(2, 400))
    c = int(rng.integers(1, 9))
    y = (rng.random((n, c)) < rng.uniform(0.01, 0.9, size=c)).astype(bool)
    s = rng.normal(size=(n, c)) + rng.uniform(0, 2) * y
    decimals = int(rng.integers(0, 4))
    if decimals < 3:
        s = np.round(s, decimals)  # from very heavy to light ties
    assert_matches_sklearn(y, s)


@pytest.mark.parametrize("seed", range(5))
def test_auc_is_mann_whitney_with_average_ranks(seed):
    rng = np.random.default_rng(300 + seed)
    y = random_labels(rng, 200, 4, prevalence=0.3).astype(bool)
    s = np.round(rng.random((200, 4)) + 0.2 * y, 1)
    ranks = rankdata(s, axis=0)  # average ranks for ties
    n_pos = y.sum(axis=0)
    n_neg = y.shape[0] - n_pos
    u = (ranks * y).sum(axis=0) - n_pos * (n_pos + 1) / 2
    np.testing.assert_allclose(roc_auc(y, s), u / (n_pos * n_neg), rtol=0, atol=1e-12)


def test_float32_scores_and_uint8_labels():
    rng = np.random.default_rng(7)
    y = random_labels(rng, 500, 5).astype(np.uint8)
    s = (rng.random((500, 5)) + 0.2 * y).astype(np.float32)
    assert_matches_sklearn(y, s)


def test_one_dimensional_input_is_one_class():
    rng = np.random.default_rng(8)
    y = rng.random(80) < 0.3
    s = rng.random(80)
    m = assert_matches_sklearn(y, s)
    assert m.per_class_ap.shape == (1,)
    assert m.mAP == pytest.approx(average_precision_score(y, s), abs=TOL)
    assert m.mean_auc == pytest.approx(roc_auc_score(y, s), abs=TOL)


def test_many_classes_in_several_blocks(monkeypatch):
    # Force several class blocks to exercise the blocking in _ap_auc_batch.
    monkeypatch.setattr(M, "_BLOCK_ELEMENTS", 1000)
    rng = np.random.default_rng(9)
    y = random_labels(rng, 300, 23, prevalence=0.05)
    assert_matches_sklearn(y, np.round(rng.random((300, 23)) + 0.2 * y, 2))


def test_weighted_kernel_matches_sklearn_sample_weight():
    rng = np.random.default_rng(10)
    n, c = 120, 4
    y = rng.random((n, c)) < 0.3
    y[:2] = [[True], [False]]
    s = np.round(rng.random((n, c)) + 0.3 * y, 1)
    w = rng.integers(0, 4, size=(3, n)).astype(float)  # three weight vectors (replicates)
    w[:, :2] = 1.0
    ranked = M._rank(np.ascontiguousarray(y.T), np.ascontiguousarray(s.T))
    ap, auc, n_pos, n_neg = M._ap_auc_weighted(ranked, w)
    assert ap.shape == auc.shape == (3, c)
    for b in range(3):
        for j in range(c):
            ref_ap = average_precision_score(y[:, j], s[:, j], sample_weight=w[b])
            ref_auc = roc_auc_score(y[:, j], s[:, j], sample_weight=w[b])
            assert ap[b, j] == pytest.approx(ref_ap, abs=TOL)
            assert auc[b, j] == pytest.approx(ref_auc, abs=TOL)
            assert n_pos[b, j] == w[b, y[:, j]].sum() and n_neg[b, j] == w[b, ~y[:, j]].sum()
    # Unit weights reproduce the unweighted kernel.
    ap1, auc1, _, _ = M._ap_auc_weighted(ranked, np.ones((1, n)))
    ap0, auc0 = M._ap_auc_ranked(ranked)
    np.testing.assert_allclose(ap1[0], ap0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(auc1[0], auc0, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------
# analytic values
# --------------------------------------------------------------------------------------


def test_perfect_and_reversed_ranking():
    y = np.array([0, 0, 0, 1, 1, 0, 1, 0])
    s = y + np.linspace(0, 0.5, y.size)  # positives all above negatives
    m = tagging_metrics(y, s)
    assert m.per_class_ap[0] == 1.0 and m.per_class_auc[0] == 1.0
    assert m.d_prime == math.inf and m.mean_class_d_prime == math.inf
    assert m.per_class_d_prime[0] == math.inf
    r = tagging_metrics(y, -s)
    assert r.per_class_auc[0] == 0.0 and r.d_prime == -math.inf


def test_constant_score_gives_auc_half():
    y = np.array([[1, 0], [0, 1], [0, 0], [1, 1], [0, 0]])
    m = tagging_metrics(y, np.zeros(y.shape))
    np.testing.assert_array_equal(m.per_class_auc, [0.5, 0.5])
    assert m.d_prime == 0.0 and m.mean_class_d_prime == 0.0


@pytest.mark.parametrize(
    "transform",
    [np.exp, lambda x: 3.0 * x - 7.0, lambda x: x**3, lambda x: 1.0 / (1.0 + np.exp(-x))],
    ids=["exp", "affine", "cube", "sigmoid"],
)
def test_invariant_to_monotone_rescaling(transform):
    rng = np.random.default_rng(11)
    y = random_labels(rng, 400, 5)
    s = np.round(rng.normal(size=(400, 5)) + y, 2)  # ties, distinct values well apart
    np.testing.assert_allclose(roc_auc(y, transform(s)), roc_auc(y, s), rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        average_precision(y, transform(s)), average_precision(y, s), rtol=0, atol=1e-12
    )


def test_ap_of_random_scores_approaches_prevalence():
    rng = np.random.default_rng(12)
    n, prevalence = 200_000, np.array([0.02, 0.1, 0.4])
    y = rng.random((n, 3)) < prevalence
    ap = average_precision(y, rng.random((n, 3)))
    np.testing.assert_allclose(ap, y.mean(axis=0), atol=0.005)
    np.testing.assert_allclose(roc_auc(y, rng.random((n, 3))), 0.5, atol=0.01)


def test_d_prime_published_figures():
    # MAX FactSheet: AUC 0.968, d' 2.621 -- the d' of the unrounded mean AUC 0.96808.
    assert round(float(d_prime(0.96808)), 3) == 2.621
    assert round(float(d_prime(0.968)), 2) == 2.62
    assert round(float(d_prime(0.968)), 3) == 2.619  # so 2.621 was not taken from 0.968
    # LEAN (FSD50K): mAUC 0.944 -> d' 2.251.  d'(0.944) itself is 2.248; 2.251 is the d' of
    # an AUC of about 0.94427, which prints as 0.944: d' came from the unrounded mean AUC.
    assert round(float(d_prime(0.944)), 3) == 2.248
    assert d_prime(0.9435) < 2.251 < d_prime(0.9445)
    assert round(float(d_prime(0.94427)), 3) == 2.251


def test_d_prime_scalar_and_array():
    assert d_prime(0.5) == 0.0
    assert d_prime(1.0) == math.inf and d_prime(0.0) == -math.inf
    assert isinstance(d_prime(0.7), float)
    a = np.array([[0.5, 0.75], [0.9, np.nan]])
    out = d_prime(a)
    assert out.shape == (2, 2) and np.isnan(out[1, 1])
    np.testing.assert_allclose(out[0], math.sqrt(2) * norm.ppf(a[0]), rtol=1e-14)
    with pytest.raises(ValueError):
        d_prime(1.2)


def test_mean_d_prime_differs_from_mean_of_class_d_primes():
    # Two classes with very different AUCs (0.75 and 1.0 - 1/16 = 0.9375).
    y = np.array([[1, 1], [1, 1], [0, 0], [0, 0], [1, 1], [0, 0], [1, 1], [0, 0]])
    s = np.array(
        [[0.9, 0.9], [0.2, 0.8], [0.3, 0.1], [0.1, 0.2], [0.8, 0.7], [0.7, 0.3], [0.6, 0.4], [0.4, 0.5]]
    )
    m = tagging_metrics(y, s)
    np.testing.assert_allclose(m.per_class_auc, [0.75, 0.9375])
    assert m.d_prime == pytest.approx(float(d_prime(m.mean_auc)))  # AudioSet / PANNs / MAX
    assert m.mean_class_d_prime == pytest.approx(float(np.mean(d_prime(m.per_class_auc))))  # HEAR
    # d'(mean AUC 0.84375) = 1.4283 vs mean(d'(0.75), d'(0.9375)) = mean(0.9539, 2.1696) = 1.5617
    assert m.mean_auc == 0.84375
    assert m.d_prime == pytest.approx(1.4283, abs=1e-4)
    assert m.mean_class_d_prime == pytest.approx(1.5617, abs=1e-4)
    assert m.mean_class_d_prime - m.d_prime > 0.1


def test_no_evaluable_class_gives_nan_means():
    m = tagging_metrics(np.zeros((5, 2), int), np.random.default_rng(0).random((5, 2)))
    assert math.isnan(m.mAP) and math.isnan(m.mean_auc)
    assert math.isnan(m.d_prime) and math.isnan(m.mean_class_d_prime)
    assert m.n_excluded == 2


def test_results_are_read_only():
    m = tagging_metrics([[1, 0], [0, 1]], [[0.9, 0.1], [0.2, 0.8]])
    with pytest.raises(ValueError):
        m.per_class_ap[0] = 0.0


# --------------------------------------------------------------------------------------
# single-label report
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_single_label_report_matches_sklearn(seed):
    rng = np.random.default_rng(200 + seed)
    n_classes, n = 10, 300
    t = rng.integers(0, 9, size=n)  # class 9 never occurs in the truth ...
    p = np.where(rng.random(n) < 0.6, t, rng.integers(0, 10, size=n))
    p[p == 3] = 4  # ... and class 3 is never predicted
    r = single_label_report(t, p, n_classes=n_classes)
    labels = np.arange(n_classes)
    assert r.accuracy == pytest.approx(accuracy_score(t, p), abs=1e-12)
    ref = precision_recall_fscore_support(t, p, labels=labels, zero_division=0)
    for ours, theirs in zip((r.precision, r.recall, r.f1, r.support), ref):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    for avg in ("macro", "weighted"):
        pr, rc, f1, _ = precision_recall_fscore_support(
            t, p, labels=labels, average=avg, zero_division=0
        )
        assert getattr(r, f"{avg}_precision") == pytest.approx(pr, abs=1e-12)
        assert getattr(r, f"{avg}_recall") == pytest.approx(rc, abs=1e-12)
        assert getattr(r, f"{avg}_f1") == pytest.approx(f1, abs=1e-12)
    assert r.precision[3] == 0.0 and r.recall[9] == 0.0
    assert r.confusion.sum() == n and r.n_samples == n


def test_single_label_report_rejects_bad_input():
    with pytest.raises(ValueError, match="length"):
        single_label_report([0, 1], [0], n_classes=2)
    with pytest.raises(ValueError, match="lie in"):
        single_label_report([0, 2], [0, 1], n_classes=2)
    with pytest.raises(ValueError, match="integer"):
        single_label_report([0.5, 1], [0, 1], n_classes=2)
    with pytest.raises(ValueError, match="n_classes"):
        single_label_report([0], [0], n_classes=0)


def test_is_single_label():
    assert is_single_label(np.eye(4, dtype=int)[[0, 2, 3, 1]])
    assert not is_single_label([[1, 1, 0], [0, 1, 0]])
    assert not is_single_label([[0, 0, 0], [0, 1, 0]])
    assert not is_single_label(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="binary"):
        is_single_label([[2, 0], [0, 1]])


# --------------------------------------------------------------------------------------
# bootstrap
# --------------------------------------------------------------------------------------


def _scored_set(n, c=5, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.random((n, c)) < 0.25
    s = rng.normal(size=(n, c)) + 1.0 * y
    return y, s


def test_bootstrap_deterministic_for_a_seed():
    y, s = _scored_set(150)
    a = bootstrap_tagging_ci(y, s, n_resamples=200, seed=7)
    b = bootstrap_tagging_ci(y, s, n_resamples=200, seed=7)
    c = bootstrap_tagging_ci(y, s, n_resamples=200, seed=8)
    assert set(a) == set(TAGGING_STATISTICS)
    assert a == b
    assert a["mAP"] != c["mAP"]


def test_bootstrap_contains_point_estimate():
    y, s = _scored_set(600, c=14)
    ci = bootstrap_tagging_ci(y, s, n_resamples=500, seed=1)
    point = tagging_metrics(y, s)
    for k in TAGGING_STATISTICS:
        iv = ci[k]
        assert isinstance(iv, BootstrapInterval)
        assert iv.estimate == getattr(point, k)
        assert iv.low < iv.estimate < iv.high
        assert iv.n_used == iv.n_resamples == 500 and iv.confidence == 0.95
        assert iv.as_tuple() == (iv.low, iv.high)


def test_bootstrap_width_shrinks_with_more_clips():
    def width(n):
        y, s = _scored_set(n, seed=3)
        iv = bootstrap_tagging_ci(y, s, n_resamples=300, seed=0)["mAP"]
        return iv.high - iv.low

    small, large = width(200), width(3200)
    assert large < 0.5 * small  # ~ 1/sqrt(16) = 0.25 expected


def test_bootstrap_narrower_at_lower_confidence():
    y, s = _scored_set(300)
    w95 = bootstrap_tagging_ci(y, s, n_resamples=300, seed=0)["mean_auc"]
    w50 = bootstrap_tagging_ci(y, s, n_resamples=300, confidence=0.5, seed=0)["mean_auc"]
    assert w50.low > w95.low and w50.high < w95.high


def test_vectorised_bootstrap_equals_resampling_clips():
    # Count-weighted replicates == metrics on the materialised resamples (same seed).
    rng = np.random.default_rng(4)
    y = rng.random((90, 4)) < 0.15
    s = np.round(rng.random((90, 4)) + 0.3 * y, 1)  # ties, plus duplicates from resampling

    def stat(idx):
        m = tagging_metrics(y[idx], s[idx])
        return {k: getattr(m, k) for k in TAGGING_STATISTICS}

    generic = bootstrap_ci(stat, n_items=90, n_resamples=150, seed=5)
    fast = bootstrap_tagging_ci(y, s, n_resamples=150, seed=5, method="percentile", min_class_support=0)
    for k in TAGGING_STATISTICS:
        assert fast[k].n_used == generic[k].n_used
        assert fast[k].low == pytest.approx(generic[k].low, abs=1e-12)
        assert fast[k].high == pytest.approx(generic[k].high, abs=1e-12)


def test_bootstrap_drops_non_finite_replicates():
    rng = np.random.default_rng(6)
    n = 30
    y = np.zeros((n, 2), dtype=int)
    y[:3, 0] = 1  # rare class: some resamples have no positive -> that class is excluded
    y[::2, 1] = 1
    s = rng.random((n, 2))
    s[:, 1] = y[:, 1] + 0.1 * s[:, 1]  # class 1 perfectly ranked: per-class d' = inf
    ci = bootstrap_tagging_ci(y, s, n_resamples=400, seed=0)
    assert ci["mean_class_d_prime"].n_used == 0  # always +inf
    assert math.isnan(ci["mean_class_d_prime"].low)
    assert ci["mean_class_d_prime"].estimate == math.inf
    # mean AUC is finite whenever some class is evaluable (class 1 always is, but mean AUC
    # is 1 -> d' inf when class 0 drops out, or class 0 is perfect in the resample).
    assert ci["mean_auc"].n_used == 400
    assert 0 < ci["d_prime"].n_used < 400


def test_bootstrap_ci_scalar_statistic():
    x = np.random.default_rng(0).normal(size=400)
    iv = bootstrap_ci(lambda idx: float(x[idx].mean()), n_items=400, n_resamples=500, seed=0)
    assert iv.low < x.mean() < iv.high
    assert iv.high - iv.low == pytest.approx(2 * 1.96 * x.std() / 20, rel=0.2)


# --------------------------------------------------------------------------------------
# percentile_interval: the one interval rule (performance, bias, robustness)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.95, 0.99])
def test_percentile_interval_drop_equals_numpy_on_the_finite_replicates(confidence):
    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 100, 1001):
        reps = rng.normal(size=n)
        reps[rng.random(n) < 0.2] = np.nan
        reps[rng.random(n) < 0.05] = np.inf
        finite = reps[np.isfinite(reps)]
        iv = M.percentile_interval(reps, confidence=confidence)
        if not finite.size:
            assert not iv.defined and math.isnan(iv.low) and iv.n_used == 0
            continue
        alpha = (1 - confidence) / 2
        lo, hi = np.percentile(finite, [100 * alpha, 100 * (1 - alpha)])
        assert (iv.low, iv.high) == (lo, hi)  # bit for bit
        assert iv.defined and iv.n_used == finite.size and iv.n_replicates == n


def test_percentile_interval_refuses_when_too_few_replicates_are_usable():
    reps = np.r_[np.arange(12.0), np.full(13, np.nan)]  # 12 of 25 usable: fewer than half
    bias_rule = dict(infinite="drop", min_used=10, min_used_fraction=0.5)
    assert not M.percentile_interval(reps, confidence=0.9, **bias_rule).defined
    assert M.percentile_interval(reps[:-2], confidence=0.9, **bias_rule).defined  # 12 of 23
    assert not M.percentile_interval(np.arange(9.0), confidence=0.9, **bias_rule).defined  # fewer than 10
    assert M.percentile_interval(reps, confidence=0.9).defined  # the performance rule: any usable one
    assert not M.percentile_interval(np.array([]), confidence=0.9, **bias_rule).defined


def test_percentile_interval_keep_counts_infinity_as_the_largest_value():
    reps = np.r_[np.arange(1.0, 91.0), np.full(10, np.inf)]  # 10 % failures
    iv = M.percentile_interval(reps, confidence=0.9, infinite="keep")
    assert iv.low == pytest.approx(5.95)  # the 5th percentile: between the 5th and 6th values
    assert iv.high == np.inf and iv.n_used == 100
    iv = M.percentile_interval(reps, confidence=0.8, infinite="keep")  # 90th percentile touches inf
    assert iv.high == np.inf
    table = np.stack([reps, reps / 2], axis=1)  # (B, 2): one interval per column
    iv2 = M.percentile_interval(table, confidence=0.5, infinite="keep")
    assert iv2.low.shape == (2,) and iv2.low[1] == iv2.low[0] / 2
    with pytest.raises(ValueError, match="NaN"):
        M.percentile_interval(np.array([1.0, np.nan]), confidence=0.9, infinite="keep")
    with pytest.raises(ValueError, match="1-D"):
        M.percentile_interval(table, confidence=0.9, infinite="drop")
    with pytest.raises(ValueError, match="infinite"):
        M.percentile_interval(reps, confidence=0.9, infinite="clip")


def test_bootstrap_timing_is_reasonable():
    import time

    y, s = _scored_set(600, c=14)
    t0 = time.perf_counter()
    bootstrap_tagging_ci(y, s, n_resamples=1000, seed=0)
    assert time.perf_counter() - t0 < 10.0  # ~0.3 s on the 2-core dev machine


# The integer-count bootstrap kernel against the float64 kernel it replaced, bit for bit.


def _reference_bootstrap_values(y_true, y_score, n_resamples, seed):
    """Replicates as bootstrap_tagging_ci computed them before the integer-count kernel:
    float64 counts through ``_ap_auc_weighted``, blocks of ``_BLOCK_ELEMENTS``."""
    y, s = M._check_tagging_inputs(y_true, y_score)
    n, c = y.shape
    ranked = M._rank(np.ascontiguousarray(y.T), np.ascontiguousarray(s.T))
    values = {k: np.empty(n_resamples) for k in TAGGING_STATISTICS}
    block = max(1, M._BLOCK_ELEMENTS // (n * c))
    draws = M._resample_indices(n, n_resamples, seed)
    for lo in range(0, n_resamples, block):
        hi = min(lo + block, n_resamples)
        counts = np.stack([np.bincount(next(draws), minlength=n) for _ in range(lo, hi)])
        ap, auc, n_pos, n_neg = M._ap_auc_weighted(ranked, counts.astype(np.float64))
        summary = M._summarise(ap, auc, (n_pos > 0) & (n_neg > 0))
        for k in TAGGING_STATISTICS:
            values[k][lo:hi] = summary[k]
    return values


def _reference_bootstrap_ci(y, s, n_resamples, seed, confidence=0.95):
    point = tagging_metrics(y, s)
    values = _reference_bootstrap_values(y, s, n_resamples, seed)
    return {
        k: M._interval(getattr(point, k), values[k], n_resamples, confidence)
        for k in TAGGING_STATISTICS
    }


def _bootstrap_cases():
    """(name, y, s): ties, classes without positives or negatives, rare classes, edge sizes."""
    rng = np.random.default_rng(2024)
    cases = []
    y, s = _scored_set(150)
    cases.append(("continuous", y, s))
    y = random_labels(rng, 240, 6, prevalence=0.3).astype(bool)
    cases.append(("heavy ties", y, np.round(rng.random((240, 6)) * 0.7 + 0.3 * y, 1)))
    y = random_labels(rng, 200, 5)
    y[:, 1] = 0  # no positives
    y[:, 2] = 1  # no negatives
    y[:, 3] = 0
    y[[5, 90], 3] = 1  # rare: often absent from a resample
    s = np.round(rng.random((200, 5)) + 0.4 * y, 2)
    s[:, 4] = 0.5  # every score tied
    cases.append(("degenerate classes", y, s))
    y = random_labels(rng, 120, 4, prevalence=0.2).astype(bool)
    s = rng.random((120, 4))
    s[:, 0] = y[:, 0] + 0.1 * s[:, 0]  # positives on top: summed from the first positive group
    s[:, 1] = -1.0 * y[:, 1] + 0.1 * s[:, 1]  # positives at the bottom: summed from 0
    s[:, 2] = rng.integers(0, 4, size=120)  # integer scores
    cases.append(("top, bottom and integer", y, s))
    y = rng.random((300, 3)) < 0.01
    y[0] = True
    cases.append(("rare everywhere", y, rng.normal(size=(300, 3)) + y))
    cases.append(("all classes empty", np.zeros((40, 3), bool), rng.random((40, 3))))
    cases.append(("one clip", np.array([[1, 0]]), np.array([[0.3, 0.7]])))
    cases.append(("two clips", np.array([[1, 0], [0, 1]]), np.array([[0.3, 0.3], [0.2, 0.9]])))
    y1 = rng.random(90) < 0.3
    cases.append(("1-D", y1, np.round(rng.random(90) + 0.3 * y1, 1)))
    # AudioSet-like long tail of prevalences, float32 scores with ties.
    prevalence = 0.1 * np.arange(1, 41) ** -1.25
    y = rng.random((1500, 40)) < prevalence
    s = np.round((1 / (1 + np.exp(-(rng.normal(size=(1500, 40)) + 2 * y - 3)))).astype(np.float32), 3)
    cases.append(("long tail", y, s))
    return cases


_CASES = _bootstrap_cases()


@pytest.mark.parametrize("case", range(len(_CASES)), ids=[c[0] for c in _CASES])
def test_count_kernel_is_bit_identical_to_float_kernel(case):
    _, y, s = _CASES[case]
    y, s = M._check_tagging_inputs(y, s)
    n = y.shape[0]
    ranked = M._rank(np.ascontiguousarray(y.T), np.ascontiguousarray(s.T))
    plan = M._count_plan(ranked)
    draws = M._resample_indices(n, 40, seed=case)
    counts = np.stack([np.bincount(d, minlength=n) for d in draws])
    counts[0] = 1  # the full data is a "replicate" too
    got = M._count_block(ranked, plan, counts.astype(plan.count_dtype))
    want = M._ap_auc_weighted(ranked, counts.astype(np.float64))
    for g, w in zip(got, want):
        assert g.dtype == np.float64 and g.shape == w.shape
        np.testing.assert_array_equal(g, w)  # NaN matches NaN


@pytest.mark.parametrize("case", range(len(_CASES)), ids=[c[0] for c in _CASES])
@pytest.mark.parametrize("seed", [0, 11])
def test_bootstrap_is_bit_identical_to_float_reference(case, seed):
    _, y, s = _CASES[case]
    n_resamples = 150  # several blocks of replicates, the last one partial
    fast = bootstrap_tagging_ci(y, s, n_resamples=n_resamples, seed=seed, method="percentile", min_class_support=0)
    ref = _reference_bootstrap_ci(y, s, n_resamples, seed)
    for k in TAGGING_STATISTICS:
        a, b = dataclasses.astuple(fast[k])[:-1], dataclasses.astuple(ref[k])[:-1]  # less the method name
        np.testing.assert_array_equal(np.array(a, dtype=float), np.array(b, dtype=float))
    yv, sv = M._check_tagging_inputs(y, s)
    got = M._bootstrap_tagging_values(yv, sv, n_resamples, seed)
    want = _reference_bootstrap_values(y, s, n_resamples, seed)
    for k in TAGGING_STATISTICS:
        np.testing.assert_array_equal(got[k], want[k])


def test_bootstrap_does_not_depend_on_threads_or_block_size(monkeypatch):
    _, y, s = _CASES[-1]
    want = _reference_bootstrap_values(y, s, 97, 3)
    yv, sv = M._check_tagging_inputs(y, s)
    for threads, block in [(1, 32), (2, 32), (3, 7), (2, 1), (None, 200), (8, 3)]:
        monkeypatch.setattr(M, "_BOOTSTRAP_THREADS", threads)
        monkeypatch.setattr(M, "_REPLICATE_BLOCK", block)
        got = M._bootstrap_tagging_values(yv, sv, 97, 3)
        for k in TAGGING_STATISTICS:
            np.testing.assert_array_equal(got[k], want[k])


def test_blocked_ranking_equals_one_ranking(monkeypatch):
    # Classes are sorted in blocks on threads and joined; the join equals one _rank call,
    # and the point estimates those of tagging_metrics.
    monkeypatch.setattr(M, "_BLOCK_ELEMENTS", 3000)  # 1500 clips: 2 classes per block
    monkeypatch.setattr(M, "_BOOTSTRAP_THREADS", 2)
    _, y, s = _CASES[-1]
    yv, sv = M._check_tagging_inputs(y, s)
    ranked, (ap, auc) = M._rank_blocks(yv, sv)
    whole = M._rank(np.ascontiguousarray(yv.T), np.ascontiguousarray(sv.T))
    for field in ("n_pos", "first", "row", "clip", "start", "stop", "k_start", "k_stop"):
        np.testing.assert_array_equal(getattr(ranked, field), getattr(whole, field))
    np.testing.assert_array_equal(  # the order within a tie group is free
        np.take_along_axis(sv.T, ranked.order, axis=-1), np.take_along_axis(sv.T, whole.order, axis=-1)
    )
    m = tagging_metrics(y, s)
    np.testing.assert_array_equal(ap, m.per_class_ap)
    np.testing.assert_array_equal(auc, m.per_class_auc)
    ci = bootstrap_tagging_ci(y, s, n_resamples=50, seed=2, method="percentile", min_class_support=0)
    ref = _reference_bootstrap_ci(y, s, 50, 2)
    for k in TAGGING_STATISTICS:
        assert ci[k].estimate == getattr(m, k)
        assert dataclasses.astuple(ci[k]) == dataclasses.astuple(ref[k])


def test_bootstrap_with_more_clips_than_int16_counts():
    # n > 32767: counts and segment sums no longer fit int16.
    rng = np.random.default_rng(12)
    n = 33_000
    y = rng.random((n, 2)) < [0.002, 0.3]
    s = np.round(rng.normal(size=(n, 2)) + y, 2)
    ranked = M._rank(np.ascontiguousarray(y.T), np.ascontiguousarray(s.T))
    assert M._count_plan(ranked).count_dtype == np.int32
    got = M._bootstrap_tagging_values(y, s, 6, 1)
    want = _reference_bootstrap_values(y, s, 6, 1)
    for k in TAGGING_STATISTICS:
        np.testing.assert_array_equal(got[k], want[k])


def test_bootstrap_propagates_worker_errors(monkeypatch):
    monkeypatch.setattr(M, "_BOOTSTRAP_THREADS", 2)
    monkeypatch.setattr(M, "_REPLICATE_BLOCK", 4)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(M, "_count_block", broken)
    y, s = _scored_set(50)
    with pytest.raises(RuntimeError, match="boom"):
        bootstrap_tagging_ci(y, s, n_resamples=40, seed=0)


@pytest.mark.parametrize(
    "kwargs",
    [{"confidence": 1.0}, {"confidence": 0.0}, {"n_resamples": 0}, {"seed": None}, {"seed": 1.5}],
)
def test_bootstrap_rejects_bad_options(kwargs):
    y, s = _scored_set(20)
    args = {"seed": 0, **kwargs}
    with pytest.raises(ValueError):
        bootstrap_tagging_ci(y, s, **args)


# --------------------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [average_precision, roc_auc, tagging_metrics])
def test_bad_input_raises(fn):
    y = np.array([[0, 1], [1, 0], [1, 1]])
    s = np.array([[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]])
    with pytest.raises(ValueError, match="same shape"):
        fn(y, s[:2])
    with pytest.raises(ValueError, match="same shape"):
        fn(y, s[:, :1])
    with pytest.raises(ValueError, match="binary"):
        fn(y * 2, s)
    with pytest.raises(ValueError, match="binary"):
        fn(np.where(y == 1, np.nan, 0.0), s)
    with pytest.raises(ValueError, match="finite"):
        fn(y, np.where(y == 1, np.nan, s))
    with pytest.raises(ValueError, match="finite"):
        fn(y, np.where(y == 1, np.inf, s))
    with pytest.raises(ValueError, match="1-D or 2-D"):
        fn(y[None], s[None])
    with pytest.raises(ValueError, match="numeric"):
        fn(y, s.astype(str))
