"""Bad input, every entry point: a table of configs, data files and command lines that must fail
cleanly — exit non-zero, exactly ONE non-empty line on stderr, no traceback, nothing written (no
output folder, params.yaml unchanged, no staged outs) and no MLflow run left RUNNING.

Cheap cases run in-process through the entry point's ``main`` (the ones that fail before Hydra
starts, ``dlpractice.params``, the DVC stages); a representative subset runs as real subprocesses,
all of them at once in a module fixture (they are independent), so the file stays fast.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import yaml

ROOT = Path(__file__).resolve().parents[1]
BASE_PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
QUICK = ["train.iterations=50", "data.n_samples=60"]


# -- bad data files ----------------------------------------------------------------------------------


def _xy(m: int = 12, n: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, n)), np.arange(m) % 2  # rows are examples, labels 0/1


def _write(path: Path, make: Callable[[Path], None]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    make(path)
    return path


def _npz(**arrays) -> Callable[[Path], None]:
    return lambda p: np.savez(p, **arrays)


def _mat(**arrays) -> Callable[[Path], None]:
    return lambda p: scipy.io.savemat(p, arrays)


def _text(content: str | bytes) -> Callable[[Path], None]:
    return lambda p: (p.write_bytes(content) if isinstance(content, bytes) else p.write_text(content))


X, Y = _xy()
X_NAN = X.copy()
X_NAN[3, 1] = np.nan

DATA_FILES: dict[str, tuple[str, Callable[[Path], None] | None]] = {
    # name: (file name, how to write it; None: leave it missing)
    "missing": ("missing.mat", None),
    "corrupt_mat": ("corrupt.mat", _text(b"MATLAB 5.0 but not really" * 8)),
    "corrupt_npz": ("corrupt.npz", _text(b"PK\x03\x04 truncated zip")),
    "wrong_extension": ("data.txt", _text("1,2,0\n3,4,1\n")),
    "wrong_keys": ("wrong_keys.mat", _mat(A=X, b=Y)),
    "no_labels": ("no_labels.npz", _npz(X=X)),
    "nan": ("nan.npz", _npz(X=X_NAN, y=Y)),
    "inf_csv": ("inf.csv", _text("x1,x2,label\n0.1,0.2,0\n0.3,inf,1\n0.5,0.1,1\n")),
    "labels_not_binary": ("labels.npz", _npz(X=X, y=np.arange(12) % 3)),
    "one_class": ("one_class.npz", _npz(X=X, y=np.zeros(12))),
    "shapes_disagree": ("shapes.npz", _npz(X=X, y=Y[:7])),
    "heldout_features_disagree": ("heldout.mat", _mat(X=X, y=Y, Xval=np.ones((4, 3)),
                                                      yval=np.array([0, 1, 0, 1]))),
    "empty_csv": ("empty.csv", _text("x1,x2,label\n")),
    "empty_arrays": ("empty.npz", _npz(X=np.zeros((0, 2)), y=np.zeros(0))),
    "csv_not_a_number": ("words.csv", _text("x1,x2,label\n0.1,0.2,0\n0.3,abc,1\n")),
    "pickled_object_array": ("pickled.npz", _npz(X=np.array([{"a": 1}] * 12, dtype=object), y=Y)),
    "directory": ("a_folder.mat", lambda p: p.mkdir()),
}


def data_file_path(tmp: Path, name: str) -> Path:
    return tmp / "data" / DATA_FILES[name][0]


def data_file(tmp: Path, name: str) -> Path:
    _, make = DATA_FILES[name]
    path = data_file_path(tmp, name)
    if make is not None:
        _write(path, make)
    return path


# -- running a case ----------------------------------------------------------------------------------


@dataclass
class Case:
    id: str
    kind: str  # app | params | stage:<name> | studies | recipe
    args: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # the app: before the overrides, as Hydra wants
    data: str | None = None  # a DATA_FILES entry: `{data}` in args is replaced by its path
    params: dict | str | None = None  # params.yaml (stages), settings.yaml (studies)
    stage_inputs: bool = False
    subprocess: bool = False
    error: str = ""  # the whole line on stderr ({tmp}, {data}: the case's paths)
    xfail: str | None = None


def _params_with(**sections) -> dict:
    raw = yaml.safe_load(yaml.safe_dump(BASE_PARAMS))
    raw["train"]["iterations"] = 50
    raw["data"]["n_samples"] = 60
    for section, values in sections.items():
        if isinstance(values, dict):
            raw[section].update(values)
        else:
            raw[section] = values
    return raw


CASES = [
    # --- configs through the Hydra app -------------------------------------------------------------
    Case("app-unknown-group-option", "app", ["init=foo"], error="error: init='foo' is not a config option; choose one of glorot, he, random, xavier, zeros"),
    Case("app-unknown-group-option-in-sweep", "app", ["init=he,foo"], ["-m"], error="error: init='foo' is not a config option; choose one of glorot, he, random, xavier, zeros"),
    # the installed plugins' launchers (the dev extras install submitit's) and conf/hydra/launcher/
    Case("app-unknown-launcher", "app", ["hydra/launcher=nope", "init=he,xavier"], ["-m"], subprocess=True, error="error: hydra/launcher='nope' is not a config option; choose one of basic, dlpractice_ray, joblib, ray, ray_cluster, slurm, submitit_local, submitit_local_jobs, submitit_slurm, vectorized"),
    Case("app-unknown-key", "app", ["train.bogus=1"], error="error: unknown config key 'train.bogus'; allowed keys in train: batch_size, iterations, learning_rate, record_every"),
    Case("app-unknown-top-level-key", "app", ["foo=bar"], error="error: unknown config key 'foo'; allowed keys: course_compat, data, diagnosis, gradcheck, init, model, recipe, regularizer, report, seed, selection, study, tracking, train"),
    Case("app-added-unknown-key", "app", ["+extra=1"], subprocess=True, error="error: unknown config key 'extra'; allowed keys: course_compat, data, diagnosis, gradcheck, init, model, recipe, regularizer, report, seed, selection, study, tracking, train"),
    Case("app-out-of-range", "app", ["train.iterations=0"], subprocess=True,
         error='error: train.iterations=0 is not allowed: must be >= 1'),
    Case("app-keep-prob-out-of-range", "app", ["regularizer=dropout", "regularizer.keep_prob=1.5"],
         subprocess=True, error='error: regularizer.keep_prob=1.5 is not allowed: must be a finite number in (0.0, 1.0]'),
    Case("app-wrong-type", "app", ["train.iterations=abc"], subprocess=True,
         error="error: train.iterations='abc' is not allowed: must be an integer"),
    Case("app-plain-value-for-a-list", "app", ["model.hidden=5"],
         error="error: model.hidden=5 is not allowed: must be a list ([a, b, …])"),
    Case("app-text-for-a-list", "app", ["data.ratios=abc"],
         error="error: data.ratios='abc' is not allowed: must be a list ([a, b, …])"),
    Case("app-text-for-a-mapping", "app", ["tracking.tags=abc"],
         error="error: tracking.tags='abc' is not allowed: must be a mapping ({name: value, …})"),
    Case("app-new-tag-without-plus", "app", ["tracking.tags.team=a"],
         error="error: Could not override 'tracking.tags.team': Key 'team' is not in struct (to append to your config use +tracking.tags.team=a)"),
    Case("app-keep-prob-list-wrong-length", "app",
         ["regularizer=dropout", "regularizer.keep_prob=[0.5,0.5,0.5]"], subprocess=True,
         error='error: regularizer.keep_prob=[0.5, 0.5, 0.5] is not allowed: one value per hidden layer (2)'),
    Case("app-stale-after-too-short", "app", ["tracking.stale_after_s=5"],
         error="error: tracking.stale_after_s=5.0 is not allowed: must be a finite number in [60.0, inf)"),
    Case("app-stale-after-not-a-number", "app", ["tracking.stale_after_s=hour"],
         error="error: tracking.stale_after_s='hour' is not allowed: must be a number"),
    Case("app-selection-metric", "app", ["selection.metric=test_error"],
         error="error: selection.metric='test_error' is not allowed: choose one of dev_error, dev_cost"),
    Case("app-selection-hide-test-not-a-bool", "app", ["selection.hide_test=maybe"],
         error="error: selection.hide_test='maybe' is not allowed: must be true or false"),
    Case("app-selection-metric-in-a-sweep", "app", ["init=he,xavier", "selection.metric=test_error"],
         ["-m"], subprocess=True,
         error="error: selection.metric='test_error' is not allowed: choose one of dev_error, dev_cost"),
    Case("app-selection-hide-test-in-a-sweep", "app", ["init=he,xavier", "selection.hide_test=maybe"],
         ["-m"], subprocess=True,
         error="error: selection.hide_test='maybe' is not allowed: must be true or false"),
    Case("app-selection-swept", "app", ["selection.metric=dev_error,dev_cost"], ["-m"],
         error="error: selection.metric=dev_error,dev_cost is a sweep, but a sweep chooses its best setting by one rule: give selection.metric one value"),
    # data.train_size: static checks when the config loads, the train split's size when the data is
    # prepared (QUICK: 60 circles, 36 of them train); before any run opens
    Case("app-train-size-zero", "app", ["data.train_size=0"],
         error="error: data.train_size=0 is not allowed: must be null (the whole train split), a number of examples >= 2 or a fraction in (0, 1]"),
    Case("app-train-size-negative", "app", ["data.train_size=-5"],
         error="error: data.train_size=-5 is not allowed: must be null (the whole train split), a number of examples >= 2 or a fraction in (0, 1]"),
    Case("app-train-size-fraction-above-one", "app", ["data.train_size=1.5"], subprocess=True,
         error="error: data.train_size=1.5 is not allowed: must be null (the whole train split), a number of examples >= 2 or a fraction in (0, 1]"),
    Case("app-train-size-not-a-number", "app", ["data.train_size=many"],
         error="error: data.train_size='many' is not allowed: must be null (the whole train split), a number of examples >= 2 or a fraction in (0, 1]"),
    Case("app-train-size-above-the-split", "app", ["data.train_size=37"], subprocess=True,
         error="error: data.train_size=37 is not allowed: must be null (the whole train split), a number of examples in [2, 36] or a fraction in (0, 1]"),
    Case("app-label-noise-half", "app", ["data.label_noise=0.5"],
         error="error: data.label_noise=0.5 is not allowed: must be a finite number in [0.0, 0.5)"),
    Case("app-file-without-path", "app", ["data=file"], subprocess=True, error='error: data.path=None is not allowed: data=file needs data.path (a .mat, .npz or .csv file)'),
    Case("app-missing-interpolation", "app", ["train.iterations=${oops}"], subprocess=True,
         error="error: invalid config value for train.iterations: Interpolation key 'oops' not found"),
    Case("app-store-is-a-folder", "app", ["tracking.uri={tmp}/a_folder_store"], subprocess=True,
         error="error: tracking store '{tmp}/a_folder_store' is a plain folder, which MLflow 3 refuses as a tracking store; use a database instead, e.g. tracking.uri=sqlite:///<absolute path>/mlflow.db"),
    # --- command-line misuse of the Hydra app --------------------------------------------------------
    Case("app-malformed-override", "app", ["init=he,"], error="error: cannot parse the override 'init=he,': mismatched input '<EOF>' expecting {':', BRACKET_OPEN, BRACE_OPEN, FLOAT, INT, BOOL, NULL, UNQUOTED_CHAR, ID, ESC, WS, QUOTED_VALUE, INTERPOLATION}"),
    Case("app-unknown-flag", "app", [], ["--bogus"], error='error: unrecognized arguments: --bogus (see --help)'),
    Case("app-overrides-unterminated-quote", "app", [], ["--overrides", "init=he 'oops"],
         error='error: --overrides "init=he \'oops": No closing quotation'),
    Case("app-overrides-unterminated-quote-subprocess", "app", [], ["--overrides=init=he 'oops"],
         subprocess=True, error='error: --overrides "init=he \'oops": No closing quotation'),
    Case("app-conflicting-modes", "app", [], ["-m", "--cfg", "job"], error='error: only one of --run, --multirun, --cfg, --info and --shell-completion can be given (see --help)'),
    # --- data files through the Hydra app (real processes) ---------------------------------------------
    *[Case(f"app-data-{name}", "app", ["data=file", "data.path={data}"], data=name,
           subprocess=True, error=error)
      for name, error in (
          ('missing', "error: data.path='{data}' is not allowed: no such file"),
          ('corrupt_mat', "error: data file '{data}' cannot be read as a MATLAB .mat file: Unknown mat file type, version 121, 77"),
          ('nan', "error: data file '{data}': X has 1 nan/inf value(s), first nan at feature 1, example 3; all values must be finite"),
          ('one_class', "error: data file '{data}': only one class (0) among 12 examples; training needs 0 and 1"),
          ('pickled_object_array', "error: data file '{data}' cannot be read as an .npz file: Object arrays cannot be loaded when allow_pickle=False"))],
    # --- data files through the split stage (in-process) ----------------------------------------------
    *[Case(f"stage-data-{name}", "stage:split", data=name, error=error,
           params=_params_with(data={"name": "file", "path": "{data}"}))
      for name, error in (
          ('missing', "error: split: data.path='{data}' is not allowed: no such file"),
          ('corrupt_mat', "error: split: data file '{data}' cannot be read as a MATLAB .mat file: Unknown mat file type, version 121, 77"),
          ('corrupt_npz', "error: split: data file '{data}' cannot be read as an .npz file: File is not a zip file"),
          ('wrong_extension', "error: split: data file '{data}' has extension '.txt'; allowed: .csv, .mat, .npz"),
          ('wrong_keys', "error: split: data file '{data}' has no key 'X' (keys: A, b)"),
          ('no_labels', "error: split: data file '{data}' has no key 'y' (keys: X)"),
          ('nan', "error: split: data file '{data}': X has 1 nan/inf value(s), first nan at feature 1, example 3; all values must be finite"),
          ('inf_csv', "error: split: data file '{data}': X has 1 nan/inf value(s), first inf at feature 1, example 1; all values must be finite"),
          ('labels_not_binary', "error: split: data file '{data}': labels are {0, 1, 2}; allowed: 0 and 1"),
          ('one_class', "error: split: data file '{data}': only one class (0) among 12 examples; training needs 0 and 1"),
          ('shapes_disagree', "error: split: data file '{data}' X/y: X has shape (12, 2) but there are 7 labels; X needs 7 rows or 7 columns"),
          ('heldout_features_disagree', "error: split: data file '{data}': Xval has 3 features but X has 2; the held-out part needs the same features"),
          ('empty_csv', "error: split: data file '{data}' has no data rows (empty)"),
          ('empty_arrays', "error: split: data file '{data}' X/y: labels are empty (0 examples); need at least one example"),
          ('csv_not_a_number', "error: split: data file '{data}' line 3 column 2 is 'abc'; allowed: a number"),
          ('pickled_object_array', "error: split: data file '{data}' cannot be read as an .npz file: Object arrays cannot be loaded when allow_pickle=False"),
          ('directory', "error: split: data.path='{data}' is not allowed: no such file"))],
    # --- params.yaml as the stages read it ----------------------------------------------------------
    Case("stage-no-params-yaml", "stage:split", subprocess=True, error='error: split: no params.yaml in {tmp}/work; write it with `python -m dlpractice.params [overrides]`'),
    Case("stage-no-params-yaml-in-process", "stage:evaluate", error='error: evaluate: no params.yaml in {tmp}/work; write it with `python -m dlpractice.params [overrides]`'),
    Case("stage-params-not-yaml", "stage:split", params="seed: [unclosed", error='error: split: params.yaml is not valid YAML (line 1): while parsing a flow sequence'),
    Case("stage-params-not-a-mapping", "stage:split", params="- 1\n- 2\n", error='error: split: config must be a mapping, got list'),
    Case("stage-params-wrong-type", "stage:train", stage_inputs=True,
         params=_params_with(train={"iterations": "many"}), error="error: train: train.iterations='many' is not allowed: must be an integer"),
    Case("stage-params-unknown-key", "stage:split", params=_params_with(colour="blue"),
         error="error: split: unknown config key 'colour'; allowed keys: course_compat, data, diagnosis, gradcheck, init, model, recipe, regularizer, report, seed, selection, study, tracking, train"),
    Case("stage-params-ratios", "stage:split", params=_params_with(data={"ratios": [0.5, 0.6, 0.1]}),
         error='error: split: data.ratios=[0.5, 0.6, 0.1] is not allowed: three non-negative train/dev/test ratios summing to 1'),
    Case("stage-params-train-size-above-the-split", "stage:split",
         params=_params_with(data={"train_size": 1000}),
         error="error: split: data.train_size=1000 is not allowed: must be null (the whole train split), a number of examples in [2, 36] or a fraction in (0, 1]"),
    Case("stage-params-train-size-rounds-to-none", "stage:split",
         params=_params_with(data={"train_size": 0.01}),
         error="error: split: data.train_size=0.01 is not allowed: 0.01 of the train split's 36 examples rounds to 0; must be null (the whole train split), a number of examples in [2, 36] or a fraction in (0, 1]"),
    Case("stage-params-stale-after", "stage:evaluate", params=_params_with(tracking={"stale_after_s": float("inf")}),
         error="error: evaluate: tracking.stale_after_s=inf is not allowed: must be a finite number in [60.0, inf)"),
    Case("stage-params-register-without-tracking", "stage:evaluate",
         params=_params_with(tracking={"enabled": False, "register": True}),
         error="error: evaluate: tracking.register=true is not allowed with tracking.enabled=false: a registered model comes from an MLflow run (leave tracking.register null or false)"),
    Case("stage-missing-inputs", "stage:train", params=_params_with(), error='error: train: data/normalized/train.npz does not exist: run the stage that writes it first (`dvc repro`)'),
    Case("stage-unknown-flag", "stage:split", ["--bogus"], params=_params_with(), error='error: python -m dlpractice.stages.split: unrecognized arguments: --bogus (see --help)'),
    Case("stage-unknown-flag-subprocess", "stage:normalize", ["--bogus"], params=_params_with(),
         subprocess=True, error='error: python -m dlpractice.stages.normalize: unrecognized arguments: --bogus (see --help)'),
    # --- python -m dlpractice.params -------------------------------------------------------------
    Case("params-unknown-flag", "params", ["--bogus"], error='error: python -m dlpractice.params: unrecognized arguments: --bogus (see --help)'),
    Case("params-unknown-flag-subprocess", "params", ["--bogus"], subprocess=True,
         error='error: python -m dlpractice.params: unrecognized arguments: --bogus (see --help)'),
    Case("params-unknown-group-option", "params", ["init=foo"], error="error: init='foo' is not a config option; choose one of glorot, he, random, xavier, zeros"),
    Case("params-sweep", "params", ["init=he,xavier"], error="error: init=he,xavier is a sweep, but params.yaml holds one config: queue one experiment per value with `dvc exp run --queue -S 'init=he,xavier'`"),
    Case("params-unknown-key", "params", ["train.bogus=1"], error="error: unknown config key 'train.bogus'; allowed keys in train: batch_size, iterations, learning_rate, record_every"),
    Case("params-out-of-range", "params", ["regularizer.keep_prob=1.5"], error='error: regularizer.keep_prob=1.5 is not allowed: must be 1 with regularizer=none (choose regularizer=dropout)'),
    Case("params-train-size-negative", "params", ["data.train_size=-1"],
         error="error: data.train_size=-1 is not allowed: must be null (the whole train split), a number of examples >= 2 or a fraction in (0, 1]"),
    Case("params-output-folder-missing", "params", ["-o", "{tmp}/no/such/folder/params.yaml"],
         error='error: cannot write {tmp}/no/such/folder/params.yaml: No such file or directory'),
    # --- python -m dlpractice.studies --------------------------------------------------------------
    Case("studies-bad-subcommand", "studies", ["bogus"], subprocess=True, error="error: python -m dlpractice.studies: argument command: invalid choice: 'bogus' (choose from 'show') (see --help)"),
    Case("study-unknown-setting", "app", [], ["-m", "study/regularization=none,bogus"],
         error="error: study/regularization='bogus' is not a config option; choose one of dropout, l2, none"),
    Case("studies-show-unknown-study", "studies", ["show", "nope"], subprocess=True,
         error="error: unknown study 'nope'; choose from initialization, regularization, gradient_checking, vanishing_gradients, input_normalization, bias_variance, learning_curve, other_regularization, numerical_gradient, recipe"),
    # --- python -m dlpractice.recipe ---------------------------------------------------------------
    Case("recipe-max-steps-zero", "recipe", ["experiment=recipe", "recipe.max_steps=0"],
         error="error: recipe.max_steps=0 is not allowed: must be an integer >= 1"),
    Case("recipe-max-steps-not-a-number", "recipe", ["experiment=recipe", "recipe.max_steps=abc"],
         subprocess=True, error="error: recipe.max_steps='abc' is not allowed: must be an integer"),
    Case("recipe-sweep", "recipe", ["experiment=recipe", "model.hidden=[1],[2]"],
         error="error: model.hidden=[1],[2] is a sweep, but the recipe changes one config step "
               "by step: give one value"),
    Case("recipe-unknown-flag", "recipe", ["--multirun"], error="error: python -m "
         "dlpractice.recipe: unrecognized arguments: --multirun (see --help)"),
]
assert len({c.id for c in CASES}) == len(CASES)

MODULES = {"app": "dlpractice.experiment", "params": "dlpractice.params",
           "studies": "dlpractice.studies", "recipe": "dlpractice.recipe"}


@dataclass
class Result:
    returncode: int
    stderr: str
    tmp: Path
    watched: Path  # the folder that must stay as it was
    before: dict[str, bytes]


def _snapshot(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"<dir>")
            for p in sorted(folder.rglob("*"))}


def _fill(args: list[str], tmp: Path, data: Path | None) -> list[str]:
    return [a.replace("{tmp}", str(tmp)).replace("{data}", str(data)) for a in args]


def _setup(case: Case, tmp: Path) -> tuple[list[str], Path]:
    """The case's argv and the folder it must leave unchanged (its working/output folder)."""
    data = data_file(tmp, case.data) if case.data else None
    args = _fill(case.args, tmp, data)
    work = tmp / "work"
    work.mkdir()
    if case.kind == "app":
        return [*case.flags, *QUICK, *args, f"hydra.run.dir={work}/run",
                f"hydra.sweep.dir={work}/sweep"], work
    if case.kind == "recipe":
        return [*args, f"hydra.run.dir={work}/run"], work
    if case.kind == "params":
        target = work / "params.yaml"
        target.write_text("# the previous params.yaml\nseed: 0\n")
        if "-o" not in args:
            args = [*args, "-o", str(target)]
        return args, work
    if case.kind.startswith("stage:"):
        if case.params is not None:
            text = (case.params if isinstance(case.params, str)
                    else yaml.safe_dump(case.params).replace("'{data}'", f"'{data}'"))
            (work / "params.yaml").write_text(text)
        if case.stage_inputs:  # a train stage with its inputs present: only the config is bad
            _make_normalized_inputs(work)
        return args, work
    # studies: a results folder with one run in it, which a refused command leaves alone
    results = tmp / "results" / "zeros"
    results.mkdir(parents=True)
    (results / "summary.json").write_text('{"setting": "zeros", "status": "finished"}')
    if case.params is not None:
        (tmp / "settings.yaml").write_text(str(case.params))
    return args, tmp / "results"


