"""Time the Explanation's occlusion of every cell alone: per time slice on hop-aligned segments
(``occlude_cells``, what the section runs) against the same passes on the whole clip
(``occlude_masks`` with one single-cell set per cell).

On ``--clips`` synthetic eval clips (seed 1) brought to ``--samples`` samples at 16 kHz, an
``--bands`` x ``--slices`` grid, the dataset-mean fill over those clips, ``--target-db`` and
``--passes``. Which side goes first alternates clip by clip. Both sides must give the same occluded
waveforms (to 1e-5) and the same attenuation per cell; the script stops with an AssertionError
otherwise. Prints seconds per clip of each side and the ratio whole / per-slice. Not a test: figures
go in the report.

    .venv/bin/python bench/bench_explanation.py [--clips 6] [--samples 32000] [--bands 8] [--slices 8]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from factsheet.datasets.base import fit_clips
from factsheet.datasets.synthetic import make_synthetic
from factsheet.explanation import occlusion

SAMPLE_RATE = 16000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--samples", type=int, default=32000)
    ap.add_argument("--bands", type=int, default=8)
    ap.add_argument("--slices", type=int, default=8)
    ap.add_argument("--target-db", type=float, default=15.0)
    ap.add_argument("--passes", type=int, default=8)
    args = ap.parse_args()
    ds = make_synthetic(split="eval", n_clips=args.clips, seed=1, sample_rate=SAMPLE_RATE)
    x, _ = fit_clips(ds.clips, n_samples=args.samples)
    grid = occlusion.make_grid(n_bands=args.bands, n_slices=args.slices, sample_rate=SAMPLE_RATE,
                               n_samples=args.samples)
    fill = occlusion.fill_magnitude(x, sample_rate=SAMPLE_RATE)
    kw = {"grid": grid, "fill": fill, "target_db": args.target_db, "max_passes": args.passes}
    singles = np.eye(grid.n_cells, dtype=bool)
    t_slice = t_whole = 0.0
    for i, clip in enumerate(x):
        runs = [("slice", lambda: occlusion.occlude_cells(clip, **kw)[:2]),
                ("whole", lambda: occlusion.occlude_masks(clip, singles, **kw))]
        out = {}
        for name, fn in (runs if i % 2 == 0 else runs[::-1]):
            t = time.perf_counter()
            out[name] = fn()
            dt = time.perf_counter() - t
            t_slice, t_whole = (t_slice + dt, t_whole) if name == "slice" else (t_slice, t_whole + dt)
        assert np.allclose(out["slice"][0], out["whole"][0], atol=1e-5)
        assert np.allclose(out["slice"][1], out["whole"][1])
    n = len(x)
    print(f"{platform.machine()} {platform.python_version()}; {n} clips of {args.samples} samples, "
          f"{args.bands} x {args.slices} cells, target {args.target_db:g} dB, at most {args.passes} passes")
    print(f"per slice (occlude_cells): {t_slice / n:.3f} s per clip")
    print(f"whole clip (occlude_masks): {t_whole / n:.3f} s per clip")
    print(f"ratio whole / per slice: {t_whole / t_slice:.2f}")


if __name__ == "__main__":
    main()
