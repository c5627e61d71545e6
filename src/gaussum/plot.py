"""Pictures of summaries: covariance ellipses and correlation heat maps (needs ``gaussum[plot]``).

matplotlib is imported when a function is called, never by ``import gaussum``. The functions
draw on the axes they are given (or on a new figure's) and return those axes, leaving the
backend, saving and showing to the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .summary import GaussianSummary

__all__ = ["correlation", "ellipses"]


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError("gaussum.plot needs matplotlib: pip install 'gaussum[plot]'") from None
    return matplotlib


def _new_axes() -> Any:
    _matplotlib()
    import matplotlib.pyplot as plt

    return plt.subplots()[1]


def _labelled(summaries: Any, labels: Sequence[str] | None) -> list[tuple[str | None, GaussianSummary]]:
    """``(label, summary)`` pairs from one summary, a sequence of them, or a mapping label -> summary."""
    if isinstance(summaries, GaussianSummary):
        items: list[tuple[str | None, Any]] = [(None, summaries)]
    elif isinstance(summaries, Mapping):
        items = [(str(k), v) for k, v in summaries.items()]
    elif isinstance(summaries, Iterable):
        items = [(None, s) for s in summaries]
    else:
        raise TypeError(
            f"summaries must be a GaussianSummary, or a sequence or mapping of them, got {type(summaries).__name__}"
        )
    if not items:
        raise ValueError("summaries is empty: nothing to draw")
    if labels is not None:
        labels = list(labels)
        if len(labels) != len(items):
            raise ValueError(f"labels has {len(labels)} entries for {len(items)} summaries")
        items = [(str(label), s) for label, (_, s) in zip(labels, items, strict=True)]
    for i, (_, s) in enumerate(items):
        if not isinstance(s, GaussianSummary):
            raise TypeError(f"summaries must hold GaussianSummary values; item {i} is {type(s).__name__}")
    return items


def _plane(s: GaussianSummary, dims: tuple[int, int], ddof: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The mean and 2 x 2 covariance of variables ``dims`` of `s`."""
    i, j = dims
    if s._divisor(ddof) <= 0:
        raise ValueError(f"{name} has n={s.n:g}: no covariance with ddof={ddof}")
    cov = s.covariance(ddof)
    if cov.ndim == 1:
        sub = np.diag(cov[[i, j]])
    else:
        sub = cov[np.ix_([i, j], [i, j])]
    return s.mean[[i, j]], sub


def ellipses(
    summaries: GaussianSummary | Sequence[GaussianSummary] | Mapping[str, GaussianSummary],
    dims: tuple[int, int] = (0, 1),
    ax: Any = None,
    *,
    sigmas: Sequence[float] = (1.0, 2.0, 3.0),
    labels: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    ddof: int = 1,
    colors: Sequence[Any] | None = None,
) -> Any:
    """Draw each summary's mean and its 1-, 2- and 3-sigma covariance ellipses in one plane.

    Parameters
    ----------
    summaries : GaussianSummary, sequence of them, or mapping label -> GaussianSummary
        One colour per summary; a mapping's keys become legend labels.
    dims : (int, int)
        The two variables to draw (x, y).
    ax : matplotlib Axes, optional
        Where to draw; a new figure's axes by default.
    sigmas : sequence of float
        Radii of the ellipses in standard deviations.
    labels : sequence of str, optional
        Legend labels, one per summary (overrides a mapping's keys).
    names : sequence of str, optional
        Names of all d variables, for the axis labels (``x0, x1, ...`` by default).
    ddof : int
        The covariance drawn is ``M2 / (n - ddof * w2 / n)``, as `GaussianSummary.covariance`.
    colors : sequence of colours, optional
        One per summary; matplotlib's colour cycle by default.

    Returns
    -------
    matplotlib Axes
        With one ``matplotlib.patches.Ellipse`` per summary and sigma (in ``ax.patches``, in that
        order) and the means as ``+`` markers.

    Raises
    ------
    TypeError
        If `summaries` is not a summary, or a sequence or mapping of them.
    ValueError
        For no summaries, scalar or one-variable summaries, summaries of different variables,
        bad `dims`, ``n <= ddof``, or `labels`, `names` or `colors` of the wrong length; nothing
        is drawn then.

    Notes
    -----
    For the covariance ``S`` of the two variables, with eigenvalues ``l1 >= l2`` and unit
    eigenvectors ``v1, v2``, the k-sigma ellipse ``{x : (x - mean)^T S^{-1} (x - mean) = k²}`` has
    semi-axes ``k sqrt(l1)`` along ``v1`` and ``k sqrt(l2)`` along ``v2``. For a Gaussian in two
    dimensions it holds ``1 - exp(-k²/2)`` of the mass: 39 %, 86 % and 99 % for k = 1, 2, 3 (not
    the 68-95-99.7 % of one dimension). A diagonal summary draws axis-aligned ellipses.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from gaussum import GaussianSummary
    >>> from gaussum.plot import ellipses
    >>> rng = np.random.default_rng(0)
    >>> a = GaussianSummary.from_samples(rng.normal(size=(200, 3)))
    >>> b = GaussianSummary.from_samples(rng.normal(size=(100, 3)) + 1.0)
    >>> ax = ellipses({"a": a, "b": b}, dims=(0, 2))
    >>> len(ax.patches)  # 2 summaries x 3 sigmas
    6
    """
    matplotlib = _matplotlib()
    from matplotlib.patches import Ellipse

    items = _labelled(summaries, labels)
    d = items[0][1].d
    if items[0][1].mean.ndim == 0 or d < 2:
        raise ValueError(f"summaries item 0 has {d} variable; an ellipse needs two")
    for k, (_, s) in enumerate(items):
        if s.mean.shape != items[0][1].mean.shape:
            raise ValueError(f"summaries item {k} has {s.d} variables, item 0 has {d}")
    try:
        i, j = (int(k) for k in dims)
    except (TypeError, ValueError):
        raise ValueError(f"dims must be two variable indices, got {dims!r}") from None
    if i == j or not (0 <= i < d and 0 <= j < d):
        raise ValueError(f"dims must be two different indices in [0, {d}), got {tuple(dims)!r}")
    if names is not None:
        names = [str(name) for name in names]
        if len(names) != d:
            raise ValueError(f"names has {len(names)} entries for {d} variables")
    try:
        radii = sorted(float(k) for k in sigmas)
    except (TypeError, ValueError):
        raise ValueError(f"sigmas must be a sequence of numbers, got {sigmas!r}") from None
    planes = [(label, *_plane(s, (i, j), ddof, f"summaries item {k}")) for k, (label, s) in enumerate(items)]
    if colors is None:
        cycle = matplotlib.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
        colors = [cycle[k % len(cycle)] for k in range(len(items))]
    elif len(colors) < len(items):
        raise ValueError(f"colors has {len(colors)} entries for {len(items)} summaries")
    # Everything is checked above: a bad call must leave the caller's axes untouched.
    if ax is None:
        ax = _new_axes()
    # colors may have more entries than there are summaries: the extra ones go unused.
    for (label, mean, cov), color in zip(planes, colors, strict=False):
        eigenvalues, eigenvectors = np.linalg.eigh(cov)  # ascending
        axes = np.sqrt(np.clip(eigenvalues, 0.0, None))
        angle = np.degrees(np.arctan2(eigenvectors[1, 1], eigenvectors[0, 1]))
        for rank, radius in enumerate(radii):
            ax.add_patch(
                Ellipse(
                    tuple(mean),
                    width=2.0 * radius * axes[1],
                    height=2.0 * radius * axes[0],
                    angle=angle,
                    fill=False,
                    edgecolor=color,
                    linewidth=1.5,
                    alpha=1.0 - 0.6 * rank / max(len(radii), 1),
                )
            )
        ax.plot([mean[0]], [mean[1]], marker="+", markersize=10, linestyle="none", color=color, label=label)
    ax.autoscale_view()
    axis_names = names if names is not None else [f"x{k}" for k in range(d)]
    ax.set_xlabel(axis_names[i])
    ax.set_ylabel(axis_names[j])
    if any(label is not None for label, *_ in planes):
        ax.legend()
    return ax


