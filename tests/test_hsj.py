"""attacks.hsj: the recording HopSkipJump equals ART's stock run; per-clip budgets, init, units."""

import dataclasses
import math
import time

import numpy as np
import pytest
from art.attacks.evasion import HopSkipJump
from art.estimators.classification import BlackBoxClassifier

from attacks.hsj import (
    ClipAttackResult,
    ClipAttackSettings,
    RecordingHopSkipJump,
    attack_clip,
    budgeted,
    make_init,
    measure,
    snr_db,
    to_int16_units,
)
from factsheet.datasets.base import fit_length
from factsheet.datasets.synthetic import make_synthetic
from factsheet.models.adapter import load_default_model, make_estimator

N = 16000  # 1 s clips: one embedding frame, the model accepts any length >= 15600
TINY = dict(max_iter=3, init_eval=10, max_eval=50, init_size=20, batch_size=64)
NORMS = [pytest.param(2, id="L2"), pytest.param(np.inf, id="Linf")]


@pytest.fixture(scope="module")
def setup():
    model = load_default_model(clip_samples=N)
    est = make_estimator(model, wrapper="blackbox")
    ds = make_synthetic(split="eval", n_clips=40, seed=1)
    x, _ = fit_length(ds.clips, n_samples=N)
    top1 = np.argmax(est.predict(x, batch_size=64), axis=1)
    return est, x, top1


def _init(setup, i, seed=0):
    est, x, top1 = setup
    return make_init(clip=x[i], candidates=x, candidate_top1=top1, label=int(top1[i]), estimator=est,
                     rng=np.random.default_rng(seed))


def _attack(setup, i, norm, seed=7, label=None, **settings):
    """``attack_clip`` on clip ``i`` from its ``make_init`` start; ``settings`` override TINY's."""
    est, x, top1 = setup
    return attack_clip(estimator=est, clip=x[i], label=int(top1[i]) if label is None else label, norm=norm,
                       settings=ClipAttackSettings(**{**TINY, **settings}), x_adv_init=_init(setup, i), seed=seed)


def _hsj_kwargs(norm, max_iter=TINY["max_iter"]):
    return dict(batch_size=TINY["batch_size"], norm=norm, max_iter=max_iter, max_eval=TINY["max_eval"],
                init_eval=TINY["init_eval"], init_size=TINY["init_size"], verbose=False)


# -- recording run == stock run --------------------------------------------------------

@pytest.mark.parametrize("norm", NORMS)
def test_recording_equals_stock_bit_for_bit(setup, norm):
    est, x, _ = setup
    xs = x[:2]
    inits = np.stack([_init(setup, 0), _init(setup, 1)])

    np.random.seed(123)
    stock = HopSkipJump(est, **_hsj_kwargs(norm)).generate(xs, x_adv_init=inits.copy())
    np.random.seed(123)
    rec = RecordingHopSkipJump(est, **_hsj_kwargs(norm))
    recorded = rec.generate(xs, x_adv_init=inits.copy())

    assert recorded.dtype == stock.dtype and np.array_equal(recorded, stock)
    assert not np.array_equal(stock, xs)  # the attack did move both clips
    assert len(rec.records) == 2
    for i, r in enumerate(rec.records):
        assert r.init_source == "given"
        assert len(r.iterates) == TINY["max_iter"]
        assert r.iterates[-1] == measure(stock[i], xs[i])  # last recorded iterate is the output
        assert len(r.boundaries) == TINY["max_iter"] - 1  # ART never projects the last iterate


@pytest.mark.parametrize("norm", NORMS)
def test_last_projection_equals_what_iteration_t_plus_1_computes(setup, norm):
    """attack_clip's extra binary search gives exactly the boundary point a max_iter=T+1 run computes."""
    est, x, top1 = setup
    t = TINY["max_iter"]
    res = _attack(setup, 0, norm)
    np.random.seed(7)
    longer = RecordingHopSkipJump(est, **_hsj_kwargs(norm, max_iter=t + 1))
    longer.generate(x[:1], x_adv_init=_init(setup, 0)[None])
    r = longer.records[0]
    assert res.iterates == tuple(r.iterates[:t])
    assert res.boundaries == tuple(r.boundaries[:t])
    assert 0 < res.projection_queries < 60


# -- attack_clip -----------------------------------------------------------------------

@pytest.mark.parametrize("norm", NORMS)
def test_attack_clip_records_every_iteration(setup, norm):
    t = 4
    for i in (0, 1):
        res = _attack(setup, i, norm, max_iter=t)
        assert isinstance(res, ClipAttackResult)
        assert res.success and res.reason == "found" and res.init_source == "given"
        assert len(res.iterate_distance) == len(res.boundary_distance) == len(res.iteration_queries) == t
        assert all(d is not None and d > 0 for d in res.iterate_distance + res.boundary_distance)
        assert res.final_distance == res.iterate_distance[-1]
        # The boundary point is the projection of the iterate towards the clean clip: never farther,
        # in either norm (L2: a shrink of the perturbation; Linf: a clip of it). float32 rounding only.
        for it, bd in zip(res.iterates, res.boundaries):
            assert bd.l2 <= it.l2 * (1 + 1e-6) and bd.linf <= it.linf * (1 + 1e-6)
            assert bd.snr_db >= it.snr_db - 1e-5
        assert res.init_boundary.get(norm) <= res.init.get(norm) * (1 + 1e-6)
        q = res.iteration_queries
        assert all(a < b for a, b in zip(q, q[1:])) and q[-1] < res.queries
        assert res.iterate_snr_db[-1] == pytest.approx(snr_db(setup[1][i], res.iterates[-1].l2))


