"""The one adapter to a non-public part of MLflow 3; nothing else in src/ may touch one
(tests/test_private_api.py, which also fails when MLflow changes what this relies on). Guarded by
:func:`supported`: on other versions MLflow runs as it is.

- :func:`requirements_trusted`: save a model whose pip requirements are this environment's own
  versions without MLflow checking them against this environment. The check maps every installed
  distribution to its modules once per process, most of a process's first model's cost.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

MLFLOW_VERSIONS = ("3.",)


def supported() -> bool:
    """Is the installed MLflow the major version this adapter was written for?"""
    import mlflow

    return mlflow.__version__.startswith(MLFLOW_VERSIONS)


def _no_check(requirements: list[str]) -> None:
    """In place of MLflow's check: requirements pinned to the installed versions always match."""


@contextlib.contextmanager
def requirements_trusted() -> Iterator[None]:
    """Within: saving a model skips MLflow's check of its pip requirements against the installed
    packages (``mlflow.utils.environment.warn_dependency_requirement_mismatches``, which only
    warns). For requirements that :func:`~dlpractice.tracking.models.requirements` pinned here."""
    if not supported():
        yield
        return
    from mlflow.utils import environment

    check = environment.warn_dependency_requirement_mismatches
    environment.warn_dependency_requirement_mismatches = _no_check
    try:
        yield
    finally:
        environment.warn_dependency_requirement_mismatches = check
