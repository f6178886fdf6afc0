"""Gradient-descent training, full batch (the course) or mini-batch, with every regularizer.

Every draw (initialization, dropout masks, shuffles, jitter) comes from one Generator seeded with
``TrainConfig.seed``; ``course_compat=True`` follows the course's global-seed order instead, so its
published numbers come out exactly. Costs are computed from the logits (finite where the course's
``-log(a)`` gives inf). Owns: ``TrainConfig``, ``TrainResult`` and the loop. Must not touch: files,
tracking, configs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dlpractice.errors import DataError, DivergenceError
from dlpractice.nn.init import initialize_parameters
from dlpractice.nn.network import Network, Workspace, add_penalty_gradient, chunked_cross_entropy
from dlpractice.nn.regularizers import DropoutMasks, EarlyStopping, augment_flips

COURSE_DROPOUT_SEED = 1
COURSE_MINIBATCH_SEED = 10


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run. ``lambd`` is the course's L2 strength."""

    layer_dims: tuple[int, ...]
    hidden_activation: str = "relu"
    init: str = "he"
    init_scale: float = 10.0  # only for init="random"
    learning_rate: float = 0.01
    iterations: int = 15000  # passes over the training set (one step each in full batch)
    batch_size: int | None = None  # None: full batch
    lambd: float = 0.0  # L2
    l1: float = 0.0
    keep_prob: float | tuple[float, ...] = 1.0  # one value, or one per hidden layer
    input_keep_prob: float = 1.0
    early_stopping_patience: int | None = None  # in evaluations (every `record_every`)
    early_stopping_min_delta: float = 0.0
    augment_flip_axes: tuple[int, ...] = ()  # mirror the training set along these features
    augment_jitter: float = 0.0  # std of Gaussian noise added to the inputs at every step
    record_every: int = 100  # cost, dev cost and gradient norms every k iterations
    seed: int = 0
    course_compat: bool = False

    def hidden_keep_probs(self) -> tuple[float, ...]:
        hidden = len(self.layer_dims) - 2
        kp = self.keep_prob
        if isinstance(kp, (int, float)):
            return (float(kp),) * hidden
        kp = tuple(float(k) for k in kp)
        if len(kp) != hidden:
            raise ValueError(
                f"keep_prob {list(kp)} needs one value per hidden layer ({hidden})"
            )
        return kp


@dataclass
class TrainResult:
    """What a run produced: the parameters and the histories every ``record_every`` iterations."""

    parameters: dict[str, np.ndarray]
    network: Network
    iterations: list[int] = field(default_factory=list)  # where the histories were recorded
    costs: list[float] = field(default_factory=list)
    dev_costs: list[float] = field(default_factory=list)
    grad_norms: list[list[float]] = field(default_factory=list)  # ‖dWl‖_F per layer
    final_cost: float = float("nan")
    iterations_run: int = 0
    best_iteration: int | None = None  # with early stopping: where the restored weights are from
    stopped_early: bool = False
    end_parameters: dict[str, np.ndarray] | None = None  # with early stopping: the last weights
    train_seconds: float = 0.0

    @property
    def best_dev_cost(self) -> float | None:
        """With early stopping: the dev cost recorded at ``best_iteration``, i.e. of the weights the
        run ends on (the last recorded one belongs to weights it discarded); None without it."""
        if self.best_iteration is None:  # early stopping needs a dev set: every record has one
            return None
        return self.dev_costs[self.iterations.index(self.best_iteration)]

    def to_dict(self) -> dict[str, Any]:
        """Everything but the parameter arrays (saved apart, e.g. .npz), as JSON values.

        The network's layer sizes and activation come along; ``json`` writes nan/inf as NaN/Infinity.
        """
        return {
            "layer_dims": [int(n) for n in self.network.layer_dims],
            "hidden_activation": self.network.hidden_activation,
            "iterations": [int(i) for i in self.iterations],
            "costs": [float(c) for c in self.costs],
            "dev_costs": [float(c) for c in self.dev_costs],
            "grad_norms": [[float(g) for g in row] for row in self.grad_norms],
            "final_cost": float(self.final_cost),
            "iterations_run": int(self.iterations_run),
            "best_iteration": None if self.best_iteration is None else int(self.best_iteration),
            "stopped_early": bool(self.stopped_early),
            "train_seconds": float(self.train_seconds),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], parameters: Mapping[str, np.ndarray]) -> TrainResult:
        """The result :meth:`to_dict` describes, with its ``parameters`` (W1, b1, ...) loaded apart."""
        missing = [k for k in _RESULT_KEYS if k not in data]
        if missing:
            raise DataError(f"training result dict has no key '{missing[0]}' "
                            f"(keys: {', '.join(sorted(map(str, data))) or 'none'})")
        network = Network(data["layer_dims"], data["hidden_activation"])
        expected = [f"{p}{l}" for l in range(1, network.L + 1) for p in "Wb"]
        if sorted(parameters) != sorted(expected):
            raise DataError(f"parameters {sorted(parameters)} do not fit layer_dims "
                            f"{list(network.layer_dims)}: expected {sorted(expected)}")
        network.set_parameters(parameters)
        best = data["best_iteration"]
        return cls(
            parameters=network.parameters(),
            network=network,
            iterations=[int(i) for i in data["iterations"]],
            costs=[float(c) for c in data["costs"]],
            dev_costs=[float(c) for c in data["dev_costs"]],
            grad_norms=[[float(g) for g in row] for row in data["grad_norms"]],
            final_cost=float(data["final_cost"]),
            iterations_run=int(data["iterations_run"]),
            best_iteration=None if best is None else int(best),
            stopped_early=bool(data["stopped_early"]),
            train_seconds=float(data["train_seconds"]),
        )


