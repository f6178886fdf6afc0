"""``make run`` (every pipeline, then the study tables) end to end from a clean cache, then again.

In a scratch copy (``benchmarks.scratch``: no .git, venv, caches or outputs; its own git repository
and MLflow SQLite store): wall seconds of both calls (exit codes a row of their own), and the share
of the first spent training (``train_seconds`` summed over the MLflow runs). Each copy runs its own
Makefile's ``run``, so a revision is timed as its users ran it. ``--against REV`` does the same in
a copy of the working tree and one of git revision REV, each with its own venv (``pip install -e
.``), and compares their times and the studies' accuracies; with ``--same-pipelines`` the
working tree runs only the pipelines REV has (its Makefile's lanes, filtered), the same work.
It writes nothing in the repository. ``python -m benchmarks.bench_repro [--repeats N] [--against
REV [--same-pipelines]]``; ``--repeats`` gives medians.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.scratch import (
    BIN,
    ROOT,
    SKIP_NAMES,
    SKIP_PATHS,
    SKIP_PATTERNS,
    copy_project,
    environment,
)

NOOP_TARGET = 5.0
ACCURACIES = ("train_accuracy", "dev_accuracy", "test_accuracy")


def _run(cmd: list[str], root: Path, env: dict[str, str], timeout: float = 3600,
         check: bool = True) -> tuple[float, int]:
    """Wall seconds and exit code; a failure raises unless ``check`` is false (then its stage
    errors are printed)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        message = (f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout\n"
                   f"{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}")
        if check:
            raise RuntimeError(message)
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith(("ERROR", "error"))]
        print(f"  {' '.join(cmd[1:])} exited {proc.returncode}:", *errors, sep="\n    ",
              flush=True)
    return seconds, proc.returncode


def train_seconds(uri: str) -> tuple[float, int]:
    """Sum of ``train_seconds`` over every run in the store, and the number of runs."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(search_all_experiments=True, max_results=10000)
    if runs.empty:
        return 0.0, 0
    col = "metrics.train_seconds"
    total = float(runs[col].fillna(0.0).sum()) if col in runs else 0.0
    return total, len(runs)


def make_run(venv: Path, *variables: str) -> list[str]:
    """``make run`` with the environment ``venv`` (its install stamp taken as done) and make
    ``variables`` (``NAME=value``)."""
    return ["make", "--no-print-directory", "-o", str(venv / ".installed"), "run",
            f"VENV={venv}", *variables]


def pipelines(root: Path) -> list[str]:
    """The pipelines of the project at ``root``: ``dvc.yaml`` and ``pipelines/*/dvc.yaml``."""
    return sorted(p.relative_to(root).as_posix()
                  for p in [root / "dvc.yaml", *root.glob("pipelines/*/dvc.yaml")])


def repro_calls(dry_run: str) -> list[tuple[list[str], list[str]]]:
    """Each ``dvc repro`` that ``make -n`` printed in ``dry_run``: its options before ``repro``
    and its targets."""
    calls = []
    for line in dry_run.splitlines():
        words = shlex.split(line)
        if len(words) > 1 and Path(words[0]).name == "dvc" and "repro" in words:
            at = words.index("repro")
            calls.append((words[1:at], words[at + 1:]))
    return calls


def lanes_within(root: Path, venv: Path, keep: list[str]) -> list[str]:
    """The Makefile's lanes at ``root`` (``LANE_1``, ``LANE_2``: the targets of each ``dvc
    repro`` that ``make -n run`` prints) less the pipelines not in ``keep``, as make variables."""
    dry = subprocess.run([*make_run(venv), "-n"], cwd=root, capture_output=True, text=True,
                         check=True).stdout
    lanes = [targets for _, targets in repro_calls(dry)]
    if len(lanes) != 2:
        raise RuntimeError(f"expected two dvc repro lanes in make -n run:\n{dry}")
    kept = [[t for t in lane if t in keep] for lane in lanes]
    if not all(kept):  # `dvc repro` without targets would take the current folder's dvc.yaml
        raise RuntimeError(f"a lane has none of {keep}: {lanes}")
    return [f"LANE_{i}={' '.join(lane)}" for i, lane in enumerate(kept, 1)]


