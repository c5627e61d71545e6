"""The compiled grouped kernel (gaussum[fast]): the numpy path's answers, accuracy and NaN policies."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exact import exact_moments
from gaussum import GaussianSummary, GroupedSummary, _compiled, _kernel, _keys
from gaussum.errors import Float64OverflowError, NonFiniteError

numba = pytest.importorskip("numba", reason="needs numba, not installed: pip install 'gaussum[fast]'")

from gaussum import _compiled_grouped  # noqa: E402  (imports numba)

U = np.finfo(np.float64).eps / 2


def groups(keys, X, weights=(None, None), diagonal=False, nan_policy="raise", mode="compiled"):
    """`_kernel.summarize_groups` of X by keys on one path: ``(counts, means, M2, w2, mean_errs), dropped``."""
    uniques, codes = _keys.factorize(np.asarray(keys))
    order = _keys.sort_order(codes, uniques.size)
    with _compiled.forced(mode):
        *stack, dropped = _kernel.summarize_groups(X, weights, codes, uniques.size, order, diagonal, nan_policy)
    return stack, dropped


def compiled_ran(keys, X, weights=(None, None), diagonal=False):
    """True when the compiled kernel, not the numpy fallback, summarised X."""
    uniques, codes = _keys.factorize(np.asarray(keys))
    with _compiled.forced("compiled"):
        return _compiled_grouped.summarize(X, weights, codes, uniques.size, diagonal) is not None


def scatter_error(M2, reference):
    """Worst ``|M2 - reference|`` over ``sqrt(ref_ii ref_jj)``, per key and entry (or per variance)."""
    M2, reference = np.asarray(M2, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if reference.ndim == 2:  # diagonal form: (g, d)
        scale = np.where(reference > 0, reference, 1.0)
    else:
        var = np.diagonal(reference, axis1=1, axis2=2)
        scale = np.sqrt(var[:, :, None] * var[:, None, :])
        scale = np.where(scale > 0, scale, 1.0)
    return float(np.max(np.abs(M2 - reference) / scale))


def make(rng, N, d, g, offset=0.0):
    keys = rng.integers(0, g, N)
    X = offset + rng.standard_normal((N, d)) @ rng.standard_normal((d, d)) + rng.standard_normal((g, d))[keys]
    return keys, X


def weights_of(kind, rng, N):
    """``(fweights, aweights)`` for a weight kind."""
    f = rng.integers(0, 4, N).astype(np.float64) if kind in ("frequency", "both") else None
    a = rng.uniform(0.1, 3.0, N) if kind in ("reliability", "both") else None
    return f, a


# -- the numpy path's answers ----------------------------------------------------------------


@pytest.mark.parametrize("d", [1, 2, 3, 5, 8, 13])
@pytest.mark.parametrize("diagonal", [False, True])
@pytest.mark.parametrize("kind", ["none", "frequency", "reliability", "both"])
def test_compiled_groups_give_the_numpy_answer(d, diagonal, kind):
    """Counts, w2, means and M2 of every key within a few u of the numpy path's, any width and weights."""
    rng = np.random.default_rng(d + 100 * diagonal)
    keys, X = make(rng, 3000, d, 40, offset=1e3)
    keys[:700] = 7  # one key past CHUNK x CHUNKS rows
    weights = _kernel.row_weights(*weights_of(kind, rng, 3000))
    assert compiled_ran(keys, X, weights, diagonal)
    (n, mean, M2, w2, err), dropped = groups(keys, X, weights, diagonal)
    (n0, mean0, M20, w20, err0), dropped0 = groups(keys, X, weights, diagonal, mode="numpy")
    assert dropped == dropped0 == 0
    np.testing.assert_allclose(n, n0, rtol=4 * U * 256, atol=0)
    np.testing.assert_allclose(w2, w20, rtol=4 * U * 256, atol=0)
    spread = np.sqrt(np.diagonal(M20, axis1=1, axis2=2) if not diagonal else M20) / np.sqrt(np.maximum(n0, 1))[:, None]
    assert np.all(np.abs((mean + err) - (mean0 + err0)) <= 64 * U * spread + 4 * U * np.abs(mean0))
    assert scatter_error(M2, M20) <= 64 * U
    assert M2.shape == M20.shape and mean.shape == mean0.shape
    if not diagonal:
        assert np.array_equal(M2, M2.transpose(0, 2, 1))


