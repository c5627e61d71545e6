"""The compensated mean (issue 19): each mean's rounding error, kept and carried by every path.

References never share gaussum's code: exact means from `fractions.Fraction` (small data) or from
`math.fsum` (the sum correctly rounded, and its remainder), and covariances of the data centred on
that exact mean, summed pairwise by numpy.
"""

from __future__ import annotations

import json
import math
import pickle
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exact import reference_covariance, relative_error
from gaussum import GaussianSummary, GroupedSummary, _compiled, _kernel, cli

# The offset table's data and random trees: one home, the script that prints the README's table.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from accuracy_table import random_tree, table_data

U = np.finfo(np.float64).eps / 2
ROWS = 100_000


# -- references -----------------------------------------------------------------------------------


def ulps_off(mean: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> float:
    """The largest distance of `mean` from the exact mean ``hi + lo``, in ulps of the mean."""
    return float(np.max(np.abs((mean - hi) - lo) / np.spacing(np.abs(hi))))


def fraction_mean(column) -> Fraction:
    return sum((Fraction(float(v)) for v in column), Fraction(0)) / len(column)


def within_an_ulp(computed: float, exact: Fraction, scale: float) -> bool:
    """``|computed - exact| <= ulp(exact)``; for an exact mean of 0, within ``4 u**2`` of `scale`.

    A double-float is right to about u**2 of the magnitudes it was built from, which no rounding
    of the result can hide when the exact result is 0.
    """
    error = abs(Fraction(float(computed)) - exact)
    if exact == 0:
        return error <= Fraction(4 * U * U * scale)
    return error <= Fraction(float(np.spacing(abs(float(exact)))))


# -- the offset table -----------------------------------------------------------------------------


@pytest.mark.parametrize("d", [4, 32])
@pytest.mark.parametrize("spread", [1.0, 1e-3])
@pytest.mark.parametrize("offset", [1e9, 1.7e9])
def test_every_merge_order_is_as_accurate_as_one_pass(offset, spread, d):
    """merge_all, a left fold and a random tree of 37 uneven shards: covariance within 16 u
    (1.8e-15) at unit spread, within 2x from_samples' own error at spread 1e-3 or 8 u where that
    is lower; means within 1 ulp of the exact mean. (Without the compensation: 2e-10 to 1e-6,
    from the rounding of the means.)

    At spread 1e-3 the data are so coarsely quantised (ulp(1e9) is 1.2e-4 of the spread) that
    from_samples' sums about its shift are exact, to 1e-18, below the half-ulp rounding of the
    M2 any merge stores: 8 u is that floor, a few roundings (measured: 3 u at most).
    from_samples itself, on the numpy and the compiled paths, is within 16 u at both spreads."""
    X, chunks = table_data(ROWS, d, offset, spread)
    reference, hi, lo = reference_covariance(X)
    whole = GaussianSummary.from_samples(X)
    bound = 1.8e-15 if spread == 1.0 else max(2 * relative_error(whole.covariance(), reference), 8 * U)
    shards = [GaussianSummary.from_samples(chunk) for chunk in chunks]
    folded = shards[0]
    for shard in shards[1:]:
        folded = folded + shard
    paths = {
        "from_samples": whole,
        "merge_all": GaussianSummary.merge_all(shards),
        "left fold": folded,
        "random tree": random_tree(shards, d),
    }
    for path, s in paths.items():
        assert ulps_off(s.mean, hi, lo) <= 1.0, path
        if path != "from_samples":
            assert relative_error(s.covariance(), reference) <= bound, path
    for mode in ("numpy", "compiled"):
        with _compiled.forced(mode):
            one_pass = GaussianSummary.from_samples(X)
        assert ulps_off(one_pass.mean, hi, lo) <= 1.0, mode
        assert relative_error(one_pass.covariance(), reference) <= 1.8e-15, mode


def _spreading_later(rows: int, d: int) -> np.ndarray:
    """Rows at 1e9 whose first 65,536 have a spread of 1e-7 and the rest of 1: the first block
    foretells an exact pass about the coarse shift alone, which the rest of the data is not."""
    rng = np.random.default_rng(5)
    X = 1e9 + rng.standard_normal((rows, d))
    X[:65_536] = 1e9 + 1e-7 * rng.standard_normal((65_536, d))
    return X


@pytest.mark.parametrize("mode", ["numpy", "compiled"])
def test_data_that_spreads_wider_after_its_first_rows_is_recentred(mode):
    """from_samples repeats the pass about the mean, with a fine part, when the squares about the
    coarse shift alone came out too large to be exact: within 16 u (4.7e-15 on the numpy path
    without the check, the squares' rounding biased)."""
    X = _spreading_later(200_000, 4)
    reference, hi, lo = reference_covariance(X)
    with _compiled.forced(mode):
        s = GaussianSummary.from_samples(X)
    assert relative_error(s.covariance(), reference) <= 1.8e-15
    assert ulps_off(s.mean, hi, lo) <= 1.0


@pytest.mark.parametrize("mode", ["numpy", "compiled"])
def test_weighted_rows_keep_the_fine_shift(mode):
    """Weights (here all ones, and small integers) round their products with the centred values,
    so the pass about the coarse shift alone is never foretold exact for them: 1e5 x 32 rows at
    1e9 with unit spread stay within 16 u (4.6e-15 when a weighted input lost its fine part)."""
    X = 1e9 + np.random.default_rng(14).standard_normal((100_000, 32))
    reference, _, _ = reference_covariance(X)
    with _compiled.forced(mode):
        for weights in (np.ones(X.shape[0]), None):
            assert relative_error(GaussianSummary.from_samples(X, weights).covariance(), reference) <= 1.8e-15
        twice = GaussianSummary.from_samples(X, aweights=np.full(X.shape[0], 2.0))
    assert relative_error(twice.covariance(), reference) <= 1.8e-15
    # The rule itself (a second pass would mend the result, at twice the cost): weighted rows
    # (rows = 0) keep the fine part; unweighted coarsely quantised ones drop it.
    coarse, fine, spread = np.array([1e9]), np.array([1e-8]), np.array([1e-3])
    assert _kernel._settled_shift(coarse, fine, spread, 0)[1].tolist() == [1e-8]
    assert _kernel._settled_shift(coarse, fine, spread, 1000)[1].tolist() == [0.0]


def test_weighted_quantised_rows_sum_their_squares_one_by_one():
    """1e6 weighted rows at 1e9 with spread 1e-3 on the numpy path keep the fine shift, and their
    squares are summed rounded one by one (BLAS's fused sums of them were biased: 3.4e-15). The
    covariances between variables are still summed by BLAS: on 1e5 rows they may err by up to
    4.4e-15 (the README says so; the compiled path, 4e-16)."""
    quantised = 1e9 + 1e-3 * np.random.default_rng(8).standard_normal((1_000_000, 4))
    exact, _, _ = reference_covariance(quantised)
    with _compiled.forced("numpy"):
        for weights in ({"weights": np.ones(len(quantised))}, {"aweights": np.full(len(quantised), 3.0)}):
            weighted = GaussianSummary.from_samples(quantised, **weights)
            assert relative_error(weighted.covariance(), exact) <= 1.8e-15, weights


def _stream(X: np.ndarray) -> GaussianSummary:
    s = GaussianSummary.empty(X.shape[1])
    for row in X:
        s = s.update(row)
    return s


@pytest.mark.parametrize("d", [4, 32])
@pytest.mark.parametrize("spread", [1.0, 1e-3])
@pytest.mark.parametrize("offset", [1e9, 1.7e9])
def test_a_row_by_row_stream_is_as_accurate_as_one_pass(offset, spread, d):
    """1e5 one-row updates of the offset table's data (the compiled step, which gives the numpy
    step's bits: test_compiled): the covariance within 16 u (1.8e-15) at unit spread, within 2x
    from_samples' own error at spread 1e-3 and within 16 u there too; the mean within 1 ulp.
    (With M2 a plain running sum: 4e-15 to 1.3e-14; without the compensated mean: 4e-8 to 1e-4.)"""
    X, _ = table_data(ROWS, d, offset, spread)
    reference, hi, lo = reference_covariance(X)
    with _compiled.forced("compiled" if _compiled.available() else "numpy"):
        s = _stream(X)
    assert ulps_off(s.mean, hi, lo) <= 1.0
    error = relative_error(s.covariance(), reference)
    assert error <= 1.8e-15
    if spread != 1.0:
        assert error <= 2 * relative_error(GaussianSummary.from_samples(X).covariance(), reference)


@pytest.mark.parametrize("mode, d", [("numpy", 4), ("numpy", 32), ("compiled", 4), ("compiled", 32), ("floats", 1)])
def test_each_path_of_the_one_row_step_keeps_m2_compensated(mode, d):
    """20,000 one-row updates at 1.7e9 with spread 1e-3, on each path (the numpy and compiled
    steps, and Python floats on scalar data): covariance within 16 u, mean within 1 ulp, and
    ``M2 + M2_error`` a double-float (``M2`` correctly rounded)."""
    if mode == "compiled" and not _compiled.available():
        pytest.skip("needs numba, not installed: pip install 'gaussum[fast]'")
    X, _ = table_data(ROWS, d, 1.7e9, 1e-3)
    X = X[:20_000]
    reference, hi, lo = reference_covariance(X)
    with _compiled.forced("numpy" if mode == "floats" else mode):
        if mode == "floats":
            s = GaussianSummary.empty()
            for value in X[:, 0].tolist():
                s = s.update(value)
            covariance, mean = np.array([[s.covariance()]]), np.array([s.mean])
        else:
            s = _stream(X)
            covariance, mean = s.covariance(), s.mean
    assert ulps_off(mean, hi, lo) <= 1.0
    assert relative_error(covariance, reference) <= 1.8e-15
    assert s.M2_error.any() and np.array_equal(s.M2 + s.M2_error, s.M2)


def test_scalar_streams_of_floats_and_numpy_scalars_agree_to_the_bit():
    """update(float) (plain float arithmetic) and update(np.float64) / update(0-d array) (the
    array step) round the same operations alike: equal summaries, M2_error included."""
    values = (1e6 + np.random.default_rng(12).standard_normal(300)).tolist()
    floats = scalars = arrays = GaussianSummary.empty()
    for value in values:
        floats, scalars = floats.update(value), scalars.update(np.float64(value))
        arrays = arrays.update(np.array(value))
    assert floats == scalars == arrays and floats.M2_error.any()


@pytest.mark.parametrize("mode", ["numpy", "compiled"])
def test_large_finite_m2_keeps_its_error_on_both_paths(mode):
    """Variances near 1e308 are stepped, not refused (the overflow test is of each entry), with
    the same bits on both paths up to the largest float64."""
    if mode == "compiled" and not _compiled.available():
        pytest.skip("needs numba, not installed: pip install 'gaussum[fast]'")
    with _compiled.forced(mode):
        stepped = GaussianSummary(10.0, [0.0, 0.0], [1e308, 1e308]).update([1.0, 1.0])
    assert stepped.M2.tolist() == [1e308, 1e308] and stepped.M2_error.any()
    largest = np.finfo(np.float64).max
    M2 = np.full(8, 0.4 * (largest - np.nextafter(largest, 0.0)))
    M2[0] = largest
    row = np.zeros(8)
    row[1] = 1.0
    near_max = GaussianSummary(10.0, np.zeros(8), M2)
    with _compiled.forced(mode):
        result = near_max.update(row)
    with _compiled.forced("numpy"):
        assert result == near_max.update(row)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    offset=st.sampled_from([0.0, 1e3, 1e9, -1.7e9]),
    spread=st.sampled_from([1.0, 1e-3, 1e5]),
    diagonal=st.booleans(),
)
def test_streamed_m2_is_within_a_few_u_of_the_exact_m2(seed, offset, spread, diagonal):
    """2,000 one-row updates of 3 variables against M2 in exact arithmetic (Fraction): every entry
    within ``6 u sqrt(M2_ii M2_jj)``. Each step's new term is right to a few u of itself and the
    compensated sum adds nothing (1.7 u at most on 16 such streams); a float64 running M2 was up
    to 50 u off on the same streams."""
    rng = np.random.default_rng(seed)
    mixing = np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.2], [0.0, 0.0, 1.0]])
    X = offset + spread * rng.standard_normal((2_000, 3)) @ mixing
    s = GaussianSummary.empty(3, diagonal=diagonal)
    for row in X:
        s = s.update(row)
    M2 = np.diag(s.M2) if diagonal else s.M2
    columns = [[Fraction(v) for v in X[:, j].tolist()] for j in range(3)]
    means = [sum(c, Fraction(0)) / len(c) for c in columns]
    centred = [[v - mean for v in c] for c, mean in zip(columns, means, strict=True)]
    for i in range(3):
        for j in range(3) if not diagonal else [i]:
            exact = sum((a * b for a, b in zip(centred[i], centred[j], strict=True)), Fraction(0))
            scale = math.sqrt(float(M2[i, i]) * float(M2[j, j]))
            assert abs(Fraction(float(M2[i, j])) - exact) <= Fraction(6 * U * scale), (i, j)


