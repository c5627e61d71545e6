"""What ``show`` and ``compare`` print: tables for people, JSON for programs.

Counts are printed the same way everywhere: an integer when the count is whole (it is, unless
weights were used), else the number with 6 significant digits. A table of many columns shows
the first `MAX_TABLE_COLUMNS` and says how many more there are; JSON always has everything.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..summary import GaussianSummary
from .sources import KEY_SEPARATOR
from .state import State

__all__ = ["compare_json", "compare_table", "count", "key_text", "show_json", "show_table"]

#: Columns listed in a `show` table; the rest are counted ("... N more; use --format json").
MAX_TABLE_COLUMNS = 20
#: Columns of the correlation matrix in a `show` table.
MAX_CORRELATION_COLUMNS = 8


def count(n: float) -> int | float:
    """`n` as an int when it is whole (JSON ``150``, not ``150.0``), else as a float."""
    n = float(n)
    return int(n) if n.is_integer() and abs(n) < 2**63 else n


def count_text(n: float) -> str:
    value = count(n)
    return f"{value:,}" if isinstance(value, int) else f"{value:.6g}"


def key_text(key: Any) -> str:
    """A group key as text; the parts of a composite key joined by commas."""
    text = str(key.item() if isinstance(key, np.generic) else key)
    return text.replace(KEY_SEPARATOR, ",")


def plural(k: int, word: str) -> str:
    """``1 row``, ``2 rows``, ``1,000 rows``: a count and its noun, for messages."""
    return f"{k:,} {word}" + ("" if k == 1 else "s")


def describe(state: State) -> str:
    """One line: rows, groups, columns and sources of a state."""
    n = count(state.n)
    rows = f"{plural(n, 'row')}" if isinstance(n, int) else f"n={n:g}"
    groups = "" if state.by is None else f" in {plural(len(state.summary), 'group')} by {state.by}"
    return f"{rows}{groups}, {plural(len(state.columns), 'column')}, from {plural(len(state.sources), 'source')}"


def _column_stats(s: GaussianSummary) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # n < 2 or a constant column: NaN is the answer
        std = s.std() if s.n > 1 else np.full(s.d, np.nan)
        corr = None if s.diagonal else s.correlation()
    return s.mean, std, corr


def _json_number(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _json_matrix(m: np.ndarray) -> list[Any]:
    return [_json_matrix(row) if np.ndim(row) else _json_number(row) for row in m]


def show_json(state: State) -> dict[str, Any]:
    """n, mean, std, covariance (ddof=1) and correlation, per group for a grouped state."""

    def one(s: GaussianSummary) -> dict[str, Any]:
        mean, std, corr = _column_stats(s)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            spread = (s.variance() if s.diagonal else s.covariance()) if s.n > 1 else None
        out: dict[str, Any] = {
            "n": count(s.n),
            "mean": dict(zip(state.columns, map(_json_number, mean), strict=False)),
            "std": dict(zip(state.columns, map(_json_number, std), strict=False)),
        }
        if s.diagonal:
            variances = None if spread is None else map(_json_number, spread)
            out["variance"] = None if variances is None else dict(zip(state.columns, variances, strict=True))
            out["covariance"] = None
        else:
            out["covariance"] = None if spread is None else _json_matrix(spread)
        out["correlation"] = None if corr is None else _json_matrix(corr)
        return out

    out: dict[str, Any] = {
        "columns": list(state.columns),
        "by": state.by,
        "n": count(state.n),
        "sources": len(state.sources),
    }
    if state.by is None:
        out.update(one(state.summary))
    else:
        out["by_columns"] = list(state.by_columns or ())
        out["groups"] = [{"key": key_text(key), **one(s)} for key, s in state.summary]
    return out


def _format_number(x: float) -> str:
    return "nan" if not np.isfinite(x) else f"{x:.6g}"


def show_table(state: State, label: str) -> str:
    """The table `show` prints: count, mean and std per column, correlations, sources."""
    names = list(state.columns)
    shown = names[:MAX_TABLE_COLUMNS]
    width = max(12, *(len(c) for c in shown))
    lines = [f"{label}: {describe(state)}"]

    def block(s: GaussianSummary, indent: str) -> None:
        mean, std, corr = _column_stats(s)
        lines.append(f"{indent}{'column':<{width}}  {'mean':>12}  {'std':>12}")
        for name, m, sd in zip(shown, mean, std, strict=False):
            lines.append(f"{indent}{name:<{width}}  {_format_number(m):>12}  {_format_number(sd):>12}")
        if len(names) > len(shown):
            lines.append(f"{indent}... {len(names) - len(shown):,} more; use --format json")
        if corr is None:
            lines.append(f"{indent}(diagonal summary: no correlations kept)")
            return
        if len(names) < 2:
            return
        in_matrix = names[:MAX_CORRELATION_COLUMNS]
        cell = max(7, *(len(c) for c in in_matrix))
        lines.append("")
        lines.append(f"{indent}{'correlation':<{width}}  " + "  ".join(f"{c:>{cell}}" for c in in_matrix))
        for name, row in zip(in_matrix, corr, strict=False):
            cells = "  ".join(f"{'nan' if not np.isfinite(v) else f'{v:.3f}':>{cell}}" for v in row[: len(in_matrix)])
            lines.append(f"{indent}{name:<{width}}  {cells}")
        if len(names) > len(in_matrix):
            lines.append(f"{indent}(correlations of the first {len(in_matrix)} columns; use --format json for all)")

    lines.append(f"n = {count_text(state.n)}")
    if state.by is None:
        lines.append("")
        block(state.summary, "")
    else:
        for key, s in state.summary:
            lines.append("")
            lines.append(f"{_group_label(state, key)}: n = {count_text(s.n)}")
            block(s, "  ")
    lines.append("")
    listed = state.sources[:5]
    lines.append("sources:")
    for source in listed:
        dropped = f", {source.rows_dropped:,} dropped" if source.rows_dropped else ""
        where = source.path if source.path is not None else "(stream)"  # its hash follows anyway
        lines.append(f"  {where}  ({plural(source.rows_read, 'row')}{dropped}, sha256 {source.sha256[:12]})")
    if len(state.sources) > len(listed):
        lines.append(f"  ... and {len(state.sources) - len(listed)} more")
    return "\n".join(lines)


def _group_label(state: State, key: Any) -> str:
    by = state.by_columns or ()
    parts = str(key.item() if isinstance(key, np.generic) else key).split(KEY_SEPARATOR)
    if len(by) == len(parts):
        return ", ".join(f"{name} = {part}" for name, part in zip(by, parts, strict=False))
    return f"{state.by} = {key_text(key)}"


def compare_json(
    label_a: str, a: GaussianSummary, label_b: str, b: GaussianSummary, columns: list[str], welch: Any, hotelling: Any
) -> dict[str, Any]:
    statistic, df, pvalue = (np.atleast_1d(v) for v in (welch.statistic, welch.df, welch.pvalue))
    out: dict[str, Any] = {
        "a": {"label": label_a, "n": count(a.n)},
        "b": {"label": label_b, "n": count(b.n)},
        "welch": {
            c: {
                "mean_a": float(ma),
                "mean_b": float(mb),
                "t": _json_number(t),
                "df": _json_number(f),
                "pvalue": _json_number(p),
            }
            for c, ma, mb, t, f, p in zip(columns, a.mean, b.mean, statistic, df, pvalue, strict=False)
        },
        "hotelling": None,
    }
    if hotelling is not None:
        out["hotelling"] = {
            name: {"t2": r.t2, "f": r.f, "df": list(r.df), "pvalue": r.pvalue}
            for name, r in zip(("pooled", "krishnamoorthy_yu"), hotelling, strict=False)
        }
    return out


def compare_table(
    label_a: str, a: GaussianSummary, label_b: str, b: GaussianSummary, columns: list[str], welch: Any, hotelling: Any
) -> str:
    statistic, df, pvalue = (np.atleast_1d(v) for v in (welch.statistic, welch.df, welch.pvalue))
    width = max(12, *(len(c) for c in columns))
    lines = [f"A: {label_a}, n = {count_text(a.n)}", f"B: {label_b}, n = {count_text(b.n)}", ""]
    lines.append("Welch t test per column (unequal variances, two-sided)")
    lines.append(f"{'column':<{width}}  {'mean A':>11}  {'mean B':>11}  {'t':>9}  {'df':>7}  {'p-value':>9}")
    for c, ma, mb, t, f, p in zip(columns, a.mean, b.mean, statistic, df, pvalue, strict=False):
        lines.append(f"{c:<{width}}  {ma:>11.5g}  {mb:>11.5g}  {t:>9.4g}  {f:>7.4g}  {p:>9.3g}")
    lines.append("")
    if hotelling is None:
        lines.append("Hotelling T2: needs full covariances; these are diagonal summaries")
    else:
        for name, r in zip(("equal covariances", "unequal (Krishnamoorthy-Yu)"), hotelling, strict=False):
            lines.append(
                f"Hotelling T2, {name}: T2 = {r.t2:.5g}, F({r.df[0]:.4g}, {r.df[1]:.4g}) = {r.f:.5g}, "
                f"p = {r.pvalue:.3g}"
            )
    return "\n".join(lines)
