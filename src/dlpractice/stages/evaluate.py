"""Stage ``evaluate``: accuracies on train/dev/test, the bias/variance diagnosis, the plots, and — when
``tracking.enabled`` — ONE MLflow run holding the history, metrics, tags and artifacts of the whole
pipeline.

Metrics ``reports/metrics.json`` (train/dev/test accuracy and error, avoidable_bias, variance,
gradcheck_difference, diagnosis); ``reports/diagnosis.json`` (the diagnosis with its
recommendations); plots ``reports/plots/*.png``. Inside ``dvc exp run`` the MLflow run is tagged
with the DVC experiment's name (``dvc_experiment``) and baseline commit.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from dlpractice import config, pipeline, report
from dlpractice.config import Config
from dlpractice.data import NormStats
from dlpractice.nn import Network, TrainResult
from dlpractice.stages import (
    DIAGNOSIS,
    GRAD_NORMS,
    GRADCHECK,
    HISTORY,
    INIT_PARAMETERS,
    METRICS,
    NORM_STATS,
    NORMALIZED_DIR,
    PARAMETERS,
    PLOTS_DIR,
    SPLIT_DIR,
    SPLIT_META,
    TRAIN_METRICS,
)
from dlpractice.stages._io import (
    Outputs,
    load_npz,
    load_splits,
    read_csv,
    read_json,
    stage_main,
)

# DVC sets these in every stage's environment (the experiment ones inside `dvc exp run`).
DVC_TAG_ENV = {
    "dvc_experiment": "DVC_EXP_NAME",
    "dvc_baseline_rev": "DVC_EXP_BASELINE_REV",
    "dvc_stage": "DVC_STAGE",
    "dvc_root": "DVC_ROOT",
}


def _float(value: str | None) -> float:
    return float(value) if value not in (None, "") else math.nan


def load_train_result(cfg: Config, parameters: dict[str, np.ndarray]) -> TrainResult:
    """The train stage's :class:`TrainResult`, rebuilt from its files."""
    history = read_csv(HISTORY)
    tm = read_json(TRAIN_METRICS)
    by_iteration: dict[int, dict[str, float]] = {}
    for r in read_csv(GRAD_NORMS):
        by_iteration.setdefault(int(r["iteration"]), {})[r["layer"]] = _float(r["grad_norm"])
    layers = len(parameters) // 2
    return TrainResult(
        parameters=parameters,
        network=Network.from_parameters(parameters, cfg.model.activation),
        iterations=[int(r["iteration"]) for r in history],
        costs=[_float(r["cost"]) for r in history],
        dev_costs=[_float(r["dev_cost"]) for r in history if r.get("dev_cost") not in (None, "")],
        grad_norms=[[norms.get(f"W{l}", math.nan) for l in range(1, layers + 1)]
                    for norms in by_iteration.values()],
        final_cost=math.nan if tm.get("final_cost") is None else float(tm["final_cost"]),
        iterations_run=int(tm.get("iterations_run", 0)),
        best_iteration=tm.get("best_iteration"),
        stopped_early=bool(tm.get("stopped_early", False)),
        train_seconds=float(tm.get("train_seconds", 0.0)),
    )


def load_gradcheck(cfg: Config, data: dict[str, Any]) -> pipeline.GradcheckReport | None:
    """The gradcheck stage's report, rebuilt from ``reports/gradcheck.json`` (None: disabled)."""
    from dlpractice.gradcheck import GradientCheckResult

    if data.get("gradcheck_difference") is None:
        return None
    g = cfg.gradcheck

    def side(key: str) -> GradientCheckResult:
        d = data.get(key) or {}
        return GradientCheckResult(
            difference=float(d.get("difference", math.nan)), passed=bool(d.get("passed")),
            threshold=float(data.get("threshold", g.threshold)),
            epsilon=float(data.get("epsilon", g.epsilon)),
            per_array={k: float(v) for k, v in (d.get("per_array") or {}).items()},
            method=str(data.get("method", g.method)),
            kinks=int(d.get("kinks", 0)),
            kink_arrays={k: int(v) for k, v in (d.get("kink_arrays") or {}).items()},
            checked=int(d.get("checked", 0)),
        )

    return pipeline.GradcheckReport(side("at_init"), side("at_trained"),
                                    note=str(data.get("note", "")))