def _make_normalized_inputs(work: Path) -> None:
    from dlpractice.stages._io import save_npz

    folder = work / "data" / "normalized"
    folder.mkdir(parents=True)
    for name in ("train", "dev", "test"):
        x, y = _xy(10, 2, seed=len(name))
        save_npz(folder / f"{name}.npz", {"X": x.T, "Y": y.reshape(1, -1).astype(float)})


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DVC_", "MLFLOW_", "DLPRACTICE_", "HYDRA_"))}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
    return env


def _command(case: Case, args: list[str]) -> list[str]:
    module = MODULES.get(case.kind) or f"dlpractice.stages.{case.kind.split(':', 1)[1]}"
    return [sys.executable, "-m", module, *args]


def _run_subprocess(case: Case, tmp: Path) -> Result:
    args, watched = _setup(case, tmp)
    before = _snapshot(watched)
    cwd = watched if case.kind.startswith("stage:") else ROOT
    proc = subprocess.run(_command(case, args), cwd=cwd, env=_env(tmp), capture_output=True,
                          text=True, timeout=120, check=False)
    return Result(proc.returncode, proc.stderr, tmp, watched, before)


@contextlib.contextmanager
def _in_process_env(tmp: Path, cwd: Path):
    """What a fresh process would have: the case's store and working folder, SIGTERM untouched."""
    saved_env = dict(os.environ)
    saved_cwd = Path.cwd()
    saved_term = signal.getsignal(signal.SIGTERM)
    os.environ.clear()
    os.environ.update(_env(tmp))
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        signal.signal(signal.SIGTERM, saved_term)


