"""Gradient checking: compare an analytic gradient with central (or forward) differences of the cost.

``difference = ‖g − g̃‖₂ / (‖g‖₂ + ‖g̃‖₂)`` with ``g̃_i = (J(θ + ε e_i) − J(θ − ε e_i)) / 2ε`` and
ε = 1e-7 passes below 2e-7 (the course's numbers). Every result also names the difference per
parameter array (W1, b1, ...), so a wrong layer shows at once.

Two entry points:

* :func:`gradient_check` for anyone's ``cost_fn``/``grad_fn`` pair: one entry at a time, like the
  course's ``gradient_check_n``, on a private copy of the parameters.
* :func:`check_network` for dlpractice's own network, vectorized: every perturbed parameter
  vector of a chunk is evaluated in a few numpy calls, and it evaluates the *change* of the cost,
  not the cost twice.

Why the change. In float64 each J(θ ± ε e_i) carries a rounding error of about ulp(J) ≈ 1e-16;
divided by 2ε = 2e-7 that is ~5e-10 in every component of g̃. Measured on the course's loop
([2, 64, 64, 1] relu net, He init, football data, m = 211, 8834 costs): its difference, 2.82e-8,
is *all* that noise (‖g − g̃_loop‖ equals ‖g̃_exact − g̃_loop‖ to 1e-10 relative; noise rms
3.8e-10 per entry); the central scheme's true difference there is 1.4e-16. Consequences:

* matching the loop's difference "to 1e-9 relative" means reproducing its rounding bit for bit
  in all 8834 costs. Rewriting the loop itself with the same math, ``[W|b] @ [A; 1]`` and ``/ m``,
  already moves its difference by 5%. OpenBLAS gives a row of ``W @ A`` different bits depending
  on the call's shape (its small-matrix kernel sums the last ``m mod 8`` examples in another
  order; a ``1 × n`` product goes through gemv, which sums in yet another order), so only the same
  calls reproduce it, and those are bound by the loop's own matmul time (26 of its 85 µs per
  forward pass: ≤ 3x faster). Emulating one BLAS build's kernels would tie the check to one CPU;
  we do not chase it;
* instead ``check_network`` computes ``J(θ ± ε e_i) − J(θ)`` without cancellation: it propagates
  the perturbation ``δ = ±ε`` of one row of ``Z_l`` through the layers as *differences*
  (``relu(z + d) − relu(z) = max(d + min(z, 0), −max(z, 0))``,
  ``tanh(z + d) − tanh(z) = tanh(d) sech²z / (1 + tanh z tanh d)``, ...) and the loss change as
  ``log(1 + e^(z+d)) − log(1 + e^z) = log1p(σ(z) expm1(d))`` (its Taylor cubic when |d| ≤ 1e-5,
  equal to rounding). Each g̃_i is then accurate to ~1e-16 relative: the difference measures the
  gradient, not the arithmetic. For a correct gradient it is the O(ε²) truncation, ~1e-15, and
  forward differences show their O(ε) error cleanly. Against the loop, per entry, the two g̃
  agree to 2.7 ulp(J)/2ε.

Relu kinks. Where a ±ε step moves a relu / leaky relu pre-activation z across 0 (or off z = 0,
where backprop takes the left slope), the difference quotient is no derivative: at z = 0 the
central one sees slope 1/2 where backprop's subgradient is 0, a "failure" of a correct gradient.
Zero biases put such z's at exactly 0 (an example whose units below are all off has Z = b = 0);
trained nets can have a few within ε. ``check_network`` marks, while it propagates the changes
(it has z and d for every unit and example), each entry one of whose steps crosses, and leaves
those out of ``difference`` and ``per_array``, reporting them (``kinks``, ``kink_arrays``,
``checked``). Finding them is nearly free: a bound of |d| per layer (ε·max|input| through
max|W|) is compared with min |z|, and only the (unit, example) pairs within it are looked at,
usually none. An entry left out is not checked at all, so a net with many (all b2 of a narrow
layer) checks less; an L1 kink (0 < |w| < ε) is not treated.

Structure exploited: activations before the perturbed layer are shared; perturbing ``W_l[i, j]``
(or ``b_l[i]``) changes only row i of ``Z_l`` (by ``δ A_{l-1}[j]``), so the next layer's change is
the rank-one ``W_{l+1}[:, i] ⊗ ΔA_l[i]``; only layers after that are dense, one matmul per chunk.
Examples where a perturbed relu unit is off change nothing and are dropped. Chunks of
perturbations (whole units when possible) are sized by ``max_chunk_bytes`` so the temporaries stay
in cache. See ``benchmarks/bench_gradcheck.py`` for the speed-up over the loop.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit

from dlpractice.errors import GradientCheckError
from dlpractice.nn.activations import ACTIVATIONS, LEAKY_SLOPE, check_activation
from dlpractice.nn.network import cost_and_gradients

EPSILON = 1e-7
THRESHOLD = 2e-7
METHODS = ("central", "forward")
MAX_CHUNK_BYTES = 1 << 20  # fits the temporaries of one chunk in a core's L2 cache
# Below this |d| the cubic Taylor polynomial of the loss change equals it to double rounding: the
# next term is under d**4 / 192 <= 5e-23 per example.
_TAYLOR_LIMIT = 1e-5
# Margin on the bounds of how far a perturbation moves a pre-activation (rounding of the bound's
# products and of the propagated changes is ~1e-15 relative; 2 is plenty).
_SAFETY = 2.0


@dataclass(frozen=True)
class GradientCheckResult:
    """The verdict, with the difference per parameter array to find a wrong layer at once.

    ``grad`` and ``gradapprox`` hold the arrays (keyed like ``per_array``), for inspecting which
    entries disagree. ``kinks`` entries (``kink_arrays`` per array, ``kink_mask`` True where) were
    left out of ``difference`` and ``per_array``: their ±ε step moves a relu / leaky relu
    pre-activation across its kink, where the finite difference is no derivative (backprop's
    subgradient 0 at z = 0, the central difference 1/2). Only :func:`check_network` can see them;
    :func:`gradient_check` reports 0. ``checked`` counts the entries compared (0 with ``kinks``
    0: not recorded, e.g. a result rebuilt from a saved report).
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
        """A table: one line per array with its size, norms and difference, then the summary.

        With kinks, a ``skipped`` column counts the entries left out; the norms are then those
        of the compared entries, like the difference.
        """
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


