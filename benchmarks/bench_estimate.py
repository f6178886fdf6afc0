"""The memory check's estimate (``dlpractice.memory``) against the peak RSS of real runs.

Each case runs ``python -m dlpractice.experiment`` (tracking off, output in a temporary folder)
under a fresh wrapper that prints the child's ``ru_maxrss``; the baseline is the VmRSS (Linux) of
an idle interpreter that imported what the app imports. Reported per case: the estimate without
its interpreter allowance, the peak less the baseline, their ratio (>= 1: conservative).
``python -m benchmarks.bench_estimate [--quick]`` from the repository root (minutes: a scatter of
600k points takes ~30 s to draw).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.bench_memory import peak_rss_mib

ROOT = Path(__file__).resolve().parents[1]
QUICK = ("data.n_samples=200000", "data.n_samples=200000 train.batch_size=1024")
CASES = QUICK + (
    "data.n_samples=1000000",
    "data.n_samples=1000000 train.batch_size=1024",
    "data.n_samples=200000 model.hidden=[64,32]",
    "data.n_samples=200000 model.hidden=[64,32] model.activation=tanh regularizer=dropout",
    "data.n_samples=1000000 model.hidden=[64,32] train.batch_size=4096",
)
SHORT = ("train.iterations=2", "train.record_every=1", "tracking.enabled=false")
IDLE = ("from dlpractice import experiment, pipeline, report, startup; "
        "startup.import_kept(*startup.MLFLOW, *startup.MATPLOTLIB); "
        "import sklearn.datasets, hydra, scipy.special; "
        "print(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1])")


def idle_rss_mib(env: dict[str, str]) -> float:
    """VmRSS of an idle interpreter that imported what the app imports (Linux)."""
    out = subprocess.run([sys.executable, "-c", IDLE], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True).stdout
    return int(out.split()[-1]) / 1024


def estimate_mib(overrides: list[str]) -> float:
    """The estimate of one run without the interpreter allowance (MiB)."""
    from hydra import compose, initialize_config_dir

    from dlpractice import config, memory

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = config.load(compose("config", overrides=overrides))
    est = memory.estimate(cfg)
    assert est is not None
    return (est.per_process - memory.INTERPRETER_BYTES) / (1 << 20)


def measure(cases: tuple[str, ...] = CASES) -> list[dict]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DVC_", "MLFLOW_", "DLPRACTICE_", "HYDRA_"))}
    py = sys.executable
    baseline = idle_rss_mib(env)
    rows = []
    for case in cases:
        overrides = [*case.split(), *SHORT]
        with tempfile.TemporaryDirectory(prefix="dlpractice-bench-estimate-") as tmp:
            peak = peak_rss_mib([py, "-m", "dlpractice.experiment", *overrides,
                                 f"hydra.run.dir={tmp}/run"], ROOT, env)
        measured = peak - baseline
        estimated = estimate_mib(overrides)
        rows.append({"case": case, "baseline": baseline, "peak": peak, "measured": measured,
                     "estimated": estimated, "ratio": estimated / measured})
    return rows


def run() -> list[dict]:
    """The benchmark's rows ``{name, value, target, ok}`` (within -30% .. +60%)."""
    return [{"name": f"estimate / measured: {r['case']}", "value": r["ratio"],
             "target": "0.7-1.6", "ok": 0.7 <= r["ratio"] <= 1.6} for r in measure(QUICK)]


def main() -> None:
    rows = measure(QUICK if "--quick" in sys.argv[1:] else CASES)
    print(f"baseline (idle interpreter with the app's imports): {rows[0]['baseline']:.0f} MiB")
    print(f"{'case (+ ' + ' '.join(SHORT) + ')':<90} {'peak':>7} {'measured':>9} "
          f"{'estimate':>9} {'ratio':>6}")
    for r in rows:
        print(f"{r['case']:<90} {r['peak']:>7.0f} {r['measured']:>9.0f} {r['estimated']:>9.0f} "
              f"{r['ratio']:>6.2f}")


if __name__ == "__main__":
    main()
