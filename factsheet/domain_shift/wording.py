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
    "ci": ("Paired percentile bootstrap over clips: the clean and the corrupted scores are evaluated on the same "
           "resamples, and the interval is taken over the replicate differences; replicates with no evaluable "
           "class are dropped and counted (n_used)."),
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


def _fmt(x, d: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{d}f}"


def _level(block: dict, cell: dict) -> str:
    return f"{cell['level']:g} {block['unit']}"


def findings(section: dict) -> list[str]:
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
