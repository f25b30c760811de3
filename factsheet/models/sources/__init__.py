"""The registry of model sources: one module per format, one loader for all of them.

Each entry declares what the config must give (a file, a folder, an entry point, a URL),
whether the model has gradients (only then may ``[model] wrapper = "tensorflow"``), and the
module whose ``load(cfg, *, threads)`` returns a :class:`~factsheet.models.sources.base.LoadedModel`.
The pipeline calls :func:`load_model` and never branches on the source; worker processes
reload the same model with :func:`load_from_spec`.

Modules are imported only when their source is used, so ONNX Runtime, LiteRT or
TensorFlow are needed only by the runs that use them.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from pathlib import Path

from factsheet.errors import InputError
from factsheet.models.sources.base import LoadedModel


@dataclass(frozen=True)
class Source:
    """One kind of model the harness can load.

    Attributes
    ----------
    name : str
        ``[model] source`` value.
    module : str
        Module with ``load(cfg, *, threads=None) -> LoadedModel``.
    requires : tuple of str
        ``[model]`` keys that must be set.
    path_is : {"file", "folder", None}
        What ``[model] path`` must be, when the source takes one.
    gradients : bool
        Whether the loaded model can be an ART ``TensorFlowV2Classifier`` (white box).
    format : str
        What the source reads, in words (README, ``factsheet init``).
    suffixes : tuple of str
        File suffixes by which ``factsheet init`` recognises the format.
    """

    name: str
    module: str
    requires: tuple[str, ...]
    path_is: str | None
    gradients: bool
    format: str
    suffixes: tuple[str, ...] = ()


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("default", "factsheet.models.sources.keras_file", (), None, True,
           "the demo classifier shipped in the package"),
    Source("keras", "factsheet.models.sources.keras_file", ("path", "class_labels"), "file", True,
           "Keras 3 .keras file (safe_mode) or legacy .h5", (".keras", ".h5", ".hdf5")),
    Source("savedmodel", "factsheet.models.sources.savedmodel", ("path", "class_labels"), "folder", False,
           "TensorFlow SavedModel folder (tf.saved_model.load, one signature)"),
    Source("onnx", "factsheet.models.sources.onnx_file", ("path", "class_labels"), "file", False,
           "ONNX file run by onnxruntime (CPU)", (".onnx",)),
    Source("tflite", "factsheet.models.sources.tflite_file", ("path", "class_labels"), "file", False,
           "TFLite / LiteRT flatbuffer run by ai-edge-litert (or tf.lite)", (".tflite",)),
    Source("python", "factsheet.models.sources.python_entry", ("entry", "class_labels", "clip_seconds"), None,
           False, "a Python function returning a forward function"),
    Source("max", "factsheet.models.sources.max_assets", (), None, False,
           "the IBM MAX Audio Classifier from its three asset files (or the .keras made by factsheet import-max)"),
    Source("http", "factsheet.models.sources.http", ("url", "class_labels", "clip_seconds"), None, False,
           "a model served over HTTP with the MAX REST contract (POST /model/predict, top-5 answers)"),
)}


def check_config(m, *, bad) -> None:
    """Source-specific checks of a :class:`~factsheet.config.ModelConfig` (no model is loaded).

    ``bad(field, value, reason)`` raises the config's one-line error.
    """
    src = SOURCES[m.source]
    for key in src.requires:
        if getattr(m, key) is None:
            bad(f"model.{key}", None, f"required when model.source = {m.source!r}")
    if m.wrapper == "tensorflow" and not src.gradients:
        bad("model.wrapper", m.wrapper, f"source {m.source!r} gives no gradients (black box only): "
                                        "use wrapper = 'blackbox'")
    if m.path is not None and src.path_is == "file" and not m.path.is_file():
        bad("model.path", str(m.path), "file not found")
    if m.path is not None and src.path_is == "folder" and not m.path.is_dir():
        bad("model.path", str(m.path), "folder not found (a SavedModel is a folder with saved_model.pb)")
    if m.class_labels is not None and not m.class_labels.is_file():
        bad("model.class_labels", str(m.class_labels), "file not found")
    if m.source == "max":
        if (m.assets is None) == (m.path is None):
            bad("model.assets", None if m.assets is None else str(m.assets),
                "give exactly one of model.assets (the MAX asset folder) or model.path (a .keras file made by "
                "factsheet import-max)")
        if m.assets is not None and not m.assets.is_dir():
            bad("model.assets", str(m.assets), "folder not found")
        if m.path is not None and not m.path.is_file():
            bad("model.path", str(m.path), "file not found")
    elif m.assets is not None:
        bad("model.assets", str(m.assets), "only used with model.source = 'max'")
    if m.source != "python" and m.entry is not None:
        bad("model.entry", m.entry, "only used with model.source = 'python'")
    if m.source != "http" and m.url is not None:
        bad("model.url", m.url, "only used with model.source = 'http'")
    if m.source == "http" and not str(m.url).startswith(("http://", "https://")):
        bad("model.url", m.url, "must start with http:// or https://")
    if m.source == "python" and ":" not in str(m.entry):
        bad("model.entry", m.entry, "must be 'package.module:function' or 'file.py:function'")


def load_model(model_cfg, *, threads: int | None = None) -> LoadedModel:
    """Load the model a :class:`~factsheet.config.ModelConfig` names and check its contract.

    Parameters
    ----------
    model_cfg : ModelConfig
    threads : int, optional
        Threads the runtime may use (ONNX Runtime / LiteRT / TensorFlow intra-op); None: its default.

    Raises
    ------
    InputError
        Any problem with the model or its files, in one line naming file, field and value.
    """
    from factsheet.models.adapter import check_contract

    src = SOURCES[model_cfg.source]
    module = importlib.import_module(src.module)
    model = module.load(model_cfg, threads=threads)
    model.spec = {"config": config_to_spec(model_cfg), "sha256": model.sha256, "clip_samples": model.clip_samples}
    check_contract(model)
    return model


def config_to_spec(model_cfg) -> dict:
    """JSON-able ModelConfig (paths as strings)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(model_cfg).items()}


def model_spec(model: LoadedModel) -> dict:
    """A small picklable description from which a worker process reloads the same model."""
    return dict(model.spec)


def load_from_spec(spec: dict, *, threads: int | None = None) -> LoadedModel:
    """Reload a model described by :func:`model_spec`; refuses a model whose bytes changed."""
    from factsheet.config import ModelConfig

    hints = {f.name: f.type for f in dataclasses.fields(ModelConfig)}
    kwargs = {}
    for k, v in spec["config"].items():
        kwargs[k] = Path(v) if (v is not None and "Path" in str(hints[k])) else v
    cfg = ModelConfig(**kwargs)
    src = SOURCES[cfg.source]
    model = importlib.import_module(src.module).load(cfg, threads=threads)
    if model.sha256 != spec["sha256"]:
        raise InputError(source=str(model.path or cfg.url or cfg.entry),
                         reason="model changed while the run was in progress")
    model.clip_samples = spec["clip_samples"]
    model.spec = dict(spec)
    return model
