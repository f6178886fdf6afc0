"""A sweep's choice of its best setting on dev data alone (``selection.*``) and its error path:
the ranking and the path in process, then real sweeps against a real SQLite store, every value
recomputed from what the child runs logged and the parameters they saved."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dlpractice import config, plots, selection, sweep
from dlpractice.errors import ConfigError
from tests import reference as ref

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")

ROOT = Path(__file__).resolve().parents[1]

# -- a sweep's job names --------------------------------------------------------------------------------


def test_the_keys_a_command_line_sweeps():
    lines = ["model.activation=tanh,sigmoid", "train.iterations=300", "+seed=range(0,3)",
             "init=he,xavier", "model.hidden=[8,4]", "regularizer.lambd=choice(0.1,0.7)"]
    assert sweep.swept_keys(lines) == ["model.activation", "seed", "init", "regularizer.lambd"]
    assert sweep.swept_keys(["a=[1,2"]) == []  # Hydra reports the line itself


@pytest.mark.parametrize("regularizer,swept,lines,expected", [
    ({"name": "l2", "lambd": 0.7}, ["regularizer.lambd"], ["regularizer.lambd=0.7"], "he-l2_0.7"),
    ({"name": "l2", "lambd": 0.7}, ["model.hidden", "regularizer.lambd"],
     ["model.hidden=[8,4]", "train.iterations=300", "regularizer.lambd=0.7"],
     "he-l2_0.7 model.hidden=[8,4]"),
    ({"name": "dropout", "keep_prob": 0.8}, ["regularizer.keep_prob"],
     ["regularizer.keep_prob=0.8"], "he-dropout_0.8"),
    ({"name": "dropout", "keep_prob": 0.8}, ["regularizer.lambd", "seed"],
     ["regularizer.lambd=0.1", "+seed=3"], "he-dropout_0.8 regularizer.lambd=0.1 +seed=3"),
    ({"name": "none"}, ["init", "regularizer"], ["init=he", "regularizer=none"], "he-none"),
    ({"name": "none"}, [], ["model.activation=tanh"], "he-none"),
])
def test_a_sweep_job_is_named_by_the_swept_values_its_name_does_not_show(regularizer, swept, lines,
                                                                         expected):
    cfg = config.load({"regularizer": regularizer}, check_files=False)
    named = sweep.named_job(cfg, lines, swept)
    assert config.run_name(named) == expected
    assert named.tracking.run_name == (None if expected == config.run_name(cfg) else expected)
    assert config.config_hash(named) == config.config_hash(cfg)  # the same record


def test_an_explicit_run_name_stays_in_a_sweep():
    cfg = config.load({"tracking": {"run_name": "mine"}}, check_files=False)
    assert config.run_name(sweep.named_job(cfg, ["model.activation=tanh"],
                                           ["model.activation"])) == "mine"


# -- the ranking ---------------------------------------------------------------------------------------


def row(job: int, dev_error: float | None, dev_cost: float | None = 0.5,
        status: str = "finished") -> dict:
    out = {"job": job, "status": status, "setting": f"s{job}"}
    if dev_error is not None:
        out["dev_error"] = dev_error
    if dev_cost is not None:
        out["dev_cost"] = dev_cost
    return out


def test_the_lowest_dev_error_wins():
    rows = [row(0, 0.30), row(1, 0.10), row(2, 0.20)]
    assert selection.select(rows, "dev_error") == 1


def test_a_tie_goes_to_the_lower_dev_cost_then_to_the_earlier_job():
    rows = [row(0, 0.2, 0.40), row(1, 0.1, 0.35), row(2, 0.1, 0.30), row(3, 0.1, 0.30)]
    assert selection.select(rows, "dev_error") == 2
    # the job number decides, not the row's place (rows in another order)
    rows = [row(5, 0.1, 0.3), row(4, 0.1, 0.3)]
    assert selection.select(rows, "dev_error") == 1
    # a row without a dev cost loses a tie to one with any
    rows = [row(0, 0.1, None), row(1, 0.1, 9.0)]
    assert selection.select(rows, "dev_error") == 1


def test_selecting_by_dev_cost():
    rows = [row(0, 0.1, 0.50), row(1, 0.3, 0.20), row(2, 0.2, 0.20)]
    assert selection.select(rows, "dev_cost") == 1  # the tie of dev costs: the earlier job
    assert selection.select(rows, "dev_error") == 0


def test_an_early_stopped_job_is_ranked_by_the_dev_cost_of_the_weights_it_kept():
    stopped = {**row(1, 0.1, 0.60), "best_dev_cost": 0.25}  # last point 0.60: discarded weights
    rows = [row(0, 0.1, 0.30), stopped]
    assert selection.kept_dev_cost(stopped) == 0.25
    assert selection.kept_dev_cost(rows[0]) == 0.30
    assert selection.select(rows, "dev_cost") == 1
    assert selection.select(rows, "dev_error") == 1  # the tie of dev errors
    rows = [row(0, 0.1, 0.30), {**row(1, 0.1, 0.20), "best_dev_cost": 0.35}]
    assert selection.select(rows, "dev_cost") == 0
    assert selection.select(rows, "dev_error") == 0
    # a best_dev_cost that is no number (a failed job's blank) falls back to dev_cost
    assert selection.kept_dev_cost({**row(2, 0.1, 0.4), "best_dev_cost": None}) == 0.4
    # the terminal's line names the value the job was ranked by
    chosen = {**row(1, 0.1, 0.60), "best_dev_cost": 0.25, "setting": "he-none stop"}
    assert selection.ranked_value(chosen, "dev_cost") == 0.25
    assert selection.ranked_value(chosen, "dev_error") == 0.1
    assert sweep._selected_line(chosen, "dev_cost") == (
        "selected: he-none stop (job 1, lowest dev_cost 0.25)")
    assert sweep._selected_line({**chosen, "test_accuracy": 0.875}, "dev_error") == (
        "selected: he-none stop (job 1, lowest dev_error 0.1): test accuracy 0.8750")


def test_a_value_that_is_no_finite_number_is_never_chosen():
    for bad in (math.nan, math.inf, None, "0.1"):
        assert selection.select([row(0, bad), row(1, 0.5)], "dev_error") == 1, bad
    assert selection.select([row(0, 0.5), row(1, 0.5, math.nan)], "dev_error") == 0


def test_a_row_without_a_job_number_counts_by_its_place():
    unnumbered = {"status": "finished", "dev_error": 0.1, "dev_cost": 0.3}
    assert selection.select([row(5, 0.1, 0.3), unnumbered], "dev_error") == 1  # place 1 < job 5
    assert selection.select([unnumbered, dict(unnumbered)], "dev_error") == 0


def test_only_finished_jobs_are_chosen_and_skipped_ones_are_finished_jobs():
    rows = [row(0, 0.0, status="failed"), row(1, 0.0, status="failed: diverged"),
            row(2, 0.3), row(3, 0.2, status="skipped (already finished)"),
            row(4, math.nan), row(5, None), {"job": 6, "status": "finished", "dev_error": "0.0"},
            {"job": 7, "status": "finished", "dev_error": True}]
    assert selection.select(rows, "dev_error") == 3


def test_no_finished_job_no_choice():
    assert selection.select([row(0, None, None, "failed"), row(1, 0.1, 0.1, "failed")],
                            "dev_error") is None
    assert selection.select([], "dev_error") is None


def test_the_sweeps_selection_settings_are_its_jobs():
    settings = {"metric": "dev_cost", "hide_test": False}
    rows = [{"status": "failed"}, {"config": {"selection": settings}}]
    assert selection.settings_of(rows) == config.SelectionConfig("dev_cost", False)
    assert selection.settings_of([{"status": "failed"}]) == config.SelectionConfig()


def test_the_selected_job_is_tested_from_its_run_folder(tmp_path):
    """A job that hid its test split: its folder's parameters and normalizer, and its config's
    test split, give the test accuracy the reference computes."""
    from dlpractice import pipeline, report

    for normalize in (True, False):
        cfg = config.load({"data": {"name": "moons", "n_samples": 120, "noise": 0.3,
                                    "normalize": normalize},
                           "train": {"iterations": 200, "record_every": 50, "learning_rate": 0.5},
                           "tracking": {"enabled": False}})
        outcome = pipeline.run_all(cfg, test=False)
        folder = tmp_path / str(normalize)
        report.write_run_outputs(outcome, folder)
        expected = ref.evaluate(ref.load_npz(folder / "parameters.npz"), cfg.to_dict())
        assert selection.test_of({"config": cfg.to_dict()}, folder) == {
            "test_accuracy": expected["test_accuracy"], "test_error": expected["test_error"]}
    # a data file gone since the job ran is named as a bad config value is
    gone = {**cfg.to_dict(), "data": {**cfg.to_dict()["data"], "name": "file",
                                      "path": str(tmp_path / "gone.mat")}}
    with pytest.raises(ConfigError, match=r"^data.path='.*gone.mat' is not allowed: no such file$"):
        selection.test_of({"config": gone}, folder)


# -- the path ------------------------------------------------------------------------------------------


def configured(*changes: tuple[str, object]) -> dict:
    """A job's row: its resolved config with ``changes`` (dotted key, value)."""
    raw = {"regularizer": {"name": "l2"}, "tracking": {"enabled": False}}
    for key, value in changes:
        *sections, name = key.split(".")
        node = raw
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = value
    return {"config": config.load(raw).to_dict(), "status": "finished"}


