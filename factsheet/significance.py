"""Tests of the FactSheet's disparities: the p-value of a bootstrapped difference and the
multiple-testing corrections.

One place for both, because one family of tests spans sections: the Bias section's disparities
and the Robustness section's group comparisons (:mod:`attacks.groups`) are corrected together
(:func:`factsheet.bias.section.evaluate_bias`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["ADJUST", "CORRECTION_NAMES", "DIFFERENCE_INTERVAL", "adjust", "benjamini_hochberg", "family_order",
           "holm", "is_finding", "normal_p_value"]


def holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error rate).

    Parameters
    ----------
    p : ndarray, shape (n_tests,)
        Raw p-values.

    Returns
    -------
    ndarray, shape (n_tests,)
        Adjusted p-values, in the order of ``p``.
    """
    n = len(p)
    order = np.argsort(p)
    adj = np.empty(n)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (n - rank) * p[i]))
        adj[i] = running
    return adj


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate); shapes as :func:`holm`."""
    n = len(p)
    order = np.argsort(p)
    adj = np.empty(n)
    running = 1.0
    for rank in range(n - 1, -1, -1):
        i = order[rank]
        running = min(running, p[i] * n / (rank + 1))
        adj[i] = running
    return adj


#: ``[bias] correction`` -> the adjustment.
ADJUST = {"holm": holm, "bh": benjamini_hochberg}

#: The rule of :func:`factsheet.metrics.percentile_interval` for a disparity (a difference between
#: groups) and a group metric: undefined replicates dropped, and no interval when fewer than 10, or
#: fewer than half of them, are usable.
DIFFERENCE_INTERVAL = {"infinite": "drop", "min_used": 10, "min_used_fraction": 0.5}

def family_order(tested: list[dict], other_pairs: list[dict]) -> list[float]:
    """One section's raw p-values in the order they join a family: the rows with a ``p_value`` (the
    reported comparisons), then ``other_pairs`` (the pairs counted only because the reference was
    chosen after looking)."""
    return [d["p_value"] for d in tested if d["p_value"] is not None] + [p["p_value"] for p in other_pairs]


def adjust(p_values: list[float], *, correction: str) -> list[float]:
    """``p_values`` adjusted by ``[bias] correction`` (``"holm"`` or ``"bh"``) as one family."""
    return ADJUST[correction](np.array(p_values, float)).tolist() if p_values else []


#: ``[bias] correction`` -> how the report names it.
CORRECTION_NAMES = {"holm": "Holm (family-wise error rate)", "bh": "Benjamini-Hochberg (false discovery rate)"}


def normal_p_value(difference: float, replicates: np.ndarray, *, tolerance: float) -> float:
    """Two-sided p-value of H0: |difference| <= tolerance, from the normal approximation to the
    bootstrap distribution of the difference (its standard deviation as the standard error).

    A counting p-value cannot go below 1 / (B + 1), too coarse once a multiple-comparison
    correction divides the level by the number of tests.

    Parameters
    ----------
    difference : float
        The point estimate.
    replicates : ndarray, shape (n_finite_replicates,)
        Its finite bootstrap replicates.
    tolerance : float
        Half-width of the null region, >= 0.

    Returns
    -------
    float
        In [0, 1].
    """
    from scipy.stats import norm

    se = float(np.std(replicates, ddof=1)) if replicates.size > 1 else 0.0
    excess = abs(difference) - tolerance
    if se == 0.0:
        return 0.0 if excess > 0 else 1.0
    return float(min(1.0, 2.0 * norm.cdf(-excess / se)))


def is_finding(*, p_adjusted: float | None, ci_high: float | None, confidence: float, tolerance: float) -> bool:
    """A disparity (group minus reference, negative = worse) is a finding: its adjusted p-value is
    below ``1 - confidence`` and its interval lies entirely below ``-tolerance``."""
    return bool(p_adjusted is not None and p_adjusted < 1 - confidence and ci_high is not None
                and ci_high < -tolerance)
