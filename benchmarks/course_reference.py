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
    (_Z1, D1, A1, W1, _b1, _Z2, D2, A2, W2, _b2, _Z3, A3, W3, _b3) = cache
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


# -- week 1, "Gradient Checking": gradient_check_n, generalized to L layers --------------------------
#
# The course's functions for its 3-layer net, written for any depth: hidden relu, sigmoid output. The
# one change: the cost is computed from the output logits, ``log(1 + e^z) - y z``, which is the
# course's ``-y log(a) - (1 - y) log(1 - a)`` with ``a = sigmoid(z)`` rewritten exactly. It is the
# J that dlpractice trains and checks (finite when the sigmoid saturates, where the course's form gives
# inf and a nan gradapprox), so the course's loop and ours are compared on the same J.


def dictionary_to_vector(parameters):
    """Roll W1, b1, ..., WL, bL into one column vector (the course's order)."""
    L = len(parameters) // 2
    keys = []
    theta = None
    for l in range(1, L + 1):
        for key in ("W" + str(l), "b" + str(l)):
            new_vector = np.reshape(parameters[key], (-1, 1))
            keys = keys + [key] * new_vector.shape[0]
            theta = new_vector if theta is None else np.concatenate((theta, new_vector), axis=0)
    return theta, keys


def vector_to_dictionary(theta, layer_dims):
    """Unroll a column vector into W1, b1, ..., WL, bL for ``layer_dims``."""
    parameters = {}
    start = 0
    for l in range(1, len(layer_dims)):
        n, n_prev = layer_dims[l], layer_dims[l - 1]
        parameters["W" + str(l)] = theta[start:start + n * n_prev].reshape((n, n_prev))
        start += n * n_prev
        parameters["b" + str(l)] = theta[start:start + n].reshape((n, 1))
        start += n
    return parameters


def gradients_to_vector(gradients):
    """Roll dW1, db1, ..., dWL, dbL into one column vector."""
    L = len(gradients) // 2
    theta = None
    for l in range(1, L + 1):
        for key in ("dW" + str(l), "db" + str(l)):
            new_vector = np.reshape(gradients[key], (-1, 1))
            theta = new_vector if theta is None else np.concatenate((theta, new_vector), axis=0)
    return theta


def forward_propagation_n(X, Y, parameters, lambd=0.0):
    """Cost (cross-entropy from the logits, plus the course's L2 term) and the cache."""
    L = len(parameters) // 2
    m = X.shape[1]
    A = X
    cache = [(None, X)]
    for l in range(1, L + 1):
        W, b = parameters["W" + str(l)], parameters["b" + str(l)]
        Z = np.dot(W, A) + b
        A = relu(Z) if l < L else sigmoid(Z)
        cache.append((Z, A))
    Z = cache[-1][0]
    logprobs = np.logaddexp(0, Z) - Y * Z
    cost = 1.0 / m * np.sum(logprobs)
    if lambd:
        cost += 1.0 / m * lambd / 2 * sum(np.sum(np.square(parameters["W" + str(l)]))
                                          for l in range(1, L + 1))
    return cost, cache


def backward_propagation_n(X, Y, cache, parameters, lambd=0.0):
    """The gradients dW1, db1, ... of ``forward_propagation_n``'s cost."""
    L = len(parameters) // 2
    m = X.shape[1]
    gradients = {}
    dZ = cache[L][1] - Y
    for l in range(L, 0, -1):
        A_prev = cache[l - 1][1]
        W = parameters["W" + str(l)]
        gradients["dW" + str(l)] = 1.0 / m * np.dot(dZ, A_prev.T) + (lambd / m) * W
        gradients["db" + str(l)] = 1.0 / m * np.sum(dZ, axis=1, keepdims=True)
        if l > 1:
            dA = np.dot(W.T, dZ)
            dZ = np.multiply(dA, np.int64(A_prev > 0))
    return gradients


def gradapprox_n(parameters, X, Y, epsilon=1e-7, lambd=0.0):
    """The course's loop: two forward passes per parameter, one parameter at a time."""
    layer_dims = [parameters["W1"].shape[1]] + [
        parameters["W" + str(l)].shape[0] for l in range(1, len(parameters) // 2 + 1)
    ]
    parameters_values, _ = dictionary_to_vector(parameters)
    num_parameters = parameters_values.shape[0]
    J_plus = np.zeros((num_parameters, 1))
    J_minus = np.zeros((num_parameters, 1))
    gradapprox = np.zeros((num_parameters, 1))

    for i in range(num_parameters):
        theta_plus = np.copy(parameters_values)
        theta_plus[i][0] = theta_plus[i][0] + epsilon
        J_plus[i], _ = forward_propagation_n(X, Y, vector_to_dictionary(theta_plus, layer_dims),
                                             lambd)

        theta_minus = np.copy(parameters_values)
        theta_minus[i][0] = theta_minus[i][0] - epsilon
        J_minus[i], _ = forward_propagation_n(X, Y, vector_to_dictionary(theta_minus, layer_dims),
                                              lambd)

        gradapprox[i] = (J_plus[i] - J_minus[i]) / (2 * epsilon)
    return gradapprox


def gradient_check_n(parameters, gradients, X, Y, epsilon=1e-7, lambd=0.0, print_msg=False):
    """The course's check: ``difference = ‖grad − gradapprox‖ / (‖grad‖ + ‖gradapprox‖)``."""
    grad = gradients_to_vector(gradients)
    gradapprox = gradapprox_n(parameters, X, Y, epsilon, lambd)
    numerator = np.linalg.norm(grad - gradapprox)
    denominator = np.linalg.norm(grad) + np.linalg.norm(gradapprox)
    difference = numerator / denominator
    if print_msg:
        if difference > 2e-7:
            print("There is a mistake in the backward propagation! difference = " + str(difference))
        else:
            print("Your backward propagation works perfectly fine! difference = " + str(difference))
    return difference
