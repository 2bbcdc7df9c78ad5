"""Typer command `persona prompts`. Thin: parse options, call the library, print a summary."""

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
    print_stage_outputs,
    with_client_options,
)
from persona_testbed.config_errors import option_config_error
from persona_testbed.errors import PersonaError
from persona_testbed.llm import LLMClient
from persona_testbed.prompts.stage import (
    DEFAULT_CONTROVERSY_THRESHOLD,
    PromptsConfig,
    SourceKind,
    run_prompts_stage,
)
from persona_testbed.run import RunDir

console = Console(soft_wrap=True)


def _source(
    prism: Path | None, questions: Path | None, demo: bool
) -> tuple[SourceKind, Path | None]:
    chosen = [name for name, given in (("prism", prism), ("questions", questions)) if given]
    if demo:
        chosen.append("demo")
    if len(chosen) != 1:
        raise PersonaError(
            "choose exactly one prompt source: --prism FILE, --questions FILE or --demo"
        )
    if prism is not None:
        return "prism", prism
    if questions is not None:
        return "questions", questions
    return "demo", None


def prompts(
    out: Annotated[Path, typer.Option("--out", help="run directory to write")],
    prism: Annotated[
        Path | None,
        typer.Option(
            "--prism",
            help="PRISM conversations.jsonl (or .parquet, or a `datasets` save_to_disk folder)",
        ),
    ] = None,
    questions: Annotated[
        Path | None, typer.Option("--questions", help="a JSONL or CSV file of questions")
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="the bundled set of 180 contested questions")
    ] = False,
    text_column: Annotated[
        str, typer.Option("--text-column", help="question text column of --questions")
    ] = "text",
    id_column: Annotated[
        str | None, typer.Option("--id-column", help="id column of --questions (default: row)")
    ] = None,
    topic_column: Annotated[
        str | None, typer.Option("--topic-column", help="hand-written topic column, if any")
    ] = None,
    min_words: Annotated[
        int, typer.Option("--min-words", min=0, help="drop prompts under this many words")
    ] = 5,
    max_prompts: Annotated[
        int | None,
        typer.Option("--max-prompts", min=1, help="curate a seeded sample of N source prompts"),
    ] = None,
    controversy_threshold: Annotated[
        float,
        typer.Option(
            "--controversy-threshold",
            min=0.0,
            max=1.0,
            help="keep prompts with P(draws diverse opinions) >= P; 0 disables the LLM filter",
        ),
    ] = DEFAULT_CONTROVERSY_THRESHOLD,
    clusters: Annotated[
        int | None,
        typer.Option("--clusters", min=1, help="number of topic clusters (default: silhouette)"),
    ] = None,
    seed: SeedOption = 0,
    model: ModelOption = DEFAULT_MODEL_SPEC,
    client_options: ClientOptions = ClientOptions(),
    force: ForceOption = False,
) -> None:
    """Curate prompts (paper §3.2): filters, controversy classifier, topics, train/held-out."""
    kind, path = _source(prism, questions, demo)
    try:
        config = PromptsConfig(
            source=kind,
            path=path,
            text_column=text_column,
            id_column=id_column,
            topic_column=topic_column,
            min_words=min_words,
            max_prompts=max_prompts,
            controversy_threshold=controversy_threshold,
            model=model,
            clusters=clusters,
            seed=seed,
        )
    except ValidationError as exc:
        raise option_config_error(exc) from None
    client = None
    if config.uses_llm:  # a bad spec fails before any output
        client = LLMClient.from_spec(model, client_options.settings())
    try:
        result = run_prompts_stage(RunDir.create(out), config, client=client, force=force)
    finally:
        if client is not None:
            client.close()
    stats = result.stats
    reasons = ", ".join(f"{k} {v}" for k, v in stats["drop_reasons"].items()) or "none"
    console.print(
        f"kept {stats['kept']} of {stats['prompts']} prompts "
        f"({stats['train']} train / {stats['heldout']} held-out); dropped: {reasons}"
    )
    console.print(f"topics: {stats['topics']} ({stats['clusters']} clusters)")
    if "cluster_tag_ari" in stats:
        console.print(
            f"clusters vs hand-written tags: ARI {stats['cluster_tag_ari']:.3f}, "
            f"NMI {stats['cluster_tag_nmi']:.3f}"
        )
    print_stage_outputs(console, out, "prompts")


def register(app: typer.Typer) -> None:
    """Add `persona prompts` to `app`."""
    app.command("prompts")(with_client_options(prompts))
