"""Hypothesis strategies shared by the core's property tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

#: Offsets of the data from zero, from none to timestamp-sized.
OFFSETS = st.sampled_from([0.0, 1.0, -250.0, 1e3, 1e6, -1e6, 1e9])
#: Spreads of the data.
SCALES = st.sampled_from([1e-3, 1.0, 1e3])


@st.composite
def datasets(draw, min_rows: int = 1, max_rows: int = 60, max_d: int = 4, scalar: bool | None = None):
    """A float64 array of shape (N, d), or (N,) for scalar data, at some offset and scale.

    Drawn from a seeded generator rather than element by element: hypothesis then explores the
    shapes, offsets and splits, which is where the merge logic branches.
    """
    n = draw(st.integers(min_rows, max_rows))
    is_scalar = draw(st.booleans()) if scalar is None else scalar
    d = 1 if is_scalar else draw(st.integers(1, max_d))
    offset = draw(OFFSETS)
    scale = draw(SCALES)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    X = offset + scale * rng.standard_normal((n, d))
    if draw(st.booleans()):
        # Repeated values and exact ties exercise zero deltas and zero variances.
        X = np.round(X / scale, 1) * scale
    return X[:, 0] if is_scalar else X


@st.composite
def splits(draw, n_rows: int, max_parts: int = 8):
    """Cut points splitting range(n_rows) into 1..max_parts contiguous, possibly empty, parts."""
    k = draw(st.integers(0, max_parts - 1))
    cuts = sorted(draw(st.lists(st.integers(0, n_rows), min_size=k, max_size=k)))
    return [0, *cuts, n_rows]


def tolerance(X: np.ndarray) -> float:
    """Relative tolerance for comparing summaries of X computed along different paths.

    Each stored mean is rounded to u * |mean|; merging propagates that into M2 in proportion to
    |mean| / spread (the floor of any float64 (n, mean, M2) format), so the tolerance grows with it.
    """
    u = np.finfo(np.float64).eps / 2
    X2 = X.reshape(len(X), -1)
    spread = X2.std(axis=0).min() if len(X2) > 1 else 0.0
    offset = np.abs(X2).max()
    ratio = offset / spread if spread > 0 else 1.0
    return 32 * u * max(1.0, ratio)


@st.composite
def regressions(draw, max_rows: int = 60, max_p: int = 4):
    """Rows ``[X, y]`` of a linear model, shape (N, p + 1), predictors at some offset and scale.

    The response is a random linear function of the centred predictors plus noise, so the fit is
    well posed (N >= p + 3) at any offset; the predictors are those of `datasets` (no ties).
    """
    p = draw(st.integers(1, max_p))
    n = draw(st.integers(p + 3, max(p + 3, max_rows)))
    offset, scale = draw(OFFSETS), draw(SCALES)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    Z = rng.standard_normal((n, p))
    y = draw(OFFSETS) + Z @ rng.uniform(-2.0, 2.0, p) + draw(st.sampled_from([1e-3, 0.1, 1.0])) * rng.standard_normal(n)
    return np.column_stack([offset + scale * Z, y])


@st.composite
def device_batches(draw, max_rows: int = 60, max_d: int = 4):
    """``(X, weights or None)``: a dataset of `datasets` and, half the time, reliability weights >= 0."""
    X = draw(datasets(min_rows=1, max_rows=max_rows, max_d=max_d))
    if not draw(st.booleans()):
        return X, None
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return X, rng.uniform(0.1, 3.0, len(X))
