"""HttpModelClient against a real local HTTP server speaking MAX's REST API (tests/_max_server.py).

The server serves the demo Keras model; the expected scores are computed here independently:
quantise each clip to 16-bit PCM, run it alone through the model, keep its top 5 scores.
"""

from __future__ import annotations

import json
import multiprocessing
import pickle
import socket
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
import urllib3

from _max_server import CORRUPTIONS, MaxServer, serve
from factsheet.datasets.base import fit_length
from factsheet.errors import InputError
from factsheet.models.http_model import PREDICT_FIELD, HttpModelClient, base_url, wav_bytes

N_CLIPS = 40
FAST = dict(backoff_seconds=0.01, timeout_seconds=10.0)  # test servers answer in milliseconds


@pytest.fixture(scope="module")
def demo():
    """The demo model's forward, 40 synthetic clips at the model length, and their expected scores."""
    from factsheet.datasets.synthetic import make_synthetic
    from factsheet.models.adapter import load_default_model, make_forward

    model = load_default_model()
    n = model.clip_samples
    forward = make_forward(model.keras_model, n_samples=n)
    data = make_synthetic(split="eval", n_clips=N_CLIPS, seed=7)
    clips, _ = fit_length(data.clips, n_samples=n)
    clips[0, :100] = 1.5  # out of range: saturates at +32767 / 32768 on the wire
    clips[1, :100] = -1.5
    expected = np.zeros((N_CLIPS, len(model.class_labels)), np.float32)
    for i in range(N_CLIPS):  # one at a time, as the server runs them
        pcm = np.clip(np.rint(clips[i].astype(np.float64) * 32768), -32768, 32767).astype(np.int16)
        scores = forward((pcm.astype(np.float32) / 32768)[None, :])[0]
        top5 = np.argsort(scores)[::-1][:5]
        expected[i, top5] = scores[top5]
    return {"model": model, "forward": forward, "n": n, "clips": clips, "expected": expected}


@pytest.fixture(scope="module")
def server(demo):
    with MaxServer(demo["forward"], demo["model"].class_labels, n_samples=demo["n"]) as srv:
        yield srv


def client_for(url: str, demo, **kw) -> HttpModelClient:
    opts = {**FAST, "sample_rate": 16000, **kw}
    return HttpModelClient(url=url, class_labels=demo["model"].class_labels, **opts)


@pytest.fixture(scope="module")
def fault_free(server, demo):
    client = client_for(server.url, demo, concurrency=4)
    return client.forward(demo["clips"]), client.stats()


def closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


# ---------------------------------------------------------------- results


def test_scores_equal_models_own_top5_on_quantised_clips(fault_free, demo):
    scores, stats = fault_free
    assert scores.dtype == np.float32 and scores.shape == demo["expected"].shape
    assert np.array_equal(scores, demo["expected"])  # exact: float32 -> JSON -> float32 round trip
    assert np.all(np.count_nonzero(scores, axis=1) <= 5)
    assert stats["top_k_seen"] == 5 and stats["successes"] == N_CLIPS == stats["requests"]
    assert stats["retries"] == 0 and sum(stats["failures"].values()) == 0
    json.dumps(stats)


def test_url_with_or_without_predict_path(server, demo):
    for url in (server.url, server.url + "/", server.url + "/model/predict", server.url + "/model/predict/"):
        assert base_url(url) == server.url
        assert np.array_equal(client_for(url, demo).forward(demo["clips"][:2]), demo["expected"][:2])
    assert base_url("https://gw.example/max/model/predict") == "https://gw.example/max"
    with pytest.raises(InputError, match="url"):
        base_url("ftp://host/model/predict")


def test_below_half_lsb_perturbation_vanishes(server, demo):
    x = np.rint(demo["clips"][:2] * 32768) / 32768  # on the 16-bit grid
    client = client_for(server.url, demo, concurrency=2)
    assert np.array_equal(client.forward(x + 0.4 / 32768), client.forward(x))
    assert len(wav_bytes(x[0], sample_rate=16000)) == 44 + 2 * demo["n"]


