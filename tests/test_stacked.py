"""Stacked training (dlpractice.nn.stacked) equals separate runs, and the ``vectorized`` Hydra
launcher gives a sweep the same jobs, files, MLflow runs and summary as the basic launcher."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dlpractice.errors import DivergenceError
from dlpractice.nn import TrainConfig, accuracy, initialize_parameters, predict, train
from dlpractice.nn.stacked import Diverged, stack_key, train_stacked, unstackable_reason
from tests import reference

ROOT = Path(__file__).resolve().parents[1]
RTOL = 1e-12


def ring_data(m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((2, m))
    y = (np.sum(X**2, axis=0) > 1.2) ^ (rng.random(m) < 0.1)
    return X, y.astype(float).reshape(1, m)


X, Y = ring_data(160, 0)
X_DEV, Y_DEV = ring_data(60, 1)


def assert_same(stacked, separate, cfg: TrainConfig) -> None:
    assert not isinstance(stacked, Diverged), cfg
    for name, want in separate.parameters.items():
        got = stacked.parameters[name]
        assert got.shape == want.shape
        scale = max(float(np.max(np.abs(want))), 1e-300)
        assert float(np.max(np.abs(got - want))) <= RTOL * scale, (name, cfg)
    assert stacked.iterations == separate.iterations
    np.testing.assert_allclose(stacked.costs, separate.costs, rtol=RTOL)
    np.testing.assert_allclose(stacked.dev_costs, separate.dev_costs, rtol=RTOL)
    # a gradient near convergence is a difference of cancelling terms: compare it to its history
    np.testing.assert_allclose(stacked.grad_norms, separate.grad_norms, rtol=1e-10,
                               atol=RTOL * float(np.max(separate.grad_norms)))
    assert stacked.final_cost == pytest.approx(separate.final_cost, rel=RTOL)
    assert stacked.iterations_run == separate.iterations_run
    act = cfg.hidden_activation
    for Xs, Ys in ((X, Y), (X_DEV, Y_DEV)):
        assert accuracy(stacked.parameters, Xs, Ys, act) == accuracy(separate.parameters, Xs, Ys, act)


@pytest.mark.parametrize("course_compat", [False, True])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_stacked_equals_separate_runs(course_compat, activation):
    base = TrainConfig((2, 10, 4, 1), hidden_activation=activation, iterations=300,
                       record_every=50, course_compat=course_compat)
    configs = [
        replace(base, init=init, learning_rate=lr, lambd=lambd, keep_prob=kp, seed=seed)
        for (init, seed), lr, lambd, kp in itertools.product(
            [("he", 0), ("xavier", 1), ("random", 2)], [0.1, 0.03], [0.0, 0.7], [1.0, 0.8])
    ]
    configs = [replace(c, init_scale=0.5) if c.init == "random" else c for c in configs]
    stacked = train_stacked(X, Y, configs, X_dev=X_DEV, Y_dev=Y_DEV)
    assert len(stacked) == len(configs)
    for cfg, result in zip(configs, stacked):
        assert_same(result, train(X, Y, cfg, X_dev=X_DEV, Y_dev=Y_DEV), cfg)


@pytest.mark.parametrize("K", [1, 2, 3, 7, 8, 11, 16])
def test_the_sweep_model_is_bit_identical_for_every_stack_size(K):
    # the course's regularization model, as the launcher stacks its L2 sweep: every value equal,
    # not only close (on long runs last-bit differences grow to 1e-3)
    base = TrainConfig((2, 20, 3, 1), init="xavier", learning_rate=0.3, iterations=120,
                       record_every=30, course_compat=True)
    configs = [replace(base, lambd=0.05 * k) for k in range(K)]
    if K > 2:
        configs[1] = replace(configs[1], keep_prob=0.86, course_compat=False, seed=7)
    for cfg, got in zip(configs, train_stacked(X, Y, configs, X_dev=X_DEV, Y_dev=Y_DEV)):
        want = train(X, Y, cfg, X_dev=X_DEV, Y_dev=Y_DEV)
        for name, value in want.parameters.items():
            assert np.array_equal(got.parameters[name], value), (name, cfg)
        assert (got.costs, got.dev_costs, got.grad_norms, got.final_cost) == (
            want.costs, want.dev_costs, want.grad_norms, want.final_cost)


def test_mixed_modes_l1_per_layer_dropout_and_deeper_nets():
    base = TrainConfig((2, 6, 5, 3, 1), hidden_activation="leaky_relu", iterations=200,
                       record_every=40, augment_flip_axes=(0,))
    configs = [
        replace(base, seed=3, course_compat=True, keep_prob=(0.9, 1.0, 0.7)),
        replace(base, seed=4, l1=0.05, learning_rate=0.05),
        replace(base, seed=5, keep_prob=(1.0, 0.8, 1.0), lambd=0.2),
        replace(base, init="zeros"),
    ]
    for cfg, result in zip(configs, train_stacked(X, Y, configs, X_dev=X_DEV, Y_dev=Y_DEV)):
        assert_same(result, train(X, Y, cfg, X_dev=X_DEV, Y_dev=Y_DEV), cfg)


def test_logistic_regression_and_sigmoid_hidden_layers():
    for dims, act in (((2, 1), "relu"), ((2, 5, 1), "sigmoid")):
        configs = [TrainConfig(dims, hidden_activation=act, iterations=150, record_every=30,
                               learning_rate=lr, seed=s) for lr, s in ((0.5, 0), (0.1, 1))]
        for cfg, result in zip(configs, train_stacked(X, Y, configs)):
            assert_same(result, train(X, Y, cfg), cfg)


@pytest.mark.parametrize("y", [0.0, 1.0])
def test_costs_are_exact_for_confident_logits_of_both_labels(y):
    """One example with input 1 and no hidden layer: configuration k's logit is its weight, drawn by
    init "random" (seed 0) and scaled by init_scale to ±10 ... ±800 (to an ulp). Recorded, dev (the
    other label) and final costs are within ~4 ulp of the 80-digit values."""
    X1, Y1 = np.ones((1, 1)), np.array([[y]])

    def initial_weight(scale: float) -> float:
        rng = np.random.default_rng(0)
        return float(initialize_parameters((1, 1), "random", random_scale=scale, rng=rng)["W1"][0, 0])

    draw = initial_weight(1.0)
    configs = [TrainConfig((1, 1), init="random", init_scale=z / draw, iterations=1, record_every=1)
               for z in reference.CONFIDENT_LOGITS]
    results = train_stacked(X1, Y1, configs, X_dev=X1, Y_dev=1.0 - Y1)
    for z, cfg, result in zip(reference.CONFIDENT_LOGITS, configs, results):
        z0 = initial_weight(cfg.init_scale)
        assert z0 == pytest.approx(z, rel=2.3e-16)
        reference.assert_exact(result.costs[0], reference.exact_cross_entropy(z0, y))
        reference.assert_exact(result.dev_costs[0], reference.exact_cross_entropy(z0, 1.0 - y))
        final_z = float(result.parameters["W1"][0, 0] + result.parameters["b1"][0, 0])
        reference.assert_exact(result.final_cost, reference.exact_cross_entropy(final_z, y))


def test_a_diverging_configuration_does_not_stop_the_others():
    base = TrainConfig((2, 8, 1), init="random", init_scale=10.0, hidden_activation="leaky_relu",
                       iterations=100, record_every=10)
    configs = [replace(base, learning_rate=0.01), replace(base, learning_rate=1e100)]
    ok, bad = train_stacked(X, Y, configs)
    assert isinstance(bad, Diverged)
    assert_same(ok, train(X, Y, configs[0]), configs[0])


def test_callbacks_see_every_record():
    cfg = TrainConfig((2, 4, 1), iterations=100, record_every=25)
    seen: list[tuple] = []
    (result, other) = train_stacked(X, Y, [cfg, replace(cfg, seed=1)], X_dev=X_DEV, Y_dev=Y_DEV,
                                    callbacks=[lambda *a: seen.append(a), None])
    assert [s[0] for s in seen] == [0, 25, 50, 75]
    assert [s[1] for s in seen] == result.costs and [s[2] for s in seen] == result.dev_costs


def test_what_cannot_be_stacked_is_named():
    cfg = TrainConfig((2, 4, 1))
    assert unstackable_reason(cfg, 100) is None
    assert unstackable_reason(replace(cfg, batch_size=100), 100) is None  # one batch: full batch
    assert "mini-batch" in unstackable_reason(replace(cfg, batch_size=32), 100)
    assert "early stopping" in unstackable_reason(replace(cfg, early_stopping_patience=3), 100)
    assert "input dropout" in unstackable_reason(replace(cfg, input_keep_prob=0.9), 100)
    assert "jitter" in unstackable_reason(replace(cfg, augment_jitter=0.1), 100)
    assert stack_key(cfg) == stack_key(replace(cfg, seed=4, lambd=0.3, keep_prob=0.5, init="xavier"))
    assert stack_key(cfg) != stack_key(replace(cfg, iterations=5))
    with pytest.raises(ValueError, match="share"):
        train_stacked(X, Y, [cfg, replace(cfg, layer_dims=(2, 5, 1))])
    with pytest.raises(ValueError, match="mini-batch"):
        train_stacked(X, Y, [replace(cfg, batch_size=8)])


def test_the_stacking_hooks_group_jobs_and_train_shares_like_separate_runs():
    from hydra import compose, initialize_config_dir

    from dlpractice import config, pipeline, stacking

    quick = ["train.iterations=120", "train.record_every=40", "data.n_samples=120",
             "tracking.enabled=false"]
    settings = [["regularizer=l2", f"regularizer.lambd={x}"] for x in (0, 0.1, 0.3, 0.7)]
    settings += [["regularizer=dropout", "regularizer.keep_prob=0.8", "init=xavier"],
                 ["regularizer=l2", "regularizer.lambd=-1"],  # invalid: left to its job
                 ["train.batch_size=16"],  # mini-batch: trains on its own
                 ["model.hidden=[3]"]]  # another shape, alone in its group
    with initialize_config_dir(str(ROOT / "conf"), version_base=None):
        raws = [compose("config", overrides=[*quick, *s]) for s in settings]
    loaded = stacking.load(raws)
    assert loaded[5] is None and [c.regularizer.lambd for c in loaded[:4]] == [0, 0.1, 0.3, 0.7]
    stacks = stacking.plan(loaded)
    assert [s.jobs for s in stacks] == [(0, 1, 2, 3, 4)]
    assert stacking.groups(loaded) == [(0, 1, 2, 3, 4)]  # foreseen from the configs alone
    with initialize_config_dir(str(ROOT / "conf"), version_base=None):
        more = stacking.load([compose("config", overrides=[*quick, *s]) for s in (
            ["data.train_size=500"],  # more than the split holds: its data fails, its job reports it
            ["regularizer=l2", "data.n_samples=100"])])  # the same network on other data
    # each group on its own data, pairs included; a job that cannot be planned stops nothing
    assert stacking.groups([None, *loaded[:2], more[1]]) == [(1, 2)]
    assert [s.jobs for s in stacking.plan([more[0], *loaded[:3], more[1]])] == [(1, 2, 3)]

    def own(jobs):  # a process plans the jobs it runs
        return stacking.plan([c if j in jobs else None for j, c in enumerate(loaded)])

    shares = [own({0, 1, 6, 7}), own({2, 3, 4, 5})]
    assert [[s.jobs for s in share] for share in shares] == [[(0, 1)], [(2, 3, 4)]]
    assert own({0, 5, 6, 7}) == [] and stacking.train(replace(stacks[0], jobs=())) == {}
    results = {**stacking.train(shares[0][0]), **stacking.train(shares[1][0])}
    assert sorted(results) == [0, 1, 2, 3, 4]
    for j, raw in enumerate(raws[:5]):
        cfg = config.load(raw)
        data = pipeline.prepare_data(cfg)
        splits, _ = pipeline.normalize(cfg, data.splits)
        want = pipeline.fit(cfg, splits)
        assert_same(results[j], want, pipeline.train_config(cfg, data.n_features))


def test_a_sweeps_memory_check_counts_each_group_of_stackable_jobs_over_its_processes():
    """Four stackable jobs of 10^8 examples behind an invalid one, over 2 processes: the refusal
    counts two configurations stacked per process and the four jobs' data in all."""
    from hydra import compose, initialize_config_dir

    from dlpractice import memory, stacking
    from dlpractice.errors import MemoryLimitError

    big = ["data.n_samples=100000000", "tracking.enabled=false", "regularizer=l2"]
    with initialize_config_dir(str(ROOT / "conf"), version_base=None):
        loaded = stacking.load([compose("config", overrides=[*big, f"regularizer.lambd={x}"])
                                for x in (-1, 0, 0.1, 0.3, 0.7)])
    assert loaded[0] is None
    with pytest.raises(MemoryLimitError) as refused:
        stacking.check_memory(loaded, 2)
    one = memory.estimate(loaded[1])
    assert "for 2 configurations stacked" in str(refused.value)
    assert f"the stacks' data {memory.size_text(4 * one.data)} in all" in str(refused.value)


