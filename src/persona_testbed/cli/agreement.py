"""Typer commands `persona agreement loo` and `persona agreement models`. Thin: parse options,
call the stage, print a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from persona_testbed.agreement.dpf import DEFAULT_TEMPLATES
from persona_testbed.agreement.loo_stage import (
    LooConfig,
    RefineFor,
    run_loo_stage,
)
from persona_testbed.agreement.models_stage import ModelsConfig, run_models_stage
from persona_testbed.agreement.statistics import UndefinedPolicy
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
from persona_testbed.errors import PersonaError
from persona_testbed.estimation import RESAMPLES, Estimate, format_estimate
from persona_testbed.run import RunDir

console = Console(soft_wrap=True)

RunOption = Annotated[Path, typer.Option("--run", help="run directory (from the earlier stages)")]
TemplatesOption = Annotated[
    str,
    typer.Option(
        "--templates",
        help="preferences template set (paper, subtle, brief, or a folder): DPF + judge",
    ),
]
ThresholdOption = Annotated[
    float, typer.Option("--threshold", help="label A when P(A), averaged over orders, >= this")
]
UndefinedOption = Annotated[
    str,
    typer.Option(
        "--undefined-kappa",
        help="kappa when both annotators give one identical label throughout: nan (missing, "
        "counted) | one (1.0 in per-pair rows; never averaged either way)",
    ),
]
ResamplesOption = Annotated[
    int, typer.Option("--resamples", min=0, help="bootstrap resamples for the 95% CIs")
]


def _specs(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _undefined(value: str) -> UndefinedPolicy:
    if value == "one":
        return "one"
    if value == "nan":
        return "nan"
    raise PersonaError(f"--undefined-kappa {value!r}: use one or nan")


def _refine_for(value: str) -> RefineFor:
    if value == "original":
        return "original"
    if value == "augmented":
        return "augmented"
    if value == "both":
        return "both"
    raise PersonaError(f"--refine-for {value!r}: use original, augmented or both")


def loo(
    run: RunOption,
    attributes: Annotated[
        int | None,
        typer.Option("--attributes", min=1, help="study a seeded sample of N attributes"),
    ] = None,
    attribute: Annotated[
        list[str] | None,
        typer.Option("--attribute", help="study this attribute (repeatable; e.g. 'religion')"),
    ] = None,
    pairs: Annotated[int, typer.Option("--pairs", min=1, help="persona pairs per attribute")] = 40,
    questions: Annotated[
        int, typer.Option("--questions", min=1, help="questions, i.e. items per pair")
    ] = 20,
    questions_file: Annotated[
        Path | None,
        typer.Option("--questions-file", help="questions (.txt/.csv/.jsonl/.parquet) instead"),
    ] = None,
    context_size: Annotated[
        int, typer.Option("--context-size", min=1, help="attributes of the persona without a")
    ] = 3,
    annotators: Annotated[
        str | None,
        typer.Option("--annotators", help="role-play models, comma-separated (default: --model)"),
    ] = None,
    refine_for: Annotated[
        str,
        typer.Option(
            "--refine-for", help="whose persona refines the answers: original|augmented|both"
        ),
    ] = "original",
    templates: TemplatesOption = DEFAULT_TEMPLATES,
    max_tokens: Annotated[
        int,
        typer.Option("--max-tokens", min=1, help="per baseline answer, critique and revision"),
    ] = 256,
    temperature: Annotated[
        float, typer.Option("--temperature", min=0.0, help="sampling temperature of DPF steps")
    ] = 0.7,
    threshold: ThresholdOption = 0.5,
    undefined_kappa: UndefinedOption = "nan",
    resamples: ResamplesOption = RESAMPLES,
    seed: SeedOption = 0,
    model: ModelOption = DEFAULT_MODEL_SPEC,
    client_options: ClientOptions = ClientOptions(),
    force: ForceOption = False,
) -> None:
    """Leave-one-out attribute influence (paper §4.1, Fig. 5)."""
    try:
        config = LooConfig(
            attributes=attribute or None,
            n_attributes=attributes,
            pairs=pairs,
            questions=questions,
            context_size=context_size,
            questions_file=questions_file,
            model=model,
            annotators=_specs(annotators),
            templates=templates,
            refine_for=_refine_for(refine_for),
            max_tokens=max_tokens,
            temperature=temperature,
            threshold=threshold,
            undefined_kappa=_undefined(undefined_kappa),
            resamples=resamples,
            seed=seed,
        )
    except ValidationError as exc:
        raise option_config_error(exc) from None
    settings = client_options.settings()
    run_dir = RunDir.open(run)
    with open_clients([model, *config.annotator_specs], settings) as clients:
        result = run_loo_stage(
            run_dir,
            config,
            client=clients[model],
            annotator_clients={spec: clients[spec] for spec in config.annotator_specs},
            force=force,
        )
    stats = result.stats
    console.print(
        f"{stats['pairs']} persona pairs over {len(stats['attributes'])} attributes, "
        f"{stats['items']} items, {stats['labels']} labels "
        f"({stats['label_ties']} tied and {stats['labels_undecided']} undecided, left out; "
        f"kappa undefined for {stats['pairs_kappa_undefined']} pairs, "
        f"{stats['pairs_degenerate']} of them with one constant label)"
    )
    for annotator, ranking in stats["influence_ranking"].items():
        console.print(f"most influential first, by PABAK ({annotator}): {', '.join(ranking)}")
    print_stage_outputs(console, run, "agreement-loo")


def models(
    run: RunOption,
    annotators: Annotated[
        str, typer.Option("--annotators", help="role-play models, comma-separated")
    ],
    humans: Annotated[
        Path | None,
        typer.Option("--humans", help="human labels (CSV/Parquet export of the annotation app)"),
    ] = None,
    personas: Annotated[
        int | None, typer.Option("--personas", min=1, help="seeded sample of N personas")
    ] = None,
    items: Annotated[
        int | None, typer.Option("--items", min=1, help="items per persona (seeded sample)")
    ] = None,
    split: Annotated[
        str | None, typer.Option("--split", help="only preference pairs of this split")
    ] = None,
    majority: Annotated[
        int | None,
        typer.Option(
            "--majority", min=1, help="humans that must agree for a majority label (paper: 3)"
        ),
    ] = None,
    templates: TemplatesOption = DEFAULT_TEMPLATES,
    threshold: ThresholdOption = 0.5,
    undefined_kappa: UndefinedOption = "nan",
    resamples: ResamplesOption = RESAMPLES,
    seed: SeedOption = 0,
    client_options: ClientOptions = ClientOptions(),
    force: ForceOption = False,
) -> None:
    """Model-vs-model and human-vs-model agreement (paper §4.2, Fig. 6-9)."""
    try:
        config = ModelsConfig(
            annotators=_specs(annotators),
            humans=humans,
            personas=personas,
            items=items,
            split=split,
            majority=majority,
            templates=templates,
            threshold=threshold,
            undefined_kappa=_undefined(undefined_kappa),
            resamples=resamples,
            seed=seed,
        )
    except ValidationError as exc:
        raise option_config_error(exc) from None
    settings = client_options.settings()
    run_dir = RunDir.open(run)
    with open_clients(config.annotators, settings) as clients:
        result = run_models_stage(run_dir, config, clients=clients, force=force)
    agreement = result.agreement
    console.print(
        f"{result.items.height} items of {result.items['persona_id'].n_unique()} personas "
        f"labelled by {', '.join(config.annotators)}"
    )
    for row in agreement.pairwise.iter_rows(named=True):
        kappa = format_estimate(row["kappa"], row["kappa_low"], row["kappa_high"])
        console.print(
            f"kappa {row['annotator_1']} vs {row['annotator_2']}: {kappa} [95% CI], "
            f"{row['n_items']} items"
        )
    if agreement.fleiss is not None and agreement.alpha is not None:
        console.print(
            f"Fleiss' kappa {_estimate(agreement.fleiss)}, "
            f"Krippendorff's alpha {_estimate(agreement.alpha)}"
        )
    print_stage_outputs(console, run, "agreement-models")


def _estimate(estimate: Estimate) -> str:
    return f"{format_estimate(estimate.value, estimate.low, estimate.high)} [95% CI]"


def register(app: typer.Typer) -> None:
    """Add `persona agreement loo` and `persona agreement models` to `app`."""
    agreement_app = typer.Typer(
        help="Agreement studies: leave-one-out influence, model/human agreement.",
        no_args_is_help=True,
    )
    agreement_app.command("loo")(with_client_options(loo))
    agreement_app.command("models")(with_client_options(models))
    app.add_typer(agreement_app, name="agreement")
