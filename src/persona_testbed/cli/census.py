"""Typer commands `personas`, `census-compare` and `show`. Thin: parse options, call the
library, print a short summary. User errors propagate as PersonaError/InputError."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from persona_testbed.census.census_compare import run_census_compare
from persona_testbed.census.joints import joint_summary
from persona_testbed.census.sampling import Sampling
from persona_testbed.census.stage import (
    NO_RAKE,
    PERSONAS_PARQUET,
    PersonaConfig,
    find_persona,
    run_personas,
)
from persona_testbed.cli.options import (
    DEFAULT_MODEL_SPEC,
    ClientOptions,
    ForceOption,
    ModelOption,
    SeedOption,
    print_stage_outputs,
    with_client_options,
)
from persona_testbed.config_errors import option_config_error
from persona_testbed.errors import InputError
from persona_testbed.llm import LLMClient

console = Console(soft_wrap=True)


def personas(
    out: Annotated[Path, typer.Option("--out", help="run directory to write")],
    pums: Annotated[
        list[Path] | None,
        typer.Option(
            "--pums",
            help="PUMS person files: csv_pXX.zip, psam_pXX.csv, psam_pusa/pusb.csv; several "
            "after one --pums, a folder, or a quoted glob 'DIR/csv_p*.zip' "
            "(default: the bundled 14-state 2018 sample)",
        ),
    ] = None,
    households: Annotated[
        list[Path] | None,
        typer.Option(
            "--households",
            help="PUMS household files (csv_hXX.zip, psam_hXX.csv): several, a folder or a glob",
        ),
    ] = None,
    dictionary: Annotated[
        Path | None,
        typer.Option("--dictionary", help="PUMS data dictionary CSV (default: bundled 2018)"),
    ] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="number of personas")] = 1586,
    seed: SeedOption = 0,
    sampling: Annotated[
        Sampling, typer.Option("--sampling", help="pps: systematic PPS (default); iid")
    ] = Sampling.PPS,
    rake: Annotated[
        str, typer.Option("--rake", help="none, us-2022 (bundled U.S. 2022 adults) or a CSV")
    ] = NO_RAKE,
    min_age: Annotated[int, typer.Option("--min-age", min=0)] = 0,
    max_age: Annotated[int, typer.Option("--max-age", min=0)] = 99,
    no_llm: Annotated[
        bool, typer.Option("--no-llm", help="purely procedural: no consistency judge, no fill")
    ] = False,
    model: ModelOption = DEFAULT_MODEL_SPEC,
    client_options: ClientOptions = ClientOptions(),
    force: ForceOption = False,
) -> None:
    """Sample census-grounded personas (paper §3.1) into a run directory."""
    try:
        config = PersonaConfig(
            n=n,
            seed=seed,
            sampling=sampling,
            rake=rake,
            min_age=min_age,
            max_age=max_age,
            use_llm=not no_llm,
            model=model,
            pums=tuple(pums or ()),
            households=tuple(households or ()),
            dictionary=dictionary,
        )
    except ValidationError as exc:
        raise option_config_error(exc) from None
    client = None
    if config.use_llm:  # a bad spec fails before any output
        client = LLMClient.from_spec(model, client_options.settings())
    try:
        result = run_personas(out, config, client=client, force=force)
    finally:
        if client is not None:
            client.close()
    stats = result.stats
    console.print(
        f"wrote {stats['personas']} personas ({stats['train']} train / {stats['test']} test) to "
        f"{result.personas_path}"
    )
    console.print(
        f"sampling: {stats['sampling']['method']}; rake target: {stats['rake']['target']}"
    )
    weights = stats["weights"]
    if "effective_sample_size_raked" in weights:
        console.print(
            f"effective sample size: {weights['effective_sample_size_pwgtp']:,.0f} (PWGTP) -> "
            f"{weights['effective_sample_size_raked']:,.0f} (raked)"
        )
    llm = stats["llm"]
    if llm.get("used"):
        console.print(
            f"consistency judge: {llm['pruned']} of {llm['judged']} pruned "
            f"({llm['prune_rate']:.1%}), {llm['judge_failures']} unparsed replies kept; "
            f"fill failures: {llm['fill_failures']}"
        )
    print_stage_outputs(console, out, "personas")


def census_compare(
    run: Annotated[Path, typer.Option("--run", help="run directory with a personas stage")],
    force: ForceOption = False,
) -> None:
    """Compare persona shares with the weighted census (TVD, chi-square, PNG grid)."""
    result = run_census_compare(run, force=force)
    stats = result.stats
    console.print(f"rake target: {stats['rake_target']}")
    if "target_limits" in stats:
        console.print(f"target limits: {stats['target_limits']}")
    if stats["controlled"]:
        console.print(
            f"controlled by design (not evidence): {', '.join(stats['controlled'])}", markup=False
        )
    for key, value in stats.items():
        if key.endswith("_mean_tvd"):
            reference = key.removesuffix("_mean_tvd")
            console.print(
                f"{reference}: mean TVD {value:.4f} over {stats[f'{reference}_attributes']} "
                "uncontrolled attributes"
            )
    if result.joints is not None:
        console.print(joint_summary(result.joints), markup=False)
    print_stage_outputs(console, run, "census-compare")


def show(
    persona_id: Annotated[str, typer.Argument(help="persona id (e.g. p0042) or row number")],
    run: Annotated[Path, typer.Option("--run", help="run directory with personas.parquet")],
) -> None:
    """Print a persona's canonical text form (the one used in prompts)."""
    persona = find_persona(run / PERSONAS_PARQUET, persona_id)
    if persona is None:
        raise InputError(f"{run / PERSONAS_PARQUET}: no persona '{persona_id}'")
    typer.echo(persona.to_text())


def register(app: typer.Typer) -> None:
    """Add `personas`, `census-compare` and `show` to `app`."""
    app.command("personas")(with_client_options(personas, omit=("prices", "timeout_s")))
    app.command("census-compare")(census_compare)
    app.command("show")(show)
