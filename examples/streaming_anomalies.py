"""Flag anomalous rows in a drifting stream by their Mahalanobis distance to a forgetting summary.

Rows arrive one at a time from a 3-variable Gaussian whose mean drifts; 1% of them are injected
faults. Each row is scored against the summary of the rows before it, with
`gaussum.models.mahalanobis`, and flagged when its squared distance exceeds the chi-square
quantile for a 1-in-1,000 false alarm rate. Rows that pass are folded in with exponential
forgetting, ``s = s.scaled(LAM).update(x)``, so the summary follows the drift (its total weight
levels off at ``1 / (1 - LAM)`` rows, its effective size at ``(1 + LAM) / (1 - LAM)``); flagged
rows are kept out of it so that faults do not widen the covariance they are judged by. A plain
running summary, which never forgets, is scored alongside: the drift inflates its covariance
until the faults hide inside it.

The last check recomputes the final distances from the raw accepted rows with explicit weights
``LAM**age`` (``np.cov(aweights=)`` and ``scipy.spatial.distance.mahalanobis``).

Run: ``python examples/streaming_anomalies.py``. Exits 1 if a check fails.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import mahalanobis as scipy_mahalanobis
from scipy.stats import chi2

from gaussum import GaussianSummary
from gaussum.models import mahalanobis

ROWS = 6_000
WARM_UP = 200  # rows folded in before scoring starts
LAM = 0.995  # memory of about 1 / (1 - LAM) = 200 rows
FAULT_RATE = 0.01
COV = np.array([[1.0, 0.6, 0.2], [0.6, 1.0, 0.4], [0.2, 0.4, 1.0]])


def stream(seed: int = 3):
    """(row, is_fault) pairs: a mean drifting by 0.002 per row in x0, faults pushed off the correlation."""
    rng = np.random.default_rng(seed)
    root = np.linalg.cholesky(COV)
    for t in range(ROWS):
        row = np.array([0.002 * t, 10.0, -5.0]) + root @ rng.standard_normal(3)
        fault = t >= WARM_UP and rng.random() < FAULT_RATE
        if fault:
            # Breaks the x0-x1 correlation: small in each variable, large in Mahalanobis distance.
            row = row + rng.choice([-1.0, 1.0]) * np.array([2.5, -2.5, 0.0])
        yield row, fault


def main() -> int:
    threshold = np.sqrt(chi2.ppf(0.999, df=3))
    forgetting = plain = GaussianSummary.empty(3)
    accepted, truth, flags, plain_flags = [], [], [], []
    for t, (row, fault) in enumerate(stream()):
        if t >= WARM_UP:
            flagged = mahalanobis(forgetting, row) > threshold
            truth.append(fault)
            flags.append(flagged)
            plain_flags.append(mahalanobis(plain, row) > threshold)
            if flagged:
                continue
        forgetting = forgetting.scaled(LAM).update(row)
        plain = plain.update(row)
        accepted.append(row)
    truth, flags, plain_flags = np.array(truth), np.array(flags), np.array(plain_flags)

    recall = flags[truth].mean()
    false_alarms = flags[~truth].mean()
    plain_recall = plain_flags[truth].mean()
    print(f"{truth.size:,} rows scored, {truth.sum()} faults; threshold d > {threshold:.3f} (chi-square 3, 0.999)")
    print(f"forgetting summary (effective n = {forgetting.effective_n:.0f}): flagged {recall:.1%} of faults, "
          f"{false_alarms:.2%} of normal rows")
    print(f"plain running summary (n = {plain.n:,.0f}): flagged {plain_recall:.1%} of faults (the drift hides them)")
    detection_ok = recall > 0.9 and false_alarms < 0.005 and plain_recall < 0.75 * recall
    print(f"forgetting catches the faults with few false alarms, the plain summary misses many: {detection_ok}")

    # The final distances, recomputed from the raw accepted rows with weights LAM**age.
    rows = np.array(accepted)
    weights = LAM ** np.arange(len(rows) - 1, -1, -1, dtype=float)
    mean = np.average(rows, axis=0, weights=weights)
    precision = np.linalg.inv(np.cov(rows, rowvar=False, aweights=weights))
    probes = np.array([[12.0, 10.0, -5.0], [11.0, 12.0, -4.0], [10.0, 8.0, -6.0]])
    expected = [scipy_mahalanobis(p, mean, precision) for p in probes]
    weights_ok = bool(np.allclose(mahalanobis(forgetting, probes), expected, rtol=1e-9))
    print(f"distances equal scipy's with explicit weights lam**age on the raw rows: {weights_ok}")
    return 0 if (detection_ok and weights_ok) else 1


if __name__ == "__main__":
    raise SystemExit(main())
