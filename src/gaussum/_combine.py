"""The one combine rule, as pure functions of arrays.

A summary of data is ``(n, mean, M2, w2)``: the total weight, the mean, the summed outer products
of deviations from the mean (``M2 = sum w (x - mean)(x - mean)^T``; only its diagonal when the
summary is *diagonal*), and the sum of frequency weight times squared reliability weight (``n``
when there are no reliability weights), which is additive. Two summaries ``a`` and ``b`` of
disjoint data combine by the pairwise rule of Chan, Golub and LeVeque (1979)::

    n     = na + nb
    delta = mb - ma
    mean  = ma + delta * nb / n
    M2    = M2a + M2b + outer(delta, delta) * na * nb / n
    w2    = w2a + w2b

and ``k`` summaries at once by its k-way form::

    mean  = sum(n_k m_k) / n
    M2    = sum(M2_k) + sum(n_k (m_k - mean)(m_k - mean)^T)

Every path in gaussum is one of these: merging (`merge_pair`), ``merge_all`` and grouped merges
(`merge_segments`), removal (`subtract`), the one-row Welford step (`add_row`), and the row kernel
`gaussum._kernel`, which turns raw rows into a summary by the corrected two-pass algorithm (the
k-way form with every row a shard, taken about one shift and streamed in blocks). This module is
the only place that handles an empty side.

Conventions: ``mean`` is 1-D of length d; ``M2`` is ``(d, d)`` (full) or ``(d,)`` (diagonal).
Scalar data is handled by the caller as d == 1 with a diagonal M2. Functions never modify their
arguments and may return them unchanged (the n == 0 identity), so callers must treat all arrays
as read-only.
"""

from __future__ import annotations

import math

import numpy as np

from . import _compiled
from ._moments import consistent_scatter, needs_clipping

__all__ = [
    "merge_pair",
    "merge_many",
    "merge_segments",
    "subtract",
    "add_row",
    "add_value",
    "two_sum",
    "mirror_upper",
]

Moments = tuple[float, np.ndarray, np.ndarray, float]
Stacked = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

def mirror_upper(M: np.ndarray) -> np.ndarray:
    """Copy the upper triangle onto the lower one, in place, so M is exactly symmetric."""
    lower = np.tril_indices(M.shape[0], -1)
    M[lower] = M.T[lower]
    return M


def _first_positive(delta: np.ndarray) -> bool:
    """True when the first non-zero entry of delta is positive (or there is none)."""
    nonzero = np.flatnonzero(delta)
    return nonzero.size == 0 or bool(delta[nonzero[0]] > 0)


def _empty(d: int, diagonal: bool) -> Moments:
    return 0.0, np.zeros(d), np.zeros(d if diagonal else (d, d)), 0.0


def merge_pair(
    n_a: float,
    mean_a: np.ndarray,
    M2_a: np.ndarray,
    w2_a: float,
    n_b: float,
    mean_b: np.ndarray,
    M2_b: np.ndarray,
    w2_b: float,
) -> Moments:
    """Combine two summaries of disjoint data by the pairwise rule.

    An empty side (n == 0) is an exact identity: the other side is returned unchanged.
    """
    if n_b == 0:
        return n_a, mean_a, M2_a, w2_a
    if n_a == 0:
        return n_b, mean_b, M2_b, w2_b
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
        # No clipping needed: a sum of scatter matrices keeps Cauchy-Schwarz to rounding, and
        # where a square underflows the check allows what underflow leaves.
        M2 = M2_a + M2_b + np.multiply.outer(delta, delta) * weight
    else:
        M2 = M2_a + M2_b + delta * delta * weight
    return n, mean, M2, w2_a + w2_b