# -- exact means on small data (fractions.Fraction) -----------------------------------------------


def test_merged_means_of_small_integer_data_are_within_an_ulp():
    """9 x 3 integer matrices in [-50, 50): from_samples, a + b (both orders), merge_all, the
    grouped paths and a - b give means within 1 ulp of the exact ones (each was up to 100-300 ulps
    off: the step delta * nb / n errs by u |delta|, large next to a small mean)."""
    rng = np.random.default_rng(19)
    keys = np.array([0, 1, 0, 1, 0, 1, 0, 1, 1])
    for _ in range(150):
        X = rng.integers(-50, 50, (9, 3)).astype(float)
        a, b = GaussianSummary.from_samples(X[:4]), GaussianSummary.from_samples(X[4:])
        whole = GaussianSummary.from_samples(X)
        grouped = GroupedSummary.from_samples(keys, X)
        grouped_merge = GroupedSummary.from_samples(keys[:4], X[:4]) + GroupedSummary.from_samples(keys[4:], X[4:])
        pieces = [GaussianSummary.from_samples(X[i : i + 2]) for i in range(0, 9, 2)]
        for j in range(3):
            exact = fraction_mean(X[:, j])
            for path, s in {
                "from_samples": whole, "a + b": a + b, "b + a": b + a,
                "merge_all": GaussianSummary.merge_all(pieces), "grouped total": grouped.total(),
            }.items():
                assert within_an_ulp(s.mean[j], exact, 50.0), (path, X[:, j])
            assert within_an_ulp((whole - b).mean[j], fraction_mean(X[:4, j]), 50.0), X[:, j]
            for k in (0, 1):
                exact_k = fraction_mean(X[keys == k, j])
                assert within_an_ulp(grouped.means[k, j], exact_k, 50.0), X[:, j]
                assert within_an_ulp(grouped_merge.means[k, j], exact_k, 50.0), X[:, j]


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 256),
    d=st.integers(1, 4),
    offset=st.sampled_from([0.0, 3.0, -1e5, 1e9, 1.7e9]),
    spread=st.sampled_from([1.0, 1e-3, 1e3]),
    seed=st.integers(0, 2**32 - 1),
    diagonal=st.booleans(),
)
def test_small_data_has_correctly_rounded_means_and_the_one_pass_m2(rows, d, offset, spread, seed, diagonal):
    """Up to 1,024 values (the small-data path: exact column sums first): every mean is the exact
    mean correctly rounded (Fraction), with its rounding as mean_error, and M2 is within the
    Accuracy section's 1.8e-15 of the exact scatter of the float64 data."""
    X = offset + spread * np.random.default_rng(seed).standard_normal((rows, d))
    s = GaussianSummary.from_samples(X, diagonal=diagonal)
    mean = [fraction_mean(X[:, j]) for j in range(d)]
    for j in range(d):
        assert Fraction(float(s.mean[j])) == Fraction(float(mean[j])) or abs(mean[j]) == 0
        assert abs(Fraction(float(s.mean[j])) + Fraction(float(s.mean_error[j])) - mean[j]) <= Fraction(
            U * U * max(abs(offset), spread) * 8
        )
    deviations = [[Fraction(float(v)) - mean[j] for j, v in enumerate(row)] for row in X]
    exact = np.array([[float(sum(r[i] * r[j] for r in deviations)) for j in range(d)] for i in range(d)])
    if rows > 1:
        if diagonal:
            assert relative_error(s.M2, np.diagonal(exact)) <= 1.8e-15
        else:
            assert relative_error(s.M2, exact) <= 1.8e-15


