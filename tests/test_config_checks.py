"""``config_checks``: each value check's boundary, its whole one-line refusal, and the checks
against the data (a train size, flip axes, feature scales), through ``config.load`` in process."""

import pytest

from dlpractice import config
from dlpractice.errors import ConfigError

# Each check's boundary: the first value refused (its whole line) and the last one allowed.
REFUSED = [
    ({"data": {"name": "mnist"}}, "data='mnist' is not allowed: choose one of circles, moons, blobs, "
                                  "spiral, football_like, file"),
    ({"data": {"name": "file"}}, "data.path=None is not allowed: data=file needs data.path (a .mat, "
                                 ".npz or .csv file)"),
    ({"data": {"n_samples": 3}}, "data.n_samples=3 is not allowed: must be >= 4"),
    ({"data": {"noise": -0.1}}, "data.noise=-0.1 is not allowed: must be a finite number in [0.0, inf)"),
    ({"data": {"noise": float("nan")}}, "data.noise=nan is not allowed: must be a finite number in "
                                        "[0.0, inf)"),
    ({"data": {"noise": float("inf")}}, "data.noise=inf is not allowed: must be a finite number in "
                                        "[0.0, inf)"),
    ({"data": {"name": "file", "path": ""}}, "data.path='' is not allowed: data=file needs data.path "
                                             "(a .mat, .npz or .csv file)"),
    ({"data": {"train_size": "half"}}, "data.train_size='half' is not allowed: must be null (the "
                                       "whole train split), a number of examples >= 2 or a fraction "
                                       "in (0, 1]"),
    ({"data": {"train_size": True}}, "data.train_size=True is not allowed: must be null (the whole "
                                     "train split), a number of examples >= 2 or a fraction in (0, 1]"),
    ({"tracking": {"register": True, "enabled": False}},
     "tracking.register=true is not allowed with tracking.enabled=false: a registered model comes "
     "from an MLflow run (leave tracking.register null or false)"),
    ({"data": {"ratios": [0.5, 0.5]}}, "data.ratios=[0.5, 0.5] is not allowed: three non-negative "
                                       "train/dev/test ratios summing to 1"),
    ({"data": {"ratios": [1.2, -0.1, -0.1]}}, "data.ratios=[1.2, -0.1, -0.1] is not allowed: three "
                                              "non-negative train/dev/test ratios summing to 1"),
    ({"data": {"ratios": [0.6, 0.2, 0.3]}}, "data.ratios=[0.6, 0.2, 0.3] is not allowed: three "
                                            "non-negative train/dev/test ratios summing to 1"),
    ({"data": {"ratios": [0.0, 0.5, 0.5]}}, "data.ratios=[0.0, 0.5, 0.5] is not allowed: three "
                                            "non-negative train/dev/test ratios summing to 1"),
    ({"data": {"dev_size": 0}}, "data.dev_size=0 is not allowed: a positive number of examples, or "
                                "null to use data.ratios"),
    ({"data": {"test_size": 0}}, "data.test_size=0 is not allowed: a positive number of examples, "
                                 "or null to use data.ratios"),
    ({"data": {"feature_scales": [1.0, 0.0]}}, "data.feature_scales=0.0 is not allowed: must be a "
                                               "finite number in (0.0, inf)"),
    ({"data": {"label_noise": 0.5}}, "data.label_noise=0.5 is not allowed: must be a finite number "
                                     "in [0.0, 0.5)"),
    ({"data": {"train_size": 1}}, "data.train_size=1 is not allowed: must be null (the whole train "
                                  "split), a number of examples >= 2 or a fraction in (0, 1]"),
    ({"data": {"train_size": 1.5}}, "data.train_size=1.5 is not allowed: must be null (the whole "
                                    "train split), a number of examples >= 2 or a fraction in (0, 1]"),
    ({"data": {"train_size": 0.0}}, "data.train_size=0.0 is not allowed: must be null (the whole "
                                    "train split), a number of examples >= 2 or a fraction in (0, 1]"),
    ({"model": {"hidden": []}}, "model.hidden=[] is not allowed: a non-empty list of positive layer "
                                "sizes"),
    ({"model": {"hidden": [3, 0]}}, "model.hidden=[3, 0] is not allowed: a non-empty list of "
                                    "positive layer sizes"),
    ({"model": {"activation": "elu"}}, "model.activation='elu' is not allowed: choose one of relu, "
                                       "tanh, sigmoid, leaky_relu"),
    ({"init": {"name": "ones"}}, "init='ones' is not allowed: choose one of zeros, random, he, "
                                 "xavier, glorot"),
    ({"init": {"scale": 0.0}}, "init.scale=0.0 is not allowed: must be a finite number in (0.0, inf)"),
    ({"regularizer": {"name": "l3"}}, "regularizer='l3' is not allowed: choose one of none, l2, l1, "
                                      "dropout"),
    ({"regularizer": {"name": "l2", "lambd": -1.0}}, "regularizer.lambd=-1.0 is not allowed: must "
                                                     "be a finite number in [0.0, inf)"),
    ({"regularizer": {"lambd": 0.1}}, "regularizer.lambd=0.1 is not allowed: must be 0 with "
                                      "regularizer=none (choose regularizer=l2 or l1)"),
    ({"regularizer": {"keep_prob": 0.5}}, "regularizer.keep_prob=0.5 is not allowed: must be 1 with "
                                          "regularizer=none (choose regularizer=dropout)"),
    ({"regularizer": {"name": "dropout", "keep_prob": 0.0}}, "regularizer.keep_prob=0.0 is not "
     "allowed: must be a finite number in (0.0, 1.0]"),
    ({"regularizer": {"name": "dropout", "keep_prob": "a"}}, "regularizer.keep_prob='a' is not "
     "allowed: a number in (0, 1] or one per hidden layer"),
    ({"regularizer": {"name": "dropout", "keep_prob": True}}, "regularizer.keep_prob=True is not "
     "allowed: a number in (0, 1] or one per hidden layer"),
    ({"regularizer": {"name": "dropout", "keep_prob": [0.8]}}, "regularizer.keep_prob=[0.8] is not "
     "allowed: one value per hidden layer (2)"),
    ({"regularizer": {"input_keep_prob": 0.0}}, "regularizer.input_keep_prob=0.0 is not allowed: "
                                                "must be a finite number in (0.0, 1.0]"),
    ({"regularizer": {"early_stopping_patience": 0}}, "regularizer.early_stopping_patience=0 is not "
                                                      "allowed: >= 1 or null"),
    ({"regularizer": {"jitter": -0.1}}, "regularizer.jitter=-0.1 is not allowed: must be a finite "
                                        "number in [0.0, inf)"),
    ({"train": {"learning_rate": 0.0}}, "train.learning_rate=0.0 is not allowed: must be a finite "
                                        "number in (0.0, inf)"),
    ({"train": {"iterations": 0}}, "train.iterations=0 is not allowed: must be >= 1"),
    ({"train": {"batch_size": 0}}, "train.batch_size=0 is not allowed: a positive batch size, or "
                                   "null for full batch"),
    ({"train": {"record_every": 0}}, "train.record_every=0 is not allowed: must be >= 1"),
    ({"gradcheck": {"epsilon": 0.02}}, "gradcheck.epsilon=0.02 is not allowed: must be a finite "
                                       "number in (0.0, 0.01]"),
    ({"gradcheck": {"threshold": 0.0}}, "gradcheck.threshold=0.0 is not allowed: must be a finite "
                                        "number in (0.0, inf)"),
    ({"gradcheck": {"method": "backward"}}, "gradcheck.method='backward' is not allowed: choose one "
                                            "of central, forward"),
    ({"gradcheck": {"max_examples": 0}}, "gradcheck.max_examples=0 is not allowed: must be >= 1"),
    ({"diagnosis": {"bayes_error": 1.1}}, "diagnosis.bayes_error=1.1 is not allowed: must be a "
                                          "finite number in [0.0, 1.0]"),
    ({"diagnosis": {"bias_threshold": -0.1}}, "diagnosis.bias_threshold=-0.1 is not allowed: must "
                                              "be a finite number in [0.0, 1.0]"),
    ({"diagnosis": {"variance_threshold": 2.0}}, "diagnosis.variance_threshold=2.0 is not allowed: "
                                                 "must be a finite number in [0.0, 1.0]"),
    ({"tracking": {"experiment": ""}}, "tracking.experiment='' is not allowed: a non-empty "
                                       "experiment name"),
    ({"tracking": {"stale_after_s": 59.0}}, "tracking.stale_after_s=59.0 is not allowed: must be a "
                                            "finite number in [60.0, inf)"),
    ({"tracking": {"tags": {"team": [1, 2]}}}, "tracking.tags.team=[1, 2] is not allowed: a text "
                                               "value"),
    ({"selection": {"metric": "test_error"}}, "selection.metric='test_error' is not allowed: choose "
                                              "one of dev_error, dev_cost"),
    ({"recipe": {"max_steps": 0}}, "recipe.max_steps=0 is not allowed: must be an integer >= 1"),
]

