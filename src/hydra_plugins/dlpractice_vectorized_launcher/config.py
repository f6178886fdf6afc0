from dataclasses import dataclass
from enum import Enum
from typing import Optional

from hydra.core.config_store import ConfigStore


class StartMethod(Enum):
    fork = "fork"
    spawn = "spawn"


@dataclass
class VectorizedLauncherConf:
    _target_: str = (
        "hydra_plugins.dlpractice_vectorized_launcher.vectorized_launcher.VectorizedLauncher"
    )
    # processes (-1, the default: one per CPU): each trains its share of the stacks, then
    # finishes its jobs (gradient check, evaluation, files, MLflow run).
    n_jobs: int = -1
    # use workers only for sweeps of at least this many jobs
    min_jobs_for_workers: int = 2
    # how workers start: null (auto: fork on Linux when no other thread runs, else spawn), fork
    # or spawn (a spawned worker imports everything again)
    start_method: Optional[StartMethod] = None  # noqa: UP045 (OmegaConf 2.3 wants Optional)


ConfigStore.instance().store(
    group="hydra/launcher", name="vectorized", node=VectorizedLauncherConf, provider="dlpractice",
)
