"""The lecture's studies: each is a named Hydra sweep (``conf/study/<study>/<setting>.yaml``, one
option per setting) whose summary is the study's table; ``pipelines/<study>/dvc.yaml`` runs it.

Owns the study tables' columns and figures (:func:`write_summary`, called by the sweep callback at
the end of a study sweep) and ``python -m dlpractice.studies show``. It reads the jobs' run folders
(through :mod:`dlpractice.report`) and draws through :mod:`dlpractice.plots`; never MLflow directly.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dlpractice import claims, other_regularization
from dlpractice.errors import ArgumentParser, DataError, DlpracticeError

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
    "bias_variance": (
        "The lecture's four cases made by real networks on generated data, each diagnosed from its "
        "train and dev error (avoidable bias = train − Bayes error, variance = dev − train error, "
        "each high above its threshold), with the Bayes error of a human on these points, ~0; and "
        "its caveat: the same ~15% / 16% on data whose labels are 15% noise (Bayes error 15%)."
    ),
    "learning_curve": (
        "Train and dev error against the training-set size (data.train_size: parts of one train "
        "split; the same dev and test sets) for a high-variance and a high-bias network, with the "
        "Bayes error as a line: more data cures variance, not bias."
    ),
    "other_regularization": (
        "The lecture's other regularization methods on one high-variance setting (the same network "
        "and data): none, L2, early stopping (one run trained to the end, keeping the weights of "
        "its lowest dev cost: errors at the stop, best_iteration, and at the end) and data "
        "augmentation (mirrored and jittered training inputs)."
    ),
    "numerical_gradient": (
        "Numerical gradients: the lecture's f(θ) = θ³ at θ = 1 (exact f' = 3), then a trained tanh "
        "network's gradient check for ε from 1e-1 to 1e-10, central (two-sided) and forward "
        "(one-sided), by the course's loop (costs subtracted) and by the exact check. estimate: "
        "f'(1) at ε = 0.01; difference: at the course's ε = 1e-7; slope: of log difference against "
        "log ε in the truncation regime; rounding_epsilon: where the difference grows again."
    ),
    "recipe": (
        "The basic recipe as a loop (python -m dlpractice.recipe) from a deliberately poor start: "
        "train, diagnose, then a bigger network or longer training for high bias, more data or "
        "regularization for high variance (bias first), until a good fit."
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
    "bias_variance": ("lecture_train_dev", "train_error", "dev_error", "bayes_error",
                      "avoidable_bias", "variance"),
    "learning_curve": ("curve", "train_size", "train_error", "dev_error", "bayes_error",
                       "avoidable_bias", "variance"),
    "other_regularization": other_regularization.COLUMNS,
}
NUMERICAL_COLUMNS = ("setting", "function", "method", "check", "estimate", "difference", "slope",
                     "rounding_epsilon")
# Studies without boundaries.png: a learning curve's dozen runs differ only in their data's size.
NO_BOUNDARIES = ("learning_curve",)


def study_of(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """The study whose settings a sweep ran (every job chose an option of ``study/<name>``);
    None for any other sweep."""
    names = set()
    for row in rows:
        chosen = {o.partition("=")[0].removeprefix("study/") for o in row.get("overrides", ())
                  if o.startswith("study/")}
        names.add(chosen.pop() if len(chosen) == 1 else None)
    name = names.pop() if len(names) == 1 else None
    return name if name in STUDIES else None


def iterations_to_target(iterations: Sequence[int], costs: Sequence[float],
                         target: float) -> int | None:
    """The first recorded iteration whose training cost is <= ``target`` (None: never)."""
    for it, cost in zip(iterations, costs, strict=False):
        if math.isfinite(cost) and cost <= target:
            return int(it)
    return None


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


def _run_splits(cfg: Any) -> Any:
    """The (normalized) splits a run trained on, derived again from its config."""
    from dlpractice import pipeline

    prepared = pipeline.prepare_data(cfg)
    splits, _ = pipeline.normalize(cfg, prepared.splits)
    return splits


def study_row(study: str, row: Mapping[str, Any], cfg: Any, folder: Path, splits: Any,
              target_cost: float | None) -> dict[str, Any]:
    """One line of the study's table, from a job's summary row and run folder."""
    from dlpractice import pipeline, report

    out: dict[str, Any] = {"setting": row.get("setting")}
    for key in ("train_accuracy", "dev_accuracy", "test_accuracy", "diagnosis"):
        out[key] = row.get(key)
    failed = str(row.get("status", "")).startswith("failed")
    if failed or not (folder / report.PARAMETERS).is_file():
        out["status"] = "failed: " + str(row.get("error", "no parameters.npz")).strip()
    if study in ("initialization", "regularization"):
        out["course_train_test"] = cfg.tracking.tags.get("course_train_test", "")
    if study == "regularization":
        d = cfg.data
        out["dataset"] = f"file {Path(d.path).name}" if d.name == "file" else d.name
    if study == "gradient_checking":
        out["activation"] = cfg.model.activation
        diff = row.get("gradcheck_difference")
        out["gradcheck_difference"] = diff
        out["gradcheck_passed"] = (None if diff is None
                                   else "yes" if diff < cfg.gradcheck.threshold else "no")
    if study == "vanishing_gradients":
        out["init"] = cfg.init.name + (f" (scale {cfg.init.scale:g})" if cfg.init.name == "random"
                                       else "")
        init = pipeline.initial_parameters(pipeline.train_config(cfg, splits.X_train.shape[0]))
        norms = layer_norms(init, splits.X_train, splits.Y_train, cfg.model.activation)
        out["act_rms_first"], out["act_rms_last"] = norms["act_rms"][0], norms["act_rms"][-1]
        out["grad_norm_first"], out["grad_norm_last"] = (norms["grad_norm"][0],
                                                         norms["grad_norm"][-1])
        out["final_cost"] = row.get("final_cost")
        out["_norms"] = norms
    if study == "input_normalization":
        out["normalize"] = "yes" if cfg.data.normalize else "no"
        out["learning_rate"] = cfg.train.learning_rate
        its, costs = report.read_costs(folder)
        reached = iterations_to_target(its, costs, target_cost) if target_cost is not None else None
        out["iterations_to_target"] = (str(reached) if reached is not None
                                       else f"not in {cfg.train.iterations}")
        out["final_cost"] = row.get("final_cost")
        out["_curve"] = (its, costs)
    if study in ("bias_variance", "learning_curve", "other_regularization"):
        out.update(error_columns(row, cfg))
    if study == "other_regularization":
        out.update(other_regularization.columns(row, cfg, folder, splits))
    if study == "learning_curve":  # a run per curve (the study's setting) and size
        out["curve"] = study_option(row) or out["setting"]
        out["train_size"] = splits.X_train.shape[1]
    out["comment"] = cfg.tracking.note.strip()
    return out


def _scan_row(setting: str, function: str, scan: Any, estimate: float | None = None
              ) -> dict[str, Any]:
    """One line of the numerical_gradient table, its comment computed from its numbers."""
    return {"setting": setting, "function": function, "method": scan.method, "check": scan.check,
            "estimate": estimate, "difference": scan.difference_at(1e-7), "slope": scan.slope,
            "rounding_epsilon": scan.rounding_epsilon,
            "comment": claims.epsilon_scan_comment(scan, estimate), "_scan": scan}


def numerical_gradient_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The θ³ rows, then per job (a setting: its ``gradcheck.method``) the loop and the exact
    check of its trained network on its training split."""
    from dlpractice import config, report
    from dlpractice.epsilon_scan import cube_scan, estimate, network_scan

    table = [_scan_row(f"cube-{m}", "θ³ at θ = 1", cube_scan(m),
                       estimate(lambda t: t**3, 1.0, 0.01, m)) for m in ("central", "forward")]
    for row in rows:
        folder = Path(row["_folder"])
        if str(row.get("status", "")).startswith("failed") or not (
                folder / report.PARAMETERS).is_file():
            table.append({"setting": row.get("setting"),
                          "status": "failed: " + str(row.get("error", "no parameters.npz"))})
            continue
        cfg = config.load(row["config"], check_files=False)
        splits = _run_splits(cfg)
        parameters = report.load_parameters(folder / report.PARAMETERS)
        network = f"{cfg.model.activation} net {[*cfg.model.hidden]}"
        for check in ("loop", "exact"):
            scan = network_scan(parameters, splits.X_train, splits.Y_train,
                                cfg.model.activation, cfg.gradcheck.method, check)
            table.append(_scan_row(f"{row.get('setting')}-{check}", network, scan))
    return table


