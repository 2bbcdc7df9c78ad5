"""Settings shared by every LLM client of a run."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

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


ChoiceMethodSetting = Literal["auto", "logprobs", "constrained"]
# online: send what the cache lacks; export: write it to a batch file instead (llm.batchfiles).
ExecutionSetting = Literal["online", "export", "batch", "ray"]
# batch: what becomes of a request a provider batch failed or let expire (llm.providerbatch).
BatchFailedSetting = Literal["retry", "online"]
DEFAULT_BATCH_POLL_S = 30.0
DEFAULT_BATCH_MAX_ATTEMPTS = 3


class EndpointSettings(BaseModel):
    """One OpenAI-compatible server of a fleet that serves `openai:` specs together."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = Field(description="the server's OpenAI-compatible URL, e.g. http://h:8000/v1")
    api_key_env: str | None = Field(
        None, description="environment variable with this server's API key (None: OPENAI_API_KEY)"
    )
    concurrency: int | None = Field(
        None, ge=1, description="most requests in flight at this server (None: llm concurrency)"
    )
    weight: float = Field(1.0, gt=0, description="share of the traffic relative to the others")

    def api_key(self, default: str | None) -> str | None:
        if self.api_key_env is None:
            return default
        key = os.environ.get(self.api_key_env)
        if not key:
            raise PersonaError(
                f"endpoint {self.base_url}: the environment variable {self.api_key_env} "
                "(api_key_env) is not set"
            )
        return key


class RaySettings(BaseModel):
    """Where `execution: ray` runs its jobs and with how many workers (llm.ray_execution)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str | None = Field(
        None,
        description="the Ray cluster to connect to (None: RAY_ADDRESS, else a local Ray is "
        "started in this process)",
    )
    num_cpus: int = Field(2, ge=1, description="CPUs of a local Ray started for the job")
    workers: int = Field(
        2, ge=1, description="Ray actors that call the model; llm concurrency is split among them"
    )
    worker_cpus: float = Field(
        0.5, gt=0, description="CPUs Ray reserves per worker (they mostly wait on the network)"
    )
    batch_size: int = Field(
        32, ge=1, description="requests handed to a worker at once (at least its concurrency)"
    )
    attempts: int = Field(
        2,
        ge=1,
        description="waves a request may fail in (each after the client's own retries) before "
        "it fails for good, as an online call does",
    )


class BatchSettings(BaseModel):
    """How `execution: batch` splits, waits for and retries provider batches
    (llm.providerbatch); `llm: {batch: {...}}` in a run file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    wait: bool = Field(
        True,
        description="wait for submitted batches (false: submit and stop; the next run picks "
        "the results up)",
    )
    poll_s: float = Field(DEFAULT_BATCH_POLL_S, gt=0, description="seconds between status polls")
    failed: BatchFailedSetting = Field(
        "retry",
        description="a failed or expired request goes into a later batch (retry) or is sent "
        "online at once (online)",
    )
    max_attempts: int = Field(
        DEFAULT_BATCH_MAX_ATTEMPTS,
        ge=1,
        description="most batches one request goes into before its failure is an error",
    )
    max_requests: int | None = Field(
        None, ge=1, description="most requests per batch (None: the provider's limit)"
    )
    max_bytes: int | None = Field(
        None, ge=1, description="most bytes per batch input (None: the provider's limit)"
    )


