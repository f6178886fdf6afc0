"""Tests of dlpractice.gradcheck: the generic one-entry-at-a-time check and the vectorized check of
our network. Small nets (m = 10), so the whole file runs in a few seconds."""

from __future__ import annotations

import json
import warnings
from decimal import Decimal, localcontext

import numpy as np
import pytest

from benchmarks import course_reference as course
from dlpractice import gradcheck
from dlpractice.errors import DataError, GradientCheckError
from dlpractice.gradcheck import GradientCheckResult, check_network, gradient_check
from dlpractice.nn import compute_cost, cost_and_gradients, initialize_parameters
from dlpractice.nn.activations import ACTIVATIONS
from tests import reference

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


def break_backprop(monkeypatch, bug) -> None:
    """check_network's backprop gradients go through ``bug`` (a wrong backward pass)."""
    def broken(*args, **kwargs):
        cost, grads = cost_and_gradients(*args, **kwargs)
        bug(grads)
        return cost, grads

    monkeypatch.setattr(gradcheck, "cost_and_gradients", broken)


@pytest.mark.parametrize(("bug", "wrong"), [(scale_dW2, "W2"), (flip_db1, "b1")])
def test_network_check_catches_and_names_a_wrong_array(monkeypatch, bug, wrong):
    break_backprop(monkeypatch, bug)
    X, Y = data()
    result = check_network(params("he"), X, Y, "relu")
    assert not result.passed and result.worst_array == wrong
    lines = result.report().splitlines()
    flagged = [line for line in lines if "<-- worst" in line]
    assert len(flagged) == 1 and flagged[0].split()[0] == wrong
    assert "FAILED" in lines[-1] and f"worst array {wrong}" in lines[-1]


def slightly_off_db1_badly_off_dW2(grads):
    grads["db1"] = grads["db1"] * 1.01
    grads["dW2"] = grads["dW2"] * 2.0


def _blames_the_worst(result: GradientCheckResult) -> None:
    """b1 (1% off) comes first and is over the threshold too; W2 (100% off) is the worst."""
    expected = {name: float(np.linalg.norm(result.grad[name] - result.gradapprox[name])
                            / (np.linalg.norm(result.grad[name])
                               + np.linalg.norm(result.gradapprox[name])))
                for name in result.per_array}
    assert result.per_array == pytest.approx(expected, rel=1e-9, abs=1e-18)
    assert expected["b1"] > result.threshold and expected["W2"] > 10 * expected["b1"]
    assert result.worst_array == "W2" and not result.passed
    flagged = [line.split()[0] for line in result.report().splitlines() if "<-- worst" in line]
    assert flagged == ["W2"]
    assert result.summary().endswith("worst array W2)")


def test_generic_check_blames_the_worst_array_not_the_first_wrong_one():
    X, Y = data()
    _blames_the_worst(gradient_check(
        *user_pair(X, Y, "tanh", break_with=slightly_off_db1_badly_off_dW2), params("xavier")))


def test_network_check_blames_the_worst_array_not_the_first_wrong_one(monkeypatch):
    break_backprop(monkeypatch, slightly_off_db1_badly_off_dW2)
    X, Y = data()
    _blames_the_worst(check_network(params("he", random_biases=True), X, Y, "tanh"))


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


# -- relu kinks: entries whose ±eps step crosses one are left out of the comparison -------------
def entry_count(p: dict[str, np.ndarray]) -> int:
    return sum(v.size for v in p.values())


def kink_oracle(p, X, activation="relu", epsilon=gradcheck.EPSILON,
                layers=None, steps=None) -> dict[str, np.ndarray]:
    """Brute force: perturb each entry by ±eps, recompute every hidden pre-activation and mark the
    entry where some z and its perturbed value lie on different sides of 0 (or z == 0 moves).
    ``layers`` (1-based hidden layers) looks at those only; ``steps`` replaces (eps, -eps)."""
    act = ACTIVATIONS[activation]
    L = len(p) // 2

    def hidden_Z(q):
        A, Zs = X, []
        for l in range(1, L):
            Z = q[f"W{l}"] @ A + q[f"b{l}"]
            Zs.append(Z.copy())
            act(Z)
            A = Z
        return Zs

    base = hidden_Z(p)
    mask = {}
    for key, value in p.items():
        mask[key] = np.zeros(value.shape, dtype=bool)
        for index in np.ndindex(value.shape):
            for step in (epsilon, -epsilon) if steps is None else steps:
                q = {k: v.copy() for k, v in p.items()}
                q[key][index] += step
                for l, (z, z_new) in enumerate(zip(base, hidden_Z(q), strict=True), 1):
                    crossed = (((z > 0) & (z_new < 0)) | ((z < 0) & (z_new > 0))
                               | ((z == 0) & (z_new != 0)))
                    if (layers is None or l in layers) and np.any(crossed):
                        mask[key][index] = True
    return mask


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_zeros_init_relu_net_passes_with_its_kinks_skipped(activation):
    """All weights 0: every hidden z is exactly 0. A step of W1, b1 or b2 moves a layer's z off 0
    (skipped); W2, W3 multiply activations that are 0, and b3 feeds no hidden unit."""
    X, Y = data(n=2)
    p = initialize_parameters([2, 10, 5, 1], "zeros")
    result = check_network(p, X, Y, activation)
    assert result.passed and result.difference < 1e-12, result.report()
    assert result.kink_arrays == {"W1": 20, "b1": 10, "W2": 0, "b2": 5, "W3": 0, "b3": 0}
    assert result.kinks == 35 and result.checked == entry_count(p) - 35 == 56
    for key in p:
        assert result.kink_mask[key].shape == p[key].shape
        assert result.kink_mask[key].all() == (key in ("W1", "b1", "b2"))
    summary = result.summary()
    assert "35 entries skipped" in summary and "relu kink" in summary and "56 checked" in summary
    assert "\n" not in summary
    assert result.report().splitlines()[0].split()[-1] == "skipped"


