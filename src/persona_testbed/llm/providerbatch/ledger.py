"""The ledger of submitted provider batches: an append-only JSONL file in the batch folder.

Each submitted batch gets one record when its provider accepted it (batch id, provider, model,
endpoint, the cache keys it holds, the sidecar with their requests, when); later lines for the
same batch id update its state (polled counts, `ended`, `imported`). Every line is appended with
one write on an O_APPEND descriptor and fsynced before the run goes on, so a run killed at any
point finds every batch it submitted on restart and polls or imports it instead of submitting its
requests again. A torn last line (a kill mid-write) is skipped when read, and the next line
written starts on a line of its own.

Before a batch is submitted, an intent line (`submitting`: the label it goes up under, with its
keys) is appended: a run killed after the provider accepted the batch but before its record was
written leaves only that line, and the restart asks the provider for the batch by its label
(`unconfirmed`) instead of submitting its requests again.
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
    label: str = ""  # the name it was submitted under (its intent line's `submitting`)

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
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                # A torn last line (a run killed mid-write): end it, or this record would be
                # glued to it and skipped with it when read.
                data = b"\n" + data
            written = os.write(fd, data)
            while written < len(data):  # a short write (rare): finish the line
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)

    def record_submitting(self, batch: LedgerBatch) -> None:
        """The intent line, before `batch` (no batch id yet) goes to the provider."""
        self.append({"submitting": batch.label, **self._fields(batch)})

    def record_abandoned(self, label: str) -> None:
        """The provider never got the batch of this intent: its requests go out afresh."""
        self.append({"submitting": label, "abandoned": True, "at": time.time()})

    def record_submitted(self, batch: LedgerBatch) -> None:
        self.append({"batch_id": batch.batch_id, **self._fields(batch), "state": batch.state})

    @staticmethod
    def _fields(batch: LedgerBatch) -> dict[str, Any]:
        return {
            "provider": batch.provider,
            "model_id": batch.model_id,
            "base_url": batch.base_url,
            "keys": batch.keys,
            "id_map": batch.id_map,
            "requests": batch.requests,
            "submitted_at": batch.submitted_at,
            "label": batch.label,
        }

    def update(self, batch: LedgerBatch, **changes: Any) -> None:
        """Record a change of state, status or counts (and apply it to `batch`)."""
        for name, value in changes.items():
            setattr(batch, name, value)
        self.append({"batch_id": batch.batch_id, "at": time.time(), **changes})

    def _records(self, field: str) -> dict[str, dict[str, Any]]:
        """The lines that have `field` (batch_id, submitting), merged by its value in order."""
        if not self.path.is_file():
            return {}
        merged: dict[str, dict[str, Any]] = {}
        for text in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(text)
                value = str(record[field])
            except (ValueError, KeyError, TypeError):
                continue  # a torn line from a run killed mid-append, or another kind of line
            merged.setdefault(value, {}).update(record)
        return merged

    def read(self) -> dict[str, LedgerBatch]:
        """Every batch in the ledger, by id, with its latest state, in submission order."""
        batches: dict[str, LedgerBatch] = {}
        for batch_id, record in self._records("batch_id").items():
            if "keys" not in record:
                continue  # updates of a batch whose submission line was torn
            batches[batch_id] = _batch(record)
        return batches

    def unconfirmed(self) -> list[LedgerBatch]:
        """The intents no batch record followed (batch_id ""): each one's batch may or may not
        have reached the provider before the run that wrote it died."""
        labels = {batch.label for batch in self.read().values()}
        return [
            _batch({**record, "batch_id": ""})
            for label, record in self._records("submitting").items()
            if label not in labels and "keys" in record and not record.get("abandoned")
        ]

    def requests_of(self, batch: LedgerBatch) -> dict[str, Exported]:
        """Cache key -> model and request JSON, from the batch's sidecar."""
        return read_sidecar(self.batch_dir / batch.requests)


def _batch(record: dict[str, Any]) -> LedgerBatch:
    names = set(LedgerBatch.__dataclass_fields__)
    return LedgerBatch(**{k: v for k, v in record.items() if k in names})
