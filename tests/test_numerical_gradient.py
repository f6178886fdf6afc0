"""The numerical_gradient study: the lecture's θ³ numbers, and the slopes of a network's gradient
check against ε recomputed from the run's saved parameters with the reference cost."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import reference as ref

ROOT = Path(__file__).resolve().parents[1]


def test_the_lectures_theta_cubed_estimates():
    from dlpractice.epsilon_scan import estimate

    cube = lambda t: t**3  # noqa: E731
    assert estimate(cube, 1.0, 0.01, "central") == pytest.approx(3.0001, abs=1e-12)
    assert estimate(cube, 1.0, 0.01, "forward") == pytest.approx(3.0301, abs=1e-12)
    assert estimate(cube, 2.0, 0.01, "central") == pytest.approx(12.0001, abs=1e-11)  # 3θ² + ε²


def test_slope_and_rounding_epsilon_of_a_curve():
    from dlpractice.epsilon_scan import EpsilonScan

    eps = tuple(10.0 ** -k for k in range(1, 11))
    # truncation 5ε² until rounding (1e-18/ε) is larger: the minimum is at 1e-6 (6e-12)
    diffs = tuple(5 * e**2 + 1e-18 / e for e in eps)
    scan = EpsilonScan("central", "loop", eps, diffs)
    assert scan.rounding_epsilon == 1e-6
    # fitted on 1e-2 … 1e-5 only (at least 10x the rounding ε), where 5ε² dominates
    assert scan.slope == pytest.approx(2.0, abs=1e-3)
    # the largest step is left out: there a difference saturates (it is at most 1)
    bent = EpsilonScan("central", "loop", eps, (0.9, *diffs[1:]))
    assert bent.slope == scan.slope
    assert scan.difference_at(1e-7) == diffs[6]
    # no rounding regime: the whole curve above the floor, slope 1
    line = EpsilonScan("forward", "exact", eps, tuple(0.4 * e for e in eps))
    assert line.rounding_epsilon is None
    assert line.slope == pytest.approx(1.0, abs=1e-12)
    # a floor at machine precision is left out of the fit, and is no rounding regime
    floor = EpsilonScan("central", "exact", eps, tuple(max(e * e, 5e-16) for e in eps))
    assert floor.rounding_epsilon is None
    assert floor.slope == pytest.approx(2.0, abs=1e-12)


def _reference_slope(parameters, X, Y, activation, method, epsilons):
    """The course's loop with the reference cost, against a Richardson-extrapolated gradient."""
    keys = list(parameters)
    theta = np.concatenate([parameters[k].ravel() for k in keys])
    shapes = [parameters[k].shape for k in keys]

    def J(t):
        out, i = {}, 0
        for k, s in zip(keys, shapes, strict=True):
            n = int(np.prod(s))
            out[k] = t[i:i + n].reshape(s)
            i += n
        return ref.cost(out, X, Y, activation)

    def diff_quotient(i, e, kind):
        up, down = theta.copy(), theta.copy()
        up[i] += e
        if kind == "forward":
            return (J(up) - J(theta)) / e
        down[i] -= e
        return (J(up) - J(down)) / (2 * e)

    h = 1e-3
    g = np.array([(4 * diff_quotient(i, h / 2, "central") - diff_quotient(i, h, "central")) / 3
                  for i in range(theta.size)])
    diffs = []
    for e in epsilons:
        approx = np.array([diff_quotient(i, e, method) for i in range(theta.size)])
        diffs.append(np.linalg.norm(g - approx) / (np.linalg.norm(g) + np.linalg.norm(approx)))
    return float(np.polyfit(np.log10(epsilons), np.log10(diffs), 1)[0])


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
def test_the_study_shows_the_lectures_slopes(tmp_path):
    from mlflow.tracking import MlflowClient

    sweep_dir, db = tmp_path / "results", tmp_path / "mlflow.db"
    proc = subprocess.run(
        [sys.executable, "-m", "dlpractice.experiment", "-m",
         "study/numerical_gradient=central,forward", "train.iterations=600",
         "hydra/launcher=vectorized", f"hydra.sweep.dir={sweep_dir}",
         f"tracking.uri=sqlite:///{db}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["setting"]: r for r in ref.read_csv(sweep_dir / "table.csv")}
    assert list(rows) == ["cube-central", "cube-forward", "central-loop", "central-exact",
                          "forward-loop", "forward-exact"]
    assert float(rows["cube-central"]["estimate"]) == pytest.approx(3.0001, abs=1e-9)
    assert float(rows["cube-forward"]["estimate"]) == pytest.approx(3.0301, abs=1e-9)
    for name, row in rows.items():
        claim = 2.0 if row["method"] == "central" else 1.0
        assert abs(float(row["slope"]) - claim) < 0.1, (name, row["slope"])
        assert row["comment"].count("— shown") == (2 if name.startswith("cube") else 1)
        if row["check"] == "loop":  # subtracting costs: rounding takes over inside the scan
            assert 1e-9 <= float(row["rounding_epsilon"]) <= 1e-4, (name, row)
        else:
            assert row["rounding_epsilon"] == ""
    # at the course's ε = 1e-7 the exact check sees truncation only (~ε²), the loop rounding
    assert 100 * float(rows["central-exact"]["difference"]) < float(
        rows["central-loop"]["difference"])

    # the loop's slopes again, from the saved parameters and the reference cost
    for method in ("central", "forward"):
        summary = json.loads((sweep_dir / method / "summary.json").read_text())
        config = summary["config"]
        data, _ = ref.dataset(config)
        X, Y = data["X_train"], data["Y_train"]
        if config["data"]["normalize"]:
            mean, std = ref.normalizer(X)
            X = (X - mean) / std
        parameters = ref.load_npz(sweep_dir / method / "parameters.npz")
        # the table's truncation regime: 1e-2 down to 10x the ε where rounding takes over
        lowest = 10 * float(rows[f"{method}-loop"]["rounding_epsilon"])
        epsilons = [e for e in (10.0 ** -k for k in range(2, 11)) if e >= lowest * (1 - 1e-9)]
        expected = _reference_slope(parameters, X, Y, "tanh", method, epsilons)
        assert float(rows[f"{method}-loop"]["slope"]) == pytest.approx(expected, abs=0.02)

    # the parent run carries the table and the figure
    client = MlflowClient(f"sqlite:///{db}")
    (exp,) = [e for e in client.search_experiments() if e.name == "numerical_gradient"]
    (parent,) = client.search_runs([exp.experiment_id], "tags.sweep = 'true'")
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"table.csv", "table.md", "epsilon.png"} <= names
    local = client.download_artifacts(parent.info.run_id, "table.csv", str(tmp_path))
    assert Path(local).read_bytes() == (sweep_dir / "table.csv").read_bytes()