def _run_in_process(case: Case, tmp: Path, capsys: pytest.CaptureFixture[str]) -> Result:
    import importlib

    args, watched = _setup(case, tmp)
    before = _snapshot(watched)
    module = importlib.import_module(MODULES.get(case.kind)
                                     or f"dlpractice.stages.{case.kind.split(':', 1)[1]}")
    cwd = watched if case.kind.startswith("stage:") else ROOT
    capsys.readouterr()
    with _in_process_env(tmp, cwd):
        try:
            code = module.main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return Result(code or 0, capsys.readouterr().err, tmp, watched, before)


@pytest.fixture(scope="module")
def subprocess_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    """Every subprocess case, run concurrently (each in its own folder and store)."""
    cases = [c for c in CASES if c.subprocess]
    tmps = {c.id: tmp_path_factory.mktemp(c.id) for c in cases}
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {c.id: pool.submit(_run_subprocess, c, tmps[c.id]) for c in cases}
        return {cid: f.result() for cid, f in futures.items()}


def running_runs(db: Path) -> list[str]:
    """Run ids left RUNNING in a SQLite MLflow store (none when it does not exist)."""
    if not db.is_file():
        return []
    with contextlib.closing(sqlite3.connect(db)) as con:
        try:
            rows = con.execute("SELECT run_uuid FROM runs WHERE status = 'RUNNING'").fetchall()
        except sqlite3.OperationalError:  # no tables yet
            return []
    return [r[0] for r in rows]


