"""Principal components from a summary: the eigendecomposition of its covariance."""

from __future__ import annotations

import numbers
from typing import Any

import attrs
import numpy as np

from ..grouped import GroupedSummary
from ..summary import GaussianSummary
from ._common import array_eq, check_full, check_summary, cov_matrix, divisor, number, per_key

__all__ = ["PCAResult", "pca"]


# Arrays compare by value (NaN equal to NaN), as the results of inference.py do.
_ARRAY_EQ = attrs.cmp_using(eq=array_eq)


@attrs.frozen(repr=False)
class PCAResult:
    """The first `k` principal components of a summary's covariance.

    Attributes
    ----------
    components : ndarray, shape (k, d)
        Unit rows, by decreasing variance; each row's largest-magnitude loading is positive.
    explained_variance : ndarray, shape (k,)
        The covariance's eigenvalues (``ddof`` as given to `pca`).
    explained_variance_ratio : ndarray, shape (k,)
        Their share of the total variance ``trace(covariance)`` (of all d components).
    singular_values : ndarray, shape (k,)
        ``sqrt`` of the eigenvalues of M2: the singular values of the centred (weighted) rows.
    mean : ndarray, shape (d,)
    n : float
        The summary's total weight.
    whiten : bool
        Whether `transform` scales the scores to unit variance.
    """

    components: np.ndarray = attrs.field(eq=_ARRAY_EQ)
    explained_variance: np.ndarray = attrs.field(eq=_ARRAY_EQ)
    explained_variance_ratio: np.ndarray = attrs.field(eq=_ARRAY_EQ)
    singular_values: np.ndarray = attrs.field(eq=_ARRAY_EQ)
    mean: np.ndarray = attrs.field(eq=_ARRAY_EQ)
    n: float
    whiten: bool

    def _check(self, x: Any, width: int, name: str) -> tuple[np.ndarray, bool]:
        rows = np.asarray(x, dtype=np.float64)
        if rows.ndim not in (1, 2) or rows.shape[-1] != width:
            raise ValueError(f"{name} must have shape ({width},) or (m, {width}), got {rows.shape}")
        return rows, rows.ndim == 1

    def transform(self, x: Any) -> np.ndarray:
        """Scores ``(x - mean) @ components.T`` (divided by ``sqrt(explained_variance)`` if whitening).

        `x` has shape ``(m, d)`` or ``(d,)``; the scores ``(m, k)`` or ``(k,)``.
        """
        rows, _ = self._check(x, self.mean.size, "x")
        scores = (rows - self.mean) @ self.components.T
        return np.asarray(scores / np.sqrt(self.explained_variance)) if self.whiten else scores

    def inverse_transform(self, z: Any) -> np.ndarray:
        """Rows back from scores: ``z @ components + mean`` (``z`` unwhitened first).

        Exact for ``k = d``; otherwise the projection onto the first k components.
        """
        scores, _ = self._check(z, self.components.shape[0], "z")
        if self.whiten:
            scores = scores * np.sqrt(self.explained_variance)
        return np.asarray(scores @ self.components + self.mean)

    def __repr__(self) -> str:
        k, d = self.components.shape
        return (
            f"PCAResult(n={number(self.n)}, d={d}, k={k}, "
            f"explained_variance_ratio={number(self.explained_variance_ratio)})"
        )


def _sign_rule(vectors: np.ndarray) -> np.ndarray:
    """Flip each row so that its largest-magnitude entry is positive (first one on ties)."""
    largest = vectors[np.arange(vectors.shape[0]), np.argmax(np.abs(vectors), axis=1)]
    return vectors * np.where(largest < 0, -1.0, 1.0)[:, None]


