"""gaussum.models.ols against statsmodels and scikit-learn on the raw rows."""

from __future__ import annotations

import copy
import itertools
import pickle

import attrs
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.linear_model import Ridge

# Not statsmodels.api, whose import takes ~3 s (datasets, formulas); these two take ~1 s.
from statsmodels.regression.linear_model import OLS, WLS
from statsmodels.tools.tools import add_constant

from gaussum import GaussianSummary, GroupedSummary
from gaussum.models import OLSResult, ols
from strategies import regressions, splits, tolerance

EPS = np.finfo(np.float64).eps


def regression_data(seed: int, n: int, p: int, offset: float = 0.0, noise: float = 0.5):
    """Rows [X, y] with correlated predictors at `offset`, and the predictors and response apart."""
    rng = np.random.default_rng(seed)
    mixing = np.eye(p) + 0.5 * rng.standard_normal((p, p)) / np.sqrt(p)
    X = offset + rng.standard_normal((n, p)) @ mixing * rng.uniform(0.5, 3.0, p)
    beta = rng.uniform(-2.0, 2.0, p)
    y = 3.0 + offset + (X - offset) @ beta + noise * rng.standard_normal(n)
    return np.column_stack([X, y]), X, y


def assert_matches(fit: OLSResult, reference, *, rtol: float, bse_factor: float = 1.0) -> None:
    """params, bse, cov_params, R², adjusted R², scale and p-values equal statsmodels' results."""
    np.testing.assert_allclose(fit.params, reference.params, rtol=rtol, atol=rtol * np.abs(reference.params).max())
    np.testing.assert_allclose(fit.bse, reference.bse * bse_factor, rtol=rtol)
    np.testing.assert_allclose(fit.cov_params, reference.cov_params() * bse_factor**2, rtol=rtol,
                               atol=rtol * np.abs(reference.cov_params()).max() * bse_factor**2)
    np.testing.assert_allclose(fit.rsquared, reference.rsquared, rtol=rtol)
    if bse_factor == 1.0:
        np.testing.assert_allclose(fit.rsquared_adj, reference.rsquared_adj, rtol=rtol)
        np.testing.assert_allclose(fit.tvalues, reference.tvalues, rtol=rtol)
        np.testing.assert_allclose(fit.pvalues, reference.pvalues, rtol=1e-6, atol=1e-300)
        assert fit.df_resid == pytest.approx(reference.df_resid, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("n", "p"), [(12, 1), (50, 3), (400, 6)])
@pytest.mark.parametrize("offset", [0.0, -300.0, 1e3])
def test_ols_equals_statsmodels_ols(seed, n, p, offset):
    """Coefficients, standard errors, R², scale and p-values equal OLS on the raw rows."""
    data, X, y = regression_data(seed, n, p, offset)
    fit = ols(GaussianSummary.from_samples(data), y=p)
    reference = OLS(y, add_constant(X)).fit()
    # statsmodels solves the raw design by pinv: its own error grows with offset / spread.
    assert_matches(fit, reference, rtol=1e-9)
    np.testing.assert_allclose(fit.residual_variance, reference.scale, rtol=1e-9)
    assert fit.X == tuple(range(p)) and fit.y == p and fit.n == n


