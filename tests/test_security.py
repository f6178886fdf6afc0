"""Security defaults: nothing listens beyond loopback, arrays are loaded without pickle, YAML is
loaded safely, and values that look like secrets never reach MLflow as params or tags."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dlpractice import config, tracking
from dlpractice.errors import DataError

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(ROOT / "src").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")])
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _calls(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


# -- listening --------------------------------------------------------------------------------------


def test_make_ui_binds_loopback_only():
    makefile = (ROOT / "Makefile").read_text()
    assert "0.0.0.0" not in makefile
    recipe = re.search(r"^ui:.*?\n((?:\t.*\n?)+)", makefile, re.M)
    assert recipe, "no `ui` target"
    hosts = re.findall(r"--host[ =](\S+)", recipe.group(1))
    assert hosts and set(hosts) <= LOOPBACK, hosts
    for target in re.finditer(r"^(\w+):.*?\n((?:\t.*\n?)+)", makefile, re.M):
        for host in re.findall(r"--host[ =](\S+)", target.group(2)):
            assert host in LOOPBACK or host.startswith("$("), (target.group(1), host)


@pytest.mark.skipif(not (ROOT / "src/dlpractice/server.py").is_file(),
                    reason="no dlpractice.server module")
def test_the_server_binds_loopback_by_default(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DLPRACTICE_"))}
    env["DLPRACTICE_BACKEND_STORE_URI"] = f"sqlite:///{tmp_path}/mlflow.db"
    help_text = subprocess.run([sys.executable, "-m", "dlpractice.server", "--help"], cwd=ROOT,
                               env=env, capture_output=True, text=True, timeout=120, check=True)
    assert "127.0.0.1" in help_text.stdout
    dry = subprocess.run([sys.executable, "-m", "dlpractice.server", "--dry-run"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120, check=True)
    hosts = re.findall(r"--host (\S+)", dry.stdout)
    assert hosts == ["127.0.0.1"], dry.stdout
    assert not (tmp_path / "mlflow.db").exists()  # a dry run prepares nothing


# -- numpy: no pickle -------------------------------------------------------------------------------


def test_every_np_load_passes_allow_pickle_false():
    found = []
    for path in SOURCES:
        for call in _calls(path):
            if _dotted(call.func) not in ("np.load", "numpy.load"):
                continue
            kw = {k.arg: k.value for k in call.keywords}
            ok = isinstance(kw.get("allow_pickle"), ast.Constant) and kw["allow_pickle"].value is False
            found.append((f"{path.relative_to(ROOT)}:{call.lineno}", ok))
    assert found, "no np.load call found: the scan is broken"
    assert [where for where, ok in found if not ok] == []


def _pickled_parameters(path: Path) -> Path:
    np.savez(path, W1=np.array([{"evil": 1}, {"evil": 2}], dtype=object), b1=np.zeros((2, 1)))
    return path


def test_a_pickled_parameters_file_is_refused_with_one_line(tmp_path):
    from dlpractice import report
    from dlpractice.stages._io import load_npz

    path = _pickled_parameters(tmp_path / "parameters.npz")
    with pytest.raises(DataError) as err:
        load_npz(path)
    assert len(str(err.value).splitlines()) == 1 and "allow_pickle" in str(err.value)
    with pytest.raises(ValueError, match="allow_pickle"):
        report.load_parameters(path)


def test_a_stage_given_pickled_parameters_fails_with_one_line(tmp_path):
    """The gradcheck stage reads models/parameters.npz: a pickled one stops it, one line."""
    import yaml

    from dlpractice.stages._io import save_npz

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    rng = np.random.default_rng(0)
    for name in ("train", "dev", "test"):
        (tmp_path / "data/normalized").mkdir(parents=True, exist_ok=True)
        save_npz(tmp_path / f"data/normalized/{name}.npz",
                 {"X": rng.normal(size=(2, 8)), "Y": (np.arange(8) % 2).reshape(1, 8) * 1.0})
    (tmp_path / "models").mkdir()
    _pickled_parameters(tmp_path / "models/init_parameters.npz")
    _pickled_parameters(tmp_path / "models/parameters.npz")
    proc = subprocess.run([sys.executable, "-m", "dlpractice.stages.gradcheck"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "allow_pickle" in lines[0], proc.stderr
    assert not (tmp_path / "reports").exists()


# -- YAML: safe loading only --------------------------------------------------------------------------


def test_yaml_is_loaded_safely_everywhere():
    unsafe = []
    for path in [*SOURCES, *(ROOT / "tests").rglob("*.py")]:
        for call in _calls(path):
            name = _dotted(call.func)
            where = f"{path.relative_to(ROOT)}:{call.lineno}"
            if name in ("yaml.unsafe_load", "yaml.full_load", "yaml.unsafe_load_all",
                        "yaml.full_load_all"):
                unsafe.append(where)
            elif name in ("yaml.load", "yaml.load_all"):
                loader = {k.arg: k.value for k in call.keywords}.get("Loader")
                if loader is None and len(call.args) > 1:
                    loader = call.args[1]
                if _dotted(loader) not in ("yaml.SafeLoader", "yaml.CSafeLoader", "SafeLoader",
                                           "CSafeLoader"):
                    unsafe.append(where)
    text = "\n".join(p.read_text(encoding="utf-8") for p in SOURCES)
    assert "yaml.Loader" not in text and "UnsafeLoader" not in text
    assert unsafe == []


# -- secrets never logged ------------------------------------------------------------------------------


SECRETS = {
    "train": {"learning_rate": 0.01, "keep_prob": 0.8},
    "tracking": {"password": "pw-VALUE", "api_token": "tok-VALUE", "secret": "sec-VALUE",
                 "aws_secret_access_key": "aws-VALUE", "apiKey": "key-VALUE",
                 "uri": "http://alice:uri-VALUE@127.0.0.1:5000"},
    "db": {"credentials": {"user": "bob"}, "keys": ["k-VALUE"]},
}


def test_secret_keys_are_not_params(tmp_path):
    """A config carrying credentials (e.g. from a plugin): the run logs none of them."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = config.load({"tracking": {"uri": uri, "experiment": "secrets"}})
    cfg.to_dict = lambda: SECRETS
    with tracking.RunTracker(cfg, tracking.Store(uri)) as tracker:
        pass
    params = MlflowClient(uri).get_run(tracker.run_id).data.params
    assert params == {"train.learning_rate": "0.01", "train.keep_prob": "0.8",  # keep is not key
                      "tracking.uri": "http://alice:***@127.0.0.1:5000"}


def test_a_tracked_run_logs_no_secret(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = config.load({"train": {"iterations": 10}, "data": {"n_samples": 40},
                       "tracking": {"uri": uri, "experiment": "secrets"}})
    tags = {"api_token": "tok-VALUE", "password": "pw-VALUE", "client_secret": "sec-VALUE",
            "note": "kept", "endpoint": "https://bob:uri-VALUE@example.org/x"}
    with tracking.RunTracker(cfg, tracking.Store(uri), tags=tags) as tracker:
        pass
    run = MlflowClient(uri).get_run(tracker.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["note"] == "kept"
    assert run.data.tags["endpoint"] == "https://bob:***@example.org/x"
    logged = {**run.data.params, **run.data.tags}
    assert not {"api_token", "password", "client_secret"} & set(logged)
    assert "VALUE" not in repr(logged)
