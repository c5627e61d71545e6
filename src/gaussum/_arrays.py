"""Summaries of arrays where they live: the row kernel in the array's own namespace and device.

`from_samples`, `update` and `GroupedSummary.from_samples` send any array of another array-API
library (torch, CuPy, JAX, ``array_api_strict``; found through ``array-api-compat``, the extra
``gaussum[array-api]``) here before it could be converted to numpy. The O(N d^2) work runs in the
array's namespace on its device, by the algorithm of `gaussum._kernel.summarize_rows`: blocks of
rows about one two-part shift, column sums ``c`` and scatter ``S = Y^T W Y`` of ``Y = X - shift``,
then ``mean = shift + c / n`` and ``M2 = S - c c^T / n``, re-centred when the shift is far from
the mean. Only O(d^2) numbers leave the device: the shift's block sums (O(d)), the sums of each
pass (O(d^2)), scalars for the checks, and one row for an error message. Everything is then
finished on the host in float64 numpy, so the value type is unchanged; the mean comes with its
rounding error (the compensated mean of `gaussum._moments`), taken from the two-part shift and the
column sums as the kernel takes it.

Precision:

- Where the device has float64, every block is cast to float64 on the device (a block at a
  time, never the whole array) and summed in float64, in chunks of rows whose partial sums are
  added pairwise (a batched ``matmul`` per block), as the numpy path does with its 256-row chunks.
- Where it does not (some accelerators), blocks are summed in float32 about a shift held in two
  float32 parts, in chunks of 16 rows; the chunks' partial sums, and the blocks', are added with
  error-free transformations (TwoSum) into float32 pairs ``hi + lo``, combined in float64 on the
  host. What is left is the rounding of float32 products and of 16-term sums: about 1e-7 of
  each covariance relative to ``sqrt(C_ii C_jj)``, whatever the offset of the mean (the README
  gives the measured figures).

NaN policy: the sums are taken with NaN propagating and without any synchronisation per block; a
NaN or inf makes them non-finite, and only then are the rows searched (to name the first bad row,
or to count and leave out such rows: their weight is set to zero and their values to zero, so the
block shapes do not depend on the data).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from . import _kernel
from ._combine import mirror_upper, two_sum
from ._moments import consistent_scatter
from ._validate import as_weights, check_nan_policy, nonfinite_row_error, overflow_error
from .errors import Float64OverflowError

__all__ = ["is_device_array", "summarize", "summarize_groups"]

# Libraries whose arrays are summarised where they live. numpy keeps its own path (the kernel),
# and dask arrays keep theirs (converted, or gaussum.dask for a distributed reduction).
_DEVICE_LIBRARIES = frozenset({"torch", "cupy", "jax", "jaxlib", "array_api_strict"})
_HOST_LIBRARIES = frozenset({"numpy", "dask", "pandas", "polars", "pyarrow", "xarray", "builtins"})

# Bytes of float64 per block. On an accelerator a block must be large enough that the Python
# loop (a handful of kernel launches per block) costs little next to reading it; on a CPU,
# 2 MiB keeps the centred copy in cache, as in the numpy kernel.
_DEVICE_BLOCK_BYTES = 2**28
_CPU_BLOCK_BYTES = 2**21
# Rows per partial sum: each chunk's sums are one batched matmul, and the chunks are added
# pairwise. Long running sums (one GEMM over a whole block) would round with u times the number
# of rows; a chunk at least 8 d rows long keeps the (m, d, d) partial results to an eighth of
# the block.
_CHUNK_ROWS = 256
# float32 sums: short chunks (float32 rounds 2^29 times coarser than float64), then TwoSum.
_NARROW_CHUNK_ROWS = 16

# The numpy kernel's thresholds, from their one home: the shift's fine part is dropped when
# X - coarse is not coarsely quantised, and a pass is repeated about the mean when the shift was
# more than 1/8 std away from it.
_QUANTUM_OF_SPREAD = _kernel._QUANTUM_OF_SPREAD
_MAX_SHIFT_IN_STD = _kernel._MAX_SHIFT_IN_STD


def is_device_array(X: Any) -> bool:
    """True for an array of an array-API library other than numpy (torch, CuPy, JAX, ...).

    Cheap: looks only at the type's module and attributes, importing nothing.
    """
    if isinstance(X, (np.ndarray, np.generic, list, tuple, float, int)):
        return False
    kind = type(X)
    library = kind.__module__.partition(".")[0]
    if library in _DEVICE_LIBRARIES:
        return True
    return library not in _HOST_LIBRARIES and hasattr(kind, "__array_namespace__")


def _compat() -> Any:
    try:
        import array_api_compat
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "summarising an array of torch, CuPy, JAX or another array-API library where it lives "
            "needs array-api-compat: pip install 'gaussum[array-api]'",
            name="array_api_compat",
        ) from exc
    return array_api_compat


def _to_host(a: Any) -> np.ndarray:
    """A small device array (at most O(d^2) values) as a float64 numpy array: the one transfer."""
    compat = _compat()
    if compat.is_torch_array(a):
        return np.asarray(a.detach().to("cpu").numpy(), dtype=np.float64)
    if compat.is_cupy_array(a):
        return np.asarray(a.get(), dtype=np.float64)
    if type(a).__module__.partition(".")[0] == "array_api_strict":
        import array_api_strict

        a = array_api_strict.asarray(a, device=array_api_strict.Device("CPU_DEVICE"))
    return np.asarray(a, dtype=np.float64)


def _host_float(a: Any) -> float:
    return float(_to_host(a).reshape(()))


class _Plan:
    """The namespace, device and accumulation dtype of one array, and its block and chunk sizes."""

    def __init__(self, X: Any, d: int, block_rows: int | None) -> None:
        compat = _compat()
        self.xp = compat.array_namespace(X)
        self.device = compat.device(X)
        self.wide = _has_float64(self.xp, self.device)
        self.dtype = self.xp.float64 if self.wide else self.xp.float32
        defaults = self.xp.__array_namespace_info__().default_dtypes(device=self.device)
        # Row counts and indices in the device's own integers (int32 where it has no int64).
        self.integers = defaults["indexing"]
        chunk = max(_CHUNK_ROWS, 8 * d) if self.wide else _NARROW_CHUNK_ROWS
        # No chunk longer than the data: padding a few rows to a long chunk would be wasted work.
        self.chunk = max(1, min(chunk, X.shape[0]))
        on_cpu = "cpu" in str(self.device).lower()
        rows = block_rows or max(1, (_CPU_BLOCK_BYTES if on_cpu else _DEVICE_BLOCK_BYTES) // (8 * d))
        # Whole chunks per block, so that only the last block needs padding.
        self.block = max(1, -(-rows // self.chunk)) * self.chunk

    def zeros(self, shape: Any) -> Any:
        return self.xp.zeros(shape, dtype=self.dtype, device=self.device)

    def put(self, values: np.ndarray) -> Any:
        """Host values (O(d)) on the device, in the accumulation dtype."""
        return self.xp.asarray(np.asarray(values, dtype=np.float64 if self.wide else np.float32), device=self.device)


def _has_float64(xp: Any, device: Any) -> bool:
    """Whether `device` holds float64 (some accelerators do not).

    Asked of the namespace, then tried: torch lists float64 for Apple's MPS, which refuses it, and
    JAX without ``jax_enable_x64`` hands back float32 (with a warning) when float64 is asked for.
    """
    try:
        kinds = xp.__array_namespace_info__().dtypes(device=device, kind="real floating")
        if "float64" not in kinds:
            return False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probe = xp.zeros(1, dtype=xp.float64, device=device)
    except (TypeError, ValueError, RuntimeError, AttributeError):
        return False
    return bool(probe.dtype == xp.float64)


# -- weights ------------------------------------------------------------------------------------


def _device_weights(plan: _Plan, weights: Any, N: int, name: str) -> Any:
    """Weights of shape (N,) on the array's device, finite and >= 0, in the accumulation dtype."""
    xp = plan.xp
    if not is_device_array(weights):
        return plan.put(as_weights(weights, N, name))
    w = weights
    if tuple(w.shape) != (N,):
        raise ValueError(f"{name} must have shape ({N},) to match the rows, got {tuple(w.shape)}")
    if not xp.isdtype(w.dtype, ("bool", "integral", "real floating")):
        raise ValueError(f"{name} must be numeric, got dtype {w.dtype} with shape {tuple(w.shape)}")
    w = xp.astype(w, plan.dtype)
    bad = xp.logical_not(xp.isfinite(w)) | (w < 0)
    if N and bool(xp.any(bad)):
        i = int(_host_float(xp.argmax(xp.astype(bad, xp.int8))))
        raise ValueError(f"{name} must be finite and non-negative; {name}[{i}] is {_host_float(w[i])!r}")
    return w


