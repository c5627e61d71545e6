"""GaussianSummary: construction, derived quantities, merging, equality and serialisation."""

from __future__ import annotations

import copy
import itertools
import json
import pickle

import numpy as np
import pytest

from gaussum import GaussianSummary


@pytest.fixture
def rng():
    return np.random.default_rng(20261124)


def assert_matches_cov(s: GaussianSummary, X: np.ndarray, rtol: float = 1e-12, **cov_kwargs) -> None:
    """The summary's covariance and mean equal numpy's on the raw rows."""
    expected = np.cov(X, rowvar=False, **cov_kwargs)
    np.testing.assert_allclose(s.covariance(), expected, rtol=rtol, atol=rtol * np.abs(expected).max())
    weights = cov_kwargs.get("fweights")
    np.testing.assert_allclose(s.mean, np.average(X, axis=0, weights=weights), rtol=rtol)


# -- from_samples ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (500, 4), (5000, 7), (3000, 300)])
def test_from_samples_matches_np_cov(rng, shape):
    """The covariance and mean of from_samples equal np.cov and np.mean on the same rows."""
    X = rng.standard_normal(shape) * rng.uniform(0.5, 3, shape[1]) + rng.uniform(-5, 5, shape[1])
    s = GaussianSummary.from_samples(X)
    assert s.n == shape[0]
    assert s.mean.shape == (shape[1],) and s.M2.shape == (shape[1], shape[1])
    if shape[0] > 1:
        assert_matches_cov(s, X)


def test_from_samples_spans_many_blocks(rng):
    """Data longer than one block gives the same result as np.cov (block merging is exact algebra)."""
    X = rng.standard_normal((70_000, 3)) + 100.0
    assert_matches_cov(GaussianSummary.from_samples(X), X)


def test_scalar_data_has_zero_dimensional_fields(rng):
    """A 1-D array is N scalar observations: mean and M2 are 0-d and variance matches np.var."""
    x = rng.standard_normal(1000) * 3 + 7
    s = GaussianSummary.from_samples(x)
    assert s.mean.shape == () and s.M2.shape == () and s.d == 1 and not s.diagonal
    assert s.variance(ddof=0) == pytest.approx(np.var(x), rel=1e-13)
    assert s.std() == pytest.approx(np.std(x, ddof=1), rel=1e-13)
    assert s.covariance().shape == ()


def test_diagonal_keeps_only_variances(rng):
    """diagonal=True keeps M2 of shape (d,), equal to the diagonal of the full M2."""
    X = rng.standard_normal((300, 5)) + 10
    full = GaussianSummary.from_samples(X)
    diag = GaussianSummary.from_samples(X, diagonal=True)
    assert diag.diagonal and diag.M2.shape == (5,)
    np.testing.assert_allclose(diag.M2, np.diagonal(full.M2), rtol=1e-14)
    np.testing.assert_allclose(diag.variance(), np.var(X, axis=0, ddof=1), rtol=1e-13)
    assert full.to_diagonal().isclose(diag, rtol=1e-14)


def test_integer_frequency_weights_match_np_cov(rng):
    """Integer weights give np.cov(fweights=w) and equal the summary of the repeated rows."""
    X = rng.standard_normal((200, 3)) + 50
    w = rng.integers(0, 5, 200)
    s = GaussianSummary.from_samples(X, weights=w)
    assert s.n == w.sum()
    assert_matches_cov(s, X, fweights=w)
    repeated = GaussianSummary.from_samples(np.repeat(X, w, axis=0))
    assert s.isclose(repeated, rtol=1e-12)


def test_fractional_weights_match_the_weighted_formulas(rng):
    """Non-integer weights give n = sum(w) and the weighted mean and scatter computed directly."""
    X = rng.standard_normal((100, 2))
    w = rng.uniform(0, 2, 100)
    s = GaussianSummary.from_samples(X, weights=w)
    mean = (w[:, None] * X).sum(0) / w.sum()
    D = X - mean
    np.testing.assert_allclose(s.n, w.sum(), rtol=1e-15)
    np.testing.assert_allclose(s.mean, mean, rtol=1e-13)
    np.testing.assert_allclose(s.M2, (D * w[:, None]).T @ D, rtol=1e-12)


def test_all_zero_weights_give_an_empty_summary(rng):
    """Rows that all carry weight zero contribute nothing."""
    s = GaussianSummary.from_samples(rng.standard_normal((10, 2)), weights=np.zeros(10))
    assert s == GaussianSummary.empty(2)


def test_no_rows_give_an_empty_summary():
    """Zero rows of d columns give the empty summary of d variables."""
    assert GaussianSummary.from_samples(np.empty((0, 3))) == GaussianSummary.empty(3)
    assert GaussianSummary.from_samples([]) == GaussianSummary.empty()


