"""MLflow tracking (:mod:`dlpractice.tracking`) against a real SQLite store, and the plots that go
with a run."""

from __future__ import annotations

import errno
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from dlpractice import config, paths, pipeline, plots, report, tracking
from dlpractice.errors import DivergenceError, DlpracticeError
from dlpractice.tracking.runs import PARENT_RUN_TAG
from tests import reference as ref

# MLflow's own SQLAlchemy models trigger this at import; nothing to act on here.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")

ROOT = Path(__file__).resolve().parents[1]
METRIC_NAMES = ("train_accuracy", "dev_accuracy", "test_accuracy", "train_error", "dev_error",
                "test_error", "avoidable_bias", "variance")


def make_cfg(where: str | tracking.Store, experiment: str = "t", **overrides) -> config.Config:
    uri = where.uri if isinstance(where, tracking.Store) else where
    raw = {"train": {"iterations": 200, "record_every": 10}, "data": {"n_samples": 200},
           "tracking": {"uri": uri, "experiment": experiment}}
    for section, values in overrides.items():
        if isinstance(values, dict):
            raw.setdefault(section, {}).update(values)
        else:
            raw[section] = values
    return config.load(raw)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tracking.Store:
    """The module's store: one object, as a process passes it to whatever tracks."""
    return tracking.Store(f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}")


@pytest.fixture(scope="module")
def client(store):
    from mlflow.tracking import MlflowClient

    store.prepare()
    return MlflowClient(store.uri)


@pytest.fixture(scope="module")
def outcome(store):
    return pipeline.run_all(make_cfg(store))


