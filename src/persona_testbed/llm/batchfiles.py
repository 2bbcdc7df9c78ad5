"""Offline batch files: requests the cache lacks, written for vLLM `run-batch` or any service that
takes the OpenAI Batch format, and that service's output imported back into the cache.

The response cache stays the system of record: an imported reply is stored under the key the
client computes for its request, so the re-run of a stage replays it like any cached reply.

For each exported wave, three files share one stem in the batch folder:
  STEM.batch.jsonl     the OpenAI Batch input ({"custom_id": cache key, "method", "url", "body"})
  STEM.requests.jsonl  custom_id -> model id and full request JSON (what ResponseCache.put needs)
  STEM.output.jsonl    the suggested name for the service's output (`persona batch import` reads)
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from persona_testbed.errors import InputError, PersonaError
from persona_testbed.llm.backends.openai_http import TransientError, parse_completion
from persona_testbed.llm.cache import ResponseCache
from persona_testbed.llm.types import ChatRequest
from persona_testbed.run.atomic import write_text_atomic

BATCH_URL = "/v1/chat/completions"
INPUT_SUFFIX = ".batch.jsonl"
REQUESTS_SUFFIX = ".requests.jsonl"
OUTPUT_SUFFIX = ".output.jsonl"


class RequestDeferred(Exception):
    """Raised inside the client for a request held for export; never a PersonaError, so no
    stage mistakes it for a failed call (the client turns the batch into BatchExportedError)."""


class BatchExportedError(PersonaError):
    """The requests the cache lacks were written to a batch file: run it, import, run again."""

    def __init__(self, count: int, model_id: str, path: Path, served_model: str) -> None:
        output = batch_output_path(path)
        super().__init__(
            f"{count} requests of model {model_id} written to {path} for a batch run; run them "
            f"(e.g. `vllm run-batch -i {path} -o {output} --model {served_model}`), then "
            f"`persona batch import {output}` and run this command again"
        )
        self.count = count
        self.path = path


@dataclass(frozen=True)
class PendingRequest:
    """A request held for export: its full JSON (for the cache) and its OpenAI body."""

    request_json: str
    body: dict[str, Any]


def batch_output_path(input_path: Path) -> Path:
    return input_path.with_name(input_path.name.removesuffix(INPUT_SUFFIX) + OUTPUT_SUFFIX)


def write_batch(batch_dir: Path, model_id: str, pending: Mapping[str, PendingRequest]) -> Path:
    """Write the batch input and its request sidecar; the name holds the model and a hash of
    the keys, so exporting the same wave twice rewrites the same file."""
    keys = sorted(pending)
    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:10]
    safe_model = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id).strip("_") or "model"
    stem = f"{safe_model}-{digest}"
    batch_dir.mkdir(parents=True, exist_ok=True)
    lines, sidecar = [], []
    for key in keys:
        item = pending[key]
        line = {"custom_id": key, "method": "POST", "url": BATCH_URL, "body": item.body}
        lines.append(json.dumps(line, ensure_ascii=False))
        record = {"custom_id": key, "model": model_id, "request": item.request_json}
        sidecar.append(json.dumps(record, ensure_ascii=False))
    # The sidecar first: an input file without one could not be imported.
    write_text_atomic(batch_dir / f"{stem}{REQUESTS_SUFFIX}", "\n".join(sidecar) + "\n")
    path = batch_dir / f"{stem}{INPUT_SUFFIX}"
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


@dataclass(frozen=True)
class Exported:
    model_id: str
    request_json: str


def read_sidecars(folders: list[Path]) -> dict[str, Exported]:
    """custom_id -> what was exported under it, from every request sidecar in `folders`."""
    known: dict[str, Exported] = {}
    for folder in dict.fromkeys(folders):
        for path in sorted(folder.glob(f"*{REQUESTS_SUFFIX}")) if folder.is_dir() else ():
            known |= read_sidecar(path)
    return known


@dataclass
class ImportSummary:
    imported: int = 0
    failed: int = 0
    already_cached: int = 0
    unknown: int = 0

    def line(self, path: Path) -> str:
        return (
            f"{path}: {self.imported} imported, {self.failed} failed (exported again by the "
            f"next run), {self.already_cached} already cached, {self.unknown} unknown keys"
        )


def import_batch(output: Path, cache: ResponseCache, batch_dirs: list[Path]) -> ImportSummary:
    """Put each successful reply of a batch output file in the cache under its custom_id.

    A failed line (an error, a non-200 status, a body that is no usable completion) is counted
    and left out; as it is not cached, the next run exports it again. A custom_id no sidecar
    knows is counted too: its request JSON, which the cache stores, is unknown."""
    try:
        lines = output.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{output}: cannot read ({exc})") from None
    known = read_sidecars([*batch_dirs, output.parent])
    parsed: list[tuple[str, dict[str, Any] | None]] = []
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        parsed.append(_output_line(output, number, text))
    summary = ImportSummary()
    cached = cache.keys()
    for key, body in parsed:
        exported = known.get(key)
        if exported is None:
            summary.unknown += 1
        elif key in cached:
            summary.already_cached += 1
        elif body is None:
            summary.failed += 1
        else:
            request = ChatRequest.model_validate_json(exported.request_json)
            try:
                result = parse_completion(json.dumps(body), request, exported.model_id)
            except TransientError:
                summary.failed += 1
                continue
            cache.put(key, exported.model_id, exported.request_json, result)
            cached.add(key)
            summary.imported += 1
    return summary


def _output_line(path: Path, number: int, text: str) -> tuple[str, dict[str, Any] | None]:
    """(custom_id, the completion body or None for a failed request); a line that is not an
    OpenAI Batch output record is an InputError naming file and line."""
    try:
        record = json.loads(text)
        key = record["custom_id"]
        if not isinstance(key, str):
            raise TypeError("custom_id is not text")
        response = record.get("response")
        if record.get("error") or not isinstance(response, dict):
            return key, None
        body = response.get("body")
        if response.get("status_code") != 200 or not isinstance(body, dict):
            return key, None
        return key, body
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        why = "not JSON" if isinstance(exc, ValueError) else f"no custom_id ({exc})"
        raise InputError(f"{path}:{number}: not an OpenAI Batch output line: {why}") from None


@dataclass(frozen=True)
class BatchFileStatus:
    path: Path
    requests: int
    pending: int


def batch_status(batch_dir: Path, cache: ResponseCache) -> list[BatchFileStatus]:
    """Every batch input file in `batch_dir` with how many of its requests the cache lacks."""
    cached = cache.keys()
    statuses = []
    for sidecar in sorted(batch_dir.glob(f"*{REQUESTS_SUFFIX}")) if batch_dir.is_dir() else ():
        keys = set(read_sidecar(sidecar))
        path = sidecar.with_name(sidecar.name.removesuffix(REQUESTS_SUFFIX) + INPUT_SUFFIX)
        statuses.append(BatchFileStatus(path, len(keys), len(keys - cached)))
    return statuses


def read_sidecar(path: Path) -> dict[str, Exported]:
    known: dict[str, Exported] = {}
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
            known[str(record["custom_id"])] = Exported(str(record["model"]), str(record["request"]))
        except (ValueError, KeyError, TypeError):
            raise InputError(f"{path}:{number}: not a batch request record") from None
    return known
