"""What a user sees after `python -m dlpractice.experiment`, one run and a sweep: every MLflow
metric, param, tag and artifact, the run folder, the printed lines and the sweep tables — each
compared with a value computed independently (tests/reference.py) from the saved parameters and
the run's data, or with the other place the same number is shown."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests import reference as ref

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")

ROOT = Path(__file__).resolve().parents[1]
# A network that learns in a few seconds and whose train, dev and test errors all differ (so that
# a swapped or misplaced number shows).
SINGLE = ["data=moons", "data.n_samples=200", "data.noise=0.3", "model.hidden=[20,10]",
          "train.iterations=2000", "train.record_every=250", "train.learning_rate=0.5",
          "init=he", "regularizer=l2", "regularizer.lambd=0.1"]
RUN_ARTIFACTS = {"config.yaml", "parameters.npz", "normalizer.npz", "history.csv", "metrics.json",
                 "cost_curve.png", "grad_norms.png", "weight_histograms.png",
                 "decision_boundary.png"}
EVALUATION = ("train_accuracy", "dev_accuracy", "test_accuracy", "train_error", "dev_error",
              "test_error", "avoidable_bias", "variance")
RUN_METRICS = {*EVALUATION, "cost", "dev_cost", "grad_norm_W1", "grad_norm_W2", "grad_norm_W3",
               "train_seconds", "final_cost", "iterations_run", "gradcheck_difference"}


def app(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path}/mlflow.db"
    (tmp_path / "copied").mkdir(exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "dlpractice.experiment", *args, f"hydra.run.dir={tmp_path}/run",
         f"hydra.sweep.dir={tmp_path}/sweep"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # what a user who copies the database file alone (no -wal beside it) would have
    shutil.copyfile(tmp_path / "mlflow.db", tmp_path / "copied" / "mlflow.db")
    return proc


def client_for(tmp_path: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")


def assert_the_copy_holds_every_run(tmp_path: Path, runs: list) -> None:
    """The copy of ``mlflow.db`` made as the process ended holds the same runs, ended, with the
    same metrics, params and tags."""
    copied = {r.info.run_id: r for r in all_runs(client_for(tmp_path / "copied"))}
    assert sorted(copied) == sorted(r.info.run_id for r in runs)
    for run in runs:
        copy = copied[run.info.run_id]
        assert (copy.info.status, copy.info.end_time) == (run.info.status, run.info.end_time)
        assert copy.data.metrics == run.data.metrics and copy.data.params == run.data.params
        assert copy.data.tags == run.data.tags


def all_runs(client, experiment: str = "dlpractice") -> list:
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], max_results=1000) if exp else []


def read_config(folder: Path) -> dict:
    return yaml.safe_load((folder / "config.yaml").read_text())


# -- one run ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("single")
    proc = app(tmp, *SINGLE)
    client = client_for(tmp)
    (run,) = all_runs(client)
    folder = tmp / "run"
    config = read_config(folder)
    parameters = ref.load_npz(folder / "parameters.npz")
    data, fingerprint = ref.dataset(config)
    return {"proc": proc, "client": client, "run": run, "folder": folder, "config": config,
            "parameters": parameters, "data": data, "fingerprint": fingerprint,
            "expected": ref.evaluate(parameters, config), "tmp": tmp}


def test_the_run_is_the_configuration_asked_for(single):
    config, run = single["config"], single["run"]
    assert run.info.status == "FINISHED" and run.info.run_name == "he-l2_0.1"
    assert config["init"]["name"] == "he" and config["regularizer"] == {
        **config["regularizer"], "name": "l2", "lambd": 0.1}
    assert (config["train"]["iterations"], config["train"]["record_every"],
            config["data"]["n_samples"], config["model"]["hidden"]) == (2000, 250, 200, [20, 10])
    # the params are the resolved config, flattened, every key
    expected = {key: str(value) for key, value in ref.flatten(config).items()}
    assert run.data.params == expected
    # a single run is no selection: it reports its test metrics whatever selection.hide_test says
    assert config["selection"] == {"metric": "dev_error", "hide_test": True}
    assert "test_hidden" not in run.data.tags


def test_the_database_file_alone_holds_the_run_when_the_process_ends(single):
    assert_the_copy_holds_every_run(single["tmp"], [single["run"]])


def test_every_metric_value(single):
    run, expected, config = single["run"], single["expected"], single["config"]
    metrics = run.data.metrics
    assert set(metrics) == RUN_METRICS
    # train, dev and test errors differ: a number shown in the wrong place would show
    assert len({expected["train_error"], expected["dev_error"], expected["test_error"]}) == 3
    for name in EVALUATION:
        assert metrics[name] == pytest.approx(expected[name], abs=1e-12), name
    # the cost of the trained parameters on the (normalized) train split, with its L2 term
    data = single["data"]
    mean, std = ref.normalizer(data["X_train"])
    final = ref.cost(single["parameters"], (data["X_train"] - mean) / std, data["Y_train"],
                     "relu", lambd=0.1)
    assert metrics["final_cost"] == pytest.approx(final, rel=1e-10)
    assert metrics["iterations_run"] == config["train"]["iterations"]
    assert 0 < metrics["train_seconds"] < 60
    assert 0 <= metrics["gradcheck_difference"] < config["gradcheck"]["threshold"]


def test_histories_equal_history_csv(single):
    client, run = single["client"], single["run"]
    rows = ref.read_csv(single["folder"] / "history.csv")
    steps = [int(r["iteration"]) for r in rows]
    assert steps == list(range(0, 2000, 250))
    for column in ("cost", "dev_cost", "grad_norm_W1", "grad_norm_W2", "grad_norm_W3"):
        assert ref.mlflow_history(client, run.info.run_id, column) == [
            (s, float(r[column])) for s, r in zip(steps, rows, strict=True)], column
    # the last recorded cost precedes 250 more steps of descent on the same objective
    assert float(rows[-1]["cost"]) > run.data.metrics["final_cost"] > 0
    assert all(float(r["cost"]) > 0 and float(r["dev_cost"]) > 0 for r in rows)


def test_tags(single):
    from dlpractice.diagnose import diagnose

    tags, expected, config = single["run"].data.tags, single["expected"], single["config"]
    assert tags["diagnosis"] == expected["diagnosis"]
    assert tags["recommendation"] == diagnose(expected["train_error"],
                                              expected["dev_error"]).recommendation
    assert tags["dataset_fingerprint"] == single["fingerprint"]
    assert tags["config_hash"] == ref.config_hash(config)
    assert tags["gradcheck"] == "passed"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    assert tags.get("git_commit") == (head.stdout.strip() if head.returncode == 0 else None)
    assert "failure_reason" not in tags and "mlflow.parentRunId" not in tags


def test_artifacts_hold_the_run(single, tmp_path):
    client, run, folder = single["client"], single["run"], single["folder"]
    run_id = run.info.run_id
    assert {a.path for a in client.list_artifacts(run_id)} == RUN_ARTIFACTS
    got = Path(client.download_artifacts(run_id, "", str(tmp_path)))

    params = ref.load_npz(got / "parameters.npz")
    shapes = {k: v.shape for k, v in params.items()}
    assert shapes == {"W1": (20, 2), "b1": (20, 1), "W2": (10, 20), "b2": (10, 1), "W3": (1, 10),
                      "b3": (1, 1)}
    for key, value in single["parameters"].items():
        np.testing.assert_array_equal(params[key], value)

    norm = ref.load_npz(got / "normalizer.npz")
    mean, std = ref.normalizer(single["data"]["X_train"])
    np.testing.assert_allclose(norm["mean"].reshape(-1, 1), mean, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(norm["std"].reshape(-1, 1), std, rtol=1e-14)

    assert (got / "history.csv").read_bytes() == (folder / "history.csv").read_bytes()
    assert yaml.safe_load((got / "config.yaml").read_text()) == single["config"]
    logged = json.loads((got / "metrics.json").read_text())
    for name, value in run.data.metrics.items():
        if name in logged:
            assert logged[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name
    assert logged["diagnosis"] == run.data.tags["diagnosis"]
    for name in RUN_ARTIFACTS - {"config.yaml", "parameters.npz", "normalizer.npz",
                                 "history.csv", "metrics.json"}:
        assert (got / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_a_run_without_figures_keeps_every_number(single, tmp_path):
    """``report.figures=false`` (the studies' pipelines): no PNG in the folder or the run, the
    same files otherwise, and the numbers of the same settings drawn with figures."""
    app(tmp_path, *SINGLE, "report.figures=false")
    client = client_for(tmp_path)
    (run,) = all_runs(client)
    folder = tmp_path / "run"
    drawn = {name for name in RUN_ARTIFACTS if name.endswith(".png")}
    assert len(drawn) == 4
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == RUN_ARTIFACTS - drawn
    assert not list(folder.glob("*.png"))
    assert read_config(folder)["report"] == {"figures": False}
    assert single["config"]["report"] == {"figures": True}
    parameters = ref.load_npz(folder / "parameters.npz")
    for key, value in single["parameters"].items():
        np.testing.assert_array_equal(parameters[key], value)
    expected = ref.evaluate(parameters, read_config(folder))
    for name in EVALUATION:
        assert run.data.metrics[name] == pytest.approx(expected[name], abs=1e-12), name


def assert_model_answers(store_dir: Path, run, parameters: dict, config: dict, data: dict,
                         monkeypatch, test_logged: bool = True) -> None:
    """The run's MLflow model (``runs:/<run id>/model``) gives, for the raw test split (one
    example per row), the probabilities and labels recomputed from its parameters, and the run's
    test accuracy (a sweep's job that hid its test split logged none)."""
    import mlflow.pyfunc

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store_dir}/mlflow.db")
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    probability, label = ref.model_output(parameters, config, data["X_test"])
    got = model.predict(data["X_test"].T)
    np.testing.assert_allclose(got["probability"].to_numpy(), probability, rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_array_equal(got["label"].to_numpy(), label)
    if not test_logged:
        assert "test_accuracy" not in run.data.metrics
        return
    assert np.mean(label == data["Y_test"][0]) == pytest.approx(
        run.data.metrics["test_accuracy"], abs=1e-12)


def test_the_runs_model_predicts_its_test_split(single, monkeypatch):
    assert_model_answers(single["tmp"], single["run"], single["parameters"], single["config"],
                         single["data"], monkeypatch)


def test_run_folder_and_printed_result(single):
    run, expected, folder = single["run"], single["expected"], single["folder"]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["run_id"] == run.info.run_id
    assert summary["setting"] == "he-l2_0.1"
    for name in EVALUATION:
        assert summary[name] == pytest.approx(expected[name], abs=1e-12), name
    assert summary["diagnosis"] == expected["diagnosis"]
    assert summary["final_cost"] == run.data.metrics["final_cost"]
    assert summary["gradcheck_difference"] == run.data.metrics["gradcheck_difference"]
    assert summary["config"] == single["config"]
    assert summary["config_hash"] == run.data.tags["config_hash"] == ref.config_hash(
        single["config"])

    out = single["proc"].stdout
    line = re.search(r"^he-l2_0\.1: finished  accuracy train (\S+)  dev (\S+)  test (\S+)$", out,
                     re.M)
    assert line is not None, out
    printed = [float(v) for v in line.groups()]
    for value, name in zip(printed, ("train_accuracy", "dev_accuracy", "test_accuracy"),
                           strict=True):
        assert value == round(expected[name], 4), name
    assert f"  diagnosis: {expected['diagnosis']} -> {run.data.tags['recommendation']}" in out
    shown = re.search(r"gradient check difference: (\S+)", out)
    assert shown is not None and float(shown.group(1)) == pytest.approx(
        run.data.metrics["gradcheck_difference"], rel=1e-2)
    # where it is: the run in the MLflow UI as `make ui` serves the store, and its folder
    link = (f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/"
            f"{run.info.run_id}")
    assert out.splitlines()[-2:] == [f"run: {link}", f"folder: {folder}"]
    assert summary["run_url"] == link


# -- a sweep ---------------------------------------------------------------------------------------

# Overfits a small, noisy set unless regularized: the jobs get three different diagnoses (he's
# λ 0.7 job is 10% / 15%: high variance only above a 4-point threshold).
SWEEP = ["-m", "data=moons", "data.n_samples=100", "data.noise=0.35", "model.hidden=[30,20]",
         "train.iterations=1500", "train.record_every=250", "train.learning_rate=0.5",
         "init=he,xavier", "regularizer=l2", "regularizer.lambd=0,0.7",
         "diagnosis.variance_threshold=0.04"]
SETTINGS = ["he-l2_0", "he-l2_0.7", "xavier-l2_0", "xavier-l2_0.7"]
TABLE_COLUMNS = ["setting", "status", "selected", "train_accuracy", "dev_accuracy",
                 "test_accuracy", "train_error", "dev_error", "diagnosis", "gradcheck_difference",
                 "recommendation"]
NUMBERS = ("train_accuracy", "dev_accuracy", "train_error", "dev_error", "gradcheck_difference")
TESTS = ("test_accuracy", "test_error")  # a sweep's jobs leave them out (selection.hide_test)


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory) -> dict[str, dict]:
    """The same sweep through the basic and the vectorized launcher."""
    out = {}
    for launcher in ("basic", "vectorized"):
        tmp = tmp_path_factory.mktemp(f"sweep-{launcher}")
        proc = app(tmp, *SWEEP, *(["hydra/launcher=vectorized"] if launcher == "vectorized"
                                   else []))
        client = client_for(tmp)
        runs = all_runs(client)
        out[launcher] = {
            "proc": proc, "client": client, "dir": tmp / "sweep",
            "parents": [r for r in runs if "mlflow.parentRunId" not in r.data.tags],
            "children": {r.info.run_name: r for r in runs if "mlflow.parentRunId" in r.data.tags},
        }
    return out


