"""``.npy`` arrays (1-D or 2-D, numeric), streamed by rows from the file or a pipe; columns x0, x1, ..."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from ..inputs import Input, read_exactly
from . import Block, Dialect, Format, Reader, Resume, SourceError, register

__all__ = ["NpyReader"]


class NpyReader(Reader):
    """A C-ordered numeric ``.npy`` array read `chunk_rows` rows at a time, through the input's
    hashing stream: no memory map, so memory stays at one block and the hash is of the bytes read."""

    def __init__(self, source: Input, dialect: Dialect, resume: Resume | None) -> None:
        self.label = source.label
        self._stream = source.data
        fmt = np.lib.format
        try:
            version = fmt.read_magic(self._stream)
            read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, fortran, dtype = read_header(self._stream)
        except (ValueError, OSError, EOFError) as exc:
            raise SourceError(f"{self.label}: not a readable .npy file: {exc}") from None
        if dtype.names is not None:
            raise SourceError(f"{self.label}: structured .npy arrays are not supported; save a 2-D numeric array")
        if dtype.kind not in "biuf" or len(shape) not in (1, 2):
            raise SourceError(
                f"{self.label}: expected a numeric array of shape (N,) or (N, d), got dtype {dtype} and shape {shape}"
            )
        d = 1 if len(shape) == 1 else shape[1]
        if fortran and len(shape) == 2 and d > 1 and shape[0] > 1:
            # Column-major bytes cannot give rows without holding the whole array.
            raise SourceError(
                f"{self.label}: a Fortran-ordered array cannot be read by rows; save np.ascontiguousarray(X) instead"
            )
        self._rows, self._dtype = shape[0], dtype
        self.names = [f"x{j}" for j in range(d)]

    def blocks(self, columns: Sequence[str], by: Sequence[str], chunk_rows: int) -> Iterator[Block]:
        if by:
            raise SourceError(f"{self.label}: --by needs a named column, and a .npy file has none; use CSV or Parquet")
        indices, _ = self.indices(columns, ())
        d = len(self.names)
        select = None if indices == list(range(d)) else indices
        row_bytes = d * self._dtype.itemsize
        for start in range(0, self._rows, chunk_rows):
            k = min(chunk_rows, self._rows - start)
            data = read_exactly(self._stream, k * row_bytes)
            if len(data) < k * row_bytes:
                got = start + len(data) // row_bytes
                raise SourceError(f"{self.label}: the file ends after {got:,} of its {self._rows:,} rows (truncated?)")
            block = np.frombuffer(data, dtype=self._dtype).reshape(k, d)
            values = np.array(block if select is None else block[:, select], dtype=np.float64, order="C")
            yield Block(values, None, start + 1)


register(Format("npy", (".npy",), NpyReader))
