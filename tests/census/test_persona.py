"""The persona record: Appendix A names and order, null handling, canonical text."""

from __future__ import annotations

from persona_testbed.contracts import ATTRIBUTES, OUTPUT_COLUMNS, Persona

# Appendix A of the paper, verbatim and in order.
APPENDIX_A = [
    "age",
    "sex",
    "race",
    "ancestry",
    "household language",
    "education",
    "employment status",
    "class of worker",
    "industry category",
    "occupation category",
    "detailed job description",
    "income",
    "marital status",
    "household type",
    "family presence and age",
    "place of birth",
    "citizenship",
    "veteran status",
    "disability",
    "health insurance",
    "big five scores",
    "defining quirks",
    "mannerisms",
    "personal time",
    "lifestyle",
    "ideology",
    "political views",
    "religion",
    "cognitive difficulty",
    "ability to speak English",
    "vision difficulty",
    "fertility",
    "hearing difficulty",
]


def test_attributes_are_appendix_a_in_order() -> None:
    assert list(ATTRIBUTES) == APPENDIX_A
    assert OUTPUT_COLUMNS[:2] == ("persona_id", "split")
    assert list(OUTPUT_COLUMNS[2:35]) == APPENDIX_A
    assert OUTPUT_COLUMNS[35:] == ("source_state", "source_serialno", "source_sporder", "weight")


def test_row_round_trip_uses_paper_names() -> None:
    row = {name: None for name in APPENDIX_A} | {
        "age": 10,
        "sex": "Female",
        "political views": "Too young to have political views",
        "persona_id": "p0001",
    }
    persona = Persona.from_row(row)
    assert persona.political_views == "Too young to have political views"
    assert persona.to_row() == {name: row[name] for name in APPENDIX_A}


def test_text_form_is_ordered_and_skips_not_applicable() -> None:
    persona = Persona.model_validate(
        {"age": 73, "sex": "Female", "income": "178900", "fertility": None, "religion": "Other"}
    )
    assert persona.to_text() == "age: 73\nsex: Female\nincome: 178900\nreligion: Other"
