"""The core cases of issue 4: gaussum against what users would otherwise reach for.

Each case builds its data from a seeded generator, checks gaussum's result against an independent
reference (``np.cov`` on the raw rows, or the peer library's own answer), and only then times.
Sizes are the issue's; ``Settings.quick`` divides them so the whole module runs in seconds.
"""

from __future__ import annotations

import functools
import operator
from typing import Any

import numpy as np

from _harness import (
    BenchmarkCheckError,
    Case,
    Reference,
    Row,
    Settings,
    assert_moments_close,
    compare,
    optional_import,
    peak_rss_bytes_in_subprocess,
    peak_traced_bytes,
)
from gaussum import GaussianSummary

SEED = 20240601


def _data(n_rows: int, d: int, seed: int = SEED) -> np.ndarray:
    """Correlated Gaussian rows with means a few spreads from zero and unequal scales.

    An offset of about three standard deviations is typical of real measurements, and is where an
    uncentred formula would start to lose digits; correlation makes every covariance entry count.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_rows, d))
    mixing = np.eye(d) + 0.3 * rng.standard_normal((d, d)) / np.sqrt(d)
    X = X @ mixing
    X *= rng.uniform(0.5, 2.0, size=d)
    X += 3.0 * rng.uniform(-1.0, 1.0, size=d) * X.std(axis=0)
    return X


def _size(settings: Settings, n_rows: int, quick_divisor: int = 100) -> int:
    return max(n_rows // quick_divisor, 64) if settings.quick else n_rows


def _check_summary_against_cov(what: str, s: GaussianSummary, X: np.ndarray, cov: np.ndarray) -> None:
    assert_moments_close(what, s.mean, s.covariance(), X.mean(axis=0), cov, X.shape[0])
    if s.n != X.shape[0]:
        raise BenchmarkCheckError(f"{what}: n is {s.n}, expected {X.shape[0]}")


def _check_samples_against_gram(X: np.ndarray) -> Any:
    """A check for the ``X.T @ X`` row: the floor computes no covariance, but our M2 must lie
    within rounding of ``X^T X - n mean mean^T`` built from it (an independent formula)."""

    def check(s: GaussianSummary, gram: np.ndarray) -> None:
        n = X.shape[0]
        sums = X.sum(axis=0)
        uncentred = (gram - np.multiply.outer(sums, sums) / n) / (n - 1)
        assert_moments_close("from_samples vs X.T @ X", s.mean, s.covariance(), sums / n, uncentred, n)

    return check


# -- from_samples ---------------------------------------------------------------------------------


def _from_samples_case(n_rows: int, d: int, cov_target: float) -> Case:
    name = f"from_samples, {n_rows:,} x {d}"

    def run(settings: Settings) -> list[Row]:
        X = _data(_size(settings, n_rows), d)

        def check_cov(s: GaussianSummary, cov: np.ndarray) -> None:
            _check_summary_against_cov(name, s, X, cov)

        return compare(
            name,
            lambda: GaussianSummary.from_samples(X),
            [
                Reference("np.cov(X, rowvar=False)", lambda: np.cov(X, rowvar=False), check_cov, cov_target),
                Reference(
                    "X.T @ X (one BLAS call: the floor)",
                    lambda: X.T @ X,
                    _check_samples_against_gram(X),
                    2.0,
                    target="aim <= 2 x",
                ),
            ],
            settings,
        )

    return Case(name, run)


def _memory_case(n_rows: int, d: int) -> Case:
    name = f"peak extra memory, from_samples {n_rows:,} x {d}"

    def run(settings: Settings) -> list[Row]:
        rows = _size(settings, n_rows)
        X = _data(rows, d)
        s = GaussianSummary.from_samples(X)
        _check_summary_against_cov(name, s, X, np.cov(X, rowvar=False))
        ours = peak_traced_bytes(lambda: GaussianSummary.from_samples(X))
        theirs = peak_traced_bytes(lambda: np.cov(X, rowvar=False))
        # The same calls in a fresh process, seen by the kernel: counts BLAS buffers and pages too.
        setup = f"""
            from gaussum import GaussianSummary
            X = np.empty(({rows}, {d}))
            np.random.default_rng(0).standard_normal(out=X)  # in place: no temporary to
            X += 3.0                                         # raise the high-water mark
        """
        rss_first = peak_rss_bytes_in_subprocess(setup, "GaussianSummary.from_samples(X)")
        # A first call on a slice large enough for the compiled kernels (gaussum[fast]) loads numba
        # and them once per process: 100 MiB and more of code, not memory that grows with X.
        loaded = setup + """
            from gaussum import _compiled
            GaussianSummary.from_samples(X[: _compiled.MIN_VALUES // X.shape[1] + 1])
        """
        rss = peak_rss_bytes_in_subprocess(loaded, "GaussianSummary.from_samples(X)")
        rss_cov = peak_rss_bytes_in_subprocess(setup, "np.cov(X, rowvar=False)")
        return [
            Row(name, "X.nbytes (tracemalloc peak)", ours, X.nbytes, "B", 1 / 8, "<= 1/8 x"),
            Row(name, "X.nbytes (max RSS growth, fresh process)", rss, X.nbytes, "B", 1 / 8, "<= 1/8 x",
                note="after a first call on a slice (loads numba, BLAS buffers)"),
            Row(name, "X.nbytes (max RSS growth, fresh process, first call)", rss_first, X.nbytes, "B",
                note="with numba's and the kernels' one-time load"),
            Row(name, "np.cov's peak (tracemalloc)", ours, theirs, "B", note="np.cov copies X"),
            Row(name, "np.cov's max RSS growth (fresh process)", rss_first, rss_cov, "B", note="first calls"),
        ]

    return Case(name, run)


# -- streaming updates ----------------------------------------------------------------------------


def _update_rows_case(n_rows: int, d: int) -> Case:
    name = f"update one row at a time, d = {d}, {n_rows:,} rows"

    def run(settings: Settings) -> list[Row]:
        X = _data(_size(settings, n_rows, 10), d)
        rows = list(X)  # what a stream hands over: one 1-D array per observation

        def ours() -> GaussianSummary:
            s = GaussianSummary.empty(d)
            for row in rows:
                s = s.update(row)
            return s

        _check_summary_against_cov(name, ours(), X, np.cov(X, rowvar=False))

        welford_mod, welford_absent = optional_import("welford")
        welford_call = welford_check = None
        if welford_mod is not None:

            def welford_call() -> Any:
                acc = welford_mod.Welford()
                for row in rows:
                    acc.add(row)
                return acc

            def welford_check(s: GaussianSummary, acc: Any) -> None:
                assert_moments_close(f"{name} vs welford", s.mean, s.variance(), acc.mean, acc.var_s, len(rows))

        river_cov, river_absent = optional_import("river.covariance")
        river_call = river_check = None
        if river_cov is not None:
            # river takes dicts; building them is left out of its time (in its favour).
            dicts = [dict(enumerate(row.tolist())) for row in rows]

            def river_call() -> Any:
                acc = river_cov.EmpiricalCovariance(ddof=1)
                for x in dicts:
                    acc.update(x)
                return acc

            def river_check(s: GaussianSummary, acc: Any) -> None:
                cov = np.array([[acc[min(i, j), max(i, j)].get() for j in range(d)] for i in range(d)])
                assert_moments_close(f"{name} vs river", s.mean, s.covariance(), X.mean(axis=0), cov, len(rows))

        return compare(
            name,
            ours,
            [
                Reference("welford Welford.add (diagonal only)", welford_call, welford_check, 2.0,
                          target="within 2 x", absent=welford_absent),
                Reference("river EmpiricalCovariance.update", river_call, river_check, 1 / 8,
                          target=">= 8 x faster", absent=river_absent,
                          note="dicts built outside the timing"),
            ],
            settings,
        )

    return Case(name, run)


def _update_scalar_case(n_values: int) -> Case:
    name = f"update one value at a time, scalar, {n_values:,} values"

    def run(settings: Settings) -> list[Row]:
        x = _data(_size(settings, n_values, 10), 1)[:, 0]
        values = x.tolist()  # Python floats, as a scalar stream delivers them

        def ours() -> GaussianSummary:
            s = GaussianSummary.empty()
            for value in values:
                s = s.update(value)
            return s

        s = ours()
        assert_moments_close(name, s.mean, s.variance(), x.mean(), np.var(x, ddof=1), x.size)

        river_stats, river_absent = optional_import("river.stats")
        river_call = river_check = None
        if river_stats is not None:

            def river_call() -> Any:
                acc = river_stats.Var(ddof=1)
                for value in values:
                    acc.update(value)
                return acc

            def river_check(s: GaussianSummary, acc: Any) -> None:
                assert_moments_close(f"{name} vs river", s.mean, s.variance(), acc.mean.get(), acc.get(), x.size)

        return compare(name, ours, [Reference("river stats.Var.update", river_call, river_check,
                                              absent=river_absent)], settings)

    return Case(name, run)


def _batch_update_case(n_batches: int, rows_per_batch: int, d: int) -> Case:
    name = f"batch update, {n_batches} batches of {rows_per_batch:,} x {d}"

    def run(settings: Settings) -> list[Row]:
        rows = _size(settings, rows_per_batch)
        X = _data(n_batches * rows, d)
        batches = [X[i * rows:(i + 1) * rows].copy() for i in range(n_batches)]

        def ours() -> GaussianSummary:
            s = GaussianSummary.empty(d)
            for batch in batches:
                s = s.update(batch)
            return s

        def check(s: GaussianSummary, cov: np.ndarray) -> None:
            _check_summary_against_cov(name, s, X, cov)

        return compare(
            name,
            ours,
            [
                Reference("np.cov on the concatenation", lambda: np.cov(X, rowvar=False), check, 1.0,
                          note="concatenation done beforehand"),
                Reference("np.concatenate + np.cov",
                          lambda: np.cov(np.concatenate(batches), rowvar=False), check),
            ],
            settings,
        )

    return Case(name, run)


def _batch_update_diagonal_case(n_batches: int, rows_per_batch: int, d: int) -> Case:
    name = f"batch update, diagonal, {n_batches} batches of {rows_per_batch:,} x {d}"

    def run(settings: Settings) -> list[Row]:
        rows = _size(settings, rows_per_batch)
        X = _data(n_batches * rows, d)
        batches = [X[i * rows:(i + 1) * rows].copy() for i in range(n_batches)]

        def ours() -> GaussianSummary:
            s = GaussianSummary.empty(d, diagonal=True)
            for batch in batches:
                s = s.update(batch)
            return s

        s = ours()
        assert_moments_close(name, s.mean, s.variance(), X.mean(axis=0), X.var(axis=0, ddof=1), X.shape[0])

        preprocessing, absent = optional_import("sklearn.preprocessing")
        call = check = None
        if preprocessing is not None:

            def call() -> Any:
                scaler = preprocessing.StandardScaler()
                for batch in batches:
                    scaler.partial_fit(batch)
                return scaler

            def check(s: GaussianSummary, scaler: Any) -> None:
                assert_moments_close(f"{name} vs scikit-learn", s.mean, s.variance(ddof=0),
                                     scaler.mean_, scaler.var_, X.shape[0])

        return compare(name, ours, [Reference("sklearn StandardScaler.partial_fit", call, check,
                                              absent=absent)], settings)

    return Case(name, run)


# -- merging --------------------------------------------------------------------------------------


def _add_case(d: int) -> Case:
    name = f"a + b, d = {d}"

    def run(settings: Settings) -> list[Row]:
        X = _data(2000, d)
        a, b = GaussianSummary.from_samples(X[:700]), GaussianSummary.from_samples(X[700:])
        _check_summary_against_cov(name, a + b, X, np.cov(X, rowvar=False))

        def bare_numpy() -> tuple[float, np.ndarray, np.ndarray]:
            # The pairwise rule written inline: the cost of the arithmetic without the value type.
            n = a.n + b.n
            delta = b.mean - a.mean
            return n, a.mean + delta * (b.n / n), a.M2 + b.M2 + np.multiply.outer(delta, delta) * (a.n * b.n / n)

        def check(s: GaussianSummary, moments: tuple[float, np.ndarray, np.ndarray]) -> None:
            _, mean, M2 = moments
            assert_moments_close(f"{name} vs inline numpy", s.mean, s.M2, mean, M2, X.shape[0])

        return compare(name, lambda: a + b,
                       [Reference("the rule inline in numpy (3 array ops)", bare_numpy, check)], settings)

    return Case(name, run)


def _merge_all_case(n_shards: int, d: int) -> Case:
    name = f"merge_all of {n_shards:,} shards, d = {d}"

    def run(settings: Settings) -> list[Row]:
        shards_n = max(_size(settings, n_shards), 8)
        X = _data(shards_n * 20, d)
        # Shards of unequal sizes (random cut points: 1 to a few hundred rows), as real partitions are.
        cuts = np.sort(np.random.default_rng(SEED).choice(np.arange(1, X.shape[0]), shards_n - 1, replace=False))
        shards = [GaussianSummary.from_samples(part) for part in np.split(X, cuts)]
        merged = GaussianSummary.merge_all(shards)
        _check_summary_against_cov(name, merged, X, np.cov(X, rowvar=False))

        def check(s: GaussianSummary, folded: GaussianSummary) -> None:
            # "Equal results within rounding": the fold's M2 must match to the rounding of
            # n_shards merges.
            assert_moments_close(f"{name} vs the fold", s.mean, s.covariance(), folded.mean,
                                 folded.covariance(), shards_n)

        return compare(
            name,
            lambda: GaussianSummary.merge_all(shards),
            [Reference("left fold with +", lambda: functools.reduce(operator.add, shards), check, 0.2)],
            settings,
        )

    return Case(name, run)


def cases() -> list[Case]:
    """The cases of the issue's table, in its order."""
    return [
        _from_samples_case(1_000_000, 4, 0.60),
        _from_samples_case(1_000_000, 32, 0.70),
        _from_samples_case(200_000, 256, 1.05),
        _memory_case(1_000_000, 32),
        _update_rows_case(10_000, 8),
        _update_scalar_case(10_000),
        _batch_update_case(100, 10_000, 32),
        _batch_update_diagonal_case(100, 10_000, 32),
        _add_case(64),
        _merge_all_case(10_000, 16),
    ]


__all__ = ["cases"]
