from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import BaseModel

from persona_testbed.llm import (
    BudgetExceededError,
    ChatRequest,
    ChatResult,
    ClientSettings,
    LLMClient,
    Message,
    OrderedChoice,
    PriceTable,
)
from persona_testbed.testing import ScriptedBackend
from tests.llm.fakes import ConcurrencyProbe, echo


def user(text: str) -> list[Message]:
    return [Message(role="user", content=text)]


def settings(tmp_path: Path, **overrides: object) -> ClientSettings:
    return ClientSettings(cache_path=tmp_path / "cache.sqlite", show_progress=False, **overrides)


def test_results_come_back_in_input_order_under_random_latency(tmp_path: Path) -> None:
    rng = random.Random(0)

    class Jittery(ScriptedBackend):
        async def complete(self, request: ChatRequest) -> ChatResult:
            import asyncio

            await asyncio.sleep(rng.random() / 100)
            return await super().complete(request)

    client = LLMClient(Jittery(echo), settings(tmp_path, concurrency=16))
    requests = [client.request(user(f"q{i}")) for i in range(100)]
    results = client.complete_batch(requests)
    assert [r.text for r in results] == [f"echo: q{i}" for i in range(100)]


def test_second_run_is_answered_from_cache_with_zero_model_calls(tmp_path: Path) -> None:
    backend = ScriptedBackend(echo)
    first = LLMClient(backend, settings(tmp_path))
    requests = [first.request(user(f"q{i}")) for i in range(10)]
    first.complete_batch(requests)
    first.close()
    assert len(backend.calls) == 10

    again = ScriptedBackend(echo)
    second = LLMClient(again, settings(tmp_path))
    results = second.complete_batch(requests)
    assert again.calls == []
    assert all(r.cached for r in results)
    usage = second.usage["scripted:fake"]
    assert (usage.calls, usage.cache_hits) == (0, 10)


def test_identical_concurrent_requests_are_sent_once(tmp_path: Path) -> None:
    backend = ScriptedBackend(echo, latency_s=0.02)
    client = LLMClient(backend, settings(tmp_path, concurrency=8))
    same = client.request(user("same question"))
    results = client.complete_batch([same] * 6)
    assert len(backend.calls) == 1
    assert {r.text for r in results} == {"echo: same question"}


def test_concurrency_limit_is_respected_and_reached(tmp_path: Path) -> None:
    backend = ConcurrencyProbe(latency_s=0.01)
    client = LLMClient(backend, settings(tmp_path, concurrency=3))
    client.complete_batch([client.request(user(f"q{i}")) for i in range(30)])
    assert backend.peak == 3


def test_backend_limit_caps_concurrency(tmp_path: Path) -> None:
    backend = ConcurrencyProbe(latency_s=0.005)
    backend.max_concurrency = 1  # like the embedded model: one request at a time
    client = LLMClient(backend, settings(tmp_path, concurrency=8))
    client.complete_batch([client.request(user(f"q{i}")) for i in range(10)])
    assert backend.peak == 1


def test_repeated_samples_are_distinct_requests_with_distinct_seeds(tmp_path: Path) -> None:
    backend = ScriptedBackend(echo)
    client = LLMClient(backend, settings(tmp_path))
    samples = [client.request(user("q"), temperature=0.8, sample_index=i) for i in range(4)]
    client.complete_batch(samples)
    assert len(backend.calls) == 4
    assert len({r.effective_seed() for r in backend.calls}) == 4


def test_cache_key_covers_every_field_that_decides_the_answer() -> None:
    base = ChatRequest(model="m", messages=(Message(role="user", content="q"),))
    variants = [
        base.model_copy(update={"model": "other"}),
        base.model_copy(update={"messages": (Message(role="user", content="q2"),)}),
        base.model_copy(update={"temperature": 0.5}),
        base.model_copy(update={"top_p": 0.9}),
        base.model_copy(update={"max_tokens": 10}),
        base.model_copy(update={"seed": 1}),
        base.model_copy(update={"stop": ("\n",)}),
        base.model_copy(update={"sample_index": 1}),
        base.model_copy(update={"response_format": {"type": "json_object"}}),
        base.model_copy(update={"top_logprobs": 5}),
    ]
    keys = {v.cache_key("id") for v in variants} | {base.cache_key("id")}
    assert len(keys) == len(variants) + 1
    assert base.cache_key("id") != base.cache_key("other-endpoint")
    assert base.cache_key("id") == ChatRequest.model_validate_json(
        base.model_dump_json()
    ).cache_key("id")


