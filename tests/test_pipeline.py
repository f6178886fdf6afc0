"""The five steps as functions (dlpractice.pipeline), in process: each step's result against values
computed independently (tests/reference.py) from the same config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dlpractice import config, pipeline
from dlpractice.errors import ConfigError, DataError, GradientCheckError
from dlpractice.nn import TrainConfig, TrainResult
from tests import reference as ref

SMALL = {"data": {"name": "moons", "n_samples": 100, "noise": 0.3},
         "train": {"iterations": 300, "record_every": 50, "learning_rate": 0.5},
         "tracking": {"enabled": False}}


def load(**sections) -> config.Config:
    raw = {k: dict(v) for k, v in SMALL.items()}
    for section, values in sections.items():
        if isinstance(values, dict):
            raw.setdefault(section, {}).update(values)
        else:
            raw[section] = values
    return config.load(raw)


def test_prepared_data_is_the_dataset():
    cfg = load(data={"feature_scales": [1.0, 1000.0]}, seed=3)
    prepared = pipeline.prepare_data(cfg)
    data, fingerprint = ref.dataset(cfg.to_dict())
    assert prepared.fingerprint == fingerprint and prepared.n_features == 2
    for part in ("train", "dev", "test"):
        np.testing.assert_array_equal(getattr(prepared.splits, f"X_{part}"), data[f"X_{part}"])
        np.testing.assert_array_equal(getattr(prepared.splits, f"Y_{part}"), data[f"Y_{part}"])
    assert np.ptp(prepared.splits.X_train[1]) > 100 * np.ptp(prepared.splits.X_train[0])
    assert prepared.splits.sizes() == {"train": 60, "dev": 20, "test": 20}


@pytest.mark.parametrize(("data", "train"), [
    ({"train_size": 25}, 25), ({"train_size": 0.5}, 30), ({"train_size": 1.0}, 60),
    ({"train_size": 25, "label_noise": 0.3}, 25), ({"label_noise": 0.3}, 60),
    ({"train_size": 20, "feature_scales": [1.0, 1000.0]}, 20),
])
def test_prepared_data_keeps_part_of_train_and_flips_labels(data, train):
    """data.train_size: the documented subsample of train (tests/reference.py); data.label_noise:
    the labels flipped before the split; dev and test the same as with all of train."""
    cfg = load(data=data, seed=2)
    prepared = pipeline.prepare_data(cfg)
    expected, fingerprint = ref.dataset(cfg.to_dict())
    assert prepared.fingerprint == fingerprint
    assert prepared.splits.sizes() == {"train": train, "dev": 20, "test": 20}
    for part in ("train", "dev", "test"):
        np.testing.assert_array_equal(getattr(prepared.splits, f"X_{part}"), expected[f"X_{part}"])
        np.testing.assert_array_equal(getattr(prepared.splits, f"Y_{part}"), expected[f"Y_{part}"])
    whole = pipeline.prepare_data(load(data={**data, "train_size": None}, seed=2)).splits
    for name in ("X_dev", "Y_dev", "X_test", "Y_test"):
        assert getattr(prepared.splits, name).tobytes() == getattr(whole, name).tobytes()
    clean = pipeline.prepare_data(load(data={**data, "label_noise": 0.0}, seed=2))
    assert (clean.fingerprint == fingerprint) == (not data.get("label_noise"))


def test_a_train_size_the_split_cannot_give_is_refused():
    with pytest.raises(ConfigError) as info:
        pipeline.prepare_data(load(data={"train_size": 61}))
    assert str(info.value) == ("data.train_size=61 is not allowed: must be null (the whole train "
                               "split), a number of examples in [2, 60] or a fraction in (0, 1]")


def test_course_and_held_out_data():
    cfg = load(data={"name": "circles", "n_samples": 300, "normalize": False},
               course_compat=True)
    splits = pipeline.prepare_data(cfg).splits
    X_train, Y_train, X_test, Y_test = ref.course_circles()
    np.testing.assert_array_equal(splits.X_train, X_train)
    np.testing.assert_array_equal(splits.Y_train, Y_train)
    np.testing.assert_array_equal(splits.X_test, X_test)
    np.testing.assert_array_equal(splits.X_dev, X_test)  # the course's one held-out set
    football = pipeline.prepare_data(load(data={"name": "football_like", "n_samples": 300}))
    assert football.splits.sizes() == {"train": 300, "dev": 200, "test": 200}
    np.testing.assert_array_equal(football.splits.X_dev, football.splits.X_test)


def test_generated_circles_are_not_the_courses_unless_asked():
    splits = pipeline.prepare_data(load(data={"name": "circles", "n_samples": 100})).splits
    assert splits.sizes() == {"train": 60, "dev": 20, "test": 20}


def test_fixed_dev_and_test_sizes_or_ratios():
    cfg = load(data={"n_samples": 100, "dev_size": 15, "test_size": 25})
    assert pipeline.prepare_data(cfg).splits.sizes() == {"train": 60, "dev": 15, "test": 25}
    cfg = load(data={"n_samples": 100, "ratios": [0.5, 0.3, 0.2]})
    assert pipeline.prepare_data(cfg).splits.sizes() == {"train": 50, "dev": 30, "test": 20}


def test_football_like_is_drawn_with_data_noise_and_can_be_split_again():
    """data.noise reaches football_like's generator (as the study's config group states it);
    split_heldout pools train and held-out and splits them by the ratios."""
    from dlpractice.data import football_like

    X, Y, X_val, Y_val = football_like(0, n_train=150, noise=0.9)
    noisy = pipeline.prepare_data(load(data={"name": "football_like", "n_samples": 150,
                                             "noise": 0.9})).splits
    for got, want in ((noisy.X_train, X), (noisy.Y_train, Y), (noisy.X_dev, X_val),
                      (noisy.Y_dev, Y_val)):
        np.testing.assert_array_equal(got, want)
    # the regularization study: its config group, with the empty data.path it passes
    X, Y, X_val, Y_val = football_like(0, n_train=211, noise=0.1)
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(Path(__file__).resolve().parents[1] / "conf"), version_base=None):
        raw = compose("config", overrides=["experiment=regularization", "data.path="])
    study = pipeline.prepare_data(config.load(raw)).splits
    np.testing.assert_array_equal(study.Y_train, Y)
    np.testing.assert_array_equal(study.X_dev, X_val)
    assert not np.array_equal(noisy.Y_train, football_like(0, n_train=150, noise=0.1)[1])
    pooled = pipeline.prepare_data(load(data={"name": "football_like", "n_samples": 150,
                                              "noise": 0.9, "split_heldout": True})).splits
    assert pooled.sizes() == {"train": 210, "dev": 70, "test": 70}
    together = np.hstack([pooled.X_train, pooled.X_dev, pooled.X_test])
    X, Y, X_val, Y_val = football_like(0, n_train=150, noise=0.9)
    assert sorted(map(tuple, together.T)) == sorted(map(tuple, np.hstack([X, X_val]).T))


def test_a_data_file_is_read_and_split(tmp_path):
    from dlpractice.data import load_file

    rng = np.random.default_rng(5)
    X = rng.normal(size=(50, 2))
    y = np.arange(50) % 2
    np.savez(tmp_path / "d.npz", X=X, y=y)
    prepared = pipeline.prepare_data(load(data={"name": "file", "path": str(tmp_path / "d.npz")}))
    assert prepared.fingerprint == load_file(tmp_path / "d.npz").fingerprint
    s = prepared.splits
    assert s.sizes() == {"train": 30, "dev": 10, "test": 10}
    together = np.hstack([s.X_train, s.X_dev, s.X_test])
    assert sorted(map(tuple, together.T)) == sorted(map(tuple, X))


def test_data_that_does_not_fit_the_model_is_refused():
    with pytest.raises(ConfigError) as info:
        pipeline.prepare_data(load(regularizer={"flip_axes": [2]}))
    assert str(info.value) == ("regularizer.flip_axes=[2] is not allowed: feature indices in "
                               "0..1 (moons has 2)")
    with pytest.raises(ConfigError) as info:
        pipeline.prepare_data(load(data={"feature_scales": [1.0, 2.0, 3.0]}))
    assert str(info.value) == ("data.feature_scales=[1.0, 2.0, 3.0] is not allowed: one scale "
                               "per feature (moons has 2)")


def test_normalize_fits_on_train_only():
    cfg = load()
    raw = pipeline.prepare_data(cfg).splits
    splits, stats = pipeline.normalize(cfg, raw)
    mean, std = ref.normalizer(raw.X_train)
    np.testing.assert_allclose(stats.mean, mean, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(stats.std, std, rtol=1e-14)
    for part in ("train", "dev", "test"):
        np.testing.assert_allclose(getattr(splits, f"X_{part}"),
                                   (getattr(raw, f"X_{part}") - mean) / std, rtol=1e-13,
                                   atol=1e-14)
        np.testing.assert_array_equal(getattr(splits, f"Y_{part}"), getattr(raw, f"Y_{part}"))
    off = load(data={"normalize": False})
    same, none = pipeline.normalize(off, raw)
    assert none is None and same is raw


@pytest.mark.parametrize(("sections", "expected"), [
    ({"regularizer": {"name": "l2", "lambd": 0.7}}, {"lambd": 0.7, "l1": 0.0}),
    ({"regularizer": {"name": "l1", "lambd": 0.3}}, {"lambd": 0.0, "l1": 0.3}),
    ({"regularizer": {"name": "dropout", "keep_prob": [0.9, 0.8], "input_keep_prob": 0.95}},
     {"keep_prob": (0.9, 0.8), "input_keep_prob": 0.95}),
    ({"regularizer": {"early_stopping_patience": 3, "early_stopping_min_delta": 0.01,
                      "flip_axes": [0], "jitter": 0.1},
      "train": {"batch_size": 32}},
     {"early_stopping_patience": 3, "early_stopping_min_delta": 0.01, "augment_flip_axes": (0,),
      "augment_jitter": 0.1, "batch_size": 32}),
    ({"init": {"name": "random", "scale": 5.0}, "model": {"hidden": [7], "activation": "tanh"},
      "seed": 11, "course_compat": True},
     {"init": "random", "init_scale": 5.0, "layer_dims": (2, 7, 1), "hidden_activation": "tanh",
      "seed": 11, "course_compat": True}),
])
def test_train_config_carries_every_setting(sections, expected):
    tc = pipeline.train_config(load(**sections), 2)
    defaults = {"layer_dims": (2, 10, 5, 1), "hidden_activation": "relu", "init": "he",
                "init_scale": 10.0, "learning_rate": 0.5, "iterations": 300, "batch_size": None,
                "lambd": 0.0, "l1": 0.0, "keep_prob": 1.0, "input_keep_prob": 1.0,
                "early_stopping_patience": None, "early_stopping_min_delta": 0.0,
                "augment_flip_axes": (), "augment_jitter": 0.0, "record_every": 50, "seed": 0,
                "course_compat": False}
    assert tc == TrainConfig(**{**defaults, **expected})


def test_training_starts_from_the_initial_parameters():
    cfg = load()
    splits, _ = pipeline.normalize(cfg, pipeline.prepare_data(cfg).splits)
    init = pipeline.initial_parameters(pipeline.train_config(cfg, 2))
    assert {k: v.shape for k, v in init.items()} == {
        "W1": (10, 2), "b1": (10, 1), "W2": (5, 10), "b2": (5, 1), "W3": (1, 5), "b3": (1, 1)}
    seen = []
    result = pipeline.fit(cfg, splits, lambda i, cost, dev: seen.append((i, cost, dev)))
    assert result.costs[0] == pytest.approx(ref.cost(init, splits.X_train, splits.Y_train),
                                            rel=1e-12)
    assert result.dev_costs[0] == pytest.approx(ref.cost(init, splits.X_dev, splits.Y_dev),
                                                rel=1e-12)
    assert seen == list(zip(result.iterations, result.costs, result.dev_costs, strict=True))
    assert result.final_cost == pytest.approx(
        ref.cost(result.parameters, splits.X_train, splits.Y_train), rel=1e-12)


def test_initial_parameters_follow_the_init_settings():
    from benchmarks import course_reference as course

    tc = pipeline.train_config(load(init={"name": "random", "scale": 5.0}, seed=4), 2)
    rng = np.random.default_rng(4)
    init = pipeline.initial_parameters(tc)
    for l, (n, n_prev) in enumerate(((10, 2), (5, 10), (1, 5)), start=1):
        np.testing.assert_array_equal(init[f"W{l}"], rng.standard_normal((n, n_prev)) * 5.0)
        np.testing.assert_array_equal(init[f"b{l}"], np.zeros((n, 1)))
    xavier = pipeline.initial_parameters(pipeline.train_config(load(init={"name": "xavier"}), 2))
    rng = np.random.default_rng(0)
    for l, (n, n_prev) in enumerate(((10, 2), (5, 10), (1, 5)), start=1):
        np.testing.assert_array_equal(xavier[f"W{l}"],
                                      rng.standard_normal((n, n_prev)) * np.sqrt(1 / n_prev))
    course_he = pipeline.initial_parameters(pipeline.train_config(
        load(init={"name": "he"}, course_compat=True), 2))
    expected = course.initialize([2, 10, 5, 1], "he")
    for key, value in expected.items():
        np.testing.assert_array_equal(course_he[key], value)


def _numerical_gradient(parameters, X, Y, lambd, eps=1e-6, activation="relu", l1=0.0):
    grads = {}
    for key, value in parameters.items():
        g = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            plus = {k: v.copy() for k, v in parameters.items()}
            minus = {k: v.copy() for k, v in parameters.items()}
            plus[key][index] += eps
            minus[key][index] -= eps
            g[index] = (ref.cost(plus, X, Y, activation, lambd, l1)
                        - ref.cost(minus, X, Y, activation, lambd, l1)) / (2 * eps)
        grads[key] = g
    return grads


def test_the_gradient_check_checks_the_runs_own_cost():
    """With every train example in the check, its backprop gradients are those of the run's cost
    (with the L2 term), computed here by central differences of the reference cost."""
    cfg = load(regularizer={"name": "l2", "lambd": 0.7}, gradcheck={"max_examples": 1000})
    run = pipeline.run_all(cfg)
    report = run.gradcheck
    assert report.passed and report.difference == max(report.at_init.difference,
                                                      report.at_trained.difference)
    assert report.difference < cfg.gradcheck.threshold and report.note == ""
    X, Y = run.splits.X_train, run.splits.Y_train
    for side, parameters in ((report.at_init, run.init_parameters),
                             (report.at_trained, run.result.parameters)):
        expected = _numerical_gradient(parameters, X, Y, lambd=0.7)
        for key in parameters:
            np.testing.assert_allclose(side.grad[key], expected[key], rtol=1e-5, atol=1e-8)
    data = report.to_dict()
    assert set(data) == {"gradcheck_difference", "passed", "threshold", "epsilon", "method",
                         "at_init", "at_trained", "note"}
    assert (data["gradcheck_difference"], data["passed"], data["note"]) == (
        report.difference, True, "")
    assert (data["threshold"], data["epsilon"], data["method"]) == (
        cfg.gradcheck.threshold, cfg.gradcheck.epsilon, "central")
    assert data["at_trained"] == {
        "difference": report.at_trained.difference, "passed": True,
        "per_array": report.at_trained.per_array, "checked": 91, "kinks": 0,
        "kink_arrays": dict.fromkeys(["W1", "b1", "W2", "b2", "W3", "b3"], 0)}
    # what reports/gradcheck.json holds gives back the report (its gradient arrays left out)
    again = type(report).from_dict(json.loads(json.dumps(data)))
    assert again.to_dict() == data and again.passed and again.difference == report.difference
    # the gradcheck stage leaves an empty note out of its file; a note comes back as written
    assert type(report).from_dict({k: v for k, v in data.items() if k != "note"}).note == ""
    noted = type(report).from_dict({**data, "note": "dropout was switched off"})
    assert noted.note == noted.to_dict()["note"] == "dropout was switched off"
    lines = report.report().splitlines()
    assert lines[0] == "gradient check at initialization:"
    assert lines[8] == report.at_init.summary()
    assert lines[9] == "gradient check at the trained parameters:"
    assert lines[-1] == report.at_trained.summary()


@pytest.mark.parametrize(("regularizer", "lambd", "l1"), [
    ({"name": "l1", "lambd": 0.4}, 0.0, 0.4), ({"name": "none"}, 0.0, 0.0)])
def test_the_gradient_check_checks_the_runs_activation_and_l1(regularizer, lambd, l1):
    cfg = load(regularizer=regularizer, model={"activation": "tanh"},
               gradcheck={"max_examples": 1000, "epsilon": 1e-5, "method": "forward",
                          "threshold": 1e-3})
    run = pipeline.run_all(cfg)
    side = run.gradcheck.at_trained
    assert (side.epsilon, side.method, side.threshold) == (1e-5, "forward", 1e-3)
    expected = _numerical_gradient(run.result.parameters, run.splits.X_train, run.splits.Y_train,
                                   lambd, activation="tanh", l1=l1)
    for key in expected:
        np.testing.assert_allclose(side.grad[key], expected[key], rtol=1e-5, atol=1e-8)


def test_the_gradient_check_uses_a_seeded_subset():
    """max_examples=10 of 60: a subset (not the whole train set), the same one for a seed."""
    cfg = load(gradcheck={"max_examples": 10})
    run = pipeline.run_all(cfg)
    again = pipeline.check_gradients(cfg, run.splits, run.init_parameters, run.result.parameters)
    other = pipeline.check_gradients(load(gradcheck={"max_examples": 10}, seed=1), run.splits,
                                     run.init_parameters, run.result.parameters)
    full = _numerical_gradient(run.init_parameters, run.splits.X_train, run.splits.Y_train, 0.0)
    grad = run.gradcheck.at_init.grad
    assert not np.allclose(grad["W1"], full["W1"], rtol=1e-3)
    np.testing.assert_array_equal(again.at_init.grad["W1"], grad["W1"])
    assert not np.array_equal(other.at_init.grad["W1"], grad["W1"])


def test_dropout_is_switched_off_for_the_check():
    run = pipeline.run_all(load(regularizer={"name": "dropout", "keep_prob": 0.8}))
    assert run.gradcheck.passed
    assert run.gradcheck.note == ("dropout was switched off for the check (a random cost has no "
                                  "gradient to check)")
    assert run.gradcheck.report().splitlines()[-1] == run.gradcheck.note
    assert run.gradcheck.to_dict()["note"] == run.gradcheck.note
    input_only = pipeline.run_all(load(regularizer={"input_keep_prob": 0.9}))
    assert input_only.gradcheck.note.startswith("dropout was switched off")


@pytest.mark.parametrize("thresholds", [(0.0, 0.3), (0.3, 0.0)])
def test_evaluation_and_its_diagnosis_settings(thresholds):
    cfg = load(model={"activation": "tanh"},
               diagnosis={"bayes_error": 0.01, "bias_threshold": thresholds[0],
                          "variance_threshold": thresholds[1]})
    run = pipeline.run_all(cfg)
    expected = ref.evaluate(run.result.parameters, cfg.to_dict())
    default = ref.diagnosis(expected["train_error"], expected["dev_error"], 0.01)[0]
    assert expected["diagnosis"] != default  # the settings decide this label
    metrics = run.evaluation.metrics()
    assert set(metrics) == {"train_accuracy", "dev_accuracy", "test_accuracy", "train_error",
                            "dev_error", "test_error", "avoidable_bias", "variance"}
    for name, value in metrics.items():
        assert value == pytest.approx(expected[name], abs=1e-12), name
    diagnosis = run.evaluation.diagnosis
    assert diagnosis.label == expected["diagnosis"]
    assert (diagnosis.bayes_error, diagnosis.train_error, diagnosis.dev_error) == pytest.approx(
        (0.01, expected["train_error"], expected["dev_error"]), abs=1e-12)


def test_a_failing_gradient_check_fails_the_run_when_asked():
    run = pipeline.run_all(load(gradcheck={"threshold": 1e-30}))
    assert not run.gradcheck.passed
    worst = max((run.gradcheck.at_init, run.gradcheck.at_trained), key=lambda r: r.difference)
    with pytest.raises(GradientCheckError) as info:
        pipeline.require_gradcheck(run.cfg, run.gradcheck)
    assert str(info.value) == (
        f"gradient check failed: difference {run.gradcheck.difference:.3g} >= threshold 1e-30, "
        f"worst array {worst.worst_array}")
    pipeline.require_gradcheck(load(gradcheck={"threshold": 1e-30, "fail": False}),
                               run.gradcheck)
    pipeline.require_gradcheck(run.cfg, None)
    passing = pipeline.run_all(load(train={"iterations": 10}))
    pipeline.require_gradcheck(passing.cfg, passing.gradcheck)


def test_a_forward_check_that_fails_says_why_a_correct_backprop_can():
    # one-sided differences err O(epsilon): the default threshold is the central method's
    run = pipeline.run_all(load(gradcheck={"method": "forward", "threshold": 1e-30},
                                train={"iterations": 10}))
    worst = max((run.gradcheck.at_init, run.gradcheck.at_trained), key=lambda r: r.difference)
    with pytest.raises(GradientCheckError) as info:
        pipeline.require_gradcheck(run.cfg, run.gradcheck)
    assert str(info.value) == (
        f"gradient check failed: difference {run.gradcheck.difference:.3g} >= threshold 1e-30, "
        f"worst array {worst.worst_array}; forward differences err O(epsilon): use "
        "gradcheck.method=central or raise gradcheck.threshold (e.g. 1e-5)")


def test_run_all_trains_reports_and_keeps_the_data():
    seen = []
    cfg = load()
    run = pipeline.run_all(cfg, callback=lambda i, c, d: seen.append((i, c, d)))
    assert seen == list(zip(run.result.iterations, run.result.costs, run.result.dev_costs,
                            strict=True))
    assert [i for i, _, _ in seen] == [0, 50, 100, 150, 200, 250]
    data, fingerprint = ref.dataset(cfg.to_dict())
    assert run.data.fingerprint == fingerprint
    np.testing.assert_array_equal(run.data.splits.X_train, data["X_train"])
    mean, std = ref.normalizer(data["X_train"])
    np.testing.assert_allclose(run.stats.mean, mean, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(run.stats.std, std, rtol=1e-14)


def test_run_all_takes_what_the_caller_already_has():
    cfg = load(gradcheck={"enabled": False})
    first = pipeline.run_all(cfg)
    assert first.gradcheck is None
    seen = []
    again = pipeline.run_all(cfg, callback=lambda i, c, d: seen.append((i, c, d)),
                             data=first.data, result=first.result)
    assert again.result is first.result and again.data is first.data  # nothing trained again
    assert seen == list(zip(first.result.iterations, first.result.costs, first.result.dev_costs,
                            strict=True))
    partial = TrainResult(parameters=first.result.parameters, network=None, iterations=[0, 100],
                          costs=[0.7, 0.6], dev_costs=[0.71])
    seen.clear()
    pipeline.run_all(cfg, callback=lambda i, c, d: seen.append((i, c, d)), result=partial)
    assert seen == [(0, 0.7, 0.71), (100, 0.6, None)]


def test_a_mini_batch_run_evaluates_in_chunks_to_the_accuracies_of_one_pass():
    cfg = load(data={"name": "moons", "n_samples": 3000, "noise": 0.3},
               train={"batch_size": 64, "iterations": 20, "learning_rate": 0.3})
    assert pipeline.evaluation_columns(cfg, 1800) == 64
    assert pipeline.evaluation_columns(load(), 60) == 60  # full batch: all of train at once
    assert pipeline.evaluation_columns(load(train={"batch_size": 500}), 60) == 60
    outcome = pipeline.run_all(cfg)
    expected = ref.evaluate(outcome.result.parameters, cfg.to_dict())
    for split in ("train", "dev", "test"):
        rates = getattr(outcome.evaluation, split)
        assert rates.accuracy == expected[f"{split}_accuracy"], split
        assert rates.error == expected[f"{split}_error"], split


def test_evaluation_holds_no_more_than_a_training_batch():
    """The issue's promise: evaluating a big split in chunks of the batch allocates about one
    batch's buffers (tracemalloc), not one pass over the split."""
    import tracemalloc

    cfg = load(data={"n_samples": 50_000}, train={"batch_size": 64, "iterations": 1})
    splits, _ = pipeline.normalize(cfg, pipeline.prepare_data(cfg).splits)
    parameters = pipeline.initial_parameters(pipeline.train_config(cfg, 2))
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        pipeline.evaluate(cfg, splits, parameters)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    one_pass = 30_000 * 8 * (3 + 11 + 6 + 3)  # [X; 1], [A1; 1], [A2; 1], Z, A and Y of train
    assert peak < one_pass / 20
    assert pipeline.evaluation_columns(load(train={"batch_size": 1}), 60) == 1


