"""`persona batch import` and `persona batch status`: the offline half of `--execution export`
(llm.batchfiles), and the ledger of `--execution batch` (llm.providerbatch). Thin: parse options,
call the library, print one line per result."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from persona_testbed.cli.options import BatchDirOption, CacheOption
from persona_testbed.llm.batchfiles import batch_status, import_batch
from persona_testbed.llm.cache import ResponseCache
from persona_testbed.llm.providerbatch.ledger import IMPORTED, Ledger, LedgerBatch
from persona_testbed.llm.settings import default_batch_dir, user_settings

console = Console(soft_wrap=True)


def _cache_and_dir(cache: Path | None, batch_dir: Path | None) -> tuple[ResponseCache, Path]:
    settings = user_settings(cache=cache)
    assert settings.cache_path is not None  # user_settings without no_cache keeps a cache
    return ResponseCache(settings.cache_path), batch_dir or default_batch_dir(settings.cache_path)


def import_command(
    output: Annotated[Path, typer.Argument(help="a batch run's output JSONL (OpenAI Batch)")],
    cache: CacheOption = None,
    batch_dir: BatchDirOption = None,
) -> None:
    """Put a batch run's replies in the response cache; then run the exporting command again."""
    store, folder = _cache_and_dir(cache, batch_dir)
    try:
        summary = import_batch(output, store, [folder])
    finally:
        store.close()
    console.print(summary.line(output), markup=False, highlight=False)


def status_command(
    batch_dir: Annotated[
        Path | None, typer.Argument(help="the batch folder (default: beside --cache)")
    ] = None,
    cache: CacheOption = None,
) -> None:
    """List exported batch files with how many of their requests still lack a reply, and the
    batches submitted to a provider's batch API (--execution batch) with their state."""
    store, folder = _cache_and_dir(cache, batch_dir)
    try:
        statuses = batch_status(folder, store)
    finally:
        store.close()
    submitted = Ledger(folder).read()
    if not statuses and not submitted:
        console.print(f"no batch files in {folder}", markup=False, highlight=False)
    for batch in submitted.values():
        console.print(_ledger_line(batch), markup=False, highlight=False)
    for status in statuses:
        state = "done" if status.pending == 0 else f"{status.pending} pending"
        line = f"{status.path}: {status.requests} requests, {state}"
        console.print(line, markup=False, highlight=False)


def _ledger_line(batch: LedgerBatch) -> str:
    """One submitted provider batch: id, provider, model, state and counts."""
    counts = batch.counts
    done = counts.get("succeeded", 0) + counts.get("failed", 0)
    line = (
        f"{batch.batch_id} ({batch.provider}, {batch.model_id}): {batch.state}"
        f"{f' ({batch.status})' if batch.status else ''}, {len(batch.keys)} requests, "
        f"{done} done"
    )
    if batch.state == IMPORTED:
        line += f", {counts.get('imported', 0)} imported, {counts.get('failed', 0)} failed"
    return line


def register(app: typer.Typer) -> None:
    """Add `persona batch import` and `persona batch status` to `app`."""
    batch_app = typer.Typer(
        help="Offline batch files (vLLM run-batch, any OpenAI Batch service): import replies "
        "of requests written by --execution export; list provider batches of --execution batch.",
        no_args_is_help=True,
    )
    batch_app.command("import")(import_command)
    batch_app.command("status")(status_command)
    app.add_typer(batch_app, name="batch")
