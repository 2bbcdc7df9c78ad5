"""`python -m persona_testbed` is the `persona` command."""

from persona_testbed.cli.app import entry

entry()