def test_zero_biases_put_a_narrow_layer_on_its_kink():
    """He init, zero biases, 2 units in layer 1: an example with both off has Z2 = b2 = 0, and
    ±eps on b2 lands on both sides of it (backprop 0, central difference 1/2). Once a failure."""
    X, Y = data(n=2)
    p = params("he", [2, 2, 3, 1])
    result = check_network(p, X, Y, "relu")
    assert result.passed and result.difference < 1e-12, result.report()
    assert result.kink_arrays["b2"] == 3 and result.kinks == 3
    everything = gradcheck.relative_difference(
        np.concatenate([g.ravel() for g in result.grad.values()]),
        np.concatenate([g.ravel() for g in result.gradapprox.values()]))
    assert everything > result.threshold  # what the check reported before skipping kinks


@pytest.mark.parametrize(("dims", "random_biases"), [(DIMS, True), ([2, 2, 3, 1], False)])
def test_a_wrong_gradient_is_still_caught_next_to_kinks(monkeypatch, dims, random_biases):
    def broken(*args, **kwargs):
        cost, grads = cost_and_gradients(*args, **kwargs)
        scale_dW2(grads)
        return cost, grads

    monkeypatch.setattr(gradcheck, "cost_and_gradients", broken)
    X, Y = data(n=dims[0])
    result = check_network(params("he", dims, random_biases=random_biases), X, Y, "relu")
    assert not result.passed and result.worst_array == "W2", result.report()
    assert result.per_array["W2"] > 1e-2 and result.kink_arrays["W2"] == 0
    assert (result.kinks > 0) == (not random_biases)  # the second net skips b2, still fails
    assert "FAILED" in result.summary() and "worst array W2" in result.summary()


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_one_pre_activation_exactly_at_the_kink(activation):
    """Z1[1, 0] = 0 exactly (dyadic W1 row, input column and bias: every sum is exact). Exactly
    the entries that move it are skipped: W1[1, :] (inputs nonzero) and b1[1]."""
    X, Y = data(n=3)
    X[:, 0] = [1.5, -0.75, 2.0]
    p = params("he", [3, 4, 3, 1], random_biases=True)
    p["W1"][1] = [0.5, 1.25, -0.25]
    p["b1"][1, 0] = -(p["W1"][1] @ X[:, 0])
    assert (p["W1"] @ X + p["b1"])[1, 0] == 0.0
    result = check_network(p, X, Y, activation)
    assert result.kinks >= 1
    assert result.kink_arrays == {"W1": 3, "b1": 1, "W2": 0, "b2": 0, "W3": 0, "b3": 0}
    assert result.kink_mask["W1"][1].all() and result.kink_mask["b1"][1, 0]
    assert result.passed and result.difference < 1e-12, result.report()
    assert max(result.per_array.values()) < 1e-12
    # Kept in, those entries see slope 1/2 (leaky: 0.505) where backprop uses 0 (0.01).
    for key in ("W1", "b1"):
        assert gradcheck.relative_difference(result.grad[key], result.gradapprox[key]) > 1e-3
    for key, mask in kink_oracle(p, X, activation).items():
        np.testing.assert_array_equal(result.kink_mask[key], mask, err_msg=key)


@pytest.mark.parametrize("dims", [[3, 4, 4, 1], [3, 4, 4, 3, 1]])
@pytest.mark.parametrize("max_chunk_bytes", [gradcheck.MAX_CHUNK_BYTES, 1])
@pytest.mark.parametrize("shift", [0.0, 2.0**-24])
def test_kinks_in_deeper_layers_match_brute_force(dims, max_chunk_bytes, shift):
    """Small integers and quarters everywhere: many pre-activations exactly 0, in every layer,
    including layer-2 ones reached through layer-1 units; with ``shift`` on the hidden biases
    they sit at 6e-8 instead, where only steps larger than that (not all) cross. The skipped
    entries are exactly those a brute-force recomputation of every hidden Z finds; the rest
    agree to rounding."""
    p, X, Y = dyadic_relu_net(dims, shift)
    oracle = kink_oracle(p, X)
    result = check_network(p, X, Y, "relu", max_chunk_bytes=max_chunk_bytes)
    for key, mask in oracle.items():
        np.testing.assert_array_equal(result.kink_mask[key], mask, err_msg=key)
    assert result.kinks == sum(int(m.sum()) for m in oracle.values()) > 0
    assert result.checked == entry_count(p) - result.kinks > 0
    # Entries that cross only deeper kinks, reached through the rank-one and dense stages:
    deep = kink_oracle(p, X, layers=range(2, len(dims) - 1))
    assert (deep["W1"] & ~kink_oracle(p, X, layers=(1,))["W1"]).any() and deep["W2"].any()
    if len(dims) == 5 and not shift:
        last = kink_oracle(p, X, layers=(3,))
        assert (last["W1"] & ~kink_oracle(p, X, layers=(1, 2))["W1"]).any()
    assert result.passed and result.difference < 1e-12, result.report()


@pytest.mark.parametrize("init", ["zeros", "he"])
def test_smooth_activations_have_no_kinks(init):
    X, Y = data()
    p = initialize_parameters(DIMS, init, rng=np.random.default_rng(1))
    for activation in ("tanh", "sigmoid"):
        result = check_network(p, X, Y, activation)
        assert result.passed and result.kinks == 0 and result.checked == entry_count(p)
        assert not any(result.kink_arrays.values())
        assert "skipped" not in result.report()


def test_generic_check_knows_no_kinks():
    X, Y = data()
    p = params("he")
    result = gradient_check(*user_pair(X, Y, "relu"), p)
    assert result.kinks == 0 and result.kink_arrays == {} and result.checked == entry_count(p)


def test_when_every_entry_is_skipped_nothing_was_checked():
    grad = {"W1": np.array([[1.0, 2.0]]), "b1": np.array([[3.0]])}
    approx = {"W1": np.array([[1.5, 2.5]]), "b1": np.array([[0.0]])}
    result = GradientCheckResult(
        difference=0.0, passed=True, threshold=2e-7, epsilon=1e-7,
        per_array={"W1": 0.0, "b1": 0.0}, grad=grad, gradapprox=approx, kinks=3,
        kink_arrays={"W1": 2, "b1": 1}, checked=0,
        kink_mask={k: np.ones(v.shape, dtype=bool) for k, v in grad.items()})
    assert result.nothing_checked
    assert result.summary() == (
        "gradient check passed, but nothing could be checked: all 3 entries were skipped, their "
        "perturbation crosses a relu kink, where finite differences are not a gradient (central "
        "differences, epsilon 1e-07)")
    assert result.report().splitlines()[-1] == result.summary()
    # Rebuilt from a saved report (no counts): no claim about kinks either way.
    rebuilt = GradientCheckResult(difference=0.0, passed=True, threshold=2e-7, epsilon=1e-7,
                                  per_array={"W1": 0.0})
    assert not rebuilt.nothing_checked and "skipped" not in rebuilt.summary()


