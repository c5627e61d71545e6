"""A tree reduction of many shard summaries, simulated in one process: bytes, memory, merge time.

Usage::

    python benchmarks/bench_reduce.py            # 10,000 shards at d = 256 and 100,000 at d = 32
    python benchmarks/bench_reduce.py --quick    # 1,000 at d = 64 and 10,000 at d = 16
    python benchmarks/bench_reduce.py --fan-in 8 32

What a cluster would do with N shard summaries (one per partition or file): every node of a tree
of fan-in k receives k summaries in the binary form (`GaussianSummary.to_bytes`), decodes them
(validated, as anything read from outside is), merges them with `GaussianSummary.merge_all` and
sends one summary up; the driver does the root's merge. Here the nodes run one after another,
level by level (a level's buffer is merged as soon as it holds k summaries, so memory stays at
about k summaries per level), and every step is timed on its own:

- *bytes moved*: the sum of the payloads sent to the next level, exactly;
- *decode*, *merge*, *encode*: seconds summed over the level's nodes (on a cluster a level's
  nodes run in parallel, so its wall time is about one node's time, times nodes / workers);
- *driver peak*: tracemalloc's peak while the driver decodes and merges the root's children,
  plus the bytes of the payloads it received.

The N leaves are drawn from a pool of 32 distinct shard summaries (from_samples of rows far from
zero), so that building them costs nothing: leaf i is pool[i % 32]. Their decode time is the
pool's measured median decode time times the number of leaves; every other payload (the merged
ones, all distinct) is decoded for real. The result is checked against the merge of the pool's
summaries, each scaled by how many leaves it stands for (the same data, merged in one step).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:  # standalone runs, as run.py does
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from _harness import BenchmarkCheckError, Case, Row, Settings
from gaussum import GaussianSummary

POOL = 32


@dataclass
class Level:
    """What the nodes of one level of the tree did, summed over them."""

    nodes: int = 0
    bytes_in: int = 0
    decode_s: float = 0.0
    merge_s: float = 0.0
    encode_s: float = 0.0


@dataclass
class Reduction:
    shards: int
    d: int
    fan_in: int
    payload: int
    levels: list[Level] = field(default_factory=list)
    driver_peak: int = 0
    seconds: float = 0.0

    @property
    def bytes_moved(self) -> int:
        return sum(level.bytes_in for level in self.levels)


def pool(d: int) -> list[GaussianSummary]:
    """Distinct shard summaries: correlated rows about 1e6 (so the means carry rounding errors)."""
    rng = np.random.default_rng(d)
    mixing = np.eye(d) + 0.3 * rng.standard_normal((d, d)) / math.sqrt(d)
    return [GaussianSummary.from_samples(1e6 + rng.standard_normal((2 * d + 8, d)) @ mixing) for _ in range(POOL)]


def _node(payloads: list[bytes], level: Level) -> bytes:
    level.nodes += 1
    level.bytes_in += sum(len(p) for p in payloads)
    start = time.perf_counter()
    parts = [GaussianSummary.from_bytes(p) for p in payloads]
    decoded = time.perf_counter()
    merged = GaussianSummary.merge_all(parts)
    done = time.perf_counter()
    payload = merged.to_bytes()
    level.decode_s += decoded - start
    level.merge_s += done - decoded
    level.encode_s += time.perf_counter() - done
    return payload


def _leaf_node(parts: list[GaussianSummary], decode_s: float, sizes: int, level: Level) -> bytes:
    """A node of the first level: its leaves are pool summaries, decoded (timed) once beforehand."""
    level.nodes += 1
    level.bytes_in += sizes
    level.decode_s += decode_s * len(parts)
    start = time.perf_counter()
    merged = GaussianSummary.merge_all(parts)
    done = time.perf_counter()
    payload = merged.to_bytes()
    level.merge_s += done - start
    level.encode_s += time.perf_counter() - done
    return payload


def reduce(shards: int, d: int, fan_in: int, leaves: list[GaussianSummary]) -> tuple[Reduction, GaussianSummary]:
    """Simulate the tree; return its measurements and the root's summary."""
    payloads = [s.to_bytes() for s in leaves]
    decode_s = statistics.median(_timed_decode(p) for p in payloads for _ in range(3))
    result = Reduction(shards, d, fan_in, len(payloads[0]))
    depth = max(1, math.ceil(math.log(shards, fan_in) - 1e-9))
    result.levels = [Level() for _ in range(depth)]
    buffers: list[list[bytes]] = [[] for _ in range(depth)]
    start = time.perf_counter()

    def push(payload: bytes, at: int) -> None:
        buffers[at].append(payload)
        if len(buffers[at]) == fan_in and at + 1 < depth:
            push(_node(buffers[at], result.levels[at]), at + 1)
            buffers[at] = []

    group: list[GaussianSummary] = []
    sizes = 0
    for i in range(shards if depth > 1 else 0):
        group.append(leaves[i % POOL])
        sizes += len(payloads[i % POOL])
        if len(group) == fan_in or i == shards - 1:
            push(_leaf_node(group, decode_s, sizes, result.levels[0]), 1)
            group, sizes = [], 0
    for at in range(1, depth - 1):  # flush the partly filled nodes upwards, level by level
        if buffers[at]:
            push(_node(buffers[at], result.levels[at]), at + 1)
            buffers[at] = []
    children = buffers[depth - 1] if depth > 1 else [leaves[i % POOL].to_bytes() for i in range(shards)]
    result.seconds = time.perf_counter() - start
    # The driver: it holds the children's payloads, decodes them and merges.
    received = sum(len(c) for c in children)
    root = result.levels[depth - 1]
    tracemalloc.start()
    try:
        root_payload = _node(children, root)
        result.driver_peak = tracemalloc.get_traced_memory()[1] + received
    finally:
        tracemalloc.stop()
    return result, GaussianSummary.from_bytes(root_payload)


