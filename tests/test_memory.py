"""The memory check (dlpractice.memory): its estimate against bytes counted by hand, buffers the
run really holds and peaks measured (tracemalloc, a child's ru_maxrss); and the refusal of a run, a
sweep and a DVC stage that would not fit — one line, before anything is allocated, no MLflow run,
no output. Evaluation in chunks gives the accuracies of one pass over each split."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import yaml

from dlpractice import config, memory, pipeline
from dlpractice.nn.network import Network, Workspace

ROOT = Path(__file__).resolve().parents[1]
GiB = 1 << 30
# the default network [2, 10, 5, 1] per example: [A; 1] 3 + 11 + 6, Z_out, A_out, Y, dZ 10 + 5 + 1
# floats, and a relu mask byte per hidden unit
DEFAULT_NET_BYTES = 8 * (3 + 11 + 6 + 3 + 10 + 5 + 1) + 15
DEFAULT_NET_FORWARD_BYTES = 8 * (3 + 11 + 6 + 3)  # a pass without gradients (dev, evaluation)
DEFAULT_NET_PARAMETERS = 10 * 3 + 5 * 11 + 1 * 6
ADVICE = "lower train.batch_size or data.n_samples, or run fewer parallel jobs"


def load(**sections) -> config.Config:
    raw: dict = {"tracking": {"enabled": False}, "train": {"iterations": 3, "record_every": 1}}
    for section, values in sections.items():
        if isinstance(values, dict):
            raw.setdefault(section, {}).update(values)
        else:
            raw[section] = values
    return config.load(raw, check_files=False)


def mem_available() -> int:
    """/proc/meminfo's MemAvailable, read here (bytes)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    pytest.skip("no MemAvailable in /proc/meminfo")


def too_big_n_samples() -> int:
    """The issue's 100 million examples, or more where they would fit: the full-batch pass over
    60% of them alone (A, Z and dZ floats) must exceed the memory available."""
    n = 100_000_000
    while 0.6 * n * 8 * 39 < 2 * mem_available():
        n *= 2
    return n


# -- the estimate --------------------------------------------------------------------------------


def owned_bytes(obj: object) -> int:
    """Bytes of the arrays ``obj`` allocated (its attributes and lists of them; views left out)."""
    arrays = []
    for value in vars(obj).values():
        arrays += value if isinstance(value, list) else [value]
    return sum(a.nbytes for a in arrays if isinstance(a, np.ndarray) and a.base is None)


def per_example(dims: tuple[int, ...], backward: bool = True) -> int:
    """Bytes per example of the real ``Workspace`` of ``dims`` (with gradients, or forward only)."""
    return owned_bytes(Workspace(Network(dims), 1, backward))


def parameters(dims: tuple[int, ...]) -> int:
    return sum(dims[l] * (dims[l - 1] + 1) for l in range(1, len(dims)))


def test_the_bytes_per_example_are_a_workspace_s_buffers():
    for m in (1, 333):
        assert owned_bytes(Workspace(Network((2, 10, 5, 1)), m)) == DEFAULT_NET_BYTES * m
        assert (owned_bytes(Workspace(Network((2, 10, 5, 1)), m, backward=False))
                == DEFAULT_NET_FORWARD_BYTES * m)
    est = memory.estimate(load(data={"n_samples": 1000}, model={"hidden": [7]},
                               gradcheck={"enabled": False}))
    # full batch: the step over 600 examples, the dev set's 200, the cost's temporaries, theta & co.
    assert est.training == (per_example((2, 7, 1)) * 600 + per_example((2, 7, 1), False) * 200
                            + 3 * 8 * 600 + 5 * 8 * parameters((2, 7, 1)))
    assert est.gradcheck == 0


def test_a_huge_full_batch_run_counted_by_hand():
    n = 100_000_000
    est = memory.estimate(load(data={"n_samples": n}, train={"batch_size": None}))
    train_m, dev = 60_000_000, 20_000_000
    assert est.data == 8 * 3 * n + 8 * 2 * n  # X and Y of every split, normalized X
    assert est.loading == 3.5 * 8 * 3 * n  # the generator's, the fingerprint's, the split's copies
    # the step's workspace over all of train, the dev set's forward pass, the cost's three
    # temporaries, and theta, its mask, the gradient and two more parameter-sized arrays
    assert est.training == (DEFAULT_NET_BYTES * train_m + DEFAULT_NET_FORWARD_BYTES * dev
                            + 3 * 8 * train_m + 5 * 8 * DEFAULT_NET_PARAMETERS)
    assert (est.examples, est.batch_size, est.evaluation_examples) == (train_m, None, train_m)
    assert est.evaluation == DEFAULT_NET_FORWARD_BYTES * train_m
    assert est.per_process == memory.INTERPRETER_BYTES + est.data + est.training
    assert est.total == est.per_process
    plain = memory.estimate(load(data={"n_samples": n, "normalize": False}))
    assert plain.data == 8 * 3 * n


