"""A rich progress bar for batches of model calls: done/total, rate, ETA and cache hits."""

from __future__ import annotations

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

    def __enter__(self) -> BatchProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def advance(self, cache_hits: int) -> None:
        self._done += 1
        task = self._progress.tasks[0]
        elapsed = task.elapsed or 0.0
        rate = f"{self._done / elapsed:7.1f}/s" if elapsed > 0 else ""
        self._progress.update(self._task, advance=1, hits=cache_hits, rate=rate)