def repro(root: Path, uri: str, env: dict[str, str], venv: Path,
          only: list[str] | None = None) -> dict[str, float]:
    """Make ``root`` a git repository, then time a clean ``make run`` and a second one (``only``:
    those pipelines, in the Makefile's lanes)."""
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],  # DVC needs a git repository
                ["git", "commit", "-q", "-m", "bench"]):
        _run(cmd, root, env)
    env = {k: v for k, v in env.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    command = make_run(venv, *(lanes_within(root, venv, only) if only else ()))
    full, full_rc = _run(command, root, env, check=False)
    noop, noop_rc = _run(command, root, env, check=False)
    # the pipelines alone, nothing changed: what a user waits for before the tables are printed
    dvc_noop, _ = _run([str(venv / "bin" / "dvc"), "repro", *(only or ["--all-pipelines"])],
                       root, env, check=False)
    trained, n_runs = train_seconds(uri)
    return {"full": full, "noop": noop, "dvc_noop": dvc_noop, "train": trained, "runs": n_runs,
            "full_rc": full_rc, "noop_rc": noop_rc}


def measure() -> dict[str, float]:
    """One clean repro and its no-op in a scratch copy of the working tree, with this venv."""
    with tempfile.TemporaryDirectory(prefix="dlpractice-bench-repro-") as tmp:
        root = copy_project(Path(tmp) / "repo")
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        return repro(root, uri, environment(root, uri, who="bench"), BIN.parent)


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    """Per key, the median over the repeats (exit codes: the worst)."""
    out = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    for k in ("full_rc", "noop_rc"):
        out[k] = next((r[k] for r in runs if r[k] != 0), 0)
    return out


def rows_from(m: dict[str, float]) -> list[dict]:
    outside = m["full"] - m["train"]
    return [
        {"name": "make run exit codes (full, no-op)", "value": f"{m['full_rc']}, {m['noop_rc']}",
         "target": "0, 0", "ok": m["full_rc"] == m["noop_rc"] == 0},
        {"name": "make run s (clean cache)", "value": m["full"], "target": None, "ok": True},
        {"name": f"  training s (sum of train_seconds, {int(m['runs'])} runs)",
         "value": m["train"], "target": None, "ok": True},
        {"name": "  outside training s", "value": outside, "target": None, "ok": True},
        {"name": "  training share of the repro", "value": m["train"] / m["full"],
         "target": None, "ok": True},
        {"name": "make run s (no-op)", "value": m["noop"], "target": None, "ok": True},
        {"name": "dvc repro --all-pipelines s (no-op)", "value": m["dvc_noop"],
         "target": f"< {NOOP_TARGET:g}", "ok": m["dvc_noop"] < NOOP_TARGET},
    ]


def run() -> list[dict]:
    """The benchmark's rows ``{name, value, target, ok}``, for the benchmark suite."""
    return rows_from(measure())


# -- the working tree against a git revision -----------------------------------------------------


def _prune(root: Path) -> None:
    """Remove from ``root`` what ``benchmarks.scratch`` leaves out of a copy (outputs, lock files,
    caches), so that a revision's copy also reproduces from a clean cache."""
    for folder, names, files in os.walk(root, topdown=True):
        rel = Path(folder).relative_to(root)
        for name in [*names, *files]:
            path = (rel / name).as_posix()
            if (name in SKIP_NAMES or any(fnmatch.fnmatch(name, p) for p in SKIP_PATTERNS)
                    or path in SKIP_PATHS or fnmatch.fnmatch(path, "pipelines/*/results")):
                target = Path(folder) / name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                    names.remove(name)  # nothing left to walk into
                else:
                    target.unlink()


def export_revision(rev: str, dest: Path) -> Path:
    """The files of ``rev`` (``git archive``) in ``dest``, less what a scratch copy leaves out."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    _prune(dest)
    return dest


def make_venv(project: Path, venv: Path) -> float:
    """A virtual environment at ``venv`` with ``project`` installed editable (and the stamp of the
    Makefile's install, so that ``make run`` uses it as it is); the seconds it took."""
    start = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    for cmd in ([sys.executable, "-m", "venv", str(venv)],
                [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-e", "."]):
        proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stderr[-3000:]}")
    (venv / ".installed").touch()
    return time.perf_counter() - start


class Side:
    """One copy (the working tree or a revision) with its venv, reproduced afresh per repeat."""

    def __init__(self, label: str, folder: Path, source: Path, only: list[str] | None = None):
        self.label, self.folder, self.source, self.only = label, folder, source, only
        self.repo, self.venv = folder / "repo", folder / "venv"
        self.runs: list[dict[str, float]] = []
        self.tables: dict[str, list[dict[str, str]]] = {}

    def set_up(self) -> float:
        shutil.copytree(self.source, self.repo, symlinks=True)
        return make_venv(self.repo, self.venv)

    def measure(self) -> None:
        """A clean repro in a fresh copy at the same path (the editable install points there)."""
        if self.runs:
            shutil.rmtree(self.repo)
            shutil.copytree(self.source, self.repo, symlinks=True)
        uri = f"sqlite:///{self.folder / f'mlflow-{len(self.runs)}.db'}"
        env = environment(self.repo, uri, who="bench")
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env['PATH']}"  # the stages' `python`
        env["VIRTUAL_ENV"] = str(self.venv)
        self.runs.append(repro(self.repo, uri, env, self.venv, self.only))
        self.tables = read_tables(self.repo)


def read_tables(root: Path) -> dict[str, list[dict[str, str]]]:
    """Each study's ``results/table.csv`` rows, by study folder name."""
    tables = {}
    for path in sorted(root.glob("pipelines/*/results/table.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            tables[path.parents[1].name] = list(csv.DictReader(f))
    return tables


def _same(a: str | None, b: str | None) -> bool:
    """Equal as written, or as numbers (``0.93`` and ``0.9300``)."""
    if a == b:
        return True
    try:
        return math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-12)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def compare_tables(ours: dict[str, list[dict[str, str]]], theirs: dict[str, list[dict[str, str]]],
                   our_label: str, their_label: str) -> dict[str, list[str]]:
    """Per study, ``["same (n settings)"]`` or the differences of the accuracies, rows matched by
    their ``setting``."""
    out = {}
    for study in sorted(set(ours) | set(theirs)):
        if study not in ours or study not in theirs:
            out[study] = [f"no table in {our_label if study not in ours else their_label}"]
            continue
        mine = {r.get("setting"): r for r in ours[study]}
        other = {r.get("setting"): r for r in theirs[study]}
        lines = []
        for setting in [*mine, *(s for s in other if s not in mine)]:
            if setting not in other or setting not in mine:
                lines.append(f"{setting}: only in {our_label if setting in mine else their_label}")
                continue
            for column in ACCURACIES:
                a, b = mine[setting].get(column), other[setting].get(column)
                if not _same(a, b):
                    lines.append(f"{setting}: {column} {a or '(empty)'} ({our_label}) vs "
                                 f"{b or '(empty)'} ({their_label})")
        out[study] = lines or [f"same ({len(mine)} settings)"]
    return out


def against(rev: str, repeats: int, same_pipelines: bool = False) -> None:
    """The working tree and ``rev`` side by side: set-up, then ``repeats`` alternating rounds
    (``same_pipelines``: the working tree runs only the pipelines ``rev`` has)."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", f"{rev}^{{commit}}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="dlpractice-bench-against-") as tmp:
        tmp = Path(tmp)
        theirs = export_revision(commit, tmp / "rev-source")
        tree = Side("working tree", tmp / "tree", copy_project(tmp / "tree-source"),
                    pipelines(theirs) if same_pipelines else None)
        other = Side(rev if rev == commit else f"{rev} ({commit})", tmp / "rev", theirs)
        if same_pipelines:
            print(f"the working tree runs only {rev}'s pipelines: {' '.join(tree.only or [])}",
                  flush=True)
        setup = {}
        for side in (tree, other):
            print(f"{side.label}: venv and pip install -e . ...", flush=True)
            setup[side.label] = side.set_up()
        for r in range(repeats):
            # alternate which goes first, so that neither always meets a warmer machine
            for side in (tree, other) if r % 2 == 0 else (other, tree):
                print(f"round {r + 1}/{repeats}: make run in {side.label} ...",
                      flush=True)
                side.measure()
        print(format_against(tree, other, setup, repeats))


def format_against(tree: Side, other: Side, setup: dict[str, float], repeats: int) -> str:
    a, b = _medians(tree.runs), _medians(other.runs)
    head = f"{'median of ' + str(repeats) if repeats > 1 else 'one run'}"
    rows = [("make run s (clean cache)", a["full"], b["full"], ".2f"),
            ("make run s (no-op)", a["noop"], b["noop"], ".2f"),
            ("dvc repro --all-pipelines s (no-op)", a["dvc_noop"], b["dvc_noop"], ".2f"),
            ("training s (sum of train_seconds)", a["train"], b["train"], ".2f"),
            ("outside training s", a["full"] - a["train"], b["full"] - b["train"], ".2f"),
            ("MLflow runs", a["runs"], b["runs"], ".0f")]
    width = 44

    def codes(m: dict[str, float]) -> str:
        return f"{m['full_rc']}, {m['noop_rc']}"

    lines = [f"make run, {head}; {os.cpu_count()} CPUs",
             f"{'measure':<{width}} {tree.label[:14]:>14} {other.label[:14]:>14} "
             f"{'ratio':>7}",
             *(f"{name:<{width}} {x:>14{spec}} {y:>14{spec}} {y / x if x else math.nan:>7.2f}"
               for name, x, y, spec in rows),
             f"{'exit codes (full, no-op)':<{width}} {codes(a):>14} {codes(b):>14}",
             f"{'venv + pip install -e . s (not measured)':<{width}} "
             f"{setup[tree.label]:>14.1f} {setup[other.label]:>14.1f}",
             f"(ratio: {other.label} / {tree.label})", "",
             "accuracies (pipelines/<study>/results/table.csv, rows matched by setting):"]
    for study, diffs in compare_tables(tree.tables, other.tables, "working tree",
                                       other.label).items():
        lines += [f"  {study:<22} {diffs[0]}", *(f"  {'':<22} {d}" for d in diffs[1:])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_repro",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REV",
                        help="also reproduce git revision REV, in its own copy and venv")
    parser.add_argument("--same-pipelines", action="store_true",
                        help="with --against: the working tree runs only REV's pipelines")
    parser.add_argument("--repeats", type=int, default=1, metavar="N",
                        help="clean repros per copy; the table shows medians (default 1)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.same_pipelines and not args.against:
        parser.error("--same-pipelines compares with a revision: give --against REV")
    if args.against:
        known = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet",
                                f"{args.against}^{{commit}}"], capture_output=True)
        if known.returncode != 0:
            parser.error(f"--against {args.against}: not a git revision of {ROOT}")
        print(f"make run: the working tree of {ROOT} against {args.against}",
              flush=True)
        against(args.against, args.repeats, args.same_pipelines)
        return
    print(f"make run in a temporary copy of {ROOT}; {os.cpu_count()} CPUs",
          flush=True)
    rows = rows_from(_medians([measure() for _ in range(args.repeats)]))
    print(f"{'measure':<52} {'value':>9}  {'target':>7}  ok")
    for row in rows:
        value = row["value"]
        if not isinstance(value, str):
            value = f"{value:.1%}" if "share" in row["name"] else f"{value:.2f}"
        print(f"{row['name']:<52} {value:>9}  {row['target'] or '':>7}  "
              f"{'yes' if row['ok'] else 'NO'}")


if __name__ == "__main__":
    main()
