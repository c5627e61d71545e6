"""The sub-commands: each reads what it needs, and writes its output once, at the end.

``update`` and ``merge`` hold the target's lock from before they read the old state until the
new one is in place, so concurrent commands on one state are serialised and none is lost;
``summarize`` holds it while it checks that it is not about to replace a state (without
``--force``) and writes.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from typing import Any

from ..summary import GaussianSummary
from . import rendering
from .reading import Reporter, Request, empty_summary, fold, read_inputs
from .sources import Dialect
from .state import Source, State, StateError, check_same_layout, read_state
from .writing import is_stream_target, locked, write_output

__all__ = ["CommandError", "compare", "merge", "show", "summarize", "update"]


class CommandError(ValueError):
    """A request that cannot be carried out; its message is printed as one line."""


def parse_names(text: str, option: str) -> tuple[str, ...]:
    names = tuple(c.strip() for c in text.split(","))
    if not all(names):
        raise CommandError(f"{option} must be names separated by commas, got {text!r}")
    if len(set(names)) != len(names):
        raise CommandError(f"{option} names a column twice: {text!r}")
    return names


def _dialect(args: argparse.Namespace) -> Dialect:
    return Dialect(header=not args.no_header, delimiter=args.delimiter)


def _where(target: str) -> str:
    return "standard output" if target == "-" else target


def _refuse_inputs_as_output(inputs: Sequence[str], target: str) -> None:
    """CommandError if `target` is one of the data inputs (it would be overwritten by the state)."""
    if is_stream_target(target) or not os.path.exists(target):
        return
    for label in inputs:
        if label != "-" and os.path.exists(label) and os.path.samefile(label, target):
            raise CommandError(f"refusing to write the state to {target}: it is the input {label}")


def _request(args: argparse.Namespace, columns: tuple[str, ...] | None, by: tuple[str, ...], diagonal: bool) -> Request:
    return Request(
        columns=columns,
        by=by,
        diagonal=diagonal,
        nan_policy=args.nan_policy,
        chunk_rows=args.chunk_rows,
        dialect=_dialect(args),
        format=args.input_format,
        max_columns=args.max_columns,
        max_keys=args.max_keys,
    )


def _refuse_existing(args: argparse.Namespace) -> None:
    if not args.force and not is_stream_target(args.output) and os.path.exists(args.output):
        raise CommandError(
            f"{args.output} already exists; fold new data into it with 'gaussum update {args.output} ...', "
            "or pass --force to replace it"
        )


def summarize(args: argparse.Namespace, reporter: Reporter) -> int:
    columns = parse_names(args.columns, "--columns") if args.columns is not None else None
    by = parse_names(args.by, "--by") if args.by is not None else ()
    if columns is not None and set(by) & set(columns):
        raise CommandError(f"--by column {sorted(set(by) & set(columns))[0]!r} cannot also be in --columns")
    _refuse_inputs_as_output(args.data, args.output)
    _refuse_existing(args)  # before reading, to fail fast; again under the lock, to be sure
    request = _request(args, columns, by, args.diagonal)
    reading = read_inputs(args.data, request, reporter)
    assert reading.columns  # at least one input was read: argparse requires one, only repeats are skipped
    total = reading.total
    if total is None:
        total = empty_summary(reading.columns, by, args.diagonal)
    state = State(by or None, total, reading.sources)
    with locked(args.output, args.wait):
        _refuse_existing(args)
        write_output(args.output, state.to_json())
    reporter.say(f"wrote {_where(args.output)}: {rendering.describe(state)}")
    return 0


def update(args: argparse.Namespace, reporter: Reporter) -> int:
    if args.state == "-" or is_stream_target(args.state):
        raise CommandError(f"update needs a state file it can replace, not a stream: {args.state}")
    if not os.path.exists(args.state):
        raise StateError(f"{args.state}: no such state file")
    _refuse_inputs_as_output(args.data, args.state)
    with locked(args.state, args.wait):
        state = read_state(args.state)
        request = _request(args, state.columns, state.by_columns or (), state.diagonal)
        reading = read_inputs(
            args.data, request, reporter, total=state.summary, sources=state.sources, columns=state.columns
        )
        if not reading.inputs_added:
            reporter.say(f"{args.state} unchanged: every input is already counted")
            return 0
        new = State(state.by_columns, reading.total, reading.sources)
        write_output(args.state, new.to_json())
    rows, inputs = rendering.plural(reading.rows_added, "row"), rendering.plural(reading.inputs_added, "input")
    added = f"+{rows} from {inputs}"
    reporter.say(f"updated {args.state}: {added}; now {rendering.describe(new)}")
    return 0


def merge(args: argparse.Namespace, reporter: Reporter) -> int:
    if args.states.count("-") > 1:
        raise CommandError("- (standard input) is named twice; it can be read only once")
    with locked(args.output, args.wait):
        states = [(path, read_state(path)) for path in args.states]
        first_path, first = states[0]
        for path, state in states[1:]:
            check_same_layout(first, first_path, state.columns, state.by_columns, state.diagonal, path)
        # Largest ledgers first, so that a state whose files are all inside an earlier one is
        # skipped whatever order the shards were named in.
        order = sorted(states, key=lambda item: (-len(item[1].sources), -item[1].n))
        total: Any = None
        sources: list[Source] = []
        counted: dict[str, str] = {}  # sha256 -> the state that brought it
        for path, state in order:
            hashes = state.hashes()
            own = {s.sha256 for s in state.sources}
            shared = [h for h in hashes if h in counted]
            if shared and own <= set(counted):
                reporter.say(f"skipping {path}: all its sources are already counted (via {counted[shared[0]]})")
                continue
            if shared:
                source = hashes[shared[0]]
                raise CommandError(
                    f"refusing to merge: {source.name} (sha256 {shared[0][:12]}...) is counted in both "
                    f"{counted[shared[0]]} and {path}, and {path} has other sources too; merging would "
                    "count it twice"
                )
            total = fold(total, state.summary, path)
            sources.extend(state.sources)
            counted.update({h: path for h in hashes})
        # The merges aligned the columns by name, in the order of whichever state came first
        # in `order`; the output keeps the first named state's order.
        merged = State(first.by_columns, total.select(list(first.columns)), sources)
        write_output(args.output, merged.to_json())
    reporter.say(f"wrote {_where(args.output)}: {rendering.describe(merged)}")
    return 0


def show(args: argparse.Namespace, reporter: Reporter) -> int:
    state = read_state(args.state)
    if args.format == "json":
        print(json.dumps(rendering.show_json(state), indent=1, allow_nan=False))
    else:
        print(rendering.show_table(state, "standard input" if args.state == "-" else args.state))
    return 0


def _pick(state: State, path: str, key: str | None) -> tuple[GaussianSummary, str]:
    if key is None:
        if state.by is not None:
            raise CommandError(f"{path} is grouped by {state.by!r}; name the groups to compare with --groups A B")
        return state.summary, path
    if state.by is None:
        raise CommandError(f"{path} is not grouped, so --groups does not apply to it")
    for k, s in state.summary:
        if rendering.key_text(k) == key or str(k) == key:
            return s, f"{path} [{state.by} = {key}]"
    keys = ", ".join(rendering.key_text(k) for k, _ in state.summary)
    raise CommandError(f"{path} has no group {key!r}; its groups are {keys:.200}")


def compare(args: argparse.Namespace, reporter: Reporter) -> int:
    if len(args.states) == 1 and args.groups is None:
        raise CommandError("compare needs two state files, or one grouped state and --groups A B")
    if len(args.states) > 2:
        raise CommandError(f"compare takes one or two state files, got {len(args.states)}")
    path_a, path_b = args.states[0], args.states[-1]
    if path_a == "-" and path_b == "-" and len(args.states) == 2:
        raise CommandError("- (standard input) is named twice; it can be read only once")
    state_a = read_state(path_a)
    state_b = state_a if path_b == path_a else read_state(path_b)
    label_a = "standard input" if path_a == "-" else path_a
    label_b = "standard input" if path_b == "-" else path_b
    if list(state_a.columns) != list(state_b.columns):
        raise CommandError(
            f"{label_b} has columns {', '.join(state_b.columns)} but {label_a} has {', '.join(state_a.columns)}"
        )
    key_a, key_b = (None, None) if args.groups is None else args.groups
    a, label_a = _pick(state_a, label_a, key_a)
    b, label_b = _pick(state_b, label_b, key_b)
    try:
        from ..inference import hotelling_t2, welch_t

        welch = welch_t(a, b)
        hotelling = None
        if not (a.diagonal or b.diagonal):
            hotelling = (hotelling_t2(a, b), hotelling_t2(a, b, equal_covariances=False))
    except ImportError as exc:
        raise CommandError(str(exc)) from None
    columns = list(state_a.columns)
    if args.format == "json":
        out = rendering.compare_json(label_a, a, label_b, b, columns, welch, hotelling)
        print(json.dumps(out, indent=1, allow_nan=False))
    else:
        print(rendering.compare_table(label_a, a, label_b, b, columns, welch, hotelling))
    return 0
