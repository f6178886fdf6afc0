"""What a user would compute by hand from the files a run leaves: plain numpy and the lecture's
rules, none of dlpractice's own code paths. The tests compare what the project shows (MLflow,
DVC, tables, files) with these values."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from decimal import Decimal, localcontext
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
FOOTBALL = SHARED / "football.mat"

ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "tanh": np.tanh,
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
}


def logits(parameters: dict[str, np.ndarray], X: np.ndarray, activation: str) -> np.ndarray:
    L = len(parameters) // 2
    A = X
    for l in range(1, L):
        A = ACTIVATIONS[activation](parameters[f"W{l}"] @ A + parameters[f"b{l}"])
    return parameters[f"W{L}"] @ A + parameters[f"b{L}"]


def predict(parameters, X, activation="relu") -> np.ndarray:
    """The course's rule: label 1 where sigmoid(z) > 0.5."""
    return (1.0 / (1.0 + np.exp(-logits(parameters, X, activation))) > 0.5).astype(float)


def model_output(parameters, config: dict[str, Any], X_raw: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """What a run's MLflow model must answer for raw examples ``X_raw`` (n, m): the output unit's
    probability per example and its label (1 where > 0.5), the inputs normalized first with the
    train split's mean/std when ``data.normalize``."""
    if config["data"]["normalize"]:
        mean, std = normalizer(dataset(config)[0]["X_train"])
        X_raw = (X_raw - mean) / std
    z = logits(parameters, X_raw, config["model"]["activation"])[0]
    probability = 1.0 / (1.0 + np.exp(-z))
    return probability, (probability > 0.5).astype(np.int64)


def accuracy(parameters, X, Y, activation="relu") -> float:
    return float(np.mean(predict(parameters, X, activation) == Y))


def error(parameters, X, Y, activation="relu") -> float:
    """The fraction misclassified, counted (not 1 - accuracy, which has rounding noise)."""
    return float(np.mean(predict(parameters, X, activation) != Y))


def cost(parameters, X, Y, activation="relu", lambd=0.0, l1=0.0) -> float:
    """Mean cross-entropy (a form exact for both labels) plus the L2 term lambd/(2m) Σ‖W‖² and
    the L1 term l1/(2m) Σ|W| (biases are not penalized)."""
    z = logits(parameters, X, activation)
    m = Y.shape[1]
    ce = np.sum(np.maximum(z, 0) - Y * z + np.log1p(np.exp(-np.abs(z)))) / m
    weights = [v for k, v in parameters.items() if k.startswith("W")]
    return float(ce + lambd / (2 * m) * sum(np.sum(W * W) for W in weights)
                 + l1 / (2 * m) * sum(np.sum(np.abs(W)) for W in weights))


# Logits where ``log(1 + e^z) - y z`` loses the small loss of a confident right answer (y = 1, z > 0).
CONFIDENT_LOGITS = (10.0, 20.0, 30.0, 40.0, 800.0, -10.0, -20.0, -30.0, -40.0, -800.0)


def exact_cross_entropy(z: float | Decimal, y: float) -> Decimal:
    """``-y log σ(z) - (1-y) log(1-σ(z)) = ln(1 + e^-|z|) + max(z, 0) - y z`` of the exact value of
    ``z``, to 80 digits (``ln(1 + x)`` by its series below x = 1e-20, where 1 + x would lose x)."""
    with localcontext() as context:
        context.prec = 80
        z, y = Decimal(z), Decimal(y)
        x = (-abs(z)).exp()
        tail = x - x * x / 2 + x * x * x / 3 if x < Decimal("1e-20") else (1 + x).ln()
        return max(z, Decimal(0)) - y * z + tail


def assert_exact(got: float, exact: Decimal, rtol: float = 1e-15) -> None:
    """``got`` within ``rtol`` (1e-15: ~4.5 ulp) of ``exact``; 0 where ``exact`` rounds to 0 in float64
    (e^-800 ~ 3.7e-348 is far below the smallest subnormal, 4.9e-324)."""
    want = float(exact)
    assert abs(got - want) <= rtol * abs(want), (got, want, exact)


def diagnosis(train_error: float, dev_error: float, bayes_error: float = 0.0,
              bias_threshold: float = 0.05, variance_threshold: float = 0.05
              ) -> tuple[str, float, float]:
    """The lecture's rule: avoidable bias = train − Bayes error, variance = dev − train error; each
    is high above its threshold. Returns (label, avoidable_bias, variance)."""
    avoidable_bias = train_error - bayes_error
    variance = dev_error - train_error
    # a gap is compared in whole examples' worth, not in its last binary digit (1 - 0.95 is 5%)
    high_bias = round(avoidable_bias, 12) > bias_threshold
    high_variance = round(variance, 12) > variance_threshold
    label = ("high_bias_high_variance" if high_bias and high_variance else "high_bias" if high_bias
             else "high_variance" if high_variance else "good_fit")
    return label, avoidable_bias, variance


def normalizer(X_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std over the training examples, (n, 1) each."""
    return X_train.mean(axis=1, keepdims=True), X_train.std(axis=1, keepdims=True)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_hash(config: dict[str, Any], test_hidden: bool = False) -> str:
    """The documented ``config_hash``: sha256 of the canonical JSON of the resolved config
    without its ``tracking``, ``selection`` and ``recipe`` sections, plus ``"test_hidden": true`` for a
    sweep's job that logged no test metrics."""
    settings = {k: v for k, v in config.items() if k not in ("tracking", "selection", "recipe")}
    if test_hidden:
        settings["test_hidden"] = True
    text = json.dumps(settings, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def dataset(config: dict[str, Any]) -> tuple[dict[str, np.ndarray], str]:
    """The raw train/dev/test arrays of a run (``X_train, Y_train, …``) and the data's
    fingerprint, from the data section of its resolved config, through the core's public
    ``load_dataset``."""
    from dlpractice.data import load_dataset

    d = config["data"]
    course = bool(config["course_compat"]) and d["name"] in ("circles",)
    generated = d["name"] not in ("file", "football_like")
    s, fingerprint = load_dataset(
        d["name"], path=d["path"] if d["name"] == "file" else None,
        n_samples=None if course or d["name"] == "file" else d["n_samples"],
        noise=d["noise"] if generated and not course else None, seed=config["seed"],
        course_compat=course, split_ratios=tuple(d["ratios"]), dev_size=d["dev_size"],
        test_size=d["test_size"], split_heldout=d["split_heldout"],
        label_noise=d.get("label_noise", 0.0))
    arrays = {f"{a}_{part}": getattr(s, f"{a}_{part}") for part in ("train", "dev", "test")
              for a in ("X", "Y")}
    if d.get("train_size") is not None:  # part of train, by the documented recipe
        n = train_examples(d["train_size"], arrays["Y_train"].shape[1])
        keep = subsample_indices(arrays["Y_train"], n, config["seed"])
        arrays["X_train"], arrays["Y_train"] = arrays["X_train"][:, keep], arrays["Y_train"][:, keep]
    scales = d.get("feature_scales")
    if scales is not None:
        for part in ("train", "dev", "test"):
            arrays[f"X_{part}"] = arrays[f"X_{part}"] * np.asarray(scales).reshape(-1, 1)
    return arrays, fingerprint


def train_examples(train_size: int | float | None, n_train: int) -> int:
    """``data.train_size`` as a count: None -> all, a fraction -> rounded (halves up), else itself."""
    if train_size is None:
        return n_train
    if isinstance(train_size, float):
        return int(Fraction(train_size) * n_train + Fraction(1, 2))
    return train_size


def subsample_indices(Y_train: np.ndarray, n: int, seed: int) -> np.ndarray:
    """The documented subsample of train: class 0 gets round(n * m0 / m) (halves up), class 1 the
    rest; each class's indices permuted by default_rng((seed, 1)), class 0's first, their first
    ones taken; train's order kept."""
    rng = np.random.default_rng((seed, 1))
    zeros, ones = (np.flatnonzero(Y_train[0] == c) for c in (0, 1))
    m = Y_train.shape[1]
    n0 = int(Fraction(n * zeros.size, m) + Fraction(1, 2))
    taken = [rng.permutation(zeros)[:n0], rng.permutation(ones)[:n - n0]]
    return np.sort(np.concatenate(taken))


def evaluate(parameters, config: dict[str, Any]) -> dict[str, float]:
    """Accuracies, errors, avoidable bias and variance of ``parameters`` on the run's splits
    (normalized with the train split's mean/std when ``data.normalize``)."""
    data, _ = dataset(config)
    if config["data"]["normalize"]:
        mean, std = normalizer(data["X_train"])
        for part in ("train", "dev", "test"):
            data[f"X_{part}"] = (data[f"X_{part}"] - mean) / std
    act = config["model"]["activation"]
    out: dict[str, float] = {}
    for part in ("train", "dev", "test"):
        out[f"{part}_accuracy"] = accuracy(parameters, data[f"X_{part}"], data[f"Y_{part}"], act)
        out[f"{part}_error"] = error(parameters, data[f"X_{part}"], data[f"Y_{part}"], act)
    dg = config["diagnosis"]
    label, out["avoidable_bias"], out["variance"] = diagnosis(
        out["train_error"], out["dev_error"], dg["bayes_error"], dg["bias_threshold"],
        dg["variance_threshold"])
    out["diagnosis"] = label  # type: ignore[assignment]
    return out


def course_circles() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The Initialization notebook's data: make_circles(300) after seed 1, (100) after seed 2."""
    import sklearn.datasets

    np.random.seed(1)
    X_train, y_train = sklearn.datasets.make_circles(n_samples=300, noise=0.05)
    np.random.seed(2)
    X_test, y_test = sklearn.datasets.make_circles(n_samples=100, noise=0.05)
    return (X_train.T, y_train.reshape(1, -1).astype(float),
            X_test.T, y_test.reshape(1, -1).astype(float))


def require_course_file() -> Path:
    """The course's football.mat: skipped when absent, but a failure in CI (CI=true)."""
    if FOOTBALL.is_file():
        return FOOTBALL
    message = f"course dataset not found at {FOOTBALL}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message} (CI=true: the course reproduction must run)")
    pytest.skip(message)


def read_csv(path: Path) -> list[dict[str, str]]:
    with Path(path).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def assert_same_table(fresh: Path, committed: Path) -> None:
    """Two tables.csv alike: the same rows and columns, numbers equal to 1e-9, text exactly."""
    new, old = read_csv(fresh), read_csv(committed)
    assert [list(r) for r in new] == [list(r) for r in old]
    for a, b in zip(new, old, strict=True):
        for key, value in b.items():
            try:
                assert float(a[key]) == pytest.approx(float(value), abs=1e-9), key
            except ValueError:  # not a number
                assert a[key] == value, key


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def markdown_table(text: str) -> list[dict[str, str]]:
    """The rows of the first Markdown table in ``text``, by column name."""
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in ln.strip("|").split("|")), strict=True))
            for ln in lines[2:]]


def mlflow_history(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
