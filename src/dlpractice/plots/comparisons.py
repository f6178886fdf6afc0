"""Figures that compare runs: cost curves, bias/variance bars, a sweep's error path, and the
studies' layer norms, ε scans, learning curves and early stopping's curve."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlpractice.plots import base


def cost_curves(
    curves: Sequence[tuple[str, Sequence[int], Sequence[float]]],
    path: str | Path,
    target: float | None = None,
) -> Path:
    """Overlay the cost curves ``(label, iterations, costs)``; ``target`` as a dashed line."""
    fig = base.new_figure(6.5, 4.2)
    ax = fig.add_subplot()
    if not curves:
        base.no_data(ax, "no curves", "cost")
        return base.save(fig, path)
    for label, iterations, costs in curves:
        ax.plot(list(iterations), list(costs), label=label)
    if target is not None:
        ax.axhline(target, color="k", linestyle="--", linewidth=1, label=f"target {target:g}")
    log = base.log_scale_helps(*(c for _, _, c in curves), [] if target is None else [target])
    base.against_iterations(ax, "cost", "cost", log, fontsize="small")
    return base.save(fig, path)


def bias_variance_chart(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Grouped bars, train error vs dev error per ``setting``, with the Bayes error as a horizontal
    line (one line across the chart, or one segment per setting when they differ). Rows missing a
    value (e.g. a failed run) get no bar."""
    settings = [str(r.get("setting", i)) for i, r in enumerate(rows)]
    train = np.array([base.number(r.get("train_error")) for r in rows])
    dev = np.array([base.number(r.get("dev_error")) for r in rows])
    bayes = np.array([base.number(r.get("bayes_error", 0.0)) for r in rows])
    n = len(rows)
    crowded = n > 4 or max(map(len, settings), default=0) > 12
    # room below and to the left for the slanted labels (~0.07 inch a character at 30 degrees)
    slant = 0.07 * max(map(len, settings), default=0) if crowded else 0.0
    fig_width, fig_height = max(5.0, 1.1 * n + 2.0) + slant, 4.2 + slant / 2
    fig = base.new_figure(fig_width, fig_height, left=(0.8 + slant * 0.8) / fig_width,
                  bottom=(0.55 + slant / 2) / fig_height)
    ax = fig.add_subplot()
    if n == 0:
        base.no_data(ax, "no runs")
        return base.save(fig, path)
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
    base.set_title(ax, "bias / variance per setting")
    return base.save(fig, path)


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
    ``base.PATH_LOG_RATIO`` and none is negative (``symlog`` when one is 0)."""
    kept = sorted(p for p in points if all(math.isfinite(v) for v in p))
    values = tuple(p[0] for p in kept)
    positive = [v for v in values if v > 0]
    scale = "linear"
    if positive and min(values) >= 0 and max(positive) / min(positive) > base.PATH_LOG_RATIO:
        scale = "log" if len(positive) == len(values) else "symlog"
    return PathData(setting, values, tuple(p[1] for p in kept), tuple(p[2] for p in kept),
                    float(bayes_error), selected, scale)


def regularization_path(data: PathData, path: str | Path) -> Path:
    """Train and dev error against the swept value, the Bayes error as a dashed line and the
    selected setting starred."""
    from matplotlib.ticker import FuncFormatter, NullLocator

    fig = base.new_figure(6.5, 4.2)
    ax = fig.add_subplot()
    title = f"train / dev error against {data.setting}"
    if not data.values:
        base.no_data(ax, "no finished runs", title)
        return base.save(fig, path)
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
    base.set_title(ax, title)
    return base.save(fig, path)


def layer_norms(norms: Sequence[tuple[str, Mapping[str, Sequence[float]]]],
                path: str | Path) -> Path:
    """Activation RMS per hidden layer and ‖dWl‖ per layer at initialization, one line per
    ``(setting, {"act_rms": [...], "grad_norm": [...]})``, log scale (0 and inf are left out)."""
    fig = base.new_figure(10, 4)
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
        base.plain_log_y(ax)
        base.set_title(ax, title)
        ax.set_xlabel(xlabel)
        ax.grid(True, alpha=0.3)
        if norms:
            ax.legend(fontsize="small")
    return base.save(fig, path)


def epsilon_scans(curves: Sequence[tuple[str, Sequence[float], Sequence[float]]],
                  path: str | Path) -> Path:
    """Log-log: the gradient check's difference against the step ε, one line per
    ``(label, epsilons, differences)``; ε decreases to the right, as the lecture shrinks it."""
    fig = base.new_figure(6.5, 4.2)
    ax = fig.add_subplot()
    if not curves:
        base.no_data(ax, "no curves", "difference against ε")
        return base.save(fig, path)
    for label, epsilons, differences in curves:
        style = "--" if label.startswith("θ³") else "-"
        ax.plot(list(epsilons), list(differences), style, marker="o", markersize=3, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("ε")
    ax.set_ylabel("‖g − g̃‖ / (‖g‖ + ‖g̃‖)")
    ax.legend(fontsize="small")
    base.set_title(ax, "difference against ε")
    return base.save(fig, path)


def learning_curves(
    curves: Sequence[tuple[str, Sequence[float], Sequence[float], Sequence[float], float]],
    path: str | Path,
) -> Path:
    """One panel per ``(setting, train sizes, train errors, dev errors, Bayes error)``: train and
    dev error against the training-set size (log x), the Bayes error as a dashed line. Sizes are
    drawn in increasing order; a missing error (a failed run) leaves a gap."""
    fig, axes = base.grid_figure(len(curves), 4.6, 3.8)
    if not curves:
        base.no_data(axes[0], "no runs")
    top = max([0.05, *(1.15 * v for _, _, tr, dv, b in curves
                       for v in (*map(base.number, tr), *map(base.number, dv), base.number(b))
                       if math.isfinite(v))])
    for ax, (setting, sizes, train, dev, bayes) in zip(axes, curves, strict=False):
        order = np.argsort(np.asarray(sizes, dtype=float), kind="stable")
        x = np.asarray(sizes, dtype=float)[order]
        ax.plot(x, np.array([base.number(train[i]) for i in order]), marker="o", markersize=3,
                label="train error", color="tab:blue")
        ax.plot(x, np.array([base.number(dev[i]) for i in order]), marker="o", markersize=3,
                label="dev error", color="tab:orange")
        if math.isfinite(base.number(bayes)):
            ax.axhline(base.number(bayes), color="k", linestyle="--", linewidth=1,
                       label=f"Bayes error {base.number(bayes):.3g}")
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
        base.set_title(ax, str(setting))
    return base.save(fig, path)


def early_stopping_curve(iterations: Sequence[int], costs: Sequence[float],
                         dev_costs: Sequence[float], best_iteration: int | None,
                         path: str | Path) -> Path:
    """One run's training and dev cost against the iteration, its stop (``best_iteration``: the
    weights early stopping keeps) as a dashed vertical line and a dot on the dev cost."""
    fig = base.new_figure(6.5, 4.2)
    ax = fig.add_subplot()
    if not iterations:
        base.no_data(ax, "no early-stopping run", "early stopping")
        return base.save(fig, path)
    ax.plot(list(iterations), list(costs), label="training cost", color="tab:blue")
    ax.plot(list(iterations), list(dev_costs), label="dev cost", color="tab:orange")
    if best_iteration is not None:
        ax.axvline(best_iteration, color="k", linestyle="--", linewidth=1,
                   label=f"stop: iteration {best_iteration}")
        ax.plot([best_iteration], [dev_costs[list(iterations).index(best_iteration)]], "o",
                color="k")
    base.against_iterations(ax, "cost", "early stopping: the lowest dev cost",
                            base.log_scale_helps(costs, dev_costs), fontsize="small")
    return base.save(fig, path)


def recipe_path(points: Sequence[tuple[int, str, float, float]], path: str | Path,
                bias_threshold: float, variance_threshold: float) -> Path:
    """The recipe's steps ``(step, action, avoidable bias, variance)`` on the (avoidable bias,
    variance) plane, joined by arrows in order, with the thresholds dashed: below both is a good
    fit (shaded)."""
    fig = base.new_figure(6.5, 5.0)
    ax = fig.add_subplot()
    if not points:
        base.no_data(ax, "no finished step", "the recipe's path")
        return base.save(fig, path)
    x = np.array([p[2] for p in points], dtype=float)
    y = np.array([p[3] for p in points], dtype=float)
    top = max(float(np.max(y)), variance_threshold) * 1.15 + 0.01
    right = max(float(np.max(x)), bias_threshold) * 1.15 + 0.01
    low_x, low_y = min(0.0, float(np.min(x))) - 0.01, min(0.0, float(np.min(y))) - 0.01
    ax.fill_between([low_x, bias_threshold], low_y, variance_threshold, color="tab:green",
                    alpha=0.12, label="good fit")
    ax.axvline(bias_threshold, color="k", linestyle="--", linewidth=1)
    ax.axhline(variance_threshold, color="k", linestyle="--", linewidth=1)
    for k in range(len(points) - 1):
        ax.annotate("", xy=(x[k + 1], y[k + 1]), xytext=(x[k], y[k]),
                    arrowprops={"arrowstyle": "->", "color": "tab:gray"})
    ax.plot(x, y, "o", color="tab:blue")
    for (step, action, _, _), xi, yi in zip(points, x, y, strict=True):
        ax.annotate(f"{step}: {action}", (xi, yi), textcoords="offset points", xytext=(5, 5),
                    fontsize="small")
    ax.set_xlim(low_x, right)
    ax.set_ylim(low_y, top)
    ax.set_xlabel("avoidable bias (train − Bayes error)")
    ax.set_ylabel("variance (dev − train error)")
    base.set_title(ax, "the basic recipe's path")
    ax.legend(loc="upper right", fontsize="small")
    return base.save(fig, path)
