"""The model-randomisation check's weights (Adebayo et al. 2018): every weight tensor of a Keras model
permuted in place for the duration of a ``with`` block, then restored."""

from __future__ import annotations

import contextlib

import numpy as np


@contextlib.contextmanager
def randomised_weights(keras_model, *, seed: int):
    """Within the block, each weight tensor of ``keras_model`` holds its own values in a random order
    (``np.random.default_rng([seed, k])`` for tensor ``k``): the scale of every layer is kept, what the
    training learnt is not. The trained weights are restored on exit, also after an error."""
    trained = keras_model.get_weights()
    shuffled = [np.random.default_rng([seed, k]).permutation(w.reshape(-1)).reshape(w.shape)
                for k, w in enumerate(trained)]
    keras_model.set_weights(shuffled)
    try:
        yield
    finally:
        keras_model.set_weights(trained)
