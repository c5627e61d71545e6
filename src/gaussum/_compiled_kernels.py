"""The numba kernels behind `gaussum._compiled`; importing this module imports numba.

Only `gaussum._compiled.kernels` imports it, on first need. Every function is compiled on first
call and cached on disk (``cache=True``); where numba finds no writable cache directory (neither
the package's ``__pycache__`` nor its user-wide one) the kernels are compiled without a cache, once
per process.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np
from numba.np.unsafe import ndarray as numba_arrays

#: numba's intrinsic: the first `length` values of a 1-D array as a tuple (length a literal), so
#: that a loop over them keeps them in registers. Typed Any: mypy sees numba's intrinsic class.
to_fixed_tuple: Any = numba_arrays.to_fixed_tuple

__all__ = ["block_sums", "centre_and_sum", "first_shift", "merge_pair_packed", "row_step", "row_step_packed"]


_Function = TypeVar("_Function", bound=Callable[..., Any])


def _jit(**options: Any) -> Callable[[_Function], _Function]:
    """``numba.njit(cache=True, nogil=True, ...)``, or without the cache where none can be written.

    Typed as returning the function it compiles: a numba dispatcher is called like it.
    """

    def decorate(function: _Function) -> _Function:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", numba.NumbaWarning)
                return cast(_Function, numba.njit(cache=True, nogil=True, **options)(function))
        except RuntimeError:  # "cannot cache function ...: no locator available for file ..."
            return cast(_Function, numba.njit(cache=False, nogil=True, **options)(function))

    return decorate


# Rows centred at a time into the transposed buffer: 256 rows x 16 variables x 8 bytes = 32 KiB
# (twice that when weighted) stays in L1/L2 cache, and 256-term partial sums keep the rounding of
# each chunk near u, as `gaussum._kernel._accurate_column_sums` does on the numpy path.
CHUNK = 256


# No fastmath in the centring: (x - coarse) - fine must not be reassociated into
# x - (coarse + fine), which rounds the two-part shift back to one float64 and loses what it is for.
@_jit()
def _centre(X: Any, start: int, k: int, coarse: Any, fine: Any, out: Any) -> None:
    """``out[:, :k]``: rows ``start:start + k`` of X centred on the two-part shift, transposed."""
    d = X.shape[1]
    for r in range(k):
        for i in range(d):
            out[i, r] = (X[start + r, i] - coarse[i]) - fine[i]


@_jit()
def _centre_narrow(Xf: Any, d: int, start: int, k: int, coarse: Any, fine: Any, out: Any) -> None:
    """`_centre` for d < 8, on X raveled (`Xf`), with the row length a compile-time constant.

    That lets the compiler load whole rows as vectors and split them into the variables' lanes,
    and keep the shift in registers (`to_fixed_tuple`), where a runtime d leaves a scalar load of
    the value and of both parts of the shift, and a store, per value. Measured on 1e6 rows, the
    whole kernel (`block_sums`) then takes 0.45x the time at d = 1, 0.45x at d = 2, 0.6x at
    d = 3 and 4, 0.85-0.9x at d = 5 to 7 and 0.93x at d = 8 (`_centre_eight`, the loop written
    out: as a loop it gained 2%).
    """
    if d == 1:
        c, f = coarse[0], fine[0]
        for r in range(k):
            out[0, r] = (Xf[start + r] - c) - f
    elif d == 2:
        _centre_fixed_rows(Xf, 2, start, k, coarse, fine, out)
    elif d == 3:
        _centre_fixed_rows(Xf, 3, start, k, coarse, fine, out)
    elif d == 4:
        _centre_fixed_rows(Xf, 4, start, k, coarse, fine, out)
    elif d == 5:
        _centre_fixed_rows(Xf, 5, start, k, coarse, fine, out)
    elif d == 6:
        _centre_fixed_rows(Xf, 6, start, k, coarse, fine, out)
    else:
        _centre_fixed_rows(Xf, 7, start, k, coarse, fine, out)


@_jit()
def _centre_fixed_rows(Xf: Any, d: Any, start: int, k: int, coarse: Any, fine: Any, out: Any) -> None:
    """`_centre`'s loop on X raveled, compiled once for each literal d it is called with."""
    numba.literally(d)  # type: ignore[attr-defined]  # public, though not in numba's __all__
    shift, shift_fine = to_fixed_tuple(coarse, d), to_fixed_tuple(fine, d)
    for r in range(k):
        row = (start + r) * d
        for i in range(d):
            out[i, r] = (Xf[row + i] - shift[i]) - shift_fine[i]


