"""gaussum.models' Gaussian functions against numpy, scipy and scikit-learn on the raw rows."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from scipy.spatial.distance import mahalanobis as scipy_mahalanobis
from sklearn.covariance import OAS, ShrunkCovariance
from sklearn.preprocessing import StandardScaler

from gaussum import GaussianSummary, GroupedSummary
from gaussum.models import (
    conditional,
    logpdf,
    mahalanobis,
    marginal,
    mean_confidence_interval,
    partial_correlation,
    precision,
    sample,
    sem,
    shrunk_covariance,
    standardize,
)
from strategies import datasets, tolerance


def rows(seed: int, n: int, d: int, offset: float = 0.0) -> np.ndarray:
    """Correlated rows at `offset` with spreads from 0.5 to 3."""
    rng = np.random.default_rng(seed)
    mixing = np.eye(d) + 0.6 * rng.standard_normal((d, d)) / np.sqrt(d)
    return offset + rng.standard_normal((n, d)) @ mixing * rng.uniform(0.5, 3.0, d)


def weighted(seed: int, n: int, kind: str) -> tuple[dict, dict]:
    """Keyword arguments for from_samples and for np.cov: none, frequency or reliability weights."""
    rng = np.random.default_rng(seed + 100)
    if kind == "none":
        return {}, {}
    if kind == "frequency":
        f = rng.integers(1, 5, size=n)
        return {"weights": f}, {"fweights": f}
    a = rng.uniform(0.1, 3.0, size=n)
    return {"aweights": a}, {"aweights": a}


CASES = [(seed, n, d, offset) for seed in (0, 1, 2) for n, d, offset in [(10, 2, 0.0), (60, 4, 1e3), (300, 7, -50.0)]]
KINDS = ["none", "frequency", "reliability"]


# -- precision and partial correlation ----------------------------------------------------------


@pytest.mark.parametrize(("seed", "n", "d", "offset"), CASES)
@pytest.mark.parametrize("kind", KINDS)
def test_precision_equals_inverse_of_np_cov(seed, n, d, offset, kind):
    """precision(s, ddof) equals np.linalg.inv(np.cov(X, ddof=, fweights=/aweights=)); ddof 1 or 0 by seed."""
    X = rows(seed, n, d, offset)
    ours, numpys = weighted(seed, n, kind)
    s = GaussianSummary.from_samples(X, **ours)
    ddof = 1 - seed % 2
    reference = np.linalg.inv(np.cov(X, rowvar=False, ddof=ddof, **numpys))
    P = precision(s, ddof)
    assert np.array_equal(P, P.T)
    np.testing.assert_allclose(P, reference, rtol=1e-9, atol=1e-9 * np.abs(reference).max())


def _partial_by_regression(X: np.ndarray, i: int, j: int) -> float:
    """Correlation of the residuals of columns i and j, each regressed (with an intercept) on the rest."""
    others = np.column_stack([np.ones(len(X)), np.delete(X, [i, j], axis=1)])
    residual = [X[:, c] - others @ np.linalg.lstsq(others, X[:, c], rcond=None)[0] for c in (i, j)]
    return float(np.corrcoef(residual)[0, 1])


@pytest.mark.parametrize(("seed", "n", "d", "offset"), CASES)
def test_partial_correlation_equals_correlation_of_residuals(seed, n, d, offset):
    """Each partial correlation is the correlation of the two residuals after regressing out the rest."""
    X = rows(seed, n, d, offset)
    rho = partial_correlation(GaussianSummary.from_samples(X))
    assert np.array_equal(np.diagonal(rho), np.ones(d)) and np.array_equal(rho, rho.T)
    for i in range(d):
        for j in range(i + 1, d):
            assert rho[i, j] == pytest.approx(_partial_by_regression(X, i, j), abs=1e-9)


def test_grouped_precision_and_partial_correlation_are_stacked_in_key_order():
    """For a GroupedSummary, arrays of shape (g, d, d), row i for the i-th key."""
    X = rows(3, 400, 3, offset=10.0)
    keys = np.random.default_rng(3).choice(["x", "y"], size=400)
    g = GroupedSummary.from_samples(keys, X)
    P, rho = precision(g), partial_correlation(g)
    assert P.shape == rho.shape == (2, 3, 3)
    for i, key in enumerate(["x", "y"]):
        np.testing.assert_allclose(P[i], np.linalg.inv(np.cov(X[keys == key], rowvar=False)), rtol=1e-9)
        np.testing.assert_allclose(rho[i], partial_correlation(g[key]), rtol=1e-14)


def test_singular_covariances_are_refused_with_the_reason():
    """A constant column, too few rows or an exact linear dependence raise a one-line ValueError."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    X[:, 1] = 2.0
    singular = r"the covariance given to precision is singular: variable 1 has zero variance"
    with pytest.raises(ValueError, match=singular):
        precision(GaussianSummary.from_samples(X))
    with pytest.raises(ValueError, match=r"singular: 3 variables but only 2 degrees of freedom"):
        precision(GaussianSummary.from_samples(rng.standard_normal((3, 3))))
    X[:, 1] = X[:, 0] - X[:, 2]
    with pytest.raises(ValueError, match=r"near-singular: its correlation matrix has condition number"):
        partial_correlation(GaussianSummary.from_samples(X))
    with pytest.raises(ValueError, match=r"precision needs the covariances between variables, which a diagonal"):
        precision(GaussianSummary.from_samples(X, diagonal=True))
    keys = np.array([0] * 17 + [1] * 3)
    with pytest.raises(ValueError, match=r"^key 1: the covariance given to precision is singular: 3 variables"):
        precision(GroupedSummary.from_samples(keys, rng.standard_normal((20, 3))))


