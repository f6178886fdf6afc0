"""Hidden activations and their derivatives as tables of in-place functions (scikit-learn's way).

Owns g and g' for every hidden activation, the only place either is written. ``ACTIVATIONS[name](Z)``
overwrites Z with g(Z); ``DERIVATIVES[name](dA, A)`` multiplies dA in place by g'(Z), computed from
the activation A (all a pass keeps). Must not touch: layers, buffers, the cost.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import expit

LEAKY_SLOPE = 0.01


def relu(Z: np.ndarray) -> None:
    np.maximum(Z, 0.0, out=Z)


def leaky_relu(Z: np.ndarray) -> None:
    np.maximum(Z, LEAKY_SLOPE * Z, out=Z)


def tanh(Z: np.ndarray) -> None:
    np.tanh(Z, out=Z)


def sigmoid(Z: np.ndarray) -> None:
    expit(Z, out=Z)


def relu_mask(A: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """relu'(Z) as a 0/1 mask of ``A = relu(Z)``: ``A > 0`` iff ``Z > 0`` (slope 0 at the kink)."""
    return np.greater(A, 0.0, out=out)


def relu_backward(dA: np.ndarray, A: np.ndarray, mask: np.ndarray | None = None) -> None:
    """``dA *= relu'(Z)``; ``mask``, a buffer of A's shape, spares the temporary."""
    dA *= relu_mask(A, mask)


def leaky_relu_backward(dA: np.ndarray, A: np.ndarray) -> None:
    dA *= np.where(A > 0, 1.0, LEAKY_SLOPE)


def tanh_backward(dA: np.ndarray, A: np.ndarray) -> None:
    dA *= 1.0 - A * A


def sigmoid_backward(dA: np.ndarray, A: np.ndarray) -> None:
    dA *= A * (1.0 - A)


ACTIVATIONS: dict[str, Callable[[np.ndarray], None]] = {
    "relu": relu,
    "leaky_relu": leaky_relu,
    "tanh": tanh,
    "sigmoid": sigmoid,
}

DERIVATIVES: dict[str, Callable[[np.ndarray, np.ndarray], None]] = {
    "relu": relu_backward,
    "leaky_relu": leaky_relu_backward,
    "tanh": tanh_backward,
    "sigmoid": sigmoid_backward,
}


def check_activation(name: str) -> str:
    if name not in ACTIVATIONS:
        raise ValueError(
            f"hidden activation {name!r} is not one of {', '.join(sorted(ACTIVATIONS))}"
        )
    return name
