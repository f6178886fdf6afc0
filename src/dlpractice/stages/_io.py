"""What every DVC stage shares: reading ``params.yaml``, the files passed between stages, and
``stage_main`` — the wrapper that makes a stage fail cleanly.

Every output goes to a staging folder (``.stage-tmp/``) and is moved into place with ``os.replace``
only when the stage succeeds: a failed, interrupted or killed stage leaves the old file or none.
Arrays go through ``.npz`` files written byte for byte reproducibly (fixed zip timestamps), so a
stage that computes the same numbers does not make DVC re-run what follows; they are read with
``allow_pickle=False``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import sys
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dlpractice import memory
from dlpractice.config import Config
from dlpractice.data import Splits
from dlpractice.errors import ConfigError, DataError, DlpracticeError, sigterm_as_interrupt

PARAMS_FILE = Path("params.yaml")
STAGING_DIR = Path(".stage-tmp")
SPLIT_NAMES = ("train", "dev", "test")
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


# -- params --------------------------------------------------------------------------------------


def read_params(path: str | Path = PARAMS_FILE) -> Config:
    """``params.yaml`` (the composed Hydra config) validated into a :class:`Config`."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"no {path} in {Path.cwd()}; write it with `python -m dlpractice.params [overrides]`"
        ) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{path} is not valid YAML{where}: {first}") from None
    from dlpractice import config

    return config.load(raw if raw is not None else {})


# -- arrays --------------------------------------------------------------------------------------


def save_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Like ``np.savez`` (uncompressed, loadable by ``np.load``) but byte-reproducible."""
    path = Path(path)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(arrays[name]),
                                          allow_pickle=False)
    return path


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise DataError(f"{path} does not exist: run the stage that writes it first "
                        "(`dvc repro`)") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} cannot be read as .npz: {exc}") from None


def save_splits(out: Outputs, folder: str | Path, splits: Splits) -> None:
    """``<folder>/{train,dev,test}.npz``, each with ``X`` (n, m) and ``Y`` (1, m)."""
    for name in SPLIT_NAMES:
        out.npz(Path(folder) / f"{name}.npz",
                {"X": getattr(splits, f"X_{name}"), "Y": getattr(splits, f"Y_{name}")})


def load_splits(folder: str | Path) -> Splits:
    arrays: dict[str, np.ndarray] = {}
    for name in SPLIT_NAMES:
        data = load_npz(Path(folder) / f"{name}.npz")
        if set(data) != {"X", "Y"}:
            raise DataError(f"{Path(folder) / name}.npz must hold X and Y; has {sorted(data)}")
        arrays[f"X_{name}"], arrays[f"Y_{name}"] = data["X"], data["Y"]
    return Splits(**arrays)


# -- json and csv ---------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, non-finite floats to null (JSON has no nan)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_text(obj: Any) -> str:
    return json.dumps(_plain(obj), indent=2, sort_keys=False) + "\n"


def write_json(path: str | Path, obj: Any) -> Path:
    path = Path(path)
    path.write_text(json_text(obj), encoding="utf-8")
    return path


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path} does not exist: run the stage that writes it first "
                        "(`dvc repro`)") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON: {exc}") from None


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for row in rows:
            w.writerow(["" if v is None else (repr(float(v)) if isinstance(v, (float, np.floating))
                                               else v) for v in row])
    return path


def read_csv(path: str | Path) -> list[dict[str, str]]:
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        raise DataError(f"{path} does not exist: run the stage that writes it first "
                        "(`dvc repro`)") from None


# -- staged outputs ------------------------------------------------------------------------------


class Outputs:
    """Collects outputs under ``root`` in a staging folder (``root/.stage-tmp/<pid>``);
    ``commit`` moves them into place.

    ``path("reports/metrics.json")`` returns where to write the file now (same base name, so
    matplotlib and numpy see the right suffix and MLflow logs the right artifact name).
    """

    def __init__(self, root: str | Path = "."):
        self.root = Path(root)
        self.staging = self.root / STAGING_DIR / str(os.getpid())
        self._files: dict[Path, Path] = {}

    def path(self, target: str | Path) -> Path:
        """Where to write ``root/target`` now (``target`` relative to ``root``)."""
        rel = Path(target)
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"an output must be a path inside {self.root}: {target}")
        tmp = self.staging / rel
        tmp.parent.mkdir(parents=True, exist_ok=True)
        self._files[self.root / rel] = tmp
        return tmp

    def json(self, target: str | Path, obj: Any) -> Path:
        return write_json(self.path(target), obj)

    def npz(self, target: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
        return save_npz(self.path(target), arrays)

    def csv(self, target: str | Path, header: Sequence[str],
            rows: Iterable[Sequence[Any]]) -> Path:
        return write_csv(self.path(target), header, rows)

    @property
    def staged(self) -> dict[Path, Path]:
        """final path -> staged path, of everything written so far."""
        return {final: tmp for final, tmp in self._files.items() if tmp.exists()}

    def commit(self) -> list[Path]:
        done = []
        for final, tmp in self.staged.items():
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            done.append(final)
        self.discard()
        return done

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        try:
            self.staging.parent.rmdir()  # the shared .stage-tmp, when no other stage uses it
        except OSError:
            pass
        self._files.clear()


# -- the wrapper ---------------------------------------------------------------------------------

StageFn = Callable[[Config, Outputs], None]


def stage_main(fn: StageFn, name: str | None = None) -> Callable[[list[str] | None], int]:
    """Turn ``fn(cfg, out)`` into a stage's ``main``.

    ``main(argv)`` reads ``params.yaml`` from the working directory (``--params PATH`` to read
    another), runs ``fn`` and commits its outputs. An expected failure (any ``DlpracticeError``:
    a bad config value, missing input, divergence, a failed gradient check) prints ONE line,
    ``error: ...``, on stderr and returns 1; SIGTERM is handled as Ctrl-C (returns 130). Either way
    the staged outputs are discarded.
    """
    stage = name or getattr(fn, "__module__", "stage").rsplit(".", 1)[-1]

    def main(argv: list[str] | None = None) -> int:
        from dlpractice.errors import ArgumentParser

        parser = ArgumentParser(
            prog=f"python -m dlpractice.stages.{stage}",
            description=(fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else None,
        )
        parser.add_argument("--params", default=str(PARAMS_FILE),
                            help="the composed config to read (default: params.yaml)")
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        sigterm_as_interrupt()
        out = Outputs()
        try:
            cfg = read_params(args.params)
            memory.check_run(cfg)  # every stage: `dvc repro` stops at its first one
            fn(cfg, out)
            out.commit()
        except DlpracticeError as exc:
            out.discard()
            message = " ".join(str(exc).split()) or type(exc).__name__
            print(f"error: {stage}: {message}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            out.discard()
            print(f"error: {stage}: interrupted; no outputs written", file=sys.stderr)
            return 130
        except BaseException:
            out.discard()
            raise
        return 0

    return main
