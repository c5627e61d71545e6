"""The README's offset table: relative covariance error of every gaussum path and of its peers.

Usage::

    python benchmarks/accuracy_table.py             # d = 4, offsets 1e9 and 1.7e9, spreads 1, 1e-3
    python benchmarks/accuracy_table.py --d 32      # the same at d = 32
    python benchmarks/accuracy_table.py --rows 1000000 --skip-stream   # 1e6 rows, no row-by-row

1e5 rows of d standard normal variables times the spread, plus the offset, split into 37 uneven
shards at random cuts (the generator of ``tests/test_compensation.py``'s table test). The
reference is ``tests/exact.py``'s: the covariance about the exact mean (``math.fsum``, its
remainder, and `fractions.Fraction`), the centred values' products summed by numpy (rounding far
below the errors measured). Each entry is ``||C - C_ref||_F / ||C_ref||_F``; "mean ulps" is the largest
distance of a gaussum path's mean from the exact mean, in ulps.

Paths: ``from_samples`` on all rows; ``merge_all`` of the shards' summaries; a left fold of ``+``;
a random pairwise tree of ``+``; ``update`` with one row at a time (whatever kernel this install
runs: the compiled step with ``gaussum[fast]``); ``dask.array.cov`` with the shards as chunks;
``np.cov``; pandas ``DataFrame.cov``. Accuracy does not depend on the machine, only on the code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if str(Path(__file__).resolve().parent.parent / "src") not in sys.path:  # a checkout, not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
if str(Path(__file__).resolve().parent.parent / "tests") not in sys.path:  # `tests/exact.py`'s reference
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import numpy as np

from exact import reference_covariance
from gaussum import GaussianSummary

SHARDS = 37


def table_data(rows: int, d: int, offset: float, spread: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """`rows` rows of d variables at `offset` with `spread`, and `SHARDS` uneven chunks of them."""
    rng = np.random.default_rng(int(offset) % 1000 + d)
    X = offset + spread * rng.standard_normal((rows, d))
    cuts = np.sort(rng.choice(np.arange(1, rows), SHARDS - 1, replace=False))
    return X, np.split(X, cuts)


def relative(C: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(np.atleast_2d(C) - ref) / np.linalg.norm(ref))


def random_tree(parts: list[GaussianSummary], seed: int) -> GaussianSummary:
    """Merge random pairs until one summary is left."""
    rng = np.random.default_rng(seed)
    items = list(parts)
    while len(items) > 1:
        i, j = sorted(rng.choice(len(items), 2, replace=False))
        b, a = items.pop(j), items.pop(i)
        items.append(a + b)
    return items[0]


def measure(rows: int, d: int, offset: float, spread: float, stream: bool) -> dict[str, float]:
    X, chunks = table_data(rows, d, offset, spread)
    ref, hi, lo = reference_covariance(X)
    shards = [GaussianSummary.from_samples(c) for c in chunks]
    folded = shards[0]
    for shard in shards[1:]:
        folded = folded + shard
    paths = {
        "from_samples": GaussianSummary.from_samples(X),
        "merge_all": GaussianSummary.merge_all(shards),
        "left fold of +": folded,
        "random pairwise tree": random_tree(shards, d),
    }
    if stream:
        s = GaussianSummary.empty(d)
        for row in X:
            s = s.update(row)
        paths["row-by-row update"] = s
    result = {name: relative(s.covariance(), ref) for name, s in paths.items()}
    result["mean ulps"] = max(
        float(np.max(np.abs((s.mean - hi) - lo) / np.spacing(np.abs(hi)))) for s in paths.values()
    )
    try:
        import dask.array as da

        sizes = tuple(len(c) for c in chunks)
        result[f"dask.array.cov, {SHARDS} chunks"] = relative(
            np.asarray(da.cov(da.from_array(X, chunks=(sizes, d)), rowvar=False).compute()), ref
        )
    except ModuleNotFoundError:
        pass
    result["np.cov"] = relative(np.cov(X, rowvar=False), ref)
    try:
        import pandas as pd

        result["pandas cov"] = relative(pd.DataFrame(X).cov().to_numpy(), ref)
    except ModuleNotFoundError:
        pass
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--d", type=int, default=4)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--skip-stream", action="store_true", help="leave out row-by-row update (slow at 1e6 rows)")
    args = parser.parse_args(argv)
    print(f"{args.rows:,} rows x {args.d}, {SHARDS} uneven shards; relative covariance error (Frobenius)\n")
    rows = []
    for spread in (1.0, 1e-3):
        cells = [measure(args.rows, args.d, offset, spread, not args.skip_stream) for offset in (1e9, 1.7e9)]
        rows.append((spread, cells))
    names = list(rows[0][1][0])
    print("| spread | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for spread, (at_1e9, at_17e9) in rows:
        entries = [f"{at_1e9[n]:.2g} ({at_17e9[n]:.2g})" for n in names]
        print(f"| {spread:g} | " + " | ".join(entries) + " |")
    print("\noffset 1e9, in brackets 1.7e9")


if __name__ == "__main__":
    main()
