"""The compiled kernels (gaussum[fast]): the numpy path's contract, lazy loading, determinism."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from exact import exact_moments, relative_frobenius
from gaussum import GaussianSummary, _combine, _compiled, _kernel
from gaussum.errors import Float64OverflowError, NonFiniteError

numba = pytest.importorskip("numba", reason="needs numba, not installed: pip install 'gaussum[fast]'")

U = np.finfo(np.float64).eps / 2


def both(X, weights=(None, None), diagonal=False, nan_policy="raise", block_rows=None):
    """`summarize_rows` on the numpy path and on the compiled path."""
    results = []
    for mode in ("numpy", "compiled"):
        with _compiled.forced(mode):
            results.append(_kernel.summarize_rows(X, weights, diagonal, nan_policy, block_rows))
    return results


def outcome(call):
    """``("ok", result)`` or ``(type, message, row)`` of an exception: what the two paths must share."""
    try:
        return ("ok", call())
    except ValueError as exc:
        return (type(exc), str(exc), getattr(exc, "row", None))


def compiled_ran(X, weights=(None, None), diagonal=False):
    """True when the compiled kernel, not the numpy fallback, produced the summary of X."""
    with _compiled.forced("compiled"):
        return _kernel._summarize_compiled(X, weights, diagonal, "raise", 1024, "X") is not None


@pytest.mark.parametrize("d", [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16])
@pytest.mark.parametrize("diagonal", [False, True])
def test_compiled_rows_match_exact_sums_at_any_width(d, diagonal):
    """Covariance within 1.8e-15 of the exact (Fraction) value at offset 1e9, for every d <= 16:
    each d below 8 has a centring loop of its own (`_centre_fixed_rows`), and past 8 the chunk
    buffer's rows are padded."""
    rng = np.random.default_rng(d)
    X = 1e9 + rng.standard_normal((400, d)) * rng.uniform(0.1, 10.0, d)
    assert compiled_ran(X, diagonal=diagonal)
    _, mean, M2 = exact_moments(X)
    with _compiled.forced("compiled"):
        n, m, S, w2, _, dropped = _kernel.summarize_rows(X, (None, None), diagonal, "raise", block_rows=150)
    assert (n, w2, dropped) == (400.0, 400.0, 0)
    exact = np.array([[float(v) for v in row] for row in M2])
    if diagonal:
        assert np.max(np.abs(S - np.diagonal(exact)) / np.diagonal(exact)) <= 1.8e-15
    else:
        assert relative_frobenius(S, M2) <= 1.8e-15
        assert np.array_equal(S, S.T)
    assert np.max(np.abs(m - np.array([float(v) for v in mean])) / 1e9) <= 2 * U


@pytest.mark.parametrize("kind", ["fweights", "aweights", "both"])
def test_compiled_weights_give_the_numpy_answer(kind):
    """Frequency and reliability weights: the same n and w2, and M2 within rounding of the numpy path."""
    rng = np.random.default_rng(3)
    X = 5e6 + rng.standard_normal((3000, 6))
    f = rng.integers(0, 4, 3000).astype(float) if kind != "aweights" else None
    a = rng.uniform(0.05, 3.0, 3000) if kind != "fweights" else None
    weights = _kernel.row_weights(f, a)
    assert compiled_ran(X, weights)
    (n0, m0, S0, q0, _, _), (n1, m1, S1, q1, _, _) = both(X, weights, block_rows=700)
    assert n1 == pytest.approx(n0, rel=4 * U) and q1 == pytest.approx(q0, rel=4 * U)
    assert np.allclose(m1, m0, rtol=4 * U, atol=0)
    assert relative_frobenius(S1, S0) <= 4e-15


def test_sorted_data_is_recentred():
    """Rows sorted by value (the first rows untypical of the rest) still give the exact covariance."""
    rng = np.random.default_rng(5)
    X = np.sort(1e6 + rng.standard_normal((20_000, 2)), axis=0)
    _, _, M2 = exact_moments(X)
    with _compiled.forced("compiled"):
        _, _, S, _, _, _ = _kernel.summarize_rows(X, (None, None), False, "raise")
    assert relative_frobenius(S, M2) <= 1.8e-15


