"""Summaries of torch arrays on their own device: `GaussianSummary.from_samples` against torch's floors.

Cases (issue 17), float64 rows at offset 1e3 with unit spread, on one device:

- 100,000,000 x 8, 50,000,000 x 32 and 4,000,000 x 256;
- float32 rows at 100,000,000 x 8 with offset 1e6 (gaussum casts each block to float64 on the
  device; also timed: the compensated float32 path that a device without float64 takes).

For each, the median time of gaussum's call against ``torch.cov(X.T)``, ``X.T @ X`` and a full read
of X (``X.sum()``), with the device synchronised around every call; and the accuracy of gaussum's
and torch.cov's covariance against a float64 reference: gaussum's numpy path on the same values
copied to the host (a different code path, checked against exact arithmetic in the tests), as
``max |C - C_ref| / sqrt(C_ii C_ref_jj)``. The targets: at most 1.0x torch.cov and 2x the
``X.T @ X`` / read floor, at 1e-14 relative accuracy or better. On a CPU, the numpy path of the
same rows is timed too.

Run on a machine with a CUDA GPU (about 10 GB of device memory, 7 GB of host memory for the
reference, a few minutes)::

    python benchmarks/bench_arrays.py --device cuda

and, for a check that runs anywhere in seconds (the sizes divided by 500)::

    python benchmarks/bench_arrays.py --quick

Every case checks gaussum's result against the reference before timing and fails loudly if the
covariance is off by more than 1e-12 (float64) or 1e-6 (float32 accumulation).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import BenchmarkCheckError
from gaussum import GaussianSummary, _arrays

#: (rows, columns, dtype, offset) of each case, at full size.
CASES = [
    (100_000_000, 8, "float64", 1e3),
    (50_000_000, 32, "float64", 1e3),
    (4_000_000, 256, "float64", 1e3),
    (100_000_000, 8, "float32", 1e6),
]
QUICK_DIVISOR = 500


def synchronised(torch: Any, device: str, f: Callable[[], Any]) -> Callable[[], Any]:
    def call() -> Any:
        out = f()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return out

    return call


def median_time(call: Callable[[], Any], repeats: int) -> float:
    call()  # warm-up: kernels compiled, memory pools filled
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def relative_error(C: np.ndarray, reference: np.ndarray) -> float:
    d = np.sqrt(np.diagonal(reference))
    return float(np.max(np.abs(C - reference) / np.outer(d, d)))


def make_rows(torch: Any, N: int, d: int, dtype: str, offset: float, device: str, seed: int = 0) -> Any:
    """Correlated rows at `offset`, generated on the device in float64 then cast (no host copy)."""
    generator = torch.Generator(device=device).manual_seed(seed)
    mixing = torch.eye(d, dtype=torch.float64, device=device) + 0.3 * torch.rand(
        (d, d), generator=generator, dtype=torch.float64, device=device
    )
    X = torch.empty((N, d), dtype=getattr(torch, dtype), device=device)
    step = max(1, 2**24 // d)
    for start in range(0, N, step):
        Z = torch.randn((min(step, N - start), d), generator=generator, dtype=torch.float64, device=device)
        X[start : start + step] = (offset + Z @ mixing).to(X.dtype)
    return X


def run_case(torch: Any, N: int, d: int, dtype: str, offset: float, device: str, repeats: int) -> list[dict[str, Any]]:
    X = make_rows(torch, N, d, dtype, offset, device)
    host = X.cpu().numpy()
    reference = GaussianSummary.from_samples(host).covariance()
    rows = []

    def ours() -> Any:
        return GaussianSummary.from_samples(X)

    ours_cov = ours().covariance()
    error = relative_error(ours_cov, reference)
    limit = 1e-12 if dtype == "float64" else 1e-10
    if not error <= limit:
        raise BenchmarkCheckError(f"{N} x {d} {dtype}: gaussum's covariance is off by {error:.1e} (limit {limit:g})")
    torch_cov = torch.cov(X.T).double().cpu().numpy()
    calls = {
        "gaussum from_samples": ours,
        "torch.cov(X.T)": lambda: torch.cov(X.T),
        "X.T @ X": lambda: X.T @ X,
        "read X (X.sum())": lambda: X.sum(),
    }
    accuracy = {"gaussum from_samples": error, "torch.cov(X.T)": relative_error(torch_cov, reference)}
    if dtype == "float32":
        # The path of a device without float64: compensated float32 sums about a float32 shift.
        def narrow() -> Any:
            has_float64 = _arrays._has_float64
            _arrays._has_float64 = lambda xp, dev: False
            try:
                return GaussianSummary.from_samples(X)
            finally:
                _arrays._has_float64 = has_float64

        narrow_error = relative_error(narrow().covariance(), reference)
        if not narrow_error <= 1e-6:
            raise BenchmarkCheckError(f"float32 accumulation is off by {narrow_error:.1e}")
        calls = {"gaussum from_samples": ours, "gaussum, float32 accumulation": narrow, **list_tail(calls)}
        accuracy["gaussum, float32 accumulation"] = narrow_error
    if device == "cpu":
        calls["gaussum numpy path (same rows)"] = lambda: GaussianSummary.from_samples(host)
    times = {label: median_time(synchronised(torch, device, call), repeats) for label, call in calls.items()}
    base = times["gaussum from_samples"]
    for label, seconds in times.items():
        rows.append(
            {
                "case": f"{N:,} x {d} {dtype}, offset {offset:g}",
                "call": label,
                "ms": 1e3 * seconds,
                "ratio": base / seconds,
                "error": accuracy.get(label),
            }
        )
    return rows


def list_tail(calls: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in calls.items() if k != "gaussum from_samples"}


def sweep(torch: Any, device: str, divisor: int, repeats: int) -> int:
    """gaussum's time and accuracy on each float64 case for chunk rows x block bytes."""
    print("| case | chunk rows | block MiB | median ms | covariance error |")
    print("|---|---:|---:|---:|---:|")
    defaults = _arrays._CHUNK_ROWS, _arrays._DEVICE_BLOCK_BYTES, _arrays._CPU_BLOCK_BYTES
    for N, d, dtype, offset in CASES[:3]:
        N = max(N // divisor, 2 * d)
        X = make_rows(torch, N, d, dtype, offset, device)
        reference = GaussianSummary.from_samples(X.cpu().numpy()).covariance()
        for chunk in (256, 1024, 4096, 16384):
            for block in (2**26, 2**28, 2**30):
                _arrays._CHUNK_ROWS, _arrays._DEVICE_BLOCK_BYTES, _arrays._CPU_BLOCK_BYTES = chunk, block, block
                error = relative_error(GaussianSummary.from_samples(X).covariance(), reference)
                seconds = median_time(synchronised(torch, device, lambda X=X: GaussianSummary.from_samples(X)), repeats)
                print(f"| {N:,} x {d} | {chunk} | {block >> 20} | {1e3 * seconds:.2f} | {error:.1e} |")
    _arrays._CHUNK_ROWS, _arrays._DEVICE_BLOCK_BYTES, _arrays._CPU_BLOCK_BYTES = defaults
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument(
        "--quick", action="store_true", help=f"sizes divided by {QUICK_DIVISOR}: a check that runs anywhere"
    )
    parser.add_argument("--divisor", type=int, default=None, help="divide every size by this (--quick: 500)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per measurement (default 7, quick 3)")
    parser.add_argument(
        "--chunk-rows", type=int, default=None, help="rows per partial sum (gaussum._arrays._CHUNK_ROWS)"
    )
    parser.add_argument("--block-bytes", type=int, default=None, help="bytes per block on an accelerator")
    parser.add_argument(
        "--sweep", action="store_true", help="time gaussum alone over chunk rows x block bytes (to tune the defaults)"
    )
    args = parser.parse_args(argv)
    try:
        import torch
    except ModuleNotFoundError:
        print("needs torch: pip install -e '.[test-arrays]' (CPU) or a CUDA build of torch", file=sys.stderr)
        return 2
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.chunk_rows:
        _arrays._CHUNK_ROWS = args.chunk_rows
    if args.block_bytes:
        _arrays._DEVICE_BLOCK_BYTES = args.block_bytes
    repeats = args.repeats or (3 if args.quick else 7)
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else platform.processor() or "cpu"
    print(f"device: {device} ({name}); torch {torch.__version__}; numpy {np.__version__}; repeats {repeats}")
    print()
    divisor = args.divisor or (QUICK_DIVISOR if args.quick else 1)
    if args.sweep:
        return sweep(torch, device, divisor, repeats)
    print("| case | call | median ms | gaussum / this | covariance error |")
    print("|---|---|---:|---:|---:|")
    for N, d, dtype, offset in CASES:
        N = max(N // divisor, 2 * d)
        for row in run_case(torch, N, d, dtype, offset, device, repeats):
            error = "" if row["error"] is None else f"{row['error']:.1e}"
            print(f"| {row['case']} | {row['call']} | {row['ms']:.2f} | {row['ratio']:.2f}x | {error} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
