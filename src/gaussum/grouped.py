"""`GroupedSummary`: one `GaussianSummary` per key, as keys plus one moments record."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from . import _arrays, _combine, _kernel
from . import _keys as keyset
from . import _names as variables
from ._moments import FieldNames, Frozen, Moments, readonly
from ._validate import (
    as_data,
    as_field,
    as_weights,
    check_format_header,
    check_nan_policy,
    float_tree,
)
from .errors import Float64OverflowError
from .summary import MAX_VARIABLES, GaussianSummary

__all__ = ["GROUPED_FORMAT_VERSION", "GroupedSummary"]

#: Version of the layout written by `GroupedSummary.to_dict` (version 1, without ``w2``, is
#: still read).
GROUPED_FORMAT_VERSION = 2
_FORMAT_NAME = "gaussum.GroupedSummary"
_FIELDS_V1 = {"format", "version", "key_dtype", "keys", "shape", "diagonal", "counts", "means", "M2"}
_DICT_FIELDS = {1: _FIELDS_V1, 2: _FIELDS_V1 | {"w2"}}
#: The most keys `from_dict` accepts by default.
MAX_GROUPS = 100_000_000


def _names(keys: np.ndarray) -> FieldNames:
    """Error-message names for a record whose groups are `keys`."""
    return FieldNames("counts", "means", lambda i: repr(keyset.label(keys[i])))


def _has_missing_key(keys: np.ndarray) -> bool:
    """True when the last key is NaN or NaT: the group of missing keys (``dropna=False``), sorted last."""
    return keys.dtype.kind in "fMm" and keys.size > 0 and bool(np.isnan(keys[-1]))


def _check_sorted(keys: np.ndarray) -> None:
    if _has_missing_key(keys):
        if np.isnan(keys[:-1]).any():
            raise ValueError("keys may hold one missing key (NaN or NaT), and only as the last key")
        keys = keys[:-1]
    if keys.size > 1:
        try:
            increasing = keys[1:] > keys[:-1]
        except TypeError as exc:
            raise ValueError(f"keys must be labels that can be ordered: {exc}") from None
        if not np.all(increasing):
            i = int(np.flatnonzero(~increasing)[0])
            raise ValueError(
                f"keys must be distinct and sorted; keys[{i}] = {keyset.label(keys[i])!r} is not below "
                f"keys[{i + 1}] = {keyset.label(keys[i + 1])!r}"
            )


class GroupedSummary(Frozen):
    """One Gaussian summary per key, stored column-wise: keys, counts, means, M2 and w2.

    For the rows of each key, ``counts[i]`` is their total weight, ``means[i]`` their mean,
    ``M2[i]`` their summed outer products of deviations from that mean and ``w2[i]`` their sum of
    frequency weight times squared reliability weight: exactly what `GaussianSummary` holds,
    stacked over keys (the same record). Keys are kept distinct and sorted. Grouped summaries of
    disjoint data merge with ``+`` key by key (keys in only one side are kept as they are), by
    the same rule as `GaussianSummary`, to within float64 rounding; ``-`` removes a part key by
    key. Values are immutable: the arrays are copies marked read-only.

    Parameters
    ----------
    keys : array_like, shape (g,)
        Distinct labels in increasing order: integers, strings, floats, datetimes, or any
        objects that can be ordered.
    counts : array_like, shape (g,)
        Total weight per key, finite and >= 0.
    means : array_like, shape (g, d), or (g,) for scalar data
    M2 : array_like, shape (g, d, d), (g, d) for diagonal summaries, or (g,) for scalar data
        Symmetric with non-negative variances; zero, like the mean, for a key of count 0.
    w2 : array_like, shape (g,), optional
        As `GaussianSummary`'s, per key; None (the default) means ``w2 = counts``.
    names : sequence of str, optional
        The variables' names.
    mean_errors : array_like, shape of `means`, optional
        The rounding error of each mean (`GaussianSummary.mean_error`, per key); None (the
        default) means zeros. ``==`` compares it, `isclose` does not.

    Raises
    ------
    ValueError
        For unsorted or repeated keys, mis-shaped or non-finite arrays, negative counts or
        variances, a non-symmetric M2, a bad w2.

    See Also
    --------
    GroupedSummary.from_samples : the grouped summary of raw rows and their keys.
    GaussianSummary : the summary of one group.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussum import GroupedSummary
    >>> X = np.array([[1.0, 2.0], [3.0, 5.0], [5.0, 11.0], [0.0, 1.0]])
    >>> g = GroupedSummary.from_samples(["b", "a", "b", "a"], X)
    >>> g.keys().tolist(), g.counts.tolist()
    (['a', 'b'], [2.0, 2.0])
    >>> g["b"].mean.tolist()
    [3.0, 6.5]
    >>> bool(np.allclose(g.covariances()[1], np.cov(X[[0, 2]], rowvar=False)))
    True
    """

    __slots__ = ("__weakref__", "_keys", "_moments", "names")

    _keys: np.ndarray
    _moments: Moments
    #: The variables' names, a tuple of d distinct strings, or None (as `GaussianSummary.names`).
    names: tuple[str, ...] | None

    def __init__(
        self, keys: Any, counts: Any, means: Any, M2: Any, w2: Any = None, *, names: Any = None, mean_errors: Any = None
    ) -> None:
        key_array = keyset.as_keys(keys, allow_missing=True)
        if key_array.dtype.kind == "O" and key_array.size and all(isinstance(k, str) for k in key_array):
            keyset.check_python_keys(key_array, "keys")
            key_array = key_array.astype(str)
        key_array = readonly(np.array(key_array, copy=True))
        _check_sorted(key_array)
        count_array = as_field(counts, "counts")
        g = key_array.size
        if count_array.shape != (g,):
            raise ValueError(f"counts must have shape ({g},) to match the keys, got {count_array.shape}")
        mean_array = as_field(means, "means")
        no_variables = mean_array.ndim == 2 and mean_array.shape[1] == 0
        if mean_array.ndim not in (1, 2) or mean_array.shape[0] != g or no_variables:
            raise ValueError(f"means must have shape ({g},) or ({g}, d) with d >= 1, got {mean_array.shape}")
        w2_array = None if w2 is None else as_field(w2, "w2")
        error_array = None if mean_errors is None else as_field(mean_errors, "mean_errors")
        record = Moments.checked(
            count_array, mean_array, as_field(M2, "M2"), w2_array, _names(key_array), mean_errors=error_array
        )
        labels = variables.as_names(names, None if record.scalar else record.d)
        self._set(_keys=key_array, _moments=record, names=labels)

    @classmethod
    def _trusted(cls, keys: np.ndarray, record: Moments, names: tuple[str, ...] | None = None) -> GroupedSummary:
        """Wrap keys and a record this package computed itself: no copy, no checks."""
        self = object.__new__(cls)
        self._set(_keys=readonly(keys), _moments=record, names=names)
        return self

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def empty(
        cls, d: int | None = None, *, diagonal: bool = False, key_dtype: Any = np.int64, names: Any = None
    ) -> GroupedSummary:
        """A grouped summary of no keys: an exact identity for ``+``.

        Parameters
        ----------
        d : int or None
            Number of variables; None for scalar data.
        diagonal : bool
        key_dtype : dtype
            The dtype of the (empty) keys array.
        names : sequence of str, optional
            The variables' names.

        Returns
        -------
        GroupedSummary
        """
        template = GaussianSummary.empty(d, diagonal=diagonal)
        keys = np.empty(0, dtype=key_dtype)
        record = Moments.trusted(
            np.zeros(0), np.zeros((0, *template.mean.shape)), np.zeros((0, *template.M2.shape)), np.zeros(0)
        )
        return cls._trusted(keys, record, variables.as_names(names, d))

    @classmethod
    def from_samples(
        cls,
        keys: Any,
        X: Any,
        weights: Any = None,
        *,
        aweights: Any = None,
        names: Any = None,
        diagonal: bool = False,
        nan_policy: str = "raise",
        dropna: bool | None = None,
    ) -> GroupedSummary:
        """The summary of the rows of each key, in one vectorised pass.

        Parameters
        ----------
        keys : array_like, shape (N,)
            The label of each row: integers, strings, floats, datetimes, or any objects that can
            be ordered. Missing keys (None, NaN, NaT, ``pd.NA``) follow `dropna`.
        X : array_like, shape (N, d) or (N,)
            Rows are observations; a 1-D array is N scalar observations. Labelled inputs (pandas,
            polars, pyarrow, xarray) give their column names, as in
            `GaussianSummary.from_samples`.
        weights : array_like, shape (N,), optional
            Frequency weights, finite and >= 0.
        aweights : array_like, shape (N,), optional
            Reliability weights, finite and >= 0 (see `GaussianSummary.from_samples`).
        names : sequence of str, optional
            The variables' names; overrides those of a labelled `X`.
        diagonal : bool
            Keep only the per-variable sums of squares.
        nan_policy : {"raise", "omit", "propagate"}
            As in `GaussianSummary.from_samples`. With "omit", a key all of whose rows are
            dropped is kept, with count 0.
        dropna : bool or None
            Rows whose key is missing are left out, as ``groupby(dropna=True)`` does: silently
            with True; with a `gaussum.errors.MissingKeysWarning` that counts them with None
            (the default), so that dropping is never silent unless asked for. With False they
            are kept as a group of their own, whose key is NaN (float keys) or NaT (datetime
            keys), sorted last; other key kinds have no missing value to keep, so False is
            refused for them when a key is missing.

        Returns
        -------
        GroupedSummary
            ``result[k]`` equals, to within rounding, ``GaussianSummary.from_samples(X[keys ==
            k], ...)`` for every key k that occurs.

        Raises
        ------
        ValueError
            For keys whose length differs from the rows of X, keys that cannot be ordered (or
            NaN), and everything `GaussianSummary.from_samples` refuses.

        Notes
        -----
        Keys are factorised (counted when they are integers over a compact range, sorted
        otherwise) and the rows are visited in key order by the row kernel
        (`gaussum._kernel.summarize_groups`), a block of a few thousand rows at a time, so the
        extra memory is the permutation (N integers) plus one block. In each block, every key's
        rows get the corrected two-pass of `GaussianSummary.from_samples`: a shift at the key's
        mean, held in two float64 parts, then the centred sums ``c`` and scatter ``S`` of the
        rows, and ``M2 = S - c c^T / n``.

        Examples
        --------
        >>> import numpy as np
        >>> from gaussum import GroupedSummary
        >>> g = GroupedSummary.from_samples([2, 1, 2, 2], [1e9 + 1.0, 5.0, 1e9 + 2.0, 1e9 + 3.0])
        >>> g.keys().tolist(), g.means.tolist(), g.variances(ddof=0).tolist()
        ([1, 2], [5.0, 1000000002.0], [0.0, 0.6666666666666666])
        """
        return cls._from_samples_counted(
            keys, X, weights, aweights=aweights, names=names, diagonal=diagonal, nan_policy=nan_policy, dropna=dropna
        )[0]

    @classmethod
    def _from_samples_counted(
        cls,
        keys: Any,
        X: Any,
        weights: Any = None,
        *,
        aweights: Any = None,
        names: Any = None,
        diagonal: bool = False,
        nan_policy: str = "raise",
        dropna: bool | None = None,
        name: str = "X",
    ) -> tuple[GroupedSummary, int]:
        """`from_samples`, and how many rows ``nan_policy="omit"`` left out (for integrations).

        Rows left out for a missing key are not counted there (see `dropna`).
        """
        check_nan_policy(nan_policy)
        if _arrays.is_device_array(X):  # torch, CuPy, JAX, ...: summarised on their own device
            uniques, stack, dropped = _arrays.summarize_groups(keys, X, weights, aweights, diagonal, nan_policy, name)
            return cls._trusted(uniques, Moments.trusted(*stack)), dropped
        rows, found = variables.rows_and_names(X, name)
        data = as_data(rows, name)
        scalar = data.ndim == 1
        if scalar:
            data = data.reshape(-1, 1)
        N = data.shape[0]
        labels = variables.as_names(found if names is None else names, None if scalar else data.shape[1])
        key_array, kept = keyset.present_keys(keys, N, dropna, f"the rows of {name}")
        fweights = None if weights is None else as_weights(weights, N)
        reliability = None if aweights is None else as_weights(aweights, N, "aweights")
        if kept is not None:
            data = data[kept]
            fweights = None if fweights is None else fweights[kept]
            reliability = None if reliability is None else reliability[kept]
        uniques, codes = keyset.factorize(key_array)
        # No sort here: the compiled grouped kernel reads the rows in their own order, and the
        # numpy path sorts only if it runs.
        counts, means, M2, w2, errs, dropped = _kernel.summarize_groups(
            data, _kernel.row_weights(fweights, reliability), codes, uniques.size, None,
            diagonal or scalar, nan_policy, name,
        )
        if scalar:
            means, M2, errs = means[:, 0], M2[:, 0], errs[:, 0]
        return cls._trusted(uniques, Moments.trusted(counts, means, M2, w2, errs), labels), dropped

    @classmethod
    def from_summaries(cls, summaries: Any) -> GroupedSummary:
        """A grouped summary from a mapping ``{key: GaussianSummary}`` (or ``(key, summary)`` pairs).

        Each key keeps its summary's fields, ``mean_error`` included, but not ``M2_error``: grouped
        summaries keep none (only one-row steps make one), so ``from_summaries({"x": a})["x"]``
        of a row-by-row stream ``a`` has its rounded M2 and compares unequal to ``a``
        (`GaussianSummary.isclose` holds).

        Examples
        --------
        >>> from gaussum import GaussianSummary, GroupedSummary
        >>> a = GaussianSummary.from_samples([1.0, 2.0])
        >>> GroupedSummary.from_summaries({"x": a})["x"] == a
        True
        """
        pairs = list(summaries.items() if hasattr(summaries, "items") else summaries)
        if not pairs:
            raise ValueError("from_summaries needs at least one (key, summary) pair")
        for i, (_, s) in enumerate(pairs):
            if not isinstance(s, GaussianSummary):
                raise TypeError(f"from_summaries takes GaussianSummary values; item {i} is {type(s).__name__}")
            pairs[0][1]._check_compatible(s, "group")
        keys = keyset.as_keys([k for k, _ in pairs])
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        repeated = np.flatnonzero(keys[1:] == keys[:-1])
        if repeated.size:
            raise ValueError(f"from_summaries got duplicate key {keyset.label(keys[repeated[0]])!r}")
        items = [pairs[i][1] for i in order]
        names = variables.merged_names(items)
        items = [s._aligned(names, "group") if s.names is not None else s for s in items]
        return cls(
            keys,
            [s.n for s in items],
            np.stack([s.mean for s in items]),
            np.stack([s.M2 for s in items]),
            [s.w2 for s in items],
            names=names,
            mean_errors=np.stack([s.mean_error for s in items]),
        )

    # -- fields and derived quantities --------------------------------------------------------

    @property
    def counts(self) -> np.ndarray:
        """Total weight per key, shape ``(g,)`` (read-only)."""
        return self._moments.counts

    @property
    def means(self) -> np.ndarray:
        """Mean per key, shape ``(g, d)``, or ``(g,)`` for scalar data (read-only)."""
        return self._moments.means

    @property
    def M2(self) -> np.ndarray:
        """Summed outer products of deviations per key: ``(g, d, d)``, ``(g, d)`` or ``(g,)`` (read-only)."""
        return self._moments.M2

    @property
    def mean_errors(self) -> np.ndarray:
        """The rounding error of each mean, shape of `means` (read-only): see `GaussianSummary.mean_error`."""
        return self._moments.mean_errors

    @property
    def w2(self) -> np.ndarray:
        """Sum of frequency weight times squared reliability weight per key, shape ``(g,)`` (read-only)."""
        return self._moments.w2

    @property
    def effective_n(self) -> np.ndarray:
        """Kish's effective sample size per key, ``counts**2 / w2``, shape ``(g,)``."""
        return self._moments.effective_n()

    def keys(self) -> np.ndarray:
        """The keys, distinct and sorted (read-only array)."""
        return self._keys

    @property
    def diagonal(self) -> bool:
        """True when only per-variable sums of squares are kept (M2 of shape ``(g, d)``)."""
        return self._moments.diagonal

    @property
    def d(self) -> int:
        """Number of variables (1 for scalar data)."""
        return self._moments.d

    @property
    def n(self) -> float:
        """Total weight over all keys."""
        return float(self.counts.sum())

    def __len__(self) -> int:
        return self._keys.size

    def _index(self, key: Any) -> int | None:
        if isinstance(key, tuple):
            return self._tuple_index(key)
        # The kinds that `+` would merge are the kinds a lookup matches: 1.0 and True are not 1.
        probe = np.asarray(key)
        if probe.ndim != 0 or not keyset.same_label_kinds({self._keys.dtype.kind, probe.dtype.kind}):
            return None
        if probe.dtype.kind in "fMm" and np.isnan(probe):
            return self._keys.size - 1 if _has_missing_key(self._keys) else None
        try:
            i = int(np.searchsorted(self._keys, key))
            found = i < self._keys.size and bool(self._keys[i] == key)
        except (TypeError, ValueError, OverflowError):
            return None
        return i if found else None

    def _tuple_index(self, key: tuple[Any, ...]) -> int | None:
        """`_index` of a key of several columns (``by=[...]`` in `gaussum.dask` and `gaussum.spark`):
        the keys are then a sorted object array of tuples, and each part matches by kind as one
        key does."""
        if self._keys.dtype != object or not self._keys.size:
            return None
        probe = np.empty(1, dtype=object)
        probe[0] = key
        try:
            i = int(np.searchsorted(self._keys, probe)[0])
        except TypeError:  # parts that do not compare with the keys' parts
            return None
        if i == self._keys.size:
            return None
        found = self._keys[i]
        if not isinstance(found, tuple) or len(found) != len(key):
            return None
        same = all(
            keyset.same_label_kinds({np.asarray(a).dtype.kind, np.asarray(b).dtype.kind}) and bool(a == b)
            for a, b in zip(found, key, strict=True)
        )
        return i if same else None

    def __contains__(self, key: object) -> bool:
        return self._index(key) is not None

    def __getitem__(self, key: Any) -> GaussianSummary:
        i = self._index(key)
        if i is None:
            shown = ", ".join(repr(keyset.label(k)) for k in self._keys[:8])
            more = f", ... ({self._keys.size:,} in all)" if self._keys.size > 8 else ""
            raise KeyError(f"{keyset.label(key)!r} is not a key; the keys are {shown or 'none'}{more}")
        return self._summary(i)

    def get(self, key: Any, default: Any = None) -> Any:
        """The summary of `key`, or `default` when the key is absent."""
        i = self._index(key)
        return default if i is None else self._summary(i)

    def _summary(self, i: int) -> GaussianSummary:
        m = self._moments
        return GaussianSummary._trusted(
            float(m.counts[i]), m.means[i, ...], m.M2[i, ...], float(m.w2[i]), self.names, m.mean_errors[i, ...]
        )

    def __iter__(self) -> Iterator[tuple[Any, GaussianSummary]]:
        """``(key, summary)`` pairs in key order."""
        for i in range(len(self)):
            yield self._keys[i], self._summary(i)

    def covariances(self, ddof: float = 1) -> np.ndarray:
        """``M2 / (counts - ddof * w2 / counts)`` per key, shape ``(g, d, d)`` (``(g, d)`` if diagonal).

        Like `GaussianSummary.covariance`, keys whose divisor is not positive give inf or NaN
        with a RuntimeWarning.
        """
        return self._moments.covariance(ddof)

    def variances(self, ddof: float = 1) -> np.ndarray:
        """Per-variable variances per key, shape ``(g, d)`` (``(g,)`` for scalar data)."""
        return self._moments.variance(ddof)

    def total(self) -> GaussianSummary:
        """The summary of all rows, whatever their key (the k-way merge of every group)."""
        if len(self) == 0:
            d = None if self._moments.scalar else self.d
            return GaussianSummary.empty(d, diagonal=self.diagonal, names=self.names)
        means, M2 = self._moments.as_2d()
        errs = self._moments.mean_errors.reshape(means.shape)
        with np.errstate(over="ignore", invalid="ignore"):
            n, mean, m2, w2, err = _combine.merge_segments(
                self.counts, means, M2, self.w2, errs, np.zeros(1, dtype=np.intp)
            )
        total = GaussianSummary._from_1d(
            (float(n[0]), mean[0], m2[0], float(w2[0]), err[0]), self._moments.scalar, self.names
        )
        if self._moments.is_finite() and not total._is_finite():
            raise Float64OverflowError(
                "the total overflows float64 (sums of squares past 1.8e308); rescale the data first"
            )
        return total

    def to_diagonal(self) -> GroupedSummary:
        """The same summaries without their off-diagonal terms (M2 of shape ``(g, d)``)."""
        return GroupedSummary._trusted(self._keys, self._moments.to_diagonal(), self.names)

    def scaled(self, factor: float) -> GroupedSummary:
        """Every weight multiplied by `factor` (> 0): counts and M2 scale, w2 by its square, the means stay.

        ``g.scaled(lam).update(keys, X)`` is exponential forgetting (see
        `GaussianSummary.scaled`), applied to every key alike: after t steps a row of age a
        weighs ``lam**a`` and ``variances(ddof=1)`` stays the unbiased estimate. Keys not updated
        in a step fade too.

        Examples
        --------
        >>> from gaussum import GroupedSummary
        >>> g = GroupedSummary.from_samples([1, 1, 2], [1.0, 3.0, 5.0]).scaled(0.5)
        >>> g.counts.tolist(), g.means.tolist(), g.M2.tolist(), g.w2.tolist()
        ([1.0, 0.5], [2.0, 5.0], [1.0, 0.0], [0.5, 0.25])
        """
        return GroupedSummary._trusted(self._keys, self._moments.scaled(factor), self.names)

    # -- labelled results (pandas and xarray: gaussum[frames]) ---------------------------------

    def to_pandas(self, ddof: float = 1) -> Any:
        """A tidy pandas DataFrame, one row per key (index ``key``).

        Columns ``n`` and ``effective_n``, then ``mean_<name>`` for each variable, then
        ``var_<name>`` (variances with `ddof`); ``mean`` and ``var`` for scalar data. Needs
        pandas (``pip install 'gaussum[frames]'``).

        Examples
        --------
        >>> from gaussum import GroupedSummary
        >>> rows = [[1.0, 2.0], [3.0, 2.0], [5.0, 0.0], [4.0, 1.0]]
        >>> g = GroupedSummary.from_samples(["a", "a", "b", "b"], rows, names=["x", "y"])
        >>> g.to_pandas().columns.tolist()
        ['n', 'effective_n', 'mean_x', 'mean_y', 'var_x', 'var_y']
        """
        from . import _labelled

        return _labelled.grouped_to_pandas(self, ddof)

    def covariance_frame(self, ddof: float = 1) -> Any:
        """Per-key covariances as one pandas DataFrame, laid out as ``df.groupby(key).cov()``.

        Rows are a ``(key, variable)`` MultiIndex, columns the variables.
        """
        from . import _labelled

        return _labelled.grouped_covariance_frame(self, ddof)

    def to_xarray(self, ddof: float = 1) -> Any:
        """An xarray Dataset over ``key`` (and ``variable``, ``variable2``): ``n``, ``w2``,
        ``mean``, ``variance`` and, for full summaries, ``covariance``."""
        from . import _labelled

        return _labelled.grouped_to_xarray(self, ddof)

    # -- combining ----------------------------------------------------------------------------

    def _shape_text(self) -> str:
        return f"means {self.means.shape[1:]} and M2 {self.M2.shape[1:]} per key"

    def _check_compatible(self, other: GroupedSummary, verb: str) -> None:
        if not self._moments.same_shape(other._moments):
            hint = ""
            if self.means.shape[1:] == other.means.shape[1:]:
                hint = "; call to_diagonal() on the full one first"
            raise ValueError(
                f"cannot {verb} grouped summaries of different shapes: "
                f"{self._shape_text()} vs {other._shape_text()}{hint}"
            )

    def __add__(self, other: object) -> GroupedSummary:
        if not isinstance(other, GroupedSummary):
            return NotImplemented
        return GroupedSummary.merge_all([self, other])

    def __radd__(self, other: object) -> GroupedSummary:
        # Lets the builtin sum() start from its default 0.
        if isinstance(other, (int, float, np.number)) and other == 0 and not isinstance(other, bool):
            return self
        return NotImplemented

    def __sub__(self, other: object) -> GroupedSummary:
        """Remove a part key by key: ``(a + b) - b`` recovers ``a`` up to rounding.

        Every key of the right side must be a key of the left; keys only on the left are kept as
        they are, and a key whose whole weight is removed stays, with count 0. The rule and its
        loss of accuracy are `GaussianSummary`'s ``-``.

        Raises
        ------
        ValueError
            For a key of the right side that the left lacks, different shapes, or a part that
            weighs more than the whole.

        Examples
        --------
        >>> from gaussum import GroupedSummary
        >>> whole = GroupedSummary.from_samples(["a", "a", "b", "a"], [1.0, 2.0, 5.0, 6.0])
        >>> part = GroupedSummary.from_samples(["a"], [6.0])
        >>> (whole - part).isclose(GroupedSummary.from_samples(["a", "a", "b"], [1.0, 2.0, 5.0]))
        True
        """
        if not isinstance(other, GroupedSummary):
            return NotImplemented
        self._check_compatible(other, "subtract")
        other = other._aligned(self.names, "subtract")
        if len(other) == 0:
            return self
        if len(self) == 0:
            key = keyset.label(other._keys[0])
            raise ValueError(f"cannot remove key {key!r}: the summary it is removed from has no keys")
        keyset.concatenate_keys([self._keys, other._keys])  # refuses keys of another kind
        at = np.array([self._index(k) if self._index(k) is not None else -1 for k in other._keys], dtype=np.intp) \
            if _has_missing_key(other._keys) else np.minimum(np.searchsorted(self._keys, other._keys), len(self) - 1)
        missing = (at < 0) | ~keyset.equal_keys(self._keys[at], other._keys)
        if missing.any():
            key = keyset.label(other._keys[int(np.flatnonzero(missing)[0])])
            raise ValueError(f"cannot remove key {key!r}: it is not a key of the summary it is removed from")
        left, right = self._moments, other._moments
        means_u, M2_u = left.as_2d()
        means_t, M2_t = right.as_2d()
        errs_u, errs_t = left.mean_errors.reshape(means_u.shape), right.mean_errors.reshape(means_t.shape)
        with np.errstate(over="ignore", invalid="ignore"):
            n, mean, M2, w2, err = _combine.subtract(
                left.counts[at], means_u[at], M2_u[at], left.w2[at], errs_u[at],
                right.counts, means_t, M2_t, right.w2, errs_t,
            )
        if left.is_finite() and right.is_finite() and not (np.isfinite(mean).all() and np.isfinite(M2).all()):
            raise Float64OverflowError(
                "the result overflows float64 (sums of squares past 1.8e308); rescale the data first"
            )
        counts, means, M2s, w2s = left.counts.copy(), means_u.copy(), M2_u.copy(), left.w2.copy()
        errs = errs_u.copy()
        counts[at], means[at], M2s[at], w2s[at], errs[at] = n, mean, M2, w2, err
        if left.scalar:
            means, M2s, errs = means[:, 0], M2s[:, 0], errs[:, 0]
        record = Moments.trusted(counts, means, M2s, w2s, errs)
        return GroupedSummary._trusted(self._keys, record, self.names or other.names)

    @classmethod
    def merge_all(cls, grouped: Iterable[GroupedSummary]) -> GroupedSummary:
        """Merge many grouped summaries key by key, in one vectorised k-way step.

        Keys present in only one input keep their summary exactly; keys present in several are
        merged by the k-way rule of `GaussianSummary.merge_all`.

        Examples
        --------
        >>> import numpy as np
        >>> from gaussum import GroupedSummary
        >>> keys, X = np.array([1, 2, 1, 3, 2]), np.arange(10.0).reshape(5, 2)
        >>> parts = [GroupedSummary.from_samples(keys[i:i + 2], X[i:i + 2]) for i in (0, 2, 4)]
        >>> GroupedSummary.merge_all(parts).isclose(GroupedSummary.from_samples(keys, X))
        True
        """
        items = list(grouped)
        if not items:
            raise ValueError("merge_all needs at least one grouped summary")
        for i, s in enumerate(items):
            if not isinstance(s, GroupedSummary):
                raise TypeError(f"merge_all takes GroupedSummary values; item {i} is {type(s).__name__}")
            items[0]._check_compatible(s, "merge")
        names = variables.merged_names(items)
        items = [s._aligned(names, "merge") if s.names is not None else s for s in items]
        items = [s for s in items if len(s)] or items[:1]
        if len(items) == 1:
            only = items[0]
            return only if only.names == names else GroupedSummary._trusted(only._keys, only._moments, names)
        keys = keyset.concatenate_keys([s._keys for s in items])
        uniques, codes = keyset.factorize(keys)
        order = keyset.sort_order(codes, uniques.size)
        fields = [
            (s.counts, *s._moments.as_2d(), s.w2, s._moments.mean_errors.reshape(len(s), -1)) for s in items
        ]
        counts, means, M2, w2, errs = (np.concatenate(parts)[order] for parts in zip(*fields, strict=True))
        sorted_codes = codes[order]
        starts = np.flatnonzero(np.concatenate(([True], sorted_codes[1:] != sorted_codes[:-1])))
        with np.errstate(over="ignore", invalid="ignore"):
            counts, means, M2, w2, errs = _combine.merge_segments(counts, means, M2, w2, errs, starts)
        if items[0]._moments.scalar:
            means, M2, errs = means[:, 0], M2[:, 0], errs[:, 0]
        result = Moments.trusted(counts, means, M2, w2, errs)
        if not result.is_finite() and all(s._moments.is_finite() for s in items):
            raise Float64OverflowError(
                "the result overflows float64 (sums of squares past 1.8e308); rescale the data first"
            )
        return cls._trusted(uniques, result, names)

    def _aligned(self, names: tuple[str, ...] | None, verb: str) -> GroupedSummary:
        """This grouped summary with its variables in the order `names` (see `GaussianSummary._aligned`)."""
        order = variables.alignment(names, self.names, verb)
        if order is None:
            return self
        m = self._moments
        M2 = m.M2[:, order][:, :, order] if m.M2.ndim == 3 else m.M2[:, order]
        record = Moments.trusted(m.counts, m.means[:, order], M2, m.w2, m.mean_errors[:, order])
        return GroupedSummary._trusted(self._keys, record, names)

    def select(self, which: Any) -> GroupedSummary:
        """The marginal summaries of some variables, for every key (see `GaussianSummary.select`).

        Examples
        --------
        >>> from gaussum import GroupedSummary
        >>> g = GroupedSummary.from_samples([1, 1, 2], [[1.0, 2.0], [3.0, 4.0], [5.0, 7.0]], names=["a", "b"])
        >>> g.select("b").means.tolist(), g.select("b").names
        ([[3.0], [7.0]], ('b',))
        """
        m = self._moments
        if m.scalar:
            raise ValueError("scalar data has one variable: there is nothing to select")
        index = variables.positions(which, self.names, self.d)
        M2 = m.M2[:, index][:, :, index] if m.M2.ndim == 3 else m.M2[:, index]
        names = None if self.names is None else tuple(self.names[i] for i in index)
        record = Moments.trusted(m.counts, m.means[:, index], M2, m.w2, m.mean_errors[:, index])
        return GroupedSummary._trusted(self._keys, record, names)

    def update(
        self, keys: Any, X: Any, weights: Any = None, *, aweights: Any = None, nan_policy: str = "raise"
    ) -> GroupedSummary:
        """This grouped summary with more keyed rows added; `self` is unchanged.

        Parameters are as in `from_samples`; X must have this summary's number of variables.

        Examples
        --------
        >>> from gaussum import GroupedSummary
        >>> g = GroupedSummary.from_samples(["a"], [[1.0, 2.0]]).update(["a", "b"], [[3.0, 4.0], [0.0, 0.0]])
        >>> g.keys().tolist(), g["a"].mean.tolist()
        (['a', 'b'], [2.0, 3.0])
        """
        rows, found = variables.rows_and_names(X)
        data = as_data(rows)
        if found is not None and not self._moments.scalar and data.shape[1] == self.d:
            order = variables.alignment(self.names, found, "update")
            data = data if order is None else data[:, order]
            found = self.names or found
        expected = (self._moments.scalar, self.d)
        got = (data.ndim == 1, 1 if data.ndim == 1 else data.shape[1])
        if expected != got:
            shape = "(N,)" if self._moments.scalar else f"(N, {self.d})"
            raise ValueError(f"X must have shape {shape} to update {self._shape_text()}, got {data.shape}")
        new = GroupedSummary.from_samples(
            keys, data, weights, aweights=aweights, names=found, diagonal=self.diagonal, nan_policy=nan_policy
        )
        return self + new

    # -- comparison, hashing, serialisation ---------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GroupedSummary):
            return NotImplemented
        return (
            self.names == other.names
            and keyset.same_keys(self._keys, other._keys)
            and self._moments.equal(other._moments)
        )

    def __hash__(self) -> int:
        # Python's float hash already treats 0.0 and -0.0 alike, as == does.
        return hash((self.names, self.means.shape, self.M2.shape, tuple(self.counts.tolist())))

    def isclose(self, other: GroupedSummary, rtol: float = 1e-9, atol: float = 0.0) -> bool:
        """Same keys, and every key's summaries close by `GaussianSummary.isclose`'s rule.

        Vectorised: ``counts`` and ``w2`` to `rtol`; each mean to ``atol + rtol * max(|mean|,
        std)``; each M2 entry to ``atol + rtol * sqrt(M2_ii * M2_jj)``.
        """
        if not isinstance(other, GroupedSummary):
            raise TypeError(f"isclose compares GroupedSummary values, got {type(other).__name__}")
        return keyset.same_keys(self._keys, other._keys) and self._moments.isclose(other._moments, rtol, atol)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (format version 2); `from_dict` turns it back into an equal grouped summary, exactly.

        Keys are written as JSON numbers, strings or booleans; datetimes and timedeltas as
        integer ticks of their unit (named in ``key_dtype``).

        Raises
        ------
        ValueError
            For keys of object dtype (convert them to strings or numbers first).

        Examples
        --------
        >>> import json
        >>> import numpy as np
        >>> from gaussum import GroupedSummary
        >>> days = np.array(["2024-05-01", "2024-05-02", "2024-05-01"], dtype="datetime64[D]")
        >>> g = GroupedSummary.from_samples(days, [[0.1, 0.2], [0.3, 0.7], [0.5, 0.5]])
        >>> GroupedSummary.from_dict(json.loads(json.dumps(g.to_dict()))) == g
        True
        """
        kind = self._keys.dtype.kind
        if kind not in keyset.SERIALISABLE_KINDS:
            raise ValueError(
                f"to_dict writes keys of bool, number, string or datetime dtype, got {self._keys.dtype}; "
                "convert the keys first"
            )
        keys = self._keys.view(np.int64) if kind in "Mm" else self._keys
        return {
            "format": _FORMAT_NAME,
            "version": GROUPED_FORMAT_VERSION,
            "key_dtype": self._keys.dtype.str,
            "keys": keys.tolist(),
            "shape": list(self.means.shape[1:]),
            "diagonal": self.diagonal,
            "counts": self.counts.tolist(),
            "means": self.means.tolist(),
            "M2": self.M2.tolist(),
            "w2": self.w2.tolist(),
            **({"mean_errors": self.mean_errors.tolist()} if self._moments.has_mean_errors() else {}),
            **({} if self.names is None else {"names": list(self.names)}),
        }

    @classmethod
    def from_dict(cls, data: Any, *, max_d: int = MAX_VARIABLES, max_groups: int = MAX_GROUPS) -> GroupedSummary:
        """The grouped summary written by `to_dict` (format version 1 or 2), validated like direct construction.

        A version-1 dict has no ``w2``; it is read with ``w2 = counts``. The dict may come from
        outside: the declared key dtype, number of keys and shape are checked, and every field's
        nesting and shape, before any array is built.

        Parameters
        ----------
        data : dict
        max_d : int
            The most variables accepted (default 65,536).
        max_groups : int
            The most keys accepted (default 100,000,000).

        Raises
        ------
        ValueError
            For anything but a well-formed dict of a known format version: missing or extra
            fields, wrong types, nesting or shapes, too many keys or variables, unsorted keys,
            non-finite values, an M2 that is not a symmetric positive semi-definite scatter matrix.
        """
        version = check_format_header(data, _DICT_FIELDS, _FORMAT_NAME, optional={2: {"names", "mean_errors"}})
        shape = data["shape"]
        if not (shape == [] or (isinstance(shape, list) and len(shape) == 1 and _is_int(shape[0]) and shape[0] >= 1)):
            raise ValueError(f"grouped summary dict field 'shape' must be [] or [d] with d >= 1, got {shape!r}")
        if shape and shape[0] > max_d:
            raise ValueError(f"grouped summary dict has {shape[0]:,} variables, more than max_d={max_d:,}")
        if not isinstance(data["diagonal"], bool):
            raise ValueError(f"grouped summary dict field 'diagonal' must be true or false, got {data['diagonal']!r}")
        if isinstance(data["keys"], list) and len(data["keys"]) > max_groups:
            raise ValueError(
                f"grouped summary dict has {len(data['keys']):,} keys, more than max_groups={max_groups:,}"
            )
        key_dtype = keyset.parse_key_dtype(data["key_dtype"])
        keys = keyset.parse_keys(data["keys"], key_dtype)
        g = keys.size
        per_key_M2 = tuple(shape) if (data["diagonal"] or not shape) else (shape[0], shape[0])
        fields = [("counts", ()), ("means", tuple(shape)), ("M2", per_key_M2)]
        if version >= 2:
            fields.append(("w2", ()))
        if "mean_errors" in data:
            fields.append(("mean_errors", tuple(shape)))
        arrays = {}
        for name, per_key in fields:
            label = f"grouped summary dict field {name!r}"
            if not isinstance(data[name], list):
                raise ValueError(f"{label} must be a list of numbers, got {data[name]!r:.80}")
            # An empty list has shape (0,), whatever the shape per key.
            expected = [(g, *per_key)] + ([(0,)] if g == 0 else [])
            arrays[name] = float_tree(data[name], label, expected).reshape(g, *per_key)
        names = data.get("names")
        if names is not None and (not isinstance(names, list) or len(names) > max_d):
            raise ValueError(f"grouped summary dict field 'names' must be a list of strings, got {names!r:.80}")
        return cls(
            keys, arrays["counts"], arrays["means"], arrays["M2"], arrays.get("w2"), names=names,
            mean_errors=arrays.get("mean_errors"),
        )

    def to_bytes(self) -> bytes:
        """The compact binary form (see `GaussianSummary.to_bytes`); keys may also be tuples.

        Raises
        ------
        ValueError
            For keys of object dtype other than tuples of bools, numbers, strings or datetimes.

        Examples
        --------
        >>> from gaussum import GroupedSummary
        >>> g = GroupedSummary.from_samples(["b", "a", "b"], [[0.1, 0.2], [0.3, 0.7], [0.5, 0.5]])
        >>> GroupedSummary.from_bytes(g.to_bytes()) == g
        True
        """
        from . import _binary

        return _binary.grouped_to_bytes(self)

    @classmethod
    def from_bytes(cls, data: Any, *, max_d: int = MAX_VARIABLES, max_groups: int = MAX_GROUPS) -> GroupedSummary:
        """The grouped summary written by `to_bytes`, validated like construction (and `from_dict`).

        Parameters
        ----------
        data : bytes, bytearray or memoryview
        max_d : int
            The most variables accepted (default 65,536).
        max_groups : int
            The most keys accepted (default 100,000,000).

        Raises
        ------
        ValueError
            For truncated, oversized or malformed input, a wrong kind or version, and every
            field value that construction refuses.
        """
        from . import _binary

        return _binary.grouped_from_bytes(data, max_d=max_d, max_groups=max_groups)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Unpickling must give read-only arrays again.
        m = self._moments
        return (_restore, (self._keys, m.counts, m.means, m.M2, m.w2, self.names, m.mean_errors))

    def __repr__(self) -> str:
        total = self.n
        # Digit grouping only while it stays short and exact; 1e300 would print 301 digits.
        count = f"{int(total):_}" if total < 1e15 and total.is_integer() else f"{total:g}"
        kind = "scalar" if self._moments.scalar else ("diagonal" if self.diagonal else "full")
        keys = np.array2string(self._keys, threshold=6, edgeitems=2, separator=", ")
        if self.names is None:
            names = ""
        else:
            names = f", names={self.names!r}" if self.d <= 6 else f", names=({self.names[0]!r}, ...)"
        return f"GroupedSummary(groups={len(self):_}, n={count}, d={self.d}, {kind}{names}, keys={keys})"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _restore(
    keys: Any, counts: Any, means: Any, M2: Any, w2: Any = None, names: Any = None, mean_errors: Any = None
) -> GroupedSummary:
    """Unpickle, validated like construction (see `gaussum.summary._restore`).

    Pickles written before ``w2`` existed have none: it is the counts; before ``mean_errors``,
    they are zero.
    """
    try:
        return GroupedSummary(keys, counts, means, M2, w2, names=names, mean_errors=mean_errors)
    except ValueError:
        mean_array, M2_array = as_field(means, "means"), as_field(M2, "M2")
        if np.isfinite(mean_array).all() and np.isfinite(M2_array).all():
            raise
        shell = GroupedSummary(keys, counts, np.zeros(mean_array.shape), np.zeros(M2_array.shape), w2, names=names)
        record = Moments.trusted(shell.counts, mean_array, M2_array, shell.w2)
        return GroupedSummary._trusted(shell._keys, record, shell.names)
