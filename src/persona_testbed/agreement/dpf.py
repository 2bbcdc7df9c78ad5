"""The preferences stage's DPF steps and role-play judge, reused here (never copied).

Every import from `persona_testbed.preferences` goes through this module, so the agreement
stage personalises answers and role-plays personas exactly as the preference data was made.
"""

from __future__ import annotations

from collections.abc import Sequence

from persona_testbed.llm import LLMClient
from persona_testbed.preferences import (
    GenerationSettings,
    Refined,
    TemplateSet,
    build_base_request,
    judge_choice,
    load_templates,
    refine_answers,
)

DEFAULT_TEMPLATES = "paper"


def generate_base_answers(
    client: LLMClient,
    templates: TemplateSet,
    questions: Sequence[str],
    settings: GenerationSettings,
) -> list[str]:
    """y_l for each question: the bare question, no persona (the preferences base step)."""
    results = client.complete_batch(
        [build_base_request(client, templates, q, settings=settings) for q in questions],
        description="base answers",
    )
    return [r.text.strip() for r in results]


__all__ = [
    "DEFAULT_TEMPLATES",
    "GenerationSettings",
    "Refined",
    "TemplateSet",
    "generate_base_answers",
    "judge_choice",
    "load_templates",
    "refine_answers",
]
