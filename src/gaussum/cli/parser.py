"""The ``gaussum`` command's arguments and `main`.

argparse (the standard library) rather than click: the command line adds no dependency for
parsing. Errors are one line on stderr and exit status 1 (2 for a malformed command line).
"""

from __future__ import annotations

import argparse
import lzma
import os
import sys
import zlib
from collections.abc import Sequence

from .. import __version__
from . import commands
from .commands import CommandError
from .inputs import InputError
from .reading import DEFAULT_CHUNK_ROWS, DEFAULT_MAX_COLUMNS, DEFAULT_MAX_COLUMNS_DIAGONAL, DEFAULT_MAX_KEYS, Reporter
from .sources import SourceError, formats
from .state import StateError
from .writing import OutputError

__all__ = ["build_parser", "main"]

_DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "whitespace": " ", "space": " "}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds >= 0, got {text!r}")
    return value


def _delimiter(text: str) -> str:
    value = _DELIMITER_NAMES.get(text.lower(), text)
    if len(value) != 1 or value in '\r\n"':
        raise argparse.ArgumentTypeError(f"expected one character, or tab, comma, semicolon, whitespace; got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``gaussum`` command."""
    parser = argparse.ArgumentParser(
        prog="gaussum",
        description="Mergeable Gaussian summaries (count, mean, covariance) of data files, "
        "kept in crash-safe JSON state files that never count a file twice.",
    )
    parser.add_argument("--version", action="version", version=f"gaussum {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    names = sorted(formats())

    def reading_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--nan-policy",
            choices=("raise", "omit"),
            default="raise",
            help="rows with a missing or non-finite value: fail (default) or leave them out",
        )
        p.add_argument(
            "--format",
            dest="input_format",
            choices=names,
            default=None,
            help="format of the data inputs (default: from the name's ending; csv for "
            "standard input, pipes and names without one)",
        )
        p.add_argument(
            "--no-header", action="store_true", help="text inputs have no header line; columns are named x0, x1, ..."
        )
        p.add_argument(
            "--delimiter",
            type=_delimiter,
            default=None,
            metavar="CHAR",
            help="field delimiter of text inputs: a character, or tab, comma, semicolon, "
            "whitespace (default: sniffed from the first line; tab for .tsv)",
        )
        p.add_argument(
            "--chunk-rows",
            type=_positive_int,
            default=DEFAULT_CHUNK_ROWS,
            metavar="N",
            help=f"rows read at a time; bounds memory (default {DEFAULT_CHUNK_ROWS:,}; fewer for wide data, "
            "so that a block holds at most 64 MiB)",
        )
        p.add_argument(
            "--max-columns",
            type=_positive_int,
            default=None,
            metavar="N",
            help=f"refuse inputs with more columns to summarise (default {DEFAULT_MAX_COLUMNS:,}, "
            f"{DEFAULT_MAX_COLUMNS_DIAGONAL:,} with --diagonal)",
        )
        p.add_argument(
            "--max-keys",
            type=_positive_int,
            default=DEFAULT_MAX_KEYS,
            metavar="N",
            help=f"refuse more distinct --by keys than this (default {DEFAULT_MAX_KEYS:,})",
        )
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no status lines")

    def wait_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--wait",
            type=_seconds,
            default=None,
            metavar="SECONDS",
            help="give up if another gaussum command holds the state's lock for longer "
            "(default: wait as long as it takes)",
        )

    data_help = "data inputs: .csv, .tsv, .txt (optionally .gz, .bz2, .xz, .zst), .npy, .parquet; - for standard input"

    p = sub.add_parser(
        "summarize",
        help="summarise data files into a new state file",
        description="Summarise CSV (with a header unless --no-header), .npy or Parquet inputs into a new state file.",
    )
    p.add_argument("data", nargs="+", metavar="DATA", help=data_help)
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="STATE.json",
        help="state file to write (replaced atomically; - for standard output)",
    )
    p.add_argument(
        "--columns", metavar="A,B,C", help="columns to summarise (default: all but --by); .npy columns are x0, x1, ..."
    )
    p.add_argument(
        "--by", metavar="COL[,COL]", help="one summary per value of this column (or per combination of these columns)"
    )
    p.add_argument("--diagonal", action="store_true", help="keep variances only, no covariances")
    p.add_argument("--force", action="store_true", help="replace STATE.json if it exists (default: refuse; use update)")
    reading_options(p)
    wait_option(p)
    p.set_defaults(run=commands.summarize)

    p = sub.add_parser(
        "update",
        help="fold new data files into a state file",
        description="Fold data inputs into a state file; inputs already counted are skipped, "
        "and a counted file that has grown contributes only its new rows.",
    )
    p.add_argument("state", metavar="STATE.json", help="the state file to update (locked while it is updated)")
    p.add_argument("data", nargs="+", metavar="DATA", help=data_help)
    reading_options(p)
    wait_option(p)
    p.set_defaults(run=commands.update)

    p = sub.add_parser(
        "merge",
        help="merge state files made separately",
        description="Merge state files (shards, days, machines) into one. A state whose files "
        "are all in another is skipped; states that share only some files are refused.",
    )
    p.add_argument("states", nargs="+", metavar="STATE.json", help="the state files to merge; - for standard input")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT.json",
        help="state file to write (replaced atomically; may be one of the inputs; - for standard output)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no status lines")
    wait_option(p)
    p.set_defaults(run=commands.merge)

    p = sub.add_parser(
        "show",
        help="print n, mean, std and correlations",
        description="Print the count, per-column mean and standard deviation (ddof=1) and the "
        "correlation matrix of a state, per group for a --by state.",
    )
    p.add_argument("state", metavar="STATE.json", help="the state file to show; - for standard input")
    p.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="a table for people (default) or JSON, with the covariance, for programs",
    )
    p.set_defaults(run=commands.show, quiet=True)

    p = sub.add_parser(
        "compare",
        help="test whether two summaries have the same mean",
        description="Welch t per column and Hotelling T2 from two summaries (needs scipy: "
        "pip install 'gaussum[stats]').",
    )
    p.add_argument(
        "states",
        nargs="+",
        metavar="STATE.json",
        help="two state files, or one grouped state with --groups; - for standard input",
    )
    p.add_argument(
        "--groups",
        nargs=2,
        metavar=("A", "B"),
        help="the groups to compare, in grouped states (a composite key as its parts joined by commas)",
    )
    p.add_argument("--format", choices=("table", "json"), default="table", help="a table (default) or JSON")
    p.set_defaults(run=commands.compare, quiet=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gaussum`` command with `argv` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    reporter = Reporter(args.quiet)
    try:
        return int(args.run(args, reporter))
    except (CommandError, SourceError, StateError, InputError, OutputError) as exc:
        print(f"gaussum: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `gaussum show ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except ValueError as exc:  # a summary refusing bad data, e.g. a shape mismatch
        print(f"gaussum: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # an input that fails mid-read (an I/O error, a corrupt gzip stream)
        print(
            f"gaussum: error: {exc.filename or ''}{': ' if exc.filename else ''}{exc.strerror or exc}", file=sys.stderr
        )
        return 1
    except (EOFError, lzma.LZMAError, zlib.error) as exc:  # a truncated or corrupt compressed input
        print(f"gaussum: error: cannot decompress an input: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("gaussum: interrupted; nothing was written", file=sys.stderr)
        return 130