def test_an_exactly_zero_gradient_is_not_a_failure():
    """Zeros init on a balanced batch: db3 is exactly 0 and its estimate is rounding noise."""
    from dlpractice.gradcheck import relative_difference

    X = np.random.default_rng(0).standard_normal((2, 8))
    Y = np.array([[0, 1] * 4], dtype=float)
    params = initialize_parameters([2, 4, 3, 1], "zeros")
    result = check_network(params, X, Y)
    assert result.passed and result.per_array["b3"] < 1e-8
    assert relative_difference(np.zeros(3), np.full(3, 1e-18)) < 1e-9
    assert relative_difference(np.ones(3), 1.1 * np.ones(3)) > 1e-2


# -- what the user reads: the whole summary and report for results whose numbers are known --------
STEP = 2.0**-20  # a dyadic epsilon: with dyadic parameters every step and cost below is exact


def linear_pair(wrong_db1: float):
    """J = 3 W1[0, 0] − 2 W1[0, 1] + 4 b1: its differences are exactly (3, −2) and 4 for any step.
    The gradient returned has db1 = ``wrong_db1``."""

    def cost_fn(p):
        return 3.0 * p["W1"][0, 0] - 2.0 * p["W1"][0, 1] + 4.0 * p["b1"][0, 0]

    def grad_fn(p):
        return {"dW1": np.array([[3.0, -2.0]]), "db1": np.array([[wrong_db1]])}

    return cost_fn, grad_fn


LINEAR_PARAMETERS = {"W1": np.array([[0.5, -1.0]]), "b1": np.array([[0.25]])}


@pytest.mark.parametrize("method", ["central", "forward"])
def test_report_of_a_failed_check_with_known_numbers(method):
    """db1 = 2 where the differences give 4: b1 differs by 2/(2 + 4), everything by
    2 / (√17 + √29) = 0.2103; W1 matches (norms √13 = 3.6056)."""
    result = gradient_check(*linear_pair(2.0), LINEAR_PARAMETERS, epsilon=STEP, method=method)
    np.testing.assert_array_equal(result.gradapprox["W1"], [[3.0, -2.0]])
    np.testing.assert_array_equal(result.gradapprox["b1"], [[4.0]])
    assert result.difference == pytest.approx(2 / (np.sqrt(17) + np.sqrt(29)), rel=1e-15)
    assert result.per_array == {"W1": 0.0, "b1": pytest.approx(1 / 3, rel=1e-15)}
    assert result.method == method and not result.passed
    assert result.report() == "\n".join([
        "array       size      |grad|  |gradapprox|  difference",
        "W1             2  3.6056e+00    3.6056e+00   0.000e+00",
        "b1             1  2.0000e+00    4.0000e+00   3.333e-01  <-- worst",
        f"gradient check FAILED: difference 2.103e-01 >= 2e-07 ({method} differences, "
        "epsilon 9.5e-07; worst array b1)",
    ])


def test_report_of_a_passed_check_with_known_numbers():
    result = gradient_check(*linear_pair(4.0), LINEAR_PARAMETERS, epsilon=STEP, threshold=1e-3)
    assert result.passed and result.difference == 0.0
    assert result.report() == "\n".join([
        "array       size      |grad|  |gradapprox|  difference",
        "W1             2  3.6056e+00    3.6056e+00   0.000e+00",
        "b1             1  4.0000e+00    4.0000e+00   0.000e+00",
        "gradient check passed: difference 0.000e+00 < 0.001 (central differences, "
        "epsilon 9.5e-07; worst array W1)",
    ])


def test_a_difference_equal_to_the_threshold_fails():
    """J = 3w with the gradient 1: the difference is exactly |1 − 3| / (1 + 3) = 0.5."""
    pair = (lambda p: 3.0 * p["w"][0], lambda p: {"w": np.array([1.0])})
    at = gradient_check(*pair, {"w": np.array([2.0])}, epsilon=STEP, threshold=0.5)
    assert at.difference == 0.5 and not at.passed
    assert at.summary() == ("gradient check FAILED: difference 5.000e-01 >= 0.5 (central "
                            "differences, epsilon 9.5e-07; worst array w)")
    above = gradient_check(*pair, {"w": np.array([2.0])}, epsilon=STEP, threshold=0.75)
    assert above.passed
    assert above.summary() == ("gradient check passed: difference 5.000e-01 < 0.75 (central "
                               "differences, epsilon 9.5e-07; worst array w)")


def kinked_result(**changes) -> GradientCheckResult:
    """A result as check_network makes it: W1[1, 0] and b1[0] were skipped at a kink (their
    approximations 1.5 and 0.5 are no derivative); every compared entry agrees."""
    fields = dict(
        difference=0.0, passed=True, threshold=2e-7, epsilon=1e-7,
        per_array={"W1": 0.0, "b1": 0.0, "W2": 0.0},
        grad={"W1": np.array([[3.0, 4.0], [1.0, 2.0]]), "b1": np.array([[0.0], [2.0]]),
              "W2": np.array([[6.0, 8.0]])},
        gradapprox={"W1": np.array([[3.0, 4.0], [1.5, 2.0]]), "b1": np.array([[0.5], [2.0]]),
                    "W2": np.array([[6.0, 8.0]])},
        kinks=2, kink_arrays={"W1": 1, "b1": 1, "W2": 0}, checked=5,
        kink_mask={"W1": np.array([[False, False], [True, False]]),
                   "b1": np.array([[True], [False]]), "W2": np.array([[False, False]])})
    fields.update(changes)
    return GradientCheckResult(**fields)


