"""An HTTP model on the Ray executor end to end: Domain Shift's corruption cells scored by 2 Ray actors, each with
its own HTTP client, keep to one global ``[model] concurrency = 1`` at the server (its own in-flight counter),
give the section the driver gives, and their requests are counted in provenance."""

import dataclasses


from _max_server import MaxServer
from factsheet.config import config_from_dict
from factsheet.executors import ExecutorSettings
from factsheet.models.adapter import DEFAULT_LABELS, load_default_model, make_forward


def test_http_model_on_two_ray_workers_keeps_one_request_in_flight(ray_local, tmp_path):
    from factsheet.pipeline import prepare
    from factsheet.sections import domain_shift

    model = load_default_model()
    forward = make_forward(model.keras_model, n_samples=model.clip_samples)
    # every answer waits 20 ms, so two workers' requests would overlap without the global limit
    with MaxServer(forward, model.class_labels, n_samples=model.clip_samples, slow=1.0, slow_seconds=0.02) as srv:
        cfg = config_from_dict({
            "model": {"source": "http", "url": srv.url, "class_labels": str(DEFAULT_LABELS), "clip_seconds": 2.0,
                      "concurrency": 1, "timeout_seconds": 10.0},
            "dataset": {"kind": "synthetic", "n_clips": 40, "seed": 4},
            "metrics": {"bootstrap_resamples": 20},
            "domain_shift": {"enabled": True, "n_clips": 12, "corruptions": ["white_noise"], "severities": [1, 5],
                             "group_severity": 0},
            "bias": {"enabled": False}}, source="http.toml", base_dir=tmp_path)
        ctx, _ = prepare(cfg)
        here = domain_shift.evaluate(dataclasses.replace(ctx, executor=ExecutorSettings(kind="local"), results={}))
        srv.counts["max_in_flight"] = 0
        on_ray = domain_shift.evaluate(dataclasses.replace(ctx, executor=ExecutorSettings(kind="ray", workers=2),
                                                           results={}))
        assert srv.counts["max_in_flight"] == 1  # the server never had two requests at once
    assert dataclasses.asdict(on_ray.section) == dataclasses.asdict(here.section)
    assert here.provenance == {}  # in this process: counted with the driver's own predictions
    counted = on_ray.provenance["domain_shift_requests"]
    assert counted["clips"] == 2 * 12 and counted["max_in_flight"] == 1 and counted["gave_up"] == 0
