"""The command line's state file: a summary, its column names and a ledger of what went into it.

A state file is JSON::

    {
      "format": "gaussum.state",
      "version": 1,
      "columns": ["sepal_length", ...],
      "by": "species",                        # or null for one summary of all rows
      "summary": {...},                       # GaussianSummary.to_dict() or GroupedSummary.to_dict()
      "sources": [                            # the ledger, in the order the files were added
        {"path": "data/iris.csv", "size": 3858, "sha256": "...", "rows_read": 150, "rows_dropped": 0}
      ]
    }

A source is identified by the SHA-256 of its bytes, not by its path: the same file under another
name is still the same data, and counting it twice would bias every statistic. `read_state`
checks everything `from_dict` checks and, in addition, that the count in the summary is the
number of rows the ledger says were kept, which catches most hand edits.

`write_atomic` replaces a file so that a crash at any moment leaves the old file or the new one,
never a mixture: it writes a temporary file in the same directory, flushes it to disk (fsync),
renames it over the target (atomic on POSIX and on Windows' ``os.replace``), then fsyncs the
directory so that the rename itself survives a power cut.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Sequence
from typing import Any

import attrs

from .summary import GaussianSummary

__all__ = ["STATE_FORMAT", "STATE_VERSION", "StateError", "Source", "State", "read_state", "write_atomic"]

STATE_FORMAT = "gaussum.state"
STATE_VERSION = 1

_SHA256 = re.compile(r"[0-9a-f]{64}")


class StateError(ValueError):
    """A state file that cannot be used: unreadable, malformed, or inconsistent with a request."""


@attrs.frozen
class Source:
    """One ledger entry: a data file that went into a state.

    ``rows_read`` counts the data rows in the file; ``rows_dropped`` those left out by
    ``--nan-policy omit``. ``sha256`` (of the file's bytes) is the source's identity.
    """

    path: str
    size: int
    sha256: str
    rows_read: int
    rows_dropped: int

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Source:
        fields = {"path": str, "size": int, "sha256": str, "rows_read": int, "rows_dropped": int}
        if not isinstance(data, dict) or set(data) != set(fields):
            raise StateError(f"{where}: a source must have exactly the keys {sorted(fields)}, got {data!r:.120}")
        for key, kind in fields.items():
            value = data[key]
            if not isinstance(value, kind) or isinstance(value, bool):
                raise StateError(f"{where}: source field {key!r} must be a {kind.__name__}, got {value!r:.60}")
            if kind is int and value < 0:
                raise StateError(f"{where}: source field {key!r} must be >= 0, got {value}")
        if not _SHA256.fullmatch(data["sha256"]):
            raise StateError(f"{where}: source sha256 must be 64 lowercase hex digits, got {data['sha256']!r:.80}")
        if data["rows_dropped"] > data["rows_read"]:
            raise StateError(f"{where}: source {data['path']!r} drops more rows than it read")
        return cls(**data)


def _grouped_type() -> Any:
    from .grouped import GroupedSummary  # lazy: only states made with --by need it

    return GroupedSummary


@attrs.frozen
class State:
    """A summary (one `GaussianSummary`, or a `GroupedSummary` per value of ``by``), with the
    names of its columns and the ledger of its sources."""

    columns: tuple[str, ...] = attrs.field(converter=tuple)
    by: str | None
    summary: Any
    sources: tuple[Source, ...] = attrs.field(converter=tuple)

    @property
    def diagonal(self) -> bool:
        return bool(self.summary.diagonal)

    @property
    def n(self) -> float:
        return float(self.summary.n)

    def hashes(self) -> dict[str, Source]:
        return {s.sha256: s for s in self.sources}

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "columns": list(self.columns),
            "by": self.by,
            "summary": self.summary.to_dict(),
            "sources": [s.to_dict() for s in self.sources],
        }

    def to_json(self) -> str:
        """The file's text: one top-level field per line, one source per line, arrays compact.

        ``allow_nan=False``: a summary is finite by construction, and strict JSON stays readable
        by every other tool. Floats are written by ``repr``, so reading gives the same bits.
        """
        fields = self.to_dict()
        sources = fields.pop("sources")
        dump = lambda value: json.dumps(value, allow_nan=False)  # noqa: E731
        lines = [f" {dump(key)}: {dump(value)}," for key, value in fields.items()]
        listed = ",\n".join(f"  {dump(s)}" for s in sources)
        lines.append(f' "sources": [\n{listed}\n ]' if sources else ' "sources": []')
        return "{\n" + "\n".join(lines) + "\n}\n"


def state_from_dict(data: Any, where: str) -> State:
    """Validate a parsed state file; StateError naming `where` for anything wrong."""
    if not isinstance(data, dict):
        raise StateError(f"{where}: not a gaussum state file (expected a JSON object)")
    expected = {"format", "version", "columns", "by", "summary", "sources"}
    if data.get("format") != STATE_FORMAT:
        raise StateError(f"{where}: not a gaussum state file (format is {data.get('format')!r}, expected {STATE_FORMAT!r})")
    # type() and not ==: 1.0 and True equal 1 but are not what this gaussum writes.
    if type(data.get("version")) is not int or data["version"] != STATE_VERSION:
        raise StateError(f"{where}: state format version {data.get('version')!r}; this gaussum reads version {STATE_VERSION}")
    if set(data) != expected:
        raise StateError(
            f"{where}: state file has missing keys {sorted(expected - set(data))} "
            f"and unexpected keys {sorted(set(data) - expected)}"
        )
    columns, by = data["columns"], data["by"]
    if not isinstance(columns, list) or not columns or not all(isinstance(c, str) for c in columns):
        raise StateError(f"{where}: 'columns' must be a non-empty list of names, got {columns!r:.80}")
    if len(set(columns)) != len(columns):
        raise StateError(f"{where}: 'columns' names a column twice: {columns!r:.120}")
    if by is not None and (not isinstance(by, str) or by in columns):
        raise StateError(f"{where}: 'by' must be null or a column name not among 'columns', got {by!r:.80}")
    try:
        summary = GaussianSummary.from_dict(data["summary"]) if by is None else _grouped_type().from_dict(data["summary"])
    except (ValueError, TypeError, OverflowError, KeyError, IndexError) as exc:
        # Whatever a hand edit makes from_dict raise (an n too large for float64, a wrong type,
        # an impossible M2) is one line naming the file, never a traceback.
        raise StateError(f"{where}: invalid summary: {exc}") from None
    if not isinstance(data["sources"], list):
        raise StateError(f"{where}: 'sources' must be a list")
    sources = [Source.from_dict(s, where) for s in data["sources"]]
    seen: dict[str, str] = {}
    for s in sources:
        if s.sha256 in seen:
            raise StateError(f"{where}: the ledger lists the same content twice ({seen[s.sha256]!r} and {s.path!r})")
        seen[s.sha256] = s.path
    state = State(columns, by, summary, sources)
    scalar = (summary.mean if by is None else summary.means).ndim == (0 if by is None else 1)
    if scalar or summary.d != len(columns):
        d = "scalar data" if scalar else f"{summary.d} variable(s)"
        raise StateError(f"{where}: the summary has {d} but 'columns' names {len(columns)}")
    kept = sum(s.rows_read - s.rows_dropped for s in sources)
    if state.n != kept:
        raise StateError(
            f"{where}: the summary counts n={state.n:g} rows but its sources kept {kept}; "
            "the file was edited or corrupted"
        )
    return state


def read_state(path: str) -> State:
    """Read and validate the state file at `path`."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise StateError(f"{path}: no such state file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(f"{path}: cannot read the state file: {exc}") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        raise StateError(f"{path}: not a gaussum state file: invalid JSON ({exc})") from None
    return state_from_dict(data, path)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed in a state file")


def write_atomic(path: str, text: str) -> None:
    """Replace the file at `path` with `text`: all of it or, after a crash, none of it."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file private (0600); give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    if not hasattr(os, "O_DIRECTORY"):  # Windows: a directory cannot be opened for fsync
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_same_layout(a: State, where_a: str, b_columns: Sequence[str], b_by: str | None, b_diagonal: bool, where_b: str) -> None:
    """StateError unless two states (or a state and a request) have the same columns, grouping
    and kind of summary."""
    if list(a.columns) != list(b_columns):
        raise StateError(
            f"{where_b} has columns {', '.join(b_columns)} but {where_a} has {', '.join(a.columns)}"
        )
    if a.by != b_by:
        describe = lambda by: f"grouped by {by!r}" if by else "not grouped"  # noqa: E731
        raise StateError(f"{where_b} is {describe(b_by)} but {where_a} is {describe(a.by)}")
    if a.diagonal != b_diagonal:
        describe_d = lambda d: "diagonal" if d else "full"  # noqa: E731
        raise StateError(f"{where_b} is a {describe_d(b_diagonal)} summary but {where_a} is {describe_d(a.diagonal)}")
