"""NIST StRD univariate data sets and their certified values, read from ../shared/nist/."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

NIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "nist"


def load_certified() -> dict:
    """The certified values: {name: {"n", "mean", "std", "file", ...}} (decimal strings)."""
    path = NIST_DIR / "certified.json"
    if not path.exists():
        raise FileNotFoundError(f"NIST reference data not found at {NIST_DIR}: the repository expects ../shared beside it")
    return json.loads(path.read_text())["datasets"]


def load_data(filename: str) -> np.ndarray:
    """The data column of one StRD file, in either layout (NIST's 'Data: Y' or a '# Data' banner)."""
    lines = (NIST_DIR / filename).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "# Data" or line.startswith("Data: Y"))
    values = []
    for line in lines[start + 1 :]:
        text = line.strip()
        if not text or text.startswith("#") or set(text) == {"-"}:
            continue
        values.append(float(text))
    return np.array(values)


def lre(computed: float, certified: str) -> float:
    """Log relative error, -log10(|computed - c| / |c|), capped at 15 (NIST's convention)."""
    c = float(certified)
    if computed == c:
        return 15.0
    return min(15.0, -math.log10(abs(computed - c) / abs(c)))
