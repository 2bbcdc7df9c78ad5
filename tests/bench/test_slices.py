"""Slice filter grammar, errors and evaluation."""

from __future__ import annotations

import polars as pl
import pytest

from persona_testbed.bench.slices import parse_slice
from persona_testbed.contracts import age_bracket_expr
from persona_testbed.errors import InputError


def test_parse_intersection_with_spaces_in_names_and_values() -> None:
    parsed = parse_slice(
        "sex=Female &  political views = Republican & religion!=Nothing in particular"
    )
    assert [(c.attribute, c.op, c.value) for c in parsed.clauses] == [
        ("sex", "=", "Female"),
        ("political views", "=", "Republican"),
        ("religion", "!=", "Nothing in particular"),
    ]
    assert (
        parsed.label == "sex=Female & political views=Republican & religion!=Nothing in particular"
    )


def test_attribute_names_are_matched_without_case_and_extra_spaces() -> None:
    parsed = parse_slice("Ability  to speak english=Very well & AGE BRACKET=65+")
    assert [c.attribute for c in parsed.clauses] == ["ability to speak English", "age bracket"]


def test_values_may_contain_equals_signs() -> None:
    assert parse_slice("lifestyle=a=b").clauses[0].value == "a=b"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gender=Female", "unknown attribute 'gender'"),
        ("sex Female", "malformed clause 'sex Female'"),
        ("sex=Female &", "malformed clause ''"),
        ("sex=", "clause 'sex=' has no value"),
        ("  ", "empty filter"),
    ],
)
def test_bad_filters_give_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(InputError, match="--slice") as error:
        parse_slice(text)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_filter_selects_matching_rows_and_null_never_equals() -> None:
    frame = pl.DataFrame(
        {
            "sex": ["Female", "female ", "Male", None],
            "political views": ["Republican", "Democrat", "Republican", "Republican"],
            "age": [30, 70, 16, None],
        }
    )
    both = frame.filter(parse_slice("sex=FEMALE & political views=Republican").expr())
    assert both.height == 1
    not_male = frame.filter(parse_slice("sex!=Male").expr())
    assert not_male.height == 3  # a persona without the attribute is "not Male"
    ages = frame.select(age_bracket_expr()).to_series().to_list()
    assert ages == ["25-34", "65+", "5-17", None]
    assert (
        frame.with_columns(age_bracket_expr()).filter(parse_slice("age bracket=65+").expr()).height
        == 1
    )


def test_a_double_equals_is_malformed_not_a_filter_matching_nobody() -> None:
    with pytest.raises(InputError, match="malformed clause 'sex==Male'") as error:
        parse_slice("sex==Male")
    assert "\n" not in str(error.value)


def test_a_filter_that_matches_no_sampled_pair_fails_before_any_call() -> None:
    from persona_testbed.bench.slices import check_filters_match

    pairs = pl.DataFrame({"sex": ["Female", "Male"], "age": [30, 40]})
    check_filters_match([parse_slice("sex=male")], pairs)  # matches one pair: fine
    with pytest.raises(InputError) as error:
        check_filters_match([parse_slice("sex=Other")], pairs)
    message = str(error.value)
    assert "\n" not in message
    assert "--slice 'sex=Other': matches none of the 2 sampled" in message
    assert "sex values here: Female, Male" in message
