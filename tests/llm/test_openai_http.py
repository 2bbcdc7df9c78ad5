"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1 with injected faults."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from persona_testbed.llm import ClientSettings, LLMCallError, LLMClient, Message
from persona_testbed.testing.loopback import LoopbackServer


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(latency=0.0) as running:
        yield running


@pytest.fixture(autouse=True)
def clean(server: LoopbackServer) -> None:
    server.reset()


def client_for(server: LoopbackServer, tmp_path: Path, **overrides: object) -> LLMClient:
    options: dict[str, object] = {
        "cache_path": tmp_path / "cache.sqlite",
        "base_url": server.base_url,
        "show_progress": False,
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.05,
        "max_retries": 3,
        "timeout_s": 2.0,
    }
    options.update(overrides)
    return LLMClient.from_spec("openai:loopback", ClientSettings.model_validate(options))


def ask(client: LLMClient, text: str) -> str:
    return client.complete(client.request([Message(role="user", content=text)])).text


def test_completion_text_and_token_usage(server: LoopbackServer, tmp_path: Path) -> None:
    client = client_for(server, tmp_path)
    assert ask(client, "hello there") == "echo: hello there"
    usage = client.usage["openai:loopback"]
    assert usage.calls == 1 and usage.prompt_tokens == 2 and usage.completion_tokens == 3


def test_429_with_retry_after_is_honoured(server: LoopbackServer, tmp_path: Path) -> None:
    server.add_faults([{"contains": "rate", "kind": "429", "times": 2, "retry_after": 0.3}])
    client = client_for(server, tmp_path)
    started = time.monotonic()
    assert ask(client, "rate limited") == "echo: rate limited"
    assert time.monotonic() - started >= 0.6  # two waits of the server's Retry-After
    assert server.stats()["by_prompt"]["rate limited"] == 3


@pytest.mark.parametrize("kind", ["500", "503", "drop", "malformed"])
def test_transient_faults_are_retried(server: LoopbackServer, tmp_path: Path, kind: str) -> None:
    server.add_faults([{"contains": "flaky", "kind": kind, "times": 2}])
    client = client_for(server, tmp_path)
    assert ask(client, "flaky call") == "echo: flaky call"
    assert server.stats()["by_prompt"]["flaky call"] == 3


def test_slow_reply_times_out_and_is_retried(server: LoopbackServer, tmp_path: Path) -> None:
    server.add_faults([{"contains": "slow", "kind": "slow", "times": 1, "delay": 1.0}])
    client = client_for(server, tmp_path, timeout_s=0.3)
    assert ask(client, "slow call") == "echo: slow call"
    assert server.stats()["by_prompt"]["slow call"] == 2


def test_after_the_last_retry_one_clear_error_names_model_endpoint_cause(
    server: LoopbackServer, tmp_path: Path
) -> None:
    server.add_faults([{"contains": "down", "kind": "500", "times": 100}])
    client = client_for(server, tmp_path, max_retries=2)
    with pytest.raises(LLMCallError) as caught:
        ask(client, "down")
    message = str(caught.value)
    assert "openai:loopback" in message
    assert server.base_url in message
    assert "HTTP 500" in message and "3 attempts" in message
    assert server.stats()["by_prompt"]["down"] == 3


def test_other_4xx_fail_fast_without_retrying(server: LoopbackServer, tmp_path: Path) -> None:
    server.add_faults([{"contains": "bad", "kind": "401", "times": 5}])
    client = client_for(server, tmp_path)
    with pytest.raises(LLMCallError, match="HTTP 401"):
        ask(client, "bad key")
    assert server.stats()["by_prompt"]["bad key"] == 1


def test_unreachable_endpoint_gives_a_clear_error(tmp_path: Path) -> None:
    settings = ClientSettings(
        cache_path=None,
        base_url="http://127.0.0.1:9/v1",
        max_retries=1,
        backoff_initial_s=0.01,
        show_progress=False,
    )
    client = LLMClient.from_spec("openai:nothing", settings)
    with pytest.raises(LLMCallError, match=r"127\.0\.0\.1:9.*connection failed"):
        ask(client, "anyone?")


class Answer(BaseModel):
    stance: str
    confidence: int


def test_structured_output_uses_json_schema_response_format(
    server: LoopbackServer, tmp_path: Path
) -> None:
    client = client_for(server, tmp_path)
    [result] = client.structured_batch(
        [client.request([Message(role="user", content="give me json")])], Answer
    )
    assert result.value is not None and isinstance(result.value.confidence, int)


def test_choose_over_http_uses_first_token_logprobs(server: LoopbackServer, tmp_path: Path) -> None:
    server.set_rules([{"contains": "pick", "reply": "B", "logprobs": {"A": -2.0, "B": -0.2}}])
    client = client_for(server, tmp_path)
    [choice] = client.choose_batch([([Message(role="user", content="pick A or B")], ["A", "B"])])
    assert choice.probs[1] > 0.8
    assert server.stats()["total"] == 1


def test_many_concurrent_requests_keep_their_order(server: LoopbackServer, tmp_path: Path) -> None:
    client = client_for(server, tmp_path, concurrency=32)
    requests = [client.request([Message(role="user", content=f"q{i}")]) for i in range(200)]
    results = client.complete_batch(requests)
    assert [r.text for r in results] == [f"echo: q{i}" for i in range(200)]
    assert server.stats()["total"] == 200
