"""The README's Python API examples run as written and print (or plot) the right numbers."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import reference as ref

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# The basic recipe's first advice for each diagnosis (the lecture's order: bias first).
FIRST_ADVICE = {"high_bias": "bigger network", "high_bias_high_variance": "bigger network",
                "high_variance": "more data", "good_fit": "done"}


def test_readme_python_api_example_prints_what_it_computed(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    example = next(b for b in blocks if "load_dataset" in b)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3, lines

    splits, result = namespace["splits"], namespace["result"]
    train_acc = ref.accuracy(result.parameters, splits.X_train, splits.Y_train)
    dev_acc = ref.accuracy(result.parameters, splits.X_dev, splits.Y_dev)
    costs = [float(c) for c in re.findall(r"[-+]?\d+\.\d+(?:e[-+]?\d+)?",
                                          lines[0].split("]")[0])]
    assert len(costs) == 6  # every 500 of 3000 iterations
    assert lines[0].split("]")[1].split() == [repr(train_acc), repr(dev_acc)]
    assert costs == result.costs and costs[0] > costs[-1]
    # training went on after the last record: the final parameters' cost is lower still
    assert ref.cost(result.parameters, splits.X_train, splits.Y_train, lambd=0.1) < costs[-1]

    label, _, _ = ref.diagnosis(1 - train_acc, 1 - dev_acc)
    assert lines[1].startswith(FIRST_ADVICE[label]), (label, lines[1])
    assert lines[2].startswith("gradient check passed: difference "), lines[2]
    difference = float(lines[2].split("difference ")[1].split()[0].rstrip(",;"))
    assert 0 <= difference < 2e-7


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:FigureCanvasAgg is non-interactive:UserWarning")
def test_readme_results_example_plots_the_sweeps_dev_error_against_lambd(tmp_path, monkeypatch):
    """The README's sweep, run for real (shorter), then its notebook lines as written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    text = README.read_text()
    sweep = re.search(r"`python -m dlpractice\.experiment (-m regularizer=l2 [^`]*)`", text)
    assert sweep is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "dlpractice.experiment", *sweep.group(1).split(),
         "train.iterations=300", "data.n_samples=200", f"hydra.sweep.dir={tmp_path}/sweep"],
        cwd=ROOT, env={**env, "MLFLOW_TRACKING_URI": uri}, capture_output=True, text=True,
        timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]

    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    example = next(b for b in blocks if "dlpractice.results" in b)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # the default store of the notebook
    plt.close("all")
    exec(compile(example, "README.md", "exec"), {})
    axes = plt.gca()
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("dlpractice")
    children = [r for r in client.search_runs([exp.experiment_id])
                if "mlflow.parentRunId" in r.data.tags]
    by_lambd = sorted((float(r.data.params["regularizer.lambd"]), r) for r in children)
    assert [lambd for lambd, _ in by_lambd] == [0.01, 0.1, 1.0]
    lines = {line.get_label(): line for line in axes.get_lines()}
    assert sorted(lines) == ["dev", "train"]
    for label in ("train", "dev"):
        assert list(lines[label].get_xdata()) == [0.01, 0.1, 1.0]
        assert list(lines[label].get_ydata()) == [r.data.metrics[f"{label}_error"]
                                                  for _, r in by_lambd]
    assert axes.get_xscale() == "log"
    plt.close("all")
