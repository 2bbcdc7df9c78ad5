"""`persona run --dry-run`: calls, estimated tokens and cost per stage and model; spends nothing.

Estimates use the config's sizes and typical lengths (a 33-attribute persona is about 1,100
characters, a question about 90, four characters per token); every completion is counted at
its full token budget, so token and cost figures are upper bounds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from persona_testbed.errors import PersonaError
from persona_testbed.llm import PriceTable, parse_spec
from persona_testbed.pipeline.config import RunConfig
from persona_testbed.preferences import (
    CHARS_PER_TOKEN,
    DEFAULT_PERSONA_CHARS,
    DEFAULT_QUESTION_CHARS,
)

# When the prompt source cannot be read at planning time: PRISM's 8,011 opening prompts, of
# which the paper's curation kept 3,868.
PRISM_PROMPTS = 8_011
PAPER_KEPT_PROMPTS = 3_868
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


def _row(
    stage: str,
    step: str,
    spec: str,
    calls: int,
    prompt_chars: float,
    completion_tokens: int,
    prices: PriceTable,
    note: str = "",
) -> PlanRow:
    model = parse_spec(spec).id
    prompt = int(calls * (prompt_chars / CHARS_PER_TOKEN))
    completion = calls * completion_tokens
    return PlanRow(
        stage,
        step,
        model,
        calls,
        prompt,
        completion,
        prices.cost(model, prompt, completion),
        prices.price(model) is not None,
        note,
    )


def _prompt_counts(config: RunConfig) -> tuple[int, int, str]:
    """(prompts to curate, prompts kept for preferences, note). Without the file at hand, the
    paper's PRISM numbers; with it, every prompt counts as kept (an upper bound)."""
    from persona_testbed.prompts import load_source

    try:
        n = load_source(config.prompts).height
        return n, n, ""
    except PersonaError:
        note = f"source not readable now: assumed PRISM's {PRISM_PROMPTS:,} prompts"
        return PRISM_PROMPTS, PAPER_KEPT_PROMPTS, note


def plan_run(config: RunConfig, prices: PriceTable, run_path: Path | None = None) -> list[PlanRow]:
    rows: list[PlanRow] = []
    persona_chars = DEFAULT_PERSONA_CHARS + INSTRUCTION_CHARS
    if "personas" in config.stages and config.personas.use_llm:
        p = config.personas
        # Pruned profiles are replaced by new draws: the paper prunes about 8.5%.
        judged = round(p.n / (1 - 0.085))
        rows.append(
            _row(
                "personas",
                "consistency judge",
                p.model,
                judged,
                persona_chars,
                96,
                prices,
                "assumes ~8.5% pruned",
            )
        )
        rows.append(_row("personas", "open-ended fill", p.model, p.n, persona_chars, 260, prices))
    n_prompts, n_kept, prompt_note = _prompt_counts(config)
    if "prompts" in config.stages and config.prompts.controversy_threshold > 0:
        rows.append(
            _row("prompts", "controversy classifier (both orders)", config.prompts.model,
                 2 * n_prompts, DEFAULT_QUESTION_CHARS + INSTRUCTION_CHARS, 1, prices, prompt_note)
        )  # fmt: skip
    if "preferences" in config.stages:
        from persona_testbed.preferences import plan_for_run

        pref = config.preferences
        n_personas = min(config.personas.n, pref.max_personas or config.personas.n)
        # The same planner as `persona preferences --dry-run`, so the two never disagree;
        # persona and question lengths come from the run directory when it has them.
        plan = plan_for_run(
            run_path if run_path is not None else Path(os.devnull),
            pref,
            prices=prices,
            plan_personas=n_personas,
            plan_prompts=n_kept,
        )
        for step in plan.steps:
            rows.append(
                PlanRow(
                    "preferences",
                    step.step,
                    step.model,
                    step.calls,
                    step.prompt_tokens,
                    step.completion_tokens,
                    step.cost_usd,
                    step.priced,
                    f"{plan.n_pairs:,} pairs",
                )
            )
    if "bench" in config.stages:
        b = config.bench
        answers = b.n * b.k * len(b.methods)
        summaries = b.n * b.k * sum(1 for m in b.methods if m.value == "persona-summary")
        loo = b.n * b.k * len(b.loo)
        answer_chars = b.max_tokens * CHARS_PER_TOKEN
        for spec in b.models:
            rows.append(
                _row("bench", "answers", spec, answers + loo, persona_chars, b.max_tokens, prices)
            )
            if summaries:
                rows.append(
                    _row("bench", "summaries", spec, summaries, persona_chars, b.max_tokens, prices)
                )
        judged = len(b.models) * (answers + loo)
        rows.append(
            _row(
                "bench",
                "critic verdicts",
                b.judge,
                judged,
                persona_chars + answer_chars,
                b.judge_max_tokens,
                prices,
            )
        )
        rows.append(
            _row(
                "bench",
                "subtlety checks",
                b.judge,
                len(b.models) * answers,
                persona_chars + answer_chars,
                1,
                prices,
            )
        )
    if "agreement" in config.stages:
        rows += _agreement_rows(config, prices, persona_chars)
    return rows


def _agreement_rows(config: RunConfig, prices: PriceTable, persona_chars: int) -> list[PlanRow]:
    """LOO: base answers, DPF critique + revision per (pair, question), both role-play
    annotators of every pair in both option orders. Models: every annotator, both orders."""
    from persona_testbed.contracts import ATTRIBUTES

    rows: list[PlanRow] = []
    loo = config.agreement.loo
    if loo is not None:
        n_attributes = len(loo.attributes or ()) or loo.n_attributes or len(ATTRIBUTES)
        pairs = n_attributes * loo.pairs
        refined = pairs * loo.questions * (2 if loo.refine_for == "both" else 1)
        note = f"{n_attributes} attributes x {loo.pairs} pairs x {loo.questions} questions"
        answer_chars = loo.max_tokens * CHARS_PER_TOKEN
        question_chars = DEFAULT_QUESTION_CHARS + INSTRUCTION_CHARS
        rows.append(
            _row("agreement", "LOO base answers", loo.model, loo.questions, question_chars,
                 loo.max_tokens, prices, note)
        )  # fmt: skip
        rows.append(
            _row("agreement", "LOO critique + revision", loo.model, 2 * refined,
                 persona_chars + 2 * answer_chars, loo.max_tokens, prices)
        )  # fmt: skip
        labelled = 2 * 2 * refined  # two personas of the pair, both option orders
        for spec in loo.annotator_specs:
            rows.append(
                _row("agreement", "LOO role-play labels (both orders)", spec, labelled,
                     persona_chars + 3 * answer_chars, 1, prices)
            )  # fmt: skip
    models = config.agreement.models
    if models is not None:
        pref = config.preferences
        n_personas = min(config.personas.n, pref.max_personas or config.personas.n)
        per_persona = (
            pref.per_persona_train + pref.per_persona_test_seen + pref.per_persona_test_unseen
        )
        items = (models.personas or n_personas) * (models.items or per_persona)
        for spec in models.annotators:
            rows.append(
                _row("agreement", "role-play labels (both orders)", spec, 2 * items,
                     persona_chars + 2 * pref.max_tokens * CHARS_PER_TOKEN, 1, prices,
                     f"{items:,} items, upper bound")
            )  # fmt: skip
    return rows