def _row_weights(plan: _Plan, f: Any, a: Any) -> tuple[Any, Any]:
    """``(w, q) = (f a, f a^2)`` on the device (None for ones / for q = w), as `_kernel.row_weights`."""
    if a is None:
        w, q = f, None
    else:
        w = a if f is None else f * a
        q = w * a
    if w is not None:
        xp = plan.xp
        total = _host_float(xp.sum(w) + (0.0 if q is None else xp.sum(q)))
        if not math.isfinite(total):
            which = "weights" if a is None else ("aweights" if f is None else "weights times aweights")
            largest = _host_float(xp.max(w))
            raise Float64OverflowError(
                f"the {which} overflow float64 when summed (largest is {largest:g}); rescale them first"
            )
    return w, q


# -- sums ---------------------------------------------------------------------------------------


def _compensated_total(xp: Any, hi: Any, lo: Any) -> tuple[Any, Any]:
    """Sum over axis 0 of the float32 pairs ``hi + lo`` by pairwise TwoSum: a pair of shape [1:]."""
    while hi.shape[0] > 1:
        half = hi.shape[0] // 2
        odd = hi.shape[0] % 2
        a, b = hi[:half, ...], hi[half : 2 * half, ...]
        s = a + b
        bb = s - a
        error = (a - (s - bb)) + (b - bb)
        new_lo = lo[:half, ...] + lo[half : 2 * half, ...] + error
        if odd:
            s = xp.concat([s, hi[2 * half :, ...]], axis=0)
            new_lo = xp.concat([new_lo, lo[2 * half :, ...]], axis=0)
        hi, lo = s, new_lo
    return hi[0, ...], lo[0, ...]


