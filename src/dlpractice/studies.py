"""The study pipelines' helpers (``pipelines/<study>/dvc.yaml``).

``python -m dlpractice.studies compare RESULTS_DIR --study NAME [--settings params.yaml]
[--target-cost C]`` reads every setting's run folder (``RESULTS_DIR/<setting>``, written by
``python -m dlpractice.experiment ... hydra.run.dir=RESULTS_DIR/<setting>``) and writes the
notebook's comparison table, ``table.md`` and ``table.csv`` (setting, train/dev/test accuracy,
diagnosis, the study's own columns, comment), and ONE figure, ``boundaries.png``, with the
decision boundaries side by side. Two studies add a figure: ``input_normalization`` the cost
curves (``cost_curves.png``), ``vanishing_gradients`` the activation and gradient norm per layer at
initialization (``layer_norms.png``). The data of each run is derived again from the config saved
with it (``pipeline.prepare_data`` + ``pipeline.normalize``), so the boundaries are drawn over the
very examples the run trained on.

``python -m dlpractice.studies run RUN_DIR [--record-failure] -- OVERRIDES...`` runs one setting
through the Hydra app into ``RUN_DIR``. With ``--record-failure``, a run that ends with the app's
one-line error (e.g. training diverged: exploding gradients) is recorded as a failed row
(``summary.json`` with ``status: failed``) and the stage succeeds: in the vanishing/exploding
gradients study, a divergence is the result, not a bug. A crash (a traceback) still fails.

The settings file is the study's ``params.yaml``: ``settings: {name: {overrides, comment, ...}}``
in table order (a ``course`` entry shows the course notebook's train/test accuracy).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlpractice._exit import skip_gc_at_exit
from dlpractice.errors import ArgumentParser, DataError, DlpracticeError

SUMMARY = "summary.json"
PARAMETERS = "parameters.npz"
HISTORY = "history.csv"

STUDIES: dict[str, str] = {
    "initialization": (
        "The Initialization notebook: the same [2, 10, 5, 1] relu net and data, started from zeros "
        "(symmetry is never broken), large random weights (N(0,1)·10: slow, saturated start) and He."
    ),
    "regularization": (
        "The Regularization notebook: [2, 20, 3, 1] on the football data, without regularization, "
        "with L2 (lambd 0.7) and with dropout (keep_prob 0.86)."
    ),
    "gradient_checking": (
        "Gradient checking of backprop per hidden activation, at the initial and the trained "
        "parameters: difference = ‖g − g̃‖ / (‖g‖ + ‖g̃‖), passed below gradcheck.threshold."
    ),
    "vanishing_gradients": (
        "Vanishing/exploding gradients: a deep relu net (15 hidden layers of 16 units) under each "
        "initialization. Norms are measured at initialization, on the training set: the RMS of the "
        "activations of the first and last hidden layer and ‖dWl‖ of the first and last layer."
    ),
    "input_normalization": (
        "Input normalization: features on very different scales (data.feature_scales), with and "
        "without zero-mean/unit-variance normalization; iterations until the training cost first "
        "reaches the target cost."
    ),
}

BASE_COLUMNS = ("setting", "train_accuracy", "dev_accuracy", "test_accuracy", "diagnosis")
STUDY_COLUMNS: dict[str, tuple[str, ...]] = {
    "initialization": ("course_train_test",),
    "regularization": ("dataset", "course_train_test"),
    "gradient_checking": ("activation", "gradcheck_difference", "gradcheck_passed"),
    "vanishing_gradients": ("init", "act_rms_first", "act_rms_last", "grad_norm_first",
                            "grad_norm_last", "final_cost"),
    "input_normalization": ("normalize", "learning_rate", "iterations_to_target", "final_cost"),
}


# -- reading a run -------------------------------------------------------------------------------


@dataclass
class Run:
    """One setting's run folder, read back."""

    name: str
    folder: Path
    summary: dict[str, Any]
    config: Any  # dlpractice.config.Config
    parameters: dict[str, np.ndarray] | None

    @property
    def finished(self) -> bool:
        return self.parameters is not None and self.summary.get("status") != "failed"


