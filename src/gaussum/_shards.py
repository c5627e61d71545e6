"""The per-partition step that the engine integrations share (`gaussum.dask`, `gaussum.spark`).

A partition arrives as key columns and value columns; what is done with it is the same whatever
the engine: rows whose key is missing are counted and left out (or kept, as pandas'
``dropna=False``), keys of several columns become tuples, and the rows go to the core's row
kernel through `GroupedSummary.from_samples`. The engine modules only convert their own
containers (pandas frames, Arrow record batches) into numpy arrays and back.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _keys as keyset
from ._binary import tuple_keys
from .errors import Float64OverflowError, MissingKeysWarning, NonFiniteError
from .grouped import GroupedSummary

__all__ = ["check_dropna", "group_rows", "located", "warn_missing_keys"]

# Several key columns are combined into one integer code by mixed radix while the product of
# their numbers of distinct values stays below this; above it, by sorting rows of codes.
_RADIX_LIMIT = 2**62


def check_dropna(dropna: Any) -> bool | None:
    if dropna is not None and not isinstance(dropna, bool):
        raise ValueError(f"dropna must be True, False or None, got {dropna!r}")
    return dropna


def _combined(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray], Any]:
    """One integer code per row whose order is the lexicographic order of the rows' keys.

    Returns the codes, each column's sorted distinct values, and what `_decode` needs to turn a
    code back into an index into each column's distinct values.
    """
    uniques, codes = zip(*(keyset.factorize(keyset.as_keys(c, "by")) for c in columns), strict=True)
    sizes = [max(u.size, 1) for u in uniques]
    if float(np.prod([float(s) for s in sizes])) < _RADIX_LIMIT:
        combined = np.zeros(codes[0].shape[0], dtype=np.int64)
        for code, size in zip(codes, sizes, strict=True):
            combined *= size
            combined += code
        return combined, list(uniques), sizes
    stacked = np.stack([np.asarray(c, dtype=np.int64) for c in codes], axis=1)
    rows, inverse = np.unique(stacked, axis=0, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64), list(uniques), rows


def _decode(codes: np.ndarray, radix: Any) -> list[np.ndarray]:
    """For each key column, the index into its distinct values of every combined code."""
    if isinstance(radix, np.ndarray):  # rows of codes, one per distinct combination
        return [radix[codes, j] for j in range(radix.shape[1])]
    parts = []
    rest = codes.astype(np.int64)
    for size in reversed(radix):
        rest, index = np.divmod(rest, size)
        parts.append(index)
    return parts[::-1]


def group_rows(
    keys: Sequence[np.ndarray],
    missing: np.ndarray | None,
    X: np.ndarray,
    weights: np.ndarray | None,
    aweights: np.ndarray | None,
    *,
    names: Sequence[str],
    diagonal: bool,
    nan_policy: str,
    dropna: bool | None,
) -> tuple[GroupedSummary, int]:
    """The grouped summary of one block of rows, and how many rows were left out for a missing key.

    `keys` holds one array per key column, `missing` marks the rows where any of them is
    missing (None: none is). With ``dropna=False`` a single float or datetime key column keeps
    its missing keys as a group (NaN or NaT); several key columns cannot, and are refused.
    """
    dropped = 0
    if missing is not None and missing.any():
        if dropna is False:
            if len(keys) > 1 or keys[0].dtype.kind not in "fMm":
                columns = f"one of {len(keys)} key columns" if len(keys) > 1 else f"a key column of {keys[0].dtype}"
                raise ValueError(
                    "dropna=False keeps missing keys as a group of their own, which only a single float or "
                    f"datetime key column can hold (as NaN or NaT); {int(missing.sum()):,} rows have a missing key "
                    f"in {columns}: fill them first"
                )
        else:
            kept = ~missing
            dropped = int(missing.sum())
            keys = [k[kept] for k in keys]
            X = X[kept]
            weights = None if weights is None else weights[kept]
            aweights = None if aweights is None else aweights[kept]
    labels = list(names)
    if len(keys) == 1:
        grouped = GroupedSummary.from_samples(
            keys[0], X, weights, aweights=aweights, names=labels, diagonal=diagonal, nan_policy=nan_policy,
            dropna=dropna if dropna is False else True,
        )
        return grouped, dropped
    codes, uniques, radix = _combined(keys)
    by_code = GroupedSummary.from_samples(
        codes, X, weights, aweights=aweights, names=labels, diagonal=diagonal, nan_policy=nan_policy
    )
    parts = _decode(by_code.keys(), radix)
    tuples = tuple_keys([u[p] for u, p in zip(uniques, parts, strict=True)])
    return GroupedSummary._trusted(tuples, by_code._moments, by_code.names), dropped


def warn_missing_keys(dropped: int, total: int | None, stacklevel: int) -> None:
    """The `MissingKeysWarning` of ``dropna=None``, once for the whole job."""
    if dropped:
        of = "" if total is None else f" of {total:,}"
        warnings.warn(
            f"{dropped:,}{of} rows have a missing key and were left out; pass dropna=True to leave them out "
            "silently, or dropna=False to keep them as a group",
            MissingKeysWarning,
            stacklevel=stacklevel + 1,
        )


def located(exc: ValueError, where: str, offset: int = 0) -> ValueError:
    """`exc` with `where` (the partition, the block) before its message; the row counted from the partition's start.

    The core names the row within the array it was given; an integration says which part of the
    data that array was. The error keeps its type and its ``row`` and ``column``.
    """
    message = f"{where}: {exc}"
    if isinstance(exc, NonFiniteError):
        return NonFiniteError(message, row=None if exc.row is None else exc.row + offset, column=exc.column)
    if isinstance(exc, Float64OverflowError):
        return Float64OverflowError(message, row=None if exc.row is None else exc.row + offset)
    return ValueError(message)
