"""The preferences stage's DPF steps and role-play judge, reused here (never copied).

Every import from `persona_testbed.preferences` goes through this module, so the agreement
stage personalises answers and role-plays personas exactly as the preference data was made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from persona_testbed.llm import LLMClient
from persona_testbed.preferences import (
    GenerationSettings,
    Refined,
    TemplateSet,
    base_answers,
    judge_choice,
    load_templates,
    refine_answers,
)

DEFAULT_TEMPLATES = "paper"


class _TemplatesSection(Protocol):
    @property
    def templates(self) -> str: ...


def template_digest(*sections: _TemplatesSection | None) -> str:
    """The digests of the template sets the agreement parts use (a part left out adds none)."""
    return "".join(load_templates(s.templates).digest for s in sections if s is not None)


def generate_base_answers(
    client: LLMClient,
    templates: TemplateSet,
    questions: Sequence[str],
    settings: GenerationSettings,
) -> list[str]:
    """y_l for each question: the bare question, no persona (the preferences base step).

    A base answer that is still cut by the token limit or empty after its one retry with a
    larger budget comes back as "" (the caller leaves it out and counts it)."""
    outputs, _ = base_answers(client, templates, questions, settings=settings)
    return [output.text if output.ok else "" for output in outputs]


__all__ = [
    "DEFAULT_TEMPLATES",
    "GenerationSettings",
    "Refined",
    "TemplateSet",
    "generate_base_answers",
    "judge_choice",
    "load_templates",
    "refine_answers",
    "template_digest",
]