def test_a_sweeps_job_evaluates_no_test_split():
    """``test=False`` (a sweep's job under selection.hide_test): train and dev as always, no test
    accuracy computed and no ``test_*`` metric."""
    cfg = load(model={"activation": "tanh"})
    shown = pipeline.run_all(cfg)
    hidden = pipeline.run_all(cfg, data=shown.data, result=shown.result, test=False)
    expected = ref.evaluate(shown.result.parameters, cfg.to_dict())
    assert hidden.evaluation.test is None
    metrics = hidden.evaluation.metrics()
    assert list(metrics) == ["train_accuracy", "dev_accuracy", "train_error", "dev_error",
                             "avoidable_bias", "variance"]
    for name, value in metrics.items():
        assert value == pytest.approx(expected[name], abs=1e-12), name
    assert list(shown.evaluation.metrics()) == [
        "train_accuracy", "dev_accuracy", "test_accuracy", "train_error", "dev_error",
        "test_error", "avoidable_bias", "variance"]
    assert pipeline.evaluate(cfg, shown.splits, shown.result.parameters, test=False) == (
        hidden.evaluation)
    assert pipeline.evaluate(cfg, shown.splits, shown.result.parameters) == shown.evaluation
    assert shown.evaluation.test.accuracy == expected["test_accuracy"]



