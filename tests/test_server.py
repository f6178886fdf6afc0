"""The team tracking server as real processes: ``python -m dlpractice.server`` on loopback, parallel
Hydra sweeps (joblib) logging to it (PostgreSQL) or to an embedded SQLite store, artifacts served
through it, fail-fast when it is down, its UI in headless Chromium, and a small load test.

PostgreSQL: ``$DLPRACTICE_TEST_PG_URI`` (``.ci/run`` creates it); each session works in a fresh
database, dropped at the end. Chromium: ``/usr/bin/chromium``. With ``CI=true`` a missing one fails
these tests instead of skipping them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from dlpractice.server import free_port, redact, running_server
from tests import reference as ref

ROOT = Path(__file__).resolve().parents[1]
PG_ENV = "DLPRACTICE_TEST_PG_URI"
CHROMIUM = "/usr/bin/chromium"
ITERATIONS, RECORD_EVERY = 200, 20
QUICK = [f"train.iterations={ITERATIONS}", f"train.record_every={RECORD_EVERY}",
         "data.n_samples=200"]
# the jobs log their test metrics too (selection.hide_test=false): each is checked
SWEEP = ["init=he,xavier,glorot,random", "regularizer=l2", "regularizer.lambd=0.1,0.7",
         "selection.hide_test=false"]
SWEEP_NAMES = sorted(f"{i}-l2_{lam}" for i in ("he", "xavier", "glorot", "random")
                     for lam in ("0.1", "0.7"))

pytestmark = pytest.mark.slow


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _unavailable(why: str) -> None:
    """Fail in CI (the tests must run there), skip elsewhere."""
    if _in_ci():
        pytest.fail(f"{why} (CI=true: required)")
    pytest.skip(why)


def _with_database(uri: str, name: str) -> str:
    parts = urllib.parse.urlsplit(uri)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def _psycopg2_uri(uri: str) -> str:
    scheme, sep, rest = uri.partition("://")
    return f"postgresql://{rest}" if scheme.startswith("postgres") else uri


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_uri():
    """A fresh PostgreSQL database for this session (dropped at the end): its URI."""
    base = os.environ.get(PG_ENV)
    if not base:
        _unavailable(f"${PG_ENV} is not set (bash .ci/run --setup-only FILE creates it)")
    psycopg2 = pytest.importorskip("psycopg2")
    name = f"dlpractice_t_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(_psycopg2_uri(base))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(base, name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def pg_server(pg_uri, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pg-server")
    with running_server(tmp / "server.log", backend_store_uri=pg_uri,
                        artifacts_destination=tmp / "artifacts") as server:
        server.artifacts = tmp / "artifacts"
        server.password = urllib.parse.urlsplit(pg_uri).password
        yield server


@pytest.fixture(scope="session")
def sqlite_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sqlite-server")
    with running_server(tmp / "server.log", backend_store_uri=f"sqlite:///{tmp / 'store' / 'mlflow.db'}",
                        artifacts_destination=tmp / "artifacts", workers=2) as server:
        server.artifacts = tmp / "artifacts"
        yield server


def experiment_app(tmp_path: Path, *args: str, env: dict | None = None,
                   timeout: float = 300) -> subprocess.CompletedProcess:
    run_env = {**os.environ, **(env or {})}
    run_env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run(
        [sys.executable, "-m", "dlpractice.experiment", *args,
         f"hydra.run.dir={tmp_path}/run", f"hydra.sweep.dir={tmp_path}/sweep"],
        cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=timeout,
    )


def client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def check_sweep(uri: str, experiment: str, downloads: Path) -> tuple[str, str, list]:
    """Every run FINISHED, every cost point stored, its metrics those of its logged parameters,
    one parent: (experiment id, parent id, children)."""
    c = client(uri)
    exp = c.get_experiment_by_name(experiment)
    assert exp is not None, experiment
    runs = c.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1, [r.info.run_name for r in parents]
    (parent,) = parents
    assert parent.data.tags.get("sweep") == "true" and parent.data.tags.get("jobs") == "8"
    assert parent.data.tags.get("failed_jobs") == "0"
    assert sorted(r.info.run_name for r in children) == SWEEP_NAMES
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert [r.info.status for r in runs] == ["FINISHED"] * len(runs)
    expected_steps = list(range(0, ITERATIONS, RECORD_EVERY))
    for run in children:
        history = c.get_metric_history(run.info.run_id, "cost")
        assert sorted(p.step for p in history) == expected_steps, run.info.run_name
        got = Path(c.download_artifacts(run.info.run_id, "", str(downloads / run.info.run_id)))
        config = yaml.safe_load((got / "config.yaml").read_text())
        expected = ref.evaluate(ref.load_npz(got / "parameters.npz"), config)
        for name in ("train_accuracy", "dev_accuracy", "test_accuracy", "avoidable_bias"):
            assert run.data.metrics[name] == pytest.approx(expected[name], abs=1e-12), name
        assert [float(r["cost"]) for r in ref.read_csv(got / "history.csv")] == [
            p.value for p in sorted(history, key=lambda p: p.step)]
    artifacts = {f.path for f in c.list_artifacts(parent.info.run_id)}
    assert {"sweep_summary.csv", "sweep_summary.md"} <= artifacts
    return exp.experiment_id, parent.info.run_id, children


# -- sweeps ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_sweep(pg_server, tmp_path_factory):
    """An 8-job joblib sweep (2 workers) through the PostgreSQL-backed server: the process and the
    experiment's name."""
    experiment = f"team-sweep-{uuid.uuid4().hex[:6]}"
    proc = experiment_app(tmp_path_factory.mktemp("pg-sweep"), "-m", "hydra/launcher=joblib",
                          "hydra.launcher.n_jobs=2", *SWEEP, *QUICK, f"tracking.uri={pg_server.url}",
                          f"tracking.experiment={experiment}")
    return proc, experiment


