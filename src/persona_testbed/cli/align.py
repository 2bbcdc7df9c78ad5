"""The `persona align` command. Thin: parse options, call the library, print the leaderboard's
headline numbers and the pluralism diagnostic. User errors propagate as InputError (one line)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer
from pydantic import ValidationError
from rich.console import Console

from persona_testbed.align import BUILTIN_METHODS, AlignConfig, parse_methods, run_align_stage
from persona_testbed.align.config import EmbedderName
from persona_testbed.cli.options import ForceOption, SeedOption, print_stage_outputs
from persona_testbed.config_errors import option_config_error
from persona_testbed.contracts import PREFERENCES
from persona_testbed.errors import InputError
from persona_testbed.estimation import RESAMPLES, format_estimate
from persona_testbed.run import RunDir

console = Console(soft_wrap=True)
DEFAULT_METHODS = ",".join(BUILTIN_METHODS)


def align(
    run: Annotated[
        Path, typer.Option("--run", help="run directory with preferences.parquet (outputs: align/)")
    ],
    methods: Annotated[
        str,
        typer.Option(
            "--methods",
            help="comma list of registered methods: persona-blind, persona-conditioned, group",
        ),
    ] = DEFAULT_METHODS,
    seed: SeedOption = 0,
    resamples: Annotated[
        int, typer.Option("--resamples", min=100, help="cluster-bootstrap resamples")
    ] = RESAMPLES,
    embedder: Annotated[
        str,
        typer.Option(
            "--embedder", help="minilm (the bundled all-MiniLM-L6-v2) or hashing (bag of words)"
        ),
    ] = "minilm",
    force: ForceOption = False,
) -> None:
    """Predict which answer each persona prefers: reward models and baselines, scored on the
    test splits with CIs, and whether the pairs test pluralism at all."""
    try:
        config = AlignConfig(
            methods=parse_methods(methods),
            seed=seed,
            resamples=resamples,
            embedder=cast(EmbedderName, embedder),  # pydantic checks the value
        )
    except ValidationError as exc:
        raise option_config_error(exc) from None
    if not run.is_dir():
        raise InputError(f"{run}: no such run directory")
    PREFERENCES.require(run)  # one line naming the file before anything is written
    result = run_align_stage(RunDir.create(run), config, force=force)
    console.print(f"persona align: {', '.join(config.methods)} (seed {config.seed})")
    for row in result.leaderboard.iter_rows(named=True):
        accuracy = format_estimate(row["accuracy"], row["ci_low"], row["ci_high"])
        note = f" ({row['note']})" if row["note"] else ""
        console.print(
            f"  {row['split']} / {row['method']}: accuracy {accuracy} over {row['pairs']} pairs"
            f"{note}",
            markup=False,
            highlight=False,
        )
    for diagnostic in result.diagnostics:
        console.print(diagnostic.sentence, markup=False, highlight=False)
    print_stage_outputs(console, run, "align")


def register(app: typer.Typer) -> None:
    app.command("align")(align)
