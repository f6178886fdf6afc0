"""The DVC pipeline's stages, one module each: ``python -m dlpractice.stages.<name>``.

``check`` → ``split`` → ``normalize`` → ``train`` → ``gradcheck`` → ``evaluate`` (see ``dvc.yaml``).
Each reads ``params.yaml`` in the working directory, calls its step of :mod:`dlpractice.pipeline`
and writes its outs; the paths below are the contract between them and ``dvc.yaml``.
"""

from pathlib import Path

SPLIT_DIR = Path("data/split")
NORMALIZED_DIR = Path("data/normalized")
MODELS_DIR = Path("models")
REPORTS_DIR = Path("reports")

SPLIT_META = SPLIT_DIR / "meta.json"
NORM_STATS = NORMALIZED_DIR / "stats.json"
PARAMETERS = MODELS_DIR / "parameters.npz"
INIT_PARAMETERS = MODELS_DIR / "init_parameters.npz"
TRAIN_METRICS = MODELS_DIR / "train_metrics.json"
TRAIN_RESULT = MODELS_DIR / "train_result.json"  # TrainResult.to_dict: what evaluate reads back
HISTORY = MODELS_DIR / "history.csv"
GRAD_NORMS = MODELS_DIR / "grad_norms.csv"
GRADCHECK = REPORTS_DIR / "gradcheck.json"
METRICS = REPORTS_DIR / "metrics.json"
DIAGNOSIS = REPORTS_DIR / "diagnosis.json"
PARAMS_CHECK = REPORTS_DIR / "params_check.json"  # ``check``'s marker: the stages run after it
PLOTS_DIR = REPORTS_DIR / "plots"

STAGES = ("check", "split", "normalize", "train", "gradcheck", "evaluate")
