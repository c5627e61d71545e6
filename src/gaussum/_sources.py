"""Data files read in blocks of rows, for the command line: CSV, ``.npy`` and Parquet.

Every reader yields `Block` values of at most ``chunk_rows`` rows, so the memory a file costs is
bounded by the block size, never by the file's length. A reader checks what it reads and raises
`SourceError` with a one-line message that names the file, and the line or row, at fault.

Nothing here knows about summaries or state files: this module turns bytes into float64 rows.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import mmap
import os
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any

import attrs
import numpy as np

__all__ = ["SourceError", "NotNumericError", "Block", "open_source", "sha256_of", "format_key", "FORMATS"]

#: File name endings the command line reads, and the format each stands for.
FORMATS = {".csv": "csv", ".npy": "npy", ".parquet": "parquet", ".pq": "parquet"}

# CSV fields read as a missing value (NaN), which --nan-policy then keeps out or rejects.
_MISSING = frozenset({"", "na", "n/a", "nan", "null", "none"})

# Lines the csv module reads as no record at all.
_BLANK_LINES = frozenset({"\n", "\r\n", "\r", ""})

_HASH_BLOCK = 1 << 20


class SourceError(ValueError):
    """A data file that cannot be read as asked; the message names the file."""


class NotNumericError(SourceError):
    """A column asked for holds text (or, in Parquet, a non-numeric type)."""


@attrs.frozen
class Block:
    """Consecutive rows of one file: float64 values ``(k, d)``, group keys ``(k,)`` or None.

    ``first_row`` is the 1-based number of the block's first data row in the file, so that an
    error about row ``i`` of the block can name row ``first_row + i``.
    """

    values: np.ndarray
    keys: np.ndarray | None
    first_row: int


def sha256_of(path: str) -> str:
    """Hex SHA-256 of the file's bytes, read 1 MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_BLOCK):
            digest.update(chunk)
    return digest.hexdigest()


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


def _key_array(values: Sequence[Any]) -> np.ndarray:
    """Group keys of one block as a string array, each by `format_key`."""
    return np.array([format_key(k) for k in values], dtype=str)


def file_format(path: str) -> str:
    """``"csv"``, ``"npy"`` or ``"parquet"``, from the name's ending; SourceError otherwise."""
    ending = os.path.splitext(path)[1].lower()
    if ending not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        raise SourceError(f"{path}: unknown file type {ending or '(no extension)'!r}; gaussum reads {known}")
    return FORMATS[ending]


