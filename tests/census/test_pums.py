"""Loading PUMS person files: formats, hand-read decoding of a real file, and clear errors."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from persona_testbed.census import (
    DataDictionary,
    attach_household_codes,
    decode_persons,
    load_dictionary,
    read_persons,
)
from persona_testbed.census.pums import PERSON_COLUMNS
from persona_testbed.census.resources import BUNDLED_DICTIONARY
from persona_testbed.errors import InputError

from .conftest import SHARED_DICTIONARY, shared_file, write_person_csv


def _decoded(paths: list[Path], dictionary: DataDictionary) -> pl.DataFrame:
    persons = read_persons(paths, dictionary).sort("ST", "SERIALNO", "SPORDER")
    coded, _ = attach_household_codes(persons, None)
    return decode_persons(coded, dictionary)


def _row(frame: pl.DataFrame, serialno: str, sporder: int) -> dict[str, Any]:
    match = frame.filter(
        (pl.col("source_serialno") == serialno) & (pl.col("source_sporder") == sporder)
    )
    assert match.height == 1
    return match.row(0, named=True)


# Rows of psam_p50.csv (Vermont, ACS 2018 1-year), read by hand from the raw CSV and decoded by
# hand with PUMS_Data_Dictionary_2018.csv. Line 2: SERIALNO 2018GQ0000859, SPORDER 01,
# AGEP 19, SEX 1, RAC1P 1, HISP 04, ANC1P 261, LANX 2, SCHL 19, SCH 3, ESR 6, COW 1, INDP 8680,
# OCCP 4030, PINCP 2600, ADJINC 1013097, MAR 5, POBP 036, CIT 1, MIL 4, DIS 2, HICOV 1,
# DREM 2, DEYE 2, DEAR 2, FER blank, RELP 17 (group quarters).
HAND_READ_GQ = {
    "age": 19,
    "sex": "Male",
    "race": "Hispanic or Latino",
    "ancestry": "Puerto Rican",
    "household language": "English only",
    "education": "1 or more years of college credit, no degree",
    "employment status": "Not in labor force",
    "class of worker": "Employee of a private for-profit company or business, or of an "
    "individual, for wages, salary, or commissions",
    "industry category": "Arts, Entertainment, Recreation, Accommodation, and Food Services",
    "occupation category": "Food Preparation and Serving",
    "detailed job description": "Student",
    "income": "2634",  # 2600 x 1.013097
    "marital status": "Never married or under 15 years old",
    "household type": None,
    "family presence and age": None,
    "place of birth": "New York/NY",
    "citizenship": "Born in the U.S.",
    "veteran status": "Never served in the military",
    "disability": "Without a disability",
    "health insurance": "With health insurance coverage",
    "cognitive difficulty": "No",
    "ability to speak English": "Speaks only English",
    "vision difficulty": "No",
    "fertility": None,
    "hearing difficulty": "No",
    "source_state": "50",
}
# Line 2002: SERIALNO 2018HU0396708 SPORDER 01, AGEP 71, SEX 2, RAC1P 1, HISP 01, ANC1P 022,
# SCHL 21, ESR 1, COW 5, INDP 9370, OCCP 0010, PINCP 78800, MAR 1, POBP 050, RELP 00; the
# household has one more person, RELP 01 (spouse), age 67.
HAND_READ_HOUSEHOLDER = {
    "age": 71,
    "sex": "Female",
    "race": "White",
    "ancestry": "English",
    "education": "Bachelor's degree",
    "employment status": "Civilian employed, at work",
    "class of worker": "Federal government employee",
    "industry category": "Public Administration",
    "occupation category": "Management",
    "detailed job description": "Chief Executives and Legislators in Executive Offices and "
    "Legislative Bodies",
    "income": "79832",  # 78800 x 1.013097
    "marital status": "Married",
    "household type": "Married couple household, no children of the householder less than 18",
    "family presence and age": "No related children",
    "place of birth": "Vermont/VT",
}


def test_decoding_matches_hand_read_rows_of_a_real_state_file() -> None:
    dictionary = load_dictionary(SHARED_DICTIONARY if SHARED_DICTIONARY.is_file() else None)
    frame = _decoded([shared_file("csv_pvt.zip")], dictionary)
    assert frame.height == 6436  # PROVENANCE.md: Vermont person rows
    gq = _row(frame, "2018GQ0000859", 1)
    assert {k: gq[k] for k in HAND_READ_GQ} == HAND_READ_GQ
    head = _row(frame, "2018HU0396708", 1)
    assert {k: head[k] for k in HAND_READ_HOUSEHOLDER} == HAND_READ_HOUSEHOLDER
    # A married couple whose grandchild is 18: no children under 18.
    grandchild = _row(frame, "2018HU0024715", 3)
    assert grandchild["household type"] == HAND_READ_HOUSEHOLDER["household type"]
    assert grandchild["family presence and age"] == "No related children"


def test_zip_plain_csv_and_national_split_files_read_the_same(
    tmp_path: Path, small_csv: Path
) -> None:
    dictionary = load_dictionary(None)
    plain = read_persons([small_csv], dictionary)
    archive = tmp_path / "csv_p50.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(small_csv, "psam_p50.csv")
        zf.writestr("ACS2018_PUMS_README.pdf", b"not a csv")
    assert read_persons([archive], dictionary).equals(plain)
    # The national file ships as two halves, psam_pusa.csv and psam_pusb.csv, in one zip.
    half = plain.height // 2
    national = tmp_path / "csv_pus.zip"
    with zipfile.ZipFile(national, "w") as zf:
        zf.writestr("psam_pusa.csv", plain.head(half).cast(pl.String).write_csv())
        zf.writestr("psam_pusb.csv", plain.tail(plain.height - half).cast(pl.String).write_csv())
    assert read_persons([national], dictionary).equals(plain)


def test_only_needed_columns_are_kept_and_leading_zeros_restored(
    tmp_path: Path, bundled_rows: pl.DataFrame
) -> None:
    rows = bundled_rows.head(40).with_columns(
        pl.col("RELP").str.strip_chars_start("0"),  # as a spreadsheet would save it
        pl.lit("x").alias("EXTRA"),
    )
    frame = read_persons([write_person_csv(rows, tmp_path / "p.csv")], load_dictionary(None))
    assert frame.columns == list(PERSON_COLUMNS)
    assert frame.get_column("RELP").to_list() == bundled_rows.head(40).get_column("RELP").to_list()


def test_missing_required_column_names_file_and_column(tmp_path: Path, small_csv: Path) -> None:
    rows = pl.read_csv(small_csv, infer_schema=False).drop("HICOV")
    bad = write_person_csv(rows, tmp_path / "psam_p99.csv")
    with pytest.raises(InputError, match=r"psam_p99\.csv: missing required column HICOV"):
        read_persons([bad], load_dictionary(None))


def test_unknown_code_names_file_line_and_column(tmp_path: Path, small_csv: Path) -> None:
    rows = pl.read_csv(small_csv, infer_schema=False)
    rows = rows.with_columns(
        pl.when(pl.int_range(pl.len()) == 6).then(pl.lit("7")).otherwise(pl.col("SEX")).alias("SEX")
    )
    bad = write_person_csv(rows, tmp_path / "psam_p50.csv")
    with pytest.raises(
        InputError,
        match=r"psam_p50\.csv, line 8, column SEX: code '7' is not in the data dictionary",
    ):
        read_persons([bad], load_dictionary(None))


def test_blank_where_the_dictionary_allows_none_is_an_error(
    tmp_path: Path, small_csv: Path
) -> None:
    rows = pl.read_csv(small_csv, infer_schema=False)
    rows = rows.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(pl.col("DEAR")).alias("DEAR")
    )
    bad = write_person_csv(rows, tmp_path / "psam_p50.csv")
    with pytest.raises(InputError, match=r"line 2, column DEAR: a blank is not in the data"):
        read_persons([bad], load_dictionary(None))


def test_dictionary_of_another_year_is_refused(tmp_path: Path, small_csv: Path) -> None:
    text = BUNDLED_DICTIONARY.read_text().replace("2018 factor", "2019 factor")
    other_year = tmp_path / "PUMS_Data_Dictionary_2019.csv"
    other_year.write_text(text)
    with pytest.raises(
        InputError,
        match=r"PUMS_Data_Dictionary_2019\.csv: data dictionary is for 2019 but "
        r".*psam_p50\.csv holds 2018 records \(column SERIALNO\)",
    ):
        read_persons([small_csv], load_dictionary(other_year))


def test_corrupt_and_truncated_zips_are_named(tmp_path: Path, small_csv: Path) -> None:
    junk = tmp_path / "csv_pxx.zip"
    junk.write_bytes(b"PK\x03\x04 definitely not a zip archive")
    with pytest.raises(InputError, match=r"csv_pxx\.zip: corrupt zip archive"):
        read_persons([junk], load_dictionary(None))
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(small_csv, "psam_p50.csv")
    truncated = tmp_path / "csv_p50_truncated.zip"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputError, match=r"csv_p50_truncated\.zip: corrupt zip archive"):
        read_persons([truncated], load_dictionary(None))
    damaged = bytearray(good.read_bytes())  # intact directory, damaged compressed data
    middle = len(damaged) // 3
    damaged[middle : middle + 64] = bytes(b ^ 0xFF for b in damaged[middle : middle + 64])
    flipped = tmp_path / "csv_p50_flipped.zip"
    flipped.write_bytes(bytes(damaged))
    with pytest.raises(InputError, match=r"csv_p50_flipped\.zip: corrupt zip archive"):
        read_persons([flipped], load_dictionary(None))


def test_zip_without_person_file_and_missing_file(tmp_path: Path) -> None:
    archive = tmp_path / "csv_hvt.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("psam_h50.csv", "RT,SERIALNO\n")
    with pytest.raises(InputError, match=r"csv_hvt\.zip: no psam_p\*\.csv person file"):
        read_persons([archive], load_dictionary(None))
    with pytest.raises(InputError, match=r"nope\.csv: file not found"):
        read_persons([tmp_path / "nope.csv"], load_dictionary(None))


def test_2019_files_with_relshipp_are_translated_to_relp(tmp_path: Path, small_csv: Path) -> None:
    from persona_testbed.census.pums import RELSHIPP_TO_RELP

    to_relshipp: dict[str, str] = {}
    for new, old in RELSHIPP_TO_RELP.items():
        to_relshipp.setdefault(old, new)  # spouse -> 21, partner -> 22
    rows = pl.read_csv(small_csv, infer_schema=False)
    newer = rows.with_columns(
        pl.col("SERIALNO").str.replace("^2018", "2019"),
        pl.col("RELP").replace_strict(to_relshipp).alias("RELSHIPP"),
    ).drop("RELP")
    path = write_person_csv(newer, tmp_path / "psam_p50.csv")
    lines = [
        line
        for line in BUNDLED_DICTIONARY.read_text()
        .replace("2018 factor", "2019 factor")
        .splitlines()
        if ",RELP," not in line
    ]
    lines.append('NAME,RELSHIPP,C,2,"Relationship"')
    lines += [f'VAL,RELSHIPP,C,2,"{c}","{c}","code {c}"' for c in RELSHIPP_TO_RELP]
    dictionary_2019 = tmp_path / "PUMS_Data_Dictionary_2019.csv"
    dictionary_2019.write_text("\n".join(lines) + "\n")
    frame = read_persons([path], load_dictionary(dictionary_2019))
    assert frame.get_column("RELP").to_list() == rows.get_column("RELP").to_list()
    bad = newer.with_columns(pl.lit("99").alias("RELSHIPP"))
    with pytest.raises(InputError, match="column RELSHIPP: code '99'"):
        read_persons(
            [write_person_csv(bad, tmp_path / "bad.csv")], load_dictionary(dictionary_2019)
        )


def test_a_truncated_csv_is_refused(tmp_path: Path, small_csv: Path) -> None:
    """A download cut off mid-row: the last row is short, and must not be read as data."""
    whole = small_csv.read_text()
    cut = whole.rstrip("\n")
    cut = cut[: cut.rfind(",", 0, len(cut) - 40)]  # a few fields short of a full row
    truncated = tmp_path / "psam_p98.csv"
    truncated.write_text(cut)
    with pytest.raises(InputError, match=r"psam_p98\.csv: the last row has \d+ of \d+ fields"):
        read_persons([truncated], load_dictionary(None))
    read_persons([small_csv], load_dictionary(None))  # the whole file still reads


def test_a_csv_cut_inside_its_last_field_is_refused(tmp_path: Path, small_csv: Path) -> None:
    """Cut inside the last field, the row keeps its field count; the missing newline gives it
    away (Census CSVs end with one)."""
    whole = small_csv.read_text()
    assert whole.endswith("\n")
    truncated = tmp_path / "psam_p97.csv"
    truncated.write_text(whole.rstrip("\n")[:-1])
    with pytest.raises(InputError, match=r"psam_p97\.csv: the file does not end with a newline"):
        read_persons([truncated], load_dictionary(None))
