"""The composed configs and their schema: presets, user-facing names, one-line errors."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from dlpractice import config
from dlpractice.errors import ConfigError

CONF = Path(__file__).resolve().parents[1] / "conf"


def composed(*overrides: str) -> config.Config:
    with initialize_config_dir(str(CONF), version_base=None):
        raw = compose("config", overrides=list(overrides))
    return config.load(raw, check_files=False)


def test_defaults_compose_into_a_valid_config():
    cfg = composed()
    assert cfg.data.name == "circles" and cfg.init.name == "he" and cfg.regularizer.name == "none"
    assert cfg.course_compat is False and cfg.seed == 0
    assert cfg.tracking.uri is None and cfg.tracking.experiment == "dlpractice"
    assert cfg.tracking.stale_after_s == 3600  # an hour without a heartbeat (another host's run)
    assert cfg.recipe.max_steps == 8 and composed("recipe.max_steps=1").recipe.max_steps == 1


@pytest.mark.parametrize("group,options", [
    ("init", ["zeros", "random", "he", "xavier", "glorot"]),
    ("regularizer", ["none", "l2", "l1", "dropout"]),
    ("data", ["circles", "moons", "blobs", "spiral", "football_like"]),
])
def test_every_user_facing_option_composes(group, options):
    for option in options:
        cfg = composed(f"{group}={option}")
        assert getattr(cfg, group).name == option


def test_regularization_preset_reproduces_the_course_settings():
    cfg = composed("experiment=regularization", "data=file", "data.path=/x/football.mat",
                   "regularizer=l2", "regularizer.lambd=0.7")
    assert cfg.course_compat is True and cfg.study == "regularization"
    assert cfg.model.hidden == [20, 3] and cfg.init.name == "xavier"
    assert cfg.train.learning_rate == 0.3 and cfg.train.iterations == 30000
    assert cfg.data.name == "file" and cfg.data.path == "/x/football.mat"
    assert cfg.data.normalize is False
    assert cfg.regularizer.name == "l2" and cfg.regularizer.lambd == 0.7
    assert cfg.tracking.experiment == "regularization"


def test_initialization_and_gradient_checking_presets():
    init = composed("experiment=initialization", "init=zeros")
    assert (init.model.hidden, init.train.learning_rate, init.train.iterations) == ([10, 5], 0.01, 15000)
    assert init.course_compat and init.init.name == "zeros" and init.data.name == "circles"
    gc = composed("experiment=gradient_checking")
    assert gc.study == "gradient_checking" and gc.gradcheck.enabled


@pytest.mark.parametrize("overrides,needle", [
    (["train.learning_rate=abc"], "train.learning_rate"),
    (["train.learning_rate=-1"], "train.learning_rate=-1"),
    (["train.iterations=0"], "train.iterations=0"),
    (["regularizer=dropout", "regularizer.keep_prob=1.5"], "regularizer.keep_prob=1.5"),
    (["regularizer=dropout", "regularizer.keep_prob=0"], "regularizer.keep_prob=0"),
    (["regularizer=dropout", "regularizer.keep_prob=[0.5]"], "one value per hidden layer"),
    (["regularizer=l2", "regularizer.lambd=-0.1"], "regularizer.lambd=-0.1"),
    (["regularizer.lambd=0.7"], "regularizer=none"),
    (["model.hidden=[0]"], "model.hidden"),
    (["model.activation=softmax"], "model.activation='softmax'"),
    (["+train.momentum=0.9"], "unknown config key 'train.momentum'"),
    (["data=file"], "data.path"),
    (["data.ratios=[0.5,0.5,0.5]"], "data.ratios"),
    (["gradcheck.method=backward"], "gradcheck.method='backward'"),
    (["diagnosis.bayes_error=2"], "diagnosis.bayes_error=2"),
    (["selection.metric=test_error"],
     "selection.metric='test_error' is not allowed: choose one of dev_error, dev_cost"),
    (["selection.hide_test=maybe"],
     "selection.hide_test='maybe' is not allowed: must be true or false"),
    (["recipe.max_steps=0"], "recipe.max_steps=0 is not allowed: must be an integer >= 1"),
    (["tracking.enabled=false", "tracking.register=true"],
     "tracking.register=true is not allowed with tracking.enabled=false: a registered model comes "
     "from an MLflow run (leave tracking.register null or false)"),
    (["recipe.max_steps=-3"], "recipe.max_steps=-3 is not allowed: must be an integer >= 1"),
    (["recipe.max_steps=many"], "recipe.max_steps='many' is not allowed: must be an integer"),
])
def test_bad_values_fail_with_one_line_naming_key_value_and_allowed(overrides, needle):
    with pytest.raises(ConfigError) as err:
        composed(*overrides)
    message = str(err.value)
    assert needle in message
    assert "\n" not in message


def test_missing_data_file_is_reported():
    with pytest.raises(ConfigError, match="data.path='/no/such/file.mat'.*no such file"):
        config.load({"data": {"name": "file", "path": "/no/such/file.mat"}})


def test_run_names_are_readable():
    assert config.run_name(composed("init=he", "regularizer=l2", "regularizer.lambd=0.7")) == "he-l2_0.7"
    assert config.run_name(composed("init=xavier", "regularizer=dropout")) == "xavier-dropout_0.86"
    assert config.run_name(composed("init=zeros")) == "zeros-none"


def test_config_hash_ignores_tracking_but_not_settings():
    a = composed("init=he")
    b = composed("init=he", "tracking.experiment=other", "tracking.rerun=true",
                 "recipe.max_steps=3")
    c = composed("init=xavier")
    assert config.config_hash(a) == config.config_hash(b) != config.config_hash(c)


def test_selection_composes_with_its_defaults_and_the_studies_show_their_tests():
    cfg = composed()
    assert (cfg.selection.metric, cfg.selection.hide_test) == ("dev_error", True)
    assert composed("selection.metric=dev_cost").selection.metric == "dev_cost"
    for setting in sorted((CONF / "study").glob("*/*.yaml")):
        study = composed(f"study/{setting.parent.name}={setting.stem}")
        assert study.selection.hide_test is False, setting  # the notebooks report every test
        assert study.selection.metric == "dev_error"


def test_config_hash_holds_whether_test_metrics_were_hidden_not_the_selection_rule():
    """A sweep's job that hid its test metrics is another record than a run that logged them; the
    rule a sweep chooses by changes no run's record. Without hidden tests the hash is the one
    runs had before the selection settings existed (the config without them)."""
    import hashlib
    import json

    shown = composed("init=he")
    other_rule = composed("init=he", "selection.metric=dev_cost", "selection.hide_test=false")
    assert config.config_hash(shown) == config.config_hash(other_rule)
    assert config.config_hash(shown, test_hidden=True) == config.config_hash(
        other_rule, test_hidden=True) != config.config_hash(shown)
    before = {k: v for k, v in shown.to_dict().items()
              if k not in ("tracking", "selection", "recipe")}
    digest = hashlib.sha256(json.dumps(before, sort_keys=True, separators=(",", ":"))
                            .encode()).hexdigest()
    assert config.config_hash(shown) == digest
    hidden = json.dumps({**before, "test_hidden": True}, sort_keys=True, separators=(",", ":"))
    assert config.config_hash(shown, test_hidden=True) == hashlib.sha256(hidden.encode()).hexdigest()


def test_only_a_sweeps_jobs_hide_their_test_split():
    hide, show = composed(), composed("selection.hide_test=false")
    assert config.tests_hidden(hide, sweep=True) is True
    assert config.tests_hidden(hide, sweep=False) is False  # a single run is no selection
    assert config.tests_hidden(show, sweep=True) is False
    assert config.tests_hidden(show, sweep=False) is False


def test_flatten_gives_dotted_param_names():
    flat = config.flatten(composed().to_dict())
    assert flat["train.learning_rate"] == 0.0075 and flat["regularizer.keep_prob"] == 1.0
    assert "data.ratios" in flat and "seed" in flat


def test_configs_loaded_one_after_another_are_each_what_they_say():
    """A sweep loads many configs that differ in a few values, in any order: each loads as its
    own values, and a refused value gives the same error whatever was loaded before."""
    import copy

    with initialize_config_dir(str(CONF), version_base=None):
        raw = compose("config", overrides=["experiment=regularization", "regularizer=l2"])
    base = config.load(raw, check_files=False).to_dict()
    variants = [("regularizer", "lambd", 0.05, 0.05), ("regularizer", "lambd", 1, 1.0),
                ("seed", None, 7, 7), ("train", "learning_rate", "0.25", 0.25),
                ("model", "hidden", [4, 4], [4, 4]), ("init", "name", "he", "he")]
    for order in (variants, variants[::-1]):
        for section, key, value, loaded in order:
            d = copy.deepcopy(base)
            if key is None:
                d[section] = value
            else:
                d[section][key] = value
            config.load(base, check_files=False)
            got = config.load(d, check_files=False).to_dict()
            expected = copy.deepcopy(base)
            if key is None:
                expected[section] = loaded
            else:
                expected[section][key] = loaded
            assert got == expected, (section, key, value)
            assert type(got[section] if key is None else got[section][key]) is type(loaded)
    refused = [("regularizer", "lambd", "much",
                "regularizer.lambd='much' is not allowed: must be a number"),
               ("train", "iterations", -3, "train.iterations=-3 is not allowed: must be >= 1")]
    for section, key, value, message in refused:
        d = copy.deepcopy(base)
        d[section][key] = value
        for before in (base, {}):
            config.load(before, check_files=False)
            for _ in range(2):  # and again right after itself
                with pytest.raises(ConfigError) as error:
                    config.load(d, check_files=False)
                assert str(error.value) == message


def test_every_preset_loads_as_omegaconfs_merge_into_the_whole_schema_would_type_it():
    """Sections are typed one by one (and remembered): the same values, of the same types, as
    OmegaConf's merge of the whole config into the schema; a loaded config changed by its
    caller leaves the next load alone."""
    from omegaconf import OmegaConf

    presets = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
    extra = [[], ["regularizer=l2", "regularizer.lambd=0"], ["regularizer=dropout", "seed=3"],
             ["data=moons", "train.batch_size=64", "+tracking.tags.team=a"]]
    for preset in presets:
        for overrides in extra:
            with initialize_config_dir(str(CONF), version_base=None):
                raw = compose("config", overrides=[f"experiment={preset}", *overrides])
            plain = OmegaConf.to_container(raw, resolve=True)
            whole = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(config.Config),
                                                        plain))
            loaded = config.load(raw, check_files=False)
            assert loaded == whole, (preset, overrides)
            assert repr(loaded) == repr(whole)  # 0 and 0.0, 1 and True told apart
            loaded.regularizer.lambd = 99.0
            loaded.model.hidden.append(1)
            assert config.load(raw, check_files=False) == whole
    with pytest.raises(ConfigError) as error:  # a key that is not a string stays as it was given
        config.load({"data": {"train_size": {1: 2}}})
    assert str(error.value).startswith("data.train_size={1: 2} is not allowed")


@pytest.mark.parametrize(("override", "n_train", "count"), [
    ("data.train_size=null", 300, 300),
    ("data.train_size=2", 300, 2),
    ("data.train_size=300", 300, 300),
    ("data.train_size=0.25", 300, 75),
    ("data.train_size=1.0", 300, 300),
    ("data.train_size=0.5", 5, 3),  # 2.5: halves round up
    ("data.train_size=0.1", 25, 3),  # 2.5000000000000004
    ("data.train_size=0.3", 5, 2),  # 1.5
    ("data.train_size=0.005", 300, 2),  # 1.5
])
def test_train_size_is_a_count_a_fraction_or_all(override, n_train, count):
    assert config.train_examples(composed(override), n_train) == count


TRAIN_SIZE_ALLOWED = ("must be null (the whole train split), a number of examples in [2, 300] or "
                      "a fraction in (0, 1]")


@pytest.mark.parametrize(("override", "message"), [
    ("data.train_size=301", f"data.train_size=301 is not allowed: {TRAIN_SIZE_ALLOWED}"),
    ("data.train_size=0.004", "data.train_size=0.004 is not allowed: 0.004 of the train split's "
                              f"300 examples rounds to 1; {TRAIN_SIZE_ALLOWED}"),
])
def test_train_size_must_fit_the_train_split(override, message):
    with pytest.raises(ConfigError) as err:
        config.train_examples(composed(override), 300)
    assert str(err.value) == message


@pytest.mark.parametrize("value", ["0", "-3", "1", "1.5", "0.0", "abc", "true", "nan"])
def test_train_size_values_no_split_can_take(value):
    with pytest.raises(ConfigError) as err:
        composed(f"data.train_size={value}")
    shown = {"abc": "'abc'", "true": "True", "nan": "nan"}.get(value, value)
    assert str(err.value) == (f"data.train_size={shown} is not allowed: must be null (the whole "
                              "train split), a number of examples >= 2 or a fraction in (0, 1]")


@pytest.mark.parametrize("value", ["0.5", "-0.1", "0.7"])
def test_label_noise_below_a_half(value):
    with pytest.raises(ConfigError) as err:
        composed(f"data.label_noise={value}")
    assert str(err.value) == (f"data.label_noise={value} is not allowed: must be a finite number "
                              "in [0.0, 0.5)")
    assert composed("data.label_noise=0.49").data.label_noise == 0.49


def test_a_section_left_to_its_defaults_after_another_config_set_it_gets_the_defaults():
    """Each section's schema is built once and merged into for every config: a value one config
    sets never becomes another's default."""
    first = config.load({"regularizer": {"name": "l2", "lambd": 0.9, "keep_prob": 0.5},
                         "train": {"iterations": 7}})
    second = config.load({"regularizer": {"name": "l2"}})
    assert (first.regularizer.lambd, first.regularizer.keep_prob, first.train.iterations) == (
        0.9, 0.5, 7)
    assert (second.regularizer.lambd, second.regularizer.keep_prob) == (0.0, 1.0)
    assert second.train.iterations == config.TrainConfigSection().iterations


