"""User-facing errors: the CLI prints these as one line, never as a traceback."""


class PersonaError(Exception):
    """A problem the user can fix (bad input, bad config, unreachable model).

    The message must name the file, row, field or endpoint concerned.
    """


class InputError(PersonaError):
    """A bad input file, row, column or value."""


class ConfigMismatchError(PersonaError):
    """A stage's existing outputs were made with a different config."""
