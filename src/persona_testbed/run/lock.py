"""One process at a time per run directory.

Two runs writing one directory would race on its manifest (the last writer wins, bypassing the
different-config guard) and pay twice for the same calls. The lock is an advisory `flock` on
`<run>/.lock`: the kernel drops it when the process dies, even by SIGKILL, so a killed run never
leaves a stale lock behind. It is re-entrant within a process (a pipeline holds it while each
stage takes it again).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from persona_testbed.errors import InputError, PersonaError

LOCK_NAME = ".lock"


class RunDirBusyError(PersonaError):
    """Another process is using the run directory."""


_held: dict[Path, tuple[int, int]] = {}  # resolved dir -> (fd, depth)
_guard = threading.Lock()


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", errors="replace").strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""


@contextmanager
def run_dir_lock(directory: Path) -> Iterator[None]:
    """Hold the run directory's lock, or fail at once with a one-line error."""
    key = Path(directory).resolve()
    with _guard:
        if key in _held:
            fd, depth = _held[key]
            _held[key] = (fd, depth + 1)
        else:
            if key.exists() and not key.is_dir():
                raise InputError(
                    f"{directory}: exists and is not a directory (--out names a folder)"
                )
            try:
                key.mkdir(parents=True, exist_ok=True)
                fd = os.open(key / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise InputError(
                    f"{directory}: cannot use as a run directory ({exc.strerror})"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise RunDirBusyError(
                    f"{directory}: another persona process is using this run directory"
                    f"{holder}; wait for it to finish or use another --out"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
            _held[key] = (fd, 1)
    try:
        yield
    finally:
        with _guard:
            fd, depth = _held[key]
            if depth > 1:
                _held[key] = (fd, depth - 1)
            else:
                del _held[key]
                os.close(fd)  # closing the descriptor releases the flock
