"""Direct Principle Feedback (Castricato et al., 2024; paper §3.2, Fig. 4, Appendix B):
a base answer y_l to the bare question, a critique of y_l against the persona, and a revision
into the persona-specific y_w.

Request builders are pure functions of templates and records; `refine_answers` runs the
critique and revision steps as two batches (cached, concurrent, resumable) and is what other
stages reuse to personalise answers.

Every generated text is checked (llm.generation): a reply cut by the token limit or empty (after
cleaning) is asked again once with twice the budget, and if still bad is a generation failure
(`StepOutput.failure`); a row whose step failed gets no later step.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from persona_testbed.llm import ChatRequest, LLMClient, Message
from persona_testbed.llm.generation import EMPTY, Generation, generate_checked
from persona_testbed.preferences.templates import TemplateSet
from persona_testbed.templates import PromptTemplate

# The paper's format ends each reply with a line "DONE"; stopping there saves tokens.
STOP = ("\nDONE",)
_REVISION_MARKER = re.compile(r"REVISED\s+(?:PREFERENCE|COMPLETION|ANSWER)\s*:", re.IGNORECASE)
_DONE_TAIL = re.compile(r"\s*\bDONE\W*\s*$")


@dataclass(frozen=True)
class GenerationSettings:
    """Sampling settings of the generation steps (the judge always scores at temperature 0)."""

    max_tokens: int = 256
    temperature: float = 0.7
    seed: int = 0


def _messages(template: PromptTemplate, **values: str) -> list[Message]:
    return template.messages(**values)


def build_base_request(
    client: LLMClient,
    templates: TemplateSet,
    question: str,
    *,
    settings: GenerationSettings,
    sample_index: int = 0,
) -> ChatRequest:
    """y_l ~ pi(y | x): the question alone, no persona."""
    return client.request(
        _messages(templates.base, question=question),
        max_tokens=settings.max_tokens,
        temperature=settings.temperature,
        seed=settings.seed,
        sample_index=sample_index,
    )


def build_critique_request(
    client: LLMClient,
    templates: TemplateSet,
    persona: str,
    question: str,
    answer: str,
    *,
    settings: GenerationSettings,
    sample_index: int = 0,
) -> ChatRequest:
    return client.request(
        _messages(templates.critique, persona=persona, question=question, answer=answer),
        max_tokens=settings.max_tokens,
        temperature=settings.temperature,
        seed=settings.seed,
        stop=STOP,
        sample_index=sample_index,
    )


def build_revision_request(
    client: LLMClient,
    templates: TemplateSet,
    persona: str,
    question: str,
    answer: str,
    critique: str,
    *,
    settings: GenerationSettings,
    sample_index: int = 0,
) -> ChatRequest:
    """y_w ~ pi(y | y_l, x, p, r). The paper's revision prompt does not show the persona
    itself (only the critique); a template may use {persona}."""
    return client.request(
        _messages(
            templates.revision,
            persona=persona,
            question=question,
            answer=answer,
            critique=critique,
        ),
        max_tokens=settings.max_tokens,
        temperature=settings.temperature,
        seed=settings.seed,
        stop=STOP,
        sample_index=sample_index,
    )


def _without_done(text: str) -> str:
    """`text` without a closing "DONE" (`_DONE_TAIL`). The regex tries every position of a
    long reply, so it runs only on the tail that can match: from just before the whitespace
    that precedes the last "DONE" (the one character more keeps its word boundary right)."""
    last = text.rfind("DONE")
    if last < 0:
        return text
    start = last
    while start > 0 and text[start - 1].isspace():
        start -= 1
    start = max(0, start - 1)
    return text[:start] + _DONE_TAIL.sub("", text[start:])


def clean_critique(text: str) -> str:
    return _without_done(text).strip()


def extract_revision(text: str) -> str:
    """The revised answer: after a "REVISED PREFERENCE:" marker when there is one, without the
    closing "DONE" and without quotes wrapped around the whole answer."""
    markers = list(_REVISION_MARKER.finditer(text))
    body = text[markers[-1].end() :] if markers else text
    body = _without_done(body).strip()
    if len(body) >= 2 and body[0] == body[-1] and body[0] in "\"'":
        body = body[1:-1].strip()
    return body


@dataclass(frozen=True)
class StepOutput:
    """One generated text of a DPF step: cleaned, raw, how it finished, and why it failed
    (None when it is usable)."""

    text: str
    raw: str
    finish_reason: str | None
    failure: str | None
    attempts: int

    @property
    def ok(self) -> bool:
        return self.failure is None

    @classmethod
    def skipped(cls, because: str) -> StepOutput:
        """A row this step never generated: an earlier step failed."""
        return cls("", "", None, because, 0)


def _checked_step(
    client: LLMClient,
    requests: Sequence[ChatRequest],
    clean: Callable[[str], str],
    description: str,
) -> tuple[list[StepOutput], list[Generation]]:
    """Checked generation of one step; a reply whose cleaned text is empty is a failure."""
    outcomes = generate_checked(
        client,
        requests,
        description=description,
        check=lambda result: EMPTY if not clean(result.text) else None,
    )
    outputs = [
        StepOutput(clean(o.text) if o.ok else "", o.text, o.finish_reason, o.failure, o.attempts)
        for o in outcomes
    ]
    return outputs, outcomes


def base_answers(
    client: LLMClient,
    templates: TemplateSet,
    questions: Sequence[str],
    *,
    settings: GenerationSettings,
    sample_indices: Sequence[int] | None = None,
    description: str = "base answers",
) -> tuple[list[StepOutput], list[Generation]]:
    """y_l per question, checked (a truncated y_l against a complete y_w would teach
    "complete beats truncated", not the persona)."""
    indices = list(sample_indices) if sample_indices is not None else [0] * len(questions)
    requests = [
        build_base_request(client, templates, q, settings=settings, sample_index=i)
        for q, i in zip(questions, indices, strict=True)
    ]
    return _checked_step(client, requests, str.strip, description)


def critique_answers(
    client: LLMClient,
    persona_texts: Sequence[str],
    questions: Sequence[str],
    base_answers: Sequence[str],
    templates: TemplateSet,
    *,
    settings: GenerationSettings,
    sample_indices: Sequence[int],
) -> tuple[list[StepOutput], list[Generation]]:
    """The checked critique of each answer, in one batch."""
    requests = [
        build_critique_request(client, templates, p, q, a, settings=settings, sample_index=i)
        for p, q, a, i in zip(persona_texts, questions, base_answers, sample_indices, strict=True)
    ]
    return _checked_step(client, requests, clean_critique, "critiques")


def revise_answers(
    client: LLMClient,
    persona_texts: Sequence[str],
    questions: Sequence[str],
    base_answers: Sequence[str],
    critiques: Sequence[str],
    templates: TemplateSet,
    *,
    settings: GenerationSettings,
    sample_indices: Sequence[int],
) -> tuple[list[StepOutput], list[Generation]]:
    """The checked revision of each answer, in one batch (an empty extracted revision fails)."""
    rows = zip(persona_texts, questions, base_answers, critiques, sample_indices, strict=True)
    requests = [
        build_revision_request(client, templates, p, q, a, c, settings=settings, sample_index=i)
        for p, q, a, c, i in rows
    ]
    return _checked_step(client, requests, extract_revision, "revisions")


@dataclass(frozen=True)
class Refined:
    """One personalised answer: the critique and the revision, cleaned and raw."""

    critique: str
    revision: str
    critique_raw: str
    revision_raw: str
    failure: str | None = None

    @property
    def ok(self) -> bool:
        """A usable y_w: generated complete and not empty."""
        return self.failure is None and bool(self.revision)


def refine_answers(
    client: LLMClient,
    persona_texts: Sequence[str],
    questions: Sequence[str],
    base_answers: Sequence[str],
    templates: TemplateSet,
    *,
    settings: GenerationSettings | None = None,
    revision_client: LLMClient | None = None,
    sample_indices: Sequence[int] | None = None,
) -> list[Refined]:
    """Critique each base answer against its persona, then revise it (two batches); a row
    whose critique failed gets no revision and is not `ok`."""
    if not len(persona_texts) == len(questions) == len(base_answers):
        raise ValueError("persona_texts, questions and base_answers must have the same length")
    settings = settings or GenerationSettings()
    indices = list(sample_indices) if sample_indices is not None else [0] * len(questions)
    critiques, _ = critique_answers(
        client,
        persona_texts,
        questions,
        base_answers,
        templates,
        settings=settings,
        sample_indices=indices,
    )
    todo = [i for i, critique in enumerate(critiques) if critique.ok]
    revised, _ = revise_answers(
        revision_client or client,
        [persona_texts[i] for i in todo],
        [questions[i] for i in todo],
        [base_answers[i] for i in todo],
        [critiques[i].text for i in todo],
        templates,
        settings=settings,
        sample_indices=[indices[i] for i in todo],
    )
    revisions = dict(zip(todo, revised, strict=True))
    refined = []
    for i, critique in enumerate(critiques):
        revision = revisions.get(i) or StepOutput.skipped(f"critique {critique.failure}")
        refined.append(
            Refined(critique.text, revision.text, critique.raw, revision.raw, revision.failure)
        )
    return refined
