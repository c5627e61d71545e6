"""The one record behind every summary: moments of g groups, as immutable float64 arrays.

A record of ``g`` groups of data holds, per group,

- ``counts (g,)``: the total weight ``n = sum w_i`` (the number of rows when unweighted);
- ``means``: ``sum w_i x_i / n``, shape ``(g, d)``, or ``(g,)`` for scalar data;
- ``M2``: ``sum w_i (x_i - mean)(x_i - mean)^T``, shape ``(g, d, d)``; only its diagonal,
  ``(g, d)``, for a *diagonal* record; ``(g,)`` for scalar data;
- ``w2 (g,)``: ``sum f_i a_i^2`` over rows with frequency weight ``f_i`` and reliability weight
  ``a_i`` (so ``w_i = f_i a_i``); ``w2 == n`` for unweighted and frequency-weighted data;
- ``mean_errors``, the shape of ``means``: the rounding error of each stored mean, so that
  ``means + mean_errors`` is the mean as a double-float (the compensated mean). ``means`` is the
  correctly rounded value and ``|mean_errors|`` at most half an ulp of it (``means +
  mean_errors == means`` in float64). Zero where nothing better is known (a summary built from
  ``(n, mean, M2)``); the combine rule carries it so that merged means and the ``delta`` that
  enters M2 keep the digits the rounding of each mean would lose.

`GaussianSummary` is this record with g = 1; `GroupedSummary` is keys plus a record. Everything
that does not depend on keys lives here once: the field checks, exact and approximate equality,
the divisor ``n - ddof * w2 / n`` of covariances, scaling, and the dict layout. The combine rule
itself is in `_combine` and the row kernel in `_kernel`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ._validate import as_count
from .errors import Float64OverflowError

__all__ = [
    "FieldNames",
    "Frozen",
    "Moments",
    "check_M2_errors",
    "check_mean_errors",
    "check_symmetric",
    "degrees_of_freedom",
    "readonly",
]

# A matrix read from outside (a file, a user's hand-built M2) may carry the asymmetry that BLAS
# leaves in X.T @ X; anything larger than this many units of rounding is a real error.
_SYMMETRY_ULPS = 64


# Relative tolerance of the scatter-matrix checks, on the scale of the diagonal: merges and
# subtractions round, so an M2 computed from data may break Cauchy-Schwarz or positive
# semi-definiteness by a few units of rounding; anything beyond this is no data's scatter matrix.
SCATTER_RTOL = 1e-9
# ... or, where it is larger, what the rounding of stored means can do: each mean is rounded to
# u |mean|, and merging carries that into M2 through delta, relative to the variances as
# u |mean| / std (the floor of any float64 (n, mean, M2) format). This many times it is allowed.
_MEAN_FLOOR_ULPS = 64
# Below this, a diagonal entry may have lost digits to underflow (its square root's square is
# subnormal), so computed off-diagonals are clipped to stay consistent with it.
_UNDERFLOW_SCALE = 2.0**-900
_SQRT_TINY = float(np.sqrt(np.finfo(np.float64).tiny))


def readonly(array: np.ndarray) -> np.ndarray:
    """A read-only view of an array this package created, whose base is read-only too.

    Marking only the array would let ``setflags(write=True)`` undo it; a view of a read-only
    base cannot be made writeable again. The array and its base must be the package's own
    (never a caller's data, which would be frozen too).
    """
    if array.base is None:  # a fresh array: the common case, kept cheap (the per-row path)
        array.setflags(write=False)
        return array.view()
    owner = array
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    owner.setflags(write=False)
    array.setflags(write=False)
    return array


def degrees_of_freedom(n: Any, w2: Any, ddof: float) -> Any:
    """``n - ddof * w2 / n``: the divisor of the covariance, ``np.cov``'s for both kinds of weight.

    The one place this divisor is computed; `n` and `w2` are floats (one summary) or arrays (one
    entry per group). It is ``n - ddof`` when ``w2 == n`` (no reliability weights), and
    ``-ddof`` for an empty summary.
    """
    if isinstance(n, float):
        return n - ddof * (w2 / n) if n > 0 else -ddof
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(n > 0, w2 / n, 1.0)
    return n - ddof * ratio


def warn_no_dof(message: str, stacklevel: int) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=stacklevel + 1)


def consistent_scatter(M2: np.ndarray) -> np.ndarray:
    """Clip, in place, off-diagonals of computed scatter matrices ``(..., d, d)`` to Cauchy-Schwarz.

    Rounding and underflow can leave an off-diagonal entry larger than ``sqrt(M2_ii M2_jj)``: a
    variance clipped at zero, or the square of a tiny value underflowing while its product with a
    larger one does not. Clipping keeps every computed value one that the checks accept.
    """
    d = M2.shape[-1]
    diagonal = np.diagonal(M2, axis1=-2, axis2=-1)
    root = np.sqrt(diagonal)
    bound = root[..., :, None] * root[..., None, :]
    # sqrt(M2_ii)**2 may round below M2_ii: the diagonal bounds itself, exactly. (bound is a new
    # contiguous array, so its diagonal is every (d + 1)-th entry.)
    bound.reshape(*bound.shape[:-2], d * d)[..., :: d + 1] = diagonal
    # np.clip's own checks cost more than its two ufuncs at small d; the same ones, in its order
    # (which settles the sign of a zero: 0.0 stays 0.0).
    np.maximum(M2, -bound, out=M2)
    np.minimum(M2, bound, out=M2)
    return M2


def needs_clipping(M2: np.ndarray) -> bool:
    """True when a computed full M2 has a diagonal entry small enough for underflow to matter."""
    return bool(M2.size) and bool(np.diagonal(M2, axis1=-2, axis2=-1).min() < _UNDERFLOW_SCALE)


class Frozen:
    """Immutability, attached once: attributes are set only by `_set`, never afterwards.

    Values are immutable, so copying returns the value itself.
    """

    __slots__ = ()

    def _set(self, **fields: Any) -> None:
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; cannot delete {name!r}")

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self


class FieldNames:
    """How error messages name the fields and groups of a record.

    A plain summary calls its fields ``n``, ``mean``, ``M2``, ``w2`` and shows indices without
    the group axis; a grouped one calls them ``counts``, ``means``, ``M2``, ``w2`` and names the
    key of the group at fault.
    """

    def __init__(self, count: str, mean: str, group: Callable[[int], str] | None) -> None:
        self.count = count
        self.mean = mean
        self._group = group

    def at(self, field: str, index: tuple[int, ...]) -> str:
        """``field[i, j]``, with the group axis dropped for a single summary."""
        shown = list(index) if self._group is not None else list(index[1:])
        return f"{field}{shown}"

    def of(self, g: int) -> str:
        """'' for a single summary, else ' of key 'a'' naming group g."""
        return "" if self._group is None else f" of key {self._group(g)}"


SINGLE = FieldNames("n", "mean", None)


def scatter_rtol(counts: np.ndarray, means: np.ndarray, squares: np.ndarray) -> np.ndarray:
    """Per group, the relative tolerance of the scatter-matrix checks (see `SCATTER_RTOL`).

    ``max(SCATTER_RTOL, _MEAN_FLOOR_ULPS * u * max_i |mean_i| / std_i)``, over variables with a
    spread, capped at 1: a merged summary cannot be more exact than its rounded means allow.
    """
    u = np.finfo(np.float64).eps / 2
    # Explicit widths, not -1: numpy cannot infer one from an array of no groups.
    means2 = means.reshape(means.shape[0], int(np.prod(means.shape[1:])))
    squares2 = squares.reshape(squares.shape[0], int(np.prod(squares.shape[1:])))
    with np.errstate(all="ignore"):
        std = np.sqrt(squares2 / np.maximum(counts, np.finfo(np.float64).tiny)[:, None])
        ratio = np.where(std > 0, np.abs(means2) / std, 0.0)
    floor = _MEAN_FLOOR_ULPS * u * (ratio.max(axis=1) if ratio.size else np.zeros(means.shape[0]))
    return np.minimum(np.maximum(SCATTER_RTOL, floor), 1.0)


def check_symmetric(
    M2: np.ndarray, name: str, names: FieldNames = SINGLE, rtol: np.ndarray | None = None
) -> np.ndarray:
    """Check the last two axes of M2 (g, d, d) hold symmetric scatter matrices; return them symmetrised.

    Asymmetry at rounding level (as BLAS leaves in ``X.T @ X``) is mended by mirroring the upper
    triangle; anything larger, or an entry that breaks Cauchy-Schwarz
    (``M2_ij^2 > M2_ii M2_jj``, which no data can produce), raises ValueError naming it.
    """
    diag = np.diagonal(M2, axis1=-2, axis2=-1)
    root = np.sqrt(diag)  # product of roots: the product of diagonals can overflow
    scale = root[..., :, None] * root[..., None, :]
    eps = np.finfo(np.float64).eps
    transposed = np.swapaxes(M2, -1, -2)
    if not np.array_equal(M2, transposed):
        bad = np.abs(M2 - transposed) > _SYMMETRY_ULPS * eps * scale
        if bad.any():
            g, i, j = (int(k) for k in np.argwhere(bad)[0])
            raise ValueError(
                f"{name} must be symmetric; {names.at(name, (g, i, j))} = {float(M2[g, i, j])!r} "
                f"but {names.at(name, (g, j, i))} = {float(M2[g, j, i])!r}"
            )
        M2 = np.triu(M2) + np.swapaxes(np.triu(M2, 1), -1, -2)
    # Merges round, so allow a relative 1e-9 before calling a matrix impossible; and a product
    # x_i x_j survives where the square x_i^2 underflows, so allow what underflow can leave:
    # sqrt(tiny) times the larger root.
    slack = _SQRT_TINY * np.maximum(root[..., :, None], root[..., None, :]) + np.finfo(np.float64).tiny
    rtol = np.full(M2.shape[0], SCATTER_RTOL) if rtol is None else rtol
    impossible = np.abs(M2) > scale * (1 + rtol[:, None, None]) + slack
    if impossible.any():
        g, i, j = (int(k) for k in np.argwhere(impossible)[0])
        raise ValueError(
            f"{name} is not a scatter matrix: |{names.at(name, (g, i, j))}| = {abs(float(M2[g, i, j])):g} "
            f"exceeds sqrt({name}[{i}, {i}] * {name}[{j}, {j}]) = {float(scale[g, i, j]):g}"
        )
    check_semidefinite(M2, name, names, rtol)
    return M2


def check_semidefinite(M2: np.ndarray, name: str, names: FieldNames = SINGLE, rtol: np.ndarray | None = None) -> None:
    """Raise ValueError unless each M2 (g, d, d) is positive semi-definite, to a tolerance.

    The test is on the correlation-scaled matrix ``R = D^-1/2 M2 D^-1/2`` (variables of zero
    variance left out): a Cholesky factorisation of ``R + d * rtol * I`` exists exactly when no
    eigenvalue of R is below ``-d * rtol`` (`scatter_rtol`). No data can give a more negative
    eigenvalue; rounding in merges gives a few units of 1e-16. Only d >= 3 can fail after the
    2 x 2 Cauchy-Schwarz check. The error names the variables of the offending direction.
    """
    g, d = M2.shape[0], M2.shape[-1]
    if d < 3:
        return
    for k in range(g):
        root = np.sqrt(np.diagonal(M2[k]))
        # Variables whose sums of squares are down where underflow rounds them carry no
        # checkable direction; Cauchy-Schwarz has bounded their covariances already.
        live = np.flatnonzero(root > np.sqrt(_UNDERFLOW_SCALE))
        if live.size < 3:
            continue
        block = M2[k] if live.size == d else M2[k][np.ix_(live, live)]
        scale = root[live]
        R = block / scale[:, None]
        R /= scale[None, :]
        slack = live.size * (SCATTER_RTOL if rtol is None else float(rtol[k]))
        R[np.diag_indices(live.size)] += slack
        try:
            np.linalg.cholesky(R)
            continue
        except np.linalg.LinAlgError:
            pass
        R[np.diag_indices(live.size)] -= slack
        values, vectors = np.linalg.eigh(R)
        direction = vectors[:, 0]
        involved = live[np.flatnonzero(np.abs(direction) > 0.1 * np.abs(direction).max())]
        raise ValueError(
            f"{name} is not a scatter matrix{names.of(k)}: it is not positive semi-definite (an eigenvalue "
            f"of its correlation matrix is {float(values[0]):.3g}, below -{slack:.1g}), along variables "
            f"{involved.tolist()}"
        )


def _first_bad(bad: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(bad)[0])


def _not_rounding_errors(values: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """Where `errors` cannot be what rounding left in `values`: not finite, or not below half an
    ulp (``value + error != value`` in float64) of a finite value."""
    bad: np.ndarray = ~np.isfinite(errors)
    with np.errstate(all="ignore"):
        bad |= np.isfinite(values) & (values + errors != values)
    return bad


def check_mean_errors(means: np.ndarray, errors: np.ndarray, names: FieldNames = SINGLE) -> None:
    """Raise ValueError unless `errors` can be the rounding errors of `means` (finite means).

    Each must be finite and at most half an ulp of its mean, exactly: ``mean + error == mean``
    in float64 (what the combine rule stores). A larger value is no rounding error, and would
    move every mean merged with it. Groups of no observations have zero means, so a zero error.
    """
    label = f"{names.mean}_error" if names._group is None else "mean_errors"
    if errors.shape != means.shape:
        expected = means.shape[1:] if names._group is None else means.shape
        got = errors.shape[1:] if names._group is None and errors.shape[:1] == means.shape[:1] else errors.shape
        raise ValueError(f"{label} must have the shape of {names.mean}, {expected}, got {got}")
    bad = _not_rounding_errors(means, errors)
    if bad.any():
        i = _first_bad(bad)
        raise ValueError(
            f"{label} must be finite and below half an ulp of its mean (mean + error == mean); "
            f"{names.at(label, i)} is {float(errors[i])!r} for a mean of {float(means[i])!r} "
            f"(shape {errors.shape[1:] if names._group is None else errors.shape})"
        )


def check_M2_errors(M2: np.ndarray, errors: np.ndarray) -> None:
    """Raise ValueError unless `errors` can be the rounding errors of one summary's `M2`.

    As `check_mean_errors`: each finite and at most half an ulp of its entry (``M2 + error ==
    M2`` in float64, what the one-row step stores), and symmetric like M2 (the step adds the
    same terms to both halves).
    """
    if errors.shape != M2.shape:
        raise ValueError(f"M2_error must have the shape of M2, {M2.shape}, got {errors.shape}")
    bad = _not_rounding_errors(M2, errors)
    if bad.any():
        at = _first_bad(bad)
        raise ValueError(
            "M2_error must be finite and below half an ulp of M2 (M2 + error == M2); "
            f"M2_error{list(at)} is {float(errors[at])!r} for an M2 entry of {float(M2[at])!r} (shape {errors.shape})"
        )
    if errors.ndim == 2 and not np.array_equal(errors, errors.T):
        i, j = _first_bad(errors != errors.T)[:2]
        raise ValueError(
            f"M2_error must be symmetric; M2_error[{i}, {j}] = {float(errors[i, j])!r} "
            f"but M2_error[{j}, {i}] = {float(errors[j, i])!r}"
        )


class Moments(Frozen):
    """The moments of g groups: ``counts``, ``means``, ``M2`` and ``w2`` (see the module docstring).

    Build one with `checked` (validates values from outside) or `trusted` (arrays this package
    computed). Methods never modify the arrays, which are read-only.
    """

    __slots__ = ("M2", "counts", "mean_errors", "means", "w2")

    counts: np.ndarray
    means: np.ndarray
    M2: np.ndarray
    w2: np.ndarray
    mean_errors: np.ndarray

    @classmethod
    def trusted(
        cls,
        counts: np.ndarray,
        means: np.ndarray,
        M2: np.ndarray,
        w2: np.ndarray,
        mean_errors: np.ndarray | None = None,
    ) -> Moments:
        """Wrap arrays this package computed itself: no copy, no checks; marks them read-only.

        ``mean_errors=None`` means zeros (no compensation known).
        """
        self = object.__new__(cls)
        errors = np.zeros(means.shape) if mean_errors is None else mean_errors
        self._set(
            counts=readonly(counts),
            means=readonly(means),
            M2=readonly(M2),
            w2=readonly(w2),
            mean_errors=readonly(errors),
        )
        return self

    @classmethod
    def checked(
        cls,
        counts: np.ndarray,
        means: np.ndarray,
        M2: np.ndarray,
        w2: np.ndarray | None,
        names: FieldNames = SINGLE,
        mean_errors: np.ndarray | None = None,
    ) -> Moments:
        """A record of float64 copies of the fields, checked to describe some data.

        Raises ValueError for a wrong shape, a non-finite value, a negative count or variance, a
        non-symmetric M2 (or one no data can produce), a ``w2`` that is not positive where the
        count is, a group of no observations whose mean, M2, w2 or mean error is not zero, and a
        mean error that is not below half an ulp of its mean (see `check_mean_errors`).
        ``w2=None`` means ``w2 = counts`` (unweighted or frequency-weighted data);
        ``mean_errors=None`` means zeros.
        """
        g = counts.shape[0]
        if means.ndim not in (1, 2) or means.shape[0] != g:
            raise ValueError(f"{names.mean} must have shape () or (d,), got {means.shape[1:]}")
        if means.ndim == 2 and means.shape[1] == 0:
            raise ValueError(f"{names.mean} must have at least one variable, got shape (0,)")
        per_group = [means.shape[1:]] if means.ndim == 1 else [means.shape[1:], means.shape[1:] * 2]
        if M2.shape[1:] not in per_group or M2.shape[0] != g:
            expected = " or ".join(str(s) for s in per_group)
            got = M2.shape[1:] if M2.shape[:1] == (g,) else M2.shape
            raise ValueError(f"M2 must have shape {expected} to match {names.mean} {means.shape[1:]}, got {got}")
        w2 = counts.copy() if w2 is None else w2
        if w2.shape != (g,):
            expected_w2 = () if names._group is None else (g,)
            raise ValueError(f"w2 must have shape {expected_w2}, got {w2.shape[1:] or w2.shape}")
        for label, array in ((names.count, counts), ("w2", w2)):
            bad = ~np.isfinite(array) | (array < 0)
            if bad.any():
                i = _first_bad(bad)
                where = names.at(label, i) if names._group else label
                raise ValueError(f"{label} must be finite and non-negative; {where} is {float(array[i])!r}")
        for label, array in ((names.mean, means), ("M2", M2)):
            if not np.isfinite(array).all():
                i = _first_bad(~np.isfinite(array))
                raise ValueError(f"{label} must be finite; {names.at(label, i)} is {float(array[i])!r}")
        squares = np.diagonal(M2, axis1=1, axis2=2) if M2.ndim == 3 else M2
        if (squares < 0).any():
            i = _first_bad(squares < 0)
            raise ValueError(
                f"M2 must have non-negative diagonal entries (non-negative variances: sums of squared deviations)"
                f"{names.of(i[0])}; entry {list(i[1:])} is {float(squares[i])!r}"
            )
        if M2.ndim == 3:
            M2 = check_symmetric(M2, "M2", names, scatter_rtol(counts, means, squares))
        empty = counts == 0
        if empty.any():
            spread = means.reshape(g, -1).any(axis=1) | M2.reshape(g, -1).any(axis=1) | (w2 != 0)
            bad = empty & spread
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                where = "a summary of no observations (n == 0)" if names._group is None else (
                    f"key {names._group(k)} has count 0 (no observations), so it"
                )
                raise ValueError(f"{where} must have zero mean, M2 and w2")
        weightless = ~empty & (w2 == 0)
        if weightless.any():
            k = int(np.flatnonzero(weightless)[0])
            raise ValueError(
                f"w2 must be positive where {names.count} is{names.of(k)}; "
                f"got w2 = 0 with {names.count} = {float(counts[k])!r}"
            )
        if mean_errors is not None:
            check_mean_errors(means, mean_errors, names)
        return cls.trusted(counts, means, np.ascontiguousarray(M2), w2, mean_errors)

    # -- shape ----------------------------------------------------------------------------------

    @property
    def g(self) -> int:
        return int(self.counts.shape[0])

    @property
    def scalar(self) -> bool:
        """True for scalar data (means of shape (g,))."""
        return self.means.ndim == 1

    @property
    def diagonal(self) -> bool:
        """True when only per-variable sums of squares are kept (M2 of shape ``(g, d)``)."""
        return self.means.ndim == 2 and self.M2.ndim == 2

    @property
    def d(self) -> int:
        return 1 if self.means.ndim == 1 else self.means.shape[1]

    def same_shape(self, other: Moments) -> bool:
        return self.means.shape[1:] == other.means.shape[1:] and self.M2.shape[1:] == other.M2.shape[1:]

    def as_2d(self) -> tuple[np.ndarray, np.ndarray]:
        """Means ``(g, d)`` and M2 ``(g, d, d)`` or ``(g, d)``: scalar data as d = 1, diagonal."""
        if self.means.ndim == 1:
            return self.means[:, None], self.M2[:, None]
        return self.means, self.M2

    def squares(self) -> np.ndarray:
        """Per-variable sums of squared deviations (the diagonal of M2): ``(g, d)``, or ``(g,)``."""
        return np.diagonal(self.M2, axis1=1, axis2=2) if self.M2.ndim == 3 else self.M2

    def is_finite(self) -> bool:
        """True unless a field holds NaN or inf (only ``nan_policy="propagate"`` makes such)."""
        return bool(
            np.isfinite(self.means).all() and np.isfinite(self.squares()).all() and np.isfinite(self.counts).all()
        )

    # -- derived quantities -------------------------------------------------------------------

    def effective_n(self) -> np.ndarray:
        """Kish's effective sample size per group, ``n**2 / w2`` (0 for an empty group)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            effective: np.ndarray = np.where(
                self.counts > 0, self.counts * (self.counts / np.where(self.w2 > 0, self.w2, 1.0)), 0.0
            )
        return effective

    def raw_divisor(self, ddof: float) -> np.ndarray:
        """``n - ddof * w2 / n`` per group, as it is (see `degrees_of_freedom`)."""
        divisor: np.ndarray = degrees_of_freedom(self.counts, self.w2, ddof)
        return divisor

    def divisor(self, ddof: float, stacklevel: int) -> np.ndarray:
        """``n - ddof * w2 / n`` per group (``n - ddof`` for frequency weights): ``np.cov``'s divisor.

        Groups where it is not positive get 0 (so their covariance is inf or NaN, as ``np.cov``
        gives) and a RuntimeWarning.
        """
        dof = self.raw_divisor(ddof)
        short = ~(dof > 0)
        if short.any():
            if self.g == 1:
                message = f"degrees of freedom <= 0 (n={float(self.counts[0]):g}, ddof={ddof})"
            else:
                message = (
                    f"degrees of freedom <= 0 for {int(short.sum())} of {self.g} keys (ddof={ddof}); "
                    "their covariances are inf or NaN"
                )
            warn_no_dof(message, stacklevel + 1)
            dof = np.where(short, 0.0, dof)
        return dof

    def _per_group(self, values: np.ndarray, dof: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled: np.ndarray = values / dof.reshape(-1, *([1] * (values.ndim - 1)))
        return scaled

    def covariance(self, ddof: float, stacklevel: int = 2) -> np.ndarray:
        """``M2 / (n - ddof * w2 / n)`` per group, in M2's shape."""
        return self._per_group(self.M2, self.divisor(ddof, stacklevel + 1))

    def variance(self, ddof: float, stacklevel: int = 2) -> np.ndarray:
        """Per-variable variances per group, in the shape of `squares`."""
        return self._per_group(self.squares(), self.divisor(ddof, stacklevel + 1))

    def correlation(self, stacklevel: int = 2) -> np.ndarray:
        """Correlation matrices ``(g, d, d)`` (``(g,)`` for scalar data), clipped to [-1, 1].

        A variable with zero variance has NaN correlations and a RuntimeWarning.
        """
        if self.diagonal:
            raise ValueError("a diagonal summary keeps no covariances, so it has no correlation matrix")
        if self.scalar:
            return np.where(self.M2 > 0, 1.0, np.nan)
        scale = np.sqrt(self.squares())
        if (scale == 0).any():
            message = "correlation of a variable with zero variance is undefined (NaN)"
            warnings.warn(message, RuntimeWarning, stacklevel=stacklevel + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = self.M2 / (scale[:, :, None] * scale[:, None, :])
        np.clip(corr, -1.0, 1.0, out=corr)
        diagonal = np.where(scale > 0, 1.0, np.nan)
        index = np.arange(self.d)
        corr[:, index, index] = diagonal
        result: np.ndarray = corr
        return result

    def to_diagonal(self) -> Moments:
        """The same record without off-diagonal terms (M2 of shape ``(g, d)``)."""
        if self.M2.ndim != 3:
            return self
        return Moments.trusted(
            self.counts, self.means, np.diagonal(self.M2, axis1=1, axis2=2).copy(), self.w2, self.mean_errors
        )

    def scaled(self, factor: Any) -> Moments:
        """Every weight multiplied by `factor` (> 0): counts and M2 by f, w2 by f**2, means unchanged.

        The means' rounding errors are unchanged too: scaling every weight alike leaves the mean,
        and so its compensation, exactly as they were.

        Raises ValueError for a factor that is not positive and finite, and Float64OverflowError
        when n, M2 or w2 would overflow.
        """
        f = as_count(factor, "factor")
        if f == 0:
            raise ValueError("factor must be positive, got 0")
        with np.errstate(over="ignore"):
            counts, M2, w2 = self.counts * f, self.M2 * f, self.w2 * f * f
        if not (np.isfinite(counts).all() and np.isfinite(M2).all() and np.isfinite(w2).all()):
            total = float(self.counts.sum())
            raise Float64OverflowError(f"scaling by {f:g} overflows float64 (n={total:g})")
        if ((counts == 0) & (self.counts > 0)).any() or ((w2 == 0) & (self.w2 > 0)).any():
            smallest = float(self.counts[self.counts > 0].min())
            raise ValueError(
                f"scaling by {f:g} underflows float64: a count of {smallest:g} would become 0 while its data remains"
            )
        return Moments.trusted(counts, self.means, M2, w2, self.mean_errors)

    # -- comparison -----------------------------------------------------------------------------

    def equal(self, other: Moments) -> bool:
        """Exact equality of every field, the means' rounding errors included (``0.0 == -0.0``)."""
        return (
            self.same_shape(other)
            and self.counts.shape == other.counts.shape
            and bool(np.array_equal(self.counts, other.counts))
            and bool(np.array_equal(self.w2, other.w2))
            and bool(np.array_equal(self.means, other.means))
            and bool(np.array_equal(self.M2, other.M2))
            and bool(np.array_equal(self.mean_errors, other.mean_errors))
        )

    def isclose(self, other: Moments, rtol: float, atol: float) -> bool:
        """Approximate equality on the scale of the data, every group alike.

        ``counts`` and ``w2`` to `rtol`; each mean to ``atol + rtol * max(|mean|, std)``; each M2
        entry to ``atol + rtol * sqrt(M2_ii * M2_jj)``, the size a covariance can have (comparing
        with 0 would be wrong for a covariance that is 0 only up to rounding).
        """
        if not self.same_shape(other) or self.counts.shape != other.counts.shape:
            return False
        for a, b in ((self.counts, other.counts), (self.w2, other.w2)):
            if not (np.abs(a - b) <= atol + rtol * np.maximum(a, b)).all():
                return False
        means_a, M2_a = self.as_2d()
        means_b, M2_b = other.as_2d()
        sq_a = np.diagonal(M2_a, axis1=1, axis2=2) if M2_a.ndim == 3 else M2_a
        sq_b = np.diagonal(M2_b, axis1=1, axis2=2) if M2_b.ndim == 3 else M2_b
        with np.errstate(divide="ignore", invalid="ignore"):
            spread = np.sqrt(
                np.maximum(sq_a / np.maximum(self.counts, 1.0)[:, None], sq_b / np.maximum(other.counts, 1.0)[:, None])
            )
        mean_scale = np.maximum(np.maximum(np.abs(means_a), np.abs(means_b)), spread)
        if not (np.abs(means_a - means_b) <= atol + rtol * mean_scale).all():
            return False
        squares = np.maximum(sq_a, sq_b)
        root = np.sqrt(squares)
        m2_scale = root[:, :, None] * root[:, None, :] if M2_a.ndim == 3 else squares
        return bool((np.abs(M2_a - M2_b) <= atol + rtol * m2_scale).all())

    def has_mean_errors(self) -> bool:
        """True when some mean carries a non-zero rounding error (dicts then write them)."""
        return bool(self.mean_errors.any())

    def w2_is_n(self) -> bool:
        """True when ``w2 == counts`` exactly (no reliability weights): dicts then omit nothing new."""
        return bool(np.array_equal(self.w2, self.counts))
