"""Train the demo classifier deterministically on the synthetic TRAIN split (``make model``).

Writes ``demo_classifier.keras`` (Keras 3, loads with safe_mode), ``demo_classifier.json``
(training config, training-data card, the metrics it reached on the EVAL split) and
``class_labels_indices.csv`` into the output folder.

    python -m factsheet.models.train --out factsheet/models/default
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

TRAINING_CONFIG = {
    "train_split": {"split": "train", "n_clips": 4000, "seed": 7, "min_seconds": 1.0, "max_seconds": 2.0},
    "eval_split": {"split": "eval", "n_clips": 600, "seed": 1, "min_seconds": 1.0, "max_seconds": 2.0},
    "sample_rate": 16000,
    "clip_samples": 32000,
    "seed": 0,
    "epochs": 24,
    "batch_size": 64,
    "learning_rate": 0.002,
    "loss": "binary_crossentropy",
    "optimizer": "adam",
    "length_policy": "repeat short clips, cut long ones, to clip_samples",
}


def _dataset(spec: dict, *, sample_rate: int):
    from factsheet.datasets.synthetic import make_synthetic

    return make_synthetic(split=spec["split"], n_clips=spec["n_clips"], seed=spec["seed"], sample_rate=sample_rate,
                          min_seconds=spec["min_seconds"], max_seconds=spec["max_seconds"])


def train(*, out_dir: Path, config: dict = TRAINING_CONFIG, verbose: int = 2) -> dict:
    """Train, save and evaluate; returns the record written to ``demo_classifier.json``."""
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    import keras
    import tensorflow as tf

    from factsheet.datasets.base import fit_length, write_class_labels
    from factsheet.metrics import tagging_metrics
    from factsheet.models.architecture import build_classifier

    keras.utils.set_random_seed(config["seed"])
    tf.config.experimental.enable_op_determinism()
    t0 = time.perf_counter()
    train_ds = _dataset(config["train_split"], sample_rate=config["sample_rate"])
    eval_ds = _dataset(config["eval_split"], sample_rate=config["sample_rate"])
    x_train, _ = fit_length(train_ds.clips, n_samples=config["clip_samples"])
    x_eval, _ = fit_length(eval_ds.clips, n_samples=config["clip_samples"])
    y_train = train_ds.labels.astype(np.float32)

    model = build_classifier(n_classes=train_ds.n_classes, sample_rate=config["sample_rate"])
    model.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]), loss=config["loss"])
    model.fit(x_train, y_train, epochs=config["epochs"], batch_size=config["batch_size"], shuffle=True,
              verbose=verbose)
    train_seconds = time.perf_counter() - t0

    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / "demo_classifier.keras"
    model.save(model_path)
    scores = model.predict(x_eval, batch_size=128, verbose=0)
    m = tagging_metrics(eval_ds.labels, scores)
    record = {
        "model": "demo_audio_classifier",
        "description": ("Two-stage demo classifier: VGGish-parameter log-mel frontend, small strided CNN "
                        "-> 128-d embedding in [0, 1] per 0.96 s, attention pooling -> sigmoid scores."),
        "sample_rate": config["sample_rate"],
        "clip_samples": config["clip_samples"],
        "n_parameters": int(model.count_params()),
        "training_config": config,
        "training_data_card": train_ds.card,
        "eval_metrics": {"mAP": float(m.mAP), "mean_auc": float(m.mean_auc), "d_prime": float(m.d_prime),
                         "per_class_ap": [float(v) for v in m.per_class_ap]},
        "train_seconds": round(train_seconds, 1),
        "library_versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
    }
    (out_dir / "demo_classifier.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    write_class_labels(out_dir / "class_labels_indices.csv", train_ds.class_labels)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m factsheet.models.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "default",
                        help="output folder (default: the package's default-model folder)")
    parser.add_argument("--epochs", type=int, default=None, help="override the number of epochs (testing only)")
    parser.add_argument("--train-clips", type=int, default=None, help="override the training-set size (testing only)")
    args = parser.parse_args(argv)
    config = json.loads(json.dumps(TRAINING_CONFIG))
    if args.epochs is not None:
        config["epochs"] = args.epochs
    if args.train_clips is not None:
        config["train_split"]["n_clips"] = args.train_clips
    record = train(out_dir=args.out, config=config)
    em = record["eval_metrics"]
    print(f"trained in {record['train_seconds']} s; eval mAP {em['mAP']:.3f}, AUC {em['mean_auc']:.3f}, "
          f"d' {em['d_prime']:.3f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
