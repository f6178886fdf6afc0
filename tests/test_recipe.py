"""The basic recipe: its decisions (pure, every branch at its margins) and the loop for real —
runs, MLflow child runs, table and figure — from high-bias, high-variance and good starts."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from dlpractice import recipe_policy as policy
from dlpractice.diagnose import diagnose
from tests import reference as ref

ROOT = Path(__file__).resolve().parents[1]
BIAS_ACTIONS = ("more_units", "more_layers", "train_longer")
VARIANCE_ACTIONS = ("more_data", "add_l2", "raise_l2", "add_dropout", "lower_keep_prob")

HIGH_BIAS = diagnose(0.30, 0.32)  # avoidable bias 30%, variance 2%
BOTH = diagnose(0.20, 0.40)
HIGH_VARIANCE = diagnose(0.0, 0.25)
GOOD = diagnose(0.02, 0.05)


def settings(hidden=(4,), iterations=1000, train_size=None, n_used=600, n_train=600,
             regularizer="none", lambd=0.0, keep_prob=1.0):
    return policy.Settings(tuple(hidden), iterations, train_size, n_used, n_train, regularizer,
                           lambd, keep_prob)


# -- the decisions ------------------------------------------------------------------------------

@pytest.mark.parametrize("hidden,overrides", [
    ((1,), {"model.hidden": [2]}), ((4, 2), {"model.hidden": [8, 4]}),
    ((40,), {"model.hidden": [64]}), ((63, 10), {"model.hidden": [64, 20]})])
def test_high_bias_grows_the_units_first_up_to_64(hidden, overrides):
    d = policy.decide(HIGH_BIAS, settings(hidden))
    assert d == policy.Decision(
        "more_units", f"high avoidable bias (30.0%): a bigger network, units {list(hidden)} → "
        f"{overrides['model.hidden']}", overrides)


def test_both_high_is_bias_first():
    assert policy.decide(BOTH, settings((3,), n_used=20)) == policy.Decision(
        "more_units", "high avoidable bias (20.0%): a bigger network, units [3] → [6]",
        {"model.hidden": [6]})


def test_then_layers_up_to_three_each_as_wide_as_the_last():
    assert policy.decide(HIGH_BIAS, settings((64, 8))) == policy.Decision(
        "more_layers", "high avoidable bias (30.0%): a bigger network, layers [64, 8] → [64, 8, 8]",
        {"model.hidden": [64, 8, 8]})
    per_layer = policy.decide(HIGH_BIAS, settings((64,), regularizer="dropout",
                                                  keep_prob=(0.7,)))
    assert per_layer.overrides == {"model.hidden": [64, 64], "regularizer.keep_prob": [0.7, 0.7]}
    assert policy.decide(HIGH_BIAS, settings((64,), keep_prob=0.9)).overrides == {
        "model.hidden": [64, 64]}


@pytest.mark.parametrize("iterations,longer", [(1000, 2000), (7999, 15998), (8001, 16000),
                                               (15999, 16000)])
def test_then_longer_training_up_to_16000_iterations(iterations, longer):
    assert policy.decide(HIGH_BIAS, settings((64, 64, 64), iterations)) == policy.Decision(
        "train_longer", f"high avoidable bias (30.0%): train longer, {iterations} → {longer} "
        "iterations", {"train.iterations": longer})


def test_high_bias_with_nothing_left_stops():
    assert policy.decide(HIGH_BIAS, settings((64, 64, 64), 16000)) == policy.Decision(
        "stop", "high avoidable bias (30.0%) with the biggest network ([64, 64, 64]) and longest "
        "training (16000) the recipe tries: try another architecture")


@pytest.mark.parametrize("train_size,n_used,size,count", [
    (16, 16, 32, 32), (299, 299, 598, 598), (300, 300, None, 600), (301, 301, None, 600),
    (0.25, 150, 0.5, 300), (0.1, 60, 0.2, 120), (0.5, 300, None, 600), (0.6, 360, None, 600),
    (0.499, 299, 0.998, 599), (0.4999, 300, None, 600), (0.333, 200, 0.666, 400)])
def test_high_variance_takes_more_data_while_the_train_split_has_it(train_size, n_used, size,
                                                                    count):
    d = policy.decide(HIGH_VARIANCE, settings(train_size=train_size, n_used=n_used))
    assert d == policy.Decision(
        "more_data", f"high variance (25.0%): more data, {n_used} → {count} training examples",
        {"data.train_size": size})


WHOLE = "high variance (25.0%) on the whole train split (600 examples)"


@pytest.mark.parametrize("current,decision", [
    ({}, policy.Decision("add_l2", f"{WHOLE}: L2 regularization, λ 0.1",
                         {"regularizer": "l2", "regularizer.lambd": 0.1})),
    ({"regularizer": "l1", "lambd": 5.0}, policy.Decision(
        "add_l2", f"{WHOLE}: L2 regularization, λ 0.1",
        {"regularizer": "l2", "regularizer.lambd": 0.1})),
    ({"regularizer": "l2", "lambd": 0.0}, policy.Decision(
        "raise_l2", f"{WHOLE}: more L2, λ 0 → 0.1", {"regularizer.lambd": 0.1})),
    ({"regularizer": "l2", "lambd": 0.1}, policy.Decision(
        "raise_l2", f"{WHOLE}: more L2, λ 0.1 → 0.3", {"regularizer.lambd": 0.3})),
    ({"regularizer": "l2", "lambd": 0.9}, policy.Decision(
        "raise_l2", f"{WHOLE}: more L2, λ 0.9 → 2.7", {"regularizer.lambd": 2.7})),
    ({"regularizer": "l2", "lambd": 8.1}, policy.Decision(
        "raise_l2", f"{WHOLE}: more L2, λ 8.1 → 10", {"regularizer.lambd": 10.0})),
    ({"regularizer": "l2", "lambd": 9.99}, policy.Decision(
        "raise_l2", f"{WHOLE}: more L2, λ 9.99 → 10", {"regularizer.lambd": 10.0})),
    ({"regularizer": "l2", "lambd": 10.0}, policy.Decision(
        "add_dropout", f"{WHOLE} at λ 10: dropout instead, keep_prob 0.8",
        {"regularizer": "dropout", "regularizer.lambd": 0.0, "regularizer.keep_prob": 0.8})),
    ({"regularizer": "dropout", "keep_prob": 0.8}, policy.Decision(
        "lower_keep_prob", f"{WHOLE}: more dropout, keep_prob 0.8 → 0.7",
        {"regularizer.keep_prob": 0.7})),
    ({"regularizer": "dropout", "keep_prob": 0.55}, policy.Decision(
        "lower_keep_prob", f"{WHOLE}: more dropout, keep_prob 0.55 → 0.5",
        {"regularizer.keep_prob": 0.5})),
    ({"regularizer": "dropout", "keep_prob": (0.9, 0.51)}, policy.Decision(
        "lower_keep_prob", f"{WHOLE}: more dropout, keep_prob 0.51 → 0.5",
        {"regularizer.keep_prob": 0.5})),
    ({"regularizer": "dropout", "keep_prob": 0.5}, policy.Decision(
        "stop", f"{WHOLE} with dropout at keep_prob 0.5: try another architecture")),
])
def test_then_l2_going_up_then_dropout_going_down(current, decision):
    assert policy.decide(HIGH_VARIANCE, settings(**current)) == decision


def test_a_good_fit_is_done_and_margins_follow_the_diagnosis():
    assert policy.decide(GOOD, settings((1,), n_used=16)) == policy.Decision(
        "done", "good fit: avoidable bias 2.0%, variance 3.0%")
    at_both_thresholds = diagnose(0.25, 0.5, 0.2, bias_threshold=0.05, variance_threshold=0.25)
    assert policy.decide(at_both_thresholds, settings()).action == "done"


def test_step_0_runs_the_start():
    assert policy.start_reason(["model.hidden=[1]", "seed=2"]) == (
        "the start: model.hidden=[1] seed=2")
    assert policy.start_reason([]) == "the start: the composed config"


def test_overrides_read_back_as_hydra_values():
    assert policy.overrides_list({"model.hidden": [8, 4], "data.train_size": None,
                                  "regularizer.lambd": 0.3, "train.iterations": 2000,
                                  "data.normalize": False, "regularizer": "l2",
                                  "regularizer.keep_prob": (0.5, 0.25)}) == [
        "model.hidden=[8,4]", "data.train_size=null", "regularizer.lambd=0.3",
        "train.iterations=2000", "data.normalize=false", "regularizer=l2",
        "regularizer.keep_prob=[0.5,0.25]"]


# -- the loop, for real -------------------------------------------------------------------------

def next_settings(previous: dict, action: str) -> dict:
    """What the lecture's step does to the previous row's settings (the table's columns)."""
    hidden = yaml.safe_load(previous["hidden"])
    if action == "more_units":
        return {**previous, "hidden": str([min(2 * n, 64) for n in hidden])}
    if action == "more_data":
        return {**previous, "train_size": str(min(2 * int(previous["train_size"]), 600))}
    raise AssertionError(f"this start should not need {action}")


def recipe(tmp_path: Path, name: str, *overrides: str) -> tuple[int, str, Path, list[str]]:
    """``python -m dlpractice.recipe`` in process; its exit code, store, folder and start."""
    from dlpractice import recipe as door

    out, uri = tmp_path / name, f"sqlite:///{tmp_path}/mlflow.db"
    start = ["experiment=recipe", f"tracking.uri={uri}", *overrides]
    code = door.main([*start, f"hydra.run.dir={out}"])
    return code, uri, out, start


def check_run(uri: str, out: Path, start: list[str], max_steps: int = 8) -> list[dict]:
    """Table rows, MLflow children and run folders agree; returns the table."""
    from mlflow.tracking import MlflowClient

    from dlpractice import recipe as door

    table = ref.read_csv(out / "table.csv")
    text = [("setting", "step", "action", "hidden", "train_size", "diagnosis", "reason", "comment")]
    shown = ref.markdown_table((out / "table.md").read_text())
    assert [[r[k] for k in text[0]] for r in shown] == [[r[k] for k in text[0]] for r in table]
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("recipe")
    parents = client.search_runs([exp.experiment_id],
                                 f"tags.sweep_dir = '{out}' and tags.recipe = 'true'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    recipe_id = parent.data.tags["sweep_id"]
    assert parent.info.run_name == f"recipe-{recipe_id}" and parent.data.tags["sweep"] == "true"
    assert parent.data.tags["recipe_start"] == " ".join(start)
    children = client.search_runs([exp.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
                                  order_by=["attributes.start_time ASC"])
    assert len(children) == len(table) == int(parent.data.tags["recipe_steps"]) == int(
        parent.data.tags["jobs"])
    done = [r for r in table if r.get("dev_error")]
    assert parent.data.metrics == ({"final_train_error": float(done[-1]["train_error"]),
                                    "final_dev_error": float(done[-1]["dev_error"])} if done else {})
    outcome = parent.data.tags["recipe_outcome"]
    diagnosis = door.compose(start).diagnosis
    heading = (out / "table.md").read_text().split("\n\n| setting |")[0].split("\n\n")
    assert heading[0] == "# recipe" and heading[1].startswith("The basic recipe as a loop")
    assert heading[2] == (
        f"Start: `python -m dlpractice.recipe {' '.join(start)}`; outcome: {outcome} after "
        f"{len(table)} of at most {max_steps} steps (recipe.max_steps). High bias: avoidable bias "
        f"above {100 * diagnosis.bias_threshold:.1f}%; high variance: variance above "
        f"{100 * diagnosis.variance_threshold:.1f}%.")
    assert path_drawn(out) == bool(done)
    assert sorted(a.path for a in client.list_artifacts(parent.info.run_id)) == [
        "recipe_path.png", "table.csv", "table.md"]
    assert (out / "recipe_path.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for row, child in zip(table, children, strict=True):
        tags, metrics = child.data.tags, child.data.metrics
        assert child.info.status == "FINISHED"
        assert (tags["recipe_step"], tags["recipe_action"], tags["recipe_reason"]) == (
            row["step"], row["action"], row["reason"])
        assert (tags["sweep_id"], tags["sweep_job"]) == (recipe_id, row["step"])
        assert tags["mlflow.note.content"] == row["reason"] and row["setting"] == f"step-{row['step']}"
        folder = out / "steps" / row["setting"]
        config = yaml.safe_load((folder / "config.yaml").read_text())
        changes = dict(o.split("=", 1) for o in tags["recipe_overrides"].split())
        again = door.compose(door.merged(start, changes)).to_dict()
        assert again == {**config, "tracking": {**config["tracking"], "rerun": False}}
        assert config["tracking"]["rerun"] is True  # every step trains, never settled from the store
        assert "test_accuracy" not in metrics and tags["test_hidden"] == "true"  # a search's job
        parameters = ref.load_npz(folder / "parameters.npz")
        assert config["recipe"] == {"max_steps": max_steps}
        assert str(config["model"]["hidden"]) == row["hidden"]
        assert [np.shape(parameters[f"W{l}"])[0] for l in range(1, len(parameters) // 2)] == (
            config["model"]["hidden"])
        mine = ref.evaluate(parameters, config)
        for key in ("train_error", "dev_error", "avoidable_bias", "variance"):
            assert metrics[key] == pytest.approx(mine[key], abs=1e-12)
            assert float(row[key]) == pytest.approx(mine[key], abs=1e-12)
        assert row["diagnosis"] == tags["diagnosis"] == mine["diagnosis"]
        assert int(row["train_size"]) == ref.train_examples(config["data"]["train_size"], 600)
    return table


def path_drawn(out: Path) -> bool:
    """Does recipe_path.png show the steps' points (matplotlib's first colour, tab:blue)?"""
    import matplotlib.image

    image = matplotlib.image.imread(out / "recipe_path.png")[..., :3]
    blue = np.all(np.abs(image - np.array([0x1F, 0x77, 0xB4]) / 255) < 0.02, axis=-1)
    return int(blue.sum()) > 50


def recipe_outcome(uri: str, out: Path) -> str:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    (parent,) = client.search_runs([client.get_experiment_by_name("recipe").experiment_id],
                                   f"tags.sweep_dir = '{out}' and tags.recipe = 'true'")
    return parent.data.tags["recipe_outcome"]


def check_path(table: list[dict]) -> None:
    """Each action is the lecture's remedy for the previous diagnosis, applied as it says; the
    last row is a good fit and says so."""
    assert table[0]["action"] == "start"
    for before, row in zip(table, table[1:]):
        remedy = BIAS_ACTIONS if before["diagnosis"].startswith("high_bias") else VARIANCE_ACTIONS
        assert row["action"] in remedy, (before, row)
        expected = next_settings(before, row["action"])
        assert {k: row[k] for k in ("hidden", "train_size", "iterations", "regularizer")} == {
            k: expected[k] for k in ("hidden", "train_size", "iterations", "regularizer")}
    assert [r["diagnosis"] == "good_fit" for r in table] == [False] * (len(table) - 1) + [True]
    for row, after in zip(table, table[1:]):
        assert row["comment"].endswith(f"; next: {after['action']} — shown"), row["comment"]
    assert table[-1]["comment"].startswith("lecture: the recipe reaches a good fit — shown")


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
def test_from_high_bias_and_from_high_variance_it_reaches_a_good_fit(tmp_path, capsys):
    code, uri, out, start = recipe(tmp_path, "bias")
    assert code == 0, capsys.readouterr().err
    table = check_run(uri, out, start)
    assert table[0]["reason"] == "the start: " + " ".join(start)
    assert table[0]["diagnosis"] == "high_bias" and len(table) <= 8
    assert len({r["action"] for r in table}) >= 3  # start and more than one remedy
    check_path(table)
    printed = capsys.readouterr().out
    assert recipe_outcome(uri, out) == "good_fit"
    assert f"outcome: good_fit after {len(table)} steps" in printed
    assert f"folder: {out}" in printed

    code, uri, out, start = recipe(tmp_path, "variance", "model.hidden=[16]",
                                   "data.train_size=20")
    assert code == 0, capsys.readouterr().err
    table = check_run(uri, out, start)
    assert table[0]["diagnosis"] == "high_variance" and table[1]["action"] == "more_data"
    check_path(table)


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
def test_a_good_start_stops_at_step_0_and_the_budget_bounds_the_rest(tmp_path, capsys):
    code, uri, out, start = recipe(tmp_path, "good", "model.hidden=[8]", "data.train_size=null")
    assert code == 0, capsys.readouterr().err
    table = check_run(uri, out, start)
    assert [(r["step"], r["action"], r["diagnosis"]) for r in table] == [
        ("0", "start", "good_fit")]
    check_path(table)
    code, uri, again, start = recipe(tmp_path, "good-again", "model.hidden=[8]",
                                     "data.train_size=null")
    assert code == 0 and check_run(uri, again, start) == table  # trained again, the same run

    code, uri, out, start = recipe(tmp_path, "short", "recipe.max_steps=2")
    assert code == 0
    rows = check_run(uri, out, start, max_steps=2)
    assert "outcome: max_steps after 2 steps" in capsys.readouterr().out
    assert recipe_outcome(uri, out) == "max_steps"
    assert [r["step"] for r in rows] == ["0", "1"] and rows[1]["diagnosis"] != "good_fit"
    assert rows[1]["comment"].startswith("lecture: the recipe reaches a good fit — not shown (")
    assert rows[1]["comment"].endswith("after recipe.max_steps=2 steps)")



@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
def test_under_mlflow_run_every_run_names_the_launcher_run(tmp_path, capsys, monkeypatch):
    """``mlflow run . -e recipe`` hands the recipe its own run in MLFLOW_RUN_ID: the recipe's
    parent and step runs carry its id as the tag mlflow_project_run, the start shown is the
    user's own, and MLflow's fluent API is left no run to resume."""
    from mlflow.tracking import MlflowClient

    launcher = "0123456789abcdef0123456789abcdef"
    monkeypatch.setenv("MLFLOW_RUN_ID", launcher)
    code, uri, out, start = recipe(tmp_path, "launched", "model.hidden=[8]", "data.train_size=null")
    assert code == 0, capsys.readouterr().err
    assert "MLFLOW_RUN_ID" not in os.environ
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("recipe").experiment_id])
    assert len(runs) == 2  # the parent and step 0
    for run in runs:
        assert run.data.tags["mlflow_project_run"] == launcher, run.info.run_name
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.data.tags["recipe_start"] == " ".join(start)
    (step,) = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert step.data.params["tracking.tags.mlflow_project_run"] == launcher

@pytest.mark.parametrize("argument,message", [
    ("recipe.max_steps=0", "error: recipe.max_steps=0 is not allowed: must be an integer >= 1"),
    ("recipe.max_steps=abc",
     "error: recipe.max_steps='abc' is not allowed: must be an integer"),
    ("model.hidden=[1],[2]", "error: model.hidden=[1],[2] is a sweep, but the recipe changes one "
                             "config step by step: give one value"),
    ("hydra.job.name=x", "error: hydra.job.name=x: the recipe takes no Hydra settings but "
                         "hydra.run.dir"),
    ("data.train_size=700", "error: data.train_size=700 is not allowed: must be null (the whole "
                            "train split), a number of examples in [2, 600] or a fraction in (0, 1]"),
])
def test_bad_input_is_one_line_and_opens_no_run(tmp_path, capsys, argument, message):
    code, uri, out, _ = recipe(tmp_path, "bad", argument)
    assert code == 1
    assert capsys.readouterr() == ("", message + "\n")
    assert not (tmp_path / "mlflow.db").exists() and not out.exists()


def test_the_command_line(tmp_path):
    """A usage error is one line (exit 2); the shipped start is what the study's pipeline runs."""
    proc = subprocess.run([sys.executable, "-m", "dlpractice.recipe", "-m", "experiment=recipe"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        2, "", "error: python -m dlpractice.recipe: unrecognized arguments: -m (see --help)\n")
    stage = yaml.safe_load((ROOT / "pipelines" / "recipe" / "dvc.yaml").read_text())
    assert stage["stages"]["study"]["cmd"].split() == [
        "python", "-m", "dlpractice.recipe", "experiment=recipe", "hydra.run.dir=results",
        "report.figures=false"]


# -- the door's pieces and the comments ---------------------------------------------------------

def test_each_step_is_the_start_with_the_changes_in_place_of_its_values():
    from dlpractice import recipe as door

    start = ["experiment=recipe", "regularizer=l2", "+regularizer.lambd=0.7", "model.hidden=[1]"]
    changes = {"regularizer": "dropout", "regularizer.lambd": 0.0, "regularizer.keep_prob": 0.8}
    assert door.merged(start, changes) == [
        "experiment=recipe", "model.hidden=[1]", "regularizer=dropout", "regularizer.lambd=0.0",
        "regularizer.keep_prob=0.8"]
    assert door.merged(start, {}) == start
    assert door.merged(["tracking.note=a=b", "seed=1"], {"tracking.note": "c"}) == [
        "seed=1", "tracking.note=c"]
    cfg = door.compose(door.merged(start, changes))
    assert (cfg.regularizer.name, cfg.regularizer.lambd, cfg.regularizer.keep_prob) == (
        "dropout", 0.0, 0.8)
    assert door.regularizer_text(cfg) == "dropout keep_prob 0.8"
    assert door.regularizer_text(door.compose(["regularizer=l1"])) == "l1 λ 0.01"
    assert door.regularizer_text(door.compose([])) == "none"
    s = door.settings_of(door.compose(["experiment=recipe", "regularizer=dropout",
                                       "regularizer.keep_prob=[0.6]"]), 600)
    assert s == policy.Settings((1,), 1000, 16, 16, 600, "dropout", 0.0, (0.6,))
    assert door.settings_of(door.compose(["data.train_size=0.5"]), 300).n_used == 150


def test_the_comments_say_whether_the_path_shows_the_claim():
    from dlpractice import claims

    lines = [{"diagnosis": "high_bias", "_next": "more_units"},
             {"diagnosis": "high_variance", "_next": "add_l2"},
             {"diagnosis": "high_variance", "_next": "more_units"},
             {"diagnosis": "high_bias_high_variance", "_next": "more_data"},
             {"diagnosis": "high_variance", "_next": "stop", "_stop_reason": "nothing left"}]
    assert claims.recipe_comments(lines, "stop", 8) == [
        "high bias → lecture: bias first: a bigger network, then train longer; next: more_units "
        "— shown",
        "high variance → lecture: more data, then regularization; next: add_l2 — shown",
        "high variance → lecture: more data, then regularization; next: more_units — not shown",
        "high bias and high variance → lecture: bias first: a bigger network, then train longer; "
        "next: more_data — not shown",
        "lecture: the recipe reaches a good fit — not shown (high variance; nothing left)"]
    assert claims.recipe_comments([{"diagnosis": "good_fit", "_next": "done"}], "good_fit", 1) == [
        "lecture: the recipe reaches a good fit — shown (neither high bias nor high variance "
        "after 0 changes)"]
    assert claims.recipe_comments([{"diagnosis": "high_bias"}, {}], "failed", 8) == [
        "high bias → lecture: bias first: a bigger network, then train longer; next: None — "
        "not shown", "the run failed: no diagnosis — the recipe stops"]


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
def test_a_step_that_fails_ends_the_recipe_with_its_row(tmp_path, capsys):
    from mlflow.tracking import MlflowClient

    code, uri, out, _ = recipe(tmp_path, "diverges", "train.learning_rate=1e100",
                               "model.hidden=[8,8]")
    assert code == 1
    assert "outcome: failed after 1 steps" in capsys.readouterr().out
    (row,) = ref.read_csv(out / "table.csv")
    assert row["status"].startswith("failed: training diverged at iteration ")
    assert "train_error" not in row and row["comment"] == (
        "the run failed: no diagnosis — the recipe stops")
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("recipe")
    (parent,) = client.search_runs([exp.experiment_id], "tags.recipe = 'true'")
    assert (parent.info.status, parent.data.tags["recipe_outcome"],
            parent.data.tags["recipe_steps"], parent.data.tags["failed_jobs"]) == (
        "FINISHED", "failed", "1", "1")
    (child,) = client.search_runs([exp.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert child.info.status == "FAILED" and child.data.tags["recipe_action"] == "start"


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
def test_a_change_the_config_refuses_ends_the_recipe_with_its_row(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(policy, "decide", lambda diagnosis, settings: policy.Decision(
        "more_units", "a change no config allows", {"model.hidden": [0]}))
    code, uri, out, start = recipe(tmp_path, "refused", "train.iterations=10")
    assert code == 1 and recipe_outcome(uri, out) == "failed"
    assert "outcome: failed after 2 steps" in capsys.readouterr().out
    rows = ref.read_csv(out / "table.csv")
    assert [(r["setting"], r["step"], r["action"], r["reason"], r["status"]) for r in rows] == [
        ("step-0", "0", "start", policy.start_reason(start), ""),
        ("step-1", "1", "more_units", "a change no config allows", "failed: model.hidden=[0] is "
         "not allowed: a non-empty list of positive layer sizes")]
    assert rows[1]["comment"] == "the run failed: no diagnosis — the recipe stops"


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
def test_the_decisions_follow_the_configs_diagnosis_settings(tmp_path, capsys):
    """The start's 8% avoidable bias is high above 5% (the default), not above 10%; its 25%
    variance is high above 5%, not above 30%: each start stops at once."""
    code, uri, out, start = recipe(tmp_path, "bayes", "diagnosis.bayes_error=0.42",
                                   "diagnosis.bias_threshold=0.1")
    assert code == 0 and recipe_outcome(uri, out) == "good_fit"
    (row,) = check_run(uri, out, start)
    assert (float(row["avoidable_bias"]), row["diagnosis"]) == (pytest.approx(0.08), "good_fit")
    code, uri, out, start = recipe(tmp_path, "variance", "model.hidden=[16]",
                                   "data.train_size=20", "diagnosis.variance_threshold=0.3")
    assert code == 0 and recipe_outcome(uri, out) == "good_fit"
    (row,) = check_run(uri, out, start)
    assert 0.05 < float(row["variance"]) < 0.3 and row["diagnosis"] == "good_fit"


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
def test_nothing_left_to_try_stops_the_recipe(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(policy, "decide", lambda diagnosis, settings: policy.Decision(
        "stop", "nothing left"))
    code, uri, out, start = recipe(tmp_path, "stop", "train.iterations=10")
    assert code == 0 and recipe_outcome(uri, out) == "stop"
    (row,) = check_run(uri, out, start)
    assert row["comment"] == ("lecture: the recipe reaches a good fit — not shown (high bias; "
                              "nothing left)")


def test_usage_help_and_the_mlproject_word(tmp_path, capsys, monkeypatch):
    from dlpractice import recipe as door

    with pytest.raises(SystemExit) as exit_:
        door.main(["--bogus"])
    assert exit_.value.code == 2 and capsys.readouterr() == (
        "", "error: python -m dlpractice.recipe: unrecognized arguments: --bogus (see --help)\n")
    with pytest.raises(SystemExit):
        door.main(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert shown.startswith("usage: python -m dlpractice.recipe [-h] [--overrides QUOTED] "
                            "[overrides ...] The basic recipe: train, diagnose, change one thing, "
                            "until a good fit (recipe.max_steps runs at most). ")
    assert ("overrides Hydra overrides of the start, e.g. model.hidden=[2] data.train_size=20; "
            "hydra.run.dir=<folder>") in shown
    assert "--overrides QUOTED more overrides as one quoted word (MLproject)" in shown
    assert door.parse_args(["seed=1", "--overrides", "model.hidden=[2] hydra.run.dir=here"]) == (
        ["seed=1", "model.hidden=[2]"], Path("here"))
    assert door.main(["--overrides", "seed='1"]) == 1
    assert capsys.readouterr().err == (
        "error: --overrides \"seed='1\": No closing quotation\n")


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
def test_without_tracking_or_a_folder(tmp_path, capsys, monkeypatch):
    """tracking.enabled=false: no store, no run; the folder: outputs/<date>/<time>."""
    import time

    from dlpractice import recipe as door

    monkeypatch.chdir(tmp_path)
    before = time.strftime("%Y-%m-%d/%H-%M-%S")
    assert door.main(["experiment=recipe", "tracking.enabled=false", "recipe.max_steps=1",
                      "model.hidden=[8]", "data.train_size=null"]) == 0
    after = time.strftime("%Y-%m-%d/%H-%M-%S")
    (folder,) = (tmp_path / "outputs").glob("*/*")
    assert before <= f"{folder.parent.name}/{folder.name}" <= after
    (row,) = ref.read_csv(folder / "table.csv")
    assert row["diagnosis"] == "good_fit" and (folder / "steps" / "step-0" / "parameters.npz").is_file()
    assert "run:" not in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["outputs"]  # no store, no mlruns/
