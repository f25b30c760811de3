"""Module-level jobs for tests/test_executors.py (workers import them by name)."""

import os
import signal
import time
from pathlib import Path

import numpy as np


def setup_scale(shared: dict, context) -> dict:
    """State: the shared offsets (shipped once) and the worker's pid."""
    if shared.get("fail_setup"):
        raise ValueError("setup refused the shared data")
    return {"offsets": shared["offsets"], "marks": shared.get("marks"), "always_kill": shared.get("always_kill")}


def seeded_sum(state: dict, task: tuple[int, int]) -> float:
    """A pure per-task result: a seeded draw plus the task's offset (depends on the task alone)."""
    index, seed = task
    marks = state["marks"]
    if state["always_kill"] == index:
        os.kill(os.getpid(), signal.SIGKILL)
    if marks is not None and index == 3:  # the first attempt of task 3 kills its worker
        flag = Path(marks) / f"killed-{index}"
        try:
            fd = os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.close(fd)
            os.kill(os.getpid(), signal.SIGKILL)
        except FileExistsError:
            pass
    return float(np.random.default_rng(seed).standard_normal(1000).sum() + state["offsets"][index])


def gated_sleep(state: dict, task: tuple[int, int]) -> int:
    """Hold one slot of the process's request gate for 0.2 s (a stand-in for an HTTP request)."""
    from factsheet.models import http_model

    with http_model._REQUEST_GATE():
        time.sleep(0.2)
    return task[0]


def setup_predictor(shared: dict, context):
    """Load the model from its spec with the executor's threads (factsheet.models.worker), as a stage's worker does."""
    from factsheet.models.worker import load_worker_model

    return {"loaded": load_worker_model(shared["spec"], context=context, wrapper=shared["wrapper"]),
            "clips": shared["clips"], "batch_size": shared["batch_size"], "threads": context.threads}


def predict_rows(state: dict, task: tuple[int, int]):
    """The model's scores of rows ``task[0]:task[1]`` of the shared clips, and the worker's TensorFlow intra-op threads."""
    import tensorflow as tf

    from factsheet.models.adapter import predict_scores

    lo, hi = task
    scores = predict_scores(state["loaded"].estimator, state["clips"][lo:hi], batch_size=state["batch_size"])
    return scores, state["threads"], tf.config.threading.get_intra_op_parallelism_threads()
