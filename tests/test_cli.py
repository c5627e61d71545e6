"""The ``gaussum`` command line: sub-commands, the state file and its ledger, errors, crash safety.

References share no code with gaussum: ``np.loadtxt`` reads the files back and ``np.cov`` /
``scipy.stats.ttest_ind`` work on the raw rows.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gaussum import GaussianSummary, cli
from gaussum.cli import reading
from gaussum.cli.state import read_state
from gaussum.cli.writing import write_atomic

ROOT = Path(__file__).resolve().parents[1]
IRIS = ROOT / "data" / "iris.csv"
IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


# -- helpers ------------------------------------------------------------------------------------


def run(capsys, *argv):
    """Run the command in-process; (exit status, stdout, stderr)."""
    status = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def write_csv(path, X, header=None, keys=None):
    """A CSV with a header, values written by repr (exact)."""
    d = X.shape[1]
    header = header or [f"c{j}" for j in range(d)]
    lines = [",".join(header + (["key"] if keys is not None else []))]
    for i, row in enumerate(X.tolist()):
        fields = [repr(v) for v in row] + ([str(keys[i])] if keys is not None else [])
        lines.append(",".join(fields))
    Path(path).write_text("\n".join(lines) + "\n")
    return path


def state_json(path):
    return json.loads(Path(path).read_text())


def cov_of(state_summary):
    """Covariance from a state file's summary dict, without gaussum's accessors."""
    n, M2 = state_summary["n"], np.array(state_summary["M2"])
    return M2 / (n - 1)


def iris_rows():
    values = np.loadtxt(IRIS, delimiter=",", skiprows=1, usecols=range(4))
    species = np.loadtxt(IRIS, delimiter=",", skiprows=1, usecols=4, dtype=str)
    return values, species


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


# -- summarize ----------------------------------------------------------------------------------


def test_summarize_csv_matches_numpy_on_the_raw_rows(tmp_path, capsys, rng):
    """A CSV summarised in small chunks gives np.mean and np.cov of the rows read back by loadtxt."""
    X = rng.normal(size=(1000, 3)) * [1.0, 1e-3, 1e3] + [1e3, 0.0, -5.0]
    data = write_csv(tmp_path / "a.csv", X)
    status, _, err = run(capsys, "summarize", data, "-o", tmp_path / "s.json", "--chunk-rows", 37)
    assert status == 0, err
    state = state_json(tmp_path / "s.json")
    rows = np.loadtxt(data, delimiter=",", skiprows=1)
    assert state["columns"] == ["c0", "c1", "c2"]
    assert state["summary"]["n"] == 1000
    np.testing.assert_allclose(state["summary"]["mean"], rows.mean(axis=0), rtol=1e-14)
    # Subtracting 1e3 from values within a factor 2 of it is exact (Sterbenz), and spares np.cov
    # the rounding of centring around a large mean, so the reference itself is accurate.
    reference = np.cov(rows - [1e3, 0.0, 0.0], rowvar=False)
    scale = np.sqrt(np.outer(np.diag(reference), np.diag(reference)))
    assert (np.abs(cov_of(state["summary"]) - reference) <= 1e-12 * scale).all()
    assert state["sources"] == [
        {
            "path": str(data),
            "size": data.stat().st_size,
            "sha256": __import__("hashlib").sha256(data.read_bytes()).hexdigest(),
            "rows_read": 1000,
            "rows_dropped": 0,
        }
    ]


def test_summarize_by_species_matches_numpy_per_group(tmp_path, capsys):
    """--by species on the bundled iris data gives np.cov of each species' rows."""
    status, _, err = run(capsys, "summarize", IRIS, "--by", "species", "-o", tmp_path / "iris.json")
    assert status == 0, err
    state = read_state(str(tmp_path / "iris.json"))
    values, species = iris_rows()
    assert state.by == "species" and list(state.columns) == IRIS_COLUMNS
    assert [str(k) for k in state.summary.keys()] == ["setosa", "versicolor", "virginica"]
    for key, s in state.summary:
        rows = values[species == key]
        assert s.n == 50
        np.testing.assert_allclose(s.mean, rows.mean(axis=0), rtol=1e-14)
        np.testing.assert_allclose(s.covariance(), np.cov(rows, rowvar=False), rtol=1e-12, atol=1e-15)


def test_summarize_columns_selects_and_orders(tmp_path, capsys):
    """--columns keeps only the named columns, in the order given."""
    status, _, _ = run(capsys, "summarize", IRIS, "--columns", "petal_width,sepal_length", "-o", tmp_path / "s.json")
    assert status == 0
    state = read_state(str(tmp_path / "s.json"))
    values, _ = iris_rows()
    rows = values[:, [3, 0]]
    assert list(state.columns) == ["petal_width", "sepal_length"]
    np.testing.assert_allclose(state.summary.covariance(), np.cov(rows, rowvar=False), rtol=1e-12)


def test_summarize_diagonal_keeps_variances_only(tmp_path, capsys):
    """--diagonal stores one sum of squares per column, equal to np.var(ddof=1) * (n - 1)."""
    status, _, _ = run(
        capsys, "summarize", IRIS, "--columns", ",".join(IRIS_COLUMNS), "--diagonal", "-o", tmp_path / "s.json"
    )
    assert status == 0
    state = read_state(str(tmp_path / "s.json"))
    values, _ = iris_rows()
    assert state.diagonal and state.summary.M2.shape == (4,)
    np.testing.assert_allclose(state.summary.variance(), values.var(axis=0, ddof=1), rtol=1e-12)


