"""Conversion of array-likes and the checks that guard every public entry point.

Every error message in gaussum that is about *input* is built here, so the wording is the same
whichever path the bad value came through. Messages name the argument, what was expected and what
came.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .errors import Float64OverflowError, NonFiniteError

__all__ = [
    "MAX_NESTING",
    "NAN_POLICIES",
    "as_count",
    "as_data",
    "as_field",
    "as_numeric",
    "as_weights",
    "check_format_header",
    "check_nan_policy",
    "first_nonfinite_row",
    "float_tree",
    "is_number_tree",
    "nonfinite_row_error",
    "number_tree_shape",
    "overflow_error",
]

NAN_POLICIES = ("raise", "omit", "propagate")


def check_nan_policy(nan_policy: str) -> str:
    """Return `nan_policy` if it is one of ``NAN_POLICIES``, else raise ValueError."""
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}")
    return nan_policy


def as_numeric(value: Any, name: str) -> np.ndarray:
    """`value` as a real numeric ndarray, without copying when it already is one."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError) as exc:  # ragged nested lists
        raise ValueError(f"{name} must be a rectangular numeric array{_ragged_rows(value) or f': {exc}'}") from None
    if array.dtype.kind in "biuf":
        return array
    if array.dtype.kind == "c":
        raise ValueError(f"{name} must be real, got complex dtype {array.dtype} of shape {array.shape}")
    if array.dtype.kind == "O":
        try:
            return array.astype(np.float64)
        except OverflowError:
            raise ValueError(f"{name} holds a number too large for float64") from None
        except (ValueError, TypeError):
            pass
    raise ValueError(f"{name} must be numeric, got dtype {array.dtype} with shape {array.shape}")


def _ragged_rows(value: Any) -> str:
    """``"; row i has m values, row 0 has k"`` for a list of rows of unequal lengths, else ""."""
    if not isinstance(value, (list, tuple)) or not value:
        return ""
    lengths = [len(row) if isinstance(row, (list, tuple, np.ndarray)) else None for row in value]
    if lengths[0] is None:
        bad = next((i for i, k in enumerate(lengths) if k is not None), None)
    else:
        bad = next((i for i, k in enumerate(lengths) if k != lengths[0]), None)
    if bad is None:
        return ""

    def described(i: int) -> str:
        count = lengths[i]
        return "a single value" if count is None else f"{count} value{'' if count == 1 else 's'}"

    return f"; row {bad} has {described(bad)}, row 0 has {described(0)}"


def as_data(X: Any, name: str = "X") -> np.ndarray:
    """Observations as a numeric array of shape ``(N,)`` or ``(N, d)``; rows are observations.

    The array is not copied and keeps its dtype: the block kernels convert to float64 one block
    at a time, so the caller's data is never duplicated in full. A masked array is the exception:
    it becomes a float64 copy with NaN where it is masked, so masked rows follow ``nan_policy``.
    """
    if np.ma.isMaskedArray(X):
        # Masked entries are missing values: as NaN they follow nan_policy like any other.
        X = np.ma.MaskedArray(X, dtype=np.float64).filled(np.nan)
    array = as_numeric(X, name)
    if array.ndim not in (1, 2):
        raise ValueError(
            f"{name} must have shape (N,) or (N, d) with rows as observations, "
            f"got shape {array.shape}"
        )
    if array.ndim == 2 and array.shape[1] == 0:
        raise ValueError(f"{name} must have at least one column, got shape {array.shape}")
    return array


def as_weights(weights: Any, n_rows: int, name: str = "weights") -> np.ndarray:
    """Frequency weights as float64 of shape ``(n_rows,)``: finite and non-negative."""
    w = as_numeric(weights, name)
    if w.shape != (n_rows,):
        raise ValueError(f"{name} must have shape ({n_rows},) to match the rows, got {w.shape}")
    w = w.astype(np.float64, copy=False)
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} must be finite and non-negative; {name}[{i}] is {float(w[i])!r}"
        )
    return w


def first_nonfinite_row(X: np.ndarray) -> int | None:
    """Index of the first row of `X` holding NaN or inf, or None."""
    finite = np.isfinite(X) if X.ndim == 1 else np.isfinite(X).all(axis=1)
    bad = np.flatnonzero(~finite)
    return int(bad[0]) if bad.size else None


