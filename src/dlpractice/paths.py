"""The project's folders: the one rule that finds the project root.

Owns ``project_root``; imports nothing but the standard library (every entry point may use it).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["project_root"]


def project_root() -> Path:
    """The first folder, from the cwd up, holding both ``dvc.yaml`` and ``conf/``; else the
    repository folder of this source tree (an editable install run from elsewhere)."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file() and (folder / "conf").is_dir():
            return folder
    return Path(__file__).resolve().parents[2]
