"""The README's command-line walk-through runs as written, and each message it quotes is printed.

The block is found by its heading; it runs in a fresh temporary directory, line by line, so that
each quoted message (``# "..."``) is checked against that line's own output. Lines that are a
plain ``gaussum ...`` command run in this process (fast); the others (files made with printf,
pipes) run in bash, where ``gaussum`` is this interpreter's ``python -m gaussum.cli``.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from gaussum import cli
from gaussum.cli.state import read_state

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def walk_through() -> list[str]:
    match = re.search(r"\*\*Walk-through: nightly files, two machines\*\*.*?```bash\n(.*?)```", README, re.S)
    assert match, "the README's walk-through block"
    return [line for line in match.group(1).splitlines() if line.strip()]


def test_the_walk_through_runs_as_written(tmp_path, capsys, monkeypatch):
    """Every line of the walk-through succeeds in an empty directory; quoted messages appear in
    that line's output, and the merged state is bit for bit the updated one, as the comments say."""
    monkeypatch.chdir(tmp_path)
    lines = walk_through()
    assert len(lines) >= 10 and any("|" in line.partition("#")[0] for line in lines)
    preamble = f'set -euo pipefail; gaussum() {{ {shlex.quote(sys.executable)} -m gaussum.cli "$@"; }}; '
    for line in lines:
        command, _, comment = line.partition("#")
        words = shlex.split(command)
        if words[0] == "gaussum" and not set(command) & set("|<>&;"):
            status = cli.main(words[1:])
            captured = capsys.readouterr()
            output = captured.out + captured.err
        else:
            done = subprocess.run(["bash", "-c", preamble + command], capture_output=True, text=True, check=False)
            status, output = done.returncode, done.stdout + done.stderr
        assert status == 0, (line, output)
        for quoted in re.findall(r'"([^"]+)"', comment):
            assert quoted in output, (line, output)
        if "bit for bit" in comment:
            assert read_state("merged.json").summary == read_state("state.json").summary
        if "pipes in and out" in comment:
            assert "species = virginica: n = 2" in output and "sources:" in output
    final = read_state("state.json")
    assert final.n == 7 and len(final.sources) == 2
    assert Path("summary.json").read_text().startswith("{")


@pytest.mark.parametrize("command", ["summarize", "update", "merge", "show", "compare"])
def test_every_sub_command_the_readme_lists_exists(command):
    """The README's synopsis names only sub-commands that exist."""
    assert f"gaussum {command} " in README
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