@_jit()
def _centre_eight(Xf: Any, start: int, k: int, coarse: Any, fine: Any, out: Any) -> None:
    """`_centre_fixed_rows` at d = 8, the loop over the variables written out."""
    c0, c1, c2, c3, c4, c5, c6, c7 = to_fixed_tuple(coarse, 8)
    f0, f1, f2, f3, f4, f5, f6, f7 = to_fixed_tuple(fine, 8)
    for r in range(k):
        row = (start + r) * 8
        out[0, r] = (Xf[row] - c0) - f0
        out[1, r] = (Xf[row + 1] - c1) - f1
        out[2, r] = (Xf[row + 2] - c2) - f2
        out[3, r] = (Xf[row + 3] - c3) - f3
        out[4, r] = (Xf[row + 4] - c4) - f4
        out[5, r] = (Xf[row + 5] - c5) - f5
        out[6, r] = (Xf[row + 6] - c6) - f6
        out[7, r] = (Xf[row + 7] - c7) - f7


@_jit()
def _weigh(Y: Any, w: Any, start: int, k: int, out: Any) -> None:
    for i in range(Y.shape[0]):
        for r in range(k):
            out[i, r] = Y[i, r] * w[start + r]


# Reassociation lets the compiler split each 256-term sum over several vector accumulators: that
# is what brings the kernel to memory speed, and it costs no accuracy (a sum split in pieces rounds
# less than one running sum). Only these reductions get it. Rows are passed by index, never as
# views (``A[i]``): numba builds and reference-counts a view on every call, which on a 256-value
# chunk cost more than the arithmetic.
@_jit(fastmath={"reassoc"})
def _total(a: Any, k: int) -> float:
    # The weights' sums (`block_sums`), from a view: an index loop from `start` rounds its tail
    # differently, and a view per chunk is little next to weighting the chunk.
    t = 0.0
    for r in range(k):
        t += a[r]
    return t


@_jit(fastmath={"reassoc"})
def _row_total(A: Any, i: int, k: int) -> float:
    t = 0.0
    for r in range(k):
        t += A[i, r]
    return t


@_jit(fastmath={"reassoc"})
def _row_dot(A: Any, i: int, B: Any, j: int, k: int) -> float:
    t = 0.0
    for r in range(k):
        t += A[i, r] * B[j, r]
    return t


@_jit(fastmath={"reassoc"})
def _tile(A: Any, B: Any, i: int, j: int, k: int) -> tuple[float, ...]:
    # A 4 x 4 tile of the scatter, ``A[i:i+4] @ B[j:j+4].T`` over k rows: 16 accumulators fed by
    # 8 loads per row, where one dot product at a time needs 2 loads per multiply-add. Measured at
    # d = 8 and 16 on 1e6 rows: 0.9-1.1x the time of X.T @ X, against 1.6-1.7x for dot products
    # four at a time sharing one operand.
    t00 = t01 = t02 = t03 = t10 = t11 = t12 = t13 = 0.0
    t20 = t21 = t22 = t23 = t30 = t31 = t32 = t33 = 0.0
    for r in range(k):
        a0, a1, a2, a3 = A[i, r], A[i + 1, r], A[i + 2, r], A[i + 3, r]
        b0, b1, b2, b3 = B[j, r], B[j + 1, r], B[j + 2, r], B[j + 3, r]
        t00 += a0 * b0
        t01 += a0 * b1
        t02 += a0 * b2
        t03 += a0 * b3
        t10 += a1 * b0
        t11 += a1 * b1
        t12 += a1 * b2
        t13 += a1 * b3
        t20 += a2 * b0
        t21 += a2 * b1
        t22 += a2 * b2
        t23 += a2 * b3
        t30 += a3 * b0
        t31 += a3 * b1
        t32 += a3 * b2
        t33 += a3 * b3
    return (t00, t01, t02, t03, t10, t11, t12, t13, t20, t21, t22, t23, t30, t31, t32, t33)