# -- shrinkage ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "n", "d", "offset"), [*CASES, (4, 5, 12, 1.0), (5, 30, 1, 3.0)])
def test_oas_equals_sklearn(seed, n, d, offset):
    """OAS from the summary equals sklearn.covariance.OAS(assume_centered=False) on the rows."""
    X = rows(seed, n, d, offset)
    result = shrunk_covariance(GaussianSummary.from_samples(X))
    reference = OAS(assume_centered=False).fit(X)
    assert result.method == "oas"
    assert result.shrinkage == pytest.approx(reference.shrinkage_, rel=1e-10, abs=1e-15)
    np.testing.assert_allclose(result.covariance, reference.covariance_, rtol=1e-10)


def test_oas_with_frequency_weights_equals_sklearn_on_repeated_rows():
    """Integer weights: sklearn's OAS of the rows repeated (n is the number of rows, effective_n here)."""
    X = rows(6, 40, 5)
    f = np.random.default_rng(6).integers(1, 4, size=40)
    result = shrunk_covariance(GaussianSummary.from_samples(X, weights=f))
    reference = OAS().fit(np.repeat(X, f, axis=0))
    assert result.shrinkage == pytest.approx(reference.shrinkage_, rel=1e-10)
    np.testing.assert_allclose(result.covariance, reference.covariance_, rtol=1e-10)


@pytest.mark.parametrize("shrinkage", [0.0, 0.1, 0.5, 1.0])
def test_fixed_shrinkage_equals_sklearn(shrinkage):
    """method='fixed' equals sklearn.covariance.ShrunkCovariance(shrinkage=)."""
    X = rows(7, 50, 4, offset=-3.0)
    result = shrunk_covariance(GaussianSummary.from_samples(X), "fixed", shrinkage=shrinkage)
    np.testing.assert_allclose(result.covariance, ShrunkCovariance(shrinkage=shrinkage).fit(X).covariance_, rtol=1e-10)
    assert result.shrinkage == shrinkage
    assert repr(result) == f"ShrunkCovariance(method='fixed', shrinkage={shrinkage:g}, d=4)"


def test_shrinkage_per_key_and_its_errors():
    """A dict per key; an unknown method, a missing, superfluous or out-of-range shrinkage is refused."""
    X = rows(8, 200, 3)
    keys = np.arange(200) % 2
    results = shrunk_covariance(GroupedSummary.from_samples(keys, X))
    for key, result in results.items():
        np.testing.assert_allclose(result.covariance, OAS().fit(X[keys == key]).covariance_, rtol=1e-10)
    s = GaussianSummary.from_samples(X)
    for kwargs, message in [
        ({"method": "ledoit_wolf"}, r"method must be one of \('oas', 'fixed'\), got 'ledoit_wolf'"),
        ({"method": "fixed"}, r"method 'fixed' needs a shrinkage in \[0, 1\]"),
        ({"method": "fixed", "shrinkage": 1.5}, r"shrinkage must be in \[0, 1\], got 1.5"),
        ({"method": "oas", "shrinkage": 0.2}, r"method 'oas' chooses its own shrinkage; got shrinkage=0.2"),
    ]:
        with pytest.raises(ValueError, match=message):
            shrunk_covariance(s, **kwargs)


