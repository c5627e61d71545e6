"""Tests for gaussum.spark on a real local Spark, against references that share no code with it:
``np.cov`` and exact integer moments of the collected rows, Spark's own statistics, and the same
rows through `gaussum.dask` and the core.

One SparkSession for the module (``local[2,2]``: two threads, and a failed task retried once,
which local mode does only when the master says so).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyspark  # noqa: F401  (a missing extra is a skip naming gaussum[spark]; see conftest.py)
import pytest

from gaussum import GaussianSummary, GroupedSummary
from gaussum.errors import MissingKeysWarning

if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip(
        "Spark needs a Java runtime (17 or later), and none is on the PATH: install one, e.g. "
        "'apt-get install openjdk-17-jre-headless'",
        allow_module_level=True,
    )

from pyspark.errors import PythonException
from pyspark.sql import types as T

from gaussum.spark import session, summarize, summarize_by

ROOT = Path(__file__).resolve().parents[1]
EPS = np.finfo(np.float64).eps
D = 3
COLUMNS = ["x", "y", "z"]


@pytest.fixture(scope="module")
def spark():
    """The one local session of the test run; Arrow batches of 1,000 rows so partitions span several."""
    s = session(
        "local[2,2]",
        "gaussum-tests",
        config={
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.shuffle.partitions": "4",
            "spark.sql.execution.arrow.maxRecordsPerBatch": "1000",  # restored after each job
            "spark.driver.memory": "1g",
        },
    )
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


def rows(n: int, seed: int = 7, offset: float = 1e6) -> np.ndarray:
    """Correlated rows with unequal spreads (1 to 3) about `offset`."""
    rng = np.random.default_rng(seed)
    mixing = np.eye(D) + 0.4 * rng.standard_normal((D, D))
    return offset + rng.standard_normal((n, D)) @ mixing * np.array([1.0, 2.0, 3.0])


def frame(spark, X: np.ndarray, partitions: int, extra: dict | None = None):
    """A DataFrame of the rows of X in `partitions` partitions (in order; empty ones when fewer rows)."""
    columns = {name: X[:, j].tolist() for j, name in enumerate(COLUMNS)}
    columns.update(extra or {})
    names = list(columns)
    data = list(zip(*columns.values(), strict=True))
    schema = T.StructType([T.StructField(n, _spark_type(columns[n])) for n in names])
    return spark.createDataFrame(spark.sparkContext.parallelize(data, partitions), schema)


def _spark_type(values: list) -> T.DataType:
    sample = next((v for v in values if v is not None), 0.0)
    if isinstance(sample, bool):
        return T.BooleanType()
    if isinstance(sample, int):
        return T.LongType()
    if isinstance(sample, str):
        return T.StringType()
    return T.DoubleType()


def floor_rtol(X: np.ndarray) -> float:
    """What merging partial summaries can cost: 64 units of rounding of the means, relative to the spread."""
    return max(1e-12, 64 * EPS * float(np.max(np.abs(X.mean(axis=0)) / X.std(axis=0))))


@pytest.mark.parametrize(
    ("n", "partitions", "batch_rows"), [(5_000, 1, None), (5_000, 1, 700), (5_000, 3, 1_000), (40, 64, None),
                                        (20_000, 17, 333)]
)
def test_equals_from_samples_on_the_collected_rows(spark, n, partitions, batch_rows):
    """Any partitioning, with empty partitions (40 rows in 64), and any Arrow batch size give from_samples' summary."""
    X = rows(n)
    df = frame(spark, X, partitions)
    s = summarize(df, batch_rows=batch_rows)
    assert spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch") == "1000"  # the session's, restored
    collected = np.array(df.select(*COLUMNS).collect(), dtype=np.float64)
    reference = GaussianSummary.from_samples(collected, names=COLUMNS)
    assert s.names == tuple(COLUMNS) and s.n == n
    assert s.isclose(reference, rtol=floor_rtol(collected))
    assert np.allclose(s.covariance(), np.cov(collected, rowvar=False), rtol=floor_rtol(collected), atol=0)
    if partitions == 1:  # one partition, one block: the same rows in the same order, the same bits
        assert s == reference


