"""The real embedded model (SmolLM2-135M via llama.cpp): generation, structured output, choose."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from persona_testbed.llm import ClientSettings, LLMClient, Message, OrderedChoice

pytestmark = pytest.mark.embedded


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMClient]:
    cache = tmp_path_factory.mktemp("embedded") / "cache.sqlite"
    client = LLMClient.from_spec(
        "local:smollm2-135m", ClientSettings(cache_path=cache, show_progress=False)
    )
    yield client
    client.close()


def test_generation_is_deterministic_at_temperature_zero(model: LLMClient) -> None:
    messages = [Message(role="user", content="Name one fruit.")]
    first = model.complete(model.request(messages, max_tokens=16, seed=1))
    assert first.text.strip()
    assert first.prompt_tokens > 0 and 0 < first.completion_tokens <= 16
    fresh = LLMClient.from_spec(
        "local:smollm2-135m", ClientSettings(cache_path=None, show_progress=False)
    )
    assert fresh.complete(fresh.request(messages, max_tokens=16, seed=1)).text == first.text


def test_sampled_generations_differ_by_sample_index(model: LLMClient) -> None:
    messages = [Message(role="user", content="Write a short sentence about the sea.")]
    requests = [
        model.request(messages, max_tokens=24, temperature=1.0, sample_index=i) for i in range(3)
    ]
    texts = [r.text for r in model.complete_batch(requests)]
    assert len(set(texts)) > 1


class City(BaseModel):
    name: str = Field(max_length=40)
    country: str = Field(max_length=40)


def test_structured_output_is_constrained_to_the_schema(model: LLMClient) -> None:
    request = model.request(
        [Message(role="user", content="Give the capital of France as JSON.")], max_tokens=60
    )
    [result] = model.structured_batch([request], City)
    assert result.value is not None, result.raw
    assert result.value.name and result.value.country


def test_choose_returns_a_distribution_over_labels(model: LLMClient) -> None:
    messages = [
        Message(
            role="user",
            content="Which animal is larger? A: an elephant. B: a mouse. Answer with A or B.",
        )
    ]
    [choice] = model.choose_batch([(messages, ["A", "B"])])
    assert sum(choice.probs) == pytest.approx(1.0)
    assert choice.coverage > 0.1  # the model does put mass on the option letters

    def render(options: Sequence[str]) -> list[Message]:
        a, b = options
        return [Message(role="user", content=f"Which is larger? A: {a}. B: {b}. Reply A or B.")]

    item = OrderedChoice(render=render, options=("an elephant", "a mouse"), labels=("A", "B"))
    [both] = model.choose_both_orders_batch([item])
    assert sum(both.probs) == pytest.approx(1.0)


def test_prompt_longer_than_the_context_is_a_clear_error(tmp_path: Path) -> None:
    from persona_testbed.llm import LLMCallError

    small = LLMClient.from_spec(
        "local:smollm2-135m", ClientSettings(cache_path=None, show_progress=False, n_ctx=64)
    )
    with pytest.raises(LLMCallError, match="local:smollm2-135m"):
        # Past 256 tokens too: llama.cpp may round a context up to a multiple of 256.
        small.complete(small.request([Message(role="user", content="word " * 600)]))


def test_thread_count_does_not_change_what_the_model_writes() -> None:
    # The cache key leaves the thread count out, so it must not matter: ggml splits a matrix
    # product by rows, each row summed by one thread in the same order.
    one_thread = LLMClient.from_spec(
        "local:smollm2-135m", ClientSettings(cache_path=None, show_progress=False, n_threads=1)
    )
    requests = [
        one_thread.request(
            [Message(role="user", content=f"Name a fruit and a colour. ({i})")],
            max_tokens=16,
            temperature=0.8,
            sample_index=i,
        )
        for i in range(3)
    ]
    two_threads = LLMClient.from_spec(
        "local:smollm2-135m", ClientSettings(cache_path=None, show_progress=False, n_threads=2)
    )
    try:
        expected = [r.text for r in one_thread.complete_batch(requests)]
        assert [r.text for r in two_threads.complete_batch(requests)] == expected
        assert len(set(expected)) > 1  # the samples differ, so equal lists are not trivial
    finally:
        one_thread.close()
        two_threads.close()


def _persona_choices(client: LLMClient) -> list[list[float]]:
    """Choices of 2 personas x 2 questions: each persona's long system prompt is a shared prefix
    that the runtime reuses from one call to the next."""
    queries = []
    for persona in range(2):
        system = f"You are persona {persona}. " + " ".join(
            f"Trait {i}: value {persona * 7 + i}." for i in range(30)
        )
        for question in ("more buses or more roads", "tax or save"):
            content = f"Which do you prefer: {question}? A: the first. B: the second. Say A or B."
            messages = [
                Message(role="system", content=system),
                Message(role="user", content=content),
            ]
            queries.append((messages, ["A", "B"]))
    return [choice.probs for choice in client.choose_batch(queries)]


def test_a_fresh_run_reproduces_the_choices_despite_prefix_reuse() -> None:
    # A reused KV prefix moves log-probabilities (docs/benchmarks.md "Prefix reuse"), so a
    # choice depends on which calls ran before it; a batch is sent in one fixed order, so two
    # fresh runs of it (new runtimes, no cache) must still give the same numbers, bit for bit.
    runs = []
    for _ in range(2):
        client = LLMClient.from_spec(
            "local:smollm2-135m", ClientSettings(cache_path=None, show_progress=False)
        )
        try:
            runs.append(_persona_choices(client))
        finally:
            client.close()
    assert runs[0] == runs[1]
    assert len({round(p[0], 6) for p in runs[0]}) > 1  # the items differ, so equality says much