def test_mini_batches_shrink_the_training_to_a_batch_counted_by_hand():
    n = 100_000_000
    est = memory.estimate(load(data={"n_samples": n}, train={"batch_size": 1024}))
    train_m = 60_000_000
    # batches of 1024 and the last of 60_000_000 % 1024 = 768; dev in chunks: 1024 and 256
    assert est.training == (DEFAULT_NET_BYTES * (1024 + 768) + DEFAULT_NET_FORWARD_BYTES
                            * (1024 + 256) + 3 * 8 * 1024 + 2 * 8 * train_m
                            + 5 * 8 * DEFAULT_NET_PARAMETERS)
    full = memory.estimate(load(data={"n_samples": n}))
    assert est.training < full.training / 25  # the shuffled order of 60M examples is left
    # evaluation forwards in chunks of the batch too (dev and test: 20M = 19531 x 1024 + 256)
    assert est.evaluation == DEFAULT_NET_FORWARD_BYTES * (1024 + 768)
    assert est.plots == (memory.FIGURE_BYTES + memory.SCATTER_BYTES_PER_POINT * train_m
                         + DEFAULT_NET_BYTES * 120 * 120)
    one = memory.estimate(load(data={"n_samples": 1000}, train={"batch_size": 1}))
    assert (one.examples, one.evaluation_examples) == (1, 1)
    assert one.training == (DEFAULT_NET_BYTES + DEFAULT_NET_FORWARD_BYTES + 3 * 8 + 2 * 8 * 600
                            + 5 * 8 * DEFAULT_NET_PARAMETERS)


def test_dropout_jitter_and_activations_counted_by_hand():
    dims = (2, 30, 20, 1)
    # tanh, dropout on the first hidden layer only, input dropout and jitter; batches of 100 of
    # 600 (no remainder), dev 200 in two chunks
    est = memory.estimate(load(
        data={"n_samples": 1000}, model={"hidden": [30, 20], "activation": "tanh"},
        regularizer={"name": "dropout", "keep_prob": [0.5, 1.0], "input_keep_prob": 0.9,
                     "jitter": 0.1}, train={"batch_size": 100}))
    assert est.training == (
        per_example(dims) * 100 + per_example(dims, False) * 100 + 3 * 8 * 100
        + 3 * 8 * 30 * 100  # tanh' = 1 - A*A: two temporaries, and A * keep_prob under dropout
        + (8 + 2) * 30 * 100  # the kept uniform draws, this and the last step's masks
        + (8 + 2) * 2 * 100  # the same for the input
        + 2 * 8 * 2 * 100  # the jitter's draws and their scaled copy
        + 2 * 8 * 600 + 5 * 8 * parameters(dims))
    # without dropout tanh' needs its two temporaries only
    tanh = memory.estimate(load(data={"n_samples": 1000},
                                model={"hidden": [30, 20], "activation": "tanh"}))
    assert tanh.training == (per_example(dims) * 600 + per_example(dims, False) * 200
                             + 3 * 8 * 600 + 2 * 8 * 30 * 600 + 5 * 8 * parameters(dims))
    # leaky relu's derivative needs no activation before dropout; full batch, both layers dropped
    leaky = memory.estimate(load(
        data={"n_samples": 1000}, model={"hidden": [30, 20], "activation": "leaky_relu"},
        regularizer={"name": "dropout", "keep_prob": 0.8}))
    assert leaky.training == (
        per_example(dims) * 600 + per_example(dims, False) * 200 + 3 * 8 * 600
        + 2 * 8 * 30 * 600 + (8 + 2) * (30 + 20) * 600 + 5 * 8 * parameters(dims))


def test_flipped_copies_and_a_dev_set_smaller_than_the_batch_counted_by_hand():
    est = memory.estimate(load(data={"n_samples": 1000}, train={"batch_size": 256},
                               regularizer={"name": "l2", "lambd": 0.1, "flip_axes": [0, 1]}))
    m = 600 * 3  # train and its two mirrored copies: 7 batches of 256 and one of 8
    assert est.examples == 256
    assert est.training == (
        DEFAULT_NET_BYTES * (256 + 8) + DEFAULT_NET_FORWARD_BYTES * 200 + 3 * 8 * 256
        + 2 * 8 * m
        + 8 * 3 * m + 8 * 2 * 600 * 2  # X and Y augmented, while the two flipped X exist
        + 5 * 8 * DEFAULT_NET_PARAMETERS)


def stacked_workspace(dims: tuple[int, ...], m: int, K: int, relu: bool) -> int:
    """Bytes of ``_StackedWorkspace`` by hand: [X; 1] once; per configuration Y, the step scales,
    Z_out, A_out and dZ of the output, each hidden [A; 1] and relu's bool mask of it (else a dZ)."""
    hidden = sum(n + 1 for n in dims[1:-1])
    return 8 * (dims[0] + 1) * m + K * m * (8 * (5 + hidden) + (1 if relu else 8) * hidden)


