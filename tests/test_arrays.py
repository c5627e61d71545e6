"""Arrays summarised where they live (gaussum._arrays): torch on the CPU and array-api-strict's devices.

Every result is compared with the numpy path on the same rows converted to numpy (a different
code path: the numpy kernel, with its own blocks and BLAS), to float64 rounding scaled to the
data; the float32 path of a device without float64 is compared with the float64 summary of the
same float32 values. array-api-strict refuses numpy-only calls, and arrays of two devices in one
operation, so a test on its ``device1`` fails if anything but the O(d^2) results leaves the device.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

from strategies import device_batches

torch = pytest.importorskip("torch", reason="needs torch (CPU): pip install -e '.[test-arrays]'")
xps = pytest.importorskip("array_api_strict", reason="needs array-api-strict: pip install -e '.[test-arrays]'")
pytest.importorskip("array_api_compat", reason="needs array-api-compat: pip install -e '.[array-api]'")

from exact import reference_covariance, relative_error  # noqa: E402
from gaussum import GaussianSummary, GroupedSummary, _arrays  # noqa: E402
from gaussum.errors import Float64OverflowError, NonFiniteError  # noqa: E402

U = np.finfo(np.float64).eps / 2
DEVICE1 = xps.Device("device1")
NO_FLOAT64 = xps.Device("no_float64")
BACKENDS = ["torch", "strict", "strict-device1"]


def on(backend: str, X: np.ndarray):
    """X as an array of `backend` (a copy; torch keeps the dtype)."""
    if backend == "torch":
        return torch.asarray(np.array(X))
    if backend == "strict":
        return xps.asarray(X)
    return xps.asarray(X, device={"strict-device1": DEVICE1, "strict-no-float64": NO_FLOAT64}[backend])


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few hundred rows, so that small data runs through many blocks and the padding."""
    monkeypatch.setattr(_arrays, "_CPU_BLOCK_BYTES", 2**12)
    monkeypatch.setattr(_arrays, "_DEVICE_BLOCK_BYTES", 2**12)


def assert_same(got: GaussianSummary, want: GaussianSummary, ulps: float = 64) -> None:
    """Equal to float64 rounding: n; each mean to u |mean| + ulps u std; M2 to ulps u sqrt(M2_ii M2_jj)."""
    assert got.mean.shape == want.mean.shape and got.M2.shape == want.M2.shape
    np.testing.assert_allclose(got.n, want.n, rtol=4 * U)
    np.testing.assert_allclose(got.w2, want.w2, rtol=4 * U)
    squares = want.M2 if want.M2.ndim < 2 else np.diagonal(want.M2)
    std = np.sqrt(squares / want.n) if want.n else 0.0
    assert np.all(np.abs(got.mean - want.mean) <= 4 * U * np.abs(want.mean) + ulps * U * std + 1e-300)
    scale = squares if want.M2.ndim < 2 else np.sqrt(np.outer(squares, squares))
    assert np.all(np.abs(got.M2 - want.M2) <= ulps * U * scale + 1e-300), np.max(np.abs(got.M2 - want.M2) / scale)


def relative_cov_error(got: GaussianSummary, want: GaussianSummary) -> float:
    """max |C - C_ref| / sqrt(C_ii C_jj) over the entries of the covariance."""
    C, R = got.covariance(), want.covariance()
    d = np.diagonal(R) if R.ndim == 2 else R
    scale = np.sqrt(np.outer(d, d)) if R.ndim == 2 else d
    return float(np.max(np.abs(C - R) / scale))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("offset", [0.0, 1e3, 1e6, 1e9])
@pytest.mark.parametrize("shape", [(1, 3), (7, 1), (1500, 5), (700, 24)])
def test_rows_match_the_numpy_path(backend, offset, shape, small_blocks):
    """from_samples of a device array equals the numpy path on the same rows, at every offset."""
    rng = np.random.default_rng(shape[0] * 31 + shape[1])
    X = offset + rng.standard_normal(shape) * rng.uniform(0.5, 2.0, shape[1])
    got = GaussianSummary.from_samples(on(backend, X))
    assert_same(got, GaussianSummary.from_samples(X))
    assert isinstance(got.mean, np.ndarray) and got.mean.dtype == np.float64 and not got.M2.flags.writeable


