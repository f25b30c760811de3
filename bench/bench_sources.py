"""Overhead of the harness's model sources: ``LoadedModel.forward`` vs the runtime called directly.

The demo classifier (2 s clips, 32 000 samples at 16 kHz, 14 classes) is written to a temporary
folder as ONNX (fixed batch 1, via tf2onnx), TFLite (dynamic batch) and a SavedModel, next to a
copy of its ``.keras`` file and a Python entry file (exporters of ``tests/_model_formats.py``);
nothing is written into the repository. Each model is loaded twice: once through
``factsheet.models.adapter.load_model`` (``threads = --threads``, ``[model] batch_size = --batch``), once
with its own runtime, called the way a user would call it directly:

* ``default`` (Keras): a ``tf.function`` with a ``(None, n)`` float32 input signature around
  the same ``keras_model(x, training=False)``, then ``.numpy()``;
* ``onnx``: an ``onnxruntime.InferenceSession`` (CPU, 1 intra-op and 1 inter-op thread), one
  ``session.run`` per clip, the export being fixed to batch 1;
* ``tflite``: a LiteRT ``Interpreter(num_threads=1)``; ``resize_tensor_input`` +
  ``allocate_tensors`` only when the batch shape changes, then ``set_tensor``, ``invoke``,
  ``get_tensor``;
* ``savedmodel``: the ``serving_default`` signature function called with ``tf.constant(x)``;
* ``python``: the forward function returned by the entry's factory, called as is.

Both sides use 1 intra-op thread (``--threads``): TensorFlow's intra/inter-op settings are per process (set to 1
before its first op), so the default, savedmodel and python rows share them by construction; ONNX
Runtime sessions and LiteRT interpreters get 1 thread each. Two regimes, as HopSkipJump uses a model:

(a) single clips: ``--singles`` clips of batch 1, ``--repeats`` passes (its binary-search and
    step-size queries). Harness and direct calls alternate call by call, which side goes first
    flipping every call; times are per call.
(b) batches: ``--clips`` clips per block, cut into the chunks the harness's adapter makes
    (``[model] batch_size``, the fixed batch of the ONNX export, or the whole block where the
    source does not split); the direct side loops over the same chunks and concatenates.
    ``--blocks`` blocks per side, alternating, the order flipping every block.

Every side runs once untimed first (tracing, tensor allocation, the first resize). The table
shows the median time per clip of each side; the ratio harness / direct as the median over
adjacent (harness, direct) pairs, which cancels load that drifts between pairs (target <= 1.1);
the largest absolute difference between the harness's and the direct scores on the same clips;
and the adapter's own cost (a copy of the source's ``AdaptedForward`` around a runtime that
returns zeros). Ratios, never absolute times, are what to compare across machines. Not a test:
figures go in the report.

    .venv/bin/python bench/bench_sources.py [--quick] [--singles 200] [--repeats 5] [--clips 64]
                                            [--blocks 15] [--batch 16] [--sources onnx tflite ...]
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the exporters in tests/_model_formats.py

SOURCES = ("default", "onnx", "tflite", "savedmodel", "python")
TARGET = 1.1

PYTHON_ENTRY = '''
import numpy as np
from factsheet.models.adapter import load_keras_model

def make_forward(path, clip_samples):
    """Factory: the demo model's forward, from the .keras file given as [model] path."""
    import tensorflow as tf
    model = load_keras_model(path)
    fn = tf.function(lambda x: model(x, training=False),
                     input_signature=[tf.TensorSpec((None, clip_samples), tf.float32)])
    return lambda x: fn(np.asarray(x, np.float32)).numpy()
