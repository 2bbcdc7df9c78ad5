"""Dry-run plan rows: the calls, estimated tokens and cost of one step of one stage.

Every stage's `plan` returns these rows; the stage's own `--dry-run` and `persona run
--dry-run` print the same rows, and the pipeline only adds them up. Estimates use typical
lengths (a 33-attribute persona is about 1,100 characters, a question about 90, four characters
per token); every completion is counted at its full token budget, so they are upper bounds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from persona_testbed.llm import PriceTable, parse_spec

# The usual rule of thumb for English text.
CHARS_PER_TOKEN = 4
# Lengths assumed when no run data is at hand (see preferences.plan, which measures them).
DEFAULT_PERSONA_CHARS = 1100
DEFAULT_QUESTION_CHARS = 90
INSTRUCTION_CHARS = 600  # system + task text of a typical stage prompt


@dataclass(frozen=True)
class PlanRow:
    stage: str
    step: str
    model: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    priced: bool
    note: str = ""
    # The same calls through a provider's batch API (OpenAI Batch, Anthropic Message Batches).
    batch_cost_usd: float = 0.0


@dataclass(frozen=True)
class PlanContext:
    """What a stage's plan may look at: the run directory (its inputs when they exist), the
    price table, and every stage's resolved config (to size a stage by its upstream)."""

    run_path: Path
    prices: PriceTable
    sections: Mapping[str, Any]


def estimate_row(
    stage: str,
    step: str,
    spec: str,
    calls: int,
    prompt_chars: float,
    completion_tokens: int,
    prices: PriceTable,
    note: str = "",
) -> PlanRow:
    """A row from a call count, a typical prompt length and the completion budget."""
    model = parse_spec(spec).id
    prompt = int(calls * (prompt_chars / CHARS_PER_TOKEN))
    return counted_row(stage, step, model, calls, prompt, calls * completion_tokens, prices, note)


def counted_row(
    stage: str,
    step: str,
    model: str,
    calls: int,
    prompt_tokens: int,
    completion_tokens: int,
    prices: PriceTable,
    note: str = "",
) -> PlanRow:
    """A row from counted tokens (model id, not spec), priced from the table."""
    return PlanRow(
        stage,
        step,
        model,
        calls,
        prompt_tokens,
        completion_tokens,
        prices.cost(model, prompt_tokens, completion_tokens),
        prices.price(model) is not None,
        note,
        prices.cost(model, prompt_tokens, completion_tokens, batch=True),
    )
