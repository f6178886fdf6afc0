"""Tracking overhead per run: what recording a run costs on top of running it.

The default config with ``tracking.uri`` on a warm SQLite store in a temporary folder; per repeat,
in one process: (a) ``pipeline.run_all(cfg)``; (b) ``report.write_run_outputs`` (files, plots) and
one ``tracking.RunTracker`` run (datasets, history, the run's model, outcome, upload) on one
``tracking.Store``; side by side, (b) without the model. Reported: the medians of (a) and (b) in
seconds, (b)'s target ≤ 0.3 s and share, the datasets' own time (``log_outcome`` logs them in both
variants), what the datasets and the model add together ((b) − (b) without the model + the
datasets' time; target ≤ 0.15 s), (b)'s ratio to (b) without the model; the process's first model
apart (MLflow scans the installed packages once per process).
``python -m benchmarks.bench_tracking [--repeats N]`` from the repository root.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 0.3
EXTRA_TARGET_SECONDS = 0.15  # the datasets and the model together
REPEATS = 7


def measure(repeats: int = REPEATS) -> dict[str, float]:
    """Median seconds of (a) ``run_all``, (b) writing the outputs + logging the run with its
    datasets and model, (b) without the model, and the datasets and the model alone."""
    from dlpractice import config, pipeline, report, tracking

    with tempfile.TemporaryDirectory(prefix="dlpractice-bench-tracking-") as tmp:
        folder = Path(tmp)
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        cfg = config.load({"tracking": {"uri": uri}})
        store = tracking.Store(uri)
        store.prepare()
        store.experiment_id(cfg.tracking.experiment)

        def once(k: int, new: bool) -> tuple[float, float, float, float]:
            start = time.perf_counter()
            outcome = pipeline.run_all(cfg)
            middle = time.perf_counter()
            artifacts = report.write_run_outputs(outcome, folder / f"run-{k}-{new}")
            with tracking.RunTracker(cfg, store) as t:
                before = time.perf_counter()
                t.log_datasets(outcome.data)
                datasets = time.perf_counter() - before
                t.log_history(outcome.result)
                logging_model = time.perf_counter()
                if new:
                    t.log_model(outcome, artifacts)
                logged_model = time.perf_counter()
                t.log_outcome(outcome)
                t.upload(artifacts)
            end = time.perf_counter()
            return middle - start, end - middle, datasets, logged_model - logging_model

        first_model = once(-1, True)[3]  # warm-up: the first model pays MLflow's start-up
        once(-1, False)
        runs, tracks, bare, sets, models = [], [], [], [], []
        for k in range(repeats):
            for new in (True, False) if k % 2 == 0 else (False, True):  # A/B in turn
                a, b, d, m = once(k, new)
                runs.append(a)
                (tracks if new else bare).append(b)
                sets.append(d)
                if new:
                    models.append(m)
    a, b, without = statistics.median(runs), statistics.median(tracks), statistics.median(bare)
    return {"run_all": a, "tracking": b, "share": b / (a + b),
            "tracking_min": min(tracks), "tracking_max": max(tracks),
            "without": without, "extra": b - without + statistics.median(sets),
            "datasets": statistics.median(sets),
            "model": statistics.median(models), "ratio": b / without, "first_model": first_model}


def rows_from(m: dict[str, float]) -> list[dict]:
    return [
        {"name": "run_all s (default config, 10000 it.)", "value": m["run_all"], "target": None,
         "ok": True},
        {"name": "tracking s per run (outputs + MLflow run + model)", "value": m["tracking"],
         "target": f"<= {TARGET_SECONDS:g}", "ok": m["tracking"] <= TARGET_SECONDS},
        {"name": "tracking share of the run", "value": m["share"], "target": None, "ok": True},
        {"name": "tracking s per run without the model", "value": m["without"],
         "target": None, "ok": True},
        {"name": "datasets + model s per run", "value": m["extra"],
         "target": f"<= {EXTRA_TARGET_SECONDS:g}", "ok": m["extra"] <= EXTRA_TARGET_SECONDS},
        {"name": "datasets s per run (log_datasets)", "value": m["datasets"], "target": None,
         "ok": True},
        {"name": "model s per run (log_model)", "value": m["model"], "target": None, "ok": True},
        {"name": "tracking with / without the model", "value": m["ratio"],
         "target": None, "ok": True},
        {"name": "model s, the process's first", "value": m["first_model"], "target": None,
         "ok": True},
    ]


def run(repeats: int = REPEATS) -> list[dict]:
    """The benchmark's rows ``{name, value, target, ok}``, for the benchmark suite."""
    return rows_from(measure(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args()
    m = measure(args.repeats)
    print(f"default config, warm SQLite store; median of {args.repeats} repeats after a warm-up "
          f"(tracking min {m['tracking_min']:.3f} s, max {m['tracking_max']:.3f} s)")
    print(f"{'measure':<52} {'value':>9}  {'target':>7}  ok")
    for row in rows_from(m):
        name = row["name"]
        value = (f"{row['value']:.1%}" if "share" in name else
                 f"{row['value']:.3f}x" if "/" in name else f"{row['value']:.3f}")
        print(f"{name:<52} {value:>9}  {row['target'] or '':>7}  "
              f"{'yes' if row['ok'] else 'NO'}")


if __name__ == "__main__":
    main()
