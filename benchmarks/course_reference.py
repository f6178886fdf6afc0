"""The course's own code paths, written as plainly as its notebooks (the reference we measure against).

deeplearning.ai, Improving Deep Neural Networks, week 1: ``init_utils``/``reg_utils`` style
forward/backward for the 3-layer relu-relu-sigmoid model, its cost, update and prediction, and the
one-parameter-at-a-time gradient check. Used by the tests (our course-compatible mode must agree) and
the benchmarks (our kernel must beat it).
"""

from __future__ import annotations

import numpy as np


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def relu(x):
    return np.maximum(0, x)


def initialize(layers_dims, method):
    """init_utils / reg_utils initializations (seeded with 3, layer by layer)."""
    np.random.seed(3)
    parameters = {}
    for l in range(1, len(layers_dims)):
        shape = (layers_dims[l], layers_dims[l - 1])
        if method == "zeros":
            W = np.zeros(shape)
        elif method == "random":
            W = np.random.randn(*shape) * 10
        elif method == "he":
            W = np.random.randn(*shape) * np.sqrt(2.0 / layers_dims[l - 1])
        elif method == "xavier":  # reg_utils.initialize_parameters
            W = np.random.randn(*shape) / np.sqrt(layers_dims[l - 1])
        else:
            raise ValueError(method)
        parameters["W" + str(l)] = W
        parameters["b" + str(l)] = np.zeros((layers_dims[l], 1))
    return parameters


def forward_propagation(X, parameters, keep_prob=1.0):
    W1, b1, W2, b2, W3, b3 = (parameters[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
    if keep_prob < 1:
        np.random.seed(1)
    Z1 = np.dot(W1, X) + b1
    A1 = relu(Z1)
    D1 = None
    if keep_prob < 1:
        D1 = np.random.rand(A1.shape[0], A1.shape[1]) < keep_prob
        A1 = A1 * D1 / keep_prob
    Z2 = np.dot(W2, A1) + b2
    A2 = relu(Z2)
    D2 = None
    if keep_prob < 1:
        D2 = np.random.rand(A2.shape[0], A2.shape[1]) < keep_prob
        A2 = A2 * D2 / keep_prob
    Z3 = np.dot(W3, A2) + b3
    A3 = sigmoid(Z3)
    return A3, (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)


def compute_cost(A3, Y, parameters=None, lambd=0.0):
    m = Y.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        logprobs = np.multiply(-np.log(A3), Y) + np.multiply(-np.log(1 - A3), 1 - Y)
        cost = 1.0 / m * np.nansum(logprobs)
    if lambd:
        W1, W2, W3 = parameters["W1"], parameters["W2"], parameters["W3"]
        cost += 1.0 / m * lambd / 2 * (np.sum(np.square(W1)) + np.sum(np.square(W2))
                                       + np.sum(np.square(W3)))
    return cost


def backward_propagation(X, Y, cache, lambd=0.0, keep_prob=1.0):
    m = X.shape[1]
    (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3) = cache
    dZ3 = A3 - Y
    dW3 = 1.0 / m * np.dot(dZ3, A2.T) + (lambd / m) * W3
    db3 = 1.0 / m * np.sum(dZ3, axis=1, keepdims=True)
    dA2 = np.dot(W3.T, dZ3)
    if keep_prob < 1:
        dA2 = dA2 * D2 / keep_prob
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1.0 / m * np.dot(dZ2, A1.T) + (lambd / m) * W2
    db2 = 1.0 / m * np.sum(dZ2, axis=1, keepdims=True)
    dA1 = np.dot(W2.T, dZ2)
    if keep_prob < 1:
        dA1 = dA1 * D1 / keep_prob
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1.0 / m * np.dot(dZ1, X.T) + (lambd / m) * W1
    db1 = 1.0 / m * np.sum(dZ1, axis=1, keepdims=True)
    return {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2, "dW3": dW3, "db3": db3}


def update_parameters(parameters, grads, learning_rate):
    for k in range(len(parameters) // 2):
        parameters["W" + str(k + 1)] = parameters["W" + str(k + 1)] - learning_rate * grads["dW" + str(k + 1)]
        parameters["b" + str(k + 1)] = parameters["b" + str(k + 1)] - learning_rate * grads["db" + str(k + 1)]
    return parameters


def model(X, Y, layers_dims, init="he", learning_rate=0.01, num_iterations=15000, lambd=0.0,
          keep_prob=1.0, record_every=1000):
    """The course's model(): returns the parameters and the cost every ``record_every`` iterations."""
    parameters = initialize(layers_dims, init)
    costs = []
    for i in range(num_iterations):
        A3, cache = forward_propagation(X, parameters, keep_prob)
        cost = compute_cost(A3, Y, parameters, lambd)
        grads = backward_propagation(X, Y, cache, lambd, keep_prob)
        parameters = update_parameters(parameters, grads, learning_rate)
        if i % record_every == 0:
            costs.append(cost)
    return parameters, costs


def predict(X, y, parameters):
    a3, _ = forward_propagation(X, parameters)
    p = (a3 > 0.5).astype(int)
    return float(np.mean(p[0, :] == y[0, :]))
