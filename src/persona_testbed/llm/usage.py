"""Token and cost accounting per model."""

from __future__ import annotations

from pydantic import BaseModel, Field


def _join_runtimes(first: str | None, second: str | None) -> str | None:
    names = sorted({name for value in (first, second) if value for name in value.split("; ")})
    return "; ".join(names) or None


class ModelUsage(BaseModel):
    """What one model cost: calls sent to it, calls answered from the cache, tokens and USD."""

    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    parse_failures: int = 0
    runtime: str | None = Field(
        None,
        description="what served a local model, with its version (e.g. 'xllamacpp 2026.10.11549');"
        " several joined by '; '. None: a remote or scripted model",
    )

    def add(self, other: ModelUsage) -> ModelUsage:
        return ModelUsage(
            calls=self.calls + other.calls,
            cache_hits=self.cache_hits + other.cache_hits,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            parse_failures=self.parse_failures + other.parse_failures,
            runtime=_join_runtimes(self.runtime, other.runtime),
        )


def merge_usage(*tables: dict[str, ModelUsage]) -> dict[str, ModelUsage]:
    merged: dict[str, ModelUsage] = {}
    for table in tables:
        for model, usage in table.items():
            merged[model] = merged[model].add(usage) if model in merged else usage.model_copy()
    return merged
