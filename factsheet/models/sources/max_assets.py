"""The IBM MAX Audio Classifier: from its assets (``[model] assets``) or the ``.keras`` of ``factsheet import-max``.

The rebuild (:mod:`factsheet.models.max_audio`) is one Keras 3 graph from the raw 16 kHz
waveform to 527 sigmoid scores: VGGish log-mel, VGGish CNN (weights from the TF1
checkpoint), PCA + uint8 quantisation, the 10-example sequence, the multi-level attention
classifier (rebuilt from the h5's own ``model_config``). Black box only: the quantisation
has no gradient. Class names: ``[model] class_labels`` or ``class_labels_indices.csv``
in the asset folder (AudioSet's file). Input length: ``[model] clip_seconds``, default 10 s
(the model's 10 examples of 0.96 s).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from factsheet.errors import InputError
from factsheet.models.sources.base import (LoadedModel, combined_sha256, file_sha256, package_version,
                                           runtime_record)

DEFAULT_CLIP_SECONDS = 10.0
LABELS_FILE = "class_labels_indices.csv"


def load(cfg, *, threads: int | None = None) -> LoadedModel:
    """``source = "max"``."""
    from factsheet.datasets.base import read_class_labels
    from factsheet.models import max_audio
    from factsheet.models.sources.keras_file import keras_runtime, load_keras_model

    labels_path = cfg.class_labels
    if labels_path is None and cfg.assets is not None and (Path(cfg.assets) / LABELS_FILE).is_file():
        labels_path = Path(cfg.assets) / LABELS_FILE
    if labels_path is None:
        raise InputError(source=str(cfg.assets or cfg.path), field="model.class_labels", value=None,
                         reason=f"required: give AudioSet's {LABELS_FILE} (index,mid,display_name), or put it in "
                                "the asset folder")
    labels = read_class_labels(labels_path)
    if cfg.clip_seconds is None:
        cfg = dataclasses.replace(cfg, clip_seconds=DEFAULT_CLIP_SECONDS)
    if cfg.sample_rate != max_audio.SAMPLE_RATE:
        raise InputError(source=str(cfg.assets or cfg.path), field="model.sample_rate", value=cfg.sample_rate,
                         reason=f"the MAX Audio Classifier takes {max_audio.SAMPLE_RATE} Hz audio")
    if cfg.assets is not None:
        folder = Path(cfg.assets)
        sha512 = max_audio.verify_checksums(folder)
        checked = (folder / max_audio.SUMS_FILE).is_file()
        keras_model = max_audio.build_max_model(folder, verify=False)
        files = {name: file_sha256(folder / name) for name in max_audio.ASSETS}
        sha = combined_sha256(files)
        path, fmt = folder, "MAX Audio Classifier assets (TF1 VGGish checkpoint, PCA npz, Keras 2 h5)"
    else:
        path = Path(cfg.path)
        keras_model = load_keras_model(path)
        sha = file_sha256(path)
        files, sha512, checked = {path.name: sha}, {}, False
        fmt = "MAX Audio Classifier rebuilt by factsheet import-max (Keras 3 .keras)"
    forward, clip_samples, _ = keras_runtime(keras_model, cfg=cfg, n_classes=len(labels), source=str(path),
                                             threads=threads)
    runtime = runtime_record(
        format=fmt, runtime="tensorflow", runtime_version=package_version("tensorflow-cpu", "tensorflow"),
        gradients=False, adapted=forward, n_parameters=int(keras_model.count_params()), files=files,
        notes=["Black box: the uint8 quantisation of the VGGish embeddings has no gradient, so the attack uses the "
               "model's decisions only.",
               "Clips shorter than 10 examples (9.6 s) repeat their example sequence, longer ones keep the first 10, "
               "as the MAX service does."],
        extra={"keras_version": package_version("keras"),
               "max_assets": {"checksums_verified": bool(checked), "n_examples": max_audio.MAX_EXAMPLES}})
    for entry in runtime["files"]:
        if entry["name"] in sha512:
            entry["sha512"] = sha512[entry["name"]]
    return LoadedModel(forward=forward, class_labels=labels, sample_rate=cfg.sample_rate, clip_samples=clip_samples,
                       source="max", path=path, sha256=sha, runtime=runtime, keras_model=keras_model)