def test_report_with_skipped_entries_shows_the_norms_of_the_compared_ones():
    """W1 keeps 3, 4, 2 (norm √29 = 5.3852) in both columns: the skipped 1 vs 1.5 is left out."""
    result = kinked_result()
    assert result.report() == "\n".join([
        "array       size      |grad|  |gradapprox|  difference skipped",
        "W1             4  5.3852e+00    5.3852e+00   0.000e+00       1",
        "b1             2  2.0000e+00    2.0000e+00   0.000e+00       1",
        "W2             2  1.0000e+01    1.0000e+01   0.000e+00       0",
        "gradient check passed: difference 0.000e+00 < 2e-07 (central differences, epsilon "
        "1e-07; worst array W1); 2 entries skipped (W1 1, b1 1; 5 checked): their perturbation "
        "crosses a relu kink, where finite differences are not a gradient",
    ])


def test_report_of_a_partly_rebuilt_result():
    """Arrays without saved values get empty size and norm columns, arrays without a kink count
    count 0; one skipped entry is singular."""
    result = GradientCheckResult(
        difference=0.25, passed=False, threshold=2e-7, epsilon=1e-7,
        per_array={"W1": 0.25, "b1": 0.0},
        grad={"b1": np.array([[1.0], [2.0]])}, gradapprox={"b1": np.array([[1.0], [3.0]])},
        kinks=1, kink_arrays={"b1": 1}, checked=3,
        kink_mask={"W1": np.array([[True, False]]), "b1": np.array([[False], [True]])})
    assert result.report() == "\n".join([
        "array       size      |grad|  |gradapprox|  difference skipped",
        "W1                                           2.500e-01       0  <-- worst",
        "b1             2  1.0000e+00    1.0000e+00   0.000e+00       1",
        "gradient check FAILED: difference 2.500e-01 >= 2e-07 (central differences, epsilon "
        "1e-07; worst array W1); 1 entry skipped (b1 1; 3 checked): their perturbation crosses "
        "a relu kink, where finite differences are not a gradient",
    ])
    rebuilt = GradientCheckResult(difference=0.0, passed=True, threshold=2e-7, epsilon=1e-7,
                                  per_array={"W1": 0.0})
    assert rebuilt.report() == "\n".join([
        "array       size      |grad|  |gradapprox|  difference",
        "W1                                           0.000e+00",
        "gradient check passed: difference 0.000e+00 < 2e-07 (central differences, epsilon "
        "1e-07; worst array W1)",
    ])


def test_two_skipped_entries_are_plural_and_listed_per_array():
    result = kinked_result(kink_arrays={"W1": 0, "b1": 2, "W2": 0},
                           kink_mask={"b1": np.array([[True], [True]])})
    assert result.summary().endswith(
        "; 2 entries skipped (b1 2; 5 checked): their perturbation crosses a relu kink, where "
        "finite differences are not a gradient")


# -- refused settings: the one-line message names the value and what is allowed --------------------
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"method": "backward"}, "method 'backward' is not one of central, forward"),
    ({"epsilon": 0.0}, "epsilon 0.0 must be a positive finite number"),
    ({"epsilon": float("inf")}, "epsilon inf must be a positive finite number"),
    ({"threshold": 0.0}, "threshold 0.0 must be a positive finite number"),
    ({"threshold": float("nan")}, "threshold nan must be a positive finite number"),
    ({"max_examples": 0}, "max_examples 0 must be >= 1 (or None for all 10)"),
    ({"keep_prob": 0.8}, "gradient checking needs keep_prob=1 (dropout off); got keep_prob=0.8: "
                         "dropout draws a new mask per evaluation, so the cost is not a function "
                         "of the weights"),
])
def test_refused_settings_say_why(kwargs, message):
    X, Y = data()
    with pytest.raises(GradientCheckError) as info:
        check_network(params("he"), X, Y, **kwargs)
    assert str(info.value) == message
    if "max_examples" not in kwargs and "keep_prob" not in kwargs:
        with pytest.raises(GradientCheckError) as info:
            gradient_check(*user_pair(X, Y), params("he"), **kwargs)
        assert str(info.value) == message


def test_generic_check_says_what_grad_fn_returned():
    X, Y = data()
    p = params("he", [4, 3, 1])
    cost_fn, grad_fn = user_pair(X, Y, "relu")
    cases = [
        (lambda q: list(grad_fn(q).values()),
         "grad_fn must return a dict of arrays keyed 'dW1' or 'W1', ...; got <class 'list'>"),
        (lambda q: {k: v for k, v in grad_fn(q).items() if k != "db2"},
         "grad_fn returned no gradient for 'b2' (expected key 'db2' or 'b2'; got dW1, db1, dW2)"),
        (lambda q: {},
         "grad_fn returned no gradient for 'W1' (expected key 'dW1' or 'W1'; got none)"),
    ]
    for bad_grad_fn, message in cases:
        with pytest.raises(GradientCheckError) as info:
            gradient_check(cost_fn, bad_grad_fn, p)
        assert str(info.value) == message


# -- the generic check's inputs and outputs --------------------------------------------------------
def test_generic_check_works_in_float64_on_integer_parameters():
    """Integer weights are copied to float64 before being perturbed by 1e-7 (an integer array
    would round the step away)."""
    calls = []

    def cost_fn(q):
        calls.append(q["w"].dtype)
        return float(np.sum(q["w"] ** 2))

    w = np.array([1, -2, 3])
    result = gradient_check(cost_fn, lambda q: {"w": 2 * q["w"]}, {"w": w})
    assert set(calls) == {np.dtype(np.float64)}
    np.testing.assert_allclose(result.gradapprox["w"], [2.0, -4.0, 6.0], rtol=1e-8)
    np.testing.assert_array_equal(result.grad["w"], [2.0, -4.0, 6.0])
    assert result.grad["w"].dtype == np.float64 and result.passed


def test_generic_check_takes_gradients_of_any_shape_and_type_with_the_right_size():
    """A flat list of ints for a (2, 2) weight: compared, and reported, in the weight's shape."""
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    result = gradient_check(lambda q: float(np.sum(q["W1"] ** 2)),
                            lambda q: {"dW1": [2, 4, 6, 8]}, {"W1": W})
    assert result.passed
    assert result.grad["W1"].shape == (2, 2) and result.grad["W1"].dtype == np.float64
    np.testing.assert_array_equal(result.grad["W1"], 2 * W)
    np.testing.assert_allclose(result.gradapprox["W1"], 2 * W, rtol=1e-8)


