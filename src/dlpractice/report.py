"""What a run leaves behind for people: its output folder, its summary row, progress on a terminal,
and a sweep's summary table.

Files a run writes (``write_run_outputs``): ``parameters.npz`` (load with ``allow_pickle=False``;
early stopping's best weights, its last in ``parameters_end.npz``), ``history.csv`` (iteration,
cost, dev_cost, per-layer gradient norms), ``config.yaml`` (resolved), ``normalizer.npz`` (mean,
std; when the inputs were normalized), ``metrics.json`` and the plots
(unless ``report.figures`` is false).
The Hydra app, the DVC stages and the study comparisons read and write these.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlpractice import config
from dlpractice.pipeline import Outcome

if TYPE_CHECKING:
    from dlpractice.data import NormStats

PARAMETERS = "parameters.npz"
PARAMETERS_END = "parameters_end.npz"
NORMALIZER = "normalizer.npz"
HISTORY = "history.csv"
RUN_FILES = (PARAMETERS, PARAMETERS_END, NORMALIZER, HISTORY)  # what a study's table reads of a run
ROW_COLUMNS = (
    "setting", "status", "selected", "train_accuracy", "dev_accuracy", "test_accuracy",
    "train_error", "dev_error", "diagnosis", "gradcheck_difference", "recommendation",
)


def save_parameters(parameters: dict[str, np.ndarray], path: Path) -> Path:
    np.savez(path, **parameters)
    return path


def save_config(cfg: config.Config, path: Path) -> Path:
    """The resolved config as YAML, in the config's own order."""
    import yaml

    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    return path


def save_normalizer(stats: NormStats, path: Path) -> Path:
    """``mean`` and ``std`` of the input normalization (apply as ``(X - mean) / std``)."""
    np.savez(path, mean=stats.mean, std=stats.std)
    return path


def load_parameters(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def load_trained(folder: Path) -> tuple[dict[str, np.ndarray], NormStats | None]:
    """A run folder's trained parameters and input normalization (None: it saved none)."""
    from dlpractice.data import NormStats

    normalizer = folder / NORMALIZER
    stats = NormStats.load_npz(normalizer) if normalizer.is_file() else None
    return load_parameters(folder / PARAMETERS), stats


def read_costs(folder: Path, column: str = "cost") -> tuple[list[int], list[float]]:
    """A cost a run recorded (``history.csv``, ``cost`` or ``dev_cost``): iterations and costs."""
    path = folder / HISTORY
    if not path.is_file():
        return [], []
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [int(r["iteration"]) for r in rows], [float(r[column]) for r in rows]


def write_history(outcome: Outcome, path: Path) -> Path:
    r = outcome.result
    layers = len(r.grad_norms[0]) if r.grad_norms else 0
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["iteration", "cost", "dev_cost", *(f"grad_norm_W{l}" for l in range(1, layers + 1))])
        for k, it in enumerate(r.iterations):
            dev = r.dev_costs[k] if k < len(r.dev_costs) else ""
            w.writerow([it, repr(r.costs[k]), repr(dev) if dev != "" else "",
                        *(repr(g) for g in r.grad_norms[k])])
    return path


def outcome_metrics(outcome: Outcome) -> dict[str, float]:
    """The metric names users' scripts rely on, as logged to MLflow and DVC (``dev_cost``: the
    last recorded one, the value MLflow shows for its history; ``best_iteration`` and
    ``best_dev_cost``, the kept weights' dev cost, with early stopping)."""
    metrics = dict(outcome.evaluation.metrics())
    if outcome.result.dev_costs:
        metrics["dev_cost"] = outcome.result.dev_costs[-1]
    metrics["train_seconds"] = outcome.result.train_seconds
    metrics["final_cost"] = outcome.result.final_cost
    if outcome.result.best_iteration is not None:
        metrics["best_iteration"] = outcome.result.best_iteration
    if outcome.result.best_dev_cost is not None:
        metrics["best_dev_cost"] = outcome.result.best_dev_cost
    if outcome.gradcheck is not None:
        metrics["gradcheck_difference"] = outcome.gradcheck.difference
    return metrics


