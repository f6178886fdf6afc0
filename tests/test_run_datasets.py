"""Every run's train, dev and test sets as MLflow dataset inputs, and its metrics linked to them,
against a real SQLite store: what the MLflow UI's Dataset column, dataset drawer and Datasets
filter read. Digests, sizes and sources are recomputed here from the data itself."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from dlpractice import config, experiment, pipeline, tracking
from tests import reference as ref

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")

ROOT = Path(__file__).resolve().parents[1]
CONTEXT = "mlflow.data.context"
SPLITS = ("train", "dev", "test")
QUICK = {"train": {"iterations": 200, "record_every": 50}}


def make_cfg(store: tracking.Store, experiment_name: str, **sections) -> config.Config:
    raw = {"train": dict(QUICK["train"]), "tracking": {"uri": store.uri,
                                                       "experiment": experiment_name}}
    for section, values in sections.items():
        if isinstance(values, dict):
            raw.setdefault(section, {}).update(values)
        else:
            raw[section] = values
    return config.load(raw)


def digest(X: np.ndarray, Y: np.ndarray) -> str:
    """The documented digest: sha256 over each array's dtype, shape and bytes, X then Y, cut to
    16 hex characters."""
    h = hashlib.sha256()
    for a in (X, Y):
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def inputs_by_context(client, run_id: str) -> dict[str, object]:
    """The run's dataset inputs by their context tag (each input has exactly one tag)."""
    out = {}
    for item in client.get_run(run_id).inputs.dataset_inputs:
        (tag,) = item.tags
        assert tag.key == CONTEXT
        out[tag.value] = item.dataset
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tracking.Store:
    return tracking.Store(f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}")


@pytest.fixture(scope="module")
def client(store):
    store.prepare()
    return store.client


@pytest.fixture(scope="module")
def moons(store, tmp_path_factory):
    """One run of the app's job function (``experiment.run_job``) on generated data."""
    cfg = make_cfg(store, "generated", data={"name": "moons", "n_samples": 250, "noise": 0.3,
                                             "ratios": [0.6, 0.2, 0.2]}, seed=3)
    folder = tmp_path_factory.mktemp("moons")
    row = experiment.run_job(cfg, folder)
    resolved = yaml.safe_load((folder / "config.yaml").read_text())
    arrays, fingerprint = ref.dataset(resolved)
    return {"row": row, "config": resolved, "arrays": arrays, "fingerprint": fingerprint,
            "folder": folder}


def test_a_run_logs_train_dev_and_test_as_its_datasets(client, moons):
    run_id, arrays = moons["row"]["run_id"], moons["arrays"]
    datasets = inputs_by_context(client, run_id)
    assert sorted(datasets) == sorted(SPLITS)
    for split in SPLITS:
        d = datasets[split]
        assert d.name == f"moons-{split}"
        assert d.digest == digest(arrays[f"X_{split}"], arrays[f"Y_{split}"])
        assert json.loads(d.profile) == {"num_rows": arrays[f"X_{split}"].shape[1]}
        assert json.loads(d.schema) == {"mlflow_colspec": [
            {"type": "double", "name": n, "required": True} for n in ("x1", "x2", "y")]}
        assert d.source_type == "code"
        assert json.loads(d.source) == {"tags": {
            "name": "moons", "n_samples": 250, "noise": 0.3, "seed": 3, "ratios": [0.6, 0.2, 0.2],
            "dev_size": None, "test_size": None, "split_heldout": False, "feature_scales": None,
            "course_compat": False}}
    # 250 examples shared 60/20/20 (rounded): 150, 50, 50
    assert [json.loads(datasets[s].profile)["num_rows"] for s in SPLITS] == [150, 50, 50]
    assert len({datasets[s].digest for s in SPLITS}) == 3
    # the whole data's fingerprint is the run's tag; the digests pin each split's examples
    assert client.get_run(run_id).data.tags["dataset_fingerprint"] == moons["fingerprint"]


