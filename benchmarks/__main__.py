"""`python -m benchmarks [--quick]`: every benchmark, side by side against its reference, as one table.

``--quick`` leaves out the ones that take minutes (the 16-job sweep, the server load test and
``make run``).
"""

import sys

from benchmarks import (
    bench_gradcheck,
    bench_load,
    bench_memory,
    bench_repro,
    bench_sweep,
    bench_tracking,
    bench_training,
)


def main() -> None:
    rows = []
    suite = [("training", bench_training), ("gradient check", bench_gradcheck),
             ("tracking overhead", bench_tracking), ("memory", bench_memory)]
    if "--quick" not in sys.argv[1:]:
        suite += [("sweep", bench_sweep), ("server load", bench_load),
                  ("make run", bench_repro)]
    for name, module in suite:
        print(f"running the {name} benchmark ...", flush=True)
        rows += module.run()
    width = max(len(r["name"]) for r in rows)
    print(f"\n{'measure':<{width}}  {'value':>12}  {'target':>10}  ok")
    for r in rows:
        value = r["value"]
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        ok = {True: "yes", False: "NO", None: ""}.get(r.get("ok"), str(r.get("ok")))
        print(f"{r['name']:<{width}}  {shown:>12}  {r.get('target') or ''!s:>10}  {ok}")


if __name__ == "__main__":
    main()