def _block_sums(plan: _Plan, Y: Any, w: Any, diagonal: bool) -> tuple[Any, ...]:
    """Column sums and scatter of one block of centred rows Y (its length a multiple of the chunk).

    float64: each as one array. float32: each as a pair ``(hi, lo)``.
    """
    xp = plan.xp
    k, d = Y.shape
    m = k // plan.chunk
    Yw = Y if w is None else Y * w[:, None]
    Y3 = xp.reshape(Y, (m, plan.chunk, d))
    Yw3 = Y3 if w is None else xp.reshape(Yw, (m, plan.chunk, d))
    c = xp.sum(Yw3, axis=1)
    S = xp.sum(Yw3 * Y3, axis=1) if diagonal else xp.matmul(xp.matrix_transpose(Yw3), Y3)
    if plan.wide:
        return xp.sum(c, axis=0), xp.sum(S, axis=0)
    return (*_compensated_total(xp, c, xp.zeros_like(c)), *_compensated_total(xp, S, xp.zeros_like(S)))


def _block(plan: _Plan, X: Any, index: Any, start: int, stop: int) -> Any:
    """Rows start:stop of X (or of X[index]) in the accumulation dtype, padded to whole chunks."""
    xp = plan.xp
    B = X[start:stop, ...] if index is None else xp.take(X, index[start:stop], axis=0)
    if B.dtype != plan.dtype:
        B = xp.astype(B, plan.dtype)
    return B


def _padded(plan: _Plan, Y: Any, w: Any) -> tuple[Any, Any]:
    """Y and its weights with zero rows appended to whole chunks: zero rows add exactly nothing."""
    pad = -Y.shape[0] % plan.chunk
    if not pad:
        return Y, w
    Y = plan.xp.concat([Y, plan.zeros((pad, Y.shape[1]))], axis=0)
    return Y, None if w is None else _padded_vector(plan, w)


