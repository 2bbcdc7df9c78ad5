"""Paths of the data bundled with the package (never ../shared: that is for development only)."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"

# All 173,916 person rows of the 14 ACS 2018 1-year state files, needed columns only.
BUNDLED_SAMPLE = DATA_DIR / "pums_2018_persons.parquet"
# The matching rows of PUMS_Data_Dictionary_2018.csv (published CSV format).
BUNDLED_DICTIONARY = DATA_DIR / "PUMS_Data_Dictionary_2018_subset.csv"
# Labels of the household variables this package derives (HHT2 in its 2019+ wording, FPARC,
# HHL), for dictionaries that lack them.
DERIVED_DICTIONARY = DATA_DIR / "derived_variables_dictionary.csv"
# U.S. 2022 population by age bracket x sex x three disjoint race/ethnicity groups (ACS 2022
# B01001H, B01001I, B01001B-G; scripts/build_us_2022_target.py).
US_2022_TARGET = DATA_DIR / "us_census_target_2022.csv"
# Hand-written lists (quirks, mannerisms, ...) and published belief distributions.
CURATED_FILE = DATA_DIR / "curated_lists.yaml"
BELIEFS_FILE = DATA_DIR / "beliefs.yaml"