def test_summarize_npy_is_read_in_blocks(tmp_path, capsys, rng):
    """A .npy file, memory-mapped and read 100 rows at a time, gives np.cov; columns are x0, x1, ..."""
    X = rng.standard_normal((1234, 4)).astype(np.float32)
    np.save(tmp_path / "a.npy", X)
    status, _, _ = run(capsys, "summarize", tmp_path / "a.npy", "--chunk-rows", 100, "-o", tmp_path / "s.json")
    assert status == 0
    state = read_state(str(tmp_path / "s.json"))
    assert list(state.columns) == ["x0", "x1", "x2", "x3"]
    reference = np.cov(X.astype(np.float64), rowvar=False)
    np.testing.assert_allclose(state.summary.covariance(), reference, rtol=1e-12, atol=1e-14)


def test_summarize_parquet_with_groups(tmp_path, capsys, rng):
    """A Parquet file with a key column, read in record batches, gives np.cov per key."""
    import pyarrow as pa  # the dask extra, which CI installs: a broken install must fail, not skip
    import pyarrow.parquet as pq

    X = rng.normal(size=(500, 2))
    keys = rng.integers(0, 3, size=500)
    table = pa.table({"a": X[:, 0], "b": X[:, 1], "k": keys})
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=128)
    status, _, err = run(
        capsys, "summarize", tmp_path / "a.parquet", "--by", "k", "--chunk-rows", 50, "-o", tmp_path / "s.json"
    )
    assert status == 0, err
    state = read_state(str(tmp_path / "s.json"))
    for key, s in state.summary:
        rows = X[keys == int(key)]
        np.testing.assert_allclose(s.covariance(), np.cov(rows, rowvar=False), rtol=1e-12)
    assert state.n == 500


def test_csv_keys_are_stripped_like_headers_and_numbers(tmp_path, capsys):
    """--by keys lose surrounding spaces, so 'x', ' x' and ' y ' make two groups, x and y."""
    data = tmp_path / "a.csv"
    data.write_text("a,b,g\n1,2,x\n3, 4, x\n5,6 , y \n")
    status, _, err = run(capsys, "summarize", data, "--by", "g", "-o", tmp_path / "s.json")
    assert status == 0, err
    state = read_state(str(tmp_path / "s.json"))
    assert [str(k) for k in state.summary.keys()] == ["x", "y"]
    assert state.summary["x"].n == 2 and state.summary["y"].n == 1
    np.testing.assert_array_equal(state.summary["x"].mean, [2.0, 3.0])


@pytest.mark.parametrize("key_type", ["int64", "float64", "int8"])
def test_csv_and_parquet_with_the_same_keys_merge_into_the_same_groups(tmp_path, capsys, rng, key_type):
    """Keys 1, 2, 3 written as CSV text and as a Parquet number column are the same groups, in both
    update and merge, and each group is np.cov of its rows from both files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    X1, X2 = rng.normal(size=(60, 2)), rng.normal(size=(50, 2)) + 2
    k1, k2 = rng.integers(1, 4, size=60), rng.integers(1, 4, size=50)
    csv_file = write_csv(tmp_path / "a.csv", X1, keys=k1)
    table = pa.table({"c0": X2[:, 0], "c1": X2[:, 1], "key": pa.array(k2.astype(key_type))})
    pq.write_table(table, tmp_path / "b.parquet")
    assert run(capsys, "summarize", csv_file, "--by", "key", "-o", tmp_path / "a.json")[0] == 0
    assert run(capsys, "summarize", tmp_path / "b.parquet", "--by", "key", "-o", tmp_path / "b.json")[0] == 0
    assert run(capsys, "merge", tmp_path / "a.json", tmp_path / "b.json", "-o", tmp_path / "m.json")[0] == 0
    assert run(capsys, "update", tmp_path / "a.json", tmp_path / "b.parquet")[0] == 0
    X, k = np.vstack([X1, X2]), np.concatenate([k1, k2])
    for name in ("m.json", "a.json"):
        state = read_state(str(tmp_path / name))
        assert [str(key) for key in state.summary.keys()] == ["1", "2", "3"]
        for key, s in state.summary:
            rows = X[k == int(key)]
            assert s.n == len(rows)
            np.testing.assert_allclose(s.covariance(), np.cov(rows, rowvar=False), rtol=1e-12)


def test_parquet_keys_are_formatted_canonically(tmp_path, capsys):
    """Parquet keys 2.0, -0.0, 0.5, a null and ' t ' become '2', '0', '0.5', '' and 't', as CSV text would."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "f": pa.array([2.0, -0.0, 0.5, None, 2.0, 0.0]),
            "s": pa.array([" t ", "t", "u", None, "u ", ""]),
        }
    )
    pq.write_table(table, tmp_path / "a.parquet")
    for by, expected in (
        ("f", {"": [4.0], "0": [2.0, 6.0], "0.5": [3.0], "2": [1.0, 5.0]}),
        ("s", {"": [4.0, 6.0], "t": [1.0, 2.0], "u": [3.0, 5.0]}),
    ):
        status, _, err = run(
            capsys,
            "summarize",
            tmp_path / "a.parquet",
            "--by",
            by,
            "--columns",
            "x",
            "-o",
            tmp_path / "s.json",
            "--force",
        )
        assert status == 0, err
        state = read_state(str(tmp_path / "s.json"))
        assert {str(key): s.n for key, s in state.summary} == {key: len(v) for key, v in expected.items()}
        for key, rows in expected.items():
            np.testing.assert_array_equal(state.summary[key].mean, [np.mean(rows)])


