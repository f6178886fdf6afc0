"""The other_regularization study as shipped: its pipeline's own command (pipelines/
other_regularization/dvc.yaml) run in a scratch folder with its own MLflow store. Every table cell is
recomputed from the runs' saved parameters and data (tests/reference.py), best_iteration from the
recorded dev-cost curve, the comments from those numbers; the committed table against a fresh run;
the comments' verdicts at their margins."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests import reference as ref
from tests.test_lecture_studies import ROOT, percent, run_config, run_study

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")

SETTINGS = ("none", "l2", "early_stopping", "augmentation")
COLUMNS = ["setting", "train_accuracy", "dev_accuracy", "test_accuracy", "method", "train_error",
           "dev_error", "variance", "best_iteration", "train_error_end", "dev_error_end",
           "diagnosis", "comment"]
NUMBERS = ("train_accuracy", "dev_accuracy", "test_accuracy", "train_error", "dev_error",
           "variance", "train_error_end", "dev_error_end")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return run_study("other_regularization", tmp_path_factory.mktemp("other_regularization"))


def history(folder: Path) -> tuple[list[int], list[float], list[float]]:
    with (folder / "history.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    return ([int(r["iteration"]) for r in rows], [float(r["cost"]) for r in rows],
            [float(r["dev_cost"]) for r in rows])


def recomputed(results: Path) -> dict[str, dict]:
    """Per setting its errors from ``parameters.npz``; early stopping's also from
    ``parameters_end.npz`` (``end``) and its stop: the first iteration of its lowest dev cost."""
    out = {}
    for setting in SETTINGS:
        folder, config = results / setting, run_config(results / setting)
        out[setting] = ref.evaluate(ref.load_npz(folder / "parameters.npz"), config)
    folder = results / "early_stopping"
    out["early_stopping"]["end"] = ref.evaluate(ref.load_npz(folder / "parameters_end.npz"),
                                                run_config(folder))
    its, _, dev = history(folder)
    out["early_stopping"]["best_iteration"] = its[dev.index(min(dev))]
    return out


def expected_comment(setting: str, errors: dict[str, dict]) -> str:
    mine, base = errors[setting], errors["none"]
    if setting == "none":
        return (f"high variance with Bayes error 10.0%: train {percent(mine['train_error'])} vs dev "
                f"{percent(mine['dev_error'])} — shown")
    text = (f"reduces variance: dev error {percent(base['dev_error'])} → "
            f"{percent(mine['dev_error'])}, variance {percent(base['variance'])} → "
            f"{percent(mine['variance'])} vs none")
    if setting == "early_stopping":
        text += (f" (stopped at iteration {mine['best_iteration']}; at the end: train "
                 f"{percent(mine['end']['train_error'])} vs dev {percent(mine['end']['dev_error'])})")
    return text + " — shown"


def test_every_cell_is_recomputed_from_the_runs(study):
    results, _ = study
    table = ref.read_csv(results / "table.csv")
    assert [r["setting"] for r in table] == list(SETTINGS) and list(table[0]) == COLUMNS
    errors = recomputed(results)
    for row in table:
        mine = errors[row["setting"]]
        for column in ("train_accuracy", "dev_accuracy", "test_accuracy", "train_error",
                       "dev_error", "variance"):
            assert float(row[column]) == pytest.approx(mine[column], abs=1e-12), column
        assert row["diagnosis"] == mine["diagnosis"]
        assert row["comment"] == expected_comment(row["setting"], errors)
        if row["setting"] != "early_stopping":
            assert (row["best_iteration"], row["train_error_end"], row["dev_error_end"]) == ("",) * 3
    stop = table[2]
    assert int(stop["best_iteration"]) == errors["early_stopping"]["best_iteration"]
    for column in ("train_error", "dev_error"):
        assert float(stop[f"{column}_end"]) == pytest.approx(errors["early_stopping"]["end"][column],
                                                             abs=1e-12)
    config = {s: run_config(results / s)["regularizer"] for s in SETTINGS}
    assert [r["method"] for r in table] == [
        "none", f"L2 (lambd {config['l2']['lambd']:g})", "early stopping",
        f"flips of x1, x2 + jitter {config['augmentation']['jitter']:g}"]


def test_the_setting_is_high_variance_and_each_method_reduces_it(study):
    """From the recomputed numbers: none is high variance (variance above 5%); every method's dev
    error and variance are below none's; early stopping stops mid-run and its end is the
    unregularized network (the same weights as none's, to rounding)."""
    results, _ = study
    errors = recomputed(results)
    assert errors["none"]["variance"] > 0.05 and errors["none"]["diagnosis"] == "high_variance"
    for setting in SETTINGS[1:]:
        assert errors[setting]["dev_error"] < errors["none"]["dev_error"], setting
        assert errors[setting]["variance"] < errors["none"]["variance"], setting
    config = run_config(results / "early_stopping")
    assert 0 < errors["early_stopping"]["best_iteration"] < config["train"]["iterations"] // 2
    end, none = (ref.load_npz(results / s / p) for s, p in (("early_stopping", "parameters_end.npz"),
                                                             ("none", "parameters.npz")))
    for name, value in none.items():
        np.testing.assert_allclose(end[name], value, rtol=0, atol=1e-6)
    assert errors["early_stopping"]["end"]["dev_error"] == errors["none"]["dev_error"]
    # parameters.npz holds the stop's weights: their dev cost is the curve's lowest
    its, _, dev = history(results / "early_stopping")
    data, _ = ref.dataset(config)
    assert ref.cost(ref.load_npz(results / "early_stopping" / "parameters.npz"), data["X_dev"],
                    data["Y_dev"]) == pytest.approx(min(dev), rel=1e-9)
    # every setting trains the same network on the same data; augmentation mirrors it
    assert len({json.dumps([c["model"], c["data"], c["train"]]) for c in
                map(run_config, (results / s for s in SETTINGS))}) == 1


def test_runs_figure_and_committed_table(study):
    from mlflow.tracking import MlflowClient

    from dlpractice import plots

    results, uri = study
    table = ref.read_csv(results / "table.csv")
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("other_regularization")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])
            if r.data.tags.get("sweep") != "true"}
    assert sorted(runs) == sorted(SETTINGS)
    for row in table:
        run = runs[row["setting"]]
        assert run.info.status == "FINISHED"
        assert run.data.metrics["dev_error"] == pytest.approx(float(row["dev_error"]), abs=1e-15)
        assert run.data.metrics["test_accuracy"] == pytest.approx(float(row["test_accuracy"]),
                                                                  abs=1e-15)
    stop = runs["early_stopping"].data.metrics
    assert stop["best_iteration"] == int(table[2]["best_iteration"])
    assert stop["iterations_run"] == run_config(results / "early_stopping")["train"]["iterations"]
    its, costs, dev = history(results / "early_stopping")
    expected = plots.early_stopping_curve(its, costs, dev, int(table[2]["best_iteration"]),
                                          results.parent / "curve.png")
    assert (results / "early_stopping.png").read_bytes() == expected.read_bytes()
    assert (results / "boundaries.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    committed = ref.read_csv(ROOT / "pipelines" / "other_regularization" / "results" / "table.csv")
    for old, new in zip(committed, table, strict=True):
        assert list(old) == list(new)
        for key in old:
            if key in NUMBERS and old[key]:
                assert float(old[key]) == pytest.approx(float(new[key]), abs=1e-9), key
            else:
                assert old[key] == new[key], key


def test_the_table_in_process(tmp_path):
    """The study's summary over two run folders the app's way (in process): early stopping's
    columns and comment recomputed from its files, the plain run's empty; the figure is the
    recorded curve with its stop."""
    from dlpractice import plots
    from tests.test_studies import compare, run_folder

    results = tmp_path / "results"
    run_folder(results, "plain", model={"activation": "tanh"})
    run_folder(results, "stop", model={"activation": "tanh"},
               regularizer={"early_stopping_patience": 1000})
    _, table, _ = compare(results, "other_regularization",
                          {"plain": {"tags": {"lecture": "high_variance"}},
                           "stop": {"tags": {"lecture": "reduces_variance"}}})
    assert list(table[0]) == COLUMNS and [r["setting"] for r in table] == ["plain", "stop"]
    plain, stop = (ref.evaluate(ref.load_npz(results / s / "parameters.npz"),
                                run_config(results / s)) for s in ("plain", "stop"))
    end = ref.evaluate(ref.load_npz(results / "stop" / "parameters_end.npz"),
                       run_config(results / "stop"))
    its, costs, dev = history(results / "stop")
    best = its[dev.index(min(dev))]
    assert (table[0]["method"], table[1]["method"]) == ("none", "early stopping")
    assert (table[0]["best_iteration"], table[0]["train_error_end"]) == ("", "")
    assert int(table[1]["best_iteration"]) == best
    assert float(table[1]["train_error_end"]) == pytest.approx(end["train_error"], abs=1e-12)
    assert float(table[1]["dev_error_end"]) == pytest.approx(end["dev_error"], abs=1e-12)
    for row, mine in zip(table, (plain, stop), strict=True):
        for column in ("train_error", "dev_error", "variance"):
            assert float(row[column]) == pytest.approx(mine[column], abs=1e-12), column
    verdict = ("shown" if plain["diagnosis"] == "high_variance"
               else f"not shown (diagnosed {plain['diagnosis']})")
    assert table[0]["comment"] == (f"high variance: train {percent(plain['train_error'])} vs dev "
                                   f"{percent(plain['dev_error'])} — {verdict}")
    shown = stop["dev_error"] < plain["dev_error"] and stop["variance"] < plain["variance"]
    assert table[1]["comment"] == (
        f"reduces variance: dev error {percent(plain['dev_error'])} → {percent(stop['dev_error'])}"
        f", variance {percent(plain['variance'])} → {percent(stop['variance'])} vs plain (stopped "
        f"at iteration {best}; at the end: train {percent(end['train_error'])} vs dev "
        f"{percent(end['dev_error'])}) — " + ("shown" if shown else "not shown"))
    expected = plots.early_stopping_curve(its, costs, dev, best, tmp_path / "curve.png")
    assert (results / "early_stopping.png").read_bytes() == expected.read_bytes()


def test_a_run_without_parameters_end_has_no_stop_columns(tmp_path):
    from dlpractice import config, other_regularization
    from tests.test_studies import run_folder

    summary = run_folder(tmp_path, "plain")
    cfg = config.load(summary["config"])
    out = other_regularization.columns(summary, cfg, tmp_path / "plain", splits=None)
    assert out == {"method": "none", "best_iteration": None, "train_error_end": None,
                   "dev_error_end": None}


def test_a_study_without_early_stopping_draws_no_curve(tmp_path):
    """No run saved ``parameters_end.npz``: the figure says so (the empty figure, byte for byte)."""
    from dlpractice import plots
    from tests.test_studies import compare, run_folder

    results = tmp_path / "results"
    run_folder(results, "plain")
    _, table, _ = compare(results, "other_regularization", {"plain": {}})
    assert table[0]["best_iteration"] == ""
    expected = plots.early_stopping_curve([], [], [], None, tmp_path / "empty.png")
    assert (results / "early_stopping.png").read_bytes() == expected.read_bytes()


@pytest.mark.parametrize(("section", "words"), [
    ({}, "none"),
    ({"name": "l2", "lambd": 0.25}, "L2 (lambd 0.25)"),
    ({"name": "l1", "lambd": 0.01}, "l1"),
    ({"name": "dropout", "keep_prob": 0.8}, "dropout"),
    ({"early_stopping_patience": 3}, "early stopping"),
    ({"flip_axes": [1]}, "flips of x2"),
    ({"jitter": 0.1}, "jitter 0.1"),
    ({"name": "l2", "lambd": 0.7, "early_stopping_patience": 3, "flip_axes": [0, 1],
      "jitter": 0.05}, "L2 (lambd 0.7) + early stopping + flips of x1, x2 + jitter 0.05"),
])
def test_method_names_every_regularizer_of_the_run(section, words):
    from dlpractice import other_regularization

    regularizer = SimpleNamespace(**{"name": "none", "lambd": 0.0, "early_stopping_patience": None,
                                     "flip_axes": [], "jitter": 0.0, **section})
    assert other_regularization.method(regularizer) == words


# -- the comments' verdicts at their margins ----------------------------------------------------------


def line(setting: str, train: float | None, dev: float | None, lecture: str = "reduces_variance",
         **extra) -> dict:
    variance = None if train is None or dev is None else dev - train
    return {"setting": setting, "train_error": train, "dev_error": dev, "variance": variance,
            "bayes_error": 0.0, "diagnosis": extra.pop("diagnosis", "good_fit"),
            "_lecture": lecture, **extra}


# binary fractions: a variance equal to none's is exactly equal
BASE = line("none", 0.125, 0.5, "high_variance", diagnosis="high_variance")


@pytest.mark.parametrize(("train", "dev", "verdict"), [
    (0.125, 0.5, "not shown"),             # the same errors
    (0.25, 0.5, "not shown"),              # variance down, dev error the same
    (0.0, 0.375, "not shown"),             # dev error down, variance the same
    (0.126, 0.499, "shown"),               # both just below
    (0.25, 0.375, "shown"),
])
def test_a_method_is_judged_by_dev_error_and_variance_against_none(train, dev, verdict):
    from dlpractice import claims

    texts = claims.other_regularization_comments([BASE, line("l2", train, dev)])
    assert texts[1] == (f"reduces variance: dev error 50.0% → {percent(dev)}, variance 37.5% → "
                        f"{percent(dev - train)} vs none — {verdict}")
    assert texts[0] == "high variance: train 12.5% vs dev 50.0% — shown"


def test_the_unregularized_setting_and_missing_numbers():
    from dlpractice import claims

    stop = line("early_stopping", 0.04, 0.15, best_iteration=350, train_error_end=0.02,
                dev_error_end=0.2)
    low = line("none", 0.02, 0.05, "high_variance", diagnosis="good_fit")
    assert claims.other_regularization_comments([low, stop]) == [
        "high variance: train 2.0% vs dev 5.0% — not shown (diagnosed good_fit)",
        "reduces variance: dev error 5.0% → 15.0%, variance 3.0% → 11.0% vs none (stopped at "
        "iteration 350; at the end: train 2.0% vs dev 20.0%) — not shown"]
    assert claims.other_regularization_comments([BASE, stop])[1].endswith(
        "(stopped at iteration 350; at the end: train 2.0% vs dev 20.0%) — shown")
    failed = line("l2", None, None)
    assert claims.other_regularization_comments([BASE, failed, line("l2", 0.25, 0.375)]) == [
        "high variance: train 12.5% vs dev 50.0% — shown",
        "reduces variance: no errors to show it (the run failed)",
        "reduces variance: dev error 50.0% → 37.5%, variance 37.5% → 12.5% vs none — shown"]
    assert claims.other_regularization_comments([line("l2", 0.1, 0.12), line("aug", 0.1, 0.2)]) == [
        "reduces variance: no unregularized run to compare with"] * 2
    assert claims.other_regularization_comments([line("none", None, None, "high_variance"),
                                                 line("l2", 0.1, 0.12)])[1] == (
        "reduces variance: no unregularized run to compare with")
    plain = line("plain", 0.125, 0.5, "high_variance", diagnosis="high_variance")
    other = line("second", 0.0, 0.25, "high_variance", diagnosis="high_variance")
    at_zero = line("early_stopping", 0.25, 0.375, best_iteration=0, train_error_end=0.125,
                   dev_error_end=0.5)
    assert claims.other_regularization_comments([plain, other, at_zero])[2] == (
        "reduces variance: dev error 50.0% → 37.5%, variance 37.5% → 12.5% vs plain (stopped at "
        "iteration 0; at the end: train 12.5% vs dev 50.0%) — shown")
