"""One `openai:MODEL` spec served by several OpenAI-compatible servers (a vLLM fleet).

Each request goes to the server with the fewest requests outstanding relative to its weight,
among those below their concurrency cap whose circuit breaker lets requests through. A failed
attempt (5xx, timeout, dropped connection, malformed body) counts against that server's
breaker, and the request is retried on another server at once (with backoff only when every
server has already failed it); a 429 is retried the same way but does not count against the
server (it is up, and asks for less traffic). A server whose breaker is open gets nothing until
its cool-down ends; then one probe request decides whether it rejoins. When every server's
breaker is open, a request that fails gives up at once with one line (what was answered is
cached, so a re-run resumes) instead of stalling the run for cool-down after cool-down.

The cache key does not depend on which server answered: the pool's identity is the model id,
so a request answered by one server is a hit for every other.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from persona_testbed.llm.backends.base import LLMCallError
from persona_testbed.llm.backends.openai_http import MAX_RETRY_AFTER_S, TransientError
from persona_testbed.llm.breaker import BreakerState, CircuitBreaker
from persona_testbed.llm.types import ChatRequest, ChatResult


class SingleAttempt(Protocol):
    """One server that makes one attempt per call (OpenAIBackend.attempt_once)."""

    endpoint: str

    async def attempt_once(self, request: ChatRequest) -> ChatResult: ...

    async def aclose(self) -> None: ...


@dataclass
class PoolMember:
    """One server of the pool, with its routing state and counters."""

    backend: SingleAttempt
    cap: int
    weight: float
    breaker: CircuitBreaker
    outstanding: int = 0
    answered: int = 0
    failed: int = 0

    @property
    def url(self) -> str:
        return self.backend.endpoint

    def can_take(self) -> bool:
        return self.outstanding < self.cap and self.breaker.allows_request()

    def load(self) -> float:
        return (self.outstanding + 1) / self.weight


class EndpointPool:
    """A Backend over several servers (OpenAIBackends) of one model."""

    supports_logprobs = True

    def __init__(
        self,
        model_id: str,
        model: str,
        members: Sequence[PoolMember],
        *,
        max_retries: int = 6,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        if not members:
            raise ValueError("an endpoint pool needs at least one endpoint")
        self.model_id = model_id
        self.model = model
        self.members = list(members)
        self.identity = f"openai-endpoints:{model}"
        self.endpoint = f"{len(self.members)} endpoints ({', '.join(m.url for m in members)})"
        self.max_concurrency: int | None = sum(m.cap for m in self.members)
        self._max_attempts = max_retries + 1
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._waiters: list[asyncio.Future[None]] = []

    # ---- routing ------------------------------------------------------------------------

    def _pick(self, tried: set[int]) -> int | None:
        """The least-loaded server that can take a request, preferring one that has not
        already failed this request."""
        ready = [i for i, m in enumerate(self.members) if m.can_take()]
        fresh = [i for i in ready if i not in tried]
        candidates = fresh or ready
        if not candidates:
            return None
        return min(candidates, key=lambda i: (self.members[i].load(), i))

    async def _acquire(self, tried: set[int]) -> int:
        while True:
            index = self._pick(tried)
            if index is not None:
                member = self.members[index]
                member.outstanding += 1
                member.breaker.on_send()
                return index
            # Every server is at its cap or skipped: wait for a release, or for the first
            # cool-down to end (then a probe may go).
            probes = [
                s
                for m in self.members
                if m.outstanding < m.cap
                and not m.breaker.probing
                and (s := m.breaker.seconds_until_probe()) is not None
            ]
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, timeout=min(probes) + 0.001 if probes else None)
            except TimeoutError:
                pass
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _release(self, index: int) -> None:
        self.members[index].outstanding -= 1
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _backoff(self, error: TransientError, waits: int) -> float:
        if error.retry_after is not None:
            return min(error.retry_after, MAX_RETRY_AFTER_S)
        base = min(self._backoff_max_s, self._backoff_initial_s * 2.0**waits)
        return base * random.uniform(0.5, 1.0)

    # ---- the Backend interface ----------------------------------------------------------

    async def complete(self, request: ChatRequest) -> ChatResult:
        tried: set[int] = set()
        waits = 0
        last: tuple[int, TransientError] | None = None
        for attempts in range(1, self._max_attempts + 1):
            index = await self._acquire(tried)
            member = self.members[index]
            try:
                result = await member.backend.attempt_once(request)
            except TransientError as error:
                member.failed += 1
                if not error.rate_limited:
                    member.breaker.on_failure()
                self._release(index)
                tried.add(index)
                last = (index, error)
                if all(m.breaker.state is BreakerState.OPEN for m in self.members):
                    why = " (every circuit breaker is open)"
                    raise self._error(attempts, error, index, why) from None
                if len(tried) >= len(self.members):
                    # Every server has failed this request: back off before the next try.
                    await asyncio.sleep(self._backoff(error, waits))
                    waits += 1
                continue
            except BaseException:
                member.breaker.on_abandon()
                self._release(index)
                raise
            member.answered += 1
            member.breaker.on_success()
            self._release(index)
            return result
        assert last is not None
        raise self._error(self._max_attempts, last[1], last[0], "")

    def _error(self, attempts: int, error: TransientError, index: int, why: str) -> LLMCallError:
        return LLMCallError(
            f"model {self.model_id} failed after {attempts} attempts over "
            f"{len(self.members)} endpoints{why}; last at {self.members[index].url}: {error}"
        )

    def stats(self) -> list[dict[str, object]]:
        """Per server: answered and failed attempts, and its breaker's state."""
        return [
            {
                "url": m.url,
                "answered": m.answered,
                "failed": m.failed,
                "breaker": m.breaker.state.value,
                "times_opened": m.breaker.times_opened,
            }
            for m in self.members
        ]

    async def aclose(self) -> None:
        for member in self.members:
            await member.backend.aclose()