@pytest.mark.parametrize("policy", ["omit", "raise", "propagate"])
def test_small_data_applies_the_nan_policy_as_large_data_does(policy):
    """NaN and inf rows in small data: omitted ones leave the bits of the clean rows and are
    counted; "raise" names the first bad row; "propagate" gives NaN."""
    rng = np.random.default_rng(31)
    clean = 1e6 + rng.standard_normal((40, 3))
    bad_rows = [[np.nan, 1.0, 2.0], [1.0, np.inf, 2.0], [3.0, 4.0, -np.inf], [np.nan] * 3]
    marked = np.insert(clean, [0, 7, 7, 40], bad_rows, axis=0)  # at rows 0, 8, 9 and 43
    if policy == "raise":
        with pytest.raises(ValueError, match="row 0"):
            GaussianSummary.from_samples(marked)
        with pytest.raises(ValueError, match=r"row 7: \[1.0, inf, 2.0\]"):
            GaussianSummary.from_samples(marked[1:])
    elif policy == "omit":
        s, dropped = GaussianSummary._from_samples_counted(marked, nan_policy="omit")
        assert dropped == 4 and s == GaussianSummary.from_samples(clean)
        assert s == GaussianSummary.empty(3).update(marked, nan_policy="omit")
    else:
        s = GaussianSummary.from_samples(marked, nan_policy="propagate")
        assert s.n == 44 and np.isnan(s.mean).all() and np.isnan(s.M2).all()