def test_any_real_dtype_is_accumulated_in_float64(rng):
    """int, uint, bool and float32 input all give float64 results equal to the float64 path."""
    X = rng.integers(-1000, 1000, (100, 3))
    expected = GaussianSummary.from_samples(X.astype(np.float64))
    for dtype in (np.int64, np.int32, np.int16, np.float32):
        s = GaussianSummary.from_samples(X.astype(dtype))
        assert s.mean.dtype == np.float64 and s.isclose(expected, rtol=1e-14)
    u = rng.integers(0, 2**20, (50, 2)).astype(np.uint64)
    assert GaussianSummary.from_samples(u).isclose(GaussianSummary.from_samples(u.astype(float)))
    b = rng.random((50, 2)) < 0.5
    assert GaussianSummary.from_samples(b).isclose(GaussianSummary.from_samples(b.astype(float)))


def test_large_integers_do_not_overflow():
    """Squares of integers near 2**40 overflow int64 but not the float64 accumulation."""
    X = np.array([[2**40], [2**40 + 2], [2**40 + 4]], dtype=np.int64)
    s = GaussianSummary.from_samples(X)
    assert s.mean.tolist() == [2.0**40 + 2]
    assert s.M2.tolist() == [[8.0]]


def test_non_contiguous_and_fortran_input(rng):
    """Strided and Fortran-ordered views give the same summary as a contiguous copy."""
    X = rng.standard_normal((400, 6))
    view = X[::3, ::2]
    expected = GaussianSummary.from_samples(np.ascontiguousarray(view))
    assert GaussianSummary.from_samples(view).isclose(expected, rtol=1e-14)
    assert GaussianSummary.from_samples(np.asfortranarray(X)).isclose(GaussianSummary.from_samples(X), rtol=1e-14)


def test_read_only_input_is_accepted(rng):
    """Read-only blocks (as Dask and Ray hand them out) are summarised, not refused."""
    X = rng.standard_normal((50, 2))
    X.setflags(write=False)
    assert GaussianSummary.from_samples(X).n == 50


def test_constant_data_gives_exactly_zero_m2_on_every_path():
    """Constant rows have M2 exactly 0 through from_samples, update, merges and merge_all."""
    X = np.full((3000, 3), 1.7e9 + 0.1)
    paths = [
        GaussianSummary.from_samples(X),
        GaussianSummary.from_samples(X, weights=np.linspace(0, 2, 3000)),
        GaussianSummary.empty(3).update(X[:7]).update(X[7]).update(X[8:]),
        GaussianSummary.from_samples(X[:1000]) + GaussianSummary.from_samples(X[1000:]),
        GaussianSummary.merge_all(GaussianSummary.from_samples(X[i : i + 300]) for i in range(0, 3000, 300)),
        GaussianSummary.from_samples(X) - GaussianSummary.from_samples(X[:1234]),
    ]
    for s in paths:
        assert not s.M2.any()
        np.testing.assert_array_equal(s.mean, X[0])


def test_m2_is_exactly_symmetric_on_every_path(rng):
    """M2 equals its transpose bit for bit, whichever path produced it."""
    X = rng.standard_normal((5000, 9)) @ rng.standard_normal((9, 9)) + 1e6
    a, b = GaussianSummary.from_samples(X[:1700]), GaussianSummary.from_samples(X[1700:])
    for s in (a + b, a.update(X[:3]), GaussianSummary.merge_all([a, b, a]), (a + b) - a,
              GaussianSummary.from_samples(X, weights=rng.uniform(size=5000))):
        np.testing.assert_array_equal(s.M2, s.M2.T)


# -- nan_policy -----------------------------------------------------------------------------


def test_nan_raises_naming_the_first_bad_row(rng):
    """A NaN under the default policy raises ValueError that names the row."""
    X = rng.standard_normal((5000, 2))
    X[3210, 1] = np.nan
    X[4000, 0] = np.inf
    with pytest.raises(ValueError, match="row 3210"):
        GaussianSummary.from_samples(X)


def test_inf_raises_even_with_zero_weight(rng):
    """A non-finite value is bad data whatever its weight."""
    X = rng.standard_normal((10, 2))
    X[4, 0] = -np.inf
    w = np.ones(10)
    w[4] = 0
    with pytest.raises(ValueError, match="row 4"):
        GaussianSummary.from_samples(X, weights=w)


def test_omit_drops_rows_with_nan_or_inf(rng):
    """nan_policy='omit' equals the summary of the finite rows only."""
    X = rng.standard_normal((70_000, 3))
    bad = rng.choice(70_000, 500, replace=False)
    X[bad, rng.integers(0, 3, 500)] = rng.choice([np.nan, np.inf, -np.inf], 500)
    finite = np.isfinite(X).all(axis=1)
    s = GaussianSummary.from_samples(X, nan_policy="omit")
    assert s.n == finite.sum()
    assert_matches_cov(s, X[finite])


def test_propagate_gives_nan(rng):
    """nan_policy='propagate' returns a summary whose statistics are NaN."""
    X = rng.standard_normal((10, 2))
    X[3, 1] = np.nan
    s = GaussianSummary.from_samples(X, nan_policy="propagate")
    assert np.isnan(s.mean[1]) and np.isnan(s.M2[1, 1])


