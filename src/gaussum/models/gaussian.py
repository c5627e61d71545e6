"""The Gaussian a summary fits: precision, shrinkage, marginals, conditionals, density, draws."""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np

from ..grouped import GroupedSummary
from ..summary import GaussianSummary
from ._common import (
    array_eq,
    as_rows,
    check_full,
    check_summary,
    cov_matrix,
    dof_for_rank,
    factor,
    linalg,
    number,
    per_key,
    positions,
    scipy_stats,
)

__all__ = [
    "ConditionalResult",
    "MeanInterval",
    "ShrunkCovariance",
    "conditional",
    "logpdf",
    "mahalanobis",
    "marginal",
    "mean_confidence_interval",
    "partial_correlation",
    "precision",
    "sample",
    "sem",
    "shrunk_covariance",
    "standardize",
]


# Arrays compare by value (NaN equal to NaN), as the results of inference.py do.
_ARRAY_EQ = attrs.cmp_using(eq=array_eq)


def _readonly(*arrays: np.ndarray) -> None:
    for array in arrays:
        array.setflags(write=False)


def _factored(s: GaussianSummary, ddof: float, function: str) -> Any:
    return factor(cov_matrix(s, ddof, function), dof_for_rank(s), f"the covariance given to {function}")


# -- precision and partial correlation ----------------------------------------------------------


def _precision(s: GaussianSummary, ddof: float, function: str) -> np.ndarray:
    check_full(s, function)
    f = _factored(s, ddof, function)
    # S^{-1} = diag(1/scale) L^{-T} L^{-1} diag(1/scale) from the correlation's factor L.
    Linv = linalg()[2](f.chol, np.eye(f.scale.size))
    P = (Linv.T @ Linv) / np.multiply.outer(f.scale, f.scale)
    return np.asarray((P + P.T) / 2.0)


def precision(summary: GaussianSummary | GroupedSummary, ddof: float = 1) -> np.ndarray:
    """The precision matrix, the inverse of the covariance.

    Parameters
    ----------
    summary : GaussianSummary or GroupedSummary
        A full summary.
    ddof : float
        The covariance is ``M2 / (n - ddof w2 / n)``.

    Returns
    -------
    ndarray, shape (d, d)
        Exactly symmetric; ``(g, d, d)`` for a `GroupedSummary`, in key order.

    Raises
    ------
    TypeError
        If `summary` is neither kind of summary.
    ValueError
        For a diagonal summary, or a covariance that is singular or near-singular (more
        variables than degrees of freedom, a constant variable, a condition number past
        `gaussum.inference.MAX_CONDITION`).

    Notes
    -----
    ``S = diag(sigma) R diag(sigma)`` with R the correlation matrix, factored ``R = L L^T``;
    ``S^{-1} = diag(1/sigma) L^{-T} L^{-1} diag(1/sigma)``. Equal to
    ``np.linalg.inv(np.cov(X, rowvar=False))`` to within the covariance's condition number
    times the rounding unit.

    Examples
    --------
    >>> from gaussum import GaussianSummary
    >>> from gaussum.models import precision
    >>> s = GaussianSummary.from_moments(50, [0.0, 0.0], [[2.0, 1.0], [1.0, 2.0]])
    >>> precision(s).round(6).tolist()
    [[0.666667, -0.333333], [-0.333333, 0.666667]]
    """
    check_summary(summary, "precision")
    if isinstance(summary, GroupedSummary):
        return np.asarray(per_key(summary, lambda s: precision(s, ddof), stack=True))
    return _precision(summary, ddof, "precision")


