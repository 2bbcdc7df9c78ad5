"""The OpenAI chat-completions request body of a ChatRequest: one definition for every backend
that speaks that shape (HTTP servers, and xllamacpp's in-process server)."""

from __future__ import annotations

from typing import Any

from persona_testbed.llm.types import ChatRequest


def openai_chat_body(
    request: ChatRequest,
    *,
    model: str | None = None,
    json_schema: bool = True,
    logprobs: bool = True,
    max_top_logprobs: int | None = None,
) -> dict[str, Any]:
    """The body for `request`. `json_schema=False`: the server only knows JSON mode, so a
    schema is sent as `{"type": "json_object"}`; `logprobs=False`: the server rejects them;
    `max_top_logprobs`: the most alternatives the server returns."""
    body: dict[str, Any] = {"model": model} if model is not None else {}
    body |= {
        # What model_dump() gives for a Message, without its per-call serializer cost.
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
    }
    seed = request.effective_seed()
    if seed is not None:
        body["seed"] = seed
    if request.stop:
        body["stop"] = list(request.stop)
    if request.response_format is not None:
        body["response_format"] = (
            request.response_format if json_schema else {"type": "json_object"}
        )
    if request.top_logprobs and logprobs:
        body["logprobs"] = True
        top = request.top_logprobs
        body["top_logprobs"] = top if max_top_logprobs is None else min(top, max_top_logprobs)
    return body
