"""Linear regression (least squares and ridge) from a summary of ``[X, y]``."""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np

from ..grouped import GroupedSummary
from ..inference import MAX_CONDITION
from ..summary import GaussianSummary
from ._common import (
    array_eq,
    check_full,
    check_summary,
    divisor,
    linalg,
    number,
    per_key,
    positions,
    scipy_stats,
    short,
)

__all__ = ["OLSResult", "ols"]

#: A predictor whose ``1 - R²`` on the predictors before it (the pivot of the scaled Cholesky
#: factor) is below this is treated as collinear with them: its coefficient would keep fewer
#: than about 4 significant digits. The same limit as `gaussum.inference.MAX_CONDITION`.
MIN_PIVOT = 1.0 / MAX_CONDITION


# Arrays compare by value (NaN equal to NaN), as the results of inference.py do.
_ARRAY_EQ = attrs.cmp_using(eq=array_eq)


@attrs.frozen(repr=False)
class OLSResult:
    """A least-squares (or ridge) fit of variable `y` on variables `X`, from a summary.

    `params`, `bse` and the rows of `cov_params` are in the order ``[intercept, X[0], X[1], ...]``
    (as ``statsmodels`` with ``add_constant(prepend=True)``), without the intercept when it
    was not fitted; `coef` and `intercept` give the two parts.

    Attributes
    ----------
    y : int
        Position of the response.
    X : tuple of int
        Positions of the predictors, in the order of `coef`.
    params : ndarray, shape (k,)
        The coefficients (``k = p + 1`` with an intercept, ``p`` without).
    bse : ndarray, shape (k,)
        Their standard errors (NaN for ridge fits).
    cov_params : ndarray, shape (k, k)
        Their covariance (NaN for ridge fits).
    residual_variance : float
        ``sigma²``: the residual sum of squares over `df_resid` (in weight units, see `ols`).
    rsquared, rsquared_adj : float
        R² (centred with an intercept, uncentred without, as statsmodels) and adjusted R².
    df_resid : float
        Residual degrees of freedom, ``effective_n - k``.
    n : float
        The summary's total weight.
    ridge : float
        The penalty the fit used (0 for least squares).
    has_intercept : bool
    """

    y: int
    X: tuple[int, ...]
    params: np.ndarray = attrs.field(eq=_ARRAY_EQ)
    bse: np.ndarray = attrs.field(eq=_ARRAY_EQ)
    cov_params: np.ndarray = attrs.field(eq=_ARRAY_EQ)
    residual_variance: float = attrs.field(eq=_ARRAY_EQ)
    rsquared: float = attrs.field(eq=_ARRAY_EQ)
    rsquared_adj: float = attrs.field(eq=_ARRAY_EQ)
    df_resid: float
    n: float
    ridge: float
    has_intercept: bool

    @property
    def coef(self) -> np.ndarray:
        """The slopes, one per predictor in `X`, shape ``(p,)``."""
        return self.params[1:] if self.has_intercept else self.params

    @property
    def intercept(self) -> float:
        """The intercept (0.0 when none was fitted)."""
        return float(self.params[0]) if self.has_intercept else 0.0

    @property
    def tvalues(self) -> np.ndarray:
        """``params / bse``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(self.params / self.bse)

    @property
    def pvalues(self) -> np.ndarray:
        """Two-sided p-values of the t tests ``params == 0``, on `df_resid` degrees of freedom.

        Needs scipy (``pip install 'gaussum[stats]'``); everything else in the result does not.
        """
        return np.asarray(2.0 * scipy_stats().t.sf(np.abs(self.tvalues), self.df_resid))

    def predict(self, x: Any) -> np.ndarray:
        """Fitted values for rows of the predictors, shape ``(m, p)`` (or one row ``(p,)``)."""
        rows = np.asarray(x, dtype=np.float64)
        p = len(self.X)
        if rows.shape[-1:] != (p,) or rows.ndim > 2:
            raise ValueError(f"x must have shape ({p},) or (m, {p}) for {p} predictors, got {rows.shape}")
        return np.asarray(rows @ self.coef + self.intercept)

    def __repr__(self) -> str:
        return (
            f"OLSResult(y={self.y}, X={short(self.X)}, n={number(self.n)}, intercept={number(self.intercept)}, "
            f"coef={short(self.coef)}, rsquared={number(self.rsquared)})"
        )


def _collinear_error(R: np.ndarray, j: int, pivot: float, X: np.ndarray, intercept: bool) -> ValueError:
    """Name predictor X[j] and the earlier predictors it is (nearly) a combination of."""
    if j == 0:
        # Only possible without an intercept: the first column's raw second moment is ~0.
        return ValueError(f"predictor {X[0]} is (nearly) all zeros; drop it")
    try:
        weights = np.linalg.solve(R[:j, :j], R[:j, j])
    except np.linalg.LinAlgError:  # pragma: no cover - the leading block factored, so it is regular
        weights = np.ones(j)
    # Exact collinearity leaves the others' weights at rounding level; keep the visible ones.
    involved = np.flatnonzero(np.abs(weights) > 1e-6 * np.abs(weights).max())
    names = ", ".join(str(X[i]) for i in involved)
    # Centred data: with an intercept, a combination holds up to a constant.
    with_intercept = " plus a constant" if intercept else ""
    return ValueError(
        f"predictors are collinear: variable {X[j]} is (nearly) a linear combination of variable(s) "
        f"{names}{with_intercept} (1 - R² = {max(pivot, 0.0):.3g}, below {MIN_PIVOT:g}); "
        "drop one of them, or pass (a larger) ridge > 0"
    )


def _scaled_cholesky(A: np.ndarray, ridge: float, X: np.ndarray, intercept: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(scale, L)`` with ``A + ridge I = diag(scale) L L^T diag(scale)``, or a collinearity error.

    Scaling to a unit diagonal first makes the pivots ``L_jj²`` equal ``1 - R²`` of predictor j
    on the predictors before it, whatever the units, so one threshold serves every data set.
    """
    diagonal = np.diagonal(A) + ridge
    zero = np.flatnonzero(~(diagonal > 0))
    if zero.size:
        what = "constant (zero variance), so it is collinear with the intercept" if intercept else "all zeros"
        raise ValueError(f"predictor {X[zero[0]]} is {what}; drop it")
    scale = np.sqrt(diagonal)
    R = (A + ridge * np.eye(len(X))) / np.multiply.outer(scale, scale)
    np.fill_diagonal(R, 1.0)
    cholesky = linalg()[1]
    try:
        L = cholesky(R)
        pivots = np.diagonal(L) ** 2
        bad = np.flatnonzero(~(pivots >= MIN_PIVOT))
    except np.linalg.LinAlgError:
        L, bad = None, np.array([], dtype=np.intp)
    if L is not None and not bad.size:
        return scale, L
    # Find the first predictor whose pivot fails, one leading block at a time (error path only).
    for j in range(len(X)):
        block = R[: j + 1, : j + 1]
        try:
            Lj = np.linalg.cholesky(block)
            pivot = float(Lj[j, j] ** 2)
        except np.linalg.LinAlgError:
            pivot = 0.0
        if not pivot >= MIN_PIVOT:
            raise _collinear_error(R, j, pivot, X, intercept)
    raise AssertionError("unreachable: a failed pivot was not found")  # pragma: no cover


