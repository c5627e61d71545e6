"""The compiled grouped kernel (numba, ``gaussum[fast]``): one scatter of the rows into per-key sums.

`summarize` is the compiled path of `gaussum._kernel.summarize_groups`. It reads the rows in their
own order, never sorted by key: each row is added into the accumulators of its key (its code from
`gaussum._keys.factorize`), so the extra memory is a few numbers per key and pair of variables
(``keys x d^2``), with no permutation of the rows and no copy of any of them. Two passes, and a
third for some keys:

1. *Shift.* The first row of each key is its provisional shift ``s``; the pass sums ``w (x - s)``
   and ``w`` per key. ``x - s`` is exact (Sterbenz) for a key whose spread is small next to its
   mean, so the key's mean comes out as the two-part shift ``(hi, lo) = two_sum(s, sum / n)``,
   the kind of shift `gaussum._kernel` takes from a block: ``hi`` a float64 near the mean and
   ``lo`` the part of the mean below its last place.
2. *Sums.* ``y = (x - hi) - lo`` per row, then the key's weight, w2, column sums ``c = sum w y``
   and the upper triangle (or diagonal) of ``S = sum w y y^T``: the corrected two-pass algorithm,
   ``M2 = S - c c^T / n``, as on the numpy path, with its re-centring rule (a key whose shift
   sits more than 1/8 of a standard deviation from its mean is summed again about its mean).
3. *Means near zero* (only for the keys that need it, by the numpy path's rule
   `gaussum._kernel._near_zero_segments`): a mean within a few standard deviations of zero is a
   small difference of large terms, so those keys' ``sum w x`` and ``sum w`` are taken again as
   double-floats (`exact_sums`) and the mean comes out right to about u^2, as on the numpy path.

Each key's sums run in chunks of `CHUNK` of its rows, and `CHUNKS` chunks at a time, so a key with
many rows is summed in three levels (rounding error about ``(CHUNK + CHUNKS + rows / (CHUNK CHUNKS)) u``
rather than ``rows u``), as `gaussum._kernel._accurate_column_sums` does for one block.

Speed (1e6 rows x 8 variables, 10,000 keys, one core; see the README): the time goes to the
read-modify-write of each row's ``d (d + 3) / 2 + 2`` accumulators, which sit in a different cache
line of a table of several MiB for each row. Two things halve it: the accumulators of the row
`_AHEAD` rows on are prefetched (a cache miss then overlaps the arithmetic of the rows between),
and the passes are compiled once per number of variables d (the loops over variables then have
a known length, and are unrolled). Array indices here are always in range
and never negative, so the accesses skip numba's wrap-around of negative indices (`_load`,
`_add_to`).

Importing this module imports numba; `gaussum._kernel` imports it only where the compiled path
applies (`gaussum._compiled.use_rows`). The kernels compile on first call and are cached on disk
(``cache=True``; in memory only, once per process, where no cache directory can be written).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, cast

import numpy as np
from numba import extending, types
from numba.core import cgutils

from . import _compiled
from ._combine import quotient, two_sum
from ._compiled_kernels import _jit  # one home for the cached, nogil decorator

__all__ = ["BLAS_PRODUCTS", "CHUNK", "CHUNKS", "MAX_D", "summarize"]

#: Rows of one key summed before they are added into the key's sum of chunks, and chunks summed
#: there before they are added into its totals: three levels of sums, so rounding grows with
#: ``CHUNK + CHUNKS + rows / (CHUNK CHUNKS)`` rather than with the rows. Measured at offset 1e9
#: (keys of 60 to 400 rows, exact references): M2 within 8u with one level of 256 rows, 5u with
#: 64 x 4, 1.6u with 16 x 16, against the numpy path's 2.6u (pairwise sums); 16 x 16 took 1.5x
#: the time of the sum pass (its flushes touch a second block of accumulators every 16 rows).
CHUNK = 64
CHUNKS = 4
#: Widest data the compiled grouped kernel takes when the path is not forced: measured faster than
#: the numpy path up to d = 64 with 100 rows a key (0.35x its time at 1e4 x 64, 1,000 keys).
MAX_D = 64
#: Past 8 variables, keys of many rows are summed faster by the numpy path, which streams each
#: such key alone through the BLAS row kernel (`gaussum._kernel.summarize_rows`): the compiled
#: path is not taken (unless forced) when the mean rows per key times d^2 reach this. Measured
#: (`benchmarks/bench_grouped.py --crossover`, compiled / numpy time): d = 16 with 1e5 rows a key
#: 1.55, with 1e4 0.93, with 1e3 0.38; d = 32 with 1e4 rows 1.01, with 1e3 0.57; d = 64 with 1e4
#: 1.44, with 1e3 0.95, with 100 0.35. At d <= 8 the compiled path was faster at every size
#: measured from 1e5 values (d = 8, 1e5 rows a key: 0.66).
BLAS_PRODUCTS = 2**20
# Rows between a row and the row whose accumulators are prefetched: measured at 1e6 x 8 with
# 10,000 keys, 8 to 16 rows took 30 ms where no prefetch took 43 and 32 rows took 35.
_AHEAD = 16

# The numpy path's re-centring rule (`gaussum._kernel._MAX_SHIFT_IN_STD`, two passes at most).
_MAX_SHIFT_IN_STD = 1.0 / 8.0
_RECENTRE_PASSES = 2

# numba's annotations of these are partial, and llvmlite has none: typed loosely here.
_intrinsic = cast(Callable[[Callable[..., Any]], Callable[..., Any]], extending.intrinsic)
_get_or_insert_function: Any = cgutils.get_or_insert_function
_get_item_pointer: Any = cgutils.get_item_pointer
ir: Any = importlib.import_module("llvmlite.ir")

_NO_FLOATS = np.empty(0)
_NO_FLAGS = np.empty(0, dtype=np.bool_)


def _pointer(context: Any, builder: Any, array_type: Any, array: Any, row: Any, column: Any) -> Any:
    """Address of ``array[row, column]`` for indices known to be in range and non-negative."""
    view = context.make_array(array_type)(context, builder, array)
    return _get_item_pointer(context, builder, array_type, view, [row, column], wraparound=False)


@_intrinsic
def _load(typingctx: Any, array: Any, row: Any, column: Any) -> Any:
    """``array[row, column]``, without the wrap-around of negative indices."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.load(_pointer(context, builder, signature.args[0], *args))

    return array.dtype(array, row, column), codegen


