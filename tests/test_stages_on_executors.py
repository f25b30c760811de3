"""The stages that map over an executor give the same section wherever their tasks run: Domain Shift's corruption
cells in this process (``local``), in a process pool of 2 (each worker with 1 TensorFlow thread) or on 2 Ray actors;
the Explanation's per-clip occlusion maps in this process or in a pool of 2."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from factsheet.executors import ExecutorSettings

SMALL = """
[model]
clip_seconds = 1.0
[dataset]
n_clips = 80
seed = 2
[metrics]
bootstrap_resamples = 20
[domain_shift]
enabled = true
n_clips = 40
corruptions = ["white_noise", "lowpass"]
severities = [1, 5]
[explanation]
enabled = true
n_bands = 4
n_slices = 4
n_per_class = 1
n_checked = 3
random_orders = 1
deletion_steps = 4
fill_clips = 16
[execution]
stages = ["domain_shift", "explanation"]  # on the pool too (by default only Ray takes them)
"""


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    """The demo model, 80 synthetic clips scored in this process, and the small suite above (2 x 2 cells)."""
    from factsheet.config import load_config
    from factsheet.pipeline import prepare

    path = Path(tmp_path_factory.mktemp("ds_exec")) / "small.toml"
    path.write_text(SMALL)
    ctx, _ = prepare(load_config(path))
    return ctx


def section_on(ctx, settings: ExecutorSettings, monkeypatch=None, scored: dict | None = None):
    """The section with the cells on ``settings``; the cells' results go into ``scored`` as they reach the driver."""
    from factsheet.sections import domain_shift

    ctx = dataclasses.replace(ctx, executor=settings, results={})
    distributed = domain_shift._cell_runner(ctx, {}) is not None
    if scored is not None:
        runner = domain_shift._cell_runner

        def recording(ctx, facts):
            run = runner(ctx, facts)

            def run_and_keep(tasks, **kw):
                scored.update(run(tasks, **kw), kw=kw)
                return {k: v for k, v in scored.items() if k != "kw"}
            return run_and_keep

        monkeypatch.setattr(domain_shift, "_cell_runner", recording)
    result = domain_shift.evaluate(ctx)
    assert result.provenance == {}  # a local model: no request counters
    return dataclasses.asdict(result.section), distributed


@pytest.fixture(scope="module")
def in_process(context):
    section, distributed = section_on(context, ExecutorSettings(kind="local"))
    assert not distributed
    assert [b["name"] for b in section["corruptions"]] == ["white_noise", "lowpass"]
    assert section["groups"] is not None  # the kept scores of severity 1 feed the group tests too
    return section


def test_domain_shift_cells_in_a_process_pool_equal_in_process(context, in_process, monkeypatch):
    """The section, and every cell's scores bit for bit: each pool worker predicts with
    ``default_workers() // 2`` TensorFlow threads (1 on 2 cores), this process with TensorFlow's default."""
    from factsheet import corruptions
    from factsheet.domain_shift.cells import CellTask, score_cell
    from factsheet.sections.domain_shift import _predictor

    scored = {}
    section, distributed = section_on(context, ExecutorSettings(kind="processes", workers=2), monkeypatch, scored)
    assert distributed and section == in_process
    kw = scored.pop("kw")
    assert sorted(scored) == [("lowpass", 1), ("lowpass", 5), ("white_noise", 1), ("white_noise", 5)]
    for task_key, worker in scored.items():
        spec = corruptions.validate_suite([task_key[0]], sample_rate=kw["sample_rate"])[0]
        here = score_cell(task=CellTask(corruption=spec, severity=task_key[1]), predict=_predictor(context), **kw)
        assert worker.scores.dtype == here.scores.dtype == np.float32
        assert np.array_equal(worker.scores, here.scores) and worker.measured == here.measured


@pytest.mark.slow  # the fast suite runs the stage on Ray in tests/test_ray_http.py (HTTP model, same comparison)
def test_domain_shift_cells_on_ray_equal_in_process(context, in_process, ray_local):
    section, distributed = section_on(context, ExecutorSettings(kind="ray", workers=2))
    assert distributed and section == in_process


def test_cell_scored_in_process_equals_the_suites_own_loop(context):
    """score_cell is what the old loop did: corrupt with the suite's seed keyed by clip row, then predict."""
    from factsheet import corruptions
    from factsheet.domain_shift.cells import CellTask, score_cell

    x = context.waveforms[:8]
    ids = np.arange(8) * 3
    spec = corruptions.validate_suite(["white_noise"], sample_rate=16000)[0]
    predict = lambda w: w[:, :4].astype(np.float32)  # noqa: E731 a stand-in model: the first samples
    got = score_cell(clips=x, clip_ids=ids, task=CellTask(corruption=spec, severity=3), sample_rate=16000, seed=5,
                     predict=predict)
    xc, info = corruptions.corrupt(x, corruption=spec, severity=3, sample_rate=16000, seed=5, clip_ids=ids)
    assert np.array_equal(got.scores, xc[:, :4])
    snr = info["per_clip"]["realised_snr_db"]
    assert got.measured["median"] == pytest.approx(float(np.median(snr))) and got.measured["n_clips"] == 8


def explanation_on(ctx, settings: ExecutorSettings):
    from factsheet.sections import explanation

    ctx = dataclasses.replace(ctx, executor=settings, results={})
    result = explanation.evaluate(ctx)
    assert result.provenance == {}  # a local model: no request counters
    return dataclasses.asdict(result.section), result.audio, explanation._clip_runner(ctx, {}) is not None


def test_explanation_maps_in_a_process_pool_equal_in_process(context):
    here, audio_here, distributed_here = explanation_on(context, ExecutorSettings(kind="local"))
    pool, audio_pool, distributed_pool = explanation_on(context, ExecutorSettings(kind="processes", workers=2))
    assert not distributed_here and distributed_pool
    assert here["clips"]["n_explained"] >= 5 and here["sanity"]["model_randomisation"]["status"] != "not_possible"
    assert pool == here and audio_pool == audio_here


@pytest.mark.parametrize("stages,kind,workers,expected", [
    (None, "processes", 2, False), (None, "ray", 2, True), (None, "local", 1, False),
    (("attack",), "ray", 2, False), (("domain_shift",), "processes", 2, True), (("domain_shift",), "processes", 1, False),
    (("domain_shift",), "local", 4, False)])
def test_which_stages_go_on_the_executor(context, stages, kind, workers, expected):
    """[execution] stages: by default only Ray takes the corruption cells and the maps; a pool of one or local never."""
    from factsheet.sections import domain_shift, explanation

    cfg = dataclasses.replace(context.cfg, execution=dataclasses.replace(context.cfg.execution, stages=stages))
    ctx = dataclasses.replace(context, cfg=cfg, executor=ExecutorSettings(kind=kind, workers=workers))
    assert (domain_shift._cell_runner(ctx, {}) is not None) == expected
    assert (explanation._clip_runner(ctx, {}) is not None) == (expected and (stages is None or "explanation" in stages))


def test_unknown_stage_is_one_line(tmp_path):
    from factsheet.config import config_from_dict
    from factsheet.errors import InputError

    with pytest.raises(InputError, match=r"execution\.stages.*'nope'.*must be one of 'attack', 'domain_shift'"):
        config_from_dict({"execution": {"stages": ["nope"]}}, source="c.toml", base_dir=tmp_path)
