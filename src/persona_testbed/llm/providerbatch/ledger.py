"""The ledger of submitted provider batches: an append-only JSONL file in the batch folder.

Each submitted batch gets one record when its provider accepted it (batch id, provider, model,
endpoint, the cache keys it holds, the sidecar with their requests, when); later lines for the
same batch id update its state (polled counts, `ended`, `imported`). Every line is appended with
one write on an O_APPEND descriptor and fsynced before the run goes on, so a run killed at any
point finds every batch it submitted on restart and polls or imports it instead of submitting its
requests again. A torn last line (a kill mid-write) is skipped when read.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from persona_testbed.llm.batchfiles import Exported, read_sidecar

LEDGER_NAME = "provider-batches.jsonl"
# Input files and request sidecars of submitted batches (a folder of their own, so
# `persona batch status` does not list them as exported files).
FILES_FOLDER = "submitted"

# Ledger states: submitted (accepted by the provider), ended (results readable, not yet in the
# cache), imported (results in the cache; the batch is done with).
SUBMITTED, ENDED, IMPORTED = "submitted", "ended", "imported"


@dataclass
class LedgerBatch:
    batch_id: str
    provider: str
    model_id: str
    base_url: str
    keys: list[str]
    requests: str  # the request sidecar, relative to the batch folder
    submitted_at: float
    # custom_id -> cache key, for the keys a provider could not take as ids (else empty)
    id_map: dict[str, str] = field(default_factory=dict)
    state: str = SUBMITTED
    status: str = ""
    counts: dict[str, int] = field(default_factory=dict)

    def key_of(self, custom_id: str) -> str:
        return self.id_map.get(custom_id, custom_id)

    def custom_ids(self) -> dict[str, str]:
        """custom_id -> cache key for every request of the batch."""
        reverse = {key: custom_id for custom_id, key in self.id_map.items()}
        return {reverse.get(key, key): key for key in self.keys}


class Ledger:
    def __init__(self, batch_dir: Path) -> None:
        self.batch_dir = Path(batch_dir)
        self.path = self.batch_dir / LEDGER_NAME

    def files_dir(self) -> Path:
        return self.batch_dir / FILES_FOLDER

    def append(self, record: dict[str, Any]) -> None:
        """Append one record durably (one write, then fsync)."""
        self.batch_dir.mkdir(parents=True, exist_ok=True)
        data = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, data)
            while written < len(data):  # a short write (rare): finish the line
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)

    def record_submitted(self, batch: LedgerBatch) -> None:
        record = {
            "batch_id": batch.batch_id,
            "provider": batch.provider,
            "model_id": batch.model_id,
            "base_url": batch.base_url,
            "keys": batch.keys,
            "id_map": batch.id_map,
            "requests": batch.requests,
            "submitted_at": batch.submitted_at,
            "state": batch.state,
        }
        self.append(record)

    def update(self, batch: LedgerBatch, **changes: Any) -> None:
        """Record a change of state, status or counts (and apply it to `batch`)."""
        for name, value in changes.items():
            setattr(batch, name, value)
        self.append({"batch_id": batch.batch_id, "at": time.time(), **changes})

    def read(self) -> dict[str, LedgerBatch]:
        """Every batch in the ledger, by id, with its latest state, in submission order."""
        if not self.path.is_file():
            return {}
        merged: dict[str, dict[str, Any]] = {}
        for text in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(text)
                batch_id = str(record["batch_id"])
            except (ValueError, KeyError, TypeError):
                continue  # a torn line from a run killed mid-append
            merged.setdefault(batch_id, {}).update(record)
        batches: dict[str, LedgerBatch] = {}
        names = set(LedgerBatch.__dataclass_fields__)
        for batch_id, record in merged.items():
            record.pop("at", None)
            if "keys" not in record:
                continue  # updates of a batch whose submission line was torn
            batches[batch_id] = LedgerBatch(**{k: v for k, v in record.items() if k in names})
        return batches

    def requests_of(self, batch: LedgerBatch) -> dict[str, Exported]:
        """Cache key -> model and request JSON, from the batch's sidecar."""
        return read_sidecar(self.batch_dir / batch.requests)
