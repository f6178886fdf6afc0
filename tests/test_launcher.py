"""The ``vectorized`` launcher's own machinery: job configs derived instead of composed (equal to
Hydra's composition), and its worker processes started either way (fork, spawn)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]


def hydra_loader():
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.core.utils import setup_globals

    setup_globals()  # Hydra's resolvers (${now:...})
    return ConfigLoaderImpl(config_search_path=create_config_search_path(str(ROOT / "conf")))


JOBS = [
    ["experiment=regularization", "regularizer=l2", "regularizer.lambd=0"],
    ["experiment=regularization", "regularizer=l2", "regularizer.lambd=0.05"],
    ["experiment=regularization", "regularizer=l2", "regularizer.lambd=0.7"],
    ["experiment=regularization", "regularizer=dropout", "regularizer.keep_prob=0.86"],
    ["experiment=regularization", "regularizer=dropout", "regularizer.keep_prob=0.5"],
    ["init=he", "train.learning_rate=0.1", "train.iterations=300"],
    ["init=he", "train.learning_rate=0.5", "train.iterations=200"],
    ["init=xavier", "train.learning_rate=0.5", "train.iterations=200"],
    ["init=xavier", "train.learning_rate=0.5", "train.iterations=200", "seed=7"],
    ["model.hidden=[4,4]", "train.iterations=10"],
    ["model.hidden=[3]", "train.iterations=10"],
    ["data=moons", "data.noise=0.3", "tracking.experiment=a b"],
    ["data=moons", "data.noise=0.1", "tracking.experiment=other"],
    ["data=moons", "data.noise=null", "tracking.experiment='quoted text'"],
]


def test_derived_job_configs_equal_hydra_composition():
    from hydra.types import RunMode

    from hydra_plugins.dlpractice_vectorized_launcher.sweep_configs import install

    loader = hydra_loader()
    master = loader.load_configuration(
        "config", overrides=["hydra.sweep.dir=/tmp/x", "hydra/launcher=vectorized"],
        run_mode=RunMode.MULTIRUN)
    compose = loader.load_sweep_config  # Hydra's own, kept before installing the cache
    cache = install(loader)
    assert cache is not None and loader.load_sweep_config is cache
    assert install(loader) is cache  # installed once
    for overrides in JOBS * 2:  # the second round: every one derived or composed again
        want = compose(master, list(overrides))
        got = loader.load_sweep_config(master, list(overrides))
        assert OmegaConf.to_yaml(got) == OmegaConf.to_yaml(want), overrides
        assert OmegaConf.is_struct(got) and not OmegaConf.is_readonly(got.hydra)
        assert got.hydra.overrides.task == want.hydra.overrides.task
        assert got.hydra.job.override_dirname == want.hydra.job.override_dirname
        assert got.hydra.run.dir == want.hydra.run.dir  # resolvers (${now:}) see the same cache
    # one composition per distinct set of group choices and value keys (8 here; a list value
    # counts as structural), not per job
    assert cache.composed == 8


@pytest.mark.parametrize("overrides", [
    ["regularizer.bogus=1"],  # a key the config does not have
    ["+regularizer.lambd=1"],  # appending an existing key
])
def test_what_hydra_rejects_is_still_rejected(overrides):
    from hydra.errors import ConfigCompositionException
    from hydra.types import RunMode

    from hydra_plugins.dlpractice_vectorized_launcher.sweep_configs import install

    loader = hydra_loader()
    master = loader.load_configuration("config", overrides=[], run_mode=RunMode.MULTIRUN)
    install(loader)
    loader.load_sweep_config(master, ["regularizer=l2", "regularizer.lambd=0.1"])
    with pytest.raises(ConfigCompositionException):
        loader.load_sweep_config(master, ["regularizer=l2", *overrides])


SWEEP = ["regularizer=l2", "regularizer.lambd=0,0.1,0.3,0.7", "train.iterations=300",
         "train.record_every=50", "data.n_samples=200"]


# runs the app after registering a fork hook that notes which thread each fork comes from and
# how many threads the process has; with EMULATE_TELEMETRY, MLflow's tracked calls start a
# lasting thread, as its usage telemetry does when it is enabled (without network here)
RECORD_FORKS = """
import os, runpy, threading, time
def note():
    with open(os.environ["FORKS_LOG"], "a") as f:
        f.write(f"{threading.current_thread().name} {threading.active_count()}\\n")
os.register_at_fork(before=note)
if os.environ.get("EMULATE_TELEMETRY"):
    import mlflow.telemetry.track as track
    def record(*args, **kwargs):
        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
    track.is_telemetry_disabled = lambda: False
    track._is_telemetry_disabled_for_event = lambda event: False
    track._add_telemetry_record = record
