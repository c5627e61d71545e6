"""Parquet files read one record batch at a time through pyarrow (imported only here)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..inputs import Input
from . import Block, Dialect, Format, NotNumericError, Reader, Resume, SourceError, key_array, register
from .csv import _float64_values

__all__ = ["ParquetReader"]


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise SourceError("reading Parquet needs pyarrow: pip install 'gaussum[cli]'") from None
    return pq


def _is_numeric_arrow(arrow_type: Any) -> bool:
    import pyarrow.types as pat  # type: ignore[import-untyped,unused-ignore]

    return bool(pat.is_integer(arrow_type) or pat.is_floating(arrow_type) or pat.is_boolean(arrow_type))


class ParquetReader(Reader):
    """A Parquet file. Parquet is read by random access (its footer first), so it cannot be
    hashed in the order it is parsed: the open file is hashed to its end first, then parsed
    from the same open file (a file renamed over it meanwhile is not seen), and its size and
    modification time are checked again after the last batch."""

    def __init__(self, source: Input, dialect: Dialect, resume: Resume | None) -> None:
        self.label = source.label
        if not source.is_regular or source.compression is not None:
            raise SourceError(
                f"{self.label}: Parquet is read by random access, so it must be an uncompressed regular "
                "file, not a stream or a compressed file"
            )
        pq = _pyarrow_parquet()
        source.raw.drain()
        self._source = source
        self._stat = _fingerprint(source)
        try:
            self._file = pq.ParquetFile(source.file)
        except Exception as exc:  # pyarrow raises its own ArrowInvalid/OSError family
            raise SourceError(f"{self.label}: not a readable Parquet file: {exc}") from None
        self.names = list(self._file.schema_arrow.names)

    def blocks(self, columns: Sequence[str], by: Sequence[str], chunk_rows: int) -> Iterator[Block]:
        indices, _ = self.indices(columns, by)
        schema = self._file.schema_arrow
        for j in indices:
            field = schema.field(j)
            if not (field.type.num_fields == 0 and _is_numeric_arrow(field.type)):
                raise NotNumericError(f"{self.label}: column {field.name!r} is not numeric (type {field.type})")
        wanted = list(columns) + list(by)
        row = 1
        for batch in self._file.iter_batches(batch_size=chunk_rows, columns=wanted):
            # Nulls become NaN, the same as a missing CSV field.
            values = np.empty((batch.num_rows, len(columns)))
            for i in range(len(columns)):
                values[:, i] = _as_float64(batch.column(i))
            keys = None
            if by:
                keys = key_array([batch.column(len(columns) + i).to_pylist() for i in range(len(by))])
            yield Block(values, keys, row)
            row += batch.num_rows
        if _fingerprint(self._source) != self._stat:
            raise SourceError(f"{self.label}: the file changed while it was being read; nothing was written")


def _as_float64(column: Any) -> np.ndarray:
    """A numeric arrow column as float64 values, nulls as NaN (the same as a missing CSV field).

    Cast by pyarrow, then read from its buffers: ``to_numpy`` would import pandas (about 1 s).
    """
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    if column.type != pa.float64():
        column = column.cast(pa.float64())
    return _float64_values(column)


def _fingerprint(source: Input) -> tuple[int, int]:
    info = os.fstat(source.file.fileno())
    return info.st_size, info.st_mtime_ns


register(Format("parquet", (".parquet", ".pq"), ParquetReader))
