"""Are my two groups plausibly one Gaussian? If so, pool them: all from (n, mean, covariance) alone.

The classic question (math.stackexchange, "How to merge two Gaussians"): observations were split
into two groups, each reported only as a count, a mean vector and a covariance matrix, and the
groups are assumed to be "not too different". This script checks that assumption before pooling,
with tests that need nothing but the summaries, and then pools them exactly.

Three sites report summaries of the same three measurements. Sites A and B sample one
population; site C's instrument reads 0.5 high on the first variable. The script

1. tests A against B (per-variable Welch t, Hotelling T² with and without equal covariances,
   Box's M for the covariances) and pools them when nothing objects;
2. runs the same tests on A against C, which fail;
3. draws the covariance ellipses and the pooled correlation matrix into
   ``are_they_one_gaussian.png``.

Usage::

    python examples/are_they_one_gaussian.py [OUTPUT_DIR]

OUTPUT_DIR (or the environment variable GAUSSUM_EXAMPLE_OUTPUT) defaults to ``docs/images`` in
this repository. Needs ``pip install 'gaussum[stats,plot]'``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # a script that writes files: no display needed

import matplotlib.pyplot as plt
import numpy as np

from gaussum import GaussianSummary
from gaussum.inference import bhattacharyya_distance, box_m, hotelling_t2, welch_t
from gaussum.plot import correlation, ellipses

NAMES = ["length", "width", "depth"]
ALPHA = 0.05


def reported_summaries(seed: int = 7) -> dict[str, GaussianSummary]:
    """What each site publishes: n, mean and covariance (simulated here, then thrown away)."""
    rng = np.random.default_rng(seed)
    mean = np.array([10.0, 4.0, 2.0])
    cov = np.array([[1.0, 0.6, 0.2], [0.6, 0.8, -0.3], [0.2, -0.3, 0.5]])
    sizes = {"A": 400, "B": 250, "C": 300}
    shifts = {"A": 0.0, "B": 0.0, "C": np.array([0.5, 0.0, 0.0])}
    reports = {}
    for site, n in sizes.items():
        rows = rng.multivariate_normal(mean + shifts[site], cov, size=n)
        # Only these three numbers leave the site.
        reports[site] = (n, rows.mean(axis=0), np.cov(rows, rowvar=False))
    return {site: GaussianSummary.from_moments(n, m, c) for site, (n, m, c) in reports.items()}


def compare(name_a: str, a: GaussianSummary, name_b: str, b: GaussianSummary) -> bool:
    """Print the tests of "same Gaussian"; True when none of them rejects at level ALPHA."""
    print(f"--- {name_a} (n={a.n:g}) vs {name_b} (n={b.n:g})")
    welch = welch_t(a, b)
    for name, t, p in zip(NAMES, welch.statistic, welch.pvalue, strict=True):
        print(f"  Welch t  {name:>6}: t = {t:+.2f}, p = {p:.3g}")
    pooled = hotelling_t2(a, b)
    unequal = hotelling_t2(a, b, equal_covariances=False)
    covariances = box_m(a, b)
    print(f"  {pooled}")
    print(f"  {unequal}  (unequal covariances)")
    print(f"  {covariances}")
    print(f"  Bhattacharyya distance = {bhattacharyya_distance(a, b):.4f}")
    # Holm's correction would be stricter; one family of three omnibus tests keeps this short.
    pvalues = [pooled.pvalue, unequal.pvalue, covariances.pvalue]
    same = min(pvalues) > ALPHA
    verdict = "plausibly one Gaussian" if same else "NOT one Gaussian"
    print(f"  => {verdict} (smallest omnibus p = {min(pvalues):.3g}, level {ALPHA})")
    return same


def main(argv: list[str]) -> Path:
    default = Path(__file__).resolve().parent.parent / "docs" / "images"
    out_dir = Path(argv[1] if len(argv) > 1 else os.environ.get("GAUSSUM_EXAMPLE_OUTPUT", default))
    out_dir.mkdir(parents=True, exist_ok=True)

    sites = reported_summaries()
    a, b, c = sites["A"], sites["B"], sites["C"]

    if compare("A", a, "B", b):
        pooled = a + b
        print(f"Pooled A + B: n = {pooled.n:g}, mean = {np.round(pooled.mean, 4)}, covariance =")
        for row in pooled.covariance():
            print("   ", np.array2string(row, precision=4, floatmode="fixed", sign=" "))
    compare("A", a, "C", c)

    fig, (left, right) = plt.subplots(1, 2, figsize=(9.0, 4.0), layout="constrained")
    ellipses({"A": a, "B": b, "C (shifted)": c}, dims=(0, 1), ax=left, names=NAMES, sigmas=(1, 2))
    left.set_title("1- and 2-sigma ellipses from (n, mean, cov)")
    correlation(a + b, ax=right, names=NAMES)
    right.set_title("correlation of the pooled A + B")
    path = out_dir / "are_they_one_gaussian.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main(sys.argv)