def test_columns_weights_and_diagonal(spark):
    """columns= picks and orders; weights and aweights are columns, as np.cov's fweights and aweights."""
    X = rows(3_000, seed=3)
    rng = np.random.default_rng(4)
    f = rng.integers(0, 4, size=3_000)
    a = rng.uniform(0.1, 2.0, size=3_000)
    df = frame(spark, X, 5, {"f": f.tolist(), "a": a.tolist()})
    s = summarize(df, ["z", "x"], weights="f", aweights="a")
    assert s.names == ("z", "x")
    expected = np.cov(X[:, [2, 0]], rowvar=False, fweights=f, aweights=a)
    assert np.allclose(s.covariance(), expected, rtol=floor_rtol(X), atol=0)
    assert s.n == pytest.approx(float((f * a).sum()), rel=1e-14)
    diagonal = summarize(df, diagonal=True)
    assert diagonal.diagonal and diagonal.names == ("x", "y", "z", "f", "a")  # every numeric column
    collected = np.array(df.collect(), dtype=np.float64)
    assert np.allclose(diagonal.variance(), collected.var(axis=0, ddof=1), rtol=floor_rtol(X), atol=0)


def test_nulls_follow_nan_policy(spark):
    """A null is NaN: refused (naming the partition), left out with its row, or propagated."""
    X = rows(2_000, seed=5)
    values = X[:, 1].tolist()
    values[1_234] = None
    df = frame(spark, X, 4, {"w": values})
    with pytest.raises(PythonException, match=r"in partition \d+, rows .* non-finite value"):
        summarize(df, ["x", "w"])
    omitted = summarize(df, ["x", "w"], nan_policy="omit")
    kept = np.delete(np.column_stack([X[:, 0], X[:, 1]]), 1_234, axis=0)
    assert omitted.n == 1_999
    assert omitted.isclose(GaussianSummary.from_samples(kept), rtol=floor_rtol(kept))
    assert np.isnan(summarize(df, ["x", "w"], nan_policy="propagate").mean[1])


def test_empty_frame_and_bad_columns(spark):
    """No rows: the empty summary of the right width and names; a text column is refused by name."""
    df = frame(spark, rows(100), 3, {"label": ["a"] * 100})
    empty = summarize(df.where("x < 0"))
    assert empty == GaussianSummary.empty(3, names=COLUMNS)
    assert summarize(df.where("x < 0"), diagonal=True) == GaussianSummary.empty(3, diagonal=True, names=COLUMNS)
    assert summarize_by(df.where("x < 0"), "label") == GroupedSummary.empty(3, names=COLUMNS)
    with pytest.raises(ValueError, match=r"column 'label' has type string"):
        summarize(df, ["x", "label"])
    with pytest.raises(ValueError, match=r"column 'nope' is not in the DataFrame"):
        summarize(df, ["nope"])
    with pytest.raises(ValueError, match=r"weights column 'label' has type string"):
        summarize(df, ["x"], weights="label")
    with pytest.raises(TypeError, match="takes a Spark DataFrame"):
        summarize(rows(10))
    with pytest.raises(ValueError, match="batch_rows must be a positive integer"):
        summarize(df, ["x"], batch_rows=0)


def test_integer_boolean_and_decimal_columns(spark):
    """Integer, boolean and decimal columns are numbers, as float64."""
    df = spark.createDataFrame(
        [(1, True, 2.5), (4, False, -1.25), (9, True, 0.0)], "i int, b boolean, m double"
    ).selectExpr("i", "b", "CAST(m AS DECIMAL(10, 2)) AS m")
    s = summarize(df)
    expected = np.array([[1, 1, 2.5], [4, 0, -1.25], [9, 1, 0.0]])
    assert s.names == ("i", "b", "m")
    assert np.allclose(s.covariance(), np.cov(expected, rowvar=False), rtol=1e-14, atol=0)


def keyed(n: int, seed: int = 11):
    rng = np.random.default_rng(seed)
    return rows(n, seed=seed), rng.integers(0, 6, size=n), rng.choice(["north", "south", "éast"], size=n)


