"""Stage ``evaluate``: accuracies on train/dev/test, the bias/variance diagnosis, the plots, and — when
``tracking.enabled`` — ONE MLflow run holding the history, metrics, tags and artifacts of the whole
pipeline (with ``tracking.register=true``, its model becomes ``models:/<experiment>@champion``).

Metrics ``reports/metrics.json`` (train/dev/test accuracy and error, avoidable_bias, variance,
diagnosis, gradcheck_difference, gradcheck_passed: `dvc exp show`'s first columns, in this order);
``reports/diagnosis.json`` (the diagnosis with its recommendations); plots ``reports/plots/*.png``.
Inside ``dvc exp run`` the MLflow run is tagged with the DVC experiment's name (``dvc_experiment``)
and baseline commit.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from dlpractice import config, pipeline, report
from dlpractice.config import Config
from dlpractice.data import NormStats
from dlpractice.nn import TrainResult
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
    REPORTS_DIR,
    SPLIT_DIR,
    SPLIT_META,
    TRAIN_RESULT,
)
from dlpractice.stages._io import (
    Outputs,
    load_npz,
    load_splits,
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


def dvc_tags() -> dict[str, str]:
    tags = {"runner": "dvc"}
    tags.update({tag: os.environ[env] for tag, env in DVC_TAG_ENV.items() if os.environ.get(env)})
    return tags


def run(cfg: Config, out: Outputs) -> None:
    """Evaluate the trained network, diagnose bias/variance, plot, and record the MLflow run."""
    from dlpractice import startup

    startup.import_kept(*startup.MATPLOTLIB, *(startup.MLFLOW if cfg.tracking.enabled else ()))
    meta = read_json(SPLIT_META)
    raw = load_splits(SPLIT_DIR)
    splits = load_splits(NORMALIZED_DIR)
    stats_d = read_json(NORM_STATS)
    stats = NormStats.from_dict(stats_d) if stats_d.get("normalized") else None
    parameters = load_npz(PARAMETERS)
    result = TrainResult.from_dict(read_json(TRAIN_RESULT), parameters)
    gc = read_json(GRADCHECK)
    gradcheck = (pipeline.GradcheckReport.from_dict(gc)
                 if gc.get("gradcheck_difference") is not None else None)  # None: disabled

    evaluation = pipeline.evaluate(cfg, splits, parameters)
    outcome = pipeline.Outcome(
        cfg=cfg, data=pipeline.PreparedData(raw, str(meta.get("fingerprint", ""))),
        splits=splits, stats=stats, init_parameters=load_npz(INIT_PARAMETERS), result=result,
        gradcheck=gradcheck,
        evaluation=evaluation,
    )
    diag = evaluation.diagnosis
    # `dvc exp show` orders its columns by this file's keys: what a user compares comes first
    metrics: dict[str, Any] = {
        **evaluation.metrics(),
        "diagnosis": diag.label,
        "gradcheck_difference": gc.get("gradcheck_difference"),
        "gradcheck_passed": gc.get("passed"),
    }
    artifacts = {"metrics": out.json(METRICS, metrics)}
    artifacts["diagnosis"] = out.json(DIAGNOSIS, {
        "setting": config.run_name(cfg), **diag.to_dict(), "recommendation": diag.recommendation,
    })
    artifacts.update(report.write_figures(outcome, lambda name: out.path(PLOTS_DIR / name)))
    for name, path in (("parameters", PARAMETERS), ("history", HISTORY),
                       ("grad_norms_csv", GRAD_NORMS), ("gradcheck", GRADCHECK)):
        artifacts[name] = Path(path)

    row: dict[str, Any] = {"setting": config.run_name(cfg), "status": "finished",
                           **report.outcome_row(outcome)}
    run_url = None
    if cfg.tracking.enabled:
        import tempfile

        from dlpractice import tracking

        store = tracking.Store(tracking.resolve_uri(cfg.tracking.uri))
        tracking.close_abandoned_runs(store, cfg.tracking.experiment, cfg.tracking.stale_after_s)
        # config.yaml and normalizer.npz are artifacts of the run, not DVC outs: staged aside.
        with tempfile.TemporaryDirectory(prefix="dlpractice-evaluate-") as tmp, \
                tracking.RunTracker(cfg, store, tags=dvc_tags()) as tracker:
            tracker.log_datasets(outcome.data)
            tracker.log_history(result)
            artifacts["config"] = report.save_config(cfg, Path(tmp) / "config.yaml")
            if stats is not None:
                artifacts["normalizer"] = report.save_normalizer(stats, Path(tmp) / "normalizer.npz")
            tracker.log_model(outcome, artifacts)
            tracker.log_outcome(outcome)
            tracker.upload(artifacts)
            row["run_id"] = tracker.run_id
            run_url = store.run_url(tracker.run_id, tracker.experiment_id)
        if cfg.tracking.register:  # a single run registers only when asked (default: no)
            name = cfg.tracking.experiment
            version = tracking.register_model(store, tracker.run_id, name)
            row["registered"] = f"{tracking.model_uri(name)} (version {version})"
    print(report.format_row(row))
    if row.get("registered"):
        print(f"registered: {row['registered']}")
    if run_url:
        print(f"run: {run_url}")
    print(folder_line((out.root / REPORTS_DIR).resolve()))


def folder_line(folder: Path) -> str:
    """Where the user finds the stage's outputs: ``folder``, unless it is in a DVC temporary
    workspace (``dvc exp run --temp`` or ``--queue``), which DVC removes when the experiment ends."""
    parts = folder.parts
    temporary = any(parts[i:i + 3] == (".dvc", "tmp", "exps") for i in range(len(parts)))
    if not temporary:
        return f"folder: {folder}"
    name = os.environ.get("DVC_EXP_NAME") or "<experiment>"
    return (f"folder: none kept (a DVC temporary workspace; `dvc exp apply {name}` brings the "
            "outputs into yours)")


main = stage_main(run, "evaluate")

if __name__ == "__main__":
    sys.exit(main())