def test_generic_check_evaluates_the_cost_twice_per_entry_or_once_plus_one():
    """Central: J(θ + ε e_i) and J(θ − ε e_i) per entry. Forward: J(θ + ε e_i) per entry and J(θ)
    once. For J = Σ w², forward gives exactly 2w + ε at dyadic w and ε."""
    w = np.array([0.5, -1.0, 2.0])
    for method, calls, expected in (("central", 6, 2 * w), ("forward", 4, 2 * w + STEP)):
        seen = []

        def cost_fn(q, seen=seen):
            seen.append(q["w"].copy())
            return float(np.sum(q["w"] ** 2))

        result = gradient_check(cost_fn, lambda q: {"w": 2 * q["w"]}, {"w": w}, epsilon=STEP,
                                method=method)
        assert len(seen) == calls, method
        np.testing.assert_array_equal(result.gradapprox["w"], expected)
        assert result.per_array["w"] == pytest.approx(
            np.linalg.norm(expected - 2 * w) / (np.linalg.norm(2 * w) + np.linalg.norm(expected)),
            abs=1e-18)


def test_generic_check_of_no_parameters_compares_nothing():
    """Whatever the user's functions leave in freed memory (here a NaN, which numpy's allocator
    hands out again to the next small array), an empty comparison is 0."""

    def grad_fn(q):
        leftover = np.full(1, np.nan)
        del leftover
        return {}

    result = gradient_check(lambda q: 0.0, grad_fn, {})
    assert result.difference == 0.0 and result.passed and result.per_array == {}
    assert result.checked == 0 and result.kinks == 0 and result.worst_array is None
    assert result.summary() == ("gradient check passed: difference 0.000e+00 < 2e-07 (central "
                                "differences, epsilon 1e-07; worst array None)")


def test_generic_check_keeps_the_order_of_keys_that_are_not_strings():
    """Keys 1, 0 (not W1, b1, ...) stay in the mapping's order."""
    result = gradient_check(lambda q: float(q[1][0] ** 3 + 5 * q[0][0]),
                            lambda q: {1: 3 * q[1] ** 2, 0: np.array([5.0])},
                            {1: np.array([2.0]), 0: np.array([7.0])})
    assert list(result.per_array) == [1, 0] and result.passed
    np.testing.assert_allclose(result.gradapprox[1], [12.0], rtol=1e-8)
    np.testing.assert_allclose(result.gradapprox[0], [5.0], rtol=1e-8)


# -- the loss and penalty changes, against differences computed exactly ----------------------------
def exact_logistic_cost(W, b, X, Y, lambd=0.0, l1=0.0) -> Decimal:
    """J of logistic regression (one layer) in 60-digit decimals, from exact values of the
    inputs: mean(log(1 + e^z) − y z) + lambd/(2m) Σ w² + l1/(2m) Σ |w|."""
    m = X.shape[1]
    total = Decimal(0)
    for e in range(m):
        z = sum(W[j] * Decimal(float(X[j, e])) for j in range(len(W))) + b
        total += (1 + z.exp()).ln() - Decimal(float(Y[0, e])) * z
    return (total / m + Decimal(lambd) / (2 * m) * sum(w * w for w in W)
            + Decimal(l1) / (2 * m) * sum(abs(w) for w in W))


def exact_differences(p, X, Y, epsilon, method, lambd=0.0, l1=0.0) -> dict[str, np.ndarray]:
    """``(J(θ + ε e_i) − J(θ − ε e_i)) / 2ε`` (or forward), each J exact: no rounding at all."""
    with localcontext() as context:
        context.prec = 60
        theta = [Decimal(float(w)) for w in p["W1"].ravel()] + [Decimal(float(p["b1"][0, 0]))]
        eps = Decimal(epsilon)

        def J(i, step):
            t = list(theta)
            t[i] += step
            return exact_logistic_cost(t[:-1], t[-1], X, Y, lambd, l1)

        approx = [(J(i, eps) - J(i, -eps)) / (2 * eps) if method == "central"
                  else (J(i, eps) - J(i, Decimal(0))) / eps for i in range(len(theta))]
    approx = np.array([float(a) for a in approx])
    return {"W1": approx[:-1].reshape(p["W1"].shape), "b1": approx[-1:].reshape(1, 1)}


def soft_labelled_logistic_regression(W):
    """One layer, inputs in [-1, 1] and labels y = σ(z): the loss gradient σ(z) − y is ~0, so
    what the differences see is their own truncation: ε c2 (forward) and ε² c3 (central), the
    Taylor coefficients of the loss change (with ε = 2^-17 every |logit change| <= 1e-5)."""
    rng = np.random.default_rng(5)
    X = rng.integers(-8, 9, (len(W), 6)) / 8.0
    p = {"W1": np.array([W]), "b1": np.array([[0.25]])}
    Y = 1.0 / (1.0 + np.exp(-(p["W1"] @ X + p["b1"])))
    return p, X, Y


@pytest.mark.parametrize(("method", "rtol"), [("central", 1e-3), ("forward", 1e-9)])
def test_loss_change_truncation_matches_exact_differences(method, rtol):
    """Central: (1/m) Σ x³ c3 ε² ≈ 1e-13 (known to 1e-4: σ(z) − y is ~1e-17, not 0); forward:
    (1/m) Σ x² c2 ε ≈ 1e-7."""
    p, X, Y = soft_labelled_logistic_regression([0.75, -0.5, 1.25])
    epsilon = 2.0**-17
    result = check_network(p, X, Y, "relu", epsilon=epsilon, method=method)
    expected = exact_differences(p, X, Y, epsilon, method)
    for key in expected:
        np.testing.assert_allclose(result.gradapprox[key], expected[key], rtol=rtol, err_msg=key)


@pytest.mark.parametrize("method", ["central", "forward"])
@pytest.mark.parametrize("epsilon", [0.1, 2.0])
def test_loss_changes_of_soft_labels_beyond_the_taylor_range(epsilon, method):
    """Labels between 0 and 1 (0.13 ... 0.66), steps past the Taylor range (|logit change| up to
    0.1, and up to 2 with changes beyond ±1): the loss change keeps its ``− w·(change of t)`` term,
    0 only for labels 0 and 1. With σ(z) ≈ y the changes are of second order, computed from first
    order terms, so to ~1e-13 (rtol 1e-11)."""
    p, X, Y = soft_labelled_logistic_regression([0.75, -0.5, 1.25])
    result = check_network(p, X, Y, "relu", epsilon=epsilon, method=method)
    expected = exact_differences(p, X, Y, epsilon, method)
    for key in expected:
        np.testing.assert_allclose(result.gradapprox[key], expected[key], rtol=1e-11, err_msg=key)