@pytest.mark.parametrize("mode", ["numpy", "compiled"])
def test_weighted_means_near_zero_are_within_an_ulp(mode):
    """Data centred on zero (the mean a small difference of large terms), with frequency and
    reliability weights: from_samples' mean within 1 ulp of the exact weighted mean. (The weights
    are dyadic so that each row's weight ``f a`` is exact in float64, as the reference takes it.)"""
    if mode == "compiled" and not _compiled.available():
        pytest.skip("needs numba, not installed: pip install 'gaussum[fast]'")
    rng = np.random.default_rng(23)
    X = rng.standard_normal((600, 3)) * [1.0, 1e3, 1e-2]
    f, a = rng.integers(1, 4, 600).astype(float), rng.integers(1, 64, 600) / 32.0
    with _compiled.forced(mode):
        plain = GaussianSummary.from_samples(X)
        weighted = GaussianSummary.from_samples(X, f, aweights=a)
    w = [Fraction(float(x)) * Fraction(float(y)) for x, y in zip(f, a, strict=True)]
    for j in range(3):
        assert within_an_ulp(plain.mean[j], fraction_mean(X[:, j]), 1e3)
        exact = sum((wi * Fraction(float(x)) for wi, x in zip(w, X[:, j], strict=True)), Fraction(0)) / sum(w)
        assert within_an_ulp(weighted.mean[j], exact, 1e3)


