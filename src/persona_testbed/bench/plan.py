"""`--dry-run`: the call plan of a bench run (calls per step, estimated tokens and cost per
model) from the rendered prompts, without calling any model.

`persona bench --dry-run` and `persona run --dry-run` both plan through `plan_bench` (the
pipeline through `plan_rows`), so the two never disagree; before the run directory has its
personas and prompts, `plan_rows` plans `n` pairs of typical lengths with the same arithmetic."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from persona_testbed.bench.config import BenchConfig
from persona_testbed.bench.critics import JudgeItem, critic_messages, subtlety_messages
from persona_testbed.bench.generate import (
    AnswerJob,
    GenerationSettings,
    answer_messages,
    summary_messages,
)
from persona_testbed.bench.methods import Method
from persona_testbed.bench.samples import build_jobs, build_loo_jobs
from persona_testbed.bench.stage import BenchInputs, prepare_inputs
from persona_testbed.bench.templates import TemplateSet
from persona_testbed.contracts import ATTRIBUTES
from persona_testbed.errors import PersonaError
from persona_testbed.llm import Message, PriceTable, parse_spec
from persona_testbed.stages.plan import (
    CHARS_PER_TOKEN,
    DEFAULT_PERSONA_CHARS,
    DEFAULT_QUESTION_CHARS,
    PlanRow,
    counted_row,
)


def _tokens(messages: Sequence[Message]) -> int:
    return sum(len(m.content) for m in messages) // CHARS_PER_TOKEN + 1


@dataclass
class PlanStep:
    model: str
    step: str
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, prompt_tokens: int, completion_tokens: int) -> None:
        self.calls += 1
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens


def plan_bench(config: BenchConfig, inputs: BenchInputs, prices: PriceTable) -> list[PlanStep]:
    """Upper-bound plan: every completion may use its whole token budget; critic re-asks (at
    most one per verdict, on a parse failure) are not counted."""
    jobs = build_jobs(inputs.pairs, config.methods, config.k)
    jobs += build_loo_jobs(inputs.pairs, config.loo, config.k)
    return _plan_jobs(
        config, jobs, inputs.templates, inputs.generation, inputs.pairs.height, prices
    )


def typical_jobs(config: BenchConfig) -> list[AnswerJob]:
    """The jobs of `n` pairs of typical lengths whose personas have every attribute (an upper
    bound for leave-one-out): the plan before the run directory has its inputs."""
    persona, question = "x" * DEFAULT_PERSONA_CHARS, "x" * DEFAULT_QUESTION_CHARS
    jobs: list[AnswerJob] = []
    for index in range(config.n):
        pair = f"pair{index}"
        for method in config.methods:
            jobs += [
                AnswerJob(method, pair, pair, pair, question, persona, persona, sample)
                for sample in range(config.k)
            ]
        for attribute in config.loo:
            jobs += [
                AnswerJob(
                    Method.PERSONA, pair, pair, pair, question, persona, persona, s, attribute
                )
                for s in range(config.k)
            ]
    return jobs


def plan_rows(config: BenchConfig, run_path: Path, prices: PriceTable) -> list[PlanRow]:
    """The bench stage's plan rows for `persona run --dry-run`: from the run's inputs when it
    has them (exactly what `persona bench --dry-run` prints), else from typical lengths."""
    try:
        inputs = prepare_inputs(run_path, config)
    except PersonaError:
        generation = GenerationSettings(
            temperature=config.temperature, max_tokens=config.max_tokens
        )
        templates = TemplateSet.load(config.templates)
        steps = _plan_jobs(config, typical_jobs(config), templates, generation, config.n, prices)
        note = f"{config.n:,} pairs of typical length"
    else:
        steps = plan_bench(config, inputs, prices)
        note = f"{inputs.pairs.height:,} pairs"
    return [
        counted_row("bench", s.step, s.model, s.calls, s.prompt_tokens, s.completion_tokens,
                    prices, note)
        for s in steps
    ]  # fmt: skip


def _plan_jobs(
    config: BenchConfig,
    jobs: list[AnswerJob],
    templates: TemplateSet,
    generation: GenerationSettings,
    n_pairs: int,
    prices: PriceTable,
) -> list[PlanStep]:
    summary_tokens = generation.max_tokens
    placeholder = "x" * (summary_tokens * CHARS_PER_TOKEN)
    steps: list[PlanStep] = []
    judge_items: list[tuple[AnswerJob, int]] = []
    for spec in config.models:
        model = parse_spec(spec).id
        summaries = PlanStep(model, "summaries (persona-summary)")
        answers = PlanStep(model, "answers")
        for job in jobs:
            if job.method is Method.PERSONA_SUMMARY:
                summaries.add(_tokens(summary_messages(templates, job)), summary_tokens)
                prompt = answer_messages(templates, job, placeholder)
            else:
                prompt = answer_messages(templates, job)
            answers.add(_tokens(prompt), generation.answer_tokens(job.method))
            judge_items.append((job, generation.answer_tokens(job.method)))
        steps += [s for s in (summaries, answers) if s.calls]
    judge = parse_spec(config.judge_model).id
    critic = PlanStep(judge, "critic verdicts")
    subtlety = PlanStep(judge, "subtlety checks (1 token)")
    for job, answer_tokens in judge_items:
        item = JudgeItem(job.persona_text, job.question, "x" * (answer_tokens * CHARS_PER_TOKEN))
        critic.add(_tokens(critic_messages(templates, item)), config.judge_max_tokens)
        subtlety.add(_tokens(subtlety_messages(templates, item)), 1)
    steps += [critic, subtlety]
    if config.drops_judge and Method.PERSONA_SUMMARY in config.methods:
        # An upper bound: every persona has every attribute; ~100 tokens of instructions.
        checks = len(ATTRIBUTES) * config.k * n_pairs * len(config.models)
        steps.append(
            PlanStep(
                judge,
                "summary attribute checks (1 token)",
                calls=checks,
                prompt_tokens=checks * (summary_tokens + 100),
                completion_tokens=checks,
            )
        )
    for step in steps:
        step.cost_usd = prices.cost(step.model, step.prompt_tokens, step.completion_tokens)
    return steps
