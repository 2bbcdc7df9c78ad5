"""PUMS codes -> the persona's census attributes, column-wise (no per-row Python).

Every label comes from the data dictionary; a code whose label marks it "N/A" (the blank code)
becomes null, the persona's "not applicable". docs/personas.md has the full mapping table.
"""

from __future__ import annotations

import re

import polars as pl

from persona_testbed.census.categories import (
    FERTILITY_LABELS,
    HISPANIC,
    INDUSTRY_SECTORS,
    NEVER_WORKED_CODE,
    NEVER_WORKED_LABEL,
    OCCUPATION_GROUPS,
    RACE_BY_RAC1P,
    RACE_ETHNICITY_BY_RACE,
    RACE_GROUP_BY_RACE,
    SPEAKS_ONLY_ENGLISH,
    range_label,
)
from persona_testbed.census.dictionary import DataDictionary, Variable
from persona_testbed.contracts.brackets import AGE_BRACKETS

# Internal helper columns (not persona attributes) start with "_".
AGE_BRACKET = "_age_bracket"
RACE_GROUP = "_race_group"
RACE_ETHNICITY = "_race_ethnicity"
PWGTP = "_pwgtp"

# Attribute <- PUMS variable, for the attributes that are one dictionary label.
DIRECT_LABELS: dict[str, str] = {
    "sex": "SEX",
    "ancestry": "ANC1P",
    "education": "SCHL",
    "employment status": "ESR",
    "class of worker": "COW",
    "marital status": "MAR",
    "family presence and age": "FPARC",
    "household language": "HHL",
    "place of birth": "POBP",
    "citizenship": "CIT",
    "veteran status": "MIL",
    "disability": "DIS",
    "health insurance": "HICOV",
    "cognitive difficulty": "DREM",
    "vision difficulty": "DEYE",
    "hearing difficulty": "DEAR",
}
# Dictionary labels of codes that record no answer: the 2018 dictionary has ANC1P 000
# "Suppressed for data year 2018 for select PUMAs", 996 "Uncodable entries" and 999 "Not
# reported" (every other decoded variable marks its only non-answer as the blank "N/A" code).
# They become null, the persona's "not applicable", instead of facts such as "ancestry: Not
# reported". Matched on the label, not the code, so other years' dictionaries work too.
NON_ANSWER_LABEL = re.compile(
    r"^(?:N/A\b|Not reported\b|Uncodable\b|Suppressed\b|Unknown\b|Not ascertained\b)",
    re.IGNORECASE,
)

_PREFIX = re.compile(r"^([A-Z]{3})-(.*)$")
_SMALL_WORDS = re.compile(r"(?<=[\w,] )(And|Or|Of|In|For|The|To|On|At|By|With|Except)\b")


def non_answer_codes(variable: Variable) -> set[str]:
    """The variable's codes whose label records no answer (see NON_ANSWER_LABEL)."""
    return {code for code, label in variable.codes.items() if NON_ANSWER_LABEL.match(label)}


def label_expr(column: str, variable: Variable) -> pl.Expr:
    """Column of codes -> column of dictionary labels (blank, unknown and non-answer codes ->
    null)."""
    skip = non_answer_codes(variable)
    mapping = {code: label for code, label in variable.codes.items() if code not in skip}
    return pl.col(column).replace_strict(
        list(mapping), list(mapping.values()), default=None, return_dtype=pl.String
    )


def _tidy(detail: str) -> str:
    """ "General And Operations Managers" -> "General and Operations Managers"."""
    return _SMALL_WORDS.sub(lambda m: m.group(1).lower(), detail.strip())


