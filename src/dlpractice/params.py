"""``python -m dlpractice.params [overrides...]``: write ``params.yaml``, the composed config the DVC
stages read, e.g. ``python -m dlpractice.params init=zeros train.iterations=300`` then ``dvc repro``.

It composes ``conf/`` exactly as ``dvc exp run -S`` does (the same call,
``dvc.utils.hydra.compose_and_dump``, with the ``[hydra]`` section of ``.dvc/config``), and validates
the result (:func:`dlpractice.config.load`) before replacing the file: a bad value prints one line
and leaves ``params.yaml`` as it was.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from dlpractice.errors import ArgumentParser, ConfigError, DlpracticeError, one_line

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def find_root(start: str | Path | None = None) -> Path:
    """The DVC repository around ``start`` (default: the working directory), else the project's
    checkout this package was installed from."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".dvc").is_dir():
            return folder
    if (PACKAGE_ROOT / "conf").is_dir():
        return PACKAGE_ROOT
    raise ConfigError(f"no DVC repository (a folder with .dvc/) at or above {here}")


def hydra_settings(root: Path) -> dict[str, str | None]:
    """``.dvc/config``'s ``[hydra]`` section, with DVC's defaults, as ``dvc exp run`` reads it."""
    hydra: dict = {}
    if (root / ".dvc").is_dir():
        from dvc.config import Config

        hydra = dict(Config(dvc_dir=str(root / ".dvc")).get("hydra", {}))
    module = hydra.get("config_module")
    return {
        "config_dir": None if module else os.path.join(str(root), hydra.get("config_dir", "conf")),
        "config_module": module,
        "config_name": hydra.get("config_name", "config"),
        "plugins_path": os.path.join(str(root), hydra.get("plugins_path", "")),
    }


def check_group_choices(overrides: list[str], config_dir: Path) -> None:
    """``init=foo`` -> one line naming the options, before Hydra's multi-line error."""
    for arg in overrides:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+~")
        if not sep or key.startswith("hydra") or "." in key or "/" in key:
            continue
        group = config_dir / key
        if not group.is_dir():
            continue
        options = sorted(p.stem for p in group.glob("*.yaml"))
        if "," in value:
            raise ConfigError(
                f"{key}={value} is a sweep, but params.yaml holds one config: queue one experiment "
                f"per value with `dvc exp run --queue -S '{key}={value}'`"
            )
        if value and value != "null" and value not in options:
            raise ConfigError(f"{key}={value!r} is not a config option; choose one of "
                              f"{', '.join(options)}")


def check_keys(overrides: list[str], config_dir: Path) -> None:
    """``train.bogus=1`` -> one line naming the allowed keys, before Hydra's own error."""
    from dlpractice.config import check_key

    for arg in overrides:
        key, sep, _ = arg.partition("=")
        if not sep or key.startswith(("+", "~", "hydra")) or "@" in key or "/" in key:
            continue
        if not (config_dir / key).is_dir():
            check_key(key)


def compose(overrides: list[str], output: str | Path, root: Path | None = None) -> Path:
    """Compose ``conf/`` with ``overrides`` into ``output`` (validated, replaced atomically)."""
    from dvc.utils.hydra import compose_and_dump
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from dlpractice import config

    root = root or find_root()
    output = Path(output)
    settings = hydra_settings(root)
    if settings["config_dir"]:
        check_group_choices(overrides, Path(settings["config_dir"]))
        check_keys(overrides, Path(settings["config_dir"]))
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=".params-", suffix=output.suffix or ".yaml",
                                        dir=output.parent if str(output.parent) else ".")
    except OSError as exc:
        raise ConfigError(f"cannot write {output}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            compose_and_dump(tmp, overrides=list(overrides), **settings)
        except (HydraException, OmegaConfBaseException) as exc:  # composition, override grammar
            raise ConfigError(f"cannot compose the config: {one_line(exc)}") from None
        import yaml

        config.load(yaml.safe_load(tmp.read_text(encoding="utf-8")), check_files=False)
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # mkstemp made it private
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m dlpractice.params",
        description="Compose conf/ (with Hydra overrides) into params.yaml, as `dvc exp run -S` "
                    "does.",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. init=zeros "
                                                     "train.iterations=300")
    parser.add_argument("-o", "--output", help="file to write (default: <repo>/params.yaml)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        root = find_root()
        output = Path(args.output) if args.output else root / "params.yaml"
        compose(args.overrides, output, root)
    except DlpracticeError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    shown = output.relative_to(Path.cwd()) if output.is_relative_to(Path.cwd()) else output
    print(f"wrote {shown}" + (f" ({' '.join(args.overrides)})" if args.overrides else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
