"""Study helpers: a setting that fails still leaves a row the compare stage can read; `show`
prints every study's table and the address of its runs."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import reference as ref

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ("initialization", "regularization", "gradient_checking", "vanishing_gradients",
           "input_normalization")


def test_a_diverging_setting_is_recorded_with_its_config(tmp_path):
    run_dir = tmp_path / "random"
    proc = subprocess.run(
        [sys.executable, "-m", "dlpractice.studies", "run", str(run_dir), "--record-failure", "--",
         "experiment=vanishing_gradients", "init=random", "init.scale=10",
         "train.learning_rate=1e100", "tracking.enabled=false"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert re.fullmatch(r"training diverged at iteration \d+: non-finite values \(nan/inf\) in "
                        r"layer \d+; lower train.learning_rate or use a smaller init scale",
                        summary["error"]), summary["error"]
    assert proc.stdout.strip() == f"random: recorded as failed ({summary['error']})"
    assert summary["config"]["init"] == {"name": "random", "scale": 10.0}
    assert summary["config"]["train"]["learning_rate"] == 1e100
    assert summary["config"]["study"] == "vanishing_gradients"


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
def test_show_prints_every_study_table_and_ui_links(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/m.db"
    proc = subprocess.run(
        [sys.executable, "-m", "dlpractice.studies", "show"], cwd=ROOT, capture_output=True,
        text=True, timeout=120, check=False, env={**os.environ, "MLFLOW_TRACKING_URI": uri},
    )
    assert proc.returncode == 0, proc.stderr
    tables, links = proc.stdout.split("Browse the runs in the MLflow UI: make ui")
    for study in STUDIES:
        table = ROOT / "pipelines" / study / "results" / "table.md"
        shown = table.read_text() if table.is_file() else (
            f"(no table yet: dvc repro pipelines/{study}/dvc.yaml)\n")
        assert f"\n## {study}\n\n{shown}\n" in tables
    client = MlflowClient(uri)
    expected = [f"  {study:<22} http://127.0.0.1:5000/#/experiments/"
                f"{client.get_experiment_by_name(study).experiment_id}/runs" for study in STUDIES]
    assert links.strip().splitlines()[1:] == expected


# -- the comparison table, in process ---------------------------------------------------------------

BASE = {"data": {"name": "moons", "n_samples": 100, "noise": 0.3},
        "train": {"iterations": 300, "record_every": 50, "learning_rate": 0.5},
        "tracking": {"enabled": False}}


def run_folder(results: Path, name: str, **sections) -> dict:
    """A setting's run folder as the app leaves it (files, summary.json); returns its summary."""
    from dlpractice import config, pipeline, report

    raw = {k: dict(v) for k, v in BASE.items()}
    for section, values in sections.items():
        raw[section] = {**raw.get(section, {}), **values} if isinstance(values, dict) else values
    cfg = config.load(raw)
    outcome = pipeline.run_all(cfg)
    report.write_run_outputs(outcome, results / name)
    summary = {**report.outcome_row(outcome), "status": "finished"}
    (results / name / "summary.json").write_text(json.dumps(summary))
    return summary


def failed_folder(results: Path, name: str, error: str) -> None:
    from dlpractice import config

    (results / name).mkdir(parents=True)
    (results / name / "summary.json").write_text(json.dumps(
        {"setting": name, "status": "failed", "error": error,
         "config": config.load(BASE).to_dict()}))


def compare(results: Path, study: str, settings: dict, target: float | None = None):
    from dlpractice import studies

    rows = studies.compare(results, study, settings, target)
    return rows, ref.read_csv(results / "table.csv"), (results / "table.md").read_text()


def png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_table_is_the_runs(tmp_path):
    results = tmp_path / "results"
    summaries = {"none": run_folder(results, "none"),
                 "l2": run_folder(results, "l2", regularizer={"name": "l2", "lambd": 0.7})}
    failed_folder(results, "broken", "training diverged at iteration 3")
    settings = {"none": {"course": "0.9479 / 0.915", "comment": "No regularization.\n"},
                "l2": {"course": "0.9384 / 0.93", "comment": "L2."}, "broken": {}}
    rows, table, md = compare(results, "regularization", settings)
    columns = ["setting", "train_accuracy", "dev_accuracy", "test_accuracy", "dataset",
               "course_train_test", "diagnosis", "status", "comment"]
    assert list(table[0]) == columns and [r["setting"] for r in table] == list(settings)
    for row in table[:2]:
        summary = summaries[row["setting"]]
        parameters = ref.load_npz(results / row["setting"] / "parameters.npz")
        expected = ref.evaluate(parameters, summary["config"])
        for column in ("train_accuracy", "dev_accuracy", "test_accuracy"):
            assert float(row[column]) == pytest.approx(expected[column], abs=1e-12)
        assert row["diagnosis"] == expected["diagnosis"]
        assert row["dataset"] == "moons" and row["status"] == ""
        assert row["course_train_test"] == settings[row["setting"]]["course"]
        assert row["comment"] == settings[row["setting"]]["comment"].strip()
    assert table[2] == {**dict.fromkeys(columns, ""), "setting": "broken", "dataset": "moons",
                        "status": "failed: training diverged at iteration 3"}
    lines = md.splitlines()
    assert lines[:3] == ["# regularization", "", studies_text("regularization")]
    assert ref.markdown_table(md)[0]["train_accuracy"] == f"{float(table[0]['train_accuracy']):.4f}"
    assert [r["setting"] for r in rows] == list(settings) and "_norms" not in rows[0]
    assert png(results / "boundaries.png")


