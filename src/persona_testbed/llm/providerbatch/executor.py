"""The WaveExecutor of `execution: batch`: a wave's requests go to the provider's batch API.

For each wave: read the ledger (first looking up at the provider any batch a killed run submitted
but never recorded); requests already in a batch that is in flight (or ended but not imported) are
not submitted again, that batch is polled instead; the rest are split at the provider's limits,
written as batch input files with their request sidecars, announced in the ledger, submitted, and
recorded in the ledger. Then (unless `batch.wait` is off) every batch of the wave is polled every
`batch.poll_s` with a status line, and each one that ends is imported: its replies go into the cache
under their keys, their tokens into the client's usage at the batch price, and the ledger marks it
imported. A request that failed or expired stays out of the cache, so the client holds it again in
the next wave and it goes into a later batch (`batch.failed: retry`, at most `batch.max_attempts`
batches per request, counted in the ledger so restarts count too) or it is sent online at once
(`batch.failed: online`).

Which provider: an `openai:` spec uses OpenAI Batch at the spec's base URL and API key (an
endpoint fleet: its first endpoint); an `anthropic:` spec uses Message Batches; any other spec
is an error.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from persona_testbed.errors import PersonaError
from persona_testbed.llm.batchfiles import PendingRequest
from persona_testbed.llm.progress import status
from persona_testbed.llm.providerbatch.ledger import (
    ENDED,
    FILES_FOLDER,
    IMPORTED,
    SUBMITTED,
    Ledger,
    LedgerBatch,
)
from persona_testbed.llm.providerbatch.provider import BatchProvider, BatchState
from persona_testbed.llm.settings import ClientSettings, default_batch_dir
from persona_testbed.llm.types import ChatRequest, ChatResult
from persona_testbed.run.atomic import write_text_atomic

if TYPE_CHECKING:
    from persona_testbed.llm.client import LLMClient


class BatchPendingError(PersonaError):
    """`batch.wait` is off: requests were submitted (or are still in flight); run again."""


def provider_for(client: LLMClient) -> BatchProvider:
    """The batch API of the client's spec (see the module docstring)."""
    settings = client.settings
    kind = client.model_id.split(":", 1)[0]
    if kind == "openai":
        from persona_testbed.llm.providerbatch.openai_batch import OpenAIBatchProvider

        if settings.endpoints:  # a fleet: the batch goes to its first server
            first = settings.endpoints[0]
            base_url, api_key = first.base_url, first.api_key(settings.api_key)
        else:
            base_url, api_key = client.backend.endpoint, settings.api_key
        return OpenAIBatchProvider(
            client.model_id,
            base_url,
            api_key,
            timeout_s=settings.timeout_s,
            max_retries=settings.max_retries,
        )
    if kind == "anthropic":
        from persona_testbed.llm.providerbatch.anthropic_batch import AnthropicBatchProvider

        return AnthropicBatchProvider(
            client.model_id,
            client.served_model,
            client.backend.endpoint,
            settings.anthropic_api_key,
            timeout_s=settings.timeout_s,
            max_retries=settings.max_retries,
        )
    raise PersonaError(
        f"--execution batch submits to a provider's batch API (openai:, anthropic: specs), and "
        f"{client.model_id} has none: use --execution online, or --execution export for a "
        "batch file to run elsewhere"
    )


def make_batch_executor(client: LLMClient) -> ProviderBatchExecutor:
    if client.cache is None:
        raise PersonaError(
            "--execution batch needs the response cache (imported replies land there); "
            "drop --no-cache"
        )
    provider = provider_for(client)
    batch_dir = client.settings.batch_dir or default_batch_dir(client.cache.path)
    return ProviderBatchExecutor(provider, batch_dir, client.settings)


