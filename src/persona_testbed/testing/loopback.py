"""Loopback OpenAI-compatible chat server with fault injection, for client tests and benchmarks.

The server is a real HTTP server (aiohttp) on 127.0.0.1. It answers ``/v1/chat/completions``
deterministically (scripted rules, else an echo of the last user message), sleeps a fixed base
latency per completion, and can be told over a small JSON control API to inject faults (429/5xx
with ``Retry-After``, slow replies, dropped connections, malformed bodies) and to report how many
requests it received. It also serves the OpenAI Batch API (``/v1/files`` uploads and contents,
``/v1/batches`` create, list, retrieve and cancel): a batch ends after a configurable delay, each
line answered as the chat endpoint would, with injectable failed lines (the error file) and expiry,
and the server counts how often each custom_id was submitted. All state lives in the server
process, so a test's view of it stays authoritative even when the client under test runs in
another process that gets killed.

Run it as ``python -m persona_testbed.testing.loopback --port 0 --latency 0.1``; it prints one line
``LISTENING http://127.0.0.1:PORT/v1``. :class:`LoopbackServer` does that from a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import httpx
from aiohttp import web
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from persona_testbed.llm.client import run_event_loop

__all__ = [
    "DEFAULT_LOGPROBS",
    "MODEL_ID",
    "BatchBehaviour",
    "BatchFailure",
    "FaultRule",
    "LoopbackServer",
    "ReplyRule",
    "create_app",
    "main",
    "schema_example",
    "serve",
]

MODEL_ID = "loopback"
# The distribution behind the first token when no rule gives one: a 60/40 split over "A"/"B".
DEFAULT_LOGPROBS: dict[str, float] = {"A": math.log(0.6), "B": math.log(0.4)}
_LISTENING = "LISTENING "
_JSON = "application/json"
# A body that starts like a completion and stops mid-string, so any JSON parser rejects it.
_MALFORMED_BODY = (
    b'{"id": "chatcmpl-malformed", "object": "chat.completion", "choices": '
    b'[{"index": 0, "message": {"role": "assistant", "content": "trunc'
)
_ACTION_FAULTS = frozenset({"slow", "drop", "malformed", "no_logprobs"})
# Well-formed JSON with an implausible reply, as a broken or buggy server sends it.
_BAD_REPLY_FAULTS = frozenset({"nan_logprob", "positive_logprob", "negative_usage", "oversized"})


# --------------------------------------------------------------------------- control models


class ReplyRule(BaseModel):
    """Reply ``reply`` when ``contains`` is a substring of the last user message (None: always)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    contains: str | None = None
    reply: str
    logprobs: dict[str, float] | None = None


class FaultRule(BaseModel):
    """A fault for the next ``times`` requests whose last user message contains ``contains``.

    ``kind`` is an HTTP error status as a string ("429", "500", "503", any 400-599 works) or one
    of "slow" (sleep ``delay`` s, then answer normally), "drop" (close the connection without a
    response), "malformed" (status 200 with a body that is not JSON) or "no_logprobs" (a good
    reply without the log-probabilities asked for, as many hosted endpoints answer). Bad but
    well-formed replies: "nan_logprob" (a bare ``NaN`` logprob), "positive_logprob" (a logprob
    of 0.7), "negative_usage" (negative token counts) and "oversized" (a reply ~4x beyond
    max_tokens).
    """

    model_config = ConfigDict(extra="forbid")

    contains: str | None = None
    kind: str
    times: int = Field(default=1, ge=0)
    # int | float keeps an integral value integral, so the header is written as given ("2").
    retry_after: int | float | None = None
    delay: float | None = None

    @field_validator("kind", mode="before")
    @classmethod
    def _kind_as_text(cls, value: Any) -> Any:
        # Accept 429 as well as "429": both spellings turn up in hand-written test fixtures.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value in _ACTION_FAULTS | _BAD_REPLY_FAULTS:
            return value
        if value.isdigit() and 400 <= int(value) <= 599:
            return value
        kinds = ", ".join(f"'{k}'" for k in sorted(_ACTION_FAULTS | _BAD_REPLY_FAULTS))
        raise ValueError(f"kind must be an HTTP status 400-599 or one of {kinds}")

    @field_validator("retry_after", "delay")
    @classmethod
    def _non_negative(cls, value: float | None) -> float | None:
        if value is not None and (value < 0 or not math.isfinite(value)):
            raise ValueError("must be a finite number >= 0")
        return value

    @model_validator(mode="after")
    def _slow_needs_delay(self) -> Self:
        if self.kind == "slow" and self.delay is None:
            raise ValueError("a 'slow' fault needs a delay")
        return self


