"""The basic recipe's decisions, pure: given a run's diagnosis and its settings, the next step's
changed settings (as Hydra overrides) and the reason, in the lecture's order — high avoidable bias
first (more units, then more layers, then longer training), then high variance (more data while
``data.train_size`` can grow, then L2 with λ going up, then dropout with keep_prob going down).

Owns the rule and its limits. Must not touch: configs, files, training, MLflow (the door,
:mod:`dlpractice.recipe`, runs the steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from dlpractice.diagnose import Diagnosis

UNITS_MAX = 64  # the widest hidden layer the recipe grows to
LAYERS_MAX = 3  # hidden layers
ITERATIONS_MAX = 16000
LAMBD_START, LAMBD_FACTOR, LAMBD_MAX = 0.1, 3.0, 10.0
KEEP_START, KEEP_STEP, KEEP_MIN = 0.8, 0.1, 0.5

START, DONE, STOP = "start", "done", "stop"  # the first step; good fit; nothing left to try


@dataclass(frozen=True)
class Settings:
    """What the recipe may change, as the current step ran it."""

    hidden: tuple[int, ...]
    iterations: int
    train_size: int | float | None  # data.train_size as configured
    n_used: int  # training examples this step used
    n_train: int  # examples of the whole train split
    regularizer: str = "none"
    lambd: float = 0.0
    keep_prob: float | tuple[float, ...] = 1.0


@dataclass(frozen=True)
class Decision:
    action: str
    reason: str
    overrides: dict[str, Any] = field(default_factory=dict)  # key -> value (Hydra override)


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _round(value: float) -> float:
    return float(f"{value:.3g}")


def decide(diagnosis: Diagnosis, s: Settings) -> Decision:
    """The next step after a run diagnosed ``diagnosis`` with settings ``s``: bias first."""
    if diagnosis.label in ("high_bias", "high_bias_high_variance"):
        why = f"high avoidable bias ({pct(diagnosis.avoidable_bias)})"
        return _for_bias(why, s)
    if diagnosis.label == "high_variance":
        return _for_variance(f"high variance ({pct(diagnosis.variance)})", s)
    return Decision(DONE, f"good fit: avoidable bias {pct(diagnosis.avoidable_bias)}, variance "
                          f"{pct(diagnosis.variance)}")


def _for_bias(why: str, s: Settings) -> Decision:
    hidden = list(s.hidden)
    if max(hidden) < UNITS_MAX:
        wider = [min(2 * n, UNITS_MAX) for n in hidden]
        return Decision("more_units", f"{why}: a bigger network, units {hidden} → {wider}",
                        {"model.hidden": wider})
    if len(hidden) < LAYERS_MAX:
        deeper = [*hidden, hidden[-1]]
        overrides: dict[str, Any] = {"model.hidden": deeper}
        if isinstance(s.keep_prob, tuple):  # one keep_prob per hidden layer
            overrides["regularizer.keep_prob"] = [*s.keep_prob, s.keep_prob[-1]]
        return Decision("more_layers", f"{why}: a bigger network, layers {hidden} → {deeper}",
                        overrides)
    if s.iterations < ITERATIONS_MAX:
        longer = min(2 * s.iterations, ITERATIONS_MAX)
        return Decision("train_longer", f"{why}: train longer, {s.iterations} → {longer} "
                                        "iterations", {"train.iterations": longer})
    return Decision(STOP, f"{why} with the biggest network ({hidden}) and longest training "
                          f"({s.iterations}) the recipe tries: try another architecture")


def _for_variance(why: str, s: Settings) -> Decision:
    if s.n_used < s.n_train:
        size: int | float | None
        if isinstance(s.train_size, float):
            size = _round(2 * s.train_size)
            count = math.floor(size * s.n_train + 0.5)  # as data.train_size rounds a fraction
        else:
            size = count = 2 * s.n_used
        if count >= s.n_train:  # a fraction of 1 or more counts the whole split too
            size, count = None, s.n_train  # the whole train split
        return Decision("more_data", f"{why}: more data, {s.n_used} → {count} training examples",
                        {"data.train_size": size})
    whole = f"{why} on the whole train split ({s.n_train} examples)"
    if s.regularizer not in ("l2", "dropout"):
        return Decision("add_l2", f"{whole}: L2 regularization, λ {LAMBD_START:g}",
                        {"regularizer": "l2", "regularizer.lambd": LAMBD_START})
    if s.regularizer == "l2" and s.lambd < LAMBD_MAX:
        lambd = min(_round(max(s.lambd, LAMBD_START / LAMBD_FACTOR) * LAMBD_FACTOR), LAMBD_MAX)
        return Decision("raise_l2", f"{whole}: more L2, λ {s.lambd:g} → {lambd:g}",
                        {"regularizer.lambd": lambd})
    if s.regularizer == "l2":
        return Decision("add_dropout", f"{whole} at λ {s.lambd:g}: dropout instead, keep_prob "
                                       f"{KEEP_START:g}",
                        {"regularizer": "dropout", "regularizer.lambd": 0.0,
                         "regularizer.keep_prob": KEEP_START})
    keep = s.keep_prob if isinstance(s.keep_prob, tuple) else (s.keep_prob,)
    if min(keep) > KEEP_MIN:
        lower = max(KEEP_MIN, _round(min(keep) - KEEP_STEP))
        return Decision("lower_keep_prob", f"{whole}: more dropout, keep_prob {min(keep):g} → "
                                           f"{lower:g}", {"regularizer.keep_prob": lower})
    return Decision(STOP, f"{whole} with dropout at keep_prob {min(keep):g}: try another "
                          "architecture")


def start_reason(overrides: list[str]) -> str:
    """Why step 0 runs: the start the command line composed."""
    return "the start: " + (" ".join(overrides) or "the composed config")


def override_value(value: Any) -> str:
    """A value as Hydra's override grammar reads it back (``[8,8]``, ``null``, ``0.3``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def overrides_list(changes: dict[str, Any]) -> list[str]:
    """``{"model.hidden": [8]}`` -> ``["model.hidden=[8]"]`` (in the dict's order)."""
    return [f"{key}={override_value(value)}" for key, value in changes.items()]