def test_stacked_training_counted_by_hand():
    dims = (2, 10, 5, 1)
    est = memory.estimate(load(data={"n_samples": 1000}), stacked=3)
    step, dev = stacked_workspace(dims, 600, 3, True), stacked_workspace(dims, 200, 3, True)
    widest = 8 * 3 * 11 * 600  # a matmul's temporary of the widest layer, all configurations
    # the final pass's workspace and matmul outlast the step's
    assert est.training == (step + dev + step + widest + 3 * 8 * 600
                            + 6 * 8 * 3 * DEFAULT_NET_PARAMETERS)
    assert (est.stacked, est.examples) == (3, 600)
    dims = (2, 20, 8, 1)
    est = memory.estimate(load(data={"n_samples": 1000}, model={"hidden": [20, 8],
                                                               "activation": "tanh"},
                               regularizer={"name": "dropout", "keep_prob": 0.8,
                                            "flip_axes": [1]}), stacked=2)
    m = 1200
    step, dev = stacked_workspace(dims, m, 2, False), stacked_workspace(dims, 200, 2, False)
    dropout = (8 + 1) * 2 * (21 + 9) * m  # uniform draws and bool masks of both hidden layers
    augmented = 8 * 3 * m + 8 * 2 * 600
    widest = 8 * 2 * 21 * m
    assert est.training == (step + dev + augmented + dropout + step + widest + 3 * 8 * m
                            + 6 * 8 * 2 * parameters(dims))
    dims = (2, 5, 12, 1)  # the widest layer last
    est = memory.estimate(load(data={"n_samples": 1000}, model={"hidden": [5, 12]}), stacked=2)
    step, dev = stacked_workspace(dims, 600, 2, True), stacked_workspace(dims, 200, 2, True)
    assert est.training == (step + dev + step + 8 * 2 * 13 * 600 + 3 * 8 * 600
                            + 6 * 8 * 2 * parameters(dims))


def test_the_gradient_check_counted_by_hand():
    # 20000 of 30000 training examples: the subset, the kept pass (inputs [X; 1], [A1; 1], [A2; 1],
    # two contexts and Z per hidden unit, six loss terms) and a chunk of one perturbation per step
    est = memory.estimate(load(data={"n_samples": 50_000}, gradcheck={"max_examples": 20_000}))
    m = 20_000
    kept = 8 * m * ((3 + 11 + 6) + 3 * 15 + 6)
    assert est.gradcheck == 8 * 3 * m + kept + 2 * 8 * m * (4 + 2 * 5)
    forward = memory.estimate(load(data={"n_samples": 50_000},
                                   gradcheck={"max_examples": 20_000, "method": "forward"}))
    assert forward.gradcheck == 8 * 3 * m + kept + 8 * m * (4 + 2 * 5)
    # one hidden layer: a perturbation's change has no dense layer to go through
    m = 40_000
    one = memory.estimate(load(data={"n_samples": 100_000}, model={"hidden": [7]},
                               gradcheck={"max_examples": 40_000}))
    assert one.gradcheck == 8 * 3 * m + 8 * m * ((3 + 8) + 3 * 7 + 6) + 2 * 8 * m * 4
    small = memory.estimate(load(data={"n_samples": 1000}))  # 64 examples: the chunk's floor
    assert small.gradcheck == 8 * 3 * 64 + 8 * 64 * ((3 + 11 + 6) + 3 * 15 + 6) + (1 << 20)


def test_split_sizes_follow_the_data_settings():
    def sizes(**data):
        s = memory.data_sizes(load(data=data))
        return s.n_features, s.train, s.dev, s.test

    assert sizes(n_samples=1000) == (2, 600, 200, 200)
    assert sizes(n_samples=1000, ratios=[0.5, 0.3, 0.2]) == (2, 500, 300, 200)
    assert sizes(n_samples=1000, dev_size=15, test_size=25) == (2, 960, 15, 25)
    assert sizes(n_samples=1000, dev_size=15) == (2, 985, 15, 0)  # the split will refuse it
    assert sizes(n_samples=1000, test_size=25) == (2, 975, 0, 25)
    assert sizes(n_samples=10, dev_size=5, test_size=5) == (2, 1, 5, 5)
    # a held-out part is dev and test at once (counted once)
    assert sizes(name="football_like", n_samples=300) == (2, 300, 200, 0)
    assert sizes(name="football_like", n_samples=300, split_heldout=True) == (2, 300, 100, 100)
    s = memory.data_sizes(load(data={"name": "circles"}, course_compat=True))
    assert (s.train, s.dev, s.test, s.loaded) == (300, 100, 0, 400)
    s = memory.data_sizes(load(data={"name": "spiral"}, course_compat=True))
    assert (s.train, s.dev, s.test, s.loaded) == (240, 80, 80, 400)


def test_a_train_size_counts_the_examples_kept():
    """data.train_size: the run trains on that part of train, dev and test as they are; a value the
    split cannot give counts all of train (the run refuses it when it prepares its data)."""
    def sizes(**data):
        s = memory.data_sizes(load(data=data))
        return s.train, s.dev, s.test, s.loaded

    assert sizes(n_samples=1000, train_size=100) == (100, 200, 200, 1000)
    assert sizes(n_samples=1000, train_size=0.25) == (150, 200, 200, 1000)
    assert sizes(n_samples=1000, train_size=1.0) == (600, 200, 200, 1000)
    assert sizes(n_samples=1000, train_size=601) == (600, 200, 200, 1000)
    assert sizes(name="football_like", n_samples=300, train_size=50) == (50, 200, 0, 500)
    assert sizes(name="football_like", n_samples=300, train_size=301) == (300, 200, 0, 500)


