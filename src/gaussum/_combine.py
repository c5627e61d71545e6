"""The one combine rule, as pure functions of arrays.

A summary of data is ``(n, mean, M2)``: the total weight, the mean, and the summed outer products
of deviations from the mean (``M2 = sum w (x - mean)(x - mean)^T``; only its diagonal when the
summary is *diagonal*). Two summaries ``a`` and ``b`` of disjoint data combine by the pairwise rule
of Chan, Golub and LeVeque (1979)::

    n     = na + nb
    delta = mb - ma
    mean  = ma + delta * nb / n
    M2    = M2a + M2b + outer(delta, delta) * na * nb / n

and ``k`` summaries at once by its k-way form::

    mean  = sum(n_k m_k) / n
    M2    = sum(M2_k) + sum(n_k (m_k - mean)(m_k - mean)^T)

Every path in gaussum is one of these: merging, ``update`` and ``merge_all`` directly, and
`summarize_rows`, which turns raw rows into a summary by the corrected two-pass algorithm (the
k-way form with every row a shard, taken about one shift and streamed in blocks).

Conventions: ``mean`` is 1-D of length d; ``M2`` is ``(d, d)`` (full) or ``(d,)`` (diagonal).
Scalar data is handled by the caller as d == 1 with a diagonal M2. Functions never modify their
arguments and may return them unchanged (the n == 0 identity), so callers must treat all arrays
as read-only.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ._validate import first_nonfinite_row, nonfinite_row_error, overflow_error

__all__ = [
    "merge_pair",
    "merge_many",
    "merge_segments",
    "subtract",
    "two_sum",
    "summarize_rows",
    "rows_per_block",
]

Moments = tuple[float, np.ndarray, np.ndarray]

# Rows per block: about 2 MiB of float64 per block keeps the centred copy in cache and bounds the
# extra memory of `summarize_rows` to a small constant, whatever the size of the input.
_BLOCK_BYTES = 2**21
_MIN_BLOCK_ROWS = 1024
# Rows per partial sum in `_accurate_column_sums`.
_SUM_CHUNK = 256
# Centring on the fine part of the shift matters only when X - coarse is coarsely quantised:
# when ulp(coarse) exceeds this fraction of the spread (see `_centred_sums`).
_QUANTUM_OF_SPREAD = 2.0**-36

# How far (in standard deviations) the shift may sit from the mean of all rows. The correction
# c c^T / n multiplies the rounding in the column sums c by 2 (offset / std)^2, so a shift taken
# from a first block that is not typical of the rest (sorted or drifting data) costs digits:
# measured 1e-14 at one standard deviation. Past this bound the pass is repeated about the mean.
_MAX_SHIFT_IN_STD = 1.0 / 8.0


def rows_per_block(d: int) -> int:
    """Rows processed at a time for data of `d` variables."""
    return max(_MIN_BLOCK_ROWS, _BLOCK_BYTES // (8 * max(d, 1)))


def _mirror_upper(M: np.ndarray) -> np.ndarray:
    """Copy the upper triangle onto the lower one, in place, so M is exactly symmetric."""
    lower = np.tril_indices(M.shape[0], -1)
    M[lower] = M.T[lower]
    return M


def _first_positive(delta: np.ndarray) -> bool:
    """True when the first non-zero entry of delta is positive (or there is none)."""
    nonzero = np.flatnonzero(delta)
    return nonzero.size == 0 or bool(delta[nonzero[0]] > 0)


def _empty(d: int, diagonal: bool) -> Moments:
    return 0.0, np.zeros(d), np.zeros(d if diagonal else (d, d))


def merge_pair(
    n_a: float, mean_a: np.ndarray, M2_a: np.ndarray, n_b: float, mean_b: np.ndarray, M2_b: np.ndarray
) -> Moments:
    """Combine two summaries of disjoint data by the pairwise rule.

    An empty side (n == 0) is an exact identity: the other side is returned unchanged.
    """
    if n_b == 0:
        return n_a, mean_a, M2_a
    if n_a == 0:
        return n_b, mean_b, M2_b
    n = n_a + n_b
    delta = mean_b - mean_a
    # Step from the heavier side: the correction is then the smaller one, and so is its rounding.
    # Ties go to the side whose mean is smaller at the first difference, so a + b == b + a exactly.
    if n_a > n_b or (n_a == n_b and _first_positive(delta)):
        mean = mean_a + delta * (n_b / n)
    else:
        mean = mean_b - delta * (n_a / n)
    # max * (min / n), not na * nb / n: that overflows past 1e154, and this keeps a + b == b + a.
    weight = max(n_a, n_b) * (min(n_a, n_b) / n)
    if M2_a.ndim == 2:
        # outer(delta, delta) is exactly symmetric, so M2 stays exactly symmetric.
        M2 = M2_a + M2_b + np.multiply.outer(delta, delta) * weight
    else:
        M2 = M2_a + M2_b + delta * delta * weight
    return n, mean, M2


def merge_many(ns: np.ndarray, means: np.ndarray, M2s: np.ndarray) -> Moments:
    """Combine k summaries at once by the k-way rule: `merge_segments` with one run.

    Parameters
    ----------
    ns : ndarray, shape (k,)
        Counts; zero counts are ignored.
    means : ndarray, shape (k, d)
    M2s : ndarray, shape (k, d, d) or (k, d)
    """
    keep = ns > 0
    if not keep.all():
        # A summary of no weight adds nothing, whatever its (possibly NaN) fields hold.
        ns, means, M2s = ns[keep], means[keep], M2s[keep]
    if ns.size == 0:
        return _empty(means.shape[1], M2s.ndim == 2)
    if ns.size == 1:
        return float(ns[0]), means[0].copy(), M2s[0].copy()
    n, mean, M2 = merge_segments(ns, means, M2s, np.zeros(1, dtype=np.intp))
    return float(n[0]), mean[0], M2[0]


def merge_segments(
    ns: np.ndarray, means: np.ndarray, M2s: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Combine consecutive runs of summaries by the k-way rule, one result per run.

    Relative to the mean of the heaviest summary of each run (the first, on ties), with offsets
    ``o_k = m_k - reference``::

        mean = reference + sum(n_k o_k) / n
        M2   = sum(M2_k) + sum(n_k e_k e_k^T) - c c^T / n

    where ``e_k`` are the deviations from the pooled mean and ``c = sum(n_k e_k)``: zero in exact
    arithmetic, so subtracting ``c c^T / n`` removes the rounding left in the pooled mean (the
    correction of the corrected two-pass algorithm, applied to summaries instead of rows). Offsets
    are small next to large means, so the pooled mean keeps the digits that ``sum(n_k m_k)`` would
    lose. A run of one summary comes back with the same values; a run of no weight comes back
    empty (zero mean and M2). M2 is exactly symmetric when every ``M2_k`` is.

    Parameters
    ----------
    ns : ndarray, shape (p,)
        Counts (weights), >= 0; a summary of count 0 must have zero M2.
    means : ndarray, shape (p, d)
    M2s : ndarray, shape (p, d, d) or (p, d)
    starts : ndarray of int, shape (r,)
        Index of the first summary of each run: ``starts[0] == 0``, strictly increasing.

    Returns
    -------
    n (r,), mean (r, d), M2 (r, d, d) or (r, d)
    """
    p = ns.size
    sizes = np.diff(np.append(starts, p))
    run = np.repeat(np.arange(starts.size), sizes)
    n = np.add.reduceat(ns, starts)
    position = np.where(ns == np.maximum.reduceat(ns, starts)[run], np.arange(p), p)
    reference = means[np.minimum.reduceat(position, starts)]
    offsets = means - reference[run]
    safe_n = np.where(n > 0, n, 1.0)
    shift = np.add.reduceat(ns[:, None] * offsets, starts) / safe_n[:, None]
    deviations = offsets - shift[run]
    weighted = ns[:, None] * deviations
    c = np.add.reduceat(weighted, starts)
    if M2s.ndim == 2:
        M2 = np.add.reduceat(M2s, starts) + np.add.reduceat(weighted * deviations, starts)
        M2 -= c * c / safe_n[:, None]
    elif starts.size == 1:
        # One run (merge_many): one BLAS call, mirrored so M2 is exactly symmetric.
        M2 = (weighted.T @ deviations)[None]
        M2 -= np.multiply.outer(c[0], c[0]) / n[0]
        M2 += M2s.sum(axis=0)
        _mirror_upper(M2[0])
    else:
        # n_k (e_ki e_kj), its sums and c_i c_j are exactly symmetric in i and j: no mirroring.
        spread = ns[:, None, None] * (deviations[:, :, None] * deviations[:, None, :])
        M2 = np.add.reduceat(M2s, starts) + np.add.reduceat(spread, starts)
        M2 -= (c[:, :, None] * c[:, None, :]) / safe_n[:, None, None]
    mean = reference + shift
    empty = n == 0
    if empty.any():
        mean[empty] = 0.0
        M2[empty] = 0.0
    return n, mean, M2


