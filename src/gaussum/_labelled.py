"""Labelled results: summaries as pandas and xarray objects with the variables' names on their axes.

pandas and xarray are optional (``gaussum[frames]``) and imported here, lazily, only when a
labelled result is asked for. Unnamed summaries are labelled by position (0, 1, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .grouped import GroupedSummary
    from .summary import GaussianSummary

__all__ = [
    "correlation_frame",
    "covariance_frame",
    "grouped_covariance_frame",
    "grouped_to_pandas",
    "grouped_to_xarray",
    "to_pandas",
    "to_xarray",
]


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError("labelled results need pandas: pip install 'gaussum[frames]'") from None
    return pandas


def _xarray() -> Any:
    try:
        import xarray
    except ImportError:
        raise ImportError("labelled results need xarray: pip install 'gaussum[frames]'") from None
    return xarray


def labels(names: tuple[str, ...] | None, d: int) -> list[Any]:
    """The names, or positions 0..d-1 for an unnamed summary."""
    return list(names) if names is not None else list(range(d))


def to_pandas(s: GaussianSummary, ddof: float) -> dict[str, Any]:
    """A dict: ``n``, ``effective_n`` (floats), ``mean``, ``variance``, ``std`` (Series), and for a
    full summary ``covariance`` and ``correlation`` (DataFrames), labelled by variable."""
    pd = _pandas()
    if s.mean.ndim == 0:
        raise ValueError("labelled results need vector data; this summary is of scalar data")
    index = pd.Index(labels(s.names, s.d), name="variable")
    variance = s.variance(ddof)
    out: dict[str, Any] = {
        "n": s.n,
        "effective_n": s.effective_n,
        "mean": pd.Series(np.array(s.mean), index=index, name="mean"),
        "variance": pd.Series(np.array(variance), index=index, name="variance"),
        "std": pd.Series(np.sqrt(variance), index=index, name="std"),
    }
    if not s.diagonal:
        out["covariance"] = covariance_frame(s, ddof)
        out["correlation"] = correlation_frame(s)
    return out


def _square_frame(values: np.ndarray, names: list[Any]) -> Any:
    pd = _pandas()
    return pd.DataFrame(
        np.array(values), index=pd.Index(names, name="variable"), columns=pd.Index(names, name="variable2")
    )


def covariance_frame(s: GaussianSummary, ddof: float) -> Any:
    """``covariance(ddof)`` as a DataFrame with the names on both axes."""
    if s.diagonal or s.mean.ndim == 0:
        raise ValueError("covariance_frame needs a full summary of vector data; use to_pandas()['variance']")
    return _square_frame(s.covariance(ddof), labels(s.names, s.d))


def correlation_frame(s: GaussianSummary) -> Any:
    """``correlation()`` as a DataFrame with the names on both axes."""
    if s.diagonal or s.mean.ndim == 0:
        raise ValueError("correlation_frame needs a full summary of vector data")
    return _square_frame(s.correlation(), labels(s.names, s.d))


def to_xarray(s: GaussianSummary, ddof: float) -> Any:
    """An xarray Dataset: ``mean``, ``variance`` over ``variable`` and ``covariance`` over
    ``(variable, variable2)``; ``n``, ``w2`` and ``effective_n`` as attributes."""
    xr = _xarray()
    if s.mean.ndim == 0:
        raise ValueError("labelled results need vector data; this summary is of scalar data")
    names = labels(s.names, s.d)
    data: dict[str, Any] = {
        "mean": ("variable", np.array(s.mean)),
        "variance": ("variable", np.array(s.variance(ddof))),
    }
    if not s.diagonal:
        data["covariance"] = (("variable", "variable2"), np.array(s.covariance(ddof)))
    return xr.Dataset(
        data,
        coords={"variable": names, "variable2": names},
        attrs={"n": s.n, "w2": s.w2, "effective_n": s.effective_n, "ddof": ddof},
    )


def grouped_to_pandas(g: GroupedSummary, ddof: float) -> Any:
    """A tidy DataFrame, one row per key: ``n``, ``effective_n``, then ``mean_<name>`` and
    ``var_<name>`` for each variable (``mean`` and ``var`` for scalar data)."""
    pd = _pandas()
    index = pd.Index(g.keys(), name="key")
    columns: dict[str, Any] = {"n": np.array(g.counts), "effective_n": g.effective_n}
    if g.means.ndim == 1:
        columns["mean"] = np.array(g.means)
        columns["var"] = g.variances(ddof)
    else:
        variances = g.variances(ddof)
        names = labels(g.names, g.d)
        for j, name in enumerate(names):
            columns[f"mean_{name}"] = g.means[:, j]
        for j, name in enumerate(names):
            columns[f"var_{name}"] = variances[:, j]
    return pd.DataFrame(columns, index=index)


def grouped_covariance_frame(g: GroupedSummary, ddof: float) -> Any:
    """Per-key covariances stacked as ``df.groupby(key).cov()`` lays them out: a ``(key, variable)``
    MultiIndex on the rows, the variables on the columns."""
    pd = _pandas()
    if g.diagonal or g.means.ndim == 1:
        raise ValueError("covariance_frame needs full summaries of vector data")
    names = labels(g.names, g.d)
    covariances = g.covariances(ddof)
    index = pd.MultiIndex.from_product([g.keys(), names], names=["key", None])
    return pd.DataFrame(covariances.reshape(-1, g.d), index=index, columns=pd.Index(names))


def grouped_to_xarray(g: GroupedSummary, ddof: float) -> Any:
    """An xarray Dataset over ``key`` (and ``variable``, ``variable2``): ``n``, ``w2``, ``mean``,
    ``variance`` and, for full summaries, ``covariance``."""
    xr = _xarray()
    data: dict[str, Any] = {"n": ("key", np.array(g.counts)), "w2": ("key", np.array(g.w2))}
    coords: dict[str, Any] = {"key": g.keys()}
    if g.means.ndim == 1:
        data["mean"] = ("key", np.array(g.means))
        data["variance"] = ("key", g.variances(ddof))
    else:
        names = labels(g.names, g.d)
        coords.update(variable=names, variable2=names)
        data["mean"] = (("key", "variable"), np.array(g.means))
        data["variance"] = (("key", "variable"), g.variances(ddof))
        if not g.diagonal:
            data["covariance"] = (("key", "variable", "variable2"), g.covariances(ddof))
    return xr.Dataset(data, coords=coords, attrs={"ddof": ddof})
