"""Exponential forgetting with scaled(): against weights lam**age applied directly to the raw rows."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from gaussum import GaussianSummary, GroupedSummary

U = np.finfo(np.float64).eps / 2


@pytest.fixture
def rng():
    return np.random.default_rng(424242)


def weighted_reference(X, w):
    """Weighted mean and weighted sum of squared deviations, straight from the rows and weights."""
    n = w.sum()
    mean = (w[:, None] * X).sum(axis=0) / n
    centred = X - mean
    return n, mean, (w[:, None] * centred).T @ centred


def ages(count):
    """Age of each of `count` rows added one per step: the newest row has age 0."""
    return np.arange(count - 1, -1, -1)


@pytest.mark.parametrize("lam", [0.5, 0.9, 0.999])
@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_row_by_row_forgetting_matches_explicit_weights(rng, lam, offset):
    """s.scaled(lam).update(x) per row gives the mean and M2 of the rows weighted by lam**age."""
    X = offset + rng.standard_normal((300, 3)) * [1.0, 2.0, 0.5]
    s = GaussianSummary.empty(3)
    for x in X:
        s = s.scaled(lam).update(x)
    n, mean, M2 = weighted_reference(X, lam ** ages(300).astype(float))
    assert s.n == pytest.approx(n, rel=1e-13)
    assert s.n == pytest.approx((1 - lam**300) / (1 - lam), rel=1e-13)
    spread = np.sqrt(np.diagonal(M2) / n)
    np.testing.assert_array_less(np.abs(s.mean - mean), 1e-9 * spread + 8 * U * np.abs(mean))
    scale = np.sqrt(np.multiply.outer(np.diagonal(M2), np.diagonal(M2)))
    np.testing.assert_array_less(np.abs(s.M2 - M2), 1e-9 * scale)


def test_batch_forgetting_matches_explicit_weights(rng):
    """Scaling once per batch weights every row of a batch by lam**(age of its batch)."""
    lam = 0.8
    batches = [rng.standard_normal((k, 2)) + 5 for k in (10, 1, 40, 7, 25)]
    s = GaussianSummary.empty(2)
    for batch in batches:
        s = s.scaled(lam).update(batch)
    w = np.concatenate([np.full(len(b), lam**age) for b, age in zip(batches, ages(len(batches)), strict=True)])
    n, mean, M2 = weighted_reference(np.concatenate(batches), w)
    assert s.n == pytest.approx(n, rel=1e-14)
    np.testing.assert_allclose(s.mean, mean, rtol=1e-13)
    np.testing.assert_allclose(s.M2, M2, rtol=1e-12)


def test_scalar_forgetting_matches_exact_fractions():
    """For scalar data, forgetting agrees with exact rational weighted moments to a few ulps."""
    lam = Fraction(3, 4)
    values = [0.1, 2.5, -1.25, 3.0, 0.7, 0.7, 10.0, -4.5]
    s = GaussianSummary.empty()
    for x in values:
        s = s.scaled(float(lam)).update(x)
    w = [lam**a for a in ages(len(values)).tolist()]
    xs = [Fraction(v) for v in values]
    n = sum(w)
    mean = sum(wi * xi for wi, xi in zip(w, xs, strict=True)) / n
    M2 = sum(wi * (xi - mean) ** 2 for wi, xi in zip(w, xs, strict=True))
    assert abs(Fraction(s.n) - n) <= 16 * U * n
    assert abs(Fraction(float(s.mean)) - mean) <= 64 * U * abs(mean)
    assert abs(Fraction(float(s.M2)) - M2) <= 64 * U * M2


def test_grouped_forgetting_matches_explicit_weights_per_key(rng):
    """g.scaled(lam).update(keys, X) per batch equals, per key, the lam**age-weighted moments."""
    lam = 0.7
    batches = []
    for _ in range(6):
        k = int(rng.integers(5, 60))
        batches.append((rng.integers(0, 8, k), 100 + rng.standard_normal((k, 2))))
    g = GroupedSummary.empty(2)
    for keys, X in batches:
        g = g.scaled(lam).update(keys, X)
    all_keys = np.concatenate([k for k, _ in batches])
    all_X = np.concatenate([x for _, x in batches])
    w = np.concatenate([np.full(len(k), lam**age) for (k, _), age in zip(batches, ages(len(batches)), strict=True)])
    assert g.keys().tolist() == sorted(set(all_keys.tolist()))
    for key, s in g:
        mask = all_keys == key
        n, mean, M2 = weighted_reference(all_X[mask], w[mask])
        assert s.n == pytest.approx(n, rel=1e-14)
        np.testing.assert_allclose(s.mean, mean, rtol=1e-13)
        scale = np.sqrt(np.multiply.outer(np.diagonal(M2), np.diagonal(M2)))
        np.testing.assert_array_less(np.abs(s.M2 - M2), 1e-10 * scale)


def test_steady_state_weight_is_one_over_one_minus_lam():
    """After many steps the total weight approaches 1 / (1 - lam), the documented horizon."""
    lam = 0.95
    s = GaussianSummary.empty()
    for x in np.linspace(0, 1, 2000):
        s = s.scaled(lam).update(x)
    assert s.n == pytest.approx(1 / (1 - lam), rel=1e-12)


def test_scaled_keeps_the_mean_and_composes(rng):
    """scaled keeps the mean bit for bit, scaled(1) is the identity, and factors multiply."""
    s = GaussianSummary.from_samples(rng.standard_normal((20, 3)))
    assert s.scaled(1.0) == s
    assert np.array_equal(s.scaled(0.3).mean, s.mean)
    assert s.scaled(0.5).scaled(0.25) == s.scaled(0.125)
    assert s.scaled(3.0).isclose(s.scaled(1.5).scaled(2.0), rtol=1e-15)
    assert s.scaled(0.5).n == 10.0 and np.array_equal(s.scaled(0.5).M2, s.M2 * 0.5)


@pytest.mark.parametrize("factor", [0, 0.0, -0.5, np.inf, np.nan, True, "0.5", [0.5]])
def test_scaled_refuses_bad_factors(factor):
    """factor must be a real number in (0, inf); anything else is a ValueError naming it."""
    s = GaussianSummary.from_samples([1.0, 2.0])
    with pytest.raises(ValueError, match="factor"):
        s.scaled(factor)
    with pytest.raises(ValueError, match="factor"):
        GroupedSummary.from_samples([1, 2], [1.0, 2.0]).scaled(factor)


def test_forgotten_variance_is_unbiased_with_ddof_1():
    """With w2 scaled by lam**2, variances(ddof=1) of a decayed summary is unbiased for iid data.

    The divisor is n - w2 / n, i.e. the ddof the README used to ask users to work out by hand,
    (1 + lam**t) / (1 + lam), and the frequency-weight divisor n - 1 is biased. Monte Carlo over
    4000 independent streams (one key each, so one GroupedSummary runs them all); the bound is
    four standard errors of the average.
    """
    rng = np.random.default_rng(7)
    lam, steps, streams = 0.8, 60, 4000
    streams_keys = np.arange(streams)
    g = GroupedSummary.empty(None)
    for _ in range(steps):
        g = g.scaled(lam).update(streams_keys, rng.standard_normal(streams))
    ddof = (1 + lam**steps) / (1 + lam)
    n_eff = (1 + lam) * (1 - lam**steps) / ((1 - lam) * (1 + lam**steps))
    assert g.counts[0] == pytest.approx((1 - lam**steps) / (1 - lam), rel=1e-12)
    assert g.counts[0] / ddof == pytest.approx(n_eff, rel=1e-12)
    assert g.effective_n[0] == pytest.approx(n_eff, rel=1e-12)
    assert g.counts[0] - g.w2[0] / g.counts[0] == pytest.approx(g.counts[0] - ddof, rel=1e-12)
    standard_error = np.sqrt(2 / n_eff / streams) * 1.5  # the weighted variance is a bit noisier
    assert abs(g.variances(ddof=1).mean() - 1.0) < 4 * standard_error
    assert (g.M2 / (g.counts - 1)).mean() - 1.0 > 8 * standard_error
