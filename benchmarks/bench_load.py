"""Load on the project's tracking server: parallel writers, then count what was stored.

Starts ``python -m dlpractice.server`` on a free loopback port (SQLite in a temporary folder, or
``--backend-store-uri`` / ``$DLPRACTICE_BACKEND_STORE_URI`` for PostgreSQL); ``workers`` processes
each create ``runs`` runs of ``points`` stepped points in batches of up to 1000 and close them
FINISHED; then every run and history is read back: 0 runs and 0 points may be lost. A deadline
(``--timeout``) bounds it; the server is stopped at the end.
``python -m benchmarks.bench_load [--workers 8] [--runs 25] [--points 300] [--backend-store-uri URI]``
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from dlpractice.server import redact, running_server

WORKERS, RUNS, POINTS = 8, 25, 300
METRIC = "loss"
BATCH = 1000  # MLflow's per-request limit on metrics
TIMEOUT_S = 600.0


def _writer(url: str, experiment_id: str, worker: int, runs: int, points: int,
            ready: Any, start: Any, out: Any) -> None:
    """One writer process: ``runs`` runs of ``points`` stepped points; reports its run ids."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"  # one line per run otherwise
    client = MlflowClient(tracking_uri=url)
    run_ids, errors = [], []
    ready.put(worker)
    if not start.wait(timeout=TIMEOUT_S):
        out.put((worker, run_ids, ["never released"]))
        return
    for r in range(runs):
        try:
            run = client.create_run(experiment_id, run_name=f"w{worker}-r{r}",
                                    tags={"bench_worker": str(worker)})
            run_id = run.info.run_id
            ts = int(time.time() * 1000)
            metrics = [Metric(METRIC, float(s) / (s + 1), ts, s) for s in range(points)]
            for i in range(0, len(metrics), BATCH):
                client.log_batch(run_id, metrics=metrics[i : i + BATCH], synchronous=True)
            client.set_terminated(run_id, "FINISHED")
            run_ids.append(run_id)
        except Exception as exc:  # counted as lost below; keep going
            errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    out.put((worker, run_ids, errors))


