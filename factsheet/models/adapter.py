"""Model adapter: a model source -> a Keras model -> an ART classifier.

Model contract: input a raw mono waveform batch (batch, n_samples) float32 in [-1, 1]
at ``sample_rate``; output (batch, n_classes) scores (sigmoid probabilities for the
default model). One estimator serves clips of one length (``clip_samples``).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from factsheet.datasets.base import ClassLabel, read_class_labels
from factsheet.errors import InputError

DEFAULT_DIR = Path(__file__).resolve().parent / "default"
DEFAULT_MODEL = DEFAULT_DIR / "demo_classifier.keras"
DEFAULT_CARD = DEFAULT_DIR / "demo_classifier.json"
DEFAULT_LABELS = DEFAULT_DIR / "class_labels_indices.csv"


@dataclass
class LoadedModel:
    """A loaded classifier and what the harness must know about it.

    Attributes
    ----------
    keras_model : keras.Model
    class_labels : list of ClassLabel
        One per output column.
    sample_rate : int
        Hz of the expected input.
    clip_samples : int
        Input length (samples) of the estimator; clips are brought to it.
    source : str
        ``"default"`` or ``"keras"``.
    path : Path
        The model file.
    sha256 : str
        Hash of the model file's bytes.
    card : dict
        For the default model its training record (config, training-data card, metrics);
        empty for user models.
    """

    keras_model: object
    class_labels: list[ClassLabel]
    sample_rate: int
    clip_samples: int
    source: str
    path: Path
    sha256: str
    card: dict = field(default_factory=dict)


def file_sha256(path: str | Path) -> str:
    """sha256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_keras_model(path: str | Path):
    """Load a ``.keras`` file with ``safe_mode=True`` or a legacy ``.h5`` file.

    Registers the demo model's custom layers first so its file loads without any
    arbitrary-code deserialisation. Raises :class:`InputError` on any failure.
    """
    import keras

    import factsheet.models.layers  # noqa: F401  (registers serialisable layers)

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
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise InputError(source=str(path), reason=f"cannot load Keras model ({exc.__class__.__name__}: {first[:200]})") from None


def load_default_model() -> LoadedModel:
    """The committed demo classifier with its training record."""
    card = json.loads(DEFAULT_CARD.read_text(encoding="utf-8"))
    labels = read_class_labels(DEFAULT_LABELS)
    model = load_keras_model(DEFAULT_MODEL)
    return LoadedModel(keras_model=model, class_labels=labels, sample_rate=int(card["sample_rate"]),
                       clip_samples=int(card["clip_samples"]), source="default", path=DEFAULT_MODEL,
                       sha256=file_sha256(DEFAULT_MODEL), card=card)


def load_model(model_cfg) -> LoadedModel:
    """Load the model a :class:`~factsheet.config.ModelConfig` names and check its contract."""
    if model_cfg.source == "default":
        loaded = load_default_model()
    else:
        labels = read_class_labels(model_cfg.class_labels)
        keras_model = load_keras_model(model_cfg.path)
        loaded = LoadedModel(keras_model=keras_model, class_labels=labels, sample_rate=model_cfg.sample_rate,
                             clip_samples=int(round(model_cfg.clip_seconds * model_cfg.sample_rate)),
                             source="keras", path=Path(model_cfg.path), sha256=file_sha256(model_cfg.path))
    if model_cfg.source == "default" and model_cfg.clip_seconds is not None:
        loaded.clip_samples = int(round(model_cfg.clip_seconds * loaded.sample_rate))
    check_contract(loaded)
    return loaded


def check_contract(model: LoadedModel) -> None:
    """Run one silent clip through the model; its output must be (1, n_classes) and finite."""
    src = str(model.path)
    try:
        out = np.asarray(make_forward(model.keras_model, n_samples=model.clip_samples)(
            np.zeros((1, model.clip_samples), np.float32)))
    except Exception as exc:  # noqa: BLE001 - the model is user input
        raise InputError(source=src, field="input", value=f"(1, {model.clip_samples}) float32",
                         reason=f"model does not accept a raw waveform batch ({exc.__class__.__name__})") from None
    n = len(model.class_labels)
    if out.shape != (1, n):
        raise InputError(source=src, field="output shape", value=tuple(out.shape),
                         reason=f"expected (1, {n}): one score per class in the class-labels file")
    if not np.all(np.isfinite(out)):
        raise InputError(source=src, field="output", value="non-finite", reason="model returned NaN or inf on silence")


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
    fixed-signature forward (prediction only; honours ``batch_size``).
    ``"tensorflow"``: :class:`art.estimators.classification.TensorFlowV2Classifier`
    (gradients available). Both use ``clip_values=(-1, 1)`` and ``preprocessing=None``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from art.estimators.classification import BlackBoxClassifier, TensorFlowV2Classifier

    shape = (model.clip_samples,)
    n_classes = len(model.class_labels)
    if wrapper == "blackbox":
        return BlackBoxClassifier(make_forward(model.keras_model, n_samples=model.clip_samples), input_shape=shape,
                                  nb_classes=n_classes, clip_values=(-1.0, 1.0), preprocessing=None)
    if wrapper == "tensorflow":
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


def model_spec(model: LoadedModel) -> dict:
    """A small picklable description from which a worker process reloads the same model."""
    return {"source": model.source, "path": str(model.path), "labels": [c.__dict__ for c in model.class_labels],
            "sample_rate": model.sample_rate, "clip_samples": model.clip_samples, "sha256": model.sha256}


def load_from_spec(spec: dict) -> LoadedModel:
    """Reload a model described by :func:`model_spec`; refuses a file whose hash changed."""
    if spec["source"] == "default":
        model = load_default_model()
    else:
        model = LoadedModel(keras_model=load_keras_model(spec["path"]),
                            class_labels=[ClassLabel(**c) for c in spec["labels"]], sample_rate=spec["sample_rate"],
                            clip_samples=spec["clip_samples"], source=spec["source"], path=Path(spec["path"]),
                            sha256=file_sha256(spec["path"]))
    if model.sha256 != spec["sha256"]:
        raise InputError(source=spec["path"], reason="model file changed while the run was in progress")
    model.clip_samples = spec["clip_samples"]
    return model
