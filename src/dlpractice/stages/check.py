"""Stage ``check``: every value of ``params.yaml`` validated before any other stage runs.

DVC removes a stage's outputs before it runs the stage's command, so a bad value that a later stage
refused would cost that stage's files (``dvc exp run -S regularizer.keep_prob=1.5`` left ``models/``
empty). This stage depends on every param and runs first; its one out, kept while it runs
(``persist``), never changes, so it re-runs no other stage.
"""

from __future__ import annotations

import sys

from dlpractice.config import Config
from dlpractice.stages import PARAMS_CHECK
from dlpractice.stages._io import Outputs, stage_main


def run(cfg: Config, out: Outputs) -> None:
    """Validate params.yaml (the stage's main does: every key, value, data file and the memory)."""
    out.json(PARAMS_CHECK, {"params": "valid"})


main = stage_main(run, "check")

if __name__ == "__main__":
    sys.exit(main())
