"""A run's train, dev and test sets as MLflow dataset inputs, and its metrics linked to them.

Owns the datasets' names, digests, sources, schemas and profiles (:class:`RunDatasets`) and which
metric belongs to which split; builds MLflow entities only (:mod:`.runs` logs them). Must not load,
split or write data: it describes the arrays the run used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow.entities import DatasetInput, Metric

    from dlpractice.config import Config
    from dlpractice.pipeline import PreparedData

__all__ = ["CONTEXT_TAG", "DIGEST_LENGTH", "SPLITS", "RunDatasets", "split_of"]

SPLITS = ("train", "dev", "test")
CONTEXT_TAG = "mlflow.data.context"  # mlflow.utils.mlflow_tags.MLFLOW_DATASET_CONTEXT
DIGEST_LENGTH = 16  # hex characters; MLflow stores at most 36


def split_of(metric: str) -> str | None:
    """The split a metric measures: ``train_*`` -> train, ``dev_*`` -> dev, ``test_*`` -> test."""
    prefix, sep, _ = metric.partition("_")
    return prefix if sep and prefix in SPLITS else None


@lru_cache(maxsize=64)
def _schema(n_features: int) -> str:
    """MLflow's column-spec JSON: the features ``x1``…``xn`` and the label ``y`` (float64)."""
    names = [f"x{i}" for i in range(1, n_features + 1)] + ["y"]
    return json.dumps({"mlflow_colspec": [{"type": "double", "name": name, "required": True}
                                          for name in names]})


def _source(cfg: Config) -> tuple[str, str]:
    """(source type, source JSON): a data file's path (MLflow's ``local`` source), else the
    generator's settings as the config gives them (MLflow's ``code`` source)."""
    d = cfg.data
    if d.name == "file":
        return "local", json.dumps({"uri": str(Path(str(d.path)).resolve())})
    settings = {"name": d.name, "n_samples": d.n_samples, "noise": d.noise, "seed": cfg.seed,
                "ratios": list(d.ratios), "dev_size": d.dev_size, "test_size": d.test_size,
                "split_heldout": d.split_heldout, "feature_scales": d.feature_scales,
                "course_compat": cfg.course_compat}
    return "code", json.dumps({"tags": settings})


@dataclass(frozen=True)
class RunDatasets:
    """The three splits of one run as MLflow ``Dataset`` entities, by split name.

    Name ``<data>-<split>`` (``moons-train``; a file's name: ``football.mat-dev``); digest: the
    first ``DIGEST_LENGTH`` hex characters of the split's :func:`~dlpractice.data.array_fingerprint`
    (its X and Y), so equal digests mean equal examples; profile ``{"num_rows": examples}``.
    """

    datasets: Mapping[str, Any]

    @classmethod
    def of(cls, cfg: Config, data: PreparedData) -> RunDatasets:
        """The datasets of a run of ``cfg`` on ``data`` (its raw splits, before normalization)."""
        from mlflow.entities import Dataset

        from dlpractice.data import array_fingerprint

        base = Path(str(cfg.data.path)).name if cfg.data.name == "file" else cfg.data.name
        source_type, source = _source(cfg)
        s = data.splits
        arrays = {"train": (s.X_train, s.Y_train), "dev": (s.X_dev, s.Y_dev),
                  "test": (s.X_test, s.Y_test)}
        return cls({split: Dataset(
            name=f"{base}-{split}", digest=array_fingerprint(X, Y)[:DIGEST_LENGTH],
            source_type=source_type, source=source, schema=_schema(int(X.shape[0])),
            profile=json.dumps({"num_rows": int(X.shape[1])}),
        ) for split, (X, Y) in arrays.items()})

    def inputs(self) -> list[DatasetInput]:
        """The run's inputs: each split tagged ``mlflow.data.context`` = its name."""
        from mlflow.entities import DatasetInput, InputTag

        return [DatasetInput(dataset, [InputTag(CONTEXT_TAG, split)])
                for split, dataset in self.datasets.items()]

    def metrics(self, values: Mapping[str, float], timestamp: int, step: int = 0,
                model_id: str | None = None) -> list[Metric]:
        """``values`` as MLflow metrics at ``step``, each ``train_*``/``dev_*``/``test_*`` one
        linked to its split's dataset (``dataset_name``, ``dataset_digest``); ``model_id``
        attaches them to a logged model too, the only metrics whose links MLflow stores."""
        from mlflow.entities import Metric

        out = []
        for key, value in values.items():
            dataset = self.datasets.get(split_of(key) or "")
            out.append(Metric(key, float(value), timestamp, step, model_id=model_id,
                              dataset_name=dataset.name if dataset else None,
                              dataset_digest=dataset.digest if dataset else None))
        return out
