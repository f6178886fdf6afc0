"""Stage ``train``: gradient descent from the configured initialization on the normalized train
split (the dev split feeds the dev-cost history and early stopping).

Outs: ``models/parameters.npz`` (trained) and ``models/init_parameters.npz`` (where training started;
the gradient check runs at both); metrics ``models/train_metrics.json`` (train_seconds, final_cost,
iterations_run, ...); plots ``models/history.csv`` (iteration, cost, dev_cost) and
``models/grad_norms.csv`` (iteration, layer, ‖dWl‖). A progress bar shows on a terminal only.
"""

from __future__ import annotations

import sys

from dlpractice import pipeline, report
from dlpractice.config import Config
from dlpractice.stages import (
    GRAD_NORMS,
    HISTORY,
    INIT_PARAMETERS,
    NORMALIZED_DIR,
    PARAMETERS,
    TRAIN_METRICS,
    TRAIN_RESULT,
)
from dlpractice.stages._io import Outputs, load_splits, stage_main


def run(cfg: Config, out: Outputs) -> None:
    """Train the network and write its parameters, cost history and gradient norms."""
    splits = load_splits(NORMALIZED_DIR)
    tc = pipeline.train_config(cfg, splits.X_train.shape[0])
    init = pipeline.initial_parameters(tc)
    progress = report.progress_bar(cfg.train.iterations)
    try:
        result = pipeline.fit(cfg, splits, lambda i, cost, dev_cost: progress(i, cost))
    finally:
        progress.close()

    out.npz(PARAMETERS, result.parameters)
    out.npz(INIT_PARAMETERS, init)
    dev = list(result.dev_costs)
    out.csv(HISTORY, ["iteration", "cost", "dev_cost"],
            ([it, cost, dev[k] if k < len(dev) else None]
             for k, (it, cost) in enumerate(zip(result.iterations, result.costs, strict=True))))
    # long format (one row per iteration and layer): one plot fits any depth (dvc.yaml: per_layer)
    out.csv(GRAD_NORMS, ["iteration", "layer", "grad_norm"],
            ([it, f"W{l}", norm] for it, norms in zip(result.iterations, result.grad_norms,
                                                      strict=True)
             for l, norm in enumerate(norms, start=1)))
    out.json(TRAIN_RESULT, result.to_dict())
    out.json(TRAIN_METRICS, {
        "final_cost": result.final_cost,
        "iterations_run": result.iterations_run,
        "train_seconds": result.train_seconds,
        "stopped_early": result.stopped_early,
        "best_iteration": result.best_iteration,
        "best_dev_cost": result.best_dev_cost,
    })
    print(f"train: {result.iterations_run} iterations in {result.train_seconds:.2f} s, "
          f"final cost {result.final_cost:.6g}")


main = stage_main(run, "train")

if __name__ == "__main__":
    sys.exit(main())
