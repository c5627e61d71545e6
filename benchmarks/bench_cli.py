"""CSV reading: ``gaussum summarize`` against pandas, polars and pyarrow reading the same file.

Usage::

    python benchmarks/bench_cli.py                  # 2,000,000 x 8, 5 interleaved rounds, a Markdown table
    python benchmarks/bench_cli.py --rows 200000 --repeats 3
    python benchmarks/run.py --all --only csv       # the same comparison in run.py's table

Each contender runs in a fresh Python process, so its peak memory can be read from the kernel
(``VmHWM``, reset just before the timed call) and no contender warms the page cache or the
allocator for another in a way the others do not get: each round runs every contender once, in
the same order, so all of them see the same machine state (interleaving), and the table gives
medians. Imports happen before the timer. The contenders:

- ``gaussum summarize FILE -o STATE.json``: the whole command (hash, parse, summary, state file);
- ``pandas.read_csv`` + ``GaussianSummary.from_samples`` (what the issue sets as the bar);
- ``polars.read_csv`` + ``from_samples`` (when polars is installed);
- ``pyarrow.csv.read_csv`` + ``from_samples`` (the whole file as one table).

Every contender's mean and covariance are checked against gaussum's before the table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _harness import BenchmarkCheckError, Case, Row, Settings  # noqa: E402

# Run in the child: reset the high-water mark, time CALL, print seconds, peak growth and moments.
_CHILD = r"""
import json, sys, time
import numpy as np
{imports}

def hwm_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    pass
path, out = sys.argv[1], sys.argv[2]
before = hwm_kib()
start = time.perf_counter()
{call}
seconds = time.perf_counter() - start
after = hwm_kib()
print(json.dumps({{"seconds": seconds, "peak_kib": after - before, "rss_kib": after,
                  "mean": s.mean.tolist(), "cov": s.covariance().tolist()}}))
