"""Stage ``gradcheck``: compare backprop with finite differences, at the initial and at the trained
parameters, on a bounded, seeded batch of the normalized train split.

Prints the per-array report. When the check does not pass (and ``gradcheck.fail`` is true) the stage
exits 1 with a one-line error and writes nothing, so ``dvc repro`` stops here. Writes
``reports/gradcheck.json`` (gradcheck_difference, passed, per array at init and trained): detail, not
a DVC metric; evaluate reads it back and puts its difference and pass in ``reports/metrics.json``.
"""

from __future__ import annotations

import sys

from dlpractice import pipeline
from dlpractice.config import Config
from dlpractice.stages import GRADCHECK, INIT_PARAMETERS, NORMALIZED_DIR, PARAMETERS
from dlpractice.stages._io import Outputs, load_npz, load_splits, stage_main


def run(cfg: Config, out: Outputs) -> None:
    """Check the gradients of backprop at the initial and the trained parameters."""
    g = cfg.gradcheck
    if not g.enabled:
        out.json(GRADCHECK, {"gradcheck_difference": None, "passed": None, "enabled": False})
        print("gradcheck: disabled (gradcheck.enabled=false)")
        return
    splits = load_splits(NORMALIZED_DIR)
    rep = pipeline.check_gradients(cfg, splits, load_npz(INIT_PARAMETERS), load_npz(PARAMETERS))
    print(rep.report())
    pipeline.require_gradcheck(cfg, rep)  # raises: one line on stderr, exit 1, nothing written
    data = rep.to_dict()
    if not data["note"]:
        del data["note"]
    out.json(GRADCHECK, data)
    verdict = "passed" if rep.passed else "FAILED (gradcheck.fail=false: going on)"
    print(f"gradcheck: {verdict}, difference {rep.difference:.3g} "
          f"(threshold {g.threshold:g})")


main = stage_main(run, "gradcheck")

if __name__ == "__main__":
    sys.exit(main())
