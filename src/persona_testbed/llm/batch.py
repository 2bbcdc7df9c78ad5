"""`persona complete`: a JSONL file of OpenAI-style chat requests through the shared engine.

Results are written in input order, atomically, once all are done; every completed call is in
the response cache as soon as it finishes, so a killed run resumes without repeating any.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from persona_testbed.errors import InputError
from persona_testbed.llm.client import LLMClient
from persona_testbed.llm.types import ChatRequest, ChatResult, Message
from persona_testbed.run.atomic import dumps_strict, prepare_output_file, write_text_atomic


class BatchLine(BaseModel):
    """One input line: an OpenAI chat request. `model` is ignored (--model decides)."""

    messages: list[Message]
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = Field(256, ge=1)
    seed: int | None = 0
    stop: str | list[str] | None = None
    response_format: dict[str, Any] | None = None
    logprobs: bool = False
    top_logprobs: int | None = None
    custom_id: str | None = None
    sample_index: int = 0


def read_requests(path: Path, client: LLMClient) -> tuple[list[ChatRequest], list[str | None]]:
    requests: list[ChatRequest] = []
    ids: list[str | None] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            line = BatchLine.model_validate_json(text)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"]) or "line"
            raise InputError(f"{path}:{number}: {where}: {error['msg']}") from None
        stop = [line.stop] if isinstance(line.stop, str) else list(line.stop or [])
        top = line.top_logprobs if line.top_logprobs else (5 if line.logprobs else None)
        requests.append(
            client.request(
                line.messages,
                temperature=line.temperature,
                top_p=line.top_p,
                max_tokens=line.max_tokens,
                seed=line.seed,
                stop=tuple(stop),
                response_format=line.response_format,
                top_logprobs=top,
                sample_index=line.sample_index,
            )
        )
        ids.append(line.custom_id)
    if not requests:
        raise InputError(f"{path}: no requests (expected one JSON chat request per line)")
    return requests, ids


def result_record(index: int, custom_id: str | None, result: ChatResult) -> dict[str, Any]:
    record: dict[str, Any] = {"index": index}
    if custom_id is not None:
        record["custom_id"] = custom_id
    record.update(
        model=result.model,
        text=result.text,
        finish_reason=result.finish_reason,
        usage={
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
        },
        cached=result.cached,
    )
    if result.top_logprobs is not None:
        record["top_logprobs"] = [t.model_dump() for t in result.top_logprobs]
    return record


def run_batch(client: LLMClient, input_path: Path, output_path: Path) -> int:
    requests, ids = read_requests(input_path, client)
    prepare_output_file(output_path)  # before any call: a bad --output must not cost anything
    results = client.complete_batch(requests, description="complete")
    lines = (
        dumps_strict(result_record(i, ids[i], r), ensure_ascii=False) for i, r in enumerate(results)
    )
    write_text_atomic(output_path, "\n".join(lines) + "\n")
    return len(results)
