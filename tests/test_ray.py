"""Sweeps on a real local Ray cluster through ``hydra/launcher=ray``, tracked in the team server on
PostgreSQL: every job a FINISHED child of one parent with the basic launcher's numbers; a job whose
Ray worker is SIGKILLed mid-training ends KILLED, is reported failed, and a re-run trains only it.

The cluster (``ray start --head --block``, loopback only, its own temp folder) is started once for
this module and stopped by SIGTERM to that process. Marked ``ray``: CI runs them, ``-m "not ray"``
leaves them out. PostgreSQL and the server: the fixtures of tests/test_server.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import yaml

from dlpractice.server import free_port
from tests import reference as ref
from tests import test_server
from tests.test_server import ROOT, _unavailable, client, experiment_app

# the PostgreSQL database and tracking server of tests/test_server.py
pg_uri, pg_server = test_server.pg_uri, test_server.pg_server

pytestmark = [pytest.mark.ray, pytest.mark.slow]

# Ray on Linux replaces 127.0.0.1 by the machine's address unless multi-node clusters are off:
# with this, the head, its workers and the driver bind and talk on loopback only.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
QUICK = ["train.iterations=200", "train.record_every=20", "data.n_samples=200"]
SWEEP = ["init=he,xavier,glorot,random", "selection.hide_test=false"]  # test metrics: checked
LONG_ITERATIONS = 80000  # job 1 of the fault sweep: long enough to be killed mid-training
FAULT_SWEEP = [f"train.iterations=300,{LONG_ITERATIONS},400", "data.n_samples=200"]
METRICS = ("train_accuracy", "dev_accuracy", "test_accuracy")


class Cluster:
    def __init__(self, process: subprocess.Popen, address: str) -> None:
        self.process, self.address = process, address

    def launcher(self) -> list[str]:
        return ["hydra/launcher=ray", f"hydra.launcher.ray.init.address={self.address}"]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def ray_cluster():
    try:
        import ray  # noqa: F401
    except ImportError:
        _unavailable("ray is not installed (pip install -e '.[ray]')")
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent))
    assert ray_cli is not None
    temp = tempfile.mkdtemp(prefix="ray-")  # short: Ray's socket paths must fit in 107 bytes
    port = free_port()
    log = open(Path(temp) / "start.log", "w")
    process = subprocess.Popen(
        [ray_cli, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
         "--num-cpus=2", "--object-store-memory=100000000", "--include-dashboard=false",
         "--disable-usage-stats", f"--temp-dir={temp}"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **RAY_ENV}, cwd=ROOT)
    try:
        # the head writes its address for `address=auto` once every process of it is up
        deadline = time.monotonic() + 120
        while not (Path(temp) / "ray_current_cluster").is_file() or not _listening(port):
            assert process.poll() is None, (Path(temp) / "start.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the Ray head did not start in 120 s"
            time.sleep(0.5)
        yield Cluster(process, f"127.0.0.1:{port}")
    finally:
        process.send_signal(signal.SIGTERM)  # --block: the head stops every process it started
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def app(sweep_dir: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return experiment_app(sweep_dir, *args, env=RAY_ENV, timeout=timeout)


def experiment_runs(uri: str, experiment: str) -> list:
    c = client(uri)
    exp = c.get_experiment_by_name(experiment)
    assert exp is not None, experiment
    return c.search_runs([exp.experiment_id], max_results=1000)


def summary_rows(sweep_dir: Path) -> dict[int, dict]:
    """Each job folder's summary.json by job number (what the sweep summary is built from)."""
    return {int(p.parent.name): json.loads(p.read_text()) for p in sweep_dir.glob("*/summary.json")}


# -- a whole sweep ---------------------------------------------------------------------------------


