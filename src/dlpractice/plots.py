"""The project's figures: cost curves, decision boundaries, weight and gradient-norm histories,
bias/variance bars. The only module that imports matplotlib.

matplotlib is imported lazily inside the functions, and figures are built with the object API
(``matplotlib.figure.Figure`` drawn on an Agg canvas) rather than ``pyplot``: no GUI backend is ever
selected (headless machines, joblib workers), no global figure registry keeps figures alive, and the
backend of a user's interactive session is left alone. Figures are small (100 dpi) because each run
writes several of them.

Every run draws the same four figures (``cost_curve``, ``grad_norms``, ``weight_histograms``,
``decision_boundary``), a sweep dozens of them, and building a figure (axes, ticks, text objects, a
renderer) costs about as much as drawing it. So each thread keeps them as templates, one per kind and
layout (number of layers, dev cost or not, log or linear y): a later call sets the new data, titles
and labels into the template, recomputes the data limits (``relim``/``autoscale_view``, so limits
and ticks are those of a fresh figure) and draws it again. PNGs are written by ``_png`` rather
than ``savefig`` (half the encoding time).
A call that fails drops its template; ``clear_figure_cache()`` drops them all. Rare layouts
(nothing recorded, no weights) are drawn on a fresh figure, as are the multi-run figures.

Arrays are in course orientation: ``X`` (n_features, m), ``Y`` (1, m).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
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
# Tick labels are the dearest part of drawing these figures: at most this many intervals per linear
# axis (matplotlib's default picks up to 9 on a 6-inch axis), and about this many labels on a log one.
LINEAR_TICKS = 5
LOG_TICKS = 6
TEMPLATES_PER_THREAD = 12  # reusable figures kept per thread (a few MB at most)

__all__ = [
    "bias_variance_chart",
    "boundaries_side_by_side",
    "clear_figure_cache",
    "cost_curve",
    "cost_curves",
    "decision_boundary",
    "grad_norms",
    "layer_norms",
    "weight_histograms",
]


# -- helpers -------------------------------------------------------------------------------------


def _figure(width: float, height: float, **adjust: float) -> Figure:
    """A figure with fixed margins (an automatic layout engine would double the drawing time), on
    its own Agg canvas, which keeps its renderer: a figure drawn again (a template, reused for
    every run) reuses the text metrics."""
    warm_up()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    margins = {"left": 0.8 / width, "right": 1 - 0.2 / width, "bottom": 0.55 / height,
               "top": 1 - 0.4 / height, "wspace": 0.3, "hspace": 0.45}
    margins.update(adjust)
    fig.subplots_adjust(**margins)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    """Draw ``fig`` on its Agg canvas and write the pixels as a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.canvas.draw()
    path.write_bytes(_png(np.asarray(fig.canvas.buffer_rgba())))
    # No pyplot, so no figure registry to close it from: dropping the last reference frees a fresh
    # figure (``fig.clear()`` would only spend time rebuilding empty axes).
    return path


def _png(rgba: np.ndarray) -> bytes:
    """A PNG of the ``(h, w, 4)`` uint8 pixels: RGB when they are all opaque, no row filter, the
    fastest deflate level. These figures are mostly flat colour, which deflate handles well without
    filtering: half the time of ``savefig``'s encoder (Pillow's, even at compress_level=1, spends
    it choosing a filter per row) for files about as large."""
    import struct
    import zlib

    from matplotlib import __version__

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width, _ = rgba.shape
    opaque = bool(rgba[..., 3].min() == 255)
    pixels = rgba[..., :3] if opaque else rgba
    rows = np.zeros((height, 1 + pixels[0].size), np.uint8)  # each row: filter type 0, the pixels
    rows[:, 1:] = pixels.reshape(height, -1)
    per_metre = round(DPI / 0.0254)
    return b"".join([
        b"\x89PNG\r\n\x1a\n",
        chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2 if opaque else 6, 0, 0, 0)),
        chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)),
        chunk(b"tEXt", b"Software\0matplotlib version " + __version__.encode()),
        chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)),
        chunk(b"IEND", b""),
    ])


_local = threading.local()  # .templates: OrderedDict key -> SimpleNamespace(fig=..., ...)


def warm_up() -> None:
    """Import matplotlib (figure, Agg canvas, fonts, the tick and patch helpers) now: before worker
    processes are forked, so that they inherit it rather than each importing it again (and, in an
    entry point's process, out of the collector's sight: :mod:`dlpractice._exit`)."""
    import sys

    if "matplotlib.backends.backend_agg" in sys.modules:
        return
    from dlpractice._exit import long_lived_imports

    with long_lived_imports():
        import matplotlib.patches  # noqa: F401
        import matplotlib.ticker  # noqa: F401
        from matplotlib.backends import backend_agg  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401


