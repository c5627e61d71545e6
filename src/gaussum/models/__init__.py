"""Models from a summary: the estimators that a Gaussian summary determines exactly.

A summary of ``[X, y]`` (count, mean and M2) is the sufficient statistic of least squares, of
principal components, of the Gaussian's marginals and conditionals and of its density. Every
function here takes a `GaussianSummary` (and, where it makes sense, a `GroupedSummary`) and
never the rows, so shards summarised separately, in any order, fit the same model as the
concatenated data, to within float64 rounding:

- `ols`: least squares and ridge regression, with standard errors, t and p-values, R²;
- `pca`: principal components, explained variance, transform and whitening;
- `precision`, `partial_correlation`: the inverse covariance and what it says;
- `shrunk_covariance`: OAS (Chen et al. 2010) or a fixed shrinkage towards ``mu I``;
- `marginal`, `conditional`: sub-summaries and the conditional Gaussian;
- `logpdf`, `mahalanobis`, `sample`, `standardize`: scoring, drawing and scaling new rows;
- `sem`, `mean_confidence_interval`: the uncertainty of the mean.

Variables are integer positions into the mean. For a `GroupedSummary`, a function that returns
an array returns them stacked on a new first axis in key order (as `GroupedSummary.covariances`
does), one that returns a result object returns a dict ``{key: result}`` in key order, and
`marginal` returns a `GroupedSummary`; `sample` and `standardize` take one key's summary. An
error for one key names the key. scipy (``gaussum[stats]``) is needed only for p-values and
confidence intervals.
"""

from .gaussian import (
    ConditionalResult,
    MeanInterval,
    ShrunkCovariance,
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
from .pca import PCAResult, pca
from .regression import MIN_PIVOT, OLSResult, ols

__all__ = [
    "MIN_PIVOT",
    "ConditionalResult",
    "MeanInterval",
    "OLSResult",
    "PCAResult",
    "ShrunkCovariance",
    "conditional",
    "logpdf",
    "mahalanobis",
    "marginal",
    "mean_confidence_interval",
    "ols",
    "partial_correlation",
    "pca",
    "precision",
    "sample",
    "sem",
    "shrunk_covariance",
    "standardize",
]