# -- the launcher, end to end ---------------------------------------------------------------------

SWEEP = ["regularizer=l2", "regularizer.lambd=-1,0,0.1,0.7", "train.iterations=300",
         "train.record_every=50", "data.n_samples=200"]


def sweep(tmp_path: Path, name: str, *launcher: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/{name}.db"}
    return subprocess.run(
        [sys.executable, "-m", "dlpractice.experiment", "-m", *launcher, *SWEEP,
         f"hydra.sweep.dir={tmp_path}/{name}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )


def child_runs(tmp_path: Path, name: str) -> tuple[dict, list]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/{name}.db")
    exp = client.get_experiment_by_name("dlpractice")
    all_runs = client.search_runs([exp.experiment_id])
    children = {r.info.run_name: r for r in all_runs if "mlflow.parentRunId" in r.data.tags}
    parents = [r for r in all_runs if "mlflow.parentRunId" not in r.data.tags]
    return children, parents


@pytest.mark.slow
def test_vectorized_launcher_matches_the_basic_launcher(tmp_path):
    from mlflow.tracking import MlflowClient

    # a worker too, so both places a job can run are exercised (the worker takes
    # jobs from the back: the stacked lambd=0.7 job; this process the invalid one first)
    vec = sweep(tmp_path, "vectorized", "hydra/launcher=vectorized", "hydra.launcher.n_jobs=2",
                "hydra.launcher.min_jobs_for_workers=2")
    assert vec.returncode == 0, vec.stderr[-3000:]
    assert "3 of 4 jobs share a network and data in 1 group(s)" in vec.stderr + vec.stdout
    basic = sweep(tmp_path, "basic")
    assert basic.returncode == 0, basic.stderr[-3000:]

    vec_children, vec_parents = child_runs(tmp_path, "vectorized")
    basic_children, _ = child_runs(tmp_path, "basic")
    assert sorted(vec_children) == sorted(basic_children) == ["he-l2_0", "he-l2_0.1", "he-l2_0.7"]
    assert all(r.info.status == "FINISHED" for r in vec_children.values())
    (parent,) = vec_parents
    assert parent.info.status == "FINISHED" and parent.data.tags["failed_jobs"] == "1"
    assert {r.data.tags["mlflow.parentRunId"] for r in vec_children.values()} == {parent.info.run_id}
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/vectorized.db")
    # one numeric value swept (regularizer.lambd): the error path, not the bars
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"sweep_summary.md", "sweep_summary.csv", "regularization_path.png"} <= artifacts
    assert "bias_variance.png" not in artifacts
    for name, run in vec_children.items():
        want = basic_children[name]
        assert run.data.params == want.data.params
        assert run.data.tags["config_hash"] == want.data.tags["config_hash"]
        assert run.data.tags["diagnosis"] == want.data.tags["diagnosis"]
        for metric, value in want.data.metrics.items():
            if metric == "train_seconds":
                continue
            if "accuracy" in metric or "error" in metric:
                assert run.data.metrics[metric] == value, (name, metric)
            else:
                assert run.data.metrics[metric] == pytest.approx(value, rel=1e-9, abs=1e-15), metric
        assert set(run.data.metrics) == set(want.data.metrics)
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"parameters.npz", "history.csv", "config.yaml", "cost_curve.png"} <= artifacts

    for job in range(4):
        vec_dir, basic_dir = tmp_path / "vectorized" / str(job), tmp_path / "basic" / str(job)
        assert sorted(p.name for p in vec_dir.iterdir()) == sorted(p.name for p in basic_dir.iterdir())
        got = json.loads((vec_dir / "summary.json").read_text())
        want = json.loads((basic_dir / "summary.json").read_text())
        assert got["status"] == want["status"] and got["overrides"] == want["overrides"]
        if want["status"] == "finished":
            assert got["train_accuracy"] == want["train_accuracy"]
            assert got["dev_accuracy"] == want["dev_accuracy"]
            with np.load(vec_dir / "parameters.npz") as a, np.load(basic_dir / "parameters.npz") as b:
                for key in b.files:
                    np.testing.assert_allclose(a[key], b[key], rtol=1e-12, atol=1e-14)
        else:
            assert "regularizer.lambd" in got["error"]
    table = (tmp_path / "vectorized" / "sweep_summary.md").read_text()
    assert "he-l2_0.7" in table and "failed" in table


# -- what can be stacked, and the messages ---------------------------------------------------------
def test_unstackable_reasons_in_full_and_batches_of_the_augmented_set():
    cfg = TrainConfig((2, 4, 1))
    assert unstackable_reason(replace(cfg, batch_size=32), 100) == "mini-batch gradient descent"
    assert unstackable_reason(replace(cfg, input_keep_prob=0.9), 100) == "input dropout"
    assert unstackable_reason(replace(cfg, augment_jitter=0.1), 100) == "input jitter"
    assert unstackable_reason(replace(cfg, early_stopping_patience=3), 100) == "early stopping"
    # flips double the training set: a batch of 150 of its 200 examples is a mini-batch
    flipped = replace(cfg, augment_flip_axes=(0,))
    assert unstackable_reason(replace(flipped, batch_size=150), 100) == "mini-batch gradient descent"
    assert unstackable_reason(replace(flipped, batch_size=200), 100) is None


def test_train_stacked_messages_in_full():
    cfg = TrainConfig((2, 4, 1), iterations=1)
    with pytest.raises(ValueError) as info:
        train_stacked(X, Y, [cfg, replace(cfg, hidden_activation="tanh")])
    assert str(info.value) == ("configurations of one stack must share layer sizes, activation, "
                               "iterations, record_every and the non-stackable regularizers")
    with pytest.raises(ValueError) as info:
        train_stacked(X, Y, [replace(cfg, batch_size=8)])
    assert str(info.value) == ("mini-batch gradient descent cannot be stacked: train this "
                               "configuration on its own")
    with pytest.raises(ValueError) as info:
        train_stacked(X, Y, [replace(cfg, layer_dims=(3, 4, 1))])
    assert str(info.value) == "X has 2 features but layer_dims starts with 3"
    with pytest.raises(ValueError) as info:
        train_stacked(X, None, [cfg])
    assert str(info.value) == (f"Y must hold the labels of X's examples, shape (1, {X.shape[1]}); "
                               "got None")
    with pytest.raises(ValueError) as info:
        train_stacked(X, Y, [replace(cfg, iterations=-1)])
    assert str(info.value) == "iterations must be >= 0 and record_every >= 1 (got -1 and " \
        f"{cfg.record_every})"


# -- shapes and options the other tests do not reach ----------------------------------------------
def test_one_hidden_relu_layer():
    configs = [TrainConfig((2, 5, 1), iterations=150, record_every=30, learning_rate=lr, seed=s)
               for lr, s in ((0.5, 0), (0.1, 1))]
    for cfg, result in zip(configs, train_stacked(X, Y, configs, X_dev=X_DEV, Y_dev=Y_DEV)):
        assert_same(result, train(X, Y, cfg, X_dev=X_DEV, Y_dev=Y_DEV), cfg)


def test_a_two_unit_hidden_layer_dropout_on_a_later_layer_and_both_penalties():
    base = TrainConfig((2, 3, 2, 1), hidden_activation="tanh", iterations=150, record_every=30,
                       learning_rate=0.3)
    configs = [replace(base, keep_prob=(1.0, 0.8), seed=1),  # dropout on layer 2 only
               replace(base, lambd=0.3, l1=0.1, seed=2)]
    stacked = train_stacked(X, Y, configs, X_dev=X_DEV, Y_dev=Y_DEV)
    for cfg, result in zip(configs, stacked):
        assert_same(result, train(X, Y, cfg, X_dev=X_DEV, Y_dev=Y_DEV), cfg)
        # the network returned predicts with the configuration's activation
        assert result.network.hidden_activation == "tanh"
        assert np.array_equal(predict(result.network, X_DEV),
                              reference.predict(result.parameters, X_DEV, "tanh"))


# -- divergence and callbacks, as train() sees them -----------------------------------------------
DIVERGING = TrainConfig((2, 8, 1), init="random", init_scale=10.0, hidden_activation="leaky_relu",
                        learning_rate=1e100, iterations=60)


@pytest.mark.parametrize("record_every", [1, 1000])  # found by the gradient check / after a step
def test_a_diverged_configuration_stops_where_train_raises(record_every):
    bad = replace(DIVERGING, record_every=record_every)
    ok = replace(bad, learning_rate=0.01, seed=1)
    single_calls, stacked_calls = [], []
    with pytest.raises(DivergenceError) as info:
        train(X, Y, bad, X_dev=X_DEV, Y_dev=Y_DEV, callback=lambda *a: single_calls.append(a))
    diverged, result = train_stacked(X, Y, [bad, ok], X_dev=X_DEV, Y_dev=Y_DEV,
                                     callbacks=[lambda *a: stacked_calls.append(a), None])
    assert diverged == Diverged(info.value.iteration, None)
    assert stacked_calls == single_calls  # no record of the diverging step
    assert_same(result, train(X, Y, ok, X_dev=X_DEV, Y_dev=Y_DEV), ok)


def test_a_callback_that_raises_stops_only_its_configuration():
    cfg = TrainConfig((2, 4, 1), iterations=100, record_every=25)
    error = RuntimeError("stop here")

    def stop_at_50(i, cost, dev_cost):
        if i == 50:
            raise error

    stopped, result = train_stacked(X, Y, [cfg, replace(cfg, seed=1)],
                                    callbacks=[stop_at_50, None])
    assert stopped.iteration == 50 and stopped.error is error
    assert_same(result, train(X, Y, replace(cfg, seed=1)), cfg)


def test_callbacks_get_none_for_the_dev_cost_without_a_dev_set():
    cfg = TrainConfig((2, 4, 1), iterations=60, record_every=20)
    seen: list[tuple] = []
    (result,) = train_stacked(X, Y, [cfg], callbacks=[lambda *a: seen.append(a)])
    assert seen == [(0, result.costs[0], None), (20, result.costs[1], None),
                    (40, result.costs[2], None)]


def test_an_overflowing_final_cost_is_reported_without_warnings():
    """Finite weights of 1e200 whose logits overflow: train gives a nan final cost silently."""
    cfg = TrainConfig((2, 3, 1), init="random", init_scale=1e200, learning_rate=1e-3,
                      iterations=2, record_every=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (stacked,) = train_stacked(X, Y, [cfg])
        single = train(X, Y, cfg)
    assert math.isnan(single.final_cost) and math.isnan(stacked.final_cost)
    for name, value in single.parameters.items():
        assert np.array_equal(stacked.parameters[name], value), name


def test_train_seconds_is_the_wall_time_shared_by_the_configurations():
    configs = [TrainConfig((2, 4, 1), iterations=200, seed=s) for s in range(4)]
    start = time.perf_counter()
    results = train_stacked(X, Y, configs)
    elapsed = time.perf_counter() - start
    for r in results:
        assert 0.0 < r.train_seconds <= elapsed / 4


@pytest.mark.parametrize("dtype", [int, bool, str])
def test_labels_of_any_dtype_that_converts_to_float(dtype):
    """train() copies Y into a float buffer, so 0/1 labels as int, bool or text ('0'/'1', as read
    from a CSV) train as float labels do; a stack too."""
    cfg = TrainConfig((2, 4, 1), iterations=60, record_every=20)
    (result,) = train_stacked(X, Y.astype(int).astype(dtype), [cfg], X_dev=X_DEV,
                              Y_dev=Y_DEV.astype(int).astype(dtype))
    assert_same(result, train(X, Y, cfg, X_dev=X_DEV, Y_dev=Y_DEV), cfg)


@pytest.mark.parametrize(("field", "value", "shown"), [
    ("keep_prob", 1.5, "1.5"), ("keep_prob", (1.0, 0.0), "0.0"), ("input_keep_prob", 1.2, "1.2")])
def test_a_stack_refuses_the_keep_prob_train_refuses(field, value, shown):
    good = TrainConfig((2, 6, 3, 1), iterations=20, record_every=10)
    bad = replace(good, **{field: value})
    with pytest.raises(ValueError) as alone:
        train(X, Y, bad)
    with pytest.raises(ValueError) as stacked:  # (the input's keep_prob is shared by a stack)
        train_stacked(X, Y, [bad, bad] if field == "input_keep_prob" else [good, bad])
    assert str(stacked.value) == str(alone.value) == f"keep_prob {shown} must be in (0, 1]"


def test_a_stack_needs_the_dev_labels_with_the_dev_inputs():
    cfg = TrainConfig((2, 6, 3, 1), iterations=20, record_every=10)
    with pytest.raises(ValueError) as info:
        train_stacked(X, Y, [cfg, cfg], X_dev=X_DEV)
    assert str(info.value) == "X_dev and Y_dev go together: give both or neither"
