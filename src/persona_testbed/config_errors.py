"""One formatter for every config error: a pydantic ValidationError becomes one line.

A config comes from a YAML file (`persona run`) or from command-line options (each stage's
command); either way the first error names where it is (`FILE:LINE: section.key:` or `--option:`)
and what is wrong, and says how many more there are. Validators raise `ValueError` (pydantic
turns it into a validation error with its field's location); an `InputError` raised inside a
validator would escape pydantic without that location.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from persona_testbed.errors import InputError

UNKNOWN_KEY = "unknown key (check its spelling; no default is used for it)"


def _message(error: dict[str, object]) -> str:
    if error["type"] == "extra_forbidden":
        return UNKNOWN_KEY
    return str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _more(exc: ValidationError) -> str:
    return f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""


def yaml_config_error(
    exc: ValidationError,
    path: Path,
    line_of: Callable[[tuple[int | str, ...]], int | None],
) -> InputError:
    """`FILE:LINE: section.key: message` for the first error of a config read from YAML."""
    error = exc.errors()[0]
    loc = tuple(error["loc"])
    key = ".".join(str(part) for part in loc) or "(top level)"
    line = line_of(loc)
    where = f":{line}" if line is not None else ""
    return InputError(f"{path}{where}: {key}: {_message(dict(error))}{_more(exc)}")


def option_config_error(exc: ValidationError, *, command: str | None = None) -> InputError:
    """`--option: message` for the first error of a config built from command-line options.

    A message that already names its option (`--slice '...': ...`) is kept as it is; an error of
    the whole config (no field) is the message alone."""
    error = exc.errors()[0]
    fields = [str(part) for part in error["loc"] if isinstance(part, str)]
    message = _message(dict(error))
    prefix = f"{command}: " if command else ""
    if not fields or message.startswith("--"):
        return InputError(f"{prefix}{message}{_more(exc)}")
    option = "--" + fields[0].replace("_", "-")
    return InputError(f"{prefix}{option}: {message}{_more(exc)}")
