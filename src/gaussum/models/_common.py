"""What every model function shares: argument checks, variable positions, per-key dispatch, reprs.

Variables are integer positions into the summary's mean today. Every function turns its
variable arguments into positions through `positions`, so that names (a later, labelled
summary) can be mapped here, in one place, without touching the models.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from ..grouped import GroupedSummary
from ..inference import _array_eq, _factor, _linalg, _number, _scipy_stats
from ..summary import GaussianSummary

__all__ = [
    "array_eq",
    "as_rows",
    "check_full",
    "check_summary",
    "cov_matrix",
    "divisor",
    "factor",
    "linalg",
    "number",
    "per_key",
    "positions",
    "scipy_stats",
    "short",
]

# Re-exported so that the model modules have one place to import the shared numerics from
# (the factorisation and the scipy-or-numpy choice live in inference.py, not here).
array_eq = _array_eq
factor = _factor
linalg = _linalg
number = _number


def scipy_stats() -> Any:
    """``scipy.stats``, imported when first needed (p-values, intervals), or an error naming the extra."""
    try:
        return _scipy_stats()
    except ImportError as exc:
        raise ImportError(
            "gaussum.models needs scipy for p-values and confidence intervals: pip install 'gaussum[stats]'"
        ) from exc


def short(value: Any) -> str:
    """`number`, but arrays of more than 6 entries abbreviated, on one line: reprs stay short."""
    array = np.asarray(value)
    if array.size <= 6:
        return number(array)
    text = np.array2string(
        array, separator=", ", threshold=6, edgeitems=2, formatter={"all": lambda v: f"{v:.6g}"}
    )
    return " ".join(text.split())


def check_summary(s: Any, function: str, *, grouped: bool = True) -> None:
    """Refuse anything but a `GaussianSummary` (or a `GroupedSummary` when `grouped`)."""
    kinds = (GaussianSummary, GroupedSummary) if grouped else (GaussianSummary,)
    if not isinstance(s, kinds):
        expected = "a GaussianSummary or GroupedSummary" if grouped else "a GaussianSummary"
        hint = " (pick one key: g[key])" if isinstance(s, GroupedSummary) else ""
        raise TypeError(f"{function} takes {expected}{hint}, got {type(s).__name__}")


def check_full(s: GaussianSummary, function: str) -> None:
    """Refuse a diagonal summary where the covariances between variables are needed."""
    if s.diagonal:
        raise ValueError(
            f"{function} needs the covariances between variables, which a diagonal summary "
            f"(M2 of shape {s.M2.shape}) does not keep; summarise with diagonal=False"
        )


def _is_position(value: Any) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def positions(d: int, variables: Any, name: str) -> np.ndarray:
    """Distinct variable positions in ``range(d)`` as an intp array (negative ones count from the end).

    `variables` is an int or a sequence of ints. This is where names will be resolved once
    summaries carry them.
    """
    items = [variables] if _is_position(variables) else variables
    try:
        items = list(items)
    except TypeError:
        raise TypeError(f"{name} must be a variable position or a sequence of them, got {variables!r}") from None
    bad = [v for v in items if not _is_position(v)]
    if bad:
        raise TypeError(f"{name} must hold integer variable positions, got {bad[0]!r} in {variables!r}")
    out_of_range = [int(v) for v in items if not -d <= v < d]
    if out_of_range:
        raise ValueError(f"{name} holds position {out_of_range[0]}, outside the {d} variables (0 to {d - 1})")
    index = np.array([int(v) % d for v in items], dtype=np.intp)
    unique, counts = np.unique(index, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"{name} names variable {int(unique[counts > 1][0])} more than once: {variables!r}")
    return index


def divisor(s: GaussianSummary, ddof: float) -> float:
    """``n - ddof * w2 / n``: the divisor of ``s.covariance(ddof)``, from the public fields.

    With ``ddof = k`` it is also the residual degrees of freedom (in weight units) of a
    regression with k coefficients. 0 for an empty summary.
    """
    return s.n - ddof * s.w2 / s.n if s.n > 0 else 0.0


def cov_matrix(s: GaussianSummary, ddof: float, function: str) -> np.ndarray:
    """``s.covariance(ddof)`` as a (d, d) matrix: diagonal for a diagonal summary, (1, 1) for scalar data."""
    if not s.n > 0:
        raise ValueError(f"{function} needs data: the summary is empty (n=0)")
    if not divisor(s, ddof) > 0:
        raise ValueError(
            f"{function} needs more observations: n={s.n:g} leaves no degrees of freedom for a "
            f"covariance with ddof={ddof:g}"
        )
    cov = np.asarray(s.covariance(ddof))
    if cov.ndim == 0:
        return cov.reshape(1, 1)
    return np.diag(cov) if cov.ndim == 1 else cov


def dof_for_rank(s: GaussianSummary) -> float:
    """The degrees of freedom that bound the rank of a covariance: ``effective_n - 1``.

    ``n - 1`` for unweighted and frequency-weighted data. With reliability weights the number
    of rows is not kept; ``effective_n`` is at most that number, so the check is conservative.
    """
    return s.effective_n - 1.0


def as_rows(x: Any, s: GaussianSummary, name: str = "x") -> tuple[np.ndarray, bool]:
    """Points as float64 rows of shape (k, d), and whether a single point was given."""
    points = np.asarray(x, dtype=np.float64)
    shape = s.mean.shape
    if points.shape == shape:
        return points.reshape(1, s.d), True
    if points.ndim == len(shape) + 1 and points.shape[1:] == shape:
        return points.reshape(-1, s.d), False
    expected = "() or (k,)" if not shape else f"({s.d},) or (k, {s.d})"
    raise ValueError(f"{name} must have shape {expected} for a summary of mean shape {shape}, got {points.shape}")


def _plain(key: Any) -> Any:
    """A numpy scalar key as the Python str, int, float or bool it holds; others (datetimes) as they are.

    ``.item()`` on all numpy scalars would turn a nanosecond datetime64 into an int.
    """
    if isinstance(key, (np.str_, np.integer, np.floating, np.bool_)):
        return key.item()
    return key


def per_key(g: GroupedSummary, compute: Callable[[GaussianSummary], Any], stack: bool) -> Any:
    """`compute` applied to each key's summary: a dict in key order, or its values stacked on axis 0.

    An error for one key is raised again with the key in front, so the message says which.
    """
    results = {}
    for key, s in g:
        label = _plain(key)
        try:
            results[label] = compute(s)
        except ValueError as exc:
            raise ValueError(f"key {label!r}: {exc}") from None
    if not stack:
        return results
    if not results:
        raise ValueError("the grouped summary has no keys, so there is nothing to stack")
    return np.stack([np.asarray(v) for v in results.values()])
