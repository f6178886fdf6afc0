"""The project's figures: cost curves, decision boundaries, weight and gradient-norm histories,
bias/variance bars, a sweep's error path, the studies' comparisons. The only package that imports
matplotlib.

Each function builds a fresh ``matplotlib.figure.Figure`` (the object API, never ``pyplot``: no GUI
backend, no global figure registry) and writes it with ``savefig``; only a :class:`RunFigures`
object keeps its figures, for the next run it is given.
It reads runs and settings and must not train, track or write anything but the figure it is given.
Arrays are in course orientation: ``X`` (n_features, m), ``Y`` (1, m).
"""

from dlpractice.plots.comparisons import (
    PathData,
    bias_variance_chart,
    cost_curves,
    early_stopping_curve,
    epsilon_scans,
    layer_norms,
    learning_curves,
    path_data,
    recipe_path,
    regularization_path,
)
from dlpractice.plots.one_run import (
    RunFigures,
    boundaries_side_by_side,
    cost_curve,
    decision_boundary,
    grad_norms,
    weight_histograms,
)

__all__ = ["PathData", "RunFigures", "bias_variance_chart", "boundaries_side_by_side", "cost_curve",
           "cost_curves", "decision_boundary", "early_stopping_curve", "epsilon_scans", "grad_norms",
           "layer_norms", "learning_curves", "path_data", "recipe_path", "regularization_path",
           "weight_histograms"]
