"""Faults, with real processes and a real SQLite MLflow store in tmp_path: a run interrupted by
SIGTERM or Ctrl-C ends KILLED with the cost history so far; a run that raises or diverges ends
FAILED with a ``failure_reason``; the same for the DVC evaluate stage; a run or a sweep killed
with SIGKILL keeps the history it flushed and is closed KILLED by the next run (the sweep's re-run
finishes the killed job); a ``dvc repro`` killed mid-train is rerun without clean-up and produces
the bytes of an uninterrupted run. After every test, no run in any store the test used is left
RUNNING.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from benchmarks.scratch import copy_project
from tests.test_dvc_pipeline import Project

ROOT = Path(__file__).resolve().parents[1]
LONG = ["train.iterations=5000000", "train.record_every=100", "data.n_samples=200"]
QUICK = ["train.iterations=300", "train.record_every=50", "data.n_samples=200"]


# -- the store, read with sqlite3 (while another process writes it) ----------------------------------


def _query(db: Path, sql: str, *args: object) -> list[tuple]:
    if not db.is_file():
        return []
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as con:
        try:
            return con.execute(sql, args).fetchall()
        except sqlite3.OperationalError:  # tables not created yet
            return []


def runs(db: Path) -> list[dict]:
    rows = _query(db, "SELECT run_uuid, status, name FROM runs")
    out = []
    for run_id, status, name in rows:
        tags = dict(_query(db, "SELECT key, value FROM tags WHERE run_uuid = ?", run_id))
        steps = [s for (s,) in _query(
            db, "SELECT step FROM metrics WHERE run_uuid = ? AND key = 'cost' ORDER BY step",
            run_id)]
        out.append({"run_id": run_id, "status": status, "name": name, "tags": tags,
                    "cost_points": len(steps), "cost_steps": steps})
    return out


@pytest.fixture(autouse=True)
def no_run_left_running(tmp_path):
    """Whatever the test did, every process it started has ended: no run may be RUNNING."""
    yield
    for db in tmp_path.rglob("*.db"):
        running = [r for r in runs(db) if r["status"] == "RUNNING"]
        assert running == [], f"{db}: {running}"


def _env(db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DVC_", "MLFLOW_", "DLPRACTICE_", "HYDRA_"))}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{db}"
    return env


def _wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"ended before {what} (exit {proc.returncode}):\n{err[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _costs(db: Path, run_id: str) -> list[tuple[int, float]]:
    return _query(db, "SELECT step, value FROM metrics WHERE run_uuid = ? AND key = 'cost' "
                  "ORDER BY step", run_id)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _app(tmp_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "dlpractice.experiment", *args,
            f"hydra.run.dir={tmp_path}/run", f"hydra.sweep.dir={tmp_path}/sweep"]


# -- the Hydra app ------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_mid_training_ends_the_run_killed_with_its_history(tmp_path, signum):
    db = tmp_path / "mlflow.db"
    # preexec: a suite started in the background (`cmd &`) hands its children SIGINT ignored
    proc = subprocess.Popen(_app(tmp_path, *LONG), cwd=ROOT, env=_env(db), text=True,
                            preexec_fn=_default_sigint,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: [r for r in runs(db) if r["status"] == "RUNNING"], 120,
                  "the MLflow run", proc)
        time.sleep(2.0)  # well into training (5M iterations take minutes)
        assert proc.poll() is None
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"error: interrupted by {signum.name}; an open MLflow run is recorded as KILLED")
    (run,) = runs(db)
    assert run["status"] == "KILLED"
    # the history so far: every recorded iteration from 0, none missing
    assert run["cost_points"] >= 1
    assert run["cost_steps"] == list(range(0, 100 * run["cost_points"], 100))
    assert "failure_reason" not in run["tags"]


def test_a_run_that_raises_ends_failed_with_its_reason(tmp_path):
    db = tmp_path / "mlflow.db"
    script = textwrap.dedent(f"""
        import sys
        from dlpractice import experiment, pipeline

        def broken(*args, **kwargs):
            raise RuntimeError("injected fault in evaluate")

        pipeline.evaluate = broken
        experiment.main({_app(tmp_path, *QUICK)[3:]!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=_env(db),
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode != 0
    assert "injected fault in evaluate" in proc.stderr
    (run,) = runs(db)
    assert run["status"] == "FAILED"
    assert run["tags"]["failure_reason"] == "injected fault in evaluate"
    assert run["cost_steps"] == list(range(0, 300, 50))  # training finished before the fault


def test_a_diverging_run_ends_failed_naming_iteration_and_layer(tmp_path):
    db = tmp_path / "mlflow.db"
    proc = subprocess.run(
        _app(tmp_path, *QUICK, "init=random", "init.scale=10", "model.activation=leaky_relu",
             "train.learning_rate=1e100"),
        cwd=ROOT, env=_env(db), capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    # (a fresh store: MLflow's own INFO lines about creating its tables come first)
    lines = proc.stderr.strip().splitlines()[-1:]
    assert re.fullmatch(
        r"error: training diverged at iteration (\d+): non-finite values \(nan/inf\) in layer "
        r"[1-3]; lower train.learning_rate or use a smaller init scale", lines[0]), proc.stderr
    (run,) = runs(db)
    assert run["status"] == "FAILED"
    assert run["tags"]["failure_reason"] == lines[0].removeprefix("error: ")
    # the history up to the divergence: recorded iterations before the one named
    iteration = int(re.search(r"iteration (\d+)", lines[0]).group(1))
    assert run["cost_steps"] == list(range(0, iteration, 50))


# -- SIGKILL: the run stays open until the next entry point closes it ------------------------------

ABANDONED = "process ended without closing the run"
FLUSH_EVERY_S = 0.5  # the app's history flush (every 10 s) made shorter for these tests


def _flushing_app(tmp_path: Path, *args: str) -> list[str]:
    """The app, flushing the history every FLUSH_EVERY_S seconds."""
    script = textwrap.dedent(f"""
        from dlpractice import experiment
        from dlpractice.tracking import runs

        runs.HISTORY_FLUSH_S = {FLUSH_EVERY_S}
        experiment.main({_app(tmp_path, *args)[3:]!r})
    """)
    return [sys.executable, "-c", script]


def _sigkill_when(cmd: list[str], db: Path, predicate, what: str) -> None:
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(db), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(predicate, 180, what, proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL


def _printed_link(stdout: str, db: Path) -> tuple[str, str]:
    """The run of the printed `run:` link: (experiment id, run id), checked against the store."""
    (line,) = [ln for ln in stdout.splitlines() if ln.startswith("run: ")]
    match = re.fullmatch(r"run: http://127\.0\.0\.1:5000/#/experiments/(\d+)/runs/(\w+)", line)
    assert match is not None, line
    return match.group(1), match.group(2)


def _experiment_of(db: Path, run_id: str) -> str:
    ((experiment_id,),) = _query(db, "SELECT experiment_id FROM runs WHERE run_uuid = ?", run_id)
    return str(experiment_id)


def test_a_sigkilled_run_keeps_its_flushed_history_and_the_next_run_closes_it(tmp_path):
    db = tmp_path / "mlflow.db"
    _sigkill_when(_flushing_app(tmp_path, *LONG), db,
                  lambda: [r for r in runs(db) if r["cost_points"] >= 2], "a flushed history")
    (killed,) = runs(db)
    assert killed["status"] == "RUNNING"  # nothing could close it
    flushed = _costs(db, killed["run_id"])
    assert [s for s, _ in flushed] == list(range(0, 100 * len(flushed), 100))

    # the next run: the same settings, trained as far as the killed one flushed its history
    last = flushed[-1][0]
    again = tmp_path / "again"
    proc = subprocess.run(
        _app(again, f"train.iterations={last + 1}", *LONG[1:]), cwd=ROOT, env=_env(db),
        capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    by_id = {r["run_id"]: r for r in runs(db)}
    closed = by_id.pop(killed["run_id"])
    ((new_id, new),) = by_id.items()
    assert (closed["status"], closed["tags"]["failure_reason"]) == ("KILLED", ABANDONED)
    assert new["status"] == "FINISHED" and "failure_reason" not in new["tags"]
    # the killed run ends at its last heartbeat, with the history it flushed: the run's costs
    ((end_time,),) = _query(db, "SELECT end_time FROM runs WHERE run_uuid = ?", killed["run_id"])
    assert end_time == round(float(closed["tags"]["dlpractice.heartbeat"]) * 1000)
    assert _costs(db, killed["run_id"]) == flushed
    with (again / "run" / "history.csv").open() as f:
        assert [(int(r["iteration"]), float(r["cost"])) for r in csv.DictReader(f)] == flushed
    # what the next run printed: its MLflow UI link and its folder
    assert _printed_link(proc.stdout, db) == (_experiment_of(db, new_id), new_id)
    assert proc.stdout.splitlines()[-1] == f"folder: {again / 'run'}"


SWEEP_KILLED = ["-m", "init=he,xavier", "train.iterations=40000", "train.record_every=100",
                "data.n_samples=200"]


def test_a_sigkilled_sweep_job_is_finished_by_the_rerun(tmp_path):
    db = tmp_path / "mlflow.db"

    def second_job_flushed():
        return [r for r in runs(db) if r["name"] == "xavier-none" and r["cost_points"] >= 1]

    _sigkill_when(_flushing_app(tmp_path, *SWEEP_KILLED), db, second_job_flushed,
                  "the second job's flushed history")
    first = {r["name"]: r for r in runs(db)}
    assert {n: r["status"] for n, r in first.items()} == {
        "he-none": "FINISHED", "xavier-none": "RUNNING", f"sweep-{_sweep_id(first)}": "RUNNING"}
    assert not (tmp_path / "sweep" / "1" / "summary.json").exists()

    proc = subprocess.run(_app(tmp_path, *SWEEP_KILLED), cwd=ROOT, env=_env(db),
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    old_ids = {r["run_id"] for r in first.values()}
    after = {r["run_id"]: r for r in runs(db)}
    for name in ("xavier-none", f"sweep-{_sweep_id(first)}"):
        closed = after[first[name]["run_id"]]
        assert (closed["status"], closed["tags"].get("failure_reason")) == ("KILLED", ABANDONED)
    assert after[first["he-none"]["run_id"]]["status"] == "FINISHED"
    new = {r["name"]: r for run_id, r in after.items() if run_id not in old_ids}
    (parent_name,) = [n for n in new if n.startswith("sweep-")]
    assert sorted(new) == sorted([parent_name, "xavier-none"])  # he-none is not trained again
    assert new[parent_name]["status"] == new["xavier-none"]["status"] == "FINISHED"
    parent_id = new[parent_name]["run_id"]
    assert new["xavier-none"]["tags"]["mlflow.parentRunId"] == parent_id
    with (tmp_path / "sweep" / "sweep_summary.csv").open() as f:
        assert [(r["setting"], r["status"]) for r in csv.DictReader(f)] == [
            ("he-none", "skipped (already finished)"), ("xavier-none", "finished")]
    assert _printed_link(proc.stdout, db) == (_experiment_of(db, parent_id), parent_id)
    assert proc.stdout.splitlines()[-1] == f"folder: {tmp_path / 'sweep'}"


def _sweep_id(named_runs: dict[str, dict]) -> str:
    return named_runs["he-none"]["tags"]["sweep_id"]


# -- the DVC evaluate stage (the one that opens the MLflow run) -----------------------------------------


@pytest.fixture(scope="module")
def stage_inputs(tmp_path_factory) -> Path:
    """split -> normalize -> train -> gradcheck run for real in a scratch folder."""
    folder = tmp_path_factory.mktemp("stages")
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["train"].update(iterations=300, record_every=50)
    raw["data"]["n_samples"] = 200
    (folder / "params.yaml").write_text(yaml.safe_dump(raw))
    env = _env(folder / "unused.db")
    for stage in ("split", "normalize", "train", "gradcheck"):
        subprocess.run([sys.executable, "-m", f"dlpractice.stages.{stage}"], cwd=folder, env=env,
                       check=True, capture_output=True, timeout=300)
    return folder


def _history_steps(work: Path) -> list[int]:
    with (work / "models" / "history.csv").open() as f:
        return [int(row["iteration"]) for row in csv.DictReader(f)]


def _evaluate_with(tmp_path: Path, stage_inputs: Path, patch: str) -> tuple[Path, Path, str]:
    work = tmp_path / "work"
    shutil.copytree(stage_inputs, work)
    script = textwrap.dedent("""
        import sys, time
        from pathlib import Path
        from dlpractice import tracking
        from dlpractice.stages import evaluate
    """) + textwrap.dedent(patch) + "\nsys.exit(evaluate.main([]))\n"
    return work, tmp_path / "mlflow.db", script


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
def test_evaluate_stage_closes_abandoned_runs_and_prints_its_runs_link(tmp_path, stage_inputs):
    from mlflow.tracking import MlflowClient

    work, db = tmp_path / "work", tmp_path / "mlflow.db"
    shutil.copytree(stage_inputs, work)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    client = MlflowClient(f"sqlite:///{db}")
    # the artifacts beside the store: the client's default root is ./mlruns of this process's cwd
    experiment = client.create_experiment("dlpractice", artifact_location=str(tmp_path / "mlruns"))
    abandoned = client.create_run(experiment, tags={
        "dlpractice.owner.host": socket.gethostname(), "dlpractice.owner.pid": str(ended.pid),
        "dlpractice.owner.boot_id": Path("/proc/sys/kernel/random/boot_id").read_text().strip(),
        "dlpractice.owner.pid_namespace": os.readlink("/proc/self/ns/pid")})
    proc = subprocess.run([sys.executable, "-m", "dlpractice.stages.evaluate"], cwd=work,
                          env=_env(db), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    by_id = {r["run_id"]: r for r in runs(db)}
    closed = by_id.pop(abandoned.info.run_id)
    assert (closed["status"], closed["tags"]["failure_reason"]) == ("KILLED", ABANDONED)
    ((run_id, run),) = by_id.items()
    assert run["status"] == "FINISHED"
    assert _printed_link(proc.stdout, db) == (_experiment_of(db, run_id), run_id)
    assert proc.stdout.splitlines()[-1] == f"folder: {work / 'reports'}"


def test_evaluate_stage_that_raises_ends_failed_and_commits_nothing(tmp_path, stage_inputs):
    work, db, script = _evaluate_with(tmp_path, stage_inputs, """
        def broken(self, *args, **kwargs):
            raise RuntimeError("injected fault while logging the outcome")
        tracking.RunTracker.log_outcome = broken
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=work, env=_env(db),
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode != 0
    (run,) = runs(db)
    assert run["status"] == "FAILED"
    assert run["tags"]["failure_reason"] == "injected fault while logging the outcome"
    assert run["cost_steps"] == _history_steps(work)  # logged before the fault
    assert not (work / "reports" / "metrics.json").exists()
    assert not (work / ".stage-tmp").exists()


def test_evaluate_stage_sigterm_ends_killed_and_commits_nothing(tmp_path, stage_inputs):
    work, db, script = _evaluate_with(tmp_path, stage_inputs, """
        def slow(self, *args, **kwargs):
            Path("logging-started").touch()
            time.sleep(120)
        tracking.RunTracker.log_outcome = slow
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=work, env=_env(db), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: (work / "logging-started").exists(), 120, "the evaluate run", proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "error: evaluate: interrupted; no outputs written"
    (run,) = runs(db)
    assert run["status"] == "KILLED"
    assert run["cost_steps"] == _history_steps(work)  # logged before the fault
    assert not (work / "reports" / "metrics.json").exists()
    assert not (work / ".stage-tmp").exists()


# -- dvc repro killed mid-train ----------------------------------------------------------------------

REPRO_ITERATIONS = 100_000  # a few seconds of training: time to be killed in the middle
COMPARED = ("models/parameters.npz", "models/init_parameters.npz", "models/history.csv",
            "models/grad_norms.csv", "reports/gradcheck.json", "reports/metrics.json",
            "reports/diagnosis.json")


@pytest.fixture(scope="module")
def repro_project(tmp_path_factory) -> Project:
    base = tmp_path_factory.mktemp("killed-repro")
    root = base / "repo"
    copy_project(root)
    project = Project(root, base / "store" / "mlflow.db")
    project.git("init", "-q")
    project.params(f"train.iterations={REPRO_ITERATIONS}")
    project.git("add", "-A")
    project.git("commit", "-q", "-m", "baseline")
    yield project
    running = [r for r in runs(base / "store" / "mlflow.db") if r["status"] == "RUNNING"]
    assert running == []


def _train_pids(pgid: int) -> list[int]:
    """Processes of the process group ``pgid`` running the train stage (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            if os.getpgid(int(entry.name)) != pgid:
                continue
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            if b"dlpractice.stages.train" in cmdline:
                found.append(int(entry.name))
    return found


def _kill_repro_mid_train(project: Project, signum: int, *args: str) -> str:
    proc = subprocess.Popen([str(Path(sys.executable).parent / "dvc"), "repro", *args],
                            cwd=project.root, env=project.env, text=True, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: _train_pids(proc.pid), 300, "the train stage", proc)
        time.sleep(1.5)
        assert _train_pids(proc.pid), "train ended before it could be killed"
        os.killpg(proc.pid, signum)
        out, err = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.communicate()
    _wait_for(lambda: not _train_pids(proc.pid), 60, "the killed train stage to end")
    assert proc.returncode != 0
    return out + err


def _outputs(project: Project) -> dict[str, bytes]:
    return {rel: (project.root / rel).read_bytes() for rel in COMPARED}


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_dvc_repro_reruns_without_cleanup_and_gives_the_same_outputs(repro_project,
                                                                             signum):
    project = repro_project
    # killed in the middle of a (forced, so that train runs whatever the previous test left) repro
    _kill_repro_mid_train(project, signum, "--force")

    # rerun: no manual clean-up
    proc = project.dvc("repro")
    assert "Running stage 'train'" in proc.stdout
    assert not (project.root / ".stage-tmp").exists()
    resumed = _outputs(project)

    # an uninterrupted run of the same config writes the same bytes
    project.dvc("repro", "--force")
    assert _outputs(project) == resumed
    status = project.dvc("status", "dvc.yaml").stdout.strip()
    assert status.endswith("Data and pipelines are up to date.")


# -- cluster launchers (conf/hydra/launcher/) ---------------------------------------------------------


@pytest.mark.slow
def test_submitit_local_sweep_records_children_and_parent(tmp_path):
    """The submitit plugin's LOCAL executor (the SLURM one's machinery, on this machine)."""
    db = tmp_path / "mlflow.db"
    proc = subprocess.run(
        [sys.executable, "-m", "dlpractice.experiment", "-m", "hydra/launcher=submitit_local",
         "init=he,xavier", "train.iterations=200", "data.n_samples=200",
         f"hydra.sweep.dir={tmp_path}/sweep"],
        cwd=ROOT, env=_env(db), capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    all_runs = runs(db)
    children = [r for r in all_runs if "mlflow.parentRunId" in r["tags"]]
    parents = [r for r in all_runs if "mlflow.parentRunId" not in r["tags"]]
    assert sorted(r["name"] for r in children) == ["he-none", "xavier-none"]
    assert [r["status"] for r in children] == ["FINISHED", "FINISHED"]
    assert len(parents) == 1 and parents[0]["status"] == "FINISHED"
    assert {r["tags"]["mlflow.parentRunId"] for r in children} == {parents[0]["run_id"]}
    assert list((tmp_path / "sweep" / ".submitit").iterdir())  # really went through submitit


@pytest.mark.parametrize("launcher,target", [
    ("slurm", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"),
    ("submitit_local_jobs", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"),
    ("submitit_slurm", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"),
])
def test_launcher_configs_compose(launcher, target):
    proc = subprocess.run(
        [sys.executable, "-m", "dlpractice.experiment", f"hydra/launcher={launcher}",
         "--cfg", "hydra", "-p", "hydra.launcher"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["_target_"] == target
    assert cfg["timeout_min"] >= 1


@pytest.mark.parametrize("launcher", ["ray", "ray_cluster"])
def test_ray_launcher_configs_compose(launcher):
    # ray_cluster: the earlier name of hydra/launcher=ray, kept for the commands that use it
    proc = subprocess.run(
        [sys.executable, "-m", "dlpractice.experiment", f"hydra/launcher={launcher}",
         "--cfg", "hydra", "-p", "hydra.launcher"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )
    assert yaml.safe_load(proc.stdout) == {
        "_target_": "hydra_plugins.dlpractice_ray_launcher.ray_launcher.RayLauncher",
        "ray": {"init": {"address": "auto"}, "remote": {"num_cpus": 1, "max_retries": 0}}}


def test_ray_launcher_without_a_cluster_is_one_line(tmp_path):
    from dlpractice.server import free_port

    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    proc = subprocess.run(
        [sys.executable, "-m", "dlpractice.experiment", "-m", "hydra/launcher=ray",
         f"hydra.launcher.ray.init.address={address}", "init=he,xavier",
         f"hydra.sweep.dir={tmp_path}/sweep"],
        cwd=ROOT, env=_env(tmp_path / "mlflow.db"), capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    try:
        import ray  # noqa: F401
    except ImportError:
        expected = ("error: hydra/launcher=ray needs Ray: pip install -e '.[ray]' (the same "
                    "environment on every node of the cluster)")
    else:
        expected = (f"error: hydra/launcher=ray: cannot connect to a Ray cluster at '{address}': "
                    "[Errno 111] Connection refused (start one with `ray start --head`, or set "
                    "hydra.launcher.ray.init.address=<head>:<port>)")
    assert proc.stderr.strip().splitlines() == [expected]
    assert not [p for p in (tmp_path / "sweep").iterdir() if p.is_dir()]  # no job started
    assert runs(tmp_path / "mlflow.db") == []