def test_ray_sweep_is_one_tracked_sweep_with_the_basic_launchers_numbers(ray_cluster, pg_server,
                                                                         tmp_path):
    experiment = f"ray-sweep-{uuid.uuid4().hex[:6]}"
    proc = app(tmp_path / "ray", "-m", *ray_cluster.launcher(), *SWEEP, *QUICK,
               f"tracking.uri={pg_server.url}", f"tracking.experiment={experiment}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = experiment_runs(pg_server.url, experiment)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 4, [r.info.run_name for r in runs]
    (parent,) = parents
    assert (parent.data.tags["jobs"], parent.data.tags["failed_jobs"]) == ("4", "0")
    assert [r.info.status for r in runs] == ["FINISHED"] * 5
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert sorted(r.data.tags["sweep_job"] for r in children) == ["0", "1", "2", "3"]
    assert sorted(r.info.run_name for r in children) == sorted(
        f"{init}-none" for init in ("he", "xavier", "glorot", "random"))

    # the same sweep in one process with the basic launcher, tracking off
    basic = app(tmp_path / "basic", "-m", "hydra/launcher=basic", *SWEEP, *QUICK,
                "tracking.enabled=false")
    assert basic.returncode == 0, basic.stderr[-3000:]
    expected = {row["setting"]: row for row in summary_rows(tmp_path / "basic" / "sweep").values()}
    c = client(pg_server.url)
    for run in children:
        for name in METRICS:
            assert run.data.metrics[name] == expected[run.info.run_name][name], name
        # and as the reference implementation evaluates the parameters the run uploaded
        got = Path(c.download_artifacts(run.info.run_id, "", str(tmp_path / run.info.run_id)))
        config = yaml.safe_load((got / "config.yaml").read_text())
        reference = ref.evaluate(ref.load_npz(got / "parameters.npz"), config)
        for name in METRICS:
            assert run.data.metrics[name] == pytest.approx(reference[name], abs=1e-12), name


# -- a killed worker -------------------------------------------------------------------------------


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state: its parent
        if pid == ancestor:
            return True
    return False


def _job_worker(cluster: Cluster, job: int) -> int | None:
    """The pid of the Ray worker running job ``job`` of this cluster: Ray titles a worker
    ``ray::<task name>`` while it runs a task, and the launcher names a job's task."""
    title = f"ray::dlpractice-job-{job}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").strip()
        except OSError:
            continue
        if cmdline == title and _descends_from(int(entry.name), cluster.process.pid):
            return int(entry.name)
    return None


def _running_run(uri: str, experiment: str, job: int):
    c = client(uri)
    exp = c.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = c.search_runs([exp.experiment_id], filter_string=(
        f"tags.sweep_job = '{job}' and attributes.status = 'RUNNING'"))
    return runs[0] if runs else None


