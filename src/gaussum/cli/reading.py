"""Reading inputs into summaries: the ledger's decisions, the blocks, the core's counts, progress.

For each input, in one read: decide from the ledger whether it is new, already counted (skipped),
or a counted file that has grown (only its new bytes are read); read it block by block through
its format's reader, hashing the very bytes parsed; summarise each block with the core, which
applies ``--nan-policy`` and says how many rows it dropped; fold the blocks left to right with
``+``, so the same input always gives the same bits. The ledger entry is made from what was read.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO, TextIO

import attrs
import numpy as np

from ..errors import Float64OverflowError, NonFiniteError
from ..summary import GaussianSummary
from .inputs import Input, open_input
from .rendering import plural
from .sources import Block, Dialect, Format, NotNumericError, Resume, SourceError, format_for
from .state import Source

__all__ = ["DEFAULT_CHUNK_ROWS", "Reporter", "Request", "column_limit", "empty_summary", "fold", "read_inputs"]

DEFAULT_CHUNK_ROWS = 65_536

#: Default limits on the columns of one summary: a full covariance costs 8 d² bytes (4,096
#: columns: 128 MiB per summary), a diagonal one 8 d.
DEFAULT_MAX_COLUMNS = 4_096
DEFAULT_MAX_COLUMNS_DIAGONAL = 1_000_000
#: The most bytes of values one block may hold, whatever --chunk-rows says.
MAX_BLOCK_BYTES = 64 << 20
#: Default limit on distinct --by keys: memory grows with keys x d².
DEFAULT_MAX_KEYS = 100_000

# The largest magnitude whose square is finite in float64.
_SQRT_MAX = float(np.sqrt(np.finfo(np.float64).max))

# The progress bar appears only for inputs that take longer than this to read.
_PROGRESS_DELAY_S = 0.5

_HASH_BLOCK = 1 << 20
_MAX_FIRST_LINE = 64 << 20


class Reporter:
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

    def warn(self, message: str) -> None:
        """A warning: printed even with --quiet, since it may mean the result is not what was meant."""
        self.finish()
        print(f"gaussum: warning: {message}", file=self.stream)

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
        filled = round(fraction * width)
        rate = fraction / (now - self._started)
        eta = f"{(1 - fraction) / rate:4.0f}s left" if rate > 0 else ""
        self.stream.write(f"\r{self._label[-40:]:40} [{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%} {eta}")
        self.stream.flush()

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\r" + " " * 90 + "\r")
            self.stream.flush()
            self._drawn = False


@attrs.frozen
class Request:
    """What to read: the columns (None: all but the keys, from the first input), the key
    columns (empty: no grouping), and how."""

    columns: tuple[str, ...] | None
    by: tuple[str, ...]
    diagonal: bool
    nan_policy: str = "raise"
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    dialect: Dialect = attrs.field(factory=Dialect)
    format: str | None = None
    max_columns: int | None = None
    max_keys: int = DEFAULT_MAX_KEYS


def column_limit(request: Request) -> int:
    if request.max_columns is not None:
        return request.max_columns
    return DEFAULT_MAX_COLUMNS_DIAGONAL if request.diagonal else DEFAULT_MAX_COLUMNS


def block_rows(chunk_rows: int, d: int) -> int:
    """Rows per block: `chunk_rows`, or fewer for wide data, so that a block of float64 values
    stays within `MAX_BLOCK_BYTES` (65,536 rows of 4,096 columns would be 2 GiB)."""
    return max(1, min(chunk_rows, MAX_BLOCK_BYTES // (8 * max(d, 1))))


# -- summaries of blocks --------------------------------------------------------------------------


def _summarize_block(block: Block, request: Request, columns: Sequence[str], label: str) -> tuple[Any, int]:
    """The summary of one block and the rows the core dropped; errors name the input and row."""
    values = block.values
    try:
        if block.keys is None:
            return GaussianSummary._from_samples_counted(
                values, names=columns, diagonal=request.diagonal, nan_policy=request.nan_policy
            )
        from ..grouped import GroupedSummary

        return GroupedSummary._from_samples_counted(
            block.keys, values, names=columns, diagonal=request.diagonal, nan_policy=request.nan_policy
        )
    except NonFiniteError as exc:
        i = 0 if exc.row is None else exc.row
        j = int(np.flatnonzero(~np.isfinite(values[i]))[0]) if exc.column is None else exc.column
        raise SourceError(
            f"{label}, data row {block.first_row + i}: column {columns[j]!r} is missing or not finite "
            f"({values[i, j]}); pass --nan-policy omit to leave such rows out"
        ) from None
    except Float64OverflowError as exc:
        last = block.first_row + len(values) - 1
        at = exc.row
        if at is not None and np.abs(values[at]).max() > _SQRT_MAX:
            where = f"data row {block.first_row + at}"  # this row's square alone overflows
        else:
            where = f"data rows {block.first_row}-{last}"  # a sum of finite squares does
        raise SourceError(f"{label}, {where}: {exc}") from None


def fold(total: Any, part: Any, where: str) -> Any:
    """`total` + `part` (either may be None); SourceError naming `where` if the sum overflows."""
    if part is None:
        return total
    if total is None:
        return part
    message = f"{where}: adding it to the summary overflows float64 (sums of squares); rescale the data first"
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            merged = total + part
        except Float64OverflowError:  # the core refuses overflow; say which input caused it
            raise SourceError(message) from None
    if not _is_finite(merged):
        raise SourceError(message)
    return merged


def _is_finite(summary: Any) -> bool:
    mean = summary.mean if isinstance(summary, GaussianSummary) else summary.means
    return bool(np.isfinite(summary.n) and np.isfinite(mean).all() and np.isfinite(summary.M2).all())


def empty_summary(columns: Sequence[str], by: Sequence[str], diagonal: bool) -> Any:
    """The summary of no rows of `columns` (named), grouped when `by` names key columns."""
    if not by:
        return GaussianSummary.empty(len(columns), diagonal=diagonal, names=columns)
    from ..grouped import GroupedSummary

    return GroupedSummary.empty(len(columns), diagonal=diagonal, key_dtype=str, names=columns)


def _blocks_with_hint(blocks: Iterator[Block], hint: str) -> Iterator[Block]:
    """`blocks`, with `hint` added to a not-numeric error (when the columns were not chosen)."""
    try:
        yield from blocks
    except NotNumericError as exc:
        raise NotNumericError(f"{exc}{hint}") from None


# -- the ledger's decisions -----------------------------------------------------------------------


def _pread_hash(source: Input, size: int) -> str:
    """SHA-256 of the first `size` bytes of an open regular file, without moving its offset."""
    import hashlib

    digest = hashlib.sha256()
    fd = source.file.fileno()
    offset = 0
    while offset < size:
        chunk = os.pread(fd, min(_HASH_BLOCK, size - offset), offset)
        if not chunk:
            break
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def _same_file(path: str, sources: Sequence[Source]) -> Source | None:
    """The entry whose path, as recorded, names the same file as `path` (``./a.csv`` and
    ``a.csv``, or a link to it), so that a grown file is recognised however it is spelled."""
    for s in sources:
        if s.path is not None and os.path.exists(s.path):
            try:
                if os.path.samefile(s.path, path):
                    return s
            except OSError:
                continue
    return None


def _changed(label: str, entry: Source, why: str) -> SourceError:
    return SourceError(
        f"refusing {label}: {why} since it was counted ({entry.size:,} bytes, sha256 {entry.sha256[:12]}); "
        "its counted rows are in the state and cannot be taken out again; give new data a new file name"
    )


def _resume_point(source: Input, entry: Source) -> Resume:
    """Read (and hash) the counted part of a grown file; its first line, lines and last byte."""
    raw = source.raw
    first, lines, last, left = b"", 0, b"", entry.size
    while left:
        chunk = raw.read_exactly(min(_HASH_BLOCK, left))
        if not chunk:
            break
        if b"\n" not in first and len(first) < _MAX_FIRST_LINE:
            first += chunk[: chunk.find(b"\n") + 1 or len(chunk)]
        lines += chunk.count(b"\n")
        last = chunk[-1:]
        left -= len(chunk)
    if raw.hexdigest() != entry.sha256:
        raise _changed(source.label, entry, "its first bytes have changed")
    ends = last == b"\n"
    return Resume(first, lines + (0 if ends else 1), entry.rows_read, ends)


@attrs.define
class _Plan:
    action: str  # "read", "skip" or "append"
    message: str = ""
    entry: Source | None = None
    resume: Resume | None = None


def _plan(source: Input, fmt: Format, sources: Sequence[Source]) -> _Plan:
    """What to do with a regular file, from the ledger, before reading it."""
    assert source.path is not None and source.size is not None
    entry = next((s for s in sources if s.path == source.path), None) or _same_file(source.path, sources)
    size = source.size
    if entry is not None:
        if size == entry.size:
            if _pread_hash(source, size) == entry.sha256:
                return _Plan("skip", f"skipping {source.label}: already counted")
            raise _changed(source.label, entry, "its content has changed")
        if size < entry.size:
            raise _changed(source.label, entry, f"it has shrunk to {size:,} bytes")
        if not fmt.appendable or source.compression is not None:
            raise _changed(
                source.label,
                entry,
                "it has grown, and only an uncompressed text file can be read from where it ended; it has changed",
            )
        return _Plan("append", entry=entry, resume=_resume_point(source, entry))
    if any(s.size == size for s in sources):
        # Only a file of the same size can have the same content: hash it first, then, if it is
        # new after all, read it (and hash it again as it is parsed: that hash is recorded).
        digest = _pread_hash(source, size)
        known = {h: s for s in sources for h in (s.sha256, *s.earlier)}
        if digest in known:
            return _Plan("skip", f"skipping {source.label}: already counted (same content as {known[digest].name})")
    return _Plan("read")


# -- reading ------------------------------------------------------------------------------------


@attrs.define
class Reading:
    """The result of `read_inputs`: columns, the folded summary, the ledger, what was added."""

    columns: list[str]
    total: Any
    sources: list[Source]
    rows_added: int = 0
    inputs_added: int = 0


def read_inputs(
    labels: Sequence[str],
    request: Request,
    reporter: Reporter,
    *,
    total: Any = None,
    sources: Sequence[Source] = (),
    columns: Sequence[str] | None = None,
    stdin: BinaryIO | None = None,
) -> Reading:
    """Fold the inputs named by `labels` onto `total` (a state's summary, or None).

    Inputs already in `sources` (by content, or by path and unchanged) are skipped and reported;
    a counted file that has grown contributes its new rows, and its entry moves forward.
    """
    result = Reading(list(columns) if columns is not None else list(request.columns or []), total, list(sources))
    read_stdin = False
    for label in labels:
        if label == "-":
            if read_stdin:
                raise SourceError("- (standard input) is named twice; it can be read only once")
            read_stdin = True
        with open_input(label, stdin) as source:
            fmt, _ = format_for(label, request.format, source.is_regular)
            plan = _plan(source, fmt, result.sources) if source.is_regular else _Plan("read")
            if plan.action == "skip":
                reporter.say(plan.message)
                continue
            names, part, rows, dropped = _read_one(source, fmt, plan.resume, request, result.columns or None, reporter)
            if not result.columns:
                result.columns = names
            source.raw.drain()  # the hash covers the whole input, trailing bytes too
            digest, size = source.raw.hexdigest(), source.raw.bytes_read
            _check_not_caught_mid_line(source, fmt, size)
            if plan.action == "append":
                entry = plan.entry
                assert entry is not None
                moved = Source(
                    entry.path,
                    size,
                    digest,
                    entry.rows_read + rows,
                    entry.rows_dropped + dropped,
                    (*entry.earlier, entry.sha256),
                )
                result.sources[result.sources.index(entry)] = moved
                reporter.say(f"{label} grew: counting its {plural(rows, 'new row')}")
            else:
                known = {h: s for s in result.sources for h in (s.sha256, *s.earlier)}
                if digest in known:
                    reporter.say(f"skipping {label}: already counted (same content as {known[digest].name})")
                    continue
                result.sources.append(Source(source.path, size, digest, rows, dropped))
            result.total = fold(result.total, part, label)
            _check_keys(result.total, request, label)
            result.rows_added += rows - dropped
            result.inputs_added += 1
    return result


def _check_not_caught_mid_line(source: Input, fmt: Format, size: int) -> None:
    """SourceError if a text file grew while it was read and what was read ends inside a line.

    A writer appending to the file was then caught mid-line: the half line would be counted as a
    row with wrong values, and the rest of it could never be appended. A file at rest without a
    final line end is fine, and so is one that grew by whole lines (they are counted; later ones
    are read as new bytes next time).
    """
    grew = source.size is not None and size > source.size
    if grew and fmt.appendable and source.compression is None and source.raw.last_byte != b"\n":
        raise SourceError(
            f"{source.label}: it grew while it was read ({source.size:,} to {size:,} bytes) and the "
            "last line read is incomplete, as if a writer was caught mid-line; nothing was written; run again"
        )


def _check_keys(summary: Any, request: Request, label: str) -> None:
    if request.by and summary is not None and len(summary) > request.max_keys:
        raise SourceError(
            f"{label}: more than {request.max_keys:,} distinct --by keys (memory grows with keys x columns²); "
            "raise the limit with --max-keys N"
        )


def _read_one(
    source: Input,
    fmt: Format,
    resume: Resume | None,
    request: Request,
    columns: Sequence[str] | None,
    reporter: Reporter,
) -> tuple[list[str], Any, int, int]:
    """(columns, summary or None if no rows, rows read, rows dropped) of one input."""
    label = source.label
    total = None
    rows_read = rows_dropped = 0
    reporter.start(label)
    try:
        with fmt.open(source, request.dialect, resume) as reader:
            for warning in getattr(reader, "warnings", ()):
                reporter.warn(warning)
            hint = ""
            if columns is None:
                columns = [c for c in reader.names if c not in request.by]
                hint = "; choose numeric columns with --columns" + ("" if request.by else ", or group by it with --by")
                if not columns:
                    raise SourceError(
                        f"{label}: no columns to summarise besides the --by column(s) {','.join(request.by)!r}"
                    )
            limit = column_limit(request)
            if len(columns) > limit:
                kind = "a diagonal summary" if request.diagonal else "a full covariance"
                raise SourceError(
                    f"{label}: {plural(len(columns), 'column')} to summarise, "
                    f"more than the limit of {limit:,} for {kind}; "
                    "raise it with --max-columns N"
                    + ("" if request.diagonal else ", or keep variances only with --diagonal")
                )
            rows = block_rows(request.chunk_rows, len(columns))
            for block in _blocks_with_hint(reader.blocks(columns, request.by, rows), hint):
                part, dropped = _summarize_block(block, request, columns, label)
                rows_read += len(block.values)
                rows_dropped += dropped
                if len(block.values) > dropped:
                    last = block.first_row + len(block.values) - 1
                    total = fold(total, part, f"{label}, data rows {block.first_row}-{last}")
                    _check_keys(total, request, label)
                fraction = source.fraction_done()
                if fraction is not None:
                    reporter.progress(fraction)
    finally:
        reporter.finish()
    return list(columns), total, rows_read, rows_dropped
