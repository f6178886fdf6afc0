"""The figures of one run (its cost, gradient norms, weights and decision boundary), and the
boundaries of several runs side by side; :class:`RunFigures` draws them for one run after
another."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlpractice.plots import base

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from dlpractice.nn import TrainResult


class RunFigures:
    """The four figures of a run, drawn for one run after another (a sweep's jobs in one
    process): a figure of the same layout is kept and given the next run's data, the same image
    as a new figure, without making its axes and ticks again. Not for threads."""

    def __init__(self) -> None:
        self._kept: dict[tuple[Any, ...], tuple[Figure, Axes, list[Any]]] = {}

    def _figure(self, key: tuple[Any, ...], make: Callable[[], tuple[Figure, Axes, list[Any]]]
                ) -> tuple[Figure, Axes, list[Any]]:
        if key not in self._kept:
            self._kept[key] = make()
        return self._kept[key]

    def cost_curve(self, result: TrainResult, path: str | Path) -> Path:
        """Train cost (and dev cost when recorded) against the iteration; log-y when it spans
        decades."""
        its = list(result.iterations)
        if not its:
            return base.no_data_figure("no cost recorded", "cost", path)
        costs, dev = list(result.costs), list(result.dev_costs)
        with_dev = bool(dev) and len(dev) == len(its)
        log = base.log_scale_helps(costs, dev)

        def make() -> tuple[Figure, Axes, list[Any]]:
            fig = base.new_figure(6, 4)
            ax = fig.add_subplot()
            lines = [ax.plot([], [], label="train cost", color="tab:blue")[0]]
            if with_dev:
                lines += ax.plot([], [], label="dev cost", color="tab:orange")
            base.against_iterations(ax, "cost", "cost", log)
            return fig, ax, lines

        fig, ax, lines = self._figure(("cost", with_dev, log), make)
        _show(ax, lines, its, [costs, dev][: len(lines)])
        return base.save(fig, path)

    def grad_norms(self, result: TrainResult, path: str | Path) -> Path:
        """Per-layer gradient norm ‖dWl‖ against the iteration, log-y: vanishing or exploding."""
        norms = np.asarray(result.grad_norms, dtype=float)
        if norms.ndim != 2 or norms.size == 0:
            return base.no_data_figure("no gradient norms recorded", "gradient norm per layer",
                                       path)
        its = np.asarray(result.iterations[: norms.shape[0]])
        finite = base.finite(norms)
        log = finite.size > 0 and bool(np.all(finite > 0))  # a zero norm has no place on a log axis
        layers = norms.shape[1]

        def make() -> tuple[Figure, Axes, list[Any]]:
            fig = base.new_figure(6, 4)
            ax = fig.add_subplot()
            lines = [ax.plot([], [], label=f"dW{layer + 1}")[0] for layer in range(layers)]
            base.against_iterations(ax, "‖dW‖ (Frobenius)", "gradient norm per layer", log,
                                    ncols=min(layers, 4), fontsize="small")
            return fig, ax, lines

        fig, ax, lines = self._figure(("grad_norms", layers, log), make)
        _show(ax, lines, its, list(norms.T))
        return base.save(fig, path)

    def weight_histograms(self, parameters: Mapping[str, np.ndarray], path: str | Path) -> Path:
        """One histogram of the weights ``Wl`` per layer (biases left out)."""
        keys = sorted((k for k in parameters if k.startswith("W") and k[1:].isdigit()),
                      key=lambda k: int(k[1:]))
        weights = [base.finite(parameters[k]) for k in keys]
        if not keys or any(w.size == 0 for w in weights):
            return _weights_without_data(parameters, keys, weights, path)

        def make() -> tuple[Figure, Axes, list[Any]]:
            fig, axes = base.grid_figure(len(keys), 3.0, 2.6, title_room=0.3)  # the suptitle's
            for ax in axes[: len(keys)]:
                ax.set_yticks([])  # the counts say little; the shape and the spread matter
            fig.suptitle("weights per layer")
            return fig, axes[0], list(axes[: len(keys)])

        fig, _, axes = self._figure(("weights", len(keys)), make)
        for ax, key, w in zip(axes, keys, weights, strict=True):
            for patch in list(ax.patches):
                patch.remove()
            ax.relim()
            _histogram(ax, w)
            base.set_title(ax, f"{key} {tuple(np.shape(parameters[key]))}", fontsize="medium")
        return base.save(fig, path)

    def decision_boundary(self, parameters: Mapping[str, np.ndarray], X: np.ndarray,
                          Y: np.ndarray, hidden_activation: str, path: str | Path,
                          title: str = "") -> Path | None:
        """Predicted probability over a grid (an image, the 0.5 boundary as a line) with the
        points on top. ``None`` (nothing written) when ``X`` does not have exactly 2 features."""
        if not base.is_2d(np.asarray(X)):
            return None

        def make() -> tuple[Figure, Axes, list[Any]]:
            fig = base.new_figure(5, 4.5)
            return fig, fig.add_subplot(), []

        fig, ax, _ = self._figure(("boundary", bool(title)), make)
        for artist in [*ax.images, *ax.collections]:
            artist.remove()
        base.boundary_axes(ax, parameters, X, Y, hidden_activation, title)
        return base.save(fig, path)


def _show(ax: Axes, lines: list[Any], x: Sequence[float] | np.ndarray,
          ys: Sequence[Sequence[float] | np.ndarray]) -> None:
    """``lines`` given ``x`` and ``ys``, the view scaled to them as for lines just plotted."""
    for line, y in zip(lines, ys, strict=True):
        line.set_data(x, y)
    ax.relim()
    ax.autoscale_view()


def _histogram(ax: Axes, w: np.ndarray) -> None:
    """The finite weights ``w`` of one layer, their spread under the axis."""
    ax.hist(w, bins=min(50, max(5, int(math.sqrt(w.size)))), color="tab:blue", alpha=0.8,
            histtype="stepfilled")
    ax.set_xlabel(f"std {w.std():.3g}", fontsize="small")


def _weights_without_data(parameters: Mapping[str, np.ndarray], keys: list[str],
                          weights: list[np.ndarray], path: str | Path) -> Path:
    """The weights figure of a network without weights, or with a layer of no finite weight."""
    fig, axes = base.grid_figure(len(keys), 3.0, 2.6, title_room=0.3)
    if not keys:
        base.no_data(axes[0], "no weights")
    for ax, key, w in zip(axes, keys, weights, strict=False):
        if w.size == 0:
            base.no_data(ax, "no finite weights")
        else:
            _histogram(ax, w)
            ax.set_yticks([])
        base.set_title(ax, f"{key} {tuple(np.shape(parameters[key]))}", fontsize="medium")
    fig.suptitle("weights per layer")
    return base.save(fig, path)


def cost_curve(result: TrainResult, path: str | Path) -> Path:
    """:meth:`RunFigures.cost_curve` in a new figure."""
    return RunFigures().cost_curve(result, path)


def grad_norms(result: TrainResult, path: str | Path) -> Path:
    """:meth:`RunFigures.grad_norms` in a new figure."""
    return RunFigures().grad_norms(result, path)


def weight_histograms(parameters: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """:meth:`RunFigures.weight_histograms` in a new figure."""
    return RunFigures().weight_histograms(parameters, path)


def decision_boundary(parameters: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray,
                      hidden_activation: str, path: str | Path, title: str = "") -> Path | None:
    """:meth:`RunFigures.decision_boundary` in a new figure."""
    return RunFigures().decision_boundary(parameters, X, Y, hidden_activation, path, title)


def boundaries_side_by_side(
    panels: Sequence[tuple[str, Mapping[str, np.ndarray], np.ndarray, np.ndarray, str]],
    path: str | Path,
) -> Path:
    """One figure with one decision-boundary panel per ``(title, parameters, X, Y, activation)``
    (a panel whose data is not 2-D says so instead)."""
    fig, axes = base.grid_figure(len(panels), 4.0, 3.8)
    if not panels:
        base.no_data(axes[0], "no runs")
    for ax, (title, parameters, X, Y, activation) in zip(axes, panels, strict=False):
        X = np.asarray(X)
        if base.is_2d(X):
            base.boundary_axes(ax, parameters, X, Y, activation, title)
        else:
            base.no_data(ax, f"{X.shape[0] if X.ndim == 2 else '?'}-D data: no boundary to draw", title)
    return base.save(fig, path)
