"""GroupedSummary: per-key statistics against per-key numpy on the raw rows, merging, errors, I/O."""

from __future__ import annotations

import copy
import itertools
import json
import pickle
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaussum import GaussianSummary, GroupedSummary, _combine, _compiled, _kernel, _moments, _validate

U = np.finfo(np.float64).eps / 2


def merge_rtol(X):
    """Tolerance for comparing merged with direct summaries of X.

    Each stored mean is rounded to u |mean|, and merging carries that into M2 in proportion to
    |mean| / spread: the floor of any float64 (n, mean, M2) format, so the bound grows with it.
    32 u times that ratio, as the core's `tests/strategies.py` `tolerance`.
    """
    X2 = X.reshape(len(X), -1)
    spread = X2.std(axis=0).min() if len(X2) > 1 else 0.0
    ratio = np.abs(X2).max() / spread if spread > 0 else 1.0
    return 32 * U * max(1.0, ratio)


@pytest.fixture
def rng():
    return np.random.default_rng(20261124)


def use_tiny_blocks(patch, rows):
    """Blocks of `rows` rows, in the grouped kernel and in the core's streaming of large keys."""
    for prefix in ("_GROUP", ""):
        patch.setattr(_kernel, f"{prefix}_BLOCK_BYTES", 1)
        patch.setattr(_kernel, f"{prefix}_MIN_BLOCK_ROWS" if not prefix else "_MIN_GROUP_BLOCK_ROWS", rows)


@pytest.fixture(params=["default-blocks", "tiny-blocks"])
def block_size(request, monkeypatch):
    """Run with the default block size, and with blocks of a few rows so keys straddle blocks."""
    if request.param == "tiny-blocks":
        use_tiny_blocks(monkeypatch, 7)
    return request.param