"""

CONTENDERS = {
    "gaussum summarize": (
        "import pyarrow.csv\nfrom gaussum.cli import main\nfrom gaussum.cli.state import read_state",
        "assert main(['summarize', path, '-o', out, '-q', '--force']) == 0\ns = read_state(out).summary",
    ),
    "pandas.read_csv + from_samples": (
        "import pandas as pd\nfrom gaussum import GaussianSummary",
        "s = GaussianSummary.from_samples(pd.read_csv(path, dtype=np.float64).to_numpy())",
    ),
    "polars.read_csv + from_samples": (
        "import polars as pl\nfrom gaussum import GaussianSummary",
        "s = GaussianSummary.from_samples(pl.read_csv(path).to_numpy())",
    ),
    "pyarrow.csv.read_csv + from_samples": (
        # pandas too: pyarrow's to_numpy imports it on first use, which is not reading.
        "import pyarrow.csv as pacsv\nimport pandas\nfrom gaussum import GaussianSummary",
        "t = pacsv.read_csv(path)\n"
        "s = GaussianSummary.from_samples(np.column_stack([c.to_numpy() for c in t.columns]))",
    ),
}
_MODULE_OF = {
    "pandas.read_csv + from_samples": "pandas",
    "polars.read_csv + from_samples": "polars",
    "pyarrow.csv.read_csv + from_samples": "pyarrow",
    "gaussum summarize": "pyarrow",
}


def make_csv(path: Path, rows: int, d: int = 8) -> Path:
    """A CSV of `rows` x `d` normal values at full precision (17 digits), written once and reused."""
    if path.exists():
        return path
    rng = np.random.default_rng(20261202)
    scale = np.logspace(-3, 3, d)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w") as f:
        f.write(",".join(f"c{j}" for j in range(d)) + "\n")
        for start in range(0, rows, 100_000):
            block = rng.standard_normal((min(100_000, rows - start), d)) * scale + 3.0
            np.savetxt(f, block, delimiter=",", fmt="%.17g")
    partial.rename(path)
    return path


def available(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(_MODULE_OF[name]) is not None


def run_one(name: str, path: Path, out: Path) -> dict:
    imports, call = CONTENDERS[name]
    script = _CHILD.format(imports=imports, call=call)
    done = subprocess.run(
        [sys.executable, "-c", script, str(path), str(out)], capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def check(name: str, got: dict, ours: dict, rows: int) -> None:
    """The contender's mean and covariance agree with gaussum's to a few rounding errors."""
    mean, cov = np.array(got["mean"]), np.array(got["cov"])
    ref_mean, ref_cov = np.array(ours["mean"]), np.array(ours["cov"])
    scale = np.sqrt(np.outer(np.diag(ref_cov), np.diag(ref_cov)))
    if not (np.abs(cov - ref_cov) <= 1e-9 * scale).all() or not np.allclose(mean, ref_mean, rtol=1e-12, atol=0):
        raise BenchmarkCheckError(f"{name} disagrees with gaussum on {rows:,} rows")


def measure(rows: int, repeats: int, directory: Path) -> dict[str, list[dict]]:
    """Every available contender `repeats` times, interleaved; their samples by name."""
    path = make_csv(directory / f"gaussum-bench-{rows}x8.csv", rows)
    names = [n for n in CONTENDERS if available(n)]
    samples: dict[str, list[dict]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "state.json"
        for _ in range(repeats):
            for name in names:
                samples[name].append(run_one(name, path, out))
    ours = samples["gaussum summarize"][0]
    for name in names:
        check(name, samples[name][0], ours, rows)
    return samples


def table(samples: dict[str, list[dict]], rows: int, size: int) -> str:
    """The Markdown table. The time ratio is the median over rounds of gaussum's time over the
    contender's in the same round: on a machine whose load drifts, runs seconds apart compare
    more fairly than medians taken minutes apart."""
    lines = [
        "| reader | median time | rows/s | MB/s | gaussum's time / this | peak RSS growth | peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    ours = samples["gaussum summarize"]
    for name, runs in samples.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        peak = statistics.median(r["peak_kib"] for r in runs) / 1024
        rss = statistics.median(r["rss_kib"] for r in runs) / 1024
        ratio = statistics.median(g["seconds"] / r["seconds"] for g, r in zip(ours, runs, strict=True))
        lines.append(
            f"| {name} | {seconds:.2f} s | {rows / seconds:,.0f} | {size / seconds / 1e6:,.0f} | {ratio:.2f} | "
            f"{peak:,.0f} MiB | {rss:,.0f} MiB |"
        )
    for name in CONTENDERS:
        if name not in samples:
            lines.append(f"| {name} | absent: pip install {_MODULE_OF[name]} | | | | | |")
    return "\n".join(lines)


def cases() -> list[Case]:
    """For run.py: gaussum summarize against pandas on a CSV (200,000 rows with --quick)."""

    def run(settings: Settings) -> list[Row]:
        rows = 200_000 if settings.quick else 2_000_000
        samples = measure(rows, max(1, min(settings.repeats, 5)), Path(tempfile.gettempdir()))
        median = lambda name, key: statistics.median(r[key] for r in samples[name])  # noqa: E731
        case = f"CSV summarize, {rows:,} x 8"
        out = []
        for name in samples:
            if name == "gaussum summarize":
                continue
            target = name.startswith("pandas")
            out.append(
                Row(
                    case,
                    name,
                    median("gaussum summarize", "seconds"),
                    median(name, "seconds"),
                    max_ratio=1.0 if target else None,
                    target="<= 1 x" if target else "report",
                    note="fresh process per run; gaussum: the whole command",
                )
            )
            out.append(
                Row(
                    f"peak RSS growth, {case}",
                    name,
                    median("gaussum summarize", "peak_kib") * 1024,
                    median(name, "peak_kib") * 1024,
                    unit="B",
                    note="VmHWM, fresh process",
                )
            )
        return out

    return [Case("CSV summarize vs pandas, polars, pyarrow", run)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--dir", type=Path, default=Path(tempfile.gettempdir()), help="where the CSV is kept between runs"
    )
    args = parser.parse_args(argv)
    samples = measure(args.rows, args.repeats, args.dir)
    size = os.path.getsize(args.dir / f"gaussum-bench-{args.rows}x8.csv")
    print(
        f"{args.rows:,} x 8 CSV ({size / 1e6:,.0f} MB), medians of {args.repeats} interleaved runs, "
        f"each in a fresh process; Python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs\n"
    )
    print(table(samples, args.rows, size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