def test_the_error_is_what_the_rounding_left():
    """``mean + mean_error`` is the exact mean to a few u of the spread (1e11 times finer than the
    mean's ulp here): the stored error is the rounding itself, not a guess."""
    X = 1e9 + np.random.default_rng(3).standard_normal((500, 2)) * 1e-3
    s = GaussianSummary.from_samples(X)
    for j in range(2):
        exact = fraction_mean(X[:, j])
        assert abs(Fraction(float(s.mean[j])) + Fraction(float(s.mean_error[j])) - exact) <= Fraction(4 * U * 1e-3)
        assert s.mean[j] + s.mean_error[j] == s.mean[j]


# -- the field: construction, equality, dicts, pickle, checks -------------------------------------


def _summary() -> GaussianSummary:
    X = 1e6 + np.random.default_rng(5).standard_normal((200, 3))
    s = GaussianSummary.from_samples(X, names=["a", "b", "c"])
    assert s.mean_error.any()
    return s


def test_summaries_built_from_moments_have_no_error():
    """GaussianSummary(n, mean, M2) and from_moments take the error as zero; == tells them apart."""
    s = _summary()
    plain = GaussianSummary(s.n, s.mean, s.M2, s.w2, names=s.names)
    assert plain.mean_error.tolist() == [0.0, 0.0, 0.0]
    assert GaussianSummary.from_moments(3, [1.0, 2.0], [[1.0, 0.0], [0.0, 1.0]]).mean_error.tolist() == [0.0, 0.0]
    assert plain != s and plain.isclose(s, rtol=0.0)
    assert GaussianSummary(s.n, s.mean, s.M2, s.w2, names=s.names, mean_error=s.mean_error) == s
    assert not s.mean_error.flags.writeable


