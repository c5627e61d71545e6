"""Tests of gaussum.inference against scipy on the raw rows, independent numpy formulas and
published numbers."""

from __future__ import annotations

import itertools
import re
import sys

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats
from scipy.spatial import distance

from gaussum import GaussianSummary
from gaussum.inference import (
    MAX_CONDITION,
    BoxMResult,
    HotellingResult,
    WelchResult,
    bhattacharyya_distance,
    box_m,
    hotelling_t2,
    kl_divergence,
    mahalanobis,
    to_scipy,
    welch_t,
)


def summary(X: np.ndarray) -> GaussianSummary:
    return GaussianSummary.from_samples(X)


def shards(X: np.ndarray, cuts: list[int]) -> GaussianSummary:
    """The summary of X built by merging the summaries of contiguous pieces."""
    edges = [0, *cuts, len(X)]
    return GaussianSummary.merge_all(summary(X[lo:hi]) for lo, hi in itertools.pairwise(edges))


def correlated(rng: np.random.Generator, n: int, d: int, offset: float = 0.0) -> np.ndarray:
    """n rows of d correlated Gaussian variables with unequal spreads."""
    mixing = rng.normal(size=(d, d)) + 2.0 * np.eye(d)
    return offset + rng.normal(size=(n, d)) @ mixing * rng.uniform(0.5, 3.0, size=d)


# -- independent reference implementations, straight from the textbook formulas ------------------


def reference_hotelling(A: np.ndarray, B: np.ndarray) -> tuple[float, float, float, float]:
    """Two-sample T², F, df2 and p-value from the rows, with an explicit inverse (fine in a test)."""
    n1, n2, p = len(A), len(B), A.shape[1]
    SA, SB = np.atleast_2d(np.cov(A, rowvar=False)), np.atleast_2d(np.cov(B, rowvar=False))
    S = ((n1 - 1) * SA + (n2 - 1) * SB) / (n1 + n2 - 2)
    diff = A.mean(axis=0) - B.mean(axis=0)
    t2 = diff @ np.linalg.inv(S * (1 / n1 + 1 / n2)) @ diff
    df2 = n1 + n2 - p - 1
    f = df2 / (p * (n1 + n2 - 2)) * t2
    return t2, f, df2, stats.f.sf(f, p, df2)


def reference_krishnamoorthy_yu(A: np.ndarray, B: np.ndarray) -> tuple[float, float, float, float]:
    """T², F, df2 and p-value of Krishnamoorthy & Yu (2004), eqs. (2.1)-(2.3), from the rows."""
    p = A.shape[1]
    V = [np.atleast_2d(np.cov(X, rowvar=False)) / len(X) for X in (A, B)]
    Sinv = np.linalg.inv(V[0] + V[1])
    diff = A.mean(axis=0) - B.mean(axis=0)
    t2 = diff @ Sinv @ diff
    denominator = sum(
        (np.trace(Vi @ Sinv @ Vi @ Sinv) + np.trace(Vi @ Sinv) ** 2) / (len(X) - 1)
        for Vi, X in zip(V, (A, B), strict=True)
    )
    nu = (p + p**2) / denominator
    df2 = nu - p + 1
    f = t2 * df2 / (nu * p)
    return t2, f, df2, stats.f.sf(f, p, df2)


def reference_box_m(groups: list[np.ndarray]) -> tuple[float, float, float, float]:
    """Box's M, its chi-square statistic, df and p-value from the rows (determinants, not logs)."""
    p, g = groups[0].shape[1], len(groups)
    ns = np.array([len(X) for X in groups])
    N = ns.sum()
    covs = [np.atleast_2d(np.cov(X, rowvar=False)) for X in groups]
    pooled = sum((n - 1) * S for n, S in zip(ns, covs, strict=True)) / (N - g)
    m = (N - g) * np.log(np.linalg.det(pooled)) - sum(
        (n - 1) * np.log(np.linalg.det(S)) for n, S in zip(ns, covs, strict=True)
    )
    c = (np.sum(1 / (ns - 1)) - 1 / (N - g)) * (2 * p**2 + 3 * p - 1) / (6 * (p + 1) * (g - 1))
    df = p * (p + 1) * (g - 1) / 2
    return m, (1 - c) * m, df, stats.chi2.sf((1 - c) * m, df)


def reference_kl(m0, S0, m1, S1) -> float:
    """KL(N0 || N1) from explicit inverses and determinants."""
    d = len(m0)
    S1inv = np.linalg.inv(S1)
    diff = m1 - m0
    return 0.5 * (np.trace(S1inv @ S0) + diff @ S1inv @ diff - d + np.log(np.linalg.det(S1) / np.linalg.det(S0)))


def reference_bhattacharyya(m0, S0, m1, S1) -> float:
    """Bhattacharyya distance from explicit inverses and determinants."""
    S = (S0 + S1) / 2
    diff = m0 - m1
    return diff @ np.linalg.inv(S) @ diff / 8 + 0.5 * np.log(
        np.linalg.det(S) / np.sqrt(np.linalg.det(S0) * np.linalg.det(S1))
    )


