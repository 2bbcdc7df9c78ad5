"""Options shared by every command that calls a model, and how they become ClientSettings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from persona_testbed.llm import DEFAULT_MODEL, ClientSettings, PriceTable

ModelOption = Annotated[
    str,
    typer.Option(
        "--model", help="local:smollm2-135m (default), gguf:/path/file.gguf or openai:MODEL"
    ),
]
BaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--base-url", envvar="OPENAI_BASE_URL", help="OpenAI-compatible endpoint for openai: specs"
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
    float | None, typer.Option("--max-cost", help="stop before spending more than this (USD)")
]
PricesOption = Annotated[
    Path | None,
    typer.Option("--prices", help="YAML/JSON price table: model -> input/output USD per 1M tokens"),
]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="per-request timeout (s)")]
ProgressOption = Annotated[bool, typer.Option("--progress/--no-progress", help="progress bar")]

DEFAULT_MODEL_SPEC = DEFAULT_MODEL


def make_settings(
    *,
    base_url: str | None = None,
    concurrency: int = 8,
    cache: Path | None = None,
    no_cache: bool = False,
    max_cost: float | None = None,
    prices: Path | None = None,
    timeout: float = 120.0,
    progress: bool = True,
) -> ClientSettings:
    settings = ClientSettings(
        concurrency=concurrency,
        timeout_s=timeout,
        max_cost_usd=max_cost,
        prices=PriceTable.load(prices),
        show_progress=progress,
    )
    if base_url:
        settings.base_url = base_url
    if no_cache:
        settings.cache_path = None
    elif cache is not None:
        settings.cache_path = cache
    return settings