class ClientSettings(BaseModel):
    # A misspelt setting is an error, not silently the default.
    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

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
    anthropic_base_url: str | None = Field(
        default_factory=lambda: os.environ.get("ANTHROPIC_BASE_URL") or None,
        description="Messages API endpoint for anthropic: specs (None: Anthropic's own)",
    )
    anthropic_api_key: str | None = Field(
        default_factory=lambda: os.environ.get("ANTHROPIC_API_KEY") or None
    )
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, description="per-request timeout")
    max_retries: int = Field(6, ge=0)
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    endpoints: tuple[EndpointSettings, ...] = Field(
        (),
        description="several OpenAI-compatible servers for openai: specs (replaces base_url): "
        "least-outstanding routing, per-server caps, a circuit breaker per server",
    )
    breaker_failures: int = Field(
        5, ge=1, description="consecutive failures after which a server of a fleet is skipped"
    )
    breaker_cooldown_s: float = Field(
        30.0, gt=0, description="how long a failing server is skipped before one probe request"
    )
    choice_method: ChoiceMethodSetting = Field(
        "auto",
        description="auto: first-token log-probabilities, falling back to a constrained "
        "one-label answer where the endpoint returns none; logprobs: never fall back; "
        "constrained: always the constrained answer (an endpoint declared without logprobs)",
    )
    max_cost_usd: float | None = Field(None, description="stop before spending more than this")
    execution: ExecutionSetting = Field(
        "online",
        description="online: send requests the cache lacks; export: write them to an OpenAI "
        "Batch input file (vLLM run-batch) and stop, for `persona batch import` to fill the "
        "cache; batch: submit them to the provider's batch API (OpenAI Batch, Anthropic Message "
        "Batches); ray: run them as a Ray Data job (llm.ray_execution)",
    )
    batch_dir: Path | None = Field(
        None,
        description="where exported batch files and the ledger of submitted provider batches "
        "go (None: `batches/` beside the cache; `persona run`: RUN/batches)",
    )
    batch: BatchSettings = Field(default_factory=BatchSettings, description="for execution: batch")
    ray: RaySettings = Field(default_factory=RaySettings, description="for execution: ray")
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

    def resolved_batch_dir(self) -> Path | None:
        """Where batch files go: `batch_dir`, else `batches/` beside the cache (None: no cache)."""
        if self.batch_dir is not None:
            return self.batch_dir
        return None if self.cache_path is None else default_batch_dir(self.cache_path)


def default_batch_dir(cache_path: Path) -> Path:
    return Path(cache_path).parent / "batches"


def user_settings(
    *,
    base_url: str | Sequence[str] | None = None,
    endpoints: Sequence[EndpointSettings] = (),
    breaker_failures: int | None = None,
    breaker_cooldown_s: float | None = None,
    choice_method: ChoiceMethodSetting = "auto",
    concurrency: int = DEFAULT_CONCURRENCY,
    cache: Path | None = None,
    no_cache: bool = False,
    max_cost_usd: float | None = None,
    prices: Path | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    execution: ExecutionSetting = "online",
    batch_dir: Path | None = None,
    batch: BatchSettings | None = None,
    ray: RaySettings | None = None,
    show_progress: bool = True,
) -> ClientSettings:
    """ClientSettings from what a user sets, under the one spelling both the run file's `llm:`
    section and the commands' options use; unset ones keep ClientSettings' defaults. One base
    URL is the endpoint of openai: specs; several (or `endpoints`) make a fleet."""
    settings = ClientSettings(
        concurrency=concurrency,
        timeout_s=timeout_s,
        max_cost_usd=max_cost_usd,
        prices=PriceTable.load(prices),
        show_progress=show_progress,
        choice_method=choice_method,
        execution=execution,
        batch_dir=batch_dir,
        batch=batch or BatchSettings(),
        ray=ray or RaySettings(),
    )
    if breaker_failures is not None:
        settings.breaker_failures = breaker_failures
    if breaker_cooldown_s is not None:
        settings.breaker_cooldown_s = breaker_cooldown_s
    urls = [base_url] if isinstance(base_url, str) else list(base_url or ())
    if len(urls) == 1:
        settings.base_url = urls[0]
    elif urls:
        settings.endpoints = tuple(EndpointSettings(base_url=url) for url in urls)
    if endpoints:
        settings.endpoints = tuple(endpoints)
    if no_cache:
        settings.cache_path = None
    elif cache is not None:
        settings.cache_path = cache
    return settings
