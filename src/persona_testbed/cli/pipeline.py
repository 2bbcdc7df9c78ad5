"""`persona run CONFIG.yaml`: the whole pipeline from one config file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from persona_testbed.cli.options import stage_outputs
from persona_testbed.errors import InputError
from persona_testbed.llm.progress import set_progress
from persona_testbed.pipeline.config import RunConfig
from persona_testbed.pipeline.plan import plan_run
from persona_testbed.pipeline.preflight import check_inputs
from persona_testbed.pipeline.runner import record_names, run_pipeline
from persona_testbed.pipeline.yaml_source import load_yaml_model

console = Console(soft_wrap=True)
# The plan table has nine columns: keep them readable when output is piped to a file.
wide = Console(width=max(console.width, 200))


def print_plan(config: RunConfig, run_path: Path | None = None) -> None:
    settings = config.llm.settings()
    rows = plan_run(config, settings.prices, run_path)
    table = Table(
        "stage", "step", "model", "calls", "prompt tok", "completion tok", "cost USD",
        "batch USD", "note",
    )  # fmt: skip
    for row in rows:
        cost = f"{row.cost_usd:,.2f}" if row.priced else "unpriced"
        batch = f"{row.batch_cost_usd:,.2f}" if row.priced else "unpriced"
        table.add_row(row.stage, row.step, row.model, f"{row.calls:,}", f"{row.prompt_tokens:,}",
                      f"{row.completion_tokens:,}", cost, batch, row.note)  # fmt: skip
    wide.print(table)
    models: dict[str, list[float]] = {}
    for row in rows:
        totals = models.setdefault(row.model, [0, 0, 0, 0.0, 0.0])
        totals[0] += row.calls
        totals[1] += row.prompt_tokens
        totals[2] += row.completion_tokens
        totals[3] += row.cost_usd
        totals[4] += row.batch_cost_usd
    for model, (calls, prompt, completion, online, batch_cost) in models.items():
        console.print(
            f"{model}: {int(calls):,} calls, ~{int(prompt):,} prompt + ~{int(completion):,} "
            f"completion tokens, ~${online:,.2f} online or ~${batch_cost:,.2f} through a provider "
            "batch API (upper bounds)"
        )
    console.print("dry run: nothing was called or written")


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run_command(
        config_path: Annotated[Path, typer.Argument(metavar="CONFIG.yaml", help="run config")],
        out: Annotated[
            Path | None, typer.Option("--out", help="run directory (default: runs/<config name>)")
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="print the plan per stage; spend nothing")
        ] = False,
        force: Annotated[
            bool, typer.Option("--force", help="overwrite outputs made with another config")
        ] = False,
        progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
        wait: Annotated[
            bool | None,
            typer.Option(
                "--wait/--no-wait",
                help="llm execution batch: wait for the submitted batches, or submit and stop "
                "(default: llm.batch.wait)",
            ),
        ] = None,
        retry_failed: Annotated[
            bool,
            typer.Option(
                "--retry-failed",
                help="re-run only the rows that failed (errors, truncated or empty outputs, "
                "parse failures); every good cached call is reused",
            ),
        ] = False,
    ) -> None:
        """Run every stage of CONFIG.yaml in order (personas → prompts → preferences → bench →
        agreement), skipping stages already done for the same config."""
        set_progress(progress)
        if not config_path.is_file():
            raise InputError(f"{config_path}: config file not found")
        config = load_yaml_model(config_path, RunConfig)
        target = out or Path("runs") / config_path.stem
        if dry_run:
            print_plan(config, target)
            check_inputs(config, target)  # the plan is printed even when an input is not ready yet
            return
        check_inputs(config, target)  # every stage's inputs, before the first model call
        settings = config.llm.settings(show_progress=progress)
        if wait is not None:
            settings.batch = settings.batch.model_copy(update={"wait": wait})
        result = run_pipeline(
            config,
            target,
            settings=settings,
            force=force,
            retry_failed=retry_failed,
            announce=lambda message: console.print(message, markup=False),
        )
        ran = [s for s in result.stages if not s.skipped]
        records = [record for stage in ran for record in record_names(config, stage.name)]
        written = len(stage_outputs(result.out, *records))
        console.print(
            f"wrote {written} files to {result.out.resolve()} ({len(ran)} stages run, "
            f"{len(result.stages) - len(ran)} skipped); manifest.json lists them",
            markup=False,
        )
