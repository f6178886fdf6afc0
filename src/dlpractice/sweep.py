"""Hydra callback that makes a multirun one tracked sweep, on any launcher.

Owns the sweep file ``<sweep dir>/.sweep.json`` (the sweep's id, its parent MLflow run id and the
keys it sweeps, shared by every process of the sweep), its jobs' names, the parent run's lifetime,
the sweep's choice of its best setting (:mod:`dlpractice.selection`, recorded on the parent run and
the chosen job's run), and the sweep summary: a study's table (:mod:`dlpractice.studies`) or the
plain sweep table and its chart. The parent run is opened by the first job that starts, in whichever
process runs it, so that no process opens the store before a launcher forks. It never trains and
never formats a table itself.
"""

from __future__ import annotations

import atexit
import json
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from dlpractice.paths import locked

if TYPE_CHECKING:
    from dlpractice.config import Config

SWEEP_FILE = ".sweep.json"
SUMMARY_FILE = "summary.json"
PATH_CHART = "regularization_path.png"  # a one-value sweep's errors against that value


@dataclass(frozen=True)
class SweepInfo:
    sweep_id: str | None = None
    parent_run_id: str | None = None
    tracking_uri: str | None = None  # the store the parent run is in
    owner: dict[str, str] | None = None  # the process running the sweep: it owns the parent run
    swept: list[str] | None = None  # the keys its command line sweeps (see named_job)


