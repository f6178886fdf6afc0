from dataclasses import dataclass, field
from typing import Any, Dict  # noqa: UP035 (OmegaConf 2.3 structured configs)

from hydra.core.config_store import ConfigStore


@dataclass
class RayConf:
    # keyword arguments of ray.init: address "auto" (the cluster `ray start` runs on this machine,
    # or $RAY_ADDRESS), "host:port" of a head node, or null (a local Ray instance for this sweep)
    init: Dict[str, Any] = field(default_factory=lambda: {"address": "auto"})  # noqa: UP006
    # options of each job's Ray task (ray.remote options): num_cpus, memory, max_retries (0: a
    # job whose worker dies is reported failed, not started again under the same sweep)
    remote: Dict[str, Any] = field(  # noqa: UP006
        default_factory=lambda: {"num_cpus": 1, "max_retries": 0})


@dataclass
class RayLauncherConf:
    _target_: str = "hydra_plugins.dlpractice_ray_launcher.ray_launcher.RayLauncher"
    ray: RayConf = field(default_factory=RayConf)


ConfigStore.instance().store(
    group="hydra/launcher", name="dlpractice_ray", node=RayLauncherConf, provider="dlpractice",
)
