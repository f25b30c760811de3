"""Per-clip attack records -> the numbers of the Robustness section (pure functions, no model).

A per-clip record is a JSON-able dict written by :mod:`attacks.runner`::

    {"clip_id": str, "row": int, "label": int, "label_name": str, "true_labels": [str],
     "success": bool, "reason": str, "queries": int, "init": str,
     "iterate_l2": [T floats or None], "iterate_linf": [...], "iterate_snr_db": [...],
     "boundary_distance": [T floats or None]}

Distances are in the model's input units (float waveform in [-1, 1]); ``x 32768`` gives
16-bit PCM units. A clip without an adversarial example after T iterations counts as
``+inf`` (never 0).
"""

from __future__ import annotations


import numpy as np

from factsheet.metrics import clopper_pearson_interval, finite_or_none  # also imported from here (its old home)

from attacks.curves import CRITERION, FORMULAS, fit_percentile_table, fitted_value_ci, percentile_ci, \
    percentiles_with_failures

INT16_SCALE = 32768.0
NORM_KEYS = {"l2": "iterate_l2", "linf": "iterate_linf"}


def distance_matrix(records: list[dict], *, norm: str, iterations: int) -> np.ndarray:
    """(n_clips, T) perturbation norms of ART's iterate after each iteration; ``+inf`` where not found.

    A clip that did not succeed is ``+inf`` at every iteration (not found within budget).
    """
    key = NORM_KEYS[norm]
    out = np.full((len(records), iterations), np.inf)
    for i, r in enumerate(records):
        if not r["success"]:
            continue
        vals = [np.inf if v is None else float(v) for v in r[key][:iterations]]
        out[i, :len(vals)] = vals
    return out


def relative_perturbation(records: list[dict], *, iterations: int) -> np.ndarray:
    """(n_clips,) ``||delta||_2 / ||x||_2`` of the iterate after T iterations (``+inf`` if not found).

    ``SNR_dB = -20 log10(relative perturbation)``: clip power over perturbation power.
    """
    out = np.full(len(records), np.inf)
    for i, r in enumerate(records):
        snr = r["iterate_snr_db"][iterations - 1] if r["success"] else None
        if snr is not None:
            out[i] = 10.0 ** (-float(snr) / 20.0)
    return out


def snr_db_from_relative(rel: np.ndarray | float) -> np.ndarray | float:
    """``-20 log10(rel)``; ``-inf`` for a failed clip (``rel = inf``)."""
    with np.errstate(divide="ignore"):
        return -20.0 * np.log10(rel)