def subtract(
    n_u: float, mean_u: np.ndarray, M2_u: np.ndarray, n_t: float, mean_t: np.ndarray, M2_t: np.ndarray
) -> Moments:
    """Remove summary t from summary u, where t summarises part of u's data.

    The inverse of `merge_pair`: if ``u = r + t`` then ``subtract(u, t) == r`` up to rounding.
    Cancellation makes the result lose accuracy in proportion to how much of u is removed, so
    variances are clipped at zero (with the matching covariances) rather than going negative.
    """
    n = n_u - n_t
    d = mean_u.shape[0]
    diagonal = M2_u.ndim == 1
    # With fractional weights, removing every part leaves a rounding residue of n, not 0; a
    # "summary" of 1e-17 observations would carry a meaningless mean, so treat it as empty.
    residue = 8 * np.finfo(np.float64).eps * n_u
    if n < -residue:
        raise ValueError(f"cannot remove a summary of n={n_t:g} from one of n={n_u:g}")
    if n_t == 0:
        return n_u, mean_u, M2_u
    if n <= residue:
        return _empty(d, diagonal)
    delta = mean_t - mean_u
    mean = mean_u - delta * (n_t / n)
    weight = n_u * (n_t / n)
    if diagonal:
        M2 = M2_u - M2_t - delta * delta * weight
        np.maximum(M2, 0.0, out=M2)
        return n, mean, M2
    M2 = M2_u - M2_t - np.multiply.outer(delta, delta) * weight
    negative = np.diagonal(M2) < 0
    if negative.any():
        # A variable whose variance cancelled to below zero has none left: zero its row and column.
        M2[negative, :] = 0.0
        M2[:, negative] = 0.0
    # Cancellation can also push a covariance past Cauchy-Schwarz; keep the matrix one that data
    # could have produced (and that from_dict accepts back).
    diag = np.diagonal(M2)
    root = np.sqrt(diag)
    bound = np.multiply.outer(root, root)
    np.clip(M2, -bound, bound, out=M2)
    return n, mean, M2


