"""The MLflow model of a run, logged as *models from code*: MLflow copies this file into the model
and runs it to load it, so it imports numpy, pandas and MLflow only, never dlpractice.

Artifacts ``parameters`` (``W1, b1, …`` in the course's shapes) and ``normalizer`` (``mean``,
``std``, (n, 1); only when the run normalized its inputs); model config ``hidden_activation`` and
``leaky_slope``. ``predict`` takes raw features with one example per ROW, (m, n) (an array, or a
DataFrame ``x1 … xn`` read in column order), and returns a DataFrame: ``probability`` (the sigmoid
output) and ``label`` (1 where probability > 0.5, the course's rule).
"""

import mlflow.pyfunc
import numpy as np
import pandas as pd


def sigmoid(Z):
    """1 / (1 + e^-z) without overflow: e^z / (1 + e^z) for negative z."""
    E = np.exp(-np.abs(Z))
    return np.where(Z >= 0, 1.0 / (1.0 + E), E / (1.0 + E))


def hidden_activation(name, leaky_slope):
    activations = {
        "relu": lambda Z: np.maximum(Z, 0.0),
        "leaky_relu": lambda Z: np.where(Z > 0, Z, leaky_slope * Z),
        "tanh": np.tanh,
        "sigmoid": sigmoid,
    }
    if name not in activations:
        raise ValueError(f"hidden_activation {name!r} is not one of {', '.join(activations)}")
    return activations[name]


def read_npz(path):
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


class NetworkModel(mlflow.pyfunc.PythonModel):
    """An L-layer binary classifier: hidden layers of one activation, a sigmoid output unit."""

    def load_context(self, context):
        config = context.model_config
        parameters = read_npz(context.artifacts["parameters"])
        L = len(parameters) // 2
        self.W = [parameters[f"W{l}"] for l in range(1, L + 1)]
        self.b = [parameters[f"b{l}"].reshape(-1, 1) for l in range(1, L + 1)]
        self.g = hidden_activation(config["hidden_activation"], float(config["leaky_slope"]))
        self.n_features = self.W[0].shape[1]
        normalizer = context.artifacts.get("normalizer")
        self.mean = self.std = None
        if normalizer is not None:
            stats = read_npz(normalizer)
            self.mean, self.std = stats["mean"].reshape(1, -1), stats["std"].reshape(1, -1)

    def predict(self, context, model_input: np.ndarray, params=None):
        X = np.asarray(model_input, dtype=np.float64)  # MLflow hands over an array (see the signature)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"model input has shape {X.shape}; it needs one example per row and "
                             f"{self.n_features} feature columns (x1 … x{self.n_features})")
        if self.mean is not None:
            X = (X - self.mean) / self.std
        A = X.T  # the course's convention: one example per column
        for l in range(len(self.W) - 1):
            A = self.g(self.W[l] @ A + self.b[l])
        probability = sigmoid(self.W[-1] @ A + self.b[-1])[0]
        return pd.DataFrame({"probability": probability,
                             "label": (probability > 0.5).astype(np.int64)})


mlflow.models.set_model(NetworkModel())
