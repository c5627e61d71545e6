"""gaussum: mergeable, numerically stable Gaussian sufficient statistics.

A `GaussianSummary` holds the count, mean and M2 (summed outer products of deviations from the
mean) of some data. Summaries of disjoint data merge with ``+`` by the pairwise rule of Chan,
Golub and LeVeque, so shards reduced in any order, or rows added one at a time, give the mean and
covariance of all the data to within float64 rounding.
"""

from .errors import Float64OverflowError, MissingKeysWarning, NonFiniteError
from .grouped import GroupedSummary
from .summary import FORMAT_VERSION, GaussianSummary

__all__ = [
    "FORMAT_VERSION",
    "Float64OverflowError",
    "GaussianSummary",
    "GroupedSummary",
    "MissingKeysWarning",
    "NonFiniteError",
]
__version__ = "0.1.0"
