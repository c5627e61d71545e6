"""gaussum.models.pca against scikit-learn's PCA on the raw rows (up to the sign rule)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from sklearn.decomposition import PCA

from gaussum import GaussianSummary, GroupedSummary
from gaussum.models import PCAResult, pca
from strategies import datasets


def rows(seed: int, n: int, d: int, offset: float = 0.0) -> np.ndarray:
    """Correlated rows whose covariance has well separated eigenvalues (so components are unique)."""
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return offset + (rng.standard_normal((n, d)) * 2.0 ** -np.arange(d)) @ rotation.T


def signed(components: np.ndarray) -> np.ndarray:
    """The sign rule applied to a reference: each row's largest-magnitude entry made positive."""
    largest = components[np.arange(len(components)), np.argmax(np.abs(components), axis=1)]
    return components * np.sign(largest)[:, None]


def assert_pca_equal(result: PCAResult, reference: PCA, X: np.ndarray, rtol: float = 1e-9) -> None:
    k = reference.n_components_
    assert result.components.shape == (k, X.shape[1])
    np.testing.assert_allclose(result.components, signed(reference.components_), rtol=0, atol=rtol)
    np.testing.assert_allclose(result.explained_variance, reference.explained_variance_, rtol=rtol)
    np.testing.assert_allclose(result.explained_variance_ratio, reference.explained_variance_ratio_, rtol=rtol)
    np.testing.assert_allclose(result.singular_values, reference.singular_values_, rtol=rtol)
    # On the scale of the data: a mean near zero is a small difference of large terms, and
    # sklearn's (numpy's pairwise sum) can be tens of ulps off where gaussum's is correctly rounded.
    np.testing.assert_allclose(result.mean, reference.mean_, rtol=1e-14, atol=1e-14 * float(X.std(axis=0).max()))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("n", "d", "k"), [(30, 2, None), (200, 5, 3), (500, 8, 1), (100, 4, 4)])
@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_pca_equals_sklearn(seed, n, d, k, offset):
    """Components (up to sign), explained variance and ratio, singular values, scores equal sklearn's."""
    X = rows(seed, n, d, offset)
    result = pca(GaussianSummary.from_samples(X), k=k)
    reference = PCA(n_components=k, svd_solver="full").fit(X)
    assert_pca_equal(result, reference, X)
    flips = np.sign(np.sum(result.components * reference.components_, axis=1))
    scale = np.abs(reference.transform(X)).max()
    np.testing.assert_allclose(result.transform(X), reference.transform(X) * flips, rtol=0, atol=1e-9 * scale)
    z = result.transform(X[:7])
    np.testing.assert_allclose(result.inverse_transform(z), reference.inverse_transform(z * flips),
                               rtol=0, atol=1e-9 * max(1.0, offset))


@pytest.mark.parametrize("seed", [0, 1])
def test_whitening_equals_sklearn(seed):
    """whiten=True scores have unit variance and invert back, as sklearn's PCA(whiten=True)."""
    X = rows(seed, 300, 4, offset=5.0)
    result = pca(GaussianSummary.from_samples(X), k=3, whiten=True)
    reference = PCA(n_components=3, whiten=True, svd_solver="full").fit(X)
    flips = np.sign(np.sum(result.components * reference.components_, axis=1))
    scores = result.transform(X)
    np.testing.assert_allclose(scores, reference.transform(X) * flips, rtol=0, atol=1e-9)
    np.testing.assert_allclose(scores.var(axis=0, ddof=1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(result.inverse_transform(scores), reference.inverse_transform(scores * flips), atol=1e-9)


def test_frequency_weights_equal_sklearn_on_repeated_rows():
    """Integer weights give sklearn's PCA of the rows repeated by their weights."""
    X = rows(3, 60, 3, offset=-20.0)
    w = np.random.default_rng(3).integers(1, 6, size=60)
    result = pca(GaussianSummary.from_samples(X, weights=w))
    repeated = np.repeat(X, w, axis=0)
    assert_pca_equal(result, PCA(svd_solver="full").fit(repeated), repeated)


def test_reliability_weights_use_the_unbiased_weighted_covariance():
    """With aweights the explained variances are the eigenvalues of np.cov(aweights=)."""
    X = rows(4, 80, 3)
    a = np.random.default_rng(4).uniform(0.1, 2.0, size=80)
    result = pca(GaussianSummary.from_samples(X, aweights=a))
    reference = np.linalg.eigvalsh(np.cov(X, rowvar=False, aweights=a))[::-1]
    np.testing.assert_allclose(result.explained_variance, reference, rtol=1e-10)


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.99, 0.999999])
def test_fraction_of_variance_picks_k_as_sklearn(fraction):
    """A float k keeps the fewest components explaining more than that fraction, as sklearn's n_components."""
    X = rows(5, 400, 6)
    result = pca(GaussianSummary.from_samples(X), k=fraction)
    reference = PCA(n_components=fraction, svd_solver="full").fit(X)
    assert_pca_equal(result, reference, X)


