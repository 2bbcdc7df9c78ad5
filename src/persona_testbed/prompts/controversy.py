"""Zero-shot controversy classifier (§3.2): would this question draw diverse opinions?

The model picks between two stated options; both orders are scored and averaged, which cancels
the position bias of small models. P(yes) is the probability put on the "yes" option. A
question for which either order puts no mass on either label is undecided (P(yes) None).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from persona_testbed import templates
from persona_testbed.llm import LLMClient, Message, OrderedChoice
from persona_testbed.templates import SYSTEM, USER, PromptTemplate, TemplateSpec

LABELS = ("A", "B")

# The prompt and its two options: prompts/templates/controversy.txt (persona_testbed.templates).
TEMPLATE = TemplateSpec(
    "controversy",
    frozenset({"question", "option_a", "option_b"}),
    frozenset({"question", "option_a", "option_b"}),
    sections=(SYSTEM, USER, "yes", "no"),
    required_sections=(USER, "yes", "no"),
)
PACKAGE = "persona_testbed.prompts"


def controversy_template() -> PromptTemplate:
    return templates.load_bundled(PACKAGE, TEMPLATE)


class _PromptsSection(Protocol):
    """What the template digest reads of the prompts config."""

    @property
    def controversy_threshold(self) -> float: ...


def template_digest(config: _PromptsSection) -> str:
    """The digest of the classifier's prompt (none when the classifier does not run)."""
    return templates.digest([controversy_template()]) if config.controversy_threshold > 0 else ""


def render_question(
    question: str, ordered_options: Sequence[str], template: PromptTemplate | None = None
) -> list[Message]:
    return (template or controversy_template()).messages(
        question=question, option_a=ordered_options[0], option_b=ordered_options[1]
    )


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
    template = controversy_template()
    options = (template.fill("yes"), template.fill("no"))
    items = [
        OrderedChoice(
            render=partial(render_question, q, template=template), options=options, labels=LABELS
        )
        for q in questions
    ]
    # P(yes) needs probabilities: no constrained fallback here (its 0/1 answers would turn
    # the threshold into a vote); an endpoint without log-probabilities stops the stage.
    choices = client.choose_both_orders_batch(items, description=description, fallback=False)
    return [ControversyScore(None if c.undecided else c.probs[0], c.coverage) for c in choices]
