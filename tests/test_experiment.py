"""The Hydra app's sweeps against a real MLflow store: re-runs skip finished jobs, a failing job is
reported and the others go on; and the MLflow project's entry point. (What one run and one sweep
record is pinned in test_run_outputs.py.)"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests import reference as ref

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["train.iterations=300", "train.record_every=50", "data.n_samples=200"]
EVALUATION = ("train_accuracy", "dev_accuracy", "test_accuracy", "train_error", "dev_error",
              "test_error", "avoidable_bias", "variance")


def app(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    run_env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "dlpractice.experiment", *args,
         f"hydra.run.dir={tmp_path}/run", f"hydra.sweep.dir={tmp_path}/sweep"],
        cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=300,
    )


def runs(tmp_path: Path, experiment: str = "dlpractice"):
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], max_results=1000) if exp else []


def children(tmp_path: Path) -> list:
    return [r for r in runs(tmp_path) if "mlflow.parentRunId" in r.data.tags]


@pytest.mark.slow
def test_a_rerun_sweep_skips_finished_jobs_and_shows_their_results(tmp_path):
    proc = app(tmp_path, "-m", *QUICK, "init=zeros,random,he")
    assert proc.returncode == 0, proc.stderr
    first = {r.info.run_name: r for r in children(tmp_path)}
    assert sorted(first) == ["he-none", "random-none", "zeros-none"]

    again = app(tmp_path, "-m", *QUICK, "init=zeros,he")
    assert again.returncode == 0, again.stderr
    assert sorted(r.info.run_id for r in children(tmp_path)) == sorted(
        r.info.run_id for r in first.values())  # nothing trained or logged again
    parents = sorted((r for r in runs(tmp_path) if "mlflow.parentRunId" not in r.data.tags),
                     key=lambda r: r.info.start_time)
    assert len(parents) == 2 and parents[-1].data.tags["jobs"] == "2"
    rows = ref.read_csv(tmp_path / "sweep" / "sweep_summary.csv")
    assert [r["setting"] for r in rows] == ["zeros-none", "he-none"]
    for row in rows:
        done = first[row["setting"]]
        assert row["status"] == "skipped (already finished)"
        for column in ("train_accuracy", "dev_accuracy", "train_error", "dev_error",
                       "gradcheck_difference"):
            assert float(row[column]) == done.data.metrics[column], column
        assert row["diagnosis"] == done.data.tags["diagnosis"]
    # the finished jobs take part in the choice (the documented rule on their logged dev
    # metrics), tested once from the parameters its run uploaded (the folder of job 1 holds the
    # first sweep's job 1: random-none)
    ranked = [first[r["setting"]].data.metrics for r in rows]
    best = min(range(2), key=lambda j: (ranked[j]["dev_error"], ranked[j]["dev_cost"], j))
    chosen = first[rows[best]["setting"]]
    assert [r["selected"] for r in rows] == ["yes" if j == best else "" for j in range(2)]
    assert rows[1 - best]["test_accuracy"] == ""
    assert parents[-1].data.tags["selected_run_id"] == chosen.info.run_id
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    got = Path(client.download_artifacts(chosen.info.run_id, "", str(tmp_path / "chosen")))
    expected = ref.evaluate(ref.load_npz(got / "parameters.npz"),
                            yaml.safe_load((got / "config.yaml").read_text()))
    assert float(rows[best]["test_accuracy"]) == expected["test_accuracy"]
    assert parents[-1].data.metrics["selected_test_accuracy"] == expected["test_accuracy"]


@pytest.mark.slow
def test_a_failing_job_does_not_stop_the_sweep(tmp_path):
    # a huge learning rate with a large random init diverges: that job fails, the other finishes
    proc = app(tmp_path, "-m", *QUICK, "init=random", "init.scale=10", "model.activation=leaky_relu",
               "train.learning_rate=0.01,1e100")
    assert proc.returncode == 0, proc.stderr
    jobs = {r.data.params["train.learning_rate"]: r for r in children(tmp_path)}
    assert sorted(jobs) == ["0.01", "1e+100"]
    failed, finished = jobs["1e+100"], jobs["0.01"]
    assert (failed.info.status, finished.info.status) == ("FAILED", "FINISHED")
    reason = failed.data.tags["failure_reason"]
    assert re.fullmatch(r"training diverged at iteration \d+: non-finite values \(nan/inf\) in "
                        r"layer [1-3]; lower train.learning_rate or use a smaller init scale",
                        reason), reason

    rows = ref.read_csv(tmp_path / "sweep" / "sweep_summary.csv")
    assert [r["status"] for r in rows] == ["finished", "failed"]
    # a failed job is named by its overrides, as Hydra recorded them in the job's folder
    overrides = yaml.safe_load((tmp_path / "sweep" / "1" / ".hydra" / "overrides.yaml").read_text())
    assert rows[1]["setting"] == " ".join(overrides)
    assert rows[1]["status"] == "failed"
    folder = tmp_path / "sweep" / "0"
    config = yaml.safe_load((folder / "config.yaml").read_text())
    expected = ref.evaluate(ref.load_npz(folder / "parameters.npz"), config)
    assert float(rows[0]["train_accuracy"]) == pytest.approx(expected["train_accuracy"], abs=1e-12)
    parent = next(r for r in runs(tmp_path) if "mlflow.parentRunId" not in r.data.tags)
    assert (parent.data.tags["jobs"], parent.data.tags["failed_jobs"]) == ("2", "1")
    assert "1 of 2 jobs failed" in proc.stderr


@pytest.mark.slow
def test_a_sweeps_jobs_are_named_by_the_values_it_varies_and_keep_their_names_on_a_rerun(tmp_path):
    # the derived name shows init and regularizer only: a sweep over another key adds it
    proc = app(tmp_path, "-m", *QUICK, "train.learning_rate=0.1", "model.activation=tanh,sigmoid")
    assert proc.returncode == 0, proc.stderr
    jobs = children(tmp_path)
    names = {r.info.run_id: r.info.run_name for r in jobs}
    assert sorted(names.values()) == sorted(
        f"he-none model.activation={r.data.params['model.activation']}" for r in jobs)
    assert len(set(names.values())) == 2  # the fixed learning rate names no job
    first = ref.read_csv(tmp_path / "sweep" / "sweep_summary.csv")  # in job order
    by_job = {int(r.data.tags["sweep_job"]): r.info.run_name for r in jobs}
    assert [r["setting"] for r in first] == [by_job[0], by_job[1]]
    parent = next(r for r in runs(tmp_path) if "mlflow.parentRunId" not in r.data.tags)
    assert parent.data.tags["selected_setting"] == names[parent.data.tags["selected_run_id"]]
    assert f"selected: {parent.data.tags['selected_setting']} (job " in proc.stdout

    # settled from the store on another launcher, the jobs keep their names
    again = app(tmp_path, "-m", *QUICK, "train.learning_rate=0.1", "model.activation=tanh,sigmoid",
                "hydra/launcher=vectorized")
    assert again.returncode == 0, again.stderr
    rows = ref.read_csv(tmp_path / "sweep" / "sweep_summary.csv")
    assert [(r["setting"], r["status"]) for r in rows] == [
        (r["setting"], "skipped (already finished)") for r in first]


@pytest.mark.slow
def test_a_sweep_in_a_relative_folder_names_it_absolute(tmp_path):
    # Hydra's sweep folder is relative to where it started: the printed folder and the parent
    # run's sweep_dir tag name it whole, so they work from any other folder
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    proc = subprocess.run([sys.executable, "-m", "dlpractice.experiment", "-m", *QUICK, "init=he,xavier",
                           "hydra.sweep.dir=sweeps/one", "+tracking.tags.team=vision"],
                          cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "sweeps" / "one"
    assert proc.stdout.splitlines()[-1] == f"folder: {folder}"
    (parent,) = [r for r in runs(tmp_path) if "mlflow.parentRunId" not in r.data.tags]
    assert parent.data.tags["sweep_dir"] == str(folder)
    # the user's tags name the parent run as well as each job's
    assert [r.data.tags["team"] for r in runs(tmp_path)] == ["vision"] * 3
    assert len(ref.read_csv(folder / "sweep_summary.csv")) == 2


@pytest.mark.slow
def test_mlflow_project_main_entry_point(tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "mlflow"), "run", str(ROOT), "-e", "main",
         "-P", f"overrides=init=xavier {' '.join(QUICK)} hydra.run.dir={tmp_path}/run",
         "--env-manager", "local"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (launcher,) = runs(tmp_path, "Default")  # MLflow's own run of the project
    (ours,) = runs(tmp_path)
    assert ours.info.run_name == "xavier-none" and ours.info.status == "FINISHED"
    assert ours.data.tags["mlflow_project_run"] == launcher.info.run_id
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert config["init"]["name"] == "xavier" and config["train"]["iterations"] == 300
    assert ours.data.params == {k: str(v) for k, v in ref.flatten(config).items()}
    expected = ref.evaluate(ref.load_npz(tmp_path / "run" / "parameters.npz"), config)
    for name in EVALUATION:
        assert ours.data.metrics[name] == pytest.approx(expected[name], abs=1e-12), name