@pytest.mark.parametrize("offset", [1e9, 1.7e9])
def test_coarsely_quantised_rows_are_summed_exactly(offset):
    """1e5 x 4 rows at 1e9 or 1.7e9 with spread 1e-3 (values multiples of 1.2e-4 of the spread):
    the covariance within 16 u of the exact one (`exact.reference_covariance`). Centred
    on the shift's fine part too, torch's fused multiply-adds summed the rounded squares with a
    bias: 3.1e-15 to 3.8e-15 (and 2.9e-15 to 3.6e-15 at d = 32) on 1e6 rows."""
    X = offset + 1e-3 * np.random.default_rng(int(offset) % 1000).standard_normal((100_000, 4))
    reference, _, _ = reference_covariance(X)
    got = GaussianSummary.from_samples(on("torch", X))
    assert relative_error(got.covariance(), reference) <= 1.8e-15


def test_rows_spreading_wider_after_the_first_block_are_recentred():
    """As `test_compensation`'s numpy test: torch rows at 1e9 whose first 65,536 rows have a
    spread of 1e-7, the rest of 1, within 16 u (3.6e-15 without the re-centring)."""
    rng = np.random.default_rng(5)
    X = 1e9 + rng.standard_normal((200_000, 4))
    X[:65_536] = 1e9 + 1e-7 * rng.standard_normal((65_536, 4))
    reference, _, _ = reference_covariance(X)
    assert relative_error(GaussianSummary.from_samples(on("torch", X)).covariance(), reference) <= 1.8e-15


def test_means_near_zero_are_within_rounding_of_the_spread():
    """A variable centred on zero (1e5 standard normal rows) beside one at 1e9: the device path
    has no error-free column sum, so its mean is not correctly rounded as the numpy path's is (the
    README says so), but it is within 8 u of the standard deviation of the exact mean."""
    rng = np.random.default_rng(21)
    X = np.column_stack([rng.standard_normal(100_000), 1e9 + 1e-3 * rng.standard_normal(100_000)])
    _, hi, lo = reference_covariance(X)
    got = GaussianSummary.from_samples(on("torch", X))
    assert abs((got.mean[0] - hi[0]) - lo[0]) <= 8 * U * X[:, 0].std()
    assert abs((got.mean[1] - hi[1]) - lo[1]) <= np.spacing(hi[1])


def test_names_are_kept():
    """names= labels a device array's summary as it labels a numpy one."""
    X = np.random.default_rng(2).standard_normal((50, 2))
    got = GaussianSummary.from_samples(torch.asarray(X), names=["a", "b"])
    assert got.names == ("a", "b")
    assert_same(got, GaussianSummary.from_samples(X))


@pytest.mark.parametrize("backend", BACKENDS)
def test_scalar_diagonal_and_integer_data(backend, small_blocks):
    """1-D data, diagonal summaries and integer dtypes take the numpy path's shapes and values."""
    rng = np.random.default_rng(3)
    x = 1e6 + rng.standard_normal(900)
    assert_same(GaussianSummary.from_samples(on(backend, x)), GaussianSummary.from_samples(x))
    X = rng.standard_normal((900, 4)) + 1e3
    assert_same(
        GaussianSummary.from_samples(on(backend, X), diagonal=True), GaussianSummary.from_samples(X, diagonal=True)
    )
    K = rng.integers(-1000, 1000, (900, 3))
    assert_same(GaussianSummary.from_samples(on(backend, K)), GaussianSummary.from_samples(K))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("weights_on_device", [False, True])
def test_weights_and_aweights(backend, weights_on_device, small_blocks):
    """Frequency and reliability weights (host or device) give the numpy path's n, w2, mean and M2."""
    rng = np.random.default_rng(4)
    X = 1e6 + rng.standard_normal((1300, 3))
    f, a = rng.integers(0, 4, 1300).astype(float), rng.uniform(0.0, 2.0, 1300)
    put = (lambda v: on(backend, v)) if weights_on_device else (lambda v: v)
    for kwargs in ({"weights": f}, {"aweights": a}, {"weights": f, "aweights": a}):
        got = GaussianSummary.from_samples(on(backend, X), **{k: put(v) for k, v in kwargs.items()})
        assert_same(got, GaussianSummary.from_samples(X, **kwargs))


