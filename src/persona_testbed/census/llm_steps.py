"""The two LLM steps of persona generation (paper Fig. 1), through the cached LLM layer.

1. Consistency judge: after the census record is sampled, a model says whether the profile is
   self-consistent (JSON verdict + reason). Inconsistent profiles are pruned and resampled. A
   reply that cannot be parsed keeps the profile and is counted as a judge failure.
2. Open-ended fill: after procedural enrichment, a model writes the detailed job description and
   the psychodemographic categories chosen for this persona (2 of: defining quirks, mannerisms,
   personal time, lifestyle), told never to contradict the census fields. A failed reply keeps
   the procedural values and is counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import numpy as np
from pydantic import BaseModel, Field, create_model

from persona_testbed import templates
from persona_testbed.llm import LLMClient, Message
from persona_testbed.templates import SYSTEM, USER, PromptTemplate, TemplateSpec

FILL_CATEGORIES: tuple[str, ...] = ("defining quirks", "mannerisms", "personal time", "lifestyle")
JOB = "detailed job description"
# Length caps go into the JSON schema, so constrained decoding cannot ramble past them (small
# models otherwise run to max_tokens and leave the JSON unclosed).
MAX_JOB_CHARS = 200
MAX_FIELD_CHARS = 120
MAX_REASON_CHARS = 160

_FIELD_KEYS = tuple(attribute.replace(" ", "_") for attribute in (JOB, *FILL_CATEGORIES))
# The prompts: census/templates/*.txt (persona_testbed.templates), part of the stage fingerprint.
JUDGE_TEMPLATE = TemplateSpec("consistency-judge", frozenset({"profile"}), frozenset({"profile"}))
FILL_TEMPLATE = TemplateSpec(
    "persona-fill",
    frozenset({"profile", "core_values", "fields", "keys"}),
    frozenset({"profile", "core_values", "fields", "keys"}),
    # One section per field the model writes (named by its JSON key): the guide to its text.
    sections=(SYSTEM, USER, *_FIELD_KEYS),
    required_sections=(SYSTEM, USER, *_FIELD_KEYS),
)
PACKAGE = "persona_testbed.census"


class _PersonasSection(Protocol):
    """What the template digest reads of the personas config."""

    @property
    def use_llm(self) -> bool: ...


def judge_template() -> PromptTemplate:
    return templates.load_bundled(PACKAGE, JUDGE_TEMPLATE)


def fill_template() -> PromptTemplate:
    return templates.load_bundled(PACKAGE, FILL_TEMPLATE)


def template_digest(config: _PersonasSection) -> str:
    """The digest of the prompts this config sends (none without the LLM steps)."""
    return templates.digest([judge_template(), fill_template()]) if config.use_llm else ""


class ConsistencyVerdict(BaseModel):
    consistent: bool
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)


@dataclass(frozen=True)
class JudgeOutcome:
    keep: bool
    consistent: bool | None  # None: the reply could not be parsed (kept, counted)
    reason: str


@dataclass(frozen=True)
class FillOutcome:
    values: dict[str, str]  # attribute name -> text written by the model
    error: str | None


def json_key(attribute: str) -> str:
    return attribute.replace(" ", "_")


def judge_messages(profile: str, template: PromptTemplate | None = None) -> list[Message]:
    return (template or judge_template()).messages(profile=profile)


def judge_consistency(
    client: LLMClient, profiles: Sequence[str], *, seed: int
) -> list[JudgeOutcome]:
    template = judge_template()
    requests = [
        client.request(judge_messages(p, template), max_tokens=96, temperature=0.0, seed=seed)
        for p in profiles
    ]
    results = client.structured_batch(requests, ConsistencyVerdict, description="consistency judge")
    outcomes = []
    for result in results:
        if result.value is None:
            reason = f"judge reply not parsed: {result.error or 'invalid'}"
            outcomes.append(JudgeOutcome(keep=True, consistent=None, reason=reason))
        else:
            verdict = result.value
            outcomes.append(
                JudgeOutcome(
                    keep=verdict.consistent, consistent=verdict.consistent, reason=verdict.reason
                )
            )
    return outcomes


def choose_fill_categories(
    n: int, rng: np.random.Generator, per_persona: int = 2
) -> list[tuple[str, ...]]:
    """The psychodemographic categories the model writes for each persona (paper §3.1: "we
    selected a number of categories per persona in order to guarantee diverse coverage")."""
    keys = rng.random((n, len(FILL_CATEGORIES))).argsort(axis=1)[:, :per_persona]
    return [tuple(FILL_CATEGORIES[i] for i in sorted(row)) for row in keys.tolist()]


def end_cleanly(text: str, cap: int) -> str:
    """A text that hit the schema's length cap was cut by constrained decoding, often mid-word:
    keep it up to its last full sentence, else its last full word."""
    if len(text) < cap - 1:
        return text
    cut = max(text.rfind(". "), text.rfind("! "), text.rfind("? "))
    if text.endswith((".", "!", "?")):
        return text
    if cut >= cap // 3:
        return text[: cut + 1]
    space = text.rfind(" ")
    if space <= 0:
        return text
    return text[:space].rstrip(",;:- ") + "."


@cache
def fill_schema(categories: tuple[str, ...]) -> type[BaseModel]:
    """A JSON schema with exactly the requested keys, all required (constrains the model)."""
    fields: dict[str, tuple[type[str], object]] = {
        json_key(attribute): (
            str,
            Field(min_length=1, max_length=MAX_JOB_CHARS if attribute == JOB else MAX_FIELD_CHARS),
        )
        for attribute in (JOB, *categories)
    }
    name = "PersonaFill_" + "_".join(json_key(c) for c in categories)
    model: type[BaseModel] = create_model(name, **fields)  # type: ignore[call-overload]
    return model


def fill_messages(
    profile: str,
    core_values: str,
    categories: tuple[str, ...],
    template: PromptTemplate | None = None,
) -> list[Message]:
    template = template or fill_template()
    keys = [json_key(a) for a in (JOB, *categories)]
    wanted = "\n".join(f"- {key}: {template.fill(key)}" for key in keys)
    return template.messages(
        profile=profile, core_values=core_values, fields=wanted, keys=", ".join(keys)
    )


def open_ended_fill(
    client: LLMClient,
    profiles: Sequence[str],
    core_values: Sequence[str],
    categories: Sequence[tuple[str, ...]],
    *,
    seed: int,
) -> list[FillOutcome]:
    """One model call per persona; requests sharing a category set share one JSON schema."""
    outcomes: list[FillOutcome | None] = [None] * len(profiles)
    template = fill_template()
    groups: dict[tuple[str, ...], list[int]] = {}
    for index, chosen in enumerate(categories):
        groups.setdefault(chosen, []).append(index)
    for chosen in sorted(groups):
        indices = groups[chosen]
        requests = [
            client.request(
                fill_messages(profiles[i], core_values[i], chosen, template),
                max_tokens=260,
                temperature=0.0,
                seed=seed,
            )
            for i in indices
        ]
        results = client.structured_batch(requests, fill_schema(chosen), description="persona fill")
        for index, result in zip(indices, results, strict=True):
            if result.value is None:
                outcomes[index] = FillOutcome(values={}, error=result.error or "invalid reply")
                continue
            raw = result.value.model_dump()
            values = {
                attribute: end_cleanly(
                    " ".join(str(raw[json_key(attribute)]).split()),
                    MAX_JOB_CHARS if attribute == JOB else MAX_FIELD_CHARS,
                )
                for attribute in (JOB, *chosen)
            }
            outcomes[index] = FillOutcome(values={k: v for k, v in values.items() if v}, error=None)
    return [outcome or FillOutcome(values={}, error="no reply") for outcome in outcomes]