def test_quotes_line_endings_and_text_elsewhere_give_the_same_bits(tmp_path, capsys, rng):
    """A CSV gives the same summary bits with CRLF line ends, with a quoted field half-way (read by the
    csv module from there on) or with a text column not asked for, and it is np.cov of the rows."""
    X = rng.normal(size=(300, 3)) * [1.0, 10.0, 0.1] + 5
    plain = write_csv(tmp_path / "plain.csv", X)
    lines = plain.read_text().splitlines()
    (tmp_path / "crlf.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    quoted = lines.copy()
    quoted[200] = ",".join(f'"{v}"' for v in quoted[200].split(","))
    (tmp_path / "quoted.csv").write_text("\n".join(quoted) + "\n")
    text = [lines[0] + ",note"] + [f"{line},row {i}" for i, line in enumerate(lines[1:])]
    (tmp_path / "text.csv").write_text("\n".join(text) + "\n")
    summaries = {}
    for name in ("plain", "crlf", "quoted", "text"):
        argv = ["summarize", tmp_path / f"{name}.csv", "--chunk-rows", 64, "-o", tmp_path / f"{name}.json"]
        status, _, err = run(capsys, *argv, *(["--columns", "c0,c1,c2"] if name == "text" else []))
        assert status == 0, err
        summaries[name] = state_json(tmp_path / f"{name}.json")["summary"]
    assert summaries["crlf"] == summaries["plain"] == summaries["quoted"] == summaries["text"]
    np.testing.assert_allclose(cov_of(summaries["plain"]), np.cov(X, rowvar=False), rtol=1e-12)


def test_chunk_size_does_not_change_the_result_beyond_rounding(tmp_path, capsys, rng):
    """The same CSV read 1, 7 or all rows at a time gives summaries equal within rounding."""
    X = rng.normal(size=(200, 3)) + 100.0
    data = write_csv(tmp_path / "a.csv", X)
    summaries = []
    for chunk in (1, 7, 10_000):
        out = tmp_path / f"s{chunk}.json"
        assert run(capsys, "summarize", data, "--chunk-rows", chunk, "-o", out)[0] == 0
        summaries.append(read_state(str(out)).summary)
    assert all(s.isclose(summaries[0], rtol=1e-13) for s in summaries)


def test_nan_policy_omit_records_dropped_rows(tmp_path, capsys):
    """--nan-policy omit leaves out rows with an empty, NA or non-finite field and counts them."""
    data = tmp_path / "a.csv"
    data.write_text("x,y\n1,2\n3,\n4,5\nNA,1\n6,inf\n7,9\n")
    status, _, _ = run(capsys, "summarize", data, "--nan-policy", "omit", "-o", tmp_path / "s.json")
    assert status == 0
    state = state_json(tmp_path / "s.json")
    rows = np.array([[1.0, 2.0], [4.0, 5.0], [7.0, 9.0]])
    assert state["sources"][0]["rows_read"] == 6 and state["sources"][0]["rows_dropped"] == 3
    np.testing.assert_allclose(cov_of(state["summary"]), np.cov(rows, rowvar=False), rtol=1e-14)


def test_blank_lines_are_skipped(tmp_path, capsys):
    """Blank lines in a CSV (a trailing one, one in the middle) are not rows and not errors."""
    data = tmp_path / "a.csv"
    data.write_text("x,y\n1,2\n\n3,5\n4,4\n\n")
    assert run(capsys, "summarize", data, "-o", tmp_path / "s.json", "--chunk-rows", 2)[0] == 0
    assert state_json(tmp_path / "s.json")["summary"]["n"] == 3


# -- update -------------------------------------------------------------------------------------


def test_update_equals_summarize_of_all_files_exactly(tmp_path, capsys, rng):
    """summarize a, then update with b and c, gives the same bits as summarize a b c."""
    files = [
        write_csv(tmp_path / f"{name}.csv", rng.normal(size=(n, 2)) * 3 + 7)
        for name, n in (("a", 50), ("b", 31), ("c", 1))
    ]
    assert run(capsys, "summarize", *files, "-o", tmp_path / "all.json")[0] == 0
    assert run(capsys, "summarize", files[0], "-o", tmp_path / "inc.json")[0] == 0
    status, _, err = run(capsys, "update", tmp_path / "inc.json", files[1], files[2])
    assert status == 0
    assert "updated" in err
    assert state_json(tmp_path / "inc.json") == state_json(tmp_path / "all.json")


def test_update_skips_files_already_counted(tmp_path, capsys, rng):
    """update says it skips a file already in the ledger, even renamed, and leaves the state alone."""
    X = rng.normal(size=(20, 2))
    a = write_csv(tmp_path / "a.csv", X)
    copy = tmp_path / "copy-of-a.csv"
    copy.write_bytes(a.read_bytes())
    assert run(capsys, "summarize", a, "-o", tmp_path / "s.json")[0] == 0
    before = (tmp_path / "s.json").read_bytes()
    status, _, err = run(capsys, "update", tmp_path / "s.json", a, copy)
    assert status == 0
    assert f"skipping {a}: already counted" in err
    assert f"skipping {copy}: already counted (same content as {a})" in err
    assert (tmp_path / "s.json").read_bytes() == before


def test_same_file_twice_on_one_command_line_is_counted_once(tmp_path, capsys, rng):
    """summarize a a counts a once and says so."""
    a = write_csv(tmp_path / "a.csv", rng.normal(size=(10, 2)))
    status, _, err = run(capsys, "summarize", a, a, "-o", tmp_path / "s.json")
    assert status == 0 and "skipping" in err
    assert state_json(tmp_path / "s.json")["summary"]["n"] == 10


def test_update_of_a_grouped_state(tmp_path, capsys, rng):
    """Updating a --by state merges matching keys and adds new ones, as np.cov per key on all rows."""
    X1, X2 = rng.normal(size=(40, 2)), rng.normal(size=(30, 2)) + 1
    k1, k2 = rng.choice(["x", "y"], 40), rng.choice(["y", "z"], 30)
    a = write_csv(tmp_path / "a.csv", X1, keys=k1)
    b = write_csv(tmp_path / "b.csv", X2, keys=k2)
    assert run(capsys, "summarize", a, "--by", "key", "-o", tmp_path / "s.json")[0] == 0
    assert run(capsys, "update", tmp_path / "s.json", b)[0] == 0
    state = read_state(str(tmp_path / "s.json"))
    X, k = np.vstack([X1, X2]), np.concatenate([k1, k2])
    assert [str(key) for key in state.summary.keys()] == ["x", "y", "z"]
    for key, s in state.summary:
        np.testing.assert_allclose(s.covariance(), np.cov(X[k == key], rowvar=False), rtol=1e-12)


# -- merge --------------------------------------------------------------------------------------


def test_merge_of_shards_equals_one_summary_of_all_rows(tmp_path, capsys, rng):
    """Three shard states merged give np.cov of all rows and the union of the ledgers."""
    parts = [rng.normal(size=(n, 3)) * 2 - 1 for n in (17, 40, 3)]
    for i, X in enumerate(parts):
        data = write_csv(tmp_path / f"part{i}.csv", X)
        assert run(capsys, "summarize", data, "-o", tmp_path / f"shard{i}.json")[0] == 0
    status, _, _ = run(capsys, "merge", *(tmp_path / f"shard{i}.json" for i in range(3)), "-o", tmp_path / "all.json")
    assert status == 0
    state = state_json(tmp_path / "all.json")
    rows = np.vstack(parts)
    np.testing.assert_allclose(cov_of(state["summary"]), np.cov(rows, rowvar=False), rtol=1e-12)
    assert sorted(s["path"] for s in state["sources"]) == sorted(str(tmp_path / f"part{i}.csv") for i in range(3))


def test_merge_skips_a_state_already_contained_in_another(tmp_path, capsys, rng):
    """Merging yesterday's shard with today's cumulative state (which holds it) skips the shard."""
    a = write_csv(tmp_path / "a.csv", rng.normal(size=(10, 2)))
    b = write_csv(tmp_path / "b.csv", rng.normal(size=(12, 2)))
    run(capsys, "summarize", a, "-o", tmp_path / "yesterday.json")
    run(capsys, "summarize", a, b, "-o", tmp_path / "today.json")
    status, _, err = run(
        capsys, "merge", tmp_path / "yesterday.json", tmp_path / "today.json", "-o", tmp_path / "m.json"
    )
    assert status == 0
    assert f"skipping {tmp_path / 'yesterday.json'}: all its sources are already counted" in err
    assert state_json(tmp_path / "m.json")["summary"] == state_json(tmp_path / "today.json")["summary"]


def test_merge_refuses_states_that_share_a_source(tmp_path, capsys, rng):
    """Two states that share one file but not all refuse to merge: it would count the file twice."""
    a, b, c = (write_csv(tmp_path / f"{n}.csv", rng.normal(size=(8, 2))) for n in "abc")
    run(capsys, "summarize", a, b, "-o", tmp_path / "ab.json")
    run(capsys, "summarize", a, c, "-o", tmp_path / "ac.json")
    status, _, err = run(capsys, "merge", tmp_path / "ab.json", tmp_path / "ac.json", "-o", tmp_path / "m.json")
    assert status == 1
    assert err.startswith("gaussum: error: refusing to merge:") and "count it twice" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "m.json").exists()