def test_summarize_by_matches_from_samples_and_gaussum_dask(spark):
    """One and two key columns: the core on the collected rows, and gaussum.dask on the same rows."""
    dask = pytest.importorskip("dask")
    import dask.dataframe as dd
    import pandas as pd

    from gaussum.dask import summarize_by as dask_summarize_by

    X, k, site = keyed(6_000)
    df = frame(spark, X, 7, {"k": k.tolist(), "site": site.tolist()})
    pdf = pd.DataFrame({"x": X[:, 0], "y": X[:, 1], "z": X[:, 2], "k": k, "site": site})
    rtol = floor_rtol(X)
    with dask.config.set(scheduler="synchronous"):
        for by in ("k", ["k", "site"], ["site", "k"]):
            g = summarize_by(df, by, COLUMNS)
            reference = dask_summarize_by(dd.from_pandas(pdf, npartitions=3), by, COLUMNS, compute=True)
            assert g.names == tuple(COLUMNS)
            assert g.isclose(reference, rtol=rtol), by
    by_one = summarize_by(df, "site")
    assert by_one.keys().tolist() == ["north", "south", "éast"]
    assert by_one.isclose(GroupedSummary.from_samples(site, np.column_stack([X, k]), names=[*COLUMNS, "k"]), rtol=rtol)
    pairs = dict(iter(summarize_by(df, ["k", "site"], COLUMNS)))  # keys are tuples (k, site)
    chosen = (k == 2) & (site == "south")
    assert len(pairs) == 18
    assert np.allclose(pairs[2, "south"].covariance(), np.cov(X[chosen], rowvar=False), rtol=rtol, atol=0)


def test_summarize_by_missing_keys(spark):
    """Null keys: one warning on the driver counting them, silence with dropna=True, a NaN group with dropna=False."""
    X, k, _ = keyed(1_000, seed=12)
    keys = [None if i % 97 == 0 else float(v) for i, v in enumerate(k)]
    df = frame(spark, X, 4, {"k": keys})
    missing = np.array([v is None for v in keys])
    with pytest.warns(MissingKeysWarning, match=f"{int(missing.sum())} of 1,000 rows have a missing key"):
        g = summarize_by(df, "k", COLUMNS)
    assert g.n == 1_000 - missing.sum()
    assert summarize_by(df, "k", COLUMNS, dropna=True) == g
    kept = summarize_by(df, "k", COLUMNS, dropna=False)
    assert np.isnan(kept.keys()[-1]) and kept.counts[-1] == missing.sum()
    assert np.allclose(kept.means[-1], X[missing].mean(axis=0), rtol=1e-14, atol=0)
    with pytest.raises(ValueError, match=r"by column 'nope' is not in the DataFrame"):
        summarize_by(df, "nope")


def test_more_accurate_than_sparks_own_statistics(spark):
    """At offset 1e6 with spread 1e-3, against the exact moments: gaussum, df.stat.cov, Summarizer, RowMatrix.

    Every value is 1e6 + K / 2**20 with integer K, exact in float64, so the exact covariance
    follows from integer sums. The measured worst relative errors (per covariance entry, on the
    scale sqrt(var_i var_j)) are printed; the README shows them.
    """
    import pyspark.sql.functions as F
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.stat import Summarizer
    from pyspark.mllib.linalg import Vectors
    from pyspark.mllib.linalg.distributed import RowMatrix

    bits, n = 20, 20_000
    rng = np.random.default_rng(1)
    mixing = np.array([[1.0, 0.5, 0.2], [0.0, 1.0, 0.3], [0.0, 0.0, 1.0]])
    K = np.rint(rng.standard_normal((n, D)) @ mixing * 1e-3 * 2**bits).astype(np.int64)
    X = 1e6 + K / 2**bits
    assert np.array_equal((X - 1e6) * 2**bits, K)  # every value exact
    sums, gram = K.sum(axis=0), K.T @ K
    exact = np.array([
        [float((Fraction(int(gram[i, j])) - Fraction(int(sums[i]) * int(sums[j]), n)) / (n - 1) / 2 ** (2 * bits))
         for j in range(D)] for i in range(D)
    ])
    scale = np.sqrt(np.outer(np.diagonal(exact), np.diagonal(exact)))

    def error(cov: np.ndarray) -> float:
        return float(np.max(np.abs(cov - exact) / scale))

    df = frame(spark, X, 8).cache()
    ours = error(summarize(df).covariance())
    pairwise = np.empty((D, D))
    for i in range(D):
        for j in range(i, D):  # one job per pair
            pairwise[i, j] = pairwise[j, i] = df.stat.cov(COLUMNS[i], COLUMNS[j])
    stat_cov = error(pairwise)
    assembled = VectorAssembler(inputCols=COLUMNS, outputCol="v").transform(df)
    metrics = assembled.select(Summarizer.metrics("mean", "variance").summary(F.col("v")).alias("m")).first()["m"]
    summarizer = float(np.max(np.abs(metrics["variance"].toArray() - np.diagonal(exact)) / np.diagonal(exact)))
    matrix = RowMatrix(df.rdd.map(lambda r: Vectors.dense([r.x, r.y, r.z])))
    row_matrix = error(matrix.computeCovariance().toArray())
    df.unpersist()
    print(f"\nrelative errors at offset 1e6, spread 1e-3: gaussum {ours:.2g}, df.stat.cov {stat_cov:.2g}, "
          f"Summarizer variance {summarizer:.2g}, RowMatrix.computeCovariance {row_matrix:.2g}")
    # The partials carry each mean's rounding error, so merging them costs a few units of rounding,
    # where 8 partials of plain float64 means would cost u * 1e6 / 1e-3 = 1e-7 (measured: 3e-10).
    assert ours <= 64 * EPS
    assert ours * 10 < min(stat_cov, summarizer, row_matrix)


