"""Reading the PUMS data dictionary in its published CSV format."""

from __future__ import annotations

from pathlib import Path

import pytest

from persona_testbed.census import DataDictionary
from persona_testbed.census.resources import BUNDLED_DICTIONARY, DERIVED_DICTIONARY
from persona_testbed.errors import InputError

from .conftest import SHARED_DICTIONARY


def test_bundled_subset_reads_labels_blanks_and_ranges() -> None:
    dictionary = DataDictionary.load(BUNDLED_DICTIONARY)
    assert dictionary.years == frozenset({2018})
    sex = dictionary.variable("SEX")
    assert sex.label_of("2") == "Female"
    esr = dictionary.variable("ESR")
    assert esr.allows_blank and esr.label_of(None) == "N/A (less than 16 years old)"
    agep = dictionary.variable("AGEP")
    assert agep.kind == "N" and agep.knows("37") and not agep.knows("120")
    relp = dictionary.variable("RELP")
    assert relp.normalize("1") == "01" and relp.knows("01")
    assert not dictionary.variable("DEAR").allows_blank


def test_bundled_subset_matches_the_full_2018_dictionary() -> None:
    if not SHARED_DICTIONARY.is_file():
        pytest.skip("shared dictionary not available")
    full = DataDictionary.load(SHARED_DICTIONARY)
    subset = DataDictionary.load(BUNDLED_DICTIONARY)
    for name, variable in subset.variables.items():
        assert full.variables[name] == variable, name


def test_derived_variables_fall_back_without_overriding() -> None:
    main = DataDictionary.load(BUNDLED_DICTIONARY)
    merged = main.with_fallback(DataDictionary.load(DERIVED_DICTIONARY))
    assert merged.variable("HHT2").label_of("02") == (
        "Married couple household, no children of the householder less than 18"
    )
    assert merged.variable("SEX") is main.variable("SEX")
    assert merged.years == main.years


def test_not_a_dictionary_names_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "dict.csv"
    bad.write_text('NAME,SEX,C,1,"Sex"\nRT,SERIALNO,H\n')
    with pytest.raises(InputError, match=r"dict\.csv, line 2: expected a NAME or VAL row"):
        DataDictionary.load(bad)


def test_missing_variable_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="variable NOPE is not in the data dictionary"):
        DataDictionary.load(BUNDLED_DICTIONARY).variable("NOPE")
