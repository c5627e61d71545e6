"""The ``gaussum`` command: summaries of data files as crash-safe state files, for shell pipelines.

Sub-commands (``gaussum COMMAND --help`` for each):

- ``summarize DATA... -o STATE.json``: a new state from CSV, ``.npy`` or Parquet files;
- ``update STATE.json DATA...``: fold new files into a state; files already in it are skipped;
- ``merge STATE.json... -o OUT.json``: reduce states made elsewhere; a file counted in two of
  them is refused, because the result would count it twice;
- ``show STATE.json``: count, mean and standard deviation per column, and correlations;
- ``compare A.json B.json``: Welch t and Hotelling T² tests from the summaries alone.

Each command is one transaction: it reads everything, then replaces its output file atomically
(see `gaussum._state.write_atomic`), so a crash or an error leaves the previous file as it was and
re-running the command gives exactly what an uninterrupted run gives. Errors are one line on
stderr and exit status 1 (2 for a malformed command line).

argparse (the standard library) rather than click: the command line adds no dependency.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

import numpy as np

from . import __version__
from ._sources import Block, NotNumericError, SourceError, open_source, sha256_of
from ._state import Source, State, StateError, check_same_layout, read_state, write_atomic
from .summary import GaussianSummary

__all__ = ["main", "build_parser"]

DEFAULT_CHUNK_ROWS = 65_536

# The largest magnitude whose square is finite in float64.
_SQRT_MAX = float(np.sqrt(np.finfo(np.float64).max))

# The progress bar appears only for files that take longer than this to read.
_PROGRESS_DELAY_S = 0.5


class CommandError(ValueError):
    """A request that cannot be carried out; its message is printed as one line."""


# -- output ---------------------------------------------------------------------------------------


class _Reporter:
    """Status lines and the progress bar, both on stderr; stdout carries only results."""

    def __init__(self, quiet: bool, stream: TextIO | None = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.quiet = quiet
        self.bar = not quiet and self.stream.isatty()
        self._label = ""
        self._started = 0.0
        self._last = 0.0
        self._drawn = False

    def say(self, message: str) -> None:
        if not self.quiet:
            print(f"gaussum: {message}", file=self.stream)

    def start(self, label: str) -> None:
        self._label, self._started, self._last, self._drawn = label, time.monotonic(), 0.0, False

    def progress(self, fraction: float) -> None:
        if not self.bar:
            return
        now = time.monotonic()
        if now - self._started < _PROGRESS_DELAY_S or now - self._last < 0.1:
            return
        self._last, self._drawn = now, True
        width = 30
        filled = int(round(fraction * width))
        rate = fraction / (now - self._started)
        eta = f"{(1 - fraction) / rate:4.0f}s left" if rate > 0 else ""
        self.stream.write(f"\r{self._label[-40:]:40} [{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%} {eta}")
        self.stream.flush()

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\r" + " " * 90 + "\r")
            self.stream.flush()
            self._drawn = False


# -- reading data files ---------------------------------------------------------------------------


def _summarize_rows(values: np.ndarray, keys: np.ndarray | None, diagonal: bool) -> Any:
    if keys is None:
        return GaussianSummary.from_samples(values, diagonal=diagonal)
    from .grouped import GroupedSummary

    return GroupedSummary.from_samples(keys, values, diagonal=diagonal)


def _read_file(
    path: str,
    sha256: str,
    columns: Sequence[str] | None,
    by: str | None,
    diagonal: bool,
    nan_policy: str,
    chunk_rows: int,
    reporter: _Reporter,
) -> tuple[list[str], Any, Source]:
    """Summarise one file block by block: (its columns, its summary or None if no rows, ledger entry).

    Blocks are folded left to right with ``+``, so the same file always gives the same bits.
    """
    before = os.stat(path)
    rows_read = rows_dropped = 0
    total = None
    reporter.start(path)
    try:
        with open_source(path) as source:
            hint = ""
            if columns is None:
                columns = [c for c in source.names if c != by]
                hint = "; choose numeric columns with --columns" + ("" if by else ", or group by it with --by")
                if not columns:
                    raise SourceError(f"{path}: no columns to summarise besides the --by column {by!r}")
            for block in _blocks_with_hint(source.blocks(columns, by, chunk_rows), hint):
                values, keys = block.values, block.keys
                finite = np.isfinite(values).all(axis=1)
                if not finite.all():
                    if nan_policy == "raise":
                        i = int(np.flatnonzero(~finite)[0])
                        j = int(np.flatnonzero(~np.isfinite(values[i]))[0])
                        raise SourceError(
                            f"{path}, data row {block.first_row + i}: column {columns[j]!r} is missing or "
                            f"not finite ({values[i, j]}); pass --nan-policy omit to leave such rows out"
                        )
                    values = values[finite]
                    keys = None if keys is None else keys[finite]
                    rows_dropped += int((~finite).sum())
                rows_read += len(block.values)
                if len(values):
                    rows = block.first_row + (np.arange(len(finite)) if finite.all() else np.flatnonzero(finite))
                    total = _add_block(total, values, keys, diagonal, path, rows)
                reporter.progress(source.fraction_done())
    finally:
        reporter.finish()
    after = os.stat(path)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise SourceError(f"{path}: the file changed while it was being read; nothing was written")
    return list(columns), total, Source(path, before.st_size, sha256, rows_read, rows_dropped)


def _add_block(total: Any, values: np.ndarray, keys: np.ndarray | None, diagonal: bool, path: str, rows: np.ndarray) -> Any:
    """`total` plus the summary of one block of finite rows; `rows` are their data row numbers.

    The core refuses rows whose squares overflow float64 with a message that does not know the
    file; this names the file and the row with the largest magnitude, the one at fault.
    """
    try:
        part = _summarize_rows(values, keys, diagonal)
    except ValueError as exc:
        largest = np.abs(values).max(axis=1)
        at = int(largest.argmax())
        where = f"data row {rows[at]}" if largest[at] > _SQRT_MAX else f"data rows {rows[0]}-{rows[-1]}"
        raise SourceError(f"{path}, {where}: {exc}") from None
    return _fold(total, part, f"{path}, data rows {rows[0]}-{rows[-1]}")


def _blocks_with_hint(blocks: Iterator[Block], hint: str) -> Iterator[Block]:
    """`blocks`, with `hint` added to a not-numeric error (when the columns were not chosen)."""
    try:
        yield from blocks
    except NotNumericError as exc:
        raise NotNumericError(f"{exc}{hint}") from None


def _hash_inputs(paths: Sequence[str], known: dict[str, Source], reporter: _Reporter) -> list[tuple[str, str]]:
    """(path, sha256) of each file not already in `known` nor earlier in `paths`; says what it skips."""
    fresh: list[tuple[str, str]] = []
    seen = dict(known)
    for path in paths:
        try:
            digest = sha256_of(path)
        except FileNotFoundError:
            raise SourceError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise SourceError(f"{path}: is a directory, not a data file") from None
        except OSError as exc:
            raise SourceError(f"{path}: cannot read: {exc.strerror}") from None
        if digest in seen:
            earlier = seen[digest].path
            same = "" if earlier == path else f" (same content as {earlier})"
            reporter.say(f"skipping {path}: already counted{same}")
            continue
        seen[digest] = Source(path, 0, digest, 0, 0)
        fresh.append((path, digest))
    return fresh


def _fold(total: Any, part: Any, where: str) -> Any:
    """`total` + `part` (either may be None); SourceError naming `where` if the sum overflows."""
    if part is None:
        return total
    if total is None:
        return part
    message = f"{where}: adding it to the summary overflows float64 (sums of squares); rescale the data first"
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below, with a better message
        try:
            merged = total + part
        except ValueError as exc:  # the core refuses overflow; say which input caused it
            if "overflows" in str(exc):
                raise SourceError(message) from None
            raise
    if not _is_finite(merged):
        raise SourceError(message)
    return merged


def _is_finite(summary: Any) -> bool:
    mean = summary.mean if isinstance(summary, GaussianSummary) else summary.means
    return bool(np.isfinite(summary.n) and np.isfinite(mean).all() and np.isfinite(summary.M2).all())


def _empty_summary(d: int, by: str | None, diagonal: bool) -> Any:
    if by is None:
        return GaussianSummary.empty(d, diagonal=diagonal)
    from .grouped import GroupedSummary

    return GroupedSummary.empty(d, diagonal=diagonal, key_dtype=str)


def _describe(state: State) -> str:
    rows = f"{state.n:,.0f} rows" if float(state.n).is_integer() else f"n={state.n:g}"
    groups = "" if state.by is None else f" in {len(state.summary)} groups by {state.by}"
    files = f"{len(state.sources)} source" + ("" if len(state.sources) == 1 else "s")
    return f"{rows}{groups}, {len(state.columns)} columns, from {files}"


# -- sub-commands ---------------------------------------------------------------------------------


def _cmd_summarize(args: argparse.Namespace, reporter: _Reporter) -> int:
    columns = _parse_columns(args.columns) if args.columns is not None else None
    if columns is not None and args.by in columns:
        raise CommandError(f"--by column {args.by!r} cannot also be in --columns")
    fresh = _hash_inputs(args.data, {}, reporter)
    total, sources = None, []
    for path, digest in fresh:
        columns, part, source = _read_file(
            path, digest, columns, args.by, args.diagonal, args.nan_policy, args.chunk_rows, reporter
        )
        total = _fold(total, part, path)
        sources.append(source)
    assert columns is not None  # at least one file was read: argparse requires one, hashing skips only repeats
    if total is None:
        total = _empty_summary(len(columns), args.by, args.diagonal)
    state = State(columns, args.by, total, sources)
    write_atomic(args.output, state.to_json())
    reporter.say(f"wrote {args.output}: {_describe(state)}")
    return 0


def _cmd_update(args: argparse.Namespace, reporter: _Reporter) -> int:
    state = read_state(args.state)
    fresh = _hash_inputs(args.data, state.hashes(), reporter)
    if not fresh:
        reporter.say(f"{args.state} unchanged: every file is already counted")
        return 0
    total, sources = state.summary, list(state.sources)
    for path, digest in fresh:
        _, part, source = _read_file(
            path, digest, state.columns, state.by, state.diagonal, args.nan_policy, args.chunk_rows, reporter
        )
        total = _fold(total, part, path)
        sources.append(source)
    new = State(state.columns, state.by, total, sources)
    write_atomic(args.state, new.to_json())
    added = sum(s.rows_read - s.rows_dropped for s in sources[len(state.sources):])
    reporter.say(f"updated {args.state}: +{added:,} rows from {len(fresh)} file(s); now {_describe(new)}")
    return 0


def _cmd_merge(args: argparse.Namespace, reporter: _Reporter) -> int:
    states = [(path, read_state(path)) for path in args.states]
    first_path, first = states[0]
    for path, state in states[1:]:
        check_same_layout(first, first_path, state.columns, state.by, state.diagonal, path)
    # Largest ledgers first, so that a state whose files are all inside an earlier one is skipped
    # whatever order the shards were named in.
    order = sorted(states, key=lambda item: -len(item[1].sources))
    total, sources, counted = None, [], {}  # counted: sha256 -> the state that brought it
    for path, state in order:
        hashes = state.hashes()
        shared = [h for h in hashes if h in counted]
        if shared and len(shared) == len(hashes):
            reporter.say(f"skipping {path}: all its sources are already counted (via {counted[shared[0]]})")
            continue
        if shared:
            source = hashes[shared[0]]
            raise CommandError(
                f"refusing to merge: {source.path} (sha256 {source.sha256[:12]}...) is counted in both "
                f"{counted[shared[0]]} and {path}, and {path} has other sources too; merging would "
                "count it twice"
            )
        total = _fold(total, state.summary, path)
        sources.extend(state.sources)
        counted.update({h: path for h in hashes})
    merged = State(first.columns, first.by, total, sources)
    write_atomic(args.output, merged.to_json())
    reporter.say(f"wrote {args.output}: {_describe(merged)}")
    return 0


def _column_stats(s: GaussianSummary) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # n < 2 or a constant column: NaN is the answer
        std = s.std() if s.n > 1 else np.full(s.d, np.nan)
        corr = None if s.diagonal else s.correlation()
    return s.mean, std, corr


def _json_number(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _show_json(state: State) -> dict[str, Any]:
    def one(s: GaussianSummary) -> dict[str, Any]:
        mean, std, corr = _column_stats(s)
        return {
            "n": s.n,
            "mean": dict(zip(state.columns, map(_json_number, mean))),
            "std": dict(zip(state.columns, map(_json_number, std))),
            "correlation": None if corr is None else [[_json_number(v) for v in row] for row in corr],
        }

    out: dict[str, Any] = {"columns": list(state.columns), "by": state.by, "n": state.n, "sources": len(state.sources)}
    if state.by is None:
        out.update(one(state.summary))
    else:
        out["groups"] = [{"key": _json_key(key), **one(s)} for key, s in state.summary]
    return out


def _json_key(key: Any) -> Any:
    return key.item() if isinstance(key, np.generic) else key


def _format_number(x: float) -> str:
    return "nan" if not np.isfinite(x) else f"{x:.6g}"


def _show_table(state: State, path: str) -> str:
    names = list(state.columns)
    width = max(12, *(len(c) for c in names))
    lines = [f"{path}: {_describe(state)}"]

    def block(s: GaussianSummary, indent: str) -> None:
        mean, std, corr = _column_stats(s)
        lines.append(f"{indent}{'column':<{width}}  {'mean':>12}  {'std':>12}")
        for name, m, sd in zip(names, mean, std):
            lines.append(f"{indent}{name:<{width}}  {_format_number(m):>12}  {_format_number(sd):>12}")
        if corr is None:
            lines.append(f"{indent}(diagonal summary: no correlations kept)")
            return
        if len(names) < 2:
            return
        cell = max(7, *(len(c) for c in names))
        lines.append("")
        lines.append(f"{indent}{'correlation':<{width}}  " + "  ".join(f"{c:>{cell}}" for c in names))
        for name, row in zip(names, corr):
            cells = "  ".join(f"{'nan' if not np.isfinite(v) else f'{v:.3f}':>{cell}}" for v in row)
            lines.append(f"{indent}{name:<{width}}  {cells}")

    if state.by is None:
        lines.append(f"n = {_format_number(state.n)}")
        lines.append("")
        block(state.summary, "")
    else:
        for key, s in state.summary:
            lines.append("")
            lines.append(f"{state.by} = {_json_key(key)}: n = {_format_number(s.n)}")
            block(s, "  ")
    lines.append("")
    shown = state.sources[:5]
    lines.append("sources:")
    for source in shown:
        dropped = f", {source.rows_dropped:,} dropped" if source.rows_dropped else ""
        lines.append(f"  {source.path}  ({source.rows_read:,} rows{dropped}, sha256 {source.sha256[:12]})")
    if len(state.sources) > len(shown):
        lines.append(f"  ... and {len(state.sources) - len(shown)} more")
    return "\n".join(lines)


def _cmd_show(args: argparse.Namespace, reporter: _Reporter) -> int:
    state = read_state(args.state)
    if args.format == "json":
        print(json.dumps(_show_json(state), indent=1, allow_nan=False))
    else:
        print(_show_table(state, args.state))
    return 0


def _pick(state: State, path: str, key: str | None) -> tuple[GaussianSummary, str]:
    if key is None:
        if state.by is not None:
            raise CommandError(f"{path} is grouped by {state.by!r}; name the groups to compare with --groups A B")
        return state.summary, path
    if state.by is None:
        raise CommandError(f"{path} is not grouped, so --groups does not apply to it")
    for k, s in state.summary:
        if str(_json_key(k)) == key:
            return s, f"{path} [{state.by} = {key}]"
    keys = ", ".join(str(_json_key(k)) for k, _ in state.summary)
    raise CommandError(f"{path} has no group {key!r}; its groups are {keys:.200}")


def _cmd_compare(args: argparse.Namespace, reporter: _Reporter) -> int:
    if len(args.states) == 1 and args.groups is None:
        raise CommandError("compare needs two state files, or one grouped state and --groups A B")
    if len(args.states) > 2:
        raise CommandError(f"compare takes one or two state files, got {len(args.states)}")
    path_a, path_b = args.states[0], args.states[-1]
    state_a = read_state(path_a)
    state_b = state_a if path_b == path_a else read_state(path_b)
    if list(state_a.columns) != list(state_b.columns):
        raise CommandError(f"{path_b} has columns {', '.join(state_b.columns)} but {path_a} has {', '.join(state_a.columns)}")
    key_a, key_b = (None, None) if args.groups is None else args.groups
    a, label_a = _pick(state_a, path_a, key_a)
    b, label_b = _pick(state_b, path_b, key_b)
    try:
        from .inference import hotelling_t2, welch_t

        welch = welch_t(a, b)
        hotelling = None
        if not (a.diagonal or b.diagonal):
            hotelling = (hotelling_t2(a, b), hotelling_t2(a, b, equal_covariances=False))
    except ImportError as exc:
        raise CommandError(str(exc)) from None
    statistic, df, pvalue = (np.atleast_1d(v) for v in (welch.statistic, welch.df, welch.pvalue))
    if args.format == "json":
        out: dict[str, Any] = {
            "a": {"label": label_a, "n": a.n},
            "b": {"label": label_b, "n": b.n},
            "welch": {
                c: {"mean_a": float(ma), "mean_b": float(mb), "t": _json_number(t), "df": _json_number(f), "pvalue": _json_number(p)}
                for c, ma, mb, t, f, p in zip(state_a.columns, a.mean, b.mean, statistic, df, pvalue)
            },
            "hotelling": None,
        }
        if hotelling is not None:
            out["hotelling"] = {
                name: {"t2": r.t2, "f": r.f, "df": list(r.df), "pvalue": r.pvalue}
                for name, r in zip(("pooled", "krishnamoorthy_yu"), hotelling)
            }
        print(json.dumps(out, indent=1, allow_nan=False))
        return 0
    names = list(state_a.columns)
    width = max(12, *(len(c) for c in names))
    lines = [f"A: {label_a}, n = {_format_number(a.n)}", f"B: {label_b}, n = {_format_number(b.n)}", ""]
    lines.append("Welch t test per column (unequal variances, two-sided)")
    lines.append(f"{'column':<{width}}  {'mean A':>11}  {'mean B':>11}  {'t':>9}  {'df':>7}  {'p-value':>9}")
    for c, ma, mb, t, f, p in zip(names, a.mean, b.mean, statistic, df, pvalue):
        lines.append(
            f"{c:<{width}}  {ma:>11.5g}  {mb:>11.5g}  {t:>9.4g}  {f:>7.4g}  {p:>9.3g}"
        )
    lines.append("")
    if hotelling is None:
        lines.append("Hotelling T2: needs full covariances; these are diagonal summaries")
    else:
        for name, r in zip(("equal covariances", "unequal (Krishnamoorthy-Yu)"), hotelling):
            lines.append(
                f"Hotelling T2, {name}: T2 = {r.t2:.5g}, F({r.df[0]:.4g}, {r.df[1]:.4g}) = {r.f:.5g}, p = {r.pvalue:.3g}"
            )
    print("\n".join(lines))
    return 0


# -- argument parsing -----------------------------------------------------------------------------


def _parse_columns(text: str) -> list[str]:
    columns = [c.strip() for c in text.split(",")]
    if not all(columns):
        raise CommandError(f"--columns must be names separated by commas, got {text!r}")
    if len(set(columns)) != len(columns):
        raise CommandError(f"--columns names a column twice: {text!r}")
    return columns


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``gaussum`` command."""
    parser = argparse.ArgumentParser(
        prog="gaussum",
        description="Mergeable Gaussian summaries (count, mean, covariance) of data files, "
        "kept in crash-safe JSON state files that never count a file twice.",
    )
    parser.add_argument("--version", action="version", version=f"gaussum {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def reading_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--nan-policy", choices=("raise", "omit"), default="raise",
                       help="rows with a missing or non-finite value: fail (default) or leave them out")
        p.add_argument("--chunk-rows", type=_positive_int, default=DEFAULT_CHUNK_ROWS, metavar="N",
                       help=f"rows read at a time; bounds memory (default {DEFAULT_CHUNK_ROWS})")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no status lines")

    p = commands.add_parser("summarize", help="summarise data files into a new state file",
                            description="Summarise CSV (with a header), .npy or Parquet files into a new state file.")
    p.add_argument("data", nargs="+", metavar="DATA", help="data files (.csv, .npy, .parquet)")
    p.add_argument("-o", "--output", required=True, metavar="STATE.json", help="state file to write (replaced atomically)")
    p.add_argument("--columns", metavar="A,B,C", help="columns to summarise (default: all but --by); .npy columns are x0, x1, ...")
    p.add_argument("--by", metavar="COL", help="one summary per value of this column")
    p.add_argument("--diagonal", action="store_true", help="keep variances only, no covariances")
    reading_options(p)
    p.set_defaults(run=_cmd_summarize)

    p = commands.add_parser("update", help="fold new data files into a state file",
                            description="Fold data files into a state file; files already counted are skipped.")
    p.add_argument("state", metavar="STATE.json")
    p.add_argument("data", nargs="+", metavar="DATA")
    reading_options(p)
    p.set_defaults(run=_cmd_update)

    p = commands.add_parser("merge", help="merge state files made separately",
                            description="Merge state files (shards, days, machines) into one. A state whose files "
                            "are all in another is skipped; states that share only some files are refused.")
    p.add_argument("states", nargs="+", metavar="STATE.json")
    p.add_argument("-o", "--output", required=True, metavar="OUT.json")
    p.add_argument("-q", "--quiet", action="store_true", help="no status lines")
    p.set_defaults(run=_cmd_merge)

    p = commands.add_parser("show", help="print n, mean, std and correlations",
                            description="Print the count, per-column mean and standard deviation (ddof=1) and the "
                            "correlation matrix of a state, per group for a --by state.")
    p.add_argument("state", metavar="STATE.json")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(run=_cmd_show, quiet=True)

    p = commands.add_parser("compare", help="test whether two summaries have the same mean",
                            description="Welch t per column and Hotelling T2 from two summaries (needs scipy: "
                            "pip install 'gaussum[stats]').")
    p.add_argument("states", nargs="+", metavar="STATE.json", help="two state files, or one grouped state with --groups")
    p.add_argument("--groups", nargs=2, metavar=("A", "B"), help="the groups to compare, in grouped states")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(run=_cmd_compare, quiet=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gaussum`` command with `argv` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    reporter = _Reporter(args.quiet)
    try:
        return int(args.run(args, reporter))
    except (CommandError, SourceError, StateError) as exc:
        print(f"gaussum: error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # a summary refusing bad data, e.g. a shape mismatch
        print(f"gaussum: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `gaussum show ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("gaussum: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