def summarise_norm(records: list[dict], *, norm: str, iterations: int, k: int, percentiles: list[float],
                   n_bootstrap: int, confidence: float, seed: int) -> dict:
    """The per-norm block of ``robustness.hopskipjump``: percentile table, fits, success, series.

    Parameters
    ----------
    records : list of dict
        Per-clip records (module docstring), in clip order.
    norm : {"l2", "linf"}
    iterations : int
        T, the iterations run.
    k : int
        Iteration at which each percentile's fitted curve is evaluated.
    percentiles : list of float
    n_bootstrap, confidence, seed
        ``n_bootstrap = 0`` disables the percentile CIs (order-statistic intervals at
        ``confidence``, :func:`attacks.curves.percentile_ci`; no resampling, ``seed`` unused) and
        those of the fitted values at k (:func:`attacks.curves.fitted_value_ci`).
    """
    dist = distance_matrix(records, norm=norm, iterations=iterations)
    rel = relative_perturbation(records, iterations=iterations)
    n = len(records)
    n_success = int(sum(bool(r["success"]) for r in records))
    q = np.asarray(percentiles, float)
    rows = []
    if n:
        at_t = percentiles_with_failures(dist[:, -1], percentiles=q)
        rel_t = percentiles_with_failures(rel, percentiles=q)
        fits = fit_percentile_table(dist, percentiles=q, k=k)
        if n_bootstrap > 0:
            lo, hi = percentile_ci(dist[:, -1], percentiles=q, confidence=confidence)
            flo, fhi, freasons = fitted_value_ci(dist, fits, percentiles=q, confidence=confidence)
        else:
            lo = hi = flo = fhi = np.full(q.shape, np.nan)
            freasons = ["intervals off ([metrics] bootstrap_resamples = 0)"] * q.size
        series = percentiles_with_failures(dist, percentiles=q)
        for i, p in enumerate(q):
            f = fits[i]
            rows.append({
                "percentile": float(p), "value": finite_or_none(at_t[i]),
                "value_int16": finite_or_none(at_t[i] * INT16_SCALE),
                "ci_low": finite_or_none(lo[i]), "ci_high": finite_or_none(hi[i]),
                "snr_db": finite_or_none(snr_db_from_relative(rel_t[i])),
                "fitted_at_k": finite_or_none(f.value_at_k) if f.value_at_k is not None else None,
                "fitted_at_k_int16": (finite_or_none(f.value_at_k * INT16_SCALE) if f.value_at_k is not None else None),
                "fitted_at_k_ci": {"low": finite_or_none(flo[i]), "high": finite_or_none(fhi[i]), "reason": freasons[i]},
                "fit_family": f.family, "fit_reason": f.reason, "fit": f.to_dict(),
                "series": [finite_or_none(v) for v in series[i]],
            })
    low, high = clopper_pearson_interval(n_success, n, confidence=confidence)
    return {
        "norm": norm, "iterations": int(iterations), "k": int(k), "n_attacked": n, "n_success": n_success,
        "success_rate": (n_success / n) if n else None, "success_rate_ci": {"low": low, "high": high},
        "median_queries": (float(np.median([r["queries"] for r in records])) if n else None),
        "percentiles": rows,
        "clips": [_clip_row(r, iterations=iterations) for r in records],
    }


def _clip_row(r: dict, *, iterations: int) -> dict:
    def scaled(vals):
        return [None if v is None else float(v) * INT16_SCALE for v in vals[:iterations]]

    return {"clip_id": r["clip_id"], "label": r["label_name"], "target": r.get("target_name"),
            "true_labels": list(r["true_labels"]),
            "success": bool(r["success"]), "reason": r["reason"], "queries": int(r["queries"]), "init": r["init"],
            "l2": list(r["iterate_l2"][:iterations]), "linf": list(r["iterate_linf"][:iterations]),
            "l2_int16": scaled(r["iterate_l2"]), "linf_int16": scaled(r["iterate_linf"]),
            "snr_db": list(r["iterate_snr_db"][:iterations]),
            "boundary_distance": list(r["boundary_distance"][:iterations])}


def group_robustness(records: list[dict], *, groups: dict[str, list], norm: str, iterations: int,
                     n_bootstrap: int, confidence: float, seed: int) -> list[dict]:
    """Median perturbation norm and SNR per group, with order-statistic CIs (:func:`percentile_ci`).

    Parameters
    ----------
    records : list of dict
        Per-clip records of one norm.
    groups : dict of str to list
        Column name -> one group value per record (e.g. ``{"class": [...], "voice_type": [...]}``).
    """
    dist = distance_matrix(records, norm=norm, iterations=iterations)[:, -1]
    rel = relative_perturbation(records, iterations=iterations)
    out = []
    for column, values in groups.items():
        values = np.asarray([str(v) for v in values])
        for g in sorted(set(values.tolist())):
            sel = values == g
            d, r = dist[sel], rel[sel]
            row = {"column": column, "group": g, "n": int(sel.sum()), "n_success": int(np.isfinite(d).sum()),
                   "median": finite_or_none(percentiles_with_failures(d, percentiles=50.0)),
                   "median_snr_db": finite_or_none(
                       snr_db_from_relative(percentiles_with_failures(r, percentiles=50.0)))}
            if n_bootstrap > 0 and sel.sum() > 1:
                lo, hi = percentile_ci(d, percentiles=[50.0], confidence=confidence)
                rlo, rhi = percentile_ci(r, percentiles=[50.0], confidence=confidence)
                row.update(median_ci={"low": finite_or_none(lo[0]), "high": finite_or_none(hi[0])},
                           median_snr_db_ci={"low": finite_or_none(snr_db_from_relative(rhi[0])),
                                             "high": None if np.isneginf(rlo[0])
                                             else finite_or_none(snr_db_from_relative(rlo[0]))})
            else:
                row.update(median_ci=None, median_snr_db_ci=None)
            out.append(row)
    return out