def exact_moments(rows, w=None):
    """Exact (n, mean, M2) of float rows (shape (k, d)) as Fractions, via big integers.

    Every float64 is an integer times a power of two, so scaling by one common power of two turns
    the weighted sums into exact integer arithmetic, with no rounding at all.
    """
    k, d = rows.shape
    ratios = [[float(v).as_integer_ratio() for v in row] for row in rows]
    scale = max([q for row in ratios for _, q in row] + [1])
    ints = [[p * (scale // q) for p, q in row] for row in ratios]
    w_ratios = [(1, 1)] * k if w is None else [float(v).as_integer_ratio() for v in w]
    w_scale = max(q for _, q in w_ratios) if k else 1
    w_ints = [p * (w_scale // q) for p, q in w_ratios]
    n_int = sum(w_ints)
    n = Fraction(n_int, w_scale)
    if n_int == 0:
        return n, [Fraction(0)] * d, [[Fraction(0)] * d for _ in range(d)]
    s1 = [sum(wt * r[j] for wt, r in zip(w_ints, ints, strict=False)) for j in range(d)]
    mean = [Fraction(s1[j], n_int * scale) for j in range(d)]
    M2 = [
        [
            Fraction(
                n_int * sum(wt * r[a] * r[b] for wt, r in zip(w_ints, ints, strict=False)) - s1[a] * s1[b],
                n_int * w_scale * scale**2,
            )
            for b in range(d)
        ]
        for a in range(d)
    ]
    return n, mean, M2


def assert_matches_reference(g, keys, X, weights=None, rtol=1e-12):
    """Every key's count, mean and M2 agree with exact per-key sums over its raw rows.

    The mean must be within a few units of rounding of the exact mean (plus `rtol` times the
    spread); M2 within `rtol` times sqrt(M2_ii M2_jj), a bound that does not grow with the offset.
    """
    scalar = X.ndim == 1
    X2 = X.reshape(len(X), -1)
    distinct = sorted(set(keys.tolist()))
    assert g.keys().tolist() == distinct
    for i, key in enumerate(distinct):
        mask = keys == key
        n, mean, M2 = exact_moments(X2[mask], None if weights is None else weights[mask])
        assert abs(g.counts[i] - float(n)) <= 2 * U * mask.sum() * float(n)
        got_mean = np.atleast_1d(g.means[i])
        got_M2 = g.M2[i].reshape(-1, 1) if scalar else g.M2[i]
        d = X2.shape[1]
        for a in range(d):
            spread = float(M2[a][a] / max(n, 1)) ** 0.5
            error = abs(Fraction(float(got_mean[a])) - mean[a])
            assert float(error) <= 4 * U * abs(float(mean[a])) + rtol * spread, (key, a)
            for b in range(d) if got_M2.ndim == 2 and got_M2.shape[1] == d else [a]:
                value = got_M2[a, b] if got_M2.shape[1] == d else got_M2[a, 0]
                scale = float(M2[a][a] * M2[b][b]) ** 0.5
                assert float(abs(Fraction(float(value)) - M2[a][b])) <= rtol * scale, (key, a, b)


# -- from_samples against per-key numpy ----------------------------------------------------


@pytest.mark.parametrize("offset", [0.0, 1e6, 1e9])
def test_random_integer_keys_match_np_cov(rng, block_size, offset):
    """Random integer keys: each key's summary equals np.cov of its rows, also far from zero."""
    keys = rng.integers(-50, 150, 1500)
    X = offset + rng.standard_normal((1500, 3)) * [1.0, 0.01, 5.0]
    g = GroupedSummary.from_samples(keys, X)
    assert g.means.shape == (len(g), 3) and g.M2.shape == (len(g), 3, 3)
    assert_matches_reference(g, keys, X)


def test_skewed_string_keys_with_singletons_and_one_huge_group(rng, block_size):
    """Many singleton keys, a few mid-size ones and one huge one, as strings, all match np.cov."""
    sizes = [1] * 400 + [2] * 50 + [37] * 10 + [20000]
    keys = np.concatenate([np.full(s, f"user-{i:04d}") for i, s in enumerate(sizes)])
    X = 1e6 + rng.standard_normal((keys.size, 4))
    perm = rng.permutation(keys.size)
    keys, X = keys[perm], X[perm]
    g = GroupedSummary.from_samples(keys, X)
    assert len(g) == len(sizes)
    assert_matches_reference(g, keys, X)
    singles = g.counts == 1
    assert (g.M2[singles] == 0).all()


def test_exact_at_offset_1e9(rng, block_size):
    """Far from zero, counts, means and M2 agree with exact rational arithmetic to a few ulps."""
    keys = rng.integers(0, 6, 120)
    X = 1e9 + np.round(rng.standard_normal((120, 2)), 3)
    g = GroupedSummary.from_samples(keys, X)
    for i, key in enumerate(g.keys()):
        rows = [[Fraction(float(v)) for v in row] for row in X[keys == key]]
        n = len(rows)
        mean = [sum(r[j] for r in rows) / n for j in range(2)]
        M2 = [[sum((r[a] - mean[a]) * (r[b] - mean[b]) for r in rows) for b in range(2)] for a in range(2)]
        assert g.counts[i] == n
        for a in range(2):
            assert abs(Fraction(float(g.means[i, a])) - mean[a]) <= 2 * U * abs(mean[a])
            for b in range(2):
                scale = (M2[a][a] * M2[b][b]) ** 0.5
                assert abs(float(Fraction(float(g.M2[i, a, b])) - M2[a][b])) <= 1e-12 * float(scale)


def test_weighted_matches_weighted_numpy(rng, block_size):
    """Frequency weights: each key's moments equal the weighted mean and scatter of its rows."""
    keys = rng.integers(0, 40, 2000)
    X = 1e6 + rng.standard_normal((2000, 3))
    w = rng.uniform(0, 3, 2000)
    w[keys == 7] = 0.0
    g = GroupedSummary.from_samples(keys, X, w)
    i = int(np.flatnonzero(g.keys() == 7)[0])
    assert g.counts[i] == 0 and not g.means[i].any() and not g.M2[i].any()
    keep = keys != 7
    gk = GroupedSummary.from_samples(keys[keep], X[keep], w[keep])
    assert_matches_reference(gk, keys[keep], X[keep], w[keep])


def test_scalar_data(rng, block_size):
    """1-D X gives means and M2 of shape (g,), matching np.var of each key's values."""
    keys = rng.integers(0, 30, 1000)
    x = 1e9 + rng.standard_normal(1000)
    g = GroupedSummary.from_samples(keys, x)
    assert g.means.shape == (30,) and g.M2.shape == (30,)
    assert g[3].mean.shape == () and g[3] .M2.shape == ()
    assert_matches_reference(g, keys, x, rtol=1e-10)
    np.testing.assert_allclose(g.variances(), [np.var(x[keys == k], ddof=1) for k in range(30)], rtol=1e-9)


def test_diagonal_matches_np_var(rng, block_size):
    """diagonal=True keeps per-variable sums of squares equal to the diagonal of np.cov."""
    keys = rng.integers(0, 20, 1500)
    X = rng.standard_normal((1500, 5)) * 3 + 100
    g = GroupedSummary.from_samples(keys, X, diagonal=True)
    assert g.diagonal and g.M2.shape == (20, 5)
    expected = np.stack([np.var(X[keys == k], axis=0, ddof=1) for k in range(20)])
    np.testing.assert_allclose(g.covariances(), expected, rtol=1e-12)
    # Both paths are the corrected two-pass about the same two-part shift, but the diagonal one
    # sums squares without BLAS; a few units of rounding of each sum separate them.
    full = GroupedSummary.from_samples(keys, X).to_diagonal()
    assert g.isclose(full, rtol=64 * U)


def test_integer_data_is_accumulated_in_float64(rng):
    """Integer X (whose squares would overflow int32) is summarised in float64."""
    keys = rng.integers(0, 5, 500)
    X = rng.integers(-100000, 100000, (500, 2)).astype(np.int32)
    g = GroupedSummary.from_samples(keys, X)
    assert_matches_reference(g, keys, X.astype(np.float64))


@pytest.mark.parametrize(
    "keys",
    [
        np.array(["2024-01-02", "2024-01-01", "2024-01-02", "2023-12-31"], dtype="datetime64[D]"),
        np.array([2.5, -1.0, 2.5, 0.0]),
        np.array([True, False, True, True]),
        np.array(["b", "a", "b", "c"], dtype=object),
        np.array([2**63 + 5, 3, 2**63 + 5, 2**64 - 1], dtype=np.uint64),
        np.array([10**15, -(10**15), 10**15, 0]),
        np.array([127, -128, 127, 0], dtype=np.int8),
    ],
    ids=["datetime", "float", "bool", "object-str", "uint64-wide", "int-wide", "int8-extremes"],
)
def test_key_types(keys):
    """Dates, floats, booleans, object strings and wide integers all group like equal labels."""
    X = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 8.0], [0.0, 1.0]])
    g = GroupedSummary.from_samples(keys, X)
    expected_keys = sorted(set(keys.tolist()))
    assert g.keys().tolist() == expected_keys
    assert_matches_reference(g, keys, X)
    if keys.dtype == object:
        assert g.keys().dtype.kind == "U"
    else:
        assert g.keys().dtype == keys.dtype
    assert g[keys[0]] .n == float((keys == keys[0]).sum())


def test_no_rows_gives_no_keys():
    """Zero rows give a grouped summary with no keys that still knows d."""
    g = GroupedSummary.from_samples(np.array([], dtype=int), np.zeros((0, 3)))
    assert len(g) == 0 and g.means.shape == (0, 3) and g.M2.shape == (0, 3, 3)


def test_memory_is_bounded_by_blocks(rng):
    """Peak extra memory stays well under one copy of X (never a sorted copy, never rows x d x d)."""
    keys = rng.integers(0, 1000, 400_000)
    X = rng.standard_normal((400_000, 8))
    GroupedSummary.from_samples(keys, X)  # warm imports and caches (and the compiled kernel's load)
    tracemalloc.start()
    GroupedSummary.from_samples(keys, X)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 0.6 * X.nbytes


# -- bad input: the core's errors --------------------------------------------------------------


def _message(call):
    with pytest.raises(ValueError) as info:
        call()
    return str(info.value)


@pytest.mark.parametrize(
    "X",
    [
        [["a", "b"], ["c", "d"]],
        np.zeros((3, 2, 2)),
        np.zeros((3, 0)),
        np.array([[1.0, 2.0], [np.nan, 1.0], [3.0, 4.0]]),
        np.array([[1.0, 2.0], [1.0, np.inf], [3.0, 4.0]]),
        np.array([[1e200, 2.0], [-1e200, 1.0], [3.0, 4.0]]),
        np.array([[1.0, 2.0], [1.0, 5.0j], [3.0, 4.0]]),
    ],
    ids=["strings", "3-d", "no-columns", "nan", "inf", "overflow", "complex"],
)
def test_bad_data_raises_the_core_error(X):
    """Bad X raises ValueError with exactly the message GaussianSummary.from_samples gives."""
    rows = len(X)
    assert _message(lambda: GroupedSummary.from_samples(np.zeros(rows), X)) == _message(
        lambda: GaussianSummary.from_samples(X)
    )


@pytest.mark.parametrize("weights", [[1.0, -1.0, 1.0], [1.0, np.nan, 1.0], [1.0, 1.0], "abc"])
def test_bad_weights_raise_the_core_error(weights):
    """Bad weights raise ValueError with the same message as GaussianSummary.from_samples."""
    X = np.ones((3, 2))
    assert _message(lambda: GroupedSummary.from_samples([1, 2, 1], X, weights)) == _message(
        lambda: GaussianSummary.from_samples(X, weights)
    )


def test_bad_nan_policy_raises_the_core_error():
    """An unknown nan_policy is refused with the core's message."""
    X = np.ones((2, 2))
    assert _message(lambda: GroupedSummary.from_samples([1, 2], X, nan_policy="drop")) == _message(
        lambda: GaussianSummary.from_samples(X, nan_policy="drop")
    )


@pytest.mark.parametrize(
    "keys, text",
    [
        ([1, 2], "keys must have shape (3,)"),
        ([[1], [2], [3]], "1-D array of labels"),
        (np.array([1, "a", None], dtype=object), "can be ordered"),
        ([1j, 2j, 3j], "complex"),
        ([1.0, np.inf, 2.0], "must be finite"),
    ],
    ids=["length", "2-d", "unorderable", "complex", "inf"],
)
def test_bad_keys_raise(keys, text):
    """Keys of the wrong length or shape, NaN, NaT or unorderable labels raise ValueError."""
    with pytest.raises(ValueError, match=text.replace("(", r"\(").replace(")", r"\)")):
        GroupedSummary.from_samples(keys, np.ones((3, 2)))


def test_nan_policy_omit_drops_rows_and_keeps_emptied_keys(rng, block_size):
    """omit drops non-finite rows; a key whose rows were all dropped stays, with count 0."""
    keys = rng.integers(0, 10, 400)
    X = rng.standard_normal((400, 3))
    X[rng.choice(400, 30, replace=False), rng.integers(0, 3, 30)] = np.nan
    X[keys == 4, 1] = np.inf
    g = GroupedSummary.from_samples(keys, X, nan_policy="omit")
    finite = np.isfinite(X).all(axis=1)
    assert 4 in g and g[4] == GaussianSummary.empty(3)
    assert g.n == finite.sum()
    reference = GroupedSummary.from_samples(keys[finite], X[finite])
    for key, s in reference:
        assert g[key].isclose(s, rtol=1e-12)
    core = GaussianSummary.from_samples(X[keys == 2], nan_policy="omit")
    assert g[2].isclose(core, rtol=1e-12)


def test_nan_policy_propagate_spoils_only_its_key():
    """propagate makes the key holding a NaN row NaN and leaves the others exact."""
    X = np.array([[1.0, 2.0], [np.nan, 3.0], [4.0, 5.0], [6.0, 9.0]])
    g = GroupedSummary.from_samples(["a", "b", "a", "b"], X, nan_policy="propagate")
    assert np.isnan(g.means[1, 0]) and np.isfinite(g.means[0]).all()
    assert g["a"] == GaussianSummary.from_samples(X[[0, 2]])


# -- merging -----------------------------------------------------------------------------------


def test_merge_of_halves_equals_whole(rng):
    """g + h of two row halves equals the grouped summary of all rows; keys are the union."""
    keys = rng.integers(0, 300, 6000)
    X = 1e6 + rng.standard_normal((6000, 3))
    whole = GroupedSummary.from_samples(keys, X)
    a = GroupedSummary.from_samples(keys[:2500], X[:2500])
    b = GroupedSummary.from_samples(keys[2500:], X[2500:])
    rtol = merge_rtol(X)
    assert (a + b).isclose(whole, rtol=rtol)
    assert (b + a).isclose(whole, rtol=rtol)
    assert sum([a, b]).isclose(whole, rtol=rtol)
    assert a.update(keys[2500:], X[2500:]).isclose(whole, rtol=rtol)
    assert not (a + a).isclose(whole, rtol=rtol)


def test_keys_in_one_side_are_kept_exactly():
    """A key present in only one operand keeps its summary bit for bit."""
    a = GroupedSummary.from_samples(["x", "y"], [[1.0, 0.1], [2.0, 0.7]])
    b = GroupedSummary.from_samples(["z", "y"], [[3.0, 0.3], [5.0, 0.2]])
    merged = a + b
    assert merged.keys().tolist() == ["x", "y", "z"]
    assert merged["x"] == a["x"] and merged["z"] == b["z"]
    assert merged["y"].isclose(a["y"] + b["y"], rtol=1e-15)


def test_empty_is_an_identity():
    """Merging with a grouped summary of no keys returns an equal value."""
    g = GroupedSummary.from_samples([3, 1, 3], [[1.0], [2.0], [4.0]])
    assert g + GroupedSummary.empty(1) == g
    assert GroupedSummary.empty(1) + g == g


@st.composite
def keyed_data(draw):
    """Keys from a small or large alphabet and rows at some offset, with cut points."""
    n = draw(st.integers(1, 80))
    d = draw(st.integers(1, 3))
    n_keys = draw(st.sampled_from([1, 3, 50]))
    offset = draw(st.sampled_from([0.0, -250.0, 1e6, 1e9]))
    seed = draw(st.integers(0, 2**32 - 1))
    r = np.random.default_rng(seed)
    keys = r.integers(0, n_keys, n)
    X = offset + r.standard_normal((n, d))
    k = draw(st.integers(0, 5))
    cuts = sorted(draw(st.lists(st.integers(0, n), min_size=k, max_size=k)))
    order = draw(st.permutations(range(k + 1)))
    block_rows = draw(st.sampled_from([None, 3, 8]))
    return keys, X, [0, *cuts, n], order, block_rows


@settings(max_examples=60, deadline=None)
@given(keyed_data())
def test_merge_of_parts_in_any_order_equals_whole(data):
    """Grouped summaries of contiguous parts, merged in any order, equal the grouped whole."""
    keys, X, bounds, order, block_rows = data
    with pytest.MonkeyPatch.context() as patch:
        if block_rows is not None:  # keys larger than a block take the streaming path
            use_tiny_blocks(patch, block_rows)
        parts = [GroupedSummary.from_samples(keys[a:b], X[a:b]) for a, b in itertools.pairwise(bounds)]
        whole = GroupedSummary.from_samples(keys, X)
    parts = [parts[i] for i in order]
    rtol = merge_rtol(X)
    assert GroupedSummary.merge_all(parts).isclose(whole, rtol=rtol)
    pairwise = parts[0]
    for p in parts[1:]:
        pairwise = pairwise + p
    assert pairwise.isclose(whole, rtol=rtol)
    assert whole.total().isclose(GaussianSummary.from_samples(X), rtol=rtol)


def test_merge_refuses_mismatched_shapes_and_keys():
    """Different d, full with diagonal, and int with string keys cannot merge."""
    full = GroupedSummary.from_samples([1, 2], np.ones((2, 2)))
    with pytest.raises(ValueError, match="different shapes"):
        full + GroupedSummary.from_samples([1, 2], np.ones((2, 3)))
    with pytest.raises(ValueError, match="to_diagonal"):
        full + GroupedSummary.from_samples([1, 2], np.ones((2, 2)), diagonal=True)
    with pytest.raises(ValueError, match="keys have dtypes"):
        full + GroupedSummary.from_samples(["1", "2"], np.ones((2, 2)))
    with pytest.raises(ValueError, match="keys have dtypes"):
        full + GroupedSummary.from_samples(np.array([2**64 - 1, 1], dtype=np.uint64), np.ones((2, 2)))
    with pytest.raises(TypeError, match="item 1"):
        GroupedSummary.merge_all([full, GaussianSummary.empty(2)])
    with pytest.raises(ValueError, match="at least one"):
        GroupedSummary.merge_all([])
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        full.update([1], np.ones((1, 3)))


# -- access ------------------------------------------------------------------------------------


def test_mapping_access():
    """Indexing, membership, length, iteration and get behave like a read-only mapping."""
    X = np.array([[1.0, 2.0], [3.0, 5.0], [5.0, 11.0]])
    g = GroupedSummary.from_samples(["b", "a", "b"], X)
    assert len(g) == 2 and "a" in g and "c" not in g and 3 not in g
    assert g["b"] == GaussianSummary.from_samples(X[[0, 2]])
    assert [k for k, _ in g] == ["a", "b"]
    assert all(isinstance(s, GaussianSummary) for _, s in g)
    assert g.get("c") is None and g.get("a") == g["a"]
    with pytest.raises(KeyError, match="'c' is not a key; the keys are 'a', 'b'"):
        g["c"]


def test_stacked_covariances_warn_for_singletons(rng):
    """covariances() stacks each key's covariance; keys with one row warn and give NaN."""
    keys = np.array([0, 0, 0, 1, 2, 2])
    X = rng.standard_normal((6, 2))
    g = GroupedSummary.from_samples(keys, X)
    with pytest.warns(RuntimeWarning, match="1 of 3 keys"):
        cov = g.covariances()
    np.testing.assert_allclose(cov[0], np.cov(X[:3], rowvar=False), rtol=1e-12)
    assert np.isnan(cov[1]).all()
    np.testing.assert_allclose(g.covariances(ddof=0)[1], 0.0)
    np.testing.assert_allclose(g.variances(ddof=0)[2], np.var(X[4:], axis=0), rtol=1e-12)


def test_scaled_scales_counts_and_M2_only(rng):
    """scaled(f) multiplies counts and M2 by f and leaves the means as they are."""
    g = GroupedSummary.from_samples(rng.integers(0, 5, 50), rng.standard_normal((50, 2)))
    h = g.scaled(0.25)
    assert np.array_equal(h.counts, g.counts * 0.25) and np.array_equal(h.M2, g.M2 * 0.25)
    assert h.means is g.means or np.array_equal(h.means, g.means)
    for bad in (0, -1.0, np.inf, np.nan, True, "2"):
        with pytest.raises(ValueError, match="factor"):
            g.scaled(bad)


# -- value semantics ---------------------------------------------------------------------------


def test_immutable():
    """Arrays are read-only and attributes cannot be set; the caller's arrays are not frozen."""
    means = np.array([[1.0], [2.0]])
    g = GroupedSummary([1, 2], [1.0, 1.0], means, np.zeros((2, 1, 1)))
    assert means.flags.writeable
    for array in (g.keys(), g.counts, g.means, g.M2, g[1].mean):
        with pytest.raises(ValueError):
            array[...] = 0
    with pytest.raises(AttributeError):
        g.counts = np.zeros(2)


@pytest.mark.parametrize(
    "roundtrip",
    [copy.copy, copy.deepcopy, lambda g: pickle.loads(pickle.dumps(g)), lambda g: pickle.loads(pickle.dumps(g, 2))],
    ids=["copy", "deepcopy", "pickle", "pickle-2"],
)
def test_copy_and_pickle_keep_value_and_read_only(rng, roundtrip):
    """copy, deepcopy and pickle give an equal grouped summary whose arrays are read-only."""
    g = GroupedSummary.from_samples(rng.integers(0, 4, 30).astype(str), rng.standard_normal((30, 2)))
    h = roundtrip(g)
    assert h == g and hash(h) == hash(g)
    assert not any(a.flags.writeable for a in (h.keys(), h.counts, h.means, h.M2))
    for empty in (GroupedSummary.empty(3), GroupedSummary.empty(None), GroupedSummary.empty(2, diagonal=True)):
        assert roundtrip(empty) == empty and len(roundtrip(empty)) == 0


@pytest.mark.parametrize(
    "keys",
    [
        np.array([5, 1, 5, 2]),
        np.array([5, 1, 5, 2], dtype=np.uint64) + np.uint64(2**63),
        np.array(["é", "a", "é", "bb"]),
        np.array([0.1, 1e300, 0.1, -3.5]),
        np.array(["2024-05-01T10", "2024-05-01T09", "2024-05-01T10", "1970-01-01T00"], dtype="datetime64[h]"),
        np.array([5, 1, 5, 2], dtype="timedelta64[ms]"),
        np.array([True, False, True, False]),
    ],
    ids=["int", "uint64", "str", "float", "datetime", "timedelta", "bool"],
)
@pytest.mark.parametrize("kind", ["full", "diagonal", "scalar"])
def test_to_dict_round_trips_exactly_through_json(rng, keys, kind):
    """to_dict -> JSON -> from_dict gives back an equal value, keys and dtype included."""
    X = rng.standard_normal(4) / 3 if kind == "scalar" else rng.standard_normal((4, 3)) / 3
    g = GroupedSummary.from_samples(keys, X, diagonal=kind == "diagonal")
    text = json.dumps(g.to_dict(), allow_nan=False)
    h = GroupedSummary.from_dict(json.loads(text))
    assert h == g and h.keys().dtype == g.keys().dtype and h.diagonal == g.diagonal


def test_to_dict_of_no_keys_keeps_shape():
    """A grouped summary with no keys round-trips with its number of variables."""
    g = GroupedSummary.empty(4, diagonal=True)
    h = GroupedSummary.from_dict(json.loads(json.dumps(g.to_dict())))
    assert h == g and h.M2.shape == (0, 4)


def test_to_dict_refuses_object_keys():
    """Keys of object dtype (not strings) cannot be written exactly, so to_dict refuses them."""
    g = GroupedSummary.from_samples(np.array([(1, 2), (0, 5)], dtype=object)[:, 0], np.ones((2, 1)))
    g = GroupedSummary(np.array([1, 2], dtype=object), g.counts, g.means, g.M2)
    with pytest.raises(ValueError, match="convert the keys"):
        g.to_dict()


def _valid_dict():
    return GroupedSummary.from_samples(["a", "b", "a"], [[1.0, 2.0], [3.0, 4.0], [2.0, 7.0]]).to_dict()


@pytest.mark.parametrize(
    "edit, text",
    [
        (lambda d: d.pop("counts"), "missing keys"),
        (lambda d: d.update(extra=1), "unexpected keys"),
        (lambda d: d.update(format="gaussum.GaussianSummary"), "format"),
        (lambda d: d.update(version=3), "version"),
        (lambda d: d.update(version=True), "version"),
        (lambda d: d.update(version=1.0), "version"),
        (lambda d: d.update(counts=[10**400, 1.0]), "too large for float64"),
        (lambda d: d.update(means=[[1.0, 10**400], [3.0, 4.0]]), "too large for float64"),
        (lambda d: d.update(key_dtype="object"), "key_dtype"),
        (lambda d: d.update(keys=["a", 2]), "'keys'"),
        (lambda d: d.update(keys=["b", "a"]), "distinct and sorted"),
        (lambda d: d.update(keys=["a", "a"]), "distinct and sorted"),
        (lambda d: d.update(keys=["a", "toolong"]), "longer"),
        (lambda d: d.update(shape=[0]), "'shape'"),
        (lambda d: d.update(diagonal=1), "'diagonal'"),
        (lambda d: d.update(counts=[1.0, True]), "'counts'"),
        (lambda d: d.update(counts=[1.0]), "shape"),
        (lambda d: d.update(counts=[-1.0, 1.0]), "non-negative"),
        (lambda d: d.update(means=[[1.0, 2.0], [3.0]]), "shape"),
        (lambda d: d["M2"][0][0].__setitem__(1, 5.0), "symmetric"),
        (lambda d: d["M2"][1][1].__setitem__(1, -1.0), "non-negative variances"),
        (lambda d: d.update(counts=[0.0, 1.0]), "count 0"),
        (lambda d: d["M2"][0].__setitem__(0, [0.5, 3.0]) or d["M2"][0].__setitem__(1, [3.0, 12.5]), "scatter"),
    ],
)
def test_from_dict_validates(edit, text):
    """from_dict refuses malformed dicts with a ValueError that says what is wrong."""
    data = _valid_dict()
    edit(data)
    with pytest.raises(ValueError, match=text):
        GroupedSummary.from_dict(data)


def test_from_dict_refuses_non_dicts():
    """from_dict of a list is a ValueError naming the type."""
    with pytest.raises(ValueError, match="expects a dict"):
        GroupedSummary.from_dict([1, 2])


def test_from_summaries_sorts_keys():
    """from_summaries accepts a mapping in any key order and stores the keys sorted."""
    a = GaussianSummary.from_samples([[1.0, 2.0], [2.0, 0.0]])
    b = GaussianSummary.from_samples([[5.0, 2.0]])
    g = GroupedSummary.from_summaries({"z": a, "b": b})
    assert g.keys().tolist() == ["b", "z"] and g["z"] == a and g["b"] == b
    with pytest.raises(ValueError, match="different shapes"):
        GroupedSummary.from_summaries({"a": a, "b": GaussianSummary.empty(3)})


def test_repr_is_short():
    """The repr summarises size and keys instead of printing the arrays."""
    g = GroupedSummary.from_samples(np.arange(1000) % 100, np.ones((1000, 8)))
    assert repr(g) == "GroupedSummary(groups=100, n=1_000, d=8, full, keys=[ 0,  1, ..., 98, 99])"
    s = GroupedSummary.from_samples(["a", "b"], [1.0, 2.5], [0.5, 1.0])
    assert repr(s) == "GroupedSummary(groups=2, n=1.5, d=1, scalar, keys=['a', 'b'])"


# -- one implementation shared with the core ---------------------------------------------------


def test_kernels_use_the_cores_functions():
    """Grouped and plain summaries share one combine module, one row kernel and one record."""
    from gaussum import grouped, summary

    assert grouped._combine is summary._combine is _combine
    assert grouped._kernel is summary._kernel is _kernel
    assert _kernel.two_sum is _combine.two_sum
    assert grouped.Moments is summary.Moments is _moments.Moments
    assert _kernel.nonfinite_row_error is _validate.nonfinite_row_error


@pytest.mark.parametrize("kind", ["full", "diagonal"])
def test_large_keys_are_streamed_by_the_core_bit_for_bit(rng, kind):
    """A key with many rows goes through the core's summarize_rows: it equals from_samples exactly."""
    keys = np.repeat([3, 1, 2], [5000, 40000, 3])[rng.permutation(45003)]
    # A drift along the rows makes the first block's shift far from the key's mean, so the core
    # has to re-centre: the same rows must give the same bits on both paths.
    X = 1e6 + rng.standard_normal((45003, 4)) + np.linspace(0, 50, 45003)[:, None]
    w = rng.uniform(0, 2, 45003)
    diagonal = kind == "diagonal"
    with _compiled.forced("numpy"):  # the compiled grouped kernel (gaussum[fast]) streams no key alone
        g = GroupedSummary.from_samples(keys, X, w, diagonal=diagonal)
    mask = keys == 1
    # Streamed rows take the numpy kernel (the compiled one reads arrays only): the same bits as
    # from_samples on that path, and the compiled path's result to rounding.
    with _compiled.forced("numpy"):
        assert g[1] == GaussianSummary.from_samples(X[mask], w[mask], diagonal=diagonal)
    assert g[1].isclose(GaussianSummary.from_samples(X[mask], w[mask], diagonal=diagonal), rtol=1e-12)
    for key in (2, 3):  # the keys summed in shared blocks agree to rounding
        mask = keys == key
        assert g[key].isclose(GaussianSummary.from_samples(X[mask], w[mask], diagonal=diagonal), rtol=1e-12)


def test_memory_is_bounded_with_large_keys(rng):
    """Keys streamed alone are gathered a block at a time, never copied whole (half of X each)."""
    keys = rng.integers(0, 2, 400_000)
    X = rng.standard_normal((400_000, 8))
    GroupedSummary.from_samples(keys, X)  # warm imports and caches (and the compiled kernel's load)
    tracemalloc.start()
    GroupedSummary.from_samples(keys, X)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # The permutation and key codes take about 0.6 X here; a copy of one key would add 0.5 X.
    assert peak < 0.8 * X.nbytes


@pytest.mark.parametrize("kind", ["full", "diagonal"])
def test_merge_segments_is_merge_many_per_run(rng, kind):
    """The vectorised merge of runs gives, run by run, what merge_many gives; M2 exactly symmetric."""
    p, d = 40, 3
    ns = rng.uniform(0, 5, p)
    ns[[3, 17]] = 0.0
    means = 1e6 + rng.standard_normal((p, d))
    means[[3, 17]] = 0.0
    A = rng.standard_normal((p, d, d))
    M2s = A @ A.transpose(0, 2, 1) * ns[:, None, None]
    M2s = (M2s + M2s.transpose(0, 2, 1)) / 2  # exactly symmetric, as every summary's M2 is
    if kind == "diagonal":
        M2s = np.diagonal(M2s, axis1=1, axis2=2).copy()
    starts = np.array([0, 1, 5, 6, 20, 33])
    errs = np.zeros_like(means)
    n, mean, M2, _, _ = _combine.merge_segments(ns, means, M2s, ns, errs, starts)
    for r, (a, b) in enumerate(zip(starts, [*starts[1:], p], strict=False)):
        n_r, mean_r, M2_r, _, _ = _combine.merge_many(ns[a:b], means[a:b], M2s[a:b], ns[a:b], errs[a:b])
        assert n[r] == pytest.approx(n_r, rel=4 * U)
        scale = np.sqrt(np.diagonal(M2_r) if kind == "full" else M2_r)
        np.testing.assert_array_less(np.abs(mean[r] - mean_r), 4 * U * np.abs(mean_r) + 1e-15)
        bound = np.multiply.outer(scale, scale) if kind == "full" else scale**2
        np.testing.assert_array_less(np.abs(M2[r] - M2_r), 1e-9 * bound + 1e-300)
    if kind == "full":
        assert np.array_equal(M2, M2.transpose(0, 2, 1))
        _, _, single, _, _ = _combine.merge_many(ns, means, M2s, ns, errs)
        assert np.array_equal(single, single.T)


def test_merge_many_ignores_zero_counts_whatever_they_hold():
    """A shard of count 0 adds nothing to merge_many, even with a NaN mean."""
    ns = np.array([2.0, 0.0, 3.0])
    means = np.array([[1.0], [np.nan], [2.0]])
    M2s = np.array([[[0.5]], [[0.0]], [[1.0]]])
    n, mean, M2, _, _ = _combine.merge_many(ns, means, M2s, ns, np.zeros_like(means))
    assert n == 5.0 and mean[0] == pytest.approx(1.6) and M2[0, 0] == pytest.approx(1.5 + 1.2)


# -- agreement with the core on edge cases -----------------------------------------------------


def test_nan_in_zero_weight_row_raises_like_the_core():
    """A NaN in a row of weight 0 is refused under "raise", as GaussianSummary refuses it."""
    X, w = [[np.nan, 1.0]], [0.0]
    assert _message(lambda: GroupedSummary.from_samples([5], X, w)) == _message(
        lambda: GaussianSummary.from_samples(X, w)
    )
    keys, X2, w2 = [5, 6, 6], [[1.0, 2.0], [np.nan, 1.0], [3.0, 4.0]], [0.0, 0.0, 1.0]
    assert "row 1" in _message(lambda: GroupedSummary.from_samples(keys, X2, w2))
    g = GroupedSummary.from_samples(keys, X2, w2, nan_policy="omit")
    assert g[5] == GaussianSummary.empty(2) and g[6] == GaussianSummary.from_samples([[3.0, 4.0]])
    assert GroupedSummary.from_samples([5], X, w, nan_policy="omit")[5].n == 0


def test_lookup_matches_keys_of_the_kinds_that_merge():
    """True and 1.0 are not the integer key 1 (as + refuses to merge them); signed and unsigned are."""
    g = GroupedSummary.from_samples([1, 2], [[1.0], [2.0]])
    assert 1 in g and np.uint64(2) in g and np.int8(1) in g
    for other in (True, 1.0, np.float64(1.0), "1", [1], 2**64):
        assert other not in g and g.get(other) is None
        with pytest.raises(KeyError):
            g[other]
    b = GroupedSummary.from_samples([True, False], [[1.0], [2.0]])
    assert b[True].mean.tolist() == [1.0] and 1 not in b
    u = GroupedSummary.from_samples(np.array([2**64 - 1], dtype=np.uint64), [[1.0]])
    assert 2**64 - 1 in u and -1 not in u


def test_messages_show_plain_keys():
    """Duplicate and out-of-order keys are named as Python values, not numpy reprs."""
    a = GaussianSummary.from_samples([1.0, 2.0])
    assert _message(lambda: GroupedSummary.from_summaries([("a", a), ("b", a), ("a", a)])) == (
        "from_summaries got duplicate key 'a'"
    )
    assert "duplicate key 1.5" in _message(lambda: GroupedSummary.from_summaries([(1.5, a), (np.float64(1.5), a)]))
    text = _message(lambda: GroupedSummary(["b", "a"], [1, 1], [0.0, 0.0], [0.0, 0.0]))
    assert "keys[0] = 'b' is not below keys[1] = 'a'" in text
    assert "keys[1] is nan" in _message(lambda: GroupedSummary.from_summaries([(1.0, a), (np.nan, a)]))


def test_repr_of_huge_counts_is_short():
    """Counts from 1e15 on are written in %g form, not as a long run of digits."""
    g = GroupedSummary([1, 2], [1e300, 2.0], [0.0, 1.0], [0.0, 0.0])
    assert repr(g) == "GroupedSummary(groups=2, n=1e+300, d=1, scalar, keys=[1, 2])"
    h = GroupedSummary([1], [999_999_999_999_999.0], [0.0], [0.0])
    assert "n=999_999_999_999_999," in repr(h)


def test_impossible_scatter_matrix_is_refused():
    """An M2 whose covariance exceeds sqrt(var_i var_j) for some key is refused, as by the core."""
    M2 = np.array([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 3.0], [3.0, 1.0]]])
    with pytest.raises(ValueError, match=r"not a scatter matrix: \|M2\[1, 0, 1\]\| = 3"):
        GroupedSummary([1, 2], [2.0, 2.0], np.zeros((2, 2)), M2)


def test_missing_keys_are_dropped_with_a_warning_by_default():
    """NaN, NaT and None keys are left out as groupby(dropna=True) does, counted in a warning."""
    from gaussum import MissingKeysWarning

    X = np.arange(6.0).reshape(3, 2)
    days = np.array(["2024-01-01", "NaT", "2024-01-02"], dtype="datetime64[D]")
    for keys in ([1.0, np.nan, 2.0], days, ["a", None, "b"]):
        with pytest.warns(MissingKeysWarning, match="1 of 3 rows have a missing key"):
            g = GroupedSummary.from_samples(keys, X)
        assert len(g) == 2 and g.n == 2
        assert GroupedSummary.from_samples(keys, X, dropna=True) == g
