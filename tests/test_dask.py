"""Tests for gaussum.dask on a real multi-process cluster, against references that share no code
with gaussum: exact integer sums, ``np.cov`` on the raw rows, a per-key ``np.cov`` loop."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

from gaussum import GaussianSummary, GroupedSummary
from gaussum.dask import summarize, summarize_by
from gaussum.errors import MissingKeysWarning, NonFiniteError

ROOT = Path(__file__).resolve().parents[1]
EPS = np.finfo(np.float64).eps

N_ROWS, D = 200_000, 8
OFFSET = 1e6
# The data are OFFSET + K / 2**SCALE_BITS with integer K: every value is exact in float64, and the
# exact moments follow from integer sums of K (M2 does not depend on the offset).
SCALE_BITS = 10

CHUNKINGS = {
    "ragged": ((50_000, 37_001, 1, 0, 112_998), (D,)),
    "single row chunk": ((N_ROWS,), (D,)),
    "column chunks": ((40_000,) * 5, (3, 5)),
    "ragged columns": ((99_999, 100_001), (1, 2, 5)),
}


@pytest.fixture(scope="module")
def client():
    """A two-process local cluster, one thread per worker, as a real deployment would run."""
    # The tests ship their 12.8 MB of data inside the graph on purpose (the references must see
    # the same bytes); distributed would warn about that "large graph" on every compute.
    with dask.config.set({"distributed.admin.large-graph-warning-threshold": "64MiB"}), LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=50
    ) as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def data():
    """Correlated rows with unequal spreads, offset 1e6 (mean / std ~ 1e6), and their integer parts."""
    rng = np.random.default_rng(20240605)
    mixing = np.eye(D) + 0.4 * rng.standard_normal((D, D))
    Z = rng.standard_normal((N_ROWS, D)) @ mixing * rng.uniform(0.5, 3.0, size=D)
    K = np.rint(Z * 2**SCALE_BITS).astype(np.int64)
    X = OFFSET + K / 2**SCALE_BITS
    assert np.array_equal((X - OFFSET) * 2**SCALE_BITS, K)  # every value exact
    X.setflags(write=False)
    return X, K


def exact_moments(K: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Exact (n, mean, M2) of OFFSET + K / 2**SCALE_BITS from integer sums, correctly rounded."""
    n = K.shape[0]
    if n == 0:
        return 0, np.zeros(D), np.zeros((D, D))
    sums = K.sum(axis=0)
    gram = K.T @ K  # |K| < 2**16 and N < 2**18: every entry is an exact int64 below 2**50
    unit = Fraction(1, 2**SCALE_BITS)
    mean = [Fraction(OFFSET) + Fraction(int(t), n) * unit for t in sums]
    M2 = [[(int(gram[i, j]) - Fraction(int(sums[i]) * int(sums[j]), n)) * unit**2 for j in range(D)] for i in range(D)]
    return n, np.array([float(m) for m in mean]), np.array([[float(v) for v in row] for row in M2])


def floor_summary(K: np.ndarray, row_chunks: tuple[int, ...], split_every: int) -> GaussianSummary:
    """The float64 floor for a chunked reduction (the core issue's limit): each chunk's exact
    summary, correctly rounded, merged by the same rule in the same tree as summarize builds."""
    bounds = np.cumsum((0, *row_chunks))
    level = [GaussianSummary(*exact_moments(K[a:b])) for a, b in itertools.pairwise(bounds)]
    while len(level) > 1:
        level = [GaussianSummary.merge_all(level[i:i + split_every]) for i in range(0, len(level), split_every)]
    return level[0]


def errors(s: GaussianSummary, exact: tuple) -> tuple[np.ndarray, float]:
    """Per-entry |mean - exact|, and ||M2 - exact||_F / ||exact||_F (M2's diagonal if s is diagonal)."""
    _, mean, M2 = exact
    if s.M2.ndim == 1:
        M2 = np.diagonal(M2)
    return np.abs(s.mean - mean), float(np.linalg.norm(s.M2 - M2) / np.linalg.norm(M2))


