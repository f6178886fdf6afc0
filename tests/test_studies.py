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
           "input_normalization", "bias_variance", "learning_curve", "other_regularization",
           "numerical_gradient", "recipe")


def test_a_study_is_one_sweep_whose_summary_is_its_table(tmp_path):
    """`-m study/<name>=<settings>`: one folder per setting, named by it; a diverging setting is
    a failed row with its config (the result, not an error); the table is every job's row."""
    sweep_dir = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "dlpractice.experiment", "-m",
         "study/vanishing_gradients=he,random", "model.hidden=[8,8,8]", "train.iterations=200",
         "train.learning_rate=1e100", "tracking.enabled=false", "hydra/launcher=vectorized",
         f"hydra.sweep.dir={sweep_dir}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name, init in (("he", {"name": "he", "scale": 1.0}), ("random", {"name": "random", "scale": 1.0})):
        summary = json.loads((sweep_dir / name / "summary.json").read_text())
        assert summary["status"] == "failed" and summary["setting"] == name
        assert re.fullmatch(r"training diverged at iteration \d+: non-finite values \(nan/inf\) in "
                            r"layer \d+; lower train.learning_rate or use a smaller init scale",
                            summary["error"]), summary["error"]
        assert summary["config"]["init"] == init
        assert summary["config"]["train"]["learning_rate"] == 1e100
        assert summary["config"]["study"] == "vanishing_gradients"
    table = ref.read_csv(sweep_dir / "table.csv")
    assert [(r["setting"], r["init"], r["status"].split(" at ")[0]) for r in table] == [
        ("he", "he", "failed: training diverged"),
        ("random", "random (scale 1)", "failed: training diverged")]
    assert table[0]["comment"].startswith("sqrt(2/n) makes up for the half that relu drops")
    assert png(sweep_dir / "layer_norms.png") and png(sweep_dir / "boundaries.png")


