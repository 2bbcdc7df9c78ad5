"""Each stage command's options are its config's fields (issue 14): one name, one default.

For every stage command, every option that is not about where to read or write or how to call
the models maps to a field of the stage's config model, and the option's default is that field's
default. A new option without a field (or with another default) fails here."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from enum import Enum
from typing import Any

import pytest
from pydantic import BaseModel

from persona_testbed.agreement import LooConfig, ModelsConfig
from persona_testbed.align import AlignConfig
from persona_testbed.bench.config import BenchConfig, parse_models
from persona_testbed.census import PersonaConfig
from persona_testbed.cli.agreement import loo, models
from persona_testbed.cli.align import align
from persona_testbed.cli.bench import bench
from persona_testbed.cli.census import personas
from persona_testbed.cli.preferences import preferences
from persona_testbed.cli.prompts import prompts
from persona_testbed.preferences.stage import PreferencesConfig
from persona_testbed.prompts.stage import PromptsConfig

# Options about the run directory, the command's own mode, or the model client: not config.
NOT_CONFIG = frozenset({"out", "run", "force", "dry_run", "client_options"})
# Options spelled differently from their field because the command line takes another form
# (a comma list, a flag, a file per source); value: the field, or None for command-only.
RENAMED: dict[str, dict[str, str | None]] = {
    "personas": {"no_llm": "use_llm"},
    "prompts": {"prism": "path", "questions": "path", "demo": "source"},
    "preferences": {
        "plan_personas": None,
        "plan_prompts": None,
        "paper_scale": None,
        "push_to_hub": None,
    },
    "bench": {"model": "models", "slice_": "slices"},
    "loo": {"attributes": "n_attributes", "attribute": "attributes"},
    "models": {},
    "align": {},
}
# Where the option's default is the field's in another form (a comma list, a negated flag).
CONVERTED: dict[tuple[str, str], Callable[[Any], Any]] = {
    ("personas", "no_llm"): lambda value: not value,
    ("bench", "methods"): lambda value: tuple(value.split(",")),
    ("bench", "loo"): lambda value: (),
    ("bench", "slice_"): lambda value: (),
    ("bench", "model"): parse_models,
    ("loo", "annotators"): lambda value: [],
    ("align", "methods"): lambda value: tuple(value.split(",")),
}

COMMANDS: list[tuple[str, Callable[..., None], type[BaseModel]]] = [
    ("personas", personas, PersonaConfig),
    ("prompts", prompts, PromptsConfig),
    ("preferences", preferences, PreferencesConfig),
    ("bench", bench, BenchConfig),
    ("loo", loo, LooConfig),
    ("models", models, ModelsConfig),
    ("align", align, AlignConfig),
]


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


@pytest.mark.parametrize(("name", "command", "config_type"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_option_is_a_config_field_with_its_default(
    name: str, command: Callable[..., None], config_type: type[BaseModel]
) -> None:
    fields = config_type.model_fields
    problems: list[str] = []
    for parameter in inspect.signature(command).parameters.values():
        option = parameter.name
        if option in NOT_CONFIG:
            continue
        field = RENAMED[name].get(option, option)
        if field is None:
            continue
        if field not in fields:
            problems.append(f"--{option}: no config field '{field}'")
            continue
        if option in RENAMED[name] and (name, option) not in CONVERTED:
            continue  # another form of the field (a source flag, a file per kind)
        default = parameter.default
        if default is inspect.Parameter.empty:
            continue  # a required option
        convert = CONVERTED.get((name, option))
        given = convert(default) if convert else default
        field_default = fields[field].get_default(call_default_factory=True)
        if given is None and field_default in ((), []):
            continue  # a repeatable option not given: the empty list
        if _plain(given) != _plain(field_default):
            problems.append(
                f"--{option}: default {given!r}, config field {field}: {field_default!r}"
            )
    assert problems == []
