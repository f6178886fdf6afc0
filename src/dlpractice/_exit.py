"""The interpreter's cyclic garbage collector in an entry point's process (a CLI run, a DVC stage,
a sweep): it should not keep walking the objects of the big libraries we import.

At exit CPython runs its collector over every object still alive; with MLflow, matplotlib and
Hydra loaded that pass alone takes ~0.5 s — per DVC stage, per sweep, per run. ``gc.freeze()`` as
the very last exit handler moves those objects out of the collector's sight: the atexit handlers
have already run (logging flushed, MLflow runs closed), and files are flushed and closed as usual
when the modules are torn down.

Importing MLflow (with SQLAlchemy) or matplotlib makes ~400k objects that live as long as the
process; the collector's full passes walk them again and again — during the import (~0.35 s) and
every few runs of a sweep (~0.12 s each). In an entry point's process, :func:`long_lived_imports`
imports them with the collector off and freezes what exists then. A library user (a notebook) is
left alone: nothing happens unless :func:`skip_gc_at_exit` was called.
"""

import atexit
import gc
from collections.abc import Iterator
from contextlib import contextmanager

_registered = False


def skip_gc_at_exit() -> None:
    """Call early in an entry point: the handler registered first runs last. Marks this process
    as an entry point's (see :func:`long_lived_imports`)."""
    global _registered
    if not _registered:
        atexit.register(gc.freeze)
        _registered = True


@contextmanager
def long_lived_imports() -> Iterator[None]:
    """Around the first import of a big library in an entry point's process: no collector pass
    during it, then freeze what the process holds (it is kept for the process's life anyway)."""
    if not _registered:
        yield
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
