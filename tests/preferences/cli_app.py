"""`python -m tests.preferences.cli_app preferences ...`: the preferences command in a Typer
app of its own, for tests that run it as a separate process (and kill it)."""

from __future__ import annotations

import typer

from persona_testbed.cli.preferences import register

app = typer.Typer()


@app.callback()
def main() -> None:
    """A group, so the command is addressed by name as under `persona`."""


register(app)

if __name__ == "__main__":
    app()
