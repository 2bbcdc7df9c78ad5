"""Check every input of every stage of a run config before any model call.

A run that would fail in its third stage on a missing file must fail before its first stage has
spent anything; a dry run must not say all is well when the real run cannot start. Each check
reads or opens the input as its stage will (cheaply: a zip's listing, not its contents).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

from persona_testbed.errors import InputError, PersonaError
from persona_testbed.pipeline.config import RunConfig


def _file(path: Path, what: str) -> None:
    if not path.is_file():
        raise InputError(f"{path}: {what} not found")


def _zip_or_csv(path: Path) -> None:
    _file(path, "PUMS file")
    if zipfile.is_zipfile(path) or path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                archive.namelist()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise InputError(f"{path}: corrupt zip archive ({exc})") from None


def _personas_checks(config: RunConfig) -> list[Callable[[], object]]:
    from persona_testbed.census.pipeline import NO_RAKE, load_dictionary
    from persona_testbed.census.raking import load_target

    section = config.personas
    checks: list[Callable[[], object]] = []
    if section.rake != NO_RAKE:
        checks.append(lambda: load_target(section.rake))
    checks.append(lambda: load_dictionary(section.dictionary))
    try:  # a folder or pattern that names no file is itself the problem
        files = section.with_files_expanded()
    except PersonaError as exc:
        checks.append(partial(_raise, exc))
    else:
        checks += [partial(_zip_or_csv, Path(p)) for p in (*files.pums, *files.households)]
    return checks


def _raise(error: PersonaError) -> None:
    raise error


def _prompts_checks(config: RunConfig) -> list[Callable[[], object]]:
    from persona_testbed.prompts.stage import load_source

    return [lambda: load_source(config.prompts)]


def _preferences_checks(config: RunConfig) -> list[Callable[[], object]]:
    from persona_testbed.preferences import load_templates

    return [lambda: load_templates(config.preferences.templates)]


def _bench_checks(config: RunConfig) -> list[Callable[[], object]]:
    from persona_testbed.bench.templates import TemplateSet

    section = config.bench
    checks: list[Callable[[], object]] = [lambda: TemplateSet.load(section.templates)]
    for path, what in ((section.personas, "bench personas file"), (section.prompts, "prompts")):
        if path is not None:
            checks.append(partial(_file, Path(path), what))
    return checks


def _agreement_checks(config: RunConfig) -> list[Callable[[], object]]:
    from persona_testbed.agreement.labels import read_labels

    checks: list[Callable[[], object]] = []
    loo, models = config.agreement.loo, config.agreement.models
    if loo is not None and loo.questions_file is not None:
        path = loo.questions_file
        checks.append(lambda: _file(Path(path), "questions file"))
    if models is not None and models.humans is not None:
        humans = models.humans
        checks.append(lambda: read_labels(Path(humans)))
    return checks


CHECKS = {
    "personas": _personas_checks,
    "prompts": _prompts_checks,
    "preferences": _preferences_checks,
    "bench": _bench_checks,
    "agreement": _agreement_checks,
}


def input_problems(config: RunConfig) -> list[str]:
    """One line per problem with the inputs of the stages `config` runs (empty: all good)."""
    from persona_testbed.llm import parse_spec

    problems: list[str] = []
    for spec in config.models():
        try:
            parse_spec(spec)
        except PersonaError as exc:
            problems.append(str(exc))
    for stage in config.stages:
        for check in CHECKS[stage](config):
            try:
                check()
            except PersonaError as exc:
                problems.append(f"[{stage}] {exc}")
    return list(dict.fromkeys(problems))


def check_inputs(config: RunConfig) -> None:
    """Raise one InputError naming every problem (`; `-joined, one line)."""
    problems = input_problems(config)
    if problems:
        raise InputError("; ".join(problems) + " (no model was called)")
