"""Run gaussum's benchmarks and print a Markdown table.

Usage::

    python benchmarks/run.py              # the core cases (bench_core.py), full sizes
    python benchmarks/run.py --quick      # small sizes: a fast look, or a smoke test
    python benchmarks/run.py --only cov   # cases whose name matches a regular expression
    python benchmarks/run.py --all        # every benchmarks/bench_*.py module

The protocol a benchmark module follows (see ``_harness.py``, which this directory puts on
``sys.path`` so modules can ``from _harness import ...``):

- it is a file ``benchmarks/bench_<topic>.py``;
- it defines ``cases()``, returning a list of ``_harness.Case(name, run)``;
- ``run(settings)`` builds the case's data (so unselected cases cost nothing), checks gaussum's
  result against its reference, raising ``_harness.BenchmarkCheckError`` when they disagree,
  then times, and returns a list of ``_harness.Row`` (``_harness.compare`` does all three for the
  usual "gaussum versus references" case).

Every table row holds gaussum's median, the reference's median measured in the same process
(interleaved with ours), their ratio, the target and whether it is met. A failed self-check is
printed with its traceback, marked in the table, and makes the exit status 1; a missed target
makes it 2 only under ``--strict``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import re
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402

from _harness import Case, Row, Settings  # noqa: E402

DEFAULT_MODULES = ("bench_core",)


def discover(all_modules: bool) -> list[str]:
    """Names of the benchmark modules to run: ``bench_core`` by default, or every ``bench_*``."""
    if not all_modules:
        return list(DEFAULT_MODULES)
    found = sorted(p.stem for p in HERE.glob("bench_*.py"))
    # The core cases first: they are the table.
    return [m for m in DEFAULT_MODULES if m in found] + [m for m in found if m not in DEFAULT_MODULES]


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def load_cases(module_names: list[str], pattern: str | None) -> list[tuple[str, Case]]:
    """The ``(module, case)`` pairs to run, filtered by `pattern` (case-insensitive search)."""
    regex = re.compile(pattern, re.IGNORECASE) if pattern else None
    selected = []
    for module_name in module_names:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # e.g. bench_dask without the dask extra
            print(f"note: {module_name}.py skipped: {exc} (install its extra to run it)", file=sys.stderr)
            continue
        if not callable(getattr(module, "cases", None)):
            print(f"note: {module_name}.py defines no cases(); skipped", file=sys.stderr)
            continue
        for case in module.cases():
            if regex is None or regex.search(case.name):
                selected.append((module_name, case))
    return selected


def format_quantity(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "B":
        return f"{value / 2**20:,.1f} MiB" if value >= 2**17 else f"{value / 2**10:,.1f} KiB"
    for scale, suffix in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if value >= scale:
            return f"{value / scale:.3g} {suffix}"
    return f"{value / 1e-9:.3g} ns"


def format_row(row: Row) -> str:
    ratio = "-" if row.ratio is None else f"{row.ratio:.3g} x"
    met = {True: "yes", False: "**no**", None: "-"}[row.met]
    cells = [
        row.case,
        row.reference,
        format_quantity(row.ours, row.unit),
        format_quantity(row.theirs, row.unit),
        ratio,
        row.target,
        met,
        row.note,
    ]
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


HEADER = (
    "| case | reference | gaussum | reference | ratio | target | met? | note |\n"
    "|---|---|---:|---:|---:|---|---|---|"
)


def machine_description() -> str:
    """One line naming the machine, so a table can be read against the hardware it ran on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import gaussum

    blas = "unknown BLAS"
    try:
        config = np.show_config(mode="dicts")
        blas_info = config["Build Dependencies"]["blas"]
        blas = f"{blas_info['name']} {blas_info.get('version', '')}".strip()
    except Exception:  # show_config's layout differs across numpy versions; the line is cosmetic
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, numpy {np.__version__} ({blas}{blas_threads()}), "
        f"gaussum {gaussum.__version__}"
    )


def blas_threads() -> str:
    """``", BLAS threads N"`` for the BLAS numpy links, when threadpoolctl can tell; else ``""``."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ""
    pools = [pool for pool in threadpool_info() if pool.get("user_api") == "blas"]
    numpys = [pool for pool in pools if "numpy" in pool.get("filepath", "")]
    counts = {pool["num_threads"] for pool in numpys or pools}
    return f", BLAS threads {'/'.join(map(str, sorted(counts)))}" if counts else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds, not minutes)")
    parser.add_argument("--only", metavar="PATTERN", help="run cases whose name matches this regex")
    parser.add_argument("--all", action="store_true", help="run every benchmarks/bench_*.py module")
    parser.add_argument(
        "--repeats", type=_positive_int, default=None, help="timed samples per call (default 7, quick 3)"
    )
    parser.add_argument("--strict", action="store_true", help="exit with status 2 when a target is missed")
    parser.add_argument("--list", action="store_true", help="list the selected cases and exit")
    parser.add_argument("--blas-threads", type=int, default=None, metavar="N",
                        help="limit BLAS to N threads (needs threadpoolctl, which scikit-learn brings); "
                             "1 gives steadier ratios on a busy machine")
    args = parser.parse_args(argv)
    if args.blas_threads is not None:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            print("--blas-threads needs threadpoolctl: pip install 'gaussum[bench]'", file=sys.stderr)
            return 1
        try:
            import scipy.linalg  # noqa: F401  (load scipy's own BLAS now, so the limit covers it too)
        except ImportError:
            pass
        with threadpool_limits(limits=args.blas_threads, user_api="blas"):
            return _run(args)
    return _run(args)


def _run(args: argparse.Namespace) -> int:

    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 7)
    settings = Settings(quick=args.quick, repeats=repeats, min_sample_s=0.005 if args.quick else 0.02)
    selected = load_cases(discover(args.all), args.only)
    if args.list:
        for module_name, case in selected:
            print(f"{module_name}: {case.name}")
        return 0
    if not selected:
        print(f"no case matches {args.only!r}", file=sys.stderr)
        return 1

    load_before = os.getloadavg()[0]
    if load_before > 0.25 * (os.cpu_count() or 1):
        print(f"warning: load average {load_before:.2f} before starting; other processes will "
              "distort the timings (BLAS threads suffer most)", file=sys.stderr)
    rows: list[Row] = []
    failures = 0
    started = time.perf_counter()
    for module_name, case in selected:
        print(f"[{time.perf_counter() - started:6.1f} s] {module_name}: {case.name}", file=sys.stderr, flush=True)
        try:
            rows.extend(case.run(settings))
        except Exception:
            failures += 1
            traceback.print_exc()
            rows.append(Row(case.name, "CHECK FAILED (see the traceback above)", None, None, target="-"))
    elapsed = time.perf_counter() - started

    sizes = "quick sizes (rows / 100, streams / 10)" if settings.quick else "the issue's sizes"
    print(f"Medians of {settings.repeats} interleaved samples, {sizes}; "
          f"{datetime.date.today().isoformat()}; {machine_description()}; "
          f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after.\n")
    print(HEADER)
    for row in rows:
        print(format_row(row))
    missed = [row for row in rows if row.met is False]
    print(f"\n{len(rows)} rows in {elapsed:.0f} s; {failures} failed checks; {len(missed)} missed targets.")
    if failures:
        return 1
    if missed and args.strict:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
