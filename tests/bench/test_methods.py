"""Method names and chain-of-thought answer parsing."""

from __future__ import annotations

import pytest

from persona_testbed.bench.methods import (
    EMPTY_ANSWER,
    NO_ANSWER_LINE,
    Method,
    parse_cot,
    parse_methods,
)
from persona_testbed.errors import InputError


def test_parse_methods_keeps_order_and_drops_repeats() -> None:
    assert parse_methods("persona-cot, no-persona,persona-cot") == (
        Method.PERSONA_COT,
        Method.NO_PERSONA,
    )


@pytest.mark.parametrize("text", ["", " , ", "persona,cot"])
def test_parse_methods_errors_name_the_problem(text: str) -> None:
    with pytest.raises(InputError, match="--methods"):
        parse_methods(text)


def test_cot_answer_follows_the_last_answer_line() -> None:
    parsed = parse_cot(
        "Reasoning: the user cares about cost.\nAnswer: first try\nmore thought\n"
        "**Final answer:** Buy the cheaper one.\nIt lasts."
    )
    assert parsed.answer == "Buy the cheaper one.\nIt lasts."
    assert parsed.error is None
    assert parsed.reasoning is not None and parsed.reasoning.startswith("the user cares")


def test_cot_without_answer_line_judges_everything_and_records_it() -> None:
    parsed = parse_cot("I think the answer depends on the budget.")
    assert parsed.answer == "I think the answer depends on the budget."
    assert parsed.reasoning is None
    assert parsed.error == NO_ANSWER_LINE


def test_cot_with_empty_answer_is_recorded() -> None:
    parsed = parse_cot("Reasoning: hmm.\nAnswer:   ")
    assert parsed.error == EMPTY_ANSWER
    assert parsed.answer == "Reasoning: hmm.\nAnswer:"


def test_the_word_answer_inside_a_sentence_is_not_a_delimiter() -> None:
    parsed = parse_cot("The answer: it depends.\nAnswer: Save first.")
    assert parsed.answer == "Save first."