@pytest.mark.parametrize("kind", ["none", "frequency", "reliability", "both"])
def test_compiled_groups_match_np_cov_per_key(kind):
    """GroupedSummary's covariances equal np.cov on each key's rows, with the same weights."""
    rng = np.random.default_rng(5)
    keys, X = make(rng, 5000, 4, 30, offset=50.0)
    f, a = weights_of(kind, rng, 5000)
    with _compiled.forced("compiled"):
        g = GroupedSummary.from_samples(keys, X, f, aweights=a)
    for index, key in enumerate(g.keys()):
        mask = keys == key
        fk = None if f is None else f[mask]
        ak = None if a is None else a[mask]
        total = mask.sum() if f is None and a is None else np.sum((1 if fk is None else fk) * (1 if ak is None else ak))
        reference = np.cov(X[mask], rowvar=False, ddof=0, fweights=None if fk is None else fk.astype(int), aweights=ak)
        assert g.counts[index] == pytest.approx(total, rel=1e-14)
        var = np.diagonal(reference)
        scale = np.sqrt(var[:, None] * var[None, :])
        assert np.max(np.abs(g.M2[index] / total - reference) / scale) <= 1e-12
        np.testing.assert_allclose(
            g.means[index],
            np.average(
                X[mask],
                axis=0,
                weights=None if f is None and a is None else (1 if fk is None else fk) * (1 if ak is None else ak),
            ),
            rtol=1e-14,
        )


def test_column_major_rows_give_the_same_bits():
    """X in Fortran order is read in place and gives the bits of the same rows in C order."""
    rng = np.random.default_rng(2)
    keys, X = make(rng, 2000, 5, 17)
    F = np.asfortranarray(X)
    assert compiled_ran(keys, F)
    (a, _), (b, _) = groups(keys, X), groups(keys, F)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y)


def test_the_result_is_deterministic():
    """The same rows give the same bits twice (one thread, a fixed order of additions)."""
    rng = np.random.default_rng(3)
    keys, X = make(rng, 5000, 6, 50)
    (a, _), (b, _) = groups(keys, X), groups(keys, X)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y)


def test_keys_of_no_weight_and_unused_codes_are_empty():
    """A key whose rows all weigh 0 has zero mean, M2, w2 and mean error, as on the numpy path."""
    rng = np.random.default_rng(4)
    keys, X = make(rng, 600, 3, 6, offset=10.0)
    f = rng.uniform(0.5, 2.0, 600)
    f[keys == 2] = 0.0
    (n, mean, M2, w2, err), _ = groups(keys, X, _kernel.row_weights(f, None))
    (n0, _mean0, M20, _w20, _err0), _ = groups(keys, X, _kernel.row_weights(f, None), mode="numpy")
    assert n[2] == n0[2] == 0.0
    assert not mean[2].any() and not M2[2].any() and w2[2] == 0.0 and not err[2].any()
    assert scatter_error(M2, M20) <= 64 * U


def test_a_far_shift_is_recentred(monkeypatch):
    """A key whose shift lands far from its mean is summed again about its mean: the numpy path's answer."""
    rng = np.random.default_rng(6)
    keys, X = make(rng, 4000, 3, 8, offset=1e6)
    original = _compiled_grouped.shift_pass
    passes = []

    def off_shift(X, w, codes, keep, sums, sizes, variables):
        original(X, w, codes, keep, sums, sizes, variables)
        sums[::2, :3] += 40.0  # every other key's first row moved 40 standard deviations

    def counted(*args):
        passes.append(args[5].size)  # `active`: empty for all keys, else the far keys
        return sum_pass(*args)

    sum_pass = _compiled_grouped.sum_pass
    monkeypatch.setattr(_compiled_grouped, "shift_pass", off_shift)
    monkeypatch.setattr(_compiled_grouped, "sum_pass", counted)
    (_n, mean, M2, _w2, _err), _ = groups(keys, X)
    assert len(passes) == 2 and passes[1] == 8  # one more pass, over the far keys only
    (_n0, mean0, M20, _w20, _err0), _ = groups(keys, X, mode="numpy")
    assert scatter_error(M2, M20) <= 64 * U
    np.testing.assert_allclose(mean, mean0, rtol=4 * U, atol=0)


@pytest.mark.parametrize("diagonal", [False, True])
def test_large_drifting_keys_agree_with_from_samples(diagonal):
    """Keys of 40,000 and 5,000 weighted rows drifting by 50 deviations: from_samples of their rows, to rounding."""
    rng = np.random.default_rng(16)
    keys = np.repeat([3, 1, 2], [5000, 40000, 3])[rng.permutation(45003)]
    X = 1e6 + rng.standard_normal((45003, 4)) + np.linspace(0, 50, 45003)[:, None]
    w = rng.uniform(0, 2, 45003)
    with _compiled.forced("compiled"):
        g = GroupedSummary.from_samples(keys, X, w, diagonal=diagonal)
    for key in (1, 2, 3):
        mask = keys == key
        with _compiled.forced("numpy"):
            assert g[key].isclose(GaussianSummary.from_samples(X[mask], w[mask], diagonal=diagonal), rtol=1e-13)