def test_ols_on_a_subset_and_any_order_of_predictors():
    """X picks and orders the predictors; the response may sit anywhere among the variables."""
    data, X, y = regression_data(3, 80, 4)
    data = data[:, [4, 2, 0, 3, 1]]  # y first; column 4 is X[:, 1], column 1 is X[:, 2]
    fit = ols(GaussianSummary.from_samples(data), y=0, X=[4, 1])
    reference = OLS(y, add_constant(X[:, [1, 2]])).fit()
    assert_matches(fit, reference, rtol=1e-10)
    np.testing.assert_allclose(fit.coef, reference.params[1:], rtol=1e-10)
    assert fit.intercept == pytest.approx(reference.params[0], rel=1e-10)
    np.testing.assert_allclose(fit.predict(X[:5, [1, 2]]), reference.predict(add_constant(X[:5, [1, 2]])), rtol=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_ols_without_intercept_equals_statsmodels(seed):
    """intercept=False: the fit through the origin, with statsmodels' uncentred R²."""
    data, X, y = regression_data(seed, 60, 3, offset=2.0)
    fit = ols(GaussianSummary.from_samples(data), y=3, intercept=False)
    reference = OLS(y, X).fit()
    assert_matches(fit, reference, rtol=1e-9)
    assert fit.intercept == 0.0 and fit.params.shape == (3,)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frequency_weights_equal_ols_on_repeated_rows(seed):
    """Integer frequency weights give exactly OLS on the rows repeated, and WLS's coefficients."""
    data, X, y = regression_data(seed, 40, 3, offset=50.0)
    f = np.random.default_rng(seed + 10).integers(1, 5, size=40)
    fit = ols(GaussianSummary.from_samples(data, weights=f), y=3)
    repeated = OLS(np.repeat(y, f), add_constant(np.repeat(X, f, axis=0))).fit()
    assert_matches(fit, repeated, rtol=1e-9)
    wls = WLS(y, add_constant(X), weights=f).fit()
    np.testing.assert_allclose(fit.params, wls.params, rtol=1e-9)
    np.testing.assert_allclose(fit.rsquared, wls.rsquared, rtol=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_reliability_weights_equal_weighted_least_squares(seed, offset):
    """aweights: WLS's coefficients and R²; its standard errors with effective_n - k for N - k."""
    data, X, y = regression_data(seed, 70, 3, offset)
    a = np.random.default_rng(seed + 20).uniform(0.1, 3.0, size=70)
    s = GaussianSummary.from_samples(data, aweights=a)
    fit = ols(s, y=3)
    wls = WLS(y, add_constant(X), weights=a).fit()
    k = 4
    assert s.effective_n < 70
    assert_matches(fit, wls, rtol=1e-9, bse_factor=np.sqrt((70 - k) / (s.effective_n - k)))
    assert fit.df_resid == pytest.approx(s.effective_n - k, rel=1e-12)


def test_equal_reliability_weights_of_any_scale_equal_wls_exactly():
    """Equal aweights (any scale) leave nothing to approximate: every output equals WLS's (and OLS's)."""
    data, X, y = regression_data(4, 30, 2)
    for c in (0.01, 1.0, 7.5):
        fit = ols(GaussianSummary.from_samples(data, aweights=np.full(30, c)), y=2)
        assert_matches(fit, WLS(y, add_constant(X), weights=np.full(30, c)).fit(), rtol=1e-9)
        np.testing.assert_allclose(fit.residual_variance, OLS(y, add_constant(X)).fit().scale, rtol=1e-9)


def test_frequency_and_reliability_weights_together():
    """Both kinds: WLS with the reliability weights on the rows repeated by their frequencies."""
    data, X, y = regression_data(5, 50, 2)
    rng = np.random.default_rng(6)
    f, a = rng.integers(1, 4, size=50), rng.uniform(0.5, 2.0, size=50)
    s = GaussianSummary.from_samples(data, weights=f, aweights=a)
    wls = WLS(np.repeat(y, f), add_constant(np.repeat(X, f, axis=0)), weights=np.repeat(a, f)).fit()
    factor = np.sqrt((f.sum() - 3) / (s.effective_n - 3))
    assert_matches(ols(s, y=2), wls, rtol=1e-9, bse_factor=factor)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("alpha", [0.1, 10.0, 1e3])
@pytest.mark.parametrize("weighted", [False, True])
def test_ridge_equals_sklearn(seed, alpha, weighted):
    """ridge=alpha equals sklearn's Ridge (intercept fitted on centred data, not penalised)."""
    data, X, y = regression_data(seed, 90, 4, offset=20.0)
    w = np.random.default_rng(seed).uniform(0.2, 2.0, 90) if weighted else None
    fit = ols(GaussianSummary.from_samples(data, weights=w), y=4, ridge=alpha)
    reference = Ridge(alpha=alpha, solver="cholesky").fit(X, y, sample_weight=w)
    np.testing.assert_allclose(fit.coef, reference.coef_, rtol=1e-9)
    assert fit.intercept == pytest.approx(reference.intercept_, rel=1e-9)
    np.testing.assert_allclose(fit.rsquared, reference.score(X, y, sample_weight=w), rtol=1e-9)
    assert np.isnan(fit.bse).all() and np.isnan(fit.cov_params).all() and fit.ridge == alpha


def test_ridge_with_more_predictors_than_rows_equals_sklearn():
    """Ridge needs no residual degrees of freedom: p > n fits as sklearn's, with NaN residual statistics."""
    rng = np.random.default_rng(11)
    X, y = rng.standard_normal((6, 9)), rng.standard_normal(6)
    fit = ols(GaussianSummary.from_samples(np.column_stack([X, y])), y=9, ridge=0.5)
    reference = Ridge(alpha=0.5).fit(X, y)
    np.testing.assert_allclose(fit.coef, reference.coef_, rtol=1e-9)
    assert fit.intercept == pytest.approx(reference.intercept_, rel=1e-9)
    assert np.isnan(fit.residual_variance) and np.isnan(fit.rsquared_adj) and fit.df_resid == 6 - 10
    exact = ols(GaussianSummary.from_samples(np.column_stack([X[:, :5], y])), y=5, ridge=0.5)
    assert exact.df_resid == 0 and np.isnan(exact.rsquared_adj)


def test_ridge_without_intercept_and_with_collinear_predictors():
    """Ridge fits through the origin equal sklearn's, and a penalty resolves exact collinearity."""
    data, X, y = regression_data(7, 50, 3)
    fit = ols(GaussianSummary.from_samples(data), y=3, ridge=5.0, intercept=False)
    np.testing.assert_allclose(fit.coef, Ridge(alpha=5.0, fit_intercept=False).fit(X, y).coef_, rtol=1e-9)
    Xc = np.column_stack([X, X[:, 0] + X[:, 1]])
    fit = ols(GaussianSummary.from_samples(np.column_stack([Xc, y])), y=4, ridge=1.0)
    np.testing.assert_allclose(fit.coef, Ridge(alpha=1.0).fit(Xc, y).coef_, rtol=1e-9)


def test_grouped_summary_fits_each_key():
    """For a GroupedSummary, a dict of fits in key order, each equal to statsmodels on that key's rows."""
    data, X, y = regression_data(8, 300, 2, offset=10.0)
    keys = np.random.default_rng(8).choice(["a", "b", "c"], size=300)
    fits = ols(GroupedSummary.from_samples(keys, data), y=2)
    assert list(fits) == ["a", "b", "c"]
    for key, fit in fits.items():
        rows = keys == key
        assert_matches(fit, OLS(y[rows], add_constant(X[rows])).fit(), rtol=1e-9)


def test_merged_shards_fit_as_all_rows():
    """Summaries of shards, merged, give the fit of the concatenated rows."""
    data, X, y = regression_data(9, 1_000, 3, offset=100.0)
    shards = [GaussianSummary.from_samples(part) for part in np.array_split(data, 7)]
    fit = ols(GaussianSummary.merge_all(shards), y=3)
    assert_matches(fit, OLS(y, add_constant(X)).fit(), rtol=1e-9)


@given(regressions(), st.data())
def test_any_split_merged_fits_as_all_rows(data, draw):
    """Shards of any split, merged, fit what all rows fit, to the rounding the merge floor allows.

    Compared in standardised units (slopes times the predictors' spread, over the response's),
    where a relative error e in M2 moves a slope by at most about e times the condition number
    of the predictors' correlation matrix.
    """
    cuts = draw.draw(splits(len(data)))
    whole = ols(GaussianSummary.from_samples(data), y=-1)
    parts = [GaussianSummary.from_samples(data[a:b]) for a, b in itertools.pairwise(cuts) if b > a]
    merged = ols(GaussianSummary.merge_all(parts), y=-1)
    std = data.std(axis=0)
    corr = np.corrcoef(data[:, :-1], rowvar=False).reshape(data.shape[1] - 1, -1)
    condition = np.linalg.cond(corr)
    scaled = np.abs(merged.coef - whole.coef) * std[:-1] / std[-1]
    # Measured over 1,500 examples: at most 0.035 * tolerance(data) * condition.
    assert scaled.max() <= 4 * tolerance(data) * condition, (scaled.max(), tolerance(data), condition)


def _offset_problem(seed: int):
    """1,000 rows at offset 1e6 with unit spread, and statsmodels' slopes on the centred data."""
    rng = np.random.default_rng(seed)
    X = 1e6 + rng.standard_normal((1_000, 3))
    y = 1e6 + (X - 1e6) @ [1.5, -2.0, 0.5] + 0.1 * rng.standard_normal(1_000)
    Xc, yc = X - X.mean(axis=0), y - y.mean()
    reference = OLS(yc, add_constant(Xc)).fit().params[1:]
    return X, y, reference


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_offset_1e6_coefficients_within_1e9_of_centred_statsmodels_and_raw_normal_equations_lose(seed):
    """At offset 1e6 and unit spread the slopes keep ~13 digits; raw X^T X normal equations keep ~4."""
    X, y, reference = _offset_problem(seed)
    fit = ols(GaussianSummary.from_samples(np.column_stack([X, y])), y=3)
    error = np.abs(fit.coef - reference).max() / np.abs(reference).max()
    assert error < 1e-9, error
    # Shards merged, and rows folded in one at a time: with the compensated mean (and M2, row by
    # row) as accurate as one pass (measured: 4e-16 to 9e-16 on 5 seeds; before, 4e-13 to 3e-12
    # merged and 2e-11 to 6e-11 row by row, the u |mean| / spread floor of a float64 mean).
    data = np.column_stack([X, y])
    merged = ols(GaussianSummary.merge_all([GaussianSummary.from_samples(p) for p in np.array_split(data, 16)]), y=3)
    streamed = GaussianSummary.empty(4)
    for row in data:
        streamed = streamed.update(row)
    for other in (merged, ols(streamed, y=3)):
        assert np.abs(other.coef - reference).max() / np.abs(reference).max() < 1e-12
    # The same slopes from the raw normal equations (1, X)^T (1, X) b = (1, X)^T y.
    design = np.column_stack([np.ones(len(X)), X])
    raw = np.linalg.solve(design.T @ design, design.T @ y)[1:]
    raw_error = np.abs(raw - reference).max() / np.abs(reference).max()
    assert raw_error > 1e-6 and raw_error > 1e4 * max(error, EPS), (raw_error, error)


def test_result_is_frozen_with_read_only_arrays_and_survives_pickle():
    """The result cannot be changed, pickles and copies to an equal value, and has a short repr."""
    data, _, _ = regression_data(0, 20, 2)
    fit = ols(GaussianSummary.from_samples(data), y=2)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fit.rsquared = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        fit.params[0] = 0.0
    for clone in (pickle.loads(pickle.dumps(fit)), copy.copy(fit), copy.deepcopy(fit)):
        assert clone == fit
    assert repr(fit).startswith("OLSResult(y=2, X=[0, 1], n=20, intercept=") and len(repr(fit)) < 140
    wide = ols(GaussianSummary.from_samples(regression_data(0, 80, 30)[0]), y=30)
    assert repr(wide).startswith("OLSResult(y=30, X=[0, 1, ..., 28, 29], n=80, ") and "\n" not in repr(wide)


# -- errors -------------------------------------------------------------------------------------


def test_collinear_predictors_are_named():
    """An exactly collinear predictor is named with the predictors it combines, and ridge is suggested."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 3))
    data = np.column_stack([x[:, 0], x[:, 1], x[:, 2], 2.0 * x[:, 0] - x[:, 2], rng.standard_normal(50)])
    with pytest.raises(ValueError, match=r"variable 3 is \(nearly\) a linear combination of variable\(s\) 0, 2 "
                                         r"plus a constant .* pass \(a larger\) ridge > 0"):
        ols(GaussianSummary.from_samples(data), y=4)
    s = GaussianSummary.from_samples(data)
    with pytest.raises(ValueError, match=r"variable 2 is \(nearly\) a linear combination of variable\(s\) 3, 0 "):
        ols(s, y=4, X=[3, 0, 2])
    # Nearly collinear (1 - R² ~ 1e-14) is refused too; mildly collinear is fitted.
    near = data.copy()
    near[:, 3] += 1e-7 * rng.standard_normal(50)
    with pytest.raises(ValueError, match=r"variable 3 .* \(1 - R² = [0-9.e-]+, below 1e-12\)"):
        ols(GaussianSummary.from_samples(near), y=4)
    near[:, 3] += 1e-3 * rng.standard_normal(50)
    ols(GaussianSummary.from_samples(near), y=4)


def test_constant_or_zero_predictors_are_refused():
    """A constant predictor is collinear with the intercept; without one, an all-zero one is refused."""
    rng = np.random.default_rng(1)
    data = np.column_stack([rng.standard_normal(20), np.full(20, 4.0), rng.standard_normal(20)])
    constant = r"predictor 1 is constant \(zero variance\), so it is collinear with the intercept"
    with pytest.raises(ValueError, match=constant):
        ols(GaussianSummary.from_samples(data), y=2)
    data[:, 1] = 0.0
    with pytest.raises(ValueError, match=r"predictor 1 is all zeros"):
        ols(GaussianSummary.from_samples(data), y=2, intercept=False)
    # A constant predictor without an intercept plays the intercept's part.
    data[:, 1] = 1.0
    fit = ols(GaussianSummary.from_samples(data), y=2, intercept=False)
    reference = OLS(data[:, 2], data[:, :2]).fit()
    np.testing.assert_allclose(fit.params, reference.params, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("rows", [1, 2, 3])
def test_too_few_rows_are_refused(rows):
    """With as many coefficients as rows (or more) there is no residual: a one-line error says so."""
    data = np.random.default_rng(rows).standard_normal((rows, 3))
    with pytest.raises(ValueError, match=rf"ols needs more observations than coefficients: effective n={rows} "
                                         r"for 3 coefficients \(2 predictor\(s\) and the intercept\)"):
        ols(GaussianSummary.from_samples(data), y=2)


def test_empty_summary_is_refused():
    """The summary of no rows has nothing to fit."""
    for ridge in (0.0, 1.0):
        with pytest.raises(ValueError, match=r"ols needs data: the summary is empty \(n=0\)"):
            ols(GaussianSummary.empty(3), y=2, ridge=ridge)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"y": 5}, ValueError, r"y holds position 5, outside the 3 variables \(0 to 2\)"),
        ({"y": 1.0}, TypeError, r"y must be a variable position or a sequence of them, got 1.0"),
        ({"y": [2]}, TypeError, r"y must be one variable position, got \[2\]"),
        ({"y": 2, "X": [0, 2]}, ValueError, r"variable 2 is both the response y and a predictor"),
        ({"y": 2, "X": [0, 0]}, ValueError, r"X names variable 0 more than once"),
        ({"y": 2, "X": []}, ValueError, r"X must name at least one predictor"),
        ({"y": 2, "X": "01"}, TypeError, r"X must hold integer variable positions, got '0'"),
        ({"y": 2, "ridge": -1.0}, ValueError, r"ridge must be finite and >= 0, got -1.0"),
        ({"y": 2, "ridge": float("nan")}, ValueError, r"ridge must be finite and >= 0, got nan"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, message):
    """Each bad argument gets a one-line error naming it and its value."""
    s = GaussianSummary.from_samples(np.random.default_rng(0).standard_normal((20, 3)))
    with pytest.raises(error, match=message):
        ols(s, **kwargs)


def test_negative_positions_count_from_the_end():
    """y=-1 is the last variable, as in numpy indexing."""
    data, _, _ = regression_data(0, 20, 2)
    s = GaussianSummary.from_samples(data)
    assert ols(s, y=-1, X=[-3, -2]) == ols(s, y=2, X=[0, 1])


def test_wrong_kinds_of_summary_are_refused():
    """Diagonal summaries keep no covariances; scalar data has no predictor; raw arrays are not summaries."""
    X = np.random.default_rng(0).standard_normal((20, 3))
    with pytest.raises(ValueError, match=r"ols needs the covariances between variables, which a diagonal summary"):
        ols(GaussianSummary.from_samples(X, diagonal=True), y=2)
    with pytest.raises(ValueError, match=r"ols needs at least 2 variables .* the summary has 1"):
        ols(GaussianSummary.from_samples(X[:, 0]), y=0)
    with pytest.raises(TypeError, match=r"ols takes a GaussianSummary or GroupedSummary, got ndarray"):
        ols(X, y=2)


def test_grouped_error_names_the_key():
    """A key with too few rows for the fit is named in the error."""
    X = np.random.default_rng(0).standard_normal((20, 3))
    keys = np.array([1] * 18 + [2] * 2)
    with pytest.raises(ValueError, match=r"^key 2: ols needs more observations than coefficients"):
        ols(GroupedSummary.from_samples(keys, X), y=2)
