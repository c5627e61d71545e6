"""Hostile and extreme input: every value the package builds is one it accepts, nothing impossible passes."""

from __future__ import annotations

import gc
import json
import pickle
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaussum import Float64OverflowError, GaussianSummary, GroupedSummary, _compiled
from gaussum.grouped import _restore as restore_grouped
from gaussum.summary import _restore as restore_plain


def round_trips(s) -> None:
    """`s` survives to_dict -> JSON -> from_dict and pickle exactly (the one definition of valid)."""
    cls = type(s)
    assert cls.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert pickle.loads(pickle.dumps(s)) == s


# -- values the package writes must be values it reads -------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: GaussianSummary.from_samples([[1, 1e-200], [0, 0]]),
        lambda: GaussianSummary.from_samples(np.ones((12, 2)), weights=np.full(12, 0.3)),
        lambda: GaussianSummary.from_samples([[0, 0]]) + GaussianSummary.from_samples([[1, 5.9e-295]]),
        lambda: GaussianSummary.merge_all(
            [GaussianSummary.from_samples([[0, 0]]), GaussianSummary.from_samples([[1, 5.9e-295]])]
        ),
        lambda: GroupedSummary.from_samples([1, 1], [[1, 1e-200], [0, 0]]),
        lambda: GroupedSummary.from_samples([1], [[0, 0]]) + GroupedSummary.from_samples([1], [[1, 5.9e-295]]),
    ],
    ids=[
        "underflowed-square", "weighted-constant", "merge-underflow", "merge_all-underflow", "grouped", "grouped-merge"
    ],
)
def test_reported_values_load_back(build):
    """The adversarial pass's examples: each result is accepted back by from_dict and pickle."""
    round_trips(build())


def test_constant_data_gives_exactly_zero_m2_weighted_or_not():
    """Constant columns have M2 exactly 0 on every path, weighted or not."""
    X = np.full((12, 3), 7.3)
    w = np.full(12, 0.3)
    for s in (
        GaussianSummary.from_samples(X),
        GaussianSummary.from_samples(X, weights=w),
        GaussianSummary.from_samples(X, aweights=w),
        GroupedSummary.from_samples(np.zeros(12, int), X, w)[0],
        sum(GaussianSummary.from_samples(X[i : i + 5], w[i : i + 5]) for i in range(0, 12, 5)),
    ):
        assert not s.M2.any(), s.M2


def test_cli_style_state_from_a_tiny_csv_reads_back(tmp_path):
    """The two-row CSV 'a,b / 1,1e-200 / 0,0' gives a summary that from_dict accepts."""
    X = np.loadtxt(["1,1e-200", "0,0"], delimiter=",")
    round_trips(GaussianSummary.from_samples(X))


# -- impossible subtraction ----------------------------------------------------------------------


def test_subtracting_what_was_never_added_raises():
    """Removing a part that cannot be in the whole is a ValueError, not a clipped zero."""
    rng = np.random.default_rng(0)
    a = GaussianSummary.from_samples(rng.normal(0, 1, (100, 2)))
    b = GaussianSummary.from_samples(rng.normal(10, 1, (10, 2)))
    with pytest.raises(ValueError, match="could not have been part of it"):
        a - b
    with pytest.raises(ValueError, match="not the same data"):
        GaussianSummary.from_samples([1.0, 2.0]) - GaussianSummary.from_samples([50.0, 60.0])
    g = GroupedSummary.from_samples([1] * 100, rng.normal(0, 1, 100))
    with pytest.raises(ValueError, match="could not have been part of it"):
        g - GroupedSummary.from_samples([1] * 10, rng.normal(10, 1, 10))


def test_rounding_sized_negatives_are_still_clipped():
    """A real part removed at a large offset leaves only rounding, which is clipped, not refused."""
    rng = np.random.default_rng(1)
    X = 1e9 + 1e-3 * rng.standard_normal((500, 2))
    whole = GaussianSummary.from_samples(X)
    for cut in (1, 250, 499):
        r = whole - GaussianSummary.from_samples(X[cut:])
        assert r.n == cut and (np.diagonal(r.M2) >= 0).all()
        round_trips(r)


# -- overflow and underflow on every path --------------------------------------------------------


