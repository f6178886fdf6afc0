"""Hydra callback that makes a multirun one tracked sweep, on any launcher.

Owns the sweep file ``<sweep dir>/.sweep.json`` (the sweep's id and its parent MLflow run id, shared
by every process of the sweep), the parent run's lifetime, and the sweep summary: a study's table
(:mod:`dlpractice.studies`) or the plain sweep table and bias/variance chart. The parent run is
opened by the first job that starts, in whichever process runs it, so that no process opens the
store before a launcher forks. It never trains and never formats a table itself.
"""

from __future__ import annotations

import atexit
import json
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from dlpractice.paths import locked

SWEEP_FILE = ".sweep.json"
SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class SweepInfo:
    sweep_id: str | None = None
    parent_run_id: str | None = None
    tracking_uri: str | None = None  # the store the parent run is in
    owner: dict[str, str] | None = None  # the process running the sweep: it owns the parent run


def read_info(sweep_dir: Path) -> SweepInfo:
    """The sweep's id and parent run id, as its first jobs left them (empty outside a sweep)."""
    try:
        return SweepInfo(**json.loads((sweep_dir / SWEEP_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return SweepInfo()


def _write_info(sweep_dir: Path, info: SweepInfo) -> None:
    (sweep_dir / SWEEP_FILE).write_text(json.dumps(info.__dict__))


class SweepCallback(Callback):
    def __init__(self, target_cost: float | None = None) -> None:
        self.target_cost = target_cost  # a study's iterations_to_target column
        self.sweep_dir: Path | None = None
        self.sweep_id: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from dlpractice import config as config_module
        from dlpractice import memory, tracking
        from dlpractice.errors import DlpracticeError

        try:
            cfg = config_module.load(config)
            processes = memory.launcher_processes(config.hydra.launcher)
            if processes is not None:  # jobs of this machine, each holding a run
                memory.check_sweep([cfg], processes)
            if cfg.tracking.enabled:
                tracking.Store(tracking.resolve_uri(cfg.tracking.uri)).check()
        except DlpracticeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(1)
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        # Its jobs' rows carry it: the summary leaves out rows an earlier sweep left in the folder.
        self.sweep_id = uuid.uuid4().hex[:12]
        with locked(self.sweep_dir / f"{SWEEP_FILE}.lock"):
            _write_info(self.sweep_dir, SweepInfo(self.sweep_id, owner=tracking.owner_tags()))
        atexit.register(self._close, "KILLED")

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if HydraConfig.get().mode == RunMode.MULTIRUN:
            _open_parent_run(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from dlpractice import plots, report, studies
        from dlpractice.errors import DlpracticeError

        assert self.sweep_dir is not None
        rows = jobs = collect_rows(self.sweep_dir, self.sweep_id)
        if rows:  # every job was settled without running (all finished before): no job opened it
            _open_parent_run(config)
        files: list[Path] = []
        if rows:
            study = studies.study_of(rows)
            if study is not None:
                try:
                    rows, files = studies.write_summary(study, rows, self.sweep_dir,
                                                        self.target_cost)
                except DlpracticeError as exc:  # e.g. a run's data file is gone
                    print(f"error: {exc}", file=sys.stderr)
                columns = [c for c in studies.table_columns(study, rows) if c != "comment"]
            else:
                columns = list(report.ROW_COLUMNS)
                files = list(report.write_table(rows, self.sweep_dir, "sweep_summary", columns))
                bayes = float(config.get("diagnosis", {}).get("bayes_error", 0.0))
                chart = [dict(r, bayes_error=bayes) for r in rows if "train_error" in r]
                if chart:
                    files.append(plots.bias_variance_chart(chart, self.sweep_dir / "bias_variance.png"))
            print(f"\nsweep summary ({self.sweep_dir}):\n" + report.table_markdown(rows, columns))
        failed_rows = [r for r in jobs if str(r.get("status", "")).startswith("failed")]
        failed = len(failed_rows)
        if failed:
            print(f"{failed} of {len(jobs)} jobs failed (see the table above):", file=sys.stderr)
            for r in failed_rows:
                print(f"  job {r.get('job')} ({r.get('setting')}): {r.get('error', '')}",
                      file=sys.stderr)
        sweep_dir = self.sweep_dir
        run_url = self._close("FINISHED", files, {"jobs": str(len(jobs)), "failed_jobs": str(failed)})
        if run_url:
            print(f"run: {run_url}")
        print(f"folder: {sweep_dir}")

    def _close(self, status: str, files: list[Path] | None = None,
               tags: dict[str, str] | None = None) -> str | None:
        """Finish the sweep's parent run, if a job opened one (once; KILLED at an early exit);
        returns its MLflow UI link."""
        from dlpractice import tracking

        if self.sweep_dir is None:
            return None
        atexit.unregister(self._close)
        info = read_info(self.sweep_dir)
        if info.parent_run_id is None or info.sweep_id != self.sweep_id:
            return None
        store = tracking.Store(str(info.tracking_uri))
        tracking.finish_sweep_run(store, info.parent_run_id, files=files or (), tags=tags,
                                  status=status)
        self.sweep_dir = None
        return store.run_url(info.parent_run_id)


def _open_parent_run(config: DictConfig) -> None:
    """Open the sweep's parent run unless a job did (or tracking is off)."""
    from dlpractice import tracking
    from dlpractice.config import TrackingConfig

    sweep_dir = Path(str(config.hydra.sweep.dir))
    settings = config.get("tracking", {})  # the job validates its config itself
    if not settings.get("enabled", True) or read_info(sweep_dir).parent_run_id:
        return
    with locked(sweep_dir / f"{SWEEP_FILE}.lock"):
        info = read_info(sweep_dir)
        if info.parent_run_id is None:
            store = tracking.Store(tracking.resolve_uri(settings.get("uri")))
            experiment = str(settings.get("experiment", "dlpractice"))
            stale_after_s = settings.get("stale_after_s", TrackingConfig.stale_after_s)
            tracking.close_abandoned_runs(store, experiment, float(stale_after_s))
            run_id = tracking.start_sweep_run(
                store, experiment, f"sweep-{info.sweep_id}",
                tags={"sweep_id": info.sweep_id, "sweep_dir": str(sweep_dir)}, owner=info.owner)
            _write_info(sweep_dir, SweepInfo(info.sweep_id, run_id, store.uri, info.owner))


def collect_rows(sweep_dir: Path, sweep_id: str | None = None) -> list[dict[str, Any]]:
    """Every job's summary row in job order (only sweep ``sweep_id``'s, when given); each with
    ``_folder``, the job's output folder."""
    rows = []
    for path in sweep_dir.glob(f"*/{SUMMARY_FILE}"):
        row = json.loads(path.read_text(encoding="utf-8"))
        if sweep_id is None or row.get("sweep_id") == sweep_id:
            rows.append(dict(row, _folder=str(path.parent)))
    return sorted(rows, key=lambda r: (r.get("job", 1 << 30), r["_folder"]))
