"""The L-layer binary classifier: forward and backward propagation, cost, prediction.

Course convention: X (n_features, m), Y (1, m), parameters W1, b1, ..., WL, bL with Wl (n_l, n_{l-1});
hidden layers share one activation, the output is a sigmoid. Layer l is one ``[Wl | bl]`` view of a
flat ``theta`` and activations carry a row of ones, so a layer is one matmul and a step one call; a
:class:`Workspace` holds every buffer of one batch size. Owns: parameters, buffers, cost and
gradients. Must not touch: training loops, randomness, files.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
from scipy.special import expit

from dlpractice.nn.activations import ACTIVATIONS, DERIVATIVES, check_activation, relu_backward


class Network:
    """Parameters of an L-layer net in one flat vector, with per-layer ``[W | b]`` views."""

    def __init__(self, layer_dims: Sequence[int], hidden_activation: str = "relu"):
        dims = tuple(int(n) for n in layer_dims)
        if len(dims) < 2 or any(n < 1 for n in dims):
            raise ValueError(f"layer_dims {list(dims)} must have >= 2 positive sizes")
        if dims[-1] != 1:
            raise ValueError(f"layer_dims {list(dims)} must end in 1 (one sigmoid output unit)")
        self.layer_dims = dims
        self.L = len(dims) - 1
        self.hidden_activation = check_activation(hidden_activation)
        shapes = [(dims[l], dims[l - 1] + 1) for l in range(1, self.L + 1)]
        self.theta = np.zeros(sum(r * c for r, c in shapes))
        self.Wb = self._views(self.theta, shapes)
        # W_mask is 1 on weights and 0 on biases: the regularizers penalize weights only.
        self.W_mask = np.zeros_like(self.theta)
        for block in self._views(self.W_mask, shapes):
            block[:, :-1] = 1.0
        self._shapes = shapes

    @staticmethod
    def _views(flat: np.ndarray, shapes: list[tuple[int, int]]) -> list[np.ndarray]:
        views, start = [], 0
        for r, c in shapes:
            views.append(flat[start : start + r * c].reshape(r, c))
            start += r * c
        return views

    def grad_views(self, grad: np.ndarray) -> list[np.ndarray]:
        """Per-layer ``[dW | db]`` views of a flat gradient laid out like ``theta``."""
        return self._views(grad, self._shapes)

    # -- the course's parameter dictionaries ---------------------------------------------------
    @classmethod
    def from_parameters(
        cls, parameters: Mapping[str, np.ndarray], hidden_activation: str = "relu"
    ) -> Network:
        L = len(parameters) // 2
        if L < 1 or any(f"W{l}" not in parameters or f"b{l}" not in parameters
                        for l in range(1, L + 1)):
            raise ValueError(f"parameters need W1, b1, ..., WL, bL; got {sorted(parameters)}")
        dims = [parameters["W1"].shape[1]] + [parameters[f"W{l}"].shape[0] for l in range(1, L + 1)]
        net = cls(dims, hidden_activation)
        net.set_parameters(parameters)
        return net

    def set_parameters(self, parameters: Mapping[str, np.ndarray]) -> None:
        for l, Wb in enumerate(self.Wb, start=1):
            W, b = np.asarray(parameters[f"W{l}"]), np.asarray(parameters[f"b{l}"])
            if W.shape != (Wb.shape[0], Wb.shape[1] - 1) or b.size != Wb.shape[0]:
                raise ValueError(
                    f"W{l} {W.shape} / b{l} {b.shape} do not fit layer_dims {list(self.layer_dims)}"
                )
            Wb[:, :-1] = W
            Wb[:, -1] = b.reshape(-1)

    def parameters(self) -> dict[str, np.ndarray]:
        """Copies as the course's dictionary ``{"W1": ..., "b1": (n1, 1), ...}``."""
        out: dict[str, np.ndarray] = {}
        for l, Wb in enumerate(self.Wb, start=1):
            out[f"W{l}"] = Wb[:, :-1].copy()
            out[f"b{l}"] = Wb[:, -1:].copy()
        return out

    def W(self, l: int) -> np.ndarray:
        return self.Wb[l - 1][:, :-1]

    def gradients(self, grad: np.ndarray) -> dict[str, np.ndarray]:
        """A flat gradient as the course's dictionary ``{"dW1": ..., "db1": ...}``."""
        out: dict[str, np.ndarray] = {}
        for l, dWb in enumerate(self.grad_views(grad), start=1):
            out[f"dW{l}"] = dWb[:, :-1].copy()
            out[f"db{l}"] = dWb[:, -1:].copy()
        return out

    def penalty(self, lambd: float = 0.0, l1: float = 0.0, m: int = 1) -> float:
        """L2 ``lambd/(2m) Σ‖Wl‖²`` plus L1 ``l1/(2m) Σ|Wl|`` (biases are not penalized)."""
        total = 0.0
        if lambd:
            total += lambd / (2 * m) * sum(float(np.sum(np.square(self.W(l))))
                                           for l in range(1, self.L + 1))
        if l1:
            total += l1 / (2 * m) * sum(float(np.sum(np.abs(self.W(l))))
                                        for l in range(1, self.L + 1))
        return total


