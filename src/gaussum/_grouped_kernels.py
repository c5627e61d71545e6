"""Pure array kernels for grouped summaries: factorise keys, summarise rows per group, merge.

A grouped summary is the core's ``(n, mean, M2)`` stacked over ``g`` groups: ``counts (g,)``,
``means (g, d)``, ``M2 (g, d, d)`` (or ``(g, d)`` when diagonal). The kernels here compute it
without a Python loop over rows or over groups:

1. `factorize` turns labels into dense integer codes ``0..g-1`` in sorted label order, and
   `sort_order` gives a permutation that brings each group's rows together;
2. `summarize_groups` walks the sorted rows in blocks of a few thousand rows, each holding whole
   groups, and runs the core's corrected two-pass (two-part shift, centred sums, re-centring when
   the shift is far) on every group of the block at once, with ``np.add.reduceat`` for the
   per-group sums; a group with enough rows of its own is streamed through the core's
   `gaussum._combine.summarize_rows`.

Grouped summaries are merged by the core's `gaussum._combine.merge_segments`.

Functions never modify their arguments.
"""

from __future__ import annotations

import functools

import numpy as np

from ._combine import _MAX_SHIFT_IN_STD, summarize_rows, two_sum

__all__ = ["factorize", "sort_order", "summarize_groups", "block_rows"]

Stacked = tuple[np.ndarray, np.ndarray, np.ndarray]

# Values of the centred block and its products live in a buffer of about this many bytes: small
# enough to stay in cache, large enough that numpy's per-call overhead is spread over many rows.
_BLOCK_BYTES = 2**21
_MIN_BLOCK_ROWS = 256

# A group whose rows times its products per row exceed this is summed on its own with BLAS: the
# Python overhead of one call (microseconds) is then small next to its arithmetic.
_ALONE_PRODUCTS = 2**16
_MIN_ALONE_ROWS = 64

# Integer keys spanning at most this many values (times the row count) are factorised by counting
# rather than sorting: O(N) instead of O(N log N).
_DENSE_RANGE_PER_ROW = 4


