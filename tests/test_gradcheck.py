"""Tests of dlpractice.gradcheck: the generic one-entry-at-a-time check and the vectorized check of
our network. Small nets (m = 10), so the whole file runs in a few seconds."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import course_reference as course
from dlpractice import gradcheck
from dlpractice.errors import GradientCheckError
from dlpractice.gradcheck import GradientCheckResult, check_network, gradient_check
from dlpractice.nn import compute_cost, cost_and_gradients, initialize_parameters
from dlpractice.nn.activations import ACTIVATIONS

ACTIVATION_NAMES = sorted(ACTIVATIONS)
INITS = ("zeros", "random", "he", "xavier", "glorot")
DIMS = [4, 5, 3, 1]


# -- helpers ------------------------------------------------------------------------------------
def data(n: int = 4, m: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, m))
    Y = (rng.random((1, m)) > 0.5).astype(np.float64)
    return X, Y


def params(init: str = "he", dims=DIMS, seed: int = 1,
           random_biases: bool = False) -> dict[str, np.ndarray]:
    """Parameters from ``init``. With zeros every pre-activation would sit on relu's kink (0), so
    the biases get small random values (also on request); weights stay as initialized."""
    p = initialize_parameters(dims, init, random_scale=1.0, rng=np.random.default_rng(seed))
    if init == "zeros" or random_biases:
        rng = np.random.default_rng(seed + 100)
        for key in p:
            if key.startswith("b"):
                p[key] = rng.normal(0.0, 0.5, p[key].shape)
    return p


def user_pair(X, Y, activation="tanh", lambd=0.0, l1=0.0, break_with=None):
    """A user's ``cost_fn``/``grad_fn``; ``break_with(grads)`` plants a bug in the gradient."""

    def cost_fn(p):
        return compute_cost(p, X, Y, activation, lambd, l1)

    def grad_fn(p):
        grads = cost_and_gradients(p, X, Y, activation, lambd, l1)[1]
        if break_with is not None:
            break_with(grads)
        return grads

    return cost_fn, grad_fn


def scale_dW2(grads):
    grads["dW2"] = grads["dW2"] * 1.1


def flip_db1(grads):
    grads["db1"] = -grads["db1"]


# -- the check passes on correct gradients ---------------------------------------------------------
@pytest.mark.parametrize("lambd", [0.0, 0.7])
@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_passes_for_every_activation_init_and_l2(activation, init, lambd):
    X, Y = data()
    p = params(init)
    fast = check_network(p, X, Y, activation, lambd=lambd)
    assert fast.passed, fast.report()
    # The vectorized check computes each cost change without cancellation: what is left of the
    # difference is the central scheme's O(eps²) truncation, far below the threshold.
    assert fast.difference < 1e-12, fast.report()
    loop = gradient_check(*user_pair(X, Y, activation, lambd), p)
    assert loop.passed, loop.report()


def test_l1_term_is_checked():
    X, Y = data()
    p = params("he")
    result = check_network(p, X, Y, "relu", lambd=0.3, l1=0.5)
    assert result.passed and result.difference < 1e-12, result.report()
    assert gradient_check(*user_pair(X, Y, "relu", 0.3, 0.5), p).passed


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_deeper_network(activation):
    """Two dense stages after the perturbed layer (the matmul path of the vectorized check).

    Random biases: with zero ones, an example whose layer-1 units are all off has Z2 = 0 exactly,
    on relu's kink, and ±eps on b2 then lands on both sides of it (a true 5e-8 difference)."""
    dims = [3, 4, 4, 3, 1]
    X, Y = data(n=3)
    p = params("xavier", dims, random_biases=True)
    fast = check_network(p, X, Y, activation, lambd=0.2)
    loop = gradient_check(*user_pair(X, Y, activation, 0.2), p)
    assert fast.passed and fast.difference < 1e-12, fast.report()
    assert loop.passed
    for key in fast.gradapprox:
        np.testing.assert_allclose(fast.gradapprox[key], loop.gradapprox[key], rtol=0, atol=1e-8)


# -- it catches and names a wrong gradient ---------------------------------------------------------
@pytest.mark.parametrize(("bug", "wrong"), [(scale_dW2, "W2"), (flip_db1, "b1")])
def test_generic_check_catches_and_names_a_wrong_array(bug, wrong):
    X, Y = data()
    result = gradient_check(*user_pair(X, Y, "tanh", break_with=bug), params("xavier"))
    assert not result.passed
    assert result.worst_array == wrong
    assert result.per_array[wrong] > result.threshold
    for name, diff in result.per_array.items():
        if name != wrong:
            assert diff < result.threshold, result.report()


