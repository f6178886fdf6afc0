"""MLflow tracking: where runs are stored, one MLflow run per configuration, sweep summaries.
The only module that imports mlflow (lazily: ``import dlpractice.tracking`` stays cheap).

Store. ``tracking.uri`` if set, else ``MLFLOW_TRACKING_URI``, else ``sqlite:///<root>/mlflow.db``
where root is ``DVC_ROOT`` (DVC points it at the *workspace* even for queued/--temp experiments that
run in a temporary copy, so their runs land in the workspace's store) or the project root. Artifacts
of a SQLite store go to ``mlartifacts/`` next to the database (never into a temporary copy).
:func:`prepare_store` creates/upgrades the database once, under a file lock, before parallel jobs
start, and fails fast with one line when a tracking server does not answer.

Runs. :class:`RunTracker` opens a run through ``MlflowClient`` with an explicit run id (no fluent
"active run": safe in joblib workers and for nested runs), logs the flattened config as params,
histories and metrics in batched calls, and always closes the run: FINISHED, KILLED (Ctrl-C, or
SIGTERM turned into KeyboardInterrupt by the entry points) or FAILED with a ``failure_reason`` tag.
Names of params, metrics, tags and artifacts are promises to users' scripts.
"""

from __future__ import annotations

import atexit
import contextlib
import getpass
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from dlpractice.errors import DlpracticeError

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from dlpractice.config import Config
    from dlpractice.nn import TrainResult
    from dlpractice.pipeline import Outcome

__all__ = [
    "EXPERIMENT_KIND",
    "EXPERIMENT_KIND_TAG",
    "RunTracker",
    "config_hash",
    "find_finished_run",
    "finish_sweep_run",
    "get_experiment_id",
    "prepare_store",
    "project_root",
    "resolve_uri",
    "run_summary",
    "runs_url",
    "start_sweep_run",
]

_log = logging.getLogger(__name__)

# MLflow 3's UI opens an experiment on its runs table for this kind (values in mlflow's UI:
# genai_development, custom_model_development, ...); without it, it may infer a GenAI experiment.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
PARENT_RUN_TAG = "mlflow.parentRunId"  # mlflow.utils.mlflow_tags.MLFLOW_PARENT_RUN_ID
DB_NAME = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
HEALTH_TIMEOUT_S = 3.0
# MLflow's per-request limits (mlflow.utils.validation): 1000 metrics, 100 params, 100 tags.
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 5000  # the portable limit (8000 in recent MLflow)

_SECRET_WORDS = frozenset({
    "password", "passwords", "passwd", "pwd", "token", "tokens", "secret", "secrets", "key",
    "keys", "apikey", "credential", "credentials",
})


# -- store -----------------------------------------------------------------------------------------


def project_root() -> Path:
    """The first folder, from the cwd up, holding both ``dvc.yaml`` and ``conf/``; else the repository
    folder of this source file."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file() and (folder / "conf").is_dir():
            return folder
    return Path(__file__).resolve().parents[2]


def _store_root() -> Path:
    dvc_root = os.environ.get("DVC_ROOT")
    return Path(dvc_root).resolve() if dvc_root else project_root()


def resolve_uri(configured: str | None) -> str:
    """``configured`` (``tracking.uri``) > ``MLFLOW_TRACKING_URI`` > ``sqlite:///<root>/mlflow.db``
    (root: ``DVC_ROOT`` or :func:`project_root`). A relative SQLite path is made absolute against
    that same root, so every process of a sweep or a DVC experiment uses the same file."""
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI") or ""
    uri = uri.strip()
    if not uri:
        return f"sqlite:///{_store_root() / DB_NAME}"
    path = _sqlite_path(uri)
    if path is not None and not path.is_absolute():
        return f"sqlite:///{(_store_root() / path).resolve()}"
    return uri


def _sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///path`` URI (None for other schemes or in-memory)."""
    if not uri.startswith("sqlite:///"):
        return None
    rest = uri[len("sqlite:///"):].split("?", 1)[0]
    if not rest or rest == ":memory:":
        return None
    return Path(rest)


