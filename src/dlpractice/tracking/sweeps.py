"""A sweep's runs as a whole: the parent run, opened before its jobs (they name it as their parent)
and closed after them, and the runs a lost job left open.

Owns the parent run's tags, its one upload and its status, and closing a lost job's runs. The caller
owns the parent run's lifetime (closing it if the process ends first); nothing here draws, formats
or writes a file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlpractice.tracking import metadata as md
from dlpractice.tracking import owners

if TYPE_CHECKING:
    from dlpractice.tracking.store import Store

__all__ = ["JOB_TAG", "SELECTED_TAG", "SWEEP_TAG", "close_lost_job_runs", "earlier_test_of_selected",
           "finish_sweep_run", "mark_selected", "start_sweep_run"]

SWEEP_TAG = "sweep_id"  # on a sweep's parent run and on each of its jobs' runs
JOB_TAG = "sweep_job"  # on a job's run: its job number in the sweep (Hydra's hydra.job.num)
SELECTED_TAG = "selected"  # "true" on the job's run its sweep selected


def start_sweep_run(store: Store, experiment: str, run_name: str,
                    tags: Mapping[str, Any] | None = None,
                    owner: Mapping[str, str] | None = None) -> str:
    """Open the parent run of a sweep in ``experiment``, tagged ``sweep=true`` (+ ``tags``) and
    owned by ``owner`` (the process that runs the sweep, as :func:`~.owners.owner_tags` gave it;
    default: this one); returns its id. Close it with :func:`finish_sweep_run`."""
    exp_id = store.experiment_id(experiment)
    all_tags = {"sweep": "true", **md.common_tags(), **dict(owner or owners.owner_tags()),
                **owners.heartbeat_tags(), **md.user_tags(tags)}
    return store.client.create_run(exp_id, run_name=run_name, tags=all_tags).info.run_id


def finish_sweep_run(
    store: Store,
    run_id: str,
    files: Iterable[str | Path | None] = (),
    tags: Mapping[str, Any] | None = None,
    status: str = "FINISHED",
    metrics: Mapping[str, float] | None = None,
) -> None:
    """Log ``tags``, ``metrics`` (at step 0) and ``files`` (the existing ones, in one upload, under
    their own names) to a sweep's parent run, then close it with ``status`` — even when logging
    fails (then this raises)."""
    from mlflow.entities import RunTag

    client = store.client
    try:
        if tags or metrics:
            values = [m for k, v in (metrics or {}).items()
                      for m in md.metric_series(k, [0], [v], md.now_ms())]
            md.log_batch(client, run_id, metrics=values,
                         tags=[RunTag(k, v) for k, v in md.user_tags(tags).items()])
        paths = [Path(f) for f in files if f is not None and Path(f).is_file()]
        if paths:
            md.upload(client, run_id, {str(path): path for path in paths})
    finally:
        client.set_terminated(run_id, status=status)


def mark_selected(store: Store, run_id: str) -> None:
    """Tag run ``run_id`` ``selected=true``: the job its sweep chose."""
    from mlflow.entities import RunTag

    md.log_batch(store.client, run_id, tags=[RunTag(SELECTED_TAG, "true")])


def earlier_test_of_selected(store: Store, experiment: str, run_id: str,
                             names: Iterable[str]) -> dict[str, float]:
    """The test metrics ``names`` (e.g. ``test_accuracy``) that the latest earlier sweep of
    ``experiment`` which selected run ``run_id`` logged for it (as ``selected_<name>`` on its
    parent run, tagged ``selected_run_id``); empty when no sweep logged them all."""
    from dlpractice.tracking.store import RUN_ID

    if not RUN_ID.fullmatch(run_id):  # nothing else is put in a filter
        return {}
    exp = store.client.get_experiment_by_name(experiment)
    if exp is None:
        return {}
    names = list(names)
    runs = store.client.search_runs(
        [exp.experiment_id], filter_string=f"tags.selected_run_id = '{run_id}'",
        order_by=["attributes.start_time DESC"], max_results=1)
    logged = runs[0].data.metrics if runs else {}
    if not all(f"selected_{name}" in logged for name in names):
        return {}
    return {name: logged[f"selected_{name}"] for name in names}


def close_lost_job_runs(store: Store, experiment: str, sweep_id: str, job: int,
                        reason: str) -> list[str]:
    """End KILLED, tagged ``failure_reason`` = ``reason``, the runs of ``experiment`` that job
    ``job`` of sweep ``sweep_id`` left RUNNING: its process died before it could close them (a
    launcher's killed worker, on whichever host). Returns their ids, oldest first."""
    import re

    from mlflow.entities import RunTag

    if not re.fullmatch(r"[0-9A-Za-z_-]+", sweep_id):
        raise ValueError(f"sweep_id {sweep_id!r} must be a hex id")
    client = store.client
    exp = client.get_experiment_by_name(experiment)
    if exp is None:  # the job died before it opened a run
        return []
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string=(f"tags.{SWEEP_TAG} = '{sweep_id}' and tags.{JOB_TAG} = '{int(job)}' "
                       "and attributes.status = 'RUNNING'"),
        order_by=["attributes.start_time ASC"],
    )
    for run in runs:
        md.log_batch(client, run.info.run_id, tags=[RunTag("failure_reason", md.tag_text(reason))])
        client.set_terminated(run.info.run_id, status="KILLED")
    return [run.info.run_id for run in runs]
