"""Rebuild the bundled PUMS sample and dictionary subset from the ACS 2018 1-year state files.

    .venv/bin/python scripts/build_pums_sample.py [--source DIR] [--out DIR]

Reads every `csv_p??.zip` in --source (default ../shared/data/pums/2018) with the package's own
reader (so every code is checked against the dictionary), keeps only the person columns the
personas need, and writes ALL person rows (whole households, so the household derivations stay
valid) as zstd Parquet, sorted by state, SERIALNO and SPORDER. It also writes the matching subset
of `PUMS_Data_Dictionary_2018.csv` (same CSV format, same row order). See docs/personas.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from persona_testbed.census.dictionary import DataDictionary
from persona_testbed.census.pums import HOUSEHOLD_COLUMNS, PERSON_COLUMNS, read_persons
from persona_testbed.census.resources import BUNDLED_DICTIONARY, BUNDLED_SAMPLE

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "pums" / "2018"
DICTIONARY_NAME = "PUMS_Data_Dictionary_2018.csv"
# Household variables a user's 2018 psam_h file would supply (kept so it decodes offline).
EXTRA_VARIABLES = (*HOUSEHOLD_COLUMNS, "HHT")


def write_dictionary_subset(source: Path, target: Path, variables: set[str]) -> int:
    """Copy the NAME/VAL rows of `variables` verbatim, in the published order."""
    kept: list[str] = []
    for line in source.read_text(encoding="utf-8-sig").splitlines():
        fields = line.split(",", 2)
        if len(fields) >= 2 and fields[1] in variables:
            kept.append(line)
    target.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return len(kept)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out-sample", type=Path, default=BUNDLED_SAMPLE)
    parser.add_argument("--out-dictionary", type=Path, default=BUNDLED_DICTIONARY)
    args = parser.parse_args(argv)

    zips = sorted(args.source.glob("csv_p??.zip"))
    if not zips:
        print(f"no csv_p??.zip files in {args.source}", file=sys.stderr)
        return 1
    dictionary = DataDictionary.load(args.source / DICTIONARY_NAME)
    persons = read_persons(zips, dictionary).sort("ST", "SERIALNO", "SPORDER")
    persons = persons.select(PERSON_COLUMNS)
    args.out_sample.parent.mkdir(parents=True, exist_ok=True)
    # Statistics off and a fixed row group size: the file is byte-identical on every rebuild.
    persons.write_parquet(
        args.out_sample, compression="zstd", compression_level=19, statistics=False
    )
    rows = write_dictionary_subset(
        args.source / DICTIONARY_NAME,
        args.out_dictionary,
        {*PERSON_COLUMNS, *EXTRA_VARIABLES},
    )
    states = persons.group_by("ST").agg(pl.len(), pl.col("PWGTP").sum()).sort("ST")
    print(
        f"{len(zips)} state files -> {persons.height:,} person rows, {len(PERSON_COLUMNS)} columns"
    )
    print(f"wrote {args.out_sample} ({args.out_sample.stat().st_size / 1e6:.2f} MB)")
    print(f"wrote {args.out_dictionary} ({rows} dictionary rows)")
    print(states)
    return 0


if __name__ == "__main__":
    sys.exit(main())