def test_unknown_nan_policy_is_refused():
    """A misspelt policy raises rather than being ignored, on every update path too (one float
    of scalar data, one row, a batch), whether or not the values are finite."""
    with pytest.raises(ValueError, match="nan_policy must be one of"):
        GaussianSummary.from_samples([[1.0]], nan_policy="drop")
    scalar, rows = GaussianSummary.from_samples([1.0, 2.0]), GaussianSummary.from_samples([[1.0, 2.0]])
    for s, x in [(scalar, 3.0), (scalar, float("nan")), (rows, [3.0, 4.0]), (rows, [[3.0, 4.0]])]:
        with pytest.raises(ValueError, match="nan_policy must be one of"):
            s.update(x, nan_policy="drop")


def test_overflow_is_reported_not_returned_as_inf():
    """Finite values whose squares overflow give a clear error instead of an inf M2."""
    with pytest.raises(ValueError, match="overflows"):
        GaussianSummary.from_samples(np.array([[1e200], [-1e200]]))


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "X, message",
    [
        (np.array([["a", "b"]]), "must be numeric"),
        (np.ones((2, 2), dtype=complex), r"must be real, got complex dtype complex128 of shape \(2, 2\)"),
        (np.ones((2, 2, 2)), r"shape \(N,\) or \(N, d\)"),
        (np.ones((3, 0)), "at least one column"),
        ([[1.0, 2.0], [3.0]], "rectangular numeric array; row 1 has 1 value, row 0 has 2 values$"),
        ([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0, 7.0]], "; row 2 has 3 values, row 0 has 2 values$"),
        ([1.0, [2.0, 3.0]], "; row 1 has 2 values, row 0 has a single value$"),
        (np.array([object(), object()]), "must be numeric"),
    ],
)
def test_bad_data_is_refused(X, message):
    """Non-numeric, complex, wrongly shaped or ragged data raises ValueError naming the problem."""
    with pytest.raises(ValueError, match=message):
        GaussianSummary.from_samples(X)


@pytest.mark.parametrize(
    "weights, message",
    [
        ([1.0, -1.0, 1.0], r"weights\[1\] is -1.0"),
        ([1.0, np.nan, 1.0], r"weights\[1\] is nan"),
        ([np.inf, 1.0, 1.0], r"weights\[0\] is inf"),
        ([1.0, 1.0], r"shape \(3,\)"),
    ],
)
def test_bad_weights_are_refused(weights, message):
    """Negative, non-finite or mis-sized weights raise ValueError naming the first bad one."""
    with pytest.raises(ValueError, match=message):
        GaussianSummary.from_samples(np.ones((3, 2)), weights=weights)


def test_merging_different_widths_names_both_shapes():
    """Merging d=3 with d=4 raises ValueError that names both shapes."""
    a, b = GaussianSummary.empty(3), GaussianSummary.empty(4)
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        a + b
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        GaussianSummary.merge_all([a, b])


def test_merging_full_with_diagonal_says_what_to_do():
    """A full and a diagonal summary do not merge silently; the error suggests to_diagonal()."""
    with pytest.raises(ValueError, match="to_diagonal"):
        GaussianSummary.empty(2) + GaussianSummary.empty(2, diagonal=True)


def test_adding_a_non_summary_is_a_type_error():
    """`s + 1.0` and `s + array` are TypeErrors, as Python raises for unsupported operands."""
    s = GaussianSummary.empty(2)
    with pytest.raises(TypeError):
        s + 1.0
    with pytest.raises(TypeError):
        s - "x"