ZERO_GRADIENT = 1e-8  # a gradient norm below this counts as zero (see relative_difference)


def relative_difference(grad: np.ndarray, gradapprox: np.ndarray) -> float:
    """``‖g − g̃‖ / max(‖g‖ + ‖g̃‖, 1e-8)``.

    The floor keeps an exactly-zero gradient (e.g. ``db3`` on a balanced batch, or every weight of a
    zeros-initialized net) from scoring 1 against the 1e-18 rounding noise of its estimate; any
    real disagreement is far above it.
    """
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


# -- generic: anyone's cost and gradient ----------------------------------------------------------
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

    ``cost_fn(parameters) -> float``; ``grad_fn(parameters) -> {"dW1": ..., "db1": ...}`` (keys
    ``"d" + name`` or the parameter names themselves). Both receive a private float64 copy, never
    the caller's arrays. The step divided by is the one actually taken, ``(x + ε) − (x − ε)`` as
    rounded, which removes one rounding error of the course's loop at no cost.
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


# -- vectorized: dlpractice's network -------------------------------------------------------------
class _Deltas:
    """``g(z + d) − g(z)`` for the hidden activation, without the cancellation of subtracting.

    ``context(Z)`` precomputes what depends on the unperturbed ``Z`` only; ``delta`` takes those
    arrays (gathered rows or broadcast) and the perturbation ``d``.
    """

    def __init__(self, activation: str):
        self.activation = check_activation(activation)

    def context(self, Z: np.ndarray) -> tuple[np.ndarray, ...]:
        a = self.activation
        if a in ("relu", "leaky_relu"):
            return np.minimum(Z, 0.0), -np.maximum(Z, 0.0)
        if a == "tanh":
            with np.errstate(over="ignore"):
                sech = 1.0 / np.cosh(Z)  # cosh overflows to inf for |z| > 710: sech = 0, exact
            return np.tanh(Z), sech * sech
        s = expit(Z)
        return s, s * expit(-Z)  # σ and σ(1 − σ), the latter accurate also where σ → 1

    def forward(self, Z: np.ndarray) -> np.ndarray:
        A = Z.copy()
        ACTIVATIONS[self.activation](A)
        return A

    def delta(self, d: np.ndarray, ctx: tuple[np.ndarray, ...]) -> np.ndarray:
        """Overwrite ``d`` (a temporary of the caller) with ``g(z + d) − g(z)`` and return it."""
        a = self.activation
        if a in ("relu", "leaky_relu"):
            # relu(z + d) − relu(z) = max(d + min(z, 0), −max(z, 0)): exactly d where z stays > 0.
            z_neg, minus_pos = ctx
            if a == "leaky_relu":  # leaky(z) = s z + (1 − s) relu(z)
                linear = LEAKY_SLOPE * d
            d += z_neg
            np.maximum(d, minus_pos, out=d)
            if a == "leaky_relu":
                d *= 1.0 - LEAKY_SLOPE
                d += linear
            return d
        if a == "tanh":  # tanh(z + d) − tanh(z) = tanh(d) sech²z / (1 + tanh z tanh d)
            t, sech2 = ctx
            np.tanh(d, out=d)
            denominator = d * t
            denominator += 1.0
            d *= sech2
            d /= denominator
            return d
        s, s1ms = ctx  # σ(z + d) − σ(z) = σ(1 − σ) u / (1 + σ u), u = e^d − 1
        np.expm1(d, out=d)
        denominator = d * s
        denominator += 1.0
        d *= s1ms
        d /= denominator
        return d


