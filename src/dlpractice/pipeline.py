"""The five steps of an experiment — split, normalize, train, gradient-check, evaluate — as functions.

The DVC stages (one process per step, files in between) and the Hydra app (all steps in one
process) both call these, so one config gives one result however it is run. Pure core: numpy and the
project's own modules only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from dlpractice.config import Config, check_fits_data, train_examples
from dlpractice.data import NormStats, Splits, apply_normalizer, load_dataset, normalize_splits, subsample
from dlpractice.data.generators import COURSE_NAMES
from dlpractice.diagnose import Diagnosis, diagnose
from dlpractice.errors import DataError, GradientCheckError
from dlpractice.gradcheck import GradientCheckResult, check_network
from dlpractice.nn import (
    TrainConfig,
    TrainResult,
    correct_count,
    error_rate,
    initialize_parameters,
    layer_dims_for,
    train,
)

# -- split ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedData:
    splits: Splits
    fingerprint: str

    @property
    def n_features(self) -> int:
        return self.splits.X_train.shape[0]


def prepare_data(cfg: Config) -> PreparedData:
    """Load or generate ``cfg.data``, split it and keep ``data.train_size`` of train (dev and test
    as they are); checks that the model fits the data."""
    d = cfg.data
    generated = d.name != "file"
    course_data = cfg.course_compat and d.name in COURSE_NAMES
    splits, fingerprint = load_dataset(
        d.name,
        path=d.path if d.name == "file" else None,
        n_samples=None if course_data or d.name == "file" else d.n_samples,
        noise=d.noise if generated and not course_data else None,
        seed=cfg.seed,
        course_compat=course_data,
        split_ratios=tuple(d.ratios),
        dev_size=d.dev_size,
        test_size=d.test_size,
        split_heldout=d.split_heldout,
        label_noise=d.label_noise,
    )
    if d.train_size is not None:
        splits = subsample(splits, train_examples(cfg, splits.X_train.shape[1]), seed=cfg.seed)
    if d.feature_scales is not None:
        check_fits_data(cfg, splits.X_train.shape[0])
        scales = np.asarray(d.feature_scales, dtype=float).reshape(-1, 1)
        splits = replace(splits, X_train=splits.X_train * scales, X_dev=splits.X_dev * scales,
                         X_test=splits.X_test * scales)
    check_fits_data(cfg, splits.X_train.shape[0])
    return PreparedData(splits, fingerprint)


# -- normalize -----------------------------------------------------------------------------------


def normalize(cfg: Config, splits: Splits) -> tuple[Splits, NormStats | None]:
    """Zero mean / unit variance fitted on train, applied unchanged to dev and test (if asked)."""
    if not cfg.data.normalize:
        return splits, None
    return normalize_splits(splits)


# -- train ---------------------------------------------------------------------------------------


def train_config(cfg: Config, n_features: int) -> TrainConfig:
    r, t = cfg.regularizer, cfg.train
    return TrainConfig(
        layer_dims=layer_dims_for(n_features, cfg.model.hidden),
        hidden_activation=cfg.model.activation,
        init=cfg.init.name,
        init_scale=cfg.init.scale,
        learning_rate=t.learning_rate,
        iterations=t.iterations,
        batch_size=t.batch_size,
        lambd=r.lambd if r.name == "l2" else 0.0,
        l1=r.lambd if r.name == "l1" else 0.0,
        keep_prob=cfg.hidden_keep_probs(),
        input_keep_prob=r.input_keep_prob,
        early_stopping_patience=r.early_stopping_patience,
        early_stopping_min_delta=r.early_stopping_min_delta,
        augment_flip_axes=tuple(r.flip_axes),
        augment_jitter=r.jitter,
        record_every=t.record_every,
        seed=cfg.seed,
        course_compat=cfg.course_compat,
    )


def initial_parameters(tc: TrainConfig) -> dict[str, np.ndarray]:
    """The parameters ``train`` starts from (its generator draws the initialization first)."""
    return initialize_parameters(
        tc.layer_dims, tc.init, random_scale=tc.init_scale,
        rng=np.random.default_rng(tc.seed), course_compat=tc.course_compat,
    )


def fit(
    cfg: Config,
    splits: Splits,
    callback: Callable[[int, float, float | None], None] | None = None,
) -> TrainResult:
    """Train on train; the dev set feeds the dev-cost history (and early stopping)."""
    tc = train_config(cfg, splits.X_train.shape[0])
    return train(splits.X_train, splits.Y_train, tc, X_dev=splits.X_dev, Y_dev=splits.Y_dev,
                 callback=callback)


# -- gradient check ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GradcheckReport:
    """Backprop checked at the initial and at the trained parameters."""

    at_init: GradientCheckResult
    at_trained: GradientCheckResult
    note: str = ""

    @property
    def difference(self) -> float:
        return max(self.at_init.difference, self.at_trained.difference)

    @property
    def passed(self) -> bool:
        return self.at_init.passed and self.at_trained.passed

    def to_dict(self) -> dict[str, Any]:
        """What ``reports/gradcheck.json`` holds (no gradient arrays); :meth:`from_dict` inverts it."""
        sides = {}
        for key, side in (("at_init", self.at_init), ("at_trained", self.at_trained)):
            d = side.to_dict()
            sides[key] = {k: d[k] for k in ("difference", "passed", "per_array", "checked", "kinks",
                                            "kink_arrays")}
        return {"gradcheck_difference": self.difference, "passed": self.passed,
                "threshold": self.at_init.threshold, "epsilon": self.at_init.epsilon,
                "method": self.at_init.method, **sides, "note": self.note}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GradcheckReport:
        shared = {k: data[k] for k in ("threshold", "epsilon", "method")}
        return cls(GradientCheckResult.from_dict({**data["at_init"], **shared}),
                   GradientCheckResult.from_dict({**data["at_trained"], **shared}),
                   note=str(data.get("note", "")))

    def report(self) -> str:
        lines = ["gradient check at initialization:", self.at_init.report(),
                 "gradient check at the trained parameters:", self.at_trained.report()]
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


def check_gradients(
    cfg: Config,
    splits: Splits,
    init_parameters: dict[str, np.ndarray],
    trained_parameters: dict[str, np.ndarray],
) -> GradcheckReport:
    """Check backprop (with the run's L2/L1 terms) on a bounded, seeded batch of train.

    Dropout is switched off for the check: it makes the cost random, so finite differences of it
    mean nothing; the network math under the masks is the same.
    """
    g, r = cfg.gradcheck, cfg.regularizer
    kwargs = dict(
        hidden_activation=cfg.model.activation,
        lambd=r.lambd if r.name == "l2" else 0.0,
        l1=r.lambd if r.name == "l1" else 0.0,
        epsilon=g.epsilon, threshold=g.threshold, method=g.method,
        max_examples=g.max_examples, seed=cfg.seed,
    )
    X, Y = splits.X_train, splits.Y_train
    note = ""
    if r.name == "dropout" or r.input_keep_prob < 1:
        note = "dropout was switched off for the check (a random cost has no gradient to check)"
    return GradcheckReport(
        at_init=check_network(init_parameters, X, Y, **kwargs),
        at_trained=check_network(trained_parameters, X, Y, **kwargs),
        note=note,
    )


# -- evaluate ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rates:
    """A split's accuracy and error rate, each counted (``1 - accuracy`` has rounding noise)."""

    accuracy: float
    error: float


@dataclass(frozen=True)
class Evaluation:
    train: Rates
    dev: Rates
    test: Rates | None  # None: the test split was not looked at (a sweep's job)
    diagnosis: Diagnosis
    extra: dict[str, float] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """The MLflow/DVC metric names (promises to users' scripts); no ``test_*`` when the test
        split was not evaluated."""
        test = self.test
        values = {
            "train_accuracy": self.train.accuracy,
            "dev_accuracy": self.dev.accuracy,
            "test_accuracy": None if test is None else test.accuracy,
            "train_error": self.train.error,
            "dev_error": self.dev.error,
            "test_error": None if test is None else test.error,
            "avoidable_bias": self.diagnosis.avoidable_bias,
            "variance": self.diagnosis.variance,
        }
        return {**{k: v for k, v in values.items() if v is not None}, **self.extra}


def evaluation_columns(cfg: Config, n_train: int) -> int:
    """How many examples evaluation forwards at once: the training's batch."""
    batch = cfg.train.batch_size
    return n_train if batch is None else max(1, min(int(batch), n_train))


def evaluate(cfg: Config, splits: Splits, parameters: dict[str, np.ndarray], *,
             test: bool = True) -> Evaluation:
    """Accuracies on train/dev/test (``test=False``: train and dev only) and the bias/variance
    diagnosis from train and dev error.

    Each split is forwarded in chunks of the training's batch (all of train in full batch), so
    evaluation never needs more buffers than a training step.
    """
    act = cfg.model.activation
    columns = evaluation_columns(cfg, splits.X_train.shape[1])
    train = rates(parameters, splits.X_train, splits.Y_train, act, columns)
    dev = rates(parameters, splits.X_dev, splits.Y_dev, act, columns)
    test_rates = rates(parameters, splits.X_test, splits.Y_test, act, columns) if test else None
    dg = cfg.diagnosis
    diagnosis = diagnose(
        train.error, dev.error, dg.bayes_error,
        bias_threshold=dg.bias_threshold, variance_threshold=dg.variance_threshold,
    )
    return Evaluation(train, dev, test_rates, diagnosis)


def rates(parameters: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray, hidden_activation: str,
          columns: int | None = None) -> Rates:
    """Accuracy and error rate of ``parameters`` on one split, from one count."""
    correct, m = correct_count(parameters, X, Y, hidden_activation, columns), X.shape[1]
    return Rates(correct / m, error_rate(correct, m))


def evaluate_test(cfg: Config, parameters: dict[str, np.ndarray],
                  stats: NormStats | None) -> dict[str, float]:
    """``test_accuracy`` and ``test_error`` of a trained run (its ``parameters`` and saved
    normalization ``stats``) on its test split, prepared again from its config: the one look at
    the test split of a sweep that hid it from its jobs."""
    if cfg.data.normalize and stats is None:
        raise DataError("the run normalized its inputs but its normalizer was not saved")
    splits = prepare_data(cfg).splits
    X_test = apply_normalizer(stats, splits.X_test) if cfg.data.normalize else splits.X_test
    columns = evaluation_columns(cfg, splits.X_train.shape[1])
    test = rates(parameters, X_test, splits.Y_test, cfg.model.activation, columns)
    return {"test_accuracy": test.accuracy, "test_error": test.error}


# -- all five in one process ---------------------------------------------------------------------


@dataclass
class Outcome:
    """Everything one run produced (what the stages write to files, in memory)."""

    cfg: Config
    data: PreparedData
    splits: Splits  # after normalization
    stats: NormStats | None
    init_parameters: dict[str, np.ndarray]
    result: TrainResult
    gradcheck: GradcheckReport | None
    evaluation: Evaluation


def require_gradcheck(cfg: Config, report: GradcheckReport | None) -> None:
    """Fail the run when backprop does not pass the check (and the config says it must)."""
    if report is None or report.passed or not cfg.gradcheck.fail:
        return
    worst = max([report.at_init, report.at_trained], key=lambda r: r.difference)
    # one-sided differences err O(epsilon): a correct backprop can miss the central threshold
    hint = ("; forward differences err O(epsilon): use gradcheck.method=central or raise "
            "gradcheck.threshold (e.g. 1e-5)" if cfg.gradcheck.method == "forward" else "")
    raise GradientCheckError(
        f"gradient check failed: difference {report.difference:.3g} >= threshold "
        f"{cfg.gradcheck.threshold:g}, worst array {worst.worst_array}{hint}"
    )


def run_all(
    cfg: Config,
    callback: Callable[[int, float, float | None], None] | None = None,
    data: PreparedData | None = None,
    result: TrainResult | None = None,
    *,
    test: bool = True,
) -> Outcome:
    """All five steps in one process (``data`` when already prepared by the caller; ``result``
    when this configuration was already trained, e.g. in a stacked sweep: training is skipped and
    ``callback`` sees the recorded history; ``test=False``: the test split is not evaluated)."""
    data = prepare_data(cfg) if data is None else data
    splits, stats = normalize(cfg, data.splits)
    tc = train_config(cfg, data.n_features)
    init = initial_parameters(tc)
    if result is None:
        result = fit(cfg, splits, callback)
    elif callback is not None:
        for k, (i, cost) in enumerate(zip(result.iterations, result.costs)):
            callback(i, cost, result.dev_costs[k] if k < len(result.dev_costs) else None)
    report = (check_gradients(cfg, splits, init, result.parameters)
              if cfg.gradcheck.enabled else None)
    evaluation = evaluate(cfg, splits, result.parameters, test=test)
    return Outcome(cfg, data, splits, stats, init, result, report, evaluation)