def read_info(sweep_dir: Path) -> SweepInfo:
    """The sweep's id and parent run id, as its first jobs left them (empty outside a sweep)."""
    try:
        return SweepInfo(**json.loads((sweep_dir / SWEEP_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return SweepInfo()


def _write_info(sweep_dir: Path, info: SweepInfo) -> None:
    (sweep_dir / SWEEP_FILE).write_text(json.dumps(info.__dict__))


def sweep_folder(config: DictConfig) -> Path:
    """The sweep's folder as an absolute path (Hydra's default is relative to where it started:
    the parent run's ``sweep_dir`` tag and the printed folder must work from anywhere)."""
    folder = Path(str(config.hydra.sweep.dir))
    return folder if folder.is_absolute() else Path(str(config.hydra.runtime.cwd)) / folder


def _sweep_lines(config: DictConfig) -> list[str]:
    """A multirun's override lines: its command line's and its sweeper's ``params``."""
    params = config.hydra.sweeper.get("params") or {}
    return [*config.hydra.overrides.task, *(f"{k}={v}" for k, v in params.items())]


def swept_keys(overrides: Sequence[str]) -> list[str]:
    """The keys that override lines sweep (``model.activation=tanh,relu``: ``model.activation``),
    read with Hydra's parser; none for lines it does not parse (Hydra reports those)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except Exception:
        return []
    return [o.key_or_group for o in parsed if o.is_sweep_override()]


def named_job(cfg: Config, job_overrides: Sequence[str], swept: Sequence[str] | None) -> Config:
    """A sweep job's config named after its settings and its own override lines for the swept
    keys that name leaves out (``he-none model.activation=tanh``), so jobs that differ in what
    the sweep varies differ in name. An explicit ``tracking.run_name`` stays."""
    from dlpractice import config

    if cfg.tracking.run_name or not swept:
        return cfg
    shown = config.shown_in_name(cfg)
    extra = [line for line in job_overrides
             if _override_key(line) in swept and _override_key(line) not in shown]
    if not extra:
        return cfg
    name = " ".join([config.run_name(cfg), *extra])
    return replace(cfg, tracking=replace(cfg.tracking, run_name=name))


def _override_key(line: str) -> str:
    """An override line's key: ``+model.hidden=[8,4]`` gives ``model.hidden``."""
    return line.split("=", 1)[0].lstrip("+~").split("@", 1)[0]


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
        self.sweep_dir = sweep_folder(config)
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        # Its jobs' rows carry it: the summary leaves out rows an earlier sweep left in the folder.
        self.sweep_id = uuid.uuid4().hex[:12]
        with locked(self.sweep_dir / f"{SWEEP_FILE}.lock"):
            _write_info(self.sweep_dir, SweepInfo(self.sweep_id, owner=tracking.owner_tags(),
                                                  swept=swept_keys(_sweep_lines(config))))
        atexit.register(self._close, "KILLED")

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if HydraConfig.get().mode == RunMode.MULTIRUN:
            _open_parent_run(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from dlpractice import selection

        assert self.sweep_dir is not None
        rows = collect_rows(self.sweep_dir, self.sweep_id)  # one per job (a study's table may differ)
        if rows:  # every job was settled without running (all finished before): no job opened it
            _open_parent_run(config)
        # the choice, on dev data alone; then the one look at the chosen run's test split
        metric = selection.settings_of(rows).metric
        chosen = selection.select(rows, metric)
        store = None  # the chosen job's run's, when it has one
        if chosen is not None:
            store = _store_of(rows[chosen]) if rows[chosen].get("run_id") else None
            rows[chosen].update(_test_selected(rows[chosen], store), selected="yes")
        files = self._summary(config, rows, chosen) if rows else []
        failed_rows = [r for r in rows if str(r.get("status", "")).startswith("failed")]
        failed = len(failed_rows)
        if failed:
            print(f"{failed} of {len(rows)} jobs failed (see the table above):", file=sys.stderr)
            for r in failed_rows:
                print(f"  job {r.get('job')} ({r.get('setting')}): {r.get('error', '')}",
                      file=sys.stderr)
        tags = {"jobs": str(len(rows)), "failed_jobs": str(failed)}
        test: dict[str, float] = {}
        if chosen is not None:
            row = rows[chosen]
            test = {f"selected_{k}": row[k] for k in selection.TEST_METRICS if k in row}
            tags.update(selected_setting=row.get("setting"), selected_run_id=row.get("run_id"))
            print(_selected_line(row, metric))
            if store is not None:
                _mark_selected(store, row["run_id"])
        sweep_dir = self.sweep_dir
        run_url = self._close("FINISHED", files, tags, test)
        if chosen is not None and store is not None:
            row = rows[chosen]
            _after_selection(store, row)
        if run_url:
            print(f"run: {run_url}")
        print(f"folder: {sweep_dir}")

    def _summary(self, config: DictConfig, rows: list[dict[str, Any]],
                 chosen: int | None) -> list[Path]:
        """The sweep's table and chart (a study's own, or the sweep table with the error path of
        a one-value sweep, else bias/variance bars), printed; returns the files written."""
        from dlpractice import plots, report, selection, studies
        from dlpractice.errors import DlpracticeError

        assert self.sweep_dir is not None
        files: list[Path] = []
        study = studies.study_of(rows)
        if study is not None:
            try:
                with tempfile.TemporaryDirectory(prefix="dlpractice-study-") as tmp:
                    rows, files = studies.write_summary(study, _with_run_files(rows, Path(tmp)),
                                                        self.sweep_dir, self.target_cost)
            except DlpracticeError as exc:  # e.g. a run's data file is gone
                print(f"error: {exc}", file=sys.stderr)
            columns = [c for c in studies.table_columns(study, rows) if c != "comment"]
        else:
            columns = list(report.ROW_COLUMNS)
            files = list(report.write_table(rows, self.sweep_dir, "sweep_summary", columns))
            bayes = float(config.get("diagnosis", {}).get("bayes_error", 0.0))
            path = selection.error_path(rows, chosen, bayes)
            chart = [dict(r, bayes_error=bayes) for r in rows if "train_error" in r]
            if path is not None:
                files.append(plots.regularization_path(path, self.sweep_dir / PATH_CHART))
            elif chart:
                files.append(plots.bias_variance_chart(chart, self.sweep_dir / "bias_variance.png"))
        print(f"\nsweep summary ({self.sweep_dir}):\n" + report.table_markdown(rows, columns))
        return files

    def _close(self, status: str, files: list[Path] | None = None,
               tags: dict[str, str] | None = None,
               metrics: dict[str, float] | None = None) -> str | None:
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
                                  status=status, metrics=metrics)
        self.sweep_dir = None
        return store.run_url(info.parent_run_id)


def _test_selected(row: dict[str, Any], store: Any) -> dict[str, float]:
    """The selected job's test metrics: its row's when its run logged them, else evaluated once
    now from its run folder (for a job settled as finished before: what an earlier sweep that
    selected its run logged, else the files its run uploaded to ``store``); empty, with one line
    on stderr, when that cannot be done."""
    import tempfile

    from dlpractice import report, selection, tracking
    from dlpractice.errors import one_line

    test = {k: row[k] for k in selection.TEST_METRICS if k in row}
    if test:
        return test
    try:
        if row.get("status") == "finished":  # trained by this sweep: the folder is its own
            return selection.test_of(row, Path(row["_folder"]))
        earlier = tracking.earlier_test_of_selected(
            store, row["config"]["tracking"]["experiment"], row["run_id"], selection.TEST_METRICS)
        if earlier:  # the same parameters on the same test split: evaluated once, then
            return earlier
        with tempfile.TemporaryDirectory(prefix="dlpractice-selected-") as tmp:
            store.download(row["run_id"], (report.PARAMETERS, report.NORMALIZER), Path(tmp))
            return selection.test_of(row, Path(tmp))
    except Exception as exc:  # the choice stands without its test metrics; the sweep goes on
        print(f"error: the selected job {row.get('job')} ({row.get('setting')}) could not be "
              f"tested: {one_line(exc)}", file=sys.stderr)
        return {}


def _with_run_files(rows: list[dict[str, Any]], folder: Path) -> list[dict[str, Any]]:
    """The rows of a study's table, each job settled as finished before pointing at a copy of its
    run's files (parameters, history) in ``folder``: its own folder holds only its row."""
    from dlpractice import report
    from dlpractice.errors import one_line
    from dlpractice.sweep_jobs import SKIPPED

    out = []
    for row in rows:
        if (row.get("status") == SKIPPED and row.get("run_id")
                and not (Path(row["_folder"]) / report.PARAMETERS).is_file()):
            copy = folder / str(row.get("job", len(out)))
            copy.mkdir()
            try:
                _store_of(row).download(row["run_id"], report.RUN_FILES, copy)
                row = dict(row, _folder=str(copy))
            except Exception as exc:  # its line in the table says what is missing
                print(f"error: job {row.get('job')} ({row.get('setting')}): could not fetch its "
                      f"run's files: {one_line(exc)}", file=sys.stderr)
        out.append(row)
    return out


def _store_of(row: dict[str, Any]) -> Any:
    """The tracking store of a job's run (its config's ``tracking.uri``)."""
    from dlpractice import tracking

    return tracking.Store(tracking.resolve_uri(row["config"]["tracking"]["uri"]))


def _selected_line(row: dict[str, Any], metric: str) -> str:
    from dlpractice import selection

    line = (f"selected: {row.get('setting')} (job {row.get('job')}, lowest {metric} "
            f"{selection.ranked_value(row, metric):.4g})")
    if "test_accuracy" in row:
        line += f": test accuracy {row['test_accuracy']:.4f}"
    return line


def _mark_selected(store: Any, run_id: str) -> None:
    """Tag the selected job's run ``selected=true`` (a failure is one line: the sweep closes)."""
    from dlpractice import tracking
    from dlpractice.errors import one_line

    try:
        tracking.mark_selected(store, run_id)
    except Exception as exc:  # the parent run is still closed, with the choice
        print(f"error: could not tag the selected run {run_id}: {one_line(exc)}", file=sys.stderr)


def _after_selection(store: Any, row: dict[str, Any]) -> None:
    """What follows a sweep's choice, once its parent run is closed: unless its config says
    ``tracking.register=false``, the selected run's model becomes the registered model named
    after its experiment, alias ``champion`` (a store that refuses is named in one line; the
    sweep's results stand)."""
    from dlpractice import tracking
    from dlpractice.errors import DlpracticeError

    settings = row["config"]["tracking"]
    if settings.get("register") is False:
        return
    name = settings["experiment"]
    try:
        version = tracking.register_model(store, row["run_id"], name)
    except DlpracticeError as exc:
        print(f"warning: the selected run's model was not registered: {exc}", file=sys.stderr)
    else:
        print(f"registered: {tracking.model_uri(name)} (version {version})")


def _open_parent_run(config: DictConfig) -> None:
    """Open the sweep's parent run unless a job did (or tracking is off)."""
    from dlpractice import tracking
    from dlpractice.config import TrackingConfig

    sweep_dir = sweep_folder(config)
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
                tags={**dict(settings.get("tags") or {}), "sweep_id": info.sweep_id,
                      "sweep_dir": str(sweep_dir)}, owner=info.owner)
            _write_info(sweep_dir, replace(info, parent_run_id=run_id, tracking_uri=store.uri))


def collect_rows(sweep_dir: Path, sweep_id: str | None = None) -> list[dict[str, Any]]:
    """Every job's summary row in job order (only sweep ``sweep_id``'s, when given); each with
    ``_folder``, the job's output folder."""
    rows = []
    for path in sweep_dir.glob(f"*/{SUMMARY_FILE}"):
        row = json.loads(path.read_text(encoding="utf-8"))
        if sweep_id is None or row.get("sweep_id") == sweep_id:
            rows.append(dict(row, _folder=str(path.parent)))
    return sorted(rows, key=lambda r: (r.get("job", 1 << 30), r["_folder"]))