def _alone_rows(d: int, diagonal: bool) -> int:
    """Rows from which a group is summed on its own (BLAS) rather than in a shared block."""
    products = d if diagonal else d * d
    return max(_MIN_ALONE_ROWS, _ALONE_PRODUCTS // products)


def block_rows(d: int, diagonal: bool) -> int:
    """Sorted rows processed at a time: the products of one block fill about 2 MiB."""
    products = d if diagonal else d * (d + 1) // 2
    return max(_MIN_BLOCK_ROWS, _BLOCK_BYTES // (8 * (products + d)))


def factorize(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct labels and the code (index into them) of every key.

    Integers and datetimes over a range not much larger than the number of keys are counted
    (``np.bincount``, linear time); anything else goes through ``np.unique``. Raises TypeError
    for labels that cannot be ordered.
    """
    if keys.dtype.kind in "iuMm" and keys.size:
        as_int = keys.view(np.int64) if keys.dtype.kind in "Mm" else keys
        lo, hi = int(as_int.min()), int(as_int.max())
        span = hi - lo + 1
        if span <= _DENSE_RANGE_PER_ROW * keys.size + 2**16:
            wide = np.uint64 if as_int.dtype.kind == "u" else np.int64  # no overflow in x - lo
            offsets = np.subtract(as_int, wide(lo), dtype=wide).astype(np.intp, copy=False)
            present = np.bincount(offsets, minlength=span) > 0
            distinct = np.flatnonzero(present)
            lookup = np.empty(span, dtype=np.intp)
            lookup[distinct] = np.arange(distinct.size)
            uniques = (distinct.astype(wide) + wide(lo)).astype(as_int.dtype)
            if keys.dtype.kind in "Mm":
                uniques = uniques.view(keys.dtype)
            return uniques, lookup[offsets]
    uniques, codes = np.unique(keys, return_inverse=True)
    return uniques, codes.reshape(-1)


def sort_order(codes: np.ndarray, g: int) -> np.ndarray:
    """A stable permutation sorting `codes` (each in ``range(g)``).

    Codes that fit in 16 bits are sorted by numpy's radix sort (linear time).
    """
    if g <= 2**8:
        return np.argsort(codes.astype(np.uint8), kind="stable")
    if g <= 2**16:
        return np.argsort(codes.astype(np.uint16), kind="stable")
    return np.argsort(codes, kind="stable")


def _segment_sums(Z: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sums of the columns of Z (shape (m, k)) over the segments that begin at `starts`."""
    return np.add.reduceat(Z, starts, axis=1)


def _upper_products(Yw: np.ndarray, Y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Rows ``Yw[i] * Y[j]`` for ``i <= j`` (row-major upper triangle), written into `out`."""
    d = Y.shape[0]
    row = 0
    for i in range(d):  # a loop over variables, each step a vectorised pass over the block
        np.multiply(Yw[i], Y[i:], out=out[row:row + d - i])
        row += d - i
    return out


def _centred_sums(
    Y: np.ndarray, w: np.ndarray | None, starts: np.ndarray, diagonal: bool, buffer: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-segment column sums ``c`` and scatter (upper triangle, or diagonal) of centred Y."""
    d, k = Y.shape
    Yw = Y if w is None else Y * w
    if diagonal:
        products = np.multiply(Yw, Y, out=buffer[:d, :k])
    else:
        products = _upper_products(Yw, Y, buffer[:, :k])
    return _segment_sums(Yw, starts), _segment_sums(products, starts)


def _segment_moments(
    Xt: np.ndarray,
    w: np.ndarray | None,
    starts: np.ndarray,
    sizes: np.ndarray,
    diagonal: bool,
    buffer: np.ndarray,
) -> Stacked:
    """Corrected two-pass moments of each segment of the columns of Xt (shape (d, k)).

    Returns ``n (s,)``, ``mean (d, s)`` and M2 packed as ``(s, d(d+1)/2)`` upper triangles (or
    ``(s, d)`` if diagonal), where s is the number of segments.
    """
    d = Xt.shape[0]
    n = sizes.astype(np.float64) if w is None else np.add.reduceat(w, starts)
    has_weight = n > 0
    safe_n = np.where(has_weight, n, 1.0)
    # The core's two-part shift (`_combine._first_shift`): a coarse mean, then the mean of what is
    # left after it; and the core's re-centring threshold, `_MAX_SHIFT_IN_STD`.
    coarse = _segment_sums(Xt if w is None else Xt * w, starts) / safe_n
    Y = Xt - np.repeat(coarse, sizes, axis=1)
    fine = _segment_sums(Y if w is None else Y * w, starts) / safe_n
    Y -= np.repeat(fine, sizes, axis=1)
    coarse, fine = two_sum(coarse, fine)
    c, scatter = _centred_sums(Y, w, starts, diagonal, buffer)
    diag_rows = slice(None) if diagonal else _upper(d)[2]
    for _ in range(2):
        offset = c / safe_n
        far = (offset * offset * n > _MAX_SHIFT_IN_STD**2 * scatter[diag_rows]).any(axis=0)
        far &= np.isfinite(offset).all(axis=0) & has_weight
        if not far.any():
            break
        # Re-centre only the segments whose shift was far off, on the better shift, as the core
        # does for a whole block. Rare: the shift is already each segment's own mean.
        coarse[:, far], fine[:, far] = two_sum(coarse[:, far], fine[:, far] + offset[:, far])
        rows = np.repeat(far, sizes)
        far_sizes = sizes[far]
        far_starts = np.concatenate(([0], np.cumsum(far_sizes)[:-1]))
        Y_far = Xt[:, rows] - np.repeat(coarse[:, far], far_sizes, axis=1)
        Y_far -= np.repeat(fine[:, far], far_sizes, axis=1)
        c[:, far], scatter[:, far] = _centred_sums(
            Y_far, None if w is None else w[rows], far_starts, diagonal, buffer
        )
    offset = c / safe_n
    mean = coarse + (fine + offset)
    return n, mean, _packed_M2(scatter, c, safe_n, d, diagonal)


@functools.lru_cache(maxsize=32)
def _upper(d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row and column of each entry of the row-major upper triangle, and where the diagonal is."""
    i, j = np.triu_indices(d)
    return i, j, np.flatnonzero(i == j)


def _packed_M2(scatter: np.ndarray, c: np.ndarray, n: np.ndarray, d: int, diagonal: bool) -> np.ndarray:
    """``M2 = scatter - c c^T / n`` per segment, packed (upper triangle), variances clipped at 0.

    Shape (s, d(d+1)/2), or (s, d) if diagonal.
    """
    if diagonal:
        packed = (scatter - c * c / n).T
        return np.maximum(packed, 0.0, out=packed)
    i, j, diag = _upper(d)
    packed = (scatter - c[i] * c[j] / n).T
    packed[:, diag] = np.maximum(packed[:, diag], 0.0)
    return packed


def _unpack(packed: np.ndarray, d: int) -> np.ndarray:
    """Full symmetric M2 of shape (g, d, d) from packed upper triangles (g, d(d+1)/2)."""
    i, j, _ = _upper(d)
    upper = np.zeros((packed.shape[0], d * d))
    upper[:, i * d + j] = packed
    M2 = upper.reshape(-1, d, d)
    # The lower triangle is a copy of the upper one, so every M2 is exactly symmetric; one slice
    # per variable, in place, so no second (g, d, d) array is made.
    for row in range(d - 1):
        M2[:, row + 1:, row] = M2[:, row, row + 1:]
    return M2


def _gather(X: np.ndarray, index: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """Rows ``X[index]`` as float64 columns, shape (d, len(index))."""
    if out is not None:
        block = np.take(X, index, axis=0, out=out[: index.size])
    else:
        block = X[index].astype(np.float64)
    return np.ascontiguousarray(block.T)


class _GroupRows:
    """The rows ``X[index]`` (and weights ``w[index]``), gathered one slice at a time.

    `summarize_rows` reads its data only through ``.shape`` and consecutive slices ``[a:b]``
    (`_combine._blocks`), so this lets it stream one group's rows in place: no copy of the
    group is made, only one float64 block at a time.
    """

    def __init__(self, array: np.ndarray, index: np.ndarray) -> None:
        self._array = array
        self._index = index
        self.shape = (index.size, *array.shape[1:])

    def __getitem__(self, rows: slice) -> np.ndarray:
        return np.take(self._array, self._index[rows], axis=0).astype(np.float64, copy=False)


def _large_group(
    X: np.ndarray, w: np.ndarray | None, index: np.ndarray, diagonal: bool
) -> tuple[float, np.ndarray, np.ndarray]:
    """Moments of one large group by the core's `summarize_rows` over its rows; M2 packed.

    The core streams the rows in blocks about one two-part shift, re-centring if the group's mean
    drifts far from it; NaN propagates (the caller applies the NaN policy).
    """
    weights = None if w is None else _GroupRows(w, index)
    n, mean, M2, _ = summarize_rows(_GroupRows(X, index), weights, diagonal, "propagate")
    if diagonal:
        return n, mean, M2
    i, j, _ = _upper(X.shape[1])
    return n, mean, M2[i, j]


def summarize_groups(
    X: np.ndarray,
    weights: np.ndarray | None,
    order: np.ndarray,
    sizes: np.ndarray,
    diagonal: bool,
    rows: int | None = None,
) -> Stacked:
    """Per-group summaries of the rows of X (shape (N, d)); NaN propagates.

    Parameters
    ----------
    X : ndarray, shape (N, d)
        Any real dtype; converted to float64 one block at a time.
    weights : ndarray, shape (N,), or None
    order : ndarray of int
        Row indices with each group's rows together, group after group (rows not listed are
        left out: this is how ``nan_policy="omit"`` drops rows).
    sizes : ndarray, shape (g,)
        How many entries of `order` each group has (may be 0: that group is empty).
    diagonal : bool

    Returns
    -------
    counts (g,), means (g, d), M2 (g, d, d) or (g, d)
        Groups with no weight have zero mean and M2.

    Notes
    -----
    Blocks hold whole groups, about `rows` rows at a time, so every group's sums come from one
    segment of one block. A group with enough work of its own (``size * d**2`` above a few
    times 10**4 products, or more rows than a block) is streamed alone through the core's
    `summarize_rows` (BLAS), where the Python overhead is small next to its arithmetic. The Python loop therefore runs
    once per block or per such group, never once per small group.
    """
    d = X.shape[1]
    g = sizes.size
    rows = rows or block_rows(d, diagonal)
    products = d if diagonal else d * (d + 1) // 2
    buffer = np.empty((products, rows))
    out = np.empty((rows, d)) if X.dtype == np.float64 else None
    bounds = np.concatenate(([0], np.cumsum(sizes)))
    alone = np.flatnonzero(sizes >= min(rows + 1, _alone_rows(d, diagonal)))
    counts = np.zeros(g)
    means = np.zeros((g, d))
    packed = np.zeros((g, products))
    first = 0
    with np.errstate(all="ignore"):
        while first < g:
            next_alone = alone[np.searchsorted(alone, first)] if alone.size and alone[-1] >= first else g
            if next_alone == first:
                index = order[bounds[first]:bounds[first + 1]]
                counts[first], means[first], packed[first] = _large_group(X, weights, index, diagonal)
                first += 1
                continue
            # The groups first..last-1 are the most whole groups that fit in one block.
            last = int(np.searchsorted(bounds, bounds[first] + rows, side="right")) - 1
            last = min(last, next_alone)
            lo, hi = bounds[first], bounds[last]
            if hi > lo:
                members = first + np.flatnonzero(sizes[first:last])
                index = order[lo:hi]
                Xt = _gather(X, index, out)
                w = None if weights is None else weights[index]
                n, mean, m2 = _segment_moments(Xt, w, bounds[members] - lo, sizes[members], diagonal, buffer)
                counts[members], means[members], packed[members] = n, mean.T, m2
            first = last
    empty = counts == 0
    if empty.any():
        means[empty] = 0.0
        packed[empty] = 0.0
    return counts, means, packed if diagonal else _unpack(packed, d)