# -- marginals and conditionals -----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_marginal_equals_the_summary_of_those_columns(kind):
    """marginal(s, vars) is the summary of X[:, vars], weights (and w2) included; an int gives scalar data."""
    X = rows(9, 50, 4, offset=7.0)
    ours, _ = weighted(9, 50, kind)
    s = GaussianSummary.from_samples(X, **ours)
    for variables in ([2, 0], [3], [0, 1, 2, 3], [-1, 1]):
        expected = GaussianSummary.from_samples(X[:, variables], **ours)
        got = marginal(s, variables)
        assert got.isclose(expected, rtol=1e-13) and got.w2 == pytest.approx(s.w2, rel=1e-15)
    scalar = marginal(s, 1)
    assert scalar.mean.shape == () and scalar.isclose(GaussianSummary.from_samples(X[:, 1], **ours), rtol=1e-13)
    diagonal = marginal(GaussianSummary.from_samples(X, diagonal=True, **ours), [3, 1])
    assert diagonal.diagonal
    assert diagonal.isclose(GaussianSummary.from_samples(X[:, [3, 1]], diagonal=True, **ours), rtol=1e-13)


def test_grouped_marginal_is_a_grouped_summary():
    """marginal of a GroupedSummary is the grouped summary of those columns."""
    X = rows(10, 90, 3)
    keys = np.arange(90) % 3
    g = marginal(GroupedSummary.from_samples(keys, X), [2, 0])
    assert isinstance(g, GroupedSummary)
    expected = GroupedSummary.from_samples(keys, X[:, [2, 0]])
    for (k1, a), (k2, b) in zip(g, expected, strict=True):
        assert k1 == k2 and a.isclose(b, rtol=1e-13)
    with pytest.raises(ValueError, match=r"variables names variable 0 more than once"):
        marginal(GroupedSummary.from_samples(keys, X), [0, 0])


@given(datasets(min_rows=1, max_rows=30, max_d=4, scalar=False))
def test_marginal_of_a_merge_is_the_merge_of_marginals(X):
    """Taking variables commutes with merging: marginal(a + b) == marginal(a) + marginal(b)."""
    half = len(X) // 2
    a, b = GaussianSummary.from_samples(X[:half]), GaussianSummary.from_samples(X[half:])
    variables = list(range(X.shape[1]))[::-1]
    # Equal to rounding: the merge kernel need not round column-reordered data the same way.
    assert marginal(a + b, variables).isclose(marginal(a, variables) + marginal(b, variables), rtol=tolerance(X))


def _block_inverse_conditional(X, given, values, ddof=1):
    """Conditional mean and covariance from the blocks of the inverse covariance (the textbook route)."""
    S = np.cov(X, rowvar=False, ddof=ddof)
    mean = X.mean(axis=0)
    rest = [i for i in range(X.shape[1]) if i not in given]
    P = np.linalg.inv(S)
    Prr, Prg = P[np.ix_(rest, rest)], P[np.ix_(rest, given)]
    cov = np.linalg.inv(Prr)
    cond_mean = mean[rest] - (cov @ Prg @ (np.atleast_2d(values) - mean[given]).T).T
    return cond_mean, cov, rest


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("given", [[0], [3, 1], [4, 0, 2]])
def test_conditional_equals_block_inversion(seed, given):
    """Mean and covariance of the rest given values equal the blocks of the inverse covariance."""
    X = rows(seed, 120, 5, offset=30.0)
    values = 30.0 + np.random.default_rng(seed).standard_normal((4, len(given)))
    result = conditional(GaussianSummary.from_samples(X), given, values)
    mean, cov, rest = _block_inverse_conditional(X, given, values)
    assert result.variables == tuple(rest) and result.given == tuple(given)
    np.testing.assert_allclose(result.mean, mean, rtol=1e-10)
    np.testing.assert_allclose(result.covariance, cov, rtol=1e-10, atol=1e-12 * np.abs(cov).max())
    one = conditional(GaussianSummary.from_samples(X), given, values[0])
    assert one.mean.shape == (len(rest),)
    np.testing.assert_allclose(one.mean, mean[0], rtol=1e-10)
    # The coefficients are those of regressing the rest on the given variables.
    S = np.cov(X, rowvar=False)
    np.testing.assert_allclose(result.coef, S[np.ix_(rest, given)] @ np.linalg.inv(S[np.ix_(given, given)]), rtol=1e-9)


