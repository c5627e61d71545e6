"""Inference from summaries alone: are these groups one Gaussian, and how far apart are they?

Every function here takes `GaussianSummary` values, never raw rows: the count, mean and M2 of a
group are sufficient statistics for the tests below, so shards that were summarised separately
(and possibly long ago) can still be compared before they are pooled.

- `welch_t`: per-variable Welch t tests (unequal variances);
- `hotelling_t2`: the two-sample Hotelling T² test of equal mean vectors, with pooled
  covariances or, for unequal covariances, the Krishnamoorthy–Yu approximation;
- `box_m`: Box's M test of equal covariance matrices across any number of groups;
- `kl_divergence`, `bhattacharyya_distance`, `mahalanobis`: distances between the fitted
  Gaussians, or from points to one;
- `to_scipy`: a summary as a frozen ``scipy.stats`` distribution.

p-values need scipy (``pip install 'gaussum[stats]'``), imported only when a test is called; the
distances need numpy alone.

Matrices are never inverted. Each covariance is scaled to its correlation matrix (so variables in
different units do not spoil the conditioning), checked, and factored by Cholesky; quadratic forms
and traces are then triangular solves with that factor (``scipy.linalg``). Without scipy, which only
the p-values require, the distances use numpy's ``linalg``, which has no triangular solver: its
general ``np.linalg.solve`` (LU of the triangle) gives the same values to rounding, about three
times slower at d = 1000. A covariance that cannot be factored reliably raises
`ValueError` naming the reason: more variables than degrees of freedom, a constant variable, or a
correlation matrix whose condition number exceeds `MAX_CONDITION`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from .summary import GaussianSummary

__all__ = [
    "MAX_CONDITION",
    "BoxMResult",
    "HotellingResult",
    "WelchResult",
    "bhattacharyya_distance",
    "box_m",
    "hotelling_t2",
    "kl_divergence",
    "mahalanobis",
    "to_scipy",
    "welch_t",
]

#: Largest condition number (ratio of extreme eigenvalues) of a correlation matrix that the
#: functions here accept. Past it, solving with the matrix keeps fewer than about
#: ``16 - log10(MAX_CONDITION)`` = 4 significant digits, and a test statistic built on it would
#: mostly measure rounding.
MAX_CONDITION = 1e12


def _scipy_stats() -> Any:
    try:
        from scipy import stats
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError("gaussum.inference needs scipy for p-values: pip install 'gaussum[stats]'") from None
    return stats


# -- formatting of results ----------------------------------------------------------------------


def _number(value: Any) -> str:
    array = np.asarray(value)
    if array.ndim:
        return np.array2string(array, separator=", ", formatter={"float_kind": lambda v: f"{v:.6g}"})
    v = float(array)
    return f"{int(v)}" if v.is_integer() and abs(v) < 1e15 else f"{v:.6g}"


def _df_text(df: tuple[float, float]) -> str:
    return f"({_number(df[0])}, {_number(df[1])})"


def _array_eq(a: Any, b: Any) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


@attrs.frozen(repr=False)
class WelchResult:
    """Per-variable Welch t tests: `statistic`, `df` and two-sided `pvalue`, each of shape ``(d,)``.

    Floats, not arrays, for scalar data.
    """

    statistic: Any = attrs.field(eq=attrs.cmp_using(eq=_array_eq))
    df: Any = attrs.field(eq=attrs.cmp_using(eq=_array_eq))
    pvalue: Any = attrs.field(eq=attrs.cmp_using(eq=_array_eq))

    def __repr__(self) -> str:
        return (
            f"WelchResult(statistic={_number(self.statistic)}, df={_number(self.df)}, "
            f"pvalue={_number(self.pvalue)})"
        )


@attrs.frozen(repr=False)
class HotellingResult:
    """Two-sample Hotelling T²: the statistic, its F transform, the F's degrees of freedom, p-value."""

    t2: float
    f: float
    df: tuple[float, float]
    pvalue: float

    def __repr__(self) -> str:
        return (
            f"HotellingResult(t2={_number(self.t2)}, f={_number(self.f)}, df={_df_text(self.df)}, "
            f"pvalue={_number(self.pvalue)})"
        )


