"""A sweep end to end: ``hydra/launcher=vectorized`` against Hydra's basic and joblib launchers.

The sweep: 16 values of the L2 strength on the course's regularization model (2-20-3-1, lr 0.3,
30000 iterations, gradient check, plots, an MLflow run per job and the sweep run), on
``../shared/datasets/football.mat`` when present, else ``football_like``. Each sweep is a fresh
process with its own SQLite store (copied from one made beforehand), launchers in rotating order;
medians of the repeats and the ratios (targets: ≥ 3x basic, ≥ 2x joblib on 2 processes); all must
give the same accuracies. Also the trainer alone, µs per configuration-iteration, single vs stacked.
``--configs K [K ...]``: how a sweep's cost grows with its size instead (λ sweeps of K 3000-iteration
runs on moons, vectorized launcher): seconds per configuration outside training, and per finished
configuration when the same sweep resumes (targets ≤ 0.1 s and ≤ 0.01 s at the largest K).
Run ``python -m benchmarks.bench_sweep`` from the repository root (``--repeats N``, ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FOOTBALL = ROOT.parent / "shared/datasets/football.mat"
LAMBDS = [round(0.05 * k, 2) for k in range(16)]
ITERATIONS = 30000
TARGET = 3.0
STRETCH = 5.0
TRAINER_ITERATIONS = 2000
# contenders: Hydra's basic launcher; Hydra's joblib launcher on 2 processes; ours (its default:
# a process per CPU); ours in one process
LAUNCHERS = {"basic": [], "joblib n_jobs=2": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
             "vectorized": ["hydra/launcher=vectorized"],
             "vectorized n_jobs=1": ["hydra/launcher=vectorized", "hydra.launcher.n_jobs=1"]}
JOBLIB_TARGET = 2.0
K = 16


def sweep_args(iterations: int) -> list[str]:
    data = (["data=file", f"data.path={FOOTBALL}"] if FOOTBALL.is_file() else ["data=football_like"])
    return ["experiment=regularization", *data, "regularizer=l2",
            "regularizer.lambd=" + ",".join(f"{x:g}" for x in LAMBDS),
            f"train.iterations={iterations}"]


def _prepare_template(folder: Path) -> Path:
    template = folder / "template.db"
    code = ("import sys; from dlpractice import tracking; s = tracking.Store(sys.argv[1]); "
            "s.prepare(); s.experiment_id('regularization')")
    subprocess.run([sys.executable, "-c", code, f"sqlite:///{template}"], check=True, cwd=ROOT,
                   capture_output=True)
    return template


def run_sweep(launcher: str, folder: Path, template: Path, tag: str, iterations: int
              ) -> tuple[float, list[dict]]:
    """Wall seconds of one sweep and its summary rows."""
    db = folder / f"{tag}.db"
    shutil.copy2(template, db)
    args = [sys.executable, "-m", "dlpractice.experiment", "-m", *sweep_args(iterations),
            f"hydra.sweep.dir={folder / tag}"]
    args[4:4] = LAUNCHERS[launcher]
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}"}
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{launcher} sweep failed:\n{proc.stderr[-3000:]}")
    rows = [json.loads((folder / tag / str(j) / "summary.json").read_text())
            for j in range(len(LAMBDS))]
    return seconds, rows


def measure_sweeps(repeats: int, iterations: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in LAUNCHERS}
    rows: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="dlpractice-bench-sweep-") as tmp:
        folder = Path(tmp)
        template = _prepare_template(folder)
        for r in range(repeats):
            names = list(LAUNCHERS)
            order = names[r % len(names):] + names[: r % len(names)]  # rotate the order
            for launcher in order:
                tag = f"{launcher.replace(' ', '_').replace('=', '')}-{r}"
                seconds, rows[launcher] = run_sweep(launcher, folder, template, tag, iterations)
                times[launcher].append(seconds)
                print(f"  {launcher:<20} sweep {r + 1}/{repeats}: {seconds:.1f} s", flush=True)
    for name in LAUNCHERS:
        for a, b in zip(rows["basic"], rows[name]):
            assert a["status"] == b["status"] == "finished", (a.get("error"), b.get("error"))
            # a job's test accuracy is hidden (selection.hide_test): only in the sweep's table
            for key in ("train_accuracy", "dev_accuracy", "test_accuracy"):
                assert a.get(key) == b.get(key), (name, a["setting"], key, a.get(key), b.get(key))
    return {k: statistics.median(v) for k, v in times.items()}


# -- the trainer alone ------------------------------------------------------------------------------


def _data() -> tuple[np.ndarray, np.ndarray]:
    if FOOTBALL.is_file():
        import scipy.io

        d = scipy.io.loadmat(FOOTBALL)
        return d["X"].T.astype(float), d["y"].T.astype(float)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2, 211))
    return X, (X[0:1] * X[1:2] > 0).astype(float)


def _configs(iterations: int):
    from dlpractice.nn import TrainConfig

    base = TrainConfig((2, 20, 3, 1), init="xavier", learning_rate=0.3, iterations=iterations,
                       record_every=1000, course_compat=True)
    return [replace(base, lambd=lam) for lam in LAMBDS[:K]]


def _stacked_in_child(configs, X, Y, conn) -> None:
    from dlpractice.nn.stacked import train_stacked

    start = time.perf_counter()
    train_stacked(X, Y, configs)
    conn.send(time.perf_counter() - start)
    conn.close()


def _stacked_in_two_processes(configs, X, Y) -> float:
    """Wall seconds of ``configs`` trained stacked, half in each of 2 forked processes."""
    ctx = multiprocessing.get_context("fork")
    half = len(configs) // 2
    start = time.perf_counter()
    procs, pipes = [], []
    for part in (configs[:half], configs[half:]):
        here, there = ctx.Pipe()
        p = ctx.Process(target=_stacked_in_child, args=(part, X, Y, there))
        p.start()
        procs.append(p)
        pipes.append(here)
    for pipe in pipes:
        pipe.recv()
    for p in procs:
        p.join()
    return time.perf_counter() - start


def measure_trainer(repeats: int, iterations: int) -> dict[str, float]:
    """µs per configuration-iteration: single-run trainer, stacked (1 process), stacked split
    over 2 forked processes; plus the machine's matmul GFLOP/s and elementwise ns/element."""
    from dlpractice.nn import train
    from dlpractice.nn.stacked import train_stacked

    X, Y = _data()
    configs = _configs(iterations)
    work = len(configs) * iterations

    def single() -> float:
        start = time.perf_counter()
        for cfg in configs[:4]:
            train(X, Y, cfg)
        return (time.perf_counter() - start) / (4 * iterations) * 1e6

    def stacked() -> float:
        start = time.perf_counter()
        train_stacked(X, Y, configs)
        return (time.perf_counter() - start) / work * 1e6

    def stacked_two_processes() -> float:
        return _stacked_in_two_processes(configs, X, Y) / work * 1e6

    contenders = {"single-run trainer": single, f"stacked K={K}": stacked,
                  f"stacked K={K}, 2 processes": stacked_two_processes}
    for f in contenders.values():
        f()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, f in contenders.items():
            times[name].append(f())
    out = {name: statistics.median(t) for name, t in times.items()}
    out.update(machine_throughput())
    return out


