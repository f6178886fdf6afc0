"""Input normalization: zero mean and unit variance per feature, fitted on the training set only.

Dev and test get the *training* mean and std unchanged: they stand for future data, normalized with
the statistics we have. Owns: ``NormStats`` and its serialization. Must not touch: splitting.
"""

import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlpractice.data.split import Splits
from dlpractice.errors import DataError


@dataclass(frozen=True, eq=False)
class NormStats:
    """Per-feature mean and std, both (n, 1), so ``(X - mean) / std`` broadcasts over examples."""

    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        mean, std = np.asarray(self.mean, dtype=np.float64), np.asarray(self.std, dtype=np.float64)
        if mean.ndim != 2 or mean.shape[1] != 1 or std.shape != mean.shape:
            raise DataError(
                f"normalizer mean {mean.shape} and std {std.shape} must both be (n, 1)"
            )
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise DataError("normalizer mean/std must be finite with std > 0")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @property
    def n_features(self) -> int:
        return self.mean.shape[0]

    def to_dict(self) -> dict[str, list[float]]:
        """Plain lists, so the stats can go into JSON (an MLflow artifact, a DVC metric file)."""
        return {"mean": self.mean[:, 0].tolist(), "std": self.std[:, 0].tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "NormStats":
        missing = [k for k in ("mean", "std") if k not in data]
        if missing:
            raise DataError(
                f"normalizer dict has no key '{missing[0]}' (keys: {', '.join(sorted(data))})"
            )
        try:
            mean = np.asarray(data["mean"], dtype=np.float64).reshape(-1, 1)
            std = np.asarray(data["std"], dtype=np.float64).reshape(-1, 1)
        except (TypeError, ValueError) as exc:
            raise DataError(f"normalizer dict values must be lists of numbers: {exc}") from exc
        return cls(mean, std)

    def save_npz(self, path: str | Path) -> None:
        np.savez(Path(path), mean=self.mean, std=self.std)

    @classmethod
    def load_npz(cls, path: str | Path) -> "NormStats":
        path = Path(path)
        try:
            raw = path.read_bytes()
            with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
                data = {k: archive[k] for k in archive.files}
        except FileNotFoundError as exc:
            raise DataError(f"normalizer file '{path}' does not exist") from exc
        except Exception as exc:  # any reader failure means a corrupt file
            raise DataError(f"normalizer file '{path}' cannot be read as .npz: {exc}") from exc
        return cls.from_dict(data)


def fit_normalizer(X_train: np.ndarray) -> NormStats:
    """Mean and std of each feature over the training examples.

    A constant feature (all values equal) gets std 1 rather than 0: it carries no information,
    and dividing by 1 leaves it at zero instead of producing nan.
    """
    X_train = np.asarray(X_train)
    if X_train.ndim != 2 or X_train.size == 0 or not np.isfinite(X_train).all():
        raise DataError(
            f"cannot fit a normalizer on X of shape {X_train.shape}: need a non-empty, finite "
            "(n_features, m) array"
        )
    mean = X_train.mean(axis=1, keepdims=True)
    std = X_train.std(axis=1, keepdims=True)
    constant = np.ptp(X_train, axis=1, keepdims=True) == 0
    return NormStats(mean, np.where(constant, 1.0, std))


def apply_normalizer(stats: NormStats, X: np.ndarray) -> np.ndarray:
    """Normalize X with fitted statistics (never refitted: see the module docstring)."""
    if X.ndim != 2 or X.shape[0] != stats.n_features:
        raise DataError(
            f"X has shape {X.shape}; the normalizer was fitted on {stats.n_features} features"
        )
    return (X - stats.mean) / stats.std


def normalize_splits(splits: Splits) -> tuple[Splits, NormStats]:
    """Fit on train, apply the same stats to train, dev and test."""
    stats = fit_normalizer(splits.X_train)
    normalized = dataclasses.replace(
        splits,
        X_train=apply_normalizer(stats, splits.X_train),
        X_dev=apply_normalizer(stats, splits.X_dev),
        X_test=apply_normalizer(stats, splits.X_test),
    )
    return normalized, stats
