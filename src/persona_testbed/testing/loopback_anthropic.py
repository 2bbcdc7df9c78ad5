"""Loopback Anthropic Messages API server, for testing the `anthropic:` spec without a network.

A real HTTP server (aiohttp) on 127.0.0.1 answering ``POST /v1/messages`` the way Anthropic's
API does: it checks the headers the SDK sends, answers deterministically (scripted rules, else an
echo of the last user message), cuts replies at ``max_tokens`` words (stop_reason "max_tokens")
and at the first stop sequence, answers a forced tool call with the rule's JSON or an example of
the tool's schema, and counts usage in words. It can fail the next requests with a given status
(429 with Retry-After, 529 "overloaded") to exercise the SDK's retries, and records every request
body so tests can check the mapping from the project's requests.

It runs on its own event loop in a background thread (:class:`AnthropicLoopback`, a context
manager), so a test drives it directly instead of over a control API.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from persona_testbed.testing.loopback import schema_example

__all__ = ["AnthropicLoopback", "AnthropicRule"]

ANTHROPIC_VERSION_HEADER = "anthropic-version"


@dataclass(frozen=True)
class AnthropicRule:
    """Reply `reply` (text, or a tool call's JSON input) when `contains` is in the last user
    message (None: always)."""

    reply: str
    contains: str | None = None


@dataclass
class _State:
    rules: list[AnthropicRule] = field(default_factory=list)
    fail_status: int | None = None
    fail_times: int = 0
    retry_after: float | None = None
    # Refuse temperature/top_p, as the newest models do (they only sample at their defaults).
    refuse_sampling: bool = False
    total: int = 0
    completed: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    body = json.dumps(payload).encode()
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def _error(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return _json({"type": "error", "error": {"type": kind, "message": message}}, status, headers)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
    return ""


def _cut(text: str, max_tokens: int, stops: list[str]) -> tuple[str, str, str | None]:
    """The reply within max_tokens words and before the first stop sequence, with its reason."""
    for stop in stops:
        if stop and stop in text:
            text = text[: text.index(stop)]
            return text, "stop_sequence", stop
    words = text.split()
    if len(words) > max_tokens:
        return " ".join(words[:max_tokens]), "max_tokens", None
    return text, "end_turn", None


class _Handlers:
    def __init__(self, state: _State) -> None:
        self.state = state
        self._ids = itertools.count(1)

    async def messages(self, request: web.Request) -> web.StreamResponse:
        state = self.state
        state.total += 1
        # The key comes as x-api-key, or as a bearer token (recent SDK releases send that).
        bearer = request.headers.get("authorization", "").startswith("Bearer ")
        if not request.headers.get("x-api-key") and not bearer:
            return _error(401, "authentication_error", "x-api-key header is required")
        if not request.headers.get(ANTHROPIC_VERSION_HEADER):
            return _error(400, "invalid_request_error", "anthropic-version header is required")
        if state.fail_times > 0 and state.fail_status is not None:
            state.fail_times -= 1
            headers = None if state.retry_after is None else {"retry-after": str(state.retry_after)}
            kind = "overloaded_error" if state.fail_status == 529 else "rate_limit_error"
            return _error(state.fail_status, kind, "injected loopback failure", headers)
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _error(400, "invalid_request_error", "body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "invalid_request_error", "messages: field required")
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or max_tokens < 1:
            return _error(400, "invalid_request_error", "max_tokens: field required")
        if state.refuse_sampling and ("temperature" in body or "top_p" in body):
            message = "`temperature` and `top_p` are deprecated for this model"
            return _error(400, "invalid_request_error", message)
        temperature = body.get("temperature", 1.0)
        if not isinstance(temperature, int | float) or not 0 <= temperature <= 1:
            return _error(400, "invalid_request_error", "temperature: must be in [0, 1]")
        if any(m.get("role") == "system" for m in body["messages"] if isinstance(m, dict)):
            return _error(400, "invalid_request_error", "system is a top-level field, not a role")
        state.bodies.append(body)
        prompt = ""
        prompt_words = len(_text(body.get("system")).split())
        for message in body["messages"]:
            text = _text(message.get("content")) if isinstance(message, dict) else ""
            prompt_words += len(text.split())
            if isinstance(message, dict) and message.get("role") == "user":
                prompt = text
        rule = next((r for r in state.rules if r.contains is None or r.contains in prompt), None)
        content: list[dict[str, Any]]
        tool = self._forced_tool(body)
        if tool is not None:
            given = tool.get("input_schema")
            schema: dict[str, Any] = given if isinstance(given, dict) else {}
            tool_input = json.loads(rule.reply) if rule else schema_example(schema)
            content = [
                {"type": "tool_use", "id": f"toolu_{next(self._ids)}", "name": tool["name"],
                 "input": tool_input}
            ]  # fmt: skip
            stop_reason, stop_sequence = "tool_use", None
            output_words = len(json.dumps(tool_input).split())
        else:
            stops = [s for s in body.get("stop_sequences") or [] if isinstance(s, str)]
            text, stop_reason, stop_sequence = _cut(
                rule.reply if rule else "echo: " + prompt, max_tokens, stops
            )
            content = [{"type": "text", "text": text}]
            output_words = len(text.split())
        state.completed += 1
        return _json(
            {
                "id": f"msg_loopback_{next(self._ids)}",
                "type": "message",
                "role": "assistant",
                "model": body.get("model"),
                "content": content,
                "stop_reason": stop_reason,
                "stop_sequence": stop_sequence,
                "usage": {"input_tokens": prompt_words, "output_tokens": max(1, output_words)},
            }
        )

    @staticmethod
    def _forced_tool(body: dict[str, Any]) -> dict[str, Any] | None:
        choice = body.get("tool_choice")
        tools = body.get("tools")
        if not isinstance(choice, dict) or choice.get("type") != "tool" or not tools:
            return None
        for tool in tools:
            if isinstance(tool, dict) and tool.get("name") == choice.get("name"):
                return tool
        return None


class AnthropicLoopback:
    """The server on a background thread (a context manager; ``base_url`` once entered)."""

    def __init__(self) -> None:
        self.state = _State()
        self.base_url = ""  # "http://127.0.0.1:PORT", as the SDK's base_url wants it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._run, daemon=True, name="anthropic-loopback")
        self._thread.start()
        if not self._ready.wait(timeout=20):
            raise RuntimeError("the Anthropic loopback server did not start within 20 s")
        if self._error is not None:
            raise RuntimeError(f"the Anthropic loopback server failed: {self._error}")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/messages", _Handlers(self.state).messages)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()

    # -- test controls (plain attribute writes: the server reads them on its next request)

    def set_rules(self, rules: list[AnthropicRule]) -> None:
        self.state.rules = list(rules)

    def fail_next(self, status: int, times: int, retry_after: float | None = None) -> None:
        self.state.fail_status, self.state.fail_times = status, times
        self.state.retry_after = retry_after

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """Every accepted request body, in arrival order."""
        return self.state.bodies
