"""Does a corruption hurt one group more than another? The corruption suite's drops compared between
the Bias section's groups, tested in the Bias section's family.

At one severity per corruption (``[domain_shift] group_severity``, by default the middle one) each
group's mAP drop (clean minus corrupted, on the group's clips) is compared with the drop of the
most resilient group of its column, exactly as the Bias section compares a group's mAP with the best
group's (:func:`factsheet.bias.stats._compare_to_best`): over the classes both groups have
``min_positives`` positives of, with a paired bootstrap (the clean and the corrupted scores of the
same resampled clips, :func:`factsheet.bias.stats.group_replicates` with one seed), and with every
other pair of the column's groups in the family since the reference is chosen after looking.

The "extra drop" of a group is its drop minus the reference's: positive when the corruption costs the
group more mAP, i.e. when the gap between the two groups widens by that much (or opens) under the
corruption. A finding needs its interval above the Bias section's ``tolerance`` and its adjusted
p-value below ``1 - confidence``; the p-values join the Bias section's family (Holm or BH over the
Bias tests, the Robustness group tests and these), or are corrected alone without a Bias section.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from factsheet.bias.groups import Group, group_columns, make_groups
from factsheet.bias.stats import _class_mean, _compare_to_best, _Compared, _interval, group_replicates
from factsheet.metrics import finite_or_none
from factsheet.significance import CORRECTION_NAMES, adjust, family_order, is_finding

DEFINITION = (
    "At one severity per corruption, each group's mAP drop (clean minus corrupted mAP of the group's clips, over "
    "the classes with at least min_positives positives in the group) is compared with the drop of the most "
    "resilient group of its column, over the classes both groups share. Extra drop = the group's drop minus the "
    "reference's: positive means the corruption costs this group more, so the gap between the two widens (or "
    "opens) by that much. Paired bootstrap interval (clean and corrupted scores of the same resampled clips); "
    "p-value of H0 |extra drop| <= the Bias section's tolerance from the normal approximation; every pair of a "
    "column's groups enters the multiple-testing family (the reference is chosen after looking), which is the Bias "
    "section's family when it is evaluated. A finding: interval above the tolerance and adjusted p-value below "
    "1 - confidence.")


@dataclass(frozen=True)
class CorruptedScores:
    """The model's scores of the chosen clips under one corruption at the tested severity.

    Attributes
    ----------
    name, title : str
        The corruption's key and its name in the report.
    level : float
        The severity's setting in the corruption's unit.
    unit : str
    scores : ndarray, shape (n_clips, n_classes)
    """

    name: str
    title: str
    level: float
    unit: str
    scores: np.ndarray


def group_drops(*, y: np.ndarray, clean_scores: np.ndarray, corrupted: list[CorruptedScores],
                metadata: pd.DataFrame, bias, bootstrap, severity: int) -> dict:
    """Every group's drop under each corruption, compared with the most resilient group's.

    Parameters
    ----------
    y : ndarray, shape (n_clips, n_classes)
        0/1 labels of the chosen clips.
    clean_scores : ndarray, shape (n_clips, n_classes)
    corrupted : list of CorruptedScores
        One per corruption of the suite, at ``severity``.
    metadata : DataFrame
        ``n_clips`` rows: the chosen clips' metadata (the group columns).
    bias : factsheet.config.BiasConfig
        The groups (columns, intersections, condition columns, excluded values) and the test rules
        (``min_group_size``, ``min_positives``, ``tolerance``, ``correction``).
    bootstrap : factsheet.config.MetricsConfig
    severity : int

    Returns
    -------
    dict
        ``{"severity", "columns", "by_group": [...], "comparisons": [...], "other_pairs": [{"p_value"}],
        "not_evaluated": [...]}``; the comparisons' ``p_adjusted`` and ``finding`` are set by
        :func:`mark_findings` (or :func:`adjust_alone`).
    """
    y = np.asarray(y).astype(bool)
    columns = group_columns(bias, metadata)
    groups, missing = make_groups(metadata, bias, columns=columns)
    block = {"severity": int(severity), "columns": list(columns), "confidence": bootstrap.confidence,
             "tolerance": bias.tolerance, "by_group": [], "comparisons": [], "other_pairs": [],
             "not_evaluated": list(missing)}
    if not groups:
        block["not_evaluated"].append("no group of clips among the corrupted clips (no group column)")
        return block
    block["not_evaluated"] += _too_small(groups, min_group_size=bias.min_group_size)
    base = group_replicates(y_true=y, y_score=clean_scores, groups=groups, n_bootstrap=bootstrap.bootstrap_resamples,
                            seed=bootstrap.seed)
    for c in corrupted:
        hit = group_replicates(y_true=y, y_score=c.scores, groups=groups, n_bootstrap=bootstrap.bootstrap_resamples,
                               seed=bootstrap.seed)
        change = _Change(base=base, hit=hit, min_positives=bias.min_positives)
        block["by_group"] += _by_group(c, groups, change, confidence=bootstrap.confidence)
        rows = _compared(c, groups, change, bias=bias, bootstrap=bootstrap)
        block["comparisons"] += [r for r in rows if not r.get("family_only")]
        block["other_pairs"] += [{"p_value": r["p_value"]} for r in rows if r.get("family_only")]
    return block


def _too_small(groups: list[Group], *, min_group_size: int) -> list[str]:
    """The columns with fewer than two groups of ``min_group_size`` clips: nothing to compare there."""
    out = []
    by_spec: dict[tuple[str, ...], list[Group]] = {}
    for g in groups:
        by_spec.setdefault(g.columns, []).append(g)
    for spec, gs in by_spec.items():
        if sum(int(g.mask.sum()) >= min_group_size for g in gs) < 2:
            sizes = ", ".join(f"{g.name} {int(g.mask.sum())}" for g in gs)
            out.append(f"{' & '.join(spec)}: fewer than two groups with min_group_size = {min_group_size} corrupted "
                       f"clips ({sizes}); [domain_shift] stratify_by gives groups a minimum of clips")
    return out


@dataclass(frozen=True)
class _Change:
    """Corrupted minus clean group mAP (negative: a drop) over chosen classes, point and replicates."""

    base: dict
    hit: dict
    min_positives: int

    def classes(self, gi: int) -> np.ndarray:
        return self.base["point"][gi]["n_pos"] >= self.min_positives

    def value(self, gi: int, classes: np.ndarray) -> float:
        return float(_class_mean(self.hit["point"][gi]["ap"], classes) - _class_mean(self.base["point"][gi]["ap"],
                                                                                     classes))

    def reps(self, gi: int, classes: np.ndarray) -> np.ndarray:
        return _class_mean(self.hit["reps"][gi]["ap"], classes) - _class_mean(self.base["reps"][gi]["ap"], classes)


def _by_group(c: CorruptedScores, groups: list[Group], change: _Change, *, confidence: float) -> list[dict]:
    """Each group's own drop (over its own classes) with its paired interval."""
    rows = []
    for gi, g in enumerate(groups):
        classes = change.classes(gi)
        value = change.value(gi, classes) if classes.any() else float("nan")
        low, high = _interval(-change.reps(gi, classes), confidence) if classes.any() else (None, None)
        rows.append({"corruption": c.name, "columns": list(g.columns), "group": g.name, "n": int(g.mask.sum()),
                     "n_classes": int(classes.sum()), "drop": finite_or_none(-value),
                     "drop_ci": {"low": low, "high": high}})
    return rows