def test_conditional_per_key_and_errors():
    """A dict per key; bad given and values shapes are refused; a constant given variable is singular."""
    X = rows(11, 100, 3)
    keys = np.arange(100) % 2
    results = conditional(GroupedSummary.from_samples(keys, X), [1], [0.5])
    for key, result in results.items():
        mean, cov, _ = _block_inverse_conditional(X[keys == key], [1], [0.5])
        np.testing.assert_allclose(result.mean, mean[0], rtol=1e-10)
        np.testing.assert_allclose(result.covariance, cov, rtol=1e-10)
    s = GaussianSummary.from_samples(X)
    assert repr(conditional(s, 0, [1.0])).startswith("ConditionalResult(variables=[1, 2], given=[0], mean=[")
    with pytest.raises(ValueError, match=r"given must name at least one and at most 2 of the 3 variables"):
        conditional(s, [0, 1, 2], [1.0, 2.0, 3.0])
    shape = r"values must have shape \(2,\) or \(k, 2\) for 2 given variable\(s\), got \(3,\)"
    with pytest.raises(ValueError, match=shape):
        conditional(s, [0, 1], [1.0, 2.0, 3.0])
    X[:, 0] = 1.0
    singular = r"the covariance of the given variables is singular: variable 0 has zero variance"
    with pytest.raises(ValueError, match=singular):
        conditional(GaussianSummary.from_samples(X), [0], [1.0])


# -- scoring new rows ---------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "n", "d", "offset"), CASES)
@pytest.mark.parametrize("kind", KINDS)
def test_logpdf_and_mahalanobis_equal_scipy(seed, n, d, offset, kind):
    """logpdf equals multivariate_normal(mean, cov).logpdf; mahalanobis scipy's distance; ddof 1 or 0 by seed."""
    X = rows(seed, n, d, offset)
    ours, numpys = weighted(seed, n, kind)
    s = GaussianSummary.from_samples(X, **ours)
    points = rows(seed + 50, 6, d, offset)
    ddof = 1 - seed % 2
    cov = np.cov(X, rowvar=False, ddof=ddof, **numpys)
    mean = np.average(X, axis=0, weights=None if not numpys else next(iter(numpys.values())))
    reference = scipy.stats.multivariate_normal(mean, cov).logpdf(points)
    np.testing.assert_allclose(logpdf(s, points, ddof), reference, rtol=1e-10)
    assert logpdf(s, points[0], ddof) == pytest.approx(reference[0], rel=1e-10)
    VI = np.linalg.inv(cov)
    expected = [scipy_mahalanobis(p, mean, VI) for p in points]
    np.testing.assert_allclose(mahalanobis(s, points, ddof), expected, rtol=1e-9)
    assert isinstance(mahalanobis(s, points[0], ddof), float)


def test_scalar_and_diagonal_summaries_score_as_scipy():
    """Scalar data scores as scipy.stats.norm; a diagonal summary as a diagonal covariance."""
    x = np.random.default_rng(12).normal(5.0, 2.0, 40)
    s = GaussianSummary.from_samples(x)
    points = np.array([1.0, 5.0, 9.5])
    np.testing.assert_allclose(logpdf(s, points), scipy.stats.norm(x.mean(), x.std(ddof=1)).logpdf(points), rtol=1e-12)
    np.testing.assert_allclose(mahalanobis(s, points), np.abs(points - x.mean()) / x.std(ddof=1), rtol=1e-12)
    assert isinstance(logpdf(s, 1.0), float)
    X = rows(12, 40, 3)
    diagonal = GaussianSummary.from_samples(X, diagonal=True)
    reference = scipy.stats.multivariate_normal(X.mean(axis=0), np.diag(X.var(axis=0, ddof=1))).logpdf(X[:4])
    np.testing.assert_allclose(logpdf(diagonal, X[:4]), reference, rtol=1e-12)


def test_grouped_scores_are_stacked_per_key():
    """For a GroupedSummary, scores of shape (g, k): every point under every key (argmax classifies)."""
    rng = np.random.default_rng(13)
    X = np.vstack([rng.normal(0.0, 1.0, (100, 2)), rng.normal(6.0, 1.0, (100, 2))])
    keys = np.repeat(["low", "high"], 100)
    g = GroupedSummary.from_samples(keys, X)
    points = np.array([[0.0, 0.0], [6.0, 6.0], [5.0, 7.0]])
    scores = logpdf(g, points)
    assert scores.shape == (2, 3)
    np.testing.assert_allclose(scores[0], logpdf(g["high"], points), rtol=1e-14)
    assert g.keys()[np.argmax(scores, axis=0)].tolist() == ["low", "high", "high"]
    assert mahalanobis(g, points).shape == (2, 3) and mahalanobis(g, points[0]).shape == (2,)


