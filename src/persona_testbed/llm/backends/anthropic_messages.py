"""Anthropic models (`anthropic:MODEL`) through the native Messages API and the `anthropic` SDK.

The SDK is an optional extra (`pip install 'persona-testbed[anthropic]'`), imported only when an
`anthropic:` spec is used. The SDK retries 408/409/429/5xx and dropped connections itself
(honouring Retry-After); what still fails becomes one LLMCallError line.

Mapping from the project's ChatRequest: system messages become `system`; `stop` becomes
`stop_sequences`; temperature is capped at 1.0 (Anthropic's range); top_p is sent only when it
is not 1.0 (recent models refuse both); the seed has no counterpart and is not sent. The SDK
dropped temperature and top_p from its signature in 1.0 (the API still takes them on models
that sample), so they travel in `extra_body`; a model that refuses them (400 naming the
parameter: the newest models only sample at their default) is asked again without them, and
later requests to it leave them out. A
`response_format` with a JSON schema becomes one tool the model is made to call (Anthropic's way
of constraining a reply to a schema), and the tool's input is the reply text. There are no
log-probabilities, so choices are scored by the constrained answer (llm.choice).
"""

from __future__ import annotations

import json
import re
from typing import Any

from persona_testbed.llm.backends.base import LLMCallError
from persona_testbed.llm.types import ChatRequest, ChatResult

DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com"
# Anthropic's stop reasons in the OpenAI vocabulary the stages read (finish_reason).
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "stop",
    "max_tokens": "length",
    "refusal": "content_filter",
}
_TOOL_NAME = re.compile(r"[^a-zA-Z0-9_-]")


def tool_for(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    """The forced tool that stands for an OpenAI json_schema response_format (None: none)."""
    if not response_format or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema") or {}
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        return None
    name = _TOOL_NAME.sub("_", str(spec.get("name") or "reply"))[:64] or "reply"
    return {
        "name": name,
        "description": "Give your reply by calling this tool with it.",
        "input_schema": schema,
    }


def messages_params(model: str, request: ChatRequest, *, sampling: bool = True) -> dict[str, Any]:
    """The keyword arguments of `messages.create` for one request (`sampling=False`: without
    temperature and top_p)."""
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    params: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens,
        "messages": [
            {"role": m.role, "content": m.content} for m in request.messages if m.role != "system"
        ],
    }
    if sampling:
        extra: dict[str, float] = {"temperature": min(request.temperature, 1.0)}
        if request.top_p != 1.0:
            extra["top_p"] = request.top_p
        params["extra_body"] = extra
    if system:
        params["system"] = system
    if request.stop:
        params["stop_sequences"] = list(request.stop)
    tool = tool_for(request.response_format)
    if tool is not None:
        params["tools"] = [tool]
        params["tool_choice"] = {"type": "tool", "name": tool["name"]}
    return params


def result_of(message: Any, model_id: str) -> ChatResult:
    """A Messages API reply as a ChatResult: text blocks joined, or a tool call's input."""
    tool_inputs = [b.input for b in message.content if getattr(b, "type", None) == "tool_use"]
    if tool_inputs:
        text = json.dumps(tool_inputs[0], ensure_ascii=False)
    else:
        text = "".join(b.text for b in message.content if getattr(b, "type", None) == "text")
    stop_reason = message.stop_reason
    return ChatResult(
        text=text,
        prompt_tokens=int(message.usage.input_tokens or 0),
        completion_tokens=int(message.usage.output_tokens or 0),
        finish_reason=FINISH_REASONS.get(stop_reason, stop_reason),
        top_logprobs=None,
        model=model_id,
    )


class AnthropicBackend:
    max_concurrency: int | None = None
    supports_logprobs = False

    def __init__(
        self,
        model_id: str,
        model: str,
        base_url: str,
        *,
        api_key: str | None,
        timeout_s: float = 120.0,
        max_retries: int = 6,
    ) -> None:
        self.model_id = model_id
        self.model = model
        self.endpoint = base_url.rstrip("/")
        self.identity = f"anthropic:{self.endpoint}:{model}"
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._client: Any = None
        self._sends_sampling = True

    def _sdk(self) -> Any:
        # Made lazily inside the running event loop (its HTTP pool belongs to that loop);
        # closed by aclose() at the end of a batch.
        if self._client is None:
            try:
                from anthropic import AsyncAnthropic
            except ImportError:
                raise LLMCallError(
                    f"model {self.model_id}: the anthropic SDK is not installed "
                    "(pip install 'persona-testbed[anthropic]')"
                ) from None
            self._client = AsyncAnthropic(
                api_key=self._api_key,
                base_url=self.endpoint,
                timeout=self._timeout_s,
                max_retries=self._max_retries,
            )
        return self._client

    async def complete(self, request: ChatRequest) -> ChatResult:
        sdk = self._sdk()
        import anthropic

        try:
            try:
                message = await sdk.messages.create(
                    **messages_params(self.model, request, sampling=self._sends_sampling)
                )
            except anthropic.BadRequestError as exc:
                refused = _error_message(exc)
                if not self._sends_sampling or not any(
                    name in refused for name in ("temperature", "top_p")
                ):
                    raise
                self._sends_sampling = False  # this model only samples at its defaults
                message = await sdk.messages.create(
                    **messages_params(self.model, request, sampling=False)
                )
        except anthropic.APIStatusError as exc:
            raise LLMCallError(
                f"model {self.model_id} at {self.endpoint}: HTTP {exc.status_code}: "
                f"{_error_message(exc)}"
            ) from None
        except anthropic.APIConnectionError as exc:  # includes timeouts
            raise LLMCallError(
                f"model {self.model_id} at {self.endpoint} failed after "
                f"{self._max_retries + 1} attempts: {exc}"
            ) from None
        return result_of(message, self.model_id)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(getattr(exc, "message", exc))[:200]