def assert_near_exact(
    s: GaussianSummary, K: np.ndarray, row_chunks: tuple[int, ...], split_every: int = 8
) -> None:
    """The core issue's accuracy contract for a sharded reduction: n exact; mean and M2 within
    twice the error of the float64 floor (correctly rounded chunk summaries merged in the same
    tree), plus the rounding of one from_samples call, which grows like eps * sqrt(rows) (a
    random walk over the chunk's rows). An algebra slip (a chunk lost or counted twice, a wrong
    merge weight) or np.cov's eps * mean / std ~ 1e-10 would be far outside."""
    exact = exact_moments(K)
    assert s.n == exact[0]
    floor = floor_summary(K, row_chunks, split_every)
    if s.diagonal:
        floor = floor.to_diagonal()
    ours_mean, ours_M2 = errors(s, exact)
    floor_mean, floor_M2 = errors(floor, exact)
    assert np.all(ours_mean <= 2 * floor_mean + np.spacing(np.abs(exact[1])))
    assert ours_M2 <= 2 * floor_M2 + EPS * np.sqrt(max(row_chunks))


def assert_matches_np_cov(s: GaussianSummary, X: np.ndarray) -> None:
    """Against np.cov, whose own error at this offset is about eps * mean / std per entry."""
    cov = np.cov(X, rowvar=False)
    std = np.sqrt(np.diagonal(cov))
    tolerance = 64 * EPS * np.max(np.abs(X.mean(axis=0)) / std) * np.outer(std, std)
    assert np.all(np.abs(s.covariance() - cov) <= tolerance)
    assert np.allclose(s.mean, X.mean(axis=0), rtol=64 * EPS, atol=0)


@pytest.mark.parametrize("chunks", list(CHUNKINGS.values()), ids=list(CHUNKINGS))
def test_cluster_matches_exact_moments_and_np_cov(client, data, chunks):
    """Every chunking, computed on the two-process cluster, is as close to the exact moments as a
    float64 reduction of those chunks can be, and agrees with np.cov and from_samples."""
    X, K = data
    s = summarize(da.from_array(X, chunks=chunks)).compute()
    assert isinstance(s, GaussianSummary)
    assert_near_exact(s, K, chunks[0])
    assert_matches_np_cov(s, X)
    assert s.isclose(GaussianSummary.from_samples(X), rtol=1e-12)


def test_single_row_chunk_equals_local_summary_exactly(client, data):
    """One row chunk is the core's own computation, so the cluster returns the identical value."""
    X, _ = data
    assert summarize(da.from_array(X, chunks=(N_ROWS, D)), compute=True) == GaussianSummary.from_samples(X)


@pytest.mark.parametrize("chunks", [CHUNKINGS["ragged"], CHUNKINGS["column chunks"]], ids=["ragged", "column chunks"])
def test_synchronous_scheduler_matches_exact_moments(data, chunks):
    """The same graph run in this process by the synchronous scheduler meets the same bound."""
    X, K = data
    lazy = summarize(da.from_array(X, chunks=chunks))
    with dask.config.set(scheduler="synchronous"):
        s = lazy.compute()
    assert_near_exact(s, K, chunks[0])


def test_result_does_not_depend_on_scheduler(client, data):
    """The tree has a fixed shape and fixed keys, so the cluster and synchronous results are identical."""
    X, _ = data
    lazy = summarize(da.from_array(X, chunks=(7_001, 4)), split_every=3)
    with dask.config.set(scheduler="synchronous"):
        local = lazy.compute()
    assert client.compute(lazy).result() == local


@pytest.mark.parametrize("split_every", [2, 5, 64])
def test_split_every_changes_only_rounding(data, split_every):
    """A deep (fan-in 2) or flat tree counts every row once and meets the floor of its own tree."""
    X, K = data
    x = da.from_array(X, chunks=(3_000, D))
    with dask.config.set(scheduler="synchronous"):
        s = summarize(x, split_every=split_every, compute=True)
    assert_near_exact(s, K, x.chunks[0], split_every)


def test_diagonal_is_the_tree_of_diagonal_chunk_summaries(client, data):
    """diagonal=True reaches every chunk: the result is the same tree over diagonal chunk summaries."""
    X, _ = data
    x = da.from_array(X, chunks=((60_000, 60_000, 80_000), (5, 3)))
    s = summarize(x, diagonal=True, split_every=2, compute=True)
    spans = ((0, 60_000), (60_000, 60_000), (120_000, 80_000))
    chunks = [GaussianSummary.from_samples(X[a:a + m], diagonal=True) for a, m in spans]
    assert s.diagonal and s.M2.shape == (D,)
    assert s == GaussianSummary.merge_all([GaussianSummary.merge_all(chunks[:2]), chunks[2]])


