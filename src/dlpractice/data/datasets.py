"""One entry point from a dataset name (a config value) to train/dev/test splits and a fingerprint.

The fingerprint (sha256 hex) identifies the data a run used: a file's bytes, or the generated
arrays' bytes (with label noise: the arrays' after it); with the split seed and ratios it pins the
exact examples of each split. Owns: the policy from name to splits. Must not touch: configs (it takes
plain values), training.
"""

import hashlib
from collections.abc import Sequence
from numbers import Real
from pathlib import Path

import numpy as np

from dlpractice.data.files import load_file
from dlpractice.data.generators import GENERATOR_NAMES, course_dataset, football_like, generate
from dlpractice.data.split import Splits, from_heldout, split
from dlpractice.errors import ConfigError, DataError

DATASET_NAMES: tuple[str, ...] = ("file", *GENERATOR_NAMES)


def load_dataset(
    name: str,
    *,
    path: str | Path | None = None,
    n_samples: int | None = None,
    noise: float | None = None,
    seed: int = 0,
    course_compat: bool = False,
    split_ratios: Sequence[float] = (0.6, 0.2, 0.2),
    dev_size: int | None = None,
    test_size: int | None = None,
    split_heldout: bool = False,
    label_noise: float = 0.0,
) -> tuple[Splits, str]:
    """The splits of dataset ``name`` and the data's fingerprint.

    A held-out part (a file's Xval/yval, ``football_like``, the course's circles) is dev and test,
    as in the course, unless ``split_heldout`` pools it with train; all else is split by
    ``split_ratios`` or ``dev_size``/``test_size`` with ``seed`` (``course_compat``: the course's arrays).
    ``label_noise`` flips that fraction of the labels at random before the split (see
    :func:`flip_labels`): the data's Bayes error is then at least ``label_noise``.
    """
    if name not in DATASET_NAMES:
        raise DataError(f"unknown dataset '{name}' (allowed: {', '.join(DATASET_NAMES)})")
    if (name == "file") != (path is not None):
        raise ConfigError(
            f"dataset '{name}' with path={path!r}; a path is required for 'file' and "
            "allowed for 'file' only"
        )
    if name == "file":
        if n_samples is not None or noise is not None or course_compat:
            raise ConfigError(
                "dataset 'file' takes no n_samples, noise or course_compat (got "
                f"n_samples={n_samples}, noise={noise}, course_compat={course_compat})"
            )
        data = load_file(path)
        arrays = (data.X, data.Y) + ((data.X_val, data.Y_val) if data.has_heldout else ())
        fingerprint = data.fingerprint
    else:
        if course_compat:
            arrays = course_dataset(name, n_samples, noise)
        elif name == "football_like":
            arrays = football_like(seed, n_train=n_samples, noise=noise)
        else:
            arrays = generate(name, n_samples, noise, seed=seed)
        fingerprint = array_fingerprint(*arrays)
    if label_noise:
        arrays = flip_labels(arrays, label_noise, seed)
        fingerprint = array_fingerprint(*arrays)

    if len(arrays) == 4 and not split_heldout:
        return from_heldout(*arrays), fingerprint
    if len(arrays) == 4:
        X_train, Y_train, X_val, Y_val = arrays
        arrays = (np.hstack([X_train, X_val]), np.hstack([Y_train, Y_val]))
    splits = split(*arrays, ratios=split_ratios, dev_size=dev_size, test_size=test_size, seed=seed)
    return splits, fingerprint


# The label noise's generator: default_rng((seed, LABEL_NOISE_STREAM)), apart from the others.
LABEL_NOISE_STREAM = 2


def flip_labels(arrays: Sequence[np.ndarray], label_noise: float, seed: int = 0
                ) -> tuple[np.ndarray, ...]:
    """``(X, Y[, X_val, Y_val])`` with each label flipped (0 <-> 1) with probability
    ``label_noise``, independently of its features: ``default_rng((seed, 2)).random(m) <
    label_noise`` over Y's examples, then over Y_val's."""
    if isinstance(label_noise, bool) or not isinstance(label_noise, Real) or not (
        0 <= label_noise < 0.5
    ):
        raise ConfigError(f"label_noise is {label_noise!r}; allowed: a number in [0, 0.5)")
    rng = np.random.default_rng((seed, LABEL_NOISE_STREAM))
    out = list(arrays)
    for k in range(1, len(out), 2):
        flip = rng.random(out[k].shape[1]) < label_noise
        out[k] = np.where(flip, 1.0 - out[k], out[k])
    return tuple(out)


def array_fingerprint(*arrays: np.ndarray) -> str:
    """sha256 hex over each array's dtype, shape and bytes (so a transpose changes it)."""
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.dtype.str}{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()
