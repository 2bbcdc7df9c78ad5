"""Price table (USD per million tokens) that turns token counts into cost."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import yaml
from pydantic import BaseModel, Field, ValidationError

from persona_testbed.errors import InputError


class Price(BaseModel):
    input_per_million: float
    output_per_million: float
    # Share of the list price a provider's batch API bills: OpenAI's Batch API and Anthropic's
    # Message Batches both bill half. Set it per model in a --prices file where it differs.
    batch_fraction: float = Field(0.5, ge=0.0, le=1.0)


# List prices as published by OpenAI and Anthropic (standard tier) when this table was written.
# Prices change: extend or override them with --prices FILE (YAML or JSON, same shape).
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o": Price(input_per_million=2.50, output_per_million=10.00),
    "gpt-4o-mini": Price(input_per_million=0.15, output_per_million=0.60),
    "gpt-4.1": Price(input_per_million=2.00, output_per_million=8.00),
    "gpt-4.1-mini": Price(input_per_million=0.40, output_per_million=1.60),
    "gpt-4.1-nano": Price(input_per_million=0.10, output_per_million=0.40),
    # Anthropic list prices (standard tier), 2025.
    "claude-opus-4-5": Price(input_per_million=5.00, output_per_million=25.00),
    "claude-opus-4-1": Price(input_per_million=15.00, output_per_million=75.00),
    "claude-opus-4": Price(input_per_million=15.00, output_per_million=75.00),
    "claude-sonnet-4-5": Price(input_per_million=3.00, output_per_million=15.00),
    "claude-sonnet-4": Price(input_per_million=3.00, output_per_million=15.00),
    "claude-3-7-sonnet": Price(input_per_million=3.00, output_per_million=15.00),
    "claude-haiku-4-5": Price(input_per_million=1.00, output_per_million=5.00),
    "claude-3-5-haiku": Price(input_per_million=0.80, output_per_million=4.00),
}

# Models that run on this machine cost nothing.
FREE_PREFIXES = ("local:", "gguf:", "scripted:")


class PriceTable:
    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        # Read-only, so the family lookups kept below can never go stale.
        self.prices: Mapping[str, Price] = MappingProxyType(
            dict(DEFAULT_PRICES if prices is None else prices)
        )
        self._families: dict[str, str | None] = {}

    @classmethod
    def load(cls, path: Path | None) -> PriceTable:
        """The default table, extended by a user file: model -> input/output USD per million."""
        if path is None:
            return cls()
        prices = dict(DEFAULT_PRICES)
        try:
            text = Path(path).read_text("utf-8")
            raw = yaml.safe_load(text) if path.suffix in {".yaml", ".yml"} else json.loads(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise InputError(f"{path}: cannot read the price table ({exc})") from None
        if not isinstance(raw, dict):
            raise InputError(f"{path}: the price table must map model names to prices")
        for model, entry in raw.items():
            try:
                prices[str(model)] = Price.model_validate(entry)
            except ValidationError as exc:
                field = exc.errors()[0]["loc"]
                raise InputError(f"{path}: model '{model}': bad price field {field}") from None
        return cls(prices)

    def price(self, model_id: str) -> Price | None:
        if model_id.startswith(FREE_PREFIXES):
            return Price(input_per_million=0.0, output_per_million=0.0)
        hosted = model_id.startswith(("openai:", "anthropic:"))
        name = model_id.split(":", 1)[1] if hosted else model_id
        if name in self.prices:
            return self.prices[name]
        # Dated snapshots ("gpt-4o-mini-2024-07-18") take their family's price: longest prefix.
        # The search runs on every call's cost, so its answer is kept (the table is read-only).
        if name in self._families:
            family = self._families[name]
        else:
            family = max(
                (k for k in self.prices if name.startswith(k + "-")), key=len, default=None
            )
            self._families[name] = family
        return self.prices[family] if family else None

    def cost(
        self, model_id: str, prompt_tokens: int, completion_tokens: int, *, batch: bool = False
    ) -> float:
        """USD at list price, or with `batch` at the price of the provider's batch API."""
        price = self.price(model_id)
        if price is None:
            return 0.0
        online = (
            prompt_tokens * price.input_per_million + completion_tokens * price.output_per_million
        ) / 1_000_000
        return online * price.batch_fraction if batch else online