# -- accuracy ----------------------------------------------------------------------------------


@pytest.mark.parametrize("diagonal", [False, True])
def test_accuracy_at_offset_1e9_against_fractions(diagonal):
    """Each key's M2 within 1.8e-15 (relative, Frobenius: the README's bound) of the exact one at 1e9; exact means."""
    rng = np.random.default_rng(9)
    keys = rng.integers(0, 5, 600)
    keys[:300] = 1  # one key past CHUNK x CHUNKS rows
    X = 1e9 + rng.standard_normal((600, 3)) * rng.uniform(0.1, 10.0, 3)
    (n, mean, M2, _w2, _err), _ = groups(keys, X, diagonal=diagonal)
    for index, key in enumerate(np.unique(keys)):
        count, exact_mean, exact_M2 = exact_moments(X[keys == key])
        assert n[index] == float(count)
        assert np.array_equal(mean[index], [float(m) for m in exact_mean])
        exact = np.array([[float(v) for v in row] for row in exact_M2])
        if diagonal:
            assert np.max(np.abs(M2[index] - np.diagonal(exact)) / np.diagonal(exact)) <= 1.8e-15
        else:
            assert np.linalg.norm(M2[index] - exact) <= 1.8e-15 * np.linalg.norm(exact)


@pytest.mark.parametrize("weighted", [False, True])
def test_means_near_zero_are_exact(weighted):
    """Keys centred on zero: each mean + its error is the exact mean, to about u^2 of the magnitudes."""
    rng = np.random.default_rng(18)
    keys = rng.integers(0, 12, 2400)
    X = rng.standard_normal((2400, 3)) * [1e-3, 1.0, 1e3]
    w = rng.uniform(0.1, 3.0, 2400) if weighted else None
    (_n, mean, _M2, _w2, err), _ = groups(keys, X, _kernel.row_weights(w, None))
    for index, key in enumerate(np.unique(keys)):
        rows = keys == key
        ws = [Fraction(1)] * int(rows.sum()) if w is None else [Fraction(float(v)) for v in w[rows]]
        for j in range(3):
            exact = sum((a * Fraction(float(x)) for a, x in zip(ws, X[rows, j], strict=True)), Fraction(0)) / sum(ws)
            gap = abs(Fraction(float(mean[index, j])) + Fraction(float(err[index, j])) - exact)
            magnitude = np.average(np.abs(X[rows, j]), weights=None if w is None else w[rows])
            assert gap <= Fraction(2**-98) * Fraction(float(magnitude))  # u^2 of the sum of |w x|


def test_a_large_key_is_summed_in_chunks():
    """200,000 rows of one key at offset 1e6: M2 within 8u of a math.fsum reference (a running sum errs ~N u)."""
    rng = np.random.default_rng(10)
    N = 200_000
    X = 1e6 + rng.standard_normal((N, 2))
    keys = np.zeros(N, dtype=np.int64)
    (n, mean, M2, _w2, _err), _ = groups(keys, X)
    reference_mean = [math.fsum(X[:, j]) / N for j in range(2)]
    Y = X - reference_mean
    reference = np.array([[math.fsum(Y[:, i] * Y[:, j]) for j in range(2)] for i in range(2)])
    reference -= np.outer([math.fsum(Y[:, j]) for j in range(2)], [math.fsum(Y[:, j]) for j in range(2)]) / N
    assert n[0] == N
    assert scatter_error(M2, reference[None]) <= 8 * U
    np.testing.assert_allclose(mean[0], reference_mean, rtol=2 * U, atol=0)


# -- non-finite rows: the numpy path's policy, counts and errors ---------------------------------


def outcome(call):
    try:
        return ("ok", call())
    except (NonFiniteError, Float64OverflowError, ValueError) as exc:
        return (type(exc), str(exc), getattr(exc, "row", None))


