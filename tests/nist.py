"""NIST StRD univariate data sets and their certified values, read from tests/data/nist/ (see its README)."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np

NIST_DIR = Path(__file__).resolve().parent / "data" / "nist"


def load_certified() -> dict:
    """The certified values: {name: {"n", "mean", "std", "file", ...}} (decimal strings)."""
    return json.loads((NIST_DIR / "certified.json").read_text(encoding="utf-8"))["datasets"]


def load_data(filename: str) -> np.ndarray:
    """The data column of one StRD file, in either layout (NIST's 'Data: Y' or a '# Data' banner)."""
    lines = (NIST_DIR / filename).read_text(encoding="ascii").splitlines()
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


def git_blob_id(filename: str) -> str:
    """The git blob id (sha1 of ``blob <size>\\0`` + bytes) of one file, as recorded in certified.json."""
    data = (NIST_DIR / filename).read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


# Certified values in each file's header: NIST's layout, then Commons Math's 'key = value' layout.
_HEADER_PATTERNS = {
    "mean": (r"^Sample Mean\s+ybar:\s*(\S+)", r"^mean\s*=\s*(\S+)"),
    "std": (r"^Sample Standard Deviation \(denom\. = n-1\)\s+s:\s*(\S+)", r"^standardDeviation\s*=\s*(\S+)"),
    "lag1_autocorrelation": (
        r"^Sample Autocorrelation Coefficient \(lag 1\)\s+r\(1\):\s*(\S+)",
        r"^autocorrelationCoefficient\s*=\s*(\S+)",
    ),
    "n": (r"^Number of Observations:\s*(\d+)", r"^n\s*=\s*(\d+)"),
}


def header_values(filename: str) -> dict[str, str]:
    """The certified values as written in the header of one StRD file (decimal strings)."""
    text = (NIST_DIR / filename).read_text(encoding="ascii")
    found = {}
    for key, patterns in _HEADER_PATTERNS.items():
        for pattern in patterns:
            match = re.search(pattern, text, re.M)
            if match:
                found[key] = match.group(1)
                break
    return found
