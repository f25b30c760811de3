"""The committed demo model: small, loads safely, reproduces its recorded metrics, carries the planted bias."""

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from factsheet.datasets.base import fit_length
from factsheet.datasets.synthetic import make_synthetic
from factsheet.metrics import tagging_metrics
from factsheet.models.adapter import DEFAULT_CARD, DEFAULT_MODEL, load_default_model
from factsheet.models.train import TRAINING_CONFIG


@pytest.fixture(scope="module")
def default_eval():
    model = load_default_model()
    spec = model.card["training_config"]["eval_split"]
    ds = make_synthetic(split=spec["split"], n_clips=spec["n_clips"], seed=spec["seed"],
                        min_seconds=spec["min_seconds"], max_seconds=spec["max_seconds"])
    x, _ = fit_length(ds.clips, n_samples=model.clip_samples)
    scores = model.keras_model.predict(x, batch_size=128, verbose=0)
    return model, ds, scores


def test_committed_model_is_small_and_described():
    assert DEFAULT_MODEL.stat().st_size <= 5 * 1024 * 1024
    card = json.loads(DEFAULT_CARD.read_text())
    assert card["training_config"] == TRAINING_CONFIG  # the code that retrains it is the code that made it
    assert card["training_data_card"]["split"] == "train"
    assert "skew" in card["training_data_card"] and card["training_data_card"]["skew"] != "balanced"


def test_reproduces_recorded_metrics(default_eval):
    model, ds, scores = default_eval
    m = tagging_metrics(ds.labels, scores)
    rec = model.card["eval_metrics"]
    # Same weights, same data; float32 kernels may differ in the last bits across CPUs, so allow 1e-3.
    assert m.mAP == pytest.approx(rec["mAP"], abs=1e-3)
    assert m.mean_auc == pytest.approx(rec["mean_auc"], abs=1e-3)
    np.testing.assert_allclose(m.per_class_ap, rec["per_class_ap"], atol=5e-3)


def test_well_above_chance(default_eval):
    _, ds, scores = default_eval
    m = tagging_metrics(ds.labels, scores)
    prevalence = ds.labels.mean(axis=0).mean()  # expected mAP of random scores
    assert m.mAP > 0.6 > 3 * prevalence
    assert m.mean_auc > 0.9


def test_planted_voice_bias_is_visible(default_eval):
    """Child voices (3 % of training speech) are detected worse than male voices (85 %)."""
    _, ds, scores = default_eval
    j = [c.display_name for c in ds.class_labels].index("Speech")
    voice = ds.metadata["voice_type"].to_numpy()
    negatives = ds.labels[:, j] == 0

    def group_auc(v):
        sel = (voice == v) | negatives
        return roc_auc_score(ds.labels[sel, j], scores[sel, j])

    assert group_auc("child") < group_auc("male") - 0.05