def merge_many(ns: np.ndarray, means: np.ndarray, M2s: np.ndarray, w2s: np.ndarray) -> Moments:
    """Combine k summaries at once by the k-way rule: `merge_segments` with one run.

    Parameters
    ----------
    ns : ndarray, shape (k,)
        Counts; zero counts are ignored.
    means : ndarray, shape (k, d)
    M2s : ndarray, shape (k, d, d) or (k, d)
    w2s : ndarray, shape (k,)
    """
    keep = ns > 0
    if not keep.all():
        # A summary of no weight adds nothing, whatever its (possibly NaN) fields hold.
        ns, means, M2s, w2s = ns[keep], means[keep], M2s[keep], w2s[keep]
    if ns.size == 0:
        return _empty(means.shape[1], M2s.ndim == 2)
    if ns.size == 1:
        return float(ns[0]), means[0].copy(), M2s[0].copy(), float(w2s[0])
    n, mean, M2, w2 = merge_segments(ns, means, M2s, w2s, np.zeros(1, dtype=np.intp))
    return float(n[0]), mean[0], M2[0], float(w2[0])


def merge_segments(
    ns: np.ndarray, means: np.ndarray, M2s: np.ndarray, w2s: np.ndarray, starts: np.ndarray
) -> Stacked:
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
    w2s : ndarray, shape (p,)
    starts : ndarray of int, shape (r,)
        Index of the first summary of each run: ``starts[0] == 0``, strictly increasing.

    Returns
    -------
    n (r,), mean (r, d), M2 (r, d, d) or (r, d), w2 (r,)
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
        mirror_upper(M2[0])
    else:
        # n_k (e_ki e_kj), its sums and c_i c_j are exactly symmetric in i and j: no mirroring.
        spread = ns[:, None, None] * (deviations[:, :, None] * deviations[:, None, :])
        M2 = np.add.reduceat(M2s, starts) + np.add.reduceat(spread, starts)
        M2 -= (c[:, :, None] * c[:, None, :]) / safe_n[:, None, None]
    if M2.ndim == 3 and needs_clipping(M2):
        consistent_scatter(M2)
    mean = reference + shift
    w2 = np.add.reduceat(w2s, starts)
    empty = n == 0
    if empty.any():
        mean[empty] = 0.0
        M2[empty] = 0.0
        w2[empty] = 0.0
    return n, mean, M2, w2


