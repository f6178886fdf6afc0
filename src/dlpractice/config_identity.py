"""What names and identifies a loaded config: its readable run name, its hash (how a re-run sweep
finds its finished runs), the flat params MLflow records, whether its test split stays unseen.
Reads :class:`~dlpractice.config.Config` objects; never loads or validates one.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dlpractice.config import Config


def run_name(cfg: Config) -> str:
    """A readable run name: ``he-l2_0.7``, ``xavier-dropout_0.86``, ``zeros-none``."""
    if cfg.tracking.run_name:
        return cfg.tracking.run_name
    r = cfg.regularizer
    reg = r.name
    if r.name in ("l2", "l1"):
        reg += f"_{r.lambd:g}"
    elif r.name == "dropout":
        kp = r.keep_prob
        reg += "_" + ("-".join(f"{k:g}" for k in kp) if isinstance(kp, (list, tuple)) else f"{kp:g}")
    return f"{cfg.init.name}-{reg}"


def shown_in_name(cfg: Config) -> frozenset[str]:
    """The config keys that :func:`run_name` derives its name from (a sweep that varies another
    key adds that key's value to its jobs' names)."""
    shown = {"init", "init.name", "regularizer", "regularizer.name"}
    if cfg.regularizer.name in ("l2", "l1"):
        shown.add("regularizer.lambd")
    elif cfg.regularizer.name == "dropout":
        shown.add("regularizer.keep_prob")
    return frozenset(shown)


def tests_hidden(cfg: Config, sweep: bool) -> bool:
    """Does this run keep its test split unseen? Only a sweep's jobs do (``selection.hide_test``):
    a single run is not a selection and reports its test metrics."""
    return sweep and cfg.selection.hide_test


def config_hash(cfg: Config, *, test_hidden: bool = False) -> str:
    """sha256 of what determines a run's record: its settings (everything but ``tracking``,
    ``selection`` and ``recipe``) and, for a run that logged no test metrics (``test_hidden``), that fact.

    A re-run sweep finds FINISHED runs by this hash and skips them: a run that hid its test
    metrics is not the record a sweep that shows them (or a single run) needs, nor the other way
    round. ``selection.metric`` changes no run's record, only the sweep's choice among them.
    """
    settings: dict[str, Any] = {k: v for k, v in cfg.to_dict().items()
                                if k not in ("tracking", "selection", "recipe")}
    if test_hidden:
        settings["test_hidden"] = True
    canonical = json.dumps(settings, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}} -> {"a.b": 1}`` (lists kept as values): the params MLflow records."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out
