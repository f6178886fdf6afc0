"""Where runs are stored: the tracking-URI rule and :class:`Store`, one object per tracking URI.

Owns checking, creating and upgrading the store, the MLflow client and experiment and run look-ups;
the object holds what a process learns about its store (prepared, experiment ids, open runs).
Must not log to a run (:mod:`.runs`, :mod:`.sweeps` do) nor write any file but the store's own
(and copies of a run's artifacts into a folder its caller gives).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlpractice.errors import DlpracticeError
from dlpractice.paths import locked, project_root
from dlpractice.tracking.metadata import tag_text

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = ["ARTIFACTS_DIR", "DB_NAME", "EXPERIMENT_KIND", "EXPERIMENT_KIND_TAG",
           "OutdatedSchemaError", "Store", "resolve_uri"]

_log = logging.getLogger(__package__)

# MLflow 3's UI opens an experiment on its runs table for this kind (values in mlflow's UI:
# genai_development, custom_model_development, ...); without it, it may infer a GenAI experiment.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
DB_NAME = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
HEALTH_TIMEOUT_S = 3.0
FINISHED_PAGE = 1000  # runs per search page when a sweep looks up its finished jobs
RUN_IDS_PER_SEARCH = 500  # run ids per search when a sweep looks up the runs its folders name
RUN_ID = re.compile(r"[0-9a-f]{32}")  # an MLflow run id (anything else is not put in a filter)
UI_HOST, UI_PORT = "127.0.0.1", 5000  # where `make ui` serves the embedded store


class OutdatedSchemaError(DlpracticeError):
    """The store's schema is older than this MLflow's (SQLite is upgraded by ``prepare``)."""


def _store_root() -> Path:
    # DVC points DVC_ROOT at the workspace even for queued/--temp experiments run in a copy.
    dvc_root = os.environ.get("DVC_ROOT")
    return Path(dvc_root).resolve() if dvc_root else project_root()


def resolve_uri(configured: str | None) -> str:
    """``configured`` (``tracking.uri``) > ``MLFLOW_TRACKING_URI`` > ``sqlite:///<root>/mlflow.db``
    (root: ``DVC_ROOT`` or the project root). A relative SQLite path is made absolute against that
    same root, so every process of a sweep or a DVC experiment uses the same file."""
    uri = (configured or os.environ.get("MLFLOW_TRACKING_URI") or "").strip()
    if not uri:
        return f"sqlite:///{_store_root() / DB_NAME}"
    path = sqlite_path(uri)
    if path is not None and not path.is_absolute():
        return f"sqlite:///{(_store_root() / path).resolve()}"
    return uri


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///path`` URI (None for other schemes or in-memory)."""
    if not uri.startswith("sqlite:///"):
        return None
    rest = uri[len("sqlite:///"):].split("?", 1)[0]
    if not rest or rest == ":memory:":
        return None
    return Path(rest)


def scheme(uri: str) -> str:
    """``sqlite``, ``http``, ``postgresql`` (driver suffix dropped), or "" for a plain path."""
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", uri)
    if m is None or len(m.group(1)) == 1:  # no scheme, or a Windows drive letter
        return ""
    return m.group(1).lower().split("+", 1)[0]