def clear_figure_cache() -> None:
    """Drop the calling thread's reusable figures (built again when needed)."""
    _local.__dict__.pop("templates", None)


def _draw_cached(key: Hashable, build: Callable[[], SimpleNamespace],
                 update: Callable[[SimpleNamespace], None], path: str | Path) -> Path:
    """Draw into this thread's template ``key`` (built on first use) and save it to ``path``.

    Templates are per thread, so concurrent calls never share a figure; one that raises is dropped
    rather than kept half updated. The least recently used goes beyond ``TEMPLATES_PER_THREAD``.
    """
    templates: OrderedDict[Hashable, SimpleNamespace] = _local.__dict__.setdefault(
        "templates", OrderedDict())
    template = templates.pop(key, None) or build()
    update(template)
    saved = _save(template.fig, path)
    templates[key] = template
    while len(templates) > TEMPLATES_PER_THREAD:
        templates.popitem(last=False)
    return saved


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(values, dtype=float).ravel()
    return a[np.isfinite(a)]


def _log_y(ax: Axes, *series: Sequence[float] | np.ndarray) -> None:
    """Log y axis with plain tick labels (``0.01``, not mathtext ``10^-2``) and no minor ticks:
    both are slow to draw and say little here. Labels at 1, 2, 5 times the powers of ten over a
    narrow span, 1 and 3 over a wider one, the powers alone beyond (about ``LOG_TICKS`` labels)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    if ax.get_yscale() != "log":
        ax.set_yscale("log")
    values = _finite(np.concatenate([_finite(s) for s in series])) if series else np.empty(0)
    values = values[values > 0]
    decades = math.log10(values.max() / values.min()) if values.size else 1.0
    subs = next((s for s in ((1.0, 2.0, 5.0), (1.0, 3.0)) if decades * len(s) <= LOG_TICKS),
                (1.0,))
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs, numticks=LOG_TICKS + 1))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_locator(NullLocator())


def _few_ticks(ax: Axes, x: bool = True, y: bool = True) -> None:
    """At most ``LINEAR_TICKS`` intervals on the linear axes named."""
    for axis, wanted in (("x", x), ("y", y)):
        if wanted:
            ax.locator_params(axis=axis, nbins=LINEAR_TICKS)


def _rescale(ax: Axes) -> None:
    """Data limits from the artists' current data, then the view (margins, sticky edges) from them,
    as a fresh axes would have them."""
    ax.relim()
    ax.autoscale_view()


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


def _no_data_figure(width: float, height: float, message: str, title: str,
                    path: str | Path) -> Path:
    fig = _figure(width, height)
    ax = fig.add_subplot()
    _no_data(ax, message)
    _title(ax, title)
    return _save(fig, path)


def _weight_keys(parameters: Mapping[str, np.ndarray]) -> list[str]:
    keys = [k for k in parameters if k.startswith("W") and k[1:].isdigit()]
    return sorted(keys, key=lambda k: int(k[1:]))


def _grid_shape(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = max(1, min(n, max_cols))
    return math.ceil(max(n, 1) / cols), cols


# -- one run -------------------------------------------------------------------------------------


def cost_curve(result: TrainResult, path: str | Path) -> Path:
    """Train cost (and dev cost when recorded) against the iteration; log-y when it spans decades."""
    its = list(result.iterations)
    if not its:
        return _no_data_figure(6, 4, "no cost recorded", "cost", path)
    costs, dev = list(result.costs), list(result.dev_costs)
    with_dev = bool(dev) and len(dev) == len(its)
    log = _log_scale_helps(costs, dev)

    def build() -> SimpleNamespace:
        fig = _figure(6, 4)
        ax = fig.add_subplot()
        lines = [ax.plot([], [], label="train cost", color="tab:blue")[0]]
        if with_dev:
            lines.append(ax.plot([], [], label="dev cost", color="tab:orange")[0])
        _few_ticks(ax, y=not log)
        ax.set_xlabel("iteration")
        ax.set_ylabel("cost")
        ax.grid(True, alpha=0.3)
        ax.legend()
        _title(ax, "cost")
        return SimpleNamespace(fig=fig, ax=ax, lines=lines)

    def update(t: SimpleNamespace) -> None:
        for line, values in zip(t.lines, (costs, dev), strict=False):
            line.set_data(its, values)
        if log:
            _log_y(t.ax, costs, dev if with_dev else [])
        _rescale(t.ax)

    return _draw_cached(("cost_curve", with_dev, log), build, update, path)


def grad_norms(result: TrainResult, path: str | Path) -> Path:
    """Per-layer gradient norm ‖dWl‖ against the iteration, log-y: vanishing or exploding."""
    norms = np.asarray(result.grad_norms, dtype=float)
    if norms.ndim != 2 or norms.size == 0:
        return _no_data_figure(6, 4, "no gradient norms recorded", "gradient norm per layer", path)
    its = np.asarray(result.iterations[: norms.shape[0]])
    layers = norms.shape[1]
    finite = _finite(norms)
    log = bool(finite.size) and bool(np.all(finite > 0))

    def build() -> SimpleNamespace:
        fig = _figure(6, 4)
        ax = fig.add_subplot()
        lines = [ax.plot([], [], label=f"dW{layer + 1}")[0] for layer in range(layers)]
        _few_ticks(ax, y=not log)
        ax.set_xlabel("iteration")
        ax.set_ylabel("‖dW‖ (Frobenius)")
        ax.grid(True, alpha=0.3)
        ax.legend(ncols=min(layers, 4), fontsize="small")
        _title(ax, "gradient norm per layer")
        return SimpleNamespace(fig=fig, ax=ax, lines=lines)

    def update(t: SimpleNamespace) -> None:
        for layer, line in enumerate(t.lines):
            line.set_data(its, norms[:, layer])
        if log:
            _log_y(t.ax, finite)
        _rescale(t.ax)

    return _draw_cached(("grad_norms", layers, log), build, update, path)


def _step_outline(counts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The outline of a histogram as one closed polygon (what ``hist(histtype="stepfilled")``
    draws): up the first edge, along each bar's top, down the last edge."""
    x = np.repeat(edges, 2)
    y = np.concatenate([[0.0], np.repeat(counts.astype(float), 2), [0.0]])
    return np.column_stack([x, y])