def test_attack_clip_is_deterministic(setup):
    a = _attack(setup, 1, 2)
    b = _attack(setup, 1, 2)
    timeless = dict(seconds=0.0, iteration_seconds=())
    assert dataclasses.replace(a, **timeless) == dataclasses.replace(b, **timeless)


def test_attack_clip_restores_estimator(setup):
    est = setup[0]
    _attack(setup, 0, 2)
    assert "predict" not in vars(est)


def test_label_must_be_the_clean_top1(setup):
    est, x, top1 = setup
    with pytest.raises(ValueError, match="top-1"):
        _attack(setup, 0, 2, label=int(top1[0] + 1) % est.nb_classes)


def test_init_failure_is_not_distance_zero():
    n, c = 64, 3

    def constant(z):
        return np.tile(np.array([[0.9, 0.05, 0.05]], np.float32), (len(z), 1))

    est = BlackBoxClassifier(constant, input_shape=(n,), nb_classes=c, clip_values=(-1.0, 1.0), preprocessing=None)
    clip = np.random.default_rng(0).uniform(-0.5, 0.5, n).astype(np.float32)
    res = attack_clip(estimator=est, clip=clip, label=0, norm=2, x_adv_init=None, seed=0,
                      settings=ClipAttackSettings(**TINY))
    assert not res.success and res.reason == "init failed" and res.init_source == "art-random"
    assert res.final is None and res.final_distance is None
    assert res.iterate_distance == (None,) * TINY["max_iter"]
    # label check, ART's clean predict, its random draws, its closing compute_success (output and clean clip)
    assert res.queries == 1 + 1 + TINY["init_size"] + 2
    # no candidate of another class -> make_init gives up
    assert make_init(clip=clip, candidates=np.stack([clip, -clip]), candidate_top1=np.array([0, 0]), label=0,
                     estimator=est, rng=np.random.default_rng(0)) is None


def test_query_budget_stops_mid_run(setup):
    t0 = time.perf_counter()
    res = _attack(setup, 1, 2, max_iter=20, max_queries=60)
    assert time.perf_counter() - t0 < 5
    assert not res.success and res.reason == "query budget exceeded"
    assert res.queries <= 60 and res.final is None
    done = [d for d in res.iterate_distance if d is not None]
    assert 0 < len(done) < 20 and res.iterate_distance[len(done):] == (None,) * (20 - len(done))


def test_time_budget(setup):
    res = _attack(setup, 1, 2, max_seconds=0.0)
    assert not res.success and res.reason == "time budget exceeded" and res.queries == 0
    t0 = time.perf_counter()
    res = _attack(setup, 1, 2, max_iter=200, init_eval=100, max_eval=1000, max_seconds=0.3)
    assert time.perf_counter() - t0 < 3
    assert res.reason == "time budget exceeded" and res.iterate_distance[-1] is None


# -- make_init -------------------------------------------------------------------------

def test_make_init_is_adversarial_closer_and_deterministic(setup):
    est, x, top1 = setup
    for i in (0, 1, 2):
        label = int(top1[i])
        init = _init(setup, i, seed=5)
        assert init is not None and init.shape == (N,) and init.dtype == np.float32
        assert int(np.argmax(est.predict(init[None]), axis=1)[0]) != label
        # the candidate it came from: the first of the rng's order (all candidates confirm on this model)
        j = np.random.default_rng(5).permutation(np.flatnonzero(top1 != label))[0]
        assert np.linalg.norm(init - x[i]) < np.linalg.norm(x[j] - x[i])
        assert np.array_equal(init, _init(setup, i, seed=5))
    with budgeted(est) as b:
        _init(setup, 0)
    assert 1 <= b.queries <= 11  # candidate check + 10 blend steps


# -- units -----------------------------------------------------------------------------

def test_snr_and_int16_units():
    clip = np.full(100, 0.5, np.float32)  # power 25
    assert snr_db(clip, 0.5) == pytest.approx(20.0)
    assert snr_db(clip, 0.0) == math.inf
    p = measure(clip + np.float32(0.01), clip)
    assert p.l2 == pytest.approx(0.1, rel=1e-5) and p.linf == pytest.approx(0.01, rel=1e-5)
    assert p.snr_db == pytest.approx(10 * math.log10(25 / 0.01), abs=1e-3)
    assert to_int16_units(1.0) == 32768.0
    np.testing.assert_array_equal(to_int16_units(np.array([0.5, 2 ** -15])), [16384.0, 1.0])


def test_clip_attack_settings_come_from_the_config_and_pickle():
    import pickle

    from factsheet.config import RobustnessConfig

    cfg = RobustnessConfig(iterations=7, init_eval=11, max_eval=99, init_size=13, batch_size=17,
                           max_queries_per_clip=1234, max_seconds_per_clip=5.5, mode="fast")
    s = ClipAttackSettings.from_config(cfg)
    assert s == ClipAttackSettings(max_iter=7, init_eval=11, max_eval=99, init_size=13, batch_size=17,
                                   max_queries=1234, max_seconds=5.5, project_last=True, mode="fast")
    assert pickle.loads(pickle.dumps(s)) == s  # it travels to the worker processes
    with pytest.raises(ValueError, match="max_iter"):
        ClipAttackSettings(**{**TINY, "max_iter": 0})
    with pytest.raises(ValueError, match="mode"):
        ClipAttackSettings(**TINY, mode="quick")
