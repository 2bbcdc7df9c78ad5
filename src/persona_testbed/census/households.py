"""Household attributes: household type, family presence and household language.

They come from a household file (psam_h: HHT2 or HHT, FPARC, HHL) when the user gives one;
otherwise they are derived from the persons who share a SERIALNO, following the ACS definitions:

- household type (HHT2 categories, the wording of the paper's Appendix C): married couple
  (a RELP 01 spouse), else cohabiting couple (a RELP 13 partner), else by the householder's sex:
  living alone, with own children under 18 (RELP 02-04), with other relatives (RELP 02-10), or
  only nonrelatives;
- family presence and age of related children (FPARC): for family households (householder plus at
  least one relative), related children are members under 18 related to the householder (RELP 02,
  03, 04, 05, 07, 10), split into under 5 and 5 to 17;
- household language (HHL): English only when no member speaks another language at home (LANX),
  else the language group (LANP) of the householder if they speak one, else of the first member
  who does.

Group-quarters residents (RELP 16/17) have no household: type and family presence are null and
the household language is their own.
"""

from __future__ import annotations

import polars as pl

from persona_testbed.census.categories import HHL_ENGLISH_ONLY, lanp_group_expr

DERIVED_HOUSEHOLD_TYPE_VAR = "HHT2"
GROUP_QUARTERS = ("16", "17")
OWN_CHILD = ("02", "03", "04")
RELATIVE = ("01", "02", "03", "04", "05", "06", "07", "08", "09", "10")
RELATED_CHILD = ("02", "03", "04", "05", "07", "10")
HOUSEHOLDER = "00"
SPOUSE = "01"
PARTNER = "13"


def _language_group() -> pl.Expr:
    """HHL group of each person's own language (null under 5)."""
    return (
        pl.when(pl.col("LANX") == "2")
        .then(pl.lit(HHL_ENGLISH_ONLY))
        .when(pl.col("LANX") == "1")
        .then(lanp_group_expr(pl.col("LANP")))
        .otherwise(None)
    )


