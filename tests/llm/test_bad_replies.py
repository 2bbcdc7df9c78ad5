"""Well-formed but unusable replies (NaN or positive logprobs, negative usage, replies far beyond
max_tokens) are retried like malformed bodies, then fail with one line, and never reach the cache;
a cache entry that no longer loads is a miss with a warning, not a crash (issue 18)."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from persona_testbed.cli.app import main
from persona_testbed.llm import ChatResult, ClientSettings, LLMCallError, LLMClient, Message
from persona_testbed.llm.cache import ResponseCache
from persona_testbed.testing.loopback import LoopbackServer

BAD_KINDS = ["nan_logprob", "positive_logprob", "negative_usage", "oversized"]


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(latency=0.0) as running:
        yield running


@pytest.fixture(autouse=True)
def clean(server: LoopbackServer) -> None:
    server.reset()


def client_for(server: LoopbackServer, cache: Path, **overrides: object) -> LLMClient:
    options: dict[str, object] = {
        "cache_path": cache,
        "base_url": server.base_url,
        "show_progress": False,
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.02,
        "max_retries": 2,
        "timeout_s": 5.0,
    }
    options.update(overrides)
    return LLMClient.from_spec("openai:loopback", ClientSettings.model_validate(options))


def logprob_request(client: LLMClient, text: str) -> object:
    return client.request([Message(role="user", content=text)], max_tokens=8, top_logprobs=5)


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_a_bad_reply_is_retried_and_the_good_one_is_cached(
    server: LoopbackServer, tmp_path: Path, kind: str
) -> None:
    server.add_faults([{"contains": "q", "kind": kind, "times": 1}])
    client = client_for(server, tmp_path / "c.sqlite")
    request = client.request([Message(role="user", content="q")], max_tokens=8, top_logprobs=5)
    result = client.complete(request)
    assert server.stats()["by_prompt"]["q"] == 2  # the bad reply, then the retry
    assert result.prompt_tokens >= 0 and result.completion_tokens <= 8
    assert result.top_logprobs and all(
        math.isfinite(t.logprob) and t.logprob <= 0 for t in result.top_logprobs
    )
    # What was cached loads back unchanged.
    again = client.complete(request)
    assert again.cached and again.top_logprobs == result.top_logprobs
    assert server.stats()["total"] == 2
    client.close()


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_a_server_that_keeps_sending_bad_replies_fails_with_one_clear_line(
    server: LoopbackServer, tmp_path: Path, kind: str
) -> None:
    server.add_faults([{"contains": "q", "kind": kind, "times": 100}])
    cache = tmp_path / "c.sqlite"
    client = client_for(server, cache)
    request = client.request([Message(role="user", content="q")], max_tokens=8, top_logprobs=5)
    with pytest.raises(LLMCallError) as caught:
        client.complete(request)
    message = str(caught.value)
    assert "\n" not in message and "malformed response body" in message
    assert "3 attempts" in message
    assert client.usage["openai:loopback"].cost_usd == 0.0  # never a negative cost
    client.close()
    assert sqlite3.connect(cache).execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 0


def test_negative_usage_never_offsets_spend_under_max_cost(
    server: LoopbackServer, tmp_path: Path
) -> None:
    from persona_testbed.llm import PriceTable
    from persona_testbed.llm.pricing import Price

    server.add_faults([{"kind": "negative_usage", "times": 100}])
    prices = PriceTable({"loopback": Price(input_per_million=1e6, output_per_million=1e6)})
    client = client_for(server, tmp_path / "c.sqlite", prices=prices, max_cost_usd=1000.0)
    with pytest.raises(LLMCallError, match=r"usage\.prompt_tokens is negative"):
        client.complete(client.request([Message(role="user", content="spend")], max_tokens=4))
    assert client.usage["openai:loopback"].cost_usd == 0.0
    client.close()


def test_an_entry_that_does_not_load_is_a_miss_with_a_warning(
    server: LoopbackServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache_path = tmp_path / "c.sqlite"
    client = client_for(server, cache_path)
    request = client.request([Message(role="user", content="q")], max_tokens=8, top_logprobs=5)
    key = request.cache_key(client.backend.identity)
    client.close()
    # What an older version stored for a NaN logprob: null, which does not load.
    poisoned = json.dumps(
        {"text": "A", "top_logprobs": [{"token": "A", "logprob": None}], "model": "x"}
    )
    db = sqlite3.connect(cache_path)
    db.execute(
        "INSERT INTO responses VALUES (?, ?, ?, ?, ?)", (key, "openai:loopback", "{}", poisoned, 0)
    )
    db.commit()
    db.close()
    client = client_for(server, cache_path)
    result = client.complete(request)
    assert not result.cached and server.stats()["total"] == 1
    assert "ignoring an unreadable cached response" in capsys.readouterr().err
    assert client.complete(request).cached  # the fresh answer replaced the bad entry
    client.close()


def test_the_cache_refuses_what_it_could_not_read_back(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.sqlite")
    bad = ChatResult.model_construct(text="x", prompt_tokens=-5, completion_tokens=0)
    with pytest.raises(ValueError, match="cannot be read back"):
        cache.put("k", "m", "{}", bad)
    assert cache.get("k") is None
    cache.close()


def test_complete_cli_survives_a_nan_logprob_reply(
    server: LoopbackServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the real CLI: the NaN reply is retried; the cache holds only the good answer, so
    the second run replays it instead of crashing on a poisoned entry."""
    requests = tmp_path / "requests.jsonl"
    lines = [{"messages": [{"role": "user", "content": "pick"}], "max_tokens": 1, "logprobs": True}]
    requests.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    output = tmp_path / "out.jsonl"
    server.add_faults([{"kind": "nan_logprob", "times": 1}])
    args = ["complete", "--model", "openai:loopback", "--base-url", server.base_url]
    args += ["--input", str(requests), "--output", str(output), "--no-progress"]
    assert main(args) == 0
    assert main(args) == 0
    assert server.stats()["total"] == 2  # one bad reply, one retry; the re-run is all cache
    record = json.loads(output.read_text())
    assert record["cached"] is True
    assert all(math.isfinite(t["logprob"]) for t in record["top_logprobs"])
    assert "NaN" not in output.read_text()


def test_complete_cli_refuses_max_tokens_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_text('{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}\n')
    args = ["complete", "--model", "openai:loopback", "--base-url", "http://127.0.0.1:9/v1"]
    args += ["--input", str(requests), "--output", str(tmp_path / "o.jsonl")]
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "requests.jsonl:1: max_tokens" in err
