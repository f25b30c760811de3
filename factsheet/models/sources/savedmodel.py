"""TensorFlow SavedModel folders, called through one signature (``[model] signature``, default ``serving_default``).

The signature takes ONE waveform tensor: ``(batch, n)`` or, YAMNet-style, a single 1-D
clip ``(n)`` (the harness then calls it clip by clip). Per-frame outputs
(``(frames, classes)`` or ``(batch, frames, classes)``) are pooled to one row per clip
(``[model] pooling``). With several outputs the scores are ``[model] output_name`` or the only
output whose last dimension is the number of classes. Black box here (the signature is
called for its values only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from factsheet.errors import InputError
from factsheet.models.sources.base import (AdaptedForward, LoadedModel, OutputContract, choose_output, combined_sha256,
                                           first_line, folder_digests, input_contract_from_shape, package_version,
                                           read_model_labels, resolve_clip_samples, runtime_record)


def load(cfg, *, threads: int | None = None) -> LoadedModel:
    """``source = "savedmodel"``: ``[model] path`` is the SavedModel folder (with ``saved_model.pb``)."""
    from factsheet.models.tf_runtime import import_tensorflow_quietly, set_tensorflow_threads

    import_tensorflow_quietly()
    import tensorflow as tf

    path = Path(cfg.path)
    src = str(path)
    labels = read_model_labels(cfg)
    if not (path / "saved_model.pb").is_file() and not (path / "saved_model.pbtxt").is_file():
        raise InputError(source=src, field="saved_model.pb", reason="not a SavedModel folder (no saved_model.pb)")
    if threads:
        set_tensorflow_threads(threads)
    try:
        obj = tf.saved_model.load(str(path))
    except Exception as exc:  # noqa: BLE001 - a corrupt or unsupported folder is bad input
        raise InputError(source=src, reason=f"cannot load SavedModel ({first_line(exc)})") from None
    in_name, in_spec, call, out_specs = entry_point(obj, signature=cfg.signature, source=src)
    dtype = np.dtype(in_spec.dtype.as_numpy_dtype).name
    if np.dtype(dtype).kind != "f" and dtype != "int16":
        raise InputError(source=src, field=f"input {in_name!r} dtype", value=dtype,
                         reason="expected a float or int16 waveform")
    contract = input_contract_from_shape(in_spec.shape.as_list(), dtype=dtype, name=in_name, source=src)
    outputs = [(k, tuple(-1 if d is None else d for d in v.shape.as_list())) for k, v in out_specs.items()]
    index = choose_output(outputs, n_classes=len(labels), wanted=cfg.output_name, source=src)
    out_name = outputs[index][0]
    clip_samples = resolve_clip_samples(cfg, fixed_samples=contract.fixed_samples, source=src)

    def run(x: np.ndarray) -> np.ndarray:
        return np.asarray(call(tf.constant(x))[out_name])

    forward = AdaptedForward(run, contract=contract,
                             out=OutputContract(name=out_name, shape=outputs[index][1],
                                                dtype=np.dtype(out_specs[out_name].dtype.as_numpy_dtype).name),
                             output=cfg.output, pooling=cfg.pooling, max_batch=cfg.batch_size)
    files = folder_digests(path)  # each file read once; the model's hash is combined from these
    sha = combined_sha256(files)
    runtime = runtime_record(format="TensorFlow SavedModel", runtime="tensorflow",
                             runtime_version=package_version("tensorflow-cpu", "tensorflow"), gradients=False,
                             adapted=forward, n_parameters=_count_variables(path), files=files,
                             notes=["Called through its signature for values only: black box, the attack uses the "
                                    "model's decisions."],
                             extra={"signature": cfg.signature if cfg.signature in dict(
                                 getattr(obj, "signatures", {}) or {}) else "__call__"})
    return LoadedModel(forward=forward, class_labels=labels, sample_rate=cfg.sample_rate, clip_samples=clip_samples,
                       source="savedmodel", path=path, sha256=sha, runtime=runtime)


def entry_point(obj, *, signature: str, source: str):
    """``(input name, input TensorSpec, call, {output name: TensorSpec})`` of the function to run.

    The named signature; or, for a SavedModel saved without signatures (a ``tf.Module`` whose
    ``__call__`` is a ``tf.function`` with one traced input, as many TF-Hub models are), that
    ``__call__`` when the default signature is asked for. ``call(tensor)`` returns a dict of
    output tensors (a tuple output becomes ``output_0``, ``output_1``, ...).
    """
    signatures = dict(getattr(obj, "signatures", {}) or {})
    if signature in signatures:
        fn = signatures[signature]
        args, kwargs = fn.structured_input_signature
        specs = dict(kwargs)
        if args or len(specs) != 1:
            shown = ", ".join(f"{k} {v.shape}" for k, v in specs.items())
            raise InputError(source=source, field=f"signature {signature!r} inputs", value=shown,
                             reason="expected one waveform input; models with further inputs go through "
                                    "source = 'python'")
        (name, spec), = specs.items()
        return name, spec, lambda t: _as_dict(fn(**{name: t})), _as_dict(fn.structured_outputs)
    concrete = [cf for cf in getattr(getattr(obj, "__call__", None), "concrete_functions", ()) or ()
                if len(cf.structured_input_signature[0]) == 1 and not cf.structured_input_signature[1]]
    if signatures or signature != "serving_default" or not concrete:
        raise InputError(source=source, field="model.signature", value=signature,
                         reason=f"no such signature (signatures: {', '.join(sorted(signatures)) or 'none'}"
                                f"{'' if signatures else '; no traced __call__ with one input either'})")
    cf = concrete[0]
    spec = cf.structured_input_signature[0][0]
    return (spec.name or "input", spec, lambda t: _as_dict(obj(t)), _as_dict(cf.structured_outputs))


def _as_dict(outputs) -> dict:
    if isinstance(outputs, dict):
        return outputs
    if isinstance(outputs, (list, tuple)):
        return {f"output_{i}": o for i, o in enumerate(outputs)}
    return {"output_0": outputs}


def _count_variables(folder: Path) -> int | None:
    """Elements of the variables stored in the SavedModel's checkpoint, or None when it has none."""
    import tensorflow as tf

    prefix = folder / "variables" / "variables"
    if not (folder / "variables" / "variables.index").is_file():
        return None
    try:
        listed = tf.train.list_variables(str(prefix))
    except Exception:  # noqa: BLE001 - counting is best effort
        return None
    return int(sum(int(np.prod(shape)) for name, shape in listed if not name.startswith("_CHECKPOINTABLE")))


def describe(path: Path, *, signature: str = "serving_default") -> dict:
    """Declared inputs and outputs of one signature (for ``factsheet init``)."""
    from factsheet.models.tf_runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    import tensorflow as tf

    try:
        obj = tf.saved_model.load(str(path))
    except Exception as exc:  # noqa: BLE001
        raise InputError(source=str(path), reason=f"cannot load SavedModel ({first_line(exc)})") from None
    name, spec, _, outs = entry_point(obj, signature=signature, source=str(path))
    return {"inputs": [(name, spec.shape.as_list(), np.dtype(spec.dtype.as_numpy_dtype).name)],
            "outputs": [(k, v.shape.as_list(), np.dtype(v.dtype.as_numpy_dtype).name) for k, v in outs.items()]}