def test_scoring_errors():
    """Wrong point shapes and singular covariances raise one-line errors."""
    X = rows(14, 30, 3)
    s = GaussianSummary.from_samples(X)
    for function in (logpdf, mahalanobis):
        shape = r"x must have shape \(3,\) or \(k, 3\) for a summary of mean shape \(3,\), got \(2,\)"
        with pytest.raises(ValueError, match=shape):
            function(s, [1.0, 2.0])
        with pytest.raises(ValueError, match=r"needs more observations: n=1 leaves no degrees of freedom"):
            function(GaussianSummary.from_samples(X[:1]), X[0])
        X2 = X.copy()
        X2[:, 2] = 0.0
        with pytest.raises(ValueError, match=r"variable 2 has zero variance"):
            function(GaussianSummary.from_samples(X2), X[0])


# -- sampling and scaling -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_sample_moments_are_within_four_standard_errors(seed):
    """200,000 draws: each mean and covariance entry within 4 standard errors of the summary's."""
    cov = np.array([[4.0, 1.2, -0.6], [1.2, 1.0, 0.1], [-0.6, 0.1, 0.5]])
    s = GaussianSummary.from_moments(1_000, [1e3, -2.0, 0.0], cov)
    N = 200_000
    draws = sample(s, N, rng=seed)
    assert draws.shape == (N, 3)
    se_mean = np.sqrt(np.diag(cov) / N)
    assert (np.abs(draws.mean(axis=0) - s.mean) < 4 * se_mean).all()
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / N)
    assert (np.abs(np.cov(draws, rowvar=False) - cov) < 4 * se_cov).all()
    assert np.array_equal(sample(s, 10, rng=np.random.default_rng(seed)), sample(s, 10, rng=seed))


def test_sample_scalar_diagonal_and_singular():
    """Scalar data gives (size,); a diagonal summary independent draws; a singular covariance draws in its range."""
    x = sample(GaussianSummary.from_moments(10, 3.0, 4.0), 50_000, rng=1)
    assert x.shape == (50_000,) and abs(x.mean() - 3.0) < 4 * 2.0 / np.sqrt(50_000)
    diagonal = sample(GaussianSummary.from_moments(10, [0.0, 0.0], [1.0, 9.0]), 50_000, rng=2)
    assert abs(np.corrcoef(diagonal, rowvar=False)[0, 1]) < 4 / np.sqrt(50_000)
    base = np.random.default_rng(3).standard_normal((40, 2))
    singular = GaussianSummary.from_samples(np.column_stack([base, base[:, 0] + base[:, 1]]))
    draws = sample(singular, 1_000, rng=3)
    m = singular.mean
    np.testing.assert_allclose(draws[:, 2] - draws[:, 0] - draws[:, 1], m[2] - m[0] - m[1], atol=1e-9)
    assert sample(singular, 0).shape == (0, 3)
    with pytest.raises(ValueError, match=r"size must be a non-negative integer, got -1"):
        sample(singular, -1)
    kind = r"sample takes a GaussianSummary \(pick one key: g\[key\]\), got GroupedSummary"
    with pytest.raises(TypeError, match=kind):
        sample(GroupedSummary.from_samples([0, 0, 1, 1], np.ones((4, 2))), 3)


