"""execution: ray — a wave of uncached requests runs as a Ray Data job.

The wave's rows (cache key, request JSON) go through `map_batches` into a pool of Ray actors;
each actor builds the model's backend once (from the spec and the client settings, as the
driver did) and sends its batch's requests concurrently with the online client's code, retries
included. The driver streams the answers back and puts each in the response cache under the
key the online client would have used, counting its tokens and cost as an online call; the
client then replays the wave's items from the cache.

Ray is an optional extra (`pip install 'persona-testbed[ray]'`), imported only here and only
when this mode is used. Without RAY_ADDRESS (or `llm.ray.address`) a local Ray is started in
this process, once, and shut down at exit; with it, the job runs on that cluster, whose
workers must be able to import persona_testbed and reach the model's endpoints (docs/scale.md).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import math
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from persona_testbed.errors import PersonaError
from persona_testbed.llm.backends.base import LLMCallError
from persona_testbed.llm.batchfiles import PendingRequest
from persona_testbed.llm.client import BudgetExceededError
from persona_testbed.llm.execution import WaveExecutor, register_execution
from persona_testbed.llm.progress import updating_status
from persona_testbed.llm.settings import ClientSettings, RaySettings
from persona_testbed.llm.specs import parse_spec
from persona_testbed.llm.types import ChatRequest, ChatResult

if TYPE_CHECKING:
    import pyarrow as pa

    from persona_testbed.llm.client import LLMClient

INSTALL_HINT = "pip install 'persona-testbed[ray]'"
# Specs whose calls go over the network: what a Ray worker can send as well as the driver.
REMOTE_KINDS = ("openai", "anthropic")
# Most seconds of answers a killed driver can lose (they are committed to the cache this often).
COMMIT_EVERY_S = 1.0


def import_ray() -> Any:
    """The `ray` module with Ray Data, or a one-line PersonaError naming the extra."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise PersonaError(f"--execution ray needs Ray: {INSTALL_HINT}") from None
    return ray


def ensure_ray(settings: RaySettings) -> Any:
    """Connect to the cluster at `settings.address` or RAY_ADDRESS, else start a quiet local
    Ray with `settings.num_cpus` CPUs; once per process (a Ray already initialised, by this
    function or the caller, is used as it is). A Ray started here is shut down at exit."""
    ray = import_ray()
    if not ray.is_initialized():
        if threading.current_thread() is not threading.main_thread():
            # Ray's local processes end with the thread that started them.
            raise PersonaError(
                "--execution ray from a thread other than the main one (a notebook, a web "
                "handler): call ray.init() in the main thread first"
            )
        address = settings.address or os.environ.get("RAY_ADDRESS") or None
        quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
        if address is not None:
            ray.init(address=address, **quiet)
        else:
            ray.init(num_cpus=settings.num_cpus, include_dashboard=False, **quiet)
            atexit.register(ray.shutdown)
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the client's own bar shows the job's progress
    context.print_on_execution_start = False
    return ray


def worker_settings(settings: ClientSettings, workers: int) -> ClientSettings:
    """What each of `workers` actors runs with: online, no cache (the driver stores the
    answers), no budget (the driver checks it before the job), no progress, and its share of
    the concurrency, in all and at each server of a fleet."""

    def share(limit: int) -> int:
        return max(1, math.ceil(limit / workers))

    endpoints = tuple(
        endpoint.model_copy(update={"concurrency": share(endpoint.concurrency)})
        if endpoint.concurrency is not None
        else endpoint
        for endpoint in settings.endpoints
    )
    return settings.model_copy(
        update={
            "execution": "online",
            "cache_path": None,
            "max_cost_usd": None,
            "show_progress": False,
            "concurrency": share(settings.concurrency),
            "endpoints": endpoints,
        }
    )


class RequestCaller:
    """A Ray actor's work: build the model's client once, answer each batch of rows
    (key, request) with rows (key, result JSON or "", error or "")."""

    def __init__(self, spec: str, settings: ClientSettings) -> None:
        from persona_testbed.llm.client import LLMClient

        self.client = LLMClient.from_spec(spec, settings)

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa

        keys = batch.column("key").to_pylist()
        requests = [ChatRequest.model_validate_json(text) for text in batch["request"].to_pylist()]
        outcomes = self.client.run_sync(self._send(requests))
        results = [o.model_dump_json() if isinstance(o, ChatResult) else "" for o in outcomes]
        errors = [o if isinstance(o, str) else "" for o in outcomes]
        return pa.table({"key": keys, "result": results, "error": errors})

    async def _send(self, requests: Sequence[ChatRequest]) -> list[ChatResult | str]:
        async def one(request: ChatRequest) -> ChatResult | str:
            try:
                return await self.client.acomplete(request)
            except LLMCallError as exc:
                return str(exc)
            except Exception as exc:  # reported with its request; the rest of the job goes on
                return f"{type(exc).__name__}: {exc}"

        return list(await asyncio.gather(*(one(request) for request in requests)))


