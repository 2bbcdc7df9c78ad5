"""Answer generation by the model under test, one request per (pair, method, sample).

`persona-summary` takes two calls: the model first summarizes what matters about the persona for
the question, then answers with the persona and that summary placed right before the question.
Two calls keep the summary a clean artifact (no section parsing to go wrong) for the attribute
drop analysis; the extra call is counted in the dry-run plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from persona_testbed.bench.methods import Method, parse_cot
from persona_testbed.bench.templates import TemplateSet
from persona_testbed.llm import ChatRequest, LLMClient, Message

# Chain of thought needs room for the reasoning as well as the answer.
COT_TOKEN_FACTOR = 2


@dataclass(frozen=True)
class GenerationSettings:
    temperature: float = 0.7
    max_tokens: int = 96
    seed: int = 0

    def answer_tokens(self, method: Method) -> int:
        factor = COT_TOKEN_FACTOR if method is Method.PERSONA_COT else 1
        return self.max_tokens * factor


@dataclass(frozen=True)
class AnswerJob:
    """One answer to write. `shown_persona_text` is what the model sees (for leave-one-out it
    lacks one attribute); judges always see the full `persona_text`."""

    method: Method
    pair_id: str
    persona_id: str
    prompt_id: str
    question: str
    persona_text: str
    shown_persona_text: str
    sample_index: int
    removed_attribute: str | None = None


@dataclass(frozen=True)
class Answer:
    job: AnswerJob
    model: str
    summary: str | None
    raw_output: str
    answer: str
    reasoning: str | None
    answer_parse_error: str | None
    finish_reason: str | None


def summary_messages(templates: TemplateSet, job: AnswerJob) -> list[Message]:
    return templates["persona-summary.summarize"].render(
        persona=job.shown_persona_text, question=job.question
    )


def answer_messages(
    templates: TemplateSet, job: AnswerJob, summary: str | None = None
) -> list[Message]:
    template = templates[job.method.value]
    if job.method is Method.NO_PERSONA:
        return template.render(question=job.question)
    if job.method is Method.PERSONA_SUMMARY:
        return template.render(
            persona=job.shown_persona_text, question=job.question, summary=summary or ""
        )
    return template.render(persona=job.shown_persona_text, question=job.question)


def _request(
    client: LLMClient,
    messages: Sequence[Message],
    settings: GenerationSettings,
    max_tokens: int,
    sample_index: int,
) -> ChatRequest:
    return client.request(
        messages,
        max_tokens=max_tokens,
        temperature=settings.temperature,
        seed=settings.seed,
        sample_index=sample_index,
    )


def generate_answers(
    client: LLMClient,
    jobs: Sequence[AnswerJob],
    templates: TemplateSet,
    settings: GenerationSettings,
    *,
    label: str = "",
) -> list[Answer]:
    """Every job's answer, in job order (summaries first, in one batch, where needed)."""
    summary_jobs = [i for i, job in enumerate(jobs) if job.method is Method.PERSONA_SUMMARY]
    summaries: dict[int, str] = {}
    if summary_jobs:
        results = client.complete_batch(
            [
                _request(
                    client,
                    summary_messages(templates, jobs[i]),
                    settings,
                    settings.max_tokens,
                    jobs[i].sample_index,
                )
                for i in summary_jobs
            ],
            description=f"{label}summaries".strip(),
        )
        summaries = {i: r.text.strip() for i, r in zip(summary_jobs, results, strict=True)}
    requests = [
        _request(
            client,
            answer_messages(templates, job, summaries.get(i)),
            settings,
            settings.answer_tokens(job.method),
            job.sample_index,
        )
        for i, job in enumerate(jobs)
    ]
    results = client.complete_batch(requests, description=f"{label}answers".strip())
    answers = []
    for i, (job, result) in enumerate(zip(jobs, results, strict=True)):
        reasoning: str | None = None
        error: str | None = None
        text = result.text.strip()
        if job.method is Method.PERSONA_COT:
            parsed = parse_cot(result.text)
            reasoning, text, error = parsed.reasoning, parsed.answer, parsed.error
        answers.append(
            Answer(
                job=job,
                model=client.model_id,
                summary=summaries.get(i),
                raw_output=result.text,
                answer=text,
                reasoning=reasoning,
                answer_parse_error=error,
                finish_reason=result.finish_reason,
            )
        )
    return answers
