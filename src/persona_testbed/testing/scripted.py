"""A scripted fake model for tests: answers come from a Python function, calls are counted;
`scripted_client` wraps one in an LLMClient with its own cache and no progress bar."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from pathlib import Path

from persona_testbed.llm.client import LLMClient
from persona_testbed.llm.settings import ClientSettings
from persona_testbed.llm.types import ChatRequest, ChatResult, TokenLogprob

# A script answers a request with text, or with (text, first-token probabilities).
ScriptReply = str | tuple[str, dict[str, float]]
Script = Callable[[ChatRequest], ScriptReply]


class ScriptedBackend:
    """Deterministic stand-in for a model. `calls` lists every request it was sent."""

    def __init__(
        self,
        script: Script,
        *,
        model_id: str = "scripted:fake",
        max_concurrency: int | None = None,
        latency_s: float = 0.0,
        logprobs: bool = True,
    ) -> None:
        self.model_id = model_id
        self.endpoint = "scripted"
        self.identity = f"scripted:{model_id}"
        self.max_concurrency = max_concurrency
        # logprobs=False stands in for an endpoint that returns none (replies carry no
        # top_logprobs), while still claiming support, so the client must detect it.
        self.supports_logprobs = True
        self._logprobs = logprobs
        self.calls: list[ChatRequest] = []
        self._script = script
        self._latency_s = latency_s

    async def complete(self, request: ChatRequest) -> ChatResult:
        self.calls.append(request)
        if self._latency_s:
            await asyncio.sleep(self._latency_s)
        reply = self._script(request)
        text, probs = reply if isinstance(reply, tuple) else (reply, {})
        top = None
        if request.top_logprobs and self._logprobs:
            ranked = sorted(probs.items(), key=lambda item: item[1], reverse=True)
            top = [TokenLogprob(token=t, logprob=math.log(p)) for t, p in ranked if p > 0]
            text = top[0].token if top and request.max_tokens <= 1 else text
        words = sum(len(m.content.split()) for m in request.messages)
        return ChatResult(
            text=text,
            prompt_tokens=words,
            completion_tokens=max(1, len(text.split())),
            finish_reason="stop",
            top_logprobs=top,
            model=self.model_id,
        )

    async def aclose(self) -> None:
        return None


def scripted_client(
    script: Script, cache: Path, *, model_id: str = "scripted:fake", concurrency: int = 8
) -> LLMClient:
    """An LLMClient over a ScriptedBackend (`client.backend`), caching in `cache`."""
    settings = ClientSettings(cache_path=cache, show_progress=False, concurrency=concurrency)
    return LLMClient(ScriptedBackend(script, model_id=model_id), settings)