def ols(
    summary: GaussianSummary | GroupedSummary,
    y: int,
    X: Any = None,
    *,
    ridge: float = 0.0,
    intercept: bool = True,
) -> Any:
    """Least-squares (or ridge) regression of one variable on others, from the summary alone.

    Parameters
    ----------
    summary : GaussianSummary or GroupedSummary
        A full (not diagonal) summary of rows ``[..., predictors, ..., response, ...]``.
    y : int
        Position of the response variable.
    X : int or sequence of int, optional
        Positions of the predictors; all variables but `y` by default.
    ridge : float
        The penalty ``alpha >= 0`` of ``sum_i w_i r_i² + alpha ||coef||²`` (the intercept is not
        penalised), as ``sklearn.linear_model.Ridge``. It is added to the centred M2, so it is
        on the scale of the total weight ``n``. 0: ordinary least squares.
    intercept : bool
        Fit an intercept (the default). Without one the fit uses the raw second moments
        ``M2 + n mean mean^T``, as least squares through the origin must.

    Returns
    -------
    OLSResult or dict
        For a `GroupedSummary`, a dict ``{key: OLSResult}`` in key order.

    Raises
    ------
    TypeError
        If `summary` is neither kind of summary, or a position is not an integer.
    ValueError
        For a diagonal summary, positions out of range, repeated or shared by `y` and `X`, too
        few observations (``effective_n <= k``; least squares only), a negative `ridge`, or
        collinear predictors: the message names the predictor that is (nearly) a linear
        combination of earlier ones, and those ones. For a grouped summary the message starts
        with the key.

    See Also
    --------
    conditional : the same regression coefficients, as the Gaussian's conditional mean.

    Notes
    -----
    With the centred blocks ``A = M2[X, X]``, ``c = M2[X, y]``, ``s_yy = M2[y, y]``:

    ``coef = (A + ridge I)^{-1} c``, ``intercept = mean_y - mean_X · coef``,

    the normal equations of the centred data, so the offset of the data from zero never enters
    (at offset 1e6 and unit spread, the raw ``(1, X)^T (1, X)`` is singular to float64 precision and
    its slopes err by ~3e-4; these by 1e-15 from `from_samples`, 3e-12 after merging 16 shards:
    see the README). The system is scaled to a unit diagonal and
    solved by Cholesky; a pivot below `MIN_PIVOT` is a collinearity error (rather than
    ``lstsq`` with a rank, which would return one of infinitely many solutions silently).

    The residual sum of squares is ``RSS = s_yy - c · coef - ridge ||coef||²`` (it loses digits
    only when R² is within ~1e-8 of 1), ``R² = 1 - RSS / s_yy``, and, with ``k`` coefficients,
    the intercept included, and ``v = w2 / n`` (1 unless the data have reliability weights):

    ``sigma² = RSS / (n - k v)``, ``df_resid = effective_n - k``,
    ``cov(coef) = sigma² v A^{-1}``, ``var(intercept) = sigma² v (1/n + mean_X^T A^{-1} mean_X)``,
    ``R²_adj = 1 - (effective_n - 1) / df_resid (1 - R²)``.

    Unweighted, or with frequency weights, this is exactly ``statsmodels.OLS`` on the rows (the
    rows repeated by their weights). With reliability weights the coefficients and R² are
    those of ``statsmodels.WLS(weights=...)``. WLS counts rows in its residual degrees of
    freedom, ``N - k``, and a summary does not keep N: here they are ``effective_n - k``, the
    regression form of numpy's ``aweights`` divisor ``n - ddof w2 / n``, so `bse` is WLS's
    times ``sqrt((N - k) / (effective_n - k))`` (identical when the weights are equal).
    Ridge fits have no standard errors (the estimator is biased, so t tests on it are not
    valid): `bse` and `cov_params` are NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussum import GaussianSummary
    >>> from gaussum.models import ols
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 2))
    >>> y = 1.0 + x @ [2.0, -3.0] + rng.normal(scale=0.1, size=200)
    >>> s = GaussianSummary.from_samples(np.column_stack([x, y]))
    >>> fit = ols(s, y=2)
    >>> fit
    OLSResult(y=2, X=[0, 1], n=200, intercept=0.999722, coef=[1.99498, -2.98805], rsquared=0.999197)
    >>> fit.bse.round(4).tolist()
    [0.0071, 0.0072, 0.007]
    >>> ols(s, y=2, ridge=10.0).coef.round(4).tolist()  # sklearn's Ridge(alpha=10.0)
    [1.8885, -2.8423]
    """
    check_summary(summary, "ols")
    if isinstance(summary, GroupedSummary):
        return per_key(summary, lambda s: ols(s, y, X, ridge=ridge, intercept=intercept), stack=False)
    s = summary
    check_full(s, "ols")
    d = s.d
    if d < 2:
        raise ValueError(f"ols needs at least 2 variables (a response and a predictor), the summary has {d}")
    if isinstance(y, (list, tuple, np.ndarray)):
        raise TypeError(f"y must be one variable position, got {y!r}")
    yi = int(positions(d, y, "y")[0])
    Xi = np.array([i for i in range(d) if i != yi], dtype=np.intp) if X is None else positions(d, X, "X")
    if not Xi.size:
        raise ValueError("X must name at least one predictor")
    if yi in Xi:
        raise ValueError(f"variable {yi} is both the response y and a predictor in X={X!r}")
    ridge = float(ridge)
    if not (math.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge must be finite and >= 0, got {ridge!r}")
    intercept = bool(intercept)

    if not s.n > 0:
        raise ValueError("ols needs data: the summary is empty (n=0)")
    n, v = s.n, s.w2 / s.n
    p = Xi.size
    k = p + intercept
    dof = divisor(s, k)  # n - k w2 / n: the covariance's divisor with ddof = k
    if ridge == 0 and not dof > 0:
        raise ValueError(
            f"ols needs more observations than coefficients: effective n={s.effective_n:g} for "
            f"{k} coefficients ({p} predictor(s){' and the intercept' if intercept else ''})"
        )
    M2, mean = s.M2, s.mean
    A = M2[np.ix_(Xi, Xi)]
    c = M2[Xi, yi]
    syy = float(M2[yi, yi])
    mx, my = mean[Xi], float(mean[yi])
    if not intercept:
        # Through the origin: the raw second moments, sum w x x^T = M2 + n mean mean^T.
        A = A + n * np.multiply.outer(mx, mx)
        c = c + n * mx * my
        syy = syy + n * my * my

    scale, L = _scaled_cholesky(A, ridge, Xi, intercept)
    Linv = linalg()[2](L, np.eye(p))
    z = Linv @ (c / scale)
    coef = (Linv.T @ z) / scale
    rss = max(syy - float(z @ z) - ridge * float(coef @ coef), 0.0)
    sigma2 = rss / dof if dof > 0 else math.nan
    rsquared = 1.0 - rss / syy if syy > 0 else math.nan
    df_resid = s.effective_n - k
    # Ridge may have k >= effective_n (even p > n): no residual degrees of freedom to adjust by.
    rsquared_adj = 1.0 - (s.effective_n - intercept) / df_resid * (1.0 - rsquared) if df_resid > 0 else math.nan

    if ridge == 0:
        # A^{-1} = diag(1/scale) Linv^T Linv diag(1/scale), and mean_X^T A^{-1} mean_X = ||Linv (mean_X / scale)||².
        Ainv = (Linv.T @ Linv) / np.multiply.outer(scale, scale)
        Ainv = (Ainv + Ainv.T) / 2.0
        unit = sigma2 * v
        if intercept:
            q = Linv @ (mx / scale)
            Ainv_m = Ainv @ mx
            cov = np.empty((k, k))
            cov[0, 0] = 1.0 / n + float(q @ q)
            cov[0, 1:] = cov[1:, 0] = -Ainv_m
            cov[1:, 1:] = Ainv
            cov *= unit
        else:
            cov = unit * Ainv
        bse = np.sqrt(np.diagonal(cov)).copy()
    else:
        cov = np.full((k, k), np.nan)
        bse = np.full(k, np.nan)
    params = np.concatenate([[my - float(mx @ coef)], coef]) if intercept else coef
    for array in (params, bse, cov):
        array.setflags(write=False)
    return OLSResult(
        y=yi,
        X=tuple(int(i) for i in Xi),
        params=params,
        bse=bse,
        cov_params=cov,
        residual_variance=float(sigma2),
        rsquared=float(rsquared),
        rsquared_adj=float(rsquared_adj),
        df_resid=float(df_resid),
        n=float(n),
        ridge=ridge,
        has_intercept=intercept,
    )
