"""The backend contract every model implementation follows."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from persona_testbed.errors import PersonaError
from persona_testbed.llm.types import ChatRequest, ChatResult


class LLMCallError(PersonaError):
    """A model call failed for good; the message names the model, the endpoint and the cause."""


class Backend(Protocol):
    """One model behind one endpoint (an HTTP server, a GGUF file, a script)."""

    model_id: str
    endpoint: str
    # Besides the request itself, what decides the answer: part of the cache key.
    identity: str
    # Most requests the backend can serve at once (None: no limit of its own).
    max_concurrency: int | None
    # Whether replies can carry first-token log-probabilities (False: choices are scored by a
    # constrained answer instead; llm.choice).
    supports_logprobs: bool

    async def complete(self, request: ChatRequest) -> ChatResult: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class LoadsModel(Protocol):
    """A backend whose model loads on first use (a local GGUF file): the client loads it
    before the first call it sends, once, under a "loading model" spinner, and never when every
    call is answered from the cache."""

    def is_loaded(self) -> bool: ...

    def load(self) -> None:
        """Load the model now (blocking; the client runs it in a worker thread)."""
        ...
