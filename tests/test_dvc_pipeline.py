"""The DVC pipelines end to end, with the real tools, in a temporary copy of the repository.

The copy (working tree without .git, .venv and any outs) becomes its own git repository, so DVC can
run experiments; its MLflow store is a temporary SQLite file (``MLFLOW_TRACKING_URI``) and its code
is imported from the copy (``PYTHONPATH``). The tests share one copy and run in file order: each
one leaves the workspace on the baseline (params.yaml with ``train.iterations=300``, reproduced).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from benchmarks.scratch import BIN, copy_project, environment

pytestmark = [
    pytest.mark.slow,
    # mlflow's SQLAlchemy store, read from this process
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning"),
]

ITERATIONS = 300
BASE_OVERRIDES = (f"train.iterations={ITERATIONS}",)

KEEP_PROB_ERROR = ("regularizer.keep_prob=1.5 is not allowed: 1 with regularizer=none "
                   "(choose regularizer=dropout)")
TRAIN_OUTS = ("models/parameters.npz", "models/init_parameters.npz", "models/history.csv",
              "models/grad_norms.csv", "models/train_metrics.json")


class Project:
    def __init__(self, root: Path, store: Path):
        self.root = root
        self.uri = f"sqlite:///{store}"
        env = environment(root, self.uri, who="test")
        self.env = env

    def run(self, *cmd: str | Path, check: bool = True, timeout: float = 600,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(c) for c in cmd], cwd=cwd or self.root, env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, cmd))} exited {proc.returncode}\n"
                                 f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n"
                                 f"{proc.stderr[-4000:]}")
        return proc

    def dvc(self, *args: str, **kw) -> subprocess.CompletedProcess[str]:
        return self.run(BIN / "dvc", *args, **kw)

    def python(self, *args: str, **kw) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, *args, **kw)

    def git(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("git", *args)

    def params(self, *overrides: str, **kw) -> subprocess.CompletedProcess[str]:
        return self.python("-m", "dlpractice.params", *BASE_OVERRIDES, *overrides, **kw)

    def read_params(self) -> dict:
        return yaml.safe_load((self.root / "params.yaml").read_text())

    def baseline(self) -> None:
        """params.yaml of the baseline, reproduced."""
        self.params()
        self.dvc("repro")

    def json(self, rel: str) -> dict:
        return json.loads((self.root / rel).read_text())

    # MLflow, read in this process
    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    def runs(self, experiment: str = "dlpractice") -> list:
        client = self.client()
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            return []
        return client.search_runs([exp.experiment_id], max_results=1000)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    base = tmp_path_factory.mktemp("dvc")
    root = base / "repo"
    copy_project(root)
    p = Project(root, base / "store" / "mlflow.db")
    p.git("init", "-q")
    p.git("config", "user.name", "test")
    p.git("config", "user.email", "test@example.com")
    p.params()
    p.git("add", "-A")
    p.git("commit", "-q", "-m", "baseline")
    yield p
    p.dvc("queue", "stop", check=False, timeout=120)


@pytest.fixture(scope="module")
def first_repro(project: Project) -> subprocess.CompletedProcess[str]:
    proc = project.dvc("repro")
    project.git("add", "-A")
    project.git("commit", "-q", "-m", "reproduced")
    return proc


def test_repro_writes_outs_metrics_and_one_mlflow_run(project, first_repro):
    for stage in ("split", "normalize", "train", "gradcheck", "evaluate"):
        assert f"Running stage '{stage}'" in first_repro.stdout
    root = project.root
    for rel in ("data/split/train.npz", "data/split/meta.json", "data/normalized/test.npz",
                "data/normalized/stats.json", *TRAIN_OUTS, "reports/gradcheck.json",
                "reports/metrics.json", "reports/diagnosis.json",
                "reports/plots/cost_curve.png", "reports/plots/decision_boundary.png"):
        assert (root / rel).is_file(), rel
    assert not (root / ".stage-tmp").exists()

    shown = json.loads(project.dvc("metrics", "show", "--json").stdout)
    files = next(iter(shown.values()))["data"]
    metrics = files["reports/metrics.json"]["data"]
    for key in ("train_accuracy", "dev_accuracy", "test_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0
        assert metrics[key.replace("accuracy", "error")] == pytest.approx(1 - metrics[key])
    assert metrics["diagnosis"] in ("high_bias", "high_variance", "high_bias_high_variance",
                                    "good_fit")
    gradcheck = files["reports/gradcheck.json"]["data"]
    assert gradcheck["passed"] is True
    assert gradcheck["gradcheck_difference"] < gradcheck["threshold"]
    assert metrics["gradcheck_difference"] == gradcheck["gradcheck_difference"]
    assert files["models/train_metrics.json"]["data"]["iterations_run"] == ITERATIONS
    with (root / "models/history.csv").open() as f:
        history = list(csv.DictReader(f))
    assert list(history[0]) == ["iteration", "cost", "dev_cost"]
    assert len(history) == ITERATIONS // project.read_params()["train"]["record_every"]

    plots = json.loads(project.dvc("plots", "show", "--json").stdout)["data"]
    assert {"cost", "gradient norms", "reports/plots/cost_curve.png"} <= set(plots)

    runs = project.runs()
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    for key in ("train_accuracy", "dev_accuracy", "test_accuracy", "gradcheck_difference",
                "cost", "final_cost"):
        assert key in run.data.metrics, key
    assert run.data.metrics["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert run.data.tags["runner"] == "dvc"
    assert run.data.tags["dvc_stage"] == "evaluate"
    assert run.data.tags["diagnosis"] == metrics["diagnosis"]
    assert "dvc_experiment" not in run.data.tags  # plain `dvc repro`
    assert run.data.params["train.iterations"] == str(ITERATIONS)


def test_second_repro_changes_nothing(project, first_repro):
    started = time.monotonic()
    proc = project.dvc("repro")
    assert time.monotonic() - started < 30
    assert "Data and pipelines are up to date." in proc.stdout
    assert "Running stage" not in proc.stdout
    assert len(project.runs()) == 1
    status = project.dvc("status", "dvc.yaml").stdout.strip()
    assert status.endswith("Data and pipelines are up to date.")


def test_train_param_change_reruns_train_not_split(project, first_repro):
    baseline_metrics = project.json("reports/metrics.json")
    project.params("train.learning_rate=0.02")
    proc = project.dvc("repro")
    out = proc.stdout
    assert "Stage 'split' didn't change, skipping" in out
    assert "Stage 'normalize' didn't change, skipping" in out
    for stage in ("train", "gradcheck", "evaluate"):
        assert f"Running stage '{stage}'" in out
    assert len(project.runs()) == 2
    assert project.json("reports/metrics.json") != baseline_metrics
    # and back: train runs again (stages with cache: false outs are not in DVC's run cache) and
    # writes the same bytes, so the gradient check is restored from the run cache
    project.params()
    back = project.dvc("repro").stdout
    assert "Stage 'split' didn't change, skipping" in back
    assert "Stage 'gradcheck' is cached - skipping run" in back
    assert project.json("reports/metrics.json") == baseline_metrics
    up_to_date = project.dvc("status", "dvc.yaml").stdout.strip()
    assert up_to_date.endswith("Data and pipelines are up to date.")


def test_stage_metrics_equal_the_experiment_app(project, first_repro, tmp_path):
    project.baseline()
    out = tmp_path / "app"
    project.python("-m", "dlpractice.experiment", *BASE_OVERRIDES, "tracking.enabled=false",
                   f"hydra.run.dir={out}")
    app = json.loads((out / "summary.json").read_text())
    stages = project.json("reports/metrics.json")
    for key in ("train_accuracy", "dev_accuracy", "test_accuracy", "avoidable_bias", "variance"):
        assert app[key] == pytest.approx(stages[key], rel=1e-12, abs=1e-15), key
    assert app["diagnosis"] == stages["diagnosis"]
    assert app["gradcheck_difference"] == pytest.approx(stages["gradcheck_difference"], rel=1e-9)
    assert app["final_cost"] == pytest.approx(project.json("models/train_metrics.json")
                                              ["final_cost"], rel=1e-12)


def test_gradcheck_failure_fails_repro(project, first_repro):
    project.baseline()
    n_runs = len(project.runs())
    project.params("gradcheck.threshold=1e-30")
    proc = project.dvc("repro", check=False)
    assert proc.returncode != 0
    assert "Stage 'train' didn't change, skipping" in proc.stdout
    assert "gradient check FAILED" in proc.stdout  # the per-array report
    assert "error: gradcheck: gradient check failed: difference" in proc.stderr
    assert not (project.root / "reports/gradcheck.json").exists()
    assert "Running stage 'evaluate'" not in proc.stdout
    assert len(project.runs()) == n_runs
    project.baseline()


def test_bad_config_value_one_line_no_outs_no_running_run(project, first_repro, tmp_path):
    # the params entry point refuses it and leaves params.yaml alone
    before = (project.root / "params.yaml").read_text()
    proc = project.params("regularizer.keep_prob=1.5", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "keep_prob" in proc.stderr
    assert (project.root / "params.yaml").read_text() == before

    # a stage given it: one line, exit 1, nothing written
    bad = project.read_params()
    bad["regularizer"]["keep_prob"] = 1.5
    scratch = tmp_path / "stage"
    scratch.mkdir()
    (scratch / "params.yaml").write_text(yaml.safe_dump(bad))
    proc = project.python("-m", "dlpractice.stages.split", cwd=scratch, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"error: split: {KEEP_PROB_ERROR}"]
    assert sorted(p.name for p in scratch.iterdir()) == ["params.yaml"]

    # the pipeline given it: fails at the first stage that reads the section (train)
    (project.root / "params.yaml").write_text(yaml.safe_dump(bad, sort_keys=False))
    proc = project.dvc("repro", check=False)
    assert proc.returncode != 0
    assert "error: train: regularizer.keep_prob=1.5 is not allowed" in proc.stderr
    for rel in TRAIN_OUTS:
        assert not (project.root / rel).exists(), rel
    assert not (project.root / ".stage-tmp").exists()

    # the Hydra app given it: one line, exit 1
    n_runs = len(project.runs())
    proc = project.python("-m", "dlpractice.experiment", "regularizer.keep_prob=1.5",
                          f"hydra.run.dir={tmp_path / 'app'}", check=False)
    assert proc.returncode == 1
    assert [ln for ln in proc.stderr.splitlines() if ln.strip()] == [f"error: {KEEP_PROB_ERROR}"]
    runs = project.runs()
    assert len(runs) == n_runs
    assert all(r.info.status != "RUNNING" for r in runs)
    project.baseline()


def _exp_names(output: str) -> list[str]:
    for line in output.splitlines():
        if line.startswith("Ran experiment(s):"):
            return [n.strip() for n in line.split(":", 1)[1].split(",")]
    return []


def test_exp_run_set_params_composes_params_and_tags_the_run(project, first_repro):
    proc = project.dvc("exp", "run", "-S", "regularizer=l2", "-S", "regularizer.lambd=0.7",
                       "-S", f"train.iterations={ITERATIONS}")
    names = _exp_names(proc.stdout + proc.stderr)
    assert len(names) == 1
    params = project.read_params()
    assert params["regularizer"]["name"] == "l2"
    assert params["regularizer"]["lambd"] == 0.7
    assert params["train"]["iterations"] == ITERATIONS

    shown = json.loads(project.dvc("exp", "show", "--json").stdout)
    exps = [e for row in shown for e in (row.get("experiments") or [])]
    found = [e for e in exps if names[0] in json.dumps(e)]
    assert found, names

    tagged = [r for r in project.runs() if r.data.tags.get("dvc_experiment") == names[0]]
    assert len(tagged) == 1
    run = tagged[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["regularizer.name"] == "l2"
    assert run.data.tags.get("dvc_baseline_rev")
    project.git("checkout", "-q", "--", ".")
    project.baseline()


def test_queued_experiments_land_in_the_workspace_store(project, first_repro):
    """A grid: `dvc exp run --queue` + `dvc queue start -j 2` (executors in temporary copies, run by a Celery
    worker). The sweep avoids the baseline's own init (he): an experiment equal to the baseline
    runs no stage at all, so it would log no MLflow run."""
    project.baseline()
    project.git("add", "-A")
    project.git("commit", "-q", "--allow-empty", "-m", "baseline before the queue")
    before = {r.info.run_id for r in project.runs()}
    project.dvc("exp", "run", "--queue", "-S", "init=zeros,xavier",
                "-S", "train.learning_rate=0.01,0.05", "-S", f"train.iterations={ITERATIONS}")
    try:
        project.dvc("queue", "start", "-j", "2")
        deadline = time.monotonic() + 300
        while True:
            status = project.dvc("queue", "status").stdout
            tasks = [ln for ln in status.splitlines()
                     if any(s in ln for s in ("Queued", "Running", "Success", "Failed"))]
            if tasks and not any(s in ln for ln in tasks for s in ("Queued", "Running")):
                break
            assert time.monotonic() < deadline, status
            time.sleep(3)
    finally:
        project.dvc("queue", "stop", check=False, timeout=120)
    assert sum("Success" in ln for ln in tasks) == 4, status
    new = [r for r in project.runs() if r.info.run_id not in before]
    assert sorted((r.data.params["init.name"], r.data.params["train.learning_rate"]) for r in new) == [
        ("xavier", "0.01"), ("xavier", "0.05"), ("zeros", "0.01"), ("zeros", "0.05")]
    names = project.dvc("exp", "list", "--name-only").stdout.split()
    shown = project.dvc("exp", "show", "--json").stdout
    assert len(names) >= 4 and all(name in shown for name in names)
    assert {r.data.tags["dvc_experiment"] for r in new} <= set(names)
    assert all(r.info.status == "FINISHED" and r.data.tags.get("dvc_experiment") for r in new)
    assert all(r.data.tags.get("dvc_root") == str(project.root) for r in new)


def test_initialization_study_pipeline(project, first_repro):
    folder = project.root / "pipelines" / "initialization"
    params_file = folder / "params.yaml"
    study = yaml.safe_load(params_file.read_text())
    for setting in study["settings"].values():
        setting["overrides"] += f" train.iterations={ITERATIONS}"
    params_file.write_text(yaml.safe_dump(study, sort_keys=False))
    project.dvc("repro", "pipelines/initialization/dvc.yaml")

    results = folder / "results"
    with (results / "table.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["setting"] for r in rows] == ["zeros", "random", "he"]
    for column in ("train_accuracy", "dev_accuracy", "test_accuracy", "diagnosis", "comment",
                   "course_train_test"):
        assert column in rows[0], column
    for r in rows:
        assert r["diagnosis"] in ("high_bias", "high_variance", "high_bias_high_variance",
                                  "good_fit")
        assert 0 <= float(r["train_accuracy"]) <= 1
        assert r["comment"]
    assert rows[0]["train_accuracy"] == "0.5"  # zeros never breaks symmetry
    table = (results / "table.md").read_text()
    assert "| setting |" in table and "| he |" in table
    assert (results / "boundaries.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    runs = project.runs("initialization")
    assert sorted(r.info.run_name for r in runs) == ["he", "random", "zeros"]
    assert all(r.info.status == "FINISHED" for r in runs)
    again = project.dvc("repro", "pipelines/initialization/dvc.yaml").stdout
    assert "Running stage" not in again
