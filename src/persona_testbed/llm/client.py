"""The LLM client: one async engine (cache, dedup, concurrency, budget, accounting) and a sync
facade for the pipeline stages, which are not async themselves."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

from persona_testbed.errors import PersonaError
from persona_testbed.llm.backends.base import Backend, LLMCallError, LoadsModel
from persona_testbed.llm.backends.chat_body import openai_chat_body
from persona_testbed.llm.batchfiles import PendingRequest, RequestDeferred
from persona_testbed.llm.cache import ResponseCache, flush_open_caches
from persona_testbed.llm.choice import (
    CHOICE_TOP_LOGPROBS,
    CONSTRAINED_MAX_TOKENS,
    OrderedChoice,
    combine_orders,
    constrained_choice,
    constrained_format,
    label_probabilities,
)
from persona_testbed.llm.execution import make_executor
from persona_testbed.llm.progress import BatchProgress, status
from persona_testbed.llm.settings import ClientSettings
from persona_testbed.llm.structured import json_schema_format, parse_reply, reask_message
from persona_testbed.llm.types import (
    ChatRequest,
    ChatResult,
    Choice,
    Message,
    SchemaT,
    Structured,
)
from persona_testbed.llm.usage import ModelUsage

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")
# The fields LLMClient.request accepts (all but the model and the messages), worked out once:
# every choice and completion builds a request.
_REQUEST_FIELDS_LISTED = [n for n in ChatRequest.model_fields if n not in ("model", "messages")]
_REQUEST_FIELDS = frozenset(_REQUEST_FIELDS_LISTED)


def prompt_prefix(messages: Iterable[Message]) -> str:
    """A sort key under which prompts sharing a leading part (a persona's system prompt, a
    judge template) come out next to each other."""
    return "\x00".join(f"{m.role}\x01{m.content}" for m in messages)


def request_prefix(request: ChatRequest) -> str:
    return prompt_prefix(request.messages)


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (it halves the per-call CPU of the event loop, which is what
    limits throughput at high concurrency); PERSONA_EVENT_LOOP=asyncio opts out."""
    if os.environ.get("PERSONA_EVENT_LOOP", "auto") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_event_loop(coroutine: Coroutine[Any, Any, ResultT]) -> ResultT:
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(coroutine)


class BudgetExceededError(PersonaError):
    """The next call would take spending past --max-cost."""


