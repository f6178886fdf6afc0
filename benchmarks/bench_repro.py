"""``dvc repro --all-pipelines`` end to end, from a clean cache, and a second no-op call.

In a temporary copy of the repository (working tree without .git, .venv, caches, DVC outs, lock
files, ``mlflow.db`` and ``pipelines/*/results``; made its own git repository so DVC works), with
``MLFLOW_TRACKING_URI`` on a temporary SQLite store and the venv's ``bin`` first on ``PATH`` (so the
stages' ``python`` is the venv's):

* wall seconds of ``dvc repro --all-pipelines`` (the root pipeline and every study);
* the share spent training: the sum of ``train_seconds`` over every MLflow run it logged (read back
  with ``mlflow.search_runs`` over all experiments), against everything else (process start-up,
  imports, data, gradient checks, plots, tracking, DVC's own work);
* wall seconds of a second ``dvc repro --all-pipelines`` with nothing changed (target < 5 s).

Both calls use ``--keep-going`` so that one failing stage does not hide the other pipelines' time;
the exit codes are a row of their own (target 0, 0). After a failure the second call is not a pure
no-op: it retries the failed stage.

Run ``python -m benchmarks.bench_repro`` from the repository root.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.scratch import BIN, ROOT, copy_project, environment

NOOP_TARGET = 5.0

def _run(cmd: list[str], root: Path, env: dict[str, str], timeout: float = 3600,
         check: bool = True) -> tuple[float, int]:
    """Wall seconds and exit code; a failure raises unless ``check`` is false (then its stage
    errors are printed)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        message = (f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout\n"
                   f"{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}")
        if check:
            raise RuntimeError(message)
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith(("ERROR", "error"))]
        print(f"  {' '.join(cmd[1:])} exited {proc.returncode}:", *errors, sep="\n    ",
              flush=True)
    return seconds, proc.returncode


def train_seconds(uri: str) -> tuple[float, int]:
    """Sum of ``train_seconds`` over every run in the store, and the number of runs."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(search_all_experiments=True, max_results=10000)
    if runs.empty:
        return 0.0, 0
    col = "metrics.train_seconds"
    total = float(runs[col].fillna(0.0).sum()) if col in runs else 0.0
    return total, len(runs)


def measure() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="dlpractice-bench-repro-") as tmp:
        root = Path(tmp) / "repo"
        copy_project(root)
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        env = environment(root, uri, who="bench")
        for cmd in (["git", "init", "-q"], ["git", "add", "-A"],  # DVC needs a git repository
                    ["git", "commit", "-q", "-m", "bench"]):
            _run(cmd, root, env)
        # --keep-going: a failing stage is reported (row "exit code") without hiding the rest
        repro = [str(BIN / "dvc"), "repro", "--all-pipelines", "--keep-going"]
        full, full_rc = _run(repro, root, env, check=False)
        noop, noop_rc = _run(repro, root, env, check=False)
        trained, n_runs = train_seconds(uri)
    return {"full": full, "noop": noop, "train": trained, "runs": n_runs,
            "full_rc": full_rc, "noop_rc": noop_rc}


def rows_from(m: dict[str, float]) -> list[dict]:
    outside = m["full"] - m["train"]
    return [
        {"name": "dvc repro exit codes (full, no-op)", "value": f"{m['full_rc']}, {m['noop_rc']}",
         "target": "0, 0", "ok": m["full_rc"] == m["noop_rc"] == 0},
        {"name": "dvc repro --all-pipelines s (clean cache)", "value": m["full"], "target": None,
         "ok": True},
        {"name": f"  training s (sum of train_seconds, {int(m['runs'])} runs)",
         "value": m["train"], "target": None, "ok": True},
        {"name": "  outside training s", "value": outside, "target": None, "ok": True},
        {"name": "  training share of the repro", "value": m["train"] / m["full"],
         "target": None, "ok": True},
        {"name": "dvc repro --all-pipelines s (no-op)", "value": m["noop"],
         "target": f"< {NOOP_TARGET:g}", "ok": m["noop"] < NOOP_TARGET},
    ]


def run() -> list[dict]:
    """The benchmark's rows ``{name, value, target, ok}``, for the benchmark suite."""
    return rows_from(measure())


def main() -> None:
    print(f"dvc repro --all-pipelines in a temporary copy of {ROOT}; {os.cpu_count()} CPUs",
          flush=True)
    rows = run()
    print(f"{'measure':<52} {'value':>9}  {'target':>7}  ok")
    for row in rows:
        value = row["value"]
        if not isinstance(value, str):
            value = f"{value:.1%}" if "share" in row["name"] else f"{value:.2f}"
        print(f"{row['name']:<52} {value:>9}  {row['target'] or '':>7}  "
              f"{'yes' if row['ok'] else 'NO'}")


if __name__ == "__main__":
    main()
