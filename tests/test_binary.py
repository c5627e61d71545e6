"""Tests for the binary form (gaussum._binary through to_bytes / from_bytes): every value the
package builds comes back equal, and every truncated, extended, changed or hand-made bad input is
refused with one line, before anything large is allocated."""

from __future__ import annotations

import itertools
import pickle
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gaussum import GaussianSummary, GroupedSummary
from gaussum._binary import MAGIC, tuple_keys
from strategies import datasets, splits


def sealed(payload: bytes | bytearray) -> bytes:
    """A payload with a correct checksum: what a careful forger (or a buggy writer) would send."""
    return bytes(payload) + struct.pack("<I", zlib.crc32(bytes(payload)))


def header(kind: int, flags: int, keys: int, d: int, g: int) -> bytes:
    return struct.pack("<4sBBBBIIQ", MAGIC, 1, kind, flags, keys, d, 0, g)


def same(a, b) -> bool:
    """Equal values, and arrays that are read-only after the trip."""
    arrays = (b.mean, b.M2) if isinstance(b, GaussianSummary) else (b.means, b.M2, b.counts)
    return a == b and type(a) is type(b) and not any(x.flags.writeable for x in arrays)


@given(X=datasets(max_d=5), weighted=st.booleans(), diagonal=st.booleans(), named=st.booleans(), data=st.data())
def test_every_summary_the_package_builds_loads_back_equal(X, weighted, diagonal, named, data):
    """from_samples (any shape, weights, names, diagonal) and merges of its parts come back equal."""
    rng = np.random.default_rng(0)
    a = rng.uniform(0.1, 3.0, X.shape[0]) if weighted else None
    names = [f"v{i}" for i in range(X.shape[1])] if named and X.ndim == 2 else None
    whole = GaussianSummary.from_samples(X, aweights=a, names=names, diagonal=diagonal)
    assert same(whole, GaussianSummary.from_bytes(whole.to_bytes()))
    cuts = data.draw(splits(X.shape[0]))
    parts = [GaussianSummary.from_samples(X[i:j], names=names, diagonal=diagonal) for i, j in itertools.pairwise(cuts)]
    merged = GaussianSummary.merge_all(parts)
    assert same(merged, GaussianSummary.from_bytes(merged.to_bytes()))


KEYS = {
    "int": lambda rng, n: rng.integers(-3, 4, n),
    "uint8": lambda rng, n: rng.integers(0, 5, n).astype(np.uint8),
    "float": lambda rng, n: rng.choice([-0.5, 0.0, 2.25], n),
    "bool": lambda rng, n: rng.integers(0, 2, n).astype(bool),
    "str": lambda rng, n: rng.choice(["", "a", "é ü", "longer key"], n),
    "datetime": lambda rng, n: np.datetime64("2024-01-01", "ns") + rng.integers(0, 3, n).astype("timedelta64[h]"),
    "timedelta": lambda rng, n: rng.integers(0, 3, n).astype("timedelta64[s]"),
}


@given(X=datasets(min_rows=0, max_d=4), kind=st.sampled_from(sorted(KEYS)), diagonal=st.booleans(),
       weighted=st.booleans(), seed=st.integers(0, 2**16))
def test_every_grouped_summary_loads_back_equal(X, kind, diagonal, weighted, seed):
    """Keys of every kind to_dict writes, scalar or d-variate data, weights, empty summaries."""
    rng = np.random.default_rng(seed)
    keys = KEYS[kind](rng, X.shape[0])
    a = rng.uniform(0.1, 3.0, X.shape[0]) if weighted else None
    if X.shape[0] == 0:
        g = GroupedSummary.empty(None if X.ndim == 1 else X.shape[1], diagonal=diagonal, key_dtype=keys.dtype)
    else:
        g = GroupedSummary.from_samples(keys, X, aweights=a, diagonal=diagonal)
    assert same(g, GroupedSummary.from_bytes(g.to_bytes()))