# The raw sums of the variables whose mean may be near zero, chunk by chunk (`block_sums`):
# ``sum |x| <= size`` sets a grid (`_grid`) on which each value is a whole number of grids (its
# head, an int64) plus a tail below one grid, taken exactly (``x - head grid``). The heads' sum is
# exact and the tails' rounded sum leaves at most ``4 (k u)**2 size``: Rump, Ogita and Oishi's
# extraction, with integer heads. Reassociation is safe here, unlike in ``(x + sigma) - sigma``
# (which it may fold to x): no reordering can undo an integer conversion, and the tails are
# summed in any order. Measured against Sum2's two-sum chain per value (`_sum2_column`): 0.15-0.2
# against 1.34 ns a value.
@_jit()
def _grid(size: float) -> tuple[float, float]:
    """``(scale, grid)`` with ``grid = 2**(e - 52)`` for ``size < 2**e`` and ``scale = 1 / grid``,
    or ``(0.0, 0.0)`` where Sum2 must serve instead: `size` not finite (NaN or inf in the data),
    past 1e300, or below 1e-140 (where squares underflow, so a bound taken from them may fall
    short)."""
    if not 1e-140 < size < 1e300:
        return 0.0, 0.0
    e = math.frexp(size)[1]
    return math.ldexp(1.0, 52 - e), math.ldexp(1.0, e - 52)


@_jit(fastmath={"reassoc"})
def _split_row(A: Any, i: int, k: int, scale: float, grid: float) -> tuple[int, float]:
    """The heads (an integer number of grids) and the tails of ``A[i, :k]``, summed."""
    heads = 0
    tails = 0.0
    for r in range(k):
        head = int(A[i, r] * scale)  # truncated: |a scale| < 2**52, so the integer is exact
        heads += head
        tails += A[i, r] - head * grid
    return heads, tails


@_jit(fastmath={"reassoc"})
def _split_column(A: Any, start: int, i: int, k: int, scale: float, grid: float) -> tuple[int, float]:
    """`_split_row` of ``A[start:start + k, i]``."""
    heads = 0
    tails = 0.0
    for r in range(start, start + k):
        head = int(A[r, i] * scale)
        heads += head
        tails += A[r, i] - head * grid
    return heads, tails


@_jit()
def _sum2_column(A: Any, start: int, i: int, k: int) -> tuple[float, float]:
    """Ogita, Rump and Oishi's Sum2 of ``A[start:start + k, i]`` (Knuth's two-sum per value):
    ``hi + lo`` is the exact sum to ``(k u)**2`` times the sum of the magnitudes. No fastmath:
    reassociation would cancel the two-sums to zero."""
    s = e = 0.0
    for r in range(start, start + k):
        x = A[r, i]
        t = s + x
        part = t - s
        e += (s - (t - part)) + (x - part)
        s = t
    return s, e


@_jit()
def _add(sums: Any, comp: Any, index: int, value: float) -> None:
    # Neumaier's compensated sum: the chunk results of a block are added with their rounding kept.
    s = sums[index]
    t = s + value
    if abs(s) >= abs(value):
        comp[index] += (s - t) + value
    else:
        comp[index] += (value - t) + s
    sums[index] = t