_RESULT_KEYS = ("layer_dims", "hidden_activation", "iterations", "costs", "dev_costs", "grad_norms",
                "final_cost", "iterations_run", "best_iteration", "stopped_early", "train_seconds")


Callback = Callable[[int, float, float | None], None]


def train(
    X: np.ndarray,
    Y: np.ndarray,
    config: TrainConfig,
    *,
    X_dev: np.ndarray | None = None,
    Y_dev: np.ndarray | None = None,
    parameters: dict[str, np.ndarray] | None = None,
    callback: Callback | None = None,
) -> TrainResult:
    """Train a fresh (or the given) network on ``X`` (n0, m), ``Y`` (1, m).

    ``callback(iteration, cost, dev_cost)`` runs at every recorded iteration; its exception stops
    training, its time is not in ``train_seconds``. nan/inf raises :class:`DivergenceError` naming
    the iteration and layer.
    """
    cfg = config
    check_inputs(cfg, X, Y, X_dev, Y_dev)
    rng = np.random.default_rng(cfg.seed)
    net = Network(cfg.layer_dims, cfg.hidden_activation)
    if parameters is None:
        parameters = initialize_parameters(
            cfg.layer_dims, cfg.init, random_scale=cfg.init_scale, rng=rng,
            course_compat=cfg.course_compat,
        )
    net.set_parameters(parameters)
    X, Y = augment_flips(X, Y, cfg.augment_flip_axes)
    m = X.shape[1]
    batch = m if cfg.batch_size is None else min(int(cfg.batch_size), m)
    full_batch = batch == m
    early = (
        EarlyStopping(cfg.early_stopping_patience, cfg.early_stopping_min_delta)
        if cfg.early_stopping_patience is not None else None
    )
    if early is not None and X_dev is None:
        raise ValueError("early stopping needs a dev set (X_dev, Y_dev)")
    dropout = DropoutMasks(
        net, cfg.hidden_keep_probs(), cfg.input_keep_prob, rng,
        course_seed=COURSE_DROPOUT_SEED if cfg.course_compat else None,
    )
    workspaces: dict[int, Workspace] = {}

    def workspace(size: int) -> Workspace:
        if size not in workspaces:
            workspaces[size] = Workspace(net, size)
        return workspaces[size]

    # the dev cost and the final cost are computed in chunks of the batch: no more buffers than a step
    dev_workspaces: dict[int, Workspace] = {}

    def dev_cost() -> float:
        return (chunked_cross_entropy(net, X_dev, Y_dev, batch, dev_workspaces)
                + net.penalty(cfg.lambd, cfg.l1, X_dev.shape[1]))

    grad = np.empty_like(net.theta)
    scratch = np.empty_like(net.theta)
    lr = float(cfg.learning_rate)
    penalized = bool(cfg.lambd or cfg.l1)
    static_input = full_batch and not dropout.on_input and not cfg.augment_jitter
    result = TrainResult(parameters={}, network=net)
    if static_input:
        workspace(m).load(X, Y)

    def batches(epoch: int):
        if full_batch:
            yield None
            return
        if cfg.course_compat:  # week 2's random_mini_batches: seed 10 + epoch, epochs from 1
            np.random.seed(COURSE_MINIBATCH_SEED + epoch + 1)
            order = np.random.permutation(m)
        else:
            order = rng.permutation(m)
        for start in range(0, m, batch):
            yield order[start : start + batch]

    start_time = time.perf_counter()
    in_callback = 0.0  # the caller's time (a progress bar, a tracker's flush): not training
    i = 0
    # Overflow/invalid operations are expected when a run diverges: they are detected below and
    # reported as a DivergenceError naming the iteration and layer, not as stray RuntimeWarnings.
    caller_errstate = np.geterr()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for i in range(cfg.iterations):
            record = i % cfg.record_every == 0
            for idx in batches(i):
                ws = workspace(m if idx is None else idx.size)
                if idx is not None:
                    np.take(X, idx, axis=1, out=ws.X)
                    np.take(Y, idx, axis=1, out=ws.Y)
                elif not static_input:
                    ws.load(X, Y)
                if cfg.augment_jitter:
                    ws.X[...] += cfg.augment_jitter * rng.standard_normal(ws.X.shape)
                dropout.apply(ws)
                ws.forward()
                ws.backward(grad, lr / ws.m)
                if penalized:
                    add_penalty_gradient(net, grad, cfg.lambd, cfg.l1, ws.m, lr, scratch)
                if record and not math.isfinite(float(np.add.reduce(grad))):
                    _raise_divergence(net, ws, grad, i)  # before a nan is recorded
                if record:
                    cost = ws.cross_entropy() + net.penalty(cfg.lambd, cfg.l1, ws.m)
                    result.iterations.append(i)
                    result.costs.append(cost)
                    result.grad_norms.append(
                        [float(np.linalg.norm(g[:, :-1])) / lr for g in net.grad_views(grad)]
                    )
                    record = False  # one record per iteration: its first batch
                    dev = None
                    if X_dev is not None:
                        dev = dev_cost()
                        result.dev_costs.append(dev)
                    if callback is not None:
                        called = time.perf_counter()
                        with np.errstate(**caller_errstate):
                            callback(i, cost, dev)
                        in_callback += time.perf_counter() - called
                    if early is not None and early.update(i, dev, net.theta):
                        result.stopped_early = True
                np.subtract(net.theta, grad, out=net.theta)
                # nan/inf in the gradient, or an update that overflowed, leaves theta non-finite
                if not math.isfinite(float(np.add.reduce(net.theta))):
                    _raise_divergence(net, ws, grad, i)
            if result.stopped_early:
                break
    result.train_seconds = time.perf_counter() - start_time - in_callback
    result.iterations_run = i + 1 if cfg.iterations else 0
    if early is not None and early.best_theta is not None:
        result.end_parameters = net.parameters()
        net.theta[...] = early.best_theta
        result.best_iteration = early.best_iteration
    dev_workspaces.clear()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        result.final_cost = (chunked_cross_entropy(net, X, Y, batch, workspaces)
                             + net.penalty(cfg.lambd, cfg.l1, m))
    result.parameters = net.parameters()
    return result


