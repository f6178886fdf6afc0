"""The ``vectorized`` launcher: a sweep's networks trained in stacked passes, each job then finished
exactly as Hydra's basic launcher would finish it.

1. Every job's config is composed as the basic launcher composes it (``load_sweep_config``, job id
   and number) — once per distinct set of config-group choices, the other jobs derived from it
   (:mod:`.sweep_configs`; the sweeper's batch validation uses the same shortcut).
2. The task's module (``dlpractice.experiment``) trains the jobs that share a network shape and data
   in one stacked pass per group (``pretrain_stacked``: seed, init, learning rate, L2/L1 strength
   and dropout keep_prob may differ within a group). Jobs it cannot stack — invalid, already
   finished, mini-batch, early stopping, input dropout/jitter, alone in their group, diverged — are
   left to the normal path.
3. Each job then goes through Hydra's own ``run_job`` with the normal task function: the same output
   folder (``.hydra/``, the job log, ``summary.json``, parameters, history, plots), the same MLflow
   run, the same callbacks (``on_job_start``/``on_job_end``; the sweep callback's parent run and
   summary) and the same status; a stacked job's training is simply taken from step 2.

With ``n_jobs`` > 1 (-1, the default: one per CPU) and at least ``min_jobs_for_workers`` jobs, every
core trains: one forked process per share of each stack, started before this process imports
MLflow. Meanwhile this process imports MLflow and matplotlib, prepares the tracking store
(``SweepCallback.prepare_deferred``), forks ``n_jobs - 1`` job workers — all from its main thread,
before any MLflow call that starts a thread (its usage telemetry does) — and only then opens the
sweep's parent run (``SweepCallback.start_deferred``; the workers get its id with each job). The
workers take jobs from the back of the queue while this process takes them from the front, each as
soon as its training is done. Where forking is not safe (not Linux, other threads running,
``start_method=spawn``) the workers are spawned instead: they train a share of every stack, then
take jobs.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

from . import sweep_configs

log = logging.getLogger(__name__)


class VectorizedLauncher(Launcher):
    def __init__(self, n_jobs: int = -1, min_jobs_for_workers: int = 2,
                 start_method: Any = None) -> None:
        start_method = getattr(start_method, "value", start_method)  # the config's enum
        self.n_jobs = int(n_jobs)
        self.min_jobs_for_workers = int(min_jobs_for_workers)
        self.start_method = start_method
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None
        self._environ: dict[str, str] = {}  # os.environ when the job workers started

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function
        # before the sweeper validates the batch (it composes every job too)
        sweep_configs.install(hydra_context.config_loader)
        # The sweep's set-up (job configs, stacks, MLflow's import) makes many objects that live
        # as long as the process: no collector pass over them until they are frozen (launch).
        _pause_gc()

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
               ) -> Sequence[JobReturn]:
        setup_globals()
        assert self.config is not None and self.hydra_context is not None
        assert self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
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
        forking = self._can_fork()
        trainers = _ForkedTrainers() if workers and forking else None
        pool = None
        try:
            if trainers is not None:
                # every core trains (forked now: no MLflow import, no tracking store in them)
                # while this process imports MLflow, opens the tracking store, forks the job
                # workers (before any MLflow call that starts a thread) and opens the parent run
                pretrained = self._pretrain(configs, trainers, workers + 1, train_here=False,
                                            skip_finished=False)
                with _imports_kept():
                    warm_up = self._hook("before_fork")
                    if warm_up is not None:
                        warm_up()
                    self._call_callbacks("prepare_deferred")
                forking = self.start_method == "fork" or self._can_fork()
                pool = self._start_workers(workers, forking, warmed=True)
                self._call_callbacks("start_deferred")
                finished = self._hook("finished_jobs")
                if finished is not None:  # don't wait for what run_job will skip
                    done = finished(configs)
                    pretrained = [None if d else p for p, d in zip(pretrained, done)]
                    if any(done):
                        log.info(f"{sum(done)} of {len(done)} jobs already finished: their "
                                 "training is not waited for")
                Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
            else:
                _resume_gc(freeze=False)
                self._call_callbacks("start_deferred")
                Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
                if workers:
                    # MLflow is imported by now: fork only if it started no thread
                    forking = forking and (self.start_method == "fork" or self._can_fork())
                    pool = self._start_workers(workers, forking)
                pretrained = self._pretrain(configs, pool, workers + 1)
            return self._run(configs, pretrained, pool, workers, forking)
        finally:
            _resume_gc(freeze=False)
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            if trainers is not None:
                trainers.close()
            _FORKED_STATE.clear()

    # -- steps ---------------------------------------------------------------------------------

    def _hook(self, name: str) -> Any:
        """A function of the task's module (``dlpractice.experiment``) this launcher uses."""
        return getattr(self.task_function, "__globals__", {}).get(name)

    def _call_callbacks(self, method: str) -> None:
        """``prepare_deferred`` / ``start_deferred`` of the callbacks that have it (the sweep's
        tracking: :class:`dlpractice.sweep.SweepCallback`)."""
        assert self.hydra_context is not None
        for callback in getattr(self.hydra_context.callbacks, "callbacks", []):
            call = getattr(callback, method, None)
            if call is not None:
                call()

    def _workers(self, jobs: int) -> int:
        n = self.n_jobs if self.n_jobs > 0 else (os.cpu_count() or 1)
        if jobs < max(2, self.min_jobs_for_workers):
            return 0
        return max(0, min(n, jobs) - 1)

    def _can_fork(self) -> bool:
        """Fork when this process has no other thread (a forked child of a threaded process may
        inherit a held lock): the children inherit every import and need no start-up."""
        import multiprocessing

        if self.start_method is not None:
            return self.start_method == "fork"
        # macOS lists fork too, but its system libraries are not fork-safe: spawn there
        return (sys.platform.startswith("linux") and threading.active_count() == 1
                and "fork" in multiprocessing.get_all_start_methods())

    def _start_workers(self, workers: int, forked: bool, warmed: bool = False) -> Any:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        assert self.hydra_context is not None and self.task_function is not None
        self._environ = dict(os.environ)  # what a worker has; later changes go with each job
        if forked:
            warm_up = None if warmed else self._hook("before_fork")
            if warm_up is not None:
                warm_up()
            _FORKED_STATE.update(hydra_context=self.hydra_context,
                                 task_function=self.task_function)
            _flush_std()
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                       initializer=_after_fork)
            # Fork them now, from this thread: the pool forks on its first submit, and a fork
            # from a feeding thread while this one draws a plot hands the child matplotlib's
            # render lock held (a figure's draw then waits forever).
            pool.submit(_ready).result()
        else:
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        log.info(f"{workers} {'forked' if forked else 'spawned'} worker process(es) for the jobs")
        return pool

    def _pretrain(self, configs: list[DictConfig], executor: Any, parts: int, **options: Any
                  ) -> list[Any]:
        pretrain = self._hook("pretrain_stacked")
        if pretrain is None:
            log.warning("the task module has no pretrain_stacked(): every job trains on its own")
            return [None] * len(configs)
        start = time.perf_counter()
        pretrained = (pretrain(configs, executor=executor, parts=parts, **options) if executor
                      else pretrain(configs))
        stacked = sum(p is not None for p in pretrained)
        where = f"{parts} process(es)" if executor else "1 process(es)"
        log.info(f"{stacked} of {len(configs)} jobs train in stacked passes ({where}; "
                 f"{time.perf_counter() - start:.2f} s here); the others train on their own")
        return pretrained

    def _changed_environ(self) -> dict[str, str]:
        """Environment variables set since the workers started (the sweep's parent run id, the
        tracking URI): each job in a worker gets them."""
        return {k: v for k, v in os.environ.items() if self._environ.get(k) != v}

    def _run(self, configs: list[DictConfig], pretrained: list[Any], pool: Any, workers: int,
             forked: bool) -> list[JobReturn]:
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

        # A spawned worker gets Hydra's context and state cloudpickled (they hold local functions:
        # resolvers), as Hydra's joblib launcher does through loky; a forked one has them.
        shared = b""
        if pool is not None and not forked:
            shared = _cloudpickle().dumps((self.hydra_context, self.task_function,
                                           Singleton.get_state()))

        def feed() -> None:  # one thread per worker: hand it the job at the back, wait, repeat
            while (j := take(front=False)) is not None:
                try:
                    job = _resolve(pretrained[j])  # waits for the worker's own training share
                    future = pool.submit(_execute_in_worker, shared, self._changed_environ(),
                                         configs[j], job)
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
                                  _resolve(pretrained[j]))
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        assert all(r is not None for r in returns)
        return returns  # type: ignore[return-value]