def test_merge_refuses_states_with_different_columns(tmp_path, capsys):
    """States over different columns do not merge, and the message names both column lists."""
    run(capsys, "summarize", IRIS, "--columns", "sepal_length,sepal_width", "-o", tmp_path / "a.json")
    run(capsys, "summarize", IRIS, "--columns", "petal_length,petal_width", "-o", tmp_path / "b.json")
    status, _, err = run(capsys, "merge", tmp_path / "a.json", tmp_path / "b.json", "-o", tmp_path / "m.json")
    assert status == 1 and "petal_length, petal_width" in err and "sepal_length, sepal_width" in err
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize("by", [None, "key"])
def test_merge_aligns_states_whose_columns_come_in_another_order(tmp_path, capsys, rng, by):
    """The same columns in another order are the same variables: the merge aligns them by name
    (the library's names) and keeps the first state's order, as np.cov of the rows in that order."""
    X = rng.normal(size=(30, 3)) * [1.0, 10.0, 0.1] + 5
    keys = np.array(list("ab"))[rng.integers(0, 2, size=30)]
    write_csv(tmp_path / "one.csv", X[:12], ["x", "y", "z"], None if by is None else keys[:12])
    write_csv(tmp_path / "two.csv", X[12:, [2, 0, 1]], ["z", "x", "y"], None if by is None else keys[12:])
    grouping = () if by is None else ("--by", by)
    assert run(capsys, "summarize", tmp_path / "one.csv", *grouping, "-o", tmp_path / "one.json")[0] == 0
    assert run(capsys, "summarize", tmp_path / "two.csv", *grouping, "-o", tmp_path / "two.json")[0] == 0
    assert state_json(tmp_path / "two.json")["columns"] == ["z", "x", "y"]
    status, _, err = run(capsys, "merge", tmp_path / "two.json", tmp_path / "one.json", "-o", tmp_path / "m.json")
    assert status == 0, err
    merged = state_json(tmp_path / "m.json")
    assert merged["columns"] == merged["summary"]["names"] == ["z", "x", "y"]
    in_order = X[:, [2, 0, 1]]
    if by is None:
        np.testing.assert_allclose(cov_of(merged["summary"]), np.cov(in_order, rowvar=False), rtol=1e-12)
    else:
        state = read_state(str(tmp_path / "m.json"))
        for key, s in state.summary:
            np.testing.assert_allclose(s.covariance(), np.cov(in_order[keys == key], rowvar=False), rtol=1e-12)


def test_the_state_keeps_its_column_names_in_the_summary(tmp_path, capsys):
    """The state's summary carries the columns' names (one list, the library's), and a state
    whose 'columns' disagree with its summary's names is refused with one line naming both."""
    run(capsys, "summarize", IRIS, "--columns", "petal_width,sepal_length", "-o", tmp_path / "s.json")
    data = state_json(tmp_path / "s.json")
    assert data["columns"] == data["summary"]["names"] == ["petal_width", "sepal_length"]
    assert GaussianSummary.from_dict(data["summary"]).names == ("petal_width", "sepal_length")
    data["summary"]["names"] = ["sepal_length", "petal_width"]
    (tmp_path / "s.json").write_text(json.dumps(data))
    status, _, err = run(capsys, "show", tmp_path / "s.json")
    assert status == 1 and err.count("\n") == 1
    assert "'columns' lists petal_width, sepal_length but the summary's names are sepal_length, petal_width" in err


