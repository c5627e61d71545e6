"""Reducing shards without an engine integration: a summary is a small, picklable value.

Each shard is summarised where it lives (here: generated inside the worker process from its own
seed, so only summaries travel), and the summaries are added. Two idioms that need nothing from
gaussum but ``+``:

- ``dask.bag``: ``bag.map(summarise_shard).fold(operator.add)``;
- ``concurrent.futures``: ``sum(pool.map(summarise_shard, shards))`` (``sum`` starts from 0,
  which a summary absorbs).

Run: ``python examples/engine_free.py``. It checks both results against one in-memory summary of
all the rows, and exits non-zero if they disagree.
"""

from __future__ import annotations

import operator
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from gaussum import GaussianSummary

N_SHARDS = 8
ROWS_PER_SHARD = 50_000
D = 4


def load_shard(i: int) -> np.ndarray:
    """Stand-in for reading shard `i` from storage: seeded, so any process makes the same rows."""
    rng = np.random.default_rng([2024, i])
    return rng.normal(1e6, 1.0 + i, size=(ROWS_PER_SHARD, D))


def summarise_shard(i: int) -> GaussianSummary:
    return GaussianSummary.from_samples(load_shard(i))


def with_dask_bag() -> GaussianSummary:
    import dask.bag as db

    shards = db.from_sequence(range(N_SHARDS), npartitions=4)
    # fold adds within each partition, then across partitions, in a tree.
    return shards.map(summarise_shard).fold(operator.add).compute(scheduler="processes", num_workers=2)


def with_concurrent_futures() -> GaussianSummary:
    with ProcessPoolExecutor(max_workers=2) as pool:
        return sum(pool.map(summarise_shard, range(N_SHARDS)))


def main() -> None:
    everything = GaussianSummary.from_samples(np.concatenate([load_shard(i) for i in range(N_SHARDS)]))
    for label, reduce_shards in (("dask.bag fold", with_dask_bag), ("concurrent.futures", with_concurrent_futures)):
        s = reduce_shards()
        # Back from another process: equal in value and still immutable.
        assert not s.mean.flags.writeable and not s.M2.flags.writeable
        assert s.n == everything.n and s.isclose(everything, rtol=1e-12), (label, s, everything)
        print(f"{label:>20}: n={s.n:,.0f}  std={np.array2string(s.std(), precision=4)}  matches in-memory summary")


if __name__ == "__main__":
    main()