@pytest.fixture(params=["basic", "vectorized"])
def sweep(request, sweeps) -> dict:
    return sweeps[request.param]


def _cell_matches(cell: str, value: float) -> bool:
    """A Markdown cell shows 4 decimals (3 significant digits below 1e-3)."""
    shown = float(cell)
    if value != 0 and abs(value) < 1e-3:
        return math.isclose(shown, value, rel_tol=5e-3)
    return abs(shown - value) <= 5e-5 + 1e-12


def test_sweep_children_are_its_jobs_with_recomputed_metrics(sweep):
    (parent,) = sweep["parents"]
    assert sorted(sweep["children"]) == sorted(SETTINGS)
    diagnoses = set()
    for job, name in enumerate(SETTINGS):
        run = sweep["children"][name]
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["sweep_id"] == parent.data.tags["sweep_id"]
        assert run.data.tags["sweep_job"] == str(job)
        folder = sweep["dir"] / str(job)
        config = read_config(folder)
        assert run.data.params["regularizer.lambd"] == str(config["regularizer"]["lambd"])
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["run_id"] == run.info.run_id
        assert summary["config_hash"] == run.data.tags["config_hash"] == ref.config_hash(
            config, test_hidden=True)
        expected = ref.evaluate(ref.load_npz(folder / "parameters.npz"), config)
        for metric in EVALUATION:
            if metric in TESTS:
                assert metric not in run.data.metrics, (name, metric)
                continue
            assert run.data.metrics[metric] == pytest.approx(expected[metric], abs=1e-12), (
                name, metric)
        assert run.data.tags["diagnosis"] == expected["diagnosis"]
        diagnoses.add(expected["diagnosis"])
        history = ref.read_csv(folder / "history.csv")
        assert ref.mlflow_history(sweep["client"], run.info.run_id, "cost") == [
            (int(r["iteration"]), float(r["cost"])) for r in history]
    assert len(diagnoses) == 3