@pytest.mark.parametrize(("bug", "wrong"), [(scale_dW2, "W2"), (flip_db1, "b1")])
def test_network_check_catches_and_names_a_wrong_array(monkeypatch, bug, wrong):
    def broken(*args, **kwargs):
        cost, grads = cost_and_gradients(*args, **kwargs)
        bug(grads)
        return cost, grads

    monkeypatch.setattr(gradcheck, "cost_and_gradients", broken)
    X, Y = data()
    result = check_network(params("he"), X, Y, "relu")
    assert not result.passed and result.worst_array == wrong
    lines = result.report().splitlines()
    flagged = [line for line in lines if "<-- worst" in line]
    assert len(flagged) == 1 and flagged[0].split()[0] == wrong
    assert "FAILED" in lines[-1] and f"worst array {wrong}" in lines[-1]


def test_report_and_summary_layout():
    X, Y = data()
    result = check_network(params("he"), X, Y)
    lines = result.report().splitlines()
    assert [line.split()[0] for line in lines[1:-1]] == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert lines[-1] == result.summary()
    assert "\n" not in result.summary() and result.summary().startswith("gradient check passed")
    assert isinstance(result, GradientCheckResult)
    with pytest.raises(AttributeError):
        result.difference = 0.0  # frozen


# -- the generic check's contract ----------------------------------------------------------------
def test_generic_check_accepts_gradients_keyed_like_the_parameters():
    X, Y = data()
    p = params("he")
    cost_fn, grad_fn = user_pair(X, Y, "relu")
    by_d = gradient_check(cost_fn, grad_fn, p)
    by_name = gradient_check(cost_fn, lambda q: {k[1:]: v for k, v in grad_fn(q).items()}, p)
    assert by_d.passed and by_name.passed
    assert by_d.per_array == by_name.per_array


def test_generic_check_never_touches_the_callers_arrays():
    X, Y = data()
    p = params("he")
    before = {k: v.copy() for k, v in p.items()}
    seen = []

    def cost_fn(q):
        seen.append(any(q[k] is p[k] for k in p))
        q["W1"] += 0.0  # a careless cost function writing to its argument
        return compute_cost(q, X, Y)

    gradient_check(cost_fn, lambda q: cost_and_gradients(q, X, Y)[1], p)
    assert not any(seen)
    for k in p:
        np.testing.assert_array_equal(p[k], before[k])


def test_generic_check_orders_course_keys_and_keeps_other_orders():
    X, Y = data()
    p = params("he", [4, 3, 1])
    shuffled = {k: p[k] for k in ("b2", "W1", "W2", "b1")}
    result = gradient_check(*user_pair(X, Y, "relu"), shuffled)
    assert list(result.per_array) == ["W1", "b1", "W2", "b2"]

    w = np.array([0.5, -1.0, 2.0])
    result = gradient_check(lambda q: float(np.sum(q["w"] ** 3) + q["c"][0] ** 2),
                            lambda q: {"w": 3 * q["w"] ** 2, "c": 2 * q["c"]},
                            {"w": w, "c": np.array([0.3])})
    assert list(result.per_array) == ["w", "c"] and result.passed


def test_generic_check_reports_a_missing_or_misshaped_gradient():
    X, Y = data()
    cost_fn, grad_fn = user_pair(X, Y, "relu")
    with pytest.raises(GradientCheckError, match="'b2'"):
        gradient_check(cost_fn, lambda q: {k: v for k, v in grad_fn(q).items() if k != "db2"},
                       params("he"))
    with pytest.raises(GradientCheckError, match="shape"):
        gradient_check(cost_fn, lambda q: {**grad_fn(q), "dW1": np.zeros(3)}, params("he"))
    with pytest.raises(GradientCheckError, match="method"):
        gradient_check(cost_fn, grad_fn, params("he"), method="backward")


def test_both_checks_agree_with_the_course_loop():
    """Same cost and gradient: the course's gradient_check_n and ours give the same verdict, and
    the approximations agree to the loop's rounding noise (~ulp(J)/2eps per entry)."""
    X, Y = data()
    p = params("he")
    cost, cache = course.forward_propagation_n(X, Y, p)
    grads = course.backward_propagation_n(X, Y, cache, p)
    assert course.gradient_check_n(p, grads, X, Y) < 2e-7
    course_approx = course.gradapprox_n(p, X, Y).ravel()
    loop = gradient_check(lambda q: course.forward_propagation_n(X, Y, q)[0], lambda q: grads, p)
    fast = check_network(p, X, Y)
    assert loop.passed and fast.passed
    noise = np.spacing(cost) / 2e-7
    for result in (loop, fast):
        approx = np.concatenate([a.ravel() for a in result.gradapprox.values()])
        assert np.max(np.abs(approx - course_approx)) < 16 * noise