def write_run_outputs(outcome: Outcome, out_dir: Path, figures: Any = None) -> dict[str, Path]:
    """Write a run's files and plots (``report.figures``; drawn by ``figures``, a
    :class:`~dlpractice.plots.RunFigures`, when given) into ``out_dir``; returns them by name
    (MLflow artifacts)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = outcome.cfg
    files = {
        "parameters": save_parameters(outcome.result.parameters, out_dir / PARAMETERS),
        "history": write_history(outcome, out_dir / HISTORY),
    }
    if outcome.result.end_parameters is not None:
        files["parameters_end"] = save_parameters(outcome.result.end_parameters,
                                                  out_dir / PARAMETERS_END)
    files["config"] = save_config(cfg, out_dir / "config.yaml")
    if outcome.stats is not None:
        files["normalizer"] = save_normalizer(outcome.stats, out_dir / NORMALIZER)
    metrics = outcome_metrics(outcome)
    diag = outcome.evaluation.diagnosis
    (out_dir / "metrics.json").write_text(json.dumps(
        {**metrics, "diagnosis": diag.label, "recommendation": diag.recommendation}, indent=2))
    files["metrics"] = out_dir / "metrics.json"
    if not cfg.report.figures:
        return files
    return {**files, **write_figures(outcome, lambda name: out_dir / name, figures)}


def write_figures(outcome: Outcome, path_of: Callable[[str], Path], figures: Any = None
                  ) -> dict[str, Path]:
    """A run's four figures (the boundary for 2-D data only), each written where ``path_of(file
    name)`` says, by ``figures`` (a :class:`~dlpractice.plots.RunFigures` that drew other runs
    before; a new one when None); returns them by name."""
    from dlpractice import plots

    result, splits, cfg = outcome.result, outcome.splits, outcome.cfg
    figures = figures if figures is not None else plots.RunFigures()
    files = {
        "cost_curve": figures.cost_curve(result, path_of("cost_curve.png")),
        "grad_norms": figures.grad_norms(result, path_of("grad_norms.png")),
        "weights": figures.weight_histograms(result.parameters, path_of("weight_histograms.png")),
    }
    if splits.X_train.shape[0] == 2:
        files["decision_boundary"] = figures.decision_boundary(
            result.parameters, splits.X_train, splits.Y_train, cfg.model.activation,
            path_of("decision_boundary.png"), title=config.run_name(cfg))
    return files


def outcome_row(outcome: Outcome) -> dict[str, Any]:
    """One line of a comparison table for this run."""
    m = outcome_metrics(outcome)
    diag = outcome.evaluation.diagnosis
    row = {"setting": config.run_name(outcome.cfg), **m, "diagnosis": diag.label,
           "recommendation": diag.recommendation, "config": outcome.cfg.to_dict()}
    return row


def format_row(row: dict[str, Any]) -> str:
    """A run's result in a few lines for the terminal."""
    if row.get("status", "").startswith("failed"):
        return f"{row.get('setting')}: FAILED: {row.get('error', '')}"
    keys = ("train_accuracy", "dev_accuracy", "test_accuracy")
    accs = "  ".join(f"{k.split('_')[0]} {row[k]:.4f}" for k in keys if k in row)
    out = f"{row.get('setting')}: {row.get('status', '')}  accuracy {accs}"
    if "diagnosis" in row:
        out += f"\n  diagnosis: {row['diagnosis']} -> {row.get('recommendation', '')}"
    if row.get("gradcheck_difference") is not None:
        out += f"\n  gradient check difference: {row['gradcheck_difference']:.3g}"
    return out


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3g}"
    return "" if value is None else str(value)


def table_markdown(rows: Sequence[dict[str, Any]], columns: Sequence[str] = ROW_COLUMNS) -> str:
    cols = [c for c in columns if any(c in r for r in rows)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(c)).replace("|", "/") for c in cols) + " |")
    return "\n".join(lines) + "\n"


def write_table(rows: Sequence[dict[str, Any]], out_dir: Path, stem: str = "table",
                columns: Sequence[str] = ROW_COLUMNS, heading: str = "") -> tuple[Path, Path]:
    """The one table writer (a sweep's summary, a study's table): ``<stem>.md`` (``heading``, then
    the table) and ``<stem>.csv``, with the columns some row has."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cols = [c for c in columns if any(c in r for r in rows)]
    md = out_dir / f"{stem}.md"
    md.write_text((heading + "\n\n" if heading else "") + table_markdown(rows, cols),
                  encoding="utf-8")
    path_csv = out_dir / f"{stem}.csv"
    with path_csv.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({c: "" if r.get(c) is None else r.get(c) for c in cols})
    return md, path_csv


class _Progress:
    """A tqdm bar over iterations, shown only when stderr is a terminal."""

    def __init__(self, total: int, enabled: bool):
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="it", dynamic_ncols=True, leave=False)
        self.last = 0

    def __call__(self, iteration: int, cost: float) -> None:
        if self.bar is not None:
            # the cost first: the update draws the bar, which then shows this iteration's cost
            self.bar.set_postfix(cost=f"{cost:.4g}", refresh=False)
            self.bar.update(iteration - self.last)
            self.last = iteration

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def progress_bar(total: int, enabled: bool = True) -> _Progress:
    return _Progress(total, enabled)
