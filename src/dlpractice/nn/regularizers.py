"""Regularizers of the training loop: inverted dropout, early stopping, data augmentation by flips.

L2 and L1 act on the cost and gradient (``Network.penalty``, ``add_penalty_gradient``). Owns: masks,
the stopping rule, augmented copies. Must not touch: the network's math, the loop itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dlpractice.nn.network import Network, Workspace


def check_keep_probs(hidden_keep_probs: Sequence[float], input_keep_prob: float) -> None:
    """Every keep probability in (0, 1], else ValueError."""
    for kp in (*hidden_keep_probs, input_keep_prob):
        if not 0.0 < kp <= 1.0:
            raise ValueError(f"keep_prob {kp} must be in (0, 1]")


class DropoutMasks:
    """Inverted dropout of hidden layers (and optionally the input): keep w.p. keep_prob, scale by 1/it.

    A step's forward and backward pass share its masks. With ``course_seed`` they are the course's:
    ``np.random.seed(course_seed)``, then ``np.random.rand(n_l, m) < keep_prob`` per layer, every step.
    """

    def __init__(
        self,
        net: Network,
        hidden_keep_probs: Sequence[float],
        input_keep_prob: float,
        rng: np.random.Generator,
        course_seed: int | None = None,
    ):
        check_keep_probs(hidden_keep_probs, input_keep_prob)
        # keep_probs[l] for layer l's activations A_l, l = 0 (input) .. L-1
        self.keep_probs = [float(input_keep_prob), *map(float, hidden_keep_probs)]
        self.layers = [l for l, kp in enumerate(self.keep_probs) if kp < 1.0]
        self.on_input = self.keep_probs[0] < 1.0
        self.rng = rng
        self.course_seed = course_seed
        self._course_cache: dict[int, list[np.ndarray | None]] = {}
        self._uniform: dict[tuple[int, int], np.ndarray] = {}

    def apply(self, ws: Workspace) -> None:
        """Draw this step's masks into ``ws`` (and thin its input in place if asked)."""
        if not self.layers:
            return
        ws.keep_probs = self.keep_probs
        if self.course_seed is not None:
            masks = self._course_masks(ws)
        else:
            masks = [None] * len(self.keep_probs)
            for l in self.layers:
                shape = (ws.net.layer_dims[l], ws.m)
                u = self._uniform.setdefault(shape, np.empty(shape))
                self.rng.random(out=u)
                masks[l] = u < self.keep_probs[l]
        ws.masks = [None, *masks[1:]]
        if self.on_input:
            ws.X[...] *= masks[0]
            ws.X[...] /= self.keep_probs[0]

    def _course_masks(self, ws: Workspace) -> list[np.ndarray | None]:
        if ws.m not in self._course_cache:
            np.random.seed(self.course_seed)
            masks: list[np.ndarray | None] = [None] * len(self.keep_probs)
            for l in self.layers:
                masks[l] = np.random.rand(ws.net.layer_dims[l], ws.m) < self.keep_probs[l]
            self._course_cache[ws.m] = masks
        return self._course_cache[ws.m]


class EarlyStopping:
    """Stop when the dev cost has not improved by ``min_delta`` for ``patience`` evaluations.

    Keeps a copy of the best weights so training can end on them rather than on the last ones.
    """

    def __init__(self, patience: int, min_delta: float = 0.0):
        if patience < 1:
            raise ValueError(f"early stopping patience {patience} must be >= 1")
        self.patience = patience
        self.min_delta = min_delta
        self.best_cost = np.inf
        self.best_iteration: int | None = None
        self.best_theta: np.ndarray | None = None
        self.bad_evaluations = 0

    def update(self, iteration: int, dev_cost: float, theta: np.ndarray) -> bool:
        """Record one evaluation; True when training should stop."""
        if dev_cost < self.best_cost - self.min_delta:
            self.best_cost = dev_cost
            self.best_iteration = iteration
            self.best_theta = theta.copy()
            self.bad_evaluations = 0
            return False
        self.bad_evaluations += 1
        return self.bad_evaluations >= self.patience


def augment_flips(
    X: np.ndarray, Y: np.ndarray, flip_axes: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Append a copy mirrored in feature ``k`` (x_k -> -x_k, same label) per axis in ``flip_axes``.

    Right only when the classes are symmetric in that feature (a kick's left/right).
    """
    if not flip_axes:
        return X, Y
    parts_X, parts_Y = [X], [Y]
    for axis in flip_axes:
        if not 0 <= axis < X.shape[0]:
            raise ValueError(f"flip axis {axis} is not a feature index (0..{X.shape[0] - 1})")
        flipped = X.copy()
        flipped[axis] *= -1.0
        parts_X.append(flipped)
        parts_Y.append(Y)
    return np.concatenate(parts_X, axis=1), np.concatenate(parts_Y, axis=1)
