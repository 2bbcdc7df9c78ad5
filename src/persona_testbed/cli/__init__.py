"""The `persona` command line: every Typer command module, and nothing a library imports.

One module per command group (`census`, `prompts`, `preferences`, `annotate`, `pipeline`,
`bench`, `agreement`, `report`), each with a `register(app)`; `options` holds the options they
share; `app` assembles them. Library packages never import from here (ruff TID251 enforces it).
"""

from persona_testbed.cli.app import app, entry, main

__all__ = ["app", "entry", "main"]