def _read_yaml(path: Path) -> Any:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def run_config_dict(folder: Path, summary: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The resolved config a run used: from ``summary.json``, else ``config.yaml``, else Hydra's
    ``.hydra/config.yaml``."""
    if summary and isinstance(summary.get("config"), dict):
        return dict(summary["config"])
    for candidate in (folder / "config.yaml", folder / ".hydra" / "config.yaml"):
        if candidate.is_file():
            data = _read_yaml(candidate)
            if isinstance(data, dict):
                return data
    raise DataError(f"{folder}: no config found (summary.json, config.yaml or .hydra/config.yaml)")


def load_run(folder: Path, name: str | None = None) -> Run:
    from dlpractice import config
    from dlpractice.stages._io import load_npz

    if not folder.is_dir():
        raise DataError(f"run folder {folder} does not exist: run its stage first (dvc repro)")
    summary: dict[str, Any] = {}
    if (folder / SUMMARY).is_file():
        summary = json.loads((folder / SUMMARY).read_text(encoding="utf-8"))
    cfg = config.load(run_config_dict(folder, summary), check_files=False)
    params = load_npz(folder / PARAMETERS) if (folder / PARAMETERS).is_file() else None
    return Run(name or folder.name, folder, summary, cfg, params)


def run_splits(cfg: Any):
    """The (normalized) splits a run trained on, derived again from its config."""
    from dlpractice import pipeline

    prepared = pipeline.prepare_data(cfg)
    splits, _ = pipeline.normalize(cfg, prepared.splits)
    return splits


def read_history(folder: Path) -> tuple[list[int], list[float]]:
    import csv

    path = folder / HISTORY
    if not path.is_file():
        return [], []
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [int(r["iteration"]) for r in rows], [float(r["cost"]) for r in rows]


def iterations_to_target(iterations: Sequence[int], costs: Sequence[float],
                         target: float) -> int | None:
    """The first recorded iteration whose training cost is <= ``target`` (None: never)."""
    for it, cost in zip(iterations, costs, strict=False):
        if math.isfinite(cost) and cost <= target:
            return int(it)
    return None


# -- per-layer norms -----------------------------------------------------------------------------


def layer_norms(parameters: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray,
                activation: str) -> dict[str, list[float]]:
    """One forward and backward pass over ``X``: per hidden layer the RMS of its activations
    (``act_rms``), per layer the Frobenius norm of the cost's gradient ``‖dWl‖`` (``grad_norm``,
    what ``TrainResult.grad_norms`` records during training). Overflow gives inf, not an error."""
    from dlpractice.nn.network import Network, Workspace

    net = Network.from_parameters(parameters, activation)
    m = X.shape[1]
    ws = Workspace(net, m)
    ws.load(X, Y)
    grad = np.empty_like(net.theta)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        ws.forward()
        act = [float(np.sqrt(np.mean(np.square(ws.A[l][:-1])))) for l in range(1, net.L)]
        ws.backward(grad, 1.0 / m)
        norms = [float(np.linalg.norm(g[:, :-1])) for g in net.grad_views(grad)]
    return {"act_rms": act, "grad_norm": norms}


def initial_parameters(cfg: Any, n_features: int) -> dict[str, np.ndarray]:
    from dlpractice import pipeline

    return pipeline.initial_parameters(pipeline.train_config(cfg, n_features))


# -- the table -----------------------------------------------------------------------------------


def _fmt_accuracy_pair(value: Any) -> str:
    return "" if value is None else str(value)


def study_row(study: str, run: Run, setting: Mapping[str, Any], splits: Any,
              target_cost: float | None) -> dict[str, Any]:
    s, cfg = run.summary, run.config
    row: dict[str, Any] = {"setting": run.name}
    for key in ("train_accuracy", "dev_accuracy", "test_accuracy", "diagnosis"):
        row[key] = s.get(key)
    if not run.finished:
        row["status"] = "failed: " + str(s.get("error", "no parameters.npz")).strip()
    if study in ("initialization", "regularization"):
        row["course_train_test"] = _fmt_accuracy_pair(setting.get("course"))
    if study == "regularization":
        d = cfg.data
        row["dataset"] = f"file {Path(d.path).name}" if d.name == "file" else d.name
    if study == "gradient_checking":
        row["activation"] = cfg.model.activation
        diff = s.get("gradcheck_difference")
        row["gradcheck_difference"] = diff
        row["gradcheck_passed"] = (None if diff is None
                                   else "yes" if diff < cfg.gradcheck.threshold else "no")
    if study == "vanishing_gradients":
        row["init"] = cfg.init.name + (f" (scale {cfg.init.scale:g})" if cfg.init.name == "random"
                                       else "")
        norms = layer_norms(initial_parameters(cfg, splits.X_train.shape[0]), splits.X_train,
                            splits.Y_train, cfg.model.activation)
        row["act_rms_first"], row["act_rms_last"] = norms["act_rms"][0], norms["act_rms"][-1]
        row["grad_norm_first"], row["grad_norm_last"] = (norms["grad_norm"][0],
                                                         norms["grad_norm"][-1])
        row["final_cost"] = s.get("final_cost")
        row["_norms"] = norms
    if study == "input_normalization":
        row["normalize"] = "yes" if cfg.data.normalize else "no"
        row["learning_rate"] = cfg.train.learning_rate
        its, costs = read_history(run.folder)
        reached = iterations_to_target(its, costs, target_cost) if target_cost is not None else None
        row["iterations_to_target"] = (str(reached) if reached is not None
                                       else f"not in {cfg.train.iterations}")
        row["final_cost"] = s.get("final_cost")
        row["_curve"] = (its, costs)
    row["comment"] = str(setting.get("comment", "")).strip()
    return row


def table_columns(study: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    cols = [*BASE_COLUMNS[:4], *STUDY_COLUMNS[study], BASE_COLUMNS[4]]
    if any("status" in r for r in rows):
        cols.append("status")
    return [*cols, "comment"]


def table_markdown(study: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                   target_cost: float | None = None) -> str:
    from dlpractice import report

    lines = [f"# {study.replace('_', ' ')}", "", STUDIES[study]]
    if study == "input_normalization" and target_cost is not None:
        lines += ["", f"Target cost: {target_cost:g}."]
    return "\n".join(lines) + "\n\n" + report.table_markdown(rows, columns)


def _csv_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({c: "" if r.get(c) is None else r.get(c) for c in columns})
    return buf.getvalue()


# -- figures -------------------------------------------------------------------------------------


def _panel_title(row: Mapping[str, Any]) -> str:
    tr, te = row.get("train_accuracy"), row.get("test_accuracy")
    if tr is None or te is None:
        return str(row["setting"])
    return f"{row['setting']}: train {tr:.3f}, test {te:.3f}"


# -- compare -------------------------------------------------------------------------------------


def read_settings(path: Path | None, results_dir: Path) -> dict[str, dict[str, Any]]:
    """``settings`` from the study's params.yaml (table order); without it, every run folder."""
    if path is not None:
        if not path.is_file():
            raise DataError(f"--settings {path} does not exist: give the study's params.yaml")
        data = _read_yaml(path) or {}
        settings = data.get("settings")
        if not isinstance(settings, dict) or not settings:
            raise DataError(f"{path} has no `settings:` mapping (name: {{overrides, comment}})")
        return {str(k): dict(v or {}) for k, v in settings.items()}
    found = sorted(p.name for p in results_dir.iterdir()
                   if p.is_dir() and ((p / SUMMARY).is_file() or (p / ".hydra").is_dir()))
    if not found:
        raise DataError(f"no run folders in {results_dir}")
    return {name: {} for name in found}