@pytest.mark.parametrize("nan_policy", ["raise", "omit", "propagate"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 1, 1500, 2999])
def test_non_finite_rows_follow_the_numpy_path_exactly(nan_policy, bad, where):
    """Errors (type, message, row index) and dropped-row counts are the numpy path's, and so are the
    results to rounding: the fallback is the numpy path, whose blocks the compiled `centre_and_sum`
    centres where numba is allowed (its own column sums, so M2 may differ in the last bits)."""
    rng = np.random.default_rng(7)
    X = 1e3 + rng.standard_normal((3000, 4))
    X[where, 2] = bad
    X[where + 1 if where < 2999 else 0, 0] = bad  # two bad rows, one maybe in the first block
    paths = []
    for mode in ("numpy", "compiled"):
        with _compiled.forced(mode):
            paths.append(outcome(lambda: _kernel.summarize_rows(X, (None, None), False, nan_policy, 1000)))
    if paths[0][0] == "ok":
        (n0, m0, S0, w0, e0, k0), (n1, m1, S1, w1, e1, k1) = paths[0][1], paths[1][1]
        assert (n0, w0, k0) == (n1, w1, k1)
        assert np.array_equal(np.isnan(m0), np.isnan(m1)) and np.array_equal(np.isnan(S0), np.isnan(S1))
        finite = np.isfinite(m0)
        assert np.all(np.abs(m1[finite] - m0[finite]) <= np.spacing(np.abs(m0[finite])))
        assert np.array_equal(m0[~finite], m1[~finite], equal_nan=True)
        same = finite & (m0 == m1)  # then both errors carry the exact mean's next bits, the numpy
        # path's to the rounding of its BLAS column sums of X - shift (about u std)
        spread = np.sqrt(np.diagonal(S0)[same] / len(X))
        assert np.all(np.abs(e1[same] - e0[same]) <= 8 * U * spread)
        entries = np.isfinite(S0)
        assert np.all(np.abs(S1[entries] - S0[entries]) <= 8 * U * np.abs(S0).max(where=entries, initial=0.0))
        assert np.array_equal(S0[~entries], S1[~entries], equal_nan=True)
    else:
        assert paths[0] == paths[1]
        assert paths[0][0] is NonFiniteError


def test_overflow_is_refused_with_the_numpy_path_message():
    """Finite rows whose squares overflow float64 raise the same Float64OverflowError, same row."""
    X = np.ones((2000, 3))
    X[1234] = [1e200, -1e200, 3.0]
    paths = []
    for mode in ("numpy", "compiled"):
        with _compiled.forced(mode):
            paths.append(outcome(lambda: GaussianSummary.from_samples(X)))
    assert paths[0] == paths[1]
    assert paths[0][0] is Float64OverflowError and paths[0][2] == 1234


def test_other_layouts_and_dtypes_keep_the_numpy_path():
    """Fortran-ordered, strided and float32 rows are not copied for the kernel: the numpy path runs."""
    X = np.random.default_rng(1).standard_normal((500, 4))
    for data in (np.asfortranarray(X), X[::2], X.astype(np.float32)):
        assert not compiled_ran(data)
        with _compiled.forced("compiled"):
            s = GaussianSummary.from_samples(data)
        assert np.allclose(s.covariance(), np.cov(np.asarray(data, dtype=np.float64), rowvar=False))


def test_wide_data_keeps_blas():
    """Past MAX_D variables the BLAS path runs even when the compiled kernels are forced."""
    assert not _compiled.use_rows(10**7, _compiled.MAX_D + 1)
    with _compiled.forced("compiled"):
        assert _compiled.use_rows(10, _compiled.MAX_D)
        assert not _compiled.use_rows(10, _compiled.MAX_D + 1)


def test_blocks_are_merged_in_an_order_the_threads_do_not_change():
    """The same bits with 1 thread as with every thread: blocks are merged in a fixed order."""
    X = 1e6 + np.random.default_rng(9).standard_normal((50_000, 5))
    kernels = _compiled.kernels()
    threads = numba.get_num_threads()
    results = []
    try:
        for count in sorted({1, 2, threads}):
            numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))
            out = (np.empty(17), np.empty((17, 2, 5)), np.empty((17, 15)))
            kernels.block_sums(X, np.empty(0), X[0], np.zeros(5), 3000, False, np.empty(0, np.intp), *out)
            results.append(out)
    finally:
        numba.set_num_threads(threads)
    for other in results[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(results[0], other, strict=False))