@pytest.mark.parametrize("method", ["central", "forward"])
def test_penalty_changes_match_exact_differences(method):
    """L2 and L1 on weights 0.75, 0, ε/2, −ε/4: the last two within ε of L1's kink at 0, where
    the step crosses it and the difference is no derivative (not treated; compared as is)."""
    epsilon = 2.0**-17
    p, X, Y = soft_labelled_logistic_regression([0.75, 0.0, epsilon / 2, -epsilon / 4])
    result = check_network(p, X, Y, "relu", lambd=0.5, l1=0.3, epsilon=epsilon, method=method)
    expected = exact_differences(p, X, Y, epsilon, method, lambd=0.5, l1=0.3)
    for key in expected:
        np.testing.assert_allclose(result.gradapprox[key], expected[key], rtol=1e-9, atol=1e-15,
                                   err_msg=key)
    # By hand, the L1 part l1/(2m) times: forward 1, 1, 1, 0.5; central 1, 0, 0.5, −0.25.
    l1_part = {"forward": [1, 1, 1, 0.5], "central": [1, 0, 0.5, -0.25]}[method]
    l2_part = 0.5 / 6 * (p["W1"][0] + (epsilon / 2 if method == "forward" else 0.0))
    loss_part = exact_differences(p, X, Y, epsilon, method)["W1"][0]
    np.testing.assert_allclose(result.gradapprox["W1"][0] - loss_part,
                               l2_part + 0.3 / 12 * np.array(l1_part), rtol=1e-9, atol=1e-15)



def exact_quotient(z: float, y: float, epsilon: float, method: str) -> Decimal:
    """``(ℓ(z + ε) − ℓ(z − ε)) / 2ε`` (forward: ``(ℓ(z + ε) − ℓ(z)) / ε``) from 80-digit losses."""
    with localcontext() as context:
        context.prec = 80
        upper = Decimal(z) + Decimal(epsilon)
        lower = Decimal(z) - Decimal(epsilon) if method == "central" else Decimal(z)
        return ((reference.exact_cross_entropy(upper, y) - reference.exact_cross_entropy(lower, y))
                / (upper - lower))


@pytest.mark.parametrize("method", ["central", "forward"])
@pytest.mark.parametrize("epsilon", [1e-7, 1e-3, 2.0, 100.0, 1000.0])
def test_loss_changes_are_exact_for_confident_logits_of_both_labels(epsilon, method):
    """One example with input 1: W1 and b1 each move the logit by the step, so both difference
    quotients are those of the loss alone, within ~4 ulp of the 80-digit values in each form of the
    loss change: the Taylor cubic (|step| <= 1e-5), log1p of expm1 (<= 1), the loss's terms changed
    one by one (> 1, either sign). The former forms were 0.3% off for z = 30, y = 1, ε = 1e-3, and
    gave inf (with a RuntimeWarning) for z = 40, y = 0, ε = 100: log1p(σ(z)(e^-100 − 1)) = log1p(−1);
    ε = 1000 makes σ(t)(e^e − 1) = 0 · inf where the loss is saturated (z = −800, y = 0)."""
    for y in (0.0, 1.0):
        for z in reference.CONFIDENT_LOGITS:
            p = {"W1": np.array([[z]]), "b1": np.zeros((1, 1))}
            result = check_network(p, np.ones((1, 1)), np.array([[y]]), epsilon=epsilon,
                                   method=method)
            exact = exact_quotient(z, y, epsilon, method)
            for key in p:
                reference.assert_exact(float(result.gradapprox[key][0, 0]), exact)


# -- subsets, and the warnings the vectorized check must not raise ---------------------------------
@pytest.mark.parametrize(("max_examples", "seed"), [(1, 0), (12, None), (40, None)])
def test_max_examples_uses_the_seeded_subset_even_of_one(max_examples, seed):
    """The gradient is that of the mean cost over the drawn examples (seed 0 by default; all of
    them when max_examples is m)."""
    X, Y = data(m=40)
    p = params("he", random_biases=True)
    kwargs = {} if seed is None else {"seed": seed}
    result = check_network(p, X, Y, "tanh", max_examples=max_examples, **kwargs)
    keep = np.sort(np.random.default_rng(0).choice(40, size=max_examples, replace=False))
    _, expected = cost_and_gradients(p, X[:, keep], Y[:, keep], "tanh")
    for key in p:
        np.testing.assert_allclose(result.grad[key], expected[f"d{key}"], rtol=1e-12,
                                   atol=1e-15, err_msg=key)
        np.testing.assert_allclose(result.gradapprox[key], expected[f"d{key}"], rtol=1e-6,
                                   atol=1e-9, err_msg=key)
    assert result.passed


def test_saturated_tanh_units_raise_no_overflow_warning():
    """|z| > 710: cosh overflows to inf, so sech² = 0 exactly (the unit passes no change on),
    as the course's tanh derivative 1 − tanh² = 0 does. No RuntimeWarning."""
    X, Y = data()
    p = params("xavier", random_biases=True)
    p["W1"][0] = 1000.0 * np.sign(p["W1"][0])  # unit 1 of layer 1: |z| mostly over 710
    assert np.sum(np.abs(p["W1"] @ X + p["b1"]) > 710) >= 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = check_network(p, X, Y, "tanh")
    assert result.passed and result.difference < 1e-12, result.report()
    loop = gradient_check(*user_pair(X, Y, "tanh"), p)
    for key in p:
        np.testing.assert_allclose(result.gradapprox[key], loop.gradapprox[key], rtol=0,
                                   atol=1e-8, err_msg=key)


