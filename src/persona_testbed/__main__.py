"""`python -m persona_testbed` is the `persona` command."""

from persona_testbed.cli import entry

entry()