def _scheme(uri: str) -> str:
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", uri)
    if m is None or len(m.group(1)) == 1:  # no scheme, or a Windows drive letter
        return ""
    return m.group(1).lower().split("+", 1)[0]


_prepared: set[str] = set()


def prepare_store(uri: str) -> None:
    """Make the store ready before any training or parallel job: create or upgrade a SQLite
    database once (under a file lock next to it), or check that a tracking server answers.
    Raises :class:`DlpracticeError` with one line. Cheap after the first call in a process."""
    if uri in _prepared:
        return
    check_store(uri)
    _import_mlflow()
    scheme = _scheme(uri)
    if scheme == "sqlite":
        _prepare_sqlite(uri)
    elif scheme not in ("http", "https"):  # postgresql, mysql, ...: let MLflow open it once
        _open_store(uri)
    _prepared.add(uri)


def check_store(uri: str) -> None:
    """The checks of :func:`prepare_store` that need no MLflow (fast, e.g. before a sweep's
    training starts): a usable scheme, a tracking server that answers, a SQLite folder that can be
    created. Raises :class:`DlpracticeError` with one line."""
    if uri in _checked:
        return
    scheme = _scheme(uri)
    if scheme in ("", "file"):
        raise DlpracticeError(
            f"tracking store {uri!r} is a plain folder, which MLflow 3 refuses as a tracking store;"
            " use a database instead, e.g. tracking.uri=sqlite:///<absolute path>/mlflow.db"
        )
    if scheme in ("http", "https"):
        _check_server(uri)
    path = _sqlite_path(uri) if scheme == "sqlite" else None
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DlpracticeError(
                f"cannot create the folder of the MLflow store {uri}: {exc}") from None
    _checked.add(uri)


_checked: set[str] = set()  # URIs check_store passed in this process


def _check_server(uri: str) -> None:
    import urllib.error
    import urllib.request

    url = uri.rstrip("/") + "/health"
    hint = "start it with `make server` or set tracking.uri"
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_S) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DlpracticeError(
            f"MLflow tracking server {uri} is unreachable: {_one_line(reason)}; {hint}"
        ) from None
    if status >= 500:
        raise DlpracticeError(
            f"MLflow tracking server {uri} is unreachable: /health answered HTTP {status}; {hint}"
        )


def _prepare_sqlite(uri: str) -> None:
    path = _sqlite_path(uri)
    if path is None:  # in-memory: nothing to share or lock
        _open_store(uri)
        return
    with _file_lock(Path(f"{path}-init.lock")):
        try:
            _open_store(uri)
        except _OutdatedSchema:
            _upgrade_sqlite(uri, path)
            _open_store(uri)
        _enable_wal(path)


class _OutdatedSchema(Exception):
    pass


def _open_store(uri: str) -> None:
    """Open the store through MLflow (which creates a missing schema) and run one query."""
    from mlflow.exceptions import MlflowException

    try:
        _client(uri).search_experiments(max_results=1)
    except MlflowException as exc:
        if "out-of-date database schema" in str(exc):
            raise _OutdatedSchema(str(exc)) from None
        raise DlpracticeError(f"cannot open the MLflow store {uri}: {_one_line(exc)}") from None
    except Exception as exc:
        raise DlpracticeError(
            f"cannot open the MLflow store {uri}: {type(exc).__name__}: {_one_line(exc)}"
        ) from None


