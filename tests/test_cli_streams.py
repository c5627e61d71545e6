"""The command line in pipelines: standard input and output, named pipes, process substitution.

Streams go through real pipes (`subprocess` with ``stdin=``/``stdout=``) and FIFOs made under
``tmp_path``; nothing here reads or writes the machine's own ``/dev`` files as targets.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from gaussum import cli
from gaussum.cli.state import read_state

GAUSSUM = [sys.executable, "-m", "gaussum.cli"]


def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def write_csv(path, X, header=None):
    header = header or [f"c{j}" for j in range(X.shape[1])]
    lines = [",".join(header)] + [",".join(repr(v) for v in row) for row in X.tolist()]
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


def gaussum(*argv, stdin=None, cwd=None):
    """Run the command in a fresh process; its CompletedProcess (bytes in, text out)."""
    return subprocess.run([*GAUSSUM, *map(str, argv)], input=stdin, capture_output=True, cwd=cwd, check=False)


@pytest.fixture
def rows():
    return np.random.default_rng(5).normal(size=(300, 3)) * [1.0, 10.0, 0.1] + 2.0


def test_standard_input_is_read_hashed_and_recorded_without_a_path(tmp_path, capsys, rows):
    """`cat a.csv | gaussum summarize - -o s.json` gives the summary of a.csv, a ledger entry with
    no path and the hash of the bytes piped, and a later update skips a.csv as already counted."""
    data = write_csv(tmp_path / "a.csv", rows)
    done = gaussum("summarize", "-", "-o", tmp_path / "piped.json", stdin=data.read_bytes())
    assert done.returncode == 0, done.stderr
    assert run(capsys, "summarize", data, "-o", tmp_path / "file.json", "-q")[0] == 0
    piped, named = read_state(str(tmp_path / "piped.json")), read_state(str(tmp_path / "file.json"))
    assert piped.summary == named.summary
    (source,) = piped.sources
    assert source.path is None and source.sha256 == hashlib.sha256(data.read_bytes()).hexdigest()
    assert source.size == data.stat().st_size and source.rows_read == 300
    status, _, err = run(capsys, "update", tmp_path / "piped.json", data)
    assert status == 0 and "already counted (same content as (stream, sha256" in err
    status, out, _ = run(capsys, "show", tmp_path / "piped.json")
    assert status == 0 and f"  (stream)  (300 rows, sha256 {source.sha256[:12]})" in out.splitlines()


def test_output_dash_writes_the_state_to_standard_output_and_show_reads_it_back(tmp_path, capsys, rows):
    """`summarize ... -o - | gaussum show -` works through real pipes, and the state on stdout is
    the one a file would hold."""
    data = write_csv(tmp_path / "a.csv", rows)
    producer = subprocess.Popen([*GAUSSUM, "summarize", str(data), "-o", "-", "-q"], stdout=subprocess.PIPE)
    shown = subprocess.run(
        [*GAUSSUM, "show", "-", "--format", "json"], stdin=producer.stdout, capture_output=True, text=True, check=False
    )
    producer.stdout.close()
    assert producer.wait() == 0 and shown.returncode == 0, shown.stderr
    np.testing.assert_allclose(list(json.loads(shown.stdout)["mean"].values()), rows.mean(axis=0), rtol=1e-13)
    assert not (tmp_path / "-").exists()
    state_text = run(capsys, "summarize", data, "-o", "-", "-q")[1]
    assert run(capsys, "summarize", data, "-o", tmp_path / "file.json", "-q")[0] == 0
    assert state_text == (tmp_path / "file.json").read_text()


def test_compare_reads_one_state_from_standard_input(tmp_path, capsys, monkeypatch, rows):
    """`gaussum compare - b.json < a.json` tests the state on standard input against the named one
    (in this process: compare imports scipy, which takes seconds to start)."""
    write_csv(tmp_path / "a.csv", rows)
    write_csv(tmp_path / "b.csv", rows[:100] + 0.5)
    for name in "ab":
        assert run(capsys, "summarize", tmp_path / f"{name}.csv", "-o", tmp_path / f"{name}.json", "-q")[0] == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO((tmp_path / "a.json").read_text()))
    status, out, err = run(capsys, "compare", "-", tmp_path / "b.json", "--format", "json")
    assert status == 0, err
    result = json.loads(out)
    assert result["a"]["label"] == "standard input" and result["a"]["n"] == 300 and result["b"]["n"] == 100


def test_compressed_and_npy_streams_on_standard_input(tmp_path, capsys, monkeypatch, rows):
    """A gzip-compressed CSV on stdin (a real pipe) is recognised by its first bytes; a .npy
    stream needs --format npy."""
    data = write_csv(tmp_path / "a.csv", rows)
    done = gaussum("summarize", "-", "-o", "-", "-q", stdin=gzip.compress(data.read_bytes(), mtime=0))
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(json.loads(done.stdout)["summary"]["mean"], rows.mean(axis=0), rtol=1e-13)
    buffer = io.BytesIO()
    np.save(buffer, rows)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(buffer.getvalue())))
    status, out, err = run(capsys, "summarize", "-", "--format", "npy", "-o", "-", "-q")
    assert status == 0, err
    state = json.loads(out)
    assert state["columns"] == ["x0", "x1", "x2"]
    np.testing.assert_allclose(state["summary"]["mean"], rows.mean(axis=0), rtol=1e-13)


@pytest.mark.skipif(shutil.which("bash") is None, reason="process substitution is a bash feature")
def test_process_substitution_and_dev_stdin_are_inputs(tmp_path, rows):
    """`gaussum summarize <(cat a.csv)` (a /dev/fd pipe) and `gaussum summarize /dev/stdin < a.csv`
    read the data once, recorded by hash only."""
    data = write_csv(tmp_path / "a.csv", rows)
    script = f"{' '.join(GAUSSUM)} summarize <(cat a.csv) -o sub.json -q"
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    with open(data, "rb") as stdin:
        done = subprocess.run(
            [*GAUSSUM, "summarize", "/dev/stdin", "-o", "stdin.json", "-q"],
            stdin=stdin,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    for name in ("sub.json", "stdin.json"):
        state = read_state(str(tmp_path / name))
        assert state.sources[0].path is None and state.n == 300


def test_a_named_pipe_is_read_once(tmp_path, capsys, rows):
    """A FIFO input (no name ending: CSV) is read once, as it is written, and gives the file's summary."""
    data = write_csv(tmp_path / "a.csv", rows)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(data.read_bytes()))
    writer.start()
    status, _, err = run(capsys, "summarize", fifo, "-o", tmp_path / "s.json")
    writer.join()
    assert status == 0, err
    assert run(capsys, "summarize", data, "-o", tmp_path / "file.json")[0] == 0
    state = read_state(str(tmp_path / "s.json"))
    assert state.summary == read_state(str(tmp_path / "file.json")).summary
    assert state.sources[0].path is None


def test_standard_input_named_twice_is_refused(capsys, monkeypatch):
    """`summarize - -` cannot read standard input twice: one line, exit 1."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"x\n1\n2\n")))
    status, out, err = run(capsys, "summarize", "-", "-", "-o", "-")
    assert status == 1 and out == "" and "standard input) is named twice" in err


def test_merge_reads_a_state_from_standard_input_and_writes_to_standard_output(tmp_path, capsys, monkeypatch, rows):
    """`gaussum merge - b.json -o -` merges the state on standard input with a named one."""
    write_csv(tmp_path / "a.csv", rows[:200])
    write_csv(tmp_path / "b.csv", rows[200:])
    for name in "ab":
        assert run(capsys, "summarize", tmp_path / f"{name}.csv", "-o", tmp_path / f"{name}.json", "-q")[0] == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO((tmp_path / "a.json").read_text()))
    status, out, err = run(capsys, "merge", "-", tmp_path / "b.json", "-o", "-", "-q")
    assert status == 0, err
    merged = json.loads(out)
    assert merged["summary"]["n"] == 300 and len(merged["sources"]) == 2
    np.testing.assert_allclose(merged["summary"]["mean"], rows.mean(axis=0), rtol=1e-13)
