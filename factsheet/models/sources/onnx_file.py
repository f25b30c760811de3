"""ONNX models through ONNX Runtime (CPU): exports of PyTorch (AST, PANNs, BEATs ...) or TensorFlow models.

The model must take ONE waveform input: ``(batch, n)``, ``(n)``, ``(batch, 1, n)`` or
``(batch, n, 1)``, float (any width) or int16, with a dynamic or fixed batch (exports often
fix it to 1: batches are then split). Models with further inputs (a sample rate, a
recurrent state) are refused with a pointer to ``source = "python"``. The scores are the
only output, the one named by ``[model] output_name``, or the only output whose last
dimension is the number of classes; per-frame outputs ``(batch, frames, classes)`` are
pooled (``[model] pooling``). No gradients: black box only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from factsheet.errors import InputError
from factsheet.models.sources.base import (AdaptedForward, LoadedModel, OutputContract, choose_output, combined_sha256,
                                           file_sha256,
                                           first_line, input_contract_from_shape, package_version,
                                           read_model_labels, resolve_clip_samples, runtime_record)

# ONNX tensor(...) type strings -> numpy dtypes
ONNX_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
              "tensor(int16)": "int16", "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(int32)": "int32",
              "tensor(int64)": "int64"}


def open_session(path: Path, *, threads: int | None):
    """An ``onnxruntime.InferenceSession`` on the CPU, or one :class:`InputError` line."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise InputError(source=str(path), field="model.source", value="onnx",
                         reason="onnxruntime is not installed: pip install 'audio-factsheet[onnx]'") from None
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - a corrupt or unsupported file is bad input
        raise InputError(source=str(path), reason=f"cannot load ONNX model ({first_line(exc)})") from None


def is_attention_mask(inp) -> bool:
    """An extra input that is an attention mask over the samples (Hugging Face exports: ``attention_mask``)."""
    return "mask" in inp.name.lower() and ONNX_TYPES.get(inp.type) in ("int64", "int32", "float32") \
        and len(inp.shape) == 2


def inspect_weights(path: Path) -> tuple[int | None, list[Path]]:
    """Elements of the stored initialisers (weights) and the external-data files they live in.

    Needs the ``onnx`` package; without it the count is None and external files are not hashed.
    """
    try:
        import onnx
    except ImportError:
        return None, []
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - the session loaded it; inspecting is best effort
        return None, []
    external = set()
    for t in model.graph.initializer:
        for entry in t.external_data:
            if entry.key == "location":
                external.add(entry.value)
    n = int(sum(int(np.prod(t.dims)) for t in model.graph.initializer))
    return n, [path.parent / e for e in sorted(external)]


def load(cfg, *, threads: int | None = None) -> LoadedModel:
    """``source = "onnx"``: ``[model] path`` is a ``.onnx`` file."""
    path = Path(cfg.path)
    src = str(path)
    labels = read_model_labels(cfg)
    session = open_session(path, threads=threads)
    inputs = session.get_inputs()
    masks = [i for i in inputs[1:] if is_attention_mask(i)]
    if len(inputs) - len(masks) != 1:
        shown = ", ".join(f"{i.name} {i.shape}" for i in inputs)
        raise InputError(source=src, field="model inputs", value=shown,
                         reason="expected one waveform input (plus optional attention masks); a model with other "
                                "inputs (sample rate, state) goes through source = 'python' with a forward function "
                                "that supplies them")
    inp = inputs[0]
    dtype = ONNX_TYPES.get(inp.type)
    if dtype is None or dtype in ("int32", "int64", "int8", "uint8"):
        raise InputError(source=src, field=f"input {inp.name!r} type", value=inp.type,
                         reason="expected a float or int16 waveform")
    contract = input_contract_from_shape(inp.shape, dtype=dtype, name=inp.name, source=src)
    outs = session.get_outputs()
    index = choose_output([(o.name, tuple(o.shape or ())) for o in outs], n_classes=len(labels),
                          wanted=cfg.output_name, source=src)
    out = outs[index]
    clip_samples = resolve_clip_samples(cfg, fixed_samples=contract.fixed_samples, source=src)

    def run(x: np.ndarray) -> np.ndarray:
        feed = {inp.name: x}
        for m in masks:  # every sample is real audio: the mask is all ones, shaped like the waveform batch
            feed[m.name] = np.ones((x.shape[0], clip_samples), dtype=ONNX_TYPES[m.type])
        return session.run([out.name], feed)[0]

    forward = AdaptedForward(run, contract=contract,
                             out=OutputContract(name=out.name, shape=tuple(out.shape or ()), dtype=ONNX_TYPES.get(
                                 out.type, out.type)),
                             output=cfg.output, pooling=cfg.pooling, max_batch=cfg.batch_size)
    n_params, external = inspect_weights(path)
    files = {path.name: file_sha256(path)}
    files.update({f.name: file_sha256(f) for f in external if f.is_file()})
    sha = files[path.name] if len(files) == 1 else combined_sha256(files)
    runtime = runtime_record(format="ONNX", runtime="onnxruntime", runtime_version=package_version("onnxruntime"),
                             gradients=False, adapted=forward, n_parameters=n_params, files=files,
                             notes=["Black box: ONNX Runtime gives no gradients here, so the attack uses the "
                                    "model's decisions only."]
                             + [f"Input {m.name!r} is fed all ones (every sample of every clip is audio)."
                                for m in masks])
    return LoadedModel(forward=forward, class_labels=labels, sample_rate=cfg.sample_rate, clip_samples=clip_samples,
                       source="onnx", path=path, sha256=sha, runtime=runtime)


def describe(path: Path) -> dict:
    """Declared inputs and outputs ``{"inputs": [(name, shape, dtype)], "outputs": [...]}`` (for ``factsheet init``)."""
    session = open_session(Path(path), threads=1)
    return {"inputs": [(i.name, list(i.shape), ONNX_TYPES.get(i.type, i.type)) for i in session.get_inputs()],
            "outputs": [(o.name, list(o.shape), ONNX_TYPES.get(o.type, o.type)) for o in session.get_outputs()]}
