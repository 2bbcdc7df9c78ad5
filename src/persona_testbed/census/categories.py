"""Fixed category tables: how PUMS codes group into the persona's readable categories.

The PUMS dictionary labels industries and occupations as "PREFIX-Detail" (e.g.
"MGR-General And Operations Managers"); the prefix names the major group. The names below are
the Census Bureau's major-group titles (2018 Census industry and occupation code lists).
"""

from __future__ import annotations

import polars as pl

from persona_testbed.contracts.brackets import age_bracket as contract_age_bracket

# INDP label prefix -> industry sector (2017 NAICS-based Census industry groups).
INDUSTRY_SECTORS: dict[str, str] = {
    "AGR": "Agriculture, Forestry, Fishing and Hunting",
    "EXT": "Mining, Quarrying, and Oil and Gas Extraction",
    "UTL": "Utilities",
    "CON": "Construction",
    "MFG": "Manufacturing",
    "WHL": "Wholesale Trade",
    "RET": "Retail Trade",
    "TRN": "Transportation and Warehousing",
    "INF": "Information",
    "FIN": "Finance, Insurance, and Real Estate",
    "PRF": "Professional, Scientific, Management, and Administrative Services",
    "EDU": "Educational Services",
    "MED": "Health Care",
    "SCA": "Social Assistance",
    "ENT": "Arts, Entertainment, Recreation, Accommodation, and Food Services",
    "SRV": "Other Services, Except Public Administration",
    "ADM": "Public Administration",
    "MIL": "Military",
}

# OCCP label prefix -> occupation major group (2018 SOC-based Census occupation groups).
OCCUPATION_GROUPS: dict[str, str] = {
    "MGR": "Management",
    "BUS": "Business Operations Specialists",
    "FIN": "Financial Specialists",
    "CMM": "Computer and Mathematical",
    "ENG": "Architecture and Engineering",
    "SCI": "Life, Physical, and Social Science",
    "CMS": "Community and Social Service",
    "LGL": "Legal",
    "EDU": "Educational Instruction and Library",
    "ENT": "Arts, Design, Entertainment, Sports, and Media",
    "MED": "Healthcare Practitioners and Technical",
    "HLS": "Healthcare Support",
    "PRT": "Protective Service",
    "EAT": "Food Preparation and Serving",
    "CLN": "Building and Grounds Cleaning and Maintenance",
    "PRS": "Personal Care and Service",
    "SAL": "Sales and Related",
    "OFF": "Office and Administrative Support",
    "FFF": "Farming, Fishing, and Forestry",
    "CON": "Construction",
    "EXT": "Extraction",
    "RPR": "Installation, Maintenance, and Repair",
    "PRD": "Production",
    "TRN": "Transportation and Material Moving",
    "MIL": "Military Specific",
}

# The one INDP/OCCP code that is not a job: the long-term unemployed / never worked.
NEVER_WORKED_CODE = "9920"
NEVER_WORKED_LABEL = "Unemployed, last worked 5 or more years ago or never worked"

# Race/ethnicity of a persona from RAC1P + HISP: anyone of Hispanic origin (HISP != 01) is
# "Hispanic or Latino"; otherwise the RAC1P race-alone group.
HISPANIC = "Hispanic or Latino"
RACE_BY_RAC1P: dict[str, str] = {
    "1": "White",
    "2": "Black or African American",
    "3": "American Indian or Alaska Native",
    "4": "American Indian or Alaska Native",
    "5": "American Indian or Alaska Native",
    "6": "Asian",
    "7": "Native Hawaiian or Other Pacific Islander",
    "8": "Some Other Race",
    "9": "Two or More Races",
}

# Six race/ethnicity groups (the layout of PRISM's us_census_aggregate.csv, which double-counts
# Hispanics and is no longer a target): PPS strata, religion/party tables, user share targets.
RACE_GROUP_BY_RACE: dict[str, str] = {
    "White": "White",
    "Black or African American": "Black",
    HISPANIC: "Hispanic",
    "Asian": "Asian",
    "Two or More Races": "Mixed",
    "American Indian or Alaska Native": "Other",
    "Native Hawaiian or Other Pacific Islander": "Other",
    "Some Other Race": "Other",
}
RACE_GROUPS: tuple[str, ...] = ("White", "Black", "Hispanic", "Mixed", "Other", "Asian")