def test_update_with_the_wrong_width_is_refused():
    """Updating a d=3 summary with a row of 4 or a batch of 2 columns names the shapes."""
    s = GaussianSummary.empty(3)
    with pytest.raises(ValueError, match=r"got \(4,\)"):
        s.update([1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match=r"got \(5, 2\)"):
        s.update(np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"got \(2, 2, 3\)"):
        s.update(np.ones((2, 2, 3)))
    with pytest.raises(ValueError, match="must be numeric"):
        s.update(["a", "b", "c"])


@pytest.mark.parametrize(
    "n, mean, M2, message",
    [
        (-1, [0.0], [[0.0]], "n must be finite and non-negative"),
        (np.nan, [0.0], [[0.0]], "n must be finite"),
        (True, [0.0], [[0.0]], "n must be a real number"),
        ("3", [0.0], [[0.0]], "n must be a real number"),
        (3, [np.nan], [[1.0]], r"mean must be finite; mean\[0\] is nan"),
        (3, [0.0], [[np.inf]], "M2 must be finite"),
        (3, [0.0, 0.0], [[1.0, 0.5], [0.2, 1.0]], "M2 must be symmetric"),
        (3, [0.0, 0.0], [[-1.0, 0.0], [0.0, 1.0]], "non-negative diagonal"),
        (3, [0.0, 0.0], [[1.0, 0.0, 0.0]], r"M2 must have shape \(2,\) or \(2, 2\)"),
        (0, [1.0], [[0.0]], "n == 0"),
        (3, [[0.0]], [[0.0]], "mean must have shape"),
        (3, [], [], "at least one variable"),
    ],
)
def test_direct_construction_is_validated(n, mean, M2, message):
    """GaussianSummary(n, mean, M2) refuses values that describe no data set."""
    with pytest.raises(ValueError, match=message):
        GaussianSummary(n, mean, M2)


def test_tiny_asymmetry_from_blas_is_symmetrised():
    """An M2 asymmetric only at rounding level (as X.T @ X may be) is accepted, made symmetric."""
    M2 = np.array([[2.0, 1.0], [1.0 + 1e-16, 3.0]])
    s = GaussianSummary(5, [0.0, 0.0], M2)
    np.testing.assert_array_equal(s.M2, s.M2.T)


# -- derived quantities ---------------------------------------------------------------------


def test_ddof_follows_numpy(rng):
    """covariance(ddof) equals np.cov(ddof=...) for ddof 0, 1 and 2."""
    X = rng.standard_normal((30, 3))
    s = GaussianSummary.from_samples(X)
    for ddof in (0, 1, 2):
        np.testing.assert_allclose(s.covariance(ddof), np.cov(X, rowvar=False, ddof=ddof), rtol=1e-13)
        np.testing.assert_allclose(s.variance(ddof), np.var(X, axis=0, ddof=ddof), rtol=1e-13)
        np.testing.assert_allclose(s.std(ddof), np.std(X, axis=0, ddof=ddof), rtol=1e-13)


def test_too_few_degrees_of_freedom_warn_like_numpy():
    """n <= ddof gives NaN or inf with a RuntimeWarning, as np.cov does, not an exception."""
    one = GaussianSummary.from_samples([[1.0, 2.0]])
    with pytest.warns(RuntimeWarning, match="degrees of freedom"):
        cov = one.covariance()
    with pytest.warns(RuntimeWarning):
        expected = np.cov(np.array([[1.0, 2.0]]), rowvar=False)
    np.testing.assert_array_equal(np.isnan(cov), np.isnan(expected))
    with pytest.warns(RuntimeWarning, match="degrees of freedom"):
        assert np.isnan(GaussianSummary.empty().variance()).all()
    with pytest.warns(RuntimeWarning, match="degrees of freedom"):
        assert np.isnan(one.std()).all()


def test_correlation_matches_corrcoef(rng):
    """correlation() equals np.corrcoef on the raw rows, with an exact unit diagonal."""
    X = rng.standard_normal((400, 4)) @ rng.standard_normal((4, 4)) + 3
    corr = GaussianSummary.from_samples(X).correlation()
    np.testing.assert_allclose(corr, np.corrcoef(X, rowvar=False), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(np.diagonal(corr), 1.0)


def test_correlation_of_a_constant_column_is_nan_with_a_warning():
    """A zero-variance variable has an undefined correlation: NaN and a RuntimeWarning."""
    X = np.array([[1.0, 5.0], [2.0, 5.0], [4.0, 5.0]])
    with pytest.warns(RuntimeWarning, match="zero variance"):
        corr = GaussianSummary.from_samples(X).correlation()
    assert corr[0, 0] == 1.0 and np.isnan(corr[1]).all()


def test_correlation_of_a_diagonal_summary_is_an_error():
    """A diagonal summary has no covariances, so correlation() raises ValueError."""
    with pytest.raises(ValueError, match="diagonal"):
        GaussianSummary.from_samples(np.ones((3, 2)), diagonal=True).correlation()


# -- merging --------------------------------------------------------------------------------


def test_empty_is_an_exact_identity(rng):
    """e + s and s + e are s, bit for bit, for full, diagonal and scalar summaries."""
    X = rng.standard_normal((20, 3)) + 1e6
    for s, e in [
        (GaussianSummary.from_samples(X), GaussianSummary.empty(3)),
        (GaussianSummary.from_samples(X, diagonal=True), GaussianSummary.empty(3, diagonal=True)),
        (GaussianSummary.from_samples(X[:, 0]), GaussianSummary.empty()),
    ]:
        assert e + s == s and s + e == s and e + e == e


def test_merge_of_two_groups_matches_np_cov_of_the_concatenation(rng):
    """The classic question: two groups' summaries merge to the pooled sample's statistics."""
    A = rng.standard_normal((300, 3)) * [1, 2, 3] + [0, 10, -5]
    B = rng.standard_normal((120, 3)) * [2, 1, 1] + [4, 0, 0]
    pooled = GaussianSummary.from_samples(A) + GaussianSummary.from_samples(B)
    assert_matches_cov(pooled, np.vstack([A, B]))


def test_merge_is_exactly_commutative(rng):
    """a + b == b + a bit for bit, including equal counts."""
    X = rng.standard_normal((40, 2)) + 1e6
    a, b, c = (GaussianSummary.from_samples(X[i : i + 20]) for i in (0, 20, 10))
    assert a + b == b + a and a + c == c + a


def test_builtin_sum_and_merge_all_agree_with_the_whole(rng):
    """sum(parts) and merge_all(parts) equal from_samples on all rows, within rounding."""
    X = rng.standard_normal((1000, 4)) + 1e3
    parts = [GaussianSummary.from_samples(X[i : i + 37]) for i in range(0, 1000, 37)]
    whole = GaussianSummary.from_samples(X)
    assert sum(parts).isclose(whole, rtol=1e-12)
    assert GaussianSummary.merge_all(parts).isclose(whole, rtol=1e-12)
    assert GaussianSummary.merge_all(iter(parts)).isclose(whole, rtol=1e-12)


def test_merge_all_of_nothing_is_an_error():
    """merge_all([]) cannot know the dimension, so it raises ValueError."""
    with pytest.raises(ValueError, match="at least one"):
        GaussianSummary.merge_all([])
    with pytest.raises(TypeError, match="item 1"):
        GaussianSummary.merge_all([GaussianSummary.empty(1), 3.0])


@pytest.mark.parametrize(
    "left, right",
    [
        (GaussianSummary.empty(), GaussianSummary.empty(1)),  # () against (1,): equal packed sizes
        (GaussianSummary.empty(1), GaussianSummary.empty(1, diagonal=True)),  # M2 (1, 1) against (1,)
        (GaussianSummary.empty(3), GaussianSummary.empty(5, diagonal=True)),
        (GaussianSummary.empty(64), GaussianSummary.empty(63)),  # packed against not
    ],
)
def test_merge_all_refuses_summaries_of_different_shapes(left, right):
    """merge_all names both shapes for any mix of shapes, in any order, among many items."""
    for items in ([left, right], [right, left], [left] * 5 + [right] + [left] * 5):
        with pytest.raises(ValueError, match="different shapes"):
            GaussianSummary.merge_all(items)


@pytest.mark.parametrize("d", [1, 4, 89, 90, 120])
def test_merge_all_at_either_side_of_the_packing_limit(rng, d):
    """Small summaries keep their fields in one buffer, large ones in three arrays: merge_all of
    shards (built, merged, row-updated, reordered) equals np.cov of the rows on both sides, and
    every field stays read-only for good."""
    X = rng.standard_normal((3 * d + 60, d)) * 2.0 + 5.0
    cuts = [0, d + 1, 2 * d + 7, 3 * d + 20, X.shape[0]]
    shards = [GaussianSummary.from_samples(X[a:b]) for a, b in itertools.pairwise(cuts)]
    grown = shards[-1]
    for row in X[-3:]:
        grown = grown.update(row)
    items = [*shards, shards[0] + shards[1], grown]
    rows = np.concatenate([X, X[: cuts[2]], X[cuts[3] :], X[-3:]])
    merged = GaussianSummary.merge_all(items)
    assert (shards[0]._fields is None) == (d >= 90)  # the limit: 2 d + d**2 <= 2**13 floats
    assert merged.n == rows.shape[0]
    np.testing.assert_allclose(merged.mean, rows.mean(axis=0), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(merged.covariance(), np.cov(rows, rowvar=False), rtol=1e-10, atol=1e-12)
    assert GaussianSummary.merge_all(items[::-1]).isclose(merged, rtol=1e-12)
    for s in [*items, merged]:
        for field in (s.mean, s.mean_error, s.M2):
            with pytest.raises(ValueError):
                field.setflags(write=True)
            with pytest.raises(ValueError, match="read-only"):
                field[...] = 0.0


def test_merge_all_ignores_empty_shards(rng):
    """Empty shards among the inputs change nothing."""
    X = rng.standard_normal((50, 2))
    s = GaussianSummary.from_samples(X)
    assert GaussianSummary.merge_all([GaussianSummary.empty(2), s, GaussianSummary.empty(2)]) == s
    assert GaussianSummary.merge_all([GaussianSummary.empty(2)] * 3) == GaussianSummary.empty(2)


def test_update_one_row_at_a_time_equals_from_samples(rng):
    """Adding rows one by one (Welford) gives from_samples' result within rounding."""
    X = rng.standard_normal((500, 3)) + 1e6
    s = GaussianSummary.empty(3)
    for row in X:
        s = s.update(row)
    assert s.isclose(GaussianSummary.from_samples(X), rtol=1e-9)
    x = X[:, 0]
    t = GaussianSummary.empty()
    for value in x.tolist():
        t = t.update(value)
    assert t.isclose(GaussianSummary.from_samples(x), rtol=1e-9)


def test_update_with_weights_and_nan_policy(rng):
    """update honours weights (one or per row) and nan_policy, as from_samples does."""
    X = rng.standard_normal((10, 2))
    w = rng.uniform(0, 3, 10)
    s = GaussianSummary.empty(2).update(X[:4], weights=w[:4])
    for row, weight in zip(X[4:], w[4:], strict=False):
        s = s.update(row, weights=weight)
    assert s.isclose(GaussianSummary.from_samples(X, weights=w), rtol=1e-12)
    bad = np.array([np.nan, 1.0])
    with pytest.raises(ValueError, match="non-finite"):
        s.update(bad)
    assert s.update(bad, nan_policy="omit") == s
    assert np.isnan(s.update(bad, nan_policy="propagate").mean[0])
    with pytest.raises(ValueError, match="weights must be finite"):
        s.update(X[0], weights=-1.0)


def test_subtraction_inverts_addition(rng):
    """(a + b) - b recovers a, and removing everything gives the empty summary."""
    X = rng.standard_normal((600, 3)) + 10
    a, b = GaussianSummary.from_samples(X[:400]), GaussianSummary.from_samples(X[400:])
    assert ((a + b) - b).isclose(a, rtol=1e-11)
    assert (a - a) == GaussianSummary.empty(3)
    assert ((a + b) - a - b).n == 0


def test_removing_more_than_there_is_raises(rng):
    """u - t with t.n > u.n is a ValueError."""
    small = GaussianSummary.from_samples(rng.standard_normal((3, 2)))
    big = GaussianSummary.from_samples(rng.standard_normal((5, 2)))
    with pytest.raises(ValueError, match="n=5 from one of n=3"):
        small - big


def test_subtraction_never_leaves_a_negative_variance():
    """Cancellation in u - t clips variances at zero instead of going negative."""
    X = np.array([[1e8, 1.0], [1e8 + 1e-7, 2.0], [1e8 + 3e-7, 0.5]])
    u = GaussianSummary.from_samples(X)
    r = u - GaussianSummary.from_samples(X[1:])
    assert (np.diagonal(r.M2) >= 0).all()


# -- from_moments ---------------------------------------------------------------------------


def test_from_moments_round_trips_reported_statistics(rng):
    """from_moments(n, mean, cov) inverts covariance(ddof) for full, diagonal and scalar data."""
    X = rng.standard_normal((80, 3)) + 5
    s = GaussianSummary.from_samples(X)
    for ddof in (0, 1):
        assert GaussianSummary.from_moments(80, s.mean, s.covariance(ddof), ddof=ddof).isclose(s, rtol=1e-14)
    diag = GaussianSummary.from_moments(80, s.mean, s.variance())
    assert diag.diagonal and diag.isclose(s.to_diagonal(), rtol=1e-14)
    scalar = GaussianSummary.from_moments(80, 2.0, 4.0)
    assert scalar.M2.shape == () and float(scalar.M2) == 316.0


def test_from_moments_of_two_groups_gives_the_pooled_statistics(rng):
    """Pooling groups known only by (n, mean, cov) gives np.cov of the concatenated rows."""
    A, B = rng.standard_normal((50, 2)) + 3, rng.standard_normal((70, 2)) * 2
    a = GaussianSummary.from_moments(50, A.mean(0), np.cov(A, rowvar=False))
    b = GaussianSummary.from_moments(70, B.mean(0), np.cov(B, rowvar=False))
    assert_matches_cov(a + b, np.vstack([A, B]), rtol=1e-12)


def test_from_moments_validates():
    """Negative variances, asymmetric covariances and no degrees of freedom are refused."""
    with pytest.raises(ValueError, match="cov must have non-negative diagonal"):
        GaussianSummary.from_moments(10, [0.0, 0.0], [1.0, -2.0])
    with pytest.raises(ValueError, match="cov must be symmetric"):
        GaussianSummary.from_moments(10, [0.0, 0.0], [[1.0, 0.5], [0.1, 1.0]])
    with pytest.raises(ValueError, match="no degrees of freedom"):
        GaussianSummary.from_moments(2, [0.0], [1.0], ddof=2)
    with pytest.raises(ValueError, match=r"shape \(\)"):
        GaussianSummary.from_moments(10, 1.0, [1.0])


def test_from_moments_of_one_observation_has_zero_m2():
    """With n == 1 the covariance is undefined (often NaN) and M2 is zero whatever it holds."""
    s = GaussianSummary.from_moments(1, [3.0, 4.0], [[np.nan, np.nan], [np.nan, np.nan]])
    assert s == GaussianSummary.from_samples([[3.0, 4.0]])


# -- equality, hashing, immutability, serialisation ----------------------------------------


def test_equality_is_exact_and_hash_is_consistent():
    """== compares values exactly; 0.0 and -0.0 are equal and hash alike."""
    a = GaussianSummary(2, [0.0, 1.0], [[1.0, 0.0], [0.0, 1.0]])
    b = GaussianSummary(2, [-0.0, 1.0], [[1.0, -0.0], [-0.0, 1.0]])
    c = GaussianSummary(2, [0.0, 1.0 + 2**-52], [[1.0, 0.0], [0.0, 1.0]])
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != c
    assert a != a.to_diagonal()
    assert (a == "a") is False


def test_fields_are_read_only_copies(rng):
    """The value copies its inputs and marks its arrays read-only; the caller's stay writeable."""
    mean, M2 = np.zeros(2), np.eye(2)
    s = GaussianSummary(3, mean, M2)
    mean[0] = 99.0
    assert s.mean[0] == 0.0 and M2.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        s.mean[0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        s.M2[0, 0] = 1.0
    with pytest.raises(AttributeError):
        s.n = 4


def test_no_call_mutates_its_input(rng):
    """from_samples and update leave the caller's data and weights untouched."""
    X = rng.standard_normal((3000, 3)) + 1e6
    w = rng.uniform(size=3000)
    X0, w0 = X.copy(), w.copy()
    s = GaussianSummary.from_samples(X, weights=w)
    s.update(X, weights=w)
    s.update(X[0])
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(w, w0)
    assert X.flags.writeable


@pytest.mark.parametrize(
    "make",
    [
        lambda: copy.copy,
        lambda: copy.deepcopy,
        lambda: (lambda s: pickle.loads(pickle.dumps(s))),
        lambda: (lambda s: pickle.loads(pickle.dumps(s, protocol=2))),
    ],
    ids=["copy", "deepcopy", "pickle", "pickle-2"],
)
@pytest.mark.parametrize("kind", ["full", "diagonal", "scalar", "empty"])
def test_round_trips_keep_values_and_read_only_arrays(rng, make, kind):
    """copy, deepcopy and pickle give an equal summary whose arrays are still read-only."""
    X = rng.standard_normal((10, 3))
    s = {
        "full": GaussianSummary.from_samples(X),
        "diagonal": GaussianSummary.from_samples(X, diagonal=True),
        "scalar": GaussianSummary.from_samples(X[:, 0]),
        "empty": GaussianSummary.empty(3),
    }[kind]
    t = make()(s)
    assert t == s and type(t) is GaussianSummary
    assert not t.mean.flags.writeable and not t.M2.flags.writeable


@pytest.mark.parametrize("kind", ["full", "diagonal", "scalar"])
def test_to_dict_round_trips_exactly_through_json(rng, kind):
    """to_dict -> json -> from_dict gives back an equal summary, bit for bit."""
    X = rng.standard_normal((10, 3)) * 1e-3 + 1.7e9
    s = {
        "full": GaussianSummary.from_samples(X),
        "diagonal": GaussianSummary.from_samples(X, diagonal=True),
        "scalar": GaussianSummary.from_samples(X[:, 0], weights=rng.uniform(size=10)),
    }[kind]
    t = GaussianSummary.from_dict(json.loads(json.dumps(s.to_dict())))
    assert t == s


def _valid_dict() -> dict:
    return GaussianSummary.from_samples([[1.0, 2.0], [2.0, 3.5], [0.0, 1.0]]).to_dict()


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.pop("M2"), "missing keys"),
        (lambda d: d.update(extra=1), "unexpected keys"),
        (lambda d: d.update(version=99), "version 99"),
        (lambda d: d.update(version=True), "version True"),
        (lambda d: d.update(format="other"), "format"),
        (lambda d: d.update(n=-3), "n must be finite and non-negative"),
        (lambda d: d.update(n="3"), "'n' must be a number"),
        (lambda d: d.update(n=[3]), "'n' must be a number"),
        (lambda d: d.update(mean=["1", 2.0]), "'mean' must hold numbers"),
        (lambda d: d.update(mean=[True, 2.0]), "'mean' must hold numbers"),
        (lambda d: d.update(mean=[1.0]), "M2 must have shape"),
        (lambda d: d.update(mean=[float("nan"), 1.0]), "mean must be finite"),
        (lambda d: d["M2"][0].__setitem__(1, 123.0), "M2 must be symmetric"),
        (lambda d: d["M2"][0].__setitem__(0, -1.0), "non-negative diagonal"),
        (lambda d: d.update(version=1.0), "version 1.0"),
        (lambda d: d.update(n=10**400), "too large for float64"),
        (lambda d: d.update(mean=[10**400, 1.0]), "too large for float64"),
        (lambda d: d.update(M2=[[1.0, 5.0], [5.0, 1.0]]), "not a scatter matrix"),
    ],
)
def test_from_dict_refuses_corrupt_input(edit, message):
    """A hand-edited or corrupt dict raises ValueError saying what is wrong."""
    data = _valid_dict()
    edit(data)
    with pytest.raises(ValueError, match=message):
        GaussianSummary.from_dict(data)


def test_from_dict_refuses_non_dicts():
    """A list or a string is not a summary."""
    with pytest.raises(ValueError, match="expects a dict"):
        GaussianSummary.from_dict([1, 2])


def test_repr_is_exact_for_small_and_short_for_large():
    """Small summaries show their numbers; large ones a one-line synopsis."""
    s = GaussianSummary.from_samples([[1.0, 2.0], [3.0, 5.0]])
    assert repr(s) == "GaussianSummary(n=2, mean=[2. , 3.5], M2=[[2. , 3. ], [3. , 4.5]])"
    big = GaussianSummary.empty(1000).update(np.arange(1000.0))
    text = repr(big)
    assert text.startswith("GaussianSummary(n=1, d=1000, full, mean=[") and len(text) < 120
    assert repr(GaussianSummary.empty()) == "GaussianSummary(n=0, mean=0., M2=0.)"
    weighted = GaussianSummary.from_samples([1.0, 2.0], weights=[0.5, 0.25])
    assert repr(weighted).startswith("GaussianSummary(n=0.75, ")


def test_empty_validates_its_dimension():
    """empty(d) needs a positive integer (or None for scalar data)."""
    for bad in (0, -2, 2.5, True, "3"):
        with pytest.raises(ValueError, match="positive integer"):
            GaussianSummary.empty(bad)


def test_isclose_uses_the_scale_of_the_data():
    """isclose tolerates rounding relative to the spread, not to an absolute zero."""
    a = GaussianSummary(10, [1e9, 0.0], [[9.0, 0.0], [0.0, 9.0]])
    b = GaussianSummary(10, [1e9 + 1e-6, 1e-12], [[9.0, 1e-12], [1e-12, 9.0]])
    assert a.isclose(b) and not a.isclose(GaussianSummary(11, a.mean, a.M2))
    assert not a.isclose(GaussianSummary(10, [1e9, 0.1], a.M2))
    assert not a.isclose(a.to_diagonal())
    with pytest.raises(TypeError):
        a.isclose(3)


# -- edge cases found in review -------------------------------------------------------------


def test_from_moments_keeps_spread_with_fractional_weights():
    """n <= 1 from fractional weights still has a spread, which from_moments must not drop."""
    s = GaussianSummary.from_samples([0.0, 2.0], weights=[0.5, 0.5])
    assert s.n == 1.0 and float(s.M2) == 1.0
    back = GaussianSummary.from_moments(s.n, s.mean, s.covariance(ddof=0), ddof=0)
    assert back == s


def test_removing_every_fractional_part_leaves_the_empty_summary():
    """Rounding in n after subtracting all parts must not leave a ghost summary with a mean."""
    a = GaussianSummary.from_samples([1.0], weights=[0.1])
    b = GaussianSummary.from_samples([5.0], weights=[0.2])
    c = GaussianSummary.from_samples([9.0], weights=[0.3])
    assert (a + b) - a - b == GaussianSummary.empty()
    assert (a + b + c) - c - b - a == GaussianSummary.empty()


def test_huge_counts_merge_without_overflow():
    """Counts near 1e300 merge to a finite M2 equal to the k-way result."""
    a = GaussianSummary.from_samples([[1.0], [3.0]], weights=[1e300, 1e300])
    b = GaussianSummary.from_samples([[5.0], [5.0]], weights=[1e300, 1e300])
    merged = a + b
    assert np.isfinite(merged.M2).all()
    assert merged.isclose(GaussianSummary.merge_all([a, b]), rtol=1e-12)
    assert np.isfinite(a.update([5.0], weights=1e300).M2).all()
    assert repr(merged).startswith("GaussianSummary(n=4e+300, ")


def test_scaling_that_overflows_is_refused():
    """scaled() never returns an infinite n or M2."""
    s = GaussianSummary.from_samples([1.0, 2.0], weights=[1e300, 1e300])
    with pytest.raises(ValueError, match="overflows"):
        s.scaled(1e300)


def test_an_impossible_scatter_matrix_is_refused():
    """|M2_ij| > sqrt(M2_ii M2_jj) describes no data set (Cauchy-Schwarz)."""
    with pytest.raises(ValueError, match="not a scatter matrix"):
        GaussianSummary(3, [0.0, 0.0], [[1.0, 5.0], [5.0, 1.0]])
    with pytest.raises(ValueError, match="not a scatter matrix"):
        GaussianSummary.from_moments(3, [0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]])