# Not parallel: numba's OpenMP layer (GNU libgomp) aborts any process forked after it has run
# ("fork() called from a process already using GNU OpenMP"), which breaks multiprocessing and
# process pools in every program that imports gaussum; and on the 2-core machine one thread was
# faster anyway. prange over blocks is kept: it runs as a plain loop.
@_jit(parallel=False)
def block_sums(
    X: Any,
    w: Any,
    coarse: Any,
    fine: Any,
    rows: int,
    diagonal: bool,
    raw: Any,
    n_out: Any,
    c_out: Any,
    s_out: Any,
) -> None:
    """Per block of `rows` rows of X: total weight, column sums and scatter of ``X - coarse - fine``.

    ``w`` has length 0 for unweighted rows. ``c_out[b, 0]`` gets the column sums of Y and
    ``c_out[b, 1]`` the rounding they left (Neumaier's compensation, kept for the compensated
    mean); for the variables listed in `raw` (ascending indices; unweighted rows only) they are
    instead the column sums of X itself, taken error-free chunk by chunk (`_split_row`), from
    which `gaussum._kernel` takes means to the last bit and derives the sums about the shift.
    ``s_out[b]`` gets the row-major upper triangle (or the diagonal) of block b's scatter
    ``Y^T W Y``. Blocks run in parallel, each into its own slot: the caller merges them in a fixed
    order, so the result does not depend on the threads.
    """
    N, d = X.shape
    weighted = w.shape[0] > 0
    # Variables padded to a multiple of 4 with rows of zeros, so the scatter is whole 4 x 4 tiles.
    padded = (d + 3) // 4 * 4
    tiles = not diagonal and d > 2  # one or two variables: plain dot products do less work
    # Rows of the chunk buffer 2 KiB apart map to the same few L1 cache sets; past 8 rows the 4 x 4
    # tiles' reads then evict each other. Padding each row by 64 bytes spreads them: measured at
    # d = 16 on 1e6 rows, 0.90-0.93x the time (and no gain at d = 8 or less).
    width = CHUNK + 8 if padded > 8 else CHUNK
    exact = raw.shape[0] > 0 and not weighted
    is_raw = np.zeros(d, dtype=np.bool_)
    for i in raw:
        is_raw[i] = exact
    Xf = X.reshape(-1)  # C-contiguous: a view
    for b in numba.prange(n_out.shape[0]):
        Y = np.zeros((padded, width))
        Yw = np.zeros((padded, width)) if weighted else Y
        c = np.zeros(d)
        c_comp = np.zeros(d)
        S = np.zeros((padded, padded))
        S_comp = np.zeros((padded, padded))
        n = np.zeros(1)
        n_comp = np.zeros(1)
        chunk_hi = np.zeros(d)
        chunk_lo = np.zeros(d)
        squares = np.zeros(d)  # the chunk's sums of squares: the raw sums' bound
        stop = min(N, (b + 1) * rows)
        for start in range(b * rows, stop, CHUNK):
            k = min(CHUNK, stop - start)
            if d < 8:
                _centre_narrow(Xf, d, start, k, coarse, fine, Y)
            elif d == 8:  # called here, not through `_centre_narrow`: that call cost 5% at d = 8
                _centre_eight(Xf, start, k, coarse, fine, Y)
            else:
                _centre(X, start, k, coarse, fine, Y)
            if weighted:
                _weigh(Y, w, start, k, Yw)
                _add(n, n_comp, 0, _total(w[start:start + k], k))
            else:
                n[0] += k
            if tiles:
                for i in range(0, padded, 4):
                    for j in range(i, padded, 4):
                        t = _tile(Yw, Y, i, j, k)
                        for a in range(4):
                            for e in range(4):
                                if i + a <= j + e < d:
                                    _add(S[i + a], S_comp[i + a], j + e, t[4 * a + e])
                        if i == j:
                            for a in range(min(4, d - i)):
                                squares[i + a] = t[5 * a]
            else:
                for i in range(d):
                    for j in range(i, i + 1 if diagonal else d):
                        product = _row_dot(Yw, i, Y, j, k)
                        _add(S[i], S_comp[i], j, product)
                        if i == j:
                            squares[i] = product
            # The exact raw sums of the variables in `raw`, written out here: as a function of
            # its own, the arrays passed cost 2-4x the arithmetic (measured at d = 4 and 8).
            if exact:
                for i in raw:
                    # sum |x| <= sqrt(k sum y^2) + k (|coarse| + |fine|) (Cauchy-Schwarz, and
                    # x = y + coarse + fine to rounding), doubled to spare: no pass to find it.
                    size = 2.0 * (math.sqrt(k * squares[i]) + k * (abs(coarse[i]) + abs(fine[i])))
                    scale, grid = _grid(size)
                    if grid == 0.0:
                        chunk_hi[i], chunk_lo[i] = _sum2_column(X, start, i, k)
                        continue
                    if coarse[i] == 0.0 and fine[i] == 0.0:  # then x - 0 - 0 is x: read it from Y
                        heads, tails = _split_row(Y, i, k, scale, grid)
                    else:  # down X's column, whose rows are in cache
                        heads, tails = _split_column(X, start, i, k, scale, grid)
                    chunk_hi[i], chunk_lo[i] = heads * grid, tails
            for i in range(d):
                if is_raw[i]:
                    _add(c, c_comp, i, chunk_hi[i])
                    c_comp[i] += chunk_lo[i]
                else:
                    _add(c, c_comp, i, _row_total(Yw, i, k))
        n_out[b] = n[0] + n_comp[0]
        for i in range(d):
            total = c[i] + c_comp[i]  # two-sum: c may be near zero, below its compensation
            part = total - c[i]
            c_out[b, 0, i] = total
            c_out[b, 1, i] = (c[i] - (total - part)) + (c_comp[i] - part)
        entry = 0
        for i in range(d):
            if diagonal:
                s_out[b, i] = S[i, i] + S_comp[i, i]
                continue
            for j in range(i, d):
                s_out[b, entry] = S[i, j] + S_comp[i, j]
                entry += 1