class RayExecutor:
    """Answers each wave with one Ray Data job (see the module docstring)."""

    def __init__(self, spec: str, settings: ClientSettings) -> None:
        self.spec = spec
        self.settings = settings
        self.ray_settings = settings.ray
        self._attempts: dict[str, int] = {}
        self._errors: dict[str, str] = {}

    async def run_wave(self, client: LLMClient, pending: Mapping[str, PendingRequest]) -> None:
        send = self._to_send(client, pending)
        over_budget: BudgetExceededError | None = None
        if client.settings.max_cost_usd is not None:
            send, over_budget = client.within_budget(send)
        if send:
            # On the loop's thread (the main one, where Ray must start): nothing else runs
            # between a batch's workers and its wave.
            self._run_job(client, send)
        if over_budget is not None:  # as online: what fits was sent (and cached), then stop
            raise over_budget

    def _to_send(
        self, client: LLMClient, pending: Mapping[str, PendingRequest]
    ) -> dict[str, PendingRequest]:
        """The wave's requests still worth sending; one that failed in every allowed wave (or
        was answered but could not be cached) fails for good instead."""
        send: dict[str, PendingRequest] = {}
        for key, item in pending.items():
            if self._attempts.get(key, 0) >= self.ray_settings.attempts:
                why = self._errors.get(key, "answered, but the reply could not be cached")
                client.record_failure(key, LLMCallError(why))
                continue
            send[key] = item
        return send

    def _run_job(self, client: LLMClient, send: Mapping[str, PendingRequest]) -> None:
        ray = ensure_ray(self.ray_settings)
        # An actor answers one batch at a time: a batch of at least its share of the
        # concurrency keeps that many requests in flight.
        share = math.ceil(self.settings.concurrency / self.ray_settings.workers)
        batch_size = max(self.ray_settings.batch_size, share)
        workers = min(self.ray_settings.workers, math.ceil(len(send) / batch_size))
        settings = worker_settings(self.settings, workers)
        rows = [{"key": key, "request": item.request_json} for key, item in send.items()]
        for key in send:
            self._attempts[key] = self._attempts.get(key, 0) + 1
        dataset = ray.data.from_items(rows).map_batches(
            RequestCaller,
            fn_constructor_kwargs={"spec": self.spec, "settings": settings},
            batch_format="pyarrow",
            batch_size=batch_size,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=self.ray_settings.worker_cpus,
        )
        text = f"ray: {len(send)} requests of {client.model_id} on {workers} workers"
        failed = 0
        commit_at = time.monotonic() + COMMIT_EVERY_S
        with updating_status(text, enabled=client.settings.show_progress) as update:
            for done, row in enumerate(_rows(ray, dataset), 1):
                key = str(row["key"])
                if row["error"]:
                    failed += 1
                    self._errors[key] = str(row["error"])
                    if self._attempts[key] >= self.ray_settings.attempts:
                        client.record_failure(key, LLMCallError(self._errors[key]))
                else:
                    result = ChatResult.model_validate_json(str(row["result"]))
                    client.record_answer(key, send[key].request_json, result)
                    if client.cache is not None and time.monotonic() >= commit_at:
                        # The job runs on the loop's thread without yielding, so the cache's
                        # round commit never comes: commit the answers so far every second.
                        client.cache.flush()
                        commit_at = time.monotonic() + COMMIT_EVERY_S
                update(f"{text}: {done} answered, {failed} failed")
        if client.cache is not None:
            client.cache.flush()


def _rows(ray: Any, dataset: Any) -> Iterator[dict[str, Any]]:
    """The job's result rows as they stream in; a failure of Ray itself (an actor that could
    not start or died, a lost cluster) is one PersonaError."""
    try:
        yield from dataset.iter_rows()
    except ray.exceptions.RayError as exc:
        raise PersonaError(f"the Ray job failed: {ray_error_line(str(exc))}") from None


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EXCEPTION_LINE = re.compile(r"^[\w.]*(Error|Exception|Interrupt)\b.*: \S")


def ray_error_line(text: str) -> str:
    """The line that says what went wrong in a Ray error's text (which holds the remote
    traceback): the first `SomeError: message` line that is not Ray's own wrapper."""
    lines = [line.strip() for line in _ANSI.sub("", text).splitlines() if line.strip()]
    raised = [line for line in lines if _EXCEPTION_LINE.match(line)]
    ours = [line for line in raised if not line.startswith("ray.")]
    return (ours or raised or lines or ["no details"])[0]


def _ray_factory(client: LLMClient) -> WaveExecutor:
    if client.cache is None:
        raise PersonaError(
            "--execution ray needs the response cache (the job's answers land there); "
            "drop --no-cache"
        )
    spec = client.model_id
    try:
        kind = parse_spec(spec).kind
    except PersonaError:
        raise PersonaError(
            f"--execution ray rebuilds the model from its spec in each worker; {spec} is none"
        ) from None
    if kind not in REMOTE_KINDS:
        raise PersonaError(
            f"--execution ray sends requests to endpoints (openai:, anthropic:); {spec} runs "
            "in this process (each Ray worker would load its own copy): use --execution online, "
            "or serve the model (llama.cpp server, vLLM) and use openai:MODEL"
        )
    import_ray()  # a missing extra fails before any stage runs, not at the first wave
    return RayExecutor(spec, client.settings)


register_execution("ray", _ray_factory)
