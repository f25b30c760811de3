"""The Explanation section in words: its definitions and its findings."""

from __future__ import annotations

DEFINITIONS = {
    "Occlusion": "Each cell of a grid of mel-spaced frequency bands x equal time slices is filled (dataset-mean "
                 "STFT magnitude with the clip's own phase, or silence) and the spectrogram projected back to a "
                 "waveform, pass after pass, until the cell is the stated attenuation closer to the fill; the model "
                 "scores the clip and every occluded copy in one batch (1 + bands x slices queries per clip).",
    "Attenuation": "10 log10 of the original's energy in the cell over the squared distance of the occluded "
                   "clip's cell magnitudes from the fill, after the last pass; a cell short of the target keeps some "
                   "of the original, so its importance is a lower bound.",
    "Importance": "Drop of the class's log-odds, log(p / (1 - p)), when the cell is occluded; positive: the "
                  "cell supported the class. Per class: summed over time slices (events are not aligned across "
                  "clips), averaged over the class's explained clips.",
    "Explained clips": "Positives the model detects (score >= the threshold), drawn with the section's seed, up to "
                       "n_per_class per class.",
    "Deletion curve": "The class's score, over its score on the whole clip, as cells are removed cumulatively in "
                      "an order (RISE, Petsiuk et al. 2018); the area under it (fraction of cells removed 0 to 1) "
                      "is lower when the order finds what the score rests on sooner. Compared: the map's order, "
                      "loudest cells first, random orders (their mean).",
    "Says more than loudness": "Claimed only when the paired bootstrap interval of (area, map order) - (area, "
                               "loudest first) over the checked clips lies below 0.",
    "Interval of a mean": "Every interval of the section is of a mean over clips (band importance, deletion-area "
                          "difference, localisation AUC): studentised bootstrap (bootstrap-t), each resample's mean "
                          "standardised by its own standard deviation, which the percentile bootstrap ignores (it "
                          "covered 48-51 % at 2 clips, 85-92 % at 10-14); no interval, insufficient evidence, below "
                          "5 clips.",
    "Fill sensitivity": "The checked clips explained again with the other fill; median Spearman rank correlation "
                        "of the two maps, share with the same top cell, and the same for band profiles.",
    "Random-logit check": "Each map against the map of a class drawn at random among the others, from the same "
                          "batch (Sixt et al. 2020); passed when the median Spearman correlation is below 0.5: the "
                          "map depends on the class asked about.",
    "Model-randomisation check": "The checked clips' occluded copies scored again with every weight tensor of the "
                                 "model permuted (Adebayo et al. 2018); passed when the median Spearman correlation "
                                 "with the trained model's maps is below 0.5: the map depends on what was learnt. "
                                 "Not possible for a score-only model.",
    "Localisation": "ROC AUC of a map's time slices (importance summed over bands) against the slices the "
                    "generator filled at least half with an event of the class (chance 0.5): a test of the method "
                    "on data whose events are known.",
}


def findings(section: dict, class_labels: list) -> list[str]:
    """The section's findings in plain words, most telling first."""
    out = []
    f = section["faithfulness"]
    if f["n_clips"]:
        vs_l, vs_r = f["vs_loudness"], f["vs_random"]
        if f["beats_loudness"]:
            out.append(f"The occlusion map says more than where the clip is loud: removing cells in its order lowers "
                       f"the score sooner than removing the loudest cells first (area difference {vs_l['mean']:.3f}, "
                       f"interval {_ci(vs_l)}).")
        else:
            out.append(f"The occlusion map is not shown to say more than where the clip is loud (area difference to "
                       f"loudest-first {vs_l['mean']:.3f}, interval {_ci(vs_l)} does not lie below 0).")
        verdict = "beats" if f["beats_random"] else "does not beat"
        out.append(f"It {verdict} random orders (area difference {vs_r['mean']:.3f}, interval {_ci(vs_r)}).")
    tops = [(r["label"], r["bands"][r["top_band"]]) for r in section["per_class"] if r["top_band"] is not None]
    if tops:
        out.append("Most important band per class: " + "; ".join(
            f"{label} {b['low_hz']:.0f}-{b['high_hz']:.0f} Hz" for label, b in tops) + ".")
    fs = section["fill_sensitivity"]["cells"]
    if fs["median_spearman"] is not None:
        out.append(f"The fill matters: maps with {section['settings']['fill']} and "
                   f"{section['fill_sensitivity']['other_fill']} fill agree with median Spearman "
                   f"{fs['median_spearman']:.2f} and share the top cell in {100 * fs['same_top_cell_share']:.0f} % "
                   f"of clips; a single most important cell is indicative only.")
    out += _sanity(section["sanity"])
    loc = section["localisation"]
    if loc["status"] == "run":
        out.append(f"Against the generator's known events the maps localise with mean AUC {loc['auc']['mean']:.2f} "
                   f"(interval {_ci(loc['auc'])}; chance 0.5).")
    if section["attenuation"]["warning"]:
        out.append(section["attenuation"]["warning"][0].upper() + section["attenuation"]["warning"][1:] + ".")
    return out


def _sanity(sanity: dict) -> list[str]:
    out = []
    rl, mr = sanity["random_logit"], sanity["model_randomisation"]
    if rl["passed"] is not None:
        out.append(f"Random-logit check {'passed' if rl['passed'] else 'failed'}: maps of a random other class "
                   f"correlate with median Spearman {rl['median_spearman']:.2f}.")
    if mr["status"] != "run":
        out.append("Model-randomisation check: " + mr["reason"] + ".")
    elif mr["passed"] is not None:
        out.append(f"Model-randomisation check {'passed' if mr['passed'] else 'failed'}: with the weights permuted "
                   f"the maps correlate with the trained model's at median Spearman {mr['median_spearman']:.2f}.")
    return out


def _ci(est: dict | None) -> str:
    if not est or est.get("low") is None or est.get("high") is None:
        return "undefined"
    return f"{est['low']:.3f} to {est['high']:.3f}"