@attrs.frozen(repr=False)
class BoxMResult:
    """Box's M test: the statistic ``m``, its chi-square approximation, degrees of freedom, p-value."""

    m: float
    chi2: float
    df: float
    pvalue: float

    def __repr__(self) -> str:
        return (
            f"BoxMResult(m={_number(self.m)}, chi2={_number(self.chi2)}, df={_number(self.df)}, "
            f"pvalue={_number(self.pvalue)})"
        )


# -- checked factorisation ----------------------------------------------------------------------


@functools.cache
def _linalg() -> tuple[Callable[..., np.ndarray], Callable[..., np.ndarray], Callable[..., np.ndarray]]:
    """``(eigvalsh, cholesky_lower, solve_lower)``, all from scipy when it is installed, else numpy.

    All three from one library, not numpy's factorisation then scipy's solve: the two link
    separate OpenBLAS builds, and handing work from one's threads to the other's stalled each
    call for ~8 ms on a 2-core machine (their idle threads spin and compete for the cores).
    """
    try:
        from scipy import linalg
    except ImportError:
        # numpy has no triangular solver; LU on a triangle is stable, just ~3x the work.
        return np.linalg.eigvalsh, np.linalg.cholesky, np.linalg.solve
    # check_finite=False: a NaN point gives a NaN distance, as numpy's solve does, not an error;
    # the matrices factored are finite (summaries refuse non-finite moments).
    return (
        functools.partial(linalg.eigvalsh, check_finite=False),
        functools.partial(linalg.cholesky, lower=True, check_finite=False),
        functools.partial(linalg.solve_triangular, lower=True, check_finite=False),
    )


@attrs.frozen
class _Factor:
    """A covariance ``S = C C^T`` with ``C = diag(scale) @ chol``, ``chol`` the correlation's factor."""

    scale: np.ndarray
    chol: np.ndarray

    def whiten(self, x: np.ndarray) -> np.ndarray:
        """``C^{-1} x`` for x of shape (d,) or (d, k): its squared norm is ``x^T S^{-1} x``."""
        y = x / (self.scale if x.ndim == 1 else self.scale[:, None])
        return _linalg()[2](self.chol, y)

    def quad(self, x: np.ndarray) -> np.ndarray:
        """``x^T S^{-1} x``, for each column when x is (d, k)."""
        z = self.whiten(x)
        squares: np.ndarray = np.einsum("i...,i...->...", z, z)
        return squares

    def sandwich(self, V: np.ndarray) -> np.ndarray:
        """``C^{-1} V C^{-T}``: the same eigenvalues as ``V S^{-1}``, and symmetric."""
        product: np.ndarray = self.whiten(self.whiten(V).T)
        return product

    def root(self) -> np.ndarray:
        """``C`` itself."""
        factor: np.ndarray = self.chol * self.scale[:, None]
        return factor

    def logdet(self) -> float:
        """``log det S``."""
        return float(2.0 * (np.log(np.diagonal(self.chol)).sum() + np.log(self.scale).sum()))


def _factor(cov: np.ndarray, dof: float, what: str) -> _Factor:
    """Factor a covariance estimated with `dof` degrees of freedom, or say why it cannot be."""
    d = cov.shape[0]
    if d > dof:
        raise ValueError(
            f"{what} is singular: {d} variables but only {dof:g} degrees of freedom "
            f"(a covariance of n rows has rank at most n - 1); more rows are needed"
        )
    variances = np.diagonal(cov)
    constant = np.flatnonzero(~(variances > 0))
    if constant.size:
        which = ", ".join(str(i) for i in constant[:10]) + (", ..." if constant.size > 10 else "")
        raise ValueError(f"{what} is singular: variable {which} has zero variance (a constant column)")
    scale = np.sqrt(variances)
    corr = cov / np.multiply.outer(scale, scale)
    eigvalsh, cholesky, _ = _linalg()
    eigenvalues = eigvalsh(corr)
    smallest, largest = eigenvalues[0], eigenvalues[-1]
    if not smallest * MAX_CONDITION > largest:
        condition = largest / smallest if smallest > 0 else math.inf
        raise ValueError(
            f"{what} is near-singular: its correlation matrix has condition number "
            f"{condition:.3g}, past the limit MAX_CONDITION = {MAX_CONDITION:g} "
            "(some variables are, or nearly are, linear combinations of others)"
        )
    return _Factor(scale, cholesky(corr))