def test_a_state_whose_summary_has_no_names_takes_them_from_columns(tmp_path, capsys):
    """State files written before summaries carried names keep them only in 'columns': they are
    read with those names, and an update writes them into the summary."""
    run(capsys, "summarize", IRIS, "--columns", "sepal_length,sepal_width", "-o", tmp_path / "s.json")
    data = state_json(tmp_path / "s.json")
    del data["summary"]["names"]
    (tmp_path / "s.json").write_text(json.dumps(data))
    state = read_state(str(tmp_path / "s.json"))
    assert state.summary.names == state.columns == ("sepal_length", "sepal_width")
    write_csv(tmp_path / "more.csv", np.array([[5.0, 3.0]]), ["sepal_length", "sepal_width"])
    status, _, err = run(capsys, "update", tmp_path / "s.json", tmp_path / "more.csv")
    assert status == 0 and f"updated {tmp_path / 's.json'}: +1 row from 1 input; now 151 rows," in err
    assert state_json(tmp_path / "s.json")["summary"]["names"] == ["sepal_length", "sepal_width"]


# -- show and compare ---------------------------------------------------------------------------


def test_show_table_prints_count_mean_std_and_correlation(tmp_path, capsys):
    """show prints, per species, n, each column's mean and std, and the correlation matrix."""
    run(capsys, "summarize", IRIS, "--by", "species", "-o", tmp_path / "iris.json")
    status, out, _ = run(capsys, "show", tmp_path / "iris.json")
    assert status == 0
    values, species = iris_rows()
    setosa = values[species == "setosa"]
    section = out.split("species = setosa: n = 50")[1].split("species = versicolor")[0]
    for j, name in enumerate(IRIS_COLUMNS):
        line = next(x for x in section.splitlines() if x.strip().startswith(name) and "." in x and len(x.split()) == 3)
        _, mean, std = line.split()
        assert float(mean) == pytest.approx(setosa[:, j].mean(), rel=1e-5)
        assert float(std) == pytest.approx(setosa[:, j].std(ddof=1), rel=1e-5)
    corr = np.corrcoef(setosa, rowvar=False)
    assert f"{corr[0, 1]:.3f}" in section
    assert "sources:" in out and str(IRIS) in out


def test_show_json_matches_numpy(tmp_path, capsys):
    """show --format json gives n, mean, std and correlation per group, as numpy computes them."""
    run(capsys, "summarize", IRIS, "--by", "species", "-o", tmp_path / "iris.json")
    status, out, _ = run(capsys, "show", tmp_path / "iris.json", "--format", "json")
    assert status == 0
    shown = json.loads(out)
    values, species = iris_rows()
    assert [g["key"] for g in shown["groups"]] == ["setosa", "versicolor", "virginica"]
    for group in shown["groups"]:
        rows = values[species == group["key"]]
        assert group["n"] == len(rows)
        np.testing.assert_allclose([group["std"][c] for c in IRIS_COLUMNS], rows.std(axis=0, ddof=1), rtol=1e-12)
        np.testing.assert_allclose(group["correlation"], np.corrcoef(rows, rowvar=False), rtol=1e-12)


def test_show_a_single_row_gives_null_std(tmp_path, capsys):
    """A state of one row shows std as null in JSON (undefined), not an error or a warning."""
    data = tmp_path / "a.csv"
    data.write_text("x,y\n1,2\n")
    run(capsys, "summarize", data, "-o", tmp_path / "s.json")
    status, out, _ = run(capsys, "show", tmp_path / "s.json", "--format", "json")
    assert status == 0
    assert json.loads(out)["std"] == {"x": None, "y": None}


def test_compare_matches_scipy_welch_on_raw_rows(tmp_path, capsys):
    """compare --groups gives scipy's Welch t test on the raw rows of the two species."""
    from scipy import stats  # the stats extra, installed in CI: a broken install must fail, not skip

    run(capsys, "summarize", IRIS, "--by", "species", "-o", tmp_path / "iris.json")
    status, out, err = run(
        capsys, "compare", tmp_path / "iris.json", "--groups", "versicolor", "virginica", "--format", "json"
    )
    assert status == 0, err
    result = json.loads(out)
    values, species = iris_rows()
    ref = stats.ttest_ind(values[species == "versicolor"], values[species == "virginica"], equal_var=False)
    got = [result["welch"][c] for c in IRIS_COLUMNS]
    np.testing.assert_allclose([g["t"] for g in got], ref.statistic, rtol=1e-10)
    np.testing.assert_allclose([g["pvalue"] for g in got], ref.pvalue, rtol=1e-8)
    assert set(result["hotelling"]) == {"pooled", "krishnamoorthy_yu"}
    status, table, _ = run(capsys, "compare", tmp_path / "iris.json", "--groups", "versicolor", "virginica")
    assert status == 0 and "Hotelling T2, equal covariances" in table


def test_compare_two_state_files(tmp_path, capsys, rng):
    """compare A.json B.json tests two ungrouped states against scipy on their rows."""
    from scipy import stats

    A, B = rng.normal(size=(30, 2)), rng.normal(size=(25, 2)) + np.array([0.5, 0.0])
    run(capsys, "summarize", write_csv(tmp_path / "a.csv", A), "-o", tmp_path / "a.json")
    run(capsys, "summarize", write_csv(tmp_path / "b.csv", B), "-o", tmp_path / "b.json")
    status, out, _ = run(capsys, "compare", tmp_path / "a.json", tmp_path / "b.json", "--format", "json")
    assert status == 0
    ref = stats.ttest_ind(A, B, equal_var=False)
    np.testing.assert_allclose([v["t"] for v in json.loads(out)["welch"].values()], ref.statistic, rtol=1e-10)


