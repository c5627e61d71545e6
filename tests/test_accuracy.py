"""Accuracy against exact rational arithmetic on the same float64 data (fractions.Fraction)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from _paths import kernel_path  # noqa: F401 - every test runs on the numpy and the compiled path
from exact import exact_moments, relative_frobenius, rounded, ulps
from gaussum import GaussianSummary, _combine, _kernel

U = np.finfo(np.float64).eps / 2
OFFSETS = [0.0, 1.0, -250.0, 1e3, 1e6, -3.3e7, 1e9, 1.7e9]
SCALES = [1e-3, 1.0, 1e3]


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("scale", SCALES)
def test_from_samples_is_within_16_units_of_rounding(offset, scale):
    """Covariance within 1.8e-15 (relative Frobenius) and means within 1 ulp, at any offset.

    Centred data included: its mean, a small difference of large terms, comes from error-free
    column sums (the compensated mean), not from the shift and the rounded sums.
    """
    rng = np.random.default_rng(int(abs(offset)) % 1000 + int(scale * 7))
    X = offset + scale * rng.standard_normal((400, 3))
    _, mean, M2 = exact_moments(X)
    s = GaussianSummary.from_samples(X)
    assert relative_frobenius(s.M2, M2) <= 1.8e-15
    for j in range(3):
        assert ulps(s.mean[j], mean[j]) <= 1.0


def test_from_samples_beats_np_cov_at_large_offsets():
    """At offset 1e9 with spread 1e-3, np.cov loses digits that from_samples keeps."""
    rng = np.random.default_rng(3)
    X = 1e9 + 1e-3 * rng.standard_normal((2000, 2))
    n, _mean, M2 = exact_moments(X)
    ours = relative_frobenius(GaussianSummary.from_samples(X).M2, M2)
    numpy = relative_frobenius(np.cov(X, rowvar=False) * (n - 1), M2)
    assert ours <= 1.8e-15 < 1e-9 < numpy


@pytest.mark.parametrize("offset", [0.0, 1e3, 1e6, 1e9])
def test_weighted_from_samples_is_exact_to_rounding(offset):
    """Fractional weights: covariance within 1.8e-15 of the exact weighted scatter."""
    rng = np.random.default_rng(11)
    X = offset + rng.standard_normal((300, 2))
    w = rng.uniform(0, 3, 300)
    n, _mean, M2 = exact_moments(X, w)
    s = GaussianSummary.from_samples(X, weights=w)
    assert abs(Fraction(s.n) - n) / n <= 4 * U
    assert relative_frobenius(s.M2, M2) <= 1.8e-15


def test_data_spanning_many_blocks_is_exact_to_rounding():
    """Blocks merged inside from_samples keep the single-block accuracy."""
    rng = np.random.default_rng(5)
    X = 1e6 + rng.standard_normal((5000, 2)) * 1e-2
    _n, mean, M2 = exact_moments(X)
    _, mean_, M2_, _, _, _ = _kernel.summarize_rows(X, (None, None), False, "raise", block_rows=333)
    assert relative_frobenius(M2_, M2) <= 1.8e-15
    assert max(ulps(mean_[j], mean[j]) for j in range(2)) <= 1.0


def test_drifting_data_is_recentred():
    """Data whose later blocks sit far from the first block's mean still come out exact to rounding."""
    X = (1e6 + np.linspace(0, 1, 4000) + 1e-3 * np.random.default_rng(2).standard_normal(4000))[:, None]
    X = np.hstack([X, X[::-1]])
    _n, _mean, M2 = exact_moments(X)
    _, _, M2_, _, _, _ = _kernel.summarize_rows(X, (None, None), False, "raise", block_rows=500)
    assert relative_frobenius(M2_, M2) <= 1.8e-15


def _merge_floor(parts: list[np.ndarray]):
    """Merge correctly rounded shard summaries with the pairwise rule: the float64 format's floor."""
    total = None
    for part in parts:
        n, mean, M2 = exact_moments(part)
        shard = (float(n), rounded(mean), rounded(M2), float(n), np.zeros(len(mean)))
        total = shard if total is None else _combine.merge_pair(*total, *shard)
    return total


