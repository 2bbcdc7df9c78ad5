"""Typer commands `persona annotate create-study | serve | export`. Thin: parse options, call
the library, print a short summary. User errors propagate as PersonaError/InputError."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console

from persona_testbed.annotate.db import Database
from persona_testbed.annotate.results import labels, majority_labels, resolve_study, write_table
from persona_testbed.annotate.study import StudyConfig, create_study, write_invitations
from persona_testbed.annotate.web import create_app
from persona_testbed.cli.options import print_written
from persona_testbed.errors import InputError, PersonaError
from persona_testbed.run.atomic import prepare_output_file

console = Console(soft_wrap=True)
annotate_app = typer.Typer(
    name="annotate",
    help="Human annotation studies: persona role-play in the browser, Prolific-ready.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DbOption = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="PERSONA_ANNOTATE_DB",
        help="study database: an SQLite file path / sqlite:/// URL, or postgresql://...",
    ),
]


def check_port_free(host: str, port: int) -> None:
    """Fail with one line, before the banner, when `host:port` cannot be bound."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise PersonaError(f"--host {host}: cannot resolve ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # As uvicorn binds: SO_REUSEADDR, so a port in TIME_WAIT is not reported busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise PersonaError(
                f"cannot serve at {host}:{port}: {exc.strerror} (is another server using the "
                "port? pick another with --port)"
            ) from None


@annotate_app.command("create-study")
def create_study_command(
    db: DbOption,
    run: Annotated[
        Path | None,
        typer.Option("--run", help="run directory with preferences.parquet (+ personas.parquet)"),
    ] = None,
    items: Annotated[
        Path | None,
        typer.Option("--items", help="items file instead of a run (CSV/JSONL/Parquet)"),
    ] = None,
    split: Annotated[
        str | None, typer.Option("--split", help="only pairs of this preferences split")
    ] = None,
    personas: Annotated[int, typer.Option("--personas", min=1, help="personas to study")] = 20,
    questions: Annotated[
        int, typer.Option("--questions", min=1, help="questions per participant")
    ] = 10,
    per_persona: Annotated[
        int, typer.Option("--per-persona", min=1, help="participants per persona")
    ] = 4,
    seed: Annotated[int, typer.Option("--seed", min=0, help="the one seed of every draw")] = 0,
    min_justification: Annotated[
        int, typer.Option("--min-justification", min=0, help="minimum justification length")
    ] = 20,
    majority: Annotated[
        int, typer.Option("--majority", min=1, help="agreeing participants for a majority label")
    ] = 3,
    study_id: Annotated[
        str | None, typer.Option("--study-id", help="study name (default: study1, study2...)")
    ] = None,
    public_url: Annotated[
        str, typer.Option("--public-url", help="address participants reach the server at")
    ] = "http://127.0.0.1:8000",
    completion_code: Annotated[
        str | None, typer.Option("--completion-code", help="code shown at the end")
    ] = None,
    prolific_completion_code: Annotated[
        str | None,
        typer.Option(
            "--prolific-completion-code",
            help="send Prolific participants back to Prolific with this code",
        ),
    ] = None,
    expires_in_days: Annotated[
        float | None, typer.Option("--expires-in-days", help="links stop admitting newcomers")
    ] = None,
    links_out: Annotated[
        Path | None, typer.Option("--links-out", help="also write the invitation links as CSV")
    ] = None,
) -> None:
    """Build a study from a run's personas and preference pairs (or an items file)."""
    try:
        config = StudyConfig(
            run=run,
            items=items,
            split=split,
            personas=personas,
            questions=questions,
            per_persona=per_persona,
            seed=seed,
            min_justification=min_justification,
            majority=majority,
            study_id=study_id,
            public_url=public_url,
            completion_code=completion_code,
            prolific_completion_code=prolific_completion_code,
            expires_in_days=expires_in_days,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "options"
        raise InputError(f"create-study: {where}: {error['msg']}") from None
    database = Database.open(db)
    try:
        created = create_study(database, config)
    finally:
        database.close()
    if links_out is not None:
        write_invitations(created, links_out)
    console.print(
        f"study {created.study_id}: {created.personas} personas x {created.questions} "
        f"questions, {len(created.invitations)} participant slots"
    )
    console.print("invitation links (one per participant; keep them private):")
    for invitation in created.invitations:
        console.print(
            f"  {invitation.participant_id}  persona {invitation.persona_id}  {invitation.url}"
        )
    console.print(f"Prolific study URL: {created.prolific_url}")
    console.print(f"admin dashboard (keep secret): {created.admin_url}")
    console.print(f"completion code: {created.completion_code}")
    console.print(f"wrote study {created.study_id} to {database.display}", markup=False)
    if links_out is not None:
        print_written(console, [links_out])


@annotate_app.command("serve")
def serve_command(
    db: DbOption,
    host: Annotated[str, typer.Option("--host", help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    max_body_kb: Annotated[
        int, typer.Option("--max-body-kb", min=1, help="largest request body accepted")
    ] = 64,
    root_path: Annotated[
        str, typer.Option("--root-path", help="URL prefix when served behind a proxy")
    ] = "",
    forwarded_allow_ips: Annotated[
        str,
        typer.Option("--forwarded-allow-ips", help="proxies trusted for X-Forwarded-* headers"),
    ] = "127.0.0.1",
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            help="log every request (off by default: URLs carry invitation tokens)",
        ),
    ] = False,
) -> None:
    """Serve the studies in a database (participants and admin dashboard)."""
    check_port_free(host, port)
    database = Database.open(db, create=False)
    app = create_app(database, max_body_bytes=max_body_kb * 1024)
    console.print(f"serving {database.display} at http://{host}:{port}{root_path}")
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            root_path=root_path,
            proxy_headers=True,
            forwarded_allow_ips=forwarded_allow_ips,
            log_level="info",
            access_log=access_log,
        )
    finally:
        database.close()


@annotate_app.command("export")
def export_command(
    db: DbOption,
    out: Annotated[Path, typer.Option("--out", help="labels file to write (.csv or .parquet)")],
    study: Annotated[
        str | None, typer.Option("--study", help="study name (needed when the db has several)")
    ] = None,
    majority_out: Annotated[
        Path | None,
        typer.Option("--majority-out", help="also write majority labels (.csv or .parquet)"),
    ] = None,
    majority: Annotated[
        int | None,
        typer.Option("--majority", min=1, help="agreeing participants (default: the study's)"),
    ] = None,
) -> None:
    """Export every answer in the human-labels schema that `persona agreement` reads."""
    for target, option in ((out, "--out"), (majority_out, "--majority-out")):
        if target is not None:
            prepare_output_file(target, option)
    database = Database.open(db, create=False)
    try:
        chosen = resolve_study(database, study)
        frame = labels(database, chosen)
    finally:
        database.close()
    write_table(frame, out)
    console.print(
        f"study {chosen.study_id}: {frame.height} answers from "
        f"{frame.get_column('annotator').n_unique()} participants"
    )
    written = [out]
    if majority_out is not None:
        threshold = chosen.majority if majority is None else majority
        majorities = majority_labels(frame, threshold)
        write_table(majorities, majority_out)
        written.append(majority_out)
        console.print(f"{majorities.height} items with a majority ({threshold} or more agreeing)")
    print_written(console, written)


def register(app: typer.Typer) -> None:
    """Add the `annotate` command group to the `persona` CLI."""
    app.add_typer(annotate_app, name="annotate")
