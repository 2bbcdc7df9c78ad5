"""The schema of `persona run CONFIG.yaml`: one file drives every stage in order.

Each stage section is that stage's own config class (unknown keys are errors in each), named as
the registered stage (`persona_testbed.stages`). The model, judge and seed are named once at the
top and overlaid, after validation, on every section that does not set its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from persona_testbed.agreement import LooConfig, ModelsConfig
from persona_testbed.align import AlignConfig
from persona_testbed.bench import BenchConfig
from persona_testbed.census import PersonaConfig
from persona_testbed.llm import DEFAULT_MODEL, ClientSettings
from persona_testbed.llm.settings import (
    DEFAULT_CONCURRENCY,
    DEFAULT_TIMEOUT_S,
    BatchSettings,
    ChoiceMethodSetting,
    EndpointSettings,
    ExecutionSetting,
    RaySettings,
    user_settings,
)
from persona_testbed.preferences import PreferencesConfig
from persona_testbed.prompts import PromptsConfig
from persona_testbed.stages import Shared, Stage, get_stage, stage_names, stages
from persona_testbed.stages.builtin import BUILTIN_STAGES, AgreementSection

StageName = str
# The built-in stages' order (the registry holds every stage, registered ones after these).
STAGE_ORDER: tuple[str, ...] = tuple(stage.name for stage in BUILTIN_STAGES)

_STRICT = ConfigDict(frozen=True, extra="forbid")

# The sections of a run file are the stage config types themselves (unknown keys are errors in
# each); the names below stay for the code that imported them.
PersonasSection = PersonaConfig
PromptsSection = PromptsConfig
PreferencesSection = PreferencesConfig
BenchSection = BenchConfig
LooSection = LooConfig
ModelsSection = ModelsConfig


class LLMSection(BaseModel):
    """How to reach the models (shared by every stage); the names and defaults are the
    commands' client options' (`--timeout-s` is `timeout_s`, ...), declared in llm.settings."""

    model_config = _STRICT

    base_url: str | None = Field(None, description="OpenAI-compatible endpoint for openai: specs")
    endpoints: tuple[EndpointSettings, ...] = Field(
        (),
        description="several OpenAI-compatible servers for openai: specs, instead of base_url "
        "(each: base_url, api_key_env, concurrency, weight)",
    )
    breaker_failures: int = Field(5, ge=1, description="failures in a row that skip a server")
    breaker_cooldown_s: float = Field(30.0, gt=0, description="seconds a failing server is skipped")
    choice_method: ChoiceMethodSetting = Field(
        "auto", description="auto, logprobs or constrained (how choices are scored)"
    )
    concurrency: int = Field(DEFAULT_CONCURRENCY, ge=1)
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0)
    max_cost_usd: float | None = Field(None, ge=0)
    prices: Path | None = Field(None, description="YAML/JSON price table to extend the default")
    cache: Path | None = Field(None, description="response cache file (default: user cache)")
    execution: ExecutionSetting = Field(
        "online",
        description="online; export: write uncached requests to a batch file; batch: a provider "
        "batch API; ray: a Ray Data job (see docs/scale.md)",
    )
    batch_dir: Path | None = Field(
        None,
        description="where exported batch files and the ledger of submitted provider batches go "
        "(default: RUN/batches under execution batch, else batches/ beside the cache)",
    )
    batch: BatchSettings = Field(
        default_factory=BatchSettings,
        description="execution: batch: wait, poll_s, failed (retry or online), max_attempts, "
        "max_requests, max_bytes (see docs/scale.md)",
    )
    ray: RaySettings = Field(
        default_factory=RaySettings,
        description="execution: ray: address (None: RAY_ADDRESS, else a local Ray), num_cpus "
        "of a local Ray, workers, worker_cpus, batch_size, attempts (see docs/scale.md)",
    )

    @model_validator(mode="after")
    def _one_way_to_the_server(self) -> LLMSection:
        if self.base_url and self.endpoints:
            raise ValueError("give base_url or endpoints, not both")
        return self

    def settings(self, *, show_progress: bool = True) -> ClientSettings:
        return user_settings(**dict(self), show_progress=show_progress)


class RunConfig(BaseModel):
    model_config = _STRICT

    model: str = Field(DEFAULT_MODEL, description="the model every stage uses unless it says")
    judge: str | None = Field(None, description="judge model (verification, bench); None: model")
    seed: int = Field(0, ge=0)
    llm: LLMSection = Field(default_factory=LLMSection)
    stages: tuple[StageName, ...] = Field(
        default_factory=stage_names, description="which stages to run"
    )
    personas: PersonaConfig = Field(default_factory=PersonaConfig)
    prompts: PromptsConfig = Field(default_factory=PromptsConfig)
    preferences: PreferencesConfig = Field(default_factory=PreferencesConfig)
    bench: BenchConfig = Field(default_factory=BenchConfig)
    agreement: AgreementSection = Field(default_factory=AgreementSection)
    align: AlignConfig = Field(default_factory=AlignConfig)
    added: dict[str, Any] = Field(
        default_factory=dict, description="sections of stages registered besides the built-in"
    )

    @model_validator(mode="before")
    @classmethod
    def _added_sections(cls, data: Any) -> Any:
        """Sections named after a registered stage that is not built in go to `added`."""
        if not isinstance(data, dict):
            return data
        known = set(cls.model_fields)
        extra = {k: v for k, v in data.items() if k not in known and k in stage_names()}
        if not extra:
            return data
        rest = {k: v for k, v in data.items() if k not in extra}
        return {**rest, "added": {**rest.get("added", {}), **extra}}

    @field_validator("stages")
    @classmethod
    def _known_and_ordered(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        order = stage_names()
        unknown = [name for name in value if name not in order]
        if unknown:
            raise ValueError(f"unknown stage '{unknown[0]}' (known: {', '.join(order)})")
        if list(value) != sorted(value, key=order.index):
            raise ValueError(f"stages must be in pipeline order: {', '.join(order)}")
        return value

    @model_validator(mode="after")
    def _resolved(self) -> RunConfig:
        # The one merge: the run's model, judge and seed overlaid on every section that leaves
        # them out (validated sections, not raw dicts). Frozen: set once, here, at validation.
        shared = Shared(self.model, self.judge, self.seed)
        for stage in stages():
            if stage.name in type(self).model_fields:
                object.__setattr__(self, stage.name, stage.share(getattr(self, stage.name), shared))
            else:
                given = self.added.get(stage.name)
                section = (
                    given
                    if isinstance(given, stage.config_type)
                    else stage.config_type.model_validate(given or {})
                )
                self.added[stage.name] = stage.share(section, shared)
        return self

    def section(self, name: str) -> Any:
        """The resolved config of stage `name`."""
        if name in type(self).model_fields:
            return getattr(self, name)
        return self.added[name]

    def sections(self) -> dict[str, Any]:
        return {stage.name: self.section(stage.name) for stage in stages()}

    def selected(self) -> list[tuple[Stage[Any], Any]]:
        """The stages this run runs, in order, each with its resolved config."""
        return [(get_stage(name), self.section(name)) for name in self.stages]

    def models(self) -> list[str]:
        """Every model spec the run's stages use, in first-use order."""
        specs = [spec for stage, config in self.selected() for spec in stage.models(config)]
        return list(dict.fromkeys(specs))