@_jit()
def centre_and_sum(X: Any, coarse: Any, fine: Any, Y: Any, out: Any) -> None:
    """``Y = (X - coarse) - fine`` for a block of rows, and the column sums of X, error-free.

    The numpy path's centring (`gaussum._kernel._centred_sums`, the same operations, so the same
    bits in Y) fused with Sum2 (`_sum2_column`, the variables as lanes) of the raw values along chunks of `CHUNK` rows,
    the chunk sums added by Neumaier's sum: ``out[0] + out[1]`` is the exact column sum of X to
    the bound `gaussum._kernel._settled_sums` states. One read of X instead of numpy's
    subtraction and then its column sums: measured 0.6-0.8x their time for 2 MiB blocks at
    d = 16 to 256, with the exact sums the compensated mean needs included.
    """
    N, d = X.shape
    hi = np.zeros(d)
    lo = np.zeros(d)
    chunk_hi = np.zeros(d)
    chunk_lo = np.zeros(d)
    for start in range(0, N, CHUNK):
        for i in range(d):
            chunk_hi[i] = 0.0
            chunk_lo[i] = 0.0
        for r in range(start, min(N, start + CHUNK)):
            for i in range(d):
                x = X[r, i]
                Y[r, i] = (x - coarse[i]) - fine[i]
                s = chunk_hi[i]
                t = s + x
                part = t - s
                chunk_lo[i] += (s - (t - part)) + (x - part)
                chunk_hi[i] = t
        for i in range(d):
            _add(hi, lo, i, chunk_hi[i])
            lo[i] += chunk_lo[i]
    for i in range(d):
        out[0, i] = hi[i]
        out[1, i] = lo[i]


@_jit()
def first_shift(X: Any, w: Any, m: int, out: Any) -> float:
    """Mean, mean of the deviations from it, and their mean square, over the first m rows of X.

    Writes ``out[0]`` (the coarse mean), ``out[1]`` (the fine part) and ``out[2]`` (the mean
    square about the coarse mean), as `gaussum._kernel._first_shift` computes them; returns the
    rows' total weight (0.0 when they have none, and then writes nothing).
    """
    d = X.shape[1]
    weighted = w.shape[0] > 0
    n = 0.0
    for r in range(m):
        n += w[r] if weighted else 1.0
    if n == 0.0:
        return 0.0
    for i in range(d):
        out[0, i] = 0.0
    for r in range(m):
        for i in range(d):
            out[0, i] += X[r, i] * w[r] if weighted else X[r, i]
    for i in range(d):
        out[0, i] /= n
        out[1, i] = 0.0
        out[2, i] = 0.0
    for r in range(m):
        for i in range(d):
            y = X[r, i] - out[0, i]
            yw = y * w[r] if weighted else y
            out[1, i] += yw
            out[2, i] += yw * y
    for i in range(d):
        out[1, i] /= n
        out[2, i] /= n
    return n


