"""The project's figures: cost curves, decision boundaries, weight and gradient-norm histories,
bias/variance bars. The only module that imports matplotlib.

matplotlib is imported lazily inside the functions, and figures are built with the object API
(``matplotlib.figure.Figure`` saved through the Agg canvas) rather than ``pyplot``: no GUI backend
is ever selected (headless machines, joblib workers), no global figure registry keeps figures alive,
and the backend of a user's interactive session is left alone. Figures are small (100 dpi) because
each run writes several of them.

Arrays are in course orientation: ``X`` (n_features, m), ``Y`` (1, m).
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

    from dlpractice.nn import TrainResult

DPI = 100
GRID_POINTS = 120  # per axis, for decision boundaries
# A log scale helps once the values span more than this factor (e.g. a cost falling from 0.7 to 0.01).
LOG_SCALE_RATIO = 20.0

__all__ = [
    "bias_variance_chart",
    "boundaries_side_by_side",
    "cost_curve",
    "cost_curves",
    "decision_boundary",
    "grad_norms",
    "weight_histograms",
]


# -- helpers -------------------------------------------------------------------------------------


def _figure(width: float, height: float, **adjust: float) -> Figure:
    """A figure with fixed margins: an automatic layout engine would double the drawing time."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    margins = {"left": 0.8 / width, "right": 1 - 0.2 / width, "bottom": 0.55 / height,
               "top": 1 - 0.4 / height, "wspace": 0.3, "hspace": 0.45}
    margins.update(adjust)
    fig.subplots_adjust(**margins)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Light PNG compression: a fraction of the encoding time for somewhat larger files.
    fig.savefig(path, dpi=DPI, pil_kwargs={"compress_level": 1})
    # No pyplot, so no figure registry to close it from: dropping the last reference frees it
    # (``fig.clear()`` would only spend time rebuilding empty axes).
    return path


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(values, dtype=float).ravel()
    return a[np.isfinite(a)]


