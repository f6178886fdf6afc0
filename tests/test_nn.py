"""Unit tests of dlpractice.nn: initializations, activations, the flat-parameter kernel, the
regularizers and the training loop. Fast (the whole file runs in seconds)."""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import replace

import numpy as np
import pytest
from scipy.special import expit

from benchmarks import course_reference as course
from dlpractice.errors import DataError, DivergenceError
from dlpractice.nn import (
    Network,
    TrainConfig,
    TrainResult,
    accuracy,
    compute_cost,
    correct_count,
    cost_and_gradients,
    error_rate,
    forward_propagation,
    initialize_parameters,
    layer_dims_for,
    predict,
    train,
)
from dlpractice.nn.activations import ACTIVATIONS, DERIVATIVES, check_activation
from dlpractice.nn.init import init_scale
from dlpractice.nn.network import Workspace
from dlpractice.nn.regularizers import DropoutMasks, EarlyStopping, augment_flips
from tests import reference

ACTIVATION_NAMES = sorted(ACTIVATIONS)


# -- helpers ------------------------------------------------------------------------------------
def ring_data(m: int, seed: int, noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """2-D points labelled 1 outside a circle, with a fraction ``noise`` of labels flipped."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((2, m))
    y = np.sum(X**2, axis=0) > 1.2
    y ^= rng.random(m) < noise
    return X, y.astype(float).reshape(1, m)


def random_parameters(layer_dims, seed: int, bias_scale: float = 0.1) -> dict[str, np.ndarray]:
    """He-scaled weights and non-zero biases (so that bias handling is exercised)."""
    rng = np.random.default_rng(seed)
    params = initialize_parameters(layer_dims, "he", rng=rng)
    for l in range(1, len(layer_dims)):
        params[f"b{l}"] = bias_scale * rng.standard_normal((layer_dims[l], 1))
    return params


def numerical_gradient(f, theta: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of ``f()`` with respect to every entry of ``theta`` (modified in place)."""
    out = np.empty_like(theta)
    for k in range(theta.size):
        saved = theta[k]
        theta[k] = saved + h
        plus = f()
        theta[k] = saved - h
        minus = f()
        theta[k] = saved
        out[k] = (plus - minus) / (2 * h)
    return out


def flat(grads: dict[str, np.ndarray], L: int) -> np.ndarray:
    return np.concatenate([np.hstack([grads[f"dW{l}"], grads[f"db{l}"]]).ravel()
                           for l in range(1, L + 1)])


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b)))


# -- initialization -----------------------------------------------------------------------------
BIG_DIMS = (300, 400, 500)


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("he", lambda n_prev, n: math.sqrt(2 / n_prev)),
        ("xavier", lambda n_prev, n: math.sqrt(1 / n_prev)),
        ("glorot", lambda n_prev, n: math.sqrt(2 / (n_prev + n))),
        ("random", lambda n_prev, n: 10.0),
    ],
)
@pytest.mark.parametrize("course_compat", [False, True])
def test_init_scale_matches_the_formula(method, expected, course_compat):
    params = initialize_parameters(BIG_DIMS, method, course_compat=course_compat)
    for l in range(1, len(BIG_DIMS)):
        n_prev, n = BIG_DIMS[l - 1], BIG_DIMS[l]
        W = params[f"W{l}"]
        assert W.shape == (n, n_prev)
        assert init_scale(method, n_prev, n) == pytest.approx(expected(n_prev, n))
        # 1.2e5+ draws: the sample std is within ~0.3 % of the true one
        assert np.std(W) == pytest.approx(expected(n_prev, n), rel=0.02)
        assert abs(np.mean(W)) < 0.02 * expected(n_prev, n)
        assert params[f"b{l}"].shape == (n, 1)
        assert not params[f"b{l}"].any()


def test_random_init_scale_is_configurable():
    params = initialize_parameters(BIG_DIMS, "random", random_scale=0.5)
    assert np.std(params["W1"]) == pytest.approx(0.5, rel=0.02)


@pytest.mark.parametrize("course_compat", [False, True])
def test_zeros_init_is_all_zeros(course_compat):
    params = initialize_parameters((3, 4, 2, 1), "zeros", course_compat=course_compat)
    assert sorted(params) == ["W1", "W2", "W3", "b1", "b2", "b3"]
    assert all(not v.any() for v in params.values())
    assert params["W2"].shape == (2, 4)


def test_default_init_is_seeded_by_the_generator():
    a = initialize_parameters((3, 4, 1), "he", rng=np.random.default_rng(5))
    b = initialize_parameters((3, 4, 1), "he", rng=np.random.default_rng(5))
    c = initialize_parameters((3, 4, 1), "he", rng=np.random.default_rng(6))
    assert np.array_equal(a["W1"], b["W1"])
    assert not np.array_equal(a["W1"], c["W1"])


@pytest.mark.parametrize("method", ["zeros", "random", "he", "xavier"])
def test_course_compat_init_equals_the_course_draws(method):
    dims = [2, 10, 5, 1]
    ours = initialize_parameters(dims, method, course_compat=True)
    theirs = course.initialize(dims, method)
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert np.array_equal(ours[key], theirs[key]), key


def test_course_compat_init_is_the_seed_3_randn_sequence():
    dims = [2, 20, 3, 1]
    ours = initialize_parameters(dims, "he", course_compat=True)
    np.random.seed(3)
    for l in range(1, len(dims)):
        expected = np.random.randn(dims[l], dims[l - 1]) * np.sqrt(2.0 / dims[l - 1])
        assert np.array_equal(ours[f"W{l}"], expected)


def test_unknown_init_is_rejected():
    with pytest.raises(ValueError, match="not one of"):
        initialize_parameters((2, 3, 1), "orthogonal")


