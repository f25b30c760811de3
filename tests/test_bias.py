"""Bias: group metrics against scikit-learn, corrections by hand, planted effects found, null effects not."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from sklearn.metrics import average_precision_score, roc_auc_score

from factsheet.bias import Group, column_describes_class, evaluate_bias, group_replicates
from factsheet.sections.conditions import measured_conditions
from factsheet.bias.stats import _bh, _group_ap_auc, _holm, _members, _negative_cumulants
from factsheet.config import BiasConfig, MetricsConfig
from factsheet.datasets.base import ClassLabel
from factsheet.metrics import _count_plan, _rank, _resample_indices


def labels(m):
    return [ClassLabel(index=i, mid=f"/x/{i}", display_name=f"c{i}", category="cat") for i in range(m)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_metrics_equal_sklearn_subset_and_weights(seed):
    rng = np.random.default_rng(seed)
    n, m = 300, 5
    y = rng.random((n, m)) < 0.25
    s = np.round(rng.random((n, m)) + 0.5 * y, 1)  # heavy ties
    g = rng.random(n) < 0.3
    r = _rank(np.ascontiguousarray(y.T), np.ascontiguousarray(s.T))
    plan = _count_plan(r)
    counts = np.stack([np.ones(n, int), np.bincount(rng.integers(0, n, n), minlength=n)]).astype(plan.count_dtype)
    neg = _negative_cumulants(r, plan, counts)
    ap, auc, n_pos, n_neg = _group_ap_auc(r, neg, counts, _members(r, g.astype(float)))
    for b in range(2):
        for c in range(m):
            share = (counts[b] * (g & y[:, c])).sum() / (counts[b] * y[:, c]).sum()
            w = counts[b] * np.where(y[:, c], g, 1.0)
            w_ap = counts[b] * np.where(y[:, c], g, share)  # prevalence-matched negatives for AP
            keep = w > 0
            if not y[keep, c].any():
                assert np.isnan(ap[b, c])
                continue
            assert ap[b, c] == pytest.approx(
                average_precision_score(y[keep, c], s[keep, c], sample_weight=w_ap[keep]), abs=1e-12)
            assert auc[b, c] == pytest.approx(roc_auc_score(y[keep, c], s[keep, c], sample_weight=w[keep]), abs=1e-12)


# The Bias bootstrap before the count-based one: a dense (replicates, classes, clips) cumulative
# sum per block. Kept as the slow reference the fast one must equal bit for bit.


def _reference_group_replicates(y, s, masks, n_bootstrap, seed, clip_values=None):
    clip_values = clip_values or {}
    y = np.asarray(y).astype(bool)
    n, m = y.shape
    r = _rank(np.ascontiguousarray(y.T), np.ascontiguousarray(np.asarray(s, dtype=np.float64).T))
    neg_sorted = ~y.T[np.arange(m)[:, None], r.order]

    def neg_cumulants(counts):
        cwn = np.cumsum(counts[:, r.order] * neg_sorted[None], axis=-1)
        below = np.where(r.start > 0, cwn[:, r.row, np.maximum(r.start - 1, 0)], 0.0)
        return below, cwn[:, r.row, r.stop - 1], cwn[:, :, -1], counts @ y.astype(np.float64)

    def ap_auc(counts, member):
        below, at_or_below, total, positives = neg_cumulants(counts)
        b = counts.shape[0]
        pw = counts[:, r.clip] * member[r.clip]
        cp = np.zeros((b, pw.shape[1] + 1))
        np.cumsum(pw, axis=-1, out=cp[:, 1:])
        n_pos = cp[:, r.first + r.n_pos] - cp[:, r.first]
        cp_start = cp[:, r.k_start] - cp[:, r.first[r.row]]
        share = np.divide(n_pos, positives, out=np.zeros_like(n_pos), where=positives > 0)
        pos_above = n_pos[:, r.row] - cp_start
        above = pos_above + share[:, r.row] * (total[:, r.row] - below)
        precision = np.divide(pos_above, above, out=np.zeros_like(above), where=above > 0)
        key = (np.arange(b)[:, None] * m + r.row).ravel()

        def per_class(x):
            return np.bincount(key, weights=x.ravel(), minlength=b * m).reshape(b, m)

        with np.errstate(divide="ignore", invalid="ignore"):
            ap = per_class(pw * precision) / n_pos
            auc = 0.5 * per_class(pw * (below + at_or_below)) / (n_pos * total)
        return np.where(n_pos > 0, ap, np.nan), np.where((n_pos > 0) & (total > 0), auc, np.nan), n_pos

    reps = {gi: {"ap": np.empty((n_bootstrap, m)), "auc": np.empty((n_bootstrap, m)),
                 **{k: np.empty(n_bootstrap) for k in clip_values}} for gi in range(len(masks))}
    point = {}
    for gi, mask in enumerate(masks):
        ap, auc, n_pos = ap_auc(np.ones((1, n)), mask.astype(float))
        point[gi] = {"ap": ap[0], "auc": auc[0], "n_pos": n_pos[0].astype(int),
                     **{k: float(v[mask].mean()) if mask.any() else float("nan") for k, v in clip_values.items()}}
    for i, idx in enumerate(_resample_indices(n, n_bootstrap, seed)):
        counts = np.bincount(idx, minlength=n)[None].astype(np.float64)
        for gi, mask in enumerate(masks):
            reps[gi]["ap"][i], reps[gi]["auc"][i], _ = (x[0] for x in ap_auc(counts, mask.astype(float)))
            weight = counts[0] @ mask
            for k, v in clip_values.items():
                reps[gi][k][i] = (counts[0] @ (mask * v)) / weight if weight > 0 else np.nan
    return {"point": point, "reps": reps}


def _bias_case(seed):
    """Heavy ties, a class without positives, one with no negatives, an empty group, overlapping groups."""
    rng = np.random.default_rng(seed)
    n, m = 250, 7
    y = rng.random((n, m)) < rng.uniform(0.02, 0.5, m)
    y[:, 0] = False
    y[:, 1] = True
    s = np.round(rng.random((n, m)) + 0.6 * y, 1)
    s[:, 2] = 0.5  # one tie group for the whole class
    site = rng.choice(["a", "b", "c"], n)
    masks = [site == "a", site == "b", site == "c", np.zeros(n, bool), rng.random(n) < 0.1, np.ones(n, bool)]
    return y, s, masks


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_replicates_equal_the_dense_reference_bit_for_bit(seed):
    y, s, masks = _bias_case(seed)
    groups = [Group(columns=("g",), name=str(i), mask=mk) for i, mk in enumerate(masks)]
    acc = {"accuracy": (np.random.default_rng(seed + 9).random(len(y)) < 0.7).astype(float)}
    new = group_replicates(y_true=y, y_score=s, groups=groups, n_bootstrap=70, seed=seed, clip_values=acc)
    ref = _reference_group_replicates(y, s, masks, 70, seed, clip_values=acc)
    for gi in range(len(masks)):
        for key in ("ap", "auc", "n_pos", "accuracy"):
            np.testing.assert_array_equal(new["point"][gi][key], ref["point"][gi][key])
        for key in ("ap", "auc", "accuracy"):
            np.testing.assert_array_equal(new["reps"][gi][key], ref["reps"][gi][key])
    assert np.isfinite(new["reps"][0]["ap"][:, 1:]).all() and np.isnan(new["reps"][0]["ap"][:, 0]).all()


def test_group_replicates_do_not_depend_on_threads_or_block_size(monkeypatch):
    import factsheet.metrics as metrics

    y, s, masks = _bias_case(4)
    groups = [Group(columns=("g",), name=str(i), mask=mk) for i, mk in enumerate(masks)]
    want = group_replicates(y_true=y, y_score=s, groups=groups, n_bootstrap=45, seed=3)
    monkeypatch.setattr(metrics, "_REPLICATE_BLOCK", 7)
    monkeypatch.setattr(metrics, "_BOOTSTRAP_THREADS", 1)
    got = group_replicates(y_true=y, y_score=s, groups=groups, n_bootstrap=45, seed=3)
    for gi in range(len(masks)):
        np.testing.assert_array_equal(got["reps"][gi]["ap"], want["reps"][gi]["ap"])
        np.testing.assert_array_equal(got["reps"][gi]["auc"], want["reps"][gi]["auc"])


def test_holm_and_bh_by_hand():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(_holm(p), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(_bh(p), [0.02, 0.04, 0.04, 0.02])


def planted(seed, *, effect):
    """Class 0 carries a group attribute (like voice type for Speech); group B's positives score lower."""
    rng = np.random.default_rng(seed)
    n, m = 900, 4
    y = np.zeros((n, m), bool)
    y[:, 1:] = rng.random((n, m - 1)) < 0.3
    voice = np.array(["none"] * n, dtype=object)
    speech = rng.random(n) < 0.4
    y[:, 0] = speech
    voice[speech] = rng.choice(["A", "B"], speech.sum())
    s = rng.normal(size=(n, m)) + 1.5 * y
    s[(voice == "B") & y[:, 0], 0] -= effect
    meta = pd.DataFrame({"clip_id": [f"c{i}" for i in range(n)], "voice": voice,
                         "noise": rng.choice(["x", "y", "z"], n)})
    return y.astype(np.uint8), s, meta