def test_dicts_write_the_error_only_when_there_is_one():
    """to_dict omits a zero error (the old layout, which still loads) and writes a non-zero one."""
    s = _summary()
    data = json.loads(json.dumps(s.to_dict()))
    assert data["version"] == 2 and data["mean_error"] == s.mean_error.tolist()
    assert GaussianSummary.from_dict(data) == s
    old = {k: v for k, v in data.items() if k != "mean_error"}
    assert GaussianSummary.from_dict(old) == GaussianSummary(s.n, s.mean, s.M2, s.w2, names=s.names)
    assert "mean_error" not in GaussianSummary(s.n, s.mean, s.M2).to_dict()
    g = GroupedSummary.from_samples([1, 2, 1, 2, 2], 1e6 + np.arange(10.0).reshape(5, 2) / 3)
    assert g.mean_errors.shape == (2, 2) and g.mean_errors.any()
    grouped = json.loads(json.dumps(g.to_dict()))
    assert GroupedSummary.from_dict(grouped) == g
    assert "mean_errors" not in GroupedSummary(g.keys(), g.counts, g.means, g.M2).to_dict()


def test_pickle_keeps_the_error():
    """Pickle round trips keep the error, read-only, for both types."""
    s = _summary()
    back = pickle.loads(pickle.dumps(s))
    assert back == s and np.array_equal(back.mean_error, s.mean_error) and not back.mean_error.flags.writeable
    g = GroupedSummary.from_samples([1, 2, 1], 1e6 + np.arange(6.0).reshape(3, 2) / 7)
    assert pickle.loads(pickle.dumps(g)) == g


@pytest.mark.parametrize(
    "error, message",
    [
        ([np.nan, 0.0, 0.0], r"mean_error\[0\] is nan"),
        ([0.0, 1e-6, 0.0], r"below half an ulp.*mean_error\[1\] is 1e-06 for a mean of [\d.]+ \(shape \(3,\)\)"),
        ([0.0, 0.0], r"mean_error.*shape.*\(3,\), got .*\(2,"),
    ],
)
def test_an_error_that_no_rounding_leaves_is_refused(error, message):
    """A mean error must be finite and below half an ulp of its mean; from_dict refuses the same."""
    s = _summary()
    with pytest.raises(ValueError, match=message):
        GaussianSummary(s.n, s.mean, s.M2, mean_error=error)
    data = {**s.to_dict(), "mean_error": [0.0 if np.isnan(e) else e for e in error]}
    if np.isnan(error[0]):
        return  # JSON has no NaN: the dict case is the other two
    with pytest.raises(ValueError, match=message):
        GaussianSummary.from_dict(data)


def _streamed(diagonal: bool = False) -> GaussianSummary:
    """A summary of 300 one-row updates: the one kind that keeps an M2 error."""
    X = 1e6 + np.random.default_rng(6).standard_normal((300, 3))
    s = GaussianSummary.empty(3, diagonal=diagonal, names=["a", "b", "c"])
    for row in X:
        s = s.update(row)
    assert s.M2_error.any()
    return s


def test_only_one_row_steps_keep_an_m2_error():
    """Built from moments, from rows at once, or by merging: M2_error is zeros (read-only), and
    == tells a stream from the same numbers without its error."""
    s = _streamed()
    assert not s.M2_error.flags.writeable and not _summary().M2_error.any()
    assert not GaussianSummary.from_moments(3, [1.0, 2.0], np.eye(2)).M2_error.any()
    rows = 1e6 + np.random.default_rng(7).standard_normal((4, 3))
    batch = GaussianSummary.from_samples(rows, names=["a", "b", "c"])
    for merged in (s + batch, GaussianSummary.merge_all([s, batch]), s.update(rows)):
        assert not merged.M2_error.any() and merged.isclose(s + batch, rtol=1e-14)
    removed = (s + batch) - batch
    assert not removed.M2_error.any() and removed.isclose(s, rtol=1e-9)
    plain = GaussianSummary(s.n, s.mean, s.M2, s.w2, names=s.names, mean_error=s.mean_error)
    assert plain != s and plain.isclose(s, rtol=0.0) and hash(plain) == hash(s)
    fields = dict(names=s.names, mean_error=s.mean_error)
    assert GaussianSummary(s.n, s.mean, s.M2, s.w2, **fields, M2_error=s.M2_error) == s
    assert GaussianSummary(s.n, s.mean, s.M2, s.w2, **fields, M2_error=np.zeros((3, 3))) == plain


