"""The `anthropic:MODEL` spec against a loopback Anthropic Messages API server."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from pydantic import BaseModel

from persona_testbed.errors import PersonaError
from persona_testbed.llm import ClientSettings, LLMClient, Message, OrderedChoice, PriceTable
from persona_testbed.llm.specs import parse_spec
from persona_testbed.testing.loopback_anthropic import AnthropicLoopback, AnthropicRule

pytest.importorskip("anthropic")


@pytest.fixture
def server() -> Iterator[AnthropicLoopback]:
    with AnthropicLoopback() as running:
        yield running


def client_for(server: AnthropicLoopback, tmp_path: Path, **overrides: object) -> LLMClient:
    options: dict[str, object] = {
        "cache_path": tmp_path / "cache.sqlite",
        "anthropic_base_url": server.base_url,
        "anthropic_api_key": "test-key",
        "show_progress": False,
        "max_retries": 3,
        "timeout_s": 10.0,
    }
    options.update(overrides)
    return LLMClient.from_spec(
        "anthropic:claude-sonnet-4-5", ClientSettings.model_validate(options)
    )


def test_a_request_maps_onto_the_messages_api(server: AnthropicLoopback, tmp_path: Path) -> None:
    client = client_for(server, tmp_path)
    request = client.request(
        [
            Message(role="system", content="You are terse."),
            Message(role="user", content="Say hello"),
        ],
        max_tokens=50,
        temperature=1.5,
        stop=("STOP",),
    )
    result = client.complete(request)
    [body] = server.bodies
    assert body["model"] == "claude-sonnet-4-5"
    assert body["system"] == "You are terse."
    assert body["messages"] == [{"role": "user", "content": "Say hello"}]
    assert body["max_tokens"] == 50 and body["stop_sequences"] == ["STOP"]
    assert body["temperature"] == 1.0  # Anthropic's range ends at 1
    assert "top_p" not in body and "seed" not in body
    assert result.text == "echo: Say hello" and result.finish_reason == "stop"
    assert (result.prompt_tokens, result.completion_tokens) == (5, 3)
    usage = client.usage["anthropic:claude-sonnet-4-5"]
    assert usage.calls == 1 and usage.cost_usd == pytest.approx((5 * 3.0 + 3 * 15.0) / 1e6)


def test_a_model_that_refuses_sampling_parameters_is_asked_without_them(
    server: AnthropicLoopback, tmp_path: Path
) -> None:
    server.state.refuse_sampling = True
    client = client_for(server, tmp_path)
    texts = [
        client.complete(client.request([Message(role="user", content=q)], temperature=0.0)).text
        for q in ("one", "two")
    ]
    assert texts == ["echo: one", "echo: two"]
    assert server.state.total == 3  # one refusal, then never again
    assert all("temperature" not in body for body in server.bodies)


def test_max_tokens_and_stop_sequences_map_to_finish_reasons(
    server: AnthropicLoopback, tmp_path: Path
) -> None:
    server.set_rules([AnthropicRule(reply="one two three four five six END seven")])
    client = client_for(server, tmp_path)
    cut = client.complete(client.request([Message(role="user", content="count")], max_tokens=3))
    assert cut.text == "one two three" and cut.finish_reason == "length"
    stopped = client.complete(
        client.request([Message(role="user", content="count")], stop=("END",))
    )
    assert stopped.text == "one two three four five six " and stopped.finish_reason == "stop"


class Verdict(BaseModel):
    verdict: str
    score: int


def test_structured_replies_come_from_a_forced_tool(
    server: AnthropicLoopback, tmp_path: Path
) -> None:
    server.set_rules([AnthropicRule(reply=json.dumps({"verdict": "fine", "score": 4}))])
    client = client_for(server, tmp_path)
    [reply] = client.structured_batch(
        [client.request([Message(role="user", content="judge this")])], Verdict
    )
    assert reply.value == Verdict(verdict="fine", score=4)
    [body] = server.bodies
    assert body["tool_choice"] == {"type": "tool", "name": "Verdict"}
    assert body["tools"][0]["input_schema"]["required"] == ["verdict", "score"]


def test_choices_use_the_constrained_answer_in_both_orders(
    server: AnthropicLoopback, tmp_path: Path
) -> None:
    server.set_rules(
        [
            AnthropicRule(contains="A: tea", reply=json.dumps({"answer": "A"})),
            AnthropicRule(contains="A: coffee", reply=json.dumps({"answer": "B"})),
        ]
    )

    def render(ordered: Sequence[str]) -> list[Message]:
        text = f"Which drink?\nA: {ordered[0]}\nB: {ordered[1]}"
        return [Message(role="user", content=text)]

    client = client_for(server, tmp_path)
    item = OrderedChoice(render=render, options=("tea", "coffee"), labels=("A", "B"))
    [choice] = client.choose_both_orders_batch([item])
    assert choice.method == "constrained" and choice.probs == [1.0, 0.0]
    # No log-probability request was wasted: both bodies are constrained to the labels.
    assert len(server.bodies) == 2
    for body in server.bodies:
        assert body["tools"][0]["input_schema"]["properties"]["answer"]["enum"] == ["A", "B"]


def test_overloaded_is_retried_and_other_errors_are_one_line(
    server: AnthropicLoopback, tmp_path: Path
) -> None:
    server.fail_next(529, 2, retry_after=0)
    client = client_for(server, tmp_path)
    assert client.complete(client.request([Message(role="user", content="hi")])).text == "echo: hi"
    assert server.state.total == 3

    server.fail_next(529, 10, retry_after=0)
    client = client_for(server, tmp_path / "again", max_retries=1)
    with pytest.raises(PersonaError, match=r"anthropic:claude-sonnet-4-5 .*HTTP 529"):
        client.complete(client.request([Message(role="user", content="hi again")]))


def test_spec_key_and_price_table(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_spec("anthropic:claude-haiku-4-5").id == "anthropic:claude-haiku-4-5"
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    with pytest.raises(PersonaError, match="ANTHROPIC_API_KEY is not set"):
        LLMClient.from_spec("anthropic:claude-haiku-4-5", ClientSettings(cache_path=None))
    prices = PriceTable()
    dated = prices.price("anthropic:claude-sonnet-4-5-20250929")
    assert dated is not None and dated.output_per_million == 15.0
    opus = prices.price("anthropic:claude-opus-4-1-20250805")
    assert opus is not None and opus.input_per_million == 15.0
