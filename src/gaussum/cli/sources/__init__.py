"""Readers that turn an input's bytes into blocks of float64 rows, one module per format.

A format module registers itself with `register`: a name (what ``--format`` takes), the name
endings it stands for, and a function that opens a `Reader` on an `~gaussum.cli.inputs.Input`.
Adding a format is one module that calls `register`, imported at the bottom of this file.

Every reader yields `Block` values of at most ``chunk_rows`` rows, so the memory a file costs is
bounded by the block size, never by the file's length. A reader checks what it reads and raises
`SourceError` with a one-line message that names the input, and the line or row, at fault.
Nothing here knows about summaries or state files.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
import numpy as np

from ..inputs import COMPRESSED_ENDINGS, Input

__all__ = [
    "KEY_SEPARATOR",
    "Block",
    "Dialect",
    "Format",
    "NotNumericError",
    "Reader",
    "Resume",
    "SourceError",
    "format_for",
    "format_key",
    "formats",
    "key_array",
    "register",
]

#: Joins the parts of a composite ``--by a,b`` key into one label (the ASCII unit separator,
#: which no CSV or Parquet text key is expected to hold).
KEY_SEPARATOR = "\x1f"


class SourceError(ValueError):
    """A data input that cannot be read as asked; the message names the input."""


class NotNumericError(SourceError):
    """A column asked for holds text (or, in Parquet, a non-numeric type)."""


@attrs.frozen
class Block:
    """Consecutive rows of one input: float64 values ``(k, d)``, group keys ``(k,)`` or None.

    ``first_row`` is the 1-based number of the block's first data row in the input, so that an
    error about row ``i`` of the block can name row ``first_row + i``.
    """

    values: np.ndarray
    keys: np.ndarray | None
    first_row: int


@attrs.frozen
class Dialect:
    """How to read text inputs: whether the first line names the columns, and the delimiter
    (None: sniffed from the first line; ``" "``: runs of whitespace)."""

    header: bool = True
    delimiter: str | None = None


@attrs.frozen
class Resume:
    """Where an appended file's new bytes start: its first line (the header, reused), and how
    many lines and data rows the counted part had."""

    first_line: bytes
    lines: int
    rows: int
    ends_with_newline: bool


class Reader:
    """An input opened by its format: its column names, then its blocks (read once)."""

    label: str
    names: list[str]

    def blocks(self, columns: Sequence[str], by: Sequence[str], chunk_rows: int) -> Iterator[Block]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def indices(self, columns: Sequence[str], by: Sequence[str]) -> tuple[list[int], list[int]]:
        """Positions of `columns` and of the `by` columns among `names`; SourceError if missing."""
        position = {name: j for j, name in enumerate(self.names)}
        missing = [c for c in [*columns, *by] if c not in position]
        if missing:
            shown = ", ".join(self.names[:20]) + (f", ... ({len(self.names)} in all)" if len(self.names) > 20 else "")
            raise SourceError(f"{self.label}: no column {', '.join(map(repr, missing))}; its columns are {shown}")
        return [position[c] for c in columns], [position[c] for c in by]


@attrs.frozen
class Format:
    """A registered file format.

    ``open(input, dialect, resume)`` returns a `Reader`; ``resume`` is None except for an
    appended file, which only formats with ``appendable`` are asked to read.
    """

    name: str
    endings: tuple[str, ...]
    open: Callable[[Input, Dialect, Resume | None], Reader]
    appendable: bool = False


_FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    """Add `fmt` to the formats the command line reads (by ``--format`` name and by ending)."""
    _FORMATS[fmt.name] = fmt
    return fmt


def formats() -> dict[str, Format]:
    """The registered formats by name."""
    return dict(_FORMATS)


def _ending(label: str) -> str:
    stem = label
    lower = label.lower()
    for ending in COMPRESSED_ENDINGS:
        if lower.endswith(ending):
            stem = label[: -len(ending)]
            break
    return os.path.splitext(stem)[1].lower()


def format_for(label: str, requested: str | None, regular: bool) -> tuple[Format, str]:
    """The format to read `label` with, and its name ending (for dialect defaults such as .tsv).

    ``--format`` wins; else the name's ending (before any compression ending); else CSV, for
    names without an ending and for standard input, pipes and devices, whose names say nothing.
    """
    ending = _ending(label)
    if requested is not None:
        return _FORMATS[requested], ending
    for fmt in _FORMATS.values():
        if ending in fmt.endings:
            return fmt, ending
    if not regular or not ending:
        return _FORMATS["csv"], ending
    known = ", ".join(sorted(e for f in _FORMATS.values() for e in f.endings))
    raise SourceError(
        f"{label}: unknown file type {ending or '(no extension)'!r}; gaussum reads {known} "
        "(optionally compressed), or name the format with --format"
    )


def duplicated(names: Sequence[str]) -> list[str]:
    """The names that occur more than once, sorted (linear time: a header may be very wide)."""
    return sorted(name for name, count in Counter(names).items() if count > 1)


def format_key(value: Any) -> str:
    """A group key as the text every reader uses, so that the same key merges across file types.

    Text is stripped of surrounding whitespace (as CSV headers and numbers are). A number is written
    canonically: an integer, or a float with an integral value, in decimal digits (``1`` and
    ``1.0`` both give ``"1"``, as a CSV field ``1`` does); any other float by ``repr`` (``"0.5"``),
    booleans as ``"True"``/``"False"``. A missing key (null) is ``""``, like an empty CSV field.
    CSV fields are text and are never reinterpreted as numbers: ``"01234"`` stays a zip code.

    Examples
    --------
    >>> [format_key(k) for k in (" x ", 3, 3.0, -0.0, 0.25, True, None)]
    ['x', '3', '3', '0', '0.25', 'True', '']
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        x = float(value)
        return str(int(x)) if x.is_integer() else repr(x)
    return str(value).strip()


def key_array(parts: Sequence[Sequence[Any]]) -> np.ndarray:
    """Group keys of one block as a string array: each key column by `format_key`, and the
    columns of a composite key joined by `KEY_SEPARATOR`."""
    columns = [[format_key(k) for k in column] for column in parts]
    if len(columns) == 1:
        return np.array(columns[0], dtype=str)
    return np.array([KEY_SEPARATOR.join(key) for key in zip(*columns, strict=False)], dtype=str)


from . import csv, npy, parquet  # noqa: E402,F401  (each registers its format)