def test_faults_do_not_change_scores(demo, fault_free):
    with MaxServer(demo["forward"], demo["model"].class_labels, n_samples=demo["n"], drop=0.10, error=0.05,
                   slow=0.10, slow_seconds=0.05, seed=3) as srv:
        client = client_for(srv.url, demo, concurrency=4, max_retries=6)
        scores = client.forward(demo["clips"])
        counts = dict(srv.counts)
    assert np.array_equal(scores, fault_free[0])  # bit for bit
    s = client.stats()
    assert counts["dropped"] > 0 and counts["errors"] > 0 and counts["slow"] > 0
    assert s["failures"]["connection"] == counts["dropped"] and s["failures"]["http_5xx"] == counts["errors"]
    assert s["retries"] == sum(s["failures"].values()) > 0
    assert s["requests"] == s["successes"] + s["retries"] == counts["predict"]
    assert s["successes"] == N_CLIPS and s["gave_up"] == 0
    assert 1 < s["max_in_flight"] <= 4 and counts["max_in_flight"] <= 4


@pytest.mark.parametrize("concurrency", [1, 3])
def test_concurrency_limit(demo, concurrency):
    with MaxServer(demo["forward"], demo["model"].class_labels, n_samples=demo["n"], slow=1.0,
                   slow_seconds=0.03) as srv:
        client = client_for(srv.url, demo, concurrency=concurrency)
        client.forward(demo["clips"][:8])
        seen_by_server = srv.counts["max_in_flight"]
    seen_by_client = client.stats()["max_in_flight"]
    for m in (seen_by_client, seen_by_server):
        assert m <= concurrency and (m > 1 if concurrency > 1 else m == 1)


def test_process_wide_request_gate_is_held_around_every_request(demo):
    """The gate the Ray executor installs (one slot of a global semaphore per request): with one slot, a
    client allowed 4 requests in flight gets 1 at the server; every request passes through it."""
    import threading
    from contextlib import contextmanager

    from factsheet.models import http_model

    slot, entered = threading.Semaphore(1), []

    @contextmanager
    def gate():
        with slot:
            entered.append(1)
            yield

    http_model.set_request_gate(gate)
    try:
        with MaxServer(demo["forward"], demo["model"].class_labels, n_samples=demo["n"], slow=1.0,
                       slow_seconds=0.03) as srv:
            client = client_for(srv.url, demo, concurrency=4)
            client.forward(demo["clips"][:8])
            assert srv.counts["max_in_flight"] == 1
    finally:
        http_model.set_request_gate(None)
    assert len(entered) == client.stats()["requests"] >= 8


# ---------------------------------------------------------------- errors


def test_dead_endpoint_fails_fast_in_one_line(demo):
    url = closed_port_url()
    client = HttpModelClient(url=url, class_labels=demo["model"].class_labels, sample_rate=16000,
                             concurrency=4)  # default retries and backoff
    t = time.perf_counter()
    with pytest.raises(InputError) as info:
        client.forward(demo["clips"][:8])
    elapsed = time.perf_counter() - t
    assert elapsed < 4.0  # at most 0.2 + 0.4 + 0.8 + 1.6 s of backoff, and the batch stops at once
    err = info.value
    assert err.source == url and err.field == PREDICT_FIELD and err.value == "ConnectionRefusedError"
    assert "\n" not in err.line() and "5 attempt" in err.reason
    s = client.stats()
    assert s["failures"]["connection"] == s["requests"] and s["successes"] == 0
    with pytest.raises(InputError):  # the load-time check gives the same line
        HttpModelClient(url=url, class_labels=demo["model"].class_labels, sample_rate=16000, max_retries=0).probe()


def test_400_fails_at_once_with_servers_message(server, demo):
    client = client_for(server.url, demo, sample_rate=8000)
    with pytest.raises(InputError) as info:
        client.forward(demo["clips"][:1])
    assert info.value.value == 400 and "expected a sample rate of 16000 Hz, got 8000" in info.value.reason
    assert client.stats()["requests"] == 1 and client.stats()["failures"]["http_4xx"] == 1


