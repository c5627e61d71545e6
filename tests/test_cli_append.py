"""Files that grow between runs: counted once, only the new bytes read, changed files refused."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from gaussum import cli
from gaussum.cli.state import read_state


def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def lines(X: np.ndarray) -> str:
    return "".join(",".join(repr(v) for v in row) + "\n" for row in X.tolist())


@pytest.fixture
def parts():
    rng = np.random.default_rng(12)
    return rng.normal(size=(50, 3)) + 4, rng.normal(size=(1234, 3)) * 2, rng.normal(size=(7, 3))


def test_a_grown_file_contributes_only_its_new_rows(tmp_path, capsys, parts):
    """A log summarised, then grown by appending twice: each update counts only the new rows, says
    so, and the state is np.cov of all rows; the one ledger entry moves forward with the size and
    hash of what was counted, keeping the earlier hashes."""
    first, second, third = parts
    log = tmp_path / "data.csv"
    log.write_text("a,b,c\n" + lines(first))
    hashes = [hashlib.sha256(log.read_bytes()).hexdigest()]
    assert run(capsys, "summarize", log, "-o", tmp_path / "s.json", "--chunk-rows", 100)[0] == 0
    for new in (second, third):
        with open(log, "a") as f:
            f.write(lines(new))
        status, _, err = run(capsys, "update", tmp_path / "s.json", log, "--chunk-rows", 100)
        assert status == 0, err
        assert f"{log} grew: counting its {len(new):,} new rows" in err
        hashes.append(hashlib.sha256(log.read_bytes()).hexdigest())
    state = read_state(str(tmp_path / "s.json"))
    rows = np.vstack(parts)
    assert state.n == len(rows)
    np.testing.assert_allclose(state.summary.covariance(), np.cov(rows, rowvar=False), rtol=1e-12)
    (entry,) = state.sources
    assert (entry.path, entry.size, entry.sha256, entry.rows_read) == (
        str(log),
        log.stat().st_size,
        hashes[-1],
        len(rows),
    )
    assert list(entry.earlier) == hashes[:-1]
    status, _, err = run(capsys, "update", tmp_path / "s.json", log)
    assert status == 0 and "already counted" in err and read_state(str(tmp_path / "s.json")).n == len(rows)


def test_copies_of_earlier_versions_stay_skipped(tmp_path, capsys, parts):
    """Yesterday's copy of a log that has grown since is still recognised as counted, and a state
    made from it merges into today's as already contained."""
    first, second, _ = parts
    log = tmp_path / "data.csv"
    log.write_text("a,b,c\n" + lines(first))
    (tmp_path / "yesterday.csv").write_bytes(log.read_bytes())
    assert run(capsys, "summarize", tmp_path / "yesterday.csv", "-o", tmp_path / "old.json")[0] == 0
    assert run(capsys, "summarize", log, "-o", tmp_path / "s.json")[0] == 0
    with open(log, "a") as f:
        f.write(lines(second))
    assert run(capsys, "update", tmp_path / "s.json", log)[0] == 0
    status, _, err = run(capsys, "update", tmp_path / "s.json", tmp_path / "yesterday.csv")
    assert status == 0 and f"skipping {tmp_path / 'yesterday.csv'}: already counted (same content as {log})" in err
    status, _, err = run(capsys, "merge", tmp_path / "old.json", tmp_path / "s.json", "-o", tmp_path / "m.json")
    assert status == 0 and "all its sources are already counted" in err
    assert read_state(str(tmp_path / "m.json")).n == len(first) + len(second)