@pytest.fixture(scope="module")
def run_folder(outcome, tmp_path_factory) -> dict[str, Path]:
    """What the app writes for the run (``report.write_run_outputs``), by label."""
    return report.write_run_outputs(outcome, tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def finished(store, outcome, run_folder):
    with tracking.RunTracker(outcome.cfg, store) as tracker:
        tracker.log_history(outcome.result)
        tracker.log_outcome(outcome)
        tracker.upload(run_folder)
    return tracker


def history(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


# -- a finished run ----------------------------------------------------------------------------


def test_finished_run_has_params_metrics_tags(client, outcome, finished):
    run = client.get_run(finished.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == config.run_name(outcome.cfg) == "he-none"
    params = run.data.params
    assert params["train.learning_rate"] == str(outcome.cfg.train.learning_rate)
    assert params["model.hidden"] == "[10, 5]"
    assert params["regularizer.keep_prob"] == "1.0"
    assert params["tracking.experiment"] == "t"
    expected = ref.evaluate(outcome.result.parameters, outcome.cfg.to_dict())
    for name in METRIC_NAMES:
        assert run.data.metrics[name] == pytest.approx(expected[name], abs=1e-12), name
    assert run.data.metrics["gradcheck_difference"] == pytest.approx(outcome.gradcheck.difference)
    assert run.data.metrics["train_seconds"] == pytest.approx(outcome.result.train_seconds)
    tags = run.data.tags
    assert tags["diagnosis"] == expected["diagnosis"]
    assert tags["recommendation"] == outcome.evaluation.diagnosis.recommendation
    assert "\n" not in tags["recommendation"]
    assert tags["dataset_fingerprint"] == outcome.data.fingerprint
    assert tags["config_hash"] == config.config_hash(outcome.cfg)
    assert "failure_reason" not in tags and "mlflow.parentRunId" not in tags
    git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.project_root(),
                         capture_output=True, text=True, check=False)
    if git.returncode == 0:
        assert tags["git_commit"] == git.stdout.strip()
    else:
        assert "git_commit" not in tags


def test_histories_have_every_recorded_point(client, outcome, finished):
    steps = list(range(0, 200, 10))
    assert outcome.result.iterations == steps
    cost = history(client, finished.run_id, "cost")
    assert [s for s, _ in cost] == steps
    np.testing.assert_allclose([v for _, v in cost], outcome.result.costs)
    dev = history(client, finished.run_id, "dev_cost")
    np.testing.assert_allclose([v for _, v in dev], outcome.result.dev_costs)
    n_layers = len(outcome.result.grad_norms[0])
    assert n_layers == 3
    for layer in range(n_layers):
        norms = history(client, finished.run_id, f"grad_norm_W{layer + 1}")
        assert [s for s, _ in norms] == steps
        np.testing.assert_allclose([v for _, v in norms],
                                   [row[layer] for row in outcome.result.grad_norms])


def test_artifacts_are_the_run_folder_and_parameters_load_without_pickle(
        client, outcome, finished, run_folder, tmp_path):
    import yaml

    names = {a.path for a in client.list_artifacts(finished.run_id)}
    assert names == {"config.yaml", "parameters.npz", "normalizer.npz", "cost_curve.png",
                     "grad_norms.png", "weight_histograms.png", "decision_boundary.png",
                     "history.csv", "metrics.json"}
    got = Path(client.download_artifacts(finished.run_id, "", str(tmp_path)))
    # every file is the caller's, byte for byte: tracking uploads, it does not write run files
    assert {path.name for path in run_folder.values()} == names
    for path in run_folder.values():
        assert (got / path.name).read_bytes() == path.read_bytes(), path.name
    params = ref.load_npz(got / "parameters.npz")  # allow_pickle=False
    assert sorted(params) == ["W1", "W2", "W3", "b1", "b2", "b3"]
    expected = ref.evaluate(params, outcome.cfg.to_dict())
    assert client.get_run(finished.run_id).data.metrics["dev_accuracy"] == pytest.approx(
        expected["dev_accuracy"], abs=1e-12)
    data, _ = ref.dataset(outcome.cfg.to_dict())
    mean, std = ref.normalizer(data["X_train"])
    normalizer = ref.load_npz(got / "normalizer.npz")
    np.testing.assert_allclose(normalizer["mean"], mean, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(normalizer["std"], std, rtol=1e-14)
    assert config.load(yaml.safe_load((got / "config.yaml").read_text())) == outcome.cfg
    for png in ("cost_curve.png", "grad_norms.png", "weight_histograms.png",
                "decision_boundary.png"):
        assert (got / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png


def test_experiment_opens_on_runs_table_and_artifacts_sit_next_to_the_db(client, store, finished):
    exp = client.get_experiment(finished.experiment_id)
    assert exp.name == "t"
    assert exp.tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
    db_dir = Path(store.uri.removeprefix("sqlite:///")).parent
    assert exp.artifact_location == (db_dir / "mlartifacts" / "t").as_uri()
    assert store.runs_url("t") == (
        f"http://127.0.0.1:5000/#/experiments/{finished.experiment_id}/runs")
    assert store.runs_url("t", host="localhost", port=8080) == (
        f"http://localhost:8080/#/experiments/{finished.experiment_id}/runs")
    # other names: runs of anything but letters, digits, '.', '_', '-' become one '_'; leading and
    # trailing '.'/'_' go; nothing left is "experiment"
    for name, folder in (("Bias & variance/λ=0.7", "Bias_variance_0.7"),
                         ("._Hidden-Name_.", "Hidden-Name"), (" pad ", "pad"), ("Xray", "Xray"),
                         ("///", "experiment")):
        exp = client.get_experiment(store.experiment_id(name))
        assert exp.artifact_location == (db_dir / "mlartifacts" / folder).as_uri(), name


def test_find_finished_run(store, outcome, finished):
    h = config.config_hash(outcome.cfg)
    assert store.find_finished_run("t", h) == finished.run_id
    assert store.find_finished_run("t", "0" * 64) is None
    assert store.find_finished_run("no-such-experiment", h) is None


def test_finished_runs_finds_a_sweeps_finished_configurations_in_one_search(
        store, outcome, finished, monkeypatch):
    """One search for many hashes (rows as run_summary gives them); each looked-up hash is then
    answered once without a query, a later ask queries again (it may have finished since)."""
    h, missing = config.config_hash(outcome.cfg), "1" * 64
    fresh = tracking.Store(store.uri)  # as a sweep's process opens it
    searches = []
    search = fresh.client.search_runs
    monkeypatch.setattr(fresh.client, "search_runs",
                        lambda *a, **k: searches.append(k.get("filter_string")) or search(*a, **k))
    found = fresh.finished_runs("t", [h, missing])
    assert found == {h: store.run_summary(finished.run_id)}
    assert len(searches) == 1
    assert fresh.find_finished_run("t", h) == finished.run_id
    assert fresh.find_finished_run("t", missing) is None
    assert len(searches) == 1
    assert fresh.find_finished_run("t", missing) is None and len(searches) == 2
    assert fresh.finished_runs("no-such-experiment", [h]) == {}
    assert fresh.finished_runs("t", []) == {}


def test_finished_runs_takes_the_run_a_jobs_folder_names_and_searches_for_the_others(
        store, monkeypatch):
    """A hash whose recorded run is FINISHED with it is answered by that run, even when a newer
    run has the hash too, in one search by run id; a recorded run that is not FINISHED, has another
    hash or is no run id at all leaves its hash to the search of the whole experiment (newest)."""
    client = store.client
    exp = store.experiment_id("recorded")

    def run(key: str, start: int, dev_error: float, status: str = "FINISHED") -> str:
        run_id = client.create_run(exp, start_time=start, tags={"config_hash": key}).info.run_id
        client.log_metric(run_id, "dev_error", dev_error)
        client.set_terminated(run_id, status)
        return run_id

    a, b, c = "a" * 64, "b" * 64, "c" * 64
    old, new = run(a, 1000, 0.3), run(a, 2000, 0.2)
    other, failed = run(b, 1500, 0.1), run(c, 3000, 0.5, status="FAILED")
    fresh = tracking.Store(store.uri)
    searches = []
    search = fresh.client.search_runs
    monkeypatch.setattr(fresh.client, "search_runs",
                        lambda *args, **kw: searches.append(args[1:2]) or search(*args, **kw))

    def found(recorded, keys=(a, b, c)):
        searches.clear()
        rows = fresh.finished_runs("recorded", keys, recorded)
        return {k: (row["run_id"], row["dev_error"]) for k, row in rows.items()}, len(searches)

    assert found(None) == ({a: (new, 0.2), b: (other, 0.1)}, 1)  # the newest of each hash
    assert found({a: old, b: other}, (a, b)) == ({a: (old, 0.3), b: (other, 0.1)}, 1)
    assert fresh.find_finished_run("recorded", a) == old  # answered as found, without a query
    assert found({a: old, b: "x' OR '1'='1"}) == ({a: (old, 0.3), b: (other, 0.1)}, 2)
    assert found({a: other, c: failed}) == ({a: (new, 0.2), b: (other, 0.1)}, 2)
    assert found({a: old}, ()) == ({}, 0)


def test_stores_keep_one_store_per_resolved_uri(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/env.db")
    stores = tracking.Stores()
    env = stores.get(None)
    assert env.uri == f"sqlite:///{tmp_path}/env.db"
    assert stores.get(f"sqlite:///{tmp_path}/env.db") is env
    other = stores.get(f"sqlite:///{tmp_path}/other.db")
    assert other is not env and other.uri == f"sqlite:///{tmp_path}/other.db"


def test_run_summary_is_one_flat_row(client, store, outcome, finished):
    run = client.get_run(finished.run_id)
    expected = ref.evaluate(outcome.result.parameters, outcome.cfg.to_dict())
    row = store.run_summary(finished.run_id)
    assert row == {
        "run_id": finished.run_id, "setting": "he-none", "status": "FINISHED",
        **run.data.metrics,  # the latest value of each metric
        "diagnosis": expected["diagnosis"],
        "recommendation": outcome.evaluation.diagnosis.recommendation,
        "config_hash": ref.config_hash(outcome.cfg.to_dict())}
    assert row["cost"] == outcome.result.costs[-1]
    assert row["dev_accuracy"] == pytest.approx(expected["dev_accuracy"], abs=1e-12)


def test_an_early_stopped_run_logs_the_dev_cost_of_the_weights_it_kept(client, store):
    """``dev_cost``'s last point belongs to the weights early stopping discarded; ``best_dev_cost``
    is the dev cost of the saved parameters, recomputed here from the raw splits."""
    cfg = make_cfg(store, experiment="early", train={"iterations": 3000, "record_every": 50,
                                                     "learning_rate": 0.3},
                   model={"hidden": [30, 30]}, regularizer={"early_stopping_patience": 3},
                   gradcheck={"enabled": False})
    outcome = pipeline.run_all(cfg)
    with tracking.RunTracker(cfg, store) as tracker:
        tracker.log_history(outcome.result)
        tracker.log_outcome(outcome)
    data, _ = ref.dataset(cfg.to_dict())
    mean, std = ref.normalizer(data["X_train"])
    kept = ref.cost(outcome.result.parameters, (data["X_dev"] - mean) / std, data["Y_dev"])
    metrics = client.get_run(tracker.run_id).data.metrics
    dev = history(client, tracker.run_id, "dev_cost")
    assert outcome.result.stopped_early and dev[-1][0] > metrics["best_iteration"] > 0
    assert metrics["best_dev_cost"] == pytest.approx(kept, rel=1e-12)
    assert dict(dev)[metrics["best_iteration"]] == pytest.approx(kept, rel=1e-12)
    assert metrics["dev_cost"] == dev[-1][1] > kept + 1e-3  # the discarded weights' point
    assert report.outcome_metrics(outcome)["best_dev_cost"] == metrics["best_dev_cost"]


def test_has_finished_runs(client, store, finished):
    assert store.has_finished_runs("t")
    assert not store.has_finished_runs("no-such-experiment")
    client.create_experiment("only-running")
    store.experiment_id("only-running")
    with tracking.RunTracker(make_cfg(store, experiment="only-running"), store):
        assert not store.has_finished_runs("only-running")  # one RUNNING run only
    assert store.has_finished_runs("only-running")


# -- failed, killed, nested --------------------------------------------------------------------


def test_exception_marks_the_run_failed_with_a_one_line_reason(client, store):
    cfg = make_cfg(store, experiment="failures")
    error = DivergenceError("training diverged at iteration 12: non-finite values (nan/inf) in "
                            "layer 2; lower train.learning_rate\nsecond line", iteration=12, layer=2)
    with pytest.raises(DivergenceError), tracking.RunTracker(cfg, store) as tracker:
        tracker.callback(0, 0.7, 0.71)
        raise error
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["failure_reason"] == (
        "training diverged at iteration 12: non-finite values (nan/inf) in layer 2; "
        "lower train.learning_rate")
    assert history(client, tracker.run_id, "cost") == [(0, 0.7)]
    # a failed run does not count as done
    assert store.find_finished_run("failures", tracker.config_hash) is None


def test_keyboard_interrupt_marks_the_run_killed_with_the_partial_history(client, store):
    cfg = make_cfg(store, experiment="interrupts", train={"iterations": 500})

    def stop_at_100(i, cost, dev_cost):
        tracker.callback(i, cost, dev_cost)
        if i == 100:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), tracking.RunTracker(cfg, store) as tracker:
        pipeline.run_all(cfg, callback=stop_at_100)
    run = client.get_run(tracker.run_id)
    assert run.info.status == "KILLED"
    assert run.info.end_time is not None
    cost = history(client, tracker.run_id, "cost")
    assert [s for s, _ in cost] == list(range(0, 101, 10))
    assert [s for s, _ in history(client, tracker.run_id, "dev_cost")] == list(range(0, 101, 10))


def test_parent_and_nested_runs(client, store):
    cfg = make_cfg(store, experiment="sweeps")
    parent = tracking.start_sweep_run(store, "sweeps", "sweep-x", tags={"sweep_id": "x"})
    with (tracking.RunTracker(cfg, store, parent_run_id=parent, tags={"sweep_id": "x"}) as child,
          tracking.RunTracker(cfg, store, nested=True) as grandchild):
        pass
    assert client.get_run(child.run_id).data.tags["mlflow.parentRunId"] == parent
    assert client.get_run(child.run_id).data.tags["sweep_id"] == "x"
    assert client.get_run(grandchild.run_id).data.tags["mlflow.parentRunId"] == child.run_id
    assert client.get_run(parent).info.status == "RUNNING"
    tracking.finish_sweep_run(store, parent, files=[], tags={"jobs": "1"})
    assert client.get_run(parent).info.status == "FINISHED"


def test_a_sweeps_choice_is_recorded_on_its_parent_and_its_selected_job(client, store):
    parent = tracking.start_sweep_run(store, "chosen", "sweep-c", tags={"sweep_id": "c"})
    cfg = make_cfg(store, experiment="chosen")
    with (tracking.RunTracker(cfg, store, parent_run_id=parent) as other,
          tracking.RunTracker(cfg, store, parent_run_id=parent, test_hidden=True) as chosen):
        pass
    tracking.mark_selected(store, chosen.run_id)
    tracking.finish_sweep_run(store, parent, tags={"selected_run_id": chosen.run_id},
                              metrics={"selected_test_accuracy": 0.875,
                                       "selected_test_error": 0.125})
    got = client.get_run(parent)
    assert got.info.status == "FINISHED"
    assert got.data.tags["selected_run_id"] == chosen.run_id
    assert got.data.metrics == {"selected_test_accuracy": 0.875, "selected_test_error": 0.125}
    assert [(m.step, m.value) for m in client.get_metric_history(parent, "selected_test_error")] == [
        (0, 0.125)]
    tags = client.get_run(chosen.run_id).data.tags
    assert tags["selected"] == "true" and tags["test_hidden"] == "true"
    assert tags["config_hash"] == ref.config_hash(cfg.to_dict(), test_hidden=True)
    tags = client.get_run(other.run_id).data.tags
    assert "selected" not in tags and "test_hidden" not in tags
    assert tags["config_hash"] == ref.config_hash(cfg.to_dict())


def test_a_runs_uploaded_files_are_copied_into_a_folder(client, store, finished, run_folder,
                                                       tmp_path):
    got = store.download(finished.run_id, ("parameters.npz", "normalizer.npz", "nothing.npz"),
                         tmp_path)
    assert sorted(p.name for p in got) == ["normalizer.npz", "parameters.npz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["normalizer.npz", "parameters.npz"]
    for path in got:
        assert path.parent == tmp_path
        assert path.read_bytes() == run_folder[path.stem].read_bytes()


def test_a_lost_jobs_open_runs_end_killed_with_the_reason(client, store):
    exp_id = store.experiment_id("lost")

    def run(sweep_id: str, job: str, status: str = "RUNNING") -> str:
        run_id = client.create_run(exp_id, tags={"sweep_id": sweep_id, "sweep_job": job}).info.run_id
        if status != "RUNNING":
            client.set_terminated(run_id, status=status)
        return run_id

    lost = [run("s1", "1"), run("s1", "1")]
    others = {run("s1", "2"): "RUNNING", run("s2", "1"): "RUNNING",
              run("s1", "1", "FINISHED"): "FINISHED", run("s1", "10"): "RUNNING"}
    closed = tracking.close_lost_job_runs(store, "lost", "s1", 1, "worker died\ntraceback")
    assert sorted(closed) == sorted(lost)
    for run_id in lost:
        got = client.get_run(run_id)
        assert (got.info.status, got.data.tags["failure_reason"]) == ("KILLED", "worker died")
    for run_id, status in others.items():
        got = client.get_run(run_id)
        assert (got.info.status, "failure_reason" in got.data.tags) == (status, False)
    assert tracking.close_lost_job_runs(store, "lost", "s1", 1, "again") == []
    assert tracking.close_lost_job_runs(store, "no such experiment", "s1", 1, "x") == []
    with pytest.raises(ValueError, match="sweep_id"):
        tracking.close_lost_job_runs(store, "lost", "s1' or tags.x = 'y", 1, "x")


SECRET_KEYS = ("api_key", "password", "authToken", "client_secret", "aws.secretAccessKey",
               "keys", "API_KEY", "password_file")
KEPT_KEYS = ("monkey", "keyboard_layout", "keep_prob")


def test_secret_looking_params_are_not_logged(client, store):
    cfg = make_cfg(store, experiment="secrets")
    base = cfg.to_dict()
    base["tracking"].update({key: f"{key}-VALUE" for key in (*SECRET_KEYS, *KEPT_KEYS)})
    cfg.to_dict = lambda: base  # a config carrying credentials (e.g. from a plugin)
    with tracking.RunTracker(cfg, store, tags={"access_token": "t", "owner": "me"}) as tracker:
        pass
    run = client.get_run(tracker.run_id)
    logged = {k.removeprefix("tracking."): v for k, v in run.data.params.items()}
    assert not set(SECRET_KEYS) & set(logged)
    assert {key: logged[key] for key in KEPT_KEYS} == {key: f"{key}-VALUE" for key in KEPT_KEYS}
    assert run.data.params["regularizer.keep_prob"] == "1.0"
    assert "access_token" not in run.data.tags and run.data.tags["owner"] == "me"


# -- store resolution and preparation ----------------------------------------------------------


def test_resolve_uri_precedence(tmp_path, monkeypatch):
    workspace, project = tmp_path / "ws", tmp_path / "proj"
    (project / "conf").mkdir(parents=True)
    (project / "dvc.yaml").write_text("stages: {}\n")
    (project / "sub").mkdir()
    monkeypatch.chdir(project / "sub")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert paths.project_root() == project.resolve()
    assert tracking.resolve_uri(None) == f"sqlite:///{project.resolve()}/mlflow.db"
    monkeypatch.setenv("DVC_ROOT", str(workspace))
    assert tracking.resolve_uri(None) == f"sqlite:///{workspace.resolve()}/mlflow.db"
    assert tracking.resolve_uri("sqlite:///rel/x.db") == f"sqlite:///{workspace.resolve()}/rel/x.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5001")
    assert tracking.resolve_uri(None) == "http://127.0.0.1:5001"
    assert tracking.resolve_uri("sqlite:////abs/explicit.db") == "sqlite:////abs/explicit.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.delenv("DVC_ROOT")
    assert paths.project_root() == ROOT  # no dvc.yaml + conf/ above: this repository


def test_unreachable_server_fails_fast_with_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    uri = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    with pytest.raises(DlpracticeError) as info:
        tracking.Store(uri).prepare()
    assert time.perf_counter() - start < 5
    refused = ConnectionRefusedError(errno.ECONNREFUSED, os.strerror(errno.ECONNREFUSED))
    assert str(info.value) == (f"MLflow tracking server {uri} is unreachable: {refused}; "
                               "start it with `make server` or set tracking.uri")


def serve(handler_get):
    """A local HTTP server answering GET with ``handler_get(handler)``; returns (server, uri)."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            handler_get(self)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.mark.parametrize("status,ok", [(200, True), (404, True), (499, True), (500, False),
                                       (503, False)])
def test_server_health_is_checked_once(status, ok):
    hits = []

    def answer(handler):
        hits.append(handler.path)
        handler.send_response(status)
        handler.end_headers()

    server, uri = serve(answer)
    uri += "/mlflowX/"  # served under a path, as behind a reverse proxy
    try:
        store = tracking.Store(uri)
        if ok:  # up (a 4xx: it answers, e.g. behind a proxy without /health)
            store.check()
            store.prepare()
            store.prepare()  # remembered: asked once per Store object
        else:
            with pytest.raises(DlpracticeError) as info:
                store.prepare()
            assert str(info.value) == (
                f"MLflow tracking server {uri} is unreachable: /health answered HTTP {status}; "
                "start it with `make server` or set tracking.uri")
        assert hits == ["/mlflowX/health"]
        if ok:  # another object (another process's) asks again
            tracking.Store(uri).check()
            assert hits == ["/mlflowX/health"] * 2
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_that_does_not_answer_fails_after_the_health_timeout():
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # the kernel accepts the connection; nobody ever answers
    uri = f"http://127.0.0.1:{listener.getsockname()[1]}"
    give_up = threading.Timer(20, listener.close)  # bounds the test if no timeout is applied
    give_up.start()
    start = time.perf_counter()
    try:
        with pytest.raises(DlpracticeError) as info:
            tracking.Store(uri).prepare()
        elapsed = time.perf_counter() - start
    finally:
        give_up.cancel()
        listener.close()
    assert 3.0 <= elapsed < 10  # tracking.store.HEALTH_TIMEOUT_S
    assert str(info.value) == (f"MLflow tracking server {uri} is unreachable: timed out; "
                               "start it with `make server` or set tracking.uri")


@pytest.mark.parametrize("uri", ["file:///tmp/mlruns", "./mlruns", "/tmp/mlruns"])
def test_plain_folder_stores_are_refused(uri):
    with pytest.raises(DlpracticeError, match=r"sqlite:///") as info:
        tracking.Store(uri).prepare()
    assert "\n" not in str(info.value)
    assert str(info.value) == (
        f"tracking store {uri!r} is a plain folder, which MLflow 3 refuses as a tracking store; "
        "use a database instead, e.g. tracking.uri=sqlite:///<absolute path>/mlflow.db")


def test_check_needs_no_mlflow_and_creates_the_sqlite_folder(tmp_path):
    """``Store.check`` is what a sweep runs before training starts: fast, without MLflow."""
    db = tmp_path / "a" / "b" / "mlflow.db"
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = textwrap.dedent(f"""
        import sys
        from dlpractice import tracking
        from dlpractice.errors import DlpracticeError
        tracking.Store({f"sqlite:///{db}"!r}).check()
        try:
            tracking.Store({f"sqlite:///{blocker}/mlflow.db"!r}).check()
        except DlpracticeError as exc:
            print(exc)
        print(sorted(m for m in ("mlflow", "sqlalchemy") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")}).stdout
    error = FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(blocker))
    assert out.splitlines() == [
        f"cannot create the folder of the MLflow store sqlite:///{blocker}/mlflow.db: {error}",
        "[]"]
    assert db.parent.is_dir() and not db.exists()


def test_parallel_first_use_creates_the_schema_once_and_runs_close_at_exit(tmp_path):
    """Three processes prepare a fresh store at once; one of them ends with two runs (one nested
    in the other) and a sweep run still open, and another run and sweep run finished."""
    uri = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    script = textwrap.dedent(f"""
        import sys
        from dlpractice import config, tracking
        store = tracking.Store({uri!r})
        store.prepare()
        if sys.argv[1] == "leave-open":
            cfg = config.load({{"tracking": {{"experiment": "atexit"}}}})
            with tracking.RunTracker(cfg, store) as done:
                done.callback(0, 0.7, None)
            tracker = tracking.RunTracker(cfg, store).__enter__()
            tracker.callback(0, 0.69, None)
            tracker.callback(10, 0.5, None)
            inner = tracking.RunTracker(cfg, store, nested=True).__enter__()
            left_open = tracking.start_sweep_run(store, "atexit", "sweep-left-open")
            finished = tracking.start_sweep_run(store, "atexit", "sweep-finished")
            tracking.finish_sweep_run(store, finished)
            print(tracker.run_id, inner.run_id, done.run_id, left_open, finished)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    procs = [subprocess.Popen([sys.executable, "-c", script, mode], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for mode in ("prepare", "prepare", "leave-open")]
    outputs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    run_id, inner, done, left_open, finished = outputs[-1][0].strip().splitlines()[-1].split()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    store = tracking.Store(uri)
    run = client.get_run(run_id)
    assert run.info.status == "KILLED"
    assert history(client, run_id, "cost") == [(0, 0.69), (10, 0.5)]
    assert client.get_run(inner).info.status == "KILLED"
    assert client.get_run(inner).data.tags[PARENT_RUN_TAG] == run_id
    # the inner run is closed first (its handler was registered last)
    assert client.get_run(inner).info.end_time <= run.info.end_time
    # a run closed in time is left as it was (its handler went with it)
    assert store.run_summary(done) == {
        "run_id": done, "setting": "he-none", "status": "FINISHED", "cost": 0.7,
        "config_hash": run.data.tags["config_hash"]}
    # a sweep's run belongs to its caller (the sweep callback closes it at exit): left RUNNING
    assert client.get_run(left_open).info.status == "RUNNING"
    assert client.get_run(finished).info.status == "FINISHED"
    cfg = config.load({"tracking": {"uri": uri, "experiment": "atexit"}})
    assert store.run_summary(run_id) == {
        "run_id": run_id, "setting": "he-none", "status": "KILLED", "cost": 0.5,
        "config_hash": ref.config_hash(cfg.to_dict()),
        "failure_reason": "the process ended with the run still open"}
    tracking.finish_sweep_run(store, left_open, status="KILLED")
    assert client.get_run(left_open).info.status == "KILLED"
    # while its process lives, a sweep run stays open until finished
    here = tracking.start_sweep_run(store, "atexit", "sweep-here")
    assert client.get_run(here).info.status == "RUNNING"
    tracking.finish_sweep_run(store, here, status="KILLED")
    assert client.get_run(here).info.status == "KILLED"


def test_a_run_that_cannot_be_closed_at_exit_is_named_in_one_line(tmp_path):
    """The store broke while a run was open: at exit, the last warning names the run and why."""
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    garbage = b"this is not a database" * 100
    script = textwrap.dedent(f"""
        from pathlib import Path
        from dlpractice import config, tracking
        cfg = config.load({{"tracking": {{"experiment": "atexit"}}}})
        tracker = tracking.RunTracker(cfg, tracking.Store({uri!r})).__enter__()
        print(tracker.run_id, flush=True)
        for path in Path({str(tmp_path / 'store')!r}).glob("mlflow.db*"):
            path.write_bytes({garbage!r})
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip()
    (tmp_path / "garbage").write_bytes(garbage)
    with pytest.raises(sqlite3.DatabaseError) as why:
        sqlite3.connect(tmp_path / "garbage").execute("SELECT * FROM sqlite_master")
    assert proc.stderr.splitlines()[-1] == (
        f"could not close MLflow run {run_id} as KILLED: (sqlite3.DatabaseError) {why.value}")


def test_import_is_cheap():
    code = ("import sys, dlpractice.tracking, dlpractice.plots; "
            "print(sorted(m for m in ('mlflow', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert out.stdout.strip() == "[]"


# -- plots -------------------------------------------------------------------------------------


def _png_size(path: Path | None) -> tuple[int, int] | None:
    """(width, height) in pixels of the PNG at ``path``; None when there is none."""
    if path is None or not path.is_file():
        return None
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", path
    assert data[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82", path  # written to the end
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_every_plot_writes_a_png_of_its_size(outcome, tmp_path):
    """Sizes at 100 dpi: 6x4 inches for a history, 3x2.6 per weight histogram, 4x3.8 per
    boundary panel, and the bias/variance chart widening with the settings."""
    r, s, act = outcome.result, outcome.splits, outcome.cfg.model.activation
    assert sorted(k for k in r.parameters if k.startswith("W")) == ["W1", "W2", "W3"]
    sizes = {
        "cost": plots.cost_curve(r, tmp_path / "cost.png"),
        "grads": plots.grad_norms(r, tmp_path / "grads.png"),
        "weights": plots.weight_histograms(r.parameters, tmp_path / "w.png"),
        "boundary": plots.decision_boundary(r.parameters, s.X_train, s.Y_train, act,
                                            tmp_path / "db.png", title="he-none"),
        "side by side": plots.boundaries_side_by_side(
            [("a", r.parameters, s.X_train, s.Y_train, act),
             ("b", r.parameters, s.X_dev, s.Y_dev, act)], tmp_path / "sbs.png"),
        "curves": plots.cost_curves([("a", r.iterations, r.costs),
                                     ("b", r.iterations, r.dev_costs)],
                                    tmp_path / "curves.png", target=0.3),
        "layers": plots.layer_norms(
            [("he", {"act_rms": [1.0, 0.5], "grad_norm": [0.2, 0.1, 0.05]}),
             ("zeros", {"act_rms": [0.0, 0.0], "grad_norm": [0.0, np.inf]})],
            tmp_path / "layers.png"),
        "bias/variance": plots.bias_variance_chart(
            [{"setting": "a", "train_error": 0.1, "dev_error": 0.2, "bayes_error": 0.05},
             {"setting": "b", "train_error": None, "dev_error": None, "bayes_error": 0.05}],
            tmp_path / "nested" / "bv.png"),
        "6 settings": plots.bias_variance_chart(
            [{"setting": f"setting {k}", "train_error": 0.1, "dev_error": 0.2 + k / 100,
              "bayes_error": k / 100} for k in range(6)], tmp_path / "bv6.png"),
    }
    assert {name: _png_size(path) for name, path in sizes.items()} == {
        "cost": (600, 400), "grads": (600, 400), "weights": (900, 260), "boundary": (500, 450),
        "side by side": (800, 380), "curves": (650, 420), "layers": (1000, 400),
        # six settings slant their labels: 0.07 inch a character of the longest ("setting 5")
        # more to the width (8.6 + 0.63) and half of it to the height (4.2 + 0.315)
        "bias/variance": (500, 420), "6 settings": (923, 451)}


def test_decision_boundary_needs_2d_data(tmp_path):
    params = {"W1": np.ones((2, 3)), "b1": np.zeros((2, 1)), "W2": np.ones((1, 2)),
              "b2": np.zeros((1, 1))}
    X = np.zeros((3, 5))
    assert plots.decision_boundary(params, X, np.zeros((1, 5)), "relu", tmp_path / "x.png") is None
    assert plots.decision_boundary(params, np.zeros((2, 0)), np.zeros((1, 0)), "relu",
                                   tmp_path / "x.png") is None
    assert not (tmp_path / "x.png").exists()


# -- the per-run plots ------------------------------------------------------------------------

RUN_PLOTS = ("cost_curve.png", "grad_norms.png", "weight_histograms.png", "decision_boundary.png")


@pytest.fixture(scope="module")
def runs():
    """Two different runs of the same layout, the data to draw them on."""
    from dlpractice.data.generators import football_like
    from dlpractice.nn import TrainConfig, train

    X, Y, X_dev, Y_dev = football_like(0)
    a, b = (train(X, Y, TrainConfig(layer_dims=(2, 8, 3, 1), learning_rate=lr, iterations=400,
                                    record_every=20, seed=seed), X_dev=X_dev, Y_dev=Y_dev)
            for lr, seed in ((0.3, 0), (0.05, 1)))
    return a, b, X, Y


def _draw_run(result, X, Y, folder: Path) -> dict[str, bytes]:
    plots.cost_curve(result, folder / "cost_curve.png")
    plots.grad_norms(result, folder / "grad_norms.png")
    plots.weight_histograms(result.parameters, folder / "weight_histograms.png")
    assert plots.decision_boundary(result.parameters, X, Y, "relu",
                                   folder / "decision_boundary.png", title="run") is not None
    return {name: (folder / name).read_bytes() for name in RUN_PLOTS}


def test_a_run_draws_the_same_figures_whatever_was_drawn_before(runs, tmp_path):
    """b drawn after a in this process equals b drawn alone in a fresh process."""
    import pickle

    a, b, X, Y = runs
    first = _draw_run(a, X, Y, tmp_path / "a")
    here = _draw_run(b, X, Y, tmp_path / "here")
    (tmp_path / "b.pkl").write_bytes(pickle.dumps((b, X, Y)))
    code = textwrap.dedent(f"""
        import pickle, sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_tracking import _draw_run
        b, X, Y = pickle.loads(Path({str(tmp_path / "b.pkl")!r}).read_bytes())
        _draw_run(b, X, Y, Path({str(tmp_path / "there")!r}))
    """)
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    for name in RUN_PLOTS:
        assert first[name] != here[name], name
        assert (tmp_path / "there" / name).read_bytes() == here[name], name


def test_plots_of_runs_with_little_or_odd_data(runs, tmp_path):
    """Nothing recorded, infinite or missing costs, one layer, a layer without a finite weight,
    3-D data: each still gives its figure (or, for the boundary, none) at its usual size."""
    from dlpractice.data.generators import football_like
    from dlpractice.nn import TrainResult

    a, b, X, Y = runs
    empty = TrainResult(parameters={}, network=None)
    diverged = TrainResult(parameters=b.parameters, network=None, iterations=[0, 10, 20, 30],
                           costs=[0.7, np.inf, np.nan, 0.01], dev_costs=[0.7, 0.8, np.inf, 0.9],
                           grad_norms=[[1.0, np.nan], [np.inf, 0.0], [0.1, 0.1], [0.0, 0.0]])
    one_layer = TrainResult(parameters={"W1": np.array([[0.5, -0.5]]), "b1": np.zeros((1, 1))},
                            network=None, iterations=[0, 10], costs=[0.7, 0.6],
                            grad_norms=[[0.3], [0.2]])
    drawn = {
        "empty cost": plots.cost_curve(empty, tmp_path / "empty_cost.png"),
        "empty grads": plots.grad_norms(empty, tmp_path / "empty_grads.png"),
        "no weights": plots.weight_histograms({}, tmp_path / "no_weights.png"),
        "diverged cost": plots.cost_curve(diverged, tmp_path / "diverged_cost.png"),
        "diverged grads": plots.grad_norms(diverged, tmp_path / "diverged_grads.png"),
        "nan weights": plots.weight_histograms({"W1": np.full((3, 2), np.nan),
                                                "W2": np.ones((1, 3))}, tmp_path / "nan_w.png"),
        "one layer cost": plots.cost_curve(one_layer, tmp_path / "one_cost.png"),
        "one layer grads": plots.grad_norms(one_layer, tmp_path / "one_grads.png"),
        "one layer weights": plots.weight_histograms(one_layer.parameters, tmp_path / "one_w.png"),
        "one layer boundary": plots.decision_boundary(
            {"W1": np.array([[1.0, -1.0]]), "b1": np.zeros((1, 1))}, X, Y, "relu",
            tmp_path / "one_db.png"),
        "no curves": plots.cost_curves([], tmp_path / "no_curves.png"),
        "no panels": plots.boundaries_side_by_side([], tmp_path / "no_panels.png"),
        "no rows": plots.bias_variance_chart([], tmp_path / "no_rows.png"),
        "3-D boundary": plots.decision_boundary(
            a.parameters, football_like(0)[0][:1].repeat(3, axis=0), Y, "relu",
            tmp_path / "3d.png"),
    }
    assert {name: _png_size(path) for name, path in drawn.items()} == {
        "empty cost": (600, 400), "empty grads": (600, 400), "no weights": (300, 260),
        "diverged cost": (600, 400), "diverged grads": (600, 400), "nan weights": (600, 260),
        "one layer cost": (600, 400), "one layer grads": (600, 400),
        "one layer weights": (300, 260), "one layer boundary": (500, 450),
        "no curves": (650, 420), "no panels": (400, 380), "no rows": (500, 420),
        "3-D boundary": None}
    assert not (tmp_path / "3d.png").exists()
    # each empty figure names the history that is missing
    assert drawn["empty cost"].read_bytes() != drawn["empty grads"].read_bytes()


def test_a_history_of_mismatched_lengths_is_an_error(runs, tmp_path):
    from dlpractice.nn import TrainResult

    a, b, X, Y = runs
    broken = TrainResult(parameters=b.parameters, network=None, iterations=[0, 1],
                         costs=[0.7, 0.6, 0.5], grad_norms=[[1.0, 1.0, 1.0]] * 3)
    with pytest.raises(ValueError):
        plots.cost_curve(broken, tmp_path / "broken.png")
    assert not (tmp_path / "broken.png").exists()
    assert _draw_run(b, X, Y, tmp_path / "after") == _draw_run(b, X, Y, tmp_path / "again")


def test_plots_from_several_threads(runs, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    a, b, X, Y = runs
    expected = [_draw_run(r, X, Y, tmp_path / f"seq{k}") for k, r in enumerate((a, b))]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda k: _draw_run((a, b)[k % 2], X, Y, tmp_path / f"t{k}"), range(8)))
    for k, drawing in enumerate(got):
        assert drawing == expected[k % 2]


# -- store preparation on real SQLite files ---------------------------------------------------


@pytest.fixture(scope="module")
def template_db(client, store, tmp_path_factory) -> Path:
    """A database at MLflow's current schema in rollback-journal mode: a consistent copy (sqlite's
    backup API) of the module's store. Copies of it are stores this process has never opened."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    source, copy = sqlite3.connect(store.uri.removeprefix("sqlite:///")), sqlite3.connect(path)
    try:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")
    finally:
        source.close()
        copy.close()
    return path


def store_copy(template_db: Path, folder: Path) -> tuple[Path, str]:
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "mlflow.db"
    shutil.copyfile(template_db, db)
    return db, f"sqlite:///{db}"


def sql(db: Path, query: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def journal_mode(db: Path) -> str:
    return sql(db, "PRAGMA journal_mode")[0][0]


def schema_version(db: Path) -> str:
    return sql(db, "SELECT version_num FROM alembic_version")[0][0]


def test_prepare_store_switches_the_database_to_wal_and_writes_nothing_else(
        template_db, tmp_path, monkeypatch):
    db, uri = store_copy(template_db, tmp_path / "store")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    experiments = sql(db, "SELECT experiment_id, name FROM experiments ORDER BY experiment_id")
    assert journal_mode(db) == "delete"
    tracking.Store(uri).prepare()
    assert journal_mode(db) == "wal"
    assert (tmp_path / "store" / "mlflow.db-init.lock").is_file()
    assert sql(db, "SELECT experiment_id, name FROM experiments ORDER BY experiment_id") == \
        experiments
    assert os.listdir(tmp_path / "cwd") == []  # no other store opened on the way


def test_an_in_memory_store_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tracking.Store("sqlite:///:memory:").prepare()
    assert os.listdir(tmp_path) == []


def test_a_store_that_cannot_use_wal_keeps_its_journal_and_says_why(template_db, tmp_path,
                                                                     caplog):
    db, uri = store_copy(template_db, tmp_path / "store")
    # Another connection in the middle of a write transaction (a RESERVED lock: readers may go
    # on, but the journal mode cannot change; sqlite answers at once, without waiting).
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        with caplog.at_level(logging.INFO, logger="dlpractice.tracking"):
            tracking.Store(uri).prepare()
        assert journal_mode(db) == "delete"
        con = sqlite3.connect(db)
        with pytest.raises(sqlite3.OperationalError) as by_hand:  # the same switch, by hand
            con.execute("PRAGMA journal_mode=WAL")
        con.close()
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert tracking_log(caplog) == [("INFO", f"could not switch {db} to WAL: {by_hand.value}")]


def prepare_in_thread(uri: str):
    import threading

    outcome: list[object] = []

    def work():
        try:
            outcome.append(tracking.Store(uri).prepare())
        except BaseException as exc:  # reported by the test
            outcome.append(exc)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    return worker, outcome


@pytest.mark.parametrize("with_filelock", [True, False], ids=["filelock", "flock-fallback"])
def test_store_preparation_holds_the_init_lock_next_to_the_database(
        template_db, tmp_path, monkeypatch, with_filelock):
    import fcntl
    import gc
    import warnings

    if not with_filelock:
        # The optional `filelock` package made unimportable: the documented flock fallback.
        monkeypatch.setitem(sys.modules, "filelock", None)
    # First use, nobody else around: the lock file is created, then released and closed.
    db, uri = store_copy(template_db, tmp_path / "a")
    lock = tmp_path / "a" / "mlflow.db-init.lock"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        tracking.Store(uri).prepare()
        gc.collect()
    assert [str(w.message) for w in caught if "init.lock" in str(w.message)] == []
    assert journal_mode(db) == "wal"
    with lock.open() as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError if still held
    # Another process holds the lock: preparation waits until it is released.
    db, uri = store_copy(template_db, tmp_path / "b")
    with (tmp_path / "b" / "mlflow.db-init.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        worker, outcome = prepare_in_thread(uri)
        worker.join(2.0)
        assert worker.is_alive() and outcome == []
        assert journal_mode(db) == "delete"
    worker.join(120)
    assert outcome == [None]
    assert journal_mode(db) == "wal"


NEWER_SCHEMA = "ffffffffffff"  # a revision this MLflow does not know (a newer MLflow's store)


def store_of_another_schema(template_db: Path, folder: Path) -> tuple[Path, str]:
    """A store with every current table but another schema revision: what MLflow reports as an
    "out-of-date database schema" (a store missing some of today's tables MLflow migrates itself
    when it opens it, so this is the case prepare_store has to handle)."""
    db, uri = store_copy(template_db, folder)
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE alembic_version SET version_num = ?", (NEWER_SCHEMA,))
    con.close()
    return db, uri


def backups(folder: Path) -> list[Path]:
    return sorted(folder.glob("mlflow.db.bak-*"))


def backup_names(start: float, end: float) -> set[str]:
    """The backup names possible for a backup taken between the times ``start`` and ``end``."""
    return {f"mlflow.db.bak-{time.strftime('%Y%m%d-%H%M%S', time.localtime(t))}"
            for t in range(int(start), int(end) + 2)}


def tracking_log(caplog) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "dlpractice.tracking"]


def test_a_store_of_an_unknown_schema_is_backed_up_then_refused_with_one_line(
        template_db, tmp_path, caplog):
    """MLflow's real `mlflow db upgrade` cannot migrate a store from a newer MLflow."""
    db, uri = store_of_another_schema(template_db, tmp_path / "store")
    before = db.read_bytes()
    start = time.time()
    with caplog.at_level(logging.WARNING, logger="dlpractice.tracking"), \
            pytest.raises(DlpracticeError) as info:
        tracking.Store(uri).prepare()
    [backup] = backups(tmp_path / "store")
    assert backup.name in backup_names(start, time.time())
    assert str(info.value) == (
        f"cannot upgrade the MLflow store {uri} (backup at {backup}): "
        f"alembic.util.exc.CommandError: Can't locate revision identified by '{NEWER_SCHEMA}'")
    assert backup.read_bytes() == before == db.read_bytes()
    assert tracking_log(caplog) == [
        ("WARNING", f"upgrading the MLflow schema of {db} (backup: {backup})")]


# A stand-in for MLflow's CLI, found first on PYTHONPATH by `python -m mlflow` in the child
# process only: the real `mlflow db upgrade` cannot succeed on a store MLflow calls out of date
# (see above), nor fail without output or with a chosen message. It records its arguments, can
# set the schema revision of the store it is given, and answers as the test says.
FAKE_MLFLOW_MAIN = """
import json, os, sqlite3, sys
with open(os.environ["FAKE_MLFLOW_ARGV"], "w") as f:
    json.dump(sys.argv[1:], f)
if os.environ.get("FAKE_MLFLOW_SET_VERSION"):
    con = sqlite3.connect(sys.argv[-1].removeprefix("sqlite:///"))
    with con:
        con.execute("UPDATE alembic_version SET version_num = ?",
                    (os.environ["FAKE_MLFLOW_SET_VERSION"],))
    con.close()
sys.stdout.write(os.environ["FAKE_MLFLOW_STDOUT"])
sys.stderr.write(os.environ["FAKE_MLFLOW_STDERR"])
sys.exit(int(os.environ["FAKE_MLFLOW_EXIT"]))
"""


def fake_mlflow_cli(tmp_path: Path, monkeypatch, *, stdout: str = "", stderr: str = "",
                    exit_code: int = 3, set_version: str = "") -> Path:
    """Install the stand-in; returns the file where it records its arguments."""
    fake = tmp_path / "fake-cli" / "mlflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text(FAKE_MLFLOW_MAIN)
    monkeypatch.setenv("PYTHONPATH", str(fake.parent))
    monkeypatch.setenv("FAKE_MLFLOW_ARGV", str(tmp_path / "argv.json"))
    monkeypatch.setenv("FAKE_MLFLOW_STDOUT", stdout)
    monkeypatch.setenv("FAKE_MLFLOW_STDERR", stderr)
    monkeypatch.setenv("FAKE_MLFLOW_EXIT", str(exit_code))
    monkeypatch.setenv("FAKE_MLFLOW_SET_VERSION", set_version)
    return tmp_path / "argv.json"


def test_an_upgraded_store_is_opened_again_and_switched_to_wal(template_db, tmp_path,
                                                               monkeypatch, caplog):
    import json

    head = schema_version(template_db)
    db, uri = store_of_another_schema(template_db, tmp_path / "store")
    before = db.read_bytes()
    argv = fake_mlflow_cli(tmp_path, monkeypatch, stdout="upgraded\n", exit_code=0,
                           set_version=head)
    start = time.time()
    upgraded = tracking.Store(uri)
    with caplog.at_level(logging.WARNING, logger="dlpractice.tracking"):
        upgraded.prepare()
    [backup] = backups(tmp_path / "store")
    assert backup.name in backup_names(start, time.time())
    assert json.loads(argv.read_text()) == ["db", "upgrade", uri]
    assert backup.read_bytes() == before
    assert schema_version(backup) == NEWER_SCHEMA
    assert schema_version(db) == head
    assert journal_mode(db) == "wal"
    assert tracking_log(caplog) == [
        ("WARNING", f"upgrading the MLflow schema of {db} (backup: {backup})")]
    assert upgraded.experiment_id("after-upgrade") == str(sql(
        db, "SELECT experiment_id FROM experiments WHERE name = 'after-upgrade'")[0][0])


@pytest.mark.parametrize("stdout,stderr,last_line", [
    ("", "Traceback (most recent call last):\n  File \"x\"\nCommandError: no such revision\n\n",
     "CommandError: no such revision"),
    ("Upgrading\n", "sqlite3.OperationalError: disk I/O error  \n",
     "sqlite3.OperationalError: disk I/O error"),
    ("Upgrading\nstopped: nothing on stderr\n", "", "stopped: nothing on stderr"),
    ("", "", "mlflow db upgrade failed"),
    ("", "\n  \n", "mlflow db upgrade failed"),
], ids=["stderr", "stderr-first", "stdout", "silent", "blank"])
def test_a_failed_upgrade_names_the_backup_and_the_last_line(
        template_db, tmp_path, monkeypatch, stdout, stderr, last_line):
    import json

    db, uri = store_of_another_schema(template_db, tmp_path / "store")
    before = db.read_bytes()
    argv = fake_mlflow_cli(tmp_path, monkeypatch, stdout=stdout, stderr=stderr)
    start = time.time()
    with pytest.raises(DlpracticeError) as info:
        tracking.Store(uri).prepare()
    [backup] = backups(tmp_path / "store")
    assert backup.name in backup_names(start, time.time())
    assert str(info.value) == (
        f"cannot upgrade the MLflow store {uri} (backup at {backup}): {last_line}")
    assert json.loads(argv.read_text()) == ["db", "upgrade", uri]
    assert backup.read_bytes() == before == db.read_bytes()


def first_line_of_mlflow_error(uri: str) -> tuple[str, str]:
    """What MLflow's own client says when it opens ``uri``: (exception type, first line)."""
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(uri).search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - whatever MLflow raises is the expected value
        return type(exc).__name__, str(exc).strip().splitlines()[0].strip()
    raise AssertionError(f"MLflow opened {uri}")


def test_a_store_mlflow_cannot_query_fails_with_one_line(template_db, tmp_path):
    db, uri = store_copy(template_db, tmp_path / "store")
    con = sqlite3.connect(db)  # every table there, at the current revision, but a column renamed
    with con:
        con.execute("ALTER TABLE experiments RENAME COLUMN workspace TO renamed")
    con.close()
    kind, first_line = first_line_of_mlflow_error(uri)
    assert kind == "MlflowException"
    with pytest.raises(DlpracticeError) as info:
        tracking.Store(uri).prepare()
    assert str(info.value) == f"cannot open the MLflow store {uri}: {first_line}"
    assert backups(tmp_path / "store") == []  # not taken for an out-of-date schema


def test_a_file_that_is_no_database_fails_with_one_line(tmp_path):
    import fcntl

    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    db.write_text("iteration,cost\n" * 200)  # e.g. a CSV saved under the wrong name
    uri = f"sqlite:///{db}"
    with pytest.raises(DlpracticeError) as info:
        tracking.Store(uri).prepare()
    kind, first_line = first_line_of_mlflow_error(uri)
    assert str(info.value) == f"cannot open the MLflow store {uri}: {kind}: {first_line}"
    assert db.read_text() == "iteration,cost\n" * 200
    with (tmp_path / "store" / "mlflow.db-init.lock").open() as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released despite the error


# -- a tracking server (a stand-in answering the few REST calls involved) ----------------------


class FakeTrackingServer:
    """``/health`` and MLflow's REST ``experiments/get-by-name`` (every name exists, with the id
    given in ``ids``), over HTTP/1.1 keep-alive; records (client port, path) of every request."""

    def __init__(self, ids: dict[str, str], tls=None):
        import http.server
        import json
        import threading
        from urllib.parse import parse_qs, urlparse

        requests: list[tuple[int, str]] = []
        self.requests = requests

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                url = urlparse(self.path)
                requests.append((self.client_address[1], url.path))
                if url.path.endswith("/health"):
                    body = b"OK"
                else:
                    name = parse_qs(url.query)["experiment_name"][0]
                    body = json.dumps({"experiment": {
                        "experiment_id": ids[name], "name": name, "lifecycle_stage": "active",
                        "artifact_location": f"mlflow-artifacts:/{ids[name]}",
                        "tags": [{"key": tracking.EXPERIMENT_KIND_TAG,
                                  "value": tracking.EXPERIMENT_KIND}]}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.uri = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def api_ports(self) -> list[int]:
        return [port for port, path in self.requests if path.startswith("/api/")]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_runs_url_of_an_experiment_that_does_not_exist_is_none_and_creates_nothing(tmp_path):
    missing = tmp_path / "fresh" / "mlflow.db"
    assert tracking.Store(f"sqlite:///{missing}").runs_url("nowhere") is None
    assert not missing.parent.exists()  # neither the database nor its folder
    store = tracking.Store(f"sqlite:///{tmp_path / 'm.db'}")
    exp_id = store.experiment_id("here")
    assert store.runs_url("nowhere") is None
    assert store.runs_url("here") == f"http://127.0.0.1:5000/#/experiments/{exp_id}/runs"
    assert [e.name for e in store.client.search_experiments()] == ["here", "Default"]


def test_runs_url_of_a_tracking_server_is_the_server_itself():
    server = FakeTrackingServer({"remote": "42"})
    try:
        store = tracking.Store(server.uri + "/")
        assert store.runs_url("remote", host="localhost", port=8080) == (
            f"{server.uri}/#/experiments/42/runs")
        # a server under a path (behind a reverse proxy) keeps it
        assert tracking.Store(server.uri + "/mlflowX/").runs_url("remote") == (
            f"{server.uri}/mlflowX/#/experiments/42/runs")
    finally:
        server.close()


def test_runs_url_of_a_tls_tracking_server(tmp_path, monkeypatch):
    import datetime
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(
                ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # trusted by the /health check
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(cert_file))  # and by MLflow
    server = FakeTrackingServer({"remote": "7"}, tls=context)
    try:
        assert server.uri.startswith("https://")
        store = tracking.Store(server.uri)
        assert store.runs_url("remote") == f"{server.uri}/#/experiments/7/runs"
        assert store.runs_url("remote") == f"{server.uri}/#/experiments/7/runs"  # remembered
        assert [path for _, path in server.requests] == [
            "/health", "/api/2.0/mlflow/experiments/get-by-name"]
    finally:
        server.close()


def test_a_store_keeps_one_client_and_remembers_experiment_ids(template_db, tmp_path):
    """One MLflow client per Store object (its kept-alive connection serves every call); an
    experiment id is asked for once per object."""
    _, uri = store_copy(template_db, tmp_path / "store")
    store = tracking.Store(uri)
    assert store.client is store.client
    assert store.experiment_id("one") == store.experiment_id("one")
    server = FakeTrackingServer({"a": "1", "b": "2"})
    try:
        remote = tracking.Store(server.uri)
        assert (remote.experiment_id("a"), remote.experiment_id("b")) == ("1", "2")
        assert remote.experiment_id("a") == "1"  # not asked again
        first, again = server.api_ports()
        assert first == again  # one kept-alive connection
        assert [path for _, path in server.requests] == [
            "/health", "/api/2.0/mlflow/experiments/get-by-name",
            "/api/2.0/mlflow/experiments/get-by-name"]
    finally:
        server.close()


# -- experiments made or changed by others -----------------------------------------------------


def finished_run(client, experiment_id: str, config_hash: str, start_time: int) -> str:
    run = client.create_run(experiment_id, start_time=start_time,
                            tags={"config_hash": config_hash})
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def test_finished_runs_of_an_experiment_made_by_another_process(client, store):
    """Experiments this process never looked up: made, deleted, renamed through MLflow itself."""
    made = client.create_experiment("made-elsewhere")
    h = "ABCdef-0_9"  # any word characters: a digest in another encoding
    older = finished_run(client, made, h, start_time=1_000)
    latest = finished_run(client, made, h, start_time=2_000)
    finished_run(client, made, "other", start_time=3_000)
    assert store.find_finished_run("made-elsewhere", h) == latest != older
    assert store.has_finished_runs("made-elsewhere")

    gone = client.create_experiment("deleted-elsewhere")
    restored = finished_run(client, gone, h, start_time=1_000)
    client.delete_experiment(gone)
    client.restore_run(restored)  # a run brought back in an experiment that stays deleted
    assert store.find_finished_run("deleted-elsewhere", h) is None
    assert not store.has_finished_runs("deleted-elsewhere")

    # An experiment this process uses keeps its id here when renamed meanwhile.
    own = store.experiment_id("renamed-elsewhere")
    kept = finished_run(client, own, h, start_time=1_000)
    client.rename_experiment(own, "new-name")
    assert store.find_finished_run("renamed-elsewhere", h) == kept
    assert store.has_finished_runs("renamed-elsewhere")


@pytest.mark.parametrize("bad", ["", "abc def", "x' OR '1'='1", "ab.cd", "é"])
def test_find_finished_run_refuses_a_hash_that_is_no_digest(store, bad):
    with pytest.raises(ValueError) as info:
        store.find_finished_run("t", bad)
    assert str(info.value) == f"config_hash {bad!r} must be a hex digest"


# -- what a run records, call by call ------------------------------------------------------------


def all_histories(client, run_id: str) -> dict[str, list[tuple[int, float]]]:
    return {key: history(client, run_id, key) for key in client.get_run(run_id).data.metrics}


def test_log_history_records_every_series_at_its_steps(client, store):
    from dlpractice.nn import TrainResult

    cfg = make_cfg(store, experiment="histories")
    result = TrainResult(
        parameters={}, network=None, iterations=[0, 5, 9], costs=[0.7, 0.5, 0.25],
        dev_costs=[0.75, 0.625, 0.5], grad_norms=[[1.5, 0.25], [1.0, 0.125], [0.5, 0.0625]],
        final_cost=0.2, iterations_run=10, best_iteration=5, train_seconds=1.25)
    with tracking.RunTracker(cfg, store) as tracker:
        tracker.callback(0, 99.0, 98.0)  # buffered, but superseded by log_history
        tracker.log_history(result)
    assert all_histories(client, tracker.run_id) == {
        "cost": [(0, 0.7), (5, 0.5), (9, 0.25)],
        "dev_cost": [(0, 0.75), (5, 0.625), (9, 0.5)],
        "grad_norm_W1": [(0, 1.5), (5, 1.0), (9, 0.5)],
        "grad_norm_W2": [(0, 0.25), (5, 0.125), (9, 0.0625)],
        "train_seconds": [(9, 1.25)], "final_cost": [(9, 0.2)], "iterations_run": [(9, 10.0)],
        "best_iteration": [(9, 5.0)], "best_dev_cost": [(9, 0.625)]}  # the point at iteration 5
    assert client.get_run(tracker.run_id).info.status == "FINISHED"

    # dev costs not aligned with the iterations are left out; nothing recorded: steps at 0
    uneven = TrainResult(parameters={}, network=None, iterations=[0, 10], costs=[0.7, 0.6],
                         dev_costs=[0.8], final_cost=0.6, iterations_run=20, train_seconds=0.5)
    empty = TrainResult(parameters={}, network=None, final_cost=0.3, iterations_run=0,
                        train_seconds=0.0)
    with tracking.RunTracker(cfg, store) as first, tracking.RunTracker(cfg, store) as second:
        first.log_history(uneven)
        second.log_history(empty)
    assert all_histories(client, first.run_id) == {
        "cost": [(0, 0.7), (10, 0.6)], "train_seconds": [(10, 0.5)], "final_cost": [(10, 0.6)],
        "iterations_run": [(10, 20.0)]}
    assert all_histories(client, second.run_id) == {
        "train_seconds": [(0, 0.0)], "final_cost": [(0, 0.3)], "iterations_run": [(0, 0.0)]}


def test_a_tracker_that_is_not_open_refuses_to_log(client, store, outcome):
    message = "RunTracker is not open: use it as `with RunTracker(cfg, store) as t:`"
    cfg = make_cfg(store, experiment="not-open")
    tracker = tracking.RunTracker(cfg, store)
    with pytest.raises(RuntimeError) as before:
        tracker.log_history(outcome.result)
    with tracker:
        pass
    with pytest.raises(RuntimeError) as after:
        tracker.log_outcome(outcome)
    assert str(before.value) == str(after.value) == message
    assert all_histories(client, tracker.run_id) == {}
    # An experiment deleted after this process looked it up: the run cannot even be created.
    from mlflow.exceptions import MlflowException

    doomed = make_cfg(store, experiment="deleted-meanwhile")
    client.delete_experiment(store.experiment_id("deleted-meanwhile"))
    failed = tracking.RunTracker(doomed, store)
    with pytest.raises(MlflowException):
        failed.__enter__()
    with pytest.raises(RuntimeError) as unopened:
        failed.log_history(outcome.result)
    assert str(unopened.value) == message
    assert store.open_runs == []


def test_a_deleted_experiment_is_refused_in_one_line(client, store):
    """Another process (here: a fresh Store) finds the experiment deleted: one line, no run."""
    exp_id = store.experiment_id("deleted-before")
    client.delete_experiment(exp_id)
    fresh = tracking.Store(store.uri)
    message = (f"MLflow experiment 'deleted-before' is deleted in {store.uri}; restore it "
               f"(`mlflow experiments restore --experiment-id {exp_id}`) or choose another "
               "tracking.experiment")
    with pytest.raises(DlpracticeError) as info:
        fresh.experiment_id("deleted-before")
    assert str(info.value) == message
    tracker = tracking.RunTracker(make_cfg(store, experiment="deleted-before"), fresh)
    with pytest.raises(DlpracticeError) as info:
        tracker.__enter__()
    assert str(info.value) == message and tracker.run_id is None
    assert client.search_runs([exp_id]) == []


def test_an_exception_without_a_message_is_named_by_its_type(client, store):
    cfg = make_cfg(store, "failures")
    with pytest.raises(ValueError), tracking.RunTracker(cfg, store) as tracker:
        raise ValueError()
    run = client.get_run(tracker.run_id)
    assert (run.info.status, run.data.tags["failure_reason"]) == ("FAILED", "ValueError")


def test_nested_runs_nest_under_the_same_store_or_the_active_fluent_run(client, store, template_db,
                                                                         tmp_path, monkeypatch):
    import mlflow

    cfg = make_cfg(store, experiment="nesting")
    _, other_uri = store_copy(template_db, tmp_path / "other")
    other = tracking.Store(other_uri)
    with tracking.RunTracker(make_cfg(other_uri, experiment="nesting"), other) as elsewhere, \
            tracking.RunTracker(cfg, store, nested=True) as alone:
        assert (other.open_runs, store.open_runs) == ([elsewhere.run_id], [alone.run_id])
    assert PARENT_RUN_TAG not in client.get_run(alone.run_id).data.tags
    assert elsewhere.run_id != alone.run_id
    assert other.open_runs == store.open_runs == []
    # nesting follows the Store object: another object on the same URI knows no open run
    same_uri = tracking.Store(store.uri)
    with tracking.RunTracker(cfg, store) as outer, \
            tracking.RunTracker(cfg, same_uri, nested=True) as apart:
        pass
    assert PARENT_RUN_TAG not in client.get_run(apart.run_id).data.tags
    assert outer.run_id != apart.run_id

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)  # for MLflow's fluent API
    with mlflow.start_run(experiment_id=store.experiment_id("nesting")) as active:
        with tracking.RunTracker(cfg, store, nested=True) as child:
            pass
    assert client.get_run(child.run_id).data.tags[PARENT_RUN_TAG] == active.info.run_id


def test_runs_carry_the_git_commit_of_the_project_whatever_the_cwd(client, store, tmp_path,
                                                                    monkeypatch):
    git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                         check=False)
    monkeypatch.chdir(tmp_path)  # no dvc.yaml + conf/ above, not a git repository
    with tracking.RunTracker(make_cfg(store, experiment="git"), store) as tracker:
        pass
    # a fresh process started in that folder (nothing it remembers of other runs)
    script = (f"from dlpractice import tracking\n"
              f"store = tracking.Store({store.uri!r})\n"
              f"run = tracking.start_sweep_run(store, 'git', 'sweep-git')\n"
              f"tracking.finish_sweep_run(store, run)\nprint(run)")
    # (mutmut's call-recording pass needs its config in the cwd: there the child runs plain code)
    env = {**{k: v for k, v in os.environ.items() if (k, v) != ("MUTANT_UNDER_TEST", "stats")},
           "PYTHONPATH": str(ROOT / "src")}
    sweep = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, check=True,
                           capture_output=True, text=True, timeout=120).stdout.strip()
    for run_id in (tracker.run_id, sweep):
        tags = client.get_run(run_id).data.tags
        if git.returncode == 0:
            commit = git.stdout.strip()
            assert (tags["git_commit"], tags["mlflow.source.git.commit"]) == (commit, commit)
        else:
            assert "git_commit" not in tags


def test_log_outcome_tags_the_gradient_check_and_logs_evaluation_at_step_zero(client, store,
                                                                             outcome, tmp_path):
    import dataclasses

    from dlpractice.pipeline import GradcheckReport

    given = {}
    for name in ("config.yaml", "parameters.npz", "cost_curve.png", "grad_norms.png",
                 "weight_histograms.png", "decision_boundary.png"):
        (tmp_path / name).write_text(f"given {name}")
        given[name] = tmp_path / name
    report = outcome.gradcheck
    failing = GradcheckReport(report.at_init, dataclasses.replace(report.at_trained, passed=False))
    expected = outcome.evaluation.metrics()
    seen = {}
    for label, gradcheck in (("passed", report), ("failed", failing), ("none", None)):
        variant = dataclasses.replace(outcome, gradcheck=gradcheck, stats=None)
        with tracking.RunTracker(outcome.cfg, store) as tracker:
            tracker.log_outcome(variant)
            # metrics and tags only: no file is made or uploaded
            assert client.list_artifacts(tracker.run_id) == []
            tracker.upload(given)
        seen[label] = tracker.run_id
    assert report.passed and report.difference < outcome.cfg.gradcheck.threshold
    for label, run_id in seen.items():
        run = client.get_run(run_id)
        checked = {} if label == "none" else {"gradcheck_difference": [(0, report.difference)]}
        assert all_histories(client, run_id) == {
            **{name: [(0, value)] for name, value in expected.items()}, **checked}
        assert run.data.tags.get("gradcheck") == (None if label == "none" else label)
        assert {k: run.data.tags[k] for k in ("diagnosis", "recommendation",
                                              "dataset_fingerprint")} == {
            "diagnosis": outcome.evaluation.diagnosis.label,
            "recommendation": outcome.evaluation.diagnosis.recommendation,
            "dataset_fingerprint": outcome.data.fingerprint}
        # what was given, as given: nothing drawn or written in its place
        assert sorted(a.path for a in client.list_artifacts(run_id)) == sorted(given)
        got = Path(client.download_artifacts(run_id, "", str(tmp_path / label)))
        for name in given:
            assert (got / name).read_text() == f"given {name}"


def test_upload_merges_folders_and_leaves_the_callers_files_alone(client, store, outcome,
                                                                 tmp_path, caplog):
    for folder, files in (("x", {"a.txt": "a"}), ("y", {"sub/b.txt": "b"})):
        for rel, text in files.items():
            (tmp_path / folder / "outputs" / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / folder / "outputs" / rel).write_text(text)
    (tmp_path / "x" / "results.csv").write_text("x\n")
    (tmp_path / "y" / "results.csv").write_text("y\n")
    (tmp_path / "y" / "outputs" / "a.txt").write_text("a from y")
    given = {"outputs": tmp_path / "x" / "outputs", "more outputs": str(tmp_path / "y" / "outputs"),
             "table": tmp_path / "x" / "results.csv", "table again": tmp_path / "y" / "results.csv",
             "missing": tmp_path / "nope.txt"}
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with caplog.at_level(logging.WARNING, logger="dlpractice.tracking"), \
            tracking.RunTracker(outcome.cfg, store) as tracker:
        tracker.upload({})  # nothing to upload: no request
        tracker.upload(given)
    assert tracking_log(caplog) == [
        ("WARNING", f"artifact missing: {tmp_path / 'nope.txt'} does not exist; skipped")]
    got = Path(client.download_artifacts(tracker.run_id, "", str(tmp_path / "got")))
    files = sorted(str(p.relative_to(got)) for p in got.rglob("*") if p.is_file())
    assert files == ["outputs/a.txt", "outputs/sub/b.txt", "results.csv"]  # and nothing else
    assert [(got / f).read_text() for f in ("outputs/a.txt", "outputs/sub/b.txt", "results.csv")] \
        == ["a from y", "b", "y\n"]  # folders merged; of two files with one name, the last given
    # staged by links, but never written through: the caller's files are as they were
    assert {p: p.read_bytes() for p in before} == before
    assert not (tmp_path / "nope.txt").exists()


def test_a_run_without_normalization_uploads_no_normalizer(client, store, outcome, tmp_path):
    """The artifacts are the run folder ``report.write_run_outputs`` wrote: config.yaml in the
    config's own order, and normalizer.npz only when the inputs were normalized."""
    import dataclasses

    import yaml

    variant = dataclasses.replace(outcome, stats=None)
    folder = report.write_run_outputs(variant, tmp_path / "run")
    with tracking.RunTracker(outcome.cfg, store) as tracker:
        tracker.log_outcome(variant)
        tracker.upload(folder)
    got = Path(client.download_artifacts(tracker.run_id, "", str(tmp_path / "got")))
    assert sorted(p.name for p in got.iterdir()) == sorted(
        ["config.yaml", "parameters.npz", "history.csv", "metrics.json", "cost_curve.png",
         "grad_norms.png", "weight_histograms.png", "decision_boundary.png"])
    text = (got / "config.yaml").read_text()
    assert yaml.safe_load(text) == outcome.cfg.to_dict()
    assert [line.split(":")[0] for line in text.splitlines() if not line.startswith(" ")] == \
        list(outcome.cfg.to_dict())  # in the config's own order
    for path in folder.values():
        assert (got / path.name).read_bytes() == path.read_bytes(), path.name


# -- sweeps ------------------------------------------------------------------------------------


def test_sweep_run_tags_files_and_status(client, store, tmp_path):
    import getpass

    tags = {"sweep_id": "s1", "note": "first line\nsecond line", "skipped": None,
            "api_token": "hunter2", "jobs": 4}
    parent = tracking.start_sweep_run(store, "sweep-runs", "grid-1", tags=tags)
    run = client.get_run(parent)
    assert (run.info.status, run.info.run_name) == ("RUNNING", "grid-1")
    assert run.info.experiment_id == client.get_experiment_by_name("sweep-runs").experiment_id
    own = {k: v for k, v in run.data.tags.items()  # owner tags: test_owners.py
           if not k.startswith(("mlflow.", "dlpractice.")) and k != "git_commit"}
    assert own == {"sweep": "true", "sweep_id": "s1", "note": "first line", "jobs": "4"}
    assert run.data.tags["mlflow.user"] == getpass.getuser()

    (tmp_path / "summary.md").write_text("| setting |\n")
    (tmp_path / "folder").mkdir()
    files = [tmp_path / "summary.md", None, tmp_path / "missing.csv", tmp_path / "folder",
             str(tmp_path / "summary.md")]
    tracking.finish_sweep_run(store, parent, files=files, status="FAILED",
                              tags={"best": "he-l2_0.7\nmore", "jobs_done": 3})
    run = client.get_run(parent)
    assert run.info.status == "FAILED"
    assert (run.data.tags["best"], run.data.tags["jobs_done"]) == ("he-l2_0.7", "3")
    assert [a.path for a in client.list_artifacts(parent)] == ["summary.md"]
    got = client.download_artifacts(parent, "summary.md", str(tmp_path / "got"))
    assert Path(got).read_text() == "| setting |\n"

    # a sweep run opened by another process (here: through MLflow) is closed all the same
    other = client.create_run(client.get_experiment_by_name("sweep-runs").experiment_id).info
    tracking.finish_sweep_run(store, other.run_id)
    assert client.get_run(other.run_id).info.status == "FINISHED"


def test_a_sweep_run_is_closed_even_when_its_logging_fails(client, store, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    def refused(self, *args, **kwargs):
        raise RuntimeError("upload refused")

    (tmp_path / "summary.md").write_text("| setting |\n")
    parent = tracking.start_sweep_run(store, "sweep-runs", "grid-2")
    monkeypatch.setattr(MlflowClient, "log_artifacts", refused)
    with pytest.raises(RuntimeError, match="^upload refused$"):
        tracking.finish_sweep_run(store, parent, files=[tmp_path / "summary.md"],
                                  tags={"jobs": 2}, status="FINISHED")
    run = client.get_run(parent)
    assert (run.info.status, run.data.tags["jobs"]) == ("FINISHED", "2")
    assert client.list_artifacts(parent) == []


def test_long_values_are_cut_to_mlflows_limits_and_uri_passwords_hidden(client, store):
    """Params over 6000 and tags over 5000 characters end in "…"; values at the limit are kept;
    a password in a URI param is masked; metrics carry the wall-clock time of logging, in ms."""
    server = "http://alice:s3cret@example.invalid:5000"  # the config's; the run goes to store
    runs = {}
    for path, reason in (("p" * 6000, "e" * 5000), ("q" * 6001, "f" * 5001)):
        cfg = make_cfg(server, experiment="limits", data={"path": path})
        start = time.time()
        with pytest.raises(RuntimeError), tracking.RunTracker(cfg, store) as tracker:
            tracker.callback(0, 0.5, None)
            raise RuntimeError(reason)
        runs[path] = (client.get_run(tracker.run_id), start, time.time())
    kept, cut = runs["p" * 6000][0], runs["q" * 6001][0]
    assert kept.data.params["data.path"] == "p" * 6000
    assert cut.data.params["data.path"] == "q" * 5999 + "…"
    assert kept.data.tags["failure_reason"] == "e" * 5000
    assert cut.data.tags["failure_reason"] == "f" * 4999 + "…"
    assert kept.data.params["tracking.uri"] == "http://alice:***@example.invalid:5000"
    for run, start, end in runs.values():
        [point] = client.get_metric_history(run.info.run_id, "cost")
        assert int(start * 1000) <= point.timestamp <= int(end * 1000)


def test_a_run_opened_inside_another_nests_only_when_asked(client, store):
    cfg = make_cfg(store, experiment="nesting-asked")
    inner = tracking.RunTracker(cfg, store)
    assert (inner.run_id, inner.experiment_id) == (None, None)  # not open yet
    given = tracking.start_sweep_run(store, "nesting-asked", "sweep-given")
    with tracking.RunTracker(cfg, store) as outer, inner, \
            tracking.RunTracker(cfg, store, parent_run_id=given, nested=True) as explicit:
        pass
    tracking.finish_sweep_run(store, given)
    assert PARENT_RUN_TAG not in client.get_run(inner.run_id).data.tags
    assert client.get_run(explicit.run_id).data.tags[PARENT_RUN_TAG] == given
    assert outer.run_id not in (inner.run_id, explicit.run_id)
    assert (inner.parent_run_id, explicit.parent_run_id) == (None, given)
    assert inner.experiment_id == outer.experiment_id == client.get_run(
        inner.run_id).info.experiment_id


@pytest.mark.parametrize(("code", "status", "reason"), [
    (None, "FINISHED", None), (0, "FINISHED", None), (1, "FAILED", "1"),
    ("stopped by the user", "FAILED", "stopped by the user")])
def test_sys_exit_inside_a_run_sets_its_status(client, store, code, status, reason):
    cfg = make_cfg(store, experiment="exits", study="exits-study")
    with pytest.raises(SystemExit), tracking.RunTracker(cfg, store) as tracker:
        tracker.callback(0, 0.5, 0.6)
        raise SystemExit(code)
    run = client.get_run(tracker.run_id)
    assert (run.info.status, run.data.tags.get("failure_reason")) == (status, reason)
    assert run.data.tags["study"] == "exits-study"
    assert history(client, tracker.run_id, "dev_cost") == [(0, 0.6)]


def broken_store(template_db: Path, folder: Path) -> tuple[str, Path, bytes]:
    """A store that works until ``break_it()``; returns its uri, its folder and the garbage."""
    _, uri = store_copy(template_db, folder)
    return uri, folder, b"this is not a database" * 100


def break_store(folder: Path, garbage: bytes) -> str:
    """Overwrite the database under the open run; returns sqlite's own error for it."""
    for path in folder.glob("mlflow.db*"):
        path.write_bytes(garbage)
    con = sqlite3.connect(folder / "mlflow.db")
    try:
        con.execute("SELECT * FROM sqlite_master")
    except sqlite3.DatabaseError as exc:
        return f"(sqlite3.DatabaseError) {exc}"
    finally:
        con.close()
    raise AssertionError("the garbage is a database")


def test_a_run_that_cannot_be_closed_says_so(template_db, tmp_path, caplog):
    """The store breaks while runs are open: a clean exit raises one line naming the run and
    the store; an exit by an exception keeps that exception and only warns; nothing is retried."""
    uri, folder, garbage = broken_store(template_db, tmp_path / "store")
    cfg = make_cfg(uri, experiment="breaks")
    broken = tracking.Store(uri)
    clean, failing = tracking.RunTracker(cfg, broken), tracking.RunTracker(cfg, broken)
    with caplog.at_level(logging.WARNING, logger="dlpractice.tracking"):
        with pytest.raises(DlpracticeError) as info, clean:
            clean.callback(0, 0.5, None)
            with pytest.raises(KeyError), failing:
                failing.callback(0, 0.5, None)
                why = break_store(folder, garbage)
                raise KeyError("inner")
        assert str(info.value) == (f"MLflow run {clean.run_id} in {uri} could not be closed "
                                   f"cleanly: {why}")
    assert tracking_log(caplog) == [
        ("WARNING", f"could not log the end of MLflow run {failing.run_id}: {why}"),
        ("WARNING", f"could not close MLflow run {failing.run_id} as FAILED: {why}"),
        ("WARNING", f"could not log the end of MLflow run {clean.run_id}: {why}"),
        ("WARNING", f"could not close MLflow run {clean.run_id} as FINISHED: {why}")]
    assert (clean.status, failing.status) == ("FINISHED", "FAILED")


def test_a_run_whose_params_cannot_be_logged_is_closed_at_once(client, store, monkeypatch):
    """MLflow refuses a param (a 300-character key): the run it opened ends FAILED with MLflow's first
    line as the reason; an interrupt at that point ends it KILLED. Both propagate."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    cfg = make_cfg(store, experiment="bad-params")
    base = cfg.to_dict()
    base["tracking"]["k" * 300] = "v"
    cfg.to_dict = lambda: base
    tracker = tracking.RunTracker(cfg, store)
    with pytest.raises(MlflowException) as refused, tracker:
        pass
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FAILED" and tracker.status == "FAILED"
    assert run.data.tags["failure_reason"] == str(refused.value).strip().splitlines()[0]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(MlflowClient, "log_batch", interrupted)
    tracker = tracking.RunTracker(make_cfg(store, experiment="bad-params"), store)
    with pytest.raises(KeyboardInterrupt), tracker:
        pass
    run = client.get_run(tracker.run_id)
    assert (run.info.status, run.data.tags.get("failure_reason")) == ("KILLED", None)


def test_closing_errors_keep_the_error_that_ended_the_run(client, store, monkeypatch):
    """MLflow refuses to close a run: a clean exit says so in one line; when the params batch
    failed first, that error propagates and the closing error is only a warning."""
    from mlflow.tracking import MlflowClient

    def store_gone(self, run_id, *args, **kwargs):
        raise RuntimeError("store gone\nsecond line")

    cfg = make_cfg(store, experiment="closing")
    with pytest.raises(DlpracticeError) as info:
        with tracking.RunTracker(cfg, store) as tracker:
            monkeypatch.setattr(MlflowClient, "set_terminated", store_gone)
    assert str(info.value) == (f"MLflow run {tracker.run_id} in {store.uri} could not be closed "
                               "cleanly: store gone")
    monkeypatch.undo()
    assert client.get_run(tracker.run_id).info.status == "RUNNING"

    def refused(self, *args, **kwargs):
        raise ValueError("params refused")

    monkeypatch.setattr(MlflowClient, "log_batch", refused)
    monkeypatch.setattr(MlflowClient, "set_terminated", store_gone)
    with pytest.raises(ValueError, match="^params refused$"), tracking.RunTracker(cfg, store):
        pass


def test_a_failed_run_keeps_a_history_longer_than_one_batch(client, store, monkeypatch):
    """2500 recorded points and a failure reason are flushed in requests within the limits of
    MLflow's REST API (1000 metrics, 100 params, 100 tags, 1000 entities in all), which a
    tracking server enforces (the SQLite store does not)."""
    from mlflow.tracking import MlflowClient

    sizes, log_batch = [], MlflowClient.log_batch

    def counted(self, run_id, metrics=(), params=(), tags=(), **kwargs):
        sizes.append((len(metrics), len(params), len(tags)))
        return log_batch(self, run_id, metrics=metrics, params=params, tags=tags, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", counted)
    cfg = make_cfg(store, experiment="long-history")
    with pytest.raises(RuntimeError), tracking.RunTracker(cfg, store) as tracker:
        for i in range(2500):
            tracker.callback(i, 1.0 / (i + 1), 2.0 / (i + 1))
        raise RuntimeError("stopped")
    run = client.get_run(tracker.run_id)
    assert (run.info.status, run.data.tags["failure_reason"]) == ("FAILED", "stopped")
    assert history(client, tracker.run_id, "cost") == [(i, 1.0 / (i + 1)) for i in range(2500)]
    assert history(client, tracker.run_id, "dev_cost") == [(i, 2.0 / (i + 1)) for i in range(2500)]
    assert all(m <= 1000 and p <= 100 and t <= 100 and m + p + t <= 1000 for m, p, t in sizes)
    assert sum(m for m, _, _ in sizes) == 5000 and sum(t for _, _, t in sizes) == 1


def test_runs_record_the_user_and_the_dvc_experiment_when_there_are(client, store, monkeypatch):
    """``mlflow.user`` and ``dvc_experiment`` tags; a user id with no name (a container's uid
    without a passwd entry) just leaves the user tag out."""
    import getpass

    monkeypatch.setenv("DVC_EXP_NAME", "exp-lambda-0.7")
    with tracking.RunTracker(make_cfg(store, experiment="who"), store) as tracker:
        pass
    tags = client.get_run(tracker.run_id).data.tags
    assert (tags["mlflow.user"], tags["dvc_experiment"]) == (getpass.getuser(), "exp-lambda-0.7")

    monkeypatch.delenv("DVC_EXP_NAME")
    # what getpass does for a uid with no passwd entry: KeyError up to 3.12, OSError from 3.13
    for error in (KeyError("getpwuid(): uid not found: 54321"), OSError("No username set")):
        def nameless(error=error):
            raise error

        monkeypatch.setattr(getpass, "getuser", nameless)
        with tracking.RunTracker(make_cfg(store, experiment="who"), store) as tracker:
            pass
        run = client.get_run(tracker.run_id)
        assert run.info.status == "FINISHED"
        assert "mlflow.user" not in run.data.tags and "dvc_experiment" not in run.data.tags


def test_project_root_is_the_folder_with_dvc_yaml_and_conf(tmp_path, monkeypatch):
    """From the cwd up, the first folder holding both; else the checkout this code runs from."""
    project = tmp_path / "project"
    (project / "conf").mkdir(parents=True)
    (project / "dvc.yaml").write_text("stages: {}\n")
    (project / "sub" / "dir").mkdir(parents=True)
    only_dvc = tmp_path / "only-dvc"
    only_dvc.mkdir()
    (only_dvc / "dvc.yaml").write_text("stages: {}\n")
    only_conf = tmp_path / "only-conf"
    (only_conf / "conf").mkdir(parents=True)
    for cwd, root in ((project / "sub" / "dir", project), (only_dvc, ROOT), (only_conf, ROOT)):
        monkeypatch.chdir(cwd)
        assert paths.project_root() == root, cwd
