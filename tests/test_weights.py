"""Frequency and reliability weights: every path against np.cov(fweights=, aweights=) on the raw rows."""

from __future__ import annotations

import itertools
import json
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _paths import kernel_path  # noqa: F401 - every test runs on the numpy and the compiled path
from gaussum import GaussianSummary, GroupedSummary
from strategies import datasets, splits, tolerance

KINDS = ("fweights", "aweights", "both")


def draw_weights(rng: np.random.Generator, n: int, kind: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(frequency, reliability) weights of `kind`; integers for frequency weights, as np.cov needs."""
    f = rng.integers(0, 4, n).astype(float) if kind in ("fweights", "both") else None
    a = rng.uniform(0.05, 3.0, n) if kind in ("aweights", "both") else None
    if f is not None and f.sum() == 0:
        f[0] = 1.0
    return f, a


def numpy_cov(X: np.ndarray, f: np.ndarray | None, a: np.ndarray | None, ddof: int) -> np.ndarray:
    fi = None if f is None else f.astype(np.int64)
    return np.cov(X, rowvar=False, ddof=ddof, fweights=fi, aweights=a).reshape(X.shape[1], X.shape[1])


def close_to_cov(s: GaussianSummary, X: np.ndarray, f, a, ddof: int, rtol: float) -> None:
    expected = numpy_cov(X, f, a, ddof)
    scale = np.sqrt(np.outer(np.diag(expected), np.diag(expected)))
    got = s.covariance(ddof).reshape(expected.shape) if s.M2.ndim else np.atleast_2d(s.covariance(ddof))
    np.testing.assert_array_less(np.abs(got - expected), rtol * scale + 1e-300)


def parts(X, f, a, cuts):
    """Summaries of the rows between consecutive cuts, with their weights."""
    d = X.shape[1]
    out = []
    for lo, hi in itertools.pairwise(cuts):
        if hi == lo:
            out.append(GaussianSummary.empty(d))
            continue
        out.append(GaussianSummary.from_samples(
            X[lo:hi], None if f is None else f[lo:hi], aweights=None if a is None else a[lo:hi]
        ))
    return out


@settings(max_examples=120, deadline=None)
@given(data=st.data(), X=datasets(min_rows=3, max_rows=50, scalar=False), kind=st.sampled_from(KINDS))
def test_weights_match_np_cov_on_every_path(data, X, kind):
    """from_samples, fold, merge_all, pairwise tree, row updates and grouped all give np.cov's answer."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    f, a = draw_weights(rng, len(X), kind)
    w = (np.ones(len(X)) if f is None else f) * (np.ones(len(X)) if a is None else a)
    if w.sum() == 0 or np.count_nonzero(w) < 3:
        return  # no degrees of freedom left: np.cov divides by zero
    tol = max(tolerance(X[w > 0]), 1e-13) * 64
    whole = GaussianSummary.from_samples(X, f, aweights=a)
    for ddof in (0, 1):
        close_to_cov(whole, X, f, a, ddof, tol)
    expected_w2 = float(np.sum((np.ones(len(X)) if f is None else f) * (np.ones(len(X)) if a is None else a) ** 2))
    assert whole.w2 == pytest.approx(expected_w2, rel=1e-13)
    assert whole.effective_n == pytest.approx(w.sum() ** 2 / expected_w2, rel=1e-13)

    shards = parts(X, f, a, data.draw(splits(len(X))))
    order = data.draw(st.permutations(range(len(shards))))
    fold = shards[order[0]]
    for i in order[1:]:
        fold = fold + shards[i]
    tree = [shards[i] for i in order]
    while len(tree) > 1:
        tree = [sum(tree[i : i + 2]) for i in range(0, len(tree), 2)]
    rows = GaussianSummary.empty(X.shape[1])
    for i in range(len(X)):
        rows = rows.update(X[i], None if f is None else f[i], aweights=None if a is None else a[i])
    keys = rng.integers(0, 3, len(X))
    grouped = GroupedSummary.from_samples(keys, X, f, aweights=a).total()
    for path in (fold, tree[0], GaussianSummary.merge_all(shards), rows, grouped):
        assert path.isclose(whole, rtol=tol)
        close_to_cov(path, X, f, a, 1, tol)


@pytest.mark.parametrize("kind", KINDS)
def test_grouped_weights_match_np_cov_per_key(kind):
    """Per key, the grouped covariance is np.cov with the key's rows and weights."""
    rng = np.random.default_rng(31)
    X = 1e3 + rng.standard_normal((600, 3))
    keys = rng.integers(0, 7, 600)
    f, a = draw_weights(rng, 600, kind)
    g = GroupedSummary.from_samples(keys, X, f, aweights=a)
    for i, key in enumerate(g.keys()):
        mask = keys == key
        fk = None if f is None else f[mask]
        ak = None if a is None else a[mask]
        expected = numpy_cov(X[mask], fk, ak, 1)
        np.testing.assert_allclose(g.covariances()[i], expected, rtol=1e-11)
        w = (np.ones(mask.sum()) if fk is None else fk) * (np.ones(mask.sum()) if ak is None else ak)
        w2 = np.sum(w * (w if fk is None else w / np.where(fk > 0, fk, 1)))
        assert g.effective_n[i] == pytest.approx(w.sum() ** 2 / w2, rel=1e-12)
    g_update = GroupedSummary.empty(3).update(keys[:300], X[:300], None if f is None else f[:300],
                                              aweights=None if a is None else a[:300])
    g_update = g_update.update(
        keys[300:], X[300:], None if f is None else f[300:], aweights=None if a is None else a[300:]
    )
    assert g_update.isclose(g, rtol=1e-11)


def test_unweighted_and_frequency_weighted_w2_is_n_exactly():
    """w2 == n bit for bit without reliability weights, so the divisor is exactly n - ddof."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((100, 2))
    for s in (GaussianSummary.from_samples(X), GaussianSummary.from_samples(X, rng.integers(0, 5, 100))):
        assert s.w2 == s.n and s.effective_n == s.n
        np.testing.assert_array_equal(s.covariance(1), s.M2 / (s.n - 1))


def test_scaled_multiplies_w2_by_the_square_and_keeps_effective_n():
    """scaled(f): n and M2 times f, w2 times f**2; the covariance and effective n do not move."""
    rng = np.random.default_rng(4)
    s = GaussianSummary.from_samples(rng.standard_normal((50, 2)), aweights=rng.uniform(0.1, 2, 50))
    t = s.scaled(0.25)
    assert t.w2 == pytest.approx(s.w2 / 16, rel=1e-15)
    assert t.effective_n == pytest.approx(s.effective_n, rel=1e-15)
    np.testing.assert_allclose(t.covariance(1), s.covariance(1), rtol=1e-15)


def test_forgetting_gives_the_unbiased_covariance_with_ddof_1():
    """After repeated s.scaled(lam).update(x), covariance(ddof=1) is unbiased: Monte Carlo.

    2000 independent streams of iid N(0, Sigma) rows; the average estimate must be within four
    standard errors of Sigma in every entry, where M2 / (n - 1) is visibly biased.
    """
    rng = np.random.default_rng(11)
    lam, steps, streams = 0.7, 40, 2000
    Sigma = np.array([[2.0, 0.6], [0.6, 1.0]])
    L = np.linalg.cholesky(Sigma)
    estimates, naive = [], []
    for _ in range(streams):
        s = GaussianSummary.empty(2)
        for x in rng.standard_normal((steps, 2)) @ L.T:
            s = s.scaled(lam).update(x)
        estimates.append(s.covariance(1))
        naive.append(s.M2 / (s.n - 1))
    estimates, naive = np.array(estimates), np.array(naive)
    error = estimates.std(axis=0) / np.sqrt(streams)
    assert (np.abs(estimates.mean(axis=0) - Sigma) < 4 * error).all()
    assert (np.abs(naive.mean(axis=0) - Sigma) > 8 * error).any()
    n_eff = (1 + lam) * (1 - lam**steps) / ((1 - lam) * (1 + lam**steps))
    assert s.effective_n == pytest.approx(n_eff, rel=1e-12)


def test_version_1_dicts_and_pickles_read_with_w2_equal_to_n():
    """A version-1 dict (no w2) and an old pickle payload load with w2 = n."""
    old = {"format": "gaussum.GaussianSummary", "version": 1, "n": 3.0, "mean": [1.0, 2.0],
           "M2": [[2.0, 1.0], [1.0, 2.0]]}
    s = GaussianSummary.from_dict(old)
    assert s.w2 == 3.0 and s == GaussianSummary(3.0, [1.0, 2.0], [[2.0, 1.0], [1.0, 2.0]])
    grouped_old = {"format": "gaussum.GroupedSummary", "version": 1, "key_dtype": "<U1", "keys": ["a", "b"],
                   "shape": [1], "diagonal": False, "counts": [2.0, 1.0], "means": [[1.0], [3.0]],
                   "M2": [[[0.5]], [[0.0]]]}
    g = GroupedSummary.from_dict(grouped_old)
    np.testing.assert_array_equal(g.w2, g.counts)
    from gaussum.summary import _restore

    assert _restore(3.0, np.array([1.0, 2.0]), np.array([[2.0, 1.0], [1.0, 2.0]])) == s


def test_weighted_values_round_trip_through_dicts_and_pickles():
    """to_dict (version 2) and pickle keep w2 exactly, plain and grouped."""
    rng = np.random.default_rng(5)
    X, a = rng.standard_normal((40, 2)), rng.uniform(0.1, 2.0, 40)
    s = GaussianSummary.from_samples(X, aweights=a)
    data = json.loads(json.dumps(s.to_dict()))
    assert data["version"] == 2 and data["w2"] == s.w2
    assert GaussianSummary.from_dict(data) == s and pickle.loads(pickle.dumps(s)) == s
    g = GroupedSummary.from_samples(rng.integers(0, 3, 40), X, aweights=a)
    assert GroupedSummary.from_dict(json.loads(json.dumps(g.to_dict()))) == g
    assert pickle.loads(pickle.dumps(g)) == g


@pytest.mark.parametrize(
    "w2, message",
    [(-1.0, "w2 must be finite and non-negative"), (float("nan"), "w2 must be finite"), (0.0, "w2 must be positive")],
)
def test_w2_is_validated(w2, message):
    """A negative, NaN or (with data) zero w2 is refused."""
    with pytest.raises(ValueError, match=message):
        GaussianSummary(3.0, [0.0], [[1.0]], w2)
    with pytest.raises(ValueError, match="zero mean, M2 and w2"):
        GaussianSummary(0.0, [0.0], [[0.0]], 1.0)


def test_bad_aweights_are_refused_with_their_name():
    """Negative or mis-sized reliability weights name 'aweights'."""
    with pytest.raises(ValueError, match=r"aweights\[1\] is -1.0"):
        GaussianSummary.from_samples(np.ones((3, 2)), aweights=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match=r"aweights must have shape \(3,\)"):
        GroupedSummary.from_samples([1, 2, 3], np.ones((3, 2)), aweights=[1.0, 1.0])
    with pytest.raises(ValueError, match="aweights must be finite"):
        GaussianSummary.empty(2).update([1.0, 2.0], aweights=float("inf"))


# -- grouped subtraction ------------------------------------------------------------------------


def test_grouped_subtraction_removes_a_part_key_by_key():
    """(a + b) - b == a per key, to rounding; keys only in a stay exact; weights come off too."""
    rng = np.random.default_rng(21)
    X = 100 + rng.standard_normal((500, 3))
    keys = rng.integers(0, 6, 500)
    w = rng.uniform(0.5, 2, 500)
    a = GroupedSummary.from_samples(keys[:300], X[:300], aweights=w[:300])
    b = GroupedSummary.from_samples(keys[300:] % 3, X[300:], aweights=w[300:])
    whole = a + b
    back = whole - b
    assert back.isclose(a, rtol=1e-9)
    for key in set(a.keys().tolist()) - set(b.keys().tolist()):
        assert back[key] == whole[key]
    emptied = (whole - whole)
    assert emptied.counts.tolist() == [0.0] * len(whole) and not emptied.w2.any()
    assert (whole - GroupedSummary.empty(3)) is whole


def test_grouped_subtraction_refuses_keys_the_left_lacks():
    """Removing a key that was never added, or too much weight, is a ValueError naming it."""
    a = GroupedSummary.from_samples(["a", "b"], [1.0, 2.0])
    with pytest.raises(ValueError, match="cannot remove key 'c'"):
        a - GroupedSummary.from_samples(["c"], [3.0])
    with pytest.raises(ValueError, match="cannot remove a summary of n=2"):
        a - GroupedSummary.from_samples(["a", "a"], [1.0, 1.0])
    with pytest.raises(ValueError, match="keys have dtypes"):
        a - GroupedSummary.from_samples([1], [3.0])
    with pytest.raises(ValueError, match="cannot remove key 'a'"):
        GroupedSummary.empty(None, key_dtype=str) - GroupedSummary.from_samples(["a"], [3.0])
    with pytest.raises(TypeError):
        a - 1.0


def test_inference_counts_effective_observations():
    """Reliability weights of 0 and c > 0 give the tests of the kept rows alone (effective_n rows).

    Constant reliability weights c carry no information about the sample size: the statistic,
    degrees of freedom and p-values are those of the unweighted rows that have weight, computed
    by scipy on those rows.
    """
    from scipy import stats

    from gaussum.inference import box_m, hotelling_t2, welch_t

    rng = np.random.default_rng(8)
    A, B = rng.standard_normal((40, 2)), 0.3 + rng.standard_normal((30, 2)) * [1.0, 2.0]
    wa = np.where(rng.uniform(size=40) < 0.3, 0.0, 2.5)
    wb = np.where(rng.uniform(size=30) < 0.3, 0.0, 0.4)
    a, b = GaussianSummary.from_samples(A, aweights=wa), GaussianSummary.from_samples(B, aweights=wb)
    kept_a, kept_b = A[wa > 0], B[wb > 0]
    assert a.effective_n == pytest.approx(len(kept_a), rel=1e-13)
    welch = welch_t(a, b)
    reference = stats.ttest_ind(kept_a, kept_b, equal_var=False)
    np.testing.assert_allclose(welch.statistic, reference.statistic, rtol=1e-10)
    np.testing.assert_allclose(welch.pvalue, reference.pvalue, rtol=1e-9)
    plain_a, plain_b = GaussianSummary.from_samples(kept_a), GaussianSummary.from_samples(kept_b)
    for equal in (True, False):
        weighted = hotelling_t2(a, b, equal_covariances=equal)
        plain = hotelling_t2(plain_a, plain_b, equal_covariances=equal)
        assert weighted.t2 == pytest.approx(plain.t2, rel=1e-10)
        assert weighted.pvalue == pytest.approx(plain.pvalue, rel=1e-9)
    assert box_m(a, b).chi2 == pytest.approx(box_m(plain_a, plain_b).chi2, rel=1e-10)
