"""The row kernel: raw rows (or segments of rows, one per group) to moments, by one algorithm.

This is the only place where raw rows become summaries and the only place where the NaN policy
is applied; it returns how many rows ``nan_policy="omit"`` dropped, so callers never filter rows
themselves.

- `summarize_rows` streams the rows of one summary in blocks of about 2 MiB about one two-part
  shift (the corrected two-pass algorithm, with BLAS for the scatter).
- `summarize_groups` summarises many groups at once: their rows are visited in group order, a
  block of a few thousand rows at a time, and every group of a block gets the same corrected
  two-pass (two-part shift, centred sums, re-centring when the shift is far) with
  ``np.add.reduceat`` for the per-group sums; a group with enough rows of its own is streamed
  through `summarize_rows`.

Weights: a row with frequency weight ``f`` and reliability weight ``a`` weighs ``w = f a`` in n,
the mean and M2, and adds ``q = f a^2`` to w2 (`row_weights`).

Functions never modify their arguments.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import _compiled, _keys
from ._combine import (
    each_row,
    mirror_upper,
    ones,
    quotient,
    run_sums,
    scalar_quotient,
    two_product,
    two_sum,
)
from ._moments import consistent_scatter
from ._validate import first_nonfinite_row, nonfinite_row_error, overflow_error
from .errors import Float64OverflowError

__all__ = ["group_block_rows", "row_weights", "rows_per_block", "summarize_groups", "summarize_rows"]

#: ``(w, q)``: per-row weights in n and in w2, or None for all ones / for ``q = w``.
Weights = tuple["np.ndarray | None", "np.ndarray | None"]
#: ``(counts, means, M2, w2, mean_errs)`` of g groups (see `gaussum._moments`).
Stacked = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]

# Rows per block: about 2 MiB of float64 per block keeps the centred copy in cache and bounds the
# extra memory of `summarize_rows` to a small constant, whatever the size of the input.
_BLOCK_BYTES = 2**21
_MIN_BLOCK_ROWS = 1024
# Rows per partial sum in `_accurate_column_sums`.
_SUM_CHUNK = 256
# Centring on the fine part of the shift matters only when X - coarse is coarsely quantised:
# when ulp(coarse) exceeds this fraction of the spread (see `_centred_sums`).
_QUANTUM_OF_SPREAD = 2.0**-36
# ... and only until it is so coarse that the pass is exact without it: X - coarse is then a
# multiple of g = ulp(coarse) / 2 with few significant bits, and while rows * (this many
# spreads)^2 stays below 2^53 g^2, every square, product and partial sum of it is exact, in any
# order (see `_settled_shift`).
_EXACT_SPREADS = 2.0

# How far (in standard deviations) the shift may sit from the mean of all rows. The correction
# c c^T / n multiplies the rounding in the column sums c by 2 (offset / std)^2, so a shift taken
# from a first block that is not typical of the rest (sorted or drifting data) costs digits:
# measured 1e-14 at one standard deviation. Past this bound the pass is repeated about the mean.
_MAX_SHIFT_IN_STD = 1.0 / 8.0


def rows_per_block(d: int) -> int:
    """Rows processed at a time for data of `d` variables."""
    return max(_MIN_BLOCK_ROWS, _BLOCK_BYTES // (8 * max(d, 1)))


# Values of a sorted block and its products live in a buffer of about this many bytes: small
# enough to stay in cache, large enough that numpy's per-call overhead is spread over many rows.
_GROUP_BLOCK_BYTES = 2**21
_MIN_GROUP_BLOCK_ROWS = 256

# A group whose rows times its products per row exceed this is summed on its own with BLAS: the
# Python overhead of one call (microseconds) is then small next to its arithmetic.
_ALONE_PRODUCTS = 2**16
_MIN_ALONE_ROWS = 64


def row_weights(fweights: np.ndarray | None, aweights: np.ndarray | None) -> Weights:
    """``(w, q)`` for validated frequency and reliability weights: ``w = f a``, ``q = f a^2``.

    Raises Float64OverflowError, naming the weights, when their products or sums overflow.
    """
    if aweights is None:
        w, q = fweights, None
    else:
        with np.errstate(over="ignore"):
            w = aweights if fweights is None else fweights * aweights
            q = w * aweights
    with np.errstate(over="ignore"):
        total = 0.0 if w is None else float(w.sum()) + (0.0 if q is None else float(q.sum()))
    if not math.isfinite(total):
        which = "weights" if aweights is None else ("aweights" if fweights is None else "weights times aweights")
        largest = float(np.max(w)) if w is not None and w.size else 0.0
        raise Float64OverflowError(
            f"the {which} overflow float64 when summed (largest is {largest:g}); rescale them first"
        )
    return w, q


def _alone_rows(d: int, diagonal: bool) -> int:
    """Rows from which a group is summed on its own (BLAS) rather than in a shared block."""
    products = d if diagonal else d * d
    return max(_MIN_ALONE_ROWS, _ALONE_PRODUCTS // products)


def group_block_rows(d: int, diagonal: bool) -> int:
    """Sorted rows processed at a time: the products of one block fill about 2 MiB."""
    products = d if diagonal else d * (d + 1) // 2
    return max(_MIN_GROUP_BLOCK_ROWS, _GROUP_BLOCK_BYTES // (8 * (products + d)))


def _column_sums(Y: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """(Weighted) column sums of Y with one BLAS call: fast, with BLAS's long running sums."""
    sums: np.ndarray = (w @ Y) if w is not None else (ones(Y.shape[0]) @ Y)
    return sums


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
    head_weights = ones(cut).reshape(m, 1, _SUM_CHUNK) if w is None else w[:cut].reshape(m, 1, _SUM_CHUNK)
    head: np.ndarray = (head_weights @ Y[:cut].reshape(m, _SUM_CHUNK, d)).sum(axis=0)[0]
    total: np.ndarray = head + _column_sums(Y[cut:], None if w is None else w[cut:])
    return total


