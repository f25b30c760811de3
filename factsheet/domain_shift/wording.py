"""The Domain Shift section in words: definitions, findings and the Poor Conditions it implies."""

from __future__ import annotations

TITLES = {"white_noise": "White noise", "pink_noise": "Pink noise", "reverb": "Reverberation",
          "lowpass": "Low-pass filter", "highpass": "High-pass filter", "level_drop": "Level drop",
          "overdrive": "Overdrive", "quantisation": "Quantisation", "speed": "Speed change"}

DEFINITIONS = {
    "corruption": ("A synthetic change of the recording applied to the evaluation clips at the model's input length "
                   "and sample rate, then requantised to 16-bit PCM. Each corruption has five severities, each "
                   "stated in physical units (dB, Hz, seconds, bits, semitones); every (clip, corruption, severity) "
                   "gets its own seeded random draw."),
    "clips": ("A class-stratified, seeded choice of evaluation clips (each clip in the stratum of its rarest "
              "positive class; strata taken in turn), the same clips for every cell and for the clean reference."),
    "drop": ("clean metric - corrupted metric on the same clips: positive means the corruption made the model "
             "worse. mAP, mean AUC and d' are defined as in Performance Metrics."),
    "ci": ("Paired BCa bootstrap over clips (interval_method 'bca'): the clean and the corrupted scores are evaluated "
           "on the same resamples, the interval is taken over the replicate differences with its bias correction and "
           "its acceleration from the differences with each clip left out (the percentile interval under-covered "
           "the mAP drop: 89.5 % at 400 clips, bench/coverage.py); replicates with no evaluable class are dropped "
           "and counted (n_used); no interval (insufficient evidence) when an evaluable class has fewer than 10 "
           "positive or negative clips among the corrupted ones."),
    "relative_drop": "mAP drop / clean mAP.",
    "mean_relative_drop": ("Per corruption: the mean over its severities of the relative mAP drop. Over the suite "
                           "(the headline): the mean of those means. It needs no reference model (ImageNet-C's "
                           "corruption error does; factsheet compare reports it between two FactSheets)."),
    "breaking_point": ("The first severity whose mAP drop exceeds the tolerance with confidence (its whole paired "
                       "interval lies above the tolerance); none when no severity does."),
    "measured": ("What the corruption achieved on these clips, measured on its output (median over clips, with "
                 "min and max), next to the level asked for."),
    "ap_retained": ("Per class: corrupted AP / clean AP, averaged over the severities of the corruption; undefined "
                    "when the class has no positive among the chosen clips or clean AP is 0."),
}


NATURAL_DEFINITIONS = {
    "natural_shift": ("A second dataset (a [[domain_shift.datasets]] entry, the target) scored by the same model and "
                      "compared with the evaluation dataset (the source), on the classes both score and can evaluate "
                      "(a positive and a negative clip in each); the other classes are listed with the reason."),
    "gap": ("target metric - evaluation-set metric: negative means the model does worse on the target. mAP, mean AUC "
            "and d' are defined as in Performance Metrics, over the compared classes only."),
    "unpaired_ci": ("Unpaired BCa bootstrap: the two datasets hold different clips, so each is resampled on its "
                    "own (evaluation set with [metrics] seed, target k with seed + 1 + k), the same number of times; "
                    "the gap's interval is taken over the differences of the replicates, bias-corrected and "
                    "accelerated, the acceleration from the gap with each clip of either set left out (the percentile "
                    "interval under-covered a harder target's mAP and the gaps, 87-91 %), taken at Hesterberg's expanded "
                    "level for n, the fewest positives of a compared class on either side (interval_method "
                    "'bca_expanded': 2 Phi(sqrt(n/(n-1)) t_{n-1}) - 1 in place of the nominal level; plain BCa covered "
                    "91.8-92.5 %); replicates with no evaluable class are dropped and counted (n_used)."),
    "prevalence_matched": ("AP depends on how many negatives a class has per positive: a target with another class mix "
                           "changes AP even where the model ranks its clips exactly as well. The prevalence-matched AP "
                           "weights each of the target's negatives of a class by (P_t / N_t) / (P_s / N_s) (positives "
                           "P and negatives N of the class in target t and evaluation set s), so every class has the "
                           "evaluation set's positives-to-negatives ratio; the matched gap is the change that a "
                           "different class mix cannot explain, and a finding is read from it. ROC AUC and d' do not "
                           "depend on the class mix and are compared as they are."),
    "natural_finding": ("A finding when the prevalence-matched mAP gap's whole interval lies below -tolerance (the "
                        "suite's tolerance): the model loses more than the tolerance on the target with confidence."),
}


def _fmt(x, d: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{d}f}"


def _level(block: dict, cell: dict) -> str:
    return f"{cell['level']:g} {block['unit']}"