class Store:
    """One tracking store, for everything a process tracks there: pass it to whoever tracks.

    ``prepare()`` runs once per object; experiment ids are remembered per object (an experiment
    renamed meanwhile keeps its id here); ``open_runs`` lists the run ids of the
    :class:`~dlpractice.tracking.RunTracker` objects open on it, innermost last.
    """

    def __init__(self, uri: str):
        self.uri = uri
        self.open_runs: list[str] = []
        self._checked = False
        self._prepared = False
        self._client: MlflowClient | None = None
        self._experiment_ids: dict[str, str] = {}
        # (experiment, config hash) -> its FINISHED run or None, as finished_runs found it
        self._finished: dict[tuple[str, str], str | None] = {}

    def __repr__(self) -> str:
        return f"Store({self.uri!r})"

    # -- readiness ---------------------------------------------------------------------------

    def check(self) -> None:
        """What needs no MLflow (fast, e.g. before a sweep's training starts): a usable scheme, a
        tracking server that answers, a SQLite folder that can be created. One-line errors."""
        if self._checked:
            return
        kind = scheme(self.uri)
        if kind in ("", "file"):
            raise DlpracticeError(
                f"tracking store {self.uri!r} is a plain folder, which MLflow 3 refuses as a "
                "tracking store; use a database instead, e.g. "
                "tracking.uri=sqlite:///<absolute path>/mlflow.db"
            )
        if kind in ("http", "https"):
            self._check_server()
        path = sqlite_path(self.uri) if kind == "sqlite" else None
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DlpracticeError(
                    f"cannot create the folder of the MLflow store {self.uri}: {exc}") from None
        self._checked = True

    def _check_server(self) -> None:
        import urllib.error
        import urllib.request

        url = self.uri.rstrip("/") + "/health"
        hint = "start it with `make server` or set tracking.uri"
        try:
            with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_S) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise DlpracticeError(
                f"MLflow tracking server {self.uri} is unreachable: {tag_text(reason)}; {hint}"
            ) from None
        if status >= 500:  # a 4xx still answers (e.g. a proxy without /health)
            raise DlpracticeError(f"MLflow tracking server {self.uri} is unreachable: /health "
                                  f"answered HTTP {status}; {hint}")

    def prepare(self) -> None:
        """Ready for runs: :meth:`check`, then create or upgrade a SQLite schema under a file lock
        next to the database (and switch it to WAL), or open a database server's store once.
        Raises :class:`DlpracticeError` with one line."""
        if self._prepared:
            return
        self.check()
        kind = scheme(self.uri)
        if kind == "sqlite":
            self._prepare_sqlite()
        elif kind not in ("http", "https"):  # postgresql, mysql, ...: let MLflow open it once
            self._open()
        self._prepared = True

    def _prepare_sqlite(self) -> None:
        path = sqlite_path(self.uri)
        if path is None:  # in-memory: nothing to share or lock
            self._open()
            return
        with locked(Path(f"{path}-init.lock")):
            try:
                self._open()
            except OutdatedSchemaError:
                self._upgrade_sqlite(path)
                self._open()
            _enable_wal(path)
        atexit.register(checkpoint, path)  # so that mlflow.db alone (a copy of it) holds every run

    def _open(self) -> None:
        """Open the store through MLflow (which creates a missing schema) and run one query."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.search_experiments(max_results=1)
        except MlflowException as exc:
            if "out-of-date database schema" in str(exc):
                raise OutdatedSchemaError(
                    f"the MLflow store {self.uri} has an out-of-date schema: {tag_text(exc)}"
                ) from None
            raise DlpracticeError(
                f"cannot open the MLflow store {self.uri}: {tag_text(exc)}") from None
        except Exception as exc:
            raise DlpracticeError(f"cannot open the MLflow store {self.uri}: "
                                  f"{type(exc).__name__}: {tag_text(exc)}") from None

    def _upgrade_sqlite(self, path: Path) -> None:
        """Back the database up, then migrate it with MLflow's own ``mlflow db upgrade``."""
        backup = path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(path, backup)
        _log.warning("upgrading the MLflow schema of %s (backup: %s)", path, backup)
        proc = subprocess.run([sys.executable, "-m", "mlflow", "db", "upgrade", self.uri],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()
            raise DlpracticeError(
                f"cannot upgrade the MLflow store {self.uri} (backup at {backup}): "
                f"{tail[-1] if tail else 'mlflow db upgrade failed'}"
            )

    @property
    def client(self) -> MlflowClient:
        """The MLflow client of this store (created once; it does not prepare the store)."""
        if self._client is None:
            # MLflow prints a "View run ... at" line per run ended through a server, and a
            # progress bar per file a run's model packs or a sweep downloads: noise.
            os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
            os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    # -- experiments -------------------------------------------------------------------------

    def _artifact_location(self, name: str) -> str | None:
        """``<db folder>/mlartifacts/<name>`` for a SQLite store; the server decides otherwise."""
        path = sqlite_path(self.uri)
        if path is None:
            return None
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "experiment"
        return (path.parent / ARTIFACTS_DIR / slug).resolve().as_uri()

    def experiment_id(self, name: str) -> str:
        """The id of experiment ``name`` (created if missing), tagged ``mlflow.experimentKind =
        custom_model_development`` so that MLflow 3's UI opens it on the runs table."""
        if name in self._experiment_ids:
            return self._experiment_ids[name]
        from mlflow.exceptions import MlflowException

        self.prepare()
        client = self.client
        exp = client.get_experiment_by_name(name)
        if exp is None:
            try:
                exp_id = client.create_experiment(
                    name, artifact_location=self._artifact_location(name),
                    tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
                )
            except MlflowException:  # created meanwhile by a parallel job
                exp = client.get_experiment_by_name(name)
                if exp is None:
                    raise
            else:
                self._experiment_ids[name] = exp_id
                return exp_id
        if exp.lifecycle_stage == "deleted":
            raise DlpracticeError(
                f"MLflow experiment {name!r} is deleted in {self.uri}; restore it "
                f"(`mlflow experiments restore --experiment-id {exp.experiment_id}`) "
                "or choose another tracking.experiment"
            )
        if EXPERIMENT_KIND_TAG not in exp.tags:
            client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        self._experiment_ids[name] = exp.experiment_id
        return exp.experiment_id

    def _existing_experiment_id(self, name: str) -> str | None:
        """The id of experiment ``name`` (None when it does not exist or is deleted)."""
        if name in self._experiment_ids:  # known to exist (this object made sure)
            return self._experiment_ids[name]
        exp = self.client.get_experiment_by_name(name)
        if exp is None or exp.lifecycle_stage == "deleted":
            return None
        self._experiment_ids[name] = exp.experiment_id
        return exp.experiment_id

    def ui_address(self, host: str = UI_HOST, port: int = UI_PORT) -> str:
        """Where the MLflow UI shows this store: a tracking server's own address (without any
        user or password in it), else ``http://host:port`` (``make ui`` for a database)."""
        if scheme(self.uri) not in ("http", "https"):
            return f"http://{host}:{port}"
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(self.uri)
        netloc = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))

    def runs_url(self, experiment: str, host: str = UI_HOST, port: int = UI_PORT) -> str | None:
        """The MLflow UI's runs table of ``experiment``: ``<ui address>/#/experiments/<id>/runs``
        (:meth:`ui_address`); None when the store has no such experiment (nothing is created,
        not even a SQLite file)."""
        path = sqlite_path(self.uri)
        if path is not None and not path.exists():
            return None
        self.prepare()
        exp_id = self._existing_experiment_id(experiment)
        if exp_id is None:
            return None
        return f"{self.ui_address(host, port)}/#/experiments/{exp_id}/runs"

    def run_url(self, run_id: str, experiment_id: str | None = None, host: str = UI_HOST,
                port: int = UI_PORT) -> str:
        """One run in the MLflow UI: ``<ui address>/#/experiments/<id>/runs/<run id>``
        (:meth:`ui_address`; the run's experiment is looked up unless given)."""
        if experiment_id is None:
            experiment_id = self.client.get_run(run_id).info.experiment_id
        return f"{self.ui_address(host, port)}/#/experiments/{experiment_id}/runs/{run_id}"

    # -- runs --------------------------------------------------------------------------------

    def has_finished_runs(self, experiment: str) -> bool:
        """Does ``experiment`` hold any FINISHED run (False when it does not exist)?"""
        self.prepare()
        exp_id = self._existing_experiment_id(experiment)
        return exp_id is not None and bool(self.client.search_runs(
            [exp_id], filter_string="attributes.status = 'FINISHED'", max_results=1))

    def find_finished_run(self, experiment: str, config_hash: str) -> str | None:
        """The id of the latest FINISHED run of ``experiment`` tagged ``config_hash``, else None."""
        if not re.fullmatch(r"[0-9A-Za-z_-]+", config_hash):
            raise ValueError(f"config_hash {config_hash!r} must be a hex digest")
        if (experiment, config_hash) in self._finished:  # the sweep's search answered (once:
            return self._finished.pop((experiment, config_hash))  # a later twin job asks again)
        self.prepare()
        exp_id = self._existing_experiment_id(experiment)
        if exp_id is None:
            return None
        runs = self.client.search_runs(
            [exp_id],
            filter_string=f"tags.config_hash = '{config_hash}' and attributes.status = 'FINISHED'",
            max_results=1,
            order_by=["attributes.start_time DESC"],
        )
        return runs[0].info.run_id if runs else None

    def finished_runs(self, experiment: str, config_hashes: Iterable[str],
                      recorded: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
        """The latest FINISHED run of ``experiment`` per hash in ``config_hashes`` that has one,
        as :meth:`run_summary` rows, found in one search (paged) rather than a query per hash;
        :meth:`find_finished_run` then answers once for each of these hashes without a query.
        ``recorded``: hash -> the run a job's folder names for it; where that run is FINISHED with
        that hash it is the answer, and the whole experiment is searched only for the others."""
        wanted = set(config_hashes)
        self.prepare()
        exp_id = self._existing_experiment_id(experiment) if wanted else None
        rows: dict[str, dict[str, Any]] = {}
        named = {key: run_id for key, run_id in (recorded or {}).items()
                 if key in wanted and RUN_ID.fullmatch(str(run_id))}
        ids = sorted(set(named.values()))
        for start in range(0, len(ids) if exp_id is not None else 0, RUN_IDS_PER_SEARCH):
            chunk = ids[start:start + RUN_IDS_PER_SEARCH]
            listed = ", ".join(f"'{run_id}'" for run_id in chunk)
            query = f"attributes.status = 'FINISHED' AND attributes.run_id IN ({listed})"
            for run in self.client.search_runs([exp_id], query, max_results=len(chunk)):
                key = run.data.tags.get("config_hash")
                if key is not None and named.get(key) == run.info.run_id:
                    rows[key] = _summary_row(run)
        token = None
        while exp_id is not None and len(rows) < len(wanted):
            page = self.client.search_runs(
                [exp_id], filter_string="attributes.status = 'FINISHED'",
                max_results=FINISHED_PAGE, order_by=["attributes.start_time DESC"],
                page_token=token)
            for run in page:
                key = run.data.tags.get("config_hash")
                if key in wanted and key not in rows:  # newest first
                    rows[key] = _summary_row(run)
            token = page.token
            if not token or len(rows) == len(wanted):
                break
        self._finished.update({(experiment, key): rows[key]["run_id"] if key in rows else None
                               for key in wanted})
        return rows

    def download(self, run_id: str, names: Iterable[str], folder: Path) -> list[Path]:
        """Copy the artifacts ``names`` (top-level files) of run ``run_id`` into ``folder``, which
        the caller owns; those the run does not have are left out. Returns the copies."""
        listed = {a.path for a in self.client.list_artifacts(run_id)}
        return [Path(self.client.download_artifacts(run_id, name, str(folder)))
                for name in names if name in listed]

    def run_summary(self, run_id: str) -> dict[str, Any]:
        """A logged run as a flat row: ``run_id``, ``setting`` (run name), ``status``, the latest
        value of every metric, and the ``diagnosis``/``recommendation``/``config_hash`` tags
        (and ``failure_reason``)."""
        self.prepare()
        return _summary_row(self.client.get_run(run_id))


class Stores:
    """The stores one process's jobs log to, by URI: a sweep's jobs share one prepared
    :class:`Store` each instead of preparing it once per job."""

    def __init__(self) -> None:
        self._by_uri: dict[str, Store] = {}

    def get(self, configured: str | None) -> Store:
        """The store of a config's ``tracking.uri`` (see :func:`resolve_uri`)."""
        uri = resolve_uri(configured)
        if uri not in self._by_uri:
            self._by_uri[uri] = Store(uri)
        return self._by_uri[uri]


def _summary_row(run: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"run_id": run.info.run_id, "setting": run.info.run_name,
                           "status": run.info.status}
    row.update(run.data.metrics)
    for key in ("diagnosis", "recommendation", "config_hash", "failure_reason"):
        if key in run.data.tags:
            row[key] = run.data.tags[key]
    return row


def checkpoint(path: Path) -> None:
    """Copy what the SQLite database ``path`` holds in its write-ahead log into the file itself,
    without waiting for other processes (what they are writing stays in the log, safe, until one
    of them ends); a store that cannot be opened is left as it is."""
    import sqlite3

    if not path.is_file():
        return
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=0)) as con:
            con.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.Error as exc:
        _log.info("could not checkpoint %s: %s", path, exc)


def _enable_wal(path: Path) -> None:
    """WAL journal: the UI and other jobs can read while a job writes (persistent in the file)."""
    import sqlite3

    try:
        with sqlite3.connect(path, timeout=30) as con:
            con.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:  # e.g. a network filesystem without shared memory: keep rollback
        _log.info("could not switch %s to WAL: %s", path, exc)