class ProviderBatchExecutor:
    def __init__(self, provider: BatchProvider, batch_dir: Path, settings: ClientSettings) -> None:
        self.provider = provider
        self.ledger = Ledger(batch_dir)
        self.settings = settings
        # cache key -> why its last batch gave no reply (for the reports)
        self.failures: dict[str, str] = {}

    async def run_wave(self, client: LLMClient, pending: Mapping[str, PendingRequest]) -> None:
        try:
            await self._run(client, pending)
        finally:
            await self.provider.aclose()

    def _mine(self, batch: LedgerBatch, client: LLMClient) -> bool:
        provider = self.provider
        return (
            batch.provider == provider.kind
            and batch.model_id == client.model_id
            and batch.base_url == provider.base_url
        )

    async def _run(self, client: LLMClient, pending: Mapping[str, PendingRequest]) -> None:
        assert client.cache is not None
        await self._recover(client, pending)
        known = [b for b in self.ledger.read().values() if self._mine(b, client)]
        # Batches already holding requests of this wave: polled and imported, never resubmitted.
        tracked = [
            b for b in known if b.state != IMPORTED and not pending.keys().isdisjoint(b.keys)
        ]
        covered = {key for batch in tracked for key in batch.keys}
        attempts = Counter(key for batch in known for key in batch.keys if key in pending)
        fresh = [key for key in sorted(pending) if key not in covered]
        limit = self.settings.batch.max_attempts
        spent = [key for key in fresh if attempts[key] >= limit]
        if spent:
            if self.settings.batch.failed != "online":
                raise PersonaError(
                    f"{len(spent)} requests of {client.model_id} got no reply in {limit} "
                    f"{self.provider.name} batches (last: {self._why(spent)}); raise "
                    "llm.batch.max_attempts, set llm.batch.failed: online, or run online"
                )
            await self._online(client, {key: pending[key] for key in spent})
            fresh = [key for key in fresh if key not in set(spent)]
        self._check_budget(client, [pending[key] for key in fresh])
        submitted = [
            await self._submit(client, chunk)
            for chunk in self._chunks([(key, pending[key]) for key in fresh])
        ]
        if submitted:
            ids = _ids(submitted)
            count = sum(len(batch.keys) for batch in submitted)
            self._say(
                f"{client.model_id}: submitted {count} requests to {self.provider.name} ({ids})"
            )
            if not self.settings.batch.wait:
                raise BatchPendingError(
                    f"{count} requests submitted to {self.provider.name} ({ids}); run this "
                    "command again to pick up the results"
                )
        await self._wait(client, [*tracked, *submitted])
        failed = [key for key in pending if client.cache.get(key) is None]
        if not failed:
            return
        if self.settings.batch.failed == "online":
            self._say(
                f"{client.model_id}: {len(failed)} requests got no reply from "
                f"{self.provider.name} ({self._why(failed)}); sending them online"
            )
            await self._online(client, {key: pending[key] for key in failed})
        else:
            self._say(
                f"{client.model_id}: {len(failed)} requests got no reply from "
                f"{self.provider.name} ({self._why(failed)}); they go into a later batch"
            )

    async def _recover(self, client: LLMClient, pending: Mapping[str, PendingRequest]) -> None:
        """A run killed after the provider accepted a batch but before the ledger recorded it
        left only the intent line: find that batch at the provider by its label and record it
        (it is then polled like any other), or mark the intent abandoned when there is none."""
        for intent in self.ledger.unconfirmed():
            if not self._mine(intent, client) or pending.keys().isdisjoint(intent.keys):
                continue
            batch_id = await self.provider.find(intent.label, since=intent.submitted_at)
            if batch_id is None:
                self.ledger.record_abandoned(intent.label)
                continue
            intent.batch_id = batch_id
            self.ledger.record_submitted(intent)
            self._say(
                f"{client.model_id}: found {self.provider.name} batch {batch_id}, submitted by a "
                "run that stopped before recording it"
            )

    def _check_budget(self, client: LLMClient, items: list[PendingRequest]) -> None:
        """Stop before submitting requests that could take spending past --max-cost (each
        estimated as online, at about four characters per token, at the batch price)."""
        budget = self.settings.max_cost_usd
        if budget is None or not items:
            return
        from persona_testbed.llm.client import BudgetExceededError

        estimate = sum(
            client.estimate_cost(ChatRequest.model_validate_json(item.request_json), batch=True)
            for item in items
        )
        spent = client.usage[client.model_id].cost_usd
        if spent + estimate > budget:
            raise BudgetExceededError(
                f"stopping before submitting {len(items)} requests of {client.model_id} to "
                f"{self.provider.name}: up to ${estimate:.4f} at the batch price on top of "
                f"${spent:.4f} spent would pass --max-cost ${budget:.4f}"
            )

    def _chunks(self, items: list[tuple[str, PendingRequest]]) -> Iterator[list[_Line]]:
        """The wave's requests in batches within the request and byte limits."""
        provider, settings = self.provider, self.settings
        max_requests = min(
            settings.batch.max_requests or provider.max_requests, provider.max_requests
        )
        max_bytes = min(settings.batch.max_bytes or provider.max_bytes, provider.max_bytes)
        chunk: list[_Line] = []
        size = 0
        for key, item in items:
            custom_id = provider.custom_id(key)
            line = _Line(key, custom_id, provider.line(custom_id, item), item.request_json)
            length = len(line.text.encode()) + 1
            if chunk and (len(chunk) >= max_requests or size + length > max_bytes):
                yield chunk
                chunk, size = [], 0
            chunk.append(line)
            size += length
        if chunk:
            yield chunk

    async def _submit(self, client: LLMClient, chunk: list[_Line]) -> LedgerBatch:
        """Write the chunk's input file and request sidecar, submit it, record it."""
        keys = [line.key for line in chunk]
        digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:10]
        safe_model = re.sub(r"[^A-Za-z0-9._-]+", "_", client.model_id).strip("_") or "model"
        stem = f"{safe_model}-{time.time_ns()}-{digest}"
        folder = self.ledger.files_dir()
        folder.mkdir(parents=True, exist_ok=True)
        # The sidecar (key -> request JSON) first: a batch is imported from it after a restart.
        sidecar = folder / f"{stem}.requests.jsonl"
        records = [
            json.dumps(
                {"custom_id": line.key, "model": client.model_id, "request": line.request_json},
                ensure_ascii=False,
            )
            for line in chunk
        ]
        write_text_atomic(sidecar, "\n".join(records) + "\n")
        texts = [line.text for line in chunk]
        write_text_atomic(folder / f"{stem}.input.jsonl", "\n".join(texts) + "\n")
        batch = LedgerBatch(
            batch_id="",
            provider=self.provider.kind,
            model_id=client.model_id,
            base_url=self.provider.base_url,
            keys=keys,
            requests=f"{FILES_FOLDER}/{sidecar.name}",
            submitted_at=time.time(),
            id_map={line.custom_id: line.key for line in chunk if line.custom_id != line.key},
            label=stem,
        )
        # The intent first: a run killed once the provider has the batch but before the ledger
        # says so finds it by its label on restart (_recover) instead of submitting it again.
        self.ledger.record_submitting(batch)
        batch.batch_id = await self.provider.submit(texts, label=stem)
        self.ledger.record_submitted(batch)
        return batch

    async def _wait(self, client: LLMClient, batches: list[LedgerBatch]) -> None:
        """Poll until every batch ended and is imported (`batch.wait` off: look once, and stop
        the stage while any is still in flight)."""
        remaining = list(batches)
        while remaining:
            running: list[tuple[LedgerBatch, BatchState]] = []
            for batch in remaining:
                state = await self.provider.retrieve(batch.batch_id)
                counts = {"total": state.total, "succeeded": state.succeeded}
                counts["failed"] = state.failed
                changes: dict[str, object] = {}
                if state.status != batch.status:
                    changes["status"] = state.status
                if counts != batch.counts:
                    changes["counts"] = counts
                if state.ended and batch.state == SUBMITTED:
                    changes["state"] = ENDED
                if changes:
                    self.ledger.update(batch, **changes)
                if state.ended:
                    await self._import(client, batch)
                else:
                    running.append((batch, state))
            remaining = [batch for batch, _ in running]
            if not remaining:
                return
            progress = ", ".join(
                f"{batch.batch_id} {state.done}/{state.total or len(batch.keys)}"
                for batch, state in running[:4]
            ) + (f" and {len(running) - 4} more" if len(running) > 4 else "")
            if not self.settings.batch.wait:
                count = sum(len(batch.keys) for batch in remaining)
                raise BatchPendingError(
                    f"{count} requests still in flight at {self.provider.name} ({progress} "
                    "done); run this command again to pick up the results"
                )
            line = f"{client.model_id}: waiting for {self.provider.name}: {progress} done"
            with status(line, enabled=self.settings.show_progress):
                await asyncio.sleep(self.settings.batch.poll_s)

    async def _import(self, client: LLMClient, batch: LedgerBatch) -> None:
        """Put an ended batch's replies in the cache; record its failures; mark it imported."""
        cache = client.cache
        assert cache is not None
        exported = self.ledger.requests_of(batch)
        ids = {cid: key for cid, key in batch.custom_ids().items() if key in exported}
        requests = {
            cid: ChatRequest.model_validate_json(exported[key].request_json)
            for cid, key in ids.items()
        }
        outcomes = await self.provider.results(batch.batch_id, requests)
        imported = 0
        failed: list[str] = []
        for cid, key in ids.items():
            outcome = outcomes.get(cid, f"no result (batch {batch.status or 'ended'})")
            if isinstance(outcome, ChatResult):
                if cache.get(key) is None:
                    try:
                        cache.put(key, batch.model_id, exported[key].request_json, outcome)
                    except ValueError as exc:  # a reply that would not load back
                        self.failures[key] = str(exc)
                        failed.append(key)
                        continue
                    client.count_wave_answer(key, outcome, batch=True)
                imported += 1
                self.failures.pop(key, None)
            else:
                self.failures[key] = outcome
                failed.append(key)
        counts = {**batch.counts, "imported": imported, "failed": len(failed)}
        cache.flush()  # the replies are committed before the ledger says they are in the cache
        self.ledger.update(batch, state=IMPORTED, counts=counts)
        if failed:
            self._say(
                f"{client.model_id}: {self.provider.name} batch {batch.batch_id}: {imported} "
                f"imported, {len(failed)} failed or expired ({self._why(failed)})"
            )

    async def _online(self, client: LLMClient, items: Mapping[str, PendingRequest]) -> None:
        """Answer `items` online now (batch.failed: online)."""

        async def one(key: str) -> None:
            await client.acomplete_online(
                key, ChatRequest.model_validate_json(items[key].request_json)
            )

        await asyncio.gather(*(one(key) for key in items))

    def _why(self, keys: list[str]) -> str:
        reasons = Counter(self.failures.get(key, "no reply") for key in keys)
        shown = "; ".join(f"{n}x {reason}" for reason, n in reasons.most_common(2))
        return shown + (f"; {len(reasons) - 2} other reasons" if len(reasons) > 2 else "")

    @staticmethod
    def _say(line: str) -> None:
        print(line, file=sys.stderr)


@dataclass(frozen=True)
class _Line:
    key: str
    custom_id: str
    text: str
    request_json: str


def _ids(batches: list[LedgerBatch]) -> str:
    ids = [batch.batch_id for batch in batches]
    return ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
