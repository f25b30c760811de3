"""Helpers for sections that hold configured prose only in a run."""

from __future__ import annotations

from factsheet.document import TextSection, not_evaluated


def stated_or_not(text: str) -> TextSection:
    """The config's prose as a ``"stated"`` section, or ``"not_evaluated"`` when it is empty."""
    if text.strip():
        return TextSection(status="stated", text=text, reason="stated in the config; not measured in this run")
    return not_evaluated("")
