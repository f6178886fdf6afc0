"""The one adapter to private parts of Hydra 1.3 and OmegaConf 2.3; nothing else in src/ may touch
them (tests/test_private_api.py). Each use is guarded by :func:`supported` (the versions it was
written against; tests/test_private_api.py fails when they change) and has a public fallback.

- :func:`hydra_args_parser`: Hydra's own command-line parser, so that misuse is one line.
- :func:`install_sweep_config_cache`: a sweep's job configs composed once per set of config-group
  choices, the others derived the way Hydra's loader applies a value override (its
  ``get_overrides_dirname``, ``OmegaConf.copy_cache``), in place of ``load_sweep_config``.
"""

from __future__ import annotations

import argparse
import copy
import pickle
from collections.abc import Callable
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType, ValueType
from omegaconf import DictConfig, OmegaConf

HYDRA_VERSIONS = ("1.3.",)
OMEGACONF_VERSIONS = ("2.3.",)


def supported() -> bool:
    """Are the installed Hydra and OmegaConf the versions this adapter was written for?"""
    import hydra
    import omegaconf

    return (hydra.__version__.startswith(HYDRA_VERSIONS)
            and omegaconf.__version__.startswith(OMEGACONF_VERSIONS))


def hydra_args_parser() -> argparse.ArgumentParser | None:
    """Hydra's argument parser (None on other versions: Hydra then reports misuse itself)."""
    if not supported():
        return None
    from hydra._internal.utils import get_args_parser

    return get_args_parser()


_MISSING = object()


class SweepConfigCache:
    """A drop-in for ``ConfigLoader.load_sweep_config`` (``cache(master_config, overrides)``)."""

    def __init__(self, load_sweep_config: Callable[[DictConfig, list[str]], DictConfig],
                 group_exists: Callable[[str], bool]):
        self._load = load_sweep_config
        self._group_exists = group_exists
        self._parser = OverridesParser.create()
        self._bases: dict[tuple[Any, ...], bytes | DictConfig] = {}  # pickled if it can be
        self._loaded: dict[tuple[Any, ...], DictConfig] = {}
        # a sweep's jobs repeat most override lines: each is parsed and judged once
        self._lines: dict[str, tuple[Override, bool]] = {}
        self.composed = 0  # configs Hydra composed (the rest were derived)

    def __call__(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        # Hydra's sweeper validates a batch by loading every job's config and dropping it, then
        # the launcher loads the same: that second load takes the object the first one made.
        once = (id(master_config), tuple(sweep_overrides))
        cfg = self._loaded.pop(once, None)
        if cfg is None:
            cfg = self._loaded[once] = self._derive(master_config, sweep_overrides)
        return cfg

    def _derive(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        try:
            lines = [self._line(line) for line in sweep_overrides]
        except Exception:  # let Hydra report it
            return self._compose(master_config, sweep_overrides)
        parsed = [o for o, _ in lines]
        values = [o for o, plain in lines if plain]
        structural = tuple(o.input_line for o, plain in lines if not plain)
        key = (id(master_config), structural, tuple(o.key_or_group for o in values))
        base = self._bases.get(key)
        if base is None or not values:
            cfg = self._compose(master_config, sweep_overrides)
            if values:
                try:  # copies are unpickled: ~2x faster than copy.deepcopy of a DictConfig
                    self._bases[key] = pickle.dumps(cfg, pickle.HIGHEST_PROTOCOL)
                except Exception:  # something in it does not pickle (by reference)
                    self._bases[key] = copy.deepcopy(cfg)
            return cfg
        cfg = pickle.loads(base) if isinstance(base, bytes) else copy.deepcopy(base)
        for o in values:
            if OmegaConf.select(cfg, o.key_or_group, default=_MISSING) is _MISSING:
                return self._compose(master_config, sweep_overrides)
            OmegaConf.update(cfg, o.key_or_group, o.value(), merge=True)
        app = [o for o in parsed if not o.is_hydra_override()]
        cfg.hydra.overrides.task = [o.input_line for o in app]
        dirname = cfg.hydra.job.config.override_dirname
        cfg.hydra.job.override_dirname = _overrides_dirname(
            app, list(dirname.exclude_keys), dirname.item_sep, dirname.kv_sep)
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
        return cfg

    def _compose(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        self.composed += 1
        return self._load(master_config, list(sweep_overrides))

    def _line(self, line: str) -> tuple[Override, bool]:
        """An override line parsed, and whether it sets a plain value (not a group or a list)."""
        if line not in self._lines:
            o = self._parser.parse_overrides([line])[0]
            self._lines[line] = (o, self._is_plain_value(o))
        return self._lines[line]

    def _is_plain_value(self, o: Override) -> bool:
        if (o.is_hydra_override() or o.package is not None or o.type != OverrideType.CHANGE
                or o.value_type != ValueType.ELEMENT):
            return False
        key = o.key_or_group
        if "/" in key or self._group_exists(key.replace(".", "/")):
            return False
        return not isinstance(o.value(), (dict, list))


def _overrides_dirname(overrides: list[Override], exclude_keys: list[str], item_sep: str,
                       kv_sep: str) -> str:
    from hydra._internal.config_loader_impl import get_overrides_dirname  # private: see above

    return get_overrides_dirname(overrides=overrides, exclude_keys=exclude_keys, item_sep=item_sep,
                                 kv_sep=kv_sep)


def install_sweep_config_cache(config_loader: Any) -> SweepConfigCache | None:
    """Route ``config_loader.load_sweep_config`` (also used by the sweeper's batch validation)
    through a :class:`SweepConfigCache`; None when the versions are not the ones this adapter
    knows or the loader is not Hydra's usual one (Hydra then composes every job itself)."""
    if not supported():
        return None
    current = getattr(config_loader, "load_sweep_config", None)
    if isinstance(current, SweepConfigCache):
        return current
    repo = getattr(config_loader, "repository", None)
    if current is None or repo is None or not hasattr(repo, "group_exists"):
        return None
    cache = SweepConfigCache(current, repo.group_exists)
    config_loader.load_sweep_config = cache
    return cache
