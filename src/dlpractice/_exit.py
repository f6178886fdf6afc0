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

Tearing the interpreter down (freeing every module's objects, one by one) takes another ~0.09 s
once the entry point's work is done: :func:`exit_fast` runs a script's ``main``, the exit handlers,
flushes the standard streams and leaves with ``os._exit``.
"""

import atexit
import gc
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

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


def exit_fast(main: Callable[[], int | None]) -> NoReturn:
    """``sys.exit(main())`` for a module run as a script, without the interpreter's teardown: the
    other threads are waited for and the exit handlers run as at a normal exit (logging flushed
    and closed, MLflow runs ended, the collector frozen), then the standard streams are flushed
    and the process ends with ``main``'s exit status. Any exception but ``SystemExit`` takes
    Python's usual way out (its traceback, its status)."""
    try:
        code = main()
    except SystemExit as exc:
        code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    shutdown = getattr(threading, "_shutdown", None)  # what Py_FinalizeEx calls first
    if shutdown is None:
        sys.exit(code)
    shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    os._exit(code)
