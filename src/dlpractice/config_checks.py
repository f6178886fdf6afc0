"""The value checks of a loaded config that its types cannot express: choices, ranges, files, the
pairing of keys, and sizes against the data (a train size, flip axes, feature scales). Each fails
with one :class:`~dlpractice.errors.ConfigError` line naming the key, the value and what is allowed.
Reads :class:`~dlpractice.config.Config` objects; never composes or loads one.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlpractice.errors import ConfigError

if TYPE_CHECKING:
    from dlpractice.config import Config

DATASETS = ("circles", "moons", "blobs", "spiral", "football_like", "file")
INITS = ("zeros", "random", "he", "xavier", "glorot")
REGULARIZERS = ("none", "l2", "l1", "dropout")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu")
GRADCHECK_METHODS = ("central", "forward")
SELECTION_METRICS = ("dev_error", "dev_cost")


def _fail(key: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"{key}={value!r} is not allowed: {allowed}")


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(key, value, f"choose one of {', '.join(choices)}")


def _finite(key: str, value: float, low: float, high: float | None = None,
            low_open: bool = False, high_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and math.isfinite(value)
    if ok:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = ("(" if low_open else "[") + f"{low}"
        hi = "inf)" if high is None else f"{high}" + (")" if high_open else "]")
        _fail(key, value, f"must be a finite number in {lo}, {hi}")


def validate(cfg: Config, *, check_files: bool = True) -> None:
    """Value checks the type layer cannot express; raises ConfigError with one line."""
    d, r, t = cfg.data, cfg.regularizer, cfg.train
    _choice("data", d.name, DATASETS)
    if d.name == "file":
        if not d.path:
            _fail("data.path", d.path, "data=file needs data.path (a .mat, .npz or .csv file)")
        if check_files and not Path(d.path).expanduser().is_file():
            _fail("data.path", d.path, "no such file")
    if d.name not in ("file", "football_like") and d.n_samples < 4:
        _fail("data.n_samples", d.n_samples, "must be >= 4")
    _finite("data.noise", d.noise, 0.0)
    if len(d.ratios) != 3 or any(not math.isfinite(x) or x < 0 for x in d.ratios) or not (
        math.isclose(sum(d.ratios), 1.0, abs_tol=1e-9) and d.ratios[0] > 0
    ):
        _fail("data.ratios", list(d.ratios), "three non-negative train/dev/test ratios summing to 1")
    for key, size in (("data.dev_size", d.dev_size), ("data.test_size", d.test_size)):
        if size is not None and size < 1:
            _fail(key, size, "a positive number of examples, or null to use data.ratios")
    if d.feature_scales is not None:
        for s in d.feature_scales:
            _finite("data.feature_scales", s, 0.0, low_open=True)
    _finite("data.label_noise", d.label_noise, 0.0, 0.5, high_open=True)
    _check_train_size(d.train_size)

    if not cfg.model.hidden or any(n < 1 for n in cfg.model.hidden):
        _fail("model.hidden", list(cfg.model.hidden), "a non-empty list of positive layer sizes")
    _choice("model.activation", cfg.model.activation, ACTIVATIONS)
    _choice("init", cfg.init.name, INITS)
    _finite("init.scale", cfg.init.scale, 0.0, low_open=True)

    _choice("regularizer", r.name, REGULARIZERS)
    _finite("regularizer.lambd", r.lambd, 0.0)
    if r.name == "none" and r.lambd:
        _fail("regularizer.lambd", r.lambd,
              "must be 0 with regularizer=none (choose regularizer=l2 or l1)")
    if r.name == "none" and r.keep_prob != 1.0:
        _fail("regularizer.keep_prob", r.keep_prob,
              "must be 1 with regularizer=none (choose regularizer=dropout)")
    keep = r.keep_prob if isinstance(r.keep_prob, (list, tuple)) else [r.keep_prob]
    for kp in keep:
        if isinstance(kp, bool) or not isinstance(kp, (int, float)):
            _fail("regularizer.keep_prob", r.keep_prob, "a number in (0, 1] or one per hidden layer")
        _finite("regularizer.keep_prob", kp, 0.0, 1.0, low_open=True)
    if isinstance(r.keep_prob, (list, tuple)) and len(r.keep_prob) != len(cfg.model.hidden):
        _fail("regularizer.keep_prob", list(r.keep_prob),
              f"one value per hidden layer ({len(cfg.model.hidden)})")
    _finite("regularizer.input_keep_prob", r.input_keep_prob, 0.0, 1.0, low_open=True)
    if r.early_stopping_patience is not None and r.early_stopping_patience < 1:
        _fail("regularizer.early_stopping_patience", r.early_stopping_patience, ">= 1 or null")
    _finite("regularizer.jitter", r.jitter, 0.0)

    _finite("train.learning_rate", t.learning_rate, 0.0, low_open=True)
    if t.iterations < 1:
        _fail("train.iterations", t.iterations, "must be >= 1")
    if t.batch_size is not None and t.batch_size < 1:
        _fail("train.batch_size", t.batch_size, "a positive batch size, or null for full batch")
    if t.record_every < 1:
        _fail("train.record_every", t.record_every, "must be >= 1")

    g = cfg.gradcheck
    _finite("gradcheck.epsilon", g.epsilon, 0.0, 1e-2, low_open=True)
    _finite("gradcheck.threshold", g.threshold, 0.0, low_open=True)
    _choice("gradcheck.method", g.method, GRADCHECK_METHODS)
    if g.max_examples < 1:
        _fail("gradcheck.max_examples", g.max_examples, "must be >= 1")

    dg = cfg.diagnosis
    _finite("diagnosis.bayes_error", dg.bayes_error, 0.0, 1.0)
    _finite("diagnosis.bias_threshold", dg.bias_threshold, 0.0, 1.0)
    _finite("diagnosis.variance_threshold", dg.variance_threshold, 0.0, 1.0)
    if not cfg.tracking.experiment:
        _fail("tracking.experiment", cfg.tracking.experiment, "a non-empty experiment name")
    # runs beat every 10 s only while they train: a minute's silence is no sign of death
    _finite("tracking.stale_after_s", cfg.tracking.stale_after_s, 60.0)
    for name, value in cfg.tracking.tags.items():
        if not isinstance(value, str):
            _fail(f"tracking.tags.{name}", value, "a text value")
    if cfg.tracking.register and not cfg.tracking.enabled:  # a model is registered from its run
        raise ConfigError("tracking.register=true is not allowed with tracking.enabled=false: "
                          "a registered model comes from an MLflow run (leave tracking.register "
                          "null or false)")
    _choice("selection.metric", cfg.selection.metric, SELECTION_METRICS)
    if cfg.recipe.max_steps < 1:
        _fail("recipe.max_steps", cfg.recipe.max_steps, "must be an integer >= 1")


TRAIN_SIZE_ALLOWED = ("must be null (the whole train split), a number of examples {} or a fraction "
                      "in (0, 1]")


def _check_train_size(size: Any, n_train: int | None = None) -> None:
    allowed = TRAIN_SIZE_ALLOWED.format(">= 2" if n_train is None else f"in [2, {n_train}]")
    if size is None:
        return
    if isinstance(size, bool) or not isinstance(size, (int, float)):
        _fail("data.train_size", size, allowed)
    if isinstance(size, int) and (size < 2 or (n_train is not None and size > n_train)):
        _fail("data.train_size", size, allowed)
    if isinstance(size, float) and not (math.isfinite(size) and 0 < size <= 1):
        _fail("data.train_size", size, allowed)


def train_examples(cfg: Config, n_train: int) -> int:
    """How many examples of an ``n_train``-example train split the run trains on
    (``data.train_size``: null -> all, an integer -> itself, a fraction -> ``fraction * n_train``
    rounded, halves up); ConfigError (naming the key) when that is not in [2, n_train]."""
    size = cfg.data.train_size
    _check_train_size(size, n_train)
    if size is None:
        return n_train
    if isinstance(size, float):
        count = math.floor(size * n_train + 0.5)
        if count < 2:
            _fail("data.train_size", size, f"{size:g} of the train split's {n_train} examples "
                  f"rounds to {count}; " + TRAIN_SIZE_ALLOWED.format(f"in [2, {n_train}]"))
        return count
    return size


def check_fits_data(cfg: Config, n_features: int) -> None:
    """Layer sizes must fit the data: e.g. keep_prob per layer, flip axes within the features."""
    for axis in cfg.regularizer.flip_axes:
        if not 0 <= axis < n_features:
            _fail("regularizer.flip_axes", list(cfg.regularizer.flip_axes),
                  f"feature indices in 0..{n_features - 1} ({cfg.data.name} has {n_features})")
    scales = cfg.data.feature_scales
    if scales is not None and len(scales) != n_features:
        _fail("data.feature_scales", list(scales),
              f"one scale per feature ({cfg.data.name} has {n_features})")