def partial_correlation(summary: GaussianSummary | GroupedSummary) -> np.ndarray:
    """Partial correlations: of each pair of variables, given all the others.

    Parameters
    ----------
    summary : GaussianSummary or GroupedSummary
        A full summary.

    Returns
    -------
    ndarray, shape (d, d)
        Unit diagonal; ``(g, d, d)`` for a `GroupedSummary`, in key order.

    Raises
    ------
    TypeError
        If `summary` is neither kind of summary.
    ValueError
        As `precision`.

    Notes
    -----
    With the precision ``P``, ``rho_ij = -P_ij / sqrt(P_ii P_jj)``: the correlation of the
    residuals of variables i and j after each is regressed (with an intercept) on the other
    ``d - 2`` variables. It does not depend on ``ddof``.

    Examples
    --------
    >>> from gaussum import GaussianSummary
    >>> from gaussum.models import partial_correlation
    >>> cov = [[1.0, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 1.0]]  # a Markov chain 0 - 1 - 2
    >>> s = GaussianSummary.from_moments(100, [0.0, 0.0, 0.0], cov)
    >>> (partial_correlation(s).round(6) + 0.0).tolist()  # 0 and 2 are independent given 1
    [[1.0, 0.447214, 0.0], [0.447214, 1.0, 0.447214], [0.0, 0.447214, 1.0]]
    """
    check_summary(summary, "partial_correlation")
    if isinstance(summary, GroupedSummary):
        return np.asarray(per_key(summary, partial_correlation, stack=True))
    P = _precision(summary, 1, "partial_correlation")
    root = np.sqrt(np.diagonal(P))
    rho = -P / np.multiply.outer(root, root)
    np.clip(rho, -1.0, 1.0, out=rho)
    np.fill_diagonal(rho, 1.0)
    return np.asarray(rho)


# -- shrinkage ----------------------------------------------------------------------------------


@attrs.frozen(repr=False)
class ShrunkCovariance:
    """A shrunk covariance ``(1 - shrinkage) S + shrinkage mu I`` and the shrinkage used."""

    covariance: np.ndarray = attrs.field(eq=_ARRAY_EQ)
    shrinkage: float
    method: str

    def __repr__(self) -> str:
        return (
            f"ShrunkCovariance(method={self.method!r}, shrinkage={number(self.shrinkage)}, "
            f"d={self.covariance.shape[0]})"
        )


_SHRINKAGE_METHODS = ("oas", "fixed")


def shrunk_covariance(
    summary: GaussianSummary | GroupedSummary, method: str = "oas", shrinkage: float | None = None
) -> Any:
    """The covariance shrunk towards a multiple of the identity: OAS, or a fixed shrinkage.

    Parameters
    ----------
    summary : GaussianSummary or GroupedSummary
        A full summary.
    method : {"oas", "fixed"}
        ``"oas"``: the Oracle Approximating Shrinkage of Chen et al. (2010), which chooses the
        shrinkage from n and the covariance. ``"fixed"``: the given `shrinkage`.
    shrinkage : float, optional
        In [0, 1]; required for ``"fixed"``, not allowed for ``"oas"``.

    Returns
    -------
    ShrunkCovariance or dict
        ``covariance`` (d, d), ``shrinkage`` and ``method``; for a `GroupedSummary`, a dict
        ``{key: ShrunkCovariance}`` in key order.

    Raises
    ------
    TypeError
        If `summary` is neither kind of summary.
    ValueError
        For a diagonal or empty summary, an unknown method, or a missing, superfluous or
        out-of-range `shrinkage`.

    Notes
    -----
    With the empirical covariance ``S = M2 / n`` (``ddof=0``, as scikit-learn), ``p = d``,
    ``mu = trace(S) / p`` and ``alpha = mean(S**2)`` (the mean of the squared entries), OAS
    takes ``shrinkage = min((alpha + mu²) / ((n + 1)(alpha - mu² / p)), 1)`` (1 when the
    denominator is 0), and returns ``(1 - shrinkage) S + shrinkage mu I``: exactly
    ``sklearn.covariance.OAS(assume_centered=False)`` on the rows, where ``n`` is the number of
    rows (here ``effective_n``, which is n for unweighted and frequency-weighted data). With one
    variable the shrinkage is 0, as scikit-learn reports. ``"fixed"`` is
    ``sklearn.covariance.ShrunkCovariance(shrinkage)``.

    Why not Ledoit-Wolf: its shrinkage estimates how much the sample covariance varies from
    row to row, ``sum_i ||(x_i - mean)(x_i - mean)^T - S||²_F / n²``, a sum of fourth powers of
    the deviations. A summary keeps only their first and second moments, so it cannot be
    computed from (n, mean, M2). OAS derives the shrinkage assuming the data are Gaussian,
    where those fourth moments are functions of the covariance, so n and S suffice.

    Examples
    --------
    >>> from gaussum import GaussianSummary
    >>> from gaussum.models import shrunk_covariance
    >>> s = GaussianSummary.from_moments(20, [0.0, 0.0], [[1.0, 0.9], [0.9, 1.0]], ddof=0)
    >>> shrunk_covariance(s)
    ShrunkCovariance(method='oas', shrinkage=0.223986, d=2)
    >>> shrunk_covariance(s, "fixed", shrinkage=0.5).covariance.tolist()
    [[1.0, 0.45], [0.45, 1.0]]
    """
    check_summary(summary, "shrunk_covariance")
    if method not in _SHRINKAGE_METHODS:
        raise ValueError(f"method must be one of {_SHRINKAGE_METHODS}, got {method!r}")
    if method == "oas" and shrinkage is not None:
        raise ValueError(f"method 'oas' chooses its own shrinkage; got shrinkage={shrinkage!r} (use method='fixed')")
    if method == "fixed":
        if shrinkage is None:
            raise ValueError("method 'fixed' needs a shrinkage in [0, 1]")
        shrinkage = float(shrinkage)
        if not 0.0 <= shrinkage <= 1.0:
            raise ValueError(f"shrinkage must be in [0, 1], got {shrinkage!r}")
    if isinstance(summary, GroupedSummary):
        return per_key(summary, lambda s: shrunk_covariance(s, method, shrinkage), stack=False)
    s = summary
    check_full(s, "shrunk_covariance")
    S = cov_matrix(s, 0, "shrunk_covariance")
    p = S.shape[0]
    mu = float(np.trace(S)) / p
    if method == "oas":
        if p == 1:
            shrinkage = 0.0  # every shrinkage gives the same 1 x 1 matrix; report 0 as sklearn
        else:
            alpha = float(np.mean(S**2))
            denominator = (s.effective_n + 1.0) * (alpha - mu * mu / p)
            shrinkage = 1.0 if denominator == 0 else min((alpha + mu * mu) / denominator, 1.0)
    assert shrinkage is not None
    shrunk = (1.0 - shrinkage) * S
    shrunk[np.diag_indices(p)] += shrinkage * mu
    _readonly(shrunk)
    return ShrunkCovariance(shrunk, float(shrinkage), method)