def test_subtraction_results_serialise(rng):
    """A summary left by heavy cancellation still round-trips through to_dict/from_dict."""
    X = rng.standard_normal((1000, 3)) @ np.array([[1, 1, 0], [0, 1e-8, 0], [0, 0, 1.0]]) + 1e8
    r = GaussianSummary.from_samples(X) - GaussianSummary.from_samples(X[2:])
    assert GaussianSummary.from_dict(json.loads(json.dumps(r.to_dict()))) == r


def test_scalar_update_accepts_numpy_scalars_and_0d_arrays():
    """update on scalar data takes Python floats, numpy scalars and 0-d arrays alike."""
    e = GaussianSummary.empty()
    a = e.update(2.0).update(np.float64(3.0)).update(np.array(7.0)).update(np.int64(4))
    assert a.isclose(GaussianSummary.from_samples([2.0, 3.0, 7.0, 4.0]), rtol=1e-15)
    assert a.update(np.array(np.inf), nan_policy="omit") == a
    with pytest.raises(ValueError, match="non-finite"):
        a.update(float("nan"))


def test_merges_that_overflow_raise_instead_of_returning_inf():
    """Merging finite summaries whose sums of squares pass float64's range is an error, not inf."""
    a = GaussianSummary.from_samples(np.array([[1e153], [-1e153]]))
    with pytest.raises(ValueError, match="overflows float64"):
        for _ in range(8):
            a = a + a
    b = GaussianSummary.from_samples(np.array([[1e154]]))
    c = GaussianSummary.from_samples(np.array([[-1e154]]))
    with pytest.raises(ValueError, match="overflows float64"):
        b + c
    with pytest.raises(ValueError, match="overflows float64"):
        GaussianSummary.merge_all([b, c])
    with pytest.raises(ValueError, match="overflows float64"):
        b.update(np.array([[-1e154]]))


def test_nan_summaries_still_merge_under_propagate():
    """A NaN summary made by nan_policy='propagate' merges to NaN without an overflow error."""
    s = GaussianSummary.from_samples([[1.0], [np.nan]], nan_policy="propagate")
    t = GaussianSummary.from_samples([[2.0], [3.0]])
    assert np.isnan((s + t).mean).all()
    assert np.isnan(t.update([[np.nan]], nan_policy="propagate").M2).all()
