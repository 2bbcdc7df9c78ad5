"""The bench stage: sample pairs, generate answers, judge them, write samples, tables, plots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
from persona_testbed.bench.drops import summary_mentions
from persona_testbed.bench.generate import (
    Answer,
    AnswerJob,
    GenerationSettings,
    answer_tallies,
    generate_answers,
)
from persona_testbed.bench.methods import Method
from persona_testbed.bench.metrics import (
    MethodMetrics,
    Streams,
    drops_table,
    loo_table,
    method_metrics,
    slice_table,
)
from persona_testbed.bench.pairs import (
    load_personas,
    load_prompts,
    resolve_inputs,
    sample_pairs,
)
from persona_testbed.bench.slices import DEFAULT_SLICE_ATTRIBUTES, check_filters_match
from persona_testbed.bench.tables import leaderboard_frame, leaderboard_markdown
from persona_testbed.bench.templates import TemplateSet
from persona_testbed.contracts import (
    BENCH_ACCURACY_PNG,
    BENCH_DROPS,
    BENCH_DROPS_MD,
    BENCH_DROPS_PNG,
    BENCH_LEADERBOARD,
    BENCH_LEADERBOARD_MD,
    BENCH_LOO,
    BENCH_LOO_PNG,
    BENCH_LOO_SAMPLES,
    BENCH_PASSK_PNG,
    BENCH_SAMPLES,
    BENCH_SLICES,
    BENCH_SLICES_PNG,
    BENCH_SUMMARY,
    persona_from_row,
)
from persona_testbed.errors import InputError
from persona_testbed.estimation import RESAMPLES, markdown_table
from persona_testbed.llm import ClientSettings, LLMClient, ModelUsage, merge_usage
from persona_testbed.llm.generation import STATS_KEY
from persona_testbed.run import RunDir
from persona_testbed.seeding import child_rng, child_seed
from persona_testbed.stages.pool import ModelPool

STAGE = "bench"
# The stage's files by their contract paths (contracts.artifacts spells them).
SAMPLES = BENCH_SAMPLES.path
LOO_SAMPLES = BENCH_LOO_SAMPLES.path
SUMMARY = BENCH_SUMMARY.path
LEADERBOARD_CSV = BENCH_LEADERBOARD.path
LEADERBOARD_MD = BENCH_LEADERBOARD_MD.path
SLICES_CSV = BENCH_SLICES.path
DROPS_CSV = BENCH_DROPS.path
DROPS_MD = BENCH_DROPS_MD.path
LOO_CSV = BENCH_LOO.path
ACCURACY_PNG = BENCH_ACCURACY_PNG.path
PASSK_PNG = BENCH_PASSK_PNG.path
DROPS_PNG = BENCH_DROPS_PNG.path
SLICES_PNG = BENCH_SLICES_PNG.path
LOO_PNG = BENCH_LOO_PNG.path

NOTES = (
    "accuracy = share of valid critic verdicts saying the answer needs no revision; verdicts "
    "that did not parse (verdict_errors) and answers that were never complete "
    "(generation_failures: cut by the token limit, empty, or a chain of thought without its "
    "Answer line, even after one retry with twice the budget) are excluded",
    "accuracy (failures counted) = the same passes over every sample: verdict errors and "
    "generation failures count as failures",
    f"95% CIs: cluster bootstrap ({RESAMPLES} resamples) over personas, two-way with the "
    "questions they share (docs/statistics.md)",
    "pass@j: unbiased estimator (Chen et al. 2021) over each pair's valid verdicts, j <= k; "
    "pairs with fewer than j valid verdicts are left out of pass@j, so it can dip where "
    "verdicts failed",
    "not subtle = the subtlety judge says the answer quotes or names the persona's attributes",
)

# The verdict and flag of a row that was not judged (its answer is a generation failure).
NOT_JUDGED = Verdict(None, None, None, "", 0)
NOT_FLAGGED = SubtletyFlag(None, None, None)

# Seed streams, one per purpose, named (seeding.py): adding a draw never shifts another.
_PAIRS, _GENERATION = "bench/pairs", "bench/generation"


@dataclass(frozen=True)
class BenchInputs:
    """What a bench run reads, checked before any model call."""

    pairs: pl.DataFrame
    personas_path: Path
    prompts_path: Path
    templates: TemplateSet
    generation: GenerationSettings
    streams: Streams


@dataclass(frozen=True)
class BenchResult:
    run: Path
    outputs: list[str]
    leaderboard: pl.DataFrame
    metrics: list[MethodMetrics]
    usage: dict[str, ModelUsage]
    summary: dict[str, Any]


def prepare_inputs(run_path: Path, config: BenchConfig) -> BenchInputs:
    """Load and check inputs, sample the pairs, load templates (no model call)."""
    if config.loo and Method.PERSONA not in config.methods:
        raise InputError("--loo compares against the 'persona' method: add it to --methods")
    templates = TemplateSet.load(config.templates)
    personas_path, prompts_path = resolve_inputs(run_path, config.personas, config.prompts)
    personas = load_personas(personas_path, config.persona_split)
    prompts = load_prompts(prompts_path, config.prompt_split)
    pairs = sample_pairs(personas, prompts, config.n, child_rng(config.seed, _PAIRS))
    check_filters_match(config.slice_filters(), pairs)  # a filter matching nobody: fail now
    request_seed = child_seed(config.seed, _GENERATION)
    generation = GenerationSettings(
        temperature=config.temperature, max_tokens=config.max_tokens, seed=request_seed
    )
    return BenchInputs(
        pairs=pairs,
        personas_path=personas_path,
        prompts_path=prompts_path,
        templates=templates,
        generation=generation,
        streams=Streams(config.seed),
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


def _choice_notes(samples: pl.DataFrame) -> tuple[str, ...]:
    """Say when subtlety flags came from constrained answers (no log-probabilities)."""
    constrained = int((samples["subtlety_method"] == "constrained").sum())
    if not constrained:
        return ()
    return (
        f"subtlety flags of {constrained} answers are constrained Yes/No answers (the judge's "
        "endpoint returns no log-probabilities; subtlety_method column), not probabilities",
    )


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


def _write_text(stage: Any, name: str, text: str) -> None:
    stage.write_file(name, lambda tmp: Path(tmp).write_text(text, "utf-8"))


def _write_plot(stage: Any, name: str, draw: Any) -> None:
    stage.write_file(name, draw)


def run_bench_stage(
    run: RunDir,
    config: BenchConfig,
    *,
    settings: ClientSettings | None = None,
    clients: Mapping[str, LLMClient] | None = None,
    force: bool = False,
) -> BenchResult:
    """Run PERSONA Bench into `run` (outputs under `bench/`). `clients` maps model specs to
    ready clients (tests, demos); other specs are opened with `settings`."""
    inputs = prepare_inputs(run.path, config)
    given = dict(clients or {})
    # A client per spec not given (one shared where the specs are equal), closed at the end.
    pool = ModelPool(settings or ClientSettings())
    with pool.stage():
        missing = [spec for spec in (*config.models, config.judge_model) if spec not in given]
        return _run(run, config, inputs, {**pool.clients(missing), **given}, force)


def _run(
    run: RunDir,
    config: BenchConfig,
    inputs: BenchInputs,
    clients: Mapping[str, LLMClient],
    force: bool,
) -> BenchResult:
    templates, pairs = inputs.templates, inputs.pairs
    judge = clients[config.judge_model]
    manifest_config = config.manifest_config(templates.digest())
    # Imported here, not at the top: matplotlib loads when a figure is drawn, not on import.
    from persona_testbed.bench import plots

    with run.stage(
        STAGE,
        manifest_config,
        seed=config.seed,
        inputs=[inputs.personas_path, inputs.prompts_path],
        force=force,
    ) as stage:
        jobs = build_jobs(pairs, config.methods, config.k)
        loo_jobs = build_loo_jobs(pairs, config.loo, config.k)
        answers: list[Answer] = []
        tallies: dict[str, Any] = {}
        for spec in config.models:
            label = f"{clients[spec].model_id}: " if len(config.models) > 1 else ""
            outcomes: dict[str, Any] = {}
            answers += generate_answers(
                clients[spec],
                jobs + loo_jobs,
                templates,
                inputs.generation,
                label=label,
                tallies=outcomes,
            )
            for step, tally in answer_tallies(outcomes).items():
                tallies[f"{step} ({clients[spec].model_id})"] = tally
        rows = judge_answers(judge, answers, templates, config)
        every = pl.DataFrame(rows, schema=SAMPLE_SCHEMA)
        samples = every.filter(pl.col("removed_attribute").is_null())
        loo_samples = every.filter(pl.col("removed_attribute").is_not_null())
        BENCH_SAMPLES.write(stage, samples)

        methods = [m.value for m in config.methods]
        metrics = method_metrics(samples, config.k, inputs.streams, methods)
        leaderboard = leaderboard_frame(metrics, config.k)
        model_ids = [clients[s].model_id for s in config.models]
        BENCH_LEADERBOARD.write(stage, leaderboard)
        _write_text(
            stage,
            LEADERBOARD_MD,
            leaderboard_markdown(
                leaderboard,
                config.k,
                title=f"PERSONA Bench leaderboard ({config.n} pairs, k={config.k})",
                notes=(*NOTES, *_choice_notes(samples)),
            ),
        )
        filters = config.slice_filters()
        slices = slice_table(samples, pairs, DEFAULT_SLICE_ATTRIBUTES, filters, inputs.streams)
        BENCH_SLICES.write(stage, slices)

        drops = None
        if Method.PERSONA_SUMMARY in config.methods:
            # A summary that itself failed (truncated, empty) is not judged for drops either.
            summaries = samples.filter(
                (pl.col("method") == Method.PERSONA_SUMMARY.value)
                & pl.col("summary").is_not_null()
                & ~pl.col("generation_failure").fill_null("").str.starts_with("summary")
            ).select("model", "pair_id", "sample_index", "summary")
            mentions = summary_mentions(
                summaries,
                pairs,
                judge=judge if config.drops_judge else None,
                templates=templates,
            )
            drops = drops_table(mentions, inputs.streams)
            BENCH_DROPS.write(stage, drops)
            _write_text(
                stage,
                DROPS_MD,
                "# Attributes the persona summary drops\n\n" + markdown_table(drops),
            )

        loo = None
        if config.loo:
            BENCH_LOO_SAMPLES.write(stage, loo_samples)
            full = samples.filter(pl.col("method") == Method.PERSONA.value)
            loo = loo_table(full, loo_samples, inputs.streams)
            BENCH_LOO.write(stage, loo)

        judge_id, seed = judge.model_id, config.seed
        _write_plot(
            stage,
            ACCURACY_PNG,
            lambda tmp: plots.accuracy_figure(metrics, methods, judge_id, Path(tmp), seed=seed),
        )
        _write_plot(
            stage, PASSK_PNG, lambda tmp: plots.pass_at_k_figure(metrics, judge_id, tmp, seed=seed)
        )
        _write_plot(
            stage,
            SLICES_PNG,
            lambda tmp: plots.slices_figure(
                slices, DEFAULT_SLICE_ATTRIBUTES, judge_id, tmp, seed=seed
            ),
        )
        if drops is not None and not drops.is_empty():
            _write_plot(
                stage, DROPS_PNG, lambda tmp: plots.drops_figure(drops, judge_id, tmp, seed=seed)
            )
        if loo is not None and not loo.is_empty():
            _write_plot(stage, LOO_PNG, lambda tmp: plots.loo_figure(loo, judge_id, tmp, seed=seed))

        usage = merge_usage(*(c.usage for c in {id(c): c for c in clients.values()}.values()))
        summary = {
            "config": manifest_config,
            "models": model_ids,
            "judge_model": judge_id,
            "pairs": pairs.height,
            "samples": samples.height,
            "notes": list(NOTES),
            "results": [m.as_dict() for m in metrics],
            "slices": slices.to_dicts(),
            "attribute_drops": None if drops is None else drops.to_dicts(),
            "leave_one_out": None if loo is None else loo.to_dicts(),
            "usage": {model: u.model_dump() for model, u in usage.items()},
        }
        BENCH_SUMMARY.write(stage, summary)
        stage.record.stats.update(
            {
                "pairs": pairs.height,
                "samples": samples.height,
                "loo_samples": loo_samples.height,
                "verdict_errors": int(every.get_column("verdict_error").is_not_null().sum()),
                "generation_failures": int(
                    every.get_column("generation_failure").is_not_null().sum()
                ),
                STATS_KEY: tallies,
                "accuracy": {f"{m.model} / {m.method}": m.accuracy.value for m in metrics},
                "accuracy_failures_counted": {
                    f"{m.model} / {m.method}": m.accuracy_failures_counted.value for m in metrics
                },
            }
        )
        stage.add_usage(usage)
        outputs = list(stage.record.outputs)
    return BenchResult(
        run=run.path,
        outputs=outputs,
        leaderboard=leaderboard,
        metrics=metrics,
        usage=usage,
        summary=summary,
    )