def _first_shift(
    X: np.ndarray, w: np.ndarray | None, rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """A two-part shift ``(coarse, fine)`` near the mean of block X, and the block's standard
    deviations: ``(coarse, fine, spread)``, or None if X has no weight.

    See `_settled_shift` for the variables left unshifted and the fine parts set to zero; `rows`
    is the number of rows of the whole input.
    """
    n = float(X.shape[0]) if w is None else float(w.sum())
    if n == 0:
        return None
    coarse = _column_sums(X, w) / n
    deviations = _borrow_buffer(X.size).reshape(X.shape)
    each_row(np.subtract, X, coarse, deviations)
    fine = _column_sums(deviations, w) / n
    spread = np.sqrt(_column_sums(np.multiply(deviations, deviations, out=deviations), w) / n)
    _give_back(deviations)
    return (*_settled_shift(*two_sum(coarse, fine), spread, rows if w is None else 0), spread)


# A variable whose mean is within this many standard deviations of zero is not shifted at all;
# it is re-centred only past `_MAX_ZERO_SHIFT_IN_STD` (see `_far`).
_ZERO_SHIFT_IN_STD = 1.0 / 4.0
_MAX_ZERO_SHIFT_IN_STD = 1.0 / 2.0


def _far(offset: np.ndarray, n: float, squares: np.ndarray, shift: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Which variables' shift is too far from their mean (``offset = mean - shift``) to keep, or
    not what the pass needed (`inexact_about_coarse`): either way the pass is repeated about the mean.

    `_MAX_SHIFT_IN_STD` standard deviations, or `_MAX_ZERO_SHIFT_IN_STD` for a variable left
    unshifted (`_settled_shift`): its values are exact, so only the correction's factor
    ``2 (offset / std)^2`` counts.
    """
    bound = np.where(shift[0] == 0, _MAX_ZERO_SHIFT_IN_STD**2, _MAX_SHIFT_IN_STD**2)
    far: np.ndarray = (offset * offset * n > bound * squares) | inexact_about_coarse(shift, squares, n)
    return far


def inexact_about_coarse(shift: tuple[np.ndarray, np.ndarray], squares: np.ndarray, n: float) -> np.ndarray:
    """Variables summed about a coarse shift alone (`exact_about_coarse` foretold an exact pass
    from the first rows' spread) whose squares came out too large for it: the data spread wider
    later, so their coarsely quantised squares were rounded after all, with a bias. The pass is
    then repeated about the mean, with a fine part (`_far`'s re-centring)."""
    coarse, fine = shift
    quantum = np.spacing(np.abs(coarse))
    with np.errstate(all="ignore"):
        quantised = quantum > _QUANTUM_OF_SPREAD * np.sqrt(squares / n)
        inexact: np.ndarray = (fine == 0) & (coarse != 0) & quantised & (squares >= 2.0**53 * (quantum / 2) ** 2)
    return inexact


def _settled_shift(
    coarse: np.ndarray, fine: np.ndarray, spread: np.ndarray, rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """The two-part shift as the pass uses it: none for variables near zero, no fine part where needless.

    ``X - coarse`` rounds every value whose magnitude is above the shift's; for data centred near
    zero it does so with a bias (the bits of the shift below ulp(x) are lost alike for every x of
    a binade), which put the mean 200 ulps off on 1e6 rows. ``X - 0`` is exact, and with the mean
    within 1/4 of a standard deviation the correction ``c c^T / n`` is at most 1/16 of M2, which
    costs no digits (the rounding of ``c`` enters M2 times ``2 (mean / std)^2``). Their error-free
    column sums are then cheap to take in the same pass (`ExactSums`). The fine part is set to
    zero where centring on it would change nothing (``X - coarse`` is not coarsely quantised),
    which saves `_centred_sums` a pass over every block, and where it would only add rounding:
    for `rows` unweighted rows (0 when weighted) so coarsely quantised that the pass about
    `coarse` alone is exact (`_EXACT_SPREADS`). There the fine part rounds every centred value,
    and BLAS's fused multiply-adds sum their squares with a bias: 3e-15 relative on 1e6 rows at
    1e9 with spread 1e-3, against 4e-19 about `coarse` alone.
    """
    near = np.abs(coarse) < _ZERO_SHIFT_IN_STD * spread
    if near.any():
        coarse, fine = np.where(near, 0.0, coarse), np.where(near, 0.0, fine)
    if (np.spacing(np.abs(coarse)) <= _QUANTUM_OF_SPREAD * spread).all():
        return coarse, np.zeros_like(fine)
    exact = exact_about_coarse(coarse, spread, rows)
    return coarse, np.where(exact, 0.0, fine) if exact.any() else fine


def exact_about_coarse(coarse: np.ndarray, spread: np.ndarray, rows: int) -> np.ndarray:
    """Which variables' pass about `coarse` alone is foretold exact in float64 (see `_EXACT_SPREADS`).

    ``X - coarse`` is a multiple of ``g = ulp(coarse) / 2`` (exact, Sterbenz); with about `rows`
    rows of `spread`, every square, product and partial sum of such values is exact while the
    total of the squares stays below ``2^53 g^2``. None for ``rows = 0`` (weighted rows, whose
    products with the weights round). `spread` is the first rows': `inexact_about_coarse`
    checks the foretelling after the pass.
    """
    grid = np.spacing(np.abs(coarse)) / 2
    exact: np.ndarray = (rows > 0) & (rows * (_EXACT_SPREADS * spread) ** 2 < 2.0**53 * grid * grid)
    return exact


def _centred_sums(
    X: np.ndarray,
    w: np.ndarray | None,
    shift: tuple[np.ndarray, np.ndarray],
    diagonal: bool,
    centring: CompiledCentring | None = None,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Total weight, column sums and scatter (``Y^T W Y``, or its diagonal) of ``Y = X - shift``.

    With `centring` (unweighted rows only) Y is made by the compiled kernel in its buffer, and
    the column sums returned are instead the raw ones of X, error-free, as ``(2, d)`` parts.
    """
    coarse, fine = shift
    sums = None
    borrowed: list[np.ndarray] = []  # buffers from `_borrow_buffer`, given back at the end
    if centring is not None:
        Y, sums = centring.centre(X, shift)
    elif coarse.any() or fine.any():
        # X - coarse is exact (Sterbenz) for data whose spread is small next to its mean; the fine
        # part then brings each value down to full precision. Without it, X - coarse is a multiple
        # of ulp(coarse), and sums of such coarsely quantised squares round with a bias (measured:
        # 4e-15 relative at mean/spread = 1e9) that fully centred values do not show.
        Y = _scratch(X.shape, borrowed)
        each_row(np.subtract, X, coarse, Y)
        if fine.any():
            each_row(np.subtract, Y, fine, Y)
    else:
        Y = X  # nothing shifted (data centred near zero): X - 0 is X, read in place, never written
    owned = Y is not X  # Y may be overwritten once its sums are taken

    def squared(Y: np.ndarray) -> np.ndarray:
        """``Y * Y``, in place where Y is ours."""
        result: np.ndarray = np.multiply(Y, Y, out=Y if owned else _scratch(Y.shape, borrowed))
        return result

    n = float(X.shape[0]) if w is None else float(w.sum())
    if Y.shape[1] == 1:
        # One variable: numpy's pairwise summation (error ~ u log k) rather than BLAS's long
        # running sums, which err by up to ~u k on repeated values (NIST's NumAcc2: 1.2e-14).
        y = Y[:, 0]
        yw = y if w is None else y * w
        c = np.array([yw.sum()]) if sums is None else sums
        squares = squared(Y)[:, 0].sum() if w is None else (yw * y).sum()
        scatter = np.full((1,) if diagonal else (1, 1), squares)
    else:
        c = _accurate_column_sums(Y, w) if sums is None else sums
        if diagonal:
            scatter = _accurate_column_sums(squared(Y), None) if w is None else _accurate_column_sums(Y * Y, w)
        else:
            Yw = Y if w is None else Y * w[:, None]
            scatter = Yw.T @ Y
            if fine.any():
                # Coarsely quantised values centred on the fine part too: BLAS's fused
                # multiply-adds sum their squares with a bias (33 u on 1e6 weighted rows at 1e9
                # with spread 1e-3), which squares rounded one by one and summed in chunks do not
                # show. Products of two variables have no bias (their signs vary).
                squares = _accurate_column_sums(squared(Y), None) if w is None else _accurate_column_sums(Y * Y, w)
                scatter[np.diag_indices(Y.shape[1])] = squares
    for buffer in borrowed:
        _give_back(buffer)
    return n, c, scatter


# One buffer per thread for the centred block, kept between calls: a fresh 2 MiB array is memory
# the kernel must map and fault in page by page, which cost more than the arithmetic on a stream
# of 10,000-row batches (measured: 100 batches of 10,000 x 32, 350 ms with a buffer per block,
# 135 ms with the allocator's pages reused). Buffers above `_KEPT_BUFFER_BYTES` are not kept.
_KEPT_BUFFER_BYTES = 2 * _BLOCK_BYTES
# Buffers kept per thread: a block's centred copy, and its squares or the first block's deviations.
_KEPT_BUFFERS = 2
_buffers = threading.local()


# Arrays smaller than this are allocated fresh (from the allocator's small-block pools, no page
# faults), not borrowed: the pool's bookkeeping cost more than that at a few hundred values.
_POOLED_VALUES = 2**13


def _borrow_buffer(size: int) -> np.ndarray:
    """A float64 buffer of `size` values: one of the thread's kept ones when one is large enough.

    It is taken out of the pool while in use, so a nested call (an array-like whose slicing
    summarises something) gets a buffer of its own. A buffer never given back (an exception
    between) costs only its reuse.
    """
    pool = _pool()
    for i, kept in enumerate(pool):
        if kept.size >= size:
            return pool.pop(i)[:size]
    return np.empty(size)


def _scratch(shape: tuple[int, ...], borrowed: list[np.ndarray]) -> np.ndarray:
    """A float64 work array of `shape`: borrowed (and listed in `borrowed`, to give back) when it
    is large enough for the pool to pay, else fresh."""
    size = math.prod(shape)
    if size < _POOLED_VALUES:
        return np.empty(shape)
    buffer = _borrow_buffer(size).reshape(shape)
    borrowed.append(buffer)
    return buffer


def _give_back(buffer: np.ndarray) -> None:
    whole = buffer if buffer.base is None else buffer.base
    while isinstance(whole, np.ndarray) and whole.base is not None:
        whole = whole.base
    if isinstance(whole, np.ndarray) and whole.nbytes <= _KEPT_BUFFER_BYTES:
        pool = _pool()
        pool.append(whole)
        if len(pool) > _KEPT_BUFFERS:  # keep the largest
            pool.sort(key=lambda kept: kept.size)
            del pool[0]


def _pool() -> list[np.ndarray]:
    pool: list[np.ndarray] | None = getattr(_buffers, "pool", None)
    if pool is None:
        pool = _buffers.pool = []
    return pool


class CompiledCentring:
    """The numpy path's centring by the compiled `centre_and_sum` (see `gaussum._compiled.use_centring`).

    Each block's ``Y = X - shift`` is written into one buffer that every block reuses (no
    temporary per block), and the raw column sums of X come from the same read, error-free: the
    mean is then ``sum x / n`` to within an ulp with no second read for data near zero (see
    `settled`), at less cost than numpy's subtraction and column sums (`centre_and_sum`). The
    column sums about the shift are derived from them (`column_sums`). Unweighted rows only.
    """

    def __init__(self, kernels: Any, rows: int, d: int) -> None:
        self._kernels = kernels
        self._buffer = _borrow_buffer(rows * d).reshape(rows, d)
        self._sums = np.empty((2, d))
        self.reset()

    def close(self) -> None:
        """Give the buffer back for the thread's next call (see `_borrow_buffer`)."""
        _give_back(self._buffer)

    def reset(self) -> None:
        """Start a new pass: no blocks added."""
        d = self._sums.shape[1]
        self.hi, self.lo, self.blocks = np.zeros(d), np.zeros(d), 0

    def first_shift(self, block: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`_first_shift` of an unweighted block of an input of `rows` rows by the compiled kernel:
        no temporaries."""
        moments = np.empty((3, block.shape[1]))
        self._kernels.first_shift(block, _NO_WEIGHTS, block.shape[0], moments)
        spread = np.sqrt(moments[2])
        return (*_settled_shift(*two_sum(moments[0], moments[1]), spread, rows), spread)

    def centre(self, block: np.ndarray, shift: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``Y = block - shift`` (a view of the buffer) and the block's raw column sums, ``(2, d)``."""
        Y = self._buffer[:block.shape[0]]
        self._kernels.centre_and_sum(block, shift[0], shift[1], Y, self._sums)
        return Y, self._sums

    def add(self, sums: np.ndarray) -> None:
        """Add a block's raw column sums (from `centre`) to the pass's, keeping their rounding."""
        self.hi, lost = two_sum(self.hi, sums[0])
        self.lo += lost + sums[1]
        self.blocks += 1

    def column_sums(self, n: float, shift: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The column sums about `shift` (`_sums_about_shift`)."""
        return _sums_about_shift(self.hi, self.lo, n, shift)

    def settled(self, squares: np.ndarray, n: float, shift: tuple[np.ndarray, np.ndarray], rows: int) -> np.ndarray:
        """Which means the raw sums give correctly rounded, with no extra read (`_raw_sums_settled`)."""
        return _raw_sums_settled(self.hi, self.lo, squares, n, shift, rows, max(self.blocks, 1), self._kernels.CHUNK)


def _sums_about_shift(
    hi: np.ndarray, lo: np.ndarray, n: float, shift: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The column sums about `shift`, ``(hi + lo) - n (coarse + fine)``, as two parts to about u**2.

    ``hi + lo`` are the raw column sums of unweighted rows (n is their count, exact). ``n coarse``
    is taken exactly (two-product); ``n fine`` rounds by u n |fine|, which is u**2 of the sum, for
    the fine part is below an ulp of the coarse one.
    """
    coarse, fine = shift
    with np.errstate(all="ignore"):
        product, product_err = two_product(np.full_like(coarse, n), coarse)
        c, lost = two_sum(hi, -product)
        err = ((lost + lo) - product_err) - n * fine
        # inf or NaN in the data (nan_policy="propagate"), or values near overflow (whose
        # two-product overflows): the sum is then the plain one, with no error known.
        err[~np.isfinite(err)] = 0.0
        total, total_err = two_sum(c, err)
        finite = np.isfinite(total)
        return np.where(finite, total, c), np.where(finite, total_err, 0.0)


def _raw_sums_settled(
    hi: np.ndarray,
    lo: np.ndarray,
    squares: np.ndarray,
    n: float,
    shift: tuple[np.ndarray, np.ndarray],
    rows: int,
    blocks: int,
    chunk: int,
) -> np.ndarray:
    """Which of the error-free raw column sums ``hi + lo`` give a correctly rounded mean (`_settled_sums`).

    The sums of magnitudes that bound is stated in come from what the pass has: each
    ``|x| <= |y| + |coarse| + |fine|`` (to rounding), and ``sum |y| <= sqrt(n sum y^2)``
    (Cauchy-Schwarz) with `squares` the scatter's diagonal about the shift; twice that, to spare.
    Squares that may have underflowed (`_spread_underflowed`) undercount ``sum |y|``, so no
    variable whose shift is as tiny is settled by them: its mean is taken again.
    """
    coarse, fine = shift
    with np.errstate(all="ignore"):
        magnitudes = 2.0 * (np.sqrt(n * squares) + n * (np.abs(coarse) + np.abs(fine)))
        unreliable = _spread_underflowed(coarse + fine, np.sqrt(squares / n))
    settled: np.ndarray = _settled_sums(hi, lo, magnitudes, rows, blocks, chunk) & ~unreliable
    return settled


def _raw_sum_variables(coarse: np.ndarray, spread: np.ndarray, values: int, rows: int) -> np.ndarray:
    """The variables whose mean may be one `_near_zero` flags, whose raw sums the compiled kernel
    should take error-free (indices, ascending): those left unshifted, and those whose shift (the
    first rows' mean) is within twice `_near_zero`'s bound of zero (the first rows only estimate
    the whole), and those whose spread may have underflowed. The others keep the kernel's sums
    about the shift, for an exact sum costs a pass of its own over each chunk."""
    ratio = _NEAR_ZERO_STDS if values <= _SMALL_VALUES else _CENTRED_RATIO / math.sqrt(max(rows, 1))
    near = (coarse == 0) | (np.abs(coarse) < 2.0 * ratio * spread) | _spread_underflowed(coarse, spread)
    return np.flatnonzero(near)


# Below this spread the squares of the deviations are subnormal or zero (1e-290 and less), so the
# spread computed from them may be far too small; `_spread_underflowed` then asks for exact sums.
_UNDERFLOW_SPREAD = 1e-145
_TINY_MEAN = 1e-140


def _spread_underflowed(mean: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """Variables of values so small that their spread may have underflowed (its squares below
    the normal range): their mean cannot be judged far from zero by it, so it is taken from exact
    sums. Not columns of zeros (mean and spread both 0), nor a tiny spread about a mean that is
    not tiny (the shift then centres the values well)."""
    underflowed: np.ndarray = (spread < _UNDERFLOW_SPREAD) & (np.abs(mean) < _TINY_MEAN) & ((mean != 0) | (spread != 0))
    return underflowed


def _blocks(
    X: np.ndarray, weights: Weights, rows: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray | None, np.ndarray | None]]:
    """``(first row index, float64 block in C order, its weights, its w2 weights)`` for blocks of `rows` rows."""
    w, q = weights
    for start in range(0, X.shape[0], rows):
        stop = start + rows
        # One block at a time into float64 rows in C order: a column-major (Fortran-ordered) or
        # strided input is converted here, never copied whole; C-ordered float64 is not copied.
        block = np.ascontiguousarray(X[start:stop], dtype=np.float64)
        yield start, block, None if w is None else w[start:stop], None if q is None else q[start:stop]


def _all_finite(*arrays: np.ndarray) -> bool:
    return all(bool(np.isfinite(a).all()) for a in arrays)


def _apply_nan_policy(
    block: np.ndarray, w: np.ndarray | None, q: np.ndarray | None, start: int, nan_policy: str, name: str
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, int]:
    """Handle a block whose sums came out non-finite: raise, or drop its non-finite rows."""
    bad = first_nonfinite_row(block)
    if bad is None:
        raise overflow_error(name, block, start)
    if nan_policy == "raise":
        raise nonfinite_row_error(name, start + bad, block[bad])
    finite = np.isfinite(block).all(axis=1)
    keep = (block[finite], None if w is None else w[finite], None if q is None else q[finite])
    return (*keep, int(block.shape[0] - finite.sum()))


def _sums_about(
    X: np.ndarray,
    weights: Weights,
    diagonal: bool,
    nan_policy: str,
    rows: int,
    name: str,
    shift: tuple[np.ndarray, np.ndarray] | None,
    centring: CompiledCentring | None = None,
) -> tuple[
    float, float, tuple[np.ndarray, np.ndarray], np.ndarray, int, tuple[np.ndarray, np.ndarray] | None, ExactSums | None
]:
    """One pass over X: total weight, w2, column sums (two parts) and scatter about `shift`, rows dropped.

    With ``shift=None`` the shift is taken from the first block that has weight, and the
    error-free raw sums of the variables whose mean it puts near zero are taken too
    (`_exact_candidates`; the last item; None when there are none, when a shift was given, or
    with `centring`, whose raw sums serve instead). Non-finite values are found without an extra
    pass: a block with NaN or inf has non-finite sums, and only then is it searched, so clean
    data pays nothing for the check.
    """
    d = X.shape[1]
    n, w2, c, c_err = 0.0, 0.0, np.zeros(d), np.zeros(d)
    scatter = np.zeros(d if diagonal else (d, d))
    dropped = 0
    exact = None
    if centring is not None:
        centring.reset()
    for start, block, w, q in _blocks(X, weights, rows):
        cleaned = False
        if shift is None:
            if centring is None:
                first = _first_shift(block, w, X.shape[0])
            else:
                first = centring.first_shift(block, X.shape[0])
            if nan_policy != "propagate" and (first is None or not _all_finite(*first[:2])):
                if first is not None or not np.isfinite(block).all():
                    block, w, q, k = _apply_nan_policy(block, w, q, start, nan_policy, name)
                    dropped += k
                    cleaned = True
                first = _first_shift(block, w, X.shape[0]) if block.shape[0] else None
            if first is None:
                continue
            shift = first[0], first[1]
            candidates = _exact_candidates(shift[0], first[2], X.shape[0] * d, X.shape[0])
            if candidates.size and centring is None:
                # Variables whose mean may be near zero: their error-free sums are taken in this
                # pass, while each block is in cache, for `_refined` (such a mean needs them).
                exact = ExactSums(None if candidates.size == d else candidates, candidates.size, X.shape[0])
        n_b, c_b, s_b = _centred_sums(block, w, shift, diagonal, centring)
        squares = s_b if diagonal else np.diagonal(s_b)
        if nan_policy != "propagate" and not _all_finite(c_b, squares):
            if cleaned:
                raise overflow_error(name, block, start)
            block, w, q, k = _apply_nan_policy(block, w, q, start, nan_policy, name)
            dropped += k
            if block.shape[0] == 0:
                continue
            n_b, c_b, s_b = _centred_sums(block, w, shift, diagonal, centring)
            if not _all_finite(c_b, s_b if diagonal else np.diagonal(s_b)):
                raise overflow_error(name, block)  # rows were dropped: indices no longer apply
        if exact is not None:
            exact.add(block, w)
        n += n_b
        w2 += n_b if q is None else float(q.sum())
        if centring is not None:
            centring.add(c_b)  # the raw sums: the column sums about the shift are derived below
        else:
            # The blocks' column sums are added with their rounding kept (two-sum): it is d floats
            # a block, and the mean then carries no error from the number of blocks.
            c, lost = two_sum(c, c_b)
            c_err += lost
        scatter += s_b
    if centring is not None and shift is not None:
        c, c_err = centring.column_sums(n, shift)
    return n, w2, (c, c_err), scatter, dropped, shift, exact


def summarize_rows(
    X: np.ndarray,
    weights: Weights,
    diagonal: bool,
    nan_policy: str,
    block_rows: int | None = None,
    name: str = "X",
) -> tuple[float, np.ndarray, np.ndarray, float, np.ndarray, int]:
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

    Parameters
    ----------
    weights : (w, q)
        From `row_weights`: each row's weight ``w = f a`` and its contribution ``q = f a^2`` to
        w2 (None for ones, and for ``q = w``).

    Returns
    -------
    n, mean, M2, w2, mean_err, rows_dropped
        ``mean_err`` is the rounding error of ``mean`` (the exact mean is ``mean + mean_err``,
        see `mean_from_shift`); ``rows_dropped`` counts the rows that ``nan_policy="omit"`` left
        out.
    """
    N, d = X.shape
    rows = block_rows or rows_per_block(d)
    if _compiled.use_rows(N * d, d):  # never for small data, unless the compiled path is forced
        result = _summarize_compiled(X, weights, diagonal, nan_policy, rows, name)
        if result is not None:
            return result
    # An explicit block size asks for the streamed path (the tests use it to cut small data).
    small_path = block_rows is None and weights[0] is None and type(X) is np.ndarray
    if small_path and 0 < N * d <= _SMALL_PATH_VALUES:
        small = _summarize_small(X, diagonal, nan_policy, name)
        if small is not None:
            return small
    centring = None
    if weights[0] is None and _compiled.use_centring(N * d):
        centring = CompiledCentring(_compiled.kernels(), min(rows, N), d)
    try:
        result = _summarize_numpy(X, weights, diagonal, nan_policy, rows, name, centring)
    finally:
        if centring is not None:
            centring.close()
    dropped = result[5]
    if small_path and dropped and 0 < (N - dropped) * d <= _SMALL_PATH_VALUES:
        # Rows left out brought the data under the small path's size: its result, so the same
        # finite rows give the same bits with or without the rows nan_policy="omit" dropped.
        with np.errstate(all="ignore"):
            kept = X[np.isfinite(X).all(axis=1)]
        small = _summarize_small(kept, diagonal, nan_policy, name)
        if small is not None:
            return (*small[:5], dropped)
    return result


# Unweighted data of at most this many values takes `_summarize_small`. Measured per call against
# the streamed path: 41 against 120 µs at 40 values, 72 against 151 at 512, about equal at 2,000,
# 290 against 210 at 4,000 (math.fsum's per-value cost).
_SMALL_PATH_VALUES = 2**10


def _summarize_small(
    X: np.ndarray, diagonal: bool, nan_policy: str, name: str
) -> tuple[float, np.ndarray, np.ndarray, float, np.ndarray, int] | None:
    """`summarize_rows` for small unweighted data (`_SMALL_PATH_VALUES` values at most): mean first.

    The column sums are exact (``math.fsum``, Shewchuk's algorithm, each kept as a double-float),
    so the mean is correctly rounded; the rows are then centred on it once and M2 is the
    corrected two-pass about that shift (`_centred_sums`, `_corrected_scatter`). Below a few
    hundred values this costs a third of the streamed path's calls (its shift estimate,
    re-centring test and exact sums of the means near zero, all made needless by an exact mean). Rows with NaN or inf
    are raised or dropped here as on the streamed path, so the same finite rows give the same
    bits with or without them. None under ``nan_policy="propagate"`` with such rows, or when a
    sum or a square overflows: the streamed path then gives the NaN result or reports overflow.
    """
    dropped = 0
    with np.errstate(all="ignore"):
        X = np.asarray(X, dtype=np.float64)  # as the streamed path's blocks: sums of float64 values
        n = float(X.shape[0])
        try:
            mean, mean_err = _fsum_means(X.T.tolist(), n)
        except ValueError:  # inf - inf
            mean = np.array([math.nan])
        except OverflowError:  # an intermediate sum overflowed
            return None
        if not np.isfinite(mean).all():  # NaN or inf in the data
            if nan_policy == "propagate" or first_nonfinite_row(X) is None:
                return None
            X, _, _, dropped = _apply_nan_policy(X, None, None, 0, nan_policy, name)
            rest = _summarize_small(X, diagonal, nan_policy, name) if X.shape[0] else None
            return None if rest is None else (*rest[:5], dropped)
        # The two parts of the exact mean: centred on `mean` alone, data far from zero would be
        # multiples of ulp(mean), whose squares sum with a bias (2.5e-15 on 187 rows at 1e9).
        _, c, scatter = _centred_sums(X, None, (mean, mean_err), diagonal)
        if not np.isfinite(scatter if diagonal else np.diagonal(scatter)).all():  # squares overflowed
            return None
    return n, mean, _corrected_scatter(scatter, c, n, diagonal), n, mean_err, 0


def _summarize_numpy(
    X: np.ndarray,
    weights: Weights,
    diagonal: bool,
    nan_policy: str,
    rows: int,
    name: str,
    centring: CompiledCentring | None,
) -> tuple[float, np.ndarray, np.ndarray, float, np.ndarray, int]:
    """`summarize_rows` on the numpy path (blocks centred by `centring` where given)."""
    d = X.shape[1]
    shift: tuple[np.ndarray, np.ndarray] | None = None
    exact = None
    with np.errstate(all="ignore"):
        for attempt in range(3):
            n, w2, sums, scatter, dropped, shift, found = _sums_about(
                X, weights, diagonal, nan_policy, rows, name, shift, centring
            )
            exact = exact or found
            if n == 0:
                return 0.0, np.zeros(d), np.zeros(d if diagonal else (d, d)), 0.0, np.zeros(d), dropped
            offset = sums[0] / n
            squares = scatter if diagonal else np.diagonal(scatter)
            assert shift is not None  # n > 0: some block had weight, and gave the shift
            far = _far(offset, n, squares, shift)
            # After the last pass the shift must stay the one its sums were taken about.
            if not far.any() or not _all_finite(offset) or attempt == 2:
                break
            assert shift is not None  # n > 0: some block had weight, and gave the shift
            shift = two_sum(shift[0], shift[1] + offset)
    assert shift is not None  # n > 0: some block had weight, and gave the shift
    result = _finish(n, w2, sums, scatter, shift, diagonal, nan_policy, name, dropped)
    settled = None
    if centring is not None:
        settled = centring.settled(scatter if diagonal else np.diagonal(scatter), n, shift, rows)
    return _refined(X, weights, rows, result, exact, settled=settled)


def _finish(
    n: float,
    w2: float,
    sums: tuple[np.ndarray, np.ndarray],
    scatter: np.ndarray,
    shift: tuple[np.ndarray, np.ndarray],
    diagonal: bool,
    nan_policy: str,
    name: str,
    dropped: int,
) -> tuple[float, np.ndarray, np.ndarray, float, np.ndarray, int]:
    """``mean = shift + c / n`` and ``M2 = S - c c^T / n`` from the sums about `shift` (see `summarize_rows`).

    `sums` is the column sums ``c`` as two parts (``hi, lo``); the mean comes back with its
    rounding error (`mean_from_shift`).
    """
    with np.errstate(all="ignore"):
        mean, mean_err = mean_from_shift(shift[0], shift[1], sums[0], sums[1], n)
    M2 = _corrected_scatter(scatter, sums[0], n, diagonal)
    if nan_policy != "propagate" and not (math.isfinite(n) and math.isfinite(w2)):
        raise Float64OverflowError(
            f"the weights of {name} overflow float64 when summed (total {n:g}); rescale them first"
        )
    return n, mean, M2, w2, mean_err, dropped


def _corrected_scatter(scatter: np.ndarray, c: np.ndarray, n: float, diagonal: bool) -> np.ndarray:
    """``M2 = S - c c^T / n`` (in `scatter`'s place, its upper triangle mirrored), variances
    clipped at zero and covariances at Cauchy-Schwarz: the corrected two-pass about a shift."""
    with np.errstate(all="ignore"):
        if diagonal:
            M2: np.ndarray = scatter - c * c / n
            np.maximum(M2, 0.0, out=M2)
            return M2
        M2 = mirror_upper(scatter)
        M2 -= np.multiply.outer(c, c) / n
        index = np.diag_indices(c.shape[0])
        M2[index] = np.maximum(M2[index], 0.0)
        # A variance clipped at 0 (constant data) or underflowed leaves its covariances as
        # rounding residue: bound them by Cauchy-Schwarz so the value is one the checks accept.
        consistent_scatter(M2)
    return M2


def mean_from_shift(
    coarse: np.ndarray, fine: np.ndarray, c: np.ndarray, c_err: np.ndarray, n: Any
) -> tuple[np.ndarray, np.ndarray]:
    """``coarse + fine + (c + c_err) / n`` as a double-float: the mean, and its rounding error.

    The two-part shift is exact (``coarse + fine``), the quotient's rounding is recovered exactly
    (`_combine.quotient`), and two-sum keeps the rounding of the final sum, so the mean is
    correctly rounded whenever the column sums are accurate: always for data whose mean is large
    next to its spread (``c`` is then a small correction), otherwise see `_refined`. Works on
    ``(d,)`` arrays or ``(d, s)`` with one n per column.
    """
    with np.errstate(all="ignore"):
        offset, offset_err = quotient(c, c_err, n)
        hi, lo = two_sum(coarse, offset)
        lo += fine + offset_err
        # NaN or inf in the data (nan_policy="propagate"), or a split overflowed by weights past
        # 1e300: the mean is then the plain sum of its parts, with no error known.
        lo = np.where(np.isfinite(lo), lo, np.where(np.isfinite(fine), fine, 0.0))
        mean = hi + lo
        err = lo - (mean - hi)
        err[~np.isfinite(err)] = 0.0
    return mean, err


# Data of this many values or fewer, whose mean is within this many standard deviations of zero,
# has its mean taken again by an error-free column sum (`_refined`): a mean that is small next
# to the spread is a small difference of large terms, which the column sums leave a few ulps
# off. Past that size the sums' rounding grows like u std sqrt(N) (measured: 5e4 u on 1e6 rows
# of unit spread), so only a mean within `_CENTRED_RATIO / sqrt(N)` standard deviations of zero
# needs it (measured: 1.7 ulps at 64 / sqrt(N), 3 at 16 / sqrt(N)); only such variables are redone.
_SMALL_VALUES = 2**18
_NEAR_ZERO_STDS = 16.0
_CENTRED_RATIO = 256.0


def _double_quotient(
    hi: np.ndarray, lo: np.ndarray, n_hi: np.ndarray, n_lo: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(hi + lo) / (n_hi + n_lo)`` as ``q, e``, right to about u**2 (n a double-float too)."""
    q = hi / n_hi
    p, e = two_product(q, n_hi)
    return q, (((hi - p) - e) + lo - q * n_lo) / n_hi


def _near_zero(mean: np.ndarray, squares: np.ndarray, n: float, values: int) -> np.ndarray:
    """Which means are close enough to zero, for their spread, that `_refined` must redo them."""
    with np.errstate(all="ignore"):
        spread = np.sqrt(squares / n)
    ratio = _NEAR_ZERO_STDS if values <= _SMALL_VALUES else _CENTRED_RATIO / math.sqrt(max(n, 1.0))
    near: np.ndarray = (np.abs(mean) < ratio * spread) | _spread_underflowed(mean, spread)
    return near


def _exact_candidates(coarse: np.ndarray, spread: np.ndarray, values: int, rows: int) -> np.ndarray:
    """The variables whose error-free sums the numpy path takes in its pass (`_raw_sum_variables`):
    none for data small enough for `_fsum_refined`, which does it more cheaply afterwards."""
    if values <= _FSUM_VALUES:
        return np.empty(0, dtype=np.intp)
    return _raw_sum_variables(coarse, spread, values, rows)


class ExactSums:
    """Error-free column sums ``sum w_i x_i``, and ``sum w_i``, of some variables, block by block.

    Dekker's two-product for the weighted values, then Rump, Ogita and Oishi's extraction
    (`_combine.segment_sums`) over about `_EXACT_ROWS` rows at a time, those sums added by
    two-sum: every sum is a double-float right to about u**2 of the largest term. Rows are
    gathered into a buffer first, so the numpy calls are paid once per buffer, not per block.
    """

    def __init__(self, columns: np.ndarray | None, k: int, rows: int) -> None:
        self.columns = columns  # None: every variable
        self._column_list = [] if columns is None else [int(c) for c in columns]
        self.hi, self.lo = np.zeros(k), np.zeros(k)
        self.n_hi, self.n_lo = 0.0, 0.0
        self.weighted = False
        # Variables by rows: reductions along rows are contiguous. No larger than the data.
        self._capacity = max(1, min(rows, _EXACT_ROWS))
        self._values = np.empty((k, self._capacity))
        self._weights = np.empty(self._capacity)
        self._filled = 0

    def add(self, block: np.ndarray, w: np.ndarray | None) -> None:
        """Add the rows of a float64 block (all of its variables) and their weights (None: ones)."""
        start = 0
        while start < block.shape[0]:
            take = min(block.shape[0] - start, self._capacity - self._filled)
            rows = block[start:start + take]
            out = self._values[:, self._filled:self._filled + take]
            if self.columns is None:
                out[...] = rows.T
            else:
                for i, column in enumerate(self._column_list):  # strided copies: cheaper than fancy indexing
                    out[i] = rows[:, column]
            if w is not None:
                self.weighted = True
                self._weights[self._filled:self._filled + take] = w[start:start + take]
            elif self.weighted:
                self._weights[self._filled:self._filled + take] = 1.0
            self._filled += take
            start += take
            if self._filled == self._capacity:
                self._flush()

    def _flush(self) -> None:
        k = self._filled
        if not k:
            return
        values = self._values[:, :k]
        with np.errstate(all="ignore"):
            values_err = None
            if self.weighted:
                w = self._weights[:k]
                values, values_err = two_product(values, w)
                head, tail = _one_segment_sum(w[None])
                self.n_hi, lost = two_sum(self.n_hi, float(head[0]))
                self.n_lo += lost + float(tail[0])
            head, tail = _one_segment_sum(values)
            self.hi, lost = two_sum(self.hi, head)
            self.lo += lost + tail
            if values_err is not None:
                self.lo += values_err.sum(axis=1)
        self._filled = 0

    def mean(self, n: float, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """The means and their rounding errors; `n` is the count when unweighted (exact)."""
        self._flush()
        with np.errstate(all="ignore"):
            if not self.weighted:
                q, q_err = quotient(self.hi, self.lo, n)
            else:
                # Rows added before the first weighted block counted 1 each.
                total = self.n_hi + self.n_lo
                q, q_err = _double_quotient(
                    self.hi, self.lo, np.array(total), np.array((self.n_hi - total) + self.n_lo)
                )
            mean, err = two_sum(q, q_err)
        return mean, err


# Data of at most this many values has its flagged means taken by `_fsum_refined`.
_FSUM_VALUES = 2**9


def _fsum_refined(
    X: np.ndarray,
    w: np.ndarray | None,
    near: np.ndarray,
    result: tuple[float, np.ndarray, np.ndarray, float, np.ndarray, int],
) -> tuple[float, np.ndarray, np.ndarray, float, np.ndarray, int]:
    """`_refined` for small data: exact sums by ``math.fsum`` (Shewchuk's algorithm), variable by variable.

    ``sum w x`` is the fsum of the two-products' parts; each sum is kept as a double-float (its
    correctly rounded value and the fsum of what that left). Rows with NaN or inf (dropped by
    ``nan_policy="omit"``) are left out.
    """
    n, mean, M2, w2, mean_err, dropped = result
    rows = np.ascontiguousarray(X, dtype=np.float64)
    if dropped:
        finite = np.isfinite(rows).all(axis=1)
        rows, w = rows[finite], None if w is None else w[finite]
    columns = np.flatnonzero(near)
    values = np.ascontiguousarray(rows[:, columns].T)
    with np.errstate(all="ignore"):
        if w is None:
            parts = values.tolist()
            total = np.array([n]), np.zeros(1)
        else:
            p, e = two_product(values, w[None, :])
            parts = [a + b for a, b in zip(p.tolist(), e.tolist(), strict=True)]
            weights = w.tolist()
            n_hi = math.fsum(weights)
            total = np.array([n_hi]), np.array([math.fsum([*weights, -n_hi])])
        hi, lo = _fsum_sums(parts)
        q, q_err = _double_quotient(hi, lo, *total)
        exact, exact_err = two_sum(q, q_err)
    if not (np.isfinite(exact).all() and np.isfinite(exact_err).all()):
        return result
    mean, mean_err = mean.copy(), mean_err.copy()
    mean[columns], mean_err[columns] = exact, exact_err
    return n, mean, M2, w2, mean_err, dropped


def _fsum_means(columns: list[list[float]], n: float) -> tuple[np.ndarray, np.ndarray]:
    """The correctly rounded mean of each list of `n` values, and its rounding error.

    `_fsum_sums`' double-float sums, divided as `quotient` divides them and renormalised by
    two-sum, in Python floats: the same operations, so the same bits, without the dozen numpy
    calls on arrays of a few values (10 of the 75 µs of `from_samples` on 100 x 4). Raises as
    ``math.fsum`` does.
    """
    means, errors = [], []
    for column in columns:
        hi = math.fsum(column)
        mean, error = two_sum(*scalar_quotient(hi, n, math.fsum([*column, -hi])))
        means.append(mean)
        errors.append(error)
    return np.array(means), np.array(errors)


def _fsum_sums(parts: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Each list's exact sum as a double-float ``hi + lo`` (``math.fsum``, Shewchuk's algorithm:
    hi correctly rounded, lo the fsum of what it left). Raises as ``math.fsum`` does."""
    hi = [math.fsum(part) for part in parts]
    lo = [math.fsum([*part, -total]) for part, total in zip(parts, hi, strict=True)]
    return np.array(hi), np.array(lo)


# Rows of the variables near zero summed at a time by `ExactSums`.
_EXACT_ROWS = 2**15


def _one_segment_sum(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_combine.run_sums` along the rows of `values` (f, k), C-ordered: ``hi, lo`` of shape (f,),
    the remainders summed pairwise along each row."""
    return run_sums(values.T)


def _refined(
    X: np.ndarray,
    weights: Weights,
    rows: int,
    result: tuple[float, np.ndarray, np.ndarray, float, np.ndarray, int],
    exact: ExactSums | None = None,
    settled: np.ndarray | None = None,
) -> tuple[float, np.ndarray, np.ndarray, float, np.ndarray, int]:
    """`result` with the means that `_near_zero` flags taken from error-free column sums (`ExactSums`).

    The mean is then correctly rounded to within an ulp. The sums of the variables the shift left
    at zero come from the pass itself (`exact`, or for the compiled kernel the variables
    `settled` marks, whose sums it proved close enough); any other flagged variable costs one
    more read of X. Only for finite means (rows that ``nan_policy="omit"`` dropped are left out
    again; under "propagate" a NaN or inf mean is the answer, and the other variables are still
    refined); M2 is kept.
    """
    n, mean, M2, w2, mean_err, dropped = result
    finite = np.isfinite(mean)
    if n == 0 or not finite.any():
        return result
    squares = M2 if M2.ndim == 1 else np.diagonal(M2)
    near = _near_zero(mean, squares, n, X.shape[0] * X.shape[1]) & finite
    if settled is not None:
        near &= ~settled
    d = X.shape[1]
    covered = np.zeros(d, dtype=bool)
    if exact is not None:
        # Sums taken in the pass already: every variable they cover gets the error-free mean.
        covered[slice(None) if exact.columns is None else exact.columns] = True
        near |= covered & finite
    if not near.any():
        return result
    if not (near <= covered).all() and X.shape[0] * X.shape[1] <= _FSUM_VALUES and type(X) is np.ndarray:
        # Small data: math.fsum per variable is exact, and cheaper than numpy calls this small.
        return _fsum_refined(X, weights[0], near, result)
    if not (near <= covered).all():
        exact = ExactSums(None if near.all() else np.flatnonzero(near), int(near.sum()), X.shape[0])
        for _, block, w, _ in _blocks(X, weights, rows):
            if dropped:  # the rows nan_policy="omit" left out: those with NaN or inf
                finite = np.isfinite(block).all(axis=1)
                block, w = block[finite], None if w is None else w[finite]
            exact.add(block, w)
    assert exact is not None
    exact_mean, exact_err = exact.mean(n, X.shape[0])
    columns = np.arange(d) if exact.columns is None else exact.columns
    mean, mean_err = mean.copy(), mean_err.copy()
    # Not where an exact sum overflowed (or a covered variable holds NaN): the result stays.
    take = near[columns] & np.isfinite(exact_mean) & np.isfinite(exact_err)
    mean[columns[take]], mean_err[columns[take]] = exact_mean[take], exact_err[take]
    return n, mean, M2, w2, mean_err, dropped


def _compensated_sum(parts: np.ndarray, errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sum of ``parts + errors`` over axis 0 as ``hi, lo``, right to about u**2 (`_combine.run_sums`)."""
    hi, lo = run_sums(parts)
    return hi, lo + errors.sum(axis=0)


def _pairwise_sum(parts: np.ndarray) -> np.ndarray:
    """The sum of `parts` over axis 0 by halving, in an order fixed by their number alone."""
    while parts.shape[0] > 1:
        half = parts.shape[0] // 2
        head = parts[:half] + parts[half:2 * half]
        parts = head if parts.shape[0] % 2 == 0 else np.concatenate([head, parts[2 * half:]])
    total: np.ndarray = parts[0]
    return total


_NO_WEIGHTS = np.empty(0)


def _summarize_compiled(
    X: np.ndarray, weights: Weights, diagonal: bool, nan_policy: str, rows: int, name: str
) -> tuple[float, np.ndarray, np.ndarray, float, np.ndarray, int] | None:
    """`summarize_rows` by the compiled kernel (`gaussum._compiled`), or None to use the numpy path.

    The same corrected two-pass about the same kind of two-part shift, with the same re-centring
    rule. Anything but clean float64 rows in C order goes to the numpy path: other dtypes and
    layouts, data whose sums come out non-finite (NaN, inf or overflow: the numpy path then
    applies the NaN policy from the start, so dropped rows, errors and their row indices are
    exactly the numpy path's), and a sample of no weight for the shift.
    """
    if not (type(X) is np.ndarray and X.dtype == np.float64 and X.flags.c_contiguous and X.shape[0]):
        return None
    kernels = _compiled.kernels()
    w, q = weights
    if w is None:
        w_rows = _NO_WEIGHTS
    elif w.dtype == np.float64 and w.flags.c_contiguous:
        w_rows = w
    else:
        return None
    N, d = X.shape
    moments = np.empty((3, d))
    with np.errstate(all="ignore"):
        if not kernels.first_shift(X, w_rows, min(N, _compiled.SHIFT_ROWS), moments) > 0:
            return None
        if not _all_finite(moments):
            return None
        spread = np.sqrt(moments[2])
        coarse, fine = _settled_shift(*two_sum(moments[0], moments[1]), spread, N if w is None else 0)
        raw = _raw_sum_variables(coarse, spread, N * d, N) if w is None else np.empty(0, dtype=np.intp)
        blocks = -(-N // rows)
        products = d if diagonal else d * (d + 1) // 2
        n_b, c_b, s_b = np.empty(blocks), np.empty((blocks, 2, d)), np.empty((blocks, products))
        diag_entries = slice(None) if diagonal else _upper(d)[2]
        for attempt in range(3):
            kernels.block_sums(X, w_rows, coarse, fine, rows, diagonal, raw, n_b, c_b, s_b)
            if not (_all_finite(n_b, c_b) and _all_finite(s_b[:, diag_entries])):
                return None
            n, packed = float(_pairwise_sum(n_b[:, None])[0]), _pairwise_sum(s_b)
            c, c_err = _compensated_sum(c_b[:, 0], c_b[:, 1])
            if n == 0:
                return None
            if raw.size:
                raw_sums = c[raw], c_err[raw]
                c, c_err = c.copy(), c_err.copy()
                c[raw], c_err[raw] = _sums_about_shift(*raw_sums, n, (coarse[raw], fine[raw]))
            offset = c / n
            far = _far(offset, n, packed[diag_entries], (coarse, fine))
            if not far.any() or attempt == 2:
                break
            coarse, fine = two_sum(coarse, fine + offset)
    if diagonal:
        scatter = packed
    else:
        i, j, _ = _upper(d)
        scatter = np.zeros((d, d))
        scatter[i, j] = packed
    w2 = n if q is None else float(q.sum())
    result = _finish(n, w2, (c, c_err), scatter, (coarse, fine), diagonal, nan_policy, name, 0)
    settled = None
    if raw.size:
        squares = packed[diag_entries][raw]
        settled = np.zeros(d, dtype=bool)
        settled[raw] = _raw_sums_settled(
            *raw_sums, squares, n, (coarse[raw], fine[raw]), rows, blocks, kernels.CHUNK
        )
    return _refined(X, weights, rows, result, settled=settled)


def _settled_sums(
    c: np.ndarray, c_err: np.ndarray, magnitudes: np.ndarray, rows: int, blocks: int, chunk: int
) -> np.ndarray:
    """Which of the compiled kernels' error-free raw column sums are close enough to exact that
    the mean they give is correctly rounded to within an ulp, with no extra read of the data.

    A kernel's raw sum of a variable (`block_sums` with ``raw``, `centre_and_sum`) is a
    double-float whose error is at most
    ``u**2`` times the sum of the magnitudes times a count of the roundings it went through:
    the sums along chunks of `chunk` rows (``4 chunk**2``: `block_sums`' extraction; Sum2's
    is ``chunk**2``), ``m`` chunk totals per block by Neumaier's sum (``2 m**2``) and the
    blocks' totals (``B + B m``); four times that to spare.
    Where that bound is under a quarter of an ulp of the sum, the mean (``sum / n``, taken to
    about ``u**2``) rounds to within 0.75 ulp of the exact mean. Only unweighted rows qualify:
    they enter the sums exactly.
    """
    u = np.finfo(np.float64).eps / 2
    m = -(-rows // chunk)
    roundings = 4 * chunk * chunk + 2 * m * m + blocks + blocks * m
    with np.errstate(all="ignore"):
        bound = 4.0 * roundings * u * u * magnitudes
        settled: np.ndarray = (magnitudes > 0) & (bound <= 0.25 * u * np.abs(c + c_err))
    return settled


# -- many groups at once ----------------------------------------------------------------------


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


def _segment_centred_sums(
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
    q: np.ndarray | None,
    starts: np.ndarray,
    sizes: np.ndarray,
    diagonal: bool,
    buffer: np.ndarray,
) -> Stacked:
    """Corrected two-pass moments of each segment of the columns of Xt (shape (d, k)).

    Returns ``n (s,)``, ``mean (d, s)``, M2 packed as ``(s, d(d+1)/2)`` upper triangles (or
    ``(s, d)`` if diagonal), ``w2 (s,)`` and the means' rounding errors ``(d, s)``, where s is
    the number of segments.
    """
    d = Xt.shape[0]
    n = sizes.astype(np.float64) if w is None else np.add.reduceat(w, starts)
    w2 = n if q is None else np.add.reduceat(q, starts)
    has_weight = n > 0
    safe_n = np.where(has_weight, n, 1.0)
    # The two-part shift of `_first_shift`: a coarse mean, then the mean of what is left after it;
    # and the same re-centring threshold, `_MAX_SHIFT_IN_STD`.
    coarse = _segment_sums(Xt if w is None else Xt * w, starts) / safe_n
    Y = Xt - np.repeat(coarse, sizes, axis=1)
    fine = _segment_sums(Y if w is None else Y * w, starts) / safe_n
    Y -= np.repeat(fine, sizes, axis=1)
    coarse, fine = two_sum(coarse, fine)
    c, scatter = _segment_centred_sums(Y, w, starts, diagonal, buffer)
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
        c[:, far], scatter[:, far] = _segment_centred_sums(
            Y_far, None if w is None else w[rows], far_starts, diagonal, buffer
        )
    mean, mean_err = mean_from_shift(coarse, fine, c, np.zeros_like(c), safe_n)
    packed = _packed_M2(scatter, c, safe_n, d, diagonal)
    near = _near_zero_segments(mean, packed[:, diag_rows].T, n, sizes, d)
    if near.any():
        exact, exact_err = _exact_segment_means(Xt, w, starts, sizes, n, near)
        kept = np.isfinite(exact)
        mean[:, near] = np.where(kept, exact, mean[:, near])
        mean_err[:, near] = np.where(kept, exact_err, mean_err[:, near])
    return n, mean, packed, w2, mean_err


def _near_zero_segments(mean: np.ndarray, squares: np.ndarray, n: np.ndarray, sizes: np.ndarray, d: int) -> np.ndarray:
    """Which segments have a mean near zero for their spread (`_near_zero`, segment by segment)."""
    with np.errstate(all="ignore"):
        spread = np.sqrt(squares / np.where(n > 0, n, 1.0))
        ratio = np.where(sizes * d <= _SMALL_VALUES, _NEAR_ZERO_STDS, _CENTRED_RATIO / np.sqrt(np.maximum(n, 1.0)))
        near_zero = (np.abs(mean) < ratio * spread) | _spread_underflowed(mean, spread)
        near: np.ndarray = near_zero.any(axis=0) & (n > 0) & np.isfinite(mean).all(axis=0)
    return near


def _exact_segment_means(
    Xt: np.ndarray, w: np.ndarray | None, starts: np.ndarray, sizes: np.ndarray, n: np.ndarray, which: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Means ``(d, s')`` and their errors of the segments `which`, by error-free sums (see `_refined`).

    The extraction of `_combine.segment_sums`, along the rows of the transposed block (its
    columns), so every pass is over contiguous memory.
    """
    if which.all():
        values, picked, picked_starts = Xt, sizes, starts
    else:
        picked = sizes[which]
        picked_starts = np.concatenate(([0], np.cumsum(picked)[:-1]))
        values = Xt[:, np.repeat(which, sizes)]
    values_err = None
    n_hi, n_lo = n[which], np.zeros(picked.size)
    if w is not None:
        weights = w if which.all() else w[np.repeat(which, sizes)]
        values, values_err = two_product(values, weights)
        # The total weight as a double-float too: n itself is a rounded sum of the weights.
        n_hi, n_lo = _segment_sums_exact(weights[None], picked_starts, picked)
        n_hi, n_lo = n_hi[0], n_lo[0]
    hi, lo = _segment_sums_exact(values, picked_starts, picked)
    if values_err is not None:
        lo += _segment_sums(values_err, picked_starts)
    total, total_err = n_hi + n_lo, (n_hi - (n_hi + n_lo)) + n_lo
    q, q_err = _double_quotient(hi, lo, total, total_err)
    mean, err = two_sum(q, q_err)
    fallback = ~(np.isfinite(mean) & np.isfinite(err))
    if fallback.any():  # an overflowed split or product: the caller keeps the corrected two-pass value
        return np.where(fallback, np.nan, mean), np.where(fallback, 0.0, err)
    return mean, err


def _segment_sums_exact(values: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_combine.segment_sums` along the columns of `values` (m, k): per segment, ``hi, lo`` of shape (m, s)."""
    largest = np.maximum.reduceat(np.abs(values), starts, axis=1)
    exponent = np.frexp(largest)[1] + np.ceil(np.log2(sizes + 2.0)).astype(np.int64)
    sigma = np.repeat(np.ldexp(1.0, exponent), sizes, axis=1)  # np.repeat: 9x faster than a gather
    head = values + sigma
    head -= sigma
    hi = _segment_sums(head, starts)
    np.subtract(values, head, out=head)
    return hi, _segment_sums(head, starts)


@functools.lru_cache(maxsize=32)
def _upper(d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row and column of each entry of the row-major upper triangle, and where the diagonal is."""
    i, j = np.triu_indices(d)
    return i, j, np.flatnonzero(i == j)


def _packed_M2(scatter: np.ndarray, c: np.ndarray, n: np.ndarray, d: int, diagonal: bool) -> np.ndarray:
    """``M2 = scatter - c c^T / n`` per segment, packed (upper triangle), variances clipped at 0.

    Shape (s, d(d+1)/2), or (s, d) if diagonal.
    """
    packed: np.ndarray
    if diagonal:
        packed = (scatter - c * c / n).T
        np.maximum(packed, 0.0, out=packed)
        return packed
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
    (`_blocks`), so this lets it stream one group's rows in place: no copy of the group is made,
    only one float64 block at a time.
    """

    def __init__(self, array: np.ndarray, index: np.ndarray) -> None:
        self._array = array
        self._index = index
        self.shape = (index.size, *array.shape[1:])

    def __getitem__(self, rows: slice) -> np.ndarray:
        return np.take(self._array, self._index[rows], axis=0).astype(np.float64, copy=False)


def _large_group(
    X: np.ndarray, weights: Weights, index: np.ndarray, diagonal: bool
) -> tuple[float, np.ndarray, np.ndarray, float, np.ndarray]:
    """Moments of one large group by `summarize_rows` over its rows; M2 packed.

    The rows are streamed in blocks about one two-part shift, re-centring if the group's mean
    drifts far from it; NaN propagates (the caller applies the NaN policy).
    """
    w, q = (None if v is None else _GroupRows(v, index) for v in weights)
    n, mean, M2, w2, mean_err, _ = summarize_rows(_GroupRows(X, index), (w, q), diagonal, "propagate")  # type: ignore[arg-type]
    if diagonal:
        return n, mean, M2, w2, mean_err
    i, j, _ = _upper(X.shape[1])
    return n, mean, M2[i, j], w2, mean_err


def _propagating_groups(
    X: np.ndarray,
    weights: Weights,
    order: np.ndarray,
    sizes: np.ndarray,
    diagonal: bool,
    rows: int | None = None,
) -> Stacked:
    """Per-group summaries of the rows of X (shape (N, d)); NaN propagates.

    See `summarize_groups`; `order` lists the rows to use, group after group.
    """
    d = X.shape[1]
    g = sizes.size
    rows = rows or group_block_rows(d, diagonal)
    products = d if diagonal else d * (d + 1) // 2
    buffer = np.empty((products, rows))
    out = np.empty((rows, d)) if X.dtype == np.float64 else None
    bounds = np.concatenate(([0], np.cumsum(sizes)))
    alone = np.flatnonzero(sizes >= min(rows + 1, _alone_rows(d, diagonal)))
    counts = np.zeros(g)
    w2 = np.zeros(g)
    means = np.zeros((g, d))
    mean_errs = np.zeros((g, d))
    packed = np.zeros((g, products))
    w, q = weights
    first = 0
    with np.errstate(all="ignore"):
        while first < g:
            next_alone = alone[np.searchsorted(alone, first)] if alone.size and alone[-1] >= first else g
            if next_alone == first:
                index = order[bounds[first]:bounds[first + 1]]
                counts[first], means[first], packed[first], w2[first], mean_errs[first] = _large_group(
                    X, weights, index, diagonal
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
                w_block = None if w is None else w[index]
                q_block = None if q is None else q[index]
                n, mean, m2, w2_block, err = _segment_moments(
                    Xt, w_block, q_block, bounds[members] - lo, sizes[members], diagonal, buffer
                )
                counts[members], means[members], packed[members], w2[members] = n, mean.T, m2, w2_block
                mean_errs[members] = err.T
            first = last
    empty = counts == 0
    if empty.any():
        means[empty] = 0.0
        packed[empty] = 0.0
        w2[empty] = 0.0
        mean_errs[empty] = 0.0
    return counts, means, packed if diagonal else consistent_scatter(_unpack(packed, d)), w2, mean_errs


def _finite_rows(X: np.ndarray) -> np.ndarray:
    """Which rows of X (shape (N, d)) are all finite, found a block at a time."""
    finite = np.empty(X.shape[0], dtype=bool)
    step = group_block_rows(X.shape[1], True) * 16
    for start in range(0, X.shape[0], step):
        finite[start:start + step] = np.isfinite(X[start:start + step]).all(axis=1)
    return finite


def _stack_is_finite(
    counts: np.ndarray, means: np.ndarray, M2: np.ndarray, w2: np.ndarray, mean_errs: np.ndarray
) -> bool:
    """True when every count, mean and variance is finite (a NaN or inf in a row spoils them)."""
    squares = M2 if M2.ndim <= 2 else np.diagonal(M2, axis1=1, axis2=2)
    return all(bool(np.isfinite(a).all()) for a in (counts, w2, means, squares))


def _compiled_groups(
    X: np.ndarray,
    weights: Weights,
    codes: np.ndarray,
    g: int,
    diagonal: bool,
    block_rows: int | None,
    keep: np.ndarray | None = None,
) -> Stacked | None:
    """`_propagating_groups` of the rows `keep` by the compiled grouped kernel, or None for the numpy path.

    Taken where the row kernel's switch allows it (`gaussum._compiled.use_rows`, asked with one
    variable: `gaussum._compiled_grouped` has its own bound on the width) and no block size is
    imposed; see `gaussum._compiled_grouped.summarize`.
    """
    if block_rows is not None or X.ndim != 2 or not _compiled.use_rows(X.size, 1):
        return None
    from . import _compiled_grouped  # imports numba: only here, once the compiled path applies

    return _compiled_grouped.summarize(X, weights, codes, g, diagonal, keep)


def summarize_groups(
    X: np.ndarray,
    weights: Weights,
    codes: np.ndarray,
    g: int,
    order: np.ndarray | None,
    diagonal: bool,
    nan_policy: str,
    name: str = "X",
    block_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Per-group summaries of the rows of X (shape (N, d)), with the NaN policy; and rows dropped.

    Parameters
    ----------
    X : ndarray, shape (N, d)
        Any real dtype; converted to float64 one block at a time.
    weights : (w, q)
        From `row_weights`.
    codes : ndarray of int, shape (N,)
        The group (``0..g-1``) of each row.
    g : int
        Number of groups.
    order : ndarray of int, shape (N,), or None
        A permutation that brings each group's rows together, group after group (a stable sort
        of `codes`); None to have it made only if the numpy path runs (the compiled grouped
        kernel needs no sort).
    diagonal : bool
    nan_policy : {"raise", "omit", "propagate"}
        As for `summarize_rows`; under "omit" a group all of whose rows are dropped is kept, with
        count 0.

    Returns
    -------
    counts (g,), means (g, d), M2 (g, d, d) or (g, d), w2 (g,), mean_errs (g, d), rows_dropped
        Groups with no weight have zero mean, M2 and w2.

    Notes
    -----
    Blocks hold whole groups, about `block_rows` rows at a time, so every group's sums come from
    one segment of one block. A group with enough work of its own (``size * d**2`` above a few
    times 10**4 products, or more rows than a block) is streamed alone through `summarize_rows`
    (BLAS), where the Python overhead is small next to its arithmetic. The Python loop therefore
    runs once per block or per such group, never once per small group. The sums are computed with
    NaN propagating; only if they come out non-finite (or a group has no weight, so that NaN in
    its rows would be hidden) are the rows searched, and then the policy applied.
    """
    sizes = np.bincount(codes, minlength=g)
    stack = _compiled_groups(X, weights, codes, g, diagonal, block_rows)
    if stack is None:
        order = _keys.sort_order(codes, g) if order is None else order
        stack = _propagating_groups(X, weights, order, sizes, diagonal, block_rows)
    if nan_policy == "propagate":
        return (*stack, 0)
    w = weights[0]
    # A key of no weight comes back empty (zero mean and M2) even if its rows hold NaN, which
    # the policy "raise" refuses: so its rows are searched too.
    weightless = w is not None and bool((stack[0][sizes > 0] == 0).any())
    if not weightless and _stack_is_finite(*stack):
        return (*stack, 0)
    finite = _finite_rows(X)
    if finite.all():
        if not _stack_is_finite(*stack):
            raise overflow_error(name, X)
        return (*stack, 0)
    if nan_policy == "raise":
        bad = first_nonfinite_row(X)
        assert bad is not None  # some row is not finite
        raise nonfinite_row_error(name, bad, X[bad])
    stack = _compiled_groups(X, weights, codes, g, diagonal, block_rows, finite)
    if stack is None:
        order = _keys.sort_order(codes, g) if order is None else order
        kept = order[finite[order]]
        stack = _propagating_groups(X, weights, kept, np.bincount(codes[kept], minlength=g), diagonal, block_rows)
    if not _stack_is_finite(*stack):
        raise overflow_error(name, np.where(finite[:, None], X, 0.0))
    return (*stack, int(X.shape[0] - np.count_nonzero(finite)))
