"""Properties of the combine rule over any data, split, order, offset and scale (hypothesis)."""

from __future__ import annotations

import itertools
import json
import pickle

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from _paths import kernel_path  # noqa: F401 - every test runs on the numpy and the compiled path
from gaussum import GaussianSummary
from strategies import datasets, splits, tolerance

# Example counts and deadline: the hypothesis profiles of tests/conftest.py ("dev" locally, "ci" in CI).


def shards_of(X: np.ndarray, cuts: list[int]) -> list[GaussianSummary]:
    d = None if X.ndim == 1 else X.shape[1]
    return [
        GaussianSummary.from_samples(X[a:b]) if b > a else GaussianSummary.empty(d)
        for a, b in itertools.pairwise(cuts)
    ]


@given(data=st.data(), X=datasets())
def test_any_split_in_any_order_gives_the_whole(data, X):
    """Shards merged in a random order (fold, sum, merge_all) equal from_samples of all rows."""
    whole = GaussianSummary.from_samples(X)
    shards = shards_of(X, data.draw(splits(len(X))))
    order = data.draw(st.permutations(range(len(shards))))
    total = shards[order[0]]
    for i in order[1:]:
        total = total + shards[i]
    tol = tolerance(X)
    assert total.n == whole.n
    assert total.isclose(whole, rtol=tol)
    assert GaussianSummary.merge_all(shards[i] for i in order).isclose(whole, rtol=tol)


@given(X=datasets(min_rows=3), data=st.data())
def test_merge_is_commutative_and_associative(X, data):
    """a + b == b + a exactly; (a + b) + c equals a + (b + c) within rounding."""
    i, j = sorted(data.draw(st.lists(st.integers(1, len(X) - 1), min_size=2, max_size=2)))
    a, b, c = shards_of(X, [0, i, j, len(X)])
    assert a + b == b + a
    assert ((a + b) + c).isclose(a + (b + c), rtol=tolerance(X))


@given(X=datasets())
def test_empty_is_an_identity(X):
    """The empty summary is a two-sided identity, bit for bit."""
    s = GaussianSummary.from_samples(X)
    e = GaussianSummary.empty(None if X.ndim == 1 else X.shape[1])
    assert e + s == s and s + e == s


@given(X=datasets(max_rows=30))
def test_update_row_by_row_equals_from_samples(X):
    """Welford's one-row updates agree with the block kernel."""
    s = GaussianSummary.empty(None if X.ndim == 1 else X.shape[1])
    for row in X:
        s = s.update(row)
    assert s.isclose(GaussianSummary.from_samples(X), rtol=tolerance(X))


@given(X=datasets(max_rows=30), seed=st.integers(0, 2**16))
def test_integer_weights_equal_repetition(X, seed):
    """Frequency weight k on a row is the same as k copies of it."""
    w = np.random.default_rng(seed).integers(0, 4, len(X))
    weighted = GaussianSummary.from_samples(X, weights=w)
    repeated = GaussianSummary.from_samples(np.repeat(X, w, axis=0))
    assert weighted.n == repeated.n == w.sum()
    if w.sum():
        assert weighted.isclose(repeated, rtol=tolerance(X))


@given(X=datasets(min_rows=2), data=st.data())
def test_subtraction_inverts_addition(X, data):
    """(a + b) - b recovers a, to a tolerance that grows with the share removed."""
    i = data.draw(st.integers(1, len(X) - 1))
    a, b = shards_of(X, [0, i, len(X)])
    u = a + b
    r = u - b
    # Cancellation error is relative to what was there before removal, not to what is left.
    tol = tolerance(X) * len(X) / i * 4
    spread = np.sqrt(np.max(u.variance(ddof=0)))
    assert r.n == a.n
    assert np.allclose(r.mean, a.mean, rtol=0, atol=tol * max(spread, np.abs(u.mean).max()))
    assert np.allclose(r.M2, a.M2, rtol=0, atol=tol * np.max(np.abs(u.M2)) + 1e-300)


@given(X=datasets(), diagonal=st.booleans())
def test_serialisation_round_trips_exactly(X, diagonal):
    """to_dict through JSON, and pickle, give back the same summary bit for bit."""
    s = GaussianSummary.from_samples(X, diagonal=diagonal)
    assert GaussianSummary.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert pickle.loads(pickle.dumps(s)) == s


@given(X=datasets(min_rows=2))
def test_m2_is_symmetric_with_non_negative_diagonal(X):
    """Every merged M2 is exactly symmetric and no variance is negative."""
    half = len(X) // 2
    s = GaussianSummary.from_samples(X[:half]) + GaussianSummary.from_samples(X[half:])
    if s.M2.ndim == 2:
        assert np.array_equal(s.M2, s.M2.T)
        assert (np.diagonal(s.M2) >= 0).all()
    else:
        assert (s.M2 >= 0).all()


@given(X=datasets(min_rows=2), seed=st.integers(0, 2**16), diagonal=st.booleans(), data=st.data())
def test_fractional_weights_split_and_round_trip(X, seed, diagonal, data):
    """With fractional weights: halves merge to the whole, from_moments inverts covariance, and
    removing every part leaves the empty summary."""
    w = np.random.default_rng(seed).uniform(0.01, 2.0, len(X))
    i = data.draw(st.integers(1, len(X) - 1))
    a = GaussianSummary.from_samples(X[:i], weights=w[:i], diagonal=diagonal)
    b = GaussianSummary.from_samples(X[i:], weights=w[i:], diagonal=diagonal)
    whole = GaussianSummary.from_samples(X, weights=w, diagonal=diagonal)
    assert (a + b).isclose(whole, rtol=tolerance(X))
    for ddof in (0, 1):
        if whole.n > ddof:
            back = GaussianSummary.from_moments(whole.n, whole.mean, whole.covariance(ddof), ddof=ddof)
            assert back.isclose(whole, rtol=tolerance(X))
    empty = GaussianSummary.empty(None if X.ndim == 1 else X.shape[1], diagonal=diagonal and X.ndim == 2)
    assert (a + b) - (a + b) == empty
    # Removing a part recovers the rest to within the rounding of the total's n (u * (na + nb)),
    # which relative to the rest grows as the rest shrinks; a chain a + b - a - b therefore need
    # not come out exactly empty with fractional counts (the unit tests cover the common case).
    rest = (a + b) - a
    assert abs(rest.n - b.n) <= 4 * np.finfo(float).eps * (a.n + b.n)
