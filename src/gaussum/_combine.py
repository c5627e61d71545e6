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

Every path in gaussum is one of these: merging, ``update``, ``merge_all``, and the block kernel
that turns raw rows into a summary (a corrected two-pass per block, then the rule across blocks).

Conventions: ``mean`` is 1-D of length d; ``M2`` is ``(d, d)`` (full) or ``(d,)`` (diagonal).
Scalar data is handled by the caller as d == 1 with a diagonal M2. Functions never modify their
arguments and may return them unchanged (the n == 0 identity), so callers must treat all arrays
as read-only.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ._validate import first_nonfinite_row

__all__ = [
    "merge_pair",
    "merge_many",
    "subtract",
    "block_moments",
    "summarize_rows",
    "rows_per_block",
]

Moments = tuple[float, np.ndarray, np.ndarray]

# Rows per block: about 2 MiB of float64 per block keeps the centred copy in cache and bounds the
# extra memory of `summarize_rows` to a small constant, whatever the size of the input.
_BLOCK_BYTES = 2**21
_MIN_BLOCK_ROWS = 1024

# A shift further than this (in units of variance) from the block mean costs more than one bit of
# M2 to cancellation in ``G - c c^T / n``; past it, the block is centred again on a better shift.
_MAX_SHIFT_RATIO = 1.0 / 16.0


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
    weight = n_a * n_b / n
    if M2_a.ndim == 2:
        # outer(delta, delta) is exactly symmetric, so M2 stays exactly symmetric.
        M2 = M2_a + M2_b + np.multiply.outer(delta, delta) * weight
    else:
        M2 = M2_a + M2_b + delta * delta * weight
    return n, mean, M2


def merge_many(ns: np.ndarray, means: np.ndarray, M2s: np.ndarray) -> Moments:
    """Combine k summaries at once by the k-way rule, with BLAS rather than a loop over shards.

    Parameters
    ----------
    ns : ndarray, shape (k,)
        Counts; zero counts are ignored.
    means : ndarray, shape (k, d)
    M2s : ndarray, shape (k, d, d) or (k, d)
    """
    diagonal = M2s.ndim == 2
    d = means.shape[1]
    keep = ns > 0
    if not keep.all():
        ns, means, M2s = ns[keep], means[keep], M2s[keep]
    if ns.size == 0:
        return _empty(d, diagonal)
    if ns.size == 1:
        return float(ns[0]), means[0].copy(), M2s[0].copy()
    n = float(ns.sum())
    # Work relative to the heaviest shard's mean: offsets are small next to large means, so the
    # pooled mean keeps the digits that sum(n_k m_k) would lose.
    reference = means[int(np.argmax(ns))]
    offsets = means - reference
    shift = (ns @ offsets) / n
    mean = reference + shift
    deviations = offsets - shift
    # c is zero in exact arithmetic; subtracting c c^T / n removes the rounding left in `shift`
    # (the correction of the corrected two-pass algorithm, applied to shards instead of rows).
    c = ns @ deviations
    if diagonal:
        M2 = M2s.sum(axis=0) + ns @ (deviations * deviations) - c * c / n
    else:
        M2 = (deviations.T * ns) @ deviations
        M2 -= np.multiply.outer(c, c) / n
        M2 += M2s.sum(axis=0)
        _mirror_upper(M2)
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
    if n < 0:
        raise ValueError(f"cannot remove a summary of n={n_t:g} from one of n={n_u:g}")
    if n_t == 0:
        return n_u, mean_u, M2_u
    if n == 0:
        return _empty(d, diagonal)
    delta = mean_t - mean_u
    mean = mean_u - delta * (n_t / n)
    weight = n_u * n_t / n
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
    return n, mean, M2


