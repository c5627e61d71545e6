"""Conversion of array-likes and the checks that guard every public entry point.

Every error message in gaussum that is about *input* is built here, so the wording is the same
whichever path the bad value came through. Messages name the argument, what was expected and what
came.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = [
    "NAN_POLICIES",
    "as_data",
    "as_numeric",
    "as_weights",
    "check_nan_policy",
    "as_count",
    "as_field",
    "check_fields",
    "first_nonfinite_row",
]

NAN_POLICIES = ("raise", "omit", "propagate")

# A matrix read from outside (a file, a user's hand-built M2) may carry the asymmetry that BLAS
# leaves in X.T @ X; anything larger than this many units of rounding is a real error.
_SYMMETRY_ULPS = 64


def check_nan_policy(nan_policy: str) -> str:
    """Return `nan_policy` if it is one of ``NAN_POLICIES``, else raise ValueError."""
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}")
    return nan_policy


def as_numeric(value: Any, name: str) -> np.ndarray:
    """`value` as a real numeric ndarray, without copying when it already is one."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise ValueError(f"{name} must be a rectangular numeric array: {exc}") from None
    if array.dtype.kind in "biuf":
        return array
    if array.dtype.kind == "c":
        raise ValueError(f"{name} must be real, got complex dtype {array.dtype}")
    if array.dtype.kind == "O":
        try:
            return array.astype(np.float64)
        except (ValueError, TypeError):
            pass
    raise ValueError(f"{name} must be numeric, got dtype {array.dtype} with shape {array.shape}")


def as_data(X: Any, name: str = "X") -> np.ndarray:
    """Observations as a numeric array of shape ``(N,)`` or ``(N, d)``; rows are observations.

    The array is not copied and keeps its dtype: the block kernels convert to float64 one block
    at a time, so the caller's data is never duplicated in full.
    """
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
    value = float(n)
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


def check_fields(n: float, mean: np.ndarray, M2: np.ndarray) -> np.ndarray:
    """Check that ``(n, mean, M2)`` describe a summary; return M2, symmetrised if need be.

    Raises ValueError for a wrong shape, a non-finite value, a non-symmetric M2, a negative
    variance, or a summary of no observations (n == 0) whose mean or M2 is not zero.
    """
    if mean.ndim > 1:
        raise ValueError(f"mean must have shape () or (d,), got {mean.shape}")
    if mean.ndim == 1 and mean.shape[0] == 0:
        raise ValueError("mean must have at least one variable, got shape (0,)")
    d = mean.shape[0] if mean.ndim else None
    allowed = [()] if d is None else [(d,), (d, d)]
    if M2.shape not in allowed:
        expected = " or ".join(str(s) for s in allowed)
        raise ValueError(f"M2 must have shape {expected} to match mean {mean.shape}, got {M2.shape}")
    for label, array in (("mean", mean), ("M2", M2)):
        if not np.isfinite(array).all():
            where = np.argwhere(~np.isfinite(array))[0]
            index = tuple(int(i) for i in where)
            raise ValueError(f"{label} must be finite; {label}{list(index)} is {float(array[index])!r}")
    diag = np.diagonal(M2) if M2.ndim == 2 else M2
    if (diag < 0).any():
        i = int(np.flatnonzero(np.atleast_1d(diag) < 0)[0])
        raise ValueError(
            f"M2 must have non-negative diagonal (sums of squared deviations); "
            f"entry {i} is {float(np.atleast_1d(diag)[i])!r}"
        )
    if M2.ndim == 2 and not np.array_equal(M2, M2.T):
        gap = np.abs(M2 - M2.T)
        scale = np.sqrt(np.outer(diag, diag))
        if (gap > _SYMMETRY_ULPS * np.finfo(np.float64).eps * scale).any():
            i, j = (int(k) for k in np.unravel_index(np.argmax(gap - scale * 1e-300), gap.shape))
            raise ValueError(
                f"M2 must be symmetric; M2[{i}, {j}] = {float(M2[i, j])!r} but M2[{j}, {i}] = {float(M2[j, i])!r}"
            )
        upper = np.triu(M2)
        M2 = upper + np.triu(M2, 1).T
        M2.setflags(write=False)
    if n == 0 and (mean.any() or M2.any()):
        raise ValueError("a summary of no observations (n == 0) must have zero mean and M2")
    return M2