def _compared(c: CorruptedScores, groups: list[Group], change: _Change, *, bias, bootstrap) -> list[dict]:
    """Every group of each column against the column's most resilient group (and the other pairs)."""
    out = []
    by_spec: dict[tuple[str, ...], list[int]] = {}
    for gi, g in enumerate(groups):
        by_spec.setdefault(g.columns, []).append(gi)
    for spec, idx in by_spec.items():
        if len(idx) < 2:
            continue
        sizes = {gi: int(groups[gi].mask.sum()) for gi in idx}
        ok = [gi for gi in idx if sizes[gi] >= bias.min_group_size and change.classes(gi).any()]
        vals = {gi: change.value(gi, change.classes(gi)) for gi in ok}
        vals = {gi: v for gi, v in vals.items() if np.isfinite(v)}

        def pair(a, b):
            common = change.classes(a) & change.classes(b)
            if not common.any():
                nan = np.full(bootstrap.bootstrap_resamples, np.nan)
                return float("nan"), float("nan"), nan, nan, 0
            return (change.value(a, common), change.value(b, common), change.reps(a, common), change.reps(b, common),
                    int(common.sum()))

        rows = _compare_to_best(_Compared("mAP", None, spec), vals=vals, idx=idx, sizes=sizes, groups=groups,
                                pair=pair, settings=bias, bootstrap=bootstrap)
        out += [r if r.get("family_only") else _as_extra_drop(r, c) for r in rows]
    return out


