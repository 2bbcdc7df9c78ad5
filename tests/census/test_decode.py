"""Decoding details: job groups, income adjustment, job descriptions."""

from __future__ import annotations

import polars as pl

from persona_testbed.census import Population, load_dictionary
from persona_testbed.census.categories import INDUSTRY_SECTORS, OCCUPATION_GROUPS
from persona_testbed.census.decode import DIRECT_LABELS, job_tables, non_answer_codes


def test_job_groups_come_from_label_prefixes_carried_in_code_order() -> None:
    dictionary = load_dictionary(None)
    group, detail = job_tables(dictionary.variable("OCCP"), OCCUPATION_GROUPS)
    assert group["0010"] == "Management"
    assert detail["0010"] == "Chief Executives and Legislators"
    # 1555 and 8000 have no prefix in the 2018 dictionary: they sit among ENG and PRD codes.
    assert group["1555"] == "Architecture and Engineering"
    assert group["8000"] == "Production"
    assert set(group.values()) <= {*OCCUPATION_GROUPS.values(), group["9920"]}
    industries, _ = job_tables(dictionary.variable("INDP"), INDUSTRY_SECTORS)
    assert industries["8680"] == "Arts, Entertainment, Recreation, Accommodation, and Food Services"
    every_code = set(dictionary.variable("OCCP").codes)
    assert set(group) == every_code


def test_every_decoded_value_is_a_label_or_null(population: Population) -> None:
    frame = population.frame
    assert frame.get_column("sex").unique().sort().to_list() == ["Female", "Male"]
    # Minors under 15 have no income; under 16 no employment status; under 5 no English answer.
    young = frame.filter(pl.col("age") < 5)
    assert young.get_column("income").null_count() == young.height
    assert young.get_column("ability to speak English").null_count() == young.height
    babies = frame.filter(pl.col("age") < 3).get_column("detailed job description")
    assert babies.unique().to_list() == ["Too young for school or work"]
    kids = frame.filter(pl.col("age").is_between(5, 15)).get_column("detailed job description")
    assert kids.value_counts(sort=True).row(0)[0] == "Student"
    assert frame.get_column("household type").null_count() > 0  # group quarters


def test_non_answer_codes_of_every_decoded_variable_are_not_applicable(
    population: Population, bundled_rows: pl.DataFrame
) -> None:
    """ANC1P 999 "Not reported", 996 "Uncodable entries" and 000 "Suppressed" are no answer:
    the persona gets null ("not applicable"), never "ancestry: Not reported"."""
    dictionary = load_dictionary(None)
    ancestry = dictionary.variable("ANC1P")
    assert non_answer_codes(ancestry) == {"000", "996", "999"}
    # "Other groups" / "Other responses" are answers, kept as labels.
    assert ancestry.codes["997"] == "Other groups" and ancestry.codes["998"] == "Other responses"
    for variable in DIRECT_LABELS.values():  # no other decoded variable has such a code
        if variable != "ANC1P":
            assert non_answer_codes(dictionary.variable(variable)) == set(), variable
    # Real records of the bundled sample with each code decode to null.
    codes = bundled_rows.get_column("ANC1P")
    for code in ("999", "996"):
        assert (codes == code).sum() > 0, code
    decoded = population.frame.get_column("ancestry")
    labels = set(decoded.drop_nulls().unique().to_list())
    assert not labels & {"Not reported", "Uncodable entries"}
    missing = (codes.is_in(["000", "996", "999"])).sum()
    assert decoded.null_count() == missing