def test_overflow_is_refused_on_every_path():
    """Scalar fast path, row weights, grouped scaling and merges: no inf or NaN ever comes back."""
    one = GaussianSummary.empty().update(1e200)  # one value has M2 = 0, not NaN
    assert one.M2 == 0 and one.mean == 1e200
    round_trips(one)
    with pytest.raises(Float64OverflowError):
        one.update(-1e200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy may warn on the way to the refusal
        with pytest.raises(Float64OverflowError):
            GaussianSummary.empty(2).update([1e200, 0.0]).update([-1e200, 0.0])
    # A finite new term that takes M2 past 1.8e308 (the square of delta alone does not
    # overflow): refused on the float path and on both one-row steps (it gave inf, then NaN).
    big_spread = 1.8e154
    with pytest.raises(Float64OverflowError):
        GaussianSummary.from_samples([0.0, big_spread]).update(1.9e154)
    for mode in ("numpy", "compiled"):
        for diagonal in (False, True):
            near = GaussianSummary.from_samples([[0.0], [big_spread]], diagonal=diagonal)
            with _compiled.forced(mode), warnings.catch_warnings(), pytest.raises(Float64OverflowError):
                warnings.simplefilter("ignore", RuntimeWarning)  # numpy's, on the way to the refusal
                near.update([1.9e154])
    s = GaussianSummary.empty(1).update([1.0], weights=1e308)
    with pytest.raises(Float64OverflowError):
        s.update([2.0], weights=1e308)
    g = GroupedSummary.from_samples([1, 2], [1.0, 2.0]).scaled(1e150)  # w2 is scaled by 1e300
    with pytest.raises(Float64OverflowError):
        g.scaled(1e150)
    big = GroupedSummary.from_samples([1], [1e200])
    with pytest.raises(Float64OverflowError):
        big + GroupedSummary.from_samples([1], [-1e200])
    with pytest.raises(Float64OverflowError, match="weights overflow"):
        GaussianSummary.from_samples(np.ones((2, 1)), weights=[1e308, 1e308])
    with pytest.raises(Float64OverflowError, match="aweights overflow"):
        GroupedSummary.from_samples([1, 1], np.ones((2, 1)), aweights=[1e200, 1e200])


def test_scaling_that_underflows_the_count_is_refused():
    """scaled(5e-324) would leave data with n = 0: refused."""
    for s in (GaussianSummary.from_samples([1.0, 3.0]), GroupedSummary.from_samples([1, 1], [1.0, 3.0])):
        with pytest.raises(ValueError, match="underflows"):
            s.scaled(5e-324)


# -- impossible covariances ----------------------------------------------------------------------


IMPOSSIBLE = [[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1]]


def test_non_positive_semidefinite_matrices_are_refused_everywhere():
    """An eigenvalue of -0.8 passes every 2 x 2 check but no data gives it."""
    with pytest.raises(ValueError, match=r"not positive semi-definite.*variables \[0, 1, 2\]"):
        GaussianSummary.from_moments(50, [0, 0, 0], IMPOSSIBLE)
    with pytest.raises(ValueError, match="not positive semi-definite"):
        GaussianSummary(50, [0, 0, 0], np.array(IMPOSSIBLE) * 49)
    data = GaussianSummary.from_samples(np.random.default_rng(2).standard_normal((10, 3))).to_dict()
    data["M2"] = (np.array(IMPOSSIBLE) * 9).tolist()
    with pytest.raises(ValueError, match="not positive semi-definite"):
        GaussianSummary.from_dict(data)
    with pytest.raises(ValueError, match="of key 'b': it is not positive semi-definite"):
        GroupedSummary(["a", "b"], [50, 50], np.zeros((2, 3)), [np.eye(3), np.array(IMPOSSIBLE)])


def test_the_check_names_only_the_variables_involved():
    """A bad 3 x 3 block inside a larger matrix is reported by its variables."""
    M2 = np.eye(6)
    M2[np.ix_([1, 3, 4], [1, 3, 4])] = IMPOSSIBLE
    with pytest.raises(ValueError, match=r"variables \[1, 3, 4\]"):
        GaussianSummary(50, np.zeros(6), M2)


def test_computed_merges_pass_the_check_at_d_256():
    """Merges of many shards at d = 256 stay semi-definite within the tolerance (they load back)."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((600, 256)) @ rng.standard_normal((256, 256)) * 1e-3 + 1e6
    parts = [GaussianSummary.from_samples(X[i : i + 37]) for i in range(0, 600, 37)]
    round_trips(GaussianSummary.merge_all(parts))
    round_trips(sum(parts))


# -- immutability and loading --------------------------------------------------------------------


def test_arrays_cannot_be_made_writeable_again():
    """setflags(write=True) fails on every array of a summary, so its value and hash cannot change."""
    s = GaussianSummary.from_samples([[1.0, 2.0], [3.0, 5.0]])
    t = s.update([0.0, 1.0])
    g = GroupedSummary.from_samples([1, 2], [[1.0, 2.0], [3.0, 5.0]])
    arrays = [s.mean, s.M2, t.mean, t.M2, g.means, g.M2, g.counts, g.w2, g.keys(), g[1].mean,
              pickle.loads(pickle.dumps(s)).mean, GaussianSummary(2, [0.0], [[1.0]]).M2]
    for array in arrays:
        with pytest.raises(ValueError):
            array.setflags(write=True)


def test_tampered_pickles_never_become_summaries():
    """Crafted payloads fail validation when unpickled; NaN summaries (propagate) still load."""
    with pytest.raises(ValueError):
        restore_plain(-5.0, np.array([np.nan, 2]), np.array([[-1, 7], [0, -2]]))
    with pytest.raises(ValueError):
        restore_plain(3.0, np.array([0.0, 0.0]), np.array([[1.0, 5.0], [5.0, 1.0]]))
    with pytest.raises(ValueError):
        restore_grouped(np.array([2, 1]), np.array([1.0, np.inf]), np.zeros(2), np.zeros(2))
    nan = GaussianSummary.from_samples([[1.0, np.nan], [2.0, 3.0]], nan_policy="propagate")
    back = pickle.loads(pickle.dumps(nan))
    assert back.n == 2 and np.isnan(back.mean[1])


# -- from_moments --------------------------------------------------------------------------------


def test_from_moments_never_drops_a_covariance():
    """n = 0 or n <= ddof with a real (finite, non-zero) covariance is refused; NaN is accepted."""
    with pytest.raises(ValueError, match="no degrees of freedom"):
        GaussianSummary.from_moments(0, [5, 5], [1, 1])
    with pytest.raises(ValueError, match="no degrees of freedom"):
        GaussianSummary.from_moments(0.5, [5, 5], [[1, 0], [0, 1]], ddof=1)
    with pytest.raises(ValueError, match="n == 0"):
        GaussianSummary.from_moments(0, [5, 5], [0, 0])
    assert GaussianSummary.from_moments(1, [5, 5], [np.nan, np.nan]).M2.tolist() == [0.0, 0.0]
    with pytest.raises(TypeError, match="ddof must be a real number, got '1'"):
        GaussianSummary.from_moments(10, [0.0], [1.0], ddof="1")


# -- keys ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keys, message",
    [
        (["a", "a\x00", "a"], "NUL"),
        (np.array(["a", "a\x00", "a"], dtype=object), "NUL"),
        ([1, "1", 1], "one kind"),
        ([True, 1, 0], "one kind"),
    ],
    ids=["nul-list", "nul-object", "int-str", "bool-int"],
)
def test_distinct_keys_are_never_conflated(keys, message):
    """Keys numpy would make equal are refused instead of silently merged."""
    with pytest.raises(ValueError, match=message):
        GroupedSummary.from_samples(keys, np.ones((3, 2)))


def test_from_dict_checks_declared_sizes_before_allocating():
    """A huge declared key dtype allocates nothing of its size; too many variables or keys refused."""
    data = GroupedSummary.from_samples(["a", "b"], [[1.0, 2.0], [3.0, 4.0]]).to_dict()
    data["key_dtype"] = "<U300000000"
    gc.collect()  # measure from_dict, not the collection of earlier tests' garbage
    tracemalloc.start()
    g = GroupedSummary.from_dict(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1_000_000 and g.keys().tolist() == ["a", "b"]
    wide = GaussianSummary.empty(3).to_dict()
    with pytest.raises(ValueError, match="more than max_d=2"):
        GaussianSummary.from_dict(wide, max_d=2)
    with pytest.raises(ValueError, match="more than max_groups=1"):
        GroupedSummary.from_dict(GroupedSummary.from_samples([1, 2], [1.0, 2.0]).to_dict(), max_groups=1)
    with pytest.raises(ValueError, match="more than max_d=1"):
        GroupedSummary.from_dict(GroupedSummary.from_samples([1], [[1.0, 2.0]]).to_dict(), max_d=1)


def test_deeply_nested_json_is_a_value_error_not_a_recursion_error():
    """Nesting far past a summary's three levels is refused before any recursion."""
    deep: list = [1.0]
    for _ in range(50_000):
        deep = [deep]
    data = GaussianSummary.empty(1).to_dict()
    for field in ("mean", "M2"):
        bad = dict(data, **{field: deep})
        with pytest.raises(ValueError, match=r"nested more than|must have shape"):
            GaussianSummary.from_dict(bad)
    grouped = GroupedSummary.from_samples([1], [[1.0]]).to_dict()
    with pytest.raises(ValueError, match=r"nested more than|must have shape"):
        GroupedSummary.from_dict(dict(grouped, means=deep))


def test_mis_sized_fields_are_refused_before_arrays_are_built():
    """A long M2 list of the wrong shape is refused from its structure alone (a bounded cost)."""
    data = GaussianSummary.empty(2).to_dict()
    data["M2"] = [[0.0] * 2] * 2_000_000
    gc.collect()
    tracemalloc.start()
    with pytest.raises(ValueError, match=r"M2 must have shape"):
        GaussianSummary.from_dict(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 40_000_000  # a list of references at most, never 4e6 Python floats -> float64


# -- small things --------------------------------------------------------------------------------


def test_update_with_zero_rows_returns_the_summary_unchanged():
    """s.update(np.empty((0, 3))) is s, plain and grouped (the scalar form too)."""
    s = GaussianSummary.from_samples(np.ones((4, 3)))
    assert s.update(np.empty((0, 3))) is s
    assert GaussianSummary.from_samples([1.0, 2.0]).update(np.empty(0)).n == 2
    g = GroupedSummary.from_samples([1], [[1.0, 2.0, 3.0]])
    assert g.update(np.empty(0, int), np.empty((0, 3))) == g


def test_masked_rows_follow_nan_policy():
    """Masked entries count as missing: raise, omit or propagate like NaN."""
    X = np.ma.MaskedArray([[1.0, 2.0], [3.0, 99.0], [5.0, 7.0]], mask=[[0, 0], [0, 1], [0, 0]])
    with pytest.raises(ValueError, match="row 1"):
        GaussianSummary.from_samples(X)
    omitted = GaussianSummary.from_samples(X, nan_policy="omit")
    assert omitted == GaussianSummary.from_samples([[1.0, 2.0], [5.0, 7.0]])
    assert np.isnan(GaussianSummary.from_samples(X, nan_policy="propagate").mean[1])
    g = GroupedSummary.from_samples([1, 1, 2], X, nan_policy="omit")
    assert g[1].n == 1 and g[2].n == 1


# -- the property: every public path, any finite input -------------------------------------------

MAGNITUDES = st.sampled_from([0.0, 1e-310, 5.9e-295, 1e-200, 1e-3, 1.0, 1e6, 1e150, 1e300])


@st.composite
def extreme_rows(draw):
    """Rows mixing subnormal, tiny, ordinary and near-overflow magnitudes, with ties and zeros."""
    n = draw(st.integers(1, 12))
    d = draw(st.integers(1, 4))
    scale = np.array([draw(MAGNITUDES) for _ in range(d)])
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    X = rng.choice([-1.0, 0.0, 0.5, 1.0, 3.0], size=(n, d)) * scale
    if draw(st.booleans()):
        X = X + draw(st.sampled_from([1.0, 1e9, -1e300]))
    return X


def built_values(X, data):
    """One value from each public construction path on X (those that X does not overflow)."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    n = len(X)
    w = rng.uniform(0.1, 3.0, n)
    cut = data.draw(st.integers(0, n))
    keys = rng.integers(0, 3, n)
    makers = [
        lambda: GaussianSummary.from_samples(X),
        lambda: GaussianSummary.from_samples(X, diagonal=True),
        lambda: GaussianSummary.from_samples(X, weights=w),
        lambda: GaussianSummary.from_samples(X, aweights=w),
        lambda: GaussianSummary.from_samples(X[:cut]) + GaussianSummary.from_samples(X[cut:]),
        lambda: GaussianSummary.merge_all([GaussianSummary.from_samples(X[i : i + 1]) for i in range(n)]),
        lambda: (
            GaussianSummary.from_samples(X) - GaussianSummary.from_samples(X[cut:])
            if cut < n
            else GaussianSummary.from_samples(X)
        ),
        lambda: GaussianSummary.from_samples(X[:cut]).update(X[cut:]) if cut else GaussianSummary.from_samples(X),
        lambda: _row_by_row(X),
        lambda: GaussianSummary.from_samples(X, weights=w).scaled(0.5),
        lambda: GroupedSummary.from_samples(keys, X, w),
        lambda: GroupedSummary.from_samples(keys[:cut], X[:cut]) + GroupedSummary.from_samples(keys[cut:], X[cut:]),
        lambda: GroupedSummary.from_samples(keys, X).total(),
    ]
    for make in makers:
        # numpy may warn about an overflow on the way to gaussum's refusal; a value that is
        # returned must have come without any warning.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                value = make()
            except Float64OverflowError:
                continue  # refusing is allowed; returning an unloadable value is not
        assert not caught, [str(w.message) for w in caught]
        yield makers.index(make), value


def _row_by_row(X):
    s = GaussianSummary.empty(X.shape[1])
    for row in X:
        s = s.update(row)
    return s


@settings(max_examples=300, deadline=None)
@given(X=extreme_rows(), data=st.data())
def test_every_value_built_from_finite_input_loads_back(X, data):
    """from_dict(to_dict(s)) == s and pickle round trips, for every public path and any finite input."""
    for path, s in built_values(X, data):
        try:
            round_trips(s)
        except ValueError as exc:
            raise AssertionError(f"path {path} built a value that does not load back: {exc}") from None


def test_removal_leaving_rounding_residue_is_a_scatter_matrix():
    """Removing all rows but one, where the variables' scales differ by 1e9: every remaining
    variance is cancellation residue, which is zeroed with its covariances (a single row has no
    scatter), instead of a matrix of pairwise-clipped residues that is not positive
    semi-definite and that from_dict would refuse (found by the property above)."""
    X = np.array(
        [
            [1e-3, -1e6, 0.0, 0.0],
            [3e-3, 5e5, -1e-3, 0.0],
            [0.0, -1e6, 3e-3, 0.0],
            [3e-3, 0.0, -1e-3, 0.0],
            [3e-3, 5e5, 3e-3, 0.0],
            [3e-3, 1e6, 3e-3, 0.0],
            [3e-3, 0.0, 0.0, 0.0],
            [1e-3, 0.0, 1e-3, 0.0],
            [5e-4, 3e6, 5e-4, -0.0],
        ]
    )
    for cut in range(1, 9):
        rest = GaussianSummary.from_samples(X) - GaussianSummary.from_samples(X[cut:])
        assert GaussianSummary.from_dict(rest.to_dict()) == rest
        exact = np.cov(X[:cut], rowvar=False, ddof=0) * cut
        squares = np.diag(np.cov(X, rowvar=False, ddof=0)) * 9  # the magnitudes the removal cancels
        scale = np.sqrt(np.outer(squares, squares))
        assert np.all(np.abs(rest.M2 - exact) <= 1e-12 * scale + 1e-300)
    single = GaussianSummary.from_samples(X) - GaussianSummary.from_samples(X[1:])
    assert np.array_equal(single.M2, np.zeros((4, 4))) and np.allclose(single.mean, X[0], rtol=1e-9, atol=1e-9)


def test_removal_keeps_a_small_real_remainder_far_from_zero():
    """Two rows left of eleven at 1e6 with spread 4e-4 (found by the subtraction property): the
    remainder's variance, 1e-10 here, is far above the removal's rounding and is kept, matching
    the two rows' own summary (only residue within that rounding is zeroed)."""
    for seed in range(30):
        X = 1e6 + 4e-4 * np.random.default_rng(seed).standard_normal((11, 2))
        a, b = GaussianSummary.from_samples(X[:2]), GaussianSummary.from_samples(X[2:])
        rest = (a + b) - b
        scale = np.max(np.abs((a + b).M2))
        assert np.all(np.abs(rest.M2 - a.M2) <= 1e-9 * scale), seed
        assert np.all(np.diagonal(rest.M2) > 0)