def test_the_ui_datasets_filter_finds_the_run_by_its_datasets(client, moons):
    run_id = moons["row"]["run_id"]
    exp_id = client.get_run(run_id).info.experiment_id
    test = inputs_by_context(client, run_id)["test"]
    # the filter the runs table's Datasets menu builds, and one by context
    found = client.search_runs([exp_id], f"dataset.name IN ('{test.name}') AND "
                                         f"dataset.digest IN ('{test.digest}')")
    assert [r.info.run_id for r in found] == [run_id]
    assert [r.info.run_id for r in client.search_runs([exp_id], "dataset.context = 'dev'")] == [
        run_id]
    assert client.search_runs([exp_id], "dataset.digest = '0000000000000000'") == []


def test_metrics_are_linked_to_their_split_on_the_runs_model(client, store, moons, tmp_path):
    """MLflow keeps a metric's dataset only on a logged model's metrics: the run's evaluation,
    logged with its model, is what the UI's Dataset column and Datasets filter of models show."""
    from dlpractice import report

    cfg = config.load(moons["config"])
    data = pipeline.prepare_data(cfg)
    with tracking.RunTracker(cfg, store) as tracker:
        tracker.log_datasets(data)
        outcome = pipeline.run_all(cfg, data=data)
        tracker.log_model(outcome, report.write_run_outputs(outcome, tmp_path / "run"))
        tracker.log_outcome(outcome)
    model = client.get_logged_model(tracker.model_id)
    datasets = inputs_by_context(client, tracker.run_id)
    # the same data as the app's run: the same datasets, stored once in the experiment
    assert {s: (d.name, d.digest) for s, d in datasets.items()} == {
        s: (d.name, d.digest) for s, d in inputs_by_context(client, moons["row"]["run_id"]).items()}
    expected = ref.evaluate(outcome.result.parameters, moons["config"])
    linked = {m.key: m for m in client.get_logged_model(model.model_id).metrics}
    for split in SPLITS:
        for what in ("accuracy", "error"):
            metric = linked[f"{split}_{what}"]
            assert (metric.dataset_name, metric.dataset_digest) == (
                datasets[split].name, datasets[split].digest), metric.key
            assert metric.value == pytest.approx(expected[f"{split}_{what}"], abs=1e-12)
            assert (metric.run_id, metric.step) == (tracker.run_id, 0)
    for key in ("avoidable_bias", "variance", "gradcheck_difference"):
        assert (linked[key].dataset_name, linked[key].dataset_digest) == (None, None)
    found = client.search_logged_models(
        [tracker.experiment_id],
        datasets=[{"dataset_name": datasets["test"].name,
                   "dataset_digest": datasets["test"].digest}])
    # this run's model and the app run's (the same examples, so the same test dataset)
    assert sorted(m.source_run_id for m in found) == sorted([tracker.run_id,
                                                              moons["row"]["run_id"]])
    assert model.model_id in {m.model_id for m in found}
    # one point per metric in the run's own history
    for key in ("test_accuracy", "avoidable_bias"):
        history = client.get_metric_history(tracker.run_id, key)
        assert len(history) == 1, key
        # MLflow 3.17's stores drop a run metric's dataset (only a model's metrics keep it):
        # when this fails, MLflow keeps it, and the README's Tracking section must say so
        assert (history[0].dataset_name, history[0].dataset_digest) == (None, None)


