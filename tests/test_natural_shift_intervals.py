"""The natural shift's BCa intervals (issue 17): the two-sample acceleration equals scipy's multi-sample BCa
(``scipy.stats.bootstrap(..., paired=False, method="BCa")``) on scipy's own replicates, and the matched mAP's
leave-out values equal the prevalence-matched mAP recomputed on the clips left, with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import average_precision_score

from factsheet.domain_shift.natural import matched_map_jackknife, shift_numbers, two_sample_jackknife
from factsheet.metrics import bca_interval, tagging_jackknife, tagging_metrics


def _sets(seed: int, n_s: int = 40, n_t: int = 30, m: int = 2):
    rng = np.random.default_rng(seed)
    ys = (rng.random((n_s, m)) < 0.35).astype(np.int8)
    yt = (rng.random((n_t, m)) < [0.6, 0.2][:m]).astype(np.int8)
    for y in (ys, yt):
        y[:2] = [[1] * m, [0] * m]  # a positive and a negative of every class
    ss = rng.standard_normal(ys.shape) + 1.5 * ys
    st = rng.standard_normal(yt.shape) + 1.0 * yt
    return ys, ss, yt, st


def _matched_map_sklearn(ys, yt, st) -> float:
    aps = []
    for c in range(yt.shape[1]):
        ps, ns, pt, nt = ys[:, c].sum(), (1 - ys[:, c]).sum(), yt[:, c].sum(), (1 - yt[:, c]).sum()
        w = np.where(yt[:, c] == 1, 1.0, (pt / nt) / (ps / ns))
        aps.append(average_precision_score(yt[:, c], st[:, c], sample_weight=w))
    return float(np.mean(aps))


def test_matched_jackknife_is_the_matched_map_of_the_clips_left():
    ys, ss, yt, st = _sets(1)
    jack = matched_map_jackknife(y_source=ys, y_target=yt, s_target=st)
    assert jack["source"].shape == (40,) and jack["target"].shape == (30,)
    for i in (0, 5, 39):
        assert jack["source"][i] == pytest.approx(_matched_map_sklearn(np.delete(ys, i, 0), yt, st), abs=1e-12)
    for j in (0, 7, 29):
        assert jack["target"][j] == pytest.approx(_matched_map_sklearn(ys, np.delete(yt, j, 0), np.delete(st, j, 0)),
                                                  abs=1e-12)


@pytest.mark.parametrize("statistic", ["mAP", "mean_auc"])
def test_two_sample_bca_equals_scipy(statistic):
    ys, ss, yt, st = _sets(2)

    def gap(i_s, i_t, axis=-1):
        return getattr(tagging_metrics(yt[i_t], st[i_t]), statistic) - getattr(tagging_metrics(ys[i_s], ss[i_s]),
                                                                                statistic)

    res = stats.bootstrap((np.arange(40), np.arange(30)), gap, paired=False, vectorized=False, method="BCa",
                          n_resamples=199, rng=np.random.default_rng(5))
    vs, vt = (getattr(tagging_metrics(y, s), statistic) for y, s in ((ys, ss), (yt, st)))
    jack = two_sample_jackknife(vt - tagging_jackknife(ys, ss)[statistic], tagging_jackknife(yt, st)[statistic] - vs)
    iv = bca_interval(res.bootstrap_distribution, estimate=vt - vs, jackknife=jack, confidence=0.95)
    np.testing.assert_allclose([iv.low, iv.high], res.confidence_interval, rtol=1e-10)


def test_two_sample_bca_of_the_matched_gap_equals_scipy():
    ys, ss, yt, st = _sets(3)

    def gap(i_s, i_t, axis=-1):
        return _matched_map_sklearn(ys[i_s], yt[i_t], st[i_t]) - tagging_metrics(ys[i_s], ss[i_s]).mAP

    res = stats.bootstrap((np.arange(40), np.arange(30)), gap, paired=False, vectorized=False, method="BCa",
                          n_resamples=99, rng=np.random.default_rng(6))
    mj = matched_map_jackknife(y_source=ys, y_target=yt, s_target=st)
    map_s = tagging_metrics(ys, ss).mAP
    jack = two_sample_jackknife(mj["source"] - tagging_jackknife(ys, ss)["mAP"], mj["target"] - map_s)
    iv = bca_interval(res.bootstrap_distribution, estimate=gap(np.arange(40), np.arange(30)), jackknife=jack,
                      confidence=0.95)
    np.testing.assert_allclose([iv.low, iv.high], res.confidence_interval, rtol=1e-10)


def test_shift_numbers_bca_uses_these_jackknives():
    """shift_numbers' BCa gap interval is bca_interval of its own replicates with the two-sample jackknife."""
    ys, ss, yt, st = _sets(4)
    seeds = {"source": 3, "target": 4}
    bca = shift_numbers(y_source=ys, s_source=ss, y_target=yt, s_target=st, n_resamples=300, confidence=0.9,
                        seeds=seeds, method="bca")["metrics"]
    pct = shift_numbers(y_source=ys, s_source=ss, y_target=yt, s_target=st, n_resamples=300, confidence=0.9,
                        seeds=seeds, method="percentile")["metrics"]
    from factsheet.metrics import bootstrap_tagging_replicates

    rs = bootstrap_tagging_replicates(ys, ss, n_resamples=300, seed=3)["mean_auc"]
    rt = bootstrap_tagging_replicates(yt, st, n_resamples=300, seed=4)["mean_auc"]
    vs, vt = tagging_metrics(ys, ss).mean_auc, tagging_metrics(yt, st).mean_auc
    jack = two_sample_jackknife(vt - tagging_jackknife(ys, ss)["mean_auc"], tagging_jackknife(yt, st)["mean_auc"] - vs)
    iv = bca_interval(rt - rs, estimate=vt - vs, jackknife=jack, confidence=0.9)
    assert bca["mean_auc"]["gap"]["ci_low"] == pytest.approx(iv.low, abs=1e-12)
    assert bca["mean_auc"]["gap"]["ci_high"] == pytest.approx(iv.high, abs=1e-12)
    assert bca["mean_auc"]["gap"]["value"] == pct["mean_auc"]["gap"]["value"]
    assert bca["mean_auc"]["gap"]["ci_low"] != pct["mean_auc"]["gap"]["ci_low"]
    with pytest.raises(ValueError, match="method"):
        shift_numbers(y_source=ys, s_source=ss, y_target=yt, s_target=st, n_resamples=10, confidence=0.9,
                      seeds=seeds, method="t")
    # what the FactSheet prints (the default, 'bca_expanded'): the same BCa at Hesterberg's expanded level for the
    # fewest positives of a class on either side, the level by hand from scipy's t and normal distributions
    from scipy import stats

    n = int(min(ys.sum(0).min(), yt.sum(0).min()))
    level = 2.0 * stats.norm.cdf(np.sqrt(n / (n - 1.0)) * stats.t.ppf(0.95, n - 1.0)) - 1.0
    printed = shift_numbers(y_source=ys, s_source=ss, y_target=yt, s_target=st, n_resamples=300, confidence=0.9,
                            seeds=seeds)["metrics"]
    iv = bca_interval(rt - rs, estimate=vt - vs, jackknife=jack, confidence=level)
    assert (printed["mean_auc"]["gap"]["ci_low"], printed["mean_auc"]["gap"]["ci_high"]) == pytest.approx(
        (iv.low, iv.high), abs=1e-12)
    assert printed["mean_auc"]["gap"]["ci_low"] < bca["mean_auc"]["gap"]["ci_low"]  # wider