@pytest.mark.parametrize("epsilon", [1e-7, 1e-5])
def test_central_differences_of_an_even_cost_are_exactly_zero(epsilon):
    """Zero weights and labels 1/2: each example's loss log(1 + e^z) − z/2 = log cosh(z/2) + c
    is even in z = δ x, so J(θ + δ e_i) = J(θ − δ e_i) exactly and so is the gradient, 0. The
    loss change is computed without cancellation, so not even rounding is left (with ε = 1e-5
    the bias step moves the logit by exactly 1e-5)."""
    rng = np.random.default_rng(2)
    X = rng.integers(-8, 9, (3, 10)) / 8.0
    X[0, 0] = 1.0
    p = {"W1": np.zeros((1, 3)), "b1": np.zeros((1, 1))}
    result = check_network(p, X, np.full((1, 10), 0.5), "relu", epsilon=epsilon)
    for key in p:
        np.testing.assert_array_equal(result.gradapprox[key], np.zeros(p[key].shape))
        np.testing.assert_array_equal(result.grad[key], np.zeros(p[key].shape))
    assert result.difference == 0.0 and result.passed


# -- kinks: which steps cross, for either side, either method and any epsilon --------------------
def dyadic_relu_net(dims, shift, seed=13):
    """Small integers and quarters: many hidden z exactly ``shift`` (the quarter part 0), and
    every value exact, so brute force and the check see the same z + d."""
    rng = np.random.default_rng(seed)
    X = rng.integers(-2, 3, (dims[0], 8)).astype(np.float64)
    Y = (rng.random((1, 8)) > 0.5).astype(np.float64)
    p = {}
    for l in range(1, len(dims)):
        p[f"W{l}"] = rng.integers(-4, 5, (dims[l], dims[l - 1])) / 4.0
        p[f"b{l}"] = rng.integers(-2, 3, (dims[l], 1)) / 4.0 + (shift if l < len(dims) - 1 else 0)
    return p, X, Y


@pytest.mark.parametrize("dims", [[3, 4, 4, 1], [3, 4, 4, 3, 1]])
@pytest.mark.parametrize(("epsilon", "shift", "method"), [
    (1e-7, 2.0**-24, "forward"),   # z = 6e-8 > 0: only steps down by more than z cross
    (1e-7, -(2.0**-24), "forward"),  # z = -6e-8: only steps up
    (1e-7, -(2.0**-24), "central"),
    (2.0**-23, 2.0**-23, "central"),  # steps of ±x ε land exactly on 0 from z = ε: no crossing
    (2.0**-23, -(2.0**-23), "central"),
    (2.0**-23, 3 * 2.0**-24, "central"),  # z = 1.5 ε: crossed only by steps 2ε (input ±2)
    (0.5, 0.0, "central"),  # large steps: crossings deep in the net, several per entry
    (2.0, 0.0, "central"),
    (2.0, 0.0, "forward"),
])
def test_kink_masks_match_brute_force_for_any_step(dims, epsilon, shift, method):
    """Forward differences take the +ε step only, so only it can skip an entry; landing exactly
    on the kink from either side is no crossing (linear up to it)."""
    p, X, Y = dyadic_relu_net(dims, shift)
    result = check_network(p, X, Y, "relu", epsilon=epsilon, method=method)
    oracle = kink_oracle(p, X, epsilon=epsilon, steps=(epsilon,) if method == "forward" else None)
    for key, mask in oracle.items():
        np.testing.assert_array_equal(result.kink_mask[key], mask, err_msg=key)
    assert result.kink_arrays == {key: int(mask.sum()) for key, mask in oracle.items()}
    assert result.kinks == sum(result.kink_arrays.values()) > 0
    assert result.checked == entry_count(p) - result.kinks


def layers(X, *Wb) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """A net from its (W, b) pairs written out, for X given as rows; labels alternate 1, 0."""
    X = np.array(X, dtype=np.float64)
    p = {}
    for l, (W, b) in enumerate(Wb, 1):
        p[f"W{l}"], p[f"b{l}"] = np.array(W, dtype=np.float64), np.array(b, dtype=np.float64)
    Y = (np.arange(X.shape[1]) % 2 == 0).astype(np.float64).reshape(1, -1)
    return p, X, Y


CRAFTED_KINKS = {
    # A step of 4 on b1 (or 4·2 on W1) moves z2 = −0.875 by 1 (2) across 0, two layers down;
    # z1 = 9.5, 10.5 never crosses.
    "big step, crossing one layer down": (4.0, layers(
        [[1, 2]], ([[1]], [[8.5]]), ([[0.25]], [[-3.5]]), ([[1]], [[0]]))),
    # Ten layer-2 units pass the same change on: z3 = −9ε moves by 10ε (the bound must add
    # up the row of W3, not take its largest entry).
    "ten units adding up": (2.0**-23, layers(
        [[1, 1]], ([[1]], [[1]]), ([[1]] * 10, [[0]] * 10),
        ([[1] * 10], [[-20 - 9 * 2.0**-23]]), ([[1]], [[0]]))),
    # W2, b2 move z3 = 0 (example 0); layers 1 and 2 are far from their kinks.
    "crossing two layers down": (1e-7, layers(
        [[1, 2]], ([[1]], [[1]]), ([[1]], [[1]]), ([[1]], [[-3]]), ([[1]], [[0]]))),
    # Layer-1 steps move examples 0 and 1 only (the unit is off for 2 and 3); z2 = 0 at the
    # last moved example (unit 2, crossed) and at unmoved ones (unit 1, not crossed).
    "at the last moved example": (1e-7, layers(
        [[2, 1, -1, -1]], ([[1]], [[0]]), ([[1], [1]], [[0], [-1]]), ([[1, 1]], [[0]]))),
    # ... and with one moved example only.
    "one moved example": (1e-7, layers(
        [[2, -1, -1, -1]], ([[1]], [[0]]), ([[1], [1]], [[0], [-1]]), ([[1, 1]], [[0]]))),
}


@pytest.mark.parametrize("max_chunk_bytes", [gradcheck.MAX_CHUNK_BYTES, 1])
@pytest.mark.parametrize("case", CRAFTED_KINKS)
def test_kinks_reached_only_through_the_layers_are_found(case, max_chunk_bytes):
    """Nets written out so that a crossing happens where only a right bound of how far a step
    moves each layer finds it."""
    epsilon, (p, X, Y) = CRAFTED_KINKS[case]
    result = check_network(p, X, Y, "relu", epsilon=epsilon, max_chunk_bytes=max_chunk_bytes)
    oracle = kink_oracle(p, X, epsilon=epsilon)
    for key, mask in oracle.items():
        np.testing.assert_array_equal(result.kink_mask[key], mask, err_msg=key)
    assert result.kinks > 0


