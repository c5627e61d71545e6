"""Keys of grouped summaries: checks, factorisation into dense codes, merging and (de)serialising.

Keys are labels: integers, strings, floats, booleans, datetimes, or any objects that can be
ordered. A grouped summary keeps them distinct and sorted; everything that knows what a key is
lives here, so the record and the kernels deal only in integer codes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import MissingKeysWarning

__all__ = [
    "SERIALISABLE_KINDS",
    "as_keys",
    "check_python_keys",
    "concatenate_keys",
    "equal_keys",
    "factorize",
    "label",
    "parse_key_dtype",
    "parse_keys",
    "present_keys",
    "same_keys",
    "same_label_kinds",
    "sort_order",
]

# Key dtypes that to_dict can write exactly: bool, integers, floats, strings, datetimes, timedeltas.
SERIALISABLE_KINDS = "biufUMm"

# Integer keys spanning at most this many values (times the row count) are factorised by counting
# rather than sorting: O(N) instead of O(N log N).
_DENSE_RANGE_PER_ROW = 4



def _kind_of(value: Any) -> str:
    """The label kind of one Python key: bool, int, float, str, or the type's name."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, str):
        return "str"
    return type(value).__name__


def check_python_keys(values: Any, name: str) -> None:
    """Refuse keys that numpy would silently make equal: mixed kinds, strings ending in NUL.

    numpy turns ``[1, "1"]`` into two equal strings and ``[True, 1]`` into two equal integers,
    and a ``'<U'`` array drops trailing NUL characters (``"a\x00"`` becomes ``"a"``); distinct
    Python keys must stay distinct, so these are refused, as merges refuse mixed key kinds.
    """
    kinds: dict[str, Any] = {}
    for value in values:
        kind = _kind_of(value)
        kinds.setdefault(kind, value)
        if kind == "str" and value.endswith("\x00"):
            raise ValueError(f"{name} must not end in a NUL character, which numpy strings cannot hold; got {value!r}")
    if len(kinds) > 1:
        examples = ", ".join(f"{kind} {value!r}" for kind, value in kinds.items())
        raise ValueError(
            f"{name} must be labels of one kind that can be ordered (numbers, strings or booleans), got {examples}"
        )


def _is_missing(value: Any) -> bool:
    """None, NaN, NaT or pandas' NA (whose comparison is neither true nor false)."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return True


def present_keys(keys: Any, n_rows: int, dropna: bool | None, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The keys of the rows to keep, and which rows those are (None: all of them).

    Missing keys (see `_is_missing`; ``pd.isna`` for pandas, nulls for polars) are left out,
    with a `MissingKeysWarning` when `dropna` is None and silently when it is True; with False
    they are kept (float and datetime keys only, as NaN or NaT: the one missing value numpy can
    sort and store).
    """
    module = type(keys).__module__.split(".")[0]
    if module == "pandas" and hasattr(keys, "to_numpy"):
        import pandas as pd

        missing = np.asarray(pd.isna(keys), dtype=bool)
        present = keys[~missing] if missing.any() else keys
        values = present.to_numpy(dtype=getattr(keys.dtype, "numpy_dtype", None))
        everything = keys.to_numpy(dtype=getattr(keys.dtype, "numpy_dtype", None)) if not missing.any() else None
    elif module == "polars" and hasattr(keys, "is_null"):
        missing = keys.is_null().to_numpy()
        values = keys.drop_nulls().to_numpy()
        everything = None if missing.any() else values
    else:
        array = keys if isinstance(keys, np.ndarray) else None
        if array is not None and array.dtype.kind in "fMm":
            missing = np.isnan(array) if array.ndim == 1 else np.zeros(0, bool)
        elif array is not None and array.dtype.kind != "O":
            missing = np.zeros(array.shape[0] if array.ndim else 0, dtype=bool)
        else:
            items = keys if isinstance(keys, (list, tuple)) or array is not None else None
            missing = np.array([_is_missing(v) for v in items], dtype=bool) if items is not None else np.zeros(0, bool)
        present = None
        everything = keys
        if missing.any():
            present = keys[~missing] if array is not None else [v for v, m in zip(keys, missing, strict=True) if not m]
        values = present
    count = int(missing.sum()) if missing.size else 0
    if count == 0:
        key_array = as_keys(everything if everything is not None else values)
        _check_length(key_array, n_rows, what)
        return key_array, None
    if missing.shape != (n_rows,):
        raise ValueError(f"keys must have shape ({n_rows},) to match {what}, got ({missing.size},)")
    if dropna is False:
        full = np.asarray(keys)
        if full.dtype.kind not in "fMm":
            raise ValueError(
                f"dropna=False keeps missing keys as a group of their own, which only float and datetime keys "
                f"can hold (as NaN or NaT); these keys ({full.dtype}) have {count} missing: fill them first"
            )
        return as_keys(full, allow_missing=True), None
    if isinstance(values, np.ndarray) and values.dtype.kind == "O":
        check_python_keys(values, "keys")  # mixed kinds would surface only after the warning
    key_array = as_keys(values)  # refuse bad keys before saying anything about missing ones
    if dropna is None:
        warnings.warn(
            f"{count:,} of {n_rows:,} rows have a missing key and were left out; pass dropna=True to leave "
            "them out silently, or dropna=False to keep them as a group",
            MissingKeysWarning,
            stacklevel=4,
        )
    return key_array, ~missing


