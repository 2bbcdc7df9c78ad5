"""What a provider batch API offers the executor: submit lines, ask how a batch is doing, read
its results back as cache-ready replies or failure reasons."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

from persona_testbed.errors import PersonaError
from persona_testbed.llm.batchfiles import PendingRequest
from persona_testbed.llm.types import ChatRequest, ChatResult


@dataclass(frozen=True)
class BatchState:
    """A submitted batch as its provider reports it."""

    status: str  # the provider's own word (in_progress, completed, expired, ended, ...)
    ended: bool  # no more answers will come: the results can be read
    total: int
    succeeded: int
    failed: int  # errored, expired or cancelled requests so far

    @property
    def done(self) -> int:
        return self.succeeded + self.failed


# custom_id -> the reply, or why there is none
Outcomes = dict[str, ChatResult | str]


class BatchProvider(Protocol):
    """One provider batch API for one model at one endpoint."""

    kind: str  # "openai" or "anthropic": recorded in the ledger
    name: str  # for people: "OpenAI Batch", "Anthropic Message Batches"
    base_url: str
    model_id: str
    max_requests: int  # the provider's limits per batch
    max_bytes: int

    def custom_id(self, key: str) -> str:
        """The id a request travels under (the cache key where the provider allows it)."""
        ...

    def line(self, custom_id: str, pending: PendingRequest) -> str:
        """One request of a batch input, as one JSON line."""
        ...

    async def submit(self, lines: list[str], *, label: str) -> str:
        """Submit one batch of input lines; its batch id."""
        ...

    async def find(self, label: str, *, since: float) -> str | None:
        """The id of the batch submitted under `label` (at `since` or later, epoch seconds), or
        None when the provider has none (or cannot tell: then its requests go out again)."""
        ...

    async def retrieve(self, batch_id: str) -> BatchState: ...

    async def results(self, batch_id: str, requests: Mapping[str, ChatRequest]) -> Outcomes:
        """The outcome of each request of an ended batch (`requests`: custom_id -> request,
        which the reply is checked against). A request with no line is not in the result."""
        ...

    async def aclose(self) -> None: ...


def import_sdk(name: str, extra: str) -> ModuleType:
    """The SDK module `name`, or a one-line PersonaError naming the extra that installs it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise PersonaError(
            f"execution batch needs the {name} SDK: pip install 'persona-testbed[{extra}]'"
        ) from None


class SdkConnection:
    """A provider SDK's async client for one endpoint, made on first use in the running event
    loop (its HTTP pool belongs to that loop) and closed by `aclose`."""

    def __init__(
        self, client_class: Any, base_url: str, api_key: str | None, timeout_s: float, retries: int
    ) -> None:
        self._client_class = client_class
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key or "unused"  # a local compatible server needs none
        self._timeout_s = timeout_s
        self._max_retries = retries
        self._client: Any = None

    def sdk(self) -> Any:
        if self._client is None:
            self._client = self._client_class(
                api_key=self._api_key,
                base_url=self.base_url,
                timeout=self._timeout_s,
                max_retries=self._max_retries,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
