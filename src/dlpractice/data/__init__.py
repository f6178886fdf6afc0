"""Datasets in course orientation (X (n, m), Y (1, m)): generated, from files, split, normalized.

numpy/scipy only (scikit-learn is imported lazily by the toy generators). Must not touch: training,
configs, tracking.
"""

from dlpractice.data.datasets import DATASET_NAMES, array_fingerprint, flip_labels, load_dataset
from dlpractice.data.files import LoadedData, load_file, validate_xy
from dlpractice.data.generators import (
    GENERATOR_NAMES,
    course_circles,
    course_dataset,
    course_planar,
    football_like,
    generate,
)
from dlpractice.data.normalize import NormStats, apply_normalizer, fit_normalizer, normalize_splits
from dlpractice.data.split import Splits, from_heldout, split, subsample

__all__ = [
    "DATASET_NAMES",
    "GENERATOR_NAMES",
    "LoadedData",
    "NormStats",
    "Splits",
    "apply_normalizer",
    "array_fingerprint",
    "course_circles",
    "course_dataset",
    "course_planar",
    "fit_normalizer",
    "flip_labels",
    "football_like",
    "from_heldout",
    "generate",
    "load_dataset",
    "load_file",
    "normalize_splits",
    "split",
    "subsample",
    "validate_xy",
]