@_jit()
def _add_compensated(hi: float, lo: float, term: float) -> tuple[float, float]:
    """`gaussum._combine.add_compensated` of floats: two two-sums, in its order."""
    s = hi + term
    b_part = s - hi
    e = ((hi - (s - b_part)) + (term - b_part)) + lo
    total = s + e
    e_part = total - s
    return total, (s - (total - e_part)) + (e - e_part)


@_jit()
def row_step(
    n: float,
    mean: Any,
    M2: Any,
    err: Any,
    M2_err: Any,
    row: Any,
    weight: float,
    new_mean: Any,
    new_M2: Any,
    new_err: Any,
    new_M2_err: Any,
) -> float:
    """`gaussum._combine.add_row` for ``n > 0``, into `new_mean`, `new_M2`, `new_err` and `new_M2_err`.

    The same floating-point operations in the same order as the numpy step, so the same bits
    (no fastmath: the two-sums of the compensated mean and M2 must not be reassociated away).
    Returns the new total weight, or NaN (leaving the outputs unspecified) when the row holds
    NaN or inf or its square or M2 overflows.
    """
    d = mean.shape[0]
    total_weight = n + weight
    square = 0.0
    for i in range(d):
        delta = (row[i] - mean[i]) - err[i]
        new_err[i] = delta  # delta is kept here until the check has passed
        square += delta * delta
    if not (np.isfinite(square) and np.isfinite(total_weight)):
        return np.nan
    fraction = weight / total_weight
    scale = np.sqrt(n * fraction)
    # The numpy step's overflow check: an entry past 1.8e308 leaves a NaN or inf error, and a sum
    # of finite errors cannot overflow (finite in any order exactly when every error is).
    errors = 0.0
    if M2.ndim == 2:
        # The upper triangle, mirrored: M2, its error and the term are symmetric, so entry (j, i)
        # would be computed from the same values as (i, j) (the numpy step computes both).
        for i in range(d):
            ui = new_err[i] * scale
            for j in range(i, d):
                total, error = _add_compensated(M2[i, j], M2_err[i, j], ui * (new_err[j] * scale))
                new_M2[i, j] = new_M2[j, i] = total
                new_M2_err[i, j] = new_M2_err[j, i] = error
                errors += error
    else:
        for i in range(d):
            ui = new_err[i] * scale
            new_M2[i], new_M2_err[i] = _add_compensated(M2[i], M2_err[i], ui * ui)
            errors += new_M2_err[i]
    if not np.isfinite(errors):
        return np.nan
    for i in range(d):
        step = new_err[i] * fraction + err[i]
        hi = mean[i] + step
        part = hi - mean[i]
        new_mean[i] = hi
        new_err[i] = (mean[i] - (hi - part)) + (step - part)
    return total_weight


@_jit()
def row_step_packed(n: float, mean: Any, M2: Any, err: Any, M2_err: Any, row: Any, out: Any) -> float:
    """`row_step` with weight 1 into one buffer.

    ``out[:d]`` gets the mean, ``out[d:2d]`` its error, then M2 (raveled, m entries) and M2's
    error (likewise).
    """
    d = mean.shape[0]
    m = M2.size
    total_weight = n + 1.0
    square = 0.0
    for i in range(d):
        delta = (row[i] - mean[i]) - err[i]
        out[d + i] = delta  # delta is kept here until the check has passed
        square += delta * delta
    if not (np.isfinite(square) and np.isfinite(total_weight)):
        return np.nan
    fraction = 1.0 / total_weight
    scale = np.sqrt(n * fraction)
    errors = 0.0  # as in `row_step`
    if M2.ndim == 2:
        for i in range(d):  # the upper triangle, mirrored, as in `row_step`
            ui = out[d + i] * scale
            for j in range(i, d):
                total, error = _add_compensated(M2[i, j], M2_err[i, j], ui * (out[d + j] * scale))
                upper, lower = 2 * d + i * d + j, 2 * d + j * d + i
                out[upper] = out[lower] = total
                out[upper + m] = out[lower + m] = error
                errors += error
    else:
        for i in range(d):
            ui = out[d + i] * scale
            out[2 * d + i], out[2 * d + m + i] = _add_compensated(M2[i], M2_err[i], ui * ui)
            errors += out[2 * d + m + i]
    if not np.isfinite(errors):
        return np.nan
    for i in range(d):
        step = out[d + i] * fraction + err[i]
        hi = mean[i] + step
        part = hi - mean[i]
        out[i] = hi
        out[d + i] = (mean[i] - (hi - part)) + (step - part)
    return total_weight