runpy.run_module("dlpractice.experiment", run_name="__main__", alter_sys=True)
"""


def run_sweep(tmp_path: Path, name: str, *launcher: str, forks_log: Path | None = None
              ) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/{name}.db"}
    app = ["-m", "dlpractice.experiment"]
    if forks_log is not None:
        app, env["FORKS_LOG"] = ["-c", RECORD_FORKS], str(forks_log)
    return subprocess.run(
        [sys.executable, *app, "-m", "hydra/launcher=vectorized",
         *launcher, *SWEEP, f"hydra.sweep.dir={tmp_path}/{name}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )


@pytest.mark.slow
def test_forked_and_spawned_workers_give_the_same_sweep(tmp_path):
    from mlflow.tracking import MlflowClient

    results = {}
    for method in ("fork", "spawn"):
        forks = tmp_path / f"{method}-forks.txt"
        proc = run_sweep(tmp_path, method, "hydra.launcher.n_jobs=2",
                         f"hydra.launcher.start_method={method}", forks_log=forks)
        assert proc.returncode == 0, proc.stderr[-3000:]
        if method == "fork":
            # every fork (2 training shares, 1 job worker) from the main thread before it runs
            # a job: a fork while another thread draws a plot hands matplotlib's lock held
            assert forks.read_text().splitlines() == ["MainThread 1"] * 3
        log = proc.stdout + proc.stderr
        assert f"1 {'forked' if method == 'fork' else 'spawned'} worker process" in log
        assert "4 of 4 jobs train in stacked passes (2 process(es)" in log
        client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/{method}.db")
        exp = client.get_experiment_by_name("dlpractice")
        runs = client.search_runs([exp.experiment_id])
        children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
        assert len(children) == 4 and len(runs) == 5
        assert all(r.info.status == "FINISHED" for r in runs)
        # both processes finished jobs: their logs name this process and the worker
        rows = [json.loads((tmp_path / method / str(j) / "summary.json").read_text())
                for j in range(4)]
        assert all(r["status"] == "finished" for r in rows)
        results[method] = [(r["train_accuracy"], r["dev_accuracy"], r["final_cost"]) for r in rows]
    assert results["fork"] == results["spawn"]


@pytest.mark.slow
def test_threads_started_by_mlflow_calls_do_not_stop_the_workers_forking(tmp_path, monkeypatch):
    """MLflow's usage telemetry (on by default outside CI) starts threads at the first tracked
    call: the job workers are forked before any (after the store is prepared), and they record
    their runs under the sweep's one parent run."""
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("EMULATE_TELEMETRY", "1")
    forks = tmp_path / "forks.txt"
    proc = run_sweep(tmp_path, "telemetry", "hydra.launcher.n_jobs=2", forks_log=forks)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 forked worker process" in proc.stdout + proc.stderr
    assert forks.read_text().splitlines() == ["MainThread 1"] * 3
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/telemetry.db")
    runs = client.search_runs([client.get_experiment_by_name("dlpractice").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 4
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert all(r.info.status == "FINISHED" for r in runs)


def test_a_bad_start_method_is_one_line(tmp_path):
    proc = run_sweep(tmp_path, "bad", "hydra.launcher.start_method=thread")
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "start_method" in lines[0], proc.stderr


@pytest.mark.slow
def test_a_finished_sweep_is_skipped_without_waiting_for_training(tmp_path):
    """Its training processes start before the store is read; a re-run finds every job FINISHED,
    stops them and records nothing new."""
    from mlflow.tracking import MlflowClient

    first = run_sweep(tmp_path, "again")
    assert first.returncode == 0, first.stderr[-3000:]
    again = run_sweep(tmp_path, "again")
    assert again.returncode == 0, again.stderr[-3000:]
    rows = [json.loads((tmp_path / "again" / str(j) / "summary.json").read_text()) for j in range(4)]
    assert [r["status"] for r in rows] == ["skipped (already finished)"] * 4
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/again.db")
    runs = client.search_runs([client.get_experiment_by_name("dlpractice").experiment_id])
    assert len([r for r in runs if "mlflow.parentRunId" in r.data.tags]) == 4
    assert "4 of 4 jobs already finished: their training is not waited for" in (
        again.stdout + again.stderr)


def test_an_unusable_store_fails_before_any_output(tmp_path):
    proc = run_sweep(tmp_path, "nostore", f"tracking.uri=file://{tmp_path}/folder")
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "plain folder" in lines[0], proc.stderr
    assert not (tmp_path / "nostore").exists()