def _log_y(ax: Axes) -> None:
    """Log y axis with plain tick labels (``0.01``, not mathtext ``10^-2``) and no minor ticks:
    both are slow to draw and say little here."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=8))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_locator(NullLocator())


def _log_scale_helps(*series: Sequence[float] | np.ndarray) -> bool:
    """True when every value is positive and they span more than ``LOG_SCALE_RATIO``."""
    values = np.concatenate([_finite(s) for s in series]) if series else np.empty(0)
    if values.size == 0 or np.any(values <= 0):
        return False
    return float(values.max() / values.min()) > LOG_SCALE_RATIO


def _title(ax: Axes, text: str, **kwargs: Any) -> None:
    """An axes title at a fixed height: automatic placement measures every tick label again."""
    ax.set_title(text, y=1.0, **kwargs)


def _no_data(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _weight_keys(parameters: Mapping[str, np.ndarray]) -> list[str]:
    keys = [k for k in parameters if k.startswith("W") and k[1:].isdigit()]
    return sorted(keys, key=lambda k: int(k[1:]))


def _grid_shape(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = max(1, min(n, max_cols))
    return math.ceil(max(n, 1) / cols), cols


# -- one run -------------------------------------------------------------------------------------


def cost_curve(result: TrainResult, path: str | Path) -> Path:
    """Train cost (and dev cost when recorded) against the iteration; log-y when it spans decades."""
    fig = _figure(6, 4)
    ax = fig.add_subplot()
    its = list(result.iterations)
    if not its:
        _no_data(ax, "no cost recorded")
    else:
        ax.plot(its, result.costs, label="train cost", color="tab:blue")
        dev = list(result.dev_costs)
        if dev and len(dev) == len(its):
            ax.plot(its, dev, label="dev cost", color="tab:orange")
        if _log_scale_helps(result.costs, dev):
            _log_y(ax)
        ax.set_xlabel("iteration")
        ax.set_ylabel("cost")
        ax.grid(True, alpha=0.3)
        ax.legend()
    _title(ax, "cost")
    return _save(fig, path)


def grad_norms(result: TrainResult, path: str | Path) -> Path:
    """Per-layer gradient norm ‖dWl‖ against the iteration, log-y: vanishing or exploding."""
    fig = _figure(6, 4)
    ax = fig.add_subplot()
    norms = np.asarray(result.grad_norms, dtype=float)
    if norms.ndim != 2 or norms.size == 0:
        _no_data(ax, "no gradient norms recorded")
    else:
        its = np.asarray(result.iterations[: norms.shape[0]])
        for layer in range(norms.shape[1]):
            ax.plot(its, norms[:, layer], label=f"dW{layer + 1}")
        if np.all(_finite(norms) > 0) and _finite(norms).size:
            _log_y(ax)
        ax.set_xlabel("iteration")
        ax.set_ylabel("‖dW‖ (Frobenius)")
        ax.grid(True, alpha=0.3)
        ax.legend(ncols=min(norms.shape[1], 4), fontsize="small")
    _title(ax, "gradient norm per layer")
    return _save(fig, path)


def weight_histograms(parameters: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """One histogram of the weights ``Wl`` per layer (biases left out)."""
    keys = _weight_keys(parameters)
    rows, cols = _grid_shape(len(keys))
    height = 2.6 * rows
    fig = _figure(3.0 * cols, height, top=1 - 0.7 / height)  # room for the suptitle
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    if not keys:
        _no_data(axes[0], "no weights")
    for ax, key in zip(axes, keys, strict=False):
        w = _finite(parameters[key])
        if w.size == 0:
            _no_data(ax, "no finite weights")
        else:
            ax.hist(w, bins=min(50, max(5, int(math.sqrt(w.size)))), color="tab:blue", alpha=0.8,
                    histtype="stepfilled")  # one polygon, not one rectangle per bin
            ax.set_xlabel(f"std {w.std():.3g}", fontsize="small")
            ax.set_yticks([])  # counts say little; fewer tick labels also draw faster
            ax.locator_params(axis="x", nbins=4)
        _title(ax, f"{key} {tuple(np.shape(parameters[key]))}", fontsize="medium")
    for ax in axes[len(keys) or 1 :]:
        ax.set_visible(False)
    fig.suptitle("weights per layer")
    return _save(fig, path)


def _boundary_axes(
    ax: Axes,
    parameters: Mapping[str, np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    hidden_activation: str,
    title: str,
) -> None:
    from dlpractice.nn import forward_propagation

    X = np.asarray(X, dtype=float)
    y = np.asarray(Y).ravel()
    lo, hi = X.min(axis=1), X.max(axis=1)
    pad = np.maximum((hi - lo) * 0.1, 1e-3)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], GRID_POINTS)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], GRID_POINTS)
    xx, yy = np.meshgrid(xs, ys)
    grid = np.vstack([xx.ravel(), yy.ravel()])
    with np.errstate(over="ignore", invalid="ignore"):
        probs = forward_propagation(dict(parameters), grid, hidden_activation).reshape(xx.shape)
    probs = np.nan_to_num(probs, nan=0.5)
    # One image of the probabilities (several times faster to draw than filled contours).
    ax.imshow(probs, origin="lower", extent=(xs[0], xs[-1], ys[0], ys[-1]), aspect="auto",
              cmap="RdBu_r", vmin=0.0, vmax=1.0, alpha=0.45, interpolation="bilinear")
    if probs.min() < 0.5 < probs.max():
        ax.contour(xx, yy, probs, levels=[0.5], colors="k", linewidths=1.0)
    ax.scatter(X[0], X[1], c=y, cmap="RdBu_r", vmin=0, vmax=1, s=14, edgecolors="w",
               linewidths=0.5)
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    if title:
        _title(ax, title)


def decision_boundary(
    parameters: Mapping[str, np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    hidden_activation: str,
    path: str | Path,
    title: str = "",
) -> Path | None:
    """Predicted probability over a grid (filled contours, the 0.5 boundary as a line) with the
    points on top. ``None`` (nothing written) when ``X`` does not have exactly 2 features."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] != 2 or X.shape[1] == 0:
        return None
    fig = _figure(5, 4.5)
    _boundary_axes(fig.add_subplot(), parameters, X, Y, hidden_activation, title)
    return _save(fig, path)


