"""The shape of a pipeline stage: one object that says what it needs, makes and costs.

A `Stage` names its config type (the run file's section of the same name), the run-directory
artifacts it reads and writes (file names relative to the run directory), how to run it
(`run(run_dir, config, models, force)` with a `ModelPool`), its dry-run plan, the model specs it
will call (checked before the first stage runs), the manifest records it writes (for skip and
resume) and anything besides its config that must change its fingerprint.

Model, judge and seed are named once at the top of a run file; `share` overlays them on a stage
config that does not set them itself (the explicit overlay of inspect_ai's
`GenerateConfig.merge`): a field the section gives wins, one it leaves out takes the run's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from persona_testbed.run import RunDir
from persona_testbed.stages.plan import PlanContext, PlanRow
from persona_testbed.stages.pool import ModelPool

ConfigT = TypeVar("ConfigT", bound=BaseModel)


@dataclass(frozen=True)
class Shared:
    """The run's top-level settings every stage may take: model, judge (None: the model), seed."""

    model: str
    judge: str | None
    seed: int

    @property
    def judge_model(self) -> str:
        return self.judge or self.model


def share_fields(config: ConfigT, shared: Shared) -> ConfigT:
    """`config` with `model`, `judge` and `seed` taken from the run where it leaves them out."""
    values: dict[str, Any] = {"model": shared.model, "judge": shared.judge_model}
    values["seed"] = shared.seed
    fields = type(config).model_fields
    update = {
        name: value
        for name, value in values.items()
        if name in fields and name not in config.model_fields_set
    }
    return config.model_copy(update=update) if update else config


def _nothing(config: Any) -> tuple[str, ...]:
    return ()


def _no_plan(config: Any, context: PlanContext) -> list[PlanRow]:
    return []


def _no_checks(config: Any) -> list[Callable[[], object]]:
    return []


def _no_extra(config: Any) -> str:
    return ""


@dataclass(frozen=True)
class Stage(Generic[ConfigT]):
    """One pipeline stage (see the module docstring; docs/stages.md tells how to add one)."""

    name: str
    config_type: type[ConfigT]
    run: Callable[[RunDir, ConfigT, ModelPool, bool], object]
    reads: Callable[[ConfigT], tuple[str, ...]] = _nothing
    writes: Callable[[ConfigT], tuple[str, ...]] = _nothing
    plan: Callable[[ConfigT, PlanContext], list[PlanRow]] = _no_plan
    models: Callable[[ConfigT], tuple[str, ...]] = _nothing
    records: Callable[[ConfigT], tuple[str, ...]] | None = None
    checks: Callable[[ConfigT], list[Callable[[], object]]] = _no_checks
    share: Callable[[ConfigT, Shared], ConfigT] = share_fields
    fingerprint_extra: Callable[[ConfigT], str] = _no_extra
    # The report's section of this stage: its title ("" for none), its anchor (default: the
    # name) and the manifest record names it gathers (default: the stage's name as a prefix).
    title: str = field(default="", compare=False)
    anchor: str = field(default="", compare=False)
    record_prefixes: tuple[str, ...] = field(default=(), compare=False)

    def record_names(self, config: ConfigT) -> tuple[str, ...]:
        """The manifest records the stage writes (default: one, named as the stage)."""
        return (self.name,) if self.records is None else self.records(config)

    @property
    def report_section(self) -> tuple[str, str, tuple[str, ...]] | None:
        """(anchor, title, record-name prefixes) of the report's section; None: no section."""
        if not self.title:
            return None
        return (self.anchor or self.name, self.title, self.record_prefixes or (self.name,))


def fixed(*names: str) -> Callable[[Any], tuple[str, ...]]:
    """`reads`/`writes` that do not depend on the config."""
    return lambda config: names
