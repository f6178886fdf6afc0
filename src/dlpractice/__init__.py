"""dlpractice: the practical experiments of deep learning, run, tracked and compared.

``import dlpractice`` loads nothing heavy: :func:`results` imports pandas and MLflow when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["results"]


def results(experiment: str, sweep_run_id: str | None = None,
            uri: str | None = None) -> pd.DataFrame:
    """The runs of MLflow experiment ``experiment`` as a DataFrame, one row per run (only the
    runs of sweep ``sweep_run_id`` when given): see :func:`dlpractice.tracking.results.results`."""
    from dlpractice.tracking.results import results as read_results

    return read_results(experiment, sweep_run_id=sweep_run_id, uri=uri)
