"""Answer generation by the model under test, one request per (pair, method, sample).

`persona-summary` takes two calls: the model first summarizes what matters about the persona for
the question, then answers with the persona and that summary placed right before the question.
Two calls keep the summary a clean artifact (no section parsing to go wrong) for the attribute
drop analysis; the extra call is counted in the dry-run plan.

Every output is checked (llm.generation): a reply cut by the token limit, an empty one, or a
chain of thought without its "Answer:" line is asked again once with twice the budget; if it is
still bad the answer is a generation failure (`Answer.failure`), which is never judged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from persona_testbed.bench.methods import Method, parse_cot
from persona_testbed.bench.templates import TemplateSet
from persona_testbed.llm import ChatRequest, ChatResult, LLMClient, Message
from persona_testbed.llm.generation import Generation, failure_tally, generate_checked

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
    failure: str | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        """A usable answer: generated complete (judged); otherwise a generation failure."""
        return self.failure is None


def summary_messages(templates: TemplateSet, job: AnswerJob) -> list[Message]:
    return templates["persona-summary.summarize"].messages(
        persona=job.shown_persona_text, question=job.question
    )


def answer_messages(
    templates: TemplateSet, job: AnswerJob, summary: str | None = None
) -> list[Message]:
    template = templates[job.method.value]
    if job.method is Method.NO_PERSONA:
        return template.messages(question=job.question)
    if job.method is Method.PERSONA_SUMMARY:
        return template.messages(
            persona=job.shown_persona_text, question=job.question, summary=summary or ""
        )
    return template.messages(persona=job.shown_persona_text, question=job.question)


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


def cot_problem(result: ChatResult) -> str | None:
    """A chain of thought whose answer cannot be told apart (no "Answer:" line, or nothing
    after it): usually the token limit cut it before the answer."""
    return "no answer line" if parse_cot(result.text).error is not None else None


def generate_answers(
    client: LLMClient,
    jobs: Sequence[AnswerJob],
    templates: TemplateSet,
    settings: GenerationSettings,
    *,
    label: str = "",
    tallies: dict[str, list[Generation | None]] | None = None,
) -> list[Answer]:
    """Every job's answer, in job order (summaries first, in one batch, where needed).

    A job whose summary failed gets no answer request: it is a failure of its summary.
    `tallies`, when given, collects the outcomes per step ("summary", "answer") for counting.
    """
    summary_jobs = [i for i, job in enumerate(jobs) if job.method is Method.PERSONA_SUMMARY]
    summaries: dict[int, Generation] = {}
    if summary_jobs:
        outcomes = generate_checked(
            client,
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
        summaries = dict(zip(summary_jobs, outcomes, strict=True))
    answerable = [i for i in range(len(jobs)) if i not in summaries or summaries[i].ok]
    generated = generate_checked(
        client,
        [
            _request(
                client,
                answer_messages(
                    templates, jobs[i], summaries[i].text.strip() if i in summaries else None
                ),
                settings,
                settings.answer_tokens(jobs[i].method),
                jobs[i].sample_index,
            )
            for i in answerable
        ],
        description=f"{label}answers".strip(),
        check=[cot_problem if jobs[i].method is Method.PERSONA_COT else None for i in answerable],
    )
    by_job: dict[int, Generation] = dict(zip(answerable, generated, strict=True))
    if tallies is not None:
        tallies.setdefault("summary", []).extend(summaries.values())
        tallies.setdefault("answer", []).extend(by_job.values())
    return [_answer(client, job, summaries.get(i), by_job.get(i)) for i, job in enumerate(jobs)]


def _answer(
    client: LLMClient, job: AnswerJob, summary: Generation | None, outcome: Generation | None
) -> Answer:
    summary_text = summary.text.strip() if summary is not None else None
    if outcome is None:  # the summary failed: no answer was asked for
        assert summary is not None
        return Answer(
            job=job,
            model=client.model_id,
            summary=summary_text,
            raw_output="",
            answer="",
            reasoning=None,
            answer_parse_error=None,
            finish_reason=None,
            failure=f"summary {summary.failure}",
            attempts=0,
        )
    reasoning: str | None = None
    error: str | None = None
    text = outcome.text.strip()
    if job.method is Method.PERSONA_COT and outcome.result is not None:
        parsed = parse_cot(outcome.text)
        reasoning, text, error = parsed.reasoning, parsed.answer, parsed.error
    return Answer(
        job=job,
        model=client.model_id,
        summary=summary_text,
        raw_output=outcome.text,
        answer=text if outcome.ok else "",
        reasoning=reasoning,
        # A failed CoT's missing Answer line is its generation failure; nothing was judged.
        answer_parse_error=error if outcome.ok else None,
        finish_reason=outcome.finish_reason,
        failure=outcome.failure,
        attempts=outcome.attempts,
    )


def answer_tallies(tallies: dict[str, list[Generation | None]]) -> dict[str, dict[str, Any]]:
    """Per step, the counts of `llm.generation.failure_tally`."""
    return {step: failure_tally(outcomes) for step, outcomes in tallies.items()}
