"""Optional extras degrade to skips: a test or doctest that needs a missing extra is skipped, naming it.

gaussum's core needs only numpy and attrs; scipy, matplotlib, dask, pyarrow and zstandard come
with extras. With only ``pip install -e ".[test]"`` the suite still passes: a test module, test
or doctest (``--doctest-modules`` over ``src/gaussum``) that fails only because one of the modules in
`OPTIONAL` is not installed is reported as skipped, with the extra that brings it. The failure
must say so itself: a ``ModuleNotFoundError`` for that module, raised by the test or anywhere in
the chain of the error it raised (gaussum's own "pip install 'gaussum[stats]'" errors chain to
one), or its message ("No module named 'dask'") in a failure's text, as when an example script
run in a subprocess dies on the import.

Nothing changes when every extra is installed: only modules that were missing when the session
started can turn a failure into a skip, so in CI (which installs all the extras) every failure
stays a failure, and `.ci/run` also fails if anything was skipped at all.
"""

from __future__ import annotations

import doctest
import importlib.metadata
import importlib.util
import re
from pathlib import Path

import pytest

# Distributions whose module has another name.
_MODULE_OF = {"scikit-learn": "sklearn", "pillow": "PIL", "pyyaml": "yaml"}
# Extras of tools rather than features: their packages never make a test optional.
_TOOL_EXTRAS = {"bench", "docs", "lint", "release"}
# Modules that come with an extra without being named in it.
_COMES_WITH = {"pandas": "dask", "pyarrow": "dask"}


def _extras() -> dict[str, list[str]]:
    """pyproject.toml's optional dependencies; on Python 3.10 (no tomllib), the installed metadata."""
    try:
        import tomllib

        text = (Path(__file__).with_name("pyproject.toml")).read_text(encoding="utf-8")
        return tomllib.loads(text)["project"]["optional-dependencies"]
    except (ImportError, OSError, KeyError):
        pass
    extras: dict[str, list[str]] = {}
    for requirement in importlib.metadata.requires("gaussum") or []:
        match = re.search(r"""extra\s*==\s*["']([^"']+)["']""", requirement)
        if match:
            extras.setdefault(match.group(1), []).append(requirement.split(";")[0])
    return extras


def _optional_modules() -> dict[str, str]:
    """Module -> the first extra (in pyproject.toml's order) whose requirements name it."""
    table: dict[str, str] = {}
    for extra, requirements in _extras().items():
        if extra in _TOOL_EXTRAS:
            continue
        for requirement in requirements:
            name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1).lower()
            if name != "gaussum":
                table.setdefault(_MODULE_OF.get(name, re.sub(r"[-.]", "_", name)), extra)
    for module, extra in _COMES_WITH.items():
        table.setdefault(module, extra)
    return table


# Module an optional feature imports -> the extra that installs it, read from pyproject.toml, so a
# new extra needs no change here (tests/test_packaging.py checks a few entries).
OPTIONAL = _optional_modules()


def _missing(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):
        return True


# Decided once, before any test can touch sys.modules.
MISSING = frozenset(name for name in OPTIONAL if _missing(name))

_NO_MODULE = re.compile(r"No module named '([A-Za-z_][\w.]*)'")
# gaussum's own message for a missing extra, e.g. "gaussum.dask needs dask: pip install 'gaussum[dask]'".
_NEEDS_EXTRA = re.compile(r"pip install 'gaussum\[([\w-]+)\]'")


def _reason(name: str) -> str:
    return f"needs {name}, not installed: pip install 'gaussum[{OPTIONAL[name]}]'"


def _missing_in_chain(exc: BaseException | None) -> str | None:
    """The missing optional module behind `exc`, its cause or its context (doctests unwrapped)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, doctest.UnexpectedException):
            exc = exc.exc_info[1]
            continue
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            root = exc.name.partition(".")[0]
            if root in MISSING:
                return root
        exc = exc.__cause__ or exc.__context__
    return None


def _missing_in_text(text: str) -> str | None:
    """The missing optional module that a failure's text names, directly or by its extra."""
    for match in _NO_MODULE.finditer(text):
        root = match.group(1).partition(".")[0]
        if root in MISSING:
            return root
    for match in _NEEDS_EXTRA.finditer(text):
        for name in sorted(MISSING):
            if OPTIONAL[name] == match.group(1):
                return name
    return None


def _as_skip(report, name: str) -> None:
    path, lineno, _ = report.location  # lineno counts from 0
    report.outcome = "skipped"
    report.longrepr = (str(path), (lineno or 0) + 1, f"Skipped: {_reason(name)}")


def pytest_report_header(config):
    if MISSING:
        extras = sorted({OPTIONAL[name] for name in MISSING})
        missing = ", ".join(sorted(MISSING))
        return f"gaussum: not installed: {missing}; tests that need the extras {extras} are skipped"
    return "gaussum: every optional extra is installed; nothing may be skipped"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if MISSING and report.failed:
        name = _missing_in_text(str(report.longrepr))
        if name:
            report.outcome = "skipped"
            report.longrepr = (str(collector.path), 1, f"Skipped: {_reason(name)}")
            report.result = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not MISSING or not report.failed or call.excinfo is None:
        return
    name = _missing_in_chain(call.excinfo.value) or _missing_in_text(str(report.longrepr))
    if name:
        _as_skip(report, name)