@pytest.mark.parametrize("changes,expected", [
    ([[("regularizer.lambd", v)] for v in (0.0, 0.1, 0.7)], "regularizer.lambd"),
    ([[("model.hidden", [w, 5])] for w in (4, 16)], "model.hidden[0]"),
    ([[("model.hidden", [8, w])] for w in (2, 3, 9)], "model.hidden[1]"),
    ([[("train.iterations", n)] for n in (100, 1000)], "train.iterations"),
    ([[("data.n_samples", n)] for n in (100, 400)], "data.n_samples"),
    ([[("regularizer.name", "dropout"), ("regularizer.keep_prob", k)] for k in (0.5, 0.9)],
     "regularizer.keep_prob"),
    # names, notes and the selection rule are not what a sweep compares
    ([[("regularizer.lambd", v), ("tracking.run_name", f"n{v}"), ("tracking.note", str(v))]
      for v in (0.1, 0.2)], "regularizer.lambd"),
    ([[("model.hidden", h)] for h in ([8, 5], [8, 5, 3])], None),  # a layer more: no value
    ([[("init.name", n)] for n in ("he", "xavier")], None),  # categorical
    ([[("data.normalize", b)] for b in (True, False)], None),  # a switch
    ([[("seed", s)] for s in (0, 1, 2)], None),  # seeds are no path
    ([[("regularizer.lambd", 0.1), ("init.name", "he")],
      [("regularizer.lambd", 0.2), ("init.name", "xavier")]], None),  # two settings at once
    ([[("regularizer.lambd", 0.1)]], None),  # one job
    ([[("regularizer.lambd", 0.1)], [("regularizer.lambd", 0.1)]], None),  # nothing varies
])
def test_the_one_numeric_setting_a_sweep_varies(changes, expected):
    rows = [configured(*c) for c in changes]
    assert selection.varied_setting(rows) == expected
    # a job that ended without a config (a lost worker) has no say
    assert selection.varied_setting([*rows, {"status": "failed"}]) == expected


