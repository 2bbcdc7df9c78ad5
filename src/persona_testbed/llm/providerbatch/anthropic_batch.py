"""Anthropic Message Batches through the `anthropic` SDK (`messages.batches.create`,
`retrieve`, `results`). Each request is built by the Messages backend's `messages_params` and
each reply read by its `result_of`, so a batch answers exactly as the online backend would:
a JSON schema becomes a forced tool, and choices, which have no log-probabilities here, are
scored by the constrained answer (llm.choice) as online.

A custom_id must be 1-64 characters of [a-zA-Z0-9_-]; a cache key (64 hex digits) is one. A key
that is not travels under a hash of itself, and the ledger keeps the mapping."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from persona_testbed.llm.backends.anthropic_messages import messages_params, result_of
from persona_testbed.llm.batchfiles import PendingRequest
from persona_testbed.llm.providerbatch.provider import (
    BatchState,
    Outcomes,
    SdkConnection,
    import_sdk,
)
from persona_testbed.llm.types import ChatRequest

# Anthropic's limits per Message Batch.
MAX_REQUESTS = 100_000
MAX_BYTES = 256 * 1024 * 1024
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def anthropic_custom_id(key: str) -> str:
    if _CUSTOM_ID.match(key):
        return key
    return "k" + hashlib.sha256(key.encode()).hexdigest()[:63]


class AnthropicBatchProvider:
    kind = "anthropic"
    name = "Anthropic Message Batches"

    def __init__(
        self,
        model_id: str,
        model: str,
        base_url: str,
        api_key: str | None,
        *,
        timeout_s: float = 120.0,
        max_retries: int = 6,
    ) -> None:
        self._anthropic = import_sdk("anthropic", "anthropic")
        self.model_id = model_id
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.max_requests = MAX_REQUESTS
        self.max_bytes = MAX_BYTES
        self._connection = SdkConnection(
            self._anthropic.AsyncAnthropic, base_url, api_key, timeout_s, max_retries
        )
        # As online: a model that refuses temperature/top_p is asked without them from then on.
        self.sampling = True

    def _sdk(self) -> Any:
        return self._connection.sdk()

    def custom_id(self, key: str) -> str:
        return anthropic_custom_id(key)

    def line(self, custom_id: str, pending: PendingRequest) -> str:
        request = ChatRequest.model_validate_json(pending.request_json)
        params = messages_params(self.model, request, sampling=self.sampling)
        # The online SDK call sends the sampling parameters as extra_body; in a batch they are
        # plain fields of the request's params.
        params |= params.pop("extra_body", {})
        return json.dumps({"custom_id": custom_id, "params": params}, ensure_ascii=False)

    async def submit(self, lines: list[str], *, label: str) -> str:
        batch = await self._sdk().messages.batches.create(
            requests=[json.loads(line) for line in lines]
        )
        return str(batch.id)

    async def find(self, label: str, *, since: float) -> str | None:
        """None: a Message Batch carries no metadata to find it by, so a batch accepted just
        before its run died unrecorded has its requests submitted again."""
        return None

    async def retrieve(self, batch_id: str) -> BatchState:
        batch = await self._sdk().messages.batches.retrieve(batch_id)
        counts = batch.request_counts
        failed = int(counts.errored) + int(counts.canceled) + int(counts.expired)
        succeeded = int(counts.succeeded)
        return BatchState(
            status=str(batch.processing_status),
            ended=batch.processing_status == "ended",
            total=succeeded + failed + int(counts.processing),
            succeeded=succeeded,
            failed=failed,
        )

    async def results(self, batch_id: str, requests: Mapping[str, ChatRequest]) -> Outcomes:
        outcomes: Outcomes = {}
        async for entry in await self._sdk().messages.batches.results(batch_id):
            custom_id = str(entry.custom_id)
            if custom_id not in requests:
                continue
            result = entry.result
            if result.type == "succeeded":
                outcomes[custom_id] = result_of(result.message, self.model_id)
                continue
            reason = result.type
            if result.type == "errored":
                error = getattr(getattr(result, "error", None), "error", None)
                message = getattr(error, "message", None) or str(error)
                reason = f"errored: {getattr(error, 'type', 'error')}: {message}"
                if self.sampling and any(p in message for p in ("temperature", "top_p")):
                    self.sampling = False
            outcomes[custom_id] = reason
        return outcomes

    async def aclose(self) -> None:
        await self._connection.aclose()
