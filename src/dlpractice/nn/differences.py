"""The cost change ``J(θ + δ e_q) − J(θ)`` of the network for single-parameter steps, exactly.

Changes are propagated as differences, ``g(z + d) − g(z)`` and ``ℓ(z + d) − ℓ(z)`` in closed forms
without cancellation, so a difference quotient measures the gradient, not the rounding of two
costs; and every (step, entry) whose step moves a relu / leaky relu pre-activation across its kink
is marked. Owns: the vectorized perturbation math behind ``dlpractice.gradcheck.check_network``.
Must not touch: verdicts, thresholds, chunking (the check's), training.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.special import expit

from dlpractice.nn.activations import ACTIVATIONS, LEAKY_SLOPE, check_activation

# Below this |d| the Taylor cubic of the loss change equals it to double rounding (next term <= 5e-23).
_TAYLOR_LIMIT = 1e-5
# Margin on the bounds of how far a step moves a pre-activation (their rounding is ~1e-15 relative).
_SAFETY = 2.0


class _Deltas:
    """``g(z + d) − g(z)`` of the hidden activation without cancellation; ``context(Z)`` holds what
    depends on the unperturbed Z only."""

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
            return _scaled_ratio(np.tanh(d, out=d), t, sech2)
        s, s1ms = ctx  # σ(z + d) − σ(z) = σ(1 − σ) u / (1 + σ u), u = e^d − 1
        return _scaled_ratio(np.expm1(d, out=d), s, s1ms)


def _scaled_ratio(u: np.ndarray, t: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``u · scale / (1 + u · t)``, in place in ``u``."""
    denominator = u * t
    denominator += 1.0
    u *= scale
    u /= denominator
    return u


class NetworkDifferences:
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
        # the unperturbed pass: every layer's input with a row of ones (the bias column's input)
        self.A_aug: list[np.ndarray] = []
        self.ctx: list[tuple[np.ndarray, ...]] = []  # per hidden layer
        # relu kinks, per hidden layer: Z and its smallest |z| per unit and per layer (|Z| sorted lazily)
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
        # |ΔZ_k| <= max|W_k|·|ΔA| from one unit, <= max row sum |W_k|·max|ΔA| from all (|ΔA| <= |ΔZ|)
        self.W_absmax = [float(np.max(np.abs(w), initial=0.0)) for w in self.W]
        self.W_rowsum = [float(np.max(np.sum(np.abs(w), axis=1), initial=0.0)) for w in self.W]
        z, y = Z[0], np.asarray(Y, dtype=np.float64).reshape(-1)
        # ℓ(z) = softplus(z) − y z = softplus(t) − w t, t = sign·z with sign −1 and w = 1 − y for y > 1/2:
        # a label 1 has w = 0 like a label 0, so no "− y d" cancels a confident right answer's change
        sign = np.where(y > 0.5, -1.0, 1.0)
        t = sign * z
        s, s1ms = expit(t), expit(t) * expit(-t)
        self.sign, self.t, self.s = sign, t, s
        self.w = np.where(y > 0.5, 1.0 - y, y)
        # ℓ(z + d) − ℓ(z) ≈ d (c1 + d (c2 + d c3)), the Taylor cubic (odd terms flip with the sign)
        self.c1 = sign * (s - self.w)
        self.c2, self.c3 = s1ms / 2.0, sign * s1ms * (1.0 - 2.0 * s) / 6.0

    def bytes_per_perturbation(self, layer: int) -> int:
        """Memory of one perturbed parameter's temporaries while it runs through the layers."""
        dense = [self.W[l].shape[0] for l in range(layer + 1, self.L - 1)]
        return 8 * self.m * (4 + 2 * max(dense, default=0))

    def kink_bounds(self, layer: int, deltas: np.ndarray) -> list[float] | None:
        """Bounds of ``|ΔZ_k|``, k = layer .. L − 2, for a step of ``layer`` by ``deltas``; None when
        no hidden unit can reach its kink (tanh, sigmoid, and nearly every relu net)."""
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
        """``J(θ + δ_s e_q) − J(θ)``, (S, P), for entries ``q`` of the 0-based ``layer``'s flat ``[W | b]``.

        With it an (S, P) mask of the steps that cross a relu kink, or None when ``bounds``
        (the layer's ``kink_bounds``) is None.
        """
        W = self.W[layer]
        cols = W.shape[1] + 1
        units, inputs = np.divmod(q, cols)
        # Z_layer changes in row `unit` only, by δ times that parameter's input row
        d = np.multiply(deltas[:, None, None], self.A_aug[layer][inputs], order="C")  # (S, P, m)
        every = slice(None)
        examples: slice | np.ndarray = every
        crossed = None if bounds is None else np.zeros((deltas.size, q.size), dtype=bool)
        if layer < self.L - 1:
            if bounds is not None and bounds[0] >= self.margin[layer]:
                # |d| <= max|δ| |input row|: only units with some |z| within that can cross
                reach = _SAFETY * float(np.max(np.abs(deltas))) * self.A_absmax[layer][inputs]
                near = np.flatnonzero(self.unit_margin[layer][units] <= reach)
                if near.size:
                    z = self.Z[layer][units[near]]
                    crossed[:, near] = np.any(_crosses(z, d[:, near]), axis=-1)
            ctx = tuple(c[units] for c in self.ctx[layer])
            d = self.act.delta(d, ctx)  # ΔA_layer[unit]
            # examples whose activation did not move (relu off) add exactly 0 downstream: dropped
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
        """Mark in ``crossed`` (S, P) the steps whose change ``dZ`` (n, S, P, m') of hidden layer ``k``
        crosses a kink; only pairs with ``|z| <= bound`` can, found by bisection in sorted ``|Z_k|``."""
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
        """Per example ``ℓ(z + d) − ℓ(z)``, ℓ the cross-entropy of logit z and label y, for logit
        changes ``d`` of ``examples``, without cancellation."""
        if np.max(np.abs(d), initial=0.0) <= _TAYLOR_LIMIT:
            out = d * self.c3[examples]
            out += self.c2[examples]
            out *= d
            out += self.c1[examples]
            out *= d
            return out
        e = d * self.sign[examples]  # the change of t
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            # softplus(t + e) − softplus(t) = log1p(σ(t)(e^e − 1)), well conditioned for |e| <= 1
            change = np.log1p(self.s[examples] * np.expm1(e))
        far = np.abs(d) > 1.0  # e^e may overflow there, or 1 + σ(t)(e^e − 1) cancel
        if np.any(far):
            # softplus(t) = max(t, 0) + log1p(e^-|t|) term by term, max's change exactly (as relu's
            # in _Deltas): only the rounding of t + e inside e^-|t + e| is left
            t = self.t[examples]
            terms = np.maximum(e + np.minimum(t, 0.0), -np.maximum(t, 0.0))
            terms += np.log1p(np.exp(-np.abs(t + e))) - np.log1p(np.exp(-np.abs(t)))
            change = np.where(far, terms, change)
        e *= self.w[examples]
        change -= e
        return change

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
    """Where ``z → z + d`` crosses relu's kink: z and z + d on opposite sides of 0, or z == 0 and
    d != 0 (backprop's slope there is the left one); landing on 0 from z != 0 is no crossing."""
    moved = z + d
    out = (z > 0) & (moved < 0)
    out |= (z < 0) & (moved > 0)
    out |= (z == 0) & (d != 0)
    return out