def test_the_database_file_alone_holds_every_run_of_the_sweep_when_it_ends(sweep):
    assert_the_copy_holds_every_run(sweep["dir"].parent,
                                    [*sweep["parents"], *sweep["children"].values()])


def test_every_sweep_job_has_its_model(sweep, monkeypatch):
    for job, name in enumerate(SETTINGS):
        folder = sweep["dir"] / str(job)
        config = read_config(folder)
        assert_model_answers(sweep["dir"].parent, sweep["children"][name],
                             ref.load_npz(folder / "parameters.npz"), config,
                             ref.dataset(config)[0], monkeypatch, test_logged=False)


def test_sweep_tables_equal_the_child_runs(sweep, tmp_path):
    (parent,) = sweep["parents"]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["jobs"] == "4" and parent.data.tags["failed_jobs"] == "0"
    client, children = sweep["client"], sweep["children"]
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"sweep_summary.md", "sweep_summary.csv", "bias_variance.png"} <= names
    got = Path(client.download_artifacts(parent.info.run_id, "", str(tmp_path)))
    for name in ("sweep_summary.md", "sweep_summary.csv"):
        assert (got / name).read_bytes() == (sweep["dir"] / name).read_bytes(), name

    csv_rows = ref.read_csv(got / "sweep_summary.csv")
    md_rows = ref.markdown_table((got / "sweep_summary.md").read_text())
    assert list(csv_rows[0]) == TABLE_COLUMNS and list(md_rows[0]) == TABLE_COLUMNS
    assert [r["setting"] for r in csv_rows] == SETTINGS == [r["setting"] for r in md_rows]
    selected = parent.data.tags["selected_setting"]
    for csv_row, md_row in zip(csv_rows, md_rows, strict=True):
        run = children[csv_row["setting"]]
        assert csv_row["status"] == md_row["status"] == "finished"
        chosen = csv_row["setting"] == selected
        assert csv_row["selected"] == md_row["selected"] == ("yes" if chosen else "")
        # the test split's accuracy shows for the selected setting alone, as its parent logged it
        test = parent.data.metrics["selected_test_accuracy"]
        assert csv_row["test_accuracy"] == (repr(test) if chosen else "")
        assert md_row["test_accuracy"] == (f"{test:.4f}" if chosen else "")
        for column in NUMBERS:
            value = run.data.metrics[column]
            assert float(csv_row[column]) == pytest.approx(value, rel=1e-12, abs=1e-15), column
            assert _cell_matches(md_row[column], value), (column, md_row[column], value)
        for column in ("diagnosis", "recommendation"):
            assert csv_row[column] == run.data.tags[column]
            assert md_row[column] == run.data.tags[column].replace("|", "/")
    # the printed summary is the Markdown table
    assert (got / "sweep_summary.md").read_text().strip() in sweep["proc"].stdout