def run_bias(y, s, meta, **kw):
    st = BiasConfig(columns=("voice", "noise"), condition_columns=(), **kw)
    return evaluate_bias(y_true=y, y_score=s, class_labels=labels(y.shape[1]), metadata=meta, settings=st,
                         bootstrap=MetricsConfig(bootstrap_resamples=400))


def test_planted_effect_is_a_finding():
    sec, _ = run_bias(*planted(0, effect=1.2))
    found = [d for d in sec["disparities"] if d["finding"]]
    assert found and all(d["group"] == "B" and d["columns"] == ["voice"] for d in found)
    assert {(d["metric"], d["class"]) for d in found} >= {("ap", "c0"), ("auc", "c0")}
    for d in found:
        assert d["ci_high"] < 0 and d["class"] in ("c0", None)
    assert "voice = B is disadvantaged" in " ".join(sec["findings"])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_null_scenario_has_no_findings(seed):
    sec, _ = run_bias(*planted(seed, effect=0.0))
    assert not [d for d in sec["disparities"] if d["finding"]]
    assert sec["findings"][0].startswith("No disparity was a finding")


def test_no_comparable_groups_says_nothing_was_tested():
    y, s, meta = planted(0, effect=0.0)
    sec, _ = run_bias(y, s, meta, min_group_size=10_000)  # no group is large enough to compare
    assert not [d for d in sec["disparities"] if d["p_value"] is not None]
    assert sec["findings"] == [sec["findings"][0]] and sec["findings"][0].startswith("No disparity was tested")


