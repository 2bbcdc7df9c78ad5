"""A scripted model with a real token limit, for the truncation tests of every stage."""

from __future__ import annotations

from persona_testbed.llm import ChatRequest, ChatResult
from persona_testbed.testing.scripted import ScriptedBackend


class TruncatingBackend(ScriptedBackend):
    """Like ScriptedBackend, but a reply longer than `max_tokens` words is cut there and
    finishes with "length", as an API model's reply does at its token limit (one word = one
    token here). Choice calls (first-token log-probabilities) are left alone."""

    async def complete(self, request: ChatRequest) -> ChatResult:
        result = await super().complete(request)
        words = result.text.split()
        if request.top_logprobs or len(words) <= request.max_tokens:
            return result
        return result.model_copy(
            update={
                "text": " ".join(words[: request.max_tokens]),
                "completion_tokens": request.max_tokens,
                "finish_reason": "length",
            }
        )
