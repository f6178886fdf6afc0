"""Peak memory of the training stage next to a bare ``python -c "import numpy"``.

In a temporary folder: ``params.yaml`` from ``python -m dlpractice.params -o``, the ``split`` and
``normalize`` stages, then the measured ``python -m dlpractice.stages.train``, each under a fresh
wrapper that prints ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` (only that child counts).
Reported: both peaks in MiB and their ratio (a reading, no target).
``python -m benchmarks.bench_memory`` from the repository root.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

WRAPPER = (
    "import resource, subprocess, sys\n"
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)
# ru_maxrss is in KiB on Linux, in bytes on macOS
_TO_MIB = 1 / (1024 * 1024) if sys.platform == "darwin" else 1 / 1024


def peak_rss_mib(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Peak resident set size (MiB) of ``cmd`` run alone under a fresh wrapper process."""
    proc = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], cwd=cwd, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return int(proc.stdout.strip().splitlines()[-1]) * _TO_MIB


def measure() -> dict[str, float]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DVC_", "MLFLOW_", "DLPRACTICE_"))}
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="dlpractice-bench-memory-") as tmp:
        folder = Path(tmp)
        subprocess.run([py, "-m", "dlpractice.params", "-o", str(folder / "params.yaml")],
                       check=True, cwd=folder, env=env, capture_output=True)
        for stage in ("split", "normalize"):
            subprocess.run([py, "-m", f"dlpractice.stages.{stage}"], check=True, cwd=folder,
                           env=env, capture_output=True)
        train = peak_rss_mib([py, "-m", "dlpractice.stages.train"], folder, env)
        numpy = peak_rss_mib([py, "-c", "import numpy"], folder, env)
    return {"train": train, "numpy": numpy, "ratio": train / numpy}


def rows_from(m: dict[str, float]) -> list[dict]:
    return [
        {"name": "train stage peak RSS MiB", "value": m["train"], "target": None, "ok": True},
        {"name": "python -c 'import numpy' peak RSS MiB", "value": m["numpy"], "target": None,
         "ok": True},
        {"name": "train stage / bare numpy peak RSS", "value": m["ratio"], "target": None,
         "ok": True},
    ]


def run() -> list[dict]:
    """The benchmark's rows ``{name, value, target, ok}``, for the benchmark suite."""
    return rows_from(measure())


def main() -> None:
    print("peak RSS of `python -m dlpractice.stages.train` (default params.yaml) vs a bare "
          "`python -c \"import numpy\"`, each the only child of a fresh wrapper")
    print(f"{'measure':<40} {'value':>9}")
    for row in rows_from(measure()):
        unit = "x" if "/" in row["name"] else ""
        print(f"{row['name']:<40} {row['value']:>8.1f}{unit}")


if __name__ == "__main__":
    main()