def job_tables(variable: Variable, groups: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(code -> major group, code -> detail) for INDP/OCCP.

    Labels read "PREFIX-Detail"; the few without a prefix take the prefix of the code before them
    in code order (the code lists are ordered by group)."""
    group_of: dict[str, str] = {}
    detail_of: dict[str, str] = {}
    current: str | None = None
    for code in sorted(variable.codes):
        label = variable.codes[code]
        if code == NEVER_WORKED_CODE:
            group_of[code] = NEVER_WORKED_LABEL
            detail_of[code] = NEVER_WORKED_LABEL
            continue
        match = _PREFIX.match(label)
        if match:
            current, detail = match.group(1), match.group(2)
        else:
            detail = label
        if current is None or current not in groups:
            continue
        group_of[code] = groups[current]
        detail_of[code] = _tidy(detail)
    return group_of, detail_of


def _lookup(column: str, table: dict[str, str]) -> pl.Expr:
    return pl.col(column).replace_strict(
        list(table), list(table.values()), default=None, return_dtype=pl.String
    )


def _income() -> pl.Expr:
    """PINCP in 2018 dollars: PINCP x ADJINC / 10^6 (ADJINC has six implied decimals)."""
    dollars = (pl.col("PINCP").cast(pl.Float64) * pl.col("ADJINC").cast(pl.Float64) / 1e6).round(0)
    return dollars.cast(pl.Int64).cast(pl.String)


def _race() -> pl.Expr:
    by_race = pl.col("RAC1P").replace_strict(
        list(RACE_BY_RAC1P), list(RACE_BY_RAC1P.values()), default=None, return_dtype=pl.String
    )
    return pl.when(pl.col("HISP") != "01").then(pl.lit(HISPANIC)).otherwise(by_race)


def _english(eng: Variable) -> pl.Expr:
    return (
        pl.when(pl.col("LANX") == "2")
        .then(pl.lit(SPEAKS_ONLY_ENGLISH))
        .otherwise(label_expr("ENG", eng))
    )


def _job_description(occupation: pl.Expr, industry: pl.Expr) -> pl.Expr:
    """A procedural "detailed job description" from ESR, OCCP, INDP, SCH and age; the LLM fill
    rewrites it into prose when a model is used."""
    age = pl.col("AGEP")
    esr = pl.col("ESR")
    employed = esr.is_in(["1", "2", "4", "5"])
    enrolled = pl.col("SCH").is_in(["2", "3"])
    has_job = pl.col("OCCP").is_not_null() & (pl.col("OCCP") != NEVER_WORKED_CODE)
    # "Registered Nurses in General Medical and Surgical Hospitals"
    job = pl.coalesce(pl.concat_str(occupation, pl.lit(" in "), industry), occupation)
    retired_age = age >= 60
    return (
        pl.when(age < 3)
        .then(pl.lit("Too young for school or work"))
        .when(employed & has_job & enrolled)
        .then(pl.lit("Student; also works as ") + job)
        .when(employed & has_job)
        .then(job)
        .when(enrolled)
        .then(pl.lit("Student"))
        .when(age < 5)
        .then(pl.lit("Too young for school or work"))
        .when(age < 16)
        .then(pl.lit("Not enrolled in school"))
        .when((esr == "3") & has_job)
        .then(pl.lit("Unemployed; last worked as ") + job)
        .when(esr == "3")
        .then(pl.lit("Unemployed, looking for work"))
        .when(has_job & retired_age)
        .then(pl.lit("Retired; previously worked as ") + job)
        .when(has_job)
        .then(pl.lit("Not working; previously worked as ") + job)
        .when(retired_age)
        .then(pl.lit("Retired"))
        .otherwise(pl.lit("Not in the labor force"))
    )


def decode_persons(persons: pl.DataFrame, dictionary: DataDictionary) -> pl.DataFrame:
    """The census attributes (paper names) plus source columns and helper columns.

    `persons` holds the checked PUMS person columns and the household codes (HHT_CODE, HHT_VAR,
    FPARC, HHL)."""
    industry_group, industry_detail = job_tables(dictionary.variable("INDP"), INDUSTRY_SECTORS)
    occupation_group, occupation_detail = job_tables(dictionary.variable("OCCP"), OCCUPATION_GROUPS)
    household_type = pl.lit(None, pl.String)
    for var in persons.get_column("HHT_VAR").unique().drop_nulls().sort().to_list():
        decoded = label_expr("HHT_CODE", dictionary.variable(var))
        household_type = pl.when(pl.col("HHT_VAR") == var).then(decoded).otherwise(household_type)

    direct = {
        attribute: label_expr(var, dictionary.variable(var))
        for attribute, var in DIRECT_LABELS.items()
    }
    occupation = _lookup("OCCP", occupation_detail)
    industry = _lookup("INDP", industry_detail)
    fertility = pl.col("FER").replace_strict(
        list(FERTILITY_LABELS), list(FERTILITY_LABELS.values()), default=None
    )
    race = _race()
    columns: dict[str, pl.Expr] = {
        "age": pl.col("AGEP").cast(pl.Int64),
        "sex": direct["sex"],
        "race": race,
        "ancestry": direct["ancestry"],
        "household language": direct["household language"],
        "education": direct["education"],
        "employment status": direct["employment status"],
        "class of worker": direct["class of worker"],
        "industry category": _lookup("INDP", industry_group),
        "occupation category": _lookup("OCCP", occupation_group),
        "detailed job description": _job_description(occupation, industry),
        "income": _income(),
        "marital status": direct["marital status"],
        "household type": household_type,
        "family presence and age": direct["family presence and age"],
        "place of birth": direct["place of birth"],
        "citizenship": direct["citizenship"],
        "veteran status": direct["veteran status"],
        "disability": direct["disability"],
        "health insurance": direct["health insurance"],
        "cognitive difficulty": direct["cognitive difficulty"],
        "ability to speak English": _english(dictionary.variable("ENG")),
        "vision difficulty": direct["vision difficulty"],
        "fertility": fertility,
        "hearing difficulty": direct["hearing difficulty"],
        "source_state": pl.col("ST"),
        "source_serialno": pl.col("SERIALNO"),
        "source_sporder": pl.col("SPORDER").cast(pl.Int64),
        PWGTP: pl.col("PWGTP").cast(pl.Int64),
        AGE_BRACKET: range_label(pl.col("AGEP"), AGE_BRACKETS),
        RACE_GROUP: race.replace_strict(
            list(RACE_GROUP_BY_RACE), list(RACE_GROUP_BY_RACE.values()), default=None
        ),
        RACE_ETHNICITY: race.replace_strict(
            list(RACE_ETHNICITY_BY_RACE), list(RACE_ETHNICITY_BY_RACE.values()), default=None
        ),
    }
    return persons.select(expr.alias(name) for name, expr in columns.items())
