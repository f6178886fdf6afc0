"""Gradient checking: an analytic gradient against central (or forward) differences of the cost.

``difference = ‖g − g̃‖ / (‖g‖ + ‖g̃‖)`` with ε = 1e-7 passes below 2e-7 (the course's numbers); each
result also names the difference per parameter array (W1, b1, ...). :func:`gradient_check` checks
anyone's ``cost_fn``/``grad_fn`` one entry at a time; :func:`check_network` checks our network,
vectorized, from cost changes computed without cancellation, leaving out (and counting) the entries
whose step crosses a relu kink. Owns: the settings, the verdict, :class:`GradientCheckResult`.
Must not touch: the network's math (it calls ``cost_and_gradients``), files, tracking.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dlpractice.errors import DataError, GradientCheckError
from dlpractice.nn.differences import NetworkDifferences
from dlpractice.nn.network import cost_and_gradients

EPSILON = 1e-7
THRESHOLD = 2e-7
METHODS = ("central", "forward")
MAX_CHUNK_BYTES = 1 << 20  # fits the temporaries of one chunk in a core's L2 cache


@dataclass(frozen=True)
class GradientCheckResult:
    """The verdict, with the difference per parameter array (``grad``/``gradapprox`` hold the arrays).

    ``kinks`` entries (``kink_arrays`` per array, True in ``kink_mask``) were left out: their ±ε step
    crosses a relu kink, where a difference quotient is no derivative (only :func:`check_network`
    sees them). ``checked`` counts the entries compared (0 with no kinks: not recorded).
    """

    difference: float
    passed: bool
    threshold: float
    epsilon: float
    per_array: dict[str, float]
    method: str = "central"
    grad: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)
    gradapprox: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)
    kinks: int = 0
    kink_arrays: dict[str, int] = field(default_factory=dict)
    checked: int = 0
    kink_mask: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    @property
    def nothing_checked(self) -> bool:
        """Every entry was skipped at a kink: the difference (0) compares nothing."""
        return self.kinks > 0 and self.checked == 0

    @property
    def worst_array(self) -> str | None:
        """The array with the largest difference (None when there are no arrays)."""
        if not self.per_array:
            return None
        return max(self.per_array, key=self.per_array.__getitem__)

    def summary(self) -> str:
        """One line: the verdict, and which entries a relu kink kept out of it."""
        settings = f"{self.method} differences, epsilon {self.epsilon:.2g}"
        if self.nothing_checked:
            return (
                f"gradient check passed, but nothing could be checked: all {self.kinks} entries "
                f"were skipped, their perturbation crosses a relu kink, where finite differences "
                f"are not a gradient ({settings})"
            )
        verdict = "passed" if self.passed else "FAILED"
        line = (
            f"gradient check {verdict}: difference {self.difference:.3e} "
            f"{'<' if self.passed else '>='} {self.threshold:.2g} "
            f"({settings}; worst array {self.worst_array})"
        )
        if self.kinks:
            where = ", ".join(f"{k} {n}" for k, n in self.kink_arrays.items() if n)
            entries = "entry" if self.kinks == 1 else "entries"
            line += (
                f"; {self.kinks} {entries} skipped ({where}; {self.checked} checked): their "
                f"perturbation crosses a relu kink, where finite differences are not a gradient"
            )
        return line

    def report(self) -> str:
        """A table: per array its size, norms and difference (of the compared entries), then the
        summary; with kinks a ``skipped`` column counts the entries left out."""
        skipped = f" {'skipped':>7}" if self.kinks else ""
        header = (f"{'array':<8} {'size':>7} {'|grad|':>11} {'|gradapprox|':>13} "
                  f"{'difference':>11}{skipped}")
        rows = [header]
        for name, diff in self.per_array.items():
            g, ga = self.grad.get(name), self.gradapprox.get(name)
            size = "" if g is None else str(g.size)
            keep = self.kink_mask.get(name)
            if keep is not None:
                keep = ~keep
                g = None if g is None else g[keep]
                ga = None if ga is None else ga[keep]
            gn = "" if g is None else f"{np.linalg.norm(g):.4e}"
            gan = "" if ga is None else f"{np.linalg.norm(ga):.4e}"
            kinks = f" {self.kink_arrays.get(name, 0):>7}" if self.kinks else ""
            flag = "  <-- worst" if name == self.worst_array and not self.passed else ""
            rows.append(f"{name:<8} {size:>7} {gn:>11} {gan:>13} {diff:>11.3e}{kinks}{flag}")
        rows.append(self.summary())
        return "\n".join(rows)

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON values (arrays as nested lists); :meth:`from_dict` inverts it."""
        return {
            "difference": float(self.difference),
            "passed": bool(self.passed),
            "threshold": float(self.threshold),
            "epsilon": float(self.epsilon),
            "per_array": {k: float(v) for k, v in self.per_array.items()},
            "method": self.method,
            "grad": {k: np.asarray(v).tolist() for k, v in self.grad.items()},
            "gradapprox": {k: np.asarray(v).tolist() for k, v in self.gradapprox.items()},
            "kinks": int(self.kinks),
            "kink_arrays": {k: int(v) for k, v in self.kink_arrays.items()},
            "checked": int(self.checked),
            "kink_mask": {k: np.asarray(v).tolist() for k, v in self.kink_mask.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GradientCheckResult:
        """The result of :meth:`to_dict`; fields with a default may be left out, as in the constructor."""
        missing = [k for k in ("difference", "passed", "threshold", "epsilon", "per_array")
                   if k not in data]
        if missing:
            raise DataError(f"gradient check dict has no key '{missing[0]}' "
                            f"(keys: {', '.join(sorted(map(str, data))) or 'none'})")

        def arrays(key: str, dtype: type) -> dict[str, np.ndarray]:
            return {k: np.asarray(v, dtype=dtype) for k, v in data.get(key, {}).items()}

        return cls(
            difference=float(data["difference"]),
            passed=bool(data["passed"]),
            threshold=float(data["threshold"]),
            epsilon=float(data["epsilon"]),
            per_array={k: float(v) for k, v in data["per_array"].items()},
            method=str(data.get("method", "central")),
            grad=arrays("grad", np.float64),
            gradapprox=arrays("gradapprox", np.float64),
            kinks=int(data.get("kinks", 0)),
            kink_arrays={k: int(v) for k, v in data.get("kink_arrays", {}).items()},
            checked=int(data.get("checked", 0)),
            kink_mask=arrays("kink_mask", bool),
        )


ZERO_GRADIENT = 1e-8  # a gradient norm below this counts as zero (see relative_difference)


def relative_difference(grad: np.ndarray, gradapprox: np.ndarray) -> float:
    """``‖g − g̃‖ / max(‖g‖ + ‖g̃‖, 1e-8)``: the floor keeps an exactly-zero gradient from scoring 1
    against the rounding noise of its estimate."""
    g, ga = np.ravel(grad), np.ravel(gradapprox)
    denominator = max(float(np.linalg.norm(g) + np.linalg.norm(ga)), ZERO_GRADIENT)
    return float(np.linalg.norm(g - ga)) / denominator


def _result(grad: dict[str, np.ndarray], gradapprox: dict[str, np.ndarray], epsilon: float,
            threshold: float, method: str,
            kink_mask: dict[str, np.ndarray] | None = None) -> GradientCheckResult:
    """The result; entries where ``kink_mask`` is True are left out of every difference."""
    names = list(grad)
    mask = {k: np.reshape(v, grad[k].shape).astype(bool) for k, v in (kink_mask or {}).items()}
    keep = {k: ~mask[k] if k in mask else np.ones(grad[k].shape, dtype=bool) for k in names}
    g = {k: grad[k][keep[k]] for k in names}
    ga = {k: gradapprox[k][keep[k]] for k in names}
    difference = relative_difference(
        np.concatenate([g[k] for k in names] or [np.empty(0)]),
        np.concatenate([ga[k] for k in names] or [np.empty(0)]),
    )
    kink_arrays = {k: int(mask[k].sum()) for k in names if k in mask}
    return GradientCheckResult(
        difference=difference,
        passed=bool(difference < threshold),
        threshold=float(threshold),
        epsilon=float(epsilon),
        per_array={k: relative_difference(g[k], ga[k]) for k in names},
        method=method,
        grad=grad,
        gradapprox=gradapprox,
        kinks=sum(kink_arrays.values()),
        kink_arrays=kink_arrays,
        checked=sum(int(keep[k].sum()) for k in names),
        kink_mask={k: mask[k] for k in names if k in mask},
    )


def _check_settings(epsilon: float, threshold: float, method: str) -> None:
    if method not in METHODS:
        raise GradientCheckError(f"method {method!r} is not one of {', '.join(METHODS)}")
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise GradientCheckError(f"epsilon {epsilon!r} must be a positive finite number")
    if not (math.isfinite(threshold) and threshold > 0):
        raise GradientCheckError(f"threshold {threshold!r} must be a positive finite number")


_LAYER_KEY = re.compile(r"([Wb])(\d+)")


def _ordered_keys(parameters: Mapping[str, object]) -> list[str]:
    """W1, b1, W2, b2, ... when the keys follow that pattern; otherwise the mapping's order."""
    keys = list(parameters)
    matches = [_LAYER_KEY.fullmatch(k) if isinstance(k, str) else None for k in keys]
    if all(matches):
        return [m.group(0) for m in sorted(matches, key=lambda m: (int(m.group(2)), m.group(1)))]
    return keys


def gradient_check(
    cost_fn: Callable[[dict[str, np.ndarray]], float],
    grad_fn: Callable[[dict[str, np.ndarray]], Mapping[str, np.ndarray]],
    parameters: Mapping[str, np.ndarray],
    epsilon: float = EPSILON,
    threshold: float = THRESHOLD,
    *,
    method: str = "central",
) -> GradientCheckResult:
    """Check ``grad_fn`` against differences of ``cost_fn``, perturbing one entry at a time.

    ``cost_fn(p) -> float``, ``grad_fn(p) -> {"dW1": ...}`` (or keyed ``"W1"``), both on a private
    float64 copy; the quotient divides by the step as rounded, ``(x + ε) − (x − ε)``.
    """
    _check_settings(epsilon, threshold, method)
    names = _ordered_keys(parameters)
    work = {k: np.array(parameters[k], dtype=np.float64, copy=True) for k in names}
    grads = grad_fn({k: v.copy() for k, v in work.items()})
    if not isinstance(grads, Mapping):
        raise GradientCheckError(
            f"grad_fn must return a dict of arrays keyed 'dW1' or 'W1', ...; got {type(grads)}"
        )
    grad: dict[str, np.ndarray] = {}
    for k in names:
        g = grads.get(f"d{k}", grads.get(k))
        if g is None:
            raise GradientCheckError(
                f"grad_fn returned no gradient for {k!r} (expected key 'd{k}' or '{k}'; "
                f"got {', '.join(map(str, grads)) or 'none'})"
            )
        g = np.asarray(g, dtype=np.float64)
        if g.size != work[k].size:
            raise GradientCheckError(
                f"gradient of {k!r} has shape {g.shape}; parameter has shape {work[k].shape}"
            )
        grad[k] = g.reshape(work[k].shape).copy()

    J0 = float(cost_fn(work)) if method == "forward" else 0.0
    gradapprox: dict[str, np.ndarray] = {}
    for k in names:
        flat = work[k].reshape(-1)  # a view: perturbing it perturbs work[k]
        approx = np.empty(flat.size)
        for i in range(flat.size):
            x = flat[i]
            flat[i] = x + epsilon
            plus, J_plus = flat[i], float(cost_fn(work))
            if method == "central":
                flat[i] = x - epsilon
                minus, J_minus = flat[i], float(cost_fn(work))
            else:
                minus, J_minus = x, J0
            flat[i] = x
            approx[i] = (J_plus - J_minus) / (plus - minus)
        gradapprox[k] = approx.reshape(work[k].shape)
    return _result(grad, gradapprox, epsilon, threshold, method)


def _subset(X: np.ndarray, Y: np.ndarray, max_examples: int | None,
            seed: int) -> tuple[np.ndarray, np.ndarray]:
    m = X.shape[1]
    if max_examples is None or max_examples >= m:
        return X, Y
    if max_examples < 1:
        raise GradientCheckError(f"max_examples {max_examples} must be >= 1 (or None for all {m})")
    keep = np.sort(np.random.default_rng(seed).choice(m, size=max_examples, replace=False))
    return X[:, keep], Y[:, keep]


def check_network(
    parameters: Mapping[str, np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    hidden_activation: str = "relu",
    lambd: float = 0.0,
    l1: float = 0.0,
    keep_prob: float = 1.0,
    epsilon: float = EPSILON,
    threshold: float = THRESHOLD,
    method: str = "central",
    max_examples: int | None = None,
    seed: int = 0,
    *,
    max_chunk_bytes: int = MAX_CHUNK_BYTES,
) -> GradientCheckResult:
    """Check ``cost_and_gradients`` of our network (cross-entropy + L2/L1) at ``parameters``.

    Dropout is refused (the cost would not be a function of the weights); ``max_examples`` checks on
    a subset drawn with ``seed``. Vectorized: see :mod:`dlpractice.nn.differences`.
    """
    _check_settings(epsilon, threshold, method)
    if np.any(np.asarray(keep_prob, dtype=np.float64) != 1.0):  # one value or one per layer
        raise GradientCheckError(
            f"gradient checking needs keep_prob=1 (dropout off); got keep_prob={keep_prob}: "
            "dropout draws a new mask per evaluation, so the cost is not a function of the weights"
        )
    X, Y = _subset(np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64),
                   max_examples, seed)
    _, grads = cost_and_gradients(parameters, X, Y, hidden_activation, lambd, l1)
    net = NetworkDifferences(parameters, X, Y, hidden_activation, lambd, l1)
    deltas = np.array([epsilon, -epsilon] if method == "central" else [epsilon])
    grad: dict[str, np.ndarray] = {}
    gradapprox: dict[str, np.ndarray] = {}
    kink_mask: dict[str, np.ndarray] = {}
    for layer, W in enumerate(net.W):
        rows, cols = W.shape[0], W.shape[1] + 1
        size = rows * cols
        chunk = max(1, max_chunk_bytes // (deltas.size * net.bytes_per_perturbation(layer)))
        if 2 * chunk >= cols:  # whole units per chunk: fewer of their examples move
            chunk = max(cols, chunk - chunk % cols)
        approx = np.empty(size)
        kinked = np.zeros(size, dtype=bool)
        bounds = net.kink_bounds(layer, deltas)
        for start in range(0, size, chunk):
            q = np.arange(start, min(start + chunk, size))
            change, crossed = net.cost_changes(layer, q, deltas, bounds)
            approx[q] = ((change[0] - change[1]) / (2 * epsilon) if method == "central"
                         else change[0] / epsilon)
            if crossed is not None:
                kinked[q] = np.any(crossed, axis=0)  # either step crosses: no derivative here
        approx, kinked = approx.reshape(rows, cols), kinked.reshape(rows, cols)
        l = layer + 1
        grad[f"W{l}"], grad[f"b{l}"] = grads[f"dW{l}"], grads[f"db{l}"]
        gradapprox[f"W{l}"] = np.ascontiguousarray(approx[:, :-1])
        gradapprox[f"b{l}"] = np.ascontiguousarray(approx[:, -1:])
        kink_mask[f"W{l}"] = np.ascontiguousarray(kinked[:, :-1])
        kink_mask[f"b{l}"] = np.ascontiguousarray(kinked[:, -1:])
    return _result(grad, gradapprox, epsilon, threshold, method, kink_mask)
