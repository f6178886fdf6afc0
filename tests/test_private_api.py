"""src/ touches no private part of CPython, Hydra, OmegaConf or MLflow outside the two adapters
(src/dlpractice/hydra_compat.py, src/dlpractice/tracking/mlflow_compat.py), and the adapters still
fit the installed versions."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ADAPTERS = {SRC / "dlpractice" / "hydra_compat.py", SRC / "dlpractice" / "tracking" / "mlflow_compat.py"}
LIBRARIES = {"hydra", "omegaconf", "mlflow", *sys.stdlib_module_names}
REPLACEABLE = {"hydra", "omegaconf", "mlflow"}  # never replaced but in an adapter (sys.argv may be)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def violations(source: str) -> list[str]:
    """Each private use in ``source``: ``lib._name`` through a module imported from one of the
    libraries, ``from lib._x import`` / ``from lib import _x``, ``getattr(obj, "_x")`` and
    ``__globals__``."""
    tree = ast.parse(source)
    modules: dict[str, str] = {}  # local name -> library module
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in LIBRARIES:
                    modules[alias.asname or alias.name.split(".")[0]] = alias.name
                    if any(_private(part) for part in alias.name.split(".")):
                        found.append(f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in LIBRARIES:
                if any(_private(part) for part in node.module.split(".")):
                    found.append(f"from {node.module} import ...")
                for alias in node.names:
                    if _private(alias.name):
                        found.append(f"from {node.module} import {alias.name}")
                    else:
                        modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            for target in (node.targets if isinstance(node, (ast.Assign, ast.Delete))
                           else [node.target]):
                if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                        and modules.get(target.value.id, "").split(".")[0] in REPLACEABLE):
                    found.append(f"{target.value.id}.{target.attr} replaced")
        if isinstance(node, ast.Attribute):
            if node.attr == "__globals__":
                found.append("__globals__")
            elif (_private(node.attr) and isinstance(node.value, ast.Name)
                  and node.value.id in modules):
                found.append(f"{node.value.id}.{node.attr}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr") and len(node.args) > 1
              and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
              and _private(node.args[1].value)):
            found.append(f"{node.func.id}(..., {node.args[1].value!r})")
    return found


@pytest.mark.parametrize("snippet, expected", [
    ("import os\nos._exit(0)", ["os._exit"]),
    ("import threading\nthreading._shutdown()", ["threading._shutdown"]),
    ("import atexit as a\na._run_exitfuncs()", ["a._run_exitfuncs"]),
    ("from hydra._internal.utils import get_args_parser", ["from hydra._internal.utils import ..."]),
    ("from mlflow.utils import request_utils\nrequest_utils._cached_get_request_session",
     ["request_utils._cached_get_request_session"]),
    ("from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore\n"
     "SqlAlchemyStore._engine_map", ["SqlAlchemyStore._engine_map"]),
    ("x = getattr(store, '_engine_map', {})", ["getattr(..., '_engine_map')"]),
    ("f = task.__globals__", ["__globals__"]),
    ("from omegaconf import OmegaConf\nOmegaConf._copy_cache", ["OmegaConf._copy_cache"]),
    # a library's own function replaced (monkeypatched), public name or not
    ("from mlflow.utils import environment\nenvironment.check = f", ["environment.check replaced"]),
    ("import mlflow.utils.environment as e\ndel e.check", ["e.check replaced"]),
    ("import sys\nsys.argv = ['x']", []),
    # not private: dunders, our own objects' attributes, public names
    ("import os\nos.environ\nself._x = 1\nobj.__class__", []),
    ("from dataclasses import dataclass\nclass A:\n    _b = 1\nA._b", []),
])
def test_the_check_finds_private_uses(snippet, expected):
    assert violations(snippet) == expected


def test_src_uses_no_private_api_outside_the_adapters():
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        if path in ADAPTERS:
            continue
        uses = violations(path.read_text(encoding="utf-8"))
        if uses:
            found[str(path.relative_to(SRC))] = uses
    assert found == {}


def test_the_adapter_fits_the_installed_hydra_and_omegaconf():
    """Fails when Hydra or OmegaConf change: update hydra_compat.py (and its version guard)."""
    import hydra
    import omegaconf
    from hydra._internal.config_loader_impl import get_overrides_dirname
    from hydra._internal.utils import get_args_parser

    from dlpractice import hydra_compat

    assert hydra_compat.supported(), (hydra.__version__, omegaconf.__version__)
    parser = get_args_parser()
    args = parser.parse_args(["-m", "a=1", "b=2"])
    assert args.multirun is True and args.overrides == ["a=1", "b=2"]
    assert callable(get_overrides_dirname)
    assert callable(omegaconf.OmegaConf.copy_cache)


def test_the_adapter_fits_the_installed_mlflow(tmp_path, monkeypatch):
    """Fails when MLflow changes: saving a model must still check its pip requirements through
    ``mlflow.utils.environment.warn_dependency_requirement_mismatches``, looked up when it runs,
    which :func:`requirements_trusted` replaces (and puts back) while our model is saved."""
    import mlflow
    import mlflow.pyfunc
    from mlflow.utils import environment

    from dlpractice.tracking import mlflow_compat
    from dlpractice.tracking.models import requirements

    assert mlflow_compat.supported(), mlflow.__version__
    checked: list[list[str]] = []
    monkeypatch.setattr(environment, "warn_dependency_requirement_mismatches", checked.append)

    class Constant(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input: list[str]) -> list[str]:
            return model_input

    pinned = list(requirements())
    mlflow.pyfunc.save_model(tmp_path / "checked", python_model=Constant(), pip_requirements=pinned)
    assert checked == [pinned]  # MLflow's save path runs the check we skip
    with mlflow_compat.requirements_trusted():
        assert environment.warn_dependency_requirement_mismatches is not checked.append
        mlflow.pyfunc.save_model(tmp_path / "trusted", python_model=Constant(),
                                 pip_requirements=pinned)
    assert checked == [pinned]  # not run again within
    assert environment.warn_dependency_requirement_mismatches == checked.append  # put back
    for name in ("checked", "trusted"):  # the same requirements either way
        assert (tmp_path / name / "requirements.txt").read_text().split() == pinned