def test_diagonal_matches_exact_variances(client, data):
    """diagonal=True keeps the per-variable sums of squares to the same accuracy contract as full M2."""
    X, K = data
    s = summarize(da.from_array(X, chunks=((120_000, 80_000), (5, 3))), diagonal=True, compute=True)
    assert_near_exact(s, K, (120_000, 80_000))


def test_one_dimensional_array_is_scalar_data(client, data):
    """A 1-D array gives a scalar summary whose variance matches np.var on the raw values."""
    X, _ = data
    s = summarize(da.from_array(X[:, 2], chunks=33_333), compute=True)
    assert s.mean.shape == () and s.n == N_ROWS
    assert abs(float(s.variance()) - np.var(X[:, 2], ddof=1)) <= 64 * EPS * OFFSET * np.std(X[:, 2])


def _frozen(block: np.ndarray) -> np.ndarray:
    block = block.copy()
    block.setflags(write=False)
    return block


def test_read_only_blocks(client, data):
    """Blocks handed over read-only (as Ray and Dask's shared memory do) are summarised as any other."""
    X, _ = data
    x = da.from_array(X, chunks=(30_000, (4, 4)))
    assert summarize(x.map_blocks(_frozen), compute=True) == summarize(x, compute=True)


def test_summaries_survive_the_trip_from_a_worker_process(client, data):
    """A summary computed in a worker process comes back equal to the local one, still read-only."""
    X, _ = data
    local = GaussianSummary.from_samples(X[:5_000])
    remote = client.submit(GaussianSummary.from_samples, X[:5_000], pure=False).result()
    assert remote == local
    assert not remote.mean.flags.writeable and not remote.M2.flags.writeable
    doubled = client.submit(lambda s: s + s, local, pure=False).result()  # there and back
    assert doubled == local + local and not doubled.M2.flags.writeable
    pid_here = os.getpid()
    assert pid_here not in client.run(os.getpid).values()  # the workers are other processes


def test_dataframe_numeric_columns(client, data):
    """A DataFrame's numeric and boolean columns are used, in order; other columns are left out."""
    X, _ = data
    frame = pd.DataFrame(X[:20_000, :3], columns=["a", "b", "c"])
    frame["label"] = "x"
    frame["flag"] = np.arange(20_000) % 3 == 0
    s = summarize(dd.from_pandas(frame, npartitions=5), compute=True)
    rows = np.column_stack([X[:20_000, :3], frame["flag"].to_numpy(float)])
    assert_matches_np_cov(s, rows)


def test_dataframe_columns_and_missing_values(client, data):
    """columns= picks and orders columns; pandas' NA is a missing value under nan_policy."""
    X, _ = data
    frame = pd.DataFrame({"a": X[:10_000, 0], "b": pd.array(np.arange(10_000), dtype="Int64"), "c": X[:10_000, 1]})
    frame.loc[[3, 4_444], "b"] = pd.NA
    ddf = dd.from_pandas(frame, npartitions=4)
    with pytest.raises(ValueError, match="non-finite value"):
        summarize(ddf, columns=["c", "b"], compute=True)
    s = summarize(ddf, columns=["c", "b"], nan_policy="omit", compute=True)
    kept = frame.dropna()[["c", "b"]].to_numpy(dtype=float)
    assert s.n == 9_998
    assert_matches_np_cov(s, kept)
    series = summarize(ddf["a"], compute=True)
    assert series.mean.shape == () and series.n == 10_000


def test_non_finite_value_names_the_chunk_row(data):
    """nan_policy='raise' fails at compute time, naming the row within its chunk (the error keeps its type)."""
    X, _ = data
    Y = np.array(X[:1_000])
    Y[517, 1] = np.inf
    lazy = summarize(da.from_array(Y, chunks=(100, D)))
    with dask.config.set(scheduler="synchronous"), pytest.raises(
        NonFiniteError, match=r"in a chunk of 100 rows: .*row 17"
    ):
        lazy.compute()
    with dask.config.set(scheduler="synchronous"):
        assert summarize(da.from_array(Y, chunks=(100, D)), nan_policy="omit", compute=True).n == 999
    Z = np.array(Y[:400, :2])
    Z[317, 0] = np.nan  # row 17 of the fourth partition
    frame = dd.from_pandas(pd.DataFrame(Z, columns=["a", "b"]), npartitions=4)
    with dask.config.set(scheduler="synchronous"), pytest.raises(NonFiniteError, match=r"chunk of 100 rows: .*row 17"):
        summarize(frame, compute=True)