def test_error_metrics_are_the_counted_fractions():
    """Each split's error is its misclassified examples over its size, exactly (the reference
    counts them): never 1 - accuracy, which leaves 0.025000000000000022 in a table."""
    cfg = load(model={"activation": "tanh"}, train={"iterations": 40})
    run = pipeline.run_all(cfg)
    expected = ref.evaluate(run.result.parameters, cfg.to_dict())
    metrics = run.evaluation.metrics()
    for part in ("train", "dev", "test"):
        assert metrics[f"{part}_error"] == expected[f"{part}_error"], part
        assert 0 < metrics[f"{part}_error"] < 1, part  # a split with errors to count
    diagnosis = run.evaluation.diagnosis
    assert (diagnosis.train_error, diagnosis.dev_error) == (expected["train_error"],
                                                            expected["dev_error"])

@pytest.mark.parametrize("sections", [
    {},  # normalized inputs
    {"data": {"normalize": False, "feature_scales": [1.0, 3.0]}, "train": {"batch_size": 7}},
])
def test_the_selected_runs_one_test_evaluation(sections):
    """evaluate_test: the test split prepared again from the config, normalized with the run's
    saved statistics (not fitted again), is what the run's own evaluation of it gives."""
    from dlpractice.data import NormStats

    cfg = load(**sections)
    run = pipeline.run_all(cfg)
    expected = ref.evaluate(run.result.parameters, cfg.to_dict())
    got = pipeline.evaluate_test(cfg, run.result.parameters, run.stats)
    assert got == {"test_accuracy": expected["test_accuracy"], "test_error": expected["test_error"]}
    assert got["test_accuracy"] == run.evaluation.test.accuracy
    if run.stats is None:
        return
    # the saved statistics are applied as they are: shifted ones shift every test input
    data, _ = ref.dataset(cfg.to_dict())
    moved = NormStats(run.stats.mean + 0.5, run.stats.std * 2.0)
    X_test = (data["X_test"] - moved.mean) / moved.std
    shifted = pipeline.evaluate_test(cfg, run.result.parameters, moved)["test_accuracy"]
    assert shifted == ref.accuracy(run.result.parameters, X_test, data["Y_test"])
    assert shifted != got["test_accuracy"]  # the statistics used matter to this run
    with pytest.raises(DataError, match="^the run normalized its inputs but its normalizer was "
                                        "not saved$"):
        pipeline.evaluate_test(cfg, run.result.parameters, None)