# -- dropout, methods, subsets ---------------------------------------------------------------------
def test_dropout_is_refused():
    X, Y = data()
    with pytest.raises(GradientCheckError, match="keep_prob") as info:
        check_network(params("he"), X, Y, keep_prob=0.8)
    assert "\n" not in str(info.value)


def test_bad_settings_are_refused():
    X, Y = data()
    for kwargs in ({"method": "backward"}, {"epsilon": 0.0}, {"threshold": -1.0},
                   {"max_examples": 0}):
        with pytest.raises(GradientCheckError):
            check_network(params("he"), X, Y, **kwargs)


def test_forward_differences_are_orders_of_magnitude_worse_than_central():
    X, Y = data()
    p = params("xavier")
    central = check_network(p, X, Y, "tanh")
    forward = check_network(p, X, Y, "tanh", method="forward")
    assert forward.method == "forward" and central.passed
    assert forward.difference > 1e4 * central.difference
    # ... because forward's error is O(eps) and central's O(eps²): a 10x larger epsilon gives
    # ~10x and ~100x the differences.
    f_big = check_network(p, X, Y, "tanh", method="forward", epsilon=1e-6)
    c_small = check_network(p, X, Y, "tanh", epsilon=1e-5)
    c_big = check_network(p, X, Y, "tanh", epsilon=1e-4)
    assert 5 < f_big.difference / forward.difference < 20
    assert 50 < c_big.difference / c_small.difference < 200
    # The generic loop offers the same choice.
    loop_forward = gradient_check(*user_pair(X, Y, "tanh"), p, method="forward")
    assert loop_forward.difference > forward.difference / 10


def test_vectorized_check_agrees_with_the_generic_loop():
    X, Y = data()
    for activation in ACTIVATION_NAMES:
        p = params("glorot")
        fast = check_network(p, X, Y, activation, lambd=0.4)
        loop = gradient_check(*user_pair(X, Y, activation, 0.4), p)
        assert list(fast.per_array) == list(loop.per_array)
        for key in fast.per_array:
            # The loop's differences are its rounding noise (~1e-9 per entry), the vectorized
            # ones ~1e-15: close in absolute terms, and the approximations themselves agree.
            assert abs(fast.per_array[key] - loop.per_array[key]) < 1e-7
            np.testing.assert_allclose(fast.gradapprox[key], loop.gradapprox[key],
                                       rtol=0, atol=1e-8)


def test_large_epsilon_and_large_weights_use_the_exact_loss_change():
    """|logit change| above the Taylor range: log1p(σ expm1(d)) instead of the cubic."""
    X, Y = data()
    p = params("random")  # scale 1.0
    for activation in ACTIVATION_NAMES:
        fast = check_network(p, X, Y, activation, epsilon=1e-3)
        loop = gradient_check(*user_pair(X, Y, activation), p, epsilon=1e-3)
        for key in fast.gradapprox:
            np.testing.assert_allclose(fast.gradapprox[key], loop.gradapprox[key],
                                       rtol=0, atol=1e-9)


def test_chunking_does_not_change_the_result():
    X, Y = data()
    p = params("he", [4, 6, 5, 1])
    whole = check_network(p, X, Y, "leaky_relu")
    tiny = check_network(p, X, Y, "leaky_relu", max_chunk_bytes=1)
    for key in whole.gradapprox:
        np.testing.assert_allclose(tiny.gradapprox[key], whole.gradapprox[key], rtol=1e-12,
                                   atol=1e-18)


def test_max_examples_checks_a_seeded_subset():
    X, Y = data(m=40)
    p = params("he")
    result = check_network(p, X, Y, max_examples=12, seed=3)
    assert result.passed
    keep = np.sort(np.random.default_rng(3).choice(40, size=12, replace=False))
    same = check_network(p, X[:, keep], Y[:, keep])
    assert result.per_array == same.per_array
    for key in result.grad:
        np.testing.assert_array_equal(result.grad[key], same.grad[key])
    other = check_network(p, X, Y, max_examples=12, seed=4)
    assert not np.array_equal(other.grad["W1"], result.grad["W1"])
    everything = check_network(p, X, Y, max_examples=40)
    np.testing.assert_array_equal(everything.grad["W1"], check_network(p, X, Y).grad["W1"])
