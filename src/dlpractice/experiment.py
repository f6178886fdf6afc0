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
    digest = config.config_hash(cfg)
    pretrained = _PRETRAINED.pop(digest, None)
    # a stacked job was looked up when its sweep started (pretrain_stacked, finished_jobs)
    store = tracking.Store(tracking.resolve_uri(cfg.tracking.uri)) if cfg.tracking.enabled else None
    if store is not None and not cfg.tracking.rerun and pretrained is None:
        done = store.find_finished_run(cfg.tracking.experiment, digest)
        if done is not None:
            row.update(store.run_summary(done), status="skipped (already finished)")
            return row
    tracker = (
        tracking.RunTracker(cfg, store, parent_run_id=os.environ.get(PARENT_RUN_ENV),
                            tags=_sweep_tags())
        if store is not None else None
    )
    progress = report.progress_bar(cfg.train.iterations, enabled=not multirun)
    with tracker if tracker is not None else _null():
        def callback(i: int, cost: float, dev_cost: float | None) -> None:
            if tracker is not None:
                tracker.callback(i, cost, dev_cost)
            progress(i, cost)

        outcome = pipeline.run_all(cfg, callback=callback, data=data,
                                   result=pretrained)
        progress.close()
        artifacts = report.write_run_outputs(outcome, output_dir)
        if tracker is not None:
            tracker.log_history(outcome.result)
            tracker.log_outcome(outcome)
            tracker.upload(artifacts)
            row["run_id"] = tracker.run_id
        pipeline.require_gradcheck(cfg, outcome.gradcheck)
    row.update(report.outcome_row(outcome), status="finished")
    return row


# Stacked sweeps (hydra/launcher=vectorized): results trained ahead, by config hash; run_job takes
# a job's result from here instead of training it again.
_PRETRAINED: dict[str, Any] = {}


def use_pretrained(results: dict[str, Any]) -> None:
    """Hand ``run_job`` already trained results (``{config_hash: TrainResult}``)."""
    _PRETRAINED.update(results)


