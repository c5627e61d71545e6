"""Summarise a Dask array and a Dask DataFrame on a local multi-process cluster.

``summarize`` reads each chunk once, where it lives, and merges the per-chunk summaries in a
tree; ``summarize_by`` does the same per key of a column. The same code runs on a remote
cluster: connect a ``Client`` to its scheduler instead of starting a ``LocalCluster``.

Run: ``python examples/dask_summarize.py``.
"""

from __future__ import annotations

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
from distributed import Client, LocalCluster

from gaussum.dask import summarize, summarize_by


def main() -> None:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster):
        # 2,000,000 x 4 rows drawn on the workers, far from zero: the data never reaches the client.
        x = da.random.default_rng(0).normal(1e6, 2.0, size=(2_000_000, 4), chunks=(250_000, 4))
        s = summarize(x, compute=True)
        print(s)
        print("std:", np.array2string(s.std(), precision=5))

        # Lazy: build now, compute later (or pass the Delayed to dask.compute with other work).
        lazy = summarize(x[:, :2], diagonal=True)
        print("diagonal, first two columns:", lazy.compute())

        rng = np.random.default_rng(1)
        pdf = pd.DataFrame({
            "sensor": rng.choice(["north", "south", "east"], size=30_000, p=[0.7, 0.2, 0.1]),
            "temperature": rng.normal(290.0, 3.0, size=30_000),
            "pressure": rng.normal(101_325.0, 50.0, size=30_000),
        })
        g = summarize_by(dd.from_pandas(pdf, npartitions=6), "sensor", compute=True)
        for key, summary in g:
            print(f"{key:>6}: n={summary.n:,.0f}  mean={np.array2string(summary.mean, precision=2)}")


if __name__ == "__main__":
    main()