@_intrinsic
def _add_to(typingctx: Any, array: Any, row: Any, column: Any, value: Any) -> Any:
    """``array[row, column] += value``, without the wrap-around of negative indices."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        address = _pointer(context, builder, signature.args[0], args[0], args[1], args[2])
        builder.store(builder.fadd(builder.load(address), args[3]), address)
        return context.get_dummy_value()

    return types.void(array, row, column, value), codegen


@_intrinsic
def _prefetch(typingctx: Any, array: Any, row: Any, column: Any) -> Any:
    """Ask the processor to bring the cache line of ``array[row, column]`` in, for writing."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        address = _pointer(context, builder, signature.args[0], *args)
        byte_pointer = ir.IntType(8).as_pointer()
        # The intrinsic's name carries the pointer type: typed pointers (LLVM 14) or opaque ones.
        name = "llvm.prefetch.p0" if getattr(byte_pointer, "is_opaque", False) else "llvm.prefetch.p0i8"
        i32 = ir.IntType(32)
        prefetch = _get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]), name
        )
        # (address, write, locality: keep in all levels, data cache)
        builder.call(prefetch, [builder.bitcast(address, byte_pointer), i32(1), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, row, column), codegen


@_jit()
def shift_pass(X: Any, w: Any, codes: Any, keep: Any, first: Any, sizes: Any, variables: Any) -> None:
    """Per key k: its first row ``s`` into ``first[k, :d]``, ``sum w`` into ``first[k, d]``, ``sum w (x - s)`` after it.

    Counts each key's rows into `sizes` (zeros on entry). ``variables`` is a tuple of d zeros:
    its length, known when the function is compiled, makes the loops over variables of known
    length (the function is compiled once per d).
    """
    N = X.shape[0]
    d = len(variables)
    weighted = w.shape[0] > 0
    masked = keep.shape[0] > 0
    for r in range(N):
        if masked and not keep[r]:
            continue
        k = codes[r]
        if r + _AHEAD < N:
            ahead = codes[r + _AHEAD]
            for e in range(0, 2 * d + 1, 8):  # a cache line holds 8 float64
                _prefetch(first, ahead, e)
        sizes[k] += 1
        if sizes[k] == 1:
            for i in range(d):
                first[k, i] = _load(X, r, i)
        wr = w[r] if weighted else 1.0
        _add_to(first, k, d, wr)
        for i in range(d):
            deviation = _load(X, r, i) - _load(first, k, i)
            _add_to(first, k, d + 1 + i, deviation * wr if weighted else deviation)


@_jit()
def sum_pass(
    X: Any,
    w: Any,
    q: Any,
    codes: Any,
    keep: Any,
    active: Any,
    diagonal: bool,
    sums: Any,
    rows_in_chunk: Any,
    totals: Any,
    variables: Any,
) -> None:
    """Per key k (the `active` ones, all if empty): ``n, w2, c, S`` of its rows about its shift, added to ``totals[k]``.

    ``sums[k]`` holds the shift ``hi (d), lo (d)``, then the sums of the key's current chunk of
    rows, ``n, w2, c (d)`` and the packed scatter, then the same sums of its last `CHUNKS` chunks;
    ``totals[k]`` the same sums again, of all earlier rows. Weights ``w`` and
    ``q`` have length 0 for ones and for ``q = w``; ``keep`` (the rows) and ``active`` (the
    keys) have length 0 for all. ``variables``: as for `shift_pass`.
    """
    N = X.shape[0]
    d = len(variables)
    width = totals.shape[1]
    start = 2 * d  # where the chunk's sums begin in a row of `sums`
    middle = start + width  # where its sum of chunks begins
    weighted = w.shape[0] > 0
    has_q = q.shape[0] > 0
    masked = keep.shape[0] > 0
    some = active.shape[0] > 0
    y = np.empty(d)
    for r in range(N):
        if masked and not keep[r]:
            continue
        k = codes[r]
        if some and not active[k]:
            continue
        if r + _AHEAD < N:
            ahead = codes[r + _AHEAD]
            for e in range(0, middle, 8):  # a cache line holds 8 float64
                _prefetch(sums, ahead, e)
        # No fastmath anywhere here: (x - hi) - lo must not become x - (hi + lo), which rounds
        # the two-part shift back to one float64.
        for i in range(d):
            y[i] = (_load(X, r, i) - _load(sums, k, i)) - _load(sums, k, d + i)
        wr = w[r] if weighted else 1.0
        if weighted:  # unweighted, a chunk's n and w2 are its number of rows, set when it is added
            _add_to(sums, k, start, wr)
            _add_to(sums, k, start + 1, q[r] if has_q else wr)
        entry = start + 2 + d
        for i in range(d):
            yw = y[i] * wr if weighted else y[i]
            _add_to(sums, k, start + 2 + i, yw)
            if diagonal:
                _add_to(sums, k, entry, yw * y[i])
                entry += 1
            else:
                for j in range(i, d):
                    _add_to(sums, k, entry, yw * y[j])
                    entry += 1
        rows_in_chunk[k] += 1
        if rows_in_chunk[k] % CHUNK == 0:
            if not weighted:
                sums[k, start] = sums[k, start + 1] = CHUNK
            for e in range(width):  # the chunk into the key's running sum of chunks
                sums[k, middle + e] += sums[k, start + e]
                sums[k, start + e] = 0.0
            if rows_in_chunk[k] == CHUNK * CHUNKS:
                rows_in_chunk[k] = 0
                for e in range(width):  # that sum into the totals
                    totals[k, e] += sums[k, middle + e]
                    sums[k, middle + e] = 0.0
    for k in range(totals.shape[0]):
        if rows_in_chunk[k] and not (some and not active[k]):
            if not weighted:
                sums[k, start] = sums[k, start + 1] = rows_in_chunk[k] % CHUNK
            rows_in_chunk[k] = 0
            for e in range(width):
                totals[k, e] += sums[k, middle + e] + sums[k, start + e]
                sums[k, middle + e] = 0.0
                sums[k, start + e] = 0.0


@_jit()
def exact_sums(X: Any, w: Any, codes: Any, keep: Any, which: Any, out: Any, variables: Any) -> None:
    """Per key k of `which`: ``sum w x`` and ``sum w`` each as a double-float ``hi, lo``, into ``out[k]``.

    ``out[k]`` is ``hi (d), lo (d), n_hi, n_lo``. Each product ``w x`` is split exactly (Dekker's
    product, `gaussum._combine.two_product`) and added by Knuth's two-sum, whose errors are summed
    in ``lo``: the sums come out right to about u^2 of the sum of magnitudes (Ogita, Rump and
    Oishi's Sum2), which is what a mean near zero, a small difference of large terms, needs.
    """
    N = X.shape[0]
    d = len(variables)
    weighted = w.shape[0] > 0
    masked = keep.shape[0] > 0
    splitter = 134217729.0  # 2**27 + 1: Veltkamp's split into two halves of 26 bits
    for r in range(N):
        if masked and not keep[r]:
            continue
        k = codes[r]
        if not which[k]:
            continue
        wr = w[r] if weighted else 1.0
        for i in range(d + 1):
            x = 1.0 if i == d else _load(X, r, i)
            if weighted and i < d:
                value = x * wr
                t = splitter * x
                x_hi = t - (t - x)
                x_lo = x - x_hi
                t = splitter * wr
                w_hi = t - (t - wr)
                w_lo = wr - w_hi
                error = ((x_hi * w_hi - value) + x_hi * w_lo + x_lo * w_hi) + x_lo * w_lo
            else:
                value = wr if i == d else x
                error = 0.0
            hi_at = 2 * d if i == d else i
            lo_at = 2 * d + 1 if i == d else d + i
            total = out[k, hi_at]
            new = total + value
            part = new - total
            out[k, lo_at] += ((total - (new - part)) + (value - part)) + error
            out[k, hi_at] = new


@_jit()
def scatter_matrices(totals: Any, variables: Any, out: Any) -> None:
    """Each key's full symmetric ``M2 = S - c c^T / n`` into ``out[k]``, from its `totals` row ``n, w2, c, S (packed)``.

    As the numpy path finishes (`gaussum._kernel._packed_M2`, `_unpack` and
    `gaussum._moments.consistent_scatter`), one key at a time: variances clipped at 0, then each
    covariance clipped to ``sqrt(M2_ii) sqrt(M2_jj)`` (NaN where that bound is NaN, as
    ``np.clip`` gives); zero for a key of no weight.
    """
    d = len(variables)
    for k in range(totals.shape[0]):
        n = totals[k, 0]
        if n == 0.0:
            for i in range(d):
                for j in range(d):
                    out[k, i, j] = 0.0
            continue
        entry = 2 + d
        for i in range(d):
            for j in range(i, d):
                value = totals[k, entry] - totals[k, 2 + i] * totals[k, 2 + j] / n
                entry += 1
                if i == j and value < 0.0:
                    value = 0.0
                out[k, i, j] = value
        for i in range(d):
            for j in range(i + 1, d):
                bound = np.sqrt(out[k, i, i]) * np.sqrt(out[k, j, j])
                value = out[k, i, j]
                if bound != bound:
                    value = np.nan
                elif value > bound:
                    value = bound
                elif value < -bound:
                    value = -bound
                out[k, i, j] = value
                out[k, j, i] = value


def summarize(
    X: np.ndarray,
    weights: tuple[np.ndarray | None, np.ndarray | None],
    codes: np.ndarray,
    g: int,
    diagonal: bool,
    keep: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Per-key ``counts, means, M2, w2, mean_errs`` of the rows of X, as `gaussum._kernel._propagating_groups`; or None.

    Parameters
    ----------
    X : ndarray, shape (N, d)
    weights : (w, q)
        From `gaussum._kernel.row_weights`.
    codes : ndarray of int, shape (N,)
        The key (``0..g-1``) of each row.
    g : int
        Number of keys.
    diagonal : bool
    keep : ndarray of bool, shape (N,), optional
        The rows to use (all when None).

    Returns
    -------
    counts (g,), means (g, d), M2 (g, d, d) or (g, d), w2 (g,), mean_errs (g, d); or None
        ``mean_errs`` is the rounding error of each mean (``means + mean_errs`` is the mean in
        double-float; zero for keys of no weight).
        None where the numpy path must run: X is not float64 in C or Fortran order, is wider than
        `MAX_D` or has keys of many rows for its width (`BLAS_PRODUCTS`; neither applies when the
        compiled path is forced), or its sums came out non-finite although
        every row used is finite (an overflow, which the numpy path reports in its words). NaN
        or inf in a row propagates to its key, as on the numpy path, whose caller then applies
        the NaN policy. Keys of no weight have zero mean, M2 and w2.
    """
    from . import _kernel  # here, not at the top: `_kernel` imports this module

    N, d = X.shape
    if not (type(X) is np.ndarray and X.dtype == np.float64 and N and g and d):
        return None
    if not (X.flags.c_contiguous or X.flags.f_contiguous):
        return None
    if _compiled._mode != "compiled" and (d > MAX_D or (d > 8 and N * d * d >= BLAS_PRODUCTS * g)):
        return None
    w, q = weights
    w_rows = _NO_FLOATS if w is None else np.ascontiguousarray(w, dtype=np.float64)
    q_rows = _NO_FLOATS if q is None else np.ascontiguousarray(q, dtype=np.float64)
    keep_rows = _NO_FLAGS if keep is None else np.ascontiguousarray(keep, dtype=np.bool_)
    codes = np.ascontiguousarray(codes, dtype=np.intp)
    products = d if diagonal else d * (d + 1) // 2
    width = 2 + d + products
    variables = (0,) * d
    sums = np.zeros((g, 2 * d + 2 * width))
    with np.errstate(all="ignore"):
        sizes = np.zeros(g, dtype=np.intp)  # rows of each key
        totals = np.zeros((g, width))  # the shift pass's sums first: ``2 d + 1 <= width``
        shift_pass(X, w_rows, codes, keep_rows, totals, sizes, variables)
        n_first = totals[:, d : d + 1]
        fine = totals[:, d + 1 : 2 * d + 1] / np.where(n_first > 0, n_first, 1.0)
        hi, lo = sums[:, :d], sums[:, d : 2 * d]
        hi[:], lo[:] = two_sum(totals[:, :d], fine)
        del fine
        totals[:] = 0.0
        rows_in_chunk = np.zeros(g, dtype=np.intp)
        sum_pass(X, w_rows, q_rows, codes, keep_rows, _NO_FLAGS, diagonal, sums, rows_in_chunk, totals, variables)
        counts = totals[:, 0]
        c, packed = totals[:, 2 : 2 + d], totals[:, 2 + d :]
        has_weight = counts > 0
        safe_n = np.where(has_weight, counts, 1.0)[:, None]
        diag_entries = slice(None) if diagonal else _kernel._upper(d)[2]
        for _ in range(_RECENTRE_PASSES):
            offset = c / safe_n
            far = (offset * offset * safe_n > _MAX_SHIFT_IN_STD**2 * packed[:, diag_entries]).any(axis=1)
            far &= np.isfinite(offset).all(axis=1) & has_weight
            if not far.any():
                break
            # Rare: the shift is each key's own mean already. Only the far keys are summed again.
            hi[far], lo[far] = two_sum(hi[far], lo[far] + offset[far])
            totals[far] = 0.0
            sum_pass(X, w_rows, q_rows, codes, keep_rows, far, diagonal, sums, rows_in_chunk, totals, variables)
        del rows_in_chunk
        # As `gaussum._kernel._segment_moments` and `_packed_M2` finish, key by key.
        means, mean_errs = _mean(hi, lo, c, safe_n)
        del sums, hi, lo
        squares = packed - c * c / safe_n if diagonal else packed[:, diag_entries] - c * c / safe_n
        _refine_means_near_zero(X, w_rows, codes, keep_rows, counts, sizes, squares, means, mean_errs, variables)
        del squares
        if diagonal:
            M2 = packed - c * c / safe_n
            np.maximum(M2, 0.0, out=M2)
        else:
            M2 = np.empty((g, d, d))
            scatter_matrices(totals, variables, M2)
        counts, w2 = totals[:, 0].copy(), totals[:, 1].copy()
        del totals, c, packed
    empty = ~has_weight
    if empty.any():
        means[empty] = 0.0
        M2[empty] = 0.0
        w2[empty] = 0.0
        mean_errs[empty] = 0.0
    stack = (counts, means, M2, w2, mean_errs)
    if not _kernel._stack_is_finite(*stack) and _rows_are_finite(X, keep_rows):
        return None
    return stack


def _refine_means_near_zero(
    X: np.ndarray,
    w: np.ndarray,
    codes: np.ndarray,
    keep: np.ndarray,
    n: np.ndarray,
    sizes: np.ndarray,
    squares: np.ndarray,
    means: np.ndarray,
    mean_errs: np.ndarray,
    variables: tuple[int, ...],
) -> None:
    """The means (in place) of the keys whose mean is near zero for their spread, by `exact_sums`.

    The keys and the finish are the numpy path's (`gaussum._kernel._near_zero_segments` and
    `_exact_segment_means`): a mean within a few standard deviations of zero is a small difference
    of large terms, which the centred sums leave a few ulps off.
    """
    from . import _kernel

    g, d = means.shape
    near = _kernel._near_zero_segments(means.T, squares.T, n, sizes, d)
    if not near.any():
        return
    sums = np.zeros((g, 2 * d + 2))
    exact_sums(X, w, codes, keep, near, sums, variables)
    sums = sums[near]
    hi, lo = sums[:, :d], sums[:, d : 2 * d]
    if w.size:  # the total weight is a rounded sum too: a double-float, as on the numpy path
        total, total_err = two_sum(sums[:, 2 * d : 2 * d + 1], sums[:, 2 * d + 1 :])
        q, q_err = _kernel._double_quotient(hi, lo, total, total_err)
    else:
        q, q_err = quotient(hi, lo, n[near][:, None])
    exact, exact_err = two_sum(q, q_err)
    kept = np.isfinite(exact) & np.isfinite(exact_err)  # else an overflowed split: keep the two-pass value
    means[near] = np.where(kept, exact, means[near])
    mean_errs[near] = np.where(kept, exact_err, mean_errs[near])


def _mean(hi: np.ndarray, lo: np.ndarray, c: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each key's mean ``hi + lo + c / n`` (n of shape (g, 1)) and its rounding error (`_kernel.mean_from_shift`)."""
    from . import _kernel

    return _kernel.mean_from_shift(hi, lo, c, np.zeros_like(c), n)


def _rows_are_finite(X: np.ndarray, keep: np.ndarray) -> bool:
    """True when every row of X that `keep` selects (all, if empty) is finite, read a block at a time."""
    step = max(1, 2**18 // X.shape[1])
    for start in range(0, X.shape[0], step):
        block = X[start : start + step]
        if keep.size:
            block = block[keep[start : start + step]]
        if not np.isfinite(block).all():
            return False
    return True
