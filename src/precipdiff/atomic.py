"""Atomic file writes (temporary file + ``os.replace``) and the removal of their stale leftovers.

Every file precipdiff writes itself (NetCDF datasets, training checkpoints, inference outputs) goes
through :func:`atomic_write`: ``<name>.tmp-<pid>`` (or ``.<name>.tmp-<pid>``) beside the target,
moved into place only when complete, so a failed or interrupted run never leaves a half-written
file that a later run would load. SIGINT is held back during the write
(:func:`precipdiff.interrupts.deferred`): an interrupted write removes its temporary file, does not
publish the target, and stops the run.

A process killed outright (SIGKILL, power loss) cannot remove its temporary file;
:func:`remove_stale` deletes those of processes that are no longer running, at the next write of
the same target and (through :class:`~precipdiff.hooks.InterruptHooks`) at the start of every run.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from precipdiff import interrupts

log = logging.getLogger(__name__)
TMP_PATTERN = re.compile(r"^(?P<target>.+)\.tmp-(?P<pid>\d+)$")
# a temporary file untouched this long is stale whatever its pid says (pid reused since, or
# written from another machine sharing the folder): no write in precipdiff pauses for a day
MAX_AGE_S = 24 * 3600.0


def tmp_path(target: Path, hidden: bool = False) -> Path:
    """``<name>.tmp-<pid>`` (``.<name>.tmp-<pid>`` if ``hidden``) beside ``target``."""
    return target.with_name(f"{'.' if hidden else ''}{target.name}.tmp-{os.getpid()}")


def atomic_write(target: str | Path, write: Callable[[Path], object], hidden: bool = False) -> None:
    """Call ``write(tmp)`` and move ``tmp`` onto ``target``; on any failure or SIGINT remove ``tmp``.

    Parameters
    ----------
    target
        The file to (re)place; its folder is created if missing.
    write
        Writes the complete file at the path it is given.
    hidden
        Name the temporary file ``.<name>.tmp-<pid>`` (kept out of directory listings and globs).

    Raises
    ------
    KeyboardInterrupt
        SIGINT arrived during the write: ``target`` is left as it was, the temporary file removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(_siblings(target))
    tmp = tmp_path(target, hidden)
    with interrupts.deferred(tmp):
        try:
            write(tmp)
            if interrupts.pending():  # the run is stopping: do not publish a file it did not finish with
                raise KeyboardInterrupt(f"SIGINT received while writing {target}: not saved, temporary file removed")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)


def _siblings(target: Path) -> list[Path]:
    """Temporary files of ``target`` left by any process (both naming styles)."""
    names = (f"{target.name}.tmp-", f".{target.name}.tmp-")
    return [p for p in target.parent.glob(f"*{target.name}.tmp-*") if p.name.startswith(names)]


def is_stale(path: Path, now: float | None = None, max_age_s: float = MAX_AGE_S) -> bool:
    """Whether ``path`` (``….tmp-<pid>``) is a leftover: its process is not running, or it is older than ``max_age_s``."""
    match = TMP_PATTERN.match(path.name)
    if not match:
        return False
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except FileNotFoundError:
        return False
    return age > max_age_s or not pid_alive(int(match["pid"]))


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (signal 0 probes without signalling)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, belongs to another user
        return True
    except OverflowError:  # not a valid pid at all
        return False
    return True


def remove_stale(paths: Iterable[Path]) -> list[Path]:
    """Delete the stale temporary files among ``paths`` (see :func:`is_stale`); returns those removed."""
    removed = []
    for path in paths:
        if is_stale(path):
            pid = int(TMP_PATTERN.match(path.name)["pid"])
            reason = "is not running" if not pid_alive(pid) else f"is running but the file is older than {MAX_AGE_S / 3600:.0f} h"
            path.unlink(missing_ok=True)
            log.info("removed stale temporary file %s (process %d %s)", path, pid, reason)
            removed.append(path)
    return removed


def remove_stale_under(folder: str | Path) -> list[Path]:
    """:func:`remove_stale` on every ``*.tmp-<pid>`` file below ``folder`` (missing folder: nothing)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return remove_stale(p for p in folder.rglob("*.tmp-*") if p.is_file())
