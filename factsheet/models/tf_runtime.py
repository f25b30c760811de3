"""TensorFlow start-up for every process that runs a model: quiet import and thread limits.

Lives with the models (not in the CLI) so that worker processes, sources and the CLI share it
without an import cycle (``attacks`` depends on ``factsheet.models``, never on the CLI).
"""

from __future__ import annotations

import os
import sys


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up chatter (oneDNN, CPU-feature notes) kept off stderr."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import warnings

    if "tensorflow" in sys.modules:
        # ART's import warns when PyTorch is absent; set here, after TensorFlow's import, which
        # resets the warning filters
        warnings.filterwarnings("ignore", message="PyTorch not found")
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                import tensorflow  # noqa: F401
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)
    warnings.filterwarnings("ignore", message="PyTorch not found")


def set_tensorflow_threads(threads: int) -> None:
    """Intra- and inter-op threads of this process's TensorFlow; kept as they are once TF has started."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(int(threads))
    except RuntimeError:  # already initialised in this process: keep its setting
        pass
