"""Model adapter: a loaded model (any source) -> an ART classifier, and its contract check.

Model contract inside the harness: ``forward(waveforms (batch, n_samples) float32 in [-1, 1]
at sample_rate) -> (batch, n_classes) float32 scores`` in class-label order. The sources in
:mod:`factsheet.models.sources` load each format and adapt it to that contract; this module
checks the contract and wraps the forward as an ART estimator. One estimator serves clips of
one length (``clip_samples``).
"""

from __future__ import annotations

import warnings

import numpy as np

from factsheet.errors import InputError
from factsheet.models.sources.base import first_line
from factsheet.models.sources import load_from_spec, load_model, model_spec  # noqa: F401  (public API)
from factsheet.models.sources.base import LoadedModel, file_sha256  # noqa: F401  (public API)
from factsheet.models.sources.keras_file import (DEFAULT_CARD, DEFAULT_DIR, DEFAULT_LABELS,  # noqa: F401
                                                 DEFAULT_MODEL, load_keras_model)

__all__ = ["DEFAULT_CARD", "DEFAULT_DIR", "DEFAULT_LABELS", "DEFAULT_MODEL", "LoadedModel", "check_contract",
           "file_sha256", "load_default_model", "load_from_spec", "load_keras_model", "load_model", "make_estimator",
           "make_forward", "model_spec", "predict_scores"]


def load_default_model(*, clip_samples: int | None = None) -> LoadedModel:
    """The committed demo classifier with its training record, at its own input length or ``clip_samples``."""
    from factsheet.config import ModelConfig

    seconds = None if clip_samples is None else clip_samples / 16000
    return load_model(ModelConfig(source="default", clip_seconds=seconds))


def check_contract(model: LoadedModel) -> None:
    """Run one silent clip through the model; its output must be (1, n_classes) and finite.

    Also records in ``model.runtime["adaptation"]`` what the adapter found on that call
    (whether per-frame outputs were pooled).
    """
    src = str(model.path or model.spec.get("config", {}).get("url") or model.source)
    try:
        out = np.asarray(model.forward(np.zeros((1, model.clip_samples), np.float32)))
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - the model is user input
        raise InputError(source=src, field="input", value=f"(1, {model.clip_samples}) float32",
                         reason=f"model does not accept a raw waveform batch ({first_line(exc)})") from None
    n = len(model.class_labels)
    if out.shape != (1, n):
        raise InputError(source=src, field="output shape", value=tuple(out.shape),
                         reason=f"expected (1, {n}): one score per class in the class-labels file")
    if not np.all(np.isfinite(out)):
        raise InputError(source=src, field="output", value="non-finite",
                         reason="model returned NaN or inf on silence (for TFLite: are its weights resource "
                                "variables that were never initialised? convert with frozen constants)")
    if hasattr(model.forward, "describe"):
        model.runtime["adaptation"] = model.forward.describe()


def make_forward(keras_model, *, n_samples: int):
    """A fixed-signature float32 forward: ndarray (batch, n_samples) -> ndarray (batch, n_classes)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((None, n_samples), tf.float32)], reduce_retracing=True)
    def _forward(x):
        return keras_model(x, training=False)

    def forward(x: np.ndarray) -> np.ndarray:
        return _forward(np.asarray(x, dtype=np.float32)).numpy()

    return forward


def make_estimator(model: LoadedModel, *, wrapper: str = "blackbox"):
    """Wrap a loaded model as an ART classifier over clips of ``model.clip_samples`` samples.

    ``"blackbox"``: :class:`art.estimators.classification.BlackBoxClassifier` around the
    model's forward (prediction only; honours ``batch_size``); any source.
    ``"tensorflow"``: :class:`art.estimators.classification.TensorFlowV2Classifier`
    (gradients available; Keras sources only). Both use ``clip_values=(-1, 1)`` and ``preprocessing=None``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from art.estimators.classification import BlackBoxClassifier, TensorFlowV2Classifier

    shape = (model.clip_samples,)
    n_classes = len(model.class_labels)
    if wrapper == "blackbox":
        return BlackBoxClassifier(model.forward, input_shape=shape, nb_classes=n_classes, clip_values=(-1.0, 1.0),
                                  preprocessing=None)
    if wrapper == "tensorflow":
        if model.keras_model is None or not model.gradients:
            raise InputError(source=str(model.path or model.source), field="model.wrapper", value=wrapper,
                             reason=f"source {model.source!r} gives no gradients (black box only)")
        import keras

        return TensorFlowV2Classifier(model.keras_model, nb_classes=n_classes, input_shape=shape,
                                      loss_object=keras.losses.BinaryCrossentropy(), clip_values=(-1.0, 1.0),
                                      preprocessing=None)
    raise ValueError(f"unknown wrapper {wrapper!r}")


def predict_scores(estimator, waveforms: np.ndarray, *, batch_size: int, progress: bool = False) -> np.ndarray:
    """Scores for every clip: (n_clips, n_samples) float32 -> (n_clips, n_classes) float32.

    Batches explicitly (TensorFlowV2Classifier ignores ``batch_size`` since ART 1.20).
    """
    from tqdm import tqdm

    out = []
    starts = range(0, waveforms.shape[0], batch_size)
    for s in tqdm(starts, desc="predict", unit="batch", disable=not progress, leave=False):
        out.append(np.asarray(estimator.predict(waveforms[s:s + batch_size], batch_size=batch_size), np.float32))
    return np.concatenate(out, axis=0) if out else np.zeros((0, estimator.nb_classes), np.float32)
