"""The judges: the critic (does the answer still need revising to be subtly personalized for
this persona?) and the subtlety judge (does the answer quote or name the persona's attributes?).

The critic gives a structured verdict with its reasoning in one call. A reply that does not
parse (llm.parse_reply), even after the one re-ask, is a verdict error: recorded with the raw
text, never counted as a pass, never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from persona_testbed.bench.templates import TemplateSet
from persona_testbed.llm import LLMClient, Message, Structured, parse_reply

# Bounds the reasoning so a grammar-constrained local judge closes the JSON within its token
# budget; not a validation rule, so a longer reasoning from an API model is still accepted.
REASONING_MAX_CHARS = 240
SUBTLETY_LABELS = ("Yes", "No")  # Yes: the answer is NOT subtle


class CriticVerdict(BaseModel):
    """The critic's reply."""

    reasoning: str = Field(
        description="one or two sentences on how the answer fits this user",
        json_schema_extra={"maxLength": REASONING_MAX_CHARS},
    )
    needs_revision: bool = Field(
        description="true if the answer still needs revising to be subtly personalized"
    )


@dataclass(frozen=True)
class Verdict:
    needs_revision: bool | None
    reasoning: str | None
    error: str | None
    raw: str
    attempts: int

    @property
    def passed(self) -> bool | None:
        """True when no revision is needed; None for a verdict error."""
        return None if self.needs_revision is None else not self.needs_revision


def final_verdict(
    raw: str, value: CriticVerdict | None, error: str | None, attempts: int
) -> Verdict:
    """The verdict of the last reply after the parse (and its re-ask)."""
    if value is None:
        return Verdict(None, None, error or "unparseable verdict", raw, attempts)
    return Verdict(value.needs_revision, value.reasoning, None, raw, attempts)


def verdict_from_structured(reply: Structured[CriticVerdict]) -> Verdict:
    return final_verdict(reply.raw, reply.value, reply.error, reply.attempts)


def parse_verdict(raw: str) -> Verdict:
    """Parse one critic reply (used where no re-ask is possible, e.g. stored outputs)."""
    value, error = parse_reply(raw, CriticVerdict)
    return final_verdict(raw, value, error, 1)


@dataclass(frozen=True)
class JudgeItem:
    persona_text: str
    question: str
    answer: str


def critic_messages(templates: TemplateSet, item: JudgeItem) -> list[Message]:
    return templates["critic"].messages(
        persona=item.persona_text, question=item.question, answer=item.answer
    )


def subtlety_messages(templates: TemplateSet, item: JudgeItem) -> list[Message]:
    return templates["subtlety"].messages(
        persona=item.persona_text, question=item.question, answer=item.answer
    )


def critic_verdicts(
    judge: LLMClient, items: Sequence[JudgeItem], templates: TemplateSet, *, max_tokens: int
) -> list[Verdict]:
    requests = [
        judge.request(critic_messages(templates, item), max_tokens=max_tokens, temperature=0.0)
        for item in items
    ]
    replies = judge.structured_batch(requests, CriticVerdict, description="critic verdicts")
    if judge.settings.refresh_failed:  # persona run --retry-failed: re-ask cached parse failures
        failed = [i for i, reply in enumerate(replies) if not reply.ok]
        fresh = judge.structured_batch(
            [requests[i] for i in failed],
            CriticVerdict,
            description="critic verdicts (re-asking failures)",
            refresh=True,
        )
        for i, reply in zip(failed, fresh, strict=True):
            replies[i] = reply
    return [verdict_from_structured(reply) for reply in replies]


@dataclass(frozen=True)
class SubtletyFlag:
    p_not_subtle: float | None
    not_subtle: bool | None
    error: str | None
    method: str | None = None  # how the choice was scored: logprobs / constrained (llm.choice)


def subtlety_flags(
    judge: LLMClient, items: Sequence[JudgeItem], templates: TemplateSet
) -> list[SubtletyFlag]:
    """One forward pass per answer: P(Yes) over {Yes, No} from first-token log-probabilities
    (or, from an endpoint without them, a constrained Yes/No answer: P(Yes) 0 or 1)."""
    choices = judge.choose_batch(
        [(subtlety_messages(templates, item), SUBTLETY_LABELS) for item in items],
        description="subtlety checks",
    )
    flags = []
    for choice in choices:
        if choice.undecided:  # no mass on Yes or No: no flag, never a guess
            error = "the judge put no probability on Yes or No"
            flags.append(SubtletyFlag(None, None, error, choice.method))
        else:
            p_yes = choice.probs[0]
            flags.append(SubtletyFlag(p_yes, p_yes > 0.5, None, choice.method))
    return flags