def study_option(row: Mapping[str, Any]) -> str | None:
    """The option of ``study/<name>`` a job ran (its setting), from its overrides."""
    chosen = [o.partition("=")[2] for o in row.get("overrides", ()) if o.startswith("study/")]
    return chosen[0] if len(chosen) == 1 else None


def error_columns(row: Mapping[str, Any], cfg: Any) -> dict[str, Any]:
    """A lecture study's error columns (a failed run's are None) and what the lecture says of the
    setting (its tags ``lecture``, the diagnosis, and ``lecture_train_dev``, the numbers)."""
    tags = cfg.tracking.tags
    out = {k: row.get(k) for k in ("train_error", "dev_error", "avoidable_bias", "variance")}
    out["bayes_error"] = cfg.diagnosis.bayes_error
    out["lecture_train_dev"] = tags.get("lecture_train_dev", "")
    out["_lecture"] = tags.get("lecture", "")
    out["_thresholds"] = (cfg.diagnosis.bias_threshold, cfg.diagnosis.variance_threshold)
    return out


def learning_curve_series(lines: Sequence[Mapping[str, Any]]
                          ) -> list[tuple[str, list[int], list[float], list[float], float]]:
    """Per curve (in table order): its sizes, train and dev errors and Bayes error."""
    series: dict[str, tuple[str, list[int], list[float], list[float], float]] = {}
    for line in lines:
        name = str(line["curve"])
        entry = series.setdefault(name, (name, [], [], [], line.get("bayes_error")))
        entry[1].append(line["train_size"])
        entry[2].append(line.get("train_error"))
        entry[3].append(line.get("dev_error"))
    return list(series.values())