def test_a_sweeps_jobs_share_the_datasets_of_their_data(client, store, tmp_path):
    parent = tracking.start_sweep_run(store, "sweep", "sweep-s1", tags={"sweep_id": "s1"})
    stores = tracking.Stores()
    run_ids = []
    for job, lambd in enumerate((0.0, 0.7)):
        cfg = make_cfg(store, "sweep", data={"name": "circles", "n_samples": 200},
                       regularizer={"name": "l2", "lambd": lambd})
        row = experiment.run_job(cfg, tmp_path / str(job), multirun=True, parent_run_id=parent,
                                 tags={"sweep_id": "s1", "sweep_job": str(job)}, stores=stores)
        run_ids.append(row["run_id"])
    tracking.finish_sweep_run(store, parent)
    first, second = (inputs_by_context(client, r) for r in run_ids)
    arrays, _ = ref.dataset(yaml.safe_load((tmp_path / "0" / "config.yaml").read_text()))
    for split in SPLITS:
        assert first[split] == second[split]
        assert first[split].digest == digest(arrays[f"X_{split}"], arrays[f"Y_{split}"])
    assert client.get_run(parent).inputs.dataset_inputs == []


def test_a_data_file_is_the_source_and_its_held_out_part_is_dev_and_test(client, store, tmp_path):
    import scipy.io

    path = ref.require_course_file()
    cfg = make_cfg(store, "file", data={"name": "file", "path": str(path), "n_samples": 0,
                                        "noise": 0.0})
    row = experiment.run_job(cfg, tmp_path / "run")
    datasets = inputs_by_context(client, row["run_id"])
    mat = scipy.io.loadmat(str(path))
    X, Y = np.ascontiguousarray(mat["X"].T, dtype=np.float64), mat["y"].reshape(1, -1).astype(float)
    X_val = np.ascontiguousarray(mat["Xval"].T, dtype=np.float64)
    Y_val = mat["yval"].reshape(1, -1).astype(float)
    want = {"train": (X, Y), "dev": (X_val, Y_val), "test": (X_val, Y_val)}
    for split in SPLITS:
        d = datasets[split]
        assert d.name == f"football.mat-{split}"
        assert d.source_type == "local"
        assert json.loads(d.source) == {"uri": str(path.resolve())}
        assert d.digest == digest(*want[split])
        assert json.loads(d.profile) == {"num_rows": want[split][0].shape[1]}
    assert [json.loads(datasets[s].profile)["num_rows"] for s in SPLITS] == [211, 200, 200]
    # the course reports Xval as its test set: dev and test are the same examples, two inputs
    assert datasets["dev"].digest == datasets["test"].digest
    assert datasets["dev"].name != datasets["test"].name


def test_a_csv_file_split_by_ratios_names_its_columns_and_path(client, store, tmp_path,
                                                                monkeypatch):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] + X[:, 2] > 0).astype(int)
    path = tmp_path / "points.csv"
    path.write_text("a,b,c,label\n" + "".join(f"{r[0]},{r[1]},{r[2]},{t}\n" for r, t in zip(X, y)))
    monkeypatch.chdir(tmp_path)  # a relative data.path: the source names the file read
    cfg = make_cfg(store, "csv", data={"name": "file", "path": "points.csv", "n_samples": 0,
                                       "noise": 0.0}, model={"hidden": [4]})
    row = experiment.run_job(cfg, tmp_path / "run")
    resolved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert resolved["data"]["path"] == "points.csv"
    arrays, _ = ref.dataset(resolved)
    datasets = inputs_by_context(client, row["run_id"])
    for split in SPLITS:
        d = datasets[split]
        assert d.name == f"points.csv-{split}"
        assert (d.source_type, json.loads(d.source)) == ("local", {"uri": str(path.resolve())})
        assert d.digest == digest(arrays[f"X_{split}"], arrays[f"Y_{split}"])
        assert json.loads(d.schema) == {"mlflow_colspec": [
            {"type": "double", "name": n, "required": True} for n in ("x1", "x2", "x3", "y")]}
    # 60 rows shared 60/20/20
    assert [json.loads(datasets[s].profile) for s in SPLITS] == [
        {"num_rows": 36}, {"num_rows": 12}, {"num_rows": 12}]


