"""The persona record: the paper's 33 attributes (Appendix A), same names, same order.

Every stage that shows a persona to a model or a person uses `Persona.to_text` (through
`persona_card`), so the card is the same text everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from persona_testbed.errors import InputError


class Persona(BaseModel):
    """One synthetic persona. Field aliases are the paper's attribute names (Appendix A), which
    are also the Parquet/JSONL column names; `None` means "not applicable" for this person."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="forbid")

    age: int | None = Field(None, alias="age")
    sex: str | None = Field(None, alias="sex")
    race: str | None = Field(None, alias="race")
    ancestry: str | None = Field(None, alias="ancestry")
    household_language: str | None = Field(None, alias="household language")
    education: str | None = Field(None, alias="education")
    employment_status: str | None = Field(None, alias="employment status")
    class_of_worker: str | None = Field(None, alias="class of worker")
    industry_category: str | None = Field(None, alias="industry category")
    occupation_category: str | None = Field(None, alias="occupation category")
    detailed_job_description: str | None = Field(None, alias="detailed job description")
    income: str | None = Field(None, alias="income")
    marital_status: str | None = Field(None, alias="marital status")
    household_type: str | None = Field(None, alias="household type")
    family_presence_and_age: str | None = Field(None, alias="family presence and age")
    place_of_birth: str | None = Field(None, alias="place of birth")
    citizenship: str | None = Field(None, alias="citizenship")
    veteran_status: str | None = Field(None, alias="veteran status")
    disability: str | None = Field(None, alias="disability")
    health_insurance: str | None = Field(None, alias="health insurance")
    big_five_scores: str | None = Field(None, alias="big five scores")
    defining_quirks: str | None = Field(None, alias="defining quirks")
    mannerisms: str | None = Field(None, alias="mannerisms")
    personal_time: str | None = Field(None, alias="personal time")
    lifestyle: str | None = Field(None, alias="lifestyle")
    ideology: str | None = Field(None, alias="ideology")
    political_views: str | None = Field(None, alias="political views")
    religion: str | None = Field(None, alias="religion")
    cognitive_difficulty: str | None = Field(None, alias="cognitive difficulty")
    ability_to_speak_english: str | None = Field(None, alias="ability to speak English")
    vision_difficulty: str | None = Field(None, alias="vision difficulty")
    fertility: str | None = Field(None, alias="fertility")
    hearing_difficulty: str | None = Field(None, alias="hearing difficulty")

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Persona:
        """Build from a Parquet/JSONL row (extra columns such as persona_id are ignored)."""
        return cls.model_validate({name: row.get(name) for name in ATTRIBUTES})

    def to_row(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)

    def to_text(self) -> str:
        """The one canonical text form used in prompts: `attribute: value` per line, in
        Appendix A order, leaving out attributes that do not apply to this person."""
        lines = []
        for name, value in self.to_row().items():
            if value is not None and value != "":
                lines.append(f"{name}: {value}")
        return "\n".join(lines)


# The 33 attribute names in Appendix A order (the model's aliases, so they cannot drift).
ATTRIBUTES: tuple[str, ...] = tuple(
    field.alias or name for name, field in Persona.model_fields.items()
)

# Attributes read from a PUMS record (directly or by household derivation).
CENSUS_ATTRIBUTES: tuple[str, ...] = (
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
    "income",
    "marital status",
    "household type",
    "family presence and age",
    "place of birth",
    "citizenship",
    "veteran status",
    "disability",
    "health insurance",
    "cognitive difficulty",
    "ability to speak English",
    "vision difficulty",
    "fertility",
    "hearing difficulty",
)

# Attributes drawn procedurally (Big Five, curated lists, published distributions).
PROCEDURAL_ATTRIBUTES: tuple[str, ...] = (
    "big five scores",
    "defining quirks",
    "mannerisms",
    "personal time",
    "lifestyle",
    "ideology",
    "political views",
    "religion",
)

# Columns of personas.parquet besides the 33 attributes.
ID_COLUMNS: tuple[str, ...] = ("persona_id", "split")
SOURCE_COLUMNS: tuple[str, ...] = ("source_state", "source_serialno", "source_sporder", "weight")
OUTPUT_COLUMNS: tuple[str, ...] = (*ID_COLUMNS, *ATTRIBUTES, *SOURCE_COLUMNS)

assert len(ATTRIBUTES) == 33
assert set(CENSUS_ATTRIBUTES) | set(PROCEDURAL_ATTRIBUTES) | {"detailed job description"} == set(
    ATTRIBUTES
)


def persona_from_row(row: dict[str, Any], path: Path | str) -> Persona:
    """The persona of a personas-table row; a bad value is one line naming the file, the
    persona and the field."""
    try:
        return Persona.from_row(row)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise InputError(
            f"{path}: persona '{row.get('persona_id')}': field '{field}': {error['msg']}"
        ) from None


def persona_card(row: dict[str, Any], path: Path | str) -> str:
    """The canonical persona card (`Persona.to_text`) of a personas-table row."""
    return persona_from_row(row, path).to_text()


def persona_cards(rows: Any, path: Path | str) -> dict[str, str]:
    """persona_id -> canonical card, for the rows of a personas table (a frame's
    `iter_rows(named=True)`)."""
    return {str(row["persona_id"]): persona_card(row, path) for row in rows}