def _check_length(keys: np.ndarray, n_rows: int, what: str) -> None:
    if keys.shape != (n_rows,):
        raise ValueError(f"keys must have shape ({n_rows},) to match {what}, got {keys.shape}")


def as_keys(keys: Any, name: str = "keys", allow_missing: bool = False) -> np.ndarray:
    """Keys as a 1-D array of labels that can be ordered; NaN and NaT are refused.

    Python lists and tuples are checked element by element first (`check_python_keys`), since
    numpy's conversion of them can make distinct keys equal. Object arrays keep Python's own
    equality (``True == 1``, as in a dict); their distinct strings are checked in `factorize`.
    """
    if isinstance(keys, (list, tuple)):
        check_python_keys(keys, name)
    array = np.asarray(keys)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of labels, got shape {array.shape}")
    if array.dtype.kind == "c":
        raise ValueError(f"{name} must be labels that can be ordered, got complex dtype {array.dtype}")
    if array.dtype.kind in "fMm" and not allow_missing and np.isnan(array).any():
        i = int(np.flatnonzero(np.isnan(array))[0])
        raise ValueError(f"{name} must not hold NaN or NaT (it equals no key); {name}[{i}] is {label(array[i])!r}")
    if array.dtype.kind == "f" and np.isinf(array).any():
        i = int(np.flatnonzero(np.isinf(array))[0])
        raise ValueError(f"{name} must be finite; {name}[{i}] is {label(array[i])!r}")
    return array


