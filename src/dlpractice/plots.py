"""The project's figures: cost curves, decision boundaries, weight and gradient-norm histories,
bias/variance bars, a sweep's error path. The only module that imports matplotlib.

Each function builds a fresh ``matplotlib.figure.Figure`` (the object API, never ``pyplot``: no GUI
backend, no global figure registry) and writes it with ``savefig``; nothing is kept between calls.
It reads runs and settings and must not train, track or write anything but the figure it is given.

Arrays are in course orientation: ``X`` (n_features, m), ``Y`` (1, m).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
# A swept value's axis is logarithmic once its positive values span more than this factor.
PATH_LOG_RATIO = 10.0


# -- helpers -------------------------------------------------------------------------------------


def _figure(width: float, height: float, **margins: float) -> Figure:
    """A new figure of ``width`` x ``height`` inches with fixed margins (room for a title, tick
    labels and axis labels): an automatic layout engine would measure every text twice."""
    # Imported here so that importing this module (every entry point does) stays cheap.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    fig.subplots_adjust(**{"left": 0.8 / width, "right": 1 - 0.2 / width, "bottom": 0.55 / height,
                           "top": 1 - 0.4 / height, "wspace": 0.3, "hspace": 0.45, **margins})
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The fastest deflate level: these flat-colour figures compress well anyway.
    fig.savefig(path, dpi=DPI, pil_kwargs={"compress_level": 1})
    return path


def _plain_log_y(ax: Axes) -> None:
    """A log y axis labelled ``0.01`` rather than in mathtext (``10^-2``, slow to typeset), with
    a few labels and no minor ticks (each tick is an artist to lay out and draw)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(numticks=6))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_locator(NullLocator())


def _title(ax: Axes, text: str, **kwargs: Any) -> None:
    """A title at a fixed height: placing it automatically measures every tick label again."""
    ax.set_title(text, y=1.0, **kwargs)


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(values, dtype=float).ravel()
    return a[np.isfinite(a)]


def _log_scale_helps(*series: Sequence[float] | np.ndarray) -> bool:
    """True when every finite value is positive and they span more than ``LOG_SCALE_RATIO``."""
    values = np.concatenate([_finite(s) for s in series]) if series else np.empty(0)
    if values.size == 0 or np.any(values <= 0):
        return False
    return float(values.max() / values.min()) > LOG_SCALE_RATIO


def _no_data(ax: Axes, message: str, title: str = "") -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])
    _title(ax, title)


def _no_data_figure(message: str, title: str, path: str | Path) -> Path:
    fig = _figure(6, 4)
    _no_data(fig.add_subplot(), message, title)
    return _save(fig, path)


