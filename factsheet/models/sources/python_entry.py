"""A model given as Python code: ``[model] entry = "package.module:make_forward"`` or ``"file.py:make_forward"``.

For models no file format covers: several inputs, custom preprocessing, a streaming
detector with state, a framework the harness does not load (PyTorch, JAX ...).

Contract
--------
``entry`` names a function (a *factory*) called once per process with the keyword arguments
it declares among ``path`` (``[model] path``, a Path or None), ``sample_rate`` (Hz),
``clip_samples`` (samples), ``n_classes`` and ``threads`` (CPU threads it may use, or None).
It returns ``forward(waveforms)``: ``waveforms`` is a float32 array of shape
``(batch, clip_samples)`` in [-1, 1]; the result is array-like ``(batch, n_classes)``, or
``(batch, frames, n_classes)`` per-frame scores (pooled by ``[model] pooling``), holding what
``[model] output`` says (probabilities or logits). The forward must be deterministic and
must not keep state between calls that changes its answers (reset a streaming model per
clip). It runs in worker processes too, so the module must be importable there (a file path
is loaded by path). The FactSheet hashes the entry's source file and ``[model] path``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

import numpy as np

from factsheet.errors import InputError
from factsheet.models.sources.base import (AdaptedForward, InputContract, LoadedModel, OutputContract,
                                           combined_sha256, file_sha256, first_line, folder_digests,
                                           read_model_labels, resolve_clip_samples, runtime_record)

FACTORY_ARGUMENTS = ("path", "sample_rate", "clip_samples", "n_classes", "threads")


def resolve_entry(entry: str, *, source: str):
    """``(factory, source file or None)`` for ``module:function`` or ``file.py:function``."""
    target, _, name = entry.rpartition(":")
    if not target or not name:
        raise InputError(source=source, field="model.entry", value=entry,
                         reason="must be 'package.module:function' or 'file.py:function'")
    try:
        if target.endswith(".py"):
            file = Path(target)
            if not file.is_file():
                raise InputError(source=source, field="model.entry", value=entry, reason=f"file {target} not found")
            module_name = "_factsheet_entry_" + hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:16]
            module = sys.modules.get(module_name)
            if module is None:
                spec = importlib.util.spec_from_file_location(module_name, file)
                module = importlib.util.module_from_spec(spec)
                sys.modules[module_name] = module
                spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - user code failing to import is bad input
        raise InputError(source=source, field="model.entry", value=entry,
                         reason=f"cannot import {target} ({first_line(exc)})") from None
    factory = getattr(module, name, None)
    if not callable(factory):
        raise InputError(source=source, field="model.entry", value=entry, reason=f"{target} has no function {name!r}")
    try:
        file = inspect.getsourcefile(module)
    except TypeError:
        file = None
    return factory, (Path(file) if file else None)


def load(cfg, *, threads: int | None = None) -> LoadedModel:
    """``source = "python"``."""
    src = cfg.entry
    labels = read_model_labels(cfg)
    factory, code_file = resolve_entry(cfg.entry, source=src)
    clip_samples = resolve_clip_samples(cfg, fixed_samples=None, source=src)
    offered = {"path": Path(cfg.path) if cfg.path is not None else None, "sample_rate": cfg.sample_rate,
               "clip_samples": clip_samples, "n_classes": len(labels), "threads": threads}
    try:
        params = inspect.signature(factory).parameters
        takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        kwargs = {k: v for k, v in offered.items() if takes_all or k in params}
        forward_fn = factory(**kwargs)
    except Exception as exc:  # noqa: BLE001 - user code failing is bad input
        raise InputError(source=src, field="model.entry", value=cfg.entry,
                         reason=f"the factory failed ({first_line(exc)})") from None
    if not callable(forward_fn):
        raise InputError(source=src, field="model.entry", value=type(forward_fn).__name__,
                         reason="the factory must return a forward function (waveforms -> scores)")

    def run(x: np.ndarray) -> np.ndarray:
        return np.asarray(forward_fn(x))

    contract = InputContract(layout="batch,samples", fixed_batch=None, fixed_samples=None, dtype="float32",
                             name="waveforms", shape=(None, clip_samples))
    forward = AdaptedForward(run, contract=contract,
                             out=OutputContract(name="return value", shape=(-1, len(labels)), dtype="float32"),
                             output=cfg.output, pooling=cfg.pooling, max_batch=cfg.batch_size)
    files = {}
    if code_file is not None and code_file.is_file():
        files[code_file.name] = file_sha256(code_file)
    if cfg.path is not None and Path(cfg.path).exists():
        path = Path(cfg.path)
        if path.is_dir():
            files.update({f"{path.name}/{rel}": digest for rel, digest in folder_digests(path).items()})
        else:
            files[path.name] = file_sha256(path)
    sha = combined_sha256(files) if files else None
    runtime = runtime_record(format="Python callable", runtime="python",
                             runtime_version=sys.version.split()[0], gradients=False, adapted=forward,
                             n_parameters=None, files=files, extra={"entry": cfg.entry},
                             notes=["Black box: a Python forward function; the attack uses its decisions only. "
                                    "The hash covers the entry's source file and [model] path, not modules it "
                                    "imports."])
    return LoadedModel(forward=forward, class_labels=labels, sample_rate=cfg.sample_rate, clip_samples=clip_samples,
                       source="python", path=Path(cfg.path) if cfg.path is not None else code_file, sha256=sha,
                       runtime=runtime)
