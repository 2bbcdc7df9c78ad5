"""Zero-shot controversy classifier (§3.2): would this question draw diverse opinions?

The model picks between two stated options; both orders are scored and averaged, which cancels
the position bias of small models. P(yes) is the probability put on the "yes" option. A
question for which either order puts no mass on either label is undecided (P(yes) None).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from persona_testbed.llm import LLMClient, Message, OrderedChoice

YES = "Yes: people with different values or backgrounds would answer it differently."
NO = "No: nearly everyone would give the same answer."
SYSTEM = "You sort questions for an opinion survey. Reply with the letter of your choice only."


def render_question(question: str, ordered_options: Sequence[str]) -> list[Message]:
    body = (
        f"Question: {question}\n\n"
        "Would people with different values give different answers to this question?\n"
        f"A: {ordered_options[0]}\n"
        f"B: {ordered_options[1]}\n"
        "Answer with A or B."
    )
    return [Message(role="system", content=SYSTEM), Message(role="user", content=body)]


@dataclass(frozen=True)
class ControversyScore:
    """P(controversial); None when the question is undecided (some order of the options got
    no mass on either label, so the other order alone would decide)."""

    p_controversial: float | None
    coverage: float  # mass the model put on the label tokens before renormalising (order mean)

    @property
    def undecided(self) -> bool:
        return self.p_controversial is None


def score_controversy(
    client: LLMClient, questions: Sequence[str], *, description: str = "controversy"
) -> list[ControversyScore]:
    """P(the question draws diverse opinions) per question, from choice probabilities."""
    items = [
        OrderedChoice(render=partial(render_question, q), options=(YES, NO), labels=("A", "B"))
        for q in questions
    ]
    choices = client.choose_both_orders_batch(items, description=description)
    return [ControversyScore(None if c.undecided else c.probs[0], c.coverage) for c in choices]
