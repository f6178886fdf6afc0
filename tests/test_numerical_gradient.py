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


def test_cube_scan_is_the_closed_form():
    """f(θ) = θ³: the two-sided estimate is 3θ² + ε², the one-sided 3θ² + 3θε + ε²."""
    from dlpractice.epsilon_scan import EPSILONS, cube_scan

    central, forward = cube_scan("central"), cube_scan("forward")
    assert central.epsilons == forward.epsilons == EPSILONS == tuple(
        10.0 ** -k for k in range(1, 11))
    assert (central.method, central.check, forward.method) == ("central", "loop", "forward")
    for e, c, f in zip(EPSILONS[:3], central.differences, forward.differences, strict=False):
        assert c == pytest.approx(e**2 / (6 + e**2), rel=1e-6)
        assert f == pytest.approx((3 * e + e**2) / (6 + 3 * e + e**2), rel=1e-6)
    assert central.slope == pytest.approx(2.0, abs=0.01)
    assert forward.slope == pytest.approx(1.0, abs=0.01)
    assert 1e-7 <= central.rounding_epsilon <= 1e-4 and 1e-9 <= forward.rounding_epsilon <= 1e-6
    theta2 = cube_scan("central", theta=2.0, epsilons=(1e-2,))
    assert theta2.differences[0] == pytest.approx(1e-4 / (24 + 1e-4), rel=1e-6)


def _reference_differences(parameters, X, Y, activation, method, epsilons):
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
    return diffs


@pytest.mark.parametrize("method", ["central", "forward"])
@pytest.mark.parametrize("check", ["loop", "exact"])
def test_network_scan_against_the_reference_cost(method, check):
    """Where truncation dominates (ε = 1e-2, 1e-3), both checks give the reference's difference."""
    from dlpractice.epsilon_scan import network_scan

    rng = np.random.default_rng(3)
    parameters = {"W1": rng.normal(size=(4, 2)), "b1": rng.normal(size=(4, 1)),
                  "W2": rng.normal(size=(1, 4)), "b2": rng.normal(size=(1, 1))}
    X = rng.normal(size=(2, 30))
    Y = (rng.random((1, 30)) < 0.5).astype(float)
    scan = network_scan(parameters, X, Y, "tanh", method, check, epsilons=(1e-2, 1e-3))
    assert (scan.method, scan.check, scan.epsilons) == (method, check, (1e-2, 1e-3))
    expected = _reference_differences(parameters, X, Y, "tanh", method, (1e-2, 1e-3))
    assert scan.differences == pytest.approx(expected, rel=1e-4)


def _reference_slope(parameters, X, Y, activation, method, epsilons):
    return float(np.polyfit(np.log10(epsilons),
                            np.log10(_reference_differences(parameters, X, Y, activation, method,
                                                            epsilons)), 1)[0])


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


def test_a_rows_comment_says_whether_its_numbers_show_the_lecture():
    from dlpractice import studies
    from dlpractice.epsilon_scan import EPSILONS, EpsilonScan

    square = EpsilonScan("central", "exact", EPSILONS, tuple(max(e * e, 1e-16) for e in EPSILONS))
    row = studies._scan_row("net-exact", "tanh net [5, 3]", square)
    assert row["comment"] == ("lecture: error O(ε²), slope ≈ 2; fitted 2.00 — shown; no rounding "
                              "regime down to ε = 1e-10: cost changes without cancellation")
    assert (row["slope"], row["rounding_epsilon"], row["difference"]) == (
        pytest.approx(2.0), None, pytest.approx(1e-14))
    linear = EpsilonScan("central", "loop", EPSILONS,
                         tuple(e if e >= 1e-6 else 1e-12 / e for e in EPSILONS))
    row = studies._scan_row("cube-central", "θ³", linear, estimate=3.01)
    assert row["comment"] == ("lecture: 3.0001 at ε = 0.01; here 3.010000 — not shown; lecture: "
                              "error O(ε²), slope ≈ 2; fitted 1.00 — not shown; rounding takes "
                              "over below ε = 1e-06")
    assert row["estimate"] == 3.01 and row["rounding_epsilon"] == 1e-6


def test_at_a_tiny_step_the_loop_rounds_and_the_exact_check_does_not():
    """ε = 1e-8: subtracting two costs of ~0.7 leaves ~1e-16/1e-8 of rounding in each quotient;
    the exact check's cost changes keep truncation only (~ε²)."""
    from dlpractice.epsilon_scan import network_scan

    rng = np.random.default_rng(5)
    parameters = {"W1": rng.normal(size=(4, 2)), "b1": rng.normal(size=(4, 1)),
                  "W2": rng.normal(size=(1, 4)), "b2": rng.normal(size=(1, 1))}
    X = rng.normal(size=(2, 30))
    Y = (rng.random((1, 30)) < 0.5).astype(float)
    loop = network_scan(parameters, X, Y, "tanh", "central", "loop", epsilons=(1e-8,))
    exact = network_scan(parameters, X, Y, "tanh", "central", "exact", epsilons=(1e-8,))
    assert exact.differences[0] < 1e-13 and loop.differences[0] > 1e-10


@pytest.mark.parametrize(("method", "slope", "estimate", "text"), [
    ("forward", 1.0, 3.0301, "lecture: 3.0301 at ε = 0.01; here 3.030100 — shown; lecture: error "
                             "O(ε), slope ≈ 1; fitted 1.00 — shown"),
    ("central", 2.25, 3.0001, "lecture: 3.0001 at ε = 0.01; here 3.000100 — shown; lecture: error "
                              "O(ε²), slope ≈ 2; fitted 2.25 — not shown"),  # the margin: < 0.25
    ("forward", 1.2499, 3.0301001, "lecture: 3.0301 at ε = 0.01; here 3.030100 — not shown; "
                                   "lecture: error O(ε), slope ≈ 1; fitted 1.25 — shown"),
])
def test_the_comment_judges_slope_and_estimate_at_their_margins(method, slope, estimate, text):
    """What the comment reads of a scan (its method, check, slope, rounding ε), as numbers."""
    from types import SimpleNamespace

    from dlpractice import claims

    scan = SimpleNamespace(method=method, check="loop", slope=slope, rounding_epsilon=None)
    assert claims.epsilon_scan_comment(scan, estimate) == text
