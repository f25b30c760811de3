"""Column keys of the report's tables: for every number, its unit and a one-line definition.

:func:`column_keys` reads a FactSheet dict and returns, per table of the report, one entry per
column: ``{"label", "unit", "definition"}``, worded with the run's own settings (iterations, k,
confidence level, group-size thresholds). Renderers print the key under the table; nothing here
computes a number of the report. Where a section's ``definitions`` in the JSON already define a
quantity, the entry points to that text instead of restating it.
"""

from __future__ import annotations

UNITLESS = "unitless, 0 to 1"
PROBABILITY = "probability, 0 to 1"
SD = "standard deviations"
PCM = "16-bit PCM units: input units x 32768"


def _term(label: str, unit: str, definition: str) -> dict:
    return {"label": label, "unit": unit, "definition": definition}


def _pct(confidence) -> str:
    return f"{round(float(confidence) * 100)}%"


def column_keys(doc: dict) -> dict[str, list[dict]]:
    """Per table id, the key of its columns (see the module docstring).

    Parameters
    ----------
    doc : dict
        A FactSheet as loaded from its JSON.

    Returns
    -------
    dict of str to list of dict
        Table id -> ``[{"label": str, "unit": str, "definition": str}, ...]`` in column order.
        Tables of sections that were not evaluated are absent.
    """
    keys: dict[str, list[dict]] = {}
    keys["training_card"] = [
        _term("n_clips", "clips", "Clips in the training split described by the card."),
        _term("seed", "integer", "Seed the training split was generated from."),
        _term("class_event_counts", "sound events", "Events of each class in the training split (a clip holds "
                                                    "1-3 events, so counts add up to more than n_clips)."),
        _term("voice_type_counts", "sound events", "Speech events by speaker voice type; 'none' counts the "
                                                   "events that are not speech."),
    ]
    keys["model"] = [
        _term("Parameters", "weights", "Number of scalar weights in the model (trainable and not)."),
        _term("input_shape / clip_values", "samples / input units",
              "Waveform length ART feeds the model, and the range ART clips adversarial inputs to."),
    ]
    perf = doc.get("performance") or {}
    if perf.get("status") == "evaluated":
        defs = perf["definitions"]
        keys["performance_headline"] = [  # the rows of the headline table, each with its JSON field
            dict(_term("Mean Average Precision (mAP)", UNITLESS, defs["mAP"]), field="mAP"),
            dict(_term("Area Under the Curve (mean ROC AUC)", PROBABILITY, defs["mean_auc"]), field="mean_auc"),
            dict(_term("d-prime", SD, defs["d_prime"]), field="d_prime"),
            dict(_term("mean per-class d-prime", SD, defs["mean_class_d_prime"]), field="mean_class_d_prime"),
        ]
        keys["performance_per_class"] = _class_terms(perf)
        if perf.get("single_label"):
            keys["single_label"] = [
                _term("Accuracy", UNITLESS, "Share of clips whose top-scored class is their one true class."),
                _term("Precision", UNITLESS, "Of the clips predicted (top-1) as the class, the share that are it."),
                _term("Recall", UNITLESS, "Of the clips of the class, the share predicted (top-1) as it."),
                _term("F1", UNITLESS, "Harmonic mean of precision and recall; macro = plain mean over classes, "
                                      "weighted = mean weighted by support."),
                _term("Support", "clips", "Evaluation clips of the class."),
            ]
    rob = doc.get("robustness") or {}
    t = k = None
    if rob.get("status") == "evaluated":
        st = rob["settings"]
        t, k = st["iterations"], st["k"]
        rci = f"{_pct(st.get('confidence', perf.get('confidence', 0.95)))} CI"
        after = f"after {t} HopSkipJump iterations"
        keys["robustness_summary"] = [
            _term("p-th Percentile", PCM,
                  f"p-th percentile over the attacked clips of the perturbation norm (L2 or L-infinity) of "
                  f"ART's iterate {after}; a clip not fooled counts as infinite ('not found')."),
            _term("(in parentheses)", PCM, f"The fitted curve of that percentile over iterations 1..{t}, "
                                           f"evaluated at {k} iterations ('---': no usable fit, reason in "
                                           "the detail table)."),
            _term("Clips fooled", "clips, percent", f"Attacked clips with an adversarial example {after} within "
                                                     "the per-clip query and time budget; Wilson score interval."),
            _term("Median queries per clip", "model queries",
                  "Median over attacked clips of the model queries the attack made (ART's HopSkipJump, its label "
                  f"checks and the last boundary projection); the start-point search before it (1 + blend_steps = "
                  f"{1 + int(st.get('blend_steps', 10))} queries when the first candidate clip works) is not "
                  "included."),
        ]
        keys["robustness_detail"] = [
            _term("Percentile", "percent", "Which percentile of the attacked clips the row reports."),
            _term("Norm (input units)", "input units: float waveform, full scale 1.0",
                  f"That percentile of the perturbation norm {after}."),
            _term("16-bit PCM", PCM, "The same norm x 32768, the unit of the MAX FactSheet's table."),
            _term(f"{rci} (16-bit PCM)", PCM, "Percentile bootstrap interval over the attacked clips "
                                                        "(failures kept as infinite)."),
            _term("SNR (dB)", "dB", f"-20 log10 of that percentile of ||x_adv - x||_2 / ||x||_2 {after}: clip "
                                    "power over perturbation power; lower means a louder perturbation was needed."),
            _term("Fitted at k (16-bit PCM)", PCM, f"The chosen fitted curve evaluated at k = {k} iterations."),
            _term("Curve family / reason", "log RMSE, log R^2 (unitless)",
                  "Family chosen by AICc among power_floor, exp_floor and loglog_line, or why none was; goodness "
                  "of fit in log space."),
        ]
        keys["robustness_groups"] = [
            _term("n", "clips", "Attacked clips in the group (the class is the top-1 class the attack escaped)."),
            _term("fooled", "clips", f"Of those, clips with an adversarial example {after}."),
            _term("median (16-bit PCM)", PCM, f"Median over the group's attacked clips of the perturbation norm "
                                              f"{after} (failures count as infinite)."),
            _term("median SNR (dB)", "dB", "-20 log10 of the median relative L2 perturbation ||x_adv - x||_2 / "
                                           "||x||_2 of the group's clips."),
            _term(rci, "as the column before", "Percentile bootstrap interval of the median over the "
                                                              "group's attacked clips."),
        ]
    bias = doc.get("bias") or {}
    if bias.get("status") == "evaluated":
        bs = bias["settings"]
        conf = _pct(bs["confidence"])
        if t is None:
            robust = [_term("Median L2 (16-bit PCM) / SNR (dB)", "16-bit PCM units / dB",
                            "Not measured: robustness was not evaluated in this run.")]
        else:
            robust = [_term("Median L2 (16-bit PCM)", PCM, f"Median L2 norm of the perturbation after {t} "
                            "HopSkipJump iterations over the attacked clips of the class; 'not attacked' when "
                            "none was."),
                      _term("Median L2 SNR (dB)", "dB", "-20 log10 of the median relative L2 perturbation "
                                                        "||x_adv - x||_2 / ||x||_2 of those clips.")]
        keys["bias_per_class"] = _class_terms(perf) + robust
        keys["bias_per_category"] = [
            _term("Support", "clip-labels", "Sum of the category's per-class supports (a clip holding two of "
                                            "its classes counts twice)."),
            _term("Mean AP", UNITLESS, "Plain mean of the category's per-class AP."),
            _term("Mean AUC", PROBABILITY, "Plain mean of the category's per-class ROC AUC."),
        ]
        keys["bias_groups"] = [
            _term("n", "clips", f"Evaluation clips in the group; fewer than {bs['min_group_size']} is "
                                "insufficient evidence."),
            _term("mAP [CI]", UNITLESS, f"Group mAP: mean over classes with at least {bs['min_positives']} "
                                         "positives in the group of the prevalence-matched AP of the group's "
                                         f"positives against all negatives (see group_metric); {conf} paired "
                                         f"bootstrap interval ({bs['n_bootstrap']} resamples)."),
            _term("mean_auc [CI]", PROBABILITY, "The same mean over the group's classes of ROC AUC."),
            _term("d_prime [CI]", SD, "sqrt(2) * Phi^-1(group mean AUC)."),
        ]
        if any("accuracy" in g["metrics"] for g in bias.get("groups") or []):
            keys["bias_groups"].append(_term("accuracy [CI]", UNITLESS, "Share of the group's clips whose top-1 "
                                                                        "class is their one true class."))
        keys["bias_groups"] += [
            _term("Median L2 SNR of attacked clips (dB)", "dB", "As in the Robustness section, over the group's "
                                                                "attacked clips (n of them)."),
        ]
        keys["bias_disparities"] = [
            _term("Value", "metric's unit", "The group's value of the metric (over the classes both groups share)."),
            _term("Difference [CI]", "metric's unit", f"Group minus reference, the reference being the best group "
                                                      f"of the column(s); {conf} paired bootstrap interval."),
            _term("Ratio", "unitless", "Group value divided by reference value."),
            _term("Adj. p", PROBABILITY, f"p-value of H0 |difference| <= {bs['tolerance']} after "
                                         f"{bs['correction']} correction over {bs['n_tests']} tests."),
            _term("Finding", "yes / no", f"Interval entirely below -{bs['tolerance']} and adjusted p below "
                                         f"{1 - float(bs['confidence']):.2g}."),
        ]
    keys["test_data"] = _test_data_terms(doc["dataset"])
    keys["provenance"] = [
        _term("Timings (s)", "seconds", "Wall-clock time of each stage of this run on the machine named in "
                                        "Platform."),
    ]
    return keys


