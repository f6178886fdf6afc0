"""A sweep's choice of its best setting, on dev data alone, and its one look at the test split.

Owns the ranking (``selection.metric``; ties: the lower dev cost, then the earlier job), the one
numeric setting a sweep varies (its path) and testing the selected run once, after the choice (the
math is :mod:`dlpractice.pipeline`'s, the run folder :mod:`dlpractice.report`'s). Reads summary
rows; must not touch MLflow or draw (the sweep callback uploads, :mod:`dlpractice.plots` draws).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlpractice.config import SelectionConfig

if TYPE_CHECKING:
    from dlpractice.plots import PathData

TEST_METRICS = ("test_accuracy", "test_error")
# Keys that vary between jobs without being what the sweep compares (names, notes, the choice
# itself), and a seed: errors against seeds are no path.
NOT_A_PATH = ("tracking", "selection", "seed")


def _number(value: Any) -> float | None:
    """A finite float, else None (a failed run's blank, nan)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _ranked(row: Mapping[str, Any]) -> bool:
    """Jobs that ran to the end in this sweep or an earlier one (``skipped (already finished)``)."""
    status = str(row.get("status", ""))
    return status == "finished" or status.startswith("skipped")


def settings_of(rows: Sequence[Mapping[str, Any]]) -> SelectionConfig:
    """The sweep's ``selection`` settings, as its jobs' configs hold them (sweeping them is
    refused: they are the same in every job)."""
    for row in rows:
        settings = (row.get("config") or {}).get("selection")
        if isinstance(settings, dict):
            return SelectionConfig(**settings)
    return SelectionConfig()


def kept_dev_cost(row: Mapping[str, Any]) -> float | None:
    """The dev cost of the weights a run ends on: ``best_dev_cost`` when early stopping restored
    them, else the last recorded ``dev_cost``."""
    best = _number(row.get("best_dev_cost"))
    return best if best is not None else _number(row.get("dev_cost"))


def ranked_value(row: Mapping[str, Any], metric: str) -> float | None:
    """What a row is ranked by: its ``metric``, the :func:`kept_dev_cost` for ``dev_cost``."""
    return kept_dev_cost(row) if metric == "dev_cost" else _number(row.get(metric))


def select(rows: Sequence[Mapping[str, Any]], metric: str) -> int | None:
    """The index of the sweep's best row: the lowest ``metric`` (``dev_error`` or ``dev_cost``,
    the :func:`kept_dev_cost`) among the jobs that finished, ties broken by the lower kept dev
    cost, then the earlier job. None when no job can be chosen (every one failed)."""
    best: tuple[tuple[float, float, int, int], int] | None = None
    for position, row in enumerate(rows):
        value, dev_cost = ranked_value(row, metric), kept_dev_cost(row)
        if not _ranked(row) or value is None:
            continue
        job = row.get("job")
        key = (value, math.inf if dev_cost is None else dev_cost,
               job if isinstance(job, int) else position, position)
        if best is None or key < best[0]:
            best = (key, position)
    return None if best is None else best[1]


def test_of(row: Mapping[str, Any], folder: Path) -> dict[str, float]:
    """``test_accuracy`` and ``test_error`` of a selected job, from the parameters and
    normalization saved in ``folder`` and the test split prepared again from its config."""
    from dlpractice import config, pipeline, report

    cfg = config.load(row["config"])  # a data file gone since is named in one line
    parameters, stats = report.load_trained(folder)
    return pipeline.evaluate_test(cfg, parameters, stats)


# -- the path: errors against the one numeric setting a sweep varies --------------------------------


def _flat(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"hidden": [8, 4]}} -> {"model.hidden[0]": 8, "model.hidden[1]": 4}``."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat(value, name + "."))
        elif isinstance(value, (list, tuple)):
            out.update({f"{name}[{i}]": v for i, v in enumerate(value)})
        else:
            out[name] = value
    return out


def _settings(row: Mapping[str, Any]) -> dict[str, Any] | None:
    config = row.get("config")
    if not isinstance(config, Mapping):
        return None
    return _flat({k: v for k, v in config.items() if k not in NOT_A_PATH})


def varied_setting(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """The one setting the sweep's jobs differ in when it is a number in every job (e.g.
    ``regularizer.lambd``, ``model.hidden[0]``, ``train.iterations``, ``data.n_samples``); None
    when they differ in none, in several or in a setting that is not a number."""
    flats = [f for f in map(_settings, rows) if f is not None]
    if len(flats) < 2:
        return None
    missing = object()
    keys = sorted(set().union(*flats))
    differing = [k for k in keys if len({repr(f.get(k, missing)) for f in flats}) > 1]
    if len(differing) != 1:
        return None
    key = differing[0]
    return key if all(_number(f.get(key)) is not None for f in flats) else None


def error_path(rows: Sequence[Mapping[str, Any]], selected: int | None,
               bayes_error: float) -> PathData | None:
    """What the path chart shows for a sweep that varies one numeric setting (None for any
    other): each finished job's train and dev error against its value, the selected one marked."""
    from dlpractice import plots

    key = varied_setting(rows)
    if key is None:
        return None
    points, chosen = [], None
    for position, row in enumerate(rows):
        settings = _settings(row)
        train, dev = _number(row.get("train_error")), _number(row.get("dev_error"))
        if settings is None or train is None or dev is None:
            continue
        value = float(settings[key])
        points.append((value, train, dev))
        if position == selected:
            chosen = (value, dev)
    return plots.path_data(key, points, bayes_error, chosen) if points else None
