"""Check every input of every stage of a run config before any model call.

A run that would fail in its third stage on a missing file must fail before its first stage has
spent anything; a dry run must not say all is well when the real run cannot start. Each stage
object lists its checks (each reads or opens an input as the stage will, cheaply: a zip's
listing, not its contents); every model spec the run uses is checked (a known scheme, a `gguf:`
file that exists); and the chain of artifacts must hold (each file a stage reads is written by an
earlier stage of the run, or is in the run directory already).
"""

from __future__ import annotations

from pathlib import Path

from persona_testbed.errors import InputError, PersonaError
from persona_testbed.pipeline.config import RunConfig


def chain_problems(config: RunConfig, run_path: Path) -> list[str]:
    """One line per artifact a stage reads that neither an earlier stage writes nor exists."""
    problems: list[str] = []
    made: set[str] = set()
    for stage, section in config.selected():
        for name in stage.reads(section):
            if name not in made and not (run_path / name).exists():
                problems.append(
                    f"[{stage.name}] {run_path / name}: not found, and no earlier stage of this "
                    "run writes it (add that stage to `stages`, or run it first)"
                )
        made.update(stage.writes(section))
    return problems


def input_problems(config: RunConfig, run_path: Path | None = None) -> list[str]:
    """One line per problem with the inputs of the stages `config` runs (empty: all good)."""
    from persona_testbed.llm import check_spec

    problems: list[str] = []
    for spec in config.models():
        try:
            check_spec(spec)
        except PersonaError as exc:
            problems.append(str(exc))
    for stage, section in config.selected():
        for check in stage.checks(section):
            try:
                check()
            except PersonaError as exc:
                problems.append(f"[{stage.name}] {exc}")
    if run_path is not None:
        problems += chain_problems(config, Path(run_path))
    return list(dict.fromkeys(problems))


def check_inputs(config: RunConfig, run_path: Path | None = None) -> None:
    """Raise one InputError naming every problem (`; `-joined, one line)."""
    problems = input_problems(config, run_path)
    if problems:
        raise InputError("; ".join(problems) + " (no model was called)")