class BatchFailure(BaseModel):
    """The next ``times`` batch lines whose last user message contains ``contains`` (None: any)
    land in the batch's error file (HTTP ``status``) instead of being answered."""

    model_config = ConfigDict(extra="forbid")

    contains: str | None = None
    times: int = Field(default=1, ge=0)
    status: int = Field(default=500, ge=400, le=599)


class BatchBehaviour(BaseModel):
    """How the OpenAI Batch endpoints behave: a batch ends ``delay`` seconds after it was
    created; lines matching ``fail`` fail; the next ``expire`` batches end ``expired`` with only
    their first ``expire_answered`` lines answered (the rest land in the error file).
    ``create_delay`` holds each batch-create reply that long after the batch was accepted, and
    ``content_delay`` each file download (a batch's results): windows a kill test aims at."""

    model_config = ConfigDict(extra="forbid")

    delay: float = Field(default=0.0, ge=0)
    fail: list[BatchFailure] = Field(default_factory=list)
    expire: int = Field(default=0, ge=0)
    expire_answered: int = Field(default=0, ge=0)
    create_delay: float = Field(default=0.0, ge=0)
    content_delay: float = Field(default=0.0, ge=0)


_RULES = TypeAdapter(list[ReplyRule])
_FAULTS = TypeAdapter(list[FaultRule])


@dataclass
class _ArmedFault:
    rule: FaultRule
    remaining: int


@dataclass
class _State:
    latency: float
    rules: list[ReplyRule] = field(default_factory=list)
    faults: list[_ArmedFault] = field(default_factory=list)
    total: int = 0
    completed: int = 0
    faulted: int = 0
    # Requests inside their base-latency wait now, and the most there ever were at once: shows
    # whether a client really sends concurrently, without timing anything.
    waiting: int = 0
    peak_concurrent: int = 0
    by_prompt: Counter[str] = field(default_factory=Counter)
    # The OpenAI Batch endpoints: uploaded files, batches, and how often each custom_id was
    # submitted in a batch (what a "never submit twice" test reads).
    batch: BatchBehaviour = field(default_factory=BatchBehaviour)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    submitted: Counter[str] = field(default_factory=Counter)

    def reset(self) -> None:
        self.rules = []
        self.faults = []
        self.total = self.completed = self.faulted = 0
        self.waiting = self.peak_concurrent = 0
        self.by_prompt = Counter()
        self.batch = BatchBehaviour()
        self.files, self.batches = {}, {}
        self.submitted = Counter()

    def take_batch_failure(self, prompt: str) -> BatchFailure | None:
        for i, rule in enumerate(self.batch.fail):
            if rule.times > 0 and (rule.contains is None or rule.contains in prompt):
                rule.times -= 1
                if rule.times <= 0:
                    del self.batch.fail[i]
                return rule
        return None

    def take_fault(self, prompt: str) -> FaultRule | None:
        """Consume one use of the first armed fault matching ``prompt``."""
        for i, armed in enumerate(self.faults):
            if armed.rule.contains is None or armed.rule.contains in prompt:
                armed.remaining -= 1
                if armed.remaining <= 0:
                    del self.faults[i]
                return armed.rule
        return None

    def find_rule(self, prompt: str) -> ReplyRule | None:
        for rule in self.rules:
            if rule.contains is None or rule.contains in prompt:
                return rule
        return None


# --------------------------------------------------------------------------- reply building


def _text_of(content: Any) -> str:
    """Message content as text: a string, or the text parts of a multi-part content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _prompt_of(messages: list[Any]) -> tuple[str, int]:
    """The last user message and the prompt's length in words (= tokens here)."""
    prompt = ""
    prompt_tokens = 0
    for message in messages:
        if isinstance(message, dict):
            text = _text_of(message.get("content"))
            prompt_tokens += _words(text)
            if message.get("role") == "user":
                prompt = text
    return prompt, prompt_tokens


