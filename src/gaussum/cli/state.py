"""The command line's state file: a summary, its column names and a ledger of what went into it.

A state file is JSON (version 2)::

    {
      "format": "gaussum.state",
      "version": 2,
      "columns": ["sepal_length", ...],       # the summary's names, repeated for readers of the file
      "by": ["species"],                      # the key column(s), or null for one summary
      "summary": {...},                       # GaussianSummary.to_dict() or GroupedSummary.to_dict()
      "sources": [                            # the ledger, in the order the inputs were added
        {"path": "data/iris.csv", "size": 3858, "sha256": "...", "rows_read": 150, "rows_dropped": 0},
        {"path": null, "size": 812, "sha256": "...", "rows_read": 20, "rows_dropped": 0},
        {"path": "log.csv", "size": 9000, "sha256": "...", "rows_read": 300, "rows_dropped": 0,
         "earlier": ["..."]}
      ]
    }

A source is identified by the SHA-256 of its bytes, not by its path: the same file under another
name is still the same data, and counting it twice would bias every statistic. ``path`` is null
for an input read from a stream (standard input, a pipe), which has no name to find it by
again. ``size`` and ``sha256`` are what was counted: when a file at that path has grown and its
first ``size`` bytes still hash to ``sha256``, only the new bytes are read, and the entry moves
forward; ``earlier`` (left out while empty) keeps the hashes of the versions it moved from, so that a copy of
yesterday's version is still recognised as counted.

Version 1 (written by gaussum before the ledger followed appended files: ``by`` a single name,
no ``earlier``) is still read. `read_state` checks everything ``from_dict`` checks and, in
addition, that the count in the summary is the number of rows the ledger says were kept, which
catches most hand edits.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

import attrs

from ..summary import GaussianSummary

__all__ = [
    "STATE_FORMAT",
    "STATE_VERSION",
    "Source",
    "State",
    "StateError",
    "check_same_layout",
    "read_state",
    "state_from_dict",
]

STATE_FORMAT = "gaussum.state"
STATE_VERSION = 2
_READS = (1, 2)

_SHA256 = re.compile(r"[0-9a-f]{64}")


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _optional_strings(values: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


def _sources(values: Iterable[Source]) -> tuple[Source, ...]:
    return tuple(values)


class StateError(ValueError):
    """A state file that cannot be used: unreadable, malformed, or inconsistent with a request."""


@attrs.frozen
class Source:
    """One ledger entry: an input that went into a state.

    ``rows_read`` counts its data rows; ``rows_dropped`` those left out by ``--nan-policy
    omit``. ``sha256`` (of its first ``size`` bytes) is the source's identity; ``path`` is None
    for a stream; ``earlier`` holds the hashes of the shorter versions of a grown file.
    """

    path: str | None
    size: int
    sha256: str
    rows_read: int
    rows_dropped: int
    earlier: tuple[str, ...] = attrs.field(default=(), converter=_strings)

    @property
    def name(self) -> str:
        """The path, or a short description of a stream, for messages."""
        return self.path if self.path is not None else f"(stream, sha256 {self.sha256[:12]})"

    def to_dict(self) -> dict[str, Any]:
        out = attrs.asdict(self)
        earlier = out.pop("earlier")
        return {**out, "earlier": list(earlier)} if earlier else out

    @classmethod
    def from_dict(cls, data: Any, where: str, version: int) -> Source:
        fields: dict[str, Any] = {"path": str, "size": int, "sha256": str, "rows_read": int, "rows_dropped": int}
        if version >= 2 and isinstance(data, dict) and "earlier" in data:
            fields["earlier"] = list
        if not isinstance(data, dict) or set(data) != set(fields):
            raise StateError(f"{where}: a source must have exactly the keys {sorted(fields)}, got {data!r:.120}")
        for key, kind in fields.items():
            value = data[key]
            if key == "path" and value is None and version >= 2:
                continue
            if not isinstance(value, kind) or isinstance(value, bool):
                raise StateError(f"{where}: source field {key!r} must be a {kind.__name__}, got {value!r:.60}")
            if kind is int and value < 0:
                raise StateError(f"{where}: source field {key!r} must be >= 0, got {value}")
        for digest in [data["sha256"], *data.get("earlier", [])]:
            if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
                raise StateError(f"{where}: source sha256 must be 64 lowercase hex digits, got {digest!r:.80}")
        if data["rows_dropped"] > data["rows_read"]:
            raise StateError(f"{where}: source {data['path']!r} drops more rows than it read")
        return cls(**data)


def _grouped_type() -> Any:
    from ..grouped import GroupedSummary  # lazy: only states made with --by need it

    return GroupedSummary


@attrs.frozen
class State:
    """A summary (one `GaussianSummary`, or a `GroupedSummary` per value of the key columns)
    and the ledger of its sources.

    The summary carries the names of its columns (``summary.names``): `columns` reads them from
    it, so the state has no list of its own to disagree with the numbers. ``by`` is the key
    column, or the key columns joined by commas, as ``--by`` takes them.
    """

    by_columns: tuple[str, ...] | None = attrs.field(converter=_optional_strings)
    summary: Any = attrs.field()
    sources: tuple[Source, ...] = attrs.field(converter=_sources)

    @summary.validator
    def _check_named(self, attribute: Any, value: Any) -> None:
        if value.names is None:
            raise ValueError("a state's summary must carry its column names")

    @property
    def columns(self) -> tuple[str, ...]:
        """The summarised columns, in the summary's order."""
        names: tuple[str, ...] = self.summary.names
        return names

    @property
    def by(self) -> str | None:
        return None if self.by_columns is None else ",".join(self.by_columns)

    @property
    def diagonal(self) -> bool:
        return bool(self.summary.diagonal)

    @property
    def n(self) -> float:
        return float(self.summary.n)

    def hashes(self) -> dict[str, Source]:
        """Every content hash the ledger has counted (earlier versions of grown files too)."""
        out: dict[str, Source] = {}
        for s in self.sources:
            out[s.sha256] = s
            out.update({h: s for h in s.earlier})
        return out

    def by_path(self) -> dict[str, Source]:
        return {s.path: s for s in self.sources if s.path is not None}

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "columns": list(self.columns),
            "by": None if self.by_columns is None else list(self.by_columns),
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

        def dump(value: Any) -> str:
            return json.dumps(value, allow_nan=False)

        lines = [f" {dump(key)}: {dump(value)}," for key, value in fields.items()]
        listed = ",\n".join(f"  {dump(s)}" for s in sources)
        lines.append(f' "sources": [\n{listed}\n ]' if sources else ' "sources": []')
        return "{\n" + "\n".join(lines) + "\n}\n"


