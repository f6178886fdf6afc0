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


def numerical_weight_gradients(parameters, X, Y, eps=1e-6) -> list[float]:
    norms = []
    for l in range(1, len(parameters) // 2 + 1):
        W = parameters[f"W{l}"]
        g = np.zeros_like(W)
        for index in np.ndindex(W.shape):
            plus = {k: v.copy() for k, v in parameters.items()}
            minus = {k: v.copy() for k, v in parameters.items()}
            plus[f"W{l}"][index] += eps
            minus[f"W{l}"][index] -= eps
            g[index] = (ref.cost(plus, X, Y) - ref.cost(minus, X, Y)) / (2 * eps)
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
