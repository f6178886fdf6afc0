"""MLflow tracking against a real SQLite store, and the plots that go with a run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from dlpractice import config, pipeline, plots, tracking
from dlpractice.errors import DivergenceError, DlpracticeError
from tests import reference as ref

# MLflow's own SQLAlchemy models trigger this at import; nothing to act on here.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")

ROOT = Path(__file__).resolve().parents[1]
METRIC_NAMES = ("train_accuracy", "dev_accuracy", "test_accuracy", "train_error", "dev_error",
                "test_error", "avoidable_bias", "variance")


def make_cfg(uri: str, experiment: str = "t", **overrides) -> config.Config:
    raw = {"train": {"iterations": 200, "record_every": 10}, "data": {"n_samples": 200},
           "tracking": {"uri": uri, "experiment": experiment}}
    for section, values in overrides.items():
        raw.setdefault(section, {}).update(values)
    return config.load(raw)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


@pytest.fixture(scope="module")
def client(store):
    from mlflow.tracking import MlflowClient

    tracking.prepare_store(store)
    return MlflowClient(store)


@pytest.fixture(scope="module")
def outcome(store):
    return pipeline.run_all(make_cfg(store))


@pytest.fixture(scope="module")
def finished(store, outcome, tmp_path_factory):
    extra = tmp_path_factory.mktemp("extra") / "history.csv"
    extra.write_text("iteration,cost\n0,0.7\n")
    with tracking.RunTracker(outcome.cfg) as tracker:
        tracker.log_history(outcome.result)
        tracker.log_outcome(outcome, {"history": extra})
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
    git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tracking.project_root(),
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


def test_artifacts_are_logged_and_parameters_load_without_pickle(client, outcome, finished,
                                                                 tmp_path):
    import yaml

    names = {a.path for a in client.list_artifacts(finished.run_id)}
    assert names == {"config.yaml", "parameters.npz", "normalizer.npz", "cost_curve.png",
                     "grad_norms.png", "weight_histograms.png", "decision_boundary.png",
                     "history.csv"}
    got = Path(client.download_artifacts(finished.run_id, "", str(tmp_path)))
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
    # a file given by the caller is logged as it is, not generated again
    assert (got / "history.csv").read_text() == "iteration,cost\n0,0.7\n"
    assert config.load(yaml.safe_load((got / "config.yaml").read_text())) == outcome.cfg
    for png in ("cost_curve.png", "grad_norms.png", "weight_histograms.png",
                "decision_boundary.png"):
        assert (got / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png


def test_experiment_opens_on_runs_table_and_artifacts_sit_next_to_the_db(client, store, finished):
    exp = client.get_experiment(finished.experiment_id)
    assert exp.name == "t"
    assert exp.tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
    db_dir = Path(store.removeprefix("sqlite:///")).parent
    assert exp.artifact_location == (db_dir / "mlartifacts" / "t").as_uri()
    assert tracking.runs_url("t", store) == (
        f"http://127.0.0.1:5000/#/experiments/{finished.experiment_id}/runs")


def test_find_finished_run(store, outcome, finished):
    h = config.config_hash(outcome.cfg)
    assert tracking.find_finished_run("t", h, store) == finished.run_id
    assert tracking.find_finished_run("t", "0" * 64, store) is None
    assert tracking.find_finished_run("no-such-experiment", h, store) is None


def test_has_finished_runs(client, store, finished):
    assert tracking.has_finished_runs("t", store)
    assert not tracking.has_finished_runs("no-such-experiment", store)
    client.create_experiment("only-running")
    tracking.get_experiment_id("only-running", store)
    with tracking.RunTracker(make_cfg(store, experiment="only-running")):
        assert not tracking.has_finished_runs("only-running", store)  # one RUNNING run only
    assert tracking.has_finished_runs("only-running", store)


# -- failed, killed, nested --------------------------------------------------------------------


def test_exception_marks_the_run_failed_with_a_one_line_reason(client, store):
    cfg = make_cfg(store, experiment="failures")
    error = DivergenceError("training diverged at iteration 12: non-finite values (nan/inf) in "
                            "layer 2; lower train.learning_rate\nsecond line", iteration=12, layer=2)
    with pytest.raises(DivergenceError), tracking.RunTracker(cfg) as tracker:
        tracker.callback(0, 0.7, 0.71)
        raise error
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["failure_reason"] == (
        "training diverged at iteration 12: non-finite values (nan/inf) in layer 2; "
        "lower train.learning_rate")
    assert history(client, tracker.run_id, "cost") == [(0, 0.7)]
    # a failed run does not count as done
    assert tracking.find_finished_run("failures", tracker.config_hash, store) is None


def test_keyboard_interrupt_marks_the_run_killed_with_the_partial_history(client, store):
    cfg = make_cfg(store, experiment="interrupts", train={"iterations": 500})

    def stop_at_100(i, cost, dev_cost):
        tracker.callback(i, cost, dev_cost)
        if i == 100:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), tracking.RunTracker(cfg) as tracker:
        pipeline.run_all(cfg, callback=stop_at_100)
    run = client.get_run(tracker.run_id)
    assert run.info.status == "KILLED"
    assert run.info.end_time is not None
    cost = history(client, tracker.run_id, "cost")
    assert [s for s, _ in cost] == list(range(0, 101, 10))
    assert [s for s, _ in history(client, tracker.run_id, "dev_cost")] == list(range(0, 101, 10))


def test_parent_and_nested_runs(client, store):
    cfg = make_cfg(store, experiment="sweeps")
    parent = tracking.start_sweep_run("sweeps", "sweep-x", store, tags={"sweep_id": "x"})
    with (tracking.RunTracker(cfg, parent_run_id=parent, tags={"sweep_id": "x"}) as child,
          tracking.RunTracker(cfg, nested=True) as grandchild):
        pass
    assert client.get_run(child.run_id).data.tags["mlflow.parentRunId"] == parent
    assert client.get_run(child.run_id).data.tags["sweep_id"] == "x"
    assert client.get_run(grandchild.run_id).data.tags["mlflow.parentRunId"] == child.run_id
    assert client.get_run(parent).info.status == "RUNNING"
    tracking.finish_sweep_run(parent, store, files=[], tags={"jobs": "1"})
    assert client.get_run(parent).info.status == "FINISHED"


SECRET_KEYS = ("api_key", "password", "authToken", "client_secret", "aws.secretAccessKey",
               "keys")
KEPT_KEYS = ("monkey", "keyboard_layout", "keep_prob")


def test_secret_looking_params_are_not_logged(client, store):
    cfg = make_cfg(store, experiment="secrets")
    base = cfg.to_dict()
    base["tracking"].update({key: f"{key}-VALUE" for key in (*SECRET_KEYS, *KEPT_KEYS)})
    cfg.to_dict = lambda: base  # a config carrying credentials (e.g. from a plugin)
    with tracking.RunTracker(cfg, tags={"access_token": "t", "owner": "me"}) as tracker:
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
    assert tracking.project_root() == project.resolve()
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
    assert tracking.project_root() == ROOT  # no dvc.yaml + conf/ above: this repository


def test_unreachable_server_fails_fast_with_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    uri = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    with pytest.raises(DlpracticeError) as info:
        tracking.prepare_store(uri)
    assert time.perf_counter() - start < 5
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"MLflow tracking server {uri} is unreachable: ")
    assert "make server" in message and "tracking.uri" in message


@pytest.mark.parametrize("status,ok", [(200, True), (503, False)])
def test_server_health_is_checked_once(status, ok):
    import http.server
    import threading

    hits = []

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        if ok:
            tracking.prepare_store(uri)
            tracking.prepare_store(uri)  # cached: asked once per process
            assert hits == ["/health"]
        else:
            with pytest.raises(DlpracticeError, match=r"unreachable: /health answered HTTP 503"):
                tracking.prepare_store(uri)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("uri", ["file:///tmp/mlruns", "./mlruns", "/tmp/mlruns"])
def test_plain_folder_stores_are_refused(uri):
    with pytest.raises(DlpracticeError, match=r"sqlite:///") as info:
        tracking.prepare_store(uri)
    assert "\n" not in str(info.value)


def test_parallel_first_use_creates_the_schema_once_and_runs_close_at_exit(tmp_path):
    """Three processes prepare a fresh store at once; one of them ends with its run still open."""
    uri = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    script = textwrap.dedent(f"""
        import sys
        from dlpractice import config, tracking
        uri = {uri!r}
        tracking.prepare_store(uri)
        if sys.argv[1] == "leave-open":
            cfg = config.load({{"tracking": {{"uri": uri, "experiment": "atexit"}}}})
            tracker = tracking.RunTracker(cfg).__enter__()
            tracker.callback(0, 0.69, None)
            tracker.callback(10, 0.5, None)
            print(tracker.run_id)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    procs = [subprocess.Popen([sys.executable, "-c", script, mode], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for mode in ("prepare", "prepare", "leave-open")]
    outputs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    run_id = outputs[-1][0].strip().splitlines()[-1]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.info.status == "KILLED"
    assert history(client, run_id, "cost") == [(0, 0.69), (10, 0.5)]


def test_import_is_cheap():
    code = ("import sys, dlpractice.tracking, dlpractice.plots; "
            "print(sorted(m for m in ('mlflow', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert out.stdout.strip() == "[]"


# -- plots -------------------------------------------------------------------------------------


def _png(path: Path | None) -> bool:
    return path is not None and path.stat().st_size > 1000 and \
        path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_plot_writes_a_png(outcome, tmp_path):
    r, s, act = outcome.result, outcome.splits, outcome.cfg.model.activation
    assert _png(plots.cost_curve(r, tmp_path / "cost.png"))
    assert _png(plots.grad_norms(r, tmp_path / "grads.png"))
    assert _png(plots.weight_histograms(r.parameters, tmp_path / "w.png"))
    assert _png(plots.decision_boundary(r.parameters, s.X_train, s.Y_train, act,
                                        tmp_path / "db.png", title="he-none"))
    assert _png(plots.boundaries_side_by_side(
        [("a", r.parameters, s.X_train, s.Y_train, act),
         ("b", r.parameters, s.X_dev, s.Y_dev, act)], tmp_path / "sbs.png"))
    assert _png(plots.cost_curves([("a", r.iterations, r.costs), ("b", r.iterations, r.dev_costs)],
                                  tmp_path / "curves.png", target=0.3))
    assert _png(plots.layer_norms([("he", {"act_rms": [1.0, 0.5], "grad_norm": [0.2, 0.1, 0.05]}),
                                   ("zeros", {"act_rms": [0.0, 0.0], "grad_norm": [0.0, np.inf]})],
                                  tmp_path / "layers.png"))
    assert _png(plots.bias_variance_chart(
        [{"setting": "a", "train_error": 0.1, "dev_error": 0.2, "bayes_error": 0.05},
         {"setting": "b", "train_error": None, "dev_error": None, "bayes_error": 0.05}],
        tmp_path / "nested" / "bv.png"))


def test_decision_boundary_needs_2d_data(tmp_path):
    params = {"W1": np.ones((2, 3)), "b1": np.zeros((2, 1)), "W2": np.ones((1, 2)),
              "b2": np.zeros((1, 1))}
    X = np.zeros((3, 5))
    assert plots.decision_boundary(params, X, np.zeros((1, 5)), "relu", tmp_path / "x.png") is None
    assert not (tmp_path / "x.png").exists()


# -- the per-run plots' reusable figures ------------------------------------------------------

RUN_PLOTS = ("cost_curve.png", "grad_norms.png", "weight_histograms.png", "decision_boundary.png")


@pytest.fixture(scope="module")
def runs():
    """Two different runs of the same layout (so they share figures), the data to draw them on."""
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


def test_figures_follow_the_layout_of_each_run(runs, tmp_path):
    """3 then 4 layers, with and without a dev cost, nothing recorded, a failing call: each
    drawing still matches a fresh one."""
    from dlpractice.data.generators import football_like
    from dlpractice.nn import TrainConfig, TrainResult, train

    a, b, X, Y = runs
    deeper = train(X, Y, TrainConfig(layer_dims=(2, 6, 4, 3, 1), iterations=200, record_every=10))
    empty = TrainResult(parameters={}, network=None)
    drawn = {}
    for k, result in enumerate((a, deeper, b, deeper, a)):
        drawn[k] = _draw_run(result, X, Y, tmp_path / str(k))
    assert drawn[1] == drawn[3] and drawn[0] == drawn[4]
    assert drawn[1]["grad_norms.png"] != drawn[2]["grad_norms.png"]
    for name, draw in (("cost.png", plots.cost_curve), ("grads.png", plots.grad_norms)):
        assert _png(draw(empty, tmp_path / name))
    assert _png(plots.weight_histograms({}, tmp_path / "w.png"))
    X3 = football_like(0)[0][:1].repeat(3, axis=0)
    assert plots.decision_boundary(a.parameters, X3, Y, "relu", tmp_path / "x.png") is None
    # A call that fails (histories of different lengths) drops its figure instead of keeping it
    # half updated: the next call draws as before.
    broken = TrainResult(parameters=b.parameters, network=None, iterations=[0, 1],
                         costs=[0.7, 0.6, 0.5], grad_norms=[[1.0, 1.0, 1.0]] * 3)
    with pytest.raises(ValueError):
        plots.cost_curve(broken, tmp_path / "broken.png")
    assert _draw_run(b, X, Y, tmp_path / "after") == drawn[2]


def test_plots_from_several_threads(runs, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    a, b, X, Y = runs
    expected = [_draw_run(r, X, Y, tmp_path / f"seq{k}") for k, r in enumerate((a, b))]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda k: _draw_run((a, b)[k % 2], X, Y, tmp_path / f"t{k}"), range(8)))
    for k, drawing in enumerate(got):
        assert drawing == expected[k % 2]