# The three mutually exclusive groups the ACS 2022 sex-by-age tables identify (the bundled
# `us-2022` target, docs/personas.md): B01001H is White alone not Hispanic, B01001I Hispanic of
# any race; B01001B-G include Hispanics, so everyone else can only be one residual group.
WHITE_NOT_HISPANIC = "White non-Hispanic"
HISPANIC_GROUP = "Hispanic"
OTHER_NOT_HISPANIC = "Other non-Hispanic"
RACE_ETHNICITY_GROUPS: tuple[str, ...] = (WHITE_NOT_HISPANIC, HISPANIC_GROUP, OTHER_NOT_HISPANIC)
RACE_ETHNICITY_BY_RACE: dict[str, str] = {
    race: WHITE_NOT_HISPANIC
    if race == "White"
    else HISPANIC_GROUP
    if race == HISPANIC
    else OTHER_NOT_HISPANIC
    for race in RACE_GROUP_BY_RACE
}

ADULT_AGE = 18

# Income brackets (2018 dollars, ADJINC applied) for the census comparison.
INCOME_BRACKETS: tuple[tuple[int, int, str], ...] = (
    (-(10**9), 0, "None or loss"),
    (1, 24_999, "$1-$24,999"),
    (25_000, 49_999, "$25,000-$49,999"),
    (50_000, 74_999, "$50,000-$74,999"),
    (75_000, 99_999, "$75,000-$99,999"),
    (100_000, 149_999, "$100,000-$149,999"),
    (150_000, 10**12, "$150,000 or more"),
)

# Household language (HHL codes) from a detailed language code (LANP, 2016+ code list).
# The PUMS dictionary does not publish this grouping; the ranges follow the order of the Census
# language code list, which is grouped by language family (approximate at the edges, see
# docs/personas.md): 1200 Spanish; 1000-1564 other Indo-European; 1565-1582 Uralic (Finnish,
# Hungarian) -> other; 1675-3600 Asian and Pacific Island; 4500+ other languages.
HHL_ENGLISH_ONLY = "1"
HHL_SPANISH = "2"
HHL_OTHER_INDO_EUROPEAN = "3"
HHL_ASIAN_PACIFIC = "4"
HHL_OTHER = "5"
LANP_GROUP_RANGES: tuple[tuple[int, int, str], ...] = (
    (1200, 1200, HHL_SPANISH),
    (1000, 1564, HHL_OTHER_INDO_EUROPEAN),
    (1565, 1674, HHL_OTHER),
    (1675, 3999, HHL_ASIAN_PACIFIC),
    (4000, 9999, HHL_OTHER),
)


def range_label(number: pl.Expr, ranges: tuple[tuple[int, int, str], ...]) -> pl.Expr:
    """The label of the first (lo, hi, label) range holding each number (null if none)."""
    return pl.coalesce(
        [pl.when(number.is_between(lo, hi)).then(pl.lit(label)) for lo, hi, label in ranges]
    )


def lanp_group_expr(lanp: pl.Expr) -> pl.Expr:
    """HHL group code of a LANP code column (null for a blank code); first range wins."""
    number = lanp.cast(pl.Int64, strict=False)
    other = pl.when(number.is_not_null()).then(pl.lit(HHL_OTHER))
    return pl.coalesce(range_label(number, LANP_GROUP_RANGES), other)


def age_bracket(age: int) -> str:
    """The bracket of a census age; one outside every bracket is a data error."""
    label = contract_age_bracket(age)
    if label is None:
        raise ValueError(f"age {age} out of range")
    return label


# Yes/no labels that read ambiguously on their own get a persona-facing wording.
FERTILITY_LABELS: dict[str, str] = {
    "1": "Gave birth within the past 12 months",
    "2": "Did not give birth within the past 12 months",
}
SPEAKS_ONLY_ENGLISH = "Speaks only English"