def test_bad_weights_are_named(small_blocks):
    """Device weights are checked on the device, with the numpy path's messages."""
    X = on("strict-device1", np.ones((10, 2)))
    w = np.ones(10)
    w[7] = -1.0
    with pytest.raises(ValueError, match=re.escape("weights must be finite and non-negative; weights[7] is -1.0")):
        GaussianSummary.from_samples(X, on("strict-device1", w))
    with pytest.raises(ValueError, match=re.escape("aweights must have shape (10,) to match the rows, got (9,)")):
        GaussianSummary.from_samples(X, aweights=on("strict-device1", np.ones(9)))
    with pytest.raises(ValueError, match=re.escape("weights must be finite and non-negative; weights[7] is -1.0")):
        GaussianSummary.from_samples(X, w)
    with pytest.raises(Float64OverflowError, match="the weights overflow float64 when summed"):
        GaussianSummary.from_samples(X, on("strict-device1", np.full(10, 1e308)))


def test_bad_shapes_and_dtypes():
    """Shapes and dtypes the numpy path refuses are refused with its wording."""
    with pytest.raises(
        ValueError, match=re.escape("X must have shape (N,) or (N, d) with rows as observations, got shape (2, 2, 2)")
    ):
        GaussianSummary.from_samples(torch.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match=re.escape("X must have at least one column, got shape (3, 0)")):
        GaussianSummary.from_samples(torch.zeros((3, 0)))
    with pytest.raises(ValueError, match="X must be real, got dtype"):
        GaussianSummary.from_samples(torch.zeros((3, 2), dtype=torch.complex128))
    with pytest.raises(ValueError, match="nan_policy must be one of"):
        GaussianSummary.from_samples(torch.zeros((3, 2)), nan_policy="drop")