def test_empty_array_gives_empty_summary():
    """An array with no rows gives the empty summary of its width."""
    with dask.config.set(scheduler="synchronous"):
        assert summarize(da.zeros((0, 3), chunks=(1, 3)), compute=True) == GaussianSummary.empty(3)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: summarize(np.zeros((3, 2))), TypeError, "dask array, DataFrame or Series, got ndarray"),
        (lambda: summarize(da.zeros((3, 2, 2))), ValueError, r"shape \(N,\) or \(N, d\)"),
        (lambda: summarize(da.from_array(np.array(["a", "b"]))), ValueError, "real numeric array"),
        (lambda: summarize(da.zeros((3, 0))), ValueError, "at least one column"),
        (lambda: summarize(da.zeros((3, 2)), split_every=1), ValueError, "split_every must be an integer >= 2"),
        (lambda: summarize(da.zeros((3, 2)), nan_policy="drop"), ValueError, "nan_policy must be one of"),
        (lambda: summarize(da.zeros((3, 2)), columns=["a"]), ValueError, "columns= selects DataFrame columns"),
        (lambda: summarize(dd.from_pandas(pd.DataFrame({"a": [1.0]}), npartitions=1), columns=["z"]),
         ValueError, r"columns \['z'\] are not in the DataFrame"),
        (lambda: summarize(dd.from_pandas(pd.DataFrame({"s": ["x"]}), npartitions=1)),
         ValueError, "no numeric columns"),
        (lambda: summarize_by(da.zeros((3, 2)), "k"), TypeError, "takes a dask DataFrame"),
        (lambda: summarize_by(dd.from_pandas(pd.DataFrame({"a": [1.0]}), npartitions=1), "k"),
         ValueError, "by must name a column"),
        (lambda: summarize_by(dd.from_pandas(pd.DataFrame({"a": [1.0], "k": [1]}), npartitions=1), "k", dropna="yes"),
         ValueError, "dropna must be True, False or None"),
    ],
)
def test_bad_input_is_refused_when_the_graph_is_built(call, error, message):
    """Wrong types, shapes and options raise before anything is computed, naming the argument."""
    with pytest.raises(error, match=message):
        call()


def test_summarize_by_matches_per_key_np_cov(client):
    """50 keys of very unequal sizes, spread over partitions, match a per-key np.cov loop."""
    rng = np.random.default_rng(7)
    sizes = np.maximum(2, (4_000 / np.arange(1, 51) ** 1.5).astype(int))  # 4,000 rows down to 2
    keys = np.repeat([f"k{i:02d}" for i in range(50)], sizes)
    rng.shuffle(keys)
    values = OFFSET + rng.standard_normal((keys.size, 3)) * [1.0, 0.01, 5.0]
    frame = pd.DataFrame({"x": values[:, 0], "key": keys, "y": values[:, 1], "z": values[:, 2], "note": "-"})
    g = summarize_by(dd.from_pandas(frame, npartitions=9), "key", split_every=3, compute=True)
    assert isinstance(g, GroupedSummary) and len(g) == 50
    assert g.n == keys.size
    for key, s in g:
        rows = values[keys == key]
        assert s.n == rows.shape[0]
        cov = np.cov(rows, rowvar=False)
        std = np.sqrt(np.diagonal(cov))
        assert np.all(np.abs(s.covariance() - cov) <= 64 * EPS * (OFFSET / std.min()) * np.outer(std, std))
        assert np.allclose(s.mean, rows.mean(axis=0), rtol=16 * EPS, atol=0)


def test_summarize_by_grouped_values_survive_the_trip(client):
    """The grouped summary built by workers is read-only and equal to the one built here."""
    frame = pd.DataFrame({"k": np.arange(1_000) % 7, "v": np.linspace(0.0, 1.0, 1_000)})
    remote = summarize_by(dd.from_pandas(frame, npartitions=1), "k", compute=True)
    assert remote == GroupedSummary.from_samples(frame["k"].to_numpy(), frame[["v"]])  # names from the frame
    assert not remote.means.flags.writeable and not remote.M2.flags.writeable


