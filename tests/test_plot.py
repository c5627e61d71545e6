"""Tests of gaussum.plot: figure content checked against numpy, and the README example."""

from __future__ import annotations

import io
import runpy
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # set here, for the tests; the library never chooses a backend

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.patches import Ellipse

from gaussum import GaussianSummary
from gaussum.plot import correlation, ellipses

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "are_they_one_gaussian.py"
README_IMAGE = Path(__file__).resolve().parent.parent / "docs" / "images" / "are_they_one_gaussian.png"


@pytest.fixture(autouse=True)
def close_figures():
    """Close every figure a test opened (matplotlib warns past 20 open figures)."""
    yield
    plt.close("all")


def correlated_rows(seed: int, n: int = 300, d: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d)) + np.eye(d)
    return rng.normal(size=(n, d)) @ mixing + rng.normal(size=d) * 5


def boundary(patch: Ellipse) -> np.ndarray:
    """The on-curve points of the drawn outline, in data coordinates.

    The outline is matplotlib's unit circle (a move, eight cubic Bezier segments, a close), mapped
    by the patch transform; every third vertex lies on the curve, the others are control points.
    """
    path = patch.get_path()
    assert path.codes[0] == path.MOVETO and path.codes[-1] == path.CLOSEPOLY
    return patch.get_patch_transform().transform(path.vertices[:-1:3])


def png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=50)
    return buffer.getvalue()


@pytest.mark.parametrize("dims", [(0, 1), (2, 0)])
def test_ellipse_axes_are_the_eigenvalues(dims):
    """Each k-sigma ellipse has semi-axes k*sqrt(eigenvalues) of the rows' 2 x 2 covariance."""
    X = correlated_rows(1)
    s = GaussianSummary.from_samples(X)
    ax = ellipses(s, dims=dims)
    i, j = dims
    cov = np.cov(X[:, [i, j]], rowvar=False)
    small, large = np.sqrt(np.linalg.eigvalsh(cov))
    patches = [p for p in ax.patches if isinstance(p, Ellipse)]
    assert len(patches) == 3
    for k, patch in zip((1, 2, 3), patches, strict=True):
        assert patch.width / 2 == pytest.approx(k * large, rel=1e-10)
        assert patch.height / 2 == pytest.approx(k * small, rel=1e-10)
        np.testing.assert_allclose(patch.center, X[:, [i, j]].mean(axis=0), rtol=1e-12)
    assert ax.get_xlabel() == f"x{i}" and ax.get_ylabel() == f"x{j}"
    assert png_bytes(ax.figure).startswith(b"\x89PNG")


def test_ellipse_outline_is_at_k_mahalanobis():
    """Every point of the drawn k-sigma outline is at Mahalanobis distance k from the mean."""
    X = correlated_rows(2)
    ax = ellipses(GaussianSummary.from_samples(X), dims=(1, 2), sigmas=(1.0, 2.5))
    sub = X[:, [1, 2]]
    VI = np.linalg.inv(np.cov(sub, rowvar=False))
    for k, patch in zip((1.0, 2.5), ax.patches, strict=True):
        offsets = boundary(patch) - sub.mean(axis=0)
        distances = np.sqrt(np.einsum("ij,jk,ik->i", offsets, VI, offsets))
        np.testing.assert_allclose(distances, k, rtol=1e-9)


def test_diagonal_summary_draws_axis_aligned_ellipses():
    """A diagonal summary's ellipses have the per-variable standard deviations as semi-axes."""
    X = correlated_rows(3)
    ax = ellipses(GaussianSummary.from_samples(X, diagonal=True), dims=(0, 2), sigmas=(1,))
    (patch,) = ax.patches
    outline = boundary(patch) - X[:, [0, 2]].mean(axis=0)
    half_widths = np.abs(outline).max(axis=0)
    np.testing.assert_allclose(half_widths, X[:, [0, 2]].std(axis=0, ddof=1), rtol=1e-9)


def test_grouped_summaries_get_colours_and_legend():
    """A mapping of summaries draws one colour per group and labels the legend with its keys."""
    groups = {"first": correlated_rows(4), "second": correlated_rows(5) + 3.0}
    ax = ellipses({k: GaussianSummary.from_samples(v) for k, v in groups.items()}, names=["a", "b", "c"])
    assert len(ax.patches) == 6
    colours = [p.get_edgecolor()[:3] for p in ax.patches]
    assert colours[0] == colours[2] != colours[3] == colours[5]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["first", "second"]
    assert ax.get_xlabel() == "a" and ax.get_ylabel() == "b"
    markers = [line.get_xydata()[0] for line in ax.lines]
    np.testing.assert_allclose(markers, [v.mean(axis=0)[:2] for v in groups.values()], rtol=1e-12)
    xs = np.concatenate([boundary(p)[:, 0] for p in ax.patches])
    left, right = ax.get_xlim()
    assert left <= xs.min() and right >= xs.max()  # the view follows the ellipses


