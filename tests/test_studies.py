"""Study helpers: a setting that fails still leaves a row the compare stage can read; `show`
prints every study's table and the address of its runs."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ("initialization", "regularization", "gradient_checking", "vanishing_gradients",
           "input_normalization")


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
    assert summary["status"] == "failed"
    assert re.fullmatch(r"training diverged at iteration \d+: non-finite values \(nan/inf\) in "
                        r"layer \d+; lower train.learning_rate or use a smaller init scale",
                        summary["error"]), summary["error"]
    assert proc.stdout.strip() == f"random: recorded as failed ({summary['error']})"
    assert summary["config"]["init"] == {"name": "random", "scale": 10.0}
    assert summary["config"]["train"]["learning_rate"] == 1e100
    assert summary["config"]["study"] == "vanishing_gradients"


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
def test_show_prints_every_study_table_and_ui_links(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/m.db"
    proc = subprocess.run(
        [sys.executable, "-m", "dlpractice.studies", "show"], cwd=ROOT, capture_output=True,
        text=True, timeout=120, check=False, env={**os.environ, "MLFLOW_TRACKING_URI": uri},
    )
    assert proc.returncode == 0, proc.stderr
    tables, links = proc.stdout.split("Browse the runs in the MLflow UI: make ui")
    for study in STUDIES:
        table = ROOT / "pipelines" / study / "results" / "table.md"
        shown = table.read_text() if table.is_file() else (
            f"(no table yet: dvc repro pipelines/{study}/dvc.yaml)\n")
        assert f"\n## {study}\n\n{shown}\n" in tables
    client = MlflowClient(uri)
    expected = [f"  {study:<22} http://127.0.0.1:5000/#/experiments/"
                f"{client.get_experiment_by_name(study).experiment_id}/runs" for study in STUDIES]
    assert links.strip().splitlines()[1:] == expected
