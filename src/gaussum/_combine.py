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

Every mean is carried as a double-float ``mean + mean_err``: ``mean`` is the correctly rounded
value users see, ``mean_err`` (same shape, float64) the rounding error left in it, with
``|mean_err| <= ulp(mean) / 2``. Each rule computes ``delta`` from both parts (Knuth's two-sum)
and the new mean by error-free transformations (two-sum, and Dekker's two-product, numpy having
no fused multiply-add), so the stored means never feed their rounding (``u |mean|``, large next
to a small spread) into ``delta`` and M2. M2's rounding is relative to itself, harmless once
``delta`` is accurate, in every rule but one: the one-row step adds to a running M2 once per row,
and a stream of N rows would collect ``u sqrt(N)`` of it. `add_row` and `add_value` therefore
carry M2 as a double-float too, ``M2 + M2_err`` renormalised after each step so that ``M2`` stays
the correctly rounded value; every other rule starts from ``M2`` alone (off by at most half an
ulp) and leaves no error.

Conventions: ``mean`` is 1-D of length d; ``M2`` is ``(d, d)`` (full) or ``(d,)`` (diagonal).
Scalar data is handled by the caller as d == 1 with a diagonal M2. Functions never modify their
arguments and may return them unchanged (the n == 0 identity), so callers must treat all arrays
as read-only.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from . import _compiled
from ._moments import consistent_scatter, needs_clipping

__all__ = [
    "Moments",
    "RowStep",
    "Stacked",
    "add_compensated",
    "add_row",
    "add_value",
    "each_row",
    "fast_two_sum",
    "merge_many",
    "merge_packed",
    "merge_pair",
    "merge_segments",
    "mirror_upper",
    "ones",
    "pair_weights",
    "quotient",
    "run_sums",
    "scalar_quotient",
    "segment_sums",
    "subtract",
    "two_product",
    "two_sum",
]

#: ``(n, mean, M2, w2, mean_err)`` of one summary: mean and mean_err of shape (d,).
Moments = tuple[float, np.ndarray, np.ndarray, float, np.ndarray]
#: `Moments` and M2's rounding error (M2's shape): the result of a one-row step.
RowStep = tuple[float, np.ndarray, np.ndarray, float, np.ndarray, np.ndarray]
#: ``(counts, means, M2, w2, mean_errs)`` of g summaries: means and mean_errs of shape (g, d).
Stacked = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]

# Dekker's splitter 2**27 + 1: a float64 times it, minus itself, gives the high 26 bits.
_SPLITTER = 134217729.0


def mirror_upper(M: np.ndarray) -> np.ndarray:
    """Copy the upper triangle onto the lower one, in place, so M is exactly symmetric."""
    d = M.shape[0]
    np.copyto(M, M.T, where=_strictly_lower(d) if d <= _KEPT_MASK_D else np.tri(d, d, -1, dtype=bool))
    return M


#: Widest d whose lower-triangle mask is kept (64 KiB each, 16 of them, 1 MiB at most):
#: np.tril_indices took 13 µs of a 100-row summary at d = 4, the kept mask a tenth of that.
_KEPT_MASK_D = 256


@functools.lru_cache(maxsize=16)
def _strictly_lower(d: int) -> np.ndarray:
    mask = np.tri(d, d, -1, dtype=bool)
    mask.setflags(write=False)
    return mask


def _first_positive(delta: np.ndarray) -> bool:
    """True when the first non-zero entry of delta is positive (or there is none)."""
    nonzero = np.flatnonzero(delta)
    return nonzero.size == 0 or bool(delta[nonzero[0]] > 0)


def _empty(d: int, diagonal: bool) -> Moments:
    return 0.0, np.zeros(d), np.zeros(d if diagonal else (d, d)), 0.0, np.zeros(d)


