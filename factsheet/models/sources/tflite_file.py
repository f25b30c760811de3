"""TFLite (LiteRT) flatbuffers through ``ai-edge-litert``, falling back to ``tf.lite.Interpreter``.

The input is one waveform tensor (``(batch, n)``, ``(n)``, ``(batch, 1, n)`` or
``(batch, n, 1)``); float, int16 PCM, or an affine-quantised integer tensor (its scale and
zero point are applied both ways). A dynamic batch dimension is resized per call (up to
``[model] batch_size`` clips); a fixed one (often 1) is honoured by splitting batches. On-device
models often return logits (``[model] output = "logits-sigmoid"``). No gradients: black box only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from factsheet.errors import InputError
from factsheet.models.sources.base import (AdaptedForward, LoadedModel, OutputContract, choose_output, file_sha256,
                                           first_line, input_contract_from_shape, package_version,
                                           read_model_labels, resolve_clip_samples, runtime_record)


def open_interpreter(path: Path, *, threads: int | None):
    """``(interpreter, runtime name, version)``: LiteRT where installed, else TensorFlow's ``tf.lite``."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        runtime, version = "ai-edge-litert", package_version("ai-edge-litert")
    except ImportError:
        try:
            from factsheet.models.tf_runtime import import_tensorflow_quietly

            import_tensorflow_quietly()
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter  # noqa: N806 - the class, under its usual name
            runtime, version = "tf.lite", tf.__version__
        except ImportError:
            raise InputError(source=str(path), field="model.source", value="tflite",
                             reason="neither ai-edge-litert nor tensorflow is installed: "
                                    "pip install 'audio-factsheet[tflite]'") from None
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite's deprecation notice
            interpreter = Interpreter(model_path=str(path), num_threads=int(threads) if threads else None)
        interpreter.allocate_tensors()
    except Exception as exc:  # noqa: BLE001 - a corrupt or unsupported file is bad input
        raise InputError(source=str(path), reason=f"cannot load TFLite model ({first_line(exc)})") from None
    return interpreter, runtime, version


def load(cfg, *, threads: int | None = None) -> LoadedModel:
    """``source = "tflite"``: ``[model] path`` is a ``.tflite`` file."""
    path = Path(cfg.path)
    src = str(path)
    labels = read_model_labels(cfg)
    interp, runtime_name, version = open_interpreter(path, threads=threads)
    inputs = interp.get_input_details()
    if len(inputs) != 1:
        shown = ", ".join(f"{d['name']} {list(d['shape'])}" for d in inputs)
        raise InputError(source=src, field="model inputs", value=shown,
                         reason="expected one waveform input; a model with extra inputs goes through "
                                "source = 'python'")
    inp = inputs[0]
    dtype = np.dtype(inp["dtype"]).name
    scale, zero = inp.get("quantization", (0.0, 0))
    kind = np.dtype(dtype).kind
    if not (kind == "f" or dtype == "int16" or (kind in "iu" and scale)):
        raise InputError(source=src, field=f"input {inp['name']!r} type", value=dtype,
                         reason="expected a float, int16 or quantised integer waveform")
    signature = list(inp.get("shape_signature", inp["shape"]))
    contract = input_contract_from_shape(signature, dtype=dtype, name=inp["name"], source=src,
                                         scale=float(scale) if kind in "iu" else 0.0,
                                         zero_point=int(zero))
    outs = interp.get_output_details()
    index = choose_output([(d["name"], tuple(int(v) for v in d.get("shape_signature", d["shape"]))) for d in outs],
                          n_classes=len(labels), wanted=cfg.output_name, source=src)
    out = outs[index]
    clip_samples = resolve_clip_samples(cfg, fixed_samples=contract.fixed_samples, source=src)
    state = {"shape": tuple(int(v) for v in inp["shape"])}

    def run(x: np.ndarray) -> np.ndarray:
        if x.shape != state["shape"]:
            interp.resize_tensor_input(inp["index"], list(x.shape), strict=False)
            interp.allocate_tensors()
            state["shape"] = x.shape
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        return interp.get_tensor(out["index"]).copy()

    out_scale, out_zero = out.get("quantization", (0.0, 0))
    out_dtype = np.dtype(out["dtype"]).name
    forward = AdaptedForward(run, contract=contract,
                             out=OutputContract(name=out["name"], shape=tuple(int(v) for v in out.get(
                                 "shape_signature", out["shape"])), dtype=out_dtype,
                                 scale=float(out_scale) if np.dtype(out_dtype).kind in "iu" else 0.0,
                                 zero_point=int(out_zero)),
                             output=cfg.output, pooling=cfg.pooling, max_batch=cfg.batch_size)
    sha = file_sha256(path)
    notes = ["Black box: the TFLite interpreter gives no gradients, so the attack uses the model's decisions only."]
    if contract.scale:
        notes.append(f"Quantised input: waveforms are mapped to {dtype} with scale {contract.scale:g} and zero point "
                     f"{contract.zero_point}; perturbations below one step vanish.")
    runtime = runtime_record(format="TFLite flatbuffer", runtime=runtime_name, runtime_version=version,
                             gradients=False, adapted=forward, n_parameters=None, files={path.name: sha}, notes=notes)
    return LoadedModel(forward=forward, class_labels=labels, sample_rate=cfg.sample_rate, clip_samples=clip_samples,
                       source="tflite", path=path, sha256=sha, runtime=runtime)


def describe(path: Path) -> dict:
    """Declared inputs and outputs ``{"inputs": [(name, shape, dtype)], "outputs": [...]}`` (for ``factsheet init``)."""
    interp, _, _ = open_interpreter(Path(path), threads=1)

    def rows(details):
        return [(d["name"], [int(v) for v in d.get("shape_signature", d["shape"])], np.dtype(d["dtype"]).name)
                for d in details]

    return {"inputs": rows(interp.get_input_details()), "outputs": rows(interp.get_output_details())}
