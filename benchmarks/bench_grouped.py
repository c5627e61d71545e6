"""Per-key covariances: `GroupedSummary.from_samples` against a numpy loop and pandas.

Default size is the issue's: 1,000,000 rows x 8 columns, 10,000 integer keys. References:

- *np.cov loop, sorted*: the loop a careful user writes: sort the rows by key once
  (``np.argsort``), split, and call ``np.cov`` on each key's block;
- *np.cov loop, mask*: the loop most code has: ``np.cov(X[keys == k])`` for each key. Its cost
  per key is one scan of all N keys, so it is timed on a sample of keys and scaled up (the table
  says so);
- *pandas*: ``DataFrame.groupby(key).cov()``, if pandas is installed (``gaussum[bench]``).

Every reference's covariances are checked against gaussum's (to 1e-10 of each key's spread)
before anything is timed, and the peak extra memory of gaussum's call is measured with
tracemalloc. With numba installed (``gaussum[fast]``) gaussum's call runs the compiled grouped
kernel (`gaussum._compiled_grouped`); the case "compiled grouped kernel" also times it against
the numpy path forced in the same process (issue 16's target: at least 2x faster), and
``--crossover`` prints both paths over a grid of sizes (where the compiled path starts to pay).
Three ways to run it:

- ``python benchmarks/run.py --all --only grouped [--quick]``: the `cases` below, in the shared
  table (interleaved medians, the issue's target of ">= 10x faster than the per-key loop");
- ``python benchmarks/bench_grouped.py [--quick]``: this module's own table;
- ``python benchmarks/bench_grouped.py --crossover``: compiled against numpy path, by size.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import (
    BenchmarkCheckError,
    Case,
    Reference,
    Row,
    Settings,
    compare,
    optional_import,
    peak_traced_bytes,
    time_interleaved,
)
from gaussum import GroupedSummary, _compiled

# The target: grouped covariances at least 10 times faster than a per-key np.cov loop.
TARGET_RATIO = 0.1
TARGET_TEXT = ">= 10 x faster"
# Issue 16's: with the compiled kernel at least 2 times faster than the numpy path, and peak extra
# memory at most 1/8 of the input.
COMPILED_RATIO = 0.5
COMPILED_TEXT = ">= 2 x faster"
MEMORY_RATIO = 1 / 8


def make_data(rows: int, cols: int, n_keys: int, seed: int = 20261124) -> tuple[np.ndarray, np.ndarray]:
    """Keys drawn uniformly from n_keys integers, and correlated rows at an offset from zero."""
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, n_keys, rows)
    mixing = rng.standard_normal((cols, cols)) / np.sqrt(cols)
    X = 100.0 + rng.standard_normal((rows, cols)) @ mixing
    return keys, X


def gaussum_covariances(keys: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g = GroupedSummary.from_samples(keys, X)
    return g.keys(), g.covariances()


def sorted_loop(keys: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))
    blocks = np.split(X[order], starts[1:])
    return sorted_keys[starts], np.stack([np.cov(block, rowvar=False) for block in blocks])


def mask_loop(keys: np.ndarray, X: np.ndarray, which: np.ndarray) -> np.ndarray:
    return np.stack([np.cov(X[keys == k], rowvar=False) for k in which])


def pandas_covariances(frame, d: int) -> tuple[np.ndarray, np.ndarray]:
    table = frame.groupby("key").cov()
    unique = table.index.get_level_values(0).to_numpy()[::d]
    return unique, table.to_numpy().reshape(-1, d, d)


def check(name: str, ours: np.ndarray, theirs: np.ndarray, rtol: float = 1e-10) -> None:
    """Raise if `theirs` differs from `ours` by more than rtol of each key's sqrt(var_i var_j)."""
    var = np.diagonal(ours, axis1=1, axis2=2)
    scale = np.sqrt(var[:, :, None] * var[:, None, :])
    error = np.abs(ours - theirs) / scale
    worst = float(np.nanmax(error))
    if not worst <= rtol:
        raise BenchmarkCheckError(f"{name} disagrees with gaussum: worst relative difference {worst:.3g}")


