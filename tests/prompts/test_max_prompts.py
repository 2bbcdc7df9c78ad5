"""`max_prompts`: a seeded sample of the source, in source order, counted by the dry-run plan."""

from __future__ import annotations

from persona_testbed.prompts import PromptsConfig, load_source
from persona_testbed.stages.builtin import prompt_counts


def test_a_seeded_sample_in_source_order() -> None:
    everything = load_source(PromptsConfig())
    sample = load_source(PromptsConfig(max_prompts=40, seed=3))
    assert sample.height == 40
    positions = [everything["text"].to_list().index(text) for text in sample["text"]]
    assert positions == sorted(positions)  # source order kept
    assert positions != list(range(40))  # a sample, not the first rows
    again = load_source(PromptsConfig(max_prompts=40, seed=3))
    assert again.equals(sample)
    other = load_source(PromptsConfig(max_prompts=40, seed=4))
    assert not other.equals(sample)


def test_a_limit_above_the_source_keeps_every_prompt_and_the_plan_counts_the_sample() -> None:
    everything = load_source(PromptsConfig())
    assert load_source(PromptsConfig(max_prompts=10_000)).equals(everything)
    assert prompt_counts(PromptsConfig(max_prompts=25))[:2] == (25, 25)
