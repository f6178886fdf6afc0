"""The configuration schema (structured configs) and its loading (the value checks: ``config_checks``).

``conf/`` holds plain YAML so that DVC's own Hydra composition (``dvc exp run -S``) and our Hydra app
compose the very same ``params.yaml``. Every entry point then turns that dictionary into a
:class:`Config` with :func:`load`, which checks types (OmegaConf structured merge) and values (ranges,
choices, files) and raises a :class:`~dlpractice.errors.ConfigError` whose message is one line naming
the key, the value and what is allowed — before anything is written or any run is opened.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from typing import Any

# the value checks, kept importable from here (config.validate, config.train_examples, …)
from dlpractice.config_checks import ACTIVATIONS as ACTIVATIONS
from dlpractice.config_checks import DATASETS as DATASETS
from dlpractice.config_checks import GRADCHECK_METHODS as GRADCHECK_METHODS
from dlpractice.config_checks import INITS as INITS
from dlpractice.config_checks import REGULARIZERS as REGULARIZERS
from dlpractice.config_checks import SELECTION_METRICS as SELECTION_METRICS
from dlpractice.config_checks import check_fits_data as check_fits_data
from dlpractice.config_checks import train_examples as train_examples
from dlpractice.config_checks import validate as validate

# what names and identifies a config, kept importable from here (users' scripts call config.config_hash)
from dlpractice.config_identity import config_hash as config_hash
from dlpractice.config_identity import flatten as flatten
from dlpractice.config_identity import run_name as run_name
from dlpractice.config_identity import shown_in_name as shown_in_name
from dlpractice.config_identity import tests_hidden as tests_hidden
from dlpractice.errors import ConfigError


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
    _check_containers(raw)
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
_CONTAINER_NAMES = {list: "a list ([a, b, …])", dict: "a mapping ({name: value, …})"}
_ALLOWED_TYPES = {list: (list, tuple), dict: (dict,)}


@lru_cache(maxsize=1)
def _container_keys() -> dict[tuple[str, str], type]:
    """The schema's list and mapping keys (``("model", "hidden"): list``), optional ones too."""
    import types
    from typing import Union, get_args, get_origin, get_type_hints

    out = {}
    for section in _SECTIONS:
        for key, hint in get_type_hints(Config.__dataclass_fields__[section].default_factory).items():
            options = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
            kinds = {get_origin(t) or t for t in options if t is not type(None)}
            if len(kinds) == 1 and kinds <= {list, dict}:
                out[(section, key)] = kinds.pop()
    return out


def _check_containers(raw: dict[str, Any]) -> None:
    """A list or mapping key given another kind of value (``model.hidden=5``): one line naming
    it, before OmegaConf's message, which names neither the value nor what is allowed."""
    for (section, key), kind in _container_keys().items():
        part = raw.get(section)
        value = part.get(key) if isinstance(part, dict) else None
        if value is not None and value != "???" and not isinstance(value, _ALLOWED_TYPES[kind]):
            raise ConfigError(f"{section}.{key}={value!r} is not allowed: must be "
                              f"{_CONTAINER_NAMES[kind]}")


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


def is_schema_field(key: str) -> bool:
    """Is ``key`` a field of the schema itself (``train.iterations``), not an entry of one of its
    dicts (``tracking.tags.team``, which Hydra adds with ``+``) nor unknown?"""
    node: Any = Config()
    for part in key.split("."):
        if not hasattr(node, "__dataclass_fields__") or part not in node.__dataclass_fields__:
            return False
        node = getattr(node, part)
    return True


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
