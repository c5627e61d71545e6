"""Text inputs: dialects, compression, the two parsers giving the same bits, and bounded cost."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import time
from pathlib import Path

import numpy as np
import pytest

from gaussum import cli
from gaussum.cli.sources import csv as csv_source
from gaussum.cli.state import read_state


def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def text(X: np.ndarray, delimiter: str = ",", header: list[str] | None = None) -> str:
    head = [] if header is None else [delimiter.join(header)]
    return "\n".join(head + [delimiter.join(repr(v) for v in row) for row in X.tolist()]) + "\n"


@pytest.fixture
def X():
    return np.random.default_rng(21).normal(size=(500, 3)) * [1.0, 100.0, 1e-3] + [5.0, 0.0, -1.0]


def summary_of(capsys, path, *options):
    out = Path(path).with_name(Path(path).name + ".json")
    status, _, err = run(capsys, "summarize", path, "-o", out, "--force", "--chunk-rows", 64, *options)
    assert status == 0, err
    return json.loads(out.read_text())


@pytest.mark.parametrize("arrow", [False, True], ids=["csv module", "pyarrow"])
def test_dialects_and_compression_give_the_same_bits(tmp_path, capsys, X, arrow, monkeypatch):
    """Comma, tab (.tsv and sniffed), semicolon, whitespace (.txt), --delimiter, and gzip, bzip2,
    xz, zstd copies of one table give the same summary bits, by either parser, as np.cov."""
    monkeypatch.setattr(csv_source, "ARROW_FROM_BYTES", 0 if arrow else 1 << 40)
    header = ["a", "b", "c"]
    plain = text(X, ",", header)
    files = {
        "plain.csv": plain.encode(),
        "tabs.tsv": text(X, "\t", header).encode(),
        "tabs_sniffed.csv": text(X, "\t", header).encode(),
        "semicolons.csv": text(X, ";", header).encode(),
        "spaces.txt": text(X, "  ", header).encode(),
        "pipes.dat": text(X, "|", header).encode(),
        "plain.csv.gz": gzip.compress(plain.encode(), mtime=0),
        "plain.csv.bz2": bz2.compress(plain.encode()),
        "plain.csv.xz": lzma.compress(plain.encode()),
    }
    import zstandard  # the cli extra, which CI installs: a broken install must fail, not skip

    files["plain.csv.zst"] = zstandard.ZstdCompressor().compress(plain.encode())
    summaries = {}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        options = ["--delimiter", "|", "--format", "csv"] if name == "pipes.dat" else []
        state = summary_of(capsys, tmp_path / name, *options)
        assert state["columns"] == header, name
        summaries[name] = state["summary"]
    assert all(s == summaries["plain.csv"] for s in summaries.values()), [
        k for k, s in summaries.items() if s != summaries["plain.csv"]
    ]
    M2 = np.array(summaries["plain.csv"]["M2"])
    np.testing.assert_allclose(M2 / 499, np.cov(X, rowvar=False), rtol=1e-12)


def test_fields_pyarrow_refuses_are_parsed_by_the_csv_module_with_the_same_bits(tmp_path, capsys, X, monkeypatch):
    """Spaces around numbers, missing-value markers in any case and quoted fields, which send a
    piece to the csv module, and a text column not asked for give the bits of the clean file (its
    NaN rows left out)."""
    monkeypatch.setattr(csv_source, "ARROW_FROM_BYTES", 0)
    clean = text(X, ",", ["a", "b", "c"])
    rows = clean.splitlines()
    spaced = [rows[0]] + [", ".join(r.split(",")) if i % 7 == 0 else r for i, r in enumerate(rows[1:])]
    marked = [*rows, "NA,1,2", "3,None,4", "5,6,N/a", "nan,NULL,"]
    quoted = rows[:300] + [",".join(f'"{v}"' for v in r.split(",")) for r in rows[300:]]
    texted = [rows[0] + ",note"] + [f"{r},row {i}" for i, r in enumerate(rows[1:])]
    for name, lines in (
        ("clean", rows),
        ("spaced", spaced),
        ("marked", marked),
        ("quoted", quoted),
        ("texted", texted),
    ):
        (tmp_path / f"{name}.csv").write_text("\n".join(lines) + "\n")
    reference = summary_of(capsys, tmp_path / "clean.csv")["summary"]
    assert summary_of(capsys, tmp_path / "spaced.csv")["summary"] == reference
    assert summary_of(capsys, tmp_path / "quoted.csv")["summary"] == reference
    assert summary_of(capsys, tmp_path / "texted.csv", "--columns", "a,b,c")["summary"] == reference
    marked_state = summary_of(capsys, tmp_path / "marked.csv", "--nan-policy", "omit")
    assert marked_state["summary"] == reference and marked_state["sources"][0]["rows_dropped"] == 4


def test_no_header_names_columns_x0_and_counts_the_first_row(tmp_path, capsys, X):
    """--no-header reads the first line as data: every row counted, columns x0, x1, x2."""
    (tmp_path / "a.csv").write_text(text(X))
    state = summary_of(capsys, tmp_path / "a.csv", "--no-header")
    assert state["columns"] == ["x0", "x1", "x2"] and state["summary"]["n"] == 500
    np.testing.assert_allclose(state["summary"]["mean"], X.mean(axis=0), rtol=1e-13)


def test_a_numeric_first_line_warns_and_names_no_header(tmp_path, capsys, X):
    """A header that looks like numbers is used, with a warning (even with -q) naming --no-header."""
    (tmp_path / "a.csv").write_text(text(X))
    status, _, err = run(capsys, "summarize", tmp_path / "a.csv", "-o", tmp_path / "s.json", "-q")
    assert status == 0 and "gaussum: warning: the first line of" in err and "--no-header" in err
    assert read_state(str(tmp_path / "s.json")).n == 499


def test_header_only_file_gives_an_empty_state(tmp_path, capsys):
    """A CSV with a header and no rows gives a state of n = 0 with its columns."""
    (tmp_path / "a.csv").write_text("a,b\n")
    state = summary_of(capsys, tmp_path / "a.csv")
    assert state["columns"] == ["a", "b"] and state["summary"]["n"] == 0


@pytest.mark.parametrize("case", ["binary", "dev zero", "too many columns", "too many keys", "duplicate names"])
def test_bounded_inputs_fail_fast_with_one_line(tmp_path, capsys, case):
    """Binary data, a link to /dev/zero (an endless input), a header wider than --max-columns, more
    keys than --max-keys and a repeated column name are refused quickly, naming the flag to use."""
    (tmp_path / "binary.csv").write_bytes(b"a,b\n1,2\x00\x00\x00\n")
    (tmp_path / "zero.csv").symlink_to("/dev/zero")
    (tmp_path / "wide.csv").write_text(",".join(f"c{j}" for j in range(5000)) + "\n")
    (tmp_path / "keys.csv").write_text("k,x\n" + "".join(f"{i},{i}\n" for i in range(12)))
    (tmp_path / "twice.csv").write_text(",".join(f"c{j % 60000}" for j in range(60001)) + "\n")
    argv, phrase = {
        "binary": ([tmp_path / "binary.csv"], "NUL"),
        "dev zero": ([tmp_path / "zero.csv"], "NUL bytes"),
        "too many columns": (
            [tmp_path / "wide.csv"],
            "5,000 columns to summarise, more than the limit of 4,096 for a full covariance; "
            "raise it with --max-columns N, or keep variances only with --diagonal",
        ),
        "too many keys": (
            [tmp_path / "keys.csv", "--by", "k", "--max-keys", "10", "--chunk-rows", 4],
            "more than 10 distinct --by keys",
        ),
        "duplicate names": ([tmp_path / "twice.csv"], "the header names 'c0' more than once"),
    }[case]
    started = time.monotonic()
    status, out, err = run(capsys, "summarize", *argv, "-o", tmp_path / "s.json")
    assert time.monotonic() - started < 5
    assert status == 1 and out == "" and err.count("\n") == 1 and phrase in err, err
    assert not (tmp_path / "s.json").exists()


def test_wide_headers_are_opened_in_linear_time_and_limits_can_be_raised(tmp_path, capsys):
    """A 100,000-column header opens in well under a second per column set (linear name checks);
    --diagonal summarises 5,000 columns, and --max-columns lets a full one through."""
    names = [f"c{j}" for j in range(100_000)]
    (tmp_path / "wide.csv").write_text(",".join(names) + "\n" + ",".join("1" for _ in names) + "\n")
    started = time.monotonic()
    status, _, err = run(
        capsys, "summarize", tmp_path / "wide.csv", "--columns", "c5,c99999", "-o", tmp_path / "s.json"
    )
    assert status == 0, err
    assert time.monotonic() - started < 10
    (tmp_path / "w5k.csv").write_text(",".join(names[:5000]) + "\n" + ",".join("2" for _ in range(5000)) + "\n")
    assert run(capsys, "summarize", tmp_path / "w5k.csv", "--diagonal", "-o", tmp_path / "d.json")[0] == 0
    status, _, err = run(
        capsys,
        "summarize",
        tmp_path / "w5k.csv",
        "--columns",
        ",".join(names[:300]),
        "--max-columns",
        "300",
        "-o",
        tmp_path / "f.json",
    )
    assert status == 0, err


def test_composite_keys_from_csv_and_parquet_are_the_same_groups(tmp_path, capsys):
    """--by a,b groups by the pair; a CSV and a Parquet file with the same pairs merge into the
    same groups, shown as 'g = x, h = 1' and compared with --groups x,1 y,2."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(2)
    g = rng.choice(["x", "y"], 80)
    h = rng.integers(1, 3, 80)
    v = rng.normal(size=(80, 2))
    first = zip(g[:40], h[:40], v[:40].tolist(), strict=True)
    (tmp_path / "a.csv").write_text("g,h,p,q\n" + "".join(f"{a},{b},{c!r},{d!r}\n" for a, b, (c, d) in first))
    pq.write_table(pa.table({"g": g[40:], "h": h[40:], "p": v[40:, 0], "q": v[40:, 1]}), tmp_path / "b.parquet")
    assert run(capsys, "summarize", tmp_path / "a.csv", "--by", "g,h", "-o", tmp_path / "s.json")[0] == 0
    status, _, err = run(capsys, "update", tmp_path / "s.json", tmp_path / "b.parquet")
    assert status == 0, err
    state = read_state(str(tmp_path / "s.json"))
    assert state.by == "g,h" and len(state.summary) == 4
    for key, s in state.summary:
        a, b = str(key).split("\x1f")
        rows = v[(g == a) & (h == int(b))]
        assert s.n == len(rows)
        np.testing.assert_allclose(s.covariance(), np.cov(rows, rowvar=False), rtol=1e-12)
    status, out, _ = run(capsys, "show", tmp_path / "s.json")
    assert status == 0 and "g = x, h = 1: n = " in out
    status, out, err = run(capsys, "compare", tmp_path / "s.json", "--groups", "x,1", "y,2", "--format", "json")
    assert status == 0, err
    assert json.loads(out)["a"]["n"] == int(((g == "x") & (h == 1)).sum())


