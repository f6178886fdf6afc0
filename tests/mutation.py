"""``make mutation MODULE=<name>``: mutation testing of one module against its own tests (mutmut).

The modules and their tests are ``[tool.dlpractice.mutation]`` in pyproject.toml; mutmut's own
settings are ``[tool.mutmut]``. mutmut reads one pyproject.toml from its working folder, so each
module runs in ``.mutation/<name>/``: links to the project plus a pyproject.toml that adds the
module's ``only_mutate`` and test selection. Prints the score: mutants killed (a timeout counts as
killed) of those its tests reach, and the survivors to read with ``mutmut show <name>`` there.
Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutation"
LINKED = ("src", "tests", "conf", "MLproject", "dvc.yaml", "params.yaml", "pipelines", "benchmarks",
          ".dvc")


def modules() -> dict[str, dict[str, list[str]]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dlpractice"]["mutation"]


def workspace(name: str, spec: dict[str, list[str]], fresh: bool) -> Path:
    """``.mutation/<name>``: the project linked in, and mutmut's settings for this module."""
    work = WORK / name
    if fresh:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    for entry in LINKED:
        link = work / entry
        if not link.is_symlink():
            link.symlink_to(ROOT / entry)
    text = (ROOT / "pyproject.toml").read_text()
    header = "[tool.mutmut]\n"
    extra = (f"only_mutate = {json.dumps(spec['mutate'])}\n"
             f"pytest_add_cli_args_test_selection = {json.dumps(spec['tests'])}\n")
    (work / "pyproject.toml").write_text(text.replace(header, header + extra, 1))
    return work


def score(work: Path) -> dict[str, int]:
    subprocess.run([mutmut(), "export-cicd-stats"], cwd=work, check=True, capture_output=True)
    return json.loads((work / "mutants" / "mutmut-cicd-stats.json").read_text())


def show_survivors(work: Path) -> int:
    listing = subprocess.run([mutmut(), "results"], cwd=work, capture_output=True, text=True,
                             check=True).stdout
    for line in listing.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if status != "survived":
            continue
        diff = subprocess.run([mutmut(), "show", name], cwd=work, capture_output=True, text=True,
                              check=False).stdout
        changed = [ln for ln in diff.splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
        print(f"{name}\n" + "\n".join(changed) + "\n")
    return 0


def mutmut() -> str:
    return str(Path(sys.executable).with_name("mutmut"))


def main(argv: list[str] | None = None) -> int:
    known = modules()
    parser = argparse.ArgumentParser(prog="python -m tests.mutation")
    parser.add_argument("module", choices=sorted(known))
    parser.add_argument("--keep", action="store_true",
                        help="reuse the last run's results (only changed code is tested again)")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--survivors", action="store_true",
                        help="print the diff of every survivor of the last run (runs nothing)")
    args = parser.parse_args(argv)
    if args.survivors:
        return show_survivors(WORK / args.module)
    work = workspace(args.module, known[args.module], fresh=not args.keep)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    log = work / "mutmut.log"
    print(f"mutmut run in {work.relative_to(ROOT)} (progress: {log.relative_to(ROOT)})", flush=True)
    with log.open("w") as out:
        proc = subprocess.run([mutmut(), "run", "--max-children", str(args.max_children)],
                              cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        print(log.read_text()[-3000:], file=sys.stderr)
        return proc.returncode
    stats = score(work)
    killed = stats["killed"] + stats["timeout"]
    reached = stats["total"] - stats["no_tests"] - stats["skipped"]
    print(f"\n{args.module}: {killed} of {reached} mutants its tests reach killed "
          f"({100 * killed / max(reached, 1):.1f}%; {stats['timeout']} of them by a timeout); "
          f"{stats['no_tests']} reached by no test; {stats['total']} in all")
    listing = subprocess.run([mutmut(), "results"], cwd=work, capture_output=True, text=True,
                             check=False).stdout
    survivors = [ln.strip() for ln in listing.splitlines() if ln.endswith(": survived")]
    if survivors:
        print(f"survivors (python -m tests.mutation {args.module} --survivors shows each):")
        print("\n".join(survivors))
    return 0


if __name__ == "__main__":
    sys.exit(main())
