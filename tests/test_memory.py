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
from dlpractice.nn import TrainConfig, accuracy, initialize_parameters, predict, train
from dlpractice.nn.network import Network, Workspace, chunked_cross_entropy
from tests import reference as ref

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


def test_a_huge_full_batch_run_counted_by_hand():
    n = 100_000_000
    est = memory.estimate(load(data={"n_samples": n}, train={"batch_size": None}))
    train_m, dev = 60_000_000, 20_000_000
    assert est.data == 8 * 3 * n + 8 * 2 * n  # X and Y of every split, normalized X
    # the step's workspace over all of train, the dev set's forward pass, the cost's three
    # temporaries, and theta, its mask, the gradient and two more parameter-sized arrays
    assert est.training == (DEFAULT_NET_BYTES * train_m + DEFAULT_NET_FORWARD_BYTES * dev
                            + 3 * 8 * train_m + 5 * 8 * DEFAULT_NET_PARAMETERS)
    assert (est.examples, est.batch_size) == (train_m, None)
    assert est.per_process == memory.INTERPRETER_BYTES + est.data + est.training
    assert est.total == est.per_process


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


def test_split_sizes_follow_the_data_settings():
    def sizes(**data):
        s = memory.data_sizes(load(data=data))
        return s.n_features, s.train, s.dev, s.test

    assert sizes(n_samples=1000) == (2, 600, 200, 200)
    assert sizes(n_samples=1000, ratios=[0.5, 0.3, 0.2]) == (2, 500, 300, 200)
    assert sizes(n_samples=1000, dev_size=15, test_size=25) == (2, 960, 15, 25)
    # a held-out part is dev and test at once (counted once)
    assert sizes(name="football_like", n_samples=300) == (2, 300, 200, 0)
    assert sizes(name="football_like", n_samples=300, split_heldout=True) == (2, 300, 100, 100)
    s = memory.data_sizes(load(data={"name": "circles"}, course_compat=True))
    assert (s.train, s.dev, s.test) == (300, 100, 0)


