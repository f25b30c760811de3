"""The one error type that reaches the user as a single line and exit code 2."""

from __future__ import annotations

from pathlib import Path


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

    def __reduce__(self):
        """Pickle by fields (the keyword-only constructor): the error travels back from a worker intact."""
        return _input_error, (self.source, self.field, self.value, self.reason)

    def line(self) -> str:
        """The one line shown to the user."""
        where = self.source + (f": {self.field}" if self.field else "")
        shown = "" if self.value is None else f" = {self.value!r}"
        return f"error: {where}{shown}: {self.reason}"


def _input_error(source: str, field: str, value: object, reason: str) -> InputError:
    return InputError(source=source, field=field, value=value, reason=reason)


def read_input_text(path: str | Path, *, what: str) -> str:
    """The UTF-8 text of an input file, or one :class:`InputError` line naming it.

    Parameters
    ----------
    path : str or Path
    what : str
        What the file is, for the message: ``"config file"`` gives "config file not found".
    """
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(source=str(path), reason=f"{what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(source=str(path), reason=f"cannot read {what} ({exc.__class__.__name__})") from None