def _timed_decode(payload: bytes) -> float:
    start = time.perf_counter()
    GaussianSummary.from_bytes(payload)
    return time.perf_counter() - start


def check(total: GaussianSummary, shards: int, leaves: list[GaussianSummary]) -> None:
    """The root equals the pool's summaries merged once, each repeated as often as the leaves it stands for.

    c copies of a summary are the summary of its rows c times over: n, M2 and w2 times c.
    """
    copies = [len(range(j, shards, POOL)) for j in range(POOL)]
    repeated = [
        GaussianSummary(s.n * c, s.mean, s.M2 * c, s.w2 * c, mean_error=s.mean_error)
        for s, c in zip(leaves, copies, strict=True) if c
    ]
    expected = GaussianSummary.merge_all(repeated)
    if total.n != expected.n or not total.isclose(expected, rtol=1e-12):
        raise BenchmarkCheckError(f"the tree's root {total} differs from the direct merge {expected}")


def measure(shards: int, d: int, fan_ins: list[int]) -> list[Reduction]:
    leaves = pool(d)
    results = []
    for k in fan_ins:
        result, total = reduce(shards, d, k, leaves)
        check(total, shards, leaves)
        results.append(result)
    return results


def _mb(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n:,.0f} B"


def table(results: list[Reduction]) -> str:
    lines = [
        "| shards | d | fan-in | levels | payload | bytes moved | decode (s) | merge (s) | encode (s) "
        "| merge per level (s) | driver peak |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in results:
        per_level = ", ".join(f"{lv.merge_s:.2f}" for lv in r.levels)
        decode = sum(lv.decode_s for lv in r.levels)
        merge = sum(lv.merge_s for lv in r.levels)
        encode = sum(lv.encode_s for lv in r.levels)
        lines.append(
            f"| {r.shards:,} | {r.d} | {r.fan_in} | {len(r.levels)} | {_mb(r.payload)} | {_mb(r.bytes_moved)} "
            f"| {decode:.2f} | {merge:.2f} | {encode:.2f} | {per_level} | {_mb(r.driver_peak)} |"
        )
    return "\n".join(lines)


def cases() -> list[Case]:
    """For run.py: the issue's two reductions at fan-in 16 (small ones with --quick)."""

    def run(settings: Settings) -> list[Row]:
        sizes = [(1_000, 64), (10_000, 16)] if settings.quick else [(10_000, 256), (100_000, 32)]
        rows = []
        for shards, d in sizes:
            (r,) = measure(shards, d, [16])
            merge = sum(lv.merge_s for lv in r.levels)
            decode = sum(lv.decode_s for lv in r.levels)
            name = f"tree reduction of {shards:,} summaries, d = {d}, fan-in 16"
            rows.append(Row(name, "decode (validated from_bytes)", merge, decode,
                            note=f"{_mb(r.bytes_moved)} moved, driver peak {_mb(r.driver_peak)}"))
        return rows

    return [Case("tree reduction simulation (bench_reduce)", run)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="1,000 shards at d = 64, 10,000 at d = 16")
    parser.add_argument("--fan-in", type=int, nargs="+", default=[4, 16, 64])
    args = parser.parse_args()
    sizes = [(1_000, 64), (10_000, 16)] if args.quick else [(10_000, 256), (100_000, 32)]
    results = []
    for shards, d in sizes:
        results.extend(measure(shards, d, args.fan_in))
    print(table(results))


__all__ = ["cases"]


if __name__ == "__main__":
    main()