def _grid_figure(n: int, width: float, height: float, title_room: float = 0.0
                 ) -> tuple[Figure, np.ndarray]:
    """A figure of ``n`` axes (at least one) of ``width`` x ``height`` inches, at most 4 a row;
    the unused cells hidden."""
    cols = max(1, min(n, 4))
    rows = math.ceil(max(n, 1) / cols)
    fig = _figure(width * cols, height * rows, top=1 - (0.4 + title_room) / (height * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[max(n, 1):]:
        ax.set_visible(False)
    return fig, axes


def _against_iterations(ax: Axes, ylabel: str, title: str, log: bool, **legend: Any) -> None:
    """Label, grid, legend and title of a plot of values against the iteration."""
    ax.locator_params(axis="x", nbins=5)  # each tick label is a text to lay out: a few suffice
    if log:
        _plain_log_y(ax)
    else:
        ax.locator_params(axis="y", nbins=5)
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(**legend)
    _title(ax, title)


def _is_2d(X: np.ndarray) -> bool:
    return X.ndim == 2 and X.shape[0] == 2 and X.shape[1] > 0


# -- one run -------------------------------------------------------------------------------------


def cost_curve(result: TrainResult, path: str | Path) -> Path:
    """Train cost (and dev cost when recorded) against the iteration; log-y when it spans decades."""
    its = list(result.iterations)
    if not its:
        return _no_data_figure("no cost recorded", "cost", path)
    costs, dev = list(result.costs), list(result.dev_costs)
    with_dev = bool(dev) and len(dev) == len(its)
    fig = _figure(6, 4)
    ax = fig.add_subplot()
    ax.plot(its, costs, label="train cost", color="tab:blue")
    if with_dev:
        ax.plot(its, dev, label="dev cost", color="tab:orange")
    _against_iterations(ax, "cost", "cost", _log_scale_helps(costs, dev))
    return _save(fig, path)


def grad_norms(result: TrainResult, path: str | Path) -> Path:
    """Per-layer gradient norm ‖dWl‖ against the iteration, log-y: vanishing or exploding."""
    norms = np.asarray(result.grad_norms, dtype=float)
    if norms.ndim != 2 or norms.size == 0:
        return _no_data_figure("no gradient norms recorded", "gradient norm per layer", path)
    its = np.asarray(result.iterations[: norms.shape[0]])
    fig = _figure(6, 4)
    ax = fig.add_subplot()
    for layer in range(norms.shape[1]):
        ax.plot(its, norms[:, layer], label=f"dW{layer + 1}")
    finite = _finite(norms)
    log = finite.size > 0 and bool(np.all(finite > 0))  # a zero norm has no place on a log axis
    _against_iterations(ax, "‖dW‖ (Frobenius)", "gradient norm per layer", log,
                        ncols=min(norms.shape[1], 4), fontsize="small")
    return _save(fig, path)


def weight_histograms(parameters: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """One histogram of the weights ``Wl`` per layer (biases left out)."""
    keys = sorted((k for k in parameters if k.startswith("W") and k[1:].isdigit()),
                  key=lambda k: int(k[1:]))
    fig, axes = _grid_figure(len(keys), 3.0, 2.6, title_room=0.3)  # the suptitle's
    if not keys:
        _no_data(axes[0], "no weights")
    for ax, key in zip(axes, keys, strict=False):
        w = _finite(parameters[key])
        if w.size == 0:
            _no_data(ax, "no finite weights")
        else:
            ax.hist(w, bins=min(50, max(5, int(math.sqrt(w.size)))), color="tab:blue", alpha=0.8,
                    histtype="stepfilled")
            ax.set_xlabel(f"std {w.std():.3g}", fontsize="small")
            ax.set_yticks([])  # the counts say little; the shape and the spread matter
        _title(ax, f"{key} {tuple(np.shape(parameters[key]))}", fontsize="medium")
    fig.suptitle("weights per layer")
    return _save(fig, path)


def _boundary_axes(ax: Axes, parameters: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray,
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
        _title(ax, title)


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
    if not _is_2d(np.asarray(X)):
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
    fig, axes = _grid_figure(len(panels), 4.0, 3.8)
    if not panels:
        _no_data(axes[0], "no runs")
    for ax, (title, parameters, X, Y, activation) in zip(axes, panels, strict=False):
        X = np.asarray(X)
        if _is_2d(X):
            _boundary_axes(ax, parameters, X, Y, activation, title)
        else:
            _no_data(ax, f"{X.shape[0] if X.ndim == 2 else '?'}-D data: no boundary to draw", title)
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
        _no_data(ax, "no curves", "cost")
        return _save(fig, path)
    for label, iterations, costs in curves:
        ax.plot(list(iterations), list(costs), label=label)
    if target is not None:
        ax.axhline(target, color="k", linestyle="--", linewidth=1, label=f"target {target:g}")
    log = _log_scale_helps(*(c for _, _, c in curves), [] if target is None else [target])
    _against_iterations(ax, "cost", "cost", log, fontsize="small")
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
    crowded = n > 4 or max(map(len, settings), default=0) > 12
    # room below and to the left for the slanted labels (~0.07 inch a character at 30 degrees)
    slant = 0.07 * max(map(len, settings), default=0) if crowded else 0.0
    fig_width, fig_height = max(5.0, 1.1 * n + 2.0) + slant, 4.2 + slant / 2
    fig = _figure(fig_width, fig_height, left=(0.8 + slant * 0.8) / fig_width,
                  bottom=(0.55 + slant / 2) / fig_height)
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
    known = np.flatnonzero(np.isfinite(bayes))
    if known.size and np.allclose(bayes[known], bayes[known[0]]):
        ax.axhline(bayes[known[0]], color="k", linestyle="--", linewidth=1,
                   label=f"Bayes error {bayes[known[0]]:.3g}")
    else:
        for i in known:
            ax.hlines(bayes[i], x[i] - 0.45, x[i] + 0.45, colors="k", linestyles="--", linewidth=1,
                      label="Bayes error" if i == known[0] else None)
    ax.set_xticks(x, settings, rotation=30 if crowded else 0, ha="right" if crowded else "center")
    ax.set_ylabel("error rate")
    ax.set_ylim(0, max(0.05, float(np.nanmax(np.concatenate([train, dev, bayes, [0.0]]))) * 1.15))
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    _title(ax, "bias / variance per setting")
    return _save(fig, path)


@dataclass(frozen=True)
class PathData:
    """What :func:`regularization_path` draws (:func:`path_data` builds it)."""

    setting: str  # the swept key: the x axis
    values: tuple[float, ...]  # ascending
    train_error: tuple[float, ...]
    dev_error: tuple[float, ...]
    bayes_error: float
    selected: tuple[float, float] | None  # (value, dev error) of the selected setting
    x_scale: str  # "linear", "log", or "symlog" (log with 0 among the values)


def path_data(setting: str, points: Sequence[tuple[float, float, float]], bayes_error: float,
              selected: tuple[float, float] | None = None) -> PathData:
    """The path of ``(value, train error, dev error)`` points, in ascending value (points with a
    non-finite number left out); the x axis is logarithmic when the positive values span more than
    ``PATH_LOG_RATIO`` and none is negative (``symlog`` when one is 0)."""
    kept = sorted(p for p in points if all(math.isfinite(v) for v in p))
    values = tuple(p[0] for p in kept)
    positive = [v for v in values if v > 0]
    scale = "linear"
    if positive and min(values) >= 0 and max(positive) / min(positive) > PATH_LOG_RATIO:
        scale = "log" if len(positive) == len(values) else "symlog"
    return PathData(setting, values, tuple(p[1] for p in kept), tuple(p[2] for p in kept),
                    float(bayes_error), selected, scale)


def regularization_path(data: PathData, path: str | Path) -> Path:
    """Train and dev error against the swept value, the Bayes error as a dashed line and the
    selected setting starred."""
    from matplotlib.ticker import FuncFormatter, NullLocator

    fig = _figure(6.5, 4.2)
    ax = fig.add_subplot()
    title = f"train / dev error against {data.setting}"
    if not data.values:
        _no_data(ax, "no finished runs", title)
        return _save(fig, path)
    ax.plot(data.values, data.train_error, marker="o", markersize=4, label="train error",
            color="tab:blue")
    ax.plot(data.values, data.dev_error, marker="o", markersize=4, label="dev error",
            color="tab:orange")
    ax.axhline(data.bayes_error, color="k", linestyle="--", linewidth=1,
               label=f"Bayes error {data.bayes_error:.3g}")
    if data.selected is not None:
        ax.plot(*data.selected, marker="*", markersize=15, color="tab:red", linestyle="none",
                label=f"selected: {data.selected[0]:g}")
    if data.x_scale != "linear":
        positive = min(v for v in data.values if v > 0)
        ax.set_xscale(data.x_scale, **({"linthresh": positive} if data.x_scale == "symlog" else {}))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())  # each tick is an artist to lay out
    else:
        ax.locator_params(axis="x", nbins=6)
    ax.set_xlabel(data.setting)
    ax.set_ylabel("error rate")
    top = max(max(data.train_error), max(data.dev_error), data.bayes_error)
    ax.set_ylim(0, max(0.05, top * 1.15))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    _title(ax, title)
    return _save(fig, path)


def layer_norms(norms: Sequence[tuple[str, Mapping[str, Sequence[float]]]],
                path: str | Path) -> Path:
    """Activation RMS per hidden layer and ‖dWl‖ per layer at initialization, one line per
    ``(setting, {"act_rms": [...], "grad_norm": [...]})``, log scale (0 and inf are left out)."""
    fig = _figure(10, 4)
    ax_a, ax_g = fig.subplots(1, 2)
    for setting, values_of in norms:
        for ax, key in ((ax_a, "act_rms"), (ax_g, "grad_norm")):
            values = np.asarray(values_of[key], dtype=float)
            layers = np.arange(1, values.size + 1)
            ok = np.isfinite(values) & (values > 0)
            label = str(setting)
            if not ok.any():
                label += " (all 0: not shown)" if not np.any(values) else " (not finite)"
            elif not ok.all():
                label += " (0 or inf values not shown)"
            ax.plot(layers[ok], values[ok], marker="o", markersize=3, label=label)
    for ax, title, xlabel in ((ax_a, "activation RMS per hidden layer (at init)", "hidden layer"),
                              (ax_g, "‖dWl‖ per layer (at init)", "layer")):
        _plain_log_y(ax)
        _title(ax, title)
        ax.set_xlabel(xlabel)
        ax.grid(True, alpha=0.3)
        if norms:
            ax.legend(fontsize="small")
    return _save(fig, path)


def epsilon_scans(curves: Sequence[tuple[str, Sequence[float], Sequence[float]]],
                  path: str | Path) -> Path:
    """Log-log: the gradient check's difference against the step ε, one line per
    ``(label, epsilons, differences)``; ε decreases to the right, as the lecture shrinks it."""
    fig = _figure(6.5, 4.2)
    ax = fig.add_subplot()
    if not curves:
        _no_data(ax, "no curves", "difference against ε")
        return _save(fig, path)
    for label, epsilons, differences in curves:
        style = "--" if label.startswith("θ³") else "-"
        ax.plot(list(epsilons), list(differences), style, marker="o", markersize=3, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("ε")
    ax.set_ylabel("‖g − g̃‖ / (‖g‖ + ‖g̃‖)")
    ax.legend(fontsize="small")
    _title(ax, "difference against ε")
    return _save(fig, path)


def learning_curves(
    curves: Sequence[tuple[str, Sequence[float], Sequence[float], Sequence[float], float]],
    path: str | Path,
) -> Path:
    """One panel per ``(setting, train sizes, train errors, dev errors, Bayes error)``: train and
    dev error against the training-set size (log x), the Bayes error as a dashed line. Sizes are
    drawn in increasing order; a missing error (a failed run) leaves a gap."""
    fig, axes = _grid_figure(len(curves), 4.6, 3.8)
    if not curves:
        _no_data(axes[0], "no runs")
    top = max([0.05, *(1.15 * v for _, _, tr, dv, b in curves
                       for v in (*map(_number, tr), *map(_number, dv), _number(b))
                       if math.isfinite(v))])
    for ax, (setting, sizes, train, dev, bayes) in zip(axes, curves, strict=False):
        order = np.argsort(np.asarray(sizes, dtype=float), kind="stable")
        x = np.asarray(sizes, dtype=float)[order]
        ax.plot(x, np.array([_number(train[i]) for i in order]), marker="o", markersize=3,
                label="train error", color="tab:blue")
        ax.plot(x, np.array([_number(dev[i]) for i in order]), marker="o", markersize=3,
                label="dev error", color="tab:orange")
        if math.isfinite(_number(bayes)):
            ax.axhline(_number(bayes), color="k", linestyle="--", linewidth=1,
                       label=f"Bayes error {_number(bayes):.3g}")
        if x.size and x.min() > 0:
            from matplotlib.ticker import FuncFormatter, NullLocator

            ax.set_xscale("log")
            ax.set_xticks(x)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_locator(NullLocator())
        ax.set_ylim(0, top)
        ax.locator_params(axis="y", nbins=5)
        ax.set_xlabel("training-set size (examples)")
        ax.set_ylabel("error rate")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
        _title(ax, str(setting))
    return _save(fig, path)
