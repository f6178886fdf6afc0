"""The ``vectorized`` launcher: a sweep's networks trained in stacked passes, every job then finished
through Hydra's own ``run_job`` (same output folders, callbacks, MLflow runs as the basic launcher).

It calls the app's documented hooks (:mod:`dlpractice.stacking`): the ``groups`` of jobs that may
stack, a ``Session`` per process (its finished jobs, skipped without a job; the task function for a
trained result), ``plan`` and ``train`` its stacks. With ``n_jobs`` processes (-1: one per CPU),
each takes a share of every group, settles its finished jobs, trains stacks of the others and
finishes them; the workers are started before this process opens anything (no MLflow store, no
data, no thread), and send each JobReturn back through a pipe. A worker that dies leaves its
unfinished jobs to this process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    filter_overrides,
    run_job,
    setup_globals,
)
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)


class _Share:
    """The jobs one process settles, trains (stacked where they can) and finishes. (Not a
    dataclass: Hydra's plugin scan executes this module outside ``sys.modules``.)"""

    def __init__(self, jobs: list[int] | None = None) -> None:
        self.jobs: list[int] = jobs or []


class VectorizedLauncher(Launcher):
    def __init__(self, n_jobs: int = -1, min_jobs_for_workers: int = 2,
                 start_method: Any = None) -> None:
        self.n_jobs = int(n_jobs)
        self.min_jobs_for_workers = int(min_jobs_for_workers)
        self.start_method = getattr(start_method, "value", start_method)  # the config's enum
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        from dlpractice.hydra_compat import install_sweep_config_cache

        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function
        install_sweep_config_cache(hydra_context.config_loader)  # before the sweeper validates

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
               ) -> Sequence[JobReturn]:
        from dlpractice import stacking

        setup_globals()
        assert self.config is not None and self.hydra_context is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        log.info(f"Launching {len(job_overrides)} jobs, stacked where they share a network")
        configs = []
        for i, overrides in enumerate(job_overrides):
            idx = initial_job_idx + i
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            job_config = self.hydra_context.config_loader.load_sweep_config(self.config,
                                                                            list(overrides))
            with open_dict(job_config):
                job_config.hydra.job.id = idx
                job_config.hydra.job.num = idx
            configs.append(job_config)
        loaded = stacking.load(configs)
        stacking.check_memory(loaded, self._processes(len(configs)))  # before any data exists
        groups = stacking.groups(loaded)
        log.info(f"{sum(len(g) for g in groups)} of {len(configs)} jobs share a network and data "
                 f"in {len(groups)} group(s), each trained stacked")
        shares = self._shares(len(configs), groups)
        method = self._context()
        workers = [_Worker(self, configs, loaded, share, method) for share in shares[1:]]
        if workers:
            log.info(f"{len(workers)} {'forked' if method == 'fork' else 'spawned'} worker "
                     f"process(es); {len(shares)} process(es) train and finish the jobs")
        returns: dict[int, JobReturn] = {}
        try:
            # this process takes the workers' JobReturns as they come: a full pipe stalls a worker
            returns.update(_work(self.hydra_context, configs, loaded, shares[0],
                                 between_jobs=lambda: [w.drain() for w in workers]))
            for worker in workers:
                returns.update(worker.results())
            left = _Share([j for s in shares[1:] for j in s.jobs if j not in returns])
            if left.jobs:  # a worker died: its jobs train and finish here
                log.warning(f"a worker process failed; {len(left.jobs)} job(s) run here")
                returns.update(_work(self.hydra_context, configs, loaded, left))
        finally:
            for worker in workers:
                worker.stop()
        return [returns[j] for j in range(len(configs))]

    def _processes(self, jobs: int) -> int:
        """How many processes a sweep of ``jobs`` jobs runs in."""
        n = self.n_jobs if self.n_jobs > 0 else (os.cpu_count() or 1)
        return 1 if jobs < max(2, self.min_jobs_for_workers) else max(1, min(n, jobs))

    def _shares(self, jobs: int, groups: list[tuple[int, ...]]) -> list[_Share]:
        """Each group split into nearly equal parts across the processes; the other jobs dealt out
        in turn."""
        n = self._processes(jobs)
        shares = [_Share() for _ in range(n)]
        for group in groups:
            for p, share in enumerate(shares):
                share.jobs += group[len(group) * p // n:len(group) * (p + 1) // n]
        grouped = {j for group in groups for j in group}
        alone = [j for j in range(jobs) if j not in grouped]
        for j in alone:
            min(shares, key=lambda s: len(s.jobs)).jobs.append(j)
        for share in shares:
            share.jobs.sort()
        return shares

    def _context(self) -> str:
        """How a worker starts: forked where that is safe (Linux, no other thread), else spawned."""
        import threading

        if self.start_method in ("fork", "spawn"):
            return str(self.start_method)
        fork_ok = (sys.platform.startswith("linux") and threading.active_count() == 1
                   and "fork" in multiprocessing.get_all_start_methods())
        return "fork" if fork_ok else "spawn"


def _work(hydra_context: HydraContext, configs: list[DictConfig], loaded: list[Any],
          share: _Share, send: Any = None, between_jobs: Callable[[], Any] | None = None
          ) -> dict[int, JobReturn]:
    """Settle this share's finished jobs, train the others in stacks where they can, then run them
    through Hydra's ``run_job`` with the app's task (the session's: the app's own task function,
    sharing this process's tracking stores)."""
    from dlpractice import stacking

    session = stacking.Session()
    returns = {}
    for j, row in session.finished({j: (configs[j], loaded[j]) for j in share.jobs}).items():
        returns[j] = JobReturn(overrides=list(configs[j].hydra.overrides.task),
                               status=JobStatus.COMPLETED)
        returns[j].return_value = row
        if send is not None:
            send.send_bytes(_dumps((j, returns[j])))
    results: dict[int, Any] = {}
    mine = set(share.jobs) - set(returns)
    stacks = stacking.plan([cfg if j in mine else None for j, cfg in enumerate(loaded)])
    if stacks:
        log.info(f"a process trains {sum(len(s.jobs) for s in stacks)} of its {len(mine)} job(s) "
                 f"to run in {len(stacks)} stacked pass(es)")
    for stack in stacks:
        results.update(stacking.train(stack))
    for j in share.jobs:
        if between_jobs is not None:
            between_jobs()
        if j in returns:
            continue
        task = session.task(results.get(j))
        setup_globals()
        returns[j] = run_job(hydra_context=hydra_context, task_function=task, config=configs[j],
                             job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
        if send is not None:
            send.send_bytes(_dumps((j, returns[j])))
    return returns


class _Worker:
    """One worker process and the pipe its JobReturns come back through."""

    def __init__(self, launcher: VectorizedLauncher, configs: list[DictConfig], loaded: list[Any],
                 share: _Share, method: str) -> None:
        ctx = multiprocessing.get_context(method)
        self._receive, send = ctx.Pipe(duplex=False)
        # a forked worker inherits Hydra's singletons; a spawned one gets them, as joblib's do
        singletons = None if method == "fork" else Singleton.get_state()
        state: Any = (launcher.hydra_context, configs, loaded, share, singletons)
        if method != "fork":
            state = _cloudpickle().dumps(state)  # cloudpickled (local functions), as joblib's
        for stream in (sys.stdout, sys.stderr):  # a child flushes what it inherits when it ends
            stream.flush()
        self._process = ctx.Process(target=_worker_main, args=(state, send), daemon=True)
        self._process.start()
        send.close()
        self.received: dict[int, JobReturn] = {}

    def drain(self) -> None:
        """Take the JobReturns sent so far, without waiting for more."""
        while self._receive.poll():
            if not self._take():
                return

    def results(self) -> dict[int, JobReturn]:
        """Every JobReturn the worker sends until it ends (or dies)."""
        while self._take():
            pass
        self._process.join()
        return self.received

    def _take(self) -> bool:
        try:
            j, ret = pickle.loads(self._receive.recv_bytes())
        except (EOFError, OSError):  # done, or died
            return False
        self.received[j] = ret
        return True

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._receive.close()


def _worker_main(state: Any, send: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the launching process's to handle
    if isinstance(state, bytes):
        state = _cloudpickle().loads(state)
    hydra_context, configs, loaded, share, singleton_state = state
    if singleton_state is not None:  # spawned (set again, they would scan the plugins anew)
        Singleton.set_state(singleton_state)
    _work(hydra_context, configs, loaded, share, send)
    send.close()


def _dumps(message: Any) -> bytes:
    """A JobReturn for the pipe: plain pickle (cloudpickle looks every class up in every loaded
    module: ~0.3 s a job here), cloudpickle for what plain pickle cannot take."""
    try:
        return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return _cloudpickle().dumps(message)


def _cloudpickle() -> Any:
    try:
        import cloudpickle
    except ImportError:  # joblib (a dependency of Hydra's joblib launcher) vendors it
        from joblib.externals import cloudpickle
    return cloudpickle
