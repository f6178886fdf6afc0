"""Bias/variance diagnosis and the course's "basic recipe" for what to try next.

Avoidable bias is train error minus Bayes error; variance is dev error minus train error. Each is
"high" when it exceeds its threshold. Owns: the rule and the recipe. Must not touch: training,
accuracies (it takes error rates), tracking.
"""

import math
from dataclasses import asdict, dataclass
from numbers import Real
from typing import Any

from dlpractice.errors import ConfigError

# The basic recipe: fix bias first (a bigger network rarely hurts with regularization), then
# variance.
BIAS_RECIPE = (
    "bigger network (more layers/units)",
    "train longer / better optimizer",
    "try another architecture",
)
VARIANCE_RECIPE = (
    "more data (or data augmentation)",
    "regularization (L2, dropout)",
    "try another architecture",
)
GOOD_FIT_RECIPE = ("done: low bias and low variance; confirm on the test set",)
# Error rates are counts over at most ~1e9 examples: a gap within this of its threshold is equal to
# it, as 1 - 0.95 (0.050000000000000044) is 5 points.
ROUNDING = 1e-12


@dataclass(frozen=True)
class Diagnosis:
    train_error: float
    dev_error: float
    bayes_error: float
    avoidable_bias: float
    variance: float
    label: str
    recommendations: tuple[str, ...]

    @property
    def recommendation(self) -> str:
        """The recommendations on one line, e.g. for an MLflow tag."""
        return "; ".join(self.recommendations)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "recommendations": list(self.recommendations)}


def diagnose(
    train_error: float,
    dev_error: float,
    bayes_error: float = 0.0,
    *,
    bias_threshold: float = 0.05,
    variance_threshold: float = 0.05,
) -> Diagnosis:
    """Label a model high bias / high variance / both / good fit from its error rates (in [0, 1]).

    A gap must *exceed* its threshold to be high. 5 points by default: the course calls 10-point
    gaps high and 1-point ones low, and on 200 dev examples an error rate's noise is ~3.5 points.
    """
    train_error = _rate("train_error", train_error)
    dev_error = _rate("dev_error", dev_error)
    bayes_error = _rate("bayes_error", bayes_error)
    for name, value in (("bias_threshold", bias_threshold),
                        ("variance_threshold", variance_threshold)):
        _rate(name, value)
    avoidable_bias = _gap(train_error - bayes_error)
    variance = _gap(dev_error - train_error)
    high_bias = exceeds(avoidable_bias, bias_threshold)
    high_variance = exceeds(variance, variance_threshold)
    if high_bias and high_variance:
        label = "high_bias_high_variance"
        recommendations = BIAS_RECIPE + tuple(r for r in VARIANCE_RECIPE if r not in BIAS_RECIPE)
    elif high_bias:
        label, recommendations = "high_bias", BIAS_RECIPE
    elif high_variance:
        label, recommendations = "high_variance", VARIANCE_RECIPE
    else:
        label, recommendations = "good_fit", GOOD_FIT_RECIPE
    return Diagnosis(
        train_error, dev_error, bayes_error, avoidable_bias, variance, label, recommendations
    )


def exceeds(gap: float, threshold: float) -> bool:
    """Is ``gap`` high, i.e. above ``threshold`` by more than rounding? (The lecture's rule, for
    every place that judges a gap.)"""
    return gap > threshold + ROUNDING


def _gap(value: float) -> float:
    """A gap between two error rates, 0 when it is rounding alone (1 - 0.95 less 0.05 is 4e-17)."""
    return 0.0 if abs(value) <= ROUNDING else value


def _rate(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(f"{name} is {value!r}; allowed: a number in [0, 1]")
    value = float(value)
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise ConfigError(f"{name} is {value}; allowed: a number in [0, 1]")
    return value
