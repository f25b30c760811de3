"""The IBM MAX Audio Classifier rebuilt in Keras 3 from its three asset files.

The MAX model (github.com/IBM/MAX-Audio-Classifier, ``core/``) is two programs: a TF1
VGGish embedding network and a Keras 2 multi-level attention classifier, glued by numpy.
This module rebuilds the whole chain as ONE Keras 3 model, from raw waveform to the 527
sigmoid scores, reading only data from the assets (no pickle, no Lambda, no unmarshalled
code), so that the result saves to a ``.keras`` file that loads with ``safe_mode=True``:

=====================================  ==============================================
MAX (file: function)                   here (layer)
=====================================  ==============================================
``vggish_input.wavfile_to_examples``   :class:`~factsheet.models.layers.LogMelFrontend`
(``mel_features.log_mel_spectrogram``  + :class:`~factsheet.models.layers.ExampleFramer`:
+ ``mel_features.frame``)              log-mel (25 ms periodic Hann, 10 ms hop, FFT 512,
                                       64 HTK mel bands 125-7500 Hz, ``log(mel + 0.01)``),
                                       non-overlapping 96-frame (0.96 s) examples
``vggish_slim.define_vggish_slim``     :class:`VGGish` (weights from ``vggish_model.ckpt``)
``vggish_postprocess.Postprocessor``   :class:`PCAQuantize` (``vggish_pca_params.npz``)
``model.classifier_pre_process``       :class:`ExampleSequence` (repeat / cut to 10)
``model.uint8_to_float32``             inside :class:`PCAQuantize`: ``(q - 128) / 128``
``classifier_model.h5``                rebuilt from the h5's ``model_config`` with
                                       standard Keras layers + :class:`NormalizedAttentionPooling`
=====================================  ==============================================

The model is black-box only: the uint8 quantisation of the embeddings has no gradient.

Input contract: raw mono waveform (batch, n_samples) float32 in [-1, 1] at 16 kHz, at least
:data:`MIN_SAMPLES` = 15 600 samples (0.975 s). A shorter clip yields no 0.96 s example and
cannot be classified (the MAX service answers 400; this model raises an
``InvalidArgumentError``); the project's config requires ``clip_seconds >= 0.975``.
The MAX service's WAV reading (int16 / 32768, stereo averaged, other rates resampled with
resampy) happens outside the model. Its ``start_time`` option is not modelled: the
sequence always starts at the first example (``start_time = 0``, the service default).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import struct
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from factsheet.errors import InputError
from factsheet.models.sources.base import file_digest
from factsheet.models.layers import PACKAGE, VGGISH, ExampleFramer, LogMelFrontend, min_samples_for_one_example

CHECKPOINT = "vggish_model.ckpt"
PCA_PARAMS = "vggish_pca_params.npz"
CLASSIFIER = "classifier_model.h5"
ASSETS = (CHECKPOINT, PCA_PARAMS, CLASSIFIER)
SUMS_FILE = "sha512sums.txt"

SAMPLE_RATE = VGGISH["sample_rate"]
#: Shortest classifiable clip in samples: one 0.96 s example needs 400 + 95 * 160 samples.
MIN_SAMPLES = min_samples_for_one_example()
#: VGGish example size (frames x mel bands) and embedding width (vggish_params.py).
NUM_FRAMES, NUM_BANDS, EMBEDDING_SIZE = 96, 64, 128
#: vggish_params.QUANTIZE_MIN_VAL / QUANTIZE_MAX_VAL.
QUANTIZE_MIN, QUANTIZE_MAX = -2.0, 2.0
#: Sequence length of the MAX classifier (model.classifier_pre_process).
MAX_EXAMPLES = 10

# VGGish layout (vggish_slim.define_vggish_slim): checkpoint scope, and whether a 2x2 max-pool follows.
_VGGISH_CONVS = (("conv1", True), ("conv2", True), ("conv3/conv3_1", False), ("conv3/conv3_2", True),
                 ("conv4/conv4_1", False), ("conv4/conv4_2", True))
_VGGISH_FCS = ("fc1/fc1_1", "fc1/fc1_2", "fc2")

# Keras 2 layer classes the classifier importer understands.
_SUPPORTED_LAYERS = ("InputLayer", "Dense", "BatchNormalization", "Activation", "Dropout", "Concatenate", "Lambda")
_ACTIVATIONS = ("linear", "relu", "sigmoid", "softmax", "tanh")
# Upstream attention-pooling functions (keras/main.py attention_pooling; Yu's _attention):
# att clipped to [1e-7, 1 - 1e-7], normalised over time, weighted sum of cla over time.
_ATTENTION_FUNCTION_NAMES = ("attention_pooling", "_attention")
_ATTENTION_EPSILON = 1e-7
_MAX_LAMBDA_CODE_BYTES = 1 << 16


# ---------------------------------------------------------------------------------------------
# Layers (registered, so the saved model loads with safe_mode=True)
# ---------------------------------------------------------------------------------------------


def _assert_examples(n):
    """An op that fails (InvalidArgumentError) when a clip gave no 0.96 s example."""
    return tf.debugging.assert_positive(
        n, message=f"clip shorter than one 0.96 s example ({MIN_SAMPLES} samples at {SAMPLE_RATE} Hz)")


@keras.saving.register_keras_serializable(package=PACKAGE)
class VGGish(keras.layers.Layer):
    """The VGGish CNN of ``vggish_slim.py``: examples (batch, n_examples, 96, 64, 1) -> (batch, n_examples, 128).

    conv 3x3 stride 1 SAME + ReLU for every convolution; 2x2 max-pool stride 2 SAME after
    conv1, conv2, conv3_2 and conv4_2; flatten (height, width, channel order); two
    fully-connected ReLU layers; the embedding layer ``fc2`` WITH ReLU (the slim arg_scope
    applies ``activation_fn=tf.nn.relu`` to every layer in MAX's copy). All float32.

    Parameters
    ----------
    conv_channels : sequence of 6 int
        Output channels of conv1, conv2, conv3_1, conv3_2, conv4_1, conv4_2
        (VGGish: 64, 128, 256, 256, 512, 512).
    fc_units : sequence of 2 int
        Units of fc1_1 and fc1_2 (VGGish: 4096, 4096).
    embedding_size : int
        Units of fc2 (128).
    """

    def __init__(self, *, conv_channels=(64, 128, 256, 256, 512, 512), fc_units=(4096, 4096),
                 embedding_size: int = EMBEDDING_SIZE, **kwargs):
        super().__init__(**kwargs)
        self.conv_channels = [int(c) for c in conv_channels]
        self.fc_units = [int(u) for u in fc_units]
        self.embedding_size = int(embedding_size)
        if len(self.conv_channels) != len(_VGGISH_CONVS) or len(self.fc_units) != 2:
            raise ValueError("VGGish needs 6 conv widths and 2 fc widths")
        self.convs = [keras.layers.Conv2D(c, 3, strides=1, padding="same", activation="relu",
                                          name=scope.split("/")[-1])
                      for c, (scope, _) in zip(self.conv_channels, _VGGISH_CONVS)]
        self.pool = keras.layers.MaxPooling2D(pool_size=2, strides=2, padding="same", name="pool")
        self.fcs = [keras.layers.Dense(u, activation="relu", name=scope.split("/")[-1])
                    for u, scope in zip([*self.fc_units, self.embedding_size], _VGGISH_FCS)]

    def _shapes(self):
        shape = (None, NUM_FRAMES, NUM_BANDS, 1)
        conv_shapes = []
        for conv, (_, pooled) in zip(self.convs, _VGGISH_CONVS):
            conv_shapes.append(shape)
            shape = conv.compute_output_shape(shape)
            if pooled:
                shape = self.pool.compute_output_shape(shape)
        return conv_shapes, int(np.prod(shape[1:]))

    def build(self, input_shape):
        conv_shapes, n_flat = self._shapes()
        for conv, shape in zip(self.convs, conv_shapes):
            conv.build(shape)
        width = n_flat
        for fc in self.fcs:
            fc.build((None, width))
            width = fc.units

    def call(self, examples):
        batch, n = tf.shape(examples)[0], tf.shape(examples)[1]
        with tf.control_dependencies([_assert_examples(n)]):
            x = tf.reshape(examples, (-1, NUM_FRAMES, NUM_BANDS, 1))
        for conv, (_, pooled) in zip(self.convs, _VGGISH_CONVS):
            x = conv(x)
            if pooled:
                x = self.pool(x)
        x = tf.reshape(x, (tf.shape(x)[0], -1))
        for fc in self.fcs:
            x = fc(x)
        return tf.reshape(x, (batch, n, self.embedding_size))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.embedding_size)

    def get_config(self):
        return {**super().get_config(), "conv_channels": self.conv_channels, "fc_units": self.fc_units,
                "embedding_size": self.embedding_size}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PCAQuantize(keras.layers.Layer):
    """``vggish_postprocess.Postprocessor.postprocess`` then MAX's ``uint8_to_float32``.

    (batch, n, 128) float32 embeddings -> (batch, n, 128) float32 classifier inputs in
    [-1, 127/128]:

    ``p = E @ (x - mu)`` (float64, as numpy does it), ``c = clip(p, -2, 2)``,
    ``q = uint8((c + 2) * 255 / 4)`` (the numpy cast truncates; here ``floor``, equal for
    these non-negative values), output ``(q - 128) / 128``. ``floor`` has no gradient.

    Parameters
    ----------
    size : int
        Embedding width (128).
    """

    def __init__(self, *, size: int = EMBEDDING_SIZE, **kwargs):
        kwargs.setdefault("autocast", False)  # keep the float64 PCA weights float64
        super().__init__(**kwargs)
        self.size = int(size)

    def build(self, input_shape):
        self.eigen_vectors = self.add_weight(shape=(self.size, self.size), dtype="float64", initializer="zeros",
                                             trainable=False, name="pca_eigen_vectors")
        self.means = self.add_weight(shape=(self.size,), dtype="float64", initializer="zeros", trainable=False,
                                     name="pca_means")

    def call(self, embeddings):
        x = tf.cast(embeddings, tf.float64) - tf.cast(self.means, tf.float64)
        pca = tf.einsum("...j,ij->...i", x, tf.cast(self.eigen_vectors, tf.float64))
        clipped = tf.clip_by_value(pca, QUANTIZE_MIN, QUANTIZE_MAX)
        quantized = tf.floor((clipped - QUANTIZE_MIN) * (255.0 / (QUANTIZE_MAX - QUANTIZE_MIN)))
        return (tf.cast(quantized, tf.float32) - 128.0) / 128.0

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "size": self.size}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ExampleSequence(keras.layers.Layer):
    """MAX's ``classifier_pre_process`` (``start_time = 0``): (batch, n, d) -> (batch, n_examples, d).

    MAX doubles a short sequence (``np.stack((e, e))``) until it has at least 10 rows and
    keeps the first 10; a long one is cut to its first 10. Both equal taking rows
    ``i mod n`` for ``i = 0 .. n_examples - 1``. ``n = 0`` (a clip under 0.975 s) raises
    ``InvalidArgumentError``.

    Parameters
    ----------
    n_examples : int
        Sequence length the classifier sees (MAX: 10).
    """

    def __init__(self, *, n_examples: int = MAX_EXAMPLES, **kwargs):
        super().__init__(**kwargs)
        self.n_examples = int(n_examples)

    def call(self, sequence):
        n = tf.shape(sequence)[1]
        with tf.control_dependencies([_assert_examples(n)]):
            index = tf.math.floormod(tf.range(self.n_examples), tf.maximum(n, 1))
        return tf.gather(sequence, index, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n_examples, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "n_examples": self.n_examples}


@keras.saving.register_keras_serializable(package=PACKAGE)
class NormalizedAttentionPooling(keras.layers.Layer):
    """The upstream attention Lambda: ``[cla, att]`` (batch, time, classes) x 2 -> (batch, classes).

    ``a = clip(att, eps, 1 - eps)``; ``out = sum_t cla * a / sum_t a`` (keras/main.py
    ``attention_pooling`` of qiuqiangkong/audioset_classification and Yu's ``_attention``;
    ``att`` is a softmax over CLASSES, normalised here over time).

    Parameters
    ----------
    epsilon : float
        Clip margin (upstream: 1e-7).
    """

    def __init__(self, *, epsilon: float = _ATTENTION_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        cla, att = inputs
        att = tf.clip_by_value(att, self.epsilon, 1.0 - self.epsilon)
        normalized = att / tf.reduce_sum(att, axis=1, keepdims=True)
        return tf.reduce_sum(cla * normalized, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], input_shape[0][2])

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


# ---------------------------------------------------------------------------------------------
# Checksums
# ---------------------------------------------------------------------------------------------


def _sha512(path: Path) -> str:
    return file_digest(path, "sha512")


def _sha256(path: Path) -> str:
    return file_digest(path, "sha256")


def _asset(assets_dir: Path, name: str) -> Path:
    path = assets_dir / name
    if not path.is_file():
        raise InputError(source=str(path), reason=f"MAX asset {name} not found")
    return path


def verify_checksums(assets_dir: str | Path) -> dict[str, str]:
    """Check the assets against ``sha512sums.txt`` (when present) and return their sha512.

    The file has ``sha512sum`` format, one ``<128 hex>  <path>`` per line; MAX's own lists
    ``assets/<name>`` relative to its repository root, so a listed path is looked up under
    ``assets_dir`` as written, then by its file name. Every listed file that is present is
    checked; listed files that are absent are skipped (the three assets themselves must
    exist in any case).

    Parameters
    ----------
    assets_dir : str or Path
        Folder holding ``vggish_model.ckpt``, ``vggish_pca_params.npz``,
        ``classifier_model.h5`` and optionally ``sha512sums.txt``.

    Returns
    -------
    dict of str to str
        ``{file name: sha512 hex digest}`` of the three assets, computed from their bytes.

    Raises
    ------
    InputError
        An asset is missing (names the file); a line of ``sha512sums.txt`` is malformed
        (``field = "line N"``); a digest differs (``source`` = the file,
        ``field = "sha512"``, ``value`` = the first 16 hex digits of the computed digest).
    """
    return _verify(Path(assets_dir))[0]


def _verify(folder: Path) -> tuple[dict[str, str], list[str]]:
    """:func:`verify_checksums`, plus the names of the files that sha512sums.txt checked."""
    paths = {name: _asset(folder, name) for name in ASSETS}
    digests = {name: _sha512(path) for name, path in paths.items()}
    checked: list[str] = []
    sums = folder / SUMS_FILE
    if not sums.is_file():
        return digests, checked
    try:
        text = sums.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(source=str(sums), reason=f"cannot read checksum file ({exc.__class__.__name__})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = re.fullmatch(r"\s*([0-9a-fA-F]{128}) [ *](.+?)\s*", line)
        if match is None:
            raise InputError(source=str(sums), field=f"line {number}", value=line[:60],
                             reason="expected '<128 hex digits>  <file>' (sha512sum format)")
        expected, listed = match.group(1).lower(), match.group(2)
        listed_path = Path(listed)
        candidates = [folder / listed_path.name]  # never outside assets_dir
        if not listed_path.is_absolute() and ".." not in listed_path.parts:
            candidates.insert(0, folder / listed_path)
        target = next((p for p in candidates if p.is_file()), None)
        if target is None:
            continue
        known = paths.get(target.name)
        actual = digests[target.name] if known is not None and known.resolve() == target.resolve() else _sha512(target)
        if actual != expected:
            raise InputError(source=str(target), field="sha512", value=actual[:16],
                             reason=f"checksum differs from {SUMS_FILE} (expected {expected[:16]}...)")
        checked.append(target.name)
    return digests, checked


# ---------------------------------------------------------------------------------------------
# VGGish checkpoint and PCA parameters
# ---------------------------------------------------------------------------------------------


def read_vggish_checkpoint(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and validate a VGGish TF1 Saver checkpoint (V1 single file, or V2 prefix).

    Parameters
    ----------
    path : str or Path
        ``vggish_model.ckpt``.

    Returns
    -------
    spec : dict
        ``conv_channels`` (6 int), ``fc_units`` (2 int), ``embedding_size`` (int): the
        layer widths read from the variables' shapes.
    arrays : dict of str to ndarray
        ``"<scope>/weights"`` and ``"<scope>/biases"`` (scopes without the ``vggish/``
        prefix, e.g. ``"conv3/conv3_1/weights"``), float32: conv weights (3, 3, in, out),
        fc weights (in, out).

    Raises
    ------
    InputError
        Unreadable checkpoint, a missing variable, or a shape that breaks the VGGish layout.
    """
    path = Path(path)
    src = str(path)
    try:
        reader = tf.train.load_checkpoint(src)
        shapes = reader.get_variable_to_shape_map()
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad input file
        raise InputError(source=src,
                         reason=f"not a readable TensorFlow checkpoint ({exc.__class__.__name__})") from None
    arrays: dict[str, np.ndarray] = {}
    for scope in [s for s, _ in _VGGISH_CONVS] + list(_VGGISH_FCS):
        for kind in ("weights", "biases"):
            name = f"vggish/{scope}/{kind}"
            if name not in shapes:
                raise InputError(source=src, field="variable", value=name, reason="VGGish variable missing")
            try:
                arrays[f"{scope}/{kind}"] = np.asarray(reader.get_tensor(name), dtype=np.float32)
            except Exception as exc:  # noqa: BLE001
                raise InputError(source=src, field="variable", value=name,
                                 reason=f"cannot read variable ({exc.__class__.__name__})") from None

    def bad(name: str, want: str):
        return InputError(source=src, field=f"vggish/{name}", value=tuple(arrays[name].shape),
                          reason=f"unexpected shape (VGGish layout needs {want})")

    channels, fan_in = [], 1
    for scope, _ in _VGGISH_CONVS:
        w, b = arrays[f"{scope}/weights"], arrays[f"{scope}/biases"]
        if w.ndim != 4 or w.shape[:3] != (3, 3, fan_in):
            raise bad(f"{scope}/weights", f"(3, 3, {fan_in}, out)")
        if b.shape != (w.shape[3],):
            raise bad(f"{scope}/biases", f"({w.shape[3]},)")
        fan_in = int(w.shape[3])
        channels.append(fan_in)
    fan_in = (NUM_FRAMES // 16) * (NUM_BANDS // 16) * channels[-1]  # four 2x2 pools: 96x64 -> 6x4
    units = []
    for scope in _VGGISH_FCS:
        w, b = arrays[f"{scope}/weights"], arrays[f"{scope}/biases"]
        if w.ndim != 2 or w.shape[0] != fan_in:
            raise bad(f"{scope}/weights", f"({fan_in}, out)")
        if b.shape != (w.shape[1],):
            raise bad(f"{scope}/biases", f"({w.shape[1]},)")
        fan_in = int(w.shape[1])
        units.append(fan_in)
    if units[-1] != EMBEDDING_SIZE:
        raise bad("fc2/weights", f"(in, {EMBEDDING_SIZE})")
    return {"conv_channels": channels, "fc_units": units[:2], "embedding_size": units[2]}, arrays


def read_pca_params(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``pca_eigen_vectors`` (128, 128) and ``pca_means`` (128,) as float64 (no pickle allowed).

    Raises
    ------
    InputError
        Unreadable npz, a missing array, or a wrong shape (as ``vggish_postprocess`` checks).
    """
    src = str(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            found = {k: np.asarray(data[k]) for k in ("pca_eigen_vectors", "pca_means") if k in data.files}
    except Exception as exc:  # noqa: BLE001
        raise InputError(source=src, reason=f"not a readable .npz file ({exc.__class__.__name__})") from None
    for key, shape in (("pca_eigen_vectors", (EMBEDDING_SIZE, EMBEDDING_SIZE)), ("pca_means", (EMBEDDING_SIZE,))):
        if key not in found:
            raise InputError(source=src, field=key, reason="array missing")
        arr = found[key].reshape(-1) if key == "pca_means" and found[key].size == EMBEDDING_SIZE else found[key]
        if arr.shape != shape or not np.issubdtype(arr.dtype, np.number):
            raise InputError(source=src, field=key, value=tuple(found[key].shape), reason=f"expected shape {shape}")
        found[key] = arr.astype(np.float64)
    return found["pca_eigen_vectors"], found["pca_means"]


# ---------------------------------------------------------------------------------------------
# Classifier from the Keras 2 h5
# ---------------------------------------------------------------------------------------------


def _text(value) -> str:
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8")
    return str(value)


def _names(value) -> list[str]:
    return [_text(v) for v in np.asarray(value).reshape(-1)] if value is not None and np.size(value) else []


def _is_attention_lambda(config: dict, n_inputs: int) -> bool:
    """Recognise the upstream attention-pooling Lambda WITHOUT running or unmarshalling its code.

    Keras 2 stores a Python function as base64 of ``marshal.dumps(code)``. We only decode the
    base64 and look for the names ``clip`` and ``sum`` and the float constant 1e-7 as
    marshal writes it (type byte ``g``, or ``0xe7`` with marshal's reference flag, + 8-byte
    little-endian double), plus two inputs. A hand-written function with other names or
    another epsilon is refused rather than guessed.
    """
    if n_inputs != 2 or config.get("arguments") not in (None, {}):
        return False
    kind, function = config.get("function_type"), config.get("function")
    if kind == "function":
        return isinstance(function, str) and function in _ATTENTION_FUNCTION_NAMES
    if kind != "lambda":
        return False
    code = function[0] if isinstance(function, (list, tuple)) and function else function
    if not isinstance(code, str) or len(code) > 2 * _MAX_LAMBDA_CODE_BYTES:
        return False
    try:
        raw = base64.b64decode(code.encode("ascii"), validate=False)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False
    epsilon = struct.pack("<d", _ATTENTION_EPSILON)
    has_epsilon = (b"g" + epsilon) in raw or (b"\xe7" + epsilon) in raw  # TYPE_BINARY_FLOAT, with or without FLAG_REF
    return b"clip" in raw and b"sum" in raw and has_epsilon


def _layer_error(src: str, name: str, value, reason: str) -> InputError:
    return InputError(source=src, field=f"model_config layer {name!r}", value=value, reason=reason)


def _activation(src: str, name: str, value) -> str:
    act = value if isinstance(value, str) else None
    if act not in _ACTIVATIONS:
        raise _layer_error(src, name, value, f"activation not supported (supported: {', '.join(_ACTIVATIONS)})")
    return act


def read_classifier_config(path: str | Path) -> tuple[dict, dict]:
    """The ``model_config`` JSON and file attributes of a Keras 2 ``.h5`` model.

    Returns
    -------
    model_config : dict
        ``{"class_name": "Model", "config": {"layers": [...], "input_layers": ..., "output_layers": ...}}``.
    attrs : dict
        ``keras_version`` and ``backend`` as stored (``""`` when absent).

    Raises
    ------
    InputError
        Not an HDF5 file, no ``model_config`` attribute, or not JSON.
    """
    import h5py

    src = str(path)
    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            attrs = {k: _text(f.attrs[k]) if k in f.attrs else "" for k in ("keras_version", "backend")}
    except Exception as exc:  # noqa: BLE001 - truncated or not HDF5
        raise InputError(source=src, reason=f"not a readable HDF5 file ({exc.__class__.__name__})") from None
    if raw is None:
        raise InputError(source=src, field="model_config", reason="attribute missing (not a whole saved Keras model)")
    try:
        config = json.loads(_text(raw))
    except (ValueError, UnicodeDecodeError):
        raise InputError(source=src, field="model_config", reason="attribute is not JSON") from None
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise InputError(source=src, field="model_config", reason="expected an object with 'class_name' and 'config'")
    return config, attrs


def build_classifier(path: str | Path) -> tuple[keras.Model, dict]:
    """Rebuild the Keras 2 classifier of ``classifier_model.h5`` in Keras 3 and load its weights.

    The graph, layer sizes, activations, dropout rates and batch-norm settings come from the
    file's own ``model_config``; weights from ``model_weights/<layer>/<weight name>``,
    matched by layer name. Supported layer classes: ``InputLayer``, ``Dense``,
    ``BatchNormalization``, ``Activation``, ``Dropout``, ``Concatenate`` and ``Lambda``
    only when it is recognisably the upstream attention pooling
    (:class:`NormalizedAttentionPooling`). The time axis of the input is left free
    (Dense and pooling act per time step / over time).

    Parameters
    ----------
    path : str or Path
        ``classifier_model.h5`` (Keras 2.2.4 ``model.save`` format).

    Returns
    -------
    model : keras.Model
        (batch, time, 128) float32 -> (batch, n_classes), named ``"classifier"``.
    info : dict
        ``keras_version``, ``backend``, ``time_steps`` (the h5's input length, MAX: 10),
        ``n_layers``, ``layers`` (class names in file order).

    Raises
    ------
    InputError
        Any unreadable part, an unsupported layer class or setting (names the h5, the layer
        and its class), or a weight missing or of the wrong shape.
    """
    import h5py

    src = str(path)
    config, attrs = read_classifier_config(path)
    model_class = config.get("class_name")
    if model_class not in ("Model", "Functional"):
        raise InputError(source=src, field="model_config class_name", value=model_class,
                         reason="expected a functional Keras model ('Model')")
    body = config["config"]
    layer_cfgs = body.get("layers")
    if not isinstance(layer_cfgs, list) or not layer_cfgs:
        raise InputError(source=src, field="model_config layers", reason="no layers")

    tensors: dict[str, object] = {}
    built: dict[str, keras.layers.Layer] = {}
    kinds: dict[str, str] = {}
    time_steps = None
    try:
        for entry in layer_cfgs:
            name, kind, cfg = entry.get("name"), entry.get("class_name"), entry.get("config") or {}
            name = name or cfg.get("name")
            if not isinstance(name, str) or not isinstance(kind, str):
                raise InputError(source=src, field="model_config layers", value=str(entry)[:60],
                                 reason="layer without name or class_name")
            if kind not in _SUPPORTED_LAYERS:
                supported = ", ".join(_SUPPORTED_LAYERS)
                raise _layer_error(src, name, kind,
                                   f"layer class not supported by the MAX importer (supported: {supported})")
            kinds[name] = kind
            nodes = entry.get("inbound_nodes") or []
            if kind == "InputLayer":
                shape = cfg.get("batch_input_shape")
                if not isinstance(shape, list) or len(shape) != 3 or not isinstance(shape[2], int):
                    raise _layer_error(src, name, shape, "expected an input of shape (batch, time, features)")
                time_steps = shape[1]
                tensors[name] = keras.Input(shape=(None, shape[2]), name=name)
                continue
            if len(nodes) != 1:
                raise _layer_error(src, name, kind, f"{len(nodes)} inbound nodes; shared layers are not supported")
            inputs = []
            for ref in nodes[0]:
                if not isinstance(ref, list) or len(ref) < 3 or ref[0] not in tensors or ref[1:3] != [0, 0]:
                    raise _layer_error(src, name, kind, f"inbound reference {str(ref)[:40]} not understood")
                inputs.append(tensors[ref[0]])
            if kind == "Dense":
                layer = keras.layers.Dense(int(cfg["units"]), activation=_activation(src, name, cfg.get("activation")),
                                           use_bias=bool(cfg.get("use_bias", True)), name=name)
            elif kind == "BatchNormalization":
                axis = cfg.get("axis", -1)
                if axis not in (-1, 2) and axis != [2] and axis != [-1]:
                    raise _layer_error(src, name, kind, f"axis {axis!r} not supported (features axis only)")
                layer = keras.layers.BatchNormalization(axis=-1, epsilon=float(cfg.get("epsilon", 1e-3)),
                                                        momentum=float(cfg.get("momentum", 0.99)),
                                                        center=bool(cfg.get("center", True)),
                                                        scale=bool(cfg.get("scale", True)), name=name)
            elif kind == "Activation":
                layer = keras.layers.Activation(_activation(src, name, cfg.get("activation")), name=name)
            elif kind == "Dropout":
                layer = keras.layers.Dropout(float(cfg.get("rate", 0.0)), name=name)
            elif kind == "Concatenate":
                layer = keras.layers.Concatenate(axis=int(cfg.get("axis", -1)), name=name)
            else:  # Lambda
                if not _is_attention_lambda(cfg, len(inputs)):
                    raise _layer_error(src, name, kind,
                                       "Lambda not recognised as the upstream attention pooling; its code is not run")
                layer = NormalizedAttentionPooling(epsilon=_ATTENTION_EPSILON, name=name)
            built[name] = layer
            tensors[name] = layer(inputs if len(inputs) > 1 else inputs[0])
    except InputError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(source=src, field="model_config",
                         reason=f"layer settings not understood ({exc.__class__.__name__}: {str(exc)[:80]})") from None

    def endpoint(key: str) -> object:
        refs = body.get(key)
        if not isinstance(refs, list) or len(refs) != 1 or not isinstance(refs[0], list) or refs[0][0] not in tensors:
            raise InputError(source=src, field=f"model_config {key}", value=str(refs)[:60],
                             reason="expected exactly one known layer")
        return tensors[refs[0][0]]

    inp, out = endpoint("input_layers"), endpoint("output_layers")
    if kinds.get(body["input_layers"][0][0]) != "InputLayer" or len(out.shape) != 2:
        raise InputError(source=src, field="model_config",
                         reason="expected one InputLayer and a (batch, classes) output")
    model = keras.Model(inp, out, name="classifier")
    _load_classifier_weights(h5py, path, built)
    info = {"keras_version": attrs["keras_version"], "backend": attrs["backend"], "time_steps": time_steps,
            "n_layers": len(layer_cfgs), "layers": [e.get("class_name") for e in layer_cfgs]}
    return model, info


def _load_classifier_weights(h5py, path, built: dict) -> None:
    src = str(path)
    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            stored = set(_names(group.attrs.get("layer_names")))
            for name, layer in built.items():
                if not layer.weights:
                    continue
                if name not in stored or name not in group:
                    raise InputError(source=src, field=f"model_weights/{name}", reason="weights of this layer missing")
                layer_group = group[name]
                values = {}
                for wname in _names(layer_group.attrs.get("weight_names")):
                    key = wname.rsplit("/", 1)[-1].split(":", 1)[0]
                    values[key] = np.asarray(layer_group[wname][()])
                for variable in layer.weights:
                    key = variable.path.rsplit("/", 1)[-1]
                    if key not in values:
                        raise InputError(source=src, field=f"model_weights/{name}", value=key,
                                         reason="weight missing")
                    if tuple(values[key].shape) != tuple(variable.shape):
                        raise InputError(source=src, field=f"model_weights/{name}/{key}",
                                         value=tuple(values[key].shape),
                                         reason=f"expected shape {tuple(variable.shape)}")
                    variable.assign(values[key].astype(np.float32))
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated datasets and the like
        raise InputError(source=src, field="model_weights",
                         reason=f"cannot read weights ({exc.__class__.__name__})") from None


# ---------------------------------------------------------------------------------------------
# The whole model
# ---------------------------------------------------------------------------------------------


def build_max_model(assets_dir: str | Path, *, n_examples: int = MAX_EXAMPLES, verify: bool = True) -> keras.Model:
    """The MAX Audio Classifier as one Keras 3 model, from its asset folder.

    Parameters
    ----------
    assets_dir : str or Path
        Folder with ``vggish_model.ckpt``, ``vggish_pca_params.npz``,
        ``classifier_model.h5`` (and optionally ``sha512sums.txt``).
    n_examples : int
        Length of the example sequence the classifier sees (MAX: 10 examples of 0.96 s).
        Shorter clips repeat their example sequence, longer ones keep the first
        ``n_examples``. Another value departs from MAX.
    verify : bool
        Check ``sha512sums.txt`` first (:func:`verify_checksums`).

    Returns
    -------
    keras.Model
        Input ``waveform`` (batch, n_samples) float32 in [-1, 1] at 16 kHz, any
        ``n_samples >= 15 600`` (0.975 s); output (batch, n_classes) sigmoid scores in
        [0, 1]. Layers: ``logmel`` -> ``examples`` -> ``vggish`` -> ``pca_quantize`` ->
        ``sequence`` -> ``classifier`` (a nested model). No gradient through
        ``pca_quantize``.

    Raises
    ------
    InputError
        A missing, corrupted or unsupported asset (see :func:`verify_checksums`,
        :func:`read_vggish_checkpoint`, :func:`read_pca_params`, :func:`build_classifier`).
    """
    return _build_max(Path(assets_dir), n_examples=n_examples, verify=verify)[0]


def _build_max(folder: Path, *, n_examples: int, verify: bool) -> tuple[keras.Model, dict]:
    if int(n_examples) < 1:
        raise InputError(source=str(folder), field="n_examples", value=n_examples, reason="must be >= 1")
    if verify:
        verify_checksums(folder)
    ckpt, pca_path, h5_path = (_asset(folder, name) for name in ASSETS)
    spec, arrays = read_vggish_checkpoint(ckpt)
    eigen_vectors, means = read_pca_params(pca_path)
    classifier, info = build_classifier(h5_path)
    features = classifier.input.shape[-1]
    if features != EMBEDDING_SIZE:
        raise InputError(source=str(h5_path), field="model_config input", value=features,
                         reason=f"classifier input must have {EMBEDDING_SIZE} features (the PCA output)")

    waveform = keras.Input(shape=(None,), name="waveform")
    logmel = LogMelFrontend(sample_rate=SAMPLE_RATE, name="logmel")(waveform)
    examples = ExampleFramer(frames_per_example=NUM_FRAMES, name="examples")(logmel)
    vggish = VGGish(**spec, name="vggish")
    embeddings = vggish(examples)
    pca = PCAQuantize(size=EMBEDDING_SIZE, name="pca_quantize")
    quantized = pca(embeddings)
    sequence = ExampleSequence(n_examples=int(n_examples), name="sequence")(quantized)
    scores = classifier(sequence)
    model = keras.Model(waveform, scores, name="max_audio_classifier")

    for layer, (scope, _) in zip(vggish.convs, _VGGISH_CONVS):
        layer.kernel.assign(arrays[f"{scope}/weights"])
        layer.bias.assign(arrays[f"{scope}/biases"])
    for layer, scope in zip(vggish.fcs, _VGGISH_FCS):
        layer.kernel.assign(arrays[f"{scope}/weights"])
        layer.bias.assign(arrays[f"{scope}/biases"])
    pca.eigen_vectors.assign(eigen_vectors)
    pca.means.assign(means)
    return model, info


def import_max(assets_dir: str | Path, out_path: str | Path, *, n_examples: int = MAX_EXAMPLES) -> dict:
    """Verify, rebuild and save the MAX model as a ``.keras`` file (written atomically).

    Parameters
    ----------
    assets_dir : str or Path
        The asset folder (see :func:`build_max_model`).
    out_path : str or Path
        Destination, must end in ``.keras``; written to a temporary file in the same folder,
        then moved into place with ``os.replace``.
    n_examples : int
        See :func:`build_max_model`.

    Returns
    -------
    dict
        ``source`` ("max_audio"), ``assets_sha512`` ({file name: sha512}),
        ``checked_by_sha512sums`` (names of the files that ``sha512sums.txt`` listed and
        that matched; empty without that file),
        ``classifier`` (h5 ``keras_version``, ``backend``, ``time_steps``, layer classes),
        ``n_parameters``, ``n_classes``, ``n_examples``, ``sample_rate`` (Hz),
        ``min_samples``, ``gradients`` (False), ``out_path``, ``out_sha256``.
    """
    folder = Path(assets_dir)
    out = Path(out_path)
    if out.suffix != ".keras":
        raise InputError(source=str(out), field="suffix", value=out.suffix, reason="output must be a .keras file")
    digests, checked = _verify(folder)
    model, info = _build_max(folder, n_examples=n_examples, verify=False)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.keras")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        model.save(tmp)
        os.replace(tmp, out)
    except OSError as exc:
        raise InputError(source=str(out), reason=f"cannot write the model file ({exc.__class__.__name__})") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return {
        "source": "max_audio",
        "assets_sha512": digests,
        "checked_by_sha512sums": sorted(checked),
        "classifier": {k: info[k] for k in ("keras_version", "backend", "time_steps", "layers")},
        "n_parameters": int(model.count_params()),
        "n_classes": int(model.output.shape[-1]),
        "n_examples": int(n_examples),
        "sample_rate": SAMPLE_RATE,
        "min_samples": MIN_SAMPLES,
        "gradients": False,
        "out_path": str(out),
        "out_sha256": _sha256(out),
    }