def test_a_killed_ray_worker_ends_its_run_killed_and_a_rerun_trains_only_that_job(
        ray_cluster, pg_server, tmp_path):
    experiment = f"ray-fault-{uuid.uuid4().hex[:6]}"
    args = ["-m", *ray_cluster.launcher(), *FAULT_SWEEP, f"tracking.uri={pg_server.url}",
            f"tracking.experiment={experiment}"]
    env = {**os.environ, **RAY_ENV}
    env.pop("MLFLOW_TRACKING_URI", None)
    first = tmp_path / "first"
    with open(tmp_path / "first.out", "w") as stdout, open(tmp_path / "first.err", "w") as stderr:
        sweep = subprocess.Popen(
            [sys.executable, "-m", "dlpractice.experiment", *args, f"hydra.sweep.dir={first}"],
            cwd=ROOT, env=env, stdout=stdout, stderr=stderr)
    try:
        # SIGKILL job 1's worker once its MLflow run is open (mid-training)
        deadline, killed = time.monotonic() + 300, None
        while killed is None:
            assert sweep.poll() is None, "the sweep ended before job 1 could be killed"
            assert time.monotonic() < deadline, "job 1 never ran with its run open"
            run = _running_run(pg_server.url, experiment, 1)
            pid = _job_worker(ray_cluster, 1) if run is not None else None
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                killed = run
            else:
                time.sleep(0.2)
        sweep.wait(timeout=300)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    err = (tmp_path / "first.err").read_text()
    # a sweep with a failed job exits 0, as with any failed job: its summary reports it
    assert sweep.returncode == 0, err[-3000:]

    runs = {r.info.run_id: r for r in experiment_runs(pg_server.url, experiment)}
    dead = runs[killed.info.run_id]
    assert dead.info.status == "KILLED"
    reason = dead.data.tags["failure_reason"]
    assert reason == ("the Ray worker running the job died (killed by a signal such as SIGKILL, "
                      "or out of memory): WorkerCrashedError")
    rows = summary_rows(first)
    assert [rows[j]["status"] for j in range(3)] == ["finished", "failed", "finished"]
    assert (rows[1]["error"], rows[1]["run_id"]) == (reason, dead.info.run_id)
    assert [r["status"] for r in ref.read_csv(first / "sweep_summary.csv")] == [
        "finished", "failed", "finished"]
    assert "1 of 3 jobs failed" in err
    assert f"  job 1 ({rows[1]['setting']}): {reason}" in err.splitlines()
    parent = next(r for r in runs.values() if "mlflow.parentRunId" not in r.data.tags)
    assert (parent.info.status, parent.data.tags["failed_jobs"]) == ("FINISHED", "1")
    assert sorted((r.data.tags.get("sweep_job", "parent"), r.info.status)
                  for r in runs.values()) == [
        ("0", "FINISHED"), ("1", "KILLED"), ("2", "FINISHED"), ("parent", "FINISHED")]

    # the same sweep again: the finished jobs are skipped, only job 1 trains
    again = app(tmp_path / "again", *args)
    assert again.returncode == 0, again.stderr[-3000:]
    rows = summary_rows(tmp_path / "again" / "sweep")
    assert [rows[j]["status"] for j in range(3)] == [
        "skipped (already finished)", "finished", "skipped (already finished)"]
    new = [r for r in experiment_runs(pg_server.url, experiment) if r.info.run_id not in runs]
    assert len(new) == 2, [r.info.run_name for r in new]  # its parent and job 1's run
    (child,) = [r for r in new if "mlflow.parentRunId" in r.data.tags]
    assert (child.info.status, child.data.tags["sweep_job"]) == ("FINISHED", "1")
    assert child.data.tags["config_hash"] == dead.data.tags["config_hash"]
    assert child.data.metrics["iterations_run"] == LONG_ITERATIONS
    assert [r.info.status for r in experiment_runs(pg_server.url, experiment)].count("RUNNING") == 0


def test_sigterm_to_a_ray_sweep_ends_every_run_killed(ray_cluster, pg_server, tmp_path):
    experiment = f"ray-sigterm-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, **RAY_ENV}
    env.pop("MLFLOW_TRACKING_URI", None)
    with open(tmp_path / "err", "w") as stderr:
        sweep = subprocess.Popen(
            [sys.executable, "-m", "dlpractice.experiment", "-m", *ray_cluster.launcher(),
             "train.iterations=400000,400001", "data.n_samples=200", f"tracking.uri={pg_server.url}",
             f"tracking.experiment={experiment}", f"hydra.sweep.dir={tmp_path}/sweep"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 300
        while [_running_run(pg_server.url, experiment, job) for job in (0, 1)].count(None):
            assert sweep.poll() is None, (tmp_path / "err").read_text()[-3000:]
            assert time.monotonic() < deadline, "the two jobs never ran with their runs open"
            time.sleep(0.2)
        sweep.send_signal(signal.SIGTERM)
        assert sweep.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    assert (tmp_path / "err").read_text().strip().splitlines()[-1] == (
        "error: interrupted by SIGTERM; an open MLflow run is recorded as KILLED")
    runs = experiment_runs(pg_server.url, experiment)
    assert sorted((r.data.tags.get("sweep_job", "parent"), r.info.status) for r in runs) == [
        ("0", "KILLED"), ("1", "KILLED"), ("parent", "KILLED")]
