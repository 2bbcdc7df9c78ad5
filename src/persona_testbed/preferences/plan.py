"""The call plan: how many model calls and tokens a preference job takes, and what it costs,
before anything is spent (`persona preferences --dry-run`).

Tokens are estimated at four characters per token; completions are counted at `max_tokens`
(an upper bound) and the answers and critiques fed into later steps at that length too.
"""

from __future__ import annotations

from dataclasses import dataclass

from persona_testbed.llm import PriceTable
from persona_testbed.preferences.sampling import PairSizes
from persona_testbed.preferences.templates import TemplateSet
from persona_testbed.stages.plan import (
    CHARS_PER_TOKEN,
    DEFAULT_PERSONA_CHARS,
    DEFAULT_QUESTION_CHARS,
    PlanRow,
    counted_row,
)
from persona_testbed.templates import SYSTEM, PromptTemplate

__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_PERSONA_CHARS",
    "DEFAULT_QUESTION_CHARS",
    "CallPlan",
    "expected_unique",
    "plan_calls",
]

# Chat formatting adds a few tokens per message (role markers).
MESSAGE_OVERHEAD_TOKENS = 4


@dataclass(frozen=True)
class CallPlan:
    n_personas: int
    sizes: PairSizes
    n_pairs: int
    shared_base: bool
    base_calls_per_pair_mode: int
    steps: tuple[PlanRow, ...]

    @property
    def calls(self) -> int:
        return sum(s.calls for s in self.steps)

    @property
    def prompt_tokens(self) -> int:
        return sum(s.prompt_tokens for s in self.steps)

    @property
    def completion_tokens(self) -> int:
        return sum(s.completion_tokens for s in self.steps)

    @property
    def cost_usd(self) -> float:
        return sum(s.cost_usd for s in self.steps)

    @property
    def base_calls_saved(self) -> int:
        """Calls that sharing one base answer per prompt saves over one per pair."""
        base = next(s.calls for s in self.steps if s.step == "base")
        return self.base_calls_per_pair_mode - base

    def table(self) -> str:
        lines = [
            "| step | model | calls | prompt tokens | completion tokens (max) | cost USD |",
            "|---|---|---|---|---|---|",
        ]
        for s in (*self.steps, None):
            if s is None:
                row = ("total", "", self.calls, self.prompt_tokens, self.completion_tokens)
                cost = f"{self.cost_usd:,.2f}"
            else:
                row = (s.step, s.model, s.calls, s.prompt_tokens, s.completion_tokens)
                cost = f"{s.cost_usd:,.2f}" if s.priced else "no price"
            lines.append(f"| {row[0]} | {row[1]} | {row[2]:,} | {row[3]:,} | {row[4]:,} | {cost} |")
        return "\n".join(lines)


def expected_unique(pool: int, per_persona: int, n_personas: int) -> float:
    """Expected number of distinct prompts used when each persona draws `per_persona` of
    `pool` without replacement, independently."""
    if pool == 0 or per_persona == 0:
        return 0.0
    return pool * (1.0 - (1.0 - per_persona / pool) ** n_personas)


def _template_chars(template: PromptTemplate) -> int:
    return sum(len(template.source(name)) for name in template.sections)


def plan_calls(
    n_personas: int,
    sizes: PairSizes,
    *,
    n_train_prompts: int,
    n_heldout_prompts: int,
    templates: TemplateSet,
    models: dict[str, str],
    prices: PriceTable | None = None,
    shared_base: bool = True,
    max_tokens: int = 256,
    persona_chars: float = DEFAULT_PERSONA_CHARS,
    question_chars: float = DEFAULT_QUESTION_CHARS,
    unique_prompts: int | None = None,
) -> CallPlan:
    """Calls, tokens and cost per step. `models` maps base/critique/revision/judge to specs;
    `unique_prompts` is the exact number of distinct prompts when an assignment exists (else
    its expected value)."""
    prices = prices or PriceTable()
    fitted = sizes.fitted(n_train_prompts, n_heldout_prompts)
    n_pairs = n_personas * fitted.total
    if unique_prompts is None:
        unique_prompts = round(
            expected_unique(n_train_prompts, fitted.train + fitted.test_seen, n_personas)
            + expected_unique(n_heldout_prompts, fitted.test_unseen, n_personas)
        )
    answer_chars = max_tokens * CHARS_PER_TOKEN

    def tokens(chars: float, messages: int) -> int:
        return int(chars / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS * messages

    def messages(template: PromptTemplate) -> int:
        return 2 if template.has(SYSTEM) and template.source(SYSTEM) else 1

    uses_persona = "persona" in templates.revision.fields()
    per_call = {
        "base": (
            tokens(_template_chars(templates.base) + question_chars, messages(templates.base)),
            max_tokens,
        ),
        "critique": (
            tokens(
                _template_chars(templates.critique) + persona_chars + question_chars + answer_chars,
                messages(templates.critique),
            ),
            max_tokens,
        ),
        "revision": (
            tokens(
                _template_chars(templates.revision)
                + question_chars
                + 2 * answer_chars
                + (persona_chars if uses_persona else 0),
                messages(templates.revision),
            ),
            max_tokens,
        ),
        "judge": (
            tokens(
                _template_chars(templates.judge)
                + persona_chars
                + question_chars
                + 2 * answer_chars,
                messages(templates.judge),
            ),
            1,
        ),
    }
    calls = {
        "base": unique_prompts if shared_base else n_pairs,
        "critique": n_pairs,
        "revision": n_pairs,
        "judge": 2 * n_pairs,  # both orders
    }
    steps = []
    for step in ("base", "critique", "revision", "judge"):
        prompt_per_call, completion_per_call = per_call[step]
        prompt_tokens = calls[step] * prompt_per_call
        completion_tokens = calls[step] * completion_per_call
        model = models[step]
        steps.append(
            counted_row(
                "preferences", step, model, calls[step], prompt_tokens, completion_tokens, prices
            )
        )
    return CallPlan(n_personas, fitted, n_pairs, shared_base, n_pairs, tuple(steps))