# -- activations --------------------------------------------------------------------------------
REFERENCE_ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "tanh": np.tanh,
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
}


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activation_is_computed_in_place(name):
    Z = np.linspace(-4, 4, 41).reshape(1, -1)
    A = Z.copy()
    assert ACTIVATIONS[name](A) is None
    np.testing.assert_allclose(A, REFERENCE_ACTIVATIONS[name](Z), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activation_derivative_matches_finite_differences(name):
    rng = np.random.default_rng(0)
    Z = rng.uniform(-3, 3, size=(4, 50))
    Z[np.abs(Z) < 1e-3] = 0.5  # keep away from the relu kink
    A = Z.copy()
    ACTIVATIONS[name](A)
    upstream = rng.standard_normal(Z.shape)
    dZ = upstream.copy()
    DERIVATIVES[name](dZ, A)
    h = 1e-6
    g = REFERENCE_ACTIVATIONS[name]
    numeric = upstream * (g(Z + h) - g(Z - h)) / (2 * h)
    np.testing.assert_allclose(dZ, numeric, rtol=1e-6, atol=1e-8)


def test_unknown_activation_is_rejected():
    assert check_activation("tanh") == "tanh"
    with pytest.raises(ValueError, match="not one of"):
        check_activation("gelu")
    with pytest.raises(ValueError):
        Network((2, 3, 1), "softplus")


# -- cost ---------------------------------------------------------------------------------------
def single_unit(logits: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Parameters of a net with no hidden layer whose logits are the inputs themselves."""
    return {"W1": np.ones((1, 1)), "b1": np.zeros((1, 1))}, logits.reshape(1, -1)


def test_cost_is_finite_and_exact_for_saturated_logits():
    params, X = single_unit(np.array([800.0, -800.0, 800.0, -800.0, 3.0]))
    Y = np.array([[0.0, 1.0, 1.0, 0.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cost = compute_cost(params, X, Y)
        _, grads = cost_and_gradients(params, X, Y)
    # wrong-side saturated examples cost |z| each, right-side ones ~e^-800 = 0
    expected = (800.0 + 800.0 + 0.0 + 0.0 + math.log1p(math.exp(-3.0))) / 5
    assert math.isfinite(cost)
    assert cost == pytest.approx(expected, rel=1e-15)
    assert all(np.all(np.isfinite(g)) for g in grads.values())


def test_cost_equals_the_naive_formula_when_not_saturated():
    rng = np.random.default_rng(1)
    z = rng.uniform(-6, 6, 200)
    params, X = single_unit(z)
    Y = (rng.random((1, 200)) < 0.5).astype(float)
    a = 1 / (1 + np.exp(-z))
    naive = -np.mean(Y * np.log(a) + (1 - Y) * np.log(1 - a))
    assert compute_cost(params, X, Y) == pytest.approx(naive, rel=1e-12)



@pytest.mark.parametrize("y", [0.0, 1.0])
@pytest.mark.parametrize("z", reference.CONFIDENT_LOGITS)
def test_cost_is_exact_for_confident_logits_of_both_labels(z, y):
    """``log(1 + e^z) - y z`` gave 9.237e-14 for z = 30, y = 1 (exact 9.358e-14) and 0 for z = 40;
    every path that reports a cost is within ~4 ulp of the 80-digit value. Input 1, so the logit
    W·1 + b is W + b, rounded once."""
    params, X, Y = {"W1": np.array([[z]]), "b1": np.zeros((1, 1))}, np.ones((1, 1)), np.array([[y]])
    exact = reference.exact_cross_entropy(z, y)
    reference.assert_exact(compute_cost(params, X, Y), exact)
    reference.assert_exact(cost_and_gradients(params, X, Y)[0], exact)
    # the trainer's recorded cost at iteration 0 (this logit), its dev cost (the other label) and
    # its final cost, at the logit W + b after one step (a right answer's step rounds away)
    cfg = TrainConfig((1, 1), iterations=1, record_every=1)
    result = train(X, Y, cfg, X_dev=X, Y_dev=1.0 - Y, parameters=params)
    reference.assert_exact(result.costs[0], exact)
    reference.assert_exact(result.dev_costs[0], reference.exact_cross_entropy(z, 1.0 - y))
    final_z = float(result.parameters["W1"][0, 0] + result.parameters["b1"][0, 0])
    reference.assert_exact(result.final_cost, reference.exact_cross_entropy(final_z, y))


# -- forward / backward against the course's code ------------------------------------------------
COURSE_DIMS = [4, 7, 5, 1]


@pytest.mark.parametrize("lambd", [0.0, 0.7])
def test_forward_and_backward_match_the_course_reference(lambd):
    params = random_parameters(COURSE_DIMS, seed=2)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((4, 60))
    Y = (rng.random((1, 60)) < 0.5).astype(float)

    A3, cache = course.forward_propagation(X, params)
    expected_cost = course.compute_cost(A3, Y, params, lambd)
    expected_grads = course.backward_propagation(X, Y, cache, lambd)

    np.testing.assert_allclose(forward_propagation(params, X), A3, rtol=1e-12, atol=1e-12)
    cost, grads = cost_and_gradients(params, X, Y, lambd=lambd)
    assert cost == pytest.approx(expected_cost, rel=1e-12)
    assert compute_cost(params, X, Y, lambd=lambd) == pytest.approx(expected_cost, rel=1e-12)
    assert grads.keys() == expected_grads.keys()
    for key, value in expected_grads.items():
        assert grads[key].shape == value.shape, key
        np.testing.assert_allclose(grads[key], value, rtol=1e-12, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
@pytest.mark.parametrize(("lambd", "l1"), [(0.0, 0.0), (0.5, 0.0), (0.0, 0.3)])
def test_gradient_matches_finite_differences(activation, lambd, l1):
    dims = (3, 5, 4, 1)
    params = random_parameters(dims, seed=4)
    rng = np.random.default_rng(5)
    X = rng.standard_normal((3, 20))
    Y = (rng.random((1, 20)) < 0.5).astype(float)
    net = Network.from_parameters(params, activation)

    def cost() -> float:
        return compute_cost(net.parameters(), X, Y, activation, lambd=lambd, l1=l1)

    _, grads = cost_and_gradients(params, X, Y, activation, lambd=lambd, l1=l1)
    numeric = numerical_gradient(cost, net.theta)
    assert relative_error(flat(grads, net.L), numeric) < 1e-7


# -- prediction and parameter round trip ---------------------------------------------------------
def test_predict_labels_one_only_strictly_above_one_half():
    params, X = single_unit(np.array([0.0, 1e-9, -1e-9, 5.0, -5.0]))
    labels = predict(params, X)
    assert labels.dtype == np.int64
    assert labels.tolist() == [[0, 1, 0, 1, 0]]  # sigmoid(0) == 0.5 exactly is labelled 0
    assert accuracy(params, X, np.array([[0, 1, 0, 0, 0]])) == pytest.approx(0.8)


def test_predict_agrees_with_the_course_predict():
    params = random_parameters(COURSE_DIMS, seed=6, bias_scale=1.0)
    X = np.random.default_rng(7).standard_normal((4, 300))
    a3, _ = course.forward_propagation(X, params)
    expected = (a3 > 0.5).astype(int)
    assert np.array_equal(predict(params, X), expected)
    assert np.array_equal(predict(Network.from_parameters(params), X), expected)
    assert accuracy(params, X, expected.astype(float)) == 1.0
    assert accuracy(params, X, 1.0 - expected) == 0.0



def test_the_error_rate_is_the_misclassified_fraction_counted():
    """195 of 200 right: the error is 5/200 = 0.025 exactly, where 1 - accuracy is
    0.025000000000000022 (what table.csv and MLflow showed)."""
    z = np.r_[np.full(195, 3.0), np.full(5, -3.0)]  # 195 labelled 1, 5 labelled 0
    params, X = single_unit(z)
    Y = np.ones((1, 200))
    assert correct_count(params, X, Y) == 195
    assert correct_count(params, X, Y, columns=7) == 195  # in chunks: the same count
    assert accuracy(params, X, Y) == 0.975
    assert error_rate(195, 200) == 0.025 != 1 - 0.975
    assert error_rate(0, 3) == 1.0 and error_rate(3, 3) == 0.0
    assert error_rate(1, 3) == 2 / 3


@pytest.mark.parametrize("count", [accuracy, correct_count])
def test_counting_in_chunks_holds_one_chunk(count):
    """``columns``: 20000 examples counted 100 at a time allocate a small part of one pass's
    activations (tracemalloc), and count the same."""
    import tracemalloc

    params = random_parameters((2, 10, 1), seed=3)
    X = np.random.default_rng(4).standard_normal((2, 20_000))
    Y = predict(params, X)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        got = count(params, X, Y, "relu", 100)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert got == (1.0 if count is accuracy else 20_000)
    one_pass = 20_000 * 8 * (10 + 1)  # A1 and the output, float64
    assert peak < one_pass / 10

def test_network_parameter_round_trip():
    params = random_parameters((3, 6, 2, 1), seed=8)
    net = Network.from_parameters(params, "tanh")
    assert net.layer_dims == (3, 6, 2, 1)
    assert net.L == 3
    assert net.hidden_activation == "tanh"
    assert net.theta.size == 6 * 4 + 2 * 7 + 1 * 3
    out = net.parameters()
    assert out.keys() == params.keys()
    for key in params:
        assert out[key].shape == params[key].shape
        assert np.array_equal(out[key], params[key])
    out["W1"][0, 0] += 1.0  # a copy: the network is unchanged
    assert net.W(1)[0, 0] == params["W1"][0, 0]
    net.theta[:] = 0.0  # the views follow theta
    assert not any(v.any() for v in net.parameters().values())


def test_network_rejects_bad_shapes():
    with pytest.raises(ValueError, match="end in 1"):
        Network((2, 3, 2))
    with pytest.raises(ValueError, match="positive"):
        Network((2, 0, 1))
    with pytest.raises(ValueError, match="need W1"):
        Network.from_parameters({"W1": np.ones((1, 2))})
    net = Network((2, 3, 1))
    with pytest.raises(ValueError, match="do not fit"):
        net.set_parameters({"W1": np.ones((3, 3)), "b1": np.zeros((3, 1)),
                            "W2": np.ones((1, 3)), "b2": np.zeros((1, 1))})


# -- L2 and L1 ----------------------------------------------------------------------------------
def test_l2_penalty_value_and_gradient_skip_biases():
    params = random_parameters(COURSE_DIMS, seed=9, bias_scale=1.0)
    net = Network.from_parameters(params)
    lambd, m = 0.7, 40
    squares = sum(np.sum(params[f"W{l}"] ** 2) for l in range(1, 4))
    assert net.penalty(lambd=lambd, m=m) == pytest.approx(lambd / (2 * m) * squares, rel=1e-14)
    for l in range(1, 4):
        net.Wb[l - 1][:, -1] += 10.0  # biases do not count
    assert net.penalty(lambd=lambd, m=m) == pytest.approx(lambd / (2 * m) * squares, rel=1e-14)

    X = np.random.default_rng(10).standard_normal((4, m))
    Y = (X[:1] > 0).astype(float)
    cost0, plain = cost_and_gradients(params, X, Y)
    cost, penalized = cost_and_gradients(params, X, Y, lambd=lambd)
    assert cost - cost0 == pytest.approx(lambd / (2 * m) * squares, rel=1e-10)
    for l in range(1, 4):
        np.testing.assert_allclose(penalized[f"dW{l}"] - plain[f"dW{l}"],
                                   lambd / m * params[f"W{l}"], rtol=1e-9, atol=1e-15)
        assert np.array_equal(penalized[f"db{l}"], plain[f"db{l}"])


def test_l1_penalty_value_and_gradient_skip_biases():
    params = random_parameters(COURSE_DIMS, seed=11, bias_scale=1.0)
    net = Network.from_parameters(params)
    l1, m = 0.3, 25
    absolute = sum(np.sum(np.abs(params[f"W{l}"])) for l in range(1, 4))
    assert net.penalty(l1=l1, m=m) == pytest.approx(l1 / (2 * m) * absolute, rel=1e-14)
    assert net.penalty(lambd=0.5, l1=l1, m=m) == pytest.approx(
        net.penalty(lambd=0.5, m=m) + net.penalty(l1=l1, m=m), rel=1e-14
    )

    X = np.random.default_rng(12).standard_normal((4, m))
    Y = (X[:1] > 0).astype(float)
    _, plain = cost_and_gradients(params, X, Y)
    _, penalized = cost_and_gradients(params, X, Y, l1=l1)
    for l in range(1, 4):
        np.testing.assert_allclose(penalized[f"dW{l}"] - plain[f"dW{l}"],
                                   l1 / (2 * m) * np.sign(params[f"W{l}"]), rtol=1e-9, atol=1e-15)
        assert np.array_equal(penalized[f"db{l}"], plain[f"db{l}"])


# -- dropout ------------------------------------------------------------------------------------
def dropout_workspace(dims, m, hidden_keep, input_keep=1.0, course_seed=None, seed=0,
                      activation="relu"):
    net = Network.from_parameters(random_parameters(dims, seed=seed), activation)
    X, Y = ring_data(m, seed=seed) if dims[0] == 2 else (
        np.random.default_rng(seed).standard_normal((dims[0], m)),
        (np.random.default_rng(seed + 1).random((1, m)) < 0.5).astype(float),
    )
    ws = Workspace(net, m)
    ws.load(X, Y)
    masks = DropoutMasks(net, hidden_keep, input_keep, np.random.default_rng(seed),
                         course_seed=course_seed)
    return net, ws, masks, X, Y


def test_dropout_matches_the_course_forward_and_backward():
    """Course-mode masks are the course's, and forward and backward use the same ones."""
    keep_prob = 0.86
    net, ws, masks, X, Y = dropout_workspace(COURSE_DIMS, 50, [keep_prob, keep_prob],
                                             course_seed=1)
    masks.apply(ws)
    ws.forward()
    grad = np.empty_like(net.theta)
    ws.backward(grad, 1.0 / ws.m)

    params = net.parameters()
    A3, cache = course.forward_propagation(X, params, keep_prob)
    expected = course.backward_propagation(X, Y, cache, keep_prob=keep_prob)
    np.testing.assert_allclose(ws.A_out, A3, rtol=1e-12, atol=1e-12)
    ours = net.gradients(grad)
    for key, value in expected.items():
        np.testing.assert_allclose(ours[key], value, rtol=1e-12, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_dropout_gradient_matches_finite_differences_with_the_masks_fixed(activation):
    net, ws, masks, _, _ = dropout_workspace((3, 6, 5, 1), 30, [0.6, 0.7], input_keep=0.8,
                                             seed=13, activation=activation)
    masks.apply(ws)
    assert ws.masks[1] is not None and ws.masks[2] is not None

    def cost() -> float:
        ws.forward()
        return ws.cross_entropy()

    cost()
    grad = np.empty_like(net.theta)
    ws.backward(grad, 1.0 / ws.m)
    assert relative_error(grad, numerical_gradient(cost, net.theta)) < 1e-7


def test_dropout_masks_hidden_layers_only_never_the_output():
    net, ws, masks, _, _ = dropout_workspace((2, 8, 6, 1), 40, [0.5, 0.5])
    masks.apply(ws)
    assert len(ws.masks) == net.L  # indices 0 (input) .. L-1: the output has no slot
    assert ws.masks[0] is None
    assert ws.masks[1].shape == (8, 40) and ws.masks[2].shape == (6, 40)
    ws.forward()
    hidden = ws.A[2][:-1]
    assert np.all(hidden[~ws.masks[2]] == 0.0)
    expected_out = expit(net.W(3) @ hidden + net.Wb[2][:, -1:])
    np.testing.assert_allclose(ws.A_out, expected_out, rtol=1e-14)
    assert np.all(ws.A_out > 0.0)


def test_dropout_keep_prob_per_hidden_layer_and_on_the_input():
    _, ws, masks, X, _ = dropout_workspace((2, 8, 6, 1), 400, [0.5, 1.0], input_keep=0.5)
    assert masks.layers == [0, 1]
    X = np.abs(X) + 0.1  # no zero inputs, so a zero means dropped
    ws.load(X)
    masks.apply(ws)
    assert ws.masks[1] is not None and ws.masks[2] is None
    kept = ws.X != 0.0
    np.testing.assert_allclose(ws.X[kept], X[kept] / 0.5)
    assert kept.mean() == pytest.approx(0.5, abs=0.05)

    cfg = TrainConfig((2, 8, 6, 1), keep_prob=(0.5, 0.9))
    assert cfg.hidden_keep_probs() == (0.5, 0.9)
    assert TrainConfig((2, 8, 6, 1), keep_prob=0.8).hidden_keep_probs() == (0.8, 0.8)


@pytest.mark.parametrize("keep_prob", [0.3, 0.7, 0.9])
def test_dropout_keeps_the_expected_fraction(keep_prob):
    _, ws, masks, _, _ = dropout_workspace((2, 1000, 1), 200, [keep_prob])
    masks.apply(ws)
    assert ws.masks[1].mean() == pytest.approx(keep_prob, abs=0.01)  # 2e5 draws: std 0.001


def test_course_mode_masks_are_the_seed_1_rand_sequence_at_every_step():
    dims, m, keep = (2, 20, 3, 1), 50, [0.86, 0.7]
    _, ws, masks, _, _ = dropout_workspace(dims, m, keep, course_seed=1)
    masks.apply(ws)
    first = [ws.masks[1].copy(), ws.masks[2].copy()]
    np.random.seed(1)
    assert np.array_equal(first[0], np.random.rand(20, m) < 0.86)
    assert np.array_equal(first[1], np.random.rand(3, m) < 0.7)
    np.random.seed(12345)  # the global state moved on: the course re-seeds, so do we
    masks.apply(ws)
    assert np.array_equal(ws.masks[1], first[0]) and np.array_equal(ws.masks[2], first[1])


def test_default_mode_masks_are_fresh_at_every_step():
    _, ws, masks, _, _ = dropout_workspace((2, 20, 3, 1), 50, [0.5, 0.5])
    masks.apply(ws)
    first = ws.masks[1].copy()
    masks.apply(ws)
    assert not np.array_equal(ws.masks[1], first)


def test_dropout_is_off_at_prediction():
    X, Y = ring_data(200, seed=14)
    cfg = TrainConfig((2, 10, 5, 1), learning_rate=0.1, iterations=200, keep_prob=0.5)
    result = train(X, Y, cfg)
    a3, _ = course.forward_propagation(X, result.parameters)  # no dropout
    assert np.array_equal(predict(result.network, X), (a3 > 0.5).astype(int))
    assert np.array_equal(predict(result.network, X), predict(result.parameters, X))
    assert accuracy(result.network, X, Y) == course.predict(X, Y, result.parameters)
    # the final cost is the clean (no dropout) cost of the final weights
    assert result.final_cost == pytest.approx(compute_cost(result.parameters, X, Y), rel=1e-12)


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5])
def test_invalid_keep_prob_is_rejected(bad):
    X, Y = ring_data(20, seed=0)
    with pytest.raises(ValueError, match="keep_prob"):
        train(X, Y, TrainConfig((2, 4, 1), keep_prob=bad, iterations=1))
    with pytest.raises(ValueError, match="keep_prob"):
        train(X, Y, TrainConfig((2, 4, 1), input_keep_prob=bad, iterations=1))


def test_keep_prob_needs_one_value_per_hidden_layer():
    X, Y = ring_data(20, seed=0)
    with pytest.raises(ValueError, match="one value per hidden layer"):
        train(X, Y, TrainConfig((2, 4, 3, 1), keep_prob=(0.5, 0.5, 0.5), iterations=1))


# -- early stopping -----------------------------------------------------------------------------
def test_early_stopping_restores_the_best_weights():
    X, Y = ring_data(30, seed=1, noise=0.2)  # tiny noisy train set: the dev cost turns up
    X_dev, Y_dev = ring_data(300, seed=2, noise=0.2)
    base = TrainConfig((2, 30, 30, 1), learning_rate=0.03, iterations=4000, record_every=50)
    full = train(X, Y, base, X_dev=X_dev, Y_dev=Y_dev)
    best = int(np.argmin(full.dev_costs))
    assert 0 < best < len(full.dev_costs) - 5, "the scenario needs a dev-cost minimum mid-run"

    cfg = replace(base, early_stopping_patience=5)
    result = train(X, Y, cfg, X_dev=X_dev, Y_dev=Y_dev)
    assert result.stopped_early
    assert result.best_iteration == full.iterations[best]
    assert result.iterations[-1] == full.iterations[best + 5]  # 5 evaluations without progress
    assert result.iterations_run == result.iterations[-1] + 1 < base.iterations
    restored_dev_cost = compute_cost(result.parameters, X_dev, Y_dev)
    assert restored_dev_cost == pytest.approx(min(result.dev_costs), rel=1e-12)
    assert restored_dev_cost < result.dev_costs[-1]
    assert result.best_dev_cost == pytest.approx(restored_dev_cost, rel=1e-12)
    assert full.best_dev_cost is None
    assert result.final_cost == pytest.approx(compute_cost(result.parameters, X, Y), rel=1e-12)


def test_early_stopping_beyond_the_run_keeps_the_best_and_the_last_weights():
    """A patience the run never reaches: it trains to the end (the plain run's last weights, in
    ``end_parameters``) and ends on the weights of its lowest dev cost."""
    X, Y = ring_data(30, seed=1, noise=0.2)
    X_dev, Y_dev = ring_data(300, seed=2, noise=0.2)
    base = TrainConfig((2, 30, 30, 1), learning_rate=0.03, iterations=2000, record_every=50)
    full = train(X, Y, base, X_dev=X_dev, Y_dev=Y_dev)
    assert full.end_parameters is None
    result = train(X, Y, replace(base, early_stopping_patience=1000), X_dev=X_dev, Y_dev=Y_dev)
    assert not result.stopped_early and result.iterations_run == base.iterations
    for name, value in full.parameters.items():
        np.testing.assert_array_equal(result.end_parameters[name], value)
    assert result.best_iteration == full.iterations[int(np.argmin(full.dev_costs))]
    assert compute_cost(result.parameters, X_dev, Y_dev) == pytest.approx(min(full.dev_costs),
                                                                          rel=1e-12)


def test_early_stopping_needs_a_dev_set():
    X, Y = ring_data(20, seed=0)
    with pytest.raises(ValueError, match="dev set"):
        train(X, Y, TrainConfig((2, 4, 1), early_stopping_patience=3, iterations=10))


def test_early_stopping_patience_and_min_delta():
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(0)
    stop = EarlyStopping(patience=2, min_delta=0.1)
    theta = np.array([1.0])
    assert not stop.update(0, 1.0, theta)
    theta[0] = 2.0  # the stored copy is not a view
    assert not stop.update(1, 0.95, theta)  # not better by min_delta
    assert stop.update(2, 0.92, theta)  # second evaluation without progress: stop
    assert stop.best_iteration == 0 and stop.best_cost == 1.0
    assert stop.best_theta.tolist() == [1.0]


# -- augmentation -------------------------------------------------------------------------------
def test_flip_augmentation_mirrors_each_axis_and_keeps_labels():
    X, Y = ring_data(10, seed=3)
    X2, Y2 = augment_flips(X, Y, (1,))
    assert X2.shape == (2, 20) and Y2.shape == (1, 20)
    assert np.array_equal(X2[:, :10], X)
    assert np.array_equal(X2[0, 10:], X[0]) and np.array_equal(X2[1, 10:], -X[1])
    assert np.array_equal(Y2, np.hstack([Y, Y]))
    X3, Y3 = augment_flips(X, Y, (0, 1))
    assert X3.shape == (2, 30) and np.array_equal(Y3, np.hstack([Y, Y, Y]))
    assert augment_flips(X, Y, ()) == (X, Y)
    for bad in (2, -1):
        with pytest.raises(ValueError, match="flip axis"):
            augment_flips(X, Y, (bad,))


def test_training_with_flips_equals_training_on_the_flipped_set():
    X, Y = ring_data(40, seed=4)
    cfg = TrainConfig((2, 6, 1), learning_rate=0.1, iterations=50)
    flipped = train(X, Y, replace(cfg, augment_flip_axes=(0,)))
    manual = train(*augment_flips(X, Y, (0,)), cfg)
    assert np.array_equal(flipped.network.theta, manual.network.theta)


def test_jitter_is_seeded_and_leaves_the_data_alone():
    X, Y = ring_data(60, seed=5)
    X_before = X.copy()
    cfg = TrainConfig((2, 6, 1), learning_rate=0.1, iterations=50, augment_jitter=0.1)
    a, b = train(X, Y, cfg), train(X, Y, cfg)
    plain = train(X, Y, replace(cfg, augment_jitter=0.0))
    assert np.array_equal(X, X_before)
    assert np.array_equal(a.network.theta, b.network.theta)
    assert not np.array_equal(a.network.theta, plain.network.theta)


# -- mini-batches -------------------------------------------------------------------------------
def test_mini_batches_that_do_not_divide_m():
    X, Y = ring_data(100, seed=6)
    cfg = TrainConfig((2, 8, 4, 1), learning_rate=0.1, iterations=60, batch_size=32,
                      record_every=10, seed=3)
    a = train(X, Y, cfg)
    assert a.costs[-1] < 0.8 * a.costs[0]
    assert len(a.costs) == 6 and a.iterations_run == 60
    b = train(X, Y, cfg)
    assert np.array_equal(a.network.theta, b.network.theta)
    c = train(X, Y, replace(cfg, seed=4))
    assert not np.array_equal(a.network.theta, c.network.theta)


def test_course_mode_mini_batches_use_the_course_permutations():
    X, Y = ring_data(100, seed=7)
    dims, lr, batch, epochs = (2, 5, 3, 1), 0.2, 32, 4
    cfg = TrainConfig(dims, learning_rate=lr, iterations=epochs, batch_size=batch,
                      course_compat=True)
    result = train(X, Y, cfg)

    params = initialize_parameters(dims, "he", course_compat=True)
    for epoch in range(epochs):
        np.random.seed(10 + epoch + 1)  # week 2: seed = seed + 1, then random_mini_batches
        order = np.random.permutation(X.shape[1])
        for start in range(0, X.shape[1], batch):
            idx = order[start : start + batch]
            _, grads = cost_and_gradients(params, X[:, idx], Y[:, idx])
            params = {k: v - lr * grads["d" + k] for k, v in params.items()}
    for key, value in params.items():
        np.testing.assert_allclose(result.parameters[key], value, rtol=1e-10, atol=1e-13)


# -- histories, timing, callbacks ---------------------------------------------------------------
def test_histories_are_recorded_every_k_iterations():
    X, Y = ring_data(80, seed=8)
    X_dev, Y_dev = ring_data(50, seed=9)
    dims = (2, 6, 4, 1)
    params = random_parameters(dims, seed=10)
    cfg = TrainConfig(dims, learning_rate=0.05, iterations=250, record_every=100, lambd=0.2)
    result = train(X, Y, cfg, X_dev=X_dev, Y_dev=Y_dev, parameters=params)
    assert result.iterations == [0, 100, 200]
    assert len(result.costs) == len(result.dev_costs) == len(result.grad_norms) == 3
    assert all(len(norms) == 3 for norms in result.grad_norms)
    assert result.iterations_run == 250 and not result.stopped_early
    assert result.best_iteration is None
    assert result.train_seconds > 0

    # the first record describes the initial parameters
    cost0, grads0 = cost_and_gradients(params, X, Y, lambd=0.2)
    assert result.costs[0] == pytest.approx(cost0, rel=1e-12)
    assert result.dev_costs[0] == pytest.approx(
        compute_cost(params, X_dev, Y_dev, lambd=0.2), rel=1e-12
    )
    np.testing.assert_allclose(
        result.grad_norms[0], [np.linalg.norm(grads0[f"dW{l}"]) for l in range(1, 4)], rtol=1e-9
    )
    assert result.final_cost == pytest.approx(
        compute_cost(result.parameters, X, Y, lambd=0.2), rel=1e-12
    )

    no_dev = train(X, Y, cfg, parameters=params)
    assert no_dev.dev_costs == [] and no_dev.costs == result.costs


def test_callback_runs_at_every_record():
    X, Y = ring_data(50, seed=11)
    X_dev, Y_dev = ring_data(30, seed=12)
    calls = []
    cfg = TrainConfig((2, 5, 1), learning_rate=0.1, iterations=95, record_every=20)
    result = train(X, Y, cfg, X_dev=X_dev, Y_dev=Y_dev,
                   callback=lambda i, cost, dev: calls.append((i, cost, dev)))
    assert calls == list(zip(result.iterations, result.costs, result.dev_costs))
    assert [i for i, _, _ in calls] == [0, 20, 40, 60, 80]


def test_keyboard_interrupt_from_a_callback_propagates():
    X, Y = ring_data(50, seed=13)
    calls = []

    def callback(i, cost, dev):
        calls.append(i)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(X, Y, TrainConfig((2, 5, 1), iterations=1000, record_every=10), callback=callback)
    assert calls == [0, 10]


def test_layer_dims_for():
    assert layer_dims_for(2, [20, 3]) == (2, 20, 3, 1)
    X, Y = ring_data(10, seed=0)
    with pytest.raises(ValueError, match="features"):
        train(X, Y, TrainConfig((3, 4, 1), iterations=1))


# -- divergence ---------------------------------------------------------------------------------
DIVERGING = TrainConfig((2, 20, 20, 1), hidden_activation="leaky_relu", init="random",
                        init_scale=10.0, learning_rate=1e6, iterations=200, record_every=10)


def test_divergence_raises_naming_iteration_and_layer_without_warnings():
    X, Y = ring_data(200, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning (overflow, invalid) may escape
        with pytest.raises(DivergenceError) as info:
            train(X, Y, DIVERGING)
        error = info.value
        assert isinstance(error.iteration, int) and 0 < error.iteration < DIVERGING.iterations
        assert error.layer in (1, 2, 3)
        message = str(error)
        assert f"iteration {error.iteration}" in message
        assert f"layer {error.layer}" in message
        assert "\n" not in message

        # the named iteration is the first bad one: stopping just before it is fine
        before = train(X, Y, replace(DIVERGING, iterations=error.iteration))
        assert np.all(np.isfinite(before.network.theta))
        with pytest.raises(DivergenceError) as again:
            train(X, Y, replace(DIVERGING, iterations=error.iteration + 1))
        assert (again.value.iteration, again.value.layer) == (error.iteration, error.layer)


# -- initialization: defaults, messages and the generator's draws -------------------------------
def test_init_scale_of_zeros_is_zero_and_an_unknown_name_is_named_in_full():
    assert init_scale("zeros", 3, 4) == 0.0
    with pytest.raises(ValueError) as info:
        initialize_parameters((2, 3, 1), "orthogonal")
    assert str(info.value) == "init 'orthogonal' is not one of zeros, random, he, xavier, glorot"


def test_default_init_is_he_from_a_generator_seeded_with_0():
    dims = (3, 4, 2, 1)
    params = initialize_parameters(dims)
    rng = np.random.default_rng(0)
    for l in range(1, len(dims)):
        expected = rng.standard_normal((dims[l], dims[l - 1])) * math.sqrt(2.0 / dims[l - 1])
        assert np.array_equal(params[f"W{l}"], expected), l


def test_random_scale_only_scales_the_random_init():
    """glorot ignores random_scale, even one that makes no sense as a scale."""
    dims = (3, 4, 1)
    params = initialize_parameters(dims, "glorot", random_scale=-3.0,
                                   rng=np.random.default_rng(1))
    rng = np.random.default_rng(1)
    for l in range(1, len(dims)):
        expected = rng.standard_normal((dims[l], dims[l - 1])) * math.sqrt(2.0 / (dims[l - 1] + dims[l]))
        assert np.array_equal(params[f"W{l}"], expected), l


def test_course_compat_random_init_uses_random_scale():
    dims = (2, 5, 1)
    params = initialize_parameters(dims, "random", random_scale=0.5, course_compat=True)
    np.random.seed(3)
    for l in range(1, len(dims)):
        assert np.array_equal(params[f"W{l}"], np.random.randn(dims[l], dims[l - 1]) * 0.5), l


def test_zeros_init_draws_nothing_from_the_generator():
    """Training shares one generator: a zeros init must leave dropout's and the shuffles' draws alone."""
    rng = np.random.default_rng(7)
    initialize_parameters((3, 4, 2, 1), "zeros", rng=rng)
    assert rng.random() == np.random.default_rng(7).random()
    initialize_parameters((3, 4, 2, 1), "zeros", course_compat=True)
    after = np.random.random()
    np.random.seed(3)  # the course's seed, then no randn
    assert after == np.random.random()


def test_a_rejected_init_does_not_touch_the_global_seed():
    """A random_scale that is not a number is rejected before the course's np.random.seed(3)."""
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    with pytest.raises(TypeError):
        initialize_parameters((2, 3, 1), "random", random_scale=None, course_compat=True)
    assert np.random.random() == expected


# -- activations: the kink and the message -------------------------------------------------------
def test_leaky_relu_derivative_at_zero_is_the_slope():
    """At Z = 0 (A = 0) the derivative is the left one, 0.01, as relu's is 0 (the course's Z <= 0)."""
    dA = np.array([[2.0, 2.0, 2.0]])
    DERIVATIVES["leaky_relu"](dA, np.array([[0.0, 1.5, -0.015]]))
    assert dA.tolist() == [[0.02, 2.0, 0.02]]


def test_relu_derivative_at_zero_is_zero_with_or_without_a_mask_buffer():
    """relu' from A = relu(Z): 1 where A > 0, 0 at the kink (A = 0); a bool buffer spares the temporary."""
    A = np.array([[0.0, 1.5, 0.0, 3e-300]])
    plain, buffered = np.full((1, 4), -2.0), np.full((1, 4), -2.0)
    DERIVATIVES["relu"](plain, A)
    mask = np.ones((1, 4), dtype=bool)
    DERIVATIVES["relu"](buffered, A, mask)
    assert plain.tolist() == buffered.tolist() == [[-0.0, -2.0, -0.0, -2.0]]
    assert mask.tolist() == [[False, True, False, True]]


def test_unknown_activation_message_lists_the_choices():
    with pytest.raises(ValueError) as info:
        check_activation("gelu")
    assert str(info.value) == "hidden activation 'gelu' is not one of leaky_relu, relu, sigmoid, tanh"


# -- the network: parameter dictionaries, penalties, hand-set masks -------------------------------
@pytest.mark.parametrize(
    ("keys", "listed"),
    [
        (("W1", "W2", "b2", "W3"), "['W1', 'W2', 'W3', 'b2']"),  # b1 missing
        (("W2", "b2", "W3", "b3"), "['W2', 'W3', 'b2', 'b3']"),  # W1 missing
        (("W1", "b1", "W2", "c2"), "['W1', 'W2', 'b1', 'c2']"),  # b2 missing
    ],
)
def test_from_parameters_names_a_missing_layer(keys, listed):
    params = {k: np.ones((1, 1)) for k in keys}
    with pytest.raises(ValueError) as info:
        Network.from_parameters(params)
    assert str(info.value) == f"parameters need W1, b1, ..., WL, bL; got {listed}"


def test_penalty_defaults_to_one_example():
    net = Network.from_parameters({"W1": np.array([[3.0, -4.0]]), "b1": np.array([[5.0]])})
    assert net.penalty(lambd=0.5) == 0.5 / 2 * 25.0
    assert net.penalty(l1=0.5) == 0.5 / 2 * 7.0
    # a zero penalty is +0.0 (it prints as 0.0) whatever the sign of lambd
    assert math.copysign(1.0, Network((2, 1)).penalty(lambd=-1.0)) == 1.0


def test_cost_and_gradients_cost_includes_the_l1_term():
    params = random_parameters(COURSE_DIMS, seed=15)
    rng = np.random.default_rng(16)
    X = rng.standard_normal((4, 30))
    Y = (rng.random((1, 30)) < 0.5).astype(float)
    l1, m = 0.4, 30
    absolute = sum(np.sum(np.abs(params[f"W{l}"])) for l in range(1, 4))
    cost, _ = cost_and_gradients(params, X, Y, l1=l1)
    assert cost == pytest.approx(reference.cost(params, X, Y) + l1 / (2 * m) * absolute, rel=1e-12)


@pytest.mark.parametrize("activation", ["leaky_relu", "sigmoid", "tanh"])
def test_the_functions_use_the_hidden_activation_they_are_given(activation):
    params = random_parameters((3, 6, 4, 1), seed=17, bias_scale=1.0)
    rng = np.random.default_rng(18)
    X = 2.0 * rng.standard_normal((3, 200))
    Y = (rng.random((1, 200)) < 0.5).astype(float)
    params["b3"] -= np.median(reference.logits(params, X, activation))  # about half labelled 1
    z = reference.logits(params, X, activation)
    assert not np.array_equal(reference.predict(params, X, activation), reference.predict(params, X))
    np.testing.assert_allclose(forward_propagation(params, X, activation), expit(z), rtol=1e-12)
    assert compute_cost(params, X, Y, activation) == pytest.approx(
        reference.cost(params, X, Y, activation), rel=1e-12)
    cost, _ = cost_and_gradients(params, X, Y, activation)
    assert cost == pytest.approx(reference.cost(params, X, Y, activation), rel=1e-12)
    assert np.array_equal(predict(params, X, activation), reference.predict(params, X, activation))
    assert accuracy(params, X, Y, activation) == reference.accuracy(params, X, Y, activation)


def test_workspace_applies_hand_set_masks_without_rescaling():
    """A mask written into ``Workspace.masks`` with the default keep_prob (1) only zeroes units."""
    params = random_parameters((2, 5, 1), seed=19, bias_scale=1.0)
    X, _ = ring_data(12, seed=19)
    D = np.random.default_rng(19).random((5, 12)) < 0.5
    ws = Workspace(Network.from_parameters(params), 12)
    ws.load(X)
    ws.masks[1] = D
    ws.forward()
    A1 = np.maximum(params["W1"] @ X + params["b1"], 0.0) * D
    np.testing.assert_allclose(ws.A_out, expit(params["W2"] @ A1 + params["b2"]), rtol=1e-14)


# -- dropout: the keep rule and the input's scale --------------------------------------------------
def test_a_unit_whose_draw_equals_keep_prob_is_dropped():
    """keep iff u < keep_prob: with u ~ U[0, 1) a unit is then kept with probability keep_prob exactly."""
    m = 6
    U = np.random.default_rng(20).random((4, m))
    keep_prob = float(U[1, 2])
    net, ws, _, _, _ = dropout_workspace((2, 4, 1), m, [keep_prob])
    DropoutMasks(net, [keep_prob], 1.0, np.random.default_rng(20)).apply(ws)
    assert np.array_equal(ws.masks[1], U < keep_prob) and not ws.masks[1][1, 2]


def test_course_masks_drop_a_unit_whose_draw_equals_keep_prob():
    m = 40
    np.random.seed(1)
    keep_prob = float(np.random.rand(7, m)[0, 0])  # the course's first draw
    net, ws, masks, X, _ = dropout_workspace(COURSE_DIMS, m, [keep_prob, keep_prob], course_seed=1)
    masks.apply(ws)
    _, cache = course.forward_propagation(X, net.parameters(), keep_prob)
    assert np.array_equal(ws.masks[1], cache[1]) and np.array_equal(ws.masks[2], cache[6])
    assert not ws.masks[1][0, 0]


def test_input_dropout_scales_by_the_input_keep_prob():
    _, ws, masks, X, _ = dropout_workspace((2, 8, 1), 300, [0.5], input_keep=0.8)
    X = np.abs(X) + 0.1  # no zero inputs, so a zero means dropped
    ws.load(X)
    masks.apply(ws)
    kept = ws.X != 0.0
    np.testing.assert_allclose(ws.X[kept], X[kept] / 0.8, rtol=1e-15)
    assert kept.mean() == pytest.approx(0.8, abs=0.05)


# -- early stopping: its state and rules -----------------------------------------------------------
def test_early_stopping_starts_empty_and_counts_ties_as_no_progress():
    stop = EarlyStopping(patience=1)  # 1 is allowed: stop at the first evaluation without progress
    assert (stop.best_cost, stop.best_iteration, stop.best_theta, stop.bad_evaluations,
            stop.min_delta) == (np.inf, None, None, 0, 0.0)
    theta = np.array([1.0])
    assert not stop.update(0, 1.0, theta)
    assert not stop.update(1, 0.999, theta)  # any improvement counts (min_delta 0)
    assert stop.update(2, 0.999, theta)  # an equal cost is no progress
    assert (stop.best_iteration, stop.best_cost) == (1, 0.999)


def test_early_stopping_counts_a_nan_dev_cost_as_no_progress():
    stop = EarlyStopping(patience=2)
    assert not stop.update(0, math.nan, np.array([1.0]))
    assert stop.update(1, math.nan, np.array([1.0]))
    assert stop.best_iteration is None and stop.best_theta is None


def test_early_stopping_min_delta_is_passed_on_by_train():
    """With a min_delta no step can reach, training stops ``patience`` evaluations after the start
    and ends on the initial weights."""
    X, Y = ring_data(60, seed=21)
    X_dev, Y_dev = ring_data(40, seed=22)
    dims = (2, 5, 1)
    params = random_parameters(dims, seed=21)
    cfg = TrainConfig(dims, learning_rate=0.5, iterations=200, record_every=10,
                      early_stopping_patience=2, early_stopping_min_delta=1e9)
    result = train(X, Y, cfg, X_dev=X_dev, Y_dev=Y_dev, parameters=params)
    assert result.stopped_early and result.iterations == [0, 10, 20]
    assert result.best_iteration == 0 and result.iterations_run == 21
    for key, value in params.items():
        assert np.array_equal(result.parameters[key], value), key


# -- messages of train and augmentation ----------------------------------------------------------
def test_train_and_augmentation_messages_in_full():
    X, Y = ring_data(10, seed=0)
    with pytest.raises(ValueError) as info:
        train(X, Y, TrainConfig((3, 4, 1), iterations=1))
    assert str(info.value) == "X has 2 features but layer_dims starts with 3"
    for labels, got in ((None, "None"), (Y[0], "(10,)"), (Y[:, :9], "(1, 9)")):
        with pytest.raises(ValueError) as info:
            train(X, labels, TrainConfig((2, 4, 1), iterations=1))
        assert str(info.value) == ("Y must hold the labels of X's examples, shape (1, 10); "
                                   f"got {got}")
    for iterations, every in ((-1, 1), (5, 0)):
        with pytest.raises(ValueError) as info:
            train(X, Y, TrainConfig((2, 4, 1), iterations=iterations, record_every=every))
        assert str(info.value) == (f"iterations must be >= 0 and record_every >= 1 (got "
                                   f"{iterations} and {every})")
    with pytest.raises(ValueError) as info:
        train(X, Y, TrainConfig((2, 4, 1), early_stopping_patience=3, iterations=1))
    assert str(info.value) == "early stopping needs a dev set (X_dev, Y_dev)"
    with pytest.raises(ValueError) as info:
        augment_flips(X, Y, (2,))
    assert str(info.value) == "flip axis 2 is not a feature index (0..1)"


# -- the training loop against a plain gradient-descent loop --------------------------------------
def plain_descent(X, Y, dims, lr, iterations, seed, perturb):
    """Full-batch gradient descent with the course's functions: ``perturb(X, rng)`` is the input
    of each step, drawn from the generator that drew the initialization (train's order)."""
    rng = np.random.default_rng(seed)
    params = initialize_parameters(dims, "he", rng=rng)
    for _ in range(iterations):
        _, grads = cost_and_gradients(params, perturb(X, rng), Y)
        params = {k: v - lr * grads["d" + k] for k, v in params.items()}
    return params


@pytest.mark.parametrize(("option", "perturb"), [
    ({"input_keep_prob": 0.7}, lambda X, rng: X * (rng.random(X.shape) < 0.7) / 0.7),
    ({"augment_jitter": 0.3}, lambda X, rng: X + 0.3 * rng.standard_normal(X.shape)),
], ids=["input-dropout", "jitter"])
def test_input_dropout_and_jitter_perturb_a_fresh_copy_of_the_input_at_every_step(option,
                                                                                   perturb):
    X, Y = ring_data(50, seed=23)
    dims, lr = (2, 6, 1), 0.5
    result = train(X, Y, TrainConfig(dims, learning_rate=lr, iterations=4, seed=5, **option))
    expected = plain_descent(X, Y, dims, lr, 4, seed=5, perturb=perturb)
    for key, value in expected.items():
        np.testing.assert_allclose(result.parameters[key], value, rtol=1e-10, atol=1e-14)


def test_zero_iterations_return_the_given_parameters_and_their_cost():
    X, Y = ring_data(30, seed=25)
    params = random_parameters((2, 4, 1), seed=25)
    result = train(X, Y, TrainConfig((2, 4, 1), iterations=0), parameters=params)
    assert result.costs == [] and result.iterations == [] and result.iterations_run == 0
    assert result.final_cost == pytest.approx(reference.cost(params, X, Y), rel=1e-12)
    for key, value in params.items():
        assert np.array_equal(result.parameters[key], value), key


def test_callback_gets_none_for_the_dev_cost_without_a_dev_set():
    X, Y = ring_data(30, seed=26)
    calls = []
    result = train(X, Y, TrainConfig((2, 4, 1), iterations=30, record_every=10),
                   callback=lambda i, cost, dev: calls.append((i, cost, dev)))
    assert calls == [(0, result.costs[0], None), (10, result.costs[1], None),
                     (20, result.costs[2], None)]


def test_train_seconds_is_at_most_the_wall_time_of_the_call():
    X, Y = ring_data(30, seed=27)
    start = time.perf_counter()
    result = train(X, Y, TrainConfig((2, 4, 1), iterations=50))
    elapsed = time.perf_counter() - start
    assert 0.0 < result.train_seconds <= elapsed


def test_train_seconds_leaves_out_the_callbacks_time():
    X, Y = ring_data(30, seed=27)
    in_callback = []

    def slow(i, cost, dev_cost):  # e.g. a tracker flushing its history
        called = time.perf_counter()
        time.sleep(0.05)
        in_callback.append(time.perf_counter() - called)

    start = time.perf_counter()
    result = train(X, Y, TrainConfig((2, 4, 1), iterations=50, record_every=10), callback=slow)
    elapsed = time.perf_counter() - start
    assert len(in_callback) == 5
    assert 0.0 < result.train_seconds <= elapsed - sum(in_callback)


# -- divergence: the layer named -----------------------------------------------------------------
def course_parameters(*layers) -> dict[str, np.ndarray]:
    """``{"W1": ..., "b1": ...}`` from (W, b) pairs written as nested lists."""
    out = {}
    for l, (W, b) in enumerate(layers, start=1):
        out[f"W{l}"] = np.array(W, dtype=float)
        out[f"b{l}"] = np.array(b, dtype=float).reshape(-1, 1)
    return out


DIVERGENCE_CASES = {
    # X = 1e300: layer 1's second unit is 1e10 * 1e300 = inf, its first stays finite
    "activations of layer 1 (last unit)": (
        [[1e300]], [[0]], 0.01, 0.0,
        course_parameters(([[1.0], [1e10]], [0, 0]), ([[1.0, 1.0]], [0]), ([[1.0]], [0])), 1),
    # layer 1 is 1e300 (finite); layer 2 is 1e10 * 1e300 = inf
    "activations of layer 2": (
        [[1e300]], [[0]], 0.01, 0.0,
        course_parameters(([[1.0], [1.0]], [0, 0]), ([[1e10, 1.0]], [0]), ([[1.0]], [0])), 2),
    # forward finite (A1 = 1e10, A2 = 1e10, Z3 = 1); learning_rate/m = 1e300 makes
    # dW3 = 1e300 * 0.27 * A2 = inf and dW1 = ... * X = inf while dW2 stays ~1e299: the last
    # layer counts (backward order)
    "gradients of layers 3 and 1": (
        [[1e20]], [[1]], 1e300, 0.0,
        course_parameters(([[1e-10]], [0]), ([[1.0]], [0]), ([[1e-10]], [0])), 3),
    # dW3 = -1e300 * 1e8 = -1e308 is finite; dW2 = 1e300 * A1 (1e10) and dW1 overflow
    "gradients of layers 2 and 1": (
        [[1e20]], [[1]], 1e300, 0.0,
        course_parameters(([[1e-10]], [0]), ([[1e-2]], [0]), ([[-1.0]], [0])), 2),
    # X = 0: dA1 = W2 dZ2 = inf, so dW1 = inf * 0 = nan; layer 2 holds the largest finite values
    "gradient of layer 1 only (nan)": (
        [[0.0]], [[0]], 1e10, 0.0,
        course_parameters(([[1.0]], [1e-300]), ([[1e150]], [0]), ([[1e150]], [0])), 1),
    # forward and gradients finite (Z1 = 1e308 - 1e308 + 0.5); the step W1 - dW1 = 1e308 + 1e308
    # overflows
    "weights of layer 1 after the step": (
        [[1.0], [-1.0]], [[1]], 1e308, 0.0,
        course_parameters(([[1e308, 1e308]], [0.5]), ([[-1.0]], [-10])), 1),
    # a negative L2 strength (not a regularizer: a way to make the step itself overflow) doubles
    # the weights of both layers: the first one counts
    "weights of layers 1 and 2 after the step": (
        [[0.0], [0.0]], [[1]], 1.0, -1.0,
        course_parameters(([[1e308, -1e308]], [-1]), ([[1e308]], [0])), 1),
    # every value finite, their sum (2e308) not: the layer with the largest values counts
    "finite entries whose sum overflows": (
        [[1.0]], [[1]], 0.01, 0.0,
        course_parameters(([[-1.0], [-1.0]], [0, 0]), ([[1e308, 1e308]], [0])), 2),
}


@pytest.mark.parametrize("case", sorted(DIVERGENCE_CASES))
def test_divergence_names_the_layer_where_it_started(case):
    X, Y, lr, lambd, params, layer = DIVERGENCE_CASES[case]
    X, Y = np.array(X), np.array(Y, dtype=float)
    dims = layer_dims_for(X.shape[0], [params[f"W{l}"].shape[0] for l in range(1, len(params) // 2)])
    cfg = TrainConfig(dims, learning_rate=lr, lambd=lambd, iterations=1, record_every=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DivergenceError) as info:
            train(X, Y, cfg, parameters=params)
    assert (info.value.iteration, info.value.layer) == (0, layer)
    assert str(info.value) == (
        f"training diverged at iteration 0: non-finite values (nan/inf) in layer {layer}; "
        "lower train.learning_rate or use a smaller init scale")


def test_a_dev_set_is_both_its_inputs_and_labels():
    X, Y = ring_data(30, seed=27)
    for dev in ({"X_dev": X}, {"Y_dev": Y}):
        with pytest.raises(ValueError) as info:
            train(X, Y, TrainConfig((2, 4, 1), iterations=5), **dev)
        assert str(info.value) == "X_dev and Y_dev go together: give both or neither"


# -- the result serializes itself (all but the parameter arrays) -------------------------------------
def same_numbers(a, b) -> bool:
    """Equal lists / numbers, nan equal to nan (json's NaN comes back as a float nan)."""
    return json.dumps(a) == json.dumps(b)


def through_json(result: TrainResult, parameters) -> TrainResult:
    return TrainResult.from_dict(json.loads(json.dumps(result.to_dict())), parameters)


def test_a_train_result_round_trips_through_json_with_its_parameters_saved_apart(tmp_path):
    X, Y = ring_data(30, seed=1, noise=0.2)
    X_dev, Y_dev = ring_data(300, seed=2, noise=0.2)
    cfg = TrainConfig((2, 30, 30, 1), "tanh", learning_rate=0.03, iterations=4000, record_every=50,
                      early_stopping_patience=5)
    result = train(X, Y, cfg, X_dev=X_dev, Y_dev=Y_dev)
    assert result.stopped_early and result.best_iteration is not None and result.dev_costs
    d = result.to_dict()
    assert "parameters" not in d and "network" not in d
    assert (d["layer_dims"], d["hidden_activation"]) == ([2, 30, 30, 1], "tanh")
    assert len(d["grad_norms"]) == len(d["iterations"]) and len(d["grad_norms"][0]) == 3
    np.savez(tmp_path / "parameters.npz", **result.parameters)
    with np.load(tmp_path / "parameters.npz") as saved:
        back = through_json(result, saved)
    for name in ("iterations", "costs", "dev_costs", "grad_norms", "final_cost", "iterations_run",
                 "best_iteration", "stopped_early", "train_seconds"):
        assert getattr(back, name) == getattr(result, name), name
    assert type(back.best_iteration) is int and type(back.final_cost) is float
    assert back.network.layer_dims == result.network.layer_dims
    assert back.network.hidden_activation == "tanh"
    assert np.array_equal(back.network.theta, result.network.theta)
    assert sorted(back.parameters) == sorted(result.parameters)
    for key, value in result.parameters.items():
        assert back.parameters[key].shape == value.shape and np.array_equal(back.parameters[key], value)
    assert np.array_equal(predict(back.network, X_dev), predict(result.parameters, X_dev, "tanh"))
    assert back.to_dict() == d


def test_nan_and_inf_in_a_train_result_round_trip_as_json_allows():
    X, Y = ring_data(10, seed=0)
    result = train(X, Y, TrainConfig((2, 3, 1), iterations=3, record_every=1))
    result = replace(result, costs=[math.inf, math.nan, 0.5], final_cost=math.nan,
                     grad_norms=[[math.inf, 1.0], [math.nan, -math.inf], [2.0, 3.0]], dev_costs=[],
                     best_iteration=None, train_seconds=math.inf)
    back = through_json(result, result.parameters)
    assert same_numbers(back.to_dict(), result.to_dict())
    assert math.isnan(back.final_cost) and back.costs[0] == math.inf and back.best_iteration is None
    assert back.iterations == [0, 1, 2] and back.iterations_run == 3 and not back.stopped_early


def test_from_dict_says_what_is_missing_or_does_not_fit():
    X, Y = ring_data(10, seed=0)
    result = train(X, Y, TrainConfig((2, 3, 1), iterations=2, record_every=1))
    d = result.to_dict()
    del d["dev_costs"]
    with pytest.raises(DataError) as info:
        TrainResult.from_dict(d, result.parameters)
    assert str(info.value) == (
        "training result dict has no key 'dev_costs' (keys: best_iteration, costs, final_cost, "
        "grad_norms, hidden_activation, iterations, iterations_run, layer_dims, stopped_early, "
        "train_seconds)")
    with pytest.raises(DataError, match=r"no key 'layer_dims' \(keys: none\)"):
        TrainResult.from_dict({}, result.parameters)
    with pytest.raises(DataError) as info:
        TrainResult.from_dict(result.to_dict(), {"W1": result.parameters["W1"]})
    assert str(info.value) == ("parameters ['W1'] do not fit layer_dims [2, 3, 1]: "
                               "expected ['W1', 'W2', 'b1', 'b2']")
    wrong = dict(result.parameters, W2=np.ones((1, 4)))
    with pytest.raises(ValueError, match="W2"):
        TrainResult.from_dict(result.to_dict(), wrong)



# -- passes in chunks (evaluation, the dev and final costs of mini-batch training) ---------------
def test_chunked_evaluation_gives_the_labels_and_accuracy_of_one_pass():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((4, 1001))
    Y = (X[0] * X[1] + 0.3 * rng.standard_normal(1001) > 0).astype(float).reshape(1, -1)
    params = initialize_parameters((4, 9, 6, 1), "he", rng=rng)
    expected = reference.accuracy(params, X, Y)
    labels = reference.predict(params, X)
    assert 0.3 < expected < 0.7
    for columns in (None, 1, 7, 64, 1000, 1001, 5000):
        assert accuracy(params, X, Y, "relu", columns) == expected, columns
        got = predict(params, X, "relu", columns)
        assert got.dtype == np.int64 and got.shape == (1, 1001)
        np.testing.assert_array_equal(got, labels)


def test_chunked_costs_and_the_workspaces_they_keep():
    from dlpractice.nn.network import chunked_cross_entropy, forward_chunks

    rng = np.random.default_rng(5)
    X = rng.standard_normal((3, 1001))
    Y = (rng.random((1, 1001)) < 0.5).astype(float)
    params = initialize_parameters((3, 8, 1), "xavier", rng=rng)
    net = Network.from_parameters(params)
    # one chunk: the very pass compute_cost makes, to the bit
    assert chunked_cross_entropy(net, X, Y) == compute_cost(params, X, Y)
    assert chunked_cross_entropy(net, X, Y, 64) == pytest.approx(reference.cost(params, X, Y),
                                                                 rel=1e-13)
    kept: dict = {}
    chunked_cross_entropy(net, X, Y, 64, kept)
    assert sorted(kept) == [1001 - 15 * 64, 64]  # a chunk's size and the remainder's
    assert all(ws.dZ == [None] for ws in kept.values())  # forward only: no gradient buffers
    kept[64].masks = [None, np.zeros((8, 64), dtype=bool)]  # dropout left by a training step
    assert chunked_cross_entropy(net, X, Y, 64, kept) == pytest.approx(
        reference.cost(params, X, Y), rel=1e-13)
    seen = [(cols.start, cols.stop, ws.m) for cols, ws in forward_chunks(net, X, Y, 400)]
    assert seen == [(0, 400, 400), (400, 800, 400), (800, 1001, 201)]


def test_mini_batch_training_costs_its_dev_and_final_sets_in_chunks():
    rng = np.random.default_rng(4)
    X, X_dev = rng.standard_normal((2, 700)), rng.standard_normal((2, 300))
    Y = (X[0] > X[1]).astype(float).reshape(1, -1)
    Y_dev = (X_dev[0] > X_dev[1]).astype(float).reshape(1, -1)
    init = initialize_parameters((2, 6, 1), "he", rng=np.random.default_rng(2))
    for batch in (128, None):
        cfg = TrainConfig((2, 6, 1), learning_rate=0.1, iterations=5, batch_size=batch, lambd=0.3,
                          record_every=2, seed=2)
        result = train(X, Y, cfg, X_dev=X_dev, Y_dev=Y_dev)
        assert result.dev_costs[0] == pytest.approx(
            reference.cost(init, X_dev, Y_dev, lambd=0.3), rel=1e-12)
        assert result.final_cost == pytest.approx(
            reference.cost(result.parameters, X, Y, lambd=0.3), rel=1e-12)
    # full batch: one pass each, the numbers of compute_cost to the bit
    assert result.dev_costs[0] == compute_cost(init, X_dev, Y_dev, lambd=0.3)
    assert result.final_cost == compute_cost(result.parameters, X, Y, lambd=0.3)
