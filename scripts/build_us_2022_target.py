"""Rebuild the bundled `us-2022` raking target from the ACS 2022 1-year sex-by-age tables.

    .venv/bin/python scripts/build_us_2022_target.py [--source DIR] [--out FILE]

Reads the eight U.S.-level `us_census_age_sex_*only.xlsx` exports of data.census.gov in --source
(default ../shared/data/census_marginals; tables B01001B-I, dataset ACSDT1Y2022) and writes
`src/persona_testbed/census/data/us_census_target_2022.csv`: U.S. population by age bracket x sex
x three mutually exclusive race/ethnicity groups, plus the published total. See
docs/personas.md ("The us-2022 raking target").

Why three groups: B01001H (White alone, not Hispanic) and B01001I (Hispanic or Latino, any race)
are disjoint, but B01001B-G (Black, AIAN, Asian, NHPI, Some other race alone, Two or more races)
include Hispanics, so adding all eight counts the 52.8M Hispanics who are not White alone twice
(386.1M people against 333.3M). The tables do not say how many Hispanics each race-alone table
holds per age and sex, so the only groups they identify are White non-Hispanic (H), Hispanic
(I) and everyone else ("Other non-Hispanic").

The residual needs the total population per age and sex (table B01001), which is not among the
shipped tables. It is estimated as (B + C + D + E + F + G) - d x I per cell, where d, the share
of Hispanics who are not White alone, is identified nationally: the Hispanics counted in
B01001B-G number (H + I + B..G) - total, with total = 333,287,557 (Census Bureau Vintage 2022
estimate of the resident population on July 1, 2022, to which the ACS 2022 weights are
controlled). Assuming d is the same in every age x sex cell is the one modelling assumption;
docs/personas.md gives the bounds it implies for the adult shares.

Only the standard library is used (an .xlsx file is a zip of XML sheets).
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
import zipfile
from collections import Counter
from pathlib import Path
from xml.etree import ElementTree

from persona_testbed.census.categories import (
    AGE_BRACKETS,
    HISPANIC_GROUP,
    OTHER_NOT_HISPANIC,
    WHITE_NOT_HISPANIC,
)
from persona_testbed.census.resources import US_2022_TARGET

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "census_marginals"
SHEET = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
# Published U.S. resident population, July 1, 2022 (Census Bureau Vintage 2022 estimates,
# NST-EST2022 / CO-EST2022); the ACS 2022 1-year estimates are controlled to it.
US_TOTAL_2022 = 333_287_557
TOTAL_SOURCE = "Census Bureau Vintage 2022 population estimate, July 1 2022 (ACS 2022 control)"
# File stem -> (table id, universe the table's metadata must state).
TABLES: dict[str, tuple[str, str]] = {
    "white": ("B01001H", "White alone, not Hispanic or Latino population"),
    "hispanic": ("B01001I", "People who are Hispanic or Latino"),
    "black": ("B01001B", "People who are Black or African American alone"),
    "native": ("B01001C", "People who are American Indian and Alaska Native alone"),
    "asian": ("B01001D", "People who are Asian alone"),
    "islander": ("B01001E", "People who are Native Hawaiian and Other Pacific Islander alone"),
    "other": ("B01001F", "People who are Some Other Race alone"),
    "mixed": ("B01001G", "People who are Two or More Races"),
}
RACE_ALONE = ("black", "native", "asian", "islander", "other", "mixed")
_AGE = re.compile(r"^(?:Under (\d+)|(\d+) (?:to|and) (\d+)|(\d+)) years(?: and over)?$")

Cells = Counter[tuple[str, str]]


def _sheets(path: Path) -> list[list[list[str]]]:
    """Every worksheet of an .xlsx file as rows of cell texts."""
    with zipfile.ZipFile(path) as archive:
        shared = [
            "".join(text.text or "" for text in item.iter(SHEET + "t"))
            for item in ElementTree.fromstring(archive.read("xl/sharedStrings.xml"))
        ]
        names = sorted(
            n for n in archive.namelist() if re.match(r"xl/worksheets/sheet\d+\.xml$", n)
        )
        sheets = []
        for name in names:
            rows = []
            for row in ElementTree.fromstring(archive.read(name)).iter(SHEET + "row"):
                cells = []
                for cell in row.findall(SHEET + "c"):
                    value = cell.find(SHEET + "v")
                    text = value.text or "" if value is not None else ""
                    cells.append(shared[int(text)] if cell.get("t") == "s" else text)
                rows.append(cells)
            sheets.append(rows)
    return sheets


def _bracket(label: str) -> str:
    match = _AGE.match(label)
    if match is None:
        raise ValueError(f"unknown age label {label!r}")
    under, lo, hi, single = match.groups()
    if under:
        low, high = 0, int(under) - 1
    elif single:
        low = int(single)
        high = 200 if label.endswith("and over") else low
    else:
        low, high = int(lo), int(hi)
    for b_lo, b_hi, name in AGE_BRACKETS:
        if b_lo <= low and high <= b_hi:
            return name
    raise ValueError(f"age label {label!r} straddles the brackets")


def read_table(path: Path, table_id: str, universe: str) -> tuple[Cells, int]:
    """(population per (age bracket, sex), published table total) of one B01001x export."""
    notes, data = _sheets(path)[:2]
    meta = {row[0].strip(): row[1].strip() for row in notes if len(row) > 1}
    if meta.get("TABLE ID:") != table_id or meta.get("DATASET:") != "ACSDT1Y2022":
        raise ValueError(f"{path}: expected {table_id} of ACSDT1Y2022, found {meta}")
    if meta.get("UNIVERSE:") != universe:
        raise ValueError(f"{path}: universe {meta.get('UNIVERSE:')!r}, expected {universe!r}")
    cells: Cells = Counter()
    total = 0
    sex = ""
    for row in data[2:]:
        label, value = row[0].strip(), int(row[1].replace(",", ""))
        if label == "Total:":
            total = value
        elif label in ("Male:", "Female:"):
            sex = label.removesuffix(":")
        else:
            cells[(_bracket(label), sex)] += value
    if sum(cells.values()) != total:
        raise ValueError(f"{path}: age x sex cells sum to {sum(cells.values())}, total {total}")
    return cells, total


def build(source: Path) -> tuple[list[list[str]], dict[str, float]]:
    tables = {
        stem: read_table(source / f"us_census_age_sex_{stem}only.xlsx", table_id, universe)
        for stem, (table_id, universe) in TABLES.items()
    }
    white, hispanic = tables["white"][0], tables["hispanic"][0]
    race_alone: Cells = Counter()
    for stem in RACE_ALONE:
        race_alone.update(tables[stem][0])
    all_tables = sum(total for _, total in tables.values())
    hispanic_total = tables["hispanic"][1]
    # Hispanics counted in B01001B-G, as a share of all Hispanics (identified nationally only).
    not_white_alone = (all_tables - US_TOTAL_2022) / hispanic_total
    rows: list[list[str]] = []
    alone_ids = "+".join(TABLES[s][0].removeprefix("B01001") for s in RACE_ALONE)
    residual_source = f"B01001{alone_ids} - {not_white_alone:.6f} x B01001I (estimated)"
    for _, _, bracket in AGE_BRACKETS:
        for sex in ("Male", "Female"):
            key = (bracket, sex)
            residual = race_alone[key] - not_white_alone * hispanic[key]
            rows.append([bracket, sex, WHITE_NOT_HISPANIC, str(white[key]), "B01001H"])
            rows.append([bracket, sex, HISPANIC_GROUP, str(hispanic[key]), "B01001I"])
            rows.append([bracket, sex, OTHER_NOT_HISPANIC, str(round(residual)), residual_source])
    rows.append(["All", "All", "All", str(US_TOTAL_2022), TOTAL_SOURCE])
    facts = {
        "all_tables": all_tables,
        "hispanic_in_race_alone_tables": all_tables - US_TOTAL_2022,
        "not_white_alone_share_of_hispanics": not_white_alone,
    }
    return rows, facts


HEADER_COMMENT = """\
# U.S. 2022 population by age bracket x sex x mutually exclusive race/ethnicity group: the
# bundled `--rake us-2022` target (raked on its adult rows, ages 18+). Built by
# scripts/build_us_2022_target.py from ACS 2022 1-year Detailed Tables (ACSDT1Y2022), U.S.:
# B01001H (White alone, not Hispanic or Latino) and B01001I (Hispanic or Latino) as published;
# "Other non-Hispanic" = B01001B+C+D+E+F+G (race-alone / two-or-more tables, which include
# Hispanics) minus the estimated Hispanics in them, d x B01001I with d = {d:.6f} identified by
# the published total ({hispanic_in:,} Hispanics in B01001B-G = {all_tables:,} - {total:,}) and
# assumed equal in every age x sex cell. The "All" row is the published total population.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=US_2022_TARGET)
    args = parser.parse_args(argv)
    rows, facts = build(args.source)
    buffer = io.StringIO()
    buffer.write(
        HEADER_COMMENT.format(
            d=facts["not_white_alone_share_of_hispanics"],
            hispanic_in=int(facts["hispanic_in_race_alone_tables"]),
            all_tables=int(facts["all_tables"]),
            total=US_TOTAL_2022,
        )
    )
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["age_bracket", "sex", "race_ethnicity", "population", "source"])
    writer.writerows(rows)
    args.out.write_text(buffer.getvalue(), encoding="utf-8")
    print(f"wrote {args.out}: {len(rows) - 1} cells; {facts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
