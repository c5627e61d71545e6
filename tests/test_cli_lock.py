"""Concurrent writers of one state: real processes, an flock lock, none of their inputs lost."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np

from gaussum import cli
from gaussum.cli import writing
from gaussum.cli.state import read_state


def write_csv(path: Path, X: np.ndarray) -> Path:
    path.write_text("a,b\n" + "".join(f"{x!r},{y!r}\n" for x, y in X.tolist()))
    return path


def _forked_update(state: Path, data: Path) -> int:
    """Start `gaussum update state data` in a forked child process (the modules are already
    imported, so eight start in milliseconds); its pid."""
    with warnings.catch_warnings():
        # Python 3.12+ warns when forking a process with threads (pytest plugins may have some);
        # the child runs only the command and exits, taking no lock another thread could hold.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: run the command, then leave without running the parent's cleanup
        status = 70
        try:
            status = cli.main(["update", str(state), str(data), "-q"])
        finally:
            os._exit(status)
    return pid


def test_eight_concurrent_updates_all_count_every_round(tmp_path):
    """8 `gaussum update` processes started at once on one state, each with its own file, end with
    all 8 files counted, in four rounds. The processes are forked (started in milliseconds, so the
    eight overlap closely); without the lock about 5 of 8 updates are lost in every round."""
    rng = np.random.default_rng(8)
    start = write_csv(tmp_path / "start.csv", rng.normal(size=(5, 2)))
    assert cli.main(["summarize", str(start), "-o", str(tmp_path / "s.json"), "-q"]) == 0
    everything = [np.loadtxt(start, delimiter=",", skiprows=1)]
    for round_ in range(4):
        files = []
        for i in range(8):
            X = rng.normal(size=(10 + i, 2)) + round_
            files.append(write_csv(tmp_path / f"r{round_}_{i}.csv", X))
            everything.append(X)
        pids = [_forked_update(tmp_path / "s.json", f) for f in files]
        statuses = [os.waitpid(pid, 0)[1] for pid in pids]
        assert [os.waitstatus_to_exitcode(s) for s in statuses] == [0] * 8
        state = read_state(str(tmp_path / "s.json"))
        assert {s.path for s in state.sources} >= {str(f) for f in files}, f"round {round_} lost an update"
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
