"""The settings both agreement stages share: role-play labelling and the statistics."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from persona_testbed.agreement.annotator import DEFAULT_THRESHOLD
from persona_testbed.agreement.dpf import DEFAULT_TEMPLATES
from persona_testbed.agreement.statistics import UndefinedPolicy
from persona_testbed.estimation import LEVEL, RESAMPLES


class AgreementConfig(BaseModel):
    """Fields of LooConfig and ModelsConfig (recorded in the manifest with the rest)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    templates: str = DEFAULT_TEMPLATES
    threshold: float = Field(DEFAULT_THRESHOLD, gt=0.0, lt=1.0)
    undefined_kappa: UndefinedPolicy = "nan"
    resamples: int = Field(RESAMPLES, ge=0)
    level: float = Field(LEVEL, gt=0.0, lt=1.0)
    seed: int = Field(0, ge=0)


def check_annotators(annotators: list[str]) -> None:
    """Each annotator model at most once."""
    if len(set(annotators)) != len(annotators):
        raise ValueError("an annotator model is listed twice")