def _words(text: str) -> int:
    return len(text.split())


def _within_max_tokens(text: str, max_tokens: Any) -> tuple[str, str]:
    """Cut the reply at `max_tokens` words (one word = one token here), as a real server stops
    at the limit, and say so in finish_reason."""
    if not isinstance(max_tokens, int) or max_tokens <= 0 or _words(text) <= max_tokens:
        return text, "stop"
    return " ".join(text.split()[:max_tokens]), "length"


def schema_example(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Any:
    """A value that validates the (simple) JSON schema ``schema``; best effort.

    Required string properties become "x", integers 0, numbers 0.0, booleans true, enums their
    first value, arrays [] (or ``minItems`` copies of an item); objects recurse over their
    required properties. ``$ref`` into the root document, ``anyOf``/``oneOf`` (first non-null
    branch), ``allOf`` and numeric/length bounds are honoured well enough for pydantic schemas.
    """
    return _example(schema, schema if root is None else root, 0)


def _example(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> Any:
    if depth > 32:  # a recursive schema: stop rather than loop forever
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#"):
        target: Any = root
        for part in ref.lstrip("#").strip("/").split("/"):
            if part:
                target = target.get(part.replace("~1", "/").replace("~0", "~"), {})
        return _example(target if isinstance(target, Mapping) else {}, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            non_null = [o for o in options if isinstance(o, Mapping) and o.get("type") != "null"]
            return _example(non_null[0] if non_null else options[0], root, depth + 1)
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and all_of:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in all_of:
            if isinstance(part, Mapping):
                merged = {**merged, **part}
        return _example(merged, root, depth + 1)

    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "string":
        return "x" * max(1, int(schema.get("minLength", 0))) if schema.get("maxLength") != 0 else ""
    if kind in ("integer", "number"):
        value: float = 0
        if "minimum" in schema:
            value = max(value, schema["minimum"])
        if "exclusiveMinimum" in schema:
            value = max(value, schema["exclusiveMinimum"] + 1)
        if "maximum" in schema:
            value = min(value, schema["maximum"])
        return math.ceil(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if kind == "array":
        count = int(schema.get("minItems", 0))
        items = schema.get("items")
        item = _example(items if isinstance(items, Mapping) else {}, root, depth + 1)
        return [item] * count
    if kind == "object":
        props = schema.get("properties")
        props = props if isinstance(props, Mapping) else {}
        required = schema.get("required")
        out: dict[str, Any] = {}
        for name in required if isinstance(required, list) else []:
            sub = props.get(name)
            out[name] = _example(sub, root, depth + 1) if isinstance(sub, Mapping) else "x"
        return out
    return None


def _logprobs_block(dist: Mapping[str, float], top: int) -> dict[str, Any]:
    ranked = sorted(dist.items(), key=lambda kv: kv[1], reverse=True)
    token, logprob = ranked[0] if ranked else ("", 0.0)
    return {
        "content": [
            {
                "token": token,
                "logprob": logprob,
                "bytes": None,
                "top_logprobs": [
                    {"token": t, "logprob": lp, "bytes": None} for t, lp in ranked[: max(0, top)]
                ],
            }
        ]
    }


def _corrupt(payload: dict[str, Any], kind: str, max_tokens: Any) -> None:
    """Turn a good completion into the bad-but-well-formed reply of fault `kind`."""
    choice = payload["choices"][0]
    if kind in ("nan_logprob", "positive_logprob"):
        bad = math.nan if kind == "nan_logprob" else 0.7
        block = choice.get("logprobs") or _logprobs_block(DEFAULT_LOGPROBS, 2)
        first = block["content"][0]
        first["logprob"] = bad
        if first["top_logprobs"]:
            first["top_logprobs"][0]["logprob"] = bad
        choice["logprobs"] = block
    elif kind == "negative_usage":
        payload["usage"] = {
            "prompt_tokens": -1000,
            "completion_tokens": -5000,
            "total_tokens": -6000,
        }
    elif kind == "oversized":
        limit = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else 256
        words = 4 * limit + 100
        choice["message"]["content"] = " ".join(["word"] * words)
        choice["finish_reason"] = "stop"
        usage = payload["usage"]
        usage["completion_tokens"] = words
        usage["total_tokens"] = usage["prompt_tokens"] + words


def _error_body(message: str, kind: str, code: str | None = None) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": kind, "param": None, "code": code}}
    ).encode()


def _json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(payload).encode(), status=status, content_type=_JSON)


def _error_response(status: int, message: str, kind: str, code: str | None = None) -> web.Response:
    return web.Response(body=_error_body(message, kind, code), status=status, content_type=_JSON)


def _status_fault(rule: FaultRule) -> web.Response:
    status = int(rule.kind)
    if status == 429:
        kind, code, message = "rate_limit_error", "rate_limit_exceeded", "Rate limit reached"
    elif status >= 500:
        kind, code, message = "server_error", None, f"Injected server error {status}"
    else:
        kind, code, message = "invalid_request_error", None, f"Injected client error {status}"
    headers = {} if rule.retry_after is None else {"Retry-After": str(rule.retry_after)}
    return web.Response(
        body=_error_body(f"{message} (loopback fault)", kind, code),
        status=status,
        content_type=_JSON,
        headers=headers,
    )


# --------------------------------------------------------------------------- the server


class _Handlers:
    """Request handlers over one :class:`_State` (one per application)."""

    def __init__(self, latency: float) -> None:
        self.state = _State(latency=latency)
        self._ids = itertools.count(1)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError as exc:
            return _error_response(400, f"Invalid JSON body: {exc}", "invalid_request_error")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error_response(
                400, "Body must be an object with a 'messages' list", "invalid_request_error"
            )
        prompt, prompt_tokens = _prompt_of(body["messages"])

        state = self.state
        state.total += 1
        state.by_prompt[prompt] += 1
        fault = state.take_fault(prompt)
        if fault is not None:
            state.faulted += 1
            if fault.kind == "drop":
                # Close the socket with nothing sent. aiohttp's attempt to write the returned
                # response then fails with ConnectionError, which it ignores quietly (a handler
                # that raised would be logged as a server error instead).
                transport = request.transport
                if transport is not None:
                    transport.abort()
                return web.Response(status=499)
            if fault.kind.isdigit():  # an HTTP status: fail fast, no base latency
                return _status_fault(fault)
            if fault.kind == "slow" and fault.delay:
                await asyncio.sleep(fault.delay)

        if state.latency > 0:
            state.waiting += 1
            state.peak_concurrent = max(state.peak_concurrent, state.waiting)
            try:
                await asyncio.sleep(state.latency)
            finally:
                state.waiting -= 1
        if fault is not None and fault.kind == "malformed":
            return web.Response(body=_MALFORMED_BODY, status=200, content_type=_JSON)

        payload = self._payload(body, prompt, prompt_tokens, fault)
        response = _json_response(payload)
        # Send it here rather than returning it, so `completed` only counts replies that made it
        # onto the socket. If the client went away (timeout, SIGKILL) the write raises
        # ConnectionError; returning the response lets aiohttp retry the write, fail the same way
        # and treat it as a quiet client disconnect (raising would be logged as a server error).
        try:
            await response.prepare(request)
            await response.write_eof()
        except ConnectionError:
            return response
        state.completed += 1
        return response

    def _payload(
        self, body: dict[str, Any], prompt: str, prompt_tokens: int, fault: FaultRule | None
    ) -> dict[str, Any]:
        """The chat.completion for `body` (also each answered line of a batch)."""
        state = self.state
        rule = state.find_rule(prompt)
        if rule is not None:
            text = rule.reply
        else:
            text = self._default_reply(body.get("response_format"), prompt)
        text, finish_reason = _within_max_tokens(text, body.get("max_tokens"))
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": finish_reason,
            "logprobs": None,
        }
        if body.get("logprobs") and (fault is None or fault.kind != "no_logprobs"):
            dist = rule.logprobs if rule is not None and rule.logprobs else DEFAULT_LOGPROBS
            top = body.get("top_logprobs")
            choice["logprobs"] = _logprobs_block(dist, top if isinstance(top, int) else 0)
        n = body.get("n")
        choices = [choice]
        if isinstance(n, int) and n > 1:
            choices += [{**choice, "index": i} for i in range(1, n)]
        completion_tokens = max(1, _words(text)) * len(choices)
        model = body.get("model")
        payload = {
            "id": f"chatcmpl-loopback-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model if isinstance(model, str) else MODEL_ID,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        if fault is not None and fault.kind in _BAD_REPLY_FAULTS:
            _corrupt(payload, fault.kind, body.get("max_tokens"))
        return payload

    @staticmethod
    def _default_reply(response_format: Any, prompt: str) -> str:
        if isinstance(response_format, dict):
            if response_format.get("type") == "json_schema":
                spec = response_format.get("json_schema")
                schema = spec.get("schema") if isinstance(spec, dict) else None
                return json.dumps(schema_example(schema if isinstance(schema, dict) else {}))
            if response_format.get("type") == "json_object":
                return json.dumps({"echo": prompt})
        return "echo: " + prompt

    # -- the OpenAI Batch API: files and batches

    async def upload_file(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form.get("file")
        if not isinstance(upload, web.FileField) or form.get("purpose") != "batch":
            return _error_response(400, "need a file and purpose=batch", "invalid_request_error")
        content = upload.file.read()
        file_id = f"file-loopback-{next(self._ids)}"
        self.state.files[file_id] = (upload.filename, content)
        return _json_response(self._file_object(file_id))

    def _file_object(self, file_id: str) -> dict[str, Any]:
        name, content = self.state.files[file_id]
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": name,
            "purpose": "batch",
            "status": "processed",
        }

    async def file_content(self, request: web.Request) -> web.Response:
        found = self.state.files.get(request.match_info["file_id"])
        if found is None:
            return _error_response(404, "No such file", "invalid_request_error")
        if self.state.batch.content_delay:
            await asyncio.sleep(self.state.batch.content_delay)
        return web.Response(body=found[1], content_type="application/octet-stream")

    async def create_batch(self, request: web.Request) -> web.Response:
        body = await request.json()
        found = self.state.files.get(body.get("input_file_id"))
        if found is None:
            return _error_response(400, "input_file_id: no such file", "invalid_request_error")
        if body.get("endpoint") != "/v1/chat/completions":
            return _error_response(400, "endpoint: unsupported", "invalid_request_error")
        lines = [json.loads(text) for text in found[1].decode().splitlines() if text.strip()]
        self.state.submitted.update(str(line["custom_id"]) for line in lines)
        batch_id = f"batch_loopback_{next(self._ids)}"
        expire = self.state.batch.expire > 0
        if expire:
            self.state.batch.expire -= 1
        self.state.batches[batch_id] = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "input_file_id": body["input_file_id"],
            "completion_window": body.get("completion_window", "24h"),
            "status": "in_progress",
            "created_at": int(time.time()),
            "metadata": body.get("metadata"),
            "output_file_id": None,
            "error_file_id": None,
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "_lines": lines,
            "_due": time.monotonic() + self.state.batch.delay,
            "_expire": expire,
        }
        if self.state.batch.create_delay:  # accepted, but the client hears so only later
            await asyncio.sleep(self.state.batch.create_delay)
        return _json_response(self._batch_object(batch_id))

    async def list_batches(self, request: web.Request) -> web.Response:
        """Every batch, newest first, on one page (the SDK's cursor stops at has_more false)."""
        data = [self._batch_object(batch_id) for batch_id in reversed(self.state.batches)]
        after = request.query.get("after")
        if after in self.state.batches:
            ids = [b["id"] for b in data]
            data = data[ids.index(after) + 1 :]
        return _json_response(
            {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": False,
            }
        )

    def _batch_object(self, batch_id: str) -> dict[str, Any]:
        batch = self.state.batches[batch_id]
        if batch["status"] == "in_progress" and time.monotonic() >= batch["_due"]:
            self._finish_batch(batch)
        return {k: v for k, v in batch.items() if not k.startswith("_")}

    def _finish_batch(self, batch: dict[str, Any]) -> None:
        """Answer every line as the chat endpoint would (or fail or expire it)."""
        state = self.state
        outputs, errors = [], []
        answered = state.batch.expire_answered if batch["_expire"] else None
        for number, line in enumerate(batch["_lines"]):
            record: dict[str, Any] = {"id": f"batch_req_{number}", "custom_id": line["custom_id"]}
            body = line.get("body") or {}
            prompt, prompt_tokens = _prompt_of(body.get("messages") or [])
            if answered is not None and number >= answered:
                message = "This request could not be executed before the completion window."
                errors.append(record | {"response": None, "error": {
                    "code": "batch_expired", "message": message}})  # fmt: skip
                continue
            failure = state.take_batch_failure(prompt)
            if failure is not None:
                error = {"message": "Injected batch failure (loopback)", "type": "server_error"}
                response = {"status_code": failure.status, "body": {"error": error}}
                errors.append(record | {"response": response, "error": None})
                continue
            payload = self._payload(body, prompt, prompt_tokens, None)
            response = {"status_code": 200, "request_id": record["id"], "body": payload}
            outputs.append(record | {"response": response, "error": None})
        for kind, records in (("output_file_id", outputs), ("error_file_id", errors)):
            if records:
                file_id = f"file-loopback-{next(self._ids)}"
                text = "".join(json.dumps(r) + "\n" for r in records)
                state.files[file_id] = (f"{batch['id']}-{kind}.jsonl", text.encode())
                batch[kind] = file_id
        failed = len(batch["_lines"]) - len(outputs)
        batch["request_counts"] |= {"completed": len(outputs), "failed": failed}
        batch["status"] = "expired" if batch["_expire"] else "completed"

    async def get_batch(self, request: web.Request) -> web.Response:
        batch_id = request.match_info["batch_id"]
        if batch_id not in self.state.batches:
            return _error_response(404, "No such batch", "invalid_request_error")
        return _json_response(self._batch_object(batch_id))

    async def cancel_batch(self, request: web.Request) -> web.Response:
        batch_id = request.match_info["batch_id"]
        batch = self.state.batches.get(batch_id)
        if batch is None:
            return _error_response(404, "No such batch", "invalid_request_error")
        if batch["status"] == "in_progress":
            batch["status"] = "cancelled"
        return _json_response(self._batch_object(batch_id))

    async def set_batch(self, request: web.Request) -> web.Response:
        try:
            self.state.batch = BatchBehaviour.model_validate_json(await request.read())
        except ValidationError as exc:
            return _error_response(400, str(exc), "invalid_request_error")
        return _json_response({"ok": True})

    async def batch_stats(self, request: web.Request) -> web.Response:
        state = self.state
        return _json_response(
            {
                "submitted": dict(state.submitted),
                "batches": {
                    batch_id: {"status": b["status"], "requests": len(b["_lines"])}
                    for batch_id, b in state.batches.items()
                },
            }
        )

    async def models(self, request: web.Request) -> web.Response:
        return _json_response({"object": "list", "data": [{"id": MODEL_ID, "object": "model"}]})

    async def set_rules(self, request: web.Request) -> web.Response:
        try:
            rules = _RULES.validate_json(await request.read())
        except ValidationError as exc:
            return _error_response(400, str(exc), "invalid_request_error")
        self.state.rules = rules
        return _json_response({"ok": True, "rules": len(rules)})

    async def add_faults(self, request: web.Request) -> web.Response:
        try:
            faults = _FAULTS.validate_json(await request.read())
        except ValidationError as exc:
            return _error_response(400, str(exc), "invalid_request_error")
        self.state.faults.extend(_ArmedFault(f, f.times) for f in faults if f.times > 0)
        return _json_response({"ok": True, "pending_faults": self._pending()})

    async def stats(self, request: web.Request) -> web.Response:
        state = self.state
        counters: dict[str, Any] = {
            "total": state.total,
            "completed": state.completed,
            "faulted": state.faulted,
            "peak_concurrent": state.peak_concurrent,
            "pending_faults": self._pending(),
        }
        # ?by_prompt=0 leaves out the count per prompt: gigabytes after a million requests.
        if request.query.get("by_prompt") != "0":
            counters["by_prompt"] = dict(state.by_prompt)
        return _json_response(counters)

    async def reset(self, request: web.Request) -> web.Response:
        self.state.reset()
        return _json_response({"ok": True})

    async def not_found(self, request: web.Request) -> web.Response:
        return _error_response(
            404, f"No route for {request.method} {request.path}", "invalid_request_error"
        )

    def _pending(self) -> int:
        return sum(armed.remaining for armed in self.state.faults)


def create_app(latency: float = 0.0) -> web.Application:
    """The aiohttp application: completions, models, the control API and a JSON 404."""
    handlers = _Handlers(latency)
    # Batch input files come as multipart uploads, larger than aiohttp's 1 MiB default.
    app = web.Application(client_max_size=1024**3)
    app.router.add_post("/v1/chat/completions", handlers.completions)
    app.router.add_post("/chat/completions", handlers.completions)
    app.router.add_get("/v1/models", handlers.models)
    app.router.add_get("/models", handlers.models)
    for root in ("/v1", ""):
        app.router.add_post(f"{root}/files", handlers.upload_file)
        app.router.add_get(f"{root}/files/{{file_id}}/content", handlers.file_content)
        app.router.add_post(f"{root}/batches", handlers.create_batch)
        app.router.add_get(f"{root}/batches", handlers.list_batches)
        app.router.add_get(f"{root}/batches/{{batch_id}}", handlers.get_batch)
        app.router.add_post(f"{root}/batches/{{batch_id}}/cancel", handlers.cancel_batch)
    app.router.add_post("/_control/batch", handlers.set_batch)
    app.router.add_get("/_control/batch_stats", handlers.batch_stats)
    app.router.add_post("/_control/rules", handlers.set_rules)
    app.router.add_post("/_control/faults", handlers.add_faults)
    app.router.add_get("/_control/stats", handlers.stats)
    app.router.add_post("/_control/reset", handlers.reset)
    # Registered last: a catch-all instead of a middleware keeps the hot path middleware-free.
    app.router.add_route("*", "/{tail:.*}", handlers.not_found)
    return app


async def serve(
    host: str = "127.0.0.1", port: int = 0, latency: float = 0.0, backlog: int = 4096
) -> None:
    """Serve until SIGTERM/SIGINT, printing ``LISTENING http://HOST:PORT/v1`` once bound."""
    runner = web.AppRunner(create_app(latency), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=backlog, reuse_address=True)
        await site.start()
        bound_port = runner.addresses[0][1]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(f"{_LISTENING}http://{host}:{bound_port}/v1", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m persona_testbed.testing.loopback",
        description="Loopback OpenAI-compatible chat server with fault injection.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per completion")
    parser.add_argument("--backlog", type=int, default=4096)
    args = parser.parse_args(argv)
    # uvloop when installed: the server stands in for a remote endpoint, so it should take as
    # little of the shared CPU as it can.
    run_event_loop(serve(args.host, args.port, args.latency, args.backlog))
    return 0


# --------------------------------------------------------------------------- test controller


def _src_root() -> str:
    # .../src/persona_testbed/testing/loopback.py -> .../src, so the child imports this very copy
    # of the package even when it is not installed into the interpreter.
    return str(Path(__file__).resolve().parents[2])


class LoopbackServer:
    """Runs the loopback server in a subprocess and drives its control API (a context manager).

    >>> with LoopbackServer(latency=0.1) as server:
    ...     server.add_faults([{"kind": "429", "times": 2, "retry_after": 0.05}])
    ...     client = OpenAICompatibleClient(base_url=server.base_url)  # the code under test
    """

    def __init__(
        self,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        *,
        port: int = 0,
        startup_timeout: float = 20.0,
        stop_grace: float = 5.0,
    ) -> None:
        self.latency = latency
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self.stop_grace = stop_grace
        self.base_url = ""  # "http://127.0.0.1:PORT/v1" once started
        self.root_url = ""  # "http://127.0.0.1:PORT"
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._http: httpx.Client | None = None

    # -- lifecycle

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def returncode(self) -> int | None:
        """The server's exit status once stopped (0 after a clean SIGTERM shutdown)."""
        return None if self._proc is None else self._proc.poll()

    def start(self) -> Self:
        if self._proc is not None:
            raise RuntimeError("LoopbackServer already started")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_src_root(), env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        cmd = [
            sys.executable,
            "-m",
            "persona_testbed.testing.loopback",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--latency",
            repr(float(self.latency)),
        ]
        # stderr goes to a file, not a pipe: nobody drains it, and a full pipe would block it.
        # It stays open for the server's lifetime and is closed in stop().
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr, env=env
        )
        lines: queue.Queue[str | None] = queue.Queue()
        assert self._proc.stdout is not None
        threading.Thread(
            target=_pump_stdout, args=(self._proc.stdout, lines), daemon=True, name="loopback-out"
        ).start()
        deadline = time.monotonic() + self.startup_timeout
        try:
            while True:
                try:
                    line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    raise RuntimeError(
                        f"loopback server did not report LISTENING within "
                        f"{self.startup_timeout:g} s{self._stderr_tail()}"
                    ) from None
                if line is None:
                    code = self._proc.wait(timeout=self.stop_grace)
                    raise RuntimeError(
                        f"loopback server exited with status {code} before listening"
                        f"{self._stderr_tail()}"
                    )
                if line.startswith(_LISTENING):
                    self.base_url = line[len(_LISTENING) :].strip()
                    self.root_url = self.base_url.removesuffix("/v1")
                    self.port = int(self.root_url.rsplit(":", 1)[1])
                    break
        except BaseException:
            self.stop()
            raise
        # trust_env=False: a proxy from the environment must never see loopback traffic.
        self._http = httpx.Client(base_url=self.root_url, timeout=10.0, trust_env=False)
        return self

    def stop(self) -> None:
        """SIGTERM the server, SIGKILL it after ``stop_grace`` seconds; safe to call twice."""
        if self._http is not None:
            self._http.close()
            self._http = None
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def stderr_tail(self, limit: int = 4000) -> str:
        """The last ``limit`` characters the server wrote to stderr ("" when quiet or stopped)."""
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-limit:].strip()

    def _stderr_tail(self) -> str:
        text = self.stderr_tail()
        return f"; stderr:\n{text}" if text else ""

    # -- control API

    def _client(self) -> httpx.Client:
        if self._http is None:
            raise RuntimeError("LoopbackServer is not running; use it as a context manager")
        return self._http

    def _post(self, path: str, payload: Any) -> Any:
        response = self._client().post(path, json=payload)
        if response.status_code != 200:
            raise ValueError(f"{path} rejected: {response.status_code} {response.text}")
        return response.json()

    def set_rules(self, rules: list[dict[str, Any]]) -> None:
        """Replace the reply rules: ``[{"contains": str|None, "reply": str, "logprobs": {}}]``."""
        self._post("/_control/rules", rules)

    def add_faults(self, faults: list[dict[str, Any]]) -> None:
        """Append fault rules: ``[{"contains", "kind", "times", "retry_after", "delay"}]``."""
        self._post("/_control/faults", faults)

    def stats(self, *, by_prompt: bool = True) -> dict[str, Any]:
        """The server's counters: total, completed, by_prompt (unless left out), faulted,
        peak_concurrent and pending_faults."""
        query = "" if by_prompt else "?by_prompt=0"
        response = self._client().get(f"/_control/stats{query}")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def set_batch(self, **behaviour: Any) -> None:
        """How the Batch endpoints behave: ``delay``, ``fail`` ([{"contains", "times",
        "status"}]), ``expire``, ``expire_answered``, ``create_delay`` and ``content_delay``
        (see :class:`BatchBehaviour`)."""
        self._post("/_control/batch", behaviour)

    def batch_stats(self) -> dict[str, Any]:
        """``submitted`` (custom_id -> how many batches it was submitted in) and ``batches``
        (batch id -> status and number of requests)."""
        response = self._client().get("/_control/batch_stats")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def reset(self) -> None:
        """Clear stats, rules and faults (the base latency stays)."""
        self._post("/_control/reset", {})


def _pump_stdout(stream: IO[bytes], lines: queue.Queue[str | None]) -> None:
    # Reads the child's stdout to EOF so the pipe never fills, forwarding each line.
    with contextlib.suppress(ValueError, OSError):  # the stream is closed by stop()
        for raw in stream:
            lines.put(raw.decode(errors="replace"))
    lines.put(None)


if __name__ == "__main__":
    sys.exit(main())