def studies_text(study: str) -> str:
    from dlpractice import studies

    return studies.STUDIES[study]


def test_gradient_checking_columns(tmp_path):
    results = tmp_path / "results"
    summary = run_folder(results, "tanh", model={"activation": "tanh"})
    run_folder(results, "strict", model={"activation": "tanh"}, gradcheck={"threshold": 1e-30})
    _, table, _ = compare(results, "gradient_checking", {"tanh": {}, "strict": {}})
    assert [r["activation"] for r in table] == ["tanh", "tanh"]
    assert float(table[0]["gradcheck_difference"]) == summary["gradcheck_difference"]
    assert [r["gradcheck_passed"] for r in table] == ["yes", "no"]


def test_vanishing_gradient_norms_are_those_at_initialization(tmp_path):
    from dlpractice import pipeline

    results = tmp_path / "results"
    model = {"hidden": [4, 4, 4]}
    summaries = [run_folder(results, name, model=model, init=init, gradcheck={"enabled": False})
                 for name, init in (("he", {"name": "he"}),
                                    ("random", {"name": "random", "scale": 3.0}))]
    rows, table, _ = compare(results, "vanishing_gradients", {"he": {}, "random": {}})
    assert [r["init"] for r in table] == ["he", "random (scale 3)"]
    for row, summary in zip(table, summaries, strict=True):
        from dlpractice import config

        cfg = config.load(summary["config"])
        splits, _ = pipeline.normalize(cfg, pipeline.prepare_data(cfg).splits)
        init = pipeline.initial_parameters(pipeline.train_config(cfg, 2))
        X, Y = splits.X_train, splits.Y_train
        A, rms = X, []
        for l in (1, 2, 3):
            A = np.maximum(init[f"W{l}"] @ A + init[f"b{l}"], 0)
            rms.append(float(np.sqrt(np.mean(A * A))))
        grads = numerical_weight_gradients(init, X, Y)
        assert float(row["act_rms_first"]) == pytest.approx(rms[0], rel=1e-12)
        assert float(row["act_rms_last"]) == pytest.approx(rms[-1], rel=1e-12)
        assert float(row["grad_norm_first"]) == pytest.approx(grads[0], rel=1e-6)
        assert float(row["grad_norm_last"]) == pytest.approx(grads[-1], rel=1e-6)
        assert float(row["final_cost"]) == summary["final_cost"]
    assert png(results / "layer_norms.png")


