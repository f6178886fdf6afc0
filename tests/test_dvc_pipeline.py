"""The DVC pipelines end to end, with the real tools, in a temporary copy of the repository.

The copy (working tree without .git, .venv and any outs) becomes its own git repository, so DVC can
run experiments; its MLflow store is a temporary SQLite file (``MLFLOW_TRACKING_URI``) and its code
is imported from the copy (``PYTHONPATH``). The tests share one copy and run in file order: each
one leaves the workspace on the baseline (params.yaml with ``train.iterations=300``, reproduced).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from benchmarks.scratch import BIN, copy_project, environment
from tests import reference as ref

pytestmark = [
    pytest.mark.slow,
    # mlflow's SQLAlchemy store, read from this process
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning"),
]

ITERATIONS = 300
BASE_OVERRIDES = (f"train.iterations={ITERATIONS}",)

KEEP_PROB_ERROR = ("regularizer.keep_prob=1.5 is not allowed: must be 1 with regularizer=none "
                   "(choose regularizer=dropout)")
SPLITS = ("train", "dev", "test")
EVALUATION = ("train_accuracy", "dev_accuracy", "test_accuracy", "train_error", "dev_error",
              "test_error", "avoidable_bias", "variance")
TRAIN_OUTS = ("models/parameters.npz", "models/init_parameters.npz", "models/history.csv",
              "models/grad_norms.csv", "models/train_metrics.json")
# `dvc exp show`'s metric columns, in order: what a user compares, then training's
COMPARED = ("train_accuracy", "dev_accuracy", "test_accuracy", "train_error", "dev_error",
            "test_error", "avoidable_bias", "variance", "diagnosis", "gradcheck_difference",
            "gradcheck_passed")
TRAINING = ("final_cost", "iterations_run", "train_seconds", "stopped_early")
METRIC_FILES = ["reports/metrics.json", "models/train_metrics.json"]
# small outs (cache: false) are in git; the others in the DVC cache, each folder's .gitignore naming them
IN_GIT = {"dvc.lock", "data/.gitignore", "models/.gitignore", "reports/.gitignore",
          "models/history.csv", "models/grad_norms.csv", "models/train_metrics.json",
          "reports/gradcheck.json", "reports/metrics.json", "reports/diagnosis.json",
          "reports/params_check.json"}
IN_CACHE = ("data/split", "data/normalized", "models/parameters.npz", "models/init_parameters.npz",
            "models/train_result.json", "reports/plots")
# the columns of `dvc exp show --csv` before the metrics
EXP_SHOW_HEADERS = {"Experiment", "rev", "typ", "Created", "parent", "State", "Executor"}


def _outs(root: Path) -> dict[str, str]:
    """sha256 of every file under the pipeline's out folders, by path."""
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
            for folder in ("data", "models", "reports") for f in sorted((root / folder).rglob("*"))
            if f.is_file()}


class Project:
    def __init__(self, root: Path, store: Path):
        self.root = root
        self.uri = f"sqlite:///{store}"
        self.env = environment(root, self.uri, who="test")
        self.exp_run: tuple[str, object] | None = None  # (name, MLflow run) of `dvc exp run -S`

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

    def start_queue(self, jobs: int) -> None:
        """``dvc queue start -j <jobs>``. Its workers are daemons forked from it that keep its
        output open until they stop (and DVC's second temporary worker can stay idle for good),
        so its output goes to a file rather than to pipes this call would wait on."""
        with open(self.root.parent / "queue-start.log", "w") as log:
            subprocess.run([str(BIN / "dvc"), "queue", "start", "-j", str(jobs)], cwd=self.root,
                           env=self.env, stdout=log, stderr=subprocess.STDOUT, timeout=120,
                           check=True)

    def stop_queue(self) -> None:
        """``dvc queue stop``, then SIGTERM to any of this project's queue workers left running."""
        self.dvc("queue", "stop", check=False, timeout=120)
        for proc in Path("/proc").iterdir():
            try:
                command = (proc / "cmdline").read_bytes().split(b"\0")
                here = Path(os.readlink(proc / "cwd")).is_relative_to(self.root)
            except OSError:  # not a process, or gone
                continue
            if here and b"queue-worker" in command:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(proc.name), signal.SIGTERM)

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


