"""Every run's MLflow model (``runs:/<run id>/model``) and the registry
(``tracking.register_model``), against a real SQLite store: what the loaded, the registered and
the served model answer on a run's raw test split, compared with predictions recomputed in plain
numpy (tests/reference.py) from the run's own ``parameters.npz`` and data."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from dlpractice import config, experiment, pipeline, tracking
from dlpractice.errors import DlpracticeError
from tests import reference as ref

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")

SRC = Path(__file__).resolve().parents[1] / "src"
EVALUATION = ("train_accuracy", "dev_accuracy", "test_accuracy", "train_error", "dev_error",
              "test_error", "avoidable_bias", "variance")
BASE = {"data": {"name": "moons", "n_samples": 200, "noise": 0.3},
        "train": {"iterations": 300, "learning_rate": 0.5, "record_every": 50},
        "model": {"hidden": [12, 6]}}
# name -> config sections over BASE; "stacked" is trained ahead, as the vectorized launcher does
SETTINGS = {
    "normalized": {},
    "raw": {"data": {"normalize": False, "feature_scales": [1.0, 3.0]},
            "model": {"activation": "leaky_relu"}},
    "stacked": {"model": {"activation": "tanh"}, "regularizer": {"name": "l2", "lambd": 0.3}},
}
# a sweep's job (run_job with multirun=True) logs no test metrics (selection.hide_test)
TESTS_HIDDEN = {"stacked"}


def make_cfg(store: tracking.Store, sections: dict) -> config.Config:
    raw = {key: dict(value) for key, value in BASE.items()}
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    raw["tracking"] = {"uri": store.uri, "experiment": "models", "rerun": True}
    return config.load(raw)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tracking.Store:
    return tracking.Store(f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}")


@pytest.fixture(autouse=True)
def tracking_uri(store, monkeypatch):
    """``runs:/`` and ``models:/`` URIs resolve in the tracking store of MLflow's environment."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)


@pytest.fixture(scope="module")
def runs(store, tmp_path_factory) -> dict[str, dict]:
    """Each setting run through the app's ``run_job`` (its run id, config and expectations)."""
    out = {}
    for name, sections in SETTINGS.items():
        cfg = make_cfg(store, sections)
        result = None
        if name == "stacked":
            data = pipeline.prepare_data(cfg)
            result = pipeline.fit(cfg, pipeline.normalize(cfg, data.splits)[0])
        row = experiment.run_job(cfg, tmp_path_factory.mktemp(name), multirun=result is not None,
                                 result=result, stores=tracking.Stores())
        folder = tmp_path_factory.mktemp(f"{name}-artifacts")
        saved = Path(store.client.download_artifacts(row["run_id"], "parameters.npz", str(folder)))
        parameters = ref.load_npz(saved)
        cfg_dict = cfg.to_dict()
        data, _ = ref.dataset(cfg_dict)
        probability, label = ref.model_output(parameters, cfg_dict, data["X_test"])
        out[name] = {"run_id": row["run_id"], "cfg": cfg, "config": cfg_dict, "data": data,
                     "parameters": parameters, "probability": probability, "label": label}
    return out


def assert_answers(got, want: dict) -> None:
    """``got`` (the model's DataFrame) is ``want``'s probability and label per test example."""
    assert list(got.columns) == ["probability", "label"]
    assert got["label"].dtype == np.int64
    np.testing.assert_allclose(got["probability"].to_numpy(), want["probability"], rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_array_equal(got["label"].to_numpy(), want["label"])


def test_runs_predict_both_labels(runs):
    """The settings' networks are trained enough that a wrong label or threshold would show."""
    for name, run in runs.items():
        assert 0 < run["label"].sum() < run["label"].size, name


@pytest.mark.parametrize("name", list(SETTINGS))
def test_the_runs_model_predicts_its_raw_test_split(runs, store, name):
    import mlflow.pyfunc
    import pandas as pd

    run = runs[name]
    model = mlflow.pyfunc.load_model(f"runs:/{run['run_id']}/model")
    X = run["data"]["X_test"].T  # one example per row
    n = X.shape[1]
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(1, n + 1)])
    by_frame, by_array = model.predict(frame), model.predict(X)
    assert_answers(by_frame, run)
    assert_answers(by_array, run)
    hits = np.mean(by_array["label"].to_numpy() == run["data"]["Y_test"][0])
    metrics = store.client.get_run(run["run_id"]).data.metrics
    if name in TESTS_HIDDEN:
        assert "test_accuracy" not in metrics
    else:
        assert hits == pytest.approx(metrics["test_accuracy"], abs=1e-12)
    # one example, and examples of another run's split: the model is a function of its input
    assert_answers(model.predict(X[3:4]), {k: run[k][3:4] for k in ("probability", "label")})


