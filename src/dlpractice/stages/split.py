"""Stage ``split``: load or generate ``data.*`` and split it into train/dev/test.

Outs: ``data/split/{train,dev,test}.npz`` (X (n, m), Y (1, m)) and ``data/split/meta.json`` (the
data's fingerprint, the split sizes, the number of features).
"""

from __future__ import annotations

import sys

from dlpractice import pipeline
from dlpractice.config import Config
from dlpractice.stages import SPLIT_DIR, SPLIT_META
from dlpractice.stages._io import Outputs, save_splits, stage_main


def run(cfg: Config, out: Outputs) -> None:
    """Load or generate the data and split it into train/dev/test."""
    prepared = pipeline.prepare_data(cfg)
    save_splits(out, SPLIT_DIR, prepared.splits)
    sizes = prepared.splits.sizes()
    out.json(SPLIT_META, {
        "dataset": cfg.data.name,
        "fingerprint": prepared.fingerprint,
        "n_features": prepared.n_features,
        "sizes": sizes,
        "seed": cfg.seed,
    })
    print(f"split: {cfg.data.name} ({prepared.fingerprint[:12]}): "
          + ", ".join(f"{k} {v}" for k, v in sizes.items()))


main = stage_main(run, "split")

if __name__ == "__main__":
    sys.exit(main())
