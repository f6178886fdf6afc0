"""Tracking overhead per run: what recording a run costs on top of running it.

The default config with ``tracking.uri`` on a warm SQLite store in a temporary folder; per repeat,
in one process: (a) ``pipeline.run_all(cfg)``; (b) ``report.write_run_outputs`` (files, plots) and
one ``tracking.RunTracker`` run (datasets, history, outcome, upload) on one ``tracking.Store``.
Reported: the medians of (a) and (b) in seconds, (b)'s target ≤ 0.3 s, (b)'s share, and the part
of (b) that logs the run's datasets (``log_datasets``: digests and inputs; target ≤ 0.03 s).
``python -m benchmarks.bench_tracking [--repeats N]`` from the repository root.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 0.3
DATASETS_TARGET_SECONDS = 0.03
REPEATS = 7


def measure(repeats: int = REPEATS) -> dict[str, float]:
    """Median seconds of (a) ``run_all``, (b) writing the outputs + logging the run and (b)'s
    dataset logging."""
    from dlpractice import config, pipeline, report, tracking

    with tempfile.TemporaryDirectory(prefix="dlpractice-bench-tracking-") as tmp:
        folder = Path(tmp)
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        cfg = config.load({"tracking": {"uri": uri}})
        store = tracking.Store(uri)
        store.prepare()
        store.experiment_id(cfg.tracking.experiment)

        def once(k: int) -> tuple[float, float, float]:
            start = time.perf_counter()
            outcome = pipeline.run_all(cfg)
            middle = time.perf_counter()
            artifacts = report.write_run_outputs(outcome, folder / f"run-{k}")
            with tracking.RunTracker(cfg, store) as t:
                before = time.perf_counter()
                t.log_datasets(outcome.data)
                datasets = time.perf_counter() - before
                t.log_history(outcome.result)
                t.log_outcome(outcome)
                t.upload(artifacts)
            end = time.perf_counter()
            return middle - start, end - middle, datasets

        once(-1)  # warm-up
        runs, tracks, datasets = [], [], []
        for k in range(repeats):
            a, b, d = once(k)
            runs.append(a)
            tracks.append(b)
            datasets.append(d)
    a, b = statistics.median(runs), statistics.median(tracks)
    return {"run_all": a, "tracking": b, "share": b / (a + b),
            "tracking_min": min(tracks), "tracking_max": max(tracks),
            "datasets": statistics.median(datasets)}


def rows_from(m: dict[str, float]) -> list[dict]:
    return [
        {"name": "run_all s (default config, 10000 it.)", "value": m["run_all"], "target": None,
         "ok": True},
        {"name": "tracking s per run (outputs + MLflow run)", "value": m["tracking"],
         "target": f"<= {TARGET_SECONDS:g}", "ok": m["tracking"] <= TARGET_SECONDS},
        {"name": "tracking share of the run", "value": m["share"], "target": None, "ok": True},
        {"name": "datasets s per run (part of tracking)", "value": m["datasets"],
         "target": f"<= {DATASETS_TARGET_SECONDS:g}", "ok": m["datasets"] <= DATASETS_TARGET_SECONDS},
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
    print(f"{'measure':<44} {'value':>9}  {'target':>7}  ok")
    for row in rows_from(m):
        value = f"{row['value']:.1%}" if "share" in row["name"] else f"{row['value']:.3f}"
        print(f"{row['name']:<44} {value:>9}  {row['target'] or '':>7}  "
              f"{'yes' if row['ok'] else 'NO'}")


if __name__ == "__main__":
    main()