def test_a_model_refuses_input_of_another_shape(runs):
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    model = mlflow.pyfunc.load_model(f"runs:/{runs['normalized']['run_id']}/model")
    X = runs["normalized"]["data"]["X_test"]  # (features, examples): the course's, not the model's
    with pytest.raises(MlflowException, match="shape"):
        model.predict(X)


def test_the_model_is_a_logged_model_of_the_run_with_its_metrics(runs, store):
    client = store.client
    for name, run in runs.items():
        logged = client.get_run(run["run_id"])
        (output,) = logged.outputs.model_outputs
        model = client.get_logged_model(output.model_id)
        assert (model.name, model.source_run_id, model.experiment_id, str(model.status)) == (
            "model", run["run_id"], logged.info.experiment_id, "READY"), name
        assert model.params == logged.data.params == {
            key: str(value) for key, value in ref.flatten(run["config"]).items()}
        linked = {m.key: m.value for m in model.metrics}
        hidden = {"test_accuracy", "test_error"} if name in TESTS_HIDDEN else set()
        assert set(linked) == {*EVALUATION, "gradcheck_difference"} - hidden, name
        for key, value in linked.items():
            assert value == logged.data.metrics[key], (name, key)


def test_the_model_holds_the_runs_parameters_normalizer_and_example(runs, store, tmp_path):
    import mlflow.artifacts
    import yaml

    pinned = {f"{pkg}=={importlib.metadata.version(pkg)}" for pkg in ("mlflow", "numpy", "pandas")}
    for name, run in runs.items():
        got = Path(mlflow.artifacts.download_artifacts(f"runs:/{run['run_id']}/model",
                                                       dst_path=str(tmp_path / name)))
        # MLflow writes registered_model_meta into every download of a model (name and version)
        files = {str(p.relative_to(got)) for p in got.rglob("*") if p.is_file()} - {
            "registered_model_meta"}
        normalized = run["config"]["data"]["normalize"]
        assert files == {"MLmodel", "conda.yaml", "python_env.yaml", "requirements.txt",
                         "input_example.json", "serving_input_example.json", "pyfunc_model.py",
                         "artifacts/parameters.npz",
                         *(["artifacts/normalizer.npz"] if normalized else [])}, name
        assert set((got / "requirements.txt").read_text().split()) == pinned
        saved = ref.load_npz(got / "artifacts" / "parameters.npz")
        assert sorted(saved) == sorted(run["parameters"])
        for key, value in run["parameters"].items():
            np.testing.assert_array_equal(saved[key], value)
        if normalized:
            stats = ref.load_npz(got / "artifacts" / "normalizer.npz")
            mean, std = ref.normalizer(run["data"]["X_train"])
            np.testing.assert_allclose(stats["mean"], mean, rtol=1e-14, atol=1e-15)
            np.testing.assert_allclose(stats["std"], std, rtol=1e-14)
        example = json.loads((got / "input_example.json").read_text())
        assert example["columns"] == ["x1", "x2"]
        np.testing.assert_array_equal(example["data"], run["data"]["X_train"][:, :3].T)
        mlmodel = yaml.safe_load((got / "MLmodel").read_text())
        assert mlmodel["run_id"] == run["run_id"]
        flavor = mlmodel["flavors"]["python_function"]
        assert flavor["config"]["hidden_activation"] == run["config"]["model"]["activation"]
        inputs = json.loads(mlmodel["signature"]["inputs"])
        assert inputs == [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 2]}}]
        outputs = json.loads(mlmodel["signature"]["outputs"])
        assert [(o["name"], o["type"]) for o in outputs] == [("probability", "double"),
                                                            ("label", "long")]


