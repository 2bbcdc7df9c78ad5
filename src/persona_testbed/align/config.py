"""The align configuration: every choice that shapes its outputs (recorded in the manifest)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from persona_testbed.align.methods import BUILTIN_METHODS, registered_methods
from persona_testbed.contracts import AGE_BRACKET, ATTRIBUTES, HEADLINE_SLICES
from persona_testbed.estimation import RESAMPLES

EmbedderName = Literal["minilm", "hashing"]

# The persona attributes whose values get an accuracy slice (the bench's headline ones).
DEFAULT_SLICES: tuple[str, ...] = HEADLINE_SLICES


class AlignConfig(BaseModel):
    """Settings of one `persona align` run. No model is called: everything runs on the CPU."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    methods: tuple[str, ...] = Field(
        BUILTIN_METHODS, min_length=1, description="registered method names, in table order"
    )
    seed: int = Field(0, ge=0, description="the one seed of every draw (subsample, bootstrap)")
    resamples: int = Field(RESAMPLES, ge=100, description="cluster-bootstrap resamples")
    embedder: EmbedderName = Field(
        "minilm", description="minilm: the bundled all-MiniLM-L6-v2; hashing: bag of words"
    )
    slices: tuple[str, ...] = Field(DEFAULT_SLICES, description="persona attributes to slice by")
    judge_reference: bool = Field(
        True, description="show the preference judge's column as a reference row"
    )
    max_train_pairs: int = Field(
        20_000, ge=1, description="train pairs the models fit on (a seeded subsample above it)"
    )
    min_train_pairs: int = Field(
        2, ge=1, description="fewer train pairs: the models predict 0.5 and say why"
    )
    neighbours: int = Field(5, ge=1, description="most similar training personas (group)")

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        known = registered_methods()
        unknown = [name for name in value if name not in known]
        if unknown:
            raise ValueError(f"unknown method '{unknown[0]}' (known: {', '.join(known)})")
        if len(set(value)) != len(value):
            raise ValueError("a method is named twice")
        return value

    @field_validator("slices")
    @classmethod
    def _known_slices(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [a for a in value if a not in (*ATTRIBUTES, AGE_BRACKET)]
        if unknown:
            raise ValueError(f"unknown attribute '{unknown[0]}'")
        return value

    def manifest_config(self, embedder_name: str) -> dict[str, Any]:
        config = self.model_dump(mode="json")
        config["embedder_model"] = embedder_name
        return config


def parse_methods(text: str) -> tuple[str, ...]:
    """`--methods persona-blind,group` -> names (checked by AlignConfig)."""
    return tuple(part.strip() for part in text.split(",") if part.strip())