def _padded_vector(plan: _Plan, v: Any) -> Any:
    pad = -v.shape[0] % plan.chunk
    return v if not pad else plan.xp.concat([v, plan.zeros(pad)], axis=0)


class _Rows:
    """The rows of one summary: X (shape (N, d)), optionally a row index, and weights ``(w, q)``."""

    def __init__(self, plan: _Plan, X: Any, index: Any, w: Any, q: Any) -> None:
        self.plan, self.X, self.index, self.w, self.q = plan, X, index, w, q
        self.N = X.shape[0] if index is None else index.shape[0]

    def blocks(self, omit: bool) -> Any:
        """``(start, block, w, q, dropped)``; with `omit`, non-finite rows weigh 0 and hold 0."""
        plan, xp = self.plan, self.plan.xp
        for start in range(0, self.N, plan.block):
            stop = min(start + plan.block, self.N)
            B = _block(plan, self.X, self.index, start, stop)
            w = None if self.w is None else self._take(self.w, start, stop)
            q = None if self.q is None else self._take(self.q, start, stop)
            dropped = None
            if omit:
                ok = xp.all(xp.isfinite(B), axis=1)
                B = xp.where(ok[:, None], B, plan.zeros(B.shape))
                ones = xp.astype(ok, plan.dtype)
                w = ones if w is None else xp.where(ok, w, plan.zeros(w.shape))
                q = None if q is None else xp.where(ok, q, plan.zeros(q.shape))
                dropped = xp.sum(xp.astype(xp.logical_not(ok), plan.integers))
            yield start, B, w, q, dropped

    def _take(self, v: Any, start: int, stop: int) -> Any:
        return v[start:stop] if self.index is None else self.plan.xp.take(v, self.index[start:stop], axis=0)


def _first_shift(rows: _Rows, omit: bool, strict: bool) -> tuple[np.ndarray, np.ndarray] | bool | None:
    """The two-part shift from the first block with weight, on the host; None if there is none.

    False when `strict` and a weightless block holds NaN (the caller then searches the rows).
    """
    plan, xp = rows.plan, rows.plan.xp
    for _, B, w, _, _ in rows.blocks(omit):
        n = float(B.shape[0]) if w is None else _host_float(xp.sum(w))
        if n == 0:
            if strict and not bool(xp.all(xp.isfinite(B))):
                return False
            continue
        Bw = B if w is None else B * w[:, None]
        coarse = _to_host(xp.sum(Bw, axis=0)) / n
        if not plan.wide:
            coarse = coarse.astype(np.float32).astype(np.float64)
        deviations = B - plan.put(coarse)
        Dw = deviations if w is None else deviations * w[:, None]
        sums = _to_host(xp.stack([xp.sum(Dw, axis=0), xp.sum(Dw * deviations, axis=0)]))
        fine, spread = sums[0] / n, np.sqrt(np.abs(sums[1]) / n)
        with np.errstate(all="ignore"):
            return _device_shift(plan, *two_sum(coarse, fine), spread, rows.N if rows.w is None else 0)
    return None


