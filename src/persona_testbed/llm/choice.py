"""Choice scoring: probabilities over option labels from first-token log-probabilities, or,
where an endpoint returns none (Anthropic, OpenAI's reasoning models, many hosted endpoints), a
constrained answer naming one allowed label (a JSON schema whose `answer` is an enum of the
labels). Both methods are asked in every option order; `Choice.method` records which was used.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from persona_testbed.llm.types import Choice, Message, TokenLogprob

# Enough alternatives that option labels are present; OpenAI allows at most 20.
CHOICE_TOP_LOGPROBS = 20
# A constrained answer is `{"answer": "A"}`: a handful of tokens, with room for spacing.
CONSTRAINED_MAX_TOKENS = 16


def _matches(token: str, label: str) -> bool:
    piece = token.strip().casefold()
    target = label.strip().casefold()
    if not piece:
        return False
    # Multi-character labels ("Yes") may be split; a leading piece of 2+ characters counts.
    return piece == target or (len(piece) >= 2 and target.startswith(piece))


def label_probabilities(top: Sequence[TokenLogprob] | None, labels: Sequence[str]) -> Choice:
    """Renormalise the probability the model puts on each label's tokens.

    If no label token is among the alternatives, the choice is uniform with coverage 0.
    """
    mass = [0.0] * len(labels)
    for alternative in top or ():
        for index, label in enumerate(labels):
            if _matches(alternative.token, label):
                mass[index] += math.exp(alternative.logprob)
                break
    coverage = sum(mass)
    uniform = [1.0 / len(labels)] * len(labels)
    probs = [m / coverage for m in mass] if coverage > 0 else uniform
    return Choice(labels=list(labels), probs=probs, coverage=min(coverage, 1.0))


@dataclass(frozen=True)
class OrderedChoice:
    """A choice among `options` whose prompt is rendered for a given order of the options.

    `render(ordered_options)` builds the messages, presenting the options in that order under
    `labels` (the first option under labels[0], ...). Scoring every cyclic order and averaging
    cancels the position bias of small models, which pick the first-listed option 60-87% of
    the time whatever the content.
    """

    render: Callable[[Sequence[str]], Sequence[Message]]
    options: Sequence[str]
    labels: Sequence[str]

    def orders(self) -> list[list[int]]:
        n = len(self.options)
        return [[(start + offset) % n for offset in range(n)] for start in range(n)]


def average_over_orders(order_choices: Sequence[tuple[list[int], Choice]], n: int) -> list[float]:
    """Per option, the mean probability over orders of the label it was shown under."""
    totals = [0.0] * n
    for order, choice in order_choices:
        for position, option in enumerate(order):
            totals[option] += choice.probs[position]
    return [t / len(order_choices) for t in totals]


def combine_orders(
    order_choices: Sequence[tuple[list[int], Choice]], labels: Sequence[str]
) -> Choice:
    """One choice over the options from the choices scored in each order.

    An order with no mass on any label has no answer; averaging a uniform split in for it would
    let the other order alone decide, which is exactly the position bias the orders are there to
    cancel. Such an item is undecided: uniform probabilities, its per-order coverage kept so
    that `Choice.undecided` is true and callers count it instead of reading a preference."""
    n = len(labels)
    order_coverage = [choice.coverage for _, choice in order_choices]
    coverage = sum(order_coverage) / len(order_coverage)
    if any(c <= 0.0 for c in order_coverage):
        probs = [1.0 / n] * n
    else:
        probs = average_over_orders(order_choices, n)
    # Every order is scored by one method (LLMClient.achoose_both_orders sees to that).
    constrained = any(choice.method == "constrained" for _, choice in order_choices)
    return Choice(
        labels=list(labels),
        probs=probs,
        coverage=coverage,
        order_coverage=order_coverage,
        method="constrained" if constrained else "logprobs",
    )


def constrained_format(labels: Sequence[str]) -> dict[str, Any]:
    """The response_format that constrains a reply to one of `labels`."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "choice",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"answer": {"type": "string", "enum": list(labels)}},
                "required": ["answer"],
                "additionalProperties": False,
            },
        },
    }


def _answer_text(text: str) -> str:
    """The `answer` of a constrained reply; a bare reply ("B", "B.") from an endpoint that
    ignored the schema is taken as the answer itself."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, dict):
        return str(value.get("answer", ""))
    return str(value)


def constrained_choice(text: str, labels: Sequence[str]) -> Choice:
    """A one-label answer as a choice: probability 1 on the label it names, coverage 1; a
    reply naming no label is undecided (uniform, coverage 0)."""
    words = re.split(r"[\s:.,;)\]\"'*]+", _answer_text(text).strip().strip("\"'*(["))
    answer = words[0].casefold() if words else ""
    for index, label in enumerate(labels):
        if answer and answer == label.strip().casefold():
            probs = [0.0] * len(labels)
            probs[index] = 1.0
            return Choice(labels=list(labels), probs=probs, coverage=1.0, method="constrained")
    uniform = [1.0 / len(labels)] * len(labels)
    return Choice(labels=list(labels), probs=uniform, coverage=0.0, method="constrained")
