"""A scratch copy of the project for real DVC runs (the tests and the repro benchmark share it).

What is not copied: version control, environments, caches and every output of a pipeline, so the
copy reproduces from a clean cache. Its environment puts this interpreter's bin first (stage
commands say ``python``), points MLflow at the given store and drops the caller's DVC/MLflow state.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

SKIP_NAMES = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", "mlruns",
              "mlartifacts", "outputs", "multirun", "dvc_plots", ".stage-tmp", "dvc.lock"}
SKIP_PATTERNS = ("mlflow.db*", "*.egg-info")
SKIP_PATHS = {".dvc/cache", ".dvc/tmp", "data/split", "data/normalized", "models", "reports"}


def ignore(folder: str, names: list[str]) -> set[str]:
    """``shutil.copytree``'s ``ignore``: the names below ``folder`` that the copy leaves out."""
    rel = Path(folder).resolve().relative_to(ROOT)
    skipped = set()
    for name in names:
        path = (rel / name).as_posix()
        if (name in SKIP_NAMES or any(fnmatch.fnmatch(name, p) for p in SKIP_PATTERNS)
                or path in SKIP_PATHS or fnmatch.fnmatch(path, "pipelines/*/results")):
            skipped.add(name)
    return skipped


def copy_project(dest: Path) -> Path:
    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)
    return dest


def environment(root: Path, tracking_uri: str, who: str = "scratch") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DVC_", "MLFLOW_", "DLPRACTICE_"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(root / "src"),
        MLFLOW_TRACKING_URI=tracking_uri,
        DVC_NO_ANALYTICS="1",
        GIT_AUTHOR_NAME=who, GIT_AUTHOR_EMAIL=f"{who}@example.com",
        GIT_COMMITTER_NAME=who, GIT_COMMITTER_EMAIL=f"{who}@example.com",
    )
    return env
