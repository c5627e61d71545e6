"""The exceptions gaussum raises about data, with the facts a caller needs as attributes.

Both are `ValueError` subclasses, so ``except ValueError`` keeps working; integrations (the
command line, Dask) read ``row`` and ``column`` instead of parsing the message.
"""

from __future__ import annotations

__all__ = ["Float64OverflowError", "MissingKeysWarning", "NonFiniteError"]


class NonFiniteError(ValueError):
    """A NaN or inf in the data under ``nan_policy="raise"``.

    Attributes
    ----------
    row : int or None
        0-based index of the first offending row in the array that was passed, or None for a
        single observation.
    column : int or None
        0-based index of its first non-finite entry, or None for scalar data.
    """

    def __init__(self, message: str, row: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.row = row
        self.column = column


class Float64OverflowError(ValueError):
    """Finite input whose sums of squares, or whose merge, overflow float64.

    Attributes
    ----------
    row : int or None
        0-based index of the row with the largest magnitude (the one at fault) when the overflow
        came from raw rows, else None.
    """

    def __init__(self, message: str, row: int | None = None) -> None:
        super().__init__(message)
        self.row = row


class MissingKeysWarning(UserWarning):
    """Rows whose grouping key is missing were left out (``GroupedSummary.from_samples(dropna=None)``).

    Pass ``dropna=True`` to leave them out silently, as ``pandas.DataFrame.groupby`` does.
    """
