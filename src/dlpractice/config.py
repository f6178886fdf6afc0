"""The configuration schema (structured configs) and its validation.

``conf/`` holds plain YAML so that DVC's own Hydra composition (``dvc exp run -S``) and our Hydra app
compose the very same ``params.yaml``. Every entry point then turns that dictionary into a
:class:`Config` with :func:`load`, which checks types (OmegaConf structured merge) and values (ranges,
choices, files) and raises a :class:`~dlpractice.errors.ConfigError` whose message is one line naming
the key, the value and what is allowed — before anything is written or any run is opened.
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

# what names and identifies a config, kept importable from here (users' scripts call config.config_hash)
from dlpractice.config_identity import config_hash as config_hash
from dlpractice.config_identity import flatten as flatten
from dlpractice.config_identity import run_name as run_name
from dlpractice.config_identity import tests_hidden as tests_hidden
from dlpractice.errors import ConfigError

DATASETS = ("circles", "moons", "blobs", "spiral", "football_like", "file")
INITS = ("zeros", "random", "he", "xavier", "glorot")
REGULARIZERS = ("none", "l2", "l1", "dropout")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu")
GRADCHECK_METHODS = ("central", "forward")
SELECTION_METRICS = ("dev_error", "dev_cost")


@dataclass
class DataConfig:
    name: str = "circles"
    path: str | None = None  # for name=file: .mat, .npz or .csv
    n_samples: int = 500  # generated datasets
    noise: float = 0.1
    ratios: list[float] = field(default_factory=lambda: [0.6, 0.2, 0.2])  # train/dev/test
    dev_size: int | None = None  # fixed sizes instead of ratios (big data)
    test_size: int | None = None
    split_heldout: bool = False  # a file's Xval/yval: False = dev and test (course), True = re-split
    normalize: bool = True  # zero mean, unit variance fitted on train
    feature_scales: list[float] | None = None  # multiply features (the normalization study)
    label_noise: float = 0.0  # fraction of labels flipped at random before the split
    # train on part of the train split (after splitting: dev and test stay): None = all, an
    # integer = that many examples, a float in (0, 1] = that fraction
    train_size: Any = None


@dataclass
class ModelConfig:
    hidden: list[int] = field(default_factory=lambda: [10, 5])
    activation: str = "relu"


@dataclass
class InitConfig:
    name: str = "he"
    scale: float = 10.0  # init=random only: N(0, 1) * scale


@dataclass
class RegularizerConfig:
    name: str = "none"
    lambd: float = 0.0  # L2 strength (l2) or L1 strength (l1)
    keep_prob: Any = 1.0  # dropout: one value or one per hidden layer
    input_keep_prob: float = 1.0
    early_stopping_patience: int | None = None  # evaluations without dev improvement
    early_stopping_min_delta: float = 0.0
    flip_axes: list[int] = field(default_factory=list)  # augmentation: mirror these features
    jitter: float = 0.0  # augmentation: input noise std


@dataclass
class TrainConfigSection:
    learning_rate: float = 0.0075
    iterations: int = 10000
    batch_size: int | None = None  # None: full batch
    record_every: int = 100


@dataclass
class GradcheckConfig:
    enabled: bool = True
    epsilon: float = 1e-7
    threshold: float = 2e-7
    method: str = "central"
    max_examples: int = 64
    fail: bool = True  # a failing check fails the pipeline


@dataclass
class DiagnosisConfig:
    bayes_error: float = 0.0
    bias_threshold: float = 0.05
    variance_threshold: float = 0.05


@dataclass
class TrackingConfig:
    enabled: bool = True
    uri: str | None = None  # default: sqlite:///<project>/mlflow.db (or MLFLOW_TRACKING_URI)
    experiment: str = "dlpractice"
    run_name: str | None = None  # default: derived from the settings, e.g. he-l2_0.7
    note: str = ""  # the run's MLflow description (a study table's comment)
    tags: dict[str, str] = field(default_factory=dict)  # extra MLflow run tags
    rerun: bool = False  # sweeps skip configurations already FINISHED in the store unless true
    # a RUNNING run of another host without a heartbeat for this long is marked KILLED
    stale_after_s: float = 3600.0
    # register the model (a sweep's selected run, or a single run) under the experiment's name and
    # move its alias champion there; null: true for a sweep or study, false for a single run
    register: bool | None = None


@dataclass
class SelectionConfig:
    """How a sweep (``-m``) chooses its best setting: on dev data only."""

    metric: str = "dev_error"  # or dev_cost; ties: the lower dev_cost, then the earlier job
    hide_test: bool = True  # sweep jobs log no test metrics; only the selected run is tested


@dataclass
class ReportConfig:
    """What a run writes into its folder beside its numbers."""

    figures: bool = True  # cost, gradient norms, weights, boundary (studies draw their own: false)


@dataclass
class RecipeConfig:
    """``python -m dlpractice.recipe``: the basic recipe's loop (not part of a run's record)."""

    max_steps: int = 8  # runs at most (step 0, the start, is one)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    init: InitConfig = field(default_factory=InitConfig)
    regularizer: RegularizerConfig = field(default_factory=RegularizerConfig)
    train: TrainConfigSection = field(default_factory=TrainConfigSection)
    gradcheck: GradcheckConfig = field(default_factory=GradcheckConfig)
    diagnosis: DiagnosisConfig = field(default_factory=DiagnosisConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    seed: int = 0
    course_compat: bool = False
    study: str | None = None  # set by the experiment presets

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def hidden_keep_probs(self) -> float | tuple[float, ...]:
        kp = self.regularizer.keep_prob
        return float(kp) if isinstance(kp, (int, float)) else tuple(float(k) for k in kp)


def load(raw: Any, *, check_files: bool = True) -> Config:
    """Validate a composed config (dict, DictConfig or params.yaml content) into a :class:`Config`.

    Keys outside the schema (e.g. Hydra's own ``hydra`` node) are rejected except ``hydra``.
    """
    from omegaconf import DictConfig
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(raw, DictConfig):
        # Hydra's own node holds ${hydra:...} values that only resolve inside a job: leave it out
        # (and don't spend time converting it). Each section is resolved where it is, so its
        # interpolations see the whole config; no copy of the config is made.
        try:  # e.g. train.iterations='${oops}'
            raw = {k: _plain(raw, k) for k in raw if k != "hydra"}
        except OmegaConfBaseException as exc:
            raise ConfigError(_config_error_line(exc)) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config must be a mapping, got {type(raw).__name__}")
    raw = {k: v for k, v in raw.items() if k != "hydra"}
    try:
        cfg = _typed(raw)
    except OmegaConfBaseException as exc:
        raise ConfigError(_config_error_line(exc)) from None
    validate(cfg, check_files=check_files)
    return cfg


def _typed(raw: dict[str, Any]) -> Config:
    """``raw`` (plain, resolved) merged into the schema section by section, each merge cached
    (a sweep's jobs differ in a section or two; merging a whole config costs ~15 ms); a section
    that does not merge is merged again in the whole config, whose error names its full key."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    sections = {k: v for k, v in raw.items() if k in _SECTIONS and isinstance(v, dict)}
    rest = {k: v for k, v in raw.items() if k not in sections}
    try:
        keys = {k: json.dumps(v, sort_keys=True) for k, v in [*sections.items(), ("", rest)]}
        if any(json.loads(key) != (sections[k] if k else rest) for k, key in keys.items()):
            raise ValueError("json changed it (e.g. a key that is not a string)")
        typed = {k: _typed_section(k, key) for k, key in keys.items() if k}
        base = _typed_rest(keys[""])
    except (OmegaConfBaseException, TypeError, ValueError):  # OmegaConf's own merge judges it
        return OmegaConf.to_object(OmegaConf.merge(_schema(), raw))  # type: ignore[return-value]
    return copy.deepcopy(replace(base, **typed))  # the cached objects stay as they are


_SECTIONS = {name for name, f in Config.__dataclass_fields__.items()
             if isinstance(f.default_factory, type)}


@lru_cache(maxsize=1024)
def _typed_section(name: str, value_json: str) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_object(OmegaConf.merge(_section_schema(name), json.loads(value_json)))


@lru_cache(maxsize=32)
def _section_schema(name: str) -> Any:
    """Section ``name``'s structured schema, built once (merging into it makes a new config)."""
    from omegaconf import OmegaConf

    return OmegaConf.structured(Config.__dataclass_fields__[name].default_factory)


@lru_cache(maxsize=64)
def _typed_rest(rest_json: str) -> Config:
    """The top-level values (``seed``, ...) merged into the schema; its sections the defaults."""
    from omegaconf import OmegaConf

    return OmegaConf.to_object(OmegaConf.merge(_schema(), json.loads(rest_json)))  # type: ignore[return-value]


def _plain(cfg: Any, key: str) -> Any:
    """``cfg[key]`` resolved, as plain Python (a missing ``???`` value stays ``'???'``, as
    ``OmegaConf.to_container`` leaves it, for the schema to report)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import MissingMandatoryValue

    try:
        value = cfg[key]
    except MissingMandatoryValue:
        return "???"
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


@lru_cache(maxsize=1)
def _schema() -> Any:
    """The structured schema, built once (merging into it makes a new config; it stays as is)."""
    from omegaconf import OmegaConf

    return OmegaConf.structured(Config)


_TYPE_NAMES = {"Integer": "an integer", "Float": "a number", "Boolean": "true or false"}


def _config_error_line(exc: Exception) -> str:
    key = getattr(exc, "full_key", None) or ""
    msg = str(getattr(exc, "msg", None) or exc).splitlines()[0]
    if "not in" in msg and "Key" in msg:
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        where = f" in {parent}" if parent else ""
        return (f"unknown config key {key!r}; allowed keys{where}: "
                f"{', '.join(_schema_keys(parent))}")
    wrong_type = re.fullmatch(r"Value '(.*)' of type '\w+' could not be converted to (\w+)", msg)
    if key and wrong_type:
        value, wanted = wrong_type.groups()
        return f"{key}={value!r} is not allowed: must be {_TYPE_NAMES.get(wanted, wanted)}"
    not_bool = re.fullmatch(r"Value '(.*)' is not a valid bool \(type \w+\)", msg)
    if key and not_bool:
        return f"{key}={not_bool.group(1)!r} is not allowed: must be true or false"
    return f"invalid config value for {key}: {msg}" if key else f"invalid config: {msg}"


def _schema_keys(path: str) -> list[str]:
    node: Any = Config()
    for part in filter(None, path.split(".")):
        node = getattr(node, part, None)
    return sorted(asdict(node)) if node is not None and hasattr(node, "__dataclass_fields__") else []


def check_key(key: str) -> None:
    """``train.bogus`` (a key the schema does not have) -> ConfigError with one line naming the
    allowed keys; checked down to the first value that is not a section (lists, dicts)."""
    node: Any = Config()
    done: list[str] = []
    for part in key.split("."):
        if not hasattr(node, "__dataclass_fields__"):
            return
        if part not in node.__dataclass_fields__:
            where = ".".join(done)
            raise ConfigError(f"unknown config key {key!r}; allowed keys"
                              f"{' in ' + where if where else ''}: {', '.join(_schema_keys(where))}")
        node = getattr(node, part)
        done.append(part)


def _fail(key: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"{key}={value!r} is not allowed: {allowed}")


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(key, value, f"choose one of {', '.join(choices)}")


def _finite(key: str, value: float, low: float | None = None, high: float | None = None,
            low_open: bool = False, high_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low}"
        hi = "" if high is None else f"{high}" + (")" if high_open else "]")
        _fail(key, value, f"must be a finite number in {lo or '(-inf'}, {hi or 'inf)'}")


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
        _fail("regularizer.lambd", r.lambd, "0 with regularizer=none (choose regularizer=l2 or l1)")
    if r.name == "none" and r.keep_prob != 1.0:
        _fail("regularizer.keep_prob", r.keep_prob, "1 with regularizer=none (choose regularizer=dropout)")
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
