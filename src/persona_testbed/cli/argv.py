"""Several files after one option: `--pums csv_p*.zip` is what a user types, and the shell turns
it into `--pums csv_pvt.zip csv_pnh.zip ...`, which click alone refuses ("unexpected extra
argument").

Before Typer parses the command line, every repeatable option that takes paths (declared
`list[Path]`, e.g. `--pums`, `--households`) gathers the words that follow it up to the next
word starting with `-`: `--pums a.zip b.zip --n 5` becomes `--pums a.zip --pums b.zip --n 5`.
An option that takes one file, given several (a glob in a command with no positional
arguments), fails with one line saying so instead of click's puzzle about extra arguments.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

from persona_testbed.errors import PersonaError

END_OF_OPTIONS = "--"

# The command tree is read by duck typing (`commands`, `params`, `opts`, `multiple`, ...): Typer
# builds it from click's classes or, since 0.2x, from its own copy of them, and both spell these
# attributes alike. A parameter's type is `type_descriptor.annotation` in the copy, `type` (a
# click.Path for paths) in click itself.


def _command_at(root: Any, argv: Sequence[str]) -> tuple[Any, int]:
    """The (sub)command the words name, and the index of its first own word."""
    command, index = root, 0
    while index < len(argv):
        child = (getattr(command, "commands", None) or {}).get(argv[index])
        if child is None:
            break
        command, index = child, index + 1
    return command, index


def _options(command: Any) -> dict[str, Any]:
    return {
        name: param
        for param in getattr(command, "params", ())
        if param.param_type_name == "option"
        for name in (*param.opts, *param.secondary_opts)
    }


def _takes_value(option: Any) -> bool:
    return not option.is_flag and not option.count


def _is_paths(option: Any) -> bool:
    """Does the option take file paths (`Path`, `Path | None`, `list[Path]`)?"""
    annotation = getattr(getattr(option, "type_descriptor", None), "annotation", None)
    if annotation is None:
        return type(getattr(option, "type", None)).__name__ == "Path"
    kinds = [annotation]
    while kinds:
        kind = kinds.pop()
        if isinstance(kind, type) and issubclass(kind, PurePath):
            return True
        kinds += typing.get_args(kind)
    return False


def _is_value(word: str) -> bool:
    """A word that continues a list of files (not an option, not the end-of-options mark)."""
    return not word.startswith("-") or word == "-"


def spread_file_lists(root: Any, argv: Sequence[str]) -> list[str]:
    """`argv` with the words after each repeatable path option given one option each; `root`
    is the click command tree of the app (`typer.main.get_command(app)`)."""
    command, start = _command_at(root, argv)
    options = _options(command)
    has_arguments = any(p.param_type_name == "argument" for p in getattr(command, "params", ()))
    words = list(argv[:start])
    index = start
    while index < len(argv):
        word = argv[index]
        index += 1
        if word == END_OF_OPTIONS:  # everything after it is positional: leave it alone
            words += argv[index - 1 :]
            break
        name, given_inline, inline = word.partition("=")
        option = options.get(name)
        if option is None or not _takes_value(option):
            words.append(word)
            continue
        values = [inline] if given_inline else list(argv[index : index + 1])
        index += 0 if given_inline else len(values)
        if _is_paths(option) and (option.multiple or not has_arguments):
            # Greedy: only commands whose file options come with no positional arguments
            # see trailing words here, so none is taken from an argument.
            while index < len(argv) and _is_value(argv[index]):
                values.append(argv[index])
                index += 1
        if len(values) > 1 and not option.multiple:
            shown = ", ".join(values[:3]) + (", ..." if len(values) > 3 else "")
            raise PersonaError(
                f"{name} takes one path, but {len(values)} were given ({shown}); did a shell "
                "pattern match several? pass one"
            )
        for value in values:
            words += [name, value]
        if not values:  # the option at the very end: let click say its value is missing
            words.append(name)
    return words
