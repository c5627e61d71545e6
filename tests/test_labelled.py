"""Variable names: taken from DataFrames, carried by every path, aligned on merge; labelled results.

References are pandas, polars and xarray computing on the raw rows.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import xarray as xr

from gaussum import GaussianSummary, GroupedSummary, MissingKeysWarning


@pytest.fixture
def frame():
    rng = np.random.default_rng(14)
    X = rng.standard_normal((200, 3)) @ np.array([[1.0, 0.4, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 2.0]]) + [1e6, 0.0, -5.0]
    return pd.DataFrame(X, columns=["a", "b", "c"])


def test_names_come_from_every_labelled_input(frame):
    """pandas, polars, pyarrow and xarray inputs name the variables; arrays give None; names= wins."""
    inputs = [
        frame,
        pl.from_pandas(frame),
        pa.Table.from_pandas(frame, preserve_index=False),
        xr.DataArray(frame.to_numpy(), dims=("row", "variable"), coords={"variable": ["a", "b", "c"]}),
    ]
    expected = GaussianSummary.from_samples(frame.to_numpy())
    for X in inputs:
        s = GaussianSummary.from_samples(X)
        assert s.names == ("a", "b", "c"), type(X)
        assert s.isclose(expected, rtol=1e-14) and s.names != expected.names
    assert expected.names is None
    assert GaussianSummary.from_samples(frame, names=["x", "y", "z"]).names == ("x", "y", "z")
    assert GaussianSummary.from_samples(frame["a"]).names is None  # a Series is scalar data
    assert GaussianSummary.from_samples(pd.DataFrame({1: [1.0, 2.0], 2: [3.0, 5.0]})).names == ("1", "2")


@pytest.mark.parametrize(
    "names, message",
    [
        (["a", "a"], "distinct"),
        (["a"], "one name per variable"),
        ("ab", "sequence of strings"),
        ([1, 2], "must be strings"),
    ],
)
def test_bad_names_are_refused(names, message):
    """Repeated, mis-counted or non-string names raise ValueError saying which."""
    with pytest.raises(ValueError, match=message):
        GaussianSummary.from_samples(np.ones((3, 2)), names=names)
    with pytest.raises(ValueError, match=message):
        GaussianSummary(3, [0.0, 0.0], np.eye(2), names=names)


def test_names_are_part_of_the_value(frame):
    """==, hash, to_dict/from_dict, pickle and repr all carry the names."""
    s = GaussianSummary.from_samples(frame)
    bare = GaussianSummary.from_samples(frame.to_numpy())
    assert (
        s != bare and s == GaussianSummary.from_samples(frame) and hash(s) == hash(GaussianSummary.from_samples(frame))
    )
    assert GaussianSummary.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert pickle.loads(pickle.dumps(s)) == s
    assert "names=('a', 'b', 'c')" in repr(s)
    assert "names" not in bare.to_dict()
    g = GroupedSummary.from_samples(np.arange(200) % 3, frame)
    assert g.names == ("a", "b", "c") and g[0].names == ("a", "b", "c")
    assert GroupedSummary.from_dict(json.loads(json.dumps(g.to_dict()))) == g
    assert pickle.loads(pickle.dumps(g)) == g and "names=('a', 'b', 'c')" in repr(g)


def test_columns_in_another_order_merge_right(frame):
    """Shards whose columns came in different orders align by name: the result is df.cov of all rows."""
    left = GaussianSummary.from_samples(frame.iloc[:120][["a", "b", "c"]])
    right = GaussianSummary.from_samples(frame.iloc[120:][["c", "a", "b"]])
    for merged in (left + right, GaussianSummary.merge_all([left, right]), sum([left, right])):
        assert merged.names == ("a", "b", "c")
        np.testing.assert_allclose(merged.covariance_frame().to_numpy(), frame.cov().to_numpy(), rtol=1e-9)
    back = (left + right) - right
    assert back.isclose(left, rtol=1e-8)
    # The other order first: the result keeps the left side's order, still right.
    other = right + left
    assert other.names == ("c", "a", "b")
    np.testing.assert_allclose(other.covariance_frame().to_numpy(), frame[["c", "a", "b"]].cov().to_numpy(), rtol=1e-9)
    # Without names the same merge is silently wrong: that is what names prevent.
    unaligned = GaussianSummary.from_samples(frame.iloc[:120].to_numpy()) + GaussianSummary.from_samples(
        frame.iloc[120:][["c", "a", "b"]].to_numpy()
    )
    assert not np.allclose(unaligned.covariance(), frame.cov().to_numpy(), rtol=1e-3)


def test_update_with_a_frame_aligns_its_columns(frame):
    """update(df) reorders the frame's columns to the summary's; an unnamed summary takes the names."""
    s = GaussianSummary.from_samples(frame.iloc[:100])
    t = s.update(frame.iloc[100:][["b", "c", "a"]])
    np.testing.assert_allclose(t.covariance_frame().to_numpy(), frame.cov().to_numpy(), rtol=1e-9)
    named = GaussianSummary.from_samples(frame.iloc[:100].to_numpy()).update(frame.iloc[100:])
    assert named.names == ("a", "b", "c")
    with pytest.raises(ValueError, match=r"different variables: \['a', 'b', 'c'\] vs \['a', 'b', 'x'\]"):
        s.update(frame.iloc[100:].rename(columns={"c": "x"}))


def test_different_variables_are_refused_everywhere(frame):
    """+, merge_all, - and grouped merges of other name sets raise ValueError naming both sets."""
    a = GaussianSummary.from_samples(frame)
    b = GaussianSummary.from_samples(frame.rename(columns={"c": "d"}))
    message = r"different variables: \['a', 'b', 'c'\] vs \['a', 'b', 'd'\]"
    with pytest.raises(ValueError, match=message):
        a + b
    with pytest.raises(ValueError, match=message):
        GaussianSummary.merge_all([a, b])
    with pytest.raises(ValueError, match=message):
        a - b
    keys = np.arange(200) % 2
    with pytest.raises(ValueError, match=message):
        GroupedSummary.from_samples(keys, frame) + GroupedSummary.from_samples(keys, frame.rename(columns={"c": "d"}))


def test_named_and_unnamed_merge_keeping_the_names(frame):
    """A named and an unnamed summary of the same d merge; the result has the names."""
    named = GaussianSummary.from_samples(frame.iloc[:50])
    bare = GaussianSummary.from_samples(frame.iloc[50:].to_numpy())
    assert (bare + named).names == ("a", "b", "c") == (named + bare).names
    assert GaussianSummary.merge_all([bare, named]).names == ("a", "b", "c")


def test_select_gives_exact_marginals(frame):
    """select by names or positions is the sub-block of mean and M2, bit for bit."""
    s = GaussianSummary.from_samples(frame)
    sub = s[["c", "a"]]
    assert sub.names == ("c", "a") and sub.n == s.n
    np.testing.assert_array_equal(sub.mean, s.mean[[2, 0]])
    np.testing.assert_array_equal(sub.M2, s.M2[np.ix_([2, 0], [2, 0])])
    assert s.select([2, 0]) == sub and s.select("b").mean.tolist() == [s.mean[1]]
    np.testing.assert_allclose(sub.covariance_frame().to_numpy(), frame[["c", "a"]].cov().to_numpy(), rtol=1e-10)
    with pytest.raises(KeyError, match="no variable named 'z'"):
        s.select(["z"])
    with pytest.raises(ValueError, match="twice"):
        s.select(["a", 0])
    g = GroupedSummary.from_samples(np.arange(200) % 4, frame)
    assert g.select(["b"]).names == ("b",) and g.select(["b"])[1] == g[1].select(["b"])


def test_labelled_results_equal_pandas(frame):
    """to_pandas, covariance_frame and correlation_frame equal df.mean/std/cov/corr, labelled."""
    s = GaussianSummary.from_samples(frame)
    out = s.to_pandas()
    pd.testing.assert_series_equal(out["mean"], frame.mean().rename_axis("variable").rename("mean"), rtol=1e-12)
    pd.testing.assert_series_equal(out["std"], frame.std().rename_axis("variable").rename("std"), rtol=1e-10)
    assert out["n"] == 200 and out["effective_n"] == 200
    expected_cov = frame.cov()
    got = s.covariance_frame()
    assert list(got.index) == list(got.columns) == ["a", "b", "c"]
    np.testing.assert_allclose(got.to_numpy(), expected_cov.to_numpy(), rtol=1e-10)
    # pandas loses digits at this offset (column a sits at 1e6): correlation is shift-invariant,
    # so its reference is taken on the centred frame.
    np.testing.assert_allclose(s.correlation_frame().to_numpy(), (frame - frame.mean()).corr().to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(s.covariance_frame(ddof=0).to_numpy(), frame.cov(ddof=0).to_numpy(), rtol=1e-10)
    assert list(GaussianSummary.from_samples(frame.to_numpy()).covariance_frame().index) == [0, 1, 2]


def test_grouped_labelled_results_equal_groupby(frame):
    """GroupedSummary.to_pandas and covariance_frame equal df.groupby(k).var() / .cov(), and polars."""
    keys = np.random.default_rng(3).integers(0, 5, 200)
    g = GroupedSummary.from_samples(keys, frame)
    grouped = frame.groupby(keys)
    tidy = g.to_pandas()
    np.testing.assert_allclose(tidy[["var_a", "var_b", "var_c"]].to_numpy(), grouped.var().to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(tidy[["mean_a", "mean_b", "mean_c"]].to_numpy(), grouped.mean().to_numpy(), rtol=1e-12)
    np.testing.assert_array_equal(tidy["n"].to_numpy(), grouped.size().to_numpy())
    cov = g.covariance_frame()
    reference = grouped.cov()
    assert list(cov.index) == list(reference.index) and list(cov.columns) == list(reference.columns)
    np.testing.assert_allclose(cov.to_numpy(), reference.to_numpy(), rtol=1e-9, atol=1e-12)
    polars_var = (
        pl.from_pandas(frame).with_columns(k=pl.Series(keys)).group_by("k").agg(pl.col("a", "b", "c").var()).sort("k")
    )
    np.testing.assert_allclose(
        tidy[["var_a", "var_b", "var_c"]].to_numpy(), polars_var.select("a", "b", "c").to_numpy(), rtol=1e-9
    )


def test_xarray_results(frame):
    """to_xarray has variable/variable2 dimensions labelled by name, matching the arrays."""
    s = GaussianSummary.from_samples(frame)
    ds = s.to_xarray()
    assert ds["covariance"].dims == ("variable", "variable2")
    np.testing.assert_allclose(ds["covariance"].sel(variable="a", variable2="c"), frame.cov().loc["a", "c"], rtol=1e-10)
    assert ds.attrs["n"] == 200
    g = GroupedSummary.from_samples(np.arange(200) % 3, frame)
    gds = g.to_xarray()
    assert gds["covariance"].dims == ("key", "variable", "variable2")
    np.testing.assert_allclose(gds["mean"].sel(key=1).values, frame.iloc[1::3].mean().to_numpy(), rtol=1e-12)


def test_nullable_columns_follow_nan_policy():
    """Int64/Float64 columns with pd.NA and polars nulls count as NaN: raise, or omit their rows."""
    df = pd.DataFrame(
        {"x": pd.array([1, 2, None, 4], dtype="Int64"), "y": pd.array([1.5, None, 3.0, 5.0], dtype="Float64")}
    )
    complete = df.dropna().astype(float)
    with pytest.raises(ValueError, match="row 1"):
        GaussianSummary.from_samples(df)
    s = GaussianSummary.from_samples(df, nan_policy="omit")
    assert s.n == 2 and s.names == ("x", "y")
    np.testing.assert_allclose(s.covariance_frame().to_numpy(), complete.cov().to_numpy(), rtol=1e-12)
    p = GaussianSummary.from_samples(pl.from_pandas(df), nan_policy="omit")
    assert p == s
    table = pa.table({"x": pa.array([1, 2, None, 4]), "y": pa.array([1.5, None, 3.0, 5.0])})
    assert GaussianSummary.from_samples(table, nan_policy="omit") == s
    with pytest.raises(ValueError, match="numeric columns"):
        GaussianSummary.from_samples(pd.DataFrame({"x": [1.0, 2.0], "t": ["a", "b"]}))


def test_missing_keys_follow_dropna_like_groupby():
    """None/NaN/pd.NA keys: dropped by default (warned), silently with True, their own group with False."""
    df = pd.DataFrame({"k": [1.0, np.nan, 2.0, 1.0, np.nan, 2.0], "x": [1.0, 2.0, 3.0, 5.0, 8.0, 4.0]})
    with pytest.warns(MissingKeysWarning, match="2 of 6 rows"):
        g = GroupedSummary.from_samples(df["k"], df[["x"]])
    assert g == GroupedSummary.from_samples(df["k"], df[["x"]], dropna=True)
    np.testing.assert_allclose(g.to_pandas()["var_x"].to_numpy(), df.groupby("k")["x"].var().to_numpy())
    kept = GroupedSummary.from_samples(df["k"], df[["x"]], dropna=False)
    reference = df.groupby("k", dropna=False)["x"]
    np.testing.assert_allclose(kept.to_pandas()["var_x"].to_numpy(), reference.var().to_numpy())
    np.testing.assert_array_equal(kept.counts, reference.size().to_numpy())
    assert np.isnan(kept.keys()[-1]) and kept[np.nan].n == 2
    assert GroupedSummary.from_dict(json.loads(json.dumps(kept.to_dict()))) == kept
    assert (kept + kept)[np.nan].n == 4
    strings = pd.Series(["a", None, "b", pd.NA], dtype=object)
    with pytest.warns(MissingKeysWarning):
        s = GroupedSummary.from_samples(strings, np.arange(4.0))
    assert s.keys().tolist() == ["a", "b"]
    with pytest.raises(ValueError, match="only float and datetime keys"):
        GroupedSummary.from_samples(strings, np.arange(4.0), dropna=False)
    nullable = pd.Series(pd.array([1, None, 2, 1], dtype="Int64"))
    assert GroupedSummary.from_samples(nullable, np.arange(4.0), dropna=True).keys().tolist() == [1, 2]
