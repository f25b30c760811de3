"""Percentiles of attack perturbation norms over iterations, their CIs, and curve fits.

The MAX Audio Classifier FactSheet reports, per norm, percentiles (5, 10, 15, 25, 50) of the
HopSkipJump perturbation norm over the attacked clips after T iterations, each followed by "the
fitted curve evaluated at 11 iterations", or "---" "when we are unable to fit a curve, or the result
is negative".  No code for it is public; this module writes the definitions out.

Definitions
-----------
* Norms.  One norm per clip (and per iteration); a clip for which no adversarial example was
  found has norm ``+inf``.  Norms are never NaN or negative.
* Percentile with failures.  numpy's default ("linear", Hyndman & Fan type 7) percentile of the
  sorted norms ``x_(0) <= ... <= x_(n-1)``: with ``h = (n - 1) * P / 100``, ``j = floor(h)`` and
  ``g = h - j``, the P-th percentile is ``x_(j)`` when ``g == 0`` and
  ``(1 - g) * x_(j) + g * x_(j+1)`` otherwise.  With failures this is the limit of the same
  percentile when every ``+inf`` is replaced by a finite ``M`` and ``M -> inf``: it is ``+inf``
  as soon as the interpolation touches an infinite norm with a positive weight, never NaN
  (``np.percentile`` returns NaN there, from ``inf - inf``).  On finite data it equals
  ``np.percentile`` bit for bit.
* Curve fit of a percentile series ``y_t`` (t = 1..T): see :data:`FORMULAS` and :data:`CRITERION`.
  Each family is fitted by least squares on ``log y`` over the finite, positive points only
  (``inf`` and ``NaN`` are missing values, zeros cannot be logged); the chosen curve is evaluated
  at ``t = k`` (``k = T + 1`` extrapolates one iteration, as the seed's 11 after 10).

Why log space: the percentiles of one table span orders of magnitude and their iteration-to-
iteration noise is relative (multiplicative), so log residuals weigh every point by its relative
error, make the fit independent of the norm's unit (float [-1, 1] or int16 PCM), and cannot be
dominated by the large early-iteration values.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import OptimizeWarning, curve_fit

from factsheet.metrics import order_statistic_interval, percentile_interval, sorted_percentiles

__all__ = [
    "CRITERION",
    "FAMILIES",
    "FORMULAS",
    "LOG_RESIDUAL_FLOOR",
    "MAX_STEPS_PAST_T",
    "N_PARAMS",
    "CandidateFit",
    "SeriesFit",
    "bootstrap_percentile_ci",
    "evaluate_family",
    "fit_percentile_table",
    "fit_series",
    "fitted_value_ci",
    "percentile_ci",
    "percentiles_with_failures",
    "value_at_k_reason",
]

#: The curve families, in the order used to break ties.
FAMILIES: tuple[str, ...] = ("power_floor", "exp_floor", "loglog_line")

#: Number of curve parameters of each family (the ``p`` of AICc).
N_PARAMS: dict[str, int] = {"power_floor": 3, "exp_floor": 3, "loglog_line": 2}

#: Each family's formula, with its parameter constraints, for the report.
FORMULAS: dict[str, str] = {
    "power_floor": "y = a * t^(-b) + c, a > 0, b >= 0, c >= 0",
    "exp_floor": "y = a * exp(-b * t) + c, a > 0, b >= 0, c >= 0",
    "loglog_line": "log y = p + q * log t (y = e^p * t^q), p and q any real",
}

#: Log-space residual RMS below which fits count as exact (1 part per million): floors the RSS in
#: AICc so that two exact fits tie and the one with fewer parameters wins, instead of rounding
#: noise deciding.
LOG_RESIDUAL_FLOOR: float = 1e-6

#: The selection rule, as the report prints it.
CRITERION: str = (
    "Each curve family (power_floor: y = a*t^(-b) + c; exp_floor: y = a*exp(-b*t) + c, with a > 0, "
    "0 <= b <= 20, c >= 0; loglog_line: log y = p + q*log t) is fitted by bounded least squares "
    "(scipy.optimize.curve_fit, several starting points, best converged start kept) to log y_t over "
    "the finite, positive points of the series, residual log(model(t)) - log(y_t). Among the "
    "families that converged, the one with the smallest AICc = n*ln(RSS/n) + 2p + 2p(p+1)/(n-p-1) "
    "is chosen, where RSS is the log-space residual sum of squares (floored at n*(1e-6)^2, so exact "
    "fits tie), n the number of points and p the number of curve parameters (3, 3, 2); a family "
    "with n <= p + 1 has no AICc and is not eligible; ties go to fewer parameters, then to the "
    "order power_floor, exp_floor, loglog_line. The chosen curve is evaluated at t = k; no value "
    "(---) is given when fewer than min_points points are usable, no fit converged, or the value "
    "at k is negative or not finite. Goodness of fit: RMSE and R^2 of the chosen fit in log space."
)

# Bounds of the internal parameters: b beyond 20 is a step after the first point (2^-20 ~ 1e-6,
# e^-20 ~ 2e-9), and a transient amplitude outside e^+-60 of the series' scale is no transient.
_B_MAX = 20.0
_LOG_A_BOUND = 60.0
_FTOL = _XTOL = _GTOL = 1e-12
_MAX_NFEV = 2000


# --------------------------------------------------------------------------------------
# Percentiles with failures
# --------------------------------------------------------------------------------------


def _check_norms(norms: ArrayLike) -> np.ndarray:
    x = np.asarray(norms, dtype=float)
    if x.ndim not in (1, 2):
        raise ValueError(f"norms must have shape (n_clips,) or (n_clips, T), got {x.shape}")
    if x.shape[0] < 1:
        raise ValueError("norms must hold at least one clip")
    if np.isnan(x).any():
        raise ValueError("norms must not be NaN (mark a clip with no adversarial example as +inf)")
    if (x < 0).any():
        raise ValueError(f"norms must be >= 0, got min {x.min()!r}")
    return x


def _check_percentiles(percentiles: ArrayLike) -> np.ndarray:
    q = np.asarray(percentiles, dtype=float)
    if q.ndim > 1:
        raise ValueError(f"percentiles must be a scalar or 1-D, got shape {q.shape}")
    if not np.all((q >= 0) & (q <= 100)):  # also rejects NaN
        raise ValueError(f"percentiles must lie in [0, 100], got {percentiles!r}")
    return q


def percentiles_with_failures(norms: ArrayLike, *, percentiles: ArrayLike) -> np.ndarray:
    """Linear-interpolation percentiles of perturbation norms, with failed clips as ``+inf``.

    Parameters
    ----------
    norms : array_like, shape (n_clips,) or (n_clips, T)
        Perturbation norm of each clip (after each of T iterations), in the norm's unit;
        ``+inf`` where no adversarial example was found.  Not NaN, not negative.
    percentiles : array_like, shape (n_percentiles,) or scalar
        Percentiles in [0, 100].

    Returns
    -------
    ndarray, shape ``percentiles.shape + norms.shape[1:]``
        ``(n_percentiles,)`` or ``(n_percentiles, T)`` (a numpy float for a scalar percentile of
        1-D norms), in the unit of ``norms``.  Equal to
        ``np.percentile(norms, percentiles, axis=0)`` on finite data; ``+inf`` where the
        interpolation gives an infinite norm a positive weight (the limit of the finite
        percentile as the failures' norm grows without bound), never NaN.
    """
    x = _check_norms(norms)
    q = _check_percentiles(percentiles)
    return sorted_percentiles(np.sort(x, axis=0), q)


def percentile_ci(norms: ArrayLike, *, percentiles: ArrayLike, confidence: float = 0.95) -> tuple[np.ndarray,
                                                                                                   np.ndarray]:
    """Distribution-free confidence intervals of the population percentiles of perturbation norms.

    The order statistics of :func:`factsheet.metrics.order_statistic_interval` (an exact binomial
    interval: each side misses the true percentile with probability at most ``(1 - confidence) /
    2`` for any continuous distribution of norms, failures included as ``+inf``). This is what the
    FactSheet prints; the percentile bootstrap (:func:`bootstrap_percentile_ci`) under-covers the
    5th and 10th percentiles of 32-64 clips (``bench/coverage.py``). Bounds: ``+inf`` where they
    fall on a clip not fooled ("not found"), ``-inf`` where too few clips bound the percentile
    from below (insufficient evidence; e.g. the 5th percentile of fewer than 72 clips at 95 %).

    Parameters
    ----------
    norms : array_like, shape (n_clips,) or (n_clips, T)
        As for :func:`percentiles_with_failures`.
    percentiles : array_like, shape (n_percentiles,) or scalar
        Percentiles in [0, 100].
    confidence : float, default 0.95
        In (0, 1).

    Returns
    -------
    low, high : ndarray, shape ``percentiles.shape + norms.shape[1:]``
        Bounds in the unit of ``norms``.
    """
    x = _check_norms(norms)
    q = _check_percentiles(percentiles)
    return order_statistic_interval(x, percentiles=q, confidence=confidence)


def bootstrap_percentile_ci(
    norms: ArrayLike,
    *,
    percentiles: ArrayLike,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap confidence intervals of :func:`percentiles_with_failures` over clips.

    Clips are resampled with replacement (one ``rng.integers(0, n_clips, size=n_clips)`` draw per
    replicate from ``np.random.default_rng(seed)``, the draws of ``factsheet.metrics.bootstrap_ci``);
    a clip keeps all its T iterations.  Failed clips (``+inf``) stay in every replicate, so a
    replicate, and a bound, may be ``+inf``; the bounds are the ``(1 -+ confidence) / 2``
    percentiles of the replicates by the same infinity-aware rule
    (:func:`factsheet.metrics.percentile_interval` with ``infinite="keep"``: a failure is a
    value, not a missing one).  Never NaN.

    Parameters
    ----------
    norms : array_like, shape (n_clips,) or (n_clips, T)
        As for :func:`percentiles_with_failures`.
    percentiles : array_like, shape (n_percentiles,) or scalar
        Percentiles in [0, 100].
    n_resamples : int, default 1000
    confidence : float, default 0.95
        In (0, 1).
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    low, high : ndarray, shape ``percentiles.shape + norms.shape[1:]``
        Bounds in the unit of ``norms``.
    """
    x = _check_norms(norms)
    q = _check_percentiles(percentiles)
    if isinstance(n_resamples, bool) or int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int, got {seed!r}")
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    reps = np.empty((int(n_resamples),) + q.shape + x.shape[1:])
    for r in range(int(n_resamples)):
        idx = rng.integers(0, n, size=n)
        reps[r] = sorted_percentiles(np.sort(x[idx], axis=0), q)
    interval = percentile_interval(reps, confidence=confidence, infinite="keep")
    return interval.low, interval.high


# --------------------------------------------------------------------------------------
# Curve families (internal parametrisation, on y / scale and t relative to t_ref)
# --------------------------------------------------------------------------------------
#
# Floor families: log model = logaddexp(log A - b * g(t), log c), g(t) = log(t / t_ref) (power) or
# t - t_ref (exp), fitted to log(y / scale).  logaddexp keeps the model finite when the transient
# underflows or c = 0, and the log-amplitude makes a > 0 hold by construction.  Public parameters:
# power a = scale * A * t_ref^b, exp a = scale * A * e^(b * t_ref), c = scale * c'.


@dataclass(frozen=True)
class _Family:
    name: str
    g: Callable[[np.ndarray, float], np.ndarray]  # transient's argument
    to_public: Callable[[np.ndarray, float, float], dict[str, float]]


def _g_power(t: np.ndarray, t_ref: float) -> np.ndarray:
    return np.log(t / t_ref)


def _g_exp(t: np.ndarray, t_ref: float) -> np.ndarray:
    return t - t_ref


def _public_power(theta: np.ndarray, scale: float, t_ref: float) -> dict[str, float]:
    log_a, b, c = theta
    return {"a": float(scale * np.exp(log_a + b * np.log(t_ref))), "b": float(b), "c": float(scale * c)}


def _public_exp(theta: np.ndarray, scale: float, t_ref: float) -> dict[str, float]:
    log_a, b, c = theta
    return {"a": float(scale * np.exp(log_a + b * t_ref)), "b": float(b), "c": float(scale * c)}


_FLOOR_FAMILIES = {
    "power_floor": _Family("power_floor", _g_power, _public_power),
    "exp_floor": _Family("exp_floor", _g_exp, _public_exp),
}


def _floor_log_model(gt: np.ndarray, log_a: float, b: float, c: float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.logaddexp(log_a - b * gt, np.log(c))


def _floor_log_jac(gt: np.ndarray, log_a: float, b: float, c: float) -> np.ndarray:
    log_m = _floor_log_model(gt, log_a, b, c)
    w = np.exp(log_a - b * gt - log_m)  # share of the transient in the model
    return np.column_stack([w, -w * gt, np.exp(-log_m)])


def _floor_starts(gt: np.ndarray, z: np.ndarray) -> list[np.ndarray]:
    """Starting points: for floors c0 = 0, min/2, 0.9 min, a line through log(y - c0) against g(t)."""
    y = np.exp(z)
    starts = []
    for c0 in (0.0, 0.5 * y.min(), 0.9 * y.min()):
        slope, intercept = np.polyfit(gt, np.log(y - c0), 1)
        b0 = float(np.clip(-slope, 0.05, 0.5 * _B_MAX))
        log_a0 = float(np.clip(intercept, -0.9 * _LOG_A_BOUND, 0.9 * _LOG_A_BOUND))
        starts.append(np.array([log_a0, b0, c0]))
    return starts


@dataclass(frozen=True)
class _RawFit:
    converged: bool
    theta: np.ndarray | None = None
    rss: float = math.inf
    message: str | None = None


def _curve_fit_quiet(f, jac, x, z, p0, bounds) -> _RawFit:
    """One curve_fit call; non-convergence and warnings become a record, never an exception."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", OptimizeWarning)  # covariance: not needed here
            warnings.simplefilter("ignore", RuntimeWarning)
            kw = {"method": "trf", "bounds": bounds} if bounds is not None else {"method": "lm"}
            theta, _cov, info, mesg, ier = curve_fit(
                f, x, z, p0=p0, jac=jac, full_output=True, ftol=_FTOL, xtol=_XTOL, gtol=_GTOL,
                maxfev=_MAX_NFEV, **kw,
            )
            rss = float(np.sum((f(x, *theta) - z) ** 2))
    except (RuntimeError, ValueError, np.linalg.LinAlgError) as exc:
        return _RawFit(converged=False, message=str(exc).splitlines()[0])
    if ier not in (1, 2, 3, 4) or not np.all(np.isfinite(theta)) or not np.isfinite(rss):
        return _RawFit(converged=False, message=f"not converged: {mesg}")
    return _RawFit(converged=True, theta=np.asarray(theta, dtype=float), rss=rss)


def _fit_floor(name: str, t: np.ndarray, z: np.ndarray, t_ref: float) -> _RawFit:
    fam = _FLOOR_FAMILIES[name]
    gt = fam.g(t, t_ref)
    bounds = ([-_LOG_A_BOUND, 0.0, 0.0], [_LOG_A_BOUND, _B_MAX, np.inf])
    best = _RawFit(converged=False, message="no start converged")
    for p0 in _floor_starts(gt, z):
        fit = _curve_fit_quiet(_floor_log_model, _floor_log_jac, gt, z, p0, bounds)
        if fit.converged and fit.rss < best.rss:
            best = fit
        elif not best.converged and fit.message:
            best = fit
    return best


def _line_model(lt: np.ndarray, p: float, q: float) -> np.ndarray:
    return p + q * lt


def _line_jac(lt: np.ndarray, p: float, q: float) -> np.ndarray:
    return np.column_stack([np.ones_like(lt), lt])


def _fit_line(t: np.ndarray, z: np.ndarray) -> _RawFit:
    lt = np.log(t)
    q0 = (z[-1] - z[0]) / (lt[-1] - lt[0])
    return _curve_fit_quiet(_line_model, _line_jac, lt, z, [z[0] - q0 * lt[0], q0], None)


def _log_value(name: str, theta: np.ndarray, t: float, t_ref: float) -> float:
    """log(model(t) / scale) in the internal parametrisation (stable far from the data)."""
    if name == "loglog_line":
        return float(theta[0] + theta[1] * np.log(t))
    gt = _FLOOR_FAMILIES[name].g(np.array([float(t)]), t_ref)
    return float(_floor_log_model(gt, *theta)[0])


def evaluate_family(family: str, params: dict[str, float], t: ArrayLike) -> np.ndarray:
    """Evaluate a family's formula (:data:`FORMULAS`) with public parameters.

    Parameters
    ----------
    family : str
        One of :data:`FAMILIES`.
    params : dict of str to float
        ``{"a", "b", "c"}`` for the floor families, ``{"p", "q"}`` for ``loglog_line``, as in
        :attr:`SeriesFit.params`.
    t : array_like
        Iteration numbers (> 0).

    Returns
    -------
    ndarray, shape of ``t``
        The curve, in the unit of the fitted series.
    """
    t = np.asarray(t, dtype=float)
    if family == "power_floor":
        return params["a"] * t ** (-params["b"]) + params["c"]
    if family == "exp_floor":
        return params["a"] * np.exp(-params["b"] * t) + params["c"]
    if family == "loglog_line":
        return np.exp(params["p"] + params["q"] * np.log(t))
    raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")


def value_at_k_reason(value: float) -> str | None:
    """Why a fitted value at k is not reported (the seed's "---"), or None when it is.

    Returns ``"value at k is not finite"`` for NaN or +-inf and ``"value at k is negative"`` for a
    negative value.  The families here cannot give a negative value (``a*t^-b + c`` and
    ``a*exp(-bt) + c`` with ``a > 0, c >= 0``, and ``e^p t^q``, are positive), so the second rule only
    guards the seed's wording and any family added later.
    """
    if not math.isfinite(value):
        return "value at k is not finite"
    if value < 0:
        return "value at k is negative"
    return None


# --------------------------------------------------------------------------------------
# Series fit
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CandidateFit:
    """One family's fit to a series, for the comparison table.

    Attributes
    ----------
    family : str
    converged : bool
        The best start converged (curve_fit returned finite parameters and a success status).
    n_params : int
    aicc : float or None
        None if not converged, or AICc is undefined (n <= n_params + 1).
    rmse_log : float or None
        ``sqrt(RSS / n)`` of the log-space residuals (natural log: ~ relative error).
    params : dict of str to float or None
        Public parameters (see :data:`FORMULAS`), None if not converged.
    message : str or None
        Why it did not converge, or why it has no AICc.
    """

    family: str
    converged: bool
    n_params: int
    aicc: float | None
    rmse_log: float | None
    params: dict[str, float] | None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "converged": self.converged, "n_params": self.n_params, "aicc": self.aicc,
                "rmse_log": self.rmse_log, "params": None if self.params is None else dict(self.params),
                "message": self.message}


@dataclass(frozen=True)
class SeriesFit:
    """The chosen curve for one percentile series and its value at iteration k.

    Attributes
    ----------
    family : str or None
        The chosen family (:data:`CRITERION`), None when none was eligible.
    params : dict of str to float
        Its public parameters (:data:`FORMULAS`; a and c in the series' unit), empty if no family.
    k : float
        Iteration at which the curve is evaluated.
    value_at_k : float or None
        The chosen curve at ``t = k``, in the series' unit; None (the seed's "---") with ``reason``.
    rmse_log : float or None
        Log-space RMSE of the chosen fit.
    r2_log : float or None
        ``1 - RSS / TSS`` in log space; None if no fit or the series is constant (TSS ~ 0).
    n_points : int
        Points used (finite and positive).
    t_used : tuple of float
        Their iteration numbers.
    reason : str or None
        None when ``value_at_k`` is given; else why not.
    candidates : tuple of CandidateFit
        Every family's fit, in :data:`FAMILIES` order (empty when too few points).
    """

    family: str | None
    params: dict[str, float]
    k: float
    value_at_k: float | None
    rmse_log: float | None
    r2_log: float | None
    n_points: int
    t_used: tuple[float, ...]
    reason: str | None
    candidates: tuple[CandidateFit, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (no NaN or inf): the fields, candidates as dicts."""
        return {"family": self.family, "params": dict(self.params), "k": self.k, "value_at_k": self.value_at_k,
                "rmse_log": self.rmse_log, "r2_log": self.r2_log, "n_points": self.n_points,
                "t_used": list(self.t_used), "reason": self.reason,
                "candidates": [c.to_dict() for c in self.candidates]}


def _aicc(rss: float, n: int, p: int) -> float | None:
    if n <= p + 1:
        return None
    rss = max(rss, n * LOG_RESIDUAL_FLOOR**2)
    return n * math.log(rss / n) + 2 * p + 2 * p * (p + 1) / (n - p - 1)


def _no_fit(k: float, n: int, t_used: tuple[float, ...], reason: str,
            candidates: tuple[CandidateFit, ...] = ()) -> SeriesFit:
    return SeriesFit(family=None, params={}, k=k, value_at_k=None, rmse_log=None, r2_log=None, n_points=n,
                     t_used=t_used, reason=reason, candidates=candidates)


def _check_series(y: ArrayLike, t: ArrayLike | None, k: float, min_points: int) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (one value per iteration), got shape {y.shape}")
    if (y < 0).any() or np.isneginf(y).any():
        raise ValueError("y must not be negative (a percentile of norms)")
    t = np.arange(1.0, y.size + 1.0) if t is None else np.asarray(t, dtype=float)
    if t.shape != y.shape:
        raise ValueError(f"t must have the shape of y {y.shape}, got {t.shape}")
    if not (np.all(np.isfinite(t)) and np.all(t > 0) and np.all(np.diff(t) > 0)):
        raise ValueError("t must be finite, positive and strictly increasing")
    if isinstance(k, bool) or not (isinstance(k, (int, float, np.integer, np.floating)) and math.isfinite(k) and k > 0):
        raise ValueError(f"k must be a positive iteration number, got {k!r}")
    if isinstance(min_points, bool) or int(min_points) != min_points or min_points < 4:
        raise ValueError(f"min_points must be an integer >= 4 (AICc of a 2-parameter fit needs 4), got {min_points!r}")
    return y, t


def fit_series(y: ArrayLike, *, k: float, min_points: int = 4, t: ArrayLike | None = None) -> SeriesFit:
    """Fit the curve families to a percentile series in log space and evaluate the chosen one at k.

    Parameters
    ----------
    y : array_like, shape (T,)
        A percentile of the perturbation norm after iterations ``t`` (any unit; >= 0).  ``inf``
        (too many failed clips) and ``NaN`` are missing values; zeros cannot be fitted in log
        space and are left out too.
    k : float
        Iteration at which to evaluate the chosen curve (> 0; ``k > t[-1]`` extrapolates).
    min_points : int, default 4
        Fewest usable points for a fit (>= 4).
    t : array_like, shape (T,), optional
        Iteration numbers, positive and increasing; default ``1, 2, ..., T``.

    Returns
    -------
    SeriesFit
        ``value_at_k`` is None, with ``reason``, when: fewer than ``min_points`` finite positive
        points (``"too few finite positive points (n=.. < min_points=..)"``); every finite point is
        zero (``"series is constant zero"``); no family converged (``"no fit converged"``); or
        :func:`value_at_k_reason` rejects the value (then ``family`` and ``params`` still show the fit).

    Notes
    -----
    The selection rule is :data:`CRITERION`.  Deterministic: fixed starting points, no random draws.
    """
    y, t = _check_series(y, t, k, min_points)
    k = float(k)
    finite = np.isfinite(y)
    use = finite & (y > 0)
    n = int(use.sum())
    t_used = tuple(float(v) for v in t[use])
    if n < min_points:
        if finite.sum() >= min_points and not (y[finite] > 0).any():
            return _no_fit(k, n, t_used, "series is constant zero")
        return _no_fit(k, n, t_used, f"too few finite positive points (n={n} < min_points={min_points})")

    series = _LogSeries.of(t[use], y[use])
    raw = {name: _fit_floor(name, series.t, series.z, series.t_ref) for name in _FLOOR_FAMILIES}
    raw["loglog_line"] = _fit_line(series.t, series.z)
    candidates = tuple(_candidate(name, raw[name], series) for name in FAMILIES)
    eligible = [c for c in candidates if c.aicc is not None]
    if not eligible:
        reason = "no fit converged" if not any(c.converged for c in candidates) else (
            f"no converged fit has a defined AICc (n={n})")
        return _no_fit(k, n, t_used, reason, candidates)
    best = min(eligible, key=lambda c: (c.aicc, c.n_params, FAMILIES.index(c.family)))
    return _chosen(best, raw[best.family], series, k=k, t_used=t_used, candidates=candidates)


@dataclass(frozen=True)
class _LogSeries:
    """The usable points of a series as fitted: ``z = log(y / scale)`` against ``t``.

    Attributes
    ----------
    t : ndarray, shape (n,)
        Iteration numbers of the finite, positive points.
    z : ndarray, shape (n,)
        ``log(y / scale)`` at those points (dimensionless).
    scale : float
        Geometric mean of ``y`` (the series' unit): the fit runs on ``y / scale ~ 1``.
    t_ref : float
        ``t[0]``, the reference iteration of the floor families' internal parameters.
    """

    t: np.ndarray
    z: np.ndarray
    scale: float
    t_ref: float

    @classmethod
    def of(cls, t: np.ndarray, y: np.ndarray) -> _LogSeries:
        scale = float(np.exp(np.mean(np.log(y))))
        return cls(t=t, z=np.log(y) - math.log(scale), scale=scale, t_ref=float(t[0]))

    @property
    def n(self) -> int:
        return int(self.t.size)


def _candidate(name: str, fit: _RawFit, series: _LogSeries) -> CandidateFit:
    """One family's fit for the comparison table: public parameters, AICc and log RMSE."""
    p = N_PARAMS[name]
    if not fit.converged:
        return CandidateFit(name, False, p, None, None, None, fit.message)
    if name == "loglog_line":
        params = {"p": float(fit.theta[0] + math.log(series.scale)), "q": float(fit.theta[1])}
    else:
        params = _FLOOR_FAMILIES[name].to_public(fit.theta, series.scale, series.t_ref)
    n = series.n
    aicc = _aicc(fit.rss, n, p)
    message = None if aicc is not None else f"AICc undefined: n={n} <= n_params + 1"
    return CandidateFit(name, True, p, aicc, math.sqrt(fit.rss / n), params, message)


def _chosen(best: CandidateFit, fit: _RawFit, series: _LogSeries, *, k: float, t_used: tuple[float, ...],
            candidates: tuple[CandidateFit, ...]) -> SeriesFit:
    """The chosen family's curve evaluated at ``k`` (in the series' unit) and its log-space R^2."""
    n = series.n
    tss = float(np.sum((series.z - series.z.mean()) ** 2))
    r2 = 1.0 - fit.rss / tss if tss > n * LOG_RESIDUAL_FLOOR**2 else None
    with np.errstate(over="ignore"):
        value = float(np.exp(_log_value(best.family, fit.theta, k, series.t_ref) + math.log(series.scale)))
    reason = value_at_k_reason(value)
    return SeriesFit(family=best.family, params=dict(best.params), k=k, value_at_k=value if reason is None else None,
                     rmse_log=best.rmse_log, r2_log=r2, n_points=n, t_used=t_used, reason=reason,
                     candidates=candidates)


#: How far past the last iteration T the fitted value at k may lie and still get an interval: one
#: iteration (the seed's k = 11 after T = 10). ``bench/coverage.py --studies fitted`` measured the
#: interval at k = T + 1 (93.5-98.5 % at 80-1 024 clips) and at k = 2T, where the fitted step from T
#: to k is itself uncertain (88.5-93.5 %): beyond one iteration the FactSheet prints none.
MAX_STEPS_PAST_T: int = 1


def fitted_value_ci(
    norms_by_iter: ArrayLike,
    fits: Sequence[SeriesFit],
    *,
    percentiles: Sequence[float] | ArrayLike,
    confidence: float = 0.95,
    max_steps_past_t: int | None = MAX_STEPS_PAST_T,
) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """Confidence intervals of the fitted values at k: the percentile's interval at iteration
    ``a = min(k, T)`` moved along the fitted curve to k.

    The fitted value at k estimates the population percentile after k iterations. Its interval is
    the distribution-free order-statistic interval of the population percentile at iteration ``a``
    (:func:`percentile_ci` on the clips' norms after ``a`` iterations), multiplied by the fitted
    curve's step ``f(k) / f(a)``: the sampling uncertainty of the percentile is carried exactly, the
    curve's shape between ``a`` and ``k`` is taken as fitted. For ``k <= T`` the step is 1 (the
    percentile at k was observed); for ``k = T + 1`` it is the one-iteration extrapolation the seed
    prints. Further than :data:`MAX_STEPS_PAST_T` iterations past T no interval is given: there the
    fitted step's own error matters and the interval under-covers (``bench/coverage.py --studies
    fitted``).

    Parameters
    ----------
    norms_by_iter : array_like, shape (n_clips, T)
        Norm of each clip after iterations 1..T (``+inf`` where no adversarial example was found).
    fits : sequence of SeriesFit, length n_percentiles
        :func:`fit_percentile_table` of the same norms and percentiles.
    percentiles : array_like, shape (n_percentiles,)
    confidence : float, default 0.95
    max_steps_past_t : int or None, default :data:`MAX_STEPS_PAST_T`
        None: an interval at any k (only for the coverage study of the rule).

    Returns
    -------
    low, high : ndarray, shape (n_percentiles,)
        Bounds in the unit of the norms; ``high = +inf`` where the percentile's upper bound falls on a
        clip not fooled; NaN (both) where no interval is given.
    reasons : list of (str or None), length n_percentiles
        None where an interval is given, else why not.
    """
    x = np.asarray(norms_by_iter, dtype=float)
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"norms_by_iter must have shape (n_clips, T), got {x.shape}")
    q = np.atleast_1d(_check_percentiles(percentiles))
    if len(fits) != q.size:
        raise ValueError(f"need one fit per percentile: {len(fits)} fits for {q.size} percentiles")
    t_last = x.shape[1]
    low, high = np.full(q.shape, np.nan), np.full(q.shape, np.nan)
    reasons: list[str | None] = []
    for i, fit in enumerate(fits):
        k = float(fit.k)
        if fit.value_at_k is None or fit.family is None:
            reasons.append("no fitted value at k")
            continue
        if max_steps_past_t is not None and k > t_last + max_steps_past_t:
            reasons.append(f"no interval: k = {k:g} is more than {max_steps_past_t} "
                           f"iteration{'s' if max_steps_past_t != 1 else ''} past T = {t_last} (the fitted "
                           "extrapolation's own error would not be carried)")
            continue
        if k < 1 or (k <= t_last and k != int(k)):
            reasons.append(f"k = {k:g} is not an iteration that was run")
            continue
        anchor = min(int(k), t_last)
        at_anchor = float(evaluate_family(fit.family, fit.params, [float(anchor)])[0])
        if not (math.isfinite(at_anchor) and at_anchor > 0):
            reasons.append(f"the fitted curve is not finite and positive at iteration {anchor}")
            continue
        lo, hi = percentile_ci(x[:, anchor - 1], percentiles=q[i:i + 1], confidence=confidence)
        if not np.isfinite(lo[0]):
            reasons.append(f"insufficient evidence (too few clips to bound the percentile at iteration {anchor} "
                           "from below)")
            continue
        step = 1.0 if anchor == k else float(fit.value_at_k) / at_anchor
        low[i], high[i] = float(lo[0]) * step, float(hi[0]) * step
        reasons.append(None)
    return low, high, reasons


def fit_percentile_table(
    norms_by_iter: ArrayLike,
    *,
    percentiles: Sequence[float] | ArrayLike,
    k: float,
    min_points: int = 4,
) -> list[SeriesFit]:
    """Percentile series of per-iteration norms and their fitted values at iteration k.

    Parameters
    ----------
    norms_by_iter : array_like, shape (n_clips, T)
        Norm of each clip after iterations 1..T (``+inf`` where no adversarial example was found).
    percentiles : array_like, shape (n_percentiles,)
        Percentiles in [0, 100], e.g. (5, 10, 15, 25, 50).
    k : float
        Iteration at which each curve is evaluated (the seed: T = 10, k = 11).
    min_points : int, default 4

    Returns
    -------
    list of SeriesFit, length n_percentiles
        ``fit_series(percentiles_with_failures(norms_by_iter, ...)[i], k=k)`` for each percentile.
    """
    x = np.asarray(norms_by_iter, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"norms_by_iter must have shape (n_clips, T), got {x.shape}")
    q = np.atleast_1d(_check_percentiles(percentiles))
    table = percentiles_with_failures(x, percentiles=q)
    return [fit_series(row, k=k, min_points=min_points) for row in table]
