"""Course-compatible mode reproduces deeplearning.ai "Improving Deep Neural Networks", week 1.

The expected numbers are the ones the course's notebooks print (Initialization and Regularization
assignments); accuracies must match exactly, costs to 1e-9 relative.
"""

from __future__ import annotations

import pytest
import scipy.io

from dlpractice.nn import TrainConfig, accuracy, train
from tests import reference

COST_RTOL = 1e-9


def course_costs(result, every: int) -> dict[int, float]:
    """The recorded costs at the iterations the course prints (every ``every``)."""
    return {i: c for i, c in zip(result.iterations, result.costs) if i % every == 0}


# -- Initialization assignment: circles, [2, 10, 5, 1], lr 0.01, 15000 iterations ----------------
@pytest.fixture(scope="module")
def circles():
    return reference.course_circles()


def train_circles(circles, init: str):
    X_train, Y_train, _, _ = circles
    cfg = TrainConfig((2, 10, 5, 1), init=init, learning_rate=0.01, iterations=15000,
                      record_every=1000, course_compat=True)
    return train(X_train, Y_train, cfg)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("init", "train_accuracy", "test_accuracy"),
    [("zeros", 0.5, 0.5), ("random", 0.83, 0.86), ("he", 0.9933333333333333, 0.96)],
)
def test_initialization_accuracies(circles, init, train_accuracy, test_accuracy):
    X_train, Y_train, X_test, Y_test = circles
    result = train_circles(circles, init)
    assert accuracy(result.parameters, X_train, Y_train) == train_accuracy
    assert accuracy(result.parameters, X_test, Y_test) == test_accuracy
    if init == "he":
        costs = course_costs(result, 1000)
        assert costs[0] == pytest.approx(0.8830537463419761, rel=COST_RTOL)
        assert costs[1000] == pytest.approx(0.6879825919728063, rel=COST_RTOL)
        assert costs[14000] == pytest.approx(0.07357895962677366, rel=COST_RTOL)


# -- Regularization assignment: football.mat, [2, 20, 3, 1], lr 0.3, 30000 iterations ------------
@pytest.fixture(scope="module")
def football():
    d = scipy.io.loadmat(reference.require_course_file())
    return d["X"].T, d["y"].T.astype(float), d["Xval"].T, d["yval"].T.astype(float)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("regularizer", "train_accuracy", "test_accuracy", "costs"),
    [
        ({}, 0.9478672985781991, 0.915,
         (0.6557412523481002, 0.16329987525724216, 0.13851642423255986)),
        ({"lambd": 0.7}, 0.9383886255924171, 0.93,
         (0.6974484493131264, 0.2684918873282239, 0.2680916337127301)),
        ({"keep_prob": 0.86}, 0.9289099526066351, 0.95,
         (0.6543912405149825, 0.0610169865749056, 0.060582435798513114)),
    ],
    ids=["none", "l2", "dropout"],
)
def test_regularization_results(football, regularizer, train_accuracy, test_accuracy, costs):
    X_train, Y_train, X_test, Y_test = football
    assert X_train.shape == (2, 211) and X_test.shape == (2, 200)
    cfg = TrainConfig((2, 20, 3, 1), init="xavier", learning_rate=0.3, iterations=30000,
                      record_every=1000, course_compat=True, **regularizer)
    result = train(X_train, Y_train, cfg)
    assert accuracy(result.parameters, X_train, Y_train) == train_accuracy
    assert accuracy(result.parameters, X_test, Y_test) == test_accuracy
    recorded = course_costs(result, 10000)
    assert sorted(recorded) == [0, 10000, 20000]
    for iteration, expected in zip((0, 10000, 20000), costs):
        assert recorded[iteration] == pytest.approx(expected, rel=COST_RTOL), iteration
