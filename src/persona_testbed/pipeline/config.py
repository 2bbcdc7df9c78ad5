"""The schema of `persona run CONFIG.yaml`: one file drives every stage in order.

Each stage section is that stage's own config class with unknown keys forbidden, so a typo is
an error instead of a silent default. The model and seed are named once at the top and given
to every stage that does not set its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from persona_testbed.agreement import LooConfig, ModelsConfig
from persona_testbed.bench import BenchConfig
from persona_testbed.census import PersonaConfig
from persona_testbed.llm import DEFAULT_MODEL, ClientSettings, PriceTable
from persona_testbed.preferences import PreferencesConfig
from persona_testbed.prompts import PromptsConfig

StageName = Literal["personas", "prompts", "preferences", "bench", "agreement"]
STAGE_ORDER: tuple[StageName, ...] = ("personas", "prompts", "preferences", "bench", "agreement")

_STRICT = ConfigDict(frozen=True, extra="forbid")


class PersonasSection(PersonaConfig):
    model_config = _STRICT


class PromptsSection(PromptsConfig):
    model_config = _STRICT


class PreferencesSection(PreferencesConfig):
    model_config = _STRICT


class BenchSection(BenchConfig):
    model_config = _STRICT


class LooSection(LooConfig):
    model_config = _STRICT


class ModelsSection(ModelsConfig):
    model_config = _STRICT


class AgreementSection(BaseModel):
    """The agreement stage: the leave-one-out study (paper §4.1) and model/human agreement
    (§4.2). Set either to null to leave it out; `models` needs its annotators named."""

    model_config = _STRICT

    loo: LooSection | None = Field(default_factory=LooSection)
    models: ModelsSection | None = None

    def stage_names(self) -> tuple[str, ...]:
        """The manifest records this stage writes."""
        names = ("agreement-loo",) if self.loo is not None else ()
        return names + (("agreement-models",) if self.models is not None else ())


class LLMSection(BaseModel):
    """How to reach the models (shared by every stage)."""

    model_config = _STRICT

    base_url: str | None = Field(None, description="OpenAI-compatible endpoint for openai: specs")
    concurrency: int = Field(8, ge=1)
    timeout_s: float = Field(120.0, gt=0)
    max_cost_usd: float | None = Field(None, ge=0)
    prices: Path | None = Field(None, description="YAML/JSON price table to extend the default")
    cache: Path | None = Field(None, description="response cache file (default: user cache)")

    def settings(self, *, show_progress: bool = True) -> ClientSettings:
        settings = ClientSettings(
            concurrency=self.concurrency,
            timeout_s=self.timeout_s,
            max_cost_usd=self.max_cost_usd,
            prices=PriceTable.load(self.prices),
            show_progress=show_progress,
        )
        if self.base_url:
            settings.base_url = self.base_url
        if self.cache is not None:
            settings.cache_path = self.cache
        return settings


class RunConfig(BaseModel):
    model_config = _STRICT

    model: str = Field(DEFAULT_MODEL, description="the model every stage uses unless it says")
    judge: str | None = Field(None, description="judge model (verification, bench); None: model")
    seed: int = Field(0, ge=0)
    llm: LLMSection = Field(default_factory=LLMSection)
    stages: tuple[StageName, ...] = Field(STAGE_ORDER, description="which stages to run")
    personas: PersonasSection = Field(default_factory=PersonasSection)
    prompts: PromptsSection = Field(default_factory=PromptsSection)
    preferences: PreferencesSection = Field(default_factory=PreferencesSection)
    bench: BenchSection = Field(default_factory=BenchSection)
    agreement: AgreementSection = Field(default_factory=AgreementSection)

    @model_validator(mode="before")
    @classmethod
    def _share_model_and_seed(cls, data: Any) -> Any:
        """Give the top-level model, judge and seed to each section that leaves them out."""
        if not isinstance(data, dict):
            return data
        model = data.get("model", DEFAULT_MODEL)
        judge = data.get("judge") or model
        seed = data.get("seed", 0)
        shared: dict[str, dict[str, Any]] = {
            "personas": {"model": model, "seed": seed},
            "prompts": {"model": model, "seed": seed},
            "preferences": {"model": model, "judge": judge, "seed": seed},
            "bench": {"models": [model], "judge": judge, "seed": seed},
        }
        merged = dict(data)
        for section, defaults in shared.items():
            given = merged.get(section) or {}
            if isinstance(given, dict):
                merged[section] = {**defaults, **given}
        agreement = merged.get("agreement") or {}
        if isinstance(agreement, dict):
            agreement = dict(agreement)
            loo = agreement.get("loo", {})
            if isinstance(loo, dict):
                agreement["loo"] = {"model": model, "seed": seed, **loo}
            if isinstance(agreement.get("models"), dict):
                agreement["models"] = {"seed": seed, **agreement["models"]}
            merged["agreement"] = agreement
        return merged

    @model_validator(mode="after")
    def _ordered(self) -> RunConfig:
        if list(self.stages) != sorted(self.stages, key=STAGE_ORDER.index):
            raise ValueError(f"stages must be in pipeline order: {', '.join(STAGE_ORDER)}")
        return self

    def models(self) -> list[str]:
        """Every model spec the run uses, in first-use order."""
        specs = [self.personas.model, self.prompts.model, self.preferences.model]
        specs += [self.preferences.judge or self.preferences.model]
        specs += [*self.bench.models, self.bench.judge]
        if self.agreement.loo is not None:
            specs += [self.agreement.loo.model, *self.agreement.loo.annotator_specs]
        if self.agreement.models is not None:
            specs += self.agreement.models.annotators
        return list(dict.fromkeys(specs))
