"""One MLflow run per configuration: :class:`RunTracker`.

Owns a run's params, histories (flushed during training), metrics, tags, upload and status, through
``MlflowClient`` with an explicit run id (no fluent "active run": safe in joblib workers and for
nested runs). Must not draw, format or write a run's files: it uploads what the caller wrote. Names
of params, metrics, tags and artifacts are promises to users' scripts.
"""

from __future__ import annotations

import atexit
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from dlpractice.errors import DlpracticeError
from dlpractice.tracking import metadata as md
from dlpractice.tracking import owners
from dlpractice.tracking.metadata import PARENT_RUN_TAG

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from dlpractice.config import Config
    from dlpractice.nn import TrainResult
    from dlpractice.pipeline import Outcome, PreparedData
    from dlpractice.tracking.datasets import RunDatasets
    from dlpractice.tracking.store import Store

__all__ = ["PARENT_RUN_TAG", "History", "RunTracker"]

_log = logging.getLogger(__package__)

AT_EXIT_REASON = "the process ended with the run still open"
TEST_HIDDEN_TAG = "test_hidden"  # a sweep's job that logged no test metrics (selection.hide_test)
HISTORY_FLUSH_S = 10.0  # the most training time a killed run's history can lose
DATASET_ATTEMPTS = 3  # log_inputs again when a concurrent job created the same dataset first


@dataclass
class History:
    """What the training callback saw: flushed every ``flush_every_s`` and at exit when
    ``log_history`` was never called."""

    iterations: list[int] = field(default_factory=list)
    costs: list[float] = field(default_factory=list)
    dev_costs: list[float] = field(default_factory=list)  # aligned with iterations when recorded

    def __len__(self) -> int:
        return len(self.iterations)


