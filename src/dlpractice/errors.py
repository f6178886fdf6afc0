"""The project's exceptions: each one carries a single line a user can act on.

Entry points (DVC stages, the Hydra app) print ``str(error)`` on one line and exit non-zero, so the
message must name what was wrong, the value seen, and what is allowed. Owns: the exception types,
``one_line``, the one-line ``ArgumentParser`` and the SIGTERM handler of every entry point. Must
not touch: anything else (stdlib only).
"""

import argparse
from typing import NoReturn


class DlpracticeError(Exception):
    """Base class: an expected failure with a one-line, user-facing message."""


class DataError(DlpracticeError, ValueError):
    """A dataset that cannot be used: missing file or key, bad shapes, nan/inf, bad labels."""


class ConfigError(DlpracticeError, ValueError):
    """A configuration value outside what is allowed."""


class DivergenceError(DlpracticeError, FloatingPointError):
    """Training produced nan/inf; the message names the iteration and the layer."""

    def __init__(self, message: str, iteration: int, layer: int | None):
        super().__init__(message)
        self.iteration = iteration
        self.layer = layer


class GradientCheckError(DlpracticeError):
    """Gradient checking was asked for something it cannot check (e.g. with dropout on)."""


class MemoryLimitError(DlpracticeError):
    """A run or sweep would need more memory than the machine has available."""


def one_line(exc: BaseException) -> str:
    """The first non-empty line of ``str(exc)``, stripped; the exception type's name if none."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors are ONE line on stderr (exit 2), like every
    other error of the entry points, instead of the usage block plus the error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {' '.join(message.split())} (see --help)\n")


def sigterm_as_interrupt() -> None:
    """SIGTERM ends an entry point like Ctrl-C does (``KeyboardInterrupt("signal 15")``): an open
    MLflow run is closed as KILLED and a stage's staged outputs are discarded."""
    import signal

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)