def test_a_train_size_estimate_against_what_the_steps_allocate():
    import sklearn.datasets  # noqa: F401  (imported before measuring)

    cfg = load(data={"n_samples": 50_000, "train_size": 0.1})
    est = memory.estimate(cfg)
    prepared = pipeline.prepare_data(cfg)
    assert prepared.splits.sizes() == {"train": 3000, "dev": 10_000, "test": 10_000}
    splits, _ = pipeline.normalize(cfg, prepared.splits)
    held = {id(a): a.nbytes for s in (prepared.splits, splits)
            for a in (s.X_train, s.Y_train, s.X_dev, s.Y_dev, s.X_test, s.Y_test)}
    assert est.data == sum(held.values())
    _, training = _traced(lambda: pipeline.fit(cfg, splits))
    assert 0.9 <= est.training / training <= 1.1
    assert est.examples == 3000


def test_data_files_are_sized_from_their_headers(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((70, 4)), (rng.random(70) < 0.5).astype(float)
    X_val, y_val = rng.standard_normal((30, 4)), (rng.random(30) < 0.5).astype(float)
    np.savez(tmp_path / "rows.npz", X=X, y=y)
    np.savez(tmp_path / "columns.npz", X=X.T, y=y.reshape(1, -1), Xval=X_val.T,
             yval=y_val.reshape(-1, 1))
    scipy.io.savemat(tmp_path / "heldout.mat", {"X": X, "y": y.reshape(-1, 1), "Xval": X_val,
                                               "yval": y_val.reshape(-1, 1)})
    table = "a,b,c,d,label\n" + "".join(",".join(f"{v:.3f}" for v in row) + f",{int(label)}\n"
                                        for row, label in zip(X, y))
    (tmp_path / "table.csv").write_text(table)
    (tmp_path / "TABLE.CSV").write_text(table)

    def cfg(name: str, **data):
        return load(data={"name": "file", "path": str(tmp_path / name), **data})

    def sizes(name: str, **data):
        s = memory.data_sizes(cfg(name, **data))
        return s.n_features, s.train, s.dev, s.test, s.loaded

    assert sizes("rows.npz") == (4, 42, 14, 14, 70)
    assert sizes("columns.npz") == (4, 70, 30, 0, 100)
    assert sizes("heldout.mat") == (4, 70, 30, 0, 100)
    assert sizes("heldout.mat", split_heldout=True) == (4, 60, 20, 20, 100)
    assert sizes("table.csv") == (4, 43, 14, 14, 71)  # the header counts as a row
    # loading holds the file's bytes twice (read, then parsed) next to 3.5 copies of X and Y
    for name, loaded in (("rows.npz", 70), ("columns.npz", 100), ("heldout.mat", 100)):
        size = (tmp_path / name).stat().st_size
        assert memory.estimate(cfg(name)).loading == int(3.5 * 8 * 5 * loaded + 2 * size)
        assert memory.estimate(cfg(name)).plots == memory.FIGURE_BYTES  # no boundary: 4-D
    size = (tmp_path / "table.csv").stat().st_size
    for name in ("table.csv", "TABLE.CSV"):  # a .csv is parsed into Python objects first
        assert memory.estimate(cfg(name)).loading == int(3.5 * 8 * 5 * 71 + 2 * size
                                                         + memory.CSV_BYTES_PER_VALUE * 5 * 71)
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not a zip")
    assert memory.data_sizes(cfg("broken.npz")) is None
    assert memory.estimate(cfg("broken.npz")) is None


def _traced(fn):
    """``fn()`` and the peak of what it allocated (tracemalloc: numpy's buffers included)."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out = fn()
        return out, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("sections", [
    {},
    {"train": {"batch_size": 5000}},
    {"model": {"hidden": [30, 20], "activation": "tanh"},
     "regularizer": {"name": "dropout", "keep_prob": 0.8}},
    {"regularizer": {"name": "l2", "lambd": 0.5, "flip_axes": [0]}},
    {"model": {"hidden": [20, 20, 10]}, "gradcheck": {"max_examples": 5000}},
    {"gradcheck": {"max_examples": 20000}},
], ids=["full-batch", "mini-batch", "tanh-dropout", "l2-flips", "deep-gradcheck", "big-gradcheck"])
def test_each_part_against_what_the_steps_allocate(sections):
    import sklearn.datasets  # noqa: F401  (imported before measuring)

    cfg = load(data={"n_samples": 50_000}, **sections)
    est = memory.estimate(cfg)
    prepared, loading = _traced(lambda: pipeline.prepare_data(cfg))
    (splits, _), normalizing = _traced(lambda: pipeline.normalize(cfg, prepared.splits))
    held = {id(a): a.nbytes for s in (prepared.splits, splits)
            for a in (s.X_train, s.Y_train, s.X_dev, s.Y_dev, s.X_test, s.Y_test)}
    assert est.data == sum(held.values())
    assert 1.0 <= est.loading / max(loading, normalizing) <= 1.3
    init = pipeline.initial_parameters(pipeline.train_config(cfg, 2))
    result, training = _traced(lambda: pipeline.fit(cfg, splits))
    assert 0.9 <= est.training / training <= 1.1
    _, evaluating = _traced(lambda: pipeline.evaluate(cfg, splits, result.parameters))
    assert 0.9 <= est.evaluation / evaluating <= 1.1
    grid = Workspace(result.network, 120 * 120)  # the decision boundary's (drawn, not traced)
    assert est.plots == (memory.FIGURE_BYTES + memory.SCATTER_BYTES_PER_POINT * 30_000
                         + owned_bytes(grid))
    if "gradcheck" in sections:
        _, checking = _traced(lambda: pipeline.check_gradients(cfg, splits, init,
                                                               result.parameters))
        assert 0.95 <= est.gradcheck / checking <= 1.25


@pytest.mark.parametrize("sections, K", [
    ({}, 3),
    ({"model": {"activation": "tanh", "hidden": [20, 8]},
      "regularizer": {"name": "dropout", "keep_prob": 0.8, "flip_axes": [1]}}, 2),
    ({"model": {"activation": "leaky_relu"}}, 4),
], ids=["relu", "tanh-dropout-flips", "leaky"])
def test_stacked_training_against_what_it_allocates(sections, K):
    from dataclasses import replace

    from dlpractice.nn.stacked import train_stacked

    cfg = load(data={"n_samples": 50_000}, **sections)
    splits, _ = pipeline.normalize(cfg, pipeline.prepare_data(cfg).splits)
    configs = [replace(pipeline.train_config(cfg, 2), seed=k) for k in range(K)]
    _, allocated = _traced(lambda: train_stacked(splits.X_train, splits.Y_train, configs,
                                                 X_dev=splits.X_dev, Y_dev=splits.Y_dev))
    assert 0.95 <= memory.estimate(cfg, stacked=K).training / allocated <= 1.2


def test_a_vectorized_sweep_counts_its_planned_data_and_stacked_passes():
    cfgs = [load(data={"n_samples": 200_000}, init={"name": name})
            for name in ("he", "xavier", "glorot", "zeros")]
    one = memory.estimate(cfgs[0])
    sweep = memory.sweep_estimate(cfgs, 2, [[0, 1, 2, 3]])
    two = memory.estimate(cfgs[0], stacked=2)
    assert (sweep.processes, sweep.stacked, sweep.sweep) == (2, 2, True)
    assert sweep.shared == 4 * one.data  # every job's data, over the processes
    assert sweep.training == two.training > one.training
    assert sweep.total == 4 * one.data + 2 * two.per_process
    plain = memory.sweep_estimate(cfgs, 3)
    assert (plain.shared, plain.stacked, plain.total) == (0, 1, 3 * one.per_process)
    # as many processes as jobs: each trains a share of one, alone
    alone = memory.sweep_estimate(cfgs, 4, [[0, 1, 2, 3]])
    assert (alone.stacked, alone.total) == (1, 4 * one.data + 4 * one.per_process)
    pairs = memory.sweep_estimate(cfgs, 1, [[0, 1], [2, 3]])
    assert (pairs.shared, pairs.stacked) == (4 * one.data, 2)
    # a member whose data file cannot be read is left out (it fails on its own)
    broken = load(data={"name": "file", "path": "/nonexistent/x.npz"})
    assert memory.sweep_estimate([cfgs[0], broken, cfgs[1]], 1, [[0, 1, 2]]).stacked == 3
    assert memory.sweep_estimate([broken], 2) is None
    assert memory.sweep_estimate([cfgs[0], broken, broken], 1, [[1, 2]]).stacked == 1
    # a member with dropout makes the whole stack hold masks
    mixed = [cfgs[0], load(data={"n_samples": 200_000}, regularizer={"name": "dropout",
                                                                     "keep_prob": 0.5})]
    assert (memory.sweep_estimate(mixed, 1, [[0, 1]]).training
            == memory.estimate(mixed[1], stacked=2).training
            > memory.estimate(mixed[0], stacked=2).training)
    # where the figures outweigh training, a stack changes nothing
    small = [load(data={"n_samples": 10_000}, init={"name": n}) for n in ("he", "xavier")]
    assert memory.sweep_estimate(small, 1, [[0, 1]]).stacked == 1


def test_the_launchers_processes():
    cpus = os.cpu_count() or 1
    basic = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
    joblib = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    vectorized = ("hydra_plugins.dlpractice_vectorized_launcher.vectorized_launcher."
                  "VectorizedLauncher")
    assert memory.launcher_processes({"_target_": basic, "n_jobs": 4}) == 1
    assert memory.launcher_processes({"_target_": joblib, "n_jobs": 3}) == 3
    assert memory.launcher_processes({"_target_": joblib, "n_jobs": 1}) == 1
    assert memory.launcher_processes({"_target_": joblib, "n_jobs": -1}) == cpus
    assert memory.launcher_processes({"_target_": joblib}) == cpus
    assert memory.launcher_processes({"_target_": joblib, "n_jobs": -2}) == max(1, cpus - 1)
    assert memory.launcher_processes({"_target_": joblib, "n_jobs": -cpus - 5}) == 1
    assert memory.launcher_processes({"_target_": vectorized}) == cpus
    assert memory.launcher_processes({"_target_": vectorized, "n_jobs": -2}) == cpus
    assert memory.launcher_processes({"_target_": vectorized, "n_jobs": 0}) == cpus
    assert memory.launcher_processes({"_target_": joblib, "n_jobs": None}) == cpus
    assert memory.launcher_processes({"_target_": vectorized, "n_jobs": 1}) == 1
    assert memory.launcher_processes({"_target_": vectorized, "n_jobs": 3}) == 3
    assert memory.launcher_processes({"_target_": "hydra_plugins.x.SlurmLauncher"}) is None
    assert memory.launcher_processes({}) is None


# -- the refusal ---------------------------------------------------------------------------------


def test_the_refusal_names_the_estimate_the_available_memory_and_what_to_change(tmp_path):
    from dataclasses import replace

    est = memory.estimate(load(data={"n_samples": 100_000_000}))
    data = (8 * 3 + 8 * 2) * 100_000_000
    training = (DEFAULT_NET_BYTES * 60_000_000 + DEFAULT_NET_FORWARD_BYTES * 20_000_000
                + 3 * 8 * 60_000_000 + 5 * 8 * DEFAULT_NET_PARAMETERS)
    total = memory.INTERPRETER_BYTES + data + training
    assert memory.refusal(est, 10 * GiB) == (
        f"this run needs about {total / GiB:.1f} GiB (data {data / GiB:.1f} GiB, training "
        f"{training / GiB:.1f} GiB for train.batch_size=null, full batch: 60000000 examples per "
        f"step) but 10.0 GiB is available: {ADVICE}")
    assert memory.refusal(est, total) is None  # fits exactly
    assert memory.refusal(est, None) is None  # unknown: no check
    wide = memory.estimate(load(data={"n_samples": 2_000_000}, model={"hidden": [4096, 4096]},
                                train={"batch_size": 4096}))
    assert re.fullmatch(r"this run needs about \d+\.\d GiB \(data 76 MiB, training \d\.\d GiB for "
                        rf"train.batch_size=4096: 4096 examples per step\) but 100 MiB is "
                        rf"available: {ADVICE}", memory.refusal(wide, 100 << 20) or "")
    mini = memory.estimate(load(data={"n_samples": 100_000_000}, train={"batch_size": 1024}))
    assert memory.refusal(mini, GiB) == (  # the scatter of the points is the largest part
        f"this run needs about 9.5 GiB (data 3.7 GiB, plots 5.4 GiB for the figures and the "
        f"decision boundary's 60000000 training points) but 1.0 GiB is available: {ADVICE}")
    raw = memory.estimate(load(data={"n_samples": 100_000_000, "normalize": False},
                               train={"batch_size": 1024}))
    assert memory.refusal(raw, GiB) == (
        f"this run needs about 8.2 GiB (loading the data 7.8 GiB) but 1.0 GiB is available: "
        f"{ADVICE}")
    checked = memory.estimate(load(gradcheck={"max_examples": 10_000_000},
                                   data={"n_samples": 20_000_000}, train={"batch_size": 64}))
    assert memory.refusal(checked, GiB).endswith(
        "for gradcheck.max_examples=10000000) but 1.0 GiB is available: lower "
        "gradcheck.max_examples or train.batch_size or data.n_samples, or run fewer parallel jobs")
    # a job whose training was done by a stack: evaluation, or only the figures, is what is left
    np.savez(tmp_path / "wide.npz", X=np.zeros((10, 3)), y=np.arange(10) % 2)
    five = replace(memory.estimate(load(data={"name": "file", "path": str(tmp_path / "wide.npz"),
                                              "dev_size": 2, "test_size": 2})), training=0)
    assert memory.refusal(five, 1) == (
        f"this run needs about 416 MiB (data 0 MiB, plots 16 MiB for the figures) but 0 MiB is "
        f"available: {ADVICE}")
    tie = replace(five, loading=five.data + five.plots)  # loading is named only when larger
    assert "plots 16 MiB for the figures" in memory.refusal(tie, 1)
    assert "loading the data" in memory.refusal(replace(tie, loading=tie.loading + 1), 1)
    five = replace(five, evaluation=GiB)
    assert memory.refusal(five, 1).startswith(
        "this run needs about 1.4 GiB (data 0 MiB, evaluation 1.0 GiB for the largest split in "
        "chunks of 6 examples) but")
    sweep = memory.sweep_estimate([load(data={"n_samples": 1_000_000})] * 4, 2, [[0, 1, 2, 3]])
    assert re.fullmatch(
        r"this sweep needs about 2.3 GiB \(2 processes of about 1.1 GiB: data 38 MiB, training "
        r"\d+ MiB for 2 configurations stacked over 600000 examples; the stacks' data 153 MiB "
        rf"in all\) but 100 MiB is available: {ADVICE}", memory.refusal(sweep, 100 << 20) or "")
    alone = memory.sweep_estimate([load(data={"n_samples": 1_000_000})], 1)
    assert re.fullmatch(r"this sweep needs about \d+ MiB \(1 process of about \d+ MiB: data 38 "
                        r"MiB, training \d+ MiB for train.batch_size=null, full batch: 600000 "
                        rf"examples per step\) but 100 MiB is available: {ADVICE}",
                        memory.refusal(alone, 100 << 20) or "")


def test_a_run_is_refused_against_the_memory_available_now(monkeypatch):
    big = load(data={"n_samples": 100_000_000})
    monkeypatch.setattr(memory, "available_bytes", lambda: 10 * GiB)
    with pytest.raises(memory.MemoryLimitError, match=r"^this run needs about 27\.2 GiB"):
        memory.check_run(big)
    with pytest.raises(memory.MemoryLimitError, match=r"^this run needs about 14\.4 GiB \(data "
                                                      r"3\.7 GiB, evaluation 10\.3 GiB for the "
                                                      r"largest split in chunks of 60000000 "):
        memory.check_run(big, trained=True)  # a stack trained it: evaluation is the most
    with pytest.raises(memory.MemoryLimitError, match=r"^this sweep needs about"):
        memory.check_sweep([big], 2)
    with pytest.raises(memory.MemoryLimitError, match=r"for 2 configurations stacked over "):
        memory.check_sweep([big] * 4, 2, [[0, 1, 2, 3]])
    memory.check_sweep([], 2)  # nothing to check
    memory.check_run(load(data={"n_samples": 1000}))  # fits
    memory.check_run(load(data={"name": "file", "path": "/nonexistent/x.npz"}))  # loading says


def test_size_text():
    assert memory.size_text(23.74 * GiB) == "23.7 GiB"
    assert memory.size_text(GiB) == "1.0 GiB"
    assert memory.size_text(GiB - 1) == "1024 MiB"
    assert memory.size_text(512 << 20) == "512 MiB"
    assert memory.size_text(0) == "0 MiB"


@pytest.mark.parametrize("files, room", [
    ({"proc": "0::/job\n", "job/memory.max": "1073741824", "job/memory.current": "73741824",
      "memory.max": "5", "memory.current": "1"}, 1_000_000_000),
    ({"proc": "0::/\n", "memory.max": "max", "memory.current": "5"}, None),
    ({"proc": "0::/gone\n", "memory.max": "3000", "memory.current": "1000"}, 2000),
    ({"proc": "0::/Xen/a:b\n", "Xen/a:b/memory.max": "700", "Xen/a:b/memory.current": "100",
      "memory.max": "5", "memory.current": "1"}, 600),
    ({"proc": "4:cpu,memory:/box\n", "memory/box/memory.limit_in_bytes": "2000",
      "memory/box/memory.usage_in_bytes": "500", "memory/memory.limit_in_bytes": "9",
      "memory/memory.usage_in_bytes": "1"}, 1500),
    ({"proc": "4:memory:/Xbox\n", "memory/Xbox/memory.limit_in_bytes": "2000",
      "memory/Xbox/memory.usage_in_bytes": "400"}, 1600),
    ({"proc": "4:memory:/elsewhere\n", "memory/memory.limit_in_bytes": "8000",
      "memory/memory.usage_in_bytes": "500"}, 7500),
    ({"proc": "4:memory:/\n", "memory/memory.limit_in_bytes": str(1 << 60),
      "memory/memory.usage_in_bytes": "500"}, None),
    ({"proc": "4:memory:/\n", "memory/memory.limit_in_bytes": str((1 << 60) - 1),
      "memory/memory.usage_in_bytes": "500"}, (1 << 60) - 501),
    ({"proc": "0::/\n", "memory.max": "100", "memory.current": "300"}, 0),
    ({"proc": "0::/\n"}, None),
    ({"memory.max": "100", "memory.current": "30"}, 70),  # no /proc/self/cgroup: the root's
], ids=["v2-limit", "v2-no-limit", "v2-container-root", "v2-odd-path", "v1-limit",
        "v1-odd-path", "v1-container-root", "v1-no-limit", "v1-just-a-limit", "v2-over",
        "no-controller", "no-proc-file"])
def test_a_cgroup_limit_lowers_the_available_memory(tmp_path, files, room):
    for name, text in files.items():
        path = tmp_path / ("proc_cgroup" if name == "proc" else f"cg/{name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "cg").mkdir(exist_ok=True)
    (tmp_path / "meminfo").write_text("MemTotal: 9000 kB\nMemAvailable: 4 kB\n")
    got = memory.available_bytes(tmp_path / "meminfo", tmp_path / "cg", tmp_path / "proc_cgroup")
    assert got == (4096 if room is None else min(room, 4096))
    assert memory.available_bytes(tmp_path / "none", tmp_path / "cg",
                                  tmp_path / "proc_cgroup") == room


def test_the_available_memory_is_mem_available_here():
    first = mem_available()
    got = memory.available_bytes()
    assert got is not None and 0.8 * first <= got <= 1.2 * first
    assert memory.available_bytes(Path("/nonexistent"), Path("/nonexistent"),
                                  Path("/nonexistent")) is None


# -- refused runs: one line, nothing allocated, nothing written ------------------------------------


# On Linux a child's ru_maxrss starts at its parent's RSS (the high-water mark survives fork and
# exec: a pytest worker of 750 MB made every child "peak" there), so ``python -m`` children run
# under this wrapper, which writes their own VmHWM (kB) to a file when they exit.
OWN_PEAK = """import atexit, runpy, sys
out, module = sys.argv[1], sys.argv[3]
def peak():
    with open('/proc/self/status') as status, open(out, 'w') as f:
        f.write(next(line.split()[1] for line in status if line.startswith('VmHWM')))
atexit.register(peak)
sys.argv = [module, *sys.argv[4:]]
runpy.run_module(module, run_name='__main__', alter_sys=True)
"""


def _run(args: list[str], cwd: Path, tmp: Path) -> tuple[int, str, int, float]:
    """(exit code, stderr, peak RSS in bytes, seconds) of ``python args``: its own VmHWM when it
    is ``-m`` and wrote it, else its ru_maxrss."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DVC_", "MLFLOW_", "DLPRACTICE_", "HYDRA_"))}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
    peak_file = tmp / f"peak-{time.monotonic_ns()}.txt"
    own = args[0] == "-m" and Path("/proc/self/status").is_file()
    cmd = [sys.executable, "-c", OWN_PEAK, str(peak_file), *args] if own else [sys.executable, *args]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, text=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    rss = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    if peak_file.is_file():
        rss = int(peak_file.read_text()) * 1024
    return proc.returncode, stderr, rss, time.monotonic() - start