def test_summarize_by_several_key_columns_matches_pandas(client):
    """by=[...]: tuple keys, in tuple order, each the per-key np.cov of pandas' groupby of those columns."""
    rng = np.random.default_rng(17)
    n = 6_000
    frame = pd.DataFrame({
        "site": rng.choice(["b", "a", "c"], n), "day": rng.integers(0, 4, n),
        "x": OFFSET + rng.standard_normal(n), "y": rng.standard_normal(n) * 3.0,
    })
    g = summarize_by(dd.from_pandas(frame, npartitions=5), ["site", "day"], split_every=2, compute=True)
    expected = frame.groupby(["site", "day"])[["x", "y"]]
    assert g.keys().tolist() == list(expected.groups) and g.names == ("x", "y")
    counts = expected.size()
    covariances = expected.cov()
    for key, s in g:
        assert s.n == counts[key]
        cov = covariances.loc[key].to_numpy()
        std = np.sqrt(np.diagonal(cov))
        assert np.all(np.abs(s.covariance() - cov) <= 64 * EPS * (OFFSET / std.min()) * np.outer(std, std)), key
    swapped = summarize_by(dd.from_pandas(frame, npartitions=3), ["day", "site"], compute=True)
    assert dict(iter(swapped))[2, "a"].isclose(dict(iter(g))["a", 2], rtol=1e-9)
    # A tuple key is looked up as one key, each part by kind as a single key is.
    assert ("a", 2) in g and g["a", 2] == dict(iter(g))["a", 2] and dict(g).keys() == dict(iter(g)).keys()
    assert g.get(("a", 9)) is None and ("a", 2.0) not in g and (2, "a") not in g and "a" not in g
    with pytest.raises(KeyError):
        g["a", 9]


def test_summarize_by_missing_keys_as_pandas_dropna(client):
    """Missing keys: counted in one warning by default, dropped silently with True, a NaN group with False."""
    rng = np.random.default_rng(18)
    keys = rng.integers(0, 3, 2_000).astype(float)
    keys[::37] = np.nan
    frame = pd.DataFrame({"k": keys, "x": rng.standard_normal(2_000), "label": pd.array(
        np.where(np.isnan(keys), None, keys.astype(str)), dtype="string")})
    ddf = dd.from_pandas(frame, npartitions=4)
    missing = int(np.isnan(keys).sum())
    with pytest.warns(MissingKeysWarning, match=f"{missing} of 2,000 rows have a missing key"):
        dropped = summarize_by(ddf, "k", ["x"], compute=True)
    assert dropped.n == 2_000 - missing
    assert summarize_by(ddf, "k", ["x"], dropna=True, compute=True) == dropped
    kept = summarize_by(ddf, "k", ["x"], dropna=False, compute=True)
    reference = frame.groupby("k", dropna=False)["x"]
    assert np.array_equal(kept.keys(), reference.mean().index.to_numpy(), equal_nan=True)
    assert np.allclose(kept.variances()[:, 0], reference.var().to_numpy(), rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="dropna=False keeps missing keys"):
        summarize_by(ddf, ["k", "label"], ["x"], dropna=False, compute=True)
    both = summarize_by(ddf, ["k", "label"], ["x"], dropna=True, compute=True)
    assert both.n == 2_000 - missing


def test_summarize_by_error_names_the_partition(client):
    """Under nan_policy='raise' a NaN value is reported with its partition and its row there."""
    values = np.arange(400.0)
    values[250] = np.nan
    frame = pd.DataFrame({"k": np.arange(400) % 3, "x": values})
    ddf = dd.from_pandas(frame, npartitions=4)  # 100 rows each: row 250 is row 50 of partition 2
    with pytest.raises(ValueError, match=r"in partition 2 of 4 \(100 rows\): .*row 50"):
        summarize_by(ddf, "k", compute=True)