def _delta(
    mean_a: np.ndarray, err_a: np.ndarray, mean_b: np.ndarray, err_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(mean_b + err_b) - (mean_a + err_a)`` as ``delta, res``: delta rounded, res what it left.

    The stored means differ by their rounding (``u |mean|``) from the exact ones; taking both
    parts gives delta to ``u |delta|``, which is all M2 needs. ``delta(b, a)`` is exactly
    ``-delta(a, b)``, so merges stay commutative to the bit.
    """
    hi, lo = two_sum(mean_b, -mean_a)
    rest = lo + (err_b - err_a)
    delta = hi + rest
    return delta, rest - (delta - hi)


def _step(
    base: np.ndarray, base_err: np.ndarray, delta: np.ndarray, res: np.ndarray, q: Any, q_err: Any
) -> tuple[np.ndarray, np.ndarray]:
    """``base + base_err + (delta + res) (q + q_err)`` as a stored mean and its error.

    The product's rounding (``u |delta| q``, large next to a small merged mean) is kept by
    Dekker's two-product, and the sum's by two-sum: the new mean is right to about u**2 of the
    magnitudes involved, so it rounds to within an ulp of the exact merge of the parts.
    """
    p, p_err = two_product(delta, q)
    hi, lo = two_sum(base, p)
    lo += base_err + (p_err + (res * q + delta * q_err))
    return _renormalised(hi, lo)


def merge_pair(
    n_a: float,
    mean_a: np.ndarray,
    M2_a: np.ndarray,
    w2_a: float,
    err_a: np.ndarray,
    n_b: float,
    mean_b: np.ndarray,
    M2_b: np.ndarray,
    w2_b: float,
    err_b: np.ndarray,
) -> Moments:
    """Combine two summaries of disjoint data by the pairwise rule, means as double-floats.

    An empty side (n == 0) is an exact identity: the other side is returned unchanged.
    """
    if n_b == 0:
        return n_a, mean_a, M2_a, w2_a, err_a
    if n_a == 0:
        return n_b, mean_b, M2_b, w2_b, err_b
    n = n_a + n_b
    delta, res = _delta(mean_a, err_a, mean_b, err_b)
    q, q_err, weight = pair_weights(n_a, n_b)
    # Step from the heavier side: the correction is then the smaller one, and so is its rounding.
    # Ties go to the side whose mean is smaller at the first difference, so a + b == b + a exactly.
    if n_a > n_b or (n_a == n_b and _first_positive(delta)):
        mean, err = _step(mean_a, err_a, delta, res, q, q_err)
    else:
        mean, err = _step(mean_b, err_b, -delta, -res, q, q_err)
    if M2_a.ndim == 2:
        # outer(delta, delta) is exactly symmetric, so M2 stays exactly symmetric.
        # No clipping needed: a sum of scatter matrices keeps Cauchy-Schwarz to rounding, and
        # where a square underflows the check allows what underflow leaves.
        M2 = M2_a + M2_b + np.multiply.outer(delta, delta) * weight
    else:
        M2 = M2_a + M2_b + delta * delta * weight
    return n, mean, M2, w2_a + w2_b, err


def pair_weights(n_a: float, n_b: float) -> tuple[float, float, float]:
    """``q, q_err, weight`` of the pairwise rule for counts ``n_a, n_b > 0``.

    ``q + q_err`` is the lighter side's share ``min(n_a, n_b) / n`` to about u**2 (the step from
    the heavier side's mean is ``delta q``), and ``weight`` multiplies ``outer(delta, delta)``:
    ``max * (min / n)``, not ``n_a n_b / n``, which overflows past 1e154; both keep
    ``a + b == b + a`` exactly.
    """
    n = n_a + n_b
    small, large = (n_a, n_b) if n_a <= n_b else (n_b, n_a)
    q, q_err = scalar_quotient(small, n)
    return q, q_err, large * (small / n)


def merge_packed(n_a: float, fields_a: np.ndarray, n_b: float, fields_b: np.ndarray, d: int) -> np.ndarray | None:
    """`merge_pair` of two non-empty packed summaries by the compiled kernel, when it runs.

    `fields_a` and `fields_b` are ``[mean, mean_err, M2 raveled]`` of d variables (the packed
    layout of `GaussianSummary`); the result is the merge's fields in that layout, read-only,
    with the same bits as `merge_pair`'s. None when the compiled kernels are not in use (a stream
    of merges loads them after `gaussum._compiled.SMALL_STEPS_AFTER` steps) or when the mean or a
    variance of the result is not finite: the numpy rule then runs and reports it. (The caller
    checks the counts and w2, which the kernel does not see.)
    """
    if not _compiled.use_small_steps():
        return None
    q, q_err, weight = pair_weights(n_a, n_b)
    out = np.empty(fields_a.shape[0])
    if not _compiled.kernels().merge_pair_packed(n_a, fields_a, n_b, fields_b, d, q, q_err, weight, out):
        return None
    out.setflags(write=False)
    return out


def merge_many(ns: np.ndarray, means: np.ndarray, M2s: np.ndarray, w2s: np.ndarray, errs: np.ndarray) -> Moments:
    """Combine k summaries at once by the k-way rule: `merge_segments` with one run.

    Parameters
    ----------
    ns : ndarray, shape (k,)
        Counts; zero counts are ignored.
    means : ndarray, shape (k, d)
    M2s : ndarray, shape (k, d, d) or (k, d)
    w2s : ndarray, shape (k,)
    errs : ndarray, shape (k, d)
        The rounding errors of the means.
    """
    keep = ns > 0
    if not keep.all():
        # A summary of no weight adds nothing, whatever its (possibly NaN) fields hold.
        ns, means, M2s, w2s, errs = ns[keep], means[keep], M2s[keep], w2s[keep], errs[keep]
    if ns.size == 0:
        return _empty(means.shape[1], M2s.ndim == 2)
    if ns.size == 1:
        return float(ns[0]), means[0].copy(), M2s[0].copy(), float(w2s[0]), errs[0].copy()
    n, mean, M2, w2, err = merge_segments(ns, means, M2s, w2s, errs, np.zeros(1, dtype=np.intp))
    return float(n[0]), mean[0], M2[0], float(w2[0]), err[0]


def _weighted_products(ns: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``two_product(ns[:, None], offsets)``, cheaper for whole counts below 2**26 (the usual case).

    Such a count is its own high part in Dekker's split (26 bits), so only the offsets are split.
    """
    weights = ns[:, None]
    if not ((ns < 2.0**26).all() and (ns == np.floor(ns)).all()):
        return two_product(weights, offsets)
    p = weights * offsets
    hi, lo = _split(offsets)
    return p, (weights * hi - p) + weights * lo


