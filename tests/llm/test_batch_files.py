"""Offline batch files: `execution: export` writes what the cache lacks in OpenAI Batch format,
an imported batch output fills the cache, and the re-run replays it wave by wave."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from persona_testbed.errors import InputError, PersonaError
from persona_testbed.llm import ChatResult, ClientSettings, LLMClient, Message, ResponseCache
from persona_testbed.llm.batchfiles import (
    BatchExportedError,
    batch_output_path,
    batch_status,
    import_batch,
)
from persona_testbed.llm.settings import ExecutionSetting
from persona_testbed.testing.loopback import LoopbackServer

QUESTIONS = ["apples", "pears", "plums"]


def client_for(
    server: LoopbackServer, cache: Path, execution: ExecutionSetting = "online"
) -> LLMClient:
    settings = ClientSettings(
        cache_path=cache,
        base_url=server.base_url,
        show_progress=False,
        max_retries=0,
        timeout_s=10.0,
        execution=execution,
    )
    return LLMClient.from_spec("openai:loopback", settings)


def two_waves(client: LLMClient) -> list[ChatResult]:
    """A base answer per question (one asked twice), then a critique of each base answer."""
    base = client.complete_batch(
        [client.request([Message(role="user", content=f"about {q}")]) for q in QUESTIONS]
        + [client.request([Message(role="user", content="about apples")])]
        + [client.request([Message(role="user", content="A or B?")], max_tokens=1, top_logprobs=5)]
    )
    critiques = client.complete_batch(
        [client.request([Message(role="user", content=f"critique {r.text}")]) for r in base[:3]]
    )
    return base + critiques


def serve_batch(server: LoopbackServer, batch: Path, *, fail: frozenset[int] = frozenset()) -> Path:
    """What vLLM run-batch does: answer each line's body, write one output line per request
    (lines numbered in `fail` come back as failed requests)."""
    out = []
    with httpx.Client(trust_env=False, timeout=10.0) as http:
        for number, text in enumerate(batch.read_text().splitlines()):
            line = json.loads(text)
            assert line["method"] == "POST" and line["url"] == "/v1/chat/completions"
            record: dict[str, Any] = {"id": f"batch-{number}", "custom_id": line["custom_id"]}
            if number in fail:
                record |= {"response": {"status_code": 500, "body": {}}, "error": None}
            else:
                reply = http.post(f"{server.base_url}/chat/completions", json=line["body"])
                record |= {"response": {"status_code": 200, "body": reply.json()}, "error": None}
            out.append(json.dumps(record))
    output = batch_output_path(batch)
    output.write_text("\n".join(out) + "\n")
    return output


def export(client: LLMClient) -> BatchExportedError:
    with pytest.raises(BatchExportedError) as caught:
        two_waves(client)
    return caught.value


def comparable(results: list[ChatResult]) -> list[tuple[Any, ...]]:
    return [(r.text, r.prompt_tokens, r.completion_tokens, r.top_logprobs) for r in results]


def test_export_import_rerun_advances_wave_by_wave_to_the_online_result(tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    with LoopbackServer() as server:
        online = two_waves(client_for(server, tmp_path / "online.sqlite"))
        server.reset()

        first = export(client_for(server, cache, "export"))
        assert server.stats()["total"] == 0  # nothing was sent
        assert first.count == 4  # the repeated question is exported once
        assert first.path.parent == tmp_path / "batches" and "loopback" in first.path.name
        assert f"4 requests of model openai:loopback written to {first.path}" in str(first)
        assert "vllm run-batch" in str(first) and "persona batch import" in str(first)
        lines = [json.loads(t) for t in first.path.read_text().splitlines()]
        assert len({line["custom_id"] for line in lines}) == 4
        assert all(line["body"]["model"] == "loopback" for line in lines)

        store = ResponseCache(cache)
        summary = import_batch(serve_batch(server, first.path), store, [tmp_path / "batches"])
        assert (summary.imported, summary.failed, summary.unknown) == (4, 0, 0)
        assert {line["custom_id"] for line in lines} <= store.keys()
        assert [s.pending for s in batch_status(tmp_path / "batches", store)] == [0]

        second = export(client_for(server, cache, "export"))  # wave one replays, wave two out
        assert second.count == 3 and second.path != first.path
        assert import_batch(serve_batch(server, second.path), store, []).imported == 3
        store.close()

        before = server.stats()["total"]
        final = two_waves(client_for(server, cache, "export"))
        assert server.stats()["total"] == before  # the whole flow from the cache
    assert comparable(final) == comparable(online)
    assert final[4].top_logprobs is not None


def test_failed_and_unknown_lines_are_reported_and_failures_exported_again(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "cache.sqlite"
    with LoopbackServer() as server:
        first = export(client_for(server, cache, "export"))
        output = serve_batch(server, first.path, fail=frozenset({1}))
        stranger = {"custom_id": "f" * 64, "response": {"status_code": 200, "body": {}}}
        errored = {"custom_id": "e" * 64, "response": None, "error": {"message": "boom"}}
        with output.open("a") as handle:
            handle.write(json.dumps(stranger) + "\n" + json.dumps(errored) + "\n")
        store = ResponseCache(cache)
        summary = import_batch(output, store, [])
        assert (summary.imported, summary.failed, summary.unknown) == (3, 1, 2)
        again = import_batch(output, store, [])
        assert (again.imported, again.already_cached, again.failed) == (0, 3, 1)
        assert "0 imported, 1 failed" in again.line(output)
        failed_key = json.loads(first.path.read_text().splitlines()[1])["custom_id"]
        store.close()

        retry = export(client_for(server, cache, "export"))
        assert retry.count == 1
        assert json.loads(retry.path.read_text())["custom_id"] == failed_key


def test_a_malformed_output_line_names_file_and_line(tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    output.write_text('{"custom_id": "k", "response": null, "error": "x"}\n{"truncated\n')
    store = ResponseCache(tmp_path / "cache.sqlite")
    with pytest.raises(InputError, match=rf"^{output}:2: not an OpenAI Batch output line"):
        import_batch(output, store, [])
    store.close()


def test_export_needs_the_cache(tmp_path: Path) -> None:
    settings = ClientSettings(cache_path=None, execution="export", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(PersonaError, match="needs the response cache"):
        LLMClient.from_spec("openai:loopback", settings)


def test_the_run_file_and_the_options_set_the_execution(tmp_path: Path) -> None:
    from persona_testbed.cli.options import ClientOptions
    from persona_testbed.pipeline.config import LLMSection

    section = LLMSection(execution="export", batch_dir=tmp_path / "b", cache=tmp_path / "c.db")
    settings = section.settings()
    assert settings.execution == "export" and settings.resolved_batch_dir() == tmp_path / "b"
    options = ClientOptions(execution="export", cache=tmp_path / "c.db").settings()
    assert options.execution == "export" and options.resolved_batch_dir() == tmp_path / "batches"