def with_nan(rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    X = 1e3 + rng.standard_normal((1200, 3))
    bad = [5, 600, 601, 1199]
    X[5, 1] = np.nan
    X[600, 0] = np.inf
    X[601, 2] = -np.inf
    X[1199, :] = np.nan
    return X, bad


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_policies(backend, small_blocks):
    """raise names the numpy path's row; omit drops as many rows with the same result; propagate's NaN match."""
    X, bad = with_nan(np.random.default_rng(5))
    with pytest.raises(NonFiniteError, match=re.escape("X has a non-finite value in row 5: [")) as info:
        GaussianSummary.from_samples(on(backend, X))
    assert (info.value.row, info.value.column) == (5, 1)
    got, dropped = GaussianSummary._from_samples_counted(on(backend, X), nan_policy="omit")
    want, want_dropped = GaussianSummary._from_samples_counted(X, nan_policy="omit")
    assert dropped == want_dropped == len(bad)
    assert_same(got, want)
    w = np.random.default_rng(6).uniform(0.5, 1.5, 1200)
    got, dropped = GaussianSummary._from_samples_counted(on(backend, X), on(backend, w), nan_policy="omit")
    assert dropped == len(bad)
    assert_same(got, GaussianSummary.from_samples(X, w, nan_policy="omit"))
    propagated = GaussianSummary.from_samples(on(backend, X), nan_policy="propagate")
    reference = GaussianSummary.from_samples(X, nan_policy="propagate")
    np.testing.assert_array_equal(np.isnan(propagated.mean), np.isnan(reference.mean))
    np.testing.assert_array_equal(np.isnan(propagated.M2), np.isnan(reference.M2))


def test_nan_in_a_weightless_row_is_still_refused(small_blocks):
    """A NaN row of weight 0 raises, as in the numpy path (0 * NaN is NaN there too)."""
    X = np.ones((600, 2))
    X[400, 0] = np.nan
    w = np.ones(600)
    w[400] = 0.0
    with pytest.raises(NonFiniteError, match="row 400"):
        GaussianSummary.from_samples(on("strict-device1", X), w)
    with pytest.raises(NonFiniteError, match="row 400"):
        GaussianSummary.from_samples(X, w)


def test_overflow_is_refused():
    """Finite rows whose squares overflow float64 raise, naming the row of largest magnitude."""
    X = np.ones((50, 2))
    X[17] = [1e200, -1e200]
    with pytest.raises(Float64OverflowError, match="largest \\|value\\| is 1e\\+200") as info:
        GaussianSummary.from_samples(on("strict-device1", X))
    assert info.value.row == 17


@pytest.mark.parametrize("backend", ["torch", "strict-device1"])
def test_float32_input_is_accumulated_in_float64(backend, small_blocks):
    """float32 (and torch's float16, bfloat16) rows give the numpy path's float64 summary of the same values."""
    rng = np.random.default_rng(7)
    X = (1e3 + rng.standard_normal((1100, 4))).astype(np.float32)
    assert_same(GaussianSummary.from_samples(on(backend, X)), GaussianSummary.from_samples(X))
    if backend == "torch":  # the standard has no float16: array-api-strict refuses it
        H = rng.standard_normal((1100, 2)).astype(np.float16)
        assert_same(GaussianSummary.from_samples(on(backend, H)), GaussianSummary.from_samples(H))
        B = torch.asarray(H).to(torch.bfloat16)
        assert_same(GaussianSummary.from_samples(B), GaussianSummary.from_samples(B.to(torch.float64).numpy()))


@pytest.mark.parametrize("offset", [0.0, 1e3, 1e6])
def test_float32_without_float64_on_the_device(offset, small_blocks):
    """On a device without float64, compensated float32 sums about a float32 two-part shift.

    The covariance is within 1e-6 of the float64 summary of the same float32 values (measured
    about 2e-8), at offsets where float32 np.cov (no shift) has lost every digit.
    """
    rng = np.random.default_rng(8)
    X = (offset + rng.standard_normal((5000, 3)) @ np.array([[1.0, 0.5, 0.0], [0, 1, 0.3], [0, 0, 2]])).astype(
        np.float32
    )
    data = on("strict-no-float64", X)
    assert not _arrays._has_float64(xps, NO_FLOAT64)
    got = GaussianSummary.from_samples(data)
    want = GaussianSummary.from_samples(X)
    assert got.n == 5000
    assert relative_cov_error(got, want) < 1e-6
    std = np.sqrt(np.diagonal(want.covariance()))
    assert np.all(np.abs(got.mean - want.mean) < 1e-6 * std)
    w = rng.uniform(0.0, 2.0, 5000).astype(np.float32)
    weighted = GaussianSummary.from_samples(data, aweights=on("strict-no-float64", w))
    assert relative_cov_error(weighted, GaussianSummary.from_samples(X, aweights=w)) < 1e-6
    np.testing.assert_allclose(weighted.n, w.astype(np.float64).sum(), rtol=1e-12)
    if offset >= 1e6:
        naive = np.cov(X, rowvar=False, dtype=np.float32)
        assert np.max(np.abs(naive - want.covariance()) / np.sqrt(np.outer(std**2, std**2))) > 1e-3


@pytest.mark.parametrize("backend", BACKENDS)
def test_update_with_a_device_batch(backend, small_blocks):
    """update with device rows (a batch, or one row) equals update with the same numpy rows."""
    rng = np.random.default_rng(9)
    X = 1e6 + rng.standard_normal((800, 3))
    s = GaussianSummary.from_samples(X[:300])
    assert_same(s.update(on(backend, X[300:])), s.update(X[300:]))
    assert_same(s.update(on(backend, X[300])), s.update(X[300]))
    w = rng.uniform(0.5, 2.0, 500)
    assert_same(s.update(on(backend, X[300:]), on(backend, w)), s.update(X[300:], w))
    x = GaussianSummary.from_samples(X[:10, 0])
    assert_same(x.update(on(backend, X[10:, 0])), x.update(X[10:, 0]))
    with pytest.raises(ValueError, match=re.escape("x must have shape (3,) or (k, 3)")):
        s.update(on(backend, X[:5, :2]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_grouped_with_device_keys_and_rows(backend, small_blocks):
    """GroupedSummary.from_samples of device keys and rows equals the numpy path, key by key."""
    rng = np.random.default_rng(10)
    keys = rng.integers(0, 6, 2000)
    X = 1e6 + rng.standard_normal((2000, 3))
    want = GroupedSummary.from_samples(keys, X)
    got = GroupedSummary.from_samples(on(backend, keys), on(backend, X))
    assert got.keys().tolist() == want.keys().tolist()
    for k in want.keys().tolist():
        assert_same(got[k], want[k])
    w = rng.uniform(0.0, 2.0, 2000)
    got = GroupedSummary.from_samples(keys, on(backend, X), aweights=on(backend, w), diagonal=True)
    want = GroupedSummary.from_samples(keys, X, aweights=w, diagonal=True)
    for k in want.keys().tolist():
        assert_same(got[k], want[k])
    labels = np.array(["b", "a"])[keys % 2]
    got = GroupedSummary.from_samples(labels, on(backend, X[:, 0]))
    want = GroupedSummary.from_samples(labels, X[:, 0])
    assert got.keys().tolist() == ["a", "b"]
    for k in ("a", "b"):
        assert_same(got[k], want[k])


def test_grouped_nan_policies(small_blocks):
    """Grouped rows: raise names the first bad row of X; omit drops the numpy path's rows."""
    X, bad = with_nan(np.random.default_rng(11))
    keys = np.arange(1200) % 4
    with pytest.raises(NonFiniteError, match="row 5"):
        GroupedSummary.from_samples(keys, on("strict-device1", X))
    got, dropped = GroupedSummary._from_samples_counted(keys, on("strict-device1", X), nan_policy="omit")
    want, want_dropped = GroupedSummary._from_samples_counted(keys, X, nan_policy="omit")
    assert dropped == want_dropped == len(bad)
    for k in range(4):
        assert_same(got[k], want[k])
    with pytest.raises(ValueError, match=re.escape("keys must have shape (1200,) to match the rows of X, got (3,)")):
        GroupedSummary.from_samples([1, 2, 3], on("strict-device1", X))


def test_only_the_summary_leaves_the_device(monkeypatch, small_blocks):
    """On array-api-strict's device1 every transfer to the host holds at most d^2 + O(d) values.

    device1 refuses numpy conversion and mixing with CPU arrays, so the run itself shows that
    the blocks, weights and shifts stay there; the transfers are counted at `_arrays._to_host`.
    """
    sizes: list[int] = []
    to_host = _arrays._to_host

    def counted(a):
        out = to_host(a)
        sizes.append(out.size)
        return out

    monkeypatch.setattr(_arrays, "_to_host", counted)
    rng = np.random.default_rng(12)
    N, d = 5000, 6
    X = 1e6 + rng.standard_normal((N, d))
    X[[10, 4000], 2] = np.nan
    data, w = on("strict-device1", X), on("strict-device1", rng.uniform(0.5, 1.5, N))
    for kwargs in ({}, {"weights": w}, {"aweights": w, "diagonal": True}):
        got = GaussianSummary.from_samples(data, nan_policy="omit", **kwargs)
        host = {k: (to_host(v) if k != "diagonal" else v) for k, v in kwargs.items()}
        assert_same(got, GaussianSummary.from_samples(X, nan_policy="omit", **host))
    GaussianSummary.from_samples(data, nan_policy="propagate")
    keys = on("strict-device1", (np.arange(N) % 3).astype(np.int64))
    GroupedSummary.from_samples(keys, data, nan_policy="omit")
    assert sizes and max(sizes) <= d * d + 4 * d, sizes
    assert sum(sizes) < N


def test_numpy_and_other_inputs_keep_their_path():
    """numpy arrays, lists and scalars are not array-API device arrays: today's path, untouched."""
    for value in (np.ones((3, 2)), np.ma.ones((3, 2)), [[1.0, 2.0]], (1.0,), 1.0, np.float64(1.0)):
        assert not _arrays.is_device_array(value)
    assert _arrays.is_device_array(torch.ones(2)) and _arrays.is_device_array(xps.ones(2))


def test_missing_array_api_compat_names_the_extra(monkeypatch):
    """Without array-api-compat a torch tensor is refused with the extra that installs it."""
    monkeypatch.setitem(sys.modules, "array_api_compat", None)
    with pytest.raises(ModuleNotFoundError, match=re.escape("pip install 'gaussum[array-api]'")):
        GaussianSummary.from_samples(torch.ones((3, 2)))


@settings(max_examples=25)
@given(device_batches())
def test_property_device_equals_numpy(case):
    """Any dataset of the repo's strategy, with weights, on device1 equals the numpy path."""
    X, w = case
    got = GaussianSummary.from_samples(on("strict-device1", X), None if w is None else on("strict-device1", w))
    assert_same(got, GaussianSummary.from_samples(X, w), ulps=256)


def readme_block() -> str:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Arrays on accelerators", 1)[1].split("\n## ", 1)[0]
    return re.search(r"^```py\n(.*?)^```", section, re.S | re.M).group(1)


def test_readme_example_runs():
    """The README's "Arrays on accelerators" example runs and its commented results hold."""
    namespace: dict = {}
    exec(readme_block(), namespace)
    X, s = namespace["X"], namespace["s"]
    assert_same(s, GaussianSummary.from_samples(X.cpu().numpy()))
    assert namespace["t"].n == s.n + 1000


def test_benchmark_runs_and_checks_itself(capsys):
    """benchmarks/bench_arrays.py runs every case (checked against its reference) at tiny sizes."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_arrays

    assert bench_arrays.main(["--device", "cpu", "--divisor", "200000", "--repeats", "1"]) == 0
    table = capsys.readouterr().out
    assert table.count("| gaussum from_samples |") == 4 and "float32 accumulation" in table
