"""The stage registry: the pipeline's stages in run order, built-in ones first.

`persona run`, its dry-run plan, the input checks, the fingerprints and the report all iterate
this one list. A new stage registers itself with one line, `register(STAGE)`; it runs after the
stages registered before it.
"""

from __future__ import annotations

from typing import Any

from persona_testbed.errors import InputError
from persona_testbed.stages.shape import Stage

_STAGES: dict[str, Stage[Any]] = {}
_BUILTIN_LOADED = False


def _load_builtin() -> None:
    global _BUILTIN_LOADED
    if not _BUILTIN_LOADED:
        _BUILTIN_LOADED = True
        from persona_testbed.stages.builtin import BUILTIN_STAGES

        builtin = {stage.name: stage for stage in BUILTIN_STAGES}
        added = dict(_STAGES)
        _STAGES.clear()
        _STAGES.update(builtin)
        _STAGES.update(added)


def register(stage: Stage[Any]) -> Stage[Any]:
    """Add `stage` after every stage registered so far (again under its name: replace it)."""
    _load_builtin()
    _STAGES.pop(stage.name, None)
    _STAGES[stage.name] = stage
    return stage


def unregister(name: str) -> None:
    """Remove a registered stage (tests that add a toy stage take it out again)."""
    _load_builtin()
    _STAGES.pop(name, None)


def stages() -> tuple[Stage[Any], ...]:
    """Every registered stage, in run order."""
    _load_builtin()
    return tuple(_STAGES.values())


def stage_names() -> tuple[str, ...]:
    return tuple(stage.name for stage in stages())


def get_stage(name: str) -> Stage[Any]:
    """The stage called `name`; an unknown name lists the known ones."""
    _load_builtin()
    if name not in _STAGES:
        raise InputError(f"unknown stage '{name}' (known: {', '.join(_STAGES)})")
    return _STAGES[name]
