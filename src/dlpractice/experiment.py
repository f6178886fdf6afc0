"""The Hydra app: ``python -m dlpractice.experiment [overrides]`` runs split → normalize → train →
gradient-check → evaluate for one config in one process and records it as one MLflow run; with
``-m`` a Hydra multirun (any launcher; :mod:`dlpractice.sweep` makes it one tracked sweep).

Owns the command line (one-line errors before Hydra starts) and the task: each job writes its run
folder (:mod:`dlpractice.report`) and ``summary.json`` into Hydra's output folder. The numbers come
from :mod:`dlpractice.pipeline`, the MLflow calls from :mod:`dlpractice.tracking`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from dlpractice.errors import DlpracticeError, one_line, sigterm_as_interrupt
from dlpractice.sweep_jobs import SKIPPED, earlier_job_in, failed_setting, write_row


def _conf_dir() -> Path:
    """``conf/`` of the project: $DLPRACTICE_CONF, else the project root's."""
    from dlpractice.paths import project_root

    if os.environ.get("DLPRACTICE_CONF"):
        return Path(os.environ["DLPRACTICE_CONF"]).resolve()
    return project_root() / "conf"


CONF_DIR = _conf_dir()
PROJECT_RUN_TAG = "mlflow_project_run"


def mlflow_project_override() -> list[str]:
    """Under ``mlflow run``, which hands the entry point its own launcher run in MLFLOW_RUN_ID: the
    override that tags our runs with that run's id (they go to ``tracking.experiment``). Takes
    MLFLOW_RUN_ID out of the environment so that MLflow's fluent API never resumes that run."""
    run_id = os.environ.pop("MLFLOW_RUN_ID", None)
    return [f"++tracking.tags.{PROJECT_RUN_TAG}={run_id}"] if run_id else []


def run_job(cfg: Any, output_dir: Path, *, multirun: bool = False, result: Any = None,
            parent_run_id: str | None = None, tags: dict[str, str] | None = None,
            stores: Any = None, figures: Any = None) -> dict[str, Any]:
    """One configuration (a :class:`~dlpractice.config.Config`), end to end; ``result``: its
    training, done ahead (a stacked sweep); ``stores``, ``figures``: this process's
    :class:`~dlpractice.tracking.Stores` and :class:`~dlpractice.plots.RunFigures` (a sweep's
    jobs share them). Returns the row the sweep summary shows."""
    from dlpractice import config, memory, pipeline, report, tracking

    memory.check_run(cfg, trained=result is not None)  # before anything is allocated
    data = pipeline.prepare_data(cfg)  # validates data and model sizes before any run opens
    row: dict[str, Any] = {"setting": config.run_name(cfg), "status": "running"}
    stores = stores if stores is not None else tracking.Stores()
    store = stores.get(cfg.tracking.uri) if cfg.tracking.enabled else None
    if store is not None and not multirun:  # a sweep does it once, when its parent run opens
        tracking.close_abandoned_runs(store, cfg.tracking.experiment, cfg.tracking.stale_after_s)
    hidden = config.tests_hidden(cfg, multirun)  # a sweep's job leaves its test split unseen
    if store is not None and not cfg.tracking.rerun:
        done = store.find_finished_run(cfg.tracking.experiment,
                                       config.config_hash(cfg, test_hidden=hidden))
        if done is not None:
            row.update(store.run_summary(done), status=SKIPPED)
            if not multirun:  # printed below
                row["run_url"] = store.run_url(done)
                _register_if_asked(cfg, store, done, row)
            return row
    run_tags = {**cfg.tracking.tags, **(tags or {})}
    if cfg.tracking.note:
        run_tags["mlflow.note.content"] = cfg.tracking.note
    tracker = (tracking.RunTracker(cfg, store, parent_run_id=parent_run_id, tags=run_tags,
                                   test_hidden=hidden) if store is not None else None)
    progress = report.progress_bar(cfg.train.iterations, enabled=not multirun)
    with tracker if tracker is not None else nullcontext():
        if tracker is not None:  # before training: a run that fails still names its data
            tracker.log_datasets(data)

        def callback(i: int, cost: float, dev_cost: float | None) -> None:
            if tracker is not None:
                tracker.callback(i, cost, dev_cost)
            progress(i, cost)

        outcome = pipeline.run_all(cfg, callback=callback, data=data, result=result,
                                   test=not hidden)
        progress.close()
        artifacts = report.write_run_outputs(outcome, output_dir, figures)
        if tracker is not None:
            tracker.log_history(outcome.result)
            tracker.log_model(outcome, artifacts)
            tracker.log_outcome(outcome)
            tracker.upload(artifacts)
            row["run_id"] = tracker.run_id
            row["run_url"] = store.run_url(tracker.run_id, tracker.experiment_id)
            row["config_hash"] = tracker.config_hash  # a resumed sweep looks this run up by it
        pipeline.require_gradcheck(cfg, outcome.gradcheck)
    if tracker is not None and not multirun:  # a sweep registers its choice
        _register_if_asked(cfg, store, tracker.run_id, row)
    row.update(report.outcome_row(outcome), status="finished")
    return row


