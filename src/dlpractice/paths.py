"""The project's folders and files: the one rule that finds the project root, and the one lock
between processes on a file (a SQLite store's creation, a sweep's shared file).

Owns ``project_root`` and ``locked``; imports nothing but the standard library.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["locked", "project_root"]


def project_root() -> Path:
    """The first folder, from the cwd up, holding both ``dvc.yaml`` and ``conf/``; else the
    repository folder of this source tree (an editable install run from elsewhere)."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file() and (folder / "conf").is_dir():
            return folder
    return Path(__file__).resolve().parents[2]


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) against every other process."""
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