def test_small_groups_are_insufficient_evidence_never_findings():
    y, s, meta = planted(0, effect=3.0)
    sec, _ = run_bias(y, s, meta, min_group_size=1000)
    assert all(g["insufficient_evidence"] for g in sec["groups"])
    assert not [d for d in sec["disparities"] if d["finding"]]
    assert any("insufficient evidence" in t for t in sec["not_evaluated"])


def test_column_describes_class():
    y, s, meta = planted(0, effect=0.0)
    groups = [Group(columns=("voice",), name=v, mask=(meta["voice"] == v).to_numpy()) for v in ("A", "B")]
    attr = column_describes_class(y=y.astype(bool), groups=groups)
    assert attr[(("voice",), 0)] is True and attr[(("voice",), 1)] is False


def test_replicates_are_paired_and_deterministic():
    y, s, meta = planted(1, effect=0.5)
    groups = [Group(columns=("voice",), name=v, mask=(meta["voice"] == v).to_numpy()) for v in ("A", "B")]
    a = group_replicates(y_true=y, y_score=s, groups=groups, n_bootstrap=50, seed=7)
    b = group_replicates(y_true=y, y_score=s, groups=groups, n_bootstrap=50, seed=7)
    np.testing.assert_array_equal(a["reps"][0]["ap"], b["reps"][0]["ap"])
    assert a["reps"][0]["ap"].shape == (50, y.shape[1])


def conditions_of(sec: dict) -> dict:
    """The measured Optimal / Poor conditions the Conditions sections derive from a Bias section."""
    return measured_conditions(groups=sec["groups"], disparities=sec["disparities"],
                               condition_columns=sec["settings"]["condition_columns"],
                               confidence=sec["settings"]["confidence"])


def test_conditions_name_the_numbers():
    rng = np.random.default_rng(5)
    n, m = 900, 5
    y = (rng.random((n, m)) < 0.3).astype(np.uint8)
    crowd = rng.choice([1, 2, 3], n)
    s = rng.normal(size=(n, m)) + (3.0 - 0.8 * crowd)[:, None] * y  # more events, worse separation
    meta = pd.DataFrame({"clip_id": [str(i) for i in range(n)], "n_events": crowd})
    st = BiasConfig(columns=(), condition_columns=("n_events",))
    sec, _ = evaluate_bias(y_true=y, y_score=s, class_labels=labels(m), metadata=meta, settings=st,
                           bootstrap=MetricsConfig(bootstrap_resamples=300))
    cond = conditions_of(sec)
    assert cond["poor"] and "n_events = 3: mAP falls from" in cond["poor"][0]
    assert "n_events = 1" in cond["optimal"][0] and "n = " in cond["optimal"][0]