def segment_sums(values: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sums over the runs of rows of `values` (p, d) as ``hi, lo``: hi + lo right to about u**2.

    Rump, Ogita and Oishi's extraction (AccSum, 2008): with ``sigma`` a power of two at least
    ``(run length + 2) max |value|``, ``(sigma + v) - sigma`` keeps the leading bits of each value
    on one grid, so the sums of those parts are exact in any order; the small remainders are
    summed in float64, their rounding ``u**2`` of the largest value. A run whose ``sigma``
    overflows is summed plainly.
    """
    if starts.size == 1:  # one run (merge_many, the row kernel's blocks): no gathers, no reduceat
        hi, lo = run_sums(values)
        return hi[None], lo[None]
    largest = np.maximum.reduceat(np.abs(values), starts)
    exponent = np.frexp(largest)[1] + np.ceil(np.log2(sizes + 2.0)).astype(np.int64)[:, None]
    sigma = np.repeat(np.ldexp(1.0, exponent), sizes, axis=0)  # np.repeat: 9x faster than a gather
    head = (values + sigma) - sigma
    hi = np.add.reduceat(head, starts)
    lo = np.add.reduceat(values - head, starts)
    if not (np.isfinite(hi).all() and np.isfinite(lo).all()):
        plain = np.add.reduceat(values, starts)
        bad = ~(np.isfinite(hi) & np.isfinite(lo))
        hi, lo = np.where(bad, plain, hi), np.where(bad, 0.0, lo)
    return hi, lo


def run_sums(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The column sums of `values` (k, d) as ``hi, lo``, right to about u**2: `segment_sums` for one run.

    ``sigma`` comes from each column's largest magnitude (a looser bound would leave larger
    remainders, whose rounded sum is then less accurate). The heads' sums are BLAS products with
    a vector of ones, exact in any order; the remainders are summed as numpy sums them: pairwise
    when the columns are contiguous (`values` the transpose of a C-ordered array), which keeps
    the remainders' rounding near u log k, not u k.
    """
    k = values.shape[0]
    with np.errstate(all="ignore"):
        head = np.empty_like(values)  # in the layout of `values`
        largest = np.abs(values, out=head).max(axis=0)
        sigma = np.ldexp(1.0, np.frexp(largest)[1] + math.ceil(math.log2(k + 2)))
        if head.flags.c_contiguous:
            each_row(np.add, values, sigma, head)
            each_row(np.subtract, head, sigma, head)
        else:  # sigma is constant along each contiguous column: one inner loop per column
            np.add(values, sigma, out=head)
            head -= sigma
        hi: np.ndarray = ones(k) @ head
        np.subtract(values, head, out=head)
        lo: np.ndarray = head.sum(axis=0)
        if not (np.isfinite(hi).all() and np.isfinite(lo).all()):  # sigma overflowed: plain sums
            plain = values.sum(axis=0)
            bad = ~(np.isfinite(hi) & np.isfinite(lo))
            hi, lo = np.where(bad, plain, hi), np.where(bad, 0.0, lo)
    return hi, lo


# The longest vector of ones kept by `ones` (2 MiB).
_KEPT_ONES = 2**18
_ones = np.ones(0)


def ones(k: int) -> np.ndarray:
    """A read-only vector of k ones, for column sums by BLAS (``ones(k) @ Y``).

    A fresh vector per block is memory the kernel maps and faults in page by page (measured: 0.8 ms
    for the 2 MiB of a 262,144-row block, against 0.03 ms for the product itself), so one vector
    of up to `_KEPT_ONES` ones is kept and sliced.
    """
    global _ones
    if k > _KEPT_ONES:
        return np.ones(k)
    kept = _ones
    if kept.size < k:
        kept = np.ones(max(k, min(2 * kept.size, _KEPT_ONES)))
        kept.flags.writeable = False
        _ones = kept  # replaced whole: a thread still reading the old one is unaffected
    return kept[:k]


# Values per inner loop of `each_row`.
_ROW_VALUES = 512


def each_row(operation: np.ufunc, a: np.ndarray, row: np.ndarray, out: np.ndarray) -> None:
    """``out = operation(a, row)`` with `row` (d,) applied to every row of `a` (k, d); out C-contiguous.

    numpy runs a broadcast row as one inner loop per row, whose overhead dominates below a few
    dozen values (measured: 0.33 ms against 0.11 for 65,536 x 4; equal at d = 32): rows are
    taken `_ROW_VALUES` values at a time, against the row repeated to match.
    """
    k, d = a.shape
    m = _ROW_VALUES // d
    if d == 1 or m < 16 or k < 2 * m:  # one value per row is one loop already; long rows need no help
        operation(a, row, out=out)
        return
    cut = k - k % m
    operation(a[:cut].reshape(-1, m * d), np.tile(row, m), out=out[:cut].reshape(-1, m * d))
    if cut < k:
        operation(a[cut:], row, out=out[cut:])


def merge_segments(
    ns: np.ndarray, means: np.ndarray, M2s: np.ndarray, w2s: np.ndarray, errs: np.ndarray, starts: np.ndarray
) -> Stacked:
    """Combine consecutive runs of summaries by the k-way rule, one result per run.

    Relative to the mean of the heaviest summary of each run (the first, on ties), with offsets
    ``o_k = m_k - reference`` (taken from both parts of each double-float mean)::

        mean = reference + sum(n_k o_k) / n
        M2   = sum(M2_k) + sum(n_k e_k e_k^T) - c c^T / n

    where ``e_k`` are the deviations from the pooled mean and ``c = sum(n_k e_k)``: zero in exact
    arithmetic, so subtracting ``c c^T / n`` removes the rounding left in the pooled mean (the
    correction of the corrected two-pass algorithm, applied to summaries instead of rows).
    ``sum(n_k o_k)`` is taken without rounding error (two-products, and `segment_sums`), so the
    pooled mean and its error are right to about u**2. A run of one summary comes back with the
    same values; a run of no weight comes back empty (zero mean and M2). M2 is exactly symmetric
    when every ``M2_k`` is.

    Parameters
    ----------
    ns : ndarray, shape (p,)
        Counts (weights), >= 0; a summary of count 0 must have zero M2.
    means : ndarray, shape (p, d)
    M2s : ndarray, shape (p, d, d) or (p, d)
    w2s : ndarray, shape (p,)
    errs : ndarray, shape (p, d)
        The rounding errors of the means.
    starts : ndarray of int, shape (r,)
        Index of the first summary of each run: ``starts[0] == 0``, strictly increasing.

    Returns
    -------
    n (r,), mean (r, d), M2 (r, d, d) or (r, d), w2 (r,), mean_err (r, d)
    """
    p = ns.size
    sizes = np.diff(np.append(starts, p))
    n = np.add.reduceat(ns, starts)
    # Each run's values for each of its rows: broadcast as they are when there is one run (merge_all
    # of 10,000 shards: a gather of (p, d) rows was 2.7 ms of 17).
    one_run = starts.size == 1

    def per_row(values: np.ndarray) -> np.ndarray:
        return values if one_run else np.repeat(values, sizes, axis=0)

    position = np.where(ns == per_row(np.maximum.reduceat(ns, starts)), np.arange(p), p)
    heaviest = np.minimum.reduceat(position, starts)
    reference, reference_err = means[heaviest], errs[heaviest]
    offsets, offsets_res = _delta(per_row(reference), per_row(reference_err), means, errs)
    safe_n = np.where(n > 0, n, 1.0)
    weights = ns[:, None]
    products, products_err = _weighted_products(ns, offsets)
    total, total_err = segment_sums(products, starts, sizes)
    total_err += finite_or_zero(np.add.reduceat(products_err + weights * offsets_res, starts))
    shift, shift_err = fast_two_sum(*quotient(total, total_err, safe_n[:, None]))
    deviations = offsets - per_row(shift)
    weighted = weights * deviations
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
    hi, lo = two_sum(reference, shift)
    lo += reference_err + shift_err
    mean, err = _renormalised(hi, lo)
    w2 = np.add.reduceat(w2s, starts)
    empty = n == 0
    if empty.any():
        mean[empty] = 0.0
        M2[empty] = 0.0
        w2[empty] = 0.0
        err[empty] = 0.0
    return n, mean, M2, w2, err


def subtract(
    counts_u: np.ndarray,
    means_u: np.ndarray,
    M2_u: np.ndarray,
    w2_u: np.ndarray,
    errs_u: np.ndarray,
    counts_t: np.ndarray,
    means_t: np.ndarray,
    M2_t: np.ndarray,
    w2_t: np.ndarray,
    errs_t: np.ndarray,
) -> Stacked:
    """Remove summaries t from summaries u, group by group, where each t summarises part of u's data.

    The inverse of the pairwise rule: if ``u = r + t`` then ``subtract(u, t) == r`` up to
    rounding. Arrays are stacked over g groups (means and their errors ``(g, d)``, M2 ``(g, d, d)``
    or ``(g, d)``); the remaining mean is taken from both parts of each mean, as in `merge_pair`.
    Cancellation makes the result lose accuracy in proportion to how much of u is removed.
    Rounding is bounded by `_REMOVAL_ULPS` units of the magnitudes that enter each remaining
    variance, ``M2u_ii + M2t_ii + w delta_i^2``, plus the rounding of the stored means carried
    through ``delta`` (``2 w |delta_i| (|mean_u_i| + |mean_t_i|)``) (`_removal_rounding`,
    `_means_rounding`): a remainder more negative than that, or a t that takes all of u's weight
    without having u's mean and spread, cannot have been part of u. A remaining variance within
    the removal's own rounding (the first part) of zero, either side, is set to zero with its
    covariances.

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
    delta, res = _delta(means_u, errs_u, means_t, errs_t)
    # mean = mean_u - delta n_t / n, the product and the sum kept exactly as in `merge_pair`.
    q, q_err = quotient(np.where(removed, counts_t, 0.0), np.zeros(n.shape), safe_n)
    mean, err = _step(means_u, errs_u, -delta, -res, q[:, None], q_err[:, None])
    weight = np.where(removed, counts_u * (counts_t / safe_n), 0.0)
    diagonal = M2_u.ndim == 2
    if diagonal:
        M2 = M2_u - M2_t - delta * delta * weight[:, None]
    else:
        M2 = M2_u - M2_t - (delta[:, :, None] * delta[:, None, :]) * weight[:, None, None]
    noise = _removal_rounding(M2_u, M2_t, delta, weight)
    lenient = noise + _means_rounding(delta, weight, means_u, means_t)
    _check_removable(M2, M2_u, M2_t, delta, means_u, means_t, counts_u, counts_t, emptied & (counts_t > 0), lenient)
    # A remaining variance within the rounding of the removal itself (below zero, or above it by
    # no more than that) is indistinguishable from none: the variable has none left, and its
    # covariances are rounding residue too. Zeroing its row and column keeps M2 positive
    # semi-definite, which clipping each covariance alone does not (three variables' residues can
    # be pairwise bounded and still not a scatter matrix). (Not the lenient bound that refuses a
    # removal: the compensated means make delta accurate, and a small remainder far from zero is
    # real.)
    if diagonal:
        M2[M2 <= noise] = 0.0
    else:
        vanished = np.diagonal(M2, axis1=1, axis2=2) <= noise
        if vanished.any():
            group, var = np.nonzero(vanished)
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
        err[untouched] = errs_u[untouched]
    if emptied.any():
        n = np.where(emptied & ~untouched, 0.0, n)
        mean[emptied & ~untouched] = 0.0
        M2[emptied & ~untouched] = 0.0
        w2[emptied & ~untouched] = 0.0
        err[emptied & ~untouched] = 0.0
    return n, mean, M2, w2, err


#: Units of rounding allowed in a remaining variance before `subtract` calls it impossible.
_REMOVAL_ULPS = 64
#: Relative agreement of mean and spread that `subtract` asks of a t that empties u.
_SAME_SUMMARY_RTOL = 1e-6


def _squares(M2: np.ndarray) -> np.ndarray:
    return np.diagonal(M2, axis1=1, axis2=2) if M2.ndim == 3 else M2


def _removal_rounding(M2_u: np.ndarray, M2_t: np.ndarray, delta: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """`_REMOVAL_ULPS` units of rounding of the magnitudes that enter each remaining variance of
    `subtract`, ``M2u_ii + M2t_ii + w delta_i^2``: shape (g, d)."""
    u = np.finfo(np.float64).eps / 2
    rounding: np.ndarray = _REMOVAL_ULPS * u * (_squares(M2_u) + _squares(M2_t) + weight[:, None] * delta * delta)
    return rounding


def _means_rounding(delta: np.ndarray, weight: np.ndarray, means_u: np.ndarray, means_t: np.ndarray) -> np.ndarray:
    """`_REMOVAL_ULPS` units of what the stored means can carry into a remaining variance through
    ``delta``, ``2 w |delta_i| (|mean_u_i| + |mean_t_i|)``: shape (g, d)."""
    u = np.finfo(np.float64).eps / 2
    rounding: np.ndarray = _REMOVAL_ULPS * u * 2 * weight[:, None] * np.abs(delta) * (np.abs(means_u) + np.abs(means_t))
    return rounding


def _check_removable(
    M2: np.ndarray,
    M2_u: np.ndarray,
    M2_t: np.ndarray,
    delta: np.ndarray,
    means_u: np.ndarray,
    means_t: np.ndarray,
    counts_u: np.ndarray,
    counts_t: np.ndarray,
    emptied: np.ndarray,
    noise: np.ndarray,
) -> None:
    """Raise ValueError where t could not have been part of u (see `subtract`); `noise` is the
    rounding a remainder may show (`_removal_rounding` plus `_means_rounding`)."""
    u = np.finfo(np.float64).eps / 2
    remaining, su, st = _squares(M2), _squares(M2_u), _squares(M2_t)
    bad = remaining < -noise
    bad[emptied] = False
    if emptied.any():
        # Removing all of u's weight leaves nothing: t must then be u itself, up to rounding.
        with np.errstate(divide="ignore", invalid="ignore"):
            spread = np.sqrt(np.maximum(su / counts_u[:, None], st / np.where(counts_t > 0, counts_t, 1.0)[:, None]))
        scale = np.abs(means_u) + np.abs(means_t)
        far = np.abs(delta) > _SAME_SUMMARY_RTOL * spread + _REMOVAL_ULPS * u * scale
        far |= np.abs(su - st) > (
            _SAME_SUMMARY_RTOL * (su + st) + _REMOVAL_ULPS * u * (scale * scale * counts_u[:, None])
        )
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
    n: float,
    mean: np.ndarray,
    M2: np.ndarray,
    w2: float,
    err: np.ndarray,
    row: np.ndarray,
    weight: float,
    w2_row: float,
    M2_err: np.ndarray | None = None,
) -> RowStep | None:
    """Welford's step: one observation of weight `weight` (and ``f a^2`` = `w2_row`) added.

    The pairwise rule with ``nb = weight`` and ``M2b = 0``, as cheaply as numpy allows: this is the
    per-row hot path, so non-finiteness is found by one test of ``delta @ delta`` instead of a
    check of every entry, and M2's update is the outer product of
    ``u = delta * sqrt(n weight / (n + weight))`` (exactly symmetric, one rounding more than
    ``outer(delta, delta) * c``). Arrays are 1-D (scalar data as d = 1).

    The mean is a double-float: ``delta = (row - mean) - err`` (``row - mean`` is exact for a row
    near the mean, Sterbenz), and ``mean + (err + delta w / n)`` is kept with its rounding by
    two-sum, so a long stream keeps its mean within an ulp where a plain Welford step drifts by
    tens of ulps (each step rounds to ``u |mean|``, and that error enters every later delta).
    M2 is a double-float here too (`M2_err`, None for zeros): the running sum of a stream
    would otherwise keep each step's rounding, ``u sqrt(N / 3)`` after N rows; its two-sum with
    the new term, renormalised, leaves ``M2`` correctly rounded and ``|M2_err| <= ulp(M2) / 2``.

    Returns ``(n, mean, M2, w2, mean_err, M2_err)``, or None when the row holds NaN or inf or
    its square or M2 overflows: the row kernel then applies the NaN policy (or refuses the
    overflow). A zero weight returns the summary unchanged.
    """
    if M2_err is None:
        M2_err = np.zeros_like(M2)
    if weight == 0:
        return n, mean, M2, w2, err, M2_err
    if n == 0:
        # The empty side: the row itself, whatever its magnitude (no square is needed).
        if not np.isfinite(row).all():
            return None
        return weight, row.copy(), np.zeros_like(M2), w2_row, np.zeros_like(mean), np.zeros_like(M2)
    if _compiled.use_small_steps(count=False):
        # The same step compiled (the same bits): numpy's calls cost about 3 µs at d = 8.
        new_mean, new_M2, new_err, new_M2_err = (
            np.empty_like(mean), np.empty_like(M2), np.empty_like(mean), np.empty_like(M2)
        )
        total = _compiled.kernels().row_step(
            n, mean, M2, err, M2_err, row, weight, new_mean, new_M2, new_err, new_M2_err
        )
        return None if total != total else (total, new_mean, new_M2, w2 + w2_row, new_err, new_M2_err)
    total = n + weight
    delta = row - mean
    delta -= err
    # ndarray.dot is the cheapest call numpy offers here (a third of ``@``'s overhead). When it
    # overflows, numpy warns, and the row kernel then refuses the overflow (or, for |delta|
    # within a factor sqrt(2) of the largest square root, computes the still finite result).
    if not math.isfinite(delta.dot(delta)) or not math.isfinite(total):
        return None
    fraction = weight / total
    step = delta * fraction
    step += err
    # Two-sum's hi is the rounded sum and lo its exact error: already the stored form.
    new_mean, new_err = two_sum(mean, step)
    u = delta * math.sqrt(n * fraction)
    term = np.multiply.outer(u, u) if M2.ndim == 2 else u * u
    new_M2, new_M2_err = add_compensated(M2, M2_err, term)
    # A finite term can still take an entry past 1.8e308: its error is then NaN or inf, and a
    # sum of finite errors (each below half an ulp of an entry) cannot overflow.
    if not math.isfinite(new_M2_err.sum()):
        return None
    return total, new_mean, new_M2, w2 + w2_row, new_err, new_M2_err


def add_compensated(hi: Any, lo: Any, term: Any) -> tuple[Any, Any]:
    """The double-float ``hi + lo`` plus `term`, renormalised: ``(s, e)`` with ``s`` the correctly
    rounded sum and ``|e| <= ulp(s) / 2``, right to about ``u**2`` of the larger operand.

    Two two-sums: the first keeps what ``hi + term`` rounds off, the second folds it with `lo`
    back into a rounded value and its error (a full two-sum: after cancellation in an
    off-diagonal entry, the error may exceed the sum).
    """
    s, e = two_sum(hi, term)
    e += lo
    return two_sum(s, e)


def add_value(
    n: float, mean: float, M2: float, err: float, M2_err: float, value: float
) -> tuple[float, float, float, float, float] | None:
    """`add_row` for one unweighted Python float on scalar data, in plain float arithmetic.

    Returns ``(n, mean, M2, mean_err, M2_err)``, or None when `value` is not finite or its square
    or M2 overflows (one test at the end: NaN or inf anywhere reaches M2's new error). The same
    operations as `add_row`, so the same bits as ``update(np.float64(value))``.
    """
    delta = (value - mean) - err
    total = n + 1.0
    fraction = 1.0 / total
    step = delta * fraction + err
    hi = mean + step
    part = hi - mean
    # add_compensated, written out. M2 and the term are never negative, so each two-sum may be
    # Dekker's fast one, the larger operand first (|s| >= |e| in the second); the same values.
    u = delta * math.sqrt(n * fraction)  # add_row's term, rounded as there: the same bits
    term = u * u
    s = M2 + term
    e = ((term - (s - M2)) if M2 >= term else (M2 - (s - term))) + M2_err
    total_M2 = s + e
    M2_err = e - (total_M2 - s)
    if not math.isfinite(M2_err):  # as in add_row; NaN and inf anywhere above reach it too
        return None
    return total, hi, total_M2, (mean - (hi - part)) + (step - part), M2_err


def two_sum(a: Any, b: Any) -> tuple[Any, Any]:
    """``hi, lo`` with ``hi = fl(a + b)`` and ``hi + lo == a + b`` exactly (Knuth's TwoSum)."""
    hi = a + b
    b_part = hi - a
    lo = (a - (hi - b_part)) + (b - b_part)
    return hi, lo


def fast_two_sum(a: Any, b: Any) -> tuple[Any, Any]:
    """``hi, lo`` with ``hi = fl(a + b)`` and ``hi + lo == a + b`` exactly, where ``|a| >= |b|`` (Dekker)."""
    hi = a + b
    return hi, b - (hi - a)


def _split(a: Any) -> tuple[Any, Any]:
    """``hi, lo == a - hi`` with hi of at most 26 significant bits (Veltkamp's split)."""
    t = _SPLITTER * a
    hi = t - (t - a)
    return hi, a - hi


def two_product(a: Any, b: Any) -> tuple[Any, Any]:
    """``p, e`` with ``p = fl(a b)`` and ``p + e == a b`` exactly (Dekker's product, no fma needed).

    Exact unless a product or a split overflows (values past about 1e300) or underflows; the
    error term is then not finite or not exact, and callers treat it as 0.
    """
    p = a * b
    a_hi, a_lo = _split(a)
    b_hi, b_lo = _split(b)
    return p, ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


_fma = getattr(math, "fma", None)  # Python 3.13+


def scalar_quotient(a: float, n: float, lo: float = 0.0) -> tuple[float, float]:
    """`quotient` for Python floats: ``(a + lo) / n`` as ``q, e``, with ``q = fl(a / n)``.

    The same operations as `quotient` (``a - fl(q n)`` is exact, taken by fma where Python has
    it, which gives the same value), so the same bits, at a tenth of its cost for one value.
    """
    q = a / n
    if _fma is not None:
        return q, (-_fma(q, n, -a) + lo) / n
    p, e = two_product(q, n)
    r = (((a - p) - e) + lo) / n
    if not math.isfinite(r):  # n past 1e300 overflows the split: keep only lo's share
        r = lo / n if math.isfinite(lo / n) else 0.0
    return q, r


def quotient(hi: np.ndarray, lo: np.ndarray, n: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(hi + lo) / n`` as ``q, e`` with ``q = fl(hi / n)`` and ``q + e`` right to about u**2.

    ``hi - fl(q n)`` is exact (Sterbenz), and ``q n - fl(q n)`` is Dekker's product error.
    """
    q = hi / n
    p, e = two_product(q, n)
    r = (((hi - p) - e) + lo) / n
    if not np.isfinite(r).all():  # n past 1e300 overflows the split: keep only lo's share
        with np.errstate(all="ignore"):
            r = np.where(np.isfinite(r), r, finite_or_zero(lo / n))
    return q, r


def finite_or_zero(error: np.ndarray) -> np.ndarray:
    """An error term with its non-finite entries (from an overflowed split or product) set to 0."""
    if np.isfinite(error).all():
        return error
    return np.where(np.isfinite(error), error, 0.0)


def _renormalised(hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``hi + lo`` rounded, and what the rounding left: the stored form ``|err| <= ulp(mean) / 2``.

    ``|lo|`` is at most a few ulps of hi here, so fast two-sum is exact. A non-finite error
    (an overflowed product or split at magnitudes past 1e300) is dropped: the mean is then as
    accurate as plain float64 arithmetic makes it.
    """
    if not np.isfinite(lo).all():
        lo = np.where(np.isfinite(lo), lo, 0.0)
    mean = hi + lo
    err = lo - (mean - hi)
    if not np.isfinite(err).all():  # a mean that overflowed, or NaN from the data
        err = np.where(np.isfinite(err), err, 0.0)
    return mean, err