class _LoopState:
    """Per-event-loop primitives (an asyncio object belongs to the loop that made it)."""

    def __init__(self, concurrency: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.semaphore = asyncio.Semaphore(concurrency)
        self.inflight: dict[str, asyncio.Future[ChatResult]] = {}
        self.loading = asyncio.Lock()


class LLMClient:
    """Talks to one model. Every call goes through the on-disk cache; identical concurrent
    requests are sent once; at most `concurrency` requests are in flight."""

    def __init__(
        self,
        backend: Backend,
        settings: ClientSettings | None = None,
        *,
        cache: ResponseCache | None = None,
    ) -> None:
        self.backend = backend
        self.settings = settings or ClientSettings()
        if cache is None and self.settings.cache_path is not None:
            cache = ResponseCache(self.settings.cache_path)
        self.cache = cache
        self._usage = ModelUsage()
        self._reserved_usd = 0.0
        self._state: _LoopState | None = None
        limit = backend.max_concurrency
        self.concurrency = (
            min(self.settings.concurrency, limit) if limit else self.settings.concurrency
        )
        # Set once a reply to a log-probability request comes back without any: from then on
        # choices go straight to the constrained answer (see achoose).
        self._no_logprobs_seen = False
        # Any mode but online: requests the cache lacks, by cache key, held until the batch
        # that asked for them ends; then they go to the mode's executor as one wave
        # (llm.execution).
        self._pending: dict[str, PendingRequest] = {}
        # Requests an executor gave up on: the re-run raises their error, as an online call
        # that failed for good does (a generation stage records it as one failed row).
        self._failed: dict[str, LLMCallError] = {}
        # Keys an executor answered in this process and counted as calls (count_wave_answer):
        # the held item's replay of each is not a cache hit.
        self._wave_answers: set[str] = set()
        self._executor = make_executor(self)
        # isinstance on a runtime protocol inspects the class: asked once, not once per call.
        self._lazy = isinstance(backend, LoadsModel)

    @classmethod
    def from_spec(
        cls,
        spec: str,
        settings: ClientSettings | None = None,
        *,
        cache: ResponseCache | None = None,
    ) -> LLMClient:
        from persona_testbed.llm.specs import make_backend

        settings = settings or ClientSettings()
        return cls(make_backend(spec, settings), settings, cache=cache)

    @property
    def model_id(self) -> str:
        return self.backend.model_id

    @property
    def usage(self) -> dict[str, ModelUsage]:
        # A local backend names its runtime; the manifest records which one served the model.
        runtime: str | None = getattr(self.backend, "runtime", None)
        return {self.model_id: self._usage.model_copy(update={"runtime": runtime})}

    @property
    def orders_by_prefix(self) -> bool:
        """Whether batches run prompts sharing a prefix back to back: a local runtime then
        evaluates only each prompt's new suffix. Results and cache keys do not change."""
        return bool(getattr(self.backend, "reuses_prompt_prefix", False))

    def request(self, messages: Iterable[Message], **fields: Any) -> ChatRequest:
        """A request to this client's model; a misspelt field is an error, never ignored."""
        unknown = sorted(fields.keys() - _REQUEST_FIELDS)
        if unknown:
            known = ", ".join(_REQUEST_FIELDS_LISTED)
            raise TypeError(f"LLMClient.request: unknown field '{unknown[0]}' (fields: {known})")
        return ChatRequest(model=self.model_id, messages=tuple(messages), **fields)

    # ---- async engine -------------------------------------------------------------------

    def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        if self._state is None or self._state.loop is not loop:
            self._state = _LoopState(self.concurrency)
        return self._state

    async def acomplete(self, request: ChatRequest, *, refresh: bool = False) -> ChatResult:
        """`refresh`: ask the model even when the cache holds a reply, and store the new one
        (re-asking a cached bad reply; see llm.generation)."""
        if request.model != self.model_id:
            request = request.model_copy(update={"model": self.model_id})
        canonical = request.canonical_json()
        key = request.cache_key(self.backend.identity, canonical)
        if self.cache is not None and not refresh:
            hit = self.cache.get(key)
            if hit is not None:
                self._count_hit(key)
                return hit
        if self._executor is not None:
            if (failed := self._failed.get(key)) is not None:
                raise failed
            # Not sent online: held for this batch's wave (a cached reply is replayed even
            # under `refresh`: the wave's answer lands in the cache, and the re-run must see it).
            if refresh and self.cache is not None and (hit := self.cache.get(key)) is not None:
                self._count_hit(key)
                return hit
            self._pending[key] = PendingRequest(canonical, self._batch_body(request))
            raise RequestDeferred(key)
        state = self._loop_state()
        pending = state.inflight.get(key)
        if pending is not None:  # the same request is already on its way: share its answer
            self._usage.cache_hits += 1
            result = await asyncio.shield(pending)
            return result.model_copy(update={"cached": True})
        future: asyncio.Future[ChatResult] = state.loop.create_future()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        state.inflight[key] = future
        try:
            shared = await self._claim_or_wait(key, refresh=refresh)
            if shared is not None:  # another process sharing the cache answered it
                self._usage.cache_hits += 1
                future.set_result(shared)
                return shared
            try:
                result = await self._call(request, state)
                self._store(key, canonical, result)
            finally:
                if self.cache is not None:
                    self.cache.release(key)
            future.set_result(result)
            return result
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
            raise
        finally:
            state.inflight.pop(key, None)

    def _count_hit(self, key: str) -> None:
        if key in self._wave_answers:  # the replay of an answer already counted as a call
            self._wave_answers.discard(key)
        else:
            self._usage.cache_hits += 1

    @property
    def served_model(self) -> str:
        """The model name a batch body carries: the server's name for an openai: spec."""
        served = getattr(self.backend, "model", None)
        return served if isinstance(served, str) else self.model_id

    def _batch_body(self, request: ChatRequest) -> dict[str, Any]:
        # 20 alternatives: the most OpenAI and vLLM return by default, as the HTTP backend asks.
        return openai_chat_body(request, model=self.served_model, max_top_logprobs=20)

    async def _run_wave(self) -> None:
        """Hand the held requests to the execution mode's executor (which fills the cache or
        stops the stage)."""
        assert self._executor is not None
        pending, self._pending = self._pending, {}
        await self._executor.run_wave(self, pending)

    async def _claim_or_wait(self, key: str, *, refresh: bool = False) -> ChatResult | None:
        """Claim `key` in the cache (None: this process sends the request), or wait while
        another process that claimed it is alive, and return its cached answer. Two runs
        sharing a cache thus never pay twice for the same request."""
        if self.cache is None:
            return None
        delay = 0.02
        while True:
            claimed = self.cache.claim(key)
            # It may have been answered since the first look (a refresh wants a new answer).
            hit = None if refresh else self.cache.get(key)
            if hit is not None:
                if claimed:
                    self.cache.release(key)
                return hit
            if claimed:
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    def record_answer(self, key: str, request_json: str, result: ChatResult) -> None:
        """An executor's answer to a held request (a Ray job's call): counted as an online
        call is, and cached under the key the online call would have used."""
        self.count_wave_answer(key, result)
        self._store(key, request_json, result)

    def count_wave_answer(self, key: str, result: ChatResult, *, batch: bool = False) -> None:
        """Count an executor's answer as a call (at the provider's batch price: `batch`); the
        held item's replay of it is then no cache hit, so a run's hits and calls never count
        one answer twice."""
        self.record_usage(result, batch=batch)
        self._wave_answers.add(key)

    def record_failure(self, key: str, error: LLMCallError) -> None:
        """An executor gave up on a held request: the item that asked for it gets `error`."""
        self._failed[key] = error

    def _store(self, key: str, request_json: str, result: ChatResult) -> None:
        if self.cache is None:
            return
        try:
            self.cache.put(key, self.model_id, request_json, result)
        except ValueError as exc:  # a reply that would not load back: use it, never cache it
            print(f"warning: {self.model_id}: {exc}", file=sys.stderr)

    async def _load_model(self, state: _LoopState) -> None:
        """Load a lazily loaded local model once, before its first call, showing that it is."""
        if not self._lazy:
            return
        backend = cast(LoadsModel, self.backend)
        if backend.is_loaded():
            return
        async with state.loading:  # concurrent first calls wait for the one load
            if not backend.is_loaded():
                with status(f"loading model {self.model_id}", enabled=self.settings.show_progress):
                    await asyncio.to_thread(backend.load)

    async def _call(self, request: ChatRequest, state: _LoopState) -> ChatResult:
        await self._load_model(state)
        async with state.semaphore:
            if self.cache is not None:
                # Every answer this process got so far is committed before another request
                # goes out; the tasks of one loop round wait for one shared commit (llm.cache).
                await self.cache.committed()
            estimate = self._reserve(request)
            try:
                result = await self.backend.complete(request)
            finally:
                self._reserved_usd -= estimate
        self.record_usage(result)
        return result

    def record_usage(self, result: ChatResult, *, batch: bool = False) -> None:
        """Count one answered call: its tokens, and its cost at list price or (`batch`: a reply
        imported from a provider batch API) at that API's price."""
        self._usage.calls += 1
        self._usage.prompt_tokens += result.prompt_tokens
        self._usage.completion_tokens += result.completion_tokens
        self._usage.cost_usd += self.settings.prices.cost(
            self.model_id, result.prompt_tokens, result.completion_tokens, batch=batch
        )

    async def acomplete_online(self, key: str, request: ChatRequest) -> ChatResult:
        """Send `request` (under cache key `key`) online whatever the execution mode, and store
        its answer: an executor's fallback for requests its service could not answer."""
        result = await self._call(request, self._loop_state())  # counted there
        self._wave_answers.add(key)
        self._store(key, request.canonical_json(), result)
        return result

    def estimate_cost(self, request: ChatRequest, *, batch: bool = False) -> float:
        """An upper estimate of a call's cost before it is made: the prompt at about four
        characters per token (the usual rule of thumb for English text) and the whole
        `max_tokens`, at list price or (`batch`) a provider batch API's price."""
        prompt_chars = sum(len(m.content) for m in request.messages)
        return self.settings.prices.cost(
            self.model_id, prompt_chars // 4 + 1, request.max_tokens, batch=batch
        )

    def within_budget(
        self, pending: Mapping[str, PendingRequest]
    ) -> tuple[dict[str, PendingRequest], BudgetExceededError | None]:
        """The held requests that fit under --max-cost by the online estimate, in order, and
        the error for the first that does not (None: all fit); nothing stays reserved."""
        fits: dict[str, PendingRequest] = {}
        reserved = 0.0
        try:
            for key, item in pending.items():
                try:
                    reserved += self._reserve(ChatRequest.model_validate_json(item.request_json))
                except BudgetExceededError as exc:
                    return fits, exc
                fits[key] = item
            return fits, None
        finally:
            self._reserved_usd -= reserved

    def _reserve(self, request: ChatRequest) -> float:
        """Stop before a call that could take spending past the budget."""
        budget = self.settings.max_cost_usd
        if budget is None:
            return 0.0
        estimate = self.estimate_cost(request)
        committed = self._usage.cost_usd + self._reserved_usd
        if committed + estimate > budget:
            raise BudgetExceededError(
                f"stopping before spending more than --max-cost ${budget:.4f} on {self.model_id}: "
                f"spent ${self._usage.cost_usd:.4f}; completed calls are cached, so a re-run "
                "with a larger budget resumes"
            )
        self._reserved_usd += estimate
        return estimate

    async def astructured(
        self, request: ChatRequest, schema: type[SchemaT], *, refresh: bool = False
    ) -> Structured[SchemaT]:
        """Ask for JSON matching `schema`; on a parse failure re-ask once with the error, then
        record the failure with the raw text. `refresh`: bypass cached replies (acomplete)."""
        if request.response_format is None:
            request = request.model_copy(update={"response_format": json_schema_format(schema)})
        first = await self.acomplete(request, refresh=refresh)
        value, error = parse_reply(first.text, schema)
        if value is not None:
            return Structured[SchemaT](value=value, raw=first.text, attempts=1)
        retry = request.model_copy(
            update={
                "messages": (
                    *request.messages,
                    Message(role="assistant", content=first.text),
                    Message(role="user", content=reask_message(error or "invalid")),
                )
            }
        )
        second = await self.acomplete(retry, refresh=refresh)
        value, error = parse_reply(second.text, schema)
        if value is not None:
            return Structured[SchemaT](value=value, raw=second.text, attempts=2)
        self._usage.parse_failures += 1
        return Structured[SchemaT](value=None, raw=second.text, error=error, attempts=2)

    def _choices_constrained(self) -> bool:
        """Whether choices skip the log-probability request: declared (choice_method, or a
        backend that has none) or detected from an earlier reply."""
        method = self.settings.choice_method
        if method == "logprobs":
            return False
        return (
            method == "constrained"
            or not self.backend.supports_logprobs
            or (self._no_logprobs_seen)
        )

    async def achoose(
        self, messages: Sequence[Message], labels: Sequence[str], *, fallback: bool = True
    ) -> Choice:
        """Probability per label from the first generated token, in one forward pass.

        Where the endpoint returns no log-probabilities (declared, or detected from this reply)
        and `fallback` is set, the model instead answers with one allowed label under a JSON
        schema (`Choice.method` "constrained"); `fallback=False` keeps the log-probability
        answer (undecided when there are none), for callers that need probabilities."""
        if fallback and self._choices_constrained():
            return await self._achoose_constrained(messages, labels)
        request = self.request(
            messages, max_tokens=1, temperature=0.0, top_logprobs=CHOICE_TOP_LOGPROBS
        )
        result = await self.acomplete(request)
        if result.top_logprobs is None and fallback and self.settings.choice_method == "auto":
            self._no_logprobs_seen = True
            return await self._achoose_constrained(messages, labels)
        return label_probabilities(result.top_logprobs, labels)

    async def _achoose_constrained(
        self, messages: Sequence[Message], labels: Sequence[str]
    ) -> Choice:
        request = self.request(
            messages,
            max_tokens=CONSTRAINED_MAX_TOKENS,
            temperature=0.0,
            response_format=constrained_format(labels),
        )
        result = await self.acomplete(request)
        return constrained_choice(result.text, labels)

    async def achoose_both_orders(self, item: OrderedChoice, *, fallback: bool = True) -> Choice:
        """Score every cyclic order of the options and average, cancelling position bias.

        When any order puts no mass on the labels the result is undecided (`Choice.undecided`),
        never a preference decided by the other orders alone. All orders are scored by one
        method: if one fell back to the constrained answer, so do the others."""
        orders = item.orders()

        async def score(method_constrained: bool) -> list[Choice]:
            return list(
                await asyncio.gather(
                    *(
                        self._achoose_constrained(item.render(ordered), item.labels)
                        if method_constrained
                        else self.achoose(item.render(ordered), item.labels, fallback=fallback)
                        for ordered in ([item.options[i] for i in order] for order in orders)
                    )
                )
            )

        choices = await score(False)
        if len({choice.method for choice in choices}) > 1:
            choices = await score(True)
        return combine_orders(list(zip(orders, choices, strict=True)), item.labels)

    async def amap(
        self,
        items: Sequence[ItemT],
        work: Callable[[ItemT], Awaitable[ResultT]],
        *,
        description: str = "model calls",
        prefix: Callable[[ItemT], str] | None = None,
    ) -> list[ResultT]:
        """Run `work` over `items` with bounded workers; results come back in input order.

        `prefix` gives an item's prompt text: for a backend that reuses a shared prompt prefix
        the items are sent sorted by it (see `orders_by_prefix`)."""
        results: list[Any] = [None] * len(items)
        order = list(range(len(items)))
        if prefix is not None and self.orders_by_prefix:
            keys = [prefix(item) for item in items]
            order.sort(key=keys.__getitem__)
        hits_before = self._usage.cache_hits  # the bar counts this batch's hits, not earlier ones
        with BatchProgress(
            description, len(items), enabled=self.settings.show_progress
        ) as progress:
            while order:
                held = await self._amap_wave(items, order, work, results, progress, hits_before)
                if not self._pending:
                    break
                # Not online: the held requests go out as one wave; the items that held them
                # run again and replay the answers (or hold their follow-up requests).
                await self._run_wave()
                order = held
        return results

    async def _amap_wave(
        self,
        items: Sequence[ItemT],
        order: list[int],
        work: Callable[[ItemT], Awaitable[ResultT]],
        results: list[Any],
        progress: BatchProgress,
        hits_before: int,
    ) -> list[int]:
        """Run `work` on the items at `order` with bounded workers; return the indices whose
        work held a request for the next wave (their result is not set)."""
        indices = iter(order)
        held: list[int] = []

        async def worker() -> None:
            for index in indices:
                try:
                    results[index] = await work(items[index])
                except RequestDeferred:  # the rest of the batch is still collected
                    held.append(index)
                    continue
                progress.advance(self._usage.cache_hits - hits_before)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(self.concurrency, len(order)) or 1):
                    group.create_task(worker())
        except BaseExceptionGroup as group_error:
            # Surface the first real error (a clear PersonaError), not the group wrapper.
            raise group_error.exceptions[0] from None
        position = {index: n for n, index in enumerate(order)}
        return sorted(held, key=position.__getitem__)

    async def acomplete_many(
        self, requests: Sequence[ChatRequest], *, description: str = "model calls"
    ) -> list[ChatResult]:
        return await self.amap(
            requests, self.acomplete, description=description, prefix=request_prefix
        )

    # ---- sync facade for pipeline stages -------------------------------------------------

    def run_sync(self, coroutine: Coroutine[Any, Any, ResultT]) -> ResultT:
        """Run one of this client's coroutines to completion from synchronous code."""

        async def wrapped() -> ResultT:
            try:
                return await coroutine
            except RequestDeferred:
                # A request outside any batch (a bare acomplete/achoose): `complete` goes
                # through amap, which re-runs it after its wave, so only these end here.
                await self._run_wave()
                raise PersonaError(
                    "a bare request under a non-online execution ran as a wave of its own; "
                    "batch calls with LLMClient.amap to have them replayed"
                ) from None
            finally:
                try:
                    if self.cache is not None:
                        self.cache.flush()  # the last round's writes, before the loop ends
                finally:
                    await self.backend.aclose()

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return run_event_loop(wrapped())
        # Called from inside an event loop (a notebook, a web handler): use a fresh thread,
        # after committing this thread's open cache writes (they would block that thread's).
        flush_open_caches()
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(run_event_loop, wrapped()).result()

    def complete_batch(
        self, requests: Sequence[ChatRequest], *, description: str = "model calls"
    ) -> list[ChatResult]:
        return self.run_sync(self.acomplete_many(requests, description=description))

    def complete(self, request: ChatRequest) -> ChatResult:
        if self._executor is None:
            return self.run_sync(self.acomplete(request))
        # Through amap, so that the execution mode runs it as a wave and then replays it.
        (result,) = self.run_sync(self.amap([request], self.acomplete, description="model call"))
        return result

    def structured_batch(
        self,
        requests: Sequence[ChatRequest],
        schema: type[SchemaT],
        *,
        description: str = "structured calls",
        refresh: bool = False,
    ) -> list[Structured[SchemaT]]:
        async def one(request: ChatRequest) -> Structured[SchemaT]:
            return await self.astructured(request, schema, refresh=refresh)

        return self.run_sync(
            self.amap(requests, one, description=description, prefix=request_prefix)
        )

    def choose_batch(
        self,
        queries: Sequence[tuple[Sequence[Message], Sequence[str]]],
        *,
        description: str = "choices",
        fallback: bool = True,
    ) -> list[Choice]:
        async def one(query: tuple[Sequence[Message], Sequence[str]]) -> Choice:
            return await self.achoose(*query, fallback=fallback)

        def prefix(query: tuple[Sequence[Message], Sequence[str]]) -> str:
            return prompt_prefix(query[0])

        return self.run_sync(self.amap(queries, one, description=description, prefix=prefix))

    def choose_both_orders_batch(
        self,
        items: Sequence[OrderedChoice],
        *,
        description: str = "choices (both orders)",
        fallback: bool = True,
    ) -> list[Choice]:
        """`fallback=False`: probabilities from log-probabilities only (see achoose)."""

        async def one(item: OrderedChoice) -> Choice:
            return await self.achoose_both_orders(item, fallback=fallback)

        def prefix(item: OrderedChoice) -> str:
            return prompt_prefix(item.render(item.options))

        return self.run_sync(self.amap(items, one, description=description, prefix=prefix))

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
            self.cache = None