def pretrain_stacked(raw_cfgs: list[Any], executor: Any = None, parts: int = 1, *,
                     train_here: bool = True, skip_finished: bool = True,
                     ) -> list[tuple[str, Any] | None]:
    """Train a sweep's jobs that share a network shape and data in stacked passes
    (:func:`dlpractice.nn.stacked.train_stacked`); returns per job ``(config_hash, TrainResult)``,
    or None for a job ``run_job`` must handle on its own: invalid, already finished (skipped),
    not stackable (mini-batch, early stopping, input dropout or jitter), alone in its group, or
    diverged (its own run then reports where). With an ``executor`` (``concurrent.futures``), each
    group is split into ``parts`` sub-stacks: the first trained here, the others there — their
    jobs' entries are then ``(config_hash, wait)``, ``wait()`` returning the TrainResult (or None)
    once the worker has it, so that this process can go on with its own jobs meanwhile.
    ``train_here=False``: every share goes to the executor (this process has other work
    meanwhile). ``skip_finished=False``: no look-up in the tracking store (it may not be open yet;
    ``finished_jobs`` does it later)."""
    import functools
    import hashlib

    from dlpractice import config, pipeline
    from dlpractice.nn import TrainResult
    from dlpractice.nn.stacked import stack_key, train_stacked, unstackable_reason

    out: list[tuple[str, Any] | None] = [None] * len(raw_cfgs)
    groups: dict[tuple, list[tuple[int, str, Any, Any]]] = {}
    none_yet: dict[tuple[str, str], bool] = {}
    stores: dict[str, Any] = {}
    for j, raw in enumerate(raw_cfgs):
        try:
            cfg = config.load(raw)
            digest = config.config_hash(cfg)
            if skip_finished and _finished(cfg, digest, none_yet, stores):
                continue
            data = pipeline.prepare_data(cfg)
            splits, _ = pipeline.normalize(cfg, data.splits)
            tc = pipeline.train_config(cfg, data.n_features)
        except Exception:  # the job fails (or is skipped) on its own, through run_job
            continue
        if unstackable_reason(tc, splits.X_train.shape[1]) is not None:
            continue
        sha = hashlib.sha256()
        for a in (splits.X_train, splits.Y_train, splits.X_dev, splits.Y_dev):
            sha.update(repr(a.shape).encode())
            sha.update(a.tobytes())
        groups.setdefault((stack_key(tc), sha.hexdigest()), []).append((j, digest, tc, splits))
    for members in groups.values():
        if len(members) < 2:
            continue
        s = members[0][3]
        tcs = [m[2] for m in members]
        n = max(1, min(parts if executor is not None else 1, len(tcs) // 2))
        bounds = [len(tcs) * i // n for i in range(n + 1)]
        here = train_here or executor is None
        # the workers' shares first (they start at once), then this process's share
        for a, b in zip(bounds[1:-1] if here else bounds[:-1], bounds[2:] if here else bounds[1:]):
            future = executor.submit(train_stacked, s.X_train, s.Y_train, tcs[a:b],
                                     X_dev=s.X_dev, Y_dev=s.Y_dev)
            for k, (j, digest, _, _) in enumerate(members[a:b]):
                out[j] = (digest, functools.partial(_stacked_share, future, k))
        if here:
            results = train_stacked(s.X_train, s.Y_train, tcs[: bounds[1]], X_dev=s.X_dev,
                                    Y_dev=s.Y_dev)
            for (j, digest, _, _), result in zip(members, results):
                if isinstance(result, TrainResult):
                    out[j] = (digest, result)
    return out


def _finished(cfg: Any, digest: str, none_yet: dict[tuple[str, str], bool] | None = None,
              stores: dict[str, Any] | None = None) -> bool:
    """Is this configuration FINISHED in its tracking store (and not to be run again)?
    ``none_yet``: a sweep's memo of the experiments that have no FINISHED run at all — one query
    each instead of one per job (a first sweep); ``stores``: its tracking stores by URI."""
    from dlpractice import tracking

    if not cfg.tracking.enabled or cfg.tracking.rerun:
        return False
    uri = tracking.resolve_uri(cfg.tracking.uri)
    stores = {} if stores is None else stores
    store = stores.setdefault(uri, tracking.Store(uri))
    if none_yet is not None:
        key = (uri, cfg.tracking.experiment)
        if key not in none_yet:
            none_yet[key] = not store.has_finished_runs(cfg.tracking.experiment)
        if none_yet[key]:
            return False
    return bool(store.find_finished_run(cfg.tracking.experiment, digest))


def finished_jobs(raw_cfgs: list[Any]) -> list[bool]:
    """Per job: will ``run_job`` skip it as already FINISHED? (False when it cannot tell.)"""
    from dlpractice import config

    out = []
    none_yet: dict[tuple[str, str], bool] = {}
    stores: dict[str, Any] = {}
    for raw in raw_cfgs:
        try:
            cfg = config.load(raw)
            out.append(_finished(cfg, config.config_hash(cfg), none_yet, stores))
        except Exception:
            out.append(False)
    return out


def _stacked_share(future: Any, k: int) -> Any:
    """Configuration ``k`` of a share trained by a worker (waits for it); None when that worker
    failed or the configuration diverged: the job then trains on its own, in ``run_job``."""
    from dlpractice.nn import TrainResult

    try:
        result = future.result()[k]
    except Exception:
        return None
    return result if isinstance(result, TrainResult) else None


def before_fork() -> None:
    """Import what a job needs (plots, gradient check, MLflow) once, before worker processes
    are forked, so that they inherit it instead of importing it again each."""
    from dlpractice import gradcheck, pipeline, plots, report, tracking  # noqa: F401

    plots.warm_up()


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
            _discard_hydra_files(output_dir, hc)
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(1)
        row = {"setting": " ".join(hc.overrides.task), "status": "failed", "error": str(exc)}
    except Exception as exc:  # a sweep reports a crashed job and goes on
        if not multirun:
            raise
        row = {"setting": " ".join(hc.overrides.task), "status": "failed",
               "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    row["overrides"] = list(hc.overrides.task)
    if multirun:
        row["sweep_id"] = os.environ.get(SWEEP_ID_ENV)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / SUMMARY_FILE).write_text(json.dumps(row, indent=2, default=str))
    if not multirun:
        from dlpractice import report

        print(report.format_row(row))
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
    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = get_args_parser()

    def error(message: str) -> None:
        raise DlpracticeError(f"{' '.join(message.split())} (see --help)")

    parser.error = error  # type: ignore[method-assign]
    args = parser.parse_args(argv)
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


def _in_schema(key: str) -> bool:
    from dlpractice.config import check_key
    from dlpractice.errors import ConfigError

    if "@" in key or "/" in key or (CONF_DIR / key).is_dir():
        return False
    try:
        check_key(key)
    except ConfigError:
        return False
    return True


def _one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    first = lines[0] if lines else type(exc).__name__
    cause = exc.__cause__
    if first.startswith("Error merging override") and cause is not None:
        # Hydra's line names the override, its cause (OmegaConf's) what is allowed
        why = [ln.strip() for ln in str(cause).splitlines() if ln.strip()]
        if why:
            first = f"{first}: {why[0]}"
    return first


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
    from dlpractice._exit import skip_gc_at_exit

    skip_gc_at_exit()
    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        argv = _expand_overrides(sys.argv[1:] if argv is None else argv)
        overrides = _check_args(argv)
        _check_group_choices(overrides)
        _check_keys(overrides)
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
    # Hydra prints its own errors over several lines; let them through to us instead (unless the
    # user asked for Hydra's full report) and print one.
    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        app()
    except (HydraException, OmegaConfBaseException) as exc:
        if full_error:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (see _sigterm_as_interrupt)
        signum = signal.SIGTERM if str(exc) == f"signal {int(signal.SIGTERM)}" else signal.SIGINT
        print(f"error: interrupted by {signal.Signals(signum).name}; an open MLflow run is "
              "recorded as KILLED", file=sys.stderr)
        sys.exit(128 + int(signum))


if __name__ == "__main__":
    from dlpractice._exit import exit_fast

    exit_fast(main)
