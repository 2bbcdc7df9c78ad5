"""The bench's sample rows (one per answer, with its verdict and subtlety flag), made a chunk of
pairs at a time so that a large bench never holds its answers, texts or replies whole.

Each chunk is generated, judged and returned as a frame; the stage appends it to the samples
Parquet as row groups (run.chunks) and drops it. Rows come in the order the whole-job frame had:
per model, pairs in sampled order, then method and sample within a pair (leave-one-out rows in
their own frame), so the files do not depend on the chunk size.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from persona_testbed.bench.config import BenchConfig
from persona_testbed.bench.critics import (
    JudgeItem,
    SubtletyFlag,
    Verdict,
    critic_verdicts,
    subtlety_flags,
)
from persona_testbed.bench.generate import Answer, AnswerJob, GenerationSettings, generate_answers
from persona_testbed.bench.methods import Method
from persona_testbed.bench.templates import TemplateSet
from persona_testbed.contracts import persona_from_row
from persona_testbed.llm import LLMClient
from persona_testbed.llm.generation import FailureTally

# Pairs answered and judged per round: bounds the requests, replies and sample rows held in
# memory without changing any request. A pair costs k x methods x models answers (plus
# leave-one-out ones) and two judge calls each: at k=4 with the four methods, 1,000 pairs are
# about 50,000 calls, what a 10,000-pair chunk of the preferences stage costs. Not part of
# the config: it changes no output, so a re-run with another size is the same run.
DEFAULT_CHUNK_PAIRS = 1_000

# The verdict and flag of a row that was not judged (its answer is a generation failure).
NOT_JUDGED = Verdict(None, None, None, "", 0)
NOT_FLAGGED = SubtletyFlag(None, None, None)

SAMPLE_SCHEMA: dict[str, Any] = {
    "model": pl.String,
    "judge_model": pl.String,
    "method": pl.String,
    "pair_id": pl.String,
    "persona_id": pl.String,
    "prompt_id": pl.String,
    "sample_index": pl.Int64,
    "removed_attribute": pl.String,
    "question": pl.String,
    "persona_text": pl.String,
    "summary": pl.String,
    "raw_output": pl.String,
    "reasoning": pl.String,
    "answer": pl.String,
    "answer_parse_error": pl.String,
    "finish_reason": pl.String,
    "generation_failure": pl.String,
    "generation_attempts": pl.Int64,
    "needs_revision": pl.Boolean,
    "passed": pl.Boolean,
    "critic_reasoning": pl.String,
    "verdict_error": pl.String,
    "verdict_raw": pl.String,
    "verdict_attempts": pl.Int64,
    "p_not_subtle": pl.Float64,
    "not_subtle": pl.Boolean,
    "subtlety_error": pl.String,
    "subtlety_method": pl.String,
}

# What the metrics, tables, plots and stats read of every sample (bench.metrics.pair_counts and
# the notes): ids and outcomes, no text. Read back from the written file, they cost tens of
# bytes a sample where the full rows cost kilobytes.
METRIC_COLUMNS = (
    "model",
    "judge_model",
    "method",
    "pair_id",
    "persona_id",
    "prompt_id",
    "sample_index",
    "removed_attribute",
    "passed",
    "verdict_error",
    "generation_failure",
    "answer_parse_error",
    "not_subtle",
    "subtlety_method",
)


def _job(
    pair: dict[str, Any],
    method: Method,
    sample: int,
    shown_persona_text: str,
    removed_attribute: str | None = None,
) -> AnswerJob:
    return AnswerJob(
        method=method,
        pair_id=pair["pair_id"],
        persona_id=pair["persona_id"],
        prompt_id=pair["prompt_id"],
        question=pair["question"],
        persona_text=pair["persona_text"],
        shown_persona_text=shown_persona_text,
        sample_index=sample,
        removed_attribute=removed_attribute,
    )


def build_jobs(pairs: pl.DataFrame, methods: Sequence[Method], k: int) -> list[AnswerJob]:
    """Main jobs, grouped by pair so consecutive prompts share their persona prefix."""
    return [
        _job(pair, method, sample, pair["persona_text"])
        for pair in pairs.iter_rows(named=True)
        for method in methods
        for sample in range(k)
    ]


def build_loo_jobs(pairs: pl.DataFrame, attributes: Sequence[str], k: int) -> list[AnswerJob]:
    """`persona` jobs with one attribute removed from the persona the model sees (only pairs
    whose persona has that attribute: removing a missing one changes nothing)."""
    jobs: list[AnswerJob] = []
    for pair in pairs.iter_rows(named=True):
        for attribute in attributes:
            if pair[attribute] is None or str(pair[attribute]).strip() == "":
                continue
            shown = persona_from_row({**pair, attribute: None}, "pairs").to_text()
            jobs.extend(_job(pair, Method.PERSONA, sample, shown, attribute) for sample in range(k))
    return jobs


def judge_answers(
    judge: LLMClient, answers: Sequence[Answer], templates: TemplateSet, config: BenchConfig
) -> list[dict[str, Any]]:
    """Critic verdict and subtlety flag of every answer, as sample rows (input order).

    Generation failures are never judged: their rows carry the failure and no verdict."""
    # Judge in pair order: prompts of one pair share the persona and question prefix.
    usable = [i for i in range(len(answers)) if answers[i].ok]
    order = sorted(usable, key=lambda i: answers[i].job.pair_id)
    items = [
        JudgeItem(answers[i].job.persona_text, answers[i].job.question, answers[i].answer)
        for i in order
    ]
    verdicts = critic_verdicts(judge, items, templates, max_tokens=config.judge_max_tokens)
    flags = subtlety_flags(judge, items, templates)
    judged = {i: (verdict, flag) for i, verdict, flag in zip(order, verdicts, flags, strict=True)}
    rows: list[dict[str, Any]] = []
    for i, answer in enumerate(answers):
        job = answer.job
        verdict, flag = judged.get(i, (NOT_JUDGED, NOT_FLAGGED))
        rows.append(
            {
                "model": answer.model,
                "judge_model": judge.model_id,
                "method": job.method.value,
                "pair_id": job.pair_id,
                "persona_id": job.persona_id,
                "prompt_id": job.prompt_id,
                "sample_index": job.sample_index,
                "removed_attribute": job.removed_attribute,
                "question": job.question,
                "persona_text": job.persona_text,
                "summary": answer.summary,
                "raw_output": answer.raw_output,
                "reasoning": answer.reasoning,
                "answer": answer.answer,
                "answer_parse_error": answer.answer_parse_error,
                "finish_reason": answer.finish_reason,
                "generation_failure": answer.failure,
                "generation_attempts": answer.attempts,
                "needs_revision": verdict.needs_revision,
                "passed": verdict.passed,
                "critic_reasoning": verdict.reasoning,
                "verdict_error": verdict.error,
                "verdict_raw": verdict.raw,
                "verdict_attempts": verdict.attempts,
                "p_not_subtle": flag.p_not_subtle,
                "not_subtle": flag.not_subtle,
                "subtlety_error": flag.error,
                "subtlety_method": flag.method,
            }
        )
    return rows


def sample_chunks(
    pairs: pl.DataFrame,
    config: BenchConfig,
    templates: TemplateSet,
    generation: GenerationSettings,
    clients: Mapping[str, LLMClient],
    *,
    tallies: dict[str, FailureTally],
    chunk_pairs: int = DEFAULT_CHUNK_PAIRS,
) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    """Per model, `chunk_pairs` pairs at a time: answer, judge, and yield the chunk's sample
    rows and leave-one-out rows (two frames of SAMPLE_SCHEMA).

    Models come first, then chunks, so the rows concatenate in the whole-job order. Generation
    outcomes are counted into `tallies` ("<step> (<model id>)") and not kept."""
    if chunk_pairs < 1:
        raise ValueError(f"chunk_pairs must be at least 1, not {chunk_pairs}")
    judge = clients[config.judge_model]
    for spec in config.models:
        client = clients[spec]
        label = f"{client.model_id}: " if len(config.models) > 1 else ""
        for offset in range(0, pairs.height, chunk_pairs):
            chunk = pairs.slice(offset, chunk_pairs)
            jobs = build_jobs(chunk, config.methods, config.k)
            jobs += build_loo_jobs(chunk, config.loo, config.k)
            outcomes: dict[str, Any] = {}
            answers = generate_answers(
                client, jobs, templates, generation, label=label, tallies=outcomes
            )
            for step, generated in outcomes.items():
                tallies.setdefault(f"{step} ({client.model_id})", FailureTally()).add(generated)
            del outcomes
            rows = judge_answers(judge, answers, templates, config)
            del answers
            frame = pl.DataFrame(rows, schema=SAMPLE_SCHEMA)
            del rows
            yield (
                frame.filter(pl.col("removed_attribute").is_null()),
                frame.filter(pl.col("removed_attribute").is_not_null()),
            )


def read_metric_columns(path: Path) -> pl.DataFrame:
    """The METRIC_COLUMNS of a written samples file, read a row group at a time."""
    return pl.scan_parquet(path).select(METRIC_COLUMNS).collect()


def read_summaries(path: Path) -> pl.DataFrame:
    """The `persona-summary` summaries the attribute-drop analysis reads (model, pair_id,
    sample_index, summary), from the written samples file. A summary that itself failed
    (truncated, empty) is not judged for drops either."""
    return (
        pl.scan_parquet(path)
        .filter(
            (pl.col("method") == Method.PERSONA_SUMMARY.value)
            & pl.col("summary").is_not_null()
            & ~pl.col("generation_failure").fill_null("").str.starts_with("summary")
        )
        .select("model", "pair_id", "sample_index", "summary")
        .collect()
    )
