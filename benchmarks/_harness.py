"""Timing, memory and checking helpers shared by the ``benchmarks/bench_*.py`` modules.

A benchmark module builds `Case` objects; `run.py` calls each case's ``run(settings)`` and gets
back `Row` objects, one per comparison, which it prints as a Markdown table. The helpers here do
the three things every case needs:

- `time_interleaved`: median wall time of gaussum's call and each reference's call, measured in
  the same process and *interleaved* (ours, theirs, ours, theirs, ...), so a slow drift of the
  machine (another process, CPU frequency) moves both medians alike instead of biasing the ratio;
- `peak_traced_bytes` / `peak_rss_bytes_in_subprocess`: peak extra memory of one call;
- `assert_moments_close`: the self-check that makes a fast wrong answer fail loudly.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "BenchmarkCheckError",
    "Case",
    "Reference",
    "Row",
    "Settings",
    "assert_close",
    "assert_moments_close",
    "calls_per_sample",
    "compare",
    "optional_import",
    "peak_rss_bytes_in_subprocess",
    "peak_traced_bytes",
    "time_interleaved",
]

EPS = np.finfo(np.float64).eps


class BenchmarkCheckError(AssertionError):
    """A benchmarked call returned a result that disagrees with its reference."""


@dataclass(frozen=True)
class Settings:
    """How hard to measure.

    Attributes
    ----------
    quick : bool
        Use the small sizes (for smoke tests and a fast look), not the sizes of the issue.
    repeats : int
        Timed samples per callable; the table reports their median.
    min_sample_s : float
        A sample repeats a very fast call until it lasts at least this long (as ``timeit`` does),
        so timer resolution and call overhead of the harness do not dominate.
    """

    quick: bool = False
    repeats: int = 7
    min_sample_s: float = 0.02


@dataclass
class Row:
    """One line of the table: gaussum against one reference on one case.

    ``ours`` and ``theirs`` are in ``unit`` (``"s"`` for a median time, ``"B"`` for bytes); the
    ratio is ``ours / theirs`` and the target, when there is one, is met when the ratio is at
    most ``max_ratio``. ``theirs`` is None when the reference is absent (a peer not installed) or
    when the case has none (``"-"``).
    """

    case: str
    reference: str
    ours: float | None
    theirs: float | None
    unit: str = "s"
    max_ratio: float | None = None
    target: str = "report"
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.ours is None or self.theirs is None or self.theirs == 0:
            return None
        return self.ours / self.theirs

    @property
    def met(self) -> bool | None:
        """True or False against the target; None where there is no target or nothing to compare."""
        if self.max_ratio is None or self.ratio is None:
            return None
        return self.ratio <= self.max_ratio


@dataclass(frozen=True)
class Case:
    """A named benchmark. ``run(settings)`` builds its data, checks results, times, returns rows.

    Building the data inside ``run`` (not when the case is listed) keeps only one case's arrays
    alive at a time, and lets ``--only`` skip the cost of the others entirely.
    """

    name: str
    run: Callable[[Settings], list[Row]]


@dataclass(frozen=True)
class Reference:
    """What gaussum is compared with on a case.

    Attributes
    ----------
    label : str
        Shown in the table, e.g. ``"np.cov"``.
    call : callable or None
        The reference computation; None when it is absent (then ``absent`` says why).
    check : callable or None
        ``check(ours_result, their_result)`` raises `BenchmarkCheckError` when they disagree.
        Run once, before timing.
    max_ratio : float or None
        The target: gaussum's median time at most this multiple of the reference's.
    target : str
        The target as the issue words it; defaults to ``"<= {max_ratio} x"``.
    """

    label: str
    call: Callable[[], Any] | None
    check: Callable[[Any, Any], None] | None = None
    max_ratio: float | None = None
    target: str | None = None
    absent: str = ""
    note: str = ""

    def target_text(self) -> str:
        if self.target is not None:
            return self.target
        return "report" if self.max_ratio is None else f"<= {self.max_ratio:g} x"


def optional_import(module: str) -> tuple[Any, str]:
    """Import a peer library used only for comparison: ``(module, "")`` or ``(None, reason)``."""
    try:
        return __import__(module, fromlist=["_"]), ""
    except ImportError:
        return None, f"absent: pip install 'gaussum[bench]' for {module.split('.')[0]}"


def calls_per_sample(fn: Callable[[], Any], min_sample_s: float) -> int:
    """How many calls of `fn` one timed sample needs to last at least `min_sample_s`."""
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_sample_s:
            return number
        # Aim a little past the threshold in one step, as timeit's autorange does in several.
        number = max(number * 2, int(number * 1.2 * min_sample_s / max(elapsed, 1e-9)))


def _sample(fn: Callable[[], Any], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def time_interleaved(calls: Sequence[Callable[[], Any]], settings: Settings) -> list[float]:
    """Median seconds per call of each callable, sampled in turn so drift hits all alike.

    Each callable runs once untimed first (warm caches, lazy imports, BLAS thread start-up). The
    garbage collector is off while timing, as in ``timeit``; it runs between samples.
    """
    numbers = [calls_per_sample(fn, settings.min_sample_s) for fn in calls]
    samples: list[list[float]] = [[] for _ in calls]
    enabled = gc.isenabled()
    try:
        for _ in range(settings.repeats):
            for fn, number, times in zip(calls, numbers, samples, strict=True):
                gc.collect()
                gc.disable()
                try:
                    times.append(_sample(fn, number))
                finally:
                    if enabled:
                        gc.enable()
    finally:
        if enabled:
            gc.enable()
    return [statistics.median(times) for times in samples]


def compare(
    case: str, ours: Callable[[], Any], references: Sequence[Reference], settings: Settings
) -> list[Row]:
    """Check gaussum's result against every present reference, then time them all together."""
    result = ours()
    present = [ref for ref in references if ref.call is not None]
    for ref in present:
        if ref.check is not None:
            ref.check(result, ref.call())
    medians = time_interleaved([ours, *(ref.call for ref in present)], settings)
    ours_s, theirs = medians[0], dict(zip((ref.label for ref in present), medians[1:], strict=True))
    rows = []
    for ref in references:
        rows.append(
            Row(
                case=case,
                reference=ref.label,
                ours=ours_s,
                theirs=theirs.get(ref.label),
                max_ratio=ref.max_ratio,
                target=ref.target_text(),
                note=ref.absent or ref.note,
            )
        )
    return rows


