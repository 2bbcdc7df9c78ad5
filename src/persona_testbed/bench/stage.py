"""The bench stage: sample pairs, generate answers, judge them, write samples, tables, plots."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from persona_testbed.bench.config import BenchConfig
from persona_testbed.bench.drops import summary_mentions
from persona_testbed.bench.generate import GenerationSettings
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
from persona_testbed.bench.samples import (
    DEFAULT_CHUNK_PAIRS,
    read_metric_columns,
    read_summaries,
    sample_chunks,
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
)
from persona_testbed.errors import InputError
from persona_testbed.estimation import RESAMPLES, markdown_table
from persona_testbed.llm import ClientSettings, LLMClient, ModelUsage, merge_usage
from persona_testbed.llm.generation import STATS_KEY, FailureTally
from persona_testbed.run import RunDir
from persona_testbed.run.chunks import ParquetChunks, parquet_chunks
from persona_testbed.run.rundir import StageRun
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


def _choice_notes(samples: pl.DataFrame) -> tuple[str, ...]:
    """Say when subtlety flags came from constrained answers (no log-probabilities)."""
    constrained = int((samples["subtlety_method"] == "constrained").sum())
    if not constrained:
        return ()
    return (
        f"subtlety flags of {constrained} answers are constrained Yes/No answers (the judge's "
        "endpoint returns no log-probabilities; subtlety_method column), not probabilities",
    )


def _count_set(samples: pl.DataFrame, loo_samples: pl.DataFrame, column: str) -> int:
    """Rows of either sample file (leave-one-out ones too) with `column` set."""
    return sum(
        int(frame.get_column(column).is_not_null().sum()) for frame in (samples, loo_samples)
    )


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
    chunk_pairs: int = DEFAULT_CHUNK_PAIRS,
) -> BenchResult:
    """Run PERSONA Bench into `run` (outputs under `bench/`). `clients` maps model specs to
    ready clients (tests, demos); other specs are opened with `settings`. Pairs are answered
    and judged `chunk_pairs` at a time (bench.samples): it bounds memory, not the outputs."""
    inputs = prepare_inputs(run.path, config)
    given = dict(clients or {})
    # A client per spec not given (one shared where the specs are equal), closed at the end.
    pool = ModelPool(settings or ClientSettings())
    with pool.stage():
        missing = [spec for spec in (*config.models, config.judge_model) if spec not in given]
        clients = {**pool.clients(missing), **given}
        return _run(run, config, inputs, clients, force, chunk_pairs)


def _write_samples(
    stage: StageRun,
    config: BenchConfig,
    inputs: BenchInputs,
    clients: Mapping[str, LLMClient],
    loo_chunks: ParquetChunks | None,
    chunk_pairs: int,
) -> dict[str, FailureTally]:
    """Answer and judge every pair a chunk at a time, appending the rows to the samples file
    (published when the last chunk is in) and the leave-one-out rows to `loo_chunks`; return
    the generation failure counts per step and model."""
    tallies: dict[str, FailureTally] = {}
    with BENCH_SAMPLES.write_chunks(stage) as write_samples:
        chunks = sample_chunks(
            inputs.pairs,
            config,
            inputs.templates,
            inputs.generation,
            clients,
            tallies=tallies,
            chunk_pairs=chunk_pairs,
        )
        for samples, loo_samples in chunks:
            write_samples(samples)
            if loo_chunks is not None:
                BENCH_LOO_SAMPLES.check_written(loo_samples)
                loo_chunks.write(loo_samples)  # an empty first chunk still gives the schema
            del samples, loo_samples
    return tallies


def _publish_held(stage: StageRun, name: str, held: ExitStack) -> None:
    """Publish a file whose chunks `held` wrote to a temporary file, listing it among the
    stage's outputs first (so a failure from here on removes it with the stage's others)."""
    if name not in stage.record.outputs:
        stage.record.outputs.append(name)
    held.close()


def _run(
    run: RunDir,
    config: BenchConfig,
    inputs: BenchInputs,
    clients: Mapping[str, LLMClient],
    force: bool,
    chunk_pairs: int,
) -> BenchResult:
    templates, pairs = inputs.templates, inputs.pairs
    judge = clients[config.judge_model]
    manifest_config = config.manifest_config(templates.digest())
    # Imported here, not at the top: matplotlib loads when a figure is drawn, not on import.
    from persona_testbed.bench import plots

    with (
        run.stage(
            STAGE,
            manifest_config,
            seed=config.seed,
            inputs=[inputs.personas_path, inputs.prompts_path],
            force=force,
        ) as stage,
        ExitStack() as held_loo,
    ):
        # The leave-one-out rows go to a temporary file from the first chunk on; it is
        # published below, where the whole-frame write listed it among the outputs (the
        # manifest keeps their order). A failure before that leaves no loo_samples.parquet.
        loo_chunks = (
            held_loo.enter_context(parquet_chunks(run.file(LOO_SAMPLES))) if config.loo else None
        )
        tallies = _write_samples(stage, config, inputs, clients, loo_chunks, chunk_pairs)
        # The analysis reads the few columns it needs back from the file, not the texts.
        samples = read_metric_columns(run.file(SAMPLES))

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
            mentions = summary_mentions(
                read_summaries(run.file(SAMPLES)),
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
        loo_samples = samples.clear()  # none without --loo
        if config.loo:
            _publish_held(stage, LOO_SAMPLES, held_loo)
            loo_samples = read_metric_columns(run.file(LOO_SAMPLES))
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
                "verdict_errors": _count_set(samples, loo_samples, "verdict_error"),
                "generation_failures": _count_set(samples, loo_samples, "generation_failure"),
                STATS_KEY: {step: tally.as_dict() for step, tally in tallies.items()},
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