class Workspace:
    """Every buffer a forward/backward pass over ``m`` examples needs, allocated once
    (``backward=False``: a forward pass's only, without dZ and relu masks).

    ``A[l]`` (l < L) is ``[A_l; 1]``, (n_l + 1, m), ``A[0]`` the input batch; ``Z_out``/``A_out`` the
    output logits and probabilities; ``masks[l]`` dropout masks (``None``: no dropout).
    """

    def __init__(self, net: Network, m: int, backward: bool = True):
        dims = net.layer_dims
        self.net = net
        self.m = m
        self.A = [np.ones((n + 1, m)) for n in dims[:-1]]
        self.Z_out = np.empty((1, m))
        self.A_out = np.empty((1, m))
        self.Y = np.empty((1, m))
        grads = dims[1:] if backward else ()
        self.dZ: list[np.ndarray | None] = [None] + [np.empty((n, m)) for n in grads]
        self.masks: list[np.ndarray | None] = [None] * net.L
        self.keep_probs: list[float] = [1.0] * net.L
        # Views made once: building a view costs about as much as a small numpy call.
        self._hidden = [None] + [self.A[l][:-1] for l in range(1, net.L)]
        self._A_T = [a.T for a in self.A]
        self._W_T = [None] + [net.Wb[l - 1][:, :-1].T for l in range(1, net.L + 1)]
        self._relu_mask = [None] + [np.empty((n, m), dtype=bool) for n in grads[:-1]]
        self._grad: np.ndarray | None = None
        self._dWb: list[np.ndarray] = []

    @property
    def X(self) -> np.ndarray:
        """The input rows of ``A[0]`` (write a batch here)."""
        return self.A[0][:-1]

    def load(self, X: np.ndarray, Y: np.ndarray | None = None) -> None:
        self.X[...] = X
        if Y is not None:
            self.Y[...] = Y

    def forward(self) -> None:
        """Fill ``A_out`` from ``A[0]``; dropout applies where ``masks[l]`` is set (hidden layers)."""
        net, A = self.net, self.A
        activate = ACTIVATIONS[net.hidden_activation]
        for l in range(1, net.L):
            Z = self._hidden[l]
            np.dot(net.Wb[l - 1], A[l - 1], out=Z)
            activate(Z)
            D = self.masks[l]
            if D is not None:
                Z *= D
                Z /= self.keep_probs[l]
        np.dot(net.Wb[-1], A[-1], out=self.Z_out)
        expit(self.Z_out, out=self.A_out)

    def backward(self, grad: np.ndarray, scale: float) -> None:
        """Write ``scale · m · ∂J/∂theta`` of the cross-entropy (no penalty) into ``grad``.

        ``scale = 1/m`` gives the gradient; ``learning_rate/m`` the step (``theta -= grad``).
        """
        net, dZ = self.net, self.dZ
        relu = net.hidden_activation == "relu"
        derivative = DERIVATIVES[net.hidden_activation]
        if grad is not self._grad:
            self._grad, self._dWb = grad, net.grad_views(grad)
        dWb = self._dWb
        dZl = dZ[net.L]
        np.subtract(self.A_out, self.Y, out=dZl)
        dZl *= scale
        for l in range(net.L, 0, -1):
            np.dot(dZl, self._A_T[l - 1], out=dWb[l - 1])
            if l == 1:
                break
            dA = dZ[l - 1]
            np.dot(self._W_T[l], dZl, out=dA)
            D = self.masks[l - 1]
            A_hidden = self._hidden[l - 1]
            if D is not None:
                kp = self.keep_probs[l - 1]
                dA *= D
                dA /= kp
                if net.hidden_activation not in ("relu", "leaky_relu"):
                    A_hidden = A_hidden * kp  # the derivative needs the activation before dropout
            if relu:
                relu_backward(dA, A_hidden, self._relu_mask[l - 1])
            else:
                derivative(dA, A_hidden)
            dZl = dA

    def cross_entropy(self) -> float:
        """Mean binary cross-entropy of the batch, from the logits (:func:`cross_entropy_from_logits`)."""
        return float(np.sum(cross_entropy_from_logits(self.Z_out, self.Y))) / self.m


