"""A run's MLflow model and the model registry: :func:`log_model` packs a trained network as the
run's ``model`` (a LoggedModel linked to the run, python-function flavor from ``pyfunc_model.py``),
:func:`register_model` makes a run's model a new version of a registered model and moves an alias.

Owns the model's name, signature, input example and pinned requirements. Must not write a run's
files: the model holds copies of the caller's ``parameters.npz`` and ``normalizer.npz``.
"""

from __future__ import annotations

import contextlib
import logging
import re
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlpractice.errors import DlpracticeError
from dlpractice.tracking.metadata import tag_text
from dlpractice.tracking.mlflow_compat import requirements_trusted

if TYPE_CHECKING:
    import numpy as np
    from mlflow.tracking import MlflowClient

    from dlpractice.tracking.store import Store

__all__ = ["DEFAULT_ALIAS", "MODEL_CODE", "MODEL_NAME", "feature_names", "log_model", "model_uri",
           "register_model"]

MODEL_NAME = "model"  # runs:/<run id>/model
DEFAULT_ALIAS = "champion"  # models:/<name>@champion
MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")
EXAMPLE_ROWS = 3  # the input example: the first training examples, raw


def model_uri(name: str, alias: str = DEFAULT_ALIAS) -> str:
    """``models:/<name>@<alias>``: what ``mlflow.pyfunc.load_model`` takes for the version of
    registered model ``name`` that ``alias`` points at."""
    return f"models:/{name}@{alias}"


def feature_names(n_features: int) -> list[str]:
    """The model's input columns: ``x1 … xn``."""
    return [f"x{i}" for i in range(1, n_features + 1)]


@lru_cache(maxsize=1)
def requirements() -> tuple[str, ...]:
    """What serving the model needs, pinned to this environment (nothing is inferred)."""
    import mlflow
    import numpy
    import pandas

    return (f"mlflow=={mlflow.__version__}", f"numpy=={numpy.__version__}",
            f"pandas=={pandas.__version__}")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """What saving a model prints every time, left out of a run's output: MLflow's INFO lines and
    pandas 3's deprecation warning about MLflow's own input-example code."""
    log = logging.getLogger("mlflow")
    level = log.level
    log.setLevel(max(level, logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Operation with range is deprecated")
            yield
    finally:
        log.setLevel(level)


def log_model(client: MlflowClient, experiment_id: str, run_id: str, *, parameters: str | Path,
              normalizer: str | Path | None, hidden_activation: str, example: np.ndarray,
              params: Mapping[str, str] | None = None) -> str:
    """Log run ``run_id``'s model ``model`` (loadable as ``runs:/<run id>/model``): the network of
    ``parameters`` (``W1, b1, …``) behind the input normalization of ``normalizer`` (``mean``,
    ``std``; None: the run did not normalize), ``example`` (raw features, one example per row) as
    its input example. The LoggedModel carries ``params`` and ends READY (FAILED if packing it
    raised). Returns its model id."""
    import mlflow.pyfunc
    import numpy as np
    import pandas as pd
    from mlflow.entities import LoggedModelOutput
    from mlflow.models import Model, ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    from dlpractice.nn.activations import LEAKY_SLOPE

    example = np.asarray(example, dtype=np.float64)
    n_features = example.shape[1]
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float64), (-1, n_features))]),
        outputs=Schema([ColSpec("double", "probability"), ColSpec("long", "label")]))
    artifacts = {"parameters": str(parameters)}
    if normalizer is not None:
        artifacts["normalizer"] = str(normalizer)
    model = client.create_logged_model(experiment_id, name=MODEL_NAME, source_run_id=run_id,
                                       params=dict(params or {}))
    try:
        # requirements_trusted: they are this environment's own versions (see requirements())
        with (tempfile.TemporaryDirectory(prefix="dlpractice-model-") as tmp, _quiet(),
              requirements_trusted()):
            path = Path(tmp) / MODEL_NAME
            mlflow.pyfunc.save_model(
                path, python_model=str(MODEL_CODE), artifacts=artifacts,
                model_config={"hidden_activation": hidden_activation, "leaky_slope": LEAKY_SLOPE},
                signature=signature,
                input_example=pd.DataFrame(example[:EXAMPLE_ROWS],
                                           columns=feature_names(n_features)),
                pip_requirements=list(requirements()),
                mlflow_model=Model(artifact_path=model.artifact_location, run_id=run_id,
                                   model_id=model.model_id, model_uuid=model.model_id))
            client.log_model_artifacts(model.model_id, str(path))
        client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
    except BaseException:
        with contextlib.suppress(Exception):
            client.finalize_logged_model(model.model_id, "FAILED")
        raise
    client.finalize_logged_model(model.model_id, "READY")
    return model.model_id


