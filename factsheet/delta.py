"""Old and new values of one number, for ``factsheet compare`` and the sections' compare hooks.

The interval of a delta is approximate: each FactSheet's bootstrap interval is read as a normal
interval of half-width ``h = (high - low) / 2`` and the two are combined as independent,
``delta +- sqrt(h_old^2 + h_new^2)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Delta:
    """Old and new values of one number, with intervals where the FactSheets give them."""

    old: float | None
    new: float | None
    old_ci: tuple[float | None, float | None] | None = None
    new_ci: tuple[float | None, float | None] | None = None

    @property
    def delta(self) -> float | None:
        """``new - old``, or ``None`` when either is missing."""
        if self.old is None or self.new is None:
            return None
        return self.new - self.old

    @property
    def delta_ci(self) -> tuple[float, float] | None:
        """``delta +- sqrt(h_old^2 + h_new^2)`` (see the module docstring), or ``None``."""
        d = self.delta
        h_old, h_new = _half_width(self.old_ci), _half_width(self.new_ci)
        if d is None or h_old is None or h_new is None:
            return None
        h = math.hypot(h_old, h_new)
        return d - h, d + h

    @property
    def relative(self) -> float | None:
        """``(new - old) / |old|``; ``None`` when ``old`` is 0 or missing."""
        d = self.delta
        if d is None or self.old == 0:
            return None
        return d / abs(self.old)


def _half_width(ci: tuple | None) -> float | None:
    if ci is None or ci[0] is None or ci[1] is None:
        return None
    return (ci[1] - ci[0]) / 2.0


def interval_of(obj: object) -> tuple[float | None, float | None] | None:
    """``(low, high)`` of a ``{low, high}`` object, or ``None``."""
    if isinstance(obj, dict) and "low" in obj and "high" in obj:
        return obj["low"], obj["high"]
    return None