def test_the_path_is_each_finished_jobs_errors_against_its_value():
    # first a failed job (no errors), one with a train error alone, then three that finished
    rows = [{**configured(("regularizer.lambd", 0.3)), "status": "failed"},
            {**configured(("regularizer.lambd", 0.5)), "train_error": 0.1}]
    rows += [dict(configured(("regularizer.lambd", v)), train_error=tr, dev_error=dev)
             for v, tr, dev in ((0.7, 0.20, 0.25), (0.0, 0.05, 0.30), (0.1, 0.10, 0.20))]
    rows.append({"status": "failed", "train_error": 0.0, "dev_error": 0.0})  # no config
    path = selection.error_path(rows, selected=4, bayes_error=0.05)
    assert path == plots.PathData("regularizer.lambd", (0.0, 0.1, 0.7), (0.05, 0.10, 0.20),
                                  (0.30, 0.20, 0.25), 0.05, (0.1, 0.20), "linear")
    assert selection.error_path(rows, selected=None, bayes_error=0.0).selected is None
    assert selection.error_path(rows[:1] * 2, selected=None, bayes_error=0.0) is None  # one value
    assert selection.error_path(rows[:2], selected=None, bayes_error=0.0) is None  # none finished
    categorical = [configured(("init.name", n)) for n in ("he", "xavier")]
    assert selection.error_path(categorical, selected=0, bayes_error=0.0) is None