@pytest.mark.parametrize("diagonal", [False, True])
def test_values_that_equal_a_stream_keep_its_m2_error(diagonal):
    """A merge with an empty summary, merge_all of one, scaled(1.0) and renaming give back the
    stream with its error; select, reordering and to_diagonal take its sub-blocks."""
    s = _streamed(diagonal)
    empty = GaussianSummary.empty(3, diagonal=diagonal)
    merged = (GaussianSummary.merge_all([s]), GaussianSummary.merge_all([empty, s]))
    for same in (s + empty, empty + s, *merged, s.scaled(1.0), s - empty):
        assert same == s and np.array_equal(same.M2_error, s.M2_error)
    picked = s.select(["c", "a"])
    expected = s.M2_error[np.ix_([2, 0], [2, 0])] if not diagonal else s.M2_error[[2, 0]]
    assert np.array_equal(picked.M2_error, expected)
    assert np.array_equal(s.to_diagonal().M2_error, np.diagonal(s.M2_error) if not diagonal else s.M2_error)
    other = GaussianSummary.from_samples(np.ones((2, 3)), names=["c", "a", "b"], diagonal=diagonal)
    assert s._aligned(other.names, "merge") == s.select(["c", "a", "b"])
    assert not s.scaled(0.5).M2_error.any()


@pytest.mark.parametrize("kind", ["full", "diagonal", "scalar"])
def test_dicts_bytes_and_pickles_keep_the_m2_error(kind):
    """Every format writes a stream's M2 error and reads it back into an equal summary; a summary
    without one writes none (the layout of earlier versions)."""
    if kind == "scalar":
        s = GaussianSummary.empty()
        for value in (1e6 + np.random.default_rng(4).standard_normal(200)).tolist():
            s = s.update(value)
        assert s.M2_error.any()
    else:
        s = _streamed(kind == "diagonal")
    data = json.loads(json.dumps(s.to_dict()))
    assert data["M2_error"] == s.M2_error.tolist()
    loaded = (GaussianSummary.from_dict(data), GaussianSummary.from_bytes(s.to_bytes()), pickle.loads(pickle.dumps(s)))
    for back in loaded:
        assert back == s and np.array_equal(back.M2_error, s.M2_error) and not back.M2_error.flags.writeable
    plain = GaussianSummary(s.n, s.mean, s.M2, s.w2, names=s.names, mean_error=s.mean_error)
    assert "M2_error" not in plain.to_dict()
    assert len(plain.to_bytes()) < len(s.to_bytes()) and GaussianSummary.from_bytes(plain.to_bytes()) == plain
    assert GaussianSummary.from_dict({k: v for k, v in data.items() if k != "M2_error"}) == plain


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda e: e * 1e6, r"M2_error must be finite and below half an ulp of M2.*M2_error\[0, 0\] is"),
        (lambda e: np.where(np.eye(3) > 0, np.nan, e), r"M2_error\[0, 0\] is nan"),
        (lambda e: e + np.triu(np.full((3, 3), 1e-20), 1), r"M2_error must be symmetric; M2_error\[0, 1\]"),
        (lambda e: e[:2, :2], r"M2_error'? must have (the )?shape.*\(3, 3\), got"),
    ],
)
def test_an_m2_error_that_no_rounding_leaves_is_refused(change, message):
    """Construction, from_dict and from_bytes refuse an M2 error larger than half an ulp, not
    finite, asymmetric or of another shape."""
    s = _streamed()
    bad = change(np.array(s.M2_error))
    with pytest.raises(ValueError, match=message):
        GaussianSummary(s.n, s.mean, s.M2, s.w2, mean_error=s.mean_error, M2_error=bad)
    if np.isfinite(bad).all():
        with pytest.raises(ValueError, match=message):
            GaussianSummary.from_dict({**s.to_dict(), "M2_error": bad.tolist()})
    if bad.shape == s.M2.shape:  # a pickle of the same layout, the error's bytes replaced
        with pytest.raises(ValueError, match=message):
            pickle.loads(pickle.dumps(s).replace(np.array(s.M2_error).tobytes(), bad.tobytes()))


def test_grouped_bytes_refuse_an_m2_error_flag():
    """The M2-error flag belongs to a GaussianSummary: a grouped summary's bytes with it are refused."""
    import struct
    import zlib

    raw = bytearray(GroupedSummary.from_samples([1, 2], [[1.0, 2.0], [3.0, 5.0]]).to_bytes()[:-4])
    raw[6] |= 32
    with pytest.raises(ValueError, match="keeps no M2 errors"):
        GroupedSummary.from_bytes(bytes(raw) + struct.pack("<I", zlib.crc32(bytes(raw))))


