"""Streaming: fold batches into a summary as they arrive, and let old data fade.

Part 1 folds a generator of batches into a summary with `GaussianSummary.update`; memory is one
batch, and the result equals the summary of all rows at once.

Part 2 is exponential forgetting for a stream whose mean drifts: before each batch, every weight
so far is multiplied by ``lam`` (`GaussianSummary.scaled`), so a row that arrived ``a`` batches
ago carries weight ``lam**a``. ``n`` is then the effective sample size ``sum lam**a * rows``,
which levels off at ``rows_per_batch / (1 - lam)``; until then (the start-up phase) the summary
is simply the plain one of the few batches seen, not biased towards any initial value. The check
computes the weighted mean and weighted sum of squared deviations directly from the explicit
weights on the raw rows.

Usage: python examples/streaming.py
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from gaussum import GaussianSummary

BATCHES = 200
ROWS = 500
LAM = 0.95


def batches(drift: float, seed: int = 11) -> Iterator[np.ndarray]:
    """Batches of 2-D rows whose mean moves by `drift` per batch in the first variable."""
    rng = np.random.default_rng(seed)
    for b in range(BATCHES):
        yield rng.normal([b * drift, 5.0], [1.0, 2.0], size=(ROWS, 2))


def main() -> int:
    # Part 1: a plain stream.
    s = GaussianSummary.empty(2)
    for batch in batches(drift=0.0):
        s = s.update(batch)
    everything = np.vstack(list(batches(drift=0.0)))
    plain_ok = np.allclose(s.mean, everything.mean(axis=0), rtol=1e-13) and np.allclose(
        s.covariance(), np.cov(everything, rowvar=False), rtol=1e-11
    )
    print(f"streamed {s.n:,.0f} rows in {BATCHES} batches; equals the summary of all rows: {plain_ok}")

    # Part 2: a drifting stream with forgetting.
    decayed, plain = GaussianSummary.empty(2), GaussianSummary.empty(2)
    for batch in batches(drift=0.05):
        decayed = decayed.scaled(LAM).update(batch)
        plain = plain.update(batch)
    rows = np.vstack(list(batches(drift=0.05)))
    age = BATCHES - 1 - np.repeat(np.arange(BATCHES), ROWS)
    w = LAM**age.astype(float)
    mean = np.average(rows, axis=0, weights=w)
    M2 = (w[:, None] * (rows - mean)).T @ (rows - mean)
    weights_ok = (
        np.isclose(decayed.n, w.sum(), rtol=1e-12)
        and np.allclose(decayed.mean, mean, rtol=1e-12)
        and np.allclose(decayed.M2, M2, rtol=1e-10)
    )
    latest = (BATCHES - 1) * 0.05
    print(f"effective sample size n = {decayed.n:,.1f} (limit {ROWS / (1 - LAM):,.0f})")
    print(f"true current mean of x0 = {latest:.2f}; forgetting estimate = {decayed.mean[0]:.2f}; "
          f"plain running mean = {plain.mean[0]:.2f}")
    print(f"forgetting equals explicit weights lam**age on the raw rows: {weights_ok}")
    # With drift v per batch, the weighted mean trails the current one by about v * lam / (1 - lam).
    expected_lag = 0.05 * LAM / (1 - LAM)
    lag = latest - decayed.mean[0]
    lag_ok = abs(lag - expected_lag) < 0.1 * expected_lag and lag < (latest - plain.mean[0]) / 4
    print(f"forgetting lags by {lag:.2f} (expected v * lam / (1 - lam) = {expected_lag:.2f}), "
          f"the plain mean by {latest - plain.mean[0]:.2f}: {lag_ok}")
    return 0 if (plain_ok and weights_ok and lag_ok) else 1


if __name__ == "__main__":
    raise SystemExit(main())
