"""Progress on stderr: a rich bar for batches of model calls (done/total, rate, ETA, cache
hits), and a spinner line for the other long steps (loading a model, embedding, reading PUMS).

The spinner shows only on a terminal, and never when `--no-progress` turned progress off
(`set_progress`); while a bar is up it borrows the bar's description instead of opening a
second live display.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class _State:
    enabled = True  # --no-progress turns this off for the whole command
    bar: BatchProgress | None = None  # the bar on screen, if any


def set_progress(enabled: bool) -> None:
    """Turn every spinner of this process on or off (the `--progress/--no-progress` option)."""
    _State.enabled = enabled


def stderr_console() -> Console:
    return Console(stderr=True)


@contextmanager
def status(text: str, *, enabled: bool = True) -> Iterator[None]:
    """Show `text` with a spinner while the block runs (see the module docstring)."""
    bar = _State.bar
    if not (enabled and _State.enabled):
        yield
    elif bar is not None:
        with bar.describing(text):
            yield
    else:
        console = stderr_console()
        if not console.is_terminal:
            yield
            return
        with console.status(text):
            yield


@contextmanager
def updating_status(text: str, *, enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """`status`, and the block gets a function that replaces the text (a job's running count)."""
    bar = _State.bar
    if not (enabled and _State.enabled):
        yield lambda _: None
    elif bar is not None:
        with bar.describing(text):
            yield bar.describe
    else:
        console = stderr_console()
        if not console.is_terminal:
            yield lambda _: None
            return
        with console.status(text) as line:
            yield line.update


class BatchProgress:
    def __init__(self, description: str, total: int, *, enabled: bool) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("cache hits {task.fields[hits]}"),
            console=Console(stderr=True),
            disable=not enabled or total == 0,
            transient=False,
        )
        self._task: TaskID = self._progress.add_task(description, total=total, hits=0, rate="")
        self._done = 0
        self._description = description
        self._shown = not self._progress.disable

    def __enter__(self) -> BatchProgress:
        self._progress.start()
        if self._shown:
            _State.bar = self
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()
        if _State.bar is self:
            _State.bar = None

    @contextmanager
    def describing(self, text: str) -> Iterator[None]:
        """The bar says `text` (e.g. "loading model ...") while the block runs."""
        self._progress.update(self._task, description=text)
        try:
            yield
        finally:
            self._progress.update(self._task, description=self._description)

    def describe(self, text: str) -> None:
        """Say `text` until `describing` ends (see updating_status)."""
        self._progress.update(self._task, description=text)

    def advance(self, cache_hits: int) -> None:
        if not self._shown:  # nothing on screen: skip the bar's bookkeeping (it is per call)
            return
        self._done += 1
        task = self._progress.tasks[0]
        elapsed = task.elapsed or 0.0
        rate = f"{self._done / elapsed:7.1f}/s" if elapsed > 0 else ""
        self._progress.update(self._task, advance=1, hits=cache_hits, rate=rate)