def test_repro_runs_every_stage_and_logs_one_run(project, first_repro):
    for stage in ("split", "normalize", "train", "gradcheck", "evaluate"):
        assert f"Running stage '{stage}'" in first_repro.stdout
    assert not (project.root / ".stage-tmp").exists()
    (run,) = project.runs()
    assert run.info.status == "FINISHED"
    assert (run.data.tags["runner"], run.data.tags["dvc_stage"]) == ("dvc", "evaluate")
    assert "dvc_experiment" not in run.data.tags  # plain `dvc repro`
    # the params are params.yaml, flattened, every key
    assert run.data.params == {k: str(v) for k, v in ref.flatten(project.read_params()).items()}


def test_split_and_normalize_outputs_are_the_data(project, first_repro):
    root, params = project.root, project.read_params()
    data, fingerprint = ref.dataset(params)
    meta = project.json("data/split/meta.json")
    assert meta["fingerprint"] == fingerprint
    assert meta["sizes"] == {p: data[f"Y_{p}"].shape[1] for p in SPLITS}
    assert meta["n_features"] == data["X_train"].shape[0]
    mean, std = ref.normalizer(data["X_train"])
    stats = project.json("data/normalized/stats.json")
    assert stats["normalized"] is True
    np.testing.assert_allclose(np.reshape(stats["mean"], (-1, 1)), mean, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(np.reshape(stats["std"], (-1, 1)), std, rtol=1e-14)
    for part in SPLITS:
        raw = ref.load_npz(root / f"data/split/{part}.npz")
        np.testing.assert_array_equal(raw["X"], data[f"X_{part}"])
        np.testing.assert_array_equal(raw["Y"], data[f"Y_{part}"])
        normalized = ref.load_npz(root / f"data/normalized/{part}.npz")
        np.testing.assert_allclose(normalized["X"], (data[f"X_{part}"] - mean) / std,
                                   rtol=1e-13, atol=1e-14)
        np.testing.assert_array_equal(normalized["Y"], data[f"Y_{part}"])


def _normalized(project: Project) -> dict[str, np.ndarray]:
    out = {}
    for part in SPLITS:
        arrays = ref.load_npz(project.root / f"data/normalized/{part}.npz")
        out[f"X_{part}"], out[f"Y_{part}"] = arrays["X"], arrays["Y"]
    return out


def test_train_and_evaluate_outputs_equal_recomputed_values(project, first_repro):
    root, params = project.root, project.read_params()
    data = _normalized(project)
    init = ref.load_npz(root / "models/init_parameters.npz")
    trained = ref.load_npz(root / "models/parameters.npz")
    history = ref.read_csv(root / "models/history.csv")
    assert list(history[0]) == ["iteration", "cost", "dev_cost"]
    every = params["train"]["record_every"]
    assert [int(r["iteration"]) for r in history] == list(range(0, ITERATIONS, every))
    # iteration 0 records the cost of the initial parameters, before the first step
    assert float(history[0]["cost"]) == pytest.approx(
        ref.cost(init, data["X_train"], data["Y_train"]), rel=1e-12)
    assert float(history[0]["dev_cost"]) == pytest.approx(
        ref.cost(init, data["X_dev"], data["Y_dev"]), rel=1e-12)
    train_metrics = project.json("models/train_metrics.json")
    assert train_metrics["final_cost"] == pytest.approx(
        ref.cost(trained, data["X_train"], data["Y_train"]), rel=1e-12)
    assert train_metrics["iterations_run"] == ITERATIONS
    assert train_metrics["stopped_early"] is False

    expected = ref.evaluate(trained, params)
    metrics = project.json("reports/metrics.json")
    for name in EVALUATION:
        assert metrics[name] == pytest.approx(expected[name], abs=1e-12), name
    assert metrics["diagnosis"] == expected["diagnosis"]
    gradcheck = project.json("reports/gradcheck.json")
    assert metrics["gradcheck_difference"] == gradcheck["gradcheck_difference"] == max(
        gradcheck["at_init"]["difference"], gradcheck["at_trained"]["difference"])
    assert gradcheck["threshold"] == params["gradcheck"]["threshold"]
    assert metrics["gradcheck_passed"] is gradcheck["passed"] is True
    assert gradcheck["gradcheck_difference"] < gradcheck["threshold"]
    diagnosis = project.json("reports/diagnosis.json")
    assert diagnosis["label"] == expected["diagnosis"]
    assert (diagnosis["train_error"], diagnosis["dev_error"]) == pytest.approx(
        (expected["train_error"], expected["dev_error"]), abs=1e-12)
    assert (diagnosis["avoidable_bias"], diagnosis["variance"]) == pytest.approx(
        (expected["avoidable_bias"], expected["variance"]), abs=1e-12)
    assert diagnosis["recommendation"] == "; ".join(diagnosis["recommendations"])


def _without_nulls(value):
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def test_dvc_metrics_and_plots_show_the_files(project, first_repro):
    root = project.root
    shown = json.loads(project.dvc("metrics", "show", "--json").stdout)
    files = next(iter(shown.values()))["data"]
    assert list(files) == METRIC_FILES  # reports/gradcheck.json (per-array detail) is no metric
    for name, content in files.items():
        assert "error" not in content, (name, content)
        # DVC leaves out null values (e.g. best_iteration without early stopping)
        assert content["data"] == _without_nulls(project.json(name)), name

    plots = json.loads(project.dvc("plots", "show", "--json").stdout)["data"]
    assert {"cost", "gradient norms", "reports/plots/cost_curve.png",
            "reports/plots/decision_boundary.png"} <= set(plots)
    history = ref.read_csv(root / "models/history.csv")
    values = plots["cost"][0]["content"]["data"]["values"]
    for field in ("cost", "dev_cost"):
        points = [(int(v["iteration"]), float(v["dvc_inferred_y_value"]))
                  for v in values if v["field"] == field]
        assert points == [(int(r["iteration"]), float(r[field])) for r in history], field
    norms = plots["gradient norms"][0]["content"]["data"]["values"]
    assert [(int(v["iteration"]), v["layer"], float(v["grad_norm"])) for v in norms] == [
        (int(r["iteration"]), r["layer"], float(r["grad_norm"]))
        for r in ref.read_csv(root / "models/grad_norms.csv")]
    assert len(norms) == 3 * len(history)


def _logged(run) -> dict[str, dict]:
    """The metrics files' values as the experiment's MLflow run logged them (by file)."""
    m, tags = run.data.metrics, run.data.tags
    return {
        "reports/metrics.json": {**{k: m[k] for k in EVALUATION}, "diagnosis": tags["diagnosis"],
                                 "gradcheck_difference": m["gradcheck_difference"],
                                 "gradcheck_passed": tags["gradcheck"] == "passed"},
        "models/train_metrics.json": {k: m[k] for k in ("final_cost", "iterations_run",
                                                        "train_seconds", "best_iteration",
                                                        "best_dev_cost") if k in m},
    }


def _exp_show(project: Project) -> list[dict]:
    return json.loads(project.dvc("exp", "show", "--json").stdout)


def _experiments(shown: list[dict]) -> dict[str, dict]:
    """The experiments of ``dvc exp show --json``, by name."""
    return {r["name"]: r for row in shown for e in (row.get("experiments") or [])
            for r in e["revs"]}


def _assert_shows_the_run(rev: dict, run) -> None:
    """A row of ``dvc exp show --json`` holds the values its MLflow run logged (no '!')."""
    files = rev["data"]["metrics"]
    assert list(files) == METRIC_FILES
    for name, values in _logged(run).items():
        assert "error" not in files[name], (name, files[name])
        assert {k: files[name]["data"][k] for k in values} == values, name


def test_exp_show_leads_with_what_a_user_compares(project, first_repro):
    """The table's metric columns: what a user compares, then training's; the commit's row shows
    the values its MLflow run logged (git holds its metrics files), as does the workspace's."""
    table = list(csv.reader(io.StringIO(project.dvc("exp", "show", "--csv").stdout)))
    header = table[0]
    first = next(i for i, name in enumerate(header) if name not in EXP_SHOW_HEADERS)
    metrics = [*COMPARED, *TRAINING]
    assert header[first:first + len(metrics) + 1] == [*metrics, next(iter(project.read_params()))]
    assert not any(k in name for name in header for k in ("at_init", "at_trained", "per_array"))

    (run,) = project.runs()
    head = project.git("rev-parse", "HEAD").stdout.strip()
    rows = {row["rev"]: row for row in _exp_show(project)}
    assert set(rows) == {"workspace", head}
    for row in rows.values():
        _assert_shows_the_run(row, run)
    logged = _logged(run)["reports/metrics.json"]
    (committed,) = [r for r in table[1:] if r[header.index("typ")] == "baseline"
                    and r[header.index("rev")] != "workspace"]
    assert [committed[header.index(k)] for k in COMPARED] == [
        str(logged[k]) if isinstance(logged[k], (str, bool)) else repr(logged[k])
        for k in COMPARED]


def test_small_outs_are_in_git_and_the_others_in_the_dvc_cache(project, first_repro):
    """DVC's convention (example-get-started): the `cache: false` outs (metrics, plot data,
    reports) and dvc.lock are committed; the rest is in the DVC cache, git-ignored."""
    committed = project.git("ls-tree", "-r", "--name-only", "HEAD").stdout.split()
    outs = {p for p in committed if p == "dvc.lock" or p.startswith(("data/", "models/",
                                                                      "reports/"))}
    assert outs == IN_GIT | {"data/README.md"}
    assert project.git("check-ignore", *IN_CACHE).stdout.split() == list(IN_CACHE)
    for rel in ("models/parameters.npz", "models/init_parameters.npz", "models/train_result.json"):
        content = (project.root / rel).read_bytes()
        digest = hashlib.md5(content).hexdigest()
        assert (project.root / ".dvc/cache/files/md5" / digest[:2] / digest[2:]).read_bytes() \
            == content, rel


def test_the_mlflow_run_holds_the_stage_outputs(project, first_repro, tmp_path):
    root = project.root
    (run,) = project.runs()
    client, run_id = project.client(), run.info.run_id
    metrics = project.json("reports/metrics.json")
    train_metrics = project.json("models/train_metrics.json")
    assert set(run.data.metrics) == {*EVALUATION, "gradcheck_difference", "cost", "dev_cost",
                                     "grad_norm_W1", "grad_norm_W2", "grad_norm_W3",
                                     "train_seconds", "final_cost", "iterations_run"}
    for name in (*EVALUATION, "gradcheck_difference"):
        assert run.data.metrics[name] == metrics[name], name
    for name in ("final_cost", "iterations_run", "train_seconds"):
        assert run.data.metrics[name] == train_metrics[name], name
    assert run.data.tags["diagnosis"] == metrics["diagnosis"]
    assert run.data.tags["gradcheck"] == "passed"
    assert run.data.tags["dataset_fingerprint"] == project.json("data/split/meta.json")[
        "fingerprint"]
    assert run.data.tags["config_hash"] == ref.config_hash(project.read_params())
    assert run.data.tags["recommendation"] == project.json("reports/diagnosis.json")[
        "recommendation"]

    history = ref.read_csv(root / "models/history.csv")
    for field in ("cost", "dev_cost"):
        assert ref.mlflow_history(client, run_id, field) == [
            (int(r["iteration"]), float(r[field])) for r in history], field
    norms = ref.read_csv(root / "models/grad_norms.csv")
    for layer in ("W1", "W2", "W3"):
        assert ref.mlflow_history(client, run_id, f"grad_norm_{layer}") == [
            (int(r["iteration"]), float(r["grad_norm"])) for r in norms if r["layer"] == layer]

    got = Path(client.download_artifacts(run_id, "", str(tmp_path)))
    assert {p.name for p in got.iterdir()} == {
        "config.yaml", "parameters.npz", "normalizer.npz", "history.csv", "grad_norms.csv",
        "metrics.json", "diagnosis.json", "gradcheck.json", "cost_curve.png", "grad_norms.png",
        "weight_histograms.png", "decision_boundary.png"}
    for name, path in (("parameters.npz", "models/parameters.npz"),
                       ("history.csv", "models/history.csv"),
                       ("grad_norms.csv", "models/grad_norms.csv"),
                       ("metrics.json", "reports/metrics.json"),
                       ("diagnosis.json", "reports/diagnosis.json"),
                       ("gradcheck.json", "reports/gradcheck.json")):
        assert (got / name).read_bytes() == (root / path).read_bytes(), name
    stats = project.json("data/normalized/stats.json")
    normalizer = ref.load_npz(got / "normalizer.npz")
    np.testing.assert_array_equal(normalizer["mean"].ravel(), stats["mean"])
    np.testing.assert_array_equal(normalizer["std"].ravel(), stats["std"])
    assert yaml.safe_load((got / "config.yaml").read_text()) == project.read_params()


def test_the_evaluate_stages_run_has_its_model(project, first_repro, monkeypatch):
    """``runs:/<run id>/model`` of the stage's run answers for the raw test split what the
    trained parameters (``models/parameters.npz``) and the train split's normalizer give."""
    import mlflow.pyfunc

    (run,) = project.runs()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", project.uri)
    accuracy = _assert_answers_as_the_parameters(
        project, mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model"))
    assert accuracy == project.json("reports/metrics.json")["test_accuracy"] == (
        run.data.metrics["test_accuracy"])


def _assert_answers_as_the_parameters(project: Project, model) -> float:
    """``model`` predicts for the raw test split what ``models/parameters.npz`` and the train
    split's normalizer give (recomputed in plain numpy); returns that test accuracy."""
    params = project.read_params()
    data, _ = ref.dataset(params)
    probability, label = ref.model_output(ref.load_npz(project.root / "models/parameters.npz"),
                                          params, data["X_test"])
    got = model.predict(data["X_test"].T)
    np.testing.assert_allclose(got["probability"].to_numpy(), probability, rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_array_equal(got["label"].to_numpy(), label)
    return float(np.mean(label == data["Y_test"][0]))


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
    baseline_gradcheck = project.json("reports/gradcheck.json")
    project.params("train.learning_rate=0.02")
    proc = project.dvc("repro")
    out = proc.stdout
    assert "Stage 'split' didn't change, skipping" in out
    assert "Stage 'normalize' didn't change, skipping" in out
    for stage in ("train", "gradcheck", "evaluate"):
        assert f"Running stage '{stage}'" in out
    assert len(project.runs()) == 2
    assert project.json("reports/metrics.json") != baseline_metrics
    # and back: the three run again (DVC's run cache keeps no stage with a `cache: false` out
    # that is neither a metric nor a plot) and give the baseline's values
    project.params()
    back = project.dvc("repro").stdout
    assert "Stage 'split' didn't change, skipping" in back
    for stage in ("train", "gradcheck", "evaluate"):
        assert f"Running stage '{stage}'" in back
    assert project.json("reports/metrics.json") == baseline_metrics
    assert project.json("reports/gradcheck.json") == baseline_gradcheck
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

    # the pipeline given it: its first stage refuses it before any stage has lost its outs
    # (DVC removes a stage's outs before running it: train's went, before the check stage)
    before = _outs(project.root)
    assert set(TRAIN_OUTS) <= set(before)
    (project.root / "params.yaml").write_text(yaml.safe_dump(bad, sort_keys=False))
    proc = project.dvc("repro", check=False)
    assert proc.returncode != 0
    assert [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")] == [
        f"error: check: {KEEP_PROB_ERROR}"]
    assert "Running stage 'train'" not in proc.stdout
    assert _outs(project.root) == before
    assert not (project.root / ".stage-tmp").exists()
    # so does `dvc exp run -S`: only params.yaml changes in the workspace
    project.baseline()
    before = _outs(project.root)
    proc = project.dvc("exp", "run", "-S", "regularizer=dropout", "-S", "regularizer.keep_prob=1.5",
                       check=False)
    assert proc.returncode != 0
    assert "error: check: regularizer.keep_prob=1.5 is not allowed: must be a finite number in " \
        "(0.0, 1.0]" in proc.stderr
    assert _outs(project.root) == before

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


def _changed(old_run, new_run) -> dict[str, dict]:
    """What `dvc exp diff --json` / `dvc metrics diff --json` should list: by metrics file, each
    value that differs between the two runs' logged ones (DVC adds the numbers' difference)."""
    old, new = _logged(old_run), _logged(new_run)
    out: dict[str, dict] = {}
    for name in METRIC_FILES:
        for key in old[name].keys() | new[name].keys():  # early stopping's only where it ran
            before, after = old[name].get(key), new[name].get(key)
            if before != after:
                entry = {"old": before, "new": after}
                if not isinstance(after, str) and None not in (before, after):
                    entry["diff"] = after - before
                out.setdefault(name, {})[key] = entry
    return out


def _exp_names(output: str) -> list[str]:
    for line in output.splitlines():
        if line.startswith("Ran experiment(s):"):
            return [n.strip() for n in line.split(":", 1)[1].split(",")]
    return []


def test_exp_run_set_params_composes_params_and_tags_the_run(project, first_repro):
    proc = project.dvc("exp", "run", "-S", "regularizer=l2", "-S", "regularizer.lambd=0.7",
                       "-S", f"train.iterations={ITERATIONS}",
                       "-S", "regularizer.early_stopping_patience=1000")
    names = _exp_names(proc.stdout + proc.stderr)
    assert len(names) == 1
    params = project.read_params()
    assert params["regularizer"]["name"] == "l2"
    assert params["regularizer"]["lambd"] == 0.7
    assert params["train"]["iterations"] == ITERATIONS

    tagged = [r for r in project.runs() if r.data.tags.get("dvc_experiment") == names[0]]
    assert len(tagged) == 1
    run = tagged[0]
    assert run.info.status == "FINISHED"
    assert run.data.params == {k: str(v) for k, v in ref.flatten(params).items()}
    assert run.data.tags.get("dvc_baseline_rev") == project.git("rev-parse", "HEAD").stdout.strip()
    # the experiment's results, applied to the workspace, are what its run logged
    expected = ref.evaluate(ref.load_npz(project.root / "models/parameters.npz"), params)
    for name in EVALUATION:
        assert run.data.metrics[name] == pytest.approx(expected[name], abs=1e-12), name
    assert project.json("reports/metrics.json")["dev_accuracy"] == run.data.metrics[
        "dev_accuracy"]
    # early stopping kept the weights of its lowest dev cost: best_dev_cost is theirs (+ the L2 term)
    data, _ = ref.dataset(params)
    mean, std = ref.normalizer(data["X_train"])
    kept = ref.cost(ref.load_npz(project.root / "models/parameters.npz"),
                    (data["X_dev"] - mean) / std, data["Y_dev"], lambd=0.7)
    assert run.data.metrics["best_dev_cost"] == pytest.approx(kept, rel=1e-12)
    assert project.json("models/train_metrics.json")["best_dev_cost"] == run.data.metrics[
        "best_dev_cost"]

    shown = json.loads(project.dvc("exp", "show", "--json").stdout)
    revs = {r["name"]: r for row in shown for e in (row.get("experiments") or [])
            for r in e["revs"]}
    assert names[0] in revs
    shown_params = revs[names[0]]["data"]["params"]["params.yaml"]["data"]
    assert shown_params["regularizer"]["lambd"] == 0.7
    project.exp_run = (names[0], run)
    project.git("checkout", "-q", "--", ".")
    project.baseline()


def test_exp_show_shows_the_experiments_metrics(project, first_repro):
    name, run = project.exp_run
    experiment = _experiments(_exp_show(project))[name]
    metrics = experiment["data"]["metrics"]["reports/metrics.json"]
    assert "error" not in metrics, metrics
    assert metrics["data"]["dev_accuracy"] == run.data.metrics["dev_accuracy"]
    _assert_shows_the_run(experiment, run)
    # the experiment's commit holds its metrics files
    committed = project.git("ls-tree", "-r", "--name-only", experiment["rev"]).stdout.split()
    assert set(METRIC_FILES) <= set(committed)


def test_queued_experiments_land_in_the_workspace_store(project, first_repro):
    """A grid: `dvc exp run --queue` + `dvc queue start -j 2` (executors in temporary copies, run by a Celery
    worker; two experiments, one per executor). The sweep avoids the baseline's own init (he): an
    experiment equal to the baseline runs no stage at all, so it would log no MLflow run."""
    project.baseline()
    project.git("add", "-A")
    project.git("commit", "-q", "--allow-empty", "-m", "baseline before the queue")
    before = {r.info.run_id for r in project.runs()}
    project.dvc("exp", "run", "--queue", "-S", "init=zeros,xavier",
                "-S", "train.learning_rate=0.05", "-S", f"train.iterations={ITERATIONS}")
    try:
        project.start_queue(2)
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
        project.stop_queue()
    assert sum("Success" in ln for ln in tasks) == 2, status
    new = [r for r in project.runs() if r.info.run_id not in before]
    assert sorted((r.data.params["init.name"], r.data.params["train.learning_rate"]) for r in new) == [
        ("xavier", "0.05"), ("zeros", "0.05")]
    revs = _experiments(_exp_show(project))
    assert all(r.info.status == "FINISHED" for r in new)
    assert all(r.data.tags.get("dvc_root") == str(project.root) for r in new)
    for run in new:  # each run is tagged with its experiment, whose params and metrics it logged
        params = revs[run.data.tags["dvc_experiment"]]["data"]["params"]["params.yaml"]["data"]
        assert (params["init"]["name"], str(params["train"]["learning_rate"])) == (
            run.data.params["init.name"], run.data.params["train.learning_rate"])
        assert run.data.params == {k: str(v) for k, v in ref.flatten(params).items()}
        _assert_shows_the_run(revs[run.data.tags["dvc_experiment"]], run)

    # `dvc exp diff` of two of them: the one param that differs, and every metric that changed
    # with both values, as their runs logged them
    runs = {(r.data.params["init.name"], r.data.params["train.learning_rate"]): r for r in new}
    zeros, xavier = runs[("zeros", "0.05")], runs[("xavier", "0.05")]
    diff = json.loads(project.dvc("exp", "diff", "--json", zeros.data.tags["dvc_experiment"],
                                  xavier.data.tags["dvc_experiment"]).stdout)
    assert diff["params"] == {"params.yaml": {"init.name": {"old": "zeros", "new": "xavier"}}}
    assert diff["metrics"] == _changed(zeros, xavier)
    assert "dev_accuracy" in diff["metrics"]["reports/metrics.json"]


def test_temp_experiment_shows_its_metrics_and_plots(project, first_repro):
    """`dvc exp run --temp` (a temporary copy of the repository): its commit carries its metrics
    and plot data, so `dvc exp show`, `dvc metrics diff` and `dvc plots diff` read its values."""
    workspace = (project.root / "reports/metrics.json").read_bytes()
    proc = project.dvc("exp", "run", "--temp", "-S", "regularizer=l2", "-S",
                       "regularizer.lambd=0.3", "-S", f"train.iterations={ITERATIONS}")
    (name,) = _exp_names(proc.stdout + proc.stderr)
    assert (project.root / "reports/metrics.json").read_bytes() == workspace  # left alone
    # its folder is gone when the experiment ends: the stage says how to get its outputs instead
    assert (f"folder: none kept (a DVC temporary workspace; `dvc exp apply {name}` brings the "
            "outputs into yours)") in proc.stdout.splitlines()
    (run,) = [r for r in project.runs() if r.data.tags.get("dvc_experiment") == name]
    assert (run.data.params["regularizer.name"], run.data.params["regularizer.lambd"]) == (
        "l2", "0.3")
    _assert_shows_the_run(_experiments(_exp_show(project))[name], run)

    # against the workspace's experiment (regularizer.lambd=0.7)
    other_name, other = project.exp_run
    diff = json.loads(project.dvc("metrics", "diff", "--json", other_name, name).stdout)
    assert diff == _changed(other, run)
    plots = json.loads(project.dvc("plots", "diff", "--json", other_name, name).stdout)["data"]
    values = plots["cost"][0]["content"]["data"]["values"]
    client = project.client()
    for rev, logged in ((other_name, other), (name, run)):
        for field in ("cost", "dev_cost"):
            points = sorted((int(v["iteration"]), float(v["dvc_inferred_y_value"]))
                            for v in values if v["rev"] == rev and v["field"] == field)
            assert points == ref.mlflow_history(client, logged.info.run_id, field), (rev, field)


def test_exp_run_train_size_trains_on_part_of_train_and_keeps_dev_and_test(project, first_repro):
    """`dvc exp run -S data.train_size=…` (a count, then a fraction): params.yaml holds it, the split
    stage runs again and writes the documented subsample of train; dev and test are the baseline's
    files byte for byte; the run's metrics are its parameters' on that data."""
    project.baseline()
    baseline = {part: (project.root / f"data/split/{part}.npz").read_bytes() for part in SPLITS}
    whole = ref.load_npz(project.root / "data/split/train.npz")
    for value, count in (("40", 40), ("0.25", round(0.25 * whole["Y"].shape[1]))):
        proc = project.dvc("exp", "run", "-S", f"data.train_size={value}", "-S",
                           f"train.iterations={ITERATIONS}")
        assert "Running stage 'split'" in proc.stdout
        params = project.read_params()
        assert params["data"]["train_size"] == yaml.safe_load(value)
        for part in ("dev", "test"):
            assert (project.root / f"data/split/{part}.npz").read_bytes() == baseline[part]
        train = ref.load_npz(project.root / "data/split/train.npz")
        keep = ref.subsample_indices(whole["Y"], count, params["seed"])
        np.testing.assert_array_equal(train["X"], whole["X"][:, keep])
        np.testing.assert_array_equal(train["Y"], whole["Y"][:, keep])
        assert project.json("data/split/meta.json")["sizes"]["train"] == count
        expected = ref.evaluate(ref.load_npz(project.root / "models/parameters.npz"), params)
        metrics = project.json("reports/metrics.json")
        for name in EVALUATION:
            assert metrics[name] == pytest.approx(expected[name], abs=1e-12), name
        (name,) = _exp_names(proc.stdout + proc.stderr)
        (run,) = [r for r in project.runs() if r.data.tags.get("dvc_experiment") == name]
        assert run.data.params["data.train_size"] == value
    project.git("checkout", "-q", "--", ".")
    project.baseline()


# The course's Initialization notebook prints these train / test accuracies.
COURSE_INITIALIZATION = {"zeros": (0.5, 0.5), "random": (0.83, 0.86), "he": (0.99333, 0.96)}


def test_initialization_study_pipeline(project, first_repro):
    """The study as shipped: its table's every cell is its runs' values, which are the course's."""
    folder = project.root / "pipelines" / "initialization"
    # the study's settings, in the order of its sweep (conf/study/initialization/<setting>.yaml)
    settings = {name: yaml.safe_load((project.root / "conf" / "study" / "initialization"
                                      / f"{name}.yaml").read_text())["tracking"]
                for name in ("zeros", "random", "he")}
    project.dvc("repro", "pipelines/initialization/dvc.yaml")
    results = folder / "results"
    runs = {r.info.run_name: r for r in project.runs("initialization")
            if r.data.tags.get("sweep") != "true"}
    assert sorted(runs) == ["he", "random", "zeros"]
    assert all(r.info.status == "FINISHED" for r in runs.values())
    (parent,) = [r for r in project.runs("initialization") if r.data.tags.get("sweep") == "true"]
    assert parent.info.status == "FINISHED"
    assert {r.data.tags["mlflow.parentRunId"] for r in runs.values()} == {parent.info.run_id}

    X_train, Y_train, X_test, Y_test = ref.course_circles()
    for name, run in runs.items():
        parameters = ref.load_npz(results / name / "parameters.npz")
        train_acc = ref.accuracy(parameters, X_train, Y_train)
        test_acc = ref.accuracy(parameters, X_test, Y_test)
        assert (train_acc, test_acc) == pytest.approx(COURSE_INITIALIZATION[name], abs=5e-6)
        assert run.data.metrics["train_accuracy"] == train_acc
        assert run.data.metrics["test_accuracy"] == test_acc
        # the course holds out one set: it is both dev and test
        assert run.data.metrics["dev_accuracy"] == test_acc
        label, _, _ = ref.diagnosis(1 - train_acc, 1 - test_acc)
        assert run.data.tags["diagnosis"] == label
        # report.figures=false: the study's figures compare the settings, no run draws its own
        assert not list((results / name).glob("*.png"))
        assert not [a.path for a in project.client().list_artifacts(run.info.run_id)
                    if a.path.endswith(".png")]

    csv_rows = ref.read_csv(results / "table.csv")
    md_rows = ref.markdown_table((results / "table.md").read_text())
    assert [r["setting"] for r in csv_rows] == [r["setting"] for r in md_rows] == list(settings)
    assert list(csv_rows[0]) == ["setting", "train_accuracy", "dev_accuracy", "test_accuracy",
                                 "course_train_test", "diagnosis", "comment"]
    assert list(md_rows[0]) == list(csv_rows[0])
    for csv_row, md_row in zip(csv_rows, md_rows, strict=True):
        run = runs[csv_row["setting"]]
        for column in ("train_accuracy", "dev_accuracy", "test_accuracy"):
            assert float(csv_row[column]) == run.data.metrics[column], column
            assert float(md_row[column]) == pytest.approx(run.data.metrics[column], abs=5e-5)
        assert csv_row["diagnosis"] == md_row["diagnosis"] == run.data.tags["diagnosis"]
        setting = settings[csv_row["setting"]]
        course = setting["tags"]["course_train_test"]
        assert csv_row["course_train_test"] == md_row["course_train_test"] == course
        assert run.data.tags["course_train_test"] == course
        assert csv_row["comment"] == md_row["comment"] == setting["note"].strip()
        assert run.data.tags["mlflow.note.content"] == setting["note"]
    assert (results / "boundaries.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    again = project.dvc("repro", "pipelines/initialization/dvc.yaml").stdout
    assert "Running stage" not in again


def test_evaluate_registers_its_model_when_asked(project, first_repro, monkeypatch):
    """``tracking.register=true`` (a param of evaluate alone): the stage's new run's model
    becomes ``models:/dlpractice@champion``, which answers the raw test split as the trained
    parameters do; the default registers nothing."""
    import mlflow.pyfunc

    project.baseline()
    client = project.client()
    assert not client.search_registered_models("name = 'dlpractice'")
    project.params("tracking.register=true")
    proc = project.dvc("repro")
    for stage in ("split", "normalize", "train", "gradcheck"):
        assert f"Stage '{stage}' didn't change, skipping" in proc.stdout
    newest = max(project.runs(), key=lambda r: r.info.start_time)
    champion = client.get_model_version_by_alias("dlpractice", "champion")
    assert champion.run_id == newest.info.run_id
    assert (f"registered: models:/dlpractice@champion (version {champion.version})"
            in proc.stdout.splitlines())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", project.uri)
    accuracy = _assert_answers_as_the_parameters(
        project, mlflow.pyfunc.load_model("models:/dlpractice@champion"))
    assert accuracy == newest.data.metrics["test_accuracy"]
    project.baseline()  # the default again: a new run, no new version
    assert client.get_model_version_by_alias("dlpractice", "champion").version == champion.version
