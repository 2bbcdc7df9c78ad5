"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp server) over HTTP.

Retries 429, 5xx, timeouts, dropped connections and malformed bodies with exponential backoff
and jitter, honouring Retry-After; other 4xx errors fail at once.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from typing import Any

import aiohttp
import orjson
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from persona_testbed.llm.backends.base import LLMCallError
from persona_testbed.llm.backends.chat_body import openai_chat_body
from persona_testbed.llm.types import ChatRequest, ChatResult
from persona_testbed.llm.validation import length_problem, logprob_problem, usage_problem

RETRYABLE_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))
# Longest server-requested wait we honour; beyond it the server is effectively down.
MAX_RETRY_AFTER_S = 120.0


class TransientError(Exception):
    """A failure worth retrying; `retry_after` is the server's requested wait in seconds."""

    def __init__(
        self, cause: str, retry_after: float | None = None, *, rate_limited: bool = False
    ) -> None:
        super().__init__(cause)
        self.retry_after = retry_after
        # 429: the server is up but asks for less traffic (not a failure of the server).
        self.rate_limited = rate_limited


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (a number, possibly fractional) or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_message(text: str, reason: str | None) -> str:
    try:
        body = json.loads(text)
        message = body.get("error", {}).get("message") if isinstance(body, dict) else None
        if message:
            return str(message)
    except (ValueError, AttributeError):
        pass
    return text[:200].strip() or (reason or "no details")


class BackoffWait:
    """Exponential backoff with jitter, or the server's Retry-After when it gives one."""

    def __init__(self, initial: float, maximum: float) -> None:
        self._exponential = wait_exponential_jitter(multiplier=initial, max=maximum, jitter=initial)

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TransientError) and error.retry_after is not None:
            return min(error.retry_after, MAX_RETRY_AFTER_S)
        # Tenacity counts from the retry loop's start; the fast path already made one attempt.
        state.attempt_number += 1
        try:
            return float(self._exponential(state))
        finally:
            state.attempt_number -= 1

    def first(self, error: TransientError) -> float:
        """The wait after the fast path's single failed attempt."""
        if error.retry_after is not None:
            return min(error.retry_after, MAX_RETRY_AFTER_S)
        return float(self._exponential.multiplier + random.uniform(0, self._exponential.jitter))


class OpenAIBackend:
    max_concurrency: int | None = None
    supports_logprobs = True

    def __init__(
        self,
        model_id: str,
        model: str,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 6,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        max_connections: int = 256,
    ) -> None:
        self.model_id = model_id
        self.model = model
        self.endpoint = base_url.rstrip("/")
        self.identity = f"openai:{self.endpoint}:{model}"
        self._url = f"{self.endpoint}/chat/completions"
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._wait = BackoffWait(backoff_initial_s, backoff_max_s)
        self._max_connections = max_connections
        self._http: aiohttp.ClientSession | None = None
        self._supports_json_schema = True
        self._sends_logprobs = True

    def _session(self) -> aiohttp.ClientSession:
        # Created lazily inside the running event loop; closed by aclose() at the end of a batch.
        # aiohttp rather than httpx: httpcore's pool does O(connections) work per request,
        # which costs ~10 ms of CPU per call at 64 concurrent requests.
        if self._http is None or self._http.closed:
            # Every body is JSON sent as bytes: a session-wide Content-Type spares merging
            # per-request headers on each call.
            headers = {"Content-Type": "application/json"}
            if self._api_key:
                headers["Authorization"] = f"Bearer {self._api_key}"
            self._http = aiohttp.ClientSession(
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout_s),
                connector=aiohttp.TCPConnector(limit=self._max_connections),
            )
        return self._http

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        return openai_chat_body(
            request,
            model=self.model,
            json_schema=self._supports_json_schema,
            logprobs=self._sends_logprobs,
            max_top_logprobs=20,
        )

    async def complete(self, request: ChatRequest) -> ChatResult:
        # Fast path: most calls succeed at once, and building the retry machinery for each
        # one is measurable at hundreds of calls per second.
        try:
            return await self._attempt(request)
        except TransientError as first_error:
            if self._max_retries == 0:
                raise self._final_error(1, first_error) from None
            wait = self._wait.first(first_error)
        await asyncio.sleep(wait)
        attempts = 1
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._max_retries),
                wait=self._wait,
                retry=retry_if_exception_type(TransientError),
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    return await self._attempt(request)
        except TransientError as exc:
            raise self._final_error(attempts, exc) from None
        raise AssertionError("unreachable")  # pragma: no cover - AsyncRetrying always yields

    async def attempt_once(self, request: ChatRequest) -> ChatResult:
        """One attempt, no retries: TransientError for a failure worth retrying (the caller
        decides where; see backends.pool), LLMCallError for one that is not."""
        return await self._attempt(request)

    def _final_error(self, attempts: int, cause: TransientError) -> LLMCallError:
        return LLMCallError(
            f"model {self.model_id} at {self.endpoint} failed after {attempts} attempts: {cause}"
        )

    async def _attempt(self, request: ChatRequest) -> ChatResult:
        body = self._body(request)
        try:
            # The body as ready bytes and the reply read as bytes: aiohttp's json= and text()
            # each add a payload or decoding layer per call.
            async with self._session().post(self._url, data=json_bytes(body)) as response:
                status = response.status
                raw = await response.read()
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                reason = response.reason
        except TimeoutError:
            raise TransientError(f"timed out after {self._timeout_s:g} s") from None
        except aiohttp.ClientError as exc:
            raise TransientError(f"connection failed ({type(exc).__name__}: {exc})") from None
        if status < 300:
            return parse_completion(raw, request, self.model_id)
        text = raw.decode("utf-8", errors="replace")
        if status in RETRYABLE_STATUS:
            raise TransientError(
                f"HTTP {status}: {_error_message(text, reason)}",
                retry_after,
                rate_limited=status == 429,
            )
        schema_refused = status == 400 and "response_format" in text
        if schema_refused and self._supports_json_schema and "response_format" in body:
            # The server cannot constrain to a JSON schema: fall back to plain JSON mode.
            self._supports_json_schema = False
            return await self._attempt(request)
        if status == 400 and "logprobs" in text and "logprobs" in body:
            # A model that refuses log-probabilities (OpenAI's reasoning models): ask without
            # them; the reply then has none, and choices fall back to a constrained answer.
            self._sends_logprobs = False
            return await self._attempt(request)
        if status >= 400:
            raise LLMCallError(
                f"model {self.model_id} at {self.endpoint}: HTTP {status}: "
                f"{_error_message(text, reason)}"
            )
        return parse_completion(raw, request, self.model_id)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


