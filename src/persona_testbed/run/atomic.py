"""Atomic file writes: a crash never leaves a half-written file that looks complete.

Every artifact is written to a temporary file in the same directory, fsynced, then renamed over
the final name (rename is atomic on POSIX within one filesystem).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from persona_testbed.errors import InputError


def prepare_output_file(path: Path, option: str = "--output") -> None:
    """Fail before any work (and any model call) when `path` cannot be written as a file:
    it is a directory, or its folder cannot be made or written. A missing folder is made."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory ({option} names a file)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{path}: cannot create its folder ({exc.strerror})") from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise InputError(f"{path}: its folder {path.parent} is not writable")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path next to `final`; on success fsync it and rename it into place.

    On any exception the temporary file is removed and `final` is left untouched.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    # mkstemp makes the file 0600; published artifacts get the usual mode under the umask.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_name, 0o666 & ~umask)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(final: Path, data: bytes) -> None:
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(final: Path, text: str) -> None:
    write_bytes_atomic(final, text.encode("utf-8"))


def finite_json(obj: Any) -> Any:
    """`obj` with every non-finite float (NaN, inf) as None: strict JSON has no bare NaN."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: finite_json(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_json(value) for value in obj]
    return obj


def dumps_strict(obj: Any, **options: Any) -> str:
    """JSON text any parser reads: NaN and infinities become null."""
    return json.dumps(finite_json(obj), allow_nan=False, default=str, **options)


def write_json_atomic(final: Path, obj: Any) -> None:
    write_text_atomic(final, dumps_strict(obj, indent=2, sort_keys=True) + "\n")


def write_with_atomic(final: Path, writer: Callable[[Path], None]) -> None:
    """Let `writer` fill a temporary path (e.g. `df.write_parquet`), then publish it atomically."""
    with atomic_path(final) as tmp:
        writer(tmp)