def machine_throughput() -> dict[str, float]:
    import timeit

    rng = np.random.default_rng(0)
    M = rng.standard_normal((400, 400))
    gemm = min(timeit.repeat(lambda: M @ M, number=10, repeat=3)) / 10
    big = rng.standard_normal(4_000_000)
    ew = min(timeit.repeat(lambda: np.maximum(big, 0.0, out=big), number=5, repeat=3)) / 5
    small = rng.standard_normal((16, 21, 211))  # one stacked hidden layer (in cache)
    ew_small = min(timeit.repeat(lambda: np.maximum(small, 0.0, out=small), number=2000,
                                 repeat=3)) / 2000
    call = min(timeit.repeat(lambda: np.maximum(small[0, :1, :4], 0.0), number=20000, repeat=3)) / 20000
    return {"matmul GFLOP/s (400x400, all cores)": 2 * 400**3 / gemm / 1e9,
            "elementwise ns/element (4M, memory)": ew / big.size * 1e9,
            "elementwise ns/element (71k, cache)": ew_small / small.size * 1e9,
            "numpy call overhead µs (tiny array)": call * 1e6}


def rows_from(sweeps: dict[str, float], trainer: dict[str, float]) -> list[dict]:
    rows = [{"name": f"{name} sweep s (16 jobs)", "value": sweeps[name], "target": None, "ok": True}
            for name in LAUNCHERS]
    for name in LAUNCHERS:
        if name != "basic":
            speedup = sweeps["basic"] / sweeps[name]
            # the target is the default launcher's (every core); n_jobs=1 shows stacking alone
            target = TARGET if name == "vectorized" else None
            rows.append({"name": f"{name} sweep speedup end to end", "value": speedup,
                         "target": target, "ok": target is None or speedup >= target})
    speedup = sweeps["joblib n_jobs=2"] / sweeps["vectorized"]
    rows.append({"name": "vectorized vs joblib n_jobs=2 speedup", "value": speedup,
                 "target": JOBLIB_TARGET, "ok": speedup >= JOBLIB_TARGET})
    single = trainer["single-run trainer"]
    for name, value in trainer.items():
        if "trainer" in name or "stacked" in name:
            rows.append({"name": f"{name} µs/config-iteration", "value": value, "target": None,
                         "ok": True})
            if "stacked" in name:
                rows.append({"name": f"{name} speedup per config-iteration", "value": single / value,
                             "target": None, "ok": True})
        else:
            rows.append({"name": name, "value": value, "target": None, "ok": True})
    return rows