# -- Welch t ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("offset", [0.0, -250.0])
def test_welch_matches_scipy_on_rows(seed, offset):
    """Welch's t, df and p-value from merged shard summaries equal scipy's ttest_ind on the rows."""
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 5))
    A = correlated(rng, int(rng.integers(3, 40)), d, offset)
    B = correlated(rng, int(rng.integers(2, 40)), d, offset) + rng.normal(size=d)
    expected = stats.ttest_ind(A, B, equal_var=False)
    got = welch_t(shards(A, [1, 2]), shards(B, [len(B) // 2]))
    np.testing.assert_allclose(got.statistic, expected.statistic, rtol=1e-10)
    np.testing.assert_allclose(got.df, expected.df, rtol=1e-10)
    np.testing.assert_allclose(got.pvalue, expected.pvalue, rtol=1e-10)


def test_welch_scalar_data_gives_floats():
    """Scalar summaries give float fields equal to scipy's."""
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=25), rng.normal(0.7, 3.0, size=11)
    got = welch_t(summary(x), summary(y))
    expected = stats.ttest_ind(x, y, equal_var=False)
    assert all(isinstance(v, float) for v in (got.statistic, got.df, got.pvalue))
    assert got.statistic == pytest.approx(expected.statistic, rel=1e-10)
    assert got.df == pytest.approx(expected.df, rel=1e-10)
    assert got.pvalue == pytest.approx(expected.pvalue, rel=1e-10)


def test_welch_diagonal_summary_equals_full():
    """A diagonal summary gives the same per-variable tests as the full one."""
    rng = np.random.default_rng(8)
    A, B = correlated(rng, 20, 3), correlated(rng, 15, 3)
    full = welch_t(summary(A), summary(B))
    diagonal = welch_t(summary(A).to_diagonal(), GaussianSummary.from_samples(B, diagonal=True))
    np.testing.assert_allclose(diagonal.statistic, full.statistic, rtol=1e-12)
    np.testing.assert_allclose(diagonal.pvalue, full.pvalue, rtol=1e-12)


def test_welch_constant_in_both_groups_is_nan():
    """A variable constant in both groups has NaN df and p-value; the other variables are unaffected."""
    rng = np.random.default_rng(9)
    A, B = rng.normal(size=(10, 2)), rng.normal(size=(8, 2))
    A[:, 1], B[:, 1] = 3.0, 4.0
    got = welch_t(summary(A), summary(B))
    assert got.statistic[1] == -np.inf and np.isnan(got.df[1]) and np.isnan(got.pvalue[1])
    expected = stats.ttest_ind(A[:, 0], B[:, 0], equal_var=False)
    assert got.pvalue[0] == pytest.approx(expected.pvalue, rel=1e-10)


def test_welch_needs_two_rows_and_same_variables():
    """One observation, mismatched variables, or a non-summary are refused with a clear error."""
    a = summary(np.ones((1, 2)))
    b = summary(np.arange(8.0).reshape(4, 2))
    with pytest.raises(ValueError, match=r"at least 2 observations.*a has n=1"):
        welch_t(a, b)
    with pytest.raises(ValueError, match="same variables"):
        welch_t(b, summary(np.arange(9.0).reshape(3, 3)))
    with pytest.raises(TypeError, match="b must be a GaussianSummary, got ndarray"):
        welch_t(b, np.ones(3))


# -- Hotelling T² -------------------------------------------------------------------------------


def test_hotelling_swiss_banknotes_published():
    """The Swiss bank notes example reproduces its published T², F and degrees of freedom.

    Flury & Riedwyl's 100 genuine and 100 counterfeit notes, six measurements each (swiss3.txt of
    Penn State STAT 505, Lesson 7); JuliaStats/HypothesisTests.jl test/hotelling.jl asserts
    T² = 2412.4506855 and F = 391.9217023 on (6, 193) df for the same data (checked).
    """
    genuine = np.array(SWISS_GENUINE.split(), dtype=float).reshape(-1, 6)
    counterfeit = np.array(SWISS_COUNTERFEIT.split(), dtype=float).reshape(-1, 6)
    result = hotelling_t2(shards(genuine, [30, 31, 70]), summary(counterfeit))
    assert result.df == (6, 193)
    assert result.t2 == pytest.approx(2412.4506855, abs=1e-6)
    assert result.f == pytest.approx(391.9217023, abs=1e-6)
    assert round(result.t2, 2) == 2412.45 and round(result.f, 2) == 391.92
    assert result.pvalue < 1e-100
    # With equal group sizes the unequal-covariance statistic is the same number (the same
    # HypothesisTests.jl test asserts it for UnequalCovHotellingT2).
    unequal = hotelling_t2(summary(genuine), summary(counterfeit), equal_covariances=False)
    assert unequal.t2 == pytest.approx(2412.4506855, abs=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_hotelling_matches_textbook_formula(seed):
    """Pooled T², F, df and p-value equal a direct implementation on the rows."""
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 6))
    A = correlated(rng, int(rng.integers(d + 2, 50)), d, offset=100.0)
    B = correlated(rng, int(rng.integers(2, 50)), d, offset=100.0) + 0.3 * rng.normal(size=d)
    t2, f, df2, pvalue = reference_hotelling(A, B)
    got = hotelling_t2(shards(A, [len(A) // 3]), summary(B))
    assert got.t2 == pytest.approx(t2, rel=1e-9)
    assert got.f == pytest.approx(f, rel=1e-9)
    assert got.df == (d, df2)
    assert got.pvalue == pytest.approx(pvalue, rel=1e-8)


@pytest.mark.parametrize("seed", range(5))
def test_hotelling_unequal_matches_krishnamoorthy_yu(seed):
    """The unequal-covariance T², F, df and p-value equal a direct implementation of Krishnamoorthy–Yu."""
    rng = np.random.default_rng(seed + 100)
    d = int(rng.integers(1, 6))
    A = correlated(rng, int(rng.integers(d + 2, 40)), d)
    B = 3.0 * correlated(rng, int(rng.integers(d + 2, 60)), d) + 0.5 * rng.normal(size=d)
    t2, f, df2, pvalue = reference_krishnamoorthy_yu(A, B)
    got = hotelling_t2(summary(A), shards(B, [5, 9]), equal_covariances=False)
    assert got.t2 == pytest.approx(t2, rel=1e-9)
    assert got.f == pytest.approx(f, rel=1e-9)
    assert got.df[0] == d and got.df[1] == pytest.approx(df2, rel=1e-9)
    assert got.pvalue == pytest.approx(pvalue, rel=1e-8)
    nu = df2 + d - 1
    assert min(len(A), len(B)) - 1 <= nu * (1 + 1e-12) and nu <= (len(A) + len(B) - 2) * (1 + 1e-12)


@pytest.mark.parametrize("equal_covariances", [True, False])
def test_hotelling_one_variable_is_the_t_test(equal_covariances):
    """With one variable T² is t², and the p-value is scipy's pooled or Welch t test."""
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=17), rng.normal(0.8, 2.5, size=9)
    expected = stats.ttest_ind(x, y, equal_var=equal_covariances)
    for a, b in ((summary(x), summary(y)), (summary(x[:, None]), summary(y[:, None]))):
        got = hotelling_t2(a, b, equal_covariances=equal_covariances)
        assert got.t2 == pytest.approx(expected.statistic**2, rel=1e-10)
        assert got.f == pytest.approx(expected.statistic**2, rel=1e-10)
        assert got.df[1] == pytest.approx(expected.df, rel=1e-10)
        assert got.pvalue == pytest.approx(expected.pvalue, rel=1e-10)


@pytest.mark.parametrize("equal_covariances", [True, False])
def test_hotelling_is_invariant_to_units(equal_covariances):
    """Rescaling and shifting the variables (here by 1e-3 and 1e6) leaves the test unchanged."""
    rng = np.random.default_rng(12)
    A, B = correlated(rng, 30, 3), correlated(rng, 25, 3) + 0.4
    mixing = np.array([[1e-3, 0.0, 0.0], [2e-3, 1e6, 0.0], [0.0, 0.0, 1.0]])
    plain = hotelling_t2(summary(A), summary(B), equal_covariances)
    moved = hotelling_t2(summary(A @ mixing + 5.0), summary(B @ mixing + 5.0), equal_covariances)
    assert moved.t2 == pytest.approx(plain.t2, rel=1e-8)
    assert moved.df[1] == pytest.approx(plain.df[1], rel=1e-8)


def test_hotelling_refuses_diagonal_summaries():
    """A diagonal summary has no covariances for T², and the message says so."""
    rng = np.random.default_rng(13)
    a, b = summary(rng.normal(size=(10, 2))), summary(rng.normal(size=(10, 2)))
    with pytest.raises(ValueError, match=r"b is a diagonal summary.*welch_t"):
        hotelling_t2(a, b.to_diagonal())


# -- singular and near-singular covariances -----------------------------------------------------


def test_more_variables_than_degrees_of_freedom():
    """Too few rows for the number of variables raises, naming both counts."""
    rng = np.random.default_rng(14)
    a, b = summary(rng.normal(size=(3, 5))), summary(rng.normal(size=(3, 5)))
    with pytest.raises(ValueError, match=r"pooled covariance.*5 variables but only 4 degrees of freedom"):
        hotelling_t2(a, b)
    with pytest.raises(ValueError, match="5 variables but only 2 degrees of freedom"):
        mahalanobis(np.zeros(5), a)
    with pytest.raises(ValueError, match=r"summaries\[0\].*5 variables but only 2 degrees of freedom"):
        box_m(a, b)


def test_constant_column_is_named():
    """A variable that never varies raises, naming the variable."""
    rng = np.random.default_rng(15)
    X, Y = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
    X[:, 1] = Y[:, 1] = 4.0
    with pytest.raises(ValueError, match="variable 1 has zero variance \\(a constant column\\)"):
        hotelling_t2(summary(X), summary(Y))
    with pytest.raises(ValueError, match="covariance of a is singular: variable 1"):
        kl_divergence(summary(X), summary(rng.normal(size=(20, 3))))
    with pytest.raises(ValueError, match="constant column"):
        to_scipy(summary(X))


def test_collinear_columns_exceed_condition_limit():
    """A variable that is (nearly) a combination of others raises with the condition number."""
    rng = np.random.default_rng(16)
    X = rng.normal(size=(40, 3))
    X[:, 2] = X[:, 0] - 2.0 * X[:, 1] + 1e-9 * rng.normal(size=40)
    message = "near-singular: .*condition number .* past the limit " + re.escape(f"MAX_CONDITION = {MAX_CONDITION:g}")
    with pytest.raises(ValueError, match=message):
        mahalanobis(np.zeros(3), summary(X))
    with pytest.raises(ValueError, match=message):
        hotelling_t2(summary(X), summary(X + 1.0), equal_covariances=False)
    X[:, 2] = X[:, 0] - 2.0 * X[:, 1] + 1e-3 * rng.normal(size=40)  # condition about 1e7: fine
    assert mahalanobis(X.mean(axis=0), summary(X)) == pytest.approx(0.0, abs=1e-6)


# -- Box's M ------------------------------------------------------------------------------------


def test_box_m_iris_published():
    """Box's M on Fisher's iris data reproduces the published chi-square, df and p-value.

    R: ``rstatix::box_m(iris[, -5], iris$Species)`` prints statistic 141., p.value 3.35e-20,
    parameter 20 (rstatix reference page for box_m); ``biotools::boxM`` prints
    Chi-Sq (approx.) = 140.94, df = 20.
    """
    texts = (IRIS_SETOSA, IRIS_VERSICOLOR, IRIS_VIRGINICA)
    groups = [np.array(text.split(), dtype=float).reshape(-1, 4) for text in texts]
    result = box_m(*(summary(X) for X in groups))
    assert result.df == 20
    assert round(result.chi2, 2) == 140.94
    assert f"{result.pvalue:.3g}" == "3.35e-20"
    m, chi2, _df, pvalue = reference_box_m(groups)
    assert result.m == pytest.approx(m, rel=1e-10)
    assert result.chi2 == pytest.approx(chi2, rel=1e-10)
    assert result.pvalue == pytest.approx(pvalue, rel=1e-8)


@pytest.mark.parametrize("seed", range(4))
def test_box_m_matches_determinant_formula(seed):
    """M, chi-square, df and p-value equal a direct computation from determinants of np.cov."""
    rng = np.random.default_rng(seed + 200)
    d, g = int(rng.integers(1, 5)), int(rng.integers(2, 5))
    groups = [correlated(rng, int(rng.integers(d + 2, 40)), d, offset=50.0) for _ in range(g)]
    m, chi2, df, pvalue = reference_box_m(groups)
    got = box_m(*(shards(X, [len(X) // 2]) for X in groups))
    assert got.m == pytest.approx(m, rel=1e-9)
    assert got.chi2 == pytest.approx(chi2, rel=1e-9)
    assert got.df == df
    assert got.pvalue == pytest.approx(pvalue, rel=1e-8, abs=1e-300)


def test_box_m_needs_groups():
    """Fewer than two groups, or groups with different variables, are refused."""
    s = summary(np.arange(12.0).reshape(4, 3) ** 1.5)
    with pytest.raises(ValueError, match="at least 2 summaries, got 1"):
        box_m(s)
    with pytest.raises(ValueError, match="summaries\\[1\\] has mean shape \\(2,\\)"):
        box_m(s, summary(np.ones((4, 2))))


# -- distances ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_kl_and_bhattacharyya_match_closed_forms(seed):
    """KL divergence and Bhattacharyya distance equal the closed forms with explicit inverses."""
    rng = np.random.default_rng(seed + 300)
    d = int(rng.integers(1, 6))
    A, B = correlated(rng, 60, d), correlated(rng, 45, d, offset=0.5)
    for ddof in (0, 1):
        Sa, Sb = np.cov(A, rowvar=False, ddof=ddof).reshape(d, d), np.cov(B, rowvar=False, ddof=ddof).reshape(d, d)
        ma, mb = A.mean(axis=0), B.mean(axis=0)
        a, b = summary(A), shards(B, [10, 20])
        assert kl_divergence(a, b, ddof) == pytest.approx(reference_kl(ma, Sa, mb, Sb), rel=1e-9)
        assert kl_divergence(b, a, ddof) == pytest.approx(reference_kl(mb, Sb, ma, Sa), rel=1e-9)
        assert bhattacharyya_distance(a, b, ddof) == pytest.approx(reference_bhattacharyya(ma, Sa, mb, Sb), rel=1e-9)
    assert kl_divergence(a, a) == pytest.approx(0.0, abs=1e-12)
    assert bhattacharyya_distance(a, a) == pytest.approx(0.0, abs=1e-12)


def test_scalar_distances_match_integrals():
    """For scalar data KL and Bhattacharyya equal numerical integrals of the two densities."""
    a = GaussianSummary.from_moments(30, 1.0, 0.5)
    b = GaussianSummary.from_moments(20, -0.5, 2.0)
    p, q = stats.norm(1.0, np.sqrt(0.5)), stats.norm(-0.5, np.sqrt(2.0))
    kl, _ = integrate.quad(lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), -30, 30, epsabs=1e-13)
    overlap, _ = integrate.quad(lambda x: np.sqrt(p.pdf(x) * q.pdf(x)), -30, 30, epsabs=1e-13)
    assert kl_divergence(a, b) == pytest.approx(kl, rel=1e-8)
    assert bhattacharyya_distance(a, b) == pytest.approx(-np.log(overlap), rel=1e-8)


def test_kl_monte_carlo():
    """KL(a || b) is the mean log-density ratio over draws from a, within 4 Monte Carlo standard errors."""
    # Checks the definition (direction included) in several dimensions, not the closed form that
    # reference_kl shares with the code; 20,000 draws make the standard error about 1 % of KL.
    rng = np.random.default_rng(17)
    A, B = correlated(rng, 200, 3), correlated(rng, 150, 3, offset=0.3)
    pa = stats.multivariate_normal(A.mean(axis=0), np.cov(A, rowvar=False))
    pb = stats.multivariate_normal(B.mean(axis=0), np.cov(B, rowvar=False))
    log_ratio = pa.logpdf(draws := pa.rvs(size=20_000, random_state=rng)) - pb.logpdf(draws)
    standard_error = log_ratio.std(ddof=1) / np.sqrt(len(log_ratio))
    assert abs(kl_divergence(summary(A), summary(B)) - log_ratio.mean()) < 4 * standard_error


def test_diagonal_summaries_are_diagonal_gaussians():
    """A diagonal summary stands for the Gaussian with its variances and no covariances."""
    rng = np.random.default_rng(18)
    A, B = correlated(rng, 50, 3), correlated(rng, 40, 3)
    a, b = GaussianSummary.from_samples(A, diagonal=True), summary(B)
    Sa = np.diag(A.var(axis=0, ddof=1))
    Sb = np.cov(B, rowvar=False)
    expected = reference_kl(A.mean(axis=0), Sa, B.mean(axis=0), Sb)
    assert kl_divergence(a, b) == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(to_scipy(a).cov, Sa, rtol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_mahalanobis_matches_scipy(seed):
    """Distances of single points and of rows equal scipy.spatial.distance.mahalanobis."""
    rng = np.random.default_rng(seed + 400)
    d = int(rng.integers(1, 6))
    X = correlated(rng, 80, d, offset=-20.0)
    VI = np.linalg.inv(np.cov(X, rowvar=False).reshape(d, d))
    points = X[:5] + rng.normal(size=(5, d))
    expected = [distance.mahalanobis(u, X.mean(axis=0), VI) for u in points]
    s = shards(X, [40])
    np.testing.assert_allclose(mahalanobis(points, s), expected, rtol=1e-9)
    assert mahalanobis(points[0], s) == pytest.approx(expected[0], rel=1e-9)
    assert isinstance(mahalanobis(points[0], s), float)


def test_mahalanobis_scalar_and_shapes():
    """Scalar data takes scalar points or a 1-D batch; other shapes are refused."""
    x = np.array([1.0, 2.0, 4.0, 7.0])
    s = summary(x)
    assert mahalanobis(3.5, s) == pytest.approx(abs(3.5 - x.mean()) / x.std(ddof=1), rel=1e-12)
    np.testing.assert_allclose(mahalanobis([0.0, 10.0], s), np.abs([0.0, 10.0] - x.mean()) / x.std(ddof=1), rtol=1e-12)
    with pytest.raises(ValueError, match=r"x must have shape \(3,\) or \(k, 3\).*got \(2,\)"):
        mahalanobis([1.0, 2.0], summary(np.eye(4)[:, :3] + np.arange(4.0)[:, None] ** 2))


# -- to_scipy -----------------------------------------------------------------------------------


def test_to_scipy_multivariate():
    """The frozen multivariate_normal has the rows' mean and np.cov covariance, for either ddof."""
    rng = np.random.default_rng(19)
    X = correlated(rng, 30, 3, offset=10.0)
    s = shards(X, [7])
    for ddof in (0, 1):
        dist = to_scipy(s, ddof=ddof)
        reference = stats.multivariate_normal(X.mean(axis=0), np.cov(X, rowvar=False, ddof=ddof))
        np.testing.assert_allclose(dist.mean, X.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(dist.cov, np.cov(X, rowvar=False, ddof=ddof), rtol=1e-10)
        np.testing.assert_allclose(dist.logpdf(X[:4]), reference.logpdf(X[:4]), rtol=1e-10)


def test_to_scipy_scalar_is_norm():
    """Scalar data gives scipy.stats.norm with the sample mean and standard deviation."""
    x = np.array([2.0, 3.0, 5.0, 11.0])
    dist = to_scipy(summary(x))
    assert dist.dist.name == "norm"
    assert dist.mean() == pytest.approx(x.mean(), rel=1e-12)
    assert dist.std() == pytest.approx(x.std(ddof=1), rel=1e-12)


# -- results and the optional dependency --------------------------------------------------------


def test_result_reprs_and_immutability():
    """Results print their fields briefly, compare by value and cannot be changed."""
    h = HotellingResult(2412.4506855, 391.9217023, (6.0, 193.0), 1.5e-120)
    assert repr(h) == "HotellingResult(t2=2412.45, f=391.922, df=(6, 193), pvalue=1.5e-120)"
    box = BoxMResult(146.66, 140.943, 20.0, 3.352e-20)
    assert repr(box) == "BoxMResult(m=146.66, chi2=140.943, df=20, pvalue=3.352e-20)"
    w = WelchResult(np.array([1.5, -0.25]), np.array([10.0, 12.5]), np.array([0.16, 0.8]))
    assert repr(w) == "WelchResult(statistic=[1.5, -0.25], df=[10, 12.5], pvalue=[0.16, 0.8])"
    assert w == WelchResult(np.array([1.5, -0.25]), np.array([10.0, 12.5]), np.array([0.16, 0.8]))
    assert w != WelchResult(np.array([1.5, -0.5]), np.array([10.0, 12.5]), np.array([0.16, 0.8]))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        h.t2 = 0.0


def test_missing_scipy_names_the_extra(monkeypatch):
    """Without scipy the tests raise ImportError telling how to install the extra."""
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    a = summary(np.arange(6.0))
    with pytest.raises(ImportError, match=r"pip install 'gaussum\[stats\]'"):
        welch_t(a, a)
    assert kl_divergence(a, a) == 0.0  # distances need numpy only


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    d=st.integers(1, 4),
    n_a=st.integers(6, 30),
    n_b=st.integers(6, 30),
    cut=st.integers(0, 6),
)
def test_hotelling_from_any_split(seed, d, n_a, n_b, cut):
    """Whatever the sharding, both Hotelling variants equal their row-based references."""
    rng = np.random.default_rng(seed)
    A, B = correlated(rng, n_a, d), correlated(rng, n_b, d) + 0.2
    a, b = shards(A, [cut]), shards(B, [n_b - cut])
    for equal, reference in ((True, reference_hotelling), (False, reference_krishnamoorthy_yu)):
        t2, _f, df2, pvalue = reference(A, B)
        got = hotelling_t2(a, b, equal_covariances=equal)
        assert got.t2 == pytest.approx(t2, rel=1e-8)
        assert got.df[1] == pytest.approx(df2, rel=1e-8)
        assert got.pvalue == pytest.approx(pvalue, rel=1e-6, abs=1e-300)


# -- published data sets ------------------------------------------------------------------------
# Flury & Riedwyl (1988), Multivariate Statistics: A Practical Approach: six measurements (mm) of
# 100 genuine and 100 counterfeit Swiss 1000-franc notes (length, left, right, bottom, top,
# diagonal), as in swiss3.txt of Penn State STAT 505; three rows per line.
SWISS_GENUINE = """
    214.8 131.0 131.1   9.0   9.7 141.0   214.6 129.7 129.7   8.1   9.5 141.7   214.8 129.7 129.7   8.7   9.6 142.2
    214.8 129.7 129.6   7.5  10.4 142.0   215.0 129.6 129.7  10.4   7.7 141.8   215.7 130.8 130.5   9.0  10.1 141.4
    215.5 129.5 129.7   7.9   9.6 141.6   214.5 129.6 129.2   7.2  10.7 141.7   214.9 129.4 129.7   8.2  11.0 141.9
    215.2 130.4 130.3   9.2  10.0 140.7   215.3 130.4 130.3   7.9  11.7 141.8   215.1 129.5 129.6   7.7  10.5 142.2
    215.2 130.8 129.6   7.9  10.8 141.4   214.7 129.7 129.7   7.7  10.9 141.7   215.1 129.9 129.7   7.7  10.8 141.8
    214.5 129.8 129.8   9.3   8.5 141.6   214.6 129.9 130.1   8.2   9.8 141.7   215.0 129.9 129.7   9.0   9.0 141.9
    215.2 129.6 129.6   7.4  11.5 141.5   214.7 130.2 129.9   8.6  10.0 141.9   215.0 129.9 129.3   8.4  10.0 141.4
    215.6 130.5 130.0   8.1  10.3 141.6   215.3 130.6 130.0   8.4  10.8 141.5   215.7 130.2 130.0   8.7  10.0 141.6
    215.1 129.7 129.9   7.4  10.8 141.1   215.3 130.4 130.4   8.0  11.0 142.3   215.5 130.2 130.1   8.9   9.8 142.4
    215.1 130.3 130.3   9.8   9.5 141.9   215.1 130.0 130.0   7.4  10.5 141.8   214.8 129.7 129.3   8.3   9.0 142.0
    215.2 130.1 129.8   7.9  10.7 141.8   214.8 129.7 129.7   8.6   9.1 142.3   215.0 130.0 129.6   7.7  10.5 140.7
    215.6 130.4 130.1   8.4  10.3 141.0   215.9 130.4 130.0   8.9  10.6 141.4   214.6 130.2 130.2   9.4   9.7 141.8
    215.5 130.3 130.0   8.4   9.7 141.8   215.3 129.9 129.4   7.9  10.0 142.0   215.3 130.3 130.1   8.5   9.3 142.1
    213.9 130.3 129.0   8.1   9.7 141.3   214.4 129.8 129.2   8.9   9.4 142.3   214.8 130.1 129.6   8.8   9.9 140.9
    214.9 129.6 129.4   9.3   9.0 141.7   214.9 130.4 129.7   9.0   9.8 140.9   214.8 129.4 129.1   8.2  10.2 141.0
    214.3 129.5 129.4   8.3  10.2 141.8   214.8 129.9 129.7   8.3  10.2 141.5   214.8 129.9 129.7   7.3  10.9 142.0
    214.6 129.7 129.8   7.9  10.3 141.1   214.5 129.0 129.6   7.8   9.8 142.0   214.6 129.8 129.4   7.2  10.0 141.3
    215.3 130.6 130.0   9.5   9.7 141.1   214.5 130.1 130.0   7.8  10.9 140.9   215.4 130.2 130.2   7.6  10.9 141.6
    214.5 129.4 129.5   7.9  10.0 141.4   215.2 129.7 129.4   9.2   9.4 142.0   215.7 130.0 129.4   9.2  10.4 141.2
    215.0 129.6 129.4   8.8   9.0 141.1   215.1 130.1 129.9   7.9  11.0 141.3   215.1 130.0 129.8   8.2  10.3 141.4
    215.1 129.6 129.3   8.3   9.9 141.6   215.3 129.7 129.4   7.5  10.5 141.5   215.4 129.8 129.4   8.0  10.6 141.5
    214.5 130.0 129.5   8.0  10.8 141.4   215.0 130.0 129.8   8.6  10.6 141.5   215.2 130.6 130.0   8.8  10.6 140.8
    214.6 129.5 129.2   7.7  10.3 141.3   214.8 129.7 129.3   9.1   9.5 141.5   215.1 129.6 129.8   8.6   9.8 141.8
    214.9 130.2 130.2   8.0  11.2 139.6   213.8 129.8 129.5   8.4  11.1 140.9   215.2 129.9 129.5   8.2  10.3 141.4
    215.0 129.6 130.2   8.7  10.0 141.2   214.4 129.9 129.6   7.5  10.5 141.8   215.2 129.9 129.7   7.2  10.6 142.1
    214.1 129.6 129.3   7.6  10.7 141.7   214.9 129.9 130.1   8.8  10.0 141.2   214.6 129.8 129.4   7.4  10.6 141.0
    215.2 130.5 129.8   7.9  10.9 140.9   214.6 129.9 129.4   7.9  10.0 141.8   215.1 129.7 129.7   8.6  10.3 140.6
    214.9 129.8 129.6   7.5  10.3 141.0   215.2 129.7 129.1   9.0   9.7 141.9   215.2 130.1 129.9   7.9  10.8 141.3
    215.4 130.7 130.2   9.0  11.1 141.2   215.1 129.9 129.6   8.9  10.2 141.5   215.2 129.9 129.7   8.7   9.5 141.6
    215.0 129.6 129.2   8.4  10.2 142.1   214.9 130.3 129.9   7.4  11.2 141.5   215.0 129.9 129.7   8.0  10.5 142.0
    214.7 129.7 129.3   8.6   9.6 141.6   215.4 130.0 129.9   8.5   9.7 141.4   214.9 129.4 129.5   8.2   9.9 141.5
    214.5 129.5 129.3   7.4  10.7 141.5   214.7 129.6 129.5   8.3  10.0 142.0   215.6 129.9 129.9   9.0   9.5 141.7
    215.0 130.4 130.3   9.1  10.2 141.1   214.4 129.7 129.5   8.0  10.3 141.2   215.1 130.0 129.8   9.1  10.2 141.5
    214.7 130.0 129.4   7.8  10.0 141.2
"""
SWISS_COUNTERFEIT = """
    214.4 130.1 130.3   9.7  11.7 139.8   214.9 130.5 130.2  11.0  11.5 139.5   214.9 130.3 130.1   8.7  11.7 140.2
    215.0 130.4 130.6   9.9  10.9 140.3   214.7 130.2 130.3  11.8  10.9 139.7   215.0 130.2 130.2  10.6  10.7 139.9
    215.3 130.3 130.1   9.3  12.1 140.2   214.8 130.1 130.4   9.8  11.5 139.9   215.0 130.2 129.9  10.0  11.9 139.4
    215.2 130.6 130.8  10.4  11.2 140.3   215.2 130.4 130.3   8.0  11.5 139.2   215.1 130.5 130.3  10.6  11.5 140.1
    215.4 130.7 131.1   9.7  11.8 140.6   214.9 130.4 129.9  11.4  11.0 139.9   215.1 130.3 130.0  10.6  10.8 139.7
    215.5 130.4 130.0   8.2  11.2 139.2   214.7 130.6 130.1  11.8  10.5 139.8   214.7 130.4 130.1  12.1  10.4 139.9
    214.8 130.5 130.2  11.0  11.0 140.0   214.4 130.2 129.9  10.1  12.0 139.2   214.8 130.3 130.4  10.1  12.1 139.6
    215.1 130.6 130.3  12.3  10.2 139.6   215.3 130.8 131.1  11.6  10.6 140.2   215.1 130.7 130.4  10.5  11.2 139.7
    214.7 130.5 130.5   9.9  10.3 140.1   214.9 130.0 130.3  10.2  11.4 139.6   215.0 130.4 130.4   9.4  11.6 140.2
    215.5 130.7 130.3  10.2  11.8 140.0   215.1 130.2 130.2  10.1  11.3 140.3   214.5 130.2 130.6   9.8  12.1 139.9
    214.3 130.2 130.0  10.7  10.5 139.8   214.5 130.2 129.8  12.3  11.2 139.2   214.9 130.5 130.2  10.6  11.5 139.9
    214.6 130.2 130.4  10.5  11.8 139.7   214.2 130.0 130.2  11.0  11.2 139.5   214.8 130.1 130.1  11.9  11.1 139.5
    214.6 129.8 130.2  10.7  11.1 139.4   214.9 130.7 130.3   9.3  11.2 138.3   214.6 130.4 130.4  11.3  10.8 139.8
    214.5 130.5 130.2  11.8  10.2 139.6   214.8 130.2 130.3  10.0  11.9 139.3   214.7 130.0 129.4  10.2  11.0 139.2
    214.6 130.2 130.4  11.2  10.7 139.9   215.0 130.5 130.4  10.6  11.1 139.9   214.5 129.8 129.8  11.4  10.0 139.3
    214.9 130.6 130.4  11.9  10.5 139.8   215.0 130.5 130.4  11.4  10.7 139.9   215.3 130.6 130.3   9.3  11.3 138.1
    214.7 130.2 130.1  10.7  11.0 139.4   214.9 129.9 130.0   9.9  12.3 139.4   214.9 130.3 129.9  11.9  10.6 139.8
    214.6 129.9 129.7  11.9  10.1 139.0   214.6 129.7 129.3  10.4  11.0 139.3   214.5 130.1 130.1  12.1  10.3 139.4
    214.5 130.3 130.0  11.0  11.5 139.5   215.1 130.0 130.3  11.6  10.5 139.7   214.2 129.7 129.6  10.3  11.4 139.5
    214.4 130.1 130.0  11.3  10.7 139.2   214.8 130.4 130.6  12.5  10.0 139.3   214.6 130.6 130.1   8.1  12.1 137.9
    215.6 130.1 129.7   7.4  12.2 138.4   214.9 130.5 130.1   9.9  10.2 138.1   214.6 130.1 130.0  11.5  10.6 139.5
    214.7 130.1 130.2  11.6  10.9 139.1   214.3 130.3 130.0  11.4  10.5 139.8   215.1 130.3 130.6  10.3  12.0 139.7
    216.3 130.7 130.4  10.0  10.1 138.8   215.6 130.4 130.1   9.6  11.2 138.6   214.8 129.9 129.8   9.6  12.0 139.6
    214.9 130.0 129.9  11.4  10.9 139.7   213.9 130.7 130.5   8.7  11.5 137.8   214.2 130.6 130.4  12.0  10.2 139.6
    214.8 130.5 130.3  11.8  10.5 139.4   214.8 129.6 130.0  10.4  11.6 139.2   214.8 130.1 130.0  11.4  10.5 139.6
    214.9 130.4 130.2  11.9  10.7 139.0   214.3 130.1 130.1  11.6  10.5 139.7   214.5 130.4 130.0   9.9  12.0 139.6
    214.8 130.5 130.3  10.2  12.1 139.1   214.5 130.2 130.4   8.2  11.8 137.8   215.0 130.4 130.1  11.4  10.7 139.1
    214.8 130.6 130.6   8.0  11.4 138.7   215.0 130.5 130.1  11.0  11.4 139.3   214.6 130.5 130.4  10.1  11.4 139.3
    214.7 130.2 130.1  10.7  11.1 139.5   214.7 130.4 130.0  11.5  10.7 139.4   214.5 130.4 130.0   8.0  12.2 138.5
    214.8 130.0 129.7  11.4  10.6 139.2   214.8 129.9 130.2   9.6  11.9 139.4   214.6 130.3 130.2  12.7   9.1 139.2
    215.1 130.2 129.8  10.2  12.0 139.4   215.4 130.5 130.6   8.8  11.0 138.6   214.7 130.3 130.2  10.8  11.1 139.2
    215.0 130.5 130.3   9.6  11.0 138.5   214.9 130.3 130.5  11.6  10.6 139.8   215.0 130.4 130.3   9.9  12.1 139.6
    215.1 130.3 129.9  10.3  11.5 139.7   214.8 130.3 130.4  10.6  11.1 140.0   214.7 130.7 130.8  11.2  11.2 139.4
    214.3 129.9 129.9  10.2  11.5 139.6
"""

# Fisher's (1936) iris data, as R's `iris` (sepal length, sepal width, petal length, petal
# width; cm), one species per block; five rows per line.
IRIS_SETOSA = """
    5.1 3.5 1.4 0.2   4.9 3.0 1.4 0.2   4.7 3.2 1.3 0.2   4.6 3.1 1.5 0.2   5.0 3.6 1.4 0.2
    5.4 3.9 1.7 0.4   4.6 3.4 1.4 0.3   5.0 3.4 1.5 0.2   4.4 2.9 1.4 0.2   4.9 3.1 1.5 0.1
    5.4 3.7 1.5 0.2   4.8 3.4 1.6 0.2   4.8 3.0 1.4 0.1   4.3 3.0 1.1 0.1   5.8 4.0 1.2 0.2
    5.7 4.4 1.5 0.4   5.4 3.9 1.3 0.4   5.1 3.5 1.4 0.3   5.7 3.8 1.7 0.3   5.1 3.8 1.5 0.3
    5.4 3.4 1.7 0.2   5.1 3.7 1.5 0.4   4.6 3.6 1.0 0.2   5.1 3.3 1.7 0.5   4.8 3.4 1.9 0.2
    5.0 3.0 1.6 0.2   5.0 3.4 1.6 0.4   5.2 3.5 1.5 0.2   5.2 3.4 1.4 0.2   4.7 3.2 1.6 0.2
    4.8 3.1 1.6 0.2   5.4 3.4 1.5 0.4   5.2 4.1 1.5 0.1   5.5 4.2 1.4 0.2   4.9 3.1 1.5 0.2
    5.0 3.2 1.2 0.2   5.5 3.5 1.3 0.2   4.9 3.6 1.4 0.1   4.4 3.0 1.3 0.2   5.1 3.4 1.5 0.2
    5.0 3.5 1.3 0.3   4.5 2.3 1.3 0.3   4.4 3.2 1.3 0.2   5.0 3.5 1.6 0.6   5.1 3.8 1.9 0.4
    4.8 3.0 1.4 0.3   5.1 3.8 1.6 0.2   4.6 3.2 1.4 0.2   5.3 3.7 1.5 0.2   5.0 3.3 1.4 0.2
"""
IRIS_VERSICOLOR = """
    7.0 3.2 4.7 1.4   6.4 3.2 4.5 1.5   6.9 3.1 4.9 1.5   5.5 2.3 4.0 1.3   6.5 2.8 4.6 1.5
    5.7 2.8 4.5 1.3   6.3 3.3 4.7 1.6   4.9 2.4 3.3 1.0   6.6 2.9 4.6 1.3   5.2 2.7 3.9 1.4
    5.0 2.0 3.5 1.0   5.9 3.0 4.2 1.5   6.0 2.2 4.0 1.0   6.1 2.9 4.7 1.4   5.6 2.9 3.6 1.3
    6.7 3.1 4.4 1.4   5.6 3.0 4.5 1.5   5.8 2.7 4.1 1.0   6.2 2.2 4.5 1.5   5.6 2.5 3.9 1.1
    5.9 3.2 4.8 1.8   6.1 2.8 4.0 1.3   6.3 2.5 4.9 1.5   6.1 2.8 4.7 1.2   6.4 2.9 4.3 1.3
    6.6 3.0 4.4 1.4   6.8 2.8 4.8 1.4   6.7 3.0 5.0 1.7   6.0 2.9 4.5 1.5   5.7 2.6 3.5 1.0
    5.5 2.4 3.8 1.1   5.5 2.4 3.7 1.0   5.8 2.7 3.9 1.2   6.0 2.7 5.1 1.6   5.4 3.0 4.5 1.5
    6.0 3.4 4.5 1.6   6.7 3.1 4.7 1.5   6.3 2.3 4.4 1.3   5.6 3.0 4.1 1.3   5.5 2.5 4.0 1.3
    5.5 2.6 4.4 1.2   6.1 3.0 4.6 1.4   5.8 2.6 4.0 1.2   5.0 2.3 3.3 1.0   5.6 2.7 4.2 1.3
    5.7 3.0 4.2 1.2   5.7 2.9 4.2 1.3   6.2 2.9 4.3 1.3   5.1 2.5 3.0 1.1   5.7 2.8 4.1 1.3
"""
IRIS_VIRGINICA = """
    6.3 3.3 6.0 2.5   5.8 2.7 5.1 1.9   7.1 3.0 5.9 2.1   6.3 2.9 5.6 1.8   6.5 3.0 5.8 2.2
    7.6 3.0 6.6 2.1   4.9 2.5 4.5 1.7   7.3 2.9 6.3 1.8   6.7 2.5 5.8 1.8   7.2 3.6 6.1 2.5
    6.5 3.2 5.1 2.0   6.4 2.7 5.3 1.9   6.8 3.0 5.5 2.1   5.7 2.5 5.0 2.0   5.8 2.8 5.1 2.4
    6.4 3.2 5.3 2.3   6.5 3.0 5.5 1.8   7.7 3.8 6.7 2.2   7.7 2.6 6.9 2.3   6.0 2.2 5.0 1.5
    6.9 3.2 5.7 2.3   5.6 2.8 4.9 2.0   7.7 2.8 6.7 2.0   6.3 2.7 4.9 1.8   6.7 3.3 5.7 2.1
    7.2 3.2 6.0 1.8   6.2 2.8 4.8 1.8   6.1 3.0 4.9 1.8   6.4 2.8 5.6 2.1   7.2 3.0 5.8 1.6
    7.4 2.8 6.1 1.9   7.9 3.8 6.4 2.0   6.4 2.8 5.6 2.2   6.3 2.8 5.1 1.5   6.1 2.6 5.6 1.4
    7.7 3.0 6.1 2.3   6.3 3.4 5.6 2.4   6.4 3.1 5.5 1.8   6.0 3.0 4.8 1.8   6.9 3.1 5.4 2.1
    6.7 3.1 5.6 2.4   6.9 3.1 5.1 2.3   5.8 2.7 5.1 1.9   6.8 3.2 5.9 2.3   6.7 3.3 5.7 2.5
    6.7 3.0 5.2 2.3   6.3 2.5 5.0 1.9   6.5 3.0 5.2 2.0   6.2 3.4 5.4 2.3   5.9 3.0 5.1 1.8
"""


@pytest.fixture
def without_scipy(monkeypatch):
    """Make ``import scipy`` fail inside gaussum.inference's linear algebra for one test."""
    from gaussum import inference

    inference._linalg.cache_clear()
    monkeypatch.setitem(sys.modules, "scipy", None)
    yield
    monkeypatch.undo()
    inference._linalg.cache_clear()


def test_distances_without_scipy_match(without_scipy):
    """Without scipy the distances use numpy's LU solve and agree with the explicit-inverse forms."""
    from gaussum import inference

    assert inference._linalg()[2] is np.linalg.solve
    rng = np.random.default_rng(31)
    A, B = correlated(rng, 60, 4), correlated(rng, 50, 4, offset=0.5)
    Sa, Sb = np.cov(A, rowvar=False), np.cov(B, rowvar=False)
    ma, mb = A.mean(axis=0), B.mean(axis=0)
    a, b = summary(A), summary(B)
    assert kl_divergence(a, b) == pytest.approx(reference_kl(ma, Sa, mb, Sb), rel=1e-9)
    assert bhattacharyya_distance(a, b) == pytest.approx(reference_bhattacharyya(ma, Sa, mb, Sb), rel=1e-9)
    expected = np.sqrt(np.einsum("ij,jk,ik->i", B - ma, np.linalg.inv(Sa), B - ma))
    np.testing.assert_allclose(mahalanobis(B, a), expected, rtol=1e-9)
