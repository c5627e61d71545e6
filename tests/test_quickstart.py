"""The README's first command: the quickstart example on the bundled iris data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_runs_on_the_bundled_data():
    """examples/quickstart.py summarises iris per species and checks the pooled covariance."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), str(ROOT / "data" / "iris.csv")],
        capture_output=True, text=True, check=True, timeout=120,
    )
    assert "species = setosa: n = 50" in result.stdout
    assert "pooled: n = 150" in result.stdout
    assert "pooled covariance equals np.cov on all rows: True" in result.stdout


def test_quickstart_without_a_file_says_how_to_run_it():
    """No argument: a one-line usage message and exit status 1, not a traceback."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert result.stderr == "usage: python examples/quickstart.py data/iris.csv [GROUP_COLUMN]\n"