def test_grouped_summary_gives_one_pca_per_key():
    """A dict of PCA results in key order, each equal to sklearn on that key's rows."""
    X = rows(6, 600, 3, offset=100.0)
    keys = np.random.default_rng(6).integers(0, 3, size=600)
    results = pca(GroupedSummary.from_samples(keys, X), k=2)
    assert list(results) == [0, 1, 2]
    for key, result in results.items():
        assert_pca_equal(result, PCA(n_components=2, svd_solver="full").fit(X[keys == key]), X[keys == key])


@given(datasets(min_rows=2, max_rows=40, max_d=4))
def test_components_are_orthonormal_signed_and_invert_exactly(X):
    """Any data: orthonormal components obeying the sign rule, variances summing to the trace, round trip."""
    s = GaussianSummary.from_samples(X)
    result = pca(s)
    C = result.components
    d = C.shape[1]
    np.testing.assert_allclose(C @ C.T, np.eye(d), rtol=0, atol=1e-12)
    largest = C[np.arange(d), np.argmax(np.abs(C), axis=1)]
    assert (largest > 0).all()
    variance = np.atleast_1d(s.variance())
    assert result.explained_variance.sum() == pytest.approx(variance.sum(), rel=1e-12, abs=1e-300)
    assert (np.diff(result.explained_variance) <= 0).all() and (result.explained_variance >= 0).all()
    points = X.reshape(len(X), -1)[:5]
    np.testing.assert_allclose(result.inverse_transform(result.transform(points)), points,
                               rtol=0, atol=1e-12 * max(1.0, np.abs(points).max()))


def test_repr_and_errors():
    """A short repr; diagonal summaries, bad k and too few rows raise one-line errors naming the value."""
    X = rows(7, 50, 3)
    text = repr(pca(GaussianSummary.from_samples(X), k=2))
    assert text.startswith("PCAResult(n=50, d=3, k=2, explained_variance_ratio=[")
    with pytest.raises(ValueError, match=r"pca needs the covariances between variables, which a diagonal summary"):
        pca(GaussianSummary.from_samples(X, diagonal=True))
    for k in (0, 4, 1.0, 1.5, "2", True):
        with pytest.raises(ValueError, match=rf"k must be .*got {k!r}"):
            pca(GaussianSummary.from_samples(X), k=k)
    with pytest.raises(ValueError, match=r"pca needs more observations: n=1 leaves no degrees of freedom"):
        pca(GaussianSummary.from_samples(X[:1]))
    with pytest.raises(ValueError, match=r"pca needs data: the summary is empty"):
        pca(GaussianSummary.empty(3))
    result = pca(GaussianSummary.from_samples(X))
    with pytest.raises(ValueError, match=r"x must have shape \(3,\) or \(m, 3\), got \(4, 2\)"):
        result.transform(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"z must have shape \(3,\) or \(m, 3\), got \(2,\)"):
        result.inverse_transform(np.zeros(2))
