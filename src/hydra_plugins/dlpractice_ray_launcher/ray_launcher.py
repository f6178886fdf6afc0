"""The ``ray`` launcher: each job of a sweep is one Ray task (``ray.remote(...).options``, named
``dlpractice-job-<n>``) on a running cluster, run there by Hydra's own ``run_job`` (same folders,
callbacks and MLflow runs as the basic launcher), collected with ``ray.wait``/``ray.get``.

A job whose task ends in a Ray error (its worker killed or out of memory, its node lost) is not
started again (``max_retries: 0``): this process records it through
:func:`dlpractice.sweep_jobs.job_ended_without_result` (its row says failed, the MLflow runs it
left open end KILLED) and the sweep goes on. Ray is imported only when a sweep uses this launcher.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.errors import HydraException
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

log = logging.getLogger(__name__)

TASK_NAME = "dlpractice-job-{}"  # a job's Ray task name: `ps` shows its worker as ray::<name>
# The driver's settings a job reads from its environment (the tracking store when tracking.uri is
# not set); a Ray worker has the environment of `ray start` instead.
FORWARDED_ENV = ("MLFLOW_TRACKING_URI",)
CANCEL_GRACE_S = 30.0  # after Ctrl-C, how long the cancelled jobs get to close their runs
CONNECT_TIMEOUT_S = 5.0
WAIT_S = 0.5


class RayLauncher(Launcher):
    def __init__(self, ray: Any = None) -> None:
        options = OmegaConf.to_container(ray, resolve=True) if isinstance(ray, DictConfig) else ray
        options = dict(options or {})
        self.init_options: dict[str, Any] = dict(options.get("init") or {})
        self.task_options: dict[str, Any] = dict(options.get("remote") or {})
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
               ) -> Sequence[JobReturn]:
        setup_globals()
        assert self.config is not None and self.hydra_context is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        ray = _import_ray()
        connected_here = _connect(ray, self.init_options)
        try:
            log.info(f"Launching {len(job_overrides)} jobs on Ray "
                     f"({ray.cluster_resources().get('CPU', 0):g} CPUs in the cluster)")
            configs = []
            for i, overrides in enumerate(job_overrides):
                idx = initial_job_idx + i
                log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
                job_config = self.hydra_context.config_loader.load_sweep_config(
                    self.config, list(overrides))
                with open_dict(job_config):
                    job_config.hydra.job.id = idx
                    job_config.hydra.job.num = idx
                configs.append(job_config)
            return self._run(ray, configs)
        finally:
            if connected_here:
                ray.shutdown()

    def _run(self, ray: Any, configs: list[DictConfig]) -> list[JobReturn]:
        shared = ray.put((self.hydra_context, self.task_function, Singleton.get_state()))
        env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        remote = ray.remote(_run_in_worker)
        options = {"max_retries": 0, **self.task_options}
        refs = {}
        for config in configs:
            num = int(config.hydra.job.num)
            task = remote.options(name=TASK_NAME.format(num), **options)
            refs[task.remote(shared, config, os.getcwd(), env)] = config
        returns: dict[int, JobReturn] = {}
        pending = list(refs)
        with _sigterm_noted() as sigterm:
            try:
                while pending:
                    # a bounded wait: a signal's handler runs only between two calls
                    done, pending = ray.wait(pending, num_returns=1, timeout=WAIT_S)
                    for ref in done:
                        config = refs[ref]
                        try:
                            ret = ray.get(ref)
                        except ray.exceptions.RayError as exc:
                            ret = _lost_job(config, _reason(ray, exc))
                        returns[int(config.hydra.job.num)] = ret
            except KeyboardInterrupt:  # Ctrl-C or SIGTERM: each running job ends its run KILLED
                for ref in pending:
                    ray.cancel(ref)
                if pending:
                    ray.wait(pending, num_returns=len(pending), timeout=CANCEL_GRACE_S)
                sigterm.raise_again()
                raise
        return [returns[int(config.hydra.job.num)] for config in configs]


class _SigtermNote:
    """The app's SIGTERM handler, noting that it ran: Ray turns the interrupt it raises into a bare
    KeyboardInterrupt, so the launcher raises the app's own again (it says which signal)."""

    def __init__(self, handler: Any) -> None:
        self.handler, self.received = handler, False

    def __call__(self, signum: int, frame: Any) -> None:
        self.received = True
        self.handler(signum, frame)

    def raise_again(self) -> None:
        if self.received:
            self.handler(signal.SIGTERM, None)


@contextlib.contextmanager
def _sigterm_noted() -> Iterator[_SigtermNote]:
    handler = signal.getsignal(signal.SIGTERM)
    note = _SigtermNote(handler if callable(handler) else lambda signum, frame: None)
    if callable(handler):
        signal.signal(signal.SIGTERM, note)
    try:
        yield note
    finally:
        if callable(handler):
            signal.signal(signal.SIGTERM, handler)


