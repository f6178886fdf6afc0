"""The ``vectorized`` launcher: a sweep's networks trained in stacked passes, each job then finished
exactly as Hydra's basic launcher would finish it.

1. Every job's config is composed as the basic launcher composes it (``load_sweep_config``, job id
   and number).
2. The task's module (``dlpractice.experiment``) trains the jobs that share a network shape and data
   in one stacked pass per group (``pretrain_stacked``: seed, init, learning rate, L2/L1 strength
   and dropout keep_prob may differ within a group). Jobs it cannot stack — invalid, already
   finished, mini-batch, early stopping, input dropout/jitter, alone in their group, diverged — are
   left to the normal path.
3. Each job then goes through Hydra's own ``run_job`` with the normal task function: the same output
   folder (``.hydra/``, the job log, ``summary.json``, parameters, history, plots), the same MLflow
   run, the same callbacks (``on_job_start``/``on_job_end``; the sweep callback's parent run and
   summary) and the same status; a stacked job's training is simply taken from step 2.

With ``n_jobs`` > 1 (-1: one per CPU; default 1) and at least ``min_jobs_for_workers`` jobs, ``n_jobs - 1``
spawned workers train a share of every stack (sub-stacks) and then pull jobs from the back of the
queue while this process takes them from the front.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)


class VectorizedLauncher(Launcher):
    def __init__(self, n_jobs: int = 1, min_jobs_for_workers: int = 6) -> None:
        self.n_jobs = int(n_jobs)
        self.min_jobs_for_workers = int(min_jobs_for_workers)
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
               ) -> Sequence[JobReturn]:
        setup_globals()
        assert self.config is not None and self.hydra_context is not None
        assert self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info(f"Launching {len(job_overrides)} jobs, stacked where they share a network")
        configs = []
        for i, overrides in enumerate(job_overrides):
            idx = initial_job_idx + i
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            sweep_config = self.hydra_context.config_loader.load_sweep_config(
                self.config, list(overrides)
            )
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = idx
                sweep_config.hydra.job.num = idx
            configs.append(sweep_config)

        workers = self._workers(len(configs))
        pool = None
        if workers:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawned (not forked: this process holds the tracking store's connections); they
            # train their share of each stack, then take jobs
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            for _ in range(workers):  # start them now, while the job configs are loaded
                pool.submit(_noop)
        try:
            pretrained = self._pretrain(configs, pool, workers + 1)
            return self._run(configs, pretrained, pool, workers)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    # -- steps ---------------------------------------------------------------------------------

    def _workers(self, jobs: int) -> int:
        n = self.n_jobs if self.n_jobs > 0 else (os.cpu_count() or 1)
        if jobs < max(2, self.min_jobs_for_workers):  # a worker's start-up (~3 s) would not pay
            return 0
        return max(0, min(n, jobs) - 1)

    def _pretrain(self, configs: list[DictConfig], pool: Any, parts: int) -> list[Any]:
        assert self.task_function is not None
        pretrain = getattr(self.task_function, "__globals__", {}).get("pretrain_stacked")
        if pretrain is None:
            log.warning("the task module has no pretrain_stacked(): every job trains on its own")
            return [None] * len(configs)
        start = time.perf_counter()
        pretrained = pretrain(configs, executor=pool, parts=parts) if pool else pretrain(configs)
        stacked = sum(p is not None for p in pretrained)
        log.info(f"trained {stacked} of {len(configs)} jobs in stacked passes "
                 f"({time.perf_counter() - start:.2f} s); the others train on their own")
        return pretrained

    def _run(self, configs: list[DictConfig], pretrained: list[Any], pool: Any, workers: int
             ) -> list[JobReturn]:
        assert self.hydra_context is not None and self.task_function is not None
        assert self.config is not None
        returns: list[JobReturn | None] = [None] * len(configs)
        pending = deque(range(len(configs)))
        lock = threading.Lock()

        def take(front: bool) -> int | None:
            with lock:
                if not pending:
                    return None
                return pending.popleft() if front else pending.pop()

        # Hydra's context and state hold local functions (resolvers): cloudpickle them, as
        # Hydra's joblib launcher does through loky
        shared = _cloudpickle().dumps((self.hydra_context, self.task_function,
                                       Singleton.get_state())) if pool is not None else b""

        def feed() -> None:  # one thread per worker: hand it the job at the back, wait, repeat
            while (j := take(front=False)) is not None:
                future = pool.submit(_execute_in_worker, shared, configs[j], pretrained[j])
                try:
                    returns[j] = _cloudpickle().loads(future.result())
                except BaseException as exc:  # the worker died: this process runs what is left
                    log.warning(f"worker failed ({type(exc).__name__}: {exc}); job #{j} and "
                                "the rest run in this process")
                    with lock:
                        pending.appendleft(j)
                    return

        threads = [threading.Thread(target=feed, daemon=True) for _ in range(workers if pool else 0)]
        for t in threads:
            t.start()
        while True:
            j = take(front=True)
            if j is None:
                for t in threads:
                    t.join()
                j = take(front=True)  # a job given back by a failed worker
                if j is None:
                    break
            returns[j] = _execute(self.hydra_context, configs[j], self.task_function, None,
                                  pretrained[j])
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        assert all(r is not None for r in returns)
        return returns  # type: ignore[return-value]


def _execute(hydra_context: HydraContext, sweep_config: DictConfig, task_function: TaskFunction,
             singleton_state: dict[Any, Any] | None, pretrained: Any) -> JobReturn:
    """One job through Hydra's ``run_job`` (in this process or a worker), its training taken from
    the stacked pass when there is one."""
    setup_globals()
    if singleton_state is not None:
        Singleton.set_state(singleton_state)
    use = getattr(task_function, "__globals__", {}).get("use_pretrained")
    if pretrained is not None and use is not None:
        use({pretrained[0]: pretrained[1]})
    HydraConfig.instance().set_config(sweep_config)
    return run_job(hydra_context=hydra_context, task_function=task_function, config=sweep_config,
                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")


def _execute_in_worker(shared: bytes, sweep_config: DictConfig, pretrained: Any) -> bytes:
    """:func:`_execute` in a spawned worker; the JobReturn goes back cloudpickled (Hydra's plugin
    scan re-executes plugin modules, so its config classes need not pickle by reference)."""
    hydra_context, task_function, singleton_state = _cloudpickle().loads(shared)
    ret = _execute(hydra_context, sweep_config, task_function, singleton_state, pretrained)
    return _cloudpickle().dumps(ret)


def _cloudpickle() -> Any:
    try:
        import cloudpickle
    except ImportError:  # joblib (a dependency of Hydra's joblib launcher) vendors it
        from joblib.externals import cloudpickle
    return cloudpickle


def _noop() -> None:
    import dlpractice.nn.stacked  # noqa: F401
