from dataclasses import dataclass

from hydra.core.config_store import ConfigStore


@dataclass
class VectorizedLauncherConf:
    _target_: str = (
        "hydra_plugins.dlpractice_vectorized_launcher.vectorized_launcher.VectorizedLauncher"
    )
    # processes: the launcher's own plus n_jobs - 1 spawned workers, which train a share of every
    # stack and then take jobs (gradient check, evaluation, files, MLflow); -1: one per CPU.
    # 1 (default): everything in this process — a worker needs ~3 s of imports and a free core to
    # pay off, which a loaded 2-core machine does not have (see benchmarks/bench_sweep.py).
    n_jobs: int = 1
    # spawn workers only for sweeps of at least this many jobs (a worker needs ~3 s to start)
    min_jobs_for_workers: int = 6


ConfigStore.instance().store(
    group="hydra/launcher", name="vectorized", node=VectorizedLauncherConf, provider="dlpractice",
)