def _check_summary(s: Any, name: str) -> GaussianSummary:
    if not isinstance(s, GaussianSummary):
        raise TypeError(f"{name} must be a GaussianSummary, got {type(s).__name__}")
    return s


def _check_pair(a: Any, b: Any) -> None:
    _check_summary(a, "a")
    _check_summary(b, "b")
    if a.mean.shape != b.mean.shape:
        raise ValueError(f"a and b must have the same variables: mean shapes {a.mean.shape} vs {b.mean.shape}")


def _check_full(s: GaussianSummary, name: str) -> None:
    if s.diagonal:
        raise ValueError(
            f"{name} is a diagonal summary, which keeps no covariances; this test needs the full "
            "covariance matrix (use welch_t for per-variable tests)"
        )


def _cov_matrix(s: GaussianSummary, ddof: int, name: str) -> np.ndarray:
    """``s.covariance(ddof)`` as a (d, d) matrix (diagonal for a diagonal summary)."""
    if s._divisor(ddof) <= 0:
        raise ValueError(f"{name} has n={s.n:g}: no degrees of freedom left for a covariance with ddof={ddof}")
    cov = s.covariance(ddof)
    if cov.ndim == 0:
        return cov.reshape(1, 1)
    return np.diag(cov) if cov.ndim == 1 else cov


def _scatter(s: GaussianSummary) -> np.ndarray:
    """M2 on the scale of `effective_n` observations: ``(effective_n - 1) * covariance(ddof=1)``.

    Exactly M2 for unweighted and frequency-weighted data (``w2 == n``); with reliability
    weights, what M2 would be for equally weighted data with the same covariance and effective
    sample size, so pooled estimates weigh each group by its information.
    """
    p = s.d
    if s.w2 == s.n:
        return s.M2.reshape(p, p)
    return s.M2.reshape(p, p) * ((s.effective_n - 1.0) / s._divisor(1))


def _flat_mean(s: GaussianSummary) -> np.ndarray:
    return s.mean.reshape(-1)


# -- tests --------------------------------------------------------------------------------------


def welch_t(a: GaussianSummary, b: GaussianSummary) -> WelchResult:
    """Welch's t test of equal means, for each variable, from two summaries.

    Each group's sample size is its `effective_n` (Kish's ``n**2 / w2``; ``n`` for unweighted
    and frequency-weighted data), in the standard errors and the Welch-Satterthwaite degrees of
    freedom.

    Parameters
    ----------
    a, b : GaussianSummary
        Summaries of the two groups, each with ``n >= 2``; full or diagonal.

    Returns
    -------
    WelchResult
        ``statistic``, ``df`` and two-sided ``pvalue``, arrays of shape ``(d,)`` (floats for
        scalar data). They equal ``scipy.stats.ttest_ind(A, B, equal_var=False)`` on the rows,
        except for a variable with zero variance in both groups: there `df` and `pvalue` are NaN
        (and `statistic` is NaN, or infinite if the means differ), where scipy substitutes df = 1.

    Raises
    ------
    TypeError
        If `a` or `b` is not a `GaussianSummary`.
    ValueError
        If the summaries have different variables, or either has fewer than two observations.

    Notes
    -----
    With ``v = s²/n`` per group, ``t = (mean_a - mean_b) / sqrt(v_a + v_b)`` and the
    Welch–Satterthwaite degrees of freedom are ``(v_a + v_b)² / (v_a²/(n_a - 1) + v_b²/(n_b - 1))``.

    Examples
    --------
    >>> from gaussum import GaussianSummary
    >>> from gaussum.inference import welch_t
    >>> a = GaussianSummary.from_samples([[1.0, 2.0], [2.0, 3.5], [3.0, 2.5], [4.0, 4.0]])
    >>> b = GaussianSummary.from_samples([[5.0, 2.6], [6.5, 3.9], [7.0, 4.4]])
    >>> welch_t(a, b)
    WelchResult(statistic=[-4.15761, -0.899172], df=[4.91536, 4.4049], pvalue=[0.00917423, 0.415008])
    """
    _check_pair(a, b)
    for name, s in (("a", a), ("b", b)):
        if s.effective_n < 2:
            raise ValueError(f"welch_t needs at least 2 observations in each group; {name} has n={s.effective_n:g}")
    stats = _scipy_stats()
    na, nb = a.effective_n, b.effective_n
    va, vb = a.variance() / na, b.variance() / nb
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = (a.mean - b.mean) / np.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
        pvalue = 2.0 * stats.t.sf(np.abs(statistic), df)
    if a.mean.ndim == 0:
        return WelchResult(float(statistic), float(df), float(pvalue))
    return WelchResult(statistic, df, pvalue)


