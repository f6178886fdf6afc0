"""Bias/variance diagnosis: the course's classic cases, Bayes error, the recipe, bad inputs."""

import json

import numpy as np
import pytest

from dlpractice.diagnose import Diagnosis, diagnose
from dlpractice.errors import ConfigError
from dlpractice.nn import accuracy


@pytest.mark.parametrize(
    ("train", "dev", "label"),
    [
        (0.01, 0.11, "high_variance"),
        (0.15, 0.16, "high_bias"),
        (0.15, 0.30, "high_bias_high_variance"),
        (0.005, 0.01, "good_fit"),
    ],
)
def test_classic_cases_with_zero_bayes_error(train, dev, label):
    d = diagnose(train, dev)
    assert d.label == label
    assert d.avoidable_bias == pytest.approx(train)
    assert d.variance == pytest.approx(dev - train)


@pytest.mark.parametrize(
    ("train", "dev", "bayes", "label"),
    [
        (0.15, 0.16, 0.15, "good_fit"),  # a blurry-image task: 15% is as good as it gets
        (0.15, 0.30, 0.15, "high_variance"),
        (0.20, 0.21, 0.10, "high_bias"),
        (0.10, 0.12, 0.14, "good_fit"),  # train below Bayes: negative avoidable bias
    ],
)
def test_bayes_error_shifts_the_bias_label(train, dev, bayes, label):
    d = diagnose(train, dev, bayes)
    assert d.label == label
    assert d.avoidable_bias == pytest.approx(train - bayes)


def test_thresholds_are_configurable():
    assert diagnose(0.01, 0.04).label == "good_fit"
    assert diagnose(0.01, 0.04, variance_threshold=0.02).label == "high_variance"
    assert diagnose(0.04, 0.04, bias_threshold=0.02).label == "high_bias"


def test_recommendations_follow_the_basic_recipe():
    bias = diagnose(0.15, 0.16)
    assert "bigger network (more layers/units)" in bias.recommendations
    assert "train longer / better optimizer" in bias.recommendations
    assert not any("regularization" in r for r in bias.recommendations)

    variance = diagnose(0.01, 0.11)
    assert "more data (or data augmentation)" in variance.recommendations
    assert "regularization (L2, dropout)" in variance.recommendations
    assert not any("bigger network" in r for r in variance.recommendations)

    both = diagnose(0.15, 0.30).recommendations
    assert both[0] == "bigger network (more layers/units)"  # fix bias first
    assert "regularization (L2, dropout)" in both
    assert len(both) == len(set(both))

    good = diagnose(0.005, 0.01)
    assert len(good.recommendations) == 1 and good.recommendations[0].startswith("done")


def test_recommendation_is_one_line_and_to_dict_is_json():
    d = diagnose(0.25, 0.5, 0.125)
    assert d.recommendation == "; ".join(d.recommendations)
    assert "\n" not in d.recommendation
    assert json.loads(json.dumps(d.to_dict())) == {
        "train_error": 0.25, "dev_error": 0.5, "bayes_error": 0.125, "avoidable_bias": 0.125,
        "variance": 0.25, "label": "high_bias_high_variance",
        "recommendations": ["bigger network (more layers/units)",
                            "train longer / better optimizer", "try another architecture",
                            "more data (or data augmentation)", "regularization (L2, dropout)"]}


def test_the_diagnosis_keeps_the_errors_it_was_given():
    assert diagnose(0.25, 0.375, 0.125, bias_threshold=0.5, variance_threshold=0.5) == Diagnosis(
        train_error=0.25, dev_error=0.375, bayes_error=0.125, avoidable_bias=0.125,
        variance=0.125, label="good_fit",
        recommendations=("done: low bias and low variance; confirm on the test set",))


def test_a_gap_equal_to_its_threshold_is_not_high():
    """The gaps and thresholds are exact in binary: only "exceeds" decides."""
    assert diagnose(0.25, 0.5, bias_threshold=0.25, variance_threshold=0.25).label == "good_fit"
    assert diagnose(0.25, 0.5, bias_threshold=0.125, variance_threshold=0.25).label == "high_bias"
    assert diagnose(0.25, 0.5, bias_threshold=0.25,
                    variance_threshold=0.125).label == "high_variance"