'''


def set_tf_threads(threads: int) -> None:
    """Intra- and inter-op threads of this process's TensorFlow (before its first op)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def export_all(folder: Path, keras_model, n: int) -> dict[str, Path]:
    """The demo model in every file format, written under ``folder``; returns the paths."""
    from _model_formats import export_onnx, export_savedmodel, export_tflite

    from factsheet.models.adapter import DEFAULT_LABELS, DEFAULT_MODEL

    shutil.copy(DEFAULT_LABELS, folder / "labels.csv")
    shutil.copy(DEFAULT_MODEL, folder / "demo.keras")
    (folder / "entry.py").write_text(PYTHON_ENTRY, encoding="utf-8")
    export_onnx(keras_model, folder / "demo_b1.onnx", n_samples=n, batch=1)
    export_tflite(keras_model, folder / "demo.tflite", n_samples=n)
    export_savedmodel(keras_model, folder / "demo_savedmodel", n_samples=n)
    return {"labels": folder / "labels.csv", "keras": folder / "demo.keras", "entry": folder / "entry.py",
            "onnx": folder / "demo_b1.onnx", "tflite": folder / "demo.tflite",
            "savedmodel": folder / "demo_savedmodel"}


def harness_model(source: str, files: dict[str, Path], *, batch: int, threads: int):
    """The harness's LoadedModel for ``source``."""
    from factsheet.config import ModelConfig
    from factsheet.models.adapter import load_model

    if source == "default":
        cfg = ModelConfig(source="default", batch_size=batch)
    elif source == "python":
        cfg = ModelConfig(source="python", entry=f"{files['entry']}:make_forward", path=files["keras"],
                          class_labels=files["labels"], clip_seconds=2.0, batch_size=batch)
    else:
        cfg = ModelConfig(source=source, path=files[source], class_labels=files["labels"], batch_size=batch)
    return load_model(cfg, threads=threads)


def direct_call(source: str, files: dict[str, Path], *, n: int, threads: int, keras_model):
    """The runtime called directly on one chunk ``(b, n)`` float32 -> ``(b, n_classes)``."""
    if source == "default":
        import tensorflow as tf

        @tf.function(input_signature=[tf.TensorSpec((None, n), tf.float32)])
        def fn(x):
            return keras_model(x, training=False)

        return lambda x: fn(x).numpy()
    if source == "onnx":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(files["onnx"]), sess_options=opts, providers=["CPUExecutionProvider"])
        in_name, out_name = sess.get_inputs()[0].name, sess.get_outputs()[0].name
        return lambda x: sess.run([out_name], {in_name: x})[0]
    if source == "tflite":
        from ai_edge_litert.interpreter import Interpreter

        interp = Interpreter(model_path=str(files["tflite"]), num_threads=threads)
        interp.allocate_tensors()
        i_idx = interp.get_input_details()[0]["index"]
        o_idx = interp.get_output_details()[0]["index"]
        shape = [tuple(interp.get_input_details()[0]["shape"])]

        def call(x):
            if x.shape != shape[0]:
                interp.resize_tensor_input(i_idx, list(x.shape))
                interp.allocate_tensors()
                shape[0] = x.shape
            interp.set_tensor(i_idx, x)
            interp.invoke()
            return interp.get_tensor(o_idx)

        return call
    if source == "savedmodel":
        import tensorflow as tf

        sig = tf.saved_model.load(str(files["savedmodel"])).signatures["serving_default"]
        return lambda x: sig(waveform=tf.constant(x))["scores"].numpy()
    if source == "python":
        spec = importlib.util.spec_from_file_location("_bench_sources_entry", files["entry"])
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.make_forward(path=files["keras"], clip_samples=n)
    raise ValueError(source)


def harness_chunk(forward, n_clips: int) -> int:
    """Clips per runtime call that the harness's adapter makes of an ``n_clips`` batch."""
    contract = getattr(forward, "contract", None)
    fixed = getattr(contract, "fixed_batch", None)
    return fixed or getattr(forward, "max_batch", None) or n_clips


def direct_batches(call, x: np.ndarray, step: int) -> np.ndarray:
    """The direct side of regime (b): the same chunks the harness makes, concatenated."""
    return np.concatenate([call(x[s:s + step]) for s in range(0, x.shape[0], step)])


def interleaved_calls(harness, direct, clips: np.ndarray,
                      passes: int) -> tuple[list[float], list[float], np.ndarray, np.ndarray]:
    """Regime (a): seconds of every single-clip call of each side, the two sides alternating call by call.

    Which side goes first flips with every clip and every pass, so drift and the cache state a
    call leaves behind fall on both sides alike. Returns the outputs of the last pass too.
    """
    harness(clips[0])
    direct(clips[0])  # warm-up: tracing, allocation
    th, td, out_h, out_d = [], [], [], []
    for p in range(passes):
        out_h, out_d = [], []
        for i, x in enumerate(clips):
            for fn, times, outs in (((harness, th, out_h), (direct, td, out_d)) if (i + p) % 2 == 0
                                    else ((direct, td, out_d), (harness, th, out_h))):
                t = time.perf_counter()
                y = fn(x)
                times.append(time.perf_counter() - t)
                outs.append(y)
    return th, td, np.concatenate(out_h), np.concatenate(out_d)


def alternating_blocks(harness, direct, blocks: int) -> tuple[list[float], list[float]]:
    """Regime (b): seconds of each side's whole-batch block, alternating which runs first every block."""
    harness()
    direct()  # warm-up: tracing, allocation, the first resize
    th, td = [], []
    for r in range(blocks):
        for fn, times in ((harness, th), (direct, td)) if r % 2 == 0 else ((direct, td), (harness, th)):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return th, td


def paired_ratio(th: list[float], td: list[float]) -> float:
    """Median of harness / direct over the adjacent pairs: robust to load that drifts between pairs."""
    return statistics.median(h / d for h, d in zip(th, td))


def adapter_only(forward, n_classes: int, x1: np.ndarray, xb: np.ndarray, calls: int = 2000) -> tuple[float, float]:
    """Seconds per single-clip call and per batch call of the harness's AdaptedForward alone.

    A copy of the source's adapter (same contract, batch split, output mapping) around a runtime
    that returns zeros: what the harness adds to each call, free of the model's own time.
    """
    fake = copy.copy(forward)
    fake.run = lambda x: np.zeros((x.shape[0], n_classes), np.float32)
    t = time.perf_counter()
    for _ in range(calls):
        fake(x1)
    single = (time.perf_counter() - t) / calls
    t = time.perf_counter()
    for _ in range(calls // 10):
        fake(xb)
    return single, (time.perf_counter() - t) / (calls // 10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--singles", type=int, default=200, help="distinct clips of regime (a), one call each")
    ap.add_argument("--repeats", type=int, default=5, help="passes over the single clips in regime (a)")
    ap.add_argument("--clips", type=int, default=64, help="clips per block in regime (b)")
    ap.add_argument("--blocks", type=int, default=15, help="timed blocks per side in regime (b)")
    ap.add_argument("--batch", type=int, default=16, help="chunk size in regime (b) ([model] batch_size)")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads of every runtime, both sides")
    ap.add_argument("--sources", nargs="+", default=list(SOURCES), choices=SOURCES)
    ap.add_argument("--quick", action="store_true", help="100 single clips x 2 passes, 7 blocks of 32 clips")
    args = ap.parse_args()
    if args.quick:
        args.singles, args.repeats, args.clips, args.blocks = 100, 2, 32, 7

    set_tf_threads(args.threads)
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # tf2onnx's deprecation notices
    from factsheet.models.adapter import load_default_model

    demo = load_default_model()
    n = demo.clip_samples
    rng = np.random.default_rng(0)
    singles = rng.uniform(-0.5, 0.5, (args.singles, 1, n)).astype(np.float32)
    batch = rng.uniform(-0.5, 0.5, (args.clips, n)).astype(np.float32)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, numpy {np.__version__}")
    print(f"demo model: {n} samples per clip, {demo.n_classes} classes; {args.threads} intra-op thread(s) on both "
          f"sides;\n(a) {args.singles} single clips x {args.repeats} passes, the two sides alternating call by call, "
          f"median per call;\n(b) {args.blocks} alternating blocks of {args.clips} clips in chunks of {args.batch} "
          f"or as the harness's adapter splits them, median per block / {args.clips}")
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="bench_sources_") as tmp:
        t0 = time.perf_counter()
        files = export_all(Path(tmp), demo.keras_model, n)
        print(f"exported ONNX, TFLite, SavedModel to a temporary folder in {time.perf_counter() - t0:.1f} s\n")
        for source in args.sources:
            model = harness_model(source, files, batch=args.batch, threads=args.threads)
            call = direct_call(source, files, n=n, threads=args.threads,
                               keras_model=model.keras_model if model.keras_model is not None else demo.keras_model)
            step = harness_chunk(model.forward, args.clips)
            if step not in (args.batch, 1):
                notes.append(f"{source}: the harness's adapter calls the runtime with {step} clips at once "
                             f"(it does not split by [model] batch_size = {args.batch}); the direct side does the same")
            forward = model.forward

            # (a) single clips, call by call
            th, td, yh, yd = interleaved_calls(forward, call, singles, args.repeats)
            a1, ab = adapter_only(forward, model.n_classes, singles[0], batch)
            rows.append((source, f"single x{args.singles}", statistics.median(th), statistics.median(td),
                         paired_ratio(th, td), float(np.max(np.abs(yh - yd))), a1))

            # (b) batches, block by block
            out = {}

            def h_batch():
                out["h"] = forward(batch)

            def d_batch():
                out["d"] = direct_batches(call, batch, step)

            th, td = alternating_blocks(h_batch, d_batch, args.blocks)
            rows.append((source, f"{args.clips} in {step}s", statistics.median(th) / args.clips,
                         statistics.median(td) / args.clips, paired_ratio(th, td),
                         float(np.max(np.abs(out["h"] - out["d"]))), ab / args.clips))

    head = (f"{'source':<12}{'regime':<13}{'harness ms/clip':>16}{'direct ms/clip':>15}{'ratio':>7}"
            f"{'max|diff|':>11}{'adapter us/clip':>17}")
    print(head)
    print("-" * len(head))
    over = []
    for source, regime, h, d, ratio, diff, adapter in rows:
        flag = "" if ratio <= TARGET else "  > target"
        if flag:
            over.append(f"{source} {regime}")
        print(f"{source:<12}{regime:<13}{h * 1e3:>16.3f}{d * 1e3:>15.3f}{ratio:>7.3f}{diff:>11.1e}"
              f"{adapter * 1e6:>17.1f}{flag}")
    print(f"\nratio = median over adjacent (harness, direct) pairs of harness / direct (target <= {TARGET});\n"
          f"max|diff| = largest absolute difference of the scores; adapter = the source's AdaptedForward alone, "
          f"around a runtime returning zeros.\n"
          + (f"over target: {', '.join(over)}" if over else "every source within target"))
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