def hotelling_t2(a: GaussianSummary, b: GaussianSummary, equal_covariances: bool = True) -> HotellingResult:
    """Two-sample Hotelling T² test that two groups have the same mean vector.

    Sample sizes are the groups' `effective_n` (``n`` for unweighted and frequency-weighted
    data), in the pooled covariance, the statistic and the degrees of freedom.

    Parameters
    ----------
    a, b : GaussianSummary
        Full (not diagonal) summaries of the two groups, with the same ``d = p`` variables.
    equal_covariances : bool
        True: the classical test, which pools the two covariances. False: the
        Krishnamoorthy–Yu (2004) approximation for unequal covariances (the multivariate
        Behrens–Fisher problem).

    Returns
    -------
    HotellingResult
        ``t2``, ``f`` (the F statistic), ``df`` (its degrees of freedom) and ``pvalue``.

    Raises
    ------
    TypeError
        If `a` or `b` is not a `GaussianSummary`.
    ValueError
        For diagonal summaries, different variables, or a covariance that is singular or
        near-singular: ``p > n_a + n_b - 2``, a variable constant in both groups, or a condition
        number past `MAX_CONDITION`. ``equal_covariances=False`` also needs ``n >= 2`` in each group.

    Notes
    -----
    With ``delta = mean_a - mean_b``:

    - equal covariances: ``S = (M2_a + M2_b) / (n_a + n_b - 2)``,
      ``T² = n_a n_b / (n_a + n_b) · delta^T S^{-1} delta`` and
      ``F = (n_a + n_b - p - 1) / (p (n_a + n_b - 2)) · T²`` with ``(p, n_a + n_b - p - 1)``
      degrees of freedom (Hotelling 1931).
    - unequal covariances: ``V_i = S_i / n_i``, ``S = V_a + V_b``, ``T² = delta^T S^{-1} delta``;
      ``F = (nu - p + 1) / (nu p) · T²`` with ``(p, nu - p + 1)`` degrees of freedom, where

      ``nu = (p + p²) / sum_i [tr((V_i S^{-1})²) + tr(V_i S^{-1})²] / (n_i - 1)``.

      This is the modification by K. Krishnamoorthy and J. Yu, "Modified Nel and Van der Merwe
      test for the multivariate Behrens–Fisher problem", Statistics & Probability Letters 66
      (2004) 161–169, of D. G. Nel and C. A. van der Merwe (1986), Communications in Statistics
      – Theory and Methods 15, 3719–3735. Unlike the original it is invariant under affine
      changes of the variables, and ``min(n_i) - 1 <= nu <= n_a + n_b - 2``. With one variable it
      is exactly Welch's t test (``T² = t²``, ``nu`` = Welch's degrees of freedom).

    Examples
    --------
    >>> import numpy as np
    >>> from gaussum import GaussianSummary
    >>> from gaussum.inference import hotelling_t2
    >>> rng = np.random.default_rng(0)
    >>> a = GaussianSummary.from_samples(rng.normal(0.0, 1.0, size=(40, 3)))
    >>> b = GaussianSummary.from_samples(rng.normal(0.8, 1.0, size=(30, 3)))
    >>> hotelling_t2(a, b)
    HotellingResult(t2=22.0537, f=7.13502, df=(3, 66), pvalue=0.000319042)
    >>> hotelling_t2(a, b, equal_covariances=False)
    HotellingResult(t2=22.2745, f=7.17914, df=(3, 58.4373), pvalue=0.000349024)
    """
    _check_pair(a, b)
    _check_full(a, "a")
    _check_full(b, "b")
    p = a.d
    delta = _flat_mean(a) - _flat_mean(b)
    na, nb = a.effective_n, b.effective_n
    M2a, M2b = _scatter(a), _scatter(b)
    stats = _scipy_stats()
    if equal_covariances:
        dof = na + nb - 2.0
        if dof <= 0:
            raise ValueError(f"hotelling_t2 needs n_a + n_b > 2, got {na:g} + {nb:g}")
        factor = _factor((M2a + M2b) / dof, dof, "the pooled covariance of a and b")
        t2 = float(factor.quad(delta)) * na * nb / (na + nb)
        df1, df2 = float(p), na + nb - p - 1.0
        f = t2 * df2 / (p * dof)
    else:
        for name, n in (("a", na), ("b", nb)):
            if n < 2:
                raise ValueError(
                    f"hotelling_t2 with unequal covariances needs n >= 2 in each group; {name} has n={n:g}"
                )
        Va, Vb = M2a / ((na - 1.0) * na), M2b / ((nb - 1.0) * nb)
        factor = _factor(Va + Vb, na + nb - 2.0, "the covariance of mean_a - mean_b")
        t2 = float(factor.quad(delta))
        denominator = 0.0
        for V, n in ((Va, na), (Vb, nb)):
            W = factor.sandwich(V)
            denominator += (np.sum(W * W) + np.trace(W) ** 2) / (n - 1.0)
        nu = (p + p * p) / denominator
        df1, df2 = float(p), nu - p + 1.0
        f = t2 * df2 / (nu * p)
    pvalue = float(stats.f.sf(f, df1, df2))
    return HotellingResult(t2, float(f), (df1, float(df2)), pvalue)