def subtract(
    counts_u: np.ndarray,
    means_u: np.ndarray,
    M2_u: np.ndarray,
    w2_u: np.ndarray,
    counts_t: np.ndarray,
    means_t: np.ndarray,
    M2_t: np.ndarray,
    w2_t: np.ndarray,
) -> Stacked:
    """Remove summaries t from summaries u, group by group, where each t summarises part of u's data.

    The inverse of the pairwise rule: if ``u = r + t`` then ``subtract(u, t) == r`` up to
    rounding. Arrays are stacked over g groups (means ``(g, d)``, M2 ``(g, d, d)`` or ``(g, d)``).
    Cancellation makes the result lose accuracy in proportion to how much of u is removed, so
    variances that come out negative by no more than rounding are clipped at zero (with the
    matching covariances). Rounding is bounded by `_REMOVAL_ULPS` units of the magnitudes that
    enter each remaining variance, ``M2u_ii + M2t_ii + w delta_i^2``, plus the rounding of the
    stored means carried through ``delta`` (``2 w |delta_i| (|mean_u_i| + |mean_t_i|)``); a
    remainder more negative than that, or a t that takes all of u's weight without having u's
    mean and spread, cannot have been part of u.

    Raises
    ------
    ValueError
        When some group of t weighs more than the same group of u, or could not have been added
        to it.
    """
    n = counts_u - counts_t
    w2 = w2_u - w2_t
    # With fractional weights, removing every part leaves a rounding residue of n, not 0; a
    # "summary" of 1e-17 observations would carry a meaningless mean, so treat it as empty.
    residue = 8 * np.finfo(np.float64).eps * counts_u
    short = n < -residue
    if short.any():
        i = int(np.flatnonzero(short)[0])
        raise ValueError(f"cannot remove a summary of n={float(counts_t[i]):g} from one of n={float(counts_u[i]):g}")
    emptied = n <= residue
    removed = (counts_t > 0) & ~emptied
    safe_n = np.where(removed, n, 1.0)
    delta = means_t - means_u
    mean = means_u - delta * np.where(removed, counts_t / safe_n, 0.0)[:, None]
    weight = np.where(removed, counts_u * (counts_t / safe_n), 0.0)
    diagonal = M2_u.ndim == 2
    if diagonal:
        M2 = M2_u - M2_t - delta * delta * weight[:, None]
    else:
        M2 = M2_u - M2_t - (delta[:, :, None] * delta[:, None, :]) * weight[:, None, None]
    _check_removable(M2, M2_u, M2_t, delta, weight, means_u, means_t, counts_u, counts_t, emptied & (counts_t > 0))
    if diagonal:
        np.maximum(M2, 0.0, out=M2)
    else:
        negative = np.diagonal(M2, axis1=1, axis2=2) < 0
        if negative.any():
            # A variable whose variance cancelled to below zero has none left: zero its row and column.
            group, var = np.nonzero(negative)
            M2[group, var, :] = 0.0
            M2[group, :, var] = 0.0
        # Cancellation can also push a covariance past Cauchy-Schwarz; keep the matrix one that
        # data could have produced (and that from_dict accepts back).
        consistent_scatter(M2)
    # w2 cancels like n; a rounding-sized remainder of a non-empty group stays positive.
    w2 = np.where(w2 > 0, w2, np.where(emptied, 0.0, np.maximum(w2, residue)))
    untouched = counts_t == 0
    if untouched.any():
        mean[untouched], M2[untouched], w2[untouched] = means_u[untouched], M2_u[untouched], w2_u[untouched]
    if emptied.any():
        n = np.where(emptied & ~untouched, 0.0, n)
        mean[emptied & ~untouched] = 0.0
        M2[emptied & ~untouched] = 0.0
        w2[emptied & ~untouched] = 0.0
    return n, mean, M2, w2


#: Units of rounding allowed in a remaining variance before `subtract` calls it impossible.
_REMOVAL_ULPS = 64
#: Relative agreement of mean and spread that `subtract` asks of a t that empties u.
_SAME_SUMMARY_RTOL = 1e-6


def _squares(M2: np.ndarray) -> np.ndarray:
    return np.diagonal(M2, axis1=1, axis2=2) if M2.ndim == 3 else M2


def _check_removable(
    M2: np.ndarray,
    M2_u: np.ndarray,
    M2_t: np.ndarray,
    delta: np.ndarray,
    weight: np.ndarray,
    means_u: np.ndarray,
    means_t: np.ndarray,
    counts_u: np.ndarray,
    counts_t: np.ndarray,
    emptied: np.ndarray,
) -> None:
    """Raise ValueError where t could not have been part of u (see `subtract`)."""
    u = np.finfo(np.float64).eps / 2
    remaining, su, st = _squares(M2), _squares(M2_u), _squares(M2_t)
    magnitude = su + st + weight[:, None] * delta * delta
    magnitude += 2 * weight[:, None] * np.abs(delta) * (np.abs(means_u) + np.abs(means_t))
    bad = remaining < -_REMOVAL_ULPS * u * magnitude
    bad[emptied] = False
    if emptied.any():
        # Removing all of u's weight leaves nothing: t must then be u itself, up to rounding.
        with np.errstate(divide="ignore", invalid="ignore"):
            spread = np.sqrt(np.maximum(su / counts_u[:, None], st / np.where(counts_t > 0, counts_t, 1.0)[:, None]))
        scale = np.abs(means_u) + np.abs(means_t)
        far = np.abs(delta) > _SAME_SUMMARY_RTOL * spread + _REMOVAL_ULPS * u * scale
        far |= np.abs(su - st) > _SAME_SUMMARY_RTOL * (su + st) + _REMOVAL_ULPS * u * (scale * scale * counts_u[:, None])
        bad |= far & emptied[:, None]
    if bad.any():
        g, i = (int(k) for k in np.argwhere(bad)[0])
        group = "" if M2.shape[0] == 1 else f" (group {g})"
        if emptied[g]:
            raise ValueError(
                f"cannot remove a summary of n={float(counts_t[g]):g} from one of n={float(counts_u[g]):g}{group}: "
                f"it takes all of the weight but is not the same data (the means of variable {i} "
                f"differ by {abs(float(delta[g, i])):.3g})"
            )
        raise ValueError(
            f"cannot remove a summary of n={float(counts_t[g]):g} from one of n={float(counts_u[g]):g}{group}: "
            f"it could not have been part of it (variable {i} would be left with a variance of "
            f"{float(remaining[g, i] / max(float(counts_u[g] - counts_t[g]), 1.0)):.3g})"
        )


