"""src/ touches no private part of CPython, Hydra, OmegaConf or MLflow outside the one adapter
(src/dlpractice/hydra_compat.py), and the adapter still fits the installed versions."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ADAPTER = SRC / "dlpractice" / "hydra_compat.py"
LIBRARIES = {"hydra", "omegaconf", "mlflow", *sys.stdlib_module_names}


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
    # not private: dunders, our own objects' attributes, public names
    ("import os\nos.environ\nself._x = 1\nobj.__class__", []),
    ("from dataclasses import dataclass\nclass A:\n    _b = 1\nA._b", []),
])
def test_the_check_finds_private_uses(snippet, expected):
    assert violations(snippet) == expected


def test_src_uses_no_private_api_outside_the_adapter():
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        if path == ADAPTER:
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
