"""Time this checkout's gaussum against an earlier revision of it, side by side in one process.

Usage::

    python benchmarks/compare_revisions.py                      # against FIRST_VERSION
    python benchmarks/compare_revisions.py --baseline b9b18fe~1 # against any git revision
    python benchmarks/compare_revisions.py --only 'a \\+ b|merge_all' --rounds 9
    python benchmarks/compare_revisions.py --baseline site-packages  # a folder: an installed release

The baseline's ``src/gaussum`` is taken from git (``git archive``) into a temporary folder, or
from a folder that holds a ``gaussum`` package, and imported under another name, so both
versions run in the same process on the same arrays: whatever load the machine carries hits both
alike. Each round times the two versions in turn
(the order alternating between rounds, each sample repeated until it lasts ``--min-sample``
seconds) and the table gives the median of the per-round ratios ``new / baseline``, with the
medians of the times beside it. Before timing, the two results of every case are compared (means,
covariance, count): a fast wrong answer stops the run.

The cases are those of the issues' "no slower" targets: `bench_core`'s data (means a few standard
deviations from zero), the same data centred, grouped rows and the small calls whose cost is
Python's. Dask's cases need worker processes that import one version each and are left to
``run.py --all``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import io
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402

from _harness import calls_per_sample  # noqa: E402

#: The first version in main, before the core rebuild (issue 10's "before").
FIRST_VERSION = "1cfe8a2"

#: A case: given a gaussum package, its data already built, a call to time.
Build = Callable[[ModuleType, Any], Callable[[], Any]]


@dataclass(frozen=True)
class Case:
    """One comparison: `data()` builds the inputs once, `build(gaussum, data)` the timed call."""

    name: str
    data: Callable[[], Any]
    build: Build


def _centred(n_rows: int, d: int) -> np.ndarray:
    """Standard normal rows: every mean near zero, the compensated mean's costliest case."""
    return np.random.default_rng(7).standard_normal((n_rows, d))


def _shards(count: int, rows: int, d: int) -> Callable[[], Any]:
    from bench_core import _data

    return lambda: [_data(rows, d, seed=i) for i in range(count)]


def _cases() -> list[Case]:
    from bench_core import _data  # imports gaussum: only once GAUSSUM_KERNEL is set

    cases = []
    for n_rows, d in ((1_000_000, 4), (1_000_000, 8), (1_000_000, 32), (200_000, 256)):
        cases.append(
            Case(
                f"from_samples, {n_rows:,} x {d}",
                lambda n_rows=n_rows, d=d: _data(n_rows, d),
                lambda g, X: lambda: g.GaussianSummary.from_samples(X),
            )
        )
    for d in (1, 4, 8, 16, 32):
        cases.append(
            Case(
                f"from_samples, centred, 1,000,000 x {d}",
                lambda d=d: _centred(1_000_000, d),
                lambda g, X: lambda: g.GaussianSummary.from_samples(X),
            )
        )
    cases.append(
        Case(
            "from_samples, 100 x 4 (per call)",
            lambda: _data(100, 4),
            lambda g, X: lambda: g.GaussianSummary.from_samples(X),
        )
    )
    cases.append(
        Case(
            "update one row at a time, d = 8, 10,000 rows",
            lambda: _data(10_000, 8),
            lambda g, X: lambda: _fold_rows(g.GaussianSummary.empty(8), X),
        )
    )
    cases.append(
        Case(
            "update one value at a time, scalar, 10,000 values",
            lambda: _data(10_000, 1)[:, 0].tolist(),
            lambda g, values: lambda: _fold_rows(g.GaussianSummary.empty(), values),
        )
    )
    for diagonal in (False, True):
        cases.append(
            Case(
                f"batch update{', diagonal' if diagonal else ''}, 100 batches of 10,000 x 32",
                _shards(100, 10_000, 32),
                lambda g, batches, diagonal=diagonal: lambda: _fold_rows(
                    g.GaussianSummary.empty(32, diagonal=diagonal), batches
                ),
            )
        )
    cases.append(
        Case(
            "a + b, d = 64",
            lambda: (_data(1_000, 64, seed=1), _data(1_000, 64, seed=2)),
            _pair,
        )
    )
    cases.append(Case("merge_all of 10,000 shards, d = 16", _shards(10_000, 20, 16), _merge_all))
    cases.append(
        Case(
            "grouped covariances, 1,000,000 x 8, 10,000 keys",
            lambda: (np.random.default_rng(3).integers(0, 10_000, 1_000_000), _data(1_000_000, 8)),
            lambda g, data: lambda: g.GroupedSummary.from_samples(*data),
        )
    )
    return cases


def _fold_rows(s: Any, rows: Any) -> Any:
    for row in rows:
        s = s.update(row)
    return s


def _pair(g: ModuleType, data: Any) -> Callable[[], Any]:
    a, b = (g.GaussianSummary.from_samples(X) for X in data)
    return lambda: a + b


def _merge_all(g: ModuleType, shards: Any) -> Callable[[], Any]:
    parts = [g.GaussianSummary.from_samples(X) for X in shards]
    return lambda: g.GaussianSummary.merge_all(parts)