def test_summarize_by_weights_columns(client):
    """weights= and aweights= name columns, left out of the summarised ones; np.cov's meaning per key."""
    rng = np.random.default_rng(19)
    frame = pd.DataFrame({"k": rng.integers(0, 2, 500), "x": rng.standard_normal(500), "y": rng.standard_normal(500),
                          "f": rng.integers(1, 4, 500), "a": rng.uniform(0.5, 2.0, 500)})
    g = summarize_by(dd.from_pandas(frame, npartitions=3), "k", weights="f", aweights="a", compute=True)
    assert g.names == ("x", "y")
    for key, s in g:
        part = frame[frame.k == key]
        X, f, a = part[["x", "y"]].to_numpy(), part.f.to_numpy(), part.a.to_numpy()
        expected = np.cov(X, rowvar=False, fweights=f, aweights=a)
        assert np.allclose(s.covariance(), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("script", ["engine_free.py", "dask_summarize.py"])
def test_examples_run(script):
    """The documented examples run to completion with warnings as errors (they check themselves)."""
    done = subprocess.run(
        [sys.executable, "-W", "error", str(ROOT / "examples" / script)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "n=" in done.stdout


def test_core_does_not_import_dask_and_missing_dask_is_explained():
    """`import gaussum` loads no dask; without dask, gaussum.dask says which extra to install."""
    code = (
        "import sys, gaussum\n"
        "assert not any(m == 'dask' or m.startswith(('dask.', 'gaussum.dask')) for m in sys.modules), 'dask imported'\n"
        "sys.modules['dask'] = None\n"  # makes `import dask...` raise ImportError
        "try:\n    import gaussum.dask\nexcept ImportError as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "pip install 'gaussum[dask]'" in done.stdout


def _slow(block: np.ndarray) -> np.ndarray:
    time.sleep(0.04)
    return block


def _chunk_results_on(dask_scheduler, address: str) -> int:
    """How many per-chunk summaries the worker at `address` holds (run on the scheduler)."""
    ws = dask_scheduler.workers.get(address)
    return 0 if ws is None else sum("gaussum-summarize-chunk" in str(ts.key) for ts in ws.has_what)


# Killing a worker makes distributed log (and, on some versions, warn) about the lost connection
# and the rescheduled tasks in this process; that noise is the event under test, not a failure.
@pytest.mark.filterwarnings("ignore::RuntimeWarning:distributed")
@pytest.mark.filterwarnings("ignore::UserWarning:distributed")
def test_worker_killed_mid_computation_gives_the_same_summary(client, data):
    """A worker killed while the graph runs: Dask recomputes its chunks, none lost or counted twice."""
    X, _ = data
    x = da.from_array(X, chunks=(2_500, D))
    with dask.config.set(scheduler="synchronous"):
        expected = summarize(x, compute=True)

    pids = client.run(os.getpid)
    future = client.compute(summarize(x.map_blocks(_slow)))  # 80 chunks, about 1.6 s per worker
    # The victim is the first worker seen holding a finished chunk's summary, which its death
    # loses. (Waiting for two on a worker picked beforehand failed now and then: merges of 8
    # consume the summaries as they come, and a worker was seen to hold at most 2 at once, or 1.)
    deadline = time.monotonic() + 30
    victim = None
    while victim is None:
        assert time.monotonic() < deadline, "no worker finished a chunk"
        time.sleep(0.01)
        victim = next((w for w in pids if client.run_on_scheduler(_chunk_results_on, address=w) >= 1), None)
    assert not future.done()  # the kill lands mid-graph, with finished work on the victim
    pid = pids[victim]
    os.kill(pid, signal.SIGKILL)

    s = future.result(timeout=60)
    assert s.n == N_ROWS
    assert s == expected  # the same tree over the same chunks: the identical value
    assert pid not in client.run(os.getpid).values()  # the victim really died (its nanny restarted it)


def test_text_and_timedelta_columns_are_refused_not_parsed(client):
    """A string Series, named text columns and timedelta columns raise ValueError naming them."""
    import pandas as pd

    text = dd.from_pandas(pd.Series(["1.5", "2.5", "10"]), npartitions=2)
    with pytest.raises(ValueError, match="numeric or boolean"):
        summarize(text, compute=True)
    frame = dd.from_pandas(pd.DataFrame({"v": ["1", "2", "3"], "w": [1.0, 2.0, 4.0]}), npartitions=1)
    with pytest.raises(ValueError, match="'v'"):
        summarize(frame, columns=["v"], compute=True)
    with pytest.raises(ValueError, match="'v'"):
        summarize_by(frame.assign(k=1), "k", columns=["v"], compute=True)
    times = pd.DataFrame({"t": pd.to_timedelta([1, 2, 3], unit="s"), "w": [1.0, 2.0, 4.0]})
    s = summarize(dd.from_pandas(times, npartitions=1), compute=True)
    assert s.d == 1 and float(s.mean[0]) == pytest.approx(7 / 3)
    with pytest.raises(ValueError, match="'t'"):
        summarize(dd.from_pandas(times, npartitions=1), columns=["t"], compute=True)
