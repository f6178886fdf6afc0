"""Train K configurations of one network shape at once, each to the bit as :func:`~dlpractice.nn.train`.

The K parameter sets are stacked along a leading axis, so each numpy call of an iteration does K
times the arithmetic for one call's overhead; per configuration every product is the single run's
BLAS call and every elementwise step the same operation. Full batch on one X only:
:func:`unstackable_reason` names what needs its own run, and a configuration that diverges comes
back as :class:`Diverged` while the others go on. Owns: the stacked buffers and loop. Must not
touch: the single run's math (it reuses init, regularizers, ``TrainConfig``), files, tracking.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy.special import expit

from dlpractice.nn.activations import ACTIVATIONS, DERIVATIVES, relu_mask
from dlpractice.nn.init import initialize_parameters
from dlpractice.nn.network import Network, cross_entropy_from_logits
from dlpractice.nn.regularizers import augment_flips, check_keep_probs
from dlpractice.nn.train import COURSE_DROPOUT_SEED, TrainConfig, TrainResult, check_inputs

Callback = Callable[[int, float, float | None], None]


@dataclass(frozen=True)
class Diverged:
    """A configuration of a stack that went non-finite at ``iteration`` (or whose callback raised)."""

    iteration: int
    error: BaseException | None = None  # the callback's exception, if that is what stopped it


def stack_key(cfg: TrainConfig) -> tuple:
    """Configurations with equal keys (and the same data) can be trained in one stack.

    What may differ: init, init_scale, learning_rate, lambd, l1, keep_prob, seed, course_compat.
    """
    return (tuple(cfg.layer_dims), cfg.hidden_activation, int(cfg.iterations), int(cfg.record_every),
            tuple(cfg.augment_flip_axes), cfg.batch_size, float(cfg.input_keep_prob),
            cfg.early_stopping_patience, float(cfg.augment_jitter))


def unstackable_reason(cfg: TrainConfig, m: int) -> str | None:
    """Why ``cfg`` must be trained on its own (``m``: training examples before augmentation)."""
    m_aug = m * (1 + len(cfg.augment_flip_axes))
    if cfg.batch_size is not None and int(cfg.batch_size) < m_aug:
        return "mini-batch gradient descent"
    if cfg.input_keep_prob < 1.0:
        return "input dropout"
    if cfg.augment_jitter:
        return "input jitter"
    if cfg.early_stopping_patience is not None:
        return "early stopping"
    return None


class _Stack:
    """K parameter sets in one flat vector with per-layer (K, rows, n_{l-1}+1) views."""

    def __init__(self, layer_dims: Sequence[int], K: int):
        dims = tuple(int(n) for n in layer_dims)
        self.dims, self.K, self.L = dims, K, len(dims) - 1
        self.shapes = [(K, dims[l], dims[l - 1] + 1) for l in range(1, self.L + 1)]
        self.theta = np.zeros(sum(int(np.prod(s)) for s in self.shapes))
        self.Wb = self.views(self.theta)
        self.W_mask = np.zeros_like(self.theta)  # 1 on weights, 0 on biases
        for l, block in enumerate(self.views(self.W_mask), start=1):
            block[:, : dims[l], :-1] = 1.0

    def views(self, flat: np.ndarray) -> list[np.ndarray]:
        out, start = [], 0
        for s in self.shapes:
            size = int(np.prod(s))
            out.append(flat[start : start + size].reshape(s))
            start += size
        return out

    def set(self, k: int, parameters: dict[str, np.ndarray]) -> None:
        for l, Wb in enumerate(self.Wb, start=1):
            n = self.dims[l]
            Wb[k, :n, :-1] = parameters[f"W{l}"]
            Wb[k, :n, -1] = np.asarray(parameters[f"b{l}"]).reshape(-1)

    def parameters(self, k: int) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for l, Wb in enumerate(self.Wb, start=1):
            n = self.dims[l]
            out[f"W{l}"] = Wb[k, :n, :-1].copy()
            out[f"b{l}"] = Wb[k, :n, -1:].copy()
        return out

    def zero(self, k: int) -> None:
        """Reset configuration ``k`` to finite (zero) weights: a diverged run is out of the race."""
        for l, Wb in enumerate(self.Wb, start=1):
            Wb[k, : self.dims[l], :] = 0.0

    def penalty(self, k: int, lambd: float, l1: float, m: int) -> float:
        """:meth:`Network.penalty` of configuration ``k`` (same expression, same order)."""
        Ws = [Wb[k, : self.dims[l], :-1] for l, Wb in enumerate(self.Wb, start=1)]
        total = 0.0
        if lambd:
            total += lambd / (2 * m) * sum(float(np.sum(np.square(W))) for W in Ws)
        if l1:
            total += l1 / (2 * m) * sum(float(np.sum(np.abs(W))) for W in Ws)
        return total


class _StackedWorkspace:
    """Buffers of one stacked pass over ``m`` examples (cf. ``Workspace``), and its calls built once
    (:meth:`forward_ops`, :meth:`backward_ops`)."""

    def __init__(self, stack: _Stack, activation: str, X: np.ndarray, Y: np.ndarray | None):
        K, dims, L = stack.K, stack.dims, stack.L
        m = X.shape[1]
        self.stack, self.m, self.K = stack, m, K
        self.activation = activation
        self.relu = activation == "relu"
        self.act = ACTIVATIONS[activation]
        self.keeps_ones = activation in ("relu", "leaky_relu")  # act(1) == 1: the ones row survives
        self.A0 = np.ones((dims[0] + 1, m))
        self.A0[:-1] = X
        # Y and the step scale repeated per configuration: broadcasting costs more than the copy
        self.Y = None if Y is None else np.tile(np.asarray(Y, dtype=float).reshape(1, 1, m),
                                                (K, 1, 1))
        self.grad_scale = np.ones((K, 1, m))  # learning_rate / m per configuration
        # activations (K, n_l + 1, m) and relu masks each in one flat buffer: one call masks all layers
        sizes = [K * (n + 1) * m for n in dims[1:-1]]
        self._A_flat = np.ones(sum(sizes))
        self._B_flat = np.empty(sum(sizes), dtype=bool) if self.relu else None
        self.A, self._B = [self.A0], [None]
        start = 0
        for n, size in zip(dims[1:-1], sizes):
            self.A.append(self._A_flat[start : start + size].reshape(K, n + 1, m))
            self._B.append(None if self._B_flat is None
                           else self._B_flat[start : start + size].reshape(K, n + 1, m))
            start += size
        self.Z_out = np.empty((K, 1, m))
        self.A_out = np.empty((K, 1, m))
        # relu's gradients overwrite its used activations; the others need A, so get own buffers
        self.dZ = [None] + [A if self.relu else np.zeros_like(A) for A in self.A[1:]]
        self.dZ.append(np.empty((K, 1, m)))
        # dropout (set by train_stacked): masks[l] (K, n_l+1, m) bool; keep[l] (K, n_l+1, 1) divisors
        self.masks: list[np.ndarray | None] = [None] * L
        self.keep: list[np.ndarray | None] = [None] * L
        Wb = stack.Wb
        self._A_T = [A.T if A.ndim == 2 else A.transpose(0, 2, 1) for A in self.A]
        self._W_T = [None] + [Wb[l - 1][:, : dims[l], : dims[l - 1]].transpose(0, 2, 1)
                              for l in range(2, L + 1)]
        self._forward_ops: dict[bool, list[Callable[[], object]]] = {}

    def forward_ops(self, dropout: bool = True) -> list[Callable[[], object]]:
        """The calls of one forward pass (``dropout``: apply ``masks``, which may change between
        passes in place)."""
        st, A, L, ops = self.stack, self.A, self.stack.L, []
        for l in range(1, L):
            # per configuration the single run's very BLAS call (the ones row stays): the same bits
            n = st.dims[l]
            ops.append(partial(np.matmul, st.Wb[l - 1][:, :n, :], A[l - 1], A[l][:, :n, :]))
            if self.relu:  # max with zeros of one configuration's shape: faster than with 0-d
                ops.append(partial(np.maximum, A[l], np.zeros((1, *A[l].shape[1:])), out=A[l]))
            else:
                ops.append(partial(self.act, A[l]))
                if not self.keeps_ones:
                    ops.append(partial(A[l][:, -1, :].fill, 1.0))
            D = self.masks[l] if dropout else None
            if D is not None:
                ops.append(partial(np.multiply, A[l], D, A[l]))
                ops.append(partial(np.divide, A[l], self.keep[l], A[l]))
        ops.append(partial(np.matmul, st.Wb[-1], A[-1], self.Z_out))
        # scipy's expit as the single run: a faster 1/(1 + e^-z) differs in last bits, which grow
        ops.append(partial(expit, self.Z_out, self.A_out))
        return ops

    def forward(self, dropout: bool = True) -> None:
        if dropout not in self._forward_ops:
            self._forward_ops[dropout] = self.forward_ops(dropout)
        for op in self._forward_ops[dropout]:
            op()

    def backward_ops(self, grad_views: list[np.ndarray]) -> list[Callable[[], object]]:
        """The calls of ``Workspace.backward(grad, learning_rate / m)`` for every configuration.

        Relu takes every layer's mask first (one call), then writes each hidden gradient over its
        activations once ``dW`` has used them."""
        A, dZ, L, dims, ops = self.A, self.dZ, self.stack.L, self.stack.dims, []
        if self.relu and L > 1:
            ops.append(partial(relu_mask, self._A_flat, self._B_flat))
        dZl = dZ[L]
        ops.append(partial(np.subtract, self.A_out, self.Y, dZl))
        ops.append(partial(np.multiply, dZl, self.grad_scale, dZl))
        derivative = DERIVATIVES[self.activation]
        for l in range(L, 0, -1):
            n, n_prev = dims[l], dims[l - 1]
            ops.append(partial(np.matmul, dZl[:, :n, :], self._A_T[l - 1],
                               grad_views[l - 1][:, :n, :]))
            if l == 1:
                break
            dA = dZ[l - 1]
            dA_rows = dA[:, :n_prev, :]
            if n == 1:  # an outer product: exact products, as the single run's matmul computes
                ops.append(partial(np.einsum, "ki,km->kim", self._W_T[l - 1][:, :, 0],
                                   dZl[:, 0, :], out=dA_rows))
            else:
                ops.append(partial(np.matmul, self._W_T[l - 1], dZl[:, :n, :], dA_rows))
            D = self.masks[l - 1]
            if D is not None:
                ops.append(partial(np.multiply, dA, D, dA))
                ops.append(partial(np.divide, dA, self.keep[l - 1], dA))
            if self.relu:
                ops.append(partial(np.multiply, dA, self._B[l - 1], dA))
            elif D is not None and not self.keeps_ones:
                # the derivative needs the activation before dropout
                ops.append(partial(_derivative_undropped, derivative, dA, A[l - 1],
                                   self.keep[l - 1]))
            else:
                ops.append(partial(derivative, dA, A[l - 1]))
            dZl = dA
        return ops

    def cross_entropy(self, k: int) -> float:
        """``Workspace.cross_entropy`` of configuration ``k``."""
        return float(np.sum(cross_entropy_from_logits(self.Z_out[k], self.Y[k]))) / self.m


def _derivative_undropped(derivative, dA: np.ndarray, A: np.ndarray, keep: np.ndarray) -> None:
    derivative(dA, A * keep)


def train_stacked(
    X: np.ndarray,
    Y: np.ndarray,
    configs: Sequence[TrainConfig],
    *,
    X_dev: np.ndarray | None = None,
    Y_dev: np.ndarray | None = None,
    callbacks: Sequence[Callback | None] | None = None,
) -> list[TrainResult | Diverged]:
    """Entry k equals ``train(X, Y, configs[k], X_dev=..., callback=callbacks[k])``, or is
    :class:`Diverged` where that run would raise; ``train_seconds`` is the stack's time / K.

    ValueError when the configurations differ in :func:`stack_key` or one is unstackable.
    """
    configs = list(configs)
    if not configs:
        return []
    K = len(configs)
    base = configs[0]
    for cfg in configs:
        if stack_key(cfg) != stack_key(base):
            raise ValueError("configurations of one stack must share layer sizes, activation, "
                             "iterations, record_every and the non-stackable regularizers")
        reason = unstackable_reason(cfg, X.shape[1])
        if reason is not None:
            raise ValueError(f"{reason} cannot be stacked: train this configuration on its own")
        check_keep_probs(cfg.hidden_keep_probs(), cfg.input_keep_prob)
    check_inputs(base, X, Y, X_dev, Y_dev)
    callbacks = list(callbacks) if callbacks is not None else [None] * K
    dims = tuple(base.layer_dims)
    L = len(dims) - 1

    stack = _Stack(dims, K)
    rngs = []
    for k, cfg in enumerate(configs):  # as train(): the generator draws the initialization first
        rng = np.random.default_rng(cfg.seed)
        stack.set(k, initialize_parameters(dims, cfg.init, random_scale=cfg.init_scale, rng=rng,
                                           course_compat=cfg.course_compat))
        rngs.append(rng)
    X, Y = augment_flips(X, Y, base.augment_flip_axes)
    m = X.shape[1]
    ws = _StackedWorkspace(stack, base.hidden_activation, X, Y)
    dev_ws = (_StackedWorkspace(stack, base.hidden_activation, X_dev, Y_dev)
              if X_dev is not None else None)

    lrs = [float(cfg.learning_rate) for cfg in configs]
    ws.grad_scale[...] = np.array([lr / m for lr in lrs]).reshape(K, 1, 1)
    # penalty gradient: scale · (lambd/m · W + l1/(2m) · sign(W)), W_mask folded into per-entry scales
    l2_scale = l1_scale = None
    if any(cfg.lambd for cfg in configs):
        l2_scale = np.zeros_like(stack.theta)
        for block, mask in zip(stack.views(l2_scale), stack.views(stack.W_mask)):
            for k, cfg in enumerate(configs):
                block[k] = mask[k] * (lrs[k] * cfg.lambd / m if cfg.lambd else 0.0)
    if any(cfg.l1 for cfg in configs):
        l1_scale = np.zeros_like(stack.theta)
        for block, mask in zip(stack.views(l1_scale), stack.views(stack.W_mask)):
            for k, cfg in enumerate(configs):
                block[k] = mask[k] * (lrs[k] * cfg.l1 / (2 * m) if cfg.l1 else 0.0)

    # dropout masks U[l] < keep_prob; a configuration without dropout keeps U = 0 (exact: kept, / 1)
    keep = [cfg.hidden_keep_probs() for cfg in configs]
    draws: list[tuple[np.random.Generator, list[np.ndarray]]] = []
    uniforms: list[np.ndarray | None] = [None] * L
    keep_cols: list[np.ndarray | None] = [None] * L
    for l in range(1, L):
        if any(kp[l - 1] < 1.0 for kp in keep):
            uniforms[l] = np.zeros((K, dims[l], m))
            keep_cols[l] = np.array([kp[l - 1] for kp in keep]).reshape(K, 1, 1)
            div = np.ones((K, dims[l] + 1, 1))
            div[:, : dims[l], 0] = keep_cols[l][:, :, 0]
            ws.keep[l] = div
            ws.masks[l] = np.ones((K, dims[l] + 1, m), dtype=bool)
    for k, cfg in enumerate(configs):
        layers = [l for l in range(1, L) if keep[k][l - 1] < 1.0]
        if not layers:
            continue
        if cfg.course_compat:
            np.random.seed(COURSE_DROPOUT_SEED)
            for l in layers:
                uniforms[l][k] = np.random.rand(dims[l], m)
        else:
            draws.append((rngs[k], [uniforms[l][k] for l in layers]))
    dropout_layers = [l for l in range(1, L) if uniforms[l] is not None]
    if dropout_layers and not draws:  # course mode only: the masks never change
        for l in dropout_layers:
            np.less(uniforms[l], keep_cols[l], out=ws.masks[l][:, : dims[l], :])
        dropout_layers = []

    grad = np.zeros_like(stack.theta)
    gviews = stack.views(grad)
    tmp = np.empty_like(stack.theta)
    alive = [True] * K
    outcomes: list[TrainResult | Diverged | None] = [None] * K
    results = [TrainResult(parameters={}, network=Network(dims, base.hidden_activation))
               for _ in range(K)]
    theta, record_every = stack.theta, int(base.record_every)

    def kill(k: int, iteration: int, error: BaseException | None = None) -> None:
        alive[k] = False
        outcomes[k] = Diverged(iteration, error)
        stack.zero(k)
        for g in gviews:
            g[k] = 0.0

    def finite_per_config(flat: np.ndarray) -> list[bool]:
        with np.errstate(invalid="ignore", over="ignore"):
            sums = sum(v.reshape(K, -1).sum(axis=1) for v in stack.views(flat))
        return [bool(math.isfinite(s)) for s in sums]

    # an iteration as a flat list of bound numpy calls: per-iteration Python work is one call each
    step = [partial(rng.random, out=u) for rng, outs in draws for u in outs]
    step += [partial(np.less, uniforms[l], keep_cols[l], ws.masks[l][:, : dims[l], :])
             for l in dropout_layers]
    step += ws.forward_ops() + ws.backward_ops(gviews)
    if l2_scale is not None:
        step += [partial(np.multiply, theta, l2_scale, tmp), partial(np.add, grad, tmp, grad)]
    if l1_scale is not None:
        step += [partial(np.sign, theta, tmp), partial(np.multiply, tmp, l1_scale, tmp),
                 partial(np.add, grad, tmp, grad)]
    subtract, add_reduce, isfinite = np.subtract, np.add.reduce, math.isfinite

    start_time = time.perf_counter()
    caller_errstate = np.geterr()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for i in range(int(base.iterations)):
            for op in step:
                op()
            if i % record_every == 0:
                if not isfinite(add_reduce(grad)):
                    for k, ok in enumerate(finite_per_config(grad)):
                        if alive[k] and not ok:
                            kill(k, i)
                _record(i, stack, ws, dev_ws, gviews, configs, lrs, results, alive, callbacks,
                        caller_errstate, kill)
            subtract(theta, grad, theta)
            if not isfinite(add_reduce(theta)):
                for k, ok in enumerate(finite_per_config(theta)):
                    if alive[k] and not ok:
                        kill(k, i)
    seconds = (time.perf_counter() - start_time) / K

    final_ws = _StackedWorkspace(stack, base.hidden_activation, X, Y)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        final_ws.forward(dropout=False)
        for k, cfg in enumerate(configs):
            if not alive[k]:
                continue
            r = results[k]
            r.final_cost = final_ws.cross_entropy(k) + stack.penalty(k, cfg.lambd, cfg.l1, m)
            r.iterations_run = int(base.iterations)
            r.train_seconds = seconds
            r.parameters = stack.parameters(k)
            r.network.set_parameters(r.parameters)
            outcomes[k] = r
    return outcomes  # type: ignore[return-value]


def _record(i, stack, ws, dev_ws, gviews, configs, lrs, results, alive, callbacks, caller_errstate,
            kill) -> None:
    """What ``train`` records at iteration ``i``, per live configuration."""
    m, dims = ws.m, stack.dims
    if dev_ws is not None:
        dev_ws.forward(dropout=False)
    for k, cfg in enumerate(configs):
        if not alive[k]:
            continue
        r = results[k]
        cost = ws.cross_entropy(k) + stack.penalty(k, cfg.lambd, cfg.l1, m)
        r.iterations.append(i)
        r.costs.append(cost)
        r.grad_norms.append([float(np.linalg.norm(g[k, : dims[l], :-1])) / lrs[k]
                             for l, g in enumerate(gviews, start=1)])
        dev_cost = None
        if dev_ws is not None:
            dev_cost = dev_ws.cross_entropy(k) + stack.penalty(k, cfg.lambd, cfg.l1, dev_ws.m)
            r.dev_costs.append(dev_cost)
        if callbacks[k] is not None:
            try:
                with np.errstate(**caller_errstate):
                    callbacks[k](i, cost, dev_cost)
            except Exception as exc:  # as in train(): the callback's exception stops this run
                kill(k, i, exc)
