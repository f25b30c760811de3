"""Map a dataset's label vocabulary onto a model's classes (``[dataset] label_mapping``).

Three methods:

* ``"mid"``: a dataset class and a model class are the same when their AudioSet mids
  (``/m/09x0r``) are equal;
* ``"name"``: when their display names are exactly equal (case and spaces included);
* a mapping table: a CSV file with the header ``dataset_label,model_label`` and one pair per
  row, each cell a display name (or a mid) of its own side. A dataset label may map to several
  model classes and several dataset labels to one model class (a clip is positive for a model
  class when any of its labels maps to it); labels may contain commas when quoted, as in CSV.

The mapped dataset keeps only the model classes some dataset label maps to, in the model's
order, with their model output columns in :attr:`AudioDataset.model_columns`. Dataset labels
without a model class are dropped from the labels (counted per label); a clip whose labels all
fall outside the mapping is kept as a pure negative (counted). A mapping that maps no class is
one :class:`InputError` line.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from factsheet.datasets.base import AudioDataset, ClassLabel, LabelMapping
from factsheet.datasets.common import read_csv_rows, require_columns
from factsheet.errors import InputError

__all__ = ["TABLE_COLUMNS", "default_method", "map_to_model", "read_mapping_table"]

TABLE_COLUMNS = ("dataset_label", "model_label")


def default_method(dataset_classes: list[ClassLabel], model_classes: list[ClassLabel]) -> str:
    """``"mid"`` when every class on both sides has a mid, else ``"name"``."""
    return "mid" if all(c.mid for c in dataset_classes) and all(c.mid for c in model_classes) else "name"


def _lookup(classes: list[ClassLabel]) -> dict[str, int]:
    """Display names and mids to positions; a display name wins over an equal mid."""
    out = {c.mid: j for j, c in enumerate(classes) if c.mid}
    out.update({c.display_name: j for j, c in enumerate(classes)})
    return out


def _cell(value: str, *, lookup: dict[str, int], path: Path, row: int, column: str, side: str) -> int:
    j = lookup.get(value)
    if j is None:
        hint = {k.casefold(): k for k in lookup}.get(value.casefold()) if value else None
        reason = ("empty cell" if not value else f"not a {side} class (neither a display name nor a mid)"
                  + (f"; did you mean {hint!r}?" if hint else ""))
        raise InputError(source=str(path), field=f"row {row}, column {column}", value=value or None, reason=reason)
    return j


def read_mapping_table(path: Path, *, dataset_classes: list[ClassLabel],
                       model_classes: list[ClassLabel]) -> list[tuple[int, int]]:
    """The (dataset position, model position) pairs of a mapping table, in table order.

    Raises
    ------
    InputError
        Missing or unparsable file, missing column, a cell naming no class of its side, or a
        repeated pair (naming the row).
    """
    df = read_csv_rows(path, what="label mapping table", rows_hint=" (one dataset_label,model_label pair per row)")
    require_columns(df, csv_path=path, columns=list(TABLE_COLUMNS), expected="the header dataset_label,model_label")
    data, model = _lookup(dataset_classes), _lookup(model_classes)
    pairs: dict[tuple[int, int], int] = {}
    for row, d, m in zip(df.index, df["dataset_label"], df["model_label"]):
        pair = (_cell(d, lookup=data, path=path, row=row, column="dataset_label", side="dataset"),
                _cell(m, lookup=model, path=path, row=row, column="model_label", side="model"))
        if pair in pairs:
            raise InputError(source=str(path), field=f"row {row}", value=f"{d},{m}",
                             reason=f"repeated pair (first on row {pairs[pair]})")
        pairs[pair] = int(row)
    return list(pairs)


def _pairs(method: str, dataset_classes: list[ClassLabel], model_classes: list[ClassLabel], *,
           table: Path | None, source: str) -> list[tuple[int, int]]:
    if method == "table":
        return read_mapping_table(table, dataset_classes=dataset_classes, model_classes=model_classes)
    key = (lambda c: c.mid) if method == "mid" else (lambda c: c.display_name)
    if method == "mid" and not any(c.mid for c in model_classes):
        raise InputError(source=source, field="dataset.label_mapping", value="mid",
                         reason="the model's class labels have no mids: use 'name' or a mapping table")
    model: dict[str, int] = {}
    for j, c in enumerate(model_classes):
        if key(c):
            model.setdefault(key(c), j)
    return [(i, model[key(c)]) for i, c in enumerate(dataset_classes) if key(c) and key(c) in model]


def map_to_model(dataset: AudioDataset, *, model_classes: list[ClassLabel], label_mapping: str | None,
                 source: str) -> AudioDataset:
    """The dataset relabelled onto the model's classes (see the module docs).

    Parameters
    ----------
    dataset : AudioDataset
        In its own vocabulary (``model_columns`` None).
    model_classes : list of ClassLabel
        The model's classes in output order.
    label_mapping : str or None
        ``"mid"``, ``"name"``, a mapping table's path, or None for :func:`default_method`.
    source : str
        The config file, named in errors.

    Returns
    -------
    AudioDataset
        ``class_labels``: the mapped model classes in model order (their ``index`` is the model
        column); ``labels`` over them; ``model_columns``; ``label_mapping`` filled.

    Raises
    ------
    InputError
        A mapping that maps no class; ``"mid"`` with a model without mids; a bad table.
    """
    dataset_classes = dataset.class_labels
    defaulted = label_mapping is None
    method = default_method(dataset_classes, model_classes) if defaulted else label_mapping
    table = None
    if method not in ("mid", "name"):
        method, table = "table", Path(method)
    pairs = _pairs(method, dataset_classes, model_classes, table=table, source=source)
    if not pairs:
        raise InputError(source=source, field="dataset.label_mapping", value=str(table or method),
                         reason=f"maps none of the dataset's {len(dataset_classes)} classes to the model's "
                                f"{len(model_classes)} (e.g. dataset {dataset_classes[0].display_name!r}, model "
                                f"{model_classes[0].display_name!r}); give a mapping table (dataset_label,model_label)")
    columns = sorted({m for _, m in pairs})
    position = {m: k for k, m in enumerate(columns)}
    matrix = np.zeros((len(dataset_classes), len(columns)), dtype=np.int64)
    for d, m in pairs:
        matrix[d, position[m]] = 1
    labels = (dataset.labels.astype(np.int64) @ matrix > 0).astype(np.uint8)
    mapped = {d for d, _ in pairs}
    not_listed = dataset.card.get("labels_not_in_vocabulary") or {}
    had_labels = dataset.labels.sum(axis=1) > 0
    report = LabelMapping(
        method=method, table=None if table is None else str(table), defaulted=defaulted,
        n_dataset_classes=len(dataset_classes), n_model_classes=len(model_classes),
        pairs=[(dataset_classes[d].display_name, model_classes[m].display_name) for d, m in sorted(pairs)],
        dataset_only=[{"label": c.display_name, "mid": c.mid, "n_clips": int(dataset.labels[:, i].sum()),
                       "in_vocabulary": c.display_name not in not_listed}
                      for i, c in enumerate(dataset_classes) if i not in mapped],
        model_only=[c for j, c in enumerate(model_classes) if j not in position],
        n_clips_all_labels_unmapped=int(np.count_nonzero(had_labels & (labels.sum(axis=1) == 0))))
    kept = [dataclasses.replace(model_classes[m], index=m) for m in columns]  # index = the model's output column
    return dataclasses.replace(dataset, labels=labels, events=None, class_labels=kept,
                               model_columns=columns, label_mapping=report)


def model_view(dataset: AudioDataset, model_classes: list[ClassLabel]) -> AudioDataset:
    """The dataset over ALL the model's outputs (unmapped classes all zero), for what works on the model's own
    decision (the attack); the dataset itself when it already is."""
    if dataset.model_columns is None:
        return dataset
    labels = np.zeros((dataset.n_clips, len(model_classes)), dtype=np.uint8)
    labels[:, dataset.model_columns] = dataset.labels
    return dataclasses.replace(dataset, labels=labels, events=None, class_labels=list(model_classes), model_columns=None)