def _names(value: Any, where: str, what: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(c, str) for c in value):
        raise StateError(f"{where}: {what!r} must be a non-empty list of names, got {value!r:.80}")
    if len(set(value)) != len(value):
        raise StateError(f"{where}: {what!r} names a column twice: {value!r:.120}")
    return value


def state_from_dict(data: Any, where: str) -> State:
    """Validate a parsed state file (version 1 or 2); StateError naming `where` for anything wrong."""
    if not isinstance(data, dict):
        raise StateError(f"{where}: not a gaussum state file (expected a JSON object)")
    expected = {"format", "version", "columns", "by", "summary", "sources"}
    if data.get("format") != STATE_FORMAT:
        raise StateError(
            f"{where}: not a gaussum state file (format is {data.get('format')!r}, expected {STATE_FORMAT!r})"
        )
    # type() and not ==: 1.0 and True equal 1 but are not what gaussum writes.
    version = data.get("version")
    if type(version) is not int or version not in _READS:
        raise StateError(f"{where}: state format version {version!r}; this gaussum reads versions 1 and 2")
    if set(data) != expected:
        raise StateError(
            f"{where}: state file has missing keys {sorted(expected - set(data))} "
            f"and unexpected keys {sorted(set(data) - expected)}"
        )
    columns = _names(data["columns"], where, "columns")
    by = data["by"]
    if version == 1 and by is not None:
        if not isinstance(by, str):
            raise StateError(f"{where}: 'by' must be null or a column name not among 'columns', got {by!r:.80}")
        by = [by]
    if by is not None:
        by = _names(by, where, "by")
        if set(by) & set(columns):
            raise StateError(f"{where}: 'by' must be null or column names not among 'columns', got {by!r:.80}")
    try:
        summary = (
            GaussianSummary.from_dict(data["summary"]) if by is None else _grouped_type().from_dict(data["summary"])
        )
    except (ValueError, TypeError, OverflowError, KeyError, IndexError) as exc:
        # Whatever a hand edit makes from_dict raise (an n too large for float64, a wrong type,
        # an impossible M2) is one line naming the file, never a traceback.
        raise StateError(f"{where}: invalid summary: {exc}") from None
    moments = summary.mean if isinstance(summary, GaussianSummary) else summary.means
    scalar = moments.ndim == (0 if by is None else 1)
    if scalar or summary.d != len(columns):
        d = "scalar data" if scalar else f"{summary.d} variable(s)"
        raise StateError(f"{where}: the summary has {d} but 'columns' names {len(columns)}")
    if summary.names is None:
        summary = _named(summary, columns)
    elif list(summary.names) != columns:
        raise StateError(
            f"{where}: 'columns' lists {_listed(columns)} but the summary's names are {_listed(summary.names)}"
        )
    if not isinstance(data["sources"], list):
        raise StateError(f"{where}: 'sources' must be a list")
    sources = [Source.from_dict(s, where, version) for s in data["sources"]]
    seen: dict[str, str] = {}
    for s in sources:
        for digest in (s.sha256, *s.earlier):
            if digest in seen:
                raise StateError(f"{where}: the ledger lists the same content twice ({seen[digest]!r} and {s.name!r})")
            seen[digest] = s.name
    paths = [s.path for s in sources if s.path is not None]
    if len(set(paths)) != len(paths):
        raise StateError(f"{where}: the ledger lists a path twice")
    state = State(by, summary, sources)
    kept = sum(s.rows_read - s.rows_dropped for s in sources)
    if state.n != kept:
        raise StateError(
            f"{where}: the summary counts n={state.n:g} rows but its sources kept {kept}; "
            "the file was edited or corrupted"
        )
    return state