def weight_histograms(parameters: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """One histogram of the weights ``Wl`` per layer (biases left out)."""
    keys = _weight_keys(parameters)
    weights = [_finite(parameters[k]) for k in keys]
    if not keys or any(w.size == 0 for w in weights):
        return _weight_histograms_fresh(parameters, keys, path)
    rows, cols = _grid_shape(len(keys))

    def build() -> SimpleNamespace:
        from matplotlib.patches import Polygon

        height = 2.6 * rows
        fig = _figure(3.0 * cols, height, top=1 - 0.7 / height)  # suptitle room
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        outlines = []
        for ax in axes[: len(keys)]:
            # One polygon, not one rectangle per bin; resting on 0 like a histogram's bars.
            outline = Polygon(np.zeros((2, 2)), closed=True, facecolor="tab:blue", alpha=0.8)
            outline.sticky_edges.y.append(0)
            ax.add_patch(outline)
            outlines.append(outline)
            ax.set_yticks([])  # counts say little; fewer tick labels also draw faster
            ax.locator_params(axis="x", nbins=4)
        for ax in axes[len(keys):]:
            ax.set_visible(False)
        fig.suptitle("weights per layer")
        return SimpleNamespace(fig=fig, axes=axes[: len(keys)], outlines=outlines)

    def update(t: SimpleNamespace) -> None:
        for ax, outline, key, w in zip(t.axes, t.outlines, keys, weights, strict=True):
            counts, edges = np.histogram(w, bins=min(50, max(5, int(math.sqrt(w.size)))))
            outline.set_xy(_step_outline(counts, edges))
            ax.set_xlabel(f"std {w.std():.3g}", fontsize="small")
            _title(ax, f"{key} {tuple(np.shape(parameters[key]))}", fontsize="medium")
            _rescale(ax)

    return _draw_cached(("weight_histograms", len(keys)), build, update, path)


def _weight_histograms_fresh(parameters: Mapping[str, np.ndarray], keys: list[str],
                             path: str | Path) -> Path:
    """No weights, or a layer without a finite one: a fresh figure saying so."""
    rows, cols = _grid_shape(len(keys))
    height = 2.6 * rows
    fig = _figure(3.0 * cols, height, top=1 - 0.7 / height)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
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
            ax.set_yticks([])
            ax.locator_params(axis="x", nbins=4)
        _title(ax, f"{key} {tuple(np.shape(parameters[key]))}", fontsize="medium")
    for ax in axes[len(keys) or 1 :]:
        ax.set_visible(False)
    fig.suptitle("weights per layer")
    return _save(fig, path)


def _boundary_grid(
    parameters: Mapping[str, np.ndarray], X: np.ndarray, hidden_activation: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``xs``, ``ys`` (the grid's axes, 10% beyond the data) and the predicted probabilities on the
    grid, shape ``(len(ys), len(xs))``."""
    from dlpractice.nn import forward_propagation

    lo, hi = X.min(axis=1), X.max(axis=1)
    pad = np.maximum((hi - lo) * 0.1, 1e-3)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], GRID_POINTS)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], GRID_POINTS)
    xx, yy = np.meshgrid(xs, ys)
    grid = np.vstack([xx.ravel(), yy.ravel()])
    with np.errstate(over="ignore", invalid="ignore"):
        probs = forward_propagation(dict(parameters), grid, hidden_activation).reshape(xx.shape)
    return xs, ys, np.nan_to_num(probs, nan=0.5)


# The probability image: one image, several times faster to draw than filled contours, interpolated
# on the probabilities before the colour map ("data"), which draws faster than mapping then
# interpolating the colours.
_IMAGE_STYLE = {"origin": "lower", "aspect": "auto", "cmap": "RdBu_r", "vmin": 0.0, "vmax": 1.0,
                "alpha": 0.45, "interpolation": "bilinear", "interpolation_stage": "data"}
_POINT_STYLE = {"cmap": "RdBu_r", "vmin": 0, "vmax": 1, "s": 14, "edgecolors": "w",
                "linewidths": 0.5}


def _boundary_contour(ax: Axes, xs: np.ndarray, ys: np.ndarray, probs: np.ndarray) -> Any:
    """The 0.5 contour, or None when the probabilities never cross 0.5."""
    if probs.min() < 0.5 < probs.max():
        return ax.contour(xs, ys, probs, levels=[0.5], colors="k", linewidths=1.0)
    return None


def _boundary_axes(
    ax: Axes,
    parameters: Mapping[str, np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    hidden_activation: str,
    title: str,
) -> None:
    X = np.asarray(X, dtype=float)
    xs, ys, probs = _boundary_grid(parameters, X, hidden_activation)
    ax.imshow(probs, extent=(xs[0], xs[-1], ys[0], ys[-1]), **_IMAGE_STYLE)
    _boundary_contour(ax, xs, ys, probs)
    ax.scatter(X[0], X[1], c=np.asarray(Y).ravel(), **_POINT_STYLE)
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    _few_ticks(ax)
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
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] != 2 or X.shape[1] == 0:
        return None
    X = X.astype(float, copy=False)
    xs, ys, probs = _boundary_grid(parameters, X, hidden_activation)

    def build() -> SimpleNamespace:
        fig = _figure(5, 4.5)
        ax = fig.add_subplot()
        image = ax.imshow(np.full((2, 2), 0.5), extent=(0, 1, 0, 1), **_IMAGE_STYLE)
        points = ax.scatter(np.empty(0), np.empty(0), c=np.empty(0), **_POINT_STYLE)
        _few_ticks(ax)
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
        return SimpleNamespace(fig=fig, ax=ax, image=image, points=points, contour=None)

    def update(t: SimpleNamespace) -> None:
        t.image.set_data(probs)
        t.image.set_extent((xs[0], xs[-1], ys[0], ys[-1]))
        if t.contour is not None:
            t.contour.remove()
        t.contour = _boundary_contour(t.ax, xs, ys, probs)
        t.points.set_offsets(X.T)
        t.points.set_array(np.asarray(Y, dtype=float).ravel())
        t.ax.set_xlim(xs[0], xs[-1])
        t.ax.set_ylim(ys[0], ys[-1])
        _title(t.ax, title)

    return _draw_cached(("decision_boundary",), build, update, path)


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


def layer_norms(norms: Sequence[tuple[str, Mapping[str, Sequence[float]]]],
                path: str | Path) -> Path:
    """Activation RMS per hidden layer and ‖dWl‖ per layer at initialization, one line per
    ``(setting, {"act_rms": [...], "grad_norm": [...]})``, log scale (0 and inf are left out)."""
    fig = _figure(10, 4, left=0.07, right=0.98, bottom=0.13, top=0.88, wspace=0.25)
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
        ax.set_yscale("log")
        _title(ax, title)
        ax.set_xlabel(xlabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    return _save(fig, path)
