"""Weight initializations; biases always start at zero.

Scales (n_prev the fan-in, n the fan-out): ``zeros`` 0, ``random`` N(0,1)·scale (default 10, the
course's "too large" init), ``he`` sqrt(2/n_prev), ``xavier`` sqrt(1/n_prev), ``glorot``
sqrt(2/(n_prev + n)). Course mode draws as the course: ``np.random.seed(3)``, then one
``np.random.randn(n, n_prev)`` per layer, ``xavier`` dividing by sqrt(n_prev) (another last bit).
Owns: the initial parameters. Must not touch: the network's storage, training.
"""

from __future__ import annotations

import math

import numpy as np

INITS = ("zeros", "random", "he", "xavier", "glorot")
COURSE_INIT_SEED = 3


def init_scale(method: str, n_prev: int, n: int, random_scale: float = 10.0) -> float:
    """The standard deviation multiplier of layer weights for ``method``."""
    if method == "zeros":
        return 0.0
    if method == "random":
        return float(random_scale)
    if method == "he":
        return math.sqrt(2.0 / n_prev)
    if method == "xavier":
        return math.sqrt(1.0 / n_prev)
    if method == "glorot":
        return math.sqrt(2.0 / (n_prev + n))
    raise ValueError(f"init {method!r} is not one of {', '.join(INITS)}")


def initialize_parameters(
    layer_dims: list[int] | tuple[int, ...],
    method: str = "he",
    *,
    random_scale: float = 10.0,
    rng: np.random.Generator | None = None,
    course_compat: bool = False,
) -> dict[str, np.ndarray]:
    """Return ``{"W1": (n1, n0), "b1": (n1, 1), ...}`` for ``layer_dims = [n0, n1, ..., nL]``."""
    init_scale(method, 1, 1, random_scale)  # validates the name
    if course_compat:
        np.random.seed(COURSE_INIT_SEED)
    elif rng is None:
        rng = np.random.default_rng(0)
    parameters: dict[str, np.ndarray] = {}
    for l in range(1, len(layer_dims)):
        n, n_prev = layer_dims[l], layer_dims[l - 1]
        if method == "zeros":
            W = np.zeros((n, n_prev))
        elif course_compat:
            W = np.random.randn(n, n_prev)
            W = W / np.sqrt(n_prev) if method == "xavier" else W * init_scale(
                method, n_prev, n, random_scale
            )
        else:
            W = rng.standard_normal((n, n_prev)) * init_scale(method, n_prev, n, random_scale)
        parameters[f"W{l}"] = W
        parameters[f"b{l}"] = np.zeros((n, 1))
    return parameters
