"""Pool two groups known only by their count, mean and per-variable variance.

The classic question: observations were split into two groups and each group was reported as
``n``, a mean vector and a *diagonal* covariance (one variance per variable). What are the mean
and variances of all the observations together?

The answer needs one more term than the weighted average people first reach for. With
``delta = mean_b - mean_a`` and ``n = n_a + n_b``, the sums of squared deviations add as

    M2 = M2_a + M2_b + delta**2 * n_a * n_b / n        (Chan, Golub and LeVeque, 1979)

and the pooled variance is ``M2 / (n - 1)``. The weighted average of the two variances,
``((n_a - 1) var_a + (n_b - 1) var_b) / (n - 2)``, leaves out the last term: it is the *within-
group* variance, the right plug-in for a t test that assumes a common variance, but not the
variance of the pooled data. The two differ exactly by the between-group term, which is large
whenever the means differ on the scale of the spread.

The script simulates the raw rows only to check the answer: the pooling itself uses nothing but
the three reported numbers per group.

Usage: python examples/merge_two_groups.py
"""

from __future__ import annotations

import numpy as np

from gaussum import GaussianSummary

NAMES = ["height_cm", "weight_kg", "reaction_ms"]


def main() -> int:
    rng = np.random.default_rng(2024)
    rows_a = rng.normal([170.0, 70.0, 250.0], [7.0, 9.0, 30.0], size=(120, 3))
    rows_b = rng.normal([176.0, 78.0, 240.0], [6.5, 11.0, 25.0], size=(80, 3))

    # What each group reports: n, means and variances (ddof=1). Nothing else leaves the group.
    reports = [(len(rows), rows.mean(axis=0), rows.var(axis=0, ddof=1)) for rows in (rows_a, rows_b)]
    a, b = (GaussianSummary.from_moments(n, mean, var) for n, mean, var in reports)
    pooled = a + b

    everything = np.vstack([rows_a, rows_b])
    print(f"group A: n = {a.n:g}; group B: n = {b.n:g}; pooled: n = {pooled.n:g}")
    print(
        f"{'variable':<12} {'pooled mean':>12} {'pooled var':>12} {'np.var(all)':>12} "
        f"{'weighted avg':>13} {'missing':>10}"
    )
    (n_a, _, var_a), (n_b, _, var_b) = reports
    within = ((n_a - 1) * var_a + (n_b - 1) * var_b) / (n_a + n_b - 2)
    between = (b.mean - a.mean) ** 2 * n_a * n_b / (n_a + n_b)  # between-group sum of squares
    for j, name in enumerate(NAMES):
        print(
            f"{name:<12} {pooled.mean[j]:>12.4f} {pooled.variance()[j]:>12.4f} {everything[:, j].var(ddof=1):>12.4f}"
            f" {within[j]:>13.4f} {pooled.variance()[j] - within[j]:>10.4f}"
        )

    # The check: the pooled summary is the summary of the concatenated rows, to rounding.
    mean_ok = np.allclose(pooled.mean, everything.mean(axis=0), rtol=1e-13)
    var_ok = np.allclose(pooled.variance(), everything.var(axis=0, ddof=1), rtol=1e-12)
    print(f"pooled mean equals the mean of all rows: {mean_ok}")
    print(f"pooled variance equals np.var(ddof=1) of all rows: {var_ok}")

    # The weighted average misses the spread of the two means around the pooled one. The exact
    # identity: (n - 1) var = (n - 2) within + between-group sum of squares.
    n = n_a + n_b
    identity = np.allclose((n - 1) * pooled.variance(), (n - 2) * within + between, rtol=1e-12)
    print(f"(n - 1) pooled var = (n - 2) weighted avg + n_a n_b / n * delta**2: {identity}")
    missing = 1 - within / pooled.variance()
    worst = int(np.argmax(missing))
    share = missing[worst]
    print(f"the weighted average understates the variance of {NAMES[worst]} by {share:.0%}")
    return 0 if (mean_ok and var_ok and identity) else 1


if __name__ == "__main__":
    raise SystemExit(main())