def test_the_model_file_imports_numpy_pandas_and_mlflow_only():
    tree = ast.parse((SRC / "dlpractice" / "tracking" / "pyfunc_model.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    # (a mutation test's copy of the file also imports mutmut's trampoline)
    assert {m for m in imported if m.split(".")[0] != "mutmut"} == {"numpy", "pandas",
                                                                    "mlflow.pyfunc"}


def network_model(folder: Path, parameters: dict, activation: str,
                  normalizer: tuple[np.ndarray, np.ndarray] | None = None):
    """The model file's model, loaded as MLflow loads it, from the files a run writes."""
    np.savez(folder / "parameters.npz", **parameters)
    artifacts = {"parameters": str(folder / "parameters.npz")}
    if normalizer is not None:
        np.savez(folder / "normalizer.npz", mean=normalizer[0], std=normalizer[1])
        artifacts["normalizer"] = str(folder / "normalizer.npz")
    return load_model_file(artifacts, activation)


def load_model_file(artifacts: dict[str, str], activation: str):
    from mlflow.pyfunc import PythonModelContext

    from dlpractice.tracking import pyfunc_model

    model = pyfunc_model.NetworkModel()
    model.load_context(PythonModelContext(artifacts, {"hidden_activation": activation,
                                                      "leaky_slope": 0.01}))
    return model


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid"])
def test_the_model_file_is_the_courses_network_behind_the_normalizer(activation, tmp_path):
    rng = np.random.default_rng(7)
    dims = (3, 6, 4, 1)
    parameters = {}
    for l in range(1, len(dims)):
        parameters[f"W{l}"] = rng.normal(size=(dims[l], dims[l - 1]))
        parameters[f"b{l}"] = rng.normal(size=(dims[l], 1))
    mean, std = rng.normal(size=(3, 1)), rng.uniform(0.5, 3.0, size=(3, 1))
    X = rng.normal(size=(3, 60)) * std + mean  # raw, course convention (features, examples)
    # the output bias at minus the median logit: both labels
    parameters["b3"] -= np.median(ref.logits(parameters, (X - mean) / std, activation))
    model = network_model(tmp_path, parameters, activation, (mean, std))
    got = model.predict(None, X.T)
    z = ref.logits(parameters, (X - mean) / std, activation)[0]
    probability = 1.0 / (1.0 + np.exp(-z))
    assert 0 < (probability > 0.5).sum() < 60
    assert_answers(got, {"probability": probability,
                         "label": (probability > 0.5).astype(np.int64)})


def test_the_model_file_saturates_without_overflow_and_labels_above_one_half(tmp_path):
    # logistic regression (no hidden layer): the output is sigmoid(x1 - x2), no normalizer
    model = network_model(tmp_path, {"W1": np.array([[1.0, -1.0]]), "b1": np.zeros((1, 1))},
                          "relu")
    z = np.array([800.0, -800.0, 0.0, 1e-20, -1e-20, 36.0, -36.0, 2.0])
    got = model.predict(None, np.stack([z, np.zeros_like(z)], axis=1))
    np.testing.assert_allclose(got["probability"].to_numpy(),
                               [1.0, 0.0, 0.5, 0.5, 0.5, 1 / (1 + np.exp(-36.0)),
                                np.exp(-36.0) / (1 + np.exp(-36.0)), 1 / (1 + np.exp(-2.0))],
                               rtol=1e-15, atol=0)
    assert got["probability"].to_numpy()[1] == np.exp(-800.0)  # 0 in float64, not nan
    assert got["label"].tolist() == [1, 0, 0, 0, 0, 1, 0, 1]


def test_the_model_file_refuses_unknown_activations_and_misshapen_input(tmp_path):
    parameters = {"W1": np.ones((2, 3)), "b1": np.zeros((2, 1)), "W2": np.ones((1, 2)),
                  "b2": np.zeros((1, 1))}
    with pytest.raises(ValueError, match="^hidden_activation 'selu' is not one of relu, "
                                         "leaky_relu, tanh, sigmoid$"):
        network_model(tmp_path, parameters, "selu")
    model = network_model(tmp_path, parameters, "relu")
    for X in (np.ones((4, 2)), np.ones(3), np.ones((2, 3, 1))):
        with pytest.raises(ValueError) as info:
            model.predict(None, X)
        assert str(info.value) == (f"model input has shape {X.shape}; it needs one example per "
                                   "row and 3 feature columns (x1 … x3)")


BLOCKED_LOAD = """
import json, sys

class NoProject:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("dlpractice", "scipy"):
            raise ImportError(f"{name} is not installed where the model is served")

sys.meta_path.insert(0, NoProject())
import mlflow.pyfunc
import numpy as np

model = mlflow.pyfunc.load_model(sys.argv[1])
print(json.dumps(model.predict(np.array(json.loads(sys.argv[2]))).to_dict("list")))
"""


def test_a_model_loads_and_predicts_without_the_project(runs, store):
    run = runs["raw"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": store.uri}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, "-c", BLOCKED_LOAD, f"runs:/{run['run_id']}/model",
                           json.dumps(run["data"]["X_test"].T.tolist())], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(got["probability"], run["probability"], rtol=1e-12, atol=1e-15)
    assert got["label"] == run["label"].tolist()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_mlflow_models_serve_answers_with_the_runs_predictions(runs, store, tmp_path):
    run = runs["normalized"]
    port = free_port()
    # the server runs `uvicorn` from PATH: this environment's, as in an activated virtualenv
    env = {**os.environ, "MLFLOW_TRACKING_URI": store.uri,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("mlflow")), "models", "serve", "-m",
         f"runs:/{run['run_id']}/model", "--env-manager", "local", "-h", "127.0.0.1", "-p",
         str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the model server did not answer /ping"
            time.sleep(0.5)
        X = run["data"]["X_test"].T
        body = json.dumps({"dataframe_split": {"columns": ["x1", "x2"], "data": X.tolist()}})
        request = urllib.request.Request(f"{base}/invocations", data=body.encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    rows = answer["predictions"]
    assert [sorted(r) for r in rows] == [["label", "probability"]] * len(X)
    np.testing.assert_allclose([r["probability"] for r in rows], run["probability"], rtol=1e-12,
                               atol=1e-15)
    assert [r["label"] for r in rows] == run["label"].tolist()


# -- the registry ------------------------------------------------------------------------------


def test_register_model_moves_the_champion_to_each_new_version(runs, store):
    import mlflow.pyfunc

    client = store.client
    first, second = runs["normalized"], runs["raw"]
    assert tracking.register_model(store, first["run_id"], "moons-net") == "1"
    assert tracking.register_model(store, second["run_id"], "moons-net") == "2"
    champion = client.get_model_version_by_alias("moons-net", "champion")
    assert (str(champion.version), champion.run_id) == ("2", second["run_id"])
    X = second["data"]["X_test"].T
    assert_answers(mlflow.pyfunc.load_model("models:/moons-net@champion").predict(X), second)
    assert tracking.model_uri("moons-net") == "models:/moons-net@champion"
    assert tracking.model_uri("o'neil's net", "v1") == "models:/o'neil's net@v1"
    # the earlier version is still the first run's model
    X = first["data"]["X_test"].T
    assert_answers(mlflow.pyfunc.load_model("models:/moons-net/1").predict(X), first)
    # another alias leaves the champion where it is; the model registered before keeps its version
    assert tracking.register_model(store, first["run_id"], "moons-net", alias="candidate") == "1"
    assert str(client.get_model_version_by_alias("moons-net", "champion").version) == "2"
    assert str(client.get_model_version_by_alias("moons-net", "candidate").version) == "1"
    assert_answers(mlflow.pyfunc.load_model("models:/moons-net@candidate").predict(X), first)
    # registering a model again (a re-run sweep's same choice) moves the alias, adds no version
    assert tracking.register_model(store, first["run_id"], "moons-net") == "1"
    champion = client.get_model_version_by_alias("moons-net", "champion")
    assert (str(champion.version), champion.run_id) == ("1", first["run_id"])
    assert sorted(int(v.version) for v in client.search_model_versions("name = 'moons-net'")) == [1, 2]
    # a name a filter string cannot quote registers, and re-registers, the same way
    assert [tracking.register_model(store, second["run_id"], "o'neil's net") for _ in range(2)] == [
        "1", "1"]
    champion = client.get_model_version_by_alias("o'neil's net", "champion")
    assert (str(champion.version), champion.run_id) == ("1", second["run_id"])


def test_register_model_refuses_what_it_cannot_register_in_one_line(runs, store):
    cfg = make_cfg(store, {})
    with tracking.RunTracker(cfg, store) as tracker:  # a run without a model
        pass
    cases = {
        tracker.run_id: f"MLflow run {tracker.run_id} has no model 'model' to register (a run "
                        "logged before runs had models: run it again with tracking.rerun=true)",
        "0" * 32: f"cannot find MLflow run {'0' * 32} in {store.uri}: Run with id={'0' * 32} "
                  "not found",
        "A" * 32: f"cannot find MLflow run {'A' * 32} in {store.uri}: Run with id={'A' * 32} "
                  "not found",
        "../x": "run id '../x' is not an MLflow run id (letters, digits, '-' and '_')",
    }
    for run_id, message in cases.items():
        with pytest.raises(DlpracticeError) as info:
            tracking.register_model(store, run_id, "refused")
        assert str(info.value) == message
    with pytest.raises(DlpracticeError, match="^a registered model needs a name: got an empty one$"):
        tracking.register_model(store, runs["normalized"]["run_id"], " ")
    assert store.client.search_registered_models(filter_string="name = 'refused'") == []
    # an alias MLflow reserves: one line, and no version is left without it
    run_id = runs["normalized"]["run_id"]
    with pytest.raises(DlpracticeError) as info:
        tracking.register_model(store, run_id, "refused-alias", alias="latest")
    assert str(info.value) == (
        f"cannot register the model of MLflow run {run_id} as 'refused-alias' (alias 'latest'): "
        "'latest' alias name (case insensitive) is reserved.")
    assert store.client.search_model_versions("name = 'refused-alias'") == []


def small_network(rng, dims=(2, 4, 1)) -> dict[str, np.ndarray]:
    return {name: rng.normal(size=(dims[l], dims[l - 1] if name[0] == "W" else 1))
            for l in range(1, len(dims)) for name in (f"W{l}", f"b{l}")}


def test_log_model_packs_the_network_for_its_run(store, tmp_path):
    """``tracking.models.log_model`` on its own: the LoggedModel, its link to the run, the files
    and what the model answers (a normalizer, an integer example)."""
    import mlflow.artifacts
    import mlflow.pyfunc
    import yaml

    from dlpractice.tracking import models

    rng = np.random.default_rng(3)
    parameters = small_network(rng)
    np.savez(tmp_path / "parameters.npz", **parameters)
    mean, std = np.array([[1.0], [-2.0]]), np.array([[2.0], [0.5]])
    np.savez(tmp_path / "normalizer.npz", mean=mean, std=std)
    client = store.client
    with tracking.RunTracker(make_cfg(store, {}), store) as tracker:
        model_id = models.log_model(
            client, tracker.experiment_id, tracker.run_id,
            parameters=tmp_path / "parameters.npz", normalizer=tmp_path / "normalizer.npz",
            hidden_activation="tanh", example=np.array([[1, 2], [3, 4], [5, 6], [7, 8]]),
            params={"a": "1", "b": "x"})
    logged = client.get_logged_model(model_id)
    assert (logged.name, logged.source_run_id, logged.experiment_id, str(logged.status),
            logged.params) == ("model", tracker.run_id, tracker.experiment_id, "READY",
                               {"a": "1", "b": "x"})
    outputs = client.get_run(tracker.run_id).outputs.model_outputs
    assert [(o.model_id, o.step) for o in outputs] == [(model_id, 0)]

    got = Path(mlflow.artifacts.download_artifacts(f"runs:/{tracker.run_id}/model",
                                                   dst_path=str(tmp_path / "got")))
    mlmodel = yaml.safe_load((got / "MLmodel").read_text())
    assert (mlmodel["run_id"], mlmodel["model_id"], mlmodel["model_uuid"],
            mlmodel["artifact_path"]) == (tracker.run_id, model_id, model_id,
                                          logged.artifact_location)
    assert mlmodel["flavors"]["python_function"]["config"] == {"hidden_activation": "tanh",
                                                               "leaky_slope": 0.01}
    assert json.loads(mlmodel["signature"]["inputs"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 2]}}]
    assert json.loads(mlmodel["signature"]["outputs"]) == [
        {"type": "double", "name": "probability", "required": True},
        {"type": "long", "name": "label", "required": True}]
    assert json.loads((got / "input_example.json").read_text()) == {
        "columns": ["x1", "x2"], "data": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]}

    X = rng.normal(size=(2, 30)) * 3
    z = ref.logits(parameters, (X - mean) / std, "tanh")[0]
    probability = 1.0 / (1.0 + np.exp(-z))
    model = mlflow.pyfunc.load_model(f"models:/{model_id}")
    assert_answers(model.predict(X.T), {"probability": probability,
                                        "label": (probability > 0.5).astype(np.int64)})