@pytest.mark.parametrize(("seed", "n", "d", "offset"), CASES)
@pytest.mark.parametrize("weighted_fit", [False, True])
def test_standardize_equals_standard_scaler(seed, n, d, offset, weighted_fit):
    """standardize(s, x) equals StandardScaler().fit(X, sample_weight=w).transform(x)."""
    X = rows(seed, n, d, offset)
    w = np.random.default_rng(seed).uniform(0.5, 2.0, n) if weighted_fit else None
    s = GaussianSummary.from_samples(X, weights=w)
    points = rows(seed + 1, 5, d, offset)
    reference = StandardScaler().fit(X, sample_weight=w).transform(points)
    np.testing.assert_allclose(standardize(s, points), reference, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(standardize(s, points[0]), reference[0], rtol=1e-9, atol=1e-9)


def test_standardize_constant_columns_and_scalar_data():
    """A constant column is only centred (as StandardScaler); scalar data keeps its shape."""
    X = rows(15, 20, 3)
    X[:, 1] = 4.0
    s = GaussianSummary.from_samples(X)
    np.testing.assert_allclose(standardize(s, X), StandardScaler().fit(X).transform(X), rtol=1e-12, atol=1e-12)
    x = X[:, 0]
    scalar = GaussianSummary.from_samples(x)
    assert standardize(scalar, 1.0).shape == () and standardize(scalar, x).shape == (20,)
    np.testing.assert_allclose(standardize(scalar, x), (x - x.mean()) / x.std(), rtol=1e-12, atol=1e-12)
    with pytest.raises(TypeError, match=r"standardize takes a GaussianSummary \(pick one key: g\[key\]\)"):
        standardize(GroupedSummary.from_samples([0, 1], np.ones((2, 3))), X)


# -- the uncertainty of the mean ----------------------------------------------------------------


@pytest.mark.parametrize(("seed", "n", "d", "offset"), CASES)
def test_sem_and_interval_equal_scipy(seed, n, d, offset):
    """sem equals scipy.stats.sem; the interval equals scipy.stats.t.interval(level, n - 1, mean, sem)."""
    X = rows(seed, n, d, offset)
    s = GaussianSummary.from_samples(X)
    np.testing.assert_allclose(sem(s), scipy.stats.sem(X, axis=0), rtol=1e-10)
    for level in (0.5, 0.95, 0.999):
        result = mean_confidence_interval(s, level)
        low, high = scipy.stats.t.interval(level, n - 1, loc=X.mean(axis=0), scale=scipy.stats.sem(X, axis=0))
        np.testing.assert_allclose(result.low, low, rtol=1e-10)
        np.testing.assert_allclose(result.high, high, rtol=1e-10)
        assert result.level == level and result.df == n - 1


def test_sem_and_interval_with_weights():
    """Frequency weights: scipy on the rows repeated. Reliability weights: sigma sqrt(sum a²) / sum a."""
    X = rows(16, 30, 2)
    f = np.random.default_rng(16).integers(1, 4, size=30)
    repeated = np.repeat(X, f, axis=0)
    s = GaussianSummary.from_samples(X, weights=f)
    np.testing.assert_allclose(sem(s), scipy.stats.sem(repeated, axis=0), rtol=1e-10)
    se = scipy.stats.sem(repeated, axis=0)
    low, high = scipy.stats.t.interval(0.9, len(repeated) - 1, loc=repeated.mean(axis=0), scale=se)
    np.testing.assert_allclose(mean_confidence_interval(s, 0.9).low, low, rtol=1e-10)
    np.testing.assert_allclose(mean_confidence_interval(s, 0.9).high, high, rtol=1e-10)
    a = np.random.default_rng(17).uniform(0.2, 2.0, size=30)
    sigma = np.sqrt(np.diag(np.cov(X, rowvar=False, aweights=a)))
    expected = sigma * np.sqrt((a**2).sum()) / a.sum()
    np.testing.assert_allclose(sem(GaussianSummary.from_samples(X, aweights=a)), expected, rtol=1e-10)


def test_sem_and_interval_scalar_grouped_and_errors():
    """Scalar data gives 0-d arrays; grouped gives (g, d) and a dict; too few rows and bad levels are refused."""
    x = np.random.default_rng(18).standard_normal(25)
    result = mean_confidence_interval(GaussianSummary.from_samples(x))
    assert result.low.shape == ()
    assert float(sem(GaussianSummary.from_samples(x))) == pytest.approx(scipy.stats.sem(x), rel=1e-12)
    X = rows(18, 60, 2)
    keys = np.arange(60) % 3
    g = GroupedSummary.from_samples(keys, X)
    assert sem(g).shape == (3, 2)
    np.testing.assert_allclose(sem(g)[2], scipy.stats.sem(X[keys == 2], axis=0), rtol=1e-10)
    assert list(mean_confidence_interval(g)) == [0, 1, 2]
    with pytest.raises(ValueError, match=r"mean_confidence_interval needs effective n > 1, got 1"):
        mean_confidence_interval(GaussianSummary.from_samples(X[:1]))
    for level in (0.0, 1.0, 95):
        with pytest.raises(ValueError, match=rf"level must be in \(0, 1\), got {float(level)!r}"):
            mean_confidence_interval(GaussianSummary.from_samples(X), level)
    with pytest.raises(ValueError, match=r"sem needs more observations: n=1 leaves no degrees of freedom"):
        sem(GaussianSummary.from_samples(X[:1]))
    assert repr(result).startswith("MeanInterval(level=0.95, df=24, low=")
