"""What every model source gives the harness, and the one adapter from a runtime to that contract.

Inside the harness every model is ``forward(waveforms) -> scores``: waveforms of shape
``(batch, clip_samples)`` float32 in [-1, 1] at ``sample_rate``, scores of shape
``(batch, n_classes)`` float32 in class-label order. A source loads its format and describes
the runtime's own signature (:class:`InputContract`, :class:`OutputContract`);
:class:`AdaptedForward` bridges the two the same way for every source: dtype and
quantisation, layout (``(batch, n)``, one 1-D clip per call, ``(batch, 1, n)``,
``(batch, n, 1)``), a fixed batch size, per-frame outputs pooled to the clip, and logits
mapped to scores.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from factsheet.datasets.base import ClassLabel
from factsheet.errors import InputError



@dataclass
class LoadedModel:
    """A loaded classifier in the harness's contract, and what the FactSheet records about it.

    Attributes
    ----------
    forward : callable
        ``forward(waveforms: ndarray (batch, clip_samples) float32) -> ndarray (batch, n_classes) float32``.
    class_labels : list of ClassLabel
        One per score column.
    sample_rate : int
        Hz of the expected input.
    clip_samples : int
        Input length (samples); clips are brought to it.
    source : str
        The registry name of the source (``"default"``, ``"keras"``, ``"onnx"``, ...).
    path : Path or None
        The model file or folder (None for an HTTP endpoint or a Python entry without a file).
    sha256 : str or None
        Hash of the model's bytes (a file's, or :func:`combined_sha256` of every file of a folder);
        None where there are no bytes to hash (an HTTP endpoint).
    runtime : dict
        JSON-able description for the FactSheet (``model.runtime``): format, runtime and
        version, gradients, input and output contract, adaptation, parameters, notes.
    spec : dict
        JSON-able description from which a worker process reloads the same model
        (:func:`factsheet.models.sources.load_from_spec`).
    keras_model : keras.Model or None
        The framework-native model where gradients exist (``wrapper = "tensorflow"``).
    card : dict
        The demo model's training record; empty for user models.
    stats : callable or None
        ``stats() -> dict`` of request counters (HTTP source), for provenance.
    """

    forward: Callable[[np.ndarray], np.ndarray]
    class_labels: list[ClassLabel]
    sample_rate: int
    clip_samples: int
    source: str
    path: Path | None
    sha256: str | None
    runtime: dict
    spec: dict = field(default_factory=dict)
    keras_model: object | None = None
    card: dict = field(default_factory=dict)
    stats: Callable[[], dict] | None = None

    @property
    def n_classes(self) -> int:
        return len(self.class_labels)

    @property
    def gradients(self) -> bool:
        return bool(self.runtime.get("gradients"))


@dataclass(frozen=True)
class InputContract:
    """The runtime's input signature, as the model file declares it.

    Attributes
    ----------
    layout : str
        ``"batch,samples"``, ``"samples"`` (one 1-D clip per call, YAMNet-style),
        ``"batch,1,samples"`` or ``"batch,samples,1"``.
    fixed_batch : int or None
        A batch size the model is fixed to (exports often fix it to 1); None when any.
    fixed_samples : int or None
        An input length the model is fixed to; None when any.
    dtype : str
        numpy dtype name of the input tensor (``float32``, ``float16``, ``int16``, ``int8``, ...).
    scale, zero_point : float, int
        Affine quantisation of an integer input (``real = scale * (q - zero_point)``);
        ``scale = 0`` when the input is not quantised.
    name : str
        The input tensor's name.
    shape : list
        The declared shape, ``None`` (or -1) for dynamic dimensions.
    """

    layout: str
    fixed_batch: int | None
    fixed_samples: int | None
    dtype: str
    name: str = ""
    shape: tuple = ()
    scale: float = 0.0
    zero_point: int = 0


@dataclass(frozen=True)
class OutputContract:
    """The chosen output tensor: its name, declared shape, dtype and quantisation."""

    name: str
    shape: tuple
    dtype: str
    scale: float = 0.0
    zero_point: int = 0


def input_contract_from_shape(shape, *, dtype: str, name: str, source: str, scale: float = 0.0,
                              zero_point: int = 0) -> InputContract:
    """Read the layout from a declared input shape (dynamic dimensions as None, -1 or a string).

    Rank 1 is one clip per call; rank 2 is (batch, samples); rank 3 needs one axis of size 1
    next to the samples axis. Anything else is refused with a pointer to the Python source.
    """
    dims = tuple(None if (d is None or isinstance(d, str) or (isinstance(d, (int, np.integer)) and d < 0))
                 else int(d) for d in shape)
    if len(dims) == 1:
        return InputContract(layout="samples", fixed_batch=None, fixed_samples=dims[0], dtype=dtype, name=name,
                             shape=dims, scale=scale, zero_point=zero_point)
    if len(dims) == 2:
        return InputContract(layout="batch,samples", fixed_batch=dims[0], fixed_samples=dims[1], dtype=dtype,
                             name=name, shape=dims, scale=scale, zero_point=zero_point)
    if len(dims) == 3 and dims[1] == 1:
        return InputContract(layout="batch,1,samples", fixed_batch=dims[0], fixed_samples=dims[2], dtype=dtype,
                             name=name, shape=dims, scale=scale, zero_point=zero_point)
    if len(dims) == 3 and dims[2] == 1:
        return InputContract(layout="batch,samples,1", fixed_batch=dims[0], fixed_samples=dims[1], dtype=dtype,
                             name=name, shape=dims, scale=scale, zero_point=zero_point)
    raise InputError(source=source, field=f"input {name!r} shape", value=list(shape),
                     reason="not a waveform input ((n), (batch, n), (batch, 1, n) or (batch, n, 1)); models that "
                            "take spectrograms or extra inputs go through source = 'python'")


def choose_output(outputs: list[tuple[str, tuple]], *, n_classes: int, wanted: str | None, source: str) -> int:
    """Index of the output tensor holding the class scores.

    ``wanted`` (``[model] output_name``) picks by name; otherwise the only output, or the
    only one whose last dimension is ``n_classes``.
    """
    names = [n for n, _ in outputs]
    if wanted is not None:
        if wanted not in names:
            raise InputError(source=source, field="model.output_name", value=wanted,
                             reason=f"no such output (outputs: {', '.join(names)})")
        return names.index(wanted)
    if len(outputs) == 1:
        return 0
    fits = [i for i, (_, shape) in enumerate(outputs) if shape and shape[-1] == n_classes]
    if len(fits) == 1:
        return fits[0]
    shown = ", ".join(f"{n} {list(s)}" for n, s in outputs)
    raise InputError(source=source, field="model.output_name", value=None,
                     reason=f"{len(outputs)} outputs and {len(fits)} end in {n_classes} classes ({shown}): "
                            "name the scores with [model] output_name")


class AdaptedForward:
    """``(batch, n) float32 -> (batch, n_classes) float32`` around a runtime call.

    Parameters
    ----------
    run : callable
        ``run(x) -> ndarray``: one call of the runtime on an input already in its dtype and
        layout (``(b, n)``, ``(n,)``, ``(b, 1, n)`` or ``(b, n, 1)``); returns the chosen output.
    contract : InputContract
    out : OutputContract
    output : {"probabilities", "logits-sigmoid", "logits-softmax"}
        What the output holds; logits are mapped to scores per frame, before pooling.
    pooling : {"mean", "max"}
        How per-frame outputs ``(frames, n_classes)`` become one row per clip.
    max_batch : int or None
        Largest batch per runtime call (None: the whole input at once).

    Notes
    -----
    ``frames_pooled`` is set on the first call: True when the runtime returned per-frame
    scores that were pooled, False when it returned one row per clip.
    """

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], *, contract: InputContract, out: OutputContract,
                 output: str = "probabilities", pooling: str = "mean", max_batch: int | None = None) -> None:
        self.run = run
        self.contract = contract
        self.out = out
        self.output = output
        self.pooling = pooling
        self.max_batch = contract.fixed_batch or max_batch
        self.frames_pooled: bool | None = None

    def __call__(self, waveforms: np.ndarray) -> np.ndarray:
        x = np.asarray(waveforms, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"waveforms must be (batch, n_samples), got {x.shape}")
        if self.contract.layout == "samples":
            rows = [self._finish(self._call(to_input_dtype(clip, self.contract))[None]) for clip in x]
            return np.concatenate(rows, axis=0) if rows else np.zeros((0, 0), np.float32)
        step = self.max_batch or max(1, x.shape[0])
        if x.shape[0] <= step and self.contract.fixed_batch in (None, x.shape[0]):  # one call, nothing to join
            return self._finish(self._call(self._layout(to_input_dtype(x, self.contract))))
        parts = []
        for s in range(0, x.shape[0], step):
            chunk = x[s:s + step]
            n = chunk.shape[0]
            if self.contract.fixed_batch is not None and n < self.contract.fixed_batch:
                chunk = np.concatenate([chunk, np.zeros((self.contract.fixed_batch - n, x.shape[1]), np.float32)])
            y = self._call(self._layout(to_input_dtype(chunk, self.contract)))
            parts.append(self._finish(y)[:n])
        return np.concatenate(parts, axis=0) if parts else np.zeros((0, 0), np.float32)

    def _layout(self, x: np.ndarray) -> np.ndarray:
        if self.contract.layout == "batch,1,samples":
            return x[:, None, :]
        if self.contract.layout == "batch,samples,1":
            return x[:, :, None]
        return x

    def _call(self, x: np.ndarray) -> np.ndarray:
        y = np.asarray(self.run(x))
        if self.out.scale:
            y = (y.astype(np.float32) - np.float32(self.out.zero_point)) * np.float32(self.out.scale)
        return y.astype(np.float32, copy=False)

    def _finish(self, y: np.ndarray) -> np.ndarray:
        """(b, C) or (b, frames, C) -> (b, C): activation per frame, then pooling over frames."""
        if y.ndim == 3 and y.shape[1] == 1:
            y = y[:, 0, :]
        y = activate(y, self.output)
        if y.ndim == 3:
            self.frames_pooled = True
            return (y.max(axis=1) if self.pooling == "max" else y.mean(axis=1)).astype(np.float32)
        if self.frames_pooled is None:
            self.frames_pooled = False
        return y.astype(np.float32, copy=False)

    def describe(self) -> dict:
        """The adaptation for the FactSheet (``model.runtime.adaptation``)."""
        c = self.contract
        return {"layout": c.layout, "fixed_batch": c.fixed_batch, "input_dtype": c.dtype,
                "input_quantised": bool(c.scale), "output_activation": self.output,
                "frame_pooling": self.pooling if self.frames_pooled else None,
                "max_batch": self.max_batch}


def to_input_dtype(x: np.ndarray, contract: InputContract) -> np.ndarray:
    """float32 waveform in [-1, 1] -> the runtime's input dtype.

    Floats are cast; an unquantised int16 input gets 16-bit PCM (x 32768, rounded, clipped);
    a quantised integer input gets ``round(x / scale) + zero_point``, clipped to the dtype.
    """
    dtype = np.dtype(contract.dtype)
    if dtype.kind == "f":
        return x.astype(dtype, copy=False)
    info = np.iinfo(dtype)
    if contract.scale:
        q = np.round(x / np.float32(contract.scale)) + contract.zero_point
    elif dtype == np.int16:
        q = np.round(x * 32768.0)
    else:
        raise ValueError(f"integer input {dtype} without quantisation parameters")
    return np.clip(q, info.min, info.max).astype(dtype)


def activate(y: np.ndarray, output: str) -> np.ndarray:
    """Scores from the model's output: identity, sigmoid, or softmax over the class axis."""
    if output == "probabilities":
        return y
    import scipy.special

    if output == "logits-sigmoid":
        return scipy.special.expit(y)
    if output == "logits-softmax":
        return scipy.special.softmax(y.astype(np.float64), axis=-1).astype(np.float32)
    raise ValueError(f"unknown output mapping {output!r}")


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest (``hashlib`` algorithm name) of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 hex digest of a file's bytes."""
    return file_digest(path, "sha256")


