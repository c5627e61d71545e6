"""Summaries of Dask arrays and DataFrames: one pass over the data, a tree of ``+`` merges.

Each chunk (a block of rows) is summarised where it lives by `GaussianSummary.from_samples`;
the small summaries are then merged in a tree, ``split_every`` at a time, with
`GaussianSummary.merge_all`. Only summaries travel between workers: ``d + d*d + 1`` floats per
chunk (``2d + 1`` for a diagonal summary), whatever its length.

This module needs the ``dask`` extra (``pip install 'gaussum[dask]'``); the core never imports
it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _shards
from ._validate import check_nan_policy
from .grouped import GroupedSummary
from .summary import GaussianSummary

try:
    import dask.array as da
    from dask.delayed import delayed
except ImportError:  # pragma: no cover - exercised only without the extra
    raise ImportError("gaussum.dask needs dask: pip install 'gaussum[dask]'") from None

__all__ = ["summarize", "summarize_by"]

# Summaries merged by one task of the tree; dask's own reductions default to 4. A summary is a
# few hundred bytes, so a wider fan-in costs nothing in memory and makes the tree shallower.
_DEFAULT_SPLIT_EVERY = 8

_OBJECTS = np.empty((0,), dtype=object)


def _frame_kind(x: Any) -> str | None:
    """Which kind of dask collection `x` is: "frame", "series", or None for anything else."""
    try:
        import dask.dataframe as dd
    except ImportError:  # dask installed without its dataframe part
        return None
    if isinstance(x, dd.DataFrame):
        return "frame"
    return "series" if isinstance(x, dd.Series) else None


def _check_split_every(split_every: Any) -> int:
    if split_every is None:
        return _DEFAULT_SPLIT_EVERY
    if isinstance(split_every, (bool, np.bool_)) or not isinstance(split_every, (int, np.integer)) or split_every < 2:
        raise ValueError(f"split_every must be an integer >= 2, got {split_every!r}")
    return int(split_every)


def _boxed(summary: GaussianSummary) -> np.ndarray:
    """`summary` as the single element of a 1-D object array: one "chunk" of a dask array."""
    box = np.empty(1, dtype=object)
    box[0] = summary
    return box


def _summarize_chunk(blocks: Any, diagonal: bool, nan_policy: str) -> np.ndarray:
    """The summary of one row chunk, given as its column blocks (joined here) or as one block."""
    if isinstance(blocks, list):
        block = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=1)
    else:
        block = blocks
    try:
        summary = GaussianSummary.from_samples(block, diagonal=diagonal, nan_policy=nan_policy)
    except ValueError as exc:
        # The core names the row within the chunk; say that it is within a chunk. (Its index would
        # need a second input to the blockwise task, which stops dask fusing the task with
        # whatever makes the chunk: a from_array slice or a random draw would become a task of
        # its own, and the chunks of one in-graph array would all run where that array is.)
        raise _shards.located(exc, f"in a chunk of {block.shape[0]:,} rows") from None
    return _boxed(summary)


def _summaries(parts: Any) -> list[GaussianSummary]:
    """The summaries in what a reduction step receives: boxes, or lists of them."""
    if isinstance(parts, np.ndarray):
        return list(parts.ravel())
    return [s for part in parts for s in _summaries(part)]


def _keep(boxes: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    return boxes


def _merge_boxed(parts: Any, axis: Any, keepdims: bool) -> np.ndarray:
    return _boxed(GaussianSummary.merge_all(_summaries(parts)))


def _merge_final(parts: Any, axis: Any, keepdims: bool) -> GaussianSummary:
    return GaussianSummary.merge_all(_summaries(parts))


def _is_real_dtype(dtype: Any) -> bool:
    """Numbers and booleans (numpy's or pandas' nullable ones); not text, dates or timedeltas."""
    import pandas.api.types as types  # frames come with pandas; plain dask arrays need none
    if types.is_bool_dtype(dtype):
        return True
    return types.is_numeric_dtype(dtype) and not types.is_timedelta64_dtype(dtype) and not types.is_complex_dtype(dtype)


def _numeric_columns(frame: Any, columns: Any, exclude: Any = None) -> list[Any]:
    """The columns to summarise: those named, or every numeric and boolean one but `exclude`."""
    dtypes = frame._meta.dtypes
    if columns is None:
        excluded = exclude if callable(exclude) else (lambda c: c == exclude)
        columns = [c for c in frame.columns if not excluded(c) and _is_real_dtype(dtypes[c])]
        if not columns:
            raise ValueError(f"the DataFrame has no numeric columns to summarise; its dtypes are {dict(frame.dtypes)}")
        return list(columns)
    columns = [columns] if isinstance(columns, (str, int)) else list(columns)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in the DataFrame; it has {list(frame.columns)}")
    wrong = {c: str(dtypes[c]) for c in columns if not _is_real_dtype(dtypes[c])}
    if wrong:
        raise ValueError(f"columns must be numeric or boolean; {wrong} are not")
    return list(columns)


def _as_rows(x: Any, columns: Any) -> Any:
    """A dask array of rows (float64 for a DataFrame) from whatever `summarize` was given."""
    if isinstance(x, da.Array):
        if columns is not None:
            raise ValueError("columns= selects DataFrame columns; slice a dask array instead")
        if x.ndim not in (1, 2):
            raise ValueError(f"x must have shape (N,) or (N, d) with rows as observations, got shape {x.shape}")
        if x.dtype.kind not in "biuf":
            raise ValueError(f"x must be a real numeric array, got dtype {x.dtype}")
        if x.ndim == 2 and x.shape[1] == 0:
            raise ValueError(f"x must have at least one column, got shape {x.shape}")
        return x
    kind = _frame_kind(x)
    if kind is None:
        raise TypeError(
            f"summarize takes a dask array, DataFrame or Series, got {type(x).__name__}; "
            "use GaussianSummary.from_samples for data in memory"
        )
    if kind == "frame":
        x = x[_numeric_columns(x, columns)]
    elif columns is not None:
        raise ValueError("columns= selects DataFrame columns; a Series has none")
    elif not _is_real_dtype(x._meta.dtype):
        raise ValueError(f"the Series must be numeric or boolean, got dtype {x.dtype}")
    # float64 turns pandas' nullable NA into NaN, which nan_policy then handles.
    return x.astype(np.float64).to_dask_array()


def summarize(
    x: Any,
    *,
    columns: Any = None,
    diagonal: bool = False,
    nan_policy: str = "raise",
    split_every: int | None = None,
    compute: bool = False,
) -> Any:
    """The summary of a Dask array's rows or a Dask DataFrame's numeric columns, in one pass.

    Parameters
    ----------
    x : dask.array.Array, dask.dataframe.DataFrame or dask.dataframe.Series
        An array of shape ``(N, d)`` (rows are observations; any chunking: the column chunks of a
        row chunk are joined before it is summarised) or ``(N,)`` for scalar data; or a DataFrame,
        of which the numeric (and boolean) columns are used, or those named in `columns`.
    columns : list, optional
        For a DataFrame: the columns to summarise, in this order.
    diagonal : bool
        Keep only per-variable sums of squares (M2 of shape ``(d,)``).
    nan_policy : {"raise", "omit", "propagate"}
        As in `GaussianSummary.from_samples`, applied chunk by chunk.
    split_every : int, optional
        Fan-in of the merge tree (default 8): each merge task combines at most this many
        summaries, so the tree has ``ceil(log(chunks, split_every))`` levels.
    compute : bool
        Compute now and return the `GaussianSummary` instead of the lazy value.

    Returns
    -------
    dask.delayed.Delayed or GaussianSummary
        A lazy value whose ``.compute()`` (with any scheduler, or a ``distributed.Client``) is
        the summary of all the rows; the summary itself when ``compute=True``.

    Raises
    ------
    ValueError
        For a shape other than (N,) or (N, d), a non-numeric dtype, unknown `columns`, or a bad
        `split_every`; at compute time, for a non-finite value under ``nan_policy="raise"``
        (the message gives the chunk's length and the row within that chunk).
    TypeError
        For anything but a Dask array, DataFrame or Series.

    See Also
    --------
    GaussianSummary.from_samples : the same for data in memory.

    Notes
    -----
    Each chunk is summarised by the core's corrected two-pass block kernel, so the result is
    accurate at any offset of the mean, unlike ``dask.array.cov`` (which also reads the data
    twice) or a sum-of-squares formula. The per-chunk step is a blockwise task, which dask fuses
    with the task that makes the chunk; the merge tree is ``dask.array.reduction`` over the
    boxed summaries. Building the graph costs O(chunks), where a tree of ``to_delayed`` blocks
    costs O(chunks**2) (82 s to build for 20,000 chunks, against 2 s). Task keys are
    deterministic, so a chunk lost with a worker is recomputed once and counted once.

    Examples
    --------
    >>> import dask
    >>> import dask.array as da
    >>> import numpy as np
    >>> from gaussum import GaussianSummary
    >>> from gaussum.dask import summarize
    >>> X = np.random.default_rng(0).normal(5.0, 2.0, size=(1_000, 3))
    >>> lazy = summarize(da.from_array(X, chunks=(128, 2)))
    >>> with dask.config.set(scheduler="synchronous"):
    ...     s = lazy.compute()
    >>> s.n, s.isclose(GaussianSummary.from_samples(X))
    (1000.0, True)
    >>> bool(np.allclose(s.covariance(), np.cov(X, rowvar=False)))
    True
    """
    fan_in = _check_split_every(split_every)
    check_nan_policy(nan_policy)
    rows = _as_rows(x, columns)
    names = tuple(str(c) for c in _numeric_columns(x, columns)) if _frame_kind(x) == "frame" else None
    # One task per row chunk, fused by dask with whatever makes the chunk (a read, a random
    # draw), each receiving the list of that row's column blocks (concatenate=False: no copy
    # when there is only one).
    index = "ij" if rows.ndim == 2 else "i"
    parts = da.blockwise(
        _summarize_chunk, "i", rows, index,
        concatenate=False, adjust_chunks={"i": 1}, dtype=object, meta=_OBJECTS,
        token="gaussum-summarize-chunk", diagonal=bool(diagonal), nan_policy=nan_policy,
    )
    total = da.reduction(
        parts, _keep, _merge_final, combine=_merge_boxed,
        axis=0, keepdims=False, dtype=object, meta=np.empty((), dtype=object),
        concatenate=False, split_every=fan_in, name="gaussum-summarize-merge",
    )
    result = total.to_delayed(optimize_graph=True).item()
    if names is not None:  # the frame's column names label the variables
        result = delayed(_named, pure=True)(result, names)
    return result.compute() if compute else result


def _named(summary: GaussianSummary, names: tuple[str, ...]) -> GaussianSummary:
    return GaussianSummary(summary.n, summary.mean, summary.M2, summary.w2, names=names)


def _pandas_keys(frame: Any, by: list[Any]) -> tuple[list[np.ndarray], np.ndarray | None]:
    """A partition's key columns as numpy arrays, and which rows have a missing key (None: none).

    Float and datetime keys keep their missing values as NaN or NaT (the group of
    ``dropna=False``); other columns have them replaced by a present value first, so that the
    array keeps its dtype in every partition (pandas' nullable Int64 with NA would become float).
    """
    arrays, missing = [], None
    for name in by:
        column = frame[name]
        mask = np.asarray(column.isna().to_numpy(), dtype=bool)
        numpy_dtype = getattr(column.dtype, "numpy_dtype", None)
        if mask.any():
            missing = mask if missing is None else missing | mask
            kind = getattr(numpy_dtype if numpy_dtype is not None else column.dtype, "kind", "O")
            if kind == "f":
                arrays.append(column.to_numpy(dtype=np.float64, na_value=np.nan))
                continue
            if kind not in "mM":
                present = column[~mask]
                column = column.fillna(present.iloc[0]) if len(present) else column.fillna(0).astype(object)
        arrays.append(np.asarray(column.to_numpy(dtype=numpy_dtype)))
    return arrays, missing


def _summarize_groups(
    frame: Any, index: int, partitions: int, by: list[Any], columns: list[Any], weights: Any, aweights: Any,
    diagonal: bool, nan_policy: str, dropna: bool | None,
) -> tuple[GroupedSummary, int, int]:
    """The grouped summary of one pandas partition, its rows left out for a missing key, and its length."""
    keys, missing = _pandas_keys(frame, by)
    # na_value turns pandas' nullable NA into NaN, which nan_policy then handles. A pandas frame
    # of one dtype gives a column-major array here; the row kernel converts it a block at a time.
    values = frame[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    w = None if weights is None else frame[weights].to_numpy(dtype=np.float64, na_value=np.nan)
    a = None if aweights is None else frame[aweights].to_numpy(dtype=np.float64, na_value=np.nan)
    try:
        grouped, dropped = _shards.group_rows(
            keys, missing, values, w, a,
            names=[str(c) for c in columns], diagonal=diagonal, nan_policy=nan_policy, dropna=dropna,
        )
    except ValueError as exc:
        raise _shards.located(exc, f"in partition {index} of {partitions} ({len(frame):,} rows)") from None
    return grouped, dropped, len(frame)


def _merge_grouped(*parts: tuple[GroupedSummary, int, int]) -> tuple[GroupedSummary, int, int]:
    return (
        GroupedSummary.merge_all([p[0] for p in parts]), sum(p[1] for p in parts), sum(p[2] for p in parts)
    )


def _finish_grouped(part: tuple[GroupedSummary, int, int], dropna: bool | None) -> GroupedSummary:
    if dropna is None:
        _shards.warn_missing_keys(part[1], part[2], 2)
    return part[0]


def _key_list(df: Any, by: Any) -> list[Any]:
    keys = list(by) if isinstance(by, (list, tuple)) else [by]
    bad = [k for k in keys if k not in df.columns]
    if not keys or bad or len(set(keys)) != len(keys):
        raise ValueError(
            "by must name a column of the DataFrame or a list of distinct columns; "
            f"got {by!r}, it has {list(df.columns)}"
        )
    return keys


def summarize_by(
    df: Any,
    by: Any,
    columns: Any = None,
    *,
    weights: Any = None,
    aweights: Any = None,
    diagonal: bool = False,
    nan_policy: str = "raise",
    dropna: bool | None = None,
    split_every: int | None = None,
    compute: bool = False,
) -> Any:
    """One summary per key of a Dask DataFrame (one or several key columns), in one pass.

    Parameters
    ----------
    df : dask.dataframe.DataFrame
    by : column label or list of column labels
        The column whose values are the keys, or several: then each key is the tuple of their
        values (as in pandas' ``groupby([...])``), and the keys sort as tuples do. Rows need not
        be sorted or partitioned by key: a key found in several partitions is merged across them.
    columns : list, optional
        The columns to summarise, in this order; by default every numeric and boolean column
        but `by` and the weight columns.
    weights, aweights : column label, optional
        Columns of frequency and reliability weights (see `GroupedSummary.from_samples`).
    diagonal : bool
        Keep only per-variable sums of squares.
    nan_policy : {"raise", "omit", "propagate"}
        As in `GroupedSummary.from_samples`, applied partition by partition (NA counts as NaN).
        Under "raise" the error names the partition and the row within it.
    dropna : bool or None
        Rows with a missing key (NaN, NaT, None, ``pd.NA``; any of the key columns): left out
        silently with True; left out with one `gaussum.errors.MissingKeysWarning` counting them
        with None (the default), raised where the last merge runs (on this machine with
        ``compute=True``); kept as a group of their own with False, for one float or datetime key
        column (as NaN or NaT), as pandas' ``groupby(dropna=False)``.
    split_every : int, optional
        Fan-in of the merge tree (default 8).
    compute : bool
        Compute now and return the `GroupedSummary` instead of the lazy value.

    Returns
    -------
    dask.delayed.Delayed or GroupedSummary
        A lazy value whose ``.compute()`` is the grouped summary of all the rows; the grouped
        summary itself when ``compute=True``.

    Raises
    ------
    ValueError
        For a `by` or `columns` not in the DataFrame, no numeric column, or a bad `split_every`
        or `dropna`; at compute time, for what `GroupedSummary.from_samples` refuses, naming
        the partition.
    TypeError
        For anything but a Dask DataFrame.

    Notes
    -----
    Each partition gets `GroupedSummary.from_samples` (one vectorised pass over its rows; several
    key columns are factorised into one integer code per row first); the partitions' grouped
    summaries are merged in a tree of `GroupedSummary.merge_all`. Unlike
    ``df.groupby(by).var()``, which sums squares, the result keeps its digits when the means are
    far from zero.

    Examples
    --------
    >>> import dask
    >>> import dask.dataframe as dd
    >>> import numpy as np
    >>> import pandas as pd
    >>> from gaussum.dask import summarize_by
    >>> rng = np.random.default_rng(0)
    >>> pdf = pd.DataFrame({"site": rng.choice(["a", "b", "c"], 600), "x": rng.normal(1e6, 1, 600),
    ...                     "y": rng.normal(0, 2, 600)})
    >>> with dask.config.set(scheduler="synchronous"):
    ...     g = summarize_by(dd.from_pandas(pdf, npartitions=4), "site", compute=True)
    >>> g.keys().tolist(), int(g.n)
    (['a', 'b', 'c'], 600)
    >>> b = pdf[pdf.site == "b"][["x", "y"]].to_numpy()
    >>> bool(np.allclose(g["b"].covariance(), np.cov(b, rowvar=False), rtol=1e-9))
    True
    """
    fan_in = _check_split_every(split_every)
    check_nan_policy(nan_policy)
    dropna = _shards.check_dropna(dropna)
    if _frame_kind(df) != "frame":
        raise TypeError(f"summarize_by takes a dask DataFrame, got {type(df).__name__}")
    keys = _key_list(df, by)
    extra = [w for w in (weights, aweights) if w is not None]
    for label, column in (("weights", weights), ("aweights", aweights)):
        if column is not None and column not in df.columns:
            raise ValueError(f"{label} must name a column of the DataFrame, got {column!r}; it has {list(df.columns)}")
    excluded = set(keys) | set(extra)
    columns = _numeric_columns(df, columns, exclude=lambda c: c in excluded)
    needed = list(dict.fromkeys([*keys, *columns, *extra]))  # a key may itself be summarised
    per_partition = delayed(_summarize_groups, pure=True)
    blocks = df[needed].to_delayed()
    level = [
        per_partition(part, i, len(blocks), keys, columns, weights, aweights, bool(diagonal), nan_policy, dropna)
        for i, part in enumerate(blocks)
    ]
    merge = delayed(_merge_grouped, pure=True)
    while len(level) > 1:
        level = [merge(*level[i:i + fan_in]) for i in range(0, len(level), fan_in)]
    if compute:
        grouped, dropped, total = level[0].compute()
        if dropna is None:
            _shards.warn_missing_keys(dropped, total, 2)
        return grouped
    return delayed(_finish_grouped, pure=True)(level[0], dropna)