def _register_if_asked(cfg: Any, store: Any, run_id: str, row: dict[str, Any]) -> None:
    """A single run with ``tracking.register=true``: its model, the experiment's champion."""
    from dlpractice import tracking
    if cfg.tracking.register:
        version = tracking.register_model(store, run_id, cfg.tracking.experiment)
        row["registered"] = f"{tracking.model_uri(cfg.tracking.experiment)} (version {version})"


def task(raw_cfg: Any, result: Any = None, stores: Any = None, figures: Any = None) -> dict | None:
    """The function Hydra calls per job (``result``, ``stores``, ``figures``: see :func:`run_job`)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from dlpractice import config, sweep
    from dlpractice.tracking.sweeps import JOB_TAG, SWEEP_TAG

    hc = HydraConfig.get()
    output_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    info = sweep.read_info(Path(str(hc.sweep.dir))) if multirun else sweep.SweepInfo()
    tags = {k: v for k, v in ((SWEEP_TAG, info.sweep_id),
                              (JOB_TAG, str(hc.job.num) if multirun else None)) if v}
    clash = earlier_job_in(output_dir, info.sweep_id) if multirun else None
    if clash is not None:  # leave the earlier job's files and row as they are
        print(f"error: job {hc.job.num}: {clash}", file=sys.stderr)
        return {"status": "failed", "error": clash, "job": hc.job.num}
    row: dict[str, Any] = {}
    try:
        cfg = config.load(raw_cfg)  # the one load of this job's config
        if multirun:
            cfg = sweep.named_job(cfg, hc.overrides.task, info.swept)
        row["config"] = cfg.to_dict()
        row.update(run_job(cfg, output_dir, multirun=multirun, result=result,
                           parent_run_id=info.parent_run_id, tags=tags, stores=stores, figures=figures))
    except DlpracticeError as exc:
        if not multirun:
            _discard_hydra_files(output_dir, hc)
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(1)
        row.update(status="failed", error=str(exc))
    except Exception as exc:  # a sweep reports a crashed job and goes on
        if not multirun:
            raise
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}".splitlines()[0])
    if row.get("status") == "failed":
        row.setdefault("setting", failed_setting(raw_cfg if multirun else {}, hc.overrides.task))
    row["overrides"] = list(hc.overrides.task)
    if multirun:
        row.update(sweep_id=info.sweep_id, job=hc.job.num)
    write_row(output_dir, row)
    if not multirun:
        from dlpractice import report

        print(report.format_row(row))
        if row.get("run_url"):
            print(f"run: {row['run_url']}")
        if row.get("registered"):
            print(f"registered: {row['registered']}")
        print(f"folder: {output_dir}")
    return row


def _discard_hydra_files(output_dir: Path, hc: Any) -> None:
    """A single run that fails with a one-line error leaves no output folder: remove what Hydra
    wrote there (its ``.hydra/`` and the job's log) unless the folder holds anything else (a
    folder reused from an earlier run is left alone)."""
    import shutil

    own = {str(hc.output_subdir or ""), f"{hc.job.name}.log"} - {""}
    try:
        if any(p.name not in own for p in output_dir.iterdir()):
            return
        for name in own:
            path = output_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        output_dir.rmdir()
    except OSError:
        pass


def _check_args(argv: list[str]) -> list[str]:
    """Hydra's own command line, parsed as Hydra will parse it but with misuse (``--bogus``, a
    malformed override) reported as one line; returns the overrides."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from dlpractice.hydra_compat import hydra_args_parser

    parser = hydra_args_parser()
    if parser is None:  # another Hydra version: it reports misuse itself
        return [a for a in argv if not a.startswith("-")]
    parser.exit_on_error = False  # malformed options raise instead of printing usage
    try:
        args, unknown = parser.parse_known_args(argv)
    except argparse.ArgumentError as exc:
        raise DlpracticeError(f"{' '.join(str(exc).split())} (see --help)") from None
    if unknown:
        raise DlpracticeError(f"unrecognized arguments: {' '.join(unknown)} (see --help)")
    modes = [m for m in ("run", "multirun", "cfg", "info", "shell_completion") if getattr(args, m)]
    if len(modes) > 1:
        raise DlpracticeError("only one of --run, --multirun, --cfg, --info and "
                              "--shell-completion can be given (see --help)")
    overrides = list(args.overrides or [])
    grammar = OverridesParser.create()
    for override in overrides:
        try:
            grammar.parse_overrides([override])
        except HydraException as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DlpracticeError(f"cannot parse the override {override!r}: {first}") from None
    return overrides


def _check_keys(overrides: list[str]) -> None:
    """``train.bogus=1`` -> one line naming the allowed keys, before Hydra's multi-line error."""
    from dlpractice.config import check_key

    for arg in overrides:
        key, sep, value = arg.partition("=")
        if sep and key.startswith("+") and not key.startswith("++") and _in_schema(key[1:]):
            # Hydra would find out only when it composes the first job, after a sweep started
            raise DlpracticeError(f"{arg}: {key[1:]} is already in the config; set it without "
                                  f"'+' ({key[1:]}={value})")
        if not sep or key.startswith(("+", "~")) or "@" in key or "/" in key:
            continue
        if key == "hydra" or key.startswith("hydra.") or (CONF_DIR / key).is_dir():
            continue
        check_key(key)