def test_special_values_load_back():
    """NaN keys (dropna=False), tuple keys, names, NaN fields (nan_policy='propagate'), the empty summary."""
    X = np.array([[1.0, 2.0], [3.0, 5.0], [4.0, 4.0], [np.nan, 1.0]])
    values = [
        GroupedSummary.from_samples([1.0, np.nan, 2.0, 1.0], X[:, 1], dropna=False),
        GroupedSummary(tuple_keys([np.array([1, 1, 2]), np.array(["a", "b", "a"])]), [1, 2, 3], X[:3],
                       np.zeros((3, 2, 2)), names=["x", "y"]),
        GroupedSummary.from_samples([0, 0, 1, 1], X, nan_policy="propagate"),
        GroupedSummary.empty(2, names=["p", "q"], key_dtype="U"),
    ]
    for g in values:
        back = GroupedSummary.from_bytes(g.to_bytes())
        assert back.keys().tolist() == g.keys().tolist() or np.array_equal(back.keys(), g.keys(), equal_nan=True)
        assert np.array_equal(back.means, g.means, equal_nan=True) and back.names == g.names
        assert np.array_equal(back.M2, g.M2, equal_nan=True) and np.array_equal(back.counts, g.counts)
    propagated = GaussianSummary.from_samples(X, nan_policy="propagate")
    back = GaussianSummary.from_bytes(propagated.to_bytes())
    assert np.isnan(back.mean[0]) and np.array_equal(back.M2, propagated.M2, equal_nan=True)
    for s in (GaussianSummary.empty(3), GaussianSummary.empty(None), GaussianSummary.from_samples(X[:3, 0])):
        assert same(s, GaussianSummary.from_bytes(s.to_bytes()))


def test_far_from_zero_the_mean_errors_come_along():
    """Each mean's rounding error (the compensated mean) survives, so merging after the trip loses nothing."""
    rng = np.random.default_rng(3)
    X = 1e6 + 1e-3 * rng.standard_normal((4_000, 3))
    parts = [GaussianSummary.from_samples(X[i:i + 500]) for i in range(0, 4_000, 500)]
    assert any(p.mean_error.any() for p in parts)
    travelled = [GaussianSummary.from_bytes(p.to_bytes()) for p in parts]
    assert all(np.array_equal(p.mean_error, t.mean_error) for p, t in zip(parts, travelled, strict=True))
    assert GaussianSummary.merge_all(travelled) == GaussianSummary.merge_all(parts)


