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
    expected = outcome.evaluation.metrics()
    for name in METRIC_NAMES:
        assert run.data.metrics[name] == pytest.approx(expected[name], abs=1e-12), name
    assert run.data.metrics["gradcheck_difference"] == pytest.approx(outcome.gradcheck.difference)
    assert run.data.metrics["train_seconds"] == pytest.approx(outcome.result.train_seconds)
    tags = run.data.tags
    diag = outcome.evaluation.diagnosis
    assert tags["diagnosis"] == diag.label
    assert tags["recommendation"] == diag.recommendation and "\n" not in tags["recommendation"]
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
    assert {"config.yaml", "parameters.npz", "normalizer.npz", "cost_curve.png", "grad_norms.png",
            "weight_histograms.png", "decision_boundary.png", "history.csv"} <= names
    local = Path(client.download_artifacts(finished.run_id, "parameters.npz", str(tmp_path)))
    with np.load(local, allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(outcome.result.parameters)
        for key, value in outcome.result.parameters.items():
            np.testing.assert_array_equal(npz[key], value)
    cfg_file = Path(client.download_artifacts(finished.run_id, "config.yaml", str(tmp_path)))
    assert config.load(yaml.safe_load(cfg_file.read_text())) == outcome.cfg
    png = Path(client.download_artifacts(finished.run_id, "decision_boundary.png", str(tmp_path)))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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


def test_sweep_summary_goes_to_the_parent_run(client, store, tmp_path):
    parent = tracking.start_sweep_run("sweeps", "sweep-y", store)
    rows = [{"setting": "he-none", "train_error": 0.1, "dev_error": 0.2, "status": "finished"},
            {"setting": "he-l2_0.7", "status": "failed", "error": "a | b"}]
    chart = plots.bias_variance_chart([dict(r, bayes_error=0.0) for r in rows],
                                      tmp_path / "bias_variance.png")
    tracking.log_sweep_summary(parent, rows, chart, store)
    tracking.finish_sweep_run(parent, store)
    names = {a.path for a in client.list_artifacts(parent)}
    assert {"sweep_summary.csv", "sweep_summary.md", "bias_variance.png"} <= names
    md = Path(client.download_artifacts(parent, "sweep_summary.md", str(tmp_path))).read_text()
    assert md.splitlines()[0] == "| setting | train_error | dev_error | status | error |"
    assert "a \\| b" in md


def test_secret_looking_params_are_not_logged(client, store):
    cfg = make_cfg(store, experiment="secrets")
    base = cfg.to_dict()
    base["tracking"].update(api_key="k", password="p", authToken="t", client_secret="s")
    cfg.to_dict = lambda: base  # a config carrying credentials (e.g. from a plugin)
    with tracking.RunTracker(cfg, tags={"access_token": "t", "owner": "me"}) as tracker:
        pass
    run = client.get_run(tracker.run_id)
    assert not {"tracking.api_key", "tracking.password", "tracking.authToken",
                "tracking.client_secret"} & set(run.data.params)
    assert run.data.params["regularizer.keep_prob"] == "1.0"
    assert "access_token" not in run.data.tags and run.data.tags["owner"] == "me"


@pytest.mark.parametrize("key,secret", [
    ("api_key", True), ("tracking.password", True), ("authToken", True), ("client_secret", True),
    ("aws.secretAccessKey", True), ("keys", True), ("regularizer.keep_prob", False),
    ("monkey", False), ("keyboard_layout", False), ("train.learning_rate", False),
])
def test_is_secret(key, secret):
    assert tracking._is_secret(key) is secret


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


def test_a_reused_figure_draws_the_next_run_as_a_fresh_one(runs, tmp_path):
    a, b, X, Y = runs
    plots.clear_figure_cache()
    first = _draw_run(a, X, Y, tmp_path / "a")
    second = _draw_run(b, X, Y, tmp_path / "b")
    assert len(plots._local.templates) == len(RUN_PLOTS)  # b was drawn into a's four figures
    plots.clear_figure_cache()
    fresh = _draw_run(b, X, Y, tmp_path / "fresh")
    for name in RUN_PLOTS:
        assert first[name] != second[name], name
        # Same limits, ticks, labels, legend place: the same pixels as a figure built for b alone.
        assert second[name] == fresh[name], name


def test_a_fresh_process_draws_the_same_figures(runs, tmp_path):
    import pickle

    a, b, X, Y = runs
    plots.clear_figure_cache()
    _draw_run(a, X, Y, tmp_path / "a")
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
        assert (tmp_path / "there" / name).read_bytes() == here[name], name


def test_figures_follow_the_layout_of_each_run(runs, tmp_path):
    """3 then 4 layers, with and without a dev cost, nothing recorded, a failing call: each
    drawing still matches a fresh one."""
    from dlpractice.data.generators import football_like
    from dlpractice.nn import TrainConfig, TrainResult, train

    a, b, X, Y = runs
    deeper = train(X, Y, TrainConfig(layer_dims=(2, 6, 4, 3, 1), iterations=200, record_every=10))
    empty = TrainResult(parameters={}, network=None)
    plots.clear_figure_cache()
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