def findings(section: dict) -> list[str]:
    """One sentence per corruption (its breaking point with numbers, or its largest drop), then one per
    natural-shift target (:func:`natural_finding`)."""
    return _corruption_findings(section) + [natural_finding(e, settings=section["settings"])
                                            for e in section.get("natural_shift", [])]


def _gap_words(m: dict, conf: str) -> str:
    g = m["gap"]
    return f"gap {_fmt(g['value'])}, {conf} {_fmt(g['ci_low'])} to {_fmt(g['ci_high'])}"


def natural_finding(entry: dict, *, settings: dict) -> str:
    """One natural-shift target in words: the prevalence-matched mAP gap with numbers, and the raw one."""
    conf = f"{round(settings['confidence'] * 100)}% CI"
    tol = settings["tolerance"]
    raw, matched = entry["metrics"]["mAP"], entry["metrics"]["mAP_matched"]
    where = (f"{len(entry['classes'])} common classes, {entry['n_clips_source']} evaluation and "
             f"{entry['n_clips_target']} target clips")
    if entry["finding"]:
        return (f"{entry['name']}: at the evaluation set's class mix mAP falls from {_fmt(matched['source']['value'])} "
                f"to {_fmt(matched['target']['value'])} (prevalence-matched {_gap_words(matched, conf)}), more than "
                f"the tolerance {tol:g}; raw mAP {_fmt(raw['target']['value'])} ({_gap_words(raw, conf)}); {where}.")
    return (f"{entry['name']}: no mAP loss beyond the tolerance {tol:g} with confidence at the evaluation set's class "
            f"mix (prevalence-matched mAP {_fmt(matched['target']['value'])} against "
            f"{_fmt(matched['source']['value'])}, {_gap_words(matched, conf)}; raw mAP {_fmt(raw['target']['value'])}, "
            f"{_gap_words(raw, conf)}); {where}.")


def _corruption_findings(section: dict) -> list[str]:
    """One sentence per corruption: its breaking point with numbers, or its largest drop."""
    conf = f"{round(section['settings']['confidence'] * 100)}% CI"
    tol = section["settings"]["tolerance"]
    out = []
    for b in section["corruptions"]:
        cells = b["cells"]
        if b["breaking_point"] is not None:
            c = next(c for c in cells if c["severity"] == b["breaking_point"]["severity"])
            m = c["mAP"]
            out.append(f"{b['title']}: from {_level(b, c)} (severity {c['severity']}) mAP falls by {_fmt(m['drop'])} "
                       f"({conf} {_fmt(m['drop_ci']['low'])} to {_fmt(m['drop_ci']['high'])}), more than the tolerance {tol:g}; "
                       f"mean relative drop over the five severities {_pct(b['mean_relative_drop'])}.")
            continue
        worst = max(cells, key=lambda c: c["mAP"]["drop"] if c["mAP"]["drop"] is not None else float("-inf"))
        m = worst["mAP"]
        out.append(f"{b['title']}: no severity lowered mAP by more than {tol:g} with confidence (largest drop "
                   f"{_fmt(m['drop'])} at {_level(b, worst)}, {conf} {_fmt(m['drop_ci']['low'])} to {_fmt(m['drop_ci']['high'])}).")
    return out


def poor_conditions(section: dict) -> list[str]:
    """Poor Conditions implied by the breaking points and by the natural-shift findings, with numbers."""
    conf = f"{round(section['settings']['confidence'] * 100)}% CI"
    natural = []
    for e in section.get("natural_shift", []):
        if not e["finding"]:
            continue
        m = e["metrics"]["mAP_matched"]
        natural.append(f"Recordings like {e['name']} ({e['dataset']['kind']} dataset, {e['n_clips_target']} clips): "
                       f"mAP falls from {_fmt(m['source']['value'])} (evaluation set) to {_fmt(m['target']['value'])} "
                       f"at the same class mix ({_gap_words(m, conf)}, over {len(e['classes'])} common classes; "
                       f"Domain Shift section, natural shift).")
    return _corruption_conditions(section) + natural


def _corruption_conditions(section: dict) -> list[str]:
    """Poor Conditions implied by the breaking points: the recording condition and its numbers."""
    conf = f"{round(section['settings']['confidence'] * 100)}% CI"
    clean = section["clean"]["mAP"]
    out = []
    for b in section["corruptions"]:
        if b["breaking_point"] is None:
            continue
        c = next(c for c in b["cells"] if c["severity"] == b["breaking_point"]["severity"])
        m = c["mAP"]
        out.append(f"{b['title']} at {_level(b, c)} or worse: mAP falls from {_fmt(clean)} (clean) to "
                   f"{_fmt(m['value'])} (drop {_fmt(m['drop'])}, {conf} {_fmt(m['drop_ci']['low'])} to {_fmt(m['drop_ci']['high'])}, "
                   f"n = {section['settings']['n_clips']} clips; Domain Shift section).")
    return out


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"