def test_a_task_failed_on_its_first_attempt_is_counted_once(spark, tmp_path):
    """An executor exception mid-partition, on the first attempt only: Spark retries, the result is the same."""
    X = rows(8_000, seed=21)
    df = frame(spark, X, 6)
    clean = summarize(df)
    marker = str(tmp_path / "failed-once")

    def fail_once(batches):
        from pyspark import TaskContext

        context = TaskContext.get()
        for i, batch in enumerate(batches):
            if i == 1 and context.partitionId() == 2 and context.attemptNumber() == 0:
                Path(marker).touch()
                raise RuntimeError("injected failure on the first attempt of partition 2")
            yield batch

    with warnings.catch_warnings():  # pyspark's note on pandas 3, which mapInArrow does not use
        warnings.simplefilter("ignore", FutureWarning)
        flaky = df.mapInArrow(fail_once, df.schema)
    assert summarize(flaky, batch_rows=500) == clean  # batches of 500: the failure comes after one went by
    assert Path(marker).exists(), "the failure was not injected"


def test_many_large_partials_are_merged_by_spark_first(spark, monkeypatch):
    """Past the driver's byte budget the partials go through treeReduce: the same summary, to rounding."""
    import gaussum.spark

    X = rows(3_000, seed=8)
    df = frame(spark, X, 9)
    on_driver = summarize(df)
    monkeypatch.setattr(gaussum.spark, "_DRIVER_BYTES", 0)
    in_tree = summarize(df)
    assert in_tree.n == on_driver.n and in_tree.names == on_driver.names
    assert in_tree.isclose(on_driver, rtol=floor_rtol(X))


def test_readme_block_runs(spark, monkeypatch, tmp_path):
    """The README's Spark block runs as shown (in the test's session) and gives what it says."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in readme.split("```python\n")[1:] if "gaussum.spark" in b.split("```")[0]]
    assert len(blocks) == 1
    code = blocks[0].split("```")[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme_block"}
    exec(compile(code, "README.md (Spark block)", "exec"), namespace)
    s, g = namespace["s"], namespace["g"]
    assert s.names == ("x", "y") and s.n == 100_000
    assert len(g) == 3 and g.n == 100_000


def test_core_does_not_import_pyspark_and_missing_pyspark_is_explained():
    """import gaussum and gaussum.spark need no pyspark; calling it without pyspark names the extra."""
    code = (
        "import sys; sys.modules['pyspark'] = None\n"
        "import gaussum, gaussum.spark\n"
        "assert 'pyspark' not in [m.split('.')[0] for m in sys.modules if sys.modules[m] is not None]\n"
        "try:\n    gaussum.spark.summarize(None)\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'gaussum[spark]'" in out