def _import_ray() -> Any:
    try:
        import ray
        import ray.exceptions
    except ImportError:
        raise HydraException("hydra/launcher=ray needs Ray: pip install -e '.[ray]' (the same "
                             "environment on every node of the cluster)") from None
    return ray


def _connect(ray: Any, init_options: dict[str, Any]) -> bool:
    """``ray.init`` unless this process is connected already (then False). Ray replaces the SIGTERM
    handler with its own: the app's is put back, so that SIGTERM still ends the sweep like Ctrl-C."""
    if ray.is_initialized():
        return False
    address = init_options.get("address")
    handler = signal.getsignal(signal.SIGTERM)
    try:
        _check_reachable(address)
        ray.init(**init_options)
    except (OSError, RuntimeError, ValueError) as exc:  # ConnectionError is an OSError
        where = f"at {address!r}" if address else "(a local instance)"
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise HydraException(
            f"hydra/launcher=ray: cannot connect to a Ray cluster {where}: {first} (start one with "
            "`ray start --head`, or set hydra.launcher.ray.init.address=<head>:<port>)") from None
    finally:
        if handler is not None:
            signal.signal(signal.SIGTERM, handler)
    return True


def _check_reachable(address: Any) -> None:
    """A ``host:port`` head that does not answer fails at once (``ray.init`` would wait for it for
    minutes); "auto", ``ray://`` and null are left to Ray."""
    import socket

    text = str(address or "")
    host, sep, port = text.rpartition(":")
    if not sep or "://" in text or not port.isdigit():
        return
    with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
        pass


def _run_in_worker(shared: Any, config: DictConfig, cwd: str, env: dict[str, str]) -> JobReturn:
    """One job in a Ray worker: Hydra's state and the driver's folder and environment, then
    Hydra's ``run_job`` (a worker runs many jobs: the folder and environment are put back)."""
    hydra_context, task_function, singleton_state = shared
    setup_globals()
    Singleton.set_state(singleton_state)
    previous_cwd, previous_env = os.getcwd(), {k: os.environ.get(k) for k in env}
    if os.path.isdir(cwd):  # the same path on every node (a shared filesystem), else stay
        os.chdir(cwd)
    os.environ.update(env)
    # ray.cancel interrupts a running job as Ctrl-C does (its run ends KILLED) through Python's
    # SIGINT handler, which a worker lacks when `ray start` ran with SIGINT ignored (in background)
    main_thread = threading.current_thread() is threading.main_thread()
    previous_sigint = signal.signal(signal.SIGINT, signal.default_int_handler) if main_thread else None
    try:
        return run_job(hydra_context=hydra_context, task_function=task_function, config=config,
                       job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    finally:
        if previous_sigint is not None:  # None: not set from Python, nothing to put back
            signal.signal(signal.SIGINT, previous_sigint)
        os.chdir(previous_cwd)
        for key, value in previous_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _reason(ray: Any, exc: BaseException) -> str:
    """Why a job's task ended without a result, in one line."""
    errors = ray.exceptions
    if isinstance(exc, errors.OutOfMemoryError):
        return "Ray killed the job's worker: the node ran out of memory (OutOfMemoryError)"
    if isinstance(exc, errors.WorkerCrashedError):
        return ("the Ray worker running the job died (killed by a signal such as SIGKILL, or "
                "out of memory): WorkerCrashedError")
    cause = getattr(exc, "cause", None) if isinstance(exc, errors.RayTaskError) else None
    shown = cause if isinstance(cause, BaseException) else exc
    lines = [ln.strip() for ln in str(shown).splitlines() if ln.strip()]
    return f"Ray: {type(shown).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _lost_job(config: DictConfig, reason: str) -> JobReturn:
    """What a job whose task ended without a result returns to the sweep: the failed row that
    :func:`dlpractice.sweep_jobs.job_ended_without_result` records (status COMPLETED, as for a job
    that failed inside the app: a FAILED return would stop the whole sweep)."""
    from dlpractice.sweep_jobs import job_ended_without_result

    log.error(f"job {config.hydra.job.num}: {reason}")
    previous = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(config)  # resolves ${hydra:job.num} in the subdir
    try:
        output_dir = Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)
        ret = JobReturn()
        ret.overrides = list(config.hydra.overrides.task)
        ret.hydra_cfg = copy.deepcopy(HydraConfig.instance().cfg)
        task_cfg = copy.deepcopy(config)
        with read_write(task_cfg), open_dict(task_cfg):
            del task_cfg["hydra"]
        ret.cfg = task_cfg
        ret.working_dir = os.getcwd()
        ret.task_name = str(config.hydra.job.name)
        ret.return_value = job_ended_without_result(config, output_dir, reason)
        ret.status = JobStatus.COMPLETED
        return ret
    finally:
        HydraConfig.instance().cfg = previous
