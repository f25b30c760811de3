"""Scores of the demo model predicted in a worker with 1 TensorFlow thread are bit-identical to the driver's,
predicted in process with TensorFlow's default threads (the requirement behind running any prediction on an
executor: the FactSheet must not depend on where a stage ran).

Marked slow (a pool of 2 TensorFlow workers; about 15 s on an idle 2-core machine): the fast suite checks the
same property on corrupted clips in ``tests/test_domain_shift_executors.py``. Run with
``pytest -m slow tests/test_prediction_bits.py``."""

import numpy as np
import pytest

from factsheet.executors import ExecutorSettings, Job, default_workers, map_tasks

import _executor_jobs as jobs

BATCH = 32


@pytest.fixture(scope="module")
def driver():
    """The quick config's model (the demo Keras classifier) and 96 synthetic EVAL clips, scored in this process."""
    from factsheet.config import DatasetConfig, ModelConfig
    from factsheet.datasets.base import fit_clips
    from factsheet.models.adapter import make_estimator, predict_scores
    from factsheet.models.sources import load_model, model_spec
    from factsheet.pipeline import load_dataset

    model = load_model(ModelConfig(source="default"))
    ds = load_dataset(DatasetConfig(kind="synthetic", split="eval", n_clips=96, seed=1), sample_rate=model.sample_rate)
    clips, _ = fit_clips(ds.clips, n_samples=model.clip_samples)
    scores = predict_scores(make_estimator(model, wrapper="blackbox"), clips, batch_size=BATCH)
    return {"spec": model_spec(model), "wrapper": "blackbox", "clips": clips, "batch_size": BATCH}, scores


@pytest.mark.slow
def test_worker_scores_with_one_thread_equal_the_drivers_bit_for_bit(driver):
    shared, scores = driver  # predicted with this process's threads: TensorFlow's default (all cores) unless set
    results = {}
    tasks = [(0, 64), (64, 96)]  # chunks on batch boundaries: a row's last bits depend on its batch's shape
    map_tasks(Job(setup=jobs.setup_predictor, run=jobs.predict_rows, shared=shared), tasks,
              settings=ExecutorSettings(kind="processes", workers=2), on_result=results.__setitem__)
    threads = max(1, default_workers() // 2)
    for (lo, hi), (worker_scores, given, intra_op) in results.items():
        assert given == threads and intra_op == threads  # the pool's share of the cores (1 on 2 cores)
        assert worker_scores.dtype == scores.dtype and np.array_equal(worker_scores, scores[lo:hi])