def derive_household_codes(persons: pl.DataFrame) -> pl.DataFrame:
    """Add HHT_CODE/HHT_VAR (HHT2 codes), FPARC and HHL code columns derived from persons.

    `persons` must hold SERIALNO, SPORDER, AGEP, SEX, RELP, LANX and LANP; whole households give
    exact values (the bundled sample keeps households whole)."""
    household = "SERIALNO"
    relp = pl.col("RELP")
    age = pl.col("AGEP")
    in_gq = relp.is_in(GROUP_QUARTERS)

    def any_member(condition: pl.Expr) -> pl.Expr:
        return condition.any().over(household)

    frame = persons.with_columns(_language_group().alias("_lang"))
    frame = frame.with_columns(
        any_member(relp == SPOUSE).alias("_spouse"),
        any_member(relp == PARTNER).alias("_partner"),
        any_member(relp.is_in(OWN_CHILD) & (age < 18)).alias("_own_child"),
        any_member(relp.is_in(RELATIVE)).alias("_relatives"),
        any_member(relp.is_in(RELATED_CHILD) & (age < 5)).alias("_child_u5"),
        any_member(relp.is_in(RELATED_CHILD) & (age >= 5) & (age < 18)).alias("_child_5_17"),
        pl.len().over(household).alias("_size"),
        pl.col("SEX").filter(relp == HOUSEHOLDER).first().over(household).alias("_head_sex"),
        pl.col("_lang")
        .filter((relp == HOUSEHOLDER) & (pl.col("LANX") == "1"))
        .first()
        .over(household)
        .alias("_head_lang"),
        # First member (in SPORDER order) who speaks another language at home.
        pl.col("_lang")
        .filter(pl.col("LANX") == "1")
        .sort_by(pl.col("SPORDER").filter(pl.col("LANX") == "1"))
        .first()
        .over(household)
        .alias("_first_lang"),
    )
    female = pl.col("_head_sex") == "2"

    def alone_or_kin(female_code: str, male_code: str) -> pl.Expr:
        return pl.when(female).then(pl.lit(female_code)).otherwise(pl.lit(male_code))

    hht2 = (
        pl.when(in_gq)
        .then(None)
        .when(pl.col("_spouse"))
        .then(pl.when(pl.col("_own_child")).then(pl.lit("01")).otherwise(pl.lit("02")))
        .when(pl.col("_partner"))
        .then(pl.when(pl.col("_own_child")).then(pl.lit("03")).otherwise(pl.lit("04")))
        .when(pl.col("_head_sex").is_null())
        .then(None)  # no householder record: the household is incomplete in the input
        .when(pl.col("_size") == 1)
        .then(alone_or_kin("05", "09"))
        .when(pl.col("_own_child"))
        .then(alone_or_kin("06", "10"))
        .when(pl.col("_relatives"))
        .then(alone_or_kin("07", "11"))
        .otherwise(alone_or_kin("08", "12"))
    )
    fparc = (
        pl.when(in_gq | ~pl.col("_relatives"))
        .then(None)
        .when(pl.col("_child_u5") & pl.col("_child_5_17"))
        .then(pl.lit("3"))
        .when(pl.col("_child_u5"))
        .then(pl.lit("1"))
        .when(pl.col("_child_5_17"))
        .then(pl.lit("2"))
        .otherwise(pl.lit("4"))
    )
    hhl = (
        pl.when(in_gq)
        .then(pl.col("_lang"))
        .when(pl.col("_first_lang").is_null())
        .then(pl.lit(HHL_ENGLISH_ONLY))
        .otherwise(pl.coalesce("_head_lang", "_first_lang"))
    )
    helpers = [c for c in frame.columns if c.startswith("_") and c not in persons.columns]
    return frame.with_columns(
        hht2.alias("HHT_CODE"),
        pl.lit(DERIVED_HOUSEHOLD_TYPE_VAR).alias("HHT_VAR"),
        fparc.alias("FPARC"),
        hhl.alias("HHL"),
    ).drop(helpers)


def attach_household_codes(
    persons: pl.DataFrame, households: pl.DataFrame | None
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Household codes for every person: from `households` where its SERIALNO matches, derived
    from the persons otherwise. Returns the frame and counts of each source."""
    derived = derive_household_codes(persons)
    if households is None:
        return derived, {"households_from_file": 0, "households_derived": _households(derived)}
    matched = derived.join(
        households.rename(
            {"HHT_CODE": "_f_hht", "HHT_VAR": "_f_var", "FPARC": "_f_fparc", "HHL": "_f_hhl"}
        ).with_columns(pl.lit(True).alias("_f_found")),
        on="SERIALNO",
        how="left",
        maintain_order="left",
    )
    found = pl.col("_f_found").fill_null(False)
    merged = matched.with_columns(
        pl.when(found).then(pl.col("_f_hht")).otherwise(pl.col("HHT_CODE")).alias("HHT_CODE"),
        pl.when(found).then(pl.col("_f_var")).otherwise(pl.col("HHT_VAR")).alias("HHT_VAR"),
        pl.when(found).then(pl.col("_f_fparc")).otherwise(pl.col("FPARC")).alias("FPARC"),
        pl.when(found).then(pl.col("_f_hhl")).otherwise(pl.col("HHL")).alias("HHL"),
    )
    from_file = _households(merged.filter(found))
    from_persons = _households(merged.filter(~found))
    merged = merged.drop("_f_hht", "_f_var", "_f_fparc", "_f_hhl", "_f_found")
    return merged, {"households_from_file": from_file, "households_derived": from_persons}


def _households(frame: pl.DataFrame) -> int:
    return int(frame.select(pl.col("SERIALNO").n_unique()).item()) if frame.height else 0
