"""Stage ``normalize``: zero mean / unit variance fitted on train, applied to dev and test
(``data.normalize``; with ``false`` the splits pass through unchanged).

Outs: ``data/normalized/{train,dev,test}.npz`` and ``data/normalized/stats.json`` (per-feature mean
and std, or ``normalized: false``).
"""

from __future__ import annotations

import sys

from dlpractice import pipeline
from dlpractice.config import Config
from dlpractice.stages import NORM_STATS, NORMALIZED_DIR, SPLIT_DIR
from dlpractice.stages._io import Outputs, load_splits, save_splits, stage_main


def run(cfg: Config, out: Outputs) -> None:
    """Normalize the inputs with statistics fitted on the training split."""
    splits, stats = pipeline.normalize(cfg, load_splits(SPLIT_DIR))
    save_splits(out, NORMALIZED_DIR, splits)
    if stats is None:
        out.json(NORM_STATS, {"normalized": False, "mean": None, "std": None})
        print("normalize: data.normalize=false, splits unchanged")
    else:
        out.json(NORM_STATS, {"normalized": True, **stats.to_dict()})
        print("normalize: mean " + ", ".join(f"{v:.4g}" for v in stats.mean[:, 0])
              + "; std " + ", ".join(f"{v:.4g}" for v in stats.std[:, 0]))


main = stage_main(run, "normalize")

if __name__ == "__main__":
    sys.exit(main())
