"""`--dry-run`: the call plan of a bench run (calls per step, estimated tokens and cost per
model) from the rendered prompts, without calling any model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from persona_testbed.bench.config import BenchConfig
from persona_testbed.bench.critics import JudgeItem, critic_messages, subtlety_messages
from persona_testbed.bench.generate import AnswerJob, answer_messages, summary_messages
from persona_testbed.bench.methods import Method
from persona_testbed.bench.stage import BenchInputs, build_jobs, build_loo_jobs
from persona_testbed.contracts import ATTRIBUTES
from persona_testbed.llm import Message, PriceTable, parse_spec

# The usual rule of thumb for English text.
CHARS_PER_TOKEN = 4


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
    templates, generation = inputs.templates, inputs.generation
    jobs = build_jobs(inputs.pairs, config.methods, config.k)
    jobs += build_loo_jobs(inputs.pairs, config.loo, config.k)
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
    judge = parse_spec(config.judge).id
    critic = PlanStep(judge, "critic verdicts")
    subtlety = PlanStep(judge, "subtlety checks (1 token)")
    for job, answer_tokens in judge_items:
        item = JudgeItem(job.persona_text, job.question, "x" * (answer_tokens * CHARS_PER_TOKEN))
        critic.add(_tokens(critic_messages(templates, item)), config.judge_max_tokens)
        subtlety.add(_tokens(subtlety_messages(templates, item)), 1)
    steps += [critic, subtlety]
    if config.drops_judge and Method.PERSONA_SUMMARY in config.methods:
        # An upper bound: every persona has every attribute; ~100 tokens of instructions.
        checks = len(ATTRIBUTES) * config.k * inputs.pairs.height * len(config.models)
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
