"""The demo classifier (and tiny models) written in every file format the harness loads, for the source tests.

Each exporter writes a real file of its format with the format's own tools: tf2onnx for ONNX
(from the frozen TensorFlow graph), the TFLite converter, ``tf.saved_model.save``, and the
``onnx`` helper API for tiny hand-built graphs whose output a test recomputes in numpy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def frozen_function(keras_model, *, n_samples: int, batch: int | None):
    """The model as a concrete TF function with its weights folded into constants."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec((batch, n_samples), tf.float32, name="waveform")
    fn = tf.function(lambda w: keras_model(w, training=False), input_signature=[spec])
    return convert_variables_to_constants_v2(fn.get_concrete_function())


def export_onnx(keras_model, path: Path, *, n_samples: int, batch: int | None = 1) -> Path:
    """ONNX via tf2onnx from the frozen graph (the demo's RFFT converts only with a fixed batch)."""
    import tf2onnx

    cf = frozen_function(keras_model, n_samples=n_samples, batch=batch)
    tf2onnx.convert.from_graph_def(cf.graph.as_graph_def(), input_names=[cf.inputs[0].name],
                                   output_names=[cf.outputs[0].name], opset=17, output_path=str(path))
    return path


def export_tflite(keras_model, path: Path, *, n_samples: int) -> Path:
    """TFLite flatbuffer from the frozen graph (dynamic batch); weights are constants, not resource variables."""
    import warnings

    import tensorflow as tf

    cf = frozen_function(keras_model, n_samples=n_samples, batch=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converter = tf.lite.TFLiteConverter.from_concrete_functions([cf])
        path.write_bytes(converter.convert())
    return path


def export_savedmodel(keras_model, folder: Path, *, n_samples: int, frame_samples: int | None = None,
                      with_signature: bool = True) -> Path:
    """A SavedModel with signature ``serving_default``.

    ``frame_samples=None``: input ``waveform`` (batch, n_samples), output ``scores``.
    Otherwise YAMNet-style: input one 1-D clip of any length, outputs ``scores`` (frames,
    n_classes) -- the model on consecutive non-overlapping frames -- and ``embedding``
    (frames, 3), so the scores must be picked by their class count and pooled.
    """
    import tensorflow as tf

    module = tf.Module()
    module.model = keras_model
    if frame_samples is None:
        spec = tf.TensorSpec((None, n_samples), tf.float32, name="waveform")
        module.serve = tf.function(lambda waveform: {"scores": keras_model(waveform, training=False)},
                                   input_signature=[spec])
    else:
        spec = tf.TensorSpec((None,), tf.float32, name="waveform")

        def serve(waveform):
            n_frames = tf.shape(waveform)[0] // frame_samples
            frames = tf.reshape(waveform[: n_frames * frame_samples], (n_frames, frame_samples))
            scores = keras_model(frames, training=False)
            return {"scores": scores, "embedding": tf.stack([tf.reduce_mean(frames, axis=1)] * 3, axis=1)}

        module.serve = tf.function(serve, input_signature=[spec])
    if not with_signature:
        fn = module.serve
        module.__call__ = tf.function(lambda waveform: tuple(fn(waveform).values()),
                                      input_signature=[tf.TensorSpec(spec.shape, tf.float32)])
        tf.saved_model.save(module, str(folder))
        return folder
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


def tiny_frame_weights(*, n_classes: int, frame: int, seed: int = 0) -> np.ndarray:
    """Weights (frame, n_classes) of the tiny per-frame logit model."""
    return np.random.default_rng(seed).normal(0, 0.5, (frame, n_classes)).astype(np.float32)


def tiny_frame_logits(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Numpy reference of the tiny model: (batch, n) -> (batch, n // frame, n_classes) logits = frames @ W."""
    frame = weights.shape[0]
    b, n = x.shape
    frames = x[:, : (n // frame) * frame].reshape(b, n // frame, frame)
    return frames @ weights


def export_tiny_onnx(path: Path, *, weights: np.ndarray, n_samples: int, layout: str = "batch,1,samples",
                     extra_input: bool = False, extra_output: bool = True, embedding_dim: int = 2,
                     mask_input: bool = False) -> Path:
    """A hand-built ONNX graph: waveform -> per-frame logits (batch, frames, n_classes) by one MatMul.

    ``layout`` "batch,1,samples" takes (batch, 1, n) like many PyTorch exports; "batch,samples"
    takes (batch, n). Dynamic batch. ``extra_output`` adds an "embedding" output (batch, frames, 2).
    ``extra_input`` adds a second input (a sample rate), which the harness must refuse;
    ``mask_input`` an int64 ``attention_mask`` (batch, n) multiplied into the audio, as Hugging Face exports have.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    frame, n_classes = weights.shape
    n_frames = n_samples // frame
    shape_in = ["batch", 1, n_samples] if layout == "batch,1,samples" else ["batch", n_samples]
    inputs = [helper.make_tensor_value_info("audio", TensorProto.FLOAT, shape_in)]
    if extra_input:
        inputs.append(helper.make_tensor_value_info("sample_rate", TensorProto.INT64, [1]))
    outputs = [helper.make_tensor_value_info("framewise_logits", TensorProto.FLOAT, ["batch", n_frames, n_classes])]
    inits = [numpy_helper.from_array(weights, "W"),
             numpy_helper.from_array(np.array([0, n_frames, frame], np.int64), "frames_shape"),
             numpy_helper.from_array(np.array([0], np.int64), "start"),
             numpy_helper.from_array(np.array([n_frames * frame], np.int64), "stop"),
             numpy_helper.from_array(np.array([-1], np.int64), "last_axis"),
             numpy_helper.from_array(np.array([0, n_samples], np.int64), "flat_shape")]
    nodes = [helper.make_node("Reshape", ["audio", "flat_shape"], ["flat_audio" if mask_input else "flat"]),
             helper.make_node("Slice", ["flat", "start", "stop", "last_axis"], ["cut"]),
             helper.make_node("Reshape", ["cut", "frames_shape"], ["frames"]),
             helper.make_node("MatMul", ["frames", "W"], ["framewise_logits"])]
    if mask_input:
        inputs.append(helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", n_samples]))
        nodes[:0] = [helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT)]
        nodes.insert(2, helper.make_node("Mul", ["flat_audio", "mask_f"], ["flat"]))
    if extra_output:
        inits.append(numpy_helper.from_array(np.ones((frame, embedding_dim), np.float32) / frame, "E"))
        nodes.append(helper.make_node("MatMul", ["frames", "E"], ["embedding"]))
        outputs.append(helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", n_frames, embedding_dim]))
    graph = helper.make_graph(nodes, "tiny_framewise", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="audio-factsheet tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def export_int8_tflite(path: Path, *, n_samples: int = 4000, n_classes: int = 5, seed: int = 0):
    """A tiny fully int8-quantised TFLite model (int8 input and output, calibrated on uniform noise) and
    the float Keras model it was converted from: (batch, n) -> frames of 400 -> Dense -> mean -> sigmoid."""
    import warnings

    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    inp = keras.Input((n_samples,))
    x = keras.layers.Reshape((n_samples // 400, 400))(inp)
    x = keras.layers.Dense(n_classes)(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inp, keras.layers.Activation("sigmoid")(x))
    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(50):
            yield [rng.uniform(-1, 1, (1, n_samples)).astype(np.float32)]

    cf = frozen_function(model, n_samples=n_samples, batch=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conv = tf.lite.TFLiteConverter.from_concrete_functions([cf])
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        path.write_bytes(conv.convert())
    return path, model
