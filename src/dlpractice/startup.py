"""What an entry point does before its work: load the big libraries it will use (MLflow,
matplotlib) once, with Python's cyclic collector paused, then freeze what they made out of its
sight (public ``gc`` calls): they live as long as the process, and without this the collector walks
their objects again and again. Only entry points call it (a notebook's objects are left alone);
worker processes forked afterwards inherit the imports.
"""

from __future__ import annotations

import gc
import importlib
import sys

MLFLOW = ("mlflow.tracking", "mlflow.entities", "mlflow.store.tracking.sqlalchemy_store",
          "mlflow.pyfunc")
MATPLOTLIB = ("matplotlib.figure", "matplotlib.backends.backend_agg")


def import_kept(*modules: str) -> None:
    """Import ``modules`` without collector passes, then freeze every object alive."""
    if all(m in sys.modules for m in modules):
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        for module in modules:
            importlib.import_module(module)
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
