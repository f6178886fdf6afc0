"""What a launcher records for a sweep's jobs in its own process, without running the app's task:
jobs whose configuration has a FINISHED run already (:func:`finished_jobs`) and
jobs whose process ended without a result (:func:`job_ended_without_result`); and the job folder's
``summary.json`` row that the task writes too (:func:`write_row`). Never trains or opens a run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dlpractice.errors import DlpracticeError, one_line

SKIPPED = "skipped (already finished)"  # a job's status when an earlier run has its configuration


def failed_setting(raw_cfg: Any, overrides: Any) -> str:
    """A failed job's name in the sweep summary: its ``tracking.run_name``, else its overrides."""
    return raw_cfg.get("tracking", {}).get("run_name") or " ".join(overrides)


def write_row(output_dir: Path, row: dict[str, Any]) -> None:
    """Write a job's ``summary.json`` row (the sweep summary reads it back)."""
    from dlpractice import sweep

    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / sweep.SUMMARY_FILE).write_text(json.dumps(row, indent=2, default=str),
                                                 encoding="utf-8")


def read_row(output_dir: Path) -> dict[str, Any] | None:
    """The ``summary.json`` row a job folder holds; None when it holds none that reads."""
    from dlpractice import sweep

    try:
        row = json.loads((output_dir / sweep.SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return row if isinstance(row, dict) else None


def earlier_job_in(output_dir: Path, sweep_id: str | None) -> str | None:
    """Why this job must not use ``output_dir``: an earlier job of the same sweep wrote it (a
    subdir both resolve to, e.g. one study setting swept over other values)."""
    earlier = read_row(output_dir)
    if sweep_id is None or earlier is None or earlier.get("sweep_id") != sweep_id:
        return None
    return (f"{output_dir} holds job {earlier.get('job')} of this sweep already: give each job its "
            "own folder (hydra.sweep.subdir), e.g. sweep other values with the study's preset")


def _recorded_run(output_dir: Path, key: str) -> str | None:
    """The run that a job folder's row says finished (or was found finished) with config hash
    ``key``; None when the folder says nothing of the kind."""
    row = read_row(output_dir) or {}
    if (row.get("config_hash") == key and row.get("status") in ("finished", SKIPPED)
            and isinstance(row.get("run_id"), str)):
        return row["run_id"]
    return None


def finished_jobs(job_configs: Mapping[int, tuple[Any, Any]], stores: Any
                  ) -> dict[int, dict[str, Any]]:
    """The sweep jobs (by job index: the composed job config and its loaded
    :class:`~dlpractice.config.Config`, None if it does not validate) whose configuration already
    has a FINISHED run: each one's row, written to its folder as the app's task would write it,
    without running the job: the runs the jobs' folders name, fetched by id, and one search of the
    experiment for the others. Jobs it cannot settle this way are left to run."""
    from omegaconf import OmegaConf

    from dlpractice import config, sweep

    wanted: dict[tuple[str | None, str], dict[str, list[tuple[int, Any, Any, Path, Path]]]] = {}
    recorded: dict[tuple[str | None, str], dict[str, str]] = {}
    for j, (raw, cfg) in job_configs.items():
        if cfg is None or not cfg.tracking.enabled or cfg.tracking.rerun:  # the job reports it
            continue
        try:
            sweep_dir = Path(str(OmegaConf.select(raw, "hydra.sweep.dir")))
            folder = sweep_dir / str(OmegaConf.select(raw, "hydra.sweep.subdir"))
        except Exception:  # e.g. a resolver that needs the job's runtime: run the job
            continue
        store_key = (cfg.tracking.uri, cfg.tracking.experiment)
        key = config.config_hash(cfg, test_hidden=config.tests_hidden(cfg, sweep=True))
        wanted.setdefault(store_key, {}).setdefault(key, []).append((j, raw, cfg, sweep_dir, folder))
        run_id = _recorded_run(folder, key)
        if run_id is not None:
            recorded.setdefault(store_key, {})[key] = run_id
    rows: dict[int, dict[str, Any]] = {}
    infos: dict[Path, Any] = {}
    for store_key, by_hash in wanted.items():
        uri, experiment = store_key
        try:
            found = stores.get(uri).finished_runs(experiment, by_hash, recorded.get(store_key))
        except DlpracticeError:  # e.g. the store went away: each job says so itself
            continue
        for key, summary in found.items():
            for j, raw, cfg, sweep_dir, folder in by_hash[key]:
                if sweep_dir not in infos:
                    infos[sweep_dir] = sweep.read_info(sweep_dir)
                info = infos[sweep_dir]
                if earlier_job_in(folder, info.sweep_id) is not None:
                    continue
                overrides = list(raw.hydra.overrides.task)
                named = sweep.named_job(cfg, overrides, info.swept)
                rows[j] = {"config": named.to_dict(), "setting": config.run_name(named), **summary,
                           "status": SKIPPED, "overrides": overrides,
                           "sweep_id": info.sweep_id, "job": raw.hydra.job.num}
                write_row(folder, rows[j])
    return rows


def job_ended_without_result(job_config: Any, output_dir: Path, reason: str) -> dict[str, Any]:
    """A sweep job whose process ended before it returned (a launcher's worker killed, its node
    lost), recorded by the launcher in its own process from the job's composed config (``hydra``
    node included): its ``summary.json`` row says failed with ``reason`` (so the sweep summary
    reports it), and the MLflow runs it left RUNNING end KILLED with ``failure_reason`` = reason.
    Returns the row."""
    from dlpractice import sweep, tracking

    hydra = job_config.hydra
    info = sweep.read_info(Path(str(hydra.sweep.dir)))
    job, overrides = int(hydra.job.num), list(hydra.overrides.task)
    row: dict[str, Any] = {"setting": failed_setting(job_config, overrides), "status": "failed",
                           "error": reason, "overrides": overrides, "sweep_id": info.sweep_id,
                           "job": job}
    settings = job_config.get("tracking", {})
    if settings.get("enabled", True) and info.sweep_id is not None:
        try:
            store = tracking.Store(tracking.resolve_uri(settings.get("uri")))
            experiment = str(settings.get("experiment", "dlpractice"))
            closed = tracking.close_lost_job_runs(store, experiment, info.sweep_id, job, reason)
        except Exception as exc:  # the row still reports the job; the store's trouble is named
            print(f"error: job {job}: could not close its MLflow runs: {one_line(exc)}",
                  file=sys.stderr)
        else:
            if closed:
                row["run_id"] = closed[-1]
    write_row(output_dir, row)
    return row