def _device_shift(
    plan: _Plan, coarse: np.ndarray, fine: np.ndarray, spread: np.ndarray | None = None, rows: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The shift as two parts each exactly held in the accumulation dtype (float32 pairs if narrow).

    `rows`: the input's row count when unweighted (0 otherwise), for `_kernel.exact_about_coarse`.
    """
    if not plan.wide:
        total = coarse + fine
        coarse = total.astype(np.float32).astype(np.float64)
        fine = (total - coarse).astype(np.float32).astype(np.float64)
    if spread is not None:
        # As `_kernel._first_shift`: no fine part where X - coarse is not coarsely quantised.
        quantum = np.spacing(np.abs(coarse).astype(np.float64 if plan.wide else np.float32))
        if (quantum <= _QUANTUM_OF_SPREAD * spread).all():
            fine = np.zeros_like(fine)
        elif plan.wide:
            # As there too: no fine part where the float64 pass about the coarse one is exact.
            fine = np.where(_kernel.exact_about_coarse(coarse, spread, rows), 0.0, fine)
    return coarse, fine


def _pass(
    rows: _Rows, shift: tuple[np.ndarray, np.ndarray], diagonal: bool, omit: bool
) -> tuple[float, float, np.ndarray, np.ndarray, int]:
    """One pass over the rows about `shift`: n, w2, c and scatter on the host, and rows dropped."""
    plan, xp = rows.plan, rows.plan.xp
    d = rows.X.shape[1]
    coarse, fine = plan.put(shift[0]), plan.put(shift[1])
    use_fine = bool(np.any(shift[1]))
    wide = plan.wide
    c = plan.zeros(d) if wide else [plan.zeros(d), plan.zeros(d)]
    S = plan.zeros(d if diagonal else (d, d))
    S = S if wide else [S, plan.zeros(S.shape)]
    n_acc: list[Any] = []  # (hi, lo) of the total weight and of w2, when there are weights
    dropped = []
    for _, B, w, q, k in rows.blocks(omit):
        Y = B - coarse
        if use_fine:
            Y = Y - fine
        if k is not None:
            dropped.append(k)
        if w is not None:
            n_b = _weight_sum(plan, w)
            w2_b = n_b if q is None else _weight_sum(plan, q)
            n_acc = [n_b, w2_b] if not n_acc else [_add_pair(n_acc[0], n_b), _add_pair(n_acc[1], w2_b)]
        Y, w = _padded(plan, Y, w)
        sums = _block_sums(plan, Y, w, diagonal)
        if wide:
            c, S = c + sums[0], S + sums[1]
        else:
            c, S = _add_pair(c, sums[0:2]), _add_pair(S, sums[2:4])
    if wide:
        parts = [c, xp.reshape(S, (-1,))]
    else:
        parts = [c[0], c[1], xp.reshape(S[0], (-1,)), xp.reshape(S[1], (-1,))]
    if n_acc:
        parts.append(xp.stack([*n_acc[0], *n_acc[1]]))
    packed = _to_host(xp.concat(parts))
    # One transfer of O(d^2) values per pass; float32 pairs are added in float64 here.
    size = d if diagonal else d * d
    if wide:
        c_host, S_host, rest = packed[:d], packed[d : d + size], packed[d + size :]
    else:
        c_host = packed[:d] + packed[d : 2 * d]
        S_host = packed[2 * d : 2 * d + size] + packed[2 * d + size : 2 * d + 2 * size]
        rest = packed[2 * d + 2 * size :]
    n_dropped = int(_host_float(xp.sum(xp.stack(dropped)))) if dropped else 0
    if n_acc:
        n, w2 = float(rest[0] + rest[1]), float(rest[2] + rest[3])
    else:
        n = w2 = float(rows.N - n_dropped)
    return n, w2, c_host, S_host.reshape(d if diagonal else (d, d)), n_dropped


def _weight_sum(plan: _Plan, w: Any) -> Any:
    """The sum of one block's weights as a pair ``[hi, lo]``.

    float64: ``[sum, 0]``. float32: every weight added by pairwise TwoSum, so n is float64-exact
    to rounding (it may pass 2^24, where float32 stops counting exactly).
    """
    xp = plan.xp
    if plan.wide:
        total = xp.sum(w)
        return [total, xp.zeros_like(total)]
    return list(_compensated_total(xp, w, xp.zeros_like(w)))


def _add_pair(acc: list[Any], part: Any) -> list[Any]:
    """``acc + part`` for float32 pairs ``(hi, lo)``, by TwoSum on the high parts."""
    a, b = acc[0], part[0]
    s = a + b
    bb = s - a
    error = (a - (s - bb)) + (b - bb)
    return [s, acc[1] + part[1] + error]


def _finite(*arrays: np.ndarray) -> bool:
    return all(bool(np.isfinite(a).all()) for a in arrays)


# -- one summary --------------------------------------------------------------------------------


def _moments(
    rows: _Rows, diagonal: bool, nan_policy: str, name: str, offset: int = 0
) -> tuple[tuple[float, np.ndarray, np.ndarray, float, np.ndarray], int]:
    """``((n, mean, M2, w2), rows dropped)`` of the rows, as `_kernel.summarize_rows` computes them."""
    omit = False
    with np.errstate(all="ignore"):
        for _ in range(2):
            result = _try_moments(rows, diagonal, omit, nan_policy != "propagate")
            if result is not None:
                moments, dropped = result
                if nan_policy == "propagate" or _finite(
                    np.array([moments[0], moments[3]]), moments[1], _squares(moments[2])
                ):
                    return moments, dropped
                if omit:
                    raise _overflow(rows, name, offset)
            bad = _first_bad_row(rows)
            if bad is None:
                raise _overflow(rows, name, offset)
            if nan_policy == "raise":
                raise nonfinite_row_error(name, offset + bad[0], bad[1])
            omit = True
    raise AssertionError("unreachable")  # pragma: no cover


def _squares(M2: np.ndarray) -> np.ndarray:
    return M2 if M2.ndim == 1 else np.diagonal(M2)


def _try_moments(
    rows: _Rows, diagonal: bool, omit: bool, strict: bool
) -> tuple[tuple[float, np.ndarray, np.ndarray, float, np.ndarray], int] | None:
    """The corrected two-pass with re-centring; None when a weightless block hides NaN (`strict`)."""
    d = rows.X.shape[1]
    empty = (0.0, np.zeros(d), np.zeros(d if diagonal else (d, d)), 0.0, np.zeros(d))
    shift = _first_shift(rows, omit, strict)
    if shift is False:
        return None
    if shift is None:
        dropped = _count_bad(rows) if omit else 0
        return empty, dropped
    assert not isinstance(shift, bool)
    for _ in range(3):
        n, w2, c, scatter, dropped = _pass(rows, shift, diagonal, omit)
        if n == 0:
            return empty, dropped
        offset = c / n
        squares = _squares(scatter)
        far = offset * offset * n > _MAX_SHIFT_IN_STD**2 * squares
        if rows.plan.wide:  # a pass about the coarse shift alone that was not exact after all
            far |= _kernel.inexact_about_coarse(shift, squares, n)
        if not far.any() or not _finite(offset):
            break
        shift = _device_shift(rows.plan, *two_sum(shift[0], shift[1] + offset))
    # The mean and its rounding error, as the kernel takes them (a double-float; the column sums
    # come back as one float64 each, so data near zero keeps the corrected two-pass accuracy).
    mean, mean_err = _kernel.mean_from_shift(shift[0], shift[1], c, np.zeros(d), n)
    if diagonal:
        M2 = scatter - c * c / n
        np.maximum(M2, 0.0, out=M2)
    else:
        M2 = mirror_upper(scatter)
        M2 -= np.multiply.outer(c, c) / n
        index = np.diag_indices(d)
        M2[index] = np.maximum(M2[index], 0.0)
        # As in the kernel: a variance clipped at 0 leaves its covariances as rounding residue.
        consistent_scatter(M2)
    return (n, mean, M2, w2, mean_err), dropped


def _count_bad(rows: _Rows) -> int:
    xp = rows.plan.xp
    total = 0.0
    for _, B, _, _, _ in rows.blocks(False):
        total += _host_float(xp.sum(xp.astype(xp.logical_not(xp.all(xp.isfinite(B), axis=1)), rows.plan.integers)))
    return int(total)


def _first_bad_row(rows: _Rows) -> tuple[int, np.ndarray] | None:
    """The first row (index, values on the host) holding NaN or inf, or None: one scalar per block."""
    xp = rows.plan.xp
    for start, B, _, _, _ in rows.blocks(False):
        bad = xp.logical_not(xp.all(xp.isfinite(B), axis=1))
        if bool(xp.any(bad)):
            i = int(_host_float(xp.argmax(xp.astype(bad, xp.int8))))
            return start + i, _to_host(B[i, ...])
    return None


def _overflow(rows: _Rows, name: str, offset: int) -> Float64OverflowError:
    """`overflow_error` for the row of largest magnitude, found on the device."""
    xp = rows.plan.xp
    best, where, values = -1.0, 0, np.zeros(rows.X.shape[1])
    for start, B, _, _, _ in rows.blocks(False):
        magnitude = xp.max(xp.abs(B), axis=1)
        i = int(_host_float(xp.argmax(magnitude)))
        value = _host_float(magnitude[i])
        if value > best:
            best, where, values = value, start + i, _to_host(B[i, ...])
    return overflow_error(name, values[None, :], offset + where)


# -- entry points -------------------------------------------------------------------------------


def _as_device_data(X: Any, name: str) -> tuple[Any, bool]:
    """X as a 2-D device array (N, d), and whether it was 1-D (scalar observations)."""
    xp = _compat().array_namespace(X)
    shape = tuple(X.shape)
    if not xp.isdtype(X.dtype, ("bool", "integral", "real floating")):
        kind = "real" if xp.isdtype(X.dtype, "complex floating") else "numeric"
        raise ValueError(f"{name} must be {kind}, got dtype {X.dtype} with shape {shape}")
    if len(shape) not in (1, 2):
        raise ValueError(f"{name} must have shape (N,) or (N, d) with rows as observations, got shape {shape}")
    if len(shape) == 2 and shape[1] == 0:
        raise ValueError(f"{name} must have at least one column, got shape {shape}")
    scalar = len(shape) == 1
    return (xp.reshape(X, (shape[0], 1)) if scalar else X), scalar


def summarize(
    X: Any,
    weights: Any,
    aweights: Any,
    diagonal: bool,
    nan_policy: str,
    name: str = "X",
    block_rows: int | None = None,
) -> tuple[tuple[float, np.ndarray, np.ndarray, float, np.ndarray], bool, int]:
    """``((n, mean, M2, w2), scalar, rows dropped)`` of a device array X of shape (N, d) or (N,).

    The 1-D moments of `gaussum._combine` (M2 diagonal when `diagonal` or scalar), as
    `_kernel.summarize_rows` returns them, in float64 numpy on the host.
    """
    check_nan_policy(nan_policy)
    with np.errstate(all="ignore"):  # array-api-strict computes with numpy: overflow is found by the checks
        return _summarize(X, weights, aweights, diagonal, nan_policy, name, block_rows)


def _summarize(
    X: Any, weights: Any, aweights: Any, diagonal: bool, nan_policy: str, name: str, block_rows: int | None
) -> tuple[tuple[float, np.ndarray, np.ndarray, float, np.ndarray], bool, int]:
    data, scalar = _as_device_data(X, name)
    N, d = data.shape
    plan = _Plan(data, d, block_rows)
    f = None if weights is None else _device_weights(plan, weights, N, "weights")
    a = None if aweights is None else _device_weights(plan, aweights, N, "aweights")
    w, q = _row_weights(plan, f, a)
    moments, dropped = _moments(_Rows(plan, data, None, w, q), diagonal or scalar, nan_policy, name)
    return moments, scalar, dropped


def summarize_groups(
    keys: Any,
    X: Any,
    weights: Any,
    aweights: Any,
    diagonal: bool,
    nan_policy: str,
    name: str = "X",
    block_rows: int | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], int]:
    """``(keys, (counts, means, M2, w2, mean_errs), rows dropped)`` per key of the rows of a device array X.

    The keys are brought to the host to be factorised (`gaussum._keys`), and the row order that
    groups them is sent back to the device: O(N) integers each way. Each key's rows are then
    summarised on the device by the one-summary path above, its blocks gathered with ``take``,
    so the O(N d^2) work stays there; the Python loop runs once per key (a few synchronisations
    each), which suits up to thousands of keys.
    """
    check_nan_policy(nan_policy)
    with np.errstate(all="ignore"):
        return _summarize_groups(keys, X, weights, aweights, diagonal, nan_policy, name, block_rows)


def _summarize_groups(
    keys: Any, X: Any, weights: Any, aweights: Any, diagonal: bool, nan_policy: str, name: str, block_rows: int | None
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], int]:
    from . import _keys as keyset

    data, scalar = _as_device_data(X, name)
    N, d = data.shape
    plan = _Plan(data, d, block_rows)
    host_keys = _keys_to_host(keys)
    key_array = keyset.as_keys(host_keys)
    if key_array.shape != (N,):
        raise ValueError(f"keys must have shape ({N},) to match the rows of {name}, got {key_array.shape}")
    f = None if weights is None else _device_weights(plan, weights, N, "weights")
    a = None if aweights is None else _device_weights(plan, aweights, N, "aweights")
    w, q = _row_weights(plan, f, a)
    uniques, codes = keyset.factorize(key_array)
    order = keyset.sort_order(codes, uniques.size)
    sizes = np.bincount(codes, minlength=uniques.size)
    bounds = np.concatenate(([0], np.cumsum(sizes)))
    device_order = plan.xp.asarray(
        np.asarray(order, dtype=np.int32 if plan.integers == plan.xp.int32 else np.int64), device=plan.device
    )
    diag = diagonal or scalar
    g = uniques.size
    counts, w2 = np.zeros(g), np.zeros(g)
    means = np.zeros((g, d))
    mean_errs = np.zeros((g, d))
    M2 = np.zeros((g, d) if diag else (g, d, d))
    propagated = []
    for k in range(g):
        index = device_order[int(bounds[k]) : int(bounds[k + 1])]
        rows = _Rows(plan, data, index, w, q)
        (counts[k], means[k], M2[k], w2[k], mean_errs[k]), _ = _moments(rows, diag, "propagate", name)
        propagated.append(rows)
    total_dropped = 0
    if nan_policy != "propagate":
        stack_finite = _finite(counts, w2, means, M2 if diag else np.diagonal(M2, axis1=1, axis2=2))
        weightless = w is not None and bool((counts[sizes > 0] == 0).any())
        if not stack_finite or weightless:
            whole = _Rows(plan, data, None, w, q)
            bad = _first_bad_row(whole)
            if bad is None:
                if not stack_finite:
                    raise _overflow(whole, name, 0)
            elif nan_policy == "raise":
                raise nonfinite_row_error(name, bad[0], bad[1])
            else:
                for k, rows in enumerate(propagated):
                    (counts[k], means[k], M2[k], w2[k], mean_errs[k]), dropped = _moments(rows, diag, "omit", name)
                    total_dropped += dropped
    if scalar:
        means, M2, mean_errs = means[:, 0], M2[:, 0], mean_errs[:, 0]
    return uniques, (counts, means, M2, w2, mean_errs), total_dropped


def _keys_to_host(keys: Any) -> Any:
    """Keys for factorisation: a device array is brought to the host (O(N) values, once)."""
    if not is_device_array(keys):
        return keys
    compat = _compat()
    if compat.is_torch_array(keys):
        return keys.detach().to("cpu").numpy()
    if compat.is_cupy_array(keys):
        return keys.get()
    if type(keys).__module__.partition(".")[0] == "array_api_strict":
        import array_api_strict

        keys = array_api_strict.asarray(keys, device=array_api_strict.Device("CPU_DEVICE"))
    return np.asarray(keys)


def summarize_update(
    x: Any, shape: tuple[int, ...], weights: Any, aweights: Any, diagonal: bool, nan_policy: str
) -> tuple[float, np.ndarray, np.ndarray, float, np.ndarray]:
    """The 1-D moments of a device batch `x` for ``update`` of a summary whose mean has `shape`.

    `x` is one observation (`shape`) or a batch of rows (``(k, *shape)``).
    """
    xs = tuple(x.shape)
    if xs == shape:
        x = _compat().array_namespace(x).reshape(x, (1, *shape))
        xs = (1, *shape)
    if xs[1:] != shape:
        expected = "() or (k,)" if not shape else f"({shape[0]},) or (k, {shape[0]})"
        raise ValueError(f"x must have shape {expected} to update a summary of mean {shape}, got {xs}")
    moments, _, _ = summarize(x, weights, aweights, diagonal, nan_policy, "x")
    return moments
