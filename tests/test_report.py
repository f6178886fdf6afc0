"""What a run leaves for people (dlpractice.report): its files, its line on the terminal and the
comparison tables — each number checked against the run it came from."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
import threading
import time
from dataclasses import replace

import numpy as np
import pytest
import yaml

from dlpractice import config, pipeline, report
from dlpractice.nn import TrainResult
from tests import reference as ref

ROW_COLUMNS = ["setting", "status", "train_accuracy", "dev_accuracy", "test_accuracy",
               "train_error", "dev_error", "diagnosis", "gradcheck_difference", "recommendation"]


@pytest.fixture(scope="module")
def outcome():
    cfg = config.load({"data": {"name": "moons", "n_samples": 120, "noise": 0.3},
                       "train": {"iterations": 400, "record_every": 100, "learning_rate": 0.5},
                       "regularizer": {"name": "l2", "lambd": 0.2},
                       "tracking": {"enabled": False}})
    return pipeline.run_all(cfg)


def test_run_files(outcome, tmp_path):
    from dlpractice import plots

    files = report.write_run_outputs(outcome, tmp_path / "nested" / "run")
    (tmp_path / "run").symlink_to(tmp_path / "nested" / "run")
    assert {k: v.name for k, v in files.items()} == {
        "parameters": "parameters.npz", "history": "history.csv", "config": "config.yaml",
        "metrics": "metrics.json", "cost_curve": "cost_curve.png", "grad_norms": "grad_norms.png",
        "weights": "weight_histograms.png", "decision_boundary": "decision_boundary.png",
        "normalizer": "normalizer.npz"}
    assert all(p.parent == tmp_path / "nested" / "run" and p.is_file() for p in files.values())
    files = {k: tmp_path / "run" / v.name for k, v in files.items()}
    # the YAML keeps the config's order; the JSON is indented for people
    assert [ln.split(":")[0] for ln in files["config"].read_text().splitlines()
            if ln and not ln.startswith((" ", "-"))] == list(outcome.cfg.to_dict())
    assert files["metrics"].read_text().startswith('{\n  "train_accuracy": ')
    # the boundary is drawn over the training examples, titled with the run's name
    s = outcome.splits
    drawn = plots.decision_boundary(outcome.result.parameters, s.X_train, s.Y_train, "relu",
                                    tmp_path / "expected.png", title="he-l2_0.2")
    assert files["decision_boundary"].read_bytes() == drawn.read_bytes()
    parameters = report.load_parameters(files["parameters"])
    for key, value in outcome.result.parameters.items():
        np.testing.assert_array_equal(parameters[key], value)
    cfg = yaml.safe_load(files["config"].read_text())
    assert cfg == outcome.cfg.to_dict()
    normalizer = ref.load_npz(files["normalizer"])  # the inputs' normalization, to apply again
    assert sorted(normalizer) == ["mean", "std"]
    np.testing.assert_array_equal(normalizer["mean"], outcome.stats.mean)
    np.testing.assert_array_equal(normalizer["std"], outcome.stats.std)
    expected = ref.evaluate(parameters, cfg)
    metrics = json.loads(files["metrics"].read_text())
    assert set(metrics) == {"train_accuracy", "dev_accuracy", "test_accuracy", "train_error",
                            "dev_error", "test_error", "avoidable_bias", "variance", "dev_cost",
                            "train_seconds", "final_cost", "gradcheck_difference", "diagnosis",
                            "recommendation"}
    # the last recorded dev cost (iteration 300 of 400: not the final parameters'), the value
    # MLflow shows for its history
    data = ref.dataset(cfg)[0]
    mean, std = ref.normalizer(data["X_train"])
    assert metrics["dev_cost"] == outcome.result.dev_costs[-1]
    assert metrics["dev_cost"] != pytest.approx(ref.cost(parameters, (data["X_dev"] - mean) / std,
                                                         data["Y_dev"], lambd=0.2), rel=1e-6)
    for name in ("train_accuracy", "dev_accuracy", "test_accuracy", "train_error", "dev_error",
                 "test_error", "avoidable_bias", "variance"):
        assert metrics[name] == pytest.approx(expected[name], abs=1e-12), name
    assert metrics["diagnosis"] == expected["diagnosis"]
    assert metrics["recommendation"] == outcome.evaluation.diagnosis.recommendation
    assert metrics["final_cost"] == outcome.result.final_cost
    assert metrics["train_seconds"] == outcome.result.train_seconds > 0
    assert metrics["gradcheck_difference"] == outcome.gradcheck.difference
    history = ref.read_csv(files["history"])
    assert [int(r["iteration"]) for r in history] == [0, 100, 200, 300]
    assert [float(r["cost"]) for r in history] == outcome.result.costs
    assert [float(r["dev_cost"]) for r in history] == outcome.result.dev_costs
    for layer in (1, 2, 3):
        assert [float(r[f"grad_norm_W{layer}"]) for r in history] == [
            norms[layer - 1] for norms in outcome.result.grad_norms]


def test_history_csv_columns_and_values(tmp_path):
    result = TrainResult(parameters={}, network=None, iterations=[0, 10, 20],
                         costs=[0.75, 0.5, 0.25], dev_costs=[0.8, 0.6],
                         grad_norms=[[1.5, 2.5], [1.25, 2.25], [1.0, 2.0]])

    class Run:
        pass

    run = Run()
    run.result = result
    report.write_history(run, tmp_path / "history.csv")
    with (tmp_path / "history.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [["iteration", "cost", "dev_cost", "grad_norm_W1", "grad_norm_W2"],
                    ["0", "0.75", "0.8", "1.5", "2.5"], ["10", "0.5", "0.6", "1.25", "2.25"],
                    ["20", "0.25", "", "1.0", "2.0"]]
    run.result = TrainResult(parameters={}, network=None)
    report.write_history(run, tmp_path / "empty.csv")
    assert (tmp_path / "empty.csv").read_text().splitlines() == ["iteration,cost,dev_cost"]


def test_a_run_on_more_than_two_features_has_no_boundary(tmp_path):
    cfg = config.load({"data": {"name": "blobs", "n_samples": 60, "feature_scales": None},
                       "train": {"iterations": 20, "record_every": 10},
                       "gradcheck": {"enabled": False}, "tracking": {"enabled": False}})
    run = pipeline.run_all(cfg)
    n_features = run.splits.X_train.shape[0]
    files = report.write_run_outputs(run, tmp_path)
    assert ("decision_boundary" in files) == (n_features == 2)
    assert ("normalizer" in files) == (run.stats is not None)
    metrics = json.loads(files["metrics"].read_text())
    assert "gradcheck_difference" not in metrics  # the check was off


def test_figures_drawn_one_run_after_another_are_each_runs_own(tmp_path):
    """A sweep's process draws its jobs' figures with one RunFigures (a figure of the same layout
    given the next run's data): each file is byte for byte the one a new figure gives, whatever
    was drawn before, layouts changing back and forth."""
    from dlpractice import plots

    def run(hidden, lambd, iterations, data="moons"):
        return pipeline.run_all(config.load({
            "data": {"name": data, "n_samples": 120, "noise": 0.3}, "model": {"hidden": hidden},
            "train": {"iterations": iterations, "record_every": 20, "learning_rate": 0.5},
            "regularizer": {"name": "l2", "lambd": lambd}, "gradcheck": {"enabled": False},
            "tracking": {"enabled": False}}))

    def varied(outcome, **history):  # the same run with other histories (other layouts)
        return replace(outcome, result=replace(outcome.result, **history))

    runs = [run([6, 3], 0.0, 200), run([6, 3], 0.7, 200), run([4], 0.1, 40), run([6, 3], 0.2, 400),
            run([5, 4, 3], 0.0, 60, "circles"), run([4], 0.0, 300)]
    its = runs[0].result.iterations
    runs += [varied(runs[0], dev_costs=[]),  # no dev curve
             varied(runs[0], costs=[0.7 * 0.5**i for i in range(len(its))]),  # log-y
             varied(runs[0], grad_norms=[[0.0, 1.0, 2.0]] * len(its)),  # a zero norm: linear
             runs[1]]
    shared = plots.RunFigures()
    for i, outcome in enumerate([*runs, runs[0]]):
        a, b = tmp_path / f"a{i}", tmp_path / f"b{i}"
        one_after_another = report.write_figures(outcome, a.joinpath, shared)
        alone = report.write_figures(outcome, b.joinpath)
        assert set(one_after_another) == set(alone) == {"cost_curve", "grad_norms", "weights",
                                                        "decision_boundary"}
        for name, path in one_after_another.items():
            assert path.read_bytes() == alone[name].read_bytes(), (i, name)
        if i > 0:  # a figure of the run before is not left in place
            before = tmp_path / f"a{i - 1}"
            assert (a / "cost_curve.png").read_bytes() != (before / "cost_curve.png").read_bytes()
    # and each is its run's: the same settings draw the same files, other settings others
    first, again = tmp_path / "a0", tmp_path / f"a{len(runs)}"
    for name in ("cost_curve.png", "grad_norms.png", "weight_histograms.png"):
        assert (first / name).read_bytes() == (again / name).read_bytes()
        assert (first / name).read_bytes() != (tmp_path / "a1" / name).read_bytes()
    # the dev curve is drawn when the run recorded one (a6: the first run without it)
    assert (first / "cost_curve.png").read_bytes() != (tmp_path / "a6" / "cost_curve.png").read_bytes()


def test_a_run_without_histories_gets_figures_that_say_so(outcome, tmp_path):
    """No recorded cost or gradient norm, a layer without a finite weight: each figure is still
    written, the size of a drawn one, saying what is missing."""
    from PIL import Image

    from dlpractice import plots

    drawn = report.write_figures(outcome, (tmp_path / "drawn").joinpath)
    parameters = {**outcome.result.parameters, "W2": np.full_like(outcome.result.parameters["W2"],
                                                                  np.nan)}
    empty = replace(outcome, result=replace(outcome.result, iterations=[], costs=[], dev_costs=[],
                                            grad_norms=[], parameters=parameters))
    shared = plots.RunFigures()
    report.write_figures(outcome, (tmp_path / "before").joinpath, shared)
    files = report.write_figures(empty, (tmp_path / "empty").joinpath, shared)
    for name in ("cost_curve", "grad_norms", "weights"):
        with Image.open(files[name]) as image, Image.open(drawn[name]) as reference:
            assert image.size == reference.size
        assert files[name].read_bytes() != drawn[name].read_bytes()


def test_outcome_row(outcome):
    row = report.outcome_row(outcome)
    expected = ref.evaluate(outcome.result.parameters, outcome.cfg.to_dict())
    assert row["setting"] == "he-l2_0.2" and row["config"] == outcome.cfg.to_dict()
    for name in ("train_accuracy", "dev_accuracy", "test_accuracy", "avoidable_bias", "variance"):
        assert row[name] == pytest.approx(expected[name], abs=1e-12), name
    assert (row["diagnosis"], row["recommendation"]) == (
        expected["diagnosis"], outcome.evaluation.diagnosis.recommendation)
    assert row["final_cost"] == pytest.approx(
        ref.cost(outcome.result.parameters, outcome.splits.X_train, outcome.splits.Y_train,
                 lambd=0.2), rel=1e-12)


def test_a_run_folder_gives_back_its_parameters_and_normalization(outcome, tmp_path):
    report.write_run_outputs(outcome, tmp_path / "run")
    parameters, stats = report.load_trained(tmp_path / "run")
    assert sorted(parameters) == sorted(outcome.result.parameters)
    for key, value in outcome.result.parameters.items():
        np.testing.assert_array_equal(parameters[key], value)
    saved = ref.load_npz(tmp_path / "run" / "normalizer.npz")
    np.testing.assert_array_equal(stats.mean, saved["mean"])
    np.testing.assert_array_equal(stats.std, saved["std"])
    (tmp_path / "run" / "normalizer.npz").unlink()  # a run that did not normalize saves none
    assert report.load_trained(tmp_path / "run")[1] is None


def test_parameters_load_without_pickle(tmp_path):
    np.savez(tmp_path / "objects.npz", W1=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle=False"):
        report.load_parameters(tmp_path / "objects.npz")


def test_format_row():
    row = {"setting": "he-l2_0.7", "status": "finished", "train_accuracy": 0.93,
           "dev_accuracy": 0.875, "test_accuracy": 0.9, "diagnosis": "high_variance",
           "recommendation": "more data", "gradcheck_difference": 1.234e-15}
    assert report.format_row(row) == (
        "he-l2_0.7: finished  accuracy train 0.9300  dev 0.8750  test 0.9000\n"
        "  diagnosis: high_variance -> more data\n"
        "  gradient check difference: 1.23e-15")
    assert report.format_row({**row, "gradcheck_difference": None}) == (
        "he-l2_0.7: finished  accuracy train 0.9300  dev 0.8750  test 0.9000\n"
        "  diagnosis: high_variance -> more data")
    assert report.format_row({"setting": "x", "status": "skipped", "dev_accuracy": 0.5}) == (
        "x: skipped  accuracy dev 0.5000")
    assert report.format_row({"setting": "init=zeros", "status": "failed",
                              "error": "training diverged"}) == (
        "init=zeros: FAILED: training diverged")
    assert report.format_row({"setting": "y", "status": "failed"}) == "y: FAILED: "
    assert report.format_row({"setting": "z", "test_accuracy": 0.25, "diagnosis": "good_fit"}) == (
        "z:   accuracy test 0.2500\n  diagnosis: good_fit -> ")


ROWS = [
    {"setting": "a", "status": "finished", "train_accuracy": 0.96875, "dev_accuracy": 0.5,
     "test_accuracy": 1.0, "train_error": 0.03125, "dev_error": 0.5, "diagnosis": "high_variance",
     "gradcheck_difference": 1.5e-15, "recommendation": "more data | regularization",
     "config": {"seed": 0}},
    {"setting": "b", "status": "failed", "error": "diverged", "train_accuracy": None},
    {"setting": "c", "status": "finished", "train_accuracy": 0.0, "dev_accuracy": 0.00049,
     "test_accuracy": 0.001, "gradcheck_difference": 0.0123456},
]


def test_markdown_table_cells():
    text = report.table_markdown(ROWS)
    lines = text.splitlines()
    assert text.endswith("\n") and len(lines) == 5
    assert lines[0] == "| " + " | ".join(ROW_COLUMNS) + " |"
    assert lines[1] == "|" + "---|" * len(ROW_COLUMNS)
    # 4 decimals; 3 significant digits below 1e-3; blank for a missing value; '|' kept out
    assert lines[2] == ("| a | finished | 0.9688 | 0.5000 | 1.0000 | 0.0312 | 0.5000 | "
                        "high_variance | 1.5e-15 | more data / regularization |")
    assert lines[3] == "| b | failed |  |  |  |  |  |  |  |  |"
    assert lines[4] == "| c | finished | 0.0000 | 0.00049 | 0.0010 |  |  |  | 0.0123 |  |"
    only = report.table_markdown(ROWS, ["setting", "dev_accuracy", "nowhere"]).splitlines()
    assert only[0] == "| setting | dev_accuracy |" and only[2] == "| a | 0.5000 |"


def test_written_tables(tmp_path):
    md, path_csv = report.write_table(ROWS, tmp_path / "new" / "out", stem="sweep_summary")
    assert (md.name, path_csv.name) == ("sweep_summary.md", "sweep_summary.csv")
    assert md.read_text() == report.table_markdown(ROWS)
    rows = ref.read_csv(path_csv)
    assert list(rows[0]) == ROW_COLUMNS
    assert rows[0] == {"setting": "a", "status": "finished", "train_accuracy": "0.96875",
                       "dev_accuracy": "0.5", "test_accuracy": "1.0", "train_error": "0.03125",
                       "dev_error": "0.5", "diagnosis": "high_variance",
                       "gradcheck_difference": "1.5e-15",
                       "recommendation": "more data | regularization"}
    assert rows[1] == {**dict.fromkeys(ROW_COLUMNS, ""), "setting": "b", "status": "failed"}
    assert [float(rows[2][c]) for c in ("train_accuracy", "dev_accuracy", "test_accuracy",
                                       "gradcheck_difference")] == [0.0, 0.00049, 0.001, 0.0123456]
    md, _ = report.write_table(ROWS[1:], tmp_path, columns=("setting", "status", "error"))
    assert md.name == "table.md"
    assert md.read_text().splitlines()[0] == "| setting | status | error |"
    # a heading goes above the table, a blank line between; the CSV's lines end in "\n" alone
    md, path_csv = report.write_table(ROWS[1:2], tmp_path / "h", columns=("setting", "status"),
                                      heading="# a study\n\nwhat it shows")
    assert md.read_text() == ("# a study\n\nwhat it shows\n\n| setting | status |\n|---|---|\n"
                              "| b | failed |\n")
    assert path_csv.read_bytes() == b"setting,status\nb,failed\n"


def test_progress_is_silent_without_a_terminal(capsys):
    bar = report.progress_bar(100)
    bar(50, 0.5)
    bar.close()
    assert capsys.readouterr() == ("", "")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _frames(monkeypatch, enabled: bool = True, screen: Terminal | None = None,
            between=lambda: None) -> list[str]:
    """What a terminal shows of 300 iterations recorded at 0, 100 and 200 (``between`` runs
    after each)."""
    from tqdm import tqdm

    screen = screen or Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    monkeypatch.setattr(tqdm, "monitor_interval", 0)  # no monitor thread left behind
    shared = tqdm.get_lock()
    tqdm.set_lock(threading.RLock())  # not tqdm's process-shared lock: test runners fork
    try:
        bar = report.progress_bar(300) if enabled else report.progress_bar(300, enabled=False)
        for iteration, cost in ((0, 0.7), (100, 0.5), (200, 0.25)):
            bar(iteration, cost)
            between()
            time.sleep(0.11)  # tqdm redraws at most every 0.1 s
        bar.close()
    finally:
        tqdm.set_lock(shared)
    return screen.getvalue().split("\r")


def test_progress_on_a_terminal_shows_iterations_and_the_current_cost(monkeypatch):
    frames = _frames(monkeypatch)
    shown = [re.search(r"\| (\d+/\d+) \[.*?it/s(?:, cost=([\d.]+))?\]", f) for f in frames[1:-2]]
    assert [m.groups() for m in shown] == [("0/300", None), ("100/300", "0.5"),
                                           ("200/300", "0.25")], frames
    assert frames[-1] == "" and frames[-2].strip() == ""  # cleared when done (leave=False)
    assert _frames(monkeypatch, enabled=False) == [""]


def test_progress_bar_follows_a_resized_terminal(monkeypatch):
    """The bar fills the terminal's width, also after the window is resized mid-run."""
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()

    def resize(columns: int) -> None:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))

    class Window(Terminal):
        def fileno(self) -> int:
            return slave

    widths = iter((100, 100, 100))
    resize(60)
    try:
        frames = _frames(monkeypatch, screen=Window(), between=lambda: resize(next(widths)))
    finally:
        os.close(slave)
        os.close(master)
    bars = [f for f in frames if "/300" in f]
    # tqdm leaves the last column free: 59 columns of 60, then 99 of 100
    assert [len(f) for f in bars] == [59, 99, 99], bars
