"""The other_regularization study's own columns: the method a setting applies and, for early
stopping (one run trained to the end, keeping its best weights), where it stopped and its errors at
the end. Reads run folders through :mod:`dlpractice.report`; never writes, draws or tracks
(:mod:`dlpractice.studies` builds and writes the table).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLUMNS = ("method", "train_error", "dev_error", "variance", "best_iteration", "train_error_end",
           "dev_error_end")


def method(regularizer: Any) -> str:
    """The regularization a run's ``regularizer`` section applies, in words (``none`` if any)."""
    parts = []
    if regularizer.name == "l2":
        parts.append(f"L2 (lambd {regularizer.lambd:g})")
    elif regularizer.name != "none":
        parts.append(regularizer.name)
    if regularizer.early_stopping_patience is not None:
        parts.append("early stopping")
    if regularizer.flip_axes:
        parts.append("flips of " + ", ".join(f"x{a + 1}" for a in regularizer.flip_axes))
    if regularizer.jitter:
        parts.append(f"jitter {regularizer.jitter:g}")
    return " + ".join(parts) or "none"


def columns(row: dict[str, Any], cfg: Any, folder: Path, splits: Any) -> dict[str, Any]:
    """``method`` and, for a run with early stopping that saved its last weights, ``best_iteration``
    (the stop), ``train_error_end`` and ``dev_error_end`` (those weights' errors), and ``_stopping``
    (the run's iterations, training and dev costs and stop: its figure); else None."""
    from dlpractice import report
    from dlpractice.pipeline import rates

    out: dict[str, Any] = {"method": method(cfg.regularizer), "best_iteration": None,
                           "train_error_end": None, "dev_error_end": None}
    end = folder / report.PARAMETERS_END
    if not end.is_file():
        return out
    last = report.load_parameters(end)
    act = cfg.model.activation
    out["best_iteration"] = row.get("best_iteration")
    out["train_error_end"] = rates(last, splits.X_train, splits.Y_train, act).error
    out["dev_error_end"] = rates(last, splits.X_dev, splits.Y_dev, act).error
    its, costs = report.read_costs(folder)
    out["_stopping"] = (its, costs, report.read_costs(folder, "dev_cost")[1], out["best_iteration"])
    return out