class Verdict(BaseModel):
    consistent: bool
    reason: str


def test_structured_reply_is_parsed(tmp_path: Path) -> None:
    backend = ScriptedBackend(lambda r: 'Sure: {"consistent": true, "reason": "fine"}')
    client = LLMClient(backend, settings(tmp_path))
    [result] = client.structured_batch([client.request(user("judge"))], Verdict)
    assert result.value == Verdict(consistent=True, reason="fine")
    assert result.attempts == 1
    assert backend.calls[0].response_format is not None
    assert backend.calls[0].response_format["type"] == "json_schema"


def test_structured_reasks_once_with_the_error(tmp_path: Path) -> None:
    def script(request: ChatRequest) -> str:
        if len(request.messages) == 1:
            return '{"consistent": "maybe"}'
        return '{"consistent": false, "reason": "age"}'

    backend = ScriptedBackend(script)
    client = LLMClient(backend, settings(tmp_path))
    [result] = client.structured_batch([client.request(user("judge"))], Verdict)
    assert result.value == Verdict(consistent=False, reason="age")
    assert result.attempts == 2
    reask = backend.calls[1].messages
    assert reask[-2].role == "assistant" and reask[-2].content == '{"consistent": "maybe"}'
    assert "consistent" in reask[-1].content  # the error names the bad field


def test_structured_failure_is_recorded_with_raw_text_never_silent(tmp_path: Path) -> None:
    client = LLMClient(ScriptedBackend(lambda r: "I refuse."), settings(tmp_path))
    [result] = client.structured_batch([client.request(user("judge"))], Verdict)
    assert result.value is None
    assert result.raw == "I refuse."
    assert result.error is not None and result.attempts == 2
    assert client.usage["scripted:fake"].parse_failures == 1


def test_choose_reads_label_probabilities_in_one_call(tmp_path: Path) -> None:
    backend = ScriptedBackend(lambda r: ("A", {" A": 0.6, "B": 0.2, "hello": 0.2}))
    client = LLMClient(backend, settings(tmp_path))
    [choice] = client.choose_batch([(user("A or B?"), ["A", "B"])])
    assert len(backend.calls) == 1
    assert backend.calls[0].max_tokens == 1
    assert choice.probs == pytest.approx([0.75, 0.25])
    assert choice.coverage == pytest.approx(0.8)


def test_choose_without_label_tokens_is_uniform_with_zero_coverage(tmp_path: Path) -> None:
    client = LLMClient(ScriptedBackend(lambda r: ("x", {"x": 1.0})), settings(tmp_path))
    [choice] = client.choose_batch([(user("A or B?"), ["A", "B"])])
    assert choice.probs == [0.5, 0.5]
    assert choice.coverage == 0.0
    assert choice.undecided


def _render(options: Sequence[str]) -> list[Message]:
    a, b = options
    return user(f"A: {a}\nB: {b}\nWhich?")


def test_both_orders_cancel_position_bias(tmp_path: Path) -> None:
    # A model that picks whatever is listed first 80% of the time, whatever the content.
    biased = ScriptedBackend(lambda r: ("A", {"A": 0.8, "B": 0.2}))
    client = LLMClient(biased, settings(tmp_path))
    item = OrderedChoice(render=_render, options=("good", "bad"), labels=("A", "B"))
    [choice] = client.choose_both_orders_batch([item])
    assert len(biased.calls) == 2
    assert choice.probs == pytest.approx([0.5, 0.5])