def add_row(
    n: float, mean: np.ndarray, M2: np.ndarray, w2: float, row: np.ndarray, weight: float, w2_row: float
) -> Moments | None:
    """Welford's step: one observation of weight `weight` (and ``f a^2`` = `w2_row`) added.

    The pairwise rule with ``nb = weight`` and ``M2b = 0``, as cheaply as numpy allows: this is the
    per-row hot path, so non-finiteness is found by one test of ``delta @ delta`` instead of a
    check of every entry, and M2's update is the outer product of
    ``u = delta * sqrt(n weight / (n + weight))`` (exactly symmetric, one rounding more than
    ``outer(delta, delta) * c``). Arrays are 1-D (scalar data as d = 1).

    Returns None when the row holds NaN or inf or its square overflows: the row kernel then
    applies the NaN policy. A zero weight returns the summary unchanged.
    """
    if weight == 0:
        return n, mean, M2, w2
    if n == 0:
        # The empty side: the row itself, whatever its magnitude (no square is needed).
        if not np.isfinite(row).all():
            return None
        return weight, row.copy(), np.zeros_like(M2), w2_row
    if _compiled.use_row_step(count=False):
        # The same step compiled (the same bits): numpy's seven calls cost about 3 µs at d = 8.
        new_mean, new_M2 = np.empty_like(mean), np.empty_like(M2)
        total = _compiled.kernels().row_step(n, mean, M2, row, weight, new_mean, new_M2)
        return None if total != total else (total, new_mean, new_M2, w2 + w2_row)
    total = n + weight
    delta = row - mean
    # ndarray.dot is the cheapest call numpy offers here (a third of ``@``'s overhead). When it
    # overflows, numpy warns, and the row kernel then refuses the overflow (or, for |delta|
    # within a factor sqrt(2) of the largest square root, computes the still finite result).
    if not math.isfinite(delta.dot(delta)) or not math.isfinite(total):
        return None
    fraction = weight / total
    new_mean = mean + delta * fraction
    u = delta * math.sqrt(n * fraction)
    new_M2 = np.multiply.outer(u, u) if M2.ndim == 2 else u * u
    new_M2 += M2
    return total, new_mean, new_M2, w2 + w2_row


def add_value(n: float, mean: float, M2: float, value: float) -> tuple[float, float, float] | None:
    """`add_row` for one unweighted Python float on scalar data, in plain float arithmetic.

    Returns None when `value` is not finite or its square overflows.
    """
    delta = value - mean
    square = delta * delta
    if not math.isfinite(square):
        return None
    total = n + 1.0
    fraction = 1.0 / total
    return total, mean + delta * fraction, M2 + square * (n * fraction)


def two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``hi, lo`` with ``hi = fl(a + b)`` and ``hi + lo == a + b`` exactly (Knuth's TwoSum)."""
    hi = a + b
    b_part = hi - a
    lo = (a - (hi - b_part)) + (b - b_part)
    return hi, lo