def _as_extra_drop(row: dict, c: CorruptedScores) -> dict:
    """A Bias-style disparity of the mAP change (group minus reference; negative: the group loses more)
    restated as the group's extra drop (positive: the group loses more)."""
    def neg(v):
        return None if v is None else -v

    return {"corruption": c.name, "title": c.title, "level": c.level, "unit": c.unit, "columns": row["columns"],
            "group": row["group"], "reference": row["reference"], "n": row["n"], "n_reference": row["n_reference"],
            "n_classes": row.get("n_classes", 0), "drop": neg(row["value"]), "reference_drop": neg(row["reference_value"]),
            "extra_drop": neg(row["difference"]),
            "extra_drop_ci": {"low": neg(row["ci_high"]), "high": neg(row["ci_low"])},
            "p_value": row["p_value"], "p_adjusted": None, "finding": False,
            "insufficient_evidence": row["insufficient_evidence"]}


def family_p_values(block: dict) -> list[float]:
    """The group tests' raw p-values in family order: the tested comparisons, then the other pairs."""
    return family_order(block["comparisons"], block["other_pairs"])


def mark_findings(block: dict, *, adjusted: list[float], n_family: int, correction: str, with_bias: bool) -> dict:
    """``block`` with adjusted p-values, findings and the family's description set.

    Parameters
    ----------
    block : dict
        :func:`group_drops`'s result (not modified).
    adjusted : list of float
        Adjusted p-values of the tested comparisons (those with a ``p_value``), in their order.
    n_family : int
        Tests corrected together.
    correction : {"holm", "bh"}
    with_bias : bool
        Whether the family holds the Bias section's tests.

    Returns
    -------
    dict
        A new block; ``findings`` holds one sentence per finding, the largest extra drop first, or one
        sentence saying there is none.
    """
    it = iter(adjusted)
    rows = []
    for d in block["comparisons"]:
        d = dict(d)
        if d["p_value"] is not None:
            d["p_adjusted"] = float(next(it))
            # is_finding reads a difference whose interval must lie below -tolerance: the change, not the drop
            d["finding"] = is_finding(p_adjusted=d["p_adjusted"], ci_high=-d["extra_drop_ci"]["low"],
                                      confidence=block["confidence"], tolerance=block["tolerance"])
        rows.append(d)
    n_own = len(family_p_values(block))
    name = CORRECTION_NAMES[correction]
    found = sorted((d for d in rows if d["finding"]), key=lambda d: -d["extra_drop"])
    findings = [statement(d, severity=block["severity"], confidence=block["confidence"]) for d in found]
    if not findings and n_own:
        findings = [f"No corruption hurt one group more than another: none of the {n_own} comparisons of groups' mAP "
                    f"drops at severity {block['severity']} exceeded {block['tolerance']:g} with "
                    f"{round(block['confidence'] * 100)}% confidence after {name.split(' (')[0]} correction over "
                    f"{n_family} tests."]
    elif not findings:
        findings = ["No comparison of groups could be tested: no two groups of a column had the minimum group size "
                    "and a class with the minimum positives in both among the corrupted clips."]
    return dict(block, comparisons=rows, findings=findings,
                family={"correction": name, "n_tests": int(n_family), "n_domain_shift_tests": n_own,
                        "with_bias": bool(with_bias)})


def adjust_alone(block: dict, *, correction: str) -> dict:
    """:func:`mark_findings` with these tests as the whole family (no Bias section)."""
    p = family_p_values(block)
    return mark_findings(block, adjusted=adjust(p, correction=correction), n_family=len(p), correction=correction,
                         with_bias=False)


def statement(d: dict, *, severity: int, confidence: float) -> str:
    """A finding in words: "Under white noise at 10 dB SNR (severity 3), voice_type = child loses 0.081 more mAP
    than voice_type = male ..."."""
    col = " & ".join(d["columns"])
    ci = d["extra_drop_ci"]
    return (f"Under {d['title'].lower()} at {d['level']:g} {d['unit']} (severity {severity}), {col} = {d['group']} "
            f"loses {d['extra_drop']:.3f} more mAP than {col} = {d['reference']} ({round(confidence * 100)}% CI "
            f"{ci['low']:.3f} to {ci['high']:.3f}; drops {d['drop']:.3f} vs {d['reference_drop']:.3f} over "
            f"{d['n_classes']} shared classes; n = {d['n']} vs {d['n_reference']} clips).")
