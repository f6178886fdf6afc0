"""Training speed of the course's regularization model (2-20-3-1 relu, full batch, m = 211), in µs
per gradient-descent iteration, contenders interleaved in one process (medians of repeats):
``dlpractice.nn.train`` (default and ``course_compat``), the course's plain loop
(:mod:`benchmarks.course_reference`), scikit-learn's ``MLPClassifier`` set up as the same model
(plain SGD, one full batch per epoch) and, when installed, PyTorch CPU float64 on one thread.
Data: ``football.mat`` beside the repository when present, else a random set of that size.
Targets: ≥ 1.5x the course loop, ≥ 3x scikit-learn. ``python -m benchmarks.bench_training``.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from benchmarks import course_reference
from dlpractice.nn import TrainConfig, train

FOOTBALL = Path(__file__).resolve().parents[2] / "shared/datasets/football.mat"
LAYER_DIMS = (2, 20, 3, 1)
LEARNING_RATE = 0.3
ITERATIONS = 2000
RECORD_EVERY = 1000
TARGET_VS_COURSE = 1.5
TARGET_VS_SKLEARN = 3.0


def load_data() -> tuple[np.ndarray, np.ndarray, str]:
    """``X`` (2, 211), ``Y`` (1, 211) and where they came from."""
    if FOOTBALL.is_file():
        import scipy.io

        d = scipy.io.loadmat(FOOTBALL)
        return d["X"].T.astype(float), d["y"].T.astype(float), "football.mat"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2, 211))
    Y = (X[0:1] * X[1:2] > 0).astype(float)
    return X, Y, "random 2-D set (football.mat not found)"


def contenders(X: np.ndarray, Y: np.ndarray, iterations: int) -> dict[str, Callable[[], object]]:
    """Name -> a zero-argument function running ``iterations`` steps of full-batch descent."""

    def ours(course_compat: bool) -> Callable[[], object]:
        cfg = TrainConfig(LAYER_DIMS, init="xavier", learning_rate=LEARNING_RATE,
                          iterations=iterations, record_every=RECORD_EVERY,
                          course_compat=course_compat)
        return lambda: train(X, Y, cfg)

    def course() -> object:
        return course_reference.model(X, Y, list(LAYER_DIMS), init="xavier",
                                      learning_rate=LEARNING_RATE, num_iterations=iterations,
                                      record_every=RECORD_EVERY)

    X_rows, y = X.T.copy(), Y.ravel().astype(int)

    def sklearn() -> object:
        clf = MLPClassifier(
            hidden_layer_sizes=LAYER_DIMS[1:-1], activation="relu", solver="sgd",
            learning_rate_init=LEARNING_RATE, momentum=0.0, nesterovs_momentum=False, alpha=0.0,
            batch_size=X_rows.shape[0], shuffle=False, max_iter=iterations, tol=0.0,
            n_iter_no_change=10**9, early_stopping=False, random_state=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X_rows, y)
        assert clf.n_iter_ == iterations, clf.n_iter_
        return clf

    runs = {
        "dlpractice": ours(False),
        "dlpractice (course_compat)": ours(True),
        "course loop": course,
        "scikit-learn": sklearn,
    }
    torch_run = _torch_contender(X, Y, iterations)
    if torch_run is not None:
        runs["PyTorch CPU"] = torch_run
    return runs


def _torch_contender(X: np.ndarray, Y: np.ndarray, iterations: int) -> Callable[[], object] | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    xs = torch.tensor(X.T, dtype=torch.float64)
    ys = torch.tensor(Y.T, dtype=torch.float64)

    def fit() -> object:
        torch.manual_seed(0)
        layers: list = []
        for n_in, n_out in zip(LAYER_DIMS[:-1], LAYER_DIMS[1:]):
            layers += [torch.nn.Linear(n_in, n_out, dtype=torch.float64), torch.nn.ReLU()]
        net = torch.nn.Sequential(*layers[:-1])  # logits out; the loss applies the sigmoid
        loss_fn = torch.nn.BCEWithLogitsLoss()
        opt = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)
        for _ in range(iterations):
            opt.zero_grad()
            loss = loss_fn(net(xs), ys)
            loss.backward()
            opt.step()
        return net

    return fit


def measure(repeats: int = 5, iterations: int = ITERATIONS) -> tuple[dict[str, float], str]:
    """Median µs per iteration of each contender, and the data's origin."""
    X, Y, origin = load_data()
    runs = contenders(X, Y, iterations)
    for run in runs.values():  # warm up (imports, caches, BLAS threads)
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:  # rotate the order
            start = time.perf_counter()
            runs[name]()
            times[name].append((time.perf_counter() - start) / iterations * 1e6)
    return {name: statistics.median(t) for name, t in times.items()}, origin


def rows_from(us: dict[str, float]) -> list[dict]:
    """Rows ``{name, value, target, ok}``: µs/iteration of each contender, then our speedups."""
    rows = [{"name": f"{name} µs/iter", "value": value, "target": None, "ok": True}
            for name, value in us.items()]
    others = [("course loop", TARGET_VS_COURSE), ("scikit-learn", TARGET_VS_SKLEARN)]
    if "PyTorch CPU" in us:
        others.append(("PyTorch CPU", None))
    for ours in ("dlpractice", "dlpractice (course_compat)"):
        for other, target in others:
            speedup = us[other] / us[ours]
            rows.append({"name": f"{ours} speedup vs {other}", "value": speedup,
                         "target": target, "ok": target is None or speedup >= target})
    return rows


def run(repeats: int = 5) -> list[dict]:
    """The benchmark's rows (see :func:`rows_from`), for the benchmark suite."""
    return rows_from(measure(repeats)[0])


def main(repeats: int = 5) -> None:
    us, origin = measure(repeats)
    print(f"2-20-3-1 relu net, full batch m = 211 ({origin}); µs per iteration, median of "
          f"{repeats} interleaved repeats of {ITERATIONS} iterations")
    print(f"{'measure':<52} {'value':>9}  {'target':>7}  ok")
    for row in rows_from(us):
        value = f"{row['value']:.2f}x" if "speedup" in row["name"] else f"{row['value']:.1f}"
        target = "" if row["target"] is None else f">= {row['target']:g}x"
        print(f"{row['name']:<52} {value:>9}  {target:>7}  {'yes' if row['ok'] else 'NO'}")


if __name__ == "__main__":
    main()
