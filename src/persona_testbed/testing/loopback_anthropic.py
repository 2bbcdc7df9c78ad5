"""Loopback Anthropic Messages API server, for testing the `anthropic:` spec without a network.

A real HTTP server (aiohttp) on 127.0.0.1 answering ``POST /v1/messages`` (and Message Batches:
``/v1/messages/batches`` create, retrieve, results as JSONL, each request answered as
``/v1/messages`` would, with injectable errored and expired requests) the way Anthropic's
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
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from persona_testbed.testing.loopback import schema_example

__all__ = ["AnthropicLoopback", "AnthropicRule"]

ANTHROPIC_VERSION_HEADER = "anthropic-version"
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


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
    # Message Batches: a batch ends `batch_delay` s after it was created; the next
    # `batch_fail_times` requests whose last user message contains `batch_fail_contains` come
    # back errored; the next `expire_batches` batches answer only their first `expire_answered`
    # requests and let the rest expire. `submitted` counts each custom_id's submissions.
    batch_delay: float = 0.0
    batch_fail_contains: str | None = None
    batch_fail_times: int = 0
    expire_batches: int = 0
    expire_answered: int = 0
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    submitted: dict[str, int] = field(default_factory=dict)


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    body = json.dumps(payload).encode()
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def _error_object(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _error(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return _json(_error_object(kind, message), status, headers)


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


def _check_headers(request: web.Request) -> web.Response | None:
    """The error for a request without the headers the SDK sends (None: they are there)."""
    # The key comes as x-api-key, or as a bearer token (recent SDK releases send that).
    bearer = request.headers.get("authorization", "").startswith("Bearer ")
    if not request.headers.get("x-api-key") and not bearer:
        return _error(401, "authentication_error", "x-api-key header is required")
    if not request.headers.get(ANTHROPIC_VERSION_HEADER):
        return _error(400, "invalid_request_error", "anthropic-version header is required")
    return None


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


class _Handlers:
    def __init__(self, state: _State) -> None:
        self.state = state
        self._ids = itertools.count(1)

    async def messages(self, request: web.Request) -> web.StreamResponse:
        state = self.state
        state.total += 1
        refused = _check_headers(request)
        if refused is not None:
            return refused
        if state.fail_times > 0 and state.fail_status is not None:
            state.fail_times -= 1
            headers = None if state.retry_after is None else {"retry-after": str(state.retry_after)}
            kind = "overloaded_error" if state.fail_status == 529 else "rate_limit_error"
            return _error(state.fail_status, kind, "injected loopback failure", headers)
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _error(400, "invalid_request_error", "body is not JSON")
        status, payload = self._answer(body)
        return _json(payload, status)

    def _answer(self, body: Any) -> tuple[int, dict[str, Any]]:
        """The Messages API's answer to `body`: (HTTP status, message or error object)."""
        state = self.state
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return 400, _error_object("invalid_request_error", "messages: field required")
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or max_tokens < 1:
            return 400, _error_object("invalid_request_error", "max_tokens: field required")
        if state.refuse_sampling and ("temperature" in body or "top_p" in body):
            message = "`temperature` and `top_p` are deprecated for this model"
            return 400, _error_object("invalid_request_error", message)
        temperature = body.get("temperature", 1.0)
        if not isinstance(temperature, int | float) or not 0 <= temperature <= 1:
            return 400, _error_object("invalid_request_error", "temperature: must be in [0, 1]")
        if any(m.get("role") == "system" for m in body["messages"] if isinstance(m, dict)):
            return 400, _error_object(
                "invalid_request_error", "system is a top-level field, not a role"
            )
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
        return 200, (
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

    # -- Message Batches

    async def create_batch(self, request: web.Request) -> web.Response:
        refused = _check_headers(request)
        if refused is not None:
            return refused
        state = self.state
        body = json.loads(await request.read())
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return _error(400, "invalid_request_error", "requests: field required")
        for item in requests:
            custom_id = item.get("custom_id") if isinstance(item, dict) else None
            if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
                return _error(400, "invalid_request_error", f"custom_id: invalid {custom_id!r}")
        for item in requests:
            state.submitted[item["custom_id"]] = state.submitted.get(item["custom_id"], 0) + 1
        batch_id = f"msgbatch_loopback_{next(self._ids)}"
        expire = state.expire_batches > 0
        state.expire_batches -= 1 if expire else 0
        state.batches[batch_id] = {
            "requests": requests,
            "created": time.time(),
            "due": time.monotonic() + state.batch_delay,
            "expire": expire,
            "results": None,
            "base": f"{request.scheme}://{request.host}",
        }
        return _json(self._batch_object(batch_id))

    def _batch_object(self, batch_id: str) -> dict[str, Any]:
        batch = self.state.batches[batch_id]
        if batch["results"] is None and time.monotonic() >= batch["due"]:
            batch["results"] = self._run_batch(batch)
            batch["ended"] = time.time()
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if batch["results"] is None:
            counts["processing"] = len(batch["requests"])
        else:
            for line in batch["results"]:
                counts[line["result"]["type"]] += 1
        ended = batch["results"] is not None
        return {
            "id": batch_id,
            "type": "message_batch",
            "processing_status": "ended" if ended else "in_progress",
            "request_counts": counts,
            "created_at": _iso(batch["created"]),
            "expires_at": _iso(batch["created"] + 86400),
            "ended_at": _iso(batch.get("ended")),
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": f"{batch['base']}/v1/messages/batches/{batch_id}/results"
            if ended
            else None,
        }

    def _run_batch(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        """Each request answered as /v1/messages would (or errored, or expired)."""
        state = self.state
        lines = []
        for number, item in enumerate(batch["requests"]):
            params = item.get("params")
            messages = params.get("messages") if isinstance(params, dict) else None
            prompt = _text(messages[-1].get("content")) if messages else ""
            result: dict[str, Any]
            if batch["expire"] and number >= state.expire_answered:
                result = {"type": "expired"}
            elif state.batch_fail_times > 0 and (
                state.batch_fail_contains is None or state.batch_fail_contains in prompt
            ):
                state.batch_fail_times -= 1
                error = _error_object("api_error", "injected loopback batch failure")
                result = {"type": "errored", "error": error}
            else:
                status, payload = self._answer(params)
                if status == 200:
                    result = {"type": "succeeded", "message": payload}
                else:
                    result = {"type": "errored", "error": payload}
            lines.append({"custom_id": item["custom_id"], "result": result})
        return lines

    async def get_batch(self, request: web.Request) -> web.Response:
        refused = _check_headers(request)
        if refused is not None:
            return refused
        batch_id = request.match_info["batch_id"]
        if batch_id not in self.state.batches:
            return _error(404, "not_found_error", "no such batch")
        return _json(self._batch_object(batch_id))

    async def batch_results(self, request: web.Request) -> web.Response:
        refused = _check_headers(request)
        if refused is not None:
            return refused
        batch = self.state.batches.get(request.match_info["batch_id"])
        if batch is None or batch["results"] is None:
            return _error(404, "not_found_error", "no results for this batch")
        text = "".join(json.dumps(line) + "\n" for line in batch["results"])
        return web.Response(body=text.encode(), content_type="application/x-jsonl")

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
        app = web.Application(client_max_size=1024**3)
        handlers = _Handlers(self.state)
        app.router.add_post("/v1/messages", handlers.messages)
        app.router.add_post("/v1/messages/batches", handlers.create_batch)
        app.router.add_get("/v1/messages/batches/{batch_id}", handlers.get_batch)
        app.router.add_get("/v1/messages/batches/{batch_id}/results", handlers.batch_results)
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

    def set_batch(
        self,
        *,
        delay: float = 0.0,
        fail_contains: str | None = None,
        fail_times: int = 0,
        expire: int = 0,
        expire_answered: int = 0,
    ) -> None:
        """How Message Batches behave (see `_State`)."""
        state = self.state
        state.batch_delay = delay
        state.batch_fail_contains, state.batch_fail_times = fail_contains, fail_times
        state.expire_batches, state.expire_answered = expire, expire_answered

    @property
    def submitted(self) -> dict[str, int]:
        """custom_id -> how many batches it was submitted in."""
        return self.state.submitted

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """Every accepted request body, in arrival order."""
        return self.state.bodies
