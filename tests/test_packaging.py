"""Packaging metadata stays consistent: one version, the citation and changelog follow it, CI runs the README.

These read the repository's files, so they are skipped where those files are absent (an installed
package's tests run from elsewhere); the sdist carries every one of them.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

import gaussum

ROOT = Path(__file__).resolve().parents[1]

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python >= 3.11 (tomllib)")


def read(name: str) -> str:
    path = ROOT / name
    if not path.exists():
        pytest.skip(f"{name} is not beside the tests")
    return path.read_text(encoding="utf-8")


def pyproject() -> dict:
    return tomllib.loads(read("pyproject.toml"))


def test_the_version_lives_in_gaussum_init_alone():
    """pyproject.toml reads the version from gaussum.__version__ instead of stating one of its own."""
    project = pyproject()["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert pyproject()["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "gaussum.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?(?:\.dev\d+)?", gaussum.__version__)


def test_citation_and_changelog_name_the_version():
    """CITATION.cff cites the current version and CHANGELOG.md has its section and an Unreleased one."""
    citation = read("CITATION.cff")
    assert re.search(rf'^version: "?{re.escape(gaussum.__version__)}"?$', citation, re.M)
    changelog = read("CHANGELOG.md")
    assert re.search(r"^## \[Unreleased\]$", changelog, re.M)
    assert re.search(rf"^## \[{re.escape(gaussum.__version__)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M)


def test_classifiers_follow_requires_python():
    """A 'Python :: 3.x' classifier for every minor version from requires-python's floor on."""
    project = pyproject()["project"]
    floor = int(re.fullmatch(r">=3\.(\d+)", project["requires-python"]).group(1))
    pattern = re.compile(r"Programming Language :: Python :: 3\.(\d+)")
    minors = sorted(int(m.group(1)) for c in project["classifiers"] if (m := pattern.fullmatch(c)))
    assert minors and minors[0] == floor and minors == list(range(floor, minors[-1] + 1))
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert "Copyright (c) 2026 The gaussum developers" in read("LICENSE")


def test_optional_modules_name_the_extras_that_install_them():
    """The root conftest reads module -> extra from pyproject.toml (the table its skips name)."""
    read("conftest.py")
    spec = importlib.util.spec_from_file_location("gaussum_root_conftest", ROOT / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    extras = pyproject()["project"]["optional-dependencies"]
    expected = {"scipy": "stats", "matplotlib": "plot", "dask": "dask", "distributed": "dask",
                "pyarrow": "cli"}
    assert {module: conftest.OPTIONAL.get(module) for module in expected} == expected
    assert set(conftest.OPTIONAL.values()) <= set(extras)


def test_every_extra_named_in_the_repository_exists():
    """Every extra that an install command in the sources, tests, examples or docs names exists."""
    extras = set(pyproject()["project"]["optional-dependencies"])
    named = {}
    for folder in ("src", "tests", "examples", "benchmarks", "docs"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in (".py", ".md", ".rst") or "_build" in path.parts:
                continue
            text = path.read_text(encoding="utf-8")
            for match in re.finditer(r"(?:gaussum|\.)\[([A-Za-z0-9_,-]+)\]", text):
                for extra in match.group(1).split(","):
                    named.setdefault(extra, str(path.relative_to(ROOT)))
    for match in re.finditer(r"(?:gaussum|\.)\[([A-Za-z0-9_,-]+)\]", read("README.md")):
        for extra in match.group(1).split(","):
            named.setdefault(extra, "README.md")
    unknown = {extra: where for extra, where in named.items() if extra not in extras}
    assert not unknown, f"extras named but not in pyproject.toml: {unknown}"


def test_ci_runs_exactly_the_readme_test_command():
    """.ci/run contains the README's test command verbatim (the checks CI adds come after it)."""
    readme = read("README.md")
    match = re.search(r"Install the test extras and run the tests.*?\n```bash\n(.+?)\n```", readme, re.S)
    assert match, "the README's test command paragraph"
    command = match.group(1)
    assert command in read(".ci/run")
