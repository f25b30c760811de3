"""The one error type that reaches the user as a single line and exit code 2."""

from __future__ import annotations


class InputError(Exception):
    """Bad input: a config key, a WAV file, a CSV row or a model file.

    Parameters
    ----------
    source : str
        The file (or other input) at fault, e.g. ``"configs/demo.toml"``.
    field : str
        Where in it: a config key (``"dataset.n_clips"``), a CSV row and column
        (``"row 3, column labels"``), or ``""`` when the whole file is at fault.
    value : object
        The offending value, shown with ``repr``; ``None`` when there is none.
    reason : str
        What is wrong, in a few words.
    """

    def __init__(self, *, source: str, field: str = "", value: object = None, reason: str) -> None:
        self.source = str(source)
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(self.line())

    def line(self) -> str:
        """The one line shown to the user."""
        where = self.source + (f": {self.field}" if self.field else "")
        shown = "" if self.value is None else f" = {self.value!r}"
        return f"error: {where}{shown}: {self.reason}"