# -- marginals and conditionals -----------------------------------------------------------------


def marginal(summary: GaussianSummary | GroupedSummary, variables: Any) -> Any:
    """The summary of a subset of the variables: exactly what summarising those columns gives.

    Parameters
    ----------
    summary : GaussianSummary or GroupedSummary
        Full or diagonal.
    variables : int or sequence of int
        Positions to keep, in the order given. One int gives a scalar summary (mean of shape
        ``()``), a sequence a summary of ``len(variables)`` variables.

    Returns
    -------
    GaussianSummary or GroupedSummary
        Of the same kind as `summary`, with the same weights.

    Raises
    ------
    TypeError
        If `summary` is neither kind of summary, or a position is not an integer.
    ValueError
        For positions out of range or repeated.

    Notes
    -----
    ``n`` is kept, ``mean[variables]`` and ``M2[variables][:, variables]``: the moments of the
    chosen columns are a sub-block of the moments of all, so nothing is recomputed or lost.

    Examples
    --------
    >>> from gaussum import GaussianSummary
    >>> from gaussum.models import marginal
    >>> s = GaussianSummary.from_samples([[1.0, 2.0, 3.0], [2.0, 4.0, 7.0], [4.0, 5.0, 8.0]])
    >>> marginal(s, [2, 0]) == GaussianSummary.from_samples([[3.0, 1.0], [7.0, 2.0], [8.0, 4.0]])
    True
    """
    check_summary(summary, "marginal")
    scalar = isinstance(variables, (int, np.integer)) and not isinstance(variables, (bool, np.bool_))
    if isinstance(summary, GroupedSummary):
        index = positions(summary.d, variables, "variables")
        pairs = {key: marginal(s, variables) for key, s in summary}
        if pairs:
            return GroupedSummary.from_summaries(pairs)
        return GroupedSummary.empty(None if scalar else index.size, diagonal=summary.diagonal)
    s = summary
    index = positions(s.d, variables, "variables")
    mean = np.asarray(s.mean).reshape(s.d)[index]
    mean_error = np.asarray(s.mean_error).reshape(s.d)[index]
    M2 = np.asarray(s.M2)
    if M2.ndim == 0:
        M2 = M2.reshape(1)
    M2 = M2[index] if M2.ndim == 1 else M2[np.ix_(index, index)]
    if scalar:
        mean, M2, mean_error = mean.reshape(()), M2.reshape(()), mean_error.reshape(())
    # w2 carried over: the weights of the rows are those of every variable; and each mean's
    # rounding error (the compensated mean), so the marginal is exactly the sub-summary.
    return GaussianSummary(s.n, mean, M2, w2=s.w2, mean_error=mean_error)


