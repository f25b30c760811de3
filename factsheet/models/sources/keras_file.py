"""Keras sources: the committed demo classifier (``default``) and a user ``.keras`` / ``.h5`` file.

The only sources with gradients: the model can also be an ART ``TensorFlowV2Classifier``.
``.keras`` files load with ``safe_mode=True`` (no Lambda, no pickle); custom layers must be
registered with ``keras.saving.register_keras_serializable`` before loading.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from factsheet.datasets.base import read_class_labels
from factsheet.errors import InputError
from factsheet.models.tf_runtime import set_tensorflow_threads
from factsheet.models.sources.base import (AdaptedForward, LoadedModel, OutputContract, choose_output, file_sha256,
                                           first_line, input_contract_from_shape, package_version,
                                           read_model_labels, resolve_clip_samples, runtime_record)

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "default"
DEFAULT_MODEL = DEFAULT_DIR / "demo_classifier.keras"
DEFAULT_CARD = DEFAULT_DIR / "demo_classifier.json"
DEFAULT_LABELS = DEFAULT_DIR / "class_labels_indices.csv"


def load_keras_model(path: str | Path):
    """Load a ``.keras`` file with ``safe_mode=True`` or a legacy ``.h5`` file.

    Registers the project's custom layers first (the demo model's and the MAX rebuild's) so
    their files load without arbitrary-code deserialisation. Raises :class:`InputError` on
    any failure.
    """
    import keras

    import factsheet.models.layers  # noqa: F401  (registers serialisable layers)

    _register_optional_layers()
    path = Path(path)
    if not path.is_file():
        raise InputError(source=str(path), reason="model file not found")
    suffix = path.suffix.lower()
    if suffix not in (".keras", ".h5", ".hdf5"):
        raise InputError(source=str(path), field="suffix", value=path.suffix,
                         reason="model file must be .keras (Keras 3) or .h5 (legacy)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if suffix == ".keras":
                return keras.models.load_model(path, compile=False, safe_mode=True)
            return keras.models.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - any loader failure is bad input, reported in one line
        raise InputError(source=str(path), reason=f"cannot load Keras model ({first_line(exc)})") from None


def _register_optional_layers() -> None:
    """The MAX rebuild's layers, so a file written by ``factsheet import-max`` also loads as ``keras``."""
    try:
        import factsheet.models.max_audio  # noqa: F401
    except ImportError:
        pass


def keras_runtime(keras_model, *, cfg, n_classes: int, source: str, threads: int | None = None):
    """Forward, input contract and runtime record of a Keras model with one waveform input.

    Returns
    -------
    forward : AdaptedForward
    gradients_ok : bool
        True when the model's own output is already ``(batch, n_classes)`` scores, so ART's
        TensorFlowV2Classifier may wrap it unchanged.
    """
    import tensorflow as tf

    if threads:
        set_tensorflow_threads(threads)
    if len(keras_model.inputs) != 1:
        raise InputError(source=source, field="model inputs", value=len(keras_model.inputs),
                         reason="expected one waveform input; models with several inputs go through "
                                "source = 'python'")
    inp = keras_model.inputs[0]
    contract = input_contract_from_shape(tuple(inp.shape), dtype=np.dtype(inp.dtype).name,
                                         name=_producer_name(inp), source=source)
    # Output names from the layers that produce them: a KerasTensor's own name carries a per-process counter.
    outputs = [(_producer_name(t), tuple(t.shape)) for t in keras_model.outputs]
    index = choose_output(outputs, n_classes=n_classes, wanted=cfg.output_name, source=source)
    clip_samples = resolve_clip_samples(cfg, fixed_samples=contract.fixed_samples, source=source)
    shape = {"samples": (clip_samples,), "batch,samples": (None, clip_samples),
             "batch,1,samples": (None, 1, clip_samples), "batch,samples,1": (None, clip_samples, 1)}[contract.layout]
    multi = len(outputs) > 1

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.as_dtype(contract.dtype))], reduce_retracing=True)
    def _run(x):
        y = keras_model(x, training=False)
        return y[index] if multi else y

    def run(x: np.ndarray) -> np.ndarray:
        return _run(x).numpy()

    out = OutputContract(name=outputs[index][0], shape=outputs[index][1], dtype="float32")
    # No extra split: callers batch already (prediction by [model] batch_size, ART by its own batch), and
    # TensorFlow's last bits depend on the batch shape, so Keras results stay those of earlier versions.
    forward = AdaptedForward(run, contract=contract, out=out, output=cfg.output, pooling=cfg.pooling,
                             max_batch=None)
    gradients_ok = (contract.layout == "batch,samples" and not multi and cfg.output == "probabilities"
                    and len(outputs[index][1]) == 2)
    return forward, clip_samples, gradients_ok


def _producer_name(tensor) -> str:
    history = getattr(tensor, "_keras_history", None)
    return history.operation.name if history is not None else tensor.name


def load(cfg, *, threads: int | None = None) -> LoadedModel:
    """``source = "default"`` or ``"keras"``."""
    if cfg.source == "default":
        card = json.loads(DEFAULT_CARD.read_text(encoding="utf-8"))
        labels = read_class_labels(DEFAULT_LABELS)
        path = DEFAULT_MODEL
        sample_rate = int(card["sample_rate"])
        if cfg.clip_seconds is None:
            cfg = _with(cfg, clip_seconds=int(card["clip_samples"]) / sample_rate)
        cfg = _with(cfg, sample_rate=sample_rate)
    else:
        card, labels, path, sample_rate = {}, read_model_labels(cfg), Path(cfg.path), cfg.sample_rate
    keras_model = load_keras_model(path)
    forward, clip_samples, gradients_ok = keras_runtime(keras_model, cfg=cfg, n_classes=len(labels),
                                                        source=str(path), threads=threads)
    if cfg.wrapper == "tensorflow" and not gradients_ok:
        raise InputError(source=str(path), field="model.wrapper", value="tensorflow",
                         reason="the gradient wrapper needs one output of (batch, n_classes) probabilities from a "
                                "(batch, n_samples) input; use wrapper = 'blackbox' for this model")
    sha = file_sha256(path)
    try:
        n_params = int(keras_model.count_params())
    except Exception:  # noqa: BLE001 - unbuilt user models cannot count
        n_params = None
    runtime = runtime_record(format="Keras 3 (.keras)" if path.suffix == ".keras" else "Keras legacy HDF5 (.h5)",
                             runtime="tensorflow", runtime_version=package_version("tensorflow-cpu", "tensorflow"),
                             gradients=True, adapted=forward, n_parameters=n_params, files={path.name: sha},
                             extra={"keras_version": package_version("keras")})
    return LoadedModel(forward=forward, class_labels=labels, sample_rate=sample_rate, clip_samples=clip_samples,
                       source=cfg.source, path=path, sha256=sha, runtime=runtime, keras_model=keras_model, card=card)


def _with(cfg, **changes):
    import dataclasses

    return dataclasses.replace(cfg, **changes)


def describe(path: Path) -> dict:
    """Declared inputs and outputs (for ``factsheet init``)."""
    model = load_keras_model(path)
    return {"inputs": [(_producer_name(t), list(t.shape), np.dtype(t.dtype).name) for t in model.inputs],
            "outputs": [(_producer_name(t), list(t.shape), np.dtype(t.dtype).name) for t in model.outputs]}
