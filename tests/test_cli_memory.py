"""Memory of a CSV read is bounded by the block size, not the file: measured by the kernel."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

# In a fresh interpreter: warm up, then for each file reset the peak resident set (VmHWM) to the
# current one, run the command, and report how far the peak rose: the smaller of two runs, since
# a busy machine's thread timing can leave the parsers' allocator one piece ahead once (a rise
# that grew with the file would show in both).
_PROBE = r"""
import json, sys
from gaussum.cli import main

def hwm_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

def reset():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")

out = sys.argv[1]
growth = {}
for i, arg in enumerate(sys.argv[2:]):
    path, by = arg.split("@")
    extra = ["--by", by] if by else []
    main(["summarize", path, *extra, "-o", out, "-q", "--force", "--chunk-rows", "4096"])  # warm: imports, pools
    rises = []
    for _ in range(2):
        reset()
        before = hwm_kib()
        main(["summarize", path, *extra, "-o", out, "-q", "--force", "--chunk-rows", "4096"])
        rises.append(hwm_kib() - before)
    growth[arg] = min(rises)
print(json.dumps(growth))
"""


def _csv(path: Path, blocks: int, keys: bool) -> Path:
    """A CSV made fast by repeating one block of 5,000 random rows `blocks` times."""
    rng = np.random.default_rng(9)
    X = rng.normal(size=(5000, 4)) * [1, 10, 100, 1000]
    k = rng.choice(["a", "b", "c"], 5000)
    text = "".join((f"{k[i]}," if keys else "") + ",".join(f"{v:.17g}" for v in row) + "\n" for i, row in enumerate(X))
    with open(path, "w") as f:
        f.write(("k," if keys else "") + "w,x,y,z\n")
        for _ in range(blocks):
            f.write(text)
    return path


def test_peak_memory_does_not_grow_with_the_file(tmp_path):
    """Reading a file 8x longer (60,000 vs 480,000 rows, 4.5 vs 36 MiB), plain and grouped by a key,
    raises the peak resident set by about the same few MiB: blocks, not the file, are held."""
    small, large = _csv(tmp_path / "small.csv", 12, False), _csv(tmp_path / "large.csv", 96, False)
    small_k, large_k = _csv(tmp_path / "small_k.csv", 12, True), _csv(tmp_path / "large_k.csv", 96, True)
    args = [f"{small}@", f"{large}@", f"{small_k}@k", f"{large_k}@k"]
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path / "s.json"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    growth = {k: v / 1024 for k, v in json.loads(done.stdout).items()}  # MiB
    size_mib = large.stat().st_size / 2**20
    assert size_mib > 30
    for pair in ((args[0], args[1]), (args[2], args[3])):
        assert growth[pair[1]] < 24 and growth[pair[1]] - growth[pair[0]] < 8, growth
