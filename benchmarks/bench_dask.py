"""gaussum.dask.summarize against dask.array.cov on the same local cluster.

Usage::

    python benchmarks/bench_dask.py            # 10,000,000 x 8, the issue's size
    python benchmarks/bench_dask.py --quick    # 1,000,000 x 8, a fast look
    python benchmarks/run.py --all --only dask # through the harness (--quick: 100,000 x 8)

The rows are drawn on the workers (``dask.array.random``), far from zero (mean 1e6, spread 1 to
3), so the data never pass through the client. Two cases:

- *generated in the graph*: each computation draws its chunks again, as it would read them from
  storage; ``dask.array.cov`` needs the mean of all rows before it can centre any of them, so it
  keeps every chunk in worker memory between its two passes (or draws it twice);
- *persisted on the workers*: the rows are already in worker memory (``x.persist()``), the best
  case for a two-pass method.

For each, the median of interleaved runs (gaussum, dask, gaussum, ...) of the full ``compute``,
graph building included. Then the single-process ``GaussianSummary.from_samples`` on the same
rows gathered into this process's memory, and ``np.cov`` on them, for scale. Every result is
checked before anything is timed: the same n, means and covariances as ``dask.array.cov`` within
its own rounding (about eps * mean / std), and the same summary as ``from_samples`` in memory.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent) not in sys.path:  # standalone runs, as run.py does
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import dask
import dask.array as da
import numpy as np
from distributed import Client, LocalCluster

from _harness import BenchmarkCheckError, Case, Row, Settings, time_interleaved
from gaussum import GaussianSummary
from gaussum.dask import summarize

EPS = np.finfo(np.float64).eps
D = 8
SEED = 20240607


def make_rows(n_rows: int, chunk_rows: int) -> da.Array:
    """Correlated rows drawn on the workers: mean 1e6, unequal spreads between 1 and 3."""
    x = da.random.default_rng(SEED).standard_normal((n_rows, D), chunks=(chunk_rows, D))
    mixing = np.eye(D) + 0.3 * np.random.default_rng(SEED).standard_normal((D, D))
    return x @ mixing * np.linspace(1.0, 3.0, D) + 1e6


def check_against_dask(s: GaussianSummary, mean: np.ndarray, cov: np.ndarray, n_rows: int) -> None:
    """Equal n; mean and covariance within the rounding of dask's two-pass result at this offset."""
    if s.n != n_rows:
        raise BenchmarkCheckError(f"n is {s.n}, expected {n_rows}")
    std = np.sqrt(np.diagonal(cov))
    rtol = 64 * EPS * float(np.max(np.abs(mean) / std))  # ~1.4e-8: dask's own error, not ours
    if not np.all(np.abs(s.mean - mean) <= 64 * EPS * np.abs(mean)):
        raise BenchmarkCheckError(f"means differ: {s.mean} vs dask's {mean}")
    gap = np.abs(s.covariance() - cov) / np.outer(std, std)
    if not np.all(gap <= rtol):
        raise BenchmarkCheckError(f"covariances differ by up to {gap.max():.3g} of sqrt(var_i var_j) (> {rtol:.3g})")


def median_times(calls: list[Callable[[], Any]], repeats: int) -> list[float]:
    """Median wall seconds of each call, run in turn so that drift of the machine hits all alike."""
    samples: list[list[float]] = [[] for _ in calls]
    for _ in range(repeats):
        for fn, times in zip(calls, samples, strict=True):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return [statistics.median(t) for t in samples]


def machine() -> str:
    """CPU model, CPU count and the load average: a busy shared machine inflates every time."""
    model = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{os.cpu_count()} CPUs ({model}), load average {load:.1f}"


def measure(n_rows: int, workers: int, timer: Callable[[list[Callable[[], Any]]], list[float]]) -> list[Row]:
    """Check, then time, every case on `n_rows` x D rows; the cluster is closed whatever happens."""
    chunk_rows = n_rows // 20  # 20 chunks: 4 MB each at 1,000,000 rows
    name = f"dask summarize, {n_rows:,} x {D}"
    rows: list[Row] = []
    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster, Client(cluster):
        x = make_rows(n_rows, chunk_rows)
        for case in ("generated in the graph", "persisted on the workers"):
            # Persist only now: while persisted chunks exist, graphs with their keys reuse them.
            data = x if case.startswith("generated") else x.persist()
            ours = lambda data=data: summarize(data).compute()  # noqa: E731
            theirs = lambda data=data: dask.compute(data.mean(axis=0), da.cov(data, rowvar=False))  # noqa: E731
            s = ours()
            check_against_dask(s, *theirs(), n_rows)
            t_ours, t_theirs = timer([ours, theirs])
            rows.append(Row(f"{name}, {case}", "dask.array.cov (two passes)", t_ours, t_theirs,
                            note=f"{workers} worker processes x 1 thread"))
        X = x.compute()  # the same rows, gathered into this process

    local = GaussianSummary.from_samples(X)
    if not (local.n == s.n and local.isclose(s, rtol=1e-12)):
        raise BenchmarkCheckError(f"from_samples in memory {local} differs from the cluster's {s}")
    t_local, t_np = timer([lambda: GaussianSummary.from_samples(X), lambda: np.cov(X, rowvar=False)])
    rows.append(Row(f"{name}, in memory (from_samples)", "np.cov", t_local, t_np, note="one process"))
    return rows