def _runs_in(db: Path) -> int:
    if not db.is_file():
        return 0
    with contextlib.closing(sqlite3.connect(db)) as con:
        try:
            return con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


NEEDS = r"needs about (\d+\.\d) GiB \((.*)\) but (\d+\.\d) GiB is available: " + re.escape(ADVICE)


def _check_refusal(stderr: str, what: str) -> re.Match:
    lines = stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    match = re.fullmatch(rf"error: {what} {NEEDS}", lines[0])
    assert match, lines[0]
    needed, available = float(match[1]), float(match[3])
    assert needed > available
    assert abs(available * GiB - mem_available()) < 2 * GiB  # what this machine has
    return match


@pytest.mark.slow
def test_a_run_bigger_than_the_machine_is_refused_at_start(tmp_path):
    n = too_big_n_samples()
    code, stderr, rss, seconds = _run(
        ["-m", "dlpractice.experiment", f"data.n_samples={n}", "train.iterations=1",
         f"hydra.run.dir={tmp_path}/run"], ROOT, tmp_path)
    assert code == 1
    match = _check_refusal(stderr, "this run")
    train_m = n - 2 * round(0.2 * n)
    assert re.fullmatch(rf"data \d+\.\d GiB, training \d+\.\d GiB for train.batch_size=null, "
                        rf"full batch: {train_m} examples per step", match[2])
    # by hand: the full-batch pass over train alone, and X and Y of every split
    assert float(match[1]) * GiB > DEFAULT_NET_BYTES * train_m + 24 * n
    assert _runs_in(tmp_path / "mlflow.db") == 0
    assert not (tmp_path / "run").exists()
    assert rss < GiB and seconds < 60  # nothing was allocated


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["vectorized", "joblib"])
def test_a_sweep_bigger_than_the_machine_is_refused_before_its_first_job(tmp_path, launcher):
    n = too_big_n_samples()
    # vectorized: the size is swept, so the launcher refuses with every job's config; joblib:
    # the sweep's own config is refused at its start
    sizes = f"data.n_samples=200,{n}" if launcher == "vectorized" else f"data.n_samples={n}"
    code, stderr, rss, seconds = _run(
        ["-m", "dlpractice.experiment", "-m", f"hydra/launcher={launcher}",
         "hydra.launcher.n_jobs=2", sizes, "init=he,xavier" if launcher == "joblib" else "seed=0",
         "train.iterations=1", f"hydra.sweep.dir={tmp_path}/sweep"], ROOT, tmp_path)
    assert code == 1
    match = _check_refusal(stderr, "this sweep")
    assert match[2].startswith("2 processes of about ")
    assert _runs_in(tmp_path / "mlflow.db") == 0
    sweep = tmp_path / "sweep"
    assert not sweep.exists() or not [p for p in sweep.iterdir() if p.name.isdigit()]
    assert rss < GiB and seconds < 60


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["split", "train"])
def test_a_dvc_stage_refuses_before_reading_or_writing_anything(tmp_path, stage):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["data"]["n_samples"] = too_big_n_samples()
    raw["tracking"]["enabled"] = False
    work = tmp_path / "work"
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(raw))
    code, stderr, rss, seconds = _run(["-m", f"dlpractice.stages.{stage}"], work, tmp_path)
    assert code == 1
    _check_refusal(stderr, f"{stage}: this run")  # train: before its missing inputs are missed
    assert sorted(p.name for p in work.iterdir()) == ["params.yaml"]
    assert rss < GiB and seconds < 60


