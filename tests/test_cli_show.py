"""What ``show`` prints (tables and JSON), counts written one way, wide states, and the help text."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from gaussum import cli

ROOT = Path(__file__).resolve().parents[1]
IRIS = ROOT / "data" / "iris.csv"


def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def iris():
    values = np.loadtxt(IRIS, delimiter=",", skiprows=1, usecols=range(4))
    species = np.loadtxt(IRIS, delimiter=",", skiprows=1, usecols=4, dtype=str)
    return values, species


def test_show_json_has_the_covariance_per_group_and_diagonal_variances(tmp_path, capsys):
    """show --format json gives np.cov per group (full) and np.var(ddof=1) per column (diagonal)."""
    values, species = iris()
    run(capsys, "summarize", IRIS, "--by", "species", "-o", tmp_path / "g.json")
    shown = json.loads(run(capsys, "show", tmp_path / "g.json", "--format", "json")[1])
    for group in shown["groups"]:
        np.testing.assert_allclose(
            group["covariance"], np.cov(values[species == group["key"]], rowvar=False), rtol=1e-12
        )
    run(capsys, "summarize", IRIS, "--columns", "sepal_length,petal_width", "--diagonal", "-o", tmp_path / "d.json")
    shown = json.loads(run(capsys, "show", tmp_path / "d.json", "--format", "json")[1])
    assert shown["covariance"] is None and shown["correlation"] is None
    np.testing.assert_allclose(list(shown["variance"].values()), values[:, [0, 3]].var(axis=0, ddof=1), rtol=1e-12)


def test_counts_print_the_same_way_for_plain_and_grouped_states(tmp_path, capsys):
    """n is an integer in JSON (150, not 150.0) and 'n = 150' in tables, for plain and grouped states."""
    run(capsys, "summarize", IRIS, "--columns", "sepal_length", "-o", tmp_path / "p.json")
    run(capsys, "summarize", IRIS, "--by", "species", "-o", tmp_path / "g.json")
    plain = json.loads(run(capsys, "show", tmp_path / "p.json", "--format", "json")[1])
    grouped = json.loads(run(capsys, "show", tmp_path / "g.json", "--format", "json")[1])
    assert type(plain["n"]) is int and plain["n"] == 150 and type(grouped["n"]) is int and grouped["n"] == 150
    assert all(type(g["n"]) is int and g["n"] == 50 for g in grouped["groups"])
    plain_table = run(capsys, "show", tmp_path / "p.json")[1].splitlines()
    grouped_table = run(capsys, "show", tmp_path / "g.json")[1].splitlines()
    assert plain_table[1] == grouped_table[1] == "n = 150"
    assert plain_table[0].endswith(": 150 rows, 1 column, from 1 source")
    assert "species = setosa: n = 50" in grouped_table


def test_a_single_row_says_one_row(tmp_path, capsys):
    """One row, one column, one source: singular words."""
    (tmp_path / "a.csv").write_text("x\n1\n")
    status, _, err = run(capsys, "summarize", tmp_path / "a.csv", "-o", tmp_path / "s.json")
    assert status == 0 and "1 row, 1 column, from 1 source" in err


def test_show_on_many_columns_prints_a_readable_summary(tmp_path, capsys):
    """30 columns: the table lists the first 20 and says how many more, the correlation matrix
    the first 8, and points to --format json, which has all 30."""
    X = np.random.default_rng(4).normal(size=(50, 30))
    (tmp_path / "w.csv").write_text(
        ",".join(f"c{j}" for j in range(30))
        + "\n"
        + "".join(",".join(repr(v) for v in row) + "\n" for row in X.tolist())
    )
    run(capsys, "summarize", tmp_path / "w.csv", "-o", tmp_path / "s.json")
    out = run(capsys, "show", tmp_path / "s.json")[1]
    assert "c19 " in out and "c20 " not in out and "... 10 more; use --format json" in out
    assert "(correlations of the first 8 columns; use --format json for all)" in out
    assert max(len(line) for line in out.splitlines()) < 120
    shown = json.loads(run(capsys, "show", tmp_path / "s.json", "--format", "json")[1])
    assert len(shown["mean"]) == 30 and np.array(shown["correlation"]).shape == (30, 30)


def test_every_argument_has_help_text():
    """Every positional argument and option of every sub-command says what it is for."""
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(commands.choices) == {"summarize", "update", "merge", "show", "compare"}
    for name, sub in commands.choices.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{name} {action.dest} has no help text"


@pytest.mark.parametrize("command", ["summarize", "update", "merge", "show", "compare"])
def test_help_exits_0(capsys, command):
    """`gaussum COMMAND --help` prints the usage and exits 0."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0 and "usage: gaussum" in capsys.readouterr().out