def correlation(
    s: GaussianSummary,
    ax: Any = None,
    *,
    names: Sequence[str] | None = None,
    annotate: bool | None = None,
    cmap: str = "RdBu_r",
    colorbar: bool = True,
) -> Any:
    """Draw a summary's correlation matrix as a labelled heat map on a fixed [-1, 1] scale.

    Parameters
    ----------
    s : GaussianSummary
        A full (not diagonal) summary.
    ax : matplotlib Axes, optional
        Where to draw; a new figure's axes by default.
    names : sequence of str, optional
        Variable names for the tick labels (``x0, x1, ...`` by default).
    annotate : bool, optional
        Print each coefficient in its cell; by default when ``d <= 12``.
    cmap : str
        A diverging colour map, so that 0 is neutral.
    colorbar : bool
        Add a colour bar labelled "correlation".

    Returns
    -------
    matplotlib Axes
        Holding one image (``ax.images[0]``) whose data is ``s.correlation()``.

    Raises
    ------
    TypeError
        If `s` is not a `GaussianSummary`.
    ValueError
        For a diagonal summary, or `names` of the wrong length.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from gaussum import GaussianSummary
    >>> from gaussum.plot import correlation
    >>> X = np.random.default_rng(0).normal(size=(100, 3))
    >>> ax = correlation(GaussianSummary.from_samples(X), names=["a", "b", "c"])
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['a', 'b', 'c']
    """
    _matplotlib()
    if not isinstance(s, GaussianSummary):
        raise TypeError(f"s must be a GaussianSummary, got {type(s).__name__}")
    corr = np.asarray(s.correlation()).reshape(s.d, s.d)
    d = s.d
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != d:
            raise ValueError(f"names has {len(names)} entries for {d} variables")
    labels = names if names is not None else [f"x{k}" for k in range(d)]
    if ax is None:
        ax = _new_axes()
    image = ax.imshow(corr, vmin=-1.0, vmax=1.0, cmap=cmap, interpolation="nearest")
    ax.set_xticks(range(d), labels, rotation=45 if d > 3 else 0, ha="right" if d > 3 else "center")
    ax.set_yticks(range(d), labels)
    if annotate is None:
        annotate = d <= 12
    if annotate:
        for (r, c), value in np.ndenumerate(corr):
            text = "" if np.isnan(value) else f"{value:.2f}"
            ax.text(c, r, text, ha="center", va="center", fontsize=9,
                    color="white" if abs(value) > 0.6 else "black")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="correlation")
    return ax