def box_m(*summaries: GaussianSummary) -> BoxMResult:
    """Box's M test that two or more groups share one covariance matrix.

    Sample sizes are the groups' `effective_n` (``n`` for unweighted and frequency-weighted
    data), in the pooled covariance and the degrees of freedom.

    Parameters
    ----------
    *summaries : GaussianSummary
        Full summaries of ``g >= 2`` groups with the same ``p`` variables, each with ``n_i > p``.

    Returns
    -------
    BoxMResult
        ``m``, its chi-square approximation ``chi2``, the degrees of freedom ``df`` and ``pvalue``.

    Raises
    ------
    TypeError
        If any argument is not a `GaussianSummary`.
    ValueError
        For fewer than two groups, diagonal summaries, different variables, or a group whose
        covariance is singular or near-singular.

    Notes
    -----
    With ``N = sum n_i``, group covariances ``S_i`` and the pooled ``S = sum M2_i / (N - g)``
    (Box 1949, Biometrika 36, 317–346):

    ``M = (N - g) log det S - sum_i (n_i - 1) log det S_i``,
    ``c = (sum_i 1/(n_i - 1) - 1/(N - g)) (2p² + 3p - 1) / (6 (p + 1)(g - 1))``,
    and ``chi2 = (1 - c) M`` is approximately chi-square with ``p (p + 1)(g - 1) / 2`` degrees of
    freedom. The test is sensitive to non-normality (heavy tails reject it), so a small p-value
    is a reason to look, not proof of different covariances.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussum import GaussianSummary
    >>> from gaussum.inference import box_m
    >>> rng = np.random.default_rng(1)
    >>> a = GaussianSummary.from_samples(rng.normal(size=(50, 2)))
    >>> b = GaussianSummary.from_samples(rng.normal(size=(60, 2)) * [1.0, 3.0])
    >>> box_m(a, b)
    BoxMResult(m=67.8854, chi2=66.5078, df=3, pvalue=2.38662e-14)
    """
    if len(summaries) < 2:
        raise ValueError(f"box_m needs at least 2 summaries, got {len(summaries)}")
    first = _check_summary(summaries[0], "summaries[0]")
    for i, s in enumerate(summaries):
        _check_summary(s, f"summaries[{i}]")
        if s.mean.shape != first.mean.shape:
            raise ValueError(
                f"all summaries must have the same variables: summaries[{i}] has mean shape "
                f"{s.mean.shape}, summaries[0] has {first.mean.shape}"
            )
        _check_full(s, f"summaries[{i}]")
        if s.effective_n < 2:
            raise ValueError(f"box_m needs n >= 2 in each group; summaries[{i}] has n={s.effective_n:g}")
    g, p = len(summaries), first.d
    ns = np.array([s.effective_n for s in summaries])
    N = ns.sum()
    logdets = [
        _factor(_cov_matrix(s, 1, f"summaries[{i}]"), n - 1.0, f"the covariance of summaries[{i}]").logdet()
        for i, (s, n) in enumerate(zip(summaries, ns, strict=True))
    ]
    M2_total = sum(_scatter(s) for s in summaries)
    pooled = _factor(M2_total / (N - g), N - g, "the pooled covariance").logdet()
    m = (N - g) * pooled - float(np.dot(ns - 1.0, logdets))
    c = (np.sum(1.0 / (ns - 1.0)) - 1.0 / (N - g)) * (2 * p * p + 3 * p - 1) / (6.0 * (p + 1) * (g - 1))
    chi2 = (1.0 - c) * m
    df = p * (p + 1) * (g - 1) / 2.0
    pvalue = float(_scipy_stats().chi2.sf(chi2, df))
    return BoxMResult(float(m), float(chi2), float(df), pvalue)