def boundaries_side_by_side(
    panels: Sequence[tuple[str, Mapping[str, np.ndarray], np.ndarray, np.ndarray, str]],
    path: str | Path,
) -> Path:
    """One figure with one decision-boundary panel per ``(title, parameters, X, Y, activation)``
    (a panel whose data is not 2-D says so instead)."""
    rows, cols = _grid_shape(len(panels))
    fig = _figure(4.0 * cols, 3.8 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    if not panels:
        _no_data(axes[0], "no runs")
    for ax, (title, parameters, X, Y, activation) in zip(axes, panels, strict=False):
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[0] != 2 or X.shape[1] == 0:
            _no_data(ax, f"{X.shape[0] if X.ndim == 2 else '?'}-D data: no boundary to draw")
            _title(ax, title)
        else:
            _boundary_axes(ax, parameters, X, Y, activation, title)
    for ax in axes[len(panels) or 1 :]:
        ax.set_visible(False)
    return _save(fig, path)


# -- several runs --------------------------------------------------------------------------------


def cost_curves(
    curves: Sequence[tuple[str, Sequence[int], Sequence[float]]],
    path: str | Path,
    target: float | None = None,
) -> Path:
    """Overlay the cost curves ``(label, iterations, costs)``; ``target`` as a dashed line."""
    fig = _figure(6.5, 4.2)
    ax = fig.add_subplot()
    if not curves:
        _no_data(ax, "no curves")
    for label, iterations, costs in curves:
        ax.plot(list(iterations), list(costs), label=label)
    if target is not None:
        ax.axhline(target, color="k", linestyle="--", linewidth=1, label=f"target {target:g}")
    series = [c for _, _, c in curves] + ([[target]] if target is not None else [])
    if curves and _log_scale_helps(*series):
        _log_y(ax)
    if curves:
        ax.set_xlabel("iteration")
        ax.set_ylabel("cost")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    _title(ax, "cost")
    return _save(fig, path)


def _number(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return v if math.isfinite(v) else float("nan")


def bias_variance_chart(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Grouped bars, train error vs dev error per ``setting``, with the Bayes error as a horizontal
    line (one line across the chart, or one segment per setting when they differ). Rows missing a
    value (e.g. a failed run) get no bar."""
    settings = [str(r.get("setting", i)) for i, r in enumerate(rows)]
    train = np.array([_number(r.get("train_error")) for r in rows])
    dev = np.array([_number(r.get("dev_error")) for r in rows])
    bayes = np.array([_number(r.get("bayes_error", 0.0)) for r in rows])
    n = len(rows)
    fig = _figure(max(5.0, 1.1 * n + 2.0), 4.2)
    ax = fig.add_subplot()
    if n == 0:
        _no_data(ax, "no runs")
        return _save(fig, path)
    x = np.arange(n)
    width = 0.38
    ax.bar(x - width / 2, np.nan_to_num(train), width, label="train error", color="tab:blue")
    ax.bar(x + width / 2, np.nan_to_num(dev), width, label="dev error", color="tab:orange")
    for i in np.flatnonzero(np.isnan(train) & np.isnan(dev)):
        ax.text(x[i], 0, "n/a", ha="center", va="bottom", fontsize="small", color="0.4")
    finite_bayes = _finite(bayes)
    if finite_bayes.size and np.allclose(finite_bayes, finite_bayes[0]):
        ax.axhline(finite_bayes[0], color="k", linestyle="--", linewidth=1,
                   label=f"Bayes error {finite_bayes[0]:.3g}")
    elif finite_bayes.size:
        for i, b in enumerate(bayes):
            if math.isfinite(b):
                ax.hlines(b, x[i] - 0.45, x[i] + 0.45, colors="k", linestyles="--", linewidth=1,
                          label="Bayes error" if i == int(np.flatnonzero(np.isfinite(bayes))[0])
                          else None)
    ax.set_xticks(x, settings, rotation=30 if n > 4 or max(map(len, settings)) > 12 else 0,
                  ha="right" if n > 4 or max(map(len, settings)) > 12 else "center")
    ax.set_ylabel("error rate")
    ax.set_ylim(0, max(0.05, float(np.nanmax(np.concatenate([train, dev, bayes, [0.0]]))) * 1.15))
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    _title(ax, "bias / variance per setting")
    return _save(fig, path)