def numerical_weight_gradients(parameters, X, Y, eps=1e-6, activation="relu") -> list[float]:
    norms = []
    for l in range(1, len(parameters) // 2 + 1):
        W = parameters[f"W{l}"]
        g = np.zeros_like(W)
        for index in np.ndindex(W.shape):
            plus = {k: v.copy() for k, v in parameters.items()}
            minus = {k: v.copy() for k, v in parameters.items()}
            plus[f"W{l}"][index] += eps
            minus[f"W{l}"][index] -= eps
            g[index] = (ref.cost(plus, X, Y, activation) - ref.cost(minus, X, Y, activation)) / (
                2 * eps)
        norms.append(float(np.linalg.norm(g)))
    return norms


def test_input_normalization_counts_iterations_to_the_target(tmp_path):
    results = tmp_path / "results"
    run_folder(results, "normalized", gradcheck={"enabled": False})
    run_folder(results, "raw", data={"normalize": False, "feature_scales": [1.0, 1000.0]},
               train={"learning_rate": 0.001}, gradcheck={"enabled": False})
    history = ref.read_csv(results / "normalized" / "history.csv")
    target = float(history[2]["cost"])  # reached at the third record, and not before
    assert all(float(r["cost"]) > target for r in history[:2])
    _, table, md = compare(results, "input_normalization", {"normalized": {}, "raw": {}}, target)
    assert [r["normalize"] for r in table] == ["yes", "no"]
    assert [float(r["learning_rate"]) for r in table] == [0.5, 0.001]
    assert table[0]["iterations_to_target"] == history[2]["iteration"]
    assert table[1]["iterations_to_target"] == "not in 300"
    assert f"Target cost: {target:g}." in md.splitlines()
    assert png(results / "cost_curves.png")


def test_compare_on_the_command_line_prints_the_table(tmp_path, capsys):
    from dlpractice import studies

    results = tmp_path / "results"
    run_folder(results, "zeros", init={"name": "zeros"}, gradcheck={"enabled": False})
    (tmp_path / "params.yaml").write_text(
        "settings:\n  zeros:\n    overrides: init=zeros\n    course: 0.5 / 0.5\n"
        "    comment: symmetric\n")
    assert studies.main(["compare", str(results), "--study", "initialization", "--settings",
                         str(tmp_path / "params.yaml")]) == 0
    printed = ref.markdown_table(capsys.readouterr().out)
    assert printed == [{"setting": "zeros", "train_accuracy": "0.5000", "dev_accuracy": "0.5000",
                        "test_accuracy": "0.5000", "course_train_test": "0.5 / 0.5",
                        "diagnosis": "high_bias"}]
    assert ref.read_csv(results / "table.csv")[0]["comment"] == "symmetric"


def test_figures_show_the_runs(tmp_path):
    """The boundary panels are titled with each run's train/test accuracy (a failed run has no
    panel); the cost curves carry the target line."""
    from dlpractice import plots

    results = tmp_path / "results"
    summaries = {name: run_folder(results, name, gradcheck={"enabled": False}, **extra)
                 for name, extra in (("a", {}), ("b", {"train": {"learning_rate": 0.05}}))}
    failed_folder(results, "c", "diverged")
    rows, _, _ = compare(results, "input_normalization", {"a": {}, "b": {}, "c": {}}, 0.5)
    assert all(not key.startswith("_") for row in rows for key in row)
    panels, curves = [], []
    for name, s in summaries.items():
        parameters = ref.load_npz(results / name / "parameters.npz")
        data, _ = ref.dataset(s["config"])
        mean, std = ref.normalizer(data["X_train"])
        title = f"{name}: train {s['train_accuracy']:.3f}, test {s['test_accuracy']:.3f}"
        panels.append((title, parameters, (data["X_train"] - mean) / std, data["Y_train"],
                       "relu"))
        history = ref.read_csv(results / name / "history.csv")
        curves.append((name, [int(r["iteration"]) for r in history],
                       [float(r["cost"]) for r in history]))
    expected = plots.boundaries_side_by_side(panels, tmp_path / "boundaries.png")
    assert (results / "boundaries.png").read_bytes() == expected.read_bytes()
    expected = plots.cost_curves(curves, tmp_path / "curves.png", target=0.5)
    assert (results / "cost_curves.png").read_bytes() == expected.read_bytes()
    assert [r["final_cost"] for r in rows[:2]] == [summaries["a"]["final_cost"],
                                                   summaries["b"]["final_cost"]]
    assert rows[2]["iterations_to_target"] == "not in 300"


def test_layer_norms_follow_each_settings_activation(tmp_path):
    results = tmp_path / "results"
    for name, activation in (("relu", "relu"), ("tanh", "tanh")):
        run_folder(results, name, model={"hidden": [4, 4, 4], "activation": activation},
                   gradcheck={"enabled": False})
    _, table, _ = compare(results, "vanishing_gradients", {"relu": {}, "tanh": {}})
    for row in table:
        cfg_dict = json.loads((results / row["setting"] / "summary.json").read_text())["config"]
        from dlpractice import config, pipeline

        cfg = config.load(cfg_dict)
        splits, _ = pipeline.normalize(cfg, pipeline.prepare_data(cfg).splits)
        init = pipeline.initial_parameters(pipeline.train_config(cfg, 2))
        A, rms = splits.X_train, []
        for l in (1, 2, 3):
            A = ref.ACTIVATIONS[row["setting"]](init[f"W{l}"] @ A + init[f"b{l}"])
            rms.append(float(np.sqrt(np.mean(A * A))))
        assert float(row["act_rms_last"]) == pytest.approx(rms[-1], rel=1e-12)
        grads = numerical_weight_gradients(init, splits.X_train, splits.Y_train,
                                           activation=row["setting"])
        assert float(row["grad_norm_last"]) == pytest.approx(grads[-1], rel=1e-6)


def test_overflowing_norms_are_inf_not_errors(tmp_path):
    """A huge random init overflows: the table shows inf (no warning, no error)."""
    results = tmp_path / "results"
    hand_made_run(results, "huge", {"final_cost": None}, model={"hidden": [50] * 8},
                  init={"name": "random", "scale": 1e40})
    _, table, _ = compare(results, "vanishing_gradients", {"huge": {}})
    from dlpractice import config, pipeline

    cfg = config.load({**BASE, "model": {"hidden": [50] * 8},
                       "init": {"name": "random", "scale": 1e40}})
    splits, _ = pipeline.normalize(cfg, pipeline.prepare_data(cfg).splits)
    init = pipeline.initial_parameters(pipeline.train_config(cfg, 2))
    A, rms = splits.X_train, []
    with np.errstate(over="ignore", invalid="ignore"):
        for l in range(1, 9):
            A = np.maximum(init[f"W{l}"] @ A + init[f"b{l}"], 0)
            rms.append(float(np.sqrt(np.mean(A * A))))
    assert 1e30 < rms[0] < np.inf and not np.isfinite(rms[-1])
    assert float(table[0]["act_rms_first"]) == pytest.approx(rms[0], rel=1e-12)
    assert table[0]["act_rms_last"] == str(rms[-1])  # inf or nan, as numpy makes it


def hand_made_run(results: Path, name: str, summary: dict | None, *,
                  config_in: str = "summary", **sections) -> None:
    """A run folder written by hand: its config in summary.json, config.yaml or .hydra/."""
    import yaml

    from dlpractice import config

    folder = results / name
    (folder / ".hydra").mkdir(parents=True)
    cfg = config.load({**BASE, **sections}).to_dict()
    if config_in == "summary":
        summary = {**summary, "config": cfg}
    elif config_in == "config.yaml":
        (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    else:
        (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    if summary is not None:
        (folder / "summary.json").write_text(json.dumps(summary))


def test_rows_from_hand_made_folders(tmp_path):
    """Configs found in each of their three places; a gradient check exactly at its threshold
    fails; a run without parameters or error says so; a missing summary is no row values."""
    results = tmp_path / "results"
    threshold = 2e-7  # the config's
    hand_made_run(results, "at_threshold", {"gradcheck_difference": threshold,
                                            "train_accuracy": 0.5}, config_in="config.yaml")
    hand_made_run(results, "unchecked", {"gradcheck_difference": None}, config_in="hydra")
    hand_made_run(results, "no_summary", None, config_in="hydra")
    _, table, md = compare(results, "gradient_checking",
                           {"at_threshold": {}, "unchecked": {}, "no_summary": {}})
    assert [(r["gradcheck_passed"], r["status"]) for r in table] == [
        ("no", "failed: no parameters.npz"), ("", "failed: no parameters.npz"),
        ("", "failed: no parameters.npz")]
    assert table[0]["train_accuracy"] == "0.5" and table[2]["train_accuracy"] == ""
    assert md.splitlines()[0] == "# gradient checking"
    assert "Target cost" not in md


def test_folders_are_the_settings_when_none_are_given(tmp_path, capsys):
    from dlpractice import studies

    results = tmp_path / "results"
    hand_made_run(results, "b", {"train_accuracy": 0.25})
    hand_made_run(results, "a", None, config_in="hydra")
    (results / "not_a_run").mkdir()
    (results / "notes.txt").write_text("x")
    assert studies.main(["compare", str(results), "--study", "regularization"]) == 0
    assert [r["setting"] for r in ref.read_csv(results / "table.csv")] == ["a", "b"]
    assert (results / "table.csv").read_bytes().count(b"\r") == 0
    capsys.readouterr()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert studies.main(["compare", str(empty), "--study", "regularization"]) == 1
    assert capsys.readouterr().err == f"error: no run folders in {empty}\n"
    with pytest.raises(Exception) as info:
        studies.compare(results, "nope", {})
    assert str(info.value) == ("unknown study 'nope'; choose one of initialization, "
                               "regularization, gradient_checking, vanishing_gradients, "
                               "input_normalization")


def test_a_missing_run_folder_is_one_line(tmp_path, capsys):
    from dlpractice import studies

    (tmp_path / "params.yaml").write_text("settings:\n  gone: {overrides: init=he}\n")
    (tmp_path / "results").mkdir()
    assert studies.main(["compare", str(tmp_path / "results"), "--study", "initialization",
                         "--settings", str(tmp_path / "params.yaml")]) == 1
    assert capsys.readouterr().err == (
        f"error: run folder {tmp_path / 'results' / 'gone'} does not exist: run its stage first "
        "(dvc repro)\n")


def test_a_data_file_shows_as_the_dataset(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "points.npz", X=rng.normal(size=(60, 2)), y=np.arange(60) % 2)
    results = tmp_path / "results"
    run_folder(results, "file", data={"name": "file", "path": str(tmp_path / "points.npz")},
               gradcheck={"enabled": False})
    _, table, _ = compare(results, "regularization", {"file": {}})
    assert table[0]["dataset"] == "file points.npz"
    assert list(table[0]) == ["setting", "train_accuracy", "dev_accuracy", "test_accuracy",
                              "dataset", "course_train_test", "diagnosis", "comment"]
