"""The Domain Shift section's plots: mAP against severity (one small panel per corruption, in the
corruption's physical unit, with the paired interval band and the clean line), and a class x
corruption heatmap of AP retained."""

from __future__ import annotations

import numpy as np

from factsheet.render import figure_svg

_RC = {"svg.hashsalt": "audio-factsheet", "svg.fonttype": "path", "font.size": 7}


def _none_to_nan(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def curves_svg(section: dict) -> str:
    """Small multiples: corrupted mAP per severity (x: the level in its unit), the interval of
    clean mAP minus the paired drop bounds as a band, the clean mAP as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blocks = section["corruptions"]
    cols = min(3, len(blocks))
    rows = -(-len(blocks) // cols)
    clean = section["clean"]["mAP"]
    with matplotlib.rc_context(_RC):
        fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 1.9 * rows), squeeze=False)
        for ax in axes.flat[len(blocks):]:
            ax.set_visible(False)
        for ax, b in zip(axes.flat, blocks):
            x = np.arange(len(b["cells"]))
            v = _none_to_nan(c["mAP"]["value"] for c in b["cells"])
            hi = clean - _none_to_nan(c["mAP"]["drop_ci"]["low"] for c in b["cells"])
            lo = clean - _none_to_nan(c["mAP"]["drop_ci"]["high"] for c in b["cells"])
            ax.fill_between(x, lo, hi, color="#4c72b0", alpha=0.25, lw=0)
            ax.plot(x, v, "o-", color="#4c72b0", ms=3, lw=1)
            ax.axhline(clean, color="black", ls="--", lw=0.8)
            if b["breaking_point"] is not None:
                k = [c["severity"] for c in b["cells"]].index(b["breaking_point"]["severity"])
                ax.plot([x[k]], [v[k]], "x", color="#c44e52", ms=6, mew=1.5)
            ax.set_xticks(x, [f"{c['level']:g}" for c in b["cells"]])
            ax.set_xlabel(b["unit"])
            ax.set_ylim(0, 1)
            ax.set_title(b["title"])
            ax.set_ylabel("mAP")
        fig.tight_layout()
        return figure_svg(fig)


def heatmap_svg(section: dict) -> str:
    """Class x corruption: AP retained (corrupted / clean, mean over severities), 0 to 1+."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [b["name"] for b in section["corruptions"]]
    titles = [b["title"] for b in section["corruptions"]]
    rows = section["per_class"]
    grid = np.array([_none_to_nan(r["ap_retained"][n] for n in names) for r in rows])
    with matplotlib.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(0.55 * len(names) + 2.4, 0.22 * len(rows) + 1.4))
        # vector cells (pcolormesh), not imshow: imshow embeds a raster image in the SVG
        im = ax.pcolormesh(np.ma.masked_invalid(grid), vmin=0, vmax=1, cmap="viridis")
        ax.invert_yaxis()
        ax.set_xticks(np.arange(len(names)) + 0.5, titles, rotation=45, ha="right")
        ax.set_yticks(np.arange(len(rows)) + 0.5, [r["label"] for r in rows])
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j + 0.5, i + 0.5, "-" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=5,
                    color="white" if np.isnan(v) or v < 0.6 else "black")
        bar = fig.colorbar(im, ax=ax, label="AP retained (corrupted / clean)")
        bar.solids.set_rasterized(False)  # a vector colour bar: no embedded raster image
        ax.set_title("AP retained per class, mean over severities")
        fig.tight_layout()
        return figure_svg(fig)
