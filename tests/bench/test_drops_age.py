"""The age matcher of the summary attribute drops: words about someone else's age, or about age
in general, do not count as keeping the persona's age."""

from __future__ import annotations

import pytest

from persona_testbed.bench.drops import attribute_mentioned


@pytest.mark.parametrize(
    ("age", "summary"),
    [
        (25, "They worry about young children in the neighbourhood."),
        (25, "Young people today face a hard job market."),
        (70, "They look up to an older sibling."),
        (70, "Cares for elderly parents."),
        (34, "Good advice at any age."),
        (34, "Age is just a number for this question."),
        (34, "Has a 3-year-old son."),
        (45, "Works as a senior engineer."),
        (16, "A minor detail: they prefer short answers."),
        (52, "Their daughter is 20 years old."),
    ],
)
def test_other_peoples_age_or_age_in_general_is_not_kept(age: int, summary: str) -> None:
    assert attribute_mentioned("age", age, summary) is False


@pytest.mark.parametrize(
    ("age", "summary"),
    [
        (25, "A 25-year-old nurse."),
        (25, "A young woman starting her career."),
        (25, "A young adult renting a flat."),
        (27, "In their late twenties."),
        (70, "An older man, retired from farming."),
        (70, "A retiree in her seventies."),
        (34, "Aged 34, with two kids."),
        (52, "Someone in midlife weighing options."),
        (52, "The answer should suit their age."),
        (67, "At 67, she still drives."),
    ],
)
def test_the_persona_s_own_age_is_kept(age: int, summary: str) -> None:
    assert attribute_mentioned("age", age, summary) is True
