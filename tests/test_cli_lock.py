"""Concurrent writers of one state: real processes, an flock lock, none of their inputs lost."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from gaussum import cli
from gaussum.cli import writing
from gaussum.cli.state import read_state


def write_csv(path: Path, X: np.ndarray) -> Path:
    path.write_text("a,b\n" + "".join(f"{x!r},{y!r}\n" for x, y in X.tolist()))
    return path


# A fresh interpreter that imports the command once, then, round after round, forks eight
# children that each run `gaussum update STATE FILE` at the same moment, and prints their exit
# statuses. Forking from this clean process, not from pytest's, keeps the children safe from
# whatever threads or OpenMP runtimes earlier tests started in the test process.
_FORKER = r"""
import json, os, sys
from gaussum.cli import main

state, rounds = sys.argv[1], json.loads(sys.argv[2])
statuses = []
for files in rounds:
    pids = []
    for path in files:
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                code = main(["update", state, path, "-q"])
            finally:
                os._exit(code)
        pids.append(pid)
    statuses.append([os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids])
print(json.dumps(statuses))
"""


def test_eight_concurrent_updates_all_count_every_round(tmp_path):
    """8 `gaussum update` processes started at once on one state, each with its own file, end with
    all 8 files counted, in four rounds. The processes are forked (started in milliseconds, so the
    eight overlap closely); without the lock about 5 of 8 updates are lost in every round."""
    rng = np.random.default_rng(8)
    start = write_csv(tmp_path / "start.csv", rng.normal(size=(5, 2)))
    assert cli.main(["summarize", str(start), "-o", str(tmp_path / "s.json"), "-q"]) == 0
    everything = [np.loadtxt(start, delimiter=",", skiprows=1)]
    rounds = []
    for round_ in range(4):
        files = []
        for i in range(8):
            X = rng.normal(size=(10 + i, 2)) + round_
            files.append(str(write_csv(tmp_path / f"r{round_}_{i}.csv", X)))
            everything.append(X)
        rounds.append(files)
    done = subprocess.run(
        [sys.executable, "-c", _FORKER, str(tmp_path / "s.json"), json.dumps(rounds)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [[0] * 8] * 4, done.stderr
    state = read_state(str(tmp_path / "s.json"))
    assert {s.path for s in state.sources} == {str(start), *(f for files in rounds for f in files)}
    rows = np.vstack(everything)
    assert state.n == len(rows) and len(state.sources) == 33
    np.testing.assert_allclose(state.summary.covariance(), np.cov(rows, rowvar=False), rtol=1e-12)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no lock or temporary left


def test_wait_gives_up_on_a_lock_held_too_long_with_a_clear_message(tmp_path, capsys):
    """While another holder keeps the lock, `update --wait 0.3` gives up after about 0.3 s with a
    message naming the lock and --wait, and leaves the state alone; once free, it goes through."""
    write_csv(tmp_path / "a.csv", np.ones((3, 2)) * [[1], [2], [3]])
    write_csv(tmp_path / "b.csv", np.ones((2, 2)))
    assert cli.main(["summarize", str(tmp_path / "a.csv"), "-o", str(tmp_path / "s.json"), "-q"]) == 0
    before = (tmp_path / "s.json").read_bytes()
    with writing.locked(str(tmp_path / "s.json")):  # flock: another open file description, so it conflicts
        started = time.monotonic()
        status = cli.main(["update", str(tmp_path / "s.json"), str(tmp_path / "b.csv"), "--wait", "0.3"])
        waited = time.monotonic() - started
    err = capsys.readouterr().err
    assert status == 1 and 0.3 <= waited < 5
    assert "is locked by another gaussum command" in err and "--wait" in err and err.count("\n") == 1
    assert (tmp_path / "s.json").read_bytes() == before
    assert cli.main(["update", str(tmp_path / "s.json"), str(tmp_path / "b.csv"), "--wait", "0.3", "-q"]) == 0
    assert read_state(str(tmp_path / "s.json")).n == 5


def test_merge_into_one_of_its_inputs_is_locked_and_counts_once(tmp_path, capsys):
    """merge a.json b.json -o a.json reads and replaces a.json under its lock: the result has both."""
    write_csv(tmp_path / "a.csv", np.arange(6.0).reshape(3, 2))
    write_csv(tmp_path / "b.csv", np.arange(4.0).reshape(2, 2) + 10)
    for name in "ab":
        assert cli.main(["summarize", str(tmp_path / f"{name}.csv"), "-o", str(tmp_path / f"{name}.json"), "-q"]) == 0
    assert (
        cli.main(["merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "-o", str(tmp_path / "a.json"), "-q"])
        == 0
    )
    assert read_state(str(tmp_path / "a.json")).n == 5
