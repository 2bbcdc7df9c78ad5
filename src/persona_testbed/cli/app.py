"""The `persona` app: every command group registered, and the entry point that turns user
errors into one line. Thin: each command parses options and calls a library function."""

from __future__ import annotations

import errno
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from persona_testbed.cli import agreement as agreement_commands
from persona_testbed.cli import align as align_commands
from persona_testbed.cli import annotate as annotate_commands
from persona_testbed.cli import batch as batch_commands
from persona_testbed.cli import bench as bench_commands
from persona_testbed.cli import census as census_commands
from persona_testbed.cli import pipeline as pipeline_commands
from persona_testbed.cli import preferences as preferences_commands
from persona_testbed.cli import prompts as prompts_commands
from persona_testbed.cli import report as report_commands
from persona_testbed.cli.argv import spread_file_lists
from persona_testbed.cli.options import (
    DEFAULT_MODEL_SPEC,
    BaseUrlOption,
    CacheOption,
    ClientOptions,
    ModelOption,
    print_written,
    with_client_options,
)
from persona_testbed.errors import PersonaError
from persona_testbed.llm import LLMClient, ModelUsage, ResponseCache, list_models
from persona_testbed.llm.batch import run_batch
from persona_testbed.llm.progress import set_progress
from persona_testbed.llm.settings import user_settings

app = typer.Typer(
    name="persona",
    help="Build and run the PERSONA testbed for pluralistic alignment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
cache_app = typer.Typer(help="Inspect or clear the LLM response cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")
census_commands.register(app)
prompts_commands.register(app)
preferences_commands.register(app)
annotate_commands.register(app)
pipeline_commands.register(app)
bench_commands.register(app)
agreement_commands.register(app)
align_commands.register(app)
report_commands.register(app)
batch_commands.register(app)
USER_FIXABLE_OS_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES})
# soft_wrap: long lines (paths, usage) stay whole when piped to a file or a log.
out = Console(soft_wrap=True)


def print_usage(usage: dict[str, ModelUsage]) -> None:
    for model, u in usage.items():
        served = f" ({u.runtime})" if u.runtime else ""
        out.print(
            f"{model}{served}: {u.calls} model calls, {u.cache_hits} cache hits, "
            f"{u.prompt_tokens} prompt + {u.completion_tokens} completion tokens, "
            f"${u.cost_usd:.4f}"
            + (f", {u.parse_failures} parse failures" if u.parse_failures else "")
        )


@app.command()
def models(base_url: BaseUrlOption = None) -> None:
    """List the model specs and say which are installed."""
    settings = user_settings(base_url=base_url)
    for info in list_models(settings):
        mark = "installed" if info.installed else "not installed"
        out.print(f"{info.spec:<22} {mark:<14} {info.description}\n{'':<37} {info.detail}")


@app.command()
@with_client_options
def complete(
    input: Annotated[Path, typer.Option("--input", help="JSONL, one chat request per line")],
    output: Annotated[Path, typer.Option("--output", help="JSONL results, in input order")],
    model: ModelOption = DEFAULT_MODEL_SPEC,
    client_options: ClientOptions = ClientOptions(),
) -> None:
    """Run a JSONL file of chat requests (cached, resumable, concurrent)."""
    client = LLMClient.from_spec(model, client_options.settings())
    try:
        count = run_batch(client, input, output)
    finally:
        print_usage(client.usage)
        client.close()
    out.print(f"{count} results, in input order")
    print_written(out, [output])


@cache_app.command("stats")
def cache_stats(cache: CacheOption = None) -> None:
    """Entries per model and size of the response cache."""
    settings = user_settings(cache=cache)
    assert settings.cache_path is not None
    store = ResponseCache(settings.cache_path)
    stats = store.stats()
    store.close()
    out.print(f"cache: {stats.path} ({stats.size_bytes / 1e6:.1f} MB, {stats.entries} entries)")
    for model_id, count in sorted(stats.by_model.items()):
        out.print(f"  {model_id}: {count}")


@cache_app.command("clear")
def cache_clear(
    cache: CacheOption = None,
    model: Annotated[str | None, typer.Option("--model", help="only this model spec")] = None,
) -> None:
    """Delete cached responses (all, or one model's)."""
    settings = user_settings(cache=cache)
    assert settings.cache_path is not None
    store = ResponseCache(settings.cache_path)
    removed = store.clear(model)
    store.close()
    out.print(f"removed {removed} cached responses from {settings.cache_path}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors print as one line (exit 2), never as a traceback.

    Several files may follow one file-list option (`--pums a.zip b.zip`, a shell glob):
    cli.argv spreads them before Typer parses the line."""
    words = sys.argv[1:] if argv is None else argv
    set_progress(True)  # until a command's --no-progress says otherwise
    try:
        app(args=spread_file_lists(typer.main.get_command(app), words), prog_name="persona")
    except SystemExit as exc:  # Typer's standalone mode ends every run with SystemExit
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except PersonaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # A full disk or a read-only target mid-write is the user's to fix, not a bug: one line.
        if exc.errno not in USER_FIXABLE_OS_ERRORS:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


def entry() -> None:
    sys.exit(main())
