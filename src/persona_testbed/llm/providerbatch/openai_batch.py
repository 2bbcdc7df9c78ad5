"""OpenAI Batch through the official `openai` SDK: the input lines go up as a file
(`files.create(purpose="batch")`), `batches.create` starts the batch against
/v1/chat/completions, `batches.retrieve` polls it, and its output and error files
(`files.content`) are read back. Replies are parsed by the HTTP backend's `parse_completion`,
so a batch reply and an online one land in the cache alike."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

from persona_testbed.llm.backends.openai_http import TransientError, parse_completion
from persona_testbed.llm.batchfiles import BATCH_URL, PendingRequest
from persona_testbed.llm.providerbatch.provider import (
    BatchState,
    Outcomes,
    SdkConnection,
    import_sdk,
)
from persona_testbed.llm.types import ChatRequest

# OpenAI's limits per batch input file.
MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024
ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
# The batch's metadata entry holding the label it was submitted under (see Ledger.unconfirmed).
METADATA_KEY = "persona_testbed"


class OpenAIBatchProvider:
    kind = "openai"
    name = "OpenAI Batch"

    def __init__(
        self,
        model_id: str,
        base_url: str,
        api_key: str | None,
        *,
        timeout_s: float = 120.0,
        max_retries: int = 6,
    ) -> None:
        self._openai = import_sdk("openai", "batch")
        self.model_id = model_id
        self.base_url = base_url.rstrip("/")
        self.max_requests = MAX_REQUESTS
        self.max_bytes = MAX_BYTES
        self._max_retries = max_retries
        self._connection = SdkConnection(
            self._openai.AsyncOpenAI, base_url, api_key, timeout_s, max_retries
        )

    def _sdk(self) -> Any:
        return self._connection.sdk()

    def custom_id(self, key: str) -> str:
        return key  # any string is a valid custom_id

    def line(self, custom_id: str, pending: PendingRequest) -> str:
        record = {"custom_id": custom_id, "method": "POST", "url": BATCH_URL, "body": pending.body}
        return json.dumps(record, ensure_ascii=False)

    async def submit(self, lines: list[str], *, label: str) -> str:
        sdk = self._sdk()
        content = ("\n".join(lines) + "\n").encode()
        uploaded = await sdk.files.create(file=(f"{label}.jsonl", content), purpose="batch")
        # Not the SDK's retries: a create that timed out may have been accepted, and a blind
        # retry would start a second batch of the same requests (paid twice). Each failed try
        # first asks the provider for a batch under this label.
        once = sdk.with_options(max_retries=0)
        started = time.time()
        for attempt in range(self._max_retries + 1):
            try:
                batch = await once.batches.create(
                    input_file_id=uploaded.id,
                    endpoint=BATCH_URL,
                    completion_window="24h",
                    metadata={METADATA_KEY: label},
                )
                return str(batch.id)
            except (
                self._openai.APIConnectionError,  # timeouts included
                self._openai.InternalServerError,
                self._openai.RateLimitError,
            ):
                found = await self.find(label, since=started)
                if found is not None:
                    return found
                if attempt == self._max_retries:
                    raise
                await asyncio.sleep(min(2.0**attempt, 30.0))
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def find(self, label: str, *, since: float) -> str | None:
        """Batches are listed newest first: look back to `since` (less 5 minutes of clock skew)
        for the one whose metadata carries `label` (None from a server that lists none)."""
        try:
            async for batch in self._sdk().batches.list(limit=100):
                if (batch.metadata or {}).get(METADATA_KEY) == label:
                    return str(batch.id)
                if batch.created_at < since - 300:
                    return None
        except self._openai.NotFoundError:
            return None
        return None

    async def retrieve(self, batch_id: str) -> BatchState:
        batch = await self._sdk().batches.retrieve(batch_id)
        counts = batch.request_counts
        total = int(counts.total) if counts else 0
        return BatchState(
            status=str(batch.status),
            ended=batch.status in ENDED,
            total=total,
            succeeded=int(counts.completed) if counts else 0,
            failed=int(counts.failed) if counts else 0,
        )

    async def results(self, batch_id: str, requests: Mapping[str, ChatRequest]) -> Outcomes:
        sdk = self._sdk()
        batch = await sdk.batches.retrieve(batch_id)
        outcomes: Outcomes = {}
        if batch.status == "failed":  # rejected as a whole (a bad input file)
            errors = getattr(getattr(batch, "errors", None), "data", None) or []
            why = "; ".join(str(getattr(e, "message", e)) for e in errors[:3]) or "no details"
            return {custom_id: f"batch failed: {why}" for custom_id in requests}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = await sdk.files.content(file_id)
            for text in content.text.splitlines():
                if text.strip():
                    self._outcome(text, requests, outcomes)
        return outcomes

    def _outcome(self, text: str, requests: Mapping[str, ChatRequest], outcomes: Outcomes) -> None:
        try:
            record = json.loads(text)
            custom_id = str(record["custom_id"])
        except (ValueError, KeyError, TypeError):
            return  # not a result line: its request counts as unanswered
        request = requests.get(custom_id)
        if request is None:
            return
        response = record.get("response") if isinstance(record.get("response"), dict) else {}
        body = response.get("body")
        status = response.get("status_code")
        error = record.get("error")
        if not error and status == 200 and isinstance(body, dict):
            try:
                outcomes[custom_id] = parse_completion(json.dumps(body), request, self.model_id)
            except TransientError as exc:
                outcomes[custom_id] = str(exc)
            return
        outcomes[custom_id] = _reason(error, status, body)

    async def aclose(self) -> None:
        await self._connection.aclose()


def _reason(error: Any, status: Any, body: Any) -> str:
    """Why a line of an output or error file carries no reply."""
    if isinstance(error, dict) and error.get("message"):
        code = f"{error['code']}: " if error.get("code") else ""
        return f"{code}{error['message']}"
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = body["error"].get("message")
        if message:
            return f"HTTP {status}: {message}"
    return f"HTTP {status}" if status else "no reply"
