"""Summarise a CSV table per group, then pool the groups: the main job on bundled data.

Usage: python examples/quickstart.py data/iris.csv [GROUP_COLUMN]

Reads a CSV with a header, one summary per value of the group column (default: the last
column), prints each group's count, means and standard deviations, then pools the groups with
`GaussianSummary.merge_all` and checks the pooled statistics against numpy on all rows.
"""

from __future__ import annotations

import csv
import sys

import numpy as np

from gaussum import GaussianSummary


def main(path: str, group_column: str | None = None) -> int:
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    key_index = header.index(group_column) if group_column else len(header) - 1
    columns = [name for i, name in enumerate(header) if i != key_index]
    keys = np.array([row[key_index] for row in body])
    X = np.array([[float(v) for i, v in enumerate(row) if i != key_index] for row in body])

    groups = {key: GaussianSummary.from_samples(X[keys == key]) for key in sorted(set(keys))}
    width = max(len(c) for c in columns)
    for key, s in groups.items():
        print(f"{header[key_index]} = {key}: n = {s.n:g}")
        for name, mean, std in zip(columns, s.mean, s.std(), strict=True):
            print(f"  {name:<{width}}  mean {mean:8.4f}  std {std:7.4f}")
    pooled = GaussianSummary.merge_all(groups.values())
    print(f"pooled: n = {pooled.n:g}")
    for name, mean, std in zip(columns, pooled.mean, pooled.std(), strict=True):
        print(f"  {name:<{width}}  mean {mean:8.4f}  std {std:7.4f}")
    assert np.allclose(pooled.covariance(), np.cov(X, rowvar=False), rtol=1e-12)
    print("pooled covariance equals np.cov on all rows: True")
    return 0


if __name__ == "__main__":
    if not 2 <= len(sys.argv) <= 3:
        sys.exit("usage: python examples/quickstart.py data/iris.csv [GROUP_COLUMN]")
    sys.exit(main(*sys.argv[1:]))
