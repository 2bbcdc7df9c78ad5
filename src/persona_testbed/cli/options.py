"""Options shared by the commands, and how the client options become ClientSettings."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from persona_testbed.llm import DEFAULT_MODEL, ClientSettings, LLMClient
from persona_testbed.llm.progress import set_progress
from persona_testbed.llm.settings import (
    DEFAULT_CONCURRENCY,
    DEFAULT_TIMEOUT_S,
    BatchSettings,
    ExecutionSetting,
    user_settings,
)
from persona_testbed.stages.pool import ModelPool

ModelOption = Annotated[
    str,
    typer.Option(
        "--model", help="local:smollm2-135m (default), gguf:/path/file.gguf or openai:MODEL"
    ),
]
BaseUrlOption = Annotated[
    list[str] | None,
    typer.Option(
        "--base-url",
        envvar="OPENAI_BASE_URL",
        help="OpenAI-compatible endpoint for openai: specs; repeat it to spread the requests "
        "over several servers (least-outstanding routing, a circuit breaker per server)",
    ),
]
ConcurrencyOption = Annotated[
    int, typer.Option("--concurrency", min=1, help="most model requests in flight at once")
]
CacheOption = Annotated[
    Path | None,
    typer.Option("--cache", envvar="PERSONA_CACHE", help="response cache (SQLite file)"),
]
NoCacheOption = Annotated[bool, typer.Option("--no-cache", help="do not read or write the cache")]
MaxCostOption = Annotated[
    float | None,
    typer.Option("--max-cost-usd", "--max-cost", help="stop before spending more than this (USD)"),
]
PricesOption = Annotated[
    Path | None,
    typer.Option("--prices", help="YAML/JSON price table: model -> input/output USD per 1M tokens"),
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout-s", "--timeout", help="per-request timeout (s)")
]
ExecutionOption = Annotated[
    ExecutionSetting,
    typer.Option(
        "--execution",
        help="online: call the model; export: write the requests the cache lacks to an OpenAI "
        "Batch file (vLLM run-batch) and stop, then `persona batch import` and run again; "
        "batch: submit them to the provider's batch API; ray: run them as a Ray Data job",
    ),
]
BatchDirOption = Annotated[
    Path | None,
    typer.Option(
        "--batch-dir",
        help="where --execution export writes and --execution batch keeps its ledger "
        "(default: beside --cache)",
    ),
]
WaitOption = Annotated[
    bool,
    typer.Option(
        "--wait/--no-wait",
        help="--execution batch: wait for the submitted batches (--no-wait: submit and stop; "
        "run the command again to pick the results up)",
    ),
]
ProgressOption = Annotated[bool, typer.Option("--progress/--no-progress", help="progress bar")]
SeedOption = Annotated[int, typer.Option("--seed", min=0, help="the one seed of every draw")]
ForceOption = Annotated[
    bool, typer.Option("--force", help="overwrite outputs made with a different config")
]

DEFAULT_MODEL_SPEC = DEFAULT_MODEL


@dataclasses.dataclass(frozen=True)
class ClientOptions:
    """The model-client options of one command line (`--base-url` ... `--progress`)."""

    base_url: str | Sequence[str] | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    cache: Path | None = None
    no_cache: bool = False
    max_cost_usd: float | None = None
    prices: Path | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    execution: ExecutionSetting = "online"
    batch_dir: Path | None = None
    batch_wait: bool = True
    progress: bool = True

    def settings(self) -> ClientSettings:
        options = dataclasses.asdict(self)
        show_progress = options.pop("progress")
        batch = BatchSettings(wait=options.pop("batch_wait"))
        return user_settings(**options, batch=batch, show_progress=show_progress)


# The command-line declaration of each ClientOptions field, in the order the help lists them.
CLIENT_OPTIONS: dict[str, object] = {
    "base_url": BaseUrlOption,
    "concurrency": ConcurrencyOption,
    "cache": CacheOption,
    "no_cache": NoCacheOption,
    "max_cost_usd": MaxCostOption,
    "prices": PricesOption,
    "timeout_s": TimeoutOption,
    "execution": ExecutionOption,
    "batch_dir": BatchDirOption,
    "batch_wait": WaitOption,
    "progress": ProgressOption,
}


def with_client_options(
    command: Callable[..., None], *, omit: Iterable[str] = ()
) -> Callable[..., None]:
    """`command` for Typer: its `client_options: ClientOptions` parameter becomes the client
    options (all but `omit`, which keep their defaults), declared one by one in its place."""
    signature = inspect.signature(command, eval_str=True)
    skipped = set(omit)
    if skipped - set(CLIENT_OPTIONS):
        raise TypeError(f"omit names no client option: {sorted(skipped - set(CLIENT_OPTIONS))}")
    options = [
        inspect.Parameter(
            field.name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=field.default,
            annotation=CLIENT_OPTIONS[field.name],
        )
        for field in dataclasses.fields(ClientOptions)
        if field.name not in skipped
    ]
    if "client_options" not in signature.parameters:
        raise TypeError(f"{command.__name__} has no `client_options` parameter")
    parameters: list[inspect.Parameter] = []
    for parameter in signature.parameters.values():
        parameters.extend(options if parameter.name == "client_options" else [parameter])
    names = {option.name for option in options}

    @functools.wraps(command)
    def typer_command(**values: Any) -> None:
        chosen = {name: values.pop(name) for name in names}
        options = ClientOptions(**chosen)
        set_progress(options.progress)  # --no-progress silences the spinners too
        command(**values, client_options=options)

    typer_command.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    typer_command.__annotations__ = {p.name: p.annotation for p in parameters}
    return typer_command


@contextmanager
def open_clients(specs: Iterable[str], settings: ClientSettings) -> Iterator[dict[str, LLMClient]]:
    """One client per distinct spec from one model pool (a bad spec fails before anything is
    written); all are closed on the way out."""
    pool = ModelPool(settings)
    with pool.stage():
        yield pool.clients(specs)


def print_written(console: Console, paths: Iterable[Path]) -> None:
    """End a command with what it wrote: one `wrote PATH` line per file or folder."""
    for path in paths:
        console.print(f"wrote {path}", markup=False, highlight=False)


def stage_outputs(run_path: Path, *stages: str) -> list[Path]:
    """The files the manifest records for `stages`, in the order they were written."""
    from persona_testbed.run import RunDir

    run = RunDir.open(run_path)
    paths: list[Path] = []
    for name in stages:
        record = run.stage_record(name)
        if record is not None:
            paths += [run.file(output) for output in record.outputs]
    return list(dict.fromkeys(paths))


def print_stage_outputs(console: Console, run_path: Path, *stages: str) -> None:
    """`print_written` for the outputs of `stages` in the run directory `run_path`, then its
    manifest (which records them)."""
    from persona_testbed.run import RunDir

    manifest = RunDir.open(run_path).manifest_path
    print_written(console, [*stage_outputs(run_path, *stages), manifest])