def as_count(n: Any, name: str = "n") -> float:
    """A count (a total weight): a finite, non-negative real number, as a Python float."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (numbers.Real, np.integer, np.floating)):
        array = np.asarray(n)
        if array.shape != () or array.dtype.kind not in "iuf":
            raise ValueError(f"{name} must be a real number, got {n!r}")
        n = array[()]
    try:
        value = float(n)
    except OverflowError:
        raise ValueError(f"{name} must be finite and non-negative, got a number too large for float64") from None
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and non-negative, got {n!r}")
    return value


def as_field(value: Any, name: str) -> np.ndarray:
    """A float64, C-contiguous, read-only *copy* of `value`.

    Copying first matters: setting ``write=False`` on the caller's array would freeze their data.
    """
    array = as_numeric(value, name)
    out = np.array(array, dtype=np.float64, order="C", copy=True)
    out.setflags(write=False)
    return out


#: How deeply nested a list from a dict may be before it is refused unread (a summary needs 3).
MAX_NESTING = 8


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number_tree_shape(
    value: Any, name: str, max_depth: int = MAX_NESTING, expected: list[tuple[int, ...]] | None = None
) -> tuple[int, ...]:
    """The shape of a number or rectangular nested list of numbers (as JSON gives), or ValueError.

    Walks the tree one level at a time, without recursion, so a deeply nested or huge list is
    refused after reading only as far as its first fault and no array is built. With `expected`,
    a shape that begins like none of them is refused as soon as its first dimensions are known.
    """
    shape: list[int] = []
    level = [value]
    while level and isinstance(level[0], list):
        if len(shape) >= max_depth:
            raise ValueError(f"{name} is nested more than {max_depth} levels deep")
        length = len(level[0])
        for item in level:
            if not isinstance(item, list) or len(item) != length:
                raise ValueError(f"{name} must be a rectangular array of numbers (one shape), got a ragged list")
        shape.append(length)
        if expected is not None and not any(tuple(shape) == e[: len(shape)] for e in expected):
            allowed = " or ".join(str(e) for e in expected)
            raise ValueError(f"{name} must have shape {allowed}, got one of shape {(*tuple(shape), '...')}")
        level = [x for item in level for x in item]
    for leaf in level:
        if not _is_number(leaf):
            raise ValueError(f"{name} must hold numbers, got {leaf!r:.80}")
    return tuple(shape)


def float_tree(value: Any, name: str, expected: list[tuple[int, ...]]) -> np.ndarray:
    """A nested list of numbers from a dict as float64, after checking its shape is one of `expected`.

    The shape is checked before the array is built, so a mis-sized field costs nothing.
    """
    shape = number_tree_shape(value, name, expected=expected)
    if shape not in expected:
        allowed = " or ".join(str(e) for e in expected)
        raise ValueError(f"{name} must have shape {allowed}, got {shape}")
    try:
        return np.array(value, dtype=np.float64)
    except OverflowError:
        raise ValueError(f"{name} holds a number too large for float64") from None


def is_number_tree(value: Any) -> bool:
    """True for a number, or a (nested, at most `MAX_NESTING` deep) list of numbers; bools excluded."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list):
            if depth >= MAX_NESTING:
                return False
            stack.extend((v, depth + 1) for v in item)
        elif not _is_number(item):
            return False
    return True


def check_format_header(
    data: Any, fields: dict[int, set[str]], format_name: str, optional: dict[int, set[str]] | None = None
) -> int:
    """Check a dict from ``to_dict``: its type, format name and version, and that version's exact keys.

    `fields` maps each version this gaussum reads to its keys, `optional` to keys it may also
    have; returns the dict's version.
    """
    if not isinstance(data, dict):
        raise ValueError(f"from_dict expects a dict, got {type(data).__name__}")
    version = data.get("version")
    if type(version) is not int or version not in fields:
        readable = " and ".join(str(v) for v in sorted(fields))
        raise ValueError(f"unsupported summary format version {version!r}; this gaussum reads {readable}")
    keys = fields[version]
    if optional and version in optional:
        keys = keys | (optional[version] & set(data))
    if set(data) != keys:
        missing = sorted(keys - set(data))
        extra = sorted(set(data) - keys)
        raise ValueError(f"summary dict has missing keys {missing} and unexpected keys {extra}")
    if data["format"] != format_name:
        raise ValueError(f"summary dict has format {data['format']!r}, expected {format_name!r}")
    return version


def nonfinite_row_error(name: str, row_index: int, row: np.ndarray) -> NonFiniteError:
    """The error for a NaN or inf in the data under ``nan_policy="raise"``."""
    values = np.asarray(row)
    column = None if values.ndim == 0 else int(np.flatnonzero(~np.isfinite(values))[0])
    return NonFiniteError(
        f"{name} has a non-finite value in row {row_index}: {values.tolist()}; "
        "pass nan_policy='omit' to drop such rows or 'propagate' to return NaN",
        row=row_index,
        column=column,
    )


def overflow_error(name: str, block: np.ndarray, first_row: int = 0) -> Float64OverflowError:
    """The error for finite data whose squares overflow float64.

    For rows (a 2-D block), ``row`` is the index (offset by `first_row`) of the row with the
    largest magnitude; for one observation it is None.
    """
    magnitude = np.abs(block).max(axis=1) if block.ndim == 2 and block.size else None
    largest = float(magnitude.max()) if magnitude is not None else float(np.max(np.abs(block), initial=0.0))
    row = first_row + int(magnitude.argmax()) if magnitude is not None else None
    return Float64OverflowError(
        f"{name} overflows float64 when squared (largest |value| is {largest:g}); rescale the data first",
        row=row,
    )