# -- distances ----------------------------------------------------------------------------------


def kl_divergence(a: GaussianSummary, b: GaussianSummary, ddof: int = 1) -> float:
    """Kullback–Leibler divergence ``KL(N_a || N_b)`` between the Gaussians two summaries fit.

    Covariances use the unbiased divisor ``n - ddof * w2 / n``; the conditioning check counts
    `effective_n` observations.

    Parameters
    ----------
    a, b : GaussianSummary
        Summaries with the same variables; a diagonal summary stands for a Gaussian with a
        diagonal covariance.
    ddof : int
        Each Gaussian's covariance is ``M2 / (n - ddof)``.

    Returns
    -------
    float
        In nats; 0 for identical Gaussians, not symmetric in `a` and `b`.

    Raises
    ------
    TypeError
        If `a` or `b` is not a `GaussianSummary`.
    ValueError
        If either covariance is singular or near-singular (see `hotelling_t2`).

    Notes
    -----
    ``KL = (tr(S_b^{-1} S_a) + delta^T S_b^{-1} delta - d + log det S_b - log det S_a) / 2``
    with ``delta = mean_b - mean_a``; the trace is ``||C_b^{-1} C_a||²`` for Cholesky factors
    ``C``.

    Examples
    --------
    >>> from gaussum import GaussianSummary
    >>> from gaussum.inference import kl_divergence
    >>> a = GaussianSummary.from_moments(100, [0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]])
    >>> b = GaussianSummary.from_moments(100, [1.0, 0.0], [[2.0, 0.0], [0.0, 1.0]])
    >>> round(kl_divergence(a, b), 6)  # (1/2 + 1/2 - 1 + log 2) / 2 + 1/4
    0.346574
    """
    _check_pair(a, b)
    fa = _factor(_cov_matrix(a, ddof, "a"), a.effective_n - 1.0, "the covariance of a")
    fb = _factor(_cov_matrix(b, ddof, "b"), b.effective_n - 1.0, "the covariance of b")
    delta = _flat_mean(b) - _flat_mean(a)
    W = fb.whiten(fa.root())
    trace = float(np.sum(W * W))
    return 0.5 * (trace + float(fb.quad(delta)) - a.d + fb.logdet() - fa.logdet())


def bhattacharyya_distance(a: GaussianSummary, b: GaussianSummary, ddof: int = 1) -> float:
    """Bhattacharyya distance between the Gaussians two summaries fit.

    Covariances use the unbiased divisor ``n - ddof * w2 / n``; the conditioning check counts
    `effective_n` observations.

    Parameters
    ----------
    a, b : GaussianSummary
        Summaries with the same variables (diagonal ones stand for diagonal covariances).
    ddof : int
        Each Gaussian's covariance is ``M2 / (n - ddof)``.

    Returns
    -------
    float
        ``D_B >= 0``, symmetric; ``exp(-D_B)`` is the Bhattacharyya coefficient (the overlap).

    Raises
    ------
    TypeError
        If `a` or `b` is not a `GaussianSummary`.
    ValueError
        If a covariance is singular or near-singular (see `hotelling_t2`).

    Notes
    -----
    With ``S = (S_a + S_b) / 2`` and ``delta = mean_a - mean_b``:
    ``D_B = delta^T S^{-1} delta / 8 + (log det S - (log det S_a + log det S_b) / 2) / 2``.

    Examples
    --------
    >>> from gaussum import GaussianSummary
    >>> from gaussum.inference import bhattacharyya_distance
    >>> a = GaussianSummary.from_moments(50, 0.0, 1.0)
    >>> b = GaussianSummary.from_moments(50, 2.0, 1.0)
    >>> bhattacharyya_distance(a, b)  # 2² / 8
    0.5
    """
    _check_pair(a, b)
    Sa, Sb = _cov_matrix(a, ddof, "a"), _cov_matrix(b, ddof, "b")
    fa = _factor(Sa, a.effective_n - 1.0, "the covariance of a")
    fb = _factor(Sb, b.effective_n - 1.0, "the covariance of b")
    f = _factor((Sa + Sb) / 2.0, a.effective_n + b.effective_n - 2.0, "the mean covariance of a and b")
    delta = _flat_mean(a) - _flat_mean(b)
    return float(f.quad(delta)) / 8.0 + 0.5 * (f.logdet() - 0.5 * (fa.logdet() + fb.logdet()))