def run(repeats: int = 1, iterations: int = ITERATIONS) -> list[dict]:
    """The benchmark's rows ``{name, value, target, ok}``, for the benchmark suite."""
    sweeps = measure_sweeps(repeats, iterations)
    trainer = measure_trainer(3, TRAINER_ITERATIONS)
    return rows_from(sweeps, trainer)


# -- how the cost grows with the sweep's size -------------------------------------------------------

SCALING_ITERATIONS = 3000
PER_CONFIG_TARGET = 0.1  # s per configuration outside training, at the largest K
PER_FINISHED_TARGET = 0.01  # s per finished configuration when the sweep resumes


def scaling_args(k: int) -> list[str]:
    lambds = ",".join(f"{0.7 * i / k:.6g}" for i in range(k))
    return ["hydra/launcher=vectorized", "data=moons", "regularizer=l2",
            f"regularizer.lambd={lambds}", f"train.iterations={SCALING_ITERATIONS}"]


def _timed_sweep(args: list[str], folder: Path, db: Path) -> float:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dlpractice.experiment", "-m", *args,
                           f"hydra.sweep.dir={folder}"], cwd=ROOT, env=env, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"sweep failed:\n{proc.stderr[-3000:]}")
    return seconds


def _training_seconds(k: int) -> float:
    """The sweep's training alone: its K networks stacked, half in each of 2 forked processes (as
    the launcher trains them), wall seconds."""
    from hydra import compose, initialize_config_dir

    from dlpractice import config, pipeline

    configs, splits = [], None
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        for lambd in scaling_args(k)[3].partition("=")[2].split(","):
            cfg = config.load(compose("config", overrides=[*scaling_args(k)[1:3],
                                                          f"regularizer.lambd={lambd}",
                                                          scaling_args(k)[4]]))
            data = pipeline.prepare_data(cfg)
            splits, _ = pipeline.normalize(cfg, data.splits)
            configs.append(pipeline.train_config(cfg, data.n_features))
    return _stacked_in_two_processes(configs, splits.X_train, splits.Y_train)


