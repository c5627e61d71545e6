"""Where a state is written: never clobbering links, pipes, devices, directories or inputs.

Every target is made under ``tmp_path`` (a symlink, a FIFO, a pseudo-terminal this test opens);
the machine's own ``/dev`` files are never written to.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
from pathlib import Path

import numpy as np
import pytest

from gaussum import cli
from gaussum.cli import writing
from gaussum.cli.state import read_state


def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def data(tmp_path):
    X = np.random.default_rng(3).normal(size=(40, 2))
    path = tmp_path / "a.csv"
    path.write_text("a,b\n" + "".join(f"{x!r},{y!r}\n" for x, y in X.tolist()))
    return path


def listing(directory: Path) -> dict[str, bytes]:
    return {p.name: (p.read_bytes() if p.is_file() and not p.is_symlink() else b"") for p in directory.iterdir()}


def test_a_symlink_target_is_written_through_and_stays_a_link(tmp_path, capsys, data):
    """-o link.json (a link to real/state.json) replaces real/state.json atomically; the link stays."""
    (tmp_path / "real").mkdir()
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "real" / "state.json")  # dangling until the first write
    assert run(capsys, "summarize", data, "-o", link)[0] == 0
    assert link.is_symlink() and (tmp_path / "real" / "state.json").is_file()
    assert run(capsys, "summarize", data, data, "-o", link, "--force")[0] == 0
    assert link.is_symlink()
    assert read_state(str(tmp_path / "real" / "state.json")).n == 40
    assert sorted(os.listdir(tmp_path / "real")) == ["state.json"]  # no temporary, no lock file left


def test_update_through_a_symlink_keeps_the_link(tmp_path, capsys, data):
    """update link.json rewrites the link's target, not the link."""
    (tmp_path / "real").mkdir()
    assert run(capsys, "summarize", data, "-o", tmp_path / "real" / "s.json")[0] == 0
    link = tmp_path / "s.json"
    link.symlink_to(Path("real") / "s.json")
    other = tmp_path / "b.csv"
    other.write_text("a,b\n1,2\n3,4\n")
    assert run(capsys, "update", link, other)[0] == 0
    assert link.is_symlink() and read_state(str(link)).n == 42


def test_a_fifo_target_is_streamed_to_not_replaced(tmp_path, capsys, data):
    """-o fifo writes the state into the pipe for its reader; the FIFO is still a FIFO."""
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    received = {}
    reader = threading.Thread(target=lambda: received.update(text=fifo.read_text()))
    reader.start()
    status, _, err = run(capsys, "summarize", data, "-o", fifo)
    reader.join(timeout=30)
    assert status == 0, err
    assert json.loads(received["text"])["summary"]["n"] == 40
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_character_device_target_is_written_as_a_stream(tmp_path, capsys, data):
    """A terminal (the slave side of a pseudo-terminal this test opens, reached by a link under
    tmp_path, as /dev/stdout would be) is written to, never renamed over."""
    master, slave = os.openpty()
    try:
        os.set_blocking(master, False)
        link = tmp_path / "terminal"
        link.symlink_to(os.ttyname(slave))
        status, _, err = run(capsys, "summarize", data, "-o", link)
        assert status == 0, err
        chunks = []
        while True:
            try:
                chunks.append(os.read(master, 1 << 16))
            except (BlockingIOError, OSError):
                break
        text = b"".join(chunks).decode().replace("\r\n", "\n")
        assert json.loads(text)["summary"]["n"] == 40
        assert stat.S_ISCHR(os.stat(link).st_mode) and link.is_symlink()
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize("case", ["directory", "missing folder", "the input itself", "input through a link"])
def test_bad_targets_are_one_line_exit_1_and_nothing_changes(tmp_path, capsys, data, case):
    """A directory, a path in a missing folder, or a data input as -o: one error line, exit 1, no
    file changed, none created."""
    (tmp_path / "dir").mkdir()
    (tmp_path / "alias.csv").symlink_to(data)
    target, phrase = {
        "directory": (tmp_path / "dir", "is a directory"),
        "missing folder": (tmp_path / "missing" / "s.json", "does not exist"),
        "the input itself": (data, "it is the input"),
        "input through a link": (tmp_path / "alias.csv", "it is the input"),
    }[case]
    before = listing(tmp_path)
    status, out, err = run(capsys, "summarize", data, "-o", target, "--force")
    assert status == 1 and out == ""
    assert err.startswith("gaussum: error: ") and err.count("\n") == 1 and phrase in err, err
    assert listing(tmp_path) == before and os.listdir(tmp_path / "dir") == []


def test_a_full_disk_leaves_the_old_state_and_no_temporary(tmp_path, capsys, data, monkeypatch):
    """When the disk fills during the write, the old state stays, no temporary is left, one line says why."""
    assert run(capsys, "summarize", data, "-o", tmp_path / "s.json")[0] == 0
    before = listing(tmp_path)
    (tmp_path / "b.csv").write_text("a,b\n1,2\n")
    before["b.csv"] = (tmp_path / "b.csv").read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    status, _, err = run(capsys, "update", tmp_path / "s.json", tmp_path / "b.csv")
    assert status == 1 and "no space left on the device; the old file is unchanged" in err and err.count("\n") == 1
    assert listing(tmp_path) == before


def test_summarize_refuses_to_replace_an_existing_state_without_force(tmp_path, capsys, data):
    """summarize -o existing.json refuses (suggesting update) unless --force, and leaves it as it was."""
    assert run(capsys, "summarize", data, "-o", tmp_path / "s.json")[0] == 0
    before = (tmp_path / "s.json").read_bytes()
    other = tmp_path / "b.csv"
    other.write_text("a,b\n1,2\n")
    status, _, err = run(capsys, "summarize", other, "-o", tmp_path / "s.json")
    assert status == 1 and "already exists" in err and "gaussum update" in err and "--force" in err
    assert (tmp_path / "s.json").read_bytes() == before
    assert run(capsys, "summarize", other, "-o", tmp_path / "s.json", "--force")[0] == 0
    assert read_state(str(tmp_path / "s.json")).n == 1


def test_leftover_temporary_files_of_a_killed_write_are_removed_by_the_next_write(tmp_path, capsys, data):
    """Temporary files named as a write to s.json names them are removed by the next write to
    s.json; other files, even similar names, are left alone."""
    assert run(capsys, "summarize", data, "-o", tmp_path / "s.json")[0] == 0
    leftovers = [tmp_path / ".s.json.k1ll3d_x.tmp", tmp_path / ".s.json.abcdefgh.tmp"]
    keep = [tmp_path / ".s.json.notours.tmp", tmp_path / ".t.json.abcdefgh.tmp", tmp_path / "s.json.abcdefgh.tmp"]
    for path in leftovers + keep:
        path.write_text("partial")
    other = tmp_path / "b.csv"
    other.write_text("a,b\n1,2\n")
    assert run(capsys, "update", tmp_path / "s.json", other)[0] == 0
    assert not any(p.exists() for p in leftovers) and all(p.exists() for p in keep)


def test_write_output_to_dash_is_standard_output(capsys):
    """write_output('-') writes the text to standard output and creates no file."""
    writing.write_output("-", "{}\n")
    assert capsys.readouterr().out == "{}\n" and not Path("-").exists()