def _check_selection_not_swept(overrides: list[str]) -> None:
    """``selection.metric=dev_error,dev_cost`` -> one line: a sweep chooses by one rule."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for parsed in OverridesParser.create().parse_overrides(overrides):
        key = parsed.key_or_group.lstrip("+~")
        if key.split(".")[0] == "selection" and parsed.is_sweep_override():
            raise DlpracticeError(f"{parsed.input_line} is a sweep, but a sweep chooses its best "
                                  f"setting by one rule: give {key} one value")


def _in_schema(key: str) -> bool:
    from dlpractice.config import is_schema_field

    if "@" in key or "/" in key or (CONF_DIR / key).is_dir():
        return False
    return is_schema_field(key)


def _hydra_error_line(exc: BaseException) -> str:
    """Hydra's error in one line; an override that does not merge also says why (its cause's
    first line, OmegaConf's, names what is allowed)."""
    first = one_line(exc)
    if first.startswith(("Error merging override", "Could not override")) and exc.__cause__:
        first = f"{first.rstrip('.')}: {one_line(exc.__cause__)}"
        hint = [ln for ln in str(exc).splitlines() if ln.startswith("To append to your config")]
        if hint:  # a new key (a run tag): Hydra's own advice, +key=value
            first += f" ({hint[0][0].lower()}{hint[0][1:]})"
    return first


def _check_group_choices(argv: list[str]) -> None:
    """Reject ``init=foo`` with one line before Hydra prints its multi-line error."""
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, _, value = arg.partition("=")
        key = key.lstrip("+~")
        if "." in key or value.startswith(("choice(", "range(", "glob(")):
            continue
        if key in HYDRA_PLUGIN_GROUPS:
            options = _plugin_options(key)
        elif key.startswith("hydra") or not (CONF_DIR / key).is_dir():
            continue
        else:
            options = sorted(p.stem for p in (CONF_DIR / key).glob("*.yaml"))
        for choice in value.split(","):
            if choice and choice != "null" and choice not in options:
                raise DlpracticeError(
                    f"{key}={choice!r} is not a config option; choose one of {', '.join(options)}"
                )


HYDRA_PLUGIN_GROUPS = ("hydra/launcher", "hydra/sweeper")


def _plugin_options(group: str) -> list[str]:
    """The options of a Hydra plugin group (``hydra/launcher``): what the installed plugins
    register (Hydra's public plugin registry and config store) and ``conf/hydra/<group>/``."""
    from hydra.core.config_store import ConfigStore
    from hydra.core.plugins import Plugins

    Plugins.instance()  # imports the installed plugins, which store their configs
    stored = {name.removesuffix(".yaml") for name in ConfigStore.instance().list(group)}
    return sorted(stored | {p.stem for p in (CONF_DIR / group).glob("*.yaml")})


def _expand_overrides(argv: list[str]) -> list[str]:
    """``--overrides "init=he train.iterations=500"`` (how ``mlflow run -P overrides=…`` passes them,
    as one quoted word) becomes separate Hydra overrides."""
    import shlex

    out: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--overrides" or arg.startswith("--overrides="):
            text = next(args, "") if arg == "--overrides" else arg.partition("=")[2]
            try:
                out += shlex.split(text)
            except ValueError as exc:  # e.g. an unterminated quote
                raise DlpracticeError(f"--overrides {text!r}: {exc}") from None
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> None:
    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        argv = _expand_overrides(sys.argv[1:] if argv is None else argv)
        overrides = _check_args(argv)
        _check_group_choices(overrides)
        _check_keys(overrides)
        _check_selection_not_swept(overrides)
    except DlpracticeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    sigterm_as_interrupt()
    from dlpractice import startup

    startup.import_kept(*startup.MLFLOW, *startup.MATPLOTLIB)
    sys.argv = [sys.argv[0], *argv, *mlflow_project_override()]
    app = hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(task)
    # Hydra prints its own errors over several lines; let them through to us instead (unless the
    # user asked for Hydra's full report) and print one.
    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        app()
    except (HydraException, OmegaConfBaseException) as exc:
        if full_error:
            raise
        print(f"error: {_hydra_error_line(exc)}", file=sys.stderr)
        sys.exit(1)
    except DlpracticeError as exc:  # a launcher refused the sweep before its first job
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (see sigterm_as_interrupt)
        signum = signal.SIGTERM if str(exc) == f"signal {int(signal.SIGTERM)}" else signal.SIGINT
        print(f"error: interrupted by {signal.Signals(signum).name}; an open MLflow run is "
              "recorded as KILLED", file=sys.stderr)
        sys.exit(128 + int(signum))


if __name__ == "__main__":
    main()
