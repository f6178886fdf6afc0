"""Gradient check of a [2, 64, 64, 1] relu net: ``check_network`` vs the course's loop, side by side.

He initialization, the football training set (``../shared/datasets/football.mat``) or, without it,
211 random 2-D examples; each check uses its own analytic gradient and the same cost. BLAS runs on
one thread for both (threadpoolctl), so that busy BLAS worker threads do not blur the ratio. Rows:
both differences and the relu-kink entries ours leaves out; how much of the loop's error is its
rounding noise, and its per-entry size in ``ulp(J) / 2ε``; the median times and the speed-up.
It measures and changes nothing in ``dlpractice``. Run: ``python -m benchmarks.bench_gradcheck``.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks import course_reference as course
from dlpractice.gradcheck import EPSILON, THRESHOLD, check_network
from dlpractice.nn import initialize_parameters

LAYER_DIMS = (2, 64, 64, 1)
FOOTBALL = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "football.mat"
M_RANDOM = 211


def load_data() -> tuple[np.ndarray, np.ndarray, str]:
    """The football training set when present, else 211 random 2-D examples (seeded)."""
    if FOOTBALL.is_file():
        from dlpractice.data.files import load_file

        data = load_file(FOOTBALL)
        return data.X, data.Y, f"football.mat (m={data.X.shape[1]})"
    rng = np.random.default_rng(1)
    X = rng.standard_normal((2, M_RANDOM))
    Y = (X[0] * X[1] > 0).astype(np.float64).reshape(1, -1)
    return X, Y, f"random 2-D (m={M_RANDOM})"


def _interleaved_medians(fast, slow, repeats: int, slow_repeats: int):
    """Median times of two functions run alternately, so both see the same machine load."""
    fast_times, slow_times, fast_out, slow_out = [], [], None, None
    for r in range(max(repeats, slow_repeats)):
        if r < repeats:
            start = time.perf_counter()
            fast_out = fast()
            fast_times.append(time.perf_counter() - start)
        if r < slow_repeats:
            start = time.perf_counter()
            slow_out = slow()
            slow_times.append(time.perf_counter() - start)
    return statistics.median(fast_times), fast_out, statistics.median(slow_times), slow_out


def _flat(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """W1, b1, W2, ... in the course's vector order."""
    return np.concatenate([a.ravel() for a in arrays.values()])


def _blas_threads(n: int | None):
    """Limit BLAS threads to ``n`` inside the block (no-op for None or without threadpoolctl)."""
    if n is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def run(repeats: int = 5, loop_repeats: int = 3, blas_threads: int | None = 1) -> list[dict]:
    """Rows ``{name, value, target, ok}``; ``repeats`` for ours, ``loop_repeats`` for the loop."""
    with _blas_threads(blas_threads):
        return _run(repeats, loop_repeats, blas_threads)


def _run(repeats: int, loop_repeats: int, blas_threads: int | None) -> list[dict]:
    X, Y, source = load_data()
    parameters = initialize_parameters(list(LAYER_DIMS), "he", rng=np.random.default_rng(0))
    cost, cache = course.forward_propagation_n(X, Y, parameters)
    gradients = course.backward_propagation_n(X, Y, cache, parameters)

    check_network(parameters, X, Y)  # warm-up (imports, allocator)
    t_ours, result, t_loop, d_loop = _interleaved_medians(
        lambda: check_network(parameters, X, Y),
        lambda: course.gradient_check_n(parameters, gradients, X, Y, EPSILON),
        repeats, loop_repeats,
    )
    d_loop = float(d_loop)

    # The loop's gradapprox itself, to see what its difference is made of.
    g_loop = course.gradients_to_vector(gradients).ravel()
    ga_loop = course.gradapprox_n(parameters, X, Y, EPSILON).ravel()
    ga_ours = _flat(result.gradapprox)
    noise_share = float(np.linalg.norm(ga_loop - ga_ours) / np.linalg.norm(ga_loop - g_loop))
    noise_unit = float(np.spacing(cost)) / (2 * EPSILON)
    noise_max = float(np.max(np.abs(ga_loop - ga_ours))) / noise_unit
    entries = result.kinks + result.checked

    where = f"[{', '.join(map(str, LAYER_DIMS))}] relu, He, {source}"
    timing = f"median of {{}}, BLAS threads {blas_threads or 'default'}"
    return [
        {"name": f"difference, course loop ({where})", "value": d_loop,
         "target": f"< {THRESHOLD:g}", "ok": d_loop < THRESHOLD},
        {"name": "difference, check_network", "value": result.difference,
         "target": f"< {THRESHOLD:g}", "ok": result.passed},
        {"name": f"entries skipped at relu kinks by check_network (of {entries})",
         "value": result.kinks, "target": "", "ok": True},
        {"name": "share of the loop's error that is its rounding noise",
         "value": noise_share, "target": "1 +- 1e-6", "ok": abs(noise_share - 1) <= 1e-6},
        {"name": "max |gradapprox loop - ours| in ulp(J)/2eps", "value": noise_max,
         "target": "<= 16", "ok": noise_max <= 16},
        {"name": f"time, course loop (s, {timing.format(loop_repeats)})", "value": t_loop,
         "target": "", "ok": True},
        {"name": f"time, check_network (s, {timing.format(repeats)})", "value": t_ours,
         "target": "", "ok": True},
        {"name": "speed-up", "value": t_loop / t_ours, "target": ">= 20",
         "ok": t_loop / t_ours >= 20},
    ]


def format_rows(rows: list[dict]) -> str:
    width = max(len(r["name"]) for r in rows)
    lines = [f"{'measure':<{width}}  {'value':>12}  {'target':<10}  ok"]
    for r in rows:
        lines.append(f"{r['name']:<{width}}  {r['value']:>12.4g}  {r['target']:<10}  "
                     f"{'yes' if r['ok'] else 'NO'}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_rows(run()))