def median_time(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_bytes(call: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    call()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def _sizes(settings: Settings, rows: int, n_keys: int) -> tuple[int, int]:
    return (rows // 100, n_keys // 100) if settings.quick else (rows, n_keys)


def _check_keyed(name: str, ours: tuple[np.ndarray, np.ndarray], theirs: tuple[np.ndarray, np.ndarray]) -> None:
    if not np.array_equal(ours[0], theirs[0]):
        raise BenchmarkCheckError(f"{name}: its keys differ from gaussum's")
    check(name, ours[1], theirs[1])


def _loops_case(rows: int, cols: int, n_keys: int) -> Case:
    name = f"grouped covariances, {rows:,} x {cols}, {n_keys:,} keys"

    def run(settings: Settings) -> list[Row]:
        N, g = _sizes(settings, rows, n_keys)
        keys, X = make_data(N, cols, g)
        pd, absent = optional_import("pandas")
        frame = None
        if pd is not None:
            frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(cols)])
            frame["key"] = keys
        return compare(
            name,
            lambda: gaussum_covariances(keys, X),
            [
                Reference(
                    "np.cov loop, rows sorted by key once",
                    lambda: sorted_loop(keys, X),
                    lambda ours, theirs: _check_keyed("sorted np.cov loop", ours, theirs),
                    TARGET_RATIO,
                    TARGET_TEXT,
                ),
                Reference(
                    "pandas groupby(key).cov()",
                    None if frame is None else (lambda: pandas_covariances(frame, cols)),
                    lambda ours, theirs: _check_keyed("pandas groupby().cov()", ours, theirs),
                    absent=absent,
                ),
            ],
            settings,
        )

    return Case(name, run)


def _mask_case(rows: int, cols: int, n_keys: int, sample: int) -> Case:
    name = f"grouped covariances, {rows:,} x {cols}, {n_keys:,} keys, vs X[keys == k]"

    def run(settings: Settings) -> list[Row]:
        N, g = _sizes(settings, rows, n_keys)
        keys, X = make_data(N, cols, g)
        ours_keys, ours = gaussum_covariances(keys, X)
        which = ours_keys[:: max(1, len(ours_keys) // sample)][:sample]
        check("mask np.cov loop", ours[np.searchsorted(ours_keys, which)], mask_loop(keys, X, which))
        # A full mask loop scans all N keys once per key: timed on a sample, scaled to every key.
        t_ours, t_sample = time_interleaved(
            [lambda: gaussum_covariances(keys, X), lambda: mask_loop(keys, X, which)], settings
        )
        return [
            Row(
                name,
                "np.cov loop, X[keys == k] per key",
                t_ours,
                t_sample * len(ours_keys) / len(which),
                max_ratio=TARGET_RATIO,
                target=TARGET_TEXT,
                note=f"loop timed on {len(which)} keys, scaled",
            )
        ]

    return Case(name, run)


def _memory_case(rows: int, cols: int, n_keys: int) -> Case:
    name = f"peak extra memory, grouped from_samples {rows:,} x {cols}"

    def run(settings: Settings) -> list[Row]:
        N, g = _sizes(settings, rows, n_keys)
        keys, X = make_data(N, cols, g)
        _check_keyed("sorted np.cov loop", gaussum_covariances(keys, X), sorted_loop(keys, X))
        ours = peak_traced_bytes(lambda: GroupedSummary.from_samples(keys, X))
        theirs = peak_traced_bytes(lambda: sorted_loop(keys, X))
        return [Row(name, "np.cov loop, rows sorted by key once", ours, theirs, unit="B", note="tracemalloc")]

    return Case(name, run)


def numpy_path(call: Callable[[], object]) -> Callable[[], object]:
    """`call` with gaussum's numpy path forced (the compiled kernels of ``gaussum[fast]`` off)."""

    def run() -> object:
        with _compiled.forced("numpy"):
            return call()

    return run


def _absent_extra() -> str:
    return "" if _compiled.available() else "absent: pip install 'gaussum[fast]' for numba"


def _compiled_case(rows: int, cols: int, n_keys: int) -> Case:
    name = f"compiled grouped kernel, {rows:,} x {cols}, {n_keys:,} keys"

    def run(settings: Settings) -> list[Row]:
        N, g = _sizes(settings, rows, n_keys)
        keys, X = make_data(N, cols, g)
        ours = lambda: gaussum_covariances(keys, X)  # noqa: E731
        without = numpy_path(ours)
        _check_keyed("numpy path", ours(), without())
        _check_keyed("sorted np.cov loop", ours(), sorted_loop(keys, X))
        t_with, t_without, t_loop = time_interleaved([ours, without, lambda: sorted_loop(keys, X)], settings)
        absent = _absent_extra()
        peak_with = peak_traced_bytes(lambda: GroupedSummary.from_samples(keys, X))
        peak_without = peak_traced_bytes(numpy_path(lambda: GroupedSummary.from_samples(keys, X)))
        return [
            Row(
                name,
                "numpy path (without the extra)",
                t_with,
                t_without,
                max_ratio=COMPILED_RATIO,
                target=COMPILED_TEXT,
                note=absent,
            ),
            Row(
                name,
                "np.cov loop, rows sorted by key once, with the extra",
                t_with,
                t_loop,
                max_ratio=TARGET_RATIO,
                target=TARGET_TEXT,
                note=absent,
            ),
            Row(name, "np.cov loop, rows sorted by key once, without the extra", t_without, t_loop),
            Row(
                name,
                "X.nbytes: peak extra memory, with the extra",
                peak_with,
                X.nbytes,
                unit="B",
                max_ratio=MEMORY_RATIO,
                target="<= 1/8 x",
                note=absent or "tracemalloc",
            ),
            Row(
                name,
                "X.nbytes: peak extra memory, without the extra",
                peak_without,
                X.nbytes,
                unit="B",
                note="tracemalloc",
            ),
        ]

    return Case(name, run)


def crossover(repeat: int) -> None:
    """Median times of both paths over a grid of rows, widths and keys: where the compiled path pays."""
    print("| rows | d | keys | numpy path | compiled | compiled / numpy |")
    print("|---:|---:|---:|---:|---:|---:|")
    for N in (10_000, 100_000, 1_000_000):
        for d in (1, 4, 8, 16, 32, 64):
            for n_keys in (10, 1_000, 100_000):
                if n_keys > N // 4 or N * d > 16_000_000:
                    continue
                keys, X = make_data(N, d, n_keys)

                def ours(keys: np.ndarray = keys, X: np.ndarray = X) -> object:
                    return GroupedSummary.from_samples(keys, X)

                def forced(ours: Callable[[], object] = ours) -> object:
                    with _compiled.forced("compiled"):
                        return ours()

                t_numpy, t_compiled = time_interleaved(
                    [numpy_path(ours), forced], Settings(repeats=repeat, min_sample_s=0.05)
                )
                print(
                    f"| {N:,} | {d} | {n_keys:,} | {t_numpy * 1e3:.2f} ms | {t_compiled * 1e3:.2f} ms "
                    f"| {t_compiled / t_numpy:.2f} |",
                    flush=True,
                )


def cases() -> list[Case]:
    """The grouped cases for ``benchmarks/run.py``: the issue's size, 1,000,000 x 8, 10,000 keys."""
    return [
        _loops_case(1_000_000, 8, 10_000),
        _mask_case(1_000_000, 8, 10_000, sample=100),
        _memory_case(1_000_000, 8, 10_000),
        _compiled_case(1_000_000, 8, 10_000),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=8)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mask-sample", type=int, default=100, help="keys timed for the mask loop")
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows and keys")
    parser.add_argument("--crossover", action="store_true", help="compiled against numpy path over sizes")
    args = parser.parse_args()
    if args.crossover:
        crossover(args.repeat)
        return
    if args.quick:
        args.rows, args.keys = args.rows // 10, args.keys // 10
    keys, X = make_data(args.rows, args.cols, args.keys)
    d = args.cols

    ours_keys, ours = gaussum_covariances(keys, X)
    results: list[tuple[str, float, str]] = []
    t_ours = median_time(lambda: gaussum_covariances(keys, X), args.repeat)
    results.append(("gaussum `GroupedSummary.from_samples`", t_ours, _absent_extra() or "compiled kernel"))
    if _compiled.available():
        t_numpy = median_time(numpy_path(lambda: gaussum_covariances(keys, X)), args.repeat)
        results.append(("gaussum's numpy path (without `gaussum[fast]`)", t_numpy, ""))

    _check_keyed("sorted np.cov loop", (ours_keys, ours), sorted_loop(keys, X))
    results.append(
        (
            "np.cov loop, rows sorted by key once",
            median_time(lambda: sorted_loop(keys, X), max(1, args.repeat // 2)),
            "",
        )
    )

    sample = ours_keys[:: max(1, len(ours_keys) // args.mask_sample)][: args.mask_sample]
    check("mask np.cov loop", ours[np.searchsorted(ours_keys, sample)], mask_loop(keys, X, sample))
    t_sample = median_time(lambda: mask_loop(keys, X, sample), 1)
    results.append(
        (
            "np.cov loop, `X[keys == k]` per key",
            t_sample * len(ours_keys) / len(sample),
            f"timed on {len(sample)} keys, scaled",
        )
    )

    try:
        import pandas as pd
    except ImportError:
        pandas_note = "pandas not installed (pip install 'gaussum[bench]')"
    else:
        pandas_note = f"pandas {pd.__version__}"
        frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(d)])
        frame["key"] = keys
        _check_keyed("pandas groupby().cov()", (ours_keys, ours), pandas_covariances(frame, d))
        t_pandas = median_time(lambda: pandas_covariances(frame, d), max(1, args.repeat // 2))
        results.append(("pandas `groupby(key).cov()`", t_pandas, ""))

    peak = peak_bytes(lambda: GroupedSummary.from_samples(keys, X))

    print(
        f"Per-key covariance, {args.rows:_} rows x {d} columns, {len(ours_keys):_} keys "
        f"({platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
        f"numpy {np.__version__}, {pandas_note}); all results checked against gaussum to 1e-10.\n"
    )
    print("| method | median time | gaussum is faster by | note |")
    print("|---|---:|---:|---|")
    for name, seconds, note in results:
        ratio = "—" if name.startswith("gaussum ") else f"{seconds / t_ours:.1f}x"
        print(f"| {name} | {seconds * 1e3:,.0f} ms | {ratio} | {note} |")
    print(
        f"\nPeak extra memory of `from_samples` (tracemalloc): {peak / 2**20:.1f} MiB "
        f"(X itself is {X.nbytes / 2**20:.0f} MiB; N x d x d would be {args.rows * d * d * 8 / 2**20:,.0f} MiB)."
    )


if __name__ == "__main__":
    main()
