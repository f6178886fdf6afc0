"""The project's MLflow tracking server: ``python -m dlpractice.server`` (``make server``) builds the
``mlflow server`` command and replaces this process with it (README: "A tracking server").

Owns the server's options: loopback unless ``--host`` says otherwise, artifacts served by the server,
the backend store (``--backend-store-uri``, ``$DLPRACTICE_BACKEND_STORE_URI`` or the project's
SQLite file), credentials from the environment only (a password on the command line is refused; the
URI reaches ``mlflow server`` through ``MLFLOW_BACKEND_STORE_URI``, never argv), and the schema made
ready first (:meth:`dlpractice.tracking.Store.prepare`; an out-of-date PostgreSQL/MySQL schema only
with ``--upgrade-db``). Must not track runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from dlpractice.errors import DlpracticeError
from dlpractice.paths import project_root

__all__ = ["BACKEND_ENV", "RunningServer", "build_command", "free_port", "main", "redact",
           "resolve_backend", "running_server"]

BACKEND_ENV = "DLPRACTICE_BACKEND_STORE_URI"
MLFLOW_BACKEND_ENV = "MLFLOW_BACKEND_STORE_URI"  # read by `mlflow server --backend-store-uri`
JOB_EXECUTION_ENV = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_SECRET_QUERY_KEYS = frozenset({"password", "passwd", "pwd", "sslpassword", "token"})
_SECRET_QUERY_RE = re.compile(r"(?i)([?&](?:" + "|".join(sorted(_SECRET_QUERY_KEYS)) + r")=)[^&#]*")
# Run in a child so that `mlflow db upgrade` gets the URI from the environment, not from argv.
_UPGRADE_SNIPPET = (
    "import os; from mlflow.db import upgrade; "
    f"upgrade.main([os.environ[{MLFLOW_BACKEND_ENV!r}]], standalone_mode=True)"
)


def _has_password(uri: str) -> bool:
    parts = urlsplit(uri)
    if parts.password:
        return True
    return any(k.lower() in _SECRET_QUERY_KEYS for k, _ in parse_qsl(parts.query))


def redact(uri: str) -> str:
    """``uri`` with the password of its user info and any ``password=`` query value as ``***``
    (over-redacts rather than leaks when the URI is malformed)."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    rest = _SECRET_QUERY_RE.sub(r"\1***", rest)
    user_info, at, host_part = rest.rpartition("@")
    if at and ":" in user_info:
        rest = f"{user_info.split(':', 1)[0]}:***@{host_part}"
    return f"{scheme}://{rest}"


def resolve_backend(given: str | None) -> str:
    """``--backend-store-uri`` > ``$DLPRACTICE_BACKEND_STORE_URI`` > ``sqlite:///<project>/mlflow.db``
    (a relative SQLite path is taken against the project folder)."""
    from dlpractice.tracking.store import DB_NAME

    uri = (given or os.environ.get(BACKEND_ENV) or "").strip()
    if not uri:
        return f"sqlite:///{project_root() / DB_NAME}"
    scheme = uri.split(":", 1)[0].lower() if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", uri) else ""
    if scheme == "postgres":  # SQLAlchemy only knows the long name
        uri, scheme = "postgresql" + uri[len("postgres"):], "postgresql"
    if scheme == "postgresql" and _driver_missing("psycopg") and not _driver_missing("psycopg2"):
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; the project ships psycopg2.
        uri = "postgresql+psycopg2" + uri[len("postgresql"):]
    if scheme == "sqlite" and uri.startswith("sqlite:///"):
        rest = uri[len("sqlite:///"):]
        if rest and rest != ":memory:" and not Path(rest.split("?", 1)[0]).is_absolute():
            uri = f"sqlite:///{(project_root() / rest).resolve()}"
    if scheme in ("", "file"):
        raise DlpracticeError(
            f"backend store {uri!r} is a folder; use a database: sqlite:///<path>/mlflow.db or "
            "postgresql://<user>@<host>:<port>/<database>"
        )
    return uri


def _driver_missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


def _artifacts_destination(given: str | None) -> str:
    """A given URI with a scheme (``s3://…``) as is; a path made absolute; default
    ``<project>/mlartifacts``."""
    from dlpractice.tracking.store import ARTIFACTS_DIR

    if not given:
        return str(project_root() / ARTIFACTS_DIR)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", given):
        return given
    return str(Path(given).expanduser().resolve())


def build_command(args: argparse.Namespace) -> list[str]:
    """``python -m mlflow server …`` — without the backend URI (it goes through the environment)."""
    cmd = [sys.executable, "-m", "mlflow", "server",
           "--host", args.host, "--port", str(args.port),
           "--serve-artifacts", "--artifacts-destination", _artifacts_destination(args.artifacts_destination)]
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    return cmd