def test_ellipses_draws_on_given_axes_and_validates():
    """An axes passed in is drawn on and returned; bad dims, scalar data and names are refused."""
    _fig, ax = plt.subplots()
    s = GaussianSummary.from_samples(correlated_rows(6))
    assert ellipses([s, s], ax=ax, labels=["x", "y"]) is ax
    with pytest.raises(ValueError, match="dims must be two different indices in \\[0, 3\\), got \\(1, 1\\)"):
        ellipses(s, dims=(1, 1))
    with pytest.raises(ValueError, match="an ellipse needs two"):
        ellipses(GaussianSummary.from_samples(np.arange(5.0)))
    with pytest.raises(ValueError, match="names has 2 entries for 3 variables"):
        ellipses(s, names=["a", "b"])
    with pytest.raises(ValueError, match="labels has 1 entries for 2 summaries"):
        ellipses([s, s], labels=["only"])
    with pytest.raises(ValueError, match="summaries item 1 has 2 variables, item 0 has 3"):
        ellipses([s, GaussianSummary.from_samples(correlated_rows(6, d=2))])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"names": ["a", "b"]}, "names has 2 entries for 3 variables"),
        ({"sigmas": ["wide"]}, "sigmas must be a sequence of numbers"),
        ({"colors": ["red"]}, "colors has 1 entries for 2 summaries"),
        ({"labels": ["only"]}, "labels has 1 entries for 2 summaries"),
        ({"dims": (0, 3)}, "dims must be two different indices"),
        ({"ddof": 40}, "no covariance with ddof=40"),
    ],
)
def test_bad_ellipses_call_draws_nothing(kwargs, message):
    """A refused call leaves the caller's axes empty and opens no figure of its own."""
    fig, ax = plt.subplots()
    s = GaussianSummary.from_samples(correlated_rows(9, n=40))
    with pytest.raises(ValueError, match=message):
        ellipses([s, s], ax=ax, **kwargs)
    assert not ax.patches and not ax.lines and ax.get_legend() is None
    assert ax.get_xlabel() == "" and ax.get_ylabel() == ""
    assert plt.get_fignums() == [fig.number]
    with pytest.raises(ValueError, match=message):
        ellipses([s, s], **kwargs)
    assert plt.get_fignums() == [fig.number]


def test_correlation_heat_map_content():
    """The heat map's image is np.corrcoef of the rows on a fixed [-1, 1] scale, labelled and annotated."""
    X = correlated_rows(7, d=4)
    ax = correlation(GaussianSummary.from_samples(X), names=["p", "q", "r", "s"])
    (image,) = ax.images
    expected = np.corrcoef(X, rowvar=False)
    np.testing.assert_allclose(image.get_array(), expected, rtol=1e-12, atol=1e-15)
    assert image.get_clim() == (-1.0, 1.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["p", "q", "r", "s"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["p", "q", "r", "s"]
    assert sorted(t.get_text() for t in ax.texts) == sorted(f"{v:.2f}" for v in expected.ravel())
    assert len(ax.figure.axes) == 2  # the heat map and its colour bar
    assert png_bytes(ax.figure).startswith(b"\x89PNG")


def test_correlation_refuses_diagonal_summary():
    """A diagonal summary has no correlations to draw."""
    s = GaussianSummary.from_samples(correlated_rows(8), diagonal=True)
    with pytest.raises(ValueError, match="diagonal summary keeps no covariances"):
        correlation(s)


def test_missing_matplotlib_names_the_extra(monkeypatch):
    """Without matplotlib the plots raise ImportError telling how to install the extra."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    s = GaussianSummary.from_samples(correlated_rows(9))
    with pytest.raises(ImportError, match=r"pip install 'gaussum\[plot\]'"):
        ellipses(s)
    with pytest.raises(ImportError, match=r"pip install 'gaussum\[plot\]'"):
        correlation(s)


def test_example_answers_the_question(tmp_path, monkeypatch, capsys):
    """The README example finds A and B one Gaussian, pools them, rejects C, and writes a small PNG."""
    monkeypatch.setattr(sys, "argv", [str(EXAMPLE), str(tmp_path)])
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    first, second = out.split("--- A (n=400) vs C")
    assert "=> plausibly one Gaussian" in first and "Pooled A + B: n = 650" in first
    assert "=> NOT one Gaussian" in second
    image = tmp_path / "are_they_one_gaussian.png"
    assert image.read_bytes().startswith(b"\x89PNG")
    assert 10_000 < image.stat().st_size < 200_000


def test_example_output_directory_from_environment(tmp_path, monkeypatch, capsys):
    """With no argument the example writes where GAUSSUM_EXAMPLE_OUTPUT says."""
    monkeypatch.setattr(sys, "argv", [str(EXAMPLE)])
    monkeypatch.setenv("GAUSSUM_EXAMPLE_OUTPUT", str(tmp_path / "images"))
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    capsys.readouterr()
    assert (tmp_path / "images" / "are_they_one_gaussian.png").is_file()


def test_readme_image_is_committed_and_small():
    """The README's image exists and stays under 200 KB."""
    assert README_IMAGE.read_bytes().startswith(b"\x89PNG")
    assert README_IMAGE.stat().st_size < 200_000
