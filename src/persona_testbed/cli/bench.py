"""The `persona bench` command. Thin: parse options, call the library, print a short summary.
User errors propagate as PersonaError/InputError (the CLI prints them as one line)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer
from pydantic import ValidationError
from rich.console import Console

from persona_testbed.bench.config import BenchConfig, parse_loo, parse_models
from persona_testbed.bench.methods import ALL_METHODS, parse_methods
from persona_testbed.bench.pairs import PersonaSplit, PromptSplit, resolve_inputs
from persona_testbed.bench.plan import PlanStep, plan_bench
from persona_testbed.bench.stage import prepare_inputs, run_bench_stage
from persona_testbed.cli.options import (
    ClientOptions,
    ForceOption,
    SeedOption,
    print_stage_outputs,
    with_client_options,
)
from persona_testbed.config_errors import option_config_error
from persona_testbed.estimation import format_estimate
from persona_testbed.run import RunDir

console = Console(soft_wrap=True)
DEFAULT_METHODS = ",".join(method.value for method in ALL_METHODS)


def bench(
    run: Annotated[
        Path, typer.Option("--run", help="run directory (inputs by default; outputs in bench/)")
    ],
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="model under test (repeatable): local:smollm2-135m (default), "
            "gguf:/path/file.gguf or openai:MODEL",
        ),
    ] = None,
    judge: Annotated[
        str | None,
        typer.Option(
            "--judge",
            help="judge model spec (critic and subtlety judge; default: the first --model)",
        ),
    ] = None,
    methods: Annotated[
        str,
        typer.Option(
            "--methods", help="comma list: no-persona, persona, persona-cot, persona-summary"
        ),
    ] = DEFAULT_METHODS,
    n: Annotated[int, typer.Option("--n", min=1, help="(persona, question) pairs")] = 20,
    k: Annotated[
        int, typer.Option("--k", min=1, help="samples per pair and method (pass@1..k)")
    ] = 1,
    seed: SeedOption = 0,
    slice_: Annotated[
        list[str] | None,
        typer.Option(
            "--slice",
            help="persona filter reported as a slice (repeatable), e.g. "
            '"sex=Female & religion!=Catholic"',
        ),
    ] = None,
    loo: Annotated[
        str | None,
        typer.Option(
            "--loo", help="leave-one-attribute-out for the persona method: 'all' or a comma list"
        ),
    ] = None,
    temperature: Annotated[
        float, typer.Option("--temperature", min=0.0, help="sampling of the model under test")
    ] = 0.7,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", min=8, help="answer/summary budget (CoT gets twice)")
    ] = 96,
    judge_max_tokens: Annotated[
        int, typer.Option("--judge-max-tokens", min=16, help="critic verdict budget")
    ] = 128,
    drops_judge: Annotated[
        bool,
        typer.Option("--drops-judge", help="let the judge model match summary attributes"),
    ] = False,
    personas: Annotated[
        Path | None, typer.Option("--personas", help="personas file (Parquet/JSONL)")
    ] = None,
    prompts: Annotated[
        Path | None, typer.Option("--prompts", help="prompts file (Parquet/JSONL)")
    ] = None,
    persona_split: Annotated[
        str, typer.Option("--persona-split", help="test (default), train or all")
    ] = "test",
    prompt_split: Annotated[
        str, typer.Option("--prompt-split", help="heldout (default), train or all")
    ] = "heldout",
    templates: Annotated[
        Path | None,
        typer.Option("--templates", help="directory of prompt templates replacing bundled ones"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the call plan and cost estimate only")
    ] = False,
    force: ForceOption = False,
    client_options: ClientOptions = ClientOptions(),
) -> None:
    """PERSONA Bench (paper §5): how well models personalize answers, judged by a critic."""
    try:
        config = BenchConfig(
            models=parse_models(model),
            judge=judge,
            methods=parse_methods(methods),
            n=n,
            k=k,
            seed=seed,
            temperature=temperature,
            max_tokens=max_tokens,
            judge_max_tokens=judge_max_tokens,
            slices=tuple(slice_ or ()),
            loo=parse_loo(loo),
            drops_judge=drops_judge,
            personas=personas,
            prompts=prompts,
            persona_split=cast(PersonaSplit, persona_split),  # pydantic checks the value
            prompt_split=cast(PromptSplit, prompt_split),
            templates=templates,
        )
    except ValidationError as exc:
        raise option_config_error(exc) from None
    settings = client_options.settings()
    if dry_run:
        inputs = prepare_inputs(run, config)
        print_plan(plan_bench(config, inputs, settings.prices), inputs.pairs.height, config)
        return
    resolve_inputs(run, personas, prompts)  # a missing input fails before any directory is made
    run_dir = RunDir.create(run)
    result = run_bench_stage(run_dir, config, settings=settings, force=force)
    console.print(f"PERSONA Bench: {config.n} pairs, k={config.k}, judge {config.judge_model}")
    for m in result.metrics:
        acc = m.accuracy
        accuracy = format_estimate(acc.value, acc.low, acc.high)
        top = m.pass_at.get(config.k)
        pass_k = "-" if top is None or top.value is None else f"{top.value:.3f}"
        subtle = "-" if m.not_subtle.value is None else f"{m.not_subtle.value:.3f}"
        strict = m.accuracy_failures_counted
        counted = format_estimate(strict.value, strict.low, strict.high)
        console.print(
            f"  {m.model} / {m.method}: accuracy {accuracy} over {acc.trials} verdicts "
            f"({m.verdict_errors} verdict errors, {m.generation_failures} generation failures "
            f"excluded; {counted} with them counted as failures); pass@{config.k} {pass_k}; "
            f"not subtle {subtle}"
        )
    for model_id, usage in result.usage.items():
        console.print(
            f"{model_id}: {usage.calls} model calls, {usage.cache_hits} cache hits, "
            f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens, "
            f"${usage.cost_usd:.4f}"
        )
    print_stage_outputs(console, run, "bench")


def print_plan(steps: list[PlanStep], pairs: int, config: BenchConfig) -> None:
    console.print(f"bench call plan (dry run, nothing sent): {pairs} pairs, k={config.k}")
    for step in steps:
        console.print(
            f"  {step.model}: {step.step}: {step.calls} calls, ~{step.prompt_tokens} prompt "
            f"tokens, <= {step.completion_tokens} completion tokens, ~${step.cost_usd:.4f}"
        )
    total = sum(step.cost_usd for step in steps)
    console.print(f"estimated total: ${total:.4f} (tokens estimated as characters / 4)")


def register(app: typer.Typer) -> None:
    app.command("bench")(with_client_options(bench))
