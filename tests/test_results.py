"""``dlpractice.results``: an experiment's runs as a DataFrame, compared cell by cell with what the
store holds, read here with MlflowClient; real runs of the app's job function in a temporary
SQLite store (two sweeps and a single run)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import dlpractice
from dlpractice import config, experiment, tracking
from dlpractice.errors import DlpracticeError

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")

ATTRIBUTES = ["run_id", "run_name", "status", "start_time", "end_time"]
SWEEPS = {"a": (0.01, 0.1, 1.0), "b": (0.3,)}


def make_cfg(uri: str, **sections) -> config.Config:
    raw = {"train": {"iterations": 150, "record_every": 50}, "data": {"n_samples": 150},
           "tracking": {"uri": uri, "experiment": "lambd"}}
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return config.load(raw)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tracking.Store:
    tmp = tmp_path_factory.mktemp("results")
    store = tracking.Store(f"sqlite:///{tmp / 'mlflow.db'}")
    stores = tracking.Stores()
    for sweep_id, lambds in SWEEPS.items():
        parent = tracking.start_sweep_run(store, "lambd", f"sweep-{sweep_id}",
                                          tags={"sweep_id": sweep_id})
        for job, lambd in enumerate(lambds):
            cfg = make_cfg(store.uri, regularizer={"name": "l2", "lambd": lambd})
            experiment.run_job(cfg, tmp / sweep_id / str(job), multirun=True,
                               parent_run_id=parent, stores=stores,
                               tags={"sweep_id": sweep_id, "sweep_job": str(job)})
        tracking.finish_sweep_run(store, parent, tags={"jobs": str(len(lambds))})
    experiment.run_job(make_cfg(store.uri, init={"name": "xavier"}), tmp / "single")
    store.experiment_id("empty")
    return store


@pytest.fixture(scope="module")
def client(store):
    return store.client


def stored_runs(client, experiment_name: str = "lambd") -> list:
    exp = client.get_experiment_by_name(experiment_name)
    return client.search_runs([exp.experiment_id], max_results=1000)


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parent_of(client, sweep_id: str) -> str:
    (parent,) = [r for r in stored_runs(client) if r.data.tags.get("sweep") == "true"
                 and r.data.tags["sweep_id"] == sweep_id]
    return parent.info.run_id


def test_one_row_per_run_but_the_sweep_parents_oldest_first(client, store):
    table = dlpractice.results("lambd", uri=store.uri)
    runs = [r for r in stored_runs(client) if "sweep" not in r.data.tags]
    assert len(runs) == 5 == len(table)
    oldest_first = sorted(runs, key=lambda r: r.info.start_time)
    assert list(table["run_id"]) == [r.info.run_id for r in oldest_first]
    assert list(table["run_name"]) == ["he-l2_0.01", "he-l2_0.1", "he-l2_1", "he-l2_0.3",
                                       "xavier-none"]
    assert list(table.columns[:5]) == ATTRIBUTES
    assert set(table["status"]) == {"FINISHED"}


def test_every_cell_is_what_the_store_holds(client, store):
    table = dlpractice.results("lambd", uri=store.uri).set_index("run_id")
    for run in stored_runs(client):
        if "sweep" in run.data.tags:
            assert run.info.run_id not in table.index
            continue
        row = table.loc[run.info.run_id]
        assert row["start_time"] == pd.Timestamp(run.info.start_time, unit="ms", tz="UTC")
        assert row["end_time"] == pd.Timestamp(run.info.end_time, unit="ms", tz="UTC")
        for key, value in run.data.metrics.items():
            assert row[key] == value, key
        for key, value in run.data.tags.items():
            assert row[f"tags.{key}"] == value, key
        for key, text in run.data.params.items():
            cell = row[key]
            if text == "None":
                assert cell is None or (isinstance(cell, float) and math.isnan(cell)), key
            elif text in ("True", "False"):
                assert isinstance(cell, bool | np.bool_) and cell == (text == "True"), key
            elif is_number(text):
                assert not isinstance(cell, str) and cell == float(text), key
            else:
                assert cell == text, key
    columns = set(table.columns)
    params = {k for r in stored_runs(client) if "sweep" not in r.data.tags
              for k in r.data.params}
    metrics = {k for r in stored_runs(client) if "sweep" not in r.data.tags
               for k in r.data.metrics}
    tags = {f"tags.{k}" for r in stored_runs(client) if "sweep" not in r.data.tags
            for k in r.data.tags}
    assert columns == set(ATTRIBUTES[1:]) | params | metrics | tags
    # in groups, each sorted: attributes, params, metrics, tags
    assert list(table.reset_index().columns) == (ATTRIBUTES + sorted(params) + sorted(metrics)
                                                 + sorted(tags))


def test_params_become_numbers_and_booleans(store):
    table = dlpractice.results("lambd", uri=store.uri)
    assert table["regularizer.lambd"].tolist() == [0.01, 0.1, 1.0, 0.3, 0.0]
    assert table["regularizer.lambd"].dtype == "float64"
    assert table["train.iterations"].tolist() == [150] * 5
    assert table["train.iterations"].dtype == "int64"
    assert table["data.normalize"].tolist() == [True] * 5
    assert table["data.normalize"].dtype == bool
    assert table["model.hidden"].tolist() == ["[10, 5]"] * 5
    assert table["data.path"].tolist() == [None] * 5
    assert table["tags.sweep_job"].tolist()[:4] == ["0", "1", "2", "0"]


def test_a_sweep_run_id_keeps_that_sweeps_jobs(client, store):
    parent = parent_of(client, "a")
    table = dlpractice.results("lambd", sweep_run_id=parent, uri=store.uri)
    children = [r for r in stored_runs(client)
                if r.data.tags.get("mlflow.parentRunId") == parent]
    assert sorted(table["run_id"]) == sorted(r.info.run_id for r in children)
    assert len(children) == 3
    assert table["regularizer.lambd"].tolist() == [0.01, 0.1, 1.0]
    by_id = {r.info.run_id: r for r in children}
    assert table["dev_error"].tolist() == [by_id[i].data.metrics["dev_error"]
                                           for i in table["run_id"]]
    assert set(table["tags.sweep_id"]) == {"a"}
    other = dlpractice.results("lambd", sweep_run_id=parent_of(client, "b"), uri=store.uri)
    assert other["regularizer.lambd"].tolist() == [0.3]


def test_the_default_store_is_the_projects(store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    assert tracking.resolve_uri(None) == store.uri
    pd.testing.assert_frame_equal(dlpractice.results("lambd"),
                                  dlpractice.results("lambd", uri=store.uri))


def test_runs_beyond_one_search_page_are_all_read(store, monkeypatch):
    from dlpractice.tracking import results as module

    whole = dlpractice.results("lambd", uri=store.uri)
    monkeypatch.setattr(module, "PAGE", 2)
    pd.testing.assert_frame_equal(dlpractice.results("lambd", uri=store.uri), whole)


def test_a_deleted_experiment_is_no_experiment(store):
    exp_id = store.experiment_id("gone")
    store.client.delete_experiment(exp_id)
    with pytest.raises(DlpracticeError) as info:
        dlpractice.results("gone", uri=store.uri)
    assert str(info.value) == (f"no experiment 'gone' in the MLflow store {store.uri}; its "
                               "experiments: Default, empty, lambd")


def test_an_experiment_without_runs_is_an_empty_table(store):
    table = dlpractice.results("empty", uri=store.uri)
    assert table.empty and list(table.columns) == ATTRIBUTES


def test_a_bad_experiment_names_it_and_the_experiments_there(store):
    with pytest.raises(DlpracticeError) as info:
        dlpractice.results("lamdb", uri=store.uri)
    assert str(info.value) == (f"no experiment 'lamdb' in the MLflow store {store.uri}; its "
                               "experiments: Default, empty, lambd")


@pytest.mark.parametrize("which", ["child", "unknown", "malformed", "other experiment"])
def test_a_sweep_run_id_that_is_no_sweep_of_the_experiment_is_refused(client, store, which):
    parent = parent_of(client, "a")
    run_id = {
        "child": next(r.info.run_id for r in stored_runs(client)
                      if r.data.tags.get("mlflow.parentRunId") == parent),
        "unknown": "0" * 32,
        "malformed": "x' or '1' = '1",
        "other experiment": None,
    }[which]
    experiment_name = "lambd"
    if which == "other experiment":
        run_id, experiment_name = parent, "empty"
    with pytest.raises(DlpracticeError) as info:
        dlpractice.results(experiment_name, sweep_run_id=run_id, uri=store.uri)
    assert str(info.value) == (
        f"sweep_run_id={run_id!r} is not the parent run of a sweep of experiment "
        f"{experiment_name!r} (a run tagged sweep=true; a sweep prints it as `run: …/runs/<id>`)")


def test_a_missing_store_is_named_and_not_created(tmp_path):
    db = tmp_path / "none" / "mlflow.db"
    with pytest.raises(DlpracticeError) as info:
        dlpractice.results("lambd", uri=f"sqlite:///{db}")
    assert str(info.value) == f"no MLflow store at {db} (tracking URI sqlite:///{db})"
    assert not db.parent.exists()


def test_param_columns_are_typed_as_a_whole(tmp_path):
    """A column turns into numbers or booleans only when every value reads so."""
    store = tracking.Store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = store.client
    exp_id = store.experiment_id("crafted")
    params = [{"int": "1", "float": "0.5", "bool": "True", "none": "None", "list": "[1, 2]",
               "mixed": "he", "exp": "1e-07", "sign": "-3", "special": "inf", "words": "nan",
               "some_bool": "True", "some_int": "3", "path": "None"},
              {"int": "-2", "float": "2", "bool": "False", "mixed": "1", "exp": "2.5E+3",
               "sign": "+4", "special": "-inf", "words": "x", "some_bool": "None",
               "path": "/x.csv"}]
    for p in params:
        run = client.create_run(exp_id)
        for key, value in p.items():
            client.log_param(run.info.run_id, key, value)
        client.set_terminated(run.info.run_id)
    table = dlpractice.results("crafted", uri=store.uri)
    assert table["int"].tolist() == [1, -2] and table["int"].dtype == "int64"
    assert table["float"].tolist() == [0.5, 2.0] and table["float"].dtype == "float64"
    assert table["bool"].tolist() == [True, False] and table["bool"].dtype == bool
    assert table["none"].tolist() == [None, None]
    assert table["list"].tolist()[0] == "[1, 2]" and pd.isna(table["list"].tolist()[1])
    assert table["mixed"].tolist() == ["he", "1"]
    assert table["exp"].tolist() == [1e-07, 2500.0]
    assert table["sign"].tolist() == [-3, 4]
    assert table["special"].tolist() == [math.inf, -math.inf]
    assert table["words"].tolist() == ["nan", "x"]
    # a missing value (None, or no such param) leaves the others' type
    assert table["some_bool"].tolist() == [True, None]
    assert table["some_int"].tolist()[0] == 3 and pd.isna(table["some_int"].tolist()[1])
    path = table["path"].tolist()
    assert pd.isna(path[0]) and path[1] == "/x.csv"

