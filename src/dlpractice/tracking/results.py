"""The runs of an experiment as one pandas table for a notebook: ``dlpractice.results``.

Owns reading runs back (one row per run: its attributes, params, metrics and tags) and the
column names, which are promises to users' notebooks. Reads the store only: it opens no run and
writes nothing.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from dlpractice.errors import DlpracticeError

if TYPE_CHECKING:
    import pandas as pd

    from dlpractice.tracking.store import Store

__all__ = ["TAG_PREFIX", "results"]

TAG_PREFIX = "tags."
PAGE = 1000  # runs per search request
_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf|nan")


def results(experiment: str, sweep_run_id: str | None = None,
            uri: str | None = None) -> pd.DataFrame:
    """One row per run of ``experiment`` (sweep parent runs left out), oldest first; with
    ``sweep_run_id``, only the runs of that sweep (the child runs of its parent run). Columns:
    ``run_id``, ``run_name``, ``status``, ``start_time``, ``end_time`` (UTC), then every param
    under its key (``regularizer.lambd``), every metric under its name (its latest value), every
    tag as ``tags.<key>`` (a string). A param column whose values all read as booleans or as
    numbers holds those; ``None`` is missing. ``uri``: the store (default:
    :func:`~dlpractice.tracking.resolve_uri`). A bad name or id raises
    :class:`~dlpractice.errors.DlpracticeError` with one line."""
    import pandas as pd

    store = _open(uri)
    exp_id = _experiment_id(store, experiment)
    filter_string = ""
    if sweep_run_id is not None:
        _check_sweep(store, exp_id, experiment, sweep_run_id)
        filter_string = f"tags.mlflow.parentRunId = '{sweep_run_id}'"
    runs = [run for run in _search(store, exp_id, filter_string)
            if run.data.tags.get("sweep") != "true"]
    params = sorted({key for run in runs for key in run.data.params})
    metrics = sorted({key for run in runs for key in run.data.metrics})
    tags = sorted({key for run in runs for key in run.data.tags})
    columns: dict[str, list[Any]] = {
        "run_id": [run.info.run_id for run in runs],
        "run_name": [run.info.run_name for run in runs],
        "status": [run.info.status for run in runs],
        "start_time": pd.to_datetime([run.info.start_time for run in runs], unit="ms", utc=True),
        "end_time": pd.to_datetime([run.info.end_time for run in runs], unit="ms", utc=True),
    }
    for key in params:
        columns[key] = _typed([run.data.params.get(key) for run in runs])
    for key in metrics:
        columns[key] = [run.data.metrics.get(key) for run in runs]
    for key in tags:
        columns[TAG_PREFIX + key] = [run.data.tags.get(key) for run in runs]
    return pd.DataFrame(columns)


def _open(uri: str | None) -> Store:
    from dlpractice.tracking.store import Store, resolve_uri, sqlite_path

    resolved = resolve_uri(uri)
    path = sqlite_path(resolved)
    if path is not None and not path.is_file():  # reading must not create a store
        raise DlpracticeError(f"no MLflow store at {path} (tracking URI {resolved})")
    store = Store(resolved)
    store.prepare()
    return store


def _experiment_id(store: Store, name: str) -> str:
    exp = store.client.get_experiment_by_name(name)
    if exp is None or exp.lifecycle_stage == "deleted":
        names = sorted(e.name for e in store.client.search_experiments())
        raise DlpracticeError(f"no experiment {name!r} in the MLflow store {store.uri}; its "
                              f"experiments: {', '.join(names)}")
    return exp.experiment_id


def _check_sweep(store: Store, exp_id: str, experiment: str, run_id: str) -> None:
    """``run_id`` must be the parent run of a sweep of this experiment."""
    from mlflow.exceptions import MlflowException

    run = None
    if re.fullmatch(r"[0-9A-Za-z_-]+", run_id):
        try:
            run = store.client.get_run(run_id)
        except MlflowException:
            run = None
    if (run is None or run.info.experiment_id != exp_id
            or run.data.tags.get("sweep") != "true"):
        raise DlpracticeError(
            f"sweep_run_id={run_id!r} is not the parent run of a sweep of experiment "
            f"{experiment!r} (a run tagged sweep=true; a sweep prints it as `run: …/runs/<id>`)")


def _search(store: Store, exp_id: str, filter_string: str) -> list[Any]:
    runs: list[Any] = []
    token = None
    while True:
        page = store.client.search_runs([exp_id], filter_string=filter_string, max_results=PAGE,
                                        order_by=["attributes.start_time ASC"], page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _read(text: str | None) -> tuple[str, Any]:
    """(kind, value) of a param's text: missing, bool, int, float or str."""
    if text is None or text == "None":
        return "missing", None
    if text in ("True", "False"):
        return "bool", text == "True"
    if _INT.fullmatch(text):
        return "int", int(text)
    if _FLOAT.fullmatch(text):
        return "float", float(text)
    return "str", text


def _typed(texts: list[str | None]) -> list[Any]:
    """One param's values, as booleans or numbers when every present one reads as such."""
    read = [_read(text) for text in texts]
    kinds = {kind for kind, _ in read} - {"missing"}
    if kinds == {"bool"} or kinds <= {"int", "float"}:
        return [value for _, value in read]
    return [None if kind == "missing" else text for (kind, _), text in zip(read, texts)]
