"""Choice scoring without log-probabilities: the constrained one-label answer, in both orders."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from persona_testbed.llm import (
    ChatRequest,
    ClientSettings,
    LLMClient,
    Message,
    OrderedChoice,
)
from persona_testbed.llm.choice import constrained_choice
from persona_testbed.testing import ScriptedBackend
from persona_testbed.testing.loopback import LoopbackServer


def render(ordered: Sequence[str]) -> list[Message]:
    body = f"Which fruit is better?\nA: {ordered[0]}\nB: {ordered[1]}\nAnswer with A or B."
    return [Message(role="user", content=body)]


def prefers_apples(request: ChatRequest) -> str | tuple[str, dict[str, float]]:
    """A judge that names the label apples stand under; as log-probabilities when asked."""
    text = request.messages[-1].content
    label = "A" if "A: apples" in text else "B"
    if request.response_format is not None:
        return json.dumps({"answer": label})
    return label, {label: 0.9, "B" if label == "A" else "A": 0.1}


def settings(tmp_path: Path, **overrides: object) -> ClientSettings:
    return ClientSettings(cache_path=tmp_path / "cache.sqlite", show_progress=False, **overrides)


ITEM = OrderedChoice(render=render, options=("apples", "pears"), labels=("A", "B"))


def test_constrained_replies_parse_to_one_label_or_undecided() -> None:
    labels = ("A", "B")
    assert constrained_choice('{"answer": "B"}', labels).probs == [0.0, 1.0]
    assert constrained_choice("B.", labels).probs == [0.0, 1.0]
    assert constrained_choice(" a: apples", labels).probs == [1.0, 0.0]
    for reply in ('{"answer": "C"}', "maybe", "", "Because"):
        choice = constrained_choice(reply, labels)
        assert choice.undecided and choice.coverage == 0.0
    assert constrained_choice("A", labels).method == "constrained"


def test_an_endpoint_without_logprobs_is_detected_and_both_orders_fall_back(
    tmp_path: Path,
) -> None:
    backend = ScriptedBackend(prefers_apples, logprobs=False)
    client = LLMClient(backend, settings(tmp_path))
    [choice] = client.choose_both_orders_batch([ITEM])
    assert choice.method == "constrained"
    # apples named under A in one order and under B in the other: the content decides.
    assert choice.probs == [1.0, 0.0] and not choice.undecided
    asked = [request for request in backend.calls if request.response_format is not None]
    assert len(asked) == 2
    assert {"A: apples" in r.messages[-1].content for r in asked} == {True, False}
    schema = asked[0].response_format["json_schema"]["schema"]  # type: ignore[index]
    assert schema["properties"]["answer"]["enum"] == ["A", "B"]
    # Once detected, later choices skip the log-probability request.
    before = len(backend.calls)
    client.choose_both_orders_batch([ITEM, ITEM])  # the same item: cached
    client.choose_batch([(render(["kiwis", "apples"]), ["A", "B"])])
    assert len(backend.calls) == before + 1
    assert backend.calls[-1].response_format is not None


def test_position_bias_under_the_fallback_is_a_tie_not_a_preference(tmp_path: Path) -> None:
    always_a = ScriptedBackend(lambda r: json.dumps({"answer": "A"}), logprobs=False)
    client = LLMClient(always_a, settings(tmp_path))
    [choice] = client.choose_both_orders_batch([ITEM])
    assert choice.method == "constrained" and choice.probs == [0.5, 0.5]


def test_endpoints_with_logprobs_keep_the_logprob_method(tmp_path: Path) -> None:
    backend = ScriptedBackend(prefers_apples)
    client = LLMClient(backend, settings(tmp_path))
    [choice] = client.choose_both_orders_batch([ITEM])
    assert choice.method == "logprobs"
    assert choice.probs[0] == pytest.approx(0.9)
    assert all(r.response_format is None for r in backend.calls)


def test_a_declared_method_decides_without_detection(tmp_path: Path) -> None:
    declared = ScriptedBackend(prefers_apples)
    client = LLMClient(declared, settings(tmp_path, choice_method="constrained"))
    [choice] = client.choose_both_orders_batch([ITEM])
    assert choice.method == "constrained" and choice.probs == [1.0, 0.0]
    assert all(r.top_logprobs is None for r in declared.calls) and len(declared.calls) == 2

    strict = ScriptedBackend(prefers_apples, logprobs=False)
    client = LLMClient(strict, settings(tmp_path / "strict", choice_method="logprobs"))
    [choice] = client.choose_both_orders_batch([ITEM])
    assert choice.method == "logprobs" and choice.undecided  # no fallback: counted undecided


def test_callers_that_need_probabilities_get_no_fallback(tmp_path: Path) -> None:
    backend = ScriptedBackend(prefers_apples, logprobs=False)
    client = LLMClient(backend, settings(tmp_path))
    [choice] = client.choose_both_orders_batch([ITEM], fallback=False)
    assert choice.undecided and choice.method == "logprobs"
    assert all(r.response_format is None for r in backend.calls)


def test_loopback_endpoint_without_logprobs_gives_choices_by_the_fallback(
    tmp_path: Path,
) -> None:
    with LoopbackServer() as server:
        server.add_faults([{"kind": "no_logprobs", "times": 1000}])
        server.set_rules(
            [
                {"contains": "A: apples", "reply": '{"answer": "A"}'},
                {"contains": "A: pears", "reply": '{"answer": "B"}'},
            ]
        )
        client = LLMClient.from_spec(
            "openai:loopback",
            settings(tmp_path, base_url=server.base_url, max_retries=0, timeout_s=10.0),
        )
        [first] = client.choose_both_orders_batch([ITEM])
        # Both orders asked for log-probabilities, got none, then answered constrained.
        assert server.stats()["total"] == 4
        others = [
            OrderedChoice(render=render, options=("apples", f"pears {i}"), labels=("A", "B"))
            for i in range(3)
        ]
        rest = client.choose_both_orders_batch(others)
        stats = server.stats()
    assert first.method == "constrained" and first.probs == [1.0, 0.0]
    assert [c.probs for c in rest] == [[1.0, 0.0]] * 3
    assert all(c.method == "constrained" for c in rest)
    assert stats["total"] == 4 + 2 * 3  # detected once: no more log-probability requests
    by_prompt = stats["by_prompt"]
    assert all(by_prompt[render(["apples", f"pears {i}"])[0].content] == 1 for i in range(3))
    assert all(by_prompt[render([f"pears {i}", "apples"])[0].content] == 1 for i in range(3))