def test_joblib_sweep_through_the_server_on_postgresql(pg_server, pg_sweep, tmp_path):
    proc, experiment = pg_sweep
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp_id, parent_id, _ = check_sweep(pg_server.url, experiment, tmp_path)
    # artifacts went through the server into its artifacts folder
    assert any((pg_server.artifacts / exp_id).rglob("parameters.npz"))
    assert (pg_server.artifacts / exp_id / parent_id / "artifacts" / "sweep_summary.csv").is_file()


def test_joblib_sweep_on_a_new_embedded_sqlite_store(tmp_path):
    db = tmp_path / "fresh" / "store" / "mlflow.db"
    assert not db.parent.exists()
    uri = f"sqlite:///{db}"
    proc = experiment_app(tmp_path, "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                          *SWEEP, *QUICK, f"tracking.uri={uri}", "tracking.experiment=sqlite-sweep")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "database is locked" not in proc.stderr + proc.stdout
    check_sweep(uri, "sqlite-sweep", tmp_path / "downloads")


# -- the server itself -----------------------------------------------------------------------------


def _listening(port: int) -> set[str]:
    """Local addresses with a LISTEN socket on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            addr, state = fields[1], fields[3]
            host_hex, port_hex = addr.rsplit(":", 1)
            if state != "0A" or int(port_hex, 16) != port:
                continue
            if len(host_hex) == 8:
                found.add(".".join(str(b) for b in bytes.fromhex(host_hex)[::-1]))
            else:
                words = [bytes.fromhex(host_hex[i : i + 8])[::-1].hex() for i in range(0, 32, 8)]
                found.add(":".join("".join(words)[i : i + 4] for i in range(0, 32, 4)))
    return found


def test_server_binds_loopback_and_serves_artifacts(sqlite_server, tmp_path):
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp")
    assert _listening(sqlite_server.port) == {"127.0.0.1"}
    c = client(sqlite_server.url)
    exp_id = c.create_experiment(f"artifacts-{uuid.uuid4().hex[:6]}")
    assert c.get_experiment(exp_id).artifact_location.startswith("mlflow-artifacts:")
    run = c.create_run(exp_id)
    src = tmp_path / "note.txt"
    src.write_text("served by the tracking server\n")
    c.log_artifact(run.info.run_id, str(src))
    # stored in the server's artifacts folder, readable back through HTTP
    stored = sqlite_server.artifacts / exp_id / run.info.run_id / "artifacts" / "note.txt"
    assert stored.read_text() == src.read_text()
    url = (f"{sqlite_server.url}/api/2.0/mlflow-artifacts/artifacts/{exp_id}/{run.info.run_id}"
           "/artifacts/note.txt")
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read().decode() == src.read_text()
    back = c.download_artifacts(run.info.run_id, "note.txt", str(tmp_path / "down"))
    assert Path(back).read_text() == src.read_text()


def test_password_is_never_shown(pg_server, pg_uri):
    password = pg_server.password
    assert password and password not in pg_server.log()
    shown = redact(pg_uri).split("://", 1)[1]
    assert f"://{shown}" in pg_server.log()  # the printed command, redacted
    # nothing in the server's process group carries it on its command line (what `ps` shows)
    pgid = pg_server.process.pid
    for proc_dir in Path("/proc").glob("[0-9]*"):
        try:
            stat = (proc_dir / "stat").read_text()
            cmdline = (proc_dir / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
            assert password not in cmdline, cmdline
    # a password on the command line is refused before anything starts
    proc = subprocess.run([sys.executable, "-m", "dlpractice.server", "--backend-store-uri", pg_uri],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and password not in proc.stdout + proc.stderr
    assert "PGPASSWORD" in proc.stderr


def test_server_command_defaults(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DLPRACTICE_BACKEND_STORE_URI"}
    proc = subprocess.run([sys.executable, "-m", "dlpractice.server", "--dry-run"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert f"MLFLOW_BACKEND_STORE_URI=sqlite:///{ROOT / 'mlflow.db'}" in line
    assert "--host 127.0.0.1 --port 5000 --serve-artifacts" in line
    assert f"--artifacts-destination {ROOT / 'mlartifacts'}" in line
    env["DLPRACTICE_BACKEND_STORE_URI"] = "postgresql://team:s3cret@db.internal:5432/mlflow"
    proc = subprocess.run([sys.executable, "-m", "dlpractice.server", "--dry-run", "--workers", "2",
                           "--artifacts-destination", str(tmp_path / "a")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "s3cret" not in proc.stdout + proc.stderr
    assert re.search(r"postgresql(\+psycopg2)?://team:\*\*\*@db\.internal:5432/mlflow", proc.stdout)
    assert f"--artifacts-destination {tmp_path / 'a'} --workers 2" in proc.stdout


def test_server_down_fails_fast_with_one_line(tmp_path):
    port = free_port()
    for args in ([], ["-m", "init=he,xavier"]):
        start = time.monotonic()
        proc = experiment_app(tmp_path, *args, *QUICK, f"tracking.uri=http://127.0.0.1:{port}",
                              timeout=60)
        elapsed = time.monotonic() - start
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert proc.returncode != 0
        assert elapsed < 15, elapsed
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith("error: ") and f"127.0.0.1:{port}" in lines[0]
        assert "unreachable" in lines[0]
        # nothing trained: no job outputs
        assert not list(tmp_path.rglob("parameters.npz")) and not list(tmp_path.rglob("summary.json"))


# -- the UI ----------------------------------------------------------------------------------------


def _chromium_dom(url: str, profile: Path, budget_ms: int = 15000) -> str:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
           "--dump-dom", url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _text(dom: str) -> str:
    import html

    body = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)))


def test_ui_shows_the_sweep(pg_server, pg_sweep, tmp_path):
    if not Path(CHROMIUM).is_file():
        _unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    proc, experiment = pg_sweep
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp_id, parent_id, children = check_sweep(pg_server.url, experiment, tmp_path / "runs")
    child_ids = [r.info.run_id for r in children]
    parent_name = client(pg_server.url).get_run(parent_id).info.run_name
    # the experiment's runs table: its name, the sweep's parent run (children nest under it)
    text = ""
    for budget in (15000, 40000):
        text = _text(_chromium_dom(f"{pg_server.url}/#/experiments/{exp_id}/runs",
                                   tmp_path / f"profile-{budget}", budget))
        if parent_name in text:
            break
    assert experiment in text and parent_name in text, text[:2000]
    assert re.search(r"\b9 matching runs", text), text[:2000]
    # the runs of the sweep, side by side: every child's name
    runs = urllib.parse.quote(json.dumps(child_ids), safe="")
    exps = urllib.parse.quote(json.dumps([exp_id]), safe="")
    text = _text(_chromium_dom(f"{pg_server.url}/#/compare-runs?runs={runs}&experiments={exps}",
                               tmp_path / "profile-compare"))
    missing = [name for name in SWEEP_NAMES if name not in text]
    assert not missing, (missing, text[:2000])


# -- load ------------------------------------------------------------------------------------------


def test_small_load_loses_nothing_sqlite():
    from benchmarks import bench_load

    result = bench_load.measure(workers=4, runs=5, points=300, server_workers=2)
    assert result["runs_lost"] == 0 and result["points_lost"] == 0, result
    assert result["runs_short"] == 0 and result["error_count"] == 0, result
    rows = bench_load.rows_from(result)
    assert all(r["ok"] for r in rows), rows


def test_small_load_loses_nothing_postgresql(pg_server):
    from benchmarks import bench_load

    result = bench_load.measure(workers=4, runs=5, points=300, url=pg_server.url)
    assert result["runs_lost"] == 0 and result["points_lost"] == 0, result
    assert result["runs_short"] == 0 and result["error_count"] == 0, result
