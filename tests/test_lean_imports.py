"""The pure core and the light stages import only what they use (fast to start, notebook-friendly)."""

import subprocess
import sys

import pytest

HEAVY = ("mlflow", "matplotlib", "hydra", "dvc", "pandas", "omegaconf")


@pytest.mark.parametrize("module,forbidden", [
    ("dlpractice.nn", HEAVY + ("sklearn",)),
    ("dlpractice.gradcheck", HEAVY + ("sklearn",)),
    ("dlpractice.diagnose", HEAVY + ("sklearn",)),
    ("dlpractice.data", HEAVY + ("sklearn",)),
    ("dlpractice.pipeline", HEAVY + ("sklearn",)),
    ("dlpractice.stages.split", ("mlflow", "matplotlib", "hydra", "dvc")),
    ("dlpractice.stages.normalize", ("mlflow", "matplotlib", "hydra", "dvc")),
    ("dlpractice.tracking", ("mlflow", "matplotlib")),
    ("dlpractice", HEAVY + ("sklearn", "numpy")),  # dlpractice.results loads them when called
])
def test_module_imports_nothing_heavy(module, forbidden):
    code = (f"import sys, {module}\n"
            f"print(','.join(m for m in {forbidden!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "", f"{module} imports {out}"