def test_both_orders_keep_a_content_preference(tmp_path: Path) -> None:
    def prefers_good(request: ChatRequest) -> tuple[str, dict[str, float]]:
        first_is_good = request.messages[-1].content.startswith("A: good")
        return ("A", {"A": 0.9, "B": 0.1} if first_is_good else {"A": 0.3, "B": 0.7})

    client = LLMClient(ScriptedBackend(prefers_good), settings(tmp_path))
    item = OrderedChoice(render=_render, options=("good", "bad"), labels=("A", "B"))
    [choice] = client.choose_both_orders_batch([item])
    assert choice.probs == pytest.approx([0.8, 0.2])


def test_an_order_without_label_mass_leaves_the_item_undecided(tmp_path: Path) -> None:
    # 0.9 on "good" when it is listed first; no mass on any label in the other order. Before
    # the fix the empty order was averaged in as 0.5, giving P(good) = 0.70: "prefers good".
    def one_order_only(request: ChatRequest) -> tuple[str, dict[str, float]]:
        if request.messages[-1].content.startswith("A: good"):
            return ("A", {"A": 0.9, "B": 0.1})
        return ("hmm", {"hmm": 1.0})

    client = LLMClient(ScriptedBackend(one_order_only), settings(tmp_path))
    item = OrderedChoice(render=_render, options=("good", "bad"), labels=("A", "B"))
    [choice] = client.choose_both_orders_batch([item])
    assert choice.undecided
    assert choice.probs == [0.5, 0.5]
    assert choice.order_coverage == pytest.approx([1.0, 0.0])
    assert choice.coverage == pytest.approx(0.5)


def test_both_orders_with_label_mass_are_decided(tmp_path: Path) -> None:
    client = LLMClient(ScriptedBackend(lambda r: ("A", {"A": 0.6, "x": 0.4})), settings(tmp_path))
    item = OrderedChoice(render=_render, options=("good", "bad"), labels=("A", "B"))
    [choice] = client.choose_both_orders_batch([item])
    assert not choice.undecided
    assert choice.order_coverage == pytest.approx([0.6, 0.6])


def test_cost_is_counted_and_max_cost_stops_before_overspending(tmp_path: Path) -> None:
    backend = ScriptedBackend(lambda r: "word " * 100, model_id="openai:gpt-4o")
    s = settings(tmp_path, max_cost_usd=0.004, prices=PriceTable(), concurrency=1)
    client = LLMClient(backend, s)
    requests = [client.request(user(f"q{i}"), max_tokens=100) for i in range(10)]
    with pytest.raises(BudgetExceededError, match="max-cost"):
        client.complete_batch(requests)
    usage = client.usage["openai:gpt-4o"]
    # Each call costs 2 prompt words * $2.5/M + 100 completion words * $10/M ~= $0.001.
    assert 1 <= usage.calls <= 4
    assert usage.cost_usd <= 0.004
    assert usage.cost_usd == pytest.approx(
        usage.prompt_tokens * 2.5e-6 + usage.completion_tokens * 10e-6
    )
    # Completed calls are cached: a re-run with a larger budget does not repeat them.
    done = len(backend.calls)
    client.settings.max_cost_usd = None
    client.complete_batch(requests)
    assert len(backend.calls) == 10
    assert client.usage["openai:gpt-4o"].cache_hits == done


def test_sync_facade_works_inside_a_running_event_loop(tmp_path: Path) -> None:
    import asyncio

    client = LLMClient(ScriptedBackend(echo), settings(tmp_path))

    async def inside() -> str:
        return client.complete_batch([client.request(user("q"))])[0].text

    assert asyncio.run(inside()) == "echo: q"


def test_a_misspelt_request_field_is_an_error_not_ignored() -> None:
    """Issue 14: `client.request(msgs, temprature=0.3)` used to be accepted (and sampled at 0)."""
    from pydantic import ValidationError

    client = LLMClient(ScriptedBackend(echo), ClientSettings(cache_path=None))
    messages = user("hi")
    with pytest.raises(TypeError, match="unknown field 'temprature'"):
        client.request(messages, temprature=0.3)
    assert client.request(messages, temperature=0.3).temperature == 0.3
    with pytest.raises(ValidationError, match="temprature"):
        ChatRequest.model_validate({"model": "m", "messages": [], "temprature": 0.3})
