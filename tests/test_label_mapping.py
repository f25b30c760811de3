"""factsheet.datasets.mapping: a dataset's vocabulary mapped onto a model's classes by mid, by name or by a table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _corpora import csv_text
from factsheet.datasets.base import AudioDataset, ClassLabel
from factsheet.datasets.mapping import default_method, map_to_model
from factsheet.errors import InputError

MODEL = [ClassLabel(0, "/m/09x0r", "Speech"), ClassLabel(1, "/m/05zppz", "Male speech, man speaking"),
         ClassLabel(2, "/m/04rlf", "Music"), ClassLabel(3, "/m/0bt9lr", "Dog"), ClassLabel(4, "/m/05tny_", "Bark")]
# FSD50K-style names; the dataset's order differs from the model's
DATA = [ClassLabel(0, "/m/0bt9lr", "Dog"), ClassLabel(1, "/m/05zppz", "Male_speech_and_man_speaking"),
        ClassLabel(2, "/m/09x0r", "Speech"), ClassLabel(3, "/m/0mkg", "Accordion")]
LABELS = np.array([[1, 0, 0, 0],   # Dog
                   [0, 1, 1, 0],   # Male speech + Speech
                   [0, 0, 0, 1],   # Accordion only: a pure negative after mapping
                   [0, 0, 0, 0],   # no labels at all
                   [1, 0, 1, 1]], dtype=np.uint8)


def dataset(classes=DATA, labels=LABELS, card=None) -> AudioDataset:
    n = labels.shape[0]
    return AudioDataset(name="t", sample_rate=16000, clips=[np.zeros(10, np.float32)] * n, labels=labels,
                        class_labels=list(classes), metadata=pd.DataFrame({"clip_id": [f"c{i}" for i in range(n)]}),
                        card=card or {})


def test_mid_keeps_mapped_classes_in_model_order():
    ds = map_to_model(dataset(), model_classes=MODEL, label_mapping=None, source="c.toml")
    assert ds.model_columns == [0, 1, 3]
    assert [(c.index, c.display_name) for c in ds.class_labels] == [(0, "Speech"), (1, "Male speech, man speaking"),
                                                                     (3, "Dog")]
    np.testing.assert_array_equal(ds.labels, [[0, 0, 1], [1, 1, 0], [0, 0, 0], [0, 0, 0], [1, 0, 1]])
    m = ds.label_mapping
    assert m.method == "mid" and m.defaulted and m.n_dataset_classes == 4 and m.n_model_classes == 5
    assert m.pairs == [("Dog", "Dog"), ("Male_speech_and_man_speaking", "Male speech, man speaking"),
                       ("Speech", "Speech")]
    assert m.dataset_only == [{"label": "Accordion", "mid": "/m/0mkg", "n_clips": 2, "in_vocabulary": True}]
    assert [c.display_name for c in m.model_only] == ["Music", "Bark"]
    assert m.n_clips_all_labels_unmapped == 1  # clip 2; clip 3 had no labels to begin with


def test_name_maps_exact_names_only():
    ds = map_to_model(dataset(), model_classes=MODEL, label_mapping="name", source="c.toml")
    assert [c.display_name for c in ds.class_labels] == ["Speech", "Dog"]  # not the underscored name
    assert ds.label_mapping.method == "name" and not ds.label_mapping.defaulted


def test_default_is_name_when_a_side_lacks_mids():
    plain = [ClassLabel(i, "", c.display_name) for i, c in enumerate(MODEL)]
    assert default_method(DATA, MODEL) == "mid" and default_method(DATA, plain) == "name"
    with pytest.raises(InputError, match="the model's class labels have no mids"):
        map_to_model(dataset(), model_classes=plain, label_mapping="mid", source="c.toml")


def test_table_with_bom_quoted_commas_and_one_to_many(tmp_path):
    table = tmp_path / "map.csv"
    table.write_text(csv_text([["dataset_label", "model_label"], ["Male_speech_and_man_speaking", "Speech"],
                               ["Male_speech_and_man_speaking", "Male speech, man speaking"], ["/m/0bt9lr", "Bark"],
                               ["Accordion", "Music"]], bom=True), encoding="utf-8")
    ds = map_to_model(dataset(), model_classes=MODEL, label_mapping=str(table), source="c.toml")
    assert ds.model_columns == [0, 1, 2, 4] and ds.label_mapping.table == str(table)
    np.testing.assert_array_equal(ds.labels, [[0, 0, 0, 1], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 1, 1]])
    assert ds.label_mapping.dataset_only[0]["label"] == "Speech"  # not in the table: dataset-only
    assert ds.label_mapping.n_clips_all_labels_unmapped == 0


@pytest.mark.parametrize("rows, expect", [
    ([["dataset", "model"], ["Dog", "Dog"]], "column dataset_label: missing column (expected the header dataset_label,model_label"),
    ([["dataset_label", "model_label"], ["Dog", "Dgo"]], "row 2, column model_label = 'Dgo': not a model class"),
    ([["dataset_label", "model_label"], ["dog", "Dog"]], "not a dataset class (neither a display name nor a mid); "
                                                         "did you mean 'Dog'?"),
    ([["dataset_label", "model_label"], ["Dog", "Dog"], ["Dog", "/m/0bt9lr"]], "row 3 = 'Dog,/m/0bt9lr': repeated pair "
                                                                               "(first on row 2)"),
    ([["dataset_label", "model_label"]], "label mapping table has no data rows"),
])
def test_bad_table_is_one_line(tmp_path, rows, expect):
    table = tmp_path / "map.csv"
    table.write_text(csv_text(rows))
    with pytest.raises(InputError) as ei:
        map_to_model(dataset(), model_classes=MODEL, label_mapping=str(table), source="c.toml")
    assert expect in ei.value.line() and str(table) in ei.value.line() and "\n" not in ei.value.line()


def test_mapping_nothing_is_one_line():
    other = [ClassLabel(0, "/x/1", "dog"), ClassLabel(1, "/x/2", "rain")]
    with pytest.raises(InputError) as ei:
        map_to_model(dataset(other, LABELS[:, :2]), model_classes=MODEL, label_mapping=None, source="c.toml")
    assert ei.value.line() == ("error: c.toml: dataset.label_mapping = 'mid': maps none of the dataset's 2 classes to "
                               "the model's 5 (e.g. dataset 'dog', model 'Speech'); give a mapping table "
                               "(dataset_label,model_label)")


def test_unlisted_labels_are_flagged():
    ds = map_to_model(dataset(card={"labels_not_in_vocabulary": {"Accordion": 2}}), model_classes=MODEL,
                      label_mapping="mid", source="c.toml")
    assert ds.label_mapping.dataset_only[0]["in_vocabulary"] is False


def test_model_view_widens_labels_to_every_model_output():
    from factsheet.datasets.mapping import model_view

    ds = map_to_model(dataset(), model_classes=MODEL, label_mapping="mid", source="c.toml")
    full = model_view(ds, MODEL)
    assert full.model_columns is None and [c.display_name for c in full.class_labels] == [c.display_name for c in MODEL]
    np.testing.assert_array_equal(full.labels[:, [0, 1, 3]], ds.labels)
    assert full.labels[:, [2, 4]].sum() == 0
