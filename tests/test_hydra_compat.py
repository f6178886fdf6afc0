"""The sweep config cache (``hydra_compat.SweepConfigCache``), in process: every job config it
derives equals the one Hydra's own loader composes for the same overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import OmegaConf

from dlpractice import hydra_compat

ROOT = Path(__file__).resolve().parents[1]
COMMON = ["data=moons", "train.iterations=100"]
JOBS = [
    [*COMMON, "regularizer=l2", "regularizer.lambd=0"],
    [*COMMON, "regularizer=l2", "regularizer.lambd=0.1"],
    [*COMMON, "regularizer=l2", "regularizer.lambd=0.7"],
    [*COMMON, "regularizer=dropout", "regularizer.keep_prob=0.8"],
    [*COMMON, "regularizer=dropout", "regularizer.keep_prob=0.5"],
    [*COMMON, "regularizer=l2", "regularizer.lambd=0.3", "hydra.job.chdir=false"],
    [*COMMON, "regularizer=l2", "regularizer.lambd=0.4", "hydra.job.chdir=false"],
    [*COMMON, "regularizer=l2", "seed=3", "model.hidden=[5,3]"],
    [*COMMON, "regularizer=l2", "+regularizer.extra=1"],
]


@pytest.fixture(scope="module")
def loader_and_master():
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", list(COMMON), RunMode.MULTIRUN)
        yield loader, master


def plain(cfg):
    return OmegaConf.to_container(cfg, resolve=False)


def test_every_derived_job_config_is_hydras_own(loader_and_master):
    loader, master = loader_and_master
    cache = hydra_compat.SweepConfigCache(loader.load_sweep_config,
                                          loader.repository.group_exists)
    made = []
    for overrides in JOBS:
        expected = plain(loader.load_sweep_config(master, list(overrides)))
        first = cache(master, list(overrides))  # the sweeper's check of the batch
        assert plain(first) == expected, overrides
        assert cache(master, list(overrides)) is first  # the launcher's load takes that one
        third = cache(master, list(overrides))  # a later load: a config of its own
        assert third is not first and plain(third) == expected, overrides
        made.append((first, expected))
    # every job's config is its own: deriving the next ones changed none of them
    assert [plain(cfg) for cfg, _ in made] == [expected for _, expected in made]
    # one composition per set of group choices and structural overrides; values are derived
    assert cache.composed == 5


def test_configs_that_do_not_pickle_are_copied_and_stay_each_jobs_own(loader_and_master,
                                                                      monkeypatch):
    loader, master = loader_and_master

    def refuse(*args, **kwargs):
        raise TypeError("cannot pickle")

    monkeypatch.setattr(hydra_compat.pickle, "dumps", refuse)
    cache = hydra_compat.SweepConfigCache(loader.load_sweep_config,
                                          loader.repository.group_exists)
    made = [(cache(master, list(o)), plain(loader.load_sweep_config(master, list(o))))
            for o in JOBS]
    assert [plain(cfg) for cfg, _ in made] == [expected for _, expected in made]
    assert cache.composed == 5


def test_each_master_config_derives_its_own_jobs(loader_and_master):
    """Two sweeps through one loader (e.g. a notebook): the same job lines under another master
    config (here another sweep folder) give that master's values."""
    loader, master = loader_and_master
    other = loader.load_configuration("config", [*COMMON, "hydra.sweep.dir=/elsewhere"],
                                      RunMode.MULTIRUN)
    cache = hydra_compat.SweepConfigCache(loader.load_sweep_config,
                                          loader.repository.group_exists)
    for lambd in (0.1, 0.2):
        overrides = [*COMMON, "regularizer=l2", f"regularizer.lambd={lambd}"]
        cache(master, list(overrides))
        got = cache(other, list(overrides))
        assert plain(got) == plain(loader.load_sweep_config(other, list(overrides)))
        assert got.hydra.sweep.dir == "/elsewhere" and got.regularizer.lambd == lambd


def test_the_adapter_refuses_other_versions(monkeypatch):
    import hydra
    import omegaconf

    assert hydra_compat.supported()
    monkeypatch.setattr(omegaconf, "__version__", "2.4.0")
    assert not hydra_compat.supported()
    monkeypatch.setattr(omegaconf, "__version__", "2.3.0")
    monkeypatch.setattr(hydra, "__version__", "1.4.0")
    assert not hydra_compat.supported()


def test_lines_parsed_once_still_give_each_job_its_own_values(loader_and_master):
    """The same lines in another order, or another job's value: Hydra's config each time."""
    loader, master = loader_and_master
    cache = hydra_compat.SweepConfigCache(loader.load_sweep_config,
                                          loader.repository.group_exists)
    jobs = [([*COMMON, "regularizer=l2", "regularizer.lambd=0.2"], 0.2),
            ([*COMMON, "regularizer=l2", "regularizer.lambd=0.4"], 0.4),
            (["regularizer.lambd=0.4", "regularizer=l2", *COMMON], 0.4),
            ([*COMMON, "regularizer=l2", "regularizer.lambd=0.2"], 0.2)]
    for overrides, lambd in jobs:
        got = cache(master, list(overrides))
        assert plain(got) == plain(loader.load_sweep_config(master, list(overrides)))
        assert got.regularizer.lambd == lambd


def test_a_line_hydra_cannot_parse_is_reported_by_hydra(loader_and_master):
    loader, master = loader_and_master
    cache = hydra_compat.SweepConfigCache(loader.load_sweep_config,
                                          loader.repository.group_exists)
    bad = [*COMMON, "regularizer.lambd=[1,"]
    with pytest.raises(HydraException) as hydra_says:
        loader.load_sweep_config(master, list(bad))
    with pytest.raises(HydraException) as cache_says:
        cache(master, list(bad))
    assert str(cache_says.value) == str(hydra_says.value)