def check_inputs(cfg: TrainConfig, X: np.ndarray, Y: np.ndarray, X_dev: np.ndarray | None,
                 Y_dev: np.ndarray | None) -> None:
    """What ``train`` and ``train_stacked`` refuse before any work (ValueError, one line)."""
    if X.shape[0] != cfg.layer_dims[0]:
        raise ValueError(f"X has {X.shape[0]} features but layer_dims starts with {cfg.layer_dims[0]}")
    if np.shape(Y) != (1, X.shape[1]):
        raise ValueError(f"Y must hold the labels of X's examples, shape (1, {X.shape[1]}); "
                         f"got {'None' if Y is None else np.shape(Y)}")
    if (X_dev is None) != (Y_dev is None):
        raise ValueError("X_dev and Y_dev go together: give both or neither")
    if cfg.iterations < 0 or cfg.record_every < 1:
        raise ValueError(f"iterations must be >= 0 and record_every >= 1 (got {cfg.iterations} "
                         f"and {cfg.record_every})")


def _raise_divergence(net: Network, ws: Workspace, grad: np.ndarray, iteration: int) -> None:
    """Raise, naming the first layer whose activations went non-finite, else (backward) gradient,
    else weights."""
    activations = [ws.A[l][:-1] for l in range(1, net.L)] + [ws.Z_out]
    grads = net.grad_views(grad)
    layer = next((l for l in range(1, net.L + 1) if not np.all(np.isfinite(activations[l - 1]))),
                 None)
    if layer is None:
        layer = next((l for l in range(net.L, 0, -1) if not np.all(np.isfinite(grads[l - 1]))),
                     None)
    if layer is None:
        layer = next((l for l in range(1, net.L + 1) if not np.all(np.isfinite(net.Wb[l - 1]))),
                     None)
    if layer is None:  # every entry is finite but their sum overflowed: name the largest values
        layer = 1 + int(np.argmax([max(np.max(np.abs(w)), np.max(np.abs(g)))
                                   for w, g in zip(net.Wb, grads)]))
    raise DivergenceError(
        f"training diverged at iteration {iteration}: non-finite values (nan/inf) in layer {layer}; "
        "lower train.learning_rate or use a smaller init scale",
        iteration=iteration,
        layer=layer,
    )


def layer_dims_for(n_features: int, hidden: Sequence[int]) -> tuple[int, ...]:
    """``[n_features, *hidden, 1]``: the layer sizes of a binary classifier."""
    return (int(n_features), *(int(n) for n in hidden), 1)