ALLOWED = [
    {"data": {"n_samples": 4}}, {"data": {"name": "football_like", "n_samples": 3}},
    {"data": {"name": "file", "path": "x.mat", "n_samples": 3}}, {"data": {"noise": 0.0}},
    {"data": {"ratios": [1.0, 0.0, 0.0]}}, {"data": {"dev_size": 1, "test_size": 1}},
    {"data": {"feature_scales": [1.0, 1e-9]}}, {"data": {"label_noise": 0.4999}},
    {"data": {"train_size": 2}}, {"data": {"train_size": 1.0}}, {"model": {"hidden": [1]}},
    {"init": {"scale": 1e-12}}, {"regularizer": {"name": "l2", "lambd": 0.0}},
    {"regularizer": {"name": "dropout", "keep_prob": 1.0}},
    {"regularizer": {"name": "dropout", "keep_prob": [1.0, 1e-9]}},
    {"regularizer": {"input_keep_prob": 1.0, "early_stopping_patience": 1, "jitter": 0.0}},
    {"train": {"iterations": 1, "batch_size": 1, "record_every": 1, "learning_rate": 1e-12}},
    {"gradcheck": {"epsilon": 0.01, "max_examples": 1}},
    {"diagnosis": {"bayes_error": 1.0, "bias_threshold": 0.0, "variance_threshold": 1.0}},
    {"tracking": {"stale_after_s": 60.0}}, {"selection": {"metric": "dev_cost"}},
    {"tracking": {"register": True}}, {"tracking": {"register": False, "enabled": False}},
    {"tracking": {"enabled": False}},
    {"recipe": {"max_steps": 1}},
]


