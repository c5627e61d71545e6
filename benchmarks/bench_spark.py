"""gaussum.spark.summarize against Spark's own Summarizer on the same DataFrame, on local[2].

Usage::

    python benchmarks/bench_spark.py                 # 10,000,000 x 8, the issue's size
    python benchmarks/bench_spark.py --rows 2000000  # what a loaded machine allows
    python benchmarks/run.py --all --only spark      # through the harness (--quick: 200,000 x 8)

The rows are drawn by Spark itself (``randn`` over ``spark.range``, 16 partitions) about 1e6
with spreads 1 to 3, either anew in each job (*generated in the plan*, as rows read from storage
would be) or from Spark's in-memory cache (*cached*). The references:

- ``Summarizer.metrics("mean", "variance")`` over a ``VectorAssembler`` column: Spark's own
  per-column statistics, which compute less than a full covariance;
- ``covar_samp`` over every pair of columns: Spark's SQL aggregate for the same full covariance.

Each result is checked against the other before anything is timed (same count, means and
variances within Spark's own rounding at this offset), then the jobs are timed in turn (gaussum,
Summarizer, covar_samp, gaussum, ...) and the medians compared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent) not in sys.path:  # standalone runs, as run.py does
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from _harness import BenchmarkCheckError, Case, Row, Settings

D = 8
PARTITIONS = 16
COLUMNS = [f"x{j}" for j in range(D)]


def make_frame(spark: Any, n_rows: int) -> Any:
    """Correlated columns about 1e6 (a lower-triangular mix of randn columns), drawn by Spark."""
    import pyspark.sql.functions as F

    base = spark.range(0, n_rows, 1, numPartitions=PARTITIONS).select(
        *(F.randn(seed=j).alias(f"z{j}") for j in range(D))
    )
    mixed = [
        (sum((F.col(f"z{k}") * (0.3 if k < j else 1.0) for k in range(j + 1)), F.lit(0.0)) * (1.0 + 2.0 * j / (D - 1))
         + F.lit(1e6)).alias(COLUMNS[j])
        for j in range(D)
    ]
    return base.select(*mixed)


def summarizer(df: Any) -> tuple[float, np.ndarray, np.ndarray]:
    import pyspark.sql.functions as F
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.stat import Summarizer

    vectors = VectorAssembler(inputCols=COLUMNS, outputCol="v").transform(df)
    row = vectors.select(Summarizer.metrics("count", "mean", "variance").summary(F.col("v")).alias("m")).first()["m"]
    return float(row["count"]), row["mean"].toArray(), row["variance"].toArray()


def covar_samp(df: Any) -> np.ndarray:
    import pyspark.sql.functions as F

    pairs = [(i, j) for i in range(D) for j in range(i, D)]
    row = df.agg(*(F.covar_samp(COLUMNS[i], COLUMNS[j]) for i, j in pairs)).first()
    cov = np.empty((D, D))
    for value, (i, j) in zip(row, pairs, strict=True):
        cov[i, j] = cov[j, i] = value
    return cov


def check(s: Any, count: float, mean: np.ndarray, variance: np.ndarray, cov: np.ndarray) -> None:
    """Same count; means and variances within Spark's own rounding here (about 1e-16 * 1e6 / std)."""
    if s.n != count:
        raise BenchmarkCheckError(f"gaussum counted {s.n} rows, Summarizer {count}")
    if not np.allclose(s.mean, mean, rtol=1e-13, atol=0):
        raise BenchmarkCheckError(f"means differ: {s.mean} vs Summarizer's {mean}")
    for name, theirs in (("Summarizer's variances", variance), ("covar_samp's diagonal", np.diagonal(cov))):
        if not np.allclose(s.variance(), theirs, rtol=1e-6, atol=0):
            raise BenchmarkCheckError(f"variances differ: {s.variance()} vs {name} {theirs}")
    scale = np.sqrt(np.outer(np.diagonal(cov), np.diagonal(cov)))
    if not np.all(np.abs(s.covariance() - cov) <= 1e-6 * scale):
        raise BenchmarkCheckError("covariances differ from covar_samp's by more than its rounding")


def median_times(calls: list[Callable[[], Any]], repeats: int) -> list[float]:
    samples: list[list[float]] = [[] for _ in calls]
    for _ in range(repeats):
        for fn, times in zip(calls, samples, strict=True):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return [statistics.median(t) for t in samples]


def measure(
    spark: Any, n_rows: int, repeats: int, cases: tuple[str, ...] = ("generated in the plan", "cached")
) -> list[Row]:
    from gaussum.spark import summarize

    rows = []
    df = make_frame(spark, n_rows)
    for case in cases:
        frame = df
        if case == "cached":
            frame = df.cache()
            frame.count()  # fill the cache
        s = summarize(frame)
        count, mean, variance = summarizer(frame)
        cov = covar_samp(frame)
        check(s, count, mean, variance, cov)
        ours, theirs, sql = median_times(
            [lambda f=frame: summarize(f), lambda f=frame: summarizer(f), lambda f=frame: covar_samp(f)], repeats
        )
        name = f"spark summarize, {n_rows:,} x {D}, {case}"
        rows.append(Row(name, 'Summarizer.metrics("mean", "variance")', ours, theirs, note="local[2], 16 partitions"))
        rows.append(Row(name, "covar_samp over all pairs", ours, sql, note="local[2], 16 partitions"))
    df.unpersist()
    return rows


def start(master: str = "local[2]") -> Any:
    from gaussum.spark import session

    spark = session(master, "gaussum-bench", config={
        "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false", "spark.driver.memory": "6g",
    })
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def cases() -> list[Case]:
    """One case for run.py: 10,000,000 x 8 on local[2] (200,000 with --quick)."""

    def run(settings: Settings) -> list[Row]:
        return measure(start(), 200_000 if settings.quick else 10_000_000, max(1, min(settings.repeats, 3)))

    return [Case(f"spark summarize vs Summarizer, d = {D}", run)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    spark = start()
    load = os.getloadavg()[0]
    rows = measure(spark, args.rows, args.repeats)
    print(f"\n{args.rows:,} x {D} rows, {PARTITIONS} partitions, local[2]; median of {args.repeats} interleaved "
          f"runs; load average {load:.1f} before, {os.getloadavg()[0]:.1f} after\n")
    print("| case | gaussum | reference | reference time | ratio |")
    print("|---|---:|---|---:|---:|")
    for row in rows:
        print(f"| {row.case} | {row.ours:.2f} s | {row.reference} | {row.theirs:.2f} s | {row.ratio:.2f} |")
    spark.stop()


__all__ = ["cases"]


if __name__ == "__main__":
    main()
