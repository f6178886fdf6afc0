"""What every figure shares: a figure with fixed margins, saving, titles, log axes, empty panels
and grids, and a network's decision boundary on one axes. Draws nothing on its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
GRID_POINTS = 120  # per axis, for decision boundaries
# A log scale helps once the values span more than this factor (e.g. a cost falling from 0.7 to 0.01).
LOG_SCALE_RATIO = 20.0
# A swept value's axis is logarithmic once its positive values span more than this factor.
PATH_LOG_RATIO = 10.0


def new_figure(width: float, height: float, **margins: float) -> Figure:
    """A new figure of ``width`` x ``height`` inches with fixed margins (room for a title, tick
    labels and axis labels): an automatic layout engine would measure every text twice."""
    # Imported here so that importing this module (every entry point does) stays cheap.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    fig.subplots_adjust(**{"left": 0.8 / width, "right": 1 - 0.2 / width, "bottom": 0.55 / height,
                           "top": 1 - 0.4 / height, "wspace": 0.3, "hspace": 0.45, **margins})
    return fig


def save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The fastest deflate level: these flat-colour figures compress well anyway.
    fig.savefig(path, dpi=DPI, pil_kwargs={"compress_level": 1})
    return path


def plain_log_y(ax: Axes) -> None:
    """A log y axis labelled ``0.01`` rather than in mathtext (``10^-2``, slow to typeset), with
    a few labels and no minor ticks (each tick is an artist to lay out and draw)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(numticks=6))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_locator(NullLocator())


def set_title(ax: Axes, text: str, **kwargs: Any) -> None:
    """A title at a fixed height: placing it automatically measures every tick label again."""
    ax.set_title(text, y=1.0, **kwargs)


def finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(values, dtype=float).ravel()
    return a[np.isfinite(a)]


def log_scale_helps(*series: Sequence[float] | np.ndarray) -> bool:
    """True when every finite value is positive and they span more than ``LOG_SCALE_RATIO``."""
    values = np.concatenate([finite(s) for s in series]) if series else np.empty(0)
    if values.size == 0 or np.any(values <= 0):
        return False
    return float(values.max() / values.min()) > LOG_SCALE_RATIO


def no_data(ax: Axes, message: str, title: str = "") -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])
    set_title(ax, title)


def no_data_figure(message: str, title: str, path: str | Path) -> Path:
    fig = new_figure(6, 4)
    no_data(fig.add_subplot(), message, title)
    return save(fig, path)


def grid_figure(n: int, width: float, height: float, title_room: float = 0.0
                 ) -> tuple[Figure, np.ndarray]:
    """A figure of ``n`` axes (at least one) of ``width`` x ``height`` inches, at most 4 a row;
    the unused cells hidden."""
    cols = max(1, min(n, 4))
    rows = math.ceil(max(n, 1) / cols)
    fig = new_figure(width * cols, height * rows, top=1 - (0.4 + title_room) / (height * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[max(n, 1):]:
        ax.set_visible(False)
    return fig, axes


def against_iterations(ax: Axes, ylabel: str, title: str, log: bool, **legend: Any) -> None:
    """Label, grid, legend and title of a plot of values against the iteration."""
    ax.locator_params(axis="x", nbins=5)  # each tick label is a text to lay out: a few suffice
    if log:
        plain_log_y(ax)
    else:
        ax.locator_params(axis="y", nbins=5)
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(**legend)
    set_title(ax, title)


def is_2d(X: np.ndarray) -> bool:
    return X.ndim == 2 and X.shape[0] == 2 and X.shape[1] > 0


def boundary_axes(ax: Axes, parameters: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray,
                   hidden_activation: str, title: str) -> None:
    """Predicted probability over a grid 10% beyond the data, the 0.5 contour, the points."""
    from dlpractice.nn import forward_propagation

    X = np.asarray(X, dtype=float)
    lo, hi = X.min(axis=1), X.max(axis=1)
    pad = np.maximum((hi - lo) * 0.1, 1e-3)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], GRID_POINTS)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], GRID_POINTS)
    xx, yy = np.meshgrid(xs, ys)
    with np.errstate(over="ignore", invalid="ignore"):
        probs = forward_propagation(dict(parameters), np.vstack([xx.ravel(), yy.ravel()]),
                                    hidden_activation).reshape(xx.shape)
    probs = np.nan_to_num(probs, nan=0.5)
    # An image rather than filled contours: the same picture as one artist, not a path per level.
    ax.imshow(probs, extent=(xs[0], xs[-1], ys[0], ys[-1]), origin="lower", aspect="auto",
              cmap="RdBu_r", vmin=0.0, vmax=1.0, alpha=0.45, interpolation="bilinear")
    if probs.min() < 0.5 < probs.max():  # otherwise there is no boundary to draw
        ax.contour(xs, ys, probs, levels=[0.5], colors="k", linewidths=1.0)
    ax.scatter(X[0], X[1], c=np.asarray(Y, dtype=float).ravel(), cmap="RdBu_r", vmin=0, vmax=1,
               s=14, edgecolors="w", linewidths=0.5)
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    ax.locator_params(nbins=5)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    if title:
        set_title(ax, title)


def number(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return v if math.isfinite(v) else float("nan")