@pytest.mark.parametrize("raw,line", REFUSED)
def test_each_value_check_refuses_its_first_bad_value_in_one_line(raw, line):
    with pytest.raises(ConfigError) as info:
        config.load(raw, check_files=False)
    assert str(info.value) == line


@pytest.mark.parametrize("raw", ALLOWED)
def test_each_value_check_allows_its_last_good_value(raw):
    config.load(raw, check_files=False)


def test_a_data_file_that_is_not_there_is_refused_only_when_files_are_checked(tmp_path):
    raw = {"data": {"name": "file", "path": str(tmp_path / "none.mat")}}
    with pytest.raises(ConfigError) as info:
        config.load(raw)
    assert str(info.value) == f"data.path='{tmp_path / 'none.mat'}' is not allowed: no such file"
    cfg = config.load(raw, check_files=False)
    assert cfg.data.path == str(tmp_path / "none.mat")
    with pytest.raises(ConfigError):  # validate checks files unless told not to
        config.validate(cfg)
    (tmp_path / "none.mat").write_bytes(b"")
    assert config.load(raw).data.path == str(tmp_path / "none.mat")


@pytest.mark.parametrize("size,n_train,expected", [
    (None, 10, 10), (2, 10, 2), (10, 10, 10), (1.0, 10, 10), (0.25, 10, 3), (0.24, 10, 2),
    (0.5, 5, 3),  # 2.5 rounds half up
])
def test_train_examples_counts_the_examples_a_run_trains_on(size, n_train, expected):
    cfg = config.load({"data": {"train_size": size}}, check_files=False)
    assert config.train_examples(cfg, n_train) == expected


@pytest.mark.parametrize("size,line", [
    (11, "data.train_size=11 is not allowed: must be null (the whole train split), a number of "
         "examples in [2, 10] or a fraction in (0, 1]"),
    (0.1, "data.train_size=0.1 is not allowed: 0.1 of the train split's 10 examples rounds to 1; "
          "must be null (the whole train split), a number of examples in [2, 10] or a fraction in "
          "(0, 1]"),
])
def test_train_examples_refuses_a_size_the_split_cannot_give(size, line):
    cfg = config.load({"data": {"train_size": size}}, check_files=False)
    with pytest.raises(ConfigError) as info:
        config.train_examples(cfg, 10)
    assert str(info.value) == line


@pytest.mark.parametrize("raw,line", [
    ({"regularizer": {"flip_axes": [2]}},
     "regularizer.flip_axes=[2] is not allowed: feature indices in 0..1 (circles has 2)"),
    ({"regularizer": {"flip_axes": [0, -1]}},
     "regularizer.flip_axes=[0, -1] is not allowed: feature indices in 0..1 (circles has 2)"),
    ({"data": {"feature_scales": [1.0]}},
     "data.feature_scales=[1.0] is not allowed: one scale per feature (circles has 2)"),
])
def test_settings_that_do_not_fit_the_datas_features_are_refused(raw, line):
    cfg = config.load(raw, check_files=False)
    with pytest.raises(ConfigError) as info:
        config.check_fits_data(cfg, 2)
    assert str(info.value) == line


def test_settings_that_fit_the_datas_features_pass():
    cfg = config.load({"regularizer": {"flip_axes": [0, 1]}, "data": {"feature_scales": [1.0, 2.0]}},
                      check_files=False)
    config.check_fits_data(cfg, 2)


@pytest.mark.parametrize("key,expected", [
    ("train.iterations", True), ("tracking.tags", True), ("tracking", True), ("seed", True),
    ("tracking.tags.team", False),  # an entry of a dict: Hydra adds it with +
    ("regularizer.keep_prob.0", False), ("train.bogus", False), ("bogus", False),
])
def test_is_schema_field_knows_the_schemas_own_fields(key, expected):
    assert config.is_schema_field(key) is expected