# -- inputs in other numeric forms ----------------------------------------------------------------
def test_network_check_reads_parameters_of_python_numbers_as_float64():
    """Parameters as object arrays of Python floats (e.g. rebuilt from JSON): checked
    like the float64 arrays they stand for."""
    X, Y = data()
    p = params("xavier", random_biases=True)
    loop = gradient_check(*user_pair(X, Y, "tanh"), p)
    _, expected = cost_and_gradients(p, X, Y, "tanh")
    result = check_network({k: v.astype(object) for k, v in p.items()}, X, Y, "tanh")
    assert result.passed and result.difference < 1e-12, result.report()
    for key in p:
        np.testing.assert_array_equal(result.grad[key], expected[f"d{key}"])
        np.testing.assert_allclose(result.gradapprox[key], loop.gradapprox[key], rtol=0,
                                   atol=1e-8, err_msg=key)


@pytest.mark.parametrize("keep_prob", ["1", ["1", 1.0]])
def test_keep_prob_is_read_as_numbers(keep_prob):
    """One value or one per layer, as numpy reads it: the text "1" (a command line's) is 1."""
    X, Y = data()
    result = check_network(params("he"), X, Y, keep_prob=keep_prob)
    assert result.passed
    with pytest.raises(GradientCheckError, match="keep_prob=0.5"):
        check_network(params("he"), X, Y, keep_prob="0.5")



def test_a_step_that_moves_a_logit_beyond_exp_overflow_stays_exact():
    """epsilon 1 on an input of 800 moves the logit by 800 (e^800 overflows): the vectorized
    check's estimate is still the central difference of the cost."""
    from tests import reference as ref

    X, Y = np.array([[800.0, -3.0]]), np.array([[1.0, 0.0]])
    p = {"W1": np.array([[0.001]]), "b1": np.array([[0.0]])}
    plus = {"W1": p["W1"] + 1.0, "b1": p["b1"]}
    minus = {"W1": p["W1"] - 1.0, "b1": p["b1"]}
    expected = (ref.cost(plus, X, Y) - ref.cost(minus, X, Y)) / 2.0
    result = check_network(p, X, Y, epsilon=1.0, threshold=1.0)
    assert result.gradapprox["W1"][0, 0] == pytest.approx(expected, rel=1e-12)
    assert np.isfinite(result.difference)


# -- the result serializes itself -------------------------------------------------------------------
def assert_same_result(a: GradientCheckResult, b: GradientCheckResult) -> None:
    """Every field equal (nan equal to nan), arrays with their dtype, dicts in their order."""
    for name in ("difference", "threshold", "epsilon"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
        assert type(getattr(b, name)) is float
    assert (a.passed, a.method, a.kinks, a.kink_arrays, a.checked) == (
        b.passed, b.method, b.kinks, b.kink_arrays, b.checked)
    assert list(a.per_array) == list(b.per_array)
    assert np.array_equal(list(a.per_array.values()), list(b.per_array.values()), equal_nan=True)
    for name in ("grad", "gradapprox", "kink_mask"):
        left, right = getattr(a, name), getattr(b, name)
        assert list(left) == list(right), name
        for key in left:
            assert right[key].dtype == (bool if name == "kink_mask" else np.float64)
            assert right[key].shape == left[key].shape
            assert np.array_equal(left[key], right[key], equal_nan=True), (name, key)


def through_json(result: GradientCheckResult) -> GradientCheckResult:
    return GradientCheckResult.from_dict(json.loads(json.dumps(result.to_dict())))


def test_a_network_check_with_kinks_round_trips_through_json():
    X, Y = data(n=2)
    result = check_network(initialize_parameters([2, 10, 5, 1], "zeros"), X, Y, "relu")
    assert result.kinks == 35
    back = through_json(result)
    assert_same_result(result, back)
    assert back == result and back.report() == result.report()


def test_a_failed_generic_check_round_trips_through_json():
    result = gradient_check(*linear_pair(2.0), LINEAR_PARAMETERS, epsilon=STEP, method="forward")
    assert not result.passed and result.kink_mask == {}
    back = through_json(result)
    assert_same_result(result, back)
    assert back.to_dict() == result.to_dict() and back.summary() == result.summary()


def test_nan_and_inf_round_trip_as_json_allows():
    result = kinked_result(difference=float("nan"), passed=False, threshold=float("inf"),
                           per_array={"W1": float("-inf"), "b1": float("nan"), "W2": 0.0},
                           grad={"W1": np.array([[np.nan, np.inf], [-np.inf, 2.0]])})
    assert_same_result(result, through_json(result))


def test_a_result_rebuilt_from_its_verdict_alone_takes_the_defaults():
    d = {"difference": 0.5, "passed": False, "threshold": 2e-7, "epsilon": 1e-7,
         "per_array": {"W1": 0.5}}
    assert_same_result(GradientCheckResult.from_dict(d), GradientCheckResult(**d))


def test_arrays_written_by_hand_are_read_as_float64_and_bool():
    d = {"difference": 0.5, "passed": False, "threshold": 2e-7, "epsilon": 1e-7,
         "per_array": {"W1": 0.5}, "grad": {"W1": [[1, 2]]}, "gradapprox": {"W1": [[1, 3]]},
         "kink_mask": {"W1": [[0, 1]], "b1": []}}
    result = GradientCheckResult.from_dict(d)
    assert result.grad["W1"].dtype == result.gradapprox["W1"].dtype == np.float64
    assert result.kink_mask["W1"].dtype == result.kink_mask["b1"].dtype == bool
    assert result.kink_mask["W1"].tolist() == [[False, True]]
    assert [type(x) for x in result.to_dict()["grad"]["W1"][0]] == [float, float]


def test_a_dict_without_a_required_key_is_one_line():
    d = {"difference": 0.5, "passed": False, "threshold": 2e-7, "per_array": {}}
    with pytest.raises(DataError) as info:
        GradientCheckResult.from_dict(d)
    assert str(info.value) == ("gradient check dict has no key 'epsilon' "
                               "(keys: difference, passed, per_array, threshold)")
    with pytest.raises(DataError, match=r"no key 'difference' \(keys: none\)"):
        GradientCheckResult.from_dict({})
