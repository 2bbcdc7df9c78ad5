"""Verification judge (§3.2): the persona, played by a model, chooses between y_w and y_l.

Both orders are scored from first-token probabilities and averaged, so a model's habit of
picking the first-listed answer cancels out. A pair for which either order puts no mass on
either label is undecided (no verdict), never decided by the other order alone. Where the
endpoint returns no log-probabilities, each order is answered with one label instead
(`method` "constrained"; llm.choice): P(y_w) is then 0, 0.5 or 1."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from persona_testbed.llm import LLMClient, Message, OrderedChoice
from persona_testbed.llm.types import ChoiceMethod
from persona_testbed.preferences.templates import TemplateSet

LABELS = ("A", "B")


@dataclass(frozen=True)
class Judgment:
    p_chosen: float  # P(the persona prefers y_w), averaged over both orders
    coverage: float  # mass on the label tokens before renormalising, mean over the orders
    # Some order put no mass on either label: the other order alone would decide, so the
    # pair has no verdict (counted as undecided by the verification share, never a win).
    undecided: bool = False
    method: ChoiceMethod = "logprobs"  # how the choice was scored (llm.choice)

    @property
    def prefers_chosen(self) -> bool | None:
        """True/False by the averaged probability; None when the judge gave no signal (an
        undecided item, no label mass at all, or an exact tie)."""
        if self.undecided or self.coverage <= 0 or self.p_chosen == 0.5:
            return None
        return self.p_chosen > 0.5


@dataclass(frozen=True)
class _Render:
    templates: TemplateSet
    persona: str
    question: str

    def __call__(self, ordered: Sequence[str]) -> list[Message]:
        return self.templates.judge.messages(
            persona=self.persona, question=self.question, answer_a=ordered[0], answer_b=ordered[1]
        )


def judge_choice(
    templates: TemplateSet, persona: str, question: str, chosen: str, rejected: str
) -> OrderedChoice:
    return OrderedChoice(
        render=_Render(templates, persona, question), options=(chosen, rejected), labels=LABELS
    )


def judge_pairs(
    client: LLMClient,
    personas: Sequence[str],
    questions: Sequence[str],
    chosen: Sequence[str],
    rejected: Sequence[str],
    templates: TemplateSet,
) -> list[Judgment]:
    items = [
        judge_choice(templates, p, q, w, lose)
        for p, q, w, lose in zip(personas, questions, chosen, rejected, strict=True)
    ]
    choices = client.choose_both_orders_batch(items, description="judge (both orders)")
    return [Judgment(c.probs[0], c.coverage, c.undecided, c.method) for c in choices]
