"""`make run` as users run it: every pipeline reproduced once, in two `dvc repro` lanes side by side
that share one MLflow store and DVC's repository lock, with the tables a lone pipeline gives."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from benchmarks.bench_repro import repro_calls
from benchmarks.scratch import BIN, copy_project, environment
from tests import reference as ref

pytestmark = [
    pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed"),
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning"),
]

ROOT = Path(__file__).resolve().parents[1]
VENV = BIN.parent
# two short studies, one per lane; their committed tables are make run's
SHORT = ("numerical_gradient", "recipe")


def make(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    """`make` with this interpreter's environment as the Makefile's VENV (taken as installed)."""
    return subprocess.run(["make", "--no-print-directory", "-o", str(VENV / ".installed"), *args,
                           f"VENV={VENV}"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900, check=False)


def test_make_run_reproduces_every_pipeline_once_in_two_lanes():
    proc = make("-n", "run")
    assert proc.returncode == 0, proc.stderr
    calls = repro_calls(proc.stdout)
    assert [options for options, _ in calls] == [["--wait-for-lock"]] * 2, proc.stdout
    lanes = [targets for _, targets in calls]
    assert all(lanes), proc.stdout
    targets = [t for lane in lanes for t in lane]
    on_disk = sorted(p.relative_to(ROOT).as_posix() for p in
                     [ROOT / "dvc.yaml", *ROOT.glob("pipelines/*/dvc.yaml")])
    assert sorted(targets) == on_disk  # each pipeline once, none left out
    assert proc.stdout.splitlines()[-1].endswith("python -m dlpractice.studies show")


@pytest.fixture(scope="module")
def side_by_side(tmp_path_factory: pytest.TempPathFactory):
    """The two short studies, one per lane, run by the Makefile's lanes at once in a fresh copy."""
    base = tmp_path_factory.mktemp("lanes")
    root = copy_project(base / "repo")
    uri = f"sqlite:///{base / 'mlflow.db'}"
    env = environment(root, uri, who="test")
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "t"]):
        subprocess.run(cmd, cwd=root, env=env, check=True, capture_output=True)
    lanes = [f"LANE_{i}=pipelines/{study}/dvc.yaml" for i, study in enumerate(SHORT, 1)]
    proc = make("-j", "2", "run-lane-1", "run-lane-2", *lanes, cwd=root, env=env)
    return root, uri, env, proc


def test_side_by_side_lanes_give_the_committed_tables(side_by_side):
    root, _, _, proc = side_by_side
    assert proc.returncode == 0, proc.stderr[-3000:]
    for study in SHORT:
        ref.assert_same_table(root / "pipelines" / study / "results" / "table.csv",
                              ROOT / "pipelines" / study / "results" / "table.csv")


def test_side_by_side_lanes_ran_at_once_and_closed_their_runs(side_by_side):
    from mlflow.tracking import MlflowClient

    root, uri, env, proc = side_by_side
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(tracking_uri=uri)
    spans = {}
    for study in SHORT:
        exp = client.get_experiment_by_name(study)
        runs = client.search_runs([exp.experiment_id], max_results=100)
        assert runs and {r.info.status for r in runs} == {"FINISHED"}, study
        spans[study] = (min(r.info.start_time for r in runs), max(r.info.end_time for r in runs))
    (a0, a1), (b0, b1) = spans.values()
    assert a0 < b1 and b0 < a1  # the two studies' runs overlap in time: the lanes ran at once
    again = subprocess.run([str(BIN / "dvc"), "status", *(f"pipelines/{s}/dvc.yaml" for s in SHORT)],
                           cwd=root, env=env, capture_output=True, text=True, check=True)
    assert "up to date" in again.stdout  # each lane recorded its lock file


def test_a_study_in_a_lane_runs_its_jobs_in_one_process(side_by_side):
    """The lanes keep both cores busy, so a study's sweep starts no worker: a worker's own MLflow
    set-up cost more than its share of a study's few seconds of training."""
    from mlflow.tracking import MlflowClient

    root, uri, _, proc = side_by_side
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("numerical_gradient")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    jobs = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(jobs) == 2  # central and forward: enough for a worker on 2 CPUs
    assert len({r.data.tags["dlpractice.owner.pid"] for r in runs}) == 1