@contextlib.contextmanager
def baseline_package(baseline: str) -> Iterator[ModuleType]:
    """The package ``gaussum_baseline``: `baseline`'s ``src/gaussum``, where `baseline` is a git
    revision of this repository or a folder holding a ``gaussum`` package (an unpacked release)."""
    folder = Path(baseline)
    try:
        if (folder / "gaussum" / "__init__.py").is_file():
            yield _imported(folder / "gaussum")
            return
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", baseline, "src/gaussum"],
            check=True,
            capture_output=True,
        ).stdout
        with tempfile.TemporaryDirectory(prefix="gaussum-baseline-") as unpacked:
            with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                tar.extractall(unpacked, filter="data")
            yield _imported(Path(unpacked) / "src" / "gaussum")
    finally:
        for name in [m for m in sys.modules if m == "gaussum_baseline" or m.startswith("gaussum_baseline.")]:
            del sys.modules[name]


def _imported(package: Path) -> ModuleType:
    """The package at `package` imported as ``gaussum_baseline``."""
    spec = importlib.util.spec_from_file_location(
        "gaussum_baseline", package / "__init__.py", submodule_search_locations=[str(package)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gaussum_baseline"] = module
    spec.loader.exec_module(module)
    return module


def _summary_of(result: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """``(mean, covariance, n)`` of a summary, or of every group of a grouped one, stacked."""
    if hasattr(result, "keys") and hasattr(result, "counts"):
        return np.asarray(result.means), np.asarray(result.M2), float(np.sum(result.counts))
    return np.asarray(result.mean), np.asarray(result.M2), float(result.n)


def check_agree(name: str, new: Any, old: Any) -> None:
    """Raise AssertionError unless the two versions' results agree to rounding."""
    for what, a, b in zip(("mean", "M2", "n"), _summary_of(new), _summary_of(old), strict=True):
        scale = max(float(np.max(np.abs(b))), 1.0) if np.size(b) else 1.0
        if np.shape(a) != np.shape(b) or not np.allclose(a, b, rtol=1e-9, atol=1e-9 * scale):
            raise AssertionError(f"{name}: the two versions' {what} differ")


def time_pair(
    new: Callable[[], Any], old: Callable[[], Any], rounds: int, min_sample_s: float
) -> tuple[float, float, float]:
    """Median ratio new/old over `rounds` interleaved rounds, and the median times of each."""
    numbers = [calls_per_sample(fn, min_sample_s) for fn in (new, old)]
    ratios, times = [], ([], [])  # type: ignore[var-annotated]
    for r in range(rounds):
        order = (0, 1) if r % 2 == 0 else (1, 0)
        sample = [0.0, 0.0]
        for i in order:
            fn, number = (new, old)[i], numbers[i]
            gc.collect()
            gc.disable()
            try:
                start = time.perf_counter()
                for _ in range(number):
                    fn()
                sample[i] = (time.perf_counter() - start) / number
            finally:
                gc.enable()
        ratios.append(sample[0] / sample[1])
        times[0].append(sample[0])
        times[1].append(sample[1])
    return statistics.median(ratios), statistics.median(times[0]), statistics.median(times[1])


def _seconds(t: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t / 1e-9:.3g} ns"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--baseline",
        default=FIRST_VERSION,
        help=f"git revision, or a folder holding a gaussum package, to compare with (default {FIRST_VERSION})",
    )
    parser.add_argument("--only", help="regular expression: the cases whose name it matches")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per case (default 7)")
    parser.add_argument("--min-sample", type=float, default=0.05, help="seconds per timed sample (default 0.05)")
    parser.add_argument(
        "--kernel",
        choices=("auto", "numpy"),
        default="auto",
        help="'numpy' sets GAUSSUM_KERNEL=numpy for both versions: the paths without gaussum[fast]",
    )
    args = parser.parse_args(argv)
    # Read by both versions' gaussum._compiled at import (versions before it ignore it), so
    # gaussum is imported only now.
    os.environ["GAUSSUM_KERNEL"] = args.kernel
    import gaussum

    cases = [c for c in _cases() if not args.only or re.search(args.only, c.name, re.IGNORECASE)]
    with baseline_package(args.baseline) as old:
        print(f"gaussum at {_describe('HEAD')} (working tree) against {args.baseline} ({_describe(args.baseline)})")
        kernels = _has_numba() if args.kernel == "auto" else "off (GAUSSUM_KERNEL=numpy)"
        print(f"numpy {np.__version__}; compiled kernels: {kernels}; {args.rounds} rounds\n")
        print("| case | new | baseline | new / baseline |")
        print("|---|---:|---:|---:|")
        for case in cases:
            data = case.data()
            new_call, old_call = case.build(gaussum, data), case.build(old, data)
            check_agree(case.name, new_call(), old_call())
            ratio, t_new, t_old = time_pair(new_call, old_call, args.rounds, args.min_sample)
            print(f"| {case.name} | {_seconds(t_new)} | {_seconds(t_old)} | {ratio:.2f} |", flush=True)
    return 0


def _describe(revision: str) -> str:
    if Path(revision).is_dir():
        return "a folder"
    done = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%h %cs", revision], capture_output=True, text=True
    )
    return done.stdout.strip() or "?"


def _has_numba() -> str:
    return "numba" if importlib.util.find_spec("numba") is not None else "absent"


if __name__ == "__main__":
    sys.exit(main())
