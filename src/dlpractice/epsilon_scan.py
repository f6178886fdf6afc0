"""The numerical gradient's error against its step ε: the lecture's f(θ) = θ³ example and a network.

Owns the scan (one difference per ε, for central and forward differences, by the course-style loop
of :func:`~dlpractice.gradcheck.gradient_check` and by the exact :func:`~dlpractice.gradcheck.
check_network`), the fitted log-log slope in the truncation regime and the ε where rounding takes
over. Pure core: numpy only; no files, figures or tracking.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dlpractice.gradcheck import check_network, gradient_check
from dlpractice.nn.network import cost_and_gradients

EPSILONS: tuple[float, ...] = tuple(10.0 ** -k for k in range(1, 11))  # 1e-1 … 1e-10
ROUNDING_FLOOR = 1e3 * np.finfo(float).eps  # below this a difference is rounding, not truncation
TRUNCATION_MAX = 1e-2  # above this step the difference saturates (it is at most 1)
CHECKS = ("loop", "exact")


@dataclass(frozen=True)
class EpsilonScan:
    """The relative difference between a gradient and its estimate at each step ``epsilons``."""

    method: str  # "central" or "forward"
    check: str  # "loop" (one entry at a time, costs subtracted) or "exact"
    epsilons: tuple[float, ...]
    differences: tuple[float, ...]

    @property
    def rounding_epsilon(self) -> float | None:
        """The ε of the smallest difference when the difference grows again below it (rounding
        took over); None when it never does in the scan."""
        i = int(np.argmin(self.differences))
        smallest_eps = int(np.argmin(self.epsilons))
        if self.differences[smallest_eps] > 10 * self.differences[i]:
            return self.epsilons[i]
        return None

    @property
    def slope(self) -> float:
        """The least-squares slope of log10(difference) against log10(ε) in the truncation regime:
        steps up to ``TRUNCATION_MAX`` and at least 10x the rounding ε, differences above
        rounding (``ROUNDING_FLOOR``)."""
        eps, diff = np.asarray(self.epsilons), np.asarray(self.differences)
        keep = (diff > ROUNDING_FLOOR) & (eps <= TRUNCATION_MAX)
        if self.rounding_epsilon is not None:
            keep &= eps >= 10 * self.rounding_epsilon
        if keep.sum() < 2:
            return math.nan
        return float(np.polyfit(np.log10(eps[keep]), np.log10(diff[keep]), 1)[0])

    def difference_at(self, epsilon: float) -> float:
        return self.differences[self.epsilons.index(epsilon)]


def estimate(f: Callable[[float], float], theta: float, epsilon: float, method: str) -> float:
    """The derivative of ``f`` at ``theta`` by a two-sided (central) or one-sided (forward)
    difference with step ``epsilon``."""
    if method == "central":
        return (f(theta + epsilon) - f(theta - epsilon)) / (2 * epsilon)
    return (f(theta + epsilon) - f(theta)) / epsilon


def cube_scan(method: str, theta: float = 1.0,
              epsilons: Sequence[float] = EPSILONS) -> EpsilonScan:
    """The lecture's example f(θ) = θ³ (derivative 3θ²), by ``estimate`` in floating point."""
    exact = 3 * theta**2
    diffs = [abs(exact - g) / (abs(exact) + abs(g))
             for g in (estimate(lambda t: t**3, theta, e, method) for e in epsilons)]
    return EpsilonScan(method, "loop", tuple(epsilons), tuple(diffs))


def network_scan(parameters: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray,
                 activation: str, method: str, check: str,
                 epsilons: Sequence[float] = EPSILONS) -> EpsilonScan:
    """The gradient check of our network at ``parameters`` on (X, Y) for each ε: ``check="loop"``
    perturbs one entry at a time and subtracts costs (the course's loop), ``"exact"`` computes the
    cost changes without cancellation (:func:`~dlpractice.gradcheck.check_network`)."""
    if check == "loop":
        def cost(p: Mapping[str, np.ndarray]) -> float:
            return cost_and_gradients(p, X, Y, activation)[0]

        def grad(p: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            return cost_and_gradients(p, X, Y, activation)[1]

        diffs = [gradient_check(cost, grad, parameters, e, method=method).difference
                 for e in epsilons]
    else:
        diffs = [check_network(parameters, X, Y, activation, epsilon=e, method=method).difference
                 for e in epsilons]
    return EpsilonScan(method, check, tuple(epsilons), tuple(diffs))