@attrs.frozen(repr=False)
class ConditionalResult:
    """The Gaussian of some variables given the values of the others.

    Attributes
    ----------
    variables : tuple of int
        Positions of the variables described (those not given), in order.
    given : tuple of int
        Positions of the conditioning variables.
    mean : ndarray, shape (r,) or (k, r)
        The conditional mean, one row per row of values.
    covariance : ndarray, shape (r, r)
        The conditional covariance (the same for every value of the given variables).
    coef : ndarray, shape (r, q)
        ``S_rg S_gg^{-1}``: how the conditional mean moves with the given values.
    """

    variables: tuple[int, ...]
    given: tuple[int, ...]
    mean: np.ndarray = attrs.field(eq=_ARRAY_EQ)
    covariance: np.ndarray = attrs.field(eq=_ARRAY_EQ)
    coef: np.ndarray = attrs.field(eq=_ARRAY_EQ)

    def __repr__(self) -> str:
        return (
            f"ConditionalResult(variables={list(self.variables)}, given={list(self.given)}, "
            f"mean={number(self.mean)})"
        )


def conditional(summary: GaussianSummary | GroupedSummary, given: Any, values: Any, ddof: float = 1) -> Any:
    """The conditional Gaussian of the other variables, given values of some.

    Parameters
    ----------
    summary : GaussianSummary or GroupedSummary
        A full summary.
    given : int or sequence of int
        Positions of the q conditioning variables (at least one, not all).
    values : array_like, shape (q,) or (k, q)
        Their values; k rows give k conditional means.
    ddof : float
        The covariance is ``M2 / (n - ddof w2 / n)``.

    Returns
    -------
    ConditionalResult or dict
        For a `GroupedSummary`, a dict ``{key: ConditionalResult}`` in key order.

    Raises
    ------
    TypeError
        If `summary` is neither kind of summary, or a position is not an integer.
    ValueError
        For a diagonal summary, bad positions or values, or a singular covariance of the
        given variables.

    Notes
    -----
    With the rest r and the given g (Schur complement of ``S_gg``):
    ``mean = mean_r + S_rg S_gg^{-1} (values - mean_g)`` and
    ``covariance = S_rr - S_rg S_gg^{-1} S_gr``, computed with the Cholesky factor of the
    scaled ``S_gg`` (no inverse is formed).

    Examples
    --------
    >>> from gaussum import GaussianSummary
    >>> from gaussum.models import conditional
    >>> s = GaussianSummary.from_moments(100, [0.0, 1.0], [[1.0, 0.8], [0.8, 1.0]])
    >>> c = conditional(s, given=0, values=[2.0])
    >>> c.mean.tolist(), c.covariance.round(6).tolist()
    ([2.6], [[0.36]])
    """
    check_summary(summary, "conditional")
    if isinstance(summary, GroupedSummary):
        return per_key(summary, lambda s: conditional(s, given, values, ddof), stack=False)
    s = summary
    check_full(s, "conditional")
    d = s.d
    g = positions(d, given, "given")
    rest = np.array([i for i in range(d) if i not in set(g.tolist())], dtype=np.intp)
    if not g.size or not rest.size:
        raise ValueError(f"given must name at least one and at most {d - 1} of the {d} variables, got {given!r}")
    v = np.asarray(values, dtype=np.float64)
    if v.shape[-1:] != (g.size,) or v.ndim > 2:
        raise ValueError(
            f"values must have shape ({g.size},) or (k, {g.size}) for {g.size} given variable(s), got {v.shape}"
        )
    S = cov_matrix(s, ddof, "conditional")
    mean = np.asarray(s.mean).reshape(d)
    f = factor(S[np.ix_(g, g)], dof_for_rank(s), "the covariance of the given variables")
    W = f.whiten(S[np.ix_(g, rest)])  # C^{-1} S_gr, with S_gg = C C^T
    covariance = S[np.ix_(rest, rest)] - W.T @ W
    covariance = (covariance + covariance.T) / 2.0
    coef = _coef(f, W)
    shift = (v - mean[g]).T  # (q,) or (q, k)
    conditional_mean = mean[rest] + (W.T @ f.whiten(shift)).T
    _readonly(conditional_mean, covariance, coef)
    return ConditionalResult(
        tuple(int(i) for i in rest), tuple(int(i) for i in g), conditional_mean, covariance, coef
    )