# -- the estimate of a real run ------------------------------------------------------------------


@pytest.mark.slow
def test_the_estimate_of_a_real_run_against_its_peak_rss(tmp_path):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((300_000, 12))
    np.savez(tmp_path / "wide.npz", X=X, y=(X[:, 0] + X[:, 1] > 0).astype(float))
    overrides = ["data=file", f"data.path={tmp_path}/wide.npz", "model.hidden=[32,16]",
                 "train.iterations=2", "train.record_every=1", "tracking.enabled=false"]
    # the baseline: what an idle interpreter that imported what the app imports holds (VmRSS)
    idle = ("from dlpractice import experiment, pipeline, report, startup; "
            "startup.import_kept(*startup.MLFLOW, *startup.MATPLOTLIB); "
            "import sys, sklearn.datasets, hydra, scipy.special; "
            "sys.stderr.write(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')))")
    _, status, *_ = _run(["-c", idle], ROOT, tmp_path)
    baseline = int(status.split()[1]) * 1024
    code, stderr, peak, _ = _run(["-m", "dlpractice.experiment", *overrides,
                                  f"hydra.run.dir={tmp_path}/run"], ROOT, tmp_path)
    assert code == 0, stderr
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = config.load(compose("config", overrides=overrides))
    estimated = memory.estimate(cfg).per_process - memory.INTERPRETER_BYTES
    assert 0.8 <= estimated / (peak - baseline) <= 1.3, (estimated, peak - baseline)
