"""The `persona` command line: every Typer command module, and nothing a library imports.

One module per command group (`census`, `prompts`, `preferences`, `annotate`, `pipeline`,
`bench`, `agreement`, `report`), each with a `register(app)`; `options` holds the options they
share; `app` assembles them into `persona` (`app`, `main`, `entry`). Library packages never
import from here (ruff's TID251 enforces it).
"""


def entry() -> None:
    """The `persona` console script (pyproject: `persona_testbed.cli:entry`)."""
    # Imported when called: `persona_testbed.cli.annotate` (python -m persona_testbed.annotate)
    # and `persona_testbed.cli.options` load without every other command group.
    from persona_testbed.cli.app import entry as run

    run()