@pytest.mark.parametrize("nan_policy", ["raise", "omit", "propagate"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("where", ["first row of a key", "later row"])
def test_non_finite_rows_follow_the_numpy_path(nan_policy, bad, where):
    """Same error and row under "raise", same rows dropped under "omit", NaN in the same keys under "propagate"."""
    rng = np.random.default_rng(11)
    keys, X = make(rng, 3000, 4, 20, offset=100.0)
    row = int(np.flatnonzero(keys == 3)[0 if where == "first row of a key" else 5])
    X[row, 2] = bad
    X[2500, 0] = np.nan
    results = [outcome(lambda m=mode: groups(keys, X, nan_policy=nan_policy, mode=m)) for mode in ("compiled", "numpy")]
    if nan_policy == "raise":
        assert results[0] == results[1] and results[0][0] is NonFiniteError
        return
    (stack, dropped), (stack0, dropped0) = results[0][1], results[1][1]
    assert dropped == dropped0
    n, mean, M2, _w2, _err = stack
    n0, mean0, M20, _w20, _err0 = stack0
    if nan_policy == "omit":
        assert dropped == 2
        assert scatter_error(M2, M20) <= 64 * U
        np.testing.assert_allclose(n, n0, rtol=0)
    else:
        spoilt = ~np.isfinite(mean).all(axis=1)
        assert np.array_equal(spoilt, ~np.isfinite(mean0).all(axis=1))
        assert spoilt.sum() == 2
        finite = ~spoilt
        assert scatter_error(M2[finite], M20[finite]) <= 64 * U


def test_weightless_key_with_nan_is_refused_under_raise():
    """NaN in the rows of a key of no weight is still found (the numpy path searches for it)."""
    rng = np.random.default_rng(12)
    keys, X = make(rng, 500, 2, 5)
    f = np.ones(500)
    f[keys == 1] = 0.0
    X[np.flatnonzero(keys == 1)[0], 1] = np.nan
    results = [
        outcome(lambda m=mode: groups(keys, X, _kernel.row_weights(f, None), mode=m)) for mode in ("compiled", "numpy")
    ]
    assert results[0] == results[1] and results[0][0] is NonFiniteError


def test_overflow_is_reported_by_the_numpy_path():
    """Finite rows whose sums overflow give the numpy path's error (the compiled kernel steps aside)."""
    keys = np.array([0, 0, 1, 1, 1])
    X = np.array([[1e308, 1.0], [-1e308, 2.0], [1.0, 1.0], [2.0, 3.0], [3.0, 5.0]])
    uniques, codes = _keys.factorize(keys)
    with _compiled.forced("compiled"):
        assert _compiled_grouped.summarize(X, (None, None), codes, uniques.size, False) is None
    results = [outcome(lambda m=mode: groups(keys, X, mode=m)) for mode in ("compiled", "numpy")]
    assert results[0] == results[1] and results[0][0] is Float64OverflowError


# -- when the compiled path runs -------------------------------------------------------------------


def test_small_wide_or_other_inputs_keep_the_numpy_path():
    """Below MIN_VALUES, past MAX_D, wide keys of many rows, other dtypes and strided views: the numpy path."""
    rng = np.random.default_rng(13)
    keys, X = make(rng, 100, 3, 4)
    uniques, codes = _keys.factorize(keys)
    with _compiled.forced("auto"):
        assert _kernel._compiled_groups(X, (None, None), codes, uniques.size, False, None) is None
    wide = np.zeros((_compiled.MIN_VALUES // 50 + 1, _compiled_grouped.MAX_D + 1))
    with _compiled.forced("auto"):
        assert _compiled_grouped.summarize(wide, (None, None), np.zeros(wide.shape[0], dtype=np.intp), 1, True) is None
    few_keys = np.zeros((_compiled_grouped.BLAS_PRODUCTS // 100, 12))  # keys of many rows at d = 12: BLAS
    with _compiled.forced("auto"):
        assert (
            _compiled_grouped.summarize(few_keys, (None, None), np.zeros(few_keys.shape[0], dtype=np.intp), 1, False)
            is None
        )
    with _compiled.forced("compiled"):
        for other in (X.astype(np.float32), X[::2], X.astype(np.int64)):
            assert (
                _compiled_grouped.summarize(other, (None, None), codes[: other.shape[0]], uniques.size, False) is None
            )
        assert _kernel._compiled_groups(X, (None, None), codes, uniques.size, False, 64) is None  # a block size imposed


def test_large_inputs_take_the_compiled_path_by_default():
    """From MIN_VALUES values the compiled kernel runs without being forced."""
    rng = np.random.default_rng(14)
    keys, X = make(rng, _compiled.MIN_VALUES // 4, 4, 100)
    uniques, codes = _keys.factorize(keys)
    with _compiled.forced("auto"):
        assert _kernel._compiled_groups(X, (None, None), codes, uniques.size, False, None) is not None


@pytest.mark.parametrize("mode", ["numpy", "compiled"])
@pytest.mark.parametrize("nan_policy", ["omit", "propagate"])
def test_order_is_made_only_when_the_numpy_path_needs_it(mode, nan_policy):
    """summarize_groups with order=None sorts the codes itself on the numpy path: the same answer and rows dropped."""
    rng = np.random.default_rng(17)
    keys, X = make(rng, 800, 3, 9)
    X[5, 1] = np.nan
    uniques, codes = _keys.factorize(keys)
    order = _keys.sort_order(codes, uniques.size)
    with _compiled.forced(mode):
        given = _kernel.summarize_groups(X, (None, None), codes, uniques.size, order, False, nan_policy)
        made = _kernel.summarize_groups(X, (None, None), codes, uniques.size, None, False, nan_policy)
    assert given[-1] == made[-1] == (1 if nan_policy == "omit" else 0)
    for a, b in zip(given[:-1], made[:-1], strict=True):
        assert np.array_equal(a, b, equal_nan=True)


def test_extra_memory_is_per_key_not_per_row():
    """The kernel's own memory is a few numbers per key and pair of variables, never a copy of the rows."""
    rng = np.random.default_rng(15)
    keys, X = make(rng, 200_000, 8, 1000)
    uniques, codes = _keys.factorize(keys)
    with _compiled.forced("compiled"):
        _compiled_grouped.summarize(X, (None, None), codes, uniques.size, False)
        tracemalloc.start()
        _compiled_grouped.summarize(X, (None, None), codes, uniques.size, False)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    width = 2 + 8 + 36  # n, w2, c and the packed scatter of one key
    per_key = (2 * 8 + 3 * width + 8 * 8 + 4 * 8) * 8  # shift, three levels of sums, M2, means and errors
    assert peak <= 1000 * per_key + 2**16


def test_import_compiles_nothing():
    """`import gaussum` (and a small grouped summary) neither imports numba nor loads the grouped kernel."""
    code = textwrap.dedent(
        """
        import sys
        import gaussum
        gaussum.GroupedSummary.from_samples([1, 2, 1], [[1.0], [2.0], [3.0]])
        print("numba" in sys.modules, "gaussum._compiled_grouped" in sys.modules)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


@pytest.mark.skipif(sys.platform == "win32", reason="no fork() on Windows")
def test_process_pools_fork_after_the_kernel_ran():
    """A fork()ed pool works after the grouped kernel ran, and runs it in the children (no OpenMP layer)."""
    code = textwrap.dedent(
        """
        import multiprocessing, sys
        import numpy as np
        from gaussum import GroupedSummary, _compiled

        def work(seed):
            rng = np.random.default_rng(seed)
            with _compiled.forced("compiled"):
                g = GroupedSummary.from_samples(rng.integers(0, 50, 5000), rng.standard_normal((5000, 3)))
            return float(g.counts.sum())

        work(0)
        assert "gaussum._compiled_grouped" in sys.modules
        with multiprocessing.get_context("fork").Pool(2) as pool:
            print(pool.map(work, [1, 2, 3]))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert result.stdout.split("\n")[0] == "[5000.0, 5000.0, 5000.0]"


# -- properties ---------------------------------------------------------------------------------


@settings(max_examples=30)
@given(
    n_rows=st.integers(1, 400),
    d=st.integers(1, 5),
    n_keys=st.integers(1, 12),
    offset=st.sampled_from([0.0, -250.0, 1e6, 1e9]),
    weighted=st.booleans(),
    diagonal=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_compiled_equals_numpy(n_rows, d, n_keys, offset, weighted, diagonal, seed):
    """For any keys, width, offset and weights, the compiled path gives the numpy path's summaries."""
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, n_keys, n_rows)
    X = offset + rng.standard_normal((n_rows, d)) * rng.uniform(0.01, 100.0, d)
    if rng.uniform() < 0.3:
        X = np.round(X, 1)  # ties and repeated values
    weights = _kernel.row_weights(rng.uniform(0.0, 3.0, n_rows) if weighted else None, None)
    (n, mean, M2, w2, _err), _ = groups(keys, X, weights, diagonal)
    (n0, mean0, M20, w20, _err0), _ = groups(keys, X, weights, diagonal, mode="numpy")
    np.testing.assert_allclose(n, n0, rtol=64 * U, atol=0)
    np.testing.assert_allclose(w2, w20, rtol=64 * U, atol=0)
    spread = np.sqrt((M20 if diagonal else np.diagonal(M20, axis1=1, axis2=2)) / np.maximum(n0, 1e-300)[:, None])
    assert np.all(np.abs(mean - mean0) <= 64 * U * spread + 2 * U * np.abs(mean0))
    assert scatter_error(M2, M20) <= 256 * U
