"""Hydra callback that turns a multirun into one tracked sweep.

Before the jobs start (main process): validate the base config, create or upgrade the tracking store
once (parallel jobs must not race to create a fresh SQLite schema) and open a parent MLflow run whose
id the jobs inherit through the environment (joblib's workers are started after this and inherit it).
The ``vectorized`` launcher asks for the store and the parent run a little later
(:meth:`SweepCallback.prepare_deferred`, :meth:`SweepCallback.start_deferred`), once its training
processes run, so that they train while this process imports MLflow.
After the jobs: read every job's ``summary.json`` from the sweep folder — finished, skipped and failed
alike — and log the table and the bias/variance chart to the parent run.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from dlpractice.experiment import PARENT_RUN_ENV, SUMMARY_FILE, SWEEP_ID_ENV

if TYPE_CHECKING:
    from dlpractice.tracking import Store


class SweepCallback(Callback):
    def __init__(self) -> None:
        self.parent_run_id: str | None = None
        self.sweep_id: str | None = None
        self.store: Store | None = None  # the sweep's tracking store, opened once
        self._deferred: dict[str, str] | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from dlpractice import config as cfg_mod
        from dlpractice import tracking
        from dlpractice.errors import DlpracticeError

        # Its jobs' rows carry it: the summary leaves out rows an earlier sweep left in the folder.
        self.sweep_id = uuid.uuid4().hex[:12]
        os.environ[SWEEP_ID_ENV] = self.sweep_id
        try:
            cfg = cfg_mod.load(config)
            if not cfg.tracking.enabled:
                return
            self.store = tracking.Store(tracking.resolve_uri(cfg.tracking.uri))
            self.store.check()  # the rest may wait (start_deferred), not the errors
        except DlpracticeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(1)
        self._deferred = {"experiment": cfg.tracking.experiment, "sweep_id": self.sweep_id,
                          "sweep_dir": str(config.hydra.sweep.dir)}
        # The vectorized launcher first starts its training processes (they need no MLflow), then
        # calls start_deferred(): the store is opened and MLflow imported while they train.
        if not _launcher_starts_tracking(config):
            self.start_deferred()

    def prepare_deferred(self) -> None:
        """Create or upgrade the tracking store (once), with no MLflow call that starts a thread:
        the vectorized launcher forks its job workers after this, before :meth:`start_deferred`
        (MLflow's usage telemetry starts threads at the first tracked call, and a process with
        other threads must not fork)."""
        from dlpractice.errors import DlpracticeError

        if self._deferred is None or self.store is None:
            return
        try:
            self.store.prepare()
        except DlpracticeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(1)
        os.environ["MLFLOW_TRACKING_URI"] = self.store.uri

    def start_deferred(self) -> None:
        """Open the tracking store and the sweep's parent run (once)."""
        from dlpractice import tracking

        if self._deferred is None or self.store is None:
            return
        self.prepare_deferred()
        info, self._deferred = self._deferred, None
        self.parent_run_id = tracking.start_sweep_run(
            self.store, info["experiment"], f"sweep-{info['sweep_id']}",
            tags={"sweep_id": info["sweep_id"], "sweep_dir": info["sweep_dir"]},
        )
        atexit.register(self._close_at_exit)  # a sweep that never ends is closed KILLED
        os.environ[PARENT_RUN_ENV] = self.parent_run_id

    def _close_at_exit(self) -> None:
        from dlpractice import tracking
        from dlpractice.tracking.metadata import one_line

        if self.parent_run_id is None or self.store is None:
            return
        run_id, self.parent_run_id = self.parent_run_id, None
        try:
            tracking.finish_sweep_run(self.store, run_id, status="KILLED")
        except Exception as exc:
            print(f"could not close MLflow run {run_id} as KILLED: {one_line(exc)}",
                  file=sys.stderr)

    def in_worker(self) -> None:
        """In a job worker forked before :meth:`start_deferred`: the launching process opens the
        parent run (its id reaches the jobs through the environment), not this one."""
        self._deferred = None

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.start_deferred()  # in case a launcher did not

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from dlpractice import plots, report, tracking

        sweep_dir = Path(str(config.hydra.sweep.dir))
        rows = collect_rows(sweep_dir, self.sweep_id)
        if not rows:
            return
        md, csv_path = report.write_table(rows, sweep_dir, stem="sweep_summary")
        bayes = float(config.get("diagnosis", {}).get("bayes_error", 0.0))
        chart_rows = [dict(r, bayes_error=bayes) for r in rows if "train_error" in r]
        chart = (plots.bias_variance_chart(chart_rows, sweep_dir / "bias_variance.png")
                 if chart_rows else None)
        print(f"\nsweep summary ({sweep_dir}):\n" + md.read_text())
        failed = sum(1 for r in rows if str(r.get("status", "")).startswith("failed"))
        if failed:
            print(f"{failed} of {len(rows)} jobs failed (see the table above)", file=sys.stderr)
        if self.parent_run_id is not None and self.store is not None:
            atexit.unregister(self._close_at_exit)
            tracking.finish_sweep_run(
                self.store, self.parent_run_id, files=[md, csv_path] + ([chart] if chart else []),
                tags={"jobs": str(len(rows)), "failed_jobs": str(failed)},
            )
        for env in (SWEEP_ID_ENV, PARENT_RUN_ENV):
            os.environ.pop(env, None)


def _launcher_starts_tracking(config: DictConfig) -> bool:
    """Does the sweep's launcher call :meth:`SweepCallback.start_deferred` itself?"""
    target = str(config.hydra.launcher.get("_target_", "") if "launcher" in config.hydra else "")
    return target.endswith(".VectorizedLauncher")


def collect_rows(sweep_dir: Path, sweep_id: str | None = None) -> list[dict[str, Any]]:
    """Every job's summary row, in job order (only sweep ``sweep_id``'s, when given)."""
    rows = []
    for path in sorted(sweep_dir.glob(f"*/{SUMMARY_FILE}"), key=lambda p: _job_number(p.parent)):
        row = json.loads(path.read_text())
        if sweep_id is None or row.get("sweep_id") == sweep_id:
            rows.append(row)
    return rows


def _job_number(folder: Path) -> tuple[int, str]:
    return (int(folder.name), "") if folder.name.isdigit() else (1 << 30, folder.name)
