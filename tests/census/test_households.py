"""Household type, family presence and household language, derived or from a household file."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from persona_testbed.census import (
    attach_household_codes,
    derive_household_codes,
    load_dictionary,
    read_households,
)
from persona_testbed.errors import InputError

# (SERIALNO, SPORDER, AGEP, SEX, RELP, LANX, LANP)
Member = tuple[str, int, int, str, str, str | None, str | None]


def _persons(members: list[Member]) -> pl.DataFrame:
    return pl.DataFrame(
        members,
        schema=["SERIALNO", "SPORDER", "AGEP", "SEX", "RELP", "LANX", "LANP"],
        orient="row",
    )


def _codes(members: list[Member]) -> dict[str, tuple[str | None, str | None, str | None]]:
    """SERIALNO -> (HHT2, FPARC, HHL) of the first member."""
    frame = derive_household_codes(_persons(members))
    first = frame.unique("SERIALNO", keep="first", maintain_order=True)
    return {
        row[0]: (row[1], row[2], row[3])
        for row in first.select("SERIALNO", "HHT_CODE", "FPARC", "HHL").iter_rows()
    }


def test_household_types_follow_the_acs_hht2_definitions() -> None:
    codes = _codes(
        [
            # married couple, own child of 4 and grandchild of 9
            ("A", 1, 40, "1", "00", "2", None),
            ("A", 2, 38, "2", "01", "2", None),
            ("A", 3, 4, "2", "02", None, None),
            ("A", 4, 9, "1", "07", "2", None),
            # married couple, their child is 18: no children under 18
            ("B", 1, 50, "2", "00", "2", None),
            ("B", 2, 52, "1", "01", "2", None),
            ("B", 3, 18, "1", "03", "2", None),
            # cohabiting couple with the householder's child of 12
            ("C", 1, 30, "2", "00", "2", None),
            ("C", 2, 31, "1", "13", "2", None),
            ("C", 3, 12, "1", "02", "2", None),
            # man living alone
            ("D", 1, 70, "1", "00", "2", None),
            # woman with her mother: relatives, no children
            ("E", 1, 45, "2", "00", "2", None),
            ("E", 2, 75, "2", "06", "2", None),
            # woman with roommates only
            ("F", 1, 25, "2", "00", "2", None),
            ("F", 2, 26, "1", "12", "2", None),
            # man with a foster child only: foster children are not relatives
            ("G", 1, 55, "1", "00", "2", None),
            ("G", 2, 8, "2", "14", "2", None),
            # group quarters resident
            ("H", 1, 19, "1", "17", "2", None),
        ]
    )
    assert codes["A"] == ("01", "3", "1")
    assert codes["B"] == ("02", "4", "1")
    assert codes["C"] == ("03", "2", "1")
    assert codes["D"] == ("09", None, "1")
    assert codes["E"] == ("07", "4", "1")
    assert codes["F"] == ("08", None, "1")
    assert codes["G"] == ("12", None, "1")
    assert codes["H"] == (None, None, "1")


def test_household_language_prefers_the_householder_then_the_first_speaker() -> None:
    codes = _codes(
        [
            # householder speaks Spanish (1200), a child speaks Vietnamese (1960)
            ("A", 1, 40, "1", "00", "1", "1200"),
            ("A", 2, 10, "1", "02", "1", "1960"),
            # householder speaks only English; members 2 and 3 speak German and Navajo
            ("B", 1, 60, "2", "00", "2", None),
            ("B", 2, 30, "2", "02", "1", "1110"),
            ("B", 3, 28, "2", "02", "1", "6933"),
            # everyone 5+ speaks only English; a baby has no language answer
            ("C", 1, 33, "2", "00", "2", None),
            ("C", 2, 1, "2", "02", None, None),
            # group quarters: the person's own language (Tagalog 2920)
            ("D", 1, 22, "1", "16", "1", "2920"),
        ]
    )
    assert codes["A"][2] == "2"  # Spanish
    assert codes["B"][2] == "3"  # Other Indo-European (German, member 2)
    assert codes["C"][2] == "1"  # English only
    assert codes["D"][2] == "4"  # Asian and Pacific Island languages


def test_household_file_values_win_where_the_serialno_matches() -> None:
    persons = _persons(
        [
            ("A", 1, 40, "1", "00", "2", None),
            ("A", 2, 38, "2", "01", "2", None),
            ("Z", 1, 70, "1", "00", "2", None),
        ]
    )
    households = pl.DataFrame(
        {
            "SERIALNO": ["A"],
            "FPARC": ["4"],
            "HHL": ["2"],
            "HHT_CODE": ["1"],
            "HHT_VAR": ["HHT"],
        }
    )
    frame, stats = attach_household_codes(persons, households)
    assert stats == {"households_from_file": 1, "households_derived": 1}
    rows = frame.select("SERIALNO", "HHT_VAR", "HHT_CODE", "HHL").rows()
    assert rows == [("A", "HHT", "1", "2"), ("A", "HHT", "1", "2"), ("Z", "HHT2", "09", "1")]


def test_read_households_prefers_hht2_and_checks_codes(tmp_path: Path) -> None:
    dictionary = load_dictionary(None)
    good = tmp_path / "psam_h50.csv"
    good.write_text("RT,SERIALNO,HHT,FPARC,HHL\nH,2018HU0000001,1,4,1\nH,2018GQ0000002,,,\n")
    frame = read_households([good], dictionary)
    assert frame.select("SERIALNO", "HHT_CODE", "HHT_VAR").rows() == [
        ("2018HU0000001", "1", "HHT"),
        ("2018GQ0000002", None, "HHT"),
    ]
    with_hht2 = tmp_path / "psam_h51.csv"
    with_hht2.write_text("SERIALNO,HHT,HHT2,FPARC,HHL\n2018HU0000001,1,02,4,1\n")
    assert read_households([with_hht2], dictionary).get_column("HHT_VAR").to_list() == ["HHT2"]
    bad = tmp_path / "psam_h52.csv"
    bad.write_text("SERIALNO,HHT,FPARC,HHL\n2018HU0000001,9,4,1\n")
    with pytest.raises(InputError, match=r"psam_h52\.csv, line 2, column HHT: code '9'"):
        read_households([bad], dictionary)
    missing = tmp_path / "psam_h53.csv"
    missing.write_text("SERIALNO,FPARC,HHL\n2018HU0000001,4,1\n")
    with pytest.raises(InputError, match=r"psam_h53\.csv: missing required column HHT2 or HHT"):
        read_households([missing], dictionary)
