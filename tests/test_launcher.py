"""The ``vectorized`` launcher's own machinery: job configs derived instead of composed (equal to
Hydra's composition), and its worker processes started either way (fork, spawn)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def job_outputs(sweep_dir: Path) -> list[dict]:
    """What each job folder says: its config, overrides, Hydra's override dirname, its result."""
    out = []
    for job in sorted((p for p in sweep_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)):
        hydra = yaml.safe_load((job / ".hydra" / "hydra.yaml").read_text())["hydra"]
        summary = json.loads((job / "summary.json").read_text())
        for key in ("train_seconds", "sweep_id", "run_id", "run_url"):
            summary.pop(key, None)
        out.append({
            "config": yaml.safe_load((job / ".hydra" / "config.yaml").read_text()),
            "overrides": yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()),
            "override_dirname": hydra["job"]["override_dirname"],
            "task": hydra["overrides"]["task"],
            "num": hydra["job"]["num"],
            "summary": summary,
        })
    return out


# groups and values both vary; a list value, a quoted string and an invalid value (noise=null)
JOBS = ["model.hidden=[4,4],[3]", "train.learning_rate=0.1,0.5", "data=moons,circles",
        "data.noise=0.1,null", "tracking.experiment='a b'", "train.iterations=10",
        "tracking.enabled=false"]


