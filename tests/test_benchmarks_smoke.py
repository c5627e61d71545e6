"""Smoke tests of benchmarks/: every case runs its self-check on tiny sizes, so the harness cannot rot."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import _harness  # noqa: E402
import bench_core  # noqa: E402

# run.py under a name of its own, so no other test's "run" module can shadow it.
_spec = importlib.util.spec_from_file_location("gaussum_benchmarks_run", BENCHMARKS / "run.py")
run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run)

TINY = _harness.Settings(quick=True, repeats=1, min_sample_s=0.0)


@pytest.mark.parametrize("case", bench_core.cases(), ids=lambda case: case.name)
def test_core_case_checks_and_times(case: _harness.Case) -> None:
    """Each core case passes its own check against its reference and returns timed rows."""
    rows = case.run(TINY)
    assert rows, f"{case.name} returned no rows"
    for row in rows:
        assert row.case == case.name
        assert row.ours is not None and row.ours >= 0
        if row.theirs is None:
            assert row.note.startswith("absent"), f"{row.reference} has no time and no reason"


def test_moment_check_rejects_a_wrong_ddof() -> None:
    """The self-check fails loudly on a covariance off by a ddof, the commonest mistake."""
    X = np.random.default_rng(1).standard_normal((500, 3)) + 5.0
    reference = np.cov(X, rowvar=False)
    _harness.assert_moments_close("right", X.mean(axis=0), reference, X.mean(axis=0), reference, 500)
    with pytest.raises(_harness.BenchmarkCheckError, match="covariance"):
        _harness.assert_moments_close(
            "wrong", X.mean(axis=0), np.cov(X, rowvar=False, ddof=0), X.mean(axis=0), reference, 500
        )


def test_compare_runs_the_check_before_timing() -> None:
    """A reference that disagrees with gaussum stops `compare` before any timing happens."""
    timed = []

    def wrong_check(ours: float, theirs: float) -> None:
        raise _harness.BenchmarkCheckError(f"{ours} != {theirs}")

    reference = _harness.Reference("other", lambda: timed.append(1) or 2.0, wrong_check, 1.0)
    with pytest.raises(_harness.BenchmarkCheckError, match=r"1.0 != 2.0"):
        _harness.compare("case", lambda: 1.0, [reference], TINY)
    assert timed == [1]  # called once for the check, never for timing


def test_row_ratio_and_target() -> None:
    """A row's ratio is ours / theirs and its target is met when the ratio is at most max_ratio."""
    row = _harness.Row("c", "r", ours=3.0, theirs=4.0, max_ratio=0.7)
    assert row.ratio == 0.75 and row.met is False
    assert _harness.Row("c", "r", ours=2.0, theirs=4.0, max_ratio=0.5).met is True
    assert _harness.Row("c", "r", ours=2.0, theirs=None, max_ratio=0.5).met is None


def test_run_prints_a_markdown_table(capsys: pytest.CaptureFixture[str]) -> None:
    """`run.py --quick --only` prints the table header and one row per comparison."""
    status = run.main(["--quick", "--repeats", "1", "--only", r"^a \+ b"])
    out = capsys.readouterr().out
    assert status == 0
    assert "| case | reference | gaussum | reference | ratio | target | met? | note |" in out
    assert out.count("| a + b, d = 64 |") == 1


def test_discovery_finds_every_bench_module() -> None:
    """`--all` runs every benchmarks/bench_*.py, core first; the default runs only the core."""
    found = run.discover(all_modules=True)
    assert found[0] == "bench_core"
    assert sorted(found) == sorted(p.stem for p in BENCHMARKS.glob("bench_*.py"))
    assert run.discover(all_modules=False) == ["bench_core"]


def test_binary_and_reduction_benchmarks_check_and_time() -> None:
    """bench_binary and bench_reduce run their checks at tiny sizes and return timed rows."""
    import bench_binary
    import bench_reduce

    rows = bench_binary.measure(8, TINY)
    assert [r[0] for r in rows] == list(bench_binary.FORMS) and all(size > 0 for _, size, _, _ in rows)
    (reduction,) = bench_reduce.measure(300, 4, [7])  # checks the root against a direct merge
    assert [lv.nodes for lv in reduction.levels] == [43, 7, 1]
    assert reduction.bytes_moved == 300 * reduction.payload + sum(lv.bytes_in for lv in reduction.levels[1:])
    assert reduction.driver_peak > 0


def test_compare_revisions_runs_both_versions_side_by_side(capsys, monkeypatch) -> None:
    """compare_revisions imports a second gaussum (here the checkout's own sources, as a folder)
    under another name, checks that both agree, and prints a ratio per case."""
    import compare_revisions

    monkeypatch.setenv("GAUSSUM_KERNEL", "auto")  # the script sets it for both versions
    folder = Path(compare_revisions.ROOT) / "src"
    args = ["--baseline", str(folder), "--only", r"a \+ b|100 x 4", "--rounds", "1", "--min-sample", "0.001"]
    assert compare_revisions.main(args) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| a + b") or "100 x 4" in line]
    assert len(rows) == 2
    assert all(float(row.rstrip(" |").rsplit("|", 1)[1]) > 0 for row in rows)
    assert "gaussum_baseline" not in sys.modules  # the second copy is gone again


def test_accuracy_table_prints_every_path(capsys) -> None:
    """benchmarks/accuracy_table.py on 2,000 rows: a markdown row per spread, every path a number
    within its bounds (gaussum's paths at one-pass accuracy, np.cov far worse at 1e9)."""
    import accuracy_table

    accuracy_table.main(["--rows", "2000"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    header, rows = lines[0].split(" | "), [line.split(" | ") for line in lines[1:]]
    assert len(rows) == 2 and all(len(row) == len(header) for row in rows)
    values = {name: [float(row[i].split(" ")[0]) for row in rows] for i, name in enumerate(header) if i}
    for path in ("from_samples", "merge_all", "left fold of +", "random pairwise tree", "row-by-row update"):
        assert max(values[path]) <= 1.8e-15, path
    assert min(values["np.cov"]) > 1e-12 and max(values["mean ulps"]) <= 1.0
