"""`persona report --run DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from persona_testbed.report.html import write_report


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report_command(
        run: Annotated[Path, typer.Option("--run", help="run directory")],
    ) -> None:
        """Write a self-contained HTML report (images inline) of a run directory."""
        path = write_report(run)
        typer.echo(f"wrote {path}")
