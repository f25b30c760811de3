"""Stand-in MAX Audio Classifier assets (same FORMATS as IBM's) and an independent numpy reference.

The real assets (``vggish_model.ckpt`` 288 MB, ``vggish_pca_params.npz``,
``classifier_model.h5``) cannot be downloaded here. :func:`make_standin_assets` writes
files of the same formats with seeded random weights:

- ``vggish_model.ckpt``: a TF1 V1-format Saver checkpoint (one file) with the VGGish
  variable names and layout of ``vggish_slim.py`` (full widths, or reduced for fast tests);
- ``vggish_pca_params.npz``: ``pca_eigen_vectors`` (128, 128), ``pca_means`` (128,),
  calibrated on a few seeded clips so that the PCA output mostly lies inside [-2, 2];
- ``classifier_model.h5``: what Keras 2.2.4 ``model.save`` writes (``model_config`` /
  ``training_config`` JSON and ``keras_version`` / ``backend`` attributes, a
  ``model_weights`` group with ``layer_names`` and per-layer ``weight_names``, datasets at
  ``model_weights/<layer>/<layer>/<weight>:0``) for the upstream multi-level attention
  model, Lambda layers included (their code as base64 marshal, never executed);
- ``sha512sums.txt`` in MAX's own format (``<digest>  assets/<file>``).

The numpy functions below (log-mel from ``mel_features.py``, VGGish forward, PCA +
quantisation from ``vggish_postprocess.py``, MAX's sequence rule, a generic Keras-2
config interpreter for the classifier) share no code with ``factsheet.models.max_audio``.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import marshal
import os
from pathlib import Path

import numpy as np

VGGISH_CONVS = (("conv1", True), ("conv2", True), ("conv3/conv3_1", False), ("conv3/conv3_2", True),
                ("conv4/conv4_1", False), ("conv4/conv4_2", True))
VGGISH_FCS = ("fc1/fc1_1", "fc1/fc1_2", "fc2")
FULL_WIDTH = 64  # VGGish conv1 channels

# -------------------------------------------------------------------------------------------
# Upstream Lambda bodies: stored in the h5 as Keras 2 does (base64 of marshal), never called.
# -------------------------------------------------------------------------------------------
K = None  # stands for keras.backend in the upstream source; these functions are only marshalled


def attention_pooling(inputs, **kwargs):  # qiuqiangkong/audioset_classification keras/main.py
    [out, att] = inputs
    epsilon = 1e-7
    att = K.clip(att, epsilon, 1. - epsilon)
    normalized_att = att / K.sum(att, axis=1)[:, None, :]
    return K.sum(out * normalized_att, axis=1)


def pooling_shape(input_shape):
    if isinstance(input_shape, list):
        (sample_num, time_steps, freq_bins) = input_shape[0]
    else:
        (sample_num, time_steps, freq_bins) = input_shape
    return (sample_num, freq_bins)


def max_pooling(inputs, **kwargs):
    input = inputs[0]
    return K.max(input, axis=1)


def func_dump(func) -> list:
    """Keras 2.2.4 ``generic_utils.func_dump``: [base64(marshal(code)), defaults, closure]."""
    raw = marshal.dumps(func.__code__)
    return [codecs.encode(raw, "base64").decode("ascii"), func.__defaults__, None]


# -------------------------------------------------------------------------------------------
# Independent numpy reference of the MAX pipeline
# -------------------------------------------------------------------------------------------


def hertz_to_mel(f):
    return 1127.0 * np.log(1.0 + f / 700.0)


def mel_matrix(num_mel_bins=64, num_spectrogram_bins=257, sample_rate=16000, lower=125.0, upper=7500.0):
    """mel_features.spectrogram_to_mel_matrix (float64, DC bin zeroed)."""
    bins_mel = hertz_to_mel(np.linspace(0.0, sample_rate / 2.0, num_spectrogram_bins))
    edges = np.linspace(hertz_to_mel(lower), hertz_to_mel(upper), num_mel_bins + 2)
    m = np.empty((num_spectrogram_bins, num_mel_bins))
    for i in range(num_mel_bins):
        lo, center, hi = edges[i:i + 3]
        m[:, i] = np.maximum(0.0, np.minimum((bins_mel - lo) / (center - lo), (hi - bins_mel) / (hi - center)))
    m[0, :] = 0.0
    return m


def waveform_to_examples(x: np.ndarray) -> np.ndarray:
    """vggish_input.waveform_to_examples at 16 kHz: (n,) -> (n_examples, 96, 64) float64."""
    x = np.asarray(x, np.float64)
    n_frames = 1 + int(np.floor((len(x) - 400) / 160))
    frames = np.stack([x[i * 160:i * 160 + 400] for i in range(n_frames)])
    window = 0.5 - 0.5 * np.cos(2 * np.pi / 400 * np.arange(400))  # periodic Hann
    spec = np.abs(np.fft.rfft(frames * window, 512))
    log_mel = np.log(spec @ mel_matrix() + 0.01)
    n_examples = 1 + int(np.floor((n_frames - 96) / 96))
    return np.stack([log_mel[k * 96:(k + 1) * 96] for k in range(max(n_examples, 0))]) if n_examples > 0 \
        else np.zeros((0, 96, 64))


def read_checkpoint_arrays(path) -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(path))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def _conv3x3_same(x, w, b):
    n, h, wd, _ = x.shape
    pad = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((n, h, wd, w.shape[3]), x.dtype)
    for dy in range(3):
        for dx in range(3):
            out += pad[:, dy:dy + h, dx:dx + wd, :] @ w[dy, dx]
    return out + b


def vggish_forward(examples: np.ndarray, ckpt: dict, dtype=np.float64) -> np.ndarray:
    """vggish_slim: (n, 96, 64) -> (n, 128); ReLU everywhere, fc2 included; 2x2/2 max-pools."""
    x = np.asarray(examples, dtype)[..., None]
    for scope, pooled in VGGISH_CONVS:
        w = ckpt[f"vggish/{scope}/weights"].astype(dtype)
        x = np.maximum(_conv3x3_same(x, w, ckpt[f"vggish/{scope}/biases"].astype(dtype)), 0.0)
        if pooled:
            n, h, wd, c = x.shape
            x = x.reshape(n, h // 2, 2, wd // 2, 2, c).max(axis=(2, 4))
    x = x.reshape(x.shape[0], -1)
    for scope in VGGISH_FCS:
        x = np.maximum(x @ ckpt[f"vggish/{scope}/weights"].astype(dtype)
                       + ckpt[f"vggish/{scope}/biases"].astype(dtype), 0.0)
    return x


def pca_project(embeddings, eigen_vectors, means):
    """Postprocessor.postprocess up to the PCA: (n, 128) -> (n, 128) float64."""
    return np.dot(eigen_vectors, (np.asarray(embeddings).T - means.reshape(-1, 1))).T


def quantize(pca_applied):
    """Postprocessor.postprocess quantisation: clip [-2, 2], * 255/4, cast to uint8."""
    clipped = np.clip(pca_applied, -2.0, 2.0)
    return ((clipped - (-2.0)) * (255.0 / (2.0 - (-2.0)))).astype(np.uint8)


def max_sequence(embeddings):
    """ModelWrapper.classifier_pre_process with time_stamp 0, verbatim logic: (n, 128) uint8 -> (1, 10, 128) float32."""
    embeddings_len = embeddings.shape[0]
    if embeddings_len < 10:
        while embeddings_len < 10:
            embeddings = np.stack((embeddings, embeddings))
            embeddings_len = embeddings.size / 128
        embeddings = embeddings.reshape((int(embeddings_len), 128))
    embeddings = embeddings[0:10, :].reshape([1, 10, 128])
    return (np.float32(embeddings) - 128.) / 128.


def _act(x, name):
    if name == "linear":
        return x
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if name == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise ValueError(name)


def classifier_forward(h5_path, x: np.ndarray) -> np.ndarray:
    """Interpret the h5's model_config with numpy and its model_weights arrays (float64)."""
    import h5py

    with h5py.File(h5_path, "r") as f:
        raw = f.attrs["model_config"]
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        weights = {}
        for layer in config["config"]["layers"]:
            g = f["model_weights"][layer["name"]]
            weights[layer["name"]] = {n.decode().split("/")[-1].split(":")[0]: g[n.decode()][()].astype(np.float64)
                                      for n in g.attrs["weight_names"]}
    values = {}
    for layer in config["config"]["layers"]:
        kind, cfg, w = layer["class_name"], layer["config"], weights[layer["name"]]
        ins = [values[ref[0]] for ref in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        if kind == "InputLayer":
            out = np.asarray(x, np.float64)
        elif kind == "Dense":
            out = _act(ins[0] @ w["kernel"] + w.get("bias", 0.0), cfg["activation"])
        elif kind == "BatchNormalization":
            out = (ins[0] - w["moving_mean"]) / np.sqrt(w["moving_variance"] + cfg["epsilon"]) * w["gamma"] + w["beta"]
        elif kind == "Activation":
            out = _act(ins[0], cfg["activation"])
        elif kind == "Dropout":
            out = ins[0]
        elif kind == "Concatenate":
            out = np.concatenate(ins, axis=cfg["axis"])
        elif kind == "Lambda":  # the upstream attention pooling
            cla, att = ins
            att = np.clip(att, 1e-7, 1 - 1e-7)
            out = np.sum(cla * att / att.sum(axis=1, keepdims=True), axis=1)
        else:
            raise ValueError(kind)
        values[layer["name"]] = out
    return values[config["config"]["output_layers"][0][0]]


# -------------------------------------------------------------------------------------------
# Stand-in writers
# -------------------------------------------------------------------------------------------


def vggish_layout(width: int | None) -> tuple[list[int], list[int]]:
    """Conv channels and fc units: full VGGish for ``width=None`` (= 64), scaled otherwise."""
    w = FULL_WIDTH if width is None else int(width)
    return [w, 2 * w, 4 * w, 4 * w, 8 * w, 8 * w], [64 * w, 64 * w]


def write_v1_checkpoint(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A TF1 Saver checkpoint in the V1 format (one file), as vggish_model.ckpt is."""
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # the V1 writer logs a deprecation banner
    graph = tf.Graph()
    with graph.as_default():
        variables, feeds = [], {}
        for name, value in arrays.items():
            var = tf.compat.v1.get_variable(name, shape=value.shape, dtype=tf.float32,
                                            initializer=tf.compat.v1.zeros_initializer())
            ph = tf.compat.v1.placeholder(tf.float32, value.shape)
            variables.append(var.assign(ph))
            feeds[ph] = value
        saver = tf.compat.v1.train.Saver(write_version=tf.compat.v1.train.SaverDef.V1)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(variables, feed_dict=feeds)
            saver.save(sess, str(Path(path).resolve()), write_meta_graph=False, write_state=False)


def _vggish_arrays(rng, width):
    convs, fcs = vggish_layout(width)
    arrays, fan_in = {}, 1
    for (scope, _), c in zip(VGGISH_CONVS, convs):
        arrays[f"vggish/{scope}/weights"] = (rng.standard_normal((3, 3, fan_in, c)) * np.sqrt(2.0 / (9 * fan_in)))
        arrays[f"vggish/{scope}/biases"] = rng.normal(0.0, 0.05, c)
        fan_in = c
    fan_in = 6 * 4 * convs[-1]
    for scope, units in zip(VGGISH_FCS, [*fcs, 128]):
        arrays[f"vggish/{scope}/weights"] = rng.standard_normal((fan_in, units)) * np.sqrt(2.0 / fan_in)
        arrays[f"vggish/{scope}/biases"] = rng.normal(0.05, 0.05, units)
        fan_in = units
    return {k: v.astype(np.float32) for k, v in arrays.items()}


def calibration_clips(seed: int) -> list[np.ndarray]:
    """Seeded 16 kHz clips of varied content (noise at three levels, tones, a chirp), 2 s each."""
    rng = np.random.default_rng(seed + 1000)
    t = np.arange(32000) / 16000.0
    return [0.3 * rng.standard_normal(32000), 0.01 * rng.standard_normal(32000), 0.5 * np.sin(2 * np.pi * 440 * t),
            0.2 * np.sin(2 * np.pi * (200 + 1500 * t) * t) + 0.02 * rng.standard_normal(32000),
            0.4 * np.sign(np.sin(2 * np.pi * 3 * t)) * rng.standard_normal(32000)]


def _pca_params(rng, ckpt, seed):
    examples = np.concatenate([waveform_to_examples(c) for c in calibration_clips(seed)])
    emb = vggish_forward(examples, ckpt, dtype=np.float32).astype(np.float64)
    means = emb.mean(axis=0)
    q, _ = np.linalg.qr(rng.standard_normal((128, 128)))
    proj = (emb - means) @ q
    spread = np.maximum(proj.std(axis=0), 1e-3 * max(np.abs(emb).mean(), 1e-6))
    eigen_vectors = (q / (1.5 * spread)).T  # rows = components; projected std ~ 0.67
    return eigen_vectors, means


def _dense_config(name, units, activation, regularizer=None):
    return {"name": name, "trainable": True, "units": units, "activation": activation, "use_bias": True,
            "kernel_initializer": {"class_name": "VarianceScaling",
                                   "config": {"scale": 1.0, "mode": "fan_avg", "distribution": "uniform",
                                              "seed": None}},
            "bias_initializer": {"class_name": "Zeros", "config": {}},
            "kernel_regularizer": regularizer, "bias_regularizer": None, "activity_regularizer": None,
            "kernel_constraint": None, "bias_constraint": None}


def _bn_config(name):
    return {"name": name, "trainable": True, "axis": -1, "momentum": 0.99, "epsilon": 0.001, "center": True,
            "scale": True, "beta_initializer": {"class_name": "Zeros", "config": {}},
            "gamma_initializer": {"class_name": "Ones", "config": {}},
            "moving_mean_initializer": {"class_name": "Zeros", "config": {}},
            "moving_variance_initializer": {"class_name": "Ones", "config": {}},
            "beta_regularizer": None, "gamma_regularizer": None, "beta_constraint": None, "gamma_constraint": None}


class _Keras2Graph:
    """Collects layers as Keras 2.2.4 ``Network.get_config`` lists them, with their weights."""

    _prefix = {"Dense": "dense", "BatchNormalization": "batch_normalization", "Activation": "activation",
               "Dropout": "dropout", "Lambda": "lambda", "Concatenate": "concatenate", "InputLayer": "input"}

    def __init__(self, rng):
        self.rng = rng
        self.layers, self.weights, self.uid = [], {}, {}
        self.widths = {}

    def add(self, kind, inputs, name=None, **settings):
        prefix = self._prefix[kind]
        if name is None:
            self.uid[prefix] = self.uid.get(prefix, 0) + 1
            name = f"{prefix}_{self.uid[prefix]}"
        rng, width = self.rng, (self.widths[inputs[0]] if inputs else settings["features"])
        weights = []
        if kind == "InputLayer":
            config = {"batch_input_shape": [None, settings["time_steps"], width], "dtype": "float32",
                      "sparse": False, "name": name}
        elif kind == "Dense":
            units = settings["units"]
            config = _dense_config(name, units, settings.get("activation", "linear"), settings.get("regularizer"))
            scale = settings.get("scale", np.sqrt(2.0 / width))
            weights = [("kernel", rng.standard_normal((width, units)) * scale),
                       ("bias", rng.normal(settings.get("bias", 0.0), 0.1, units))]
            width = units
        elif kind == "BatchNormalization":
            config = _bn_config(name)
            weights = [("gamma", rng.uniform(0.8, 1.2, width)), ("beta", rng.normal(0.0, 0.1, width)),
                       ("moving_mean", rng.normal(0.0, 0.1, width)), ("moving_variance", rng.uniform(0.5, 1.5, width))]
        elif kind == "Activation":
            config = {"name": name, "trainable": True, "activation": settings["activation"]}
        elif kind == "Dropout":
            config = {"name": name, "trainable": True, "rate": settings["rate"], "noise_shape": None, "seed": None}
        elif kind == "Concatenate":
            config = {"name": name, "trainable": True, "axis": settings["axis"]}
            width = sum(self.widths[i] for i in inputs)
        elif kind == "Lambda":
            config = {"name": name, "trainable": True, "function": func_dump(settings["function"]),
                      "function_type": "lambda", "output_shape": func_dump(pooling_shape),
                      "output_shape_type": "lambda", "arguments": {}}
        self.layers.append({"name": name, "class_name": kind, "config": config,
                            "inbound_nodes": [[[i, 0, 0, {}] for i in inputs]] if inputs else []})
        self.weights[name] = [(f"{name}/{w}:0", np.asarray(v, np.float32)) for w, v in weights]
        self.widths[name] = width
        return name

    def model_config(self, inp, out):
        return {"class_name": "Model", "config": {"name": "model_1", "layers": self.layers,
                                                  "input_layers": [[inp, 0, 0]], "output_layers": [[out, 0, 0]]}}


def classifier_graph(rng, *, variant: str, n_classes: int, hidden: int | None,
                     time_steps: int = 10) -> tuple[dict, dict]:
    """The multi-level attention classifier as the upstream code builds it.

    ``variant="kong"``: qiuqiangkong/audioset_classification keras/main.py,
    ``decision_level_multi_attention`` (3 x [Dense 1024, BN, ReLU, Dropout 0.5]; on blocks 2
    and 3 a sigmoid Dense and a softmax Dense pooled by the attention Lambda; Concatenate;
    Dense; sigmoid). ``variant="yu"``: Yu's Eusipco 2018 code (input BN; Dense 600, BN,
    ReLU, Dropout 0.4; BN after every head Dense; block 3 first in the Concatenate).
    """
    g = _Keras2Graph(rng)
    inp = g.add("InputLayer", [], features=128, time_steps=time_steps)
    x = inp
    if variant == "kong":
        hidden, rate = hidden or 1024, 0.5
    elif variant == "yu":
        hidden, rate = hidden or 600, 0.4
        x = g.add("BatchNormalization", [x])
    else:
        raise ValueError(variant)
    reg = None if variant == "kong" else {"class_name": "L1L2", "config": {"l1": 0.0, "l2": 0.0010000000474974513}}
    blocks = []
    for _ in range(3):
        x = g.add("Dense", [x], units=hidden, regularizer=reg)
        x = g.add("BatchNormalization", [x])
        x = g.add("Activation", [x], activation="relu")
        x = g.add("Dropout", [x], rate=rate)
        blocks.append(x)
    head_scale = 3.0 / np.sqrt(hidden)
    pooled = []
    if variant == "kong":
        for block in (blocks[1], blocks[2]):
            cla = g.add("Dense", [block], units=n_classes, activation="sigmoid", scale=head_scale)
            att = g.add("Dense", [block], units=n_classes, activation="softmax", scale=head_scale)
            pooled.append(g.add("Lambda", [cla, att], function=attention_pooling))
        b1 = g.add("Concatenate", pooled, axis=-1)
        b1 = g.add("Dense", [b1], units=n_classes, scale=2.0 / np.sqrt(2 * n_classes), bias=-1.0)
        out = g.add("Activation", [b1], activation="sigmoid")
    else:
        for block, (cname, aname) in ((blocks[2], ("cla_1", "att_1")), (blocks[1], ("cla_2", "att2"))):
            cla = g.add("Dense", [block], name=cname, units=n_classes, regularizer=None, scale=head_scale)
            cla = g.add("BatchNormalization", [cla])
            cla = g.add("Activation", [cla], activation="sigmoid")
            att = g.add("Dense", [block], name=aname, units=n_classes, scale=head_scale)
            att = g.add("BatchNormalization", [att])
            att = g.add("Activation", [att], activation="softmax")
            pooled.append(g.add("Lambda", [cla, att], function=attention_pooling))
        b1 = g.add("Concatenate", pooled, axis=1)
        b1 = g.add("Dense", [b1], name="output", units=n_classes, scale=2.0 / np.sqrt(2 * n_classes), bias=-1.0)
        b1 = g.add("BatchNormalization", [b1])
        out = g.add("Activation", [b1], activation="sigmoid")
    return g.model_config(inp, out), g.weights


def write_keras2_h5(path: Path, model_config: dict, weights: dict, *, keras_version: str = "2.2.4") -> None:
    """Write what Keras 2.2.4 ``saving._serialize_model`` writes through its H5Dict (h5py 2.x era)."""
    import h5py

    layer_names = [layer["name"] for layer in model_config["config"]["layers"]]
    training = {"optimizer_config": {"class_name": "Adam",
                                     "config": {"lr": 0.0010000000474974513, "beta_1": 0.8999999761581421,
                                                "beta_2": 0.9990000128746033, "decay": 0.0, "epsilon": 1e-07,
                                                "amsgrad": False}},
                "loss": "binary_crossentropy", "metrics": [], "sample_weight_mode": None, "loss_weights": None}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = np.bytes_(keras_version.encode())
        f.attrs["backend"] = np.bytes_(b"tensorflow")
        f.attrs["model_config"] = np.bytes_(json.dumps(model_config).encode("utf-8"))
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = np.array([n.encode("utf8") for n in layer_names])
        group.attrs["backend"] = np.bytes_(b"tensorflow")
        group.attrs["keras_version"] = np.bytes_(keras_version.encode())
        for name in layer_names:
            layer_group = group.create_group(name)
            pairs = weights.get(name, [])
            layer_group.attrs["weight_names"] = np.array([w.encode("utf8") for w, _ in pairs]) if pairs else []
            for wname, value in pairs:
                layer_group.create_dataset(wname, data=value)
        f.attrs["training_config"] = np.bytes_(json.dumps(training).encode("utf8"))


def write_sha512sums(folder: Path, names=("classifier_model.h5", "vggish_model.ckpt", "vggish_pca_params.npz")) -> None:
    """MAX's sha512sums.txt: ``<hex>  assets/<file>`` lines, no trailing newline."""
    lines = []
    for name in names:
        digest = hashlib.sha512(Path(folder, name).read_bytes()).hexdigest()
        lines.append(f"{digest}  assets/{name}")
    Path(folder, "sha512sums.txt").write_text("\n".join(lines), encoding="utf-8")


def make_standin_assets(folder, *, seed: int = 0, width: int | None = 4, n_classes: int = 527,
                        variant: str = "kong", hidden: int | None = None) -> dict[str, Path]:
    """Write stand-in MAX assets of the real formats into ``folder``.

    Parameters
    ----------
    folder : str or Path
        Created if missing.
    seed : int
        Seeds every weight.
    width : int or None
        VGGish conv1 channels (others scale as 64:128:256:256:512:512, fc = 64 * width);
        ``None`` = the full VGGish (64; about 72 M parameters, a 288 MB checkpoint).
    n_classes : int
        Classifier outputs (AudioSet: 527).
    variant : {"kong", "yu"}
        Which upstream multi-level attention code builds the classifier.
    hidden : int or None
        Hidden units of the classifier (None: the variant's own, 1024 or 600).

    Returns
    -------
    dict of str to Path
        ``checkpoint``, ``pca``, ``classifier``, ``sums`` and ``folder``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ckpt = _vggish_arrays(rng, width)
    write_v1_checkpoint(folder / "vggish_model.ckpt", ckpt)
    eigen_vectors, means = _pca_params(rng, ckpt, seed)
    np.savez(folder / "vggish_pca_params.npz", pca_eigen_vectors=eigen_vectors, pca_means=means)
    config, weights = classifier_graph(rng, variant=variant, n_classes=n_classes, hidden=hidden)
    write_keras2_h5(folder / "classifier_model.h5", config, weights)
    write_sha512sums(folder)
    return {"folder": folder, "checkpoint": folder / "vggish_model.ckpt", "pca": folder / "vggish_pca_params.npz",
            "classifier": folder / "classifier_model.h5", "sums": folder / "sha512sums.txt"}


if __name__ == "__main__":  # python tests/_max_assets.py OUT_DIR [width|full]
    import sys

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    w = None if len(sys.argv) > 2 and sys.argv[2] == "full" else int(sys.argv[2]) if len(sys.argv) > 2 else 4
    print(make_standin_assets(sys.argv[1], width=w))