def test_a_sweep_prints_its_parent_runs_link_and_its_folder(sweep):
    (parent,) = sweep["parents"]
    link = (f"http://127.0.0.1:5000/#/experiments/{parent.info.experiment_id}/runs/"
            f"{parent.info.run_id}")
    assert sweep["proc"].stdout.splitlines()[-2:] == [f"run: {link}", f"folder: {sweep['dir']}"]


def test_both_launchers_give_the_same_children(sweeps):
    """The vectorized launcher trains stacked; its results are the basic launcher's: the same
    accuracies, the rest to rounding (the stacked matrix products may sum in another order)."""
    basic, vectorized = (s["children"] for s in (sweeps["basic"], sweeps["vectorized"]))
    assert sorted(basic) == sorted(vectorized) == sorted(SETTINGS)
    for name, run in vectorized.items():
        want = basic[name]
        assert set(run.data.metrics) == set(want.data.metrics) == RUN_METRICS - set(TESTS)
        assert run.data.tags["diagnosis"] == want.data.tags["diagnosis"]
        for metric in RUN_METRICS - {"train_seconds", *TESTS}:
            if metric in EVALUATION:
                assert run.data.metrics[metric] == want.data.metrics[metric], (name, metric)
            else:
                assert run.data.metrics[metric] == pytest.approx(
                    want.data.metrics[metric], rel=1e-9, abs=1e-15), (name, metric)