def pca(summary: GaussianSummary | GroupedSummary, k: Any = None, ddof: float = 1, *, whiten: bool = False) -> Any:
    """Principal component analysis from the summary alone.

    Parameters
    ----------
    summary : GaussianSummary or GroupedSummary
        A full summary of d variables (a diagonal one keeps no covariances).
    k : int or float, optional
        How many components to keep: an int in ``1..d``, or a float in (0, 1): the fewest
        components whose explained variance ratios sum past it (as scikit-learn's
        ``n_components``). All d by default.
    ddof : float
        The covariance is ``M2 / (n - ddof w2 / n)``; 1 as scikit-learn's ``explained_variance_``.
    whiten : bool
        Make `PCAResult.transform` return scores of unit variance.

    Returns
    -------
    PCAResult or dict
        For a `GroupedSummary`, a dict ``{key: PCAResult}`` in key order.

    Raises
    ------
    TypeError
        If `summary` is neither kind of summary.
    ValueError
        For a diagonal or empty summary, too few observations for `ddof`, or a bad `k`.

    Notes
    -----
    With the covariance ``S = V diag(lambda) V^T`` (``lambda`` decreasing, from ``eigh``):
    ``components = V[:, :k]^T``, ``explained_variance = lambda[:k]``,
    ``explained_variance_ratio = lambda[:k] / trace(S)``,
    ``singular_values = sqrt(lambda[:k] (n - ddof w2 / n))``, the singular values of the centred
    rows. This equals ``sklearn.decomposition.PCA`` on the rows (with frequency weights, on the
    rows repeated), except for the sign of each component, which PCA leaves to the solver and
    this fixes: each component's largest-magnitude loading is positive. Components with equal
    eigenvalues are determined only up to a rotation within their eigenspace.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussum import GaussianSummary
    >>> from gaussum.models import pca
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3)) @ [[3.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.1]]
    >>> p = pca(GaussianSummary.from_samples(X), k=2)
    >>> p
    PCAResult(n=500, d=3, k=2, explained_variance_ratio=[0.922958, 0.0760621])
    >>> p.components.round(3).tolist()
    [[0.994, 0.11, -0.001], [-0.11, 0.994, 0.001]]
    >>> bool(np.allclose(p.inverse_transform(p.transform(X)), X, atol=0.5))
    True
    """
    check_summary(summary, "pca")
    if isinstance(summary, GroupedSummary):
        return per_key(summary, lambda s: pca(s, k, ddof, whiten=whiten), stack=False)
    s = summary
    check_full(s, "pca")
    cov = cov_matrix(s, ddof, "pca")
    d = cov.shape[0]
    eigenvalues, vectors = np.linalg.eigh(cov)
    # eigh returns increasing eigenvalues; rounding can leave the smallest slightly negative.
    eigenvalues = np.clip(eigenvalues[::-1], 0.0, None)
    vectors = _sign_rule(vectors[:, ::-1].T)
    total = float(np.trace(cov))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = eigenvalues / total
    if k is None:
        keep = d
    elif isinstance(k, (numbers.Integral, np.integer)) and not isinstance(k, (bool, np.bool_)):
        keep = int(k)
        if not 1 <= keep <= d:
            raise ValueError(f"k must be between 1 and d={d}, got {k}")
    elif isinstance(k, (float, np.floating)) and 0 < k < 1:
        keep = min(int(np.searchsorted(np.cumsum(ratio), k, side="right")) + 1, d)
    else:
        raise ValueError(f"k must be an int in 1..{d} or a float in (0, 1), got {k!r}")
    dof = divisor(s, ddof)
    fields = {
        "components": vectors[:keep].copy(),
        "explained_variance": eigenvalues[:keep].copy(),
        "explained_variance_ratio": ratio[:keep].copy(),
        "singular_values": np.sqrt(eigenvalues[:keep] * dof),  # eigenvalues of M2
        "mean": np.array(s.mean, dtype=np.float64).reshape(d),
    }
    for array in fields.values():
        array.setflags(write=False)
    return PCAResult(**fields, n=float(s.n), whiten=bool(whiten))