@pytest.fixture(scope="module")
def demo_scores():
    from factsheet.datasets.base import fit_length
    from factsheet.datasets.synthetic import make_synthetic
    from factsheet.models.adapter import load_default_model

    model = load_default_model()
    ds = make_synthetic(split="eval", n_clips=1200, seed=1)
    x, _ = fit_length(ds.clips, n_samples=model.clip_samples)
    return ds, model.keras_model.predict(x, batch_size=128, verbose=0)


def test_demo_planted_voice_skew_is_detected(demo_scores):
    ds, scores = demo_scores
    st = BiasConfig(columns=("voice_type",), condition_columns=())
    sec, _ = evaluate_bias(y_true=ds.labels, y_score=scores, class_labels=ds.class_labels,
                              metadata=ds.metadata, settings=st,
                              bootstrap=MetricsConfig(bootstrap_resamples=500))
    found = [d for d in sec["disparities"] if d["finding"]]
    assert {(d["group"], d["class"]) for d in found} >= {("child", "Speech")}
    assert all(d["group"] != "male" for d in found)  # the dominant training voice is never disadvantaged
    for d in found:
        assert d["ci_high"] < 0


def null_findings(ds, seed, n_bootstrap=300):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=ds.labels.shape) + 1.5 * ds.labels  # depends on the labels only
    st = BiasConfig(columns=("voice_type", "instrument_family", "background"),
                      intersections=(("voice_type", "snr_bucket"),))
    sec, _ = evaluate_bias(y_true=ds.labels, y_score=scores, class_labels=ds.class_labels,
                           metadata=ds.metadata, settings=st,
                           bootstrap=MetricsConfig(bootstrap_resamples=n_bootstrap))
    return [d for d in sec["disparities"] if d["finding"]], conditions_of(sec)


def test_demo_null_model_scoring_groups_alike_has_no_findings(demo_scores):
    """The demo's clips and metadata with a 'model' that scores every group alike: no finding.

    The family-wise error rate is 5 %, so a given seed has at most a 5 % chance of a false
    finding; the next test checks that rate over many seeds instead of trusting one.
    """
    ds, _ = demo_scores
    found, cond = null_findings(ds, seed=1, n_bootstrap=500)
    assert not found and not cond["poor"]


def test_null_false_finding_rate_is_controlled(demo_scores):
    ds, _ = demo_scores
    with_findings = sum(bool(null_findings(ds, seed)[0]) for seed in range(10, 20))
    assert with_findings <= 2  # expected <= 0.5 at a 5 % family-wise rate; P(>= 3) is about 1 %


def test_single_label_accuracy_per_group_and_disparity():
    rng = np.random.default_rng(3)
    n, m = 900, 4
    cls = rng.integers(0, m, n)
    y = np.eye(m, dtype=np.uint8)[cls]
    accent = rng.choice(["p", "q"], n)
    s = rng.normal(size=(n, m)) + 2.5 * y
    s[accent == "q"] += rng.normal(scale=2.0, size=((accent == "q").sum(), m))  # planted: 'q' is noisier
    meta = pd.DataFrame({"clip_id": [str(i) for i in range(n)], "accent": accent})
    st = BiasConfig(columns=("accent",), condition_columns=())
    sec, _ = evaluate_bias(y_true=y, y_score=s, class_labels=labels(m), metadata=meta, settings=st,
                              bootstrap=MetricsConfig(bootstrap_resamples=300))
    by = {g["group"]: g for g in sec["groups"]}
    right = {}
    for name in ("p", "q"):
        mask = (accent == name)
        right[name] = (int((s[mask].argmax(1) == cls[mask]).sum()), int(mask.sum()))
        want = right[name][0] / right[name][1]
        assert by[name]["metrics"]["accuracy"]["value"] == pytest.approx(want)
        lo, hi = by[name]["metrics"]["accuracy"]["ci_low"], by[name]["metrics"]["accuracy"]["ci_high"]
        exact = binomtest(*right[name]).proportion_ci(confidence_level=0.95, method="exact")  # Clopper-Pearson
        assert (lo, hi) == pytest.approx((exact.low, exact.high), abs=1e-12) and lo < want < hi
        assert by[name]["metrics"]["macro_f1"]["value"] is not None
    assert sec["interval_methods"]["groups.accuracy"] == "clopper_pearson"
    assert sec["interval_methods"]["disparities[metric=accuracy]"] == "newcombe"
    acc = [d for d in sec["disparities"] if d["metric"] == "accuracy"]
    assert acc and acc[0]["group"] == "q" and acc[0]["finding"]
    want = _newcombe_by_hand(*right["q"], *right["p"])  # group q minus the reference p
    assert (acc[0]["ci_low"], acc[0]["ci_high"]) == pytest.approx(want, abs=1e-12)