def test_a_study_run_again_tables_its_finished_runs_from_their_files(tmp_path):
    """A second run of a study settles its jobs from the store (their folders hold only a row):
    the table is built from the files their runs uploaded, the same as the first run's."""
    tables = []
    for k in (1, 2):
        proc = subprocess.run(
            [sys.executable, "-m", "dlpractice.experiment", "-m",
             "study/numerical_gradient=central,forward", "report.figures=false",
             f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"hydra.sweep.dir={tmp_path}/s{k}"],
            cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        tables.append(ref.read_csv(tmp_path / f"s{k}" / "table.csv"))
    rows = [json.loads((tmp_path / "s2" / s / "summary.json").read_text())
            for s in ("central", "forward")]
    assert [r["status"] for r in rows] == ["skipped (already finished)"] * 2
    assert not (tmp_path / "s2" / "central" / "parameters.npz").exists()
    assert [r["setting"] for r in tables[1]] == [
        "cube-central", "cube-forward", "central-loop", "central-exact", "forward-loop",
        "forward-exact"]
    assert tables[1] == tables[0]


def test_two_jobs_of_a_sweep_never_share_a_folder(tmp_path):
    """One study setting swept over another value: both jobs resolve to the setting's folder; the
    second one stops with one line instead of overwriting the first one's files and row."""
    sweep_dir = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "dlpractice.experiment", "-m", "study/regularization=l2",
         "regularizer.lambd=0.1,0.3", "train.iterations=50", "tracking.enabled=false",
         f"hydra.sweep.dir={sweep_dir}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((sweep_dir / "l2" / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["job"] == 0
    assert summary["config"]["regularizer"]["lambd"] == 0.1
    assert [r["setting"] for r in ref.read_csv(sweep_dir / "table.csv")] == ["l2"]
    assert (f"error: job 1: {sweep_dir / 'l2'} holds job 0 of this sweep already: give each job "
            "its own folder (hydra.sweep.subdir), e.g. sweep other values with the study's "
            "preset") in proc.stderr.splitlines()


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
def test_show_prints_every_study_table_and_ui_links(tmp_path):
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
    # a fresh store: no links yet, and `show` creates neither the database nor any experiment
    assert links.strip().splitlines()[1:] == [
        f"  {study:<22} (no runs yet: dvc repro pipelines/{study}/dvc.yaml)" for study in STUDIES]
    assert not (tmp_path / "m.db").exists()


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
    """The study's summary over these run folders (in this order), as a sweep of the study's
    settings leaves them: each job's row carries its config (with the setting's note and tags)."""
    from dlpractice import studies, sweep

    for j, (name, setting) in enumerate(settings.items()):
        row = json.loads((results / name / "summary.json").read_text(encoding="utf-8"))
        tracking = row["config"].setdefault("tracking", {})
        tracking["note"] = setting.get("comment", "")
        if "course" in setting:
            tracking["tags"] = {"course_train_test": setting["course"]}
        if "tags" in setting:
            tracking["tags"] = setting["tags"]
        if "option" in setting:  # the study's setting the job ran: study/<study>=<option>
            row["overrides"] = [f"study/{study}={setting['option']}"]
        row["config"]["study"] = study
        row.update(setting=name, job=j)
        (results / name / "summary.json").write_text(json.dumps(row), encoding="utf-8")
    rows, files = studies.write_summary(study, sweep.collect_rows(results), results, target)
    assert sorted(files) == sorted(p for p in results.iterdir() if p.is_file())
    return rows, ref.read_csv(results / "table.csv"), (results / "table.md").read_text(
        encoding="utf-8")


def png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_table_is_the_runs(tmp_path):
    results = tmp_path / "results"
    summaries = {"none": run_folder(results, "none"),
                 "l2": run_folder(results, "l2", regularizer={"name": "l2", "lambd": 0.7})}
    failed_folder(results, "broken", "training diverged at iteration 3")
    settings = {"none": {"course": "0.9479 / 0.915", "comment": "No regularization.\n"},
                "l2": {"course": "0.9384 / 0.93", "comment": "L2."}, "broken": {}}
    rows, table, md = compare(results, "regularization", settings, 0.5)
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
    assert lines[:6] == ["# regularization", "", studies_text("regularization"), "",
                         "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
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
    figure = []
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
        backprop = backprop_weight_norms(init, X, Y)
        assert [float(row["grad_norm_first"]), float(row["grad_norm_last"])] == pytest.approx(
            [backprop[0], backprop[-1]], rel=1e-12)
        figure.append((row["setting"], {"act_rms": rms, "grad_norm": backprop}))
    from dlpractice import plots

    expected = plots.layer_norms(figure, tmp_path / "expected.png")
    assert (results / "layer_norms.png").read_bytes() == expected.read_bytes()


def backprop_weight_norms(parameters, X, Y) -> list[float]:
    """‖dWl‖ of the mean cross-entropy of a relu net with a sigmoid output, by the lecture's
    backpropagation: dZ[L] = (A[L] - Y) / m, dW[l] = dZ[l] A[l-1]ᵀ, dZ[l-1] = W[l]ᵀ dZ[l] * (Z > 0)."""
    L = len(parameters) // 2
    A = [X]
    for l in range(1, L + 1):
        Z = parameters[f"W{l}"] @ A[-1] + parameters[f"b{l}"]
        A.append(np.maximum(Z, 0) if l < L else 1 / (1 + np.exp(-Z)))
    dZ = (A[L] - Y) / X.shape[1]
    norms = []
    for l in range(L, 0, -1):
        norms.append(float(np.linalg.norm(dZ @ A[l - 1].T)))
        dZ = (parameters[f"W{l}"].T @ dZ) * (A[l - 1] > 0)
    return norms[::-1]


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
    head = ["# input normalization", "", "Input normalization: features on very different scales "
            "(data.feature_scales), with and without zero-mean/unit-variance normalization; "
            "iterations until the training cost first reaches the target cost.", ""]
    assert md.splitlines()[:6] == [*head, f"Target cost: {target:g}.", ""]
    assert png(results / "cost_curves.png")
    _, table, md = compare(results, "input_normalization", {"normalized": {}, "raw": {}})
    assert [r["iterations_to_target"] for r in table] == ["not in 300", "not in 300"]
    assert md.splitlines()[:5] == [*head, "| setting | train_accuracy | dev_accuracy | test_accuracy "
                                          "| normalize | learning_rate | iterations_to_target | "
                                          "final_cost | diagnosis | comment |"]


# -- the lecture's studies: bias_variance and learning_curve ---------------------------------------

WORDS = {"high_variance": "high variance", "high_bias": "high bias",
         "high_bias_high_variance": "high bias and high variance",
         "good_fit": "neither high bias nor high variance"}


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def test_bias_variance_table_diagnoses_each_setting_and_says_if_it_shows_the_lecture(tmp_path):
    """Each row: the errors recomputed from its parameters, the diagnosis by the lecture's rule
    with its Bayes error and thresholds, and a comment stating the lecture's claim for the setting
    and whether the diagnosis shows it; a failed run's row says it has no numbers."""
    from dlpractice import plots

    results = tmp_path / "results"
    summaries = {
        "fit": run_folder(results, "fit", gradcheck={"enabled": False}),
        "tiny": run_folder(results, "tiny", model={"hidden": [1]}, gradcheck={"enabled": False},
                           train={"iterations": 20, "learning_rate": 0.05}),
        "noisy": run_folder(results, "noisy", data={"label_noise": 0.2, "train_size": 30},
                            diagnosis={"bayes_error": 0.2, "bias_threshold": 0.1},
                            gradcheck={"enabled": False}),
    }
    failed_folder(results, "broken", "training diverged at iteration 3")
    settings = {"fit": {"tags": {"lecture": "high_variance", "lecture_train_dev": "1% / 11%"}},
                "tiny": {"tags": {"lecture": "high_variance", "lecture_train_dev": "1% / 11%"}},
                "noisy": {"tags": {"lecture": "good_fit", "lecture_train_dev": "15% / 16%"}},
                "broken": {"tags": {"lecture": "high_bias"}}}
    rows, table, md = compare(results, "bias_variance", settings)
    columns = ["setting", "train_accuracy", "dev_accuracy", "test_accuracy", "lecture_train_dev",
               "train_error", "dev_error", "bayes_error", "avoidable_bias", "variance",
               "diagnosis", "status", "comment"]
    assert list(table[0]) == columns and [r["setting"] for r in table] == list(settings)
    for row in table[:3]:
        summary = summaries[row["setting"]]
        expected = ref.evaluate(ref.load_npz(results / row["setting"] / "parameters.npz"),
                                summary["config"])
        for column in ("train_error", "dev_error", "avoidable_bias", "variance"):
            assert float(row[column]) == pytest.approx(expected[column], abs=1e-12), column
        assert row["diagnosis"] == expected["diagnosis"]
        bayes = summary["config"]["diagnosis"]["bayes_error"]
        assert float(row["bayes_error"]) == bayes
        lecture = settings[row["setting"]]["tags"]
        assert row["lecture_train_dev"] == lecture["lecture_train_dev"]
        claim = WORDS[lecture["lecture"]] + (f" with Bayes error {percent(bayes)}" if bayes else "")
        verdict = ("shown" if expected["diagnosis"] == lecture["lecture"]
                   else f"not shown (diagnosed {expected['diagnosis']})")
        assert row["comment"] == (f"{claim}: train {percent(expected['train_error'])} vs dev "
                                  f"{percent(expected['dev_error'])} — {verdict}")
    assert [r["comment"].rsplit(" — ", 1)[1] for r in table[:2]] == [
        "shown", "not shown (diagnosed high_bias)"]
    assert table[3]["comment"] == "high bias: no errors to show it (the run failed)"
    assert table[3]["train_error"] == "" and table[3]["status"].startswith("failed: ")
    assert "High bias:" not in md  # the settings' thresholds differ: no one line for them all
    chart = [{"setting": r["setting"], **{k: (float(r[k]) if r[k] else None) for k in
                                          ("train_error", "dev_error", "bayes_error")}}
             for r in table]
    expected_chart = plots.bias_variance_chart(chart, tmp_path / "chart.png")
    assert (results / "bias_variance.png").read_bytes() == expected_chart.read_bytes()
    assert png(results / "boundaries.png")
    assert all(not k.startswith("_") for r in rows for k in r)


def test_bias_variance_heading_names_the_thresholds_they_share(tmp_path):
    results = tmp_path / "results"
    run_folder(results, "a", gradcheck={"enabled": False},
               diagnosis={"bias_threshold": 0.02, "variance_threshold": 0.125})
    _, table, md = compare(results, "bias_variance", {"a": {"tags": {"lecture": "high_bias"}}})
    assert md.splitlines()[2:6] == [studies_text("bias_variance"), "",
                                    "High bias: avoidable bias above 2.0%; high variance: variance "
                                    "above 12.5% (diagnosis.bias_threshold, "
                                    "diagnosis.variance_threshold).", ""]
    assert table[0]["lecture_train_dev"] == ""


def learning_curve_comment(rows: list[dict], lecture: str, bias_threshold: float = 0.05,
                           variance_threshold: float = 0.05) -> str:
    """The lecture's claim of a learning curve, checked on its smallest and largest size."""
    rows = sorted(rows, key=lambda r: int(r["train_size"]))
    small, large = rows[0], rows[-1]
    f = {k: (float(small[k]), float(large[k])) for k in ("train_error", "dev_error",
                                                         "avoidable_bias", "variance")}
    span = f"{small['train_size']} → {large['train_size']} examples"
    if lecture == "high_variance":
        shown = (f["dev_error"][0] - f["dev_error"][1] > variance_threshold
                 and f["variance"][1] <= variance_threshold)
        text = (f"more data cures variance: dev error {percent(f['dev_error'][0])} → "
                f"{percent(f['dev_error'][1])}, variance {percent(f['variance'][0])} → "
                f"{percent(f['variance'][1])} ({span})")
    else:
        worst = min(float(r["avoidable_bias"]) for r in rows)
        shown = worst > bias_threshold
        text = (f"more data does not cure bias: train error {percent(f['train_error'][0])} → "
                f"{percent(f['train_error'][1])}, avoidable bias {percent(worst)} or more ({span})")
    return text + (" — shown" if shown else " — not shown")


def test_learning_curve_rows_comments_and_figure(tmp_path):
    """One row per run: its name, its curve (the study's setting it ran), its training-set size,
    errors recomputed from its parameters; each curve's comment checks the lecture's claim on its
    smallest and largest size; one figure of the curves, no decision boundaries."""
    from dlpractice import plots

    results = tmp_path / "results"
    big = {"model": {"hidden": [20, 20]}, "train": {"iterations": 600, "learning_rate": 0.5}}
    small = {"model": {"hidden": [1]}, "train": {"iterations": 300, "learning_rate": 0.5}}
    settings, summaries = {}, {}
    for option, sections, lecture in (("wide", big, "high_variance"),
                                      ("narrow", small, "high_bias"),
                                      ("claimless", small, "")):
        for size in (10, 60, 30):  # sizes in any order: the comment takes the extremes
            name = f"{option}-n{size}"
            summaries[name] = run_folder(results, name, data={"train_size": size},
                                         gradcheck={"enabled": False}, **sections)
            settings[name] = {"option": option, "tags": {"lecture": lecture} if lecture else {}}
    failed_folder(results, "lost-n10", "killed")
    settings["lost-n10"] = {"option": "lost", "tags": {"lecture": "high_variance"}}
    rows, table, md = compare(results, "learning_curve", settings)
    columns = ["setting", "train_accuracy", "dev_accuracy", "test_accuracy", "curve",
               "train_size", "train_error", "dev_error", "bayes_error", "avoidable_bias",
               "variance", "diagnosis", "status", "comment"]
    assert list(table[0]) == columns
    # the failed run's config has no train_size: all 60 training examples of BASE's data
    assert [(r["setting"], r["curve"], r["train_size"]) for r in table] == [
        (name, s["option"], name.rsplit("-n", 1)[1] if name != "lost-n10" else "60")
        for name, s in settings.items()]
    for row, name in zip(table, settings):
        if name == "lost-n10":
            continue
        expected = ref.evaluate(ref.load_npz(results / name / "parameters.npz"),
                                summaries[name]["config"])
        for column in ("train_error", "dev_error", "avoidable_bias", "variance"):
            assert float(row[column]) == pytest.approx(expected[column], abs=1e-12), column
        data, _ = ref.dataset(summaries[name]["config"])
        assert int(row["train_size"]) == data["Y_train"].shape[1]
    by_option = {o: [r for r in table if r["curve"] == o] for o in ("wide", "narrow")}
    assert {r["comment"] for r in by_option["wide"]} == {
        learning_curve_comment(by_option["wide"], "high_variance")}
    assert {r["comment"] for r in by_option["narrow"]} == {
        learning_curve_comment(by_option["narrow"], "high_bias")}
    assert [r["comment"] for r in table if r["curve"] in ("claimless", "lost")] == [
        "the lecture makes no claim of this curve (tags: lecture)"] * 3 + [
        "no errors to show the claim (the runs failed)"]
    series = {}
    for row in table:
        entry = series.setdefault(row["curve"], (row["curve"], [], [], [], 0.0))
        entry[1].append(int(row["train_size"]))
        entry[2].append(float(row["train_error"]) if row["train_error"] else None)
        entry[3].append(float(row["dev_error"]) if row["dev_error"] else None)
    expected = plots.learning_curves(list(series.values()), tmp_path / "curves.png")
    assert (results / "learning_curves.png").read_bytes() == expected.read_bytes()
    assert not (results / "boundaries.png").exists()
    assert md.splitlines()[0] == "# learning curve"


@pytest.mark.parametrize(("lecture", "shape", "verdict"), [
    ("high_variance", [(10, 0.0, 0.30), (40, 0.05, 0.08)], "shown"),
    ("high_variance", [(10, 0.0, 0.30), (40, 0.02, 0.08)], "not shown"),  # variance 6 points left
    ("high_variance", [(10, 0.0, 0.12), (40, 0.05, 0.07)], "not shown"),  # dev falls 5 points only
    ("high_bias", [(10, 0.2, 0.25), (40, 0.10, 0.12)], "shown"),
    ("high_bias", [(10, 0.2, 0.25), (20, 0.05, 0.2), (40, 0.10, 0.12)], "not shown"),
])
def test_learning_curve_claims_are_checked_on_the_numbers(lecture, shape, verdict):
    """The margins: dev error must fall by more than the variance threshold and the variance at the
    largest size be within it; the avoidable bias must exceed its threshold at every size."""
    from dlpractice import claims

    lines = [{"setting": f"s-n{n}", "curve": "s", "train_size": n, "train_error": tr, "dev_error": dv,
              "avoidable_bias": tr, "variance": dv - tr, "_lecture": lecture,
              "_thresholds": (0.05, 0.05)} for n, tr, dv in shape]
    texts = claims.learning_curve_comments(lines)
    table = [{k: str(v) for k, v in line.items()} for line in lines]
    assert texts == [learning_curve_comment(table, lecture)] * len(lines)
    assert texts[0].endswith(f" — {verdict}")


def curve_line(curve: str, n: int, train: float | None, dev: float | None, lecture: str,
               threshold: float = 0.25) -> dict:
    return {"setting": f"{curve}-n{n}", "curve": curve, "train_size": n, "train_error": train,
            "dev_error": dev, "avoidable_bias": train, "variance": None if dev is None else dev - train,
            "_lecture": lecture, "_thresholds": (threshold, threshold)}


def test_learning_curve_margins_are_strict_and_each_curve_is_judged():
    """Exact binary fractions: a dev error falling by exactly the threshold is no cure; a variance
    exactly at the threshold is within it. A curve without a claim, or a run without errors, does
    not stop the curves after it from being judged."""
    from dlpractice import claims

    exactly = [curve_line("a", 10, 0.0, 0.5, "high_variance"),
               curve_line("a", 40, 0.0, 0.25, "high_variance")]  # falls by 0.25 exactly
    assert claims.learning_curve_comments(exactly)[0].endswith(" — not shown")
    within = [curve_line("a", 10, 0.0, 1.0, "high_variance"),
              curve_line("a", 40, 0.25, 0.5, "high_variance")]  # variance 0.25 at the end
    assert claims.learning_curve_comments(within)[0].endswith(" — shown")
    lines = [curve_line("none", 10, 0.5, 0.5, ""),
             curve_line("bias", 10, 0.5, 0.5, "high_bias"),
             curve_line("bias", 5, 0.125, None, "high_bias"),  # no dev error: left out
             curve_line("bias", 40, 0.5, 0.5, "high_bias")]
    texts = claims.learning_curve_comments(lines)
    assert texts[0] == "the lecture makes no claim of this curve (tags: lecture)"
    assert texts[1:] == [learning_curve_comment(
        [{k: str(v) for k, v in line.items()} for line in (lines[1], lines[3])], "high_bias",
        0.25, 0.25)] * 3
    assert texts[1] == ("more data does not cure bias: train error 50.0% → 50.0%, avoidable "
                        "bias 50.0% or more (10 → 40 examples) — shown")


def test_a_learning_curve_run_without_a_study_setting_is_its_own_curve(tmp_path):
    results = tmp_path / "results"
    run_folder(results, "solo", data={"train_size": 30}, gradcheck={"enabled": False})
    _, table, _ = compare(results, "learning_curve", {"solo": {"tags": {"lecture": "high_bias"}}})
    assert [(r["setting"], r["curve"], r["train_size"]) for r in table] == [("solo", "solo", "30")]


@pytest.mark.parametrize(("line", "comment"), [
    ({"train_error": 0.1, "dev_error": 0.2, "diagnosis": "high_variance"},
     "no claim: train 10.0% vs dev 20.0% — not shown (diagnosed high_variance)"),
    ({"_lecture": "", "train_error": 0.1, "dev_error": 0.2, "diagnosis": "high_variance"},
     "no claim: train 10.0% vs dev 20.0% — not shown (diagnosed high_variance)"),
    ({"_lecture": "overfit", "train_error": 0.0, "dev_error": 0.125, "diagnosis": "high_variance"},
     "overfit: train 0.0% vs dev 12.5% — not shown (diagnosed high_variance)"),
    ({"_lecture": "good_fit", "train_error": 0.155, "dev_error": 0.16, "bayes_error": 0.15,
      "diagnosis": "good_fit"},
     "neither high bias nor high variance with Bayes error 15.0%: train 15.5% vs dev 16.0% — shown"),
    ({"_lecture": "high_bias", "train_error": 0.2, "dev_error": None},
     "high bias: no errors to show it (the run failed)"),
    ({"_lecture": "high_bias", "train_error": None, "dev_error": 0.2},
     "high bias: no errors to show it (the run failed)"),
])
def test_bias_variance_comment_of_any_line(line, comment):
    from dlpractice import claims

    assert claims.bias_variance_comment(line) == comment


def test_a_setting_without_lecture_tags_makes_no_claim(tmp_path):
    results = tmp_path / "results"
    run_folder(results, "plain", gradcheck={"enabled": False})
    _, table, _ = compare(results, "bias_variance", {"plain": {}})
    assert table[0]["lecture_train_dev"] == ""
    assert table[0]["comment"] == (
        f"no claim: train {percent(float(table[0]['train_error']))} vs dev "
        f"{percent(float(table[0]['dev_error']))} — not shown (diagnosed {table[0]['diagnosis']})")


def test_a_failed_run_that_left_its_parameters_is_a_failed_row(tmp_path):
    """A run that fails after training (its gradient check, say) leaves parameters.npz: its row
    says failed all the same, and it has no boundary panel."""
    from dlpractice import plots

    results = tmp_path / "results"
    run_folder(results, "ok")
    summary = run_folder(results, "late")
    (results / "late" / "summary.json").write_text(json.dumps(
        {**summary, "status": "failed", "error": "gradient check failed"}))
    _, table, _ = compare(results, "initialization", {"ok": {"course": "0.5 / 0.5"},
                                                      "late": {"course": "0.83 / 0.86"}})
    assert [(r["setting"], r["course_train_test"], r["status"]) for r in table] == [
        ("ok", "0.5 / 0.5", ""), ("late", "0.83 / 0.86", "failed: gradient check failed")]
    data, _ = ref.dataset(summary["config"])
    mean, std = ref.normalizer(data["X_train"])
    ok = json.loads((results / "ok" / "summary.json").read_text())
    expected = plots.boundaries_side_by_side(
        [(f"ok: train {ok['train_accuracy']:.3f}, test {ok['test_accuracy']:.3f}",
          ref.load_npz(results / "ok" / "parameters.npz"), (data["X_train"] - mean) / std,
          data["Y_train"], "relu")], tmp_path / "expected.png")
    assert (results / "boundaries.png").read_bytes() == expected.read_bytes()


def test_study_option_is_the_setting_a_job_ran():
    from dlpractice import studies

    assert studies.study_option({"overrides": ["study/learning_curve=high_bias",
                                               "data.train_size=20"]}) == "high_bias"
    assert studies.study_option({"overrides": ["data.train_size=20"]}) is None
    assert studies.study_option({}) is None
    assert studies.study_option({"overrides": ["study/a=x", "study/b=y"]}) is None
    # the option is all that follows the first "="
    assert studies.study_option({"overrides": ["study/a=x=y"]}) == "x=y"


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


def test_underflowing_norms_are_zero_whatever_numpy_raises(tmp_path):
    """A tiny random init underflows to 0, also when the caller has numpy raise on underflow."""
    from dlpractice import config, pipeline

    results = tmp_path / "results"
    sections = {"model": {"hidden": [4, 4, 4]}, "init": {"name": "random", "scale": 1e-200}}
    hand_made_run(results, "tiny", {"status": "failed", "error": "diverged"}, **sections)
    with np.errstate(under="raise"):
        rows, _, _ = compare(results, "vanishing_gradients", {"tiny": {}})
    cfg = config.load({**BASE, **sections})
    splits, _ = pipeline.normalize(cfg, pipeline.prepare_data(cfg).splits)
    init = pipeline.initial_parameters(pipeline.train_config(cfg, 2))
    A, rms = splits.X_train, []
    with np.errstate(under="ignore"):
        for l in (1, 2, 3):
            A = np.maximum(init[f"W{l}"] @ A + init[f"b{l}"], 0)
            rms.append(float(np.sqrt(np.mean(A * A))))
            assert l > 1 or 0 < np.abs(A).max() < 1e-150  # the first layer's squares underflow
        grads = backprop_weight_norms(init, splits.X_train, splits.Y_train)
    assert rms == [0.0, 0.0, 0.0] and grads == [0.0, 0.0, 0.0, 0.0]
    assert [rows[0][k] for k in ("act_rms_first", "act_rms_last", "grad_norm_first",
                                 "grad_norm_last")] == [rms[0], rms[-1], grads[0], grads[-1]]


def hand_made_run(results: Path, name: str, summary: dict, **sections) -> None:
    """A run folder written by hand: a summary.json with its config, no parameters."""
    from dlpractice import config

    (results / name).mkdir(parents=True)
    cfg = config.load({**BASE, **sections}).to_dict()
    (results / name / "summary.json").write_text(json.dumps({**summary, "config": cfg}))


def test_rows_from_hand_made_folders(tmp_path):
    """A gradient check exactly at its threshold fails; a run without parameters or error says
    so."""
    results = tmp_path / "results"
    threshold = 2e-7  # the config's
    hand_made_run(results, "at_threshold", {"gradcheck_difference": threshold,
                                            "train_accuracy": 0.5})
    hand_made_run(results, "unchecked", {"gradcheck_difference": None})
    _, table, md = compare(results, "gradient_checking", {"at_threshold": {}, "unchecked": {}})
    assert [(r["setting"], r["gradcheck_passed"], r["status"]) for r in table] == [
        ("at_threshold", "no", "failed: no parameters.npz"),
        ("unchecked", "", "failed: no parameters.npz")]
    assert table[0]["train_accuracy"] == "0.5" and table[1]["train_accuracy"] == ""
    assert md.splitlines()[0] == "# gradient checking"
    assert "Target cost" not in md


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


# -- `run` and `show`, in process ---------------------------------------------------------------------

LINK_NAMES = {"initialization": "initialization        ", "regularization": "regularization        ",
              "gradient_checking": "gradient_checking     ",
              "vanishing_gradients": "vanishing_gradients   ",
              "input_normalization": "input_normalization   ",
              "bias_variance": "bias_variance         ", "learning_curve": "learning_curve        ",
              "other_regularization": "other_regularization  ",
              "numerical_gradient": "numerical_gradient    ", "recipe": "recipe                "}


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
def test_show_in_a_project(tmp_path, monkeypatch, capsys):
    """`show` (all studies by default, else those named, in that order) prints each study's
    table.md of the project it runs in, or how to make it, then each study's runs link."""
    from mlflow.tracking import MlflowClient

    from dlpractice import studies

    project = tmp_path / "project"
    (project / "conf").mkdir(parents=True)
    (project / "dvc.yaml").write_text("stages: {}\n")
    table = "# regularization\n\n| setting | train_accuracy |\n|---|---|\n| l2 | 0.9 |\n"
    (project / "pipelines" / "regularization" / "results").mkdir(parents=True)
    (project / "pipelines" / "regularization" / "results" / "table.md").write_text(table)
    (project / "pipelines" / "initialization").mkdir(parents=True)
    monkeypatch.chdir(project)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    uri = f"sqlite:///{tmp_path}/m.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = MlflowClient(uri)
    client.create_experiment("input_normalization")  # the ids are not in the table's order
    client.create_experiment("other")
    client.create_experiment("regularization")
    client.delete_experiment(client.create_experiment("recipe"))  # deleted: no runs to browse

    assert studies.main(["show"]) == 0
    out = capsys.readouterr().out
    ids = {s: client.get_experiment_by_name(s).experiment_id
           for s in ("input_normalization", "regularization")}
    missing = "(no table yet: dvc repro pipelines/{}/dvc.yaml)\n"
    no_runs = "(no runs yet: dvc repro pipelines/{}/dvc.yaml)"
    assert out == (
        "\n## initialization\n\n" + missing.format("initialization") + "\n"
        + "\n## regularization\n\n" + table + "\n"
        + "".join(f"\n## {s}\n\n" + missing.format(s) + "\n" for s in STUDIES[2:])
        + "Browse the runs in the MLflow UI: make ui   (then open the links below)\n"
        + "".join(f"  {LINK_NAMES[s]} " + (f"http://127.0.0.1:5000/#/experiments/{ids[s]}/runs"
                                          if s in ids else no_runs.format(s)) + "\n"
                  for s in STUDIES))
    # nothing created: the studies without runs have no experiment
    assert sorted(e.name for e in client.search_experiments()) == [
        "Default", "input_normalization", "other", "regularization"]

    monkeypatch.chdir(tmp_path)
    assert studies.show(["regularization"], root=project) == 0
    assert capsys.readouterr().out == (
        "\n## regularization\n\n" + table + "\n"
        + "Browse the runs in the MLflow UI: make ui   (then open the links below)\n"
        + f"  regularization         http://127.0.0.1:5000/#/experiments/{ids['regularization']}/runs\n")
    monkeypatch.chdir(project)
    assert studies.main(["show", "input_normalization", "regularization"]) == 0
    assert capsys.readouterr().out == (
        "\n## input_normalization\n\n" + missing.format("input_normalization") + "\n"
        + "\n## regularization\n\n" + table + "\n"
        + "Browse the runs in the MLflow UI: make ui   (then open the links below)\n"
        + f"  input_normalization    http://127.0.0.1:5000/#/experiments/"
          f"{ids['input_normalization']}/runs\n"
        + f"  regularization         http://127.0.0.1:5000/#/experiments/"
          f"{ids['regularization']}/runs\n")


def test_show_names_the_first_unknown_study(monkeypatch, capsys):
    """Also from the command line's own arguments (sys.argv)."""
    from dlpractice import studies

    message = ("error: unknown study 'nope'; choose from initialization, regularization, "
               "gradient_checking, vanishing_gradients, input_normalization, bias_variance, "
               "learning_curve, other_regularization, numerical_gradient, recipe\n")
    assert studies.main(["show", "regularization", "nope", "bad"]) == 1
    assert capsys.readouterr() == ("", message)
    monkeypatch.setattr(sys, "argv", ["python -m dlpractice.studies", "show", "nope"])
    assert studies.main() == 1
    assert capsys.readouterr() == ("", message)


# -- the command line: help, usage errors, files -------------------------------------------------------

@pytest.fixture
def ascii_locale():
    """A POSIX locale whose encoding is ASCII (LANG=C without Python's UTF-8 coercion)."""
    import locale

    previous = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        assert locale.getencoding() == "ANSI_X3.4-1968"
        yield
    finally:
        locale.setlocale(locale.LC_CTYPE, previous)


def test_files_are_utf8_whatever_the_locale(tmp_path, ascii_locale):
    """summary.json and history.csv are read, table.md and table.csv written, as UTF-8 also
    where the locale's encoding is ASCII."""
    from dlpractice import config

    results = tmp_path / "results"
    (results / "raw").mkdir(parents=True)
    cfg = config.load({**BASE, "data": {**BASE["data"], "normalize": False}}).to_dict()
    summary = {"train_accuracy": 0.5, "status": "failed", "error": "diverged — λ too large",
               "config": cfg}
    (results / "raw" / "summary.json").write_text(json.dumps(summary, ensure_ascii=False),
                                                  encoding="utf-8")
    (results / "raw" / "history.csv").write_text(
        "iteration,cost,note\n0,0.69,début\n50,0.45,λ halved\n", encoding="utf-8")
    compare(results, "input_normalization", {"raw": {"comment": "no normalization — slow"}}, 0.5)
    header = ("| setting | train_accuracy | dev_accuracy | test_accuracy | normalize | learning_rate "
              "| iterations_to_target | final_cost | diagnosis | status | comment |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|\n")
    row = ("| raw | 0.5000 |  |  | no | 0.5000 | 50 |  |  | failed: diverged — λ too large "
           "| no normalization — slow |\n")
    assert (results / "table.md").read_text(encoding="utf-8") == (
        "# input normalization\n\nInput normalization: features on very different scales "
        "(data.feature_scales), with and without zero-mean/unit-variance normalization; iterations "
        "until the training cost first reaches the target cost.\n\nTarget cost: 0.5.\n\n"
        + header + row)
    assert (results / "table.csv").read_text(encoding="utf-8") == (
        "setting,train_accuracy,dev_accuracy,test_accuracy,normalize,learning_rate,"
        "iterations_to_target,final_cost,diagnosis,status,comment\n"
        "raw,0.5,,,no,0.5,50,,,failed: diverged — λ too large,no normalization — slow\n")


HELP = """\
usage: python -m dlpractice.studies [-h] {show} ...

positional arguments:
  {show}
    show      print the studies' tables and their MLflow UI links

options:
  -h, --help  show this help message and exit
"""


def test_help_and_usage_errors(monkeypatch, capsys):
    from dlpractice import studies

    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as info:
        studies.main(["--help"])
    assert info.value.code == 0 and capsys.readouterr() == (HELP, "")
    prog = "error: python -m dlpractice.studies"
    cases = {
        (): f"{prog}: the following arguments are required: command (see --help)\n",
        ("compare",): f"{prog}: argument command: invalid choice: 'compare' (choose from 'show') "
                      "(see --help)\n",
        ("show", "--all"): f"{prog}: unrecognized arguments: --all (see --help)\n",
    }
    for argv, message in cases.items():
        with pytest.raises(SystemExit) as info:
            studies.main(list(argv))
        assert info.value.code == 2
        assert capsys.readouterr() == ("", message)


def test_a_runs_missing_data_file_is_one_line(tmp_path):
    """The boundaries are drawn over the data derived again from a run's config: a data file
    that is gone is one line (the sweep prints it and still closes its parent run)."""
    from dlpractice.errors import DataError

    data = tmp_path / "points.npz"
    rng = np.random.default_rng(0)
    np.savez(data, X=rng.normal(size=(60, 2)), y=np.arange(60) % 2)
    moved = tmp_path / "moved"
    hand_made_run(moved, "file", {"train_accuracy": 0.5}, data={"name": "file", "path": str(data)})
    data.unlink()
    with pytest.raises(DataError) as info:
        compare(moved, "regularization", {"file": {}})
    assert str(info.value) == f"data file '{data}' does not exist"


def test_a_run_without_test_accuracy_is_titled_by_its_name(tmp_path):
    """A finished run's boundary panel says train and test accuracy, or only the setting's name
    when the summary lacks one of them."""
    from dlpractice import config, plots

    rng = np.random.default_rng(1)
    parameters = {"W1": rng.normal(size=(3, 2)), "b1": rng.normal(size=(3, 1)),
                  "W2": rng.normal(size=(1, 3)), "b2": rng.normal(size=(1, 1))}
    results = tmp_path / "results"
    cfg = config.load({**BASE, "model": {"hidden": [3]}}).to_dict()
    for name, summary in (("partial", {"train_accuracy": 0.75}),
                          ("whole", {"train_accuracy": 0.75, "test_accuracy": 0.5})):
        (results / name).mkdir(parents=True)
        (results / name / "summary.json").write_text(json.dumps({**summary, "config": cfg}))
        np.savez(results / name / "parameters.npz", **parameters)
    compare(results, "regularization", {"partial": {}, "whole": {}})
    data, _ = ref.dataset(cfg)
    mean, std = ref.normalizer(data["X_train"])
    X = (data["X_train"] - mean) / std
    expected = plots.boundaries_side_by_side(
        [("partial", parameters, X, data["Y_train"], "relu"),
         ("whole: train 0.750, test 0.500", parameters, X, data["Y_train"], "relu")],
        tmp_path / "expected.png")
    assert (results / "boundaries.png").read_bytes() == expected.read_bytes()


def test_the_readmes_study_table_gives_each_study_its_claim_and_its_pipeline():
    """Every study is a row of the README's table, in STUDIES' order, with a claim and the
    command of a pipeline that exists and writes the study's table."""
    import yaml

    text = (ROOT / "README.md").read_text()
    start = text.index("| study | settings | claim | table, figures, command |")
    rows = text[start:text.index("\n\n", start)].splitlines()[2:]
    cells = [[c.strip() for c in row.strip("|").split(" | ")] for row in rows]
    assert [c[0] for c in cells] == list(STUDIES)
    for name, _settings, claim, last in cells:
        assert claim.startswith("**claim**: ") and len(claim) > 40, name
        command = f"`dvc repro pipelines/{name}/dvc.yaml`"
        assert last.endswith(f". {command} "[:-1]), name
        stage = yaml.safe_load((ROOT / "pipelines" / name / "dvc.yaml").read_text())
        (only,) = stage["stages"].values()
        assert "results/table.md" in [next(iter(o)) if isinstance(o, dict) else o
                                      for o in only["outs"]], name


def test_a_learning_curves_gaps_are_judged_as_the_diagnosis_judges_them():
    """A variance of 5 points but for rounding ((1 - 0.94) - (1 - 0.99)) is cured, as
    ``diagnose`` calls it no high variance."""
    from dlpractice import claims
    from dlpractice.diagnose import diagnose

    train, dev = 1 - 0.99, 1 - 0.94
    assert dev - train > 0.05 and diagnose(train, dev).label == "good_fit"
    lines = [{"setting": f"s-n{n}", "curve": "s", "train_size": n, "train_error": tr,
              "dev_error": dv, "avoidable_bias": tr, "variance": dv - tr,
              "_lecture": "high_variance", "_thresholds": (0.05, 0.05)}
             for n, tr, dv in ((10, 0.0, 0.3), (40, train, dev))]
    assert claims.learning_curve_comments(lines)[0].endswith(" — shown")