@pytest.mark.parametrize("values,scale", [
    ((0.1, 0.3, 0.7), "linear"),
    ((1.0, 5.0, 10.0), "linear"),  # 10x: not more
    ((1.0, 10.5), "log"),
    ((0.001, 0.01, 0.1, 1.0), "log"),
    ((0.0, 0.01, 0.3, 3.0), "symlog"),  # 0 has no place on a log axis
    ((0.0, 0.1, 0.7), "linear"),
    ((-1.0, 0.1, 100.0), "linear"),
    ((0.0,), "linear"),
])
def test_the_x_axis_is_logarithmic_where_the_values_span_more_than_ten_times(values, scale,
                                                                              tmp_path):
    points = [(v, 0.1, 0.2) for v in values]
    data = plots.path_data("regularizer.lambd", points, 0.0, (values[0], 0.2))
    assert data.x_scale == scale and data.values == tuple(sorted(values))
    png = plots.regularization_path(data, tmp_path / "path.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_path_leaves_out_points_with_a_missing_number(tmp_path):
    data = plots.path_data("train.iterations", [(300, 0.1, math.nan), (100, 0.2, 0.3),
                                                (math.inf, 0.1, 0.1)], 0.0)
    assert (data.values, data.train_error, data.dev_error) == ((100,), (0.2,), (0.3,))
    empty = plots.path_data("train.iterations", [], 0.0)
    assert plots.regularization_path(empty, tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG"


# -- real sweeps ---------------------------------------------------------------------------------------

# Small and noisy: three of the four jobs tie on dev error, so the dev cost decides among them.
LAMBDS = (0.0, 0.01, 0.3, 3.0)
SWEEP = ["data=moons", "data.n_samples=200", "data.noise=0.3", "train.iterations=300",
         "train.record_every=50", "regularizer=l2",
         "regularizer.lambd=" + ",".join(f"{v:g}" for v in LAMBDS)]
TESTS = ("test_accuracy", "test_error")


def app(store: Path, folder: Path, experiment: str, *args: str
        ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "dlpractice.experiment", "-m", *args,
         f"tracking.uri=sqlite:///{store}", f"tracking.experiment={experiment}",
         f"hydra.sweep.dir={folder}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


class Sweep:
    """One finished sweep (the latest of its experiment): its process, folder and MLflow runs."""

    def __init__(self, store: Path, folder: Path, experiment: str, *args: str):
        from mlflow.tracking import MlflowClient

        self.proc, self.folder = app(store, folder, experiment, *args), folder
        self.client = MlflowClient(f"sqlite:///{store}")
        exp = self.client.get_experiment_by_name(experiment)
        runs = self.client.search_runs([exp.experiment_id], max_results=1000)
        parents = sorted((r for r in runs if r.data.tags.get("sweep") == "true"),
                         key=lambda r: r.info.start_time)
        self.parent = parents[-1]
        self.children = {int(r.data.tags["sweep_job"]): r for r in runs
                         if "mlflow.parentRunId" in r.data.tags}
        self.table = ref.read_csv(folder / "sweep_summary.csv")
        self.artifacts = {a.path for a in self.client.list_artifacts(self.parent.info.run_id)}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """One SQLite store for the module's sweeps (each in its own experiment): its schema is
    created once."""
    return tmp_path_factory.mktemp("store") / "mlflow.db"


def best_by_hand(children: dict, metric: str = "dev_error") -> int:
    """The documented rule on the logged metrics: the lowest ``metric``, then the dev cost of the
    kept weights (``best_dev_cost`` with early stopping, else ``dev_cost``), then the job."""
    def key(j: int) -> tuple:
        m = children[j].data.metrics
        kept = m.get("best_dev_cost", m["dev_cost"])
        return (kept if metric == "dev_cost" else m[metric], kept, j)

    return min(children, key=key)


@pytest.fixture(scope="module")
def sweeps(store, tmp_path_factory) -> dict[str, Sweep]:
    """The λ sweep through the basic and the vectorized launcher (each in its own experiment);
    then the basic launcher's again, in a new folder: every job already finished."""
    tmp = tmp_path_factory.mktemp("selection")
    out = {launcher: Sweep(store, tmp / launcher, launcher, f"hydra/launcher={launcher}", *SWEEP)
           for launcher in ("basic", "vectorized")}
    out["again"] = Sweep(store, tmp / "again", "basic", "hydra/launcher=vectorized", *SWEEP)
    return out


@pytest.fixture(params=["basic", "vectorized"])
def lambd_sweep(request, sweeps) -> Sweep:
    return sweeps[request.param]


@pytest.mark.slow
def test_the_selected_run_is_the_lowest_dev_error_its_children_logged(lambd_sweep):
    s = lambd_sweep
    children, tags = s.children, s.parent.data.tags
    assert sorted(children) == [0, 1, 2, 3]
    errors = sorted(c.data.metrics["dev_error"] for c in children.values())
    assert errors[0] == errors[1]  # a tie on dev error: the dev cost decides
    best = best_by_hand(children)
    assert tags["selected_run_id"] == children[best].info.run_id
    assert tags["selected_setting"] == children[best].info.run_name == f"he-l2_{LAMBDS[best]:g}"
    assert [j for j, c in children.items() if c.data.tags.get("selected") == "true"] == [best]
    assert (f"selected: {tags['selected_setting']} (job {best}, lowest dev_error "
            f"{children[best].data.metrics['dev_error']:.4g})") in s.proc.stdout


@pytest.mark.slow
def test_children_log_no_test_metrics_and_the_parent_the_selected_runs_once(lambd_sweep):
    s = lambd_sweep
    for job, child in s.children.items():
        assert not [m for m in child.data.metrics if m.startswith("test")], job
        assert child.data.tags["test_hidden"] == "true"
        assert child.data.params["selection.hide_test"] == "True"
        folder = s.folder / str(job)
        saved = {**yaml.safe_load((folder / "metrics.json").read_text()),
                 **yaml.safe_load((folder / "summary.json").read_text())}
        assert not [k for k in saved if k.startswith("test")], job
        config = yaml.safe_load((folder / "config.yaml").read_text())
        assert child.data.tags["config_hash"] == ref.config_hash(config, test_hidden=True)
    best = best_by_hand(s.children)
    folder = s.folder / str(best)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    expected = ref.evaluate(ref.load_npz(folder / "parameters.npz"), config)
    metrics = s.parent.data.metrics
    assert metrics["selected_test_accuracy"] == expected["test_accuracy"]
    assert metrics["selected_test_error"] == pytest.approx(expected["test_error"], abs=1e-15)
    assert [ln for ln in s.proc.stdout.splitlines() if ln.startswith("selected: ")] == [
        ln for ln in s.proc.stdout.splitlines()
        if ln.endswith(f": test accuracy {expected['test_accuracy']:.4f}")]


@pytest.mark.slow
def test_the_selected_runs_model_is_the_experiments_champion(sweeps, store, monkeypatch):
    """`tracking.register` (null: a sweep registers): models:/<experiment>@champion is the
    selected run's model; a second sweep of the experiment moves the alias to its own choice."""
    import mlflow.pyfunc
    import numpy as np

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    s = sweeps["vectorized"]
    champion = s.client.get_model_version_by_alias("vectorized", "champion")
    assert champion.run_id == s.parent.data.tags["selected_run_id"]
    assert (f"registered: models:/vectorized@champion (version {champion.version})"
            in s.proc.stdout.splitlines())
    best = best_by_hand(s.children)
    folder = s.folder / str(best)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    X_test = ref.dataset(config)[0]["X_test"]
    probability, label = ref.model_output(ref.load_npz(folder / "parameters.npz"), config, X_test)
    answer = mlflow.pyfunc.load_model("models:/vectorized@champion").predict(X_test.T)
    np.testing.assert_allclose(answer["probability"].to_numpy(), probability, rtol=1e-12)
    assert answer["label"].tolist() == label.tolist()
    # "basic" was swept twice (the second time every job finished before): the same choice, so
    # the champion stays on its one version
    chosen = sweeps["again"].parent.data.tags["selected_run_id"]
    assert chosen == sweeps["basic"].parent.data.tags["selected_run_id"]
    (version,) = s.client.search_model_versions("name = 'basic'")
    latest = s.client.get_model_version_by_alias("basic", "champion")
    assert (int(version.version), version.run_id) == (int(latest.version), latest.run_id) == (
        1, chosen)
    assert "registered: models:/basic@champion (version 1)" in sweeps["again"].proc.stdout


def test_a_single_run_registers_only_when_asked(tmp_path):
    """A single run (no -m) leaves the registry alone unless tracking.register=true."""
    from mlflow.tracking import MlflowClient

    db = tmp_path / "mlflow.db"
    base = [sys.executable, "-m", "dlpractice.experiment", "data=moons", "data.n_samples=120",
            "train.iterations=50", f"tracking.uri=sqlite:///{db}", "tracking.experiment=single",
            f"hydra.run.dir={tmp_path}/run"]
    client = MlflowClient(f"sqlite:///{db}")
    for extra in ([], ["tracking.register=true"]):  # the second finds the first one's run
        proc = subprocess.run([*base, *extra], cwd=ROOT, capture_output=True, text=True,
                              timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        if not extra:
            assert client.search_model_versions("name = 'single'") == []
            assert not [ln for ln in proc.stdout.splitlines() if ln.startswith("registered")]
    (run,) = client.search_runs([client.get_experiment_by_name("single").experiment_id])
    (version,) = client.search_model_versions("name = 'single'")
    assert (str(version.version), version.run_id) == ("1", run.info.run_id)
    assert str(client.get_model_version_by_alias("single", "champion").version) == "1"
    assert proc.stdout.splitlines()[-2] == "registered: models:/single@champion (version 1)"


@pytest.mark.slow
def test_the_table_shows_the_test_columns_of_the_selected_row_alone(lambd_sweep):
    s = lambd_sweep
    best = best_by_hand(s.children)
    assert list(s.table[0])[:4] == ["setting", "status", "selected", "train_accuracy"]
    for job, line in enumerate(s.table):
        assert line["selected"] == ("yes" if job == best else "")
        child = s.children[job]
        assert float(line["dev_error"]) == child.data.metrics["dev_error"]
        if job == best:
            assert float(line["test_accuracy"]) == s.parent.data.metrics["selected_test_accuracy"]
        else:
            assert line["test_accuracy"] == ""


@pytest.mark.slow
def test_a_one_value_sweep_charts_its_errors_against_that_value(lambd_sweep):
    s = lambd_sweep
    assert "regularization_path.png" in s.artifacts and "bias_variance.png" not in s.artifacts
    rows = sweep.collect_rows(s.folder)
    best = best_by_hand(s.children)
    path = selection.error_path(rows, best, 0.0)
    assert path.setting == "regularizer.lambd" and path.values == LAMBDS
    assert path.x_scale == "symlog"  # 0.01 to 3, and 0
    for j in range(len(LAMBDS)):
        metrics = s.children[j].data.metrics
        assert (path.train_error[j], path.dev_error[j]) == (metrics["train_error"],
                                                            metrics["dev_error"])
    assert path.selected == (LAMBDS[best], s.children[best].data.metrics["dev_error"])
    for name in ("regularization_path.png", "sweep_summary.csv"):
        assert (s.folder / name).is_file() and name in s.artifacts
    for job in range(4):
        assert not (s.folder / str(job) / "regularization_path.png").exists()


@pytest.mark.slow
def test_both_launchers_select_the_same_setting(sweeps):
    basic, vectorized = sweeps["basic"], sweeps["vectorized"]
    assert basic.parent.data.tags["selected_setting"] == (
        vectorized.parent.data.tags["selected_setting"])
    assert basic.parent.data.metrics == vectorized.parent.data.metrics
    assert best_by_hand(basic.children) == best_by_hand(vectorized.children)


@pytest.mark.slow
def test_jobs_finished_before_take_part_in_the_selection(sweeps):
    """The same sweep again, in a new folder: every job is settled from the store without running;
    the choice is the same run, with the test metrics the first sweep evaluated for it (the test
    split is evaluated once: nothing is downloaded or prepared again)."""
    first, again = sweeps["basic"], sweeps["again"]
    assert [line["status"] for line in again.table] == ["skipped (already finished)"] * 4
    assert again.parent.info.run_id != first.parent.info.run_id
    run_ids = {j: c.info.run_id for j, c in first.children.items()}
    assert {j: c.info.run_id for j, c in again.children.items()} == run_ids  # none added
    assert again.parent.data.tags["selected_run_id"] == first.parent.data.tags["selected_run_id"]
    assert again.parent.data.metrics == first.parent.data.metrics
    assert [line["selected"] for line in again.table] == [line["selected"] for line in first.table]
    for job in range(4):  # the test used the run's uploaded files: none came into the new folder
        assert sorted(p.name for p in (again.folder / str(job)).iterdir()) == ["summary.json"]
    assert "Downloading artifacts" not in again.proc.stderr  # no progress bar for it either


@pytest.mark.slow
def test_a_settled_choice_no_sweep_tested_before_is_tested_from_its_uploaded_files(store, tmp_path):
    """The first sweep's parent run deleted: the same sweep again settles every job, and its
    selected run is tested from the parameters and normalizer that run uploaded, to the accuracy
    the reference computes from the first sweep's folder."""
    first = Sweep(store, tmp_path / "first", "retested", "hydra/launcher=vectorized", *SWEEP)
    first.client.delete_run(first.parent.info.run_id)
    again = Sweep(store, tmp_path / "again", "retested", "hydra/launcher=vectorized", *SWEEP)
    assert again.parent.info.run_id != first.parent.info.run_id
    assert [line["status"] for line in again.table] == ["skipped (already finished)"] * 4
    job = best_by_hand(first.children)
    assert again.parent.data.tags["selected_run_id"] == first.children[job].info.run_id
    folder = first.folder / str(job)
    expected = ref.evaluate(ref.load_npz(folder / "parameters.npz"),
                            yaml.safe_load((folder / "config.yaml").read_text()))
    for name in TESTS:
        assert again.parent.data.metrics[f"selected_{name}"] == pytest.approx(expected[name],
                                                                               abs=1e-12)
    assert "could not be tested" not in again.proc.stderr
    # that test is not made again: a third sweep reports it without the files it was made from
    selected = again.parent.data.tags["selected_run_id"]
    uploaded = Path(first.client.get_run(selected).info.artifact_uri.removeprefix("file://"))
    (uploaded / "parameters.npz").unlink()
    third = Sweep(store, tmp_path / "third", "retested", "hydra/launcher=vectorized", *SWEEP)
    assert third.parent.data.tags["selected_run_id"] == selected
    for name in TESTS:
        assert third.parent.data.metrics[f"selected_{name}"] == again.parent.data.metrics[
            f"selected_{name}"]
    assert "could not be tested" not in third.proc.stderr


@pytest.mark.slow
def test_shown_tests_a_categorical_sweep_and_selection_by_dev_cost(store, tmp_path):
    """selection.hide_test=false: every job logs its test metrics and the parent the selected
    one's; selection.metric=dev_cost; two inits: the bias/variance bars, no path."""
    s = Sweep(store, tmp_path / "sweep", "shown", "hydra/launcher=vectorized", *SWEEP[:5],
              "init=he,xavier", "selection.hide_test=false", "selection.metric=dev_cost")
    for job, child in s.children.items():
        folder = s.folder / str(job)
        config = yaml.safe_load((folder / "config.yaml").read_text())
        expected = ref.evaluate(ref.load_npz(folder / "parameters.npz"), config)
        for name in TESTS:
            assert child.data.metrics[name] == pytest.approx(expected[name], abs=1e-12), name
        assert float(s.table[job]["test_accuracy"]) == child.data.metrics["test_accuracy"]
        assert "test_hidden" not in child.data.tags
        assert child.data.tags["config_hash"] == ref.config_hash(config)
    best = best_by_hand(s.children, "dev_cost")
    assert s.parent.data.tags["selected_run_id"] == s.children[best].info.run_id
    assert s.parent.data.metrics == {f"selected_{k}": s.children[best].data.metrics[k]
                                     for k in TESTS}
    assert "bias_variance.png" in s.artifacts and "regularization_path.png" not in s.artifacts


@pytest.mark.slow
def test_a_sweep_whose_jobs_all_failed_selects_nothing(store, tmp_path):
    s = Sweep(store, tmp_path / "sweep", "failing", *SWEEP[:5], "init=random", "init.scale=10",
              "model.activation=leaky_relu", "train.learning_rate=1e100,1e200")
    proc = s.proc
    assert s.parent.data.tags["failed_jobs"] == "2"
    assert not [t for t in s.parent.data.tags if t.startswith("selected")]
    assert s.parent.data.metrics == {}
    assert not [c for c in s.children.values() if "selected" in c.data.tags]
    assert [line["status"] for line in s.table] == ["failed", "failed"]
    assert "selected" not in s.table[0]
    assert "selected:" not in proc.stdout
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error")]
    assert errors == []