def test_much_smaller_than_json_and_pickle_at_large_d():
    """At d = 64 the packed upper triangle is about half of pickle's bytes and a fifth of JSON's."""
    import json

    s = GaussianSummary.from_samples(np.random.default_rng(1).standard_normal((200, 64)))
    size = len(s.to_bytes())
    # The header, n (w2 = n is not stored), the means, the triangle, the means' errors, the checksum.
    assert size == 24 + 8 * (1 + 64 + 64 * 65 // 2 + 64 * bool(s.mean_error.any())) + 4
    assert size < 0.6 * len(pickle.dumps(s)) and size < 0.25 * len(json.dumps(s.to_dict()))


@pytest.mark.parametrize("build", [
    lambda: GaussianSummary.from_samples(np.random.default_rng(2).standard_normal((50, 3)) + 1e3, names=list("abc")),
    lambda: GroupedSummary.from_samples(["b", "a", "b", "c"], np.arange(8.0).reshape(4, 2)),
    lambda: GroupedSummary(tuple_keys([np.array([1, 2]), np.array(["x", "y"])]), [1, 1], [0.5, 1.5], [0.0, 0.0]),
], ids=["plain", "grouped", "tuple keys"])
def test_every_truncation_extension_and_changed_byte_is_refused(build):
    """Every prefix, an extra byte, and each byte changed in turn: a one-line ValueError each time."""
    value = build()
    kind = type(value)
    data = value.to_bytes()
    for size in range(len(data)):
        with pytest.raises(ValueError, match="not a valid gaussum binary summary") as caught:
            kind.from_bytes(data[:size])
        assert "\n" not in str(caught.value)
    with pytest.raises(ValueError, match=r"unexpected bytes|checksum"):
        kind.from_bytes(data + b"\x00")
    for i in range(len(data)):
        changed = bytearray(data)
        changed[i] ^= 0x10
        with pytest.raises(ValueError, match="not a valid gaussum binary summary"):
            kind.from_bytes(bytes(changed))


def test_wrong_kind_version_and_type_are_refused():
    """A grouped summary is not a plain one; an unknown version or a str is refused by name."""
    plain = GaussianSummary.from_samples([[1.0, 2.0], [2.0, 0.0]]).to_bytes()
    grouped = GroupedSummary.from_samples([1, 2], [[1.0, 2.0], [2.0, 0.0]]).to_bytes()
    with pytest.raises(ValueError, match="it holds a GroupedSummary, not a GaussianSummary"):
        GaussianSummary.from_bytes(grouped)
    with pytest.raises(ValueError, match="it holds a GaussianSummary, not a GroupedSummary"):
        GroupedSummary.from_bytes(plain)
    with pytest.raises(ValueError, match="unsupported binary format version 2"):
        GaussianSummary.from_bytes(sealed(plain[:4] + b"\x02" + plain[5:-4]))
    with pytest.raises(ValueError, match=r"starts with b'\{\"fo'"):
        GaussianSummary.from_bytes(b'{"format": "gaussum.GaussianSummary"}')
    with pytest.raises(TypeError, match="expects bytes"):
        GaussianSummary.from_bytes("GSUM")


def test_field_values_are_validated_like_construction():
    """Well-formed bytes of impossible values are refused with the record's own messages."""
    s = GaussianSummary.from_samples(np.array([[1.0, 2.0], [3.0, 1.0], [0.0, 0.0]]))
    body = bytearray(s.to_bytes()[:-4])
    negative = body.copy()
    negative[24:32] = struct.pack("<d", -3.0)  # n
    with pytest.raises(ValueError, match="n must be finite and non-negative"):
        GaussianSummary.from_bytes(sealed(negative))
    # M2's packed upper triangle follows n and the 2 means: M2[0, 1] larger than sqrt(M2_00 M2_11).
    impossible = body.copy()
    impossible[24 + 8 * 4 : 24 + 8 * 5] = struct.pack("<d", 1e3)
    with pytest.raises(ValueError, match="not a scatter matrix"):
        GaussianSummary.from_bytes(sealed(impossible))
    unsorted = GroupedSummary.from_samples([1, 2], [[1.0], [2.0]]).to_bytes()[:-4]
    swapped = unsorted[:-16] + unsorted[-8:] + unsorted[-16:-8]  # the int64 keys 2, 1
    with pytest.raises(ValueError, match="keys must be distinct and sorted"):
        GroupedSummary.from_bytes(sealed(swapped))
    with pytest.raises(ValueError, match="unknown flags"):
        GaussianSummary.from_bytes(sealed(body[:6] + b"\x80" + body[7:]))


def test_declared_sizes_never_allocate_before_they_are_checked():
    """A 32-byte input declaring 65,536 variables or 10**8 groups is refused at once, allocating nothing big."""
    forged = [
        (GaussianSummary, sealed(header(0, 0, 0, 65_536, 1))),
        (GroupedSummary, sealed(header(1, 0, 1, 512, 10**8))),
        (GroupedSummary, sealed(header(1, 2, 1, 1, 10**8 - 1) + b"\x00" * 64)),
        (GroupedSummary, sealed(header(1, 0, 1, 1, 2**63))),
    ]
    tracemalloc.start()
    try:
        for kind, data in forged:
            with pytest.raises(ValueError, match=r"truncated|max_groups"):
                kind.from_bytes(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    with pytest.raises(ValueError, match="max_d=4"):
        GaussianSummary.from_bytes(GaussianSummary.from_samples(np.zeros((2, 5))).to_bytes(), max_d=4)
    with pytest.raises(ValueError, match="max_groups=1"):
        GroupedSummary.from_bytes(GroupedSummary.from_samples([1, 2], [1.0, 2.0]).to_bytes(), max_groups=1)
    # A string key column whose offsets point past the end.
    g = GroupedSummary.from_samples(["a", "b"], [1.0, 2.0]).to_bytes()[:-4]
    offsets_at = len(g) - 2 - 3 * 8
    bad = g[:offsets_at] + struct.pack("<3Q", 0, 1, 10**12) + g[offsets_at + 24 :]
    with pytest.raises(ValueError, match="truncated"):
        GroupedSummary.from_bytes(sealed(bad))


def test_object_keys_are_refused_when_written():
    """Keys that are arbitrary objects have no binary form, nor tuples whose components mix kinds."""
    from decimal import Decimal

    decimals = GroupedSummary(np.array([Decimal(1), Decimal(2)], dtype=object), [1.0, 1.0], [0.5, 1.5], [0.0, 0.0])
    with pytest.raises(ValueError, match="or tuples of them"):
        decimals.to_bytes()
    mixed = GroupedSummary(np.fromiter([(1, "a"), (2, 3)], dtype=object, count=2), [1.0, 1.0], [0.5, 1.5], [0.0, 0.0])
    with pytest.raises(ValueError, match="component 1 of the keys must be labels of one kind"):
        mixed.to_bytes()