@pytest.mark.parametrize("offset, scale", [(0.0, 1.0), (1e3, 1.0), (1e6, 1e-2), (1e9, 1.0)])
def test_merges_stay_within_twice_the_format_floor(offset, scale):
    """Left fold, pairwise tree and merge_all of shards err at most 2x the correctly-rounded floor."""
    rng = np.random.default_rng(17)
    X = offset + scale * rng.standard_normal((600, 2))
    cuts = np.sort(rng.choice(np.arange(1, 600), 11, replace=False))
    parts = np.split(X, cuts)
    _n, _mean, M2 = exact_moments(X)
    floor = relative_frobenius(_merge_floor(parts)[2], M2)
    shards = [GaussianSummary.from_samples(p) for p in parts]
    tree = shards
    while len(tree) > 1:
        tree = [sum(tree[i : i + 2]) for i in range(0, len(tree), 2)]
    for s in (sum(shards), tree[0], GaussianSummary.merge_all(shards)):
        assert relative_frobenius(s.M2, M2) <= 2 * floor + 1.8e-15


def test_pooled_variance_of_two_groups_far_from_zero():
    """Data at 1e9 with spread 1e-3: pooled variance right to 1e-4, where E[x^2] - E[x]^2 fails."""
    rng = np.random.default_rng(8)
    a = 1e9 + 1e-3 * rng.standard_normal(1000)
    b = 1e9 + 2e-3 + 1e-3 * rng.standard_normal(1500)
    n, _mean, M2 = exact_moments(np.concatenate([a, b])[:, None])
    exact_var = float(M2[0][0] / n)
    pooled = GaussianSummary.from_samples(a) + GaussianSummary.from_samples(b)
    assert abs(float(pooled.variance(ddof=0)) - exact_var) <= 1e-4 * exact_var
    # The formula from the classic answer: sigma^2 = sum n_i (sigma_i^2 + mu_i^2) / n - mu^2.
    mu = (a.size * a.mean() + b.size * b.mean()) / n
    naive = float((a.size * (a.var() + a.mean() ** 2) + b.size * (b.var() + b.mean() ** 2)) / n - mu**2)
    assert abs(naive - exact_var) > 100 * exact_var


@pytest.mark.parametrize("weighted", [False, True])
def test_diagonal_summaries_are_as_accurate_as_full_ones(weighted):
    """diagonal=True over many rows keeps each variance within 1.8e-15 of the exact value."""
    rng = np.random.default_rng(23)
    X = 1e6 + rng.standard_normal((70_000, 2))
    w = rng.uniform(0, 2, 70_000) if weighted else None
    s = GaussianSummary.from_samples(X, weights=w, diagonal=True)
    ws = [Fraction(1)] * len(X) if w is None else [Fraction(v) for v in w.tolist()]
    n = sum(ws, Fraction(0))
    for j in range(2):
        col = [Fraction(v) for v in X[:, j].tolist()]
        mean = sum((a * b for a, b in zip(ws, col, strict=False)), Fraction(0)) / n
        M2 = sum((a * (b - mean) ** 2 for a, b in zip(ws, col, strict=False)), Fraction(0))
        assert abs(Fraction(float(s.M2[j])) - M2) / M2 <= 1.8e-15
        assert ulps(s.mean[j], mean) <= 1.0