def test_the_one_test_evaluation_holds_no_more_than_a_training_batch():
    """evaluate_test forwards the test split in chunks of the training's batch, as evaluate does:
    beyond preparing the data it allocates a small part of one pass over 50000 test examples."""
    import tracemalloc

    cfg = load(data={"n_samples": 60_000, "dev_size": 100, "test_size": 50_000},
               train={"batch_size": 64, "iterations": 1})
    splits, stats = pipeline.normalize(cfg, pipeline.prepare_data(cfg).splits)
    parameters = pipeline.initial_parameters(pipeline.train_config(cfg, 2))

    def peak(step) -> int:
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            step()
            return tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()

    preparing = peak(lambda: pipeline.prepare_data(cfg))
    testing = peak(lambda: pipeline.evaluate_test(cfg, parameters, stats))
    one_pass = 50_000 * 8 * (3 + 11 + 6 + 3)  # [X; 1], [A1; 1], [A2; 1], Z, A and Y of test
    assert testing < preparing + one_pass / 4
    data, _ = ref.dataset(cfg.to_dict())
    X_test = (data["X_test"] - stats.mean) / stats.std
    assert pipeline.evaluate_test(cfg, parameters, stats)["test_accuracy"] == ref.accuracy(
        parameters, X_test, data["Y_test"])