@pytest.mark.parametrize("diagonal", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_row_step_gives_the_bits_of_add_row(diagonal, weighted):
    """The compiled one-row step gives exactly the numpy step's n, mean, M2 and w2."""
    rng = np.random.default_rng(11)
    X = 1e6 + rng.standard_normal((200, 8))
    weights = rng.uniform(0.1, 3.0, 200) if weighted else np.ones(200)
    s0 = s1 = GaussianSummary.empty(8, diagonal=diagonal)
    with _compiled.forced("numpy"):
        for row, w in zip(X, weights, strict=False):
            s0 = s0.update(row, weights=w if weighted else None)
    with _compiled.forced("compiled"):
        for row, w in zip(X, weights, strict=False):
            s1 = s1.update(row, weights=w if weighted else None)
    assert s0 == s1


def test_row_step_refuses_what_add_row_refuses():
    """A non-finite or overflowing row goes to the row kernel (same errors) on the compiled path."""
    s = GaussianSummary.from_samples(np.random.default_rng(2).standard_normal((10, 3)))
    with _compiled.forced("compiled"):
        assert _compiled.row_update(s.n, s.mean, s.M2, s.mean_error, s.M2_error, np.array([1.0, np.nan, 2.0])) is None
        assert _combine.add_row(s.n, s.mean, s.M2, s.w2, s.mean_error, np.array([1e300, 0.0, 0.0]), 1.0, 1.0) is None
        with pytest.raises(NonFiniteError):
            s.update([1.0, np.inf, 2.0])
        with pytest.raises(Float64OverflowError):
            s.update([1e300, 0.0, 0.0])
        assert s.update([1.0, np.nan, 2.0], nan_policy="omit") == s


def test_row_step_values_are_truly_read_only():
    """The compiled step's arrays cannot be made writeable again (their base is read-only)."""
    with _compiled.forced("compiled"):
        s = GaussianSummary.from_samples([[1.0, 2.0], [3.0, 5.0]]).update([4.0, 4.0])
    for array in (s.mean, s.M2):
        assert not array.flags.writeable
        with pytest.raises(ValueError):
            array.setflags(write=True)
    assert s == GaussianSummary.from_samples([[1.0, 2.0], [3.0, 5.0], [4.0, 4.0]]) or s.isclose(
        GaussianSummary.from_samples([[1.0, 2.0], [3.0, 5.0], [4.0, 4.0]]), rtol=1e-15
    )


def _pair_parts(rng, d, diagonal, scalar):
    """Two summaries of random data for a pair merge: offsets, spreads, sizes and ties vary."""
    offset = rng.choice([0.0, -3.0, 1e9, 1.7e9])
    rows_a, rows_b = (int(k) for k in rng.integers(1, 7, 2))
    A = offset + rng.standard_normal(rows_a if scalar else (rows_a, d)) * rng.choice([1.0, 1e-3])
    B = offset + rng.standard_normal(rows_b if scalar else (rows_b, d))
    if rng.random() < 0.25:  # equal counts: the tie rule picks the side to step from
        B = A[::-1] + rng.choice([0.0, 1.0])
    fa, fb = (rng.uniform(0.5, 3.0, len(X)) if rng.random() < 0.3 else None for X in (A, B))
    a, b = (GaussianSummary.from_samples(X, f, diagonal=diagonal) for X, f in ((A, fa), (B, fb)))
    return A, B, a, b


@pytest.mark.parametrize("layout", ["full", "diagonal", "scalar"])
def test_compiled_pair_merge_gives_the_bits_of_the_numpy_rule(layout):
    """``a + b`` by the compiled kernel equals the numpy rule's to the bit (mean_error too), both
    ways round, and matches np.cov of the concatenated rows."""
    rng = np.random.default_rng(["full", "diagonal", "scalar"].index(layout))
    for _ in range(300):
        d = 1 if layout == "scalar" else int(rng.integers(1, 20))
        A, B, a, b = _pair_parts(rng, d, layout == "diagonal", layout == "scalar")
        with _compiled.forced("compiled"):
            fast = (a + b, b + a)
            assert fast[0]._fields is not None and not fast[0]._fields.flags.writeable
        with _compiled.forced("numpy"):
            slow = (a + b, b + a)
        assert fast == slow
        assert fast[0] == fast[1]
        assert fast[0].mean.shape == a.mean.shape and fast[0].M2.shape == a.M2.shape
        if a.n == len(A) and b.n == len(B):  # unweighted: against the exact (Fraction) M2
            X = np.concatenate([A, B]).reshape(len(A) + len(B), d)
            exact = np.array([[float(v) for v in row] for row in exact_moments(X)[2]])
            got = np.atleast_1d(fast[0].M2)
            if got.ndim == 1:
                assert np.all(np.abs(got - np.diagonal(exact)) <= 1.8e-15 * np.diagonal(exact) + 1e-300)
            else:
                assert relative_frobenius(got, exact_moments(X)[2]) <= 1.8e-15


def test_compiled_pair_merge_is_declined_where_the_numpy_rule_decides():
    """Empty sides, overflow and NaN fields take the numpy rule: the same values and errors."""
    s = GaussianSummary.from_samples(np.random.default_rng(3).standard_normal((10, 3)))
    up = GaussianSummary(2.0, [1e300, 0.0, 0.0], np.zeros((3, 3)))
    down = GaussianSummary(2.0, [-1e300, 0.0, 0.0], np.zeros((3, 3)))
    with _compiled.forced("compiled"):
        assert s + GaussianSummary.empty(3) == s and GaussianSummary.empty(3) + s == s
        assert _combine.merge_packed(up.n, up._fields, down.n, down._fields, 3) is None
        with pytest.raises(Float64OverflowError):
            up + down
        nan = GaussianSummary.from_samples([[np.nan, 1.0, 2.0], [0.0, 1.0, 2.0]], nan_policy="propagate")
        assert np.isnan((s + nan).mean[0]) and np.isnan((s + nan).M2[0, 0])


def test_compiled_pair_merge_keeps_names_and_their_alignment():
    """Named summaries merge by name on the compiled path as on the numpy path."""
    rng = np.random.default_rng(5)
    a = GaussianSummary.from_samples(rng.standard_normal((6, 3)), names=["x", "y", "z"])
    b = GaussianSummary.from_samples(rng.standard_normal((4, 3)), names=["z", "x", "y"])
    plain = GaussianSummary.from_samples(rng.standard_normal((5, 3)))
    for left, right in ((a, b), (b, a), (plain, a), (a, plain)):
        with _compiled.forced("compiled"):
            fast = left + right
        with _compiled.forced("numpy"):
            slow = left + right
        assert fast == slow and fast.names == slow.names


def test_uncached_jit_where_no_cache_can_be_written(monkeypatch):
    """Where numba refuses cache=True (no writable cache directory), the kernels compile uncached."""
    from gaussum import _compiled_kernels

    real = numba.njit
    asked = []

    def njit(**options):
        asked.append(options["cache"])
        if options["cache"]:
            raise RuntimeError("cannot cache function 'f': no locator available for file 'x.py'")
        return real(**options)

    monkeypatch.setattr(numba, "njit", njit)

    def twice(x):
        return 2.0 * x

    assert _compiled_kernels._jit()(twice)(1.5) == 3.0
    assert asked == [True, False]


def test_import_and_small_inputs_never_load_numba():
    """``import gaussum``, small summaries and short streams leave numba unimported; large inputs load it."""
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        import gaussum
        from gaussum import GaussianSummary, _compiled
        assert "numba" not in sys.modules
        X = np.random.default_rng(0).standard_normal((1000, 4))
        s = GaussianSummary.from_samples(X)
        for row in X[: _compiled.SMALL_STEPS_AFTER // 2]:
            s = s.update(row)
        assert "numba" not in sys.modules, "loaded for a small input"
        GaussianSummary.from_samples(np.random.default_rng(0).standard_normal((_compiled.MIN_VALUES // 4, 4)))
        assert "numba" in sys.modules
        """
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "GAUSSUM_KERNEL"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_long_streams_switch_to_the_compiled_step():
    """After SMALL_STEPS_AFTER one-row updates the auto mode uses the compiled step, with the same bits."""
    assert _compiled.kernels() is not None
    X = np.random.default_rng(4).standard_normal((300, 3))
    s = GaussianSummary.empty(3)
    with _compiled.forced("auto"):
        assert _compiled.use_small_steps()  # loaded already, so nothing is left to repay
        for row in X:
            s = s.update(row)
    with _compiled.forced("numpy"):
        t = GaussianSummary.empty(3)
        for row in X:
            t = t.update(row)
    assert s == t


def test_forcing_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode must be one of"):
        with _compiled.forced("fast"):
            pass


@pytest.mark.parametrize(("d", "diagonal"), [(1, False), (4, False), (7, True), (8, False)])
def test_centred_means_are_correctly_rounded_from_the_kernels_own_pass(monkeypatch, d, diagonal):
    """Data centred on zero: the kernel's two-sum column sums give each mean within 1 ulp of the
    exact mean (Fraction of the float64 rows), with no second read of the data (`ExactSums`)."""
    from fractions import Fraction

    X = np.random.default_rng(d).standard_normal((30_000, d)) * np.geomspace(1e-3, 1e3, d)
    X[:, 0] += 1e-4  # a mean near zero but not at it
    reads = []
    monkeypatch.setattr(_kernel.ExactSums, "add", lambda self, *args: reads.append(1))
    with _compiled.forced("compiled"):
        s = GaussianSummary.from_samples(X, diagonal=diagonal)
    assert reads == []
    for j in range(d):
        exact = sum(map(Fraction, X[:, j].tolist())) / len(X)
        assert abs(Fraction(float(s.mean[j])) - exact) <= Fraction(float(np.spacing(abs(float(exact)))))
        double = Fraction(float(s.mean[j])) + Fraction(float(s.mean_error[j]))
        assert abs(double - exact) <= abs(exact) * Fraction(2.0**-90)


def _raw_chunk_sum(column: np.ndarray, shift: float) -> tuple[float, float, float]:
    """`block_sums` on one chunk of one variable, its raw sum asked for: ``(hi, lo, size)``, with
    `size` the bound on ``sum |x|`` the kernel takes from the chunk's squares about `shift`."""
    kernels = _compiled.kernels()
    X = np.ascontiguousarray(column[:, None])
    coarse, fine = np.array([shift]), np.zeros(1)
    n, c, s = np.empty(1), np.empty((1, 2, 1)), np.empty((1, 1))
    kernels.block_sums(X, np.empty(0), coarse, fine, len(X), False, np.array([0], dtype=np.intp), n, c, s)
    size = 2.0 * (np.sqrt(len(X) * s[0, 0]) + len(X) * abs(shift))
    return float(c[0, 0, 0]), float(c[0, 1, 0]), float(size)


@pytest.mark.parametrize("shifted", [False, True], ids=["from the centred chunk", "down X's column"])
@pytest.mark.parametrize("exponent", [-200, -150, -100, -10, 0, 10, 100, 290, 306])
def test_chunk_sums_are_exact_to_their_stated_bound(exponent, shifted):
    """The kernel's raw chunk sums (integer heads, float tails: `_split_row`, `_split_column`)
    against the exact sum (Fraction) of chunks of many magnitudes, with the kernel's loose bound
    on sum |x|: ``hi + lo`` within ``4 (k u)**2 size``. Magnitudes where that bound leaves the
    range of the split (squares underflowing, sigma overflowing) take Sum2, whose bound is
    smaller. A shifted variable is read from X itself, an unshifted one from its centred copy."""
    from fractions import Fraction

    rng = np.random.default_rng(exponent + 400)
    for _ in range(40):
        k = int(rng.integers(1, _compiled.kernels().CHUNK + 1))
        a = rng.standard_normal(k) * np.exp2(rng.integers(-20, 20, k)) + rng.normal() * 2.0**10
        a = a / np.abs(a).max() * 10.0**exponent
        with np.errstate(all="ignore"):
            hi, lo, size = _raw_chunk_sum(a, float(a[0]) / 3 if shifted else 0.0)
        exact = sum(map(Fraction, a.tolist()))
        magnitude = sum(abs(Fraction(x)) for x in a.tolist())
        # The kernel's squares round: its size is the test's to a relative k u, well within 1%.
        bound = max(magnitude, Fraction(size) * Fraction(101, 100)) if np.isfinite(size) else magnitude
        assert abs(Fraction(hi) + Fraction(lo) - exact) <= 4 * (k * Fraction(U)) ** 2 * bound


@pytest.mark.parametrize("shifted", [False, True], ids=["from the centred chunk", "down X's column"])
def test_chunk_sums_of_nan_or_inf_are_not_finite(shifted):
    for bad in (np.nan, np.inf):
        with np.errstate(all="ignore"):
            hi, lo, _ = _raw_chunk_sum(np.array([1.0, bad, 2.0]), 0.5 if shifted else 0.0)
        assert not np.isfinite(hi + lo)


@pytest.mark.parametrize("mode", ["numpy", "compiled"])
def test_means_of_values_whose_squares_underflow_are_correctly_rounded(mode):
    """Values so small that their squares underflow: the spread taken from them is then too small
    to judge the mean far from zero (it was shifted, 11 ulps off on the numpy path and 2 on the
    compiled one), so such variables take exact sums; every mean, of the whole and of each
    group, is within an ulp of the exact one (Fraction)."""
    from fractions import Fraction

    from gaussum import GroupedSummary

    rng = np.random.default_rng(8)
    X = np.ascontiguousarray(rng.standard_normal((20_000, 3)) * np.array([1e-163, 1e-155, 1e-120]))
    X[:, 0] += 3e-166
    keys = np.arange(len(X)) % 2_000  # groups of 10 rows: the grouped kernel's segments
    with _compiled.forced(mode):
        s = GaussianSummary.from_samples(X)
        g = GroupedSummary.from_samples(keys, X)
    for rows, mean in [(X, s.mean)] + [(X[keys == key], g[key].mean) for key in range(0, 2_000, 97)]:
        for j in range(3):
            exact = sum(map(Fraction, rows[:, j].tolist())) / len(rows)
            assert abs(Fraction(float(mean[j])) - exact) <= Fraction(float(np.spacing(abs(float(exact)))))


def test_a_sum_too_close_to_zero_for_the_bound_is_taken_again_exactly():
    """Rows and their negatives: the exact mean is 0, below any bound on the kernel's sum, so the
    mean is taken again from error-free sums: exactly 0, with no error term."""
    half = 1e6 + np.random.default_rng(3).standard_normal((20_000, 3))
    X = np.concatenate([half, -half])
    with _compiled.forced("compiled"):
        s = GaussianSummary.from_samples(X)
    assert (s.mean == 0).all() and (s.mean_error == 0).all()
    np.testing.assert_allclose(s.covariance(), np.cov(X, rowvar=False), rtol=1e-12)


@pytest.mark.parametrize("d", [12, _compiled.MAX_D + 8])
@pytest.mark.parametrize(("offset", "diagonal"), [(0.0, False), (3.0, False), (0.5, True), (1e9, False)])
def test_means_a_few_spreads_from_zero_come_from_the_kernels_own_pass(monkeypatch, d, offset, diagonal):
    """The compiled kernel (d = 12) and, past its width, the numpy path centring its blocks with
    `centre_and_sum` take raw sums error-free in their one pass: every mean is within 1 ulp of the
    exact mean (Fraction), for data near zero and a few spreads from it too (shifted, but flagged
    by `_near_zero`), with no second read of the data (`ExactSums`). The compensated mean
    ``mean + mean_error`` is exact to u**2 for the variable near zero (its raw sum is error-free)
    and to a few u of the spread for every variable (the compiled kernel takes raw sums only of
    the variables that may be near zero: the others' sums about the shift suffice)."""
    from fractions import Fraction

    rng = np.random.default_rng(11)
    X = offset + rng.standard_normal((3_000, d)) * np.geomspace(1e-2, 1e2, d)
    X[:, 0] = rng.standard_normal(3_000) * 1e-3 + 1e-6  # a mean near zero but not at it
    reads = []
    monkeypatch.setattr(_kernel.ExactSums, "add", lambda self, *args: reads.append(1))
    with _compiled.forced("compiled"):
        n, mean, M2, _, mean_error, _ = _kernel.summarize_rows(X, (None, None), diagonal, "raise", 700)
    assert reads == [] and n == len(X)
    for j in range(d):
        exact = sum(map(Fraction, X[:, j].tolist())) / len(X)
        assert abs(Fraction(float(mean[j])) - exact) <= Fraction(float(np.spacing(abs(float(exact)))))
        double = Fraction(float(mean[j])) + Fraction(float(mean_error[j]))
        assert abs(double - exact) <= 4 * Fraction(U) * Fraction(float(np.std(X[:, j])))
        if j == 0:
            assert abs(double - exact) <= abs(exact) * Fraction(2.0**-90)
    _, _, exact_M2 = exact_moments(X[:, :6])
    if diagonal:
        assert np.max(np.abs(M2[:6] - np.diagonal(exact_M2)) / np.diagonal(exact_M2)) <= 1e-14
    else:
        assert relative_frobenius(M2[:6, :6], exact_M2) <= 1e-14


def test_wide_data_summing_to_zero_is_taken_again_exactly():
    """The centring pass's bound cannot settle a sum that is exactly zero: it is taken again."""
    half = 1e6 + np.random.default_rng(4).standard_normal((6_000, _compiled.MAX_D + 4))
    X = np.concatenate([half, -half])
    with _compiled.forced("compiled"):
        s = GaussianSummary.from_samples(X)
    assert (s.mean == 0).all() and (s.mean_error == 0).all()
    np.testing.assert_allclose(s.covariance(), np.cov(X, rowvar=False), rtol=1e-12)


def test_the_kept_centring_buffer_serves_threads_and_calls_apart():
    """Each thread borrows its own buffer: summaries built at once in threads, and one after another
    with blocks of other sizes, are the summaries built alone."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(12)
    inputs = [rng.standard_normal((rows, _compiled.MAX_D + 3)) + 5.0 for rows in (9_000, 20_000, 3_001, 15_000)]
    with _compiled.forced("compiled"):
        alone = [GaussianSummary.from_samples(X) for X in inputs]
        with ThreadPoolExecutor(4) as pool:
            together = list(pool.map(GaussianSummary.from_samples, inputs * 3))
    assert together == alone * 3
    for X, s in zip(inputs, alone, strict=True):
        assert relative_frobenius(s.covariance(), np.cov(X, rowvar=False)) <= 1e-14


def test_compiled_pair_merge_refuses_an_overflowing_count_or_w2():
    """Counts or sums of squared weights that overflow in ``a + b`` are refused on both paths."""
    a = GaussianSummary.from_samples([1.0, 2.0], aweights=[7e153, 7e153])  # w2 = 9.8e307
    b = GaussianSummary.from_samples([3.0, 5.0], aweights=[7e153, 7e153])
    heavy = GaussianSummary(1e308, [1.0, 2.0], np.eye(2)), GaussianSummary(1e308, [3.0, 2.0], np.eye(2))
    for mode in ("compiled", "numpy"):
        with _compiled.forced(mode):
            with pytest.raises(Float64OverflowError):
                a + b
            with pytest.raises(Float64OverflowError):
                heavy[0] + heavy[1]


def test_raw_sums_are_not_settled_by_squares_that_underflowed():
    """`_raw_sums_settled` bounds the sum of magnitudes by the squares (Cauchy-Schwarz); squares
    that underflowed undercount it, so a variable of such tiny values and tiny shift is never
    settled by them (its mean is taken again), while one whose shift dominates still is."""
    n = 1000.0
    squares = np.array([1e-310, 1e-310])  # deviations near 1e-157: their squares are subnormal
    coarse = np.array([1e-150, 5.0])
    shift = (coarse, np.zeros(2))
    hi, lo = n * coarse * 1.5, np.zeros(2)
    settled = _kernel._raw_sums_settled(hi, lo, squares, n, shift, 1000, 1, 256)
    assert settled.tolist() == [False, True]