def _params(case: Case) -> object:
    marks = [pytest.mark.xfail(reason=case.xfail, strict=True)] if case.xfail else []
    return pytest.param(case, id=case.id, marks=marks)


def test_the_table_is_broad():
    assert len(CASES) >= 25
    kinds = {c.kind.split(":")[0] for c in CASES}
    assert kinds == {"app", "params", "stage", "studies", "recipe"}
    assert len({c.data for c in CASES if c.data}) >= 15
    assert sum(c.subprocess for c in CASES) >= 10


@pytest.mark.parametrize("case", [_params(c) for c in CASES])
def test_bad_input_fails_with_one_line_and_leaves_nothing(case: Case, tmp_path, capsys,
                                                          request):
    if case.subprocess:
        result = request.getfixturevalue("subprocess_results")[case.id]
    else:
        result = _run_in_process(case, tmp_path, capsys)

    assert result.returncode != 0, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    data = data_file_path(result.tmp, case.data) if case.data else None
    assert lines[0] == _fill([case.error], result.tmp, data)[0]

    # nothing written: the working/output folder is exactly as it was (params.yaml unchanged, no
    # Hydra run or sweep folder, no staged outs)
    assert _snapshot(result.watched) == result.before, sorted(_snapshot(result.watched))
    assert running_runs(result.tmp / "mlflow.db") == []
    # a bad input never opens a run at all
    if (result.tmp / "mlflow.db").is_file():
        with contextlib.closing(sqlite3.connect(result.tmp / "mlflow.db")) as con:
            with contextlib.suppress(sqlite3.OperationalError):
                assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


def test_repo_params_yaml_is_untouched_by_a_refused_override(tmp_path, capsys):
    """The default output of `python -m dlpractice.params` is the repository's params.yaml."""
    before = (ROOT / "params.yaml").read_bytes()
    from dlpractice import params

    with _in_process_env(tmp_path, ROOT):
        code = params.main(["regularizer.keep_prob=1.5"])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert (ROOT / "params.yaml").read_bytes() == before
    assert not list(ROOT.glob(".params-*"))


def test_a_run_folder_reused_from_an_earlier_run_is_kept(tmp_path):
    """The clean-up of a failed single run removes only what Hydra wrote into a fresh folder."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text("{}")
    proc = subprocess.run(
        [sys.executable, "-m", "dlpractice.experiment", *QUICK, "train.iterations=0",
         f"hydra.run.dir={run}"],
        cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 1
    assert (run / "summary.json").read_text() == "{}"
    shutil.rmtree(run)
