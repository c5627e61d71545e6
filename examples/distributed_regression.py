"""Linear regression on a Dask cluster from shard summaries, checked against statsmodels.

Each partition of a Dask DataFrame of ``[x0, x1, x2, y]`` (far from zero: sensor readings
around 1e6) is summarised where it lives; the summaries merge in a tree into one
`GaussianSummary`, and `gaussum.models.ols` fits the regression from it alone. The rows never
reach the client for the fit; they are fetched here only to check the answer with statsmodels
on the concatenated data. The same pass gives one regression per region (`summarize_by`), and
any other regression on these variables (a subset of predictors, another response) is refitted
from the same summary without reading the data again.

Run: ``python examples/distributed_regression.py``. Exits 1 if a check fails.
"""

from __future__ import annotations

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
from distributed import Client, LocalCluster
from statsmodels.regression.linear_model import OLS
from statsmodels.tools.tools import add_constant

from gaussum.dask import summarize, summarize_by
from gaussum.models import ols

ROWS = 120_000
PARTITIONS = 12
BETA = np.array([0.8, -1.5, 0.25])


def make_rows(seed: int = 0) -> pd.DataFrame:
    """Readings at offset 1e6 with unit spread, y linear in them, in three regions."""
    rng = np.random.default_rng(seed)
    X = 1e6 + rng.standard_normal((ROWS, 3)) @ [[1.0, 0.3, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]]
    region = rng.choice(["north", "south", "west"], size=ROWS)
    shift = pd.Series(region).map({"north": 0.0, "south": 2.0, "west": -1.0}).to_numpy()
    y = 5.0 + shift + (X - 1e6) @ BETA + 0.2 * rng.standard_normal(ROWS)
    return pd.DataFrame({"region": region, "x0": X[:, 0], "x1": X[:, 1], "x2": X[:, 2], "y": y})


def close(a: np.ndarray, b: np.ndarray, rtol: float) -> bool:
    return bool(np.all(np.abs(np.asarray(a) - np.asarray(b)) <= rtol * np.abs(b).max()))


def main() -> int:
    frame = make_rows()
    columns = ["x0", "x1", "x2", "y"]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster):
        ddf = dd.from_pandas(frame, npartitions=PARTITIONS)
        # Lazy, then computed together: one pass over the partitions, each merge tree of 12 summaries.
        s, per_region = dask.compute(summarize(ddf, columns=columns), summarize_by(ddf, "region", columns=columns))

    fit = ols(s, y=3)  # pooled over regions: their different intercepts are noise to it (lower R²)
    print(f"summary of {s.n:,.0f} rows in {PARTITIONS} partitions -> {fit}")
    # The reference: statsmodels on the concatenated rows, centred so that its own solver does
    # not lose digits to the offset (the slopes do not depend on the centring).
    X, y = frame[columns[:3]].to_numpy(), frame["y"].to_numpy()
    reference = OLS(y - y.mean(), add_constant(X - X.mean(axis=0))).fit()
    slopes_ok = close(fit.coef, reference.params[1:], 1e-9)
    errors_ok = close(fit.bse[1:], reference.bse[1:], 1e-9) and np.isclose(fit.rsquared, reference.rsquared, rtol=1e-9)
    print(f"slopes equal statsmodels on the concatenated rows (1e-9 relative): {slopes_ok}")
    print(f"standard errors and R² equal statsmodels': {errors_ok}")
    print("slopes (true 0.8, -1.5, 0.25):", np.array2string(fit.coef, precision=4),
          "+/-", np.array2string(fit.bse[1:], precision=4))

    # Refit another model from the same summary: y on x0 alone.
    small = ols(s, y=3, X=[0])
    small_reference = OLS(y - y.mean(), add_constant(X[:, :1] - X[:, 0].mean())).fit()
    refit_ok = close(small.coef, small_reference.params[1:], 1e-9)
    print(f"y on x0 alone, refitted from the same summary, equals statsmodels: {refit_ok}")

    # One regression per region, from the same pass over the data.
    regions_ok = True
    for key, region_fit in ols(per_region, y=3).items():
        rows = frame["region"].to_numpy() == key
        Xk, yk = X[rows], y[rows]
        expected = OLS(yk - yk.mean(), add_constant(Xk - Xk.mean(axis=0))).fit()
        intercept = yk.mean() - Xk.mean(axis=0) @ expected.params[1:]
        ok = close(region_fit.coef, expected.params[1:], 1e-9)
        ok = ok and bool(np.isclose(region_fit.intercept, intercept, rtol=1e-6))
        regions_ok = regions_ok and ok
        print(f"  {key:>5}: n={region_fit.n:,.0f} slopes={np.array2string(region_fit.coef, precision=4)} "
              f"R²={region_fit.rsquared:.4f}")
    print(f"per-region fits equal statsmodels on each region's rows: {regions_ok}")
    return 0 if (slopes_ok and errors_ok and refit_ok and regions_ok) else 1


if __name__ == "__main__":
    raise SystemExit(main())