def dvc_tags() -> dict[str, str]:
    tags = {"runner": "dvc"}
    tags.update({tag: os.environ[env] for tag, env in DVC_TAG_ENV.items() if os.environ.get(env)})
    return tags


def write_plots(out: Outputs, outcome: pipeline.Outcome) -> dict[str, Path]:
    """The run's figures into ``reports/plots/`` (staged paths, by name)."""
    from dlpractice import plots

    result, splits, cfg = outcome.result, outcome.splits, outcome.cfg
    files = {
        "cost_curve": plots.cost_curve(result, out.path(PLOTS_DIR / "cost_curve.png")),
        "grad_norms": plots.grad_norms(result, out.path(PLOTS_DIR / "grad_norms.png")),
        "weights": plots.weight_histograms(result.parameters,
                                           out.path(PLOTS_DIR / "weight_histograms.png")),
    }
    if splits.X_train.shape[0] == 2:
        boundary = plots.decision_boundary(
            result.parameters, splits.X_train, splits.Y_train, cfg.model.activation,
            out.path(PLOTS_DIR / "decision_boundary.png"), title=config.run_name(cfg),
        )
        if boundary is not None:
            files["decision_boundary"] = boundary
    return files


def run(cfg: Config, out: Outputs) -> None:
    """Evaluate the trained network, diagnose bias/variance, plot, and record the MLflow run."""
    meta = read_json(SPLIT_META)
    raw = load_splits(SPLIT_DIR)
    splits = load_splits(NORMALIZED_DIR)
    stats_d = read_json(NORM_STATS)
    stats = NormStats.from_dict(stats_d) if stats_d.get("normalized") else None
    parameters = load_npz(PARAMETERS)
    result = load_train_result(cfg, parameters)
    gc = read_json(GRADCHECK)
    gradcheck = load_gradcheck(cfg, gc)

    evaluation = pipeline.evaluate(cfg, splits, parameters)
    outcome = pipeline.Outcome(
        cfg=cfg, data=pipeline.PreparedData(raw, str(meta.get("fingerprint", ""))),
        splits=splits, stats=stats, init_parameters=load_npz(INIT_PARAMETERS), result=result,
        gradcheck=gradcheck,
        evaluation=evaluation,
    )
    diag = evaluation.diagnosis
    metrics: dict[str, Any] = {
        **evaluation.metrics(),
        "gradcheck_difference": gc.get("gradcheck_difference"),
        "gradcheck_passed": gc.get("passed"),
        "diagnosis": diag.label,
    }
    artifacts = {"metrics": out.json(METRICS, metrics)}
    artifacts["diagnosis"] = out.json(DIAGNOSIS, {
        "setting": config.run_name(cfg), **diag.to_dict(), "recommendation": diag.recommendation,
    })
    artifacts.update(write_plots(out, outcome))
    for name, path in (("parameters", PARAMETERS), ("history", HISTORY),
                       ("grad_norms_csv", GRAD_NORMS), ("gradcheck", GRADCHECK)):
        artifacts[name] = Path(path)

    row: dict[str, Any] = {"setting": config.run_name(cfg), "status": "finished",
                           **report.outcome_row(outcome)}
    if cfg.tracking.enabled:
        import tempfile

        from dlpractice import tracking

        store = tracking.Store(tracking.resolve_uri(cfg.tracking.uri))
        # config.yaml and normalizer.npz are artifacts of the run, not DVC outs: staged aside.
        with tempfile.TemporaryDirectory(prefix="dlpractice-evaluate-") as tmp, \
                tracking.RunTracker(cfg, store, tags=dvc_tags()) as tracker:
            tracker.log_history(result)
            tracker.log_outcome(outcome)
            artifacts["config"] = report.save_config(cfg, Path(tmp) / "config.yaml")
            if stats is not None:
                artifacts["normalizer"] = report.save_normalizer(stats, Path(tmp) / "normalizer.npz")
            tracker.upload(artifacts)
            row["run_id"] = tracker.run_id
    print(report.format_row(row))


main = stage_main(run, "evaluate")

if __name__ == "__main__":
    sys.exit(main())
