"""NIST StRD univariate summary statistics: log relative errors through every path."""

from __future__ import annotations

import numpy as np
import pytest

from _paths import kernel_path  # noqa: F401 - every test runs on the numpy and the compiled path
from gaussum import GaussianSummary
from nist import git_blob_id, header_values, load_certified, load_data, lre

CERTIFIED = load_certified()

# Standard deviation LRE that from_samples must reach: the float64 limit of each data set.
FROM_SAMPLES_STD = {
    "PiDigits": 15, "Lottery": 15, "Lew": 15, "Mavro": 13.0, "Michelso": 13.7,
    "NumAcc1": 15, "NumAcc2": 15, "NumAcc3": 9.4, "NumAcc4": 8.2,
}
# ... and that any sharding, merge order or row-by-row update must reach too: with the compensated
# mean (each mean's rounding error carried through every merge and update) no path loses digits
# to the rounding of stored means, so every path reaches from_samples' float64 limit.
ANY_PATH_STD = FROM_SAMPLES_STD
MEAN_LRE = 14


def paths(x: np.ndarray, seed: int):
    """(name, summary) for every way of building the summary of x."""
    rng = np.random.default_rng(seed)
    yield "from_samples", GaussianSummary.from_samples(x)
    s = GaussianSummary.empty()
    for value in x:
        s = s.update(value)
    yield "update row by row", s
    cuts = np.sort(rng.choice(np.arange(1, len(x)), size=min(len(x) - 1, 9), replace=False))
    shards = [GaussianSummary.from_samples(part) for part in np.split(x, cuts)]
    order = rng.permutation(len(shards))
    total = GaussianSummary.empty()
    for i in order:
        total = total + shards[i]
    yield "random shards, random order", total
    level = [shards[i] for i in order]
    while len(level) > 1:
        level = [sum(level[i : i + 2]) for i in range(0, len(level), 2)]
    yield "pairwise tree", level[0]
    yield "merge_all", GaussianSummary.merge_all(shards)
    singles = (GaussianSummary.from_samples(x[i : i + 1]) for i in range(len(x)))
    yield "merge_all of single rows", GaussianSummary.merge_all(singles)


@pytest.mark.parametrize("name", sorted(CERTIFIED))
def test_the_bundled_files_are_the_recorded_copies(name):
    """Each data file is byte for byte the copy certified.json records, and its header states its values."""
    info = CERTIFIED[name]
    assert git_blob_id(info["file"]) == info["git_blob"]
    header = header_values(info["file"])
    keys = ("mean", "std", "lag1_autocorrelation", "n")
    assert header == {key: str(info[key]) for key in keys}


@pytest.mark.parametrize("name", sorted(CERTIFIED))
def test_from_samples_reaches_the_float64_limit(name):
    """from_samples' std and mean reach the LRE that float64 data allows on each NIST set."""
    info = CERTIFIED[name]
    x = load_data(info["file"])
    assert len(x) == info["n"]
    s = GaussianSummary.from_samples(x)
    assert lre(float(s.std()), info["std"]) >= FROM_SAMPLES_STD[name]
    assert lre(float(s.mean), info["mean"]) >= MEAN_LRE


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", sorted(CERTIFIED))
def test_every_path_keeps_the_accuracy(name, seed):
    """Row-by-row updates, random shards in random order, trees and merge_all keep the LRE bar."""
    info = CERTIFIED[name]
    x = load_data(info["file"])
    for path, s in paths(x, seed):
        assert s.n == info["n"], path
        assert lre(float(s.std()), info["std"]) >= ANY_PATH_STD[name], path
        assert lre(float(s.mean), info["mean"]) >= MEAN_LRE, path