def _column_sums(Y: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """(Weighted) column sums of Y with one BLAS call: fast, with BLAS's long running sums."""
    return (w @ Y) if w is not None else (np.ones(Y.shape[0]) @ Y)


def _accurate_column_sums(Y: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """(Weighted) column sums of a C-contiguous Y, summed in chunks of rows, then the chunks.

    BLAS sums a column as one long running sum, whose rounding can pile up (6e-15 relative over
    65,536 squares); two levels of 256-row chunks keep it near u at the same speed.
    """
    k, d = Y.shape
    m = k // _SUM_CHUNK
    if m < 2:
        return _column_sums(Y, w)
    cut = m * _SUM_CHUNK
    head_weights = np.ones((m, 1, _SUM_CHUNK)) if w is None else w[:cut].reshape(m, 1, _SUM_CHUNK)
    head = (head_weights @ Y[:cut].reshape(m, _SUM_CHUNK, d)).sum(axis=0)[0]
    return head + _column_sums(Y[cut:], None if w is None else w[cut:])


def two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``hi, lo`` with ``hi = fl(a + b)`` and ``hi + lo == a + b`` exactly (Knuth's TwoSum)."""
    hi = a + b
    b_part = hi - a
    lo = (a - (hi - b_part)) + (b - b_part)
    return hi, lo


def _first_shift(X: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
    """A two-part shift ``(coarse, fine)`` near the mean of block X, or None if X has no weight.

    The fine part is set to zero where centring on it would change nothing (``X - coarse`` is
    not coarsely quantised), which saves `_centred_sums` a pass over every block.
    """
    n = float(X.shape[0]) if w is None else float(w.sum())
    if n == 0:
        return None
    coarse = _column_sums(X, w) / n
    deviations = X - coarse
    fine = _column_sums(deviations, w) / n
    spread = np.sqrt(_column_sums(deviations * deviations, w) / n)
    coarse, fine = two_sum(coarse, fine)
    if (np.spacing(np.abs(coarse)) <= _QUANTUM_OF_SPREAD * spread).all():
        fine = np.zeros_like(fine)
    return coarse, fine


def _centred_sums(
    X: np.ndarray, w: np.ndarray | None, shift: tuple[np.ndarray, np.ndarray], diagonal: bool
) -> tuple[float, np.ndarray, np.ndarray]:
    """Total weight, column sums and scatter (``Y^T W Y``, or its diagonal) of ``Y = X - shift``."""
    coarse, fine = shift
    # X - coarse is exact (Sterbenz) for data whose spread is small next to its mean; the fine
    # part then brings each value down to full precision. Without it, X - coarse is a multiple of
    # ulp(coarse), and sums of such coarsely quantised squares round with a bias (measured:
    # 4e-15 relative at mean/spread = 1e9) that fully centred values do not show.
    Y = np.subtract(X, coarse)
    if fine.any():
        Y -= fine
    n = float(X.shape[0]) if w is None else float(w.sum())
    if Y.shape[1] == 1:
        # One variable: numpy's pairwise summation (error ~ u log k) rather than BLAS's long
        # running sums, which err by up to ~u k on repeated values (NIST's NumAcc2: 1.2e-14).
        y = Y[:, 0]
        yw = y if w is None else y * w
        c = np.array([yw.sum()])
        squares = (yw * y).sum()
        return n, c, np.full((1,) if diagonal else (1, 1), squares)
    c = _accurate_column_sums(Y, w)
    if diagonal:
        return n, c, _accurate_column_sums(Y * Y, w)
    Yw = Y if w is None else Y * w[:, None]
    return n, c, Yw.T @ Y


def _blocks(
    X: np.ndarray, weights: np.ndarray | None, rows: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
    """``(first row index, float64 block, its weights)`` for consecutive blocks of `rows` rows."""
    for start in range(0, X.shape[0], rows):
        stop = start + rows
        block = X[start:stop]
        if block.dtype != np.float64:
            block = block.astype(np.float64)
        yield start, block, None if weights is None else weights[start:stop]


def _all_finite(*arrays: np.ndarray) -> bool:
    return all(bool(np.isfinite(a).all()) for a in arrays)


def _apply_nan_policy(
    block: np.ndarray, w: np.ndarray | None, start: int, nan_policy: str, name: str
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Handle a block whose sums came out non-finite: raise, or drop its non-finite rows."""
    bad = first_nonfinite_row(block)
    if bad is None:
        raise overflow_error(name, block, start)
    if nan_policy == "raise":
        raise nonfinite_row_error(name, start + bad, block[bad])
    finite = np.isfinite(block).all(axis=1)
    return block[finite], None if w is None else w[finite], int(block.shape[0] - finite.sum())


def _sums_about(
    X: np.ndarray,
    weights: np.ndarray | None,
    diagonal: bool,
    nan_policy: str,
    rows: int,
    name: str,
    shift: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[float, np.ndarray, np.ndarray, int, tuple[np.ndarray, np.ndarray] | None]:
    """One pass over X: total weight, column sums and scatter about `shift`, rows dropped.

    With ``shift=None`` the shift is taken from the first block that has weight. Non-finite values
    are found without an extra pass: a block with NaN or inf has non-finite sums, and only then is
    it searched, so clean data pays nothing for the check.
    """
    d = X.shape[1]
    n, c = 0.0, np.zeros(d)
    scatter = np.zeros(d if diagonal else (d, d))
    dropped = 0
    for start, block, w in _blocks(X, weights, rows):
        cleaned = False
        if shift is None:
            first = _first_shift(block, w)
            if nan_policy != "propagate" and (first is None or not _all_finite(*first)):
                if first is not None or not np.isfinite(block).all():
                    block, w, k = _apply_nan_policy(block, w, start, nan_policy, name)
                    dropped += k
                    cleaned = True
                first = _first_shift(block, w) if block.shape[0] else None
            if first is None:
                continue
            shift = first
        n_b, c_b, s_b = _centred_sums(block, w, shift, diagonal)
        squares = s_b if diagonal else np.diagonal(s_b)
        if nan_policy != "propagate" and not _all_finite(c_b, squares):
            if cleaned:
                raise overflow_error(name, block, start)
            block, w, k = _apply_nan_policy(block, w, start, nan_policy, name)
            dropped += k
            if block.shape[0] == 0:
                continue
            n_b, c_b, s_b = _centred_sums(block, w, shift, diagonal)
            if not _all_finite(c_b, s_b if diagonal else np.diagonal(s_b)):
                raise overflow_error(name, block)  # rows were dropped: indices no longer apply
        n += n_b
        c += c_b
        scatter += s_b
    return n, c, scatter, dropped, shift


def summarize_rows(
    X: np.ndarray,
    weights: np.ndarray | None,
    diagonal: bool,
    nan_policy: str,
    block_rows: int | None = None,
    name: str = "X",
) -> tuple[float, np.ndarray, np.ndarray, int]:
    """Summary of the rows of X, shape (N, d), by a corrected two-pass; and the rows dropped.

    Pass one takes a shift near the mean from the first block. Pass two streams over all rows in
    blocks of about 2 MiB (so peak extra memory is one block, whatever N is), accumulating for
    ``Y = X - shift`` the column sums ``c`` and the scatter ``S = Y^T W Y`` with BLAS; then

        mean = shift + c / n
        M2   = S - c c^T / n

    which is exact algebra for any shift: the corrected two-pass algorithm (Chan, Golub and
    LeVeque 1983; Björck 1996, section 2.7), the correction removing the rounding left in the
    shift. Its rounding error grows with ``(mean - shift)^2 / variance``, so if the first block
    is not typical of the rest (sorted or drifting data: its mean more than 1/8 of a standard
    deviation from the overall mean), the pass is repeated about the overall mean. For data in
    random order the first block's mean is far closer than that, and one pass suffices. The
    shift is kept in two float64 parts so data far from zero is centred to full precision.

    Returns
    -------
    n, mean, M2, rows_dropped
        ``rows_dropped`` counts the rows that ``nan_policy="omit"`` left out.
    """
    N, d = X.shape
    rows = block_rows or rows_per_block(d)
    shift = None
    with np.errstate(all="ignore"):
        for _ in range(3):
            n, c, scatter, dropped, shift = _sums_about(X, weights, diagonal, nan_policy, rows, name, shift)
            if n == 0:
                return (*_empty(d, diagonal), dropped)
            offset = c / n
            squares = scatter if diagonal else np.diagonal(scatter)
            far = offset * offset * n > _MAX_SHIFT_IN_STD**2 * squares
            if not far.any() or not _all_finite(offset):
                break
            shift = two_sum(shift[0], shift[1] + offset)
        mean = shift[0] + (shift[1] + offset)
        if diagonal:
            M2 = scatter - c * c / n
            np.maximum(M2, 0.0, out=M2)
        else:
            M2 = _mirror_upper(scatter)
            M2 -= np.multiply.outer(c, c) / n
            index = np.diag_indices(d)
            M2[index] = np.maximum(M2[index], 0.0)
    return n, mean, M2, dropped