def _upgrade_sqlite(uri: str, path: Path) -> None:
    """Back the database up, then migrate it with MLflow's own ``mlflow db upgrade``."""
    import sys

    backup = path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
    shutil.copy2(path, backup)
    _log.warning("upgrading the MLflow schema of %s (backup: %s)", path, backup)
    proc = subprocess.run(
        [sys.executable, "-m", "mlflow", "db", "upgrade", uri],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        raise DlpracticeError(
            f"cannot upgrade the MLflow store {uri} (backup at {backup}): "
            f"{tail[-1] if tail else 'mlflow db upgrade failed'}"
        )


def _enable_wal(path: Path) -> None:
    """WAL journal: the UI and other jobs can read while a job writes (persistent in the file)."""
    import sqlite3

    try:
        with sqlite3.connect(path, timeout=30) as con:
            con.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:  # e.g. a network filesystem without shared memory: keep rollback
        _log.info("could not switch %s to WAL: %s", path, exc)


class _file_lock:
    """An exclusive inter-process lock on ``path`` (``filelock`` when installed, else flock)."""

    def __init__(self, path: Path):
        self.path = path
        self._lock: Any = None
        self._fd: Any = None

    def __enter__(self) -> None:
        try:
            from filelock import FileLock
        except ImportError:
            FileLock = None
        if FileLock is not None:
            self._lock = FileLock(str(self.path), timeout=600)
            self._lock.acquire()
            return
        import fcntl

        self._fd = open(self.path, "a")
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self._lock is not None:
            self._lock.release()
        elif self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._fd.close()


def _import_mlflow() -> None:
    """MLflow and its SQL store, imported once (see :func:`dlpractice._exit.long_lived_imports`)."""
    if "mlflow.store.tracking.sqlalchemy_store" in sys.modules:
        return
    from dlpractice._exit import long_lived_imports

    with long_lived_imports():
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
        import mlflow.tracking  # noqa: F401


def _client(uri: str) -> MlflowClient:
    # MLflow prints a "View run ... at" line per run ended through a server: noise in a sweep.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    _import_mlflow()
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def after_fork() -> None:
    """In a forked child process: drop the connections inherited from the parent (SQLAlchemy's
    pooled database connections, MLflow's HTTP sessions) without closing them — they are the
    parent's — so that this process opens its own. See SQLAlchemy's "Using Connection Pools with
    Multiprocessing or os.fork()"."""
    import sys

    if "mlflow" not in sys.modules:  # nothing opened yet
        return
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from mlflow.utils import request_utils

    for engine in list(getattr(SqlAlchemyStore, "_engine_map", {}).values()):
        engine.dispose(close=False)
    cached = getattr(request_utils, "_cached_get_request_session", None)
    if cached is not None and hasattr(cached, "cache_clear"):
        cached.cache_clear()


# -- experiments -----------------------------------------------------------------------------------


_experiment_ids: dict[tuple[str, str], str] = {}


def _artifact_location(name: str, uri: str) -> str | None:
    """``<db folder>/mlartifacts/<name>`` for a SQLite store; the server decides otherwise."""
    path = _sqlite_path(uri)
    if path is None:
        return None
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "experiment"
    return (path.parent / ARTIFACTS_DIR / slug).resolve().as_uri()


def get_experiment_id(name: str, uri: str) -> str:
    """The id of experiment ``name`` (created if missing), tagged ``mlflow.experimentKind =
    custom_model_development`` so that MLflow 3's UI opens it on the runs table."""
    key = (uri, name)
    if key in _experiment_ids:
        return _experiment_ids[key]
    from mlflow.exceptions import MlflowException

    prepare_store(uri)
    client = _client(uri)
    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            exp_id = client.create_experiment(
                name, artifact_location=_artifact_location(name, uri),
                tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
            )
        except MlflowException:  # created meanwhile by a parallel job
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
        else:
            _experiment_ids[key] = exp_id
            return exp_id
    if exp.lifecycle_stage == "deleted":
        raise DlpracticeError(
            f"MLflow experiment {name!r} is deleted in {uri}; restore it "
            f"(`mlflow experiments restore --experiment-id {exp.experiment_id}`) "
            "or choose another tracking.experiment"
        )
    if EXPERIMENT_KIND_TAG not in exp.tags:
        client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    _experiment_ids[key] = exp.experiment_id
    return exp.experiment_id


def runs_url(experiment: str, uri: str, host: str = "127.0.0.1", port: int = 5000) -> str:
    """The MLflow UI's runs table of ``experiment``: ``http://host:port/#/experiments/<id>/runs``
    (for a tracking server, the server's own address)."""
    exp_id = get_experiment_id(experiment, uri)
    base = uri.rstrip("/") if _scheme(uri) in ("http", "https") else f"http://{host}:{port}"
    return f"{base}/#/experiments/{exp_id}/runs"


def _existing_experiment_id(client: MlflowClient, experiment: str, uri: str) -> str | None:
    """The id of ``experiment`` (None when it does not exist or is deleted)."""
    exp_id = _experiment_ids.get((uri, experiment))  # known to exist (this process made sure)
    if exp_id is None:
        exp = client.get_experiment_by_name(experiment)
        if exp is None or exp.lifecycle_stage == "deleted":
            return None
        exp_id = exp.experiment_id
    return exp_id


def has_finished_runs(experiment: str, uri: str) -> bool:
    """Does ``experiment`` hold any FINISHED run (False when it does not exist)?"""
    prepare_store(uri)
    client = _client(uri)
    exp_id = _existing_experiment_id(client, experiment, uri)
    return exp_id is not None and bool(client.search_runs(
        [exp_id], filter_string="attributes.status = 'FINISHED'", max_results=1))


def find_finished_run(experiment: str, config_hash: str, uri: str) -> str | None:
    """The id of the latest FINISHED run of ``experiment`` tagged ``config_hash``, else None."""
    if not re.fullmatch(r"[0-9A-Za-z_-]+", config_hash):
        raise ValueError(f"config_hash {config_hash!r} must be a hex digest")
    prepare_store(uri)
    client = _client(uri)
    exp_id = _existing_experiment_id(client, experiment, uri)
    if exp_id is None:
        return None
    runs = client.search_runs(
        [exp_id],
        filter_string=f"tags.config_hash = '{config_hash}' and attributes.status = 'FINISHED'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return runs[0].info.run_id if runs else None


# -- run metadata ----------------------------------------------------------------------------------


def _split_words(key: str) -> list[str]:
    words: list[str] = []
    for part in re.split(r"[^0-9A-Za-z]+", key):
        words += re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+", part)
    return [w.lower() for w in words]


def _is_secret(key: str) -> bool:
    """Does a config key look like a credential? ``api_key``, ``tracking.password``,
    ``authToken``, ``client_secret`` do; ``keep_prob``, ``monkey``, ``keyboard`` do not."""
    return any(word in _SECRET_WORDS for word in _split_words(key))


def config_hash(cfg: Config) -> str:
    """The ``config_hash`` tag: :func:`dlpractice.config.config_hash` (sha256 of the canonical
    JSON of the resolved config without its ``tracking`` section)."""
    from dlpractice.config import config_hash as _hash

    return _hash(cfg)


@lru_cache(maxsize=8)
def _git_commit(root: Path) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = proc.stdout.strip()
    return commit if proc.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", commit) else None


def _common_tags() -> dict[str, str]:
    """Tags every run and sweep carries: user, git commit, DVC experiment name."""
    tags: dict[str, str] = {}
    with contextlib.suppress(KeyError, OSError):  # no user name in some containers
        tags["mlflow.user"] = getpass.getuser()
    commit = _git_commit(project_root())
    if commit:
        tags["git_commit"] = commit
        tags["mlflow.source.git.commit"] = commit
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_experiment"] = os.environ["DVC_EXP_NAME"]
    return tags


def _one_line(value: Any, limit: int = MAX_TAG_VALUE) -> str:
    lines = [ln.strip() for ln in str(value).splitlines() if ln.strip()]
    text = lines[0] if lines else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _failure_reason(exc: BaseException) -> str:
    text = _one_line(exc)
    return text or type(exc).__name__


_URI_PASSWORD = re.compile(r"(?<=://)([^/:@\s]*):[^/@\s]*@")


def _redact(text: str) -> str:
    """``http://user:secret@host`` -> ``http://user:***@host`` (e.g. ``tracking.uri``)."""
    return _URI_PASSWORD.sub(r"\1:***@", text)


def _params(cfg: Config) -> dict[str, str]:
    from dlpractice.config import flatten

    out: dict[str, str] = {}
    for key, value in flatten(cfg.to_dict()).items():
        if _is_secret(key):
            continue
        text = _redact(str(value))
        out[key] = text if len(text) <= MAX_PARAM_VALUE else text[: MAX_PARAM_VALUE - 1] + "…"
    return out


def _now_ms() -> int:
    return int(time.time() * 1000)


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _log_batch(
    client: MlflowClient,
    run_id: str,
    metrics: list[Any] = (),  # type: ignore[assignment]
    params: list[Any] = (),  # type: ignore[assignment]
    tags: list[Any] = (),  # type: ignore[assignment]
) -> None:
    """``log_batch`` within MLflow's per-request limits (one request for up to 1000 metrics)."""
    metrics, params, tags = list(metrics), list(params), list(tags)
    param_chunks = list(_chunks(params, MAX_PARAMS_TAGS_PER_BATCH))
    tag_chunks = list(_chunks(tags, MAX_PARAMS_TAGS_PER_BATCH))
    for i in range(max(len(param_chunks), len(tag_chunks))):
        p = param_chunks[i] if i < len(param_chunks) else []
        t = tag_chunks[i] if i < len(tag_chunks) else []
        room = MAX_METRICS_PER_BATCH - len(p) - len(t)
        m, metrics = metrics[:room], metrics[room:]
        client.log_batch(run_id, metrics=m, params=p, tags=t, synchronous=True)
    for m in _chunks(metrics, MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=m, synchronous=True)


def _metric_series(key: str, steps: Iterable[int], values: Iterable[float], ts: int) -> list[Any]:
    from mlflow.entities import Metric

    return [Metric(key, float(v), ts, int(s)) for s, v in zip(steps, values, strict=False)]


# -- runs ------------------------------------------------------------------------------------------


@dataclass
class History:
    """What the training callback saw: flushed at exit when ``log_history`` was never called."""

    iterations: list[int] = field(default_factory=list)
    costs: list[float] = field(default_factory=list)
    dev_costs: list[float] = field(default_factory=list)  # aligned with iterations when recorded

    def __len__(self) -> int:
        return len(self.iterations)


_open_trackers: list[RunTracker] = []  # innermost last; closed as KILLED at interpreter exit


@atexit.register
def _close_open_runs() -> None:
    for tracker in reversed(list(_open_trackers)):
        tracker._finish("KILLED", reason="the process ended with the run still open")


class RunTracker:
    """One MLflow run for one configuration::

        with RunTracker(cfg) as tracker:
            outcome = pipeline.run_all(cfg, callback=tracker.callback)
            tracker.log_history(outcome.result)
            tracker.log_outcome(outcome)

    Exit: FINISHED without exception; KILLED on KeyboardInterrupt; FAILED otherwise with the tag
    ``failure_reason`` (one line). Exceptions propagate. ``nested=True`` without ``parent_run_id``
    makes the run a child of the innermost open tracker (or of an active fluent MLflow run).
    """

    def __init__(
        self,
        cfg: Config,
        *,
        uri: str | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        nested: bool = False,
    ):
        self.cfg = cfg
        self.uri = resolve_uri(uri if uri is not None else cfg.tracking.uri)
        self.parent_run_id = parent_run_id
        self.extra_tags = dict(tags or {})
        self.nested = nested
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.config_hash = config_hash(cfg)
        self.history = History()
        self.status: str | None = None
        self._history_logged = False
        self._client: MlflowClient | None = None

    # context manager ------------------------------------------------------------------------

    def __enter__(self) -> Self:
        from dlpractice.config import run_name

        prepare_store(self.uri)
        self.experiment_id = get_experiment_id(self.cfg.tracking.experiment, self.uri)
        self._client = client = _client(self.uri)
        parent = self.parent_run_id
        if parent is None and self.nested:
            parent = self._enclosing_run_id()
        tags = self._start_tags(parent)
        run = client.create_run(self.experiment_id, run_name=run_name(self.cfg), tags=tags)
        self.run_id = run.info.run_id
        self.parent_run_id = parent
        _open_trackers.append(self)
        try:
            from mlflow.entities import Param

            _log_batch(client, self.run_id,
                       params=[Param(k, v) for k, v in _params(self.cfg).items()])
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                self._finish("KILLED")
            else:
                self._finish("FAILED", reason=_failure_reason(exc))
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            status, reason = "FINISHED", None
        elif isinstance(exc, KeyboardInterrupt):
            status, reason = "KILLED", None
        elif isinstance(exc, SystemExit) and exc.code in (None, 0):
            status, reason = "FINISHED", None
        else:
            status, reason = "FAILED", _failure_reason(exc)
        self._finish(status, reason=reason, raise_errors=exc is None)

    def _finish(self, status: str, *, reason: str | None = None,
                raise_errors: bool = False) -> None:
        """Flush the buffered history, tag the failure, terminate the run — never twice."""
        if self.run_id is None or self.status is not None or self._client is None:
            return
        client, run_id = self._client, self.run_id
        errors: list[BaseException] = []
        try:
            from mlflow.entities import RunTag

            metrics = [] if self._history_logged else self._buffered_metrics()
            tags = [RunTag("failure_reason", reason)] if reason else []
            if metrics or tags:
                _log_batch(client, run_id, metrics=metrics, tags=tags)
        except Exception as exc:
            errors.append(exc)
            _log.warning("could not log the end of MLflow run %s: %s", run_id, _one_line(exc))
        try:
            client.set_terminated(run_id, status=status)
        except Exception as exc:
            errors.append(exc)
            _log.warning("could not close MLflow run %s as %s: %s", run_id, status, _one_line(exc))
        # Only now: an interrupt above leaves the tracker open for the exit handler to retry.
        self.status = status
        if self in _open_trackers:
            _open_trackers.remove(self)
        if errors and raise_errors:
            raise DlpracticeError(
                f"MLflow run {run_id} in {self.uri} could not be closed cleanly: "
                f"{_one_line(errors[0])}"
            )

    def _enclosing_run_id(self) -> str | None:
        for tracker in reversed(_open_trackers):
            if tracker.uri == self.uri and tracker.run_id is not None:
                return tracker.run_id
        import mlflow

        active = mlflow.active_run()
        return active.info.run_id if active is not None else None

    def _start_tags(self, parent: str | None) -> dict[str, str]:
        tags: dict[str, str] = {"config_hash": self.config_hash, **_common_tags()}
        if self.cfg.study:
            tags["study"] = str(self.cfg.study)
        if parent:
            tags[PARENT_RUN_TAG] = parent
        for key, value in self.extra_tags.items():
            if value is not None and not _is_secret(key):
                tags[str(key)] = _redact(_one_line(value))
        return tags

    # training callback ----------------------------------------------------------------------

    def callback(self, iteration: int, cost: float, dev_cost: float | None = None) -> None:
        """``train(..., callback=tracker.callback)``: buffers the history (no logging here)."""
        self.history.iterations.append(int(iteration))
        self.history.costs.append(float(cost))
        if dev_cost is not None:
            self.history.dev_costs.append(float(dev_cost))

    def _buffered_metrics(self) -> list[Any]:
        h, ts = self.history, _now_ms()
        metrics = _metric_series("cost", h.iterations, h.costs, ts)
        if h.dev_costs:
            metrics += _metric_series("dev_cost", h.iterations, h.dev_costs, ts)
        return metrics

    # logging --------------------------------------------------------------------------------

    def _require_open(self) -> tuple[MlflowClient, str]:
        if self._client is None or self.run_id is None or self.status is not None:
            raise RuntimeError("RunTracker is not open: use it as `with RunTracker(cfg) as t:`")
        return self._client, self.run_id

    def log_history(self, result: TrainResult) -> None:
        """``cost`` and ``dev_cost`` per recorded iteration, ``grad_norm_W1``, ``grad_norm_W2``, …,
        ``train_seconds`` (and ``final_cost``, ``iterations_run``, ``best_iteration`` when early
        stopping restored weights): all in one batched call."""
        client, run_id = self._require_open()
        ts = _now_ms()
        its = list(result.iterations)
        metrics = _metric_series("cost", its, result.costs, ts)
        if result.dev_costs and len(result.dev_costs) == len(its):
            metrics += _metric_series("dev_cost", its, result.dev_costs, ts)
        if result.grad_norms:
            for layer in range(len(result.grad_norms[0])):
                metrics += _metric_series(
                    f"grad_norm_W{layer + 1}", its, (row[layer] for row in result.grad_norms), ts
                )
        last = its[-1] if its else 0
        scalars = {"train_seconds": result.train_seconds, "final_cost": result.final_cost,
                   "iterations_run": result.iterations_run}
        if result.best_iteration is not None:
            scalars["best_iteration"] = result.best_iteration
        metrics += [m for k, v in scalars.items() for m in _metric_series(k, [last], [v], ts)]
        _log_batch(client, run_id, metrics=metrics)
        self._history_logged = True

    def log_outcome(self, outcome: Outcome, artifacts: Mapping[str, str | Path] | None = None,
                    ) -> None:
        """Evaluation metrics (+ ``gradcheck_difference``) and the tags ``diagnosis``,
        ``recommendation``, ``dataset_fingerprint`` in one call; then the artifacts in one upload:
        ``config.yaml``, ``parameters.npz``, ``normalizer.npz`` (when inputs were normalized),
        ``cost_curve.png``, ``grad_norms.png``, ``weight_histograms.png``,
        ``decision_boundary.png`` (2-D data only), plus ``artifacts`` (label -> local file or
        folder, e.g. what ``report.write_run_outputs`` wrote), each logged under its own file name;
        a file named like one of the above is logged instead of generating that one again."""
        from mlflow.entities import RunTag

        client, run_id = self._require_open()
        ts = _now_ms()
        values = dict(outcome.evaluation.metrics())
        if outcome.gradcheck is not None:
            values["gradcheck_difference"] = outcome.gradcheck.difference
        metrics = [m for k, v in values.items() for m in _metric_series(k, [0], [v], ts)]
        diagnosis = outcome.evaluation.diagnosis
        tags = [RunTag("diagnosis", diagnosis.label),
                RunTag("recommendation", _one_line(diagnosis.recommendation)),
                RunTag("dataset_fingerprint", str(outcome.data.fingerprint))]
        if outcome.gradcheck is not None:
            tags.append(RunTag("gradcheck", "passed" if outcome.gradcheck.passed else "failed"))
        _log_batch(client, run_id, metrics=metrics, tags=tags)
        with tempfile.TemporaryDirectory(prefix="dlpractice-artifacts-") as tmp:
            _write_run_artifacts(outcome, Path(tmp), dict(artifacts or {}))
            client.log_artifacts(run_id, tmp)


def _write_run_artifacts(outcome: Outcome, out: Path, given: dict[str, str | Path]) -> None:
    import numpy as np
    import yaml

    from dlpractice import plots

    for label, src in given.items():
        src = Path(src)
        dest = out / src.name
        if src.is_dir():
            shutil.copytree(src, dest, dirs_exist_ok=True)
        elif src.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:  # a staging folder for MLflow's own copy: a link will do
                os.link(src, dest)
            except OSError:  # another filesystem, or no hard links there
                shutil.copy2(src, dest)
        else:
            _log.warning("artifact %s: %s does not exist; skipped", label, src)

    def wanted(name: str) -> Path | None:
        return None if (out / name).exists() else out / name

    cfg, result, splits = outcome.cfg, outcome.result, outcome.splits
    if p := wanted("config.yaml"):
        p.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    if p := wanted("parameters.npz"):
        np.savez(p, **{k: np.asarray(v, dtype=np.float64) for k, v in result.parameters.items()})
    if outcome.stats is not None and (p := wanted("normalizer.npz")):
        np.savez(p, mean=outcome.stats.mean, std=outcome.stats.std)
    if p := wanted("cost_curve.png"):
        plots.cost_curve(result, p)
    if p := wanted("grad_norms.png"):
        plots.grad_norms(result, p)
    if p := wanted("weight_histograms.png"):
        plots.weight_histograms(result.parameters, p)
    if p := wanted("decision_boundary.png"):
        plots.decision_boundary(result.parameters, splits.X_train, splits.Y_train,
                                cfg.model.activation, p, title=f"{_run_title(cfg)} (train)")


def _run_title(cfg: Config) -> str:
    from dlpractice.config import run_name

    return run_name(cfg)


# -- sweeps ----------------------------------------------------------------------------------------


_open_sweeps: dict[str, str] = {}  # parent run id -> uri; closed as KILLED at interpreter exit


@atexit.register
def _close_open_sweeps() -> None:
    for run_id, uri in list(_open_sweeps.items()):
        _terminate(run_id, uri, "KILLED")


def _terminate(run_id: str, uri: str, status: str) -> None:
    _open_sweeps.pop(run_id, None)
    try:
        _client(uri).set_terminated(run_id, status=status)
    except Exception as exc:
        _log.warning("could not close MLflow run %s as %s: %s", run_id, status, _one_line(exc))


def start_sweep_run(
    experiment: str, run_name: str, uri: str, tags: Mapping[str, Any] | None = None
) -> str:
    """Open the parent run of a sweep (jobs pass its id as ``parent_run_id``); returns its id.
    Close it with :func:`finish_sweep_run`; if the process ends first, it is closed as KILLED."""
    prepare_store(uri)
    exp_id = get_experiment_id(experiment, uri)
    all_tags: dict[str, str] = {"sweep": "true", **_common_tags()}
    all_tags.update({str(k): _one_line(v) for k, v in (tags or {}).items()
                     if v is not None and not _is_secret(str(k))})
    run = _client(uri).create_run(exp_id, run_name=run_name, tags=all_tags)
    _open_sweeps[run.info.run_id] = uri
    return run.info.run_id


def finish_sweep_run(
    parent_run_id: str,
    uri: str,
    files: Iterable[str | Path] = (),
    tags: Mapping[str, Any] | None = None,
    status: str = "FINISHED",
) -> None:
    """Log ``files`` (one upload, under their own names) and ``tags`` to a sweep's parent run, then
    close it with ``status``. The run is closed even when logging fails (then this raises)."""
    from mlflow.entities import RunTag

    client = _client(uri)
    try:
        if tags:
            _log_batch(client, parent_run_id,
                       tags=[RunTag(str(k), _one_line(v)) for k, v in tags.items()])
        paths = [Path(f) for f in files if f is not None and Path(f).is_file()]
        if paths:
            with tempfile.TemporaryDirectory(prefix="dlpractice-sweep-") as tmp:
                for path in paths:
                    shutil.copy2(path, Path(tmp) / path.name)
                client.log_artifacts(parent_run_id, tmp)
    finally:
        _open_sweeps.pop(parent_run_id, None)
        client.set_terminated(parent_run_id, status=status)


def run_summary(run_id: str, uri: str) -> dict[str, Any]:
    """A logged run as a flat row: ``run_id``, ``setting`` (run name), ``status``, the latest value
    of every metric, and the ``diagnosis``/``recommendation``/``config_hash`` tags."""
    prepare_store(uri)
    run = _client(uri).get_run(run_id)
    row: dict[str, Any] = {"run_id": run_id, "setting": run.info.run_name,
                           "status": run.info.status}
    row.update(run.data.metrics)
    for key in ("diagnosis", "recommendation", "config_hash", "failure_reason"):
        if key in run.data.tags:
            row[key] = run.data.tags[key]
    return row