def compare(results_dir: Path, study: str, settings: Mapping[str, Mapping[str, Any]],
            target_cost: float | None = None) -> list[dict[str, Any]]:
    """Write the comparison table and figures into ``results_dir``; returns the rows."""
    from dlpractice import plots
    from dlpractice.stages._io import Outputs

    if study not in STUDIES:
        raise DataError(f"unknown study {study!r}; choose one of {', '.join(STUDIES)}")
    rows, panels, curves = [], [], []
    for name, setting in settings.items():
        run = load_run(results_dir / name, name)
        splits = run_splits(run.config)
        row = study_row(study, run, setting, splits, target_cost)
        rows.append(row)
        if run.finished:
            panels.append((_panel_title(row), run.parameters, splits.X_train, splits.Y_train,
                           run.config.model.activation))
        if "_curve" in row and row["_curve"][0]:
            curves.append((name, *row["_curve"]))

    columns = table_columns(study, rows)
    out = Outputs(root=results_dir)
    out.path("table.md").write_text(table_markdown(study, rows, columns, target_cost),
                                    encoding="utf-8")
    out.path("table.csv").write_text(_csv_text(rows, columns), encoding="utf-8")
    plots.boundaries_side_by_side(panels, out.path("boundaries.png"))
    if study == "input_normalization":
        plots.cost_curves(curves, out.path("cost_curves.png"), target=target_cost)
    if study == "vanishing_gradients":
        plots.layer_norms([(r["setting"], r["_norms"]) for r in rows if r.get("_norms")],
                          out.path("layer_norms.png"))
    out.commit()
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]