@pytest.mark.parametrize("change", ["edited", "shrunk", "same size, other bytes", "compressed and grown"])
def test_a_counted_file_whose_counted_bytes_changed_is_refused(tmp_path, capsys, parts, change):
    """A counted path whose counted bytes changed (edited, truncated, rewritten) cannot be
    counted again: its old rows are in the state. One line, exit 1, the state untouched."""
    first, second, _ = parts
    name = "data.csv.gz" if change == "compressed and grown" else "data.csv"
    log = tmp_path / name
    text = "a,b,c\n" + lines(first)
    log.write_bytes(gzip.compress(text.encode(), mtime=0) if name.endswith(".gz") else text.encode())
    assert run(capsys, "summarize", log, "-o", tmp_path / "s.json")[0] == 0
    before = (tmp_path / "s.json").read_bytes()
    if change == "edited":
        log.write_text(text.replace("\n", "\n9,9,9\n", 1) + lines(second))
    elif change == "shrunk":
        log.write_text(text[: len(text) // 2])
    elif change == "same size, other bytes":
        log.write_text(text.replace("a,b,c", "c,b,a"))
    else:
        log.write_bytes(gzip.compress((text + lines(second)).encode(), mtime=0))
    status, out, err = run(capsys, "update", tmp_path / "s.json", log)
    assert status == 1 and out == "" and err.count("\n") == 1
    assert err.startswith(f"gaussum: error: refusing {log}: ") and "cannot be taken out" in err
    assert (tmp_path / "s.json").read_bytes() == before


def test_a_partial_last_line_in_the_new_bytes_is_an_error_naming_it(tmp_path, capsys, parts):
    """New bytes that end inside a line (a writer caught mid-line) are refused, naming the line;
    once the line is complete, the update counts it."""
    first, second, _ = parts
    log = tmp_path / "data.csv"
    log.write_text("a,b,c\n" + lines(first))
    assert run(capsys, "summarize", log, "-o", tmp_path / "s.json")[0] == 0
    with open(log, "a") as f:
        f.write(lines(second[:3]) + "1.5,2.5")
    status, _, err = run(capsys, "update", tmp_path / "s.json", log)
    assert status == 1 and f"line {len(first) + 5}: the last line has no line end" in err
    with open(log, "a") as f:
        f.write(",3.5\n")
    assert run(capsys, "update", tmp_path / "s.json", log)[0] == 0
    assert read_state(str(tmp_path / "s.json")).n == len(first) + 4


def test_a_file_counted_without_a_final_line_end_may_grow_only_from_a_new_line(tmp_path, capsys):
    """A file counted without a final line end may grow by a line end and new lines (counted), but
    not by bytes that continue its counted last line (refused)."""
    log = tmp_path / "data.csv"
    log.write_text("a,b\n1,2\n3,4")
    assert run(capsys, "summarize", log, "-o", tmp_path / "s.json")[0] == 0
    (tmp_path / "t.json").write_bytes((tmp_path / "s.json").read_bytes())
    log.write_text("a,b\n1,2\n3,4\n5,6\n")
    status, _, err = run(capsys, "update", tmp_path / "s.json", log)
    assert status == 0 and "counting its 1 new row" in err
    np.testing.assert_array_equal(read_state(str(tmp_path / "s.json")).summary.mean, [3.0, 4.0])
    log.write_text("a,b\n1,2\n3,45\n")
    status, _, err = run(capsys, "update", tmp_path / "t.json", log)
    assert status == 1 and "line 3: the last line counted before was continued" in err


def test_a_grown_file_without_a_header_keeps_its_columns(tmp_path, capsys):
    """--no-header files grow too: the first line is data, counted once, columns x0, x1."""
    log = tmp_path / "data.txt"
    log.write_text("1 2\n3 4\n")
    assert run(capsys, "summarize", log, "--no-header", "-o", tmp_path / "s.json")[0] == 0
    with open(log, "a") as f:
        f.write("5 6\n")
    assert run(capsys, "update", tmp_path / "s.json", log, "--no-header")[0] == 0
    state = json.loads((tmp_path / "s.json").read_text())
    assert state["columns"] == ["x0", "x1"] and state["summary"]["n"] == 3
    np.testing.assert_array_equal(state["summary"]["mean"], [3.0, 4.0])


def test_a_grown_file_is_recognised_under_another_spelling_of_its_path(tmp_path, capsys, parts, monkeypatch):
    """Counted as data.csv, updated as ./data.csv or through a link: still one file that grew."""
    first, second, third = parts
    monkeypatch.chdir(tmp_path)
    Path("data.csv").write_text("a,b,c\n" + lines(first))
    Path("link.csv").symlink_to("data.csv")
    assert run(capsys, "summarize", "data.csv", "-o", "s.json")[0] == 0
    for spelling, new in (("./data.csv", second), ("link.csv", third)):
        with open("data.csv", "a") as f:
            f.write(lines(new))
        status, _, err = run(capsys, "update", "s.json", spelling)
        assert status == 0 and f"counting its {len(new):,} new rows" in err, err
    state = read_state("s.json")
    assert state.n == sum(len(p) for p in parts) and len(state.sources) == 1


@pytest.mark.parametrize("ending", ["\n", ""], ids=["whole line", "half line"])
def test_a_file_growing_while_it_is_read(tmp_path, capsys, monkeypatch, parts, ending):
    """A writer appends to the file while it is being read (after its first block): a whole new
    line is counted with the rest; half a line is refused, since it would be a wrong row."""
    from gaussum.cli import reading

    rows = np.vstack([*parts] * 5)  # 390 KB: six pieces of 64 KiB, so the writer comes before the end
    log = tmp_path / "data.csv"
    log.write_text("a,b,c\n" + lines(rows))
    appended = []

    def progress(self, fraction):
        if not appended:
            appended.append(1)
            with open(log, "a") as f:
                f.write("1.5,2.5,3.5" + ending)

    monkeypatch.setattr(reading.Reporter, "progress", progress)
    status, _, err = run(capsys, "summarize", log, "-o", tmp_path / "s.json", "--chunk-rows", 100)
    if ending:
        assert status == 0, err
        state = read_state(str(tmp_path / "s.json"))
        assert state.n == len(rows) + 1 and state.sources[0].size == log.stat().st_size
    else:
        assert status == 1 and "grew while it was read" in err and "last line read is incomplete" in err
        assert not (tmp_path / "s.json").exists()
