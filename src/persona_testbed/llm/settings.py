"""Settings shared by every LLM client of a run."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from persona_testbed.errors import PersonaError
from persona_testbed.llm.backends.local import LocalRuntime, runtime_from_env
from persona_testbed.llm.cache import default_cache_path
from persona_testbed.llm.pricing import PriceTable

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
# The defaults of the settings a user sets (`llm:` in a run file, the commands' client options):
# declared here once, used by both.
DEFAULT_CONCURRENCY = 8
DEFAULT_TIMEOUT_S = 120.0


def _threads_from_env() -> int | None:
    value = os.environ.get("PERSONA_THREADS", "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise PersonaError(f"PERSONA_THREADS must be a whole number >= 1, not {value!r}")
    return int(value)


class ClientSettings(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    concurrency: int = Field(
        DEFAULT_CONCURRENCY, ge=1, description="most requests in flight at once"
    )
    cache_path: Path | None = Field(
        default_factory=default_cache_path, description="None disables the response cache"
    )
    base_url: str | None = Field(
        default_factory=lambda: os.environ.get("OPENAI_BASE_URL") or None,
        description="OpenAI-compatible endpoint for openai: specs",
    )
    api_key: str | None = Field(default_factory=lambda: os.environ.get("OPENAI_API_KEY") or None)
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, description="per-request timeout")
    max_retries: int = Field(6, ge=0)
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    max_cost_usd: float | None = Field(None, description="stop before spending more than this")
    prices: PriceTable = Field(default_factory=PriceTable)
    show_progress: bool = True
    refresh_failed: bool = Field(
        False,
        description="re-ask generation failures whose bad replies are cached "
        "(persona run --retry-failed); good cached replies are still reused",
    )
    n_ctx: int = Field(4096, description="context window for local GGUF models")
    n_threads: int | None = Field(
        default_factory=_threads_from_env,
        ge=1,
        description="CPU threads of a local GGUF call; None: every core this process may use",
    )
    local_runtime: LocalRuntime | None = Field(
        default_factory=runtime_from_env,
        description="what runs local:/gguf: models (PERSONA_LOCAL_RUNTIME); None: xllamacpp "
        "when installed, else llama-cpp-python",
    )

    def resolved_base_url(self) -> str:
        return (self.base_url or DEFAULT_OPENAI_BASE_URL).rstrip("/")


def user_settings(
    *,
    base_url: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    cache: Path | None = None,
    no_cache: bool = False,
    max_cost_usd: float | None = None,
    prices: Path | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    show_progress: bool = True,
) -> ClientSettings:
    """ClientSettings from what a user sets, under the one spelling both the run file's `llm:`
    section and the commands' options use; unset ones keep ClientSettings' defaults."""
    settings = ClientSettings(
        concurrency=concurrency,
        timeout_s=timeout_s,
        max_cost_usd=max_cost_usd,
        prices=PriceTable.load(prices),
        show_progress=show_progress,
    )
    if base_url:
        settings.base_url = base_url
    if no_cache:
        settings.cache_path = None
    elif cache is not None:
        settings.cache_path = cache
    return settings