def measure_grouped(
    n_rows: int, keys: int, workers: int, timer: Callable[[list[Callable[[], Any]]], list[float]]
) -> list[Row]:
    """summarize_by against ``groupby(k).var()`` on n_rows x D rows and `keys` keys, persisted on the workers.

    Rows near zero (spread 1 to 3), so that Dask's sum-of-squares variance is accurate enough
    to check gaussum's against (at 1e6 it loses 4 digits); 20 partitions.
    """
    import dask.dataframe as dd

    from gaussum.dask import summarize_by

    chunk_rows = n_rows // 20
    names = [f"x{j}" for j in range(D)]
    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster, Client(cluster):
        x = make_rows(n_rows, chunk_rows) - 1e6
        k = da.random.default_rng(SEED + 1).integers(0, keys, size=(n_rows, 1), chunks=(chunk_rows, 1))
        frame = dd.from_dask_array(da.concatenate([x, k.astype(np.float64)], axis=1), columns=[*names, "k"])
        frame = frame.assign(k=frame["k"].astype("int64")).persist()
        ours = lambda: summarize_by(frame, "k", names, compute=True)  # noqa: E731
        theirs = lambda: frame.groupby("k")[names].var().compute()  # noqa: E731
        g, var = ours(), theirs().sort_index()
        if g.keys().tolist() != var.index.tolist() or g.n != n_rows:
            raise BenchmarkCheckError("summarize_by and groupby().var() found different keys or counts")
        if not np.allclose(g.variances(), var.to_numpy(), rtol=1e-9, atol=0):
            raise BenchmarkCheckError("summarize_by's variances differ from groupby().var()'s")
        t_ours, t_theirs = timer([ours, theirs])
    name = f"dask summarize_by, {n_rows:,} x {D}, {keys:,} keys, persisted"
    note = f"{workers} worker processes x 1 thread; gaussum computes full covariances"
    return [Row(name, "ddf.groupby(k).var()", t_ours, t_theirs, note=note)]


def cases() -> list[Case]:
    """One case for run.py: 10,000,000 x 8 rows on a 2-worker LocalCluster (100,000 with --quick)."""

    def run(settings: Settings) -> list[Row]:
        return measure(100_000 if settings.quick else 10_000_000, 2, lambda calls: time_interleaved(calls, settings))

    def run_grouped(settings: Settings) -> list[Row]:
        n_rows = 100_000 if settings.quick else 10_000_000
        return measure_grouped(n_rows, 1_000, 2, lambda calls: time_interleaved(calls, settings))

    return [
        Case(f"dask summarize vs dask.array.cov, d = {D}", run),
        Case(f"dask summarize_by vs groupby().var(), d = {D}", run_grouped),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="1,000,000 rows instead of 10,000,000")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--grouped", action="store_true", help="summarize_by with 1,000 keys vs groupby().var()")
    args = parser.parse_args()
    n_rows = 1_000_000 if args.quick else 10_000_000
    timer = lambda calls: median_times(calls, args.repeats)  # noqa: E731
    rows = measure_grouped(n_rows, 1_000, args.workers, timer) if args.grouped else measure(n_rows, args.workers, timer)

    print(f"{n_rows:,} x {D} float64 rows in 20 chunks; LocalCluster of {args.workers} "
          f"worker processes x 1 thread; {machine()}; median of {args.repeats} interleaved runs\n")
    print("| case | gaussum time | reference | reference time | ratio (gaussum / reference) |")
    print("|---|---:|---|---:|---:|")
    for row in rows:
        print(f"| {row.case} | {row.ours:.2f} s | {row.reference} | {row.theirs:.2f} s | {row.ratio:.2f} |")


__all__ = ["cases"]


if __name__ == "__main__":
    main()