def run_model_id(client: MlflowClient, run_id: str) -> str | None:
    """The id of run ``run_id``'s READY model ``model`` (the latest, if it logged several)."""
    from mlflow.entities import LoggedModelStatus

    experiment_id = client.get_run(run_id).info.experiment_id
    # newest first; the status is checked here (a filter on it matches nothing in SQL stores)
    found = client.search_logged_models(
        [experiment_id], filter_string=f"name = '{MODEL_NAME}' AND source_run_id = '{run_id}'",
        order_by=[{"field_name": "creation_time", "ascending": False}])
    return next((m.model_id for m in found if m.status == LoggedModelStatus.READY), None)


def register_model(store: Store, run_id: str, name: str, alias: str = DEFAULT_ALIAS) -> str:
    """Register run ``run_id``'s model as a version of registered model ``name`` (created if
    missing; a model registered before keeps its version) and point ``alias`` at it:
    ``models:/<name>@<alias>`` loads it. Returns the version.
    A run without a model, an unknown run or a name MLflow refuses: one-line
    :class:`DlpracticeError`."""
    if not re.fullmatch(r"[0-9A-Za-z_-]+", str(run_id)):
        raise DlpracticeError(f"run id {run_id!r} is not an MLflow run id (letters, digits, "
                              "'-' and '_')")
    if not str(name).strip():
        raise DlpracticeError("a registered model needs a name: got an empty one")
    from mlflow.exceptions import MlflowException

    store.prepare()
    client = store.client
    try:
        model_id = run_model_id(client, run_id)
    except MlflowException as exc:
        raise DlpracticeError(f"cannot find MLflow run {run_id} in {store.uri}: "
                              f"{tag_text(exc)}") from None
    if model_id is None:
        raise DlpracticeError(f"MLflow run {run_id} has no model {MODEL_NAME!r} to register (a "
                              "run logged before runs had models: run it again with "
                              "tracking.rerun=true)")
    version = created = None
    try:
        _ensure_registered_model(client, name)
        # The model's own location, not models:/<id>: MLflow 3.17's SQL registry resolves that
        # through the process's global tracking URI, which need not be this store's.
        source = client.get_logged_model(model_id).artifact_location
        version = _version_of(client, name, run_id, source)  # a re-run sweep's same choice
        if version is None:
            version = created = client.create_model_version(name, source=source, run_id=run_id,
                                                            model_id=model_id)
        client.set_registered_model_alias(name, alias, version.version)
    except MlflowException as exc:
        if created is not None:  # an alias MLflow refuses: no new version without it
            with contextlib.suppress(MlflowException):
                client.delete_model_version(name, version.version)
        raise DlpracticeError(f"cannot register the model of MLflow run {run_id} as {name!r} "
                              f"(alias {alias!r}): {tag_text(exc)}") from None
    return str(version.version)


def _version_of(client: MlflowClient, name: str, run_id: str, source: str) -> Any:
    """The version of registered model ``name`` that already holds run ``run_id``'s model at
    ``source`` (None: none does), so registering it again adds no copy."""
    # by run id alone (checked above): a name may hold a quote that a filter string cannot
    found = client.search_model_versions(f"run_id = '{run_id}'")
    return min((v for v in found if v.name == name and v.source == source),
               key=lambda v: int(v.version), default=None)


def _ensure_registered_model(client: MlflowClient, name: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
        return client.get_registered_model(name)