def table_columns(study: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    if study == "numerical_gradient":
        extra = ["status"] if any("status" in r for r in rows) else []
        return [*NUMERICAL_COLUMNS, *extra, "comment"]
    cols = [*BASE_COLUMNS[:4], *STUDY_COLUMNS[study], BASE_COLUMNS[4]]
    if any("status" in r for r in rows):
        cols.append("status")
    return [*cols, "comment"]


def _panel_title(row: Mapping[str, Any]) -> str:
    tr, te = row.get("train_accuracy"), row.get("test_accuracy")
    if tr is None or te is None:
        return str(row["setting"])
    return f"{row['setting']}: train {tr:.3f}, test {te:.3f}"


def write_summary(study: str, rows: Sequence[Mapping[str, Any]], folder: Path,
                  target_cost: float | None = None) -> tuple[list[dict[str, Any]], list[Path]]:
    """The study's table (``table.md``, ``table.csv``) and figures (``boundaries.png``, and
    ``cost_curves.png``, ``layer_norms.png``, ``bias_variance.png`` or ``early_stopping.png``; a
    learning curve's ``learning_curves.png`` alone) from its jobs' rows (each with its run
    folder, ``_folder``); returns the table's rows and the files written."""
    from dlpractice import config, plots, report

    if study == "numerical_gradient":
        table = numerical_gradient_rows(rows)
        files = list(report.write_table(table, folder, "table", table_columns(study, table),
                                        heading=f"# numerical gradient\n\n{STUDIES[study]}"))
        files.append(plots.epsilon_scans(
            [(("θ³ " if r["setting"].startswith("cube") else "net ") + f"{r['method']} {r['check']}",
              r["_scan"].epsilons, r["_scan"].differences) for r in table if "_scan" in r],
            folder / "epsilon.png"))
        return [{k: v for k, v in r.items() if not k.startswith("_")} for r in table], files
    table, panels, curves = [], [], []
    for row in rows:
        cfg = config.load(row["config"], check_files=False)
        run_folder = Path(row["_folder"])
        splits = _run_splits(cfg)
        line = study_row(study, row, cfg, run_folder, splits, target_cost)
        table.append(line)
        if (run_folder / report.PARAMETERS).is_file() and "status" not in line and (
                study not in NO_BOUNDARIES):
            panels.append((_panel_title(line), report.load_parameters(run_folder / report.PARAMETERS),
                           splits.X_train, splits.Y_train, cfg.model.activation))
        if "_curve" in line and line["_curve"][0]:
            curves.append((line["setting"], *line["_curve"]))
    if study == "bias_variance":
        for line in table:
            line["comment"] = claims.bias_variance_comment(line)
    if study == "learning_curve":
        for line, text in zip(table, claims.learning_curve_comments(table), strict=True):
            line["comment"] = text
    if study == "other_regularization":
        for line, text in zip(table, claims.other_regularization_comments(table), strict=True):
            line["comment"] = text
    heading = [f"# {study.replace('_', ' ')}", "", STUDIES[study]]
    if study == "input_normalization" and target_cost is not None:
        heading += ["", f"Target cost: {target_cost:g}."]
    thresholds = {line["_thresholds"] for line in table if "_thresholds" in line}
    if len(thresholds) == 1:
        (bias_threshold, variance_threshold), = thresholds
        heading += ["", f"High bias: avoidable bias above {claims.pct(bias_threshold)}; high variance: "
                        f"variance above {claims.pct(variance_threshold)} (diagnosis.bias_threshold, "
                        "diagnosis.variance_threshold)."]
    files = list(report.write_table(table, folder, "table", table_columns(study, table),
                                    heading="\n".join(heading)))
    if study not in NO_BOUNDARIES:
        files.append(plots.boundaries_side_by_side(panels, folder / "boundaries.png"))
    if study == "input_normalization":
        files.append(plots.cost_curves(curves, folder / "cost_curves.png", target=target_cost))
    if study == "bias_variance":
        files.append(plots.bias_variance_chart(table, folder / "bias_variance.png"))
    if study == "other_regularization":
        stop = next((line["_stopping"] for line in table if "_stopping" in line), ([], [], [], None))
        files.append(plots.early_stopping_curve(*stop, folder / "early_stopping.png"))
    if study == "learning_curve":
        files.append(plots.learning_curves(learning_curve_series(table),
                                           folder / "learning_curves.png"))
    if study == "vanishing_gradients":
        files.append(plots.layer_norms([(r["setting"], r["_norms"]) for r in table
                                        if r.get("_norms")], folder / "layer_norms.png"))
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in table], files


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
        url = store.runs_url(study)
        print(f"  {study:<22} {url or f'(no runs yet: dvc repro pipelines/{study}/dvc.yaml)'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m dlpractice.studies")
    sub = parser.add_subparsers(dest="command", required=True)
    sh = sub.add_parser("show", help="print the studies' tables and their MLflow UI links")
    sh.add_argument("studies", nargs="*", help="default: all of them")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    from dlpractice import startup

    startup.import_kept(*startup.MLFLOW)
    try:
        return show(args.studies or list(STUDIES))
    except DlpracticeError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
