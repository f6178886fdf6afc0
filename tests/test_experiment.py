"""The in-process Hydra app against a real MLflow store: one run, a multirun sweep, failures, skips."""

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["train.iterations=300", "train.record_every=50", "data.n_samples=200"]


def app(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    run_env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "dlpractice.experiment", *args,
         f"hydra.run.dir={tmp_path}/run", f"hydra.sweep.dir={tmp_path}/sweep"],
        cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=300,
    )


def runs(tmp_path: Path, experiment: str = "dlpractice"):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    return mlflow.search_runs(experiment_names=[experiment], output_format="list")


@pytest.mark.slow
def test_single_run_records_everything(tmp_path):
    proc = app(tmp_path, *QUICK, "init=he", "regularizer=l2", "regularizer.lambd=0.1")
    assert proc.returncode == 0, proc.stderr
    (run,) = runs(tmp_path)
    assert run.info.status == "FINISHED" and run.info.run_name == "he-l2_0.1"
    m = run.data.metrics
    for name in ("train_accuracy", "dev_accuracy", "test_accuracy", "train_error", "dev_error",
                 "test_error", "avoidable_bias", "variance", "gradcheck_difference", "train_seconds"):
        assert name in m, name
    assert m["train_error"] == pytest.approx(1 - m["train_accuracy"])
    assert run.data.params["regularizer.lambd"] == "0.1"
    assert run.data.tags["diagnosis"] in {"high_bias", "high_variance", "high_bias_high_variance",
                                          "good_fit"}
    history = MlflowClient().get_metric_history(run.info.run_id, "cost")
    assert [p.step for p in history] == list(range(0, 300, 50))
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert summary["train_accuracy"] == pytest.approx(m["train_accuracy"])


@pytest.mark.slow
def test_multirun_sweep_has_parent_summary_and_skips_finished_jobs(tmp_path):
    proc = app(tmp_path, "-m", *QUICK, "init=zeros,random,he")
    assert proc.returncode == 0, proc.stderr
    all_runs = runs(tmp_path)
    children = [r for r in all_runs if "mlflow.parentRunId" in r.data.tags]
    parents = [r for r in all_runs if "mlflow.parentRunId" not in r.data.tags]
    assert sorted(r.info.run_name for r in children) == ["he-none", "random-none", "zeros-none"]
    assert len(parents) == 1 and all(r.info.status == "FINISHED" for r in all_runs)
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    artifacts = {a.path for a in MlflowClient().list_artifacts(parents[0].info.run_id)}
    assert {"sweep_summary.md", "sweep_summary.csv", "bias_variance.png"} <= artifacts
    table = (tmp_path / "sweep" / "sweep_summary.md").read_text()
    assert "zeros-none" in table and "he-none" in table

    again = app(tmp_path, "-m", *QUICK, "init=zeros,he")
    assert again.returncode == 0, again.stderr
    assert len([r for r in runs(tmp_path) if "mlflow.parentRunId" in r.data.tags]) == 3
    assert "skipped" in (tmp_path / "sweep" / "sweep_summary.md").read_text()


@pytest.mark.slow
def test_a_failing_job_does_not_stop_the_sweep(tmp_path):
    # learning rate 1e6 with a large random init diverges: that job fails, the others finish
    proc = app(tmp_path, "-m", *QUICK, "init=random", "init.scale=10", "model.activation=leaky_relu",
               "train.learning_rate=0.01,1e100")
    assert proc.returncode == 0, proc.stderr
    statuses = sorted(r.info.status for r in runs(tmp_path) if "mlflow.parentRunId" in r.data.tags)
    assert statuses == ["FAILED", "FINISHED"]
    failed = next(r for r in runs(tmp_path) if r.info.status == "FAILED")
    assert "iteration" in failed.data.tags["failure_reason"]
    assert "failed" in (tmp_path / "sweep" / "sweep_summary.md").read_text()


@pytest.mark.parametrize("args,needle", [
    (["init=foo"], "init='foo' is not a config option"),
    (["regularizer=dropout", "regularizer.keep_prob=1.5"], "regularizer.keep_prob=1.5"),
    (["data=file", "data.path=/no/such.mat"], "no such file"),
])
def test_bad_config_fails_with_one_line_and_no_run(tmp_path, args, needle):
    proc = app(tmp_path, *args)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "mlflow.db").exists() or runs(tmp_path) == []


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
    (ours,) = runs(tmp_path)
    assert ours.info.run_name == "xavier-none" and ours.info.status == "FINISHED"
    assert ours.data.params["train.iterations"] == "300"
    assert "mlflow_project_run" in ours.data.tags
