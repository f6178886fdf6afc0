"""The hooks the ``vectorized`` Hydra launcher imports: the groups of a sweep's jobs that may stack
(foreseen from their configs, to deal them out to processes), the stacks of a process's own jobs
(its data prepared), training one, and a :class:`Session` per process (its jobs already finished,
the task function that finishes a job with a result trained ahead).

A stack is a group of jobs that share a network shape and data (seed, init, learning rate, L2/L1
strength and dropout keep_prob may differ): :func:`dlpractice.nn.stacked.train_stacked` trains
them in one pass, with results equal to separate runs. Jobs that cannot stack (invalid, mini-batch,
early stopping, input dropout or jitter, alone in their group) are in no stack and train on their
own. Knows nothing of MLflow (the app's functions track) or of processes.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dlpractice.config import Config
from dlpractice.data import Splits
from dlpractice.errors import DlpracticeError
from dlpractice.nn import TrainConfig, TrainResult


@dataclass(frozen=True)
class Stack:
    jobs: tuple[int, ...]  # the jobs' indices in the sweep
    train_configs: tuple[TrainConfig, ...]
    splits: Splits


def load(job_configs: Sequence[Any]) -> list[Config | None]:
    """A sweep's job configs (composed DictConfigs, in job order), each loaded once for the
    launcher's hooks; ``None`` for one that does not validate (its job reports why)."""
    from dlpractice import config

    cfgs: list[Config | None] = []
    for raw in job_configs:
        try:
            cfgs.append(config.load(raw))
        except DlpracticeError:
            cfgs.append(None)
    return cfgs


def plan(job_configs: Sequence[Config | None]) -> list[Stack]:
    """The stacks of a sweep's loaded job configs (:func:`load`, in job order; ``None``: not this
    process's to train), their data prepared."""
    from dlpractice import pipeline
    from dlpractice.nn.stacked import stack_key, unstackable_reason

    groups: dict[tuple, list[tuple[int, TrainConfig, Splits]]] = {}
    for j, cfg in enumerate(job_configs):
        if cfg is None:
            continue
        try:
            data = pipeline.prepare_data(cfg)
            splits, _ = pipeline.normalize(cfg, data.splits)
        except DlpracticeError:  # the job fails on its own, with its own error
            continue
        tc = pipeline.train_config(cfg, data.n_features)
        if unstackable_reason(tc, splits.X_train.shape[1]) is None:
            groups.setdefault((stack_key(tc), _digest(splits)), []).append((j, tc, splits))
    return [Stack(tuple(m[0] for m in members), tuple(m[1] for m in members), members[0][2])
            for members in groups.values() if len(members) > 1]


def groups(job_configs: Sequence[Config | None]) -> list[tuple[int, ...]]:
    """The jobs (indices into the loaded job configs, :func:`load`) that :func:`plan` would stack
    together, foreseen from their configs alone (same network shape and data settings), before any
    data exists; only groups of two or more."""
    import json

    from dlpractice import memory, pipeline
    from dlpractice.nn.stacked import stack_key, unstackable_reason

    found: dict[tuple, list[int]] = {}
    for j, cfg in enumerate(job_configs):
        sizes = None if cfg is None else memory.data_sizes(cfg)
        if sizes is None:  # the job fails on its own, with its own error
            continue
        tc = pipeline.train_config(cfg, sizes.n_features)
        if unstackable_reason(tc, sizes.train) is None:
            data = json.dumps([cfg.to_dict()["data"], cfg.seed, cfg.course_compat], default=str)
            found.setdefault((stack_key(tc), data), []).append(j)
    return [tuple(jobs) for jobs in found.values() if len(jobs) > 1]


def check_memory(job_configs: Sequence[Config | None], processes: int) -> None:
    """Refuse a sweep (:class:`~dlpractice.errors.MemoryLimitError`, one line) whose jobs would not
    fit in memory: each of ``processes`` prepares the data of its share of every group
    (:func:`groups`), trains its stacks and runs its jobs. Checked from the loaded configs
    (:func:`load`) before any data exists."""
    from dlpractice import memory

    index = {j: i for i, j in enumerate(j for j, c in enumerate(job_configs) if c is not None)}
    cfgs = [c for c in job_configs if c is not None]
    memory.check_sweep(cfgs, processes, [[index[j] for j in g] for g in groups(job_configs)])


def _digest(splits: Splits) -> str:
    sha = hashlib.sha256()
    for a in (splits.X_train, splits.Y_train, splits.X_dev, splits.Y_dev):
        sha.update(repr(a.shape).encode())
        sha.update(a.tobytes())
    return sha.hexdigest()


def train(stack: Stack) -> dict[int, TrainResult]:
    """Train a stack in one pass: job index -> result (a job that diverged is left out: it trains
    on its own and reports where)."""
    from dlpractice.nn.stacked import train_stacked

    if not stack.jobs:
        return {}
    s = stack.splits
    results = train_stacked(s.X_train, s.Y_train, list(stack.train_configs), X_dev=s.X_dev,
                            Y_dev=s.Y_dev)
    return {j: r for j, r in zip(stack.jobs, results, strict=True) if isinstance(r, TrainResult)}


class Session:
    """One process's part of a sweep: the tracking stores its jobs share (each prepared once)
    and the figures they draw (each layout made once)."""

    def __init__(self) -> None:
        from dlpractice import plots, tracking

        self.stores = tracking.Stores()
        self.figures = plots.RunFigures()

    def finished(self, job_configs: Mapping[int, tuple[Any, Config | None]]
                 ) -> dict[int, dict[str, Any]]:
        """Of ``job_configs`` (by job index: composed and loaded), the jobs whose configuration has
        a FINISHED run already, each with the summary row it left in its folder: they need no
        job."""
        from dlpractice import sweep_jobs

        return sweep_jobs.finished_jobs(job_configs, self.stores)

    def task(self, result: TrainResult | None = None) -> Callable[[Any], dict[str, Any] | None]:
        """The app's Hydra task function for a job (``result``: its training, done ahead)."""
        from dlpractice import experiment

        return functools.partial(experiment.task, result=result, stores=self.stores,
                                 figures=self.figures)