def _coef(f: Any, W: np.ndarray) -> np.ndarray:
    """``S_rg S_gg^{-1} = W^T C^{-1}`` from ``W = C^{-1} S_gr``."""
    q = W.shape[0]
    Cinv = f.whiten(np.eye(q))
    return np.asarray(W.T @ Cinv)


# -- scoring new rows ---------------------------------------------------------------------------


def logpdf(summary: GaussianSummary | GroupedSummary, x: Any, ddof: float = 1) -> Any:
    """Log density of points under the Gaussian the summary fits.

    Parameters
    ----------
    summary : GaussianSummary or GroupedSummary
        Full or diagonal (a diagonal summary stands for a diagonal covariance).
    x : array_like
        One point, shape ``(d,)`` (``()`` for scalar data), or k points, ``(k, d)`` (``(k,)``).
    ddof : float
        The covariance is ``M2 / (n - ddof w2 / n)``; 0 gives the maximum-likelihood fit.

    Returns
    -------
    float or ndarray of shape (k,)
        For a `GroupedSummary`, stacked per key in key order: ``(g,)`` or ``(g, k)``, the
        score of every point under every key (``argmax`` over axis 0 classifies the points).

    Raises
    ------
    TypeError
        If `summary` is neither kind of summary.
    ValueError
        If `x` has the wrong shape, or the covariance is singular or near-singular.

    Notes
    -----
    ``log p(x) = -(d log(2 pi) + log det S + (x - mean)^T S^{-1} (x - mean)) / 2``, with
    ``log det S`` and the quadratic form from the Cholesky factor of the scaled covariance.
    Equal to ``scipy.stats.multivariate_normal(mean, cov).logpdf(x)``.

    Examples
    --------
    >>> from gaussum import GaussianSummary
    >>> from gaussum.models import logpdf
    >>> s = GaussianSummary.from_moments(10, [0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]])
    >>> round(logpdf(s, [0.0, 0.0]), 6)  # -log(2 pi)
    -1.837877
    """
    check_summary(summary, "logpdf")
    if isinstance(summary, GroupedSummary):
        return per_key(summary, lambda s: logpdf(s, x, ddof), stack=True)
    s = summary
    rows, single = as_rows(x, s)
    f = _factored(s, ddof, "logpdf")
    quad = f.quad((rows - np.asarray(s.mean).reshape(s.d)).T)
    values = -0.5 * (s.d * math.log(2.0 * math.pi) + f.logdet() + quad)
    return float(values[0]) if single else values


def mahalanobis(summary: GaussianSummary | GroupedSummary, x: Any, ddof: float = 1) -> Any:
    """Mahalanobis distance of points from the Gaussian the summary fits.

    `gaussum.inference.mahalanobis` with the summary first, as every function of
    `gaussum.models` takes it, and per key for a `GroupedSummary`.

    Parameters
    ----------
    summary : GaussianSummary or GroupedSummary
    x : array_like
        One point, shape ``(d,)`` (``()`` for scalar data), or k points, ``(k, d)`` (``(k,)``).
    ddof : float
        The covariance is ``M2 / (n - ddof w2 / n)``.

    Returns
    -------
    float or ndarray of shape (k,)
        For a `GroupedSummary`, stacked per key in key order: ``(g,)`` or ``(g, k)``.

    Raises
    ------
    TypeError
        If `summary` is neither kind of summary.
    ValueError
        If `x` has the wrong shape, or the covariance is singular or near-singular.

    Notes
    -----
    ``sqrt((x - mean)^T S^{-1} (x - mean))``, as ``scipy.spatial.distance.mahalanobis(x, mean,
    inv(S))``. For Gaussian data its square is chi-square with d degrees of freedom, which
    gives the threshold for flagging outliers (see ``examples/streaming_anomalies.py``).

    Examples
    --------
    >>> from gaussum import GaussianSummary
    >>> from gaussum.models import mahalanobis
    >>> s = GaussianSummary.from_moments(10, [0.0, 0.0], [[4.0, 0.0], [0.0, 1.0]])
    >>> mahalanobis(s, [[2.0, 0.0], [0.0, 3.0]]).tolist()
    [1.0, 3.0]
    """
    check_summary(summary, "mahalanobis")
    if isinstance(summary, GroupedSummary):
        return per_key(summary, lambda s: mahalanobis(s, x, ddof), stack=True)
    s = summary
    rows, single = as_rows(x, s)
    f = _factored(s, ddof, "mahalanobis")
    distances = np.sqrt(f.quad((rows - np.asarray(s.mean).reshape(s.d)).T))
    return float(distances[0]) if single else distances