def test_a_model_that_cannot_be_packed_ends_failed(store, tmp_path):
    from dlpractice.tracking import models

    client = store.client
    with tracking.RunTracker(make_cfg(store, {}), store) as tracker:
        with pytest.raises(Exception, match="missing.npz"):
            models.log_model(client, tracker.experiment_id, tracker.run_id,
                             parameters=tmp_path / "missing.npz", normalizer=None,
                             hidden_activation="relu", example=np.zeros((3, 2)))
    (failed,) = client.search_logged_models([tracker.experiment_id],
                                            filter_string=f"source_run_id = '{tracker.run_id}'")
    assert str(failed.status) == "FAILED"
    assert client.get_run(tracker.run_id).outputs.model_outputs == []


def test_register_model_takes_the_runs_latest_model(store, tmp_path):
    import mlflow.pyfunc

    from dlpractice.tracking import models

    rng = np.random.default_rng(5)
    client = store.client
    networks = [small_network(rng), small_network(rng)]
    with tracking.RunTracker(make_cfg(store, {}), store) as tracker:
        ids = []
        for k, parameters in enumerate(networks):
            np.savez(tmp_path / f"p{k}.npz", **parameters)
            ids.append(models.log_model(client, tracker.experiment_id, tracker.run_id,
                                        parameters=tmp_path / f"p{k}.npz", normalizer=None,
                                        hidden_activation="relu", example=np.zeros((3, 2))))
    assert tracking.register_model(store, tracker.run_id, "latest-of-two") == "1"
    version = client.get_model_version("latest-of-two", "1")
    assert (version.source, version.run_id) == (
        client.get_logged_model(ids[1]).artifact_location, tracker.run_id)
    X = rng.normal(size=(2, 20))
    z = ref.logits(networks[1], X, "relu")[0]
    got = mlflow.pyfunc.load_model("models:/latest-of-two@champion").predict(X.T)
    np.testing.assert_allclose(got["probability"].to_numpy(), 1.0 / (1.0 + np.exp(-z)),
                               rtol=1e-12, atol=1e-15)


def test_a_model_file_never_unpickles(tmp_path):
    np.savez(tmp_path / "parameters.npz", W1=np.array([[1.0, 2.0]], dtype=object),
             b1=np.zeros((1, 1)))
    with pytest.raises(ValueError, match="allow_pickle=False"):
        load_model_file({"parameters": str(tmp_path / "parameters.npz")}, "relu")


def test_a_run_that_normalized_needs_its_normalizer_file(store, tmp_path):
    from dlpractice import report

    cfg = make_cfg(store, {})
    outcome = pipeline.run_all(cfg)
    files = report.write_run_outputs(outcome, tmp_path)
    with tracking.RunTracker(cfg, store) as tracker:
        with pytest.raises(ValueError, match="normalizer"):
            tracker.log_model(outcome, {"parameters": files["parameters"]})
    assert store.client.get_run(tracker.run_id).outputs.model_outputs == []
