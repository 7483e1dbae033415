"""Ctrl-C (SIGINT) during a run: never lost, and never delivered inside a file write.

Python raises ``KeyboardInterrupt`` at whatever bytecode the main thread is running when SIGINT
arrives. Two things go wrong with that in a pipeline:

* **inside a NetCDF write** it can land in xarray's lock bookkeeping (``CombinedLock.acquire``
  between taking the HDF5 lock and recording it); the ``finally`` that closes the file then waits
  for a lock its own thread holds, and the run hangs for ever with ``<name>.tmp-<pid>`` left behind
  (issue #16, item 1). :func:`deferred` holds the interrupt back until the write is over, so the
  caller can drop its temporary file and stop;
* **inside code that swallows it** (a ``__del__`` or a broad ``except``), the run carries on and
  ends with exit status 0 (item 2). :func:`handler` records every interrupt, and :func:`check` —
  called by :class:`~precipdiff.hooks.InterruptHooks` after every node, save and at the end of the
  run — raises it again.

A second Ctrl-C during a deferred write stops the process at once (exit status 130) after removing
the write's temporary files: the way out when a very large write would take too long.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

EXIT_STATUS = 128 + signal.SIGINT  # what a shell reports for a process stopped by SIGINT


class _State:
    """Interrupts seen since :func:`reset`, and the writes (their temporary files) being protected."""

    def __init__(self) -> None:
        self.pending = False
        self.during_write = 0  # interrupts received inside the current deferred() block(s)
        self.deferring: list[list[Path]] = []  # one entry per open deferred() block


_state = _State()


def handler(signum: int, frame) -> None:
    """SIGINT handler: record the interrupt; raise ``KeyboardInterrupt`` unless a write is protected."""
    if not _state.deferring:
        _state.pending = True
        raise KeyboardInterrupt
    _state.pending = True
    _state.during_write += 1
    if _state.during_write > 1:  # second Ctrl-C during a protected write: stop now
        for tmp in (p for block in _state.deferring for p in block):
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        os.write(2, b"\nprecipdiff: second interrupt, stopping now (temporary files removed)\n")
        os._exit(EXIT_STATUS)
    os.write(2, b"\nprecipdiff: interrupt received, stopping after the file being written"
                b" (its temporary file is removed; Ctrl-C again to stop at once)\n")


def install() -> bool:
    """Make :func:`handler` the SIGINT handler if Python's default one is in place (main thread only).

    An ignored SIGINT (``nohup``, background jobs) and handlers installed by others are left alone.
    Returns whether :func:`handler` is now installed.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    current = signal.getsignal(signal.SIGINT)
    if current is signal.default_int_handler:
        signal.signal(signal.SIGINT, handler)
        return True
    return current is handler


def uninstall() -> None:
    """Put Python's default SIGINT handler back if :func:`handler` is installed (main thread only)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is handler:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def reset() -> None:
    """Forget earlier interrupts (start of a run in a long-lived process)."""
    _state.pending = False


def pending() -> bool:
    """Whether SIGINT arrived since :func:`reset`."""
    return _state.pending


def check() -> None:
    """Raise ``KeyboardInterrupt`` if SIGINT arrived (and was perhaps swallowed) since :func:`reset`."""
    if _state.pending:
        raise KeyboardInterrupt("SIGINT received during the run")


@contextlib.contextmanager
def deferred(*temporary: Path) -> Iterator[None]:
    """Hold SIGINT back inside the block (main thread); re-raise it as ``KeyboardInterrupt`` at its end.

    ``temporary`` are files the block may leave behind, removed if a second SIGINT forces an
    immediate exit. Elsewhere than in the main thread, or when SIGINT is ignored or handled by
    someone else, the block runs unchanged (signals are only delivered to the main thread).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    installed_here = signal.getsignal(signal.SIGINT) is signal.default_int_handler and install()
    if signal.getsignal(signal.SIGINT) is not handler:
        yield
        return
    _state.deferring.append(list(temporary))
    try:
        yield
    finally:
        _state.deferring.pop()
        if not _state.deferring:
            _state.during_write = 0
        interrupted = _state.pending and not _state.deferring
        if installed_here:  # outside a run (no hooks) nobody else reads the record: forget it, even
            uninstall()     # when the block raised (atomic_write's own KeyboardInterrupt), or every
            reset()         # later write of this process would refuse to publish
    if interrupted:
        raise KeyboardInterrupt("SIGINT received during a file write")