def _factorize_codes(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct labels and the code (index into them) of every key.

    Integers and datetimes over a range not much larger than the number of keys are counted
    (``np.bincount``, linear time); anything else goes through ``np.unique``. Raises TypeError
    for labels that cannot be ordered.
    """
    if keys.dtype.kind in "iuMm" and keys.size:
        as_int = keys.view(np.int64) if keys.dtype.kind in "Mm" else keys
        lo, hi = int(as_int.min()), int(as_int.max())
        span = hi - lo + 1
        if span <= _DENSE_RANGE_PER_ROW * keys.size + 2**16:
            wide = np.uint64 if as_int.dtype.kind == "u" else np.int64  # no overflow in x - lo
            offsets = np.subtract(as_int, wide(lo), dtype=wide).astype(np.intp, copy=False)
            present = np.bincount(offsets, minlength=span) > 0
            distinct = np.flatnonzero(present)
            lookup = np.empty(span, dtype=np.intp)
            lookup[distinct] = np.arange(distinct.size)
            uniques = (distinct.astype(wide) + wide(lo)).astype(as_int.dtype)
            if keys.dtype.kind in "Mm":
                uniques = uniques.view(keys.dtype)
            return uniques, lookup[offsets]
    uniques, codes = np.unique(keys, return_inverse=True)
    return uniques, codes.reshape(-1)


def factorize(keys: np.ndarray, name: str = "keys") -> tuple[np.ndarray, np.ndarray]:
    try:
        uniques, codes = _factorize_codes(keys)
    except TypeError as exc:
        raise ValueError(f"{name} must be labels that can be ordered: {exc}") from None
    if uniques.dtype.kind == "O" and uniques.size and all(isinstance(k, str) for k in uniques):
        check_python_keys(uniques, name)  # '<U' would drop trailing NULs and merge keys
        uniques = uniques.astype(str)  # object arrays of strings (pandas' default) become '<U'
    return uniques, codes


def sort_order(codes: np.ndarray, g: int) -> np.ndarray:
    """A stable permutation sorting `codes` (each in ``range(g)``).

    Codes that fit in 16 bits are sorted by numpy's radix sort (linear time).
    """
    if g <= 2**8:
        return np.argsort(codes.astype(np.uint8), kind="stable")
    if g <= 2**16:
        return np.argsort(codes.astype(np.uint16), kind="stable")
    return np.argsort(codes, kind="stable")


def concatenate_keys(arrays: list[np.ndarray]) -> np.ndarray:
    """The keys of several grouped summaries in one array, refusing lossy mixes.

    numpy would turn integers and strings into strings, or int64 and uint64 into float64; keys
    that are different labels must not become equal ones.
    """
    kinds: set[str] = {str(a.dtype.kind) for a in arrays}
    try:
        result = np.result_type(*arrays) if len(kinds) > 1 or kinds == {"O"} else None
        compatible = same_label_kinds(kinds) and (result is None or result.kind in "iuO")
    except TypeError:
        compatible = False
    if not compatible:
        dtypes = sorted({str(a.dtype) for a in arrays})
        raise ValueError(f"cannot merge grouped summaries whose keys have dtypes {dtypes}")
    return np.concatenate(arrays)


def same_label_kinds(kinds: set[str]) -> bool:
    """True when keys of these dtype kinds can be the same labels: one kind, or signed and unsigned.

    Booleans, floats and integers are different labels (True is not the key 1, nor 1.0), as are
    strings and numbers, since numpy would make them equal by converting one into the other.
    """
    return len(kinds) == 1 or kinds <= {"i", "u"}


def label(key: Any) -> Any:
    """A key as a Python value, so messages show ``'a'`` and ``nan``, not ``np.str_('a')``."""
    return key.item() if isinstance(key, np.generic) else key


def equal_keys(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise key equality, the missing key (NaN, NaT) equal to itself."""
    equal = a == b
    if a.dtype.kind in "fMm" and b.dtype.kind in "fMm":
        equal |= np.isnan(a) & np.isnan(b)
    return np.asarray(equal, dtype=bool)


def same_keys(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape or (a.dtype.kind != b.dtype.kind and {a.dtype.kind, b.dtype.kind} != {"i", "u"}):
        return False
    return bool(np.all(equal_keys(a, b)))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_key_dtype(text: Any) -> np.dtype:
    try:
        dtype = np.dtype(text) if isinstance(text, str) else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in SERIALISABLE_KINDS:
        raise ValueError(
            f"grouped summary dict field 'key_dtype' must name a bool, number, string or datetime dtype, got {text!r}"
        )
    return dtype


def parse_keys(values: Any, dtype: np.dtype) -> np.ndarray:
    kind = dtype.kind
    checks: dict[str, Callable[[Any], bool]] = {
        "b": lambda v: isinstance(v, bool),
        "i": _is_int,
        "u": _is_int,
        "M": _is_int,
        "m": _is_int,
        "f": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "U": lambda v: isinstance(v, str),
    }
    if not isinstance(values, list) or not all(checks[kind](v) for v in values):
        raise ValueError(f"grouped summary dict field 'keys' must be a list of {dtype} values, got {values!r:.80}")
    if kind == "U":
        # Sized by the keys themselves, never by the declared dtype: "<U300000000" must not
        # allocate gigabytes for a few short strings.
        longest = max((len(v) for v in values), default=0)
        if longest > dtype.itemsize // 4:
            raise ValueError(f"grouped summary dict field 'keys' holds strings longer than {dtype} allows")
        check_python_keys(values, "grouped summary dict field 'keys'")
        dtype = np.dtype(f"<U{max(longest, 1)}")
    try:
        if kind in "Mm":
            return np.array(values, dtype=np.int64).view(dtype)
        return np.array(values, dtype=dtype)
    except (OverflowError, ValueError) as exc:
        raise ValueError(f"grouped summary dict field 'keys' does not fit {dtype}: {exc}") from None