@given(
    rows=st.integers(1, 700),
    d=st.integers(1, 40),
    exponent=st.integers(-120, 250),
    seed=st.integers(0, 2**32 - 1),
)
def test_run_sums_are_exact_to_u_squared_of_the_magnitudes(rows, d, exponent, seed):
    """`_combine.run_sums` (error-free column sums of one run) against Fraction: the heads sum
    exactly, and the tails, each under half an ulp of ``sigma``, leave at most
    ``rows**2 u ulp(sigma) / 2``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, d)) * np.exp2(rng.integers(-30, 30, d)) + rng.normal(size=d)
    X = X / np.abs(X).max() * 10.0**exponent
    hi, lo = _combine.run_sums(X)
    largest = np.abs(X).max(axis=0)
    for j in range(d):
        column = X[:, j].tolist()
        sigma = math.ldexp(1.0, math.frexp(float(largest[j]))[1] + math.ceil(math.log2(rows + 2)))
        error = abs(Fraction(float(hi[j])) + Fraction(float(lo[j])) - sum(map(Fraction, column)))
        assert error <= rows**2 * Fraction(U) * Fraction(float(np.spacing(sigma))) / 2


@given(
    a=st.floats(-1e300, 1e300, allow_nan=False),
    lo_ulps=st.floats(-0.5, 0.5),
    n=st.floats(1.0, 1e18),
)
def test_scalar_quotient_is_quotient_and_exact_to_u_squared(a, lo_ulps, n):
    """`_combine.scalar_quotient` (Python floats, the small path's means) gives the bits of
    `_combine.quotient` (arrays), and ``q + e`` is ``(a + lo) / n`` to a relative 2**-100
    (Fraction), with q the correctly rounded ``a / n``."""
    lo = lo_ulps * math.ulp(a)
    q, e = _combine.scalar_quotient(a, n, lo)
    q_array, e_array = _combine.quotient(np.array([a]), np.array([lo]), n)
    assert (q, e) == (float(q_array[0]), float(e_array[0]))
    assert q == a / n
    exact = (Fraction(a) + Fraction(lo)) / Fraction(n)
    assert abs(Fraction(q) + Fraction(e) - exact) <= abs(exact) * Fraction(2) ** -100 + Fraction(2) ** -1074


@pytest.mark.parametrize("d", [1, 2])
def test_means_near_zero_of_large_blocks_are_correctly_rounded(d):
    """Half a million rows and their negatives, a small offset added to one row: the exact mean
    is tiny next to the spread, so its error-free sums must hold to the last bit over blocks of
    2**18 rows (a review found them 4-16 ulps off when one extraction spanned a whole block with a
    bound from the sum of squares). Reference: the exact sum by math.fsum, kept as two floats."""
    rng = np.random.default_rng(2)
    half = rng.standard_normal((2**19, d))
    X = np.concatenate([half, -half])
    rng.shuffle(X)
    X[0] += 1e-6
    s = GaussianSummary.from_samples(X)
    for j in range(d):
        column = X[:, j].tolist()
        total = math.fsum(column)
        exact = (Fraction(total) + Fraction(math.fsum([*column, -total]))) / len(X)
        assert abs(Fraction(float(s.mean[j])) - exact) <= Fraction(float(np.spacing(abs(float(exact)))))


@pytest.mark.parametrize("d", [1, 3, 8, 20, 31, 40])
@pytest.mark.parametrize("rows", [1, 5, 63, 64, 65, 1000, 1001])
def test_each_row_applies_the_row_to_every_row(rows, d):
    """`_combine.each_row` (a row broadcast in long inner loops) gives numpy's broadcast bits."""
    rng = np.random.default_rng(rows * 100 + d)
    a, row = rng.standard_normal((rows, d)), rng.standard_normal(d)
    for operation in (np.add, np.subtract):
        out = np.empty_like(a)
        _combine.each_row(operation, a, row, out)
        np.testing.assert_array_equal(out, operation(a, row))
    in_place = a.copy()
    _combine.each_row(np.subtract, in_place, row, in_place)
    np.testing.assert_array_equal(in_place, a - row)


@pytest.mark.parametrize("rows", [150, 300, 40_000])
def test_a_propagated_nan_leaves_the_other_means_correctly_rounded(rows):
    """Under nan_policy="propagate" a NaN makes its own variable's mean NaN, and only that one:
    the finite variables near zero still get their error-free sums (a review found them 26 ulps
    off, every refinement skipped for one NaN elsewhere)."""
    rng = np.random.default_rng(rows)
    X = rng.standard_normal((rows, 3))
    X[:, 0] += 1e-3
    X[5, 2] = np.nan
    s = GaussianSummary.from_samples(X, nan_policy="propagate")
    assert np.isnan(s.mean[2]) and np.isfinite(s.mean[:2]).all()
    for j in (0, 1):
        exact = sum(map(Fraction, X[:, j].tolist())) / rows
        assert ulps(s.mean[j], exact) <= 1.0