class _Source:
    """A file opened for reading: its column names, then its blocks (read once)."""

    path: str
    names: list[str]

    def blocks(self, columns: Sequence[str], by: str | None, chunk_rows: int) -> Iterator[Block]:
        raise NotImplementedError

    def fraction_done(self) -> float:
        """How much of the file has been read, in [0, 1], for a progress bar."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> _Source:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _indices(self, columns: Sequence[str], by: str | None) -> tuple[list[int], int | None]:
        wanted = list(columns) + ([by] if by is not None else [])
        missing = [c for c in wanted if c not in self.names]
        if missing:
            raise SourceError(
                f"{self.path}: no column {', '.join(map(repr, missing))}; its columns are "
                f"{', '.join(self.names)}"
            )
        return [self.names.index(c) for c in columns], (None if by is None else self.names.index(by))


def open_source(path: str) -> _Source:
    """Open `path` by its format; SourceError for a missing file or a malformed header."""
    kind = file_format(path)
    if not os.path.exists(path):
        raise SourceError(f"{path}: no such file")
    if os.path.isdir(path):
        raise SourceError(f"{path}: is a directory, not a data file")
    if kind == "csv":
        return _CsvSource(path)
    if kind == "npy":
        return _NpySource(path)
    return _ParquetSource(path)


# -- CSV ----------------------------------------------------------------------------------------


def _column_to_float(values: Sequence[str], name: str, path: str, lines: Sequence[int]) -> np.ndarray:
    """One CSV column as float64; missing markers become NaN; text is an error naming the line."""
    try:
        return np.array(values, dtype=np.float64)
    except ValueError:
        pass
    out = np.empty(len(values))
    for i, text in enumerate(values):
        try:
            out[i] = float(text)
        except ValueError:
            if text.strip().lower() not in _MISSING:
                raise NotNumericError(f"{path}, line {lines[i]}: column {name!r} is not numeric: {text!r:.40}") from None
            out[i] = np.nan
    return out


class _CsvSource(_Source):
    """A CSV file with a header row. Assumes one line per record when it names a line."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._size = os.path.getsize(path)
        self._raw = open(path, "rb")
        # utf-8-sig drops the byte-order mark that spreadsheet programs write.
        self._text = io.TextIOWrapper(self._raw, encoding="utf-8-sig", newline="")
        self._reader = csv.reader(self._text)
        try:
            header = next(self._reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            self.close()
            raise SourceError(f"{path}: cannot read the header: {exc}") from None
        if not header:
            self.close()
            raise SourceError(f"{path}: empty file; a CSV file needs a header row naming its columns")
        self.names = [h.strip() for h in header]
        duplicated = sorted({h for h in self.names if self.names.count(h) > 1})
        if duplicated:
            self.close()
            raise SourceError(f"{path}: the header names {', '.join(map(repr, duplicated))} more than once")

    def fraction_done(self) -> float:
        return min(1.0, self._raw.tell() / self._size) if self._size else 1.0

    def close(self) -> None:
        self._raw.close()

    def blocks(self, columns: Sequence[str], by: str | None, chunk_rows: int) -> Iterator[Block]:
        indices, key_index = self._indices(columns, by)
        line = 2  # of the next record; the header is line 1
        row = 1  # of the next data row, blank lines not counted
        if key_index is None:
            # Lines without quotes are read by np.loadtxt, 2-3x faster than the csv module. Any
            # block it does not read exactly (quotes, missing values, ragged rows, text) goes to
            # the csv module, so errors and results are the same; the rest of the file too,
            # since the block showed that the file needs it.
            while True:
                try:
                    chunk = list(islice(self._text, chunk_rows))
                except UnicodeDecodeError as exc:
                    raise SourceError(f"{self.path}, after line {line - 1}: {exc}") from None
                if not chunk:
                    return
                values = self._loadtxt(chunk, indices)
                if values is None:
                    self._reader = csv.reader(itertools.chain(chunk, self._text))
                    break
                if len(values):
                    yield Block(values, None, row)
                line += len(chunk)
                row += len(values)
        yield from self._csv_blocks(indices, key_index, chunk_rows, line, row)

    def _loadtxt(self, chunk: list[str], indices: list[int]) -> np.ndarray | None:
        """The requested columns of `chunk` as float64, or None where the csv module is needed."""
        rows = sum(1 for text in chunk if text not in _BLANK_LINES)
        if rows == 0:
            return np.empty((0, len(indices)))
        if any('"' in text for text in chunk):
            return None
        try:
            # All columns, not usecols: loadtxt then refuses ragged rows, and the width is checked.
            table = np.loadtxt(chunk, delimiter=",", comments=None, dtype=np.float64, ndmin=2)
        except ValueError:
            return None
        if table.shape != (rows, len(self.names)):
            return None
        # C order, as the csv path gives: the summary's rounding depends on the layout.
        return table if indices == list(range(table.shape[1])) else np.ascontiguousarray(table[:, indices])

    def _csv_blocks(
        self, indices: list[int], key_index: int | None, chunk_rows: int, line: int, row: int
    ) -> Iterator[Block]:
        width = len(self.names)
        while True:
            try:
                records = list(islice(self._reader, chunk_rows))
            except (csv.Error, UnicodeDecodeError) as exc:
                raise SourceError(f"{self.path}, after line {line - 1}: {exc}") from None
            if not records:
                return
            lines: Sequence[int] = range(line, line + len(records))
            line += len(records)
            if any(len(r) != width for r in records):
                for at, r in zip(lines, records):
                    if r and len(r) != width:  # a blank line is skipped, not ragged
                        raise SourceError(f"{self.path}, line {at}: {len(r)} fields, but the header has {width}")
                lines = [at for at, r in zip(lines, records) if r]
                records = [r for r in records if r]
                if not records:
                    continue
            fields = list(zip(*records))
            values = np.column_stack(
                [_column_to_float(fields[j], self.names[j], self.path, lines) for j in indices]
            )
            keys = None if key_index is None else _key_array(fields[key_index])
            yield Block(values, keys, row)
            row += len(records)


# -- .npy ---------------------------------------------------------------------------------------


class _NpySource(_Source):
    """A 2-D (rows x columns) or 1-D numeric ``.npy`` array, memory-mapped; columns x0, x1, ..."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise SourceError(f"{path}: not a readable .npy file: {exc}") from None
        array = self._array
        if array.dtype.names is not None:
            raise SourceError(f"{path}: structured .npy arrays are not supported; save a 2-D numeric array")
        if array.dtype.kind not in "biuf" or array.ndim not in (1, 2):
            raise SourceError(
                f"{path}: expected a numeric array of shape (N,) or (N, d), got dtype {array.dtype} "
                f"and shape {array.shape}"
            )
        d = 1 if array.ndim == 1 else array.shape[1]
        self.names = [f"x{j}" for j in range(d)]
        self._done = 0

    def fraction_done(self) -> float:
        total = self._array.shape[0]
        return self._done / total if total else 1.0

    def close(self) -> None:
        mm = getattr(self._array, "_mmap", None)
        self._array = None  # type: ignore[assignment]
        if mm is not None:
            mm.close()

    def blocks(self, columns: Sequence[str], by: str | None, chunk_rows: int) -> Iterator[Block]:
        if by is not None:
            raise SourceError(f"{self.path}: --by needs a named column, and a .npy file has none; use CSV or Parquet")
        indices, _ = self._indices(columns, None)
        array = self._array if self._array.ndim == 2 else self._array.reshape(-1, 1)
        select = None if indices == list(range(array.shape[1])) else indices
        for start in range(0, array.shape[0], chunk_rows):
            block = array[start:start + chunk_rows]
            values = np.array(block if select is None else block[:, select], dtype=np.float64)
            self._release_pages()
            self._done = start + len(block)
            yield Block(values, None, start + 1)

    def _release_pages(self) -> None:
        """Drop the pages read so far from this process's memory (the page cache keeps them).

        Without this, every page of a memory-mapped file read once stays counted in the resident
        set until the map is closed, so reading a 10 GB file would look like using 10 GB.
        """
        mm = getattr(self._array, "_mmap", None)
        if mm is not None and hasattr(mmap, "MADV_DONTNEED"):
            mm.madvise(mmap.MADV_DONTNEED)


# -- Parquet ------------------------------------------------------------------------------------


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise SourceError(
            "reading Parquet needs pyarrow: pip install pyarrow (or pip install 'gaussum[dask]')"
        ) from None
    return pq


class _ParquetSource(_Source):
    """A Parquet file read one record batch at a time through pyarrow (imported only here)."""

    def __init__(self, path: str) -> None:
        pq = _pyarrow_parquet()
        self.path = path
        try:
            self._file = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises its own ArrowInvalid/OSError family
            raise SourceError(f"{path}: not a readable Parquet file: {exc}") from None
        self.names = list(self._file.schema_arrow.names)
        self._rows = self._file.metadata.num_rows
        self._done = 0

    def fraction_done(self) -> float:
        return self._done / self._rows if self._rows else 1.0

    def close(self) -> None:
        self._file.close()

    def blocks(self, columns: Sequence[str], by: str | None, chunk_rows: int) -> Iterator[Block]:
        indices, key_index = self._indices(columns, by)
        schema = self._file.schema_arrow
        for j in indices:
            field = schema.field(j)
            if not (field.type.num_fields == 0 and _is_numeric_arrow(field.type)):
                raise NotNumericError(f"{self.path}: column {field.name!r} is not numeric (type {field.type})")
        wanted = list(columns) + ([by] if by is not None else [])
        row = 1
        for batch in self._file.iter_batches(batch_size=chunk_rows, columns=wanted):
            # Nulls become NaN, the same as a missing CSV field.
            values = np.column_stack(
                [batch.column(i).to_numpy(zero_copy_only=False).astype(np.float64) for i in range(len(columns))]
            )
            keys = None
            if key_index is not None:
                keys = _key_array(batch.column(len(columns)).to_pylist())
            yield Block(values, keys, row)
            row += batch.num_rows
            self._done = row - 1


def _is_numeric_arrow(arrow_type: Any) -> bool:
    import pyarrow.types as pat

    return bool(pat.is_integer(arrow_type) or pat.is_floating(arrow_type) or pat.is_boolean(arrow_type))