@pytest.mark.slow
def test_vectorized_jobs_get_the_configs_and_results_of_the_basic_launcher(tmp_path):
    for launcher in ("basic", "vectorized"):
        proc = subprocess.run(
            [sys.executable, "-m", "dlpractice.experiment", "-m", f"hydra/launcher={launcher}",
             *JOBS, f"hydra.sweep.dir={tmp_path / launcher}"],
            cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
    basic, vectorized = job_outputs(tmp_path / "basic"), job_outputs(tmp_path / "vectorized")
    assert len(basic) == 16
    assert [j["summary"]["status"] for j in basic].count("failed") == 8  # noise=null
    assert vectorized == basic
    # each process of the vectorized sweep draws its jobs one after another in kept figures: the
    # same images, byte for byte, as the basic launcher's new process (and figures) per job
    figures = sorted(p.relative_to(tmp_path / "basic") for p in (tmp_path / "basic").glob("*/*.png"))
    assert len(figures) == 8 * 4  # the 8 jobs that ran
    for path in figures:
        assert (tmp_path / "vectorized" / path).read_bytes() == (tmp_path / "basic" / path).read_bytes()


@pytest.mark.slow
def test_vectorized_jobs_of_a_train_size_sweep_are_the_basic_launchers(tmp_path):
    """data.train_size: jobs of one size stack (their data is the same), each size is its own
    stack; a size the train split cannot give fails its jobs alone, with its one-line reason."""
    jobs = ["data=moons", "data.n_samples=200", "data.train_size=30,0.5,500", "regularizer=l2",
            "regularizer.lambd=0,0.3", "train.iterations=30", "tracking.enabled=false"]
    logs = {}
    for launcher in ("basic", "vectorized"):
        proc = subprocess.run(
            [sys.executable, "-m", "dlpractice.experiment", "-m", f"hydra/launcher={launcher}",
             *jobs, f"hydra.sweep.dir={tmp_path / launcher}"],
            cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        logs[launcher] = proc.stdout + proc.stderr
    assert "6 of 6 jobs share a network and data in 3 group(s)" in logs["vectorized"]
    basic, vectorized = job_outputs(tmp_path / "basic"), job_outputs(tmp_path / "vectorized")
    assert vectorized == basic
    failed = [j["summary"] for j in basic if j["summary"]["status"] == "failed"]
    assert [j["config"]["data"]["train_size"] for j in basic if j["summary"] in failed] == [500, 500]
    assert {f["error"] for f in failed} == {
        "data.train_size=500 is not allowed: must be null (the whole train split), a number of "
        "examples in [2, 120] or a fraction in (0, 1]"}


def test_a_key_appended_twice_is_refused_before_the_sweep_starts(tmp_path):
    for launcher in ("basic", "vectorized"):
        proc = subprocess.run(
            [sys.executable, "-m", "dlpractice.experiment", "-m", f"hydra/launcher={launcher}",
             "+regularizer.lambd=0.1,0.2", f"hydra.sweep.dir={tmp_path / launcher}"],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"})
        assert proc.returncode != 0
        assert proc.stderr.strip().splitlines() == [
            "error: +regularizer.lambd=0.1,0.2: regularizer.lambd is already in the config; "
            "set it without '+' (regularizer.lambd=0.1,0.2)"]
        assert not (tmp_path / launcher).exists()
    assert not (tmp_path / "mlflow.db").exists()


SWEEP = ["regularizer=l2", "regularizer.lambd=0,0.1,0.3,0.7", "train.iterations=300",
         "train.record_every=50", "data.n_samples=200"]


# runs the app after registering a fork hook that notes which thread each fork comes from and
# how many threads the process has, and noting every object that plain pickle refused in it or
# a forked worker (a worker's JobReturns go back by plain pickle; cloudpickle takes ~0.2 s); with
# EMULATE_TELEMETRY, MLflow's tracked calls start a lasting thread, as its usage telemetry does
# when it is enabled (without network here)
RECORD_FORKS = """
import os, pickle, runpy, threading, time
def note():
    with open(os.environ["FORKS_LOG"], "a") as f:
        f.write(f"{threading.current_thread().name} {threading.active_count()}\\n")
os.register_at_fork(before=note)
plain_dumps = pickle.dumps
def dumps(obj, *args, **kwargs):
    try:
        return plain_dumps(obj, *args, **kwargs)
    except Exception as exc:
        with open(os.environ["FORKS_LOG"] + ".pickle", "a") as f:
            f.write(f"{type(obj).__name__}: {exc}\\n")
        raise
pickle.dumps = dumps
if os.environ.get("EMULATE_TELEMETRY"):
    from mlflow.tracking import MlflowClient
    def starting_a_thread(method):
        def call(*args, **kwargs):
            threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
            with open(os.environ["FORKS_LOG"] + ".threads", "a") as f:
                f.write(f"{method.__name__}\\n")
            return method(*args, **kwargs)
        return call
    for name in ("create_experiment", "get_experiment_by_name", "create_run", "log_batch",
                 "set_terminated", "search_runs"):
        setattr(MlflowClient, name, starting_a_thread(getattr(MlflowClient, name)))
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
            # the one worker is forked from the main thread before any job runs (a fork while
            # another thread draws a plot would hand the child matplotlib's lock held)
            assert forks.read_text().splitlines() == ["MainThread 1"]
        log = proc.stdout + proc.stderr
        assert f"1 {'forked' if method == 'fork' else 'spawned'} worker process" in log
        assert "4 of 4 jobs share a network and data in 1 group(s)" in log
        assert "2 process(es) train and finish the jobs" in log
        client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/{method}.db")
        exp = client.get_experiment_by_name("dlpractice")
        runs = client.search_runs([exp.experiment_id])
        children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
        assert len(children) == 4 and len(runs) == 5
        assert all(r.info.status == "FINISHED" for r in runs)
        # both processes finished jobs (a worker that died would leave its jobs to this one)
        assert "a worker process failed" not in log
        assert len({r.data.tags["dlpractice.owner.pid"] for r in children}) == 2
        # the worker's 2 JobReturns went back by plain pickle: Hydra's plugin classes the same
        refused = Path(f"{forks}.pickle")
        assert not refused.exists(), refused.read_text()
        rows = [json.loads((tmp_path / method / str(j) / "summary.json").read_text())
                for j in range(4)]
        assert all(r["status"] == "finished" for r in rows)
        results[method] = [(r["train_accuracy"], r["dev_accuracy"], r["final_cost"]) for r in rows]
    assert results["fork"] == results["spawn"]


@pytest.mark.slow
def test_threads_started_by_mlflow_calls_do_not_stop_the_workers_forking(tmp_path, monkeypatch):
    """MLflow's usage telemetry (on by default outside CI) starts threads at the first tracked
    call: the worker is forked before any (no process opens the store before the first job
    starts), and every job records its run under the sweep's one parent run."""
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("EMULATE_TELEMETRY", "1")
    forks = tmp_path / "forks.txt"
    proc = run_sweep(tmp_path, "telemetry", "hydra.launcher.n_jobs=2", forks_log=forks)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 forked worker process" in proc.stdout + proc.stderr
    assert forks.read_text().splitlines() == ["MainThread 1"]
    # the emulation did start threads: at the parent run, after the fork
    assert "create_run" in Path(f"{forks}.threads").read_text().split()
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/telemetry.db")
    runs = client.search_runs([client.get_experiment_by_name("dlpractice").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 4
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert all(r.info.status == "FINISHED" for r in runs)


@pytest.mark.slow
def test_the_worker_finishes_its_jobs_while_this_process_finishes_its_own(tmp_path):
    """Jobs 0-11 are this process's share, 12-23 the worker's: the worker's JobReturns are taken
    as they come, so it does not wait (its pipe full after 2 or 3) for this process to end its
    share first: half of its jobs or more end before this process's last."""
    lambds = ",".join(f"{0.05 * k:g}" for k in range(24))
    args = [a if not a.startswith("regularizer.lambd=") else f"regularizer.lambd={lambds}"
            for a in SWEEP]
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    proc = subprocess.run(
        [sys.executable, "-m", "dlpractice.experiment", "-m", "hydra/launcher=vectorized",
         "hydra.launcher.n_jobs=2", "hydra.launcher.start_method=fork", *args,
         f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "a worker process failed" not in proc.stderr
    done = {j: (tmp_path / "sweep" / str(j) / "summary.json").stat().st_mtime for j in range(24)}
    last_here = max(done[j] for j in range(12))
    assert sum(done[j] < last_here for j in range(12, 24)) >= 6, done


def test_a_bad_start_method_is_one_line(tmp_path):
    proc = run_sweep(tmp_path, "bad", "hydra.launcher.start_method=thread")
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "start_method" in lines[0], proc.stderr


def _files_of(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under ``folder``: its modification time (ns) and bytes."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_a_finished_sweep_is_skipped_without_running_its_jobs(tmp_path):
    """A re-run finds every job FINISHED in one search: each row is the first sweep's run (same
    run id and metrics), no job runs again (its folder's files untouched, Hydra's log included),
    nothing is trained, no child run is added; the re-run is still one parent run, of 4 jobs."""
    from mlflow.tracking import MlflowClient

    first = run_sweep(tmp_path, "again")
    assert first.returncode == 0, first.stderr[-3000:]
    folder = tmp_path / "again"
    before = [json.loads((folder / str(j) / "summary.json").read_text()) for j in range(4)]
    files = {j: _files_of(folder / str(j)) for j in range(4)}
    again = run_sweep(tmp_path, "again")
    assert again.returncode == 0, again.stderr[-3000:]
    rows = [json.loads((folder / str(j) / "summary.json").read_text()) for j in range(4)]
    assert [r["status"] for r in rows] == ["skipped (already finished)"] * 4
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/again.db")
    runs = client.search_runs([client.get_experiment_by_name("dlpractice").experiment_id])
    children = {r.info.run_id: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert len(children) == 4
    for row, earlier in zip(rows, before, strict=True):
        assert row["run_id"] == earlier["run_id"] and row["run_id"] in children
        run = children[row["run_id"]]
        for key in ("train_accuracy", "dev_accuracy", "dev_cost", "final_cost"):
            assert row[key] == earlier[key] == run.data.metrics[key]
        assert "test_accuracy" not in row and "test_accuracy" not in run.data.metrics  # hidden
        assert row["config"] == earlier["config"] and row["overrides"] == earlier["overrides"]
        assert row["job"] == earlier["job"] and row["sweep_id"] != earlier["sweep_id"]
    for j in range(4):
        after = _files_of(folder / str(j))
        del after["summary.json"], files[j]["summary.json"]
        assert after == files[j]  # not even Hydra's job log was touched
    parents = sorted((r for r in runs if "mlflow.parentRunId" not in r.data.tags),
                     key=lambda r: r.info.start_time)
    assert len(parents) == 2 and all(p.info.status == "FINISHED" for p in parents)
    assert parents[1].data.tags["jobs"] == "4" and parents[1].data.tags["failed_jobs"] == "0"
    assert parents[1].data.tags["sweep_id"] == rows[0]["sweep_id"]


@pytest.mark.slow
def test_a_resumed_sweep_runs_only_its_unfinished_jobs(tmp_path):
    """Two of four jobs finished before: the re-run trains and records the other two only, each
    with the accuracy it has in a sweep of its own."""
    from mlflow.tracking import MlflowClient

    half = [a if not a.startswith("regularizer.lambd=") else "regularizer.lambd=0,0.1"
            for a in SWEEP]
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/resume.db"}

    def sweep(args: list[str], folder: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "dlpractice.experiment", "-m", "hydra/launcher=vectorized",
             *args, f"hydra.sweep.dir={tmp_path / folder}"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)

    assert sweep(half, "resume").returncode == 0
    proc = sweep(SWEEP, "resume")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads((tmp_path / "resume" / str(j) / "summary.json").read_text())
            for j in range(4)]
    assert [r["status"] for r in rows] == ["skipped (already finished)"] * 2 + ["finished"] * 2
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/resume.db")
    runs = client.search_runs([client.get_experiment_by_name("dlpractice").experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert sorted(r.info.run_id for r in children) == sorted(r["run_id"] for r in rows)
    # the two new jobs trained in a stack of two: their results are a separate sweep's
    alone = [a if not a.startswith("regularizer.lambd=") else "regularizer.lambd=0.3,0.7"
             for a in SWEEP] + ["tracking.enabled=false"]
    assert sweep(alone, "alone").returncode == 0
    for j in (2, 3):
        other = json.loads((tmp_path / "alone" / str(j - 2) / "summary.json").read_text())
        for key in ("train_accuracy", "dev_accuracy", "final_cost"):
            assert rows[j][key] == other[key]


@pytest.mark.slow
def test_a_sweep_rerun_in_its_folder_on_another_store_trains_every_job_again_stacked(tmp_path):
    """The folders name runs that the new store does not have: every job trains again, the
    stackable ones in one pass as before, to the same numbers, and is recorded in the new store."""
    from mlflow.tracking import MlflowClient

    first = run_sweep(tmp_path, "sweep", "hydra.launcher.n_jobs=1")
    assert first.returncode == 0, first.stderr[-3000:]
    folder = tmp_path / "sweep"
    before = [json.loads((folder / str(j) / "summary.json").read_text()) for j in range(4)]
    (tmp_path / "sweep.db").rename(tmp_path / "first.db")
    again = run_sweep(tmp_path, "sweep", "hydra.launcher.n_jobs=1")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "a process trains 4 of its 4 job(s) to run in 1 stacked pass(es)" in again.stdout
    rows = [json.loads((folder / str(j) / "summary.json").read_text()) for j in range(4)]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/sweep.db")
    runs = client.search_runs([client.get_experiment_by_name("dlpractice").experiment_id])
    children = {r.info.run_id: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert sorted(children) == sorted(r["run_id"] for r in rows)
    for row, earlier in zip(rows, before, strict=True):
        assert row["status"] == earlier["status"] == "finished"
        assert row["run_id"] != earlier["run_id"]
        for key in ("train_accuracy", "dev_accuracy", "dev_cost", "final_cost"):
            assert row[key] == earlier[key] == children[row["run_id"]].data.metrics[key]


@pytest.mark.slow
def test_a_resumed_sweep_names_the_runs_whose_files_its_folders_hold(tmp_path):
    """The same configurations ran again later elsewhere (`tracking.rerun=true`, newer runs): a
    re-run of the first sweep settles each job with the run its folder holds the files of, not the
    newest run of its configuration; a folder whose row is unreadable takes the newest."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}

    def sweep(folder: str, *extra: str) -> list[dict]:
        proc = subprocess.run(
            [sys.executable, "-m", "dlpractice.experiment", "-m", "hydra/launcher=vectorized",
             *SWEEP, *extra, f"hydra.sweep.dir={tmp_path / folder}"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return [json.loads((tmp_path / folder / str(j) / "summary.json").read_text())
                for j in range(4)]

    first = sweep("first")
    later = sweep("later", "tracking.rerun=true")
    assert {r["run_id"] for r in first}.isdisjoint(r["run_id"] for r in later)
    (tmp_path / "first" / "3" / "summary.json").write_text("not json")
    again = sweep("first")
    assert [r["status"] for r in again] == ["skipped (already finished)"] * 4
    assert [r["run_id"] for r in again] == [r["run_id"] for r in first[:3]] + [later[3]["run_id"]]
    for row, ran in zip(again, [*first[:3], later[3]], strict=True):
        assert row["dev_accuracy"] == ran["dev_accuracy"] and row["config_hash"] == ran["config_hash"]


def test_an_unusable_store_fails_before_any_output(tmp_path):
    proc = run_sweep(tmp_path, "nostore", f"tracking.uri=file://{tmp_path}/folder")
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "plain folder" in lines[0], proc.stderr
    assert not (tmp_path / "nostore").exists()