def test_a_gap_equal_to_its_threshold_but_for_rounding_is_not_high():
    """Errors from accuracies: 1 - 0.95 is 0.050000000000000044, five points all the same; one
    example in a billion more is high."""
    assert 1 - 0.95 > 0.05 and (1 - 0.94) - (1 - 0.99) > 0.05  # what the rounding does
    assert diagnose(1 - 0.95, 1 - 0.95).label == "good_fit"
    assert diagnose(1 - 0.99, 1 - 0.94).label == "good_fit"
    assert diagnose(0.05 + 1e-9, 0.05 + 1e-9).label == "high_bias"
    # the margin itself is rounding too: a gap must exceed the threshold by more than 1e-12
    assert diagnose(0.25 + 1e-12, 0.25 + 1e-12, bias_threshold=0.25).label == "good_fit"
    assert diagnose(0.0, 0.25 + 1e-12, variance_threshold=0.25).label == "good_fit"
    assert diagnose(0.0, 0.05 + 1e-9).label == "high_variance"


def test_a_gap_that_is_rounding_alone_is_zero():
    """A table shows 0.0000, not 4.16e-17: train error 1 - 0.95 against a Bayes error of 5%."""
    assert (1 - 0.95) - 0.05 == pytest.approx(4.16e-17, rel=1e-2)  # what the rounding leaves
    d = diagnose(1 - 0.95, 1 - 0.95, 0.05)
    assert (d.avoidable_bias, d.variance) == (0.0, 0.0)
    assert d.train_error == 1 - 0.95  # the errors themselves are kept as given
    # one example in a billion is a gap, either sign, and so is 1.5e-12
    d = diagnose(0.05 + 1e-9, 0.05, 0.05)
    assert d.avoidable_bias == pytest.approx(1e-9) and d.variance == pytest.approx(-1e-9)
    assert diagnose(0.5 + 1.5e-12, 0.5).variance == pytest.approx(-1.5e-12, rel=1e-3)
    assert diagnose(0.5 + 0.9e-12, 0.5).variance == 0.0
    assert diagnose(1e-12, 1e-12).avoidable_bias == 0.0  # the margin itself is rounding


def test_the_ends_of_the_range_are_allowed():
    assert diagnose(1.0, 1.0, 1.0, bias_threshold=1.0, variance_threshold=1.0).label == "good_fit"
    assert diagnose(0.0, 0.0, 0.0, bias_threshold=0.0, variance_threshold=0.0).label == "good_fit"


def test_numpy_scalars_are_accepted():
    assert diagnose(np.float64(0.01), np.float32(0.11)).label == "high_variance"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"train_error": -0.1, "dev_error": 0.1}, "train_error is -0.1"),
        ({"train_error": 0.1, "dev_error": 1.5}, "dev_error is 1.5"),
        ({"train_error": float("nan"), "dev_error": 0.1}, "train_error is nan"),
        ({"train_error": 0.1, "dev_error": float("inf")}, "dev_error is inf"),
        ({"train_error": "0.1", "dev_error": 0.1}, "train_error is '0.1'"),
        ({"train_error": None, "dev_error": 0.1}, "train_error is None"),
        ({"train_error": 0.1, "dev_error": 0.1, "bayes_error": 2}, "bayes_error is 2.0"),
        ({"train_error": 0.1, "dev_error": 0.1, "bias_threshold": -1}, "bias_threshold is -1.0"),
        ({"train_error": 0.1, "dev_error": 0.1, "variance_threshold": 1.5},
         "variance_threshold is 1.5"),
        ({"train_error": 0.1, "dev_error": 0.1, "variance_threshold": True},
         "variance_threshold is True"),
    ],
)
def test_invalid_inputs_raise_one_line_config_error(kwargs, fragment):
    with pytest.raises(ConfigError) as info:
        diagnose(**kwargs)
    assert str(info.value) == f"{fragment}; allowed: a number in [0, 1]"


def test_error_rates_from_accuracies_diagnose_a_model():
    """The README's way: error = 1 - accuracy of the model's 0/1 predictions."""
    params = {"W1": np.array([[1.0]]), "b1": np.array([[0.0]])}  # predicts 1 where x > 0
    X = np.array([[1.0, -1.0, 2.0, -2.0]])
    train_error = 1 - accuracy(params, X, np.array([[1.0, 0.0, 1.0, 0.0]]))
    dev_error = 1 - accuracy(params, X, np.array([[1.0, 1.0, 1.0, 1.0]]))
    d = diagnose(train_error, dev_error)
    assert (d.train_error, d.dev_error, d.variance, d.label) == (0.0, 0.5, 0.5, "high_variance")