def sample(summary: GaussianSummary, size: int, rng: Any = None, ddof: float = 1) -> np.ndarray:
    """Draws from the Gaussian the summary fits.

    Parameters
    ----------
    summary : GaussianSummary
        Full or diagonal; the covariance may be singular (draws then lie in its range).
    size : int
        How many draws.
    rng : numpy.random.Generator, int or None
        A generator, or a seed for ``np.random.default_rng``.
    ddof : float
        The covariance is ``M2 / (n - ddof w2 / n)``.

    Returns
    -------
    ndarray, shape (size, d), or (size,) for scalar data

    Raises
    ------
    TypeError
        If `summary` is not a `GaussianSummary` (draw from one key: ``g[key]``).
    ValueError
        For a negative `size`, or too few observations for `ddof`.

    Notes
    -----
    ``mean + z V diag(sqrt(lambda))^T`` with standard normal ``z`` and ``S = V diag(lambda) V^T``:
    the symmetric square root works for singular covariances, where Cholesky does not.

    Examples
    --------
    >>> from gaussum import GaussianSummary
    >>> from gaussum.models import sample
    >>> s = GaussianSummary.from_moments(100, [5.0, -5.0], [[1.0, 0.5], [0.5, 1.0]])
    >>> draws = sample(s, 100_000, rng=0)
    >>> draws.shape, draws.mean(axis=0).round(1).tolist()
    ((100000, 2), [5.0, -5.0])
    """
    check_summary(summary, "sample", grouped=False)
    if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)) or size < 0:
        raise ValueError(f"size must be a non-negative integer, got {size!r}")
    s = summary
    S = cov_matrix(s, ddof, "sample")
    eigenvalues, vectors = np.linalg.eigh(S)
    # Eigenvalues at rounding level of the largest are zeros of a singular covariance: keeping
    # their ~1e-16 (or clipping only the negative ones) would scatter draws ~1e-8 off its range.
    cutoff = s.d * np.finfo(np.float64).eps * max(float(eigenvalues[-1]), 0.0)
    root = vectors * np.sqrt(np.where(eigenvalues > cutoff, eigenvalues, 0.0))
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    draws = np.asarray(s.mean).reshape(s.d) + generator.standard_normal((int(size), s.d)) @ root.T
    return np.asarray(draws[:, 0] if np.ndim(s.mean) == 0 else draws)


