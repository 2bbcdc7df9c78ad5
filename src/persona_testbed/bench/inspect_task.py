"""PERSONA Bench as an `inspect_ai` task, so inspect users can run it with their own providers.

Optional: needs `pip install inspect-ai` (nothing else in persona_testbed imports this module).
It uses the same pairs (same seed), the same method templates and CoT parsing, and the same
critic prompt, schema, re-ask and parsing as `persona bench`, so on the same model outputs its
`bench_accuracy` equals `persona bench` accuracy.

    inspect eval src/persona_testbed/bench/inspect_task.py@persona_bench \\
        -T run=RUN_DIR -T method=persona-cot -T n=50 \\
        --model openai/gpt-4o-mini --model-role grader=openai/gpt-4o

The judge is the `grader` model role (default: the model under test). One sample per pair per
epoch; `--epochs K` gives the pooled accuracy of `persona bench --k K` (inspect's default mean
reducer keeps it exact); pass@k, the subtlety judge, slices and summary drops are `persona
bench` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
    ResponseSchema,
    get_model,
)
from inspect_ai.scorer import (
    Metric,
    SampleScore,
    Score,
    Scorer,
    Target,
    metric,
    scorer,
)
from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.util import json_schema

from persona_testbed.bench.config import BenchConfig
from persona_testbed.bench.critics import (
    CriticVerdict,
    JudgeItem,
    Verdict,
    critic_messages,
    final_verdict,
)
from persona_testbed.bench.generate import AnswerJob, answer_messages, summary_messages
from persona_testbed.bench.methods import Method, parse_cot
from persona_testbed.bench.stage import prepare_inputs
from persona_testbed.bench.templates import TemplateSet
from persona_testbed.llm import Message, parse_reply
from persona_testbed.llm.structured import reask_message

GRADER_ROLE = "grader"


def to_inspect(messages: Sequence[Message]) -> list[ChatMessage]:
    converted: list[ChatMessage] = []
    for message in messages:
        if message.role == "system":
            converted.append(ChatMessageSystem(content=message.content))
        elif message.role == "user":
            converted.append(ChatMessageUser(content=message.content))
        else:
            converted.append(ChatMessageAssistant(content=message.content))
    return converted


def _job(state: TaskState, method: Method) -> AnswerJob:
    meta = state.metadata
    return AnswerJob(
        method=method,
        pair_id=str(state.sample_id),
        persona_id=meta["persona_id"],
        prompt_id=meta["prompt_id"],
        question=meta["question"],
        persona_text=meta["persona_text"],
        shown_persona_text=meta["persona_text"],
        sample_index=state.epoch - 1,
    )


@solver
def bench_answer(
    method: str = "persona", templates: str | None = None, max_tokens: int = 96
) -> Solver:
    """Write the answer with one bench method; the judged answer goes to metadata["answer"]."""
    chosen = Method(method)
    template_set = TemplateSet.load(Path(templates) if templates else None)

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        job = _job(state, chosen)
        summary: str | None = None
        if chosen is Method.PERSONA_SUMMARY:
            output = await get_model().generate(
                to_inspect(summary_messages(template_set, job)),
                config=GenerateConfig(max_tokens=max_tokens),
            )
            summary = output.completion.strip()
        state.messages = to_inspect(answer_messages(template_set, job, summary))
        state = await generate(state, tool_calls="none")
        text = state.output.completion
        parse_error: str | None = None
        answer = text.strip()
        if chosen is Method.PERSONA_COT:
            parsed = parse_cot(text)
            answer, parse_error = parsed.answer, parsed.error
        state.metadata.update(
            {"answer": answer, "summary": summary, "answer_parse_error": parse_error}
        )
        return state

    return solve


def _score_parts(sample: SampleScore) -> tuple[float, float]:
    value = sample.score.value
    if not isinstance(value, dict):
        raise ValueError(f"unexpected bench score value {value!r}")
    return float(value["passed"]), float(value["valid"])


@metric
def bench_accuracy() -> Metric:
    """Share of valid verdicts needing no revision (verdict errors excluded, as in the bench).

    Scores are {"passed", "valid"}; over epochs inspect averages each per pair, and with the
    same number of epochs per pair sum(passed) / sum(valid) is still the pooled bench rate.
    """

    def compute(scores: list[SampleScore]) -> float:
        parts = [_score_parts(s) for s in scores]
        valid = sum(v for _, v in parts)
        return sum(p for p, _ in parts) / valid if valid else float("nan")

    return compute


@metric
def verdict_errors() -> Metric:
    """Critic replies that did not parse, even after the re-ask (per epoch when epochs > 1)."""

    def compute(scores: list[SampleScore]) -> float:
        return sum(1.0 - _score_parts(s)[1] for s in scores)

    return compute


async def _critic_verdict(messages: list[Message], max_tokens: int) -> Verdict:
    """One structured call and at most one re-ask, exactly as LLMClient.astructured does."""
    judge = get_model(role=GRADER_ROLE)
    config = GenerateConfig(
        temperature=0.0,
        max_tokens=max_tokens,
        response_schema=ResponseSchema(
            name="CriticVerdict", json_schema=json_schema(CriticVerdict)
        ),
    )
    first = (await judge.generate(to_inspect(messages), config=config)).completion
    value, error = parse_reply(first, CriticVerdict)
    if value is not None:
        return Verdict(value.needs_revision, value.reasoning, None, first, 1)
    retry = [
        *messages,
        Message(role="assistant", content=first),
        Message(role="user", content=reask_message(error or "invalid")),
    ]
    second = (await judge.generate(to_inspect(retry), config=config)).completion
    value, error = parse_reply(second, CriticVerdict)
    return final_verdict(second, value, error, 2)


@scorer(metrics=[bench_accuracy(), verdict_errors()])
def critic(templates: str | None = None, max_tokens: int = 128) -> Scorer:
    """The bench critic: passed when the answer needs no revision; not valid on a verdict error."""
    template_set = TemplateSet.load(Path(templates) if templates else None)

    async def score(state: TaskState, target: Target) -> Score:
        meta = state.metadata
        item = JudgeItem(meta["persona_text"], meta["question"], meta.get("answer") or "")
        verdict = await _critic_verdict(critic_messages(template_set, item), max_tokens)
        # A dict, not C/I: inspect's reducers turn a NOANSWER into a 0 (a fail), while the bench
        # leaves verdict errors out of the rate.
        value = {
            "passed": 1.0 if verdict.passed else 0.0,
            "valid": 0.0 if verdict.passed is None else 1.0,
        }
        details: dict[str, Any] = {
            "needs_revision": verdict.needs_revision,
            "verdict_error": verdict.error,
            "verdict_raw": verdict.raw,
            "answer_parse_error": meta.get("answer_parse_error"),
        }
        return Score(
            value=value, answer=item.answer, explanation=verdict.reasoning, metadata=details
        )

    return score


def bench_dataset(config: BenchConfig, run: Path) -> MemoryDataset:
    """The same (persona, question) pairs `persona bench` draws with this config's seed."""
    inputs = prepare_inputs(run, config)
    samples = [
        Sample(
            id=row["pair_id"],
            input=row["question"],
            metadata={
                "persona_id": row["persona_id"],
                "prompt_id": row["prompt_id"],
                "question": row["question"],
                "persona_text": row["persona_text"],
                "topic": row["topic"],
            },
        )
        for row in inputs.pairs.iter_rows(named=True)
    ]
    return MemoryDataset(samples, name="persona-bench")


@task
def persona_bench(
    run: str = ".",
    personas: str | None = None,
    prompts: str | None = None,
    method: str = "persona",
    n: int = 20,
    seed: int = 0,
    persona_split: str = "test",
    prompt_split: str = "heldout",
    temperature: float = 0.7,
    max_tokens: int = 96,
    judge_max_tokens: int = 128,
    templates: str | None = None,
) -> Task:
    """PERSONA Bench for one method: answers by the evaluated model, verdicts by `grader`."""
    config = BenchConfig.model_validate(
        {
            "methods": (method,),
            "n": n,
            "seed": seed,
            "personas": personas,
            "prompts": prompts,
            "persona_split": persona_split,
            "prompt_split": prompt_split,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "judge_max_tokens": judge_max_tokens,
            "templates": templates,
        }
    )
    answer_tokens = config.max_tokens * (2 if Method(method) is Method.PERSONA_COT else 1)
    return Task(
        dataset=bench_dataset(config, Path(run)),
        solver=bench_answer(method, templates, config.max_tokens),
        scorer=critic(templates, judge_max_tokens),
        config=GenerateConfig(temperature=temperature, max_tokens=answer_tokens, seed=seed),
    )
