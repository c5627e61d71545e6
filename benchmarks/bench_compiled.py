"""Issue 16's cases: gaussum with the compiled kernels (``gaussum[fast]``) and without them.

Every case is timed twice in the same process, interleaved with its references: once as installed
("with the extra": the compiled kernels where they apply) and once with the numpy path forced
("without"), so one table shows both. Times are **CPU-time** medians (``time.process_time``,
summed over threads), not wall time: on a loaded 2-core machine the wall time of a threaded call
depends on the other processes, while its CPU time is what it costs. BLAS (``X.T @ X``, ``np.cov``)
and the compiled kernel's blocks both run on every core; the CPU time charges each for all of them.

Without numba every case is reported as absent (``pip install 'gaussum[fast]'``).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from _harness import Case, Row, Settings, assert_moments_close, optional_import, peak_traced_bytes
from bench_core import _check_summary_against_cov, _data, _size
from gaussum import GaussianSummary, _compiled


def _numpy_path(fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        with _compiled.forced("numpy"):
            return fn()

    return run


def cpu_interleaved(calls: Sequence[Callable[[], Any]], settings: Settings) -> list[float]:
    """Median CPU seconds per call of each callable, sampled in turn (ours, theirs, ours, ...)."""
    for fn in calls:
        fn()  # warm: lazy imports, the kernels' load, BLAS threads
    numbers = []
    for fn in calls:
        number, elapsed = 1, 0.0
        while True:
            start = time.process_time()
            for _ in range(number):
                fn()
            elapsed = time.process_time() - start
            if elapsed >= settings.min_sample_s * 2:
                break
            number *= 2
        numbers.append(number)
    samples: list[list[float]] = [[] for _ in calls]
    for _ in range(settings.repeats):
        for fn, number, times in zip(calls, numbers, samples, strict=True):
            gc.collect()
            gc.disable()
            try:
                start = time.process_time()
                for _ in range(number):
                    fn()
                times.append((time.process_time() - start) / number)
            finally:
                gc.enable()
    return [statistics.median(times) for times in samples]


def _absent() -> str:
    return "" if _compiled.available() else "absent: pip install 'gaussum[fast]' for numba"


def _from_samples_case(n_rows: int, d: int, gram_target: float | None, cov_target: float = 0.5) -> Case:
    name = f"from_samples, {n_rows:,} x {d}"

    def run(settings: Settings) -> list[Row]:
        X = _data(_size(settings, n_rows), d)
        ours = lambda: GaussianSummary.from_samples(X)  # noqa: E731
        without = _numpy_path(ours)
        cov = np.cov(X, rowvar=False).reshape(d, d)
        for what, fn in (("with the extra", ours), ("without", without)):
            _check_summary_against_cov(f"{name}, {what}", fn(), X, cov)
        calls = [ours, without, lambda: X.T @ X, lambda: np.cov(X, rowvar=False)]
        with_s, without_s, gram_s, cov_s = cpu_interleaved(calls, settings)
        absent = _absent()
        rows = []
        if d <= 64:
            target = "report" if gram_target is None else f"<= {gram_target:g} x"
            rows += [
                Row(name, "X.T @ X, with the extra", with_s, gram_s, max_ratio=gram_target, target=target, note=absent),
                Row(name, "X.T @ X, without the extra", without_s, gram_s),
            ]
        rows += [
            Row(name, "np.cov, with the extra", with_s, cov_s, max_ratio=cov_target, target=f"<= {cov_target:g} x",
                note=absent or ("BLAS path (d > 16)" if d > _compiled.MAX_D else "")),
            Row(name, "np.cov, without the extra", without_s, cov_s),
        ]
        return rows

    return Case(name, run)


def _memory_case(n_rows: int, d: int) -> Case:
    name = f"peak extra memory, from_samples {n_rows:,} x {d}, with the extra"

    def run(settings: Settings) -> list[Row]:
        X = _data(_size(settings, n_rows), d)
        GaussianSummary.from_samples(X)
        ours = peak_traced_bytes(lambda: GaussianSummary.from_samples(X))
        return [Row(name, "X.nbytes (tracemalloc peak)", ours, X.nbytes, "B", 1 / 8, "<= 1/8 x", note=_absent())]

    return Case(name, run)


def _update_rows_case(n_rows: int, d: int) -> Case:
    name = f"update one row at a time, d = {d}, {n_rows:,} rows"

    def run(settings: Settings) -> list[Row]:
        X = _data(_size(settings, n_rows, 10), d)
        rows = list(X)
        _compiled.kernels()  # loaded, as after a long stream or any large input

        def ours() -> GaussianSummary:
            s = GaussianSummary.empty(d)
            for row in rows:
                s = s.update(row)
            return s

        without = _numpy_path(ours)
        cov = np.cov(X, rowvar=False)
        for what, fn in (("with the extra", ours), ("without", without)):
            _check_summary_against_cov(f"{name}, {what}", fn(), X, cov)
        if ours() != without():
            raise AssertionError(f"{name}: the compiled step must give the numpy step's bits")
        calls: list[Callable[[], Any]] = [ours, without]
        welford_mod, welford_absent = optional_import("welford")
        if welford_mod is not None:

            def welford_call() -> Any:
                acc = welford_mod.Welford()
                for row in rows:
                    acc.add(row)
                return acc

            acc = welford_call()
            assert_moments_close(f"{name} vs welford", ours().mean, ours().variance(), acc.mean, acc.var_s, len(rows))
            calls.append(welford_call)
        river_cov, river_absent = optional_import("river.covariance")
        if river_cov is not None:
            dicts = [dict(enumerate(row.tolist())) for row in rows]

            def river_call() -> Any:
                acc = river_cov.EmpiricalCovariance(ddof=1)
                for x in dicts:
                    acc.update(x)
                return acc

            calls.append(river_call)
        times = cpu_interleaved(calls, settings)
        with_s, without_s = times[0], times[1]
        welford_s = times[2] if welford_mod is not None else None
        river_s = times[-1] if river_cov is not None else None
        absent = _absent()
        return [
            Row(name, "welford Welford.add (diagonal only), with the extra", with_s, welford_s, max_ratio=1.0,
                target="<= 1 x", note=absent or welford_absent),
            Row(name, "welford Welford.add, without the extra", without_s, welford_s, note=welford_absent),
            Row(name, "river EmpiricalCovariance.update, with the extra", with_s, river_s, max_ratio=1 / 20,
                target=">= 20 x faster", note=absent or river_absent or "dicts built outside the timing"),
            Row(name, "river EmpiricalCovariance.update, without the extra", without_s, river_s, note=river_absent),
        ]

    return Case(name, run)


def cases() -> list[Case]:
    """Issue 16's targets, in its order."""
    return [
        _from_samples_case(1_000_000, 1, 1.2),
        _from_samples_case(1_000_000, 4, 1.2),
        _from_samples_case(1_000_000, 8, 1.2),
        _from_samples_case(1_000_000, 16, None),
        _from_samples_case(1_000_000, 32, 1.3),
        _from_samples_case(200_000, 256, None),
        _from_samples_case(20_000, 1024, None),
        _memory_case(1_000_000, 8),
        _update_rows_case(10_000, 8),
        _update_rows_case(10_000, 32),
    ]


__all__ = ["cases", "cpu_interleaved"]
