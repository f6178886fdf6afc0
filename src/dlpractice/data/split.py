"""Train/dev/test splits: seeded, stratified by class, by ratios or by fixed sizes.

Ratios (60/20/20) suit small data; for big data the course's advice is a small fixed dev and test
set (e.g. 10_000 examples each out of a million), hence ``dev_size``/``test_size``.
Owns: ``Splits`` and how examples are shared out. Must not touch: loading, normalizing.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real

import numpy as np

from dlpractice.data.files import validate_xy
from dlpractice.errors import ConfigError, DataError


@dataclass(frozen=True, eq=False)
class Splits:
    """Train, dev and test sets, each in course orientation X (n, m), Y (1, m)."""

    X_train: np.ndarray
    Y_train: np.ndarray
    X_dev: np.ndarray
    Y_dev: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {
            "train": self.X_train.shape[1],
            "dev": self.X_dev.shape[1],
            "test": self.X_test.shape[1],
        }


def split(
    X: np.ndarray,
    Y: np.ndarray,
    ratios: Sequence[float] = (0.6, 0.2, 0.2),
    dev_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
    stratify: bool = True,
) -> Splits:
    """Split by ``ratios`` (train, dev, test), or by ``dev_size`` and ``test_size`` when given.

    Stratified, each class is shuffled and shared out so every split keeps the class proportions
    to within one example; then each split is shuffled so classes are interleaved.
    """
    validate_xy(X, Y, "data to split", both_classes=True)
    m = X.shape[1]
    n_dev, n_test = _dev_test_sizes(m, ratios, dev_size, test_size)
    sizes = np.array([m - n_dev - n_test, n_dev, n_test])
    rng = np.random.default_rng(seed)
    if stratify:
        parts = _stratified(Y[0], sizes, rng)
    else:
        parts = np.split(rng.permutation(m), np.cumsum(sizes)[:2])
    train, dev, test = parts
    if np.unique(Y[0, train]).size < 2:
        raise DataError(
            f"train split has only one class ({Y[0, train[0]]:g}) among {train.size} examples; "
            "use stratify=True or more data"
        )
    return Splits(X[:, train], Y[:, train], X[:, dev], Y[:, dev], X[:, test], Y[:, test])


# The subsample's generator: default_rng((seed, SUBSAMPLE_STREAM)), apart from the split's.
SUBSAMPLE_STREAM = 1


def subsample(splits: Splits, train_size: int, seed: int = 0) -> Splits:
    """The same splits with only ``train_size`` examples of train; dev and test are the very same
    arrays.

    Stratified: class 0 takes ``round(train_size * m0 / m)`` (halves up) of train's ``m`` examples,
    ``m0`` of them of class 0, so each class is within half an example of its share; class 1 the
    rest. Each class's examples are shuffled by ``default_rng((seed, 1))`` (class 0's first) and
    the first ones taken, so a smaller subsample is part of every larger one; they keep their
    order in train. All of train returns ``splits`` itself.
    """
    m = splits.X_train.shape[1]
    if isinstance(train_size, bool) or not isinstance(train_size, int | np.integer) or not (
        1 <= train_size <= m
    ):
        raise ConfigError(f"train_size is {train_size!r}; allowed: an integer in [1, {m}] "
                          "(the train split's size)")
    if train_size == m:
        return splits
    labels = splits.Y_train[0]
    members = [np.flatnonzero(labels == c) for c in (0, 1)]
    n0 = (2 * int(train_size) * members[0].size + m) // (2 * m)
    rng = np.random.default_rng((seed, SUBSAMPLE_STREAM))
    taken = [rng.permutation(members[c])[:n] for c, n in ((0, n0), (1, train_size - n0))]
    if min(t.size for t in taken) == 0:
        missing = 0 if taken[0].size == 0 else 1
        raise DataError(
            f"train_size={train_size} takes no example of class {missing} ({members[missing].size} "
            f"of the train split's {m}); allowed: a larger train_size"
        )
    keep = np.sort(np.concatenate(taken))
    return Splits(splits.X_train[:, keep], splits.Y_train[:, keep], splits.X_dev, splits.Y_dev,
                  splits.X_test, splits.Y_test)


def from_heldout(X: np.ndarray, Y: np.ndarray, X_val: np.ndarray, Y_val: np.ndarray) -> Splits:
    """Data shipping its own held-out part (e.g. football.mat), as the course uses it.

    X_val/Y_val is BOTH dev and test: the course tunes on Xval and reports it as the test accuracy,
    so our numbers stay comparable with its own (at the price of an optimistic test score).
    """
    validate_xy(X, Y, "train data", both_classes=True)
    validate_xy(X_val, Y_val, "held-out data")
    if X_val.shape[0] != X.shape[0]:
        raise DataError(
            f"held-out data has {X_val.shape[0]} features but train has {X.shape[0]}; "
            "they must match"
        )
    return Splits(X, Y, X_val, Y_val, X_val, Y_val)


def _dev_test_sizes(
    m: int, ratios: Sequence[float], dev_size: int | None, test_size: int | None
) -> tuple[int, int]:
    if dev_size is None and test_size is None:
        r_train, r_dev, r_test = _check_ratios(ratios)
        n_dev, n_test = round(m * r_dev), round(m * r_test)
        for name, ratio, n in (("dev", r_dev, n_dev), ("test", r_test, n_test)):
            if ratio > 0 and n == 0:
                raise DataError(
                    f"{name} split would be empty: ratio {ratio:g} of {m} examples rounds to 0; "
                    "use more data or a larger ratio"
                )
        if n_dev + n_test >= m:
            raise DataError(
                f"train split would be empty: ratio {r_train:g} of {m} examples; "
                "use more data or a larger train ratio"
            )
        return n_dev, n_test
    for name, value in (("dev_size", dev_size), ("test_size", test_size)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ConfigError(
                f"{name} is {value!r}; allowed: an integer >= 0, given with "
                "dev_size and test_size together"
            )
    if dev_size + test_size >= m:
        raise DataError(
            f"dev_size={dev_size} + test_size={test_size} leave no training example "
            f"out of {m}; allowed: dev_size + test_size < {m}"
        )
    return int(dev_size), int(test_size)


def _check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(ratios)
    if (
        len(values) != 3
        or not all(isinstance(r, Real) and not isinstance(r, bool) and math.isfinite(r) and r >= 0
                   for r in values)
        or values[0] <= 0
        or not math.isclose(sum(values), 1.0, abs_tol=1e-9)
    ):
        raise ConfigError(
            f"split ratios are {values!r}; allowed: (train, dev, test), each >= 0, train > 0, "
            "summing to 1"
        )
    return values


def _stratified(
    labels: np.ndarray, sizes: np.ndarray, rng: np.random.Generator
) -> list[np.ndarray]:
    """Share each (binary) class among the splits in proportion, each within one of its share.

    Class 0 by largest-remainder apportionment in exact integers (ties to the earlier split);
    class 1 fills the rest.
    """
    members = [rng.permutation(np.flatnonzero(labels == c)) for c in (0, 1)]
    m, m0 = labels.size, members[0].size
    take0 = sizes * m0 // m
    remainders = sizes * m0 % m
    take0[np.argsort(-remainders, kind="stable")[: m0 - take0.sum()]] += 1
    take = (take0, sizes - take0)
    cuts = [np.split(members[c], np.cumsum(take[c])[:2]) for c in (0, 1)]
    return [rng.permutation(np.concatenate(pair)) for pair in zip(*cuts, strict=True)]