class _ForkedTrainers:
    """Training shares in forked processes, each sending its result back through a pipe — with no
    executor thread in this process, which forks its job workers later (``submit`` and
    ``result()`` as in ``concurrent.futures``)."""

    def __init__(self) -> None:
        self._shares: list[_Share] = []

    def submit(self, fn: Any, *args: Any, **kwargs: Any) -> _Share:
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        _flush_std()
        receive, send = ctx.Pipe(duplex=False)
        process = ctx.Process(target=_send_result, args=(send, fn, args, kwargs), daemon=True)
        process.start()
        send.close()
        share = _Share(receive, process)
        self._shares.append(share)
        return share

    def close(self) -> None:
        """Stop the shares still training (their jobs were skipped or the sweep stopped)."""
        for share in self._shares:
            share.close()


class _Share:
    def __init__(self, conn: Any, process: Any) -> None:
        self._conn, self._process = conn, process
        self._lock = threading.Lock()
        self._outcome: tuple[bool, Any] | None = None

    def result(self) -> Any:
        with self._lock:
            if self._outcome is None:
                try:
                    self._outcome = self._conn.recv()
                except (EOFError, OSError) as exc:  # the process died
                    self._outcome = (False, f"{type(exc).__name__}: {exc}")
                self._conn.close()
                self._process.join()
        ok, value = self._outcome
        if not ok:
            raise RuntimeError(f"a training process failed: {value}")
        return value

    def close(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()


@contextmanager
def _imports_kept() -> Iterator[None]:
    """Import MLflow, SQLAlchemy, matplotlib (the job's modules) without the cyclic collector,
    then freeze what this process holds: it lives as long as the process. Otherwise the collector
    walks those ~400k objects again and again — during the imports (~0.35 s) and in every
    process's full passes between jobs (~0.12 s each) — and touches the pages the forked workers
    share with this process."""
    _pause_gc()
    try:
        yield
    finally:
        _resume_gc(freeze=True)


_GC = {"paused": False, "was_enabled": True}


def _pause_gc() -> None:
    if not _GC["paused"]:
        _GC.update(paused=True, was_enabled=gc.isenabled())
        gc.disable()


def _resume_gc(freeze: bool) -> None:
    """End :func:`_pause_gc` (``freeze``: what exists now is never collected); also in a process
    forked meanwhile, which inherits the pause."""
    if freeze:
        gc.freeze()
    if _GC["paused"]:
        _GC["paused"] = False
        if _GC["was_enabled"]:
            gc.enable()


def _flush_std() -> None:
    """Before a fork: a child flushes what it inherited in the buffers when it ends."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass


def _send_result(conn: Any, fn: Any, args: tuple, kwargs: dict) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _resume_gc(freeze=True)
    try:
        outcome: tuple[bool, Any] = (True, fn(*args, **kwargs))
    except BaseException as exc:
        outcome = (False, f"{type(exc).__name__}: {exc}")
    conn.send(outcome)
    conn.close()


# what a forked worker inherits instead of a pickled copy (set just before the fork)
_FORKED_STATE: dict[str, Any] = {}


def _ready() -> bool:
    return True


def _after_fork() -> None:
    """In a forked worker: open its own connections to the tracking store (the parent's pooled
    ones must not be shared), and let Ctrl-C reach the parent alone."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    reset = getattr(_FORKED_STATE.get("task_function"), "__globals__", {}).get("after_fork")
    if reset is not None:
        reset()
    hydra_context = _FORKED_STATE.get("hydra_context")
    for callback in getattr(getattr(hydra_context, "callbacks", None), "callbacks", []):
        in_worker = getattr(callback, "in_worker", None)
        if in_worker is not None:
            in_worker()


def _resolve(entry: Any) -> Any:
    """A pretrained entry ``(key, result)``; a result still being trained elsewhere is a callable
    that waits for it (None when that training failed: the job then trains on its own)."""
    if entry is None:
        return None
    key, value = entry
    if callable(value):
        value = value()
    return None if value is None else (key, value)


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
    # run_job sets HydraConfig to sweep_config first
    return run_job(hydra_context=hydra_context, task_function=task_function, config=sweep_config,
                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")


def _execute_in_worker(shared: bytes, environ: dict[str, str], sweep_config: DictConfig,
                       pretrained: Any) -> bytes:
    """:func:`_execute` in a worker, with the environment variables the launching process set
    since it started the worker; the JobReturn goes back cloudpickled (Hydra's plugin scan
    re-executes plugin modules, so its config classes need not pickle by reference)."""
    os.environ.update(environ)
    if shared:
        hydra_context, task_function, singleton_state = _cloudpickle().loads(shared)
    else:  # forked
        hydra_context = _FORKED_STATE["hydra_context"]
        task_function = _FORKED_STATE["task_function"]
        singleton_state = None
    ret = _execute(hydra_context, sweep_config, task_function, singleton_state, pretrained)
    return _cloudpickle().dumps(ret)


def _cloudpickle() -> Any:
    try:
        import cloudpickle
    except ImportError:  # joblib (a dependency of Hydra's joblib launcher) vendors it
        from joblib.externals import cloudpickle
    return cloudpickle