def mahalanobis(x: Any, s: GaussianSummary, ddof: int = 1) -> Any:
    """Mahalanobis distance from points to the Gaussian a summary fits.

    The covariance uses the divisor ``n - ddof * w2 / n``; the conditioning check counts
    `effective_n` observations.

    Parameters
    ----------
    x : array_like
        One point, shape ``(d,)`` (``()`` for scalar data), or rows of points, ``(k, d)``
        (``(k,)`` for scalar data).
    s : GaussianSummary
    ddof : int
        The covariance is ``M2 / (n - ddof)``.

    Returns
    -------
    float or ndarray of shape (k,)
        ``sqrt((x - mean)^T S^{-1} (x - mean))``.

    Raises
    ------
    TypeError
        If `s` is not a `GaussianSummary`.
    ValueError
        If `x` has the wrong shape, or the covariance is singular or near-singular.

    Examples
    --------
    >>> from gaussum import GaussianSummary
    >>> from gaussum.inference import mahalanobis
    >>> s = GaussianSummary.from_moments(10, [0.0, 0.0], [[4.0, 0.0], [0.0, 1.0]])
    >>> mahalanobis([2.0, 0.0], s)
    1.0
    >>> mahalanobis([[0.0, 3.0], [2.0, 1.0]], s).round(6).tolist()
    [3.0, 1.414214]
    """
    _check_summary(s, "s")
    points = np.asarray(x, dtype=np.float64)
    d = s.d
    if points.shape == s.mean.shape:
        single = True
        rows = points.reshape(1, d)
    elif points.ndim == s.mean.ndim + 1 and points.shape[1:] == s.mean.shape:
        single = False
        rows = points.reshape(-1, d)
    else:
        expected = "() or (k,)" if s.mean.ndim == 0 else f"({d},) or (k, {d})"
        raise ValueError(f"x must have shape {expected} for a summary of mean shape {s.mean.shape}, got {points.shape}")
    factor = _factor(_cov_matrix(s, ddof, "s"), s.effective_n - 1.0, "the covariance of s")
    distances = np.sqrt(factor.quad((rows - _flat_mean(s)).T))
    return float(distances[0]) if single else distances


def to_scipy(s: GaussianSummary, ddof: int = 1) -> Any:
    """The Gaussian a summary fits, as a frozen ``scipy.stats`` distribution.

    The covariance uses the divisor ``n - ddof * w2 / n`` (``n - ddof`` without reliability
    weights).

    Parameters
    ----------
    s : GaussianSummary
    ddof : int
        The covariance is ``M2 / (n - ddof)``; 0 gives the maximum-likelihood fit.

    Returns
    -------
    scipy.stats.multivariate_normal or scipy.stats.norm
        ``multivariate_normal(mean, covariance)`` (diagonal for a diagonal summary), or
        ``norm(mean, std)`` for scalar data (mean of shape ``()``).

    Raises
    ------
    TypeError
        If `s` is not a `GaussianSummary`.
    ValueError
        If the covariance is singular or near-singular (see `hotelling_t2`).

    Examples
    --------
    >>> from gaussum import GaussianSummary
    >>> from gaussum.inference import to_scipy
    >>> s = GaussianSummary.from_samples([1.0, 2.0, 3.0, 6.0])
    >>> dist = to_scipy(s)
    >>> float(dist.mean()), round(float(dist.std()), 6)
    (3.0, 2.160247)
    """
    _check_summary(s, "s")
    stats = _scipy_stats()
    cov = _cov_matrix(s, ddof, "s")
    _factor(cov, s.effective_n - 1.0, "the covariance of s")
    if s.mean.ndim == 0:
        return stats.norm(loc=float(s.mean), scale=math.sqrt(float(cov[0, 0])))
    return stats.multivariate_normal(mean=np.array(s.mean), cov=cov)