# -- run one setting -----------------------------------------------------------------------------


def _composed_config(overrides: Sequence[str]) -> dict[str, Any]:
    """The resolved config a run with these overrides had (``conf/`` composed as DVC does)."""
    import tempfile

    from dlpractice import params

    with tempfile.TemporaryDirectory() as folder:
        path = params.compose([o for o in overrides if not o.lstrip("+~").startswith("hydra")],
                              Path(folder) / "config.yaml")
        return _read_yaml(path)


def run_setting(run_dir: Path, overrides: Sequence[str], record_failure: bool = False) -> int:
    """``python -m dlpractice.experiment OVERRIDES hydra.run.dir=RUN_DIR``; see the module doc."""
    cmd = [sys.executable, "-m", "dlpractice.experiment", *overrides, f"hydra.run.dir={run_dir}"]
    proc = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, check=False)
    sys.stderr.write(proc.stderr)
    if proc.returncode == 0 or not record_failure:
        return proc.returncode
    lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
    last = lines[-1] if lines else ""
    if proc.returncode != 1 or not last.startswith("error: ") or "Traceback" in proc.stderr:
        return proc.returncode
    error = last[len("error: "):]
    summary: dict[str, Any] = {"setting": run_dir.name, "status": "failed", "error": error,
                               "overrides": list(overrides)}
    try:
        summary["config"] = run_config_dict(run_dir)
    except DataError:  # the failed run left no config behind: compose it as the run did
        summary["config"] = _composed_config(overrides)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"{run_dir.name}: recorded as failed ({error})")
    return 0


# -- command line --------------------------------------------------------------------------------


def show(studies: Sequence[str], root: Path | None = None) -> int:
    """Print each study's comparison table, then where to browse its runs."""
    from dlpractice import tracking
    from dlpractice.paths import project_root

    unknown = [s for s in studies if s not in STUDIES]
    if unknown:
        raise DataError(f"unknown study {unknown[0]!r}; choose from {', '.join(STUDIES)}")
    root = project_root() if root is None else root
    for study in studies:
        table = root / "pipelines" / study / "results" / "table.md"
        print(f"\n## {study}\n")
        print(table.read_text() if table.is_file() else
              f"(no table yet: dvc repro pipelines/{study}/dvc.yaml)\n")
    store = tracking.Store(tracking.resolve_uri(None))
    print("Browse the runs in the MLflow UI: make ui   (then open the links below)")
    for study in studies:
        print(f"  {study:<22} {store.runs_url(study)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    skip_gc_at_exit()
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides: list[str] = []
    if "--" in argv:  # `run RUN_DIR [--record-failure] -- OVERRIDES...`
        cut = argv.index("--")
        argv, overrides = argv[:cut], argv[cut + 1:]
    parser = ArgumentParser(prog="python -m dlpractice.studies")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare", help="write a study's comparison table and figures")
    c.add_argument("results_dir", type=Path)
    c.add_argument("--study", required=True, choices=sorted(STUDIES))
    c.add_argument("--settings", type=Path, default=None,
                   help="the study's params.yaml (settings in table order, with comments)")
    c.add_argument("--target-cost", type=float, default=None)
    sh = sub.add_parser("show", help="print the studies' tables and their MLflow UI links")
    sh.add_argument("studies", nargs="*", help="default: all of them")
    r = sub.add_parser("run", help="run one setting through the Hydra app into RUN_DIR")
    r.add_argument("run_dir", type=Path)
    r.add_argument("--record-failure", action="store_true",
                   help="record a run ending in a one-line error as a failed row, exit 0")
    r.add_argument("overrides", nargs="*", help="Hydra overrides (after --)")
    args = parser.parse_args(argv)
    try:
        if args.command == "show":
            return show(args.studies or list(STUDIES))
        if args.command == "run":
            return run_setting(args.run_dir, [*args.overrides, *overrides], args.record_failure)
        settings = read_settings(args.settings, args.results_dir)
        rows = compare(args.results_dir, args.study, settings, args.target_cost)
    except DlpracticeError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    from dlpractice import report

    columns = table_columns(args.study, rows)
    print(report.table_markdown(rows, [c for c in columns if c != "comment"]), end="")
    return 0


if __name__ == "__main__":
    from dlpractice._exit import exit_fast

    exit_fast(main)
