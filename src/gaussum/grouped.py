"""`GroupedSummary`: one `GaussianSummary` per key, stored column-wise, as one immutable value."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from . import _grouped_kernels as kernels
from ._combine import merge_segments
from ._validate import (
    as_count,
    as_data,
    as_field,
    as_weights,
    check_format_header,
    check_nan_policy,
    check_symmetric,
    first_nonfinite_row,
    is_number_tree,
    nonfinite_row_error,
    overflow_error,
    readonly,
)
from .summary import GaussianSummary

__all__ = ["GroupedSummary", "GROUPED_FORMAT_VERSION"]

#: Version of the layout written by `GroupedSummary.to_dict`.
GROUPED_FORMAT_VERSION = 1
_FORMAT_NAME = "gaussum.GroupedSummary"
_DICT_FIELDS = {"format", "version", "key_dtype", "keys", "shape", "diagonal", "counts", "means", "M2"}
# Key dtypes that to_dict can write exactly: bool, integers, floats, strings, datetimes, timedeltas.
_SERIALISABLE_KINDS = "biufUMm"


def _as_keys(keys: Any, name: str = "keys") -> np.ndarray:
    """Keys as a 1-D array of labels that can be ordered; NaN and NaT are refused."""
    array = np.asarray(keys)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of labels, got shape {array.shape}")
    if array.dtype.kind == "c":
        raise ValueError(f"{name} must be labels that can be ordered, got complex dtype {array.dtype}")
    if array.dtype.kind in "fMm" and np.isnan(array).any():
        i = int(np.flatnonzero(np.isnan(array))[0])
        raise ValueError(f"{name} must not hold NaN or NaT (it equals no key); {name}[{i}] is {_label(array[i])!r}")
    if array.dtype.kind == "f" and np.isinf(array).any():
        i = int(np.flatnonzero(np.isinf(array))[0])
        raise ValueError(f"{name} must be finite; {name}[{i}] is {_label(array[i])!r}")
    return array


def _factorize(keys: np.ndarray, name: str = "keys") -> tuple[np.ndarray, np.ndarray]:
    try:
        uniques, codes = kernels.factorize(keys)
    except TypeError as exc:
        raise ValueError(f"{name} must be labels that can be ordered: {exc}") from None
    if uniques.dtype.kind == "O" and uniques.size and all(isinstance(k, str) for k in uniques):
        uniques = uniques.astype(str)  # object arrays of strings (pandas' default) become '<U'
    return uniques, codes


def _check_stack(keys: np.ndarray, counts: np.ndarray, means: np.ndarray, M2: np.ndarray) -> np.ndarray:
    """Check the stacked fields of a grouped summary (as `_validate.check_fields`, per group).

    Returns M2, symmetrised if it carried rounding-sized asymmetry.
    """
    g = keys.size
    if keys.size > 1:
        try:
            increasing = bool(np.all(keys[1:] > keys[:-1]))
        except TypeError as exc:
            raise ValueError(f"keys must be labels that can be ordered: {exc}") from None
        if not increasing:
            i = int(np.flatnonzero(~(keys[1:] > keys[:-1]))[0])
            raise ValueError(
                f"keys must be distinct and sorted; keys[{i}] = {_label(keys[i])!r} is not below "
                f"keys[{i + 1}] = {_label(keys[i + 1])!r}"
            )
    if counts.shape != (g,):
        raise ValueError(f"counts must have shape ({g},) to match the keys, got {counts.shape}")
    bad = ~np.isfinite(counts) | (counts < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"counts must be finite and non-negative; counts[{i}] is {float(counts[i])!r}")
    if means.ndim not in (1, 2) or means.shape[0] != g or (means.ndim == 2 and means.shape[1] == 0):
        raise ValueError(f"means must have shape ({g},) or ({g}, d) with d >= 1, got {means.shape}")
    allowed = [(g,)] if means.ndim == 1 else [means.shape, (*means.shape, means.shape[1])]
    if M2.shape not in allowed:
        expected = " or ".join(str(s) for s in allowed)
        raise ValueError(f"M2 must have shape {expected} to match means {means.shape}, got {M2.shape}")
    for label, array in (("means", means), ("M2", M2)):
        if not np.isfinite(array).all():
            index = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
            raise ValueError(f"{label} must be finite; {label}{list(index)} is {float(array[index])!r}")
    squares = np.diagonal(M2, axis1=1, axis2=2) if M2.ndim == 3 else M2
    if (squares < 0).any():
        index = tuple(int(i) for i in np.argwhere(squares < 0)[0])
        raise ValueError(
            f"M2 must have non-negative variances (sums of squared deviations); "
            f"M2 of key {_label(keys[index[0]])!r} has {float(squares[index])!r}"
        )
    if M2.ndim == 3:
        M2 = check_symmetric(M2, "M2")
    empty = counts == 0
    if empty.any():
        nonzero = means[empty].reshape(int(empty.sum()), -1).any(axis=1)
        nonzero |= M2[empty].reshape(int(empty.sum()), -1).any(axis=1)
        if nonzero.any():
            key = keys[np.flatnonzero(empty)[np.flatnonzero(nonzero)[0]]]
            raise ValueError(f"key {_label(key)!r} has count 0 (no observations), so its mean and M2 must be zero")
    return M2


class GroupedSummary:
    """One Gaussian summary per key, stored column-wise: keys, counts, means and M2.

    For the rows of each key, ``counts[i]`` is their total weight, ``means[i]`` their mean and
    ``M2[i]`` their summed outer products of deviations from that mean: exactly what
    `GaussianSummary` holds, stacked over keys. Keys are kept distinct and sorted. Grouped
    summaries of disjoint data merge with ``+`` key by key (keys in only one side are kept as
    they are), by the same rule as `GaussianSummary`, to within float64 rounding. Values are
    immutable: the arrays are copies marked read-only.

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

    Raises
    ------
    ValueError
        For unsorted or repeated keys, mis-shaped or non-finite arrays, negative counts or
        variances, a non-symmetric M2.

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

    __slots__ = ("_keys", "counts", "means", "M2")

    _keys: np.ndarray
    counts: np.ndarray
    means: np.ndarray
    M2: np.ndarray

    def __init__(self, keys: Any, counts: Any, means: Any, M2: Any) -> None:
        key_array = _as_keys(keys)
        if key_array.dtype.kind == "O" and key_array.size and all(isinstance(k, str) for k in key_array):
            key_array = key_array.astype(str)
        key_array = readonly(np.array(key_array, copy=True))
        count_array = as_field(counts, "counts")
        mean_array = as_field(means, "means")
        M2_array = as_field(M2, "M2")
        M2_array = _check_stack(key_array, count_array, mean_array, M2_array)
        self._set(key_array, count_array, mean_array, M2_array)

    def _set(self, keys: np.ndarray, counts: np.ndarray, means: np.ndarray, M2: np.ndarray) -> None:
        object.__setattr__(self, "_keys", readonly(keys))
        object.__setattr__(self, "counts", readonly(counts))
        object.__setattr__(self, "means", readonly(means))
        object.__setattr__(self, "M2", readonly(M2))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"GroupedSummary is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"GroupedSummary is immutable; cannot delete {name!r}")

    @classmethod
    def _trusted(cls, keys: np.ndarray, counts: np.ndarray, means: np.ndarray, M2: np.ndarray) -> GroupedSummary:
        """Wrap arrays this package computed itself: no copy, no checks; marks them read-only."""
        self = object.__new__(cls)
        self._set(keys, counts, means, M2)
        return self

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def empty(cls, d: int | None = None, *, diagonal: bool = False, key_dtype: Any = np.int64) -> GroupedSummary:
        """A grouped summary of no keys: an exact identity for ``+``.

        Parameters
        ----------
        d : int or None
            Number of variables; None for scalar data.
        diagonal : bool
        key_dtype : dtype
            The dtype of the (empty) keys array.
        """
        template = GaussianSummary.empty(d, diagonal=diagonal)
        keys = np.empty(0, dtype=key_dtype)
        return cls._trusted(keys, np.zeros(0), np.zeros((0, *template.mean.shape)), np.zeros((0, *template.M2.shape)))

    @classmethod
    def from_samples(
        cls,
        keys: Any,
        X: Any,
        weights: Any = None,
        *,
        diagonal: bool = False,
        nan_policy: str = "raise",
    ) -> GroupedSummary:
        """The summary of the rows of each key, in one vectorised pass.

        Parameters
        ----------
        keys : array_like, shape (N,)
            The label of each row: integers, strings, floats, datetimes, or any objects that can
            be ordered. NaN and NaT are refused.
        X : array_like, shape (N, d) or (N,)
            Rows are observations; a 1-D array is N scalar observations.
        weights : array_like, shape (N,), optional
            Frequency weights, finite and >= 0.
        diagonal : bool
            Keep only the per-variable sums of squares.
        nan_policy : {"raise", "omit", "propagate"}
            As in `GaussianSummary.from_samples`. With "omit", a key all of whose rows are
            dropped is kept, with count 0.

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
        otherwise) and the rows are visited in key order, a block of a few thousand rows at a
        time, so the extra memory is the permutation (N integers) plus one block. In each block,
        every key's rows get the core's corrected two-pass: a shift at the key's mean, held in two
        float64 parts, then the centred sums ``c`` and scatter ``S`` of the rows, and
        ``M2 = S - c c^T / n``, with ``np.add.reduceat`` doing the per-key sums. A key cut by a
        block boundary is merged across blocks by the k-way rule.

        Examples
        --------
        >>> import numpy as np
        >>> from gaussum import GroupedSummary
        >>> g = GroupedSummary.from_samples([2, 1, 2, 2], [1e9 + 1.0, 5.0, 1e9 + 2.0, 1e9 + 3.0])
        >>> g.keys().tolist(), g.means.tolist(), g.variances(ddof=0).tolist()
        ([1, 2], [5.0, 1000000002.0], [0.0, 0.6666666666666666])
        """
        return cls._from_samples_counted(keys, X, weights, diagonal=diagonal, nan_policy=nan_policy)[0]

    @classmethod
    def _from_samples_counted(
        cls, keys: Any, X: Any, weights: Any = None, *, diagonal: bool = False, nan_policy: str = "raise"
    ) -> tuple[GroupedSummary, int]:
        """`from_samples`, and how many rows ``nan_policy="omit"`` left out (for integrations)."""
        check_nan_policy(nan_policy)
        data = as_data(X)
        scalar = data.ndim == 1
        if scalar:
            data = data.reshape(-1, 1)
        N = data.shape[0]
        key_array = _as_keys(keys)
        if key_array.shape != (N,):
            raise ValueError(f"keys must have shape ({N},) to match the rows of X, got {key_array.shape}")
        w = None if weights is None else as_weights(weights, N)
        uniques, codes = _factorize(key_array)
        g = uniques.size
        order = kernels.sort_order(codes, g)
        sizes = np.bincount(codes, minlength=g)
        full_diagonal = diagonal or scalar
        counts, means, M2 = kernels.summarize_groups(data, w, order, sizes, full_diagonal)
        dropped = 0
        if nan_policy != "propagate":
            # A key of no weight comes back empty (zero mean and M2) even if its rows hold NaN,
            # which the core refuses under "raise": so its rows are searched too.
            weightless = w is not None and bool((counts[sizes > 0] == 0).any())
            if weightless or not _all_finite(means, M2):
                finite = _finite_rows(data)
                if finite.all():
                    if not _all_finite(means, M2):
                        raise overflow_error("X", data)
                elif nan_policy == "raise":
                    bad = first_nonfinite_row(data)
                    raise nonfinite_row_error("X", bad, data[bad])
                else:
                    dropped = int(N - finite.sum())
                    order = order[finite[order]]
                    sizes = np.bincount(codes[order], minlength=g)
                    counts, means, M2 = kernels.summarize_groups(data, w, order, sizes, full_diagonal)
                    if not _all_finite(means, M2):
                        raise overflow_error("X", data[finite])
        if scalar:
            means, M2 = means[:, 0], M2[:, 0]
        return cls._trusted(uniques, counts, means, M2), dropped

    @classmethod
    def from_summaries(cls, summaries: Any) -> GroupedSummary:
        """A grouped summary from a mapping ``{key: GaussianSummary}`` (or ``(key, summary)`` pairs).

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
        keys = _as_keys([k for k, _ in pairs])
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        repeated = np.flatnonzero(keys[1:] == keys[:-1])
        if repeated.size:
            raise ValueError(f"from_summaries got duplicate key {_label(keys[repeated[0]])!r}")
        items = [pairs[i][1] for i in order]
        return cls(
            keys,
            [s.n for s in items],
            np.stack([s.mean for s in items]),
            np.stack([s.M2 for s in items]),
        )

    # -- fields and derived quantities --------------------------------------------------------

    def keys(self) -> np.ndarray:
        """The keys, distinct and sorted (read-only array)."""
        return self._keys

    @property
    def diagonal(self) -> bool:
        """True when only per-variable sums of squares are kept (M2 of shape ``(g, d)``)."""
        return self.means.ndim == 2 and self.M2.ndim == 2

    @property
    def d(self) -> int:
        """Number of variables (1 for scalar data)."""
        return 1 if self.means.ndim == 1 else self.means.shape[1]

    @property
    def n(self) -> float:
        """Total weight over all keys."""
        return float(self.counts.sum())

    def __len__(self) -> int:
        return self._keys.size

    def _index(self, key: Any) -> int | None:
        # The kinds that `+` would merge are the kinds a lookup matches: 1.0 and True are not 1.
        probe = np.asarray(key)
        if probe.ndim != 0 or not _same_label_kinds({self._keys.dtype.kind, probe.dtype.kind}):
            return None
        try:
            i = int(np.searchsorted(self._keys, key))
            found = i < self._keys.size and bool(self._keys[i] == key)
        except (TypeError, ValueError, OverflowError):
            return None
        return i if found else None

    def __contains__(self, key: object) -> bool:
        return self._index(key) is not None

    def __getitem__(self, key: Any) -> GaussianSummary:
        i = self._index(key)
        if i is None:
            raise KeyError(key)
        return self._summary(i)

    def get(self, key: Any, default: Any = None) -> Any:
        """The summary of `key`, or `default` when the key is absent."""
        i = self._index(key)
        return default if i is None else self._summary(i)

    def _summary(self, i: int) -> GaussianSummary:
        return GaussianSummary._trusted(float(self.counts[i]), self.means[i, ...], self.M2[i, ...])

    def __iter__(self) -> Iterator[tuple[Any, GaussianSummary]]:
        """``(key, summary)`` pairs in key order."""
        for i in range(len(self)):
            yield self._keys[i], self._summary(i)

    def _dof(self, ddof: float) -> np.ndarray:
        dof = self.counts - ddof
        short = dof <= 0
        if short.any():
            warnings.warn(
                f"degrees of freedom <= 0 for {int(short.sum())} of {len(self)} keys (ddof={ddof}); "
                "their covariances are inf or NaN",
                RuntimeWarning,
                stacklevel=3,
            )
            dof = np.where(short, 0.0, dof)
        return dof

    def covariances(self, ddof: float = 1) -> np.ndarray:
        """``M2 / (counts - ddof)`` per key, shape ``(g, d, d)`` (``(g, d)`` if diagonal).

        Like `GaussianSummary.covariance`, keys with ``counts <= ddof`` give inf or NaN with a
        RuntimeWarning.
        """
        dof = self._dof(ddof)
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.M2 / dof.reshape(-1, *([1] * (self.M2.ndim - 1)))

    def variances(self, ddof: float = 1) -> np.ndarray:
        """Per-variable variances per key, shape ``(g, d)`` (``(g,)`` for scalar data)."""
        dof = self._dof(ddof)
        squares = np.diagonal(self.M2, axis1=1, axis2=2) if self.M2.ndim == 3 else self.M2
        with np.errstate(divide="ignore", invalid="ignore"):
            return squares / dof.reshape(-1, *([1] * (squares.ndim - 1)))

    def total(self) -> GaussianSummary:
        """The summary of all rows, whatever their key (the k-way merge of every group)."""
        means, M2 = self._as_2d()
        if len(self) == 0:
            template = GaussianSummary.empty(None if self.means.ndim == 1 else self.d, diagonal=self.diagonal)
            return template
        n, mean, m2 = merge_segments(self.counts, means, M2, np.zeros(1, dtype=np.intp))
        if self.means.ndim == 1:
            return GaussianSummary._trusted(n[0], mean[0].reshape(()), m2[0].reshape(()))
        return GaussianSummary._trusted(n[0], mean[0], m2[0])

    def to_diagonal(self) -> GroupedSummary:
        """The same summaries without their off-diagonal terms (M2 of shape ``(g, d)``)."""
        if self.M2.ndim != 3:
            return self
        return GroupedSummary._trusted(
            self._keys, self.counts, self.means, np.diagonal(self.M2, axis1=1, axis2=2).copy()
        )

    def scaled(self, factor: float) -> GroupedSummary:
        """Every weight multiplied by `factor` (> 0): counts and M2 scale, the means stay.

        ``g.scaled(lam).update(keys, X)`` is exponential forgetting (see
        `GaussianSummary.scaled`), applied to every key alike: after t steps a row of age a
        weighs ``lam**a``, a key's count tends to ``1 / (1 - lam)``, and for iid data the
        unbiased variance is ``variances(ddof=(1 + lam**t) / (1 + lam))`` (the divisor
        ``n - sum(w**2) / n``); ``ddof=1`` overestimates it. Keys not updated in a step fade too.

        Examples
        --------
        >>> from gaussum import GroupedSummary
        >>> g = GroupedSummary.from_samples([1, 1, 2], [1.0, 3.0, 5.0]).scaled(0.5)
        >>> g.counts.tolist(), g.means.tolist(), g.M2.tolist()
        ([1.0, 0.5], [2.0, 5.0], [1.0, 0.0])
        """
        f = as_count(factor, "factor")
        if f == 0:
            raise ValueError("factor must be positive, got 0")
        return GroupedSummary._trusted(self._keys, self.counts * f, self.means, self.M2 * f)

    # -- combining ----------------------------------------------------------------------------

    def _shape_text(self) -> str:
        return f"means {self.means.shape[1:]} and M2 {self.M2.shape[1:]} per key"

    def _check_compatible(self, other: GroupedSummary, verb: str) -> None:
        if self.means.shape[1:] != other.means.shape[1:] or self.M2.shape[1:] != other.M2.shape[1:]:
            hint = ""
            if self.means.shape[1:] == other.means.shape[1:]:
                hint = "; call to_diagonal() on the full one first"
            raise ValueError(
                f"cannot {verb} grouped summaries of different shapes: "
                f"{self._shape_text()} vs {other._shape_text()}{hint}"
            )

    def _as_2d(self) -> tuple[np.ndarray, np.ndarray]:
        if self.means.ndim == 1:
            return self.means[:, None], self.M2[:, None]
        return self.means, self.M2

    def __add__(self, other: object) -> GroupedSummary:
        if not isinstance(other, GroupedSummary):
            return NotImplemented
        return GroupedSummary.merge_all([self, other])

    def __radd__(self, other: object) -> GroupedSummary:
        # Lets the builtin sum() start from its default 0.
        if isinstance(other, numbers.Number) and other == 0 and not isinstance(other, bool):
            return self
        return NotImplemented

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
        items = [s for s in items if len(s)] or items[:1]
        if len(items) == 1:
            return items[0]
        keys = _concatenate_keys([s._keys for s in items])
        uniques, codes = _factorize(keys)
        order = kernels.sort_order(codes, uniques.size)
        stacked = [np.concatenate(parts) for parts in zip(*(((s.counts,) + s._as_2d()) for s in items))]
        counts, means, M2 = (a[order] for a in stacked)
        sorted_codes = codes[order]
        starts = np.flatnonzero(np.concatenate(([True], sorted_codes[1:] != sorted_codes[:-1])))
        counts, means, M2 = merge_segments(counts, means, M2, starts)
        if items[0].means.ndim == 1:
            means, M2 = means[:, 0], M2[:, 0]
        return cls._trusted(uniques, counts, means, M2)

    def update(self, keys: Any, X: Any, weights: Any = None, *, nan_policy: str = "raise") -> GroupedSummary:
        """This grouped summary with more keyed rows added; `self` is unchanged.

        Parameters are as in `from_samples`; X must have this summary's number of variables.

        Examples
        --------
        >>> from gaussum import GroupedSummary
        >>> g = GroupedSummary.from_samples(["a"], [[1.0, 2.0]]).update(["a", "b"], [[3.0, 4.0], [0.0, 0.0]])
        >>> g.keys().tolist(), g["a"].mean.tolist()
        (['a', 'b'], [2.0, 3.0])
        """
        data = as_data(X)
        expected = (self.means.ndim == 1, self.d)
        got = (data.ndim == 1, 1 if data.ndim == 1 else data.shape[1])
        if expected != got:
            shape = "(N,)" if self.means.ndim == 1 else f"(N, {self.d})"
            raise ValueError(f"X must have shape {shape} to update {self._shape_text()}, got {data.shape}")
        new = GroupedSummary.from_samples(keys, data, weights, diagonal=self.diagonal, nan_policy=nan_policy)
        return self + new

    # -- comparison, hashing, serialisation ---------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GroupedSummary):
            return NotImplemented
        return (
            self.means.shape == other.means.shape
            and self.M2.shape == other.M2.shape
            and _same_keys(self._keys, other._keys)
            and bool(np.array_equal(self.counts, other.counts))
            and bool(np.array_equal(self.means, other.means))
            and bool(np.array_equal(self.M2, other.M2))
        )

    def __hash__(self) -> int:
        # Python's float hash already treats 0.0 and -0.0 alike, as == does.
        return hash((self.means.shape, self.M2.shape, tuple(self.counts.tolist())))

    def isclose(self, other: GroupedSummary, rtol: float = 1e-9, atol: float = 0.0) -> bool:
        """Same keys, and every key's summaries close by `GaussianSummary.isclose`'s rule.

        Vectorised: ``counts`` to `rtol`; each mean to ``atol + rtol * max(|mean|, std)``; each
        M2 entry to ``atol + rtol * sqrt(M2_ii * M2_jj)``.
        """
        if not isinstance(other, GroupedSummary):
            raise TypeError(f"isclose compares GroupedSummary values, got {type(other).__name__}")
        if self.means.shape != other.means.shape or self.M2.shape != other.M2.shape:
            return False
        if not _same_keys(self._keys, other._keys):
            return False
        if not (np.abs(self.counts - other.counts) <= atol + rtol * np.maximum(self.counts, other.counts)).all():
            return False
        means_a, M2_a = self._as_2d()
        means_b, M2_b = other._as_2d()
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
        m2_scale = np.sqrt(squares[:, :, None] * squares[:, None, :]) if M2_a.ndim == 3 else squares
        return bool((np.abs(M2_a - M2_b) <= atol + rtol * m2_scale).all())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict; `from_dict` turns it back into an equal grouped summary, exactly.

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
        if kind not in _SERIALISABLE_KINDS:
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
        }

    @classmethod
    def from_dict(cls, data: Any) -> GroupedSummary:
        """The grouped summary written by `to_dict`, validated like direct construction.

        Raises
        ------
        ValueError
            For anything but a well-formed dict of a known format version: missing or extra
            fields, wrong types, shapes, unsorted keys, non-finite values, a non-symmetric M2.
        """
        check_format_header(data, _DICT_FIELDS, _FORMAT_NAME, GROUPED_FORMAT_VERSION)
        key_dtype = _parse_key_dtype(data["key_dtype"])
        keys = _parse_keys(data["keys"], key_dtype)
        shape = data["shape"]
        if not (shape == [] or (isinstance(shape, list) and len(shape) == 1 and _is_int(shape[0]) and shape[0] >= 1)):
            raise ValueError(f"grouped summary dict field 'shape' must be [] or [d] with d >= 1, got {shape!r}")
        if not isinstance(data["diagonal"], bool):
            raise ValueError(f"grouped summary dict field 'diagonal' must be true or false, got {data['diagonal']!r}")
        for name in ("counts", "means", "M2"):
            if not isinstance(data[name], list) or not is_number_tree(data[name]):
                raise ValueError(f"grouped summary dict field {name!r} must be a list of numbers, got {data[name]!r:.80}")
        g = keys.size
        per_key_M2 = tuple(shape) if (data["diagonal"] or not shape) else (shape[0], shape[0])
        arrays = {}
        for name, per_key in (("counts", ()), ("means", tuple(shape)), ("M2", per_key_M2)):
            try:
                array = np.array(data[name], dtype=np.float64)
            except OverflowError:
                raise ValueError(f"grouped summary dict field {name!r} holds a number too large for float64") from None
            except ValueError:
                array = None
            if array is not None and g == 0 and array.shape == (0,):
                array = array.reshape(0, *per_key)
            if array is None or array.shape != (g, *per_key):
                got = "a ragged list" if array is None else array.shape
                raise ValueError(f"grouped summary dict field {name!r} must have shape {(g, *per_key)}, got {got}")
            arrays[name] = array
        return cls(keys, arrays["counts"], arrays["means"], arrays["M2"])

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Default pickling of __slots__ would bypass the read-only flags.
        return (_restore, (self._keys, self.counts, self.means, self.M2))

    def __copy__(self) -> GroupedSummary:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> GroupedSummary:
        return self

    def __repr__(self) -> str:
        total = self.n
        # Digit grouping only while it stays short and exact; 1e300 would print 301 digits.
        count = f"{int(total):_}" if total < 1e15 and total.is_integer() else f"{total:g}"
        kind = "scalar" if self.means.ndim == 1 else ("diagonal" if self.diagonal else "full")
        keys = np.array2string(self._keys, threshold=6, edgeitems=2, separator=", ")
        return f"GroupedSummary(groups={len(self):_}, n={count}, d={self.d}, {kind}, keys={keys})"


def _concatenate_keys(arrays: list[np.ndarray]) -> np.ndarray:
    """The keys of several grouped summaries in one array, refusing lossy mixes.

    numpy would turn integers and strings into strings, or int64 and uint64 into float64; keys
    that are different labels must not become equal ones.
    """
    kinds = {a.dtype.kind for a in arrays}
    try:
        result = np.result_type(*arrays) if len(kinds) > 1 or kinds == {"O"} else None
        compatible = _same_label_kinds(kinds) and (result is None or result.kind in "iuO")
    except TypeError:
        compatible = False
    if not compatible:
        dtypes = sorted({str(a.dtype) for a in arrays})
        raise ValueError(f"cannot merge grouped summaries whose keys have dtypes {dtypes}")
    return np.concatenate(arrays)


def _same_label_kinds(kinds: set[str]) -> bool:
    """True when keys of these dtype kinds can be the same labels: one kind, or signed and unsigned.

    Booleans, floats and integers are different labels (True is not the key 1, nor 1.0), as are
    strings and numbers, since numpy would make them equal by converting one into the other.
    """
    return len(kinds) == 1 or kinds <= {"i", "u"}


def _finite_rows(data: np.ndarray) -> np.ndarray:
    """Which rows of data (shape (N, d)) are all finite, found a block at a time."""
    finite = np.empty(data.shape[0], dtype=bool)
    step = kernels.block_rows(data.shape[1], True) * 16
    for start in range(0, data.shape[0], step):
        finite[start:start + step] = np.isfinite(data[start:start + step]).all(axis=1)
    return finite


def _all_finite(means: np.ndarray, M2: np.ndarray) -> bool:
    """True when every mean and variance is finite (a NaN or inf in a row spoils both)."""
    squares = M2 if M2.ndim <= 2 else np.diagonal(M2, axis1=1, axis2=2)
    return bool(np.isfinite(means).all() and np.isfinite(squares).all())


def _label(key: Any) -> Any:
    """A key as a Python value, so messages show ``'a'`` and ``nan``, not ``np.str_('a')``."""
    return key.item() if isinstance(key, np.generic) else key


def _same_keys(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape or (a.dtype.kind != b.dtype.kind and {a.dtype.kind, b.dtype.kind} != {"i", "u"}):
        return False
    return bool(np.all(a == b))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_key_dtype(text: Any) -> np.dtype:
    try:
        dtype = np.dtype(text) if isinstance(text, str) else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in _SERIALISABLE_KINDS:
        raise ValueError(f"grouped summary dict field 'key_dtype' must name a bool, number, string or datetime dtype, got {text!r}")
    return dtype


def _parse_keys(values: Any, dtype: np.dtype) -> np.ndarray:
    kind = dtype.kind
    checks = {
        "b": lambda v: isinstance(v, bool),
        "i": _is_int,
        "u": _is_int,
        "M": _is_int,
        "m": _is_int,
        "f": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "U": lambda v: isinstance(v, str),
    }
    if not isinstance(values, list) or not all(checks[kind](v) for v in values):
        raise ValueError(f"grouped summary dict field 'keys' must be a list of {dtype} values, got {values!r:.80}")
    try:
        if kind in "Mm":
            return np.array(values, dtype=np.int64).view(dtype)
        keys = np.array(values, dtype=dtype)
    except (OverflowError, ValueError) as exc:
        raise ValueError(f"grouped summary dict field 'keys' does not fit {dtype}: {exc}") from None
    if kind == "U" and any(len(v) > dtype.itemsize // 4 for v in values):
        raise ValueError(f"grouped summary dict field 'keys' holds strings longer than {dtype} allows")
    return keys


def _restore(keys: np.ndarray, counts: np.ndarray, means: np.ndarray, M2: np.ndarray) -> GroupedSummary:
    """Unpickle: the arrays come back read-only."""
    return GroupedSummary._trusted(keys, counts, means, M2)