def _test_data_terms(dataset: dict) -> list[dict]:
    """The Test Data table's key; rows for the label mapping and skipped files where the FactSheet has them."""
    mapped = bool(dataset.get("label_mapping"))
    terms = [
        _term("clips / Hz", "clips, Hz", "Evaluation clips and their sample rate before the model's length "
                                         "policy (next row) is applied."),
        _term("Labels / classes", "classes", "Classes scored: the model's classes that the dataset's labels map to "
                                             "(Label mapping row)." if mapped else
              "Classes in the evaluation set's label list (the model's classes)."),
    ]
    if mapped:
        terms += [
            _term("Dataset-only labels", "clips", "Dataset labels no model class matches, dropped from the labels; "
                                                  "in parentheses the clips carrying each."),
            _term("Model-only classes", "clips", "Model classes no dataset label maps to, not scored; in parentheses "
                                                 "the clips whose top-1 over the model's whole output is that class."),
        ]
    if dataset.get("unreadable"):
        terms.append(_term("Unreadable files", "files", "Audio files the metadata lists that were missing or "
                                                        "unreadable, and why."))
    return terms


def _class_terms(perf: dict) -> list[dict]:
    defs = perf.get("definitions") or {}
    return [
        _term("Support", "clips", defs.get("support", "Evaluation clips with the class among their true labels.")),
        _term("AP", UNITLESS, defs.get("AP", "Average precision of the class.")),
        _term("AUC", PROBABILITY, defs.get("AUC", "ROC AUC of the class.")),
        _term("d'", SD, "sqrt(2) * Phi^-1(AUC of the class): the separation of positive and negative scores "
                        "under an equal-variance normal model; infinite when AUC = 1."),
    ]
