"""`GaussianSummary`: the count, mean and M2 of some data, as one immutable, mergeable value."""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Iterable
from typing import Any

import attrs
import numpy as np

from . import _combine
from .errors import Float64OverflowError, NonFiniteError
from ._validate import (
    as_count,
    as_data,
    as_field,
    as_numeric,
    as_weights,
    check_fields,
    check_format_header,
    check_nan_policy,
    is_number_tree,
    overflow_error,
    readonly,
)

__all__ = ["GaussianSummary", "FORMAT_VERSION"]

#: Version of the layout written by `GaussianSummary.to_dict`.
FORMAT_VERSION = 1
_FORMAT_NAME = "gaussum.GaussianSummary"

# How many summaries `merge_all` stacks at once: bounds its memory for large d.
_MERGE_CHUNK_FLOATS = 2**22


def _validate_fields(instance: GaussianSummary, attribute: Any, value: Any) -> None:
    # Runs once, after all three fields are converted (attached to the last field).
    M2 = check_fields(instance.n, instance.mean, value)
    if M2 is not value:
        object.__setattr__(instance, "M2", M2)


def _shape_text(s: GaussianSummary) -> str:
    return f"mean {s.mean.shape} and M2 {s.M2.shape}"


@attrs.frozen(eq=False, repr=False)
class GaussianSummary:
    """Sufficient statistics of Gaussian data: count, mean and summed squared deviations.

    A summary of observations ``x_i`` (rows, with frequency weights ``w_i``) holds

    - ``n``: the total weight ``sum w_i`` (the number of rows when unweighted);
    - ``mean``: ``sum w_i x_i / n``, shape ``(d,)``, or ``()`` for scalar data;
    - ``M2``: ``sum w_i (x_i - mean)(x_i - mean)^T``, shape ``(d, d)``; or only its diagonal,
      shape ``(d,)``, for a *diagonal* summary; ``()`` for scalar data.

    Summaries of disjoint data merge with ``+`` by the rule of Chan, Golub and LeVeque, so any
    split of the data, merged in any order, gives the summary of all of it to within float64
    rounding. Values are immutable: the arrays are float64 copies marked read-only.

    Parameters
    ----------
    n : float
        Total weight, finite and >= 0.
    mean : array_like, shape () or (d,)
    M2 : array_like, shape (), (d,) or (d, d)
        Symmetric with a non-negative diagonal. Zero, like ``mean``, when ``n == 0``.

    Raises
    ------
    ValueError
        For a negative or non-finite ``n``, non-finite or mis-shaped arrays, a non-symmetric M2 or
        a negative variance.

    See Also
    --------
    GaussianSummary.from_samples : the summary of raw rows.
    GaussianSummary.from_moments : the summary of reported ``(n, mean, covariance)``.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussum import GaussianSummary
    >>> X = np.array([[1.0, 2.0], [3.0, 5.0], [5.0, 11.0]])
    >>> s = GaussianSummary.from_samples(X)
    >>> s.n, s.mean.tolist()
    (3.0, [3.0, 6.0])
    >>> a, b = GaussianSummary.from_samples(X[:1]), GaussianSummary.from_samples(X[1:])
    >>> bool(np.allclose((a + b).covariance(), np.cov(X, rowvar=False)))
    True
    """

    n: float = attrs.field(converter=as_count)
    mean: np.ndarray = attrs.field(converter=lambda v: as_field(v, "mean"))
    M2: np.ndarray = attrs.field(converter=lambda v: as_field(v, "M2"), validator=_validate_fields)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def _trusted(cls, n: float, mean: np.ndarray, M2: np.ndarray) -> GaussianSummary:
        """Wrap arrays this package computed itself: no copy, no checks; marks them read-only."""
        self = object.__new__(cls)
        object.__setattr__(self, "n", float(n))
        object.__setattr__(self, "mean", readonly(mean))
        object.__setattr__(self, "M2", readonly(M2))
        return self

    @classmethod
    def _from_moments_1d(cls, moments: tuple[float, np.ndarray, np.ndarray], scalar: bool) -> GaussianSummary:
        n, mean, M2 = moments
        if scalar:
            mean, M2 = mean.reshape(()), M2.reshape(())
        return cls._trusted(n, mean, M2)

    @classmethod
    def empty(cls, d: int | None = None, *, diagonal: bool = False) -> GaussianSummary:
        """The summary of no data: an exact identity for ``+``.

        Parameters
        ----------
        d : int or None
            Number of variables; None for scalar data (mean and M2 of shape ``()``).
        diagonal : bool
            Keep only per-variable sums of squares.

        Examples
        --------
        >>> from gaussum import GaussianSummary
        >>> e = GaussianSummary.empty(2)
        >>> s = GaussianSummary.from_samples([[1.0, 2.0], [3.0, 4.0]])
        >>> e + s == s
        True
        """
        if d is None:
            return cls._trusted(0.0, np.zeros(()), np.zeros(()))
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, (numbers.Integral, np.integer)) or d < 1:
            raise ValueError(f"d must be a positive integer or None, got {d!r}")
        d = int(d)
        return cls._trusted(0.0, np.zeros(d), np.zeros(d if diagonal else (d, d)))

    @classmethod
    def from_samples(
        cls,
        X: Any,
        weights: Any = None,
        *,
        diagonal: bool = False,
        nan_policy: str = "raise",
    ) -> GaussianSummary:
        """The summary of observations, one per row.

        Parameters
        ----------
        X : array_like, shape (N, d) or (N,)
            Rows are observations; a 1-D array is N scalar observations (mean and M2 are 0-d).
            Any real dtype; accumulated in float64, block by block, so the data is never copied
            whole.
        weights : array_like, shape (N,), optional
            Frequency weights, finite and >= 0 (need not be integers). ``n`` is their sum, and
            the covariance matches ``np.cov(X, rowvar=False, fweights=weights)``.
        diagonal : bool
            Keep only the per-variable sums of squares (M2 of shape ``(d,)``).
        nan_policy : {"raise", "omit", "propagate"}
            What to do with rows that hold NaN or inf: raise ValueError naming the first such row;
            leave the rows out; or let them make the result NaN.

        Returns
        -------
        GaussianSummary

        Raises
        ------
        ValueError
            For non-numeric data, a shape other than (N,) or (N, d), bad weights, or (under
            ``nan_policy="raise"``) a non-finite value.

        Notes
        -----
        Rows are processed in blocks of about 2 MiB. Each block is summarised by a corrected
        two-pass algorithm centred on a first estimate of its mean, re-centred when that
        estimate is far off, then merged with the pairwise rule. The result is accurate to a few
        units of rounding at any offset of the mean from zero, where ``np.cov`` and the
        ``E[x^2] - E[x]^2`` formula lose digits in proportion to ``mean / spread``.

        Examples
        --------
        Timestamps far from zero with a small spread keep every digit of their variance:

        >>> from gaussum import GaussianSummary
        >>> s = GaussianSummary.from_samples([1.7e9 + 0.25, 1.7e9 + 0.5, 1.7e9 + 0.75])
        >>> float(s.variance())
        0.0625
        """
        return cls._from_samples_counted(X, weights, diagonal=diagonal, nan_policy=nan_policy)[0]

    @classmethod
    def _from_samples_counted(
        cls, X: Any, weights: Any = None, *, diagonal: bool = False, nan_policy: str = "raise"
    ) -> tuple[GaussianSummary, int]:
        """`from_samples`, and how many rows ``nan_policy="omit"`` left out (for integrations)."""
        check_nan_policy(nan_policy)
        data = as_data(X)
        scalar = data.ndim == 1
        if scalar:
            data = data.reshape(-1, 1)
        w = None if weights is None else as_weights(weights, data.shape[0])
        n, mean, M2, dropped = _combine.summarize_rows(data, w, diagonal or scalar, nan_policy)
        return cls._from_moments_1d((n, mean, M2), scalar), dropped

    @classmethod
    def from_moments(cls, n: Any, mean: Any, cov: Any, ddof: int = 1) -> GaussianSummary:
        """The summary of data known only by its count, mean and covariance.

        Parameters
        ----------
        n : float
            Number of observations (total weight).
        mean : array_like, shape () or (d,)
        cov : array_like, shape (d, d) for a full summary, (d,) for a diagonal one (variances);
            ``()`` for scalar data. Symmetric, non-negative variances.
        ddof : int
            The divisor the covariance was computed with is ``n - ddof`` (1: the sample
            covariance, as ``np.cov``; 0: the maximum-likelihood one).

        Returns
        -------
        GaussianSummary
            With ``M2 = cov * (n - ddof)``. When ``n - ddof <= 0`` and ``n <= 1`` (a single
            observation) M2 is 0, whatever `cov` holds (often NaN).

        Raises
        ------
        ValueError
            For shapes that do not match, negative variances, a non-symmetric covariance, or
            ``1 < n <= ddof`` (no degrees of freedom left to recover M2 from).

        Examples
        --------
        >>> from gaussum import GaussianSummary
        >>> a = GaussianSummary.from_moments(10, [0.0, 1.0], [1.0, 2.0])
        >>> a.diagonal, a.M2.tolist()
        (True, [9.0, 18.0])
        """
        count = as_count(n)
        mean_array = as_field(mean, "mean")
        cov_array = as_field(cov, "cov")
        dof = count - ddof
        if dof <= 0 and count <= 1:
            M2 = np.zeros(cov_array.shape)
            if count == 0:
                mean_array = np.zeros(mean_array.shape)
        elif dof <= 0:
            raise ValueError(
                f"cannot recover M2 from a covariance with n={count:g} and ddof={ddof}: "
                "no degrees of freedom"
            )
        else:
            try:
                check_fields(count, mean_array, cov_array)
            except ValueError as exc:
                raise ValueError(str(exc).replace("M2", "cov")) from None
            M2 = cov_array * dof
        return cls(count, mean_array, M2)

    # -- fields and derived quantities --------------------------------------------------------

    @property
    def diagonal(self) -> bool:
        """True when only per-variable sums of squares are kept (M2 of shape ``(d,)``)."""
        return self.mean.ndim == 1 and self.M2.ndim == 1

    @property
    def d(self) -> int:
        """Number of variables (1 for scalar data)."""
        return self.mean.size

    @property
    def w2(self) -> float:
        """Sum over rows of frequency weight times reliability weight squared (``n`` when unweighted)."""
        return self.n

    @property
    def effective_n(self) -> float:
        """Kish's effective sample size, ``n**2 / w2`` (``n`` for unweighted data)."""
        return self.n

    def _degrees_of_freedom(self, ddof: float) -> float:
        """``n - ddof``, or 0 with numpy's RuntimeWarning when it is not positive."""
        dof = self.n - ddof
        if dof <= 0:
            warnings.warn(f"degrees of freedom <= 0 (n={self.n:g}, ddof={ddof})", RuntimeWarning, stacklevel=3)
            return 0.0
        return dof

    def _squares(self) -> np.ndarray:
        """Per-variable sums of squared deviations: the diagonal of M2."""
        return np.diagonal(self.M2) if self.M2.ndim == 2 else self.M2

    def covariance(self, ddof: float = 1) -> np.ndarray:
        """The covariance, ``M2 / (n - ddof)``.

        Parameters
        ----------
        ddof : float
            Delta degrees of freedom: 1 for the sample covariance (as ``np.cov``), 0 for the
            maximum-likelihood one; a fraction for weighted data (see ``scaled``).

        Returns
        -------
        ndarray
            In M2's shape: ``(d, d)``, or ``(d,)`` variances for a diagonal summary, ``()`` for
            scalar data. Like ``np.cov``, ``n <= ddof`` gives inf or NaN with a RuntimeWarning.
        """
        dof = self._degrees_of_freedom(ddof)
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.M2 / dof

    def variance(self, ddof: float = 1) -> np.ndarray:
        """Per-variable variances, ``diag(M2) / (n - ddof)``: shape ``(d,)``, ``()`` for scalar data.

        See `covariance` for `ddof` and for ``n <= ddof``.
        """
        dof = self._degrees_of_freedom(ddof)
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._squares() / dof

    def std(self, ddof: float = 1) -> np.ndarray:
        """Per-variable standard deviations: shape ``(d,)``, ``()`` for scalar data.

        See `covariance` for `ddof` and for ``n <= ddof``.
        """
        dof = self._degrees_of_freedom(ddof)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sqrt(self._squares() / dof)

    def correlation(self) -> np.ndarray:
        """Correlation matrix, shape ``(d, d)`` (``()`` for scalar data).

        Returns
        -------
        ndarray
            ``M2_ij / sqrt(M2_ii M2_jj)``, clipped to [-1, 1] against rounding, with an exact unit
            diagonal. A variable with zero variance has NaN correlations and a RuntimeWarning, as
            ``np.corrcoef`` gives.

        Raises
        ------
        ValueError
            For a diagonal summary, which keeps no covariances.
        """
        if self.diagonal:
            raise ValueError("a diagonal summary keeps no covariances, so it has no correlation matrix")
        if self.M2.ndim == 0:
            return np.ones(()) if self.M2 > 0 else np.full((), np.nan)
        scale = np.sqrt(np.diagonal(self.M2))
        if (scale == 0).any():
            warnings.warn("correlation of a variable with zero variance is undefined (NaN)", RuntimeWarning, stacklevel=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = self.M2 / np.multiply.outer(scale, scale)
        np.clip(corr, -1.0, 1.0, out=corr)
        np.fill_diagonal(corr, np.where(scale > 0, 1.0, np.nan))
        return corr

    def to_diagonal(self) -> GaussianSummary:
        """The same summary without its off-diagonal terms (M2 of shape ``(d,)``).

        A diagonal or scalar summary is returned as it is. Merging a full summary with a diagonal
        one needs this first.
        """
        if self.M2.ndim != 2:
            return self
        return GaussianSummary._trusted(self.n, self.mean, np.diagonal(self.M2).copy())

    def scaled(self, factor: float) -> GaussianSummary:
        """Every weight multiplied by `factor`: ``n`` and ``M2`` scale, the mean stays.

        Parameters
        ----------
        factor : float
            In (0, inf).

        Returns
        -------
        GaussianSummary

        Raises
        ------
        ValueError
            For a factor that is not positive and finite, or one that overflows n or M2.

        Notes
        -----
        ``s.scaled(lam).update(x)`` is exponential forgetting: after k such steps an observation
        of age a carries weight ``lam**a``. The README's section on forgetting gives the effective
        sample size and the ``ddof`` that makes the variance unbiased.

        Examples
        --------
        >>> from gaussum import GaussianSummary
        >>> s = GaussianSummary.from_samples([1.0, 2.0, 6.0]).scaled(0.5)
        >>> s.n, float(s.mean), float(s.M2)
        (1.5, 3.0, 7.0)
        """
        f = as_count(factor, "factor")
        if f == 0:
            raise ValueError("factor must be positive, got 0")
        with np.errstate(over="ignore"):
            n, M2 = self.n * f, self.M2 * f
        if not (np.isfinite(n) and np.isfinite(M2).all()):
            raise ValueError(f"scaling by {f:g} overflows float64 (n={self.n:g})")
        return GaussianSummary._trusted(n, self.mean, M2)

    def to_scipy(self, ddof: int = 1) -> Any:
        """This summary as a frozen ``scipy.stats`` distribution (needs ``gaussum[stats]``).

        ``multivariate_normal(mean, covariance(ddof))``, or ``norm`` for scalar data; see
        `gaussum.inference.to_scipy`.
        """
        from .inference import to_scipy  # lazy: the optional integration, not a core dependency

        return to_scipy(self, ddof=ddof)

    # -- combining ----------------------------------------------------------------------------

    def _check_compatible(self, other: GaussianSummary, verb: str) -> None:
        if self.mean.shape != other.mean.shape or self.M2.shape != other.M2.shape:
            hint = ""
            if self.mean.shape == other.mean.shape:
                hint = "; call to_diagonal() on the full one first"
            raise ValueError(
                f"cannot {verb} summaries of different shapes: "
                f"{_shape_text(self)} vs {_shape_text(other)}{hint}"
            )

    def _as_1d(self) -> tuple[float, np.ndarray, np.ndarray]:
        if self.mean.ndim == 0:
            return self.n, self.mean.reshape(1), self.M2.reshape(1)
        return self.n, self.mean, self.M2

    def _is_finite(self) -> bool:
        """True unless a field holds NaN or inf (only ``nan_policy="propagate"`` makes such)."""
        return bool(np.isfinite(self.mean).all() and np.isfinite(self._squares()).all())

    def _wrap(self, moments: tuple[float, np.ndarray, np.ndarray], *inputs: GaussianSummary) -> GaussianSummary:
        """A summary of this one's shape from `_combine`'s 1-D moments.

        A non-finite result from finite `inputs` is float64 overflow, refused as in
        `from_samples`: an inf M2 would otherwise pass silently into every later merge.
        """
        result = GaussianSummary._from_moments_1d(moments, self.mean.ndim == 0)
        if inputs and not result._is_finite() and all(s._is_finite() for s in inputs):
            raise Float64OverflowError(
                "the result overflows float64 (sums of squares past 1.8e308); rescale the data first"
            )
        return result

    def __add__(self, other: object) -> GaussianSummary:
        if not isinstance(other, GaussianSummary):
            return NotImplemented
        self._check_compatible(other, "merge")
        with np.errstate(over="ignore", invalid="ignore"):
            moments = _combine.merge_pair(*self._as_1d(), *other._as_1d())
        return self._wrap(moments, self, other)

    def __radd__(self, other: object) -> GaussianSummary:
        # Lets the builtin sum() start from its default 0.
        if isinstance(other, numbers.Number) and other == 0 and not isinstance(other, bool):
            return self
        return NotImplemented

    def __sub__(self, other: object) -> GaussianSummary:
        """Remove a sub-summary: ``(a + b) - b`` recovers ``a`` up to rounding.

        Accuracy is lost in proportion to how much is removed (see `_combine.subtract`).
        """
        if not isinstance(other, GaussianSummary):
            return NotImplemented
        self._check_compatible(other, "subtract")
        with np.errstate(over="ignore", invalid="ignore"):
            moments = _combine.subtract(*self._as_1d(), *other._as_1d())
        return self._wrap(moments, self, other)

    @classmethod
    def merge_all(cls, summaries: Iterable[GaussianSummary]) -> GaussianSummary:
        """Merge many summaries in one k-way step (BLAS, no Python loop over the merge).

        Parameters
        ----------
        summaries : iterable of GaussianSummary
            At least one; all of the same shape.

        Returns
        -------
        GaussianSummary
            Equal, within rounding, to any order of pairwise ``+``.

        Examples
        --------
        >>> import numpy as np
        >>> from gaussum import GaussianSummary
        >>> X = np.arange(20.0).reshape(10, 2)
        >>> parts = [GaussianSummary.from_samples(X[i:i + 3]) for i in range(0, 10, 3)]
        >>> GaussianSummary.merge_all(parts).isclose(GaussianSummary.from_samples(X))
        True
        """
        items = list(summaries)
        if not items:
            raise ValueError("merge_all needs at least one summary")
        first = items[0]
        bad = next((i for i, s in enumerate(items) if not isinstance(s, GaussianSummary)), None)
        if bad is not None:
            raise TypeError(f"merge_all takes GaussianSummary values; item {bad} is {type(items[bad]).__name__}")
        mean_shape, m2_shape = first.mean.shape, first.M2.shape
        if any(s.M2.shape != m2_shape or s.mean.shape != mean_shape for s in items):
            for s in items:
                first._check_compatible(s, "merge")  # raises, naming both shapes
        d = first.d
        chunk = max(2, _MERGE_CHUNK_FLOATS // max(first.M2.size, 1))
        total = None
        for start in range(0, len(items), chunk):
            part = items[start : start + chunk]
            k = len(part)
            ns = np.fromiter((s.n for s in part), dtype=np.float64, count=k)
            if first.mean.ndim == 0:
                means = np.fromiter((s.mean[()] for s in part), dtype=np.float64, count=k).reshape(k, 1)
                M2s = np.fromiter((s.M2[()] for s in part), dtype=np.float64, count=k).reshape(k, 1)
            else:
                # One concatenate along the first axis: np.stack would make a view per item.
                means = np.concatenate([s.mean for s in part]).reshape(k, d)
                M2s = np.concatenate([s.M2 for s in part]).reshape(k, *m2_shape)
            with np.errstate(over="ignore", invalid="ignore"):
                moments = _combine.merge_many(ns, means, M2s)
                total = moments if total is None else _combine.merge_pair(*total, *moments)
        return first._wrap(total, *items)

    def update(self, x: Any, weights: Any = None, *, nan_policy: str = "raise") -> GaussianSummary:
        """This summary with more observations added; `self` is unchanged.

        Parameters
        ----------
        x : array_like
            One observation, shape ``(d,)`` (``()`` for scalar data), or a batch of rows,
            shape ``(k, d)`` (``(k,)`` for scalar data).
        weights : float or array_like, optional
            The observation's weight, or one per row of a batch.
        nan_policy : {"raise", "omit", "propagate"}
            As in `from_samples`.

        Returns
        -------
        GaussianSummary
            The merge of this summary with the summary of `x`; for one row, Welford's update.

        Raises
        ------
        ValueError
            For a row or batch of the wrong width, non-numeric data, bad weights, or (under
            ``nan_policy="raise"``) a non-finite value.

        Examples
        --------
        >>> from gaussum import GaussianSummary
        >>> s = GaussianSummary.empty(2).update([1.0, 2.0]).update([[3.0, 4.0], [5.0, 9.0]])
        >>> s == GaussianSummary.from_samples([[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]])
        True
        """
        check_nan_policy(nan_policy)
        if type(x) is float and weights is None and self.mean.ndim == 0 and nan_policy == "raise":
            return self._add_scalar(x)
        data = as_numeric(x, "x")
        if data.ndim == self.mean.ndim:
            return self._add_one(data, weights, nan_policy)
        if data.ndim != self.mean.ndim + 1:
            expected = "() or (k,)" if self.mean.ndim == 0 else f"({self.d},) or (k, {self.d})"
            raise ValueError(f"x must have shape {expected} to update {_shape_text(self)}, got {data.shape}")
        rows = as_data(data, "x").reshape(data.shape[0], -1)
        if rows.shape[1] != self.d:
            raise ValueError(
                f"x must have shape (k, {self.d}) to update {_shape_text(self)}, got {data.shape}"
            )
        w = None if weights is None else as_weights(weights, rows.shape[0])
        n, mean, M2, _ = _combine.summarize_rows(rows, w, self.M2.ndim < 2, nan_policy, name="x")
        with np.errstate(over="ignore", invalid="ignore"):
            moments = _combine.merge_pair(*self._as_1d(), n, mean, M2)
        # Under "propagate" a NaN result is the answer asked for, not an overflow.
        return self._wrap(moments, self) if nan_policy != "propagate" else self._wrap(moments)

    def _add_one(self, row: np.ndarray, weight: Any, nan_policy: str) -> GaussianSummary:
        """`update` with one observation: Welford's step, the pairwise rule with nb = w, M2b = 0.

        This is the per-row hot path, so it does the least numpy work it can: one finiteness
        test on ``delta @ delta`` instead of a check of every entry, and M2's update as the
        outer product of ``u = delta * sqrt(n w / (n + w))`` (exactly symmetric, one rounding
        more than ``outer(delta, delta) * c``).
        """
        if row.shape != self.mean.shape:
            expected = "() or (k,)" if self.mean.ndim == 0 else f"({self.d},) or (k, {self.d})"
            raise ValueError(f"x must have shape {expected} to update {_shape_text(self)}, got {row.shape}")
        w = 1.0 if weight is None else as_count(weight, "weights")
        row = np.asarray(row, dtype=np.float64)
        if w == 0:
            if nan_policy == "raise" and not np.isfinite(row).all():
                raise _nonfinite_row(row)
            return self
        n = self.n + w
        delta = row - self.mean
        # ndarray.dot is the cheapest call numpy offers here (a third of ``@``'s overhead).
        if not math.isfinite(delta.dot(delta) if self.mean.ndim else delta * delta):
            return self._add_one_nonfinite(row, w, nan_policy)
        fraction = w / n
        mean = self.mean + delta * fraction
        u = delta * math.sqrt(self.n * fraction)
        M2 = np.multiply.outer(u, u) if self.M2.ndim == 2 else u * u
        M2 += self.M2
        return GaussianSummary._trusted(n, mean, M2)

    def _add_one_nonfinite(self, row: np.ndarray, w: float, nan_policy: str) -> GaussianSummary:
        """`_add_one` for a row with NaN or inf (or whose square overflows), by the NaN policy."""
        if np.isfinite(row).all():
            raise overflow_error("x", row)
        if nan_policy == "raise":
            raise _nonfinite_row(row)
        if nan_policy == "omit":
            return self
        n = self.n + w
        with np.errstate(all="ignore"):
            delta = row - self.mean
            mean = self.mean + delta * (w / n)
            outer = np.multiply.outer(delta, delta) if self.M2.ndim == 2 else delta * delta
            M2 = self.M2 + outer * (self.n * (w / n))
        return GaussianSummary._trusted(n, mean, M2)

    def _add_scalar(self, value: float) -> GaussianSummary:
        """`update` with one unweighted Python number on scalar data, in plain float arithmetic."""
        if not math.isfinite(value):
            raise _nonfinite_row(np.array(value))
        n = self.n + 1.0
        mean = float(self.mean)
        delta = value - mean
        fraction = 1.0 / n
        M2 = float(self.M2) + delta * delta * (self.n * fraction)
        return GaussianSummary._trusted(n, np.array(mean + delta * fraction), np.array(M2))

    # -- comparison, hashing, serialisation ---------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GaussianSummary):
            return NotImplemented
        return (
            self.n == other.n
            and self.mean.shape == other.mean.shape
            and self.M2.shape == other.M2.shape
            and bool(np.array_equal(self.mean, other.mean))
            and bool(np.array_equal(self.M2, other.M2))
        )

    def __hash__(self) -> int:
        # Python's float hash already treats 0.0 and -0.0 alike, as == does.
        return hash((self.n, self.mean.shape, self.M2.shape, tuple(self.mean.ravel().tolist())))

    def isclose(self, other: GaussianSummary, rtol: float = 1e-9, atol: float = 0.0) -> bool:
        """Approximate equality, with tolerances on the scale of the data.

        Parameters
        ----------
        other : GaussianSummary
        rtol, atol : float
            Relative and absolute tolerances.

        Returns
        -------
        bool
            True when the shapes match, ``n`` agrees to `rtol`, each mean to
            ``atol + rtol * max(|mean|, std)``, and each M2 entry to
            ``atol + rtol * sqrt(M2_ii * M2_jj)`` (the size a covariance can have). Comparing
            with 0 would be wrong for a covariance that is 0 only up to rounding.

        Raises
        ------
        TypeError
            If `other` is not a GaussianSummary.

        Examples
        --------
        >>> from gaussum import GaussianSummary
        >>> a = GaussianSummary.from_samples([[1.0, 2.0], [2.0, 1.0], [4.0, 4.5]])
        >>> b = GaussianSummary.from_samples([[4.0, 4.5]]) + GaussianSummary.from_samples([[1.0, 2.0], [2.0, 1.0]])
        >>> a.isclose(b)
        True
        """
        if not isinstance(other, GaussianSummary):
            raise TypeError(f"isclose compares GaussianSummary values, got {type(other).__name__}")
        if self.mean.shape != other.mean.shape or self.M2.shape != other.M2.shape:
            return False
        if abs(self.n - other.n) > atol + rtol * max(self.n, other.n):
            return False
        sq_a = np.diagonal(self.M2) if self.M2.ndim == 2 else self.M2
        sq_b = np.diagonal(other.M2) if other.M2.ndim == 2 else other.M2
        with np.errstate(divide="ignore", invalid="ignore"):
            spread = np.sqrt(np.maximum(sq_a / max(self.n, 1.0), sq_b / max(other.n, 1.0)))
        mean_scale = np.maximum(np.maximum(np.abs(self.mean), np.abs(other.mean)), spread)
        if not (np.abs(self.mean - other.mean) <= atol + rtol * mean_scale).all():
            return False
        squares = np.maximum(sq_a, sq_b)
        root = np.sqrt(squares)
        m2_scale = np.multiply.outer(root, root) if self.M2.ndim == 2 else squares
        return bool((np.abs(self.M2 - other.M2) <= atol + rtol * m2_scale).all())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict; `from_dict` turns it back into an equal summary, exactly.

        Examples
        --------
        >>> import json
        >>> from gaussum import GaussianSummary
        >>> s = GaussianSummary.from_samples([[0.1, 0.2], [0.3, 0.7]])
        >>> GaussianSummary.from_dict(json.loads(json.dumps(s.to_dict()))) == s
        True
        """
        return {
            "format": _FORMAT_NAME,
            "version": FORMAT_VERSION,
            "n": self.n,
            "mean": self.mean.tolist(),
            "M2": self.M2.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> GaussianSummary:
        """The summary written by `to_dict`, validated like direct construction.

        Raises
        ------
        ValueError
            For anything but a well-formed dict of a known format version: missing or extra
            keys, wrong types, shapes, non-finite values, a non-symmetric M2.
        """
        check_format_header(data, {"format", "version", "n", "mean", "M2"}, _FORMAT_NAME, FORMAT_VERSION)
        for key in ("mean", "M2"):
            if not is_number_tree(data[key]):
                raise ValueError(f"summary dict field {key!r} must hold numbers, got {data[key]!r:.80}")
        if not is_number_tree(data["n"]) or isinstance(data["n"], list):
            raise ValueError(f"summary dict field 'n' must be a number, got {data['n']!r:.80}")
        return cls(data["n"], data["mean"], data["M2"])

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # attrs' default unpickling would skip the converter and leave writeable arrays.
        return (_restore, (self.n, np.array(self.mean), np.array(self.M2)))

    def __repr__(self) -> str:
        count = f"{int(self.n):_}" if self.n < 1e15 and self.n.is_integer() else f"{self.n:g}"
        if self.d <= 4:
            opts = dict(precision=6, separator=", ", suppress_small=False)
            mean = np.array2string(self.mean, **opts)
            M2 = np.array2string(self.M2, **opts).replace("\n", "")
            M2 = " ".join(M2.split())
            return f"GaussianSummary(n={count}, mean={mean}, M2={M2})"
        kind = "diagonal" if self.diagonal else "full"
        mean = np.array2string(self.mean, precision=4, separator=", ", threshold=6, edgeitems=2)
        return f"GaussianSummary(n={count}, d={self.d}, {kind}, mean={mean})"


def _nonfinite_row(row: np.ndarray) -> NonFiniteError:
    return NonFiniteError(
        f"x has a non-finite value: {row.tolist()}; pass nan_policy='omit' to skip such rows "
        "or 'propagate' to return NaN",
        column=None if row.ndim == 0 else int(np.flatnonzero(~np.isfinite(row))[0]),
    )


def _restore(n: float, mean: np.ndarray, M2: np.ndarray) -> GaussianSummary:
    """Unpickle: the arrays come back read-only."""
    return GaussianSummary._trusted(n, mean, M2)