def measure_scaling(ks: list[int], repeats: int) -> list[dict]:
    """Per K: sweep seconds, training seconds, s per configuration outside training, resume
    seconds and s per finished configuration (medians of ``repeats``)."""
    out = []
    for k in ks:
        sweep, resume = [], []
        train = statistics.median(_training_seconds(k) for _ in range(repeats))
        for r in range(repeats):
            with tempfile.TemporaryDirectory(prefix="dlpractice-bench-scaling-") as tmp:
                folder, db = Path(tmp) / "sweep", Path(tmp) / "mlflow.db"
                sweep.append(_timed_sweep(scaling_args(k), folder, db))
                resume.append(_timed_sweep(scaling_args(k), folder, db))
            print(f"  K={k} {r + 1}/{repeats}: sweep {sweep[-1]:.1f} s, resume {resume[-1]:.1f} s",
                  flush=True)
        s, rs = statistics.median(sweep), statistics.median(resume)
        out.append({"k": k, "sweep": s, "train": train, "per_config": (s - train) / k,
                    "resume": rs, "per_finished": rs / k})
    return out


def print_scaling(rows: list[dict]) -> None:
    print(f"{'K':>5} {'sweep s':>8} {'train s':>8} {'s/config outside training':>26} "
          f"{'resume s':>9} {'s/finished config':>18}")
    for r in rows:
        print(f"{r['k']:>5} {r['sweep']:>8.1f} {r['train']:>8.1f} {r['per_config']:>26.3f} "
              f"{r['resume']:>9.1f} {r['per_finished']:>18.4f}")
    if len(rows) > 1:  # the growth alone, without the fixed start-up of a process
        a, b = rows[-2], rows[-1]
        dk = b["k"] - a["k"]
        grow = ((b["sweep"] - b["train"]) - (a["sweep"] - a["train"])) / dk
        grow_resume = (b["resume"] - a["resume"]) / dk
        print(f"from K={a['k']} to K={b['k']}: {grow:.3f} s per added configuration outside "
              f"training, {grow_resume:.4f} s per added finished configuration")
    last = rows[-1]
    print(f"targets at K={last['k']}: <= {PER_CONFIG_TARGET} s/config outside training: "
          f"{'yes' if last['per_config'] <= PER_CONFIG_TARGET else 'NO'}; <= "
          f"{PER_FINISHED_TARGET} s/finished config: "
          f"{'yes' if last['per_finished'] <= PER_FINISHED_TARGET else 'NO'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="3000 iterations instead of 30000")
    parser.add_argument("--configs", type=int, nargs="+", metavar="K",
                        help="measure how the cost grows with the sweep's size instead")
    args = parser.parse_args()
    if args.configs:
        print(f"lambd sweeps on moons, {SCALING_ITERATIONS} iterations, vectorized launcher; "
              f"{os.cpu_count()} CPUs; median of {args.repeats} repeat(s)", flush=True)
        print_scaling(measure_scaling(sorted(args.configs), args.repeats))
        return
    iterations = 3000 if args.quick else ITERATIONS
    origin = "football.mat" if FOOTBALL.is_file() else "football_like (football.mat not found)"
    print(f"16-value lambd sweep, experiment=regularization, {iterations} iterations, {origin}; "
          f"{os.cpu_count()} CPUs; median of {args.repeats} repeat(s)", flush=True)
    rows = run(args.repeats, iterations)
    print(f"{'measure':<58} {'value':>9}  {'target':>7}  ok")
    for row in rows:
        value = row["value"]
        shown = f"{value:.2f}x" if "speedup" in row["name"] else f"{value:.2f}"
        target = f">= {row['target']:g}x" if row["target"] else ""
        print(f"{row['name']:<58} {shown:>9}  {target:>7}  {'yes' if row['ok'] else 'NO'}")


if __name__ == "__main__":
    main()
