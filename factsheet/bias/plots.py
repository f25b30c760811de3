"""The Bias section's plots: group mAP and per-class AP by category."""

from __future__ import annotations

import numpy as np

from factsheet.render import figure_svg


def groups_svg(section: dict) -> str:
    """Group mAP with CI whiskers, one panel per single column (findings in red)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = []
    for r in section["groups"]:
        if len(r["columns"]) == 1 and r["columns"] not in cols:
            cols.append(r["columns"])
    flagged = {(tuple(d["columns"]), d["group"]) for d in section["disparities"] if d["finding"]}
    with matplotlib.rc_context({"svg.hashsalt": "audio-factsheet", "svg.fonttype": "path", "font.size": 8}):
        fig, axes = plt.subplots(1, max(1, len(cols)), figsize=(2.6 * max(1, len(cols)), 2.8), squeeze=False)
        for ax, col in zip(axes[0], cols):
            rows = [r for r in section["groups"] if r["columns"] == col]
            x = np.arange(len(rows))
            v = np.array([np.nan if r["metrics"]["mAP"]["value"] is None else r["metrics"]["mAP"]["value"]
                          for r in rows])
            lo = np.array([np.nan if r["metrics"]["mAP"]["ci_low"] is None else r["metrics"]["mAP"]["ci_low"]
                           for r in rows])
            hi = np.array([np.nan if r["metrics"]["mAP"]["ci_high"] is None else r["metrics"]["mAP"]["ci_high"]
                           for r in rows])
            colors = ["#c44e52" if (tuple(col), r["group"]) in flagged else
                      ("#bbbbbb" if r["insufficient_evidence"] else "#4c72b0") for r in rows]
            ax.bar(x, v, color=colors)
            # a percentile interval need not contain its point estimate (skewed replicates): clip at 0
            yerr = [np.clip(np.nan_to_num(v - lo), 0, None), np.clip(np.nan_to_num(hi - v), 0, None)]
            ax.errorbar(x, v, yerr=yerr, fmt="none", ecolor="black",
                        capsize=2, lw=0.8)
            ax.set_xticks(x, [r["group"] for r in rows], rotation=45, ha="right")
            ax.set_ylim(0, 1)
            ax.set_title(" & ".join(col))
            ax.set_ylabel("group mAP")
        fig.tight_layout()
        return figure_svg(fig)


def per_class_svg(section: dict) -> str:
    """Per-class AP sorted, coloured by top-level category; worst classes marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted((r for r in section["per_class"] if r["ap"] is not None), key=lambda r: r["ap"])
    cats = sorted({r["category"] or "(none)" for r in rows})
    palette = dict(zip(cats, plt.cm.tab10(np.arange(len(cats)) % 10)))
    with matplotlib.rc_context({"svg.hashsalt": "audio-factsheet", "svg.fonttype": "path", "font.size": 8}):
        fig, ax = plt.subplots(figsize=(6.0, 0.25 * len(rows) + 1.2))
        y = np.arange(len(rows))
        ax.barh(y, [r["ap"] for r in rows], color=[palette[r["category"] or "(none)"] for r in rows])
        ax.set_yticks(y, [("* " if r["worst"] else "") + r["label"] for r in rows])
        ax.set_xlim(0, 1)
        ax.set_xlabel("AP")
        ax.set_title("Per-class AP, sorted (* = worst classes); colour = category")
        handles = [plt.Rectangle((0, 0), 1, 1, color=palette[c]) for c in cats]
        ax.legend(handles, cats, fontsize=6, loc="lower right")
        fig.tight_layout()
        return figure_svg(fig)
