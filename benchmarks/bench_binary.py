"""The binary form against JSON (to_dict) and pickle: bytes, and time to write and to read.

Usage::

    python benchmarks/bench_binary.py            # d = 8, 64, 512: the README's table
    python benchmarks/bench_binary.py --quick    # d = 8, 64
    python benchmarks/run.py --all --only binary # through the harness

A summary of correlated rows far from zero (so every field, the means' rounding errors
included, is non-trivial) is written and read back by each form; each read is checked to give
the same summary before anything is timed. Reading validates as construction does in every form
(pickle's ``__reduce__`` goes through the constructor too), so the read times compare like
with like: JSON pays for text, the binary form for unpacking the triangle.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:  # standalone runs, as run.py does
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from _harness import BenchmarkCheckError, Case, Row, Settings, time_interleaved
from gaussum import GaussianSummary

SIZES = (8, 64, 512)


def summary(d: int) -> GaussianSummary:
    rng = np.random.default_rng(d)
    mixing = np.eye(d) + 0.3 * rng.standard_normal((d, d)) / np.sqrt(d)
    X = 1e6 + rng.standard_normal((max(4 * d, 256), d)) @ mixing
    return GaussianSummary.from_samples(X, names=[f"v{i}" for i in range(d)])


FORMS = {
    "JSON (to_dict + json)": (
        lambda s: json.dumps(s.to_dict()).encode(),
        lambda b: GaussianSummary.from_dict(json.loads(b)),
    ),
    "pickle": (pickle.dumps, pickle.loads),
    "to_bytes": (lambda s: s.to_bytes(), GaussianSummary.from_bytes),
}


def measure(d: int, settings: Settings) -> list[tuple[str, int, float, float]]:
    """(form, bytes, write seconds, read seconds) for each form at `d`."""
    s = summary(d)
    results = []
    encoded = {name: write(s) for name, (write, _) in FORMS.items()}
    for name, (_, read) in FORMS.items():
        back = read(encoded[name])
        if back != s:
            raise BenchmarkCheckError(f"{name} at d = {d} did not give the same summary back")
    writes = time_interleaved([lambda w=w: w(s) for w, _ in FORMS.values()], settings)
    reads = time_interleaved([lambda r=r, b=encoded[n]: r(b) for n, (_, r) in FORMS.items()], settings)
    for (name, data), w, r in zip(encoded.items(), writes, reads, strict=True):
        results.append((name, len(data), w, r))
    return results


def rows(settings: Settings) -> list[Row]:
    table = []
    for d in SIZES[:2] if settings.quick else SIZES:
        results = measure(d, settings)
        ours = next(r for r in results if r[0] == "to_bytes")
        for name, size, write, read in results:
            if name == "to_bytes":
                continue
            table.append(Row(f"binary form, d = {d}, bytes", name, ours[1], size, unit="B"))
            table.append(Row(f"binary form, d = {d}, write", name, ours[2], write))
            table.append(Row(f"binary form, d = {d}, read (validated)", name, ours[3], read))
    return table


def cases() -> list[Case]:
    """The README's table: d = 8, 64, 512 (8 and 64 with --quick)."""
    return [Case("binary form vs JSON and pickle", rows)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="d = 8 and 64 only")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    settings = Settings(quick=args.quick, repeats=args.repeats)
    print("| d | form | bytes | write | read (validated) |")
    print("|---:|---|---:|---:|---:|")
    for d in SIZES[:2] if args.quick else SIZES:
        for name, size, write, read in measure(d, settings):
            print(f"| {d} | {name} | {size:,} | {write * 1e6:,.0f} µs | {read * 1e6:,.0f} µs |")


__all__ = ["cases"]


if __name__ == "__main__":
    main()
