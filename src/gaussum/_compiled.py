"""Compiled kernels (numba, the optional extra ``gaussum[fast]``), loaded lazily and cached on disk.

Nothing here imports numba until a kernel is asked for: ``import gaussum`` and the command line's
start-up never pay for it, and without numba every caller keeps its numpy path. The kernels are
compiled on first use (or loaded from numba's on-disk cache, ``cache=True``; where the package
folder is read-only numba uses its user-wide cache directory, and where no cache can be written
the kernels are compiled in memory, once per process).

- `block_sums`: the row kernel of `gaussum._kernel.summarize_rows` for small d. One read of each
  row: every 256-row chunk is centred on the two-part shift into a small transposed buffer (in
  cache), whose column sums and upper-triangle scatter are then taken as dot products that the
  compiler vectorises; the raw sums of the variables whose mean may be near zero are taken
  error-free from the same chunk (integer heads and float tails, `_split_row`); chunk results
  go into the block's totals with Neumaier's compensated sum.
  Blocks are merged afterwards in a fixed pairwise order, on one thread (not parallel: numba's
  OpenMP layer makes a later fork() abort).
- `first_shift`: the two-part shift of `gaussum._kernel._first_shift`, in two passes over a few
  thousand rows.
- `row_step`: Welford's one-row step of `gaussum._combine.add_row`, the same floating-point
  operations in the same order (so the same bits), without numpy's per-call overhead.
- `merge_pair_packed`: the pairwise rule of `gaussum._combine.merge_pair` on two small summaries'
  packed fields, likewise the same bits.

Which path runs is decided by `use_rows` / `use_small_steps`; `forced` overrides that (the tests run
the same accuracy, NIST, property and weights tests on both paths), as does the environment
variable ``GAUSSUM_KERNEL`` (``numpy`` or ``compiled``) read at import.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = [
    "MAX_D",
    "MIN_VALUES",
    "SMALL_STEPS_AFTER",
    "available",
    "forced",
    "kernels",
    "use_centring",
    "use_rows",
    "use_small_steps",
]

#: Inputs of fewer values than this stay on the numpy path: below it the kernels' one-time load
#: (0.3-0.4 s from the disk cache, numba's import included; about 5 s to compile) would not be repaid.
MIN_VALUES = 100_000
#: Widest data for the compiled row kernel. Its scatter is d(d+1)/2 dot products per chunk; past
#: about 16 variables one BLAS matrix product per block does that arithmetic faster (at d = 256 the
#: product is nearly all of the time), so wider data keeps the BLAS path.
MAX_D = 16
#: One-row updates and pair merges (``+``) in a process after which they load the compiled steps:
#: a long stream repays the load, a handful of updates does not.
SMALL_STEPS_AFTER = 2_000

_MODES = ("auto", "numpy", "compiled")
_mode = os.environ.get("GAUSSUM_KERNEL", "auto")
if _mode not in _MODES:
    _mode = "auto"

_kernels: Any = None  # the namespace of compiled functions, False when numba is unusable
_available: bool | None = None
_small_steps = 0


def available() -> bool:
    """True when numba can be imported (found, not imported: this stays cheap)."""
    global _available
    if _available is None:
        import importlib.util  # here, not at the top: `import gaussum` stays as fast as before

        _available = importlib.util.find_spec("numba") is not None
    return _available


@contextlib.contextmanager
def forced(mode: str) -> Iterator[None]:
    """Run the block with the kernel path forced: ``"numpy"``, ``"compiled"`` (any size) or ``"auto"``.

    ``"compiled"`` raises ImportError when numba is not installed.
    """
    global _mode
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    if mode == "compiled" and kernels() is None:
        raise ImportError("the compiled kernels need numba: pip install 'gaussum[fast]'")
    previous, _mode = _mode, mode
    try:
        yield
    finally:
        _mode = previous


def use_rows(values: int, d: int) -> bool:
    """Whether `summarize_rows` should run the compiled kernel on `values` values of `d` variables."""
    if _mode == "numpy" or d > MAX_D or d == 0:
        return False
    if _mode == "auto" and values < MIN_VALUES:
        return False
    return kernels() is not None


def use_centring(values: int) -> bool:
    """Whether the numpy row path should centre its unweighted blocks with the compiled
    `centre_and_sum`, which takes the exact column sums in the same read.

    Inputs of `MIN_VALUES` values or more, as for `use_rows`: the choice depends on the input's
    size alone (never on whether the kernels happen to be loaded), so the same rows give the same
    bits in every process.
    """
    if _mode == "numpy":
        return False
    if _mode == "auto" and values < MIN_VALUES:
        return False
    return kernels() is not None


def use_small_steps(count: bool = True) -> bool:
    """Whether a one-row `update` or a pair merge should run its compiled step; `count` it as one
    step of a stream."""
    global _small_steps
    if _mode == "numpy":
        return False
    if _kernels:  # already loaded (by a large input, or earlier rows): nothing left to repay
        return True
    if _mode == "auto":
        _small_steps += count
        if _small_steps < SMALL_STEPS_AFTER:
            return False
    return kernels() is not None


def row_update(
    n: float, mean: np.ndarray, M2: np.ndarray, err: np.ndarray, M2_err: np.ndarray, row: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Welford's step for one unweighted row (n > 0): ``(n, mean, M2, mean_err, M2_err, fields)``,
    or None when the row is not finite or overflows.

    All are views of one read-only buffer ``[mean, mean_err, M2, M2_err]``; `fields`, its first
    part ``[mean, mean_err, M2]``, is the layout of a packed `GaussianSummary`. Fewer numpy calls:
    at about 4 µs a row, `update(row)` is made of such calls (see the README's Performance
    section).
    """
    d, m = mean.shape[0], M2.size
    out = np.empty(2 * (d + m))
    total = _kernels.row_step_packed(n, mean, M2, err, M2_err, row, out)
    if total != total:
        return None
    out.setflags(write=False)
    fields = out[: 2 * d + m]
    return total, out[:d], fields[2 * d:].reshape(M2.shape), out[d:2 * d], out[2 * d + m:].reshape(M2.shape), fields


def kernels() -> Any:
    """The compiled functions (a namespace), compiling or loading them on first call; None without numba."""
    global _kernels
    if _kernels is None:
        import threading

        with _threading_lock(threading):
            if _kernels is None:
                _kernels = _build() if available() else False
    return _kernels or None


_lock: Any = None


def _threading_lock(threading: Any) -> Any:
    """The lock that serialises the first load, made on first need."""
    global _lock
    if _lock is None:
        _lock = threading.Lock()
    return _lock


def _build() -> Any:
    try:
        from . import _compiled_kernels
    except Exception:  # no numba, or an unusable install (e.g. an llvmlite mismatch): numpy paths run
        return False
    return _compiled_kernels


# Rows the shift is estimated from (see `gaussum._kernel._summarize_compiled`): enough that a
# random-order sample's mean is within a small fraction of a standard deviation of the whole (1/90
# for 8192 rows), few enough that the estimate costs nothing next to the pass (at d = 1 the numpy
# path's 2 MiB first block is a quarter of 1e6 rows).
SHIFT_ROWS = 8192
