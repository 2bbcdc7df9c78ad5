"""Typer command `persona preferences`. Thin: parse options, call the library, print a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from persona_testbed.cli.options import (
    DEFAULT_MODEL_SPEC,
    ClientOptions,
    ForceOption,
    ModelOption,
    SeedOption,
    open_clients,
    print_stage_outputs,
    with_client_options,
)
from persona_testbed.config_errors import option_config_error
from persona_testbed.preferences.plan import CallPlan
from persona_testbed.preferences.stage import (
    PreferencesConfig,
    plan_for_run,
    run_preferences_stage,
)
from persona_testbed.run import RunDir

console = Console(soft_wrap=True)

# The paper's sizes: 1,586 personas and 3,868 kept prompts (3,000 train / 868 held-out).
PAPER_PERSONAS = 1586
PAPER_PROMPTS = 3868


def print_plan(plan: CallPlan) -> None:
    sizes = plan.sizes
    console.print(
        f"plan: {plan.n_personas:,} personas x {sizes.total} pairs "
        f"({sizes.train} train / {sizes.test_seen} test_seen / {sizes.test_unseen} test_unseen)"
        f" = {plan.n_pairs:,} pairs"
    )
    console.print(plan.table(), markup=False)
    mode = "one per prompt, shared across personas" if plan.shared_base else "one per pair"
    console.print(
        f"base answers: {mode}; sharing saves {plan.base_calls_saved:,} of "
        f"{plan.base_calls_per_pair_mode:,} base calls"
    )
    console.print(
        "tokens are estimates (4 characters per token; completions at --max-tokens, an upper "
        "bound); nothing was sent to a model"
    )


def preferences(
    run: Annotated[Path, typer.Option("--run", help="run directory with personas and prompts")],
    per_persona_train: Annotated[int, typer.Option("--per-persona-train", min=0)] = 100,
    per_persona_test_seen: Annotated[int, typer.Option("--per-persona-test-seen", min=0)] = 50,
    per_persona_test_unseen: Annotated[int, typer.Option("--per-persona-test-unseen", min=0)] = 50,
    templates: Annotated[
        str,
        typer.Option(
            "--templates", help="bundled set (paper, subtle, brief) or a folder of templates"
        ),
    ] = "paper",
    model: ModelOption = DEFAULT_MODEL_SPEC,
    judge: Annotated[
        str | None, typer.Option("--judge", help="judge model spec (default: --model)")
    ] = None,
    base_per_pair: Annotated[
        bool,
        typer.Option("--base-per-pair", help="one base answer per pair instead of per prompt"),
    ] = False,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", min=1, help="per answer, critique and revision")
    ] = 256,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0)] = 0.7,
    seed: SeedOption = 0,
    max_personas: Annotated[
        int | None, typer.Option("--max-personas", min=1, help="only the first N personas")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the call plan and cost; call nothing")
    ] = False,
    plan_personas: Annotated[
        int | None, typer.Option("--plan-personas", min=1, help="dry run: plan for N personas")
    ] = None,
    plan_prompts: Annotated[
        int | None,
        typer.Option("--plan-prompts", min=2, help="dry run: plan for N kept prompts"),
    ] = None,
    paper_scale: Annotated[
        bool,
        typer.Option("--paper-scale", help="dry run: 1,586 personas and 3,868 prompts"),
    ] = False,
    push_to_hub: Annotated[
        str | None, typer.Option("--push-to-hub", help="also push the DatasetDict to this repo")
    ] = None,
    client_options: ClientOptions = ClientOptions(),
    force: ForceOption = False,
) -> None:
    """Build persona-specific preference pairs by DPF, verify them, export them (§3.2)."""
    try:
        config = PreferencesConfig(
            per_persona_train=per_persona_train,
            per_persona_test_seen=per_persona_test_seen,
            per_persona_test_unseen=per_persona_test_unseen,
            templates=templates,
            model=model,
            judge=judge,
            base_per_pair=base_per_pair,
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            max_personas=max_personas,
        )
    except ValidationError as exc:
        raise option_config_error(exc) from None
    settings = client_options.settings()
    if dry_run:
        plan = plan_for_run(
            run,
            config,
            prices=settings.prices,
            plan_personas=PAPER_PERSONAS if paper_scale else plan_personas,
            plan_prompts=PAPER_PROMPTS if paper_scale else plan_prompts,
        )
        print_plan(plan)
        return
    run_dir = RunDir.open(run)
    with open_clients([config.model, config.judge_model], settings) as clients:
        result = run_preferences_stage(
            run_dir,
            config,
            client=clients[config.model],
            judge_client=clients[config.judge_model],
            force=force,
            push_to=push_to_hub,
        )
    stats = result.stats
    per_split = ", ".join(f"{k} {v}" for k, v in stats["pairs_per_split"].items())
    console.print(f"wrote {stats['pairs']} pairs ({per_split}) for {stats['personas']} personas")
    if stats["per_persona_used"] != stats["per_persona_requested"]:
        console.print(
            f"too few prompts for the requested sizes {stats['per_persona_requested']}: "
            f"used {stats['per_persona_used']} per persona"
        )
    for step, counts in stats["steps"].items():
        failures = stats.get("generation", {}).get(step) or {}
        console.print(
            f"  {step}: {counts['requests']} requests, {counts['calls']} model calls, "
            f"{counts['cache_hits']} cache hits"
            + (
                f", {failures.get('retried', 0)} retried with a larger budget, "
                f"{failures.get('failed', 0)} still failed"
                if failures
                else ""
            )
        )
    if stats.get("generation_failures"):
        console.print(
            f"{stats['generation_failures']} pairs with a generation failure (truncated, empty "
            "or errored after one retry): not judged, not exported; "
            "`persona run CONFIG --retry-failed` asks for them again in a pipeline run"
        )
    console.print(
        f"shared base answers saved {stats['base_requests_saved_by_sharing']} base requests"
    )
    overall = result.verification["overall"]
    if overall["share_prefer_chosen"] is not None:
        low, high = overall["ci95_low"], overall["ci95_high"]
        # No interval with fewer than two personas (the bootstrap resamples personas).
        ci = "n/a" if low is None or high is None else f"{100 * low:.1f}-{100 * high:.1f}%"
        console.print(
            f"judge {stats['judge_model']} prefers y_w in {overall['prefer_chosen']} of "
            f"{overall['judged']} judged pairs ({100 * overall['share_prefer_chosen']:.1f}%, "
            f"95% CI {ci})"
        )
    if push_to_hub:
        console.print(f"pushed the DatasetDict to {push_to_hub}")
    print_stage_outputs(console, run, "preferences")


def register(app: typer.Typer) -> None:
    """Add `persona preferences` to `app`."""
    app.command("preferences")(with_client_options(preferences))
