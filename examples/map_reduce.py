"""Map-reduce: summarise shards in a process pool, then merge the summaries.

Each worker reads (here: generates) its own shard and returns only a `GaussianSummary` — a
count, a mean vector and a d x d matrix, whatever the shard's length — so what crosses process
boundaries is tiny. The reduce step merges them with `GaussianSummary.merge_all` (one k-way
step); any order of ``+`` gives the same result to rounding. The same pattern works across
machines with ``s.to_dict()`` / ``GaussianSummary.from_dict`` (JSON), or the command line's
``gaussum merge``.

Usage: python examples/map_reduce.py [WORKERS]
"""

from __future__ import annotations

import json
import sys
from multiprocessing import Pool

import numpy as np

from gaussum import GaussianSummary

SHARDS = 16
ROWS_PER_SHARD = 50_000
MEAN = np.array([1e4, -3.0, 0.5, 7.0])
COV = np.array([[4.0, 1.0, 0.0, 0.5], [1.0, 2.0, 0.3, 0.0], [0.0, 0.3, 1.0, -0.2], [0.5, 0.0, -0.2, 3.0]])


def shard(i: int) -> np.ndarray:
    """The rows of shard i (seeded, so the parent can rebuild them to check the answer)."""
    rng = np.random.default_rng([2024, i])
    rows = rng.multivariate_normal(MEAN, COV, size=ROWS_PER_SHARD // (1 + i % 3))
    return rows


def summarise_shard(i: int) -> dict:
    """The map step. Returns JSON-safe dict, as a worker on another machine would send it."""
    return GaussianSummary.from_samples(shard(i)).to_dict()


def main(workers: int = 2) -> int:
    with Pool(workers) as pool:
        messages = pool.map(summarise_shard, range(SHARDS))
    # The reduce step: the messages could have come over a network, in any order.
    parts = [GaussianSummary.from_dict(json.loads(json.dumps(m))) for m in messages]
    total = GaussianSummary.merge_all(parts)
    folded = sum(reversed(parts))  # pairwise +, in another order

    everything = np.vstack([shard(i) for i in range(SHARDS)])
    print(f"{SHARDS} shards, {workers} workers, {total.n:,.0f} rows, {len(json.dumps(messages[0]))} bytes per message")
    print("mean:", np.array2string(total.mean, precision=4))
    ok_mean = np.allclose(total.mean, everything.mean(axis=0), rtol=1e-13)
    ok_cov = np.allclose(total.covariance(), np.cov(everything, rowvar=False), rtol=1e-10, atol=1e-12)
    ok_order = total.isclose(folded, rtol=1e-12)
    print(f"merged mean equals the mean of all rows: {ok_mean}")
    print(f"merged covariance equals np.cov of all rows: {ok_cov}")
    print(f"merge_all equals pairwise + in reverse order: {ok_order}")
    return 0 if (ok_mean and ok_cov and ok_order) else 1


if __name__ == "__main__":
    raise SystemExit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2))