@pytest.mark.parametrize("arrow", [False, True], ids=["csv module", "pyarrow"])
def test_blank_lines_missing_values_and_line_numbers_agree_between_parsers(tmp_path, capsys, monkeypatch, arrow):
    """Blank lines (skipped), missing values (dropped under omit) and the line number of a bad
    field many pieces into the file are the same whichever parser reads the pieces."""
    monkeypatch.setattr(csv_source, "ARROW_FROM_BYTES", 0 if arrow else 1 << 40)
    rows = [f"{i}.000000000001,{i % 7}.500000000001" for i in range(6000)]  # 190 KB: several pieces
    rows[100] = ""
    rows[2000] = "NA,1"
    rows[4000] = ""
    rows[4001] = "3,"
    (tmp_path / "a.csv").write_text("x,y\n" + "\n".join(rows) + "\n\n")
    state = summary_of(capsys, tmp_path / "a.csv", "--nan-policy", "omit", "--chunk-rows", 500)
    assert state["sources"][0]["rows_read"] == 5998 and state["sources"][0]["rows_dropped"] == 2
    kept = np.array([[float(v) for v in r.split(",")] for r in rows if r and "NA" not in r and not r.endswith(",")])
    np.testing.assert_allclose(state["summary"]["mean"], kept.mean(axis=0), rtol=1e-13)
    rows[5000] = "oops,1"
    (tmp_path / "b.csv").write_text("x,y\n" + "\n".join(rows) + "\n")
    status, _, err = run(
        capsys, "summarize", tmp_path / "b.csv", "-o", tmp_path / "b.json", "--chunk-rows", 200, "--nan-policy", "omit"
    )
    assert status == 1 and "line 5002: column 'x' is not numeric: 'oops'" in err, err


def test_blocks_of_wide_data_hold_at_most_64_mib():
    """--chunk-rows is a most: 4,096 columns give blocks of 2,048 rows (64 MiB), 8 columns the
    65,536 rows asked for."""
    from gaussum.cli.reading import block_rows

    assert block_rows(65_536, 8) == 65_536
    assert block_rows(65_536, 4096) == 2048
    assert block_rows(10, 4096) == 10
    assert block_rows(65_536, 10_000_000) == 1
