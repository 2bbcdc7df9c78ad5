"""The bench configuration: every choice that shapes its outputs (recorded in the manifest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from persona_testbed.bench.methods import ALL_METHODS, Method
from persona_testbed.bench.pairs import PersonaSplit, PromptSplit
from persona_testbed.bench.slices import SliceFilter, parse_slice
from persona_testbed.contracts import ATTRIBUTES
from persona_testbed.errors import InputError
from persona_testbed.llm import DEFAULT_MODEL

MAX_K = 64


class BenchConfig(BaseModel):
    """Settings of one `persona bench` run. Defaults give a quick run on the embedded model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: tuple[str, ...] = Field((DEFAULT_MODEL,), min_length=1)
    judge: str | None = Field(None, description="judge model spec; None: the first model")
    methods: tuple[Method, ...] = Field(ALL_METHODS, min_length=1)
    n: int = Field(20, ge=1, description="(persona, question) pairs")
    k: int = Field(1, ge=1, le=MAX_K, description="samples per pair and method (pass@1..k)")
    seed: int = Field(0, ge=0)
    temperature: float = Field(0.7, ge=0.0, le=2.0, description="sampling of the model under test")
    max_tokens: int = Field(96, ge=8, description="answers and summaries (CoT gets twice)")
    judge_max_tokens: int = Field(128, ge=16, description="critic verdicts")
    slices: tuple[str, ...] = Field((), description="--slice filters, as given")
    loo: tuple[str, ...] = Field((), description="attributes for leave-one-attribute-out")
    drops_judge: bool = Field(False, description="LLM judge for summary attribute drops")
    personas: Path | None = None
    prompts: Path | None = None
    persona_split: PersonaSplit = "test"
    prompt_split: PromptSplit = "heldout"
    templates: Path | None = None

    @field_validator("slices")
    @classmethod
    def _check_slices(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            try:
                parse_slice(text)
            except InputError as exc:  # pydantic reports a ValueError with the field's place
                raise ValueError(str(exc)) from None
        return value

    @field_validator("loo")
    @classmethod
    def _check_loo(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [a for a in value if a not in ATTRIBUTES]
        if unknown:
            raise ValueError(f"unknown attribute '{unknown[0]}'")
        return value

    @property
    def judge_model(self) -> str:
        """The judge: the one named, else the (first) model under test."""
        return self.judge or self.models[0]

    def slice_filters(self) -> list[SliceFilter]:
        return [parse_slice(text) for text in self.slices]

    def manifest_config(self, templates_digest: str) -> dict[str, Any]:
        config = self.model_dump(mode="json")
        config["judge"] = self.judge_model
        config["templates_digest"] = templates_digest
        return config


def parse_loo(text: str | None) -> tuple[str, ...]:
    """`--loo all` or `--loo "religion,political views"` -> attribute names (Appendix A order)."""
    if text is None or not text.strip():
        return ()
    if text.strip().casefold() == "all":
        return ATTRIBUTES
    by_fold = {a.casefold(): a for a in ATTRIBUTES}
    chosen: list[str] = []
    for part in text.split(","):
        name = " ".join(part.split()).casefold()
        if not name:
            continue
        if name not in by_fold:
            raise InputError(
                f"--loo: unknown attribute '{part.strip()}' (use 'all' or names such as "
                "'religion', 'political views')"
            )
        if by_fold[name] not in chosen:
            chosen.append(by_fold[name])
    return tuple(a for a in ATTRIBUTES if a in chosen)


def parse_models(values: list[str] | None) -> tuple[str, ...]:
    """Repeated --model (each may also be a comma list), without repeats."""
    specs: list[str] = []
    for value in values or [DEFAULT_MODEL]:
        for spec in value.split(","):
            spec = spec.strip()
            if spec and spec not in specs:
                specs.append(spec)
    if not specs:
        raise InputError("--model: give at least one model spec")
    return tuple(specs)