def test_grouped_errors_are_checked_naming_the_key():
    """GroupedSummary checks each key's errors, naming the key."""
    with pytest.raises(ValueError, match=r"mean_errors\[1, 0\] is 0\.5 for a mean of 3\.0 \(shape \(2, 1\)\)"):
        GroupedSummary(["a", "b"], [1.0, 1.0], [[1.0], [3.0]], [[0.0], [0.0]], mean_errors=[[0.0], [0.5]])


def test_scaling_selecting_and_diagonals_carry_the_error():
    """scaled (the mean unchanged, so its error too), select, reordering and to_diagonal keep it."""
    s = _summary()
    assert np.array_equal(s.scaled(0.5).mean_error, s.mean_error)
    assert np.array_equal(s.select(["c", "a"]).mean_error, s.mean_error[[2, 0]])
    assert np.array_equal(s.to_diagonal().mean_error, s.mean_error)
    other = GaussianSummary.from_samples(1e6 + np.ones((3, 3)) / 3, names=["c", "a", "b"])
    assert np.array_equal((s + other).mean, (s + other._aligned(s.names, "merge")).mean)


def test_the_command_line_state_keeps_the_error(tmp_path, capsys):
    """A state written by ``gaussum summarize`` holds the error, and its summary reads back equal."""
    X = 1e9 + np.random.default_rng(8).standard_normal((300, 2)) * 1e-3
    path = tmp_path / "x.csv"
    path.write_text("a,b\n" + "\n".join(f"{u!r},{v!r}" for u, v in X.tolist()) + "\n")
    out = tmp_path / "state.json"
    assert cli.main(["summarize", str(path), "-o", str(out)]) == 0
    capsys.readouterr()
    data = json.loads(out.read_text())["summary"]
    s = GaussianSummary.from_dict(data)
    assert s.mean_error.any() and s == GaussianSummary.from_samples(X, names=["a", "b"])


def test_dask_chunks_merge_to_one_pass_accuracy():
    """gaussum.dask.summarize of 1,000 chunks at offset 1e9, spread 1e-3: the covariance within 2x
    from_samples' error and the means within 1 ulp (dask.array.cov errs by 1e-7 here)."""
    da = pytest.importorskip("dask.array")
    from gaussum import dask as gaussum_dask

    X = 1e9 + np.random.default_rng(13).standard_normal((20_000, 2)) * 1e-3
    reference, hi, lo = reference_covariance(X)
    s = gaussum_dask.summarize(da.from_array(X, chunks=(20, 2)), compute=True)
    whole = GaussianSummary.from_samples(X)
    assert ulps_off(s.mean, hi, lo) <= 1.0 and s.mean_error.any()
    assert relative_error(s.covariance(), reference) <= max(1.8e-15, 2 * relative_error(whole.covariance(), reference))


def test_tiny_weighted_data_with_dropped_rows_keeps_exact_means():
    """A few weighted rows centred on zero, one of them NaN and left out: means within 1 ulp."""
    rng = np.random.default_rng(29)
    X = rng.standard_normal((20, 2)) * [1.0, 1e4]
    f = rng.integers(1, 5, 20).astype(float)
    X[7, 1] = np.nan
    s = GaussianSummary.from_samples(X, f, nan_policy="omit")
    keep = np.isfinite(X).all(axis=1)
    w = [Fraction(float(v)) for v in f[keep]]
    for j in range(2):
        exact = sum((wi * Fraction(float(x)) for wi, x in zip(w, X[keep, j], strict=True)), Fraction(0)) / sum(w)
        assert within_an_ulp(s.mean[j], exact, 1e4)


def test_rows_omitted_across_the_small_data_size_leave_the_clean_rows_bits():
    """512 x 2 clean rows take the small-data path; with NaN rows added (past its 1,024 values,
    so the streamed path drops them) the result is still that of the clean rows, to the bit."""
    for seed in range(20):
        clean = 1e3 + np.random.default_rng(seed).standard_normal((512, 2))
        marked = np.insert(clean, [0, 100, 512], [[np.nan, 0.0], [1.0, np.inf], [np.nan, np.nan]], axis=0)
        s, dropped = GaussianSummary._from_samples_counted(marked, nan_policy="omit")
        assert dropped == 3 and s == GaussianSummary.from_samples(clean)
