"""MLflow tracking — the only package that imports MLflow, lazily (importing it stays cheap).

:class:`Store` (:mod:`.store`): one tracking store (:class:`Stores`: a process's, by URI).
:class:`RunTracker` (:mod:`.runs`): one run per configuration, with its datasets (:mod:`.datasets`).
:func:`start_sweep_run` / :func:`finish_sweep_run` (:mod:`.sweeps`): a sweep's parent run;
:func:`mark_selected`: the job it chose; :func:`close_lost_job_runs`: a killed job's open runs.
:func:`close_abandoned_runs` (:mod:`.owners`): runs whose process is gone. :func:`register_model`
(:mod:`.models`): a run's model as a registered version, aliased (:func:`model_uri` loads it).
:mod:`.results`: an experiment's runs as a DataFrame (``dlpractice.results``). Uploads what a run
produced and reads it back; never draws, formats a table or writes a run's files.
"""

from dlpractice.tracking.models import model_uri, register_model
from dlpractice.tracking.owners import close_abandoned_runs, owner_tags
from dlpractice.tracking.runs import RunTracker
from dlpractice.tracking.store import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    Store,
    Stores,
    resolve_uri,
)
from dlpractice.tracking.sweeps import (
    close_lost_job_runs,
    earlier_test_of_selected,
    finish_sweep_run,
    mark_selected,
    start_sweep_run,
)

__all__ = ["EXPERIMENT_KIND", "EXPERIMENT_KIND_TAG", "RunTracker", "Store", "Stores",
           "close_abandoned_runs", "close_lost_job_runs", "earlier_test_of_selected",
           "finish_sweep_run", "mark_selected", "model_uri", "owner_tags", "register_model",
           "resolve_uri", "start_sweep_run"]
