"""The Hydra app: ``python -m dlpractice.experiment [overrides]`` runs split → normalize → train →
gradient-check → evaluate in one process, for one config, and records it as one MLflow run.

With ``-m`` it is a Hydra multirun (``hydra/launcher=joblib`` for parallel jobs). A sweep gets a parent
MLflow run and a summary (table + bias/variance chart); a failing job is reported there without
stopping the others; a re-run skips configurations already FINISHED in the store unless
``tracking.rerun=true``.

Each job writes its outputs (``summary.json``, ``parameters.npz``, ``history.csv``, plots) to Hydra's
output directory, so the study pipelines can point ``hydra.run.dir`` at their DVC outs.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from dlpractice.errors import DlpracticeError


def _conf_dir() -> Path:
    """``conf/`` of the project: $DLPRACTICE_CONF, else the nearest one above the cwd (where
    ``mlflow run`` and DVC run us), else the one beside the source tree (editable installs)."""
    if os.environ.get("DLPRACTICE_CONF"):
        return Path(os.environ["DLPRACTICE_CONF"]).resolve()
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "conf" / "config.yaml").is_file() and (folder / "dvc.yaml").is_file():
            return folder / "conf"
    return Path(__file__).resolve().parents[2] / "conf"


CONF_DIR = _conf_dir()
SWEEP_ID_ENV = "DLPRACTICE_SWEEP_ID"
PARENT_RUN_ENV = "DLPRACTICE_PARENT_RUN_ID"
SUMMARY_FILE = "summary.json"
PROJECT_RUN_ENV = "DLPRACTICE_MLFLOW_PROJECT_RUN"


def _sigterm_as_interrupt() -> None:
    """SIGTERM ends a run like Ctrl-C does: the MLflow run is closed as KILLED, not left RUNNING."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def run_job(raw_cfg: Any, output_dir: Path, *, multirun: bool = False) -> dict[str, Any]:
    """One configuration, end to end. Returns the row the sweep summary shows."""
    from dlpractice import config, pipeline, report, tracking

    cfg = config.load(raw_cfg)
    data = pipeline.prepare_data(cfg)  # validates data and model sizes before any run opens
    row: dict[str, Any] = {"setting": config.run_name(cfg), "status": "running"}
    if cfg.tracking.enabled and not cfg.tracking.rerun:
        uri = tracking.resolve_uri(cfg.tracking.uri)
        done = tracking.find_finished_run(cfg.tracking.experiment, config.config_hash(cfg), uri)
        if done is not None:
            row.update(tracking.run_summary(done, uri), status="skipped (already finished)")
            return row
    tracker = (
        tracking.RunTracker(cfg, parent_run_id=os.environ.get(PARENT_RUN_ENV),
                            tags=_sweep_tags())
        if cfg.tracking.enabled else None
    )
    progress = report.progress_bar(cfg.train.iterations, enabled=not multirun)
    with tracker if tracker is not None else _null():
        def callback(i: int, cost: float, dev_cost: float | None) -> None:
            if tracker is not None:
                tracker.callback(i, cost, dev_cost)
            progress(i, cost)

        outcome = pipeline.run_all(cfg, callback=callback, data=data)
        progress.close()
        artifacts = report.write_run_outputs(outcome, output_dir)
        if tracker is not None:
            tracker.log_history(outcome.result)
            tracker.log_outcome(outcome, artifacts)
            row["run_id"] = tracker.run_id
        pipeline.require_gradcheck(cfg, outcome.gradcheck)
    row.update(report.outcome_row(outcome), status="finished")
    return row


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _sweep_tags() -> dict[str, str]:
    tags = {}
    if os.environ.get(SWEEP_ID_ENV):
        tags["sweep_id"] = os.environ[SWEEP_ID_ENV]
    if os.environ.get(PROJECT_RUN_ENV):
        tags["mlflow_project_run"] = os.environ[PROJECT_RUN_ENV]
    return tags


def _task(cfg: Any) -> dict[str, Any] | None:
    """The function Hydra calls per job."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    output_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    try:
        row = run_job(cfg, output_dir, multirun=multirun)
    except DlpracticeError as exc:
        if not multirun:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(1)
        row = {"setting": " ".join(hc.overrides.task), "status": "failed", "error": str(exc)}
    except Exception as exc:  # a sweep reports a crashed job and goes on
        if not multirun:
            raise
        row = {"setting": " ".join(hc.overrides.task), "status": "failed",
               "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    row["overrides"] = list(hc.overrides.task)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / SUMMARY_FILE).write_text(json.dumps(row, indent=2, default=str))
    if not multirun:
        from dlpractice import report

        print(report.format_row(row))
    return row


def _check_group_choices(argv: list[str]) -> None:
    """Reject ``init=foo`` with one line before Hydra prints its multi-line error."""
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, _, value = arg.partition("=")
        key = key.lstrip("+~")
        if key.startswith("hydra") or "." in key or "/" in key:
            continue
        group = CONF_DIR / key
        if not group.is_dir() or value.startswith(("choice(", "range(", "glob(")):
            continue
        options = sorted(p.stem for p in group.glob("*.yaml"))
        for choice in value.split(","):
            if choice and choice != "null" and choice not in options:
                raise DlpracticeError(
                    f"{key}={choice!r} is not a config option; choose one of {', '.join(options)}"
                )


def _expand_overrides(argv: list[str]) -> list[str]:
    """``--overrides "init=he train.iterations=500"`` (how ``mlflow run -P overrides=…`` passes them,
    as one quoted word) becomes separate Hydra overrides."""
    import shlex

    out: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--overrides":
            out += shlex.split(next(args, ""))
        elif arg.startswith("--overrides="):
            out += shlex.split(arg.partition("=")[2])
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> None:
    import hydra

    argv = _expand_overrides(sys.argv[1:] if argv is None else argv)
    try:
        _check_group_choices(argv)
    except DlpracticeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    _sigterm_as_interrupt()
    # `mlflow run` hands us its own run in MLFLOW_RUN_ID; our runs go to the configured experiment
    # instead (tagged with that launcher run), so don't let MLflow's fluent API resume it.
    if "MLFLOW_RUN_ID" in os.environ:
        os.environ[PROJECT_RUN_ENV] = os.environ.pop("MLFLOW_RUN_ID")
    sys.argv = [sys.argv[0], *argv]
    app = hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(_task)
    app()


if __name__ == "__main__":
    main()