@_jit()
def merge_pair_packed(
    n_a: float, a: Any, n_b: float, b: Any, d: int, q: float, q_err: float, weight: float, out: Any
) -> bool:
    """`gaussum._combine.merge_pair` of two packed summaries (``n_a, n_b > 0``) into `out`.

    `a`, `b` and `out` hold ``[mean, mean_err, M2 raveled]`` (M2 of d * d or d entries), the
    layout of a packed `GaussianSummary`. ``q + q_err`` is ``min(n_a, n_b) / (n_a + n_b)`` and
    `weight` the weight of ``outer(delta, delta)``, as `merge_pair` takes them
    (`gaussum._combine.pair_weights`). The same floating-point operations in the same order as
    the numpy rule, so the same bits. Returns False when the mean or a variance of the result is
    not finite (the caller tells overflow from NaN inputs).
    """
    m = a.shape[0] - 2 * d
    # delta and its residue (`_combine._delta`), kept in out's mean and error parts for now.
    for i in range(d):
        mb, neg_ma = b[i], -a[i]
        hi = mb + neg_ma
        b_part = hi - mb
        lo = (mb - (hi - b_part)) + (neg_ma - b_part)
        rest = lo + (b[d + i] - a[d + i])
        delta = hi + rest
        out[i] = delta
        out[d + i] = rest - (delta - hi)
    from_a = n_a > n_b
    if n_a == n_b:  # step from the side whose mean is smaller at the first difference
        from_a = True
        for i in range(d):
            if out[i] != 0.0:
                from_a = out[i] > 0.0
                break
    base = a if from_a else b
    # M2 first: it needs delta, which the mean's step overwrites. outer(delta, delta) is the same
    # for either side's sign.
    if m == d:
        for i in range(d):
            delta = out[i]
            out[2 * d + i] = (a[2 * d + i] + b[2 * d + i]) + (delta * delta) * weight
    else:
        for i in range(d):
            delta_i = out[i]
            for j in range(d):
                k = 2 * d + i * d + j
                out[k] = (a[k] + b[k]) + (delta_i * out[j]) * weight
    # The mean (`_combine._step` and `_renormalised`): two-product of delta and q, two-sum.
    t = _SPLITTER * q
    q_hi = t - (t - q)
    q_lo = q - q_hi
    finite = True
    for i in range(d):
        delta, res = (out[i], out[d + i]) if from_a else (-out[i], -out[d + i])
        p = delta * q
        t = _SPLITTER * delta
        d_hi = t - (t - delta)
        d_lo = delta - d_hi
        p_err = ((d_hi * q_hi - p) + d_hi * q_lo + d_lo * q_hi) + d_lo * q_lo
        mean = base[i]
        hi = mean + p
        p_part = hi - mean
        lo = (mean - (hi - p_part)) + (p - p_part)
        lo += base[d + i] + (p_err + (res * q + delta * q_err))
        if not np.isfinite(lo):
            lo = 0.0
        total = hi + lo
        err = lo - (total - hi)
        out[i] = total
        out[d + i] = err if np.isfinite(err) else 0.0
        square = out[2 * d + i * (d + 1)] if m != d else out[2 * d + i]
        finite = finite and np.isfinite(total) and np.isfinite(square)
    return finite


# Dekker's splitter 2**27 + 1, as `gaussum._combine._SPLITTER`.
_SPLITTER = 134217729.0