def _named(summary: Any, columns: list[str]) -> Any:
    """`summary` with the state's column names: files written before summaries carried names
    keep them only in 'columns'. Rebuilt from every public field, so nothing else changes."""
    if isinstance(summary, GaussianSummary):
        return GaussianSummary(
            summary.n, summary.mean, summary.M2, summary.w2, names=columns, mean_error=summary.mean_error
        )
    return _grouped_type()(
        summary.keys(),
        summary.counts,
        summary.means,
        summary.M2,
        summary.w2,
        names=columns,
        mean_errors=summary.mean_errors,
    )


def read_state(path: str, stdin: TextIO | None = None) -> State:
    """Read and validate the state file at `path` (``-``: standard input)."""
    where = "standard input" if path == "-" else path
    try:
        if path == "-":
            text = (stdin if stdin is not None else sys.stdin).read()
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
    except FileNotFoundError:
        raise StateError(f"{path}: no such state file") from None
    except IsADirectoryError:
        raise StateError(f"{path}: is a directory, not a state file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(f"{where}: cannot read the state file: {exc}") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        raise StateError(f"{where}: not a gaussum state file: invalid JSON ({exc})") from None
    return state_from_dict(data, where)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed in a state file")


def check_same_layout(
    a: State, where_a: str, b_columns: Sequence[str], b_by: Sequence[str] | None, b_diagonal: bool, where_b: str
) -> None:
    """StateError unless two states (or a state and a request) have the same columns (in any
    order: merges align them by name), grouping and kind of summary."""
    if sorted(a.columns) != sorted(b_columns):
        raise StateError(f"{where_b} has columns {_listed(b_columns)} but {where_a} has {_listed(a.columns)}")
    b_by = None if b_by is None else tuple(b_by)
    if a.by_columns != b_by:

        def describe(by: tuple[str, ...] | None) -> str:
            return f"grouped by {','.join(by)!r}" if by else "not grouped"

        raise StateError(f"{where_b} is {describe(b_by)} but {where_a} is {describe(a.by_columns)}")
    if a.diagonal != b_diagonal:

        def describe_d(d: bool) -> str:
            return "diagonal" if d else "full"

        raise StateError(f"{where_b} is a {describe_d(b_diagonal)} summary but {where_a} is {describe_d(a.diagonal)}")


def _listed(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names)} in all)"