def json_bytes(body: dict[str, Any]) -> bytes:
    """A request body as UTF-8 JSON. orjson: the stdlib encoder was about 4% of the client's
    CPU per call. The wire form need not be byte-identical to json.dumps (the cache key is the
    request's canonical JSON, made by the stdlib); a text orjson refuses (a lone surrogate)
    goes through json.dumps, escaped, as it always did."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        return json.dumps(body).encode("ascii")


def _loads(text: str | bytes) -> Any:
    """JSON of a reply body: orjson (faster), else the stdlib, which also reads what orjson
    refuses (NaN, integers beyond 64 bits), so a reply is judged by the same checks either
    way (a NaN log-probability is reported as such, not as unreadable JSON)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def parse_completion(text: str | bytes, request: ChatRequest, model_id: str) -> ChatResult:
    """The reply in a chat.completion body, or TransientError for a body that is not a usable
    completion (so it is retried, and never reaches the cache). Also parses the bodies of a
    batch service's output (llm.batchfiles), so both paths cache the same result."""
    try:
        payload = _loads(text)
        choice = payload["choices"][0]
        content = choice["message"].get("content") or ""
        if not isinstance(content, str):
            raise TypeError("content is not text")
        usage = payload.get("usage") or {}
        alternatives = _first_token_alternatives(choice.get("logprobs"))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        if isinstance(text, bytes):
            text = text[:320].decode("utf-8", errors="replace")
        raise TransientError(f"malformed response body: {text[:80]!r}") from None
    problem = usage_problem(usage) or next(
        (p for token, lp in alternatives or () if (p := logprob_problem(token, lp))), None
    )
    if problem is None:
        completion_tokens = int(usage.get("completion_tokens") or 0)
        problem = length_problem(request, content, completion_tokens)
    if problem is not None:
        raise TransientError(f"malformed response body: {problem}")
    # One validation of plain data in pydantic-core rather than a model per alternative
    # (a judge reply carries 20).
    return ChatResult.model_validate(
        {
            "text": content,
            "prompt_tokens": int(usage.get("prompt_tokens") or 0),
            "completion_tokens": completion_tokens,
            "finish_reason": choice.get("finish_reason"),
            "top_logprobs": None
            if alternatives is None
            else [{"token": token, "logprob": lp} for token, lp in alternatives],
            "model": model_id,
        }
    )


def _first_token_alternatives(logprobs: Any) -> list[tuple[str, float]] | None:
    """(token, logprob) for the first generated token's alternatives, most likely first."""
    if not isinstance(logprobs, dict) or not logprobs.get("content"):
        return None
    first = logprobs["content"][0]
    alternatives = first.get("top_logprobs") or [first]
    parsed = [(str(a["token"]), _number(a["logprob"])) for a in alternatives]
    return sorted(parsed, key=lambda item: item[1], reverse=True)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"not a number: {value!r}")
    return float(value)
