"""`python -m persona_testbed.annotate ...`: the annotate commands without the whole CLI."""

import sys

from persona_testbed.cli.annotate import annotate_app
from persona_testbed.errors import PersonaError

try:
    annotate_app(prog_name="persona annotate")
except PersonaError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
