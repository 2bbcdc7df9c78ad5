"""Token and cost accounting per model."""

from __future__ import annotations

from pydantic import BaseModel


class ModelUsage(BaseModel):
    """What one model cost: calls sent to it, calls answered from the cache, tokens and USD."""

    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    parse_failures: int = 0

    def add(self, other: ModelUsage) -> ModelUsage:
        return ModelUsage(
            calls=self.calls + other.calls,
            cache_hits=self.cache_hits + other.cache_hits,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            parse_failures=self.parse_failures + other.parse_failures,
        )


def merge_usage(*tables: dict[str, ModelUsage]) -> dict[str, ModelUsage]:
    merged: dict[str, ModelUsage] = {}
    for table in tables:
        for model, usage in table.items():
            merged[model] = merged[model].add(usage) if model in merged else usage.model_copy()
    return merged
