"""`execution: batch`: the waves a job needs go to a provider's batch API through its SDK (OpenAI
Batch against the loopback server's files/batches endpoints, Anthropic Message Batches against
the loopback Anthropic server), and end as the online run does; the ledger keeps a restarted run
from submitting anything twice; failures and expiry are retried or sent online."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from persona_testbed.errors import PersonaError
from persona_testbed.llm import (
    ChatResult,
    ClientSettings,
    LLMClient,
    Message,
    OrderedChoice,
    PriceTable,
)
from persona_testbed.llm.client import BudgetExceededError
from persona_testbed.llm.pricing import Price
from persona_testbed.llm.providerbatch.anthropic_batch import anthropic_custom_id
from persona_testbed.llm.providerbatch.executor import BatchPendingError
from persona_testbed.llm.providerbatch.ledger import IMPORTED, Ledger
from persona_testbed.testing.loopback import LoopbackServer
from persona_testbed.testing.loopback_anthropic import AnthropicLoopback
from tests.llm.test_batch_files import comparable, two_waves

pytest.importorskip("openai")
pytest.importorskip("anthropic")

POLL = 0.05


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as running:
        yield running


@pytest.fixture(autouse=True)
def clean(server: LoopbackServer) -> None:
    server.reset()


def batch_client(server: LoopbackServer, tmp_path: Path, **overrides: Any) -> LLMClient:
    options: dict[str, Any] = {
        "cache_path": tmp_path / "cache.sqlite",
        "base_url": server.base_url,
        "show_progress": False,
        "max_retries": 0,
        "timeout_s": 10.0,
        "execution": "batch",
        "batch": {"poll_s": POLL},
    }
    for name in [name for name in overrides if name.startswith("batch_") and name != "batch_dir"]:
        options["batch"][name.removeprefix("batch_")] = overrides.pop(name)
    options.update(overrides)
    return LLMClient.from_spec("openai:loopback", ClientSettings.model_validate(options))


def online_client(server: LoopbackServer, cache: Path) -> LLMClient:
    settings = ClientSettings(
        cache_path=cache, base_url=server.base_url, show_progress=False, max_retries=0
    )
    return LLMClient.from_spec("openai:loopback", settings)


def submissions(server: LoopbackServer) -> list[int]:
    return list(server.batch_stats()["submitted"].values())


class Verdict(BaseModel):
    verdict: str
    score: int


def render(ordered: Sequence[str]) -> list[Message]:
    return [Message(role="user", content=f"Which? A: {ordered[0]} B: {ordered[1]}")]


def mixed_job(client: LLMClient) -> list[Any]:
    """Two dependent waves of plain requests, structured replies, and choices in both orders
    (first-token log-probabilities through the batch)."""
    texts = [r.text for r in two_waves(client)]
    request = client.request([Message(role="user", content="rate the pears")])
    structured = client.structured_batch([request], Verdict)
    item = OrderedChoice(render=render, options=("tea", "coffee"), labels=("A", "B"))
    choices = client.choose_both_orders_batch([item])
    return [*texts, structured[0].value, choices[0].probs, choices[0].method]


def test_a_multi_wave_job_through_openai_batch_matches_the_online_run(
    server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import openai

    made: list[str] = []
    original = openai.AsyncOpenAI.__init__

    def spy(self: Any, *args: Any, **kwargs: Any) -> None:
        made.append(str(kwargs.get("base_url")))
        original(self, *args, **kwargs)

    monkeypatch.setattr(openai.AsyncOpenAI, "__init__", spy)
    online_client_ = online_client(server, tmp_path / "online.sqlite")
    online = mixed_job(online_client_)
    online_hits = online_client_.usage["openai:loopback"].cache_hits
    assert made == []  # the online path does not use the SDK
    served_online = server.stats()["total"]

    client = batch_client(server, tmp_path)
    batched = mixed_job(client)
    assert batched == online
    assert server.stats()["total"] == served_online  # no chat request: everything in batches
    stats = server.batch_stats()
    # base + critique, structured, choices: each a wave of its own batch
    assert len(stats["batches"]) == 4 and set(submissions(server)) == {1}
    # the openai SDK talked to the server (a batch create goes through a with_options copy,
    # whose base URL the SDK spells with a trailing slash)
    assert made and {url.rstrip("/") for url in made} == {server.base_url}
    ledger = Ledger(tmp_path / "batches").read()
    assert len(ledger) == 4 and all(b.state == IMPORTED for b in ledger.values())
    usage = client.usage["openai:loopback"]
    assert usage.calls == sum(len(b.keys) for b in ledger.values())
    assert usage.cache_hits == online_hits  # a replayed batch answer is no cache hit

    again = batch_client(server, tmp_path)  # everything cached: nothing submitted
    assert mixed_job(again) == online
    assert len(server.batch_stats()["batches"]) == 4


def test_a_batch_create_that_times_out_after_acceptance_is_found_not_submitted_again(
    server: LoopbackServer, tmp_path: Path
) -> None:
    # The server accepts each batch but answers the create only after the client's timeout:
    # a blind retry (the SDK's own) would start a second batch of the same requests.
    server.set_batch(delay=0.05, create_delay=1.5)
    client = batch_client(server, tmp_path, timeout_s=0.5, max_retries=2)
    texts = [r.text for r in two_waves(client)]
    online = [r.text for r in two_waves(online_client(server, tmp_path / "online.sqlite"))]
    assert texts == online
    assert len(server.batch_stats()["batches"]) == 2  # one per wave, none twice
    assert set(submissions(server)) == {1}


def test_a_small_request_limit_splits_a_wave_into_several_batches(
    server: LoopbackServer, tmp_path: Path
) -> None:
    client = batch_client(server, tmp_path, batch_max_requests=2)
    requests = [client.request([Message(role="user", content=f"q{i}")]) for i in range(5)]
    results = client.complete_batch(requests)
    assert [r.text for r in results] == [f"echo: q{i}" for i in range(5)]
    sizes = sorted(b["requests"] for b in server.batch_stats()["batches"].values())
    assert sizes == [1, 2, 2]
    by_bytes = batch_client(server, tmp_path / "bytes", batch_max_bytes=1)  # one line each
    by_bytes.complete_batch([by_bytes.request([Message(role="user", content="x y")])] * 1)
    assert len(server.batch_stats()["batches"]) == 4


def test_no_wait_submits_and_stops_and_the_rerun_picks_up_without_resubmitting(
    server: LoopbackServer, tmp_path: Path
) -> None:
    online = comparable(two_waves(online_client(server, tmp_path / "online.sqlite")))
    waves = 0
    while True:
        client = batch_client(server, tmp_path, batch_wait=False)
        try:
            results = two_waves(client)
            break
        except BatchPendingError as exc:
            waves += 1
            message = str(exc)
            assert "requests submitted to OpenAI Batch (batch_loopback_" in message
            assert message.endswith("run this command again to pick up the results")
            assert waves < 5
    assert waves == 2  # base, then critiques: each submitted, then picked up by the next run
    assert comparable(results) == online
    assert set(submissions(server)) == {1} and len(submissions(server)) == 7


def test_a_run_still_in_flight_under_no_wait_says_so_and_submits_nothing(
    server: LoopbackServer, tmp_path: Path
) -> None:
    server.set_batch(delay=30.0)
    requests = [Message(role="user", content="slow one")]
    client = batch_client(server, tmp_path, batch_wait=False)
    with pytest.raises(BatchPendingError, match="1 requests submitted"):
        client.complete_batch([client.request(requests)])
    again = batch_client(server, tmp_path, batch_wait=False)
    with pytest.raises(BatchPendingError, match=r"1 requests still in flight .* 0/1 done"):
        again.complete_batch([again.request(requests)])
    assert submissions(server) == [1]


def test_a_run_interrupted_while_polling_resumes_without_resubmitting(
    server: LoopbackServer, tmp_path: Path
) -> None:
    server.set_batch(delay=1.0)
    client = batch_client(server, tmp_path)
    requests = [client.request([Message(role="user", content=f"q{i}")]) for i in range(3)]
    ledger = Ledger(tmp_path / "batches")

    async def interrupted() -> None:
        job = asyncio.create_task(client.acomplete_many(requests))
        while not ledger.read():  # submitted: the run now polls; kill it there
            await asyncio.sleep(0.01)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job

    asyncio.run(interrupted())
    [batch] = Ledger(tmp_path / "batches").read().values()
    assert batch.state != IMPORTED and len(batch.keys) == 3
    restarted = batch_client(server, tmp_path)
    results = restarted.complete_batch(requests)
    assert [r.text for r in results] == ["echo: q0", "echo: q1", "echo: q2"]
    assert submissions(server) == [1, 1, 1] and len(server.batch_stats()["batches"]) == 1
    [batch] = Ledger(tmp_path / "batches").read().values()
    assert batch.state == IMPORTED and batch.counts["imported"] == 3


def test_failed_and_expired_lines_go_into_a_later_batch_and_are_reported(
    server: LoopbackServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.set_batch(fail=[{"contains": "q1", "times": 1}], expire=1, expire_answered=3)
    client = batch_client(server, tmp_path)
    requests = [client.request([Message(role="user", content=f"q{i}")]) for i in range(5)]
    results = client.complete_batch(requests)
    assert [r.text for r in results] == [f"echo: q{i}" for i in range(5)]
    # The first batch answers its first three lines (in key order) and lets two expire; q1
    # fails where it is answered. So either q1 failed and two others expired (three keys in a
    # second batch), or q1 was among the expired and fails in the second batch (a third batch).
    counts = sorted(submissions(server))
    assert counts in ([1, 1, 2, 2, 2], [1, 1, 1, 2, 3])
    statuses = [b["status"] for b in server.batch_stats()["batches"].values()]
    assert statuses == ["expired", "completed", *(["completed"] if counts[-1] == 3 else [])]
    err = capsys.readouterr().err
    assert re.search(r"\d imported, \d failed or expired", err)
    assert "batch_expired" in err and "Injected batch failure" in err
    assert "requests got no reply from OpenAI Batch" in err and "a later batch" in err


def test_failed_lines_can_go_online_instead(
    server: LoopbackServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.set_batch(fail=[{"contains": "q2", "times": 1}])
    client = batch_client(server, tmp_path, batch_failed="online")
    requests = [client.request([Message(role="user", content=f"q{i}")]) for i in range(3)]
    assert [r.text for r in client.complete_batch(requests)] == ["echo: q0", "echo: q1", "echo: q2"]
    assert submissions(server) == [1, 1, 1]
    assert server.stats()["by_prompt"] == {"q2": 1}  # asked online, once
    assert "sending them online" in capsys.readouterr().err


def test_a_request_that_keeps_failing_stops_after_the_most_attempts(
    server: LoopbackServer, tmp_path: Path
) -> None:
    server.set_batch(fail=[{"contains": "doomed", "times": 10}])
    client = batch_client(server, tmp_path, batch_max_attempts=2)
    with pytest.raises(PersonaError, match=r"1 requests .* got no reply in 2 OpenAI Batch batches"):
        client.complete_batch([client.request([Message(role="user", content="doomed")])])
    assert submissions(server) == [2]
    # A restart counts the attempts recorded in the ledger: it does not submit again.
    restarted = batch_client(server, tmp_path, batch_max_attempts=2)
    with pytest.raises(PersonaError, match="got no reply in 2"):
        restarted.complete_batch([restarted.request([Message(role="user", content="doomed")])])
    assert submissions(server) == [2]


def test_imported_replies_are_priced_at_the_batch_price(
    server: LoopbackServer, tmp_path: Path
) -> None:
    prices = PriceTable({"loopback": Price(input_per_million=1e6, output_per_million=2e6)})
    client = batch_client(server, tmp_path, prices=prices)
    [result] = client.complete_batch([client.request([Message(role="user", content="a b c")])])
    usage = client.usage["openai:loopback"]
    assert (usage.calls, usage.prompt_tokens, usage.completion_tokens) == (1, 3, 4)
    assert usage.cost_usd == pytest.approx(0.5 * (3 * 1.0 + 4 * 2.0))
    assert result.text == "echo: a b c"


def test_a_wave_that_could_pass_the_budget_is_not_submitted(
    server: LoopbackServer, tmp_path: Path
) -> None:
    prices = PriceTable({"loopback": Price(input_per_million=1e6, output_per_million=1e6)})
    client = batch_client(server, tmp_path, prices=prices, max_cost_usd=100.0)
    # 1 prompt token (4 characters each) + 256 max tokens at $1 each, half price: $128.5 > $100
    with pytest.raises(BudgetExceededError, match="before submitting 1 requests"):
        client.complete_batch([client.request([Message(role="user", content="hi")])])
    assert server.batch_stats()["batches"] == {}
    small = batch_client(server, tmp_path, prices=prices, max_cost_usd=100.0)
    small.complete_batch([small.request([Message(role="user", content="hi")], max_tokens=50)])
    assert len(server.batch_stats()["batches"]) == 1


def test_a_local_spec_and_a_missing_sdk_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ClientSettings(cache_path=tmp_path / "c.sqlite", execution="batch")
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    with pytest.raises(PersonaError) as caught:
        LLMClient.from_spec(f"gguf:{model}", settings)
    message = str(caught.value)
    assert "\n" not in message and "--execution online" in message and "export" in message
    import builtins

    real_import = builtins.__import__

    def no_openai(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "openai":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openai)
    monkeypatch.setattr("importlib.import_module", lambda name: no_openai(name))
    settings.base_url = "http://127.0.0.1:9/v1"
    with pytest.raises(PersonaError, match=r"pip install 'persona-testbed\[batch\]'"):
        LLMClient.from_spec("openai:loopback", settings)
    no_cache = ClientSettings(cache_path=None, execution="batch", base_url="http://x/v1")
    with pytest.raises(PersonaError, match="needs the response cache"):
        LLMClient.from_spec("openai:loopback", no_cache)


def test_the_ledger_skips_a_torn_last_line(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.append({"batch_id": "b1", "provider": "openai", "model_id": "m", "base_url": "u",
                   "keys": ["k"], "requests": "r", "submitted_at": 1.0})  # fmt: skip
    ledger.append({"batch_id": "b1", "state": "ended", "counts": {"total": 1}})
    with ledger.path.open("a") as handle:
        handle.write('{"batch_id": "b1", "state": "imp')
    [batch] = ledger.read().values()
    assert (batch.state, batch.counts, batch.keys) == ("ended", {"total": 1}, ["k"])


# --------------------------------------------------------------------------- Anthropic


@pytest.fixture
def anthropic_server() -> Iterator[AnthropicLoopback]:
    with AnthropicLoopback() as running:
        yield running


def anthropic_client(server: AnthropicLoopback, cache: Path, **overrides: Any) -> LLMClient:
    options: dict[str, Any] = {
        "cache_path": cache,
        "anthropic_base_url": server.base_url,
        "anthropic_api_key": "test-key",
        "show_progress": False,
        "max_retries": 0,
        "timeout_s": 10.0,
        "batch": {"poll_s": POLL},
    }
    for name in [name for name in overrides if name.startswith("batch_") and name != "batch_dir"]:
        options["batch"][name.removeprefix("batch_")] = overrides.pop(name)
    options.update(overrides)
    return LLMClient.from_spec(
        "anthropic:claude-sonnet-4-5", ClientSettings.model_validate(options)
    )


def test_anthropic_message_batches_end_to_end(
    anthropic_server: AnthropicLoopback, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    online = mixed_job(anthropic_client(anthropic_server, tmp_path / "online.sqlite"))
    online_bodies = list(anthropic_server.bodies)
    anthropic_server.bodies.clear()
    anthropic_server.set_batch(delay=0.1, fail_contains="pears", fail_times=1)
    client = anthropic_client(anthropic_server, tmp_path / "c.sqlite", execution="batch")
    batched = mixed_job(client)
    assert batched == online
    assert batched[-1] == "constrained"  # no log-probabilities: the choice fallback, as online
    # Each request reached the server as the online backend sends it.
    key = lambda body: json.dumps(body, sort_keys=True)  # noqa: E731
    assert sorted(map(key, anthropic_server.bodies)) == sorted(map(key, online_bodies))
    counts = anthropic_server.submitted.values()
    assert sorted(counts)[-1] == 2 and list(counts).count(2) == 1  # the failed one, once more
    assert "errored: api_error: injected loopback batch failure" in capsys.readouterr().err
    usage = client.usage["anthropic:claude-sonnet-4-5"]
    expected = PriceTable().cost(
        "anthropic:claude-sonnet-4-5", usage.prompt_tokens, usage.completion_tokens, batch=True
    )
    assert usage.cost_usd == pytest.approx(expected) and expected > 0


def test_anthropic_expired_requests_are_retried_and_no_wait_resumes(
    anthropic_server: AnthropicLoopback, tmp_path: Path
) -> None:
    anthropic_server.set_batch(expire=1, expire_answered=1)
    cache = tmp_path / "c.sqlite"
    messages = [[Message(role="user", content=f"q{i}")] for i in range(3)]
    client = anthropic_client(anthropic_server, cache, execution="batch", batch_wait=False)
    with pytest.raises(BatchPendingError, match="submitted to Anthropic Message Batches"):
        client.complete_batch([client.request(m) for m in messages])
    waiting = anthropic_client(anthropic_server, cache, execution="batch")
    results: list[ChatResult] = waiting.complete_batch([waiting.request(m) for m in messages])
    assert [r.text for r in results] == ["echo: q0", "echo: q1", "echo: q2"]
    assert sorted(anthropic_server.submitted.values()) == [1, 2, 2]


def test_a_key_that_is_no_anthropic_custom_id_is_mapped() -> None:
    key = "a" * 64
    assert anthropic_custom_id(key) == key
    mapped = anthropic_custom_id("not/a valid id" * 10)
    assert len(mapped) == 64 and mapped.isalnum()


def test_an_anthropic_model_that_refuses_sampling_is_asked_without_it_in_the_next_batch(
    anthropic_server: AnthropicLoopback, tmp_path: Path
) -> None:
    anthropic_server.state.refuse_sampling = True
    client = anthropic_client(anthropic_server, tmp_path / "c.sqlite", execution="batch")
    [result] = client.complete_batch([client.request([Message(role="user", content="hi")])])
    assert result.text == "echo: hi"
    assert list(anthropic_server.submitted.values()) == [2]
    assert all("temperature" not in body for body in anthropic_server.bodies)


def test_a_line_appended_after_a_torn_one_starts_a_line_of_its_own(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.append({"batch_id": "b1", "provider": "openai", "model_id": "m", "base_url": "u",
                   "keys": ["k"], "requests": "r", "submitted_at": 1.0})  # fmt: skip
    with ledger.path.open("a") as handle:
        handle.write('{"batch_id": "b1", "state": "imp')  # killed mid-write
    ledger.append({"batch_id": "b1", "state": "ended"})  # the restart's next line
    [batch] = ledger.read().values()
    assert batch.state == "ended"
    assert ledger.path.read_text().endswith('"imp\n{"batch_id":"b1","state":"ended"}\n')


def test_an_intent_line_without_its_batch_is_unconfirmed_until_recorded_or_abandoned(
    tmp_path: Path,
) -> None:
    from persona_testbed.llm.providerbatch.ledger import LedgerBatch

    ledger = Ledger(tmp_path)

    def made(label: str) -> LedgerBatch:
        return LedgerBatch("", "openai", "m", "u", ["k"], "r", 1.0, label=label)

    for label in ("found", "gone", "open"):
        ledger.record_submitting(made(label))
    found = made("found")
    found.batch_id = "b1"
    ledger.record_submitted(found)
    ledger.record_abandoned("gone")
    assert [b.label for b in ledger.unconfirmed()] == ["open"]
    assert list(ledger.read()) == ["b1"] and ledger.read()["b1"].label == "found"