def test_data_files_are_sized_from_their_headers(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((70, 4)), (rng.random(70) < 0.5).astype(float)
    X_val, y_val = rng.standard_normal((30, 4)), (rng.random(30) < 0.5).astype(float)
    np.savez(tmp_path / "rows.npz", X=X, y=y)
    np.savez(tmp_path / "columns.npz", X=X.T, y=y.reshape(1, -1), Xval=X_val.T,
             yval=y_val.reshape(-1, 1))
    scipy.io.savemat(tmp_path / "heldout.mat", {"X": X, "y": y.reshape(-1, 1), "Xval": X_val,
                                               "yval": y_val.reshape(-1, 1)})
    (tmp_path / "table.csv").write_text("a,b,c,d,label\n" + "".join(
        ",".join(f"{v:.3f}" for v in row) + f",{int(label)}\n" for row, label in zip(X, y)))

    def sizes(name: str, **data):
        s = memory.data_sizes(load(data={"name": "file", "path": str(tmp_path / name), **data}))
        return s.n_features, s.train, s.dev, s.test, s.loaded

    assert sizes("rows.npz") == (4, 42, 14, 14, 70)
    assert sizes("columns.npz") == (4, 70, 30, 0, 100)
    assert sizes("heldout.mat") == (4, 70, 30, 0, 100)
    assert sizes("heldout.mat", split_heldout=True) == (4, 60, 20, 20, 100)
    assert sizes("table.csv")[0] == 4 and 70 <= sizes("table.csv")[4] <= 71  # the header counts
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not a zip")
    assert memory.data_sizes(load(data={"name": "file", "path": str(tmp_path / "broken.npz")})) is None
    assert memory.estimate(load(data={"name": "file", "path": str(tmp_path / "broken.npz")})) is None


def owned_bytes(obj: object) -> int:
    """Bytes of the arrays ``obj`` allocated (its attributes and lists of them; views left out)."""
    arrays = []
    for value in vars(obj).values():
        arrays += value if isinstance(value, list) else [value]
    return sum(a.nbytes for a in arrays if isinstance(a, np.ndarray) and a.base is None)


def test_the_bytes_per_example_are_a_workspace_s_buffers():
    for m in (1, 333):
        assert owned_bytes(Workspace(Network((2, 10, 5, 1)), m)) == DEFAULT_NET_BYTES * m
        assert (owned_bytes(Workspace(Network((2, 10, 5, 1)), m, backward=False))
                == DEFAULT_NET_FORWARD_BYTES * m)
    est = memory.estimate(load(data={"n_samples": 1000}, model={"hidden": [7]},
                               gradcheck={"enabled": False}))
    ws = owned_bytes(Workspace(Network((2, 7, 1)), 1))
    forward = owned_bytes(Workspace(Network((2, 7, 1)), 1, backward=False))
    # full batch: the step over 600 examples, the dev set's 200, the cost's temporaries, theta & co.
    assert est.training == ws * 600 + forward * 200 + 3 * 8 * 600 + 5 * 8 * (7 * 3 + 1 * 8)
    assert est.gradcheck == 0


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


def test_a_vectorized_sweep_counts_its_planned_data_and_stacked_passes():
    cfgs = [load(data={"n_samples": 200_000}, init={"name": name})
            for name in ("he", "xavier", "glorot", "zeros")]
    one = memory.estimate(cfgs[0])
    sweep = memory.sweep_estimate(cfgs, 2, [[0, 1, 2, 3]])
    two = memory.estimate(cfgs[0], stacked=2)
    assert (sweep.processes, sweep.stacked, sweep.sweep) == (2, 2, True)
    assert sweep.shared == 4 * one.data  # every job's data, prepared by the plan
    assert sweep.training == two.training > one.training
    assert sweep.total == 4 * one.data + 2 * two.per_process
    plain = memory.sweep_estimate(cfgs, 3)
    assert (plain.shared, plain.stacked, plain.total) == (0, 1, 3 * one.per_process)


def test_the_launchers_processes():
    cpus = os.cpu_count() or 1
    basic = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
    joblib = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    vectorized = ("hydra_plugins.dlpractice_vectorized_launcher.vectorized_launcher."
                  "VectorizedLauncher")
    assert memory.launcher_processes({"_target_": basic}) == 1
    assert memory.launcher_processes({"_target_": joblib, "n_jobs": 3}) == 3
    assert memory.launcher_processes({"_target_": joblib, "n_jobs": -1}) == cpus
    assert memory.launcher_processes({"_target_": joblib, "n_jobs": -2}) == max(1, cpus - 1)
    assert memory.launcher_processes({"_target_": vectorized}) == cpus
    assert memory.launcher_processes({"_target_": "hydra_plugins.x.SlurmLauncher"}) is None


# -- the refusal ---------------------------------------------------------------------------------


def test_the_refusal_names_the_estimate_the_available_memory_and_what_to_change():
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
    mini = memory.estimate(load(data={"n_samples": 100_000_000}, train={"batch_size": 1024}))
    assert memory.refusal(mini, GiB) == (  # the scatter of the points is the largest part
        f"this run needs about 9.5 GiB (data 3.7 GiB, plots 5.4 GiB for the decision boundary's "
        f"60000000 training points) but 1.0 GiB is available: {ADVICE}")
    checked = memory.estimate(load(gradcheck={"max_examples": 10_000_000},
                                   data={"n_samples": 20_000_000}, train={"batch_size": 64}))
    assert memory.refusal(checked, GiB).endswith(
        "for gradcheck.max_examples=10000000) but 1.0 GiB is available: lower "
        "gradcheck.max_examples or train.batch_size or data.n_samples, or run fewer parallel jobs")
    sweep = memory.sweep_estimate([load(data={"n_samples": 1_000_000})] * 4, 2, [[0, 1, 2, 3]])
    assert re.fullmatch(
        r"this sweep needs about 2.1 GiB \(2 processes of about \d+ MiB: data 38 MiB, training "
        r"\d+ MiB for 2 configurations stacked over 600000 examples; the stacks' data 153 MiB "
        rf"once\) but 100 MiB is available: {ADVICE}", memory.refusal(sweep, 100 << 20) or "")


def test_size_text():
    assert memory.size_text(23.74 * GiB) == "23.7 GiB"
    assert memory.size_text(GiB) == "1.0 GiB"
    assert memory.size_text(GiB - 1) == "1024 MiB"
    assert memory.size_text(512 << 20) == "512 MiB"


@pytest.mark.parametrize("files, room", [
    ({"proc": "0::/job\n", "job/memory.max": "1073741824", "job/memory.current": "73741824"},
     1_000_000_000),
    ({"proc": "0::/\n", "memory.max": "max", "memory.current": "5"}, None),
    ({"proc": "4:memory:/box\n", "memory/box/memory.limit_in_bytes": "2000",
      "memory/box/memory.usage_in_bytes": "500"}, 1500),
    ({"proc": "4:memory:/elsewhere\n", "memory/memory.limit_in_bytes": "9223372036854771712",
      "memory/memory.usage_in_bytes": "500"}, None),
    ({"proc": "0::/\n", "memory.max": "100", "memory.current": "300"}, 0),
    ({"proc": "0::/\n"}, None),
], ids=["v2-limit", "v2-no-limit", "v1-limit", "v1-no-limit", "v2-over", "no-controller"])
def test_a_cgroup_limit_lowers_the_available_memory(tmp_path, files, room):
    for name, text in files.items():
        path = tmp_path / ("proc_cgroup" if name == "proc" else f"cg/{name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert memory._cgroup_room(tmp_path / "cg", tmp_path / "proc_cgroup") == room


def test_the_available_memory_is_at_most_mem_available():
    first = mem_available()
    got = memory.available_bytes()
    assert got is not None and 0.8 * first <= got <= 1.2 * first


# -- evaluation in chunks ------------------------------------------------------------------------


def test_chunked_evaluation_gives_the_accuracy_of_one_pass():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((4, 1001))
    Y = (X[0] * X[1] + 0.3 * rng.standard_normal(1001) > 0).astype(float).reshape(1, -1)
    params = initialize_parameters((4, 9, 6, 1), "he", rng=rng)
    expected = ref.accuracy(params, X, Y)
    labels = ref.predict(params, X)
    for columns in (None, 1, 7, 64, 1000, 1001, 5000):
        assert accuracy(params, X, Y, "relu", columns) == expected, columns
        np.testing.assert_array_equal(predict(params, X, "relu", columns), labels)
    net = Network.from_parameters(params)
    assert chunked_cross_entropy(net, X, Y) == pytest.approx(ref.cost(params, X, Y), rel=1e-13)
    assert chunked_cross_entropy(net, X, Y, 64) == pytest.approx(ref.cost(params, X, Y), rel=1e-13)


def test_mini_batch_training_costs_its_dev_and_final_sets_in_chunks():
    rng = np.random.default_rng(4)
    X, X_dev = rng.standard_normal((2, 700)), rng.standard_normal((2, 300))
    Y = (X[0] > X[1]).astype(float).reshape(1, -1)
    Y_dev = (X_dev[0] > X_dev[1]).astype(float).reshape(1, -1)
    cfg = TrainConfig((2, 6, 1), learning_rate=0.1, iterations=5, batch_size=128, lambd=0.3,
                      record_every=2, seed=2)
    result = train(X, Y, cfg, X_dev=X_dev, Y_dev=Y_dev)
    init = initialize_parameters((2, 6, 1), "he", rng=np.random.default_rng(2))
    assert result.dev_costs[0] == pytest.approx(ref.cost(init, X_dev, Y_dev, lambd=0.3), rel=1e-12)
    assert result.final_cost == pytest.approx(ref.cost(result.parameters, X, Y, lambd=0.3),
                                              rel=1e-12)


def test_a_mini_batch_run_evaluates_in_chunks_to_the_accuracies_of_one_pass():
    cfg = load(data={"name": "moons", "n_samples": 3000, "noise": 0.3},
               train={"batch_size": 64, "iterations": 20, "learning_rate": 0.3})
    outcome = pipeline.run_all(cfg)
    expected = ref.evaluate(outcome.result.parameters, cfg.to_dict())
    for split in ("train", "dev", "test"):
        assert getattr(outcome.evaluation, f"{split}_accuracy") == expected[f"{split}_accuracy"]


# -- refused runs: one line, nothing allocated, nothing written ------------------------------------


def _run(args: list[str], cwd: Path, tmp: Path) -> tuple[int, str, int, float]:
    """(exit code, stderr, peak RSS in bytes, seconds) of ``python args`` (its own ru_maxrss)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DVC_", "MLFLOW_", "DLPRACTICE_", "HYDRA_"))}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    rss = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
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