# -- bad input: one line, exit 1, nothing written -------------------------------------------------


def _bad_inputs(tmp_path: Path, rng: np.random.Generator) -> dict[str, tuple[list, str]]:
    """Each case: (arguments, a phrase the error must contain). s.json is a valid 2-column state."""
    write_csv(tmp_path / "good.csv", rng.normal(size=(5, 2)), header=["a", "b"])
    cli.main(["summarize", str(tmp_path / "good.csv"), "-o", str(tmp_path / "s.json"), "-q"])
    (tmp_path / "text.csv").write_text("a,b\n1,2\n3,hello\n")
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3,4\n5\n")
    (tmp_path / "wide.csv").write_text("a,b\n1,2,3\n4,5,6\n")
    (tmp_path / "text_column.csv").write_text("a,b\n1,2\n3,x\n")
    (tmp_path / "nan.csv").write_text("a,b\n1,2\n3,nan\n")
    (tmp_path / "other.csv").write_text("a,c\n1,2\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "x.dat").write_text("a\n1\n")
    np.save(tmp_path / "three.npy", np.zeros((4, 3)))
    np.save(tmp_path / "two.npy", np.zeros((4, 2)))
    good = json.loads((tmp_path / "s.json").read_text())
    (tmp_path / "truncated.json").write_text((tmp_path / "s.json").read_text()[:100])
    edited = dict(good, summary=dict(good["summary"], n=6.0))
    (tmp_path / "edited_n.json").write_text(json.dumps(edited))
    edited = dict(good, summary=dict(good["summary"], M2=[[1.0, 2.0], [3.0, 1.0]]))
    (tmp_path / "edited_m2.json").write_text(json.dumps(edited))
    edited = dict(good, columns=["a", "b", "c"])
    (tmp_path / "edited_columns.json").write_text(json.dumps(edited))
    (tmp_path / "list.json").write_text("[1, 2]")
    for name, summary_edit in (
        ("huge_n", {"n": 10**400}),
        ("float_version", {"version": 1.0}),
        ("impossible_m2", {"M2": [[1.0, 5.0], [5.0, 1.0]]}),
        ("text_n", {"n": "5"}),
        ("short_mean", {"mean": [1.0]}),
        ("nested_mean", {"mean": [[1.0], [2.0]]}),
    ):
        edited = dict(good, summary=dict(good["summary"], **summary_edit))
        (tmp_path / f"edited_{name}.json").write_text(json.dumps(edited))
    (tmp_path / "state_version.json").write_text(json.dumps(dict(good, version=1.0)))
    (tmp_path / "huge.csv").write_text("a,b\n1,2\n3,4\n5,6\n1e200,7\n")
    # Each row's square is finite; the sum over many rows is not.
    (tmp_path / "sum_overflows.csv").write_text("a,b\n" + "1.3e153,1\n-1.3e153,2\n" * 100)
    rows = "a,b\n" + "1.3e153,1\n-1.3e153,2\n" * 30
    (tmp_path / "big1.csv").write_text(rows)
    (tmp_path / "big2.csv").write_text(rows.replace("3e153", "31e153"))
    for name in ("big1", "big2"):
        cli.main(["summarize", str(tmp_path / f"{name}.csv"), "-o", str(tmp_path / f"{name}.json"), "-q"])
    s = tmp_path / "s.json"
    return {
        "missing file": (["update", s, tmp_path / "nope.csv"], "no such file"),
        "missing state": (["update", tmp_path / "nope.json", tmp_path / "good.csv"], "no such state file"),
        "non-numeric": (["update", s, tmp_path / "text.csv"], "line 3: column 'b' is not numeric: 'hello'"),
        "ragged": (["update", s, tmp_path / "ragged.csv"], "line 4: 1 fields, but the header has 2"),
        "wider than the header": (["update", s, tmp_path / "wide.csv"], "line 2: 3 fields, but the header has 2"),
        "text with no --columns": (
            ["summarize", tmp_path / "text_column.csv", "-o", tmp_path / "new.json"],
            "line 3: column 'b' is not numeric: 'x'; choose numeric columns with --columns",
        ),
        "nan under raise": (["update", s, tmp_path / "nan.csv"], "pass --nan-policy omit"),
        "columns differ": (["update", s, tmp_path / "other.csv"], "no column 'b'"),
        "empty csv": (["update", s, tmp_path / "empty.csv"], "empty file"),
        "unknown type": (["update", s, tmp_path / "x.dat"], "unknown file type '.dat'"),
        "dimensions": (["update", s, tmp_path / "three.npy"], "no column 'a', 'b'"),
        "truncated state": (["update", tmp_path / "truncated.json", tmp_path / "good.csv"], "invalid JSON"),
        "edited n": (["show", tmp_path / "edited_n.json"], "the file was edited or corrupted"),
        "edited M2": (["show", tmp_path / "edited_m2.json"], "M2 must be symmetric"),
        "edited columns": (["show", tmp_path / "edited_columns.json"], "'columns' names 3"),
        "not a state": (["show", tmp_path / "list.json"], "not a gaussum state file"),
        "npy by": (
            ["summarize", tmp_path / "two.npy", "--by", "x0", "-o", tmp_path / "new.json"],
            "--by needs a named column",
        ),
        "huge n": (["show", tmp_path / "edited_huge_n.json"], "invalid summary: n must be finite"),
        "summary version 1.0": (
            ["show", tmp_path / "edited_float_version.json"],
            "invalid summary: unsupported summary format version 1.0",
        ),
        "state version 1.0": (["show", tmp_path / "state_version.json"], "state format version 1.0"),
        "impossible M2": (["show", tmp_path / "edited_impossible_m2.json"], "M2 is not a scatter matrix"),
        "text n": (["show", tmp_path / "edited_text_n.json"], "invalid summary"),
        "short mean": (["show", tmp_path / "edited_short_mean.json"], "invalid summary"),
        "nested mean": (["show", tmp_path / "edited_nested_mean.json"], "invalid summary"),
        "overflowing row": (
            ["update", s, tmp_path / "huge.csv"],
            f"{tmp_path / 'huge.csv'}, data row 4: X overflows float64",
        ),
        "overflowing block": (
            ["update", s, tmp_path / "sum_overflows.csv"],
            f"{tmp_path / 'sum_overflows.csv'}, data rows 1-200: ",
        ),
        "overflow across blocks": (
            ["update", s, tmp_path / "sum_overflows.csv", "--chunk-rows", 2],
            f"{tmp_path / 'sum_overflows.csv'}, data rows ",
        ),
        "overflow across files": (
            ["summarize", tmp_path / "big1.csv", tmp_path / "big2.csv", "-o", tmp_path / "new.json"],
            f"{tmp_path / 'big2.csv'}: adding it to the summary overflows float64",
        ),
        "overflow across states": (
            ["merge", tmp_path / "big1.json", tmp_path / "big2.json", "-o", tmp_path / "new.json"],
            f"{tmp_path / 'big2.json'}: adding it to the summary overflows float64",
        ),
    }


BAD_CASES = [
    "missing file",
    "missing state",
    "non-numeric",
    "ragged",
    "nan under raise",
    "columns differ",
    "empty csv",
    "unknown type",
    "dimensions",
    "truncated state",
    "edited n",
    "edited M2",
    "edited columns",
    "not a state",
    "npy by",
    "wider than the header",
    "text with no --columns",
    "huge n",
    "summary version 1.0",
    "state version 1.0",
    "impossible M2",
    "text n",
    "short mean",
    "nested mean",
    "overflowing row",
    "overflowing block",
    "overflow across blocks",
    "overflow across files",
    "overflow across states",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_one_line_exit_1_and_nothing_written(tmp_path, capsys, rng, case):
    """Each kind of bad input gives one 'gaussum: error:' line naming the problem, status 1, no file change."""
    argv, phrase = _bad_inputs(tmp_path, rng)[case]
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    status, out, err = run(capsys, *argv)
    assert status == 1
    assert out == ""
    assert err.startswith("gaussum: error: ") and err.count("\n") == 1, err
    assert phrase in err, err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_error_line_numbers_are_right_across_chunks(tmp_path, capsys):
    """A bad field in a later chunk, after a blank line, is reported at its own line number."""
    data = tmp_path / "a.csv"
    data.write_text("x\n1\n2\n\n3\n4\n5\noops\n6\n")
    status, _, err = run(capsys, "summarize", data, "--chunk-rows", 2, "-o", tmp_path / "s.json")
    assert status == 1 and "line 8: column 'x' is not numeric: 'oops'" in err


def test_usage_errors_exit_2(capsys):
    """A malformed command line (bad --chunk-rows) is argparse's usage error, status 2."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["summarize", "a.csv", "-o", "s.json", "--chunk-rows", "0"])
    assert exit_info.value.code == 2
    assert "expected a positive integer" in capsys.readouterr().err


# -- atomic writes and crashes ------------------------------------------------------------------


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    """If the rename never happens (an error after the temporary is written), the old file stays."""
    target = tmp_path / "s.json"
    target.write_text("old")

    def fail(*args):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk on fire"):
        write_atomic(str(target), "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_written_state_has_ordinary_permissions(tmp_path):
    """The state file gets the mode open() would give (umask applied), not mkstemp's private 0600."""
    umask = os.umask(0o022)
    try:
        write_atomic(str(tmp_path / "s.json"), "{}")
    finally:
        os.umask(umask)
    assert (tmp_path / "s.json").stat().st_mode & 0o777 == 0o644


def _big_csv(path: Path, rows: int) -> None:
    """A large CSV made quickly by repeating a block of random rows (the values matter little)."""
    block = np.random.default_rng(7).normal(size=(2000, 4)) * [1, 10, 100, 1000] + 50
    text = "\n".join(",".join(f"{v:.17g}" for v in row) for row in block) + "\n"
    with open(path, "w") as f:
        f.write("a,b,c,d\n")
        for _ in range(rows // 2000):
            f.write(text)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX")
def test_sigkill_during_update_leaves_the_old_state_and_a_rerun_gives_the_full_result(tmp_path):
    """Killing `gaussum update` part-way leaves the old state byte for byte; re-running gives the
    same bytes as an uninterrupted run."""
    small = write_csv(tmp_path / "small.csv", np.random.default_rng(1).normal(size=(10, 4)), header=list("abcd"))
    big = tmp_path / "big.csv"
    _big_csv(big, 300_000)
    command = [sys.executable, "-m", "gaussum.cli"]
    subprocess.run([*command, "summarize", str(small), "-o", str(tmp_path / "s.json"), "-q"], check=True)
    old = (tmp_path / "s.json").read_bytes()
    (tmp_path / "reference.json").write_bytes(old)

    # A first update warms what a fresh clone does once (numba's on-disk cache of compiled kernels,
    # the page cache), so that the timed run below is as long as the one to be killed.
    (tmp_path / "warm.json").write_bytes(old)
    subprocess.run([*command, "update", str(tmp_path / "warm.json"), str(big), "-q"], check=True)
    start = time.monotonic()
    subprocess.run([*command, "update", str(tmp_path / "reference.json"), str(big), "-q"], check=True)
    uninterrupted = time.monotonic() - start
    expected = (tmp_path / "reference.json").read_bytes()
    assert expected != old

    process = subprocess.Popen([*command, "update", str(tmp_path / "s.json"), str(big)], stderr=subprocess.DEVNULL)
    time.sleep(uninterrupted / 2)
    assert process.poll() is None, "the update finished before it could be killed; make the input larger"
    process.kill()
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert (tmp_path / "s.json").read_bytes() == old
    read_state(str(tmp_path / "s.json"))  # and it is still a valid state

    subprocess.run([*command, "update", str(tmp_path / "s.json"), str(big), "-q"], check=True)
    assert (tmp_path / "s.json").read_bytes() == expected


# -- progress bar -------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_on_a_terminal_and_not_when_quiet(monkeypatch):
    """The bar is drawn on a terminal, and not when the stream is a file or --quiet is given."""
    monkeypatch.setattr(reading, "_PROGRESS_DELAY_S", 0.0)
    shown = {}
    for label, stream, quiet in (
        ("tty", _Terminal(), False),
        ("file", io.StringIO(), False),
        ("quiet", _Terminal(), True),
    ):
        reporter = reading.Reporter(quiet, stream)
        reporter.start("big.csv")
        reporter.progress(0.5)
        shown[label] = stream.getvalue()
        reporter.finish()
    assert "[" + "#" * 15 + "." * 15 + "]  50%" in shown["tty"]
    assert shown["file"] == "" and shown["quiet"] == ""


# -- the console script -------------------------------------------------------------------------


def test_module_entry_point_runs_the_readme_commands(tmp_path):
    """`python -m gaussum.cli summarize data/iris.csv --by species` then `show`, as the README does."""
    command = [sys.executable, "-m", "gaussum.cli"]
    done = subprocess.run(
        [*command, "summarize", str(IRIS), "--by", "species", "-o", str(tmp_path / "iris.json")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "wrote" in done.stderr and "150 rows in 3 groups by species" in done.stderr
    shown = subprocess.run([*command, "show", str(tmp_path / "iris.json")], capture_output=True, text=True, check=True)
    assert "species = virginica: n = 50" in shown.stdout


def test_state_round_trip_is_exact(tmp_path, capsys, rng):
    """Reading a written state back gives the very same summary (floats written by repr)."""
    X = rng.normal(size=(100, 3)) / 3
    run(capsys, "summarize", write_csv(tmp_path / "a.csv", X), "-o", tmp_path / "s.json")
    state = read_state(str(tmp_path / "s.json"))
    again = GaussianSummary.from_samples(np.loadtxt(tmp_path / "a.csv", delimiter=",", skiprows=1))
    assert state.summary.isclose(again, rtol=1e-14)
    write_atomic(str(tmp_path / "t.json"), state.to_json())
    assert read_state(str(tmp_path / "t.json")).summary == state.summary


# -- state files written by earlier versions ----------------------------------------------------

# Written by `gaussum summarize old.csv --columns x,y` and `--by g` before the state layout moved to
# version 2 (old.csv is OLD_CSV below); kept verbatim so that old states stay readable.
OLD_CSV = "x,y,g\n1,2,a\n3,5,b\n4,4,a\n2,7,b\n"
# State files exactly as gaussum 0.1 wrote them: one top-level field per line.
OLD_PLAIN_STATE = """{
 "format": "gaussum.state",
 "version": 1,
 "columns": ["x", "y"],
 "by": null,
 "summary": {"format": "gaussum.GaussianSummary", "version": 1, "n": 4.0, "mean": [2.5, 4.5], "M2": [[5.0, 2.0], [2.0, 13.0]]},
 "sources": [
  {"path": "old.csv", "size": 30, "sha256": "8f47ebcd092b839f441ce531adb1f7a2666dafb9646f8c63f15cb7df0cbc16d6", "rows_read": 4, "rows_dropped": 0}
 ]
}
"""  # noqa: E501
OLD_GROUPED_STATE = """{
 "format": "gaussum.state",
 "version": 1,
 "columns": ["x", "y"],
 "by": "g",
 "summary": {"format": "gaussum.GroupedSummary", "version": 1, "key_dtype": "<U1", "keys": ["a", "b"], "shape": [2], "diagonal": false, "counts": [2.0, 2.0], "means": [[2.5, 3.0], [2.5, 6.0]], "M2": [[[4.5, 3.0], [3.0, 2.0]], [[0.5, -1.0], [-1.0, 2.0]]]},
 "sources": [
  {"path": "old.csv", "size": 30, "sha256": "8f47ebcd092b839f441ce531adb1f7a2666dafb9646f8c63f15cb7df0cbc16d6", "rows_read": 4, "rows_dropped": 0}
 ]
}
"""  # noqa: E501


@pytest.mark.parametrize("old", [OLD_PLAIN_STATE, OLD_GROUPED_STATE], ids=["plain", "grouped"])
def test_version_1_states_are_read_updated_and_rewritten_as_version_2(tmp_path, capsys, monkeypatch, old):
    """A version-1 state is read, still knows its source (skipped), takes new files, and is written
    back as version 2 with the same summary as a fresh run over the same files."""
    monkeypatch.chdir(tmp_path)
    Path("old.csv").write_text(OLD_CSV)
    Path("new.csv").write_text("x,y,g\n5,1,a\n0,0,c\n")
    Path("s.json").write_text(old)
    grouped = '"by": "g"' in old
    status, out, err = run(capsys, "show", "s.json", "--format", "json")
    assert status == 0, err
    assert json.loads(out)["n"] == 4
    status, _, err = run(capsys, "update", "s.json", "old.csv", "new.csv")
    assert status == 0, err
    assert "skipping old.csv: already counted" in err
    state = state_json("s.json")
    assert state["version"] == 2 and state["by"] == (["g"] if grouped else None)
    args = ["--by", "g"] if grouped else ["--columns", "x,y"]
    assert run(capsys, "summarize", "old.csv", "new.csv", *args, "-o", "fresh.json")[0] == 0
    assert read_state("s.json").summary == read_state("fresh.json").summary