def test_server_refuses_wrong_part_type_and_non_wav(server, demo):
    http = urllib3.PoolManager(retries=False)
    good = wav_bytes(demo["clips"][0], sample_rate=16000)
    for fields, message in [({"audio": ("clip.wav", good, "text/plain")}, "Invalid file type"),
                            ({"audio": ("clip.wav", b"not a wav file at all", "audio/wav")}, "Invalid WAV"),
                            ({"sound": ("clip.wav", good, "audio/wav")}, "missing form field")]:
        r = http.request("POST", server.url + "/model/predict", fields=fields)
        assert r.status == 400 and message in json.loads(r.data)["message"]
    r = http.request("POST", server.url + "/model/predict", fields={"audio": ("clip.wav", good, "audio/wav")})
    assert r.status == 200 and json.loads(r.data)["status"] == "ok"
    meta = client_for(server.url, demo).metadata()
    assert meta["type"] == "Audio Classification"


@pytest.mark.parametrize("corrupt", CORRUPTIONS)
def test_malformed_answer(demo, corrupt):
    with serve(demo["forward"], demo["model"].class_labels, n_samples=demo["n"], corrupt=corrupt) as url:
        client = client_for(url, demo)
        with pytest.raises(InputError) as info:
            client.forward(demo["clips"][:1])
    err = info.value
    assert err.source == url and err.field.startswith(PREDICT_FIELD + " answer") and "\n" not in err.line()
    assert client.stats()["requests"] == 1 and client.stats()["failures"]["malformed"] == 1


def test_timeouts_are_retried_then_reported(demo):
    with serve(demo["forward"], demo["model"].class_labels, n_samples=demo["n"], slow=1.0, slow_seconds=0.5) as url:
        client = client_for(url, demo, timeout_seconds=0.1, max_retries=1)
        with pytest.raises(InputError) as info:
            client.forward(demo["clips"][:1])
    assert info.value.value == "ReadTimeoutError" and client.stats()["failures"]["timeout"] == 2


def test_budget(server, demo):
    client = client_for(server.url, demo, max_requests=3)
    client.forward(demo["clips"][:2])
    with pytest.raises(InputError) as info:  # 1 left, 2 needed: refused before sending
        client.forward(demo["clips"][:2])
    assert info.value.field == "max_requests" and "exhausted" in info.value.reason
    assert client.stats()["requests"] == 2 and client.stats()["requests_left"] == 1
    with serve(demo["forward"], demo["model"].class_labels, n_samples=demo["n"], error=1.0) as url:
        client = client_for(url, demo, max_requests=2, max_retries=5)
        with pytest.raises(InputError) as info:  # spent on retries
            client.forward(demo["clips"][:1])
    assert info.value.field == "max_requests" and client.stats()["requests"] == 2


# ---------------------------------------------------------------- pickling, ART


def test_pickle_spec_and_spawned_worker(server, demo, fault_free):
    client = client_for(server.url, demo, concurrency=2, max_requests=100)
    client.forward(demo["clips"][:1])
    copy = pickle.loads(pickle.dumps(client))
    assert copy.stats()["requests"] == 0 and copy.spec() == client.spec()
    again = HttpModelClient.from_spec(json.loads(json.dumps(client.spec())))
    assert np.array_equal(again.forward(demo["clips"][:3]), fault_free[0][:3])
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        remote = pool.submit(client.forward, demo["clips"][:3]).result(timeout=60)
    assert np.array_equal(remote, fault_free[0][:3])


def test_art_blackbox_and_hopskipjump(server, demo):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from art.attacks.evasion import HopSkipJump
        from art.estimators.classification import BlackBoxClassifier

    client = client_for(server.url, demo, concurrency=4)
    n, k = demo["n"], client.n_classes
    clf = BlackBoxClassifier(client.forward, input_shape=(n,), nb_classes=k, clip_values=(-1.0, 1.0))
    x = demo["clips"][2:3]
    assert np.array_equal(clf.predict(x), demo["expected"][2:3])
    attack = HopSkipJump(clf, norm=2, max_iter=2, max_eval=50, init_eval=10, init_size=20, verbose=False)
    np.random.seed(0)  # HopSkipJump draws from numpy's global generator
    adv = attack.generate(x=x)
    assert adv.shape == x.shape and np.all(np.isfinite(adv)) and np.all(np.abs(adv) <= 1.0)
    assert client.stats()["requests"] > 20