class _NetworkDifferences:
    """``J(θ + δ e_q) − J(θ)`` for batches of parameters q of one layer, computed as differences."""

    def __init__(self, parameters: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray,
                 activation: str, lambd: float, l1: float):
        self.L = L = len(parameters) // 2
        self.m = X.shape[1]
        self.act = _Deltas(activation)
        self.lambd, self.l1 = float(lambd), float(l1)
        self.W = [np.asarray(parameters[f"W{l}"], dtype=np.float64) for l in range(1, L + 1)]
        b = [np.asarray(parameters[f"b{l}"], dtype=np.float64).reshape(-1, 1)
             for l in range(1, L + 1)]
        # Baseline forward pass: inputs of every layer with a row of ones (for the bias column).
        self.A_aug: list[np.ndarray] = []
        self.ctx: list[tuple[np.ndarray, ...]] = []  # per hidden layer
        # Relu kinks, per hidden layer: Z, the smallest |z| of each unit and of the layer (how far
        # a perturbation must move a unit to reach its kink), and |Z| sorted, made on first use.
        self.kinked = self.act.activation in ("relu", "leaky_relu")
        self.Z: list[np.ndarray] = []
        self.unit_margin: list[np.ndarray] = []
        self.margin: list[float] = []
        self._sorted: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.A_absmax: list[np.ndarray] = []  # per input row of [A; 1]: bounds a row's change
        A = np.asarray(X, dtype=np.float64)
        for l in range(L):
            self.A_aug.append(np.vstack([A, np.ones((1, self.m))]))
            Z = self.W[l] @ A + b[l]
            if l < L - 1:
                self.ctx.append(self.act.context(Z))
                if self.kinked:
                    self.A_absmax.append(np.max(np.abs(self.A_aug[l]), axis=1))
                    self.Z.append(Z)
                    self.unit_margin.append(np.min(np.abs(Z), axis=1))
                    self.margin.append(float(np.min(self.unit_margin[l], initial=np.inf)))
                A = self.act.forward(Z)
        # How far a change spreads: |ΔZ_k| <= max|W_k| |ΔA| from one unit (rank one), <= max row
        # sum |W_k| · max|ΔA| from all; and |ΔA| <= |ΔZ| for relu and leaky relu.
        self.W_absmax = [float(np.max(np.abs(w), initial=0.0)) for w in self.W]
        self.W_rowsum = [float(np.max(np.sum(np.abs(w), axis=1), initial=0.0)) for w in self.W]
        z, y = Z[0], np.asarray(Y, dtype=np.float64).reshape(-1)
        s, s1ms = expit(z), expit(z) * expit(-z)
        self.z, self.y, self.s = z, y, s
        # Loss change ℓ(z + d) − ℓ(z) ≈ d (c1 + d (c2 + d c3)), the Taylor cubic of softplus − y z.
        self.c1, self.c2, self.c3 = s - y, s1ms / 2.0, s1ms * (1.0 - 2.0 * s) / 6.0

    def bytes_per_perturbation(self, layer: int) -> int:
        """Memory of one perturbed parameter's temporaries while it runs through the layers."""
        dense = [self.W[l].shape[0] for l in range(layer + 1, self.L - 1)]
        return 8 * self.m * (4 + 2 * max(dense, default=0))

    def kink_bounds(self, layer: int, deltas: np.ndarray) -> list[float] | None:
        """Bounds (times a safety margin) of ``|ΔZ_k|``, k = layer, ..., L − 2, for any entry of
        ``layer`` perturbed by ``deltas``; None when no hidden unit can reach its kink (always
        for tanh and sigmoid, and for relu nets almost always: |z| is rarely within ε·|w|)."""
        if not self.kinked or layer >= self.L - 1:
            return None
        bound = _SAFETY * float(np.max(np.abs(deltas))) * float(np.max(self.A_absmax[layer]))
        bounds = [bound]
        for k in range(layer + 1, self.L - 1):
            bound *= _SAFETY * (self.W_absmax[k] if k == layer + 1 else self.W_rowsum[k])
            bounds.append(bound)
        if all(bd < self.margin[layer + i] for i, bd in enumerate(bounds)):
            return None
        return bounds

    def cost_changes(self, layer: int, q: np.ndarray, deltas: np.ndarray,
                     bounds: list[float] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """``J(θ + δ_s e_q) − J(θ)`` as an (S, P) array for the P entries ``q`` of ``[W | b]``.

        ``layer`` is 0-based; ``q`` indexes the layer's ``[W | b]`` matrix flattened row-major.
        Also returns an (S, P) boolean array, True where that perturbation moves a relu / leaky
        relu pre-activation across the kink (see ``_crosses``), or None when none can: when
        ``bounds``, the layer's ``kink_bounds`` (computed once by the caller), is None.
        """
        W = self.W[layer]
        cols = W.shape[1] + 1
        units, inputs = np.divmod(q, cols)
        # Z_layer changes in row `unit` only, by δ times that parameter's input row.
        d = np.multiply(deltas[:, None, None], self.A_aug[layer][inputs], order="C")  # (S, P, m)
        every = slice(None)
        examples: slice | np.ndarray = every
        crossed = None if bounds is None else np.zeros((deltas.size, q.size), dtype=bool)
        if layer < self.L - 1:
            if bounds is not None and bounds[0] >= self.margin[layer]:
                # |d| <= max|δ| |input row|: only units with some |z| within that can cross.
                reach = _SAFETY * float(np.max(np.abs(deltas))) * self.A_absmax[layer][inputs]
                near = np.flatnonzero(self.unit_margin[layer][units] <= reach)
                if near.size:
                    z = self.Z[layer][units[near]]
                    crossed[:, near] = np.any(_crosses(z, d[:, near]), axis=-1)
            ctx = tuple(c[units] for c in self.ctx[layer])
            d = self.act.delta(d, ctx)  # ΔA_layer[unit]
            # Examples whose activation did not move (relu units off) change nothing downstream
            # and add exactly 0 to the cost change: drop them.
            moved = np.flatnonzero(np.any(d, axis=(0, 1)))
            if moved.size < 0.8 * self.m:
                examples, d = moved, d[..., moved]
            nxt = self.W[layer + 1][:, units]  # (n_next, P): where that unit's change goes
            if layer + 1 == self.L - 1:
                d *= nxt[0][None, :, None]  # the output logit's change
            else:
                # (n, S, P, m), rank one per perturbation; C order so the matmul needs no copy
                dense = np.multiply(nxt[:, None, :, None], d, order="C")
                for k in range(layer + 1, self.L - 1):
                    if bounds is not None and bounds[k - layer] >= self.margin[k]:
                        self._dense_crossings(k, dense, examples, bounds[k - layer], crossed)
                    ctx = tuple((c if examples is every else c[:, examples])[:, None, None, :]
                                for c in self.ctx[k])
                    dA = self.act.delta(dense, ctx)
                    W_next = self.W[k + 1]
                    dense = (W_next @ dA.reshape(dA.shape[0], -1)).reshape(
                        (W_next.shape[0],) + dA.shape[1:]
                    )
                d = dense[0]
        change = self._loss_change(d, examples).sum(axis=-1) / self.m
        if self.lambd or self.l1:
            change += self._penalty_change(layer, units, inputs, deltas)
        return change, crossed

    def _dense_crossings(self, k: int, dZ: np.ndarray, examples: slice | np.ndarray,
                         bound: float, crossed: np.ndarray) -> None:
        """Mark in ``crossed`` (S, P) the perturbations whose change ``dZ`` (n, S, P, m') of hidden
        layer ``k``'s pre-activations (at ``examples``) crosses a kink.

        Only the (unit, example) pairs with ``|z| <= bound`` (a bound of ``|dZ|``) can: found by
        bisection in the sorted ``|Z_k|``; a few at most, all of them when ``Z_k`` is 0.
        """
        if k not in self._sorted:
            absZ = np.abs(self.Z[k]).ravel()
            order = np.argsort(absZ, kind="stable")
            self._sorted[k] = order, absZ[order]
        order, abs_sorted = self._sorted[k]
        unit, example = np.divmod(order[:np.searchsorted(abs_sorted, bound, side="right")], self.m)
        if isinstance(examples, np.ndarray):  # examples that did not move have dZ = 0 there
            pos = np.minimum(np.searchsorted(examples, example), max(examples.size - 1, 0))
            kept = examples[pos] == example if examples.size else np.zeros(unit.size, dtype=bool)
            unit, example, pos = unit[kept], example[kept], pos[kept]
        else:
            pos = example
        if unit.size:
            z = self.Z[k][unit, example][:, None, None]
            crossed |= np.any(_crosses(z, dZ[unit, :, :, pos]), axis=0)  # (pairs, S, P) → (S, P)

    def _loss_change(self, d: np.ndarray, examples: slice | np.ndarray) -> np.ndarray:
        """Per example ``[log(1 + e^(z+d)) − y (z+d)] − [log(1 + e^z) − y z]``, no cancellation.

        ``d`` is the logit change of ``examples``.
        """
        if np.max(np.abs(d), initial=0.0) <= _TAYLOR_LIMIT:
            out = d * self.c3[examples]
            out += self.c2[examples]
            out *= d
            out += self.c1[examples]
            out *= d
            return out
        with np.errstate(over="ignore"):
            change = np.log1p(self.s[examples] * np.expm1(d))
        far = d > 1.0  # e^d may overflow there; the difference of the two softplus is exact
        if np.any(far):
            z = self.z[examples]
            change = np.where(far, np.logaddexp(0.0, z + d) - np.logaddexp(0.0, z), change)
        return change - self.y[examples] * d

    def _penalty_change(self, layer: int, units: np.ndarray, inputs: np.ndarray,
                        deltas: np.ndarray) -> np.ndarray:
        W = self.W[layer]
        is_weight = inputs < W.shape[1]
        w = np.where(is_weight, W[units, np.minimum(inputs, W.shape[1] - 1)], 0.0)
        dl = deltas[:, None]
        out = np.zeros((deltas.size, units.size))
        if self.lambd:  # (w + δ)² − w² = δ (2w + δ)
            out += self.lambd / (2 * self.m) * dl * (2.0 * w + dl)
        if self.l1:  # |w + δ| − |w| = sign(w) δ unless δ crosses 0
            step = np.where(np.abs(w) >= np.abs(dl), np.sign(w) * dl, np.abs(w + dl) - np.abs(w))
            out += self.l1 / (2 * self.m) * step
        return out * is_weight


def _crosses(z: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Where ``z → z + d`` crosses relu's kink: z and z + d on different sides of 0, or z == 0 with
    d != 0 (backprop then takes slope 0, the step sees 1 or the leaky slope's other side).

    Landing on 0 from z != 0 is no crossing: the function is linear up to and including the
    kink from that side. The rounded ``z + d`` has the sign of the exact sum.
    """
    moved = z + d
    out = (z > 0) & (moved < 0)
    out |= (z < 0) & (moved > 0)
    out |= (z == 0) & (d != 0)
    return out


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

    Dropout is refused: with a fresh random mask per evaluation the cost is not a function of
    the parameters. ``max_examples`` checks on a subset drawn with ``seed`` (the cost is the
    mean over the examples used). Vectorized; see the module docstring for why and how.
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
    net = _NetworkDifferences(parameters, X, Y, hidden_activation, lambd, l1)
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