class RunTracker:
    """One MLflow run for one configuration, in ``store``::

        data = pipeline.prepare_data(cfg)
        with RunTracker(cfg, store) as tracker:
            tracker.log_datasets(data)
            outcome = pipeline.run_all(cfg, callback=tracker.callback, data=data)
            files = report.write_run_outputs(outcome, folder)
            tracker.log_history(outcome.result)
            tracker.log_model(outcome, files)
            tracker.log_outcome(outcome)
            tracker.upload(files)

    Exit: FINISHED without exception; KILLED on KeyboardInterrupt; FAILED otherwise with the tag
    ``failure_reason`` (one line). Exceptions propagate. A run still open when the process ends is
    closed KILLED. ``nested=True`` without ``parent_run_id`` makes the run a child of the
    innermost open tracker of the same store (or of an active fluent MLflow run). The run carries
    its owner's tags (:func:`~dlpractice.tracking.owners.owner_tags`); the callback's history is
    logged, with a heartbeat, every ``flush_every_s`` seconds (default ``HISTORY_FLUSH_S``).
    ``test_hidden=True``: a sweep's job that evaluated no test split, tagged ``test_hidden=true``
    and hashed apart (:func:`~dlpractice.config.config_hash`).
    """

    def __init__(
        self,
        cfg: Config,
        store: Store,
        *,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        nested: bool = False,
        flush_every_s: float | None = None,
        test_hidden: bool = False,
    ):
        from dlpractice.config import config_hash

        self.cfg = cfg
        self.store = store
        self.parent_run_id = parent_run_id
        self.extra_tags = dict(tags or {})
        self.nested = nested
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.test_hidden = test_hidden
        self.config_hash = config_hash(cfg, test_hidden=test_hidden)
        self.history = History()
        self.flush_every_s = HISTORY_FLUSH_S if flush_every_s is None else flush_every_s
        self.status: str | None = None
        self.model_id: str | None = None  # the run's LoggedModel, once logged
        self._flushed = 0  # history points logged so far
        self._next_flush = float("inf")  # set when the run opens
        self._history_logged = False
        self._client: MlflowClient | None = None
        self.datasets: RunDatasets | None = None  # set by log_datasets

    @property
    def uri(self) -> str:
        return self.store.uri

    # -- context manager ---------------------------------------------------------------------

    def __enter__(self) -> Self:
        from mlflow.entities import Param

        from dlpractice.config import run_name

        self.experiment_id = self.store.experiment_id(self.cfg.tracking.experiment)
        self._client = client = self.store.client
        parent = self.parent_run_id
        if parent is None and self.nested:
            parent = self._enclosing_run_id()
        run = client.create_run(self.experiment_id, run_name=run_name(self.cfg),
                                tags=self._start_tags(parent))
        self.run_id = run.info.run_id
        self.parent_run_id = parent
        self._next_flush = time.monotonic() + self.flush_every_s
        self.store.open_runs.append(self.run_id)
        atexit.register(self._close_at_exit)
        try:
            md.log_batch(client, self.run_id,
                         params=[Param(k, v) for k, v in md.params(self.cfg).items()])
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                self._finish("KILLED")
            else:
                self._finish("FAILED", reason=md.failure_reason(exc))
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            status, reason = "FINISHED", None
        elif isinstance(exc, KeyboardInterrupt):
            status, reason = "KILLED", None
        elif isinstance(exc, SystemExit) and exc.code in (None, 0):
            status, reason = "FINISHED", None
        else:
            status, reason = "FAILED", md.failure_reason(exc)
        self._finish(status, reason=reason, raise_errors=exc is None)

    def _close_at_exit(self) -> None:
        self._finish("KILLED", reason=AT_EXIT_REASON)

    def _finish(self, status: str, *, reason: str | None = None,
                raise_errors: bool = False) -> None:
        """Flush the buffered history, tag the failure, terminate the run — never twice."""
        if self.run_id is None or self.status is not None or self._client is None:
            return
        from mlflow.entities import RunTag

        client, run_id = self._client, self.run_id
        errors: list[BaseException] = []
        try:
            metrics = [] if self._history_logged else self._buffered_metrics()
            tags = [RunTag(md.FAILURE_REASON_TAG, reason)] if reason else []
            if metrics or tags:
                md.log_batch(client, run_id, metrics=metrics, tags=tags)
        except Exception as exc:
            errors.append(exc)
            _log.warning("could not log the end of MLflow run %s: %s", run_id, md.tag_text(exc))
        try:
            client.set_terminated(run_id, status=status)
        except Exception as exc:
            errors.append(exc)
            _log.warning("could not close MLflow run %s as %s: %s", run_id, status,
                         md.tag_text(exc))
        # Only now: an interrupt above leaves the run open for the exit handler to retry.
        self.status = status
        atexit.unregister(self._close_at_exit)
        if run_id in self.store.open_runs:
            self.store.open_runs.remove(run_id)
        if errors and raise_errors:
            raise DlpracticeError(f"MLflow run {run_id} in {self.uri} could not be closed "
                                  f"cleanly: {md.tag_text(errors[0])}")

    def _enclosing_run_id(self) -> str | None:
        if self.store.open_runs:
            return self.store.open_runs[-1]
        import mlflow

        active = mlflow.active_run()
        return active.info.run_id if active is not None else None

    def _start_tags(self, parent: str | None) -> dict[str, str]:
        tags: dict[str, str] = {"config_hash": self.config_hash, **md.common_tags(),
                                **owners.owner_tags(), **owners.heartbeat_tags()}
        if self.cfg.study:
            tags["study"] = str(self.cfg.study)
        if self.test_hidden:
            tags[TEST_HIDDEN_TAG] = "true"
        if parent:
            tags[PARENT_RUN_TAG] = parent
        tags.update(md.user_tags(self.extra_tags))
        return tags

    # -- training callback -------------------------------------------------------------------

    def callback(self, iteration: int, cost: float, dev_cost: float | None = None) -> None:
        """``train(..., callback=tracker.callback)``: buffers the history, logged every
        ``flush_every_s`` seconds (:meth:`flush_history`)."""
        self.history.iterations.append(int(iteration))
        self.history.costs.append(float(cost))
        if dev_cost is not None:
            self.history.dev_costs.append(float(dev_cost))
        if time.monotonic() >= self._next_flush:
            self.flush_history()

    def flush_history(self) -> None:
        """Log the history buffered since the last flush and the heartbeat tag, in one call. A
        store that fails here only warns: training goes on and the next flush tries again."""
        from mlflow.entities import RunTag

        client, run_id = self._require_open()
        heartbeat = [RunTag(k, v) for k, v in owners.heartbeat_tags().items()]
        try:
            md.log_batch(client, run_id, metrics=self._buffered_metrics(), tags=heartbeat)
        except Exception as exc:
            _log.warning("could not log the history of MLflow run %s yet: %s", run_id,
                         md.tag_text(exc))
        else:
            self._flushed = len(self.history)
        self._next_flush = time.monotonic() + self.flush_every_s

    def _buffered_metrics(self) -> list[Any]:
        """The history not logged yet."""
        h, ts, start = self.history, md.now_ms(), self._flushed
        metrics = md.metric_series("cost", h.iterations[start:], h.costs[start:], ts)
        if h.dev_costs:
            metrics += md.metric_series("dev_cost", h.iterations[start:], h.dev_costs[start:], ts)
        return metrics

    # -- logging -----------------------------------------------------------------------------

    def _require_open(self) -> tuple[MlflowClient, str]:
        if self._client is None or self.run_id is None or self.status is not None:
            raise RuntimeError("RunTracker is not open: use it as `with RunTracker(cfg, store) as t:`")
        return self._client, self.run_id

    def log_history(self, result: TrainResult) -> None:
        """``cost`` and ``dev_cost`` per recorded iteration (but the points the callback flushed
        already: its history is this result's), ``grad_norm_W1``, ``grad_norm_W2``, …,
        ``train_seconds``, ``final_cost``, ``iterations_run`` (and ``best_iteration``,
        ``best_dev_cost`` when early stopping restored weights): all in one batched call."""
        client, run_id = self._require_open()
        ts, done = md.now_ms(), self._flushed
        its = list(result.iterations)
        metrics = md.metric_series("cost", its[done:], result.costs[done:], ts)
        if result.dev_costs and len(result.dev_costs) == len(its):
            metrics += md.metric_series("dev_cost", its[done:], result.dev_costs[done:], ts)
        if result.grad_norms:
            for layer in range(len(result.grad_norms[0])):
                metrics += md.metric_series(f"grad_norm_W{layer + 1}", its,
                                            (row[layer] for row in result.grad_norms), ts)
        last = its[-1] if its else 0
        scalars = {"train_seconds": result.train_seconds, "final_cost": result.final_cost,
                   "iterations_run": result.iterations_run}
        if result.best_iteration is not None:
            scalars["best_iteration"] = result.best_iteration
        if result.best_dev_cost is not None:
            scalars["best_dev_cost"] = result.best_dev_cost
        metrics += [m for k, v in scalars.items() for m in md.metric_series(k, [last], [v], ts)]
        md.log_batch(client, run_id, metrics=metrics)
        self._history_logged = True

    def log_model(self, outcome: Outcome, files: Mapping[str, str | Path]) -> str:
        """The run's MLflow model ``model`` (``runs:/<run id>/model``; see
        :func:`~dlpractice.tracking.models.log_model`) from the files the caller wrote:
        ``files["parameters"]`` and, when the run normalized its inputs, ``files["normalizer"]``;
        its input example is the first raw training examples. Call it before :meth:`log_outcome`,
        whose metrics are then the model's too. Returns the model id."""
        from dlpractice.tracking import models

        client, run_id = self._require_open()
        if outcome.stats is not None and "normalizer" not in files:
            raise ValueError("the run normalized its inputs: files needs its 'normalizer'")
        self.model_id = models.log_model(
            client, str(self.experiment_id), run_id, parameters=files["parameters"],
            normalizer=files["normalizer"] if outcome.stats is not None else None,
            hidden_activation=outcome.cfg.model.activation,
            example=outcome.data.splits.X_train[:, :models.EXAMPLE_ROWS].T,
            params=md.params(self.cfg))
        return self.model_id

    def log_datasets(self, data: PreparedData) -> RunDatasets:
        """The run's train, dev and test sets as its dataset inputs (:class:`~.datasets.
        RunDatasets`), in one call, once per run (:meth:`log_outcome` calls it if not done)."""
        from mlflow.exceptions import MlflowException

        from dlpractice.tracking.datasets import RunDatasets

        client, run_id = self._require_open()
        if self.datasets is None:
            datasets = RunDatasets.of(self.cfg, data)
            for attempt in range(DATASET_ATTEMPTS):
                try:
                    client.log_inputs(run_id, datasets=datasets.inputs())
                    break
                except MlflowException:
                    # two jobs creating one dataset row at once: the loser's insert fails (and is
                    # rolled back); again, it finds the row the other one made
                    if attempt == DATASET_ATTEMPTS - 1:
                        raise
                    time.sleep(0.05 * (attempt + 1))
            self.datasets = datasets
        return self.datasets

    def log_outcome(self, outcome: Outcome) -> None:
        """The evaluation metrics (+ ``gradcheck_difference``) at step 0, each ``train_*``,
        ``dev_*``, ``test_*`` one linked to its dataset, attached to the run's model when
        :meth:`log_model` logged it (MLflow keeps the dataset links there), and the tags
        ``diagnosis``, ``recommendation``, ``dataset_fingerprint`` (+ ``gradcheck``: passed or
        failed), in one call (after :meth:`log_datasets`, if not done yet)."""
        from mlflow.entities import RunTag

        client, run_id = self._require_open()
        datasets = self.log_datasets(outcome.data)
        values = dict(outcome.evaluation.metrics())
        if outcome.gradcheck is not None:
            values["gradcheck_difference"] = outcome.gradcheck.difference
        metrics = datasets.metrics(values, md.now_ms(), model_id=self.model_id)
        diagnosis = outcome.evaluation.diagnosis
        tags = [RunTag("diagnosis", diagnosis.label),
                RunTag("recommendation", md.tag_text(diagnosis.recommendation)),
                RunTag("dataset_fingerprint", str(outcome.data.fingerprint))]
        if outcome.gradcheck is not None:
            tags.append(RunTag("gradcheck", "passed" if outcome.gradcheck.passed else "failed"))
        md.log_batch(client, run_id, metrics=metrics, tags=tags)

    def upload(self, files: Mapping[str, str | Path]) -> None:
        """The run's artifacts: ``files`` (label -> existing file or folder, e.g. what
        ``report.write_run_outputs`` returns) in one upload, each under its own name; a missing
        path is skipped with a warning. Creates no file of its own."""
        client, run_id = self._require_open()
        md.upload(client, run_id, files)