DEFINITIONS = {
    "attack": ("HopSkipJump (Chen, Jordan and Wainwright 2020) as implemented by ART, decision-based: it only "
               "queries the model's top-1 class. Untargeted (default): a clip is fooled when the model's top-1 "
               "class changes from the class it gave the clean clip; targeted: when it becomes the clip's "
               "target class (a seeded random choice among the other classes)."),
    "iterate_distance": ("The perturbation norm of ART's iterate after iteration t, i.e. the point ART returns "
                         "when run with max_iter = t (after the gradient step and step-size search; not the "
                         "boundary-projected point). The tables and curves use this distance."),
    "boundary_distance": ("The distance of the binary-search projection of the iterate onto the decision "
                          "boundary (recorded per clip, not used in the tables)."),
    "l2": "L2 norm of the perturbation x_adv - x over all samples of the clip.",
    "linf": "L-infinity norm: the largest absolute sample change of the perturbation.",
    "units": ("Model input units: float waveform in [-1, 1] (16-bit PCM / 32768). 'int16' columns multiply by "
              "32768, the 16-bit PCM scale of the MAX FactSheet's table."),
    "percentile": ("Linear-interpolation percentile over the attacked clips (numpy's default); a clip with no "
                   "adversarial example within budget counts as +infinity, so a percentile that touches it is "
                   "infinite (shown as 'not found')."),
    "snr_db": ("SNR of the percentile row: -20 log10 of that percentile of the relative perturbation "
               "||x_adv - x||_2 / ||x||_2 after T iterations (clip power over perturbation power, dB); "
               "p % of attacked clips were fooled by a perturbation at least this quiet."),
    "ci": ("Distribution-free order-statistic interval of the population percentile (interval_method "
           "'order_statistic'): the k-th and l-th smallest norms, ranks from the binomial distribution so that "
           "each side misses with probability at most (1 - confidence) / 2 whatever the distribution of norms; a "
           "clip not fooled counts as +infinity, an upper bound on it is infinite ('∞'), and where too few clips "
           "were attacked to bound a low percentile from below (the 5th needs 72 clips at 95 %, the 10th 36) the "
           "lower bound is null: insufficient evidence."),
    "fit": ("Each percentile's series over iterations 1..T is fitted by each candidate family in log space; the "
            "value of the chosen curve at iteration k is shown in parentheses, '---' with the reason kept when no "
            "curve is chosen or its value is not a finite positive number."),
    "fit_ci": ("Interval of the fitted value at k (fitted_at_k_ci, interval_method 'order_statistic'): "
               "the order-statistic interval of the percentile at iteration a = min(k, T) multiplied by the fitted "
               "curve's step f(k) / f(a) (1 when k <= T). It carries the sampling uncertainty of the percentile and "
               "takes the curve's shape between a and k as fitted; so it is given only up to one iteration past T "
               "(the seed's k = 11 after 10), where its coverage was measured (bench/coverage.py --studies fitted), "
               "and not when the percentile at a has no lower bound (insufficient evidence); "
               "its reason says why not."),
    "fit_criterion": CRITERION,
    "fit_families": "; ".join(f"{k}: {v}" for k, v in FORMULAS.items()),
    "success_rate": ("Share of attacked clips for which an adversarial example was found within T iterations "
                     "and the per-clip query and time budget (Clopper-Pearson exact binomial interval)."),
}
