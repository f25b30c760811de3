"""Groups of clips: from metadata columns, their intersections and condition columns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from factsheet.config import BiasConfig


@dataclass
class Group:
    columns: tuple[str, ...]
    name: str
    mask: np.ndarray  # (n,) bool

    @property
    def key(self) -> str:
        return " & ".join(self.columns)


def group_columns(settings: BiasConfig, metadata: pd.DataFrame) -> tuple[str, ...]:
    """The single columns to slice by: ``settings.columns``, or when none are named every text column of
    ``metadata`` that is not ``clip_id`` or a condition column."""
    if settings.columns:
        return tuple(settings.columns)
    return tuple(c for c in metadata.columns if c not in ("clip_id",) and not pd.api.types.is_numeric_dtype(metadata[c])
                 and c not in settings.condition_columns)


def make_groups(metadata: pd.DataFrame, settings: BiasConfig, *,
                columns: tuple[str, ...]) -> tuple[list[Group], list[str]]:
    """Groups from single ``columns`` (see :func:`group_columns`), intersections and condition columns;
    missing columns are reported."""
    missing = []
    specs: list[tuple[str, ...]] = []
    for col in columns:
        specs.append((col,))
    specs += [tuple(p) for p in settings.intersections]
    specs += [(c,) for c in settings.condition_columns if (c,) not in specs]
    groups = []
    for spec in specs:
        absent = [c for c in spec if c not in metadata.columns]
        if absent:
            missing.append(f"{' & '.join(spec)}: column {', '.join(absent)} not in the dataset's metadata")
            continue
        values = metadata[list(spec)].astype(str)
        keep = ~values.isin(settings.exclude_values).any(axis=1).to_numpy()
        labels = values.agg(" | ".join, axis=1).to_numpy()
        for name in sorted(set(labels[keep].tolist()), key=_natural):
            groups.append(Group(columns=spec, name=name, mask=(labels == name) & keep))
    return groups, missing


def _natural(s: str):
    try:
        return (0, float(s), s)
    except ValueError:
        return (1, 0.0, s)


def column_describes_class(*, y: np.ndarray, groups: list[Group]) -> dict[tuple[tuple[str, ...], int], bool]:
    """(column spec, class) -> whether the column describes the class's events.

    True when >= 90 % of the class's positives fall in some (non-excluded) group of the
    column and < 50 % of its negatives do: voice type describes Speech, not Dog.
    """
    out = {}
    specs: dict[tuple[str, ...], np.ndarray] = {}
    for g in groups:
        specs[g.columns] = specs.get(g.columns, np.zeros(len(g.mask), bool)) | g.mask
    for spec, covered in specs.items():
        for j in range(y.shape[1]):
            pos = y[:, j]
            if pos.any() and (~pos).any():
                out[(spec, j)] = bool(covered[pos].mean() >= 0.9 and covered[~pos].mean() < 0.5)
    return out