def _newcombe_by_hand(ka, na, kb, nb):
    """Newcombe's hybrid score interval of ka/na - kb/nb from scipy's Wilson intervals."""
    wa = binomtest(ka, na).proportion_ci(confidence_level=0.95, method="wilson")
    wb = binomtest(kb, nb).proportion_ci(confidence_level=0.95, method="wilson")
    pa, pb = ka / na, kb / nb
    return pa - pb - np.hypot(pa - wa.low, wb.high - pb), pa - pb + np.hypot(wa.high - pa, pb - wb.low)


def _single_label(seed, *, sizes, accuracies, m=10):
    """Single-label clips of groups 'g0', 'g1', ... (column 'site'): each clip's top-1 class right with its
    group's probability."""
    rng = np.random.default_rng(seed)
    site = np.repeat([f"g{k}" for k in range(len(sizes))], sizes)
    n = len(site)
    cls = rng.integers(0, m, n)
    right = rng.random(n) < np.repeat(accuracies, sizes)
    s = rng.normal(size=(n, m))
    s[np.arange(n), np.where(right, cls, (cls + 1 + rng.integers(0, m - 1, n)) % m)] = s.max(1) + 1
    meta = pd.DataFrame({"clip_id": [str(i) for i in range(n)], "site": site})
    return np.eye(m, dtype=np.uint8)[cls], s, meta


def _accuracy_rows(y, s, meta):
    sec, _ = evaluate_bias(y_true=y, y_score=s, class_labels=labels(y.shape[1]), metadata=meta,
                           settings=BiasConfig(columns=("site",), condition_columns=()),
                           bootstrap=MetricsConfig(bootstrap_resamples=300))
    return sec, [d for d in sec["disparities"] if d["metric"] == "accuracy"]


def test_accuracy_at_n_of_n_keeps_its_width_and_a_planted_gap_at_small_groups_is_found():
    """20 of 20 right: the percentile bootstrap printed [1, 1]; Clopper-Pearson [0.832, 1]. A gap of 20/20
    against 10/20 is a finding; with Newcombe's interval the difference's interval no longer has zero width
    when both groups are perfect."""
    y, s, meta = _single_label(0, sizes=(20, 20), accuracies=(1.0, 0.5))
    sec, acc = _accuracy_rows(y, s, meta)
    g0 = next(g for g in sec["groups"] if g["group"] == "g0")["metrics"]["accuracy"]
    assert g0["value"] == 1.0 and g0["ci_high"] == 1.0
    assert g0["ci_low"] == pytest.approx(0.025 ** (1 / 20))  # Clopper-Pearson at n of n: (alpha / 2)^(1 / n)
    assert acc[0]["group"] == "g1" and acc[0]["finding"] and acc[0]["ci_high"] < 0
    _, same = _accuracy_rows(*_single_label(0, sizes=(20, 20), accuracies=(1.0, 1.0)))
    assert same[0]["difference"] == 0 and same[0]["ci_low"] < -0.1 < 0.1 < same[0]["ci_high"]
    assert not same[0]["finding"]


def test_accuracy_null_has_no_findings():
    """Equal accuracy (0.9) in three groups of 20 / 50 / 200 clips: no finding on any of 8 seeds."""
    for seed in range(8):
        _, acc = _accuracy_rows(*_single_label(seed, sizes=(20, 50, 200), accuracies=(0.9, 0.9, 0.9)))
        assert len(acc) == 2 and not any(d["finding"] for d in acc)


def test_group_plot_draws_an_interval_that_excludes_its_point():
    """A percentile interval need not contain the point estimate (skewed replicates); the plot must
    still draw (found at 5 000 clips x 527 classes by bench/bench_scale.py)."""
    from factsheet.bias.plots import groups_svg

    def row(group, value, low, high):
        return {"columns": ["site"], "group": group, "insufficient_evidence": False,
                "metrics": {"mAP": {"value": value, "ci_low": low, "ci_high": high}}}

    section = {"groups": [row("a", 0.50, 0.52, 0.60), row("b", 0.70, 0.60, 0.68), row("c", 0.4, None, None)],
               "disparities": []}
    assert groups_svg(section).startswith("<svg")