def peak_traced_bytes(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated (and not yet freed) during one call of `fn`, by tracemalloc.

    numpy reports its data buffers to tracemalloc, so this counts every array the call makes,
    temporaries included. It does not see memory that BLAS allocates for itself.
    """
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del result
    return peak - base


_RSS_SCRIPT = """
import json, resource, sys
import numpy as np
{setup}

def high_water_kib():
    # VmHWM belongs to this process's address space, which exec made fresh. ru_maxrss would not
    # do: Linux carries it over from the parent across fork and exec, so a child of a large
    # process starts with the parent's peak.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

try:
    # Reset the high-water mark to the current RSS, so the setup's transient peaks are forgotten.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    pass
before = high_water_kib()
result = {call}
after = high_water_kib()
print(json.dumps({{"extra_kib": after - before}}))
"""


def peak_rss_bytes_in_subprocess(setup: str, call: str, timeout_s: float = 300.0) -> int:
    """Growth of the peak resident set of a fresh Python while it evaluates `call`.

    `setup` (run first, e.g. building the input) is not counted. This sees everything the process
    maps, BLAS buffers included, at page granularity. On Linux it reads ``VmHWM`` after resetting
    it; elsewhere ``ru_maxrss``, where the setup should avoid temporaries larger than the call's.
    """
    script = _RSS_SCRIPT.format(setup=textwrap.dedent(setup), call=call)
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "PYTHONWARNINGS": "error"},
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory probe failed:\n{done.stderr}")
    kib = int(json.loads(done.stdout.strip().splitlines()[-1])["extra_kib"])
    # ru_maxrss is in KiB on Linux but in bytes on macOS; VmHWM is in KiB.
    return kib if sys.platform == "darwin" else kib * 1024


def assert_close(what: str, got: Any, expected: Any, tolerance: Any) -> None:
    """Raise `BenchmarkCheckError` unless ``|got - expected| <= tolerance`` everywhere."""
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    if got.shape != expected.shape:
        raise BenchmarkCheckError(f"{what}: shape {got.shape} but the reference has {expected.shape}")
    gap = np.abs(got - expected)
    bad = ~(gap <= tolerance)
    if bad.any():
        i = np.unravel_index(int(np.argmax(np.where(bad, gap, -1.0))), gap.shape) if gap.ndim else ()
        tol = np.broadcast_to(tolerance, gap.shape)[i]
        raise BenchmarkCheckError(
            f"{what}: entry {list(map(int, i))} is {got[i]!r}, the reference has {expected[i]!r} "
            f"(gap {gap[i]:.3g} > tolerance {tol:.3g})"
        )


def assert_moments_close(
    what: str,
    mean: Any,
    cov: Any,
    ref_mean: Any,
    ref_cov: Any,
    n_rows: int,
    rtol: float | None = None,
) -> None:
    """Check a mean and a covariance (or variances) against a reference computed independently.

    Tolerances are scaled to the data: a mean entry may differ by ``rtol * (|mean| + std)``, a
    covariance entry by ``rtol * sqrt(var_i var_j)`` (the largest it can be). The default `rtol`
    is ``64 * eps * sqrt(n_rows) * (1 + (|mean| / std)**2)``: a generous bound on the rounding
    of either side (random-walk rounding over ``n_rows`` terms, amplified by the cancellation
    that an uncentred reference suffers at large offsets), yet orders of magnitude below any
    algebra mistake (a wrong ddof, a missing correction term, a dropped block).
    """
    ref_cov = np.asarray(ref_cov, dtype=float)
    ref_mean = np.asarray(ref_mean, dtype=float)
    variances = np.diagonal(ref_cov) if ref_cov.ndim == 2 else ref_cov
    std = np.sqrt(np.maximum(variances, 0.0))
    if rtol is None:
        offset = float(np.max(np.abs(ref_mean) / np.where(std > 0, std, 1.0)))
        rtol = 64 * EPS * np.sqrt(max(n_rows, 1)) * (1.0 + offset**2)
    assert_close(f"{what} mean", mean, ref_mean, rtol * (np.abs(ref_mean) + std))
    scale = np.sqrt(np.multiply.outer(variances, variances)) if ref_cov.ndim == 2 else variances
    assert_close(f"{what} covariance", cov, ref_cov, rtol * scale)