def test_a_run_that_fails_in_training_still_names_its_data(client, store, tmp_path):
    cfg = make_cfg(store, "failing", data={"name": "blobs", "n_samples": 200},
                   init={"name": "random", "scale": 10.0}, model={"activation": "leaky_relu"},
                   train={"learning_rate": 1e100})
    with pytest.raises(Exception, match="diverged"):
        experiment.run_job(cfg, tmp_path / "run")
    exp = client.get_experiment_by_name("failing")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FAILED"
    assert sorted(d.dataset.name for d in run.inputs.dataset_inputs) == [
        "blobs-dev", "blobs-test", "blobs-train"]


@pytest.mark.slow
def test_the_dvc_evaluate_stage_logs_the_datasets_of_its_split_files(tmp_path):
    """The root pipeline's stages for real in a scratch folder: the evaluate stage's run names the
    arrays the split stage wrote, the same datasets as the app's run of that config."""
    from mlflow.tracking import MlflowClient

    work = tmp_path / "work"
    work.mkdir()
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["train"].update(iterations=300, record_every=50)
    raw["data"]["n_samples"] = 200
    raw["data"]["feature_scales"] = [1.0, 3.0]
    (work / "params.yaml").write_text(yaml.safe_dump(raw))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path}/mlflow.db"
    for stage in ("split", "normalize", "train", "gradcheck", "evaluate"):
        proc = subprocess.run([sys.executable, "-m", f"dlpractice.stages.{stage}"], cwd=work,
                              env=env, capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, (stage, proc.stderr[-2000:])
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name(raw["tracking"]["experiment"])
    (run,) = client.search_runs([exp.experiment_id])
    datasets = inputs_by_context(client, run.info.run_id)
    for split in SPLITS:
        arrays = ref.load_npz(work / "data" / "split" / f"{split}.npz")
        d = datasets[split]
        assert d.name == f"{raw['data']['name']}-{split}"
        assert d.digest == digest(arrays["X"], arrays["Y"])
        assert json.loads(d.profile) == {"num_rows": arrays["X"].shape[1]}
        assert json.loads(d.source)["tags"]["feature_scales"] == [1.0, 3.0]
    # the app's run of the same config names the same datasets
    store = tracking.Store(env["MLFLOW_TRACKING_URI"])
    cfg = config.load({**raw, "tracking": {**raw["tracking"], "uri": store.uri,
                                           "experiment": "app"}})
    row = experiment.run_job(cfg, tmp_path / "app")
    assert inputs_by_context(client, row["run_id"]) == datasets


def test_which_split_a_metric_measures():
    from dlpractice.tracking.datasets import split_of

    assert [split_of(k) for k in ("train_accuracy", "dev_cost", "test_error", "dev_log_loss",
                                  "train", "testing_error", "cost", "avoidable_bias",
                                  "_train")] == [
        "train", "dev", "test", "dev", None, None, None, None, None]


def test_a_dataset_another_job_created_first_is_logged_again(store, monkeypatch):
    """Two jobs of a sweep log the same data at once: the loser's insert of the dataset row
    fails (SQLite: UNIQUE constraint); its run still gets its three inputs."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    cfg = make_cfg(store, "race", data={"n_samples": 100})
    calls = []
    original = MlflowClient.log_inputs

    def first_fails(self, run_id, datasets=None, models=None):
        calls.append(run_id)
        if len(calls) == 1:
            raise MlflowException("(sqlite3.IntegrityError) UNIQUE constraint failed: "
                                  "datasets.experiment_id, datasets.name, datasets.digest")
        return original(self, run_id, datasets=datasets, models=models)

    monkeypatch.setattr(MlflowClient, "log_inputs", first_fails)
    with tracking.RunTracker(cfg, store) as tracker:
        tracker.log_datasets(pipeline.prepare_data(cfg))
    assert calls == [tracker.run_id, tracker.run_id]
    contexts = sorted(t.value for i in store.client.get_run(tracker.run_id).inputs.dataset_inputs
                      for t in i.tags if t.key == "mlflow.data.context")
    assert contexts == ["dev", "test", "train"]