def load(url: str, workers: int = WORKERS, runs: int = RUNS, points: int = POINTS,
         timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """Run the writers against a running server at ``url`` and count what it stored."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=url)
    experiment_id = client.create_experiment(f"bench-load-{uuid.uuid4().hex[:8]}")
    ctx = mp.get_context("spawn")  # no forked MLflow/HTTP state in the writers
    ready, start, out = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_writer,
                         args=(url, experiment_id, w, runs, points, ready, start, out), daemon=True)
             for w in range(workers)]
    for p in procs:
        p.start()
    # The writers import MLflow first; the clock starts when all are released together.
    for _ in procs:
        ready.get(timeout=120)
    t0 = time.perf_counter()
    start.set()
    results, deadline = [], time.monotonic() + timeout
    while len(results) < workers and time.monotonic() < deadline:
        try:
            results.append(out.get(timeout=1.0))
        except Exception:
            if not any(p.is_alive() for p in procs) and out.empty():
                break
    seconds = time.perf_counter() - t0
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            p.terminate()
            p.join(timeout=5)
    reported = [rid for _, ids, _ in results for rid in ids]
    errors = [e for _, _, errs in results for e in errs]

    stored = client.search_runs([experiment_id], max_results=50000)
    finished = {r.info.run_id for r in stored if r.info.status == "FINISHED"}
    points_read = 0
    short_runs = 0
    for run_id in finished:
        history = client.get_metric_history(run_id, METRIC)
        steps = {m.step for m in history}
        points_read += len(steps)
        short_runs += len(steps) != points
    expected_runs = workers * runs
    return {
        "backend": "",
        "workers": workers, "runs_per_worker": runs, "points_per_run": points,
        "seconds": seconds,
        "runs_expected": expected_runs, "runs_reported": len(reported), "runs_stored": len(stored),
        "runs_finished": len(finished), "runs_lost": expected_runs - len(finished),
        "points_expected": expected_runs * points, "points_read": points_read,
        "points_lost": expected_runs * points - points_read, "runs_short": short_runs,
        "runs_per_s": len(finished) / seconds if seconds > 0 else 0.0,
        "points_per_s": points_read / seconds if seconds > 0 else 0.0,
        "errors": errors[:5], "error_count": len(errors),
    }


def measure(workers: int = WORKERS, runs: int = RUNS, points: int = POINTS,
            backend_store_uri: str | None = None, server_workers: int | None = None,
            timeout: float = TIMEOUT_S, url: str | None = None) -> dict[str, Any]:
    """Start a server (unless ``url`` names one), load it, stop it; the counts and rates."""
    if url is not None:
        return load(url, workers, runs, points, timeout)
    backend_store_uri = backend_store_uri or os.environ.get("DLPRACTICE_BACKEND_STORE_URI")
    with tempfile.TemporaryDirectory(prefix="dlpractice-bench-load-") as tmp:
        backend = backend_store_uri or f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        with running_server(Path(tmp) / "server.log", backend_store_uri=backend,
                            artifacts_destination=Path(tmp) / "mlartifacts",
                            workers=server_workers) as server:
            result = load(server.url, workers, runs, points, timeout)
        result["backend"] = redact(backend).split("://", 1)[0].split("+", 1)[0]
        return result


def rows_from(result: dict[str, Any]) -> list[dict]:
    """Rows ``{name, value, target, ok}`` like the other benchmarks."""
    shape = (f"{result['workers']}x{result['runs_per_worker']}x{result['points_per_run']}, "
             f"{result['backend'] or 'server'}")
    return [
        {"name": f"load ({shape}) runs lost", "value": result["runs_lost"], "target": 0,
         "ok": result["runs_lost"] == 0},
        {"name": f"load ({shape}) points lost", "value": result["points_lost"], "target": 0,
         "ok": result["points_lost"] == 0 and result["runs_short"] == 0},
        {"name": f"load ({shape}) runs/s", "value": result["runs_per_s"], "target": None,
         "ok": True},
        {"name": f"load ({shape}) points/s", "value": result["points_per_s"], "target": None,
         "ok": True},
    ]


def run(workers: int = WORKERS, runs: int = RUNS, points: int = POINTS,
        backend_store_uri: str | None = None, server_workers: int | None = None) -> list[dict]:
    """The benchmark's rows (see :func:`rows_from`), for the benchmark suite."""
    return rows_from(measure(workers, runs, points, backend_store_uri, server_workers))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_load", description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=WORKERS, help="writer processes")
    p.add_argument("--runs", type=int, default=RUNS, help="runs per writer")
    p.add_argument("--points", type=int, default=POINTS, help="metric points per run")
    p.add_argument("--backend-store-uri", default=None, metavar="URI",
                   help="server backend (default: a fresh SQLite file); a password belongs in "
                        "$DLPRACTICE_BACKEND_STORE_URI, not here")
    p.add_argument("--server-workers", type=int, default=None, help="uvicorn workers of the server")
    p.add_argument("--timeout", type=float, default=TIMEOUT_S, help="deadline for the writers (s)")
    args = p.parse_args(argv)
    result = measure(args.workers, args.runs, args.points, args.backend_store_uri,
                     args.server_workers, args.timeout)
    print(f"{result['workers']} writers x {result['runs_per_worker']} runs x "
          f"{result['points_per_run']} points against a {result['backend']} server: "
          f"{result['seconds']:.1f} s")
    print(f"runs: {result['runs_finished']}/{result['runs_expected']} finished "
          f"({result['runs_lost']} lost), points: {result['points_read']}/"
          f"{result['points_expected']} ({result['points_lost']} lost)")
    print(f"{result['runs_per_s']:.1f} runs/s, {result['points_per_s']:.0f} points/s")
    if result["error_count"]:
        print(f"{result['error_count']} client errors, e.g. {result['errors'][0]}", file=sys.stderr)
    ok = all(r["ok"] for r in rows_from(result))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