def standardize(summary: GaussianSummary, x: Any, ddof: float = 0) -> np.ndarray:
    """Points centred on the summary's mean and divided by its standard deviations.

    Parameters
    ----------
    summary : GaussianSummary
        Full or diagonal.
    x : array_like
        One point ``(d,)`` or rows ``(k, d)`` (``()`` or ``(k,)`` for scalar data).
    ddof : float
        0 (the default, as ``sklearn.preprocessing.StandardScaler``): the standard deviations are
        ``sqrt(diag(M2) / n)``.

    Returns
    -------
    ndarray, the shape of `x`

    Raises
    ------
    TypeError
        If `summary` is not a `GaussianSummary`.
    ValueError
        If `x` has the wrong shape, or the summary is too small for `ddof`.

    Notes
    -----
    ``(x - mean) / std``. A variable with zero variance is only centred (divided by 1), as
    StandardScaler does, so constant columns come out as zeros, not NaN. Equal to
    ``StandardScaler().fit(X, sample_weight=w).transform(x)`` on the rows.

    Examples
    --------
    >>> from gaussum import GaussianSummary
    >>> from gaussum.models import standardize
    >>> s = GaussianSummary.from_samples([[1.0, 5.0], [3.0, 5.0]])
    >>> standardize(s, [[3.0, 5.0], [2.0, 6.0]]).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    check_summary(summary, "standardize", grouped=False)
    s = summary
    points = np.asarray(x, dtype=np.float64)
    rows, _ = as_rows(points, s)
    std = np.sqrt(np.diagonal(cov_matrix(s, ddof, "standardize")))
    std = np.where(std > 0, std, 1.0)
    return np.asarray((rows - np.asarray(s.mean).reshape(s.d)) / std).reshape(points.shape)


# -- the uncertainty of the mean ----------------------------------------------------------------


def _sem(s: GaussianSummary, ddof: float, function: str) -> np.ndarray:
    variance = np.diagonal(cov_matrix(s, ddof, function))
    return np.sqrt(variance / s.effective_n).reshape(np.shape(s.mean))


def sem(summary: GaussianSummary | GroupedSummary, ddof: float = 1) -> Any:
    """The standard error of the mean, per variable.

    Parameters
    ----------
    summary : GaussianSummary or GroupedSummary
        Full or diagonal.
    ddof : float
        The variance is ``diag(M2) / (n - ddof w2 / n)`` (1, as ``scipy.stats.sem``).

    Returns
    -------
    ndarray, shape (d,), or () for scalar data
        ``(g, d)`` for a `GroupedSummary`, in key order.

    Raises
    ------
    TypeError
        If `summary` is neither kind of summary.
    ValueError
        For a summary too small for `ddof`.

    Notes
    -----
    ``sqrt(variance / effective_n)``: ``std / sqrt(n)`` unweighted (``scipy.stats.sem``), and
    the standard error of the weighted mean, ``sigma sqrt(sum w² ) / sum w``, with weights.

    Examples
    --------
    >>> from gaussum import GaussianSummary
    >>> from gaussum.models import sem
    >>> float(sem(GaussianSummary.from_samples([1.0, 2.0, 3.0, 4.0, 5.0])))
    0.7071067811865476
    """
    check_summary(summary, "sem")
    if isinstance(summary, GroupedSummary):
        return per_key(summary, lambda s: sem(s, ddof), stack=True)
    return _sem(summary, ddof, "sem")


@attrs.frozen(repr=False)
class MeanInterval:
    """A t-based confidence interval for the mean, per variable: ``low <= mean <= high``."""

    mean: np.ndarray = attrs.field(eq=_ARRAY_EQ)
    low: np.ndarray = attrs.field(eq=_ARRAY_EQ)
    high: np.ndarray = attrs.field(eq=_ARRAY_EQ)
    level: float
    df: float

    def __repr__(self) -> str:
        return (
            f"MeanInterval(level={number(self.level)}, df={number(self.df)}, low={number(self.low)}, "
            f"high={number(self.high)})"
        )


def mean_confidence_interval(summary: GaussianSummary | GroupedSummary, level: float = 0.95) -> Any:
    """A t-based confidence interval for the mean of each variable (needs scipy).

    Parameters
    ----------
    summary : GaussianSummary or GroupedSummary
        Full or diagonal, with ``effective_n > 1``.
    level : float
        The confidence level, in (0, 1).

    Returns
    -------
    MeanInterval or dict
        ``mean``, ``low``, ``high`` (shape ``(d,)``, or ``()`` for scalar data), ``level`` and
        ``df``. For a `GroupedSummary`, a dict ``{key: MeanInterval}`` in key order.

    Raises
    ------
    ImportError
        Without scipy (``pip install 'gaussum[stats]'``).
    TypeError
        If `summary` is neither kind of summary.
    ValueError
        For a `level` outside (0, 1) or a summary with ``effective_n <= 1``.

    Notes
    -----
    ``mean ± t_{(1 + level)/2, df} · sem`` with ``df = effective_n - 1`` (``n - 1`` unweighted):
    ``scipy.stats.t.interval(level, df, loc=mean, scale=scipy.stats.sem(x))`` on the rows.

    Examples
    --------
    >>> from gaussum import GaussianSummary
    >>> from gaussum.models import mean_confidence_interval
    >>> mean_confidence_interval(GaussianSummary.from_samples([1.0, 2.0, 3.0, 4.0, 5.0]))
    MeanInterval(level=0.95, df=4, low=1.03676, high=4.96324)
    """
    check_summary(summary, "mean_confidence_interval")
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if isinstance(summary, GroupedSummary):
        return per_key(summary, lambda s: mean_confidence_interval(s, level), stack=False)
    s = summary
    df = s.effective_n - 1.0
    if not df > 0:
        raise ValueError(f"mean_confidence_interval needs effective n > 1, got {s.effective_n:g}")
    half = scipy_stats().t.ppf(0.5 + level / 2.0, df) * _sem(s, 1, "mean_confidence_interval")
    mean = np.array(s.mean, dtype=np.float64)
    low, high = mean - half, mean + half
    _readonly(mean, low, high)
    return MeanInterval(mean, low, high, level, float(df))
