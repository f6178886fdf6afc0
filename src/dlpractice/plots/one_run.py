"""The figures of one run (its cost, gradient norms, weights and decision boundary), and the
boundaries of several runs side by side."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dlpractice.plots import base

if TYPE_CHECKING:
    from dlpractice.nn import TrainResult


def cost_curve(result: TrainResult, path: str | Path) -> Path:
    """Train cost (and dev cost when recorded) against the iteration; log-y when it spans decades."""
    its = list(result.iterations)
    if not its:
        return base.no_data_figure("no cost recorded", "cost", path)
    costs, dev = list(result.costs), list(result.dev_costs)
    with_dev = bool(dev) and len(dev) == len(its)
    fig = base.new_figure(6, 4)
    ax = fig.add_subplot()
    ax.plot(its, costs, label="train cost", color="tab:blue")
    if with_dev:
        ax.plot(its, dev, label="dev cost", color="tab:orange")
    base.against_iterations(ax, "cost", "cost", base.log_scale_helps(costs, dev))
    return base.save(fig, path)


def grad_norms(result: TrainResult, path: str | Path) -> Path:
    """Per-layer gradient norm ‖dWl‖ against the iteration, log-y: vanishing or exploding."""
    norms = np.asarray(result.grad_norms, dtype=float)
    if norms.ndim != 2 or norms.size == 0:
        return base.no_data_figure("no gradient norms recorded", "gradient norm per layer", path)
    its = np.asarray(result.iterations[: norms.shape[0]])
    fig = base.new_figure(6, 4)
    ax = fig.add_subplot()
    for layer in range(norms.shape[1]):
        ax.plot(its, norms[:, layer], label=f"dW{layer + 1}")
    finite = base.finite(norms)
    log = finite.size > 0 and bool(np.all(finite > 0))  # a zero norm has no place on a log axis
    base.against_iterations(ax, "‖dW‖ (Frobenius)", "gradient norm per layer", log,
                        ncols=min(norms.shape[1], 4), fontsize="small")
    return base.save(fig, path)


def weight_histograms(parameters: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """One histogram of the weights ``Wl`` per layer (biases left out)."""
    keys = sorted((k for k in parameters if k.startswith("W") and k[1:].isdigit()),
                  key=lambda k: int(k[1:]))
    fig, axes = base.grid_figure(len(keys), 3.0, 2.6, title_room=0.3)  # the suptitle's
    if not keys:
        base.no_data(axes[0], "no weights")
    for ax, key in zip(axes, keys, strict=False):
        w = base.finite(parameters[key])
        if w.size == 0:
            base.no_data(ax, "no finite weights")
        else:
            ax.hist(w, bins=min(50, max(5, int(math.sqrt(w.size)))), color="tab:blue", alpha=0.8,
                    histtype="stepfilled")
            ax.set_xlabel(f"std {w.std():.3g}", fontsize="small")
            ax.set_yticks([])  # the counts say little; the shape and the spread matter
        base.set_title(ax, f"{key} {tuple(np.shape(parameters[key]))}", fontsize="medium")
    fig.suptitle("weights per layer")
    return base.save(fig, path)


def decision_boundary(
    parameters: Mapping[str, np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    hidden_activation: str,
    path: str | Path,
    title: str = "",
) -> Path | None:
    """Predicted probability over a grid (an image, the 0.5 boundary as a line) with the points on
    top. ``None`` (nothing written) when ``X`` does not have exactly 2 features."""
    if not base.is_2d(np.asarray(X)):
        return None
    fig = base.new_figure(5, 4.5)
    base.boundary_axes(fig.add_subplot(), parameters, X, Y, hidden_activation, title)
    return base.save(fig, path)


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
