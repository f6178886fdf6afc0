"""Activation functions and their derivatives, as in-place tables (the scikit-learn way).

Each forward function overwrites its argument (``Z`` becomes ``A``) so a training step allocates
nothing. Each derivative multiplies ``dA`` in place by g'(Z), written in terms of ``A`` (which is all the
kernel keeps): for relu and leaky relu ``A > 0`` iff ``Z > 0``; for tanh g' = 1 - A²; for sigmoid
g' = A(1 - A).
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


def relu_backward(dA: np.ndarray, A: np.ndarray) -> None:
    dA *= A > 0


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