def test_the_committed_params_yaml_is_the_default_config():
    """Plain `dvc repro` reads params.yaml: it holds what conf/ composes, every key and value (a
    key missing there shows as a changed param in every `dvc exp diff`)."""
    import yaml
    from omegaconf import OmegaConf

    with initialize_config_dir(str(CONF), version_base=None):
        raw = compose("config")
    expected = OmegaConf.to_container(raw, resolve=True)
    assert yaml.safe_load((CONF.parent / "params.yaml").read_text()) == expected


@pytest.mark.parametrize("raw,line", [
    ({"model": {"hidden": 5}}, "model.hidden=5 is not allowed: must be a list ([a, b, …])"),
    ({"model": {"hidden": {"a": 1}}}, "model.hidden={'a': 1} is not allowed: must be a list ([a, b, …])"),
    ({"regularizer": {"flip_axes": 0}}, "regularizer.flip_axes=0 is not allowed: must be a list ([a, b, …])"),
    ({"data": {"feature_scales": "big"}},
     "data.feature_scales='big' is not allowed: must be a list ([a, b, …])"),
    ({"tracking": {"tags": ["a"]}},
     "tracking.tags=['a'] is not allowed: must be a mapping ({name: value, …})"),
])
def test_a_list_or_mapping_key_given_another_kind_of_value_is_one_line(raw, line):
    with pytest.raises(ConfigError) as info:
        config.load(raw, check_files=False)
    assert str(info.value) == line


def test_lists_as_tuples_and_optional_lists_left_out_still_load():
    cfg = config.load({"model": {"hidden": (7, 3)}, "data": {"feature_scales": None},
                       "tracking": {"tags": {"team": "a"}}}, check_files=False)
    assert (cfg.model.hidden, cfg.data.feature_scales, cfg.tracking.tags) == ([7, 3], None,
                                                                              {"team": "a"})