def cross_entropy_from_logits(Z: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Per example ``-y log σ(z) - (1-y) log(1-σ(z))``, as ``max(z, 0) - y z + log1p(e^-|z|)``.

    For y in {0, 1}, ``max(z, 0) - y z`` is 0 or ±z exactly, so every loss is within a few ulp of
    its exact value, also the tiny one of a confident right answer, where ``log(1 + e^z) - y z``
    cancels. The one definition of the loss: every cost and the gradient check use it.
    """
    tail = np.exp(-np.abs(Z))
    np.log1p(tail, out=tail)
    loss = np.maximum(Z, 0.0)
    loss -= Y * Z  # before the tail is added: 0 exactly for a right answer
    loss += tail
    return loss


def _forward(
    parameters: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray | None, hidden_activation: str
) -> tuple[Network, Workspace]:
    """A network for ``parameters`` and a workspace that has run its forward pass on ``X``."""
    net = Network.from_parameters(parameters, hidden_activation)
    ws = Workspace(net, X.shape[1])
    ws.load(X, Y)
    ws.forward()
    return net, ws


def forward_propagation(
    parameters: Mapping[str, np.ndarray], X: np.ndarray, hidden_activation: str = "relu"
) -> np.ndarray:
    """The output probabilities ``AL`` (1, m) of a parameter dictionary (no dropout)."""
    return _forward(parameters, X, None, hidden_activation)[1].A_out.copy()


def cost_and_gradients(
    parameters: Mapping[str, np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    hidden_activation: str = "relu",
    lambd: float = 0.0,
    l1: float = 0.0,
) -> tuple[float, dict[str, np.ndarray]]:
    """The cost J (cross-entropy + penalties) and its gradient ``{"dW1": ..., "db1": ...}``."""
    net, ws = _forward(parameters, X, Y, hidden_activation)
    m = X.shape[1]
    grad = np.empty_like(net.theta)
    ws.backward(grad, 1.0 / m)
    add_penalty_gradient(net, grad, lambd, l1, m, scale=1.0)
    return ws.cross_entropy() + net.penalty(lambd, l1, m), net.gradients(grad)


def compute_cost(
    parameters: Mapping[str, np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    hidden_activation: str = "relu",
    lambd: float = 0.0,
    l1: float = 0.0,
) -> float:
    """J = mean cross-entropy + ``lambd/(2m) Σ‖Wl‖²`` + ``l1/(2m) Σ|Wl|``."""
    net, ws = _forward(parameters, X, Y, hidden_activation)
    return ws.cross_entropy() + net.penalty(lambd, l1, X.shape[1])


def add_penalty_gradient(
    net: Network, grad: np.ndarray, lambd: float, l1: float, m: int, scale: float,
    scratch: np.ndarray | None = None,
) -> None:
    """Add ``scale · (lambd/m · W + l1/(2m) · sign(W))`` to the weight entries of ``grad``."""
    if not (lambd or l1):
        return
    tmp = np.empty_like(grad) if scratch is None else scratch
    if lambd:
        np.multiply(net.theta, net.W_mask, out=tmp)
        tmp *= scale * lambd / m
        grad += tmp
    if l1:
        np.sign(net.theta, out=tmp)
        tmp *= net.W_mask
        tmp *= scale * l1 / (2 * m)
        grad += tmp


def forward_chunks(
    net: Network,
    X: np.ndarray,
    Y: np.ndarray | None = None,
    columns: int | None = None,
    workspaces: dict[int, Workspace] | None = None,
) -> Iterator[tuple[slice, Workspace]]:
    """Forward passes without dropout over ``X`` (n0, m) in chunks of at most ``columns`` examples
    (None: one pass): yields each chunk's columns and its workspace after the pass.

    ``workspaces`` (by size) are reused and kept; without it a size's buffers are dropped before
    the next size's are made, so a pass never holds more than one chunk's.
    """
    m = X.shape[1]
    step = m if columns is None else max(1, min(int(columns), m))
    kept = {} if workspaces is None else workspaces
    for start in range(0, m, step):
        stop = min(start + step, m)
        ws = kept.get(stop - start)
        if ws is None:
            if workspaces is None:
                kept.clear()
            ws = kept[stop - start] = Workspace(net, stop - start, backward=False)
        ws.masks = [None] * net.L
        ws.load(X[:, start:stop], None if Y is None else Y[:, start:stop])
        ws.forward()
        yield slice(start, stop), ws


def chunked_cross_entropy(
    net: Network, X: np.ndarray, Y: np.ndarray, columns: int | None = None,
    workspaces: dict[int, Workspace] | None = None,
) -> float:
    """``Workspace.cross_entropy`` over all of ``X`` computed in chunks (see :func:`forward_chunks`);
    one chunk gives that workspace's number to the bit."""
    parts = [(ws.cross_entropy(), ws.m) for _, ws in forward_chunks(net, X, Y, columns, workspaces)]
    if len(parts) == 1:
        return parts[0][0]
    return sum(cost * size for cost, size in parts) / X.shape[1]


def _network(parameters: Mapping[str, np.ndarray] | Network, hidden_activation: str) -> Network:
    if isinstance(parameters, Network):
        return parameters
    return Network.from_parameters(parameters, hidden_activation)


def predict(
    parameters: Mapping[str, np.ndarray] | Network, X: np.ndarray, hidden_activation: str = "relu",
    columns: int | None = None,
) -> np.ndarray:
    """Labels (1, m) as int: 1 where the output probability is > 0.5 (the course's rule);
    ``columns``: forward at most that many examples at once."""
    labels = np.empty((1, X.shape[1]), dtype=np.int64)
    for cols, ws in forward_chunks(_network(parameters, hidden_activation), X, None, columns):
        np.greater(ws.A_out, 0.5, out=labels[:, cols])
    return labels


def correct_count(
    parameters: Mapping[str, np.ndarray] | Network,
    X: np.ndarray,
    Y: np.ndarray,
    hidden_activation: str = "relu",
    columns: int | None = None,
) -> int:
    """How many examples' predicted label equals ``Y``; ``columns``: forward at most that many
    examples at once (the count is exact; a chunk's products may differ from one pass's in the
    last bit, which moves a label only for a probability within rounding of 0.5)."""
    net = _network(parameters, hidden_activation)
    return sum(int(np.count_nonzero((ws.A_out > 0.5) == Y[:, cols]))
               for cols, ws in forward_chunks(net, X, None, columns))


def accuracy(
    parameters: Mapping[str, np.ndarray] | Network,
    X: np.ndarray,
    Y: np.ndarray,
    hidden_activation: str = "relu",
    columns: int | None = None,
) -> float:
    """Fraction of examples whose predicted label equals ``Y`` (see :func:`correct_count`)."""
    return correct_count(parameters, X, Y, hidden_activation, columns) / X.shape[1]


def error_rate(correct: int, m: int) -> float:
    """The fraction of ``m`` examples misclassified, from the count of correct ones: exact where
    ``1 - accuracy`` is not (1 - 195/200 is 0.025000000000000022)."""
    return (m - correct) / m
