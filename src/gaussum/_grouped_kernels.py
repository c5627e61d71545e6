"""Pure array kernels for grouped summaries: factorise keys, summarise rows per group, merge.

A grouped summary is the core's ``(n, mean, M2)`` stacked over ``g`` groups: ``counts (g,)``,
``means (g, d)``, ``M2 (g, d, d)`` (or ``(g, d)`` when diagonal). The kernels here compute it
without a Python loop over rows or over groups:

1. `factorize` turns labels into dense integer codes ``0..g-1`` in sorted label order, and
   `sort_order` gives a permutation that brings each group's rows together;
2. `summarize_groups` walks the sorted rows in blocks of a few thousand rows, each holding whole
   groups, and runs the core's corrected two-pass (two-part shift, centred sums, re-centring when
   the shift is far) on every group of the block at once, with ``np.add.reduceat`` for the
   per-group sums; a group larger than a block gets the core's streaming form on its own;
3. `merge_segments` merges grouped summaries by the k-way rule of
   `gaussum._combine.merge_many`, vectorised over keys.

Functions never modify their arguments.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["factorize", "sort_order", "summarize_groups", "merge_segments", "block_rows"]

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

# As in the core (`gaussum._combine._MAX_SHIFT_IN_STD`): a shift further than this many standard
# deviations from a segment's mean is replaced by a better one and the segment summed again.
_MAX_SHIFT_IN_STD = 4.0


def _alone_rows(d: int, diagonal: bool) -> int:
    """Rows from which a group is summed on its own (BLAS) rather than in a shared block."""
    products = d if diagonal else d * d
    return max(_MIN_ALONE_ROWS, _ALONE_PRODUCTS // products)


def _large_chunk(d: int) -> int:
    """Rows per chunk when one group is summed on its own: the core's block size."""
    return max(_MIN_BLOCK_ROWS, _BLOCK_BYTES // (8 * d))


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


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``hi, lo`` with ``hi = fl(a + b)`` and ``hi + lo == a + b`` exactly (Knuth's TwoSum)."""
    hi = a + b
    b_part = hi - a
    lo = (a - (hi - b_part)) + (b - b_part)
    return hi, lo


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
    # The core's two-part shift: a coarse mean, then the mean of what is left after it.
    coarse = _segment_sums(Xt if w is None else Xt * w, starts) / safe_n
    Y = Xt - np.repeat(coarse, sizes, axis=1)
    fine = _segment_sums(Y if w is None else Y * w, starts) / safe_n
    Y -= np.repeat(fine, sizes, axis=1)
    coarse, fine = _two_sum(coarse, fine)
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
        coarse[:, far], fine[:, far] = _two_sum(coarse[:, far], fine[:, far] + offset[:, far])
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


def _large_group(
    X: np.ndarray, w: np.ndarray | None, index: np.ndarray, diagonal: bool, rows: int, out: np.ndarray | None
) -> tuple[float, np.ndarray, np.ndarray]:
    """Moments of one large group by the core's corrected two-pass over its rows; M2 packed.

    One shift (two float64 parts, from the first chunk with weight) serves every chunk, whose
    centred sums and scatter (BLAS) are accumulated; if the group's mean drifts far from it, the
    pass is repeated about the better shift. Merging per-chunk summaries instead would round each
    chunk's mean and cost accuracy in proportion to ``|mean| / spread``.
    """
    d = X.shape[1]
    shift = None
    for _ in range(3):
        n, c = 0.0, np.zeros(d)
        scatter = np.zeros(d if diagonal else (d, d))
        for start in range(0, index.size, rows):
            part = index[start:start + rows]
            if out is not None:
                block = np.take(X, part, axis=0, out=out[: part.size])
            else:
                block = X[part].astype(np.float64)
            wp = None if w is None else w[part]
            n_part = float(part.size) if wp is None else float(wp.sum())
            if shift is None:
                if n_part == 0:
                    continue
                coarse = (block.sum(axis=0) if wp is None else wp @ block) / n_part
                Y = block - coarse
                fine = (Y.sum(axis=0) if wp is None else wp @ Y) / n_part
                Y -= fine
                shift = _two_sum(coarse, fine)
            else:
                Y = block - shift[0]
                Y -= shift[1]
            Yw = Y if wp is None else Y * wp[:, None]
            n += n_part
            c += Yw.sum(axis=0)
            scatter += np.einsum("ij,ij->j", Yw, Y) if diagonal else Yw.T @ Y
        if shift is None or n == 0:
            return 0.0, np.zeros(d), np.zeros(d if diagonal else d * (d + 1) // 2)
        offset = c / n
        squares = scatter if diagonal else np.diagonal(scatter)
        far = offset * offset * n > _MAX_SHIFT_IN_STD**2 * squares
        if not far.any() or not np.isfinite(offset).all():
            break
        shift = _two_sum(shift[0], shift[1] + offset)
    mean = shift[0] + (shift[1] + offset)
    if diagonal:
        return n, mean, np.maximum(scatter - c * c / n, 0.0)
    i, j, diag = _upper(d)
    packed = scatter[i, j] - c[i] * c[j] / n
    packed[diag] = np.maximum(packed[diag], 0.0)
    return n, mean, packed


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
    times 10**4 products, or more rows than a block) is summed alone by `_large_group` with BLAS,
    where the Python overhead is small next to its arithmetic. The Python loop therefore runs
    once per block or per such group, never once per small group.
    """
    d = X.shape[1]
    g = sizes.size
    rows = rows or block_rows(d, diagonal)
    products = d if diagonal else d * (d + 1) // 2
    buffer = np.empty((products, rows))
    out = np.empty((max(rows, _large_chunk(d)), d)) if X.dtype == np.float64 else None
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
                counts[first], means[first], packed[first] = _large_group(
                    X, weights, index, diagonal, _large_chunk(d), out
                )
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


def merge_segments(ns: np.ndarray, means: np.ndarray, M2s: np.ndarray, starts: np.ndarray) -> Stacked:
    """Merge consecutive runs of summaries by the k-way rule, one result per run.

    The rule of `gaussum._combine.merge_many`, vectorised over runs: relative to the mean of the
    heaviest summary of each run, ``mean = ref + sum(n_k o_k) / n`` with offsets ``o_k``, and
    ``M2 = sum(M2_k) + sum(n_k e_k e_k^T) - c c^T / n`` with deviations ``e_k`` from the pooled
    mean and ``c = sum(n_k e_k)`` (zero but for rounding, which the correction removes). A run
    of one summary comes back unchanged.

    Parameters
    ----------
    ns : ndarray, shape (p,)
    means : ndarray, shape (p, d)
    M2s : ndarray, shape (p, d, d) or (p, d)
    starts : ndarray of int, shape (r,)
        Index of the first summary of each run; starts[0] == 0, strictly increasing.
    """
    p = ns.size
    sizes = np.diff(np.append(starts, p))
    run = np.repeat(np.arange(starts.size), sizes)
    n = np.add.reduceat(ns, starts)
    # First summary of greatest weight in each run: its mean is the reference.
    position = np.where(ns == np.maximum.reduceat(ns, starts)[run], np.arange(p), p)
    reference = means[np.minimum.reduceat(position, starts)]
    offsets = means - reference[run]
    safe_n = np.where(n > 0, n, 1.0)
    shift = np.add.reduceat(ns[:, None] * offsets, starts) / safe_n[:, None]
    deviations = offsets - shift[run]
    c = np.add.reduceat(ns[:, None] * deviations, starts)
    if M2s.ndim == 2:
        spread = ns[:, None] * (deviations * deviations)
        M2 = np.add.reduceat(M2s, starts) + np.add.reduceat(spread, starts) - c * c / safe_n[:, None]
    else:
        spread = ns[:, None, None] * (deviations[:, :, None] * deviations[:, None, :])
        M2 = np.add.reduceat(M2s, starts) + np.add.reduceat(spread, starts)
        M2 -= (c[:, :, None] * c[:, None, :]) / safe_n[:, None, None]
    mean = reference + shift
    empty = n == 0
    if empty.any():
        mean[empty] = 0.0
        M2[empty] = 0.0
    return n, mean, M2