def _centre(X: np.ndarray, w: np.ndarray | None, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre block X on `shift`; return the centred copy and its (weighted) column sums."""
    Y = np.subtract(X, shift)
    c = (w @ Y) if w is not None else (np.ones(Y.shape[0]) @ Y)
    return Y, c


def block_moments(X: np.ndarray, weights: np.ndarray | None, diagonal: bool) -> Moments:
    """Summary of one in-memory block of rows; see `_block_moments`.

    Floating-point warnings are silenced here: NaN, inf and overflow show up as a non-finite
    result, which `summarize_rows` checks and reports according to the NaN policy.
    """
    with np.errstate(all="ignore"):
        return _block_moments(X, weights, diagonal)


def _block_moments(X: np.ndarray, weights: np.ndarray | None, diagonal: bool) -> Moments:
    """Summary of one in-memory block of rows by a corrected two-pass with an adaptive shift.

    Pass one estimates the mean with one BLAS call. Pass two centres the block on that estimate
    (``Y = X - shift``), takes the column sums ``c`` of Y and its Gram matrix ``Y^T W Y``; then

        mean = shift + c / n
        M2   = Y^T W Y - c c^T / n

    which is exact algebra for any shift (Chan, Golub and LeVeque's corrected two-pass; Björck
    1996 §2.7). Rounding in M2 grows with ``(mean - shift)^2 / variance``; when that is not small
    (data far from 0 with a tiny spread, where the first estimate loses digits) the block is
    centred again on the better shift ``shift + c / n``, which makes it small. This costs one pass
    fewer than shifting by a data row first, and is as accurate.

    Parameters
    ----------
    X : ndarray, shape (k, d)
        Any real dtype; converted to float64 here, one block at a time.
    weights : ndarray, shape (k,), or None
        Non-negative frequency weights.
    diagonal : bool
        Keep only the per-variable sums of squares.
    """
    k, d = X.shape
    if X.dtype != np.float64:
        X = X.astype(np.float64)
    if weights is None:
        n = float(k)
        shift = (np.ones(k) @ X) / n
    else:
        n = float(weights.sum())
        if n == 0:
            return _empty(d, diagonal)
        shift = (weights @ X) / n
    for _ in range(3):
        Y, c = _centre(X, weights, shift)
        Yw = Y if weights is None else Y * weights[:, None]
        if diagonal:
            squares = np.einsum("ij,ij->j", Yw, Y)
        else:
            gram = Yw.T @ Y
            squares = np.diagonal(gram)
        # The fraction of each sum of squares that the shift's error accounts for.
        excess = c * c / n
        with np.errstate(divide="ignore", invalid="ignore"):
            far = excess > _MAX_SHIFT_RATIO * (squares - excess)
        if not far.any() or not np.isfinite(c).all():
            break
        shift = shift + c / n
    mean = shift + c / n
    if diagonal:
        M2 = squares - c * c / n
        np.maximum(M2, 0.0, out=M2)
    else:
        M2 = _mirror_upper(gram)
        M2 -= np.multiply.outer(c, c) / n
        d_idx = np.diag_indices(d)
        M2[d_idx] = np.maximum(M2[d_idx], 0.0)
    return n, mean, M2


def _blocks(X: np.ndarray, weights: np.ndarray | None, rows: int) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
    for start in range(0, X.shape[0], rows):
        stop = start + rows
        yield start, X[start:stop], None if weights is None else weights[start:stop]


def _is_finite(mean: np.ndarray, M2: np.ndarray) -> bool:
    squares = np.diagonal(M2) if M2.ndim == 2 else M2
    return bool(np.isfinite(mean).all() and np.isfinite(squares).all())


def summarize_rows(
    X: np.ndarray,
    weights: np.ndarray | None,
    diagonal: bool,
    nan_policy: str,
    block_rows: int | None = None,
    name: str = "X",
) -> tuple[float, np.ndarray, np.ndarray, int]:
    """Summary of the rows of X (shape (N, d)), block by block, and the rows dropped.

    Peak extra memory is one block (about 2 MiB) whatever N is. Non-finite values are found
    without an extra pass: a block with NaN or inf has a non-finite result, and only then is it
    searched, so clean data pays nothing for the check.

    Returns
    -------
    n, mean, M2, rows_dropped
        ``rows_dropped`` counts the rows that ``nan_policy="omit"`` left out.
    """
    N, d = X.shape
    rows = block_rows or rows_per_block(d)
    total: Moments = _empty(d, diagonal)
    dropped = 0
    for start, block, w in _blocks(X, weights, rows):
        n_b, mean_b, M2_b = block_moments(block, w, diagonal)
        if not _is_finite(mean_b, M2_b) and nan_policy != "propagate":
            bad = first_nonfinite_row(block)
            if bad is None:
                raise ValueError(
                    f"{name} overflows float64 when squared (largest |value| is "
                    f"{float(np.max(np.abs(block))):g}); rescale the data first"
                )
            if nan_policy == "raise":
                raise ValueError(
                    f"{name} has a non-finite value in row {start + bad}: {block[bad].tolist()}; "
                    "pass nan_policy='omit' to drop such rows or 'propagate' to return NaN"
                )
            finite = np.isfinite(block).all(axis=1)
            dropped += int(block.shape[0] - finite.sum())
            block = block[finite]
            w = None if w is None else w[finite]
            if block.shape[0] == 0:
                continue
            n_b, mean_b, M2_b = block_moments(block, w, diagonal)
            if not _is_finite(mean_b, M2_b):
                raise ValueError(
                    f"{name} overflows float64 when squared (largest |value| is "
                    f"{float(np.max(np.abs(block))):g}); rescale the data first"
                )
        total = merge_pair(*total, n_b, mean_b, M2_b)
    return (*total, dropped)