def _prepare_schema(uri: str, upgrade: bool) -> None:
    """Create a missing schema; upgrade an outdated one (SQLite always, with a backup; others only
    when asked)."""
    from dlpractice.tracking import Store
    from dlpractice.tracking.store import OutdatedSchemaError

    try:
        Store(uri).prepare()
        return
    except OutdatedSchemaError:
        if not upgrade:
            raise DlpracticeError(
                f"the MLflow schema of {redact(uri)} is out of date; back the database up "
                "(e.g. pg_dump) and start again with --upgrade-db"
            ) from None
    print(f"upgrading the MLflow schema of {redact(uri)} ...", file=sys.stderr, flush=True)
    env = {**os.environ, MLFLOW_BACKEND_ENV: uri}
    proc = subprocess.run([sys.executable, "-c", _UPGRADE_SNIPPET], env=env, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        tail = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        last = tail[-1] if tail else "mlflow db upgrade failed"
        raise DlpracticeError(f"cannot upgrade the MLflow schema of {redact(uri)}: {last}")
    Store(uri).prepare()  # a fresh object: the upgraded schema is opened again


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m dlpractice.server",
        description="Start the project's MLflow tracking server (artifacts served by the server).",
        epilog=f"Credentials only through the environment: the whole URI in ${BACKEND_ENV}, or "
               "PGUSER/PGPASSWORD (~/.pgpass) with a password-less postgresql:// URI.",
    )
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"interface to bind (default {DEFAULT_HOST}: this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    p.add_argument("--backend-store-uri", default=None, metavar="URI",
                   help=f"default: ${BACKEND_ENV}, else sqlite:///<project>/mlflow.db")
    p.add_argument("--artifacts-destination", default=None, metavar="PATH",
                   help="where served artifacts are stored (default <project>/mlartifacts)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="server worker processes (default: MLflow's, 4)")
    p.add_argument("--upgrade-db", action="store_true",
                   help="upgrade an out-of-date PostgreSQL/MySQL schema (SQLite: always, with a backup)")
    p.add_argument("--dry-run", action="store_true",
                   help="prepare nothing, start nothing: print the command and exit")
    return p


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        if not 0 < args.port < 65536:
            raise DlpracticeError(f"--port={args.port} is not allowed: must be in 1..65535")
        if args.workers is not None and args.workers < 1:
            raise DlpracticeError(f"--workers={args.workers} is not allowed: must be at least 1")
        if args.backend_store_uri and _has_password(args.backend_store_uri):
            raise DlpracticeError(
                "--backend-store-uri holds a password, which `ps` shows to every user; put the URI "
                f"in ${BACKEND_ENV} or the password in PGPASSWORD (or ~/.pgpass) instead"
            )
        uri = resolve_backend(args.backend_store_uri)
        cmd = build_command(args)
        if args.host not in LOOPBACK:
            print(f"warning: binding to {args.host}: anyone who reaches this port can read and "
                  "write every run (MLflow has no authentication here); consider --allowed-hosts "
                  "or a reverse proxy", file=sys.stderr)
        shown = f"{MLFLOW_BACKEND_ENV}={shlex.quote(redact(uri))} {shlex.join(cmd)}"
        print(f"$ {shown}", flush=True)
        if args.dry_run:
            return
        _prepare_schema(uri, upgrade=args.upgrade_db)
    except DlpracticeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    env = {**os.environ, MLFLOW_BACKEND_ENV: uri}
    env.pop(BACKEND_ENV, None)  # one copy of the secret is enough
    # MLflow's job runner (GenAI scorers, trace archival: 7 extra processes) is not used here.
    env.setdefault(JOB_EXECUTION_ENV, "false")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, cmd, env)


# -- a server in the background (tests, benchmarks) ---------------------------------------------------


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    port: int
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


@contextlib.contextmanager
def running_server(
    log_path: str | Path,
    *,
    port: int | None = None,
    backend_store_uri: str | None = None,
    artifacts_destination: str | Path | None = None,
    workers: int | None = None,
    env: Mapping[str, str] | None = None,
    start_timeout: float = 90.0,
) -> Iterator[RunningServer]:
    """``python -m dlpractice.server`` in its own process group on loopback, until ``/health``
    answers; stopped (SIGTERM, then SIGKILL to its group) on exit. ``backend_store_uri`` reaches it
    through ``$DLPRACTICE_BACKEND_STORE_URI`` (it may hold a password)."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "dlpractice.server", "--host", DEFAULT_HOST, "--port", str(port)]
    if artifacts_destination is not None:
        cmd += ["--artifacts-destination", str(artifacts_destination)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    run_env = {**os.environ, **(env or {})}
    if backend_store_uri is not None:
        run_env[BACKEND_ENV] = backend_store_uri
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    url = f"http://{DEFAULT_HOST}:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=run_env,
                                start_new_session=True)
    server = RunningServer(url, port, proc, log_path)
    try:
        deadline = time.monotonic() + start_timeout
        while not _healthy(url):
            if proc.poll() is not None:
                tail = [ln for ln in server.log().splitlines() if ln.strip()]
                raise DlpracticeError(f"the MLflow server exited with {proc.returncode}: "
                                      f"{tail[-1] if tail else 'no output'}")
            if time.monotonic() > deadline:
                raise DlpracticeError(f"the MLflow server on {url} did not answer /health within "
                                      f"{start_timeout:.0f} s (log: {log_path})")
            time.sleep(0.25)
        yield server
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM to the server's process group (uvicorn and its workers), SIGKILL after ``grace``."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # workers that outlived their parent
        os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
