"""Study helpers: a setting that fails still leaves a row the compare stage can read."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_diverging_setting_is_recorded_with_its_config(tmp_path):
    run_dir = tmp_path / "random"
    proc = subprocess.run(
        [sys.executable, "-m", "dlpractice.studies", "run", str(run_dir), "--record-failure", "--",
         "experiment=vanishing_gradients", "init=random", "init.scale=10",
         "train.learning_rate=1e100", "tracking.enabled=false"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "diverged" in summary["error"]
    assert summary["config"]["init"]["name"] == "random"
    assert summary["config"]["study"] == "vanishing_gradients"


def test_show_prints_every_study_table_and_ui_links(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "dlpractice.studies", "show"], cwd=ROOT, capture_output=True,
        text=True, timeout=120, check=False,
        env={**__import__("os").environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/m.db"},
    )
    assert proc.returncode == 0, proc.stderr
    for study in ("initialization", "regularization", "gradient_checking"):
        assert f"## {study}" in proc.stdout
        assert f"{study}" in proc.stdout.split("Browse the runs")[1]
    assert "make ui" in proc.stdout and "/#/experiments/" in proc.stdout
