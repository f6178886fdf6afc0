"""Network math in numpy: L-layer nets, initializations, regularizers, gradient-descent training.

Imports numpy and scipy only. Must not touch: files, configs, tracking, plots.
"""

from dlpractice.nn.activations import ACTIVATIONS
from dlpractice.nn.init import INITS, initialize_parameters
from dlpractice.nn.network import (
    Network,
    accuracy,
    compute_cost,
    correct_count,
    cost_and_gradients,
    error_rate,
    forward_propagation,
    predict,
)
from dlpractice.nn.train import TrainConfig, TrainResult, layer_dims_for, train

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "Network",
    "TrainConfig",
    "TrainResult",
    "accuracy",
    "compute_cost",
    "correct_count",
    "cost_and_gradients",
    "error_rate",
    "forward_propagation",
    "initialize_parameters",
    "layer_dims_for",
    "predict",
    "train",
]