def folder_digests(folder: str | Path) -> dict[str, str]:
    """``{path relative to folder (posix): sha256}`` of every file below ``folder``."""
    folder = Path(folder)
    return {f.relative_to(folder).as_posix(): file_sha256(f) for f in folder.rglob("*") if f.is_file()}


def combined_sha256(files: dict[str, str]) -> str:
    """One sha256 over several files' names and sha256 digests, in name order."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + bytes.fromhex(files[name]))
    return h.hexdigest()


def package_version(*names: str) -> str | None:
    """Installed version of the first distribution found among ``names``."""
    from importlib import metadata

    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def first_line(exc: BaseException, limit: int = 200) -> str:
    """``ClassName: first line of the message`` for one-line errors."""
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0][:limit]}" if text else exc.__class__.__name__


def resolve_clip_samples(cfg, *, fixed_samples: int | None, source: str) -> int:
    """The input length: ``[model] clip_seconds`` x sample rate, or the length the model is fixed to.

    Raises
    ------
    InputError
        Neither is known, or the two disagree.
    """
    if cfg.clip_seconds is not None:
        n = int(round(cfg.clip_seconds * cfg.sample_rate))
        if fixed_samples is not None and fixed_samples != n:
            raise InputError(source=source, field="model.clip_seconds", value=cfg.clip_seconds,
                             reason=f"the model's input is fixed to {fixed_samples} samples "
                                    f"({fixed_samples / cfg.sample_rate:g} s at {cfg.sample_rate} Hz), not {n}")
        return n
    if fixed_samples is None:
        raise InputError(source=source, field="model.clip_seconds", value=None,
                         reason="required: the model accepts any input length, so say which one to evaluate")
    return int(fixed_samples)


def read_model_labels(cfg) -> list[ClassLabel]:
    """The class labels file of a user model (AudioSet CSV or one label per line)."""
    from factsheet.datasets.base import read_class_labels

    return read_class_labels(cfg.class_labels)


def runtime_record(*, format: str, runtime: str, runtime_version: str | None, gradients: bool,
                   adapted: AdaptedForward | None, n_parameters: int | None, files: dict[str, str],
                   notes: list[str] | None = None, extra: dict | None = None) -> dict:
    """The FactSheet's ``model.runtime`` record (see the schema)."""
    rec = {"format": format, "runtime": runtime, "runtime_version": runtime_version, "gradients": bool(gradients),
           "n_parameters": None if n_parameters is None else int(n_parameters),
           "files": [{"name": k, "sha256": v} for k, v in sorted(files.items())], "notes": list(notes or [])}
    if adapted is not None:
        c, o = adapted.contract, adapted.out
        rec["input"] = {"name": c.name, "shape": [d for d in c.shape], "dtype": c.dtype}
        rec["output"] = {"name": o.name, "shape": [None if (d is None or isinstance(d, str) or d < 0) else int(d)
                                                  for d in o.shape], "dtype": o.dtype}
        rec["adaptation"] = adapted.describe()
    if extra:
        rec.update(extra)
    return rec
